// fusion/gdn.cuh - Gated DeltaNet: the short causal convolution and the gated delta rule.
//
// Kinds (runtime/src/cpu/causal_conv1d_kernel.cc, gdn_kernel.cc, grad_mixer_kernels.cc and
// decode_kernels.cc are the references):
//   causalConv1d      y[b,t,c] = Σ_{j<K} w[c,j]·x[b,t−K+1+j,c] (x = 0 before the row), fp32 in
//                     tap order; one thread per output element (grid-stride, c fastest).
//   causalConv1dGrad  dx[b,s,c] = Σ_j w[c,j]·dy[b,s+K−1−j,c], dw[c,j] = Σ_{b,t} dy·x[t−K+1+j]
//                     (fp64 like the CPU); one block per 32 channels, its warps stride over the
//                     B·T rows, dw partials combined in warp order (deterministic).
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
// Faster versions: the chunked WY form of MODEL.md §4.2/4.3 on tensor cores (per chunk of
// 64 tokens: A = strict_lower(β Λ ⊙ K Kᵀ) and Tm = (I + A)⁻¹ by blocked forward substitution,
// Wm/Um/Ũ/O/Hs' as bf16 wgmma GEMMs with fp32 accumulation; one pass materialising the
// chunk-boundary states, then chunks in parallel), so the sequence is walked once per 64
// tokens instead of per token; the backward likewise per chunk (§4.3) with the chunk states
// stored by the forward pass instead of recomputed, and dq/dk reduced with wgmma instead of
// a shared-memory column sum per token (the per-token backward also spills ~200 bytes per
// thread at 128 registers). The conv kernels would load 16-byte vectors of
// channels and reuse x across consecutive time steps; causal_conv1d_grad would split the
// rows over more blocks (64 blocks at C = 2048) with a deterministic second-stage dw sum.
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

/// causal_conv1d: x [B,T,C], w [C,K] -> y [B,T,C]; n = B·T·C.
template <class TX, class TW, class TY>
__device__ void causalConv1d(const TX *x, const TW *w, TY *y, int64_t n, int64_t T, int64_t C,
                             int64_t K) {
  for (int64_t i = globalThread(); i < n; i += gridThreads()) {
    const int64_t c = i % C, t = (i / C) % T;
    float acc = 0.0f;
    for (int64_t j = 0; j < K; ++j) {
      const int64_t source = t - K + 1 + j;
      if (source >= 0)
        acc += ld(w[c * K + j]) * ld(x[i + (source - t) * C]);
    }
    st(y + i, acc);
  }
}

/// causal_conv1d_grad: blockIdx.x owns channels [32·blockIdx.x, +32) (lane = channel), warp w
/// of the block takes rows (b, t) = w, w + warps, ... of the rows = B·T; dw partials (fp64)
/// are combined in warp order through shared memory.
template <class TX, class TW, class TG, class TD>
__device__ void causalConv1dGrad(const TX *x, const TW *w, const TG *dy, TD *dx, float *dw,
                                 int64_t rows, int64_t T, int64_t C, int64_t K) {
  __shared__ double partial[32][33];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int64_t c = (int64_t)blockIdx.x * 32 + lane;
  const bool active = c < C;
  float wv[kGdnMaxTaps];
  double acc[kGdnMaxTaps];
#pragma unroll
  for (int j = 0; j < kGdnMaxTaps; ++j) {
    wv[j] = active && j < K ? ld(w[c * K + j]) : 0.0f;
    acc[j] = 0.0;
  }
  if (active) {
    for (int64_t r = warp; r < rows; r += warps) {
      const int64_t t = r % T, at = r * C + c;
      const double g = ld(dy[at]);
      double sum = 0.0;
#pragma unroll
      for (int j = 0; j < kGdnMaxTaps; ++j) {
        if (j < K) {
          const int64_t later = t + K - 1 - j, source = t - K + 1 + j;
          if (later < T)
            sum += (double)wv[j] * (double)ld(dy[at + (later - t) * C]);
          if (source >= 0)
            acc[j] += g * (double)ld(x[at + (source - t) * C]);
        }
      }
      st(dx + at, (float)sum);
    }
  }
#pragma unroll
  for (int j = 0; j < kGdnMaxTaps; ++j) {
    if (j >= K)
      break;
    __syncthreads(); // readers of the previous tap are done
    partial[warp][lane] = acc[j];
    __syncthreads();
    if (warp == 0 && active) {
      double total = partial[0][lane];
      for (int q = 1; q < warps; ++q)
        total += partial[q][lane];
      dw[c * K + j] = (float)total;
    }
  }
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

} // namespace fk
