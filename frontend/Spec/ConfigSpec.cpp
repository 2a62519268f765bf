//===- ConfigSpec.cpp - FusionLLM config key table and derived data ------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// The key table of MODEL.md §17 and everything driven by it: defaults (read
// from the table's YAML text with the parser's own scalar converters), the
// Markdown reference, the canonical YAML printer, plus the quantities derived
// from a config (layer kinds of the §2 schedules, WSD phases of §13). The
// upper bounds marked "frontend limit" are not in MODEL.md: they keep every
// derived count of a valid config inside int64 and are far above any real
// model.
//
//===----------------------------------------------------------------------===//

#include "frontend/Spec/ConfigSpec.h"
#include "frontend/Spec/ConfigInternal.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdio>
#include <limits>

using namespace fusion::spec;
using namespace fusion::spec::detail;
using llvm::StringRef;

//===----------------------------------------------------------------------===//
// Key rules
//===----------------------------------------------------------------------===//

namespace {

constexpr KeyRule anyValue() { return KeyRule(); }

/// value >= lo.
constexpr KeyRule atLeast(double lo) {
  KeyRule rule;
  rule.hasMin = true;
  rule.min = lo;
  return rule;
}

/// value > lo.
constexpr KeyRule above(double lo) {
  KeyRule rule = atLeast(lo);
  rule.minExclusive = true;
  return rule;
}

/// lo <= value <= hi.
constexpr KeyRule inRange(double lo, double hi) {
  KeyRule rule = atLeast(lo);
  rule.hasMax = true;
  rule.max = hi;
  return rule;
}

/// lo <= value < hi.
constexpr KeyRule inHalfOpen(double lo, double hi) {
  KeyRule rule = inRange(lo, hi);
  rule.maxExclusive = true;
  return rule;
}

constexpr KeyRule withMultipleOf(KeyRule rule, int64_t multiple) {
  rule.multipleOf = multiple;
  return rule;
}

constexpr KeyRule withEven(KeyRule rule) {
  rule.even = true;
  return rule;
}

constexpr KeyRule oneOf(const char *choices) {
  KeyRule rule;
  rule.choices = choices;
  return rule;
}

/// An unsupported feature: \p value is the only accepted value.
constexpr KeyRule mustBe(const char *value, const char *why) {
  KeyRule rule;
  rule.required = value;
  rule.requiredWhy = why;
  return rule;
}

// Frontend limits (see the file comment).
constexpr double kMaxDim = 65536;             // D, ranks
constexpr double kMaxHeadDim = 4096;          // per-head dims
constexpr double kMaxCount = 4096;            // layers, heads, experts, groups
constexpr double kMaxWidth = 262144;          // FFN widths
constexpr double kMaxTokens = 4194304;        // sequence lengths, windows
constexpr double kMaxVocab = 16777216;        // vocabulary rows
constexpr double kMaxBatch = 1048576;         // rows, accumulation, GPUs
constexpr double kMaxSteps = 1099511627776.0; // 2^40 optimizer steps

} // namespace

#define FIELD(section, member)                                                 \
  [](Config &config) -> FieldRef { return &config.section.member; }

//===----------------------------------------------------------------------===//
// The key table (MODEL.md §17)
//===----------------------------------------------------------------------===//

static const KeyInfo kConfigKeys[] = {
    //===--- model -------------------------------------------------------===//
    {Section::Model, "vocab_size", ValueType::Integer, "152064", nullptr,
     withMultipleOf(inRange(128, kMaxVocab), 128),
     "V: embedding rows (>= tokenizer size)", FIELD(model, vocabSize)},
    {Section::Model, "max_seq_len", ValueType::Integer, "4096", nullptr,
     inRange(1, kMaxTokens),
     "T: training row length (rows carry T+1 tokens); a multiple of "
     "gdn_chunk_size is recommended",
     FIELD(model, maxSeqLen)},
    {Section::Model, "dim", ValueType::Integer, "2048", nullptr,
     withMultipleOf(inRange(64, kMaxDim), 64), "D: model width",
     FIELD(model, dim)},
    {Section::Model, "n_layers", ValueType::Integer, "30", nullptr,
     inRange(1, kMaxCount), "L: backbone layers", FIELD(model, nLayers)},
    {Section::Model, "layer_schedule", ValueType::String, "5:1", nullptr,
     anyValue(),
     "MLA/GDN schedule: mha (all MLA), ssm (all GDN), A:B (A MLA then B GDN "
     "per period), ssm:N (every N-th layer GDN)",
     FIELD(model, layerSchedule)},
    {Section::Model, "norm_eps", ValueType::Number, "1.0e-6", nullptr, above(0),
     "RMSNorm epsilon", FIELD(model, normEps)},
    {Section::Model, "n_heads", ValueType::Integer, "32", nullptr,
     inRange(1, kMaxCount), "H: MLA query heads", FIELD(model, nHeads)},
    {Section::Model, "n_kv_groups", ValueType::Integer, "8", nullptr,
     inRange(1, kMaxCount), "G: MLA key/value groups; H mod G = 0",
     FIELD(model, nKvGroups)},
    {Section::Model, "q_lora_rank", ValueType::Integer, "512", nullptr,
     inRange(0, kMaxDim), "r_q: query compression rank (0 = uncompressed q)",
     FIELD(model, qLoraRank)},
    {Section::Model, "kv_lora_rank", ValueType::Integer, "256", nullptr,
     inRange(1, kMaxDim), "r_kv: key/value compression rank",
     FIELD(model, kvLoraRank)},
    {Section::Model, "qk_nope_head_dim", ValueType::Integer, "128", nullptr,
     inRange(0, kMaxHeadDim), "d_n: non-rotary query/key head dim",
     FIELD(model, qkNopeHeadDim)},
    {Section::Model, "qk_rope_head_dim", ValueType::Integer, "64", nullptr,
     withEven(inRange(2, kMaxHeadDim)), "d_r: rotary query/key head dim",
     FIELD(model, qkRopeHeadDim)},
    {Section::Model, "v_head_dim", ValueType::Integer, "128", nullptr,
     inRange(1, kMaxHeadDim), "d_v: value head dim", FIELD(model, vHeadDim)},
    {Section::Model, "qk_norm", ValueType::Boolean, "true", nullptr, anyValue(),
     "per-head pre-RoPE RMSNorm on q and k", FIELD(model, qkNorm)},
    {Section::Model, "rope_theta", ValueType::Number, "10000.0", nullptr,
     above(0), "RoPE base", FIELD(model, ropeTheta)},
    {Section::Model, "rope_factor", ValueType::Number, "1.0", nullptr,
     mustBe("1.0", "for pretraining (change rope_theta instead; the seed's "
                   "factor 8 equals rope_theta 80000)"),
     "RoPE scaling factor", FIELD(model, ropeFactor)},
    {Section::Model, "sliding_window", ValueType::Integer, "2048", nullptr,
     inRange(0, kMaxTokens), "W_sw: local attention window (0 = all global)",
     FIELD(model, slidingWindow)},
    {Section::Model, "sliding_window_schedule", ValueType::String, "5:1",
     nullptr, anyValue(),
     "local/global pattern over MLA layers: A:B (A local then B global), "
     "all (all local), none (all global)",
     FIELD(model, slidingWindowSchedule)},
    {Section::Model, "inter_dim", ValueType::Integer, "4096", nullptr,
     inRange(1, kMaxWidth), "dense SwiGLU FFN width", FIELD(model, interDim)},
    {Section::Model, "ffn_activation", ValueType::String, "swiglu", nullptr,
     mustBe("swiglu", "(relu2 is a legacy option that fusionc does not "
                      "implement)"),
     "dense FFN activation", FIELD(model, ffnActivation)},
    {Section::Model, "n_routed_experts", ValueType::Integer, "64", nullptr,
     inRange(0, kMaxCount), "E: routed experts (0 = dense FFN after MLA)",
     FIELD(model, nRoutedExperts)},
    {Section::Model, "n_activated_experts", ValueType::Integer, "6", nullptr,
     inRange(1, kMaxCount), "K: routed experts per token; K <= M_g*E/G_e",
     FIELD(model, nActivatedExperts)},
    {Section::Model, "n_shared_experts", ValueType::Integer, "4", nullptr,
     inRange(0, kMaxCount), "S: always-on shared experts",
     FIELD(model, nSharedExperts)},
    {Section::Model, "moe_inter_dim", ValueType::Integer, "1536", nullptr,
     inRange(1, kMaxWidth), "I: expert FFN width", FIELD(model, moeInterDim)},
    {Section::Model, "moe_activation", ValueType::String, "swiglu", nullptr,
     mustBe("swiglu", "(relu2 is a legacy option that fusionc does not "
                      "implement)"),
     "expert activation", FIELD(model, moeActivation)},
    {Section::Model, "n_expert_groups", ValueType::Integer, "8", nullptr,
     inRange(1, kMaxCount), "G_e: expert groups; must divide E",
     FIELD(model, nExpertGroups)},
    {Section::Model, "n_limited_groups", ValueType::Integer, "3", nullptr,
     inRange(1, kMaxCount), "M_g: groups kept per token; M_g <= G_e",
     FIELD(model, nLimitedGroups)},
    {Section::Model, "group_topk", ValueType::Integer, "2", nullptr,
     inRange(1, kMaxCount),
     "q_g: top scores summed per group score; q_g <= E/G_e",
     FIELD(model, groupTopk)},
    {Section::Model, "route_scale", ValueType::Number, "1.0", nullptr, above(0),
     "rho: routed-weight scale", FIELD(model, routeScale)},
    {Section::Model, "expert_capacity_factor", ValueType::Number, "0.0",
     nullptr, anyValue(), "capacity factor (<= 0 = dropless)",
     FIELD(model, expertCapacityFactor)},
    {Section::Model, "expert_dropout_prob", ValueType::Number, "0.0", nullptr,
     inHalfOpen(0, 1), "per-micro-batch expert dropout probability",
     FIELD(model, expertDropoutProb)},
    {Section::Model, "moe_warmup_steps", ValueType::Integer, "0", nullptr,
     inRange(0, kMaxSteps), "steps with expert dropout",
     FIELD(model, moeWarmupSteps)},
    {Section::Model, "bias_upper_threshold", ValueType::Number, "0.10", nullptr,
     inHalfOpen(0, 1), "tau_u: bias-update dead band (upper)",
     FIELD(model, biasUpperThreshold)},
    {Section::Model, "bias_lower_threshold", ValueType::Number, "0.10", nullptr,
     inHalfOpen(0, 1), "tau_l: bias-update dead band (lower)",
     FIELD(model, biasLowerThreshold)},
    {Section::Model, "ssm_type", ValueType::String, "gdn", nullptr,
     mustBe("gdn", "(mamba2 is a legacy option that fusionc does not "
                   "implement)"),
     "linear-time mixer", FIELD(model, ssmType)},
    {Section::Model, "gdn_d_state", ValueType::Integer, "128", nullptr,
     inRange(1, 1024), "d_k: GDN key head dim (state rows)",
     FIELD(model, gdnDState)},
    {Section::Model, "gdn_headdim", ValueType::Integer, "64", nullptr,
     inRange(1, kMaxHeadDim), "d_h: GDN value head dim",
     FIELD(model, gdnHeaddim)},
    {Section::Model, "gdn_d_conv", ValueType::Integer, "4", nullptr,
     inRange(1, 256), "K_c: causal depthwise conv width",
     FIELD(model, gdnDConv)},
    {Section::Model, "gdn_expand", ValueType::Integer, "2", nullptr,
     inRange(1, 16), "H_g = gdn_expand * dim / gdn_headdim value heads",
     FIELD(model, gdnExpand)},
    {Section::Model, "gdn_n_k_heads", ValueType::Integer, nullptr, "H_g",
     inRange(1, kMaxBatch), "H_gk: GDN key heads; must divide H_g",
     FIELD(model, gdnNKHeads)},
    {Section::Model, "gdn_chunk_size", ValueType::Integer, "64", nullptr,
     oneOf("16|32|64|128"), "C: chunk length of the chunkwise GDN kernel",
     FIELD(model, gdnChunkSize)},
    {Section::Model, "mamba_d_state", ValueType::Integer, "128", nullptr,
     atLeast(1), "legacy, unused", FIELD(model, mambaDState)},
    {Section::Model, "mamba_d_conv", ValueType::Integer, "4", nullptr,
     atLeast(1), "legacy, unused", FIELD(model, mambaDConv)},
    {Section::Model, "mamba_headdim", ValueType::Integer, "64", nullptr,
     atLeast(1), "legacy, unused", FIELD(model, mambaHeaddim)},
    {Section::Model, "mtp_depth", ValueType::Integer, "3", nullptr,
     inRange(0, 64), "D_m: multi-token-prediction modules",
     FIELD(model, mtpDepth)},
    {Section::Model, "mtp_inter_dim", ValueType::Integer, nullptr, "inter_dim",
     inRange(1, kMaxWidth), "FFN width of the MTP blocks",
     FIELD(model, mtpInterDim)},
    {Section::Model, "mtp_loss_weight_schedule", ValueType::NumberList,
     "[0.3, 0.2, 0.1]", nullptr, atLeast(0),
     "w_k per MTP depth (at most mtp_depth entries)",
     FIELD(model, mtpLossWeightSchedule)},
    {Section::Model, "mtp_loss_weight", ValueType::Number, "0.3", nullptr,
     atLeast(0), "w_k of depths beyond the schedule",
     FIELD(model, mtpLossWeight)},
    {Section::Model, "mtp_softcap", ValueType::Boolean, "true", nullptr,
     anyValue(), "logit softcap on the MTP heads", FIELD(model, mtpSoftcap)},
    {Section::Model, "mtp_softcap_value", ValueType::Number, "15.0", nullptr,
     atLeast(0), "c of the MTP heads", FIELD(model, mtpSoftcapValue)},
    {Section::Model, "logit_softcap", ValueType::Number, "15.0", nullptr,
     atLeast(0), "c of the main head (0 = off)", FIELD(model, logitSoftcap)},
    {Section::Model, "muP", ValueType::Boolean, "true", nullptr, anyValue(),
     "muP initialisation (MODEL.md §11)", FIELD(model, muP)},
    {Section::Model, "asymmetric_rescale", ValueType::Boolean, "false", nullptr,
     mustBe("false", "(unsupported feature)"), "seed-era logit rescale",
     FIELD(model, asymmetricRescale)},
    {Section::Model, "mole_every_n", ValueType::Integer, "0", nullptr,
     mustBe("0", "(unsupported feature)"), "seed-era MoLE layers",
     FIELD(model, moleEveryN)},
    {Section::Model, "mole_rank", ValueType::Integer, "32", nullptr, atLeast(0),
     "seed-era MoLE rank (unused)", FIELD(model, moleRank)},
    {Section::Model, "mole_n_experts", ValueType::Integer, "8", nullptr,
     atLeast(0), "seed-era MoLE experts (unused)", FIELD(model, moleNExperts)},
    {Section::Model, "mole_top_k", ValueType::Integer, "1", nullptr, atLeast(0),
     "seed-era MoLE top-k (unused)", FIELD(model, moleTopK)},
    {Section::Model, "tie_embeddings", ValueType::Boolean, "true", nullptr,
     mustBe("true", "(the head is the embedding matrix)"),
     "tied embedding/head", FIELD(model, tieEmbeddings)},
    {Section::Model, "no_bias_linear", ValueType::Boolean, "true", nullptr,
     mustBe("true", "(linear layers have no bias)"), "bias-free linears",
     FIELD(model, noBiasLinear)},

    //===--- training ----------------------------------------------------===//
    {Section::Training, "seed", ValueType::Integer, "1234", nullptr, atLeast(0),
     "init and data RNG seed", FIELD(training, seed)},
    {Section::Training, "micro_batch_size", ValueType::Integer, "2", nullptr,
     inRange(1, kMaxBatch), "B: rows per rank per micro-batch",
     FIELD(training, microBatchSize)},
    {Section::Training, "gradient_accumulation_steps", ValueType::Integer, "16",
     nullptr, inRange(1, kMaxBatch), "n_acc: micro-batches per step",
     FIELD(training, gradientAccumulationSteps)},
    {Section::Training, "total_steps", ValueType::Integer, "143000", nullptr,
     inRange(1, kMaxSteps), "N_tot: optimizer steps",
     FIELD(training, totalSteps)},
    {Section::Training, "optimizer", ValueType::String, "normuon_adamw",
     nullptr, oneOf("normuon_adamw|muon_adamw"),
     "NorMuon (or Muon) for matrices + Cautious AdamW for the rest",
     FIELD(training, optimizer)},
    {Section::Training, "scheduler", ValueType::String, "wsd", nullptr,
     oneOf("wsd|cosine"), "LR schedule (MODEL.md §13)",
     FIELD(training, scheduler)},
    {Section::Training, "lr", ValueType::Number, "3.0e-4", nullptr, above(0),
     "peak AdamW LR", FIELD(training, lr)},
    {Section::Training, "muon_lr", ValueType::Number, "0.02", nullptr, above(0),
     "peak NorMuon LR", FIELD(training, muonLr)},
    {Section::Training, "muon_momentum", ValueType::Number, "0.95", nullptr,
     inHalfOpen(0, 1), "NorMuon beta1", FIELD(training, muonMomentum)},
    {Section::Training, "nesterov", ValueType::Boolean, "true", nullptr,
     anyValue(), "Nesterov momentum in NorMuon", FIELD(training, nesterov)},
    {Section::Training, "normuon_beta2", ValueType::Number, "0.95", nullptr,
     inHalfOpen(0, 1), "NorMuon row second-moment beta2",
     FIELD(training, normuonBeta2)},
    {Section::Training, "adamw_betas", ValueType::NumberList, "[0.9, 0.95]",
     nullptr, inHalfOpen(0, 1), "AdamW (beta1, beta2)",
     FIELD(training, adamwBetas)},
    {Section::Training, "adamw_eps", ValueType::Number, "1.0e-8", nullptr,
     above(0), "AdamW epsilon", FIELD(training, adamwEps)},
    {Section::Training, "adamw_cautious_update", ValueType::Boolean, "false",
     nullptr, anyValue(), "Cautious update mask (Liang et al.)",
     FIELD(training, adamwCautiousUpdate)},
    {Section::Training, "weight_decay", ValueType::Number, "0.1", nullptr,
     atLeast(0), "lambda: AdamW embedding decay (and NorMuon default)",
     FIELD(training, weightDecay)},
    {Section::Training, "cautious_wd", ValueType::Boolean, "true", nullptr,
     anyValue(), "sign-masked weight decay", FIELD(training, cautiousWd)},
    {Section::Training, "muon_weight_decay", ValueType::Number, nullptr,
     "weight_decay", atLeast(0), "lambda_mu: NorMuon weight decay",
     FIELD(training, muonWeightDecay)},
    {Section::Training, "cautious_wd_mode", ValueType::String, "grad", nullptr,
     oneOf("grad|update"), "decay mask: grad 1[g*W > 0], update 1[U*W >= 0]",
     FIELD(training, cautiousWdMode)},
    {Section::Training, "grad_clip", ValueType::Number, "1.0", nullptr,
     anyValue(), "global L2 gradient clip (<= 0 = off)",
     FIELD(training, gradClip)},
    {Section::Training, "dtype", ValueType::String, "bf16", nullptr,
     oneOf("bf16|fp32"), "compute dtype (fp32 = debug)",
     FIELD(training, dtype)},
    {Section::Training, "wsd_warmup_frac", ValueType::Number, "0.01", nullptr,
     inRange(0, 1), "WSD warmup fraction", FIELD(training, wsdWarmupFrac)},
    {Section::Training, "wsd_stable_frac", ValueType::Number, "0.84", nullptr,
     inRange(0, 1), "WSD stable fraction (decay gets the rest, N_d >= 1)",
     FIELD(training, wsdStableFrac)},
    {Section::Training, "wsd_decay", ValueType::String, "linear", nullptr,
     oneOf("linear|cosine"), "WSD decay shape", FIELD(training, wsdDecay)},
    {Section::Training, "min_lr_ratio", ValueType::Number, "0.1", nullptr,
     inRange(0, 1), "r: final LR factor", FIELD(training, minLrRatio)},
    {Section::Training, "warmup_steps", ValueType::Integer, "500", nullptr,
     inRange(0, kMaxSteps), "cosine scheduler warmup steps",
     FIELD(training, warmupSteps)},
    {Section::Training, "balance_loss_alpha", ValueType::Number, "1.0e-4",
     nullptr, atLeast(0), "alpha: sequence-wise balance loss (0 = off)",
     FIELD(training, balanceLossAlpha)},
    {Section::Training, "z_loss_weight", ValueType::Number, "0.0", nullptr,
     mustBe("0", "(the router z-loss is not supported)"), "router z-loss",
     FIELD(training, zLossWeight)},
    {Section::Training, "bias_update_speed", ValueType::Number, "1.0e-3",
     nullptr, atLeast(0), "gamma_b: router bias step",
     FIELD(training, biasUpdateSpeed)},
    {Section::Training, "bias_update_every", ValueType::Integer, "10", nullptr,
     inRange(1, kMaxSteps), "U: steps per router bias update",
     FIELD(training, biasUpdateEvery)},
    {Section::Training, "use_checkpoint", ValueType::Boolean, "true", nullptr,
     anyValue(), "recompute every block in backward (activation checkpointing)",
     FIELD(training, useCheckpoint)},
    {Section::Training, "save_dir", ValueType::String, "checkpoints/pretrain",
     nullptr, anyValue(), "checkpoint directory", FIELD(training, saveDir)},
    {Section::Training, "save_interval", ValueType::Integer, "500", nullptr,
     inRange(1, kMaxSteps), "steps between checkpoints",
     FIELD(training, saveInterval)},
    {Section::Training, "keep_last", ValueType::Integer, "5", nullptr,
     inRange(1, kMaxSteps), "checkpoints kept", FIELD(training, keepLast)},
    {Section::Training, "log_interval", ValueType::Integer, "50", nullptr,
     inRange(1, kMaxSteps), "steps between log lines",
     FIELD(training, logInterval)},
    {Section::Training, "eval_enabled", ValueType::Boolean, "false", nullptr,
     anyValue(), "held-out CE evaluation", FIELD(training, evalEnabled)},
    {Section::Training, "eval_interval", ValueType::Integer, "1000", nullptr,
     inRange(1, kMaxSteps), "steps between evaluations",
     FIELD(training, evalInterval)},
    {Section::Training, "eval_max_batches", ValueType::Integer, "8", nullptr,
     inRange(1, kMaxBatch), "micro-batches per evaluation",
     FIELD(training, evalMaxBatches)},
    {Section::Training, "eval_synthetic", ValueType::Boolean, "false", nullptr,
     anyValue(), "seed-era random-token validation (meaningless, kept off)",
     FIELD(training, evalSynthetic)},
    {Section::Training, "eval_tasks", ValueType::StringList,
     "[hellaswag, arc_challenge, piqa, winogrande, boolq]", nullptr, anyValue(),
     "lm-eval tasks (out of scope)", FIELD(training, evalTasks)},
    {Section::Training, "curriculum_switch_step", ValueType::Integer, "0",
     nullptr, inRange(0, kMaxSteps), "S_c: curriculum switch (0 = off)",
     FIELD(training, curriculumSwitchStep)},
    {Section::Training, "curriculum_stage1_weights", ValueType::SourceWeights,
     "{fineweb_edu: 0.70, stack_edu: 0.15, openr1_math: 0.05, "
     "fineweb2: 0.10}",
     nullptr, atLeast(0), "source weights for s < S_c",
     FIELD(training, curriculumStage1Weights)},
    {Section::Training, "curriculum_stage2_weights", ValueType::SourceWeights,
     "{fineweb_edu: 0.30, stack_edu: 0.25, openr1_math: 0.25, "
     "fineweb2: 0.10, smollm_corpus: 0.10}",
     nullptr, atLeast(0), "source weights for s >= S_c",
     FIELD(training, curriculumStage2Weights)},
    {Section::Training, "batch_size_schedule_enabled", ValueType::Boolean,
     "false", nullptr, anyValue(), "batch-size ramp B(s)",
     FIELD(training, batchSizeScheduleEnabled)},
    {Section::Training, "initial_batch_size", ValueType::Integer, "2", nullptr,
     inRange(1, kMaxBatch), "B_0", FIELD(training, initialBatchSize)},
    {Section::Training, "final_batch_size", ValueType::Integer, "8", nullptr,
     inRange(1, kMaxBatch), "B_1", FIELD(training, finalBatchSize)},
    {Section::Training, "batch_size_schedule_steps", ValueType::Integer, "5000",
     nullptr, inRange(1, kMaxSteps), "S_b: ramp steps",
     FIELD(training, batchSizeScheduleSteps)},
    {Section::Training, "seq_len_schedule_enabled", ValueType::Boolean, "false",
     nullptr, anyValue(), "sequence-length ramp T(s)",
     FIELD(training, seqLenScheduleEnabled)},
    {Section::Training, "initial_seq_len", ValueType::Integer, "2048", nullptr,
     inRange(1, kMaxTokens), "T_0 (rounded down to a multiple of 128)",
     FIELD(training, initialSeqLen)},
    {Section::Training, "final_seq_len", ValueType::Integer, "8192", nullptr,
     inRange(1, kMaxTokens), "T_1 (<= max_seq_len when the ramp is on)",
     FIELD(training, finalSeqLen)},
    {Section::Training, "seq_len_schedule_steps", ValueType::Integer, "5000",
     nullptr, inRange(1, kMaxSteps), "ramp steps",
     FIELD(training, seqLenScheduleSteps)},
    {Section::Training, "fuse_ce_softcap", ValueType::Boolean, "true", nullptr,
     anyValue(), "kernel hint, no numerical effect",
     FIELD(training, fuseCeSoftcap)},
    {Section::Training, "fuse_linear_relu2", ValueType::Boolean, "true",
     nullptr, anyValue(), "kernel hint, no numerical effect",
     FIELD(training, fuseLinearRelu2)},

    //===--- data --------------------------------------------------------===//
    {Section::Data, "format", ValueType::String, "fusion_shards", nullptr,
     oneOf("fusion_shards|bin|synthetic"), "token source (MODEL.md §14)",
     FIELD(data, format)},
    {Section::Data, "shard_manifest_path", ValueType::String,
     "data/shards/manifest.jsonl", nullptr, anyValue(),
     "training shard manifest (fusion_shards)", FIELD(data, shardManifestPath)},
    {Section::Data, "val_shard_manifest_path", ValueType::String,
     "data/shards/val_manifest.jsonl", nullptr, anyValue(),
     "validation shard manifest (fusion_shards)",
     FIELD(data, valShardManifestPath)},
    {Section::Data, "train_data_path", ValueType::String, nullptr, "none",
     anyValue(), "training .bin files or glob (required for bin)",
     FIELD(data, trainDataPath)},
    {Section::Data, "val_data_path", ValueType::String, nullptr, "none",
     anyValue(), "validation .bin files or glob (bin with eval_enabled)",
     FIELD(data, valDataPath)},
    {Section::Data, "sampling", ValueType::String, nullptr,
     "mixture for fusion_shards, else sequential", oneOf("mixture|sequential"),
     "row sampling rule (MODEL.md §14.3)", FIELD(data, sampling)},
    {Section::Data, "data_mix", ValueType::SourceWeights,
     "{fineweb_edu: 0.60, finemath: 0.15, stack_edu: 0.15, cosmopedia: 0.05, "
     "openr1_math: 0.05}",
     nullptr, atLeast(0), "source weights (renormalised)",
     FIELD(data, dataMix)},
    {Section::Data, "eos_token_id", ValueType::Integer, "-1", nullptr,
     inRange(-1, kMaxVocab), "EOS id (-1 = none)", FIELD(data, eosTokenId)},
    {Section::Data, "pad_token_id", ValueType::Integer, "-1", nullptr,
     inRange(-1, kMaxVocab), "padding id (-1 = none)", FIELD(data, padTokenId)},

    //===--- distributed -------------------------------------------------===//
    {Section::Distributed, "n_gpus", ValueType::Integer, "8", nullptr,
     inRange(1, kMaxBatch), "W_dp: data-parallel ranks",
     FIELD(distributed, nGpus)},
    {Section::Distributed, "fsdp_shard_strategy", ValueType::String,
     "FULL_SHARD", nullptr, oneOf("FULL_SHARD|SHARD_GRAD_OP|NO_SHARD"),
     "ZeRO stage (MODEL.md §16)", FIELD(distributed, fsdpShardStrategy)},
    {Section::Distributed, "fsdp_param_dtype", ValueType::String, "bf16",
     nullptr, oneOf("bf16|fp32"), "compute-copy dtype",
     FIELD(distributed, fsdpParamDtype)},
    {Section::Distributed, "fsdp_reduce_dtype", ValueType::String, "fp32",
     nullptr, mustBe("fp32", "(gradients are reduced in fp32, MODEL.md §1)"),
     "gradient-reduction dtype", FIELD(distributed, fsdpReduceDtype)},
    {Section::Distributed, "fsdp_forward_prefetch", ValueType::Boolean, "false",
     nullptr, anyValue(), "communication scheduling hint",
     FIELD(distributed, fsdpForwardPrefetch)},
    {Section::Distributed, "fsdp_backward_prefetch", ValueType::Boolean, "true",
     nullptr, anyValue(), "communication scheduling hint",
     FIELD(distributed, fsdpBackwardPrefetch)},
    {Section::Distributed, "fsdp_limit_all_gathers", ValueType::Boolean, "true",
     nullptr, anyValue(), "communication scheduling hint",
     FIELD(distributed, fsdpLimitAllGathers)},
    {Section::Distributed, "shard_keep_last", ValueType::Integer, "1", nullptr,
     atLeast(0), "communication scheduling hint",
     FIELD(distributed, shardKeepLast)},
    {Section::Distributed, "checkpoint_backend", ValueType::String,
     "safetensors", nullptr, oneOf("safetensors|dcp"),
     "checkpoint layout (MODEL.md §15)", FIELD(distributed, checkpointBackend)},
    {Section::Distributed, "async_checkpointing", ValueType::Boolean, "true",
     nullptr, anyValue(), "background checkpoint writes",
     FIELD(distributed, asyncCheckpointing)},
#define RUNTIME_HINT(name)                                                     \
  {                                                                            \
    Section::Distributed, name, ValueType::Hint, nullptr, "none", anyValue(),  \
        "runtime hint without semantic effect",                                \
        FIELD(distributed, runtimeHints)                                       \
  }
    RUNTIME_HINT("device"),
    RUNTIME_HINT("profile"),
    RUNTIME_HINT("min_vram_gb"),
    RUNTIME_HINT("enable_tf32"),
    RUNTIME_HINT("enable_bf16_reduced_precision"),
    RUNTIME_HINT("cudnn_benchmark"),
    RUNTIME_HINT("cudnn_deterministic"),
    RUNTIME_HINT("num_workers"),
    RUNTIME_HINT("val_num_workers"),
    RUNTIME_HINT("prefetch_factor"),
    RUNTIME_HINT("empty_cache_every"),
    RUNTIME_HINT("async_wandb"),
    RUNTIME_HINT("async_mlflow"),
    RUNTIME_HINT("use_mmap_data"),
    RUNTIME_HINT("enable_nvlink_check"),
#undef RUNTIME_HINT
};

#undef FIELD

static const KeyAlias kConfigKeyAliases[] = {
    {Section::Training, "gradient_checkpointing", "use_checkpoint"},
};

static const HintPrefix kConfigHintPrefixes[] = {
    {Section::Training, "wandb_"},
    {Section::Training, "mlflow_"},
};

static const Section kAllSections[] = {Section::Model, Section::Training,
                                       Section::Data, Section::Distributed};

llvm::ArrayRef<KeyInfo> fusion::spec::getConfigKeys() { return kConfigKeys; }

llvm::ArrayRef<KeyAlias> fusion::spec::getConfigKeyAliases() {
  return kConfigKeyAliases;
}

llvm::ArrayRef<HintPrefix> fusion::spec::getConfigHintPrefixes() {
  return kConfigHintPrefixes;
}

llvm::ArrayRef<Section> fusion::spec::getAllSections() { return kAllSections; }

StringRef fusion::spec::getSectionName(Section section) {
  switch (section) {
  case Section::Model:
    return "model";
  case Section::Training:
    return "training";
  case Section::Data:
    return "data";
  case Section::Distributed:
    return "distributed";
  }
  llvm_unreachable("unknown section");
}

std::string KeyInfo::getQualifiedName() const {
  return (getSectionName(section) + "." + name).str();
}

const KeyInfo *fusion::spec::lookupConfigKey(Section section, StringRef name) {
  for (const KeyAlias &alias : kConfigKeyAliases)
    if (alias.section == section && name == alias.alias)
      name = alias.canonical;
  for (const KeyInfo &key : kConfigKeys)
    if (key.section == section && name == key.name)
      return &key;
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Scalar converters
//===----------------------------------------------------------------------===//

/// Removes '_' digit separators; returns false if an underscore is not
/// between two digits.
static bool stripDigitSeparators(StringRef text, std::string &out) {
  out.clear();
  for (size_t i = 0, e = text.size(); i != e; ++i) {
    char c = text[i];
    if (c != '_') {
      out.push_back(c);
      continue;
    }
    if (i == 0 || i + 1 == e || !llvm::isDigit(text[i - 1]) ||
        !llvm::isDigit(text[i + 1]))
      return false;
  }
  return true;
}

IntegerParse detail::parseIntegerText(StringRef text, int64_t &value) {
  std::string digits;
  if (!stripDigitSeparators(text, digits))
    return IntegerParse::NotAnInteger;
  StringRef rest = digits;
  bool negative = rest.consume_front("-");
  if (!negative)
    rest.consume_front("+");
  if (rest.empty() || !llvm::all_of(rest, llvm::isDigit))
    return IntegerParse::NotAnInteger;
  const uint64_t limit = negative ? uint64_t(1) << 63 : (uint64_t(1) << 63) - 1;
  uint64_t magnitude = 0;
  for (char c : rest) {
    uint64_t digit = c - '0';
    if (magnitude > (limit - digit) / 10)
      return IntegerParse::OutOfRange;
    magnitude = magnitude * 10 + digit;
  }
  if (!negative)
    value = int64_t(magnitude);
  else if (magnitude == uint64_t(1) << 63)
    value = std::numeric_limits<int64_t>::min();
  else
    value = -int64_t(magnitude);
  return IntegerParse::Ok;
}

bool detail::parseNumberText(StringRef text, double &value) {
  std::string cleaned;
  if (!stripDigitSeparators(text, cleaned))
    return false;
  // Grammar: [+-]? digits? ('.' digits?)? ([eE] [+-]? digits)?, with at least
  // one mantissa digit. This excludes inf/nan, hex floats and stray text that
  // a permissive converter would accept.
  StringRef rest = cleaned;
  if (!rest.consume_front("-"))
    rest.consume_front("+");
  size_t mantissaDigits = 0;
  auto eatDigits = [&]() {
    size_t n = 0;
    while (!rest.empty() && llvm::isDigit(rest.front())) {
      rest = rest.drop_front();
      ++n;
    }
    return n;
  };
  mantissaDigits += eatDigits();
  if (rest.consume_front("."))
    mantissaDigits += eatDigits();
  if (mantissaDigits == 0)
    return false;
  if (!rest.empty() && (rest.front() == 'e' || rest.front() == 'E')) {
    rest = rest.drop_front();
    if (!rest.consume_front("-"))
      rest.consume_front("+");
    if (eatDigits() == 0)
      return false;
  }
  if (!rest.empty())
    return false;
  double parsed = 0.0;
  if (StringRef(cleaned).getAsDouble(parsed, /*AllowInexact=*/true))
    return false;
  if (!std::isfinite(parsed))
    return false;
  value = parsed;
  return true;
}

std::optional<bool> detail::parseBoolText(StringRef text) {
  if (text == "true" || text == "True" || text == "TRUE")
    return true;
  if (text == "false" || text == "False" || text == "FALSE")
    return false;
  return std::nullopt;
}

std::string detail::formatNumber(double value) {
  if (!std::isfinite(value))
    return std::isnan(value) ? ".nan" : (value > 0 ? ".inf" : "-.inf");
  char buffer[64];
  // Integral values print as "10000.0", which reads back as a number.
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buffer, sizeof(buffer), "%.1f", value);
    return buffer;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision, value);
    double back = 0.0;
    if (!StringRef(buffer).getAsDouble(back, /*AllowInexact=*/true) &&
        back == value)
      break;
  }
  return buffer;
}

std::string detail::getClosestMatch(StringRef name,
                                    llvm::ArrayRef<std::string> candidates) {
  std::string best;
  unsigned bestDistance = std::max<unsigned>(2, name.size() / 3) + 1;
  for (const std::string &candidate : candidates) {
    unsigned distance =
        name.edit_distance(candidate, /*AllowReplacements=*/true,
                           /*MaxEditDistance=*/bestDistance);
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  return best;
}

//===----------------------------------------------------------------------===//
// Defaults
//===----------------------------------------------------------------------===//

/// Splits the body of a flow collection default ("[a, b]" or "{a: 1}") into
/// trimmed items.
static llvm::SmallVector<StringRef> splitFlowDefault(StringRef text) {
  text = text.trim();
  if (text.size() >= 2 && (text.front() == '[' || text.front() == '{'))
    text = text.drop_front().drop_back();
  llvm::SmallVector<StringRef> items;
  llvm::SmallVector<StringRef> pieces;
  text.split(pieces, ',', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
  for (StringRef piece : pieces)
    if (!piece.trim().empty())
      items.push_back(piece.trim());
  return items;
}

namespace {
/// Writes a key's default text into its field. The table is fixed, so a
/// malformed default is a programming error caught by the unit tests (every
/// default must read back and validate).
struct DefaultWriter {
  StringRef text;

  void operator()(int64_t *field) const {
    int64_t value = 0;
    if (parseIntegerText(text, value) == IntegerParse::Ok)
      *field = value;
  }
  void operator()(double *field) const {
    double value = 0.0;
    if (parseNumberText(text, value))
      *field = value;
  }
  void operator()(bool *field) const {
    *field = parseBoolText(text).value_or(false);
  }
  void operator()(std::string *field) const { *field = text.str(); }
  void operator()(std::optional<int64_t> *field) const {
    int64_t value = 0;
    if (parseIntegerText(text, value) == IntegerParse::Ok)
      *field = value;
  }
  void operator()(std::optional<double> *field) const {
    double value = 0.0;
    if (parseNumberText(text, value))
      *field = value;
  }
  void operator()(std::optional<std::string> *field) const {
    *field = text.str();
  }
  void operator()(std::vector<double> *field) const {
    field->clear();
    for (StringRef item : splitFlowDefault(text)) {
      double value = 0.0;
      if (parseNumberText(item, value))
        field->push_back(value);
    }
  }
  void operator()(std::vector<std::string> *field) const {
    field->clear();
    for (StringRef item : splitFlowDefault(text))
      field->push_back(item.str());
  }
  void operator()(SourceWeights *field) const {
    field->clear();
    for (StringRef item : splitFlowDefault(text)) {
      auto [name, weightText] = item.split(':');
      double weight = 0.0;
      if (parseNumberText(weightText.trim(), weight))
        field->push_back({name.trim().str(), weight});
    }
  }
  void operator()(HintList *) const {}
};

/// Resets a field whose default is derived or absent.
struct FieldClearer {
  template <typename T> void operator()(std::optional<T> *field) const {
    field->reset();
  }
  void operator()(std::string *field) const { field->clear(); }
  void operator()(HintList *field) const { field->clear(); }
  template <typename T> void operator()(T *field) const { *field = T(); }
};
} // namespace

void detail::applyDefault(const KeyInfo &key, Config &config) {
  FieldRef field = key.field(config);
  if (key.defaultValue)
    std::visit(DefaultWriter{key.defaultValue}, field);
  else
    std::visit(FieldClearer(), field);
}

Config::Config() {
  for (const KeyInfo &key : kConfigKeys)
    applyDefault(key, *this);
}

//===----------------------------------------------------------------------===//
// Derived quantities
//===----------------------------------------------------------------------===//

int64_t ModelConfig::gdnValueHeads() const {
  if (gdnHeaddim <= 0 || gdnExpand <= 0 || dim <= 0)
    return 0;
  int64_t width = 0;
  if (llvm::MulOverflow(gdnExpand, dim, width))
    return 0;
  return width / gdnHeaddim;
}

double ModelConfig::mtpLossWeightAt(int64_t depth) const {
  if (depth >= 1 && size_t(depth) <= mtpLossWeightSchedule.size())
    return mtpLossWeightSchedule[depth - 1];
  return mtpLossWeight;
}

int64_t ModelConfig::expertsPerGroup() const {
  if (nRoutedExperts <= 0 || nExpertGroups <= 0)
    return 0;
  return nRoutedExperts / nExpertGroups;
}

/// Reads "A:B" with A, B >= 0 and A + B >= 1.
static bool parsePeriod(StringRef text, int64_t &first, int64_t &second,
                        std::string *error, StringRef what) {
  auto [lhs, rhs] = text.split(':');
  auto readCount = [](StringRef s, int64_t &out) {
    return !s.empty() && llvm::all_of(s, llvm::isDigit) &&
           parseIntegerText(s, out) == IntegerParse::Ok && out <= kMaxCount;
  };
  if (!readCount(lhs, first) || !readCount(rhs, second)) {
    if (error)
      *error = ("'" + text + "' is not a valid " + what).str();
    return false;
  }
  if (first + second == 0) {
    if (error)
      *error =
          ("'" + text + "' has an empty period (A + B must be >= 1)").str();
    return false;
  }
  return true;
}

std::optional<LayerSchedule>
fusion::spec::parseLayerSchedule(StringRef text, std::string *error) {
  LayerSchedule schedule;
  if (text == "mha" || text == "attention" || text == "transformer") {
    schedule.kind = LayerSchedule::Kind::AllMla;
    return schedule;
  }
  if (text == "ssm" || text == "mamba" || text == "gdn") {
    schedule.kind = LayerSchedule::Kind::AllGdn;
    return schedule;
  }
  if (text.starts_with("ssm:")) {
    StringRef count = text.drop_front(4);
    int64_t every = 0;
    if (count.empty() || !llvm::all_of(count, llvm::isDigit) ||
        parseIntegerText(count, every) != IntegerParse::Ok || every < 1 ||
        every > kMaxCount) {
      if (error)
        *error =
            ("'" + text + "' needs an integer N in [1, 4096] in 'ssm:N'").str();
      return std::nullopt;
    }
    schedule.kind = LayerSchedule::Kind::SsmEvery;
    schedule.ssmEvery = every;
    return schedule;
  }
  if (text.count(':') == 1 &&
      parsePeriod(text, schedule.mlaPerPeriod, schedule.gdnPerPeriod, error,
                  "period 'A:B' (A MLA layers then B GDN layers)")) {
    schedule.kind = LayerSchedule::Kind::Period;
    return schedule;
  }
  if (error && (text.count(':') != 1 || error->empty()))
    *error = ("'" + text +
              "' is not a layer schedule; expected 'mha', 'ssm', 'A:B' or "
              "'ssm:N'")
                 .str();
  return std::nullopt;
}

bool LayerSchedule::isGdn(int64_t layer) const {
  switch (kind) {
  case Kind::AllMla:
    return false;
  case Kind::AllGdn:
    return true;
  case Kind::Period:
    return layer % (mlaPerPeriod + gdnPerPeriod) >= mlaPerPeriod;
  case Kind::SsmEvery:
    return (layer + 1) % ssmEvery == 0;
  }
  llvm_unreachable("unknown layer schedule kind");
}

std::optional<WindowSchedule>
fusion::spec::parseWindowSchedule(StringRef text, std::string *error) {
  WindowSchedule schedule;
  if (text == "all") {
    schedule.kind = WindowSchedule::Kind::AllLocal;
    return schedule;
  }
  if (text == "none") {
    schedule.kind = WindowSchedule::Kind::AllGlobal;
    return schedule;
  }
  if (text.count(':') == 1 &&
      parsePeriod(text, schedule.local, schedule.global, error,
                  "period 'A:B' (A local layers then B global layers)")) {
    schedule.kind = WindowSchedule::Kind::Period;
    return schedule;
  }
  if (error && (text.count(':') != 1 || error->empty()))
    *error = ("'" + text +
              "' is not a sliding-window schedule; expected 'all', 'none' or "
              "'A:B'")
                 .str();
  return std::nullopt;
}

bool WindowSchedule::isLocal(int64_t mlaOrdinal) const {
  switch (kind) {
  case Kind::AllLocal:
    return true;
  case Kind::AllGlobal:
    return false;
  case Kind::Period:
    return mlaOrdinal % (local + global) < local;
  }
  llvm_unreachable("unknown window schedule kind");
}

std::vector<LayerKind> ModelConfig::getLayerKinds() const {
  LayerSchedule schedule;
  if (std::optional<LayerSchedule> parsed = parseLayerSchedule(layerSchedule))
    schedule = *parsed;
  WindowSchedule windows;
  if (std::optional<WindowSchedule> parsed =
          parseWindowSchedule(slidingWindowSchedule))
    windows = *parsed;

  std::vector<LayerKind> kinds;
  int64_t numLayers = std::clamp<int64_t>(nLayers, 0, int64_t(kMaxCount));
  kinds.reserve(numLayers);
  int64_t mlaOrdinal = 0;
  for (int64_t layer = 0; layer < numLayers; ++layer) {
    LayerKind kind;
    if (schedule.isGdn(layer)) {
      kind.mixer = MixerKind::GDN;
      kind.ffn = FfnKind::Dense;
    } else {
      kind.mixer = MixerKind::MLA;
      kind.ffn = hasMoE() ? FfnKind::MoE : FfnKind::Dense;
      kind.mlaOrdinal = mlaOrdinal++;
      kind.isLocal = slidingWindow > 0 && windows.isLocal(kind.mlaOrdinal);
      kind.window = kind.isLocal ? slidingWindow : 0;
    }
    kinds.push_back(kind);
  }
  return kinds;
}

StringRef DataConfig::getSampling() const {
  if (sampling)
    return *sampling;
  return format == "fusion_shards" ? "mixture" : "sequential";
}

LrPhases fusion::spec::getLrPhases(const TrainingConfig &training) {
  LrPhases phases;
  int64_t total = training.totalSteps;
  if (training.scheduler == "cosine") {
    phases.warmup = training.warmupSteps;
    phases.stable = 0;
  } else {
    // §13: floor in fp64 with a 1e-9 guard, so floor(0.7 * 90) is 63.
    phases.warmup =
        int64_t(std::floor(training.wsdWarmupFrac * double(total) + 1e-9));
    phases.stable =
        int64_t(std::floor(training.wsdStableFrac * double(total) + 1e-9));
  }
  phases.decay = total - phases.warmup - phases.stable;
  return phases;
}

double fusion::spec::getLrFactor(const TrainingConfig &training, int64_t step) {
  LrPhases phases = getLrPhases(training);
  double r = training.minLrRatio;
  if (step >= training.totalSteps || phases.decay < 1)
    return r;
  if (step < phases.warmup)
    return double(step + 1) / double(phases.warmup);
  if (step < phases.warmup + phases.stable)
    return 1.0;
  double omega =
      double(step - phases.warmup - phases.stable + 1) / double(phases.decay);
  bool cosine = training.scheduler == "cosine" || training.wsdDecay == "cosine";
  if (cosine)
    return r + (1.0 - r) * (1.0 + std::cos(M_PI * omega)) / 2.0;
  return 1.0 - (1.0 - r) * omega;
}

int64_t fusion::spec::getRampBatchSize(const Config &config, int64_t step) {
  const TrainingConfig &t = config.training;
  if (!t.batchSizeScheduleEnabled)
    return t.microBatchSize;
  if (step >= t.batchSizeScheduleSteps)
    return t.finalBatchSize;
  // Integer arithmetic (§13); floor division also for a decreasing ramp.
  int64_t num = (t.finalBatchSize - t.initialBatchSize) * step;
  int64_t den = t.batchSizeScheduleSteps;
  int64_t q = num / den - ((num % den != 0) && ((num < 0) != (den < 0)) ? 1 : 0);
  return t.initialBatchSize + q;
}

int64_t fusion::spec::getRampSeqLen(const Config &config, int64_t step) {
  const TrainingConfig &t = config.training;
  int64_t maxLen = config.model.maxSeqLen;
  if (!t.seqLenScheduleEnabled)
    return maxLen;
  int64_t value = t.finalSeqLen;
  if (step < t.seqLenScheduleSteps) {
    int64_t num = (t.finalSeqLen - t.initialSeqLen) * step;
    int64_t den = t.seqLenScheduleSteps;
    int64_t q = num / den - ((num % den != 0) && ((num < 0) != (den < 0)) ? 1 : 0);
    value = t.initialSeqLen + q;
  }
  return std::min(maxLen, value / 128 * 128);
}

std::vector<ShapeSegment> fusion::spec::getShapeSchedule(const Config &config) {
  const TrainingConfig &t = config.training;
  std::vector<ShapeSegment> segments;
  int64_t last = 0;
  if (t.batchSizeScheduleEnabled)
    last = std::max(last, t.batchSizeScheduleSteps);
  if (t.seqLenScheduleEnabled)
    last = std::max(last, t.seqLenScheduleSteps);
  last = std::min(last, std::max<int64_t>(t.totalSteps, 1) - 1);
  for (int64_t s = 0; s <= last; ++s) {
    int64_t rows = getRampBatchSize(config, s), seqLen = getRampSeqLen(config, s);
    if (segments.empty() || segments.back().rows != rows || segments.back().seqLen != seqLen)
      segments.push_back({s, rows, seqLen});
  }
  // The steady state closes the schedule (also when total_steps ends inside a ramp, so that
  // evaluation's steady shapes always have their train program).
  int64_t rows = getRampBatchSize(config, std::numeric_limits<int64_t>::max() / 2);
  int64_t seqLen = getRampSeqLen(config, std::numeric_limits<int64_t>::max() / 2);
  if (segments.back().rows != rows || segments.back().seqLen != seqLen)
    segments.push_back({std::max<int64_t>(t.totalSteps, last + 1), rows, seqLen});
  return segments;
}

int64_t fusion::spec::getTokensPerStep(const Config &config) {
  const TrainingConfig &training = config.training;
  int64_t rows = training.batchSizeScheduleEnabled ? training.finalBatchSize
                                                   : training.microBatchSize;
  int64_t seqLen = config.model.maxSeqLen;
  if (training.seqLenScheduleEnabled)
    seqLen = std::min(seqLen, training.finalSeqLen / 128 * 128);
  int64_t tokens = 0;
  if (llvm::MulOverflow(rows, training.gradientAccumulationSteps, tokens) ||
      llvm::MulOverflow(tokens, config.distributed.nGpus, tokens) ||
      llvm::MulOverflow(tokens, seqLen, tokens))
    return std::numeric_limits<int64_t>::max();
  return tokens;
}

//===----------------------------------------------------------------------===//
// KeyLocations
//===----------------------------------------------------------------------===//

const KeyLocation *KeyLocations::lookup(StringRef qualifiedName) const {
  auto it = entries.find(qualifiedName);
  return it == entries.end() ? nullptr : &it->second;
}

void KeyLocations::set(StringRef qualifiedName, KeyLocation location) {
  entries[qualifiedName] = std::move(location);
}

//===----------------------------------------------------------------------===//
// DiagEmitter
//===----------------------------------------------------------------------===//

void DiagEmitter::print(llvm::SMLoc loc, llvm::SourceMgr::DiagKind kind,
                        const llvm::Twine &message,
                        llvm::ArrayRef<llvm::SMRange> ranges) {
  if (loc.isValid()) {
    sourceMgr.PrintMessage(loc, kind, message, ranges);
    return;
  }
  // SourceMgr would print an invalid location as "<unknown>:0"; name the
  // config instead (or nothing), as "file: error: message".
  llvm::SMDiagnostic diag(bufferName, kind, message.str());
  sourceMgr.PrintMessage(llvm::errs(), diag);
}

void DiagEmitter::emit(llvm::SMLoc loc, llvm::SourceMgr::DiagKind kind,
                       const llvm::Twine &message,
                       llvm::ArrayRef<llvm::SMRange> ranges) {
  if (kind == llvm::SourceMgr::DK_Note) {
    if (!dropping && !droppedLast)
      print(loc, kind, message, ranges);
    return;
  }
  droppedLast = dropping;
  if (dropping)
    return;
  if (kind == llvm::SourceMgr::DK_Error && numErrors == kMaxErrors) {
    print(loc, kind,
          "too many errors (" + llvm::Twine(kMaxErrors) + "), stopping now",
          {});
    dropping = droppedLast = true;
    return;
  }
  if (kind == llvm::SourceMgr::DK_Error)
    ++numErrors;
  print(loc, kind, message, ranges);
}

void DiagEmitter::error(llvm::SMLoc loc, const llvm::Twine &message,
                        llvm::ArrayRef<llvm::SMRange> ranges) {
  emit(loc, llvm::SourceMgr::DK_Error, message, ranges);
}

void DiagEmitter::warning(llvm::SMLoc loc, const llvm::Twine &message,
                          llvm::ArrayRef<llvm::SMRange> ranges) {
  emit(loc, llvm::SourceMgr::DK_Warning, message, ranges);
}

void DiagEmitter::note(llvm::SMLoc loc, const llvm::Twine &message,
                       llvm::ArrayRef<llvm::SMRange> ranges) {
  emit(loc, llvm::SourceMgr::DK_Note, message, ranges);
}

//===----------------------------------------------------------------------===//
// Documentation
//===----------------------------------------------------------------------===//

static StringRef getTypeName(ValueType type) {
  switch (type) {
  case ValueType::Integer:
    return "integer";
  case ValueType::Number:
    return "number";
  case ValueType::Boolean:
    return "boolean";
  case ValueType::String:
    return "string";
  case ValueType::NumberList:
    return "list of numbers";
  case ValueType::StringList:
    return "list of strings";
  case ValueType::SourceWeights:
    return "map of source weights";
  case ValueType::Hint:
    return "hint";
  }
  llvm_unreachable("unknown value type");
}

std::string detail::describeRule(const KeyInfo &key) {
  const KeyRule &rule = key.rule;
  std::string text;
  llvm::raw_string_ostream os(text);
  // Bounds print as integers where they are integral ("[0, 1)", not
  // "[0.0, 1.0)").
  auto integral = [](double v) {
    if (v == std::floor(v) && std::fabs(v) < 1e15)
      return std::to_string(int64_t(v));
    return formatNumber(v);
  };
  if (rule.required) {
    os << "must be " << rule.required;
    return text;
  }
  if (rule.choices) {
    llvm::SmallVector<StringRef> choices;
    StringRef(rule.choices).split(choices, '|');
    os << "one of " << llvm::join(choices, ", ");
    return text;
  }
  if (rule.hasMin && rule.hasMax)
    os << (rule.minExclusive ? "(" : "[") << integral(rule.min) << ", "
       << integral(rule.max) << (rule.maxExclusive ? ")" : "]");
  else if (rule.hasMin)
    os << (rule.minExclusive ? "> " : ">= ") << integral(rule.min);
  else if (rule.hasMax)
    os << (rule.maxExclusive ? "< " : "<= ") << integral(rule.max);
  if (rule.multipleOf)
    os << (text.empty() ? "" : ", ") << "multiple of " << rule.multipleOf;
  if (rule.even)
    os << (text.empty() ? "" : ", ") << "even";
  return text;
}

void fusion::spec::printConfigReference(llvm::raw_ostream &os) {
  os << "# FusionLLM config keys\n\n"
        "Generated from the key table in frontend/Spec/ConfigSpec.cpp "
        "(MODEL.md §17).\n";
  for (Section section : kAllSections) {
    os << "\n## " << getSectionName(section) << "\n\n"
       << "| key | type | default | valid | meaning |\n"
       << "|---|---|---|---|---|\n";
    for (const KeyInfo &key : kConfigKeys) {
      if (key.section != section)
        continue;
      os << "| `" << key.name << "` | " << getTypeName(key.type) << " | ";
      if (key.defaultValue)
        os << "`" << key.defaultValue << "`";
      else
        os << (key.defaultDoc ? key.defaultDoc : "none");
      os << " | " << describeRule(key) << " | " << key.doc << " |\n";
    }
    for (const KeyAlias &alias : kConfigKeyAliases)
      if (alias.section == section)
        os << "\n`" << alias.alias << "` is an alias of `" << alias.canonical
           << "`.\n";
    for (const HintPrefix &prefix : kConfigHintPrefixes)
      if (prefix.section == section)
        os << "\nKeys starting with `" << prefix.prefix
           << "` are logging hints without semantic effect.\n";
  }
}

//===----------------------------------------------------------------------===//
// YAML printer
//===----------------------------------------------------------------------===//

/// Double-quotes \p text for YAML.
static void printQuoted(llvm::raw_ostream &os, StringRef text) {
  os << '"';
  for (unsigned char c : text) {
    if (c == '"' || c == '\\')
      os << '\\' << c;
    else if (c < 0x20 || c == 0x7f)
      os << "\\x" << llvm::hexdigit(c >> 4, /*LowerCase=*/false)
         << llvm::hexdigit(c & 15, /*LowerCase=*/false);
    else
      os << c;
  }
  os << '"';
}

namespace {
/// Prints one field's value after "key: " (returns false to omit the key).
struct ValuePrinter {
  llvm::raw_ostream &os;

  bool operator()(int64_t *v) const {
    os << *v;
    return true;
  }
  bool operator()(double *v) const {
    os << formatNumber(*v);
    return true;
  }
  bool operator()(bool *v) const {
    os << (*v ? "true" : "false");
    return true;
  }
  bool operator()(std::string *v) const {
    printQuoted(os, *v);
    return true;
  }
  bool operator()(std::optional<int64_t> *v) const {
    return *v && (*this)(&**v);
  }
  bool operator()(std::optional<double> *v) const {
    return *v && (*this)(&**v);
  }
  bool operator()(std::optional<std::string> *v) const {
    return *v && (*this)(&**v);
  }
  bool operator()(std::vector<double> *v) const {
    os << '[';
    llvm::interleaveComma(*v, os, [&](double d) { os << formatNumber(d); });
    os << ']';
    return true;
  }
  bool operator()(std::vector<std::string> *v) const {
    os << '[';
    llvm::interleaveComma(*v, os,
                          [&](const std::string &s) { printQuoted(os, s); });
    os << ']';
    return true;
  }
  bool operator()(SourceWeights *v) const {
    os << '{';
    llvm::interleaveComma(*v, os, [&](const SourceWeight &w) {
      printQuoted(os, w.source);
      os << ": " << formatNumber(w.weight);
    });
    os << '}';
    return true;
  }
  bool operator()(HintList *) const { return false; }
};
} // namespace

void fusion::spec::printConfigYaml(const Config &config,
                                   llvm::raw_ostream &os) {
  // The table's accessors take a mutable Config; printing only reads.
  Config &fields = const_cast<Config &>(config);
  for (Section section : kAllSections) {
    os << getSectionName(section) << ":\n";
    for (const KeyInfo &key : kConfigKeys) {
      if (key.section != section || key.type == ValueType::Hint)
        continue;
      // Render into a buffer first so an omitted optional leaves no key.
      std::string value;
      llvm::raw_string_ostream valueStream(value);
      if (std::visit(ValuePrinter{valueStream}, key.field(fields)))
        os << "  " << key.name << ": " << value << "\n";
    }
    const HintList *hints = nullptr;
    if (section == Section::Training)
      hints = &config.training.loggingHints;
    else if (section == Section::Distributed)
      hints = &config.distributed.runtimeHints;
    if (hints)
      for (const auto &[name, value] : *hints) {
        os << "  " << name << ": ";
        printQuoted(os, value);
        os << "\n";
      }
  }
}
