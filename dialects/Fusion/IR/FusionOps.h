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

#endif // FUSION_DIALECTS_FUSION_IR_FUSIONOPS_H
