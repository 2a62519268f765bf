//===- FusionDialect.cpp - the fusion dialect -----------------------------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#include "dialects/Fusion/IR/FusionDialect.h"
#include "dialects/Fusion/IR/FusionOps.h"
#include "dialects/Fusion/IR/Gradients.h"

using namespace mlir;
using namespace mlir::fusion;

#include "dialects/Fusion/IR/FusionDialect.cpp.inc"

void FusionDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/Fusion/IR/FusionOps.cpp.inc"
      >();
  attachGradientRules(getContext());
}
