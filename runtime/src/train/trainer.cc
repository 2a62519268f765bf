//===- trainer.cc - fusion-run --train: the training loop -----------------===//
//
// One optimizer step (MODEL.md §12 step order, as the runtime sees it): read the n_acc
// micro-batches of step s from the data stream (BatchCoord{s, a, rank 0 of 1, n_acc}),
// stack them into tokens/targets [n_acc, B, T+1], sum their target counts before inverting
// them (1/N_k over the whole step, §8), feed step = (s, t) with t = s − skipped + 1, run
// train_step and read loss, main_loss and ctl. ctl[2] says whether the plan applied the
// update; a skipped step still consumes its data and advances s. Then: metrics, progress,
// eval (every eval_interval completed steps), checkpoint (every save_interval), and a
// pending SIGINT/SIGTERM ends the run after a checkpoint.
//
// Validation (§14.3): eval_max_batches micro-batches of B rows read sequentially from the
// start of the validation stream (synthetic: step field 2^64−1−i for eval batch i), each fed
// with its own 1/N_0, so that Σ_i main_loss_i · N_0,i / Σ_i N_0,i is the token-weighted mean
// main-head CE.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/train.h"

#include "fusion/rt/check.h"

#include "fusion/rt/comm.h"
#include "fusion/rt/trace.h"

#include "json.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include <unistd.h>

namespace fusion::rt::train {

namespace fs = std::filesystem;

namespace {

//===----------------------------------------------------------------------===//
// Signals
//===----------------------------------------------------------------------===//

volatile std::sig_atomic_t gSignal = 0;

extern "C" void onStopSignal(int signal) { gSignal = signal; }

/// Installs SIGINT/SIGTERM handlers that only record the signal (a second signal gets the
/// default action: SA_RESETHAND), and restores the previous handlers on destruction.
class StopSignals {
public:
  StopSignals() {
    gSignal = 0;
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_handler = onStopSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART | SA_RESETHAND;
    sigaction(SIGINT, &action, &oldInt_);
    sigaction(SIGTERM, &action, &oldTerm_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &oldInt_, nullptr);
    sigaction(SIGTERM, &oldTerm_, nullptr);
  }
  int pending() const { return gSignal; }

private:
  struct sigaction oldInt_, oldTerm_;
};

//===----------------------------------------------------------------------===//
// Plan.config
//===----------------------------------------------------------------------===//

const char *attrTypeName(schema::AttrType type) {
  switch (type) {
  case schema::AttrType::Int:
    return "Int";
  case schema::AttrType::Float:
    return "Float";
  case schema::AttrType::String:
    return "String";
  case schema::AttrType::Ints:
    return "Ints";
  case schema::AttrType::Floats:
    return "Floats";
  }
  return "?";
}

/// Typed access to Plan.config with errors naming the plan and the key.
class Config {
public:
  explicit Config(const Plan &plan) : plan_(plan) {}

  StatusOr<std::optional<int64_t>> integer(const char *key) const {
    const ConfigEntry *entry = plan_.findConfig(key);
    if (!entry)
      return std::optional<int64_t>();
    if (entry->type != schema::AttrType::Int)
      return typeError(*entry, "Int");
    return std::optional<int64_t>(entry->i);
  }
  /// A non-negative Int.
  StatusOr<std::optional<uint64_t>> count(const char *key) const {
    FUSION_ASSIGN_OR_RETURN(std::optional<int64_t> value, integer(key));
    if (!value)
      return std::optional<uint64_t>();
    if (*value < 0)
      return Status(StatusCode::kInvalidArgument, plan_.displayName() + ": config " +
                                                      rt::quoted(key) + " is " +
                                                      std::to_string(*value) + " (must be >= 0)");
    return std::optional<uint64_t>(static_cast<uint64_t>(*value));
  }
  StatusOr<std::optional<std::string>> string(const char *key) const {
    const ConfigEntry *entry = plan_.findConfig(key);
    if (!entry)
      return std::optional<std::string>();
    if (entry->type != schema::AttrType::String)
      return typeError(*entry, "String");
    return std::optional<std::string>(entry->s);
  }

private:
  Status typeError(const ConfigEntry &entry, const char *expected) const {
    return Status(StatusCode::kInvalidArgument,
                  plan_.displayName() + ": config " + rt::quoted(entry.name) + " is " +
                      attrTypeName(entry.type) + ", expected " + expected);
  }
  const Plan &plan_;
};

//===----------------------------------------------------------------------===//
// Settings
//===----------------------------------------------------------------------===//

constexpr const char *kInit = "init";
constexpr const char *kTrainStep = "train_step";
constexpr const char *kEvalStep = "eval_step";
constexpr const char *kStepInput = "step";
constexpr const char *kLossOutput = "loss";
constexpr const char *kMainLossOutput = "main_loss";
constexpr const char *kCtlOutput = "ctl";

/// One stretch of the batch-size / sequence-length ramps: from `firstStep` on, `program`
/// trains on micro-batches of `shape` (MODEL.md §13).
struct RampSegment {
  uint64_t firstStep = 0;
  data::BatchShape shape;
  std::string program;
};

struct Settings {
  // Shapes (from train_step's bindings, cross-checked with the config).
  uint64_t accumulation = 1; // n_acc
  data::BatchShape micro;    // B, T, D_m (the steady state)
  /// The ramps' schedule (config shape_schedule); one segment (train_step) without ramps.
  std::vector<RampSegment> schedule;
  std::optional<int64_t> vocab;
  std::optional<data::BatchShape> evalShape;

  uint64_t totalSteps = 0;
  uint64_t targetSteps = 0;
  bool evalEnabled = false;
  uint64_t evalInterval = 1000;
  uint64_t evalBatches = 8;
  uint64_t saveInterval = 500;
  uint64_t keepLast = 5;
  uint64_t logInterval = 50;
  std::string saveDir = "checkpoints/pretrain";
  uint64_t seed = 1234;
  data::DataSpec trainSpec;
  std::optional<data::DataSpec> valSpec;
  std::string configSha256;
  std::string configText;
};

/// The keys named in a --data SPEC's option list (after the format / path).
std::vector<std::string> specKeys(const std::string &text) {
  std::vector<std::string> keys;
  size_t colon = text.find(':');
  if (colon == std::string::npos)
    return keys;
  size_t start = colon + 1;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    std::string item = text.substr(start, end == std::string::npos ? end : end - start);
    size_t eq = item.find('=');
    if (eq != std::string::npos)
      keys.push_back(item.substr(0, eq));
    if (end == std::string::npos)
      break;
    start = end + 1;
  }
  return keys;
}

/// Parses a --data / --val-data SPEC; the keys it leaves out take the config's values.
StatusOr<data::DataSpec> mergeSpec(const std::string &text, const data::DataSpec &defaults) {
  FUSION_ASSIGN_OR_RETURN(data::DataSpec spec, data::parseDataSpec(text));
  std::vector<std::string> keys = specKeys(text);
  auto given = [&](const char *key) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  if (!given("seed"))
    spec.seed = defaults.seed;
  if (!given("pad"))
    spec.padId = defaults.padId;
  if (!given("eos"))
    spec.eosId = defaults.eosId;
  if (spec.format == data::Format::kFusionShards && !given("sampling"))
    spec.sampling = defaults.sampling;
  if (spec.format == data::Format::kFusionShards && !given("mix") &&
      spec.sampling == data::Sampling::kMixture && !defaults.mix.empty())
    spec.mix = defaults.mix;
  if (spec.format == data::Format::kFusionShards && !given("curriculum") &&
      spec.sampling == data::Sampling::kMixture) {
    spec.curriculumSwitchStep = defaults.curriculumSwitchStep;
    spec.stage1 = defaults.stage1;
    spec.stage2 = defaults.stage2;
  }
  return spec;
}

Status invalid(const std::string &message) { return Status(StatusCode::kInvalidArgument, message); }

/// Checks that program `name` binds input/output `binding` as `dtype` with `shape`.
Status expectBinding(const Plan &plan, uint32_t program, bool input, const char *binding,
                     schema::DType dtype, const std::vector<int64_t> &shape,
                     const std::string &why) {
  std::string label = plan.displayName() + ": program " + rt::quoted(plan.programNames()[program]);
  const BindingInfo *info =
      input ? plan.findInput(program, binding) : plan.findOutput(program, binding);
  if (!info)
    return invalid(label + " has no " + (input ? "input " : "output ") + rt::quoted(binding) +
                   " (" + why + ")");
  const BufferInfo &buffer = plan.buffers()[info->buffer];
  if (buffer.dtype != dtype || buffer.shape != shape)
    return invalid(label + " " + (input ? "input " : "output ") + rt::quoted(binding) + " is " +
                   dtypeName(buffer.dtype) + formatShape(buffer.shape) + ", expected " +
                   dtypeName(dtype) + formatShape(shape) + " (" + why + ")");
  return Status::okStatus();
}

StatusOr<Settings> resolveSettings(const Plan &plan, const TrainOptions &options) {
  Config config(plan);
  Settings settings;
  const std::string &name = plan.displayName();

  // Programs and shapes.
  std::optional<uint32_t> init = plan.findProgram(kInit);
  std::optional<uint32_t> train = plan.findProgram(kTrainStep);
  if (!init || !train)
    return invalid(name + " is not a training plan: it has no " +
                   rt::quoted(!init ? kInit : kTrainStep) + " program (programs: " +
                   [&] {
                     std::string list;
                     for (const std::string &p : plan.programNames())
                       list += (list.empty() ? "" : ", ") + rt::quoted(p);
                     return list.empty() ? std::string("none") : list;
                   }() +
                   ")");
  const BindingInfo *tokens = plan.findInput(*train, data::kTokensInput);
  if (!tokens)
    return invalid(name + ": program 'train_step' has no input 'tokens' ([n_acc, B, T+1] i32)");
  const BufferInfo &tokensBuffer = plan.buffers()[tokens->buffer];
  if (tokensBuffer.dtype != schema::DType::I32 || tokensBuffer.shape.size() != 3 ||
      tokensBuffer.shape[0] < 1 || tokensBuffer.shape[1] < 1 || tokensBuffer.shape[2] < 2)
    return invalid(name + ": program 'train_step' input 'tokens' is " +
                   dtypeName(tokensBuffer.dtype) + formatShape(tokensBuffer.shape) +
                   "; it must be i32[n_acc, B, T+1] with n_acc, B, T >= 1");
  settings.accumulation = static_cast<uint64_t>(tokensBuffer.shape[0]);
  settings.micro.rows = tokensBuffer.shape[1];
  settings.micro.seqLen = tokensBuffer.shape[2] - 1;
  const BindingInfo *counts = plan.findInput(*train, data::kInvCountsInput);
  if (!counts)
    return invalid(name + ": program 'train_step' has no input 'inv_counts' ([1+D_m] f32)");
  const BufferInfo &countsBuffer = plan.buffers()[counts->buffer];
  if (countsBuffer.dtype != schema::DType::F32 || countsBuffer.shape.size() != 1 ||
      countsBuffer.shape[0] < 1)
    return invalid(name + ": program 'train_step' input 'inv_counts' is " +
                   dtypeName(countsBuffer.dtype) + formatShape(countsBuffer.shape) +
                   "; it must be f32[1+D_m]");
  settings.micro.mtpDepth = countsBuffer.shape[0] - 1;
  FUSION_RETURN_IF_ERROR(expectBinding(plan, *train, true, data::kTargetsInput, schema::DType::I32,
                                       tokensBuffer.shape, "the targets, shaped like tokens"));
  FUSION_RETURN_IF_ERROR(expectBinding(plan, *train, true, kStepInput, schema::DType::I32, {2},
                                       "(s, t): optimizer step and AdamW update count"));
  FUSION_RETURN_IF_ERROR(
      expectBinding(plan, *train, false, kLossOutput, schema::DType::F32, {}, "the total loss L"));
  FUSION_RETURN_IF_ERROR(expectBinding(plan, *train, false, kMainLossOutput, schema::DType::F32, {},
                                       "the main CE term"));
  FUSION_RETURN_IF_ERROR(expectBinding(plan, *train, false, kCtlOutput, schema::DType::F32, {8},
                                       "[f(s), clip scale, ok, grad norm, t, s, 0, 0]"));

  // Shapes in the config must agree with the bindings.
  struct ShapeKey {
    const char *key;
    int64_t value;
  } shapeKeys[] = {{"grad_accum_steps", static_cast<int64_t>(settings.accumulation)},
                   {"micro_batch_size", settings.micro.rows},
                   {"seq_len", settings.micro.seqLen},
                   {"mtp_depth", settings.micro.mtpDepth}};
  for (const ShapeKey &key : shapeKeys) {
    FUSION_ASSIGN_OR_RETURN(std::optional<int64_t> value, config.integer(key.key));
    if (value && *value != key.value)
      return invalid(name + ": config " + rt::quoted(key.key) + " = " + std::to_string(*value) +
                     " disagrees with program 'train_step' (tokens " +
                     formatShape(tokensBuffer.shape) + ", inv_counts " +
                     formatShape(countsBuffer.shape) + " give " + std::to_string(key.value) + ")");
  }

  // The ramps' schedule "s:BxT,...": one train program per shape it visits (fusionc names
  // them train_step_b{B}_t{T}; the steady shape is train_step). Each is checked now, so a
  // missing or mis-shaped program fails before step 0.
  FUSION_ASSIGN_OR_RETURN(std::optional<std::string> scheduleText, config.string("shape_schedule"));
  if (scheduleText && !scheduleText->empty()) {
    std::string text = *scheduleText;
    size_t start = 0;
    while (start <= text.size()) {
      size_t end = text.find(',', start);
      std::string item = text.substr(start, end == std::string::npos ? end : end - start);
      unsigned long long first = 0;
      long long rows = 0, seqLen = 0;
      char tail = 0;
      if (std::sscanf(item.c_str(), "%llu:%lldx%lld%c", &first, &rows, &seqLen, &tail) != 3 ||
          rows < 1 || seqLen < 1 ||
          (!settings.schedule.empty() && first <= settings.schedule.back().firstStep) ||
          (settings.schedule.empty() && first != 0))
        return invalid(name + ": config 'shape_schedule' (" + text + ") has a bad entry " +
                       rt::quoted(item) + "; expected increasing 'step:BxT' from step 0");
      RampSegment segment;
      segment.firstStep = first;
      segment.shape = {rows, seqLen, settings.micro.mtpDepth};
      segment.program = rows == settings.micro.rows && seqLen == settings.micro.seqLen
                            ? std::string(kTrainStep)
                            : "train_step_b" + std::to_string(rows) + "_t" + std::to_string(seqLen);
      std::optional<uint32_t> program = plan.findProgram(segment.program);
      if (!program)
        return invalid(name + ": the ramp visits " + std::to_string(rows) + " x " +
                       std::to_string(seqLen) + " from step " + std::to_string(first) +
                       " but the plan has no program " + rt::quoted(segment.program));
      std::vector<int64_t> rowsShape = {static_cast<int64_t>(settings.accumulation), rows,
                                        seqLen + 1};
      FUSION_RETURN_IF_ERROR(expectBinding(plan, *program, true, data::kTokensInput,
                                           schema::DType::I32, rowsShape, "[n_acc, B, T+1]"));
      FUSION_RETURN_IF_ERROR(expectBinding(plan, *program, true, data::kTargetsInput,
                                           schema::DType::I32, rowsShape, "[n_acc, B, T+1]"));
      settings.schedule.push_back(segment);
      if (end == std::string::npos)
        break;
      start = end + 1;
    }
  }
  if (settings.schedule.empty())
    settings.schedule.push_back({0, settings.micro, kTrainStep});

  // Vocabulary: --vocab, config, then the embedding table.
  FUSION_ASSIGN_OR_RETURN(std::optional<int64_t> configVocab, config.integer("vocab_size"));
  FUSION_ASSIGN_OR_RETURN(std::optional<int64_t> planVocab, data::planVocabSize(plan));
  settings.vocab = options.vocab ? options.vocab : configVocab ? configVocab : planVocab;
  for (std::optional<int64_t> other : {configVocab, planVocab})
    if (settings.vocab && other && *other != *settings.vocab)
      return invalid(name + ": vocabulary sizes disagree (" + std::to_string(*settings.vocab) +
                     " vs " + std::to_string(*other) + " from the config / the embedding table)");

  // Steps and intervals.
  FUSION_ASSIGN_OR_RETURN(std::optional<uint64_t> totalSteps, config.count("total_steps"));
  if (!totalSteps && !options.steps)
    return invalid(name + " has no config 'total_steps'; pass --steps N");
  settings.totalSteps = totalSteps.value_or(*options.steps);
  settings.targetSteps = options.steps.value_or(settings.totalSteps);

  auto countSetting = [&](const char *key, const std::optional<uint64_t> &flag,
                          uint64_t &slot) -> Status {
    FUSION_ASSIGN_OR_RETURN(std::optional<uint64_t> value, config.count(key));
    slot = flag ? *flag : value.value_or(slot);
    return Status::okStatus();
  };
  FUSION_RETURN_IF_ERROR(
      countSetting("eval_interval", options.evalInterval, settings.evalInterval));
  FUSION_RETURN_IF_ERROR(
      countSetting("eval_max_batches", options.evalBatches, settings.evalBatches));
  FUSION_RETURN_IF_ERROR(
      countSetting("save_interval", options.saveInterval, settings.saveInterval));
  FUSION_RETURN_IF_ERROR(countSetting("keep_last", options.keepLast, settings.keepLast));
  FUSION_RETURN_IF_ERROR(countSetting("log_interval", options.logInterval, settings.logInterval));
  FUSION_ASSIGN_OR_RETURN(std::optional<uint64_t> seed, config.count("seed"));
  settings.seed = seed.value_or(settings.seed);
  FUSION_ASSIGN_OR_RETURN(std::optional<std::string> saveDir, config.string("save_dir"));
  settings.saveDir = options.saveDir ? *options.saveDir : saveDir.value_or(settings.saveDir);
  FUSION_ASSIGN_OR_RETURN(std::optional<std::string> sha, config.string("config_sha256"));
  settings.configSha256 = sha.value_or("");
  FUSION_ASSIGN_OR_RETURN(std::optional<std::string> text, config.string("config_text"));
  settings.configText = text.value_or("");

  // Data: the config's description, then --data.
  data::DataSpec defaults;
  defaults.seed = settings.seed;
  FUSION_ASSIGN_OR_RETURN(std::optional<int64_t> pad, config.integer("pad_token_id"));
  FUSION_ASSIGN_OR_RETURN(std::optional<int64_t> eos, config.integer("eos_token_id"));
  for (auto [key, value] : {std::pair{"pad_token_id", pad}, std::pair{"eos_token_id", eos}})
    if (value && (*value < -1 || *value > INT32_MAX))
      return invalid(name + ": config " + rt::quoted(key) + " = " + std::to_string(*value) +
                     " is not -1 or a token id");
  defaults.padId = static_cast<int32_t>(pad.value_or(-1));
  defaults.eosId = static_cast<int32_t>(eos.value_or(-1));
  FUSION_ASSIGN_OR_RETURN(std::optional<std::string> format, config.string("data_format"));
  FUSION_ASSIGN_OR_RETURN(std::optional<std::string> sampling, config.string("sampling"));
  FUSION_ASSIGN_OR_RETURN(std::optional<std::string> mix, config.string("data_mix"));
  if (format && *format == "fusion_shards")
    defaults.format = data::Format::kFusionShards;
  else if (format && *format == "bin")
    defaults.format = data::Format::kBin;
  else if (format && *format != "synthetic")
    return invalid(name + ": config 'data_format' is " + rt::quoted(*format) +
                   " (expected synthetic, fusion_shards or bin)");
  defaults.sampling = defaults.format == data::Format::kBin ? data::Sampling::kSequential
                                                            : data::Sampling::kMixture;
  if (sampling && !sampling->empty() && defaults.format == data::Format::kFusionShards) {
    if (*sampling == "sequential")
      defaults.sampling = data::Sampling::kSequential;
    else if (*sampling != "mixture")
      return invalid(name + ": config 'sampling' is " + rt::quoted(*sampling) +
                     " (expected mixture or sequential)");
  }
  if (defaults.format == data::Format::kFusionShards) {
    defaults.mix = data::defaultDataMix();
    if (mix && !mix->empty()) {
      StatusOr<data::DataSpec> parsed = data::parseDataSpec("shards:x,mix=" + *mix);
      if (!parsed.ok())
        return invalid(name + ": config 'data_mix' " + rt::quoted(*mix) + ": " +
                       parsed.status().message());
      defaults.mix = parsed->mix;
    }
    // The two-stage curriculum (§13): stage weights switch at curriculum_switch_step.
    FUSION_ASSIGN_OR_RETURN(std::optional<int64_t> switchStep,
                            config.integer("curriculum_switch_step"));
    if (switchStep && *switchStep > 0) {
      FUSION_ASSIGN_OR_RETURN(std::optional<std::string> stage1,
                              config.string("curriculum_stage1"));
      FUSION_ASSIGN_OR_RETURN(std::optional<std::string> stage2,
                              config.string("curriculum_stage2"));
      std::string text = "shards:x,curriculum=" + std::to_string(*switchStep);
      if (stage1 && !stage1->empty())
        text += ",stage1=" + *stage1;
      if (stage2 && !stage2->empty())
        text += ",stage2=" + *stage2;
      StatusOr<data::DataSpec> parsed = data::parseDataSpec(text);
      if (!parsed.ok())
        return invalid(name + ": config curriculum (" + text + "): " +
                       parsed.status().message());
      defaults.curriculumSwitchStep = parsed->curriculumSwitchStep;
      defaults.stage1 = parsed->stage1;
      defaults.stage2 = parsed->stage2;
    }
  }
  FUSION_ASSIGN_OR_RETURN(std::optional<std::string> trainPath,
                          config.string(defaults.format == data::Format::kBin
                                            ? "train_data_path"
                                            : "shard_manifest_path"));
  FUSION_ASSIGN_OR_RETURN(std::optional<std::string> valPath,
                          config.string(defaults.format == data::Format::kBin
                                            ? "val_data_path"
                                            : "val_shard_manifest_path"));
  if (options.data) {
    FUSION_ASSIGN_OR_RETURN(settings.trainSpec, mergeSpec(*options.data, defaults));
  } else {
    settings.trainSpec = defaults;
    if (defaults.format != data::Format::kSynthetic) {
      if (!trainPath || trainPath->empty())
        return invalid(name + ": config has no " +
                       rt::quoted(defaults.format == data::Format::kBin ? "train_data_path"
                                                                        : "shard_manifest_path") +
                       "; pass --data SPEC");
      settings.trainSpec.path = *trainPath;
    }
  }

  // Sequential reading places micro-batch i at i·W·B·T (§14.3), which assumes one shape.
  if (settings.schedule.size() > 1 && settings.trainSpec.format != data::Format::kSynthetic &&
      settings.trainSpec.sampling == data::Sampling::kSequential)
    return invalid(name + ": the batch-size / sequence-length ramps need mixture sampling or "
                          "synthetic data; sequential reading with ramps is not built (pass "
                          "--data ...,sampling=mixture for fusion_shards)");

  // Validation.
  std::optional<uint32_t> eval = plan.findProgram(kEvalStep);
  FUSION_ASSIGN_OR_RETURN(std::optional<int64_t> evalEnabled, config.integer("eval_enabled"));
  settings.evalEnabled = evalEnabled.value_or(0) != 0 || options.valData.has_value() ||
                         (options.evalInterval && *options.evalInterval > 0) ||
                         options.evalOnly;
  if (options.evalOnly && settings.evalInterval == 0)
    settings.evalInterval = 1;
  if (settings.evalInterval == 0)
    settings.evalEnabled = false;
  if (settings.evalEnabled && settings.evalBatches == 0)
    settings.evalEnabled = false;
  if (settings.evalEnabled) {
    if (!eval)
      return invalid(name + ": evaluation is enabled (eval_enabled, --eval-interval or "
                            "--val-data) but the plan has no 'eval_step' program; disable it with "
                            "--eval-interval 0");
    FUSION_ASSIGN_OR_RETURN(settings.evalShape, data::programBatchShape(plan, *eval));
    FUSION_RETURN_IF_ERROR(expectBinding(plan, *eval, false, kMainLossOutput, schema::DType::F32,
                                         {}, "the main CE term"));
    if (!plan.findInput(*eval, data::kInvCountsInput))
      return invalid(name + ": program 'eval_step' has no input 'inv_counts'");
    data::DataSpec val;
    if (options.valData) {
      FUSION_ASSIGN_OR_RETURN(val, mergeSpec(*options.valData, settings.trainSpec));
    } else if (settings.trainSpec.format == data::Format::kSynthetic) {
      val = settings.trainSpec;
    } else {
      if (options.data)
        return invalid("--data given without --val-data: name the validation data too (or "
                       "disable evaluation with --eval-interval 0)");
      if (!valPath || valPath->empty())
        return invalid(name + ": evaluation is enabled but the config has no " +
                       rt::quoted(defaults.format == data::Format::kBin
                                      ? "val_data_path"
                                      : "val_shard_manifest_path") +
                       "; pass --val-data SPEC or --eval-interval 0");
      val = settings.trainSpec;
      val.path = *valPath;
    }
    // Validation is always read sequentially from its start (§14.3).
    if (val.format == data::Format::kFusionShards)
      val.sampling = data::Sampling::kSequential;
    settings.valSpec = val;
  }
  if (!settings.vocab &&
      (settings.trainSpec.format == data::Format::kSynthetic ||
       (settings.valSpec && settings.valSpec->format == data::Format::kSynthetic)))
    return invalid(name + ": synthetic data needs the vocabulary size: the plan has no config "
                          "'vocab_size' and no 'tok_embeddings.weight'; pass --vocab N");
  return settings;
}

//===----------------------------------------------------------------------===//
// Output helpers
//===----------------------------------------------------------------------===//

std::string formatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0)
    return "?";
  uint64_t total = static_cast<uint64_t>(seconds + 0.5);
  char text[48];
  std::snprintf(text, sizeof(text), "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, total / 3600,
                (total / 60) % 60, total % 60);
  return text;
}

std::string formatRate(double tokensPerSecond) {
  char text[48];
  if (tokensPerSecond >= 1e6)
    std::snprintf(text, sizeof(text), "%.2fM", tokensPerSecond / 1e6);
  else if (tokensPerSecond >= 1e3)
    std::snprintf(text, sizeof(text), "%.1fk", tokensPerSecond / 1e3);
  else
    std::snprintf(text, sizeof(text), "%.0f", tokensPerSecond);
  return text;
}

std::string fixed4(double value) {
  if (!std::isfinite(value))
    return std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf");
  char text[48];
  std::snprintf(text, sizeof(text), "%.4f", value);
  return text;
}

/// A timing or rate for the metrics (not needed bit-exactly): 6 significant digits.
std::string shortNumber(double value) {
  if (!std::isfinite(value))
    return "null";
  char text[48];
  std::snprintf(text, sizeof(text), "%.6g", value);
  return text;
}

float readScalar(const std::vector<uint8_t> &bytes, size_t index = 0) {
  float value;
  std::memcpy(&value, bytes.data() + 4 * index, 4);
  return value;
}

//===----------------------------------------------------------------------===//
// The loop
//===----------------------------------------------------------------------===//

class Trainer {
public:
  /// `comm` (null for one rank) is this rank's handle on the dp group; only rank 0 (the
  /// leader) prints, writes metrics and writes checkpoints.
  Trainer(std::shared_ptr<const Plan> plan, const TrainOptions &options, Settings settings,
          std::FILE *out, std::FILE *err, Communicator *comm = nullptr)
      : plan_(std::move(plan)), options_(options), settings_(std::move(settings)), out_(out),
        err_(err), tty_(::isatty(::fileno(err)) == 1), comm_(comm),
        rank_(comm ? static_cast<uint32_t>(comm->rank()) : 0),
        world_(comm ? static_cast<uint32_t>(comm->size()) : 1), leader_(rank_ == 0) {}

  ~Trainer() {
    if (metrics_)
      std::fclose(metrics_);
  }

  StatusOr<int> run();

private:
  Status prepare();
  Status trainStep(uint64_t s);
  StatusOr<double> evaluate();
  Status save();
  Status writeMetrics(const std::string &line);
  void progress(bool force);
  /// A whole line on stderr (ends a live progress line first).
  void message(const std::string &text);
  DataState dataState(uint64_t step);
  /// The pending stop signal, agreed by all ranks (the largest any rank saw), so that every
  /// rank stops after the same step.
  StatusOr<int> agreedSignal();
  /// Sums per-rank target counts over the dp group (the global counts of §8).
  Status sumCounts(std::vector<uint64_t> &counts, const char *what);
  /// Runs program `name` on the executor; with --check-against-cpu, lockstep with the cpu
  /// reference (the program's inputs copied to it first).
  Status runProgram(const char *name);

  std::shared_ptr<const Plan> plan_;
  const TrainOptions &options_;
  Settings settings_;
  std::FILE *out_;
  std::FILE *err_;
  bool tty_;
  bool liveLine_ = false;
  Communicator *comm_;
  uint32_t rank_, world_;
  bool leader_;

  std::unique_ptr<Executor> executor_;
  /// --check-against-cpu: the cpu reference and the checks so far.
  std::unique_ptr<Executor> reference_;
  std::vector<InstructionCheck> checks_;
  std::unique_ptr<data::Source> source_;
  std::unique_ptr<data::Source> valSource_;
  std::FILE *metrics_ = nullptr;
  TrainerState state_;
  std::optional<uint64_t> savedStep_;
  std::string lastCheckpoint_;
  std::optional<uint64_t> evaluatedStep_;
  /// The step --trace times.
  std::optional<uint64_t> traceStep_;

  // Step outputs and timing.
  float loss_ = NAN, mainLoss_ = NAN;
  std::optional<double> valLoss_;
  std::chrono::steady_clock::time_point start_;
  double trainSeconds_ = 0;
  uint64_t stepsThisRun_ = 0;

  // Reused step buffers.
  std::vector<int32_t> tokens_, targets_;
};

DataState Trainer::dataState(uint64_t step) {
  DataState state;
  state.format = data::formatName(settings_.trainSpec.format);
  state.sampling = data::samplingName(settings_.trainSpec.sampling);
  state.seed = settings_.trainSpec.seed;
  data::BatchCoord coord;
  coord.step = step;
  coord.rank = rank_;
  coord.worldSize = world_;
  coord.accumulation = settings_.accumulation;
  StatusOr<std::optional<data::SequentialPosition>> position =
      source_->sequentialPosition(coord, settings_.micro);
  if (position.ok())
    state.position = *position;
  return state;
}

StatusOr<int> Trainer::agreedSignal() {
  int32_t signal = gSignal;
  if (comm_)
    FUSION_RETURN_IF_ERROR(comm_->allReduce(&signal, &signal, 1, schema::DType::I32,
                                            schema::ReduceOp::Max, "the trainer's stop check"));
  return static_cast<int>(signal);
}

Status Trainer::sumCounts(std::vector<uint64_t> &counts, const char *what) {
  if (!comm_)
    return Status::okStatus();
  std::vector<int64_t> wide(counts.begin(), counts.end());
  FUSION_RETURN_IF_ERROR(comm_->allReduce(wide.data(), wide.data(), wide.size(),
                                          schema::DType::I64, schema::ReduceOp::Sum, what));
  std::copy(wide.begin(), wide.end(), counts.begin());
  return Status::okStatus();
}

Status Trainer::runProgram(const char *name) {
  if (!reference_)
    return executor_->run(name);
  std::optional<uint32_t> program = plan_->findProgram(name);
  if (!program)
    return invalid(plan_->displayName() + ": no program named " + quoted(name));
  std::vector<uint8_t> bytes;
  for (const BindingInfo &input : plan_->programInputs(*program)) {
    FUSION_RETURN_IF_ERROR(executor_->readBuffer(input.buffer, bytes));
    FUSION_RETURN_IF_ERROR(reference_->writeBuffer(input.buffer, bytes.data(), bytes.size()));
  }
  auto started = std::chrono::steady_clock::now();
  FUSION_ASSIGN_OR_RETURN(std::vector<InstructionCheck> checks,
                          checkAgainstReference(*reference_, *executor_, name, CheckOptions{}));
  size_t failed = 0;
  double worst = 0;
  for (const InstructionCheck &check : checks) {
    failed += check.passed() ? 0 : 1;
    for (const OutputCheck &output : check.outputs)
      worst = std::max(worst, output.relL2);
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "fusion-run: checked %s (step %llu): %zu instruction(s), %zu failed, worst rel "
                "L2 %.2e, %.1f s",
                name, static_cast<unsigned long long>(state_.step), checks.size(), failed, worst,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  message(line);
  checks_.insert(checks_.end(), checks.begin(), checks.end());
  return Status::okStatus();
}

Status Trainer::prepare() {
  // The plan's data-parallel size must be this run's rank count.
  int32_t planRanks = plan_->meshAxisSize("dp").value_or(1);
  if (static_cast<uint32_t>(planRanks) != world_)
    return invalid(plan_->displayName() + " is compiled for dp=" + std::to_string(planRanks) +
                   " (fusionc --mesh); run it with --nproc " + std::to_string(planRanks) +
                   ", not " + std::to_string(world_) + " rank" + (world_ == 1 ? "" : "s"));
  // Data first: a bad path should fail before the (possibly large) allocation.
  FUSION_ASSIGN_OR_RETURN(source_, data::openSource(settings_.trainSpec, settings_.vocab));
  if (settings_.valSpec) {
    FUSION_ASSIGN_OR_RETURN(valSource_, data::openSource(*settings_.valSpec, settings_.vocab));
  }

  std::string latest = (fs::path(settings_.saveDir) / kLatestFile).string();
  std::error_code error;
  if (!options_.resume && !options_.evalOnly && !options_.noSave &&
      (fs::exists(latest, error) || !listCheckpoints(settings_.saveDir).empty()))
    return Status(StatusCode::kFailedPrecondition,
                  settings_.saveDir + " already holds checkpoints of a run; continue it with "
                                      "--resume latest, or choose another --save-dir");

  MeshContext mesh;
  if (comm_)
    mesh.axes.emplace_back("dp", comm_);
  mesh.device = options_.device;
  FUSION_ASSIGN_OR_RETURN(executor_, createExecutor(plan_, options_.backend, &mesh));
  if (options_.checkAgainstCpu) {
    // On the cpu backend this checks the cpu against itself: a test of the check's plumbing.
    if (world_ != 1)
      return invalid("--check-against-cpu checks a single rank; leave out --nproc");
    FUSION_ASSIGN_OR_RETURN(reference_, createExecutor(plan_, BackendKind::kCpu));
  }
  FUSION_RETURN_IF_ERROR(runProgram(kInit));

  state_.seed = settings_.seed;
  state_.worldSize = world_;
  state_.configSha256 = settings_.configSha256;
  state_.configText = settings_.configText;
  if (options_.resume) {
    FUSION_ASSIGN_OR_RETURN(std::string dir,
                            resolveCheckpoint(*options_.resume, settings_.saveDir));
    LoadOptions load;
    load.configSha256 = settings_.configSha256;
    load.force = options_.forceResume;
    load.worldSize = world_;
    std::vector<std::string> warnings;
    FUSION_ASSIGN_OR_RETURN(TrainerState loaded, loadCheckpoint(*executor_, dir, load, &warnings));
    for (const std::string &warning : warnings)
      message("fusion-run: warning: " + warning);
    // The data stream must be the one the checkpoint was reading.
    DataState now = dataState(loaded.step);
    std::string trainer = (fs::path(dir) / kTrainerFile).string();
    if (now.format != loaded.data.format || now.sampling != loaded.data.sampling ||
        now.seed != loaded.data.seed ||
        (now.position.has_value() != loaded.data.position.has_value()) ||
        (now.position && (now.position->shard != loaded.data.position->shard ||
                          now.position->pos != loaded.data.position->pos))) {
      auto describe = [](const DataState &d) {
        std::string text = d.format + "/" + d.sampling + " seed " + std::to_string(d.seed);
        if (d.position)
          text += " shard " + std::to_string(d.position->shard) + " pos " +
                  std::to_string(d.position->pos);
        return text;
      };
      std::string text = trainer + ": the checkpoint's data state (" + describe(loaded.data) +
                         ") differs from this run's data at step " + std::to_string(loaded.step) +
                         " (" + describe(now) + ")";
      if (!options_.forceResume)
        return Status(StatusCode::kFailedPrecondition,
                      text + "; pass the same --data, or --force-resume");
      message("fusion-run: warning: " + text + " (--force-resume)");
    }
    if (loaded.step > settings_.targetSteps)
      return invalid(dir + " is at step " + std::to_string(loaded.step) + ", past the target of " +
                     std::to_string(settings_.targetSteps) + " steps (--steps)");
    loaded.configSha256 = settings_.configSha256;
    loaded.configText = settings_.configText;
    loaded.data = dataState(loaded.step);
    loaded.worldSize = world_;
    state_ = loaded;
    savedStep_ = state_.step;
    lastCheckpoint_ = dir;
    message("fusion-run: resumed from " + dir + " at step " + std::to_string(state_.step));
  }
  state_.data = dataState(state_.step);

  if (options_.metricsPath && leader_) {
    metrics_ = std::fopen(options_.metricsPath->c_str(), options_.resume ? "a" : "w");
    if (!metrics_)
      return Status(StatusCode::kUnavailable,
                    *options_.metricsPath + ": cannot open for writing: " + std::strerror(errno));
  }
  return Status::okStatus();
}

Status Trainer::writeMetrics(const std::string &line) {
  if (!metrics_)
    return Status::okStatus();
  if (std::fputs(line.c_str(), metrics_) < 0 || std::fputc('\n', metrics_) == EOF ||
      std::fflush(metrics_) != 0)
    return Status(StatusCode::kUnavailable, *options_.metricsPath + ": write failed");
  return Status::okStatus();
}

void Trainer::message(const std::string &text) {
  if (!leader_)
    return;
  if (liveLine_) {
    std::fputc('\n', err_);
    liveLine_ = false;
  }
  std::fprintf(err_, "%s\n", text.c_str());
  std::fflush(err_);
}

void Trainer::progress(bool force) {
  if (!leader_)
    return;
  uint64_t step = state_.step;
  bool due = tty_ || force || (settings_.logInterval > 0 && step % settings_.logInterval == 0);
  if (!due)
    return;
  uint64_t tokensPerStep = settings_.accumulation * world_ *
                           static_cast<uint64_t>(settings_.micro.rows * settings_.micro.seqLen);
  double rate = trainSeconds_ > 0 ? stepsThisRun_ * tokensPerStep / trainSeconds_ : 0;
  double eta = stepsThisRun_ ? trainSeconds_ / stepsThisRun_ *
                                   static_cast<double>(settings_.targetSteps - step)
                             : NAN;
  std::string line = "step " + std::to_string(step) + "/" + std::to_string(settings_.targetSteps) +
                     " | loss " + fixed4(loss_) + " | val " +
                     (valLoss_ ? fixed4(*valLoss_) : std::string("-")) + " | " + formatRate(rate) +
                     " tok/s | ETA " + formatDuration(eta);
  if (state_.skippedSteps)
    line += " | skipped " + std::to_string(state_.skippedSteps);
  if (tty_) {
    std::fprintf(err_, "\r%s\x1b[K", line.c_str());
    liveLine_ = true;
  } else {
    std::fprintf(err_, "%s\n", line.c_str());
  }
  std::fflush(err_);
}

Status Trainer::trainStep(uint64_t s) {
  auto stepStart = std::chrono::steady_clock::now();
  // The program and micro-batch shape of step s (the ramps' segment it falls in).
  const RampSegment *segment = &settings_.schedule.front();
  for (const RampSegment &candidate : settings_.schedule)
    if (candidate.firstStep <= s)
      segment = &candidate;
  const data::BatchShape &micro = segment->shape;
  const char *kTrainStep = segment->program.c_str();
  uint64_t rowsTokens = static_cast<uint64_t>(micro.rows) * static_cast<uint64_t>(micro.seqLen + 1);
  tokens_.resize(settings_.accumulation * rowsTokens);
  targets_.resize(tokens_.size());
  std::vector<uint64_t> counts(static_cast<size_t>(micro.mtpDepth) + 1, 0);
  for (uint64_t a = 0; a < settings_.accumulation; ++a) {
    data::BatchCoord coord;
    coord.step = s;
    coord.micro = a;
    coord.rank = rank_;
    coord.worldSize = world_;
    coord.accumulation = settings_.accumulation;
    StatusOr<data::Batch> batch = data::makeBatch(*source_, settings_.trainSpec, micro, coord);
    if (!batch.ok())
      return batch.status().withPrefix("step " + std::to_string(s) + " micro-batch " +
                                       std::to_string(a));
    std::copy(batch->tokens.begin(), batch->tokens.end(), tokens_.begin() + a * rowsTokens);
    std::copy(batch->targets.begin(), batch->targets.end(), targets_.begin() + a * rowsTokens);
    for (size_t k = 0; k < counts.size(); ++k)
      counts[k] += batch->counts[k];
  }
  FUSION_RETURN_IF_ERROR(sumCounts(counts, "the trainer's target counts"));
  std::vector<float> invCounts = data::inverseCounts(counts);
  uint64_t t = s - state_.skippedSteps + 1;
  if (s > INT32_MAX || t > INT32_MAX)
    return invalid("step " + std::to_string(s) + " does not fit the plan's i32 step input");
  int32_t step[2] = {static_cast<int32_t>(s), static_cast<int32_t>(t)};
  std::vector<int64_t> rowsShape = {static_cast<int64_t>(settings_.accumulation), micro.rows,
                                    micro.seqLen + 1};
  FUSION_RETURN_IF_ERROR(executor_->setInput(kTrainStep, data::kTokensInput, schema::DType::I32,
                                             rowsShape, tokens_.data(), tokens_.size() * 4));
  FUSION_RETURN_IF_ERROR(executor_->setInput(kTrainStep, data::kTargetsInput, schema::DType::I32,
                                             rowsShape, targets_.data(), targets_.size() * 4));
  FUSION_RETURN_IF_ERROR(executor_->setInput(kTrainStep, data::kInvCountsInput, schema::DType::F32,
                                             {micro.mtpDepth + 1}, invCounts.data(),
                                             invCounts.size() * 4));
  FUSION_RETURN_IF_ERROR(
      executor_->setInput(kTrainStep, kStepInput, schema::DType::I32, {2}, step, sizeof(step)));
  bool traced = traceStep_ && *traceStep_ == s;
  if (traced)
    executor_->setTiming(true);
  FUSION_RETURN_IF_ERROR(runProgram(kTrainStep));
  if (traced) {
    executor_->setTiming(false);
    std::string summary;
    FUSION_ASSIGN_OR_RETURN(std::string file,
                            writeTraceFile(*options_.tracePath, static_cast<int>(rank_), *plan_,
                                           *executor_, summary));
    message("fusion-run: trace of step " + std::to_string(s) + " (" + kTrainStep +
            ") written to " + file + " (open in ui.perfetto.dev): " +
            summary.substr(0, summary.size() - 1));
  }

  std::vector<uint8_t> bytes;
  FUSION_RETURN_IF_ERROR(executor_->readOutput(kTrainStep, kLossOutput, bytes));
  loss_ = readScalar(bytes);
  FUSION_RETURN_IF_ERROR(executor_->readOutput(kTrainStep, kMainLossOutput, bytes));
  mainLoss_ = readScalar(bytes);
  FUSION_RETURN_IF_ERROR(executor_->readOutput(kTrainStep, kCtlOutput, bytes));
  float ctl[8];
  std::memcpy(ctl, bytes.data(), sizeof(ctl));
  if (ctl[5] != static_cast<float>(s) || ctl[4] != static_cast<float>(t))
    return Status(StatusCode::kInternal,
                  plan_->displayName() + ": program 'train_step' reported ctl[4..5] = (t " +
                      json::number(ctl[4]) + ", s " + json::number(ctl[5]) +
                      ") for step input (s " + std::to_string(s) + ", t " + std::to_string(t) +
                      "); the plan must copy its step input into ctl");
  if (ctl[2] != 0.0f && ctl[2] != 1.0f)
    return Status(StatusCode::kInternal,
                  plan_->displayName() +
                      ": program 'train_step' reported ctl[2] (ok) = " + json::number(ctl[2]) +
                      " at step " + std::to_string(s) + "; it must be 1 (applied) or 0 (skipped)");
  bool skipped = ctl[2] == 0.0f;
  if (skipped) {
    ++state_.skippedSteps;
    ++state_.consecutiveSkips;
  } else {
    state_.consecutiveSkips = 0;
  }
  uint64_t tokensPerStep = settings_.accumulation * world_ * static_cast<uint64_t>(micro.rows) *
                           static_cast<uint64_t>(micro.seqLen);
  state_.tokensSeen += tokensPerStep;
  state_.step = s + 1;

  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stepStart).count();
  trainSeconds_ += seconds;
  ++stepsThisRun_;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string line =
      "{\"type\": \"train\", \"step\": " + std::to_string(state_.step) +
      ", \"loss\": " + json::number(loss_) + ", \"main_loss\": " + json::number(mainLoss_) +
      ", \"lr_factor\": " + json::number(ctl[0]) + ", \"clip_scale\": " + json::number(ctl[1]) +
      ", \"grad_norm\": " + json::number(ctl[3]) +
      ", \"skipped\": " + (skipped ? "true" : "false") +
      ", \"skipped_total\": " + std::to_string(state_.skippedSteps) +
      ", \"tokens\": " + std::to_string(state_.tokensSeen) +
      ", \"tokens_per_s\": " + shortNumber(seconds > 0 ? tokensPerStep / seconds : 0.0) +
      ", \"elapsed_s\": " + shortNumber(elapsed) + "}";
  FUSION_RETURN_IF_ERROR(writeMetrics(line));
  return Status::okStatus();
}

StatusOr<double> Trainer::evaluate() {
  const data::BatchShape &shape = *settings_.evalShape;
  const data::DataSpec &spec = *settings_.valSpec;
  double weighted = 0;
  uint64_t tokens = 0;
  std::vector<uint8_t> bytes;
  for (uint64_t i = 0; i < settings_.evalBatches; ++i) {
    data::BatchCoord coord;
    // Sequential sources number batches from the start; synthetic uses 2^64−1−i (§14.3).
    coord.step = spec.format == data::Format::kSynthetic ? UINT64_MAX - i : i;
    coord.rank = rank_;
    coord.worldSize = world_;
    StatusOr<data::Batch> batch = data::makeBatch(*valSource_, spec, shape, coord);
    if (!batch.ok())
      return batch.status().withPrefix("validation batch " + std::to_string(i));
    if (comm_) {
      // The plan's eval_step sums main_loss over the ranks: feed the global 1/N_k.
      FUSION_RETURN_IF_ERROR(sumCounts(batch->counts, "the validation target counts"));
      batch->invCounts = data::inverseCounts(batch->counts);
    }
    std::vector<int64_t> rowsShape = {shape.rows, shape.seqLen + 1};
    uint32_t program = *plan_->findProgram(kEvalStep);
    if (plan_->findInput(program, data::kTokensInput))
      FUSION_RETURN_IF_ERROR(executor_->setInput(kEvalStep, data::kTokensInput, schema::DType::I32,
                                                 rowsShape, batch->tokens.data(),
                                                 batch->tokens.size() * 4));
    if (plan_->findInput(program, data::kTargetsInput))
      FUSION_RETURN_IF_ERROR(executor_->setInput(kEvalStep, data::kTargetsInput, schema::DType::I32,
                                                 rowsShape, batch->targets.data(),
                                                 batch->targets.size() * 4));
    FUSION_RETURN_IF_ERROR(executor_->setInput(kEvalStep, data::kInvCountsInput, schema::DType::F32,
                                               {shape.mtpDepth + 1}, batch->invCounts.data(),
                                               batch->invCounts.size() * 4));
    FUSION_RETURN_IF_ERROR(runProgram(kEvalStep));
    FUSION_RETURN_IF_ERROR(executor_->readOutput(kEvalStep, kMainLossOutput, bytes));
    // main_loss = Σ CE / N_0 of this batch: weight it back by N_0.
    weighted += static_cast<double>(readScalar(bytes)) * static_cast<double>(batch->counts[0]);
    tokens += batch->counts[0];
  }
  double valLoss = tokens ? weighted / static_cast<double>(tokens) : NAN;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  FUSION_RETURN_IF_ERROR(
      writeMetrics("{\"type\": \"eval\", \"step\": " + std::to_string(state_.step) +
                   ", \"val_loss\": " + json::number(valLoss) + ", \"val_ppl\": " +
                   json::number(std::exp(valLoss)) + ", \"val_tokens\": " + std::to_string(tokens) +
                   ", \"elapsed_s\": " + shortNumber(elapsed) + "}"));
  valLoss_ = valLoss;
  evaluatedStep_ = state_.step;
  if (std::isfinite(valLoss) && (!state_.bestValLoss || valLoss < *state_.bestValLoss))
    state_.bestValLoss = valLoss;
  if (!tty_)
    message("eval step " + std::to_string(state_.step) + " | val_loss " + fixed4(valLoss) +
            " | val_ppl " + fixed4(std::exp(valLoss)));
  return valLoss;
}

Status Trainer::save() {
  if (options_.noSave) {
    lastCheckpoint_ = "(none: --no-save)";
    return Status::okStatus();
  }
  if (savedStep_ && *savedStep_ == state_.step)
    return Status::okStatus(); // this state is on disk already
  state_.data = dataState(state_.step);
  if (!leader_) {
    // Every rank holds the same weights and state (NO_SHARD): rank 0 writes them.
    savedStep_ = state_.step;
    lastCheckpoint_ = (fs::path(settings_.saveDir) / checkpointName(state_.step)).string();
    return Status::okStatus();
  }
  FUSION_ASSIGN_OR_RETURN(
      std::string dir, saveCheckpoint(*executor_, state_, settings_.saveDir, settings_.keepLast));
  savedStep_ = state_.step;
  lastCheckpoint_ = dir;
  message("saved checkpoint " + dir);
  return Status::okStatus();
}

StatusOr<int> Trainer::run() {
  start_ = std::chrono::steady_clock::now();
  FUSION_RETURN_IF_ERROR(prepare());
  message("fusion-run: training " + plan_->displayName() + " on " +
          executor_->deviceDescription() + " from step " +
          std::to_string(state_.step) + " to " + std::to_string(settings_.targetSteps) +
          " (n_acc " + std::to_string(settings_.accumulation) + " x B " +
          std::to_string(settings_.micro.rows) + " x T " + std::to_string(settings_.micro.seqLen) +
          (settings_.schedule.size() > 1
               ? " at the steady state, " + std::to_string(settings_.schedule.size()) +
                     " shapes under the ramps"
               : std::string()) +
          "; data " + source_->describe() + "; checkpoints " + settings_.saveDir +
          (world_ > 1 ? "; " + std::to_string(world_) + " data-parallel ranks" : std::string()) +
          ")");

  if (options_.tracePath && !options_.evalOnly) {
    uint64_t first = state_.step, last = settings_.targetSteps;
    if (first >= last)
      return invalid("--trace: this run trains no step (it starts at step " +
                     std::to_string(first) + ", the target)");
    traceStep_ = options_.traceStep ? *options_.traceStep : (first + 1 < last ? first + 1 : first);
    if (*traceStep_ < first || *traceStep_ >= last)
      return invalid("--trace-step " + std::to_string(*traceStep_) +
                     " is not a step this run trains (" + std::to_string(first) + ".." +
                     std::to_string(last - 1) + ")");
  }
  if (options_.evalOnly) {
    if (!settings_.evalEnabled)
      return invalid("--eval: no validation batches (--eval-batches / eval_max_batches is 0)");
    FUSION_ASSIGN_OR_RETURN(double valLoss, evaluate());
    if (leader_) {
      std::fprintf(out_, "step = %" PRIu64 "\n", state_.step);
      std::fprintf(out_, "val_loss = %s\n", fixed4(valLoss).c_str());
      std::fprintf(out_, "val_ppl = %s\n", fixed4(std::exp(valLoss)).c_str());
      std::fflush(out_);
    }
    return 0;
  }

  auto stopped = [&](int signal) {
    const char *name = signal == SIGINT ? "SIGINT" : "SIGTERM";
    message("fusion-run: " + std::string(name) + " received: stopped after step " +
            std::to_string(state_.step) + ", checkpoint " + lastCheckpoint_ +
            " (continue with --resume latest)");
    return 128 + signal;
  };
  bool starting = true;
  while (state_.step < settings_.targetSteps) {
    // A signal that arrived while starting up (later ones are caught after each step; the
    // check is a collective across ranks, so it runs once here, not every iteration).
    if (starting) {
      starting = false;
      FUSION_ASSIGN_OR_RETURN(int early, agreedSignal());
      if (early) {
        FUSION_RETURN_IF_ERROR(save());
        return stopped(early);
      }
    }
    uint64_t s = state_.step;
    FUSION_RETURN_IF_ERROR(trainStep(s));
    bool last = state_.step == settings_.targetSteps;
    if (options_.maxConsecutiveSkips > 0 &&
        state_.consecutiveSkips >= options_.maxConsecutiveSkips) {
      progress(true);
      std::string checkpoint = lastCheckpoint_.empty()
                                   ? std::string("no checkpoint was written")
                                   : "the last checkpoint is " + lastCheckpoint_;
      return Status(StatusCode::kFailedPrecondition,
                    "aborting: " + std::to_string(state_.consecutiveSkips) +
                        " consecutive optimizer steps were skipped (steps " +
                        std::to_string(state_.step - state_.consecutiveSkips) + ".." +
                        std::to_string(state_.step - 1) +
                        ": the loss or the gradient norm was not finite; " +
                        std::to_string(state_.skippedSteps) +
                        " skipped in all; limit --max-consecutive-skips " +
                        std::to_string(options_.maxConsecutiveSkips) + "); " + checkpoint);
    }
    FUSION_ASSIGN_OR_RETURN(int signal, agreedSignal());
    if (!signal && settings_.evalEnabled && state_.step % settings_.evalInterval == 0)
      FUSION_RETURN_IF_ERROR(evaluate().status());
    if (!signal && last && settings_.evalEnabled && evaluatedStep_ != state_.step)
      FUSION_RETURN_IF_ERROR(evaluate().status());
    progress(last || signal);
    FUSION_ASSIGN_OR_RETURN(signal, agreedSignal());
    if (signal || last || (settings_.saveInterval > 0 && state_.step % settings_.saveInterval == 0))
      FUSION_RETURN_IF_ERROR(save());
    if (signal)
      return stopped(signal);
  }
  if (stepsThisRun_ == 0) {
    // Nothing to train (resumed at the target): still honour "eval at the end".
    if (settings_.evalEnabled && evaluatedStep_ != state_.step)
      FUSION_RETURN_IF_ERROR(evaluate().status());
    FUSION_RETURN_IF_ERROR(save());
  }
  if (!leader_)
    return 0;
  if (liveLine_) {
    std::fputc('\n', err_);
    liveLine_ = false;
  }
  std::fprintf(out_, "step = %" PRIu64 "\n", state_.step);
  if (stepsThisRun_) {
    std::fprintf(out_, "loss = %s\n", fixed4(loss_).c_str());
    std::fprintf(out_, "main_loss = %s\n", fixed4(mainLoss_).c_str());
  }
  if (valLoss_)
    std::fprintf(out_, "val_loss = %s\n", fixed4(*valLoss_).c_str());
  std::fprintf(out_, "skipped_steps = %" PRIu64 "\n", state_.skippedSteps);
  std::fprintf(out_, "checkpoint = %s\n", lastCheckpoint_.c_str());
  std::fflush(out_);
  if (reference_) {
    std::string report = formatCheckReport(*plan_, checks_, CheckOptions{});
    std::fputs(report.c_str(), out_);
    std::fflush(out_);
    for (const InstructionCheck &check : checks_)
      if (!check.passed())
        return Status(StatusCode::kInternal,
                      "--check-against-cpu: the cuda backend disagrees with the cpu reference "
                      "(table above)");
  }
  return 0;
}

} // namespace

StatusOr<int> runTraining(std::shared_ptr<const Plan> plan, const TrainOptions &options,
                          std::FILE *out, std::FILE *err) {
  if (!plan)
    return invalid("runTraining: no plan");
  FUSION_ASSIGN_OR_RETURN(Settings settings, resolveSettings(*plan, options));
  StopSignals signals;
  if (options.comm) {
    // One rank of a multi-process job: the communicator spans the processes.
    Trainer trainer(std::move(plan), options, std::move(settings), out, err, options.comm);
    return trainer.run();
  }
  int32_t planRanks = plan->meshAxisSize("dp").value_or(1);
  uint32_t ranks = options.nproc ? options.nproc : static_cast<uint32_t>(std::max(planRanks, 1));
  if (ranks != static_cast<uint32_t>(planRanks))
    return invalid("--nproc " + std::to_string(ranks) + ": " + plan->displayName() +
                   " is compiled for dp=" + std::to_string(planRanks) +
                   " (fusionc --mesh dp=N sets it); run it with --nproc " +
                   std::to_string(planRanks));
  if (ranks == 1) {
    Trainer trainer(std::move(plan), options, std::move(settings), out, err);
    return trainer.run();
  }
  if (options.backend != BackendKind::kCpu)
    return Status(StatusCode::kInvalidArgument,
                  "--nproc " + std::to_string(ranks) + " on the " + backendName(options.backend) +
                      " backend runs one process per GPU: start them with fusion-run --nproc " +
                      std::to_string(ranks) + " --backend cuda (or torchrun / srun); the cpu "
                      "backend runs the ranks as threads of this process (--backend cpu)");
  // The CPU backend's ranks are threads of this process with shared-memory collectives.
  FUSION_ASSIGN_OR_RETURN(std::unique_ptr<ThreadGroup> group,
                          ThreadGroup::create(static_cast<int>(ranks)));
  std::vector<StatusOr<int>> results(ranks, StatusOr<int>(0));
  std::mutex firstMutex;
  std::optional<uint32_t> firstFailure;
  auto runRank = [&](uint32_t rank) {
    Trainer trainer(plan, options, settings, out, err, &group->comm(static_cast<int>(rank)));
    results[rank] = trainer.run();
    if (!results[rank].ok()) {
      {
        std::lock_guard<std::mutex> lock(firstMutex);
        if (!firstFailure)
          firstFailure = rank;
      }
      // Peers waiting in a collective return at once with this reason.
      group->comm(static_cast<int>(rank))
          .abort("rank " + std::to_string(rank) + " failed: " + results[rank].status().message());
    }
  };
  std::vector<std::thread> threads;
  for (uint32_t rank = 1; rank < ranks; ++rank)
    threads.emplace_back(runRank, rank);
  runRank(0);
  for (std::thread &thread : threads)
    thread.join();
  if (firstFailure)
    return results[*firstFailure].status().withPrefix("rank " + std::to_string(*firstFailure));
  return results[0];
}

} // namespace fusion::rt::train
