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
