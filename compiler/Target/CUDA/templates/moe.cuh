// fusion/moe.cuh - the DeepSeekMoE kinds (MODEL.md §5): router, dispatch, grouped GEMM,
// combine, balance loss, their gradients, and the router-bias update.
//
// The CPU reference kernels (runtime/src/cpu/moe_kernels.cc, grad_moe_kernels.cc,
// optimizer_kernels.cc) define the math; these kernels follow their arithmetic (fp64 where
// they use double, the same operation order where a result is a short sequential sum, no
// fused multiply-add where the CPU rounds a product before adding it) so that most results
// are bitwise equal and the rest agree up to rounding. No float atomics anywhere: every sum
// has a fixed order, so results are deterministic. The only atomics are integer shared-memory
// counts (exact in any order).
//
// Index buffers (expert ids, group sizes, the permutation) are not validated here (the CPU
// kernels report invalid ones as errors); an invalid index is skipped or clamped so that no
// kernel addresses memory outside its buffers.
#pragma once
#include "fusion/common.cuh"
#include <mma.h>
#include <type_traits>

namespace fk {
namespace moe {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kNoIndex = 0x7fffffff;

//===----------------------------------------------------------------------===//
// Shared helpers
//===----------------------------------------------------------------------===//

/// In-place exclusive prefix sum of the shared array v[0, n) (any n); returns the total to
/// every thread. Called by the whole block (blockDim.x a multiple of 32); `scratch` holds 33
/// values of shared memory. Ends with a barrier, so v is ready for every thread.
template <class T> __device__ T blockExclusiveScan(T *v, int n, T *scratch) {
  const int per = (n + (int)blockDim.x - 1) / (int)blockDim.x;
  const int begin = min(n, (int)threadIdx.x * per), end = min(n, begin + per);
  T local = 0;
  for (int i = begin; i < end; ++i)
    local += v[i];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  T inclusive = local;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    T up = __shfl_up_sync(kFullMask, inclusive, offset);
    if (lane >= offset)
      inclusive += up;
  }
  __syncthreads(); // earlier users of scratch are done
  if (lane == 31)
    scratch[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x >> 5;
    T own = lane < warps ? scratch[lane] : T(0);
    T warpInclusive = own;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      T up = __shfl_up_sync(kFullMask, warpInclusive, offset);
      if (lane >= offset)
        warpInclusive += up;
    }
    if (lane < warps)
      scratch[lane] = warpInclusive - own;
    if (lane == 31)
      scratch[32] = warpInclusive;
  }
  __syncthreads();
  T run = scratch[warp] + inclusive - local;
  const T total = scratch[32];
  for (int i = begin; i < end; ++i) {
    T value = v[i];
    v[i] = run;
    run += value;
  }
  __syncthreads();
  return total;
}

/// Bitwise copy of a row of `d` elements by one warp (16-byte vectors when aligned).
template <class T> __device__ __forceinline__ void copyRow(T *dst, const T *src, int64_t d) {
  const int lane = threadIdx.x & 31;
  const int64_t bytes = d * (int64_t)sizeof(T);
  if (((reinterpret_cast<uintptr_t>(dst) | reinterpret_cast<uintptr_t>(src)) & 15) == 0 &&
      bytes % 16 == 0) {
    uint4 *out = reinterpret_cast<uint4 *>(dst);
    const uint4 *in = reinterpret_cast<const uint4 *>(src);
    for (int64_t j = lane; j < bytes / 16; j += 32)
      out[j] = in[j];
    return;
  }
  for (int64_t j = lane; j < d; j += 32)
    dst[j] = src[j];
}

/// rowOf[q] = the row r of the dispatched tensor with perm[r] = firstPair + q, for the block's
/// `count` pairs (-1 where perm does not name the pair). Every block scans the whole
/// permutation (coalesced, from L2): no grid-wide inversion step is needed.
template <class TP>
__device__ void invertPermutationRange(const TP *perm, int64_t pairs, int64_t firstPair,
                                       int count, int *rowOf) {
  for (int q = threadIdx.x; q < count; q += blockDim.x)
    rowOf[q] = -1;
  __syncthreads();
  for (int64_t r = threadIdx.x; r < pairs; r += blockDim.x) {
    int64_t q = ldIndex(perm[r]) - firstPair;
    if (q >= 0 && q < count)
      rowOf[q] = (int)r;
  }
  __syncthreads();
}

__device__ __forceinline__ double warpSumF64(double v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

//===----------------------------------------------------------------------===//
// moe_route
//===----------------------------------------------------------------------===//

/// A selection candidate: score, expert (kNoIndex: none) and a carried value.
struct Pick {
  float value;
  int index;
  float payload;
};

/// The CPU's order: larger value first, then the lower index.
__device__ __forceinline__ bool ranksBefore(float a, int ia, float b, int ib) {
  return a > b || (a == b && ia < ib);
}

/// The better of two candidates; an empty one always loses.
__device__ __forceinline__ Pick better(Pick a, Pick b) {
  if (b.index == kNoIndex)
    return a;
  if (a.index == kNoIndex)
    return b;
  return ranksBefore(b.value, b.index, a.value, a.index) ? b : a;
}

/// The best candidate of the warp, the same on every lane (lane 0's result is broadcast).
__device__ __forceinline__ Pick warpBest(Pick p) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    Pick other{__shfl_xor_sync(kFullMask, p.value, offset),
               __shfl_xor_sync(kFullMask, p.index, offset),
               __shfl_xor_sync(kFullMask, p.payload, offset)};
    p = better(p, other);
  }
  p.value = __shfl_sync(kFullMask, p.value, 0);
  p.index = __shfl_sync(kFullMask, p.index, 0);
  p.payload = __shfl_sync(kFullMask, p.payload, 0);
  return p;
}

/// Experts per lane of moe_route: E <= 32 · kRouteSlots.
constexpr int kRouteSlots = 8;

/// moe_route: one warp per token; lane l holds experts l + 32 j. s = σ(ℓ) (fp64, rounded to
/// f32 like the CPU), s^b = s + b; with n_groups > 1 group m scores ψ_m = the sum (f32, in
/// selection order) of its group_topk largest s^b and the n_limited_groups best groups stay
/// eligible (lane m holds ψ_m, so n_groups <= 32); then top_k picks (top_k <= 32) over the
/// eligible experts. Every pick is a warp argmax with the CPU's tie rule (lower index).
/// weights[k] = route_scale · s_k / Σ s (fp64, the sum in pick order).
__device__ void moeRoute(const float *logits, const float *bias, float *weights,
                         int32_t *indices, float *scores, int64_t n, int64_t e, int topK,
                         int numGroups, int limitedGroups, int groupTopK, double routeScale) {
  const int lane = threadIdx.x & 31;
  const int64_t row = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= n)
    return; // the whole warp
  const int E = (int)e, groupSize = E / numGroups;
  float s[kRouteSlots], sb[kRouteSlots];
  unsigned eligible = 0; // bit j: expert lane + 32 j may be selected
#pragma unroll
  for (int j = 0; j < kRouteSlots; ++j) {
    const int i = lane + 32 * j;
    s[j] = 0.0f;
    sb[j] = 0.0f;
    if (i < E) {
      double l = logits[row * e + i];
      s[j] = (float)(1.0 / (1.0 + exp(-l)));
      sb[j] = s[j] + bias[i];
      scores[row * e + i] = s[j];
      eligible |= 1u << j;
    }
  }
  if (numGroups > 1) {
    float groupScore = 0.0f; // ψ of group `lane`
    for (int m = 0; m < numGroups; ++m) {
      unsigned taken = 0;
      float psi = 0.0f;
      for (int pick = 0; pick < groupTopK; ++pick) {
        Pick p{0.0f, kNoIndex, 0.0f};
#pragma unroll
        for (int j = 0; j < kRouteSlots; ++j) {
          const int i = lane + 32 * j;
          if (i < E && i / groupSize == m && !((taken >> j) & 1u))
            p = better(p, Pick{sb[j], i, 0.0f});
        }
        p = warpBest(p);
        if (p.index == kNoIndex)
          break;
        if ((p.index & 31) == lane)
          taken |= 1u << (p.index >> 5);
        psi += p.value;
      }
      if (lane == m)
        groupScore = psi;
    }
    unsigned kept = 0; // bit m: group m stays eligible
    for (int pick = 0; pick < limitedGroups; ++pick) {
      Pick p{0.0f, kNoIndex, 0.0f};
      if (lane < numGroups && !((kept >> lane) & 1u))
        p = Pick{groupScore, lane, 0.0f};
      p = warpBest(p);
      if (p.index == kNoIndex)
        break;
      kept |= 1u << p.index;
    }
#pragma unroll
    for (int j = 0; j < kRouteSlots; ++j) {
      const int i = lane + 32 * j;
      if (i < E && !((kept >> (i / groupSize)) & 1u))
        eligible &= ~(1u << j);
    }
  }
  unsigned taken = 0;
  double total = 0.0;
  int mine = 0;       // lane k: the expert of pick k
  float mineS = 0.0f; // and its s
  for (int pick = 0; pick < topK; ++pick) {
    Pick p{0.0f, kNoIndex, 0.0f};
#pragma unroll
    for (int j = 0; j < kRouteSlots; ++j)
      if (((eligible & ~taken) >> j) & 1u)
        p = better(p, Pick{sb[j], lane + 32 * j, s[j]});
    p = warpBest(p);
    if (p.index == kNoIndex)
      break;
    if ((p.index & 31) == lane)
      taken |= 1u << (p.index >> 5);
    if (lane == pick) {
      mine = p.index;
      mineS = p.payload;
    }
    total += (double)p.payload;
  }
  if (lane < topK) {
    weights[row * topK + lane] = (float)(routeScale * (double)mineS / total);
    indices[row * topK + lane] = mine;
  }
}

/// moe_route_grad: one warp per token; Z = Σ_k s_{i_k}, m = Σ_k (s_{i_k}/Z) dw_k, then for each
/// expert i (lanes): ds_i = Σ_{k: i_k = i} (ρ/Z)(dw_k − m) in slot order and
/// dlogits = ds·s(1 − s); all fp64 in the CPU's operation order (no contraction).
template <class TS, class TI, class TW>
__device__ void moeRouteGrad(const TS *scores, const TI *indices, const TW *dweights,
                             float *dlogits, int64_t n, int64_t e, int64_t k,
                             double routeScale) {
  const int lane = threadIdx.x & 31;
  const int64_t row = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= n)
    return;
  const TS *sr = scores + row * e;
  const TI *ir = indices + row * k;
  const TW *gr = dweights + row * k;
  double total = 0.0;
  for (int64_t q = 0; q < k; ++q) {
    int64_t c = ldIndex(ir[q]);
    if (c >= 0 && c < e)
      total = __dadd_rn(total, (double)ld(sr[c]));
  }
  double mean = 0.0;
  for (int64_t q = 0; q < k; ++q) {
    int64_t c = ldIndex(ir[q]);
    if (c >= 0 && c < e)
      mean = __dadd_rn(mean, __dmul_rn((double)ld(sr[c]) / total, (double)ld(gr[q])));
  }
  const double factor = routeScale / total;
  for (int64_t i = lane; i < e; i += 32) {
    double ds = 0.0;
    for (int64_t q = 0; q < k; ++q)
      if (ldIndex(ir[q]) == i)
        ds = __dadd_rn(ds, __dmul_rn(factor, (double)ld(gr[q]) - mean));
    const double si = ld(sr[i]);
    dlogits[row * e + i] = (float)__dmul_rn(__dmul_rn(ds, si), 1.0 - si);
  }
}

//===----------------------------------------------------------------------===//
// moe_dispatch, moe_dispatch_grad, moe_combine, moe_combine_grad
//===----------------------------------------------------------------------===//

/// moe_dispatch: a stable counting sort of the N·K (token, slot) pairs by expert, one pair
/// per thread: block b owns pairs [b·B, (b+1)·B). Every block counts the experts of all pairs
/// (and of those before its own) with warp-aggregated integer atomics in shared memory, so it
/// knows each expert's first row and how many earlier pairs precede its own; inside the block
/// the rank of a pair among its expert's pairs comes from __match_any_sync (lanes in order)
/// and per-warp counts scanned over the warps (warps in order): the CPU's stable order.
/// perm[row] = pair, xs[row] = x[pair / K] (a bitwise row copy, one warp per row), block 0
/// writes group_sizes. Dynamic shared memory: (2 + warps) · E ints.
template <class TX, class TI>
__device__ void moeDispatch(const TX *x, const TI *indices, TX *xs, int32_t *groupSizes,
                            int32_t *perm, int64_t n, int64_t d, int64_t k,
                            int64_t numExperts) {
  extern __shared__ int dispatchSmem[];
  __shared__ int scanScratch[33];
  __shared__ int rowOfPair[1024];
  const int E = (int)numExperts;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int64_t pairs = n * k;
  int *total = dispatchSmem;     // [E]: pairs per expert, then each expert's first row
  int *before = total + E;       // [E]: pairs of each expert before this block's chunk
  int *warpCount = before + E;   // [warps][E]
  const int64_t chunk = (int64_t)blockIdx.x * blockDim.x;
  for (int i = threadIdx.x; i < (2 + warps) * E; i += blockDim.x)
    dispatchSmem[i] = 0;
  __syncthreads();
  // Histograms (integer counts: exact in any order).
  for (int64_t base = 0; base < pairs; base += blockDim.x) {
    const int64_t p = base + threadIdx.x;
    int expert = -1;
    if (p < pairs) {
      int64_t v = ldIndex(indices[p]);
      if (v >= 0 && v < numExperts)
        expert = (int)v;
    }
    const unsigned peers = __match_any_sync(kFullMask, expert);
    if (expert >= 0 && lane == __ffs(peers) - 1) {
      atomicAdd(&total[expert], __popc(peers));
      if (base < chunk)
        atomicAdd(&before[expert], __popc(peers));
    }
  }
  __syncthreads();
  if (blockIdx.x == 0)
    for (int i = threadIdx.x; i < E; i += blockDim.x)
      groupSizes[i] = total[i];
  __syncthreads();
  blockExclusiveScan(total, E, scanScratch); // total[e] = expert e's first row
  for (int i = threadIdx.x; i < E; i += blockDim.x)
    before[i] += total[i];
  // Ranks inside the chunk.
  const int64_t p = chunk + threadIdx.x;
  int expert = -1;
  if (p < pairs) {
    int64_t v = ldIndex(indices[p]);
    if (v >= 0 && v < numExperts)
      expert = (int)v;
  }
  const unsigned peers = __match_any_sync(kFullMask, expert);
  const int rankInWarp = __popc(peers & ((1u << lane) - 1u));
  if (expert >= 0 && lane == __ffs(peers) - 1)
    warpCount[warp * E + expert] = __popc(peers);
  __syncthreads();
  for (int i = threadIdx.x; i < E; i += blockDim.x) {
    int run = before[i];
    for (int w = 0; w < warps; ++w) {
      int count = warpCount[w * E + i];
      warpCount[w * E + i] = run;
      run += count;
    }
  }
  __syncthreads();
  int row = -1;
  if (expert >= 0) {
    row = warpCount[warp * E + expert] + rankInWarp;
    perm[row] = (int32_t)p;
  }
  rowOfPair[threadIdx.x] = row;
  __syncthreads();
  for (int t = warp; t < (int)blockDim.x; t += warps) {
    const int dst = rowOfPair[t];
    if (dst >= 0)
      copyRow(xs + (int64_t)dst * d, x + ((chunk + t) / k) * d, d);
  }
}

/// Tokens per block of the gather kinds (moe_combine, moe_combine_grad, moe_dispatch_grad);
/// one warp per token at a time. Dynamic shared memory: kGatherTokens · K ints (rowOf).
constexpr int kGatherTokens = 128;

/// Elements per lane and step of the gather kinds' vector path: 16 bytes of bf16 / f16, 32 of
/// f32 (two 16-byte accesses). It needs D % 8 = 0 and every base aligned to 8 elements (so
/// every row is); otherwise the kinds take their scalar loops, with the same arithmetic.
constexpr int kGatherVec = 8;
template <class T> struct alignas(kGatherVec * sizeof(T)) GatherPack {
  T v[kGatherVec];
};

template <class T> __device__ __forceinline__ bool packAligned(const T *p) {
  return reinterpret_cast<uintptr_t>(p) % (kGatherVec * sizeof(T)) == 0;
}

/// x = the 8 elements at p (p aligned to the pack), widened to float.
template <class T>
__device__ __forceinline__ void loadPack(float (&x)[kGatherVec], const T *p) {
  const GatherPack<T> q = *reinterpret_cast<const GatherPack<T> *>(p);
#pragma unroll
  for (int i = 0; i < kGatherVec; ++i)
    x[i] = ld(q.v[i]);
}

/// Rounds x to T (st's rounding) and stores the 8 elements at p in one pack.
template <class T>
__device__ __forceinline__ void storePack(T *p, const float (&x)[kGatherVec]) {
  GatherPack<T> q;
#pragma unroll
  for (int i = 0; i < kGatherVec; ++i)
    st(&q.v[i], x[i]);
  *reinterpret_cast<GatherPack<T> *>(p) = q;
}

/// moe_dispatch_grad: dx[n] = Σ_k dxs[r(n, k)] in fp64, slots in order (the CPU's sums).
/// Lanes take 8-element packs (kGatherVec) when D and the bases allow, else single elements.
template <class TG, class TP, class TX>
__device__ void moeDispatchGrad(const TG *dxs, const TP *perm, TX *dx, int64_t n, int64_t k,
                                int64_t d) {
  extern __shared__ int rowOf[];
  const int64_t first = (int64_t)blockIdx.x * kGatherTokens;
  if (first >= n)
    return;
  const int tokens = (int)min((int64_t)kGatherTokens, n - first);
  invertPermutationRange(perm, n * k, first * k, tokens * (int)k, rowOf);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const bool vec = d % kGatherVec == 0 && packAligned(dxs) && packAligned(dx);
  for (int t = warp; t < tokens; t += warps) {
    const int *rows = rowOf + t * k;
    TX *out = dx + (first + t) * d;
    if (vec) {
      for (int64_t j = lane * kGatherVec; j < d; j += 32 * kGatherVec) {
        double acc[kGatherVec] = {};
        for (int64_t q = 0; q < k; ++q)
          if (rows[q] >= 0) {
            float x[kGatherVec];
            loadPack(x, dxs + (int64_t)rows[q] * d + j);
#pragma unroll
            for (int i = 0; i < kGatherVec; ++i)
              acc[i] += (double)x[i];
          }
        float o[kGatherVec];
#pragma unroll
        for (int i = 0; i < kGatherVec; ++i)
          o[i] = (float)acc[i];
        storePack(out + j, o);
      }
      continue;
    }
    for (int64_t j = lane; j < d; j += 32) {
      double acc = 0.0;
      for (int64_t q = 0; q < k; ++q)
        if (rows[q] >= 0)
          acc += (double)ld(dxs[(int64_t)rows[q] * d + j]);
      st(out + j, (float)acc);
    }
  }
}

/// moe_combine: y[n] = Σ_k w[n, k]·ys[r(n, k)], f32 accumulation in slot order with the
/// product rounded before the add (the CPU's axpy). 8-element packs per lane when D and the
/// bases allow, else single elements.
template <class TY, class TW, class TP, class TO>
__device__ void moeCombine(const TY *ys, const TW *weights, const TP *perm, TO *y, int64_t n,
                           int64_t k, int64_t d) {
  extern __shared__ int rowOf[];
  const int64_t first = (int64_t)blockIdx.x * kGatherTokens;
  if (first >= n)
    return;
  const int tokens = (int)min((int64_t)kGatherTokens, n - first);
  invertPermutationRange(perm, n * k, first * k, tokens * (int)k, rowOf);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const bool vec = d % kGatherVec == 0 && packAligned(ys) && packAligned(y);
  for (int t = warp; t < tokens; t += warps) {
    const int64_t token = first + t;
    const int *rows = rowOf + t * k;
    if (vec) {
      for (int64_t j = lane * kGatherVec; j < d; j += 32 * kGatherVec) {
        float acc[kGatherVec] = {};
        for (int64_t q = 0; q < k; ++q)
          if (rows[q] >= 0) {
            const float w = ld(weights[token * k + q]);
            float x[kGatherVec];
            loadPack(x, ys + (int64_t)rows[q] * d + j);
#pragma unroll
            for (int i = 0; i < kGatherVec; ++i)
              acc[i] = __fadd_rn(acc[i], __fmul_rn(w, x[i]));
          }
        storePack(y + token * d + j, acc);
      }
      continue;
    }
    for (int64_t j = lane; j < d; j += 32) {
      float acc = 0.0f;
      for (int64_t q = 0; q < k; ++q)
        if (rows[q] >= 0)
          acc = __fadd_rn(acc, __fmul_rn(ld(weights[token * k + q]),
                                         ld(ys[(int64_t)rows[q] * d + j])));
      st(y + token * d + j, acc);
    }
  }
}

/// moe_combine_grad: dys[r(n, k)] = w[n, k]·dy[n] (fp64 product, one rounding);
/// dweights[n, k] = ⟨dy[n], ys[r(n, k)]⟩ in fp64 (lane partials, then a fixed butterfly).
/// 8-element packs per lane when D and the bases allow (lane partials then run over packs),
/// else single elements.
template <class TY, class TW, class TP, class TG, class TD>
__device__ void moeCombineGrad(const TY *ys, const TW *weights, const TP *perm, const TG *dy,
                               TD *dys, float *dweights, int64_t n, int64_t k, int64_t d) {
  extern __shared__ int rowOf[];
  const int64_t first = (int64_t)blockIdx.x * kGatherTokens;
  if (first >= n)
    return;
  const int tokens = (int)min((int64_t)kGatherTokens, n - first);
  invertPermutationRange(perm, n * k, first * k, tokens * (int)k, rowOf);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const bool vec =
      d % kGatherVec == 0 && packAligned(ys) && packAligned(dy) && packAligned(dys);
  for (int t = warp; t < tokens; t += warps) {
    const int64_t token = first + t;
    const TG *grad = dy + token * d;
    for (int64_t q = 0; q < k; ++q) {
      const int r = rowOf[t * k + q];
      double dot = 0.0;
      if (r >= 0) {
        const double weight = ld(weights[token * k + q]);
        const TY *row = ys + (int64_t)r * d;
        TD *out = dys + (int64_t)r * d;
        if (vec) {
          for (int64_t j = lane * kGatherVec; j < d; j += 32 * kGatherVec) {
            float g[kGatherVec], x[kGatherVec], o[kGatherVec];
            loadPack(g, grad + j);
            loadPack(x, row + j);
#pragma unroll
            for (int i = 0; i < kGatherVec; ++i) {
              dot += (double)g[i] * (double)x[i];
              o[i] = (float)(weight * (double)g[i]);
            }
            storePack(out + j, o);
          }
        } else {
          for (int64_t j = lane; j < d; j += 32) {
            const float g = ld(grad[j]);
            dot += (double)g * (double)ld(row[j]);
            st(out + j, (float)(weight * (double)g));
          }
        }
      }
      dot = warpSumF64(dot);
      if (lane == 0)
        dweights[token * k + q] = (float)dot;
    }
  }
}

//===----------------------------------------------------------------------===//
// moe_balance_loss, moe_balance_loss_grad
//===----------------------------------------------------------------------===//

/// Counts, for the tokens [first, first + count), each expert once per token (the CPU's
/// 1[i ∈ 𝒮_t]) into the shared ints `hits` (zeroed by the caller).
template <class TI>
__device__ void countSelections(const TI *indices, int64_t first, int64_t count, int64_t k,
                                int64_t e, int *hits) {
  for (int64_t t = threadIdx.x; t < count; t += blockDim.x) {
    const TI *sel = indices + (first + t) * k;
    for (int64_t q = 0; q < k; ++q) {
      const int64_t ex = ldIndex(sel[q]);
      if (ex < 0 || ex >= e)
        continue;
      bool repeated = false;
      for (int64_t p = 0; p < q; ++p)
        repeated |= ldIndex(sel[p]) == ex;
      if (!repeated)
        atomicAdd(&hits[ex], 1);
    }
  }
}

/// Entries (block × expert) of moe_balance_loss's chunk partials.
constexpr int64_t kLossMaxPartials = int64_t(1) << 16;

/// moe_balance_loss's module-level scratch: per chunk block and expert the fp64 partial of
/// P_i and the integer count f_i, and the count of blocks that have written theirs (reset by
/// the last one, so every launch finds it 0). A class template, so only modules that launch
/// the loss hold it; one launch at a time per module (the runtime loads one module per plan
/// kernel and computes on one stream).
template <int Tag> struct BalanceScratch {
  __device__ static double *partials() {
    static double storage[kLossMaxPartials];
    return storage;
  }
  __device__ static int *hits() {
    static int storage[kLossMaxPartials];
    return storage;
  }
  __device__ static unsigned int *counter() {
    static unsigned int count = 0;
    return &count;
  }
};

/// Σ_t s_{t,i}/Σ_j s_{t,j} of the tokens [first, first + count) into `partial` (columns c <
/// E·slices, slices = max(1, blockDim / E): column c sums expert c % E over the tokens t ≡ c / E
/// (mod slices) in order, accumulating onto partial[c] (the caller zeroes it)); `tokenTotal`
/// holds blockDim doubles. Token totals are sequential over experts, like the CPU.
template <class TS>
__device__ void balanceColumns(const TS *scores, int64_t first, int64_t count, int E,
                               double *tokenTotal, double *partial) {
  const int threads = blockDim.x, slices = max(1, threads / max(E, 1));
  for (int64_t t0 = 0; t0 < count; t0 += threads) {
    const int num = (int)min((int64_t)threads, count - t0);
    __syncthreads(); // earlier readers of tokenTotal are done
    if ((int)threadIdx.x < num) {
      const TS *sr = scores + (first + t0 + threadIdx.x) * E;
      double total = 0.0;
      for (int i = 0; i < E; ++i)
        total += (double)ld(sr[i]);
      tokenTotal[threadIdx.x] = total;
    }
    __syncthreads();
    for (int c = threadIdx.x; c < E * slices; c += threads) {
      const int i = c % E, slice = c / E;
      double acc = partial[c];
      for (int t = slice; t < num; t += slices)
        acc += (double)ld(scores[(first + t0 + t) * E + i]) / tokenTotal[t];
      partial[c] = acc;
    }
  }
  __syncthreads();
}

/// moe_balance_loss over gridDim.x = rows·chunks blocks (the fast path; the launch keeps
/// rows·chunks·E within kLossMaxPartials): block b takes chunk b % chunks (ceil(T/chunks)
/// tokens) of row b / chunks and writes its f_i counts and P_i partials (balanceColumns, the
/// slices added in order) to BalanceScratch. The last block to finish (an atomic ticket after
/// a fence) adds them per (row, expert) in chunk order, forms each row's L = Σ_i (E/(K·T)·f_i)
/// (P_i/T) sequentially, and writes the mean over rows (rows in order). Deterministic.
/// Dynamic shared memory: (blockDim + max(E, blockDim)) doubles + E ints.
template <class TS, class TI>
__device__ void moeBalanceLossChunks(const TS *scores, const TI *indices, float *out, int64_t n,
                                     int64_t e, int64_t k, int64_t seqLen) {
  extern __shared__ double lossSmem[];
  __shared__ bool isLast;
  const int E = (int)e, threads = blockDim.x;
  double *tokenTotal = lossSmem;                  // [threads]
  double *partial = tokenTotal + threads;         // [E · slices]
  int *hits = (int *)(partial + max(E, threads)); // [E]
  const int slices = max(1, threads / max(E, 1));
  const int64_t rows = n / seqLen, chunks = gridDim.x / rows;
  const int64_t row = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const int64_t span = (seqLen + chunks - 1) / chunks;
  const int64_t begin = min(chunk * span, seqLen);
  const int64_t count = min(span, seqLen - begin);
  for (int i = threadIdx.x; i < E; i += threads)
    hits[i] = 0;
  for (int c = threadIdx.x; c < E * slices; c += threads)
    partial[c] = 0.0;
  __syncthreads();
  countSelections(indices, row * seqLen + begin, count, k, e, hits);
  balanceColumns(scores, row * seqLen + begin, count, E, tokenTotal, partial);
  double *blockP = BalanceScratch<0>::partials();
  int *blockHits = BalanceScratch<0>::hits();
  for (int i = threadIdx.x; i < E; i += threads) {
    double p = 0.0;
    for (int slice = 0; slice < slices; ++slice)
      p += partial[slice * E + i];
    blockP[blockIdx.x * e + i] = p;
    blockHits[blockIdx.x * e + i] = hits[i];
  }
  // The last block to finish combines the partials.
  __threadfence();
  __syncthreads();
  unsigned int *counter = BalanceScratch<0>::counter();
  if (threadIdx.x == 0)
    isLast = atomicAdd(counter, 1u) == gridDim.x - 1;
  __syncthreads();
  if (!isLast)
    return;
  __threadfence();
  const double fScale = (double)e / ((double)k * (double)seqLen);
  // Per (row, expert): the term (E/(K·T)·f_i)(P_i/T), stored over its chunk-0 partial (each
  // pair is one thread's alone).
  for (int64_t q = threadIdx.x; q < rows * e; q += threads) {
    const int64_t r = q / e, i = q % e;
    double p = 0.0;
    int64_t f = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      p += __ldcg(blockP + (r * chunks + c) * e + i);
      f += __ldcg(blockHits + (r * chunks + c) * e + i);
    }
    blockP[r * chunks * e + i] = __dmul_rn(fScale * (double)f, p / (double)seqLen);
  }
  __syncthreads();
  // Per row: L = Σ_i terms in order, stored over the row's expert-0 term.
  for (int64_t r = threadIdx.x; r < rows; r += threads) {
    double loss = 0.0;
    for (int64_t i = 0; i < e; ++i)
      loss = __dadd_rn(loss, __ldcg(blockP + r * chunks * e + i));
    blockP[r * chunks * e] = loss;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double sum = 0.0;
    for (int64_t r = 0; r < rows; ++r)
      sum += __ldcg(blockP + r * chunks * e);
    out[0] = (float)(sum / (double)rows);
    *counter = 0;
  }
}

/// moe_balance_loss. Several blocks (gridDim.x > 1): moeBalanceLossChunks. One block (the
/// fallback when rows·E exceed the scratch, and single small rows), 1024 threads: for each row
/// of seq_len tokens: f_i = #{t: i ∈ 𝒮_t} (integers), P_i = Σ_t s_{t,i}/Σ_j s_{t,j}
/// (fp64: the token totals sequentially like the CPU, then per expert column partial sums
/// over token slices, added in slice order); L = Σ_i (E/(K·T)·f_i)(P_i/T) sequentially; out =
/// mean over rows (rows in order). Dynamic shared memory: (blockDim + max(E, blockDim)) doubles
/// + E ints.
template <class TS, class TI>
__device__ void moeBalanceLoss(const TS *scores, const TI *indices, float *out, int64_t n,
                               int64_t e, int64_t k, int64_t seqLen) {
  if (gridDim.x > 1) {
    moeBalanceLossChunks(scores, indices, out, n, e, k, seqLen);
    return;
  }
  extern __shared__ double lossSmem[];
  const int E = (int)e, threads = blockDim.x;
  double *tokenTotal = lossSmem;              // [threads]: Σ_j s_{t,j} of a token chunk
  double *partial = tokenTotal + threads;     // [E · slices]
  int *hits = (int *)(partial + max(E, threads)); // [E]
  const int slices = max(1, threads / max(E, 1));
  const int64_t rows = n / seqLen;
  const double fScale = (double)e / ((double)k * (double)seqLen);
  double sum = 0.0; // thread 0: Σ of row losses
  for (int64_t row = 0; row < rows; ++row) {
    for (int i = threadIdx.x; i < E; i += threads)
      hits[i] = 0;
    __syncthreads();
    countSelections(indices, row * seqLen, seqLen, k, e, hits);
    // Column partial sums; thread c owns expert c % E, slice c / E.
    double acc[4] = {0.0, 0.0, 0.0, 0.0}; // columns c = threadIdx.x + q·threads
    for (int64_t t0 = 0; t0 < seqLen; t0 += threads) {
      const int count = (int)min((int64_t)threads, seqLen - t0);
      __syncthreads(); // earlier readers of tokenTotal are done
      if ((int)threadIdx.x < count) {
        const TS *sr = scores + (row * seqLen + t0 + threadIdx.x) * e;
        double total = 0.0;
        for (int i = 0; i < E; ++i)
          total += (double)ld(sr[i]);
        tokenTotal[threadIdx.x] = total;
      }
      __syncthreads();
      for (int q = 0; q < 4; ++q) {
        const int c = threadIdx.x + q * threads;
        if (c >= E * slices)
          break;
        const int i = c % E, slice = c / E;
        for (int t = slice; t < count; t += slices)
          acc[q] += (double)ld(scores[(row * seqLen + t0 + t) * e + i]) / tokenTotal[t];
      }
    }
    for (int q = 0; q < 4; ++q) {
      const int c = threadIdx.x + q * threads;
      if (c < E * slices)
        partial[c] = acc[q];
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      double loss = 0.0;
      for (int i = 0; i < E; ++i) {
        double p = 0.0;
        for (int slice = 0; slice < slices; ++slice)
          p += partial[slice * E + i];
        loss = __dadd_rn(loss, __dmul_rn(fScale * (double)hits[i], p / (double)seqLen));
      }
      sum += loss;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0)
    out[0] = (float)(sum / (double)rows);
}

/// Tokens per block of moe_balance_loss_grad.
constexpr int kLossGradTokens = 256;

/// moe_balance_loss_grad: block b handles tokens [c·256, (c+1)·256) of row b / chunks. It
/// counts its row's f (integers, all T tokens), then per token (one thread) Σ_j s and
/// Σ_j f_j s_j sequentially in fp64, then the elements (coalesced): ds_{t,i} =
/// (dloss/rows)(f_i − Σ_j f_j s_j/Σ_j s_j)/(T Σ_j s_j). f_i = E/(K·T)·count_i is a product
/// (the CPU adds E/(K·T) count_i times; the two agree to a few fp64 ulps). Dynamic shared
/// memory: E ints + E doubles (+ 2 · 256 static doubles).
template <class TS, class TI, class TL>
__device__ void moeBalanceLossGrad(const TS *scores, const TI *indices, const TL *dloss,
                                   float *dscores, int64_t n, int64_t e, int64_t k,
                                   int64_t seqLen) {
  extern __shared__ double gradSmem[];
  __shared__ double tokenTotal[kLossGradTokens], tokenMean[kLossGradTokens];
  const int E = (int)e;
  double *f = gradSmem;          // [E]
  int *hits = (int *)(f + E);    // [E]
  const int64_t rows = n / seqLen;
  const int64_t chunks = (seqLen + kLossGradTokens - 1) / kLossGradTokens;
  const int64_t row = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  if (row >= rows)
    return;
  for (int i = threadIdx.x; i < E; i += blockDim.x)
    hits[i] = 0;
  __syncthreads();
  countSelections(indices, row * seqLen, seqLen, k, e, hits);
  __syncthreads();
  const double fScale = (double)e / ((double)k * (double)seqLen);
  for (int i = threadIdx.x; i < E; i += blockDim.x)
    f[i] = fScale * (double)hits[i];
  __syncthreads();
  const int64_t first = row * seqLen + chunk * kLossGradTokens;
  const int count = (int)min((int64_t)kLossGradTokens, seqLen - chunk * kLossGradTokens);
  for (int t = threadIdx.x; t < count; t += blockDim.x) {
    const TS *sr = scores + (first + t) * e;
    double total = 0.0, weighted = 0.0;
    for (int i = 0; i < E; ++i) {
      const double s = ld(sr[i]);
      total = __dadd_rn(total, s);
      weighted = __dadd_rn(weighted, __dmul_rn(f[i], s));
    }
    tokenTotal[t] = total;
    tokenMean[t] = weighted / total;
  }
  __syncthreads();
  const double upstream = (double)ld(dloss[0]) / (double)rows;
  for (int64_t j = threadIdx.x; j < (int64_t)count * E; j += blockDim.x) {
    const int t = (int)(j / E), i = (int)(j % E);
    dscores[(first + t) * e + i] = (float)(__dmul_rn(upstream, f[i] - tokenMean[t]) /
                                           ((double)seqLen * tokenTotal[t]));
  }
}

//===----------------------------------------------------------------------===//
// moe_bias_update
//===----------------------------------------------------------------------===//

/// moe_bias_update (one block): if ctl[2] (ok) is 1 and s = ctl[5] is an integer in
/// [0, 2^24]: window += counts (f32); when (s+1) mod every = 0: c̄ = mean(window) (fp64,
/// sequential), bias_i −= speed where window_i > (1+upper)c̄, += speed where window_i <
/// (1−lower)c̄, window = 0. Otherwise the state passes through (the CPU reports an invalid
/// ctl as an error). Each element is read and written by one thread, so the outputs may be
/// the state inputs themselves.
__device__ void moeBiasUpdate(const float *counts, const float *ctl, const float *biasIn,
                              const float *windowIn, float *biasOut, float *windowOut,
                              int64_t e, int64_t every, double speed, double upper,
                              double lower) {
  __shared__ double mean;
  const float ok = ctl[2], step = ctl[5];
  const bool apply = ok == 1.0f && step >= 0.0f && step <= 16777216.0f && step == floorf(step);
  if (!apply) {
    for (int64_t i = threadIdx.x; i < e; i += blockDim.x) {
      biasOut[i] = biasIn[i];
      windowOut[i] = windowIn[i];
    }
    return;
  }
  for (int64_t i = threadIdx.x; i < e; i += blockDim.x)
    windowOut[i] = windowIn[i] + counts[i];
  const int64_t s = (int64_t)step;
  if ((s + 1) % every != 0 || e == 0) {
    for (int64_t i = threadIdx.x; i < e; i += blockDim.x)
      biasOut[i] = biasIn[i];
    return;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double sum = 0.0;
    for (int64_t i = 0; i < e; ++i)
      sum += (double)windowOut[i];
    mean = sum / (double)e;
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < e; i += blockDim.x) {
    const float c = windowOut[i];
    float b = biasIn[i];
    if ((double)c > (1.0 + upper) * mean)
      b = (float)((double)b - speed);
    else if ((double)c < (1.0 - lower) * mean)
      b = (float)((double)b + speed);
    biasOut[i] = b;
    windowOut[i] = 0.0f;
  }
}

//===----------------------------------------------------------------------===//
// grouped_matmul, grouped_matmul_grad
//===----------------------------------------------------------------------===//
//
// A block computes one BM×BN tile of C = A·B (fp32 accumulation) for one group: C(m, n) =
// Σ_k A(m, k) B(k, n), each operand either k-contiguous in memory or not (kAK, kBK), tiles of
// BK along k staged in shared memory in the operand's own layout (no transpose):
//   grouped_matmul  y_e = x_e · W[e]ᵀ      A = x rows (kAK), B(k, n) = W[e][n][k] (kBK)
//   dxs             dxs_e = dout_e · W[e]  A = dout rows (kAK), B(k, n) = W[e][k][n]
//   dW              dW[e] = dout_eᵀ · xs_e A(m, k) = dout[k][m], B(k, n) = xs[k][n]
// Two configurations: GemmMma (bf16 / f16 operands of one type, 128×128 tiles, 8 warps of
// 64×32) and GemmSimt (anything else, e.g. f32: 64×64×16 tiles, 4×4 outputs per thread, fp32
// FMA). GemmMma takes the fast tile (gemmTileTc: mma.sync m16n8k16 + ldmatrix with
// double-buffered fragments, a 3-slot cp.async pipeline of 64-wide swizzled k-tiles, one
// barrier per k-tile) on sm_80+ when D_in and D_out are multiples of 8 and
// every buffer is 16-byte aligned (checked in the kernel, uniform over the launch); else the
// WMMA tile (16×16×16 fragments, k-tiles of 32 through registers, not pipelined). Both use
// 256 threads and the dynamic shared buffer gemmSmem (sized by the generator).

struct GemmMma {
  static constexpr int BM = 128, BN = 128;
  static constexpr bool kMma = true;
};
struct GemmSimt {
  static constexpr int BM = 64, BN = 64;
  static constexpr bool kMma = false;
};

/// Shared bytes of a GEMM tile: GemmMma's two operand tiles (5120 16-bit values each) and
/// 8 warps × 256 floats of epilogue staging; GemmSimt needs 2 × 1088 floats.
constexpr int kGemmSmemBytes = 2 * 5120 * 2 + 8 * 256 * 4;
/// Most groups (experts) a grouped GEMM supports (its group table is in shared memory).
constexpr int kMaxGroups = 512;

template <class T> __device__ __forceinline__ T fromFloat(float v);
template <> __device__ __forceinline__ float fromFloat<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);
}
template <> __device__ __forceinline__ __half fromFloat<__half>(float v) {
  return __float2half(v);
}

/// dst[r·LD + c] = src[r·ld + c] for r < rows, c < cols, 0 elsewhere in ROWS × COLS
/// (converted to TD). Called by the whole block.
template <int ROWS, int COLS, int LD, class TS, class TD>
__device__ __forceinline__ void loadTile(TD *dst, const TS *src, int64_t stride, int rows,
                                         int cols) {
  if constexpr (std::is_same<TS, TD>::value && sizeof(TS) == 2 && COLS % 8 == 0 &&
                LD % 8 == 0) {
    if (rows == ROWS && cols == COLS && stride % 8 == 0 &&
        (reinterpret_cast<uintptr_t>(src) & 15) == 0) {
      constexpr int kPerRow = COLS / 8;
      for (int c = threadIdx.x; c < ROWS * kPerRow; c += blockDim.x) {
        const int r = c / kPerRow, col = (c % kPerRow) * 8;
        *reinterpret_cast<uint4 *>(dst + r * LD + col) =
            *reinterpret_cast<const uint4 *>(src + (int64_t)r * stride + col);
      }
      return;
    }
  }
  for (int i = threadIdx.x; i < ROWS * COLS; i += blockDim.x) {
    const int r = i / COLS, c = i % COLS;
    dst[r * LD + c] = (r < rows && c < cols) ? fromFloat<TD>(ld(src[(int64_t)r * stride + c]))
                                             : fromFloat<TD>(0.0f);
  }
}

/// Tensor-core tile (GemmMma): operands of one 16-bit type T. The fallback of the fast tile
/// below (before sm_80, D_in or D_out not a multiple of 8, unaligned buffers); not inlined, so
/// that the fast tile's register allocation does not pay for it.
template <class T, class TC, bool kAK, bool kBK>
__device__ __noinline__ void gemmTileMma(const T *A, int64_t lda, const T *B, int64_t ldb, TC *C,
                            int64_t ldc, int M, int N, int K, unsigned char *smem) {
  using namespace nvcuda;
  constexpr int BM = 128, BN = 128, BK = 32, PAD = 8;
  constexpr int LDA = kAK ? BK + PAD : BM + PAD;
  constexpr int LDB = kBK ? BK + PAD : BN + PAD;
  using ALayout = typename std::conditional<kAK, wmma::row_major, wmma::col_major>::type;
  using BLayout = typename std::conditional<kBK, wmma::col_major, wmma::row_major>::type;
  T *As = reinterpret_cast<T *>(smem);
  T *Bs = As + 5120;
  float *stage = reinterpret_cast<float *>(smem + 2 * 5120 * 2);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int wm = warp >> 2, wn = warp & 3; // the warp's 64 × 32 sub-tile
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::fill_fragment(acc[i][j], 0.0f);
  for (int k0 = 0; k0 < K; k0 += BK) {
    const int kc = min(BK, K - k0);
    if constexpr (kAK)
      loadTile<BM, BK, LDA>(As, A + k0, lda, M, kc);
    else
      loadTile<BK, BM, LDA>(As, A + (int64_t)k0 * lda, lda, kc, M);
    if constexpr (kBK)
      loadTile<BN, BK, LDB>(Bs, B + k0, ldb, N, kc);
    else
      loadTile<BK, BN, LDB>(Bs, B + (int64_t)k0 * ldb, ldb, kc, N);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, ALayout> a[4];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, BLayout> b[2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int m = wm * 64 + 16 * i;
        wmma::load_matrix_sync(a[i], kAK ? As + m * LDA + kk : As + kk * LDA + m, LDA);
      }
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int n = wn * 32 + 16 * j;
        wmma::load_matrix_sync(b[j], kBK ? Bs + n * LDB + kk : Bs + kk * LDB + n, LDB);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
          wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  float *mine = stage + warp * 256;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(mine, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int q = lane; q < 256; q += 32) {
        const int m = wm * 64 + 16 * i + (q >> 4), n = wn * 32 + 16 * j + (q & 15);
        if (m < M && n < N)
          st(C + (int64_t)m * ldc + n, mine[q]);
      }
      __syncwarp();
    }
}

/// CUDA-core tile (GemmSimt): any operand types, staged as f32.
template <class TA, class TB, class TC, bool kAK, bool kBK>
__device__ void gemmTileSimt(const TA *A, int64_t lda, const TB *B, int64_t ldb, TC *C,
                             int64_t ldc, int M, int N, int K, unsigned char *smem) {
  constexpr int BM = 64, BN = 64, BK = 16;
  constexpr int LDA = kAK ? BK + 1 : BM + 1;
  constexpr int LDB = kBK ? BK + 1 : BN + 1;
  float *As = reinterpret_cast<float *>(smem);
  float *Bs = As + 1088;
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
      acc[i][j] = 0.0f;
  for (int k0 = 0; k0 < K; k0 += BK) {
    const int kc = min(BK, K - k0);
    if constexpr (kAK)
      loadTile<BM, BK, LDA>(As, A + k0, lda, M, kc);
    else
      loadTile<BK, BM, LDA>(As, A + (int64_t)k0 * lda, lda, kc, M);
    if constexpr (kBK)
      loadTile<BN, BK, LDB>(Bs, B + k0, ldb, N, kc);
    else
      loadTile<BK, BN, LDB>(Bs, B + (int64_t)k0 * ldb, ldb, kc, N);
    __syncthreads();
#pragma unroll 4
    for (int kk = 0; kk < BK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int m = ty + 16 * i;
        a[i] = kAK ? As[m * LDA + kk] : As[kk * LDA + m];
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int n = tx + 16 * j;
        b[j] = kBK ? Bs[n * LDB + kk] : Bs[kk * LDB + n];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int m = ty + 16 * i, n = tx + 16 * j;
      if (m < M && n < N)
        st(C + (int64_t)m * ldc + n, acc[i][j]);
    }
}

//===----------------------------------------------------------------------===//
// The fast tensor-core tile (GemmMma with 16-bit operands, sm_80+): mma.sync + ldmatrix +
// a cp.async pipeline
//===----------------------------------------------------------------------===//
//
// One block (256 threads, 8 warps) computes the BM×BN = 128×128 tile C(m, n) = Σ_{k<K}
// A(m, k) B(k, n) for m < M, n < N, fp32 accumulators in registers. Warp w owns the 64×32
// sub-tile at rows 64·(w >> 2), columns 32·(w & 3): 4 m16 × 4 n8 mma tiles, 64 floats per
// thread. k advances in tiles of BK = 64 (four k16 steps), staged in shared memory in
// kTcStages = 3 slots by cp.async (16-byte chunks, one commit group per k-tile).
//
// Pipeline (one __syncthreads per k-tile, placed before the tile's last k16 step):
//   prologue: issue k-tiles 0, 1, 2 into slots 0, 1, 2; wait for k-tile 0; barrier; load
//     the fragments of k-tile 0's first k16 step.
//   k-tile kt, k16 steps s = 0..3: the fragments of step s + 1 are loaded (ldmatrix) into
//     the second register set while step s's 16 mmas run (the next B fragments first, then
//     the next A fragments of row group i right after row group i's mmas, so only one A
//     group is held twice). Before step 3: wait for k-tile kt + 1 (wait_group
//     kTcStages - 2: kt + 2 may stay in flight), barrier (everyone has landed its chunks of
//     kt + 1 and issued every ldmatrix of kt), refill kt's slot with k-tile kt + 3, load
//     the fragments of kt + 1's step 0, then step 3's mmas. So two k-tiles are always in
//     flight behind the one being multiplied, and the shared-memory latency of every k16
//     step hides behind the previous step's mmas.
// Each accumulator is one fp32 mma chain over k ascending (where the loads are issued does
// not change the sums). Epilogue: after the last barrier the slots hold a [128][136]
// staging tile of C (converted to the output type, written with conflict-free pair
// stores), which the block then writes to C in whole 16-byte chunks of full rows.
//
// Shared layouts (16-bit elements, each operand tile in its own global layout, no
// transpose, no padding; 16-byte chunk c of row r is stored at chunk c ^ (r & 7) of the
// row, an XOR swizzle):
//   k-contiguous operand (A when kAK, B when kBK): [128 rows (m or n)][64 (k)]: 8 chunks
//     a row.
//   m/n-contiguous operand: [64 rows (k)][128 (m or n)]: 16 chunks a row.
// Every ldmatrix phase reads one logical chunk of 8 consecutive rows r0 .. r0 + 7 (r0 a
// multiple of 8): their physical chunks are 8 distinct values mod 8, so the 8 row reads hit
// 8 distinct 16-byte bank groups (no conflicts); a warp's cp.async chunks cover whole rows.
// An operand tile is kTcOperandElems = 8192 elements (16 KB); a slot is A then B (32 KB).
//
// Fragment layouts (PTX ISA, mma.m16n8k16 with .bf16/.f16 inputs, g = lane >> 2,
// t = lane & 3):
//   A (16×16, row):  a0 = A(g, 2t..2t+1), a1 = A(g+8, 2t..), a2 = A(g, 2t+8..), a3 = A(g+8, 2t+8..)
//   B (16×8,  col):  b0 = B(2t..2t+1, g), b1 = B(2t+8..2t+9, g)
//   C (16×8,  f32):  c0, c1 = C(g, 2t), C(g, 2t+1); c2, c3 = C(g+8, 2t), C(g+8, 2t+1)
//   ldmatrix.x4: lanes 8q .. 8q+7 give the row addresses of 8×8 matrix q; register q of
//     lane l holds stored row l >> 2, elements 2(l & 3), 2(l & 3) + 1 of matrix q; with
//     .trans it holds stored rows 2(l & 3), 2(l & 3) + 1 of column l >> 2 (the transpose).
// So, with q = lane >> 3, r = lane & 7 (and for A k-contiguous, row = lane & 15):
//   A k-contiguous [m][k]: lane → row m = mBase + (lane & 15), k = kk + 8·(lane >> 4);
//     matrices (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15), (m 8-15, k 8-15) = a0..a3.
//   A m-contiguous [k][m] (.trans): lane → k = kk + 8·(q >> 1) + r, m = mBase + 8·(q & 1);
//     matrix q's transpose is (m 8(q&1).., k 8(q>>1)..) = a0..a3 in the same order.
//   B k-contiguous [n][k]: lane → n = nBase + 8·(q >> 1) + r, k = kk + 8·(q & 1); matrices
//     (n 0-7, k 0-7) = b0 and (n 0-7, k 8-15) = b1 of n-tile nBase, then b0, b1 of nBase + 8.
//   B n-contiguous [k][n] (.trans): lane → k = kk + 8·(q & 1) + r, n = nBase + 8·(q >> 1);
//     the same register order.
// In every case the lane's row ≡ r (mod 8), so the swizzle XORs its chunk with r, and (all
// bases being multiples of 8 rows / 8 chunks) a fragment's offset (in elements) is the
// lane's offset for the first fragment with the step XORed into, or added to, it: in a
// k-contiguous tile the k16 step s selects chunks 2s, 2s + 1 (offset ^ 16s) and the 16-row
// group i adds 16·64·i; in an m/n-contiguous tile the step adds 16·128·s and the 16-column
// group i selects chunks 2i, 2i + 1 within the warp's aligned group of 8 or 4 chunks
// (offset ^ 16i). The code keeps byte offsets (so the XORs are 32s, 32i).
//
// Masking: every chunk outside the operand (rows past M / N, k past K) is zero-filled by
// cp.async (src-size 0, nothing read), so products past K add exact zeros and the padded
// rows / columns are never stored. A chunk is 8 consecutive elements of the contiguous
// dimension, so the caller guarantees (gemmTcEligible): K % 8 == 0 for a k-contiguous
// operand, M % 8 == 0 (A m-contiguous), N % 8 == 0 (B n-contiguous and always for the
// 16-byte chunks of the epilogue), leading dimensions multiples of 8 and 16-byte aligned
// base pointers, so each chunk is wholly inside or wholly outside.

constexpr int kTcBM = 128, kTcBN = 128, kTcBK = 64, kTcStages = 3;
constexpr int kTcKSteps = kTcBK / 16;
constexpr int kTcOperandElems = kTcBM * kTcBK;
static_assert(kTcBM == kTcBN, "TcOperandLoader stages A and B tiles of one size");
static_assert(kTcBK == 64 && kTcBM == 128,
              "the swizzle assumes 8-chunk k rows and 16-chunk m/n rows");
constexpr int kTcStageBytes = 2 * kTcOperandElems * 2;
constexpr int kTcSmemBytes = kTcStages * kTcStageBytes;
/// Dynamic shared bytes of a GemmMma launch (the fast tile, or the WMMA fallback); mirrored
/// in kinds/Moe.cpp (kGemmMmaSmem), as is kGemmSmemBytes (kGemmSimtSmem).
constexpr int kGemmMmaSmemBytes = kTcSmemBytes > kGemmSmemBytes ? kTcSmemBytes : kGemmSmemBytes;
static_assert(kGemmMmaSmemBytes == 98304 && kGemmSmemBytes == 28672,
              "update kinds/Moe.cpp's mirrors");

__device__ __forceinline__ bool aligned16(const void *p) {
  return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define FK_MOE_TC 1

__device__ __forceinline__ unsigned smemAddress(const void *p) {
  return (unsigned)__cvta_generic_to_shared(p);
}

/// 16 bytes global → shared (a shared-space address); zero-filled (nothing read) unless
/// `valid`.
__device__ __forceinline__ void cpAsync16(unsigned dst, const void *src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cpAsyncCommit() {
  asm volatile("cp.async.commit_group;" ::: "memory");
}
template <int N> __device__ __forceinline__ void cpAsyncWait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

/// ldmatrix.x4 from a shared-space address.
template <bool Trans> __device__ __forceinline__ void ldsm4(unsigned (&r)[4], unsigned p) {
  if constexpr (Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(p));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(p));
}

/// c += a · b for one m16n8k16 tile (fp32 accumulators).
template <class T>
__device__ __forceinline__ void mma16816(float (&c)[4], const unsigned (&a)[4], unsigned b0,
                                         unsigned b1) {
  if constexpr (std::is_same<T, __nv_bfloat16>::value)
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// This thread's cp.async chunks of one operand (4 per k-tile, 16-bit elements): chunk i is
/// byte `dst + i·kDstStep` of the swizzled tile, read from `src + i·kRowsPerPass·ld` plus the
/// k-tile's offset. kContig: [128 rows (m or n), valid < mn][64 (k), valid < K]; otherwise
/// [64 rows (k), valid < K][128 (m or n), valid < mn]. The bounds are kept as the room left
/// past the thread's first chunk, so that the loop needs neither M, N nor K.
template <bool kContig, class T> struct TcOperandLoader {
  static constexpr int kChunksPerRow = kContig ? kTcBK / 8 : kTcBM / 8;
  static constexpr int kRowsPerPass = 256 / kChunksPerRow; // rows per i, a multiple of 8
  static constexpr int kDstStep = kRowsPerPass * kChunksPerRow * 16;
  // The thread's first chunk at k = 0; when no chunk of the thread is ever valid (its row
  // or column is past the operand), the operand's first element instead, so that `src` is
  // always inside the operand: zero-filled chunks read nothing but get it as their address.
  const T *src;
  unsigned dst; // byte offset of the first chunk in a slot's operand tile
  // kContig: rows of the operand left from the first chunk's row (mn - row), and k left
  // from its column (K - col). Otherwise k left from its row (K - row; 0 when the column is
  // past mn, so nothing is read), and the second is unused.
  int left0, left1;

  __device__ __forceinline__ TcOperandLoader(const T *base, int64_t ld, int mn, int K) {
    const int c = threadIdx.x;
    const int row = c / kChunksPerRow, chunk = c % kChunksPerRow, col = chunk * 8;
    // row & 7 is the same for every i (kRowsPerPass is a multiple of 8).
    dst = (unsigned)(row * kChunksPerRow + (chunk ^ (row & 7))) * 16;
    const bool live = kContig ? row < mn && col < K : row < K && col < mn;
    src = live ? base + (int64_t)row * ld + col : base;
    left0 = kContig ? mn - row : (col < mn ? K - row : 0);
    left1 = kContig ? K - col : 0;
  }
  /// Issues k-tile k0 into the operand tile at shared address `tile`.
  __device__ __forceinline__ void load(unsigned tile, int ld, int k0) const {
#pragma unroll
    for (int i = 0; i < kTcBM * kTcBK / 8 / 256; ++i) {
      const bool valid = kContig ? (kRowsPerPass * i < left0 && k0 < left1)
                                 : (k0 + kRowsPerPass * i < left0);
      const T *p = src + (int64_t)(i * kRowsPerPass) * ld +
                   (kContig ? (int64_t)k0 : (int64_t)k0 * ld);
      cpAsync16(tile + dst + i * kDstStep, valid ? p : src, valid);
    }
  }
};

/// Stores an fp32 pair, converted to TC, at the shared-space address `p` (8-byte aligned for
/// f32, 4-byte for 16-bit types).
template <class TC> __device__ __forceinline__ void stSharedPair(unsigned p, float a, float b) {
  if constexpr (std::is_same<TC, float>::value) {
    asm volatile("st.shared.v2.f32 [%0], {%1, %2};" ::"r"(p), "f"(a), "f"(b) : "memory");
  } else {
    using Pair = typename std::conditional<std::is_same<TC, __half>::value, __half2,
                                           __nv_bfloat162>::type;
    Pair v;
    if constexpr (std::is_same<TC, __half>::value)
      v = __floats2half2_rn(a, b);
    else
      v = __floats2bfloat162_rn(a, b);
    asm volatile("st.shared.b32 [%0], %1;" ::"r"(p), "r"(*reinterpret_cast<unsigned *>(&v))
                 : "memory");
  }
}
/// 16 bytes from the shared-space address `p` (16-byte aligned).
__device__ __forceinline__ uint4 ldShared16(unsigned p) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "r"(p)
               : "memory");
  return v;
}

/// The fast tile (see above). `smem` holds kTcSmemBytes; called by the whole block. Not
/// inlined: register allocation then sees one tile at a time (grouped_matmul_grad holds two
/// instantiations, which spill when inlined together under the 128-register bound).
template <class T, class TC, bool kAK, bool kBK>
__device__ __noinline__ void gemmTileTc(const T *A, int64_t lda, const T *B, int64_t ldb,
                                        TC *C, int64_t ldc, int M, int N, int K,
                                        unsigned char *smem) {
  const unsigned tiles = smemAddress(smem);
  constexpr unsigned kOperandBytes = kTcOperandElems * 2;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;
  const int q = lane >> 3, r = lane & 7;
  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int v = 0; v < 4; ++v)
        acc[i][j][v] = 0.0f;

  // Leading dimensions are below 2^31 (the generator checks D_in, D_out); 32-bit copies
  // keep the main loop within its registers.
  const int lda32 = (int)lda, ldb32 = (int)ldb, ldc32 = (int)ldc;
  const int kTiles = (K + kTcBK - 1) / kTcBK;
  const TcOperandLoader<kAK, T> aLoader(A, lda, M, K);
  const TcOperandLoader<kBK, T> bLoader(B, ldb, N, K);
  constexpr unsigned kSlotBytes = 2 * kOperandBytes;
  // k-tile kt into the slot at shared address s (slot kt % kTcStages).
  auto load = [&](int kt, unsigned s) {
    if (kt < kTiles) {
      aLoader.load(s, lda32, kt * kTcBK);
      bLoader.load(s + kOperandBytes, ldb32, kt * kTcBK);
    }
    cpAsyncCommit(); // one group per k-tile, empty past the end: the wait count stays exact
  };
#pragma unroll
  for (int s = 0; s < kTcStages; ++s)
    load(s, tiles + s * kSlotBytes);

  // Per-lane ldmatrix byte offsets within a slot's operand tile for fragment group 0, k16
  // step 0 (see the header: the swizzle XORs the lane's chunk with r).
  const unsigned aOffset =
      2 * (kAK ? (wm + (lane & 15)) * kTcBK + (((lane >> 4) ^ r) << 3)
               : (8 * (q >> 1) + r) * kTcBM + wm + (((q & 1) ^ r) << 3));
  const unsigned bOffset =
      kOperandBytes + 2 * (kBK ? (wn + 8 * (q >> 1) + r) * kTcBK + (((q & 1) ^ r) << 3)
                               : (8 * (q & 1) + r) * kTcBM +
                                     ((((wn >> 3) + (q >> 1)) ^ r) << 3));
  // Fragment address of A row group i (B column pair j) at k16 step s, in bytes.
  auto aAddress = [&](unsigned base, int i, int s) {
    return kAK ? base + ((aOffset ^ (32u * s)) + 2u * 16 * kTcBK * i)
               : base + ((aOffset ^ (32u * i)) + 2u * 16 * kTcBM * s);
  };
  auto bAddress = [&](unsigned base, int j, int s) {
    return kBK ? base + ((bOffset ^ (32u * s)) + 2u * 16 * kTcBK * j)
               : base + ((bOffset ^ (32u * j)) + 2u * 16 * kTcBM * s);
  };
  unsigned a[2][4][4], b[2][4][2];
  auto loadB = [&](unsigned (&bf)[4][2], unsigned base, int s) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      unsigned t[4];
      ldsm4<!kBK>(t, bAddress(base, j, s));
      bf[2 * j][0] = t[0];
      bf[2 * j][1] = t[1];
      bf[2 * j + 1][0] = t[2];
      bf[2 * j + 1][1] = t[3];
    }
  };

  cpAsyncWait<kTcStages - 1>(); // this thread's chunks of k-tile 0 have landed
  __syncthreads();
  loadB(b[0], tiles, 0);
#pragma unroll
  for (int i = 0; i < 4; ++i)
    ldsm4<!kAK>(a[0][i], aAddress(tiles, i, 0));

  unsigned cur = tiles; // k-tile kt's slot
  for (int kt = 0; kt < kTiles; ++kt) {
    const unsigned following = cur == tiles + (kTcStages - 1) * kSlotBytes ? tiles
                                                                           : cur + kSlotBytes;
#pragma unroll
    for (int s = 0; s < kTcKSteps; ++s) {
      const int c = s & 1, n = c ^ 1;
      // The source of the next step's fragments: this k-tile, or step 0 of the next one.
      unsigned next = cur;
      int ns = s + 1;
      if (s == kTcKSteps - 1) {
        cpAsyncWait<kTcStages - 2>(); // this thread's chunks of k-tile kt + 1 have landed
        __syncthreads(); // everyone's chunks of kt + 1 landed; every ldmatrix of kt issued
        load(kt + kTcStages, cur); // refills kt's slot
        next = following;          // stale (never used) past the last k-tile
        ns = 0;
      }
      loadB(b[n], next, ns);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j)
          mma16816<T>(acc[i][j], a[c][i], b[c][j][0], b[c][j][1]);
        ldsm4<!kAK>(a[n][i], aAddress(next, i, ns));
      }
    }
    cur = following;
  }
  cpAsyncWait<0>();
  __syncthreads(); // every warp is done with the slots

  // Epilogue, through shared memory (free after the barrier above): every warp writes its C
  // fragments (g, 2t..2t+1) and (g + 8, 2t..2t+1) of each m16n8 tile, converted to TC, into
  // a [128][128 + 8] staging tile (rows of 68 words (bf16) or 136 words (f32): the pair
  // writes of a warp, or of each half-warp for f32, hit distinct banks); then the block
  // stores whole 16-byte chunks of its rows, a warp covering one or two full rows. N % 8 ==
  // 0, ldc % 8 == 0 and C is 16-byte aligned (gemmTcEligible), so a chunk is wholly inside or
  // outside and aligned.
  constexpr int kLd = kTcBN + 8;
  static_assert(kTcBM * kLd * sizeof(TC) <= kTcSmemBytes, "staging tile exceeds the slots");
  const int g = lane >> 2, t2 = 2 * (lane & 3);
  const unsigned mine = tiles + ((wm + g) * kLd + wn + t2) * (unsigned)sizeof(TC);
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        stSharedPair<TC>(mine + ((16 * i + 8 * h) * kLd + 8 * j) * (unsigned)sizeof(TC),
                         acc[i][j][2 * h], acc[i][j][2 * h + 1]);
  __syncthreads();
  constexpr int kChunk = 16 / (int)sizeof(TC); // elements of a 16-byte chunk
  constexpr int kChunksPerRow = kTcBN / kChunk;
#pragma unroll 4
  for (int c = threadIdx.x; c < kTcBM * kChunksPerRow; c += 256) {
    const int m = c / kChunksPerRow, n = (c % kChunksPerRow) * kChunk;
    if (m < M && n < N)
      *reinterpret_cast<uint4 *>(C + (int64_t)m * ldc32 + n) =
          ldShared16(tiles + (m * kLd + n) * (unsigned)sizeof(TC));
  }
  __syncthreads(); // the caller may reuse shared memory
}
#endif // __CUDA_ARCH__ >= 800

/// One tile of a grouped GEMM. GemmMma takes the fast tile when `fast` (the caller checked
/// gemmTcEligible for the whole launch) on sm_80+, else the WMMA tile.
template <class Cfg, bool kAK, bool kBK, class TA, class TB, class TC>
__device__ __forceinline__ void gemmTile(const TA *A, int64_t lda, const TB *B, int64_t ldb,
                                         TC *C, int64_t ldc, int M, int N, int K,
                                         unsigned char *smem, bool fast) {
  if constexpr (Cfg::kMma) {
    static_assert(std::is_same<TA, TB>::value &&
                      (std::is_same<TA, __nv_bfloat16>::value || std::is_same<TA, __half>::value),
                  "GemmMma needs bf16 or f16 operands of one type");
#ifdef FK_MOE_TC
    if (fast) {
      gemmTileTc<TA, TC, kAK, kBK>(A, lda, B, ldb, C, ldc, M, N, K, smem);
      return;
    }
#endif
    gemmTileMma<TA, TC, kAK, kBK>(A, lda, B, ldb, C, ldc, M, N, K, smem);
  } else {
    gemmTileSimt<TA, TB, TC, kAK, kBK>(A, lda, B, ldb, C, ldc, M, N, K, smem);
  }
}

/// Zeroes rows × cols of C (leading dimension ldc). Called by the whole block.
template <class TC>
__device__ void zeroTile(TC *C, int64_t ldc, int rows, int cols) {
  for (int i = threadIdx.x; i < rows * cols; i += blockDim.x)
    st(C + (int64_t)(i / cols) * ldc + i % cols, 0.0f);
}

/// The groups of a grouped GEMM in shared memory. start[g] is the first row of group g
/// (sizes clamped to [0, M], prefix sums clamped to M), start[E] the end of the last group,
/// start[E + 1] = M: the pseudo-group E holds the rows past the last group (their outputs are
/// 0). tile[g] is the first BM-row tile of group g, tile[E + 1] the number of row tiles.
struct GroupTable {
  long long start[kMaxGroups + 2];
  long long tile[kMaxGroups + 2];
  long long scratch[33];
  int found;
};

template <int BM, class TI>
__device__ void buildGroups(const TI *sizes, int E, long long M, GroupTable &g) {
  for (int i = threadIdx.x; i < E; i += blockDim.x) {
    long long size = ldIndex(sizes[i]);
    g.start[i] = size < 0 ? 0 : (size > M ? M : size);
  }
  __syncthreads();
  const long long total = blockExclusiveScan(g.start, E, g.scratch);
  if (threadIdx.x == 0) {
    g.start[E] = total;
    g.start[E + 1] = M;
  }
  __syncthreads();
  for (int i = threadIdx.x; i <= E + 1; i += blockDim.x)
    g.start[i] = min(g.start[i], M);
  __syncthreads();
  for (int i = threadIdx.x; i <= E; i += blockDim.x)
    g.tile[i] = (g.start[i + 1] - g.start[i] + BM - 1) / BM;
  __syncthreads();
  const long long tiles = blockExclusiveScan(g.tile, E + 1, g.scratch);
  if (threadIdx.x == 0)
    g.tile[E + 1] = tiles;
  __syncthreads();
}

/// The group of row tile `tileIndex` (< tile[E + 1]); called by the whole block.
__device__ __forceinline__ int findGroup(GroupTable &g, int E, long long tileIndex) {
  for (int i = threadIdx.x; i <= E; i += blockDim.x)
    if (g.tile[i] <= tileIndex && tileIndex < g.tile[i + 1])
      g.found = i;
  __syncthreads();
  return g.found;
}

/// Whether a launch takes the fast tile: 16-bit operand rows of whole 16-byte chunks (D_in
/// and D_out multiples of 8) and 16-byte aligned buffers. Uniform over the grid.
template <class... P>
__device__ __forceinline__ bool gemmTcEligible(int64_t din, int64_t dout, const P *...buffers) {
  return din % 8 == 0 && dout % 8 == 0 && (aligned16(buffers) && ...);
}

/// The dynamic shared memory of every grouped GEMM launch: kGemmMmaSmemBytes when a product
/// uses GemmMma, else kGemmSmemBytes (the generator sizes the launch).
extern __shared__ __align__(128) unsigned char gemmSmem[];

/// grouped_matmul: y[rows of e] = x[rows of e] · W[e]ᵀ. Grid: x = row tiles (an upper bound,
/// ceil(M/BM) + E + 1), y = ceil(D_out/BN) column tiles. Blocks are renumbered so that the
/// column tiles of one row tile run next to each other (the linear block id
/// blockIdx.x + gridDim.x · blockIdx.y = row tile · gridDim.y + column tile): a wave of
/// blocks then reads a few row tiles of x and one or two experts' W, which stay in L2.
/// Blocks past the real row-tile count exit.
template <class Cfg, class TX, class TW, class TI, class TY>
__device__ void groupedMatmul(const TX *x, const TW *w, const TI *sizes, TY *y, int64_t m,
                              int64_t din, int64_t dout, int64_t experts) {
  __shared__ GroupTable groups;
  const int E = (int)experts;
  buildGroups<Cfg::BM>(sizes, E, m, groups);
  const long long id = (long long)blockIdx.y * gridDim.x + blockIdx.x;
  const long long tileIndex = id / gridDim.y;
  if (tileIndex >= groups.tile[E + 1])
    return;
  const int g = findGroup(groups, E, tileIndex);
  const long long row0 = groups.start[g] + (tileIndex - groups.tile[g]) * Cfg::BM;
  const int rows = (int)min((long long)Cfg::BM, groups.start[g + 1] - row0);
  const long long n0 = (id % gridDim.y) * Cfg::BN;
  const int cols = (int)min((long long)Cfg::BN, dout - n0);
  if (cols <= 0)
    return;
  TY *C = y + row0 * dout + n0;
  if (g == E) {
    zeroTile(C, dout, rows, cols);
    return;
  }
  const bool fast = Cfg::kMma && gemmTcEligible(din, dout, x, w, y);
  gemmTile<Cfg, true, true>(x + row0 * din, din, w + ((long long)g * dout + n0) * din, din, C,
                            dout, rows, cols, (int)din, gemmSmem, fast);
}

/// grouped_matmul_grad: a 1-D grid of two block roles. The first E · ceil(D_out/BMw) ·
/// ceil(D_in/BNw) blocks compute dW tiles (the longest blocks, K = the group's rows, so they
/// start first). Each reduces over all rows of its group in order within one block and
/// writes every element of its tile exactly once: no atomics, deterministic; an empty group
/// gives 0. The rest are dxs tiles like the forward (row tiles × ceil(D_in/BNx) column
/// tiles, column tiles of one row tile adjacent; rows past the last group get 0).
template <class CfgW, class CfgX, class TX, class TW, class TI, class TG, class TD>
__device__ void groupedMatmulGrad(const TX *xs, const TW *w, const TI *sizes, const TG *dout,
                                  TD *dxs, float *dw, int64_t m, int64_t din, int64_t dOut,
                                  int64_t experts) {
  __shared__ GroupTable groups;
  const int E = (int)experts;
  buildGroups<CfgX::BM>(sizes, E, m, groups);
  const bool fast = (CfgW::kMma || CfgX::kMma) &&
                    gemmTcEligible(din, dOut, xs, w, dout, dxs, dw);
  const long long wRowTiles = (dOut + CfgW::BM - 1) / CfgW::BM;
  const long long wColTiles = (din + CfgW::BN - 1) / CfgW::BN;
  const long long dwBlocks = (long long)E * wRowTiles * wColTiles;
  long long block = blockIdx.x;
  if (block < dwBlocks) {
    const long long e = block / (wRowTiles * wColTiles), rest = block % (wRowTiles * wColTiles);
    const long long m0 = (rest / wColTiles) * CfgW::BM, n0 = (rest % wColTiles) * CfgW::BN;
    const long long first = groups.start[e];
    const int count = (int)(groups.start[e + 1] - first);
    gemmTile<CfgW, false, false>(dout + first * dOut + m0, dOut, xs + first * din + n0, din,
                                 dw + (e * dOut + m0) * din + n0, din,
                                 (int)min((long long)CfgW::BM, dOut - m0),
                                 (int)min((long long)CfgW::BN, din - n0), count, gemmSmem,
                                 fast);
    return;
  }
  block -= dwBlocks;
  const long long xColTiles = (din + CfgX::BN - 1) / CfgX::BN;
  if (xColTiles == 0)
    return;
  const long long tileIndex = block / xColTiles;
  if (tileIndex >= groups.tile[E + 1])
    return;
  const int g = findGroup(groups, E, tileIndex);
  const long long row0 = groups.start[g] + (tileIndex - groups.tile[g]) * CfgX::BM;
  const int rows = (int)min((long long)CfgX::BM, groups.start[g + 1] - row0);
  const long long n0 = (block % xColTiles) * CfgX::BN;
  const int cols = (int)min((long long)CfgX::BN, din - n0);
  TD *C = dxs + row0 * din + n0;
  if (g == E) {
    zeroTile(C, din, rows, cols);
    return;
  }
  gemmTile<CfgX, true, false>(dout + row0 * dOut, dOut, w + (long long)g * dOut * din + n0, din,
                              C, din, rows, cols, (int)dOut, gemmSmem, fast);
}

} // namespace moe
} // namespace fk
