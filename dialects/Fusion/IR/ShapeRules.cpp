//===- ShapeRules.cpp - shape rules of the fusion ops ---------------------===//
//
// Part of the FusionLLM compiler.
//
// Each check is tagged with the constraint ID the op's description lists and the invalid
// tests are named after.
//
//===----------------------------------------------------------------------===//

#include "dialects/Fusion/IR/ShapeRules.h"

#include "dialects/Fusion/IR/FusionOps.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

std::string mlir::fusion::formatShape(ArrayRef<int64_t> shape) {
  std::string text;
  llvm::raw_string_ostream os(text);
  llvm::interleave(shape, os, "x");
  return shape.empty() ? std::string("scalar") : text;
}

LogicalResult mlir::fusion::inferMatmulShape(std::optional<Location> loc,
                                             ArrayRef<int64_t> lhs, ArrayRef<int64_t> rhs,
                                             bool transposeLhs, bool transposeRhs,
                                             SmallVectorImpl<int64_t> &result) {
  // matmul_c1
  if (lhs.size() < 2 || rhs.size() < 2)
    return emitOptionalError(loc, "expects operands of rank >= 2, got lhs ", formatShape(lhs),
                             " and rhs ", formatShape(rhs));
  size_t lr = lhs.size(), rr = rhs.size();
  int64_t m = transposeLhs ? lhs[lr - 1] : lhs[lr - 2];
  int64_t kl = transposeLhs ? lhs[lr - 2] : lhs[lr - 1];
  int64_t kr = transposeRhs ? rhs[rr - 1] : rhs[rr - 2];
  int64_t n = transposeRhs ? rhs[rr - 2] : rhs[rr - 1];
  // matmul_c2
  if (kl != kr)
    return emitOptionalError(loc, "contraction dimensions differ: lhs ", formatShape(lhs),
                             transposeLhs ? " (transposed)" : "", " has k = ", kl, ", rhs ",
                             formatShape(rhs), transposeRhs ? " (transposed)" : "",
                             " has k = ", kr);
  // matmul_c3
  ArrayRef<int64_t> lhsBatch = lhs.drop_back(2), rhsBatch = rhs.drop_back(2);
  if (!rhsBatch.empty() && rhsBatch != lhsBatch)
    return emitOptionalError(loc, "rhs batch dimensions (", formatShape(rhsBatch),
                             ") must be absent or equal lhs batch dimensions (",
                             formatShape(lhsBatch), ")");
  result.assign(lhsBatch.begin(), lhsBatch.end());
  result.push_back(m);
  result.push_back(n);
  return success();
}

LogicalResult mlir::fusion::verifyRmsNormShapes(std::optional<Location> loc,
                                                ArrayRef<int64_t> input,
                                                ArrayRef<int64_t> weight) {
  // rms_norm_c1
  if (input.empty())
    return emitOptionalError(loc, "expects an input of rank >= 1");
  // rms_norm_c2
  if (weight.size() != 1 || weight[0] != input.back())
    return emitOptionalError(loc, "expects a 1-D weight of size ", input.back(),
                             " (the input's last dimension), got ", formatShape(weight));
  return success();
}

LogicalResult mlir::fusion::inferEmbeddingShape(std::optional<Location> loc,
                                                ArrayRef<int64_t> table, ArrayRef<int64_t> ids,
                                                SmallVectorImpl<int64_t> &result) {
  // embedding_c1
  if (table.size() != 2)
    return emitOptionalError(loc, "expects a 2-D table [vocab, dim], got ", formatShape(table));
  result.assign(ids.begin(), ids.end());
  result.push_back(table[1]);
  return success();
}

LogicalResult mlir::fusion::inferAttentionShape(std::optional<Location> loc,
                                                ArrayRef<int64_t> q, ArrayRef<int64_t> k,
                                                ArrayRef<int64_t> v,
                                                SmallVectorImpl<int64_t> &result) {
  // attention_c1
  if (q.size() != 4 || k.size() != 4 || v.size() != 4)
    return emitOptionalError(loc, "expects 4-D q [B, H, T, d_qk], k [B, G, T, d_qk], v [B, G, T, d_v], got ",
                             formatShape(q), ", ", formatShape(k), ", ", formatShape(v));
  // attention_c2
  if (k[0] != q[0] || v[0] != q[0] || k[2] != q[2] || v[2] != q[2])
    return emitOptionalError(loc, "batch and sequence sizes differ: q ", formatShape(q), ", k ",
                             formatShape(k), ", v ", formatShape(v));
  // attention_c3
  if (k[1] != v[1])
    return emitOptionalError(loc, "k has ", k[1], " groups but v has ", v[1]);
  if (k[1] < 1 || q[1] % k[1] != 0)
    return emitOptionalError(loc, "the number of query heads (", q[1],
                             ") must be divisible by the number of key/value groups (", k[1], ")");
  // attention_c4
  if (q[3] != k[3])
    return emitOptionalError(loc, "q head dim (", q[3], ") differs from k head dim (", k[3], ")");
  result.assign({q[0], q[1], q[2], v[3]});
  return success();
}

LogicalResult mlir::fusion::verifyGatedDeltaRuleShapes(
    std::optional<Location> loc, ArrayRef<int64_t> q, ArrayRef<int64_t> k, ArrayRef<int64_t> v,
    ArrayRef<int64_t> g, ArrayRef<int64_t> beta, std::optional<int64_t> chunkSize) {
  // gated_delta_rule_c1
  if (q.size() != 4 || k.size() != 4 || v.size() != 4 || g.size() != 3 || beta.size() != 3)
    return emitOptionalError(loc, "expects q, k [B, T, H_k, d_k], v [B, T, H, d_h], g and beta [B, T, H]");
  // gated_delta_rule_c3
  if (q != k)
    return emitOptionalError(loc, "q (", formatShape(q), ") and k (", formatShape(k),
                             ") must have one shape");
  // gated_delta_rule_c2
  if (v[0] != q[0] || v[1] != q[1])
    return emitOptionalError(loc, "batch and sequence sizes differ: q ", formatShape(q), ", v ",
                             formatShape(v));
  // gated_delta_rule_c4
  if (q[2] < 1 || v[2] % q[2] != 0)
    return emitOptionalError(loc, "the number of key heads (", q[2],
                             ") must divide the number of value heads (", v[2], ")");
  // gated_delta_rule_c5
  SmallVector<int64_t> gate = {v[0], v[1], v[2]};
  if (g != ArrayRef<int64_t>(gate) || beta != ArrayRef<int64_t>(gate))
    return emitOptionalError(loc, "g (", formatShape(g), ") and beta (", formatShape(beta),
                             ") must be [B, T, H] = ", formatShape(gate));
  // gated_delta_rule_c7
  if (chunkSize && *chunkSize != 16 && *chunkSize != 32 && *chunkSize != 64 && *chunkSize != 128)
    return emitOptionalError(loc, "chunk_size must be 16, 32, 64 or 128, got ", *chunkSize);
  return success();
}

LogicalResult mlir::fusion::verifyMoeRouting(std::optional<Location> loc,
                                             const MoeRouting &r) {
  // moe_route_c2
  if (r.numGroups < 1 || r.numExperts % r.numGroups != 0)
    return emitOptionalError(loc, "n_groups (", r.numGroups,
                             ") must divide the number of experts (", r.numExperts, ")");
  int64_t perGroup = r.numExperts / r.numGroups;
  // moe_route_c3
  if (r.groupTopK < 1 || r.groupTopK > perGroup)
    return emitOptionalError(loc, "group_topk (", r.groupTopK, ") must be in [1, ", perGroup,
                             "] (experts per group)");
  // moe_route_c4
  if (r.limitedGroups < 1 || r.limitedGroups > r.numGroups)
    return emitOptionalError(loc, "n_limited_groups (", r.limitedGroups, ") must be in [1, ",
                             r.numGroups, "] (n_groups)");
  // moe_route_c5
  if (r.topK < 1 || r.topK > r.limitedGroups * perGroup)
    return emitOptionalError(loc, "top_k (", r.topK, ") must be in [1, ",
                             r.limitedGroups * perGroup,
                             "] (n_limited_groups x experts per group)");
  return success();
}

/// The parameters named by a stateful op's `state`, which must have the given shapes.
LogicalResult mlir::fusion::verifyStateParameters(Operation *op, SymbolTableCollection &symbols,
                                                  ArrayAttr state,
                                                  ArrayRef<SmallVector<int64_t>> shapes,
                                                  ArrayRef<StringRef> roles,
                                                  StringRef optimizer) {
  if (state.size() != shapes.size())
    return op->emitOpError("expects ") << shapes.size() << " state parameters, got "
                                       << state.size();
  for (auto [i, ref] : llvm::enumerate(state.getAsRange<FlatSymbolRefAttr>())) {
    auto param = symbols.lookupNearestSymbolFrom<ParameterOp>(op, ref);
    if (!param)
      return op->emitOpError("state ") << roles[i] << " " << ref
                                       << " does not name a fusion.parameter";
    if (param.getTensorType().getShape() != ArrayRef<int64_t>(shapes[i]))
      return op->emitOpError("state ")
             << roles[i] << " " << ref << " has shape "
             << formatShape(param.getTensorType().getShape()) << ", expected "
             << formatShape(shapes[i]);
    if (!optimizer.empty() && param.getOptimizer() != optimizer)
      return op->emitOpError("state ") << roles[i] << " " << ref << " must be a '" << optimizer
                                       << "' parameter, got optimizer '"
                                       << param.getOptimizer() << "'";
  }
  return success();
}

LogicalResult mlir::fusion::verifyRope(Operation *op, ArrayRef<int64_t> in, int64_t rotaryDims,
                                       float theta) {
  if (in.size() < 3)
    return op->emitOpError("expects a tensor [B, T, ..., d] of rank >= 3, got ")
           << formatShape(in);
  if (rotaryDims < 2 || rotaryDims % 2 != 0 || rotaryDims > in.back())
    return op->emitOpError("rotary_dims (")
           << rotaryDims << ") must be even, >= 2 and <= the head dim (" << in.back() << ")";
  if (!(theta > 0.0f))
    return op->emitOpError("expects theta > 0, got ") << theta;
  return success();
}
