//===- ConfigParseTest.cpp - Parsing, defaults and YAML errors ------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// The shipped configs parse to the values MODEL.md §18 gives; defaults equal
// §17; derived layer kinds follow §2; YAML-level problems (syntax, unknown
// keys and sections, wrong types, empty input, duplicates) give located
// diagnostics; the canonical YAML printer round-trips.
//
//===----------------------------------------------------------------------===//

#include "SpecTestUtil.h"

#include "frontend/Spec/ConfigSpec.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>

#include "gtest/gtest.h"

using namespace fusion::spec;
using namespace fusion::spec::test;

namespace {

std::vector<int64_t> gdnLayers(const ModelConfig &model) {
  std::vector<int64_t> result;
  for (auto [index, kind] : llvm::enumerate(model.getLayerKinds()))
    if (kind.isGdn())
      result.push_back(index);
  return result;
}

std::vector<int64_t> globalMlaLayers(const ModelConfig &model) {
  std::vector<int64_t> result;
  for (auto [index, kind] : llvm::enumerate(model.getLayerKinds()))
    if (kind.isMla() && !kind.isLocal)
      result.push_back(index);
  return result;
}

std::vector<int64_t> localMlaLayers(const ModelConfig &model) {
  std::vector<int64_t> result;
  for (auto [index, kind] : llvm::enumerate(model.getLayerKinds()))
    if (kind.isLocal)
      result.push_back(index);
  return result;
}

const char *const kShippedConfigs[] = {
    "configs/smoke.yaml",
    "configs/bench-1gpu.yaml",
    "configs/fusionllm-7b.yaml",
    "configs/ablations/moe-off.yaml",
    "configs/ablations/mha.yaml",
    "configs/ablations/ssm.yaml",
    "configs/ablations/mtp-off.yaml",
    "configs/ablations/mup-off.yaml",
    "configs/ablations/softcap-off.yaml",
};

//===----------------------------------------------------------------------===//
// Shipped configs
//===----------------------------------------------------------------------===//

TEST(ConfigParse, AllShippedConfigsParseWithoutDiagnostics) {
  for (const char *path : kShippedConfigs) {
    ParseOutcome outcome = parseRepoFile(path);
    EXPECT_TRUE(outcome.ok()) << path << ":\n" << outcome.joined();
    EXPECT_TRUE(outcome.diagnostics.empty()) << path << ":\n"
                                             << outcome.joined();
  }
}

TEST(ConfigParse, FusionLLM7bValues) {
  ParseOutcome outcome = parseRepoFile("configs/fusionllm-7b.yaml");
  ASSERT_TRUE(outcome.ok()) << outcome.joined();
  const Config &c = outcome.config();
  EXPECT_EQ(c.model.vocabSize, 152064);
  EXPECT_EQ(c.model.dim, 2048);
  EXPECT_EQ(c.model.nLayers, 30);
  EXPECT_EQ(c.model.qkHeadDim(), 192);
  EXPECT_EQ(c.model.gdnValueHeads(), 64);
  EXPECT_EQ(c.model.gdnKeyHeads(), 64);
  EXPECT_EQ(c.model.expertsPerGroup(), 8);
  EXPECT_EQ(c.model.mtpLossWeightSchedule,
            (std::vector<double>{0.3, 0.2, 0.1}));
  EXPECT_EQ(c.training.totalSteps, 143000);
  EXPECT_EQ(c.training.adamwBetas, (std::vector<double>{0.9, 0.95}));
  EXPECT_EQ(c.distributed.nGpus, 8);
  EXPECT_EQ(c.distributed.fsdpShardStrategy, "FULL_SHARD");
  EXPECT_EQ(c.data.eosTokenId, 151643);
  SourceWeights mix = {{"fineweb_edu", 0.60},
                       {"finemath", 0.15},
                       {"stack_edu", 0.15},
                       {"cosmopedia", 0.05},
                       {"openr1_math", 0.05}};
  EXPECT_EQ(c.data.dataMix, mix);
  EXPECT_EQ(getTokensPerStep(c), 1048576);
  LrPhases phases = getLrPhases(c.training);
  EXPECT_EQ(phases.warmup, 1430);
  EXPECT_EQ(phases.stable, 120120);
  EXPECT_EQ(phases.decay, 21450);
}

TEST(ConfigParse, LayerKindsOfTheShippedModels) {
  ParseOutcome big = parseRepoFile("configs/fusionllm-7b.yaml");
  ASSERT_TRUE(big.ok()) << big.joined();
  // §2: GDN at {5,11,17,23,29}; global MLA at {6,13,20,27}; 21 local.
  EXPECT_EQ(gdnLayers(big.config().model),
            (std::vector<int64_t>{5, 11, 17, 23, 29}));
  EXPECT_EQ(globalMlaLayers(big.config().model),
            (std::vector<int64_t>{6, 13, 20, 27}));
  EXPECT_EQ(localMlaLayers(big.config().model).size(), 21u);
  for (const LayerKind &kind : big.config().model.getLayerKinds()) {
    EXPECT_EQ(kind.isMoE(), kind.isMla());
    EXPECT_EQ(kind.window, kind.isLocal ? 2048 : 0);
  }

  // §18.2: GDN {5,11}; MLA global {6}, local {0-4,7-10}.
  ParseOutcome bench = parseRepoFile("configs/bench-1gpu.yaml");
  ASSERT_TRUE(bench.ok()) << bench.joined();
  EXPECT_EQ(gdnLayers(bench.config().model), (std::vector<int64_t>{5, 11}));
  EXPECT_EQ(globalMlaLayers(bench.config().model), (std::vector<int64_t>{6}));
  EXPECT_EQ(localMlaLayers(bench.config().model),
            (std::vector<int64_t>{0, 1, 2, 3, 4, 7, 8, 9, 10}));

  // §18.3: GDN {5}; MLA global {1,3}, local {0,2,4}.
  ParseOutcome smoke = parseRepoFile("configs/smoke.yaml");
  ASSERT_TRUE(smoke.ok()) << smoke.joined();
  EXPECT_EQ(gdnLayers(smoke.config().model), (std::vector<int64_t>{5}));
  EXPECT_EQ(globalMlaLayers(smoke.config().model),
            (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(localMlaLayers(smoke.config().model),
            (std::vector<int64_t>{0, 2, 4}));
}

TEST(ConfigParse, LayerScheduleForms) {
  ModelConfig model = Config().model;
  model.nLayers = 12;
  model.layerSchedule = "mha";
  EXPECT_TRUE(gdnLayers(model).empty());
  model.layerSchedule = "transformer";
  EXPECT_TRUE(gdnLayers(model).empty());
  model.layerSchedule = "ssm";
  EXPECT_EQ(gdnLayers(model).size(), 12u);
  model.layerSchedule = "gdn";
  EXPECT_EQ(gdnLayers(model).size(), 12u);
  // "ssm:N": (i+1) mod N == 0.
  model.layerSchedule = "ssm:4";
  EXPECT_EQ(gdnLayers(model), (std::vector<int64_t>{3, 7, 11}));
  // "A:B": the last B of every period of A+B.
  model.layerSchedule = "2:2";
  EXPECT_EQ(gdnLayers(model), (std::vector<int64_t>{2, 3, 6, 7, 10, 11}));
  model.layerSchedule = "3:0";
  EXPECT_TRUE(gdnLayers(model).empty());
  model.layerSchedule = "0:1";
  EXPECT_EQ(gdnLayers(model).size(), 12u);
  // GDN layers always have a dense FFN; MLA layers MoE unless E = 0.
  model.layerSchedule = "1:1";
  for (const LayerKind &kind : model.getLayerKinds())
    EXPECT_EQ(kind.isMoE(), kind.isMla());
  model.nRoutedExperts = 0;
  for (const LayerKind &kind : model.getLayerKinds())
    EXPECT_FALSE(kind.isMoE());
}

TEST(ConfigParse, SlidingWindowScheduleForms) {
  ModelConfig model = Config().model;
  model.nLayers = 6;
  model.layerSchedule = "mha";
  model.slidingWindowSchedule = "all";
  EXPECT_EQ(localMlaLayers(model).size(), 6u);
  model.slidingWindowSchedule = "none";
  EXPECT_TRUE(localMlaLayers(model).empty());
  model.slidingWindowSchedule = "2:1";
  EXPECT_EQ(localMlaLayers(model), (std::vector<int64_t>{0, 1, 3, 4}));
  // sliding_window 0 makes every layer global whatever the schedule says.
  model.slidingWindow = 0;
  model.slidingWindowSchedule = "all";
  EXPECT_TRUE(localMlaLayers(model).empty());
}

//===----------------------------------------------------------------------===//
// Defaults (MODEL.md §17)
//===----------------------------------------------------------------------===//

TEST(ConfigDefaults, ModelDefaultsMatchSection17) {
  Config c;
  const ModelConfig &m = c.model;
  EXPECT_EQ(m.vocabSize, 152064);
  EXPECT_EQ(m.maxSeqLen, 4096);
  EXPECT_EQ(m.dim, 2048);
  EXPECT_EQ(m.nLayers, 30);
  EXPECT_EQ(m.layerSchedule, "5:1");
  EXPECT_EQ(m.normEps, 1e-6);
  EXPECT_EQ(m.nHeads, 32);
  EXPECT_EQ(m.nKvGroups, 8);
  EXPECT_EQ(m.qLoraRank, 512);
  EXPECT_EQ(m.kvLoraRank, 256);
  EXPECT_EQ(m.qkNopeHeadDim, 128);
  EXPECT_EQ(m.qkRopeHeadDim, 64);
  EXPECT_EQ(m.vHeadDim, 128);
  EXPECT_TRUE(m.qkNorm);
  EXPECT_EQ(m.ropeTheta, 10000.0);
  EXPECT_EQ(m.ropeFactor, 1.0);
  EXPECT_EQ(m.slidingWindow, 2048);
  EXPECT_EQ(m.slidingWindowSchedule, "5:1");
  EXPECT_EQ(m.interDim, 4096);
  EXPECT_EQ(m.ffnActivation, "swiglu");
  EXPECT_EQ(m.nRoutedExperts, 64);
  EXPECT_EQ(m.nActivatedExperts, 6);
  EXPECT_EQ(m.nSharedExperts, 4);
  EXPECT_EQ(m.moeInterDim, 1536);
  EXPECT_EQ(m.nExpertGroups, 8);
  EXPECT_EQ(m.nLimitedGroups, 3);
  EXPECT_EQ(m.groupTopk, 2);
  EXPECT_EQ(m.routeScale, 1.0);
  EXPECT_EQ(m.expertCapacityFactor, 0.0);
  EXPECT_EQ(m.expertDropoutProb, 0.0);
  EXPECT_EQ(m.moeWarmupSteps, 0);
  EXPECT_EQ(m.biasUpperThreshold, 0.10);
  EXPECT_EQ(m.biasLowerThreshold, 0.10);
  EXPECT_EQ(m.ssmType, "gdn");
  EXPECT_EQ(m.gdnDState, 128);
  EXPECT_EQ(m.gdnHeaddim, 64);
  EXPECT_EQ(m.gdnDConv, 4);
  EXPECT_EQ(m.gdnExpand, 2);
  EXPECT_FALSE(m.gdnNKHeads.has_value());
  EXPECT_EQ(m.gdnKeyHeads(), m.gdnValueHeads()); // default H_gk = H_g
  EXPECT_EQ(m.gdnChunkSize, 64);
  EXPECT_EQ(m.mambaDState, 128);
  EXPECT_EQ(m.mtpDepth, 3);
  EXPECT_FALSE(m.mtpInterDim.has_value());
  EXPECT_EQ(m.mtpFfnDim(), m.interDim); // default mtp_inter_dim = inter_dim
  EXPECT_EQ(m.mtpLossWeightSchedule, (std::vector<double>{0.3, 0.2, 0.1}));
  EXPECT_EQ(m.mtpLossWeight, 0.3);
  EXPECT_TRUE(m.mtpSoftcap);
  EXPECT_EQ(m.mtpSoftcapValue, 15.0);
  EXPECT_EQ(m.logitSoftcap, 15.0);
  EXPECT_TRUE(m.muP);
  EXPECT_FALSE(m.asymmetricRescale);
  EXPECT_EQ(m.moleEveryN, 0);
  EXPECT_EQ(m.moleRank, 32);
  EXPECT_EQ(m.moleNExperts, 8);
  EXPECT_EQ(m.moleTopK, 1);
  EXPECT_TRUE(m.tieEmbeddings);
  EXPECT_TRUE(m.noBiasLinear);
}

TEST(ConfigDefaults, TrainingDataDistributedDefaultsMatchSection17) {
  Config c;
  const TrainingConfig &t = c.training;
  EXPECT_EQ(t.seed, 1234);
  EXPECT_EQ(t.microBatchSize, 2);
  EXPECT_EQ(t.gradientAccumulationSteps, 16);
  EXPECT_EQ(t.totalSteps, 143000);
  EXPECT_EQ(t.optimizer, "normuon_adamw");
  EXPECT_EQ(t.scheduler, "wsd");
  EXPECT_EQ(t.lr, 3e-4);
  EXPECT_EQ(t.muonLr, 0.02);
  EXPECT_EQ(t.muonMomentum, 0.95);
  EXPECT_TRUE(t.nesterov);
  EXPECT_EQ(t.normuonBeta2, 0.95);
  EXPECT_EQ(t.adamwBetas, (std::vector<double>{0.9, 0.95}));
  EXPECT_EQ(t.adamwEps, 1e-8);
  EXPECT_FALSE(t.adamwCautiousUpdate);
  EXPECT_EQ(t.weightDecay, 0.1);
  EXPECT_TRUE(t.cautiousWd);
  EXPECT_FALSE(t.muonWeightDecay.has_value());
  EXPECT_EQ(t.getMuonWeightDecay(), 0.1); // default = weight_decay
  EXPECT_EQ(t.cautiousWdMode, "grad");
  EXPECT_EQ(t.gradClip, 1.0);
  EXPECT_EQ(t.dtype, "bf16");
  EXPECT_EQ(t.wsdWarmupFrac, 0.01);
  EXPECT_EQ(t.wsdStableFrac, 0.84);
  EXPECT_EQ(t.wsdDecay, "linear");
  EXPECT_EQ(t.minLrRatio, 0.1);
  EXPECT_EQ(t.warmupSteps, 500);
  EXPECT_EQ(t.balanceLossAlpha, 1e-4);
  EXPECT_EQ(t.zLossWeight, 0.0);
  EXPECT_EQ(t.biasUpdateSpeed, 1e-3);
  EXPECT_EQ(t.biasUpdateEvery, 10);
  EXPECT_TRUE(t.useCheckpoint);
  EXPECT_EQ(t.saveDir, "checkpoints/pretrain");
  EXPECT_EQ(t.saveInterval, 500);
  EXPECT_EQ(t.keepLast, 5);
  EXPECT_EQ(t.logInterval, 50);
  EXPECT_FALSE(t.evalEnabled);
  EXPECT_EQ(t.evalInterval, 1000);
  EXPECT_EQ(t.evalMaxBatches, 8);
  EXPECT_FALSE(t.evalSynthetic);
  EXPECT_EQ(t.evalTasks,
            (std::vector<std::string>{"hellaswag", "arc_challenge", "piqa",
                                      "winogrande", "boolq"}));
  EXPECT_EQ(t.curriculumSwitchStep, 0);
  SourceWeights stage1 = {{"fineweb_edu", 0.70},
                          {"stack_edu", 0.15},
                          {"openr1_math", 0.05},
                          {"fineweb2", 0.10}};
  EXPECT_EQ(t.curriculumStage1Weights, stage1);
  SourceWeights stage2 = {{"fineweb_edu", 0.30},
                          {"stack_edu", 0.25},
                          {"openr1_math", 0.25},
                          {"fineweb2", 0.10},
                          {"smollm_corpus", 0.10}};
  EXPECT_EQ(t.curriculumStage2Weights, stage2);
  EXPECT_FALSE(t.batchSizeScheduleEnabled);
  EXPECT_EQ(t.initialBatchSize, 2);
  EXPECT_EQ(t.finalBatchSize, 8);
  EXPECT_EQ(t.batchSizeScheduleSteps, 5000);
  EXPECT_FALSE(t.seqLenScheduleEnabled);
  EXPECT_EQ(t.initialSeqLen, 2048);
  EXPECT_EQ(t.finalSeqLen, 8192);
  EXPECT_EQ(t.seqLenScheduleSteps, 5000);
  EXPECT_TRUE(t.fuseCeSoftcap);
  EXPECT_TRUE(t.fuseLinearRelu2);

  const DataConfig &d = c.data;
  EXPECT_EQ(d.format, "fusion_shards");
  EXPECT_EQ(d.shardManifestPath, "data/shards/manifest.jsonl");
  EXPECT_EQ(d.valShardManifestPath, "data/shards/val_manifest.jsonl");
  EXPECT_TRUE(d.trainDataPath.empty());
  EXPECT_FALSE(d.sampling.has_value());
  EXPECT_EQ(d.getSampling(), "mixture");
  SourceWeights mix = {{"fineweb_edu", 0.60},
                       {"finemath", 0.15},
                       {"stack_edu", 0.15},
                       {"cosmopedia", 0.05},
                       {"openr1_math", 0.05}};
  EXPECT_EQ(d.dataMix, mix);
  EXPECT_EQ(d.eosTokenId, -1);
  EXPECT_EQ(d.padTokenId, -1);

  const DistributedConfig &dist = c.distributed;
  EXPECT_EQ(dist.nGpus, 8);
  EXPECT_EQ(dist.fsdpShardStrategy, "FULL_SHARD");
  EXPECT_EQ(dist.fsdpParamDtype, "bf16");
  EXPECT_EQ(dist.fsdpReduceDtype, "fp32");
  EXPECT_FALSE(dist.fsdpForwardPrefetch);
  EXPECT_TRUE(dist.fsdpBackwardPrefetch);
  EXPECT_TRUE(dist.fsdpLimitAllGathers);
  EXPECT_EQ(dist.shardKeepLast, 1);
  EXPECT_EQ(dist.checkpointBackend, "safetensors");
  EXPECT_TRUE(dist.asyncCheckpointing);
  EXPECT_TRUE(dist.runtimeHints.empty());
}

TEST(ConfigDefaults, DefaultsAreValid) {
  llvm::SourceMgr sourceMgr;
  std::vector<std::string> diagnostics;
  sourceMgr.setDiagHandler(captureHandler, &diagnostics);
  EXPECT_EQ(validateConfig(Config(), sourceMgr), 0u);
  EXPECT_TRUE(diagnostics.empty());
}

TEST(ConfigDefaults, EmptySectionsKeepDefaults) {
  ParseOutcome outcome =
      parseText("model:\ntraining: {}\ndata:\ndistributed: {}\n");
  ASSERT_TRUE(outcome.ok()) << outcome.joined();
  Config defaults;
  EXPECT_EQ(outcome.config().model.dim, defaults.model.dim);
  EXPECT_EQ(outcome.config().training.lr, defaults.training.lr);
  EXPECT_TRUE(outcome.parsed->locations.contains("model"));
}

TEST(ConfigDefaults, DerivedDefaultsFollowTheirSourceKeys) {
  ParseOutcome outcome = parseText("model:\n  dim: 1024\n  inter_dim: 2048\n"
                                   "training:\n  weight_decay: 0.05\n"
                                   "data:\n  format: synthetic\n");
  ASSERT_TRUE(outcome.ok()) << outcome.joined();
  const Config &c = outcome.config();
  EXPECT_EQ(c.model.gdnValueHeads(), 32);
  EXPECT_EQ(c.model.gdnKeyHeads(), 32);
  EXPECT_EQ(c.model.mtpFfnDim(), 2048);
  EXPECT_EQ(c.training.getMuonWeightDecay(), 0.05);
  EXPECT_EQ(c.data.getSampling(), "sequential");
}

TEST(ConfigDefaults, MtpWeightsFallBackToMtpLossWeight) {
  ParseOutcome outcome = parseText("model:\n  mtp_depth: 4\n"
                                   "  mtp_loss_weight_schedule: [0.5]\n"
                                   "  mtp_loss_weight: 0.25\n");
  ASSERT_TRUE(outcome.ok()) << outcome.joined();
  const ModelConfig &m = outcome.config().model;
  EXPECT_EQ(m.mtpLossWeightAt(1), 0.5);
  EXPECT_EQ(m.mtpLossWeightAt(2), 0.25);
  EXPECT_EQ(m.mtpLossWeightAt(4), 0.25);
  // Lowering mtp_depth alone keeps the default schedule, truncated.
  ParseOutcome lowered = parseText("model:\n  mtp_depth: 1\n");
  ASSERT_TRUE(lowered.ok()) << lowered.joined();
  EXPECT_EQ(lowered.config().model.mtpLossWeightAt(1), 0.3);
}

TEST(ConfigDefaults, LrScheduleFactor) {
  TrainingConfig t = Config().training;
  t.totalSteps = 100;
  t.wsdWarmupFrac = 0.1;
  t.wsdStableFrac = 0.7;
  LrPhases phases = getLrPhases(t);
  EXPECT_EQ(phases.warmup, 10);
  EXPECT_EQ(phases.stable, 70);
  EXPECT_EQ(phases.decay, 20);
  EXPECT_DOUBLE_EQ(getLrFactor(t, 0), 0.1);
  EXPECT_DOUBLE_EQ(getLrFactor(t, 9), 1.0);
  EXPECT_DOUBLE_EQ(getLrFactor(t, 79), 1.0);
  EXPECT_DOUBLE_EQ(getLrFactor(t, 80), 1.0 - 0.9 / 20);
  EXPECT_DOUBLE_EQ(getLrFactor(t, 99), 0.1); // omega = 1 at the last step
  EXPECT_DOUBLE_EQ(getLrFactor(t, 150), 0.1);
  // §13: floor(0.7 * 90) must be 63, not 62.
  t.totalSteps = 90;
  EXPECT_EQ(getLrPhases(t).stable, 63);
  t.scheduler = "cosine";
  t.warmupSteps = 10;
  t.totalSteps = 110;
  phases = getLrPhases(t);
  EXPECT_EQ(phases.warmup, 10);
  EXPECT_EQ(phases.stable, 0);
  EXPECT_EQ(phases.decay, 100);
  EXPECT_DOUBLE_EQ(getLrFactor(t, 59), 0.1 + 0.9 * 0.5);
}

//===----------------------------------------------------------------------===//
// YAML-level errors
//===----------------------------------------------------------------------===//

TEST(ConfigErrors, YamlSyntaxError) {
  ParseOutcome outcome = parseText("model:\n  dim: [64, 128\n  n_layers: 2\n");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_TRUE(hasSubstr(outcome.errors()[0], "t.yaml:3:"));
  EXPECT_TRUE(hasSubstr(outcome.errors()[0], "error: invalid YAML: "));
}

TEST(ConfigErrors, SyntaxErrorHidesErrorsAfterIt) {
  // The type error before the syntax error is reported; the artefacts after
  // it (and the cross-key validation) are not.
  ParseOutcome outcome = parseText("model:\n  dim: abc\n  n_heads: 7\n"
                                   "  n_layers: [1, 2\n  other: x\n");
  EXPECT_FALSE(outcome.ok());
  std::vector<std::string> errors = outcome.errors();
  ASSERT_EQ(errors.size(), 2u) << outcome.joined();
  EXPECT_EQ(errors[0], "t.yaml:2:8: error: model.dim expects an integer, got "
                       "'abc'");
  EXPECT_TRUE(hasSubstr(errors[1], "error: invalid YAML"));
}

TEST(ConfigErrors, UnknownKeyWithSuggestion) {
  ParseOutcome outcome = parseText("model:\n  n_head: 12\n");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_EQ(outcome.errors()[0],
            "t.yaml:2:3: error: unknown key 'n_head' in section 'model'; did "
            "you mean 'n_heads'?");
}

TEST(ConfigErrors, UnknownKeyFromAnotherSection) {
  ParseOutcome outcome = parseText("model:\n  lr: 0.1\n");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_EQ(outcome.errors()[0],
            "t.yaml:2:3: error: unknown key 'lr' in section 'model'; 'lr' "
            "belongs in section 'training'");
}

TEST(ConfigErrors, UnknownKeyWithoutSuggestion) {
  ParseOutcome outcome = parseText("data:\n  colour_scheme: blue\n");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_EQ(outcome.errors()[0], "t.yaml:2:3: error: unknown key "
                                 "'colour_scheme' in section 'data'");
}

TEST(ConfigErrors, UnknownSectionWithSuggestion) {
  ParseOutcome outcome = parseText("modle:\n  dim: 64\n");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_EQ(outcome.errors()[0], "t.yaml:1:1: error: unknown section "
                                 "'modle'; did you mean 'model'?");
}

TEST(ConfigErrors, KeyAtTopLevel) {
  ParseOutcome outcome = parseText("n_layers: 4\n");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_EQ(outcome.errors()[0],
            "t.yaml:1:1: error: unknown section 'n_layers'; 'n_layers' is a "
            "key of section 'model' and must be indented under it");
}

TEST(ConfigErrors, UnknownSectionWithoutSuggestion) {
  ParseOutcome outcome = parseText("optimizers:\n  x: 1\n");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_EQ(outcome.errors()[0],
            "t.yaml:1:1: error: unknown section 'optimizers'; expected one of "
            "'model', 'training', 'data', 'distributed'");
}

TEST(ConfigErrors, WrongTypes) {
  ParseOutcome outcome = parseText("model:\n"
                                   "  dim: abc\n"                      // 2
                                   "  norm_eps: fast\n"                // 3
                                   "  qk_norm: yes\n"                  // 4
                                   "  layer_schedule: [5, 1]\n"        // 5
                                   "  n_heads: \"32\"\n"               // 6
                                   "  vocab_size: 1.5e5\n"             // 7
                                   "  mtp_loss_weight_schedule: 0.3\n" // 8
                                   "  rope_theta: .nan\n");            // 9
  EXPECT_FALSE(outcome.ok());
  std::vector<std::string> expected = {
      "t.yaml:2:8: error: model.dim expects an integer, got 'abc'",
      "t.yaml:3:13: error: model.norm_eps expects a finite number, got "
      "'fast'",
      "t.yaml:4:12: error: model.qk_norm expects true or false, got 'yes'",
      "t.yaml:5:19: error: model.layer_schedule expects a string, got a list",
      "t.yaml:6:12: error: model.n_heads expects an integer, got the quoted "
      "string \"32\"",
      "t.yaml:7:15: error: model.vocab_size expects an integer, got '1.5e5'",
      "t.yaml:8:29: error: model.mtp_loss_weight_schedule expects a list of "
      "numbers, got '0.3'",
      "t.yaml:9:15: error: model.rope_theta expects a finite number, got "
      "'.nan'",
  };
  EXPECT_EQ(outcome.errors(), expected) << outcome.joined();
}

TEST(ConfigErrors, WrongTypeInListElement) {
  ParseOutcome outcome =
      parseText("model:\n  mtp_loss_weight_schedule: [0.3, heavy, 0.1]\n");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_EQ(outcome.errors()[0],
            "t.yaml:2:35: error: model.mtp_loss_weight_schedule[1] expects a "
            "finite number, got 'heavy'");
}

TEST(ConfigErrors, MissingValue) {
  ParseOutcome outcome = parseText("model:\n  dim:\n  n_layers: 4\n");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_EQ(outcome.errors()[0],
            "t.yaml:2:3: error: model.dim has no value; expected an integer");
}

TEST(ConfigErrors, IntegerOutOfRange) {
  ParseOutcome outcome =
      parseText("training:\n  total_steps: 99999999999999999999\n");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_EQ(outcome.errors()[0],
            "t.yaml:2:16: error: training.total_steps (99999999999999999999) "
            "does not fit in a 64-bit integer");
}

TEST(ConfigErrors, EmptyFile) {
  for (const char *text : {"", "   \n\n\t\n"}) {
    ParseOutcome outcome = parseText(text);
    EXPECT_FALSE(outcome.ok());
    ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
    EXPECT_EQ(outcome.errors()[0],
              "t.yaml:1:1: error: config is empty; expected a mapping with "
              "sections 'model', 'training', 'data' and 'distributed'");
  }
  ParseOutcome comments = parseText("# nothing here\n# at all\n");
  EXPECT_FALSE(comments.ok());
  ASSERT_EQ(comments.errors().size(), 1u) << comments.joined();
  EXPECT_TRUE(hasSubstr(comments.errors()[0], "error: config is empty"));
}

TEST(ConfigErrors, TopLevelNotAMapping) {
  ParseOutcome list = parseText("- model\n- training\n");
  EXPECT_FALSE(list.ok());
  ASSERT_EQ(list.errors().size(), 1u) << list.joined();
  EXPECT_EQ(list.errors()[0],
            "t.yaml:1:1: error: expected a mapping with sections 'model', "
            "'training', 'data' and 'distributed' at the top level, got a "
            "list");
  ParseOutcome scalar = parseText("hello\n");
  EXPECT_FALSE(scalar.ok());
  ASSERT_EQ(scalar.errors().size(), 1u) << scalar.joined();
  EXPECT_TRUE(hasSubstr(scalar.errors()[0], "at the top level, got 'hello'"));
}

TEST(ConfigErrors, SectionNotAMapping) {
  ParseOutcome outcome = parseText("model: 7\n");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_EQ(outcome.errors()[0], "t.yaml:1:8: error: section 'model' must be "
                                 "a mapping of keys to values, got '7'");
}

TEST(ConfigErrors, DuplicateKey) {
  ParseOutcome outcome = parseText("model:\n  dim: 64\n  n_layers: 2\n"
                                   "  dim: 128\n");
  EXPECT_FALSE(outcome.ok());
  std::vector<std::string> expected = {
      "t.yaml:4:3: error: duplicate key 'dim' in section 'model'",
      "t.yaml:2:3: note: 'dim' first defined here"};
  EXPECT_EQ(outcome.diagnostics, expected);
}

TEST(ConfigErrors, DuplicateKeyThroughAlias) {
  ParseOutcome outcome = parseText("training:\n  use_checkpoint: true\n"
                                   "  gradient_checkpointing: false\n");
  EXPECT_FALSE(outcome.ok());
  std::vector<std::string> expected = {
      "t.yaml:3:3: error: duplicate key 'gradient_checkpointing' (same key as "
      "'use_checkpoint') in section 'training'",
      "t.yaml:2:3: note: 'use_checkpoint' first defined here"};
  EXPECT_EQ(outcome.diagnostics, expected);
}

TEST(ConfigErrors, DuplicateSection) {
  ParseOutcome outcome = parseText("model:\n  dim: 64\nmodel:\n  dim: 128\n");
  EXPECT_FALSE(outcome.ok());
  std::vector<std::string> expected = {
      "t.yaml:3:1: error: duplicate section 'model'",
      "t.yaml:1:1: note: section 'model' first defined here"};
  EXPECT_EQ(outcome.diagnostics, expected);
}

TEST(ConfigErrors, DuplicateSourceInMix) {
  ParseOutcome outcome =
      parseText("data:\n  data_mix: {web: 0.5, code: 0.2, web: 0.3}\n");
  EXPECT_FALSE(outcome.ok());
  std::vector<std::string> expected = {
      "t.yaml:2:35: error: duplicate source 'web' in data.data_mix",
      "t.yaml:2:14: note: 'web' first defined here"};
  EXPECT_EQ(outcome.diagnostics, expected);
}

TEST(ConfigErrors, SecondDocument) {
  ParseOutcome outcome =
      parseText("model:\n  dim: 64\n---\nmodel:\n  dim: 128\n");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_EQ(outcome.errors()[0], "t.yaml:4:1: error: expected a single YAML "
                                 "document in a config, found a second one");
}

TEST(ConfigErrors, AliasesRejected) {
  ParseOutcome outcome =
      parseText("model:\n  dim: &width 1024\n  inter_dim: *width\n");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_EQ(outcome.errors()[0], "t.yaml:3:14: error: YAML aliases are not "
                                 "supported in configs (model.inter_dim)");
}

TEST(ConfigErrors, AllErrorsAreCollected) {
  ParseOutcome outcome = parseText("model:\n"
                                   "  dimm: 64\n"
                                   "  n_layers: zero\n"
                                   "  n_heads: 12\n"
                                   "  n_kv_groups: 5\n"
                                   "training:\n"
                                   "  optimizer: adam\n"
                                   "data:\n"
                                   "  format: parquet\n");
  EXPECT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.errors().size(), 5u) << outcome.joined();
}

TEST(ConfigErrors, UnreadableFile) {
  ParseOutcome outcome = parseRepoFile("configs/does-not-exist.yaml");
  EXPECT_FALSE(outcome.ok());
  ASSERT_EQ(outcome.errors().size(), 1u) << outcome.joined();
  EXPECT_TRUE(hasSubstr(outcome.errors()[0],
                        "configs/does-not-exist.yaml: error: cannot read "
                        "config: "));
}

TEST(ConfigErrors, InvalidLitInputsReportTheirDocumentedError) {
  // Each test/frontend/invalid/*.yaml documents its first error in an
  // "# expect: LINE:COL: error: ..." comment.
  std::string dir = sourceDir() + "/test/frontend/invalid";
  std::vector<std::string> files;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec;
       it.increment(ec))
    if (llvm::StringRef(it->path()).ends_with(".yaml"))
      files.push_back(it->path());
  ASSERT_FALSE(ec) << ec.message();
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 10u);
  for (const std::string &file : files) {
    auto buffer = llvm::MemoryBuffer::getFile(file);
    ASSERT_TRUE(bool(buffer)) << file;
    llvm::StringRef text = (*buffer)->getBuffer();
    size_t at = text.find("# expect: ");
    ASSERT_NE(at, llvm::StringRef::npos) << file;
    llvm::StringRef expected = text.substr(at + 10).split('\n').first.rtrim();
    std::string relative = file.substr(sourceDir().size() + 1);
    ParseOutcome outcome = parseRepoFile(relative);
    EXPECT_FALSE(outcome.ok()) << file;
    std::vector<std::string> errors = outcome.errors();
    ASSERT_FALSE(errors.empty()) << file;
    EXPECT_EQ(errors[0], sourceDir() + "/" + relative + ":" + expected.str())
        << outcome.joined();
  }
}

//===----------------------------------------------------------------------===//
// Accepted spellings
//===----------------------------------------------------------------------===//

TEST(ConfigSpellings, ScalarForms) {
  ParseOutcome outcome = parseText("model:\n"
                                   "  qk_norm: False\n"
                                   "  norm_eps: 1e-5\n"
                                   "  rope_theta: 500000\n"
                                   "  layer_schedule: 3:1\n"
                                   "training:\n"
                                   "  total_steps: 143_000\n"
                                   "  gradient_checkpointing: false\n"
                                   "  lr: +2.5E-4\n"
                                   "  save_dir: 'runs/it''s here'\n"
                                   "  eval_tasks: [piqa]\n"
                                   "  wandb_project: fusion\n"
                                   "distributed:\n"
                                   "  device: cuda\n"
                                   "  num_workers: 4\n"
                                   "data:\n"
                                   "  data_mix:\n"
                                   "    web: 1\n"
                                   "    code: 0.5\n");
  ASSERT_TRUE(outcome.ok()) << outcome.joined();
  const Config &c = outcome.config();
  EXPECT_FALSE(c.model.qkNorm);
  EXPECT_EQ(c.model.normEps, 1e-5);
  EXPECT_EQ(c.model.ropeTheta, 500000.0);
  EXPECT_EQ(c.model.layerSchedule, "3:1");
  EXPECT_EQ(c.training.totalSteps, 143000);
  EXPECT_FALSE(c.training.useCheckpoint);
  EXPECT_EQ(c.training.lr, 2.5e-4);
  EXPECT_EQ(c.training.saveDir, "runs/it's here");
  EXPECT_EQ(c.training.evalTasks, std::vector<std::string>{"piqa"});
  ASSERT_EQ(c.training.loggingHints.size(), 1u);
  EXPECT_EQ(c.training.loggingHints[0].first, "wandb_project");
  EXPECT_EQ(c.distributed.runtimeHints.size(), 2u);
  SourceWeights mix = {{"web", 1.0}, {"code", 0.5}};
  EXPECT_EQ(c.data.dataMix, mix);
  // Locations of every written key, for frontend/Import.
  const KeyLocation *loc = outcome.parsed->locations.lookup("training.lr");
  ASSERT_NE(loc, nullptr);
  auto [line, column] = outcome.sourceMgr->getLineAndColumn(loc->value.Start);
  EXPECT_EQ(line, 9u);
  EXPECT_EQ(column, 7u);
  EXPECT_TRUE(outcome.parsed->locations.contains("training.use_checkpoint"));
  EXPECT_FALSE(outcome.parsed->locations.contains("model.dim"));
}

//===----------------------------------------------------------------------===//
// Printers
//===----------------------------------------------------------------------===//

TEST(ConfigPrinters, YamlRoundTrip) {
  std::vector<Config> configs = {Config()};
  for (const char *path : kShippedConfigs) {
    ParseOutcome outcome = parseRepoFile(path);
    ASSERT_TRUE(outcome.ok()) << path << ":\n" << outcome.joined();
    configs.push_back(outcome.config());
  }
  configs.back().training.loggingHints.push_back({"wandb_entity", "a \"b\""});
  configs.back().distributed.runtimeHints.push_back({"device", "cuda:0"});
  for (const Config &config : configs) {
    std::string text;
    llvm::raw_string_ostream os(text);
    printConfigYaml(config, os);
    ParseOutcome outcome = parseText(text, "printed.yaml");
    ASSERT_TRUE(outcome.ok()) << outcome.joined() << text;
    std::string again;
    llvm::raw_string_ostream os2(again);
    printConfigYaml(outcome.config(), os2);
    EXPECT_EQ(text, again);
    EXPECT_EQ(outcome.config().model.mtpLossWeightSchedule,
              config.model.mtpLossWeightSchedule);
    EXPECT_EQ(outcome.config().data.dataMix, config.data.dataMix);
    EXPECT_EQ(outcome.config().training.lr, config.training.lr);
    EXPECT_EQ(outcome.config().model.gdnNKHeads, config.model.gdnNKHeads);
  }
}

TEST(ConfigPrinters, ReferenceListsEveryKey) {
  std::string text;
  llvm::raw_string_ostream os(text);
  printConfigReference(os);
  for (const KeyInfo &key : getConfigKeys())
    EXPECT_TRUE(hasSubstr(text, "| `" + std::string(key.name) + "` |"))
        << key.name;
  EXPECT_TRUE(hasSubstr(text, "| `dim` | integer | `2048` | [64, 65536], "
                              "multiple of 64 | D: model width |"));
  EXPECT_TRUE(hasSubstr(text, "| `gdn_n_k_heads` | integer | H_g |"));
}

TEST(ConfigPrinters, TableIsConsistent) {
  // Every key is unique within its section, has a doc string, and its field
  // holds the type the table says.
  Config config;
  for (const KeyInfo &key : getConfigKeys()) {
    EXPECT_EQ(lookupConfigKey(key.section, key.name), &key) << key.name;
    EXPECT_NE(std::string(key.doc), "") << key.name;
    FieldRef field = key.field(config);
    bool matches = false;
    switch (key.type) {
    case ValueType::Integer:
      matches = std::holds_alternative<int64_t *>(field) ||
                std::holds_alternative<std::optional<int64_t> *>(field);
      break;
    case ValueType::Number:
      matches = std::holds_alternative<double *>(field) ||
                std::holds_alternative<std::optional<double> *>(field);
      break;
    case ValueType::Boolean:
      matches = std::holds_alternative<bool *>(field);
      break;
    case ValueType::String:
      matches = std::holds_alternative<std::string *>(field) ||
                std::holds_alternative<std::optional<std::string> *>(field);
      break;
    case ValueType::NumberList:
      matches = std::holds_alternative<std::vector<double> *>(field);
      break;
    case ValueType::StringList:
      matches = std::holds_alternative<std::vector<std::string> *>(field);
      break;
    case ValueType::SourceWeights:
      matches = std::holds_alternative<SourceWeights *>(field);
      break;
    case ValueType::Hint:
      matches = std::holds_alternative<HintList *>(field);
      break;
    }
    EXPECT_TRUE(matches) << key.name;
    // A key with no default text documents where its default comes from.
    if (!key.defaultValue) {
      EXPECT_NE(key.defaultDoc, nullptr) << key.name;
    }
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// Ramps (§13)
//===----------------------------------------------------------------------===//

TEST(ShapeSchedule, RampsByHand) {
  Config c;
  c.model.maxSeqLen = 1024;
  c.training.totalSteps = 100;
  c.training.microBatchSize = 16;
  // Without ramps: one segment, the configured shape.
  std::vector<ShapeSegment> plain = getShapeSchedule(c);
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(plain[0].rows, 16);
  EXPECT_EQ(plain[0].seqLen, 1024);
  // B(s) = 2 + floor(6s/5) for s < 5: 2, 3, 4, 5, 6, then 8.
  c.training.batchSizeScheduleEnabled = true;
  c.training.initialBatchSize = 2;
  c.training.finalBatchSize = 8;
  c.training.batchSizeScheduleSteps = 5;
  // T(s) = 200 + floor(700s/4) for s < 4 → 200, 375, 550, 725 → 128, 256, 512, 640; then
  // 900 → 896.
  c.training.seqLenScheduleEnabled = true;
  c.training.initialSeqLen = 200;
  c.training.finalSeqLen = 900;
  c.training.seqLenScheduleSteps = 4;
  std::vector<ShapeSegment> ramp = getShapeSchedule(c);
  std::vector<std::array<int64_t, 3>> got;
  for (const ShapeSegment &s : ramp)
    got.push_back({s.firstStep, s.rows, s.seqLen});
  std::vector<std::array<int64_t, 3>> want = {
      {0, 2, 128}, {1, 3, 256}, {2, 4, 512}, {3, 5, 640}, {4, 6, 896}, {5, 8, 896}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(getRampBatchSize(c, 4), 6);
  EXPECT_EQ(getRampSeqLen(c, 1000), 896);
  EXPECT_EQ(getTokensPerStep(c),
            8 * 896 * c.training.gradientAccumulationSteps * c.distributed.nGpus);
  // A run that ends inside the ramp still lists the steady shape (for evaluation), after it.
  c.training.totalSteps = 2;
  std::vector<ShapeSegment> cut = getShapeSchedule(c);
  ASSERT_EQ(cut.size(), 3u);
  EXPECT_EQ(cut[1].firstStep, 1);
  EXPECT_EQ(cut[2].firstStep, 2);
  EXPECT_EQ(cut[2].rows, 8);
  EXPECT_EQ(cut[2].seqLen, 896);
}
