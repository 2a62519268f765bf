//===- data_mixture_test.cc - Mixture frequencies and the curriculum switch --===//
//
// Synthetic shards whose tokens name their source and shard (k * 1000 + i) are sampled with
// the §14.3 mixture rule for many rows at a fixed seed; the observed source and shard
// frequencies must match the renormalised weights within 5 binomial standard deviations.
// The §13 curriculum: rows of steps s < S_c are exactly the rows of a plain mix with the
// stage-1 weights, rows of s >= S_c those of the stage-2 weights, and the switch happens at
// S_c, not a step earlier or later.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "test/unit/runtime/data_test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

using namespace fusion::rt;
using namespace fusion::rt::data;
using namespace fusion::rt::testing;

namespace {

std::vector<int32_t> labelled(int32_t k, int32_t n) {
  std::vector<int32_t> tokens(n);
  for (int32_t i = 0; i < n; ++i)
    tokens[i] = k * 1000 + i;
  return tokens;
}

class MixtureTest : public ::testing::Test {
protected:
  void SetUp() override {
    // Source a: shard 1 (800 tokens); b: shards 2 (600) and 3 (300); c: shard 4 (400).
    std::string manifest;
    for (auto [k, n, source] : {std::tuple{1, 800, "a"}, std::tuple{2, 600, "b"},
                                std::tuple{3, 300, "b"}, std::tuple{4, 400, "c"}}) {
      std::string name = "s" + std::to_string(k) + ".bin";
      writeShardFile(dir_.path(name), labelled(k, n));
      manifest += "{\"path\": \"" + name + "\", \"n_tokens\": " + std::to_string(n) +
                  ", \"source\": \"" + source + "\"}\n";
    }
    writeTextFile(dir_.path("manifest.jsonl"), manifest);
  }

  std::unique_ptr<Source> open(const std::string &options) {
    StatusOr<DataSpec> spec = parseDataSpec("shards:" + dir_.path("manifest.jsonl") + options);
    EXPECT_TRUE(spec.ok()) << spec.status().toString();
    if (!spec.ok())
      return nullptr;
    spec_ = *spec;
    StatusOr<std::unique_ptr<Source>> source = openSource(*spec, 10000);
    EXPECT_TRUE(source.ok()) << source.status().toString();
    return source.ok() ? std::move(*source) : nullptr;
  }

  /// The shard label k of every row of steps [first, last), B rows of T+1 = 9 tokens each.
  std::vector<int> labels(Source &source, uint64_t first, uint64_t last, int64_t rows = 100) {
    std::vector<int> out;
    std::vector<int32_t> tokens(static_cast<size_t>(rows) * 9);
    for (uint64_t step = first; step < last; ++step) {
      Status status = source.readRows({step, 0, 0, 1, 1}, {rows, 8, 0}, tokens.data());
      EXPECT_TRUE(status.ok()) << status.toString();
      for (int64_t b = 0; b < rows; ++b)
        out.push_back(tokens[static_cast<size_t>(b) * 9] / 1000);
    }
    return out;
  }

  TempDir dir_;
  DataSpec spec_;
};

/// |observed - n p| <= 5 sqrt(n p (1 - p)).
void expectFrequency(uint64_t observed, uint64_t n, double p, const std::string &what) {
  double sigma = std::sqrt(static_cast<double>(n) * p * (1 - p));
  EXPECT_LE(std::fabs(static_cast<double>(observed) - static_cast<double>(n) * p), 5 * sigma)
      << what << ": " << observed << " of " << n << ", expected p = " << p;
}

TEST_F(MixtureTest, SourceAndShardFrequenciesFollowTheWeights) {
  // d has no shard: the weights renormalise over a, b, c to 0.5, 0.3, 0.2.
  std::unique_ptr<Source> source = open(",seed=7,mix=a:5+b:3+c:2+d:10");
  ASSERT_TRUE(source);
  std::vector<int> rows = labels(*source, 0, 400); // 40000 rows
  std::map<int, uint64_t> count;
  for (int k : rows)
    ++count[k];
  uint64_t n = rows.size();
  ASSERT_EQ(n, 40000u);
  expectFrequency(count[1], n, 0.5, "source a");
  expectFrequency(count[2] + count[3], n, 0.3, "source b");
  expectFrequency(count[4], n, 0.2, "source c");
  // Within b, shards by n_tokens: 600 / 900 and 300 / 900.
  expectFrequency(count[2], count[2] + count[3], 2.0 / 3, "b's first shard");
  EXPECT_EQ(count.size(), 4u);

  // Another seed, other weights.
  source = open(",seed=99,mix=a:1+c:3");
  ASSERT_TRUE(source);
  rows = labels(*source, 0, 200);
  count.clear();
  for (int k : rows)
    ++count[k];
  expectFrequency(count[4], rows.size(), 0.75, "source c");
  EXPECT_EQ(count[2] + count[3], 0u);
}

TEST_F(MixtureTest, CurriculumSwitchesAtTheSwitchStep) {
  const uint64_t switchStep = 10;
  std::unique_ptr<Source> curriculum =
      open(",seed=5,curriculum=10,stage1=a:1+b:1,stage2=c:3+b:1");
  ASSERT_TRUE(curriculum);
  EXPECT_EQ(spec_.curriculumSwitchStep, switchStep);
  EXPECT_EQ(curriculumStage(spec_, 0), 1);
  EXPECT_EQ(curriculumStage(spec_, 9), 1);
  EXPECT_EQ(curriculumStage(spec_, 10), 2);
  EXPECT_EQ(&activeMix(spec_, 9), &spec_.stage1);
  EXPECT_EQ(&activeMix(spec_, 10), &spec_.stage2);
  std::unique_ptr<Source> stage1 = open(",seed=5,mix=a:1+b:1");
  std::unique_ptr<Source> stage2 = open(",seed=5,mix=c:3+b:1");
  ASSERT_TRUE(stage1 && stage2);
  const int64_t B = 64, T = 8;
  std::vector<int32_t> got(B * (T + 1)), want(B * (T + 1));
  for (uint64_t step : {0ull, 1ull, 8ull, 9ull, 10ull, 11ull, 500ull}) {
    for (uint32_t rank = 0; rank < 2; ++rank) {
      BatchCoord coord{step, 1, rank, 2, 3};
      ASSERT_TRUE(curriculum->readRows(coord, {B, T, 0}, got.data()).ok());
      Source &reference = step < switchStep ? *stage1 : *stage2;
      ASSERT_TRUE(reference.readRows(coord, {B, T, 0}, want.data()).ok());
      EXPECT_EQ(got, want) << "step " << step << " rank " << rank;
    }
  }
  // Stage 1 never draws c, stage 2 never draws a: step 9 is the last of stage 1.
  std::map<int, uint64_t> before, after;
  for (int k : labels(*curriculum, 0, switchStep))
    ++before[k];
  for (int k : labels(*curriculum, switchStep, 2 * switchStep))
    ++after[k];
  EXPECT_EQ(before[4], 0u);
  EXPECT_EQ(after[1], 0u);
  expectFrequency(before[1], 1000, 0.5, "stage 1, source a");
  expectFrequency(after[4], 1000, 0.75, "stage 2, source c");
  std::vector<int> last = labels(*curriculum, switchStep - 1, switchStep, 400);
  std::vector<int> first = labels(*curriculum, switchStep, switchStep + 1, 400);
  EXPECT_EQ(std::count(last.begin(), last.end(), 4), 0);
  EXPECT_EQ(std::count(first.begin(), first.end(), 1), 0);
  EXPECT_GT(std::count(last.begin(), last.end(), 1), 0);
  EXPECT_GT(std::count(first.begin(), first.end(), 4), 0);
  EXPECT_NE(curriculum->describe().find("curriculum switch at step 10"), std::string::npos);
}

TEST_F(MixtureTest, CurriculumSpecAndErrors) {
  // Stage weights default to MODEL.md §17; curriculum=0 is off.
  StatusOr<DataSpec> spec = parseDataSpec("shards:m.jsonl,curriculum=100");
  ASSERT_TRUE(spec.ok()) << spec.status().toString();
  ASSERT_EQ(spec->stage1.size(), 4u);
  EXPECT_EQ(spec->stage1[0].source, "fineweb_edu");
  EXPECT_EQ(spec->stage1[0].weight, 0.70);
  EXPECT_EQ(spec->stage1[3].source, "fineweb2");
  ASSERT_EQ(spec->stage2.size(), 5u);
  EXPECT_EQ(spec->stage2[2].source, "openr1_math");
  EXPECT_EQ(spec->stage2[2].weight, 0.25);
  EXPECT_EQ(spec->stage2[4].source, "smollm_corpus");
  spec = parseDataSpec("shards:m.jsonl,curriculum=0");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(curriculumStage(*spec, 12345), 0);
  EXPECT_EQ(&activeMix(*spec, 0), &spec->mix);

  struct Case {
    const char *text, *message;
  } cases[] = {
      {"shards:m.jsonl,stage1=a:1",
       "data spec 'shards:m.jsonl,stage1=a:1': stage1 needs curriculum=S (the switch step, > 0)"},
      {"shards:m.jsonl,curriculum=5,sampling=sequential",
       "data spec 'shards:m.jsonl,curriculum=5,sampling=sequential': curriculum, stage1 and "
       "stage2 only apply to sampling=mixture"},
      {"shards:m.jsonl,curriculum=x",
       "data spec 'shards:m.jsonl,curriculum=x': curriculum must be the switch step S_c, a "
       "decimal integer (0 = off), got 'x'"},
      {"shards:m.jsonl,curriculum=5,stage2=a:0",
       "data spec 'shards:m.jsonl,curriculum=5,stage2=a:0': stage2 weights sum to 0"},
      {"shards:m.jsonl,curriculum=5,stage2=a:1+a:2",
       "data spec 'shards:m.jsonl,curriculum=5,stage2=a:1+a:2': stage2 lists source 'a' twice"},
      {"bin:x.bin,curriculum=5",
       "data spec 'bin:x.bin,curriculum=5': unknown key 'curriculum' for bin (keys: pad, eos)"},
  };
  for (const Case &c : cases)
    EXPECT_EQ(parseDataSpec(c.text).status().message(), c.message) << c.text;

  // A stage without an eligible source fails at the first read, before the switch.
  std::unique_ptr<Source> source = open(",curriculum=1000,stage1=a:1,stage2=zzz:1");
  ASSERT_TRUE(source);
  std::vector<int32_t> tokens(9);
  EXPECT_EQ(source->readRows({0, 0, 0, 1, 1}, {1, 8, 0}, tokens.data()).message(),
            dir_.path("manifest.jsonl") +
                ": no source of the curriculum's stage-2 mix (zzz) has a shard of at least T+1 "
                "= 9 tokens (sources with such shards: a, b, c); set the weights with "
                "stage2=SOURCE:WEIGHT+...");
  // With a curriculum, `mix` (here the unusable default) is not used.
  source = open(",curriculum=3,stage1=a:1,stage2=b:1");
  ASSERT_TRUE(source);
  EXPECT_TRUE(source->readRows({0, 0, 0, 1, 1}, {1, 8, 0}, tokens.data()).ok());
  EXPECT_EQ(tokens[0] / 1000, 1);
  EXPECT_TRUE(source->readRows({3, 0, 0, 1, 1}, {1, 8, 0}, tokens.data()).ok());
  EXPECT_TRUE(tokens[0] / 1000 == 2 || tokens[0] / 1000 == 3);
}

} // namespace
