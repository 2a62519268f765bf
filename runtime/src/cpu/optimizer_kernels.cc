//===- optimizer_kernels.cc - Step control and the optimizer updates ------===//
//
// The optimizer kinds of docs/op-kinds.md ("Training kinds"; MODEL.md §5, §12, §13). One
// optimizer step runs step_control once, then the update kinds, which all read its ctl:
//
//   step_control    (step = (s, t) i32, loss, grad_sumsq) -> ctl [8] f32 =
//                   [f(s), clip, ok, norm, t, s, 0, 0] with the WSD factor
//                     f(s) = (s+1)/N_w                          s < N_w
//                            1                                  s < N_w + N_st
//                            ω = (s − N_w − N_st + 1)/N_d:      s < N_w + N_st + N_d
//                              1 − (1−r)ω (linear)  |  r + (1−r)(1 + cos πω)/2 (cosine)
//                            r                                  afterwards,
//                   norm = sqrt(grad_sumsq), clip = grad_clip/(norm + 1e-6) when grad_clip > 0
//                   and norm > grad_clip, else 1; ok = 1 when loss and norm are finite.
//   adamw_update    CautiousAdamW, elementwise, with g ← clip·g and η = lr·f(s):
//                     m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
//                     u = (m/(1−β1ᵗ)) / (sqrt(v/(1−β2ᵗ)) + ε)               (t = ctl[4])
//                     [cautious_update: φ = 1[u⊙g > 0]; u ← u⊙φ·numel/(Σφ + 1)]
//                     W ← W − ηλ(mask⊙W) − ηu
//   normuon_update  NorMuon per [m, n] matrix (leading dims: independent units), g ← clip·g:
//                     M ← β1 M + (1−β1) g;  G̃ = (1−β1) g + β1 M (nesterov) or M
//                     O = NS5(G̃)
//                     [normalize: v ← β2 v + (1−β2) mean_j O_ij²;  Ô = O/(sqrt(v) + 1e-10) per
//                      row;  Ô ← Ô·‖O‖_F/(‖Ô‖_F + 1e-10)]   (else Ô = O, v unchanged)
//                     U = Ô·sqrt(max(1, m/n));  W ← W − ηλ(mask⊙W) − ηU
//                   NS5, (a, b, c) = (3.4445, −4.7750, 2.0315): Y = G̃ᵀ if m > n else G̃;
//                   X = bf16(Y/(‖Y‖_F + 1e-7)); 5 times: Ā = bf16(X Xᵀ), B̄ = bf16(b·Ā + c·Ā Ā),
//                   X ← bf16(a·X + B̄ X); O = fp32(X) (transposed back if m > n). Every product
//                   is an fp32 sgemm (parallelSgemm on the calling thread) of bf16-valued
//                   operands; each right-hand side is formed in fp32 and rounded to bf16 once
//                   (round to nearest even).
//   normuon_norm, normuon_prepare, normuon_rows, normuon_finish: normuon_update as the plans
//                   run it (fusion-lower-to-plan; docs/op-kinds.md), the Newton–Schulz
//                   products being the plan's bf16 GEMMs between prepare and rows:
//                     norm     sumsq[r] = (hi, lo) of s_r = Σ_j G̃_rj² (fp64; hi = f32(s_r),
//                              lo = f32(s_r − hi)), G̃ and M′ exactly as normuon_update forms
//                              them
//                     prepare  M ← M′; X [..., p, q] = bf16(Y/(f32(sqrt(Σ_r (hi_r + lo_r))) +
//                              1e-7)), Y = G̃ or G̃ᵀ (m > n)
//                     rows     (NorMuon) O = fp32(X) oriented back; S_r = Σ_j O², v ← β2 v +
//                              (1−β2) S_r/n, H_r = Σ_j (O/(sqrt(v)+1e-10))²; rowsums[r] =
//                              (f32(S_r), f32(H_r))
//                     finish   U = O/(sqrt(v_r)+1e-10)·sqrt(ΣS)/(sqrt(ΣH)+1e-10)·shape (or
//                              O·shape for Muon, v and rowsums unread); W as normuon_update.
//                   The per-row sums are what lets a GPU run each of them grid-parallel; they
//                   round the rescale's sums to f32 per row (≤ 2⁻²⁴ relative in U), else the
//                   arithmetic is normuon_update's. ok = 0: norm and rows write zero sums,
//                   prepare zeroes X (no NaN reaches the GEMMs), state stays unchanged.
//   moe_bias_update if ok: window += step_counts; when (s+1) mod U = 0 (s = ctl[5]):
//                   c̄ = mean(window), bias_i −= γ_b where window_i > (1+upper)c̄, += γ_b where
//                   window_i < (1−lower)c̄, window = 0.
//
// The weight-decay mask (both optimizers; W the pre-update master): 1 without cautious_wd;
// mode grad: 1[g⊙W > 0] with g the clipped gradient; mode update: 1[U⊙W ≥ 0] with U the
// update that is subtracted (AdamW: u after the cautious-update mask).
//
// When ctl[2] (ok) is 0 the update kinds change nothing: their outputs end up equal to their
// state inputs (a copy when the plan did not alias them). The update kinds are in place: each
// state output is either the very buffer of its state input or a buffer overlapping no input.
// Elementwise math is done in double and rounded once per stored value (fp32 or better, as
// every reference kernel); only NS5 follows the fp32/bf16 rounding points above, which are
// part of the method.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace fusion::rt::cpu {

namespace {

using schema::DType;

/// Elements per parallel work item of the elementwise updates.
constexpr uint64_t kChunk = 1 << 14;
/// Largest step / update count stored in ctl: f32 holds every integer up to 2^24 exactly.
constexpr int64_t kMaxExactStep = int64_t(1) << 24;
constexpr double kPi = 3.14159265358979323846;

std::string formatNumber(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.9g", value);
  return text;
}

Status attrError(const std::string &message) {
  return Status(StatusCode::kInvalidArgument, message);
}

/// Number attribute `name` (required) when finite and `valid`, else an error saying it must
/// be `what`.
template <typename Pred>
StatusOr<double> checkedNumber(const KernelContext &context, std::string_view name,
                               const char *what, Pred valid) {
  FUSION_ASSIGN_OR_RETURN(double value, context.floatAttr(name));
  if (!std::isfinite(value) || !valid(value))
    return attrError("attribute " + quoted(name) + " must be " + what + ", got " +
                     formatNumber(value));
  return value;
}

/// A β attribute: in [0, 1).
StatusOr<double> betaAttr(const KernelContext &context, std::string_view name) {
  return checkedNumber(context, name, "in [0, 1)", [](double v) { return v >= 0 && v < 1; });
}

/// A non-negative attribute (learning rate, weight decay, bias speed, dead band).
StatusOr<double> nonNegativeAttr(const KernelContext &context, std::string_view name) {
  return checkedNumber(context, name, "finite and >= 0", [](double v) { return v >= 0; });
}

/// The cautious weight-decay setting shared by both optimizers.
enum class DecayMask { kAll, kGrad, kUpdate };

StatusOr<DecayMask> decayMaskAttrs(const KernelContext &context) {
  FUSION_ASSIGN_OR_RETURN(bool cautious, context.flagAttr("cautious_wd"));
  if (!cautious)
    return DecayMask::kAll;
  FUSION_ASSIGN_OR_RETURN(std::string mode, context.stringAttr("cautious_wd_mode"));
  if (mode == "grad")
    return DecayMask::kGrad;
  if (mode == "update")
    return DecayMask::kUpdate;
  return attrError("attribute 'cautious_wd_mode' must be \"grad\" or \"update\", got " +
                   quoted(mode));
}

/// mask ∈ {0, 1} of element with clipped gradient g, update u and pre-update weight w.
inline double decayMask(DecayMask mode, double g, double u, double w) {
  switch (mode) {
  case DecayMask::kGrad:
    return g * w > 0 ? 1.0 : 0.0;
  case DecayMask::kUpdate:
    return u * w >= 0 ? 1.0 : 0.0;
  case DecayMask::kAll:
    break;
  }
  return 1.0;
}

/// Error unless `tensor` is f32 with exactly `shape`.
Status expectF32Shape(const KernelContext &context, const Tensor &tensor, const std::string &role,
                      const std::vector<int64_t> &shape) {
  FUSION_RETURN_IF_ERROR(context.expectDType(tensor, role, DType::F32));
  return context.expectShape(tensor, role, shape);
}

/// What the update kinds read of step_control's ctl.
struct Control {
  double lrFactor; // f(s)
  double clip;     // gradient scale
  bool ok;         // apply the update
  double t;        // AdamW update count
  double s;        // optimizer step
};

/// Reads ctl (already checked to be f32 [8]). On an applied step the factors must be finite.
StatusOr<Control> readControl(const Tensor &ctl, const std::string &role) {
  const float *c = static_cast<const float *>(ctl.data);
  if (c[2] != 0 && c[2] != 1)
    return tensorError(ctl, role, "element 2 (ok) must be 0 or 1, got " + formatNumber(c[2]));
  Control control{c[0], c[1], c[2] == 1, c[4], c[5]};
  if (control.ok && !(std::isfinite(control.lrFactor) && std::isfinite(control.clip)))
    return tensorError(ctl, role,
                       "has a non-finite schedule factor (" + formatNumber(c[0]) +
                           ") or clip scale (" + formatNumber(c[1]) + ") on an applied step");
  return control;
}

/// The update kinds are in place: output j is input `stateInputs[j]` itself (same buffer) or
/// a buffer of its own. runKernel has already copied every input that overlaps an output
/// other than by exact aliasing, so the only aliasing left to reject is an output that is
/// exactly some other input (which the kernels could read after writing it).
Status checkInPlaceOutputs(const KernelContext &context, const std::vector<size_t> &stateInputs) {
  for (size_t j = 0; j < context.outputs.size(); ++j) {
    const Tensor &out = context.outputs[j];
    if (out.info->numElements == 0)
      continue;
    for (size_t k = 0; k < context.inputs.size(); ++k)
      if (k != stateInputs[j] && context.inputs[k].data == out.data)
        return tensorError(out, "output " + std::to_string(j),
                           "is the buffer of input " + std::to_string(k) +
                               "; an update writes only its state inputs in place (input " +
                               std::to_string(stateInputs[j]) + ")");
  }
  return Status::okStatus();
}

/// A skipped step: every state output holds its state input.
void passThrough(const KernelContext &context, const std::vector<size_t> &stateInputs) {
  for (size_t j = 0; j < context.outputs.size(); ++j) {
    const Tensor &in = context.inputs[stateInputs[j]], &out = context.outputs[j];
    if (in.data != out.data && in.info->byteSize)
      std::memmove(out.data, in.data, in.info->byteSize);
  }
}

/// f32 -> nearest-even bf16 -> f32.
inline float roundBf16(float value) { return bf16ToFloat(floatToBf16(value)); }

/// The WSD factor f(s) of MODEL.md §13.
double scheduleFactor(int64_t s, int64_t warmup, int64_t stable, int64_t decay, double minRatio,
                      bool cosine) {
  if (s < warmup)
    return static_cast<double>(s + 1) / static_cast<double>(warmup);
  if (s < warmup + stable)
    return 1.0;
  if (s < warmup + stable + decay) {
    double omega = static_cast<double>(s - warmup - stable + 1) / static_cast<double>(decay);
    return cosine ? minRatio + (1 - minRatio) * (1 + std::cos(kPi * omega)) / 2
                  : 1 - (1 - minRatio) * omega;
  }
  return minRatio;
}

/// Row-major c[rows, cols] = a[rows, inner] · op(b), op(b) = bᵀ when `transB` (b [cols, inner])
/// else b [inner, cols]; fp32 accumulation, on the calling thread (the caller is a parallel
/// loop over matrices).
void sgemm(const float *a, const float *b, float *c, int rows, int cols, int inner, bool transB) {
  parallelSgemm(nullptr, false, transB, rows, cols, inner, 1.0f, a, inner, b,
                transB ? inner : cols, 0.0f, c, cols);
}

/// Scratch of one NS5 evaluation, reused across the units a thread processes.
struct NsWorkspace {
  std::vector<float> x, a, p, bx;
};

/// O = NS5(G̃) for one m×n matrix (MODEL.md §12), written to `out` [m, n].
void newtonSchulz5(const float *gt, int64_t m, int64_t n, float *out, NsWorkspace &ws) {
  constexpr float kA = 3.4445f, kB = -4.7750f, kC = 2.0315f;
  const bool transpose = m > n;
  const int64_t p = std::min(m, n), q = std::max(m, n);
  ws.x.resize(p * q);
  ws.a.resize(p * p);
  ws.p.resize(p * p);
  ws.bx.resize(p * q);
  float *x = ws.x.data(), *a = ws.a.data(), *pp = ws.p.data(), *bx = ws.bx.data();
  // Y (p×q) = G̃ᵀ when m > n; its Frobenius norm in fp32 (accumulated in double).
  double sumSq = 0;
  for (int64_t i = 0; i < p; ++i)
    for (int64_t j = 0; j < q; ++j) {
      float y = transpose ? gt[j * n + i] : gt[i * n + j];
      x[i * q + j] = y;
      sumSq += static_cast<double>(y) * y;
    }
  const float denom = static_cast<float>(std::sqrt(sumSq)) + 1e-7f;
  for (int64_t i = 0; i < p * q; ++i)
    x[i] = roundBf16(x[i] / denom);
  const int ip = static_cast<int>(p), iq = static_cast<int>(q);
  for (int iter = 0; iter < 5; ++iter) {
    sgemm(x, x, a, ip, ip, iq, /*transB=*/true); // X Xᵀ
    for (int64_t i = 0; i < p * p; ++i)
      a[i] = roundBf16(a[i]);
    sgemm(a, a, pp, ip, ip, ip, /*transB=*/false); // Ā Ā
    for (int64_t i = 0; i < p * p; ++i) {
      float rhs = kB * a[i] + kC * pp[i];
      a[i] = roundBf16(rhs); // B̄ (Ā is not needed any more)
    }
    sgemm(a, x, bx, ip, iq, ip, /*transB=*/false); // B̄ X
    for (int64_t i = 0; i < p * q; ++i) {
      float rhs = kA * x[i] + bx[i];
      x[i] = roundBf16(rhs);
    }
  }
  for (int64_t i = 0; i < p; ++i)
    for (int64_t j = 0; j < q; ++j)
      (transpose ? out[j * n + i] : out[i * n + j]) = x[i * q + j];
}

} // namespace

Status stepControlKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 1));
  FUSION_ASSIGN_OR_RETURN(int64_t warmup, context.intAttr("warmup_steps"));
  FUSION_ASSIGN_OR_RETURN(int64_t stable, context.intAttr("stable_steps"));
  FUSION_ASSIGN_OR_RETURN(int64_t decay, context.intAttr("decay_steps"));
  FUSION_ASSIGN_OR_RETURN(double minRatio,
                          checkedNumber(context, "min_lr_ratio", "in [0, 1]",
                                        [](double v) { return v >= 0 && v <= 1; }));
  FUSION_ASSIGN_OR_RETURN(std::string decayShape, context.stringAttr("decay"));
  FUSION_ASSIGN_OR_RETURN(double gradClip,
                          checkedNumber(context, "grad_clip", "finite (<= 0 = off)",
                                        [](double) { return true; }));
  struct StepCount {
    const char *name;
    int64_t value, low;
  };
  for (const StepCount &count : {StepCount{"warmup_steps", warmup, 0},
                                 StepCount{"stable_steps", stable, 0},
                                 StepCount{"decay_steps", decay, 1}})
    if (count.value < count.low || count.value > INT32_MAX)
      return attrError("attribute " + quoted(count.name) + " must be in [" +
                       std::to_string(count.low) + ", " + std::to_string(INT32_MAX) + "], got " +
                       std::to_string(count.value));
  if (decayShape != "linear" && decayShape != "cosine")
    return attrError("attribute 'decay' must be \"linear\" or \"cosine\", got " +
                     quoted(decayShape));
  const Tensor &step = context.inputs[0], &loss = context.inputs[1],
               &sumSq = context.inputs[2], &ctl = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectDType(step, "input 0 (step)", DType::I32));
  FUSION_RETURN_IF_ERROR(context.expectShape(step, "input 0 (step)", {2}));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, loss, "input 1 (loss)", {}));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, sumSq, "input 2 (grad_sumsq)", {}));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, ctl, "output 0 (ctl)", {8}));

  const int64_t s = loadIndex(step, 0), t = loadIndex(step, 1);
  if (s < 0 || s > kMaxExactStep || t < 0 || t > kMaxExactStep)
    return tensorError(step, "input 0 (step)",
                       "holds (s, t) = (" + std::to_string(s) + ", " + std::to_string(t) +
                           "); both must be in [0, 2^24] (exact in the f32 ctl)");
  const float lossValue = *static_cast<const float *>(loss.data);
  const double norm = std::sqrt(static_cast<double>(*static_cast<const float *>(sumSq.data)));
  const bool ok = std::isfinite(lossValue) && std::isfinite(norm);
  const double clip = gradClip > 0 && norm > gradClip ? gradClip / (norm + 1e-6) : 1.0;
  const double f = scheduleFactor(s, warmup, stable, decay, minRatio, decayShape == "cosine");
  const float out[8] = {static_cast<float>(f),    static_cast<float>(clip),
                        ok ? 1.0f : 0.0f,         static_cast<float>(norm),
                        static_cast<float>(t),    static_cast<float>(s),
                        0.0f,                     0.0f};
  std::memcpy(ctl.data, out, sizeof(out));
  return Status::okStatus();
}

Status adamwUpdateKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(5, 3));
  FUSION_ASSIGN_OR_RETURN(double lr, nonNegativeAttr(context, "lr"));
  FUSION_ASSIGN_OR_RETURN(double beta1, betaAttr(context, "beta1"));
  FUSION_ASSIGN_OR_RETURN(double beta2, betaAttr(context, "beta2"));
  FUSION_ASSIGN_OR_RETURN(double eps, checkedNumber(context, "eps", "finite and > 0",
                                                    [](double v) { return v > 0; }));
  FUSION_ASSIGN_OR_RETURN(double weightDecay, nonNegativeAttr(context, "weight_decay"));
  FUSION_ASSIGN_OR_RETURN(DecayMask maskMode, decayMaskAttrs(context));
  FUSION_ASSIGN_OR_RETURN(bool cautiousUpdate, context.flagAttr("cautious_update"));
  const Tensor &g = context.inputs[0], &ctl = context.inputs[1], &w = context.inputs[2],
               &m = context.inputs[3], &v = context.inputs[4];
  FUSION_RETURN_IF_ERROR(context.expectDType(w, "input 2 (w)", DType::F32));
  const std::vector<int64_t> &shape = w.info->shape;
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, g, "input 0 (g)", shape));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, ctl, "input 1 (ctl)", {8}));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, m, "input 3 (m)", shape));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, v, "input 4 (v)", shape));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, context.outputs[0], "output 0 (w)", shape));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, context.outputs[1], "output 1 (m)", shape));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, context.outputs[2], "output 2 (v)", shape));
  const std::vector<size_t> stateInputs = {2, 3, 4};
  FUSION_RETURN_IF_ERROR(checkInPlaceOutputs(context, stateInputs));
  FUSION_ASSIGN_OR_RETURN(Control control, readControl(ctl, "input 1 (ctl)"));
  if (!control.ok) {
    passThrough(context, stateInputs);
    return Status::okStatus();
  }
  if (!(control.t >= 1))
    return tensorError(ctl, "input 1 (ctl)",
                       "element 4 (t) is " + formatNumber(control.t) +
                           "; the AdamW update count must be >= 1 on an applied step");

  const uint64_t n = w.info->numElements;
  const float *gIn = static_cast<const float *>(g.data);
  const float *wIn = static_cast<const float *>(w.data);
  const float *mIn = static_cast<const float *>(m.data);
  const float *vIn = static_cast<const float *>(v.data);
  float *wOut = static_cast<float *>(context.outputs[0].data);
  float *mOut = static_cast<float *>(context.outputs[1].data);
  float *vOut = static_cast<float *>(context.outputs[2].data);
  const float clip = static_cast<float>(control.clip);
  const double eta = lr * control.lrFactor;
  const double correction1 = 1 - std::pow(beta1, control.t);
  const double correction2 = 1 - std::pow(beta2, control.t);
  // The new moments (stored f32) and the raw update u of element i; g is the clipped gradient.
  struct Moments {
    double g, m, v, u;
  };
  auto moments = [&](uint64_t i) {
    Moments r;
    r.g = clip * gIn[i];
    r.m = static_cast<float>(beta1 * mIn[i] + (1 - beta1) * r.g);
    r.v = static_cast<float>(beta2 * vIn[i] + (1 - beta2) * r.g * r.g);
    r.u = (r.m / correction1) / (std::sqrt(r.v / correction2) + eps);
    return r;
  };
  // Cautious update: φ = 1[u⊙g > 0] over the whole tensor, then u ← u⊙φ·numel/(Σφ + 1).
  double updateScale = 1;
  if (cautiousUpdate) {
    std::atomic<uint64_t> agreeing{0};
    context.parallelFor(n, kChunk, [&](uint64_t begin, uint64_t end) {
      uint64_t count = 0;
      for (uint64_t i = begin; i < end; ++i) {
        Moments r = moments(i);
        count += r.u * r.g > 0;
      }
      agreeing += count;
    });
    updateScale = static_cast<double>(n) / (static_cast<double>(agreeing.load()) + 1);
  }
  context.parallelFor(n, kChunk, [&](uint64_t begin, uint64_t end) {
    for (uint64_t i = begin; i < end; ++i) {
      Moments r = moments(i);
      double u = r.u;
      if (cautiousUpdate)
        u = r.u * r.g > 0 ? u * updateScale : 0.0;
      const double wOld = wIn[i];
      const double mask = decayMask(maskMode, r.g, u, wOld);
      wOut[i] = static_cast<float>(wOld - eta * weightDecay * mask * wOld - eta * u);
      mOut[i] = static_cast<float>(r.m);
      vOut[i] = static_cast<float>(r.v);
    }
  });
  return Status::okStatus();
}

Status normuonUpdateKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(5, 3));
  FUSION_ASSIGN_OR_RETURN(double lr, nonNegativeAttr(context, "lr"));
  FUSION_ASSIGN_OR_RETURN(double beta1, betaAttr(context, "beta1"));
  FUSION_ASSIGN_OR_RETURN(double beta2, betaAttr(context, "beta2"));
  FUSION_ASSIGN_OR_RETURN(double weightDecay, nonNegativeAttr(context, "weight_decay"));
  FUSION_ASSIGN_OR_RETURN(bool nesterov, context.flagAttr("nesterov"));
  FUSION_ASSIGN_OR_RETURN(int64_t normalize, context.intAttr("normalize"));
  if (normalize != 0 && normalize != 1)
    return attrError("attribute 'normalize' must be 1 (NorMuon) or 0 (Muon), got " +
                     std::to_string(normalize));
  FUSION_ASSIGN_OR_RETURN(DecayMask maskMode, decayMaskAttrs(context));
  const Tensor &g = context.inputs[0], &ctl = context.inputs[1], &w = context.inputs[2],
               &M = context.inputs[3], &v = context.inputs[4];
  FUSION_RETURN_IF_ERROR(context.expectDType(g, "input 0 (g)", DType::F32));
  const std::vector<int64_t> &shape = g.info->shape;
  if (shape.size() < 2)
    return tensorError(g, "input 0 (g)", "must have rank >= 2 ([..., m, n])");
  const int64_t rows = shape[shape.size() - 2], cols = shape.back();
  if (rows < 1 || cols < 1)
    return tensorError(g, "input 0 (g)", "must have non-empty [m, n] matrices");
  if (std::max(rows, cols) > INT_MAX)
    return tensorError(g, "input 0 (g)",
                       "has a matrix dimension beyond the cpu backend's 32-bit BLAS limit");
  const std::vector<int64_t> rowShape(shape.begin(), shape.end() - 1);
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, ctl, "input 1 (ctl)", {8}));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, w, "input 2 (w)", shape));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, M, "input 3 (M)", shape));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, v, "input 4 (v)", rowShape));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, context.outputs[0], "output 0 (w)", shape));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, context.outputs[1], "output 1 (M)", shape));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, context.outputs[2], "output 2 (v)", rowShape));
  const std::vector<size_t> stateInputs = {2, 3, 4};
  FUSION_RETURN_IF_ERROR(checkInPlaceOutputs(context, stateInputs));
  FUSION_ASSIGN_OR_RETURN(Control control, readControl(ctl, "input 1 (ctl)"));
  if (!control.ok) {
    passThrough(context, stateInputs);
    return Status::okStatus();
  }

  const uint64_t units = dimProduct(shape, 0, shape.size() - 2);
  const uint64_t m = static_cast<uint64_t>(rows), n = static_cast<uint64_t>(cols), mn = m * n;
  const float *gIn = static_cast<const float *>(g.data);
  const float *wIn = static_cast<const float *>(w.data);
  const float *mIn = static_cast<const float *>(M.data);
  const float *vIn = static_cast<const float *>(v.data);
  float *wOut = static_cast<float *>(context.outputs[0].data);
  float *mOut = static_cast<float *>(context.outputs[1].data);
  float *vOut = static_cast<float *>(context.outputs[2].data);
  const float clip = static_cast<float>(control.clip);
  const double eta = lr * control.lrFactor;
  const double shapeFactor = std::sqrt(std::max(1.0, static_cast<double>(m) / n));
  context.parallelFor(units, 1, [&](uint64_t begin, uint64_t end) {
    NsWorkspace ws;
    std::vector<float> clipped(mn), momentum(mn), nesterovInput(mn), o(mn), rowV(m);
    std::vector<double> update(mn);
    for (uint64_t unit = begin; unit < end; ++unit) {
      const uint64_t base = unit * mn, rowBase = unit * m;
      // Momentum and the Newton–Schulz input (fp32 values; everything is read before any
      // output of this unit is written).
      for (uint64_t i = 0; i < mn; ++i) {
        clipped[i] = clip * gIn[base + i];
        momentum[i] = static_cast<float>(beta1 * mIn[base + i] + (1 - beta1) * clipped[i]);
        nesterovInput[i] =
            nesterov ? static_cast<float>((1 - beta1) * clipped[i] + beta1 * momentum[i])
                     : momentum[i];
      }
      for (uint64_t r = 0; r < m; ++r)
        rowV[r] = vIn[rowBase + r];
      newtonSchulz5(nesterovInput.data(), rows, cols, o.data(), ws);
      // Ô: the per-row second moment and the norm-preserving rescale (NorMuon), or O (Muon).
      if (normalize) {
        double normO = 0, normHat = 0;
        for (uint64_t r = 0; r < m; ++r) {
          double rowSumSq = 0;
          for (uint64_t j = 0; j < n; ++j)
            rowSumSq += static_cast<double>(o[r * n + j]) * o[r * n + j];
          normO += rowSumSq;
          const double meanSq = rowSumSq / static_cast<double>(n);
          rowV[r] = static_cast<float>(beta2 * rowV[r] + (1 - beta2) * meanSq);
          const double denom = std::sqrt(static_cast<double>(rowV[r])) + 1e-10;
          for (uint64_t j = 0; j < n; ++j) {
            update[r * n + j] = o[r * n + j] / denom;
            normHat += update[r * n + j] * update[r * n + j];
          }
        }
        const double rescale = std::sqrt(normO) / (std::sqrt(normHat) + 1e-10);
        for (uint64_t i = 0; i < mn; ++i)
          update[i] *= rescale * shapeFactor;
      } else {
        for (uint64_t i = 0; i < mn; ++i)
          update[i] = o[i] * shapeFactor;
      }
      for (uint64_t i = 0; i < mn; ++i) {
        const double wOld = wIn[base + i];
        const double mask = decayMask(maskMode, clipped[i], update[i], wOld);
        wOut[base + i] =
            static_cast<float>(wOld - eta * weightDecay * mask * wOld - eta * update[i]);
        mOut[base + i] = momentum[i];
      }
      for (uint64_t r = 0; r < m; ++r)
        vOut[rowBase + r] = rowV[r];
    }
  });
  return Status::okStatus();
}

namespace {

/// The shapes of a decomposed NorMuon update of g [..., m, n] (leading dims: units).
struct MuonShapes {
  std::vector<int64_t> mat;  // g, w, M: [..., m, n]
  std::vector<int64_t> rows; // v: [..., m]
  std::vector<int64_t> sums; // row sums: [..., m, 2]
  std::vector<int64_t> x;    // the Newton–Schulz iterate: [..., p, q]
  uint64_t units = 0, m = 0, n = 0;
  bool transpose = false; // m > n: X holds G̃ᵀ
};

MuonShapes muonShapes(const std::vector<int64_t> &leading, int64_t m, int64_t n) {
  MuonShapes s;
  s.mat = leading;
  s.mat.push_back(m);
  s.mat.push_back(n);
  s.rows = leading;
  s.rows.push_back(m);
  s.sums = s.rows;
  s.sums.push_back(2);
  s.x = leading;
  s.x.push_back(std::min(m, n));
  s.x.push_back(std::max(m, n));
  s.units = dimProduct(leading, 0, leading.size());
  s.m = static_cast<uint64_t>(m);
  s.n = static_cast<uint64_t>(n);
  s.transpose = m > n;
  return s;
}

/// The shapes from g [..., m, n] (f32, rank >= 2, non-empty matrices).
StatusOr<MuonShapes> muonShapesOfGradient(const KernelContext &context, const Tensor &g,
                                          const std::string &role) {
  FUSION_RETURN_IF_ERROR(context.expectDType(g, role, DType::F32));
  const std::vector<int64_t> &shape = g.info->shape;
  if (shape.size() < 2)
    return tensorError(g, role, "must have rank >= 2 ([..., m, n])");
  const int64_t m = shape[shape.size() - 2], n = shape.back();
  if (m < 1 || n < 1)
    return tensorError(g, role, "must have non-empty [m, n] matrices");
  return muonShapes(std::vector<int64_t>(shape.begin(), shape.end() - 2), m, n);
}

/// Error unless `tensor` is bf16 with exactly `shape`.
Status expectBf16Shape(const KernelContext &context, const Tensor &tensor,
                       const std::string &role, const std::vector<int64_t> &shape) {
  FUSION_RETURN_IF_ERROR(context.expectDType(tensor, role, DType::BF16));
  return context.expectShape(tensor, role, shape);
}

/// Marks an output with no state input in checkInPlaceOutputs (no input may be its buffer).
constexpr size_t kNoStateInput = ~size_t(0);

/// Output `output` holds input `input` (a skipped step's pass-through of in-place state).
void copyThrough(const KernelContext &context, size_t input, size_t output) {
  const Tensor &in = context.inputs[input], &out = context.outputs[output];
  if (in.data != out.data && in.info->byteSize)
    std::memmove(out.data, in.data, in.info->byteSize);
}

void zeroFill(const Tensor &tensor) {
  if (tensor.info->byteSize)
    std::memset(tensor.data, 0, tensor.info->byteSize);
}

/// The momentum step of element i and the Newton–Schulz input, as normuon_update forms them
/// (fp32 values, double arithmetic): M' = β1 M + (1−β1) g_c, G̃ = (1−β1) g_c + β1 M' or M'.
struct MuonMomentum {
  double beta1;
  bool nesterov;
  float clip;

  float momentum(float g, float M) const {
    const float clipped = clip * g;
    return static_cast<float>(beta1 * M + (1 - beta1) * clipped);
  }
  float nsInput(float g, float momentumValue) const {
    const float clipped = clip * g;
    return nesterov ? static_cast<float>((1 - beta1) * clipped + beta1 * momentumValue)
                    : momentumValue;
  }
};

/// Σ_r (hi_r + lo_r) in double, r ascending: the ‖G̃‖_F² of one unit from its row sums.
double pairedSum(const float *sums, uint64_t rows) {
  double total = 0;
  for (uint64_t r = 0; r < rows; ++r)
    total += static_cast<double>(sums[2 * r]) + static_cast<double>(sums[2 * r + 1]);
  return total;
}

} // namespace

Status normuonNormKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 1));
  FUSION_ASSIGN_OR_RETURN(double beta1, betaAttr(context, "beta1"));
  FUSION_ASSIGN_OR_RETURN(bool nesterov, context.flagAttr("nesterov"));
  const Tensor &g = context.inputs[0], &ctl = context.inputs[1], &M = context.inputs[2],
               &sq = context.outputs[0];
  FUSION_ASSIGN_OR_RETURN(MuonShapes s, muonShapesOfGradient(context, g, "input 0 (g)"));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, ctl, "input 1 (ctl)", {8}));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, M, "input 2 (M)", s.mat));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, sq, "output 0 (sumsq)", s.sums));
  FUSION_RETURN_IF_ERROR(checkInPlaceOutputs(context, {kNoStateInput}));
  FUSION_ASSIGN_OR_RETURN(Control control, readControl(ctl, "input 1 (ctl)"));
  if (!control.ok) {
    zeroFill(sq);
    return Status::okStatus();
  }
  const MuonMomentum step{beta1, nesterov, static_cast<float>(control.clip)};
  const float *gIn = static_cast<const float *>(g.data);
  const float *mIn = static_cast<const float *>(M.data);
  float *out = static_cast<float *>(sq.data);
  const uint64_t n = s.n;
  context.parallelFor(s.units * s.m, std::max<uint64_t>(1, kChunk / n),
                      [&](uint64_t begin, uint64_t end) {
                        for (uint64_t row = begin; row < end; ++row) {
                          double sum = 0;
                          for (uint64_t j = row * n; j < (row + 1) * n; ++j) {
                            const double y = step.nsInput(gIn[j], step.momentum(gIn[j], mIn[j]));
                            sum += y * y;
                          }
                          const float hi = static_cast<float>(sum);
                          out[2 * row] = hi;
                          out[2 * row + 1] = static_cast<float>(sum - hi);
                        }
                      });
  return Status::okStatus();
}

Status normuonPrepareKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(4, 2));
  FUSION_ASSIGN_OR_RETURN(double beta1, betaAttr(context, "beta1"));
  FUSION_ASSIGN_OR_RETURN(bool nesterov, context.flagAttr("nesterov"));
  const Tensor &g = context.inputs[0], &ctl = context.inputs[1], &M = context.inputs[2],
               &sq = context.inputs[3], &x = context.outputs[1];
  FUSION_ASSIGN_OR_RETURN(MuonShapes s, muonShapesOfGradient(context, g, "input 0 (g)"));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, ctl, "input 1 (ctl)", {8}));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, M, "input 2 (M)", s.mat));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, sq, "input 3 (sumsq)", s.sums));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, context.outputs[0], "output 0 (M)", s.mat));
  FUSION_RETURN_IF_ERROR(expectBf16Shape(context, x, "output 1 (X)", s.x));
  FUSION_RETURN_IF_ERROR(checkInPlaceOutputs(context, {2, kNoStateInput}));
  FUSION_ASSIGN_OR_RETURN(Control control, readControl(ctl, "input 1 (ctl)"));
  if (!control.ok) {
    copyThrough(context, 2, 0);
    zeroFill(x);
    return Status::okStatus();
  }
  const MuonMomentum step{beta1, nesterov, static_cast<float>(control.clip)};
  const float *gIn = static_cast<const float *>(g.data);
  const float *mIn = static_cast<const float *>(M.data);
  const float *sums = static_cast<const float *>(sq.data);
  float *mOut = static_cast<float *>(context.outputs[0].data);
  uint16_t *xOut = static_cast<uint16_t *>(x.data);
  const uint64_t m = s.m, n = s.n, mn = m * n;
  context.parallelFor(s.units, 1, [&](uint64_t begin, uint64_t end) {
    for (uint64_t unit = begin; unit < end; ++unit) {
      const float denom =
          static_cast<float>(std::sqrt(pairedSum(sums + 2 * unit * m, m))) + 1e-7f;
      const uint64_t base = unit * mn;
      for (uint64_t r = 0; r < m; ++r)
        for (uint64_t c = 0; c < n; ++c) {
          const uint64_t i = base + r * n + c;
          const float momentum = step.momentum(gIn[i], mIn[i]);
          const float y = step.nsInput(gIn[i], momentum);
          mOut[i] = momentum;
          xOut[base + (s.transpose ? c * m + r : r * n + c)] = floatToBf16(y / denom);
        }
    }
  });
  return Status::okStatus();
}

Status normuonRowsKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 2));
  FUSION_ASSIGN_OR_RETURN(double beta2, betaAttr(context, "beta2"));
  const Tensor &x = context.inputs[0], &ctl = context.inputs[1], &v = context.inputs[2],
               &sums = context.outputs[1];
  FUSION_RETURN_IF_ERROR(context.expectDType(x, "input 0 (X)", DType::BF16));
  FUSION_RETURN_IF_ERROR(context.expectDType(v, "input 2 (v)", DType::F32));
  // X [..., p, q] (p <= q) and v [..., m]: m = p (X holds O) or m = q (X holds Oᵀ).
  const std::vector<int64_t> &xShape = x.info->shape, &vShape = v.info->shape;
  if (xShape.size() < 2 || xShape[xShape.size() - 2] < 1 ||
      xShape[xShape.size() - 2] > xShape.back())
    return tensorError(x, "input 0 (X)", "must be [..., p, q] with 1 <= p <= q");
  const int64_t p = xShape[xShape.size() - 2], q = xShape.back();
  const std::vector<int64_t> leading(xShape.begin(), xShape.end() - 2);
  if (vShape.size() != xShape.size() - 1 ||
      !std::equal(leading.begin(), leading.end(), vShape.begin()) ||
      (vShape.back() != p && vShape.back() != q))
    return tensorError(v, "input 2 (v)",
                       "must be [..., m] with the leading dims of input 0 (X) and m one of its "
                       "last two dims");
  const int64_t m = vShape.back();
  MuonShapes s = muonShapes(leading, m, m == p ? q : p);
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, ctl, "input 1 (ctl)", {8}));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, context.outputs[0], "output 0 (v)", s.rows));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, sums, "output 1 (rowsums)", s.sums));
  FUSION_RETURN_IF_ERROR(checkInPlaceOutputs(context, {2, kNoStateInput}));
  FUSION_ASSIGN_OR_RETURN(Control control, readControl(ctl, "input 1 (ctl)"));
  if (!control.ok) {
    copyThrough(context, 2, 0);
    zeroFill(sums);
    return Status::okStatus();
  }
  const uint16_t *xIn = static_cast<const uint16_t *>(x.data);
  const float *vIn = static_cast<const float *>(v.data);
  float *vOut = static_cast<float *>(context.outputs[0].data);
  float *out = static_cast<float *>(sums.data);
  const uint64_t mm = s.m, n = s.n, mn = mm * n;
  context.parallelFor(s.units * mm, std::max<uint64_t>(1, kChunk / n),
                      [&](uint64_t begin, uint64_t end) {
                        for (uint64_t row = begin; row < end; ++row) {
                          const uint64_t unit = row / mm, r = row % mm;
                          const uint16_t *o = xIn + unit * mn;
                          // O[r, j]: row r of X, or column r of X [n, m].
                          auto at = [&](uint64_t j) {
                            return bf16ToFloat(s.transpose ? o[j * mm + r] : o[r * n + j]);
                          };
                          double rowSumSq = 0;
                          for (uint64_t j = 0; j < n; ++j)
                            rowSumSq += static_cast<double>(at(j)) * at(j);
                          const double meanSq = rowSumSq / static_cast<double>(n);
                          const float vNew =
                              static_cast<float>(beta2 * vIn[row] + (1 - beta2) * meanSq);
                          const double denom = std::sqrt(static_cast<double>(vNew)) + 1e-10;
                          double rowHat = 0;
                          for (uint64_t j = 0; j < n; ++j) {
                            const double u = at(j) / denom;
                            rowHat += u * u;
                          }
                          vOut[row] = vNew;
                          out[2 * row] = static_cast<float>(rowSumSq);
                          out[2 * row + 1] = static_cast<float>(rowHat);
                        }
                      });
  return Status::okStatus();
}

Status normuonFinishKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(6, 1));
  FUSION_ASSIGN_OR_RETURN(double lr, nonNegativeAttr(context, "lr"));
  FUSION_ASSIGN_OR_RETURN(double weightDecay, nonNegativeAttr(context, "weight_decay"));
  FUSION_ASSIGN_OR_RETURN(int64_t normalize, context.intAttr("normalize"));
  if (normalize != 0 && normalize != 1)
    return attrError("attribute 'normalize' must be 1 (NorMuon) or 0 (Muon), got " +
                     std::to_string(normalize));
  FUSION_ASSIGN_OR_RETURN(DecayMask maskMode, decayMaskAttrs(context));
  const Tensor &x = context.inputs[0], &g = context.inputs[1], &ctl = context.inputs[2],
               &w = context.inputs[3], &v = context.inputs[4], &sums = context.inputs[5];
  FUSION_ASSIGN_OR_RETURN(MuonShapes s, muonShapesOfGradient(context, g, "input 1 (g)"));
  FUSION_RETURN_IF_ERROR(expectBf16Shape(context, x, "input 0 (X)", s.x));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, ctl, "input 2 (ctl)", {8}));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, w, "input 3 (w)", s.mat));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, v, "input 4 (v)", s.rows));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, sums, "input 5 (rowsums)", s.sums));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, context.outputs[0], "output 0 (w)", s.mat));
  FUSION_RETURN_IF_ERROR(checkInPlaceOutputs(context, {3}));
  FUSION_ASSIGN_OR_RETURN(Control control, readControl(ctl, "input 2 (ctl)"));
  if (!control.ok) {
    copyThrough(context, 3, 0);
    return Status::okStatus();
  }
  const uint16_t *xIn = static_cast<const uint16_t *>(x.data);
  const float *gIn = static_cast<const float *>(g.data);
  const float *wIn = static_cast<const float *>(w.data);
  const float *vIn = static_cast<const float *>(v.data);
  const float *rowSums = static_cast<const float *>(sums.data);
  float *wOut = static_cast<float *>(context.outputs[0].data);
  const float clip = static_cast<float>(control.clip);
  const double eta = lr * control.lrFactor;
  const uint64_t m = s.m, n = s.n, mn = m * n;
  const double shapeFactor = std::sqrt(std::max(1.0, static_cast<double>(m) / n));
  context.parallelFor(s.units, 1, [&](uint64_t begin, uint64_t end) {
    for (uint64_t unit = begin; unit < end; ++unit) {
      double factor = shapeFactor;
      if (normalize) {
        double normO = 0, normHat = 0;
        for (uint64_t r = 0; r < m; ++r) {
          normO += rowSums[2 * (unit * m + r)];
          normHat += rowSums[2 * (unit * m + r) + 1];
        }
        factor = std::sqrt(normO) / (std::sqrt(normHat) + 1e-10) * shapeFactor;
      }
      const uint64_t base = unit * mn;
      for (uint64_t r = 0; r < m; ++r) {
        const double denom =
            normalize ? std::sqrt(static_cast<double>(vIn[unit * m + r])) + 1e-10 : 1.0;
        for (uint64_t c = 0; c < n; ++c) {
          const uint64_t i = base + r * n + c;
          const double o = bf16ToFloat(xIn[base + (s.transpose ? c * m + r : r * n + c)]);
          const double update = normalize ? o / denom * factor : o * shapeFactor;
          const float clipped = clip * gIn[i];
          const double wOld = wIn[i];
          const double mask = decayMask(maskMode, clipped, update, wOld);
          wOut[i] = static_cast<float>(wOld - eta * weightDecay * mask * wOld - eta * update);
        }
      }
    }
  });
  return Status::okStatus();
}

Status moeBiasUpdateKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(4, 2));
  FUSION_ASSIGN_OR_RETURN(int64_t every, context.intAttr("every"));
  if (every < 1)
    return attrError("attribute 'every' must be >= 1, got " + std::to_string(every));
  FUSION_ASSIGN_OR_RETURN(double speed, nonNegativeAttr(context, "speed"));
  FUSION_ASSIGN_OR_RETURN(double upper, nonNegativeAttr(context, "upper"));
  FUSION_ASSIGN_OR_RETURN(double lower, nonNegativeAttr(context, "lower"));
  const Tensor &counts = context.inputs[0], &ctl = context.inputs[1], &bias = context.inputs[2],
               &window = context.inputs[3];
  FUSION_RETURN_IF_ERROR(context.expectDType(counts, "input 0 (step_counts)", DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectRank(counts, "input 0 (step_counts)", 1));
  const std::vector<int64_t> shape = counts.info->shape;
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, ctl, "input 1 (ctl)", {8}));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, bias, "input 2 (bias)", shape));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, window, "input 3 (window)", shape));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, context.outputs[0], "output 0 (bias)", shape));
  FUSION_RETURN_IF_ERROR(expectF32Shape(context, context.outputs[1], "output 1 (window)", shape));
  const std::vector<size_t> stateInputs = {2, 3};
  FUSION_RETURN_IF_ERROR(checkInPlaceOutputs(context, stateInputs));
  FUSION_ASSIGN_OR_RETURN(Control control, readControl(ctl, "input 1 (ctl)"));
  if (!control.ok) {
    passThrough(context, stateInputs);
    return Status::okStatus();
  }
  if (!(control.s >= 0 && control.s <= kMaxExactStep && control.s == std::floor(control.s)))
    return tensorError(ctl, "input 1 (ctl)",
                       "element 5 (s) is " + formatNumber(control.s) +
                           "; the step must be an integer in [0, 2^24]");

  const uint64_t E = counts.info->numElements;
  std::vector<float> b(E), c(E);
  loadRow(bias, 0, E, b.data());
  loadRow(window, 0, E, c.data());
  const float *stepCounts = static_cast<const float *>(counts.data);
  for (uint64_t i = 0; i < E; ++i)
    c[i] += stepCounts[i];
  const int64_t s = static_cast<int64_t>(control.s);
  if ((s + 1) % every == 0 && E > 0) {
    double mean = 0;
    for (float count : c)
      mean += count;
    mean /= static_cast<double>(E);
    for (uint64_t i = 0; i < E; ++i) {
      if (c[i] > (1 + upper) * mean)
        b[i] = static_cast<float>(b[i] - speed);
      else if (c[i] < (1 - lower) * mean)
        b[i] = static_cast<float>(b[i] + speed);
    }
    std::fill(c.begin(), c.end(), 0.0f);
  }
  storeRow(context.outputs[0], 0, E, b.data());
  storeRow(context.outputs[1], 0, E, c.data());
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
