//===- fusion_run_test.cc - fusion-run command-line tests -----------------===//
//
// Runs the real fusion-run binary (built next to this test, in bin/) on plans written to a
// temporary directory, and checks what a user sees: exit status (0 ok, 1 plan/runtime error,
// 2 usage error), the one-line `fusion-run: error: ...` messages, the buffer print format and
// the JSON dump.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/sample_plans.h"
#include "test/unit/runtime/test_plan_builder.h"
#include "test/unit/runtime/tool_runner.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/wait.h>
#include <unistd.h>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

using fusion::rt::testing::RunResult;
using fusion::rt::testing::runTool;

class FusionRunTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("fusion_run_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    fusionRun_ = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "fusion-run";
    ASSERT_TRUE(std::filesystem::exists(fusionRun_)) << fusionRun_;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string &name, const std::vector<uint8_t> &bytes) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
    return path;
  }

  /// Runs fusion-run with `args` (already shell-quoted where needed).
  RunResult run(const std::string &args) {
    return runTool(fusionRun_.string(), args, (dir_ / "stderr.txt").string());
  }

  /// x = 0.5 * i, y = 2, z = x + y, in program main; also an `init` program.
  std::string writeSmallPlan() {
    PlanBuilder plan;
    uint32_t x = plan.addBuffer("x", DType::F32, {2, 3});
    uint32_t y = plan.addBuffer("y", DType::F32, {2, 3});
    uint32_t z = plan.addBuffer("z", DType::F32, {2, 3});
    uint32_t fillX = plan.addKernel(
        "fill_x", "fill", {AttrDesc::number("value", 0), AttrDesc::number("step", 0.5)});
    uint32_t fillY = plan.addKernel("fill_y", "fill", {AttrDesc::number("value", 2)});
    uint32_t add = plan.addKernel("add", "add");
    plan.addProgram("init").add(launchOp(fillY, {}, {y}));
    plan.addProgram("main").add(launchOp(fillX, {}, {x})).add(launchOp(add, {x, y}, {z}));
    return write("small.fplan", plan.finish());
  }

  std::filesystem::path dir_;
  std::filesystem::path fusionRun_;
};

TEST_F(FusionRunTest, HelpDescribesEveryFlag) {
  RunResult result = run("--help");
  EXPECT_EQ(result.exitCode, 0);
  for (const char *flag : {"--program", "--backend", "--dump-plan", "--print-buffer",
                           "--print-all-buffers", "--print-limit", "--help"})
    EXPECT_NE(result.out.find(flag), std::string::npos) << flag;
  EXPECT_EQ(result.err, "");
}

TEST_F(FusionRunTest, UsageErrorsExitTwoAndNameTheProblem) {
  std::string plan = writeSmallPlan();
  struct Case {
    std::string args;
    std::string message;
  } cases[] = {
      {"", "fusion-run: error: missing the plan file (usage: fusion-run PLAN.fplan [options]) "
           "(see --help)\n"},
      {plan + " --bogus", "fusion-run: error: unknown flag '--bogus' (see --help)\n"},
      {plan + " -x", "fusion-run: error: unknown flag '-x' (see --help)\n"},
      {plan + " --program", "fusion-run: error: flag '--program' needs a value (see --help)\n"},
      {plan + " --backend tpu",
       "fusion-run: error: unknown backend 'tpu' (expected cpu or cuda) (see --help)\n"},
      {plan + " --print-limit -3",
       "fusion-run: error: --print-limit needs a non-negative integer, got '-3' (see --help)\n"},
      {plan + " --dump-plan=yes", "fusion-run: error: flag '--dump-plan' takes no value (see "
                                  "--help)\n"},
      {plan + " other.fplan", "fusion-run: error: unexpected argument 'other.fplan': "
                              "fusion-run takes one plan file (see --help)\n"},
      {plan + " --program nope",
       "fusion-run: error: " + plan +
           " has no program named 'nope' (programs: 'init', 'main') (see --help)\n"},
      {plan + " --print-buffer w",
       "fusion-run: error: " + plan +
           " has no buffer named 'w' (--dump-plan lists the buffers) (see --help)\n"},
  };
  for (const Case &c : cases) {
    RunResult result = run(c.args);
    EXPECT_EQ(result.exitCode, 2) << c.args;
    EXPECT_EQ(result.err, c.message) << c.args;
    EXPECT_EQ(result.out, "") << c.args;
  }
}

TEST_F(FusionRunTest, PlanErrorsExitOneWithOneLine) {
  std::string missing = (dir_ / "missing.fplan").string();
  RunResult result = run(missing);
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_EQ(result.err,
            "fusion-run: error: " + missing + ": cannot open plan: No such file or directory\n");

  std::string garbage = write("garbage.fplan", {'n', 'o', 't', ' ', 'a', ' ', 'p', 'l', 'a', 'n'});
  result = run(garbage);
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_EQ(result.err, "fusion-run: error: " + garbage +
                            ": not a FusionLLM plan (identifier 'a pl', expected 'FPLN')\n");
}

TEST_F(FusionRunTest, RunsMainAndPrintsBuffers) {
  std::string plan = writeSmallPlan();
  // main alone: y was never filled (init did not run), so z = x.
  RunResult result = run(plan + " --print-buffer z");
  EXPECT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(result.out, "z f32[2,3] = [0, 0.5, 1, 1.5, 2, 2.5]\n");

  // Programs run in the order given, on the same memory; --flag=value works too.
  // --backend cpu: on a machine with a GPU the default choice adds a note on stderr.
  result = run(plan + " --backend cpu --program init --program=main --print-buffer z "
                      "--print-buffer=y --print-limit 4");
  EXPECT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(result.out, "z f32[2,3] = [2, 2.5, 3, 3.5, ...]\ny f32[2,3] = [2, 2, 2, 2, ...]\n");
  EXPECT_EQ(result.err, "");
}

TEST_F(FusionRunTest, PrintAllBuffersAndLimitZero) {
  std::string plan = writeSmallPlan();
  RunResult result = run(plan + " --print-all-buffers --print-limit 0 --backend cpu");
  EXPECT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(result.out, "x f32[2,3] = [0, 0.5, 1, 1.5, 2, 2.5]\n"
                        "y f32[2,3] = [0, 0, 0, 0, 0, 0]\n"
                        "z f32[2,3] = [0, 0.5, 1, 1.5, 2, 2.5]\n");
}

TEST_F(FusionRunTest, DumpPlanPrintsJsonAndRunsNothing) {
  std::string plan = writeSmallPlan();
  RunResult result = run(plan + " --dump-plan");
  EXPECT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(result.out.rfind("{\n", 0), 0u) << result.out;
  EXPECT_NE(result.out.find("\"schema_version\": " + std::to_string(kSchemaVersion)),
            std::string::npos);
  EXPECT_NE(result.out.find("\"name\": \"fill_x\""), std::string::npos);
  EXPECT_EQ(result.out.find(" = ["), std::string::npos) << "no buffers printed";
}

TEST_F(FusionRunTest, WithoutMainTheProgramsAreListed) {
  PlanBuilder builder;
  builder.addBuffer("x", DType::F32, {1});
  builder.addProgram("init");
  builder.addProgram("train_step");
  std::string plan = write("nomain.fplan", builder.finish());
  RunResult result = run(plan);
  EXPECT_EQ(result.exitCode, 2);
  EXPECT_EQ(result.err, "fusion-run: error: " + plan +
                            " has no program named 'main'; choose one with --program (programs: "
                            "'init', 'train_step') (see --help)\n");
  EXPECT_EQ(run(plan + " --program train_step").exitCode, 0);
}

TEST_F(FusionRunTest, RuntimeErrorsExitOne) {
  PlanBuilder builder;
  uint32_t x = builder.addBuffer("x", DType::F32, {1});
  uint32_t gelu = builder.addKernel("gelu_0", "gelu");
  builder.addProgram("main").add(launchOp(gelu, {x}, {x}), "m.yaml:2:3");
  std::string plan = write("gelu.fplan", builder.finish());
  RunResult result = run(plan + " --backend cpu --print-buffer x");
  EXPECT_EQ(result.exitCode, 1);
  const std::string prefix = "fusion-run: error: " + plan +
                             ": program 'main' instruction 0 (loc: m.yaml:2:3): unknown kernel "
                             "kind 'gelu' (kernel 0 'gelu_0'); the cpu backend implements: "
                             "activation_grad, adamw_update, add, ";
  EXPECT_EQ(result.err.substr(0, prefix.size()), prefix) << result.err;
  EXPECT_NE(result.err.find("transpose"), std::string::npos);
  EXPECT_EQ(result.out, "") << "nothing is printed after a failed run";
}

TEST_F(FusionRunTest, CudaBackendWithoutDeviceIsOneLineError) {
  std::string plan = writeSmallPlan();
  RunResult result = run(plan + " --backend cuda");
  if (result.exitCode == 0)
    GTEST_SKIP() << "a CUDA device is present";
  // The sample plan has no cubins, so with a device this would fail for another reason.
  EXPECT_EQ(result.exitCode, 1);
  bool noDevice = result.err.rfind("fusion-run: error: no CUDA device: ", 0) == 0;
  bool notBuilt = result.err == "fusion-run: error: this build has no cuda backend (no CUDA "
                                "toolkit was found at build time)\n";
  bool noCubins = result.err.find("has no cubins") != std::string::npos;
  EXPECT_TRUE(noDevice || notBuilt || noCubins) << result.err;
  EXPECT_EQ(result.err.find('\n'), result.err.size() - 1) << "one line: " << result.err;
}

TEST_F(FusionRunTest, SamplePlansRunOnCpu) {
  for (const SamplePlan &sample : samplePlans()) {
    std::string plan = write(sample.name + ".fplan", sample.bytes);
    RunResult result = run(plan + " --print-all-buffers --print-limit 2");
    EXPECT_EQ(result.exitCode, 0) << sample.name << ": " << result.err;
    EXPECT_NE(result.out.find(" f32["), std::string::npos) << sample.name;
  }
}

} // namespace
