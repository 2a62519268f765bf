//===- data_bin_test.cc - nanoGPT / llm.c .bin token files -----------------===//
//
// Header variants (uint16 and uint32 tokens), the sequential rule across files (cyclic, with
// ranks), byte-order glob expansion, and the load errors.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "test/unit/runtime/data_test_util.h"

#include <gtest/gtest.h>

using namespace fusion::rt;
using namespace fusion::rt::data;
using namespace fusion::rt::testing;

namespace {

std::vector<uint32_t> range(uint32_t start, uint32_t count) {
  std::vector<uint32_t> out(count);
  for (uint32_t i = 0; i < count; ++i)
    out[i] = start + i;
  return out;
}

StatusOr<std::unique_ptr<Source>> openBin(const std::string &glob,
                                          std::optional<int64_t> vocab = 100000) {
  StatusOr<DataSpec> spec = parseDataSpec("bin:" + glob);
  EXPECT_TRUE(spec.ok()) << spec.status().toString();
  return openSource(*spec, vocab);
}

std::vector<int32_t> expectRange(int32_t start, int32_t count) {
  std::vector<int32_t> out(count);
  for (int32_t i = 0; i < count; ++i)
    out[i] = start + i;
  return out;
}

TEST(DataBin, SequentialAcrossFilesInByteOrder) {
  TempDir dir;
  // Byte order: "B_2.bin" < "a_1.bin" < "b_0.bin" (uppercase first, not locale order).
  writeBinFile(dir.path("b_0.bin"), range(300, 12), false);
  writeBinFile(dir.path("a_1.bin"), range(200, 12), false);
  writeBinFile(dir.path("B_2.bin"), range(100, 20), false);
  writeBinFile(dir.path("skip.dat"), range(0, 12), false);
  StatusOr<std::unique_ptr<Source>> source = openBin(dir.path("*.bin"));
  ASSERT_TRUE(source.ok()) << source.status().toString();
  EXPECT_EQ((*source)->describe(), "bin " + dir.path("*.bin") + " (3 files, sequential)");
  // B = 2, T = 4: 9 tokens per micro-batch, pos advances by 8. B_2 (20 tokens) holds 2,
  // a_1 and b_0 (12 tokens) hold 1 each: a cycle of 4.
  std::vector<int32_t> tokens(10);
  auto batch = [&](uint64_t step) {
    EXPECT_TRUE((*source)->readRows({step, 0, 0, 1, 1}, {2, 4, 0}, tokens.data()).ok());
    return tokens;
  };
  auto rows = [](int32_t base) {
    std::vector<int32_t> out = expectRange(base, 5);
    std::vector<int32_t> second = expectRange(base + 4, 5);
    out.insert(out.end(), second.begin(), second.end());
    return out;
  };
  EXPECT_EQ(batch(0), rows(100));
  EXPECT_EQ(batch(1), rows(108));
  EXPECT_EQ(batch(2), rows(200));
  EXPECT_EQ(batch(3), rows(300));
  EXPECT_EQ(batch(4), rows(100));
  // Micro-batches are numbered s * n_acc + a.
  ASSERT_TRUE((*source)->readRows({1, 1, 0, 1, 2}, {2, 4, 0}, tokens.data()).ok());
  EXPECT_EQ(tokens, rows(300));
}

TEST(DataBin, RanksReadConsecutiveSlices) {
  TempDir dir;
  writeBinFile(dir.path("x.bin"), range(0, 40), true);
  StatusOr<std::unique_ptr<Source>> source = openBin(dir.path("x.bin"));
  ASSERT_TRUE(source.ok()) << source.status().toString();
  // W = 2, B = 1, T = 5: per micro-batch the ranks read [pos, pos+6) and [pos+5, pos+11),
  // then pos += 10; 40 tokens hold 3 micro-batches (pos 0, 10, 20).
  std::vector<int32_t> tokens(6);
  ASSERT_TRUE((*source)->readRows({2, 0, 1, 2, 1}, {1, 5, 0}, tokens.data()).ok());
  EXPECT_EQ(tokens, expectRange(25, 6));
  ASSERT_TRUE((*source)->readRows({3, 0, 0, 2, 1}, {1, 5, 0}, tokens.data()).ok());
  EXPECT_EQ(tokens, expectRange(0, 6));
}

TEST(DataBin, WideTokensAreCheckedAgainstTheVocabulary) {
  TempDir dir;
  std::vector<uint32_t> tokens = range(70000, 16);
  tokens[3] = 0x80000000u; // does not fit int32
  writeBinFile(dir.path("w.bin"), tokens, true);
  StatusOr<std::unique_ptr<Source>> source = openBin(dir.path("w.bin"), std::nullopt);
  ASSERT_TRUE(source.ok());
  std::vector<int32_t> out(3);
  ASSERT_TRUE((*source)->readRows({}, {1, 2, 0}, out.data()).ok());
  EXPECT_EQ(out, expectRange(70000, 3));
  out.resize(5);
  EXPECT_EQ((*source)->readRows({}, {1, 4, 0}, out.data()).message(),
            dir.path("w.bin") + ": token 3 (byte offset 1036) is 2147483648, outside [0, 2^31)");
  StatusOr<std::unique_ptr<Source>> small = openBin(dir.path("w.bin"), 70001);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ((*small)->readRows({}, {1, 2, 0}, out.data()).message(),
            dir.path("w.bin") + ": token 1 (byte offset 1028) is 70001, outside the vocabulary "
                                "[0, 70001)");
}

TEST(DataBin, LoadErrors) {
  TempDir dir;
  EXPECT_EQ(openBin(dir.path("none_*.bin")).status().message(),
            "bin: no file matches '" + dir.path("none_*.bin") + "'");
  writeTextFile(dir.path("text.bin"), "not a token file");
  EXPECT_EQ(openBin(dir.path("text.bin")).status().message(),
            dir.path("text.bin") + ": truncated header (16 bytes; a .bin file starts with 1024)");
  std::vector<uint8_t> header(1024, 0);
  writeTextFile(dir.path("zero.bin"), std::string(header.begin(), header.end()));
  EXPECT_EQ(openBin(dir.path("zero.bin")).status().message(),
            dir.path("zero.bin") + ": not a nanoGPT/llm.c token file (magic 0, version 0; "
                                   "expected 20240520/1 for uint16 or 20240801/7 for uint32 "
                                   "tokens)");
  writeBinFile(dir.path("short.bin"), range(0, 10), false, 11);
  EXPECT_EQ(openBin(dir.path("short.bin")).status().message(),
            dir.path("short.bin") + ": truncated: 11 tokens need 1046 bytes, the file has 1044");
  writeBinFile(dir.path("long.bin"), range(0, 10), true, 9);
  EXPECT_EQ(openBin(dir.path("long.bin")).status().message(),
            dir.path("long.bin") + ": too long: 9 tokens need 1060 bytes, the file has 1064");
  writeBinFile(dir.path("neg.bin"), range(0, 10), false, -1);
  EXPECT_EQ(openBin(dir.path("neg.bin")).status().message(),
            dir.path("neg.bin") + ": negative token count -1");
  writeBinFile(dir.path("tiny.bin"), range(0, 8), false);
  StatusOr<std::unique_ptr<Source>> tiny = openBin(dir.path("tiny.bin"));
  ASSERT_TRUE(tiny.ok());
  std::vector<int32_t> out(10);
  EXPECT_EQ((*tiny)->readRows({}, {2, 4, 0}, out.data()).message(),
            "bin:" + dir.path("tiny.bin") +
                ": no data file holds the 9 tokens one micro-batch "
                "needs (1 rank(s) x B=2, T=4, +1)");
}

} // namespace
