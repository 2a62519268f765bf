//===- generate.cc - Text generation with the decode program ---------------===//
//
// See fusion/rt/generate.h. Two ways to get the next token's logits, behind one interface:
// the cached decoder feeds one token per `decode_step` run (the caches live in the plan's
// inference_state buffers, zeroed before each generation), the recomputing decoder runs the
// `logits` program on the whole prefix (row 0 of its [B, T] tokens; later rows and positions
// are padding that causal attention, the causal convolutions and the recurrence never let
// reach position len−1).
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/generate.h"

#include "fusion/rt/train.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <numeric>

namespace fusion::rt::generate {

namespace {

constexpr const char *kDecodeProgram = "decode_step";
constexpr const char *kLogitsProgram = "logits";

Status invalid(const std::string &message) {
  return Status(StatusCode::kInvalidArgument, message);
}

/// The shape of a program binding, or an error naming what the plan should have.
StatusOr<const BufferInfo *> binding(const Plan &plan, const char *program, const char *name,
                                     bool output, schema::DType dtype, size_t rank) {
  std::optional<uint32_t> id = plan.findProgram(program);
  if (!id)
    return invalid(plan.displayName() + ": no '" + program +
                   "' program; generation needs a training plan from a YAML config (fusionc "
                   "CONFIG.yaml, --mode=train, the default) compiled by this fusionc");
  const BindingInfo *info = output ? plan.findOutput(*id, name) : plan.findInput(*id, name);
  if (!info)
    return invalid(plan.displayName() + ": program '" + program + "' has no " +
                   (output ? "output '" : "input '") + name + "'");
  const BufferInfo &buffer = plan.buffers()[info->buffer];
  if (buffer.dtype != dtype || buffer.shape.size() != rank)
    return invalid(plan.displayName() + ": program '" + program + "' " +
                   (output ? "output '" : "input '") + name + "' has an unexpected type (" +
                   std::to_string(buffer.shape.size()) + "-D)");
  return &buffer;
}

/// Next-token logits for a growing sequence.
class Decoder {
public:
  virtual ~Decoder() = default;
  /// Starts a new sequence.
  virtual Status reset() = 0;
  /// Appends `tokens` (the sequence is now `sequence`) and returns the logits after its
  /// last token.
  virtual Status append(const std::vector<int32_t> &sequence, size_t numNew,
                        std::vector<float> &logits) = 0;
};

/// One decode_step run per token, through the caches.
class CachedDecoder : public Decoder {
public:
  CachedDecoder(Executor &executor, int64_t vocab) : executor(executor), vocab(vocab) {}

  Status reset() override {
    const Plan &plan = executor.plan();
    for (uint32_t id = 0; id < plan.buffers().size(); ++id) {
      const BufferInfo &buffer = plan.buffers()[id];
      if (buffer.role != schema::BufferRole::InferenceState)
        continue;
      zeros.assign(buffer.byteSize, 0);
      FUSION_RETURN_IF_ERROR(executor.writeBuffer(id, zeros.data(), zeros.size()));
    }
    return Status::okStatus();
  }

  Status append(const std::vector<int32_t> &sequence, size_t numNew,
                std::vector<float> &logits) override {
    for (size_t pos = sequence.size() - numNew; pos < sequence.size(); ++pos) {
      int32_t token = sequence[pos], position = static_cast<int32_t>(pos);
      FUSION_RETURN_IF_ERROR(executor.setInput(kDecodeProgram, "token", schema::DType::I32,
                                               {1, 1}, &token, sizeof token));
      FUSION_RETURN_IF_ERROR(executor.setInput(kDecodeProgram, "position", schema::DType::I32,
                                               {1}, &position, sizeof position));
      FUSION_RETURN_IF_ERROR(executor.run(kDecodeProgram));
    }
    FUSION_RETURN_IF_ERROR(executor.readOutput(kDecodeProgram, "logits", bytes));
    logits.resize(static_cast<size_t>(vocab));
    std::memcpy(logits.data(), bytes.data(), logits.size() * sizeof(float));
    return Status::okStatus();
  }

private:
  Executor &executor;
  int64_t vocab;
  std::vector<uint8_t> zeros, bytes;
};

/// The whole prefix through the logits program at every step.
class RecomputingDecoder : public Decoder {
public:
  RecomputingDecoder(Executor &executor, int64_t rows, int64_t width, int64_t vocab,
                     int32_t pad)
      : executor(executor), rows(rows), width(width), vocab(vocab), pad(pad) {}

  Status reset() override { return Status::okStatus(); }

  Status append(const std::vector<int32_t> &sequence, size_t,
                std::vector<float> &logits) override {
    std::vector<int32_t> tokens(static_cast<size_t>(rows * width), pad);
    std::copy(sequence.begin(), sequence.end(), tokens.begin());
    FUSION_RETURN_IF_ERROR(executor.setInput(kLogitsProgram, "tokens", schema::DType::I32,
                                             {rows, width}, tokens.data(), tokens.size() * 4));
    FUSION_RETURN_IF_ERROR(executor.run(kLogitsProgram));
    FUSION_RETURN_IF_ERROR(executor.readOutput(kLogitsProgram, "logits", bytes));
    const float *all = reinterpret_cast<const float *>(bytes.data());
    size_t last = sequence.size() - 1;
    logits.assign(all + last * static_cast<size_t>(vocab),
                  all + (last + 1) * static_cast<size_t>(vocab));
    return Status::okStatus();
  }

private:
  Executor &executor;
  int64_t rows, width, vocab;
  int32_t pad;
  std::vector<uint8_t> bytes;
};

/// Temperature / top-k sampling over the first `usable` logits (the tokenizer's ids),
/// greedy at temperature 0. The generator is splitmix64, so a seed gives the same text on
/// every platform.
class Sampler {
public:
  Sampler(double temperature, uint64_t topK, uint64_t seed)
      : temperature(temperature), topK(topK), state(seed) {}

  int32_t pick(const std::vector<float> &logits, size_t usable) {
    if (temperature <= 0) {
      size_t best = 0;
      for (size_t i = 1; i < usable; ++i)
        if (logits[i] > logits[best])
          best = i;
      return static_cast<int32_t>(best);
    }
    order.resize(usable);
    std::iota(order.begin(), order.end(), 0);
    size_t keep = topK == 0 ? usable : std::min<size_t>(usable, topK);
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep),
                      order.end(), [&](size_t a, size_t b) {
                        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
                      });
    double top = logits[order[0]], total = 0;
    weights.resize(keep);
    for (size_t i = 0; i < keep; ++i) {
      weights[i] = std::exp((static_cast<double>(logits[order[i]]) - top) / temperature);
      total += weights[i];
    }
    double u = uniform() * total;
    for (size_t i = 0; i < keep; ++i) {
      if (u < weights[i])
        return static_cast<int32_t>(order[i]);
      u -= weights[i];
    }
    return static_cast<int32_t>(order[keep - 1]);
  }

private:
  double uniform() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
  }
  double temperature;
  uint64_t topK, state;
  std::vector<size_t> order;
  std::vector<double> weights;
};

/// What one generation produced.
struct Generated {
  std::vector<int32_t> ids;
  std::vector<std::vector<float>> logits; ///< per generated token (kept for --check-cache)
  std::string stop;                       ///< why it stopped
  double seconds = 0;
};

/// Generates from `prompt` (end-of-text first); streams decoded text to `out` when given.
StatusOr<Generated> generateFrom(Decoder &decoder, Sampler &sampler,
                                 const data::BpeTokenizer &tokenizer,
                                 const std::vector<int32_t> &prompt, uint64_t maxTokens,
                                 int64_t context, bool keepLogits, std::FILE *out) {
  Generated result;
  auto start = std::chrono::steady_clock::now();
  FUSION_RETURN_IF_ERROR(decoder.reset());
  std::vector<int32_t> sequence = prompt;
  std::vector<float> logits;
  FUSION_RETURN_IF_ERROR(decoder.append(sequence, sequence.size(), logits));
  const size_t usable = static_cast<size_t>(tokenizer.vocabSize());
  result.stop = "max-tokens";
  for (uint64_t i = 0; i < maxTokens; ++i) {
    if (keepLogits)
      result.logits.push_back(logits);
    int32_t next = sampler.pick(logits, usable);
    if (next == tokenizer.eotId()) {
      result.stop = "end-of-text";
      break;
    }
    sequence.push_back(next);
    result.ids.push_back(next);
    if (out) {
      StatusOr<std::string> piece = tokenizer.decode({next});
      if (piece.ok())
        std::fwrite(piece->data(), 1, piece->size(), out);
      std::fflush(out);
    }
    if (i + 1 == maxTokens)
      break;
    if (static_cast<int64_t>(sequence.size()) >= context) {
      result.stop = "context-full";
      break;
    }
    FUSION_RETURN_IF_ERROR(decoder.append(sequence, 1, logits));
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

std::string joinIds(const std::vector<int32_t> &ids) {
  std::string text;
  for (int32_t id : ids)
    text += (text.empty() ? "" : " ") + std::to_string(id);
  return text;
}

} // namespace

StatusOr<std::unique_ptr<data::BpeTokenizer>> loadPlanTokenizer(const Plan &plan,
                                                                const std::string &dir,
                                                                std::optional<uint64_t> merges) {
  const ConfigEntry *vocabEntry = plan.findConfig("vocab_size");
  if (!vocabEntry || vocabEntry->type != schema::AttrType::Int)
    return invalid(plan.displayName() + ": the plan has no config 'vocab_size'");
  const int64_t vocab = vocabEntry->i;
  bool defaulted = !merges;
  if (defaulted) {
    if (vocab < 257)
      return invalid(plan.displayName() + ": vocab_size " + std::to_string(vocab) +
                     " is below a byte-level tokenizer's 257 tokens");
    merges = static_cast<uint64_t>(vocab - 257);
  }
  StatusOr<std::unique_ptr<data::BpeTokenizer>> loaded =
      data::BpeTokenizer::load(dir + "/encoder.json", dir + "/vocab.bpe", std::nullopt);
  if (!loaded.ok())
    return loaded.status();
  // Clamp the default to the merges the files have (GPT-2's 50,257 tokens in a padded 50,304).
  if (defaulted)
    merges = std::min<uint64_t>(*merges, (*loaded)->availableMerges());
  if (*merges != (*loaded)->numMerges()) {
    loaded = data::BpeTokenizer::load(dir + "/encoder.json", dir + "/vocab.bpe", merges);
    if (!loaded.ok())
      return loaded.status();
  }
  if ((*loaded)->vocabSize() > vocab)
    return invalid("the tokenizer has " + std::to_string((*loaded)->vocabSize()) +
                   " tokens, more than the plan's vocab_size " + std::to_string(vocab) +
                   " (pass --merges K with K <= " + std::to_string(vocab - 257) + ")");
  return std::move(*loaded);
}

Status loadCheckpointWeights(Executor &executor, const std::string &argument, const char *what,
                             std::FILE *err) {
  const Plan &plan = executor.plan();
  std::string saveDir;
  if (const ConfigEntry *entry = plan.findConfig("save_dir"))
    saveDir = entry->s;
  FUSION_ASSIGN_OR_RETURN(std::string dir, train::resolveCheckpoint(argument, saveDir));
  train::LoadOptions load;
  if (const ConfigEntry *entry = plan.findConfig("config_sha256"))
    load.configSha256 = entry->s;
  std::vector<std::string> warnings;
  FUSION_ASSIGN_OR_RETURN(train::TrainerState state,
                          train::loadCheckpoint(executor, dir, load, &warnings));
  for (const std::string &warning : warnings)
    std::fprintf(err, "fusion-run: warning: %s\n", warning.c_str());
  std::fprintf(err, "fusion-run: %s with %s (step %" PRIu64 ")\n", what, dir.c_str(),
               state.step);
  return Status::okStatus();
}

StatusOr<int> runGeneration(std::shared_ptr<const Plan> plan, const GenerateOptions &options,
                            std::FILE *out, std::FILE *err) {
  // The programs.
  FUSION_ASSIGN_OR_RETURN(const BufferInfo *decodeLogits,
                          binding(*plan, kDecodeProgram, "logits", true, schema::DType::F32, 2));
  FUSION_RETURN_IF_ERROR(
      binding(*plan, kDecodeProgram, "token", false, schema::DType::I32, 2).status());
  FUSION_RETURN_IF_ERROR(
      binding(*plan, kDecodeProgram, "position", false, schema::DType::I32, 1).status());
  const int64_t vocab = decodeLogits->shape[1];
  const BufferInfo *fullTokens = nullptr;
  if (options.recompute || options.checkCache) {
    FUSION_ASSIGN_OR_RETURN(fullTokens, binding(*plan, kLogitsProgram, "tokens", false,
                                                schema::DType::I32, 2));
    FUSION_RETURN_IF_ERROR(
        binding(*plan, kLogitsProgram, "logits", true, schema::DType::F32, 3).status());
  }
  int64_t context = 0;
  for (const BufferInfo &buffer : plan->buffers())
    if (buffer.role == schema::BufferRole::InferenceState && buffer.shape.size() == 4 &&
        buffer.name.size() > 8 && buffer.name.compare(buffer.name.size() - 8, 8, ".k_cache") == 0)
      context = buffer.shape[2];
  if (const ConfigEntry *seqLen = plan->findConfig("seq_len"); context == 0 && seqLen)
    context = seqLen->i; // a model without MLA layers keeps no per-position cache
  // Recomputation runs `logits` on one row of its [B, T+1] tokens: at most T positions
  // (T can be below the caches' max_seq_len under a sequence-length ramp).
  if (fullTokens)
    context = context > 0 ? std::min<int64_t>(context, fullTokens->shape[1] - 1)
                          : fullTokens->shape[1] - 1;
  if (context <= 0)
    return invalid(plan->displayName() + ": cannot tell the context length (no K cache, no "
                                         "config 'seq_len')");

  FUSION_ASSIGN_OR_RETURN(std::unique_ptr<data::BpeTokenizer> tokenizer,
                          loadPlanTokenizer(*plan, options.tokenizerDir, options.merges));
  std::vector<int32_t> prompt = {tokenizer->eotId()};
  tokenizer->encode(options.prompt, prompt);
  if (static_cast<int64_t>(prompt.size()) > context)
    return invalid("the prompt has " + std::to_string(prompt.size() - 1) +
                   " tokens (+1 end-of-text); the model's context is " + std::to_string(context) +
                   " positions");

  FUSION_ASSIGN_OR_RETURN(std::unique_ptr<Executor> executor, createExecutor(plan, options.backend));
  FUSION_RETURN_IF_ERROR(executor->run("init"));
  if (options.checkpoint)
    FUSION_RETURN_IF_ERROR(
        loadCheckpointWeights(*executor, *options.checkpoint, "generating", err));
  else
    std::fprintf(err, "fusion-run: warning: generating with the plan's initial (untrained) "
                      "weights; pass a checkpoint\n");

  CachedDecoder cached(*executor, vocab);
  std::unique_ptr<RecomputingDecoder> recomputing;
  if (fullTokens)
    recomputing = std::make_unique<RecomputingDecoder>(*executor, fullTokens->shape[0],
                                                       fullTokens->shape[1], vocab,
                                                       tokenizer->eotId());

  if (options.checkCache) {
    Sampler greedyA(0, 0, 0), greedyB(0, 0, 0);
    FUSION_ASSIGN_OR_RETURN(Generated a, generateFrom(cached, greedyA, *tokenizer, prompt,
                                                      options.maxTokens, context, true, nullptr));
    FUSION_ASSIGN_OR_RETURN(Generated b, generateFrom(*recomputing, greedyB, *tokenizer, prompt,
                                                      options.maxTokens, context, true, nullptr));
    // Logits are comparable while the two sequences agree.
    double maxDiff = 0, maxAbs = 0;
    size_t compared = 0;
    for (size_t i = 0; i < std::min(a.logits.size(), b.logits.size()); ++i) {
      for (size_t j = 0; j < a.logits[i].size(); ++j) {
        maxDiff = std::max(maxDiff, std::fabs(double(a.logits[i][j]) - double(b.logits[i][j])));
        maxAbs = std::max(maxAbs, std::fabs(double(b.logits[i][j])));
      }
      ++compared;
      if (i >= a.ids.size() || i >= b.ids.size() || a.ids[i] != b.ids[i])
        break;
    }
    bool agree = a.ids == b.ids;
    std::fprintf(out, "prompt tokens: %zu (with end-of-text)\n", prompt.size());
    std::fprintf(out, "cached:     %s\n", joinIds(a.ids).c_str());
    std::fprintf(out, "recomputed: %s\n", joinIds(b.ids).c_str());
    std::fprintf(out, "max |logit difference| = %.3g over %zu steps (max |logit| %.3g)\n",
                 maxDiff, compared, maxAbs);
    std::fprintf(out, "greedy sequences %s (%zu tokens; cached %.3f s, recomputed %.3f s)\n",
                 agree ? "agree" : "DIFFER", a.ids.size(), a.seconds, b.seconds);
    std::fflush(out);
    return agree ? 0 : 1;
  }

  Sampler sampler(options.temperature, options.topK, options.seed);
  Decoder &decoder = options.recompute ? static_cast<Decoder &>(*recomputing)
                                       : static_cast<Decoder &>(cached);
  std::fwrite(options.prompt.data(), 1, options.prompt.size(), out);
  std::fflush(out);
  FUSION_ASSIGN_OR_RETURN(Generated result,
                          generateFrom(decoder, sampler, *tokenizer, prompt, options.maxTokens,
                                       context, false, out));
  std::fprintf(out, "\n");
  if (options.printIds)
    std::fprintf(out, "ids: %s\n", joinIds(result.ids).c_str());
  std::fflush(out);
  double perToken = result.ids.empty() ? 0 : result.seconds / double(result.ids.size());
  std::fprintf(err,
               "fusion-run: %zu tokens in %.2f s on %s (%.1f ms/token incl. the %zu-token "
               "prompt, %s); stopped: %s\n",
               result.ids.size(), result.seconds, executor->deviceDescription().c_str(),
               perToken * 1e3, prompt.size(),
               options.recompute ? "recomputing the prefix with 'logits'"
                                 : "decode_step with caches",
               result.stop.c_str());
  return 0;
}

} // namespace fusion::rt::generate
