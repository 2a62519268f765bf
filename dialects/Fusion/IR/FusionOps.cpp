//===- FusionOps.cpp - fusion dialect ops ---------------------------------===//
//
// Part of the FusionLLM compiler.
//
// Verifiers of the fusion ops. Shape rules are delegated to ShapeRules.cpp; what stays here
// relates the inferred shapes to the declared result types.
//
//===----------------------------------------------------------------------===//

#include "dialects/Fusion/IR/FusionOps.h"
#include "dialects/Fusion/IR/ShapeRules.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace mlir::fusion;

#define GET_OP_CLASSES
#include "dialects/Fusion/IR/FusionOps.cpp.inc"

/// Checks that `result` has shape `expected` (the given constraint ID's rule).
static LogicalResult verifyResultShape(Operation *op, RankedTensorType result,
                                       ArrayRef<int64_t> expected) {
  if (result.getShape() != expected)
    return op->emitOpError("result shape ")
           << formatShape(result.getShape()) << " does not match the inferred shape "
           << formatShape(expected);
  return success();
}

/// Checks that the element types of `a` and `b` agree.
static LogicalResult verifySameElementType(Operation *op, StringRef aName, Type a,
                                           StringRef bName, Type b) {
  Type ea = cast<ShapedType>(a).getElementType(), eb = cast<ShapedType>(b).getElementType();
  if (ea != eb)
    return op->emitOpError() << "element types differ: " << aName << " has " << ea << ", "
                             << bName << " has " << eb;
  return success();
}

//===----------------------------------------------------------------------===//
// MatmulOp
//===----------------------------------------------------------------------===//

LogicalResult MatmulOp::verify() {
  SmallVector<int64_t> shape;
  if (failed(inferMatmulShape(getLoc(), getLhs().getType().getShape(),
                              getRhs().getType().getShape(), getTransposeA(), getTransposeB(),
                              shape)))
    return failure();
  // matmul_c5
  if (failed(verifySameElementType(*this, "lhs", getLhs().getType(), "rhs",
                                   getRhs().getType())) ||
      failed(verifySameElementType(*this, "lhs", getLhs().getType(), "result",
                                   getResult().getType())))
    return failure();
  // matmul_c4
  return verifyResultShape(*this, getResult().getType(), shape);
}

//===----------------------------------------------------------------------===//
// RmsNormOp
//===----------------------------------------------------------------------===//

LogicalResult RmsNormOp::verify() {
  if (failed(verifyRmsNormShapes(getLoc(), getInput().getType().getShape(),
                                 getWeight().getType().getShape())))
    return failure();
  // rms_norm_c5
  if (failed(verifySameElementType(*this, "input", getInput().getType(), "weight",
                                   getWeight().getType())))
    return failure();
  // rms_norm_c3
  if (getResult().getType() != getInput().getType())
    return emitOpError("result type ") << getResult().getType()
                                       << " must equal the input type " << getInput().getType();
  // rms_norm_c4
  if (!(getEps().convertToFloat() > 0.0f))
    return emitOpError("expects eps > 0, got ") << getEps().convertToFloat();
  return success();
}

//===----------------------------------------------------------------------===//
// EmbeddingOp
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  SmallVector<int64_t> shape;
  if (failed(inferEmbeddingShape(getLoc(), getTable().getType().getShape(),
                                 getIds().getType().getShape(), shape)))
    return failure();
  // embedding_c3
  if (failed(verifySameElementType(*this, "table", getTable().getType(), "result",
                                   getResult().getType())))
    return failure();
  // embedding_c2
  return verifyResultShape(*this, getResult().getType(), shape);
}

/// Shape of a ranked tensor value.
static ArrayRef<int64_t> shapeOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

//===----------------------------------------------------------------------===//
// SoftcapOp, L2NormOp
//===----------------------------------------------------------------------===//

LogicalResult SoftcapOp::verify() {
  // softcap_c1
  if (!(getCap().convertToFloat() > 0.0f))
    return emitOpError("expects cap > 0, got ") << getCap().convertToFloat();
  return success();
}

LogicalResult L2NormOp::verify() {
  // l2_norm_c1
  if (!(getEps().convertToFloat() > 0.0f))
    return emitOpError("expects eps > 0, got ") << getEps().convertToFloat();
  return success();
}

//===----------------------------------------------------------------------===//
// Layout ops
//===----------------------------------------------------------------------===//

LogicalResult ReshapeOp::verify() {
  auto in = getInput().getType(), out = getResult().getType();
  // reshape_c1
  if (in.getNumElements() != out.getNumElements())
    return emitOpError("cannot reshape ")
           << formatShape(in.getShape()) << " (" << in.getNumElements() << " elements) to "
           << formatShape(out.getShape()) << " (" << out.getNumElements() << " elements)";
  // reshape_c2
  return verifySameElementType(*this, "input", in, "result", out);
}

LogicalResult TransposeOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput()), perm = getPerm();
  // transpose_c1
  SmallVector<bool> seen(in.size(), false);
  bool valid = perm.size() == in.size();
  for (int64_t p : perm) {
    valid = valid && p >= 0 && p < int64_t(in.size()) && !seen[p];
    if (valid)
      seen[p] = true;
  }
  if (!valid) {
    InFlightDiagnostic diag = emitOpError("perm [");
    llvm::interleaveComma(perm, diag);
    return diag << "] is not a permutation of the " << in.size() << " input dimensions";
  }
  // transpose_c2
  SmallVector<int64_t> expected;
  for (int64_t p : perm)
    expected.push_back(in[p]);
  if (failed(verifySameElementType(*this, "input", getInput().getType(), "result",
                                   getResult().getType())))
    return failure();
  return verifyResultShape(*this, getResult().getType(), expected);
}

LogicalResult SliceOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput());
  int64_t dim = getDim(), start = getStart(), size = getSize();
  // slice_c1
  if (dim < 0 || dim >= int64_t(in.size()))
    return emitOpError("dim ") << dim << " is out of range for rank " << in.size();
  // slice_c2
  if (start < 0 || size < 1 || start > in[dim] - size)
    return emitOpError("slice [") << start << ", " << start + size << ") is out of range for "
                                  << "dimension " << dim << " of size " << in[dim];
  // slice_c3
  SmallVector<int64_t> expected(in);
  expected[dim] = size;
  if (failed(verifySameElementType(*this, "input", getInput().getType(), "result",
                                   getResult().getType())))
    return failure();
  return verifyResultShape(*this, getResult().getType(), expected);
}

LogicalResult ConcatOp::verify() {
  // concat_c1
  if (getInputs().empty())
    return emitOpError("expects at least one input");
  ArrayRef<int64_t> first = shapeOf(getInputs().front());
  int64_t dim = getDim();
  // concat_c2
  if (dim < 0 || dim >= int64_t(first.size()))
    return emitOpError("dim ") << dim << " is out of range for rank " << first.size();
  SmallVector<int64_t> expected(first);
  expected[dim] = 0;
  for (auto [i, input] : llvm::enumerate(getInputs())) {
    ArrayRef<int64_t> shape = shapeOf(input);
    if (shape.size() != first.size() ||
        failed(verifySameElementType(*this, "input 0", getInputs().front().getType(),
                                     "input " + std::to_string(i), input.getType())))
      return emitOpError("input ") << i << " (" << formatShape(shape)
                                   << ") differs in rank or element type from input 0";
    // concat_c3
    for (size_t d = 0; d < shape.size(); ++d)
      if (int64_t(d) != dim && shape[d] != first[d])
        return emitOpError("input ") << i << " has shape " << formatShape(shape)
                                     << ", input 0 has " << formatShape(first)
                                     << ": only dimension " << dim << " may differ";
    expected[dim] += shape[dim];
  }
  // concat_c4
  return verifyResultShape(*this, getResult().getType(), expected);
}

LogicalResult BroadcastOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput()), out = shapeOf(getResult()), dims = getDims();
  // broadcast_c1
  if (dims.size() != in.size())
    return emitOpError("expects one entry in dims per input dimension (") << in.size()
                                                                          << "), got "
                                                                          << dims.size();
  for (size_t j = 0; j < dims.size(); ++j) {
    if (dims[j] < 0 || dims[j] >= int64_t(out.size()) || (j > 0 && dims[j] <= dims[j - 1]))
      return emitOpError("dims must be strictly increasing result dimensions, got ")
             << dims[j] << " at position " << j;
    // broadcast_c2
    if (out[dims[j]] != in[j])
      return emitOpError("input dimension ")
             << j << " (size " << in[j] << ") maps to result dimension " << dims[j]
             << " of size " << out[dims[j]];
  }
  // broadcast_c3
  return verifySameElementType(*this, "input", getInput().getType(), "result",
                               getResult().getType());
}

LogicalResult SumOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput()), dims = getDims();
  SmallVector<int64_t> expected;
  size_t next = 0;
  for (size_t d = 0; d < in.size(); ++d) {
    if (next < dims.size() && dims[next] == int64_t(d)) {
      ++next;
      continue;
    }
    expected.push_back(in[d]);
  }
  // sum_c1
  if (next != dims.size())
    return emitOpError("dims must be strictly increasing and below the rank (")
           << in.size() << ")";
  // sum_c2
  return verifyResultShape(*this, getResult().getType(), expected);
}

//===----------------------------------------------------------------------===//
// Model blocks
//===----------------------------------------------------------------------===//

LogicalResult RopeOp::verify() {
  // rope_c1..c3
  return verifyRope(*this, shapeOf(getInput()), getRotaryDims(), getTheta().convertToFloat());
}

LogicalResult AttentionOp::verify() {
  SmallVector<int64_t> shape;
  if (failed(inferAttentionShape(getLoc(), shapeOf(getQuery()), shapeOf(getKey()),
                                 shapeOf(getValue()), shape)))
    return failure();
  // attention_c6
  if (getWindow() < 0)
    return emitOpError("expects window >= 0, got ") << getWindow();
  if (getWindow() > 0 && !getCausal())
    return emitOpError("a sliding window (") << getWindow() << ") needs causal attention";
  // attention_c7
  if (!(getScale().convertToFloat() > 0.0f))
    return emitOpError("expects scale > 0, got ") << getScale().convertToFloat();
  // attention_c5
  return verifyResultShape(*this, getResult().getType(), shape);
}

LogicalResult CausalConv1dOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getInput()), w = shapeOf(getWeight());
  // causal_conv1d_c1
  if (x.size() != 3 || w.size() != 2)
    return emitOpError("expects x [B, T, C] and w [C, K], got ")
           << formatShape(x) << " and " << formatShape(w);
  // causal_conv1d_c2
  if (w[0] != x[2])
    return emitOpError("w has ") << w[0] << " channels, x has " << x[2];
  // causal_conv1d_c3
  if (getResult().getType() != getInput().getType())
    return emitOpError("result type ") << getResult().getType() << " must equal the input type "
                                       << getInput().getType();
  return success();
}

LogicalResult GatedDeltaRuleOp::verify() {
  if (failed(verifyGatedDeltaRuleShapes(getLoc(), shapeOf(getQuery()), shapeOf(getKey()),
                                        shapeOf(getValue()), shapeOf(getLogDecay()),
                                        shapeOf(getBeta()), getChunkSize())))
    return failure();
  // gated_delta_rule_c6
  return verifyResultShape(*this, getResult().getType(), shapeOf(getValue()));
}

//===----------------------------------------------------------------------===//
// MoE
//===----------------------------------------------------------------------===//

LogicalResult MoeRouteOp::verify() {
  ArrayRef<int64_t> logits = shapeOf(getLogits()), bias = shapeOf(getBias());
  // moe_route_c1
  if (logits.size() != 2 || bias.size() != 1 || bias[0] != logits[1])
    return emitOpError("expects logits [N, E] and bias [E], got ")
           << formatShape(logits) << " and " << formatShape(bias);
  MoeRouting routing{logits[1], getTopK(), getNGroups(), getNLimitedGroups(), getGroupTopk()};
  if (failed(verifyMoeRouting(getLoc(), routing)))
    return failure();
  // moe_route_c7
  if (!(getRouteScale().convertToFloat() > 0.0f))
    return emitOpError("expects route_scale > 0, got ") << getRouteScale().convertToFloat();
  // moe_route_c6
  SmallVector<int64_t> selection = {logits[0], getTopK()};
  if (failed(verifyResultShape(*this, getWeights().getType(), selection)) ||
      failed(verifyResultShape(*this, getIndices().getType(), selection)))
    return failure();
  return verifyResultShape(*this, getScores().getType(), logits);
}

LogicalResult MoeDispatchOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getInput()), idx = shapeOf(getIndices());
  // moe_dispatch_c1
  if (x.size() != 2 || idx.size() != 2 || idx[0] != x[0])
    return emitOpError("expects x [N, D] and indices [N, K], got ")
           << formatShape(x) << " and " << formatShape(idx);
  // moe_dispatch_c2
  if (getNumExperts() < 1)
    return emitOpError("expects num_experts >= 1, got ") << getNumExperts();
  int64_t rows = x[0] * idx[1];
  if (failed(verifyResultShape(*this, getResult().getType(), {rows, x[1]})) ||
      failed(verifyResultShape(*this, getGroupSizes().getType(), {getNumExperts()})) ||
      failed(verifyResultShape(*this, getPermutation().getType(), {rows})))
    return failure();
  return verifySameElementType(*this, "input", getInput().getType(), "result",
                               getResult().getType());
}

LogicalResult GroupedMatmulOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getInput()), w = shapeOf(getWeight()),
                    sizes = shapeOf(getGroupSizes());
  // grouped_matmul_c1
  if (x.size() != 2 || w.size() != 3 || sizes.size() != 1 || sizes[0] != w[0])
    return emitOpError("expects x [M, D_in], weight [E, D_out, D_in], group_sizes [E], got ")
           << formatShape(x) << ", " << formatShape(w) << ", " << formatShape(sizes);
  // grouped_matmul_c2
  if (w[2] != x[1])
    return emitOpError("weight D_in (") << w[2] << ") differs from x's (" << x[1] << ")";
  // grouped_matmul_c3
  if (failed(verifySameElementType(*this, "input", getInput().getType(), "weight",
                                   getWeight().getType())) ||
      failed(verifySameElementType(*this, "input", getInput().getType(), "result",
                                   getResult().getType())))
    return failure();
  return verifyResultShape(*this, getResult().getType(), {x[0], w[1]});
}

LogicalResult MoeCombineOp::verify() {
  ArrayRef<int64_t> ys = shapeOf(getInput()), w = shapeOf(getWeights()),
                    perm = shapeOf(getPermutation());
  // moe_combine_c1
  if (ys.size() != 2 || w.size() != 2 || perm.size() != 1 || ys[0] != w[0] * w[1] ||
      perm[0] != ys[0])
    return emitOpError("expects ys [N*K, D], weights [N, K], permutation [N*K], got ")
           << formatShape(ys) << ", " << formatShape(w) << ", " << formatShape(perm);
  // moe_combine_c2
  if (failed(verifySameElementType(*this, "input", getInput().getType(), "result",
                                   getResult().getType())))
    return failure();
  return verifyResultShape(*this, getResult().getType(), {w[0], ys[1]});
}

LogicalResult MoeBalanceLossOp::verify() {
  ArrayRef<int64_t> s = shapeOf(getScores()), idx = shapeOf(getIndices());
  // moe_balance_loss_c1
  if (s.size() != 2 || idx.size() != 2 || s[0] != idx[0])
    return emitOpError("expects scores [N, E] and indices [N, K], got ")
           << formatShape(s) << " and " << formatShape(idx);
  // moe_balance_loss_c2
  if (getSeqLen() < 1 || s[0] % getSeqLen() != 0)
    return emitOpError("seq_len (") << getSeqLen() << ") must divide the token count ("
                                    << s[0] << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// CrossEntropyOp
//===----------------------------------------------------------------------===//

LogicalResult CrossEntropyOp::verify() {
  ArrayRef<int64_t> z = shapeOf(getLogits()), y = shapeOf(getTargets());
  // cross_entropy_c1
  if (z.size() != 2 || y.size() != 1 || y[0] != z[0])
    return emitOpError("expects logits [N, V] and targets [N], got ")
           << formatShape(z) << " and " << formatShape(y);
  // cross_entropy_c2
  return verifyResultShape(*this, getResult().getType(), {z[0]});
}

//===----------------------------------------------------------------------===//
// ParameterOp, LoadOp
//===----------------------------------------------------------------------===//

LogicalResult ParameterOp::verify() {
  StringRef init = getInit();
  bool needsStd = init == "normal" || init == "trunc_normal";
  bool needsRange = init == "uniform" || init == "log_uniform" || init == "dt_bias";
  // parameter_c1
  if (!needsStd && !needsRange && init != "zeros" && init != "ones")
    return emitOpError("unknown init '")
           << init << "'; rules: zeros, ones, normal, trunc_normal, uniform, log_uniform, dt_bias";
  if (needsStd && !getStd())
    return emitOpError("init '") << init << "' needs 'std'";
  if (needsRange && (!getLow() || !getHigh()))
    return emitOpError("init '") << init << "' needs 'low' and 'high'";
  // parameter_c2
  if (needsStd && !(getStdAttr().getValueAsDouble() > 0.0))
    return emitOpError("expects std > 0, got ") << getStdAttr().getValueAsDouble();
  if (needsRange && !(getLowAttr().getValueAsDouble() < getHighAttr().getValueAsDouble()))
    return emitOpError("expects low < high, got [") << getLowAttr().getValueAsDouble() << ", " << getHighAttr().getValueAsDouble() << ")";
  if ((init == "log_uniform" || init == "dt_bias") && !(getLowAttr().getValueAsDouble() > 0.0))
    return emitOpError("init '") << init << "' needs low > 0, got " << getLowAttr().getValueAsDouble();
  // parameter_c3
  StringRef opt = getOptimizer();
  if (opt != "normuon" && opt != "adamw" && opt != "none" && opt != "state" && opt != "cache")
    return emitOpError("unknown optimizer '")
           << opt << "'; optimizers: normuon, adamw, none, state, cache";
  if (opt == "cache" && init != "zeros")
    return emitOpError("cache parameters start at zero (init 'zeros'), got init '") << init << "'";
  if (opt == "normuon" && getTensorType().getRank() < 2)
    return emitOpError("normuon needs a matrix (rank >= 2), got ")
           << formatShape(getTensorType().getShape());
  // parameter_c4
  if (!getTensorType().getElementType().isF32())
    return emitOpError("parameters are stored in f32, got ") << getTensorType().getElementType();
  return success();
}

LogicalResult LoadOp::verifySymbolUses(SymbolTableCollection &symbols) {
  // load_c1
  auto param = symbols.lookupNearestSymbolFrom<ParameterOp>(*this, getNameAttr());
  if (!param)
    return emitOpError("'") << getName() << "' does not name a fusion.parameter";
  // load_c2
  if (param.getType() != getResult().getType())
    return emitOpError("result type ") << getResult().getType() << " differs from parameter '"
                                       << getName() << "' of type " << param.getType();
  return success();
}
