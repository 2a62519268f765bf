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
// tables), then the block's threads walk the P·(d − d_r + d_r/2) items of each batch row
// group: a pass-through element or one rotated pair, evaluated in fp64 from the fp32 table.
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

/// Rotary embedding of x [batch, seq, rows per position, d] into out (same shape): the last
/// `rotary` components of each row in interleaved pairs, by the angle of position
/// firstPosition + t (negated for `Inverse`, the gradient); the first d − rotary pass through.
/// Grid (seq, batch slices); dynamic shared memory: rotary/2 float2 (cos, sin).
template <bool Inverse, class TX, class TO>
__device__ void rope(const TX *x, TO *out, int64_t batch, int64_t seq, int64_t rowsPerPosition,
                     int64_t d, int64_t rotary, double theta, int64_t firstPosition) {
  extern __shared__ float2 table[];
  const int64_t t = blockIdx.x;
  if (t >= seq)
    return;
  const int half = (int)(rotary / 2), offset = (int)(d - rotary), items = offset + half;
  const double position = (double)(firstPosition + t);
  for (int k = threadIdx.x; k < half; k += blockDim.x) {
    double angle = position * pow(theta, -2.0 * (double)k / (double)rotary);
    double s, c;
    sincos(angle, &s, &c);
    table[k] = make_float2((float)c, (float)s);
  }
  __syncthreads();
  const double sign = Inverse ? -1.0 : 1.0;
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
