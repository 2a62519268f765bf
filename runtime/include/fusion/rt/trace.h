//===- trace.h - Instruction timelines: Chrome trace JSON and a summary ---===//
//
// `fusion-run --trace FILE.json` times every instruction of the programs it runs
// (Executor::setTiming) and writes them as a Chrome trace (the Trace Event Format's complete
// events, "ph": "X"), which Perfetto (ui.perfetto.dev) and chrome://tracing open: one track
// per stream of each rank, one slice per instruction named after its kernel (or "gemm MxNxK",
// or the collective), with the kernel kind, the program, the instruction index and its
// source location as arguments. The summary groups the time by kernel kind.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "fusion/rt/executor.h"
#include "fusion/rt/plan.h"
#include "fusion/rt/status.h"

#include <string>
#include <vector>

namespace fusion::rt {

/// What an instruction is, for traces and summaries: its name ("init.tok_embeddings.weight",
/// "gemm 512x64x64", "all_reduce") and its class (the kernel kind, "gemm", "all_reduce").
struct InstructionLabel {
  std::string name;
  std::string kind;
};
InstructionLabel labelInstruction(const Plan &plan, uint32_t program, uint32_t instruction);

/// The Chrome trace JSON of `times` (one rank: `rank` is the process id, named
/// "rank N (DEVICE)").
std::string chromeTraceJson(const Plan &plan, const std::vector<InstructionTime> &times,
                            int rank, const std::string &device);

/// Lines "  KIND  COUNT  TOTAL ms  SHARE%", the kinds by total time, at most `limit` of them
/// (then a line with the rest), after a header with the instruction count and total time.
std::string traceSummary(const Plan &plan, const std::vector<InstructionTime> &times,
                         size_t limit = 12);

/// Takes `executor`'s timings and writes their trace to `path` (rank r > 0:
/// PATH.rankR.json, ".json" replaced); returns the file written and sets `summary` to
/// traceSummary's text.
StatusOr<std::string> writeTraceFile(const std::string &path, int rank, const Plan &plan,
                                     Executor &executor, std::string &summary);

} // namespace fusion::rt
