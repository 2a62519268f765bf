//===- cuda_backend_test.cc - CUDA backend tests --------------------------===//
//
// Without a device (CI, the build machine) these tests check that asking for the cuda backend
// fails with the one-line "no CUDA device: ..." error and skip the rest with a message. With a
// device they run the sample plans (real cubins, every instruction kind, two streams with
// events) on both backends and require every buffer to agree with the CPU oracle, and check
// that device-side problems (missing or mismatched cubins, bad launch geometry) are reported
// with the kernel, program, instruction and loc.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/executor.h"
#include "runtime/src/numeric.h"
#include "test/unit/runtime/sample_plans.h"
#include "test/unit/runtime/test_plan_builder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

/// Why the cuda backend cannot run here (no device, or not built), or nullopt if it can.
std::optional<std::string> cudaUnavailableReason() {
  static const std::optional<std::string> reason = []() -> std::optional<std::string> {
    PlanBuilder empty;
    auto plan = Plan::loadBytes(empty.finish(), "probe.fplan");
    if (!plan.ok())
      return "probe plan failed to load: " + plan.status().message();
    auto executor = createExecutor(*plan, BackendKind::kCuda);
    if (executor.ok())
      return std::nullopt;
    return executor.status().message();
  }();
  return reason;
}

#define SKIP_WITHOUT_CUDA_DEVICE()                                                              \
  do {                                                                                          \
    if (auto reason = cudaUnavailableReason())                                                  \
      GTEST_SKIP() << "cuda backend unavailable: " << *reason;                                  \
  } while (0)

StatusOr<std::unique_ptr<Executor>> executorFor(const std::vector<uint8_t> &bytes,
                                                BackendKind kind, const std::string &name) {
  auto plan = Plan::loadBytes(bytes, name);
  if (!plan.ok())
    return plan.status();
  return createExecutor(*plan, kind);
}

/// Compares every buffer of two executors of the same plan, elementwise, as floats.
void expectBuffersAgree(Executor &cpu, Executor &cuda, double rtol, double atol) {
  for (uint32_t id = 0; id < cpu.plan().buffers().size(); ++id) {
    const BufferInfo &info = cpu.plan().buffers()[id];
    std::vector<uint8_t> expected, actual;
    ASSERT_TRUE(cpu.readBuffer(id, expected).ok());
    Status status = cuda.readBuffer(id, actual);
    ASSERT_TRUE(status.ok()) << status.toString();
    ASSERT_TRUE(isFloatDType(info.dtype)) << info.name;
    size_t mismatches = 0;
    for (uint64_t i = 0; i < info.numElements; ++i) {
      double e = loadAsFloat(expected.data(), info.dtype, i);
      double a = loadAsFloat(actual.data(), info.dtype, i);
      if (!(std::abs(a - e) <= atol + rtol * std::abs(e)) && mismatches++ < 5)
        ADD_FAILURE() << cpu.plan().displayName() << ": buffer " << info.name << "[" << i
                      << "]: cpu " << e << ", cuda " << a;
    }
    EXPECT_EQ(mismatches, 0u) << info.name;
  }
}

TEST(CudaBackendTest, WithoutDeviceTheErrorIsOneLine) {
  std::optional<std::string> reason = cudaUnavailableReason();
  if (!reason)
    GTEST_SKIP() << "a CUDA device is present; this test covers machines without one";
  EXPECT_EQ(reason->find('\n'), std::string::npos) << *reason;
  if (isBackendBuilt(BackendKind::kCuda))
    EXPECT_EQ(reason->rfind("no CUDA device: ", 0), 0u) << *reason;
  else
    EXPECT_EQ(*reason,
              "this build has no cuda backend (no CUDA toolkit was found at build time)");
}

TEST(CudaBackendTest, SamplePlansAgreeWithCpu) {
  SKIP_WITHOUT_CUDA_DEVICE();
  ASSERT_TRUE(haveTestCubins());
  for (const SamplePlan &sample : samplePlans()) {
    SCOPED_TRACE(sample.name);
    auto cpu = executorFor(sample.bytes, BackendKind::kCpu, sample.name + ".fplan");
    auto cuda = executorFor(sample.bytes, BackendKind::kCuda, sample.name + ".fplan");
    ASSERT_TRUE(cpu.ok()) << cpu.status().toString();
    ASSERT_TRUE(cuda.ok()) << cuda.status().toString();
    ASSERT_TRUE((*cpu)->run("main").ok());
    Status status = (*cuda)->run("main");
    ASSERT_TRUE(status.ok()) << status.toString();
    expectBuffersAgree(**cpu, **cuda, 1e-4, 1e-5);
  }
}

/// Gemms through cuBLASLt, f32 and bf16, with operands only element-aligned inside the arena
/// (so the algorithm choice must honour the real alignment).
TEST(CudaBackendTest, GemmsAgreeWithCpuIncludingMisalignedOperands) {
  SKIP_WITHOUT_CUDA_DEVICE();
  for (DType dtype : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtypeName(dtype));
    const int64_t batch = 3, m = 40, n = 24, k = 56;
    PlanBuilder plan;
    uint32_t a = plan.addBuffer("a", dtype, {batch, m, k});
    uint32_t b = plan.addBuffer("b", dtype, {batch, k, n});
    plan.addBuffer("pad0", dtype, {32});
    uint32_t c = plan.addBuffer("c", dtype, {batch, m, n});
    uint32_t at = plan.addBuffer("at", dtype, {batch, k, m});
    uint32_t c2 = plan.addBuffer("c2", dtype, {batch, m, n});
    plan.addBuffer("pad1", dtype, {32});
    // Shift b and c2 by one element (into the pads): only element alignment remains.
    plan.buffers[b].offset += dtypeSize(dtype);
    plan.buffers[c2].offset += dtypeSize(dtype);
    plan.addProgram("main")
        .add(gemmOp(a, b, c, m, n, k, batch, false, false, 1.0f, 0.5f))
        .add(gemmOp(at, b, c2, m, n, k, batch, true, false, 0.25f, 0.0f));
    std::vector<uint8_t> bytes = plan.finish();
    auto cpu = executorFor(bytes, BackendKind::kCpu, "gemm.fplan");
    auto cuda = executorFor(bytes, BackendKind::kCuda, "gemm.fplan");
    ASSERT_TRUE(cpu.ok()) << cpu.status().toString();
    ASSERT_TRUE(cuda.ok()) << cuda.status().toString();
    for (uint32_t id : {a, b, c, at, c2}) {
      const BufferInfo &info = (*cpu)->plan().buffers()[id];
      std::vector<uint8_t> data(info.byteSize);
      uint64_t state = 0x9e3779b97f4a7c15ull * (id + 1);
      for (uint64_t i = 0; i < info.numElements; ++i) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        storeFromFloat(data.data(), dtype, i,
                       static_cast<float>((state >> 40) & 0xffff) / 32768.0f - 1.0f);
      }
      ASSERT_TRUE((*cpu)->writeBuffer(id, data.data(), data.size()).ok());
      ASSERT_TRUE((*cuda)->writeBuffer(id, data.data(), data.size()).ok());
    }
    ASSERT_TRUE((*cpu)->run("main").ok());
    Status status = (*cuda)->run("main");
    ASSERT_TRUE(status.ok()) << status.toString();
    if (dtype == DType::F32)
      expectBuffersAgree(**cpu, **cuda, 1e-4, 1e-4);
    else // one bf16 rounding step apart at most
      expectBuffersAgree(**cpu, **cuda, 1.6e-2, 1e-2);
  }
}

/// bf16 operands with an f32 result (gemm_c3), as the head's logits and weight gradient use:
/// the CPU and cuBLASLt agree to fp32 accumulation order.
TEST(CudaBackendTest, Bf16GemmWithF32ResultAgreesWithCpu) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int64_t m = 96, n = 200, k = 72;
  PlanBuilder plan;
  uint32_t a = plan.addBuffer("a", DType::BF16, {m, k});
  uint32_t b = plan.addBuffer("b", DType::BF16, {n, k});
  uint32_t c = plan.addBuffer("c", DType::F32, {m, n});
  uint32_t dw = plan.addBuffer("dw", DType::F32, {n, k});
  uint32_t dl = plan.addBuffer("dl", DType::BF16, {m, n});
  plan.addProgram("main")
      .add(gemmOp(a, b, c, m, n, k, 1, false, true, 1.0f, 0.0f))
      .add(gemmOp(dl, a, dw, n, k, m, 1, true, false, 1.0f, 1.0f));
  std::vector<uint8_t> bytes = plan.finish();
  auto cpu = executorFor(bytes, BackendKind::kCpu, "mixed.fplan");
  auto cuda = executorFor(bytes, BackendKind::kCuda, "mixed.fplan");
  ASSERT_TRUE(cpu.ok()) << cpu.status().toString();
  ASSERT_TRUE(cuda.ok()) << cuda.status().toString();
  for (uint32_t id : {a, b, dw, dl}) {
    const BufferInfo &info = (*cpu)->plan().buffers()[id];
    std::vector<uint8_t> data(info.byteSize);
    uint64_t state = 0x9e3779b97f4a7c15ull * (id + 3);
    for (uint64_t i = 0; i < info.numElements; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      storeFromFloat(data.data(), info.dtype, i,
                     static_cast<float>((state >> 40) & 0xffff) / 32768.0f - 1.0f);
    }
    ASSERT_TRUE((*cpu)->writeBuffer(id, data.data(), data.size()).ok());
    ASSERT_TRUE((*cuda)->writeBuffer(id, data.data(), data.size()).ok());
  }
  ASSERT_TRUE((*cpu)->run("main").ok());
  Status status = (*cuda)->run("main");
  ASSERT_TRUE(status.ok()) << status.toString();
  expectBuffersAgree(**cpu, **cuda, 1e-4, 1e-4);
}

TEST(CudaBackendTest, KernelWithoutCubinsIsRefusedAtCreation) {
  SKIP_WITHOUT_CUDA_DEVICE();
  PlanBuilder plan;
  uint32_t x = plan.addBuffer("x", DType::F32, {4});
  uint32_t fill = plan.addKernel("fill_x", "fill", {AttrDesc::number("value", 1)});
  plan.addProgram("main").add(launchOp(fill, {}, {x}));
  auto cuda = executorFor(plan.finish(), BackendKind::kCuda, "plan.fplan");
  ASSERT_FALSE(cuda.ok());
  EXPECT_EQ(cuda.status().message(),
            "plan.fplan: kernel 0 'fill_x' (kind 'fill') has no cubins; the cuda backend needs "
            "device code (only the cpu backend can run a kernel from its kind alone)");
}

TEST(CudaBackendTest, NoCubinForTheDeviceArchitectureIsRefused) {
  SKIP_WITHOUT_CUDA_DEVICE();
  PlanBuilder plan;
  uint32_t x = plan.addBuffer("x", DType::F32, {4});
  uint32_t fill = plan.addKernel("fill_x", "fill", {AttrDesc::number("value", 1)});
  plan.kernels[fill].entry = "fusion_test_fill";
  plan.kernels[fill].cubins.push_back({"sm_70", std::vector<uint8_t>(64, 1)});
  plan.addProgram("main").add(launchOp(fill, {}, {x}));
  auto cuda = executorFor(plan.finish(), BackendKind::kCuda, "plan.fplan");
  ASSERT_FALSE(cuda.ok());
  const std::string &message = cuda.status().message();
  EXPECT_EQ(message.rfind("plan.fplan: kernel 0 'fill_x' (kind 'fill'): no cubin runs on this "
                          "device (",
                          0),
            0u)
      << message;
  EXPECT_NE(message.find("; the plan has cubins for 'sm_70'"), std::string::npos) << message;
}

TEST(CudaBackendTest, LaunchErrorsNameProgramInstructionAndLoc) {
  SKIP_WITHOUT_CUDA_DEVICE();
  PlanBuilder plan;
  uint32_t x = plan.addBuffer("x", DType::F32, {4});
  uint32_t fill = plan.addKernel("fill_x", "fill", {AttrDesc::number("value", 1)});
  attachTestKernel(plan.kernels[fill], "fusion_test_fill");
  InstrDesc launch = launchOp(fill, {}, {x}, {4, 0, 0});
  launch.block = {4096}; // more threads than any block may have
  plan.addProgram("main").add(launch, "bad.yaml:1:1");
  auto cuda = executorFor(plan.finish(), BackendKind::kCuda, "plan.fplan");
  ASSERT_TRUE(cuda.ok()) << cuda.status().toString();
  Status status = (*cuda)->run("main");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message().rfind("plan.fplan: program 'main' instruction 0 (loc: "
                                   "bad.yaml:1:1): launch of kernel 0 'fill_x' (kind 'fill'): ",
                                   0),
            0u)
      << status.message();
  // The runtime reports an oversized block as cudaErrorInvalidValue or
  // cudaErrorInvalidConfiguration depending on the version: require the call and a CUDA error.
  EXPECT_NE(status.message().find("(kind 'fill'): cudaLaunchKernel failed: cudaError"),
            std::string::npos)
      << status.message();
}

TEST(CudaBackendTest, CollectiveWithoutACommunicatorSaysHowToRun) {
  SKIP_WITHOUT_CUDA_DEVICE();
  PlanBuilder plan;
  plan.mesh.push_back({"dp", 8});
  uint32_t x = plan.addBuffer("x", DType::F32, {4});
  plan.addProgram("main").add(collectiveOp(schema::CollectiveKind::AllReduce, "dp", x, x),
                              "ddp.yaml:4:1");
  auto cuda = executorFor(plan.finish(), BackendKind::kCuda, "plan.fplan");
  ASSERT_TRUE(cuda.ok()) << cuda.status().toString();
  EXPECT_EQ((*cuda)->run("main").message(),
            "plan.fplan: program 'main' instruction 0 (loc: ddp.yaml:4:1): all_reduce over mesh "
            "axis 'dp' of 8 ranks, but this run has a single rank: run the plan with fusion-run "
            "--backend cuda --nproc 8 (or under torchrun / srun)");
}

} // namespace
