//===- Passes.h - fusion -> fplan conversion ------------------------------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_PASSES_CONVERSION_PASSES_H
#define FUSION_PASSES_CONVERSION_PASSES_H

#include "dialects/Plan/IR/PlanDialect.h"
#include "mlir/Pass/Pass.h"

namespace mlir::fusion {

#define GEN_PASS_DECL
#include "passes/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Conversion/Passes.h.inc"

} // namespace mlir::fusion

#endif // FUSION_PASSES_CONVERSION_PASSES_H
