//===- ConfigValidationTest.cpp - One test per validation rule ------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// Every single-key range and cross-key rule of MODEL.md §17 (and §1-§5, §13,
// §14) with the exact located message it produces. A cross-key error sits at
// the key written last, with a note at each other written key.
//
//===----------------------------------------------------------------------===//

#include "SpecTestUtil.h"

#include "frontend/Spec/ConfigSpec.h"

#include "gtest/gtest.h"

using namespace fusion::spec;
using namespace fusion::spec::test;

namespace {

/// Parses \p yaml and expects exactly one error, \p expected, plus the notes
/// in \p notes (in order).
void expectError(llvm::StringRef yaml, const std::string &expected,
                 std::vector<std::string> notes = {}) {
  SCOPED_TRACE(yaml.str());
  ParseOutcome outcome = parseText(yaml);
  EXPECT_FALSE(outcome.ok());
  std::vector<std::string> errors = outcome.errors();
  ASSERT_EQ(errors.size(), 1u) << outcome.joined();
  EXPECT_EQ(errors[0], expected);
  std::vector<std::string> gotNotes;
  for (const std::string &d : outcome.diagnostics)
    if (d.find(" note: ") != std::string::npos)
      gotNotes.push_back(d);
  EXPECT_EQ(gotNotes, notes) << outcome.joined();
}

void expectValid(llvm::StringRef yaml) {
  SCOPED_TRACE(yaml.str());
  ParseOutcome outcome = parseText(yaml);
  EXPECT_TRUE(outcome.ok()) << outcome.joined();
  EXPECT_TRUE(outcome.errors().empty()) << outcome.joined();
}

//===----------------------------------------------------------------------===//
// Single-key rules: model
//===----------------------------------------------------------------------===//

TEST(SingleKeyRules, VocabSizeMultipleOf128) {
  expectError("model:\n  vocab_size: 50257\n",
              "t.yaml:2:15: error: model.vocab_size (50257) must be a "
              "multiple of 128");
}

TEST(SingleKeyRules, DimMultipleOf64) {
  expectError("model:\n  dim: 1000\n",
              "t.yaml:2:8: error: model.dim (1000) must be a multiple of 64");
}

TEST(SingleKeyRules, DimRange) {
  expectError("model:\n  dim: 0\n",
              "t.yaml:2:8: error: model.dim (0) must be in [64, 65536]");
}

TEST(SingleKeyRules, NumLayersAtLeastOne) {
  expectError("model:\n  n_layers: 0\n",
              "t.yaml:2:13: error: model.n_layers (0) must be in [1, 4096]");
}

TEST(SingleKeyRules, RopeHeadDimEven) {
  expectError("model:\n  qk_rope_head_dim: 33\n",
              "t.yaml:2:21: error: model.qk_rope_head_dim (33) must be even");
}

TEST(SingleKeyRules, KvLoraRankPositive) {
  expectError("model:\n  kv_lora_rank: 0\n",
              "t.yaml:2:17: error: model.kv_lora_rank (0) must be in [1, "
              "65536]");
}

TEST(SingleKeyRules, QLoraRankNonNegative) {
  expectError("model:\n  q_lora_rank: -1\n",
              "t.yaml:2:16: error: model.q_lora_rank (-1) must be in [0, "
              "65536]");
  expectValid("model:\n  q_lora_rank: 0\n"); // uncompressed q
}

TEST(SingleKeyRules, VHeadDimPositive) {
  expectError("model:\n  v_head_dim: 0\n",
              "t.yaml:2:15: error: model.v_head_dim (0) must be in [1, 4096]");
}

TEST(SingleKeyRules, RopeFactorMustBeOne) {
  expectError("model:\n  rope_factor: 8.0\n",
              "t.yaml:2:16: error: model.rope_factor (8.0) must be 1.0 for "
              "pretraining (change rope_theta instead; the seed's factor 8 "
              "equals rope_theta 80000)");
}

TEST(SingleKeyRules, RopeThetaPositive) {
  expectError("model:\n  rope_theta: 0\n",
              "t.yaml:2:15: error: model.rope_theta (0.0) must be > 0");
}

TEST(SingleKeyRules, NormEpsPositive) {
  expectError("model:\n  norm_eps: -1e-6\n",
              "t.yaml:2:13: error: model.norm_eps (-1e-06) must be > 0");
}

TEST(SingleKeyRules, GdnChunkSizeChoices) {
  expectError("model:\n  gdn_chunk_size: 48\n",
              "t.yaml:2:19: error: model.gdn_chunk_size (48) must be one of "
              "16, 32, 64, 128");
  for (const char *size : {"16", "32", "128"})
    expectValid(std::string("model:\n  gdn_chunk_size: ") + size + "\n");
}

TEST(SingleKeyRules, GdnExpandRange) {
  expectError("model:\n  gdn_expand: 0\n",
              "t.yaml:2:15: error: model.gdn_expand (0) must be in [1, 16]");
}

TEST(SingleKeyRules, SsmTypeMustBeGdn) {
  expectError("model:\n  ssm_type: mamba2\n",
              "t.yaml:2:13: error: model.ssm_type 'mamba2' must be 'gdn' "
              "(mamba2 is a legacy option that fusionc does not implement)");
}

TEST(SingleKeyRules, TieEmbeddingsMustBeTrue) {
  expectError("model:\n  tie_embeddings: false\n",
              "t.yaml:2:19: error: model.tie_embeddings (false) must be true "
              "(the head is the embedding matrix)");
}

TEST(SingleKeyRules, NoBiasLinearMustBeTrue) {
  expectError("model:\n  no_bias_linear: false\n",
              "t.yaml:2:19: error: model.no_bias_linear (false) must be true "
              "(linear layers have no bias)");
}

TEST(SingleKeyRules, AsymmetricRescaleUnsupported) {
  expectError("model:\n  asymmetric_rescale: true\n",
              "t.yaml:2:23: error: model.asymmetric_rescale (true) must be "
              "false (unsupported feature)");
}

TEST(SingleKeyRules, MoleUnsupported) {
  expectError("model:\n  mole_every_n: 2\n",
              "t.yaml:2:17: error: model.mole_every_n (2) must be 0 "
              "(unsupported feature)");
}

TEST(SingleKeyRules, FfnActivationMustBeSwiglu) {
  expectError("model:\n  ffn_activation: relu2\n",
              "t.yaml:2:19: error: model.ffn_activation 'relu2' must be "
              "'swiglu' (relu2 is a legacy option that fusionc does not "
              "implement)");
}

TEST(SingleKeyRules, MoeActivationMustBeSwiglu) {
  expectError("model:\n  moe_activation: relu2\n",
              "t.yaml:2:19: error: model.moe_activation 'relu2' must be "
              "'swiglu' (relu2 is a legacy option that fusionc does not "
              "implement)");
}

TEST(SingleKeyRules, ExpertDropoutBelowOne) {
  expectError("model:\n  expert_dropout_prob: 1.0\n",
              "t.yaml:2:24: error: model.expert_dropout_prob (1.0) must be in "
              "[0, 1)");
}

TEST(CrossKeyRules, ExpertDropoutIsNotSupported) {
  expectError("model:\n  expert_dropout_prob: 0.1\n",
              "t.yaml:2:24: error: model.expert_dropout_prob (0.1) > 0 asks for expert "
              "dropout, which is not supported yet; use 0");
}

TEST(CrossKeyRules, CapacityFactorIsNotSupported) {
  expectError("model:\n  expert_capacity_factor: 1.5\n",
              "t.yaml:2:27: error: model.expert_capacity_factor (1.5) > 0 asks for "
              "capacity-limited dispatch, which is not supported yet; use 0 (dropless, the "
              "MODEL.md default)");
}

TEST(SingleKeyRules, BiasThresholdRange) {
  expectError("model:\n  bias_upper_threshold: -0.1\n",
              "t.yaml:2:25: error: model.bias_upper_threshold (-0.1) must be "
              "in [0, 1)");
}

TEST(SingleKeyRules, RouteScalePositive) {
  expectError("model:\n  route_scale: 0\n",
              "t.yaml:2:16: error: model.route_scale (0.0) must be > 0");
}

TEST(SingleKeyRules, ActivatedExpertsAtLeastOne) {
  expectError("model:\n  n_activated_experts: 0\n",
              "t.yaml:2:24: error: model.n_activated_experts (0) must be in "
              "[1, 4096]");
}

TEST(SingleKeyRules, SlidingWindowNonNegative) {
  expectError("model:\n  sliding_window: -1\n",
              "t.yaml:2:19: error: model.sliding_window (-1) must be in [0, "
              "4194304]");
}

TEST(SingleKeyRules, LogitSoftcapNonNegative) {
  expectError("model:\n  logit_softcap: -1\n",
              "t.yaml:2:18: error: model.logit_softcap (-1.0) must be >= 0");
}

TEST(SingleKeyRules, MtpDepthRange) {
  expectError("model:\n  mtp_depth: 65\n",
              "t.yaml:2:14: error: model.mtp_depth (65) must be in [0, 64]");
}

TEST(SingleKeyRules, MtpLossWeightsNonNegative) {
  expectError("model:\n  mtp_loss_weight_schedule: [0.3, -0.2, 0.1]\n",
              "t.yaml:2:35: error: model.mtp_loss_weight_schedule[1] (-0.2) "
              "must be >= 0");
}

//===----------------------------------------------------------------------===//
// Single-key rules: training, data, distributed
//===----------------------------------------------------------------------===//

TEST(SingleKeyRules, ZLossUnsupported) {
  expectError("training:\n  z_loss_weight: 0.001\n",
              "t.yaml:2:18: error: training.z_loss_weight (0.001) must be 0 "
              "(the router z-loss is not supported)");
}

TEST(SingleKeyRules, OptimizerChoicesWithSuggestion) {
  expectError("training:\n  optimizer: normuon_adam\n",
              "t.yaml:2:14: error: training.optimizer 'normuon_adam' is not "
              "one of 'normuon_adamw', 'muon_adamw'; did you mean "
              "'normuon_adamw'?");
}

TEST(SingleKeyRules, SchedulerChoices) {
  expectError("training:\n  scheduler: linear\n",
              "t.yaml:2:14: error: training.scheduler 'linear' is not one of "
              "'wsd', 'cosine'");
}

TEST(SingleKeyRules, MuonMomentumRange) {
  expectError("training:\n  muon_momentum: 1.0\n",
              "t.yaml:2:18: error: training.muon_momentum (1.0) must be in "
              "[0, 1)");
}

TEST(SingleKeyRules, AdamwBetasRange) {
  expectError("training:\n  adamw_betas: [0.9, 1.5]\n",
              "t.yaml:2:22: error: training.adamw_betas[1] (1.5) must be in "
              "[0, 1)");
}

TEST(SingleKeyRules, AdamwBetasLength) {
  expectError("training:\n  adamw_betas: [0.9]\n",
              "t.yaml:2:16: error: training.adamw_betas must have exactly 2 "
              "entries (beta1, beta2), got 1");
}

TEST(SingleKeyRules, WsdFractionRange) {
  expectError("training:\n  wsd_warmup_frac: 1.5\n",
              "t.yaml:2:20: error: training.wsd_warmup_frac (1.5) must be in "
              "[0, 1]");
}

TEST(SingleKeyRules, MicroBatchPositive) {
  expectError("training:\n  micro_batch_size: 0\n",
              "t.yaml:2:21: error: training.micro_batch_size (0) must be in "
              "[1, 1048576]");
}

TEST(SingleKeyRules, DataFormatChoices) {
  expectError("data:\n  format: parquet\n",
              "t.yaml:2:11: error: data.format 'parquet' is not one of "
              "'fusion_shards', 'bin', 'synthetic'");
}

TEST(SingleKeyRules, SamplingChoices) {
  expectError("data:\n  sampling: random\n",
              "t.yaml:2:13: error: data.sampling 'random' is not one of "
              "'mixture', 'sequential'");
}

TEST(SingleKeyRules, DataMixWeightsNonNegative) {
  expectError("data:\n  data_mix: {web: 1.0, code: -0.5}\n",
              "t.yaml:2:30: error: data.data_mix.code (-0.5) must be >= 0");
}

TEST(SingleKeyRules, TokenIdsAtLeastMinusOne) {
  expectError("data:\n  eos_token_id: -2\n",
              "t.yaml:2:17: error: data.eos_token_id (-2) must be in [-1, "
              "16777216]");
}

TEST(SingleKeyRules, ShardStrategyChoices) {
  expectError("distributed:\n  fsdp_shard_strategy: FULL\n",
              "t.yaml:2:24: error: distributed.fsdp_shard_strategy 'FULL' is "
              "not one of 'FULL_SHARD', 'SHARD_GRAD_OP', 'NO_SHARD'");
}

TEST(SingleKeyRules, ReduceDtypeMustBeFp32) {
  expectError("distributed:\n  fsdp_reduce_dtype: bf16\n",
              "t.yaml:2:22: error: distributed.fsdp_reduce_dtype 'bf16' must "
              "be 'fp32' (gradients are reduced in fp32, MODEL.md §1)");
}

TEST(SingleKeyRules, HugeIntegersAreReportedExactly) {
  expectValid("training:\n  seed: 9223372036854775807\n");
  expectError("model:\n  dim: 9223372036854775807\n",
              "t.yaml:2:8: error: model.dim (9223372036854775807) must be in "
              "[64, 65536]");
  expectError("model:\n  n_layers: -9223372036854775808\n",
              "t.yaml:2:13: error: model.n_layers (-9223372036854775808) must "
              "be in [1, 4096]");
}

TEST(SingleKeyRules, NumGpusPositive) {
  expectError("distributed:\n  n_gpus: 0\n",
              "t.yaml:2:11: error: distributed.n_gpus (0) must be in [1, "
              "1048576]");
}

//===----------------------------------------------------------------------===//
// Cross-key rules: attention
//===----------------------------------------------------------------------===//

TEST(CrossKeyRules, HeadsDivisibleByKvGroups) {
  expectError("model:\n  n_heads: 12\n  n_kv_groups: 5\n",
              "t.yaml:3:16: error: model.n_heads (12) must be divisible by "
              "model.n_kv_groups (5)",
              {"t.yaml:2:12: note: model.n_heads set here"});
}

TEST(CrossKeyRules, CrossKeyErrorSitsAtTheLaterKey) {
  expectError("model:\n  n_kv_groups: 5\n  n_heads: 12\n",
              "t.yaml:3:12: error: model.n_heads (12) must be divisible by "
              "model.n_kv_groups (5)",
              {"t.yaml:2:16: note: model.n_kv_groups set here"});
  // Only one of the keys written: no note.
  expectError("model:\n  n_kv_groups: 5\n",
              "t.yaml:2:16: error: model.n_heads (32) must be divisible by "
              "model.n_kv_groups (5)");
}

//===----------------------------------------------------------------------===//
// Cross-key rules: MoE (§5)
//===----------------------------------------------------------------------===//

TEST(CrossKeyRules, ExpertGroupsDivideExperts) {
  expectError("model:\n  n_routed_experts: 10\n  n_expert_groups: 4\n",
              "t.yaml:3:20: error: model.n_routed_experts (10) must be "
              "divisible by model.n_expert_groups (4)",
              {"t.yaml:2:21: note: model.n_routed_experts set here"});
}

TEST(CrossKeyRules, LimitedGroupsAtMostGroups) {
  expectError("model:\n  n_limited_groups: 9\n",
              "t.yaml:2:21: error: model.n_limited_groups (9) must be <= "
              "model.n_expert_groups (8)");
}

TEST(CrossKeyRules, GroupTopkAtMostExpertsPerGroup) {
  expectError("model:\n  group_topk: 9\n",
              "t.yaml:2:15: error: model.group_topk (9) must be <= the "
              "experts per group, model.n_routed_experts / "
              "model.n_expert_groups (64 / 8 = 8)");
}

TEST(CrossKeyRules, ActivatedExpertsAtMostKeptExperts) {
  expectError("model:\n  n_activated_experts: 25\n",
              "t.yaml:2:24: error: model.n_activated_experts (25) must be <= "
              "model.n_limited_groups * experts per group (3 * 8 = 24)");
  expectValid("model:\n  n_activated_experts: 24\n");
}

TEST(CrossKeyRules, MoERulesOffWithoutExperts) {
  // E = 0: MLA layers use the dense FFN; the group keys are unused.
  expectValid("model:\n  n_routed_experts: 0\n  n_expert_groups: 7\n"
              "  n_activated_experts: 100\n");
}

//===----------------------------------------------------------------------===//
// Cross-key rules: GDN (§4)
//===----------------------------------------------------------------------===//

TEST(CrossKeyRules, GdnValueHeadsInteger) {
  expectError("model:\n  gdn_headdim: 48\n",
              "t.yaml:2:16: error: model.gdn_expand * model.dim (2 * 2048 = "
              "4096) must be divisible by model.gdn_headdim (48)");
}

TEST(CrossKeyRules, GdnKeyHeadsDivideValueHeads) {
  expectError("model:\n  gdn_n_k_heads: 48\n",
              "t.yaml:2:18: error: model.gdn_n_k_heads (48) must divide the "
              "GDN value heads H_g = gdn_expand * dim / gdn_headdim (64)");
  expectValid("model:\n  gdn_n_k_heads: 16\n");
}

//===----------------------------------------------------------------------===//
// Cross-key rules: schedules (§2, §7)
//===----------------------------------------------------------------------===//

TEST(CrossKeyRules, LayerScheduleSyntax) {
  expectError("model:\n  layer_schedule: 5-1\n",
              "t.yaml:2:19: error: model.layer_schedule '5-1' is not a layer "
              "schedule; expected 'mha', 'ssm', 'A:B' or 'ssm:N'");
  expectError("model:\n  layer_schedule: ssm:0\n",
              "t.yaml:2:19: error: model.layer_schedule 'ssm:0' needs an "
              "integer N in [1, 4096] in 'ssm:N'");
  expectError("model:\n  layer_schedule: \"0:0\"\n",
              "t.yaml:2:19: error: model.layer_schedule '0:0' has an empty "
              "period (A + B must be >= 1)");
  expectError("model:\n  layer_schedule: a:b\n",
              "t.yaml:2:19: error: model.layer_schedule 'a:b' is not a valid "
              "period 'A:B' (A MLA layers then B GDN layers)");
  for (const char *ok : {"mha", "attention", "transformer", "ssm", "mamba",
                         "gdn", "\"3:1\"", "ssm:6"})
    expectValid(std::string("model:\n  layer_schedule: ") + ok + "\n");
}

TEST(CrossKeyRules, SlidingWindowScheduleSyntax) {
  expectError("model:\n  sliding_window_schedule: half\n",
              "t.yaml:2:28: error: model.sliding_window_schedule 'half' is "
              "not a sliding-window schedule; expected 'all', 'none' or "
              "'A:B'");
  for (const char *ok : {"all", "none", "\"1:1\""})
    expectValid(std::string("model:\n  sliding_window_schedule: ") + ok + "\n");
}

TEST(CrossKeyRules, MtpScheduleLength) {
  expectError("model:\n  mtp_depth: 1\n  mtp_loss_weight_schedule: [0.3, "
              "0.2]\n",
              "t.yaml:3:29: error: model.mtp_loss_weight_schedule has 2 "
              "entries but model.mtp_depth is 1; it needs at most one weight "
              "per MTP depth",
              {"t.yaml:2:14: note: model.mtp_depth set here"});
  // Shorter is fine: missing depths use mtp_loss_weight.
  expectValid("model:\n  mtp_depth: 3\n  mtp_loss_weight_schedule: [0.3]\n");
}

TEST(CrossKeyRules, MtpSoftcapValuePositive) {
  expectError("model:\n  mtp_softcap_value: 0\n",
              "t.yaml:2:22: error: model.mtp_softcap_value (0.0) must be > 0 "
              "when model.mtp_softcap is true");
  expectValid("model:\n  mtp_softcap: false\n  mtp_softcap_value: 0\n");
}

TEST(CrossKeyRules, SeqLenExceedsMtpDepth) {
  expectError("model:\n  max_seq_len: 3\n  layer_schedule: mha\n",
              "t.yaml:2:16: error: model.max_seq_len (3) must be greater than "
              "model.mtp_depth (3)");
}

TEST(CrossKeyRules, SeqLenNotAMultipleOfChunkWarns) {
  ParseOutcome outcome = parseText("model:\n  max_seq_len: 100\n");
  ASSERT_TRUE(outcome.ok()) << outcome.joined();
  std::vector<std::string> expected = {
      "t.yaml:2:16: warning: model.max_seq_len (100) is not a multiple of "
      "model.gdn_chunk_size (64); the last GDN chunk of every row is "
      "partial"};
  EXPECT_EQ(outcome.diagnostics, expected);
  // No GDN layer, no warning.
  ParseOutcome mha =
      parseText("model:\n  max_seq_len: 100\n  layer_schedule: mha\n");
  ASSERT_TRUE(mha.ok()) << mha.joined();
  EXPECT_TRUE(mha.diagnostics.empty()) << mha.joined();
}

//===----------------------------------------------------------------------===//
// Cross-key rules: training (§13)
//===----------------------------------------------------------------------===//

TEST(CrossKeyRules, WsdNeedsADecayStep) {
  expectError("training:\n  total_steps: 10\n  wsd_stable_frac: 1.0\n",
              "t.yaml:3:20: error: the WSD schedule has no decay step: "
              "training.total_steps (10) - N_w (0) - N_st (10) = 0, but N_d "
              "must be >= 1",
              {"t.yaml:2:16: note: training.total_steps set here"});
  // 0.01 + 0.84 of 100 steps leaves 15 decay steps.
  expectValid("training:\n  total_steps: 100\n");
}

TEST(CrossKeyRules, CosineWarmupShorterThanRun) {
  expectError("training:\n  scheduler: cosine\n  total_steps: 100\n",
              "t.yaml:3:16: error: training.warmup_steps (500) must be < "
              "training.total_steps (100) for the cosine scheduler",
              {"t.yaml:2:14: note: training.scheduler set here"});
}

TEST(CrossKeyRules, SeqLenRampWithinMaxSeqLen) {
  expectError("training:\n  seq_len_schedule_enabled: true\n",
              "t.yaml:2:29: error: training.final_seq_len (8192) must be <= "
              "model.max_seq_len (4096) when "
              "training.seq_len_schedule_enabled is true");
  expectValid("training:\n  seq_len_schedule_enabled: true\n"
              "  final_seq_len: 4096\n");
}

TEST(CrossKeyRules, SeqLenRampAtLeast128) {
  expectError("training:\n  seq_len_schedule_enabled: true\n"
              "  initial_seq_len: 100\n  final_seq_len: 4096\n",
              "t.yaml:3:20: error: training.initial_seq_len (100) must be >= "
              "128 (ramp lengths are rounded down to a multiple of 128)");
}

TEST(CrossKeyRules, CurriculumStageWeightsPositive) {
  expectError("training:\n  curriculum_switch_step: 100\n"
              "  curriculum_stage2_weights: {}\n",
              "t.yaml:3:30: error: training.curriculum_stage2_weights must "
              "have a positive total weight when "
              "training.curriculum_switch_step is set",
              {"t.yaml:2:27: note: training.curriculum_switch_step set "
               "here"});
}

//===----------------------------------------------------------------------===//
// Cross-key rules: data (§14)
//===----------------------------------------------------------------------===//

TEST(CrossKeyRules, TokenIdsWithinVocab) {
  expectError("model:\n  vocab_size: 50304\ndata:\n  eos_token_id: 50304\n",
              "t.yaml:4:17: error: data.eos_token_id (50304) must be < "
              "model.vocab_size (50304)",
              {"t.yaml:2:15: note: model.vocab_size set here"});
  expectError("data:\n  pad_token_id: 152064\n",
              "t.yaml:2:17: error: data.pad_token_id (152064) must be < "
              "model.vocab_size (152064)");
}

TEST(CrossKeyRules, BinNeedsTrainDataPath) {
  expectError("data:\n  format: bin\n",
              "t.yaml:2:11: error: data.train_data_path is required when "
              "data.format is 'bin'");
}

TEST(CrossKeyRules, BinEvalNeedsValDataPath) {
  expectError("training:\n  eval_enabled: true\ndata:\n  format: bin\n"
              "  train_data_path: x.bin\n",
              "t.yaml:4:11: error: data.val_data_path is required when "
              "data.format is 'bin' and training.eval_enabled is true",
              {"t.yaml:2:17: note: training.eval_enabled set here"});
}

TEST(CrossKeyRules, MixtureNeedsShards) {
  expectError("data:\n  format: bin\n  train_data_path: x.bin\n"
              "  sampling: mixture\n",
              "t.yaml:4:13: error: data.sampling 'mixture' requires "
              "data.format 'fusion_shards' (bin files have no sources)",
              {"t.yaml:2:11: note: data.format set here"});
  // Synthetic data ignores the sampling key (smoke.yaml writes "mixture").
  expectValid("data:\n  format: synthetic\n  sampling: mixture\n");
}

TEST(CrossKeyRules, DataMixPositiveTotal) {
  expectError("data:\n  data_mix: {web: 0.0}\n",
              "t.yaml:2:13: error: data.data_mix must have a positive total "
              "weight for mixture sampling");
}

//===----------------------------------------------------------------------===//
// Reporting behaviour
//===----------------------------------------------------------------------===//

TEST(ValidationReporting, OneMistakeOneError) {
  // An out-of-range G stops H mod G from reporting too.
  expectError("model:\n  n_kv_groups: 0\n",
              "t.yaml:2:16: error: model.n_kv_groups (0) must be in [1, "
              "4096]");
  // A type error keeps the default out of the cross-key rules.
  expectError("model:\n  n_routed_experts: many\n  n_expert_groups: 5\n",
              "t.yaml:2:21: error: model.n_routed_experts expects an integer, "
              "got 'many'");
}

TEST(ValidationReporting, ProgrammaticConfigIsUnlocated) {
  Config config;
  config.model.nHeads = 12;
  config.model.nKvGroups = 5;
  config.model.ropeFactor = 8.0;
  llvm::SourceMgr sourceMgr;
  std::vector<std::string> diagnostics;
  sourceMgr.setDiagHandler(captureHandler, &diagnostics);
  EXPECT_EQ(validateConfig(config, sourceMgr), 2u);
  std::vector<std::string> expected = {
      "error: model.rope_factor (8.0) must be 1.0 for pretraining (change "
      "rope_theta instead; the seed's factor 8 equals rope_theta 80000)",
      "error: model.n_heads (12) must be divisible by model.n_kv_groups (5)"};
  EXPECT_EQ(diagnostics, expected);
}

TEST(ValidationReporting, ErrorCountIsCapped) {
  std::string yaml = "model:\n";
  for (int i = 0; i < 60; ++i)
    yaml += "  unknown_" + std::to_string(i) + ": 1\n";
  ParseOutcome outcome = parseText(yaml);
  EXPECT_FALSE(outcome.ok());
  std::vector<std::string> errors = outcome.errors();
  ASSERT_EQ(errors.size(), 51u);
  EXPECT_EQ(errors.back(),
            "t.yaml:52:3: error: too many errors (50), stopping now");
}

} // namespace
