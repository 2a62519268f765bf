// fusion/norm.cuh - row normalisations over the last dimension.
#pragma once
#include "fusion/common.cuh"

namespace fk {

/// rms_norm: out[r, j] = x[r, j] / sqrt(mean_j x[r, j]^2 + eps) * w[j]. One block per row,
/// blockDim a multiple of 32; fp32 sum of squares in a fixed order.
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

} // namespace fk

//===----------------------------------------------------------------------===//
// Row-group kernels: l2_norm, l2_norm_grad, rms_norm_grad
//===----------------------------------------------------------------------===//
//
// A row of d elements is handled by a group of T threads (T a power-of-two multiple of 32,
// the kernel's `groupThreads` argument); a block holds R = blockDim.x / T groups. Thread t of
// a group owns the columns j = t + T·k, k < kRowSlots, and keeps its x / dy values in
// registers between the reduction and the store, so a row is read once. Rows go to groups in
// a grid-stride loop whose trip count is uniform over the block (the multi-warp group sums
// synchronise the block). Reductions are fp64 in a fixed order (warp butterfly, then the
// group's warps in index order), as the CPU kernels sum in double. Every element of a row is
// read before any of it is written, by the thread that writes it, so outputs may alias inputs.

namespace fk {

/// Columns per thread of the row-group kernels: d <= 4 T, T <= 1024 (the launch checks).
constexpr int kRowSlots = 4;

/// Sums (a, b) over the T threads of each row group; every thread of the group gets the
/// totals (bitwise equal: xor butterflies, then warps in order). Called by every thread of
/// the block when T > 32. `scratch` holds 32 double2 of shared memory.
__device__ __forceinline__ double2 groupSum2(double a, double b, int64_t groupThreads,
                                             double2 *scratch) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    a += __shfl_xor_sync(0xffffffffu, a, offset);
    b += __shfl_xor_sync(0xffffffffu, b, offset);
  }
  if (groupThreads == 32)
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

/// l2_norm: out[r, j] = scale · x[r, j] / sqrt(Σ_j x[r, j]² + eps).
template <class TX, class TO>
__device__ void l2Norm(const TX *x, TO *out, int64_t rows, int64_t d, int64_t groupThreads,
                       double eps, double scale) {
  __shared__ double2 scratch[32];
  const int T = (int)groupThreads, R = blockDim.x / T, n = (int)d;
  const int t = threadIdx.x % T, g = threadIdx.x / T;
  for (int64_t base = (int64_t)blockIdx.x * R; base < rows; base += (int64_t)gridDim.x * R) {
    const int64_t r = base + g;
    const bool active = r < rows;
    const TX *xr = x + (active ? r : 0) * d;
    float xv[kRowSlots];
    double sumSq = 0.0;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      int j = t + T * k;
      xv[k] = active && j < n ? ld(xr[j]) : 0.0f;
      sumSq += (double)xv[k] * xv[k];
    }
    double factor = scale / sqrt(groupSum2(sumSq, 0.0, T, scratch).x + eps);
    if (!active)
      continue;
    TO *yr = out + r * d;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      int j = t + T * k;
      if (j < n)
        st(yr + j, (float)(xv[k] * factor));
    }
  }
}

/// l2_norm_grad: ν = sqrt(‖x‖² + eps), dx = (scale/ν)(dy − x (x·dy)/ν²) per row.
template <class TX, class TG, class TO>
__device__ void l2NormGrad(const TX *x, const TG *dy, TO *dx, int64_t rows, int64_t d,
                           int64_t groupThreads, double eps, double scale) {
  __shared__ double2 scratch[32];
  const int T = (int)groupThreads, R = blockDim.x / T, n = (int)d;
  const int t = threadIdx.x % T, g = threadIdx.x / T;
  for (int64_t base = (int64_t)blockIdx.x * R; base < rows; base += (int64_t)gridDim.x * R) {
    const int64_t r = base + g;
    const bool active = r < rows;
    const TX *xr = x + (active ? r : 0) * d;
    const TG *gr = dy + (active ? r : 0) * d;
    float xv[kRowSlots], gv[kRowSlots];
    double sumSq = 0.0, dot = 0.0;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      int j = t + T * k;
      bool in = active && j < n;
      xv[k] = in ? ld(xr[j]) : 0.0f;
      gv[k] = in ? ld(gr[j]) : 0.0f;
      sumSq += (double)xv[k] * xv[k];
      dot += (double)xv[k] * gv[k];
    }
    double2 sums = groupSum2(sumSq, dot, T, scratch);
    double nu = sqrt(sums.x + eps);
    double projection = sums.y / (nu * nu), factor = scale / nu;
    if (!active)
      continue;
    TO *dr = dx + r * d;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      int j = t + T * k;
      if (j < n)
        st(dr + j, (float)(factor * (gv[k] - xv[k] * projection)));
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
};

/// rms_norm_grad: r = (mean_j x² + eps)^-1/2, dx = r (dy⊙w − x r mean_j(dy⊙w⊙x r)),
/// dw[j] = Σ_rows dy x r (f32). Each group accumulates dw for its columns in fp64 in its own
/// row of dynamic shared memory (R · max(d, 32) doubles, block-private, no atomics) over its
/// rows; the block adds its groups in order into partial slot blockIdx.x of the scratch; the
/// last block to finish (an atomic ticket after a fence) sums the partials in block order.
/// Deterministic: every sum has a fixed order for a given launch geometry.
template <class TX, class TW, class TG, class TD>
__device__ void rmsNormGrad(const TX *x, const TW *w, const TG *dy, TD *dx, float *dw,
                            int64_t rows, int64_t d, int64_t groupThreads, double eps) {
  __shared__ double2 scratch[32];
  __shared__ bool isLast;
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
    float xv[kRowSlots], gv[kRowSlots];
    double sumSq = 0.0, dot = 0.0;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      int j = t + T * k;
      bool in = active && j < n;
      xv[k] = in ? ld(xr[j]) : 0.0f;
      gv[k] = in ? ld(gr[j]) : 0.0f;
      sumSq += (double)xv[k] * xv[k];
      dot += (double)gv[k] * (in ? (double)ld(w[j]) : 0.0) * xv[k];
    }
    double2 sums = groupSum2(sumSq, dot, T, scratch);
    double rs = 1.0 / sqrt(sums.x / (double)d + eps);
    double mean = sums.y * rs / (double)d; // mean(ĝ ⊙ x̂)
    if (!active)
      continue;
    TD *dr = dx + r * d;
#pragma unroll
    for (int k = 0; k < kRowSlots; ++k) {
      int j = t + T * k;
      if (j < n) {
        double wj = ld(w[j]);
        st(dr + j, (float)(rs * (gv[k] * wj - xv[k] * rs * mean)));
        myAcc[j] += (double)gv[k] * xv[k] * rs;
      }
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

  // The last block to finish sums the partials.
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0)
    isLast = atomicAdd(DwScratch<0>::counter(), 1u) == gridDim.x - 1;
  __syncthreads();
  if (!isLast)
    return;
  __threadfence();
  // Thread j sums column j over the partials in block order, four independent chains
  // (partials p ≡ 0, 1, 2, 3 mod 4, combined as (c0 + c1) + (c2 + c3)) so the loads of a
  // thread overlap; consecutive threads read consecutive columns. Fixed order: deterministic.
  const int blocks = gridDim.x;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    double c0 = 0.0, c1 = 0.0, c2 = 0.0, c3 = 0.0;
    int p = 0;
    for (; p + 4 <= blocks; p += 4) {
      c0 += __ldcg(partials + (int64_t)p * d + j);
      c1 += __ldcg(partials + (int64_t)(p + 1) * d + j);
      c2 += __ldcg(partials + (int64_t)(p + 2) * d + j);
      c3 += __ldcg(partials + (int64_t)(p + 3) * d + j);
    }
    for (; p < blocks; ++p)
      c0 += __ldcg(partials + (int64_t)p * d + j);
    dw[j] = (float)((c0 + c1) + (c2 + c3));
  }
  if (threadIdx.x == 0)
    *DwScratch<0>::counter() = 0;
}

} // namespace fk
