//===- ReportTest.cpp - MODEL.md §18 numbers from the shipped configs -----===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// The report reproduces MODEL.md's worked numbers: exact parameter counts for
// fusionllm-7b (§18.1), bench-1gpu (§18.2) and smoke (§18.3), FLOPs per token
// to the precision MODEL.md states, and its memory statements (§18.2 static
// memory, §19 optimizer state). Ablations change exactly what they ablate.
//
//===----------------------------------------------------------------------===//

#include "SpecTestUtil.h"

#include "frontend/Spec/ConfigSpec.h"
#include "frontend/Spec/Report.h"

#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

using namespace fusion::spec;
using namespace fusion::spec::test;

namespace {

Config loadConfig(const char *path) {
  ParseOutcome outcome = parseRepoFile(path);
  EXPECT_TRUE(outcome.ok()) << path << ":\n" << outcome.joined();
  return outcome.ok() ? outcome.config() : Config();
}

//===----------------------------------------------------------------------===//
// fusionllm-7b (§18.1)
//===----------------------------------------------------------------------===//

TEST(Report, FusionLLM7bParameters) {
  ModelReport report = computeReport(loadConfig("configs/fusionllm-7b.yaml"));
  const ParameterCounts &p = report.params;
  EXPECT_EQ(p.embedding, 311427072);
  EXPECT_EQ(p.mlaMixer, 13763712);
  EXPECT_EQ(p.expert, 9437184);
  EXPECT_EQ(p.moeStored, 641859584);
  EXPECT_EQ(p.moeActive, 94502912);
  EXPECT_EQ(p.mlaMoeBlockStored, 655627392);
  EXPECT_EQ(p.mlaMoeBlockActive, 108270720);
  EXPECT_EQ(p.gdnMixer, 59064512);
  EXPECT_EQ(p.denseFfn, 25165824);
  EXPECT_EQ(p.gdnBlock, 84234432);
  EXPECT_EQ(p.mtpModule, 47328384);
  EXPECT_EQ(3 * p.mtpModule, 141985152);
  EXPECT_EQ(p.numMlaMoeLayers, 25);
  EXPECT_EQ(p.numGdnLayers, 5);
  EXPECT_EQ(p.numMlaDenseLayers, 0);
  EXPECT_EQ(p.total, 17123286080);
  EXPECT_EQ(p.totalWithMtp, 17265271232);
  EXPECT_EQ(p.active, 3439369280);
  EXPECT_EQ(p.activeWithMtp, 3581354432);
  // "3.13 B non-embedding".
  EXPECT_NEAR(double(p.active - p.embedding) / 1e9, 3.13, 0.005);
  // Optimizer partition: everything is either NorMuon or AdamW.
  EXPECT_EQ(p.normuonParams + p.adamwParams, p.totalWithMtp);
}

TEST(Report, FusionLLM7bFlops) {
  ModelReport report = computeReport(loadConfig("configs/fusionllm-7b.yaml"));
  const FlopCounts &f = report.flops;
  EXPECT_EQ(f.matmulBackbone, 3127377920);
  EXPECT_EQ(f.matmulHead, 311427072);
  // 3 * (8,388,608 proj + 13,762,560 MLA + 25,165,824 FFN + 311,427,072 head).
  EXPECT_EQ(report.params.mtpMatmul, 8388608 + 13762560 + 25165824);
  EXPECT_EQ(f.matmulMtp, 1076232192);
  EXPECT_EQ(f.matmulTotal, 4515037184);
  EXPECT_NEAR(2.0 * f.matmulTotal / 1e9, 9.03, 0.005);
  // 20,480 * (21 * 1536.25 + 4 * 2048.5): exact in binary floating point.
  EXPECT_DOUBLE_EQ(f.attention, 20480.0 * (21 * 1536.25 + 4 * 2048.5));
  EXPECT_NEAR(f.attention / 1e9, 0.829, 0.0005);
  EXPECT_NEAR(f.mtpAttention / 1e9, 0.126, 0.0005);
  EXPECT_NEAR(f.gdnCore / (5 * 64), 117419, 0.5); // per head and token
  EXPECT_NEAR(f.gdnCore / 1e9, 0.038, 0.0005);
  EXPECT_NEAR(f.forward / 1e9, 10.022, 0.0005);
  EXPECT_NEAR(f.training / 1e9, 30.07, 0.005);
  EXPECT_NEAR(f.trainingMainOnly / 1e9, 23.23, 0.005);
  EXPECT_NEAR(f.sixN / 1e9, 27.09, 0.005);
  EXPECT_NEAR(f.trainingWithRecompute / 1e9, 40.09, 0.005);
  EXPECT_EQ(f.executedPerToken, f.trainingWithRecompute); // use_checkpoint
}

TEST(Report, FusionLLM7bStepAndMemory) {
  Config config = loadConfig("configs/fusionllm-7b.yaml");
  ModelReport report = computeReport(config);
  EXPECT_EQ(report.tokensPerStep, 1048576);
  // §18.1: x 143,000 steps = 149.9 B tokens.
  EXPECT_NEAR(double(report.tokensPerStep) * config.training.totalSteps / 1e9,
              149.9, 0.05);
  EXPECT_EQ(report.lrPhases.warmup, 1430);
  EXPECT_EQ(report.lrPhases.stable, 120120);
  EXPECT_EQ(report.lrPhases.decay, 21450);
  // §19: fp32 master + grads + NorMuon momentum (+ AdamW m,v on the
  // embedding) ~ 208 GB, ~ 26 GB/GPU with 8-way sharding.
  const MemoryEstimate &mem = report.memory;
  EXPECT_NEAR(mem.optimizerState / 1e9, 208, 0.5);
  EXPECT_NEAR(mem.optimizerState / 8 / 1e9, 26, 0.1);
  EXPECT_DOUBLE_EQ(mem.masterWeights, 4.0 * 17265271232);
  EXPECT_DOUBLE_EQ(mem.staticPerRank, mem.staticTotal / 8); // FULL_SHARD
  EXPECT_GT(mem.activationPerTokenNoRecompute, mem.activationPerTokenRecompute);
}

//===----------------------------------------------------------------------===//
// bench-1gpu (§18.2)
//===----------------------------------------------------------------------===//

TEST(Report, Bench1gpuParameters) {
  ModelReport report = computeReport(loadConfig("configs/bench-1gpu.yaml"));
  const ParameterCounts &p = report.params;
  EXPECT_EQ(p.mlaMixer, 1933888);
  EXPECT_EQ(p.expert, 4718592);
  EXPECT_EQ(p.moeStored, 80232448);
  EXPECT_EQ(p.moeActive, 14172160);
  EXPECT_EQ(p.gdnMixer, 14786688);
  EXPECT_EQ(p.denseFfn, 6291456);
  EXPECT_EQ(p.total, 915356544);
  EXPECT_EQ(p.totalWithMtp, 925684160);
  EXPECT_EQ(p.active, 254753664);
  EXPECT_EQ(p.activeWithMtp, 265081280);
  EXPECT_NEAR(p.embedding / 1e6, 51.5, 0.05); // "incl. 51.5 M embedding"
  EXPECT_NEAR(p.mtpModule / 1e6, 10.3, 0.05); // "+10.3 M"
}

TEST(Report, Bench1gpuFlopsAndMemory) {
  Config config = loadConfig("configs/bench-1gpu.yaml");
  ModelReport report = computeReport(config);
  EXPECT_NEAR(report.flops.training / 1e9, 2.06, 0.005);
  EXPECT_NEAR(report.flops.sixN / 1e9, 1.90, 0.005);
  EXPECT_NEAR(report.flops.trainingWithRecompute / 1e9, 2.75, 0.005);
  EXPECT_EQ(report.flops.executedPerToken, report.flops.training);
  EXPECT_EQ(report.tokensPerStep, 262144);
  EXPECT_EQ(report.tokensPerMicroBatch, 32768);
  // "Static memory ~ 13.2 GB; 32k-token micro-batches fit without
  // recompute" on one 80 GB H100.
  EXPECT_NEAR(report.memory.staticTotal / 1e9, 13.2, 0.05);
  EXPECT_DOUBLE_EQ(report.memory.staticPerRank, report.memory.staticTotal);
  EXPECT_LT(report.memory.peakPerRank, 80e9);
  EXPECT_GT(report.memory.activationPerMicroBatch, 1e9);
}

//===----------------------------------------------------------------------===//
// smoke (§18.3)
//===----------------------------------------------------------------------===//

TEST(Report, SmokeNumbers) {
  ModelReport report = computeReport(loadConfig("configs/smoke.yaml"));
  const ParameterCounts &p = report.params;
  EXPECT_EQ(p.mlaMixer, 11872);
  EXPECT_EQ(p.expert, 12288);
  EXPECT_EQ(p.moeStored, 86400);
  EXPECT_EQ(p.moeActive, 37248);
  EXPECT_EQ(p.gdnBlock, 68256);
  EXPECT_EQ(p.total, 593088);
  EXPECT_EQ(p.totalWithMtp, 683008);
  EXPECT_EQ(p.active, 347328);
  EXPECT_EQ(p.activeWithMtp, 437248);
  EXPECT_NEAR(report.flops.training / 1e6, 3.29, 0.005);
  EXPECT_EQ(report.tokensPerStep, 1024);
  EXPECT_NEAR(report.flops.training * report.tokensPerStep / 1e9, 3.37, 0.005);
}

//===----------------------------------------------------------------------===//
// Ablations and variants
//===----------------------------------------------------------------------===//

TEST(Report, AblationsChangeWhatTheyAblate) {
  ModelReport base = computeReport(loadConfig("configs/fusionllm-7b.yaml"));

  ModelReport moeOff =
      computeReport(loadConfig("configs/ablations/moe-off.yaml"));
  EXPECT_EQ(moeOff.params.numMlaMoeLayers, 0);
  EXPECT_EQ(moeOff.params.numMlaDenseLayers, 25);
  EXPECT_EQ(moeOff.params.mlaDenseBlock, 13763712 + 25165824 + 4096);
  EXPECT_EQ(moeOff.params.total, moeOff.params.active);
  EXPECT_EQ(moeOff.params.total, int64_t(311427072) +
                                     25 * moeOff.params.mlaDenseBlock +
                                     5 * int64_t(84234432) + 2048);

  ModelReport mha = computeReport(loadConfig("configs/ablations/mha.yaml"));
  EXPECT_EQ(mha.params.numMlaMoeLayers, 30);
  EXPECT_EQ(mha.params.numGdnLayers, 0);
  EXPECT_EQ(mha.flops.gdnCore, 0.0);
  EXPECT_EQ(mha.params.total,
            int64_t(311427072) + 30 * int64_t(655627392) + 2048);

  ModelReport ssm = computeReport(loadConfig("configs/ablations/ssm.yaml"));
  EXPECT_EQ(ssm.params.numGdnLayers, 30);
  EXPECT_EQ(ssm.flops.attention, 0.0);
  EXPECT_EQ(ssm.params.total,
            int64_t(311427072) + 30 * int64_t(84234432) + 2048);
  EXPECT_EQ(ssm.params.total, ssm.params.active);

  ModelReport mtpOff =
      computeReport(loadConfig("configs/ablations/mtp-off.yaml"));
  EXPECT_EQ(mtpOff.params.total, base.params.total);
  EXPECT_EQ(mtpOff.params.totalWithMtp, base.params.total);
  EXPECT_EQ(mtpOff.flops.matmulMtp, 0);
  EXPECT_EQ(mtpOff.flops.mtpAttention, 0.0);

  for (const char *path : {"configs/ablations/mup-off.yaml",
                           "configs/ablations/softcap-off.yaml"}) {
    ModelReport same = computeReport(loadConfig(path));
    EXPECT_EQ(same.params.totalWithMtp, base.params.totalWithMtp) << path;
    EXPECT_EQ(same.flops.training, base.flops.training) << path;
  }
  EXPECT_FALSE(loadConfig("configs/ablations/mup-off.yaml").model.muP);
  Config softcapOff = loadConfig("configs/ablations/softcap-off.yaml");
  EXPECT_EQ(softcapOff.model.logitSoftcap, 0.0);
  EXPECT_FALSE(softcapOff.model.mtpSoftcap);
}

TEST(Report, UncompressedQueryAndNoQkNorm) {
  Config config;
  config.model.qLoraRank = 0;
  config.model.qkNorm = false;
  ModelReport report = computeReport(config);
  // W_Q [H*d_qk, D] + W_DKV + kv_norm + W_UKV + W_O (§3, §10).
  int64_t expected =
      32 * 192 * 2048 + 2048 * 320 + 256 + 256 * 2048 + 2048 * 4096;
  EXPECT_EQ(report.params.mlaMixer, expected);
  EXPECT_EQ(report.params.mlaMatmul, expected - 256);
}

TEST(Report, PrintedReport) {
  Config config = loadConfig("configs/fusionllm-7b.yaml");
  std::string text;
  llvm::raw_string_ostream os(text);
  printReport(config, os);
  for (const char *part :
       {"17,123,286,080 (17.12 B)", "17,265,271,232 (17.27 B)",
        "3,439,369,280 (3.44 B)", "3,581,354,432 (3.58 B)", "4,515,037,184",
        "30.07 GFLOP", "40.09 GFLOP", "10.022 GFLOP",
        "GDN layers        {5,11,17,23,29}", "global MLA layers {6,13,20,27}",
        "1,048,576", "1430 / 120120 / 21450",
        "655,627,392 stored / 108,270,720 active"})
    EXPECT_TRUE(hasSubstr(text, part)) << text;
}

} // namespace
