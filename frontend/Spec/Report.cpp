//===- Report.cpp - Parameter, FLOP and memory accounting -----------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// Implements the counts of MODEL.md §18 from the tensor shapes of §3-§7 and
// §10. Parameter and FLOP formulas follow §18.1 term by term (its worked
// numbers for fusionllm-7b, bench-1gpu and smoke are unit-tested). MODEL.md
// gives no activation-memory formula; the estimate here counts the forward
// tensors each op's backward reads (§3-§9), listed per block below.
//
//===----------------------------------------------------------------------===//

#include "frontend/Spec/Report.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>

using namespace fusion::spec;
using llvm::StringRef;

std::string fusion::spec::withCommas(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}


namespace {

/// Shapes shared by the counting functions.
struct Shapes {
  int64_t V, D, T, H, G, dn, dr, dv, dqk, rq, rkv;
  int64_t E, K, S, I, Id, Im;
  int64_t Hg, Hgk, dk, dh, Kc, C;
  int64_t Dm;
  bool qkNorm;

  explicit Shapes(const ModelConfig &m)
      : V(m.vocabSize), D(m.dim), T(m.maxSeqLen), H(m.nHeads), G(m.nKvGroups),
        dn(m.qkNopeHeadDim), dr(m.qkRopeHeadDim), dv(m.vHeadDim),
        dqk(m.qkHeadDim()), rq(m.qLoraRank), rkv(m.kvLoraRank),
        E(m.nRoutedExperts), K(m.nActivatedExperts), S(m.nSharedExperts),
        I(m.moeInterDim), Id(m.interDim), Im(m.mtpFfnDim()),
        Hg(m.gdnValueHeads()), Hgk(m.gdnKeyHeads()), dk(m.gdnDState),
        dh(m.gdnHeaddim), Kc(m.gdnDConv), C(m.gdnChunkSize), Dm(m.mtpDepth),
        qkNorm(m.qkNorm) {}

  //===--- parameters (§10 tensor shapes)
  //----------------------------------===//

  /// MLA matmul weights: W_DQ, W_UQ (or W_Q), W_DKV, W_UKV, W_O.
  int64_t mlaMatmul() const {
    int64_t q = rq > 0 ? D * rq + rq * H * dqk : H * dqk * D;
    return q + D * (rkv + dr) + rkv * G * (dn + dv) + D * H * dv;
  }
  /// MLA norm gains: q_norm, kv_norm, qk_norm_{q,k}.
  int64_t mlaNorms() const {
    return (rq > 0 ? rq : 0) + rkv + (qkNorm ? 2 * dqk : 0);
  }
  /// MLA output rows of its matrices (NorMuon's v).
  int64_t mlaRows() const {
    int64_t q = rq > 0 ? rq + H * dqk : H * dqk;
    return q + (rkv + dr) + G * (dn + dv) + D;
  }

  /// GDN matmul weights: w_q, w_k, w_v, w_z, w_a, w_b, w_out.
  int64_t gdnMatmul() const {
    return 2 * D * Hgk * dk + 3 * D * Hg * dh + 2 * D * Hg;
  }
  /// GDN AdamW tensors: convs, A_log, dt_bias, o_norm.
  int64_t gdnOther() const {
    return (2 * Hgk * dk + Hg * dh) * Kc + 2 * Hg + dh;
  }
  int64_t gdnRows() const { return 2 * Hgk * dk + 2 * Hg * dh + 2 * Hg + D; }

  int64_t swiglu(int64_t width) const { return 3 * D * width; }
  int64_t swigluRows(int64_t width) const { return 2 * width + D; }
};

/// Bytes of the forward tensors one block keeps for its backward, per token.
/// `a` is the activation dtype size; residual-stream tensors and statistics
/// are fp32 (§1).
struct ActivationModel {
  const Shapes &s;
  double a;

  /// Pre-norm of a sub-block: fp32 input, rstd, normalised bf16 output.
  double preNorm() const { return 4.0 * s.D + 4 + a * s.D; }

  double mla() const {
    double bytes = 0;
    if (s.rq > 0)
      bytes += a * s.rq + 4 + a * s.rq; // W_DQ out + rstd, c_q
    if (s.qkNorm)
      bytes += a * s.H * s.dqk + 4.0 * s.H + // q before qk-norm
               a * s.G * s.dqk + 4.0 * s.G;  // k before qk-norm
    bytes += a * s.H * s.dqk;                // q after RoPE
    bytes += a * (s.rkv + s.dr);             // W_DKV out
    bytes += a * s.rkv + 4;                  // c_kv normalised + rstd
    bytes += a * s.G * (s.dn + s.dv);        // W_UKV out (k_nope, v)
    bytes += a * s.G * s.dqk;                // k after RoPE
    bytes += a * s.H * s.dv + 4.0 * s.H;     // attention out + lse
    return bytes;
  }

  double moe() const {
    double bytes = 4.0 * s.E + 8.0 * s.K;             // sigmoid scores, idx, w
    bytes += s.K * (a * s.D + 3 * a * s.I + a * s.D); // dispatched u, h1,
                                                      // h3, h, F_i(u)
    bytes += s.S * 3 * a * s.I;                       // shared h1, h3, h
    return bytes;
  }

  double dense(int64_t width) const { return 3 * a * width; }

  double gdn() const {
    double qkv = double(2 * s.Hgk * s.dk + s.Hg * s.dh);
    double bytes = 3 * a * qkv;             // pre-conv, conv out, q/k/v
    bytes += a * s.Hg * s.dh;               // z
    bytes += a * 2 * s.Hg + 4.0 * 2 * s.Hg; // a, b; g, beta (fp32)
    bytes += a * s.Hg * s.dh + 4.0 * s.Hg;  // o + gated-norm rstd
    bytes += a * s.Hg * s.dh;               // y (w_out input)
    if (s.C > 0)                            // chunk states Hs (fp32)
      bytes += 4.0 * s.Hg * s.dk * s.dh / s.C;
    return bytes;
  }

  /// Fused softcap-CE head: normalised input, rstd, per-row lse.
  double head() const { return 4.0 * s.D + 4 + a * s.D + 4; }

  /// An MTP module without its head: input norms, concat, projection out.
  double mtpInput() const {
    return 4.0 * s.D + 4 + a * s.D + 4 + a * s.D + 2 * a * s.D + 4.0 * s.D;
  }
};

std::string scaled(double value, StringRef unit, int decimals = 2) {
  const char *prefix = "";
  double scale = 1;
  if (value >= 1e15) {
    prefix = "P";
    scale = 1e15;
  } else if (value >= 1e12) {
    prefix = "T";
    scale = 1e12;
  } else if (value >= 1e9) {
    prefix = "G";
    scale = 1e9;
  } else if (value >= 1e6) {
    prefix = "M";
    scale = 1e6;
  } else if (value >= 1e3) {
    prefix = "k";
    scale = 1e3;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::format("%.*f", decimals, value / scale) << " " << prefix << unit;
  return text;
}

std::string count(int64_t value) {
  if (value >= 1000000000)
    return withCommas(value) + " (" +
           llvm::formatv("{0:F2} B", value / 1e9).str() + ")";
  if (value >= 1000000)
    return withCommas(value) + " (" +
           llvm::formatv("{0:F2} M", value / 1e6).str() + ")";
  return withCommas(value);
}

/// "{5,11,17}" with runs collapsed ("{0-4,7-10}").
std::string indexSet(llvm::ArrayRef<int64_t> indices) {
  std::string out = "{";
  for (size_t i = 0; i < indices.size();) {
    size_t j = i;
    while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1)
      ++j;
    if (i)
      out += ",";
    out += std::to_string(indices[i]);
    if (j > i + 1)
      out += "-" + std::to_string(indices[j]);
    else if (j == i + 1)
      out += "," + std::to_string(indices[j]);
    i = j + 1;
  }
  return out + "}";
}

} // namespace

//===----------------------------------------------------------------------===//
// computeReport
//===----------------------------------------------------------------------===//

ModelReport fusion::spec::computeReport(const Config &config) {
  const ModelConfig &m = config.model;
  Shapes s(m);
  ModelReport report;
  report.layers = m.getLayerKinds();
  ParameterCounts &p = report.params;

  //===--- components
  //--------------------------------------------------------===//
  p.embedding = s.V * s.D;
  p.mlaMatmul = s.mlaMatmul();
  p.mlaMixer = p.mlaMatmul + s.mlaNorms();
  p.gdnMatmul = s.gdnMatmul();
  p.gdnMixer = p.gdnMatmul + s.gdnOther();
  p.expert = s.swiglu(s.I);
  p.moeRouter = s.E * s.D;
  p.moeShared = s.S * p.expert;
  p.moeRouted = s.E * p.expert;
  p.moeStored = p.moeRouter + p.moeShared + p.moeRouted;
  p.moeActive = p.moeRouter + p.moeShared + std::min(s.K, s.E) * p.expert;
  p.denseFfn = s.swiglu(s.Id);
  p.blockNorms = 2 * s.D;
  p.finalNorm = s.D;
  int64_t mtpNorms = 3 * s.D + 2 * s.D; // norm_h, norm_e, norm_out + block
  int64_t mtpProj = 2 * s.D * s.D;
  p.mtpMatmul = mtpProj + p.mlaMatmul + s.swiglu(s.Im);
  p.mtpModule = mtpNorms + mtpProj + p.mlaMixer + s.swiglu(s.Im);

  //===--- layers and blocks
  //-------------------------------------------------===//
  for (const LayerKind &kind : report.layers) {
    if (kind.isGdn())
      ++p.numGdnLayers;
    else if (kind.isMoE())
      ++p.numMlaMoeLayers;
    else
      ++p.numMlaDenseLayers;
  }
  p.mlaMoeBlockStored = p.mlaMixer + p.moeStored + p.blockNorms;
  p.mlaMoeBlockActive = p.mlaMixer + p.moeActive + p.blockNorms;
  p.mlaDenseBlock = p.mlaMixer + p.denseFfn + p.blockNorms;
  p.gdnBlock = p.gdnMixer + p.denseFfn + p.blockNorms;

  int64_t backboneShared = p.numMlaDenseLayers * p.mlaDenseBlock +
                           p.numGdnLayers * p.gdnBlock + p.finalNorm;
  p.total =
      p.embedding + p.numMlaMoeLayers * p.mlaMoeBlockStored + backboneShared;
  p.active =
      p.embedding + p.numMlaMoeLayers * p.mlaMoeBlockActive + backboneShared;
  p.totalWithMtp = p.total + s.Dm * p.mtpModule;
  p.activeWithMtp = p.active + s.Dm * p.mtpModule;

  int64_t numMla = p.numMlaMoeLayers + p.numMlaDenseLayers;
  p.normGains = (numMla + p.numGdnLayers) * p.blockNorms + p.finalNorm +
                numMla * s.mlaNorms() + p.numGdnLayers * s.dh +
                s.Dm * (mtpNorms + s.mlaNorms());
  p.adamwParams =
      p.embedding + p.normGains + p.numGdnLayers * (s.gdnOther() - s.dh);
  p.normuonParams = p.totalWithMtp - p.adamwParams;
  p.normuonRows = numMla * s.mlaRows() +
                  p.numMlaMoeLayers * (s.E + (s.E + s.S) * s.swigluRows(s.I)) +
                  p.numMlaDenseLayers * s.swigluRows(s.Id) +
                  p.numGdnLayers * (s.gdnRows() + s.swigluRows(s.Id)) +
                  s.Dm * (s.D + s.mlaRows() + s.swigluRows(s.Im));

  //===--- FLOPs (§18.1)
  //-------------------------------------------------------===//
  FlopCounts &f = report.flops;
  int64_t moeMatmulActive =
      p.moeRouter + p.moeShared + std::min(s.K, s.E) * p.expert;
  f.matmulBackbone = numMla * p.mlaMatmul +
                     p.numMlaMoeLayers * moeMatmulActive +
                     p.numMlaDenseLayers * p.denseFfn +
                     p.numGdnLayers * (p.gdnMatmul + p.denseFfn);
  f.matmulHead = p.embedding;
  f.matmulMtp = s.Dm * (p.mtpMatmul + p.embedding);
  f.matmulTotal = f.matmulBackbone + f.matmulHead + f.matmulMtp;

  double T = double(s.T);
  double perKey = 2.0 * s.H * double(s.dqk + s.dv);
  double globalKeys = (T + 1) / 2;
  for (const LayerKind &kind : report.layers) {
    if (!kind.isMla())
      continue;
    double keys = globalKeys;
    if (kind.isLocal && kind.window < s.T) {
      double W = double(kind.window);
      keys = (W * (W + 1) / 2 + (T - W) * W) / T;
    }
    f.attention += perKey * keys;
  }
  f.mtpAttention = double(s.Dm) * perKey * globalKeys;
  double C = double(s.C);
  double perHead = 2 * C * double(3 * s.dk + 2 * s.dh) +
                   6.0 * double(s.dk) * double(s.dh) + 2.0 / 3.0 * C * C;
  f.gdnCore = double(p.numGdnLayers) * double(s.Hg) * perHead;
  f.forward =
      2.0 * double(f.matmulTotal) + f.attention + f.mtpAttention + f.gdnCore;
  f.training = 3 * f.forward;
  f.trainingMainOnly = 3 * (2.0 * double(f.matmulBackbone + f.matmulHead) +
                            f.attention + f.gdnCore);
  f.sixN = 6.0 * double(f.matmulTotal);
  f.trainingWithRecompute = 4 * f.forward;
  f.executedPerToken =
      config.training.useCheckpoint ? f.trainingWithRecompute : f.training;

  //===--- static memory (§18.2, §19)
  //---------------------------------------===//
  MemoryEstimate &mem = report.memory;
  double n = double(p.totalWithMtp);
  int64_t numMoe = p.numMlaMoeLayers;
  mem.masterWeights = 4 * n;
  mem.gradients = 4 * n;
  mem.normuonState =
      4.0 * double(p.normuonParams) + 4.0 * double(p.normuonRows);
  mem.adamwState = 8.0 * double(p.adamwParams);
  mem.moeBuffers = double(numMoe) * double(s.E) * (4 + 8);
  mem.optimizerState = mem.masterWeights + mem.gradients + mem.normuonState +
                       mem.adamwState + mem.moeBuffers;
  bool fp32Compute = config.distributed.fsdpParamDtype == "fp32" ||
                     config.training.dtype == "fp32";
  double routerParams = double(numMoe) * double(p.moeRouter);
  mem.computeCopy =
      fp32Compute ? 4 * n : 2 * (n - routerParams) + 4 * routerParams;
  mem.staticTotal = mem.optimizerState + mem.computeCopy;
  double ranks = double(std::max<int64_t>(config.distributed.nGpus, 1));
  StringRef strategy = config.distributed.fsdpShardStrategy;
  if (strategy == "NO_SHARD")
    mem.staticPerRank = mem.staticTotal;
  else if (strategy == "SHARD_GRAD_OP")
    mem.staticPerRank = mem.optimizerState / ranks + mem.computeCopy;
  else
    mem.staticPerRank = mem.staticTotal / ranks;

  //===--- activation memory (estimate)
  //--------------------------------------===//
  ActivationModel act{s, fp32Compute ? 4.0 : 2.0};
  double mlaMoe = act.preNorm() + act.mla() + act.preNorm() + act.moe();
  double mlaDense = act.preNorm() + act.mla() + act.preNorm() + act.dense(s.Id);
  double gdnDense = act.preNorm() + act.gdn() + act.preNorm() + act.dense(s.Id);
  double mtpBlock = act.mtpInput() + act.preNorm() + act.mla() + act.preNorm() +
                    act.dense(s.Im);
  double all = 0, largest = 0;
  double checkpoints = 0;
  for (const LayerKind &kind : report.layers) {
    double block = kind.isGdn() ? gdnDense : kind.isMoE() ? mlaMoe : mlaDense;
    all += block;
    largest = std::max(largest, block);
    checkpoints += 4.0 * s.D + (kind.isMoE() ? 4.0 * s.K : 0.0);
  }
  if (s.Dm > 0)
    largest = std::max(largest, mtpBlock);
  double heads = double(1 + s.Dm) * act.head();
  mem.activationPerTokenNoRecompute = all + double(s.Dm) * mtpBlock + heads;
  mem.activationPerTokenRecompute =
      checkpoints + double(s.Dm) * 4.0 * s.D + largest + heads;

  const TrainingConfig &t = config.training;
  int64_t rows =
      t.batchSizeScheduleEnabled ? t.finalBatchSize : t.microBatchSize;
  int64_t seqLen = s.T;
  if (t.seqLenScheduleEnabled)
    seqLen = std::min(seqLen, t.finalSeqLen / 128 * 128);
  report.tokensPerMicroBatch = rows * seqLen;
  mem.activationPerMicroBatch =
      double(report.tokensPerMicroBatch) *
      (t.useCheckpoint ? mem.activationPerTokenRecompute
                       : mem.activationPerTokenNoRecompute);
  mem.peakPerRank = mem.staticPerRank + mem.activationPerMicroBatch;

  report.tokensPerStep = getTokensPerStep(config);
  report.lrPhases = getLrPhases(config.training);
  return report;
}

//===----------------------------------------------------------------------===//
// printReport
//===----------------------------------------------------------------------===//

namespace {
/// Prints rows of a left-aligned label and right-aligned columns.
class Table {
public:
  Table(llvm::raw_ostream &os, unsigned labelWidth,
        llvm::ArrayRef<unsigned> widths)
      : os(os), labelWidth(labelWidth), widths(widths.begin(), widths.end()) {}

  void row(StringRef label, llvm::ArrayRef<std::string> cells) {
    os << "  " << llvm::left_justify(label, labelWidth);
    for (auto [i, cell] : llvm::enumerate(cells))
      os << "  "
         << llvm::right_justify(cell, i < widths.size() ? widths[i] : 0);
    os << "\n";
  }

private:
  llvm::raw_ostream &os;
  unsigned labelWidth;
  llvm::SmallVector<unsigned> widths;
};
} // namespace

void fusion::spec::printReport(const Config &config, llvm::raw_ostream &os) {
  printReport(config, computeReport(config), os);
}

void fusion::spec::printReport(const Config &config, const ModelReport &report,
                               llvm::raw_ostream &os) {
  const ModelConfig &m = config.model;
  const ParameterCounts &p = report.params;
  const FlopCounts &f = report.flops;
  const MemoryEstimate &mem = report.memory;

  //===--- layer schedule
  //----------------------------------------------------===//
  llvm::SmallVector<int64_t> gdn, global, local;
  for (auto [index, kind] : llvm::enumerate(report.layers)) {
    if (kind.isGdn())
      gdn.push_back(index);
    else if (kind.isLocal)
      local.push_back(index);
    else
      global.push_back(index);
  }
  os << "FusionLLM config report\n\n";
  os << "Layers: " << m.nLayers << " (" << p.numMlaMoeLayers << " MLA+MoE, "
     << p.numMlaDenseLayers << " MLA+dense, " << p.numGdnLayers
     << " GDN+dense); layer_schedule \"" << m.layerSchedule << "\"\n";
  os << "  GDN layers        " << indexSet(gdn) << "\n";
  os << "  global MLA layers " << indexSet(global) << "\n";
  os << "  local MLA layers  " << indexSet(local);
  if (!local.empty())
    os << " (window " << m.slidingWindow << ")";
  os << "\n  MTP modules       " << m.mtpDepth << "\n\n";

  //===--- parameters
  //------------------------------------------------------===//
  os << "Parameters\n";
  Table params(os, 34, {5, 15, 26, 24});
  params.row("", {"count", "per instance", "stored", "active"});
  auto line = [&](StringRef label, int64_t n, int64_t each, int64_t active) {
    if (n == 0)
      return;
    params.row(label, {std::to_string(n), withCommas(each),
                       withCommas(n * each), withCommas(n * active)});
  };
  int64_t numMla = p.numMlaMoeLayers + p.numMlaDenseLayers;
  int64_t numDense = p.numMlaDenseLayers + p.numGdnLayers;
  line("embedding (tied head)", 1, p.embedding, p.embedding);
  line("MLA mixer", numMla, p.mlaMixer, p.mlaMixer);
  if (p.numMlaMoeLayers) {
    line("MoE FFN", p.numMlaMoeLayers, p.moeStored, p.moeActive);
    line("  router", p.numMlaMoeLayers, p.moeRouter, p.moeRouter);
    line("  shared experts (" + std::to_string(m.nSharedExperts) + ")",
         p.numMlaMoeLayers, p.moeShared, p.moeShared);
    line("  routed experts (" + std::to_string(m.nActivatedExperts) + " of " +
             std::to_string(m.nRoutedExperts) + " active)",
         p.numMlaMoeLayers, p.moeRouted,
         std::min(m.nActivatedExperts, m.nRoutedExperts) * p.expert);
  }
  line("GDN mixer", p.numGdnLayers, p.gdnMixer, p.gdnMixer);
  line("dense FFN", numDense, p.denseFfn, p.denseFfn);
  line("block norms", numMla + p.numGdnLayers, p.blockNorms, p.blockNorms);
  line("final norm", 1, p.finalNorm, p.finalNorm);
  params.row("total", {"", "", count(p.total), count(p.active)});
  line("MTP module", m.mtpDepth, p.mtpModule, p.mtpModule);
  params.row("total incl. MTP",
             {"", "", count(p.totalWithMtp), count(p.activeWithMtp)});
  os << "  blocks:";
  if (p.numMlaMoeLayers)
    os << " MLA+MoE " << withCommas(p.mlaMoeBlockStored) << " stored / "
       << withCommas(p.mlaMoeBlockActive) << " active;";
  if (p.numMlaDenseLayers)
    os << " MLA+dense " << withCommas(p.mlaDenseBlock) << ";";
  if (p.numGdnLayers)
    os << " GDN+dense " << withCommas(p.gdnBlock) << ";";
  os << "\n  optimizer partition: NorMuon " << withCommas(p.normuonParams)
     << ", AdamW " << withCommas(p.adamwParams) << " (norm gains "
     << withCommas(p.normGains) << ")\n\n";

  //===--- FLOPs
  //-------------------------------------------------------------===//
  // One unit for the section, chosen from the training total.
  double unit = f.training >= 1e9 ? 1e9 : f.training >= 1e6 ? 1e6 : 1e3;
  StringRef unitName = unit == 1e9 ? "GFLOP" : unit == 1e6 ? "MFLOP" : "kFLOP";
  auto flop = [&](double value, int decimals) {
    return llvm::formatv("{0} {1}",
                         llvm::format("%.*f", decimals, value / unit), unitName)
        .str();
  };
  os << "Training FLOPs per token\n";
  Table flops(os, 40, {20});
  flops.row("matmul weights touched (N_mm)", {withCommas(f.matmulTotal)});
  flops.row("  backbone", {withCommas(f.matmulBackbone)});
  flops.row("  head", {withCommas(f.matmulHead)});
  flops.row("  MTP", {withCommas(f.matmulMtp)});
  flops.row("forward: 2 * N_mm", {flop(2.0 * f.matmulTotal, 3)});
  flops.row("forward: attention (" + std::to_string(numMla) + " MLA layers)",
            {flop(f.attention, 3)});
  flops.row("forward: MTP attention", {flop(f.mtpAttention, 3)});
  flops.row("forward: GDN chunk core", {flop(f.gdnCore, 3)});
  flops.row("forward total", {flop(f.forward, 3)});
  flops.row("training (3 x forward)", {flop(f.training, 2)});
  flops.row("  main model only", {flop(f.trainingMainOnly, 2)});
  flops.row("  6 * N_mm only", {flop(f.sixN, 2)});
  flops.row("  with full recompute (4 x forward)",
            {flop(f.trainingWithRecompute, 2)});
  os << "\n";

  //===--- step
  //--------------------------------------------------------------===//
  const TrainingConfig &t = config.training;
  os << "Step\n";
  Table step(os, 40, {20});
  step.row("tokens per micro-batch (B * T)",
           {withCommas(report.tokensPerMicroBatch)});
  step.row("tokens per step", {withCommas(report.tokensPerStep)});
  step.row("FLOPs per step (executed)",
           {scaled(f.executedPerToken * double(report.tokensPerStep), "FLOP")});
  double runTokens = double(report.tokensPerStep) * double(t.totalSteps);
  step.row("tokens in the run",
           {runTokens < 9e18 ? count(int64_t(runTokens))
                             : scaled(runTokens, "tokens")});
  step.row("LR phases (warmup/stable/decay)",
           {std::to_string(report.lrPhases.warmup) + " / " +
            std::to_string(report.lrPhases.stable) + " / " +
            std::to_string(report.lrPhases.decay)});
  os << "\n";

  //===--- memory
  //------------------------------------------------------------===//
  os << "Memory (1 GB = 1e9 bytes)\n";
  auto bytes = [](double value) { return scaled(value, "B"); };
  Table memory(os, 40, {20});
  memory.row("fp32 master weights", {bytes(mem.masterWeights)});
  memory.row("fp32 gradients", {bytes(mem.gradients)});
  memory.row("NorMuon state (M, v)", {bytes(mem.normuonState)});
  memory.row("AdamW state (m, v)", {bytes(mem.adamwState)});
  memory.row("MoE bias and count buffers", {bytes(mem.moeBuffers)});
  memory.row("optimizer state, all ranks", {bytes(mem.optimizerState)});
  memory.row("compute copy of the weights", {bytes(mem.computeCopy)});
  memory.row("static, all ranks", {bytes(mem.staticTotal)});
  memory.row("static per rank (" + config.distributed.fsdpShardStrategy + ", " +
                 std::to_string(config.distributed.nGpus) + ")",
             {bytes(mem.staticPerRank)});
  memory.row("activations per token, no recompute",
             {scaled(mem.activationPerTokenNoRecompute, "B")});
  memory.row("activations per token, full recompute",
             {scaled(mem.activationPerTokenRecompute, "B")});
  memory.row(t.useCheckpoint ? "activations per micro-batch (recompute)"
                             : "activations per micro-batch",
             {bytes(mem.activationPerMicroBatch)});
  memory.row("estimated peak per rank", {bytes(mem.peakPerRank)});
}
