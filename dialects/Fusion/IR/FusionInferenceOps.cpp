//===- FusionInferenceOps.cpp - verifiers of the decoding ops -------------===//
//
// Part of the FusionLLM compiler.
//
// Verifiers of the incremental-decoding ops (FusionInferenceOps.td). Where an op continues
// a training op (rope_at ↔ rope, gated_delta_step ↔ gated_delta_rule), the shared shape
// rules come from ShapeRules.cpp; the cache parameters are checked in verifySymbolUses.
//
//===----------------------------------------------------------------------===//

#include "dialects/Fusion/IR/FusionOps.h"
#include "dialects/Fusion/IR/ShapeRules.h"

#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace mlir::fusion;

namespace {

ArrayRef<int64_t> shapeOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

/// The position operand is i32 [1] (the element type is enforced by the operand constraint).
LogicalResult verifyPosition(Operation *op, Value position) {
  if (shapeOf(position) != ArrayRef<int64_t>{1})
    return op->emitOpError("position must be tensor<1xi32>, got ") << position.getType();
  return success();
}

} // namespace

LogicalResult RopeAtOp::verify() {
  // rope_at_c1..c3 (rope_c1..c3)
  if (failed(verifyRope(*this, shapeOf(getInput()), getRotaryDims(),
                        getTheta().convertToFloat())))
    return failure();
  // rope_at_c4
  return verifyPosition(*this, getPosition());
}

LogicalResult KvCacheAttentionOp::verify() {
  ArrayRef<int64_t> q = shapeOf(getQuery()), k = shapeOf(getKey()), v = shapeOf(getValue());
  // kv_cache_attention_c1
  if (q.size() != 4 || k.size() != 4 || v.size() != 4)
    return emitOpError("expects q [B, H, S, d_qk], k [B, G, S, d_qk], v [B, G, S, d_v], got ")
           << formatShape(q) << ", " << formatShape(k) << ", " << formatShape(v);
  if (k[0] != q[0] || v[0] != q[0] || k[2] != q[2] || v[2] != q[2])
    return emitOpError("batch and new-token sizes differ: q ")
           << formatShape(q) << ", k " << formatShape(k) << ", v " << formatShape(v);
  // kv_cache_attention_c2
  if (k[1] != v[1] || k[1] < 1 || q[1] % k[1] != 0)
    return emitOpError("k and v must have one number of groups G dividing the ")
           << q[1] << " query heads, got k " << formatShape(k) << ", v " << formatShape(v);
  if (k[3] != q[3])
    return emitOpError("q and k head dims differ: ") << q[3] << " vs " << k[3];
  // kv_cache_attention_c3
  auto result = cast<RankedTensorType>(getResult().getType());
  SmallVector<int64_t> expected = {q[0], q[1], q[2], v[3]};
  if (result.getShape() != ArrayRef<int64_t>(expected) ||
      result.getElementType() != cast<RankedTensorType>(getQuery().getType()).getElementType())
    return emitOpError("result must be ")
           << formatShape(expected) << " of q's element type, got " << result;
  // kv_cache_attention_c4
  if (failed(verifyPosition(*this, getPosition())))
    return failure();
  // kv_cache_attention_c5
  if (getWindow() < 0)
    return emitOpError("expects window >= 0, got ") << getWindow();
  if (!(getScale().convertToFloat() > 0.0f))
    return emitOpError("expects scale > 0, got ") << getScale().convertToFloat();
  return success();
}

LogicalResult KvCacheAttentionOp::verifySymbolUses(SymbolTableCollection &symbols) {
  // kv_cache_attention_c6
  ArrayRef<int64_t> k = shapeOf(getKey()), v = shapeOf(getValue());
  auto state = getState();
  if (state.size() != 2)
    return emitOpError("expects 2 state parameters [@K, @V], got ") << state.size();
  auto first = symbols.lookupNearestSymbolFrom<ParameterOp>(*this,
                                                            cast<FlatSymbolRefAttr>(state[0]));
  if (!first || first.getTensorType().getRank() != 4)
    return emitOpError("state K ") << state[0] << " must name a 4-D cache parameter";
  int64_t cacheLen = first.getTensorType().getShape()[2];
  if (cacheLen < k[2])
    return emitOpError("the cache holds ") << cacheLen << " positions, fewer than the " << k[2]
                                           << " new tokens";
  return verifyStateParameters(*this, symbols, state,
                               {{k[0], k[1], cacheLen, k[3]}, {v[0], v[1], cacheLen, v[3]}},
                               {"K", "V"}, "cache");
}

LogicalResult CausalConv1dStepOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getInput()), w = shapeOf(getWeight());
  // causal_conv1d_step_c1
  if (x.size() != 3 || w.size() != 2)
    return emitOpError("expects x [B, S, C] and w [C, K], got ")
           << formatShape(x) << " and " << formatShape(w);
  if (w[0] != x[2])
    return emitOpError("w has ") << w[0] << " channels, x has " << x[2];
  if (w[1] < 2)
    return emitOpError("needs K >= 2 taps (a K = 1 convolution keeps no state), got ") << w[1];
  // causal_conv1d_step_c2
  if (getResult().getType() != getInput().getType())
    return emitOpError("result type ") << getResult().getType() << " must equal the input type "
                                       << getInput().getType();
  return success();
}

LogicalResult CausalConv1dStepOp::verifySymbolUses(SymbolTableCollection &symbols) {
  // causal_conv1d_step_c3
  ArrayRef<int64_t> x = shapeOf(getInput()), w = shapeOf(getWeight());
  return verifyStateParameters(*this, symbols, getState(), {{x[0], w[1] - 1, x[2]}}, {"tail"},
                               "cache");
}

LogicalResult GatedDeltaStepOp::verify() {
  // gated_delta_step_c1..c5
  if (failed(verifyGatedDeltaRuleShapes(getLoc(), shapeOf(getQuery()), shapeOf(getKey()),
                                        shapeOf(getValue()), shapeOf(getLogDecay()),
                                        shapeOf(getBeta()), std::nullopt)))
    return failure();
  // gated_delta_step_c6
  if (getResult().getType() != getValue().getType())
    return emitOpError("result type ") << getResult().getType() << " must equal v's type "
                                       << getValue().getType();
  return success();
}

LogicalResult GatedDeltaStepOp::verifySymbolUses(SymbolTableCollection &symbols) {
  // gated_delta_step_c7
  ArrayRef<int64_t> q = shapeOf(getQuery()), v = shapeOf(getValue());
  return verifyStateParameters(*this, symbols, getState(), {{v[0], v[2], q[3], v[3]}}, {"Hs"},
                               "cache");
}
