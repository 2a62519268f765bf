// Hand-written CUDA kernels for the runtime tests (test_kernels.cu).
//
// The tests and the device check need real device code in their plans before the compiler's
// code generator exists. These kernels follow the runtime's launch ABI: one pointer per
// buffer argument (inputs, then outputs), then one int64_t per integer argument. Float
// attributes travel as int_args holding the float's bit pattern, since the ABI has no float
// scalars. Compiled to cubins (sm_80, sm_90a) at build time and embedded into the test plans.

#include <cstdint>

namespace {
__device__ float bitsToFloat(int64_t bits) { return __int_as_float(static_cast<int>(bits)); }
} // namespace

/// out[i] = value + step * i; int_args: n, bits(value), bits(step).
extern "C" __global__ void fusion_test_fill(float *out, int64_t n, int64_t valueBits,
                                            int64_t stepBits) {
  float value = bitsToFloat(valueBits), step = bitsToFloat(stepBits);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = value + step * static_cast<float>(i);
}

/// out = a + b; int_args: n.
extern "C" __global__ void fusion_test_add(const float *a, const float *b, float *out,
                                           int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}

/// out = a * b; int_args: n.
extern "C" __global__ void fusion_test_mul(const float *a, const float *b, float *out,
                                           int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = a[i] * b[i];
}

/// out = x * sigmoid(x); int_args: n.
extern "C" __global__ void fusion_test_silu(const float *x, float *out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = x[i] / (1.0f + expf(-x[i]));
}

/// y = x / sqrt(mean(x^2) + eps) * w, one block of 256 threads per row; int_args: rows, d,
/// bits(eps).
extern "C" __global__ void fusion_test_rms_norm(const float *x, const float *w, float *y,
                                                int64_t rows, int64_t d, int64_t epsBits) {
  __shared__ float partial[256];
  int64_t row = blockIdx.x;
  if (row >= rows)
    return;
  const float *xr = x + row * d;
  float sum = 0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
    sum += xr[j] * xr[j];
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride)
      partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  float scale = rsqrtf(partial[0] / static_cast<float>(d) + bitsToFloat(epsBits));
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
    y[row * d + j] = xr[j] * scale * w[j];
}
