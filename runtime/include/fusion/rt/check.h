//===- check.h - Lockstep check of a backend against the CPU reference ----===//
//
// Runs a program on two executors of the same plan one instruction at a time. Before each
// instruction the device executor's copies of the instruction's outputs are poisoned (NaN
// bytes; -1 for index buffers) and its inputs are overwritten with the reference executor's
// bytes, so every instruction is checked on the reference's inputs, independently of the
// errors before it, and every element it should write is seen to be written. After both ran,
// each output is compared: float buffers by ‖out − ref‖₂ / ‖ref‖₂ (device/METHOD.md's
// measure) against a bound per storage type, index buffers exactly, and a non-finite value
// where the reference is finite always fails.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/executor.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fusion::rt {

struct CheckOptions {
  /// Relative L2 bounds by output storage type.
  double f32Bound = 1e-3;  ///< fp32 math; allows tf32 GEMMs (~3e-4)
  double bf16Bound = 1e-2; ///< bf16 rounding of the output (and of GEMM operands)
  double f16Bound = 5e-3;
};

/// One output of one checked instruction.
struct OutputCheck {
  uint32_t buffer = 0;
  double relL2 = 0;      ///< ‖out − ref‖ / ‖ref‖ (‖out − ref‖ when ‖ref‖ = 0)
  double maxAbs = 0;     ///< largest |out − ref|
  uint64_t worst = 0;    ///< element with the largest difference
  uint64_t mismatches = 0; ///< index buffers: differing elements; floats: non-finite where ref is finite
  bool passed = true;
};

/// One checked instruction.
struct InstructionCheck {
  uint32_t program = 0;
  uint32_t index = 0;
  std::string kind; ///< kernel kind, "gemm", or the collective kind
  std::vector<OutputCheck> outputs;
  bool passed() const;
};

/// Checks every instruction of program `program` (Record / Wait are skipped) of `device`
/// against `reference`, which must run the same plan; both executors end in the reference's
/// state after each instruction's inputs, so later programs can be checked too. Errors: an
/// instruction failing to run on either executor.
StatusOr<std::vector<InstructionCheck>> checkAgainstReference(Executor &reference,
                                                              Executor &device,
                                                              std::string_view program,
                                                              const CheckOptions &options);

/// A table of the checks by kernel kind (instructions, worst relative L2, failures), then one
/// line per failing output with the instruction's location; ends with a summary line.
std::string formatCheckReport(const Plan &plan, const std::vector<InstructionCheck> &checks,
                              const CheckOptions &options);

} // namespace fusion::rt
