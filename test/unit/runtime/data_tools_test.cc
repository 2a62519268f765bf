//===- data_tools_test.cc - fusion-run --data/--dump-tensor and fusion-data --===//
//
// Runs the real binaries (built next to this test, in bin/): fusion-run feeding a program's
// tokens/targets/inv_counts inputs from synthetic data and from shards written by
// `fusion-data pack`, printing outputs as `loss = ...` and writing .npy files; and every
// usage and data error as one stderr line with the documented exit status.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "test/unit/runtime/data_test_plans.h"
#include "test/unit/runtime/data_test_util.h"
#include "test/unit/runtime/test_plan_builder.h"
#include "test/unit/runtime/tool_runner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <sys/wait.h>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

using fusion::rt::testing::RunResult;
using fusion::rt::testing::runTool;

class DataToolsTest : public ::testing::Test {
protected:
  void SetUp() override {
    bin_ = std::filesystem::read_symlink("/proc/self/exe").parent_path();
    ASSERT_TRUE(std::filesystem::exists(bin_ / "fusion-run"));
    ASSERT_TRUE(std::filesystem::exists(bin_ / "fusion-data"));
  }

  RunResult run(const std::string &tool, const std::string &args) {
    return runTool((bin_ / tool).string(), args, dir_.path("stderr.txt"));
  }

  /// A plan whose `forward` binds tokens/targets [B, T+1] and inv_counts [1+D] and outputs
  /// `loss` = inv_counts[0] (via add with a zero buffer) and `counts` = inv_counts; with
  /// V > 0 it has a tok_embeddings.weight [V, 4]. Program `init` has no data inputs.
  std::string writeDataPlan(int64_t B, int64_t T, int64_t D, int64_t V) {
    PlanBuilder plan;
    uint32_t tokens = plan.addBuffer("tokens_buf", DType::I32, {B, T + 1});
    uint32_t targets = plan.addBuffer("targets_buf", DType::I32, {B, T + 1});
    uint32_t counts = plan.addBuffer("inv_counts_buf", DType::F32, {1 + D});
    uint32_t head = plan.addBuffer("head", DType::F32, {1});
    uint32_t zero = plan.addBuffer("zero", DType::F32, {});
    uint32_t loss = plan.addBuffer("loss_buf", DType::F32, {});
    uint32_t slice = plan.addKernel("first", "add");
    if (V)
      plan.addBuffer("tok_embeddings.weight", DType::F32, {V, 4});
    // head = counts (when D = 0 it has one element); loss = head + zero.
    ProgramDesc &forward = plan.addProgram("forward");
    if (D == 0)
      forward.add(launchOp(slice, {counts, zero}, {loss}));
    else
      forward.add(launchOp(slice, {head, zero}, {loss}));
    forward.input("tokens", tokens)
        .input("targets", targets)
        .input("inv_counts", counts)
        .output("loss", loss)
        .output("counts", counts);
    plan.addProgram("init");
    std::string path = dir_.path("data.fplan");
    std::vector<uint8_t> bytes = plan.finish();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char *>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  /// The int32 payload of a .npy file written by --dump-tensor (header checked).
  std::vector<int32_t> npyInts(const std::string &path, const std::string &shape) {
    std::vector<uint8_t> file = readFileBytes(path);
    EXPECT_GE(file.size(), 64u);
    if (file.size() < 64)
      return {};
    size_t headerLength = file[8] | (file[9] << 8);
    std::string header(file.begin() + 10, file.begin() + 10 + headerLength);
    EXPECT_EQ(std::memcmp(file.data(), "\x93NUMPY\x01\x00", 8), 0);
    EXPECT_NE(header.find("'descr': '<i4'"), std::string::npos) << header;
    EXPECT_NE(header.find("'shape': " + shape), std::string::npos) << header;
    std::vector<int32_t> values((file.size() - 10 - headerLength) / 4);
    std::memcpy(values.data(), file.data() + 10 + headerLength, values.size() * 4);
    return values;
  }

  TempDir dir_;
  std::filesystem::path bin_;
};

TEST_F(DataToolsTest, HelpDocumentsTheDataFlags) {
  RunResult result = run("fusion-run", "--help");
  EXPECT_EQ(result.exitCode, 0);
  for (const char *text :
       {"--data SPEC", "--batch-index N", "--vocab N", "--dump-tensor", "synthetic[:KEY=VALUE,...]",
        "shards:MANIFEST", "bin:GLOB", "mix=SRC:W", "loss = 6.2383"})
    EXPECT_NE(result.out.find(text), std::string::npos) << text;
  RunResult data = run("fusion-data", "--help");
  EXPECT_EQ(data.exitCode, 0);
  for (const char *text : {"pack", "inspect", "--pack-length", "--shard-rows", "--replace"})
    EXPECT_NE(data.out.find(text), std::string::npos) << text;
  EXPECT_EQ(run("fusion-data", "pack --help").exitCode, 0);
}

TEST_F(DataToolsTest, SyntheticDataFeedsTheProgramAndPrintsTheLoss) {
  std::string plan = writeDataPlan(2, 8, 0, 64);
  std::string tokensNpy = dir_.path("tokens.npy"), targetsNpy = dir_.path("targets.npy");
  RunResult result = run("fusion-run", plan +
                                           " --program forward --data synthetic:seed=7 "
                                           "--dump-tensor tokens_buf=" +
                                           tokensNpy + " --dump-tensor=targets_buf=" + targetsNpy);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  // No padding: N_0 = B * T = 16.
  EXPECT_EQ(result.out, "loss = 0.0625\ncounts f32[1] = [0.0625]\n");
  EXPECT_EQ(result.err, "");

  data::DataSpec spec;
  spec.seed = 7;
  StatusOr<std::unique_ptr<data::Source>> source = data::openSource(spec, 64);
  ASSERT_TRUE(source.ok());
  StatusOr<data::Batch> expected = data::makeBatch(**source, spec, {2, 8, 0}, {});
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(npyInts(tokensNpy, "(2, 9)"), expected->tokens);
  EXPECT_EQ(npyInts(targetsNpy, "(2, 9)"), expected->targets);

  // --batch-index picks the step; pad/eos select the ignore rule and change N_0.
  result = run("fusion-run", plan +
                                 " --program forward --batch-index 3 --data "
                                 "synthetic:seed=7,pad=5,eos=5 --dump-tensor tokens_buf=" +
                                 tokensNpy + " --dump-tensor targets_buf=" + targetsNpy);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  spec.padId = spec.eosId = 5;
  data::BatchCoord coord;
  coord.step = 3;
  expected = data::makeBatch(**source, spec, {2, 8, 0}, coord);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(npyInts(tokensNpy, "(2, 9)"), expected->tokens);
  EXPECT_EQ(npyInts(targetsNpy, "(2, 9)"), expected->targets);
  char loss[64];
  std::snprintf(loss, sizeof(loss), "loss = %.4f\n", expected->invCounts[0]);
  EXPECT_EQ(result.out.substr(0, result.out.find('\n') + 1), loss);
}

TEST_F(DataToolsTest, MtpDepthComesFromInvCounts) {
  std::string plan = writeDataPlan(1, 4, 2, 0);
  RunResult result = run("fusion-run", plan + " --program forward --data synthetic --vocab 100");
  ASSERT_EQ(result.exitCode, 0) << result.err;
  // N_0 = 4, N_1 = 3, N_2 = 2; loss here is the zero-initialised head buffer.
  EXPECT_EQ(result.out, "loss = 0.0000\ncounts f32[3] = [0.25, 0.333333, 0.5]\n");
  // Running init first (no data inputs) is fine; init needs no --data.
  EXPECT_EQ(run("fusion-run", plan + " --program init").exitCode, 0);
}

TEST_F(DataToolsTest, TinyModelLossStartsNearLnV) {
  // Logits of a freshly initialised tied embedding (std 0.02) are ~0, so CE ~ ln V per kept
  // target, and inv_counts normalises by N_0 whatever the ignore rule keeps.
  std::vector<uint8_t> bytes = tinyLanguageModelPlan(4, 16, 64, 8, 0.02);
  std::string plan = dir_.path("tiny.fplan");
  std::ofstream(plan, std::ios::binary)
      .write(reinterpret_cast<const char *>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  for (const char *spec :
       {"synthetic:seed=1", "synthetic:seed=2,pad=3,eos=3", "synthetic:seed=3,pad=3,eos=-1"}) {
    RunResult result = run("fusion-run", plan + " --program init --program forward --data " +
                                             std::string(spec) + " --batch-index 5");
    ASSERT_EQ(result.exitCode, 0) << spec << ": " << result.err;
    ASSERT_EQ(result.out.rfind("loss = ", 0), 0u) << result.out;
    double loss = std::strtod(result.out.c_str() + 7, nullptr);
    EXPECT_NEAR(loss, std::log(64.0), 0.01) << spec;
  }
}

TEST_F(DataToolsTest, UsageErrorsExitTwo) {
  std::string plan = writeDataPlan(2, 8, 0, 64);
  std::string noVocab = dir_.path("novocab.fplan");
  std::filesystem::copy_file(writeDataPlan(2, 8, 0, 0), noVocab);
  plan = writeDataPlan(2, 8, 0, 64);
  struct Case {
    std::string args;
    std::string message;
  } cases[] = {
      {plan + " --program forward",
       "program 'forward' has data inputs (tokens, targets, inv_counts); pass --data SPEC"},
      {plan + " --program init --data synthetic",
       "--data given, but no program run binds tokens, targets or inv_counts"},
      {plan + " --program forward --data synthetic:sed=1",
       "data spec 'synthetic:sed=1': unknown key 'sed' for synthetic (keys: seed, pad, eos)"},
      {plan + " --program forward --data parquet:x",
       "data spec 'parquet:x': unknown format 'parquet' (expected synthetic:..., "
       "shards:MANIFEST... or bin:GLOB...)"},
      {plan + " --program forward --data synthetic --data synthetic", "--data given twice"},
      {plan + " --program forward --data synthetic --vocab 65",
       "--vocab 65 disagrees with the plan's 'tok_embeddings.weight' (V = 64)"},
      {plan + " --program forward --data synthetic --vocab 0",
       "--vocab needs a positive integer, got '0'"},
      {plan + " --program forward --data synthetic --batch-index -1",
       "--batch-index needs a non-negative integer, got '-1'"},
      {plan + " --program forward --batch-index 2", "--batch-index only applies with --data"},
      {plan + " --program forward --vocab 64", "--vocab only applies with --data"},
      {noVocab + " --program forward --data synthetic",
       "synthetic data needs the vocabulary size: the plan has no 'tok_embeddings.weight' "
       "buffer; pass --vocab N"},
      {plan + " --program init --dump-tensor loss_buf", "--dump-tensor needs NAME=FILE.npy, got "
                                                        "'loss_buf'"},
      {plan + " --program init --dump-tensor =x.npy", "--dump-tensor needs NAME=FILE.npy, got "
                                                      "'=x.npy'"},
      {plan + " --program init --dump-tensor nope=x.npy",
       plan + " has no buffer named 'nope' (--dump-plan lists the buffers)"},
  };
  for (const Case &c : cases) {
    RunResult result = run("fusion-run", c.args);
    EXPECT_EQ(result.exitCode, 2) << c.args << "\n" << result.err;
    EXPECT_EQ(result.err, "fusion-run: error: " + c.message + " (see --help)\n") << c.args;
    EXPECT_EQ(result.out, "") << c.args;
  }
}

TEST_F(DataToolsTest, PackThenRunOnShards) {
  // Documents of ids 10..59, packed into rows of 12 with pad 0 and eos 1.
  std::string docs;
  for (int d = 0; d < 30; ++d) {
    for (int i = 0; i < 3 + d % 9; ++i)
      docs += std::to_string(10 + (d * 7 + i) % 50) + (i % 4 == 3 ? "\t" : " ");
    docs += "\n";
  }
  writeTextFile(dir_.path("docs.txt"), docs);
  std::string out = dir_.path("shards");
  RunResult packed = run("fusion-data", "pack --pack-length 12 --pad 0 --eos 1 --source web "
                                        "--vocab 64 -o " +
                                            out + " " + dir_.path("docs.txt"));
  ASSERT_EQ(packed.exitCode, 0) << packed.err;
  EXPECT_NE(packed.out.find("packed 30 documents into"), std::string::npos) << packed.out;
  EXPECT_TRUE(std::filesystem::exists(out + "/web_shard_00000.bin"));

  RunResult inspect = run("fusion-data", "inspect " + out + "/manifest.jsonl --eos 1");
  ASSERT_EQ(inspect.exitCode, 0) << inspect.err;
  EXPECT_NE(inspect.out.find("web_shard_00000.bin"), std::string::npos) << inspect.out;
  EXPECT_NE(inspect.out.find("source web"), std::string::npos) << inspect.out;
  EXPECT_NE(inspect.out.find("30 eos"), std::string::npos) << inspect.out;

  std::string plan = writeDataPlan(3, 5, 0, 64);
  std::string tokensNpy = dir_.path("tokens.npy");
  RunResult result = run("fusion-run", plan + " --program forward --data shards:" + out +
                                           "/manifest.jsonl,pad=0,eos=1,mix=web:1,seed=9 "
                                           "--dump-tensor tokens_buf=" +
                                           tokensNpy);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(result.out.rfind("loss = ", 0), 0u) << result.out;
  std::vector<int32_t> tokens = npyInts(tokensNpy, "(3, 6)");
  std::vector<uint8_t> shard = readFileBytes(out + "/web_shard_00000.bin");
  std::vector<int32_t> stream((shard.size() - 256) / 4);
  std::memcpy(stream.data(), shard.data() + 256, stream.size() * 4);
  for (size_t b = 0; b < 3; ++b) {
    bool found = false;
    for (size_t o = 0; o + 6 <= stream.size() && !found; ++o)
      found = std::equal(tokens.begin() + b * 6, tokens.begin() + (b + 1) * 6, stream.begin() + o);
    EXPECT_TRUE(found) << "row " << b;
  }

  // The header pad id must match the spec's; shard errors exit 1 naming the shard.
  result = run("fusion-run", plan + " --program forward --data shards:" + out + ",mix=web:1");
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_EQ(result.err, "fusion-run: error: " + out +
                            "/web_shard_00000.bin: shard "
                            "pad_token_id is 0 but the data's pad id is -1 (they must be equal, "
                            "MODEL.md §14.1)\n");
  // Ids >= V: a plan with V = 40 reads rows holding ids up to 59.
  std::string small = writeDataPlan(1, 100, 0, 40);
  result = run("fusion-run", small + " --program forward --data shards:" + out +
                                 ",pad=0,eos=1,sampling=sequential");
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_EQ(result.err.rfind("fusion-run: error: " + out + "/web_shard_00000.bin: token ", 0), 0u)
      << result.err;
  EXPECT_NE(result.err.find(", outside the vocabulary [0, 40)\n"), std::string::npos) << result.err;
}

TEST_F(DataToolsTest, FusionDataPackManagesTheManifest) {
  writeTextFile(dir_.path("a.txt"), "1 2 3\n4 5\n");
  writeTextFile(dir_.path("b.txt"), "6 7\n");
  std::string out = dir_.path("d");
  std::string common = "pack --pack-length 4 --pad 0 --eos 9 -o " + out;
  ASSERT_EQ(run("fusion-data", common + " --source a " + dir_.path("a.txt")).exitCode, 0);
  ASSERT_EQ(
      run("fusion-data", common + " --source b --domain code --weight 0.25 " + dir_.path("b.txt"))
          .exitCode,
      0);
  StatusOr<std::vector<data::ManifestEntry>> entries = data::readManifest(out + "/manifest.jsonl");
  ASSERT_TRUE(entries.ok()) << entries.status().toString();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].source, "a");
  EXPECT_EQ((*entries)[0].numTokens, 8u);
  EXPECT_EQ((*entries)[1].source, "b");
  EXPECT_EQ((*entries)[1].domain, "code");
  EXPECT_EQ((*entries)[1].weight, 0.25);

  RunResult again = run("fusion-data", common + " --source a " + dir_.path("b.txt"));
  EXPECT_EQ(again.exitCode, 1);
  EXPECT_EQ(again.err, "fusion-data: error: " + out +
                           "/manifest.jsonl already lists 1 shard(s) "
                           "of source 'a' (pass --replace to rewrite them, or choose another "
                           "--source)\n");
  ASSERT_EQ(run("fusion-data", common + " --source a --replace " + dir_.path("b.txt")).exitCode, 0);
  entries = data::readManifest(out + "/manifest.jsonl");
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].source, "b"); // kept entries first, then the new ones
  EXPECT_EQ((*entries)[1].source, "a");
  EXPECT_EQ((*entries)[1].numTokens, 4u);
}

TEST_F(DataToolsTest, FusionDataErrors) {
  writeTextFile(dir_.path("bad.txt"), "1 2\n3 x4 5\n");
  writeTextFile(dir_.path("big.txt"), "1 2 99\n");
  std::string out = dir_.path("d");
  struct Case {
    std::string args;
    int exitCode;
    std::string message;
  } cases[] = {
      {"", 2,
       "missing the command (pack, inspect, tokenize, brown, encode or decode) (see --help)"},
      {"unpack", 2,
       "unknown command 'unpack' (expected pack, inspect, tokenize, brown, encode or decode) "
       "(see --help)"},
      {"pack --pad 0 --eos 1 --source a -o " + out + " x", 2,
       "pack needs --pack-length (see --help)"},
      {"pack --pack-length 0 --pad 0 --eos 1 --source a -o " + out + " x", 2,
       "--pack-length needs an integer in [1, 2^32), got '0' (see --help)"},
      {"pack --pack-length 4 --eos 1 --source a -o " + out + " x", 2,
       "pack needs --pad ID (see --help)"},
      {"pack --pack-length 4 --pad -1 --eos 1 --source a -o " + out + " x", 2,
       "--pad needs a token id in [0, 2^31), got '-1' (see --help)"},
      {"pack --pack-length 4 --pad 0 --eos 1 --source a -o " + out, 2,
       "pack needs input files (token ids, one document per line; '-' = stdin) (see --help)"},
      {"pack --pack-length 4 --pad 0 --eos 1 --source a/b -o " + out + " " + dir_.path("bad.txt"),
       2,
       "source name 'a/b' may only contain letters, digits, '_', '-' and '.' (it names the "
       "shard files)"},
      {"pack --pack-length 4 --pad 0 --eos 1 --source a --bogus 1 -o " + out + " x", 2,
       "unknown flag '--bogus' (see --help)"},
      {"pack --pack-length 4 --pad 0 --eos 1 --source a -o " + out + " " + dir_.path("bad.txt"), 1,
       dir_.path("bad.txt") + ":2: 'x4' is not a token id (a decimal integer in [0, 2^31))"},
      {"pack --pack-length 4 --pad 0 --eos 1 --source a --vocab 50 -o " + out + " " +
           dir_.path("big.txt"),
       1, dir_.path("big.txt") + ":1: document 1 token 2 is 99, outside the vocabulary [0, 50)"},
      {"pack --pack-length 4 --pad 0 --eos 1 --source a -o " + out + " " + dir_.path("none.txt"), 1,
       dir_.path("none.txt") + ": cannot open: No such file or directory"},
      {"inspect", 2, "inspect takes one manifest path (see --help)"},
      {"inspect " + dir_.path("none.jsonl"), 1,
       dir_.path("none.jsonl") + ": cannot open manifest: No such file or directory"},
  };
  for (const Case &c : cases) {
    RunResult result = run("fusion-data", c.args);
    EXPECT_EQ(result.exitCode, c.exitCode) << c.args << "\n" << result.err;
    EXPECT_EQ(result.err, "fusion-data: error: " + c.message + "\n") << c.args;
  }
  // inspect checks the shards like the loader does.
  std::filesystem::create_directories(out);
  writeShardFile(out + "/s.bin", {1, 2, 3}, {});
  writeTextFile(out + "/manifest.jsonl",
                "{\"path\": \"s.bin\", \"n_tokens\": 4, \"source\": \"x\"}\n");
  RunResult result = run("fusion-data", "inspect " + out);
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_EQ(result.err, "fusion-data: error: " + out +
                            "/manifest.jsonl:1: n_tokens is 4 but the "
                            "header of " +
                            out + "/s.bin says 3\n");
}

} // namespace
