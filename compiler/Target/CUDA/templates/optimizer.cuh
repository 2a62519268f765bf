// fusion/optimizer.cuh - step control and the optimizer updates (step_control, adamw_update,
// normuon_update, and normuon_update decomposed as the plans run it: normuon_norm,
// normuon_prepare, normuon_rows, normuon_finish around the plan's NS5 GEMMs).
//
// Semantics are runtime/src/cpu/optimizer_kernels.cc (docs/op-kinds.md "Training kinds",
// MODEL.md §12-§13); every buffer is f32 but the decomposed NorMuon's bf16 NS5 iterate X. The elementwise math is fp64 and rounded once per
// stored value, as on the CPU; products and sums use __dmul_rn / __dadd_rn / __dsub_rn (and
// __fmul_rn / __fadd_rn / __fdiv_rn on the fp32 rounding points of NS5) so nvcc cannot
// contract them into FMAs the reference does not do. Nothing here uses atomics: every
// reduction is a fixed-order warp / block tree, so results are deterministic.
//
// ctl (step_control's output, [8] f32): [f(s), clip, ok, norm, t, s, 0, 0]. An update kind
// applies its step when ok == 1 and otherwise copies its state inputs to its state outputs
// (a no-op when in place). Where the CPU reference reports an error instead of computing
// (ok not 0/1, a non-finite factor on an applied step, t < 1 for AdamW, step counters out
// of [0, 2^24]) the kernels compute the formula as written (a GPU kernel cannot fail), so
// those cases are only meaningful on the CPU.
//
// In place: every state output (w, m/M, v) is either its state input's buffer or a buffer
// of its own. Each element of a state buffer is read and then written by the same thread,
// and (normuon) every read of another thread's element happens before a __syncthreads that
// precedes the write, so exact aliasing is safe.
#pragma once
#include "fusion/common.cuh"

namespace fk {
namespace opt {

// Rounded fp64 arithmetic that nvcc does not fuse (the CPU reference rounds each operation).
__device__ __forceinline__ double dmul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double dadd(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double dsub(double a, double b) { return __dsub_rn(a, b); }

/// The cautious weight-decay mask (0 all, 1 grad, 2 update): 1 without cautious_wd; grad:
/// 1[g·w > 0] (g the clipped gradient); update: 1[u·w >= 0] (u the subtracted update).
__device__ __forceinline__ double decayMask(int mode, double g, double u, double w) {
  if (mode == 1)
    return dmul(g, w) > 0 ? 1.0 : 0.0;
  if (mode == 2)
    return dmul(u, w) >= 0 ? 1.0 : 0.0;
  return 1.0;
}

/// W ← W − ηλ·mask·W − η·u, in the reference's order of operations, rounded to f32 once.
__device__ __forceinline__ float decayedWeight(double w, double eta, double wd, double mask,
                                               double u) {
  return (float)dsub(dsub(w, dmul(dmul(dmul(eta, wd), mask), w)), dmul(eta, u));
}

/// Fixed-order sums over a warp; every lane gets the same bits (IEEE addition commutes).
__device__ __forceinline__ double warpSumF64(double v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v = dadd(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}
__device__ __forceinline__ unsigned long long warpSumU64(unsigned long long v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

/// Grid-stride copy (the skipped-step pass-through; a no-op copy when in place).
__device__ __forceinline__ void copyState(const float *in, float *out, int64_t n, int64_t first,
                                          int64_t stride) {
  for (int64_t i = first; i < n; i += stride)
    out[i] = in[i];
}

} // namespace opt

//===----------------------------------------------------------------------===//
// step_control
//===----------------------------------------------------------------------===//

/// The WSD factor f(s) (MODEL.md §13).
__device__ __forceinline__ double wsdFactor(int64_t s, int64_t warmup, int64_t stable,
                                            int64_t decay, double minRatio, bool cosine) {
  if (s < warmup)
    return (double)(s + 1) / (double)warmup;
  if (s < warmup + stable)
    return 1.0;
  if (s < warmup + stable + decay) {
    using namespace opt;
    const double omega = (double)(s - warmup - stable + 1) / (double)decay;
    const double span = dsub(1.0, minRatio);
    return cosine ? dadd(minRatio,
                         dmul(span, dadd(1.0, cos(dmul(3.14159265358979323846, omega)))) / 2)
                  : dsub(1.0, dmul(span, omega));
  }
  return minRatio;
}

/// ctl = [f(s), clip, ok, norm, t, s, 0, 0] from step = (s, t) i32, loss [] and the global
/// squared gradient norm grad_sumsq [] (summed by the plan's reduction kernels). One thread.
__device__ void stepControl(const int32_t *step, const float *loss, const float *sumSq,
                            float *ctl, int64_t warmup, int64_t stable, int64_t decay,
                            double minRatio, bool cosine, double gradClip) {
  if (blockIdx.x != 0 || threadIdx.x != 0)
    return;
  const int64_t s = step[0], t = step[1];
  const float lossValue = loss[0];
  const double norm = sqrt((double)sumSq[0]);
  const bool ok = isfinite(lossValue) && isfinite(norm);
  const double clip = gradClip > 0 && norm > gradClip ? gradClip / (norm + 1e-6) : 1.0;
  const double f = wsdFactor(s, warmup, stable, decay, minRatio, cosine);
  ctl[0] = (float)f;
  ctl[1] = (float)clip;
  ctl[2] = ok ? 1.0f : 0.0f;
  ctl[3] = (float)norm;
  ctl[4] = (float)t;
  ctl[5] = (float)s;
  ctl[6] = 0.0f;
  ctl[7] = 0.0f;
}

//===----------------------------------------------------------------------===//
// adamw_update
//===----------------------------------------------------------------------===//

struct AdamParams {
  double lr, beta1, beta2, eps, weightDecay;
  int maskMode;        ///< opt::decayMask mode
  bool cautiousUpdate; ///< u ← u·φ·numel/(Σφ + 1), φ = 1[u·g > 0]; needs gridDim.x == 1
};

/// The new moments (f32 values) and the raw update of element i (clipped gradient g).
struct AdamMoments {
  double g, m, v, u;
};

__device__ __forceinline__ AdamMoments adamMoments(float clip, float g, float m, float v,
                                                   const AdamParams &p, double correction1,
                                                   double correction2) {
  using namespace opt;
  AdamMoments r;
  r.g = __fmul_rn(clip, g);
  r.m = (float)dadd(dmul(p.beta1, (double)m), dmul(dsub(1.0, p.beta1), r.g));
  r.v = (float)dadd(dmul(p.beta2, (double)v), dmul(dmul(dsub(1.0, p.beta2), r.g), r.g));
  r.u = (r.m / correction1) / dadd(sqrt(r.v / correction2), p.eps);
  return r;
}

/// Cautious AdamW over n elements, grid-stride. With cautiousUpdate the agreeing-sign count
/// is a whole-tensor reduction done by the (single) block before any element is written.
__device__ void adamwUpdate(const float *g, const float *ctl, const float *w, const float *m,
                            const float *v, float *wOut, float *mOut, float *vOut, int64_t n,
                            AdamParams p) {
  using namespace opt;
  const int64_t first = globalThread(), stride = gridThreads();
  if (ctl[2] != 1.0f) {
    copyState(w, wOut, n, first, stride);
    copyState(m, mOut, n, first, stride);
    copyState(v, vOut, n, first, stride);
    return;
  }
  const float clip = ctl[1];
  const double eta = dmul(p.lr, (double)ctl[0]);
  const double t = ctl[4];
  const double correction1 = dsub(1.0, pow(p.beta1, t));
  const double correction2 = dsub(1.0, pow(p.beta2, t));
  double updateScale = 1.0;
  if (p.cautiousUpdate) {
    __shared__ unsigned long long counts[32];
    unsigned long long count = 0;
    for (int64_t i = first; i < n; i += stride) {
      AdamMoments r = adamMoments(clip, g[i], m[i], v[i], p, correction1, correction2);
      count += dmul(r.u, r.g) > 0;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    count = warpSumU64(count);
    if (lane == 0)
      counts[warp] = count;
    __syncthreads(); // also orders every read of m, v, w above before the writes below
    count = lane < warps ? counts[lane] : 0ull;
    count = warpSumU64(count);
    updateScale = (double)n / ((double)count + 1);
  }
  for (int64_t i = first; i < n; i += stride) {
    AdamMoments r = adamMoments(clip, g[i], m[i], v[i], p, correction1, correction2);
    double u = r.u;
    if (p.cautiousUpdate)
      u = dmul(r.u, r.g) > 0 ? dmul(u, updateScale) : 0.0;
    const double wOld = w[i];
    wOut[i] = decayedWeight(wOld, eta, p.weightDecay, decayMask(p.maskMode, r.g, u, wOld), u);
    mOut[i] = (float)r.m;
    vOut[i] = (float)r.v;
  }
}

//===----------------------------------------------------------------------===//
// normuon_update
//===----------------------------------------------------------------------===//

struct MuonParams {
  double lr, beta1, beta2, weightDecay;
  bool nesterov, normalize;
  int maskMode;
};

namespace muon {

/// NS5 coefficients (a, b, c) of MODEL.md §12.
constexpr float kA = 3.4445f, kB = -4.7750f, kC = 2.0315f;
/// Output columns per warp tile of the in-block GEMMs (a lane owns 2 of them) and rows.
constexpr int kTileCols = 64, kTileRows = 4;

/// Row stride (in bf16) of X [p, q] in shared memory: even (rows start on a 4-byte word)
/// with an odd word count, so a warp reading one element from each of 32 consecutive rows
/// (the Xᵀ operand of X·Xᵀ, the transposed read of O) touches 32 distinct banks.
__host__ __device__ constexpr int64_t xStride(int64_t q) {
  return ((q + 1) / 2 % 2 == 1) ? (q + 1) / 2 * 2 : (q + 1) / 2 * 2 + 2;
}

/// Dynamic shared memory of one block: the per-row denominators (m doubles), X [p, xStride],
/// Ā and B̄ [p, p], and the staging tile of the in-place X update [p, kTileCols] (bf16).
__host__ __device__ constexpr int64_t sharedBytes(int64_t m, int64_t n) {
  const int64_t p = m < n ? m : n, q = m < n ? n : m;
  return 8 * m + 2 * (p * xStride(q) + 2 * p * p + p * kTileCols);
}

/// C [rows, cols] = A [rows, inner] · op(B) on bf16 operands in shared memory with fp32
/// accumulation (sequential over k, one fmaf per product); A(r, k) = a[r·lda + k] and
/// op(B)(k, c) = b[c·ldb + k] if TransB else b[k·ldb + c]. Warp tiles of kTileRows ×
/// kTileCols: lane l owns columns cb + l and cb + l + 32 of the tile's rows (the A values are
/// warp broadcasts, the B values consecutive or bank-spread). `epi(r, c, acc)` stores a
/// result; every tile is written by one warp, so epilogues may read the element they
/// replace in another buffer.
template <bool TransB, class Epi>
__device__ __forceinline__ void gemm(const __nv_bfloat16 *a, int lda, const __nv_bfloat16 *b,
                                     int ldb, int rows, int cols, int inner, Epi epi) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int tilesR = (rows + kTileRows - 1) / kTileRows;
  const int tilesC = (cols + kTileCols - 1) / kTileCols;
  for (int tile = warp; tile < tilesR * tilesC; tile += warps) {
    const int rb = tile / tilesC * kTileRows, cb = tile % tilesC * kTileCols;
    const int c0 = cb + lane, c1 = c0 + 32;
    // Out-of-range rows and columns read row / column 0 (valid memory); their results are
    // dropped.
    const int lc0 = c0 < cols ? c0 : 0, lc1 = c1 < cols ? c1 : 0;
    const __nv_bfloat16 *arow[kTileRows];
#pragma unroll
    for (int i = 0; i < kTileRows; ++i)
      arow[i] = a + (int64_t)(rb + i < rows ? rb + i : 0) * lda;
    float acc[kTileRows][2];
#pragma unroll
    for (int i = 0; i < kTileRows; ++i)
      acc[i][0] = acc[i][1] = 0.0f;
    for (int k = 0; k < inner; ++k) {
      const float b0 = ld(TransB ? b[(int64_t)lc0 * ldb + k] : b[(int64_t)k * ldb + lc0]);
      const float b1 = ld(TransB ? b[(int64_t)lc1 * ldb + k] : b[(int64_t)k * ldb + lc1]);
#pragma unroll
      for (int i = 0; i < kTileRows; ++i) {
        const float av = ld(arow[i][k]);
        acc[i][0] = fmaf(av, b0, acc[i][0]);
        acc[i][1] = fmaf(av, b1, acc[i][1]);
      }
    }
#pragma unroll
    for (int i = 0; i < kTileRows; ++i) {
      if (rb + i >= rows)
        break;
      if (c0 < cols)
        epi(rb + i, c0, acc[i][0]);
      if (c1 < cols)
        epi(rb + i, c1, acc[i][1]);
    }
  }
}

} // namespace muon

/// NorMuon (normalize) or Muon for `units` independent [m, n] matrices: one block per
/// matrix (blockIdx.x = unit), the whole Newton–Schulz iteration in shared memory
/// (muon::sharedBytes(m, n) bytes of dynamic shared memory; blockDim.x a multiple of 32).
///
///   1. ‖G̃‖_F (fp64, fixed-order block sum), G̃ = (1−β1)·g_c + β1·M' (nesterov) or M',
///      M' = β1 M + (1−β1) g_c, g_c = clip·g: recomputed from g and M in each pass.
///   2. M' → mOut; X = bf16(Y/(‖Y‖_F + 1e-7)), Y = G̃ (m <= n) or G̃ᵀ, into shared memory [p, q].
///   3. 5 × { Ā = bf16(X Xᵀ); B̄ = bf16(b·Ā + c·Ā Ā); X ← bf16(a·X + B̄ X) } with fp32 GEMMs;
///      the X update goes through a [p, 64] staging tile one column block at a time (column
///      block J of B̄X needs only column block J of X).
///   4. O = X (transposed back); per row (one warp each): v' = β2 v + (1−β2)·mean_j O², and
///      the row sums of O² and (O/(sqrt(v')+1e-10))² for the norm-preserving rescale;
///      W ← W − ηλ·mask·W − η·U, U = Ô·sqrt(max(1, m/n)).
__device__ void normuonUpdate(const float *g, const float *ctl, const float *w, const float *M,
                              const float *v, float *wOut, float *mOut, float *vOut,
                              int64_t units, int64_t m, int64_t n, MuonParams p) {
  using namespace opt;
  using muon::kA;
  using muon::kB;
  using muon::kC;
  extern __shared__ __align__(16) unsigned char fkMuonShared[];
  __shared__ double reduceScratch[32], warpNormO[32], warpNormHat[32];
  const int64_t unit = blockIdx.x;
  if (unit >= units)
    return;
  const int64_t mn = m * n;
  g += unit * mn;
  w += unit * mn;
  M += unit * mn;
  wOut += unit * mn;
  mOut += unit * mn;
  v += unit * m;
  vOut += unit * m;
  const int tid = threadIdx.x, threads = blockDim.x;
  if (ctl[2] != 1.0f) {
    copyState(w, wOut, mn, tid, threads);
    copyState(M, mOut, mn, tid, threads);
    copyState(v, vOut, m, tid, threads);
    return;
  }
  const float clip = ctl[1];
  const double eta = dmul(p.lr, (double)ctl[0]);
  const double oneMinusBeta1 = dsub(1.0, p.beta1), oneMinusBeta2 = dsub(1.0, p.beta2);
  const bool transpose = m > n;
  const int pDim = (int)(transpose ? n : m), qDim = (int)(transpose ? m : n);
  const int ldx = (int)muon::xStride(qDim);
  double *rowDen = reinterpret_cast<double *>(fkMuonShared);
  __nv_bfloat16 *X = reinterpret_cast<__nv_bfloat16 *>(fkMuonShared + 8 * m);
  __nv_bfloat16 *A = X + (int64_t)pDim * ldx;
  __nv_bfloat16 *B = A + (int64_t)pDim * pDim;
  __nv_bfloat16 *stage = B + (int64_t)pDim * pDim;

  // M' and G̃ of element i (fp32 values, as the reference stores them).
  auto momentum = [&](int64_t i) {
    const float gc = __fmul_rn(clip, g[i]);
    return (float)dadd(dmul(p.beta1, (double)M[i]), dmul(oneMinusBeta1, (double)gc));
  };
  auto nsInput = [&](int64_t i, float mNew) {
    const float gc = __fmul_rn(clip, g[i]);
    return p.nesterov ? (float)dadd(dmul(oneMinusBeta1, (double)gc), dmul(p.beta1, (double)mNew))
                      : mNew;
  };

  // 1. ‖G̃‖_F (products of two floats are exact in fp64).
  double sumSq = 0;
  for (int64_t i = tid; i < mn; i += threads) {
    const double y = nsInput(i, momentum(i));
    sumSq = dadd(sumSq, y * y);
  }
  sumSq = blockSumF64(sumSq, reduceScratch); // its barriers end every read of M above
  const float denom = __fadd_rn((float)sqrt(sumSq), 1e-7f);

  // 2. M' out (same thread, same element as its read) and X = bf16(Y / denom).
  for (int64_t i = tid; i < mn; i += threads) {
    const float mNew = momentum(i);
    const float y = nsInput(i, mNew);
    mOut[i] = mNew;
    const int r = (int)(i / n), c = (int)(i % n);
    X[transpose ? (int64_t)c * ldx + r : (int64_t)r * ldx + c] =
        __float2bfloat16_rn(__fdiv_rn(y, denom));
  }
  __syncthreads();

  // 3. Five quintic Newton–Schulz iterations.
  for (int iter = 0; iter < 5; ++iter) {
    muon::gemm<true>(X, ldx, X, ldx, pDim, pDim, qDim, [&](int r, int c, float acc) {
      A[r * pDim + c] = __float2bfloat16_rn(acc);
    });
    __syncthreads();
    muon::gemm<false>(A, pDim, A, pDim, pDim, pDim, pDim, [&](int r, int c, float acc) {
      const float rhs = __fadd_rn(__fmul_rn(kB, ld(A[r * pDim + c])), __fmul_rn(kC, acc));
      B[r * pDim + c] = __float2bfloat16_rn(rhs);
    });
    __syncthreads();
    for (int j0 = 0; j0 < qDim; j0 += muon::kTileCols) {
      const int width = min(muon::kTileCols, qDim - j0);
      muon::gemm<false>(B, pDim, X + j0, ldx, pDim, width, pDim, [&](int r, int c, float acc) {
        const float rhs = __fadd_rn(__fmul_rn(kA, ld(X[(int64_t)r * ldx + j0 + c])), acc);
        stage[r * muon::kTileCols + c] = __float2bfloat16_rn(rhs);
      });
      __syncthreads();
      for (int e = tid; e < pDim * width; e += threads) {
        const int r = e / width, c = e % width;
        X[(int64_t)r * ldx + j0 + c] = stage[r * muon::kTileCols + c];
      }
      __syncthreads();
    }
  }

  // O[r, c] of the original [m, n] orientation.
  auto orth = [&](int64_t r, int64_t c) -> float {
    return ld(transpose ? X[c * ldx + r] : X[r * ldx + c]);
  };
  const double shapeFactor = sqrt(fmax(1.0, (double)m / (double)n));

  // 4. The neuron-wise second moment (one warp per row, rows in a fixed warp order).
  double factor = shapeFactor;
  if (p.normalize) {
    const int lane = tid & 31, warp = tid >> 5, warps = threads >> 5;
    double normO = 0, normHat = 0;
    for (int64_t r = warp; r < m; r += warps) {
      double rowSumSq = 0;
      for (int64_t c = lane; c < n; c += 32) {
        const double o = orth(r, c);
        rowSumSq = dadd(rowSumSq, o * o);
      }
      rowSumSq = warpSumF64(rowSumSq);
      const float vNew = (float)dadd(dmul(p.beta2, (double)v[r]),
                                     dmul(oneMinusBeta2, rowSumSq / (double)n));
      const double den = dadd(sqrt((double)vNew), 1e-10);
      double rowHat = 0;
      for (int64_t c = lane; c < n; c += 32) {
        const double u = orth(r, c) / den;
        rowHat = dadd(rowHat, dmul(u, u));
      }
      rowHat = warpSumF64(rowHat); // every lane has read v[r] before lane 0 writes it
      if (lane == 0) {
        vOut[r] = vNew;
        rowDen[r] = den;
      }
      normO = dadd(normO, rowSumSq);
      normHat = dadd(normHat, rowHat);
    }
    if (lane == 0) {
      warpNormO[warp] = normO;
      warpNormHat[warp] = normHat;
    }
    __syncthreads();
    normO = 0;
    normHat = 0;
    for (int i = 0; i < warps; ++i) {
      normO = dadd(normO, warpNormO[i]);
      normHat = dadd(normHat, warpNormHat[i]);
    }
    const double rescale = sqrt(normO) / dadd(sqrt(normHat), 1e-10);
    factor = dmul(rescale, shapeFactor);
  } else {
    copyState(v, vOut, m, tid, threads);
  }

  // 5. The weight update.
  for (int64_t i = tid; i < mn; i += threads) {
    const int64_t r = i / n, c = i % n;
    const double o = orth(r, c);
    const double u = p.normalize ? dmul(o / rowDen[r], factor) : dmul(o, shapeFactor);
    const double gc = __fmul_rn(clip, g[i]);
    const double wOld = w[i];
    wOut[i] = decayedWeight(wOld, eta, p.weightDecay, decayMask(p.maskMode, gc, u, wOld), u);
  }
}

//===----------------------------------------------------------------------===//
// normuon_norm, normuon_prepare, normuon_rows, normuon_finish: normuon_update as the plans
// run it, the Newton–Schulz products being the plan's batched GEMMs between prepare and
// rows. Units (leading dims) are independent [m, n] matrices; X [units, p, q] bf16 holds G̃
// (m <= n) or G̃ᵀ (m > n), so O[r, c] = X[r, c] or X[c, r]. No launch needs a grid-wide
// barrier: each per-matrix total is summed, in the same fixed order, by every block that
// needs it, from per-row sums an earlier launch wrote.
//===----------------------------------------------------------------------===//

namespace muon {

/// Tiles of the [m, n] matrix handled by the 256-thread (32 × 8) tile kernels.
constexpr int kTile = 32, kTileRowsPerPass = 8;

/// M' = β1 M + (1−β1)·g_c (g_c = clip·g, fp32), as the reference forms it.
__device__ __forceinline__ float momentum(float clip, float g, float M, double beta1) {
  using namespace opt;
  const float gc = __fmul_rn(clip, g);
  return (float)dadd(dmul(beta1, (double)M), dmul(dsub(1.0, beta1), (double)gc));
}

/// G̃ = (1−β1)·g_c + β1·M' (nesterov) or M'.
__device__ __forceinline__ float nsInput(float clip, float g, float mNew, double beta1,
                                         bool nesterov) {
  using namespace opt;
  const float gc = __fmul_rn(clip, g);
  return nesterov ? (float)dadd(dmul(dsub(1.0, beta1), (double)gc), dmul(beta1, (double)mNew))
                  : mNew;
}

} // namespace muon

/// sumsq [rows, 2] = (hi, lo) of s_r = Σ_j G̃_rj² (fp64) for every row of every unit (rows =
/// units·m): hi = f32(s_r), lo = f32(s_r − hi). One warp per row (coalesced), rows
/// grid-stride by warp. A skipped step writes zeros.
__device__ void normuonNorm(const float *g, const float *ctl, const float *M, float *sumsq,
                            int64_t rows, int64_t n, double beta1, bool nesterov) {
  using namespace opt;
  const int lane = threadIdx.x & 31;
  const int64_t warps = gridThreads() >> 5;
  const bool ok = ctl[2] == 1.0f;
  const float clip = ctl[1];
  for (int64_t row = globalThread() >> 5; row < rows; row += warps) {
    double sum = 0;
    if (ok) {
      const float *gr = g + row * n, *mr = M + row * n;
      for (int64_t j = lane; j < n; j += 32) {
        const float gv = gr[j];
        const double y = muon::nsInput(clip, gv, muon::momentum(clip, gv, mr[j], beta1), beta1,
                                       nesterov);
        sum = dadd(sum, y * y); // exact product of two floats
      }
      sum = warpSumF64(sum);
    }
    if (lane == 0) {
      const float hi = (float)sum;
      sumsq[2 * row] = hi;
      sumsq[2 * row + 1] = (float)dsub(sum, (double)hi);
    }
  }
}

/// Unit blockIdx.y: M ← M' (in place) and X = bf16(Y / (‖Y‖_F + 1e-7)), Y = G̃ or G̃ᵀ, with
/// ‖Y‖_F² = Σ_r (hi_r + lo_r) of sumsq (every block of the unit sums it in the same order).
/// 32×32 tiles of [m, n], gridDim.x blocks per unit; m > n goes through a shared tile so
/// the transposed store is coalesced too. A skipped step copies M and zeroes X.
__device__ void normuonPrepare(const float *g, const float *ctl, const float *M,
                               const float *sumsq, float *mOut, __nv_bfloat16 *X, int64_t m,
                               int64_t n, double beta1, bool nesterov) {
  using namespace opt;
  using muon::kTile;
  using muon::kTileRowsPerPass;
  __shared__ double scratch[32];
  __shared__ float tile[kTile][kTile + 1];
  const int64_t unit = blockIdx.y, mn = m * n;
  g += unit * mn;
  M += unit * mn;
  mOut += unit * mn;
  X += unit * mn;
  sumsq += unit * 2 * m;
  if (ctl[2] != 1.0f) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < mn;
         i += (int64_t)gridDim.x * blockDim.x) {
      mOut[i] = M[i];
      X[i] = __float2bfloat16_rn(0.0f);
    }
    return;
  }
  const float clip = ctl[1];
  double sum = 0;
  for (int64_t r = threadIdx.x; r < m; r += blockDim.x)
    sum = dadd(sum, dadd((double)sumsq[2 * r], (double)sumsq[2 * r + 1]));
  sum = blockSumF64(sum, scratch);
  const float denom = __fadd_rn((float)sqrt(sum), 1e-7f);
  const bool transpose = m > n;
  const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
  const int64_t tilesC = (n + kTile - 1) / kTile, tiles = (m + kTile - 1) / kTile * tilesC;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int64_t r0 = t / tilesC * kTile, c0 = t % tilesC * kTile;
#pragma unroll
    for (int k = 0; k < kTile; k += kTileRowsPerPass) {
      const int64_t r = r0 + ty + k, c = c0 + tx;
      if (r < m && c < n) {
        const int64_t i = r * n + c;
        const float gv = g[i];
        const float mNew = muon::momentum(clip, gv, M[i], beta1);
        const float scaled = __fdiv_rn(muon::nsInput(clip, gv, mNew, beta1, nesterov), denom);
        mOut[i] = mNew; // same thread, same element as the read of M
        if (transpose)
          tile[ty + k][tx] = scaled;
        else
          X[i] = __float2bfloat16_rn(scaled);
      }
    }
    if (transpose) {
      __syncthreads();
#pragma unroll
      for (int k = 0; k < kTile; k += kTileRowsPerPass) {
        const int64_t c = c0 + ty + k, r = r0 + tx; // X [n, m]: X[c, r] = Y[c, r] = G̃[r, c]
        if (c < n && r < m)
          X[c * m + r] = __float2bfloat16_rn(tile[tx][ty + k]);
      }
      __syncthreads();
    }
  }
}

/// NorMuon's row statistics of O (the final X, oriented back): per row r of each unit,
/// S_r = Σ_j O_rj², v_r ← f32(β2 v_r + (1−β2) S_r/n) (in place), H_r = Σ_j (O_rj/(sqrt(v_r) +
/// 1e-10))², rowsums[r] = (f32(S_r), f32(H_r)). A 256-thread block per 32 rows of a unit
/// (gridDim.x = units·⌈m/32⌉): m <= n, a warp per row (rows of X); m > n, lane l owns row
/// r0 + l (a column of X) and the 8 warps split j, their partials summed in warp order. A
/// skipped step copies v and zeroes rowsums.
__device__ void normuonRows(const __nv_bfloat16 *X, const float *ctl, const float *v,
                            float *vOut, float *rowsums, int64_t m, int64_t n, double beta2) {
  using namespace opt;
  __shared__ double part[8][32];
  __shared__ double rowDen[32];
  const int64_t groups = (m + 31) / 32, unit = blockIdx.x / groups;
  const int64_t r0 = blockIdx.x % groups * 32;
  X += unit * m * n;
  v += unit * m;
  vOut += unit * m;
  rowsums += unit * 2 * m;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (ctl[2] != 1.0f) {
    if (warp == 0 && r0 + lane < m) {
      vOut[r0 + lane] = v[r0 + lane];
      rowsums[2 * (r0 + lane)] = 0.0f;
      rowsums[2 * (r0 + lane) + 1] = 0.0f;
    }
    return;
  }
  const double oneMinusBeta2 = dsub(1.0, beta2);
  auto newV = [&](float vOld, double rowSumSq) {
    return (float)dadd(dmul(beta2, (double)vOld), dmul(oneMinusBeta2, rowSumSq / (double)n));
  };
  if (m <= n) {
    for (int64_t r = r0 + warp; r < r0 + 32 && r < m; r += warps) {
      const __nv_bfloat16 *row = X + r * n;
      double s = 0;
      for (int64_t j = lane; j < n; j += 32) {
        const double o = ld(row[j]);
        s = dadd(s, o * o);
      }
      s = warpSumF64(s);
      // Lane 0 alone reads and writes v[r] (in place).
      float vOld = lane == 0 ? v[r] : 0.0f;
      vOld = __shfl_sync(0xffffffffu, vOld, 0);
      const float vNew = newV(vOld, s);
      const double den = dadd(sqrt((double)vNew), 1e-10);
      double h = 0;
      for (int64_t j = lane; j < n; j += 32) {
        const double u = ld(row[j]) / den;
        h = dadd(h, dmul(u, u));
      }
      h = warpSumF64(h);
      if (lane == 0) {
        vOut[r] = vNew;
        rowsums[2 * r] = (float)s;
        rowsums[2 * r + 1] = (float)h;
      }
    }
    return;
  }
  // m > n: X is [n, m]; row r of O is column r of X.
  const int64_t r = r0 + lane;
  const bool active = r < m;
  double s = 0;
  if (active)
    for (int64_t j = warp; j < n; j += warps) {
      const double o = ld(X[j * m + r]);
      s = dadd(s, o * o);
    }
  part[warp][lane] = s;
  __syncthreads();
  if (warp == 0) {
    double total = 0;
    for (int w = 0; w < warps; ++w)
      total = dadd(total, part[w][lane]);
    double den = 1.0;
    if (active) {
      const float vNew = newV(v[r], total); // this thread alone reads and writes v[r]
      den = dadd(sqrt((double)vNew), 1e-10);
      vOut[r] = vNew;
      rowsums[2 * r] = (float)total;
    }
    rowDen[lane] = den;
  }
  __syncthreads(); // also ends warp 0's reads of part before it is reused
  double h = 0;
  if (active) {
    const double den = rowDen[lane];
    for (int64_t j = warp; j < n; j += warps) {
      const double u = ld(X[j * m + r]) / den;
      h = dadd(h, dmul(u, u));
    }
  }
  part[warp][lane] = h;
  __syncthreads();
  if (warp == 0 && active) {
    double total = 0;
    for (int w = 0; w < warps; ++w)
      total = dadd(total, part[w][lane]);
    rowsums[2 * r + 1] = (float)total;
  }
}

struct MuonFinishParams {
  double lr, weightDecay;
  bool normalize;
  int maskMode;
};

/// Unit blockIdx.y: W ← W − ηλ·mask·W − η·U (in place), U = O/(sqrt(v_r)+1e-10)·rescale·
/// sqrt(max(1, m/n)) with rescale = sqrt(Σ S_r)/(sqrt(Σ H_r) + 1e-10) from rowsums (NorMuon;
/// v already updated by normuon_rows), or U = O·sqrt(max(1, m/n)) (Muon: v and rowsums
/// unread). Tiles as normuonPrepare; m > n reads X through a shared tile. A skipped step
/// copies W.
__device__ void normuonFinish(const __nv_bfloat16 *X, const float *g, const float *ctl,
                              const float *w, const float *v, const float *rowsums,
                              float *wOut, int64_t m, int64_t n, MuonFinishParams p) {
  using namespace opt;
  using muon::kTile;
  using muon::kTileRowsPerPass;
  __shared__ double scratch[32];
  __shared__ float tile[kTile][kTile + 1];
  const int64_t unit = blockIdx.y, mn = m * n;
  X += unit * mn;
  g += unit * mn;
  w += unit * mn;
  wOut += unit * mn;
  v += unit * m;
  rowsums += unit * 2 * m;
  if (ctl[2] != 1.0f) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < mn;
         i += (int64_t)gridDim.x * blockDim.x)
      wOut[i] = w[i];
    return;
  }
  const float clip = ctl[1];
  const double eta = dmul(p.lr, (double)ctl[0]);
  const double shapeFactor = sqrt(fmax(1.0, (double)m / (double)n));
  double factor = shapeFactor;
  if (p.normalize) {
    double normO = 0, normHat = 0;
    for (int64_t r = threadIdx.x; r < m; r += blockDim.x) {
      normO = dadd(normO, (double)rowsums[2 * r]);
      normHat = dadd(normHat, (double)rowsums[2 * r + 1]);
    }
    normO = blockSumF64(normO, scratch);
    normHat = blockSumF64(normHat, scratch);
    factor = dmul(sqrt(normO) / dadd(sqrt(normHat), 1e-10), shapeFactor);
  }
  const bool transpose = m > n;
  const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
  const int64_t tilesC = (n + kTile - 1) / kTile, tiles = (m + kTile - 1) / kTile * tilesC;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int64_t r0 = t / tilesC * kTile, c0 = t % tilesC * kTile;
    if (transpose) {
#pragma unroll
      for (int k = 0; k < kTile; k += kTileRowsPerPass) {
        const int64_t c = c0 + ty + k, r = r0 + tx; // O[r, c] = X[c, r], X [n, m]
        if (c < n && r < m)
          tile[tx][ty + k] = ld(X[c * m + r]);
      }
      __syncthreads();
    }
#pragma unroll
    for (int k = 0; k < kTile; k += kTileRowsPerPass) {
      const int64_t r = r0 + ty + k, c = c0 + tx;
      if (r < m && c < n) {
        const int64_t i = r * n + c;
        const double o = transpose ? tile[ty + k][tx] : ld(X[i]);
        const double u = p.normalize ? dmul(o / dadd(sqrt((double)v[r]), 1e-10), factor)
                                     : dmul(o, shapeFactor);
        const double gc = __fmul_rn(clip, g[i]);
        const double wOld = w[i];
        wOut[i] = decayedWeight(wOld, eta, p.weightDecay, decayMask(p.maskMode, gc, u, wOld), u);
      }
    }
    if (transpose)
      __syncthreads();
  }
}

} // namespace fk
