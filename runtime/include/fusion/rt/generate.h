//===- generate.h - Text generation with the decode program ---------------===//
//
// `fusion-run CHECKPOINT_DIR --generate "prompt" --tokenizer DIR` (or `fusion-run PLAN
// --checkpoint DIR --generate ...`) continues a prompt with the model. The prompt, after
// GPT-2's end-of-text token (a document start, as in the training data), is fed one token at
// a time through the plan's `decode_step` program (fusionc's training plan: token [1, 1],
// position [1] → logits [1, V]), which keeps each MLA layer's keys/values and each GDN
// layer's convolution tails and recurrent state in `inference_state` buffers: a generated
// token costs one decode step, O(1) in the position for GDN layers. Sampling: temperature
// T (0 = greedy argmax) over the top-k logits (k = 0: all), from a seeded generator, so a
// run is reproducible. Generation stops after --max-tokens tokens, at end-of-text, or when
// the caches (max_seq_len positions) are full.
//
// `--recompute` runs the plan's `logits` program on the whole prefix instead (no caches:
// T tokens per step); `--check-cache` runs greedy generation both ways and reports whether
// the token sequences agree and the largest logit difference (exit 1 when they differ).
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/executor.h"
#include "fusion/rt/plan.h"
#include "fusion/rt/status.h"
#include "fusion/rt/tokenizer.h"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

namespace fusion::rt::generate {

struct GenerateOptions {
  BackendKind backend = BackendKind::kCpu;
  std::string prompt;
  /// Directory with GPT-2's encoder.json and vocab.bpe.
  std::string tokenizerDir;
  /// Keep the first K merges; default: the plan's vocab_size − 257 (clamped to the files').
  std::optional<uint64_t> merges;
  /// Checkpoint directory (or "latest" of the config's save_dir); none: initial weights.
  std::optional<std::string> checkpoint;
  uint64_t maxTokens = 64;
  /// 0: greedy.
  double temperature = 1.0;
  /// 0: sample from the whole vocabulary.
  uint64_t topK = 0;
  uint64_t seed = 0;
  /// Use the `logits` program on the whole prefix at every step instead of the caches.
  bool recompute = false;
  /// Greedy with the caches and by recomputation; compare.
  bool checkCache = false;
  /// Also print the generated token ids.
  bool printIds = false;
};

/// Runs generation; prints the text to `out`, a summary line to `err`. Returns the exit
/// status (0; 1 when --check-cache finds a difference).
StatusOr<int> runGeneration(std::shared_ptr<const Plan> plan, const GenerateOptions &options,
                            std::FILE *out, std::FILE *err);

/// The GPT-2 byte-level BPE tokenizer from `dir`, cut to the plan's vocab_size (or to
/// `merges` merges). Shared with the multiple-choice scorer.
StatusOr<std::unique_ptr<data::BpeTokenizer>> loadPlanTokenizer(const Plan &plan,
                                                                const std::string &dir,
                                                                std::optional<uint64_t> merges);

/// Loads checkpoint `argument` (a directory, or "latest" of the config's save_dir) into
/// `executor` after it ran `init`, verifying it against the plan; prints
/// "fusion-run: <what> with DIR (step S)" to `err`.
Status loadCheckpointWeights(Executor &executor, const std::string &argument,
                             const char *what, std::FILE *err);

} // namespace fusion::rt::generate
