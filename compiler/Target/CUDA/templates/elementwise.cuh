// fusion/elementwise.cuh - elementwise kernels: out[i] = f(inputs[i]) over n elements.
//
// The functor is a lambda of the generated wrapper taking and returning float. Grid-stride
// loops, so any grid covers any n.
#pragma once
#include "fusion/common.cuh"

#include <type_traits>

namespace fk {

template <class F, class TA, class TO>
__device__ void unary(const TA *x, TO *out, int64_t n, F f) {
  for (int64_t i = globalThread(); i < n; i += gridThreads())
    st(out + i, f(ld(x[i])));
}

template <class F, class TA, class TB, class TO>
__device__ void binary(const TA *a, const TB *b, TO *out, int64_t n, F f) {
  for (int64_t i = globalThread(); i < n; i += gridThreads())
    st(out + i, f(ld(a[i]), ld(b[i])));
}

/// out[i] = value + step * i (fill).
template <class TO> __device__ void fill(TO *out, int64_t n, double value, double step) {
  for (int64_t i = globalThread(); i < n; i += gridThreads()) {
    double v = value + step * (double)i;
    if constexpr (std::is_integral<TO>::value)
      out[i] = (TO)llround(v);
    else
      st(out + i, (float)v);
  }
}

/// Element type conversion (round to nearest even); i32 inputs convert exactly when small.
template <class TA, class TO> __device__ void cast(const TA *x, TO *out, int64_t n) {
  for (int64_t i = globalThread(); i < n; i += gridThreads())
    st(out + i, ld(x[i]));
}

/// `v` rounded to bf16 / f16 and widened back: what a store and a later load do (the
/// intermediates of fused_elementwise).
__device__ __forceinline__ float roundBf16(float v) { return ld(__float2bfloat16(v)); }
__device__ __forceinline__ float roundF16(float v) { return ld(__float2half(v)); }

/// A copy of n elements of any type (reshape).
template <class T> __device__ void copy(const T *x, T *out, int64_t n) {
  for (int64_t i = globalThread(); i < n; i += gridThreads())
    out[i] = x[i];
}

} // namespace fk
