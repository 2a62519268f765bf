//===- Kinds.h - Per-kind CUDA generators (internal) ----------------------===//
//
// Part of the FusionLLM compiler.
//
// Each family of kernel kinds (kinds/*.cpp) registers one KindGenerator per kind: the
// wrapper source (which includes the family's template) and the launch geometry. The
// helpers below build the wrapper's signature from the kernel's buffer types, so a family
// only writes the call into its template.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_COMPILER_TARGET_CUDA_KINDS_H
#define FUSION_COMPILER_TARGET_CUDA_KINDS_H

#include "compiler/Target/CUDA/KernelSource.h"

#include <vector>

namespace mlir::fusion::cuda {

struct KindGenerator {
  const char *kind;
  llvm::Expected<std::string> (*source)(const KernelDesc &desc);
  llvm::Expected<LaunchConfig> (*launch)(const KernelDesc &desc, const LaunchShapes &shapes);
};

// Registration, one per family file.
void addElementwiseKinds(std::vector<KindGenerator> &kinds);
void addNormKinds(std::vector<KindGenerator> &kinds);
void addLayoutKinds(std::vector<KindGenerator> &kinds);
void addAttentionKinds(std::vector<KindGenerator> &kinds);
void addGdnKinds(std::vector<KindGenerator> &kinds);
void addMoeKinds(std::vector<KindGenerator> &kinds);
void addLossKinds(std::vector<KindGenerator> &kinds);
void addOptimizerKinds(std::vector<KindGenerator> &kinds);
void addPointwiseKinds(std::vector<KindGenerator> &kinds);
void addInitKinds(std::vector<KindGenerator> &kinds);

/// An error naming the kernel: "kernel @NAME (kind 'KIND'): MESSAGE".
llvm::Error kindError(const KernelDesc &desc, const llvm::Twine &message);
/// "[2, 3, 4]".
std::string shapeString(llvm::ArrayRef<int64_t> shape);
/// Fails unless `shape` equals `expected`, naming `what` and both shapes.
llvm::Error checkShape(const KernelDesc &desc, llvm::ArrayRef<int64_t> shape,
                       llvm::ArrayRef<int64_t> expected, llvm::StringRef what);

/// Fails unless `desc` has `numInputs` inputs and `numOutputs` outputs (-1: any number).
llvm::Error checkArity(const KernelDesc &desc, int numInputs, int numOutputs);
/// Fails unless every buffer in `which` (indices into inputs, then outputs) is a float type.
llvm::Error checkFloat(const KernelDesc &desc, llvm::ArrayRef<unsigned> inputs,
                       llvm::ArrayRef<unsigned> outputs);
/// Fails unless input `index` is i32 or i64.
llvm::Error checkIndex(const KernelDesc &desc, bool isOutput, unsigned index);
/// Fails for launches of the wrong rank.
llvm::Error checkRank(const KernelDesc &desc, llvm::ArrayRef<int64_t> shape, size_t rank,
                      llvm::StringRef what);

/// A kernel source: a header comment, `#include "fusion/T.cuh"` for each of `templates`,
/// and `extern "C" __global__ void ENTRY(const I0* in0, ..., O0* out0, ..., int64_t a0, ...)`
/// whose body is `body`. Buffer parameter names come from `inputNames` / `outputNames`
/// (a name may be used for a variadic tail: it is numbered).
std::string wrapKernel(const KernelDesc &desc, llvm::ArrayRef<llvm::StringRef> templates,
                       llvm::ArrayRef<llvm::StringRef> inputNames,
                       llvm::ArrayRef<llvm::StringRef> outputNames,
                       llvm::ArrayRef<llvm::StringRef> intArgNames, llvm::StringRef body,
                       llvm::StringRef launchBounds = "");

/// A C++ float expression that rounds to exactly `value` as a float: "(float)1.5e-05".
std::string floatLiteral(double value);
/// A C++ double expression equal to `value`: "1.0000000000000001e-05".
std::string doubleLiteral(double value);
/// The bit pattern of `value`, for a double passed as an int64_t argument.
int64_t doubleBits(double value);

int64_t numElements(llvm::ArrayRef<int64_t> shape);
/// Threads in a block that holds `work` lanes: a multiple of 32 in [32, cap].
int64_t roundThreads(int64_t work, int64_t cap = 1024);
/// A grid-stride launch over `n` elements with `blockSize` threads per block.
LaunchConfig gridStride(int64_t n, int64_t blockSize);

} // namespace mlir::fusion::cuda

#endif // FUSION_COMPILER_TARGET_CUDA_KINDS_H
