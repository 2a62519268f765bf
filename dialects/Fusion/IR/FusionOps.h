//===- FusionOps.h - fusion dialect ops -----------------------------------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_DIALECTS_FUSION_IR_FUSIONOPS_H
#define FUSION_DIALECTS_FUSION_IR_FUSIONOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/Fusion/IR/FusionDialect.h"

#define GET_OP_CLASSES
#include "dialects/Fusion/IR/FusionOps.h.inc"

namespace mlir::fusion {

/// The module attribute that records the device mesh, `{dp = D, ep = E}`: set by the
/// partitioning passes, read by the collectives' verifiers and fusion-lower-to-plan.
inline constexpr llvm::StringLiteral kFusionMeshAttrName = "fusion.mesh";

/// The size of mesh axis `axis` of the module around `op`, or nullopt (with an error on
/// `op` naming the axis, or the missing mesh) when there is none.
std::optional<int64_t> lookupMeshAxis(Operation *op, llvm::StringRef axis);

} // namespace mlir::fusion

#endif // FUSION_DIALECTS_FUSION_IR_FUSIONOPS_H
