//===- vec_math.h - Vectorised fp32 exp and tanh for the CPU kernels ------===//
//
// The fused head evaluates exp and tanh once per (token, vocabulary entry): millions of calls
// per training step, where scalar libm calls dominated the step time. These are the Cephes
// single-precision algorithms on 4-lane vectors (GCC/Clang vector extensions: one SSE or
// NEON register), branch-free: both sides of a range split are computed and one is selected
// by a lane mask. Every lane runs the same instructions, and a tail shorter than 4 goes
// through the same vector code (zero-padded), so a value's result never depends on its
// position, the array length or the thread.
//   exp:   x = n·ln 2 + r, |r| ≤ ln 2 / 2 (n rounded to nearest, ln 2 in two parts), e^r by
//          Cephes' degree-6 polynomial, times 2^n built in the exponent field. Relative error
//          < 1 ulp for normal results (checked against fp64 on all floats of [−87, 88]);
//          0 below −87.34 (where e^x is subnormal), +inf above 88.72, NaN stays NaN.
//   tanh:  |x| < 0.625: x + x³·P(x²) (Cephes tanhf); else sign(x)·(1 − 2/(e^{2|x|} + 1)).
//          Absolute error < 2⁻²³ on the whole line (relative < 2 ulp), tanh(±inf) = ±1.
//
//===----------------------------------------------------------------------===//

#pragma once

#include <cstdint>
#include <cstring>

namespace fusion::rt::cpu {

namespace vec4 {

typedef float F4 __attribute__((vector_size(16)));
typedef int32_t I4 __attribute__((vector_size(16)));

inline F4 splat(float v) { return F4{v, v, v, v}; }
// A C-style cast between vector types of one size reinterprets the bits (GCC and Clang).
inline I4 bits(F4 v) { return (I4)v; }
inline F4 fromBits(I4 v) { return (F4)v; }
/// mask ? a : b per lane (mask lanes are all ones or all zeros, as comparisons give).
inline F4 select(I4 mask, F4 a, F4 b) { return fromBits((bits(a) & mask) | (bits(b) & ~mask)); }
inline F4 load(const float *p) {
  F4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float *p, F4 v) { std::memcpy(p, &v, sizeof v); }

/// e^x per lane (see the file comment).
inline F4 exp4(F4 x) {
  const F4 hi = splat(88.7228391f), lo = splat(-87.3365447f);
  I4 above = x > hi, below = x < lo, nan = x != x;
  F4 xc = select(above, hi, select(below | nan, lo, x));
  // n = round(x / ln 2): adding and subtracting 1.5·2²³ rounds to nearest (|n| ≤ 128).
  const F4 shifter = splat(12582912.0f);
  F4 n = (xc * splat(1.44269504088896341f) + shifter) - shifter;
  F4 r = xc - n * splat(0.693359375f);
  r = r - n * splat(-2.12194440e-4f);
  F4 p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  F4 y = p * (r * r) + r + splat(1.0f);
  // 2^n as two factors, so that n = 128 (x near the top) stays inside the exponent field.
  I4 ni = __builtin_convertvector(n, I4);
  I4 half = ni >> 1;
  F4 scaleA = fromBits((half + 127) << 23);
  F4 scaleB = fromBits((ni - half + 127) << 23);
  y = y * scaleA * scaleB;
  y = select(below, splat(0.0f), y);
  y = select(above, fromBits(I4{} + 0x7f800000), y);
  return select(nan, x, y);
}

/// tanh(x) per lane (see the file comment).
inline F4 tanh4(F4 x) {
  const I4 signBit = bits(x) & static_cast<int32_t>(0x80000000u);
  F4 a = fromBits(bits(x) & 0x7fffffff);
  // Small |x|: odd polynomial.
  F4 z = a * a;
  F4 p = splat(-5.70498872745e-3f);
  p = p * z + splat(2.06390887954e-2f);
  p = p * z - splat(5.37397155531e-2f);
  p = p * z + splat(1.33314422036e-1f);
  p = p * z - splat(3.33332819422e-1f);
  F4 small = a + a * z * p;
  // Large |x|: 1 − 2/(e^{2|x|} + 1), saturating at 1 (|x| clamped to 44; NaN goes to 44 too
  // and is restored below).
  const F4 cap = splat(44.0f);
  F4 ac = select((a > cap) | (a != a), cap, a);
  F4 large = splat(1.0f) - splat(2.0f) / (exp4(ac + ac) + splat(1.0f));
  F4 t = select(a < splat(0.625f), small, large);
  t = fromBits(bits(t) | signBit);
  return select(x != x, x, t);
}

/// y[i] = f(x[i]) for i < n, 4 lanes at a time; the tail through a zero-padded vector.
template <typename Fn>
inline void apply4(const float *x, float *y, uint64_t n, Fn fn) {
  uint64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    F4 v;
    std::memcpy(&v, x + i, sizeof v);
    v = fn(v);
    std::memcpy(y + i, &v, sizeof v);
  }
  if (i < n) {
    float buffer[4] = {0, 0, 0, 0};
    std::memcpy(buffer, x + i, (n - i) * sizeof(float));
    F4 v;
    std::memcpy(&v, buffer, sizeof v);
    v = fn(v);
    std::memcpy(buffer, &v, sizeof v);
    std::memcpy(y + i, buffer, (n - i) * sizeof(float));
  }
}

} // namespace vec4

/// y[i] = e^{x[i]} in fp32 (see the file comment); y may equal x.
inline void expF32(const float *x, float *y, uint64_t n) {
  vec4::apply4(x, y, n, [](vec4::F4 v) { return vec4::exp4(v); });
}

/// y[i] = tanh(x[i]) in fp32 (see the file comment); y may equal x.
inline void tanhF32(const float *x, float *y, uint64_t n) {
  vec4::apply4(x, y, n, [](vec4::F4 v) { return vec4::tanh4(v); });
}

} // namespace fusion::rt::cpu
