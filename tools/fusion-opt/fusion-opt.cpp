//===- fusion-opt.cpp - mlir-opt with the FusionLLM dialects and passes ---===//
//
// Part of the FusionLLM compiler.
//
// Every fusion/fplan dialect and pass is registered here, so each pass can be run and
// tested alone (lit + FileCheck), as mlir-opt does for upstream passes.
//
//===----------------------------------------------------------------------===//

#include "dialects/Fusion/IR/FusionDialect.h"
#include "dialects/Plan/IR/PlanDialect.h"
#include "passes/Conversion/Passes.h"
#include "passes/Plan/Passes.h"
#include "passes/Training/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<mlir::fusion::FusionDialect, mlir::fusion::plan::FPlanDialect,
                  mlir::func::FuncDialect>();
  mlir::fusion::plan::registerFPlanPasses();
  mlir::fusion::registerFusionConversionPasses();
  mlir::fusion::registerFusionTrainingPasses();
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  mlir::registerSymbolDCEPass();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "FusionLLM optimizer driver\n", registry));
}
