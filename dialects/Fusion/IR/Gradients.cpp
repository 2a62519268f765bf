//===- Gradients.cpp - reverse-mode rules of the fusion ops ---------------===//
//
// Part of the FusionLLM compiler.
//
// One vector–Jacobian product per differentiable op (MODEL.md §4.3, §5, §9 give the math of
// the non-trivial ones). A rule receives the cotangent of each result (null = the loss does
// not depend on it) and returns one cotangent per operand (null = no gradient: integer
// operands, routing selections, the MoE selection bias). Rules only build ops; fusion-autodiff
// sums the contributions of an operand's several uses.
//
// Layout ops reuse forward ops (reshape ↔ reshape, transpose ↔ inverse transpose, sum ↔
// broadcast, concat → slices); ops whose VJP needs their own kernel use a `*_grad` op of
// FusionTrainingOps.td. Parameter gradients (dw, dtable) come out in f32 and are cast to the
// operand's type when that differs (bf16 compute copies), so every rule is type-correct.
//
//===----------------------------------------------------------------------===//

#include "dialects/Fusion/IR/Gradients.h"

#include "dialects/Fusion/IR/FusionOps.h"

#include "dialects/Fusion/IR/FusionInterfaces.cpp.inc"

using namespace mlir;
using namespace mlir::fusion;

namespace {

RankedTensorType typeOf(Value value) { return cast<RankedTensorType>(value.getType()); }

RankedTensorType withShape(RankedTensorType type, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, type.getElementType());
}

RankedTensorType withElement(RankedTensorType type, Type element) {
  return RankedTensorType::get(type.getShape(), element);
}

/// `value` converted to `type`'s element type (a no-op when it already has it).
Value castTo(OpBuilder &b, Location loc, Value value, Type type) {
  if (value.getType() == type)
    return value;
  return CastOp::create(b, loc, type, value);
}

/// The signature of a rule: (op, builder, result cotangents, operand cotangents).
template <typename OpT>
using Rule = LogicalResult (*)(OpT, OpBuilder &, ArrayRef<Value>, SmallVectorImpl<Value> &);

template <typename OpT, Rule<OpT> rule>
struct GradientModel
    : DifferentiableOpInterface::ExternalModel<GradientModel<OpT, rule>, OpT> {
  LogicalResult buildGradient(Operation *op, OpBuilder &builder, ArrayRef<Value> resultGrads,
                              SmallVectorImpl<Value> &operandGrads) const {
    operandGrads.assign(op->getNumOperands(), Value());
    return rule(cast<OpT>(op), builder, resultGrads, operandGrads);
  }
};

template <typename OpT, Rule<OpT> rule>
void attach(MLIRContext *context) {
  OpT::template attachInterface<GradientModel<OpT, rule>>(*context);
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

LogicalResult addRule(AddOp, OpBuilder &, ArrayRef<Value> dz, SmallVectorImpl<Value> &d) {
  d[0] = d[1] = dz[0];
  return success();
}

LogicalResult subRule(SubOp op, OpBuilder &b, ArrayRef<Value> dz, SmallVectorImpl<Value> &d) {
  d[0] = dz[0];
  d[1] = NegOp::create(b, op.getLoc(), dz[0].getType(), dz[0]);
  return success();
}

LogicalResult mulRule(MulOp op, OpBuilder &b, ArrayRef<Value> dz, SmallVectorImpl<Value> &d) {
  d[0] = MulOp::create(b, op.getLoc(), dz[0], op.getRhs());
  d[1] = MulOp::create(b, op.getLoc(), dz[0], op.getLhs());
  return success();
}

template <typename OpT>
LogicalResult activationRule(OpT op, OpBuilder &b, ArrayRef<Value> dy,
                             SmallVectorImpl<Value> &d, StringRef fn, FloatAttr cap) {
  d[0] = ActivationGradOp::create(b, op.getLoc(), dy[0].getType(), op->getOperand(0), dy[0],
                                  b.getStringAttr(fn), cap);
  return success();
}

LogicalResult siluRule(SiluOp op, OpBuilder &b, ArrayRef<Value> dy, SmallVectorImpl<Value> &d) {
  return activationRule(op, b, dy, d, "silu", nullptr);
}
LogicalResult sigmoidRule(SigmoidOp op, OpBuilder &b, ArrayRef<Value> dy,
                          SmallVectorImpl<Value> &d) {
  return activationRule(op, b, dy, d, "sigmoid", nullptr);
}
LogicalResult softplusRule(SoftplusOp op, OpBuilder &b, ArrayRef<Value> dy,
                           SmallVectorImpl<Value> &d) {
  return activationRule(op, b, dy, d, "softplus", nullptr);
}
LogicalResult softcapRule(SoftcapOp op, OpBuilder &b, ArrayRef<Value> dy,
                          SmallVectorImpl<Value> &d) {
  return activationRule(op, b, dy, d, "softcap", op.getCapAttr());
}

LogicalResult expRule(ExpOp op, OpBuilder &b, ArrayRef<Value> dy, SmallVectorImpl<Value> &d) {
  d[0] = MulOp::create(b, op.getLoc(), dy[0], op.getResult());
  return success();
}

LogicalResult negRule(NegOp op, OpBuilder &b, ArrayRef<Value> dy, SmallVectorImpl<Value> &d) {
  d[0] = NegOp::create(b, op.getLoc(), dy[0].getType(), dy[0]);
  return success();
}

LogicalResult scaleRule(ScaleOp op, OpBuilder &b, ArrayRef<Value> dy, SmallVectorImpl<Value> &d) {
  d[0] = ScaleOp::create(b, op.getLoc(), dy[0].getType(), dy[0], op.getFactorAttr());
  return success();
}

LogicalResult swigluRule(SwigluOp op, OpBuilder &b, ArrayRef<Value> dy,
                         SmallVectorImpl<Value> &d) {
  auto grads = SwigluGradOp::create(b, op.getLoc(), dy[0].getType(), dy[0].getType(),
                                    op->getOperand(0), op->getOperand(1), dy[0]);
  d[0] = grads.getGradGate();
  d[1] = grads.getGradUp();
  return success();
}

LogicalResult castRule(CastOp op, OpBuilder &b, ArrayRef<Value> dy, SmallVectorImpl<Value> &d) {
  d[0] = castTo(b, op.getLoc(), dy[0], op->getOperand(0).getType());
  return success();
}

//===----------------------------------------------------------------------===//
// Layout
//===----------------------------------------------------------------------===//

LogicalResult reshapeRule(ReshapeOp op, OpBuilder &b, ArrayRef<Value> dy,
                          SmallVectorImpl<Value> &d) {
  d[0] = ReshapeOp::create(b, op.getLoc(), op->getOperand(0).getType(), dy[0]);
  return success();
}

LogicalResult transposeRule(TransposeOp op, OpBuilder &b, ArrayRef<Value> dy,
                            SmallVectorImpl<Value> &d) {
  ArrayRef<int64_t> perm = op.getPerm();
  SmallVector<int64_t> inverse(perm.size());
  for (auto [d2, p] : llvm::enumerate(perm))
    inverse[p] = d2;
  d[0] = TransposeOp::create(b, op.getLoc(), op->getOperand(0).getType(), dy[0],
                             b.getDenseI64ArrayAttr(inverse));
  return success();
}

LogicalResult sliceRule(SliceOp op, OpBuilder &b, ArrayRef<Value> dy, SmallVectorImpl<Value> &d) {
  d[0] = SliceGradOp::create(b, op.getLoc(), op->getOperand(0).getType(), dy[0],
                             op.getDimAttr(), op.getStartAttr());
  return success();
}

LogicalResult concatRule(ConcatOp op, OpBuilder &b, ArrayRef<Value> dy,
                         SmallVectorImpl<Value> &d) {
  int64_t dim = op.getDim(), offset = 0;
  for (auto [i, input] : llvm::enumerate(op->getOperands())) {
    int64_t size = typeOf(input).getShape()[dim];
    d[i] = SliceOp::create(b, op.getLoc(), input.getType(), dy[0], b.getI64IntegerAttr(dim),
                           b.getI64IntegerAttr(offset), b.getI64IntegerAttr(size));
    offset += size;
  }
  return success();
}

LogicalResult broadcastRule(BroadcastOp op, OpBuilder &b, ArrayRef<Value> dy,
                            SmallVectorImpl<Value> &d) {
  // Input dims map to increasing result dims, so summing the others leaves the input's order.
  ArrayRef<int64_t> kept = op.getDims();
  SmallVector<int64_t> reduced;
  for (int64_t r = 0, rank = typeOf(op.getResult()).getRank(); r < rank; ++r)
    if (!llvm::is_contained(kept, r))
      reduced.push_back(r);
  if (reduced.empty()) {
    d[0] = ReshapeOp::create(b, op.getLoc(), op->getOperand(0).getType(), dy[0]);
    return success();
  }
  d[0] = SumOp::create(b, op.getLoc(), op->getOperand(0).getType(), dy[0],
                       b.getDenseI64ArrayAttr(reduced));
  return success();
}

LogicalResult sumRule(SumOp op, OpBuilder &b, ArrayRef<Value> dy, SmallVectorImpl<Value> &d) {
  ArrayRef<int64_t> summed = op.getDims();
  SmallVector<int64_t> kept;
  for (int64_t r = 0, rank = typeOf(op->getOperand(0)).getRank(); r < rank; ++r)
    if (!llvm::is_contained(summed, r))
      kept.push_back(r);
  Value grad = castTo(b, op.getLoc(), dy[0],
                      withElement(typeOf(dy[0]), typeOf(op->getOperand(0)).getElementType()));
  d[0] = BroadcastOp::create(b, op.getLoc(), op->getOperand(0).getType(), grad,
                             b.getDenseI64ArrayAttr(kept));
  return success();
}

//===----------------------------------------------------------------------===//
// Matmul
//===----------------------------------------------------------------------===//

Value matmul(OpBuilder &b, Location loc, Value lhs, Value rhs, bool ta, bool tb) {
  ArrayRef<int64_t> l = typeOf(lhs).getShape(), r = typeOf(rhs).getShape();
  SmallVector<int64_t> shape(l.begin(), l.end() - 2);
  shape.push_back(ta ? l.back() : l[l.size() - 2]);
  shape.push_back(tb ? r[r.size() - 2] : r.back());
  return MatmulOp::create(b, loc, withShape(typeOf(lhs), shape), lhs, rhs,
                          ta ? b.getUnitAttr() : UnitAttr(), tb ? b.getUnitAttr() : UnitAttr());
}

LogicalResult matmulRule(MatmulOp op, OpBuilder &b, ArrayRef<Value> dc,
                         SmallVectorImpl<Value> &d) {
  Location loc = op.getLoc();
  Value a = op.getLhs(), bm = op.getRhs(), g = dc[0];
  bool ta = op.getTransposeA(), tb = op.getTransposeB();
  int64_t rankA = typeOf(a).getRank(), rankB = typeOf(bm).getRank();
  if (rankA == rankB) {
    d[0] = ta ? matmul(b, loc, bm, g, tb, true) : matmul(b, loc, g, bm, false, !tb);
    d[1] = tb ? matmul(b, loc, g, a, true, ta) : matmul(b, loc, a, g, !ta, false);
    return success();
  }
  // A batched against a shared 2-D B (linear layers): flatten the batch into rows for dB.
  if (ta || rankB != 2)
    return op.emitOpError("has no gradient rule for a transposed, batched lhs against a "
                          "shared rhs");
  d[0] = matmul(b, loc, g, bm, false, !tb);
  ArrayRef<int64_t> as = typeOf(a).getShape(), gs = typeOf(g).getShape();
  int64_t rows = typeOf(a).getNumElements() / as.back();
  Value a2 = ReshapeOp::create(b, loc, withShape(typeOf(a), {rows, as.back()}), a);
  Value g2 = ReshapeOp::create(b, loc, withShape(typeOf(g), {rows, gs.back()}), g);
  d[1] = tb ? matmul(b, loc, g2, a2, true, false) : matmul(b, loc, a2, g2, true, false);
  return success();
}

//===----------------------------------------------------------------------===//
// Norms, embedding, positions
//===----------------------------------------------------------------------===//

LogicalResult rmsNormRule(RmsNormOp op, OpBuilder &b, ArrayRef<Value> dy,
                          SmallVectorImpl<Value> &d) {
  Location loc = op.getLoc();
  RankedTensorType wType = op.getWeight().getType();
  auto grads = RmsNormGradOp::create(b, loc, op.getInput().getType(),
                                     withElement(wType, b.getF32Type()), op.getInput(),
                                     op.getWeight(), dy[0], op.getEpsAttr());
  d[0] = grads.getGradInput();
  d[1] = castTo(b, loc, grads.getGradWeight(), wType);
  return success();
}

LogicalResult l2NormRule(L2NormOp op, OpBuilder &b, ArrayRef<Value> dy,
                         SmallVectorImpl<Value> &d) {
  d[0] = L2NormGradOp::create(b, op.getLoc(), dy[0].getType(), op.getInput(), dy[0],
                              op.getEpsAttr(), op.getScaleAttr());
  return success();
}

LogicalResult embeddingRule(EmbeddingOp op, OpBuilder &b, ArrayRef<Value> dy,
                            SmallVectorImpl<Value> &d) {
  RankedTensorType tableType = op.getTable().getType();
  Value grad = EmbeddingGradOp::create(b, op.getLoc(), withElement(tableType, b.getF32Type()),
                                       op.getIds(), dy[0]);
  d[0] = castTo(b, op.getLoc(), grad, tableType);
  return success();
}

LogicalResult ropeRule(RopeOp op, OpBuilder &b, ArrayRef<Value> dy, SmallVectorImpl<Value> &d) {
  d[0] = RopeGradOp::create(b, op.getLoc(), dy[0].getType(), dy[0], op.getRotaryDimsAttr(),
                            op.getThetaAttr());
  return success();
}

//===----------------------------------------------------------------------===//
// Mixers
//===----------------------------------------------------------------------===//

LogicalResult attentionRule(AttentionOp op, OpBuilder &b, ArrayRef<Value> dy,
                            SmallVectorImpl<Value> &d) {
  auto grads = AttentionGradOp::create(
      b, op.getLoc(), op.getQuery().getType(), op.getKey().getType(), op.getValue().getType(),
      op.getQuery(), op.getKey(), op.getValue(), dy[0], op.getCausalAttr(), op.getWindowAttr(),
      op.getScaleAttr());
  d[0] = grads.getGradQuery();
  d[1] = grads.getGradKey();
  d[2] = grads.getGradValue();
  return success();
}

LogicalResult conv1dRule(CausalConv1dOp op, OpBuilder &b, ArrayRef<Value> dy,
                         SmallVectorImpl<Value> &d) {
  Location loc = op.getLoc();
  RankedTensorType wType = typeOf(op->getOperand(1));
  auto grads = CausalConv1dGradOp::create(b, loc, op->getOperand(0).getType(),
                                          withElement(wType, b.getF32Type()), op->getOperand(0),
                                          op->getOperand(1), dy[0]);
  d[0] = grads.getGradInput();
  d[1] = castTo(b, loc, grads.getGradWeight(), wType);
  return success();
}

LogicalResult gatedDeltaRule(GatedDeltaRuleOp op, OpBuilder &b, ArrayRef<Value> dy,
                             SmallVectorImpl<Value> &d) {
  SmallVector<Type> types;
  for (Value operand : op->getOperands())
    types.push_back(operand.getType());
  auto grads = GatedDeltaRuleGradOp::create(
      b, op.getLoc(), types, op.getQuery(), op.getKey(), op.getValue(), op.getLogDecay(),
      op.getBeta(), dy[0], op.getChunkSizeAttr());
  for (unsigned i = 0; i < 5; ++i)
    d[i] = grads->getResult(i);
  return success();
}

//===----------------------------------------------------------------------===//
// Mixture of experts and losses
//===----------------------------------------------------------------------===//

LogicalResult moeRouteRule(MoeRouteOp op, OpBuilder &b, ArrayRef<Value> dy,
                           SmallVectorImpl<Value> &d) {
  // Results: weights (through the normalised selection), indices (none), scores = σ(ℓ).
  Location loc = op.getLoc();
  Value dlogits;
  if (dy[0])
    dlogits = MoeRouteGradOp::create(b, loc, op.getLogits().getType(), op.getScores(),
                                     op.getIndices(), dy[0], op.getRouteScaleAttr());
  if (dy[2]) {
    Value viaScores = ActivationGradOp::create(b, loc, op.getLogits().getType(), op.getLogits(),
                                               dy[2], b.getStringAttr("sigmoid"), FloatAttr());
    dlogits = dlogits ? Value(AddOp::create(b, loc, dlogits, viaScores)) : viaScores;
  }
  d[0] = dlogits;
  return success();
}

LogicalResult moeDispatchRule(MoeDispatchOp op, OpBuilder &b, ArrayRef<Value> dy,
                              SmallVectorImpl<Value> &d) {
  if (dy[0])
    d[0] = MoeDispatchGradOp::create(b, op.getLoc(), op->getOperand(0).getType(), dy[0],
                                     op->getResult(2));
  return success();
}

LogicalResult groupedMatmulRule(GroupedMatmulOp op, OpBuilder &b, ArrayRef<Value> dy,
                                SmallVectorImpl<Value> &d) {
  Location loc = op.getLoc();
  RankedTensorType wType = typeOf(op->getOperand(1));
  auto grads = GroupedMatmulGradOp::create(
      b, loc, op->getOperand(0).getType(), withElement(wType, b.getF32Type()),
      op->getOperand(0), op->getOperand(1), op->getOperand(2), dy[0]);
  d[0] = grads.getGradInput();
  d[1] = castTo(b, loc, grads.getGradWeight(), wType);
  return success();
}

LogicalResult moeCombineRule(MoeCombineOp op, OpBuilder &b, ArrayRef<Value> dy,
                             SmallVectorImpl<Value> &d) {
  Location loc = op.getLoc();
  Value ys = op->getOperand(0), weights = op->getOperand(1), perm = op->getOperand(2);
  auto grads = MoeCombineGradOp::create(b, loc, ys.getType(),
                                        withElement(typeOf(weights), b.getF32Type()), ys,
                                        weights, perm, dy[0]);
  d[0] = grads.getGradExpertOutputs();
  d[1] = castTo(b, loc, grads.getGradWeights(), weights.getType());
  return success();
}

LogicalResult balanceLossRule(MoeBalanceLossOp op, OpBuilder &b, ArrayRef<Value> dy,
                              SmallVectorImpl<Value> &d) {
  d[0] = MoeBalanceLossGradOp::create(b, op.getLoc(), op.getScores().getType(), op.getScores(),
                                      op.getIndices(), dy[0], op.getSeqLenAttr());
  return success();
}

LogicalResult crossEntropyRule(CrossEntropyOp op, OpBuilder &b, ArrayRef<Value> dy,
                               SmallVectorImpl<Value> &d) {
  d[0] = CrossEntropyGradOp::create(b, op.getLoc(), op.getLogits().getType(), op.getLogits(),
                                    op.getTargets(), dy[0]);
  return success();
}

LogicalResult softcapCeRule(SoftcapCeOp op, OpBuilder &b, ArrayRef<Value> dy,
                            SmallVectorImpl<Value> &d) {
  Location loc = op.getLoc();
  RankedTensorType wType = op.getWeight().getType();
  auto grads = SoftcapCeGradOp::create(b, loc, op.getHidden().getType(),
                                       withElement(wType, b.getF32Type()), op.getHidden(),
                                       op.getWeight(), op.getTargets(), dy[0], op.getCapAttr());
  d[0] = grads.getGradHidden();
  d[1] = castTo(b, loc, grads.getGradWeight(), wType);
  return success();
}

} // namespace

void mlir::fusion::attachGradientRules(MLIRContext *context) {
  attach<AddOp, addRule>(context);
  attach<SubOp, subRule>(context);
  attach<MulOp, mulRule>(context);
  attach<SiluOp, siluRule>(context);
  attach<SigmoidOp, sigmoidRule>(context);
  attach<SoftplusOp, softplusRule>(context);
  attach<SoftcapOp, softcapRule>(context);
  attach<ExpOp, expRule>(context);
  attach<NegOp, negRule>(context);
  attach<ScaleOp, scaleRule>(context);
  attach<SwigluOp, swigluRule>(context);
  attach<CastOp, castRule>(context);
  attach<ReshapeOp, reshapeRule>(context);
  attach<TransposeOp, transposeRule>(context);
  attach<SliceOp, sliceRule>(context);
  attach<ConcatOp, concatRule>(context);
  attach<BroadcastOp, broadcastRule>(context);
  attach<SumOp, sumRule>(context);
  attach<MatmulOp, matmulRule>(context);
  attach<RmsNormOp, rmsNormRule>(context);
  attach<L2NormOp, l2NormRule>(context);
  attach<EmbeddingOp, embeddingRule>(context);
  attach<RopeOp, ropeRule>(context);
  attach<AttentionOp, attentionRule>(context);
  attach<CausalConv1dOp, conv1dRule>(context);
  attach<GatedDeltaRuleOp, gatedDeltaRule>(context);
  attach<MoeRouteOp, moeRouteRule>(context);
  attach<MoeDispatchOp, moeDispatchRule>(context);
  attach<GroupedMatmulOp, groupedMatmulRule>(context);
  attach<MoeCombineOp, moeCombineRule>(context);
  attach<MoeBalanceLossOp, balanceLossRule>(context);
  attach<CrossEntropyOp, crossEntropyRule>(context);
  attach<SoftcapCeOp, softcapCeRule>(context);
}
