//===- CostModel.h - Distributed roofline step-time estimate ----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// Estimates, from a validated Config, a mesh and a GPU, what one optimizer
// step costs each rank: memory (sharded fp32 state, the compute copy in
// flight, activations of one micro-batch), FLOPs (the §18 per-token counts of
// Report.h times the rank's tokens, plus NorMuon's Newton-Schulz on the
// matrices the rank owns), the bytes of every collective class (§12, §16,
// ARCHITECTURE.md §7) and a roofline step time with overlap.
//
// Mesh convention. The ranks are the dp axis: W = dp ranks in all, each with
// its own data (W_dp of MODEL.md = dp; the mesh replaces n_gpus). ep divides
// dp and n_routed_experts; expert parallelism lives inside data parallelism:
// ep consecutive ranks form an ep group that holds one copy of the routed
// experts, n_routed_experts/ep per rank, and the dp/ep ranks that hold the
// same experts (stride ep) form an "edp" group over which FSDP shards them.
// So routed-expert state is 1/ep x 1/(dp/ep) = 1/dp per rank, like every
// other tensor; what ep saves is the gathered compute copy and its traffic
// (each rank gathers only its own experts, over edp instead of dp), paid for
// with the dispatch/combine all_to_all over the ep group. Ranks r, r+1, ...
// share a node of GpuSpec::gpusPerNode GPUs.
//
// Everything is plain arithmetic on the config; no MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_FRONTEND_SPEC_COSTMODEL_H
#define FUSION_FRONTEND_SPEC_COSTMODEL_H

#include "frontend/Spec/ConfigSpec.h"

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace llvm {
class raw_ostream;
} // namespace llvm

namespace fusion::spec {

/// A `dp=D,ep=E` mesh (ARCHITECTURE.md §7): D ranks; experts sharded over
/// groups of E of them.
struct MeshSpec {
  int64_t dp = 1, ep = 1;
};

/// Parses "dp=8,ep=2" (axes in any order, each at most once; a missing axis
/// is 1; spaces around parts allowed). On failure returns std::nullopt and
/// sets \p error to a message naming the bad part ("dp must be a positive
/// integer, got '0'", "unknown mesh axis 'xx' (expected dp or ep)", ...).
std::optional<MeshSpec> parseMesh(llvm::StringRef text, std::string &error);

/// Peak numbers of one GPU and its links (see the table in CostModel.cpp).
struct GpuSpec {
  std::string name;
  /// Dense bf16 tensor-core peak, FLOP/s (no sparsity).
  double peakFlops = 0;
  /// HBM bandwidth, bytes/s.
  double hbmBandwidth = 0;
  /// Memory capacity, bytes (spec-sheet GB = 1e9 bytes).
  double memoryBytes = 0;
  /// NVLink bandwidth per GPU and direction inside a node, bytes/s.
  double nvlinkBandwidth = 0;
  /// Network bandwidth per GPU and direction across nodes, bytes/s.
  double networkBandwidth = 0;
  /// GPUs per node (NVLink domain).
  int64_t gpusPerNode = 8;
};

/// The GPUs the cost model knows ("h100", "h200"; case-insensitive). On an
/// unknown name returns std::nullopt and sets \p error.
std::optional<GpuSpec> lookupGpu(llvm::StringRef name, std::string &error);

/// The names lookupGpu accepts, in table order.
std::vector<std::string> getKnownGpuNames();

/// Fraction of peak FLOP/s reached by the training step's kernels (GEMM
/// dominated: bf16 GEMMs at large shapes reach 60-75 % of the H100 peak;
/// attention, the GDN scan, norms and the grouped expert GEMMs less).
constexpr double kComputeEfficiency = 0.55;
/// Fraction of peak link bandwidth a large NCCL collective reaches (bus
/// bandwidth over peak, as nccl-tests report it), approached as the message
/// grows: a call of B bytes (its full buffer) reaches
/// kLinkEfficiency * B / (B + kLinkHalfBandwidthBytes) of peak and costs
/// kCollectiveLatencySeconds besides. Fitted to fusion-comm-bench on 4 x H200
/// over NVLink (bench/results/2026-11-28-collectives-h200x4.md): 87-96 % of
/// 360 GB/s at 1 GiB, 78-85 % at 256 MiB, 70-79 % at 64 MiB, 45-63 % at
/// 16 MiB, 25-30 us for a 1 MiB call.
constexpr double kLinkEfficiency = 0.9;
constexpr double kLinkHalfBandwidthBytes = 20.0 * 1024 * 1024;
constexpr double kCollectiveLatencySeconds = 25e-6;

/// The achieved fraction of peak link bandwidth for one call of `bytes`.
inline double linkEfficiency(double bytes) {
  return bytes > 0 ? kLinkEfficiency * bytes / (bytes + kLinkHalfBandwidthBytes) : 0;
}
/// Fraction of peak HBM bandwidth a streaming elementwise kernel reaches (the
/// optimizer update).
constexpr double kHbmEfficiency = 0.8;
/// HBM bytes the optimizer update reads and writes per owned parameter: fp32
/// master, gradient and two state words read, master and state written, the
/// bf16 compute copy written (AdamW 30, NorMuon about the same).
constexpr double kOptimizerBytesPerParam = 32;

/// `count` NorMuon units of shape [rows, cols] (§12: one unit per matrix,
/// one per slice of a stacked expert tensor).
struct NormuonMatrices {
  int64_t rows = 0, cols = 0, count = 0;
  /// True for routed-expert slices (sharded over ep).
  bool routedExpert = false;

  /// Newton-Schulz FLOPs of one unit: 5 (4 p^2 q + 2 p^3) with p = min,
  /// q = max of rows and cols (§12's load measure).
  double getNewtonSchulzFlops() const;
};

/// Every NorMuon matrix of \p config (§10 shapes, [out, in]; MTP included),
/// grouped by shape and role. The elements add up to
/// ParameterCounts::normuonParams, the rows to normuonRows.
std::vector<NormuonMatrices> getNormuonMatrices(const Config &config);

/// Per-rank memory in bytes at the peak of one optimizer step.
struct CostMemory {
  /// Sharded (FULL_SHARD, SHARD_GRAD_OP) or replicated (NO_SHARD) fp32
  /// state: master weights, gradient accumulators, NorMuon M and v, AdamW m
  /// and v. Router-bias and expert-count buffers are replicated.
  double masterWeights = 0, gradients = 0, normuonState = 0, adamwState = 0,
         moeBuffers = 0;
  /// The compute copy: FULL_SHARD, two FSDP units (the one in use and the
  /// prefetched one); otherwise the whole local copy.
  double computeCopy = 0;
  /// Unsharded gradient of one FSDP unit before its reduce_scatter (none
  /// under NO_SHARD, whose accumulators are unsharded already).
  double gradientBuffer = 0;
  /// Report.h's activation estimate for one micro-batch.
  double activations = 0;
  double total = 0;
  /// GpuSpec::memoryBytes, and whether total fits in it.
  double capacity = 0;
  bool fits = false;
};

/// One class of collective, per rank and optimizer step.
struct CollectiveCost {
  /// "all_gather params", "reduce_scatter grads", ...
  std::string name;
  /// The mesh group: "dp", "edp" (dp/ep ranks holding the same experts) or
  /// "ep".
  std::string group;
  int64_t groupSize = 1;
  /// True if the group spans more than one node (network instead of NVLink).
  bool crossesNodes = false;
  /// Calls per step.
  int64_t calls = 0;
  /// Bytes of the full buffer per step: gathered / reduced tensors, the
  /// all_to_all send buffers.
  double payloadBytes = 0;
  /// Bytes each rank sends per step: payload x (n-1)/n for ring all_gather
  /// and reduce_scatter, x 2(n-1)/n for all_reduce, the part addressed to
  /// other ranks for all_to_all.
  double wireBytes = 0;
  /// Achieved bandwidth used for the time (peak x linkEfficiency(bytes per
  /// call)), bytes/s.
  double bandwidth = 0;
  double seconds = 0;
  /// The part of `seconds` not hidden behind compute.
  double exposedSeconds = 0;
  /// What it overlaps with, for the printed table.
  std::string overlap;
};

/// The whole estimate, per rank and optimizer step unless named otherwise.
struct CostReport {
  MeshSpec mesh;
  /// dp / ep: ranks holding the same experts.
  int64_t expertDataParallel = 1;
  std::string shardStrategy;
  /// Steady-state micro-batch (B * T), micro-batches per step, the rank's
  /// tokens per step and the global tokens per step (x dp).
  int64_t tokensPerMicroBatch = 0, microBatches = 0, tokensPerRank = 0,
          tokensPerStep = 0;
  CostMemory memory;

  /// Report.h: FLOPs per token executed (with recompute if use_checkpoint)
  /// and model FLOPs per token (3 x forward, what MFU counts).
  double executedFlopsPerToken = 0, modelFlopsPerToken = 0;
  /// executedFlopsPerToken x tokensPerRank.
  double trainingFlops = 0;
  /// Newton-Schulz FLOPs of the NorMuon units this rank owns: all units /
  /// dp, at least the largest unit.
  double normuonFlops = 0;
  /// HBM bytes of the optimizer update of the parameters this rank owns.
  double optimizerBytes = 0;
  /// trainingFlops at kComputeEfficiency of peak.
  double computeSeconds = 0;
  /// Shared-expert forward/backward time: what hides the all_to_all.
  double sharedExpertSeconds = 0;
  /// Newton-Schulz compute plus the memory-bound update; after the last
  /// reduce_scatter, so never overlapped.
  double optimizerSeconds = 0;

  std::vector<CollectiveCost> collectives;
  /// Sum over the FSDP classes (all_gather, reduce_scatter or all_reduce of
  /// parameters and gradients) and the exposed part; the same for the
  /// all_to_all and for everything.
  double fsdpSeconds = 0, fsdpExposedSeconds = 0;
  double allToAllSeconds = 0, allToAllExposedSeconds = 0;
  double commSeconds = 0, exposedCommSeconds = 0;

  /// computeSeconds + exposedCommSeconds + optimizerSeconds.
  double stepSeconds = 0;
  /// tokensPerStep / stepSeconds.
  double tokensPerSecond = 0;
  /// modelFlopsPerToken x tokensPerSecond / (dp x peak).
  double mfu = 0;
};

/// Estimates one optimizer step of \p config (validated) on \p mesh of \p gpu.
/// Fails, with \p error set, if the mesh does not fit the model: an axis below
/// 1, ep not dividing dp or n_routed_experts, ep > 1 without routed experts.
std::optional<CostReport> estimateCost(const Config &config,
                                       const MeshSpec &mesh, const GpuSpec &gpu,
                                       std::string &error);

/// Prints \p report as tables: per-rank memory (GiB), FLOPs, each collective
/// (bytes per step and rank, bandwidth, time, exposed part), step time,
/// tokens/s, MFU, and a line of assumptions.
void printCostReport(const Config &config, const MeshSpec &mesh,
                     const GpuSpec &gpu, const CostReport &report,
                     llvm::raw_ostream &os);

} // namespace fusion::spec

#endif // FUSION_FRONTEND_SPEC_COSTMODEL_H
