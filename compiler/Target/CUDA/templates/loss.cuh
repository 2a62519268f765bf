// fusion/loss.cuh - cross-entropy and the fused softcapped tied head (docs/op-kinds.md).
//
// cross_entropy       loss[n] = lse(z_n) − z_{n,y_n}; 0 for y_n < 0.
// cross_entropy_grad  dz[n] = dce[n]·(softmax(z_n) − onehot(y_n)); 0 rows for y_n < 0.
//   One block per row (grid.x = rows), the CPU kernel's passes: row max (fp32), Σ exp(z − max)
//   accumulated in fp64 (fp32 exponentials for the loss, fp64 ones for the gradient, as the
//   CPU does), fixed-order block reductions. A row is read completely before it is written,
//   so dlogits may alias logits.
//
// softcap_ce       ce[n] = lse(z_n) − z_{n,y_n}, z = cap·tanh(ℓ/cap) (ℓ for cap 0), ℓ = h·wᵀ,
//                  without materialising the [N, V] logits.
// softcap_ce_grad  dℓ = dce·(exp(z − lse) − onehot)·(1 − tanh²(ℓ/cap)); dh = dℓ·w,
//                  dw = dℓᵀ·h (f32, overwritten).
//   h [N, D], w [V, D] row-major, targets [N] (i32/i64; < 0 ignored; ≥ V gives NaN here, the
//   CPU reports an error), dce [N]. Logits are fp32 dot products with k ascending (the same
//   tile routine everywhere, so the forward, the gradient's lse and its recomputations see
//   bit-identical ℓ); tanh / exp in fp32 and Σexp in fp64 like the CPU, which shifts by cap
//   when 0 < cap ≤ 43 (z ≤ cap bounds the exponent) and by max z otherwise (here: an online
//   max per thread, merged in a fixed order).
//
//   Forward: a block owns 64 rows (256 threads, 4×4 logits per thread, rows ty + 16i and
//   columns tx + 16j) and walks the vocabulary in tiles of 64; each tile's [64 × 64] logits are
//   a shared-memory tiled dot product over D in k-chunks of 32 (both operands staged k-major,
//   the next chunk prefetched into registers). grid.x = ceil(N / 64).
//
//   Gradient, one launch, three block roles in blockIdx order (a later role only waits on an
//   earlier one, so the producers it waits for have all been dispatched — the in-order
//   dispatch that CUB's decoupled look-back also relies on):
//     [0, R)       R = ceil(N/64): the forward's pass; per row the shift and 1/Σexp go to a
//                  module-scope scratch (≤ kMaxRows rows), then a release counter is bumped.
//     [R, R+Hn)    Hn = ceil(N/P): P token rows of dh each. Waits for all R; walks the
//                  vocabulary in tiles of 64: ℓ [P × 64] recomputed, dℓ to shared memory,
//                  then dh_acc[P × D] (dynamic shared memory, fp32) += dℓ·w_tile.
//     [R+Hn, +Wn)  Wn = ceil(V/P): P vocabulary rows of dw each, the same over token tiles:
//                  dw_acc[P × D] += dℓᵀ·h_tile.
//   P = 32 (16 when D is too large for 32 rows of fp32 in shared memory) is a launch argument.
//   Every sum has a fixed order (k ascending; vocabulary / token tiles ascending), so dh and
//   dw are deterministic without atomics on data; the counters are the only atomics and the
//   last block resets them for the next launch (launches of one kernel are stream-ordered).
//   Work: 5 logit-sized products (lse, ℓ twice, dh, dw) against the CPU's 3, the price of
//   keeping neither [N, V] logits nor any workspace.
//
// softcap_ce_rows       ce of a block of rows whose logits ℓ [R, V] f32 a GEMM computed (the
//                       plans' form of softcap_ce, fusion-lower-to-plan); one block per row.
// softcap_ce_rows_grad  dℓ [R, V] of such a block (the plans' form of softcap_ce_grad, whose
//                       dh and dw are then GEMMs); one block per row.
//   targets and dce are read from row `first` on (a launch argument, so every block of a plan
//   shares one kernel); the row math is the CPU's (grad_kernels.cc) expression by expression.
//   Both are memory-bound: each row is read from global memory once, in 16-byte units when
//   V % 4 = 0 and the bases are 16-byte aligned (scalar otherwise), with tanh(ℓ/cap) computed
//   once per element. The gradient (and the forward's max shift, cap 0 or > 43) keep the
//   row's t = tanh(ℓ/cap) (ℓ for cap 0) in dynamic shared memory (V floats, one 1024-thread
//   block per SM), so the writing pass recomputes only exp; dℓ goes out in 4-element stores.
//   The fixed-shift forward needs no cache (one streaming pass, 512 threads). Rows longer than
//   the cache (V > 56K) fall back to the CPU's passes over global memory (two or three reads).
//
// Faster version of the fused kinds: bf16 operands on tensor cores (wgmma / mma.sync, fp32 accumulation; exact
// products for bf16 storage, f32 storage would need 3×TF32 splitting to stay at fp32
// accuracy), 128×128+ tiles with a TMA / cp.async pipeline, the lse pass's shift and 1/Σ
// emitted by the forward instead of recomputed, and split-vocabulary partial (max, Σ) with a
// deterministic merge so small N still fills the GPU.
#pragma once
#include "fusion/common.cuh"

namespace fk {

//===----------------------------------------------------------------------===//
// cross_entropy / cross_entropy_grad
//===----------------------------------------------------------------------===//

template <class TZ, class TY>
__device__ void crossEntropy(const TZ *logits, const TY *targets, float *loss, int64_t rows,
                             int64_t vocab) {
  __shared__ float scratch[32];
  __shared__ double scratch64[32];
  int64_t row = blockIdx.x;
  if (row >= rows)
    return;
  int64_t target = ldIndex(targets[row]);
  if (target < 0 || target >= vocab) { // whole block: the target is per row
    if (threadIdx.x == 0)
      loss[row] = target < 0 ? 0.0f : NAN;
    return;
  }
  const TZ *z = logits + row * vocab;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    m = fmaxf(m, ld(z[j]));
  m = blockMax(m, scratch);
  double s = 0.0; // fp32 exponentials (arguments ≤ 0), accumulated in double
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    s += (double)expf(ld(z[j]) - m);
  s = blockSumF64(s, scratch64);
  if (threadIdx.x == 0) {
    double lse = (double)m + log(s);
    loss[row] = (float)(lse - (double)ld(z[target]));
  }
}

template <class TZ, class TY, class TD, class TO>
__device__ void crossEntropyGrad(const TZ *logits, const TY *targets, const TD *dce, TO *dlogits,
                                 int64_t rows, int64_t vocab) {
  __shared__ float scratch[32];
  __shared__ double scratch64[32];
  int64_t row = blockIdx.x;
  if (row >= rows)
    return;
  int64_t target = ldIndex(targets[row]);
  const TZ *z = logits + row * vocab;
  TO *out = dlogits + row * vocab;
  if (target < 0 || target >= vocab) {
    float fillValue = target < 0 ? 0.0f : NAN;
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
      st(out + j, fillValue);
    return;
  }
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    m = fmaxf(m, ld(z[j]));
  m = blockMax(m, scratch);
  double s = 0.0;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    s += exp((double)ld(z[j]) - (double)m);
  // Every thread has finished reading the row once blockSumF64 returns (it synchronises).
  s = blockSumF64(s, scratch64);
  double scale = (double)ld(dce[row]);
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    double p = exp((double)ld(z[j]) - (double)m) / s;
    st(out + j, (float)(scale * (p - (j == target ? 1.0 : 0.0))));
  }
}

//===----------------------------------------------------------------------===//
// Logit tiles of the fused head
//===----------------------------------------------------------------------===//

// Every head kernel runs 256 threads (16 × 16).
namespace ce {
enum : int {
  kBK = 32,     ///< k-chunk of a logit tile
  kBN = 64,     ///< second-operand rows of a logit tile
  kRows = 64,   ///< rows of the forward / lse blocks (RI = 4)
  kStride = 65, ///< padded row of a staged k-chunk (64 rows + 1)
  kMaxRows = 1 << 20, ///< token rows the gradient's scratch holds
};
} // namespace ce

/// Registers of one k-chunk of ROWS operand rows: row first + warp + 8q, column k0 + lane (a
/// warp reads 32 consecutive k of one row). Rows ≥ count and columns ≥ d read as 0.
template <int ROWS, class T>
__device__ __forceinline__ void ceLoadChunk(float (&reg)[ROWS / 8], const T *base, int64_t first,
                                            int64_t count, int64_t d, int64_t k0) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int64_t k = k0 + lane;
#pragma unroll
  for (int q = 0; q < ROWS / 8; ++q) {
    int64_t row = first + warp + 8 * q;
    reg[q] = (row < count && k < d) ? ld(base[row * d + k]) : 0.0f;
  }
}

/// Stores a chunk k-major: tile[k * ce::kStride + row] (the padding keeps the stores of a warp,
/// which vary k, in distinct banks).
template <int ROWS>
__device__ __forceinline__ void ceStoreChunk(float *tile, const float (&reg)[ROWS / 8]) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int q = 0; q < ROWS / 8; ++q)
    tile[lane * ce::kStride + warp + 8 * q] = reg[q];
}

/// acc[i][j] = Σ_k A[a0 + ty + 16i, k]·B[b0 + tx + 16j, k] over k = 0..d−1 ascending (fp32
/// fma), ty = tid / 16, tx = tid % 16; rows past numA / numB read as 0. `smA` / `smB` hold
/// ce::kBK × ce::kStride floats each; the function synchronises before it overwrites them.
template <int RI, class TA, class TB>
__device__ __forceinline__ void ceTileDot(float (&acc)[RI][4], const TA *A, int64_t a0,
                                          int64_t numA, const TB *B, int64_t b0, int64_t numB,
                                          int64_t d, float *smA, float *smB) {
  constexpr int BM = 16 * RI;
  int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
#pragma unroll
  for (int i = 0; i < RI; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
      acc[i][j] = 0.0f;
  float ra[BM / 8], rb[ce::kBN / 8];
  if (d <= 0)
    return;
  ceLoadChunk<BM>(ra, A, a0, numA, d, 0);
  ceLoadChunk<ce::kBN>(rb, B, b0, numB, d, 0);
  for (int64_t k0 = 0; k0 < d; k0 += ce::kBK) {
    __syncthreads(); // earlier readers of smA / smB are done
    ceStoreChunk<BM>(smA, ra);
    ceStoreChunk<ce::kBN>(smB, rb);
    __syncthreads();
    if (k0 + ce::kBK < d) { // prefetch the next chunk while this one is multiplied
      ceLoadChunk<BM>(ra, A, a0, numA, d, k0 + ce::kBK);
      ceLoadChunk<ce::kBN>(rb, B, b0, numB, d, k0 + ce::kBK);
    }
#pragma unroll 8
    for (int k = 0; k < ce::kBK; ++k) {
      float a[RI], b[4];
#pragma unroll
      for (int i = 0; i < RI; ++i)
        a[i] = smA[k * ce::kStride + ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        b[j] = smB[k * ce::kStride + tx + 16 * j];
#pragma unroll
      for (int i = 0; i < RI; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
  }
}

/// z = cap·tanh(ℓ/cap) (t = tanh(ℓ/cap)), or ℓ for cap 0 (t unused). No contraction, like
/// the CPU's vector code.
__device__ __forceinline__ float ceSoftcap(float l, float cap, float &t) {
  if (cap > 0.0f) {
    t = tanhf(__fdiv_rn(l, cap));
    return __fmul_rn(cap, t);
  }
  t = 0.0f;
  return l;
}

/// Adds exp(z − shift) to a row's (shift m, Σ s): a fixed shift (cap) or an online maximum.
template <bool kFixedShift>
__device__ __forceinline__ void ceAccumulate(float z, float &m, double &s) {
  if (kFixedShift) {
    s += (double)expf(__fsub_rn(z, m));
  } else if (z > m) {
    s = s * (double)expf(__fsub_rn(m, z)) + 1.0;
    m = z;
  } else {
    s += (double)expf(__fsub_rn(z, m));
  }
}

/// Merges the (m, s) of the 16 threads that share a row (a half warp, lanes tx = 0..15); every
/// lane gets the same bits (each step is symmetric in its operands).
template <bool kFixedShift>
__device__ __forceinline__ void ceMergeRow(float &m, double &s) {
#pragma unroll
  for (int offset = 8; offset > 0; offset >>= 1) {
    float om = __shfl_xor_sync(0xffffffffu, m, offset);
    double os = __shfl_xor_sync(0xffffffffu, s, offset);
    if (kFixedShift) {
      s = s + os;
    } else {
      float nm = fmaxf(m, om);
      double a = m == -INFINITY ? 0.0 : s * (double)expf(__fsub_rn(m, nm));
      double b = om == -INFINITY ? 0.0 : os * (double)expf(__fsub_rn(om, nm));
      s = a + b;
      m = nm;
    }
  }
}

/// The forward pass over the vocabulary for the 64 rows from a0: per row i of this thread
/// (row a0 + ty + 16i) the merged shift m[i] and Σexp s[i]. When zy is given, the logit of
/// each row's target (tgt[local row]) is stored to zy[local row] by the thread that computes it.
template <bool kFixedShift, class TH, class TW>
__device__ void ceRowsLse(const TH *h, const TW *w, int64_t n, int64_t d, int64_t v, float cap,
                          int64_t a0, float *smA, float *smB, const int64_t *tgt, float *zy,
                          float (&m)[4], double (&s)[4]) {
  int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = kFixedShift ? cap : -INFINITY;
    s[i] = 0.0;
  }
  for (int64_t b0 = 0; b0 < v; b0 += ce::kBN) {
    float acc[4][4];
    ceTileDot<4>(acc, h, a0, n, w, b0, v, d, smA, smB);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        int64_t col = b0 + tx + 16 * j;
        if (col >= v)
          continue;
        float t;
        float z = ceSoftcap(acc[i][j], cap, t);
        ceAccumulate<kFixedShift>(z, m[i], s[i]);
        if (zy && col == tgt[ty + 16 * i])
          zy[ty + 16 * i] = z;
      }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
    ceMergeRow<kFixedShift>(m[i], s[i]);
}

/// The CPU's choice of shift: cap when 0 < cap ≤ 43, else the row maximum.
__device__ __forceinline__ bool ceFixedShift(float cap) { return cap > 0.0f && cap <= 43.0f; }

//===----------------------------------------------------------------------===//
// softcap_ce
//===----------------------------------------------------------------------===//

template <bool kFixedShift, class TH, class TW, class TY>
__device__ void softcapCeRows(const TH *h, const TW *w, const TY *targets, float *ce, int64_t n,
                              int64_t d, int64_t v, float cap) {
  __shared__ float smA[ce::kBK * ce::kStride], smB[ce::kBK * ce::kStride];
  __shared__ int64_t tgt[ce::kRows];
  __shared__ float zy[ce::kRows];
  int64_t a0 = (int64_t)blockIdx.x * ce::kRows;
  if (a0 >= n)
    return;
  for (int r = threadIdx.x; r < ce::kRows; r += blockDim.x) {
    tgt[r] = a0 + r < n ? ldIndex(targets[a0 + r]) : -1;
    zy[r] = 0.0f;
  }
  __syncthreads();
  float m[4];
  double s[4];
  ceRowsLse<kFixedShift>(h, w, n, d, v, cap, a0, smA, smB, tgt, zy, m, s);
  __syncthreads(); // zy complete
  int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  if (tx != 0)
    return;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    int r = ty + 16 * i;
    if (a0 + r >= n)
      continue;
    int64_t target = tgt[r];
    if (target < 0)
      ce[a0 + r] = 0.0f;
    else if (target >= v)
      ce[a0 + r] = NAN;
    else
      ce[a0 + r] = (float)((double)m[i] + log(s[i]) - (double)zy[r]);
  }
}

/// softcap_ce: grid.x = ceil(n / 64), 256 threads.
template <class TH, class TW, class TY>
__device__ void softcapCe(const TH *h, const TW *w, const TY *targets, float *ce, int64_t n,
                          int64_t d, int64_t v, float cap) {
  if (ceFixedShift(cap))
    softcapCeRows<true>(h, w, targets, ce, n, d, v, cap);
  else
    softcapCeRows<false>(h, w, targets, ce, n, d, v, cap);
}

//===----------------------------------------------------------------------===//
// softcap_ce_grad
//===----------------------------------------------------------------------===//

/// Per-token shift and 1/Σexp of the gradient's lse pass, and the counters of its block
/// roles. Variable templates: only a kernel that uses them (softcap_ce_grad) allocates them.
template <int kUnused> __device__ float ceShiftScratch[(int)ce::kMaxRows];
template <int kUnused> __device__ float ceInverseScratch[(int)ce::kMaxRows];
template <int kUnused> __device__ unsigned int ceReadyCounter;
template <int kUnused> __device__ unsigned int ceDoneCounter;

/// Per-token operands of dℓ, staged in shared memory.
struct CeTokens {
  float shift[ce::kBN], inverse[ce::kBN], scale[ce::kBN];
  int64_t target[ce::kBN];
};

template <class TY, class TD>
__device__ __forceinline__ void ceLoadTokens(CeTokens &tok, const TY *targets, const TD *dce,
                                             int64_t first, int64_t count, int64_t n) {
  for (int r = threadIdx.x; r < count; r += blockDim.x) {
    int64_t token = first + r;
    bool valid = token < n;
    tok.target[r] = valid ? ldIndex(targets[token]) : -1;
    tok.shift[r] = valid ? __ldcg(&ceShiftScratch<0>[token]) : 0.0f;
    tok.inverse[r] = valid ? __ldcg(&ceInverseScratch<0>[token]) : 0.0f;
    tok.scale[r] = valid ? ld(dce[token]) : 0.0f;
  }
}

/// dℓ of one logit, the CPU's fp32 expression: scale·(e·inv − [y])·(1 − t²).
__device__ __forceinline__ float ceDlogit(float l, float cap, float shift, float inverse,
                                          float scale, bool isTarget) {
  float t;
  float z = ceSoftcap(l, cap, t);
  float p = __fmul_rn(expf(__fsub_rn(z, shift)), inverse);
  if (isTarget)
    p = __fsub_rn(p, 1.0f);
  float factor = cap > 0.0f ? __fsub_rn(1.0f, __fmul_rn(t, t)) : 1.0f;
  return __fmul_rn(__fmul_rn(scale, p), factor);
}

/// A dh block (kDh: own rows = P tokens, streamed rows = vocabulary) or a dw block (own = P
/// vocabulary rows, streamed = tokens): acc[P × d] = Σ over streamed tiles of dℓ·X_tile.
template <int RI, bool kDh, class TH, class TW, class TY, class TD, class TO>
__device__ void ceGradRows(const TH *h, const TW *w, const TY *targets, const TD *dce, TO *out,
                           int64_t n, int64_t d, int64_t v, float cap, int64_t own0, float *smA,
                           float *smB, CeTokens &tok, float *acc, float *dl) {
  constexpr int P = 16 * RI;
  int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  const int64_t numOwn = kDh ? n : v, numStream = kDh ? v : n;
  for (int64_t e = threadIdx.x; e < (int64_t)P * d; e += blockDim.x)
    acc[e] = 0.0f;
  if (kDh)
    ceLoadTokens(tok, targets, dce, own0, P, n);
  for (int64_t s0 = 0; s0 < numStream; s0 += ce::kBN) {
    if (!kDh)
      ceLoadTokens(tok, targets, dce, s0, ce::kBN, n);
    __syncthreads(); // tokens staged; the previous tile's dl readers are done
    float l[RI][4];
    if (kDh)
      ceTileDot<RI>(l, h, own0, n, w, s0, v, d, smA, smB);
    else
      ceTileDot<RI>(l, w, own0, v, h, s0, n, d, smA, smB);
#pragma unroll
    for (int i = 0; i < RI; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        int a = ty + 16 * i, b = tx + 16 * j;
        int tokenLocal = kDh ? a : b;
        int64_t token = kDh ? own0 + a : s0 + b;
        int64_t vocab = kDh ? s0 + b : own0 + a;
        int64_t target = tok.target[tokenLocal];
        float value = 0.0f;
        if (token < n && vocab < v && target >= 0)
          value = target >= v ? NAN
                              : ceDlogit(l[i][j], cap, tok.shift[tokenLocal],
                                         tok.inverse[tokenLocal], tok.scale[tokenLocal],
                                         vocab == target);
        dl[b * P + a] = value;
      }
    __syncthreads();
    // acc[a][col] += Σ_kk dl[kk][a]·X[s0 + kk][col], X = w (dh) or h (dw); kk ascending.
    for (int64_t col = threadIdx.x; col < d; col += blockDim.x) {
      float r[P];
#pragma unroll
      for (int a = 0; a < P; ++a)
        r[a] = acc[a * d + col];
      int64_t rows = numStream - s0 < ce::kBN ? numStream - s0 : ce::kBN;
      for (int kk = 0; kk < rows; ++kk) {
        float x = kDh ? ld(w[(s0 + kk) * d + col]) : ld(h[(s0 + kk) * d + col]);
        const float4 *dk = reinterpret_cast<const float4 *>(dl + kk * P);
#pragma unroll
        for (int a4 = 0; a4 < P / 4; ++a4) {
          float4 q = dk[a4];
          r[4 * a4 + 0] = fmaf(q.x, x, r[4 * a4 + 0]);
          r[4 * a4 + 1] = fmaf(q.y, x, r[4 * a4 + 1]);
          r[4 * a4 + 2] = fmaf(q.z, x, r[4 * a4 + 2]);
          r[4 * a4 + 3] = fmaf(q.w, x, r[4 * a4 + 3]);
        }
      }
#pragma unroll
      for (int a = 0; a < P; ++a)
        acc[a * d + col] = r[a];
    }
  }
  __syncthreads();
  for (int64_t e = threadIdx.x; e < (int64_t)P * d; e += blockDim.x) {
    int64_t row = own0 + e / d;
    if (row < numOwn)
      st(out + row * d + e % d, acc[e]);
  }
}

template <bool kFixedShift, int RI, class TH, class TW, class TY, class TD, class TDH>
__device__ void softcapCeGradRoles(const TH *h, const TW *w, const TY *targets, const TD *dce,
                                   TDH *dh, float *dw, int64_t n, int64_t d, int64_t v,
                                   float cap, float *smA, float *smB, CeTokens &tok) {
  constexpr int P = 16 * RI;
  extern __shared__ float4 dynamicSmem[]; // acc [P × d], then dl [64 × P]
  float *acc = reinterpret_cast<float *>(dynamicSmem);
  float *dl = acc + (int64_t)P * d + (4 - ((int64_t)P * d) % 4) % 4; // 16-byte aligned
  unsigned int &ready = ceReadyCounter<0>, &done = ceDoneCounter<0>;
  const int64_t lseBlocks = (n + ce::kRows - 1) / ce::kRows;
  const int64_t dhBlocks = (n + P - 1) / P, dwBlocks = (v + P - 1) / P;
  const int64_t block = blockIdx.x;

  if (block < lseBlocks) {
    // Role 1: shift and 1/Σ of 64 token rows.
    int64_t a0 = block * ce::kRows;
    float m[4];
    double s[4];
    ceRowsLse<kFixedShift>(h, w, n, d, v, cap, a0, smA, smB, nullptr, nullptr, m, s);
    int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    if (tx == 0)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        int64_t row = a0 + ty + 16 * i;
        if (row < n) {
          ceShiftScratch<0>[row] = m[i];
          ceInverseScratch<0>[row] = (float)(1.0 / s[i]);
        }
      }
    __threadfence(); // this thread's scratch writes are visible device-wide ...
    __syncthreads(); // ... for every thread of the block, before the release
    if (threadIdx.x == 0)
      atomicAdd(&ready, 1u);
  } else if (block < lseBlocks + dhBlocks + dwBlocks) {
    // Roles 2 and 3 read every token's shift: wait for all role-1 blocks (lower indices,
    // so already dispatched).
    if (threadIdx.x == 0) {
      while (atomicAdd(&ready, 0u) < (unsigned int)lseBlocks)
        __nanosleep(200);
      __threadfence();
    }
    __syncthreads();
    if (block < lseBlocks + dhBlocks)
      ceGradRows<RI, true>(h, w, targets, dce, dh, n, d, v, cap, (block - lseBlocks) * P, smA,
                           smB, tok, acc, dl);
    else
      ceGradRows<RI, false>(h, w, targets, dce, dw, n, d, v, cap,
                            (block - lseBlocks - dhBlocks) * P, smA, smB, tok, acc, dl);
  }
  // The last block to finish resets the counters for the next launch.
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    if (atomicAdd(&done, 1u) == gridDim.x - 1) {
      atomicExch(&ready, 0u);
      atomicExch(&done, 0u);
    }
  }
}

/// softcap_ce_grad: grid.x = ceil(n/64) + ceil(n/P) + ceil(v/P), 256 threads, dynamic shared
/// memory (P·d rounded up to 4, + 64·P) floats, P = rowsPerBlock ∈ {16, 32}.
template <class TH, class TW, class TY, class TD, class TDH>
__device__ void softcapCeGrad(const TH *h, const TW *w, const TY *targets, const TD *dce, TDH *dh,
                              float *dw, int64_t n, int64_t d, int64_t v, float cap,
                              int64_t rowsPerBlock) {
  // Static shared memory declared once (each instantiation below would get its own).
  __shared__ float smA[ce::kBK * ce::kStride], smB[ce::kBK * ce::kStride];
  __shared__ CeTokens tok;
  bool fixed = ceFixedShift(cap);
  if (rowsPerBlock == 32) {
    if (fixed)
      softcapCeGradRoles<true, 2>(h, w, targets, dce, dh, dw, n, d, v, cap, smA, smB, tok);
    else
      softcapCeGradRoles<false, 2>(h, w, targets, dce, dh, dw, n, d, v, cap, smA, smB, tok);
  } else {
    if (fixed)
      softcapCeGradRoles<true, 1>(h, w, targets, dce, dh, dw, n, d, v, cap, smA, smB, tok);
    else
      softcapCeGradRoles<false, 1>(h, w, targets, dce, dh, dw, n, d, v, cap, smA, smB, tok);
  }
}

//===----------------------------------------------------------------------===//
// Row helpers of softcap_ce_rows / softcap_ce_rows_grad (logits from a GEMM)
//===----------------------------------------------------------------------===//

namespace ce {
enum : int {
  kRowUnroll = 4, ///< units of a row each thread has in flight in the streaming pass
};
} // namespace ce

/// Bytes of dynamic shared memory the launch gave this block (the row cache's size).
__device__ __forceinline__ unsigned int ceDynamicSmemBytes() {
  unsigned int bytes;
  asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(bytes));
  return bytes;
}

/// Loads unit u of a row: W = 4 consecutive floats (one 16-byte load) or W = 1. Streaming
/// loads: the logits are read once.
__device__ __forceinline__ void ceLoadUnit(float (&x)[4], const float *l, int64_t u) {
  float4 q = __ldcs(reinterpret_cast<const float4 *>(l) + u);
  x[0] = q.x;
  x[1] = q.y;
  x[2] = q.z;
  x[3] = q.w;
}
__device__ __forceinline__ void ceLoadUnit(float (&x)[1], const float *l, int64_t u) {
  x[0] = __ldcs(l + u);
}

/// The row cache in shared memory, unit by unit (each thread reads back only its own units).
__device__ __forceinline__ void ceCacheStore(float *cache, int64_t u, const float (&c)[4]) {
  reinterpret_cast<float4 *>(cache)[u] = make_float4(c[0], c[1], c[2], c[3]);
}
__device__ __forceinline__ void ceCacheStore(float *cache, int64_t u, const float (&c)[1]) {
  cache[u] = c[0];
}
__device__ __forceinline__ void ceCacheLoad(float (&c)[4], const float *cache, int64_t u) {
  float4 q = reinterpret_cast<const float4 *>(cache)[u];
  c[0] = q.x;
  c[1] = q.y;
  c[2] = q.z;
  c[3] = q.w;
}
__device__ __forceinline__ void ceCacheLoad(float (&c)[1], const float *cache, int64_t u) {
  c[0] = cache[u];
}

/// Stores unit u of dℓ: 4 values as one 16-byte (f32) or 8-byte (bf16 / f16) store, or 1.
__device__ __forceinline__ void ceStoreUnit(float *out, int64_t u, const float (&g)[4]) {
  __stcs(reinterpret_cast<float4 *>(out) + u, make_float4(g[0], g[1], g[2], g[3]));
}
__device__ __forceinline__ void ceStoreUnit(__nv_bfloat16 *out, int64_t u, const float (&g)[4]) {
  __nv_bfloat162 lo = __floats2bfloat162_rn(g[0], g[1]), hi = __floats2bfloat162_rn(g[2], g[3]);
  uint2 bits = make_uint2(*reinterpret_cast<unsigned int *>(&lo),
                          *reinterpret_cast<unsigned int *>(&hi));
  __stcs(reinterpret_cast<uint2 *>(out) + u, bits);
}
__device__ __forceinline__ void ceStoreUnit(__half *out, int64_t u, const float (&g)[4]) {
  __half2 lo = __floats2half2_rn(g[0], g[1]), hi = __floats2half2_rn(g[2], g[3]);
  uint2 bits = make_uint2(*reinterpret_cast<unsigned int *>(&lo),
                          *reinterpret_cast<unsigned int *>(&hi));
  __stcs(reinterpret_cast<uint2 *>(out) + u, bits);
}
template <class TO>
__device__ __forceinline__ void ceStoreUnit(TO *out, int64_t u, const float (&g)[1]) {
  st(out + u, g[0]);
}

/// The cached form of a logit: t = tanh(ℓ/cap) for cap > 0 (z = cap·t and the factor 1 − t²
/// follow from it bit for bit), ℓ itself for cap 0.
__device__ __forceinline__ float ceCachedZ(float c, float cap) {
  return cap > 0.0f ? __fmul_rn(cap, c) : c;
}

/// Shift and Σ exp(z − shift) of one row ℓ [V] read once from global memory in units of W
/// (V = units·W): the streaming pass computes t = tanh(ℓ/cap) (the only tanh of an element)
/// and, with kCache, keeps the cached form in `cache` (shared memory, V floats). Fixed shift
/// (cap): Σ in the streaming pass; else the streaming pass takes max z and a second pass over
/// the cache sums (kCache required). Per thread, units tid, tid + blockDim, ... in order; Σ in
/// fp64 and fixed-order block reductions. Every thread gets the results.
template <bool kFixedShift, bool kCache, int W>
__device__ __forceinline__ void ceRowStatsOnce(const float *l, int64_t units, float cap,
                                               float *cache, float &shift, double &sum,
                                               float *scratch, double *scratch64) {
  static_assert(kFixedShift || kCache, "the max shift needs the row cache");
  float m = kFixedShift ? cap : -INFINITY;
  double s = 0.0;
  const int64_t stride = blockDim.x;
  for (int64_t u0 = threadIdx.x; u0 < units; u0 += ce::kRowUnroll * stride) {
    float x[ce::kRowUnroll][W];
#pragma unroll
    for (int k = 0; k < ce::kRowUnroll; ++k)
      if (u0 + k * stride < units)
        ceLoadUnit(x[k], l, u0 + k * stride);
#pragma unroll
    for (int k = 0; k < ce::kRowUnroll; ++k) {
      const int64_t u = u0 + k * stride;
      if (u >= units)
        break;
      float c[W];
#pragma unroll
      for (int lane = 0; lane < W; ++lane) {
        float t;
        float z = ceSoftcap(x[k][lane], cap, t);
        c[lane] = cap > 0.0f ? t : x[k][lane];
        if (kFixedShift)
          s += (double)expf(__fsub_rn(z, m));
        else
          m = fmaxf(m, z);
      }
      if (kCache)
        ceCacheStore(cache, u, c);
    }
  }
  if (kFixedShift) {
    shift = cap;
  } else {
    shift = blockMax(m, scratch);
    for (int64_t u = threadIdx.x; u < units; u += stride) {
      float c[W];
      ceCacheLoad(c, cache, u);
#pragma unroll
      for (int lane = 0; lane < W; ++lane)
        s += (double)expf(__fsub_rn(ceCachedZ(c[lane], cap), shift));
    }
  }
  sum = blockSumF64(s, scratch64);
}

/// True when rows of `v` floats (and of the output type) can be read / written in 16-byte /
/// 4-element units from these bases.
template <class TO>
__device__ __forceinline__ bool ceRowsVectorizable(const float *logits, const TO *out,
                                                   int64_t v) {
  return v % 4 == 0 && reinterpret_cast<uintptr_t>(logits) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(out) % (4 * sizeof(TO)) == 0;
}

//===----------------------------------------------------------------------===//
// softcap_ce_rows / softcap_ce_rows_grad
//===----------------------------------------------------------------------===//

/// The streaming fallback's row statistics (rows too long for the cache, max shift): the
/// CPU's passes over global memory: shift = max z (one pass), then Σ exp(z − shift) (another).
__device__ __forceinline__ void ceRowStatsTwoPass(const float *l, int64_t v, float cap,
                                                  float &shift, double &sum, float *scratch,
                                                  double *scratch64) {
  float t;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x)
    m = fmaxf(m, ceSoftcap(l[j], cap, t));
  shift = blockMax(m, scratch);
  double s = 0.0;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x)
    s += (double)expf(__fsub_rn(ceSoftcap(l[j], cap, t), shift));
  sum = blockSumF64(s, scratch64);
}

/// Row statistics of one block's row: read once (streaming, fixed shift without a cache; else
/// through the shared-memory cache when the launch gave one of V floats), or the two-pass
/// fallback (max shift, no cache). Returns whether `cache` holds the row.
template <bool kFixedShift>
__device__ __forceinline__ bool ceRowStatsAny(const float *l, int64_t v, float cap, bool vec,
                                              float *cache, float &shift, double &sum,
                                              float *scratch, double *scratch64) {
  const bool cached = ceDynamicSmemBytes() >= (uint64_t)v * sizeof(float);
  if (cached) {
    if (vec)
      ceRowStatsOnce<kFixedShift, true, 4>(l, v / 4, cap, cache, shift, sum, scratch, scratch64);
    else
      ceRowStatsOnce<kFixedShift, true, 1>(l, v, cap, cache, shift, sum, scratch, scratch64);
  } else if (kFixedShift) {
    if (vec)
      ceRowStatsOnce<true, false, 4>(l, v / 4, cap, cache, shift, sum, scratch, scratch64);
    else
      ceRowStatsOnce<true, false, 1>(l, v, cap, cache, shift, sum, scratch, scratch64);
  } else {
    ceRowStatsTwoPass(l, v, cap, shift, sum, scratch, scratch64);
  }
  return cached;
}

/// softcap_ce_rows: block b is row b of logits [rows, V]; ce[b] = shift + log Σ − z_y with
/// y = targets[first + b] (0 for y < 0, NaN for y ≥ V: the CPU reports that as an error).
/// The row is read once (16-byte loads when V % 4 = 0 and the base is aligned); the max shift
/// keeps it in dynamic shared memory (V floats, when the launch gives them).
template <bool kFixedShift, class TY>
__device__ void softcapCeRows(const float *logits, const TY *targets, float *ce, int64_t rows,
                              int64_t v, int64_t first, float cap) {
  __shared__ float scratch[32];
  __shared__ double scratch64[32];
  extern __shared__ float4 ceRowCache[];
  int64_t row = blockIdx.x;
  if (row >= rows)
    return;
  int64_t y = ldIndex(targets[first + row]);
  if (y < 0 || y >= v) {
    if (threadIdx.x == 0)
      ce[row] = y < 0 ? 0.0f : NAN;
    return;
  }
  const float *l = logits + row * v;
  const bool vec = ceRowsVectorizable(logits, logits, v);
  float shift;
  double sum;
  ceRowStatsAny<kFixedShift>(l, v, cap, vec, reinterpret_cast<float *>(ceRowCache), shift, sum,
                             scratch, scratch64);
  if (threadIdx.x == 0) {
    float t;
    float zy = ceSoftcap(l[y], cap, t);
    ce[row] = (float)((double)shift + log(sum) - (double)zy);
  }
}

/// dℓ of W cached elements of unit u (the CPU's expression order; y − u·W names the target
/// lane, if any).
template <int W>
__device__ __forceinline__ void ceRowGradUnit(float (&g)[W], const float (&c)[W], float cap,
                                              float shift, float inverse, float scale,
                                              int64_t targetLane) {
  const int target = targetLane >= 0 && targetLane < W ? (int)targetLane : -1;
#pragma unroll
  for (int lane = 0; lane < W; ++lane) {
    float p = __fmul_rn(expf(__fsub_rn(ceCachedZ(c[lane], cap), shift)), inverse);
    float factor = cap > 0.0f ? __fsub_rn(1.0f, __fmul_rn(c[lane], c[lane])) : 1.0f;
    g[lane] = lane == target
                  ? __fmul_rn(__fmul_rn(scale, __fsub_rn(p, 1.0f)), factor)
                  : (cap > 0.0f ? __fmul_rn(__fmul_rn(scale, p), factor) : __fmul_rn(scale, p));
  }
}

/// softcap_ce_rows_grad: block b is row b; dℓ = dce·(exp(z − shift)/Σ − onehot(y))·(1 − t²)
/// (factor 1 for cap 0) with the CPU's expression order; 0 rows for y < 0.
///   Fast path (the launch gives V floats of dynamic shared memory): the row is read from
/// global memory once; the streaming pass keeps t = tanh(ℓ/cap) (ℓ for cap 0) in shared
/// memory, and the writing pass recomputes only exp from it (bit-identical z, t). 16-byte
/// loads and 4-element stores when V % 4 = 0 and both bases are aligned, else scalar.
///   Fallback (rows longer than the cache): the CPU's passes over global memory, the row read
/// two (fixed shift) or three times. Each element is read before it is written by the same
/// thread, so dlogits may alias logits (f32) on either path.
template <bool kFixedShift, class TY, class TD, class TO>
__device__ void softcapCeRowsGrad(const float *logits, const TY *targets, const TD *dce,
                                  TO *dlogits, int64_t rows, int64_t v, int64_t first,
                                  float cap) {
  __shared__ float scratch[32];
  __shared__ double scratch64[32];
  extern __shared__ float4 ceRowCache[];
  float *cache = reinterpret_cast<float *>(ceRowCache);
  int64_t row = blockIdx.x;
  if (row >= rows)
    return;
  const float *l = logits + row * v;
  TO *out = dlogits + row * v;
  const bool vec = ceRowsVectorizable(logits, dlogits, v);
  int64_t y = ldIndex(targets[first + row]);
  if (y < 0 || y >= v) {
    float fill = y < 0 ? 0.0f : NAN;
    if (vec) {
      const float g[4] = {fill, fill, fill, fill};
      for (int64_t u = threadIdx.x; u < v / 4; u += blockDim.x)
        ceStoreUnit(out, u, g);
    } else {
      for (int64_t j = threadIdx.x; j < v; j += blockDim.x)
        st(out + j, fill);
    }
    return;
  }
  float shift;
  double sum;
  const bool cached = ceRowStatsAny<kFixedShift>(l, v, cap, vec, cache, shift, sum, scratch,
                                                 scratch64);
  const float scale = ld(dce[first + row]);
  const float inverse = (float)(1.0 / sum);
  if (cached && vec) {
    for (int64_t u = threadIdx.x; u < v / 4; u += blockDim.x) {
      float c[4], g[4];
      ceCacheLoad(c, cache, u);
      ceRowGradUnit<4>(g, c, cap, shift, inverse, scale, y - 4 * u);
      ceStoreUnit(out, u, g);
    }
    return;
  }
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    float c[1], g[1];
    if (cached) {
      c[0] = cache[j];
    } else {
      float t;
      float x = l[j];
      ceSoftcap(x, cap, t);
      c[0] = cap > 0.0f ? t : x;
    }
    ceRowGradUnit<1>(g, c, cap, shift, inverse, scale, y - j);
    st(out + j, g[0]);
  }
}

} // namespace fk
