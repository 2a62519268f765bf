//===- FusionTrainingOps.cpp - verifiers of the training ops --------------===//
//
// Part of the FusionLLM compiler.
//
// Verifiers of the backward, fused-loss and optimizer ops (FusionTrainingOps.td). A gradient
// op's rules are its primal op's rules plus "each gradient has the type of its primal"; the
// primal shape rules come from ShapeRules.cpp so the two cannot drift apart.
//
//===----------------------------------------------------------------------===//

#include "dialects/Fusion/IR/FusionOps.h"
#include "dialects/Fusion/IR/ShapeRules.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace mlir::fusion;

namespace {

ArrayRef<int64_t> shapeOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

/// `value` must have exactly `type` (the gradient-has-its-primal's-type rule).
LogicalResult expectType(Operation *op, StringRef what, Value value, Type type) {
  if (value.getType() != type)
    return op->emitOpError() << what << " has type " << value.getType() << ", expected " << type;
  return success();
}

/// `value` must be f32 with `shape`.
LogicalResult expectF32(Operation *op, StringRef what, Value value, ArrayRef<int64_t> shape) {
  auto type = cast<RankedTensorType>(value.getType());
  if (!type.getElementType().isF32() || type.getShape() != shape)
    return op->emitOpError() << what << " must be f32 of shape " << formatShape(shape)
                             << ", got " << type;
  return success();
}

LogicalResult expectShape(Operation *op, StringRef what, Value value, ArrayRef<int64_t> shape) {
  if (shapeOf(value) != shape)
    return op->emitOpError() << what << " must have shape " << formatShape(shape) << ", got "
                             << formatShape(shapeOf(value));
  return success();
}

LogicalResult expectCautiousMode(Operation *op, StringRef mode) {
  if (mode != "grad" && mode != "update")
    return op->emitOpError("cautious_wd_mode must be 'grad' or 'update', got '") << mode << "'";
  return success();
}

LogicalResult expectBeta(Operation *op, StringRef name, APFloat value) {
  double beta = value.convertToDouble();
  if (!(beta >= 0.0 && beta < 1.0))
    return op->emitOpError() << name << " must be in [0, 1), got " << beta;
  return success();
}

LogicalResult verifyState(Operation *op, SymbolTableCollection &symbols, ArrayAttr state,
                          ArrayRef<SmallVector<int64_t>> shapes, ArrayRef<StringRef> roles) {
  return verifyStateParameters(op, symbols, state, shapes, roles);
}

} // namespace

LogicalResult ActivationGradOp::verify() {
  StringRef fn = getFn();
  // activation_grad_c1
  if (fn != "silu" && fn != "sigmoid" && fn != "softplus" && fn != "softcap")
    return emitOpError("unknown fn '") << fn << "'; expected silu, sigmoid, softplus or softcap";
  // activation_grad_c2
  if ((fn == "softcap") != getCap().has_value())
    return emitOpError("'cap' is required for softcap and only for softcap");
  if (getCap() && !(getCap()->convertToFloat() > 0.0f))
    return emitOpError("expects cap > 0, got ") << getCap()->convertToFloat();
  return success();
}

LogicalResult RmsNormGradOp::verify() {
  // rms_norm_grad_c1
  if (failed(verifyRmsNormShapes(getLoc(), shapeOf(getInput()), shapeOf(getWeight()))) ||
      failed(expectType(*this, "dy", getGrad(), getInput().getType())) ||
      failed(expectType(*this, "dx", getGradInput(), getInput().getType())))
    return failure();
  // rms_norm_grad_c2
  return expectF32(*this, "dw", getGradWeight(), shapeOf(getWeight()));
}

LogicalResult AttentionGradOp::verify() {
  SmallVector<int64_t> out;
  // attention_grad_c1
  if (failed(inferAttentionShape(getLoc(), shapeOf(getQuery()), shapeOf(getKey()),
                                 shapeOf(getValue()), out)) ||
      failed(expectShape(*this, "dO", getGrad(), out)))
    return failure();
  // attention_grad_c2
  return failure(failed(expectType(*this, "dq", getGradQuery(), getQuery().getType())) ||
                 failed(expectType(*this, "dk", getGradKey(), getKey().getType())) ||
                 failed(expectType(*this, "dv", getGradValue(), getValue().getType())));
}

LogicalResult CausalConv1dGradOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getInput()), w = shapeOf(getWeight());
  // causal_conv1d_grad_c1
  if (x.size() != 3 || w.size() != 2 || w[0] != x[2])
    return emitOpError("expects x [B, T, C] and w [C, K], got ")
           << formatShape(x) << " and " << formatShape(w);
  if (failed(expectType(*this, "dy", getGrad(), getInput().getType())) ||
      failed(expectType(*this, "dx", getGradInput(), getInput().getType())))
    return failure();
  // causal_conv1d_grad_c2
  return expectF32(*this, "dw", getGradWeight(), w);
}

LogicalResult GatedDeltaRuleGradOp::verify() {
  // gated_delta_rule_grad_c1
  if (failed(verifyGatedDeltaRuleShapes(getLoc(), shapeOf(getQuery()), shapeOf(getKey()),
                                        shapeOf(getValue()), shapeOf(getLogDecay()),
                                        shapeOf(getBeta()), getChunkSize())) ||
      failed(expectShape(*this, "dO", getGrad(), shapeOf(getValue()))))
    return failure();
  // gated_delta_rule_grad_c2
  Value primals[] = {getQuery(), getKey(), getValue(), getLogDecay(), getBeta()};
  for (auto [primal, grad] : llvm::zip(primals, getResults()))
    if (failed(expectType(*this, "gradient", grad, primal.getType())))
      return failure();
  return success();
}

LogicalResult EmbeddingGradOp::verify() {
  ArrayRef<int64_t> table = shapeOf(getResult());
  // embedding_grad_c1
  SmallVector<int64_t> expected;
  if (failed(inferEmbeddingShape(getLoc(), table, shapeOf(getIds()), expected)))
    return failure();
  if (!getResult().getType().getElementType().isF32())
    return emitOpError("the table gradient is f32, got ") << getResult().getType();
  return expectShape(*this, "dy", getGrad(), expected);
}

LogicalResult SliceGradOp::verify() {
  ArrayRef<int64_t> dy = shapeOf(getGrad()), dx = shapeOf(getResult());
  int64_t dim = getDim(), start = getStart();
  // slice_grad_c1
  if (dy.size() != dx.size() || dim < 0 || dim >= int64_t(dx.size()))
    return emitOpError("expects dy and dx of one rank and 0 <= dim < rank, got ")
           << formatShape(dy) << ", " << formatShape(dx) << " and dim " << dim;
  for (size_t d = 0; d < dx.size(); ++d)
    if (int64_t(d) != dim && dx[d] != dy[d])
      return emitOpError("dy ") << formatShape(dy) << " and dx " << formatShape(dx)
                                << " differ outside dim " << dim;
  if (start < 0 || start + dy[dim] > dx[dim])
    return emitOpError("slice [") << start << ", " << start + dy[dim]
                                  << ") does not fit dimension " << dim << " of size " << dx[dim];
  if (getGrad().getType().getElementType() != getResult().getType().getElementType())
    return emitOpError("element types of dy and dx differ");
  return success();
}

LogicalResult MoeRouteGradOp::verify() {
  ArrayRef<int64_t> s = shapeOf(getScores()), idx = shapeOf(getIndices()),
                    dw = shapeOf(getGrad());
  // moe_route_grad_c1
  if (s.size() != 2 || idx.size() != 2 || idx[0] != s[0] || dw != idx)
    return emitOpError("expects scores [N, E], indices and dweights [N, K], got ")
           << formatShape(s) << ", " << formatShape(idx) << ", " << formatShape(dw);
  return expectShape(*this, "dlogits", getResult(), s);
}

LogicalResult MoeDispatchGradOp::verify() {
  ArrayRef<int64_t> dxs = shapeOf(getGrad()), perm = shapeOf(getPerm()),
                    dx = shapeOf(getResult());
  // moe_dispatch_grad_c1
  if (dxs.size() != 2 || perm.size() != 1 || perm[0] != dxs[0] || dx.size() != 2 ||
      dx[1] != dxs[1] || dx[0] <= 0 || dxs[0] % dx[0] != 0)
    return emitOpError("expects dxs [N·K, D], perm [N·K] and a result [N, D], got ")
           << formatShape(dxs) << ", " << formatShape(perm) << ", " << formatShape(dx);
  if (getGrad().getType().getElementType() != getResult().getType().getElementType())
    return emitOpError("element types of dxs and dx differ");
  return success();
}

LogicalResult MoeCombineGradOp::verify() {
  ArrayRef<int64_t> ys = shapeOf(getExpertOutputs()), w = shapeOf(getWeights()),
                    perm = shapeOf(getPerm()), dy = shapeOf(getGrad());
  // moe_combine_grad_c1
  if (ys.size() != 2 || w.size() != 2 || perm.size() != 1 || ys[0] != w[0] * w[1] ||
      perm[0] != ys[0] || dy.size() != 2 || dy[0] != w[0] || dy[1] != ys[1])
    return emitOpError("expects ys [N·K, D], weights [N, K], perm [N·K], dy [N, D], got ")
           << formatShape(ys) << ", " << formatShape(w) << ", " << formatShape(perm) << ", "
           << formatShape(dy);
  // moe_combine_grad_c2
  if (failed(expectType(*this, "dys", getGradExpertOutputs(), getExpertOutputs().getType())))
    return failure();
  return expectF32(*this, "dweights", getGradWeights(), w);
}

LogicalResult GroupedMatmulGradOp::verify() {
  ArrayRef<int64_t> xs = shapeOf(getInput()), w = shapeOf(getWeight()),
                    sizes = shapeOf(getGroupSizes()), dout = shapeOf(getGrad());
  // grouped_matmul_grad_c1
  if (xs.size() != 2 || w.size() != 3 || w[2] != xs[1] || sizes.size() != 1 ||
      sizes[0] != w[0] || dout.size() != 2 || dout[0] != xs[0] || dout[1] != w[1])
    return emitOpError("expects xs [M, Din], w [E, Dout, Din], group_sizes [E], dout "
                       "[M, Dout], got ")
           << formatShape(xs) << ", " << formatShape(w) << ", " << formatShape(sizes) << ", "
           << formatShape(dout);
  // grouped_matmul_grad_c2
  if (failed(expectType(*this, "dxs", getGradInput(), getInput().getType())))
    return failure();
  return expectF32(*this, "dw", getGradWeight(), w);
}

LogicalResult MoeBalanceLossGradOp::verify() {
  ArrayRef<int64_t> s = shapeOf(getScores()), idx = shapeOf(getIndices());
  // moe_balance_loss_grad_c1
  if (s.size() != 2 || idx.size() != 2 || idx[0] != s[0])
    return emitOpError("expects scores [N, E] and indices [N, K], got ")
           << formatShape(s) << " and " << formatShape(idx);
  if (getSeqLen() <= 0 || s[0] % getSeqLen() != 0)
    return emitOpError("seq_len ") << getSeqLen() << " must divide N = " << s[0];
  return expectShape(*this, "dscores", getResult(), s);
}

LogicalResult CrossEntropyGradOp::verify() {
  ArrayRef<int64_t> z = shapeOf(getLogits()), y = shapeOf(getTargets());
  // cross_entropy_grad_c1
  if (z.size() != 2 || y.size() != 1 || y[0] != z[0])
    return emitOpError("expects logits [N, V] and targets [N], got ")
           << formatShape(z) << " and " << formatShape(y);
  if (failed(expectShape(*this, "dce", getGrad(), y)))
    return failure();
  return expectType(*this, "dlogits", getResult(), getLogits().getType());
}

/// softcap_ce_c1 / softcap_ce_grad_c1: h [N, D], w [V, D] of one element type, targets [N].
static LogicalResult verifyHeadOperands(Operation *op, Value h, Value w, Value targets) {
  ArrayRef<int64_t> hs = shapeOf(h), ws = shapeOf(w), ys = shapeOf(targets);
  if (hs.size() != 2 || ws.size() != 2 || ws[1] != hs[1] || ys.size() != 1 || ys[0] != hs[0])
    return op->emitOpError("expects h [N, D], w [V, D] and targets [N], got ")
           << formatShape(hs) << ", " << formatShape(ws) << ", " << formatShape(ys);
  if (cast<ShapedType>(h.getType()).getElementType() !=
      cast<ShapedType>(w.getType()).getElementType())
    return op->emitOpError("element types of h and w differ");
  return success();
}

LogicalResult SoftcapCeOp::verify() {
  if (failed(verifyHeadOperands(*this, getHidden(), getWeight(), getTargets())))
    return failure();
  // softcap_ce_c3
  if (!(getCap().convertToFloat() >= 0.0f))
    return emitOpError("expects cap >= 0, got ") << getCap().convertToFloat();
  // softcap_ce_c2
  return expectF32(*this, "result", getResult(), shapeOf(getTargets()));
}

LogicalResult SoftcapCeGradOp::verify() {
  if (failed(verifyHeadOperands(*this, getHidden(), getWeight(), getTargets())) ||
      failed(expectF32(*this, "dce", getGrad(), shapeOf(getTargets()))))
    return failure();
  if (!(getCap().convertToFloat() >= 0.0f))
    return emitOpError("expects cap >= 0, got ") << getCap().convertToFloat();
  // softcap_ce_grad_c2
  if (failed(expectType(*this, "dh", getGradHidden(), getHidden().getType())))
    return failure();
  return expectF32(*this, "dw", getGradWeight(), shapeOf(getWeight()));
}

LogicalResult StepControlOp::verify() {
  // step_control_c1
  if (shapeOf(getStep()) != ArrayRef<int64_t>{2})
    return emitOpError("step must be i32 [2] = (s, t), got ") << getStep().getType();
  if (failed(expectF32(*this, "result", getResult(), {8})))
    return failure();
  // step_control_c2
  if (getDecay() != "linear" && getDecay() != "cosine")
    return emitOpError("decay must be 'linear' or 'cosine', got '") << getDecay() << "'";
  if (getWarmupSteps() < 0 || getStableSteps() < 0 || getDecaySteps() < 1)
    return emitOpError("expects warmup_steps, stable_steps >= 0 and decay_steps >= 1, got ")
           << getWarmupSteps() << ", " << getStableSteps() << ", " << getDecaySteps();
  return success();
}

LogicalResult AdamwUpdateOp::verify() {
  // adamw_update_c2
  if (failed(expectF32(*this, "ctl", getCtl(), {8})))
    return failure();
  // adamw_update_c3
  if (failed(expectCautiousMode(*this, getCautiousWdMode())) ||
      failed(expectBeta(*this, "beta1", getBeta1())) ||
      failed(expectBeta(*this, "beta2", getBeta2())))
    return failure();
  if (!(getEps().convertToFloat() > 0.0f))
    return emitOpError("expects eps > 0");
  return success();
}

LogicalResult AdamwUpdateOp::verifySymbolUses(SymbolTableCollection &symbols) {
  // adamw_update_c1
  SmallVector<int64_t> shape(shapeOf(getGrad()));
  return verifyState(*this, symbols, getState(), {shape, shape, shape}, {"w", "m", "v"});
}

LogicalResult NormuonUpdateOp::verify() {
  // normuon_update_c1
  if (shapeOf(getGrad()).size() < 2)
    return emitOpError("NorMuon updates matrices; grad has shape ")
           << formatShape(shapeOf(getGrad()));
  // normuon_update_c2
  if (failed(expectF32(*this, "ctl", getCtl(), {8})))
    return failure();
  // normuon_update_c3
  return failure(failed(expectCautiousMode(*this, getCautiousWdMode())) ||
                 failed(expectBeta(*this, "beta1", getBeta1())) ||
                 failed(expectBeta(*this, "beta2", getBeta2())));
}

LogicalResult NormuonUpdateOp::verifySymbolUses(SymbolTableCollection &symbols) {
  // normuon_update_c1
  SmallVector<int64_t> shape(shapeOf(getGrad()));
  SmallVector<int64_t> rows(shape.begin(), shape.end() - 1);
  return verifyState(*this, symbols, getState(), {shape, shape, rows}, {"w", "M", "v"});
}

LogicalResult MoeBiasUpdateOp::verify() {
  // moe_bias_update_c1
  if (shapeOf(getCounts()).size() != 1)
    return emitOpError("counts must be [E], got ") << getCounts().getType();
  // moe_bias_update_c2
  if (failed(expectF32(*this, "ctl", getCtl(), {8})))
    return failure();
  double upper = getUpper().convertToDouble(), lower = getLower().convertToDouble();
  if (getEvery() < 1 || !(getSpeed().convertToDouble() >= 0.0) || !(upper >= 0.0 && upper < 1.0) ||
      !(lower >= 0.0 && lower < 1.0))
    return emitOpError("expects every >= 1, speed >= 0 and thresholds in [0, 1)");
  return success();
}

LogicalResult MoeBiasUpdateOp::verifySymbolUses(SymbolTableCollection &symbols) {
  // moe_bias_update_c1
  SmallVector<int64_t> shape(shapeOf(getCounts()));
  return verifyState(*this, symbols, getState(), {shape, shape}, {"bias", "window"});
}
