//===- CostModel.cpp - Distributed roofline step-time estimate ------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// Implements the estimate of CostModel.h on top of Report.h's counts:
//   1. per-rank memory: the §18 state totals split into routed-expert and
//      other tensors and divided by the ranks that shard them, plus the
//      compute copy in flight and Report.h's activations of one micro-batch;
//   2. FLOPs: Report.h's executed FLOPs per token x the rank's tokens, plus
//      Newton-Schulz (§12) on the NorMuon units the rank owns;
//   3. collectives per class and group, with ring factors and NVLink or
//      network bandwidth depending on whether the group leaves the node;
//   4. a roofline step: compute + exposed communication + optimizer.
//
//===----------------------------------------------------------------------===//

#include "frontend/Spec/CostModel.h"

#include "frontend/Spec/Report.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <utility>

using namespace fusion::spec;
using llvm::StringRef;

//===----------------------------------------------------------------------===//
// parseMesh, lookupGpu
//===----------------------------------------------------------------------===//

std::optional<MeshSpec> fusion::spec::parseMesh(StringRef text,
                                                std::string &error) {
  if (text.trim().empty()) {
    error = "empty mesh (expected e.g. dp=8,ep=2)";
    return std::nullopt;
  }
  MeshSpec mesh;
  bool seenDp = false, seenEp = false;
  llvm::SmallVector<StringRef, 4> parts;
  text.split(parts, ',');
  for (StringRef part : parts) {
    part = part.trim();
    auto [axis, value] = part.split('=');
    axis = axis.trim();
    value = value.trim();
    if (!part.contains('=') || axis.empty()) {
      error = "expected axis=size, got '" + part.str() + "'";
      return std::nullopt;
    }
    bool *seen = nullptr;
    int64_t *size = nullptr;
    if (axis == "dp") {
      seen = &seenDp;
      size = &mesh.dp;
    } else if (axis == "ep") {
      seen = &seenEp;
      size = &mesh.ep;
    } else {
      error = "unknown mesh axis '" + axis.str() + "' (expected dp or ep)";
      return std::nullopt;
    }
    if (*seen) {
      error = "duplicate mesh axis '" + axis.str() + "'";
      return std::nullopt;
    }
    *seen = true;
    // getAsInteger fails on trailing text and on int64 overflow.
    int64_t parsed = 0;
    if (value.getAsInteger(10, parsed) || parsed < 1) {
      error =
          axis.str() + " must be a positive integer, got '" + value.str() + "'";
      return std::nullopt;
    }
    *size = parsed;
  }
  return mesh;
}

namespace {
/// Peak numbers from NVIDIA's public spec sheets (SXM parts): H100 SXM5
/// datasheet (989 TFLOP/s dense bf16 - the 1,979 quoted is with 2:4 sparsity
/// - 80 GB HBM3 at 3.35 TB/s, NVLink 4 at 900 GB/s bidirectional = 450 GB/s
/// per direction); H200 SXM datasheet (same compute and NVLink, 141 GB HBM3e
/// at 4.8 TB/s). Network: one ConnectX-7 NDR 400 Gb/s NIC per GPU = 50 GB/s
/// per direction (DGX/HGX H100 and H200 nodes of 8 GPUs). These are peaks;
/// kComputeEfficiency, kLinkEfficiency and kHbmEfficiency turn them into
/// achievable rates.
struct GpuRow {
  const char *name;
  double peakFlops, hbmBandwidth, memoryBytes, nvlinkBandwidth,
      networkBandwidth;
  int64_t gpusPerNode;
};
constexpr GpuRow kGpus[] = {
    {"h100", 989e12, 3.35e12, 80e9, 450e9, 50e9, 8},
    {"h200", 989e12, 4.8e12, 141e9, 450e9, 50e9, 8},
};
} // namespace

std::vector<std::string> fusion::spec::getKnownGpuNames() {
  std::vector<std::string> names;
  for (const GpuRow &row : kGpus)
    names.push_back(row.name);
  return names;
}

std::optional<GpuSpec> fusion::spec::lookupGpu(StringRef name,
                                               std::string &error) {
  for (const GpuRow &row : kGpus) {
    if (!name.trim().equals_insensitive(row.name))
      continue;
    GpuSpec gpu;
    gpu.name = row.name;
    gpu.peakFlops = row.peakFlops;
    gpu.hbmBandwidth = row.hbmBandwidth;
    gpu.memoryBytes = row.memoryBytes;
    gpu.nvlinkBandwidth = row.nvlinkBandwidth;
    gpu.networkBandwidth = row.networkBandwidth;
    gpu.gpusPerNode = row.gpusPerNode;
    return gpu;
  }
  error = "unknown GPU '" + name.str() + "' (expected " +
          llvm::join(getKnownGpuNames(), " or ") + ")";
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// NorMuon matrices
//===----------------------------------------------------------------------===//

double NormuonMatrices::getNewtonSchulzFlops() const {
  double p = double(std::min(rows, cols)), q = double(std::max(rows, cols));
  return 5 * (4 * p * p * q + 2 * p * p * p);
}

std::vector<NormuonMatrices>
fusion::spec::getNormuonMatrices(const Config &config) {
  const ModelConfig &m = config.model;
  int64_t numMlaMoe = 0, numMlaDense = 0, numGdn = 0;
  for (const LayerKind &kind : m.getLayerKinds())
    ++(kind.isGdn() ? numGdn : kind.isMoE() ? numMlaMoe : numMlaDense);
  std::vector<NormuonMatrices> units;
  auto add = [&](int64_t rows, int64_t cols, int64_t count,
                 bool expert = false) {
    if (rows > 0 && cols > 0 && count > 0)
      units.push_back({rows, cols, count, expert});
  };
  int64_t D = m.dim, H = m.nHeads, G = m.nKvGroups, dqk = m.qkHeadDim();
  int64_t numMla = numMlaMoe + numMlaDense + m.mtpDepth;
  if (m.qLoraRank > 0) {
    add(m.qLoraRank, D, numMla);       // W_DQ
    add(H * dqk, m.qLoraRank, numMla); // W_UQ
  } else {
    add(H * dqk, D, numMla); // W_Q
  }
  add(m.kvLoraRank + m.qkRopeHeadDim, D, numMla);                // W_DKV
  add(G * (m.qkNopeHeadDim + m.vHeadDim), m.kvLoraRank, numMla); // W_UKV
  add(D, H * m.vHeadDim, numMla);                                // W_O

  int64_t Hg = m.gdnValueHeads(), Hgk = m.gdnKeyHeads();
  add(Hgk * m.gdnDState, D, 2 * numGdn); // w_q, w_k
  add(Hg * m.gdnHeaddim, D, 2 * numGdn); // w_v, w_z
  add(Hg, D, 2 * numGdn);                // w_a, w_b
  add(D, Hg * m.gdnHeaddim, numGdn);     // w_out

  auto swiglu = [&](int64_t width, int64_t count, bool expert = false) {
    add(width, D, 2 * count, expert); // W1, W3
    add(D, width, count, expert);     // W2
  };
  add(m.nRoutedExperts, D, numMlaMoe); // router W_r
  swiglu(m.moeInterDim, numMlaMoe * m.nSharedExperts);
  swiglu(m.moeInterDim, numMlaMoe * m.nRoutedExperts, /*expert=*/true);
  swiglu(m.interDim, numMlaDense + numGdn);
  add(D, 2 * D, m.mtpDepth); // M_k
  swiglu(m.mtpFfnDim(), m.mtpDepth);
  return units;
}

//===----------------------------------------------------------------------===//
// estimateCost
//===----------------------------------------------------------------------===//

namespace {

/// A mesh group: `size` ranks `stride` apart.
struct Group {
  StringRef name;
  int64_t size, stride;

  bool crossesNodes(const GpuSpec &gpu) const {
    return (size - 1) * stride + 1 > gpu.gpusPerNode;
  }
  /// Peak ring bandwidth: the slowest hop's link.
  double peakBandwidth(const GpuSpec &gpu) const {
    return crossesNodes(gpu) ? gpu.networkBandwidth : gpu.nvlinkBandwidth;
  }
  /// (n-1)/n: the share of a ring all_gather / reduce_scatter payload each
  /// rank sends.
  double ringFactor() const { return double(size - 1) / double(size); }
};

} // namespace

std::optional<CostReport> fusion::spec::estimateCost(const Config &config,
                                                     const MeshSpec &mesh,
                                                     const GpuSpec &gpu,
                                                     std::string &error) {
  const ModelConfig &m = config.model;
  const TrainingConfig &t = config.training;
  //===--- the mesh against the model
  if (mesh.dp < 1 || mesh.ep < 1) {
    error = "mesh axes must be positive, got dp=" + std::to_string(mesh.dp) +
            ", ep=" + std::to_string(mesh.ep);
    return std::nullopt;
  }
  if (mesh.dp % mesh.ep != 0) {
    error = "ep (" + std::to_string(mesh.ep) + ") does not divide dp (" +
            std::to_string(mesh.dp) + ")";
    return std::nullopt;
  }
  if (mesh.ep > 1 && !m.hasMoE()) {
    error = "ep (" + std::to_string(mesh.ep) +
            ") needs routed experts, but n_routed_experts is 0";
    return std::nullopt;
  }
  if (m.hasMoE() && m.nRoutedExperts % mesh.ep != 0) {
    error = "ep (" + std::to_string(mesh.ep) +
            ") does not divide n_routed_experts (" +
            std::to_string(m.nRoutedExperts) + ")";
    return std::nullopt;
  }
  if (gpu.peakFlops <= 0 || gpu.hbmBandwidth <= 0 || gpu.memoryBytes <= 0 ||
      gpu.nvlinkBandwidth <= 0 || gpu.networkBandwidth <= 0 ||
      gpu.gpusPerNode < 1) {
    error = "GPU '" + gpu.name + "' has a non-positive peak number";
    return std::nullopt;
  }

  ModelReport model = computeReport(config);
  const ParameterCounts &p = model.params;
  CostReport r;
  r.mesh = mesh;
  r.expertDataParallel = mesh.dp / mesh.ep;
  r.shardStrategy = config.distributed.fsdpShardStrategy;
  StringRef strategy = r.shardStrategy;
  bool fullShard = strategy != "NO_SHARD" && strategy != "SHARD_GRAD_OP";
  bool noShard = strategy == "NO_SHARD";
  r.tokensPerMicroBatch = model.tokensPerMicroBatch;
  r.microBatches = std::max<int64_t>(t.gradientAccumulationSteps, 1);
  r.tokensPerRank = r.tokensPerMicroBatch * r.microBatches;
  r.tokensPerStep = r.tokensPerRank * mesh.dp;
  double nAcc = double(r.microBatches);
  double tokens = double(r.tokensPerRank);

  //===--- parameters: routed experts vs everything else
  int64_t numMoe = p.numMlaMoeLayers;
  double dp = double(mesh.dp), ep = double(mesh.ep);
  double all = double(p.totalWithMtp);
  double expert = double(numMoe) * double(p.moeRouted);
  double dense = all - expert;
  double router = double(numMoe) * double(p.moeRouter);
  double expertRows = double(numMoe) * double(m.nRoutedExperts) *
                      double(2 * m.moeInterDim + m.dim);
  // Ranks sharing one tensor's state: FSDP shards everything over dp (experts
  // over ep x dp/ep); NO_SHARD replicates, experts still split over ep.
  double denseShards = noShard ? 1 : dp;
  double expertShards = noShard ? ep : dp;

  bool fp32Compute =
      config.distributed.fsdpParamDtype == "fp32" || t.dtype == "fp32";
  double paramBytes = fp32Compute ? 4 : 2;
  double reduceBytes = config.distributed.fsdpReduceDtype == "bf16" ? 2 : 4;
  double actBytes = fp32Compute ? 4 : 2;
  // Gathered bytes of `params` matmul/norm parameters, routers in fp32 (§5).
  auto gathered = [&](double params, double routers) {
    return paramBytes * (params - routers) + 4 * routers;
  };

  //===--- 1. memory
  CostMemory &mem = r.memory;
  mem.masterWeights = 4 * (dense / denseShards + expert / expertShards);
  mem.gradients = mem.masterWeights;
  double normuonDense =
      double(p.normuonParams + p.normuonRows) - expert - expertRows;
  mem.normuonState =
      4 * (normuonDense / denseShards + (expert + expertRows) / expertShards);
  mem.adamwState = 8 * double(p.adamwParams) / denseShards;
  mem.moeBuffers = model.memory.moeBuffers;
  // FSDP units: the root (embedding, final norm), each block, each MTP
  // module; the local compute copy of each in bytes and in parameters.
  double rootParams = double(p.embedding + p.finalNorm);
  double moeBlockParams =
      double(p.mlaMoeBlockStored) - double(p.moeRouted) * (1 - 1 / ep);
  double largestUnitParams = rootParams,
         largestUnitBytes = gathered(rootParams, 0);
  auto unit = [&](int64_t count, double params, double routers) {
    if (count <= 0)
      return;
    largestUnitParams = std::max(largestUnitParams, params);
    largestUnitBytes = std::max(largestUnitBytes, gathered(params, routers));
  };
  unit(numMoe, moeBlockParams, double(p.moeRouter));
  unit(p.numMlaDenseLayers, double(p.mlaDenseBlock), 0);
  unit(p.numGdnLayers, double(p.gdnBlock), 0);
  unit(m.mtpDepth, double(p.mtpModule), 0);
  double localCopy = gathered(dense, router) + paramBytes * expert / ep;
  if (fullShard) {
    mem.computeCopy = 2 * largestUnitBytes;
    mem.gradientBuffer = reduceBytes * largestUnitParams;
  } else {
    mem.computeCopy = localCopy;
    mem.gradientBuffer = noShard ? 0 : reduceBytes * largestUnitParams;
  }
  mem.activations = model.memory.activationPerMicroBatch;
  mem.total = mem.masterWeights + mem.gradients + mem.normuonState +
              mem.adamwState + mem.moeBuffers + mem.computeCopy +
              mem.gradientBuffer + mem.activations;
  mem.capacity = gpu.memoryBytes;
  mem.fits = mem.total <= mem.capacity;

  //===--- 2. FLOPs
  double flopRate = gpu.peakFlops * kComputeEfficiency;
  r.executedFlopsPerToken = model.flops.executedPerToken;
  r.modelFlopsPerToken = model.flops.training;
  r.trainingFlops = r.executedFlopsPerToken * tokens;
  r.computeSeconds = r.trainingFlops / flopRate;
  double passes = t.useCheckpoint ? 4 : 3; // fwd (+ recompute) + 2x bwd
  double sharedFlops =
      2.0 * double(numMoe) * double(p.moeShared) * passes * tokens;
  r.sharedExpertSeconds = sharedFlops / flopRate;

  double denseNs = 0, expertNs = 0, largestNs = 0;
  for (const NormuonMatrices &units : getNormuonMatrices(config)) {
    double each = units.getNewtonSchulzFlops();
    (units.routedExpert ? expertNs : denseNs) += each * double(units.count);
    largestNs = std::max(largestNs, each);
  }
  // Greedy whole-matrix ownership balances Newton-Schulz FLOPs (§12); no
  // rank gets less than one unit's worth while it owns any.
  r.normuonFlops = denseNs / denseShards + expertNs / expertShards;
  if (!noShard && mesh.dp > 1)
    r.normuonFlops = std::max(r.normuonFlops, largestNs);
  double ownedParams = dense / denseShards + expert / expertShards;
  r.optimizerBytes = kOptimizerBytesPerParam * ownedParams;
  r.optimizerSeconds = r.normuonFlops / flopRate +
                       r.optimizerBytes / (gpu.hbmBandwidth * kHbmEfficiency);

  //===--- 3. collectives
  Group dpGroup{"dp", mesh.dp, 1};
  Group edpGroup{"edp", r.expertDataParallel, mesh.ep};
  Group epGroup{"ep", mesh.ep, 1};
  auto collective = [&](StringRef name, const Group &group, int64_t calls,
                        double payload, double wireFactor,
                        StringRef overlap) -> CollectiveCost & {
    CollectiveCost c;
    c.name = name.str();
    c.group = group.name.str();
    c.groupSize = group.size;
    c.crossesNodes = group.crossesNodes(gpu);
    c.bandwidth = group.peakBandwidth(gpu) * kLinkEfficiency;
    if (group.size > 1 && calls > 0) {
      c.calls = calls;
      c.payloadBytes = payload;
      c.wireBytes = payload * wireFactor;
      c.bandwidth = group.peakBandwidth(gpu) * linkEfficiency(payload / double(calls));
      c.seconds = c.wireBytes / c.bandwidth + double(calls) * kCollectiveLatencySeconds;
    }
    c.overlap = overlap.str();
    r.collectives.push_back(c);
    return r.collectives.back();
  };
  int64_t numUnits = 1 + m.nLayers + m.mtpDepth;
  int64_t nAccInt = r.microBatches;
  double denseGather = gathered(dense, router);
  double expertGather = paramBytes * expert / ep;
  // The FSDP classes, and the part of them that no compute can hide: the
  // first unit's gather (each micro-batch, FULL_SHARD) and the last unit's
  // gradient reduction. The root unit is both (embedding first in forward,
  // its gradient last in backward).
  size_t firstFsdp = r.collectives.size();
  double fixedExposed = 0;
  // Seconds per byte of the root unit's collectives (one call of its size).
  double rootCallBytes = double(rootParams) * reduceBytes;
  double rootRing = dpGroup.size > 1 ? dpGroup.ringFactor() /
                                           (dpGroup.peakBandwidth(gpu) *
                                            linkEfficiency(rootCallBytes))
                                     : 0;
  if (!noShard) {
    int64_t gathers = fullShard ? 2 * nAccInt : 1;
    collective("all_gather params", dpGroup, gathers * numUnits,
               double(gathers) * denseGather, dpGroup.ringFactor(),
               fullShard ? "compute (prefetch)" : "first forward");
    collective("all_gather expert params", edpGroup, gathers * numMoe,
               double(gathers) * expertGather, edpGroup.ringFactor(),
               "compute (prefetch)");
    collective("reduce_scatter grads", dpGroup, nAccInt * numUnits,
               nAcc * reduceBytes * dense, dpGroup.ringFactor(), "backward");
    collective("reduce_scatter expert grads", edpGroup, nAccInt * numMoe,
               nAcc * reduceBytes * expert / ep, edpGroup.ringFactor(),
               "backward");
    fixedExposed =
        (fullShard ? nAcc : 1.0) * gathered(rootParams, 0) * rootRing +
        reduceBytes * rootParams * rootRing;
  } else {
    // Replicated: one all_reduce of the accumulated gradients per step,
    // bucketed under the last micro-batch's backward.
    collective("all_reduce grads", dpGroup, numUnits, reduceBytes * dense,
               2 * dpGroup.ringFactor(), "last backward");
    collective("all_reduce expert grads", edpGroup, numMoe,
               reduceBytes * expert / ep, 2 * edpGroup.ringFactor(),
               "last backward");
    fixedExposed = 2 * reduceBytes * rootParams * rootRing;
  }
  size_t endFsdp = r.collectives.size();
  // NorMuon's owner gather / update scatter: the layout is unit-aligned
  // (§12, §16), so the reduce_scatter above already delivers each owner the
  // whole summed gradient of its matrices and the next all_gather reads the
  // updated compute copy from the owners: no bytes of its own.
  collective("NorMuon owner gather/scatter", dpGroup, 0, 0, 0,
             noShard ? "none: every rank updates all"
                     : "in reduce_scatter + all_gather");

  // Expert dispatch + combine in forward, mirrored in backward, and again in
  // the recomputed forward: tokens x top_k rows of dim, (ep-1)/ep of them to
  // other ranks (balanced routing).
  {
    double perLayer = 2 * (t.useCheckpoint ? 3 : 2);
    int64_t calls = numMoe > 0 ? int64_t(perLayer) * numMoe * nAccInt : 0;
    double payload = double(calls) * double(r.tokensPerMicroBatch) *
                     double(m.nActivatedExperts) * double(m.dim) * actBytes;
    CollectiveCost &a2a =
        collective("all_to_all dispatch+combine", epGroup, calls, payload,
                   (ep - 1) / ep, "shared experts");
    if (mesh.ep > 1) {
      // Peers on the node over NVLink, the rest over the network, at once.
      double onNode = double(std::min(mesh.ep, gpu.gpusPerNode) - 1);
      double offNode = ep - 1 - onNode;
      double efficiency = linkEfficiency(calls > 0 ? payload / double(calls) : 0);
      double seconds =
          efficiency > 0
              ? std::max(payload * onNode / ep / (gpu.nvlinkBandwidth * efficiency),
                         payload * offNode / ep / (gpu.networkBandwidth * efficiency)) +
                    double(calls) * kCollectiveLatencySeconds
              : 0;
      a2a.seconds = seconds;
      a2a.bandwidth = seconds > 0 ? a2a.wireBytes / seconds : a2a.bandwidth;
    }
    r.allToAllSeconds = a2a.seconds;
    r.allToAllExposedSeconds =
        std::max(0.0, a2a.seconds - r.sharedExpertSeconds);
    a2a.exposedSeconds = r.allToAllExposedSeconds;
  }

  // Loss, grad-norm and the non-finite flag (fp32), and the expert counts of
  // the bias update (int64, §5): latency-bound, on the critical path.
  {
    double bytes = 16 + 8.0 * double(numMoe) * double(m.nRoutedExperts);
    CollectiveCost &scalars =
        collective("all_reduce loss/norm/counts", dpGroup, 2 + (numMoe > 0),
                   bytes, 2 * dpGroup.ringFactor(), "none");
    scalars.exposedSeconds = scalars.seconds;
  }

  //===--- 4. overlap and step time
  for (size_t i = firstFsdp; i < endFsdp; ++i)
    r.fsdpSeconds += r.collectives[i].seconds;
  fixedExposed = std::min(fixedExposed, r.fsdpSeconds);
  // FSDP traffic hides behind the whole step's compute (prefetched gathers,
  // reduce_scatters under earlier layers' backward); NO_SHARD's all_reduce
  // only behind the last micro-batch's backward (2/3 of its compute, 3/4
  // with recompute).
  double window = r.computeSeconds + r.allToAllExposedSeconds;
  if (noShard)
    window = r.computeSeconds / nAcc * (passes - 1) / passes;
  double overflow = std::max(0.0, r.fsdpSeconds - fixedExposed - window);
  r.fsdpExposedSeconds = fixedExposed + overflow;
  // Spread the exposed time over the FSDP rows in proportion to their time.
  for (size_t i = firstFsdp; i < endFsdp; ++i)
    if (r.fsdpSeconds > 0)
      r.collectives[i].exposedSeconds =
          r.fsdpExposedSeconds * r.collectives[i].seconds / r.fsdpSeconds;

  for (const CollectiveCost &c : r.collectives) {
    r.commSeconds += c.seconds;
    r.exposedCommSeconds += c.exposedSeconds;
  }
  r.stepSeconds = r.computeSeconds + r.exposedCommSeconds + r.optimizerSeconds;
  r.tokensPerSecond = double(r.tokensPerStep) / r.stepSeconds;
  r.mfu = r.modelFlopsPerToken * r.tokensPerSecond / (dp * gpu.peakFlops);
  return r;
}

//===----------------------------------------------------------------------===//
// printCostReport
//===----------------------------------------------------------------------===//

namespace {

std::string fixed(double value, int decimals) {
  return llvm::formatv("{0}", llvm::format("%.*f", decimals, value)).str();
}

/// "-" for zero, else fixed-point.
std::string orDash(double value, int decimals) {
  return value == 0 ? "-" : fixed(value, decimals);
}

/// FLOPs with a P/T/G prefix: {number, unit}.
std::pair<std::string, std::string> flopCount(double flops) {
  if (flops >= 1e15)
    return {fixed(flops / 1e15, 3), "PFLOP"};
  if (flops >= 1e12)
    return {fixed(flops / 1e12, 3), "TFLOP"};
  return {fixed(flops / 1e9, 3), "GFLOP"};
}

std::string gib(double bytes) { return fixed(bytes / double(1ull << 30), 2); }

/// Left label, right-aligned cells (the layout of Report.cpp's tables).
void row(llvm::raw_ostream &os, StringRef label, unsigned labelWidth,
         llvm::ArrayRef<std::string> cells, llvm::ArrayRef<unsigned> widths) {
  os << "  " << llvm::left_justify(label, labelWidth);
  for (auto [i, cell] : llvm::enumerate(cells)) {
    unsigned width = i < widths.size() ? widths[i] : 0;
    if (!cell.empty() || width)
      os << " " << llvm::right_justify(cell, width);
  }
  os << "\n";
}

/// Prints \p text wrapped at \p columns, continuation lines indented by 2.
void printWrapped(llvm::raw_ostream &os, StringRef text, size_t columns) {
  size_t column = 0;
  llvm::SmallVector<StringRef> words;
  text.split(words, ' ', -1, /*KeepEmpty=*/false);
  for (StringRef word : words) {
    if (column && column + 1 + word.size() > columns) {
      os << "\n ";
      column = 1;
    }
    if (column) {
      os << ' ';
      ++column;
    }
    os << word;
    column += word.size();
  }
  os << "\n";
}

} // namespace

void fusion::spec::printCostReport(const Config &config, const MeshSpec &mesh,
                                   const GpuSpec &gpu, const CostReport &r,
                                   llvm::raw_ostream &os) {
  const TrainingConfig &t = config.training;
  os << "Distributed cost estimate: mesh dp=" << mesh.dp << ",ep=" << mesh.ep
     << " (" << mesh.dp << (mesh.dp == 1 ? " rank, " : " ranks, ")
     << (mesh.dp + gpu.gpusPerNode - 1) / gpu.gpusPerNode << " node"
     << ((mesh.dp + gpu.gpusPerNode - 1) / gpu.gpusPerNode == 1 ? "" : "s")
     << " of " << gpu.gpusPerNode << "; edp=" << r.expertDataParallel
     << "), GPU " << gpu.name << ", " << r.shardStrategy << "\n";
  os << "  per rank per step: " << r.microBatches << " micro-batches x "
     << withCommas(r.tokensPerMicroBatch)
     << " tokens = " << withCommas(r.tokensPerRank) << " tokens; global "
     << withCommas(r.tokensPerStep) << " tokens/step";
  if (config.distributed.nGpus != mesh.dp)
    os << " (the mesh replaces n_gpus " << config.distributed.nGpus << ")";
  os << "\n\n";

  const CostMemory &mem = r.memory;
  const unsigned label = 44;
  os << "Memory per rank (GiB)\n";
  auto memRow = [&](StringRef name, double bytes) {
    row(os, name, label, {gib(bytes)}, {10});
  };
  std::string capacity =
      "of " + gib(mem.capacity) + " (" + fixed(mem.capacity / 1e9, 0) + " GB)";
  memRow("fp32 master weights", mem.masterWeights);
  memRow("fp32 gradient accumulators", mem.gradients);
  memRow("NorMuon state (M, v)", mem.normuonState);
  memRow("AdamW state (m, v)", mem.adamwState);
  memRow("MoE bias and count buffers", mem.moeBuffers);
  bool fullShard =
      r.shardStrategy != "NO_SHARD" && r.shardStrategy != "SHARD_GRAD_OP";
  memRow(fullShard ? "compute copy in flight (2 largest units)"
                   : "compute copy (whole, local experts)",
         mem.computeCopy);
  memRow("unsharded gradient of one unit", mem.gradientBuffer);
  memRow(t.useCheckpoint ? "activations, 1 micro-batch (recompute)"
                         : "activations, 1 micro-batch",
         mem.activations);
  row(os, "total", label,
      {gib(mem.total), capacity + (mem.fits ? ": fits" : ": does NOT fit")},
      {10, 0});
  os << "\n";

  os << "Compute per rank per step\n";
  // A number right-aligned, its unit after it.
  auto flopRow = [&](StringRef name, std::string value, StringRef unit) {
    row(os, name, label, {value, unit.str()}, {10, 0});
  };
  flopRow(llvm::formatv("training ({0} GFLOP/token executed)",
                        fixed(r.executedFlopsPerToken / 1e9, 2))
              .str(),
          flopCount(r.trainingFlops).first, flopCount(r.trainingFlops).second);
  flopRow("NorMuon Newton-Schulz (owned units)",
          flopCount(r.normuonFlops).first, flopCount(r.normuonFlops).second);
  flopRow(llvm::formatv("compute time at {0}% of {1} TFLOP/s",
                        int(kComputeEfficiency * 100 + 0.5),
                        int(gpu.peakFlops / 1e12 + 0.5))
              .str(),
          fixed(r.computeSeconds, 3), "s");
  flopRow("  of which shared experts (hide all_to_all)",
          fixed(r.sharedExpertSeconds, 3), "s");
  flopRow("optimizer (Newton-Schulz + HBM-bound update)",
          fixed(r.optimizerSeconds, 3), "s");
  os << "\n";

  os << "Collectives per rank per step (GB = 1e9 bytes; wire = bytes each "
        "rank sends)\n";
  const unsigned widths[] = {11, 6, 10, 9, 7, 8, 8, 0};
  row(os, "collective", 30,
      {"group", "calls", "payload GB", "wire GB", "GB/s", "time s", "exposed",
       "overlaps with"},
      widths);
  for (const CollectiveCost &c : r.collectives) {
    std::string group = c.group + "=" + std::to_string(c.groupSize);
    if (c.groupSize > 1)
      group += c.crossesNodes ? " net" : " nvl";
    bool any = c.wireBytes > 0;
    row(os, c.name, 30,
        {group, any ? std::to_string(c.calls) : "-",
         orDash(c.payloadBytes / 1e9, 2),
         c.wireBytes > 0 && c.wireBytes < 1e7 ? "<0.01"
                                              : orDash(c.wireBytes / 1e9, 2),
         any ? fixed(c.bandwidth / 1e9, 0) : "-", orDash(c.seconds, 3),
         orDash(c.exposedSeconds, 3), "  " + c.overlap},
        widths);
  }
  os << "\n";

  os << "Step\n";
  flopRow("compute", fixed(r.computeSeconds, 3), "s");
  flopRow("communication (total, overlapped or not)", fixed(r.commSeconds, 3),
          "s");
  flopRow("  exposed FSDP", fixed(r.fsdpExposedSeconds, 3), "s");
  flopRow("  exposed all_to_all", fixed(r.allToAllExposedSeconds, 3), "s");
  flopRow("  exposed all_reduce (scalars)",
          fixed(r.exposedCommSeconds - r.fsdpExposedSeconds -
                    r.allToAllExposedSeconds,
                3),
          "s");
  flopRow("optimizer", fixed(r.optimizerSeconds, 3), "s");
  flopRow("step time", fixed(r.stepSeconds, 3), "s");
  flopRow("tokens/s (global)", withCommas(int64_t(r.tokensPerSecond + 0.5)),
          "");
  flopRow("tokens/s per GPU",
          withCommas(int64_t(r.tokensPerSecond / double(mesh.dp) + 0.5)), "");
  flopRow("MFU (3 x forward FLOPs, no recompute)", fixed(100 * r.mfu, 1), "%");
  os << "\n";

  std::string overlap =
      r.shardStrategy == "NO_SHARD"
          ? "the gradient all_reduce hidden only behind the last "
            "micro-batch's backward"
          : "parameter gathers and gradient reduce_scatters per micro-batch "
            "(SHARD_GRAD_OP: one gather per step), hidden behind compute "
            "except the first unit's gather and the last unit's "
            "reduce_scatter";
  printWrapped(
      os,
      llvm::formatv(
          "Assumptions: peak numbers x {0} (compute), x {1} (links), x {2} "
          "(HBM); NVLink {3} GB/s per GPU inside a node of {4}, network {5} "
          "GB/s per GPU across nodes; ring (n-1)/n factors; link efficiency "
          "falling with the bytes per call (half at {7} MiB) and {8} us per "
          "call (fitted to fusion-comm-bench on 4 GPUs); {6}; all_to_all "
          "hidden only behind shared-expert compute; balanced routing; no "
          "link contention or stragglers; memory excludes the "
          "CUDA context, NCCL buffers and fragmentation.",
          fixed(kComputeEfficiency, 2), fixed(kLinkEfficiency, 2),
          fixed(kHbmEfficiency, 2), fixed(gpu.nvlinkBandwidth / 1e9, 0),
          gpu.gpusPerNode, fixed(gpu.networkBandwidth / 1e9, 0), overlap,
          fixed(kLinkHalfBandwidthBytes / 1048576, 0),
          fixed(kCollectiveLatencySeconds * 1e6, 0))
          .str(),
      100);
}
