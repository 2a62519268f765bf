//===- KernelSource.h - CUDA C++ for plan kernels -------------------------===//
//
// Part of the FusionLLM compiler.
//
// Emits CUDA C++ from a kernel's portable description (kind + params) specialised to one
// element type, and the launch geometry that goes with it. The ABI every generated kernel
// follows: one pointer per launch buffer (inputs, then outputs), then the launch's integer
// arguments as int64_t.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_COMPILER_TARGET_CUDA_KERNELSOURCE_H
#define FUSION_COMPILER_TARGET_CUDA_KERNELSOURCE_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <array>
#include <string>

namespace mlir::fusion::cuda {

/// Storage element type of a kernel's buffers.
enum class ElementType { F32, BF16, F16 };

/// What the generator needs to know about one kernel.
struct KernelDesc {
  std::string name;       ///< symbol of the fplan.kernel; the entry is "fusion_" + name
  std::string kind;       ///< a kind canGenerate accepts
  ElementType elementType = ElementType::F32;
  double value = 0, step = 0; ///< fill parameters
  double eps = 1e-6;          ///< rms_norm epsilon
  double factor = 1;          ///< scale factor
  double cap = 1;             ///< softcap cap
  /// cast: the input's element type (the output's is elementType), or an i32 input.
  ElementType inputType = ElementType::F32;
  bool inputI32 = false;
};

/// Launch geometry and integer arguments for one launch.
struct LaunchConfig {
  std::array<int64_t, 3> grid{1, 1, 1};
  std::array<int64_t, 3> block{1, 1, 1};
  int64_t smem = 0; ///< dynamic shared memory bytes
  llvm::SmallVector<int64_t> args;
};

/// True if the generator can emit code for `kind`.
bool canGenerate(llvm::StringRef kind);

/// The CUDA C++ source of `desc` (one extern "C" __global__ function named entryName(desc)).
llvm::Expected<std::string> generateKernelSource(const KernelDesc &desc);

/// The entry point symbol of the generated kernel.
std::string entryName(const KernelDesc &desc);

/// Launch geometry of `kind` for an output of shape `outputShape`.
LaunchConfig computeLaunchConfig(llvm::StringRef kind, llvm::ArrayRef<int64_t> outputShape,
                                 int64_t blockSize);

} // namespace mlir::fusion::cuda

#endif // FUSION_COMPILER_TARGET_CUDA_KERNELSOURCE_H
