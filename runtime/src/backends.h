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
/// The communicator a collective of more than one rank runs on: the one of `mesh` for the
/// collective's axis, checked against the plan's axis size. Without one, the error says how
/// to start the ranks on `backend`.
StatusOr<Communicator *> collectiveCommunicator(const Plan &plan, const MeshContext &mesh,
                                                const schema::Collective &collective,
                                                BackendKind backend);

/// Runs `collective` on `comm` from `in` to `out`; `what` labels it in the communicator's
/// errors. With `stream` (a cudaStream_t; the communicator must support streams) it is
/// enqueued there and the call returns at once, else the call returns when it is done.
Status dispatchCollective(Communicator &comm, const Plan &plan,
                          const schema::Collective &collective, const void *in, void *out,
                          const std::string &what, void *stream = nullptr);

StatusOr<std::unique_ptr<Executor>> createCpuExecutor(std::shared_ptr<const Plan> plan,
                                                      MeshContext mesh);

#if FUSION_RT_HAVE_CUDA
/// The CUDA executor (runtime/src/cuda); fails cleanly when no device is present.
StatusOr<std::unique_ptr<Executor>> createCudaExecutor(std::shared_ptr<const Plan> plan,
                                                       MeshContext mesh);

/// The name of CUDA device 0, or nullopt when the runtime sees no device (no driver, none
/// present). Defined only when the cuda backend is built.
std::optional<std::string> probeCudaDevice();
#endif

} // namespace fusion::rt
