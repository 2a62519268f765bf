//===- KernelSource.h - CUDA C++ for plan kernels -------------------------===//
//
// Part of the FusionLLM compiler.
//
// Emits CUDA C++ for a kernel from its portable description (kind, attributes, the element
// types of its buffers) and the launch geometry of each launch (from the buffers' shapes).
// The device code lives in templates (compiler/Target/CUDA/templates/*.cuh, embedded in
// fusionc); a generated kernel is a short wrapper that includes its templates and
// instantiates one for its buffer types:
//
//   #include "fusion/norm.cuh"
//   extern "C" __global__ void fusion_rms_norm(const float* x, const float* w, float* out,
//                                              int64_t rows, int64_t d) {
//     fk::rmsNorm(x, w, out, rows, d, (float)1e-06);
//   }
//
// The ABI every generated kernel follows: one pointer per launch buffer (inputs, then
// outputs), then the launch's integer arguments as int64_t. expandTemplates replaces the
// `#include "fusion/..."` lines with the templates' text before nvcc sees the source, so a
// compiled (and dumped) kernel needs no header but the CUDA toolkit's.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_COMPILER_TARGET_CUDA_KERNELSOURCE_H
#define FUSION_COMPILER_TARGET_CUDA_KERNELSOURCE_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <array>
#include <string>

namespace mlir::fusion::cuda {

/// Storage element type of a kernel buffer.
enum class ElementType { F32, BF16, F16, I32, I64 };

/// The C++ storage type: float, __nv_bfloat16, __half, int32_t, int64_t.
llvm::StringRef storageName(ElementType type);
/// Short name for messages: f32, bf16, f16, i32, i64.
llvm::StringRef elementTypeName(ElementType type);

/// The shapes of one launch's buffers (inputs, then outputs).
struct LaunchShapes {
  llvm::SmallVector<llvm::SmallVector<int64_t>> inputs, outputs;
};

/// What the generator needs to know about one kernel: its kind, attributes (the plan's
/// kernel params), the element types of the buffers every launch of it binds, and the shapes
/// of its launches (a generator may size register arrays for the largest of them).
struct KernelDesc {
  std::string name; ///< symbol of the fplan.kernel (for messages)
  std::string kind;
  llvm::SmallVector<ElementType> inputs, outputs;
  llvm::StringMap<double> floats;
  llvm::StringMap<int64_t> ints; ///< integer and unit (= 1) attributes
  llvm::StringMap<std::string> strings;
  llvm::StringMap<llvm::SmallVector<int64_t>> lists;
  int64_t blockSize = 256; ///< threads per block of the grid-stride kernels
  /// Every launch's shapes, when known (fplan-codegen-cuda fills them); a launch whose shapes
  /// are not here may exceed what the source was specialised to, and its launch config says so.
  llvm::SmallVector<LaunchShapes> launches;

  /// A float attribute (an integer one converts); an error naming the kernel when absent.
  llvm::Expected<double> getFloat(llvm::StringRef key) const;
  double getFloat(llvm::StringRef key, double defaultValue) const;
  llvm::Expected<int64_t> getInt(llvm::StringRef key) const;
  int64_t getInt(llvm::StringRef key, int64_t defaultValue) const;
  bool hasFlag(llvm::StringRef key) const { return getInt(key, 0) != 0; }
  llvm::Expected<std::string> getString(llvm::StringRef key) const;
  llvm::Expected<llvm::SmallVector<int64_t>> getList(llvm::StringRef key) const;
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

/// Every kind the generator knows, sorted (for docs and messages).
llvm::SmallVector<llvm::StringRef> generatedKinds();

/// The CUDA C++ source of `desc`: one extern "C" __global__ function named entryName(desc),
/// including its templates by `#include "fusion/NAME.cuh"`. Errors (wrong buffer count,
/// unsupported element type or attribute) say what the kernel is and what was expected.
llvm::Expected<std::string> generateKernelSource(const KernelDesc &desc);

/// The entry point symbol of the generated kernel: "fusion_" + kind.
std::string entryName(const KernelDesc &desc);

/// Launch geometry of one launch of `desc` on buffers of `shapes`.
llvm::Expected<LaunchConfig> computeLaunchConfig(const KernelDesc &desc,
                                                 const LaunchShapes &shapes);

/// Replaces every `#include "fusion/NAME.cuh"` line of `source` by that template's text
/// (recursively, each template once), giving a self-contained translation unit.
llvm::Expected<std::string> expandTemplates(llvm::StringRef source);

} // namespace mlir::fusion::cuda

#endif // FUSION_COMPILER_TARGET_CUDA_KERNELSOURCE_H
