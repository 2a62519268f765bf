//===- executor.h - Running plan programs on a backend --------------------===//
//
// An Executor owns the memory of one plan on one backend (its arenas) and runs the plan's
// programs, one instruction at a time, on that memory. Arenas live as long as the executor,
// so running `init` and then `train_step` on the same executor carries parameters across,
// as the plan's persistent arena class intends. Two backends exist: `cpu`, the reference
// oracle that every other backend must agree with, and `cuda`. createExecutor prepares
// everything a run needs (allocations, kernel modules, GEMM algorithms) up front, so a run
// only enqueues work.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/plan.h"
#include "fusion/rt/status.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fusion::rt {

/// The backends a plan can run on.
enum class BackendKind { kCpu, kCuda };

/// "cpu" or "cuda".
const char *backendName(BackendKind kind);
/// Parses "cpu" / "cuda"; nullopt for anything else.
std::optional<BackendKind> parseBackendKind(std::string_view text);
/// True when this build contains the backend (cuda needs a CUDA toolkit at build time).
bool isBackendBuilt(BackendKind kind);

/// Runs the programs of one plan on one backend.
class Executor {
public:
  virtual ~Executor() = default;

  /// Which backend this is.
  virtual BackendKind backend() const = 0;

  /// Runs program `programName` to completion: when it returns, all device work of the
  /// program has finished and buffer contents can be read.
  virtual Status run(std::string_view programName) = 0;

  /// Copies the contents of buffer `id` (its byteSize bytes) into `out`.
  virtual Status readBuffer(uint32_t id, std::vector<uint8_t> &out) = 0;

  /// Overwrites buffer `id` with `size` bytes from `data`; `size` must equal its byteSize.
  virtual Status writeBuffer(uint32_t id, const void *data, size_t size) = 0;

  /// The plan this executor runs.
  const Plan &plan() const { return *plan_; }

protected:
  explicit Executor(std::shared_ptr<const Plan> plan) : plan_(std::move(plan)) {}

  /// Common argument checks of readBuffer/writeBuffer.
  Status checkBufferAccess(uint32_t id, std::optional<size_t> size) const;

  std::shared_ptr<const Plan> plan_;
};

/// Creates an executor of `kind` for `plan`: allocates and zeroes the arenas and prepares
/// every kernel and GEMM the plan uses. Fails when the backend is not built, no device is
/// present, or the plan cannot run there (e.g. no cubin for the device's architecture).
StatusOr<std::unique_ptr<Executor>> createExecutor(std::shared_ptr<const Plan> plan,
                                                   BackendKind kind);

/// Formats buffer contents as `NAME f32[4,8] = [v0, v1, ...]`: values in %g style, at most
/// `limit` of them (0 = all) followed by `...` when some were left out. `bytes` must hold the
/// buffer's byteSize bytes.
std::string formatBuffer(const BufferInfo &buffer, const std::vector<uint8_t> &bytes,
                         size_t limit);

} // namespace fusion::rt
