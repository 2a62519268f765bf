//===- PlanWriter.h - fplan IR to a .fplan file ---------------------------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_COMPILER_TARGET_FLATBUFFER_PLANWRITER_H
#define FUSION_COMPILER_TARGET_FLATBUFFER_PLANWRITER_H

#include "compiler/Target/CUDA/Nvcc.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace mlir::fusion {

/// Schema version this compiler writes (runtime/include/fusion/rt/plan.h reads the same).
inline constexpr uint32_t kPlanSchemaVersion = 2;

struct PlanWriterOptions {
  /// Compile every kernel's CUDA source with nvcc and embed the cubins.
  bool embedCubins = false;
  /// Architectures to compile for, in the order the runtime tries them.
  std::vector<std::string> archs = {"sm_90a", "sm_80"};
  cuda::NvccOptions nvcc;
  /// Write each kernel's CUDA source to <dir>/<kernel>.cu (empty = don't).
  std::string kernelDumpDir;
  /// Store the fplan IR text in the plan.
  bool embedSourceMlir = false;
  std::string compilerVersion = "fusionc";
  /// Schema version written into the plan (only tests write another).
  uint32_t schemaVersion = kPlanSchemaVersion;
};

/// Serialises a verified fplan module. Emits located errors on the module's ops and fails
/// for anything the schema cannot hold.
LogicalResult writePlan(ModuleOp module, const PlanWriterOptions &options,
                        llvm::raw_ostream &os, cuda::NvccStats &stats);

} // namespace mlir::fusion

#endif // FUSION_COMPILER_TARGET_FLATBUFFER_PLANWRITER_H
