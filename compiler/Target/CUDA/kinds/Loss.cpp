//===- Loss.cpp - CUDA generators for the loss kinds ----------------------===//
//
// Part of the FusionLLM compiler.
//
// cross_entropy, cross_entropy_grad: one block per row of logits [N, V] (threads a power of
// two up to 512), args [N, V].
// softcap_ce: the fused tied head without [N, V] logits; blocks of 64 token rows, 256
// threads, args [N, D, V]; cap baked into the source.
// softcap_ce_grad: one launch of three block roles (templates/loss.cuh): ceil(N/64) lse
// blocks, ceil(N/P) dh blocks, ceil(V/P) dw blocks, 256 threads, P·D + 64·P floats of
// dynamic shared memory with P = 32 rows (16 when D is too large), args [N, D, V, P]. N is
// bounded by the kernel's per-token scratch (2^20 rows).
// softcap_ce_rows, softcap_ce_rows_grad: one block per row of GEMM-computed logits [R, V],
// args [R, V, row]: the plan's `row` travels as an argument, so the blocks of a head share one
// compiled kernel. Threads a power of two >= 32 covering ceil(V/4) (the row's 16-byte units):
// up to 512 for the fixed-shift forward (one streaming pass, no shared memory), up to 1024 for
// the gradient and the max-shift forward, which get V floats (rounded up to 16 bytes) of
// dynamic shared memory as the row cache when that fits kRowCacheMaxBytes; without it the
// kernel takes its multi-pass fallback (templates/loss.cuh).
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace llvm;
using namespace mlir::fusion::cuda;

namespace {

/// Mirrors of templates/loss.cuh's constants.
constexpr int64_t kHeadThreads = 256;
constexpr int64_t kHeadRows = 64;
constexpr int64_t kGradMaxRows = int64_t(1) << 20;
/// Dynamic shared memory a gradient block may use (the static part is about 18 KiB of the
/// 227 KiB an H100 / H200 block can have).
constexpr int64_t kGradMaxDynamicSmem = 200 * 1024;
constexpr int64_t kMaxGrid = (int64_t(1) << 31) - 1;
/// Largest row cache of softcap_ce_rows(_grad) (an H100 / H200 block may have 227 KiB of
/// dynamic shared memory; the kernels' static part is under 1 KiB): V up to 57344.
constexpr int64_t kRowCacheMaxBytes = 224 * 1024;

Error checkF32Output(const KernelDesc &desc, unsigned index, StringRef role) {
  if (desc.outputs[index] != ElementType::F32)
    return kindError(desc, "output " + Twine(index) + " (" + role + ") must be f32, got " +
                               elementTypeName(desc.outputs[index]));
  return Error::success();
}

/// Fails unless `shape` holds exactly `count` elements as [count].
Error checkVector(const KernelDesc &desc, ArrayRef<int64_t> shape, int64_t count,
                  const Twine &role) {
  if (shape.size() != 1 || shape[0] != count)
    return kindError(desc, role + " must be [" + Twine(count) + "], got " + shapeString(shape));
  return Error::success();
}

/// The head's cap: >= 0 (0 = no cap) and finite.
Expected<double> readCap(const KernelDesc &desc) {
  Expected<double> cap = desc.getFloat("cap");
  if (!cap)
    return cap.takeError();
  if (!(*cap >= 0) || !std::isfinite(*cap))
    return kindError(desc, "attribute 'cap' must be >= 0 (0 = no cap) and finite, got " +
                               Twine(std::to_string(*cap)));
  return *cap;
}

//===----------------------------------------------------------------------===//
// cross_entropy, cross_entropy_grad
//===----------------------------------------------------------------------===//

Expected<std::string> crossEntropySource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 2, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0}, {}))
    return std::move(error);
  if (Error error = checkIndex(desc, /*isOutput=*/false, 1))
    return std::move(error);
  if (Error error = checkF32Output(desc, 0, "loss"))
    return std::move(error);
  return wrapKernel(desc, {"loss"}, {"logits", "targets"}, {"loss"}, {"rows", "vocab"},
                    "fk::crossEntropy(logits, targets, loss, rows, vocab);");
}

Expected<std::string> crossEntropyGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 2}, {0}))
    return std::move(error);
  if (Error error = checkIndex(desc, /*isOutput=*/false, 1))
    return std::move(error);
  return wrapKernel(desc, {"loss"}, {"logits", "targets", "dce"}, {"dlogits"},
                    {"rows", "vocab"},
                    "fk::crossEntropyGrad(logits, targets, dce, dlogits, rows, vocab);");
}

/// A gradient's dce [n] (input 2) and dlogits (output 0, the logits' shape).
Error checkRowGradOperands(const KernelDesc &desc, const LaunchShapes &s, int64_t n) {
  if (Error error = checkVector(desc, s.inputs[2], n, "input 2 (dce)"))
    return error;
  if (s.outputs[0] != s.inputs[0])
    return kindError(desc, "output 0 (dlogits) must have the logits' shape " +
                               shapeString(s.inputs[0]) + ", got " + shapeString(s.outputs[0]));
  return Error::success();
}

/// One block per row of `rows` logit rows of `v` columns (threads a power of two up to 512).
Expected<LaunchConfig> blockPerRow(const KernelDesc &desc, int64_t rows, int64_t v) {
  if (rows > kMaxGrid)
    return kindError(desc, Twine(rows) + " rows exceed the grid's 2^31 - 1 blocks");
  LaunchConfig config;
  config.grid = {std::max<int64_t>(rows, 1), 1, 1};
  config.block = {roundThreads(v, 512), 1, 1};
  return config;
}

/// One block per logits row; checks targets [N], and the per-row output (`rowOutput`: [N])
/// or the dlogits ([N, V]).
Expected<LaunchConfig> rowsLaunch(const KernelDesc &desc, const LaunchShapes &s) {
  if (Error error = checkRank(desc, s.inputs[0], 2, "input 0 (logits)"))
    return std::move(error);
  int64_t n = s.inputs[0][0], v = s.inputs[0][1];
  if (Error error = checkVector(desc, s.inputs[1], n, "input 1 (targets)"))
    return std::move(error);
  if (Error error = desc.kind == "cross_entropy"
                        ? checkVector(desc, s.outputs[0], n, "output 0 (loss)")
                        : checkRowGradOperands(desc, s, n))
    return std::move(error);
  Expected<LaunchConfig> config = blockPerRow(desc, n, v);
  if (config)
    config->args = {n, v};
  return config;
}

//===----------------------------------------------------------------------===//
// softcap_ce, softcap_ce_grad
//===----------------------------------------------------------------------===//

Expected<std::string> softcapCeSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1}, {}))
    return std::move(error);
  if (Error error = checkIndex(desc, /*isOutput=*/false, 2))
    return std::move(error);
  if (Error error = checkF32Output(desc, 0, "ce"))
    return std::move(error);
  Expected<double> cap = readCap(desc);
  if (!cap)
    return cap.takeError();
  return wrapKernel(desc, {"loss"}, {"h", "w", "targets"}, {"ce"}, {"n", "d", "v"},
                    formatv("fk::softcapCe(h, w, targets, ce, n, d, v, {0});",
                            floatLiteral(*cap))
                        .str(),
                    "256");
}

Expected<std::string> softcapCeGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 4, 2))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1, 3}, {0}))
    return std::move(error);
  if (Error error = checkIndex(desc, /*isOutput=*/false, 2))
    return std::move(error);
  if (Error error = checkF32Output(desc, 1, "dw"))
    return std::move(error);
  Expected<double> cap = readCap(desc);
  if (!cap)
    return cap.takeError();
  return wrapKernel(
      desc, {"loss"}, {"h", "w", "targets", "dce"}, {"dh", "dw"}, {"n", "d", "v", "rows_per_block"},
      formatv("fk::softcapCeGrad(h, w, targets, dce, dh, dw, n, d, v, {0}, rows_per_block);",
              floatLiteral(*cap))
          .str(),
      "256");
}

/// h [N, D], w [V, D], targets [N]: (N, D, V).
Expected<std::array<int64_t, 3>> headShape(const KernelDesc &desc, const LaunchShapes &s) {
  if (Error error = checkRank(desc, s.inputs[0], 2, "input 0 (h)"))
    return std::move(error);
  if (Error error = checkRank(desc, s.inputs[1], 2, "input 1 (w)"))
    return std::move(error);
  int64_t n = s.inputs[0][0], d = s.inputs[0][1], v = s.inputs[1][0];
  if (s.inputs[1][1] != d)
    return kindError(desc, "input 1 (w) must be [V, " + Twine(d) + "] (h's D), got " +
                               shapeString(s.inputs[1]));
  if (Error error = checkVector(desc, s.inputs[2], n, "input 2 (targets)"))
    return std::move(error);
  if (n > 0 && v == 0)
    return kindError(desc, "input 1 (w) has no vocabulary rows");
  return std::array<int64_t, 3>{n, d, v};
}

Expected<LaunchConfig> softcapCeLaunch(const KernelDesc &desc, const LaunchShapes &s) {
  Expected<std::array<int64_t, 3>> shape = headShape(desc, s);
  if (!shape)
    return shape.takeError();
  auto [n, d, v] = *shape;
  if (Error error = checkVector(desc, s.outputs[0], n, "output 0 (ce)"))
    return std::move(error);
  LaunchConfig config;
  config.grid = {std::max<int64_t>((n + kHeadRows - 1) / kHeadRows, 1), 1, 1};
  config.block = {kHeadThreads, 1, 1};
  config.args = {n, d, v};
  return config;
}

/// Dynamic shared memory of a gradient block of `rows` rows: the fp32 [rows × d] accumulator
/// (rounded up to 16 bytes), then dℓ [64 × rows].
int64_t gradSmem(int64_t rows, int64_t d) {
  return ((rows * d + 3) / 4 * 4 + kHeadRows * rows) * 4;
}

Expected<LaunchConfig> softcapCeGradLaunch(const KernelDesc &desc, const LaunchShapes &s) {
  Expected<std::array<int64_t, 3>> shape = headShape(desc, s);
  if (!shape)
    return shape.takeError();
  auto [n, d, v] = *shape;
  if (Error error = checkVector(desc, s.inputs[3], n, "input 3 (dce)"))
    return std::move(error);
  if (s.outputs[0] != s.inputs[0])
    return kindError(desc, "output 0 (dh) must have h's shape " + shapeString(s.inputs[0]) +
                               ", got " + shapeString(s.outputs[0]));
  if (s.outputs[1] != s.inputs[1])
    return kindError(desc, "output 1 (dw) must have w's shape " + shapeString(s.inputs[1]) +
                               ", got " + shapeString(s.outputs[1]));
  if (n > kGradMaxRows)
    return kindError(desc, Twine(n) + " token rows exceed the " + Twine(kGradMaxRows) +
                               " the CUDA kernel's per-token scratch holds; split the rows");
  int64_t rows = 32;
  if (gradSmem(rows, d) > kGradMaxDynamicSmem)
    rows = 16;
  if (gradSmem(rows, d) > kGradMaxDynamicSmem)
    return kindError(desc, "D = " + Twine(d) + " is too large: 16 rows of fp32 gradient (" +
                               Twine(gradSmem(16, d)) + " bytes) exceed the " +
                               Twine(kGradMaxDynamicSmem) +
                               " bytes of shared memory a block may use");
  int64_t blocks = (n + kHeadRows - 1) / kHeadRows + (n + rows - 1) / rows + (v + rows - 1) / rows;
  if (blocks > kMaxGrid)
    return kindError(desc, Twine(blocks) + " blocks exceed the grid's 2^31 - 1");
  LaunchConfig config;
  config.grid = {std::max<int64_t>(blocks, 1), 1, 1};
  config.block = {kHeadThreads, 1, 1};
  config.smem = gradSmem(rows, d);
  config.args = {n, d, v, rows};
  return config;
}

//===----------------------------------------------------------------------===//
// softcap_ce_rows, softcap_ce_rows_grad
//===----------------------------------------------------------------------===//

/// The CUDA kernels' (and the CPU's) choice of shift: the cap for 0 < cap <= 43, else max z.
bool isFixedShift(double cap) { return cap > 0 && cap <= 43; }

/// `fk::<function><kFixedShift>(...)` for the cap: a fixed shift (cap) for 0 < cap ≤ 43, as
/// the CPU kernel shifts; the cap is baked in, the first row is a launch argument.
Expected<std::string> rowsCall(const KernelDesc &desc, StringRef function, StringRef operands) {
  Expected<double> cap = readCap(desc);
  if (!cap)
    return cap.takeError();
  // The plan's `row` is the launch's `first` argument; check it is there.
  Expected<int64_t> row = desc.getInt("row");
  if (!row)
    return row.takeError();
  bool fixedShift = isFixedShift(*cap);
  return formatv("fk::{0}<{1}>({2}, {3});", function, fixedShift ? "true" : "false", operands,
                 floatLiteral(*cap))
      .str();
}

Expected<std::string> softcapCeRowsSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 2, 1))
    return std::move(error);
  if (desc.inputs[0] != ElementType::F32)
    return kindError(desc, "input 0 (logits) must be f32, got " +
                               elementTypeName(desc.inputs[0]));
  if (Error error = checkIndex(desc, /*isOutput=*/false, 1))
    return std::move(error);
  if (Error error = checkF32Output(desc, 0, "ce"))
    return std::move(error);
  Expected<std::string> call =
      rowsCall(desc, "softcapCeRows", "logits, targets, ce, rows, vocab, first");
  if (!call)
    return call.takeError();
  // The fixed-shift forward streams with up to 512 threads; the max shift caches the row.
  Expected<double> cap = readCap(desc);
  if (!cap)
    return cap.takeError();
  return wrapKernel(desc, {"loss"}, {"logits", "targets"}, {"ce"}, {"rows", "vocab", "first"},
                    *call, isFixedShift(*cap) ? "512" : "1024");
}

Expected<std::string> softcapCeRowsGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 1))
    return std::move(error);
  if (desc.inputs[0] != ElementType::F32)
    return kindError(desc, "input 0 (logits) must be f32, got " +
                               elementTypeName(desc.inputs[0]));
  if (Error error = checkFloat(desc, {2}, {0}))
    return std::move(error);
  if (Error error = checkIndex(desc, /*isOutput=*/false, 1))
    return std::move(error);
  Expected<std::string> call = rowsCall(desc, "softcapCeRowsGrad",
                                        "logits, targets, dce, dlogits, rows, vocab, first");
  if (!call)
    return call.takeError();
  return wrapKernel(desc, {"loss"}, {"logits", "targets", "dce"}, {"dlogits"},
                    {"rows", "vocab", "first"}, *call, "1024");
}

/// One block per row of logits [R, V]; targets (and dce) [N] with row + R <= N.
Expected<LaunchConfig> softcapCeRowsLaunch(const KernelDesc &desc, const LaunchShapes &s) {
  if (Error error = checkRank(desc, s.inputs[0], 2, "input 0 (logits)"))
    return std::move(error);
  if (Error error = checkRank(desc, s.inputs[1], 1, "input 1 (targets)"))
    return std::move(error);
  int64_t rows = s.inputs[0][0], v = s.inputs[0][1], n = s.inputs[1][0];
  Expected<int64_t> first = desc.getInt("row");
  if (!first)
    return first.takeError();
  if (*first < 0 || *first > n || rows > n - *first)
    return kindError(desc, "attribute 'row' = " + Twine(*first) + " with " + Twine(rows) +
                               " logit rows runs past the " + Twine(n) + " targets");
  if (Error error = desc.kind == "softcap_ce_rows"
                        ? checkVector(desc, s.outputs[0], rows, "output 0 (ce)")
                        : checkRowGradOperands(desc, s, n))
    return std::move(error);
  if (rows > kMaxGrid)
    return kindError(desc, Twine(rows) + " rows exceed the grid's 2^31 - 1 blocks");
  Expected<double> cap = readCap(desc);
  if (!cap)
    return cap.takeError();
  const bool cacheRow = desc.kind == "softcap_ce_rows_grad" || !isFixedShift(*cap);
  const int64_t cacheBytes = (v * 4 + 15) / 16 * 16;
  LaunchConfig config;
  config.grid = {std::max<int64_t>(rows, 1), 1, 1};
  config.block = {roundThreads((v + 3) / 4, cacheRow ? 1024 : 512), 1, 1};
  if (cacheRow && cacheBytes <= kRowCacheMaxBytes)
    config.smem = cacheBytes;
  config.args = {rows, v, *first};
  return config;
}

} // namespace

void mlir::fusion::cuda::addLossKinds(std::vector<KindGenerator> &kinds) {
  kinds.push_back({"cross_entropy", crossEntropySource, rowsLaunch});
  kinds.push_back({"cross_entropy_grad", crossEntropyGradSource, rowsLaunch});
  kinds.push_back({"softcap_ce", softcapCeSource, softcapCeLaunch});
  kinds.push_back({"softcap_ce_grad", softcapCeGradSource, softcapCeGradLaunch});
  kinds.push_back({"softcap_ce_rows", softcapCeRowsSource, softcapCeRowsLaunch});
  kinds.push_back({"softcap_ce_rows_grad", softcapCeRowsGradSource, softcapCeRowsLaunch});
}
