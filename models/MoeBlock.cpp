//===- MoeBlock.cpp - DeepSeekMoE FFN -------------------------------------===//
//
// Part of the FusionLLM compiler.
//
// MODEL.md §5: an fp32 sigmoid router with a selection bias and group-limited top-k,
// dropless dispatch into grouped SwiGLU experts, the weighted combine, S shared experts,
// and the sequence-wise balance loss (added to ModelBuilder::auxLoss). The S shared
// experts are evaluated as one SwiGLU of width S·I: their stacked weights, laid side by
// side, compute exactly Σ_e F^sh_e(u).
//
//===----------------------------------------------------------------------===//

#include "models/ModelBuilder.h"

using namespace mlir;
using namespace mlir::fusion;
using namespace mlir::fusion::models;

Value mlir::fusion::models::buildMoe(ModelBuilder &mb, Value u, llvm::StringRef prefix) {
  const spec::ModelConfig &m = mb.model();
  auto shape = cast<RankedTensorType>(u.getType()).getShape();
  int64_t batch = shape[0], seq = shape[1], dim = m.dim, tokens = batch * seq;
  int64_t experts = m.nRoutedExperts, topK = m.nActivatedExperts, shared = m.nSharedExperts,
          inter = m.moeInterDim;
  auto name = [&](llvm::StringRef leaf) { return (prefix + "." + leaf).str(); };
  Location routerLoc = mb.loc(name("router"), "model.n_expert_groups");
  Location expertLoc = mb.loc(name("experts"), "model.n_routed_experts");
  Location sharedLoc = mb.loc(name("shared"), "model.n_shared_experts");
  Location balanceLoc = mb.loc(name("balance"), "training.balance_loss_alpha");
  OpBuilder &b = mb.b();
  Type f32 = b.getF32Type();
  Value flat = mb.reshape(u, {tokens, dim}, routerLoc);

  // 1. Router, fully fp32; the selection bias is a buffer, never trained by gradient.
  ParamSpec routerInit = m.muP ? ParamSpec{"trunc_normal", 0.006, 0, 0, "normuon", true}
                               : ParamSpec{"normal", 0.006, 0, 0, "normuon", true};
  Value wr = mb.param(name("router.weight"), {experts, dim}, routerInit, routerLoc);
  Value bias = mb.param(name("router.bias"), {experts}, {"zeros", 0, 0, 0, "none", false},
                        routerLoc);
  Value logits = mb.linear(mb.cast(flat, f32, routerLoc), wr, routerLoc);
  auto route = MoeRouteOp::create(
      b, routerLoc, mb.tensor({tokens, topK}, f32), mb.tensor({tokens, topK}, b.getI32Type()),
      mb.tensor({tokens, experts}, f32), logits, bias, b.getI64IntegerAttr(topK), b.getI64IntegerAttr(m.nExpertGroups),
      b.getI64IntegerAttr(m.nLimitedGroups), b.getI64IntegerAttr(m.groupTopk),
      b.getF32FloatAttr(m.routeScale));

  // 2. Dropless dispatch, grouped SwiGLU experts ([E, out, in] weights), combine.
  auto dispatch = MoeDispatchOp::create(
      b, expertLoc, mb.tensor({tokens * topK, dim}, mb.computeType()),
      mb.tensor({experts}, b.getI32Type()), mb.tensor({tokens * topK}, b.getI32Type()), flat,
      route.getIndices(), b.getI64IntegerAttr(experts));
  auto expertWeight = [&](llvm::StringRef leaf, int64_t out, int64_t in, bool residual) {
    return mb.computeParam(name(leaf), {experts, out, in},
                           residual ? mb.residualOutputInit(in) : mb.matrixInit(in), expertLoc);
  };
  auto grouped = [&](Value x, Value w, int64_t out) {
    return Value(GroupedMatmulOp::create(b, expertLoc, mb.tensor({tokens * topK, out}, mb.computeType()),
                                         x, w, dispatch.getGroupSizes()));
  };
  Value a = grouped(dispatch.getResult(), expertWeight("experts.w1", inter, dim, false), inter);
  Value c = grouped(dispatch.getResult(), expertWeight("experts.w3", inter, dim, false), inter);
  Value h = SwigluOp::create(b, expertLoc, a.getType(), a, c);
  Value ys = grouped(h, expertWeight("experts.w2", dim, inter, true), dim);
  Value routed = MoeCombineOp::create(b, expertLoc, mb.tensor({tokens, dim}, mb.computeType()),
                                      ys, route.getWeights(), dispatch.getPermutation());

  // 3. Shared experts as one SwiGLU of width S·I.
  Value y = routed;
  if (shared > 0) {
    Value w1 = mb.computeParam(name("shared.w1"), {shared, inter, dim}, mb.matrixInit(dim), sharedLoc);
    Value w3 = mb.computeParam(name("shared.w3"), {shared, inter, dim}, mb.matrixInit(dim), sharedLoc);
    Value w2 = mb.computeParam(name("shared.w2"), {shared, dim, inter},
                               mb.residualOutputInit(inter), sharedLoc);
    Value w1f = mb.reshape(w1, {shared * inter, dim}, sharedLoc);
    Value w3f = mb.reshape(w3, {shared * inter, dim}, sharedLoc);
    Value w2f = mb.reshape(mb.transpose(w2, {1, 0, 2}, sharedLoc), {dim, shared * inter}, sharedLoc);
    Value sa = mb.linear(flat, w1f, sharedLoc), sc = mb.linear(flat, w3f, sharedLoc);
    Value sh = SwigluOp::create(b, sharedLoc, sa.getType(), sa, sc);
    y = mb.add(y, mb.linear(sh, w2f, sharedLoc), sharedLoc);
  }

  // 4. Balance loss α·mean_rows L_bal, this micro-batch's share of the step's row mean.
  double alpha = mb.training().balanceLossAlpha;
  if (alpha > 0 && !mb.inInferenceFunction()) {
    Value lbal = MoeBalanceLossOp::create(b, balanceLoc, mb.tensor({}, f32), route.getScores(),
                                          route.getIndices(), b.getI64IntegerAttr(seq));
    double share = alpha / double(mb.training().gradientAccumulationSteps *
                                  mb.config().distributed.nGpus);
    Value term = ScaleOp::create(b, balanceLoc, lbal.getType(), lbal, b.getF32FloatAttr(share));
    mb.auxLoss = mb.auxLoss ? mb.add(mb.auxLoss, term, balanceLoc) : term;
  }
  return mb.reshape(y, {batch, seq, dim}, expertLoc);
}
