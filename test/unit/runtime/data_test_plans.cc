//===- data_test_plans.cc - Plans that consume the data inputs ------------===//

#include "test/unit/runtime/data_test_plans.h"
#include "test/unit/runtime/test_plan_builder.h"

namespace fusion::rt::testing {

std::vector<uint8_t> tinyLanguageModelPlan(int64_t B, int64_t T, int64_t V, int64_t D, double std) {
  using schema::DType;
  PlanBuilder plan;
  uint32_t persistent = plan.addArena("persistent", schema::ArenaClass::Persistent);
  uint32_t transient = plan.addArena("transient");
  uint32_t table = plan.addBuffer("tok_embeddings.weight", DType::F32, {V, D}, persistent);
  uint32_t tokens = plan.addBuffer("tokens", DType::I32, {B, T + 1}, transient);
  uint32_t targets = plan.addBuffer("targets", DType::I32, {B, T + 1}, transient);
  uint32_t counts = plan.addBuffer("inv_counts", DType::F32, {1}, transient);
  uint32_t x = plan.addBuffer("x", DType::I32, {B, T}, transient);
  uint32_t y = plan.addBuffer("y", DType::I32, {B, T}, transient);
  uint32_t yFlat = plan.addBuffer("y_flat", DType::I32, {B * T}, transient);
  uint32_t hidden = plan.addBuffer("hidden", DType::F32, {B, T, D}, transient);
  uint32_t logits = plan.addBuffer("logits", DType::F32, {B * T, V}, transient);
  uint32_t ce = plan.addBuffer("ce", DType::F32, {B * T}, transient);
  uint32_t total = plan.addBuffer("ce_sum", DType::F32, {}, transient);
  uint32_t loss = plan.addBuffer("loss", DType::F32, {}, transient);

  uint32_t init =
      plan.addKernel("init_tok_embeddings", "init_param",
                     {AttrDesc::string("rule", "normal"), AttrDesc::number("std", std),
                      AttrDesc::integer("seed", 1234), AttrDesc::integer("param_index", 0)});
  uint32_t inputs = plan.addKernel(
      "x_slice", "slice",
      {AttrDesc::integer("dim", 1), AttrDesc::integer("start", 0), AttrDesc::integer("size", T)});
  uint32_t labels = plan.addKernel(
      "y_slice", "slice",
      {AttrDesc::integer("dim", 1), AttrDesc::integer("start", 1), AttrDesc::integer("size", T)});
  uint32_t embed = plan.addKernel("embed", "embedding");
  uint32_t flatten = plan.addKernel("flatten", "reshape");
  uint32_t crossEntropy = plan.addKernel("ce", "cross_entropy");
  uint32_t reduce = plan.addKernel("ce_sum", "sum", {AttrDesc::intList("dims", {0})});
  uint32_t scale = plan.addKernel("normalise", "mul");

  plan.addProgram("init").add(launchOp(init, {}, {table}), "tiny.yaml:1:1");
  plan.addProgram("forward")
      .add(launchOp(inputs, {tokens}, {x}), "tiny.yaml:2:1")
      .add(launchOp(labels, {targets}, {y}), "tiny.yaml:3:1")
      .add(launchOp(embed, {table, x}, {hidden}), "tiny.yaml:4:1")
      .add(gemmOp(hidden, table, logits, B * T, V, D, 1, false, true), "tiny.yaml:5:1")
      .add(launchOp(flatten, {y}, {yFlat}), "tiny.yaml:6:1")
      .add(launchOp(crossEntropy, {logits, yFlat}, {ce}), "tiny.yaml:7:1")
      .add(launchOp(reduce, {ce}, {total}), "tiny.yaml:8:1")
      .add(launchOp(scale, {total, counts}, {loss}), "tiny.yaml:9:1")
      .input("tokens", tokens)
      .input("targets", targets)
      .input("inv_counts", counts)
      .output("loss", loss);
  return plan.finish();
}

} // namespace fusion::rt::testing
