// fusion/pointwise.cuh - activation derivatives and rotary position embeddings.
//
// activation_grad / swiglu_grad: grid-stride loops; each element's inputs are read before its
// outputs are written, so outputs may alias inputs. The derivative is evaluated in fp64 when
// the result is stored as f32 (as the CPU reference does), in fp32 for bf16/f16 results
// (their rounding dwarfs the difference, and fp64 exp would make the loop compute-bound).
//
// rope / rope_grad / rope_at: x [B, T, ..., d] as B·T positions of P = Π shape[2..-2] rows;
// a block per (position t, batch slice): the cos/sin of the position's d_r/2 pairs go to
// shared memory once (angle (p0 + t)·theta^(−2k/d_r) in fp64, rounded to fp32 like the CPU
// tables), then the block's threads walk the items of each of its batches' row groups: a
// column pair moved as one access (pass-through, or rotated in fp64 from the fp32 table) when
// d and d − d_r are even and the buffers pair-aligned, else a pass-through element or a
// rotated pair read element by element.
#pragma once
#include "fusion/common.cuh"

#include <type_traits>

namespace fk {

__device__ __forceinline__ float mathExp(float v) { return expf(v); }
__device__ __forceinline__ double mathExp(double v) { return exp(v); }
__device__ __forceinline__ float mathTanh(float v) { return tanhf(v); }
__device__ __forceinline__ double mathTanh(double v) { return tanh(v); }

/// fp64 if any of the outputs is stored as f32, else fp32.
template <class... TO>
using GradMath =
    typename std::conditional<(std::is_same<TO, float>::value || ...), double, float>::type;

enum ActivationFn { kActSilu = 0, kActSigmoid = 1, kActSoftplus = 2, kActSoftcap = 3 };

/// activation_grad: dx = dy · f'(x).
template <int Fn, class TX, class TG, class TO>
__device__ void activationGrad(const TX *x, const TG *dy, TO *dx, int64_t n, double cap) {
  using M = GradMath<TO>;
  const M one = (M)1, c = (M)cap;
  for (int64_t i = globalThread(); i < n; i += gridThreads()) {
    M v = (M)ld(x[i]), g = (M)ld(dy[i]);
    M derivative;
    if constexpr (Fn == kActSilu) {
      M s = one / (one + mathExp(-v));
      derivative = s * (one + v * (one - s));
    } else if constexpr (Fn == kActSigmoid) {
      M s = one / (one + mathExp(-v));
      derivative = s * (one - s);
    } else if constexpr (Fn == kActSoftplus) {
      derivative = v > (M)20 ? one : one / (one + mathExp(-v));
    } else {
      M t = mathTanh(v / c);
      derivative = one - t * t;
    }
    st(dx + i, (float)(g * derivative));
  }
}

/// swiglu_grad: s = σ(gate), dgate = dy·up·s(1 + gate(1 − s)), dup = dy·gate·s.
template <class TA, class TU, class TG, class TDA, class TDU>
__device__ void swigluGrad(const TA *gate, const TU *up, const TG *dy, TDA *dgate, TDU *dup,
                           int64_t n) {
  using M = GradMath<TDA, TDU>;
  const M one = (M)1;
  for (int64_t i = globalThread(); i < n; i += gridThreads()) {
    M a = (M)ld(gate[i]), c = (M)ld(up[i]), g = (M)ld(dy[i]);
    M s = one / (one + mathExp(-a));
    st(dgate + i, (float)(g * c * s * (one + a * (one - s))));
    st(dup + i, (float)(g * a * s));
  }
}

/// Two consecutive elements as floats / from floats: one 4-byte (bf16, f16) or 8-byte (f32)
/// access; the caller checked the alignment.
__device__ __forceinline__ float2 ldPair(const float *p) {
  return *reinterpret_cast<const float2 *>(p);
}
__device__ __forceinline__ float2 ldPair(const __nv_bfloat16 *p) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(p));
}
__device__ __forceinline__ float2 ldPair(const __half *p) {
  return __half22float2(*reinterpret_cast<const __half2 *>(p));
}
__device__ __forceinline__ void stPair(float *p, float a, float b) {
  *reinterpret_cast<float2 *>(p) = make_float2(a, b);
}
__device__ __forceinline__ void stPair(__nv_bfloat16 *p, float a, float b) {
  *reinterpret_cast<__nv_bfloat162 *>(p) = __floats2bfloat162_rn(a, b);
}
__device__ __forceinline__ void stPair(__half *p, float a, float b) {
  *reinterpret_cast<__half2 *>(p) = __floats2half2_rn(a, b);
}
template <class T> __device__ __forceinline__ bool pairAligned(const T *p) {
  return (reinterpret_cast<uintptr_t>(p) % (2 * sizeof(T))) == 0;
}

/// Rotary embedding of x [batch, seq, rows per position, d] into out (same shape): the last
/// `rotary` components of each row in interleaved pairs, by the angle of position
/// firstPosition + t (negated for `Inverse`, the gradient); the first d − rotary pass through.
/// Grid (seq, batch slices), each block looping over its batches with the position's table
/// computed once; dynamic shared memory: rotary/2 float2 (cos, sin). When d and d − rotary are
/// even and x, out are aligned to element pairs, an item is one pair of columns (a
/// pass-through pair or a rotated pair) moved as one 4- or 8-byte access, d/2 items per row;
/// otherwise an item is a pass-through element or a rotated pair, d − rotary/2 per row.
template <bool Inverse, class TX, class TO>
__device__ void rope(const TX *x, TO *out, int64_t batch, int64_t seq, int64_t rowsPerPosition,
                     int64_t d, int64_t rotary, double theta, int64_t firstPosition) {
  extern __shared__ float2 table[];
  const int64_t t = blockIdx.x;
  if (t >= seq)
    return;
  const int half = (int)(rotary / 2), offset = (int)(d - rotary);
  const double position = (double)(firstPosition + t);
  for (int k = threadIdx.x; k < half; k += blockDim.x) {
    double angle = position * pow(theta, -2.0 * (double)k / (double)rotary);
    double s, c;
    sincos(angle, &s, &c);
    table[k] = make_float2((float)c, (float)s);
  }
  __syncthreads();
  const double sign = Inverse ? -1.0 : 1.0;
  if (offset % 2 == 0 && d % 2 == 0 && pairAligned(x) && pairAligned(out)) {
    const int passPairs = offset / 2, items = passPairs + half;
    const unsigned perPosition = (unsigned)(rowsPerPosition * items);
    for (int64_t b = blockIdx.y; b < batch; b += gridDim.y) {
      const int64_t firstRow = (b * seq + t) * rowsPerPosition;
      for (unsigned i = threadIdx.x; i < perPosition; i += blockDim.x) {
        const unsigned rowInPosition = i / (unsigned)items, item = i % (unsigned)items;
        const int64_t j = (firstRow + rowInPosition) * d + 2 * (int64_t)item;
        const float2 v = ldPair(x + j);
        if ((int)item < passPairs) {
          stPair(out + j, v.x, v.y);
          continue;
        }
        const float2 cs = table[item - passPairs];
        const double c = cs.x, s = sign * cs.y, a = v.x, bb = v.y;
        stPair(out + j, (float)(a * c - bb * s), (float)(a * s + bb * c));
      }
    }
    return;
  }
  const int items = offset + half;
  const unsigned perPosition = (unsigned)(rowsPerPosition * items);
  for (int64_t b = blockIdx.y; b < batch; b += gridDim.y) {
    const int64_t firstRow = (b * seq + t) * rowsPerPosition;
    for (unsigned i = threadIdx.x; i < perPosition; i += blockDim.x) {
      unsigned rowInPosition = i / (unsigned)items, item = i % (unsigned)items;
      const int64_t base = (firstRow + rowInPosition) * d;
      if ((int)item < offset) {
        st(out + base + item, ld(x[base + item]));
        continue;
      }
      const int64_t j = base + offset + 2 * (int64_t)(item - offset);
      float2 cs = table[item - offset];
      double c = cs.x, s = sign * cs.y;
      double a = ld(x[j]), bb = ld(x[j + 1]);
      st(out + j, (float)(a * c - bb * s));
      st(out + j + 1, (float)(a * s + bb * c));
    }
  }
}

} // namespace fk
