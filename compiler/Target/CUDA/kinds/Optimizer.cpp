//===- Optimizer.cpp - CUDA generators for the optimizer kinds ----------===//
//
// Part of the FusionLLM compiler.
//
// step_control, adamw_update, normuon_update and its plan decomposition (templates/
// optimizer.cuh; semantics in runtime/src/cpu/optimizer_kernels.cc). Every buffer is f32, as
// the CPU reference requires (but the decomposition's bf16 NS5 iterate X);
// the attributes are checked here as the reference checks them and baked into the source
// (fp64 literals, exactly the attribute values).
//
//   step_control    one thread (the global gradient norm arrives as grad_sumsq, summed by
//                   the plan's reduction kernels): grid [1], block [32], no arguments.
//   adamw_update    grid-stride over the n elements (args [n]). With cautious_update the
//                   agreeing-sign count is a whole-tensor reduction that must finish before
//                   any element is written (outputs alias inputs), so that variant runs as
//                   a single 1024-thread block that counts, then updates. A faster version
//                   would split it into a counting launch and an update launch (plan-level
//                   scratch for the count).
//   normuon_update  one 512-thread block per [m, n] matrix (grid [units], args
//                   [units, m, n]), the whole Newton–Schulz iteration in dynamic shared
//                   memory: X [p, q] bf16 (p = min(m, n), rows padded), Ā and B̄ [p, p] bf16,
//                   a [p, 64] bf16 staging tile and m fp64 row denominators. The kernel can
//                   not allocate and the op has no scratch buffers, so a matrix whose
//                   footprint exceeds the 227 KiB of shared memory is an error at codegen.
//                   That covers the smoke model (<= 128 x 64), not bench-1gpu (up to
//                   4096 x 1024 and 16 x 1536 x 1024), and one block per matrix leaves most
//                   of the GPU idle. The follow-up is plan-level: scratch buffers
//                   X [units, p, q], Ā / B̄ [units, p, p] (bf16, or f32) and the NS5 GEMMs as
//                   their own launches (tensor-core GEMMs, 15 per step per matrix group):
//                   that is what the plans run now (below); this kind is kept as a reference.
//   normuon_norm     normuon_update as the plans run it (fusion-lower-to-plan): the NS5
//   normuon_prepare  products are the plan's cuBLASLt GEMMs between prepare and rows; these
//   normuon_rows     kinds are the elementwise/reduction parts, 256 threads per block, no
//   normuon_finish   grid-wide barrier inside a launch (per-row sums pass between launches):
//                    norm: a warp per row of the [m, n] matrices (grid-stride, args
//                      [rows, n]), fp64 row sums stored as f32 (hi, lo) pairs;
//                    prepare / finish: 32×32 tiles of unit blockIdx.y (grid [min(tiles, 256),
//                      units], args [m, n]); each block first re-sums its unit's m row sums
//                      (fp64, fixed order, so every block gets the same bits); m > n moves
//                      the tile through shared memory so X [n, m] is read / written
//                      coalesced;
//                    rows: a block per 32 rows of a unit (grid [units·⌈m/32⌉], args [m, n]),
//                      a warp per row (m <= n) or a lane per row with the 8 warps splitting
//                      the row (m > n: rows of O are columns of X).
//                    Faster: vectorised (float4 / bf16x8) loads, and fusing norm into the
//                    previous step's gradient reduction.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace llvm;
using namespace mlir::fusion::cuda;

namespace {

/// Shared memory a block may use beyond its static arrays (H100/H200: 227 KiB per block;
/// the normuon kernel keeps under 1 KiB of static shared memory).
constexpr int64_t kMaxDynamicShared = 227 * 1024 - 1024;
constexpr int64_t kMuonThreads = 512;
constexpr int64_t kCautiousThreads = 1024;

/// Every buffer of the kernel is f32 (the CPU reference's contract), except the inputs in
/// `exceptInputs`, which the caller checks.
Error checkAllF32(const KernelDesc &desc, ArrayRef<unsigned> exceptInputs = {}) {
  for (unsigned i = 0; i < desc.inputs.size(); ++i)
    if (desc.inputs[i] != ElementType::F32 && !llvm::is_contained(exceptInputs, i))
      return kindError(desc, "input " + Twine(i) + " must be f32, got " +
                                elementTypeName(desc.inputs[i]));
  for (unsigned i = 0; i < desc.outputs.size(); ++i)
    if (desc.outputs[i] != ElementType::F32)
      return kindError(desc, "output " + Twine(i) + " must be f32, got " +
                                elementTypeName(desc.outputs[i]));
  return Error::success();
}

/// A required number attribute that is finite and satisfies `valid` ("must be `what`").
template <typename Pred>
Expected<double> checkedNumber(const KernelDesc &desc, StringRef key, StringRef what,
                               Pred valid) {
  Expected<double> value = desc.getFloat(key);
  if (!value)
    return value.takeError();
  if (!std::isfinite(*value) || !valid(*value))
    return kindError(desc, "attribute '" + key + "' must be " + what + ", got " +
                              formatv("{0}", *value).str());
  return *value;
}

Expected<double> betaAttr(const KernelDesc &desc, StringRef key) {
  return checkedNumber(desc, key, "in [0, 1)", [](double v) { return v >= 0 && v < 1; });
}

Expected<double> nonNegativeAttr(const KernelDesc &desc, StringRef key) {
  return checkedNumber(desc, key, "finite and >= 0", [](double v) { return v >= 0; });
}

/// A flag attribute: absent = 0, else 0 or 1.
Expected<bool> flagAttr(const KernelDesc &desc, StringRef key) {
  int64_t value = desc.getInt(key, 0);
  if (value != 0 && value != 1)
    return kindError(desc, "attribute '" + key + "' must be 0 or 1, got " + Twine(value));
  return value == 1;
}

/// NorMuon's `normalize`: 1 (NorMuon) or 0 (Muon).
Expected<int64_t> normalizeAttr(const KernelDesc &desc) {
  Expected<int64_t> normalize = desc.getInt("normalize");
  if (!normalize)
    return normalize.takeError();
  if (*normalize != 0 && *normalize != 1)
    return kindError(desc, "attribute 'normalize' must be 1 (NorMuon) or 0 (Muon), got " +
                              Twine(*normalize));
  return *normalize;
}

/// The decay-mask mode of templates/optimizer.cuh: 0 all, 1 grad, 2 update.
Expected<int> decayMaskMode(const KernelDesc &desc) {
  Expected<bool> cautious = flagAttr(desc, "cautious_wd");
  if (!cautious)
    return cautious.takeError();
  if (!*cautious)
    return 0;
  Expected<std::string> mode = desc.getString("cautious_wd_mode");
  if (!mode)
    return mode.takeError();
  if (*mode == "grad")
    return 1;
  if (*mode == "update")
    return 2;
  return kindError(desc, "attribute 'cautious_wd_mode' must be \"grad\" or \"update\", got \"" +
                            *mode + "\"");
}

Error expectShape(const KernelDesc &desc, ArrayRef<int64_t> shape, ArrayRef<int64_t> expected,
                  const Twine &what) {
  if (shape != expected)
    return kindError(desc, what + " has shape " + shapeString(shape) + ", expected " +
                              shapeString(expected));
  return Error::success();
}

//===----------------------------------------------------------------------===//
// step_control
//===----------------------------------------------------------------------===//

Expected<std::string> stepControlSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 1))
    return std::move(error);
  if (desc.inputs[0] != ElementType::I32)
    return kindError(desc, "input 0 (step) must be i32, got " + elementTypeName(desc.inputs[0]));
  if (Error error = checkAllF32(desc, /*exceptInputs=*/{0}))
    return std::move(error);
  int64_t counts[3];
  const char *names[3] = {"warmup_steps", "stable_steps", "decay_steps"};
  for (int i = 0; i < 3; ++i) {
    Expected<int64_t> value = desc.getInt(names[i]);
    if (!value)
      return value.takeError();
    int64_t low = i == 2 ? 1 : 0;
    if (*value < low || *value > std::numeric_limits<int32_t>::max())
      return kindError(desc, Twine("attribute '") + names[i] + "' must be in [" + Twine(low) +
                                ", 2147483647], got " + Twine(*value));
    counts[i] = *value;
  }
  Expected<double> minRatio = checkedNumber(desc, "min_lr_ratio", "in [0, 1]",
                                            [](double v) { return v >= 0 && v <= 1; });
  if (!minRatio)
    return minRatio.takeError();
  Expected<std::string> decay = desc.getString("decay");
  if (!decay)
    return decay.takeError();
  if (*decay != "linear" && *decay != "cosine")
    return kindError(desc,
                    "attribute 'decay' must be \"linear\" or \"cosine\", got \"" + *decay + "\"");
  Expected<double> gradClip =
      checkedNumber(desc, "grad_clip", "finite (<= 0 = off)", [](double) { return true; });
  if (!gradClip)
    return gradClip.takeError();
  return wrapKernel(desc, {"optimizer"}, {"step", "loss", "grad_sumsq"}, {"ctl"}, {},
                    formatv("fk::stepControl(step, loss, grad_sumsq, ctl, {0}, {1}, {2}, {3}, "
                            "{4}, {5});",
                            counts[0], counts[1], counts[2], doubleLiteral(*minRatio),
                            *decay == "cosine" ? "true" : "false", doubleLiteral(*gradClip))
                        .str());
}

Expected<LaunchConfig> stepControlLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  if (Error error = expectShape(desc, shapes.inputs[0], {2}, "input 0 (step)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.inputs[1], {}, "input 1 (loss)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.inputs[2], {}, "input 2 (grad_sumsq)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.outputs[0], {8}, "output 0 (ctl)"))
    return std::move(error);
  LaunchConfig config;
  config.block = {32, 1, 1};
  return config;
}

//===----------------------------------------------------------------------===//
// adamw_update
//===----------------------------------------------------------------------===//

Expected<std::string> adamwSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 5, 3))
    return std::move(error);
  if (Error error = checkAllF32(desc))
    return std::move(error);
  Expected<double> lr = nonNegativeAttr(desc, "lr");
  if (!lr)
    return lr.takeError();
  Expected<double> beta1 = betaAttr(desc, "beta1");
  if (!beta1)
    return beta1.takeError();
  Expected<double> beta2 = betaAttr(desc, "beta2");
  if (!beta2)
    return beta2.takeError();
  Expected<double> eps =
      checkedNumber(desc, "eps", "finite and > 0", [](double v) { return v > 0; });
  if (!eps)
    return eps.takeError();
  Expected<double> weightDecay = nonNegativeAttr(desc, "weight_decay");
  if (!weightDecay)
    return weightDecay.takeError();
  Expected<int> maskMode = decayMaskMode(desc);
  if (!maskMode)
    return maskMode.takeError();
  Expected<bool> cautiousUpdate = flagAttr(desc, "cautious_update");
  if (!cautiousUpdate)
    return cautiousUpdate.takeError();
  return wrapKernel(
      desc, {"optimizer"}, {"g", "ctl", "w", "m", "v"}, {"w_out", "m_out", "v_out"}, {"n"},
      formatv("fk::adamwUpdate(g, ctl, w, m, v, w_out, m_out, v_out, n, fk::AdamParams{{{0}, "
              "{1}, {2}, {3}, {4}, {5}, {6}});",
              doubleLiteral(*lr), doubleLiteral(*beta1), doubleLiteral(*beta2),
              doubleLiteral(*eps), doubleLiteral(*weightDecay), *maskMode,
              *cautiousUpdate ? "true" : "false")
          .str(),
      *cautiousUpdate ? "1024" : "");
}

Expected<LaunchConfig> adamwLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> shape = shapes.inputs[2];
  const char *inputNames[5] = {"g", "ctl", "w", "m", "v"};
  for (unsigned i : {0u, 3u, 4u})
    if (Error error = expectShape(desc, shapes.inputs[i], shape,
                                  "input " + Twine(i) + " (" + inputNames[i] + ")"))
      return std::move(error);
  if (Error error = expectShape(desc, shapes.inputs[1], {8}, "input 1 (ctl)"))
    return std::move(error);
  const char *outputNames[3] = {"w", "m", "v"};
  for (unsigned i = 0; i < 3; ++i)
    if (Error error = expectShape(desc, shapes.outputs[i], shape,
                                  "output " + Twine(i) + " (" + outputNames[i] + ")"))
      return std::move(error);
  const int64_t n = numElements(shape);
  if (desc.getInt("cautious_update", 0) == 0)
    return gridStride(n, desc.blockSize);
  LaunchConfig config;
  config.block = {kCautiousThreads, 1, 1};
  config.args = {n};
  return config;
}

//===----------------------------------------------------------------------===//
// normuon_update
//===----------------------------------------------------------------------===//

/// muon::xStride and muon::sharedBytes of templates/optimizer.cuh (keep them equal).
int64_t muonXStride(int64_t q) {
  int64_t even = (q + 1) / 2 * 2;
  return (even / 2) % 2 == 1 ? even : even + 2;
}
int64_t muonSharedBytes(int64_t m, int64_t n) {
  const int64_t p = std::min(m, n), q = std::max(m, n);
  return 8 * m + 2 * (p * muonXStride(q) + 2 * p * p + p * 64);
}

Expected<std::string> normuonSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 5, 3))
    return std::move(error);
  if (Error error = checkAllF32(desc))
    return std::move(error);
  Expected<double> lr = nonNegativeAttr(desc, "lr");
  if (!lr)
    return lr.takeError();
  Expected<double> beta1 = betaAttr(desc, "beta1");
  if (!beta1)
    return beta1.takeError();
  Expected<double> beta2 = betaAttr(desc, "beta2");
  if (!beta2)
    return beta2.takeError();
  Expected<double> weightDecay = nonNegativeAttr(desc, "weight_decay");
  if (!weightDecay)
    return weightDecay.takeError();
  Expected<bool> nesterov = flagAttr(desc, "nesterov");
  if (!nesterov)
    return nesterov.takeError();
  Expected<int64_t> normalize = normalizeAttr(desc);
  if (!normalize)
    return normalize.takeError();
  Expected<int> maskMode = decayMaskMode(desc);
  if (!maskMode)
    return maskMode.takeError();
  return wrapKernel(
      desc, {"optimizer"}, {"g", "ctl", "w", "M", "v"}, {"w_out", "M_out", "v_out"},
      {"units", "m", "n"},
      formatv("fk::normuonUpdate(g, ctl, w, M, v, w_out, M_out, v_out, units, m, n, "
              "fk::MuonParams{{{0}, {1}, {2}, {3}, {4}, {5}, {6}});",
              doubleLiteral(*lr), doubleLiteral(*beta1), doubleLiteral(*beta2),
              doubleLiteral(*weightDecay), *nesterov ? "true" : "false",
              *normalize ? "true" : "false", *maskMode)
          .str(),
      std::to_string(kMuonThreads));
}

Expected<LaunchConfig> normuonLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> shape = shapes.inputs[0];
  if (shape.size() < 2)
    return kindError(desc, "input 0 (g) must have rank >= 2 ([..., m, n]), got shape " +
                              shapeString(shape));
  const int64_t m = shape[shape.size() - 2], n = shape.back();
  if (m < 1 || n < 1)
    return kindError(desc, "input 0 (g) must have non-empty [m, n] matrices, got shape " +
                              shapeString(shape));
  SmallVector<int64_t> rowShape(shape.drop_back());
  if (Error error = expectShape(desc, shapes.inputs[1], {8}, "input 1 (ctl)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.inputs[2], shape, "input 2 (w)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.inputs[3], shape, "input 3 (M)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.inputs[4], rowShape, "input 4 (v)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.outputs[0], shape, "output 0 (w)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.outputs[1], shape, "output 1 (M)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.outputs[2], rowShape, "output 2 (v)"))
    return std::move(error);
  // In double: absurd shapes must not overflow the byte count (and would overflow int).
  const double p = static_cast<double>(std::min(m, n)), q = static_cast<double>(std::max(m, n));
  const double estimate = 8.0 * m + 2.0 * (p * (q + 3) + 2 * p * p + 64 * p);
  const bool huge = estimate > 2.0 * kMaxDynamicShared;
  const double bytes = huge ? estimate : static_cast<double>(muonSharedBytes(m, n));
  if (bytes > kMaxDynamicShared)
    return kindError(desc, "a " + Twine(m) + " x " + Twine(n) +
                              " matrix does not fit the in-block Newton-Schulz iteration: it "
                              "needs " + Twine(huge ? "about " : "") +
                              Twine(static_cast<int64_t>(std::min(bytes, 1e18))) +
                              " bytes of shared memory (X [p, q], A and B [p, p], bf16) where "
                              "a block has " +
                              Twine(kMaxDynamicShared) +
                              "; larger matrices need scratch buffers from the plan");
  const int64_t units = numElements(shape.drop_back(2));
  if (units > std::numeric_limits<int32_t>::max())
    return kindError(desc, "has " + Twine(units) + " matrices, more than a grid holds");
  LaunchConfig config;
  config.grid = {std::max<int64_t>(units, 1), 1, 1};
  config.block = {kMuonThreads, 1, 1};
  config.smem = muonSharedBytes(m, n);
  config.args = {units, m, n};
  return config;
}

//===----------------------------------------------------------------------===//
// normuon_norm, normuon_prepare, normuon_rows, normuon_finish
//===----------------------------------------------------------------------===//

constexpr int64_t kDecomposedThreads = 256; // 32 × 8 tiles; 8 warps
/// Blocks per unit of the tile kernels: each block re-sums the unit's m row sums, so a few
/// tiles per block keep that small next to the tile traffic.
constexpr int64_t kMaxTileBlocksPerUnit = 256;

/// Fails unless input i has type inputs[i] and output j outputs[j].
Error checkTypes(const KernelDesc &desc, ArrayRef<ElementType> inputs,
                 ArrayRef<ElementType> outputs) {
  for (unsigned i = 0; i < inputs.size(); ++i)
    if (desc.inputs[i] != inputs[i])
      return kindError(desc, "input " + Twine(i) + " must be " + elementTypeName(inputs[i]) +
                                ", got " + elementTypeName(desc.inputs[i]));
  for (unsigned i = 0; i < outputs.size(); ++i)
    if (desc.outputs[i] != outputs[i])
      return kindError(desc, "output " + Twine(i) + " must be " + elementTypeName(outputs[i]) +
                                ", got " + elementTypeName(desc.outputs[i]));
  return Error::success();
}

/// beta1 and nesterov of normuon_norm / normuon_prepare, as "beta1, nesterov" arguments.
Expected<std::string> momentumArgs(const KernelDesc &desc) {
  Expected<double> beta1 = betaAttr(desc, "beta1");
  if (!beta1)
    return beta1.takeError();
  Expected<bool> nesterov = flagAttr(desc, "nesterov");
  if (!nesterov)
    return nesterov.takeError();
  return doubleLiteral(*beta1) + ", " + (*nesterov ? "true" : "false");
}

/// The matrix shapes of a decomposed update of g [..., m, n].
struct MuonShapes {
  SmallVector<int64_t> mat, rows, sums, x;
  int64_t units = 0, m = 0, n = 0;
};

Expected<MuonShapes> muonShapes(const KernelDesc &desc, ArrayRef<int64_t> g, StringRef role) {
  if (g.size() < 2)
    return kindError(desc, role + " must have rank >= 2 ([..., m, n]), got shape " +
                              shapeString(g));
  MuonShapes s;
  s.m = g[g.size() - 2];
  s.n = g.back();
  if (s.m < 1 || s.n < 1)
    return kindError(desc, role + " must have non-empty [m, n] matrices, got shape " +
                              shapeString(g));
  s.mat.assign(g.begin(), g.end());
  s.rows.assign(g.begin(), g.end() - 1);
  s.sums = s.rows;
  s.sums.push_back(2);
  s.x.assign(g.begin(), g.end() - 2);
  s.x.append({std::min(s.m, s.n), std::max(s.m, s.n)});
  s.units = numElements(g.drop_back(2));
  return s;
}

/// Grid of the tile kernels: (blocks per unit, units).
Expected<LaunchConfig> tileLaunch(const KernelDesc &desc, const MuonShapes &s) {
  if (s.units > 65535)
    return kindError(desc, "has " + Twine(s.units) +
                              " matrices; the tile kernels put one per grid row (at most "
                              "65535)");
  const int64_t tiles = ((s.m + 31) / 32) * ((s.n + 31) / 32);
  LaunchConfig config;
  config.grid = {std::min(tiles, kMaxTileBlocksPerUnit), std::max<int64_t>(s.units, 1), 1};
  config.block = {kDecomposedThreads, 1, 1};
  config.args = {s.m, s.n};
  return config;
}

Expected<std::string> normuonNormSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 1))
    return std::move(error);
  if (Error error = checkAllF32(desc))
    return std::move(error);
  Expected<std::string> momentum = momentumArgs(desc);
  if (!momentum)
    return momentum.takeError();
  return wrapKernel(desc, {"optimizer"}, {"g", "ctl", "M"}, {"sumsq"}, {"rows", "n"},
                    "fk::normuonNorm(g, ctl, M, sumsq, rows, n, " + *momentum + ");",
                    std::to_string(kDecomposedThreads));
}

Expected<LaunchConfig> normuonNormLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<MuonShapes> s = muonShapes(desc, shapes.inputs[0], "input 0 (g)");
  if (!s)
    return s.takeError();
  if (Error error = expectShape(desc, shapes.inputs[1], {8}, "input 1 (ctl)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.inputs[2], s->mat, "input 2 (M)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.outputs[0], s->sums, "output 0 (sumsq)"))
    return std::move(error);
  const int64_t rows = s->units * s->m, warpsPerBlock = kDecomposedThreads / 32;
  LaunchConfig config;
  config.grid = {std::clamp<int64_t>((rows + warpsPerBlock - 1) / warpsPerBlock, 1, 65535), 1,
                 1};
  config.block = {kDecomposedThreads, 1, 1};
  config.args = {rows, s->n};
  return config;
}

Expected<std::string> normuonPrepareSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 4, 2))
    return std::move(error);
  using ET = ElementType;
  if (Error error = checkTypes(desc, {ET::F32, ET::F32, ET::F32, ET::F32}, {ET::F32, ET::BF16}))
    return std::move(error);
  Expected<std::string> momentum = momentumArgs(desc);
  if (!momentum)
    return momentum.takeError();
  return wrapKernel(desc, {"optimizer"}, {"g", "ctl", "M", "sumsq"}, {"M_out", "X"},
                    {"m", "n"},
                    "fk::normuonPrepare(g, ctl, M, sumsq, M_out, X, m, n, " + *momentum + ");",
                    std::to_string(kDecomposedThreads));
}

Expected<LaunchConfig> normuonPrepareLaunch(const KernelDesc &desc,
                                            const LaunchShapes &shapes) {
  Expected<MuonShapes> s = muonShapes(desc, shapes.inputs[0], "input 0 (g)");
  if (!s)
    return s.takeError();
  if (Error error = expectShape(desc, shapes.inputs[1], {8}, "input 1 (ctl)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.inputs[2], s->mat, "input 2 (M)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.inputs[3], s->sums, "input 3 (sumsq)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.outputs[0], s->mat, "output 0 (M)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.outputs[1], s->x, "output 1 (X)"))
    return std::move(error);
  return tileLaunch(desc, *s);
}

Expected<std::string> normuonRowsSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 2))
    return std::move(error);
  using ET = ElementType;
  if (Error error = checkTypes(desc, {ET::BF16, ET::F32, ET::F32}, {ET::F32, ET::F32}))
    return std::move(error);
  Expected<double> beta2 = betaAttr(desc, "beta2");
  if (!beta2)
    return beta2.takeError();
  return wrapKernel(desc, {"optimizer"}, {"X", "ctl", "v"}, {"v_out", "rowsums"}, {"m", "n"},
                    "fk::normuonRows(X, ctl, v, v_out, rowsums, m, n, " +
                        doubleLiteral(*beta2) + ");",
                    std::to_string(kDecomposedThreads));
}

Expected<LaunchConfig> normuonRowsLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  // X [..., p, q] (p <= q) and v [..., m] with m = p (X holds O) or q (X holds Oᵀ).
  ArrayRef<int64_t> x = shapes.inputs[0], v = shapes.inputs[2];
  if (x.size() < 2 || x[x.size() - 2] < 1 || x[x.size() - 2] > x.back())
    return kindError(desc, "input 0 (X) must be [..., p, q] with 1 <= p <= q, got shape " +
                              shapeString(x));
  const int64_t p = x[x.size() - 2], q = x.back();
  if (v.size() + 1 != x.size() || v.drop_back() != x.drop_back(2) ||
      (v.back() != p && v.back() != q))
    return kindError(desc, "input 2 (v) must be [..., m] with the leading dims of input 0 (X) "
                          "and m one of its last two dims, got shapes " +
                              shapeString(x) + " and " + shapeString(v));
  SmallVector<int64_t> g(x.drop_back(2));
  g.append({v.back(), v.back() == p ? q : p});
  Expected<MuonShapes> s = muonShapes(desc, g, "the matrices");
  if (!s)
    return s.takeError();
  if (Error error = expectShape(desc, shapes.inputs[1], {8}, "input 1 (ctl)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.outputs[0], s->rows, "output 0 (v)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.outputs[1], s->sums, "output 1 (rowsums)"))
    return std::move(error);
  const int64_t blocks = s->units * ((s->m + 31) / 32);
  if (blocks > std::numeric_limits<int32_t>::max())
    return kindError(desc, "needs " + Twine(blocks) + " blocks, more than a grid holds");
  LaunchConfig config;
  config.grid = {std::max<int64_t>(blocks, 1), 1, 1};
  config.block = {kDecomposedThreads, 1, 1};
  config.args = {s->m, s->n};
  return config;
}

Expected<std::string> normuonFinishSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 6, 1))
    return std::move(error);
  using ET = ElementType;
  if (Error error = checkTypes(desc, {ET::BF16, ET::F32, ET::F32, ET::F32, ET::F32, ET::F32},
                               {ET::F32}))
    return std::move(error);
  Expected<double> lr = nonNegativeAttr(desc, "lr");
  if (!lr)
    return lr.takeError();
  Expected<double> weightDecay = nonNegativeAttr(desc, "weight_decay");
  if (!weightDecay)
    return weightDecay.takeError();
  Expected<int64_t> normalize = normalizeAttr(desc);
  if (!normalize)
    return normalize.takeError();
  Expected<int> maskMode = decayMaskMode(desc);
  if (!maskMode)
    return maskMode.takeError();
  return wrapKernel(
      desc, {"optimizer"}, {"X", "g", "ctl", "w", "v", "rowsums"}, {"w_out"}, {"m", "n"},
      formatv("fk::normuonFinish(X, g, ctl, w, v, rowsums, w_out, m, n, "
              "fk::MuonFinishParams{{{0}, {1}, {2}, {3}});",
              doubleLiteral(*lr), doubleLiteral(*weightDecay), *normalize ? "true" : "false",
              *maskMode)
          .str(),
      std::to_string(kDecomposedThreads));
}

Expected<LaunchConfig> normuonFinishLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<MuonShapes> s = muonShapes(desc, shapes.inputs[1], "input 1 (g)");
  if (!s)
    return s.takeError();
  if (Error error = expectShape(desc, shapes.inputs[0], s->x, "input 0 (X)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.inputs[2], {8}, "input 2 (ctl)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.inputs[3], s->mat, "input 3 (w)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.inputs[4], s->rows, "input 4 (v)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.inputs[5], s->sums, "input 5 (rowsums)"))
    return std::move(error);
  if (Error error = expectShape(desc, shapes.outputs[0], s->mat, "output 0 (w)"))
    return std::move(error);
  return tileLaunch(desc, *s);
}

} // namespace

void mlir::fusion::cuda::addOptimizerKinds(std::vector<KindGenerator> &kinds) {
  kinds.push_back({"step_control", stepControlSource, stepControlLaunch});
  kinds.push_back({"adamw_update", adamwSource, adamwLaunch});
  kinds.push_back({"normuon_update", normuonSource, normuonLaunch});
  kinds.push_back({"normuon_norm", normuonNormSource, normuonNormLaunch});
  kinds.push_back({"normuon_prepare", normuonPrepareSource, normuonPrepareLaunch});
  kinds.push_back({"normuon_rows", normuonRowsSource, normuonRowsLaunch});
  kinds.push_back({"normuon_finish", normuonFinishSource, normuonFinishLaunch});
}
