//===- gradcheck_test.cc - fusion-run --gradcheck on tiny gradient plans --===//
//
// A hand-built plan with the `fusionc --mode=grad` contract (runtime/include/fusion/rt/
// train.h): two weights, a vector `a` [N] and a matrix `layer.w` [B, T+1], a loss
// L = inv_counts[0] · (Σ (a − x)² + Σ (w − x)²) with x = tokens / V, and a `forward_grad`
// whose `grad:layer.w` is c · inv_counts[0] · (w − x), c a parameter of the plan: 2 is the
// true gradient, anything else a planted bug the check must report (FAIL, exit 1). Also: the
// usage errors of a plan that lacks forward_grad and of misplaced flags (exit 2), a weight
// without a gradient output, and the tolerance knob.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/train.h"
#include "test/unit/runtime/test_plan_builder.h"
#include "test/unit/runtime/tool_runner.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

using namespace fusion::rt;
using namespace fusion::rt::testing;
namespace fs = std::filesystem;

namespace {

using schema::BufferRole;
using schema::DType;

struct GradPlanOptions {
  int64_t rows = 2;   // B
  int64_t seqLen = 3; // T
  int64_t vocab = 16; // V
  /// The factor of grad:layer.w (2 = correct).
  double matrixFactor = 2;
  bool withForwardGrad = true;
  bool withMatrixGrad = true;
};

std::vector<uint8_t> tinyGradPlan(const GradPlanOptions &o) {
  PlanBuilder plan;
  plan.config = {AttrDesc::integer("vocab_size", o.vocab), AttrDesc::integer("seed", 7),
                 AttrDesc::integer("pad_token_id", -1), AttrDesc::integer("eos_token_id", -1)};
  uint32_t persistent = plan.addArena("persistent", schema::ArenaClass::Persistent);
  uint32_t transient = plan.addArena("transient");
  const int64_t B = o.rows, T1 = o.seqLen + 1, N = B * T1;

  uint32_t a = plan.addBuffer("a", DType::F32, {N}, persistent, BufferRole::Weight);
  uint32_t w = plan.addBuffer("layer.w", DType::F32, {B, T1}, persistent, BufferRole::Weight);
  uint32_t table = plan.addBuffer("token_values", DType::F32, {o.vocab, 1}, persistent);

  uint32_t tokens = plan.addBuffer("tokens", DType::I32, {B, T1}, transient);
  uint32_t targets = plan.addBuffer("targets", DType::I32, {B, T1}, transient);
  uint32_t invCounts = plan.addBuffer("inv_counts", DType::F32, {1}, transient);
  uint32_t x = plan.addBuffer("x", DType::F32, {B, T1, 1}, transient);
  uint32_t da = plan.addBuffer("da", DType::F32, {N}, transient);
  uint32_t dw = plan.addBuffer("dw", DType::F32, {B, T1}, transient);
  uint32_t da2 = plan.addBuffer("da2", DType::F32, {N}, transient);
  uint32_t dw2 = plan.addBuffer("dw2", DType::F32, {B, T1}, transient);
  uint32_t sa = plan.addBuffer("sa", DType::F32, {}, transient);
  uint32_t sw = plan.addBuffer("sw", DType::F32, {}, transient);
  uint32_t total = plan.addBuffer("total", DType::F32, {}, transient);
  uint32_t inv0 = plan.addBuffer("inv0", DType::F32, {1}, transient);
  uint32_t loss = plan.addBuffer("loss", DType::F32, {}, transient);
  uint32_t invB = plan.addBuffer("inv_b", DType::F32, {N, 1}, transient);
  uint32_t ga = plan.addBuffer("ga", DType::F32, {N}, transient);
  uint32_t gw = plan.addBuffer("gw", DType::F32, {B, T1}, transient);
  uint32_t gradA = plan.addBuffer("grad_a", DType::F32, {N}, transient);
  uint32_t gradW = plan.addBuffer("grad_w", DType::F32, {B, T1}, transient);

  uint32_t fillA = plan.addKernel("init_a", "fill",
                                  {AttrDesc::number("value", 0.5), AttrDesc::number("step", 0.01)});
  uint32_t fillW = plan.addKernel(
      "init_w", "fill", {AttrDesc::number("value", -0.3), AttrDesc::number("step", 0.02)});
  uint32_t fillTable = plan.addKernel(
      "token_values", "fill",
      {AttrDesc::number("value", 0), AttrDesc::number("step", 1.0 / static_cast<double>(o.vocab))});
  uint32_t embed = plan.addKernel("lookup", "embedding");
  uint32_t sub = plan.addKernel("sub", "sub");
  uint32_t mul = plan.addKernel("mul", "mul");
  uint32_t add = plan.addKernel("add", "add");
  uint32_t sum1 = plan.addKernel("sum1", "sum", {AttrDesc::intList("dims", {0})});
  uint32_t sum2 = plan.addKernel("sum2", "sum", {AttrDesc::intList("dims", {0, 1})});
  uint32_t first = plan.addKernel(
      "first", "slice",
      {AttrDesc::integer("dim", 0), AttrDesc::integer("start", 0), AttrDesc::integer("size", 1)});
  uint32_t bcast = plan.addKernel("broadcast", "broadcast", {AttrDesc::intList("dims", {1})});
  uint32_t scaleA = plan.addKernel("scale_a", "scale", {AttrDesc::number("factor", 2)});
  uint32_t scaleW =
      plan.addKernel("scale_w", "scale", {AttrDesc::number("factor", o.matrixFactor)});

  plan.addProgram("init")
      .add(launchOp(fillA, {}, {a}))
      .add(launchOp(fillW, {}, {w}))
      .add(launchOp(fillTable, {}, {table}));

  auto lossInstructions = [&](ProgramDesc &program) {
    program.add(launchOp(embed, {table, tokens}, {x}))
        .add(launchOp(sub, {a, x}, {da}))
        .add(launchOp(sub, {w, x}, {dw}))
        .add(launchOp(mul, {da, da}, {da2}))
        .add(launchOp(mul, {dw, dw}, {dw2}))
        .add(launchOp(sum1, {da2}, {sa}))
        .add(launchOp(sum2, {dw2}, {sw}))
        .add(launchOp(add, {sa, sw}, {total}))
        .add(launchOp(first, {invCounts}, {inv0}))
        .add(launchOp(mul, {total, inv0}, {loss}))
        .input("tokens", tokens)
        .input("targets", targets)
        .input("inv_counts", invCounts)
        .output("loss", loss);
  };
  lossInstructions(plan.addProgram("forward"));
  if (o.withForwardGrad) {
    ProgramDesc &grad = plan.addProgram("forward_grad");
    lossInstructions(grad);
    grad.add(launchOp(bcast, {inv0}, {invB}))
        .add(launchOp(scaleA, {da}, {ga}))
        .add(launchOp(mul, {ga, invB}, {gradA}))
        .add(launchOp(scaleW, {dw}, {gw}))
        .add(launchOp(mul, {gw, invB}, {gradW}))
        .output("grad:a", gradA);
    if (o.withMatrixGrad)
      grad.output("grad:layer.w", gradW);
  }
  return plan.finish();
}

class GradcheckTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("fusion_gradcheck_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fusionRun_ = fs::read_symlink("/proc/self/exe").parent_path() / "fusion-run";
    ASSERT_TRUE(fs::exists(fusionRun_)) << fusionRun_;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string plan(const GradPlanOptions &options) {
    std::string path = (dir_ / ("tiny" + std::to_string(++plans_) + ".fplan")).string();
    std::vector<uint8_t> bytes = tinyGradPlan(options);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char *>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  RunResult run(const std::string &args) {
    return runTool(fusionRun_.string(), args, (dir_ / "stderr.txt").string());
  }

  /// The table rows of parameter `name` (lines starting with it).
  static std::vector<std::string> rowsOf(const std::string &out, const std::string &name) {
    std::vector<std::string> rows;
    size_t start = 0;
    while (start < out.size()) {
      size_t end = out.find('\n', start);
      std::string line = out.substr(start, end == std::string::npos ? end : end - start);
      if (line.rfind(name + " ", 0) == 0)
        rows.push_back(line);
      if (end == std::string::npos)
        break;
      start = end + 1;
    }
    return rows;
  }

  fs::path dir_;
  fs::path fusionRun_;
  int plans_ = 0;
};

TEST_F(GradcheckTest, CorrectGradientsPass) {
  RunResult result = run("'" + plan({}) + "' --gradcheck");
  EXPECT_EQ(result.exitCode, 0) << result.out << result.err;
  EXPECT_NE(result.out.find("gradcheck: 2 of 2 parameters passed, 6 coordinates, 0 failed"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("gradcheck: PASS"), std::string::npos) << result.out;
  std::vector<std::string> rows = rowsOf(result.out, "layer.w");
  ASSERT_EQ(rows.size(), 3u) << result.out;
  for (const std::string &row : rows) {
    EXPECT_NE(row.find("NorMuon matrix"), std::string::npos) << row;
    EXPECT_NE(row.find("PASS"), std::string::npos) << row;
  }
  rows = rowsOf(result.out, "a");
  ASSERT_EQ(rows.size(), 3u) << result.out;
  EXPECT_NE(rows[0].find("AdamW vector"), std::string::npos) << rows[0];
}

TEST_F(GradcheckTest, PlantedWrongGradientFails) {
  GradPlanOptions options;
  options.matrixFactor = 3; // 1.5 x the true gradient
  RunResult result = run("'" + plan(options) + "' --gradcheck");
  EXPECT_EQ(result.exitCode, 1) << result.out << result.err;
  for (const std::string &row : rowsOf(result.out, "layer.w")) {
    EXPECT_NE(row.find("FAIL"), std::string::npos) << row;
    // The loss is smooth: the quotients agree at every step, so the gradient is wrong.
    EXPECT_NE(row.find("smooth: finite differences agree from h to h/4"), std::string::npos) << row;
  }
  for (const std::string &row : rowsOf(result.out, "a"))
    EXPECT_NE(row.find("PASS"), std::string::npos) << row;
  EXPECT_NE(result.out.find("gradcheck: 1 of 2 parameters passed, 6 coordinates, 3 failed"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("gradcheck: FAIL"), std::string::npos) << result.out;
  // No usage or runtime error: the failure is the verdict.
  EXPECT_EQ(result.err, "") << result.err;
}

TEST_F(GradcheckTest, SignAndHalfFactorFail) {
  for (double factor : {-2.0, 1.0}) {
    GradPlanOptions options;
    options.matrixFactor = factor;
    RunResult result = run("'" + plan(options) + "' --gradcheck --gradcheck-samples 1");
    EXPECT_EQ(result.exitCode, 1) << factor << "\n" << result.out << result.err;
    EXPECT_NE(result.out.find("gradcheck: 1 of 2 parameters passed, 2 coordinates, 1 failed"),
              std::string::npos)
        << result.out;
  }
}

TEST_F(GradcheckTest, ToleranceFlag) {
  // A relative error of 1/3 passes with a tolerance of 0.5.
  GradPlanOptions options;
  options.matrixFactor = 3;
  RunResult result =
      run("'" + plan(options) + "' --gradcheck --gradcheck-tolerance 0.5 --gradcheck-step 0.01");
  EXPECT_EQ(result.exitCode, 0) << result.out << result.err;
  EXPECT_NE(result.out.find("pass if |fd - g| <= 0.5*|g|"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("step h = 0.01*max"), std::string::npos) << result.out;
}

TEST_F(GradcheckTest, WeightWithoutGradientOutputFails) {
  GradPlanOptions options;
  options.withMatrixGrad = false;
  RunResult result = run("'" + plan(options) + "' --gradcheck");
  EXPECT_EQ(result.exitCode, 1) << result.out << result.err;
  std::vector<std::string> rows = rowsOf(result.out, "layer.w");
  ASSERT_EQ(rows.size(), 1u) << result.out;
  EXPECT_NE(rows[0].find("FAIL  (no output 'grad:layer.w' in forward_grad)"), std::string::npos)
      << rows[0];
}

TEST_F(GradcheckTest, PlanWithoutForwardGradIsAUsageError) {
  GradPlanOptions options;
  options.withForwardGrad = false;
  std::string path = plan(options);
  RunResult result = run("'" + path + "' --gradcheck");
  EXPECT_EQ(result.exitCode, 2) << result.out << result.err;
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, "fusion-run: error: " + path +
                            " has no program 'forward_grad' (programs: 'init', 'forward'); "
                            "--gradcheck needs a gradient-check plan: compile the model with "
                            "`fusionc CONFIG.yaml --mode=grad -o PLAN.fplan` (programs init, "
                            "forward, forward_grad)\n");
}

TEST_F(GradcheckTest, FlagUsageErrors) {
  std::string path = "'" + plan({}) + "'";
  struct Case {
    std::string args;
    std::string message;
  } cases[] = {
      {"--gradcheck --gradcheck-samples 0", "--gradcheck-samples needs a positive integer"},
      {"--gradcheck --gradcheck-step -1", "--gradcheck-step needs a positive number"},
      {"--gradcheck --gradcheck-tolerance nan", "--gradcheck-tolerance needs a positive number"},
      {"--gradcheck --gradcheck-step 0.1 --gradcheck-step 0.2", "--gradcheck-step given twice"},
      {"--gradcheck-step 0.1 --program init", "--gradcheck-step only applies with --gradcheck"},
      {"--gradcheck --train", "--train cannot be combined with --gradcheck"},
      {"--gradcheck --program forward", "--program cannot be combined with --gradcheck"},
      {"--gradcheck --steps 3", "--steps cannot be combined with --gradcheck"},
  };
  for (const Case &c : cases) {
    RunResult result = run(path + " " + c.args);
    EXPECT_EQ(result.exitCode, 2) << c.args << "\n" << result.out << result.err;
    EXPECT_NE(result.err.find(c.message), std::string::npos) << c.args << "\n" << result.err;
  }
}

TEST_F(GradcheckTest, LibraryRestoresWeightsAndReportsToStreams) {
  std::vector<uint8_t> bytes = tinyGradPlan({});
  StatusOr<std::shared_ptr<const Plan>> loaded = Plan::loadBytes(bytes, "tiny.fplan");
  ASSERT_TRUE(loaded.ok()) << loaded.status().toString();
  EXPECT_TRUE(train::checkGradcheckPrograms(**loaded).ok());
  char *text = nullptr;
  size_t size = 0;
  std::FILE *out = ::open_memstream(&text, &size);
  ASSERT_NE(out, nullptr);
  train::GradcheckOptions options;
  options.samples = 8; // every coordinate of both weights
  StatusOr<int> result = train::runGradcheck(*loaded, options, out, stderr);
  std::fclose(out);
  std::string report(text, size);
  std::free(text);
  ASSERT_TRUE(result.ok()) << result.status().toString();
  EXPECT_EQ(*result, 0) << report;
  EXPECT_NE(report.find("gradcheck: 2 of 2 parameters passed, 16 coordinates, 0 failed"),
            std::string::npos)
      << report;
}

} // namespace
