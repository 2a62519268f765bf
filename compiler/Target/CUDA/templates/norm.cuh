// fusion/norm.cuh - row normalisations over the last dimension.
//
// Row-group kernels (rms_norm, l2_norm, l2_norm_grad, rms_norm_grad): a row of d elements is
// handled by a group of T threads (T a power of two, 1 <= T <= 512, the kernel's
// `groupThreads` argument); a block holds R = blockDim.x / T groups, so short rows (the
// per-head q/k norms, d = 64..128) take a few lanes of a warp each and a warp holds several
// rows. Thread t of a group owns the 4-element column chunks q = t + T·k, k < kRowSlots
// (columns 4q .. 4q+3), and keeps its x / dy values in registers between the reduction and the
// store, so a row is read once. When d is a multiple of 4 and every row buffer is aligned to
// 4 elements (checked in the kernel, uniform), a chunk moves as one 8-byte (bf16, f16) or
// 16-byte (f32) vector; otherwise the same threads load its elements one at a time, guarded
// by j < d. Rows go to groups in a grid-stride loop whose trip count is uniform over the
// block (the multi-warp group sums synchronise the block). Group sums run in a fixed order
// (each thread's chunks in column order, then an xor butterfly over the group's lanes, then
// the group's warps in index order): fp64 like the CPU kernels, except rms_norm's fp32 sum of
// squares. Every element of a row is read before any of it is written, by the thread that
// writes it, so outputs may alias inputs.
//
// rmsNorm (the former one-block-per-row kernel) remains for rows longer than the groups hold
// (d > 512 · 4 · kRowSlots = 4096); the launch passes groupThreads = 0 to select it.
#pragma once
#include "fusion/common.cuh"

namespace fk {

/// 4-element chunks per thread of the row-group kernels: d <= 8·T, T <= 512 (more chunks
/// per thread spill under the kernels' register budget).
constexpr int kRowSlots = 2;

/// rms_norm for any d: one block per row, blockDim a multiple of 32; fp32 sum of squares in a
/// fixed order.
template <class TX, class TW, class TO>
__device__ void rmsNorm(const TX *x, const TW *w, TO *out, int64_t rows, int64_t d, float eps) {
  __shared__ float scratch[32];
  int64_t row = blockIdx.x;
  if (row >= rows)
    return;
  const TX *xr = x + row * d;
  TO *yr = out + row * d;
  float acc = 0.0f;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    float v = ld(xr[j]);
    acc += v * v;
  }
  float inv = rsqrtf(blockSum(acc, scratch) / (float)d + eps);
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
    st(yr + j, ld(xr[j]) * inv * ld(w[j]));
}

//===----------------------------------------------------------------------===//
// Row-group helpers
//===----------------------------------------------------------------------===//


/// True when `p` may be read as 4-element vectors.
template <class T> __device__ __forceinline__ bool rowAligned(const T *p) {
  return (reinterpret_cast<uintptr_t>(p) % (4 * sizeof(T))) == 0;
}

/// Columns [j, j + 4) of a row of n as floats (0 past n, or when !in).
template <class T>
__device__ __forceinline__ void rowLoad(const T *row, int j, int n, bool vec, bool in,
                                        float v[4]) {
  if (in && vec && j < n) {
    ldVec4(row + j, v);
    return;
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
    v[i] = in && j + i < n ? ld(row[j + i]) : 0.0f;
}
/// Stores columns [j, j + 4) of a row of n (those < n).
template <class T>
__device__ __forceinline__ void rowStore(T *row, int j, int n, bool vec, const float v[4]) {
  if (vec && j < n) {
    stVec4(row + j, v);
    return;
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
    if (j + i < n)
      st(row + j + i, v[i]);
}

/// Sums (a, b) over the T threads of each row group (T a power of two <= 512); every thread
/// of the group gets the totals (bitwise equal: xor butterflies, then warps in order). Called
/// by every thread of the block (full-warp shuffles; T > 32 synchronises the block).
/// `scratch` holds 32 double2 of shared memory.
__device__ __forceinline__ double2 groupSum2(double a, double b, int64_t groupThreads,
                                             double2 *scratch) {
  const int span = groupThreads < 32 ? (int)groupThreads : 32;
  for (int offset = span >> 1; offset > 0; offset >>= 1) {
    a += __shfl_xor_sync(0xffffffffu, a, offset);
    b += __shfl_xor_sync(0xffffffffu, b, offset);
  }
  if (groupThreads <= 32)
    return make_double2(a, b);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int warpsPerGroup = (int)(groupThreads >> 5);
  int first = (int)(threadIdx.x / groupThreads) * warpsPerGroup;
  __syncthreads(); // earlier readers of scratch are done
  if (lane == 0)
    scratch[warp] = make_double2(a, b);
  __syncthreads();
  double2 sum = scratch[first];
  for (int w = 1; w < warpsPerGroup; ++w) {
    sum.x += scratch[first + w].x;
    sum.y += scratch[first + w].y;
  }
  return sum;
}

/// groupSum2's fp32 single-value form (same contract; `scratch` holds 32 floats).
__device__ __forceinline__ float groupSumF(float a, int64_t groupThreads, float *scratch) {
  const int span = groupThreads < 32 ? (int)groupThreads : 32;
  for (int offset = span >> 1; offset > 0; offset >>= 1)
    a += __shfl_xor_sync(0xffffffffu, a, offset);
  if (groupThreads <= 32)
    return a;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int warpsPerGroup = (int)(groupThreads >> 5);
  int first = (int)(threadIdx.x / groupThreads) * warpsPerGroup;
  __syncthreads();
  if (lane == 0)
    scratch[warp] = a;
  __syncthreads();
  float sum = scratch[first];
  for (int w = 1; w < warpsPerGroup; ++w)
    sum += scratch[first + w];
  return sum;
}

//===----------------------------------------------------------------------===//
// Row-group kernels
//===----------------------------------------------------------------------===//

/// rms_norm: out[r, j] = x[r, j] / sqrt(mean_j x[r, j]^2 + eps) * w[j] (fp32 sums).
template <bool vec, class TX, class TW, class TO>
__device__ void rmsNormRowsImpl(const TX *x, const TW *w, TO *out, int64_t rows, int64_t d,
                                int64_t groupThreads, float eps) {
  __shared__ float scratch[32];
  const int T = (int)groupThreads, R = blockDim.x / T, n = (int)d;
  const int t = threadIdx.x % T, g = threadIdx.x / T;
  for (int64_t base = (int64_t)blockIdx.x * R; base < rows; base += (int64_t)gridDim.x * R) {
    const int64_t r = base + g;
    const bool active = r < rows;
    const TX *xr = x + (active ? r : 0) * d;
    float xv[kRowSlots][4];
    float sumSq = 0.0f;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      rowLoad(xr, 4 * (t + T * k), n, vec, active, xv[k]);
#pragma unroll
      for (int i = 0; i < 4; ++i)
        sumSq += xv[k][i] * xv[k][i];
    }
    const float inv = rsqrtf(groupSumF(sumSq, T, scratch) / (float)d + eps);
    if (!active)
      continue;
    TO *yr = out + r * d;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      const int j = 4 * (t + T * k);
      if (j >= n)
        break;
      float wv[4], y[4];
      rowLoad(w, j, n, vec, true, wv);
#pragma unroll
      for (int i = 0; i < 4; ++i)
        y[i] = xv[k][i] * inv * wv[i];
      rowStore(yr, j, n, vec, y);
    }
  }
}

/// l2_norm: out[r, j] = scale · x[r, j] / sqrt(Σ_j x[r, j]² + eps).
template <bool vec, class TX, class TO>
__device__ void l2NormImpl(const TX *x, TO *out, int64_t rows, int64_t d, int64_t groupThreads,
                       double eps, double scale) {
  __shared__ double2 scratch[32];
  const int T = (int)groupThreads, R = blockDim.x / T, n = (int)d;
  const int t = threadIdx.x % T, g = threadIdx.x / T;
  for (int64_t base = (int64_t)blockIdx.x * R; base < rows; base += (int64_t)gridDim.x * R) {
    const int64_t r = base + g;
    const bool active = r < rows;
    const TX *xr = x + (active ? r : 0) * d;
    float xv[kRowSlots][4];
    double sumSq = 0.0;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      rowLoad(xr, 4 * (t + T * k), n, vec, active, xv[k]);
#pragma unroll
      for (int i = 0; i < 4; ++i)
        sumSq += (double)xv[k][i] * xv[k][i];
    }
    const double factor = scale / sqrt(groupSum2(sumSq, 0.0, T, scratch).x + eps);
    if (!active)
      continue;
    TO *yr = out + r * d;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      const int j = 4 * (t + T * k);
      if (j >= n)
        break;
      float y[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        y[i] = (float)(xv[k][i] * factor);
      rowStore(yr, j, n, vec, y);
    }
  }
}

/// l2_norm_grad: ν = sqrt(‖x‖² + eps), dx = (scale/ν)(dy − x (x·dy)/ν²) per row.
template <bool vec, class TX, class TG, class TO>
__device__ void l2NormGradImpl(const TX *x, const TG *dy, TO *dx, int64_t rows, int64_t d,
                           int64_t groupThreads, double eps, double scale) {
  __shared__ double2 scratch[32];
  const int T = (int)groupThreads, R = blockDim.x / T, n = (int)d;
  const int t = threadIdx.x % T, g = threadIdx.x / T;
  for (int64_t base = (int64_t)blockIdx.x * R; base < rows; base += (int64_t)gridDim.x * R) {
    const int64_t r = base + g;
    const bool active = r < rows;
    const TX *xr = x + (active ? r : 0) * d;
    const TG *gr = dy + (active ? r : 0) * d;
    float xv[kRowSlots][4], gv[kRowSlots][4];
    double sumSq = 0.0, dot = 0.0;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      const int j = 4 * (t + T * k);
      rowLoad(xr, j, n, vec, active, xv[k]);
      rowLoad(gr, j, n, vec, active, gv[k]);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        sumSq += (double)xv[k][i] * xv[k][i];
        dot += (double)xv[k][i] * gv[k][i];
      }
    }
    const double2 sums = groupSum2(sumSq, dot, T, scratch);
    const double nu = sqrt(sums.x + eps);
    const double projection = sums.y / (nu * nu), factor = scale / nu;
    if (!active)
      continue;
    TO *dr = dx + r * d;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      const int j = 4 * (t + T * k);
      if (j >= n)
        break;
      float out[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        out[i] = (float)(factor * (gv[k][i] - xv[k][i] * projection));
      rowStore(dr, j, n, vec, out);
    }
  }
}

/// rms_norm_grad's module-level scratch: the per-block dw partials and the count of blocks
/// that have written theirs. A class template, so only modules that launch rms_norm_grad
/// hold it. The last block resets the count, so every launch finds it 0. One launch at a time
/// per module: the runtime loads one module per plan kernel and computes on one stream.
template <int Tag> struct DwScratch {
  /// Capacity in doubles: the launch keeps gridDim.x · d within it.
  static constexpr int64_t kCapacity = 1 << 20;
  __device__ static double *partials() {
    static double storage[kCapacity];
    return storage;
  }
  __device__ static unsigned int *counter() {
    static unsigned int count = 0;
    return &count;
  }
  /// Finishers past their wait (see rmsNormGrad).
  __device__ static unsigned int *finished() {
    static unsigned int count = 0;
    return &count;
  }
};

/// Blocks that sum rms_norm_grad's dw partials (each a tile of columns). They wait for the
/// other blocks' partials, so W must stay well below the blocks the GPU holds at once (the
/// blocks still to arrive are fewer than W and every other block has exited).
constexpr int kDwFinishers = 32;

/// rms_norm_grad: r = (mean_j x² + eps)^-1/2, dx = r (dy⊙w − x r mean_j(dy⊙w⊙x r)),
/// dw[j] = Σ_rows dy x r (f32). Each group accumulates dw for its columns in fp64 in its own
/// row of dynamic shared memory (R · d doubles, block-private, no atomics) over its rows;
/// the block adds its groups in order into partial slot blockIdx.x of the scratch and takes a
/// ticket (an atomic counter after a fence). The last W = min(gridDim.x, kDwFinishers)
/// blocks to take one wait until the counter shows every partial written, then finisher f
/// sums the partials of column tile f: its threads split into blockDim.x / columns slices,
/// slice s sums a contiguous range of partials per column (four fixed chains), then the
/// slices are added in order. Deterministic: every sum has a fixed order for a given launch
/// geometry (which block finishes a tile does not matter).
template <bool vec, class TX, class TW, class TG, class TD>
__device__ void rmsNormGradImpl(const TX *x, const TW *w, const TG *dy, TD *dx, float *dw,
                            int64_t rows, int64_t d, int64_t groupThreads, double eps) {
  __shared__ double2 scratch[32];
  __shared__ unsigned int ticket;
  extern __shared__ double acc[]; // [R][d]
  const int T = (int)groupThreads, R = blockDim.x / T, n = (int)d;
  const int t = threadIdx.x % T, g = threadIdx.x / T;
  double *myAcc = acc + g * n;
  for (int j = t; j < n; j += T)
    myAcc[j] = 0.0;
  for (int64_t base = (int64_t)blockIdx.x * R; base < rows; base += (int64_t)gridDim.x * R) {
    const int64_t r = base + g;
    const bool active = r < rows;
    const TX *xr = x + (active ? r : 0) * d;
    const TG *gr = dy + (active ? r : 0) * d;
    float xv[kRowSlots][4], gv[kRowSlots][4];
    double sumSq = 0.0, dot = 0.0;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      const int j = 4 * (t + T * k);
      float wv[4];
      rowLoad(xr, j, n, vec, active, xv[k]);
      rowLoad(gr, j, n, vec, active, gv[k]);
      rowLoad(w, j, n, vec, active, wv);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        sumSq += (double)xv[k][i] * xv[k][i];
        dot += (double)gv[k][i] * (double)wv[i] * xv[k][i];
      }
    }
    const double2 sums = groupSum2(sumSq, dot, T, scratch);
    const double rs = 1.0 / sqrt(sums.x / (double)d + eps);
    const double mean = sums.y * rs / (double)d; // mean(ĝ ⊙ x̂)
    if (!active)
      continue;
    TD *dr = dx + r * d;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      const int j = 4 * (t + T * k);
      if (j >= n)
        break;
      float wv[4], out[4];
      rowLoad(w, j, n, vec, true, wv);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        out[i] = (float)(rs * (gv[k][i] * (double)wv[i] - xv[k][i] * rs * mean));
        if (j + i < n)
          myAcc[j + i] += (double)gv[k][i] * xv[k][i] * rs;
      }
      rowStore(dr, j, n, vec, out);
    }
  }

  // This block's dw partial: its groups in order.
  __syncthreads();
  double *partials = DwScratch<0>::partials();
  double *slot = partials + (int64_t)blockIdx.x * d;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    double sum = acc[j];
    for (int q = 1; q < R; ++q)
      sum += acc[q * n + j];
    slot[j] = sum;
  }

  // The last W blocks to take a ticket (W = min(gridDim.x, kDwFinishers)) wait until every
  // partial is written, then finisher f sums column tile f (ceil(d / W) columns).
  __threadfence();
  __syncthreads();
  unsigned int *counter = DwScratch<0>::counter();
  if (threadIdx.x == 0)
    ticket = atomicAdd(counter, 1u);
  __syncthreads();
  const unsigned int blocks = gridDim.x;
  const unsigned int finishers = min(blocks, (unsigned int)kDwFinishers);
  if (ticket < blocks - finishers)
    return;
  if (threadIdx.x == 0)
    while (atomicAdd(counter, 0u) < blocks)
      __nanosleep(64);
  __syncthreads();
  __threadfence();
  const int tileCols = (n + (int)finishers - 1) / (int)finishers;
  const int col0 = (int)(ticket - (blocks - finishers)) * tileCols;
  const int cols = max(0, min(n, col0 + tileCols) - col0);
  // Slice s of the block's threads sums partials [s·per, (s+1)·per) of a column in four
  // chains (p ≡ 0, 1, 2, 3 mod 4 from the range start, combined as (c0 + c1) + (c2 + c3));
  // the slices' sums (in acc, which holds R·d >= blockDim.x doubles) are then added in order.
  const int slices = cols > 0 && cols <= (int)blockDim.x ? (int)blockDim.x / cols : 1;
  const int per = ((int)blocks + slices - 1) / slices;
  for (int e = threadIdx.x; e < slices * cols; e += blockDim.x) {
    const int sl = e / cols, j = col0 + e % cols;
    const int p0 = min((int)blocks, sl * per), p1 = min((int)blocks, p0 + per);
    double c0 = 0.0, c1 = 0.0, c2 = 0.0, c3 = 0.0;
    int p = p0;
    for (; p + 4 <= p1; p += 4) {
      c0 += __ldcg(partials + (int64_t)p * d + j);
      c1 += __ldcg(partials + (int64_t)(p + 1) * d + j);
      c2 += __ldcg(partials + (int64_t)(p + 2) * d + j);
      c3 += __ldcg(partials + (int64_t)(p + 3) * d + j);
    }
    for (; p < p1; ++p)
      c0 += __ldcg(partials + (int64_t)p * d + j);
    acc[e] = (c0 + c1) + (c2 + c3);
  }
  __syncthreads();
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    double sum = acc[c];
    for (int sl = 1; sl < slices; ++sl)
      sum += acc[sl * cols + c];
    dw[col0 + c] = (float)sum;
  }
  // The last finisher past its wait resets both counters for the next launch.
  if (threadIdx.x == 0 &&
      atomicAdd(DwScratch<0>::finished(), 1u) == finishers - 1) {
    *counter = 0;
    *DwScratch<0>::finished() = 0;
  }
}

//===----------------------------------------------------------------------===//
// Entry points: the vector (aligned, d % 4 == 0) or scalar form of each kernel, chosen once
// per launch (separate code, so neither carries the other's registers).
//===----------------------------------------------------------------------===//

/// rms_norm; groupThreads = 0 selects the one-block-per-row kernel (long rows).
template <class TX, class TW, class TO>
__device__ void rmsNormRows(const TX *x, const TW *w, TO *out, int64_t rows, int64_t d,
                            int64_t groupThreads, float eps) {
  if (groupThreads == 0)
    return rmsNorm(x, w, out, rows, d, eps);
  if (d % 4 == 0 && rowAligned(x) && rowAligned(w) && rowAligned(out))
    return rmsNormRowsImpl<true>(x, w, out, rows, d, groupThreads, eps);
  rmsNormRowsImpl<false>(x, w, out, rows, d, groupThreads, eps);
}

template <class TX, class TO>
__device__ void l2Norm(const TX *x, TO *out, int64_t rows, int64_t d, int64_t groupThreads,
                       double eps, double scale) {
  if (d % 4 == 0 && rowAligned(x) && rowAligned(out))
    return l2NormImpl<true>(x, out, rows, d, groupThreads, eps, scale);
  l2NormImpl<false>(x, out, rows, d, groupThreads, eps, scale);
}

template <class TX, class TG, class TO>
__device__ void l2NormGrad(const TX *x, const TG *dy, TO *dx, int64_t rows, int64_t d,
                           int64_t groupThreads, double eps, double scale) {
  if (d % 4 == 0 && rowAligned(x) && rowAligned(dy) && rowAligned(dx))
    return l2NormGradImpl<true>(x, dy, dx, rows, d, groupThreads, eps, scale);
  l2NormGradImpl<false>(x, dy, dx, rows, d, groupThreads, eps, scale);
}

template <class TX, class TW, class TG, class TD>
__device__ void rmsNormGrad(const TX *x, const TW *w, const TG *dy, TD *dx, float *dw,
                            int64_t rows, int64_t d, int64_t groupThreads, double eps) {
  if (d % 4 == 0 && rowAligned(x) && rowAligned(w) && rowAligned(dy) && rowAligned(dx))
    return rmsNormGradImpl<true>(x, w, dy, dx, dw, rows, d, groupThreads, eps);
  rmsNormGradImpl<false>(x, w, dy, dx, dw, rows, d, groupThreads, eps);
}

} // namespace fk
