//===- backends.h - Factories of the backend executors (internal) ---------===//
//
// createExecutor (executor.cc) is the only public way to get an executor; it dispatches to
// these factories. The CUDA factory only exists when the runtime is built with a CUDA
// toolkit (FUSION_RT_HAVE_CUDA), so the CPU-only build carries no CUDA symbols at all.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/executor.h"

namespace fusion::rt {

/// The reference CPU executor (runtime/src/cpu).
StatusOr<std::unique_ptr<Executor>> createCpuExecutor(std::shared_ptr<const Plan> plan,
                                                      MeshContext mesh);

#if FUSION_RT_HAVE_CUDA
/// The CUDA executor (runtime/src/cuda); fails cleanly when no device is present.
StatusOr<std::unique_ptr<Executor>> createCudaExecutor(std::shared_ptr<const Plan> plan);

/// The name of CUDA device 0, or nullopt when the runtime sees no device (no driver, none
/// present). Defined only when the cuda backend is built.
std::optional<std::string> probeCudaDevice();
#endif

} // namespace fusion::rt
