//===- gradcheck.cc - fusion-run --gradcheck: whole-model finite differences ===//
//
// Checks a `fusionc --mode=grad` plan's analytic gradients (forward_grad's `grad:NAME`
// outputs) against central differences of the loss computed by its `forward` program, for a
// sample of coordinates of every trainable parameter (issue 5 item 4). The contract is in
// runtime/include/fusion/rt/train.h; the numerics are these:
//
// Coordinates. Per Weight buffer: the coordinate of largest |g| (the strongest test: its
// gradient stands furthest above the noise), then samples−1 distinct random coordinates
// drawn with the §14.3 RNG (seed = the data seed, coordinates (param index, 0x6763, 0, draw))
// among those with g ≠ 0 when there are any: a routed expert that received no tokens has an
// all-zero gradient block, and an embedding row of a token absent from the batch too.
//
// Step. The model stores fp32 and the loss comes back as an f32 scalar (~10 nats for smoke,
// ulp ≈ 1e-6), so the difference quotient has an absolute noise floor of roughly ε/(2h),
// with ε the rounding noise of L(w+h) − L(w−h). A step relative to the coordinate alone
// would be far too small for small weights, so h = H·max(|w_i|, rms(w), 0.1) with H =
// --gradcheck-step (default 0.05): 5% of the parameter's own scale (0.1 for zero-initialised
// or tiny parameters, about the init scale of the smoke model's matrices). Both w+h and w−h
// are rounded to the storage dtype and the quotient divides by the step actually taken,
// (L(w⁺) − L(w⁻)) / (w⁺ − w⁻).
//
// Noise. ε is measured, not assumed: a few probe coordinates spread over the parameter list
// get second differences L(w+δ) + L(w−δ) − 2L(w) with a tiny step δ = 1e-4·scale. Their true
// value L''·δ² is negligible, so they are rounding noise of three forward passes, and
// ε = √(2/3)·max|second difference| (at least one ulp of L, the f32 quantization of the loss)
// is the noise of the two evaluations in a central difference. The probes do not use g, so a
// wrong gradient cannot inflate ε. The noise bound of a quotient is ν = 3·ε/(w⁺ − w⁻).
//
// Acceptance. |fd − g| ≤ T·|g| + ν, T = --gradcheck-tolerance (default 0.05). A wrong factor
// (×2, ×½, a missing μP multiplier, a sign) gives |fd − g| ≥ 0.5·|g| and fails wherever
// |g| > 2ν, which the largest-|g| coordinate of every smoke parameter satisfies by a wide
// margin; rows where ν > |g|/4 are marked noise-limited (they would let a factor of 2 pass).
// Measured on smoke (fp32, 8 × 64 tokens, defaults): ε ≈ 9.5e-7 (1 ulp of L ≈ 10.03); where
// ν ≤ 0.02·|g| the relative error is 0.16% median, 0.63% at the 90th percentile (fp32
// rounding of g and the O(h²) truncation), |fd − g| / ν is 0.14 median and 0.36 at the 90th
// percentile over all coordinates (so the factor 3 in ν is a margin, not slack that hides
// errors), and the worst passing row used 0.999 of its tolerance (a quotient that straddled
// a routing flip; with a 32× smaller step its error is 0.04%).
//
// Non-smooth points. MoE routing (top-k, group-limited selection) is piecewise constant in
// the router scores: when w±h moves a token's scores across a selection boundary the loss
// jumps (by ~1e-3 on smoke, a thousand ulps) and the quotient is meaningless. On the smoke
// batch such flips are dense upstream of the MoE layers: a router weight flips a selection
// every ~2e-4. A failing quotient is therefore recomputed at h/2, h/4, ... h/16:
//   - two successive quotients that disagree (by more than T·max(|fd|, |fd'|) + ν + ν')
//     mean a selection changed between them; a later quotient may pass, but only while
//     ν ≤ |g|/4 ("selection changed, retried with smaller h");
//   - three successive quotients that agree and all fail mean the loss is smooth there and
//     the analytic gradient is wrong (FAIL, "smooth: finite differences agree ...");
//   - otherwise, undecided at h/16, the coordinate is rechecked with the MoE routing frozen:
//     every moe_route's (persistent) bias input is set to b_e = 16·(E − rank_e) with the
//     coordinate's own expert ranked first (the leading index of an [E, ...] parameter:
//     routed expert weights, router rows), its group next. Scores are sigmoids in (0, 1),
//     so the selection is then the same for every token whatever the weights, while the
//     gate weights (s_i / Σ_selected s_j, no bias) and the balance loss still depend on
//     the router; forward_grad is rerun for the gradient at that point and the same step
//     procedure decides (undecided is a FAIL). The biases are restored afterwards.
// At the end every weight and bias is compared with its original bytes and forward is rerun:
// its loss must be bit-identical to the first one (a warning otherwise).
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/train.h"

#include "../numeric.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>

namespace fusion::rt::train {

namespace {

constexpr const char *kInit = "init";
constexpr const char *kForward = "forward";
constexpr const char *kForwardGrad = "forward_grad";
constexpr const char *kLossOutput = "loss";
constexpr const char *kGradPrefix = "grad:";

/// Probes of the loss noise, their relative step, and the margin over the largest one.
constexpr size_t kNoiseProbes = 4;
constexpr double kProbeStep = 1e-4;
constexpr double kNoiseMargin = 3.0;
/// The scale floor of the step: h = H·max(|w_i|, rms(w), kMinScale).
constexpr double kMinScale = 0.1;
/// Halvings of the step after a selection change.
constexpr int kMaxHalvings = 4;

Status invalid(const std::string &message) { return Status(StatusCode::kInvalidArgument, message); }

std::string programList(const Plan &plan) {
  std::string list;
  for (const std::string &p : plan.programNames())
    list += (list.empty() ? "" : ", ") + rt::quoted(p);
  return list.empty() ? std::string("none") : list;
}

//===----------------------------------------------------------------------===//
// Elements of float buffers
//===----------------------------------------------------------------------===//

double loadElement(schema::DType dtype, const std::vector<uint8_t> &bytes, size_t i) {
  return loadAsFloat(bytes.data(), dtype, i);
}

/// Stores `value` rounded to `dtype` (through f32, round to nearest even).
void storeElement(schema::DType dtype, std::vector<uint8_t> &bytes, size_t i, double value) {
  storeFromFloat(bytes.data(), dtype, i, static_cast<float>(value));
}

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

/// The optimizer class of a parameter, for the table. The plan does not record a
/// parameter's optimizer, so this mirrors the model builders' ParamSpecs (models/): the
/// embedding, norms, causal-conv filters and the GDN vectors (A_log, dt_bias) are AdamW,
/// every other matrix (attention/FFN projections, routed and shared experts, the router) is
/// NorMuon.
std::string parameterKind(const BufferInfo &buffer) {
  const std::string &name = buffer.name;
  auto has = [&](const char *part) { return name.find(part) != std::string::npos; };
  if (name == data::kEmbeddingBuffer)
    return "embedding";
  if (buffer.shape.size() >= 2 && has("conv"))
    return "AdamW conv";
  if (buffer.shape.size() >= 2 && has("router"))
    return "NorMuon router";
  if (buffer.shape.size() >= 3)
    return has(".shared.") ? "NorMuon shared expert" : "NorMuon experts";
  if (buffer.shape.size() >= 2)
    return "NorMuon matrix";
  if (has("norm"))
    return "AdamW norm";
  return "AdamW vector";
}

struct Parameter {
  uint32_t buffer = 0;
  const BufferInfo *info = nullptr;
  std::string kind;
  std::vector<uint8_t> original;
  std::vector<double> w;
  /// The analytic gradient; empty when forward_grad has no output for this parameter.
  std::vector<double> g;
  double wRms = 0;
  double gRms = 0;
};

std::string formatIndex(const std::vector<int64_t> &shape, uint64_t flat) {
  if (shape.empty())
    return "[]";
  std::vector<int64_t> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = static_cast<int64_t>(flat % static_cast<uint64_t>(shape[d]));
    flat /= static_cast<uint64_t>(shape[d]);
  }
  std::string text = "[";
  for (size_t d = 0; d < index.size(); ++d)
    text += (d ? "," : "") + std::to_string(index[d]);
  return text + "]";
}

/// The coordinates to check: largest |g| first, then seeded random ones (nonzero g if any).
std::vector<uint64_t> pickCoordinates(const Parameter &p, uint64_t samples, uint64_t seed,
                                      uint64_t paramIndex) {
  uint64_t n = p.info->numElements;
  std::vector<uint64_t> picked;
  if (n == 0 || samples == 0)
    return picked;
  uint64_t best = 0;
  for (uint64_t i = 1; i < n; ++i)
    if (std::fabs(p.g[i]) > std::fabs(p.g[best]))
      best = i;
  picked.push_back(best);
  std::vector<uint64_t> pool;
  for (uint64_t i = 0; i < n; ++i)
    if (p.g[i] != 0 && i != best)
      pool.push_back(i);
  if (pool.empty())
    for (uint64_t i = 0; i < n; ++i)
      if (i != best)
        pool.push_back(i);
  data::RowCoord coord;
  coord.step = paramIndex;
  coord.rank = 0x6763; // "gc"
  std::set<uint64_t> taken(picked.begin(), picked.end());
  for (uint64_t draw = 0; picked.size() < samples && taken.size() < pool.size() + 1; ++draw) {
    uint64_t i = pool[data::uniformIndex(data::drawState(seed, coord, draw), pool.size())];
    if (taken.insert(i).second)
      picked.push_back(i);
  }
  return picked;
}

//===----------------------------------------------------------------------===//
// Running the forward pass
//===----------------------------------------------------------------------===//

class LossEvaluator {
public:
  LossEvaluator(Executor &executor, const data::Batch *batch)
      : executor_(executor), batch_(batch) {}

  /// Feeds the batch to `program`'s data inputs (every run: the planner may reuse their
  /// memory inside the program).
  Status feed(const char *program) {
    const Plan &plan = executor_.plan();
    uint32_t index = *plan.findProgram(program);
    if (!batch_)
      return Status::okStatus();
    std::vector<int64_t> rows = {batch_->shape.rows, batch_->shape.seqLen + 1};
    if (plan.findInput(index, data::kTokensInput))
      FUSION_RETURN_IF_ERROR(executor_.setInput(program, data::kTokensInput, schema::DType::I32,
                                                rows, batch_->tokens.data(),
                                                batch_->tokens.size() * sizeof(int32_t)));
    if (plan.findInput(index, data::kTargetsInput))
      FUSION_RETURN_IF_ERROR(executor_.setInput(program, data::kTargetsInput, schema::DType::I32,
                                                rows, batch_->targets.data(),
                                                batch_->targets.size() * sizeof(int32_t)));
    if (plan.findInput(index, data::kInvCountsInput))
      FUSION_RETURN_IF_ERROR(executor_.setInput(
          program, data::kInvCountsInput, schema::DType::F32, {batch_->shape.mtpDepth + 1},
          batch_->invCounts.data(), batch_->invCounts.size() * sizeof(float)));
    return Status::okStatus();
  }

  /// Runs `forward` on the current weights and returns its loss.
  StatusOr<double> loss() {
    FUSION_RETURN_IF_ERROR(feed(kForward));
    FUSION_RETURN_IF_ERROR(executor_.run(kForward));
    ++runs_;
    FUSION_RETURN_IF_ERROR(executor_.readOutput(kForward, kLossOutput, bytes_));
    float value;
    std::memcpy(&value, bytes_.data(), 4);
    return static_cast<double>(value);
  }

  /// L(w⁺) − L(w⁻) for coordinate `i` of `p` moved to w_i ± h (rounded to the dtype), and
  /// the step actually taken w⁺ − w⁻. `scratch` holds p's original bytes on entry and exit;
  /// the buffer is left holding them too.
  struct Difference {
    double dL = 0;   // L(w⁺) − L(w⁻)
    double dw = 0;   // w⁺ − w⁻
    double sumL = 0; // L(w⁺) + L(w⁻)
  };
  StatusOr<Difference> centralDifference(const Parameter &p, uint64_t i, double h,
                                         std::vector<uint8_t> &scratch) {
    schema::DType dtype = p.info->dtype;
    double w0 = p.w[i];
    storeElement(dtype, scratch, i, w0 + h);
    double wPlus = loadElement(dtype, scratch, i);
    FUSION_RETURN_IF_ERROR(executor_.writeBuffer(p.buffer, scratch.data(), scratch.size()));
    FUSION_ASSIGN_OR_RETURN(double lPlus, loss());
    storeElement(dtype, scratch, i, w0 - h);
    double wMinus = loadElement(dtype, scratch, i);
    FUSION_RETURN_IF_ERROR(executor_.writeBuffer(p.buffer, scratch.data(), scratch.size()));
    FUSION_ASSIGN_OR_RETURN(double lMinus, loss());
    // Restore the exact original bytes of the element and of the buffer.
    size_t width = dtypeSize(dtype);
    std::memcpy(scratch.data() + width * i, p.original.data() + width * i, width);
    FUSION_RETURN_IF_ERROR(executor_.writeBuffer(p.buffer, p.original.data(), p.original.size()));
    return Difference{lPlus - lMinus, wPlus - wMinus, lPlus + lMinus};
  }

  uint64_t runs() const { return runs_; }

private:
  Executor &executor_;
  const data::Batch *batch_;
  std::vector<uint8_t> bytes_;
  uint64_t runs_ = 0;
};

//===----------------------------------------------------------------------===//
// MoE routing: freezing the selection through the router bias
//===----------------------------------------------------------------------===//

/// The bias input of a `moe_route` launch (docs/op-kinds.md: selection by s + bias, weights
/// from s alone), with what freezing it needs.
struct RouteBias {
  uint32_t buffer = 0;
  int64_t experts = 0;
  int64_t groups = 1;
  std::vector<uint8_t> original;
};

/// Every distinct bias buffer of the moe_route launches of `programs`; `frozenError` explains
/// why the routing cannot be frozen (a bias that is not a persistent f32 buffer).
std::vector<RouteBias> findRouteBiases(const Plan &plan, const std::vector<uint32_t> &programs,
                                       std::string &frozenError) {
  std::vector<RouteBias> biases;
  const schema::Plan &root = plan.root();
  for (uint32_t program : programs) {
    const auto *instructions = root.programs()->Get(program)->instructions();
    if (!instructions)
      continue;
    for (const schema::Instruction *instruction : *instructions) {
      const schema::Launch *launch = instruction->op_as_Launch();
      if (!launch)
        continue;
      const schema::Kernel *kernel = root.kernels()->Get(launch->kernel());
      if (kernel->kind()->string_view() != "moe_route" || !launch->args() ||
          launch->args()->size() < 2)
        continue;
      uint32_t id = launch->args()->Get(1);
      const BufferInfo &buffer = plan.buffers()[id];
      if (std::any_of(biases.begin(), biases.end(),
                      [&](const RouteBias &b) { return b.buffer == id; }))
        continue;
      if (root.arenas()->Get(buffer.arena)->class_() != schema::ArenaClass::Persistent ||
          buffer.dtype != schema::DType::F32 || buffer.shape.size() != 1) {
        frozenError =
            "the moe_route bias " + rt::quoted(buffer.name) + " is not a persistent f32 vector";
        continue;
      }
      RouteBias bias;
      bias.buffer = id;
      bias.experts = buffer.shape[0];
      if (kernel->attrs())
        for (const schema::Attribute *attr : *kernel->attrs())
          if (attr->name()->string_view() == "n_groups" && attr->i() >= 1 &&
              bias.experts % attr->i() == 0)
            bias.groups = attr->i();
      biases.push_back(std::move(bias));
    }
  }
  return biases;
}

/// The bias that makes every token select the same experts, with `favoured` first: experts
/// ranked favoured, the rest of its group, then the other groups in order, and
/// b_e = kFreezeBias · (E − rank_e). Scores are sigmoids in (0, 1), so the biased group
/// scores and expert scores are ordered by the bias alone, whatever the logits.
constexpr float kFreezeBias = 16;
std::vector<float> frozenBias(const RouteBias &route, int64_t favoured) {
  int64_t E = route.experts, groupSize = E / route.groups;
  favoured = ((favoured % E) + E) % E;
  int64_t first = favoured / groupSize;
  std::vector<int64_t> order = {favoured};
  for (int64_t g = 0; g < route.groups; ++g)
    for (int64_t e = 0; e < groupSize; ++e) {
      int64_t expert = ((first + g) % route.groups) * groupSize + e;
      if (expert != favoured)
        order.push_back(expert);
    }
  std::vector<float> bias(static_cast<size_t>(E));
  for (int64_t rank = 0; rank < E; ++rank)
    bias[static_cast<size_t>(order[rank])] = kFreezeBias * static_cast<float>(E - rank);
  return bias;
}

//===----------------------------------------------------------------------===//
// One coordinate
//===----------------------------------------------------------------------===//

/// One central difference of a coordinate.
struct Level {
  double h = 0; // (w⁺ − w⁻) / 2
  double fd = NAN;
  double nu = 0; // noise bound
};

enum class Verdict { kPass, kFail, kRecheck };

struct Row {
  size_t param = 0;
  uint64_t index = 0;
  double g = 0;
  std::vector<Level> levels;
  /// The level the verdict rests on (the passing one, else the last).
  size_t decisive = 0;
  Verdict verdict = Verdict::kFail;
  /// Some pair of successive steps gave disagreeing quotients.
  bool stepDependent = false;
  /// Checked with the MoE routing frozen.
  bool frozen = false;
  std::string note;

  const Level &level() const { return levels[decisive]; }
  double err() const { return levels.empty() ? NAN : std::fabs(level().fd - g); }
};

double relError(double fd, double g) {
  double err = std::fabs(fd - g);
  if (err == 0)
    return 0;
  return g == 0 ? std::numeric_limits<double>::infinity() : err / std::fabs(g);
}

std::string formatNumber(double value, const char *format = "%.4e") {
  if (std::isnan(value))
    return "nan";
  if (std::isinf(value))
    return value > 0 ? "inf" : "-inf";
  char text[48];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

class Checker {
public:
  Checker(const GradcheckOptions &options, LossEvaluator &evaluator, std::vector<Parameter> &params)
      : options_(options), evaluator_(evaluator), params_(params) {}

  void setNoise(double noise) { noise_ = noise; }
  double noise() const { return noise_; }

  double stepFor(const Parameter &p, uint64_t i, double factor) const {
    return factor * std::max({std::fabs(p.w[i]), p.wRms, kMinScale});
  }
  double tolerance(double g, double nu) const { return options_.tolerance * std::fabs(g) + nu; }

  /// The step procedure (file comment): h, h/2, ... h/16 until a quotient passes or three
  /// successive ones agree on a value outside the tolerance (smooth: FAIL); undecided is
  /// kRecheck (routing not frozen yet) or a FAIL (frozen).
  StatusOr<Row> check(size_t k, uint64_t i, bool frozen) {
    const Parameter &p = params_[k];
    Row row;
    row.param = k;
    row.index = i;
    row.g = p.g[i];
    row.frozen = frozen;
    scratch_ = p.original;
    double h = stepFor(p, i, options_.step);
    // Successive agreeing quotients, and successive quotients outside the tolerance, ending
    // at the current step: three in a row of both (two agreeing pairs) mean the loss is
    // smooth around w_i at these steps and the analytic gradient disagrees with it.
    int agreeing = 0, failing = 0;
    bool smooth = false;
    for (int halving = 0; halving <= kMaxHalvings; ++halving, h /= 2) {
      FUSION_ASSIGN_OR_RETURN(auto d, evaluator_.centralDifference(p, i, h, scratch_));
      if (d.dw == 0) {
        row.note = "step below the storage precision";
        break;
      }
      Level level{d.dw / 2, d.dL / d.dw, kNoiseMargin * noise_ / std::fabs(d.dw)};
      row.levels.push_back(level);
      row.decisive = row.levels.size() - 1;
      if (!std::isfinite(level.fd)) {
        row.note = "non-finite loss";
        return row;
      }
      if (halving > 0) {
        const Level &previous = row.levels[row.levels.size() - 2];
        double agree = options_.tolerance * std::max(std::fabs(level.fd), std::fabs(previous.fd)) +
                       level.nu + previous.nu;
        if (std::fabs(level.fd - previous.fd) > agree) {
          row.stepDependent = true;
          agreeing = 0;
        } else {
          ++agreeing;
        }
      }
      // A smaller step passes only while its noise bound still tells a factor of 2 apart.
      bool resolving = level.nu <= std::fabs(row.g) / 4;
      bool within = std::fabs(level.fd - row.g) <= tolerance(row.g, level.nu);
      if (within && (halving == 0 || resolving)) {
        row.verdict = Verdict::kPass;
        break;
      }
      failing = within ? 0 : failing + 1;
      if (agreeing >= 2 && failing >= 3) {
        smooth = true;
        break;
      }
    }
    auto stepName = [](size_t halvings) {
      return halvings == 0 ? std::string("h") : "h/" + std::to_string(1 << halvings);
    };
    if (row.verdict == Verdict::kPass) {
      if (row.stepDependent)
        row.note = "selection changed, retried with smaller h (" + stepName(row.decisive) + ")";
      else if (row.decisive > 0)
        row.note = "passed at " + stepName(row.decisive);
      else if (row.level().nu > std::fabs(row.g) / 4)
        row.note = "noise-limited";
    } else if (row.note.empty()) {
      std::string what = row.stepDependent ? "selection changed at every step down to "
                                           : "not resolved from the noise down to ";
      if (smooth)
        row.note = "smooth: finite differences agree from " + stepName(row.decisive - 2) + " to " +
                   stepName(row.decisive);
      else if (!frozen) {
        row.verdict = Verdict::kRecheck;
        row.note = what + stepName(row.decisive) + "; rechecked with the routing frozen";
      } else {
        row.note = what + stepName(row.decisive);
      }
    }
    if (frozen)
      row.note = row.note.empty() ? "routing frozen" : "routing frozen; " + row.note;
    return row;
  }

  void printHeader(std::FILE *out) const {
    std::fprintf(out, "%-36s %-21s %-12s %-9s %-12s %-12s %-9s %-7s %s\n", "parameter", "kind",
                 "index", "h", "analytic", "finite diff", "rel err", "err/tol", "result");
  }

  void printRow(std::FILE *out, const Row &row) const {
    const Parameter &p = params_[row.param];
    if (row.levels.empty() && p.g.empty()) {
      std::fprintf(out, "%-36s %-21s %-12s %-9s %-12s %-12s %-9s %-7s FAIL  (%s)\n",
                   p.info->name.c_str(), p.kind.c_str(), "-", "-", "-", "-", "-", "-",
                   row.note.c_str());
      return;
    }
    double fd = row.levels.empty() ? NAN : row.level().fd;
    double h = row.levels.empty() ? NAN : row.level().h;
    double tol = row.levels.empty() ? NAN : tolerance(row.g, row.level().nu);
    const char *verdict = row.verdict == Verdict::kPass   ? "PASS"
                          : row.verdict == Verdict::kFail ? "FAIL"
                                                          : "RECHECK";
    std::fprintf(out, "%-36s %-21s %-12s %-9s %-12s %-12s %-9s %-7s %s%s%s%s\n",
                 p.info->name.c_str(), p.kind.c_str(),
                 formatIndex(p.info->shape, row.index).c_str(), formatNumber(h, "%.2e").c_str(),
                 formatNumber(row.g).c_str(), formatNumber(fd).c_str(),
                 formatNumber(relError(fd, row.g), "%.2e").c_str(),
                 formatNumber(row.err() / tol, "%.3f").c_str(), verdict,
                 row.note.empty() ? "" : "  (", row.note.c_str(), row.note.empty() ? "" : ")");
  }

private:
  const GradcheckOptions &options_;
  LossEvaluator &evaluator_;
  std::vector<Parameter> &params_;
  double noise_ = 0;
  std::vector<uint8_t> scratch_;
};

} // namespace

Status checkGradcheckPrograms(const Plan &plan) {
  for (const char *program : {kInit, kForward, kForwardGrad})
    if (!plan.findProgram(program))
      return Status(StatusCode::kFailedPrecondition,
                    plan.displayName() + " has no program " + rt::quoted(program) +
                        " (programs: " + programList(plan) +
                        "); --gradcheck needs a gradient-check plan: compile the model with "
                        "`fusionc CONFIG.yaml --mode=grad -o PLAN.fplan` (programs init, "
                        "forward, forward_grad)");
  return Status::okStatus();
}

StatusOr<int> runGradcheck(std::shared_ptr<const Plan> plan, const GradcheckOptions &options,
                           std::FILE *out, std::FILE *err) {
  FUSION_RETURN_IF_ERROR(checkGradcheckPrograms(*plan));
  const std::string &name = plan->displayName();
  uint32_t forward = *plan->findProgram(kForward);
  uint32_t forwardGrad = *plan->findProgram(kForwardGrad);
  if (!(options.step > 0) || !(options.tolerance > 0) || options.samples == 0)
    return invalid("--gradcheck-step and --gradcheck-tolerance must be positive, "
                   "--gradcheck-samples at least 1");

  // The contract: loss outputs, gradient outputs that name Weight buffers.
  for (uint32_t program : {forward, forwardGrad}) {
    const BindingInfo *loss = plan->findOutput(program, kLossOutput);
    if (!loss)
      return invalid(name + ": program " + rt::quoted(plan->programNames()[program]) +
                     " has no output 'loss'");
    const BufferInfo &buffer = plan->buffers()[loss->buffer];
    if (buffer.dtype != schema::DType::F32 || !buffer.shape.empty())
      return invalid(name + ": program " + rt::quoted(plan->programNames()[program]) +
                     " output 'loss' is " + dtypeName(buffer.dtype) + formatShape(buffer.shape) +
                     ", expected f32[]");
  }
  std::vector<Parameter> params;
  std::map<std::string, size_t> byName;
  for (uint32_t id = 0; id < plan->buffers().size(); ++id) {
    const BufferInfo &buffer = plan->buffers()[id];
    if (buffer.role != schema::BufferRole::Weight)
      continue;
    if (!isFloatDType(buffer.dtype))
      return invalid(name + ": weight " + rt::quoted(buffer.name) + " is " +
                     dtypeName(buffer.dtype) + " (not a float dtype)");
    if (byName.count(buffer.name))
      return invalid(name + ": several Weight buffers are called " + rt::quoted(buffer.name));
    Parameter p;
    p.buffer = id;
    p.info = &buffer;
    p.kind = parameterKind(buffer);
    byName[buffer.name] = params.size();
    params.push_back(std::move(p));
  }
  if (params.empty())
    return invalid(name + " has no buffers of role Weight: nothing to check");
  std::map<size_t, uint32_t> gradBuffers;
  for (const BindingInfo &output : plan->programOutputs(forwardGrad)) {
    if (output.name.rfind(kGradPrefix, 0) != 0)
      continue;
    std::string paramName = output.name.substr(std::strlen(kGradPrefix));
    auto it = byName.find(paramName);
    if (it == byName.end())
      return invalid(name + ": program 'forward_grad' output " + rt::quoted(output.name) +
                     " names no Weight buffer");
    const BufferInfo &buffer = plan->buffers()[output.buffer];
    const BufferInfo &weight = *params[it->second].info;
    if (buffer.dtype != schema::DType::F32 || buffer.numElements != weight.numElements)
      return invalid(name + ": program 'forward_grad' output " + rt::quoted(output.name) + " is " +
                     dtypeName(buffer.dtype) + formatShape(buffer.shape) + ", expected f32" +
                     formatShape(weight.shape));
    gradBuffers[it->second] = output.buffer;
  }

  // Data: micro-batch 0 (step 0, rank 0 of 1, one micro-batch per step: inv_counts are
  // this batch's 1/N_k, as with fusion-run --data).
  std::optional<data::Batch> batch;
  bool forwardData = data::programTakesData(*plan, forward);
  bool gradData = data::programTakesData(*plan, forwardGrad);
  data::DataSpec spec;
  std::optional<int64_t> configSeed;
  if (const ConfigEntry *entry = plan->findConfig("seed");
      entry && entry->type == schema::AttrType::Int && entry->i >= 0)
    configSeed = entry->i;
  if (forwardData || gradData) {
    FUSION_ASSIGN_OR_RETURN(data::BatchShape shape,
                            data::programBatchShape(*plan, gradData ? forwardGrad : forward));
    if (forwardData && gradData) {
      FUSION_ASSIGN_OR_RETURN(data::BatchShape other, data::programBatchShape(*plan, forward));
      if (other.rows != shape.rows || other.seqLen != shape.seqLen ||
          other.mtpDepth != shape.mtpDepth)
        return invalid(name + ": programs 'forward' and 'forward_grad' bind data inputs of "
                              "different shapes");
    }
    auto configInt = [&](const char *key) -> std::optional<int64_t> {
      const ConfigEntry *entry = plan->findConfig(key);
      if (entry && entry->type == schema::AttrType::Int)
        return entry->i;
      return std::nullopt;
    };
    if (options.data) {
      FUSION_ASSIGN_OR_RETURN(spec, data::parseDataSpec(*options.data));
    } else {
      if (configSeed)
        spec.seed = static_cast<uint64_t>(*configSeed);
      std::optional<int64_t> pad = configInt("pad_token_id"), eos = configInt("eos_token_id");
      if (pad && *pad >= -1 && *pad <= INT32_MAX)
        spec.padId = static_cast<int32_t>(*pad);
      if (eos && *eos >= -1 && *eos <= INT32_MAX)
        spec.eosId = static_cast<int32_t>(*eos);
    }
    FUSION_ASSIGN_OR_RETURN(std::optional<int64_t> vocab, data::planVocabSize(*plan));
    if (options.vocab) {
      if (vocab && *vocab != *options.vocab)
        return invalid("--vocab " + std::to_string(*options.vocab) + " disagrees with the plan's " +
                       rt::quoted(data::kEmbeddingBuffer) + " (V = " + std::to_string(*vocab) +
                       ")");
      vocab = options.vocab;
    }
    if (!vocab)
      vocab = configInt("vocab_size");
    if (!vocab && spec.format == data::Format::kSynthetic)
      return invalid(name + ": synthetic data needs the vocabulary size: the plan has no " +
                     rt::quoted(data::kEmbeddingBuffer) + " buffer; pass --vocab N");
    FUSION_ASSIGN_OR_RETURN(std::unique_ptr<data::Source> source, data::openSource(spec, vocab));
    FUSION_ASSIGN_OR_RETURN(batch, data::makeBatch(*source, spec, shape, data::BatchCoord{}));
  }
  // Coordinates are drawn with the config's seed (the data's, with --data).
  uint64_t seed = batch ? spec.seed : static_cast<uint64_t>(configSeed.value_or(1234));

  auto started = std::chrono::steady_clock::now();
  FUSION_ASSIGN_OR_RETURN(std::unique_ptr<Executor> executor,
                          createExecutor(plan, options.backend));
  LossEvaluator evaluator(*executor, batch ? &*batch : nullptr);
  FUSION_RETURN_IF_ERROR(executor->run(kInit));
  std::vector<uint8_t> bytes;

  // forward_grad on the current weights and biases: the gradients (and its loss).
  auto runGradients = [&]() -> StatusOr<double> {
    FUSION_RETURN_IF_ERROR(evaluator.feed(kForwardGrad));
    FUSION_RETURN_IF_ERROR(executor->run(kForwardGrad));
    FUSION_RETURN_IF_ERROR(executor->readOutput(kForwardGrad, kLossOutput, bytes));
    float loss;
    std::memcpy(&loss, bytes.data(), 4);
    for (size_t k = 0; k < params.size(); ++k) {
      Parameter &p = params[k];
      auto grad = gradBuffers.find(k);
      if (grad == gradBuffers.end())
        continue;
      FUSION_RETURN_IF_ERROR(executor->readBuffer(grad->second, bytes));
      p.g.resize(p.info->numElements);
      double sum = 0;
      for (uint64_t i = 0; i < p.info->numElements; ++i) {
        p.g[i] = loadElement(schema::DType::F32, bytes, i);
        sum += p.g[i] * p.g[i];
      }
      p.gRms = p.info->numElements ? std::sqrt(sum / double(p.info->numElements)) : 0;
    }
    return static_cast<double>(loss);
  };
  for (Parameter &p : params) {
    FUSION_RETURN_IF_ERROR(executor->readBuffer(p.buffer, p.original));
    p.w.resize(p.info->numElements);
    double sum = 0;
    for (uint64_t i = 0; i < p.info->numElements; ++i) {
      p.w[i] = loadElement(p.info->dtype, p.original, i);
      sum += p.w[i] * p.w[i];
    }
    p.wRms = p.info->numElements ? std::sqrt(sum / double(p.info->numElements)) : 0;
  }
  FUSION_ASSIGN_OR_RETURN(double gradLoss, runGradients());
  FUSION_ASSIGN_OR_RETURN(double loss0, evaluator.loss());
  Checker checker(options, evaluator, params);

  // Loss noise: second differences L(w+δ) + L(w−δ) − 2L(w) with a tiny step δ at probe
  // coordinates spread over the parameters. Their true value L''δ² is negligible, so they
  // are rounding noise of three evaluations; √(2/3) of that is the noise of the two in a
  // central difference. (Not the residual against g: a wrong gradient would inflate it.)
  double lossUlp =
      std::nextafter(static_cast<float>(std::fabs(loss0)), std::numeric_limits<float>::infinity()) -
      static_cast<float>(std::fabs(loss0));
  double noise = lossUlp;
  std::vector<size_t> withGrad;
  for (size_t k = 0; k < params.size(); ++k)
    if (!params[k].g.empty() && params[k].info->numElements)
      withGrad.push_back(k);
  std::vector<uint8_t> scratch;
  for (size_t j = 0; j < kNoiseProbes && !withGrad.empty(); ++j) {
    const Parameter &p = params[withGrad[(withGrad.size() * j) / kNoiseProbes]];
    uint64_t i = pickCoordinates(p, 1, 0, 0).front();
    scratch = p.original;
    FUSION_ASSIGN_OR_RETURN(
        auto d, evaluator.centralDifference(p, i, checker.stepFor(p, i, kProbeStep), scratch));
    if (!std::isfinite(d.dL))
      return Status(StatusCode::kInternal,
                    name + ": the loss is not finite near the initial weights");
    noise = std::max(noise, std::fabs(d.sumL - 2 * loss0) * std::sqrt(2.0 / 3.0));
  }
  checker.setNoise(noise);

  std::fprintf(out,
               "gradcheck %s: %zu parameters, %" PRIu64 " coordinates each (largest |g| + "
               "seeded random)\n",
               name.c_str(), params.size(), options.samples);
  std::fprintf(out,
               "loss = %.6f (forward), %.6f (forward_grad); loss noise eps = %.3e "
               "(%zu probes)\n",
               loss0, gradLoss, noise, kNoiseProbes);
  std::fprintf(out,
               "step h = %g*max(|w|, rms(w), %g), halved on failure; pass if |fd - g| <= "
               "%g*|g| + %g*eps/(2h)\n",
               options.step, kMinScale, options.tolerance, kNoiseMargin);
  checker.printHeader(out);

  std::vector<Row> rows;
  for (size_t k = 0; k < params.size(); ++k) {
    const Parameter &p = params[k];
    if (p.g.empty()) {
      Row row;
      row.param = k;
      row.note = "no output 'grad:" + p.info->name + "' in forward_grad";
      checker.printRow(out, row);
      rows.push_back(row);
      continue;
    }
    for (uint64_t i : pickCoordinates(p, options.samples, seed, k)) {
      FUSION_ASSIGN_OR_RETURN(Row row, checker.check(k, i, /*frozen=*/false));
      checker.printRow(out, row);
      rows.push_back(std::move(row));
    }
  }

  // Coordinates whose quotient changed with every step: again with every token's expert
  // selection pinned by the router biases (favouring the coordinate's own expert for routed
  // expert weights and router rows), and the analytic gradient recomputed there.
  std::vector<size_t> recheck;
  for (size_t r = 0; r < rows.size(); ++r)
    if (rows[r].verdict == Verdict::kRecheck)
      recheck.push_back(r);
  std::string frozenError;
  std::vector<RouteBias> biases = findRouteBiases(*plan, {forward, forwardGrad}, frozenError);
  if (biases.empty() && frozenError.empty())
    frozenError = "the plan has no moe_route";
  if (!recheck.empty() && !frozenError.empty()) {
    for (size_t r : recheck) {
      rows[r].verdict = Verdict::kFail;
      rows[r].note += " impossible: " + frozenError;
    }
  } else if (!recheck.empty()) {
    for (RouteBias &bias : biases)
      FUSION_RETURN_IF_ERROR(executor->readBuffer(bias.buffer, bias.original));
    std::fprintf(out,
                 "\nrechecked with the MoE routing frozen (router biases %g*(E - rank): every "
                 "token selects the same experts, the coordinate's own expert first):\n",
                 static_cast<double>(kFreezeBias));
    checker.printHeader(out);
    // Group by the favoured expert (the leading index of a parameter with one slice per
    // expert: routed expert weights [E, m, n], router rows [E, D]): one forward_grad each.
    std::map<int64_t, std::vector<size_t>> groups;
    for (size_t r : recheck) {
      const Parameter &p = params[rows[r].param];
      int64_t favoured = 0;
      if (p.info->shape.size() >= 2 && p.info->numElements > 0 &&
          std::any_of(biases.begin(), biases.end(),
                      [&](const RouteBias &b) { return b.experts == p.info->shape[0]; }))
        favoured = static_cast<int64_t>(rows[r].index /
                                        (p.info->numElements / uint64_t(p.info->shape[0])));
      groups[favoured].push_back(r);
    }
    for (const auto &[favoured, members] : groups) {
      for (const RouteBias &bias : biases) {
        std::vector<float> values = frozenBias(bias, favoured);
        FUSION_RETURN_IF_ERROR(
            executor->writeBuffer(bias.buffer, values.data(), values.size() * sizeof(float)));
      }
      FUSION_RETURN_IF_ERROR(runGradients().status());
      for (size_t r : members) {
        FUSION_ASSIGN_OR_RETURN(Row row, checker.check(rows[r].param, rows[r].index, true));
        checker.printRow(out, row);
        row.stepDependent = row.stepDependent || rows[r].stepDependent;
        rows[r] = std::move(row);
      }
    }
    for (const RouteBias &bias : biases)
      FUSION_RETURN_IF_ERROR(
          executor->writeBuffer(bias.buffer, bias.original.data(), bias.original.size()));
    for (const RouteBias &bias : biases) {
      FUSION_RETURN_IF_ERROR(executor->readBuffer(bias.buffer, bytes));
      if (bytes != bias.original)
        return Status(StatusCode::kInternal, name + ": a router bias was not restored");
    }
  }

  // The weights must be exactly as init left them.
  FUSION_ASSIGN_OR_RETURN(double lossAfter, evaluator.loss());
  for (const Parameter &p : params) {
    FUSION_RETURN_IF_ERROR(executor->readBuffer(p.buffer, bytes));
    if (bytes != p.original)
      return Status(StatusCode::kInternal,
                    name + ": weight " + rt::quoted(p.info->name) + " was not restored");
  }
  if (lossAfter != loss0)
    std::fprintf(err,
                 "fusion-run: warning: forward is not deterministic: loss %.9g before, "
                 "%.9g after the check\n",
                 loss0, lossAfter);

  // Summary: per kind, then the totals.
  struct KindStats {
    size_t params = 0, coords = 0, failed = 0, smallerStep = 0, frozen = 0, noiseLimited = 0;
    double maxRelTop = 0;      // over the largest-|g| coordinates
    double maxRelResolved = 0; // over coordinates whose noise bound is <= |g|/4
    double maxRatio = 0;       // err / tol over all coordinates
  };
  std::map<std::string, KindStats> kinds;
  std::set<size_t> failedParams;
  size_t failed = 0, smallerStep = 0, frozen = 0, coords = 0;
  size_t lastParam = SIZE_MAX;
  for (const Row &row : rows) {
    KindStats &s = kinds[params[row.param].kind];
    bool first = row.param != lastParam;
    lastParam = row.param;
    if (first)
      ++s.params;
    bool ok = row.verdict == Verdict::kPass;
    if (!ok) {
      ++s.failed;
      ++failed;
    }
    if (!ok)
      failedParams.insert(row.param);
    if (row.levels.empty())
      continue;
    ++s.coords;
    ++coords;
    if (row.frozen) {
      ++s.frozen;
      ++frozen;
    } else if (row.stepDependent) {
      ++s.smallerStep;
      ++smallerStep;
    }
    double rel = relError(row.level().fd, row.g);
    double tol = checker.tolerance(row.g, row.level().nu);
    bool resolved = row.level().nu <= std::fabs(row.g) / 4;
    if (!resolved)
      ++s.noiseLimited;
    if (first)
      s.maxRelTop = std::max(s.maxRelTop, rel);
    if (resolved)
      s.maxRelResolved = std::max(s.maxRelResolved, rel);
    if (tol > 0)
      s.maxRatio = std::max(s.maxRatio, row.err() / tol);
  }
  std::fprintf(out, "\n%-22s %6s %6s %6s %8s %6s %7s %13s %13s %9s\n", "kind", "params", "coords",
               "failed", "smaller", "frozen", "noisy", "max rel top", "max rel res", "max e/tol");
  for (const auto &[kind, s] : kinds)
    std::fprintf(out, "%-22s %6zu %6zu %6zu %8zu %6zu %7zu %13s %13s %9s\n", kind.c_str(), s.params,
                 s.coords, s.failed, s.smallerStep, s.frozen, s.noiseLimited,
                 formatNumber(s.maxRelTop, "%.2e").c_str(),
                 formatNumber(s.maxRelResolved, "%.2e").c_str(),
                 formatNumber(s.maxRatio, "%.3f").c_str());
  std::fprintf(out,
               "(smaller: passed at a smaller step after a selection change; frozen: rechecked "
               "with the routing frozen; noisy: noise bound > |g|/4; max rel top: over the "
               "largest-|g| coordinates; max rel res: over coordinates with noise bound <= "
               "|g|/4)\n");
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(out,
               "gradcheck: %zu of %zu parameters passed, %zu coordinates, %zu failed, %zu "
               "passed at a smaller step, %zu rechecked with the routing frozen (%" PRIu64
               " forward runs, %.1f s)\n",
               params.size() - failedParams.size(), params.size(), coords, failed, smallerStep,
               frozen, evaluator.runs(), seconds);
  std::fprintf(out, "gradcheck: %s\n", failed ? "FAIL" : "PASS");
  return failed ? 1 : 0;
}

} // namespace fusion::rt::train
