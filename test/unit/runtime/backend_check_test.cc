//===- backend_check_test.cc - The lockstep backend check -----------------===//
//
// checkAgainstReference on two CPU executors of one plan agrees everywhere; a wrapped
// executor that perturbs one output, leaves one unwritten or changes an index shows each
// fault at its instruction, with the poison making the unwritten output visible.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/check.h"
#include "fusion/rt/executor.h"
#include "test/unit/runtime/test_plan_builder.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

/// A CPU executor whose step() can be followed by a fault injected into its buffers.
class FaultyExecutor final : public Executor {
public:
  FaultyExecutor(std::shared_ptr<const Plan> plan, std::unique_ptr<Executor> inner)
      : Executor(std::move(plan)), inner_(std::move(inner)) {}
  BackendKind backend() const override { return BackendKind::kCuda; }
  std::string deviceDescription() const override { return "faulty"; }
  Status run(std::string_view program) override { return inner_->run(program); }
  Status step(std::string_view program, uint32_t index) override {
    // "unwritten": skip the instruction entirely, leaving the poison in place.
    if (skip_ && *skip_ == index)
      return Status::okStatus();
    FUSION_RETURN_IF_ERROR(inner_->step(program, index));
    if (after_)
      after_(*inner_, index);
    return Status::okStatus();
  }
  Status readBuffer(uint32_t id, std::vector<uint8_t> &out) override {
    return inner_->readBuffer(id, out);
  }
  Status writeBuffer(uint32_t id, const void *data, size_t size) override {
    return inner_->writeBuffer(id, data, size);
  }
  std::optional<uint32_t> skip_;
  std::function<void(Executor &, uint32_t)> after_;

private:
  std::unique_ptr<Executor> inner_;
};

struct Fixture {
  std::shared_ptr<const Plan> plan;
  uint32_t x = 0, y = 0, sum = 0, ids = 0;
};

/// main: x = fill(0.5, 0.25), y = silu(x), sum = x + y, ids = fill(3, 1) as i32.
Fixture makePlan() {
  PlanBuilder builder;
  Fixture f;
  f.x = builder.addBuffer("x", DType::F32, {40});
  f.y = builder.addBuffer("y", DType::F32, {40});
  f.sum = builder.addBuffer("sum", DType::BF16, {40});
  f.ids = builder.addBuffer("ids", DType::I32, {8});
  uint32_t fill = builder.addKernel(
      "fill", "fill", {AttrDesc::number("value", 0.5), AttrDesc::number("step", 0.25)});
  uint32_t fillIds = builder.addKernel(
      "fill_ids", "fill", {AttrDesc::number("value", 3), AttrDesc::number("step", 1)});
  uint32_t silu = builder.addKernel("silu", "silu");
  uint32_t add = builder.addKernel("add", "add");
  builder.addProgram("main")
      .add(launchOp(fill, {}, {f.x}))
      .add(launchOp(silu, {f.x}, {f.y}))
      .add(launchOp(add, {f.x, f.y}, {f.sum}))
      .add(launchOp(fillIds, {}, {f.ids}));
  auto plan = Plan::loadBytes(builder.finish(), "check.fplan");
  EXPECT_TRUE(plan.ok()) << plan.status().toString();
  f.plan = *plan;
  return f;
}

std::unique_ptr<Executor> cpu(const Fixture &f) {
  auto executor = createExecutor(f.plan, BackendKind::kCpu);
  EXPECT_TRUE(executor.ok()) << executor.status().toString();
  return std::move(executor).value();
}

TEST(BackendCheckTest, IdenticalBackendsAgree) {
  Fixture f = makePlan();
  auto reference = cpu(f);
  FaultyExecutor device(f.plan, cpu(f));
  auto checks = checkAgainstReference(*reference, device, "main", CheckOptions{});
  ASSERT_TRUE(checks.ok()) << checks.status().toString();
  ASSERT_EQ(checks->size(), 4u);
  for (const InstructionCheck &check : *checks) {
    EXPECT_TRUE(check.passed()) << check.kind;
    EXPECT_EQ(check.outputs.size(), 1u);
    EXPECT_EQ(check.outputs[0].relL2, 0.0);
  }
  std::string report = formatCheckReport(*f.plan, *checks, CheckOptions{});
  EXPECT_NE(report.find("silu"), std::string::npos) << report;
  EXPECT_NE(report.find("4 instruction(s) checked, 0 failed"), std::string::npos) << report;
}

TEST(BackendCheckTest, PerturbedOutputFailsAtItsInstructionOnly) {
  Fixture f = makePlan();
  auto reference = cpu(f);
  FaultyExecutor device(f.plan, cpu(f));
  // Instruction 1 (silu) is off by 1% in one element: rel L2 above f32's 1e-3 bound.
  device.after_ = [&](Executor &e, uint32_t index) {
    if (index != 1)
      return;
    std::vector<uint8_t> bytes;
    ASSERT_TRUE(e.readBuffer(f.y, bytes).ok());
    float v;
    std::memcpy(&v, bytes.data() + 4 * 30, 4);
    v *= 1.5f;
    std::memcpy(bytes.data() + 4 * 30, &v, 4);
    ASSERT_TRUE(e.writeBuffer(f.y, bytes.data(), bytes.size()).ok());
  };
  auto checks = checkAgainstReference(*reference, device, "main", CheckOptions{});
  ASSERT_TRUE(checks.ok());
  EXPECT_FALSE((*checks)[1].passed());
  EXPECT_EQ((*checks)[1].outputs[0].worst, 30u);
  EXPECT_GT((*checks)[1].outputs[0].relL2, 1e-3);
  // The next instruction gets the reference's y, so the fault does not spread.
  EXPECT_TRUE((*checks)[2].passed());
  std::string report = formatCheckReport(*f.plan, *checks, CheckOptions{});
  EXPECT_NE(report.find("FAIL program 'main' instruction 1"), std::string::npos) << report;
  EXPECT_NE(report.find("output 'y' (f32)"), std::string::npos) << report;
  EXPECT_NE(report.find("4 instruction(s) checked, 1 failed"), std::string::npos) << report;
}

TEST(BackendCheckTest, UnwrittenOutputIsCaughtByThePoison) {
  Fixture f = makePlan();
  auto reference = cpu(f);
  FaultyExecutor device(f.plan, cpu(f));
  // Run everything once so the device's sum already holds the right values: only the
  // poison written before the check can reveal that instruction 2 writes nothing.
  ASSERT_TRUE(device.run("main").ok());
  device.skip_ = 2;
  auto checks = checkAgainstReference(*reference, device, "main", CheckOptions{});
  ASSERT_TRUE(checks.ok());
  EXPECT_FALSE((*checks)[2].passed());
  EXPECT_EQ((*checks)[2].outputs[0].mismatches, 40u); // every element NaN
}

TEST(BackendCheckTest, IndexBuffersMustMatchExactly) {
  Fixture f = makePlan();
  auto reference = cpu(f);
  FaultyExecutor device(f.plan, cpu(f));
  device.after_ = [&](Executor &e, uint32_t index) {
    if (index != 3)
      return;
    std::vector<uint8_t> bytes;
    ASSERT_TRUE(e.readBuffer(f.ids, bytes).ok());
    bytes[4 * 5] ^= 1; // 8 -> 9
    ASSERT_TRUE(e.writeBuffer(f.ids, bytes.data(), bytes.size()).ok());
  };
  auto checks = checkAgainstReference(*reference, device, "main", CheckOptions{});
  ASSERT_TRUE(checks.ok());
  EXPECT_FALSE((*checks)[3].passed());
  EXPECT_EQ((*checks)[3].outputs[0].mismatches, 1u);
  EXPECT_EQ((*checks)[3].outputs[0].worst, 5u);
}

TEST(BackendCheckTest, UnknownProgramIsAnError) {
  Fixture f = makePlan();
  auto reference = cpu(f);
  FaultyExecutor device(f.plan, cpu(f));
  auto checks = checkAgainstReference(*reference, device, "nope", CheckOptions{});
  ASSERT_FALSE(checks.ok());
  EXPECT_NE(checks.status().message().find("no program named 'nope'"), std::string::npos);
}

} // namespace
