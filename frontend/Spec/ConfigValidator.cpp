//===- ConfigValidator.cpp - Range and cross-key rules of a Config --------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// Checks a Config against the single-key rules of the key table and the
// cross-key rules of MODEL.md (§1-§5, §13, §14, §17). A single-key error is
// located at the key's value; a cross-key error at the value of the key that
// was written last in the file, with a note at each other key that was
// written. Rules whose inputs already failed (unreadable value, out of range)
// are skipped, so one mistake gives one error.
//
//===----------------------------------------------------------------------===//

#include "frontend/Spec/ConfigInternal.h"
#include "frontend/Spec/ConfigSpec.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/SourceMgr.h"

#include <cmath>

using namespace fusion::spec;
using namespace fusion::spec::detail;
using llvm::SMLoc;
using llvm::StringRef;
using llvm::Twine;

namespace fusion::spec::detail {
void validateConfigImpl(const Config &config, DiagEmitter &diags,
                        const KeyLocations &locations,
                        const llvm::StringSet<> &skipKeys);
} // namespace fusion::spec::detail

namespace {

std::string str(int64_t value) { return std::to_string(value); }
std::string str(double value) { return formatNumber(value); }

class Validator {
public:
  Validator(const Config &config, DiagEmitter &diags,
            const KeyLocations &locations, const llvm::StringSet<> &skipKeys)
      : config(config), diags(diags), locations(locations), skipKeys(skipKeys) {
  }

  void run() {
    checkSingleKeys();
    checkModel();
    checkTraining();
    checkData();
  }

private:
  //===--- locations and reporting
  //-----------------------------------------===//

  const KeyLocation *lookup(StringRef qualified) const {
    return locations.lookup(qualified);
  }

  SMLoc valueLoc(StringRef qualified) const {
    const KeyLocation *location = lookup(qualified);
    return location ? location->value.Start : SMLoc();
  }

  /// True if a rule on \p keys must be skipped because one of them failed.
  bool anyFailed(std::initializer_list<StringRef> keys) const {
    return llvm::any_of(keys, [&](StringRef key) {
      return skipKeys.contains(key) || badKeys.contains(key);
    });
  }

  void keyError(StringRef qualified, const Twine &message) {
    badKeys.insert(qualified);
    diags.error(valueLoc(qualified), message);
  }

  /// Reports a rule over several keys at the key written last in the file,
  /// with a note at each other written key.
  void crossError(std::initializer_list<StringRef> keys, const Twine &message,
                  bool warning = false) {
    StringRef primary;
    const char *primaryPos = nullptr;
    for (StringRef key : keys) {
      const KeyLocation *location = lookup(key);
      if (!location)
        continue;
      const char *pos = location->value.Start.getPointer();
      if (!primaryPos || pos > primaryPos) {
        primary = key;
        primaryPos = pos;
      }
    }
    SMLoc loc = primaryPos ? SMLoc::getFromPointer(primaryPos) : SMLoc();
    if (warning) {
      diags.warning(loc, message);
    } else {
      diags.error(loc, message);
      for (StringRef key : keys)
        badKeys.insert(key);
    }
    for (StringRef key : keys)
      if (key != primary)
        if (const KeyLocation *location = lookup(key))
          diags.note(location->value.Start, key + " set here");
  }

  //===--- single-key rules
  //------------------------------------------------===//

  void checkSingleKeys();
  /// Checks \p value against the key's bounds; \p exact is the value of an
  /// integer key (for display and the integer-only rules).
  void checkNumber(const KeyInfo &key, StringRef name, double value, SMLoc loc,
                   const int64_t *exact = nullptr);
  void checkString(const KeyInfo &key, StringRef value);
  void checkRequired(const KeyInfo &key, StringRef shown, bool matches,
                     bool quote = false);

  //===--- cross-key rules
  //-------------------------------------------------===//

  void checkModel();
  void checkMoE();
  void checkGdn();
  void checkTraining();
  void checkData();

  const Config &config;
  DiagEmitter &diags;
  const KeyLocations &locations;
  const llvm::StringSet<> &skipKeys;
  /// Keys that broke a rule; later rules on them are skipped.
  llvm::StringSet<> badKeys;
};

} // namespace

//===----------------------------------------------------------------------===//
// Single-key rules
//===----------------------------------------------------------------------===//

void Validator::checkRequired(const KeyInfo &key, StringRef shown, bool matches,
                              bool quote) {
  if (matches)
    return;
  std::string qualified = key.getQualifiedName();
  std::string required = quote ? "'" + std::string(key.rule.required) + "'"
                               : std::string(key.rule.required);
  keyError(qualified,
           qualified + " " + shown + " must be " + required +
               (key.rule.requiredWhy ? " " + std::string(key.rule.requiredWhy)
                                     : std::string()));
}

void Validator::checkNumber(const KeyInfo &key, StringRef name, double value,
                            SMLoc loc, const int64_t *exact) {
  const KeyRule &rule = key.rule;
  bool isInteger = exact != nullptr;
  std::string shown = isInteger ? str(*exact) : formatNumber(value);
  auto fail = [&](const Twine &what) {
    badKeys.insert(key.getQualifiedName());
    diags.error(loc, name + " (" + shown + ") must be " + what);
  };
  bool belowMin =
      rule.hasMin && (rule.minExclusive ? value <= rule.min : value < rule.min);
  bool aboveMax =
      rule.hasMax && (rule.maxExclusive ? value >= rule.max : value > rule.max);
  if (belowMin || aboveMax) {
    std::string range = describeRule(key);
    // describeRule appends the multiple/even parts; keep only the bounds.
    range = StringRef(range).split(", multiple").first.str();
    range = StringRef(range).split(", even").first.str();
    if (rule.hasMin && rule.hasMax)
      fail("in " + range);
    else
      fail(range);
    return;
  }
  if (isInteger && rule.multipleOf && *exact % rule.multipleOf != 0) {
    fail("a multiple of " + Twine(rule.multipleOf));
    return;
  }
  if (isInteger && rule.even && *exact % 2 != 0) {
    fail("even");
    return;
  }
  if (isInteger && rule.choices) {
    llvm::SmallVector<StringRef> choices;
    StringRef(rule.choices).split(choices, '|');
    if (!llvm::is_contained(choices, shown))
      fail("one of " + llvm::join(choices, ", "));
  }
}

void Validator::checkString(const KeyInfo &key, StringRef value) {
  std::string qualified = key.getQualifiedName();
  if (key.rule.required) {
    checkRequired(key, ("'" + value + "'").str(), value == key.rule.required,
                  /*quote=*/true);
    return;
  }
  if (!key.rule.choices)
    return;
  llvm::SmallVector<StringRef> choices;
  StringRef(key.rule.choices).split(choices, '|');
  if (llvm::is_contained(choices, value))
    return;
  std::vector<std::string> candidates(choices.begin(), choices.end());
  std::string closest = getClosestMatch(value, candidates);
  std::string list;
  for (StringRef choice : choices)
    list += (list.empty() ? "'" : ", '") + choice.str() + "'";
  keyError(qualified,
           qualified + " '" + value + "' is not one of " + list +
               (closest.empty() ? std::string()
                                : "; did you mean '" + closest + "'?"));
}

void Validator::checkSingleKeys() {
  // The table's accessors take a mutable Config; validation only reads.
  Config &fields = const_cast<Config &>(config);
  for (const KeyInfo &key : getConfigKeys()) {
    std::string qualified = key.getQualifiedName();
    if (skipKeys.contains(qualified))
      continue;
    SMLoc loc = valueLoc(qualified);
    const KeyLocation *location = lookup(qualified);
    auto elementLoc = [&](size_t index) {
      if (location && index < location->elements.size())
        return location->elements[index].Start;
      return loc;
    };
    FieldRef field = key.field(fields);

    auto checkInteger = [&](int64_t value) {
      if (key.rule.required) {
        checkRequired(key, "(" + str(value) + ")",
                      str(value) == key.rule.required);
        return;
      }
      checkNumber(key, qualified, double(value), loc, &value);
    };
    auto checkReal = [&](double value) {
      if (key.rule.required) {
        double required = 0.0;
        parseNumberText(key.rule.required, required);
        checkRequired(key, "(" + str(value) + ")", value == required);
        return;
      }
      checkNumber(key, qualified, value, loc);
    };

    if (auto **p = std::get_if<int64_t *>(&field)) {
      checkInteger(**p);
    } else if (auto **p = std::get_if<std::optional<int64_t> *>(&field)) {
      if (**p)
        checkInteger(***p);
    } else if (auto **p = std::get_if<double *>(&field)) {
      checkReal(**p);
    } else if (auto **p = std::get_if<std::optional<double> *>(&field)) {
      if (**p)
        checkReal(***p);
    } else if (auto **p = std::get_if<bool *>(&field)) {
      if (key.rule.required)
        checkRequired(key, **p ? "(true)" : "(false)",
                      (**p ? "true" : "false") == StringRef(key.rule.required));
    } else if (auto **p = std::get_if<std::string *>(&field)) {
      checkString(key, **p);
    } else if (auto **p = std::get_if<std::optional<std::string> *>(&field)) {
      if (**p)
        checkString(key, ***p);
    } else if (auto **p = std::get_if<std::vector<double> *>(&field)) {
      for (auto [index, value] : llvm::enumerate(**p))
        checkNumber(key, qualified + "[" + std::to_string(index) + "]", value,
                    elementLoc(index));
    } else if (auto **p = std::get_if<SourceWeights *>(&field)) {
      for (auto [index, weight] : llvm::enumerate(**p))
        checkNumber(key, qualified + "." + weight.source, weight.weight,
                    elementLoc(index));
    }
  }
}

//===----------------------------------------------------------------------===//
// Cross-key rules: model
//===----------------------------------------------------------------------===//

void Validator::checkModel() {
  const ModelConfig &m = config.model;

  // §1: H mod G = 0 (contiguous query-head blocks per KV group).
  if (!anyFailed({"model.n_heads", "model.n_kv_groups"}) &&
      m.nHeads % m.nKvGroups != 0)
    crossError({"model.n_heads", "model.n_kv_groups"},
               "model.n_heads (" + str(m.nHeads) +
                   ") must be divisible by model.n_kv_groups (" +
                   str(m.nKvGroups) + ")");

  // §2: schedule syntax.
  std::string error;
  if (!anyFailed({"model.layer_schedule"}) &&
      !parseLayerSchedule(m.layerSchedule, &error))
    keyError("model.layer_schedule", "model.layer_schedule " + error);
  error.clear();
  if (!anyFailed({"model.sliding_window_schedule"}) &&
      !parseWindowSchedule(m.slidingWindowSchedule, &error))
    keyError("model.sliding_window_schedule",
             "model.sliding_window_schedule " + error);

  checkMoE();
  checkGdn();

  // §7: module k predicts from T-k positions, so T must exceed D_m.
  if (!anyFailed({"model.max_seq_len", "model.mtp_depth"}) &&
      m.maxSeqLen <= m.mtpDepth)
    crossError({"model.max_seq_len", "model.mtp_depth"},
               "model.max_seq_len (" + str(m.maxSeqLen) +
                   ") must be greater than model.mtp_depth (" +
                   str(m.mtpDepth) + ")");

  // §17: one weight per MTP depth; extra entries would be silently unused.
  // Only checked for a schedule written in the file, so that lowering
  // mtp_depth alone keeps the (truncated) default schedule.
  if (lookup("model.mtp_loss_weight_schedule") &&
      !anyFailed({"model.mtp_loss_weight_schedule", "model.mtp_depth"}) &&
      int64_t(m.mtpLossWeightSchedule.size()) > m.mtpDepth)
    crossError({"model.mtp_loss_weight_schedule", "model.mtp_depth"},
               "model.mtp_loss_weight_schedule has " +
                   str(int64_t(m.mtpLossWeightSchedule.size())) +
                   " entries but model.mtp_depth is " + str(m.mtpDepth) +
                   "; it needs at most one weight per MTP depth");

  // §7/§9: a capped MTP head needs c > 0.
  if (m.mtpDepth > 0 && m.mtpSoftcap &&
      !anyFailed({"model.mtp_softcap_value", "model.mtp_softcap"}) &&
      m.mtpSoftcapValue <= 0)
    crossError({"model.mtp_softcap_value", "model.mtp_softcap"},
               "model.mtp_softcap_value (" + str(m.mtpSoftcapValue) +
                   ") must be > 0 when model.mtp_softcap is true");

  // §17: T should be a multiple of C; a partial last chunk works but is
  // slower and not what the shipped configs exercise.
  bool hasGdn = llvm::any_of(m.getLayerKinds(),
                             [](const LayerKind &k) { return k.isGdn(); });
  if (hasGdn && !anyFailed({"model.max_seq_len", "model.gdn_chunk_size"}) &&
      m.maxSeqLen % m.gdnChunkSize != 0)
    crossError({"model.max_seq_len", "model.gdn_chunk_size"},
               "model.max_seq_len (" + str(m.maxSeqLen) +
                   ") is not a multiple of model.gdn_chunk_size (" +
                   str(m.gdnChunkSize) +
                   "); the last GDN chunk of every row is partial",
               /*warning=*/true);
}

void Validator::checkMoE() {
  const ModelConfig &m = config.model;
  // §5's optional seed-era knobs are not built: reject them rather than train without them.
  if (m.expertCapacityFactor > 0 && !anyFailed({"model.expert_capacity_factor"}))
    crossError({"model.expert_capacity_factor"},
               "model.expert_capacity_factor (" + str(m.expertCapacityFactor) +
                   ") > 0 asks for capacity-limited dispatch, which is not supported yet; "
                   "use 0 (dropless, the MODEL.md default)");
  if (m.expertDropoutProb > 0 && !anyFailed({"model.expert_dropout_prob"}))
    crossError({"model.expert_dropout_prob"},
               "model.expert_dropout_prob (" + str(m.expertDropoutProb) +
                   ") > 0 asks for expert dropout, which is not supported yet; use 0");
  if (m.nRoutedExperts == 0 ||
      anyFailed({"model.n_routed_experts", "model.n_expert_groups",
                 "model.n_limited_groups", "model.group_topk",
                 "model.n_activated_experts"}))
    return;

  // §5: G_e divides E.
  if (m.nRoutedExperts % m.nExpertGroups != 0) {
    crossError({"model.n_routed_experts", "model.n_expert_groups"},
               "model.n_routed_experts (" + str(m.nRoutedExperts) +
                   ") must be divisible by model.n_expert_groups (" +
                   str(m.nExpertGroups) + ")");
    return;
  }
  int64_t perGroup = m.nRoutedExperts / m.nExpertGroups;

  // §5: M_g <= G_e.
  bool limitedOk = true;
  if (m.nLimitedGroups > m.nExpertGroups) {
    crossError({"model.n_limited_groups", "model.n_expert_groups"},
               "model.n_limited_groups (" + str(m.nLimitedGroups) +
                   ") must be <= model.n_expert_groups (" +
                   str(m.nExpertGroups) + ")");
    limitedOk = false;
  }

  // §5: q_g <= E/G_e.
  if (m.groupTopk > perGroup)
    crossError(
        {"model.group_topk", "model.n_routed_experts", "model.n_expert_groups"},
        "model.group_topk (" + str(m.groupTopk) +
            ") must be <= the experts per group, "
            "model.n_routed_experts / model.n_expert_groups (" +
            str(m.nRoutedExperts) + " / " + str(m.nExpertGroups) + " = " +
            str(perGroup) + ")");

  // §5: 1 <= K <= M_g * E / G_e (K >= 1 is a single-key rule).
  if (limitedOk && m.nActivatedExperts > m.nLimitedGroups * perGroup)
    crossError({"model.n_activated_experts", "model.n_limited_groups",
                "model.n_routed_experts", "model.n_expert_groups"},
               "model.n_activated_experts (" + str(m.nActivatedExperts) +
                   ") must be <= model.n_limited_groups * experts per group "
                   "(" +
                   str(m.nLimitedGroups) + " * " + str(perGroup) + " = " +
                   str(m.nLimitedGroups * perGroup) + ")");
}

void Validator::checkGdn() {
  const ModelConfig &m = config.model;
  if (anyFailed({"model.gdn_expand", "model.dim", "model.gdn_headdim"}))
    return;
  // §4: H_g = gdn_expand * D / d_h must be an integer.
  int64_t width = m.gdnExpand * m.dim;
  if (width % m.gdnHeaddim != 0) {
    crossError({"model.gdn_expand", "model.dim", "model.gdn_headdim"},
               "model.gdn_expand * model.dim (" + str(m.gdnExpand) + " * " +
                   str(m.dim) + " = " + str(width) +
                   ") must be divisible by model.gdn_headdim (" +
                   str(m.gdnHeaddim) + ")");
    return;
  }
  // §4: H_gk divides H_g.
  int64_t valueHeads = width / m.gdnHeaddim;
  if (m.gdnNKHeads && !anyFailed({"model.gdn_n_k_heads"}) &&
      valueHeads % *m.gdnNKHeads != 0)
    crossError({"model.gdn_n_k_heads", "model.gdn_expand", "model.dim",
                "model.gdn_headdim"},
               "model.gdn_n_k_heads (" + str(*m.gdnNKHeads) +
                   ") must divide the GDN value heads H_g = gdn_expand * "
                   "dim / gdn_headdim (" +
                   str(valueHeads) + ")");
}

//===----------------------------------------------------------------------===//
// Cross-key rules: training and data
//===----------------------------------------------------------------------===//

void Validator::checkTraining() {
  const TrainingConfig &t = config.training;

  if (!anyFailed({"training.adamw_betas"}) && t.adamwBetas.size() != 2)
    keyError("training.adamw_betas",
             "training.adamw_betas must have exactly 2 entries (beta1, "
             "beta2), got " +
                 str(int64_t(t.adamwBetas.size())));

  // §13: the decay phase must have at least one step.
  if (t.scheduler == "wsd" &&
      !anyFailed({"training.wsd_warmup_frac", "training.wsd_stable_frac",
                  "training.total_steps", "training.scheduler"})) {
    LrPhases phases = getLrPhases(t);
    if (phases.decay < 1)
      crossError({"training.wsd_warmup_frac", "training.wsd_stable_frac",
                  "training.total_steps"},
                 "the WSD schedule has no decay step: training.total_steps (" +
                     str(t.totalSteps) + ") - N_w (" + str(phases.warmup) +
                     ") - N_st (" + str(phases.stable) +
                     ") = " + str(phases.decay) + ", but N_d must be >= 1");
  }
  if (t.scheduler == "cosine" &&
      !anyFailed({"training.warmup_steps", "training.total_steps",
                  "training.scheduler"}) &&
      t.totalSteps - t.warmupSteps < 1)
    crossError(
        {"training.warmup_steps", "training.total_steps", "training.scheduler"},
        "training.warmup_steps (" + str(t.warmupSteps) +
            ") must be < training.total_steps (" + str(t.totalSteps) +
            ") for the cosine scheduler");

  // §13: the sequence-length ramp stays within [128, max_seq_len].
  if (t.seqLenScheduleEnabled) {
    for (StringRef key :
         {"training.initial_seq_len", "training.final_seq_len"}) {
      int64_t value =
          key == "training.initial_seq_len" ? t.initialSeqLen : t.finalSeqLen;
      if (anyFailed({key, "model.max_seq_len"}))
        continue;
      if (value < 128)
        keyError(key, key + " (" + str(value) +
                          ") must be >= 128 (ramp lengths are rounded down "
                          "to a multiple of 128)");
      else if (value > config.model.maxSeqLen)
        crossError(
            {key, "model.max_seq_len", "training.seq_len_schedule_enabled"},
            key + " (" + str(value) + ") must be <= model.max_seq_len (" +
                str(config.model.maxSeqLen) +
                ") when training.seq_len_schedule_enabled is true");
    }
  }

  // §13: a curriculum needs usable stage weights.
  if (t.curriculumSwitchStep > 0)
    for (StringRef key : {"training.curriculum_stage1_weights",
                          "training.curriculum_stage2_weights"}) {
      const SourceWeights &weights = key.ends_with("stage1_weights")
                                         ? t.curriculumStage1Weights
                                         : t.curriculumStage2Weights;
      double total = 0.0;
      for (const SourceWeight &w : weights)
        total += w.weight;
      if (!anyFailed({key}) && !(total > 0))
        crossError({key, "training.curriculum_switch_step"},
                   key + " must have a positive total weight when "
                         "training.curriculum_switch_step is set");
    }
}

void Validator::checkData() {
  const DataConfig &d = config.data;
  int64_t vocab = config.model.vocabSize;

  // §14: token ids index the embedding.
  for (StringRef key : {"data.eos_token_id", "data.pad_token_id"}) {
    int64_t id = key == "data.eos_token_id" ? d.eosTokenId : d.padTokenId;
    if (!anyFailed({key, "model.vocab_size"}) && id >= vocab)
      crossError({key, "model.vocab_size"},
                 key + " (" + str(id) + ") must be < model.vocab_size (" +
                     str(vocab) + ")");
  }

  if (anyFailed({"data.format", "data.sampling"}))
    return;
  // §14.2: the bin format reads the given files.
  if (d.format == "bin" && d.trainDataPath.empty())
    crossError({"data.format", "data.train_data_path"},
               "data.train_data_path is required when data.format is 'bin'");
  if (d.format == "bin" && config.training.evalEnabled && d.valDataPath.empty())
    crossError({"data.format", "training.eval_enabled", "data.val_data_path"},
               "data.val_data_path is required when data.format is 'bin' and "
               "training.eval_enabled is true");
  // §14.3: mixture sampling draws sources from a shard manifest.
  if (d.format == "bin" && d.getSampling() == "mixture")
    crossError({"data.sampling", "data.format"},
               "data.sampling 'mixture' requires data.format "
               "'fusion_shards' (bin files have no sources)");
  if (d.format == "fusion_shards" && d.getSampling() == "mixture" &&
      !anyFailed({"data.data_mix"})) {
    double total = 0.0;
    for (const SourceWeight &w : d.dataMix)
      total += w.weight;
    if (!(total > 0))
      crossError({"data.data_mix", "data.sampling", "data.format"},
                 "data.data_mix must have a positive total weight for "
                 "mixture sampling");
  }
}

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

void detail::validateConfigImpl(const Config &config, DiagEmitter &diags,
                                const KeyLocations &locations,
                                const llvm::StringSet<> &skipKeys) {
  Validator(config, diags, locations, skipKeys).run();
}

unsigned fusion::spec::validateConfig(const Config &config,
                                      llvm::SourceMgr &sourceMgr,
                                      const KeyLocations &locations) {
  DiagEmitter diags(sourceMgr);
  llvm::StringSet<> none;
  validateConfigImpl(config, diags, locations, none);
  return diags.getNumErrors();
}
