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

/// Four consecutive elements as floats (ldVec4) or from floats (stVec4, round to nearest
/// even) in one 16-byte (f32) or 8-byte (bf16, f16) access; the caller checked that `p` is
/// aligned to 4 elements. Shared by the row-group norms and the causal conv kernels.
__device__ __forceinline__ void ldVec4(const float *p, float v[4]) {
  float4 q = *reinterpret_cast<const float4 *>(p);
  v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
}
__device__ __forceinline__ void ldVec4(const __nv_bfloat16 *p, float v[4]) {
  uint2 q = *reinterpret_cast<const uint2 *>(p);
  float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&q.x));
  float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&q.y));
  v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
}
__device__ __forceinline__ void ldVec4(const __half *p, float v[4]) {
  uint2 q = *reinterpret_cast<const uint2 *>(p);
  float2 a = __half22float2(*reinterpret_cast<const __half2 *>(&q.x));
  float2 b = __half22float2(*reinterpret_cast<const __half2 *>(&q.y));
  v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
}
__device__ __forceinline__ void stVec4(float *p, const float v[4]) {
  *reinterpret_cast<float4 *>(p) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void stVec4(__nv_bfloat16 *p, const float v[4]) {
  __nv_bfloat162 a = __floats2bfloat162_rn(v[0], v[1]), b = __floats2bfloat162_rn(v[2], v[3]);
  uint2 q;
  q.x = *reinterpret_cast<const unsigned *>(&a);
  q.y = *reinterpret_cast<const unsigned *>(&b);
  *reinterpret_cast<uint2 *>(p) = q;
}
__device__ __forceinline__ void stVec4(__half *p, const float v[4]) {
  __half2 a = __floats2half2_rn(v[0], v[1]), b = __floats2half2_rn(v[2], v[3]);
  uint2 q;
  q.x = *reinterpret_cast<const unsigned *>(&a);
  q.y = *reinterpret_cast<const unsigned *>(&b);
  *reinterpret_cast<uint2 *>(p) = q;
}

} // namespace fk
