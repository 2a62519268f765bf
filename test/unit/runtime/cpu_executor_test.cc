//===- cpu_executor_test.cc - CPU reference backend tests -----------------===//
//
// The CPU backend is the oracle every other backend is compared with, so its kernels are
// checked against independent computations: hand-computed values for the simple kinds and
// fp64 loops for rms_norm and gemm (every transpose/batch/broadcast combination, with alpha
// and beta). Error paths are checked for their exact wording: they are what a user sees when
// a plan asks for something this backend cannot do.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/comm.h"
#include "fusion/rt/executor.h"
#include "runtime/src/numeric.h"
#include "test/unit/runtime/test_plan_builder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <thread>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

/// Loads `builder`'s plan and creates a CPU executor for it (fails the test on error).
std::unique_ptr<Executor> cpuExecutor(const PlanBuilder &builder) {
  auto plan = Plan::loadBytes(builder.finish(), "plan.fplan");
  EXPECT_TRUE(plan.ok()) << plan.status().toString();
  if (!plan.ok())
    return nullptr;
  auto executor = createExecutor(*plan, BackendKind::kCpu);
  EXPECT_TRUE(executor.ok()) << executor.status().toString();
  return executor.ok() ? std::move(executor).value() : nullptr;
}

std::vector<float> readF32(Executor &executor, uint32_t id) {
  std::vector<uint8_t> bytes;
  Status status = executor.readBuffer(id, bytes);
  EXPECT_TRUE(status.ok()) << status.toString();
  std::vector<float> values(bytes.size() / 4);
  std::memcpy(values.data(), bytes.data(), values.size() * 4);
  return values;
}

std::vector<float> readAsFloat(Executor &executor, uint32_t id) {
  std::vector<uint8_t> bytes;
  EXPECT_TRUE(executor.readBuffer(id, bytes).ok());
  const BufferInfo &info = executor.plan().buffers()[id];
  std::vector<float> values(info.numElements);
  for (uint64_t i = 0; i < info.numElements; ++i)
    values[i] = loadAsFloat(bytes.data(), info.dtype, i);
  return values;
}

void writeAsFloat(Executor &executor, uint32_t id, const std::vector<float> &values) {
  const BufferInfo &info = executor.plan().buffers()[id];
  ASSERT_EQ(values.size(), info.numElements);
  std::vector<uint8_t> bytes(info.byteSize);
  for (size_t i = 0; i < values.size(); ++i)
    storeFromFloat(bytes.data(), info.dtype, i, values[i]);
  Status status = executor.writeBuffer(id, bytes.data(), bytes.size());
  ASSERT_TRUE(status.ok()) << status.toString();
}

/// Deterministic values in [-1, 1) (a 64-bit LCG), so failures reproduce.
std::vector<float> pseudoRandom(size_t n, uint64_t seed) {
  std::vector<float> values(n);
  uint64_t state = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (float &v : values) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<float>((state >> 40) & 0xffffff) / 8388608.0f - 1.0f;
  }
  return values;
}

TEST(CpuExecutorTest, FillWritesValuePlusStepTimesIndex) {
  PlanBuilder plan;
  uint32_t x = plan.addBuffer("x", DType::F32, {2, 3});
  uint32_t ids = plan.addBuffer("ids", DType::I32, {5});
  uint32_t halves = plan.addBuffer("halves", DType::BF16, {3});
  uint32_t fill = plan.addKernel(
      "fill_x", "fill", {AttrDesc::number("value", -1.5), AttrDesc::number("step", 0.5)});
  uint32_t iota = plan.addKernel("iota", "fill", {AttrDesc::integer("value", 7),
                                                  AttrDesc::integer("step", 1)});
  // 1 + 2^-9 is not representable in bf16: rounds to nearest even (1.0).
  uint32_t constant = plan.addKernel("c", "fill", {AttrDesc::number("value", 1.0 + 1.0 / 512)});
  plan.addProgram("main")
      .add(launchOp(fill, {}, {x}))
      .add(launchOp(iota, {}, {ids}))
      .add(launchOp(constant, {}, {halves}));
  auto executor = cpuExecutor(plan);
  ASSERT_TRUE(executor);
  ASSERT_TRUE(executor->run("main").ok());
  EXPECT_EQ(readF32(*executor, x), (std::vector<float>{-1.5f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f}));
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(executor->readBuffer(ids, bytes).ok());
  std::vector<int32_t> idValues(5);
  std::memcpy(idValues.data(), bytes.data(), 20);
  EXPECT_EQ(idValues, (std::vector<int32_t>{7, 8, 9, 10, 11}));
  EXPECT_EQ(readAsFloat(*executor, halves), (std::vector<float>{1.0f, 1.0f, 1.0f}));
}

TEST(CpuExecutorTest, AddMulAndInPlaceUpdates) {
  PlanBuilder plan;
  uint32_t a = plan.addBuffer("a", DType::F32, {4});
  uint32_t b = plan.addBuffer("b", DType::F32, {2, 2});
  uint32_t sum = plan.addBuffer("sum", DType::F32, {4});
  uint32_t prod = plan.addBuffer("prod", DType::BF16, {4});
  uint32_t fillA = plan.addKernel(
      "fa", "fill", {AttrDesc::number("value", 1), AttrDesc::number("step", 1)});
  uint32_t fillB = plan.addKernel(
      "fb", "fill", {AttrDesc::number("value", 0.25), AttrDesc::number("step", -0.5)});
  uint32_t add = plan.addKernel("add", "add");
  uint32_t mul = plan.addKernel("mul", "mul");
  plan.addProgram("main")
      .add(launchOp(fillA, {}, {a}))
      .add(launchOp(fillB, {}, {b}))
      .add(launchOp(add, {a, b}, {sum}))
      .add(launchOp(mul, {a, b}, {prod}))
      .add(launchOp(add, {a, a}, {a})); // a += a, output aliasing both inputs
  auto executor = cpuExecutor(plan);
  ASSERT_TRUE(executor);
  ASSERT_TRUE(executor->run("main").ok());
  // a = 1 2 3 4, b = 0.25 -0.25 -0.75 -1.25
  EXPECT_EQ(readF32(*executor, sum), (std::vector<float>{1.25f, 1.75f, 2.25f, 2.75f}));
  EXPECT_EQ(readAsFloat(*executor, prod), (std::vector<float>{0.25f, -0.5f, -2.25f, -5.0f}));
  EXPECT_EQ(readF32(*executor, a), (std::vector<float>{2, 4, 6, 8}));
}

TEST(CpuExecutorTest, SiluMatchesFp64Reference) {
  PlanBuilder plan;
  uint32_t x = plan.addBuffer("x", DType::F32, {64});
  uint32_t y = plan.addBuffer("y", DType::F32, {64});
  uint32_t yb = plan.addBuffer("yb", DType::BF16, {64});
  uint32_t silu = plan.addKernel("silu", "silu");
  plan.addProgram("main").add(launchOp(silu, {x}, {y})).add(launchOp(silu, {x}, {yb}));
  auto executor = cpuExecutor(plan);
  ASSERT_TRUE(executor);
  std::vector<float> input = pseudoRandom(64, 1);
  for (float &v : input)
    v *= 8; // cover the saturating tails of the sigmoid
  input[0] = 0;
  writeAsFloat(*executor, x, input);
  ASSERT_TRUE(executor->run("main").ok());
  std::vector<float> out = readF32(*executor, y), outBf16 = readAsFloat(*executor, yb);
  for (size_t i = 0; i < input.size(); ++i) {
    double v = input[i];
    float expected = static_cast<float>(v / (1 + std::exp(-v)));
    EXPECT_FLOAT_EQ(out[i], expected) << "x = " << v;
    EXPECT_EQ(outBf16[i], bf16ToFloat(floatToBf16(expected))) << "x = " << v;
  }
  EXPECT_EQ(out[0], 0.0f);
}

TEST(CpuExecutorTest, RmsNormMatchesFp64Reference) {
  const int64_t rows = 5, d = 96;
  const double eps = 1e-6;
  PlanBuilder plan;
  uint32_t x = plan.addBuffer("x", DType::F32, {rows, d});
  uint32_t w = plan.addBuffer("w", DType::F32, {d});
  uint32_t y = plan.addBuffer("y", DType::F32, {rows, d});
  uint32_t norm = plan.addKernel("norm", "rms_norm", {AttrDesc::number("eps", eps)});
  plan.addProgram("main").add(launchOp(norm, {x, w}, {y}));
  auto executor = cpuExecutor(plan);
  ASSERT_TRUE(executor);
  std::vector<float> xs = pseudoRandom(rows * d, 2), ws = pseudoRandom(d, 3);
  writeAsFloat(*executor, x, xs);
  writeAsFloat(*executor, w, ws);
  ASSERT_TRUE(executor->run("main").ok());
  std::vector<float> out = readF32(*executor, y);
  for (int64_t r = 0; r < rows; ++r) {
    double sumSquares = 0;
    for (int64_t j = 0; j < d; ++j)
      sumSquares += double(xs[r * d + j]) * xs[r * d + j];
    double inverseRms = 1 / std::sqrt(sumSquares / d + eps);
    for (int64_t j = 0; j < d; ++j) {
      double expected = xs[r * d + j] * inverseRms * ws[j];
      EXPECT_NEAR(out[r * d + j], expected, 1e-6 * std::abs(expected) + 1e-7)
          << "row " << r << " col " << j;
    }
  }
}

TEST(CpuExecutorTest, RmsNormRejectsMismatchedWeight) {
  PlanBuilder plan;
  uint32_t x = plan.addBuffer("x", DType::F32, {2, 8});
  uint32_t w = plan.addBuffer("w", DType::F32, {4});
  uint32_t y = plan.addBuffer("y", DType::F32, {2, 8});
  uint32_t norm = plan.addKernel("norm", "rms_norm", {AttrDesc::number("eps", 1e-5)});
  plan.addProgram("main").add(launchOp(norm, {x, w}, {y}), "norm.yaml:3:4");
  auto executor = cpuExecutor(plan);
  ASSERT_TRUE(executor);
  Status status = executor->run("main");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(),
            "plan.fplan: program 'main' instruction 0 (loc: norm.yaml:3:4): kernel 0 'norm' "
            "(kind 'rms_norm'): input 1 (w) must have shape [8] to match x [2,8], got [4]");
}

//===----------------------------------------------------------------------===//
// Gemm against an fp64 loop, over every transpose/batch/broadcast combination.
//===----------------------------------------------------------------------===//

struct GemmCase {
  bool transA, transB;
  int64_t batch;
  bool sharedB;
  float alpha, beta;
  DType dtype;
  /// c is f32 whatever a's and b's dtype (gemm_c3: a bf16/f16 product kept in fp32).
  bool f32Result = false;
};

class CpuGemmTest : public ::testing::TestWithParam<GemmCase> {};

TEST_P(CpuGemmTest, MatchesFp64Loop) {
  const GemmCase &p = GetParam();
  const int64_t m = 7, n = 5, k = 6, batch = p.batch;
  PlanBuilder plan;
  std::vector<int64_t> aShape = p.transA ? std::vector<int64_t>{batch, k, m}
                                         : std::vector<int64_t>{batch, m, k};
  std::vector<int64_t> bShape = p.transB ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n};
  if (!p.sharedB)
    bShape.insert(bShape.begin(), batch);
  uint32_t a = plan.addBuffer("a", p.dtype, aShape);
  uint32_t b = plan.addBuffer("b", p.dtype, bShape);
  uint32_t c = plan.addBuffer("c", p.f32Result ? DType::F32 : p.dtype, {batch, m, n});
  plan.addProgram("main").add(gemmOp(a, b, c, m, n, k, batch, p.transA, p.transB, p.alpha,
                                     p.beta));
  auto executor = cpuExecutor(plan);
  ASSERT_TRUE(executor);
  std::vector<float> as = pseudoRandom(batch * m * k, 4);
  std::vector<float> bs = pseudoRandom((p.sharedB ? 1 : batch) * k * n, 5);
  std::vector<float> cs = pseudoRandom(batch * m * n, 6);
  writeAsFloat(*executor, a, as);
  writeAsFloat(*executor, b, bs);
  writeAsFloat(*executor, c, cs);
  // The reference works from the stored (possibly rounded) values.
  as = readAsFloat(*executor, a);
  bs = readAsFloat(*executor, b);
  cs = readAsFloat(*executor, c);
  ASSERT_TRUE(executor->run("main").ok());
  std::vector<float> out = readAsFloat(*executor, c);

  double tolerance = p.dtype == DType::F32 || p.f32Result ? 1e-5 : 1e-2;
  for (int64_t bi = 0; bi < batch; ++bi) {
    const float *A = as.data() + bi * m * k;
    const float *B = bs.data() + (p.sharedB ? 0 : bi * k * n);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t l = 0; l < k; ++l) {
          double av = p.transA ? A[l * m + i] : A[i * k + l];
          double bv = p.transB ? B[j * k + l] : B[l * n + j];
          acc += av * bv;
        }
        double expected = p.alpha * acc + p.beta * cs[(bi * m + i) * n + j];
        EXPECT_NEAR(out[(bi * m + i) * n + j], expected, tolerance * (1 + std::abs(expected)))
            << "batch " << bi << " row " << i << " col " << j;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Combinations, CpuGemmTest,
    ::testing::Values(GemmCase{false, false, 1, true, 1, 0, DType::F32},
                      GemmCase{true, false, 1, true, 1, 0, DType::F32},
                      GemmCase{false, true, 1, true, 1, 0, DType::F32},
                      GemmCase{true, true, 1, true, 0.5f, 2, DType::F32},
                      GemmCase{false, false, 3, false, 1, 0, DType::F32},
                      GemmCase{false, true, 3, true, 1, 1, DType::F32},
                      GemmCase{true, false, 3, true, -1, 0.5f, DType::F32},
                      GemmCase{true, true, 2, false, 2, 0, DType::F32},
                      GemmCase{false, false, 2, false, 1, 0, DType::BF16},
                      GemmCase{true, true, 1, true, 1, 1, DType::F16},
                      // The head's GEMMs: logits = h·wᵀ and dw (+)= dℓᵀ·h, bf16 -> f32.
                      GemmCase{false, true, 1, true, 1, 0, DType::BF16, true},
                      GemmCase{true, false, 1, true, 1, 1, DType::BF16, true}),
    [](const ::testing::TestParamInfo<GemmCase> &info) {
      const GemmCase &p = info.param;
      return std::string(p.transA ? "AT" : "A") + (p.transB ? "BT" : "B") + "_batch" +
             std::to_string(p.batch) + (p.sharedB ? "_sharedB" : "_batchedB") +
             (p.beta != 0 ? "_beta" : "") + "_" + dtypeName(p.dtype) +
             (p.f32Result ? "_to_f32" : "");
    });

//===----------------------------------------------------------------------===//
// Errors, collectives, synchronisation, programs, buffer access
//===----------------------------------------------------------------------===//

TEST(CpuExecutorTest, UnknownKindNamesKindProgramInstructionAndLoc) {
  PlanBuilder plan;
  uint32_t x = plan.addBuffer("x", DType::F32, {4});
  uint32_t fill = plan.addKernel("fill_x", "fill", {AttrDesc::number("value", 1)});
  uint32_t gelu = plan.addKernel("gelu_0", "gelu");
  plan.addProgram("forward")
      .add(launchOp(fill, {}, {x}), "model.yaml:1:1")
      .add(launchOp(gelu, {x}, {x}), "model.yaml:7:3");
  auto executor = cpuExecutor(plan);
  ASSERT_TRUE(executor);
  Status status = executor->run("forward");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kUnimplemented);
  // The message names the instruction, then lists every implemented kind (sorted).
  const std::string prefix =
      "plan.fplan: program 'forward' instruction 1 (loc: model.yaml:7:3): unknown kernel "
      "kind 'gelu' (kernel 1 'gelu_0'); the cpu backend implements: activation_grad, "
      "adamw_update, add, attention, attention_grad, ";
  EXPECT_EQ(status.message().substr(0, prefix.size()), prefix) << status.message();
  for (const char *kind : {"gated_delta_rule_grad", "normuon_update", "softcap_ce", "transpose"})
    EXPECT_NE(status.message().find(kind), std::string::npos) << kind;
}

TEST(CpuExecutorTest, KernelArgumentErrorsAreDescriptive) {
  PlanBuilder plan;
  uint32_t x = plan.addBuffer("x", DType::F32, {4});
  uint32_t y = plan.addBuffer("y", DType::F32, {5});
  uint32_t ids = plan.addBuffer("ids", DType::I32, {4});
  uint32_t fillNoValue = plan.addKernel("f", "fill");
  uint32_t add = plan.addKernel("add", "add");
  uint32_t silu = plan.addKernel("silu", "silu");
  plan.addProgram("missing_attr").add(launchOp(fillNoValue, {}, {x}));
  plan.addProgram("arity").add(launchOp(add, {x}, {x}));
  plan.addProgram("numel").add(launchOp(add, {x, y}, {x}));
  plan.addProgram("dtype").add(launchOp(silu, {ids}, {x}));
  auto executor = cpuExecutor(plan);
  ASSERT_TRUE(executor);
  auto messageOf = [&](const char *program) { return executor->run(program).message(); };
  EXPECT_EQ(messageOf("missing_attr"),
            "plan.fplan: program 'missing_attr' instruction 0: kernel 0 'f' (kind 'fill'): "
            "missing required attribute 'value'");
  EXPECT_EQ(messageOf("arity"), "plan.fplan: program 'arity' instruction 0: kernel 1 'add' "
                                "(kind 'add'): expects 2 input(s) and 1 output(s), got 1 and 1");
  EXPECT_EQ(messageOf("numel"),
            "plan.fplan: program 'numel' instruction 0: kernel 1 'add' (kind 'add'): input 1 "
            "(buffer 1 'y', shape [5]) has 5 elements, expected 4");
  EXPECT_EQ(messageOf("dtype"),
            "plan.fplan: program 'dtype' instruction 0: kernel 2 'silu' (kind 'silu'): input 0 "
            "(buffer 2 'ids') has dtype i32; this kernel supports f32, bf16 and f16");
}

TEST(CpuExecutorTest, CollectivesAreIdentityOnOneRankAndRefusedOnMore) {
  PlanBuilder plan;
  plan.mesh = {{"dp", 1}, {"ep", 4}};
  uint32_t x = plan.addBuffer("x", DType::F32, {3});
  uint32_t y = plan.addBuffer("y", DType::F32, {3});
  uint32_t gathered = plan.addBuffer("gathered", DType::F32, {12});
  uint32_t fill = plan.addKernel(
      "fill", "fill", {AttrDesc::number("value", 4), AttrDesc::number("step", -2)});
  plan.addProgram("single")
      .add(launchOp(fill, {}, {x}))
      .add(collectiveOp(schema::CollectiveKind::AllReduce, "dp", x, y, schema::ReduceOp::Avg));
  plan.addProgram("multi").add(
      collectiveOp(schema::CollectiveKind::AllGather, "ep", x, gathered), "moe.yaml:2:2");
  auto executor = cpuExecutor(plan);
  ASSERT_TRUE(executor);
  ASSERT_TRUE(executor->run("single").ok());
  EXPECT_EQ(readF32(*executor, y), (std::vector<float>{4, 2, 0}));
  Status status = executor->run("multi");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(),
            "plan.fplan: program 'multi' instruction 0 (loc: moe.yaml:2:2): all_gather over "
            "mesh axis 'ep' of 4 ranks, but this run has a single rank: train with fusion-run "
            "--train --nproc 4 (ranks as threads), or run programs with --backend cuda "
            "--nproc 4");
}

// Two executors of one dp=2 plan, each on its own thread with its rank's communicator:
// every collective kind moves the data the plan's contract says.
TEST(CpuExecutorTest, CollectivesAcrossTwoRanksThroughAThreadGroup) {
  PlanBuilder builder;
  builder.mesh = {{"dp", 2}};
  uint32_t x = builder.addBuffer("x", DType::F32, {4});
  uint32_t sum = builder.addBuffer("sum", DType::F32, {4});
  uint32_t gathered = builder.addBuffer("gathered", DType::F32, {8});
  uint32_t scattered = builder.addBuffer("scattered", DType::F32, {2});
  uint32_t exchanged = builder.addBuffer("exchanged", DType::F32, {4});
  uint32_t largest = builder.addBuffer("largest", DType::F32, {4});
  builder.addProgram("main")
      .add(collectiveOp(schema::CollectiveKind::AllReduce, "dp", x, sum))
      .add(collectiveOp(schema::CollectiveKind::AllGather, "dp", x, gathered))
      .add(collectiveOp(schema::CollectiveKind::ReduceScatter, "dp", x, scattered))
      .add(collectiveOp(schema::CollectiveKind::AllToAll, "dp", x, exchanged))
      .add(collectiveOp(schema::CollectiveKind::AllReduce, "dp", x, largest,
                        schema::ReduceOp::Max));
  auto plan = Plan::loadBytes(builder.finish(), "dp2.fplan");
  ASSERT_TRUE(plan.ok()) << plan.status().toString();
  auto group = ThreadGroup::create(2);
  ASSERT_TRUE(group.ok());
  std::vector<std::vector<float>> results[2];
  Status statuses[2];
  auto rank = [&](int r) {
    MeshContext mesh;
    mesh.axes.emplace_back("dp", &(*group)->comm(r));
    auto executor = createExecutor(*plan, BackendKind::kCpu, &mesh);
    if (!executor.ok()) {
      statuses[r] = executor.status();
      return;
    }
    // Rank 0 holds 1 2 3 4, rank 1 holds 10 20 30 40.
    float scale = r == 0 ? 1.0f : 10.0f;
    std::vector<float> values = {scale, 2 * scale, 3 * scale, 4 * scale};
    statuses[r] = (*executor)->writeBuffer(x, values.data(), 16);
    if (statuses[r].ok())
      statuses[r] = (*executor)->run("main");
    if (statuses[r].ok())
      for (uint32_t id : {sum, gathered, scattered, exchanged, largest})
        results[r].push_back(readF32(**executor, id));
  };
  std::thread peer(rank, 1);
  rank(0);
  peer.join();
  for (int r = 0; r < 2; ++r) {
    ASSERT_TRUE(statuses[r].ok()) << "rank " << r << ": " << statuses[r].toString();
    EXPECT_EQ(results[r][0], (std::vector<float>{11, 22, 33, 44}));
    EXPECT_EQ(results[r][1], (std::vector<float>{1, 2, 3, 4, 10, 20, 30, 40}));
    EXPECT_EQ(results[r][4], (std::vector<float>{10, 20, 30, 40}));
  }
  EXPECT_EQ(results[0][2], (std::vector<float>{11, 22}));
  EXPECT_EQ(results[1][2], (std::vector<float>{33, 44}));
  // all_to_all: slice i of send goes to rank i.
  EXPECT_EQ(results[0][3], (std::vector<float>{1, 2, 10, 20}));
  EXPECT_EQ(results[1][3], (std::vector<float>{3, 4, 30, 40}));
}

// A rank whose communicator belongs to a group of another size is refused.
TEST(CpuExecutorTest, CollectiveRefusesACommunicatorOfAnotherSize) {
  PlanBuilder builder;
  builder.mesh = {{"dp", 2}};
  uint32_t x = builder.addBuffer("x", DType::F32, {4});
  uint32_t y = builder.addBuffer("y", DType::F32, {4});
  builder.addProgram("main").add(collectiveOp(schema::CollectiveKind::AllReduce, "dp", x, y));
  auto plan = Plan::loadBytes(builder.finish(), "dp2.fplan");
  ASSERT_TRUE(plan.ok());
  auto group = ThreadGroup::create(1);
  ASSERT_TRUE(group.ok());
  MeshContext mesh;
  mesh.axes.emplace_back("dp", &(*group)->comm(0));
  auto executor = createExecutor(*plan, BackendKind::kCpu, &mesh);
  ASSERT_TRUE(executor.ok());
  Status status = (*executor)->run("main");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("all_reduce over mesh axis 'dp': the plan has 2 ranks on it, "
                                  "the communicator 1"),
            std::string::npos)
      << status.message();
}

TEST(CpuExecutorTest, MultiStreamProgramWithEventsRunsInProgramOrder) {
  PlanBuilder plan;
  uint32_t x = plan.addBuffer("x", DType::F32, {2});
  uint32_t y = plan.addBuffer("y", DType::F32, {2});
  uint32_t fill = plan.addKernel("fill", "fill", {AttrDesc::number("value", 3)});
  uint32_t mul = plan.addKernel("mul", "mul");
  InstrDesc square = launchOp(mul, {x, x}, {y});
  square.stream = 1;
  plan.addProgram("main", /*numStreams=*/2, /*numEvents=*/1)
      .add(launchOp(fill, {}, {x}))
      .add(recordOp(0, 0))
      .add(waitOp(0, 1))
      .add(square);
  auto executor = cpuExecutor(plan);
  ASSERT_TRUE(executor);
  ASSERT_TRUE(executor->run("main").ok());
  EXPECT_EQ(readF32(*executor, y), (std::vector<float>{9, 9}));
}

TEST(CpuExecutorTest, ArenasPersistAcrossProgramRuns) {
  PlanBuilder plan;
  uint32_t weights = plan.addArena("params", schema::ArenaClass::Persistent);
  uint32_t w = plan.addBuffer("w", DType::F32, {3}, weights);
  uint32_t scratch = plan.addArena("transient");
  uint32_t one = plan.addBuffer("one", DType::F32, {3}, scratch);
  uint32_t init = plan.addKernel(
      "init", "fill", {AttrDesc::number("value", 10), AttrDesc::number("step", 1)});
  uint32_t fillOne = plan.addKernel("ones", "fill", {AttrDesc::number("value", 1)});
  uint32_t add = plan.addKernel("add", "add");
  plan.addProgram("init").add(launchOp(init, {}, {w}));
  plan.addProgram("train_step").add(launchOp(fillOne, {}, {one})).add(launchOp(add, {w, one}, {w}));
  auto executor = cpuExecutor(plan);
  ASSERT_TRUE(executor);
  EXPECT_EQ(readF32(*executor, w), (std::vector<float>{0, 0, 0})) << "arenas start zeroed";
  ASSERT_TRUE(executor->run("init").ok());
  ASSERT_TRUE(executor->run("train_step").ok());
  ASSERT_TRUE(executor->run("train_step").ok());
  EXPECT_EQ(readF32(*executor, w), (std::vector<float>{12, 13, 14}));
}

TEST(CpuExecutorTest, RejectsUnknownProgramsAndBadBufferAccess) {
  PlanBuilder plan;
  plan.addBuffer("x", DType::F32, {4});
  plan.addProgram("main");
  auto executor = cpuExecutor(plan);
  ASSERT_TRUE(executor);
  Status run = executor->run("train_step");
  EXPECT_EQ(run.code(), StatusCode::kNotFound);
  EXPECT_EQ(run.message(), "plan.fplan: no program named 'train_step'");
  EXPECT_TRUE(executor->run("main").ok()) << "an empty program is valid";

  float values[3] = {1, 2, 3};
  Status write = executor->writeBuffer(0, values, sizeof(values));
  EXPECT_EQ(write.message(), "buffer 0 'x' holds 16 bytes, not 12");
  std::vector<uint8_t> out;
  Status read = executor->readBuffer(5, out);
  EXPECT_EQ(read.message(), "buffer 5 out of range (the plan has 1 buffers)");
}

TEST(CpuExecutorTest, CudaBackendIsReportedWhenUnavailable) {
  EXPECT_TRUE(isBackendBuilt(BackendKind::kCpu));
  EXPECT_EQ(parseBackendKind("cuda"), BackendKind::kCuda);
  EXPECT_EQ(parseBackendKind("cpu"), BackendKind::kCpu);
  EXPECT_FALSE(parseBackendKind("tpu").has_value());
  EXPECT_STREQ(backendName(BackendKind::kCuda), "cuda");
}

TEST(FormatBufferTest, FormatsValuesWithLimitAndDtypes) {
  BufferInfo info;
  info.name = "x";
  info.dtype = DType::F32;
  info.shape = {2, 3};
  info.numElements = 6;
  info.byteSize = 24;
  std::vector<float> values = {0, 0.5f, -1, 1e-7f, 123456789.0f, 2.5f};
  std::vector<uint8_t> bytes(24);
  std::memcpy(bytes.data(), values.data(), 24);
  EXPECT_EQ(formatBuffer(info, bytes, 16), "x f32[2,3] = [0, 0.5, -1, 1e-07, 1.23457e+08, 2.5]");
  EXPECT_EQ(formatBuffer(info, bytes, 0), "x f32[2,3] = [0, 0.5, -1, 1e-07, 1.23457e+08, 2.5]");
  EXPECT_EQ(formatBuffer(info, bytes, 2), "x f32[2,3] = [0, 0.5, ...]");

  BufferInfo ints = info;
  ints.name = "step counter";
  ints.dtype = DType::I64;
  ints.shape = {};
  ints.numElements = 1;
  ints.byteSize = 8;
  int64_t value = -9000000000LL;
  std::vector<uint8_t> intBytes(8);
  std::memcpy(intBytes.data(), &value, 8);
  EXPECT_EQ(formatBuffer(ints, intBytes, 16), "'step counter' i64[] = [-9000000000]");
}

} // namespace
