//===- executor.h - Running plan programs on a backend --------------------===//
//
// An Executor owns the memory of one plan on one backend (its arenas) and runs the plan's
// programs, one instruction at a time, on that memory. Arenas live as long as the executor,
// so running `init` and then `train_step` on the same executor carries parameters across,
// as the plan's persistent arena class intends. Two backends exist: `cpu`, the reference
// oracle that every other backend must agree with, and `cuda`. createExecutor prepares
// everything a run needs (allocations, kernel modules, GEMM algorithms) up front, so a run
// only enqueues work. Programs exchange data with their caller through named bindings:
// setInput fills an input before a run, readOutput reads an output after it.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/plan.h"
#include "fusion/rt/status.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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

/// One instruction's execution time in a timed program run (Executor::setTiming).
struct InstructionTime {
  uint32_t program = 0;
  uint32_t instruction = 0;
  uint32_t stream = 0;
  /// Start, from the first timed run's start, and duration, in microseconds.
  double startUs = 0;
  double durationUs = 0;
};

/// Runs the programs of one plan on one backend.
class Executor {
public:
  virtual ~Executor() = default;

  /// Which backend this is.
  virtual BackendKind backend() const = 0;

  /// Where it runs, for the user: "cpu (2 threads)", "cuda:0 (NVIDIA H100 80GB HBM3, sm_90)".
  virtual std::string deviceDescription() const = 0;

  /// Runs program `programName` to completion: when it returns, all device work of the
  /// program has finished and buffer contents can be read.
  virtual Status run(std::string_view programName) = 0;

  /// Runs instruction `index` of program `programName` alone and waits for it: the unit of
  /// the lockstep backend check (checkAgainstReference). A program's runs are unaffected.
  virtual Status step(std::string_view programName, uint32_t index) = 0;

  /// Copies the contents of buffer `id` (its byteSize bytes) into `out`.
  virtual Status readBuffer(uint32_t id, std::vector<uint8_t> &out) = 0;

  /// Overwrites buffer `id` with `size` bytes from `data`; `size` must equal its byteSize.
  virtual Status writeBuffer(uint32_t id, const void *data, size_t size) = 0;

  /// Copies a host tensor into the input called `name` of program `program`. The input's
  /// buffer must have exactly `dtype` and `shape`, and `size` must be its byte size; errors
  /// name the program, the input and both shapes.
  Status setInput(std::string_view program, std::string_view name, schema::DType dtype,
                  const std::vector<int64_t> &shape, const void *data, size_t size);

  /// Copies the contents of the output called `name` of program `program` into `out`.
  Status readOutput(std::string_view program, std::string_view name,
                    std::vector<uint8_t> &out);

  /// Copies the contents of the buffer called `name` into `out`; fails when no buffer, or
  /// more than one, has that name.
  Status readBufferByName(std::string_view name, std::vector<uint8_t> &out);

  /// The plan this executor runs.
  const Plan &plan() const { return *plan_; }
  /// Times every instruction of the following runs: cpu, the wall clock around each
  /// instruction (which runs to completion); cuda, events recorded around each instruction
  /// on its stream and read when the run ends. Off by default (it costs a little per
  /// instruction); Record and Wait instructions are not timed.
  void setTiming(bool on) { timing_ = on; }
  /// The timings of the timed runs since the last call, in program order; clears them.
  std::vector<InstructionTime> takeTimings() { return std::move(timings_); }

protected:
  explicit Executor(std::shared_ptr<const Plan> plan) : plan_(std::move(plan)) {}
  /// Microseconds since the first timed run began (the trace's zero).
  double timingClockUs() {
    auto now = std::chrono::steady_clock::now();
    if (!timingEpoch_)
      timingEpoch_ = now;
    return std::chrono::duration<double, std::micro>(now - *timingEpoch_).count();
  }
  bool timing_ = false;
  std::vector<InstructionTime> timings_;
  std::optional<std::chrono::steady_clock::time_point> timingEpoch_;

  /// Common argument checks of readBuffer/writeBuffer.
  Status checkBufferAccess(uint32_t id, std::optional<size_t> size) const;

  std::shared_ptr<const Plan> plan_;
};

class Communicator;

/// One rank's place in the plan's mesh: a communicator for each mesh axis with more than one
/// rank (non-owning; they must outlive the executor). Collectives over an axis of size 1
/// need none; a collective over a larger axis without one is an error that says how to run
/// the plan (fusion-run --nproc N).
struct MeshContext {
  std::vector<std::pair<std::string, Communicator *>> axes;
  /// The CUDA backend's GPU ordinal for this rank (LOCAL_RANK); ignored by the cpu backend,
  /// whose communicators exchange host memory, where the cuda backend's (NCCL) take device
  /// memory.
  int device = 0;
  /// The communicator of `axis`, or null.
  Communicator *find(std::string_view axis) const;
};

/// Creates an executor of `kind` for `plan`: allocates and zeroes the arenas and prepares
/// every kernel and GEMM the plan uses. Fails when the backend is not built, no device is
/// present, or the plan cannot run there (e.g. no cubin for the device's architecture).
/// `mesh` connects the executor to its peer ranks (null: a single rank).
StatusOr<std::unique_ptr<Executor>> createExecutor(std::shared_ptr<const Plan> plan,
                                                   BackendKind kind,
                                                   const MeshContext *mesh = nullptr);

/// The backend fusion-run uses when none is asked for: cuda when this build has it, a CUDA
/// device is present and every kernel of `plan` carries device code; else cpu. When a device
/// is present but the plan cannot run there, `note` says why (the caller prints it: no
/// silent fallback).
BackendKind chooseDefaultBackend(const Plan &plan, std::string &note);

/// The id of the only buffer called `name`: kNotFound when there is none, kInvalidArgument
/// (listing the ids) when several buffers share the name.
StatusOr<uint32_t> findUniqueBuffer(const Plan &plan, std::string_view name);

/// Formats buffer contents as `NAME f32[4,8] = [v0, v1, ...]`: values in %g style, at most
/// `limit` of them (0 = all) followed by `...` when some were left out. `bytes` must hold the
/// buffer's byteSize bytes.
std::string formatBuffer(const BufferInfo &buffer, const std::vector<uint8_t> &bytes,
                         size_t limit);

/// Formats a program output the way fusion-run reports it: a scalar as `NAME = VALUE`
/// (floats with 4 decimals, `loss = 6.2383`, or %.4e outside [1e-3, 1e9); integers exactly),
/// anything else as formatBuffer does with `limit`.
std::string formatOutput(const std::string &name, const BufferInfo &buffer,
                         const std::vector<uint8_t> &bytes, size_t limit);

/// Encodes buffer contents as a NumPy .npy file (format 1.0: magic, little-endian header
/// dict padded to a multiple of 64 bytes, C order). f32 is stored as '<f4', i32 as '<i4',
/// i64 as '<i8'; bf16 and f16 are widened (exactly) to '<f4'. `bytes` must hold the buffer's
/// byteSize bytes.
StatusOr<std::vector<uint8_t>> encodeNpy(const BufferInfo &buffer,
                                         const std::vector<uint8_t> &bytes);

} // namespace fusion::rt
