//===- Gradients.h - the reverse-mode rules of the fusion ops -------------===//
//
// Part of the FusionLLM compiler.
//
// DifferentiableOpInterface (FusionInterfaces.td) and the registration of its rules, one
// per differentiable fusion op (Gradients.cpp). fusion-autodiff drives them.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_DIALECTS_FUSION_IR_GRADIENTS_H
#define FUSION_DIALECTS_FUSION_IR_GRADIENTS_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpDefinition.h"

#include "dialects/Fusion/IR/FusionInterfaces.h.inc"

namespace mlir::fusion {

/// Attaches the gradient rules to the fusion ops of `context` (called when the dialect
/// loads).
void attachGradientRules(MLIRContext *context);

} // namespace mlir::fusion

#endif // FUSION_DIALECTS_FUSION_IR_GRADIENTS_H
