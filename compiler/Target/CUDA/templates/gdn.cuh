// fusion/gdn.cuh - Gated DeltaNet: the short causal convolution and the gated delta rule.
//
// Kinds (runtime/src/cpu/causal_conv1d_kernel.cc, gdn_kernel.cc, grad_mixer_kernels.cc and
// decode_kernels.cc are the references):
//   causalConv1d      y[b,t,c] = Σ_{j<K} w[c,j]·x[b,t−K+1+j,c] (x = 0 before the row), fp32 in
//                     tap order. Tiled (see "Causal depthwise convolution" below): a thread
//                     owns 4 channels x one segment of S steps, a register window over time.
//   causalConv1dGrad  dx[b,s,c] = Σ_j w[c,j]·dy[b,s+K−1−j,c], dw[c,j] = Σ_{b,t} dy·x[t−K+1+j];
//                     the causalConv1d tiling with windows of x and dy; dw: fp32 per thread
//                     segment, fp64 per block, fp64 partials summed by the last block of each
//                     channel tile (deterministic).
//   causalConv1dStep  decode: z = concat(tail, x) over time, y from z, tail ← last K−1 rows of
//                     z; one thread per (b, c) with a sliding register window (in place safe:
//                     a thread reads its tail column before writing it).
//   gatedDeltaForward gated_delta_rule and gated_delta_step: the token recurrence
//                     S_t = α_t S_{t−1} + β_t (v_t − α_t S_{t−1} k_t) k_tᵀ, o_t = S_t q_t,
//                     S [d_h × d_k] fp32 (equal to the CPU's chunked WY form up to rounding).
//                     Rows of S (one per value channel e) evolve independently, so a block
//                     owns rowsPerBlock rows of one (b, h) and keeps them in registers: a
//                     group of L lanes (a power of two) per row, lane j holding the columns
//                     a = j + L·s, s < kGdnSlots. Per token: (S·k, S·q) in one L-lane
//                     reduction, then o = α S·q + β u (k·q) with k·q computed once per token
//                     in the staging step. Tokens are staged kGdnTile at a time in shared
//                     memory (q, k, v, α, β), outputs are written back coalesced per tile.
//                     gated_delta_step reads/writes the state Hs = Sᵀ [B,H,d_k,d_h] (f32).
//   gatedDeltaBackward  gated_delta_rule_grad, backpropagation through the recurrence as the
//                     CPU does (grad_mixer_kernels.cc: G = dS + do qᵀ, dq = S_tᵀ do,
//                     dβ = uᵀG k, du = β G k, dv = du, dk = β Gᵀu − α S_{t−1}ᵀ du,
//                     dg = α(⟨S_{t−1},G⟩ − du·S_{t−1}k), dS_{t−1} = α(G − du kᵀ)).
//                     A block owns one (b, key head) and all r = H/H_k value heads that read
//                     it (R = r·d_h rows), so the sums over rows and value heads that make dq,
//                     dk, dβ and dg are complete in the block (fixed order, no atomics).
//                     States: the block walks the sequence once saving S at every chunk_size
//                     tokens, then takes chunks in reverse: recompute the chunk from its
//                     checkpoint saving every per-token state, then walk it backwards. The
//                     states live in a module-level scratch (GdnScratch, kGdnScratchFloats
//                     floats = 512 MiB, allocated when the module loads), one slot per block,
//                     each thread reading back only what it wrote (no fences needed); blocks
//                     loop over (b, key head) items, the launch caps the grid to the slots.
//                     Math is fp32 (the CPU uses fp64 here): states and row sums in fp32.
//
//   gatedDeltaChunkForward / gatedDeltaChunkBackward  the chunked WY form (MODEL.md §4.2) for
//                     bf16 q, k, v (, do), d_k = 128, d_h = 64: one 256-thread block per (b, h)
//                     walks 64-token chunks with every intra-chunk product a block product in
//                     shared memory (see the section below); the backward keeps one state
//                     checkpoint per chunk in the same module scratch (GdnScratch).
//
// Faster versions of the chunked kernels would: skip the zero triangles of the 64 x 64
// products (T·βY, M·Δ, Ã·Δ, Mᵀ·dO, Tᵀ·R and the P, E products, about a quarter of the
// backward's multiply-adds); run the fp32 products on tensor cores with a 3 x bf16 or 3 x tf32
// split (fp32-accurate); solve (I + A)⁻¹ blockwise (16 x 16 diagonal blocks) instead of the
// 64-step column substitution; prefetch the next chunk with cp.async; shrink the forward's
// shared memory to fit two blocks per SM.
#pragma once
#include "fusion/common.cuh"

namespace fk {

/// Largest convolution width the conv kernels hold in registers (the launch checks).
constexpr int kGdnMaxTaps = 8;
/// State columns per lane of the delta-rule kernels: d_k <= L·kGdnSlots, L <= 32.
constexpr int kGdnSlots = 16;
/// Tokens staged in shared memory at a time by the delta-rule kernels (divides every
/// chunk_size: 16, 32, 64, 128).
constexpr int kGdnTile = 16;
/// Floats of gated_delta_rule_grad's module-level state scratch (2^27 = 512 MiB).
constexpr int64_t kGdnScratchFloats = int64_t(1) << 27;

//===----------------------------------------------------------------------===//
// Causal depthwise convolution
//===----------------------------------------------------------------------===//
//
// causal_conv1d and causal_conv1d_grad share one tiled geometry: a block of
// kConvLanes x kConvSegs threads owns kConvLanes·kConvVec consecutive channels (blockIdx.y
// picks the channel tile) and kConvSegs consecutive row segments of S time steps inside one
// sequence (blockIdx.x = b · ceil(T / (kConvSegs·S)) + segment group). Thread (lane, seg)
// owns kConvVec consecutive channels and walks its segment in time order with a register
// window of the last K rows, so every element of x and dy is loaded once (plus a K−1 row
// halo per segment), kConvUnroll rows at a time (the loads of those rows are issued together).
// When C is a multiple of kConvVec and every buffer is aligned to a vector (checked in the
// kernel, uniformly), the channels move as one 8-byte (bf16, f16) or 16-byte (f32) vector;
// otherwise the same threads use scalar loads guarded by c < C. K = 2, 3, 4 have unrolled
// windows; other K (1, 5..8) take a per-channel loop that re-reads the taps (cached).

/// Channels per thread, channel groups per block (blockDim.x), row segments per block
/// (blockDim.y) and rows loaded per window step of the conv kernels (kinds/Gdn.cpp matches).
constexpr int kConvVec = 4;
constexpr int kConvLanes = 64;
constexpr int kConvSegs = 4;
constexpr int kConvUnroll = 4;
/// causal_conv1d_grad's dw scratch: fp64 partials [row blocks][C·K] and one ticket counter
/// per channel tile (the launch keeps row blocks · C · K and the tiles within these).
constexpr int64_t kConvPartials = int64_t(1) << 20;
constexpr int kConvMaxTiles = 4096;

/// Four consecutive elements as floats: one vector load when `vec` (the caller checked the
/// alignment), else `n` (<= 4) scalar loads, the rest 0.
template <class T>
__device__ __forceinline__ void ldChannels(const T *p, bool vec, int n, float v[4]) {
  if (vec) {
    ldVec4(p, v);
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i)
      v[i] = i < n ? ld(p[i]) : 0.0f;
  }
}
template <class T>
__device__ __forceinline__ void stChannels(T *p, bool vec, int n, const float v[4]) {
  if (vec) {
    stVec4(p, v);
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i)
      if (i < n)
        st(p + i, v[i]);
  }
}
/// kConvVec consecutive elements in their storage type (8 or 16 bytes of registers): rows
/// are staged this way between their loads and their use.
template <class T> struct alignas(kConvVec * sizeof(T)) Raw4 {
  T v[kConvVec];
};
template <class T> __device__ __forceinline__ Raw4<T> ldRaw4(const T *p, bool vec, int n) {
  if (vec)
    return *reinterpret_cast<const Raw4<T> *>(p);
  Raw4<T> r;
#pragma unroll
  for (int i = 0; i < kConvVec; ++i)
    r.v[i] = i < n ? p[i] : T(0.0f);
  return r;
}
template <class T> __device__ __forceinline__ Raw4<T> zeroRaw4() {
  Raw4<T> r;
#pragma unroll
  for (int i = 0; i < kConvVec; ++i)
    r.v[i] = T(0.0f);
  return r;
}

/// True when `p` may be read as kConvVec-element vectors.
template <class T> __device__ __forceinline__ bool vecAligned(const T *p) {
  return (reinterpret_cast<uintptr_t>(p) % (kConvVec * sizeof(T))) == 0;
}

/// The part of a conv launch one thread owns: rows [t0, t1) of sequence b (element offset of
/// its first channel at row 0: `base`), channels [c0, c0 + n).
struct ConvTile {
  int64_t base, t0, t1, c0;
  int n;
};

/// The thread's tile under the geometry described above; n = 0 for threads past C, no rows
/// (t0 = t1) past T or in the one block of an empty launch (B = 0 or T = 0).
__device__ __forceinline__ ConvTile convTile(int64_t B, int64_t T, int64_t C, int64_t S) {
  const int64_t groupRows = kConvSegs * S;
  const int64_t groups = max((int64_t)1, (T + groupRows - 1) / groupRows);
  const int64_t b = blockIdx.x / groups, g = blockIdx.x % groups;
  ConvTile tile;
  tile.c0 = ((int64_t)blockIdx.y * kConvLanes + threadIdx.x) * kConvVec;
  tile.n = (int)max((int64_t)0, min((int64_t)kConvVec, C - tile.c0));
  tile.t0 = min(T, g * groupRows + (int64_t)threadIdx.y * S);
  tile.t1 = b < B ? min(T, tile.t0 + S) : tile.t0;
  tile.base = b * T * C + tile.c0;
  return tile;
}

/// causal_conv1d on one tile with an unrolled K-row window (fp32 in tap order).
template <int K, bool vec, class TX, class TW, class TY>
__device__ __forceinline__ void convForwardWindow(const TX *x, const TW *w, TY *y,
                                                  const ConvTile &tile, int64_t C) {
  constexpr int V = kConvVec, U = kConvUnroll;
  float wv[V][K], xw[K][V]; // xw[i] = x[s − K + 1 + i]
#pragma unroll
  for (int v = 0; v < V; ++v)
#pragma unroll
    for (int j = 0; j < K; ++j)
      wv[v][j] = v < tile.n ? ld(w[(tile.c0 + v) * K + j]) : 0.0f;
#pragma unroll
  for (int i = 0; i + 1 < K; ++i) {
    const int64_t s = tile.t0 - K + 1 + i;
    if (s >= 0)
      ldChannels(x + tile.base + s * C, vec, tile.n, xw[i + 1]);
    else
#pragma unroll
      for (int v = 0; v < V; ++v)
        xw[i + 1][v] = 0.0f;
  }
  for (int64_t s = tile.t0; s < tile.t1; s += U) {
    Raw4<TX> xr[U];
#pragma unroll
    for (int u = 0; u < U; ++u)
      xr[u] = s + u < tile.t1 ? ldRaw4(x + tile.base + (s + u) * C, vec, tile.n) : zeroRaw4<TX>();
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (s + u >= tile.t1)
        break;
#pragma unroll
      for (int i = 0; i + 1 < K; ++i)
#pragma unroll
        for (int v = 0; v < V; ++v)
          xw[i][v] = xw[i + 1][v];
#pragma unroll
      for (int v = 0; v < V; ++v)
        xw[K - 1][v] = ld(xr[u].v[v]);
      float out[V];
#pragma unroll
      for (int v = 0; v < V; ++v) {
        float acc = 0.0f;
#pragma unroll
        for (int j = 0; j < K; ++j)
          acc += wv[v][j] * xw[j][v];
        out[v] = acc;
      }
      stChannels(y + tile.base + (s + u) * C, vec, tile.n, out);
    }
  }
}

/// causal_conv1d: x [B,T,C], w [C,K] -> y [B,T,C]; grid (B · ceil(T / (kConvSegs·S)),
/// ceil(C / (kConvLanes·kConvVec))), block (kConvLanes, kConvSegs).
template <class TX, class TW, class TY>
__device__ void causalConv1d(const TX *x, const TW *w, TY *y, int64_t B, int64_t T, int64_t C,
                             int64_t K, int64_t S) {
  const ConvTile tile = convTile(B, T, C, S);
  if (tile.n == 0 || tile.t0 >= tile.t1)
    return;
  const bool vec = C % kConvVec == 0 && vecAligned(x) && vecAligned(y);
  // Each (K, vector or scalar) pair is its own unrolled code (a runtime `vec` inside the
  // window loop would double the live registers).
  switch (K * 2 + (vec ? 1 : 0)) {
  case 5:
    return convForwardWindow<2, true>(x, w, y, tile, C);
  case 4:
    return convForwardWindow<2, false>(x, w, y, tile, C);
  case 7:
    return convForwardWindow<3, true>(x, w, y, tile, C);
  case 6:
    return convForwardWindow<3, false>(x, w, y, tile, C);
  case 9:
    return convForwardWindow<4, true>(x, w, y, tile, C);
  case 8:
    return convForwardWindow<4, false>(x, w, y, tile, C);
  default:
    break;
  }
  // Any other K: one channel at a time, the taps re-read (from cache).
  for (int v = 0; v < tile.n; ++v) {
    const int64_t c = tile.c0 + v;
    for (int64_t s = tile.t0; s < tile.t1; ++s) {
      const int64_t at = tile.base + v + s * C;
      float acc = 0.0f;
      for (int64_t j = 0; j < K; ++j) {
        const int64_t source = s - K + 1 + j;
        if (source >= 0)
          acc += ld(w[c * K + j]) * ld(x[at + (source - s) * C]);
      }
      st(y + at, acc);
    }
  }
}

/// causal_conv1d_grad's module-level scratch (a class template, so only modules that launch
/// the kind hold it): fp64 dw partials [gridDim.x][C·K] and the per-channel-tile tickets.
/// The last block of a tile resets its ticket, so every launch finds them 0. One launch at a
/// time per module (one stream).
template <int Tag> struct ConvDwScratch {
  __device__ static double *partials() {
    static double storage[kConvPartials];
    return storage;
  }
  __device__ static unsigned int *counters() {
    static unsigned int count[kConvMaxTiles];
    return count;
  }
};

/// causal_conv1d_grad on one tile with unrolled K-row windows of x and dy: dx in fp32 (K
/// terms), the tile's dw partial segDw[v·K + j] in fp32 over its <= S rows in time order.
template <int K, bool vec, class TX, class TW, class TG, class TD>
__device__ __forceinline__ void convGradWindow(const TX *x, const TW *w, const TG *dy, TD *dx,
                                               const ConvTile &tile, int64_t T, int64_t C,
                                               float *segDw) {
  constexpr int V = kConvVec, U = kConvUnroll;
  // xw[i] = x[s − K + 1 + i], gw[i] = dy[s + i] at step s (the last of each loaded then).
  float wv[V][K], xw[K][V], gw[K][V], a[V][K];
#pragma unroll
  for (int v = 0; v < V; ++v)
#pragma unroll
    for (int j = 0; j < K; ++j) {
      wv[v][j] = v < tile.n ? ld(w[(tile.c0 + v) * K + j]) : 0.0f;
      a[v][j] = 0.0f;
    }
#pragma unroll
  for (int i = 0; i + 1 < K; ++i) {
    const int64_t sx = tile.t0 - K + 1 + i, sg = tile.t0 + i;
    if (sx >= 0)
      ldChannels(x + tile.base + sx * C, vec, tile.n, xw[i + 1]);
    else
#pragma unroll
      for (int v = 0; v < V; ++v)
        xw[i + 1][v] = 0.0f;
    if (sg < T)
      ldChannels(dy + tile.base + sg * C, vec, tile.n, gw[i + 1]);
    else
#pragma unroll
      for (int v = 0; v < V; ++v)
        gw[i + 1][v] = 0.0f;
  }
  for (int64_t s = tile.t0; s < tile.t1; s += U) {
    Raw4<TX> xr[U];
    Raw4<TG> gr[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      xr[u] = s + u < tile.t1 ? ldRaw4(x + tile.base + (s + u) * C, vec, tile.n) : zeroRaw4<TX>();
      gr[u] = s + u < tile.t1 && s + u + K - 1 < T
                  ? ldRaw4(dy + tile.base + (s + u + K - 1) * C, vec, tile.n)
                  : zeroRaw4<TG>();
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (s + u >= tile.t1)
        break;
#pragma unroll
      for (int i = 0; i + 1 < K; ++i)
#pragma unroll
        for (int v = 0; v < V; ++v) {
          xw[i][v] = xw[i + 1][v];
          gw[i][v] = gw[i + 1][v];
        }
#pragma unroll
      for (int v = 0; v < V; ++v) {
        xw[K - 1][v] = ld(xr[u].v[v]);
        gw[K - 1][v] = ld(gr[u].v[v]);
      }
      float out[V];
#pragma unroll
      for (int v = 0; v < V; ++v) {
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < K; ++j) {
          sum += wv[v][j] * gw[K - 1 - j][v];
          a[v][j] += gw[0][v] * xw[j][v];
        }
        out[v] = sum;
      }
      stChannels(dx + tile.base + (s + u) * C, vec, tile.n, out);
    }
  }
#pragma unroll
  for (int v = 0; v < V; ++v)
#pragma unroll
    for (int j = 0; j < K; ++j)
      segDw[v * K + j] = a[v][j];
}

/// causal_conv1d_grad: dx[b,s,c] = Σ_j w[c,j]·dy[b,s+K−1−j,c] (fp32, K terms),
/// dw[c,j] = Σ_{b,t} dy[b,t,c]·x[b,t−K+1+j,c]. Geometry as causal_conv1d. Each thread sums
/// its segment's dw terms in fp32 in time order; the block adds its kConvSegs segments in
/// fp64 in order and stores the sum as partial blockIdx.x of its channel tile; the last block
/// of the tile to finish (a ticket after __threadfence) sums the tile's partials in block
/// order (four fixed chains). Deterministic for a given geometry; no float atomics.
template <class TX, class TW, class TG, class TD>
__device__ void causalConv1dGrad(const TX *x, const TW *w, const TG *dy, TD *dx, float *dw,
                                 int64_t B, int64_t T, int64_t C, int64_t K, int64_t S) {
  constexpr int V = kConvVec, Taps = kGdnMaxTaps;
  __shared__ float segDw[kConvSegs][kConvLanes * V * Taps];
  __shared__ bool isLast;
  const ConvTile tile = convTile(B, T, C, S);
  const int k = (int)K, tileWidth = kConvLanes * V;
  // This thread's dw terms, segDw[seg][(lane·V + v)·K + j]; 0 where it has no rows.
  float *mine = &segDw[threadIdx.y][threadIdx.x * V * k];
  for (int e = 0; e < V * k; ++e)
    mine[e] = 0.0f;
  if (tile.n > 0 && tile.t0 < tile.t1) {
    const bool vec = C % V == 0 && vecAligned(x) && vecAligned(dy) && vecAligned(dx);
    // Each (K, vector or scalar) pair is its own unrolled code, as in causalConv1d.
    if (K == 2 && vec) {
      convGradWindow<2, true>(x, w, dy, dx, tile, T, C, mine);
    } else if (K == 2) {
      convGradWindow<2, false>(x, w, dy, dx, tile, T, C, mine);
    } else if (K == 3 && vec) {
      convGradWindow<3, true>(x, w, dy, dx, tile, T, C, mine);
    } else if (K == 3) {
      convGradWindow<3, false>(x, w, dy, dx, tile, T, C, mine);
    } else if (K == 4 && vec) {
      convGradWindow<4, true>(x, w, dy, dx, tile, T, C, mine);
    } else if (K == 4) {
      convGradWindow<4, false>(x, w, dy, dx, tile, T, C, mine);
    } else {
      // Any other K: one channel at a time, the taps re-read (from cache).
      for (int v = 0; v < tile.n; ++v) {
        const int64_t c = tile.c0 + v;
        float wv[Taps], a[Taps];
#pragma unroll
        for (int j = 0; j < Taps; ++j) {
          wv[j] = j < K ? ld(w[c * K + j]) : 0.0f;
          a[j] = 0.0f;
        }
        for (int64_t s = tile.t0; s < tile.t1; ++s) {
          const int64_t at = tile.base + v + s * C;
          const float g = ld(dy[at]);
          float sum = 0.0f;
#pragma unroll
          for (int j = 0; j < Taps; ++j) {
            if (j < K) {
              const int64_t later = s + K - 1 - j, source = s - K + 1 + j;
              if (later < T)
                sum += wv[j] * ld(dy[at + (later - s) * C]);
              if (source >= 0)
                a[j] += g * ld(x[at + (source - s) * C]);
            }
          }
          st(dx + at, sum);
        }
#pragma unroll
        for (int j = 0; j < Taps; ++j)
          if (j < K)
            mine[v * k + j] = a[j];
      }
    }
  }

  // The block's partial: its segments in order (fp64), channel-major [c][j] like dw.
  __syncthreads();
  const int tid = threadIdx.y * kConvLanes + threadIdx.x, threads = kConvLanes * kConvSegs;
  const int64_t tileBase = (int64_t)blockIdx.y * tileWidth * K;
  const int entries = (int)(min((int64_t)tileWidth, C - (int64_t)blockIdx.y * tileWidth) * K);
  const int64_t CK = C * K;
  double *partials = ConvDwScratch<0>::partials();
  for (int e = tid; e < entries; e += threads) {
    double sum = segDw[0][e];
    for (int q = 1; q < kConvSegs; ++q)
      sum += segDw[q][e];
    partials[(int64_t)blockIdx.x * CK + tileBase + e] = sum;
  }

  // The last block of this channel tile sums its partials.
  __threadfence();
  __syncthreads();
  unsigned int *ticket = ConvDwScratch<0>::counters() + blockIdx.y;
  if (tid == 0)
    isLast = atomicAdd(ticket, 1u) == gridDim.x - 1;
  __syncthreads();
  if (!isLast)
    return;
  __threadfence();
  const int blocks = gridDim.x;
  for (int e = tid; e < entries; e += threads) {
    const double *p0 = partials + tileBase + e;
    double c0 = 0.0, c1 = 0.0, c2 = 0.0, c3 = 0.0;
    int p = 0;
    for (; p + 4 <= blocks; p += 4) {
      c0 += __ldcg(p0 + (int64_t)p * CK);
      c1 += __ldcg(p0 + (int64_t)(p + 1) * CK);
      c2 += __ldcg(p0 + (int64_t)(p + 2) * CK);
      c3 += __ldcg(p0 + (int64_t)(p + 3) * CK);
    }
    for (; p < blocks; ++p)
      c0 += __ldcg(p0 + (int64_t)p * CK);
    dw[tileBase + e] = (float)((c0 + c1) + (c2 + c3));
  }
  if (tid == 0)
    *ticket = 0;
}

/// causal_conv1d_step: x [B,S,C], w [C,K], tail [B,K−1,C] -> y [B,S,C], tailOut [B,K−1,C];
/// n = B·C threads (b, c), each sliding a window win[j] = z[i + j] over the S new steps.
template <class TX, class TW, class TT, class TY, class TO>
__device__ void causalConv1dStep(const TX *x, const TW *w, const TT *tail, TY *y, TO *tailOut,
                                 int64_t n, int64_t S, int64_t C, int64_t K) {
  for (int64_t i = globalThread(); i < n; i += gridThreads()) {
    const int64_t b = i / C, c = i % C;
    float wv[kGdnMaxTaps], win[kGdnMaxTaps];
#pragma unroll
    for (int j = 0; j < kGdnMaxTaps; ++j) {
      wv[j] = j < K ? ld(w[c * K + j]) : 0.0f;
      win[j] = j < K - 1 ? ld(tail[(b * (K - 1) + j) * C + c]) : 0.0f;
    }
    for (int64_t s = 0; s < S; ++s) {
      const float xv = ld(x[(b * S + s) * C + c]);
      float acc = 0.0f;
#pragma unroll
      for (int j = 0; j < kGdnMaxTaps; ++j) {
        if (j == K - 1)
          win[j] = xv;
        if (j < K)
          acc += wv[j] * win[j];
      }
      st(y + (b * S + s) * C + c, acc);
#pragma unroll
      for (int j = 0; j + 1 < kGdnMaxTaps; ++j)
        win[j] = win[j + 1];
    }
#pragma unroll
    for (int j = 0; j < kGdnMaxTaps; ++j)
      if (j < K - 1)
        st(tailOut + (b * (K - 1) + j) * C + c, win[j]);
  }
}

//===----------------------------------------------------------------------===//
// Gated delta rule
//===----------------------------------------------------------------------===//

/// Sum of v over the L aligned lanes of a lane group (L a power of two <= 32), returned to
/// every lane of the group. Every lane of the warp must call it (full-mask shuffles).
__device__ __forceinline__ float laneGroupSum(float v, int L) {
  for (int offset = L >> 1; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

/// gated_delta_rule (stateIn = stateOut = nullptr, S_{−1} = 0) and gated_delta_step (the
/// state Hs = Sᵀ [B,H,d_k,d_h] f32 read from stateIn and written to stateOut, which may be
/// the same buffer). q, k [B,T,Hk,dk], v [B,T,H,dh], g, beta [B,T,H], o [B,T,H,dh].
/// Grid (B·H, ceil(dh / rowsPerBlock)); blockDim.x = rowsPerBlock·L rounded up to 32; dynamic
/// shared memory kGdnTile·(2·dk + 2·rowsPerBlock + 3) floats.
template <class TQ, class TK, class TV, class TG, class TB, class TO>
__device__ void gatedDeltaForward(const TQ *q, const TK *k, const TV *v, const TG *g,
                                  const TB *beta, const float *stateIn, TO *o, float *stateOut,
                                  int64_t B, int64_t T, int64_t Hk, int64_t dk, int64_t H,
                                  int64_t dh, int64_t L, int64_t rowsPerBlock) {
  extern __shared__ float gdnSmem[];
  const int64_t bh = blockIdx.x;
  if (bh >= B * H)
    return;
  const int64_t b = bh / H, h = bh % H, kh = h * Hk / H;
  const int64_t RB = rowsPerBlock, row0 = (int64_t)blockIdx.y * RB;
  const int64_t nrows = min(RB, dh - row0);
  const int tid = threadIdx.x, lanes = (int)L;
  const int64_t r = tid / lanes, j = tid % lanes;
  const bool active = r < nrows;
  const int64_t e = row0 + r; // value channel = row of S
  float *qs = gdnSmem, *ks = qs + kGdnTile * dk, *vs = ks + kGdnTile * dk;
  float *os = vs + kGdnTile * RB, *as = os + kGdnTile * RB, *bs = as + kGdnTile;
  float *kqs = bs + kGdnTile;

  float S[kGdnSlots];
#pragma unroll
  for (int s = 0; s < kGdnSlots; ++s) {
    const int64_t a = j + L * s;
    S[s] = active && a < dk && stateIn ? stateIn[(bh * dk + a) * dh + e] : 0.0f;
  }
  const int warp = tid >> 5, lane = tid & 31, warps = blockDim.x >> 5;
  for (int64_t t0 = 0; t0 < T; t0 += kGdnTile) {
    const int64_t n = min((int64_t)kGdnTile, T - t0);
    __syncthreads(); // the previous tile's outputs are written back
    for (int64_t idx = tid; idx < n * dk; idx += blockDim.x) {
      const int64_t i = idx / dk, a = idx % dk;
      const int64_t at = ((b * T + t0 + i) * Hk + kh) * dk + a;
      qs[idx] = ld(q[at]);
      ks[idx] = ld(k[at]);
    }
    for (int64_t idx = tid; idx < n * RB; idx += blockDim.x) {
      const int64_t i = idx / RB, rr = idx % RB;
      vs[idx] = rr < nrows ? ld(v[((b * T + t0 + i) * H + h) * dh + row0 + rr]) : 0.0f;
    }
    for (int64_t i = tid; i < n; i += blockDim.x) {
      const int64_t at = (b * T + t0 + i) * H + h;
      as[i] = expf(ld(g[at]));
      bs[i] = ld(beta[at]);
    }
    __syncthreads();
    for (int64_t i = warp; i < n; i += warps) {
      float p = 0.0f;
      for (int64_t a = lane; a < dk; a += 32)
        p += qs[i * dk + a] * ks[i * dk + a];
      p = warpSum(p);
      if (lane == 0)
        kqs[i] = p;
    }
    __syncthreads();
    for (int64_t i = 0; i < n; ++i) {
      const float *kt = ks + i * dk, *qt = qs + i * dk;
      float sk = 0.0f, sq = 0.0f;
#pragma unroll
      for (int s = 0; s < kGdnSlots; ++s) {
        const int64_t a = j + L * s;
        if (a < dk) {
          sk += S[s] * kt[a];
          sq += S[s] * qt[a];
        }
      }
      sk = laneGroupSum(sk, lanes);
      sq = laneGroupSum(sq, lanes);
      const float alpha = as[i], bt = bs[i];
      const float u = (active ? vs[i * RB + r] : 0.0f) - alpha * sk;
#pragma unroll
      for (int s = 0; s < kGdnSlots; ++s) {
        const int64_t a = j + L * s;
        if (a < dk)
          S[s] = alpha * S[s] + bt * u * kt[a];
      }
      if (active && j == 0)
        os[i * RB + r] = alpha * sq + bt * u * kqs[i];
    }
    __syncthreads();
    for (int64_t idx = tid; idx < n * nrows; idx += blockDim.x) {
      const int64_t i = idx / nrows, rr = idx % nrows;
      st(o + ((b * T + t0 + i) * H + h) * dh + row0 + rr, os[i * RB + rr]);
    }
  }
  if (stateOut && active) {
#pragma unroll
    for (int s = 0; s < kGdnSlots; ++s) {
      const int64_t a = j + L * s;
      if (a < dk)
        stateOut[(bh * dk + a) * dh + e] = S[s];
    }
  }
}

/// gated_delta_rule_grad's module-level state scratch (a function template, so only modules
/// that launch the backward hold it). One launch at a time per module: the runtime loads one
/// module per plan kernel and computes on one stream.
template <int Tag> struct GdnScratch {
  __device__ static float *states() {
    static float storage[kGdnScratchFloats];
    return storage;
  }
};

/// gated_delta_rule_grad. Inputs q, k [B,T,Hk,dk], v [B,T,H,dh], g, beta [B,T,H], dout like
/// v; outputs dq, dk like q, dv like v, dg, dbeta like g. Blocks loop over items (b, kh);
/// blockDim.x = R·L rounded up to 32 with R = (H/Hk)·dh rows (row ρ = hh·dh + e: value head
/// h = kh·H/Hk + hh, channel e). chunk = checkpoint spacing (a multiple of kGdnTile),
/// numChunks = ceil(T / chunk), slotFloats = (numChunks + chunk + 1)·ceil(dk/L)·blockDim.x
/// floats of scratch per block. Dynamic shared memory: kGdnTile·(2·dk + 2·R + 2·r) +
/// 2·R·(dk + L) + 2·R floats.
template <class TQ, class TK, class TV, class TG, class TB, class TD, class OQ, class OK,
          class OV, class OG, class OB>
__device__ void gatedDeltaBackward(const TQ *q, const TK *k, const TV *v, const TG *g,
                                   const TB *beta, const TD *dout, OQ *dq, OK *dk, OV *dv,
                                   OG *dg, OB *dbeta, int64_t B, int64_t T, int64_t Hk,
                                   int64_t dkDim, int64_t H, int64_t dh, int64_t L,
                                   int64_t chunk, int64_t numChunks, int64_t slotFloats) {
  extern __shared__ float gdnSmem[];
  const int64_t K = dkDim, r = H / Hk, R = r * dh, CT = kGdnTile;
  const int tid = threadIdx.x, lanes = (int)L;
  const int64_t threads = blockDim.x;
  const int64_t rho = tid / lanes, j = tid % lanes;
  const bool active = rho < R;
  const int64_t hh = active ? rho / dh : 0;
  const int64_t ns = (K + L - 1) / L;
  // Shared memory: staged tokens, then the per-token row-sum buffer (row stride K + L keeps
  // the lanes of a warp on distinct banks), then the per-row scalars.
  const int64_t redStride = K + L;
  float *qs = gdnSmem, *ks = qs + CT * K, *vs = ks + CT * K, *dos = vs + CT * R;
  float *as = dos + CT * R, *bs = as + CT * r;
  float *redQ = bs + CT * r, *redK = redQ + R * redStride;
  float *redBeta = redK + R * redStride, *redG = redBeta + R;
  float *slot = GdnScratch<0>::states() + (int64_t)blockIdx.x * slotFloats;
  // Snapshot m of this thread: slot[(m·ns + s)·threads + tid]; checkpoints m < numChunks,
  // chunk states m = numChunks + i (state after i tokens of the chunk).
  auto snap = [&](int64_t m, int s) -> float * {
    return slot + (m * ns + s) * threads + tid;
  };

  for (int64_t item = blockIdx.x; item < B * Hk; item += gridDim.x) {
    const int64_t b = item / Hk, kh = item % Hk;
    const int64_t h = kh * r + hh;
    // Stages tokens [t0, t0 + n) of this item: k, v, α, β always; q and do when `all`.
    auto stage = [&](int64_t t0, int64_t n, bool all) {
      __syncthreads(); // earlier readers of the staging buffers are done
      for (int64_t idx = tid; idx < n * K; idx += threads) {
        const int64_t i = idx / K, a = idx % K;
        const int64_t at = ((b * T + t0 + i) * Hk + kh) * K + a;
        ks[idx] = ld(k[at]);
        if (all)
          qs[idx] = ld(q[at]);
      }
      for (int64_t idx = tid; idx < n * R; idx += threads) {
        const int64_t i = idx / R, rr = idx % R;
        // The r value heads of key head kh are consecutive: channels kh·R + rr.
        const int64_t at = (b * T + t0 + i) * H * dh + kh * R + rr;
        vs[idx] = ld(v[at]);
        if (all)
          dos[idx] = ld(dout[at]);
      }
      for (int64_t idx = tid; idx < n * r; idx += threads) {
        const int64_t i = idx / r, hv = idx % r;
        const int64_t at = (b * T + t0 + i) * H + kh * r + hv;
        as[idx] = expf(ld(g[at]));
        bs[idx] = ld(beta[at]);
      }
      __syncthreads();
    };
    // One forward token (staged index i): S ← α S + β (v − α S·k) kᵀ.
    auto forward = [&](float (&S)[kGdnSlots], int64_t i) {
      const float *kt = ks + i * K;
      float sk = 0.0f;
#pragma unroll
      for (int s = 0; s < kGdnSlots; ++s) {
        const int64_t a = j + L * s;
        if (a < K)
          sk += S[s] * kt[a];
      }
      sk = laneGroupSum(sk, lanes);
      const float alpha = active ? as[i * r + hh] : 0.0f, bt = active ? bs[i * r + hh] : 0.0f;
      const float u = (active ? vs[i * R + rho] : 0.0f) - alpha * sk;
#pragma unroll
      for (int s = 0; s < kGdnSlots; ++s) {
        const int64_t a = j + L * s;
        if (a < K)
          S[s] = alpha * S[s] + bt * u * kt[a];
      }
    };
    auto save = [&](const float (&S)[kGdnSlots], int64_t m) {
      if (!active)
        return;
#pragma unroll
      for (int s = 0; s < kGdnSlots; ++s)
        if (s < ns)
          *snap(m, s) = S[s];
    };
    auto load = [&](float (&S)[kGdnSlots], int64_t m) {
#pragma unroll
      for (int s = 0; s < kGdnSlots; ++s)
        S[s] = active && s < ns ? *snap(m, s) : 0.0f;
    };

    // 1. Checkpoints: the state before each chunk.
    float S[kGdnSlots];
#pragma unroll
    for (int s = 0; s < kGdnSlots; ++s)
      S[s] = 0.0f;
    for (int64_t t0 = 0; t0 < T; t0 += CT) {
      const int64_t n = min(CT, T - t0);
      if (t0 % chunk == 0)
        save(S, t0 / chunk);
      if (t0 + n >= T)
        break; // the last tile's states are recomputed in the backward walk
      stage(t0, n, false);
      for (int64_t i = 0; i < n; ++i)
        forward(S, i);
    }

    // 2. Chunks in reverse: recompute the per-token states, then walk the chunk backwards.
    float dS[kGdnSlots];
#pragma unroll
    for (int s = 0; s < kGdnSlots; ++s)
      dS[s] = 0.0f;
    for (int64_t c = numChunks - 1; c >= 0; --c) {
      const int64_t c0 = c * chunk, len = min(chunk, T - c0);
      load(S, c);
      save(S, numChunks);
      for (int64_t i0 = 0; i0 < len; i0 += CT) {
        const int64_t n = min(CT, len - i0);
        stage(c0 + i0, n, false);
        for (int64_t i = 0; i < n; ++i) {
          forward(S, i);
          save(S, numChunks + i0 + i + 1);
        }
      }
      // S now holds the state after the chunk's last token; walking backwards it is S_t of
      // the token being processed (`cur`), and takes S_{t−1} (`prev`) after each step.
      const int64_t lastTile = (len - 1) / CT * CT;
      for (int64_t i0 = lastTile; i0 >= 0; i0 -= CT) {
        const int64_t n = min(CT, len - i0);
        stage(c0 + i0, n, true);
        for (int64_t i = n - 1; i >= 0; --i) {
          const int64_t t = c0 + i0 + i;
          float prev[kGdnSlots];
          load(prev, numChunks + i0 + i);
          const float *kt = ks + i * K, *qt = qs + i * K;
          const float doI = active ? dos[i * R + rho] : 0.0f;
          const float vI = active ? vs[i * R + rho] : 0.0f;
          const float alpha = active ? as[i * r + hh] : 0.0f;
          const float bt = active ? bs[i * r + hh] : 0.0f;
          // G = dS + do qᵀ (in dS); S_{t−1}·k, G·k, ⟨S_{t−1}, G⟩.
          float sk = 0.0f, gk = 0.0f, pg = 0.0f;
#pragma unroll
          for (int s = 0; s < kGdnSlots; ++s) {
            const int64_t a = j + L * s;
            if (a < K) {
              dS[s] += doI * qt[a];
              sk += prev[s] * kt[a];
              gk += dS[s] * kt[a];
              pg += prev[s] * dS[s];
            }
          }
          sk = laneGroupSum(sk, lanes);
          gk = laneGroupSum(gk, lanes);
          pg = laneGroupSum(pg, lanes);
          const float u = vI - alpha * sk, du = bt * gk;
          if (active && j == 0) {
            st(dv + ((b * T + t) * H + h) * dh + rho % dh, du);
            redBeta[rho] = u * gk;
            redG[rho] = alpha * (pg - du * sk);
          }
#pragma unroll
          for (int s = 0; s < kGdnSlots; ++s) {
            const int64_t a = j + L * s;
            if (a < K) {
              if (active) {
                redQ[rho * redStride + a] = S[s] * doI;
                redK[rho * redStride + a] = bt * dS[s] * u - alpha * prev[s] * du;
              }
              dS[s] = alpha * (dS[s] - du * kt[a]);
              S[s] = prev[s];
            }
          }
          __syncthreads();
          // Column sums over the rows, in row order (four interleaved partial sums).
          for (int64_t col = tid; col < 2 * K + 2 * r; col += threads) {
            if (col < 2 * K) {
              const float *red = col < K ? redQ + col : redK + (col - K);
              float p0 = 0.0f, p1 = 0.0f, p2 = 0.0f, p3 = 0.0f;
              int64_t row = 0;
              for (; row + 4 <= R; row += 4) {
                p0 += red[row * redStride];
                p1 += red[(row + 1) * redStride];
                p2 += red[(row + 2) * redStride];
                p3 += red[(row + 3) * redStride];
              }
              for (; row < R; ++row)
                p0 += red[row * redStride];
              const float total = (p0 + p1) + (p2 + p3);
              const int64_t at = ((b * T + t) * Hk + kh) * K;
              if (col < K)
                st(dq + at + col, total);
              else
                st(dk + at + col - K, total);
            } else {
              const int64_t which = col - 2 * K, hv = which % r;
              const float *red = which < r ? redBeta : redG;
              float total = 0.0f;
              for (int64_t e = 0; e < dh; ++e)
                total += red[hv * dh + e];
              const int64_t at = (b * T + t) * H + kh * r + hv;
              if (which < r)
                st(dbeta + at, total);
              else
                st(dg + at, total);
            }
          }
          __syncthreads();
        }
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// Gated delta rule, chunked WY form (the fast path)
//===----------------------------------------------------------------------===//
//
// gated_delta_rule and gated_delta_rule_grad for bf16 q, k, v (, do) with d_k = 128 and
// d_h = 64 (the generator picks it; gated_delta_rule_grad also needs H = H_k). One block of
// 256 threads per (b, h) walks the sequence in chunks of 64 tokens; inside a chunk every
// product is a 64-row block product in shared memory (fp32 on the CUDA cores, except
// K Kᵀ and Q Kᵀ, whose operands are bf16 inputs: bf16 mma.sync m16n8k16 with fp32
// accumulation, exact products). With local index i, γ_i = Σ_{j≤i} g_j, Γ_i = e^{γ_i},
// Λ_ij = e^{γ_i − γ_j} (only on and below the diagonal: exponent ≤ 0), dec_i = e^{γ_63 − γ_i},
// and the state S [d_h × d_k] (row e = value channel) before the chunk:
//   Ã = strict_lower(Λ ⊙ K Kᵀ), Tm = (I + diag(β) Ã)⁻¹ (forward substitution),
//   Y = V − diag(Γ) K Sᵀ, Δ = Tm diag(β) Y (Δ_i = β_i u_i, u_i = v_i − α_i S_{i−1} k_i),
//   M = lower_incl(Λ ⊙ Q Kᵀ), O = diag(Γ) Q Sᵀ + M Δ, S ← Γ_63 S + Δᵀ diag(dec) K.
// Tokens past T are padding with g = 0, β = 0 and zero q, k, v, do: exact no-ops.
// Backward (D = ∂L/∂S after the chunk, walked from the last chunk; the chunk's S from a
// checkpoint saved by a first forward walk in the module scratch, one slot per block):
//   u = Y − Ã Δ, R = diag(dec) K Dᵀ + Mᵀ dO, GK = Tmᵀ R (row i = G_i k_i),
//   dU = diag(β) GK = dv, dβ_i = u_i·GK_i, P = lower_incl(Λ ⊙ dO Δᵀ),
//   dq = diag(Γ) dO S + P K,
//   dk = diag(dec) Δ D + Pᵀ Q + E K − diag(Γ) dU S with E symmetric, zero diagonal,
//        E_rs = −Λ_{max,min} δ_min·du_max,
//   D ← Γ_63 D + dOᵀ diag(Γ) Q − dUᵀ diag(Γ) K,
//   dg_t = Σ_{s≥t} (do_s·o_s − v_s·dv_s) (dg_t = ⟨∂L/∂S_{t−1}, S_{t−1}⟩, whose recurrence
//        has exactly that increment; a reverse cumsum over the whole sequence).
// These are the token recurrence's gradients (grad_mixer_kernels.cc) regrouped by chunk.
// Block products: thread (wm, wn) = (tid / 16, tid % 16) owns rows wm + 16·ii and columns
// 4·wn + (jj % 4) + 64·(jj / 4) (B row-major) or wn + 16·jj (B read transposed); fp32
// operands are read as float4 along the contracted index or the columns, row strides
// ≡ 4 (mod 32) words keep those reads at the minimum number of shared-memory wavefronts.
// Deterministic: fixed-order sums, no atomics.

/// Dimensions of the chunked kernels.
constexpr int kGdnC = 64, kGdnDk = 128, kGdnDv = 64, kGdnThreads = 256;
/// Row strides: fp32 [64][128] (S, D), bf16 K/Q tiles (elements), fp32 [64][64] tiles.
constexpr int kGdnLdS = kGdnDk + 4, kGdnLdB = kGdnDk + 8, kGdnLdT = 64 + 4;
/// Floats of one buffer: S/D, a bf16 K/Q tile, a [64][64] tile.
constexpr int kGdnSFloats = kGdnDv * kGdnLdS, kGdnBFloats = kGdnC * kGdnLdB / 2,
              kGdnTFloats = kGdnC * kGdnLdT;
/// Floats of a per-block checkpoint (one state, unpadded).
constexpr int kGdnStateFloats = kGdnDv * kGdnDk;
/// Dynamic shared memory of the chunked kernels (the generator mirrors these).
constexpr int kGdnFwdSmemFloats = 2 * kGdnBFloats + kGdnSFloats + 6 * kGdnTFloats + 4 * kGdnC;
constexpr int kGdnBwdSmemFloats =
    2 * kGdnBFloats + 2 * kGdnSFloats + 7 * kGdnTFloats + 6 * kGdnC;

__device__ __forceinline__ float4 gdnLd4(const float *p) {
  return *reinterpret_cast<const float4 *>(p);
}
__device__ __forceinline__ float4 gdnLd4(const __nv_bfloat16 *p) {
  const uint2 raw = *reinterpret_cast<const uint2 *>(p);
  const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&raw.x));
  const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&raw.y));
  return make_float4(lo.x, lo.y, hi.x, hi.y);
}
__device__ __forceinline__ float gdnGet(const float4 &v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

/// Column of accumulator jj (see above): B row-major (BT = false) or transposed.
template <bool BT> __device__ __forceinline__ int gdnCol(int wn, int jj) {
  return BT ? wn + 16 * jj : 4 * wn + (jj & 3) + 64 * (jj >> 2);
}

/// Scaling of A's elements: none, by row (scale[m]) or by contracted index (scale[k]).
enum GdnScale { kGdnNoScale, kGdnRowScale, kGdnKScale };

/// acc[ii][jj] += Σ_k A(m, k) B(k, n), m = wm + 16 ii, n = gdnCol<BT>(wn, jj), over the
/// 256 threads. A(m, k) = A[m·lda + k] (AT = false, float4 along k) or A[k·lda + m]
/// (AT = true, fp32 only); B(k, n) = B[k·ldb + n] (BT = false) or B[n·ldb + k] (BT = true).
/// KD a multiple of 4; rows 16-byte aligned.
template <int M, int N, int KD, bool AT, bool BT, int Scale, class TA, class TB>
__device__ __forceinline__ void gdnGemm(float (&acc)[M / 16][N / 16], const TA *A, int lda,
                                        const TB *Bm, int ldb, const float *scale = nullptr) {
  constexpr int TM = M / 16, TN = N / 16;
  const int wm = threadIdx.x >> 4, wn = threadIdx.x & 15;
  float rs[TM];
#pragma unroll
  for (int ii = 0; ii < TM; ++ii)
    rs[ii] = Scale == kGdnRowScale ? scale[wm + 16 * ii] : 1.0f;
#pragma unroll 2
  for (int k0 = 0; k0 < KD; k0 += 4) {
    float a[TM][4], b[4][TN];
#pragma unroll
    for (int ii = 0; ii < TM; ++ii) {
      const int m = wm + 16 * ii;
      if constexpr (!AT) {
        const float4 x = gdnLd4(A + m * lda + k0);
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
          a[ii][kk] = gdnGet(x, kk);
      } else {
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
          a[ii][kk] = ld(A[(k0 + kk) * lda + m]);
      }
      if constexpr (Scale == kGdnRowScale) {
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
          a[ii][kk] *= rs[ii];
      }
    }
    if constexpr (Scale == kGdnKScale) {
      const float4 s = gdnLd4(scale + k0);
#pragma unroll
      for (int ii = 0; ii < TM; ++ii)
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
          a[ii][kk] *= gdnGet(s, kk);
    }
    if constexpr (!BT) {
#pragma unroll
      for (int kk = 0; kk < 4; ++kk)
#pragma unroll
        for (int jq = 0; jq < TN / 4; ++jq) {
          const float4 x = gdnLd4(Bm + (k0 + kk) * ldb + 4 * wn + 64 * jq);
#pragma unroll
          for (int c = 0; c < 4; ++c)
            b[kk][4 * jq + c] = gdnGet(x, c);
        }
    } else {
#pragma unroll
      for (int jj = 0; jj < TN; ++jj) {
        const float4 x = gdnLd4(Bm + (wn + 16 * jj) * ldb + k0);
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
          b[kk][jj] = gdnGet(x, kk);
      }
    }
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
#pragma unroll
      for (int ii = 0; ii < TM; ++ii)
#pragma unroll
        for (int jj = 0; jj < TN; ++jj)
          acc[ii][jj] = fmaf(a[ii][kk], b[kk][jj], acc[ii][jj]);
  }
}

template <int TM, int TN> __device__ __forceinline__ void gdnZero(float (&acc)[TM][TN]) {
#pragma unroll
  for (int ii = 0; ii < TM; ++ii)
#pragma unroll
    for (int jj = 0; jj < TN; ++jj)
      acc[ii][jj] = 0.0f;
}

/// Sum over the 16 lanes of a half warp (the threads that share rows), to all of them.
__device__ __forceinline__ float gdnRowSum(float v) {
#pragma unroll
  for (int offset = 8; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

/// d += a·b, bf16 m16n8k16 with fp32 accumulation (PTX fragment layouts; lane = 4g + t).
__device__ __forceinline__ void gdnMma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                       uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
               "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// X = strict_lower(Λ ⊙ K Kᵀ) and, when wantM, Mm = lower_incl(Λ ⊙ Q Kᵀ) (zeros elsewhere).
/// Warp w computes rows 16·(w/2) .. +15, columns 32·(w%2) .. +31 (four n-tiles of 8).
__device__ __forceinline__ void gdnScores(const __nv_bfloat16 *Kb, const __nv_bfloat16 *Qb,
                                          const float *gam, float *X, float *Mm, bool wantM) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gq = lane >> 2, tq = lane & 3;
  const int m0 = (warp >> 1) * 16, n0 = (warp & 1) * 32;
  constexpr int LW = kGdnLdB / 2; // 32-bit words per tile row
  const uint32_t *K32 = reinterpret_cast<const uint32_t *>(Kb);
  const uint32_t *Q32 = reinterpret_cast<const uint32_t *>(Qb);
  float kk[4][4], qk[4][4];
  gdnZero(kk);
  gdnZero(qk);
#pragma unroll 2
  for (int k0 = 0; k0 < kGdnDk; k0 += 16) {
    const int kw = k0 / 2 + tq;
    const uint32_t ak[4] = {K32[(m0 + gq) * LW + kw], K32[(m0 + gq + 8) * LW + kw],
                            K32[(m0 + gq) * LW + kw + 4], K32[(m0 + gq + 8) * LW + kw + 4]};
    uint32_t aq[4] = {0u, 0u, 0u, 0u};
    if (wantM) {
      aq[0] = Q32[(m0 + gq) * LW + kw];
      aq[1] = Q32[(m0 + gq + 8) * LW + kw];
      aq[2] = Q32[(m0 + gq) * LW + kw + 4];
      aq[3] = Q32[(m0 + gq + 8) * LW + kw + 4];
    }
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
      const int j = n0 + 8 * nt + gq;
      const uint32_t b0 = K32[j * LW + kw], b1 = K32[j * LW + kw + 4];
      gdnMma(kk[nt], ak, b0, b1);
      if (wantM)
        gdnMma(qk[nt], aq, b0, b1);
    }
  }
#pragma unroll
  for (int nt = 0; nt < 4; ++nt)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int i = m0 + gq + (r >= 2 ? 8 : 0), j = n0 + 8 * nt + 2 * tq + (r & 1);
      const float lam = j <= i ? expf(gam[i] - gam[j]) : 0.0f;
      X[i * kGdnLdT + j] = j < i ? lam * kk[nt][r] : 0.0f;
      if (wantM)
        Mm[i * kGdnLdT + j] = lam * qk[nt][r];
    }
}

/// Tm = (I + diag(β) X)⁻¹ (X strictly lower): four threads per column c, thread p summing
/// the rows j ≡ p (mod 4) of the forward substitution x_i = −β_i Σ_{j<i} X_ij x_j.
__device__ __forceinline__ void gdnSolve(const float *X, const float *bet, float *Tm) {
  const int c = threadIdx.x >> 2, p = threadIdx.x & 3;
  float x[16];
#pragma unroll
  for (int m = 0; m < 16; ++m)
    x[m] = 0.0f;
#pragma unroll
  for (int i = 0; i < kGdnC; ++i) {
    float s = 0.0f;
#pragma unroll
    for (int m = 0; m < (i + 3) / 4; ++m)
      s = fmaf(X[i * kGdnLdT + 4 * m + p], x[m], s); // X_ij = 0 for j >= i
    s += __shfl_xor_sync(0xffffffffu, s, 1);
    s += __shfl_xor_sync(0xffffffffu, s, 2);
    const float val = i < c ? 0.0f : i == c ? 1.0f : -bet[i] * s;
    if (p == (i & 3))
      x[i >> 2] = val;
    if (p == 0)
      Tm[i * kGdnLdT + c] = val;
  }
}

/// Copies `rows` rows of 128 bf16 (source row r at src + r·stride) into a K/Q tile, zero rows
/// after them. `vec`: 16-byte aligned source rows.
__device__ __forceinline__ void gdnLoadTile(__nv_bfloat16 *dst, const __nv_bfloat16 *src,
                                            int64_t stride, int rows, bool vec) {
  if (vec) {
    for (int idx = threadIdx.x; idx < kGdnC * 16; idx += kGdnThreads) {
      const int r = idx >> 4, c8 = (idx & 15) * 8;
      uint4 val = make_uint4(0u, 0u, 0u, 0u);
      if (r < rows)
        val = *reinterpret_cast<const uint4 *>(src + r * stride + c8);
      *reinterpret_cast<uint4 *>(dst + r * kGdnLdB + c8) = val;
    }
  } else {
    for (int idx = threadIdx.x; idx < kGdnC * kGdnDk; idx += kGdnThreads) {
      const int r = idx >> 7, c = idx & 127;
      dst[r * kGdnLdB + c] = r < rows ? src[r * stride + c] : __float2bfloat16(0.0f);
    }
  }
}

/// Per-token vectors of the chunk at t0 with n tokens (warp 0): γ (local inclusive cumsum),
/// Γ, −Γ (when nGam), β, dec; tokens past n get g = 0, β = 0.
template <class TG, class TB>
__device__ __forceinline__ void gdnLoadDecays(const TG *g, const TB *beta, int64_t at0,
                                              int64_t stride, int n, float *gam, float *Gam,
                                              float *nGam, float *bet, float *dec) {
  if (threadIdx.x >= 32)
    return;
  const int l = threadIdx.x, i0 = 2 * l, i1 = 2 * l + 1;
  const float g0 = i0 < n ? ld(g[at0 + i0 * stride]) : 0.0f;
  const float g1 = i1 < n ? ld(g[at0 + i1 * stride]) : 0.0f;
  const float pair = g0 + g1;
  float scan = pair; // inclusive scan of the pair sums over the lanes
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const float up = __shfl_up_sync(0xffffffffu, scan, offset);
    if (l >= offset)
      scan += up;
  }
  float excl = __shfl_up_sync(0xffffffffu, scan, 1);
  if (l == 0)
    excl = 0.0f;
  const float c0 = excl + g0, c1 = excl + pair;
  const float last = __shfl_sync(0xffffffffu, c1, 31);
  gam[i0] = c0;
  gam[i1] = c1;
  Gam[i0] = expf(c0);
  Gam[i1] = expf(c1);
  if (nGam) {
    nGam[i0] = -expf(c0);
    nGam[i1] = -expf(c1);
  }
  bet[i0] = i0 < n ? ld(beta[at0 + i0 * stride]) : 0.0f;
  bet[i1] = i1 < n ? ld(beta[at0 + i1 * stride]) : 0.0f;
  dec[i0] = expf(last - c0);
  dec[i1] = expf(last - c1);
}

/// Y = V − diag(Γ) K Sᵀ; writes βY to B1 and (when Yout) Y to Yout (transposed-B mapping).
template <class TV>
__device__ __forceinline__ void gdnValues(const __nv_bfloat16 *Kb, const float *S,
                                          const TV *v, int64_t vRow0, int64_t vStride, int n,
                                          const float *Gam, const float *bet, float *B1,
                                          float *Yout) {
  const int wm = threadIdx.x >> 4, wn = threadIdx.x & 15;
  float vv[4][4];
#pragma unroll
  for (int ii = 0; ii < 4; ++ii)
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
      const int i = wm + 16 * ii, e = wn + 16 * jj;
      vv[ii][jj] = i < n ? ld(v[vRow0 + i * vStride + e]) : 0.0f;
    }
  float acc[4][4];
  gdnZero(acc);
  gdnGemm<64, 64, kGdnDk, false, true, kGdnNoScale>(acc, Kb, kGdnLdB, S, kGdnLdS);
#pragma unroll
  for (int ii = 0; ii < 4; ++ii)
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
      const int i = wm + 16 * ii, e = wn + 16 * jj;
      const float y = vv[ii][jj] - Gam[i] * acc[ii][jj];
      B1[i * kGdnLdT + e] = bet[i] * y;
      if (Yout)
        Yout[i * kGdnLdT + e] = y;
    }
}

/// S ← Γ_63 S + Aᵀ K with A = DecD [64][64] (rows dec_i Δ_i): the chunk's state update.
__device__ __forceinline__ void gdnAdvance(float *S, const float *DecD,
                                           const __nv_bfloat16 *Kb, float gLast) {
  const int wm = threadIdx.x >> 4, wn = threadIdx.x & 15;
  float acc[4][8];
#pragma unroll
  for (int ii = 0; ii < 4; ++ii)
#pragma unroll
    for (int jj = 0; jj < 8; ++jj)
      acc[ii][jj] = gLast * S[(wm + 16 * ii) * kGdnLdS + gdnCol<false>(wn, jj)];
  gdnGemm<64, 128, kGdnC, true, false, kGdnNoScale>(acc, DecD, kGdnLdT, Kb, kGdnLdB);
#pragma unroll
  for (int ii = 0; ii < 4; ++ii)
#pragma unroll
    for (int jj = 0; jj < 8; ++jj)
      S[(wm + 16 * ii) * kGdnLdS + gdnCol<false>(wn, jj)] = acc[ii][jj];
}

/// gated_delta_rule, chunked: q, k, v bf16 [B,T,·,128 | 64]; grid B·H blocks of 256 threads,
/// kGdnFwdSmemFloats floats of dynamic shared memory.
template <class TQ, class TK, class TV, class TG, class TB, class TO>
__device__ __noinline__ void gatedDeltaChunkForward(const TQ *q, const TK *k, const TV *v, const TG *g,
                                       const TB *beta, TO *o, int64_t B, int64_t T,
                                       int64_t Hk, int64_t H) {
  extern __shared__ float gdnSmem[];
  const int64_t bh = blockIdx.x;
  if (bh >= B * H)
    return;
  const int64_t b = bh / H, h = bh % H, kh = h * Hk / H;
  __nv_bfloat16 *Kb = reinterpret_cast<__nv_bfloat16 *>(gdnSmem);
  __nv_bfloat16 *Qb = reinterpret_cast<__nv_bfloat16 *>(gdnSmem + kGdnBFloats);
  float *S = gdnSmem + 2 * kGdnBFloats;
  float *X = S + kGdnSFloats, *Tm = X + kGdnTFloats, *Mm = Tm + kGdnTFloats;
  float *B1 = Mm + kGdnTFloats, *Db = B1 + kGdnTFloats, *Ob = Db + kGdnTFloats;
  float *gam = Ob + kGdnTFloats, *Gam = gam + kGdnC, *bet = Gam + kGdnC, *dec = bet + kGdnC;
  const int wm = threadIdx.x >> 4, wn = threadIdx.x & 15;
  const bool vec = ((reinterpret_cast<uintptr_t>(q) | reinterpret_cast<uintptr_t>(k)) & 15) == 0;
  for (int idx = threadIdx.x; idx < kGdnSFloats; idx += kGdnThreads)
    S[idx] = 0.0f;
  for (int64_t t0 = 0; t0 < T; t0 += kGdnC) {
    const int n = (int)min((int64_t)kGdnC, T - t0);
    __syncthreads(); // the previous chunk's readers are done
    const int64_t qk0 = ((b * T + t0) * Hk + kh) * kGdnDk;
    gdnLoadTile(Kb, reinterpret_cast<const __nv_bfloat16 *>(k) + qk0, Hk * kGdnDk, n, vec);
    gdnLoadTile(Qb, reinterpret_cast<const __nv_bfloat16 *>(q) + qk0, Hk * kGdnDk, n, vec);
    gdnLoadDecays(g, beta, (b * T + t0) * H + h, H, n, gam, Gam, (float *)nullptr, bet, dec);
    __syncthreads();
    gdnScores(Kb, Qb, gam, X, Mm, true);
    __syncthreads();
    gdnSolve(X, bet, Tm);
    const int64_t vRow0 = ((b * T + t0) * H + h) * kGdnDv;
    gdnValues(Kb, S, v, vRow0, H * kGdnDv, n, Gam, bet, B1, (float *)nullptr);
    {
      float acc[4][4];
      gdnZero(acc);
      gdnGemm<64, 64, kGdnDk, false, true, kGdnNoScale>(acc, Qb, kGdnLdB, S, kGdnLdS);
#pragma unroll
      for (int ii = 0; ii < 4; ++ii)
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
          const int i = wm + 16 * ii;
          Ob[i * kGdnLdT + gdnCol<true>(wn, jj)] = Gam[i] * acc[ii][jj];
        }
    }
    __syncthreads();
    {
      float acc[4][4];
      gdnZero(acc);
      gdnGemm<64, 64, kGdnC, false, false, kGdnNoScale>(acc, Tm, kGdnLdT, B1, kGdnLdT);
#pragma unroll
      for (int ii = 0; ii < 4; ++ii)
#pragma unroll
        for (int jj = 0; jj < 4; ++jj)
          Db[(wm + 16 * ii) * kGdnLdT + gdnCol<false>(wn, jj)] = acc[ii][jj];
    }
    __syncthreads();
    {
      float acc[4][4];
#pragma unroll
      for (int ii = 0; ii < 4; ++ii)
#pragma unroll
        for (int jj = 0; jj < 4; ++jj)
          acc[ii][jj] = Ob[(wm + 16 * ii) * kGdnLdT + gdnCol<false>(wn, jj)];
      gdnGemm<64, 64, kGdnC, false, false, kGdnNoScale>(acc, Mm, kGdnLdT, Db, kGdnLdT);
#pragma unroll
      for (int ii = 0; ii < 4; ++ii)
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
          const int i = wm + 16 * ii, e = gdnCol<false>(wn, jj);
          if (i < n)
            st(o + vRow0 + i * H * kGdnDv + e, acc[ii][jj]);
          B1[i * kGdnLdT + e] = dec[i] * Db[i * kGdnLdT + e];
        }
    }
    if (t0 + kGdnC >= T)
      break; // the final state is not an output
    __syncthreads();
    gdnAdvance(S, B1, Kb, Gam[kGdnC - 1]);
  }
}

/// gated_delta_rule_grad, chunked (H = H_k): blocks loop over the B·H items (b, h), each
/// with a scratch slot of numChunks·kGdnStateFloats floats for the chunk checkpoints;
/// 256 threads, kGdnBwdSmemFloats floats of dynamic shared memory.
template <class TQ, class TK, class TV, class TG, class TB, class TD, class OQ, class OK,
          class OV, class OG, class OB>
__device__ __noinline__ void gatedDeltaChunkBackward(const TQ *q, const TK *k, const TV *v, const TG *g,
                                        const TB *beta, const TD *dout, OQ *dq, OK *dk,
                                        OV *dv, OG *dg, OB *dbeta, int64_t B, int64_t T,
                                        int64_t H, int64_t numChunks, int64_t slotFloats) {
  extern __shared__ float gdnSmem[];
  __nv_bfloat16 *Kb = reinterpret_cast<__nv_bfloat16 *>(gdnSmem);
  __nv_bfloat16 *Qb = reinterpret_cast<__nv_bfloat16 *>(gdnSmem + kGdnBFloats);
  float *S = gdnSmem + 2 * kGdnBFloats, *D = S + kGdnSFloats;
  float *X = D + kGdnSFloats, *Tm = X + kGdnTFloats, *Mm = Tm + kGdnTFloats;
  float *B1 = Mm + kGdnTFloats, *B2 = B1 + kGdnTFloats, *Db = B2 + kGdnTFloats;
  float *dOb = Db + kGdnTFloats;
  float *gam = dOb + kGdnTFloats, *Gam = gam + kGdnC, *nGam = Gam + kGdnC;
  float *bet = nGam + kGdnC, *dec = bet + kGdnC, *rowv = dec + kGdnC;
  float *slot = GdnScratch<0>::states() + (int64_t)blockIdx.x * slotFloats;
  const int tid = threadIdx.x, wm = tid >> 4, wn = tid & 15;
  const bool vec = ((reinterpret_cast<uintptr_t>(q) | reinterpret_cast<uintptr_t>(k) |
                     reinterpret_cast<uintptr_t>(dout)) &
                    15) == 0;
  const int64_t rowKQ = H * kGdnDk, rowV = H * kGdnDv;

  for (int64_t item = blockIdx.x; item < B * H; item += gridDim.x) {
    const int64_t b = item / H, h = item % H;
    auto tokens = [&](int64_t c) { return (int)min((int64_t)kGdnC, T - c * kGdnC); };
    auto loadK = [&](int64_t c, bool all) {
      const int64_t t0 = c * kGdnC;
      const int n = tokens(c);
      const int64_t qk0 = ((b * T + t0) * H + h) * kGdnDk;
      gdnLoadTile(Kb, reinterpret_cast<const __nv_bfloat16 *>(k) + qk0, rowKQ, n, vec);
      if (all) {
        gdnLoadTile(Qb, reinterpret_cast<const __nv_bfloat16 *>(q) + qk0, rowKQ, n, vec);
        const int64_t v0 = ((b * T + t0) * H + h) * kGdnDv;
        for (int idx = tid; idx < kGdnC * 8; idx += kGdnThreads) {
          const int r = idx >> 3, c8 = (idx & 7) * 8;
          float4 lo = make_float4(0.0f, 0.0f, 0.0f, 0.0f), hi = lo;
          if (r < n) {
            const __nv_bfloat16 *src = reinterpret_cast<const __nv_bfloat16 *>(dout) + v0 +
                                       r * rowV + c8;
            if (vec) {
              lo = gdnLd4(src);
              hi = gdnLd4(src + 4);
            } else {
              lo = make_float4(ld(src[0]), ld(src[1]), ld(src[2]), ld(src[3]));
              hi = make_float4(ld(src[4]), ld(src[5]), ld(src[6]), ld(src[7]));
            }
          }
          *reinterpret_cast<float4 *>(dOb + r * kGdnLdT + c8) = lo;
          *reinterpret_cast<float4 *>(dOb + r * kGdnLdT + c8 + 4) = hi;
        }
      }
      gdnLoadDecays(g, beta, (b * T + t0) * H + h, H, n, gam, Gam, nGam, bet, dec);
    };

    // 1. Checkpoints: the state before every chunk.
    __syncthreads(); // the previous item's readers are done
    for (int idx = tid; idx < kGdnSFloats; idx += kGdnThreads)
      S[idx] = 0.0f;
    for (int64_t c = 0; c < numChunks; ++c) {
      __syncthreads();
      for (int idx = tid; idx < kGdnStateFloats / 4; idx += kGdnThreads) {
        const int e = idx >> 5, a4 = (idx & 31) * 4;
        *reinterpret_cast<float4 *>(slot + c * kGdnStateFloats + e * kGdnDk + a4) =
            *reinterpret_cast<const float4 *>(S + e * kGdnLdS + a4);
      }
      if (c + 1 == numChunks)
        break;
      loadK(c, false);
      __syncthreads();
      gdnScores(Kb, Qb, gam, X, Mm, false);
      __syncthreads();
      gdnSolve(X, bet, Tm);
      gdnValues(Kb, S, v, ((b * T + c * kGdnC) * H + h) * kGdnDv, rowV, tokens(c), Gam, bet,
                B1, (float *)nullptr);
      __syncthreads();
      {
        float acc[4][4];
        gdnZero(acc);
        gdnGemm<64, 64, kGdnC, false, false, kGdnNoScale>(acc, Tm, kGdnLdT, B1, kGdnLdT);
#pragma unroll
        for (int ii = 0; ii < 4; ++ii)
#pragma unroll
          for (int jj = 0; jj < 4; ++jj) {
            const int i = wm + 16 * ii;
            B2[i * kGdnLdT + gdnCol<false>(wn, jj)] = dec[i] * acc[ii][jj];
          }
      }
      __syncthreads();
      gdnAdvance(S, B2, Kb, Gam[kGdnC - 1]);
    }

    // 2. Chunks in reverse.
    for (int idx = tid; idx < kGdnSFloats; idx += kGdnThreads)
      D[idx] = 0.0f;
    float carry = 0.0f; // Σ of the dg increments of the later chunks (warp 0)
    for (int64_t c = numChunks - 1; c >= 0; --c) {
      const int64_t t0 = c * kGdnC;
      const int n = tokens(c);
      const int64_t v0 = ((b * T + t0) * H + h) * kGdnDv, qk0 = ((b * T + t0) * H + h) * kGdnDk;
      __syncthreads();
      for (int idx = tid; idx < kGdnStateFloats / 4; idx += kGdnThreads) {
        const int e = idx >> 5, a4 = (idx & 31) * 4;
        *reinterpret_cast<float4 *>(S + e * kGdnLdS + a4) =
            *reinterpret_cast<const float4 *>(slot + c * kGdnStateFloats + e * kGdnDk + a4);
      }
      loadK(c, true);
      __syncthreads();
      gdnScores(Kb, Qb, gam, X, Mm, true);
      __syncthreads();
      // Tm; Y (B1 = βY, B2 = Y); rowv = Γ_i do_i·(Q Sᵀ)_i.
      gdnSolve(X, bet, Tm);
      gdnValues(Kb, S, v, v0, rowV, n, Gam, bet, B1, B2);
      {
        float acc[4][4];
        gdnZero(acc);
        gdnGemm<64, 64, kGdnDk, false, true, kGdnNoScale>(acc, Qb, kGdnLdB, S, kGdnLdS);
#pragma unroll
        for (int ii = 0; ii < 4; ++ii) {
          const int i = wm + 16 * ii;
          float part = 0.0f;
#pragma unroll
          for (int jj = 0; jj < 4; ++jj)
            part = fmaf(dOb[i * kGdnLdT + gdnCol<true>(wn, jj)], acc[ii][jj], part);
          part = gdnRowSum(part);
          if (wn == 0)
            rowv[i] = Gam[i] * part;
        }
      }
      __syncthreads();
      // Δ = Tm βY.
      {
        float acc[4][4];
        gdnZero(acc);
        gdnGemm<64, 64, kGdnC, false, false, kGdnNoScale>(acc, Tm, kGdnLdT, B1, kGdnLdT);
#pragma unroll
        for (int ii = 0; ii < 4; ++ii)
#pragma unroll
          for (int jj = 0; jj < 4; ++jj)
            Db[(wm + 16 * ii) * kGdnLdT + gdnCol<false>(wn, jj)] = acc[ii][jj];
      }
      __syncthreads();
      // rowv += do_i·(M Δ)_i; u = Y − X Δ (kept for dβ); B1 = dec ⊙ K Dᵀ (first part of R).
      float u[4][4];
      {
        float acc[4][4];
        gdnZero(acc);
        gdnGemm<64, 64, kGdnC, false, false, kGdnNoScale>(acc, Mm, kGdnLdT, Db, kGdnLdT);
#pragma unroll
        for (int ii = 0; ii < 4; ++ii) {
          const int i = wm + 16 * ii;
          float part = 0.0f;
#pragma unroll
          for (int jj = 0; jj < 4; ++jj)
            part = fmaf(dOb[i * kGdnLdT + gdnCol<false>(wn, jj)], acc[ii][jj], part);
          part = gdnRowSum(part);
          if (wn == 0)
            rowv[i] += part;
        }
        gdnZero(acc);
        gdnGemm<64, 64, kGdnC, false, false, kGdnNoScale>(acc, X, kGdnLdT, Db, kGdnLdT);
#pragma unroll
        for (int ii = 0; ii < 4; ++ii)
#pragma unroll
          for (int jj = 0; jj < 4; ++jj)
            u[ii][jj] = B2[(wm + 16 * ii) * kGdnLdT + gdnCol<false>(wn, jj)] - acc[ii][jj];
        gdnZero(acc);
        gdnGemm<64, 64, kGdnDk, false, true, kGdnRowScale>(acc, Kb, kGdnLdB, D, kGdnLdS, dec);
#pragma unroll
        for (int ii = 0; ii < 4; ++ii)
#pragma unroll
          for (int jj = 0; jj < 4; ++jj)
            B1[(wm + 16 * ii) * kGdnLdT + gdnCol<true>(wn, jj)] = acc[ii][jj];
      }
      __syncthreads();
      // R = B1 + Mᵀ dO.
      {
        float acc[4][4];
#pragma unroll
        for (int ii = 0; ii < 4; ++ii)
#pragma unroll
          for (int jj = 0; jj < 4; ++jj)
            acc[ii][jj] = B1[(wm + 16 * ii) * kGdnLdT + gdnCol<false>(wn, jj)];
        gdnGemm<64, 64, kGdnC, true, false, kGdnNoScale>(acc, Mm, kGdnLdT, dOb, kGdnLdT);
#pragma unroll
        for (int ii = 0; ii < 4; ++ii)
#pragma unroll
          for (int jj = 0; jj < 4; ++jj)
            B1[(wm + 16 * ii) * kGdnLdT + gdnCol<false>(wn, jj)] = acc[ii][jj];
      }
      __syncthreads();
      // GK = Tmᵀ R; dU = β GK (dv, B2); dβ; the dg increment do·o − v·dU (rowv).
      {
        float vv[4][4];
#pragma unroll
        for (int ii = 0; ii < 4; ++ii)
#pragma unroll
          for (int jj = 0; jj < 4; ++jj) {
            const int i = wm + 16 * ii;
            vv[ii][jj] = i < n ? ld(v[v0 + i * rowV + gdnCol<false>(wn, jj)]) : 0.0f;
          }
        float acc[4][4];
        gdnZero(acc);
        gdnGemm<64, 64, kGdnC, true, false, kGdnNoScale>(acc, Tm, kGdnLdT, B1, kGdnLdT);
#pragma unroll
        for (int ii = 0; ii < 4; ++ii) {
          const int i = wm + 16 * ii;
          float pb = 0.0f, pv = 0.0f;
#pragma unroll
          for (int jj = 0; jj < 4; ++jj) {
            const int e = gdnCol<false>(wn, jj);
            const float du = bet[i] * acc[ii][jj];
            pb = fmaf(u[ii][jj], acc[ii][jj], pb);
            pv = fmaf(vv[ii][jj], du, pv);
            B2[i * kGdnLdT + e] = du;
            if (i < n)
              st(dv + v0 + i * rowV + e, du);
          }
          pb = gdnRowSum(pb);
          pv = gdnRowSum(pv);
          if (wn == 0) {
            rowv[i] -= pv;
            if (i < n)
              st(dbeta + (b * T + t0 + i) * H + h, pb);
          }
        }
      }
      __syncthreads();
      // dg (warp 0): reverse cumsum of rowv continuing the later chunks' sum.
      if (tid < 32) {
        const int i0 = 2 * tid, i1 = i0 + 1;
        const float r0 = rowv[i0], r1 = rowv[i1], pair = r0 + r1;
        float scan = pair; // Σ of the pairs of lanes >= tid
#pragma unroll
        for (int offset = 1; offset < 32; offset <<= 1) {
          const float down = __shfl_down_sync(0xffffffffu, scan, offset);
          if (tid + offset < 32)
            scan += down;
        }
        float after = __shfl_down_sync(0xffffffffu, scan, 1); // Σ of the lanes > tid
        if (tid == 31)
          after = 0.0f;
        const float later = carry + after;
        if (i0 < n)
          st(dg + (b * T + t0 + i0) * H + h, later + pair);
        if (i1 < n)
          st(dg + (b * T + t0 + i1) * H + h, later + r1);
        carry += __shfl_sync(0xffffffffu, scan, 0);
      }
      // P = lower_incl(Λ ⊙ dO Δᵀ) into Mm and transposed into Tm; E into X.
      {
        float acc[4][4];
        gdnZero(acc);
        gdnGemm<64, 64, kGdnDv, false, true, kGdnNoScale>(acc, dOb, kGdnLdT, Db, kGdnLdT);
#pragma unroll
        for (int ii = 0; ii < 4; ++ii)
#pragma unroll
          for (int jj = 0; jj < 4; ++jj) {
            const int i = wm + 16 * ii, j = gdnCol<true>(wn, jj);
            const float val = j <= i ? expf(gam[i] - gam[j]) * acc[ii][jj] : 0.0f;
            Mm[i * kGdnLdT + j] = val;
            Tm[j * kGdnLdT + i] = val;
          }
        float acc2[4][4];
        gdnZero(acc);
        gdnZero(acc2);
        gdnGemm<64, 64, kGdnDv, false, true, kGdnNoScale>(acc, Db, kGdnLdT, B2, kGdnLdT);
        gdnGemm<64, 64, kGdnDv, false, true, kGdnNoScale>(acc2, B2, kGdnLdT, Db, kGdnLdT);
#pragma unroll
        for (int ii = 0; ii < 4; ++ii)
#pragma unroll
          for (int jj = 0; jj < 4; ++jj) {
            const int r = wm + 16 * ii, s = gdnCol<true>(wn, jj);
            float val = 0.0f;
            if (r < s)
              val = -expf(gam[s] - gam[r]) * acc[ii][jj];
            else if (r > s)
              val = -expf(gam[r] - gam[s]) * acc2[ii][jj];
            X[r * kGdnLdT + s] = val;
          }
      }
      __syncthreads();
      // dq = diag(Γ) dO S + P K; dk = diag(dec) Δ D + Pᵀ Q + E K − diag(Γ) dU S.
      {
        float acc[4][8];
        gdnZero(acc);
        gdnGemm<64, 128, kGdnDv, false, false, kGdnRowScale>(acc, dOb, kGdnLdT, S, kGdnLdS,
                                                              Gam);
        gdnGemm<64, 128, kGdnC, false, false, kGdnNoScale>(acc, Mm, kGdnLdT, Kb, kGdnLdB);
#pragma unroll
        for (int ii = 0; ii < 4; ++ii) {
          const int i = wm + 16 * ii;
          if (i < n)
#pragma unroll
            for (int jj = 0; jj < 8; ++jj)
              st(dq + qk0 + i * rowKQ + gdnCol<false>(wn, jj), acc[ii][jj]);
        }
        gdnZero(acc);
        gdnGemm<64, 128, kGdnDv, false, false, kGdnRowScale>(acc, Db, kGdnLdT, D, kGdnLdS, dec);
        gdnGemm<64, 128, kGdnC, false, false, kGdnNoScale>(acc, Tm, kGdnLdT, Qb, kGdnLdB);
        gdnGemm<64, 128, kGdnC, false, false, kGdnNoScale>(acc, X, kGdnLdT, Kb, kGdnLdB);
        gdnGemm<64, 128, kGdnDv, false, false, kGdnRowScale>(acc, B2, kGdnLdT, S, kGdnLdS,
                                                              nGam);
#pragma unroll
        for (int ii = 0; ii < 4; ++ii) {
          const int i = wm + 16 * ii;
          if (i < n)
#pragma unroll
            for (int jj = 0; jj < 8; ++jj)
              st(dk + qk0 + i * rowKQ + gdnCol<false>(wn, jj), acc[ii][jj]);
        }
      }
      if (c == 0)
        break; // D before the sequence is not needed
      __syncthreads();
      // D ← Γ_63 D + dOᵀ diag(Γ) Q − dUᵀ diag(Γ) K.
      {
        const float gLast = Gam[kGdnC - 1];
        float acc[4][8];
#pragma unroll
        for (int ii = 0; ii < 4; ++ii)
#pragma unroll
          for (int jj = 0; jj < 8; ++jj)
            acc[ii][jj] = gLast * D[(wm + 16 * ii) * kGdnLdS + gdnCol<false>(wn, jj)];
        gdnGemm<64, 128, kGdnC, true, false, kGdnKScale>(acc, dOb, kGdnLdT, Qb, kGdnLdB, Gam);
        gdnGemm<64, 128, kGdnC, true, false, kGdnKScale>(acc, B2, kGdnLdT, Kb, kGdnLdB, nGam);
#pragma unroll
        for (int ii = 0; ii < 4; ++ii)
#pragma unroll
          for (int jj = 0; jj < 8; ++jj)
            D[(wm + 16 * ii) * kGdnLdS + gdnCol<false>(wn, jj)] = acc[ii][jj];
      }
    }
  }
}

} // namespace fk
