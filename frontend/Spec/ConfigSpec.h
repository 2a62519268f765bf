//===- ConfigSpec.h - FusionLLM configuration model and parser --*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// The plain C++ view of a FusionLLM config file (MODEL.md §17): one struct per
// YAML section, the key table that is the single source of truth for every
// key's name, type, default, valid range and documentation, the YAML parser
// (llvm::yaml over an llvm::SourceMgr, so every diagnostic carries
// file:line:col), the cross-key validator, and the quantities derived from a
// config (layer kinds of the §2 schedule, GDN head counts, WSD phases). This
// library has no MLIR dependency; frontend/Import builds IR from its result.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_FRONTEND_SPEC_CONFIGSPEC_H
#define FUSION_FRONTEND_SPEC_CONFIGSPEC_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SMLoc.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace llvm {
class SourceMgr;
class raw_ostream;
} // namespace llvm

namespace fusion::spec {

//===----------------------------------------------------------------------===//
// Config structs
//===----------------------------------------------------------------------===//

/// One named source of a data mixture (`data_mix`, curriculum stages).
struct SourceWeight {
  std::string source;
  double weight = 0.0;

  bool operator==(const SourceWeight &other) const {
    return source == other.source && weight == other.weight;
  }
};
using SourceWeights = std::vector<SourceWeight>;

/// Free-form `name: value` pairs kept verbatim: runtime and logging hints that
/// have no semantic effect (`device`, `num_workers`, `wandb_*`, ...).
using HintList = std::vector<std::pair<std::string, std::string>>;

/// The token mixer and the FFN of a backbone layer (§2).
enum class MixerKind { MLA, GDN };
enum class FfnKind { MoE, Dense };

/// The kind of one backbone layer, derived from `layer_schedule`,
/// `n_routed_experts` and `sliding_window_schedule` (§2).
struct LayerKind {
  MixerKind mixer = MixerKind::MLA;
  FfnKind ffn = FfnKind::Dense;
  /// Ordinal of this layer among the MLA layers, -1 for GDN layers.
  int64_t mlaOrdinal = -1;
  /// True for an MLA layer with a sliding window (local attention).
  bool isLocal = false;
  /// The window W_sw of a local MLA layer, 0 for global MLA and GDN layers.
  int64_t window = 0;

  bool isMla() const { return mixer == MixerKind::MLA; }
  bool isGdn() const { return mixer == MixerKind::GDN; }
  bool isMoE() const { return ffn == FfnKind::MoE; }
};

/// `model:` (MODEL.md §17, model table). Field names are the YAML keys in
/// camelBack. The section structs are zero-initialised; the defaults of
/// §17 come from the key table through Config().
struct ModelConfig {
  int64_t vocabSize{}, maxSeqLen{}, dim{}, nLayers{};
  std::string layerSchedule;
  double normEps{};
  int64_t nHeads{}, nKvGroups{}, qLoraRank{}, kvLoraRank{};
  int64_t qkNopeHeadDim{}, qkRopeHeadDim{}, vHeadDim{};
  bool qkNorm{};
  double ropeTheta{}, ropeFactor{};
  int64_t slidingWindow{};
  std::string slidingWindowSchedule;
  int64_t interDim{};
  std::string ffnActivation;
  int64_t nRoutedExperts{}, nActivatedExperts{}, nSharedExperts{},
      moeInterDim{};
  std::string moeActivation;
  int64_t nExpertGroups{}, nLimitedGroups{}, groupTopk{};
  double routeScale{}, expertCapacityFactor{}, expertDropoutProb{};
  int64_t moeWarmupSteps{};
  double biasUpperThreshold{}, biasLowerThreshold{};
  std::string ssmType;
  int64_t gdnDState{}, gdnHeaddim{}, gdnDConv{}, gdnExpand{};
  /// H_gk; unset means H_g (gdnValueHeads()).
  std::optional<int64_t> gdnNKHeads;
  int64_t gdnChunkSize{};
  int64_t mambaDState{}, mambaDConv{}, mambaHeaddim{};
  int64_t mtpDepth{};
  /// FFN width of the MTP blocks; unset means inter_dim.
  std::optional<int64_t> mtpInterDim;
  std::vector<double> mtpLossWeightSchedule;
  double mtpLossWeight{};
  bool mtpSoftcap{};
  double mtpSoftcapValue{}, logitSoftcap{};
  bool muP{}, asymmetricRescale{};
  int64_t moleEveryN{}, moleRank{}, moleNExperts{}, moleTopK{};
  bool tieEmbeddings{}, noBiasLinear{};

  /// d_qk = d_n + d_r.
  int64_t qkHeadDim() const { return qkNopeHeadDim + qkRopeHeadDim; }
  /// H_g = gdn_expand * dim / gdn_headdim (0 if gdn_headdim is not positive).
  int64_t gdnValueHeads() const;
  /// H_gk: gdn_n_k_heads, defaulting to H_g.
  int64_t gdnKeyHeads() const { return gdnNKHeads.value_or(gdnValueHeads()); }
  /// The dense FFN width of the MTP blocks: mtp_inter_dim, default inter_dim.
  int64_t mtpFfnDim() const { return mtpInterDim.value_or(interDim); }
  /// The loss weight w_k of MTP depth k (1-based): the schedule entry, or
  /// mtp_loss_weight where the schedule is shorter than mtp_depth.
  double mtpLossWeightAt(int64_t depth) const;
  /// Experts per expert group, E / G_e (0 without MoE).
  int64_t expertsPerGroup() const;
  /// True if MLA layers use the MoE FFN (n_routed_experts > 0).
  bool hasMoE() const { return nRoutedExperts > 0; }
  /// The kind of every backbone layer, index 0..n_layers-1 (§2). Requires a
  /// validated config; an unparsable schedule is treated as "mha".
  std::vector<LayerKind> getLayerKinds() const;
};

/// `training:` (MODEL.md §17, training table).
struct TrainingConfig {
  int64_t seed{}, microBatchSize{}, gradientAccumulationSteps{}, totalSteps{};
  std::string optimizer, scheduler;
  double lr{}, muonLr{}, muonMomentum{};
  bool nesterov{};
  double normuonBeta2{};
  std::vector<double> adamwBetas;
  double adamwEps{};
  bool adamwCautiousUpdate{};
  double weightDecay{};
  bool cautiousWd{};
  /// λ_μ of NorMuon; unset means weight_decay.
  std::optional<double> muonWeightDecay;
  std::string cautiousWdMode;
  double gradClip{};
  std::string dtype;
  double wsdWarmupFrac{}, wsdStableFrac{};
  std::string wsdDecay;
  double minLrRatio{};
  int64_t warmupSteps{};
  double balanceLossAlpha{}, zLossWeight{}, biasUpdateSpeed{};
  int64_t biasUpdateEvery{};
  bool useCheckpoint{};
  std::string saveDir;
  int64_t saveInterval{}, keepLast{}, logInterval{};
  bool evalEnabled{};
  int64_t evalInterval{}, evalMaxBatches{};
  bool evalSynthetic{};
  std::vector<std::string> evalTasks;
  int64_t curriculumSwitchStep{};
  SourceWeights curriculumStage1Weights, curriculumStage2Weights;
  bool batchSizeScheduleEnabled{};
  int64_t initialBatchSize{}, finalBatchSize{}, batchSizeScheduleSteps{};
  bool seqLenScheduleEnabled{};
  int64_t initialSeqLen{}, finalSeqLen{}, seqLenScheduleSteps{};
  bool fuseCeSoftcap{}, fuseLinearRelu2{};
  /// `wandb_*` and `mlflow_*` keys, verbatim.
  HintList loggingHints;

  /// λ_μ: muon_weight_decay, defaulting to weight_decay.
  double getMuonWeightDecay() const {
    return muonWeightDecay.value_or(weightDecay);
  }
};

/// `data:` (MODEL.md §17, data table).
struct DataConfig {
  std::string format, shardManifestPath, valShardManifestPath;
  /// Empty when not given (required for format `bin`).
  std::string trainDataPath, valDataPath;
  /// Unset means mixture for fusion_shards, sequential otherwise.
  std::optional<std::string> sampling;
  SourceWeights dataMix;
  int64_t eosTokenId{}, padTokenId{};

  /// The sampling rule in effect (§14.3).
  llvm::StringRef getSampling() const;
};

/// `distributed:` (MODEL.md §17, distributed/hardware table).
struct DistributedConfig {
  int64_t nGpus{};
  std::string fsdpShardStrategy, fsdpParamDtype, fsdpReduceDtype;
  bool fsdpForwardPrefetch{}, fsdpBackwardPrefetch{}, fsdpLimitAllGathers{};
  int64_t shardKeepLast{};
  std::string checkpointBackend;
  bool asyncCheckpointing{};
  /// `device`, `num_workers`, ...: runtime hints without semantic effect.
  HintList runtimeHints;
};

/// The whole config. Default construction gives every default of the key
/// table (MODEL.md §17).
struct Config {
  ModelConfig model;
  TrainingConfig training;
  DataConfig data;
  DistributedConfig distributed;

  Config();
};

/// The WSD phase lengths of §13 (or the cosine scheduler's N_w, 0, N_d).
struct LrPhases {
  int64_t warmup = 0, stable = 0, decay = 0;
};

/// N_w, N_st, N_d of `training` per §13 (fp64 floor with the 1e-9 guard).
LrPhases getLrPhases(const TrainingConfig &training);

/// The LR schedule factor f(s) of §13 for optimizer step \p step.
double getLrFactor(const TrainingConfig &training, int64_t step);

/// One stretch of the batch-size / sequence-length ramps (§13): from optimizer step
/// `firstStep` on (until the next segment), micro-batches of `rows` x `seqLen`.
struct ShapeSegment {
  int64_t firstStep = 0, rows = 0, seqLen = 0;
};

/// B(s) and T(s) of §13: B(s) = B_0 + floor((B_1 - B_0) s / S_b) for s < S_b, else B_1
/// (micro_batch_size without the ramp); T(s) the same form, rounded down to a multiple of
/// 128 and at most max_seq_len (max_seq_len without the ramp).
int64_t getRampBatchSize(const Config &config, int64_t step);
int64_t getRampSeqLen(const Config &config, int64_t step);

/// The shapes the ramps visit over steps [0, total_steps), in step order, one segment per
/// change; the last is the steady state (final_batch_size, final_seq_len rounded down to 128).
/// A single segment when no ramp is on.
std::vector<ShapeSegment> getShapeSchedule(const Config &config);

/// Tokens per optimizer step at the steady-state shapes:
/// B * n_acc * W_dp * T.
int64_t getTokensPerStep(const Config &config);

//===----------------------------------------------------------------------===//
// Schedule strings
//===----------------------------------------------------------------------===//

/// A parsed `layer_schedule` (§2).
struct LayerSchedule {
  enum class Kind { AllMla, AllGdn, Period, SsmEvery } kind = Kind::AllMla;
  /// Period form "A:B": A MLA layers then B GDN layers.
  int64_t mlaPerPeriod = 0, gdnPerPeriod = 0;
  /// "ssm:N": every N-th layer is GDN.
  int64_t ssmEvery = 0;

  /// True if backbone layer \p layer is a GDN layer.
  bool isGdn(int64_t layer) const;
};

/// Parses a `layer_schedule` string; on failure returns std::nullopt and sets
/// \p error to a message fragment (no key name, no trailing period).
std::optional<LayerSchedule> parseLayerSchedule(llvm::StringRef text,
                                                std::string *error = nullptr);

/// A parsed `sliding_window_schedule` (§2): MLA ordinal j is global iff
/// (j mod (local + global)) >= local.
struct WindowSchedule {
  enum class Kind { AllLocal, AllGlobal, Period } kind = Kind::AllGlobal;
  int64_t local = 0, global = 0;

  /// True if MLA layer ordinal \p mlaOrdinal attends locally.
  bool isLocal(int64_t mlaOrdinal) const;
};

/// Parses a `sliding_window_schedule` string ("all", "none" or "A:B").
std::optional<WindowSchedule> parseWindowSchedule(llvm::StringRef text,
                                                  std::string *error = nullptr);

//===----------------------------------------------------------------------===//
// Key table
//===----------------------------------------------------------------------===//

/// The four top-level sections.
enum class Section { Model, Training, Data, Distributed };

/// The YAML name of \p section ("model", ...).
llvm::StringRef getSectionName(Section section);

/// All sections in file order.
llvm::ArrayRef<Section> getAllSections();

/// The value type of a key, which decides how its YAML node is read.
enum class ValueType {
  Integer,       ///< plain integer scalar (underscores allowed: 143_000)
  Number,        ///< finite real scalar (integers accepted)
  Boolean,       ///< true / false
  String,        ///< any scalar; with choices an enumeration
  NumberList,    ///< sequence of numbers
  StringList,    ///< sequence of strings
  SourceWeights, ///< mapping of source name -> weight
  Hint,          ///< any scalar, kept verbatim, no semantic effect
};

/// A pointer to the field that a key reads and writes.
using FieldRef =
    std::variant<int64_t *, double *, bool *, std::string *,
                 std::optional<int64_t> *, std::optional<double> *,
                 std::optional<std::string> *, std::vector<double> *,
                 std::vector<std::string> *, SourceWeights *, HintList *>;

/// The single-key valid range of a key. Cross-key rules live in the
/// validator.
struct KeyRule {
  /// Numeric bounds (for numbers and integers, and each list element).
  bool hasMin = false, minExclusive = false;
  double min = 0.0;
  bool hasMax = false, maxExclusive = false;
  double max = 0.0;
  /// Integers: must be a multiple of this (0 = no rule).
  int64_t multipleOf = 0;
  /// Strings/integers: the allowed values, '|'-separated (nullptr = any).
  const char *choices = nullptr;
  /// Unsupported features: the only accepted value, as YAML text.
  const char *required = nullptr;
  /// Why `required` is required (message fragment).
  const char *requiredWhy = nullptr;
  /// Integers: must be even.
  bool even = false;
};

/// One row of the key table: everything the parser, the validator, the
/// defaults and the documentation know about a key.
struct KeyInfo {
  Section section;
  const char *name;
  ValueType type;
  /// The default as YAML text; nullptr if the default is derived from other
  /// keys or absent (see defaultDoc).
  const char *defaultValue;
  /// Documentation of a derived default ("H_g", "inter_dim"); nullptr if
  /// defaultValue says it all.
  const char *defaultDoc;
  KeyRule rule;
  const char *doc;
  /// The field this key reads and writes.
  FieldRef (*field)(Config &);

  /// "section.name", the form used in diagnostics.
  std::string getQualifiedName() const;
};

/// The key table (MODEL.md §17), in documentation order.
llvm::ArrayRef<KeyInfo> getConfigKeys();

/// Looks up a key by section and name (aliases included); nullptr if unknown.
const KeyInfo *lookupConfigKey(Section section, llvm::StringRef name);

/// Key aliases accepted by the parser: (section, alias, canonical name).
struct KeyAlias {
  Section section;
  const char *alias;
  const char *canonical;
};
llvm::ArrayRef<KeyAlias> getConfigKeyAliases();

/// Name prefixes accepted as free-form hints in a section (`wandb_`, ...).
struct HintPrefix {
  Section section;
  const char *prefix;
};
llvm::ArrayRef<HintPrefix> getConfigHintPrefixes();

/// Prints the key table as a Markdown reference (one table per section).
void printConfigReference(llvm::raw_ostream &os);

/// Prints \p config as a YAML file that parses back to an equal config. Unset
/// derived defaults are omitted.
void printConfigYaml(const Config &config, llvm::raw_ostream &os);

//===----------------------------------------------------------------------===//
// Parsing and validation
//===----------------------------------------------------------------------===//

/// Where a key was written in the config file.
struct KeyLocation {
  /// The key token, e.g. `n_heads` of `n_heads: 12`.
  llvm::SMRange key;
  /// The value node.
  llvm::SMRange value;
  /// For sequences and mappings: one range per element (value nodes).
  llvm::SmallVector<llvm::SMRange, 4> elements;
};

/// Source locations of everything the parser read, keyed by
/// "section.key" (canonical key names) and by "section" for section headers.
/// frontend/Import uses them to give ops YAML locations.
class KeyLocations {
public:
  /// The location of \p qualifiedName, or nullptr if it was not in the file.
  const KeyLocation *lookup(llvm::StringRef qualifiedName) const;
  void set(llvm::StringRef qualifiedName, KeyLocation location);
  bool contains(llvm::StringRef qualifiedName) const {
    return lookup(qualifiedName) != nullptr;
  }
  size_t size() const { return entries.size(); }

private:
  llvm::StringMap<KeyLocation> entries;
};

/// A successfully parsed config and the locations of its keys.
struct ParsedConfig {
  Config config;
  KeyLocations locations;
  /// The SourceMgr buffer the config was read from.
  unsigned bufferId = 0;
};

/// Parses and validates buffer \p bufferId of \p sourceMgr. Every diagnostic
/// (errors, warnings, notes) goes through sourceMgr.PrintMessage, i.e. to the
/// handler installed with SourceMgr::setDiagHandler or else to llvm::errs().
/// All errors are reported before failing. Returns std::nullopt iff at least
/// one error was reported. Never asserts on input: any bytes are accepted.
std::optional<ParsedConfig> parseConfig(llvm::SourceMgr &sourceMgr,
                                        unsigned bufferId);

/// Copies \p buffer into \p sourceMgr under the name \p bufferName and parses
/// it (see above). This is the entry used by the fuzzer.
std::optional<ParsedConfig> parseConfigBuffer(llvm::StringRef buffer,
                                              llvm::StringRef bufferName,
                                              llvm::SourceMgr &sourceMgr);

/// Reads \p path into \p sourceMgr and parses it; an unreadable file is
/// reported as an error diagnostic.
std::optional<ParsedConfig> parseConfigFile(llvm::StringRef path,
                                            llvm::SourceMgr &sourceMgr);

/// Checks every single-key range and cross-key rule of \p config. Diagnostics
/// go through \p sourceMgr, located with \p locations where the key was
/// written (unlocated otherwise). Returns the number of errors reported.
unsigned validateConfig(const Config &config, llvm::SourceMgr &sourceMgr,
                        const KeyLocations &locations = KeyLocations());

} // namespace fusion::spec

#endif // FUSION_FRONTEND_SPEC_CONFIGSPEC_H
