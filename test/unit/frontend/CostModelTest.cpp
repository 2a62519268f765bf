//===- CostModelTest.cpp - Distributed roofline estimate ------------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// Mesh and GPU parsing, the mesh/model consistency errors, hand-computed
// collective bytes and memory for fusionllm-7b and smoke, the scaling laws
// of the estimate (state ~1/dp, no FSDP traffic on one rank, step >=
// compute), and finite numbers for the 7B at 8, 64 and 1024 GPUs (printed,
// for the README).
//
//===----------------------------------------------------------------------===//

#include "SpecTestUtil.h"

#include "frontend/Spec/ConfigSpec.h"
#include "frontend/Spec/CostModel.h"
#include "frontend/Spec/Report.h"

#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <cmath>

using namespace fusion::spec;
using namespace fusion::spec::test;

namespace {

Config loadConfig(const char *path) {
  ParseOutcome outcome = parseRepoFile(path);
  EXPECT_TRUE(outcome.ok()) << path << ":\n" << outcome.joined();
  return outcome.ok() ? outcome.config() : Config();
}

GpuSpec h100() {
  std::string error;
  std::optional<GpuSpec> gpu = lookupGpu("h100", error);
  EXPECT_TRUE(gpu) << error;
  return gpu ? *gpu : GpuSpec();
}

CostReport estimate(const Config &config, int64_t dp, int64_t ep,
                    const GpuSpec &gpu = h100()) {
  std::string error;
  std::optional<CostReport> report =
      estimateCost(config, MeshSpec{dp, ep}, gpu, error);
  EXPECT_TRUE(report) << "dp=" << dp << ",ep=" << ep << ": " << error;
  return report ? *report : CostReport();
}

std::string estimateError(const Config &config, int64_t dp, int64_t ep) {
  std::string error;
  EXPECT_FALSE(estimateCost(config, MeshSpec{dp, ep}, h100(), error));
  return error;
}

const CollectiveCost &find(const CostReport &report, llvm::StringRef name) {
  for (const CollectiveCost &c : report.collectives)
    if (c.name == name)
      return c;
  ADD_FAILURE() << "no collective '" << name.str() << "'";
  static CollectiveCost none;
  return none;
}

/// Payload and wire bytes of \p name are exactly the hand-computed values.
void expectBytes(const CostReport &report, llvm::StringRef name, double payload,
                 double wire) {
  const CollectiveCost &c = find(report, name);
  EXPECT_DOUBLE_EQ(c.payloadBytes, payload) << name.str();
  EXPECT_DOUBLE_EQ(c.wireBytes, wire) << name.str();
}

std::string printed(const Config &config, int64_t dp, int64_t ep) {
  std::string text;
  llvm::raw_string_ostream os(text);
  printCostReport(config, MeshSpec{dp, ep}, h100(), estimate(config, dp, ep),
                  os);
  return text;
}

//===----------------------------------------------------------------------===//
// parseMesh, lookupGpu
//===----------------------------------------------------------------------===//

TEST(CostModelMesh, Parses) {
  std::string error;
  std::optional<MeshSpec> mesh = parseMesh("dp=8,ep=2", error);
  ASSERT_TRUE(mesh) << error;
  EXPECT_EQ(mesh->dp, 8);
  EXPECT_EQ(mesh->ep, 2);
  mesh = parseMesh(" ep = 4 , dp=1024 ", error);
  ASSERT_TRUE(mesh) << error;
  EXPECT_EQ(mesh->dp, 1024);
  EXPECT_EQ(mesh->ep, 4);
  mesh = parseMesh("dp=16", error);
  ASSERT_TRUE(mesh) << error;
  EXPECT_EQ(mesh->dp, 16);
  EXPECT_EQ(mesh->ep, 1);
}

TEST(CostModelMesh, RejectsBadParts) {
  auto fails = [](llvm::StringRef text) {
    std::string error;
    EXPECT_FALSE(parseMesh(text, error)) << text.str();
    return error;
  };
  EXPECT_EQ(fails("dp=0"), "dp must be a positive integer, got '0'");
  EXPECT_EQ(fails("dp=-2"), "dp must be a positive integer, got '-2'");
  EXPECT_EQ(fails("dp=abc"), "dp must be a positive integer, got 'abc'");
  EXPECT_EQ(fails("dp=8x"), "dp must be a positive integer, got '8x'");
  EXPECT_EQ(fails("dp=99999999999999999999"),
            "dp must be a positive integer, got '99999999999999999999'");
  EXPECT_EQ(fails("dp=2,xx=3"), "unknown mesh axis 'xx' (expected dp or ep)");
  EXPECT_EQ(fails("dp=2,dp=4"), "duplicate mesh axis 'dp'");
  EXPECT_EQ(fails("ep=2,dp=4,ep=2"), "duplicate mesh axis 'ep'");
  EXPECT_EQ(fails("dp8"), "expected axis=size, got 'dp8'");
  EXPECT_EQ(fails("dp=8,"), "expected axis=size, got ''");
  EXPECT_EQ(fails("=8"), "expected axis=size, got '=8'");
  EXPECT_EQ(fails(""), "empty mesh (expected e.g. dp=8,ep=2)");
}

TEST(CostModelGpu, Table) {
  std::string error;
  std::optional<GpuSpec> h100 = lookupGpu("H100", error);
  ASSERT_TRUE(h100) << error;
  EXPECT_EQ(h100->name, "h100");
  EXPECT_DOUBLE_EQ(h100->peakFlops, 989e12);
  EXPECT_DOUBLE_EQ(h100->hbmBandwidth, 3.35e12);
  EXPECT_DOUBLE_EQ(h100->memoryBytes, 80e9);
  EXPECT_DOUBLE_EQ(h100->nvlinkBandwidth, 450e9);
  EXPECT_DOUBLE_EQ(h100->networkBandwidth, 50e9);
  EXPECT_EQ(h100->gpusPerNode, 8);
  std::optional<GpuSpec> h200 = lookupGpu("h200", error);
  ASSERT_TRUE(h200) << error;
  EXPECT_DOUBLE_EQ(h200->memoryBytes, 141e9);
  EXPECT_DOUBLE_EQ(h200->hbmBandwidth, 4.8e12);
  EXPECT_DOUBLE_EQ(h200->peakFlops, h100->peakFlops);
  EXPECT_FALSE(lookupGpu("a100", error));
  EXPECT_EQ(error, "unknown GPU 'a100' (expected h100 or h200)");
}

//===----------------------------------------------------------------------===//
// Mesh against model
//===----------------------------------------------------------------------===//

TEST(CostModelErrors, MeshMustFitTheModel) {
  Config config = loadConfig("configs/fusionllm-7b.yaml");
  // 64 routed experts.
  EXPECT_EQ(estimateError(config, 6, 3),
            "ep (3) does not divide n_routed_experts (64)");
  EXPECT_EQ(estimateError(config, 8, 3), "ep (3) does not divide dp (8)");
  EXPECT_EQ(estimateError(config, 8, 16), "ep (16) does not divide dp (8)");
  EXPECT_EQ(estimateError(config, 0, 1),
            "mesh axes must be positive, got dp=0, ep=1");
  Config dense = loadConfig("configs/ablations/moe-off.yaml");
  EXPECT_EQ(estimateError(dense, 8, 2),
            "ep (2) needs routed experts, but n_routed_experts is 0");
  EXPECT_TRUE(estimate(dense, 8, 1).stepSeconds > 0);
}

//===----------------------------------------------------------------------===//
// Hand-computed numbers
//===----------------------------------------------------------------------===//

// The NorMuon matrices add up to Report.h's partition (two independent
// derivations of the same §10 shapes).
TEST(CostModelNormuon, MatricesMatchTheReport) {
  for (const char *path :
       {"configs/fusionllm-7b.yaml", "configs/bench-1gpu.yaml",
        "configs/smoke.yaml", "configs/ablations/moe-off.yaml",
        "configs/ablations/mha.yaml", "configs/ablations/ssm.yaml"}) {
    Config config = loadConfig(path);
    ModelReport report = computeReport(config);
    int64_t numel = 0, rows = 0;
    for (const NormuonMatrices &units : getNormuonMatrices(config)) {
      numel += units.rows * units.cols * units.count;
      rows += units.rows * units.count;
    }
    EXPECT_EQ(numel, report.params.normuonParams) << path;
    EXPECT_EQ(rows, report.params.normuonRows) << path;
  }
  // One 7B expert W1 slice [1536, 2048]: 5 (4 * 1536^2 * 2048 + 2 * 1536^3).
  NormuonMatrices w1{1536, 2048, 1, true};
  EXPECT_DOUBLE_EQ(w1.getNewtonSchulzFlops(),
                   5 * (4.0 * 1536 * 1536 * 2048 + 2.0 * 1536 * 1536 * 1536));
}

// fusionllm-7b, FULL_SHARD, bf16 params, fp32 grads, B=2, T=4096, n_acc=16,
// use_checkpoint. Parameters (MODEL.md §18.1): 17,265,271,232 incl. MTP;
// routed experts 25 layers x 64 x 9,437,184 = 15,099,494,400; the rest
// 2,165,776,832, of which 25 x 131,072 = 3,276,800 router weights (fp32).
//   one all_gather pass: 2 x 2,162,500,032 + 4 x 3,276,800 = 4,338,107,264 B
//   per step: 2 passes x 16 micro-batches = 32 x that = 138,819,432,448 B
//   reduce_scatter: 16 x 4 x 2,165,776,832 = 138,609,717,248 B
//   all_to_all per call: 8192 tokens x top-6 x 2048 x 2 B = 201,326,592 B;
//   calls: 6 (dispatch + combine in fwd, recompute, bwd) x 25 x 16 = 2,400.
TEST(CostModel7b, HandComputedBytesAtDp8Ep8) {
  Config config = loadConfig("configs/fusionllm-7b.yaml");
  CostReport r = estimate(config, 8, 8);
  EXPECT_EQ(r.tokensPerMicroBatch, 8192);
  EXPECT_EQ(r.tokensPerRank, 131072);
  EXPECT_EQ(r.tokensPerStep, 1048576); // §18.1: 1,048,576 tokens/step
  expectBytes(r, "all_gather params", 138819432448.0, 138819432448.0 * 7 / 8);
  EXPECT_EQ(find(r, "all_gather params").calls, 32 * (1 + 30 + 3));
  expectBytes(r, "reduce_scatter grads", 138609717248.0,
              138609717248.0 * 7 / 8);
  // edp = 8 / 8 = 1: every rank holds its 8 experts whole.
  expectBytes(r, "all_gather expert params", 0, 0);
  expectBytes(r, "reduce_scatter expert grads", 0, 0);
  expectBytes(r, "NorMuon owner gather/scatter", 0, 0);
  expectBytes(r, "all_to_all dispatch+combine", 2400 * 201326592.0,
              2400 * 201326592.0 * 7 / 8);
  // One node: NVLink 450 GB/s x the efficiency of one call's bytes:
  // 138,819,432,448 / 1,088 calls = 127,591,390 B per call, 0.9 x 127.6 M /
  // (127.6 M + 20 MiB) = 0.7730, 347.8 GB/s; plus 25 us per call.
  const CollectiveCost &gather = find(r, "all_gather params");
  EXPECT_FALSE(gather.crossesNodes);
  EXPECT_NEAR(gather.bandwidth / 1e9, 347.8, 0.1);
  EXPECT_DOUBLE_EQ(gather.seconds, gather.wireBytes / gather.bandwidth + 1088 * 25e-6);

  // Memory: fp32 master 4 x 17,265,271,232 / 8 = 8,632,635,616 B.
  EXPECT_DOUBLE_EQ(r.memory.masterWeights, 8632635616.0);
  EXPECT_DOUBLE_EQ(r.memory.gradients, 8632635616.0);
  // FLOPs: 131,072 tokens x the report's executed FLOPs per token (40.09 G).
  EXPECT_NEAR(r.trainingFlops / 1e15, 131072 * 40.09e9 / 1e15, 0.01);
  EXPECT_DOUBLE_EQ(r.computeSeconds, r.trainingFlops / (989e12 * 0.55));
}

// Link efficiency by bytes per call, fitted to the 4 x H200 measurement
// (bench/results/2026-11-28-collectives-h200x4.md): half of the asymptotic 0.9
// at 20 MiB; 64 MiB 0.686 (measured 0.70-0.79), 256 MiB 0.835 (0.78-0.85),
// 1 GiB 0.883 (0.87-0.96).
TEST(CostModelLinks, EfficiencyRisesWithTheMessageSize) {
  EXPECT_DOUBLE_EQ(linkEfficiency(0), 0);
  EXPECT_DOUBLE_EQ(linkEfficiency(20.0 * 1048576), 0.45);
  EXPECT_NEAR(linkEfficiency(64.0 * 1048576), 0.686, 1e-3);
  EXPECT_NEAR(linkEfficiency(256.0 * 1048576), 0.835, 1e-3);
  EXPECT_NEAR(linkEfficiency(1024.0 * 1048576), 0.883, 1e-3);
}

// At dp=64 the expert data-parallel group is 8 ranks 8 apart: one per node.
//   expert all_gather pass: 2 x 15,099,494,400 / 8 = 3,774,873,600 B, x 32.
TEST(CostModel7b, ExpertGroupsAtDp64Ep8) {
  Config config = loadConfig("configs/fusionllm-7b.yaml");
  CostReport r = estimate(config, 64, 8);
  EXPECT_EQ(r.expertDataParallel, 8);
  expectBytes(r, "all_gather expert params", 32 * 3774873600.0,
              32 * 3774873600.0 * 7 / 8);
  expectBytes(r, "all_gather params", 138819432448.0, 138819432448.0 * 63 / 64);
  const CollectiveCost &experts = find(r, "all_gather expert params");
  EXPECT_TRUE(experts.crossesNodes);
  // The network's 50 GB/s x the efficiency of one call: 32 x 3,774,873,600 B over 32
  // passes x 25 MoE layers = 150,994,944 B per call, 0.9 x 0.878 = 0.790.
  EXPECT_EQ(experts.calls, 32 * 25);
  double perCall = 32 * 3774873600.0 / (32 * 25);
  EXPECT_NEAR(experts.bandwidth / 1e9, 50 * 0.9 * perCall / (perCall + 20971520), 1e-9);
  EXPECT_NEAR(experts.bandwidth / 1e9, 39.5, 0.05);
  // The ep group is 8 consecutive ranks: still one node.
  EXPECT_FALSE(find(r, "all_to_all dispatch+combine").crossesNodes);
  EXPECT_EQ(r.tokensPerStep, 64 * 131072);
}

// smoke: fp32 (4-byte params), B=8, T=64, n_acc=2, 5 MLA+MoE layers of 6
// experts [3 x 64 x 64 = 12,288 each], 683,008 parameters incl. MTP;
// routed experts 5 x 6 x 12,288 = 368,640, the rest 314,368.
TEST(CostModelSmoke, HandComputedFullShard) {
  Config config = loadConfig("configs/smoke.yaml");
  config.distributed.fsdpShardStrategy = "FULL_SHARD";
  CostReport r = estimate(config, 4, 2);
  // all_gather: 4 x 314,368 B per pass, 2 passes x 2 micro-batches,
  // 3/4 leaves each rank.
  expectBytes(r, "all_gather params", 4 * 4 * 314368.0,
              4 * 4 * 314368.0 * 3 / 4);
  // calls: 4 gathers x (root + 6 blocks + 2 MTP modules).
  EXPECT_EQ(find(r, "all_gather params").calls, 36);
  // experts over edp = 2 (ranks 0,2 and 1,3): 4 x 368,640 / 2 B per pass.
  expectBytes(r, "all_gather expert params", 4 * 4 * 184320.0,
              4 * 4 * 184320.0 / 2);
  // all_to_all: 512 tokens x top-2 x 64 x 4 B = 262,144 B per call,
  // 6 x 5 layers x 2 micro-batches = 60 calls, half to the other rank.
  expectBytes(r, "all_to_all dispatch+combine", 60 * 262144.0,
              60 * 262144.0 / 2);
  // State: everything / 4.
  EXPECT_DOUBLE_EQ(r.memory.masterWeights, 4 * 683008.0 / 4);
}

// smoke as shipped is NO_SHARD: one gradient all_reduce per step, no gathers.
TEST(CostModelSmoke, NoShardAllReduce) {
  Config config = loadConfig("configs/smoke.yaml");
  ASSERT_EQ(config.distributed.fsdpShardStrategy, "NO_SHARD");
  CostReport r = estimate(config, 2, 1);
  // 4 x 314,368 B over dp and 4 x 368,640 B (experts) over edp = dp / 1;
  // 2 (n-1)/n = 1 of each sent.
  expectBytes(r, "all_reduce grads", 4 * 314368.0, 4 * 314368.0);
  expectBytes(r, "all_reduce expert grads", 4 * 368640.0, 4 * 368640.0);
  for (const CollectiveCost &c : r.collectives)
    EXPECT_EQ(c.name.find("all_gather"), std::string::npos);
  // Replicated state.
  EXPECT_DOUBLE_EQ(r.memory.masterWeights, 4 * 683008.0);
}

//===----------------------------------------------------------------------===//
// Scaling laws
//===----------------------------------------------------------------------===//

double shardedState(const CostMemory &m) {
  return m.masterWeights + m.gradients + m.normuonState + m.adamwState;
}

TEST(CostModelScaling, StateShrinksWithDp) {
  Config config = loadConfig("configs/fusionllm-7b.yaml");
  for (int64_t dp : {8, 16, 32, 64, 512}) {
    CostReport a = estimate(config, dp, 8), b = estimate(config, 2 * dp, 8);
    EXPECT_NEAR(shardedState(b.memory) / shardedState(a.memory), 0.5, 1e-12)
        << dp;
    // In-flight buffers and activations do not shrink: the total falls by
    // less than half.
    EXPECT_LT(b.memory.total, a.memory.total);
    EXPECT_GT(b.memory.total, 0.5 * a.memory.total);
  }
  // Expert parallelism shrinks the compute copy in flight, not the state.
  CostReport ep1 = estimate(config, 8, 1), ep8 = estimate(config, 8, 8);
  EXPECT_DOUBLE_EQ(shardedState(ep1.memory), shardedState(ep8.memory));
  EXPECT_LT(ep8.memory.computeCopy, ep1.memory.computeCopy);
}

TEST(CostModelScaling, OneRankHasNoCollectiveTraffic) {
  for (const char *path : {"configs/fusionllm-7b.yaml",
                           "configs/bench-1gpu.yaml", "configs/smoke.yaml"}) {
    Config config = loadConfig(path);
    CostReport r = estimate(config, 1, 1);
    for (const CollectiveCost &c : r.collectives) {
      EXPECT_EQ(c.wireBytes, 0) << path << " " << c.name;
      EXPECT_EQ(c.seconds, 0) << path << " " << c.name;
    }
    EXPECT_EQ(r.exposedCommSeconds, 0) << path;
    EXPECT_DOUBLE_EQ(r.stepSeconds, r.computeSeconds + r.optimizerSeconds)
        << path;
  }
}

TEST(CostModelScaling, StepNeverBeatsCompute) {
  Config config = loadConfig("configs/fusionllm-7b.yaml");
  for (auto [dp, ep] : {std::pair<int64_t, int64_t>{1, 1},
                        {8, 1},
                        {8, 8},
                        {16, 16},
                        {64, 8},
                        {64, 64},
                        {1024, 8}}) {
    CostReport r = estimate(config, dp, ep);
    EXPECT_GE(r.stepSeconds, r.computeSeconds) << dp << "," << ep;
    EXPECT_GE(r.commSeconds, r.exposedCommSeconds) << dp << "," << ep;
    EXPECT_GT(r.mfu, 0);
    EXPECT_LT(r.mfu, kComputeEfficiency) << dp << "," << ep;
  }
  // ep=16 spans two nodes: part of the all_to_all rides the network.
  CostReport wide = estimate(config, 16, 16);
  EXPECT_TRUE(find(wide, "all_to_all dispatch+combine").crossesNodes);
}

TEST(CostModelScaling, BenchOneGpu) {
  // §18.2: one H100, 262,144 tokens/step; at 55 % of peak the model's
  // 2.06 GFLOP/token give about 264 k tokens/s before the optimizer.
  Config config = loadConfig("configs/bench-1gpu.yaml");
  CostReport r = estimate(config, 1, 1);
  EXPECT_EQ(r.tokensPerStep, 262144);
  EXPECT_TRUE(r.memory.fits);
  EXPECT_NEAR(r.tokensPerSecond / 1e3, 989e12 * 0.55 / 2.06e9 / 1e3, 15);
}

//===----------------------------------------------------------------------===//
// The 7B at 8, 64 and 1024 GPUs
//===----------------------------------------------------------------------===//

TEST(CostModel7b, EightTo1024Gpus) {
  Config config = loadConfig("configs/fusionllm-7b.yaml");
  for (int64_t dp : {8, 64, 1024}) {
    SCOPED_TRACE("dp=" + std::to_string(dp) + ",ep=8");
    CostReport r = estimate(config, dp, 8);
    EXPECT_TRUE(std::isfinite(r.stepSeconds));
    EXPECT_TRUE(std::isfinite(r.tokensPerSecond));
    EXPECT_TRUE(std::isfinite(r.mfu));
    EXPECT_TRUE(std::isfinite(r.memory.total));
    EXPECT_TRUE(r.memory.fits);
    std::string text = printed(config, dp, 8);
    EXPECT_TRUE(hasSubstr(text, "mesh dp=" + std::to_string(dp) + ",ep=8"));
    EXPECT_TRUE(hasSubstr(text, "step time"));
    EXPECT_TRUE(hasSubstr(text, "MFU"));
    EXPECT_TRUE(hasSubstr(text, "Assumptions:"));
    // For the README: the full report of each mesh.
    llvm::outs() << text << "\n";
    llvm::outs().flush();
  }
}

} // namespace
