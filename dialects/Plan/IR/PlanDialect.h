//===- PlanDialect.h - the fplan dialect ----------------------------------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_DIALECTS_PLAN_IR_PLANDIALECT_H
#define FUSION_DIALECTS_PLAN_IR_PLANDIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialects/Plan/IR/PlanDialect.h.inc"

#endif // FUSION_DIALECTS_PLAN_IR_PLANDIALECT_H
