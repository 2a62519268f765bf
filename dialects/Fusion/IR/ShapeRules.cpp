//===- ShapeRules.cpp - shape rules of the fusion ops ---------------------===//
//
// Part of the FusionLLM compiler.
//
// Each check is tagged with the constraint ID the op's description lists and the invalid
// tests are named after.
//
//===----------------------------------------------------------------------===//

#include "dialects/Fusion/IR/ShapeRules.h"

#include "mlir/IR/Diagnostics.h"
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
