//===- Passes.h - fplan passes --------------------------------------------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_PASSES_PLAN_PASSES_H
#define FUSION_PASSES_PLAN_PASSES_H

#include "dialects/Plan/IR/PlanDialect.h"
#include "mlir/Pass/Pass.h"

namespace mlir::fusion::plan {

#define GEN_PASS_DECL
#include "passes/Plan/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Plan/Passes.h.inc"

} // namespace mlir::fusion::plan

#endif // FUSION_PASSES_PLAN_PASSES_H
