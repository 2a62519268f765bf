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
