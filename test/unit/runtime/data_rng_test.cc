//===- data_rng_test.cc - The §14.3 RNG and the synthetic generator -------===//
//
// Golden values: the splitmix64 reference sequence for seed 1234567 (the published test
// vector of the algorithm), splitmix64(0), and draws, indices and synthetic rows computed
// offline with Python integers from the MODEL.md §14.3 definitions. The runtime is also
// compared with the independent reference in data_test_util.cc over many coordinates.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "test/unit/runtime/data_test_util.h"

#include <gtest/gtest.h>

using namespace fusion::rt;
using namespace fusion::rt::data;
namespace ref = fusion::rt::testing::ref;

namespace {

TEST(DataRng, Splitmix64MatchesThePublishedSequence) {
  // The generator seeded with 1234567 outputs splitmix64(1234567 + k * gamma), k = 0, 1, ...
  const uint64_t expected[] = {6457827717110365317ull, 3203168211198807973ull,
                               9817491932198370423ull, 4593380528125082431ull,
                               16408922859458223821ull};
  uint64_t state = 1234567;
  for (uint64_t value : expected) {
    EXPECT_EQ(splitmix64(state), value);
    EXPECT_EQ(ref::splitmix64(state), value);
    state += 0x9E3779B97F4A7C15ull;
  }
  EXPECT_EQ(splitmix64(0), 0xE220A8397B1DCDAFull);
}

TEST(DataRng, DrawStateFoldsTheFieldsInOrder) {
  EXPECT_EQ(drawState(1234, {0, 0, 0, 0}, 0), 7693161529477717896ull);
  EXPECT_EQ(drawState(42, {7, 1, 3, 5}, 2), 5829326458926082384ull);
  // Swapping two fields changes the draw (the fold is ordered).
  EXPECT_NE(drawState(42, {7, 1, 3, 5}, 2), drawState(42, {1, 7, 3, 5}, 2));
  for (uint64_t s : {0ull, 1ull, 99ull, ~0ull})
    for (uint64_t b = 0; b < 4; ++b)
      for (uint64_t idx = 0; idx < 3; ++idx)
        EXPECT_EQ(drawState(9, {s, 2, 1, b}, idx), ref::draw(9, s, 2, 1, b, idx));
}

TEST(DataRng, UniformIndexUsesTheFull128BitProduct) {
  EXPECT_EQ(uniformIndex(7693161529477717896ull, 1000000000), 417047122u);
  EXPECT_EQ(uniformIndex(7693161529477717896ull, 152064), 63417u);
  EXPECT_EQ(uniformIndex(5829326458926082384ull, 1000000000), 316008420u);
  // The largest x maps to n - 1 for every n up to 2^53 (a product reduced mod 2^64 would
  // not); above 2^53 the 53-bit draw cannot reach every value.
  for (uint64_t n : {1ull, 2ull, 7ull, 1000000000ull, 1ull << 40, 1ull << 53})
    EXPECT_EQ(uniformIndex(~0ull, n), n - 1) << n;
  EXPECT_EQ(uniformIndex(~0ull, ~0ull), ~0ull - 2048); // (2^53-1)(2^64-1) >> 53, exactly
  EXPECT_EQ(uniformIndex(0, 1000000000), 0u);
  for (uint64_t i = 0; i < 200; ++i) {
    uint64_t x = ref::splitmix64(i);
    for (uint64_t n : {3ull, 152064ull, 1000000000ull, 0x123456789abcdefull})
      EXPECT_EQ(uniformIndex(x, n), ref::index(x, n)) << x << " " << n;
  }
}

TEST(DataRng, UniformRealIsTheTop53BitsExactly) {
  EXPECT_EQ(uniformReal(0), 0.0);
  EXPECT_EQ(uniformReal(~0ull), 1.0 - 0x1.0p-53);
  EXPECT_EQ(uniformReal(1ull << 63), 0.5);
  EXPECT_EQ(uniformReal(2047), 0.0); // the low 11 bits are dropped
  uint64_t x = 7693161529477717896ull;
  EXPECT_EQ(uniformReal(x), ref::real(x));
}

TEST(DataRng, PickWeightedTakesTheFirstCumulativeAboveUTimesTotal) {
  std::vector<double> weights = {0.6, 0.15, 0.15, 0.05, 0.05};
  EXPECT_EQ(pickWeighted(weights, 0.0), 0u);
  EXPECT_EQ(pickWeighted(weights, 0.5999), 0u);
  EXPECT_EQ(pickWeighted(weights, 0.6), 1u); // cumulative must be strictly greater
  EXPECT_EQ(pickWeighted(weights, 0.8), 2u);
  EXPECT_EQ(pickWeighted(weights, 0.9999), 4u);
  // Zero weights are never picked; weights need not sum to 1.
  EXPECT_EQ(pickWeighted({0, 3, 0, 1}, 0.0), 1u);
  EXPECT_EQ(pickWeighted({0, 3, 0, 1}, 0.74), 1u);
  EXPECT_EQ(pickWeighted({0, 3, 0, 1}, 0.76), 3u);
  EXPECT_EQ(pickWeighted({2, 0}, 1.0 - 0x1.0p-53), 0u);
}

TEST(DataSynthetic, RowsMatchGoldenValues) {
  DataSpec spec;
  spec.format = Format::kSynthetic;
  spec.seed = 1234;
  StatusOr<std::unique_ptr<Source>> source = openSource(spec, 512);
  ASSERT_TRUE(source.ok()) << source.status().toString();
  BatchShape shape{3, 8, 0};
  std::vector<int32_t> tokens(3 * 9);
  BatchCoord coord;
  ASSERT_TRUE((*source)->readRows(coord, shape, tokens.data()).ok());
  std::vector<int32_t> expected0 = {213, 214, 215, 216, 217, 218, 219, 220, 221,
                                    269, 270, 271, 272, 273, 274, 275, 276, 277,
                                    162, 167, 172, 177, 182, 187, 192, 197, 202};
  EXPECT_EQ(tokens, expected0);
  coord.step = 5;
  ASSERT_TRUE((*source)->readRows(coord, shape, tokens.data()).ok());
  std::vector<int32_t> expected5 = {120, 125, 130, 135, 140, 145, 150, 155, 160,
                                    149, 151, 153, 155, 157, 159, 161, 163, 165,
                                    258, 259, 260, 261, 262, 263, 264, 265, 266};
  EXPECT_EQ(tokens, expected5);
}

TEST(DataSynthetic, RowsFollowTheReferenceForAllCoordinates) {
  DataSpec spec;
  spec.seed = 77;
  const int64_t V = 1000, T = 300;
  StatusOr<std::unique_ptr<Source>> source = openSource(spec, V);
  ASSERT_TRUE(source.ok());
  BatchShape shape{4, T, 0};
  std::vector<int32_t> tokens(4 * (T + 1));
  for (uint32_t rank = 0; rank < 2; ++rank)
    for (uint64_t micro = 0; micro < 2; ++micro) {
      BatchCoord coord{11, micro, rank, 2, 2};
      ASSERT_TRUE((*source)->readRows(coord, shape, tokens.data()).ok());
      for (uint64_t b = 0; b < 4; ++b) {
        uint64_t a = ref::index(ref::draw(77, 11, rank, micro, b, 0), V);
        uint64_t d = 1 + ref::index(ref::draw(77, 11, rank, micro, b, 1), 7);
        for (int64_t i = 0; i <= T; ++i)
          ASSERT_EQ(tokens[b * (T + 1) + i], static_cast<int32_t>((a + d * i) % V))
              << "rank " << rank << " micro " << micro << " row " << b << " i " << i;
      }
    }
}

TEST(DataSynthetic, NeedsTheVocabularySizeAndValidCoordinates) {
  DataSpec spec;
  StatusOr<std::unique_ptr<Source>> noVocab = openSource(spec, std::nullopt);
  ASSERT_FALSE(noVocab.ok());
  EXPECT_EQ(noVocab.status().message(), "synthetic data needs the vocabulary size V");
  EXPECT_FALSE(openSource(spec, 0).ok());
  StatusOr<std::unique_ptr<Source>> source = openSource(spec, 16);
  ASSERT_TRUE(source.ok());
  std::vector<int32_t> tokens(3);
  Status badRank = (*source)->readRows({0, 0, 2, 2, 1}, {1, 2, 0}, tokens.data());
  EXPECT_EQ(badRank.message(), "rank 2 out of range for 2 ranks");
  Status badMicro = (*source)->readRows({0, 3, 0, 1, 2}, {1, 2, 0}, tokens.data());
  EXPECT_EQ(badMicro.message(), "micro-batch 3 out of range for 2 micro-batches per step");
}

} // namespace
