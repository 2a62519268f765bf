//===- Pipeline.cpp - fusionc's compilation phases ------------------------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#include "compiler/Pipeline/Pipeline.h"

#include "dialects/Fusion/IR/FusionDialect.h"
#include "dialects/Plan/IR/PlanOps.h"
#include "passes/Conversion/Passes.h"
#include "passes/Plan/Passes.h"
#include "passes/Training/Passes.h"


using namespace mlir;
using namespace mlir::fusion;

static constexpr Phase kPhases[] = {Phase::Input, Phase::Train, Phase::Plan, Phase::Codegen, Phase::Emit};

llvm::ArrayRef<Phase> mlir::fusion::getAllPhases() { return kPhases; }

llvm::StringRef mlir::fusion::getPhaseName(Phase phase) {
  switch (phase) {
  case Phase::Input:
    return "input";
  case Phase::Train:
    return "train";
  case Phase::Plan:
    return "plan";
  case Phase::Codegen:
    return "codegen";
  case Phase::Emit:
    return "emit";
  }
  llvm_unreachable("unknown phase");
}

std::optional<Phase> mlir::fusion::parsePhase(llvm::StringRef name) {
  for (Phase phase : kPhases)
    if (getPhaseName(phase) == name)
      return phase;
  return std::nullopt;
}

void mlir::fusion::buildPhasePipeline(OpPassManager &pm, Phase phase,
                                      const PipelineOptions &options) {
  switch (phase) {
  case Phase::Input:
  case Phase::Emit:
    // Input is parsed and verified by the driver; Emit is the plan writer.
    return;
  case Phase::Train:
    if (options.train) {
      if (options.fuseSoftcapCe)
        pm.addPass(createFuseSoftcapCePass());
      pm.addPass(createAutodiffPass());
      if (!options.gradientsOnly) {
        pm.addPass(createOptimizerPass());
        if (options.dataParallel > 1)
          pm.addPass(createShardFsdpPass(
              {options.dataParallel, /*ep=*/1, options.fsdpStrategy}));
      }
    }
    return;
  case Phase::Plan: {
    pm.addPass(createLowerToPlanPass());
    if (options.aliasReshapes)
      pm.addPass(plan::createAliasReshapesPass());
    if (options.fuseElementwise)
      pm.addPass(plan::createFuseElementwisePass());
    plan::PlanMemoryPassOptions memory;
    memory.memoryBudget = options.memoryBudget;
    pm.addPass(plan::createPlanMemoryPass(memory));
    if (options.scheduleComm)
      pm.addPass(plan::createScheduleCommPass());
    return;
  }
  case Phase::Codegen:
    if (options.target == Target::Cuda) {
      plan::CodegenCudaPassOptions codegen;
      codegen.blockSize = options.cudaBlockSize;
      pm.addPass(plan::createCodegenCudaPass(codegen));
    }
    return;
  }
}

LogicalResult mlir::fusion::checkPhaseInput(ModuleOp module, Phase phase) {
  // Input and Plan take tensor-level IR (Plan lowers it) or fplan IR given directly.
  if (phase == Phase::Input || phase == Phase::Train || phase == Phase::Plan)
    return success();
  // Past the input phase the module must be fplan IR.
  Operation *tensorOp = nullptr;
  module.walk([&](Operation *op) {
    if (isa<FusionDialect>(op->getDialect())) {
      tensorOp = op;
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (tensorOp)
    return tensorOp->emitError("phase '")
           << getPhaseName(phase) << "' needs fplan IR, but this is a tensor-level '"
           << tensorOp->getName()
           << "' op left after lowering";
  if (module.getOps<plan::ProgramOp>().empty())
    return module.emitError("phase '")
           << getPhaseName(phase) << "' needs at least one fplan.program";
  return success();
}
