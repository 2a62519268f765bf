//===- Norm.cpp - CUDA generators for normalisation kinds -----------------===//
//
// Part of the FusionLLM compiler.
//
// Row normalisations over the last dimension (templates/norm.cuh, which describes the device
// algorithm), rows = elements / d:
//   rms_norm       y = x / sqrt(mean x² + eps) · w (fp32 sums).
//   l2_norm        out = scale·x/sqrt(Σx² + eps).
//   l2_norm_grad   ν = sqrt(Σx² + eps): dx = (scale/ν)(dy − x (x·dy)/ν²).
//   rms_norm_grad  r = (mean x² + eps)^−½: dx = r(dy⊙w − x r·mean(dy⊙w⊙x r)),
//                  dw = Σ_rows dy⊙x r (f32).
// All four use row groups: T threads per row, T the smallest power of two with 8·T >= d
// (each thread holds 2 chunks of 4 columns; T = 1 up to d = 8, 8 at d = 64, 16 at d = 96 or
// 128, 128 at d = 1024), at most 512, so d <= 4096; R = max(256 / T, 1) groups per block;
// arguments (rows, d, T). rms_norm rows longer than that take the one-block-per-row kernel
// (args (rows, d, 0), a power-of-two block up to 512). Sums are fp64 in a fixed order like
// the CPU kernels' (rms_norm's fp32). These kernels have __launch_bounds__(512) (about 80
// registers used, no spills at sm_90), so every group size launches. rms_norm, l2_norm and
// l2_norm_grad launch ceil(rows / R) blocks. rms_norm_grad launches at most 1024 blocks (and at
// most 2^20 / d, the module's 8 MiB dw scratch), each looping over rows; every group accumulates dw
// for its columns in fp64 in dynamic shared memory (R·d doubles), the block writes the sum of its
// groups as an fp64 partial to a module-level scratch and takes a ticket; the last 32 blocks to
// take one (fewer with a smaller grid) wait for the rest, then each sums the partials of one tile
// of ceil(d / 32) columns, its threads split into slices of contiguous partials added in order
// (atomic ticket counters, no float atomics: deterministic). The earlier single-finisher form
// took 0.34 ms at 32768 x 1024 (f32, H200), one block reading all 1024 partials of 1024 columns.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace llvm;
using namespace mlir::fusion::cuda;

namespace {

/// 4-column chunks per thread of the row-group kernels (fk::kRowSlots), the longest row a
/// group holds and the block size they aim for; rms_norm_grad's grid cap and dw scratch
/// (fk::DwScratch::kCapacity, doubles).
constexpr int64_t kRowSlots = 2;
constexpr int64_t kMaxGroupThreads = 512;
constexpr int64_t kMaxGroupColumns = kMaxGroupThreads * kRowSlots * 4;
constexpr int64_t kGroupBlock = 256;
constexpr int64_t kMaxGradBlocks = 1024;
constexpr int64_t kDwPartials = int64_t(1) << 20;
/// The row-group kernels' __launch_bounds__: every block they use (at most 512 threads) must
/// launch.
constexpr const char *kGroupBounds = "512";

/// One block per row of the last dimension.
LaunchConfig rowLaunch(ArrayRef<int64_t> shape) {
  LaunchConfig config;
  int64_t d = shape.empty() ? 1 : shape.back();
  int64_t rows = d == 0 ? 0 : numElements(shape) / d;
  config.grid = {std::max<int64_t>(rows, 1), 1, 1};
  config.block = {roundThreads(d, 512), 1, 1};
  config.args = {rows, d};
  return config;
}

/// Row-group geometry of `shape` (rank >= 1): config.args = (rows, d, T), block T·R, and
/// ceil(rows / R) blocks (the caller may cap them).
Expected<LaunchConfig> groupLaunch(const KernelDesc &desc, ArrayRef<int64_t> shape) {
  if (shape.empty())
    return kindError(desc, "input 0 (x) must have at least one dimension, got a scalar");
  int64_t d = shape.back();
  if (d > kMaxGroupColumns)
    return kindError(desc, "rows of " + Twine(d) + " elements are longer than the " +
                               Twine(kMaxGroupColumns) +
                               " a row group holds (" + Twine(kMaxGroupThreads) +
                               " threads x " + Twine(kRowSlots) +
                               " chunks of 4 columns)");
  int64_t rows = d == 0 ? 0 : numElements(shape) / d;
  int64_t threads = 1;
  while (threads * kRowSlots * 4 < d)
    threads *= 2;
  int64_t groups = std::max<int64_t>(kGroupBlock / threads, 1);
  int64_t blocks = std::max<int64_t>((rows + groups - 1) / groups, 1);
  if (blocks > std::numeric_limits<int32_t>::max())
    return kindError(desc, Twine(rows) + " rows need more than 2^31 - 1 blocks");
  LaunchConfig config;
  config.grid = {blocks, 1, 1};
  config.block = {threads * groups, 1, 1};
  config.args = {rows, d, threads};
  return config;
}

Expected<std::string> rmsNormSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 2, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1}, {0}))
    return std::move(error);
  return wrapKernel(desc, {"norm"}, {"x", "w"}, {"out"}, {"rows", "d", "groupThreads"},
                    formatv("fk::rmsNormRows(x, w, out, rows, d, groupThreads, {0});",
                            floatLiteral(desc.getFloat("eps", 1e-6)))
                        .str(),
                    kGroupBounds);
}

/// rms_norm: row groups, or one block per row (groupThreads = 0) for longer rows.
Expected<LaunchConfig> rmsNormLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> shape = shapes.outputs[0];
  if (!shape.empty() && shape.back() > kMaxGroupColumns) {
    LaunchConfig config = rowLaunch(shape);
    config.args.push_back(0);
    return config;
  }
  if (shape.empty()) {
    LaunchConfig config = rowLaunch(shape);
    config.args.push_back(1);
    return config;
  }
  return groupLaunch(desc, shape);
}

/// eps (>= 0, or > 0 when `positive`) and, for the l2 kinds, scale: required, as on the CPU.
Expected<double> epsAttribute(const KernelDesc &desc, bool positive) {
  Expected<double> eps = desc.getFloat("eps");
  if (!eps)
    return eps.takeError();
  if (positive ? !(*eps > 0) : !(*eps >= 0))
    return kindError(desc, Twine("attribute 'eps' must be ") +
                               (positive ? "positive" : "non-negative") + ", got " +
                               std::to_string(*eps));
  return *eps;
}

Expected<double> scaleAttribute(const KernelDesc &desc) {
  Expected<double> scale = desc.getFloat("scale");
  if (!scale)
    return scale.takeError();
  if (!std::isfinite(*scale))
    return kindError(desc, "attribute 'scale' must be finite, got " + std::to_string(*scale));
  return *scale;
}

Expected<std::string> l2NormSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 1, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0}, {0}))
    return std::move(error);
  Expected<double> eps = epsAttribute(desc, /*positive=*/true);
  if (!eps)
    return eps.takeError();
  Expected<double> scale = scaleAttribute(desc);
  if (!scale)
    return scale.takeError();
  return wrapKernel(desc, {"norm"}, {"x"}, {"out"}, {"rows", "d", "groupThreads"},
                    formatv("fk::l2Norm(x, out, rows, d, groupThreads, {0}, {1});",
                            doubleLiteral(*eps), doubleLiteral(*scale))
                        .str(),
                    kGroupBounds);
}

Expected<LaunchConfig> l2NormLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  if (Error error = checkShape(desc, shapes.outputs[0], shapes.inputs[0], "output 0 (out)"))
    return std::move(error);
  return groupLaunch(desc, shapes.inputs[0]);
}

Expected<std::string> l2NormGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 2, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1}, {0}))
    return std::move(error);
  Expected<double> eps = epsAttribute(desc, /*positive=*/true);
  if (!eps)
    return eps.takeError();
  Expected<double> scale = scaleAttribute(desc);
  if (!scale)
    return scale.takeError();
  return wrapKernel(desc, {"norm"}, {"x", "dy"}, {"dx"}, {"rows", "d", "groupThreads"},
                    formatv("fk::l2NormGrad(x, dy, dx, rows, d, groupThreads, {0}, {1});",
                            doubleLiteral(*eps), doubleLiteral(*scale))
                        .str(),
                    kGroupBounds);
}

Expected<LaunchConfig> l2NormGradLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  if (Error error = checkShape(desc, shapes.inputs[1], shapes.inputs[0], "input 1 (dy)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[0], shapes.inputs[0], "output 0 (dx)"))
    return std::move(error);
  return groupLaunch(desc, shapes.inputs[0]);
}

Expected<std::string> rmsNormGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 2))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1, 2}, {0}))
    return std::move(error);
  if (desc.outputs[1] != ElementType::F32)
    return kindError(desc, "output 1 (dw) must be f32, got " +
                               elementTypeName(desc.outputs[1]));
  Expected<double> eps = epsAttribute(desc, /*positive=*/false);
  if (!eps)
    return eps.takeError();
  return wrapKernel(desc, {"norm"}, {"x", "w", "dy"}, {"dx", "dw"},
                    {"rows", "d", "groupThreads"},
                    formatv("fk::rmsNormGrad(x, w, dy, dx, dw, rows, d, groupThreads, {0});",
                            doubleLiteral(*eps))
                        .str(),
                    kGroupBounds);
}

Expected<LaunchConfig> rmsNormGradLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> x = shapes.inputs[0];
  Expected<LaunchConfig> config = groupLaunch(desc, x);
  if (!config)
    return config.takeError();
  int64_t d = x.back();
  if (Error error = checkShape(desc, shapes.inputs[1], {d}, "input 1 (w)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.inputs[2], x, "input 2 (dy)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[0], x, "output 0 (dx)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[1], {d}, "output 1 (dw)"))
    return std::move(error);
  // Blocks loop over rows; their dw partials must fit the scratch (d <= 8192 keeps >= 128).
  int64_t cap = std::min<int64_t>(kMaxGradBlocks, kDwPartials / std::max<int64_t>(d, 1));
  config->grid[0] = std::min(config->grid[0], cap);
  // dw accumulators: d doubles per row group.
  int64_t groups = config->block[0] / config->args[2];
  config->smem = groups * d * 8;
  return config;
}

} // namespace

void mlir::fusion::cuda::addNormKinds(std::vector<KindGenerator> &kinds) {
  kinds.push_back({"rms_norm", rmsNormSource, rmsNormLaunch});
  kinds.push_back({"l2_norm", l2NormSource, l2NormLaunch});
  kinds.push_back({"l2_norm_grad", l2NormGradSource, l2NormGradLaunch});
  kinds.push_back({"rms_norm_grad", rmsNormGradSource, rmsNormGradLaunch});
}
