//===- FusionCollectiveOps.cpp - verifiers of the collectives -------------===//
//
// Part of the FusionLLM compiler.
//
// Verifiers of all_reduce, all_gather and reduce_scatter (FusionCollectiveOps.td). The mesh
// axis sizes come from the enclosing module's `fusion.mesh` dictionary.
//
//===----------------------------------------------------------------------===//

#include "dialects/Fusion/IR/FusionOps.h"

#include "mlir/IR/BuiltinOps.h"

using namespace mlir;
using namespace mlir::fusion;

std::optional<int64_t> mlir::fusion::lookupMeshAxis(Operation *op, StringRef axis) {
  auto module = op->getParentOfType<ModuleOp>();
  DictionaryAttr mesh =
      module ? module->getAttrOfType<DictionaryAttr>(kFusionMeshAttrName) : DictionaryAttr();
  if (!mesh) {
    op->emitOpError("runs over mesh axis '")
        << axis << "', but the module has no '" << kFusionMeshAttrName
        << "' attribute (collectives appear only after a partitioning pass)";
    return std::nullopt;
  }
  auto size = mesh.getAs<IntegerAttr>(axis);
  if (!size || size.getInt() < 1) {
    std::string axes;
    for (NamedAttribute entry : mesh)
      axes += (axes.empty() ? "" : ", ") + entry.getName().str();
    op->emitOpError("runs over mesh axis '")
        << axis << "', which the module's mesh does not have (axes: " << axes << ")";
    return std::nullopt;
  }
  return size.getInt();
}

namespace {

/// all_reduce_c2 / reduce_scatter_c2.
LogicalResult verifyReduce(Operation *op, StringRef reduce, Type elementType) {
  if (reduce != "sum" && reduce != "max" && reduce != "avg")
    return op->emitOpError("reduce must be sum, max or avg, got '") << reduce << "'";
  if (reduce == "avg" && isa<IntegerType>(elementType))
    return op->emitOpError("cannot average integer tensors (") << elementType
                                                               << "): use sum or max";
  return success();
}

/// The dimension-0 relation of all_gather_c2 / reduce_scatter_c3: `big` has N times the rows
/// of `small`, all else equal.
LogicalResult verifyConcatShapes(Operation *op, RankedTensorType small, RankedTensorType big,
                                 int64_t ranks, StringRef smallName, StringRef bigName) {
  if (small.getElementType() != big.getElementType())
    return op->emitOpError("input and result element types differ: ")
           << small.getElementType() << " vs " << big.getElementType();
  if (small.getRank() < 1 || small.getRank() != big.getRank())
    return op->emitOpError("needs input and result of one rank ≥ 1, got ")
           << small << " and " << big;
  if (big.getDimSize(0) != ranks * small.getDimSize(0))
    return op->emitOpError("the ")
           << bigName << "'s dimension 0 (" << big.getDimSize(0) << ") must be " << ranks
           << " (the mesh axis size) times the " << smallName << "'s (" << small.getDimSize(0)
           << ")";
  for (int64_t d = 1; d < small.getRank(); ++d)
    if (small.getDimSize(d) != big.getDimSize(d))
      return op->emitOpError("input and result differ in dimension ")
             << d << ": " << small << " vs " << big;
  return success();
}

} // namespace

LogicalResult AllReduceOp::verify() {
  // all_reduce_c1
  if (!lookupMeshAxis(*this, getAxis()))
    return failure();
  // all_reduce_c2
  return verifyReduce(*this, getReduce(), cast<ShapedType>(getInput().getType()).getElementType());
}

LogicalResult AllGatherOp::verify() {
  // all_gather_c1
  std::optional<int64_t> ranks = lookupMeshAxis(*this, getAxis());
  if (!ranks)
    return failure();
  // all_gather_c2
  return verifyConcatShapes(*this, cast<RankedTensorType>(getInput().getType()),
                            cast<RankedTensorType>(getResult().getType()), *ranks,
                            "input", "result");
}

LogicalResult ReduceScatterOp::verify() {
  // reduce_scatter_c1
  std::optional<int64_t> ranks = lookupMeshAxis(*this, getAxis());
  if (!ranks)
    return failure();
  // reduce_scatter_c2
  if (failed(verifyReduce(*this, getReduce(), cast<ShapedType>(getInput().getType()).getElementType())))
    return failure();
  // reduce_scatter_c3
  return verifyConcatShapes(*this, cast<RankedTensorType>(getResult().getType()),
                            cast<RankedTensorType>(getInput().getType()), *ranks,
                            "result", "input");
}
