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
// Faster versions would: use tensor cores (mma.sync m16n8k16 bf16 on sm_80+, wgmma with TMA
// loads of K/V tiles into swizzled shared memory on sm_90: FlashAttention-2/3 style, P kept in
// registers as the A operand of the PV product); keep bf16 tiles in shared memory (half the
// bytes, 16-byte vector loads) and double-buffer the next K/V tile (cp.async); share one K/V
// tile among the H/G heads of a group (GQA packing: H/G query tiles per block); in the backward
// store (m + log l) from the forward instead of recomputing it, and split dq off as in
// FlashAttention-2 so phase A is one pass; for decoding, split the cached keys over blocks
// (flash-decoding) with a final combine, and pack the group's heads into one query tile.
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
/// from (k1, v1), rounded through TRK / TRV; o[i] for the tile's rows (i0 <= i < i0 + 64).
/// Every pointer is already offset to its (batch, head) or (batch, group). Called by all
/// threads of the block.
template <class TRK, class TRV, class TQ, class TK0, class TV0, class TK1, class TV1, class TO>
__device__ void forwardTile(const TQ *q, int64_t nq, int64_t qPos0, int64_t i0, const TK0 *k0,
                            const TV0 *v0, int64_t n0, const TK1 *k1, const TV1 *v1, int64_t n1,
                            TO *o, int D, int E, bool causal, int64_t window, float scale) {
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
    for (int i = 0; i < 4; ++i)
      rowInv[ty + 16 * i] = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
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

/// attention: grid (ceil(T / 64), B·H), 256 threads, attn::forwardSmemFloats(D, E) floats of
/// dynamic shared memory.
template <class TQ, class TK, class TV, class TO>
__device__ void attentionForward(const TQ *q, const TK *k, const TV *v, TO *o, int64_t B, int64_t H,
                                 int64_t G, int64_t T, int64_t D, int64_t E, bool causal,
                                 int64_t window, float scale) {
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
                                  o + bh * T * E, (int)D, (int)E, causal, window, scale);
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
                              v + bg * S * E, S, o + bh * S * E, (int)D, (int)E, /*causal=*/true,
                              window, scale);
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

} // namespace fk
