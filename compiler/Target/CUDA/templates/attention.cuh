// fusion/attention.cuh - causal / sliding-window GQA attention: forward, backward, decoding.
//
// Shapes (row-major): q [B, H, T, D], k [B, G, T, D], v [B, G, T, E] -> o [B, H, T, E]
// (D = d_qk, E = d_v; D != E for MLA). Query head h reads key/value group h / (H / G). Query t
// sees key u when u < T and, if causal, u <= t and (window > 0) u > t - window: exactly
// `window` keys including itself. s = scale · q·k, p = softmax over the allowed keys, o = p v.
//
// All three kinds are tiled flash-attention style on CUDA cores, fp32 in shared memory: a
// block of 256 threads (16 x 16: ty = tid / 16, tx = tid % 16) holds a tile of query rows and
// streams key tiles of kKeyTile = 64 rows through shared memory; thread (ty, tx) owns score
// rows ty + 16 i and key columns tx + 16 j (a 4 x 4 or 2 x 4 register micro-tile), and the
// accumulators C[row][n] it updates at rows ty + 16 i, columns tx + 16 j (owner-exclusive,
// no atomics). Head dims are runtime arguments: every tile lives in shared memory (row stride
// `dim | 1`, odd, so the column reads of the micro-tiles are free of bank conflicts), and the
// only register arrays are the fixed micro-tiles, so one kernel serves every D and E that fits
// the shared memory (the launch checks: D = E = 256 fits the forward, D = 192 / E = 128 the
// backward). Softmax is online in fp32 (running max m and sum l per row, rescaling the
// accumulator by exp(m_old - m_new)); key tiles outside the causal / window band of the query
// tile are skipped. Rows with no allowed key so far use a max of 0, so no NaN appears.
//
//   attentionForward   grid (ceil(T / 64) query tiles, heaviest first; B·H), smem
//                      4 · (64 (D|1) + 64 max(D|1, E|1) + 64·65 + 64 E + 64): Q, K then V
//                      (one region: V is loaded after the scores), P, O.
//   kvCacheAttention   the forward over a cache: queries at positions p + i, keys u < p from the
//                      cache input and p <= u < p + S from k / v (rounded through the cache's
//                      storage type, as the CPU attends over the updated cache). The first query
//                      tile block of each group's first head appends k / v at p .. p + S - 1
//                      (and copies the rest when the cache output is a separate buffer).
//   attentionBackward  one persistent kernel with two phases of work items taken from an atomic
//                      ticket (no float atomics; deterministic):
//     phase A  (b, h, 32-row query tile), heaviest first: recomputes the forward (m, 1/l, O)
//              and D = rowsum(dO ⊙ O) in fp32, publishes (m, 1/l, D) per row in a module-level
//              scratch and counts itself done; then dq = scale · Σ_u P (dP − D) k_u over the
//              band, P = exp(s − m)/l, dP = dO·v.
//     phase B  (b, g, 64-row key tile), waits until every phase-A item is done, then walks the
//              group's heads and the query tiles of its band in order: dv += Pᵀ dO,
//              dk += scale · (P ⊙ (dP − D))ᵀ q, accumulated in shared memory in a fixed order.
//     Deadlock-free without co-residency: tickets are handed out in order, so when a block
//     holds a phase-B item every phase-A item is held by a running block that waits on
//     nothing. The last block to exit resets the counters (one launch at a time per module:
//     the runtime loads a module per plan kernel and computes on one stream).
//
// bf16 / f16 inputs with head sizes that are multiples of 16 up to 128 take the tensor-core
// kernels at the end of this file instead (attentionForwardTc, attentionBackwardTc; the
// generator picks per launch and passes tensorCores): FlashAttention-2 style mma.sync tiles.
// Faster versions would: use wgmma with TMA loads of K/V tiles into swizzled shared memory on
// sm_90a (FlashAttention-3); share one K/V tile among the H/G heads of a group (GQA packing);
// specialise the head sizes at compile time (the tensor-core register arrays are sized for
// 128); for decoding, split the cached keys over blocks (flash-decoding) with a final combine,
// and pack the group's heads into one query tile.
#pragma once
#include "fusion/common.cuh"

namespace fk {
namespace attn {

// Blocks are 256 threads (16 x 16); the launches (Attention.cpp) use these tile sizes too.
constexpr int kKeyTile = 64;       ///< key rows per shared-memory tile
constexpr int kQueryTile = 64;     ///< query rows per block of the forward kernels
constexpr int kGradQueryTile = 32; ///< query rows per tile of the backward
constexpr int kPLd = kKeyTile + 1; ///< row stride of the P / dS tiles

__device__ __forceinline__ int oddStride(int dim) { return dim | 1; }

/// Whether query position t may attend to key position u (u < number of keys is the caller's).
__device__ __forceinline__ bool allowed(int64_t t, int64_t u, bool causal, int64_t window) {
  return !causal || (u <= t && (window <= 0 || u > t - window));
}

/// A float rounded through storage type T (the value a T buffer would hold).
template <class T> __device__ __forceinline__ float roundVia(float x) {
  T t;
  st(&t, x);
  return ld(t);
}

/// dst[r · stride + c] = src[r · dim + c] for r < valid, 0 for valid <= r < rows (c < dim).
template <class T>
__device__ __forceinline__ void loadRows(float *dst, int stride, const T *src, int rows,
                                         int64_t valid, int dim) {
  for (int idx = threadIdx.x; idx < rows * dim; idx += blockDim.x) {
    int r = idx / dim, c = idx - r * dim;
    dst[r * stride + c] = r < valid ? ld(src[(int64_t)r * dim + c]) : 0.0f;
  }
}

/// Key / value rows at positions u0 .. u0 + rows - 1 of a sequence made of n0 rows of s0 then
/// n1 rows of s1 (values of s1 rounded through TR); 0 past the end.
template <class TR, class T0, class T1>
__device__ __forceinline__ void loadSegmentRows(float *dst, int stride, const T0 *s0, int64_t n0,
                                                const T1 *s1, int64_t n1, int64_t u0, int rows,
                                                int dim) {
  for (int idx = threadIdx.x; idx < rows * dim; idx += blockDim.x) {
    int r = idx / dim, c = idx - r * dim;
    int64_t u = u0 + r;
    float value = 0.0f;
    if (u < n0)
      value = ld(s0[u * dim + c]);
    else if (u < n0 + n1)
      value = roundVia<TR>(ld(s1[(u - n0) * dim + c]));
    dst[r * stride + c] = value;
  }
}

/// acc[i][j] = Σ_{k < K} A[(ty + 16 i) · lda + k] · Bm[(tx + 16 j) · ldb + k].
template <int RI, int CJ>
__device__ __forceinline__ void tileDotNT(const float *A, int lda, const float *Bm, int ldb, int K,
                                          float (&acc)[RI][CJ]) {
  const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
#pragma unroll
  for (int i = 0; i < RI; ++i)
#pragma unroll
    for (int j = 0; j < CJ; ++j)
      acc[i][j] = 0.0f;
  for (int k = 0; k < K; ++k) {
    float a[RI], b[CJ];
#pragma unroll
    for (int i = 0; i < RI; ++i)
      a[i] = A[(ty + 16 * i) * lda + k];
#pragma unroll
    for (int j = 0; j < CJ; ++j)
      b[j] = Bm[(tx + 16 * j) * ldb + k];
#pragma unroll
    for (int i = 0; i < RI; ++i)
#pragma unroll
      for (int j = 0; j < CJ; ++j)
        acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  }
}

/// C[row][n] = C[row][n] · alpha[i] + Σ_{k < K} A(row, k) · Bm[k · ldb + n] for the thread's
/// rows row = ty + 16 i (i < RI) and columns n = tx + 16 j < N. A(row, k) is
/// A[row · lda + k], or A[k · lda + row] when TA (A transposed). Owner-exclusive: no sync.
template <int RI, bool TA>
__device__ __forceinline__ void tileAccumulate(float *C, int ldc, const float *A, int lda,
                                               const float *Bm, int ldb, int K, int N,
                                               const float (&alpha)[RI]) {
  const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
  for (int n0 = 0; n0 < N; n0 += 64) {
    float acc[RI][4];
#pragma unroll
    for (int i = 0; i < RI; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        acc[i][j] = 0.0f;
    bool in[4];
#pragma unroll
    for (int j = 0; j < 4; ++j)
      in[j] = n0 + tx + 16 * j < N;
    for (int k = 0; k < K; ++k) {
      float a[RI], b[4];
#pragma unroll
      for (int i = 0; i < RI; ++i)
        a[i] = TA ? A[k * lda + ty + 16 * i] : A[(ty + 16 * i) * lda + k];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        b[j] = in[j] ? Bm[k * ldb + n0 + tx + 16 * j] : 0.0f;
#pragma unroll
      for (int i = 0; i < RI; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
#pragma unroll
    for (int i = 0; i < RI; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (in[j]) {
          float *c = C + (ty + 16 * i) * ldc + n0 + tx + 16 * j;
          *c = fmaf(*c, alpha[i], acc[i][j]);
        }
  }
}

/// Max / sum over the 16 threads of a score row (the half-warp with one ty); xor butterflies,
/// so every thread of the row gets the bitwise same value.
__device__ __forceinline__ float rowMax16(float v) {
#pragma unroll
  for (int offset = 8; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}
__device__ __forceinline__ float rowSum16(float v) {
#pragma unroll
  for (int offset = 8; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

/// Dynamic shared memory of the forward kernels, in floats.
__host__ __device__ constexpr int64_t forwardSmemFloats(int64_t D, int64_t E) {
  const int64_t ldKV = (D | 1) > (E | 1) ? (D | 1) : (E | 1);
  return (int64_t)kQueryTile * (D | 1) + (int64_t)kKeyTile * ldKV + (int64_t)kQueryTile * kPLd +
         (int64_t)kQueryTile * E + kQueryTile;
}

/// The forward over one 64-row query tile of one (batch, head): queries q[i] (i < nq) at
/// positions qPos0 + i, keys / values at positions u < n0 from (k0, v0) then n0 <= u < n0 + n1
/// from (k1, v1), rounded through TRK / TRV; o[i] for the tile's rows (i0 <= i < i0 + 64) and,
/// when lse is not null, lse[i] = m + log l (the row's natural log-sum-exp of scale·q·k).
/// Every pointer is already offset to its (batch, head) or (batch, group). Called by all
/// threads of the block.
template <class TRK, class TRV, class TQ, class TK0, class TV0, class TK1, class TV1, class TO>
__device__ void forwardTile(const TQ *q, int64_t nq, int64_t qPos0, int64_t i0, const TK0 *k0,
                            const TV0 *v0, int64_t n0, const TK1 *k1, const TV1 *v1, int64_t n1,
                            TO *o, float *lse, int D, int E, bool causal, int64_t window,
                            float scale) {
  extern __shared__ __align__(16) float attnSmem[];
  const int ldD = oddStride(D), ldE = oddStride(E);
  const int ldKV = ldD > ldE ? ldD : ldE;
  float *Qs = attnSmem;                // [64][ldD]
  float *KVs = Qs + kQueryTile * ldD;  // [64][ldD] keys, then [64][ldE] values
  float *Ps = KVs + kKeyTile * ldKV;   // [64][kPLd]
  float *Os = Ps + kQueryTile * kPLd;  // [64][E]
  float *rowInv = Os + kQueryTile * E; // [64]
  const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
  const int64_t nKeys = n0 + n1;
  const int64_t rows = nq - i0 < kQueryTile ? nq - i0 : kQueryTile;

  loadRows(Qs, ldD, q + i0 * D, kQueryTile, rows, D);
  for (int idx = threadIdx.x; idx < kQueryTile * E; idx += blockDim.x)
    Os[idx] = 0.0f;

  // The key band of the tile's queries: positions tFirst .. tLast.
  const int64_t tFirst = qPos0 + i0, tLast = qPos0 + i0 + rows - 1;
  int64_t uLo = 0, uHi = nKeys - 1;
  if (causal) {
    uHi = tLast < uHi ? tLast : uHi;
    if (window > 0)
      uLo = tFirst - window + 1 > 0 ? tFirst - window + 1 : 0;
  }

  float m[4], l[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
  }
  for (int64_t c0 = (uLo / kKeyTile) * kKeyTile; c0 <= uHi; c0 += kKeyTile) {
    __syncthreads(); // the previous tile's V and P are consumed
    loadSegmentRows<TRK>(KVs, ldD, k0, n0, k1, n1, c0, kKeyTile, D);
    __syncthreads();
    float s[4][4];
    tileDotNT<4, 4>(Qs, ldD, KVs, ldD, D, s);
    float alpha[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t t = tFirst + ty + 16 * i;
      const bool rowIn = ty + 16 * i < rows;
      float tileMax = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t u = c0 + tx + 16 * j;
        const bool ok = rowIn && u < nKeys && allowed(t, u, causal, window);
        s[i][j] = ok ? scale * s[i][j] : -INFINITY;
        tileMax = fmaxf(tileMax, s[i][j]);
      }
      const float mNew = fmaxf(m[i], rowMax16(tileMax));
      const float mUse = mNew == -INFINITY ? 0.0f : mNew;
      alpha[i] = expf(m[i] - mUse);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float p = expf(s[i][j] - mUse);
        Ps[(ty + 16 * i) * kPLd + tx + 16 * j] = p;
        sum += p;
      }
      l[i] = l[i] * alpha[i] + rowSum16(sum);
      m[i] = mNew;
    }
    __syncthreads(); // scores done with K, P written
    loadSegmentRows<TRV>(KVs, ldE, v0, n0, v1, n1, c0, kKeyTile, E);
    __syncthreads();
    tileAccumulate<4, false>(Os, E, Ps, kPLd, KVs, ldE, kKeyTile, E, alpha);
  }
  if (tx == 0)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      rowInv[ty + 16 * i] = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
      if (lse && ty + 16 * i < rows)
        lse[i0 + ty + 16 * i] = l[i] > 0.0f ? m[i] + logf(l[i]) : -INFINITY;
    }
  __syncthreads();
  for (int idx = threadIdx.x; idx < rows * E; idx += blockDim.x) {
    int r = idx / E;
    st(o + i0 * E + idx, Os[r * E + (idx - r * E)] * rowInv[r]);
  }
}

/// Dynamic shared memory of the backward, in floats: K [64][D|1], V [64][E|1], Q [32][D|1],
/// dO [32][E|1], P / dS [32][65], then phase A's accumulator [32][max(D, E)] or phase B's
/// dK [64][D], dV [64][E] and row statistics [32][3] (phase B's is the larger).
__host__ __device__ constexpr int64_t backwardSmemFloats(int64_t D, int64_t E) {
  return (int64_t)(kKeyTile + kGradQueryTile) * ((D | 1) + (E | 1)) +
         (int64_t)kGradQueryTile * kPLd + (int64_t)kKeyTile * (D + E) + 3 * kGradQueryTile;
}

/// attention_grad's module-level scratch: per query row (b·H + h)·T + t its max m, 1/l and
/// D = rowsum(dO ⊙ O) in three planes of kRows floats, and the counters (ticket, phase-A items
/// done, blocks exited). A class template, so only modules that launch attention_grad hold it.
template <int Tag> struct GradScratch {
  /// Rows of statistics: the launch keeps B·H·T within it.
  static constexpr int64_t kRows = int64_t(1) << 20;
  __device__ static float *stats() {
    static float storage[3 * kRows];
    return storage;
  }
  __device__ static unsigned int *counters() {
    static unsigned int count[3] = {0, 0, 0};
    return count;
  }
};

/// Shape and attributes of one attention_grad launch.
struct GradProblem {
  int64_t B, H, G, T;
  int D, E;
  bool causal;
  int64_t window;
  float scale;
};

/// Phase A: rows t0 .. t0 + 31 of query head bh. Publishes the rows' statistics (and counts
/// itself in counters[1]), then writes their dq.
template <class TQ, class TK, class TV, class TG, class TDQ>
__device__ void gradQueryTile(const TQ *q, const TK *k, const TV *v, const TG *dout, TDQ *dq,
                              const GradProblem &pb, int64_t bh, int64_t t0) {
  extern __shared__ __align__(16) float attnSmem[];
  const int D = pb.D, E = pb.E, ldD = oddStride(D), ldE = oddStride(E);
  float *Ks = attnSmem;                    // [64][ldD]
  float *Vs = Ks + kKeyTile * ldD;         // [64][ldE]
  float *Qs = Vs + kKeyTile * ldE;         // [32][ldD]
  float *dOs = Qs + kGradQueryTile * ldD;  // [32][ldE]
  float *Ps = dOs + kGradQueryTile * ldE;  // [32][kPLd]
  float *Acc = Ps + kGradQueryTile * kPLd; // [32][E] O, then [32][D] dq
  const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
  const int64_t T = pb.T, b = bh / pb.H, h = bh % pb.H;
  const int64_t kv = b * pb.G + h / (pb.H / pb.G);
  const TK *kb = k + kv * T * D;
  const TV *vb = v + kv * T * E;
  const int64_t rows = T - t0 < kGradQueryTile ? T - t0 : kGradQueryTile;

  loadRows(Qs, ldD, q + (bh * T + t0) * D, kGradQueryTile, rows, D);
  loadRows(dOs, ldE, dout + (bh * T + t0) * E, kGradQueryTile, rows, E);
  for (int idx = threadIdx.x; idx < kGradQueryTile * E; idx += blockDim.x)
    Acc[idx] = 0.0f;
  int64_t uLo = 0, uHi = T - 1;
  if (pb.causal) {
    uHi = t0 + rows - 1;
    if (pb.window > 0)
      uLo = t0 - pb.window + 1 > 0 ? t0 - pb.window + 1 : 0;
  }
  const int64_t cFirst = (uLo / kKeyTile) * kKeyTile;

  // Pass 1: the forward (m, l, unnormalised O), as forwardTile.
  float m[2], l[2], alpha[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
  }
  for (int64_t c0 = cFirst; c0 <= uHi; c0 += kKeyTile) {
    const int keyRows = T - c0 < kKeyTile ? (int)(T - c0) : kKeyTile;
    __syncthreads();
    loadRows(Ks, ldD, kb + c0 * D, kKeyTile, keyRows, D);
    loadRows(Vs, ldE, vb + c0 * E, kKeyTile, keyRows, E);
    __syncthreads();
    float s[2][4];
    tileDotNT<2, 4>(Qs, ldD, Ks, ldD, D, s);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int64_t t = t0 + ty + 16 * i;
      const bool rowIn = ty + 16 * i < rows;
      float tileMax = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t u = c0 + tx + 16 * j;
        const bool ok = rowIn && u < T && allowed(t, u, pb.causal, pb.window);
        s[i][j] = ok ? pb.scale * s[i][j] : -INFINITY;
        tileMax = fmaxf(tileMax, s[i][j]);
      }
      const float mNew = fmaxf(m[i], rowMax16(tileMax));
      const float mUse = mNew == -INFINITY ? 0.0f : mNew;
      alpha[i] = expf(m[i] - mUse);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float p = expf(s[i][j] - mUse);
        Ps[(ty + 16 * i) * kPLd + tx + 16 * j] = p;
        sum += p;
      }
      l[i] = l[i] * alpha[i] + rowSum16(sum);
      m[i] = mNew;
    }
    __syncthreads();
    tileAccumulate<2, false>(Acc, E, Ps, kPLd, Vs, ldE, kKeyTile, E, alpha);
  }

  // Row statistics: 1/l and D = dO · O (the thread's own accumulator columns, then the row).
  float invL[2], Drow[2];
  float *stats = GradScratch<0>::stats();
  const int64_t kRows = GradScratch<0>::kRows;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = ty + 16 * i;
    invL[i] = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
    float partial = 0.0f;
    for (int n = tx; n < E; n += 16)
      partial = fmaf(dOs[r * ldE + n], Acc[r * E + n], partial);
    Drow[i] = rowSum16(partial) * invL[i];
    if (tx == 0 && r < rows) {
      const int64_t row = bh * T + t0 + r;
      stats[row] = m[i];
      stats[kRows + row] = invL[i];
      stats[2 * kRows + row] = Drow[i];
    }
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0)
    atomicAdd(GradScratch<0>::counters() + 1, 1u);

  // Pass 2: dq = Σ_u dS k_u, dS = scale · P ⊙ (dP − D).
  for (int idx = threadIdx.x; idx < kGradQueryTile * D; idx += blockDim.x)
    Acc[idx] = 0.0f;
  const float one[2] = {1.0f, 1.0f};
  for (int64_t c0 = cFirst; c0 <= uHi; c0 += kKeyTile) {
    const int keyRows = T - c0 < kKeyTile ? (int)(T - c0) : kKeyTile;
    __syncthreads();
    loadRows(Ks, ldD, kb + c0 * D, kKeyTile, keyRows, D);
    loadRows(Vs, ldE, vb + c0 * E, kKeyTile, keyRows, E);
    __syncthreads();
    float s[2][4], dp[2][4];
    tileDotNT<2, 4>(Qs, ldD, Ks, ldD, D, s);
    tileDotNT<2, 4>(dOs, ldE, Vs, ldE, E, dp);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int64_t t = t0 + ty + 16 * i;
      const bool rowIn = ty + 16 * i < rows;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t u = c0 + tx + 16 * j;
        const bool ok = rowIn && u < T && allowed(t, u, pb.causal, pb.window);
        const float p = ok ? expf(pb.scale * s[i][j] - m[i]) * invL[i] : 0.0f;
        Ps[(ty + 16 * i) * kPLd + tx + 16 * j] = pb.scale * p * (dp[i][j] - Drow[i]);
      }
    }
    __syncthreads();
    tileAccumulate<2, false>(Acc, D, Ps, kPLd, Ks, ldD, kKeyTile, D, one);
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < rows * D; idx += blockDim.x)
    st(dq + (bh * T + t0) * D + idx, Acc[idx]);
}

/// Phase B: keys c0 .. c0 + 63 of key / value head bg: dk and dv summed over the group's query
/// heads and the query tiles of the band, in order. Waits for every phase-A item first.
template <class TQ, class TK, class TV, class TG, class TDK, class TDV>
__device__ void gradKeyTile(const TQ *q, const TK *k, const TV *v, const TG *dout, TDK *dk, TDV *dv,
                            const GradProblem &pb, int64_t bg, int64_t c0,
                            unsigned int phaseAItems) {
  extern __shared__ __align__(16) float attnSmem[];
  const int D = pb.D, E = pb.E, ldD = oddStride(D), ldE = oddStride(E);
  float *Ks = attnSmem;                    // [64][ldD]
  float *Vs = Ks + kKeyTile * ldD;         // [64][ldE]
  float *Qs = Vs + kKeyTile * ldE;         // [32][ldD]
  float *dOs = Qs + kGradQueryTile * ldD;  // [32][ldE]
  float *Ps = dOs + kGradQueryTile * ldE;  // [32][kPLd]: P, then dS
  float *dKs = Ps + kGradQueryTile * kPLd; // [64][D]
  float *dVs = dKs + kKeyTile * D;         // [64][E]
  float *rowStats = dVs + kKeyTile * E;    // [32][3]: m, 1/l, D
  const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
  const int64_t T = pb.T, H = pb.H, hpg = pb.H / pb.G;
  const int64_t b = bg / pb.G, g = bg % pb.G;
  const int keyRows = T - c0 < kKeyTile ? (int)(T - c0) : kKeyTile;

  loadRows(Ks, ldD, k + (bg * T + c0) * D, kKeyTile, keyRows, D);
  loadRows(Vs, ldE, v + (bg * T + c0) * E, kKeyTile, keyRows, E);
  for (int idx = threadIdx.x; idx < kKeyTile * (D + E); idx += blockDim.x)
    dKs[idx] = 0.0f; // dKs and dVs are contiguous
  if (threadIdx.x == 0) {
    volatile unsigned int *done = GradScratch<0>::counters() + 1;
    while (*done < phaseAItems)
      __nanosleep(200);
    __threadfence();
  }
  __syncthreads();

  int64_t tLo = 0, tHi = T - 1;
  if (pb.causal) {
    tLo = c0;
    if (pb.window > 0) {
      const int64_t last = c0 + keyRows - 1 + pb.window - 1;
      tHi = last < tHi ? last : tHi;
    }
  }
  const float *stats = GradScratch<0>::stats();
  const int64_t kRows = GradScratch<0>::kRows;
  const float one[4] = {1.0f, 1.0f, 1.0f, 1.0f};
  for (int64_t h = g * hpg; h < (g + 1) * hpg; ++h) {
    const int64_t bh = b * H + h;
    for (int64_t t0 = (tLo / kGradQueryTile) * kGradQueryTile; t0 <= tHi; t0 += kGradQueryTile) {
      const int64_t rows = T - t0 < kGradQueryTile ? T - t0 : kGradQueryTile;
      __syncthreads(); // the previous tile's Q, dO, dS and statistics are consumed
      loadRows(Qs, ldD, q + (bh * T + t0) * D, kGradQueryTile, rows, D);
      loadRows(dOs, ldE, dout + (bh * T + t0) * E, kGradQueryTile, rows, E);
      if (threadIdx.x < kGradQueryTile) {
        const int r = threadIdx.x;
        const int64_t row = bh * T + t0 + r;
        const bool in = r < rows;
        rowStats[3 * r] = in ? __ldcg(stats + row) : 0.0f;
        rowStats[3 * r + 1] = in ? __ldcg(stats + kRows + row) : 0.0f;
        rowStats[3 * r + 2] = in ? __ldcg(stats + 2 * kRows + row) : 0.0f;
      }
      __syncthreads();
      float s[2][4], dp[2][4];
      tileDotNT<2, 4>(Qs, ldD, Ks, ldD, D, s);
      tileDotNT<2, 4>(dOs, ldE, Vs, ldE, E, dp);
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int r = ty + 16 * i;
        const int64_t t = t0 + r;
        const float mr = rowStats[3 * r], invL = rowStats[3 * r + 1], Dr = rowStats[3 * r + 2];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int64_t u = c0 + tx + 16 * j;
          const bool ok = r < rows && u < T && allowed(t, u, pb.causal, pb.window);
          const float p = ok ? expf(pb.scale * s[i][j] - mr) * invL : 0.0f;
          Ps[r * kPLd + tx + 16 * j] = p;
          dp[i][j] = pb.scale * p * (dp[i][j] - Dr); // dS
        }
      }
      __syncthreads();
      tileAccumulate<4, true>(dVs, E, Ps, kPLd, dOs, ldE, kGradQueryTile, E, one);
      __syncthreads(); // P is consumed
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          Ps[(ty + 16 * i) * kPLd + tx + 16 * j] = dp[i][j];
      __syncthreads();
      tileAccumulate<4, true>(dKs, D, Ps, kPLd, Qs, ldD, kGradQueryTile, D, one);
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < keyRows * D; idx += blockDim.x)
    st(dk + (bg * T + c0) * D + idx, dKs[idx]);
  for (int idx = threadIdx.x; idx < keyRows * E; idx += blockDim.x)
    st(dv + (bg * T + c0) * E + idx, dVs[idx]);
}

} // namespace attn

/// attention (lse null) and attention_lse (lse [B, H, T] f32: each row's natural log-sum-exp):
/// grid (ceil(T / 64), B·H), 256 threads, attn::forwardSmemFloats(D, E) floats of dynamic
/// shared memory.
template <class TQ, class TK, class TV, class TO>
__device__ void attentionForward(const TQ *q, const TK *k, const TV *v, TO *o, float *lse,
                                 int64_t B, int64_t H, int64_t G, int64_t T, int64_t D, int64_t E,
                                 bool causal, int64_t window, float scale) {
  const int64_t bh = blockIdx.y;
  const int64_t tiles = (T + attn::kQueryTile - 1) / attn::kQueryTile;
  if (bh >= B * H || (int64_t)blockIdx.x >= tiles)
    return;
  // Causal rows grow with t: the longest tiles start first.
  const int64_t tile = causal ? tiles - 1 - blockIdx.x : blockIdx.x;
  const int64_t b = bh / H, h = bh % H;
  const int64_t kv = b * G + h / (H / G);
  attn::forwardTile<float, float>(q + bh * T * D, T, 0, tile * attn::kQueryTile, k + kv * T * D,
                                  v + kv * T * E, T, (const TK *)nullptr, (const TV *)nullptr, 0,
                                  o + bh * T * E, lse ? lse + bh * T : nullptr, (int)D, (int)E,
                                  causal, window, scale);
}

/// kv_cache_attention: S new tokens at position p = position[0]. Grid (ceil(S / 64), B·H), 256
/// threads, attn::forwardSmemFloats(D, E) floats of dynamic shared memory. Block (0, b·H + h)
/// with h a group's first head writes the group's cache rows: k / v at p .. p + S - 1 and,
/// when the cache output is not the cache input, a copy of every other row. Queries attend
/// (causally, with the window) over cache rows u < p read from the cache input (untouched by
/// any writer) and new rows read from k / v rounded through the cache's type, so the order of
/// the blocks does not matter. p + S > Tc (the CPU's error) writes NaN to o and no cache row.
template <class TQ, class TK, class TV, class TP, class TKC, class TVC, class TO>
__device__ void kvCacheAttention(const TQ *q, const TK *k, const TV *v, const TP *position,
                                 const TKC *kCache, const TVC *vCache, TO *o, TKC *kOut, TVC *vOut,
                                 int64_t B, int64_t H, int64_t G, int64_t S, int64_t Tc, int64_t D,
                                 int64_t E, int64_t window, float scale) {
  const int64_t bh = blockIdx.y;
  const int64_t tiles = (S + attn::kQueryTile - 1) / attn::kQueryTile;
  if (bh >= B * H)
    return;
  const int64_t p = ldIndex(position[0]);
  const int64_t b = bh / H, h = bh % H, hpg = H / G;
  const int64_t bg = b * G + h / hpg;
  if (p < 0 || p + S > Tc) {
    const int64_t i0 = (int64_t)blockIdx.x * attn::kQueryTile;
    const int64_t rows = S - i0 < attn::kQueryTile ? S - i0 : attn::kQueryTile;
    for (int64_t idx = threadIdx.x; idx < rows * E; idx += blockDim.x)
      st(o + (bh * S + i0) * E + idx, __int_as_float(0x7fc00000));
    return;
  }
  if (blockIdx.x == 0 && h % hpg == 0) {
    const bool copyK = (const void *)kOut != (const void *)kCache;
    const bool copyV = (const void *)vOut != (const void *)vCache;
    const int64_t rowsK = copyK ? Tc : S, firstK = copyK ? 0 : p;
    for (int64_t idx = threadIdx.x; idx < rowsK * D; idx += blockDim.x) {
      const int64_t u = firstK + idx / D, c = idx % D;
      const int64_t at = (bg * Tc + u) * D + c;
      if (u >= p && u < p + S)
        st(kOut + at, ld(k[(bg * S + u - p) * D + c]));
      else
        kOut[at] = kCache[at];
    }
    const int64_t rowsV = copyV ? Tc : S, firstV = copyV ? 0 : p;
    for (int64_t idx = threadIdx.x; idx < rowsV * E; idx += blockDim.x) {
      const int64_t u = firstV + idx / E, c = idx % E;
      const int64_t at = (bg * Tc + u) * E + c;
      if (u >= p && u < p + S)
        st(vOut + at, ld(v[(bg * S + u - p) * E + c]));
      else
        vOut[at] = vCache[at];
    }
  }
  if ((int64_t)blockIdx.x >= tiles)
    return;
  attn::forwardTile<TKC, TVC>(q + bh * S * D, S, p, (int64_t)blockIdx.x * attn::kQueryTile,
                              kCache + bg * Tc * D, vCache + bg * Tc * E, p, k + bg * S * D,
                              v + bg * S * E, S, o + bh * S * E, /*lse=*/nullptr, (int)D, (int)E,
                              /*causal=*/true, window, scale);
}

/// attention_grad: a persistent grid (at most 1024 blocks: Attention.cpp) of 256 threads with
/// attn::backwardSmemFloats(D, E) floats of dynamic shared memory; B·H·T rows of statistics
/// must fit attn::GradScratch (the launch checks). Work items, in ticket order: phase A
/// (b, h, query tile) with the causal longest tiles first, then phase B (b, g, key tile).
template <class TQ, class TK, class TV, class TG, class TDQ, class TDK, class TDV>
__device__ void attentionBackward(const TQ *q, const TK *k, const TV *v, const TG *dout, TDQ *dq,
                                  TDK *dk, TDV *dv, int64_t B, int64_t H, int64_t G, int64_t T,
                                  int64_t D, int64_t E, bool causal, int64_t window, float scale) {
  __shared__ unsigned int ticket;
  const attn::GradProblem pb{B, H, G, T, (int)D, (int)E, causal, window, scale};
  const int64_t queryTiles = (T + attn::kGradQueryTile - 1) / attn::kGradQueryTile;
  const int64_t keyTiles = (T + attn::kKeyTile - 1) / attn::kKeyTile;
  const unsigned int phaseA = (unsigned int)(B * H * queryTiles);
  const unsigned int total = phaseA + (unsigned int)(B * G * keyTiles);
  unsigned int *counters = attn::GradScratch<0>::counters();
  for (;;) {
    __syncthreads(); // the previous item is done with the shared memory and `ticket`
    if (threadIdx.x == 0)
      ticket = atomicAdd(counters, 1u);
    __syncthreads();
    const unsigned int item = ticket;
    if (item >= total)
      break;
    if (item < phaseA) {
      const int64_t step = item / (B * H), bh = item % (B * H);
      const int64_t tile = causal ? queryTiles - 1 - step : step;
      attn::gradQueryTile(q, k, v, dout, dq, pb, bh, tile * attn::kGradQueryTile);
    } else {
      const int64_t rest = item - phaseA;
      const int64_t tile = rest / (B * G), bg = rest % (B * G);
      attn::gradKeyTile(q, k, v, dout, dk, dv, pb, bg, tile * attn::kKeyTile, phaseA);
    }
  }
  // The last block out resets the counters for the next launch.
  if (threadIdx.x == 0 && atomicAdd(counters + 2, 1u) == gridDim.x - 1) {
    counters[0] = 0;
    counters[1] = 0;
    counters[2] = 0;
    __threadfence();
  }
}


//===----------------------------------------------------------------------===//
// Tensor-core path: bf16 / f16 q, k, v (and do) of one type, d_qk and d_v multiples of 16 in
// [16, 128] (Attention.cpp picks it per launch and passes tensorCores = 1; other shapes and
// types take the CUDA-core kernels above). sm_80+ (mma.sync, ldmatrix, cp.async); compiled
// for an older arch the helpers trap.
//
// Blocks of 128 threads (4 warps); tiles of 64 query rows x 64 key rows; every 16-bit tile
// lives in shared memory as [64][dim + 8] (row stride dim + 8 elements: for dim a multiple of
// 16 the 8 rows an ldmatrix reads start in 8 distinct 4-bank groups, so ldmatrix is free of
// bank conflicts, and every row starts 16-byte aligned for cp.async). Head dims are run-time
// arguments: register arrays are sized by the template parameters DM >= d_qk and EM >= d_v
// (multiples of 16 <= kTcMaxDim; the generator passes the largest head sizes of the kernel's
// launches, e.g. <96, 64>) and each unrolled step over the head dim is guarded by a
// block-uniform `step < dim / 16` test.
//
// Fragment layouts of mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16} that the code relies
// on (PTX ISA, "Matrix Fragments for mma.m16n8k16"); lane = 4 g + t (g = lane / 4, t = lane % 4):
//   A (16 x 16, row-major), 4 regs of 2 halves (low half = lower column):
//     a0 = A[g][2t, 2t+1], a1 = A[g+8][2t, 2t+1], a2 = A[g][2t+8, 2t+9], a3 = A[g+8][2t+8, 2t+9]
//   B (16 x 8, k x n), 2 regs: b0 = B[2t, 2t+1][g], b1 = B[2t+8, 2t+9][g]
//   C / D (16 x 8, fp32), 4 regs: c0, c1 = C[g][2t, 2t+1], c2, c3 = C[g+8][2t, 2t+1]
// ldmatrix.x4 (b16): lanes 8j .. 8j+7 give the row addresses of 8x8 matrix j; register j of
// lane l then holds M_j[l / 4][2(l % 4), 2(l % 4) + 1] (with .trans: M_j[2(l % 4), 2(l % 4)
// + 1][l / 4]). So, with X row-major in shared memory (row stride ld):
//   A tile rows r0.., cols k0..: lane address X[r0 + l % 16][k0 + 8 (l / 16)]   -> a0..a3
//   B = Xᵀ (X = K: B[k][n] = K[n][k]), n-tiles n0, n0 + 8: lane address
//     X[n0 + l % 8 + 8 (l / 16)][k0 + 8 ((l / 8) % 2)] -> b0, b1 of n0, then b0, b1 of n0 + 8
//   B = X (X = V: B[k][n] = V[k][n]), n-tiles n0, n0 + 8, .trans: lane address
//     X[k0 + l % 8 + 8 ((l / 8) % 2)][n0 + 8 (l / 16)] -> b0, b1 of n0, then b0, b1 of n0 + 8
// and the C fragments of a 16 x 64 product (8 n-tiles) are the A fragments of the next product
// over those 64 columns, 16 at a time: A_kk = {C[2kk][0,1], C[2kk][2,3], C[2kk+1][0,1],
// C[2kk+1][2,3]} rounded to 16 bits (FlashAttention-2's P in registers).
//
// Softmax runs in the log2 domain: x = s · scale · log2(e), p = exp2(x − m). Rows with no
// allowed key so far use m = 0 (no NaN); masked entries are −inf before the max, so their
// p is exactly 0. A (query tile, key tile) pair tests each element against the causal /
// window band and the sequence end only when the pair is not entirely inside the band
// (tcNeedMask); key tiles outside the band of the query tile are never visited.
//
//   attentionForwardTc   grid (ceil(T / 128) query tiles, heaviest first; B·H), 8 warps.
//                        Warp w owns query rows 16w .. 16w + 15: S = Q Kᵀ (16 x 64, fp32),
//                        online softmax (m, l per row, quad shuffles), O += P V with P in
//                        registers; K / V tiles of 64 keys double-buffered through cp.async and
//                        shared by the 8 warps; a warp skips the tiles none of its rows sees
//                        (tcTileHidden) and tests elements per warp (tcNeedMaskRows16).
//                        Shared memory: 2 · (128 (D + 8) + 2 · 64 (D + 8) + 2 · 64 (E + 8))
//                        bytes (Q, 2 K, 2 V).
//   attentionBackwardTc  the persistent two-phase kernel of attentionBackward (atomic ticket,
//                        phase B waits for phase A; no float atomics, deterministic) with
//                        tensor-core items:
//     phase A  (b, h, 64-row query tile), heaviest first. Pass 1 over the key band: S = Q Kᵀ,
//              dP = dO Vᵀ, online m, l and Σ p·dP (rescaled like l), so delta = rowsum(P ⊙ dP)
//              = rowsum(dO ⊙ O) without O; publishes lse2 = m + log2 l and delta per row in
//              GradScratch (planes 0 and 1) and counts itself done. Pass 2 over the same band:
//              P = exp2(x − lse2), dS = P ⊙ (dP − delta), dQ += dS K (warp-private rows);
//              dq = scale · dQ. The K / V stream is double-buffered across both passes.
//     phase B  (b, g, 64-row key tile): K, V of the tile stay in shared memory; warp w owns key
//              rows 16w .. 16w + 15 and walks the group's heads and the query tiles of the
//              band in order (Q, dO and the rows' lse2 / delta double-buffered), 32 queries
//              at a time: Sᵀ = K Qᵀ, dPᵀ = V dOᵀ, Pᵀ = exp2(x − lse2), dSᵀ = Pᵀ ⊙ (dPᵀ − delta),
//              dV += Pᵀ dO, dK += dSᵀ Q in registers; dk = scale · dK.
//              Shared memory: 2 · 64 · 3 (D + E + 16) + 1024 bytes.
//===----------------------------------------------------------------------===//

namespace attn {

constexpr int kTcThreads = 128; ///< 4 warps (the backward)
constexpr int kTcFwdWarps = 8;  ///< warps of the forward: 16 query rows each
constexpr int kTcFwdRows = 16 * kTcFwdWarps; ///< query rows of a forward block
constexpr int kTcTile = 64;     ///< query rows and key rows of a tile
constexpr int kTcMaxDim = 128;  ///< largest d_qk / d_v of the tensor-core path
constexpr int kTcPad = 8;       ///< shared-memory rows are dim + kTcPad elements

/// Whether head sizes D (d_qk) and E (d_v) fit the tensor-core path (Attention.cpp mirrors it).
__host__ __device__ constexpr bool tcDims(int64_t D, int64_t E) {
  return D >= 16 && E >= 16 && D <= kTcMaxDim && E <= kTcMaxDim && D % 16 == 0 && E % 16 == 0;
}
__host__ __device__ constexpr int64_t tcForwardSmemBytes(int64_t D, int64_t E) {
  return 2 * (kTcFwdRows * (D + kTcPad) + 2 * kTcTile * (D + kTcPad) + 2 * kTcTile * (E + kTcPad));
}
__host__ __device__ constexpr int64_t tcBackwardSmemBytes(int64_t D, int64_t E) {
  return 2 * kTcTile * 3 * (D + E + 2 * kTcPad) + 4 * kTcTile * (int64_t)sizeof(float);
}

/// 16-bit operand types of mma.sync: packing two floats and the m16n8k16 product.
template <class T> struct TcType;
template <> struct TcType<__nv_bfloat16> {
  __device__ static __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi); // .x (low half) = lo
    return *reinterpret_cast<uint32_t *>(&v);
  }
  /// d += a · b (A 16 x 16 row-major, B 16 x 8 column-major, fp32 accumulators).
  __device__ static __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();
#else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
  }
};
template <> struct TcType<__half> {
  __device__ static __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
  }
  __device__ static __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();
#else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
  }
};

__device__ __forceinline__ uint32_t smemAddr(const void *p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}
/// ldmatrix.x4 (see the layouts above); `.trans` when Trans.
template <bool Trans> __device__ __forceinline__ void ldsm4(uint32_t (&r)[4], const void *p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();
#else
  if (Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smemAddr(p)));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smemAddr(p)));
#endif
}
/// 16 bytes global -> shared, asynchronous; zero-fills when !valid (src is not read).
__device__ __forceinline__ void cpAsync16(void *dst, const void *src, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();
#else
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smemAddr(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
#endif
}
__device__ __forceinline__ void cpAsyncCommit() {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
/// Waits until at most one committed group of this thread is in flight.
__device__ __forceinline__ void cpAsyncWaitAllButOne() {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group 1;" ::: "memory");
#endif
}

/// Whether every pointer is 16-byte aligned (rows of a multiple of 16 elements then are too).
__device__ __forceinline__ bool aligned16(const void *a, const void *b, const void *c,
                                          const void *d = nullptr) {
  return (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d) & 15) == 0;
}

/// dst[r][c] (row stride dim + kTcPad) = src[(r0 + r) · dim + c] for r < ROWS, 0 for rows at
/// or past n. cp.async 16-byte chunks when `async` (the caller commits and waits), else plain
/// loads (visible after the caller's __syncthreads). All threads of the block call it.
template <int ROWS = kTcTile, class T>
__device__ __forceinline__ void tcLoadTile(T *dst, const T *src, int64_t r0, int64_t n, int dim,
                                           bool async) {
  const int chunks = dim >> 3, ld = dim + kTcPad;
  for (int idx = threadIdx.x; idx < ROWS * chunks; idx += blockDim.x) {
    const int r = idx / chunks, c = (idx - r * chunks) << 3;
    const bool valid = r0 + r < n;
    T *d = dst + r * ld + c;
    const T *s = valid ? src + (r0 + r) * dim + c : src;
    if (async) {
      cpAsync16(d, s, valid);
    } else {
      unsigned short *d16 = reinterpret_cast<unsigned short *>(d);
      const unsigned short *s16 = reinterpret_cast<const unsigned short *>(s);
#pragma unroll
      for (int j = 0; j < 8; ++j)
        d16[j] = valid ? s16[j] : (unsigned short)0;
    }
  }
}

/// acc[n] += A · Bᵀ for one warp: A is 16 rows at `a` (row stride lda), B is 8·NT rows at `b`
/// (stride ldb), both over kSteps · 16 columns (kSteps <= KM / 16, warp-uniform).
template <int NT, int KM, class T>
__device__ __forceinline__ void tcMmaABt(float (&acc)[NT][4], const T *a, int lda, const T *b,
                                         int ldb, int kSteps, int lane) {
  const T *aLane = a + (lane & 15) * lda + ((lane >> 4) << 3);
  const T *bLane = b + ((lane & 7) + ((lane >> 4) << 3)) * ldb + (((lane >> 3) & 1) << 3);
#pragma unroll
  for (int kt = 0; kt < KM / 16; ++kt) {
    if (kt < kSteps) {
      uint32_t af[4];
      ldsm4<false>(af, aLane + kt * 16);
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        uint32_t bf[4];
        ldsm4<false>(bf, bLane + np * 16 * ldb + kt * 16);
        TcType<T>::mma(acc[2 * np], af, bf[0], bf[1]);
        TcType<T>::mma(acc[2 * np + 1], af, bf[2], bf[3]);
      }
    }
  }
}

/// acc[n] (n < nTiles, warp-uniform, even) += P · B for one warp: P is 16 x 16·KC in A
/// fragments, B is 16·KC rows at `b` (stride ldb) and 8·nTiles columns.
template <int KC, int NO, class T>
__device__ __forceinline__ void tcMmaPB(float (&acc)[NO][4], const uint32_t (&pa)[KC][4],
                                        const T *b, int ldb, int nTiles, int lane) {
  const T *bLane = b + ((lane & 7) + (((lane >> 3) & 1) << 3)) * ldb + ((lane >> 4) << 3);
#pragma unroll
  for (int kk = 0; kk < KC; ++kk)
#pragma unroll
    for (int np = 0; np < NO / 2; ++np)
      if (2 * np < nTiles) {
        uint32_t bf[4];
        ldsm4<true>(bf, bLane + kk * 16 * ldb + np * 16);
        TcType<T>::mma(acc[2 * np], pa[kk], bf[0], bf[1]);
        TcType<T>::mma(acc[2 * np + 1], pa[kk], bf[2], bf[3]);
      }
}

/// C fragments of a 16 x 8·NT product -> A fragments over its columns (16 at a time).
template <class T, int NT>
__device__ __forceinline__ void tcToA(uint32_t (&pa)[NT / 2][4], const float (&c)[NT][4]) {
#pragma unroll
  for (int kk = 0; kk < NT / 2; ++kk) {
    pa[kk][0] = TcType<T>::pack(c[2 * kk][0], c[2 * kk][1]);
    pa[kk][1] = TcType<T>::pack(c[2 * kk][2], c[2 * kk][3]);
    pa[kk][2] = TcType<T>::pack(c[2 * kk + 1][0], c[2 * kk + 1][1]);
    pa[kk][3] = TcType<T>::pack(c[2 * kk + 1][2], c[2 * kk + 1][3]);
  }
}

/// Whether some (query t, key u) with t in [t0, t0 + 64), u in [c0, c0 + 64) is outside the
/// band or past the sequence end (then the pair tests every element).
__device__ __forceinline__ bool tcNeedMask(int t0, int c0, int T, bool causal, int window) {
  return t0 + kTcTile > T || c0 + kTcTile > T ||
         (causal && (c0 + kTcTile - 1 > t0 || (window > 0 && c0 <= t0 + kTcTile - 1 - window)));
}
/// Whether a warp's 16 query rows tw0 .. tw0 + 15 against keys c0 .. c0 + 63 need the
/// per-element test (tcNeedMask for the forward's 128-row blocks, per warp).
__device__ __forceinline__ bool tcNeedMaskRows16(int tw0, int c0, int T, bool causal,
                                                 int window) {
  return tw0 + 16 > T || c0 + kTcTile > T ||
         (causal && (c0 + kTcTile - 1 > tw0 || (window > 0 && c0 <= tw0 + 15 - window)));
}
/// Whether no key c0 .. c0 + 63 is allowed for any of the rows tw0 .. tw0 + 15 (the warp skips
/// the tile: its softmax state would not change).
__device__ __forceinline__ bool tcTileHidden(int tw0, int c0, bool causal, int window) {
  return causal && (c0 > tw0 + 15 || (window > 0 && c0 + kTcTile - 1 <= tw0 - window));
}
__device__ __forceinline__ bool tcAllowed(int t, int u, int T, bool causal, int window) {
  return t < T && u < T && (!causal || (u <= t && (window <= 0 || u > t - window)));
}

/// The window as an int: 0 (none) when it covers every key anyway.
__device__ __forceinline__ int tcWindow(int64_t window, int64_t T) {
  return window <= 0 || window >= T ? 0 : (int)window;
}

/// Max over the 4 lanes of a quad (one fragment row); every lane gets the same bits.
__device__ __forceinline__ float quadMax(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quadSum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

/// Online-softmax step for one warp's 16 x 64 score tile s (already x = s · scale · log2 e,
/// −inf where masked): updates m, the partial row sums l (this lane's columns only) and
/// returns alpha = exp2(m_old − m_new) per row half; s becomes p = exp2(x − m_new).
__device__ __forceinline__ void tcOnlineSoftmax(float (&s)[8][4], float (&m)[2], float (&l)[2],
                                                float (&alpha)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mx = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
      mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]));
    const float mNew = fmaxf(m[r], quadMax(mx));
    const float mUse = mNew == -INFINITY ? 0.0f : mNew;
    alpha[r] = exp2f(m[r] - mUse);
    m[r] = mNew;
    float sum = 0.0f;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      s[nt][2 * r] = exp2f(s[nt][2 * r] - mUse);
      s[nt][2 * r + 1] = exp2f(s[nt][2 * r + 1] - mUse);
      sum += s[nt][2 * r] + s[nt][2 * r + 1];
    }
    l[r] = l[r] * alpha[r] + sum;
  }
}

/// Scales a warp's 16 x 64 score tile to the log2 domain and masks it (−inf) when `mask`:
/// rows tRow + 8 (e / 2), columns c0 + 8 nt + 2 (lane % 4) + e % 2.
__device__ __forceinline__ void tcScaleMask(float (&s)[8][4], float scaleLog2, bool mask, int tRow,
                                            int c0, int lane, int T, bool causal, int window) {
#pragma unroll
  for (int nt = 0; nt < 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      float x = s[nt][e] * scaleLog2;
      if (mask) {
        const int t = tRow + ((e >> 1) << 3), u = c0 + nt * 8 + 2 * (lane & 3) + (e & 1);
        if (!tcAllowed(t, u, T, causal, window))
          x = -INFINITY;
      }
      s[nt][e] = x;
    }
}

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

/// Publishes a phase-A tile's row statistics (lse2, delta of the lane's rows tRow, tRow + 8;
/// lanes with lane % 4 = 0 write) in GradScratch and counts the item done.
__device__ __forceinline__ void tcPublishRowStats(const float (&lse2)[2], const float (&delta)[2],
                                                  int64_t bh, int64_t T, int tRow, int lane) {
  float *stats = GradScratch<0>::stats();
  const int64_t kRows = GradScratch<0>::kRows;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int t = tRow + 8 * r;
    if ((lane & 3) == 0 && t < T) {
      stats[bh * T + t] = lse2[r];
      stats[kRows + bh * T + t] = delta[r];
    }
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0)
    atomicAdd(GradScratch<0>::counters() + 1, 1u);
}

/// Phase A of attentionBackwardTc: query rows t0 .. t0 + 63 of query head bh. With the
/// forward's o and lse (attention_grad_lse) the rows' statistics come from them (lse2 = lse ·
/// log2 e, delta = rowsum(dO ⊙ O) in fp32) and only pass 2 walks the key band; without, pass 1
/// computes them.
template <int DM, int EM, class T, class TDQ>
__device__ void tcGradQueryTile(const T *q, const T *k, const T *v, const T *dout, const T *o,
                                const float *lse, TDQ *dq, const GradProblem &pb, int64_t bh,
                                int t0, bool async) {
  extern __shared__ __align__(16) unsigned char attnTcSmem[];
  const int D = pb.D, E = pb.E, ldD = D + kTcPad, ldE = E + kTcPad, Tn = (int)pb.T;
  T *Qs = reinterpret_cast<T *>(attnTcSmem); // [64][ldD]
  T *dOs = Qs + kTcTile * ldD;               // [64][ldE]
  T *Ks = dOs + kTcTile * ldE;               // 2 x [64][ldD]
  T *Vs = Ks + 2 * kTcTile * ldD;            // 2 x [64][ldE]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t b = bh / pb.H, h = bh % pb.H, kv = b * pb.G + h / (pb.H / pb.G);
  const T *kb = k + kv * pb.T * D, *vb = v + kv * pb.T * E;
  const int window = tcWindow(pb.window, pb.T);
  const float scaleLog2 = pb.scale * kLog2e;

  // The key band of rows t0 .. tLast.
  const int tLast = min(t0 + kTcTile, Tn) - 1;
  int uLo = 0, uHi = Tn - 1;
  if (pb.causal) {
    uHi = tLast;
    if (window > 0)
      uLo = max(t0 - window + 1, 0);
  }
  const int cFirst = uLo / kTcTile * kTcTile;
  const int nTiles = (uHi - cFirst) / kTcTile + 1;

  tcLoadTile(Qs, q + bh * pb.T * D, t0, pb.T, D, async);
  tcLoadTile(dOs, dout + bh * pb.T * E, t0, pb.T, E, async);
  tcLoadTile(Ks, kb, cFirst, pb.T, D, async);
  tcLoadTile(Vs, vb, cFirst, pb.T, E, async);
  cpAsyncCommit();

  const int tRow = t0 + warp * 16 + (lane >> 2); // the lane's rows: tRow, tRow + 8
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}, dsum[2] = {0.0f, 0.0f};
  float lse2[2], delta[2];
  float acc[DM / 8][4];
#pragma unroll
  for (int n = 0; n < DM / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      acc[n][e] = 0.0f;

  // Saved statistics: the quad of lanes of a row splits its E columns (4 t + 16 i .. + 3).
  const bool saved = lse != nullptr;
  if (saved) {
    const T *ob = o + bh * pb.T * E, *gb = dout + bh * pb.T * E;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int t = tRow + 8 * r;
      float sum = 0.0f;
      if (t < Tn) {
        for (int c = 4 * (lane & 3); c < E; c += 16)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            sum += ld(ob[(int64_t)t * E + c + e]) * ld(gb[(int64_t)t * E + c + e]);
      }
      delta[r] = quadSum(sum);
      lse2[r] = t < Tn ? lse[bh * pb.T + t] * kLog2e : 0.0f;
    }
    tcPublishRowStats(lse2, delta, bh, pb.T, tRow, lane);
  }

  // Iterations 0 .. nTiles − 1: pass 1 (statistics; skipped with saved statistics);
  // nTiles .. 2 nTiles − 1: pass 2 (dq). The K / V stream starts at jStart in buffer 0.
  const int jStart = saved ? nTiles : 0;
  for (int j = jStart; j < 2 * nTiles; ++j) {
    const bool pass2 = j >= nTiles;
    const int c0 = cFirst + (pass2 ? j - nTiles : j) * kTcTile;
    const int buf = (j - jStart) & 1;
    if (j + 1 < 2 * nTiles) {
      const int cNext = cFirst + (j + 1 >= nTiles ? j + 1 - nTiles : j + 1) * kTcTile;
      tcLoadTile(Ks + (buf ^ 1) * kTcTile * ldD, kb, cNext, pb.T, D, async);
      tcLoadTile(Vs + (buf ^ 1) * kTcTile * ldE, vb, cNext, pb.T, E, async);
    }
    cpAsyncCommit();
    cpAsyncWaitAllButOne();
    __syncthreads();
    if (j == nTiles && !saved) {
      // End of pass 1: the rows' lse2 = m + log2 l and delta = Σ p·dP / l (quad sums).
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float lr = quadSum(l[r]), dr = quadSum(dsum[r]);
        const bool any = lr > 0.0f;
        lse2[r] = any ? m[r] + log2f(lr) : 0.0f;
        delta[r] = any ? dr / lr : 0.0f;
      }
      tcPublishRowStats(lse2, delta, bh, pb.T, tRow, lane);
    }
    const T *Kt = Ks + buf * kTcTile * ldD, *Vt = Vs + buf * kTcTile * ldE;
    const bool mask = tcNeedMask(t0, c0, Tn, pb.causal, window);
    float s[8][4], dp[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        s[nt][e] = dp[nt][e] = 0.0f;
    tcMmaABt<8, DM>(s, Qs + warp * 16 * ldD, ldD, Kt, ldD, D >> 4, lane);
    tcMmaABt<8, EM>(dp, dOs + warp * 16 * ldE, ldE, Vt, ldE, E >> 4, lane);
    tcScaleMask(s, scaleLog2, mask, tRow, c0, lane, Tn, pb.causal, window);
    if (!pass2) {
      float alpha[2];
      tcOnlineSoftmax(s, m, l, alpha);
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
          sum += s[nt][2 * r] * dp[nt][2 * r] + s[nt][2 * r + 1] * dp[nt][2 * r + 1];
        dsum[r] = dsum[r] * alpha[r] + sum;
      }
    } else {
      // dS = P ⊙ (dP − delta) (masked: x = −inf, P = 0), then dQ += dS K.
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = e >> 1;
          s[nt][e] = exp2f(s[nt][e] - lse2[r]) * (dp[nt][e] - delta[r]);
        }
      uint32_t pa[4][4];
      tcToA<T>(pa, s);
      tcMmaPB(acc, pa, Kt, ldD, D >> 3, lane);
    }
    __syncthreads(); // this buffer is consumed before the next iteration refills it
  }

  TDQ *dqb = dq + bh * pb.T * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int t = tRow + 8 * r;
    if (t < Tn)
#pragma unroll
      for (int n = 0; n < DM / 8; ++n)
        if (n < (D >> 3)) {
          const int64_t at = (int64_t)t * D + n * 8 + 2 * (lane & 3);
          st(dqb + at, pb.scale * acc[n][2 * r]);
          st(dqb + at + 1, pb.scale * acc[n][2 * r + 1]);
        }
  }
}

/// Phase B of attentionBackwardTc: keys c0 .. c0 + 63 of key / value head bg; waits for every
/// phase-A item first.
template <int DM, int EM, class T, class TDK, class TDV>
__device__ void tcGradKeyTile(const T *q, const T *k, const T *v, const T *dout, TDK *dk, TDV *dv,
                              const GradProblem &pb, int64_t bg, int c0, unsigned int phaseAItems,
                              bool async) {
  extern __shared__ __align__(16) unsigned char attnTcSmem[];
  const int D = pb.D, E = pb.E, ldD = D + kTcPad, ldE = E + kTcPad, Tn = (int)pb.T;
  T *Ks = reinterpret_cast<T *>(attnTcSmem); // [64][ldD]
  T *Vs = Ks + kTcTile * ldD;                // [64][ldE]
  T *Qs = Vs + kTcTile * ldE;                // 2 x [64][ldD]
  T *dOs = Qs + 2 * kTcTile * ldD;           // 2 x [64][ldE]
  float *lseS = reinterpret_cast<float *>(dOs + 2 * kTcTile * ldE); // 2 x [64]
  float *deltaS = lseS + 2 * kTcTile;                                // 2 x [64]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t b = bg / pb.G, g = bg % pb.G, hpg = pb.H / pb.G;
  const int window = tcWindow(pb.window, pb.T);
  const float scaleLog2 = pb.scale * kLog2e;
  const float *stats = GradScratch<0>::stats();
  const int64_t kRows = GradScratch<0>::kRows;

  // The query band of keys c0 .. cLast: tiles iLo .. iHi of each of the group's heads.
  const int cLast = min(c0 + kTcTile, Tn) - 1;
  int tLo = 0, tHi = Tn - 1;
  if (pb.causal) {
    tLo = c0;
    if (window > 0)
      tHi = min(cLast + window - 1, Tn - 1);
  }
  const int iLo = tLo / kTcTile, nQ = tHi / kTcTile - iLo + 1;
  const int n = (int)hpg * nQ; // iteration j: head g·hpg + j / nQ, query tile iLo + j % nQ
  auto rowOf = [&](int j) { return (b * pb.H + g * hpg + j / nQ) * pb.T; };
  auto tileOf = [&](int j) { return (iLo + j % nQ) * kTcTile; };

  tcLoadTile(Ks, k + bg * pb.T * D, c0, pb.T, D, async);
  tcLoadTile(Vs, v + bg * pb.T * E, c0, pb.T, E, async);
  tcLoadTile(Qs, q + rowOf(0) * D, tileOf(0), pb.T, D, async);
  tcLoadTile(dOs, dout + rowOf(0) * E, tileOf(0), pb.T, E, async);
  cpAsyncCommit();
  if (threadIdx.x == 0) {
    volatile unsigned int *done = GradScratch<0>::counters() + 1;
    while (*done < phaseAItems)
      __nanosleep(200);
    __threadfence();
  }
  __syncthreads();
  if (threadIdx.x < kTcTile) {
    const int t = tileOf(0) + threadIdx.x;
    lseS[threadIdx.x] = t < Tn ? __ldcg(stats + rowOf(0) + t) : 0.0f;
    deltaS[threadIdx.x] = t < Tn ? __ldcg(stats + kRows + rowOf(0) + t) : 0.0f;
  }

  float dK[DM / 8][4], dV[EM / 8][4];
#pragma unroll
  for (int i = 0; i < DM / 8; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      dK[i][e] = 0.0f;
#pragma unroll
  for (int i = 0; i < EM / 8; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      dV[i][e] = 0.0f;
  const int uRow = c0 + warp * 16 + (lane >> 2); // the lane's keys: uRow, uRow + 8

  for (int j = 0; j < n; ++j) {
    const int buf = j & 1, t0 = tileOf(j);
    float nextLse = 0.0f, nextDelta = 0.0f;
    if (j + 1 < n) {
      const int64_t row = rowOf(j + 1);
      const int tNext = tileOf(j + 1);
      tcLoadTile(Qs + (buf ^ 1) * kTcTile * ldD, q + row * D, tNext, pb.T, D, async);
      tcLoadTile(dOs + (buf ^ 1) * kTcTile * ldE, dout + row * E, tNext, pb.T, E, async);
      const int t = tNext + (int)threadIdx.x;
      if (threadIdx.x < kTcTile && t < Tn) {
        nextLse = __ldcg(stats + row + t);
        nextDelta = __ldcg(stats + kRows + row + t);
      }
    }
    cpAsyncCommit();
    cpAsyncWaitAllButOne();
    __syncthreads();
    const T *Qt = Qs + buf * kTcTile * ldD, *dOt = dOs + buf * kTcTile * ldE;
    const float *lseT = lseS + buf * kTcTile, *deltaT = deltaS + buf * kTcTile;
    const bool mask = tcNeedMask(t0, c0, Tn, pb.causal, window);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int q0 = half * 32;
      float s[4][4], dp[4][4];
#pragma unroll
      for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          s[nt][e] = dp[nt][e] = 0.0f;
      // Sᵀ = K Qᵀ and dPᵀ = V dOᵀ over the 32 queries q0 ..: rows keys, columns queries.
      tcMmaABt<4, DM>(s, Ks + warp * 16 * ldD, ldD, Qt + q0 * ldD, ldD, D >> 4, lane);
      tcMmaABt<4, EM>(dp, Vs + warp * 16 * ldE, ldE, dOt + q0 * ldE, ldE, E >> 4, lane);
#pragma unroll
      for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = q0 + nt * 8 + 2 * (lane & 3) + (e & 1);
          const int u = uRow + ((e >> 1) << 3), t = t0 + col;
          const bool ok = !mask || tcAllowed(t, u, Tn, pb.causal, window);
          const float p = ok ? exp2f(s[nt][e] * scaleLog2 - lseT[col]) : 0.0f;
          s[nt][e] = p;
          dp[nt][e] = p * (dp[nt][e] - deltaT[col]);
        }
      uint32_t pa[2][4];
      tcToA<T>(pa, s);
      tcMmaPB(dV, pa, dOt + q0 * ldE, ldE, E >> 3, lane); // dV += Pᵀ dO
      tcToA<T>(pa, dp);
      tcMmaPB(dK, pa, Qt + q0 * ldD, ldD, D >> 3, lane); // dK += dSᵀ Q
    }
    if (j + 1 < n && threadIdx.x < kTcTile) {
      lseS[(buf ^ 1) * kTcTile + threadIdx.x] = nextLse;
      deltaS[(buf ^ 1) * kTcTile + threadIdx.x] = nextDelta;
    }
    __syncthreads(); // buffers `buf` are consumed before the next iteration refills them
  }

  TDK *dkb = dk + bg * pb.T * D;
  TDV *dvb = dv + bg * pb.T * E;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int u = uRow + 8 * r;
    if (u < Tn) {
#pragma unroll
      for (int i = 0; i < DM / 8; ++i) {
        const int col = i * 8 + 2 * (lane & 3);
        if (i < (D >> 3)) {
          st(dkb + (int64_t)u * D + col, pb.scale * dK[i][2 * r]);
          st(dkb + (int64_t)u * D + col + 1, pb.scale * dK[i][2 * r + 1]);
        }
      }
#pragma unroll
      for (int i = 0; i < EM / 8; ++i) {
        const int col = i * 8 + 2 * (lane & 3);
        if (i < (E >> 3)) {
          st(dvb + (int64_t)u * E + col, dV[i][2 * r]);
          st(dvb + (int64_t)u * E + col + 1, dV[i][2 * r + 1]);
        }
      }
    }
  }
}

} // namespace attn

/// attention on tensor cores: grid (ceil(T / 128), B·H), 256 threads (8 warps of 16 query
/// rows share each K / V tile), attn::tcForwardSmemBytes(D, E) bytes of dynamic shared
/// memory; attn::tcDims(D, E). A warp skips the key tiles its rows cannot see. With lse
/// (attention_lse) each row's natural log-sum-exp goes to lse [B, H, T] f32 as well.
template <int DM, int EM, class TI, class TO>
__device__ void attentionForwardTc(const TI *q, const TI *k, const TI *v, TO *o, float *lse,
                                   int64_t B, int64_t H, int64_t G, int64_t T, int64_t D64,
                                   int64_t E64, bool causal, int64_t window64, float scale) {
  using namespace attn;
  extern __shared__ __align__(16) unsigned char attnTcSmem[];
  const int64_t bh = blockIdx.y;
  const int64_t tiles = (T + kTcFwdRows - 1) / kTcFwdRows;
  if (bh >= B * H || (int64_t)blockIdx.x >= tiles)
    return;
  const int t0 = (int)((causal ? tiles - 1 - blockIdx.x : blockIdx.x) * kTcFwdRows);
  const int64_t b = bh / H, h = bh % H, kv = b * G + h / (H / G);
  const int D = (int)D64, E = (int)E64, ldD = D + kTcPad, ldE = E + kTcPad, Tn = (int)T;
  const int window = tcWindow(window64, T);
  TI *Qs = reinterpret_cast<TI *>(attnTcSmem); // [128][ldD]
  TI *Ks = Qs + kTcFwdRows * ldD;             // 2 x [64][ldD]
  TI *Vs = Ks + 2 * kTcTile * ldD;            // 2 x [64][ldE]
  const TI *kb = k + kv * T * D, *vb = v + kv * T * E;
  const bool async = aligned16(q, k, v);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const float scaleLog2 = scale * kLog2e;

  const int tLast = min(t0 + kTcFwdRows, Tn) - 1;
  int uLo = 0, uHi = Tn - 1;
  if (causal) {
    uHi = tLast;
    if (window > 0)
      uLo = max(t0 - window + 1, 0);
  }
  const int cFirst = uLo / kTcTile * kTcTile;
  const int nTiles = (uHi - cFirst) / kTcTile + 1;

  tcLoadTile<kTcFwdRows>(Qs, q + bh * T * D, t0, T, D, async);
  tcLoadTile(Ks, kb, cFirst, T, D, async);
  tcLoadTile(Vs, vb, cFirst, T, E, async);
  cpAsyncCommit();

  const int tw0 = t0 + warp * 16;                // the warp's rows: tw0 .. tw0 + 15
  const int tRow = tw0 + (lane >> 2);            // the lane's rows: tRow, tRow + 8
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  float acc[EM / 8][4];
#pragma unroll
  for (int n = 0; n < EM / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      acc[n][e] = 0.0f;

  for (int j = 0; j < nTiles; ++j) {
    const int c0 = cFirst + j * kTcTile, buf = j & 1;
    if (j + 1 < nTiles) {
      tcLoadTile(Ks + (buf ^ 1) * kTcTile * ldD, kb, c0 + kTcTile, T, D, async);
      tcLoadTile(Vs + (buf ^ 1) * kTcTile * ldE, vb, c0 + kTcTile, T, E, async);
    }
    cpAsyncCommit();
    cpAsyncWaitAllButOne();
    __syncthreads();
    const TI *Kt = Ks + buf * kTcTile * ldD, *Vt = Vs + buf * kTcTile * ldE;
    // A warp whose rows see none of the tile's keys skips it (the barrier below stays common).
    if (!tcTileHidden(tw0, c0, causal, window)) {
      float s[8][4];
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          s[nt][e] = 0.0f;
      tcMmaABt<8, DM>(s, Qs + warp * 16 * ldD, ldD, Kt, ldD, D >> 4, lane);
      tcScaleMask(s, scaleLog2, tcNeedMaskRows16(tw0, c0, Tn, causal, window), tRow, c0, lane, Tn,
                  causal, window);
      float alpha[2];
      tcOnlineSoftmax(s, m, l, alpha);
#pragma unroll
      for (int n = 0; n < EM / 8; ++n)
        if (n < (E >> 3)) {
          acc[n][0] *= alpha[0];
          acc[n][1] *= alpha[0];
          acc[n][2] *= alpha[1];
          acc[n][3] *= alpha[1];
        }
      uint32_t pa[4][4];
      tcToA<TI>(pa, s);
      tcMmaPB(acc, pa, Vt, ldE, E >> 3, lane);
    }
    __syncthreads(); // this buffer is consumed before the next iteration refills it
  }

  TO *ob = o + bh * T * E;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float lr = quadSum(l[r]);
    const float inv = lr > 0.0f ? 1.0f / lr : 0.0f;
    const int t = tRow + 8 * r;
    // m and l are in the log2 domain of scale·q·k: ln-sum-exp = (m + log2 l) · ln 2.
    if (lse && t < Tn && (lane & 3) == 0)
      lse[bh * T + t] = lr > 0.0f ? (m[r] + log2f(lr)) * kLn2 : -INFINITY;
    if (t < Tn)
#pragma unroll
      for (int n = 0; n < EM / 8; ++n)
        if (n < (E >> 3)) {
          const int64_t at = (int64_t)t * E + n * 8 + 2 * (lane & 3);
          st(ob + at, acc[n][2 * r] * inv);
          st(ob + at + 1, acc[n][2 * r + 1] * inv);
        }
  }
}

/// attention_grad on tensor cores: a persistent grid (at most 1024 blocks) of 128 threads with
/// attn::tcBackwardSmemBytes(D, E) bytes of dynamic shared memory; attn::tcDims(D, E) and
/// B·H·T <= GradScratch::kRows (the launch checks). Work items in ticket order: phase A
/// (b, h, 64-row query tile), causal longest first, then phase B (b, g, 64-row key tile).
/// With o and lse (attention_grad_lse: the forward's output and log-sum-exp) phase A reads
/// the row statistics instead of computing them in a first pass over the keys.
template <int DM, int EM, class TI, class TDQ, class TDK, class TDV>
__device__ void attentionBackwardTc(const TI *q, const TI *k, const TI *v, const TI *dout,
                                    const TI *o, const float *lse, TDQ *dq, TDK *dk, TDV *dv,
                                    int64_t B, int64_t H, int64_t G, int64_t T, int64_t D,
                                    int64_t E, bool causal, int64_t window, float scale) {
  __shared__ unsigned int ticket;
  const attn::GradProblem pb{B, H, G, T, (int)D, (int)E, causal, window, scale};
  const int64_t tiles = (T + attn::kTcTile - 1) / attn::kTcTile;
  const unsigned int phaseA = (unsigned int)(B * H * tiles);
  const unsigned int total = phaseA + (unsigned int)(B * G * tiles);
  const bool async = attn::aligned16(q, k, v, dout);
  unsigned int *counters = attn::GradScratch<0>::counters();
  for (;;) {
    __syncthreads(); // the previous item is done with the shared memory and `ticket`
    if (threadIdx.x == 0)
      ticket = atomicAdd(counters, 1u);
    __syncthreads();
    const unsigned int item = ticket;
    if (item >= total)
      break;
    if (item < phaseA) {
      const int64_t step = item / (B * H), bh = item % (B * H);
      const int64_t tile = causal ? tiles - 1 - step : step;
      attn::tcGradQueryTile<DM, EM>(q, k, v, dout, o, lse, dq, pb, bh, (int)(tile * attn::kTcTile),
                            async);
    } else {
      const int64_t rest = item - phaseA;
      const int64_t tile = rest / (B * G), bg = rest % (B * G);
      attn::tcGradKeyTile<DM, EM>(q, k, v, dout, dk, dv, pb, bg, (int)(tile * attn::kTcTile), phaseA,
                          async);
    }
  }
  // The last block out resets the counters for the next launch.
  if (threadIdx.x == 0 && atomicAdd(counters + 2, 1u) == gridDim.x - 1) {
    counters[0] = 0;
    counters[1] = 0;
    counters[2] = 0;
    __threadfence();
  }
}

} // namespace fk
