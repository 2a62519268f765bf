//===- Report.h - Parameter, FLOP and memory accounting ---------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// Computes from a validated Config the numbers MODEL.md §18 works out for its
// concrete configurations: stored and active parameters per block kind and in
// total (with and without the MTP modules), training FLOPs per token (2 x
// matmul weights touched + attention + GDN chunk core, x3 for forward and
// backward, x4 with full recompute), optimizer-state and static memory (as
// §18.2/§19 count them) and an activation-memory estimate per micro-batch.
// Parameter counts are exact integers; FLOPs and bytes are doubles.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_FRONTEND_SPEC_REPORT_H
#define FUSION_FRONTEND_SPEC_REPORT_H

#include "frontend/Spec/ConfigSpec.h"

#include <cstdint>

namespace llvm {
class raw_ostream;
} // namespace llvm

namespace fusion::spec {

/// Parameter counts (MODEL.md §18: "total" = stored parameters without the
/// router-bias buffers; "active" = total minus the E-K unselected routed
/// experts of every MoE layer).
struct ParameterCounts {
  //===--- one instance of each component
  //----------------------------------===//
  /// Tied embedding/head W_E: V * D.
  int64_t embedding = 0;
  /// One MLA mixer: projections, q/kv norms and qk-norm gains.
  int64_t mlaMixer = 0;
  /// The matmul weights of one MLA mixer (no norm gains).
  int64_t mlaMatmul = 0;
  /// One GDN mixer: projections, convs, A_log, dt_bias, o_norm.
  int64_t gdnMixer = 0;
  /// The matmul weights of one GDN mixer (no convs, A_log, dt_bias, norm).
  int64_t gdnMatmul = 0;
  /// One SwiGLU expert (routed or shared): 3 * D * I.
  int64_t expert = 0;
  /// The router W_r of one MoE layer: E * D.
  int64_t moeRouter = 0;
  /// All S shared experts of one MoE layer.
  int64_t moeShared = 0;
  /// All E routed experts of one MoE layer.
  int64_t moeRouted = 0;
  /// One MoE FFN as stored (router + shared + all routed) and as touched per
  /// token (router + shared + K routed).
  int64_t moeStored = 0, moeActive = 0;
  /// One dense SwiGLU FFN of width inter_dim: 3 * D * inter_dim.
  int64_t denseFfn = 0;
  /// The two RMSNorm gains of one block (attn_norm, ffn_norm): 2 * D.
  int64_t blockNorms = 0;
  /// The final RMSNorm gain: D.
  int64_t finalNorm = 0;
  /// One MTP module: norms h/e/out, projection M_k, one MLA + dense block.
  int64_t mtpModule = 0;
  /// The matmul weights of one MTP module without the shared head.
  int64_t mtpMatmul = 0;

  //===--- backbone layer counts
  //-------------------------------------------===//
  int64_t numMlaMoeLayers = 0, numMlaDenseLayers = 0, numGdnLayers = 0;

  //===--- blocks (mixer + FFN + 2 norms)
  //----------------------------------===//
  int64_t mlaMoeBlockStored = 0, mlaMoeBlockActive = 0;
  int64_t mlaDenseBlock = 0, gdnBlock = 0;

  //===--- totals
  //----------------------------------------------------------===//
  int64_t total = 0, totalWithMtp = 0;
  int64_t active = 0, activeWithMtp = 0;
  /// All RMSNorm gains (backbone, final and MTP).
  int64_t normGains = 0;
  /// Parameters updated by NorMuon (2-D matrices in blocks and MTP, router)
  /// and by Cautious AdamW (embedding, norm gains, A_log, dt_bias, convs);
  /// MTP included.
  int64_t normuonParams = 0, adamwParams = 0;
  /// Rows (output neurons) of all NorMuon matrices: the size of its v.
  int64_t normuonRows = 0;
};

/// Training FLOPs per token (MODEL.md §18.1: forward = 2 * N_mm + attention
/// + MTP attention + GDN chunk core; training = 3 x forward).
struct FlopCounts {
  /// Matmul weights touched per token: backbone (active), tied head (V * D),
  /// MTP modules (projection, MLA, FFN and a head each). N_mm is their sum.
  int64_t matmulBackbone = 0, matmulHead = 0, matmulMtp = 0, matmulTotal = 0;
  /// 2 * H * (d_qk + d_v) * L_eff summed over backbone MLA layers; L_eff =
  /// (W(W+1)/2 + (T-W)W)/T for local layers, (T+1)/2 for global ones.
  double attention = 0;
  /// The same for the (global) MLA block of each MTP module.
  double mtpAttention = 0;
  /// H_g * (2C(3d_k + 2d_h) + 6 d_k d_h + (2/3) C^2) per GDN layer.
  double gdnCore = 0;
  /// Forward FLOPs per token, everything included.
  double forward = 0;
  /// 3 x forward.
  double training = 0;
  /// 3 x forward of the main model only (no MTP).
  double trainingMainOnly = 0;
  /// 6 * N_mm (the common "6N" estimate).
  double sixN = 0;
  /// 4 x forward: executed with full activation recompute.
  double trainingWithRecompute = 0;
  /// FLOPs executed per token under the config's use_checkpoint setting.
  double executedPerToken = 0;
};

/// Memory in bytes (1 GB = 1e9 bytes in the printed report).
struct MemoryEstimate {
  /// fp32 master weights, fp32 gradient accumulators, NorMuon state (M and
  /// v) and AdamW state (m and v): §19's "fp32 master + grads + NorMuon
  /// momentum (+ AdamW m,v on the embedding)".
  double masterWeights = 0, gradients = 0, normuonState = 0, adamwState = 0;
  /// Router-bias buffers (fp32) and expert-count accumulators (int64).
  double moeBuffers = 0;
  /// Sum of the above, all ranks together.
  double optimizerState = 0;
  /// The compute copy of the weights (bf16; router fp32; fp32 when
  /// fsdp_param_dtype is fp32).
  double computeCopy = 0;
  /// optimizerState + computeCopy, all ranks together (§18.2's "static
  /// memory" for one GPU).
  double staticTotal = 0;
  /// Static memory per rank under fsdp_shard_strategy: FULL_SHARD shards
  /// everything 1/W_dp, SHARD_GRAD_OP keeps the full compute copy,
  /// NO_SHARD replicates everything.
  double staticPerRank = 0;
  /// Estimate of the forward tensors kept for backward, per token and per
  /// micro-batch (B * T tokens), without and with full recompute
  /// (use_checkpoint): with recompute only block inputs and routing indices
  /// stay, plus one block's tensors while it is recomputed.
  double activationPerTokenNoRecompute = 0;
  double activationPerTokenRecompute = 0;
  double activationPerMicroBatch = 0;
  /// staticPerRank + activationPerMicroBatch.
  double peakPerRank = 0;
};

/// Everything printReport shows.
struct ModelReport {
  ParameterCounts params;
  FlopCounts flops;
  MemoryEstimate memory;
  std::vector<LayerKind> layers;
  int64_t tokensPerStep = 0;
  LrPhases lrPhases;
  /// B * T of one micro-batch.
  int64_t tokensPerMicroBatch = 0;
};

/// Computes the report of \p config, which must have passed validation.
ModelReport computeReport(const Config &config);

/// Prints the report of \p config as an aligned table.
/// "1,234,567": an integer with thousands separators (the reports' number format).
std::string withCommas(int64_t value);

void printReport(const Config &config, llvm::raw_ostream &os);

/// Prints an already computed report.
void printReport(const Config &config, const ModelReport &report,
                 llvm::raw_ostream &os);

} // namespace fusion::spec

#endif // FUSION_FRONTEND_SPEC_REPORT_H
