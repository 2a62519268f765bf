//===- train.h - The training loop, checkpoints and resume ----------------===//
//
// `fusion-run PLAN --train` runs a compiled training plan (MODEL.md §12 step order, §15
// checkpoints). The plan's side of the contract:
//
//   program `init`        initialises weights, zeroes optimizer state (no inputs).
//   program `train_step`  inputs  tokens, targets [n_acc, B, T+1] i32 (ignored targets −1),
//                                 inv_counts [1+D_m] f32 (1/N_k over all n_acc micro-
//                                 batches of the step), step [2] i32 = (s, t), s the 0-based
//                                 optimizer step, t = s − skipped + 1;
//                         outputs loss [] f32 (total L), main_loss [] f32 (main CE term),
//                                 ctl [8] f32 = [f(s), clip scale, ok, pre-clip grad norm,
//                                 t, s, 0, 0]; ok = 0 means the step was skipped (loss or
//                                 grad norm non-finite) and nothing changed.
//   program `eval_step`   (optional) inputs tokens, targets [B, T+1], inv_counts [1+D_m];
//                         outputs main_loss [] f32 = Σ CE · inv_counts[0] (and loss).
//   buffers               role Weight / ModelBuffer (model.safetensors) and OptimizerState
//                         (optim.safetensors), persistent, uniquely named.
//   Plan.config           the resolved training settings (see kConfigKeys in train.cc and
//                         README "fusion-run --train").
//
// The trainer builds each step's inputs from the data layer (micro-batch a of step s is
// BatchCoord{s, a, rank 0 of 1, n_acc}), sums the micro-batches' counts before inverting
// them, runs train_step, logs, evaluates, checkpoints, and stops on SIGINT/SIGTERM after
// saving. A resumed run runs `init` (which also rebuilds non-checkpointed persistent
// constants), overwrites every checkpointed buffer and continues at s = step: with
// deterministic kernels it is bitwise identical to an uninterrupted run.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/comm.h"
#include "fusion/rt/data.h"
#include "fusion/rt/executor.h"
#include "fusion/rt/plan.h"
#include "fusion/rt/status.h"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fusion::rt::train {

//===----------------------------------------------------------------------===//
// Checkpoints (MODEL.md §15)
//===----------------------------------------------------------------------===//

/// The trainer.json format this runtime writes and reads.
constexpr int64_t kTrainerFormatVersion = 1;

/// File names inside a checkpoint directory.
constexpr const char *kModelFile = "model.safetensors";
constexpr const char *kOptimFile = "optim.safetensors";
constexpr const char *kTrainerFile = "trainer.json";
/// A copy of the plan the checkpoint was trained with, so `fusion-run CHECKPOINT_DIR
/// --generate` needs nothing else.
constexpr const char *kPlanFile = "plan.fplan";
/// The file in save_dir naming the newest complete checkpoint directory.
constexpr const char *kLatestFile = "latest";

/// Where the data stream stands: mixture and synthetic sampling are stateless (the seed is
/// the state); sequential reading also records the shard / file index and position of the
/// next micro-batch.
struct DataState {
  std::string format;   // synthetic, fusion_shards, bin
  std::string sampling; // mixture, sequential
  uint64_t seed = 0;
  std::optional<data::SequentialPosition> position;
};

/// trainer.json.
struct TrainerState {
  int64_t formatVersion = kTrainerFormatVersion;
  /// Completed optimizer steps (= the next s).
  uint64_t step = 0;
  uint64_t tokensSeen = 0;
  uint64_t skippedSteps = 0;
  uint64_t consecutiveSkips = 0;
  DataState data;
  uint64_t seed = 0;
  uint32_t worldSize = 1;
  std::optional<double> bestValLoss;
  std::string configSha256;
  std::string configText;
};

/// trainer.json text (pretty-printed, members in the order of TrainerState).
std::string encodeTrainerJson(const TrainerState &state);
/// Parses trainer.json; errors are prefixed with `what` (the path) and name the member.
StatusOr<TrainerState> parseTrainerJson(std::string_view text, const std::string &what);

/// "step_00000012".
std::string checkpointName(uint64_t step);

/// The complete checkpoint directories (step_NNNNNNNN, no .tmp) of `saveDir`, oldest first.
std::vector<std::pair<uint64_t, std::string>> listCheckpoints(const std::string &saveDir);

/// Writes the checkpoint of `state` (model, optimizer state read from `executor`) as
/// saveDir/step_{s:08d} (s = state.step): every file is written into step_{s:08d}.tmp/ and
/// fsync'ed, the directory fsync'ed and renamed, save_dir fsync'ed, `latest` rewritten
/// through a temporary file + rename, then all but the newest `keepLast` checkpoints removed
/// (keepLast 0 keeps all). Returns the checkpoint directory.
/// Test hook: FUSION_TEST_KILL_DURING_CHECKPOINT=N raises SIGKILL halfway through writing
/// model.safetensors of this process's N-th checkpoint.
StatusOr<std::string> saveCheckpoint(Executor &executor, const TrainerState &state,
                                     const std::string &saveDir, uint64_t keepLast);

/// A --resume argument as a checkpoint directory: "latest" reads saveDir/latest; a
/// directory holding a `latest` file but no trainer.json is followed the same way.
StatusOr<std::string> resolveCheckpoint(const std::string &argument, const std::string &saveDir);

struct LoadOptions {
  /// The plan's config_sha256 ("" when it has none).
  std::string configSha256;
  /// Accept a config hash mismatch, another rank count and tensors the plan does not have
  /// (with warnings).
  bool force = false;
  /// The run's data-parallel rank count, which must equal the checkpoint's (resuming reads
  /// the same data stream); nullopt when only the weights are wanted (generation, scoring:
  /// NO_SHARD checkpoints hold whole tensors whatever the rank count).
  std::optional<uint32_t> worldSize;
};

/// Verifies checkpoint `dir` completely against the plan (trainer.json format and fields,
/// both safetensors headers, every checkpointed buffer present with the right dtype and
/// shape, config hash), then copies the tensors into `executor`. Nothing is written unless
/// every check passes. Errors name the file and tensor. `warnings` receives what --force
/// let through.
StatusOr<TrainerState> loadCheckpoint(Executor &executor, const std::string &dir,
                                      const LoadOptions &options,
                                      std::vector<std::string> *warnings = nullptr);

//===----------------------------------------------------------------------===//
// The training loop
//===----------------------------------------------------------------------===//

/// fusion-run --train flags; unset values come from Plan.config, then the MODEL.md §17
/// defaults.
struct TrainOptions {
  BackendKind backend = BackendKind::kCpu;
  /// --eval: evaluate the initial weights (or the --resume checkpoint) and stop.
  bool evalOnly = false;
  std::optional<uint64_t> steps;
  /// --data / --val-data SPEC (fusion-run's grammar); keys they leave out (seed, pad, eos,
  /// sampling) come from the config.
  std::optional<std::string> data;
  std::optional<std::string> valData;
  std::optional<uint64_t> evalInterval;
  std::optional<uint64_t> evalBatches;
  std::optional<std::string> saveDir;
  std::optional<uint64_t> saveInterval;
  std::optional<uint64_t> keepLast;
  std::optional<std::string> metricsPath;
  std::optional<std::string> resume;
  bool forceResume = false;
  uint64_t maxConsecutiveSkips = 10;
  std::optional<uint64_t> logInterval;
  std::optional<int64_t> vocab;
  /// --nproc: data-parallel ranks; 0 = the plan's mesh (dp), which must equal it otherwise.
  /// On the cpu backend the ranks are threads of this process with shared-memory
  /// collectives; rank r reads micro-batch (s, r, a) and only rank 0 prints, writes metrics
  /// and checkpoints.
  uint32_t nproc = 0;
  /// A rank process of a multi-process job (fusion-run under torchrun / srun / its own
  /// --nproc launcher on the cuda backend): this rank's communicator over dp (non-owning) and
  /// its GPU. The trainer then runs as that one rank.
  Communicator *comm = nullptr;
  int device = 0;
  /// --trace FILE.json: time the instructions of step traceStep (default: the run's second
  /// step, or its only one) and write them as a Chrome trace (rank r > 0: FILE.rankR.json).
  std::optional<std::string> tracePath;
  std::optional<uint64_t> traceStep;
  /// --check-against-cpu: every program run (init, each train_step, eval_step) runs on a
  /// second, cpu executor too, instruction by instruction (checkAgainstReference, check.h);
  /// a line per step and the table at the end; the run fails if any output disagrees. A
  /// single rank; on the cpu backend it checks the cpu against itself (the harness's test).
  bool checkAgainstCpu = false;
  /// --no-save: write no checkpoint, not even at the end or on a signal (benchmarks).
  bool noSave = false;
};

/// Runs the loop. Returns the exit status: 0 when the target step was reached, 130 / 143
/// after SIGINT / SIGTERM (the current step finished and a checkpoint saved), or an error
/// (including the abort after too many consecutive skipped steps). Progress goes to `err`
/// (a live line when it is a terminal), the final summary to `out`.
StatusOr<int> runTraining(std::shared_ptr<const Plan> plan, const TrainOptions &options,
                          std::FILE *out, std::FILE *err);

//===----------------------------------------------------------------------===//
// Whole-model finite-difference gradient check (fusion-run --gradcheck)
//===----------------------------------------------------------------------===//
//
// The plan's side (`fusionc CONFIG --mode=grad`):
//   program `init`          initialises the weights (no inputs).
//   program `forward`       inputs tokens, targets [B, T+1] i32, inv_counts [1+D_m] f32 (any
//                           subset); output loss [] f32.
//   program `forward_grad`  the same inputs; outputs loss and, for every buffer of role
//                           Weight called NAME, `grad:NAME` (f32, NAME's shape) = ∂loss/∂NAME.
//
// The check (runtime/src/train/gradcheck.cc, which documents the step and tolerance rules):
// init, micro-batch 0 of the data stream, forward_grad; then, for every Weight, the
// largest-|g| coordinate plus samples−1 seeded random ones (among nonzero gradients when
// there are any) get a central difference (L(w+h) − L(w−h)) / (w+h − (w−h)) from `forward`
// runs, with the original bytes restored afterwards. A failing difference is recomputed at
// h/2 ... h/16: differences that change with the step (a piecewise-constant MoE selection
// flipped) are retried smaller, three that agree mean a wrong gradient, and a coordinate
// still undecided is rechecked with the routing frozen through the moe_route biases.

/// The default of --gradcheck-samples: coordinates per parameter.
constexpr uint64_t kGradcheckDefaultSamples = 3;
/// The default of --gradcheck-step: h = H · max(|w_i|, rms(w), 0.1).
constexpr double kGradcheckDefaultStep = 0.05;
/// The default of --gradcheck-tolerance: the relative part of the acceptance bound.
constexpr double kGradcheckDefaultTolerance = 0.05;

/// fusion-run --gradcheck flags.
struct GradcheckOptions {
  BackendKind backend = BackendKind::kCpu;
  /// --data SPEC (fusion-run's grammar); default: synthetic data with the config's seed,
  /// pad and eos ids.
  std::optional<std::string> data;
  std::optional<int64_t> vocab;
  uint64_t samples = kGradcheckDefaultSamples;
  double step = kGradcheckDefaultStep;
  double tolerance = kGradcheckDefaultTolerance;
};

/// Checks that `plan` has the programs init, forward and forward_grad; the error names the
/// missing one and the fusionc command that produces a gradient-check plan. fusion-run treats
/// it as a usage error (exit 2).
Status checkGradcheckPrograms(const Plan &plan);

/// Runs the check, printing the table and the summary to `out` (notes to `err`). Returns 0
/// when every coordinate passed, 1 when any failed; errors for plan, data and runtime
/// failures.
StatusOr<int> runGradcheck(std::shared_ptr<const Plan> plan, const GradcheckOptions &options,
                           std::FILE *out, std::FILE *err);

} // namespace fusion::rt::train
