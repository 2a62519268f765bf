//===- sample_plans.cc - Plans with device code for backend checks --------===//
//
// Builds the sample plans of sample_plans.h. Every kernel carries both its portable
// description (kind + attributes, run by the CPU backend) and the matching test kernel's
// cubins and int_args (run by the CUDA backend); the two must compute the same thing, which
// is exactly what comparing the backends checks. Float parameters reach the device kernels as
// int_args holding the float's bit pattern (see test_kernels.cu).
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/sample_plans.h"
#include "test/unit/runtime/test_plan_builder.h"

#if FUSION_TEST_HAVE_CUBINS
#include "test/unit/runtime/test_cubins.h"
#endif

#include <algorithm>
#include <cstring>

namespace fusion::rt::testing {

bool haveTestCubins() { return FUSION_TEST_HAVE_CUBINS != 0; }

void attachTestKernel(KernelDesc &kernel, std::string entry) {
  kernel.entry = std::move(entry);
#if FUSION_TEST_HAVE_CUBINS
  for (const EmbeddedCubin &cubin : kTestCubins)
    kernel.cubins.push_back(
        {cubin.arch, std::vector<uint8_t>(cubin.data, cubin.data + cubin.size)});
#endif
}

namespace {

using schema::DType;

int64_t floatBits(float value) {
  int32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

/// Adds a kernel with its test-kernel entry point and (when built) cubins.
uint32_t addDeviceKernel(PlanBuilder &plan, std::string name, std::string kind,
                         std::vector<AttrDesc> attrs, std::string entry) {
  uint32_t index = plan.addKernel(std::move(name), std::move(kind), std::move(attrs));
  attachTestKernel(plan.kernels[index], std::move(entry));
  return index;
}

/// A grid-stride launch over n elements: 256 threads per block, at most 1024 blocks.
InstrDesc elementwiseLaunch(InstrDesc instr, int64_t n) {
  instr.block = {256};
  instr.grid = {static_cast<uint32_t>(std::clamp<int64_t>((n + 255) / 256, 1, 1024))};
  return instr;
}

/// Launches fill kernel `kernel` (value, step) into buffer `out` of n elements.
InstrDesc fillLaunch(uint32_t kernel, uint32_t out, int64_t n, float value, float step) {
  return elementwiseLaunch(launchOp(kernel, {}, {out}, {n, floatBits(value), floatBits(step)}),
                           n);
}

uint32_t addFillKernel(PlanBuilder &plan, const std::string &name, float value, float step) {
  return addDeviceKernel(plan, name, "fill",
                         {AttrDesc::number("value", value), AttrDesc::number("step", step)},
                         "fusion_test_fill");
}

SamplePlan elementwisePlan() {
  PlanBuilder plan;
  const int64_t n = 4 * 300;
  uint32_t a = plan.addBuffer("a", DType::F32, {4, 300});
  uint32_t b = plan.addBuffer("b", DType::F32, {4, 300});
  uint32_t sum = plan.addBuffer("sum", DType::F32, {4, 300});
  uint32_t prod = plan.addBuffer("prod", DType::F32, {4, 300});
  uint32_t act = plan.addBuffer("act", DType::F32, {4, 300});
  uint32_t fillA = addFillKernel(plan, "fill_a", -3.0f, 0.005f);
  uint32_t fillB = addFillKernel(plan, "fill_b", 1.5f, -0.002f);
  uint32_t add = addDeviceKernel(plan, "add_0", "add", {}, "fusion_test_add");
  uint32_t mul = addDeviceKernel(plan, "mul_0", "mul", {}, "fusion_test_mul");
  uint32_t silu = addDeviceKernel(plan, "silu_0", "silu", {}, "fusion_test_silu");

  // Stream 0 fills a while stream 1 fills b; events order the consumers after producers.
  ProgramDesc &main = plan.addProgram("main", /*numStreams=*/2, /*numEvents=*/2);
  InstrDesc fillBOnStream1 = fillLaunch(fillB, b, n, 1.5f, -0.002f);
  fillBOnStream1.stream = 1;
  InstrDesc addOnStream1 = elementwiseLaunch(launchOp(add, {a, b}, {sum}, {n}), n);
  addOnStream1.stream = 1;
  main.add(fillLaunch(fillA, a, n, -3.0f, 0.005f), "elementwise.yaml:1:1")
      .add(recordOp(0, 0), "elementwise.yaml:2:1")
      .add(fillBOnStream1, "elementwise.yaml:3:1")
      .add(waitOp(0, 1), "elementwise.yaml:4:1")
      .add(addOnStream1, "elementwise.yaml:5:1")
      .add(recordOp(1, 1), "elementwise.yaml:6:1")
      .add(waitOp(1, 0), "elementwise.yaml:7:1")
      .add(elementwiseLaunch(launchOp(mul, {a, b}, {prod}, {n}), n), "elementwise.yaml:8:1")
      .add(elementwiseLaunch(launchOp(silu, {sum}, {act}, {n}), n), "elementwise.yaml:9:1");
  return {"elementwise", plan.finish()};
}

SamplePlan rmsNormPlan() {
  PlanBuilder plan;
  const int64_t rows = 3, d = 1000;
  const float eps = 1e-5f;
  uint32_t x = plan.addBuffer("x", DType::F32, {rows, d});
  uint32_t w = plan.addBuffer("w", DType::F32, {d});
  uint32_t y = plan.addBuffer("y", DType::F32, {rows, d});
  uint32_t fillX = addFillKernel(plan, "fill_x", -1.0f, 0.0021f);
  uint32_t fillW = addFillKernel(plan, "fill_w", 0.5f, 0.001f);
  uint32_t norm = addDeviceKernel(plan, "rms_norm_0", "rms_norm",
                                  {AttrDesc::number("eps", eps)}, "fusion_test_rms_norm");
  InstrDesc normLaunch = launchOp(norm, {x, w}, {y}, {rows, d, floatBits(eps)});
  normLaunch.grid = {static_cast<uint32_t>(rows)};
  normLaunch.block = {256};
  plan.addProgram("main")
      .add(fillLaunch(fillX, x, rows * d, -1.0f, 0.0021f))
      .add(fillLaunch(fillW, w, d, 0.5f, 0.001f))
      .add(normLaunch, "rms_norm.yaml:3:5");
  return {"rms_norm", plan.finish()};
}

SamplePlan gemmPlan() {
  PlanBuilder plan;
  const int64_t batch = 2, m = 33, n = 29, k = 17;
  // a [batch, m, k] with a shared b [k, n]: folded into one [batch*m, k] gemm.
  uint32_t a = plan.addBuffer("a", DType::F32, {batch, m, k});
  uint32_t b = plan.addBuffer("b", DType::F32, {k, n});
  uint32_t c = plan.addBuffer("c", DType::F32, {batch, m, n});
  // Transposed a [batch, k, m] and per-batch transposed b [batch, n, k], alpha/beta onto a
  // pre-filled c2.
  uint32_t at = plan.addBuffer("at", DType::F32, {batch, k, m});
  uint32_t bt = plan.addBuffer("bt", DType::F32, {batch, n, k});
  uint32_t c2 = plan.addBuffer("c2", DType::F32, {batch, m, n});
  // Transposed a with a shared b: one gemm per batch.
  uint32_t c3 = plan.addBuffer("c3", DType::F32, {batch, m, n});
  uint32_t fillA = addFillKernel(plan, "fill_a", -1.0f, 0.002f);
  uint32_t fillB = addFillKernel(plan, "fill_b", 0.75f, -0.003f);
  uint32_t fillAt = addFillKernel(plan, "fill_at", 0.25f, 0.0015f);
  uint32_t fillBt = addFillKernel(plan, "fill_bt", -0.5f, 0.001f);
  uint32_t fillC2 = addFillKernel(plan, "fill_c2", 0.1f, 0.0005f);
  plan.addProgram("main")
      .add(fillLaunch(fillA, a, batch * m * k, -1.0f, 0.002f))
      .add(fillLaunch(fillB, b, k * n, 0.75f, -0.003f))
      .add(fillLaunch(fillAt, at, batch * k * m, 0.25f, 0.0015f))
      .add(fillLaunch(fillBt, bt, batch * n * k, -0.5f, 0.001f))
      .add(fillLaunch(fillC2, c2, batch * m * n, 0.1f, 0.0005f))
      .add(gemmOp(a, b, c, m, n, k, batch), "gemm.yaml:1:1")
      .add(gemmOp(at, bt, c2, m, n, k, batch, /*transA=*/true, /*transB=*/true, 0.5f, 2.0f),
           "gemm.yaml:2:1")
      .add(gemmOp(at, b, c3, m, n, k, batch, /*transA=*/true), "gemm.yaml:3:1");
  return {"gemm", plan.finish()};
}

SamplePlan collectivePlan() {
  PlanBuilder plan;
  plan.mesh.push_back({"dp", 1});
  const int64_t n = 100;
  uint32_t x = plan.addBuffer("x", DType::F32, {n});
  uint32_t y = plan.addBuffer("y", DType::F32, {n});
  uint32_t fillX = addFillKernel(plan, "fill_x", 2.0f, 0.5f);
  plan.addProgram("main")
      .add(fillLaunch(fillX, x, n, 2.0f, 0.5f))
      .add(collectiveOp(schema::CollectiveKind::AllReduce, "dp", x, y), "collective.yaml:1:1");
  return {"collective", plan.finish()};
}

} // namespace

std::vector<SamplePlan> samplePlans() {
  return {elementwisePlan(), rmsNormPlan(), gemmPlan(), collectivePlan()};
}

} // namespace fusion::rt::testing
