// fusion/common.cuh - shared device helpers of FusionLLM's CUDA kernel templates.
//
// Every generated kernel includes this first. Storage types are float, __nv_bfloat16,
// __half (floats) and int32_t / int64_t (indices); arithmetic is fp32 (fp64 where a CPU
// reference kernel uses it), so results match the CPU backend up to rounding. `ld` widens
// any storage type to float, `st` rounds a float to the storage type (round to nearest even).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace fk {

__device__ __forceinline__ float ld(float v) { return v; }
__device__ __forceinline__ float ld(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float ld(__half v) { return __half2float(v); }
__device__ __forceinline__ float ld(int32_t v) { return (float)v; }
__device__ __forceinline__ float ld(int64_t v) { return (float)v; }

__device__ __forceinline__ void st(float *p, float v) { *p = v; }
__device__ __forceinline__ void st(__nv_bfloat16 *p, float v) { *p = __float2bfloat16(v); }
__device__ __forceinline__ void st(__half *p, float v) { *p = __float2half(v); }

/// Index loads: i32 or i64 buffers.
__device__ __forceinline__ int64_t ldIndex(int32_t v) { return v; }
__device__ __forceinline__ int64_t ldIndex(int64_t v) { return v; }

/// A double passed through an int64_t kernel argument (its bit pattern).
__device__ __forceinline__ double bitsToDouble(int64_t bits) { return __longlong_as_double(bits); }

/// First index and stride of a 1-D grid-stride loop.
__device__ __forceinline__ int64_t globalThread() {
  return (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t gridThreads() { return (int64_t)gridDim.x * blockDim.x; }

__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ float warpMax(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

/// Sum of `v` over the block, returned to every thread. blockDim.x must be a multiple of 32
/// (at most 1024); `scratch` holds 32 floats of shared memory. Fixed order: deterministic.
__device__ __forceinline__ float blockSum(float v, float *scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warpSum(v);
  __syncthreads();
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0f;
  return warpSum(v);
}
/// Maximum of `v` over the block (same contract as blockSum).
__device__ __forceinline__ float blockMax(float v, float *scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warpMax(v);
  __syncthreads();
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  return warpMax(v);
}
/// fp64 block sum (same contract; `scratch` holds 32 doubles).
__device__ __forceinline__ double blockSumF64(double v, double *scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  __syncthreads();
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

} // namespace fk
