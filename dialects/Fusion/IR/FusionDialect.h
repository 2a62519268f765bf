//===- FusionDialect.h - the fusion dialect -------------------------------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_DIALECTS_FUSION_IR_FUSIONDIALECT_H
#define FUSION_DIALECTS_FUSION_IR_FUSIONDIALECT_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Dialect.h"

#include "dialects/Fusion/IR/FusionDialect.h.inc"

#endif // FUSION_DIALECTS_FUSION_IR_FUSIONDIALECT_H
