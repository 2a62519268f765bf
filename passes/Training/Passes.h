//===- Passes.h - training passes -----------------------------------------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_PASSES_TRAINING_PASSES_H
#define FUSION_PASSES_TRAINING_PASSES_H

#include "mlir/Pass/Pass.h"

namespace mlir::fusion {

#define GEN_PASS_DECL
#include "passes/Training/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Training/Passes.h.inc"

} // namespace mlir::fusion

#endif // FUSION_PASSES_TRAINING_PASSES_H
