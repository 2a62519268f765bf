//===- Nvcc.h - compiling CUDA C++ to cubins ------------------------------===//
//
// Part of the FusionLLM compiler.
//
// Runs nvcc on generated kernel sources, with a content-addressed cache so that an
// unchanged model compiles without nvcc.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_COMPILER_TARGET_CUDA_NVCC_H
#define FUSION_COMPILER_TARGET_CUDA_NVCC_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <string>

namespace mlir::fusion::cuda {

struct NvccOptions {
  /// Path of nvcc; empty = look it up on PATH, then /usr/local/cuda/bin/nvcc.
  std::string nvccPath;
  /// Cache directory; empty = no cache.
  std::string cacheDir;
};

/// Counters of one compilation session (reported by fusionc --verbose).
struct NvccStats {
  unsigned compiled = 0;
  unsigned cacheHits = 0;
};

/// Compiles `source` for `arch` (e.g. "sm_90a") and returns the cubin image.
llvm::Expected<std::string> compileToCubin(llvm::StringRef source, llvm::StringRef arch,
                                           const NvccOptions &options, NvccStats &stats);

} // namespace mlir::fusion::cuda

#endif // FUSION_COMPILER_TARGET_CUDA_NVCC_H
