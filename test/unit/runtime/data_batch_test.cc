//===- data_batch_test.cc - Ignore rule, loss counts, --data specs, feeding --===//
//
// The parts of the data feed between rows and a program: the §14.3 ignore rule in its three
// regimes, N_k of §8 for the main head and each MTP depth, the --data grammar, and filling a
// plan's tokens / targets / inv_counts inputs (shapes taken from the plan's buffers).
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/executor.h"
#include "test/unit/runtime/test_plan_builder.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace fusion::rt;
using namespace fusion::rt::data;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

std::vector<int32_t> targetsOf(const std::vector<int32_t> &tokens, int64_t rowLength, int32_t pad,
                               int32_t eos) {
  std::vector<int32_t> targets(tokens.size(), 12345);
  applyIgnoreRule(tokens.data(), targets.data(), static_cast<int64_t>(tokens.size()) / rowLength,
                  rowLength, pad, eos);
  return targets;
}

TEST(DataIgnoreRule, NoPadIgnoresNothing) {
  std::vector<int32_t> tokens = {5, 5, 5, 1, 0, 5};
  EXPECT_EQ(targetsOf(tokens, 3, -1, 5), tokens);
  EXPECT_EQ(targetsOf(tokens, 3, -1, -1), tokens);
}

TEST(DataIgnoreRule, PadDifferentFromEosIgnoresEveryPad) {
  EXPECT_EQ(targetsOf({1, 0, 0, 5, 0}, 5, 0, 5), (std::vector<int32_t>{1, -1, -1, 5, -1}));
  // EOS stays a target; position 0 is pad too.
  EXPECT_EQ(targetsOf({0, 2, 5, 0}, 4, 0, 5), (std::vector<int32_t>{-1, 2, 5, -1}));
  // eos = -1 (none) with a pad id: still the pad != eos rule.
  EXPECT_EQ(targetsOf({3, 9, 9}, 3, 9, -1), (std::vector<int32_t>{3, -1, -1}));
}

TEST(DataIgnoreRule, PadEqualToEosKeepsTheFirstEos) {
  // doc EOS pad pad doc EOS: the first 7 of each run stays a target.
  EXPECT_EQ(targetsOf({3, 7, 7, 7, 4, 7}, 6, 7, 7), (std::vector<int32_t>{3, 7, -1, -1, 4, 7}));
  // A row starting inside padding: position 0 has no predecessor (and is never a target);
  // position 1 follows a pad.
  EXPECT_EQ(targetsOf({7, 7, 2}, 3, 7, 7), (std::vector<int32_t>{7, -1, 2}));
  // Rows are independent: row 1 ends in 7, row 2 starts with 7 (kept), then 7 7 (ignored).
  EXPECT_EQ(targetsOf({1, 7, 7, 7, 7, 7}, 3, 7, 7), (std::vector<int32_t>{1, 7, -1, 7, -1, -1}));
}

TEST(DataCounts, CountKeptTargetsPerHead) {
  // B = 2, T = 4: positions 1..4 are targets; -1 is ignored.
  std::vector<int32_t> targets = {
      9,  1,  -1, 3,  4, // kept at 1, 3, 4
      -1, -1, 2,  -1, 5  // kept at 2, 4 (position 0 never counts)
  };
  std::vector<uint64_t> counts = countTargets(targets.data(), 2, 4, 3);
  // N_0: positions 1..4 -> 5; N_1: 2..4 -> 4; N_2: 3..4 -> 3; N_3: 4 -> 2.
  EXPECT_EQ(counts, (std::vector<uint64_t>{5, 4, 3, 2}));
  EXPECT_EQ(countTargets(targets.data(), 2, 4, 0), (std::vector<uint64_t>{5}));
  // Depths at or beyond T have no positions.
  EXPECT_EQ(countTargets(targets.data(), 2, 4, 5), (std::vector<uint64_t>{5, 4, 3, 2, 0, 0}));
  std::vector<float> inverse = inverseCounts({5, 4, 0, 3});
  EXPECT_EQ(inverse, (std::vector<float>{0.2f, 0.25f, 0.0f, static_cast<float>(1.0 / 3.0)}));
}

TEST(DataBatch, MakeBatchAppliesTheSpecsPadAndEos) {
  DataSpec spec;
  spec.seed = 5;
  // V = 4: rows of the synthetic generator hit every id, so pad/eos = 0 appear.
  StatusOr<std::unique_ptr<Source>> source = openSource(spec, 4);
  ASSERT_TRUE(source.ok());
  spec.padId = 0;
  spec.eosId = 0;
  StatusOr<Batch> batch = makeBatch(**source, spec, {3, 10, 2}, {});
  ASSERT_TRUE(batch.ok()) << batch.status().toString();
  ASSERT_EQ(batch->tokens.size(), 33u);
  std::vector<int32_t> expectedTargets(33);
  applyIgnoreRule(batch->tokens.data(), expectedTargets.data(), 3, 11, 0, 0);
  EXPECT_EQ(batch->targets, expectedTargets);
  EXPECT_EQ(batch->counts, countTargets(expectedTargets.data(), 3, 10, 2));
  EXPECT_EQ(batch->invCounts, inverseCounts(batch->counts));
  EXPECT_EQ(batch->counts.size(), 3u);

  EXPECT_EQ(makeBatch(**source, spec, {0, 10, 0}, {}).status().message(),
            "batch shape B=0, T=10, D_m=0 (need B >= 1, T >= 1, D_m >= 0)");
  EXPECT_FALSE(makeBatch(**source, spec, {2, 0, 0}, {}).ok());
}

TEST(DataSpecParse, AcceptsTheThreeFormats) {
  StatusOr<DataSpec> synthetic = parseDataSpec("synthetic:seed=99");
  ASSERT_TRUE(synthetic.ok());
  EXPECT_EQ(synthetic->format, Format::kSynthetic);
  EXPECT_EQ(synthetic->seed, 99u);
  EXPECT_EQ(parseDataSpec("synthetic")->seed, 1234u);
  EXPECT_EQ(parseDataSpec("synthetic:seed=0xFFFFFFFFFFFFFFFF")->seed, ~0ull);

  StatusOr<DataSpec> shards =
      parseDataSpec("shards:data/m.jsonl,pad=151643,eos=151643,seed=7,mix=a:1+b:0.5");
  ASSERT_TRUE(shards.ok()) << shards.status().toString();
  EXPECT_EQ(shards->format, Format::kFusionShards);
  EXPECT_EQ(shards->path, "data/m.jsonl");
  EXPECT_EQ(shards->padId, 151643);
  EXPECT_EQ(shards->eosId, 151643);
  EXPECT_EQ(shards->seed, 7u);
  EXPECT_EQ(shards->sampling, Sampling::kMixture);
  ASSERT_EQ(shards->mix.size(), 2u);
  EXPECT_EQ(shards->mix[1].source, "b");
  EXPECT_EQ(shards->mix[1].weight, 0.5);

  StatusOr<DataSpec> defaults = parseDataSpec("fusion_shards:m.jsonl");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->padId, -1);
  EXPECT_EQ(defaults->eosId, -1);
  ASSERT_EQ(defaults->mix.size(), 5u); // the seed data_mix
  EXPECT_EQ(defaults->mix[0].source, "fineweb_edu");
  EXPECT_EQ(defaults->mix[0].weight, 0.60);
  EXPECT_EQ(parseDataSpec("shards:m.jsonl,sampling=sequential")->sampling, Sampling::kSequential);

  StatusOr<DataSpec> bin = parseDataSpec("bin:data/fineweb_train_*.bin,eos=50256");
  ASSERT_TRUE(bin.ok());
  EXPECT_EQ(bin->format, Format::kBin);
  EXPECT_EQ(bin->path, "data/fineweb_train_*.bin");
  EXPECT_EQ(bin->sampling, Sampling::kSequential);
  EXPECT_EQ(bin->eosId, 50256);
}

TEST(DataSpecParse, RejectsMalformedSpecsInOneLine) {
  struct Case {
    const char *spec;
    const char *message;
  } cases[] = {
      {"", "data spec '': unknown format '' (expected synthetic:..., shards:MANIFEST... or "
           "bin:GLOB...)"},
      {"tfrecord:x", "data spec 'tfrecord:x': unknown format 'tfrecord' (expected synthetic:..., "
                     "shards:MANIFEST... or bin:GLOB...)"},
      {"synthetic:", "data spec 'synthetic:': nothing after 'synthetic:' (write 'synthetic' or "
                     "'synthetic:seed=S')"},
      {"synthetic:1234", "data spec 'synthetic:1234': expected KEY=VALUE, got '1234'"},
      {"synthetic:seed=12x", "data spec 'synthetic:seed=12x': seed must be a 64-bit unsigned "
                             "integer (decimal or 0x-hex), got '12x'"},
      {"synthetic:seed=18446744073709551616",
       "data spec 'synthetic:seed=18446744073709551616': seed must be a 64-bit unsigned integer "
       "(decimal or 0x-hex), got '18446744073709551616'"},
      {"synthetic:seed=1,seed=2", "data spec 'synthetic:seed=1,seed=2': key 'seed' given twice"},
      {"synthetic:mix=a:1", "data spec 'synthetic:mix=a:1': unknown key 'mix' for synthetic "
                            "(keys: seed, pad, eos)"},
      {"shards:", "data spec 'shards:': shards needs a manifest path "
                  "(shards:PATH/manifest.jsonl)"},
      {"shards", "data spec 'shards': shards needs a manifest path (shards:PATH/manifest.jsonl)"},
      {"bin:", "data spec 'bin:': bin needs a file glob (bin:GLOB)"},
      {"shards:m,,pad=1", "data spec 'shards:m,,pad=1': empty option (stray ',')"},
      {"shards:m,pad=-2", "data spec 'shards:m,pad=-2': pad must be -1 or a token id in "
                          "[0, 2^31), got '-2'"},
      {"shards:m,eos=2147483648", "data spec 'shards:m,eos=2147483648': eos must be -1 or a "
                                  "token id in [0, 2^31), got '2147483648'"},
      {"shards:m,sampling=random", "data spec 'shards:m,sampling=random': sampling must be "
                                   "mixture or sequential, got 'random'"},
      {"shards:m,mix=a", "data spec 'shards:m,mix=a': mix entries are SOURCE:WEIGHT joined by "
                         "'+', got 'a'"},
      {"shards:m,mix=a:-1", "data spec 'shards:m,mix=a:-1': mix weight of 'a' must be a finite "
                            "non-negative number, got '-1'"},
      {"shards:m,mix=a:inf", "data spec 'shards:m,mix=a:inf': mix weight of 'a' must be a "
                             "finite non-negative number, got 'inf'"},
      {"shards:m,mix=a:1+a:2", "data spec 'shards:m,mix=a:1+a:2': mix lists source 'a' twice"},
      {"shards:m,mix=a:0", "data spec 'shards:m,mix=a:0': mix weights sum to 0"},
      {"shards:m,mix=a:1,sampling=sequential",
       "data spec 'shards:m,mix=a:1,sampling=sequential': mix only applies to sampling=mixture"},
      {"bin:x,seed=1", "data spec 'bin:x,seed=1': unknown key 'seed' for bin (keys: pad, eos)"},
      {"bin:x,sampling=mixture", "data spec 'bin:x,sampling=mixture': unknown key 'sampling' for "
                                 "bin (keys: pad, eos)"},
  };
  for (const Case &c : cases) {
    StatusOr<DataSpec> spec = parseDataSpec(c.spec);
    ASSERT_FALSE(spec.ok()) << c.spec;
    EXPECT_EQ(spec.status().message(), c.message) << c.spec;
    EXPECT_EQ(spec.status().message().find('\n'), std::string::npos);
  }
}

/// A plan with a `forward` program binding tokens/targets [B, T+1] and inv_counts [1+D].
std::shared_ptr<const Plan> dataPlan(int64_t B, int64_t T, int64_t D, int64_t V = 0) {
  PlanBuilder plan;
  uint32_t tokens = plan.addBuffer("tok", DType::I32, {B, T + 1});
  uint32_t targets = plan.addBuffer("tgt", DType::I32, {B, T + 1});
  uint32_t counts = plan.addBuffer("counts", DType::F32, {1 + D});
  if (V)
    plan.addBuffer("tok_embeddings.weight", DType::F32, {V, 4});
  plan.addProgram("forward")
      .input("tokens", tokens)
      .input("targets", targets)
      .input("inv_counts", counts);
  plan.addProgram("init");
  StatusOr<std::shared_ptr<const Plan>> loaded = Plan::loadBytes(plan.finish(), "data.fplan");
  EXPECT_TRUE(loaded.ok()) << loaded.status().toString();
  return loaded.ok() ? *loaded : nullptr;
}

TEST(DataProgramInputs, ShapeAndVocabularyComeFromThePlan) {
  std::shared_ptr<const Plan> plan = dataPlan(2, 8, 3, 512);
  ASSERT_TRUE(plan);
  uint32_t forward = *plan->findProgram("forward"), init = *plan->findProgram("init");
  EXPECT_TRUE(programTakesData(*plan, forward));
  EXPECT_FALSE(programTakesData(*plan, init));
  StatusOr<BatchShape> shape = programBatchShape(*plan, forward);
  ASSERT_TRUE(shape.ok()) << shape.status().toString();
  EXPECT_EQ(shape->rows, 2);
  EXPECT_EQ(shape->seqLen, 8);
  EXPECT_EQ(shape->mtpDepth, 3);
  StatusOr<std::optional<int64_t>> vocab = planVocabSize(*plan);
  ASSERT_TRUE(vocab.ok());
  EXPECT_EQ(*vocab, 512);
  std::shared_ptr<const Plan> noEmbedding = dataPlan(2, 8, 0);
  EXPECT_EQ(*planVocabSize(*noEmbedding), std::nullopt);
}

TEST(DataProgramInputs, RejectsBadDataInputs) {
  auto shapeError = [](PlanBuilder &plan) {
    StatusOr<std::shared_ptr<const Plan>> loaded = Plan::loadBytes(plan.finish(), "p.fplan");
    EXPECT_TRUE(loaded.ok()) << loaded.status().toString();
    return programBatchShape(**loaded, 0).status().message();
  };
  {
    PlanBuilder plan;
    uint32_t t = plan.addBuffer("t", DType::F32, {2, 9});
    plan.addProgram("forward").input("tokens", t);
    EXPECT_EQ(shapeError(plan), "p.fplan: program 'forward' input 'tokens' (buffer 0 't') is "
                                "f32[2,9]; it must be i32[B, T+1] with B >= 1 and T >= 1");
  }
  {
    PlanBuilder plan;
    uint32_t t = plan.addBuffer("t", DType::I32, {2, 1});
    plan.addProgram("forward").input("tokens", t);
    EXPECT_EQ(shapeError(plan), "p.fplan: program 'forward' input 'tokens' (buffer 0 't') is "
                                "i32[2,1]; it must be i32[B, T+1] with B >= 1 and T >= 1");
  }
  {
    PlanBuilder plan;
    uint32_t t = plan.addBuffer("t", DType::I32, {2, 9});
    uint32_t y = plan.addBuffer("y", DType::I32, {2, 8});
    plan.addProgram("forward").input("tokens", t).input("targets", y);
    EXPECT_EQ(shapeError(plan), "p.fplan: program 'forward' input 'targets' (buffer 1 'y') is "
                                "i32[2,8], but 'tokens' is [2,9] (they must have the same shape)");
  }
  {
    PlanBuilder plan;
    uint32_t c = plan.addBuffer("c", DType::F32, {3});
    plan.addProgram("forward").input("inv_counts", c);
    EXPECT_EQ(shapeError(plan), "p.fplan: program 'forward' binds inv_counts but neither tokens "
                                "nor targets, so B and T are unknown");
  }
  {
    PlanBuilder plan;
    uint32_t t = plan.addBuffer("t", DType::I32, {2, 9});
    uint32_t c = plan.addBuffer("c", DType::F32, {2, 3});
    plan.addProgram("forward").input("tokens", t).input("inv_counts", c);
    EXPECT_EQ(shapeError(plan), "p.fplan: program 'forward' input 'inv_counts' (buffer 1 'c') is "
                                "f32[2,3]; it must be f32[1+D_m] (D_m = MTP depth >= 0)");
  }
  {
    PlanBuilder plan;
    plan.addBuffer("tok_embeddings.weight", DType::F32, {16});
    StatusOr<std::shared_ptr<const Plan>> loaded = Plan::loadBytes(plan.finish(), "p.fplan");
    ASSERT_TRUE(loaded.ok());
    EXPECT_EQ(planVocabSize(**loaded).status().message(),
              "p.fplan: buffer 0 'tok_embeddings.weight' has shape [16]; the embedding must be "
              "[V, D]");
  }
}

TEST(DataProgramInputs, FeedProgramFillsTheBoundInputs) {
  std::shared_ptr<const Plan> plan = dataPlan(2, 8, 2, 64);
  ASSERT_TRUE(plan);
  StatusOr<std::unique_ptr<Executor>> executor = createExecutor(plan, BackendKind::kCpu);
  ASSERT_TRUE(executor.ok());
  DataSpec spec;
  spec.seed = 3;
  spec.padId = 5;
  spec.eosId = 6;
  StatusOr<std::unique_ptr<Source>> source = openSource(spec, 64);
  ASSERT_TRUE(source.ok());
  BatchCoord coord;
  coord.step = 4;
  ASSERT_TRUE(feedProgram(**executor, "forward", **source, spec, coord).ok());
  StatusOr<Batch> expected = makeBatch(**source, spec, {2, 8, 2}, coord);
  ASSERT_TRUE(expected.ok());

  std::vector<uint8_t> bytes;
  ASSERT_TRUE((*executor)->readBufferByName("tok", bytes).ok());
  ASSERT_EQ(bytes.size(), expected->tokens.size() * 4);
  EXPECT_EQ(std::memcmp(bytes.data(), expected->tokens.data(), bytes.size()), 0);
  ASSERT_TRUE((*executor)->readBufferByName("tgt", bytes).ok());
  EXPECT_EQ(std::memcmp(bytes.data(), expected->targets.data(), bytes.size()), 0);
  ASSERT_TRUE((*executor)->readBufferByName("counts", bytes).ok());
  std::vector<float> counts(3);
  std::memcpy(counts.data(), bytes.data(), 12);
  EXPECT_EQ(counts, expected->invCounts);
  EXPECT_EQ(counts[0], 1.0f / static_cast<float>(expected->counts[0]));

  EXPECT_EQ(feedProgram(**executor, "nope", **source, spec, coord).message(),
            "data.fplan: no program named 'nope'");
  EXPECT_EQ(feedProgram(**executor, "init", **source, spec, coord).message(),
            "data.fplan: program 'init' has no tokens or targets input");
}

} // namespace
