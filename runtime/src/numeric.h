//===- numeric.h - Element conversions and checked integer arithmetic -----===//
//
// Small header-only helpers shared by the loader and the backends. The reference kernels
// compute in fp32 whatever the storage type, so they need exact bf16/f16 <-> f32 conversions
// (round-to-nearest-even on the way down, like the device's cvt instructions). Sizes in a plan
// come from an untrusted file, so every product and sum of them goes through the checked
// helpers here instead of plain arithmetic.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/fused_elementwise.h"
#include "fusion/rt/plan.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>

namespace fusion::rt {

/// The storage type of a fused_elementwise value type (the loader's launch checks and the CPU
/// kernel's output check).
inline schema::DType fusedStorageType(fused::ElemType type) {
  switch (type) {
  case fused::ElemType::BF16:
    return schema::DType::BF16;
  case fused::ElemType::F16:
    return schema::DType::F16;
  case fused::ElemType::F32:
    break;
  }
  return schema::DType::F32;
}

/// a * b, or nullopt on unsigned 64-bit overflow.
inline std::optional<uint64_t> checkedMul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    return std::nullopt;
  return r;
}

/// a + b, or nullopt on unsigned 64-bit overflow.
inline std::optional<uint64_t> checkedAdd(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return std::nullopt;
  return r;
}

/// Widens a bf16 bit pattern to f32 (exact: bf16 is the top half of an f32).
inline float bf16ToFloat(uint16_t bits) {
  uint32_t wide = uint32_t(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof(f));
  return f;
}

/// Narrows f32 to bf16 with round-to-nearest-even; NaN stays a (quiet) NaN.
inline uint16_t floatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if (std::isnan(f))
    return uint16_t((bits >> 16) | 0x0040);
  uint32_t roundingBias = 0x7fff + ((bits >> 16) & 1);
  return uint16_t((bits + roundingBias) >> 16);
}

/// Widens an IEEE binary16 bit pattern to f32 (exact, subnormals included).
inline float f16ToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000 | (mantissa << 13); // inf or NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13); // rebias 15 -> 127
  } else if (mantissa == 0) {
    bits = sign; // signed zero
  } else {
    // Subnormal half: value = mantissa * 2^-24, exactly representable as a normal f32.
    float f = std::ldexp(float(mantissa), -24);
    return sign ? -f : f;
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

/// Narrows f32 to IEEE binary16 with round-to-nearest-even (overflow gives inf).
inline uint16_t floatToF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  uint16_t sign = uint16_t((bits >> 16) & 0x8000);
  uint32_t absBits = bits & 0x7fffffff;
  if (absBits >= 0x7f800000) // inf or NaN
    return uint16_t(sign | 0x7c00 | (absBits > 0x7f800000 ? 0x200 : 0));
  if (absBits >= 0x477ff000) // rounds to >= 65520: overflow to inf
    return uint16_t(sign | 0x7c00);
  if (absBits < 0x38800000) {
    // Result is subnormal (or zero) in half: scale so the integer part is the mantissa and let
    // the FPU's default rounding (nearest-even) do the work.
    float magnitude;
    std::memcpy(&magnitude, &absBits, sizeof(magnitude));
    float scaled = std::nearbyint(magnitude * 16777216.0f); // 2^24
    return uint16_t(sign | uint16_t(scaled));
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits to nearest-even.
  uint32_t rebased = absBits - (112u << 23);
  uint32_t roundingBias = 0xfff + ((rebased >> 13) & 1);
  return uint16_t(sign | uint16_t((rebased + roundingBias) >> 13));
}

/// Reads element `i` of a float-typed buffer (f32, bf16 or f16 storage) as f32.
inline float loadAsFloat(const void *data, schema::DType dtype, uint64_t i) {
  switch (dtype) {
  case schema::DType::BF16: {
    uint16_t v;
    std::memcpy(&v, static_cast<const char *>(data) + 2 * i, 2);
    return bf16ToFloat(v);
  }
  case schema::DType::F16: {
    uint16_t v;
    std::memcpy(&v, static_cast<const char *>(data) + 2 * i, 2);
    return f16ToFloat(v);
  }
  default: {
    float v;
    std::memcpy(&v, static_cast<const char *>(data) + 4 * i, 4);
    return v;
  }
  }
}

/// Writes `value` as element `i` of a float-typed buffer, rounding to its storage type.
inline void storeFromFloat(void *data, schema::DType dtype, uint64_t i, float value) {
  switch (dtype) {
  case schema::DType::BF16: {
    uint16_t v = floatToBf16(value);
    std::memcpy(static_cast<char *>(data) + 2 * i, &v, 2);
    return;
  }
  case schema::DType::F16: {
    uint16_t v = floatToF16(value);
    std::memcpy(static_cast<char *>(data) + 2 * i, &v, 2);
    return;
  }
  default:
    std::memcpy(static_cast<char *>(data) + 4 * i, &value, 4);
    return;
  }
}

} // namespace fusion::rt
