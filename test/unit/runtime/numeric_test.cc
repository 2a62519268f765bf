//===- numeric_test.cc - Element conversion and checked arithmetic tests --===//
//
// The reference kernels round every bf16/f16 result through these helpers, so they must
// match IEEE round-to-nearest-even exactly; a conversion bug would make the oracle, not the
// device, disagree. f16 is checked exhaustively (every bit pattern round-trips) plus the
// rounding boundaries; bf16 on its ties and special values.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/numeric.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

using namespace fusion::rt;

namespace {

float fromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

TEST(NumericTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16ToFloat(0x3f80), 1.0f);
  // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
  EXPECT_EQ(floatToBf16(1.0f + 1.0f / 256), 0x3f80);
  // 1 + 3 * 2^-8 is halfway between odd 1 + 2^-7 and even 1 + 2^-6: rounds up.
  EXPECT_EQ(floatToBf16(1.0f + 3.0f / 256), 0x3f82);
  // Just above the halfway point rounds up.
  EXPECT_EQ(floatToBf16(fromBits(0x3f808001)), 0x3f81);
  EXPECT_EQ(floatToBf16(-2.0f), 0xc000);
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(std::nanf("")))));
  // The largest finite float rounds up to infinity in bf16.
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::max()), 0x7f80);
}

TEST(NumericTest, F16RoundTripsEveryBitPattern) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16ToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16ToFloat(floatToF16(f)))) << std::hex << h;
      continue;
    }
    EXPECT_EQ(floatToF16(f), h) << "pattern 0x" << std::hex << h << " value " << f;
  }
}

TEST(NumericTest, F16RoundingBoundaries) {
  EXPECT_EQ(f16ToFloat(0x3c00), 1.0f);
  EXPECT_EQ(f16ToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(f16ToFloat(0x0001), std::ldexp(1.0f, -24)); // smallest subnormal
  EXPECT_EQ(floatToF16(65519.0f), 0x7bff);              // below the halfway point
  EXPECT_EQ(floatToF16(65520.0f), 0x7c00);              // tie to even: infinity
  EXPECT_EQ(floatToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00); // tie to even (down)
  EXPECT_EQ(floatToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02); // tie to even (up)
  EXPECT_EQ(floatToF16(std::ldexp(1.0f, -25)), 0x0000); // half the smallest subnormal: tie to 0
  EXPECT_EQ(floatToF16(std::ldexp(3.0f, -26)), 0x0001); // above the tie: smallest subnormal
  EXPECT_EQ(floatToF16(-0.0f), 0x8000);
  EXPECT_EQ(floatToF16(-std::numeric_limits<float>::infinity()), 0xfc00);
}

TEST(NumericTest, CheckedArithmeticDetectsOverflow) {
  EXPECT_EQ(checkedMul(uint64_t(1) << 31, uint64_t(1) << 32), uint64_t(1) << 63);
  EXPECT_FALSE(checkedMul(uint64_t(1) << 32, uint64_t(1) << 32).has_value());
  EXPECT_EQ(checkedAdd(std::numeric_limits<uint64_t>::max() - 1, 1),
            std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(checkedAdd(std::numeric_limits<uint64_t>::max(), 1).has_value());
}

} // namespace
