// fusion/init.cuh - parameter initialisation (init_param, docs/op-kinds.md "init_param").
//
// The CPU's counter-based rules, bit for bit in the integer part: element i (flat index) draws
// Philox4x32-10 with key (seed_lo ^ param_index, seed_hi) and counter (i_lo, i_hi, draw, 0);
// uniform u = (x0 + 0.5)·2⁻³², normal z = sqrt(−2 ln u1)·cos(2π u2) (Box–Muller of x0, x1), all
// in fp64 and rounded to f32 once:
//   zeros 0 | ones 1 | normal std·z | trunc_normal std·z, redrawn (draw + 1) while |z| > 2 |
//   uniform low + (high − low)·u | log_uniform ln(low + (high − low)·u) |
//   dt_bias softplus⁻¹(max(exp(ln low + (ln high − ln low)·u), 1e-4)), softplus⁻¹(y) =
//   y + ln(−expm1(−y)), with ln low / ln high computed on the host (passed in).
// Products and sums use __dmul_rn / __dadd_rn so nvcc does not contract them into fmas the
// CPU does not use. CUDA's fp64 log / cos / exp / expm1 are within 1–2 ulp of the host's libm,
// so an f32 result can differ from the CPU's only when the fp64 value lies within that of an
// f32 rounding boundary (about one element in 10⁸).
//
// Every per-parameter value (seed, param_index, std / low / high as fp64 bit patterns) is a
// launch argument, so all init_param kernels of one rule share one source (one nvcc compile).
// Launch: grid-stride over the n elements, one element per thread per step.
//
// Faster version: four elements per Philox call would need a different counter layout (the
// CPU's fixes one call per element); the kernel is memory-bound already for zeros / ones.
#pragma once
#include "fusion/common.cuh"

namespace fk {

/// Philox4x32-10 of `c` under `key` (runtime/src/cpu/philox.h).
__device__ __forceinline__ uint4 philox4x32_10(uint4 c, uint2 key) {
  const uint32_t kMultiplier0 = 0xD2511F53u, kMultiplier1 = 0xCD9E8D57u;
  const uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key.x += kWeyl0;
      key.y += kWeyl1;
    }
    uint32_t hi0 = __umulhi(kMultiplier0, c.x), lo0 = kMultiplier0 * c.x;
    uint32_t hi1 = __umulhi(kMultiplier1, c.z), lo1 = kMultiplier1 * c.z;
    c = make_uint4(hi1 ^ c.y ^ key.x, lo1, hi0 ^ c.w ^ key.y, lo0);
  }
  return c;
}

/// The key of parameter `paramIndex` under `seed`.
__device__ __forceinline__ uint2 initKey(int64_t seed, int64_t paramIndex) {
  uint64_t bits = (uint64_t)seed;
  return make_uint2((uint32_t)bits ^ (uint32_t)paramIndex, (uint32_t)(bits >> 32));
}

__device__ __forceinline__ uint4 initDraw(uint2 key, int64_t index, uint32_t draw) {
  uint64_t i = (uint64_t)index;
  return philox4x32_10(make_uint4((uint32_t)i, (uint32_t)(i >> 32), draw, 0u), key);
}

/// (x + 0.5)·2⁻³² in (0, 1): exact in fp64.
__device__ __forceinline__ double initUniformOf(uint32_t word) {
  return ((double)word + 0.5) * (1.0 / 4294967296.0);
}

__device__ __forceinline__ double initNormalOf(uint4 words) {
  const double kTwoPi = 2.0 * 3.14159265358979323846;
  double u1 = initUniformOf(words.x), u2 = initUniformOf(words.y);
  return __dmul_rn(sqrt(__dmul_rn(-2.0, log(u1))), cos(__dmul_rn(kTwoPi, u2)));
}

/// zeros / ones.
__device__ void initConstant(float *out, int64_t n, float value) {
  for (int64_t i = globalThread(); i < n; i += gridThreads())
    out[i] = value;
}

/// normal / trunc_normal (kTruncate): std·z.
template <bool kTruncate>
__device__ void initNormal(float *out, int64_t n, int64_t seed, int64_t paramIndex,
                           int64_t stdBits) {
  const uint2 key = initKey(seed, paramIndex);
  const double stddev = bitsToDouble(stdBits);
  for (int64_t i = globalThread(); i < n; i += gridThreads()) {
    double z = initNormalOf(initDraw(key, i, 0u));
    // Rejection: a redraw has probability 4.6%, so the loop ends after a few draws.
    for (uint32_t draw = 1; kTruncate && !(fabs(z) <= 2.0); ++draw)
      z = initNormalOf(initDraw(key, i, draw));
    out[i] = (float)__dmul_rn(stddev, z);
  }
}

enum class InitRule { Uniform, LogUniform, DtBias };

/// uniform / log_uniform (a = low, b = high) and dt_bias (a = ln low, b = ln high).
template <InitRule kRule>
__device__ void initUniform(float *out, int64_t n, int64_t seed, int64_t paramIndex, int64_t aBits,
                            int64_t bBits) {
  const uint2 key = initKey(seed, paramIndex);
  const double a = bitsToDouble(aBits), b = bitsToDouble(bBits);
  const double width = __dsub_rn(b, a);
  for (int64_t i = globalThread(); i < n; i += gridThreads()) {
    double u = initUniformOf(initDraw(key, i, 0u).x);
    double value = __dadd_rn(a, __dmul_rn(width, u));
    if (kRule == InitRule::LogUniform) {
      value = log(value);
    } else if (kRule == InitRule::DtBias) {
      double dt = fmax(exp(value), 1e-4);
      value = __dadd_rn(dt, log(-expm1(-dt)));
    }
    out[i] = (float)value;
  }
}

} // namespace fk
