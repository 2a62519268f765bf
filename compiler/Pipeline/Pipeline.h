//===- Pipeline.h - fusionc's compilation phases --------------------------===//
//
// Part of the FusionLLM compiler.
//
// The phase enum and the pass pipeline of each phase. Pass order lives here and nowhere
// else; fusionc runs the phases in order, stopping at --compile-to.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_COMPILER_PIPELINE_PIPELINE_H
#define FUSION_COMPILER_PIPELINE_PIPELINE_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringRef.h"

#include <optional>
#include <string>

namespace mlir::fusion {

/// Compilation phases, in order. Each ends at a point worth inspecting.
enum class Phase {
  Input,   ///< parsed and verified input (fusion IR, or fplan IR given directly)
  Train,   ///< with PipelineOptions::train: fused head, backward pass, optimizer step
  Plan,    ///< fplan IR: buffers, kernels, programs
  Codegen, ///< kernels carry device code (--target=cuda)
  Emit,    ///< the plan file
};

/// Phase names as used by --compile-to and the dump files.
llvm::StringRef getPhaseName(Phase phase);
std::optional<Phase> parsePhase(llvm::StringRef name);
llvm::ArrayRef<Phase> getAllPhases();

enum class Target { Cpu, Cuda };

/// Options of the whole pipeline (every one reachable from fusionc).
struct PipelineOptions {
  Target target = Target::Cpu;
  int64_t cudaBlockSize = 256;
  /// Bytes all arenas may use together (0 = no limit).
  int64_t memoryBudget = 0;
  /// Build the training step (train_step, eval_step) from @forward.
  bool train = false;
  /// With `train`: stop after the backward pass (programs forward + forward_grad, whose
  /// outputs include every parameter gradient; for gradient checks).
  bool gradientsOnly = false;
  /// Fuse the softcapped heads with their cross-entropy (fusion-fuse-softcap-ce).
  bool fuseSoftcapCe = true;
  /// With `train`: data-parallel ranks (mesh axis dp; fusion-shard-fsdp when > 1).
  int64_t dataParallel = 1;
  /// fsdp_shard_strategy for fusion-shard-fsdp: no_shard, full_shard or shard_grad_op.
  std::string fsdpStrategy = "no_shard";
  /// Run collectives on their own stream (fplan-schedule-comm, after fusion-plan-memory).
  bool scheduleComm = true;
  /// fplan-alias-reshapes: reshape copies that can share their input's bytes become views.
  bool aliasReshapes = true;
  /// fplan-fuse-elementwise: chains of elementwise launches become fused_elementwise launches.
  bool fuseElementwise = true;
};

/// Adds the passes of `phase` to `pm`. A phase may add none (its work is a check or the
/// writer).
void buildPhasePipeline(OpPassManager &pm, Phase phase, const PipelineOptions &options);

/// Checks that `module` is ready for `phase`: fplan phases need every fusion op lowered.
/// Emits a located error otherwise.
LogicalResult checkPhaseInput(ModuleOp module, Phase phase);

} // namespace mlir::fusion

#endif // FUSION_COMPILER_PIPELINE_PIPELINE_H
