// fusion/optimizer.cuh - step control and the optimizer updates (step_control, adamw_update,
// normuon_update).
//
// Semantics are runtime/src/cpu/optimizer_kernels.cc (docs/op-kinds.md "Training kinds",
// MODEL.md §12-§13); every buffer is f32. The elementwise math is fp64 and rounded once per
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

} // namespace fk
