//===- PlanDialect.cpp - the fplan dialect --------------------------------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#include "dialects/Plan/IR/PlanDialect.h"
#include "dialects/Plan/IR/PlanOps.h"

using namespace mlir;
using namespace mlir::fusion::plan;

#include "dialects/Plan/IR/PlanDialect.cpp.inc"

void FPlanDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/Plan/IR/PlanOps.cpp.inc"
      >();
}
