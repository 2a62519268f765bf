//===- Moe.cpp - CUDA generators for the moe kinds ------------------------===//
//
// Part of the FusionLLM compiler.
//
// The DeepSeekMoE kinds (MODEL.md §5; templates/moe.cuh has the math and the CPU kernels
// each follows). Launch geometry, with N tokens, K slots, E experts, P = N·K pairs:
//   moe_route, moe_route_grad   one warp per token, 256 threads (8 tokens) per block;
//                               args [N, E] / [N, E, K]. E <= 256, n_groups, top_k <= 32.
//   moe_dispatch                256 pairs per block, ceil(P/256) blocks, (2 + 8)·E ints of
//                               dynamic shared memory; args [N, D, K, E]. Every block
//                               re-counts all P expert ids (from L2) instead of a second
//                               launch: the stable order needs every block's prefix counts.
//   moe_combine, moe_combine_grad, moe_dispatch_grad
//                               128 tokens per block, 512 threads (a warp per token at a
//                               time), 128·K ints of dynamic shared memory (the block's
//                               slice of the inverse permutation, found by scanning perm);
//                               args [N, K, D].
//   grouped_matmul              256 threads, tiles BM×BN (128×128 with tensor cores when x
//                               and w are both bf16 or both f16, else 64×64 CUDA-core fp32);
//                               grid [ceil(M/BM) + E + 1, ceil(D_out/BN)] (row tiles: an upper
//                               bound, the group table is computed in the kernel from
//                               group_sizes); args [M, D_in, D_out, E]. E <= 512. Tensor-core
//                               launches get 98304 bytes of dynamic shared memory (the 3-slot
//                               cp.async pipeline of 64-wide k-tiles of the mma.sync tile,
//                               taken on sm_80+ when D_in and D_out are multiples of 8 and
//                               the buffers 16-byte aligned, checked in the kernel; else the
//                               WMMA tile) and __launch_bounds__(256, 2): with the 8576-byte
//                               static group table, two blocks fit an sm_90 multiprocessor
//                               (one on sm_80; sm_86 / sm_89 allow only 99 KiB a block, too
//                               little); CUDA-core ones 28672 bytes.
//   grouped_matmul_grad         a 1-D grid: E·ceil(D_out/BM)·ceil(D_in/BN) dW blocks, then
//                               (ceil(M/BM) + E + 1)·ceil(D_in/BN) dxs blocks (each product
//                               picks its tile configuration by its operand types; shared
//                               memory for the larger).
//   moe_balance_loss            rows·chunks blocks of 256 threads, chunks = ceil(seq_len/256)
//                               capped so rows·chunks·E <= 2^16 scratch partials (the last
//                               block combines them in a fixed order), (256 + max(E, 256))
//                               doubles + E ints of dynamic shared memory; when that leaves
//                               one block (or none fits), one block of 1024 threads (rows in
//                               order) with (1024 + max(E, 1024)) doubles + E ints; args
//                               [N, E, K, seq_len].
//   moe_balance_loss_grad       256 tokens per block: (N/seq_len)·ceil(seq_len/256) blocks,
//                               E doubles + E ints of dynamic shared memory; same args.
//   moe_bias_update             one block of 256 threads; args [E].
//
// Faster versions: grouped_matmul with wgmma/TMA on sm_90a (persistent blocks walking a tile table that moe_dispatch could emit, instead of every
// block scanning group_sizes); the gather kinds reading a row-of-pair table written by
// moe_dispatch instead of scanning perm per block; 16-byte vector loads of bf16 rows in the
// gather kinds.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <functional>
#include <limits>

using namespace llvm;
using namespace mlir::fusion::cuda;

namespace {

/// Mirrors of templates/moe.cuh's constants.
constexpr int64_t kRouteThreads = 256;
constexpr int64_t kRouteMaxExperts = 32 * 8; // fk::moe::kRouteSlots
constexpr int64_t kDispatchThreads = 256;
constexpr int64_t kDispatchMaxExperts = 4096;
constexpr int64_t kGatherTokens = 128;
constexpr int64_t kGatherThreads = 512;
constexpr int64_t kGatherMaxSlots = 256;
constexpr int64_t kGemmThreads = 256;
constexpr int64_t kGemmSimtSmem = 28672; // fk::moe::kGemmSmemBytes
constexpr int64_t kGemmMmaSmem = 98304;  // fk::moe::kGemmMmaSmemBytes
constexpr int64_t kMaxGroups = 512;
constexpr int64_t kLossThreads = 1024;
constexpr int64_t kLossMaxExperts = 4096;
/// Tokens per block of the multi-block moe_balance_loss, and its scratch's (block, expert)
/// partials (templates/moe.cuh's kLossMaxPartials).
constexpr int64_t kLossChunkTokens = 256;
constexpr int64_t kLossMaxPartials = int64_t(1) << 16;
constexpr int64_t kLossGradTokens = 256;
constexpr int64_t kBiasThreads = 256;
constexpr int64_t kMaxGrid = std::numeric_limits<int32_t>::max();
constexpr int64_t kMaxGridYZ = 65535;

/// Fails unless buffer `index` (an output when `isOutput`) has element type `type`.
Error checkType(const KernelDesc &desc, bool isOutput, unsigned index, ElementType type,
                StringRef role) {
  ElementType actual = isOutput ? desc.outputs[index] : desc.inputs[index];
  if (actual == type)
    return Error::success();
  return kindError(desc, Twine(isOutput ? "output " : "input ") + Twine(index) + " (" + role +
                            ") must be " + elementTypeName(type) + ", got " +
                            elementTypeName(actual));
}

/// Runs the checks in order, returning the first failure.
Error firstError(std::initializer_list<std::function<Error()>> checks) {
  for (const std::function<Error()> &check : checks)
    if (Error error = check())
      return error;
  return Error::success();
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// A launch of `blocks` 1-D blocks of `threads`, at least one block.
Expected<LaunchConfig> linearLaunch(const KernelDesc &desc, int64_t blocks, int64_t threads,
                                    int64_t smem, SmallVector<int64_t> args) {
  if (blocks > kMaxGrid)
    return kindError(desc, "needs " + Twine(blocks) + " blocks, more than the grid's " +
                              Twine(kMaxGrid));
  LaunchConfig config;
  config.grid = {std::max<int64_t>(blocks, 1), 1, 1};
  config.block = {threads, 1, 1};
  config.smem = smem;
  config.args = std::move(args);
  return config;
}

Expected<double> positiveFloat(const KernelDesc &desc, StringRef key) {
  Expected<double> value = desc.getFloat(key);
  if (!value)
    return value.takeError();
  if (!(*value > 0) || !std::isfinite(*value))
    return kindError(desc, "attribute '" + key + "' must be positive and finite, got " +
                              std::to_string(*value));
  return *value;
}

Expected<double> nonNegativeFloat(const KernelDesc &desc, StringRef key) {
  Expected<double> value = desc.getFloat(key);
  if (!value)
    return value.takeError();
  if (!(*value >= 0) || !std::isfinite(*value))
    return kindError(desc, "attribute '" + key + "' must be finite and >= 0, got " +
                              std::to_string(*value));
  return *value;
}

/// An integer attribute in [lo, hi].
Expected<int64_t> intInRange(const KernelDesc &desc, StringRef key, int64_t lo, int64_t hi) {
  Expected<int64_t> value = desc.getInt(key);
  if (!value)
    return value.takeError();
  if (*value < lo || *value > hi)
    return kindError(desc, "attribute '" + key + "' = " + Twine(*value) + " must be in [" +
                              Twine(lo) + ", " + Twine(hi) + "]");
  return *value;
}

//===----------------------------------------------------------------------===//
// moe_route, moe_route_grad
//===----------------------------------------------------------------------===//

struct RouteAttrs {
  int64_t topK, numGroups, limitedGroups, groupTopK;
  double routeScale;
};

Expected<RouteAttrs> routeAttrs(const KernelDesc &desc) {
  RouteAttrs attrs;
  Expected<int64_t> topK = intInRange(desc, "top_k", 1, 32);
  if (!topK)
    return topK.takeError();
  Expected<int64_t> groups = intInRange(desc, "n_groups", 1, 32);
  if (!groups)
    return groups.takeError();
  Expected<int64_t> limited = intInRange(desc, "n_limited_groups", 1, *groups);
  if (!limited)
    return limited.takeError();
  Expected<int64_t> groupTopK = intInRange(desc, "group_topk", 1, kRouteMaxExperts);
  if (!groupTopK)
    return groupTopK.takeError();
  Expected<double> scale = positiveFloat(desc, "route_scale");
  if (!scale)
    return scale.takeError();
  attrs.topK = *topK;
  attrs.numGroups = *groups;
  attrs.limitedGroups = *limited;
  attrs.groupTopK = *groupTopK;
  attrs.routeScale = *scale;
  return attrs;
}

Expected<std::string> routeSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 2, 3))
    return std::move(error);
  if (Error error = firstError({
          [&] { return checkType(desc, false, 0, ElementType::F32, "logits"); },
          [&] { return checkType(desc, false, 1, ElementType::F32, "bias"); },
          [&] { return checkType(desc, true, 0, ElementType::F32, "weights"); },
          [&] { return checkType(desc, true, 1, ElementType::I32, "indices"); },
          [&] { return checkType(desc, true, 2, ElementType::F32, "scores"); },
      }))
    return std::move(error);
  Expected<RouteAttrs> attrs = routeAttrs(desc);
  if (!attrs)
    return attrs.takeError();
  return wrapKernel(desc, {"moe"}, {"logits", "bias"}, {"weights", "indices", "scores"},
                    {"n", "e"},
                    formatv("fk::moe::moeRoute(logits, bias, weights, indices, scores, n, e, "
                            "{0}, {1}, {2}, {3}, {4});",
                            attrs->topK, attrs->numGroups, attrs->limitedGroups,
                            attrs->groupTopK, doubleLiteral(attrs->routeScale))
                        .str(),
                    "256");
}

Expected<LaunchConfig> routeLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<RouteAttrs> attrs = routeAttrs(desc);
  if (!attrs)
    return attrs.takeError();
  ArrayRef<int64_t> logits = shapes.inputs[0];
  if (Error error = checkRank(desc, logits, 2, "input 0 (logits)"))
    return std::move(error);
  const int64_t n = logits[0], e = logits[1];
  if (e < 1 || e > kRouteMaxExperts)
    return kindError(desc, "routes over " + Twine(e) + " experts; the kernel holds 1 to " +
                              Twine(kRouteMaxExperts) + " (8 per lane of a warp)");
  if (e % attrs->numGroups != 0)
    return kindError(desc, "attribute 'n_groups' = " + Twine(attrs->numGroups) +
                              " must divide the " + Twine(e) + " experts");
  const int64_t groupSize = e / attrs->numGroups;
  if (attrs->groupTopK > groupSize)
    return kindError(desc, "attribute 'group_topk' = " + Twine(attrs->groupTopK) +
                              " must be at most the " + Twine(groupSize) +
                              " experts of a group");
  if (attrs->topK > attrs->limitedGroups * groupSize)
    return kindError(desc, "attribute 'top_k' = " + Twine(attrs->topK) +
                              " must be at most n_limited_groups × experts per group = " +
                              Twine(attrs->limitedGroups * groupSize));
  if (Error error = firstError({
          [&] { return checkShape(desc, shapes.inputs[1], {e}, "input 1 (bias)"); },
          [&] {
            return checkShape(desc, shapes.outputs[0], {n, attrs->topK}, "output 0 (weights)");
          },
          [&] {
            return checkShape(desc, shapes.outputs[1], {n, attrs->topK}, "output 1 (indices)");
          },
          [&] { return checkShape(desc, shapes.outputs[2], {n, e}, "output 2 (scores)"); },
      }))
    return std::move(error);
  return linearLaunch(desc, ceilDiv(n, kRouteThreads / 32), kRouteThreads, 0, {n, e});
}

Expected<std::string> routeGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 1))
    return std::move(error);
  if (Error error = firstError({
          [&] { return checkFloat(desc, {0, 2}, {}); },
          [&] { return checkIndex(desc, false, 1); },
          [&] { return checkType(desc, true, 0, ElementType::F32, "dlogits"); },
      }))
    return std::move(error);
  Expected<double> scale = positiveFloat(desc, "route_scale");
  if (!scale)
    return scale.takeError();
  return wrapKernel(desc, {"moe"}, {"scores", "indices", "dweights"}, {"dlogits"},
                    {"n", "e", "k"},
                    formatv("fk::moe::moeRouteGrad(scores, indices, dweights, dlogits, n, e, "
                            "k, {0});",
                            doubleLiteral(*scale))
                        .str(),
                    "256");
}

Expected<LaunchConfig> routeGradLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> scores = shapes.inputs[0], indices = shapes.inputs[1];
  if (Error error = firstError({
          [&] { return checkRank(desc, scores, 2, "input 0 (scores)"); },
          [&] { return checkRank(desc, indices, 2, "input 1 (indices)"); },
      }))
    return std::move(error);
  const int64_t n = scores[0], e = scores[1], k = indices[1];
  if (Error error = firstError({
          [&] { return checkShape(desc, indices, {n, k}, "input 1 (indices)"); },
          [&] { return checkShape(desc, shapes.inputs[2], {n, k}, "input 2 (dweights)"); },
          [&] { return checkShape(desc, shapes.outputs[0], {n, e}, "output 0 (dlogits)"); },
      }))
    return std::move(error);
  return linearLaunch(desc, ceilDiv(n, kRouteThreads / 32), kRouteThreads, 0, {n, e, k});
}

//===----------------------------------------------------------------------===//
// moe_dispatch and the gather kinds
//===----------------------------------------------------------------------===//

Expected<std::string> dispatchSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 2, 3))
    return std::move(error);
  if (Error error = firstError({
          [&] { return checkFloat(desc, {0}, {}); },
          [&] { return checkIndex(desc, false, 1); },
          [&] { return checkType(desc, true, 0, desc.inputs[0], "xs"); },
          [&] { return checkType(desc, true, 1, ElementType::I32, "group_sizes"); },
          [&] { return checkType(desc, true, 2, ElementType::I32, "perm"); },
      }))
    return std::move(error);
  Expected<int64_t> experts = intInRange(desc, "num_experts", 1, kDispatchMaxExperts);
  if (!experts)
    return experts.takeError();
  return wrapKernel(
      desc, {"moe"}, {"x", "indices"}, {"xs", "group_sizes", "perm"}, {"n", "d", "k", "e"},
      "fk::moe::moeDispatch(x, indices, xs, group_sizes, perm, n, d, k, e);", "256");
}

Expected<LaunchConfig> dispatchLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<int64_t> experts = intInRange(desc, "num_experts", 1, kDispatchMaxExperts);
  if (!experts)
    return experts.takeError();
  ArrayRef<int64_t> x = shapes.inputs[0], indices = shapes.inputs[1];
  if (Error error = firstError({
          [&] { return checkRank(desc, x, 2, "input 0 (x)"); },
          [&] { return checkRank(desc, indices, 2, "input 1 (indices)"); },
      }))
    return std::move(error);
  const int64_t n = x[0], d = x[1], k = indices[1], pairs = n * k;
  if (pairs > std::numeric_limits<int32_t>::max())
    return kindError(desc, Twine(pairs) +
                              " (token, slot) pairs are more than an i32 permutation indexes");
  if (Error error = firstError({
          [&] { return checkShape(desc, indices, {n, k}, "input 1 (indices)"); },
          [&] { return checkShape(desc, shapes.outputs[0], {pairs, d}, "output 0 (xs)"); },
          [&] {
            return checkShape(desc, shapes.outputs[1], {*experts}, "output 1 (group_sizes)");
          },
          [&] { return checkShape(desc, shapes.outputs[2], {pairs}, "output 2 (perm)"); },
      }))
    return std::move(error);
  const int64_t smem = (2 + kDispatchThreads / 32) * *experts * 4;
  return linearLaunch(desc, ceilDiv(pairs, kDispatchThreads), kDispatchThreads, smem,
                      {n, d, k, *experts});
}

/// The gather kinds' launch over n tokens of k slots.
Expected<LaunchConfig> gatherLaunch(const KernelDesc &desc, int64_t n, int64_t k, int64_t d) {
  if (k > kGatherMaxSlots)
    return kindError(desc, Twine(k) + " slots per token are more than the " +
                              Twine(kGatherMaxSlots) + " a block's permutation slice holds");
  if (n * k > std::numeric_limits<int32_t>::max())
    return kindError(desc, Twine(n * k) + " (token, slot) pairs are more than 2^31 - 1");
  return linearLaunch(desc, ceilDiv(n, kGatherTokens), kGatherThreads,
                      kGatherTokens * std::max<int64_t>(k, 1) * 4, {n, k, d});
}

Expected<std::string> dispatchGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 2, 1))
    return std::move(error);
  if (Error error = firstError({
          [&] { return checkFloat(desc, {0}, {0}); },
          [&] { return checkIndex(desc, false, 1); },
      }))
    return std::move(error);
  return wrapKernel(desc, {"moe"}, {"dxs", "perm"}, {"dx"}, {"n", "k", "d"},
                    "fk::moe::moeDispatchGrad(dxs, perm, dx, n, k, d);", "512");
}

Expected<LaunchConfig> dispatchGradLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> dxs = shapes.inputs[0], dx = shapes.outputs[0];
  if (Error error = firstError({
          [&] { return checkRank(desc, dxs, 2, "input 0 (dxs)"); },
          [&] { return checkRank(desc, dx, 2, "output 0 (dx)"); },
      }))
    return std::move(error);
  const int64_t pairs = dxs[0], d = dxs[1], n = dx[0];
  if ((n == 0 && pairs != 0) || (n > 0 && pairs % n != 0))
    return kindError(desc, "input 0 (dxs) must have N·K rows for output 0's N = " + Twine(n) +
                              ", got " + Twine(pairs));
  if (Error error = firstError({
          [&] { return checkShape(desc, shapes.inputs[1], {pairs}, "input 1 (perm)"); },
          [&] { return checkShape(desc, dx, {n, d}, "output 0 (dx)"); },
      }))
    return std::move(error);
  return gatherLaunch(desc, n, n == 0 ? 0 : pairs / n, d);
}

Expected<std::string> combineSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 1))
    return std::move(error);
  if (Error error = firstError({
          [&] { return checkFloat(desc, {0, 1}, {0}); },
          [&] { return checkIndex(desc, false, 2); },
      }))
    return std::move(error);
  return wrapKernel(desc, {"moe"}, {"ys", "weights", "perm"}, {"y"}, {"n", "k", "d"},
                    "fk::moe::moeCombine(ys, weights, perm, y, n, k, d);", "512");
}

/// ys [N·K, D], weights [N, K], perm [N·K]: (N, K, D).
Expected<std::array<int64_t, 3>> combineDims(const KernelDesc &desc,
                                             const LaunchShapes &shapes) {
  ArrayRef<int64_t> ys = shapes.inputs[0], weights = shapes.inputs[1];
  if (Error error = firstError({
          [&] { return checkRank(desc, ys, 2, "input 0 (ys)"); },
          [&] { return checkRank(desc, weights, 2, "input 1 (weights)"); },
      }))
    return std::move(error);
  const int64_t n = weights[0], k = weights[1], d = ys[1];
  if (Error error = firstError({
          [&] { return checkShape(desc, ys, {n * k, d}, "input 0 (ys)"); },
          [&] { return checkShape(desc, shapes.inputs[2], {n * k}, "input 2 (perm)"); },
      }))
    return std::move(error);
  return std::array<int64_t, 3>{n, k, d};
}

Expected<LaunchConfig> combineLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<std::array<int64_t, 3>> dims = combineDims(desc, shapes);
  if (!dims)
    return dims.takeError();
  auto [n, k, d] = *dims;
  if (Error error = checkShape(desc, shapes.outputs[0], {n, d}, "output 0 (y)"))
    return std::move(error);
  return gatherLaunch(desc, n, k, d);
}

Expected<std::string> combineGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 4, 2))
    return std::move(error);
  if (Error error = firstError({
          [&] { return checkFloat(desc, {0, 1, 3}, {0}); },
          [&] { return checkIndex(desc, false, 2); },
          [&] { return checkType(desc, true, 1, ElementType::F32, "dweights"); },
      }))
    return std::move(error);
  return wrapKernel(desc, {"moe"}, {"ys", "weights", "perm", "dy"}, {"dys", "dweights"},
                    {"n", "k", "d"},
                    "fk::moe::moeCombineGrad(ys, weights, perm, dy, dys, dweights, n, k, d);",
                    "512");
}

Expected<LaunchConfig> combineGradLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<std::array<int64_t, 3>> dims = combineDims(desc, shapes);
  if (!dims)
    return dims.takeError();
  auto [n, k, d] = *dims;
  if (Error error = firstError({
          [&] { return checkShape(desc, shapes.inputs[3], {n, d}, "input 3 (dy)"); },
          [&] { return checkShape(desc, shapes.outputs[0], {n * k, d}, "output 0 (dys)"); },
          [&] { return checkShape(desc, shapes.outputs[1], {n, k}, "output 1 (dweights)"); },
      }))
    return std::move(error);
  return gatherLaunch(desc, n, k, d);
}

//===----------------------------------------------------------------------===//
// grouped_matmul, grouped_matmul_grad
//===----------------------------------------------------------------------===//

/// A tile configuration of templates/moe.cuh (fk::moe::GemmMma / GemmSimt).
struct GemmConfig {
  const char *name;
  int64_t bm, bn;
  int64_t smem;   ///< dynamic shared bytes
  bool mma;
};

/// Tensor cores for operands of one 16-bit float type, CUDA cores otherwise.
GemmConfig gemmConfig(ElementType a, ElementType b) {
  if (a == b && (a == ElementType::BF16 || a == ElementType::F16))
    return {"fk::moe::GemmMma", 128, 128, kGemmMmaSmem, true};
  return {"fk::moe::GemmSimt", 64, 64, kGemmSimtSmem, false};
}

/// Tensor-core kernels hold two blocks per multiprocessor (at most 128 registers a thread).
const char *gemmBounds(bool mma) { return mma ? "256, 2" : "256"; }

/// x [M, D_in], w [E, D_out, D_in], group_sizes [E]: (M, D_in, D_out, E).
Expected<std::array<int64_t, 4>> gemmDims(const KernelDesc &desc, const LaunchShapes &shapes,
                                          StringRef xRole) {
  ArrayRef<int64_t> x = shapes.inputs[0], w = shapes.inputs[1];
  if (Error error = firstError({
          [&] { return checkRank(desc, x, 2, "input 0 (" + xRole.str() + ")"); },
          [&] { return checkRank(desc, w, 3, "input 1 (w)"); },
      }))
    return std::move(error);
  const int64_t m = x[0], din = x[1], e = w[0], dout = w[1];
  if (w[2] != din)
    return kindError(desc, "input 1 (w) must be [E, D_out, D_in] with " + xRole +
                              "'s D_in = " + Twine(din) + ", got " + shapeString(w));
  if (Error error = checkShape(desc, shapes.inputs[2], {e}, "input 2 (group_sizes)"))
    return std::move(error);
  if (e > kMaxGroups)
    return kindError(desc, Twine(e) + " groups are more than the " + Twine(kMaxGroups) +
                              " the kernel's group table holds");
  for (int64_t v : {m, din, dout})
    if (v > std::numeric_limits<int32_t>::max())
      return kindError(desc, "dimension " + Twine(v) + " is larger than 2^31 - 1");
  return std::array<int64_t, 4>{m, din, dout, e};
}

Expected<std::string> groupedMatmulSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 1))
    return std::move(error);
  if (Error error = firstError({
          [&] { return checkFloat(desc, {0, 1}, {}); },
          [&] { return checkIndex(desc, false, 2); },
          [&] { return checkType(desc, true, 0, desc.inputs[0], "y"); },
      }))
    return std::move(error);
  GemmConfig config = gemmConfig(desc.inputs[0], desc.inputs[1]);
  return wrapKernel(
      desc, {"moe"}, {"x", "w", "group_sizes"}, {"y"}, {"m", "din", "dout", "e"},
      formatv("fk::moe::groupedMatmul<{0}>(x, w, group_sizes, y, m, din, dout, e);",
              config.name)
          .str(),
      gemmBounds(config.mma));
}

Expected<LaunchConfig> groupedMatmulLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<std::array<int64_t, 4>> dims = gemmDims(desc, shapes, "x");
  if (!dims)
    return dims.takeError();
  auto [m, din, dout, e] = *dims;
  if (Error error = checkShape(desc, shapes.outputs[0], {m, dout}, "output 0 (y)"))
    return std::move(error);
  GemmConfig config = gemmConfig(desc.inputs[0], desc.inputs[1]);
  const int64_t rowTiles = ceilDiv(m, config.bm) + e + 1;
  const int64_t colTiles = std::max<int64_t>(ceilDiv(dout, config.bn), 1);
  if (rowTiles > kMaxGrid || colTiles > kMaxGridYZ)
    return kindError(desc, "needs a grid of " + Twine(rowTiles) + " x " + Twine(colTiles) +
                              " tiles, more than a launch allows");
  LaunchConfig launch;
  launch.grid = {rowTiles, colTiles, 1};
  launch.block = {kGemmThreads, 1, 1};
  launch.smem = config.smem;
  launch.args = {m, din, dout, e};
  return launch;
}

Expected<std::string> groupedMatmulGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 4, 2))
    return std::move(error);
  if (Error error = firstError({
          [&] { return checkFloat(desc, {0, 1, 3}, {0}); },
          [&] { return checkIndex(desc, false, 2); },
          [&] { return checkType(desc, true, 1, ElementType::F32, "dw"); },
      }))
    return std::move(error);
  GemmConfig dwConfig = gemmConfig(desc.inputs[3], desc.inputs[0]);
  GemmConfig dxConfig = gemmConfig(desc.inputs[3], desc.inputs[1]);
  return wrapKernel(desc, {"moe"}, {"xs", "w", "group_sizes", "dout"}, {"dxs", "dw"},
                    {"m", "din", "d_out", "e"},
                    formatv("fk::moe::groupedMatmulGrad<{0}, {1}>(xs, w, group_sizes, dout, "
                            "dxs, dw, m, din, d_out, e);",
                            dwConfig.name, dxConfig.name)
                        .str(),
                    gemmBounds(dwConfig.mma || dxConfig.mma));
}

Expected<LaunchConfig> groupedMatmulGradLaunch(const KernelDesc &desc,
                                               const LaunchShapes &shapes) {
  Expected<std::array<int64_t, 4>> dims = gemmDims(desc, shapes, "xs");
  if (!dims)
    return dims.takeError();
  auto [m, din, dout, e] = *dims;
  if (Error error = firstError({
          [&] { return checkShape(desc, shapes.inputs[3], {m, dout}, "input 3 (dout)"); },
          [&] { return checkShape(desc, shapes.outputs[0], {m, din}, "output 0 (dxs)"); },
          [&] { return checkShape(desc, shapes.outputs[1], {e, dout, din}, "output 1 (dw)"); },
      }))
    return std::move(error);
  GemmConfig dwConfig = gemmConfig(desc.inputs[3], desc.inputs[0]);
  GemmConfig dxConfig = gemmConfig(desc.inputs[3], desc.inputs[1]);
  const int64_t dwBlocks = e * ceilDiv(dout, dwConfig.bm) * ceilDiv(din, dwConfig.bn);
  const int64_t dxBlocks = (ceilDiv(m, dxConfig.bm) + e + 1) * ceilDiv(din, dxConfig.bn);
  return linearLaunch(desc, dwBlocks + dxBlocks, kGemmThreads,
                      std::max(dwConfig.smem, dxConfig.smem), {m, din, dout, e});
}

//===----------------------------------------------------------------------===//
// moe_balance_loss, moe_balance_loss_grad
//===----------------------------------------------------------------------===//

/// scores [N, E], indices [N, K], seq_len dividing N: (N, E, K, seq_len).
Expected<std::array<int64_t, 4>> lossDims(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<int64_t> seqLen = desc.getInt("seq_len");
  if (!seqLen)
    return seqLen.takeError();
  ArrayRef<int64_t> scores = shapes.inputs[0], indices = shapes.inputs[1];
  if (Error error = firstError({
          [&] { return checkRank(desc, scores, 2, "input 0 (scores)"); },
          [&] { return checkRank(desc, indices, 2, "input 1 (indices)"); },
      }))
    return std::move(error);
  const int64_t n = scores[0], e = scores[1], k = indices[1];
  if (Error error = checkShape(desc, indices, {n, k}, "input 1 (indices)"))
    return std::move(error);
  if (*seqLen < 1 || n % *seqLen != 0)
    return kindError(desc, "attribute 'seq_len' = " + Twine(*seqLen) +
                              " must be >= 1 and divide the " + Twine(n) + " tokens");
  if (n == 0 || e == 0 || k == 0)
    return kindError(desc, "needs at least one token, expert and selection (scores " +
                              shapeString(scores) + ", indices " + shapeString(indices) + ")");
  if (e > kLossMaxExperts)
    return kindError(desc, Twine(e) + " experts are more than the " + Twine(kLossMaxExperts) +
                              " the kernel's shared memory holds");
  return std::array<int64_t, 4>{n, e, k, *seqLen};
}

Expected<std::string> balanceLossSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 2, 1))
    return std::move(error);
  if (Error error = firstError({
          [&] { return checkFloat(desc, {0}, {}); },
          [&] { return checkIndex(desc, false, 1); },
          [&] { return checkType(desc, true, 0, ElementType::F32, "loss"); },
      }))
    return std::move(error);
  if (Error error = desc.getInt("seq_len").takeError())
    return std::move(error);
  return wrapKernel(desc, {"moe"}, {"scores", "indices"}, {"loss"},
                    {"n", "e", "k", "seq_len"},
                    "fk::moe::moeBalanceLoss(scores, indices, loss, n, e, k, seq_len);",
                    "1024");
}

Expected<LaunchConfig> balanceLossLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<std::array<int64_t, 4>> dims = lossDims(desc, shapes);
  if (!dims)
    return dims.takeError();
  auto [n, e, k, seqLen] = *dims;
  if (numElements(shapes.outputs[0]) != 1)
    return kindError(desc, "output 0 (loss) must hold one element, got " +
                              shapeString(shapes.outputs[0]));
  // Chunks of up to 256 tokens per block, as many as the kernel's scratch holds.
  const int64_t rows = n / seqLen;
  const int64_t chunks =
      std::min(ceilDiv(seqLen, kLossChunkTokens), kLossMaxPartials / (rows * e));
  if (chunks >= 1 && rows * chunks > 1)
    return linearLaunch(desc, rows * chunks, kLossChunkTokens,
                        (kLossChunkTokens + std::max(e, kLossChunkTokens)) * 8 + e * 4,
                        {n, e, k, seqLen});
  const int64_t smem = (kLossThreads + std::max(e, kLossThreads)) * 8 + e * 4;
  return linearLaunch(desc, 1, kLossThreads, smem, {n, e, k, seqLen});
}

Expected<std::string> balanceLossGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 1))
    return std::move(error);
  if (Error error = firstError({
          [&] { return checkFloat(desc, {0, 2}, {}); },
          [&] { return checkIndex(desc, false, 1); },
          [&] { return checkType(desc, true, 0, ElementType::F32, "dscores"); },
      }))
    return std::move(error);
  if (Error error = desc.getInt("seq_len").takeError())
    return std::move(error);
  return wrapKernel(
      desc, {"moe"}, {"scores", "indices", "dloss"}, {"dscores"}, {"n", "e", "k", "seq_len"},
      "fk::moe::moeBalanceLossGrad(scores, indices, dloss, dscores, n, e, k, seq_len);",
      "256");
}

Expected<LaunchConfig> balanceLossGradLaunch(const KernelDesc &desc,
                                             const LaunchShapes &shapes) {
  Expected<std::array<int64_t, 4>> dims = lossDims(desc, shapes);
  if (!dims)
    return dims.takeError();
  auto [n, e, k, seqLen] = *dims;
  if (numElements(shapes.inputs[2]) != 1)
    return kindError(desc, "input 2 (dloss) must hold one element, got " +
                              shapeString(shapes.inputs[2]));
  if (Error error = checkShape(desc, shapes.outputs[0], {n, e}, "output 0 (dscores)"))
    return std::move(error);
  const int64_t blocks = (n / seqLen) * ceilDiv(seqLen, kLossGradTokens);
  return linearLaunch(desc, blocks, kLossGradTokens, e * 12, {n, e, k, seqLen});
}

//===----------------------------------------------------------------------===//
// moe_bias_update
//===----------------------------------------------------------------------===//

Expected<std::string> biasUpdateSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 4, 2))
    return std::move(error);
  static const char *const kInputRoles[] = {"step_counts", "ctl", "bias", "window"};
  static const char *const kOutputRoles[] = {"bias", "window"};
  for (unsigned i = 0; i < 4; ++i)
    if (Error error = checkType(desc, false, i, ElementType::F32, kInputRoles[i]))
      return std::move(error);
  for (unsigned i = 0; i < 2; ++i)
    if (Error error = checkType(desc, true, i, ElementType::F32, kOutputRoles[i]))
      return std::move(error);
  Expected<int64_t> every = intInRange(desc, "every", 1, std::numeric_limits<int64_t>::max());
  if (!every)
    return every.takeError();
  Expected<double> speed = nonNegativeFloat(desc, "speed");
  if (!speed)
    return speed.takeError();
  Expected<double> upper = nonNegativeFloat(desc, "upper");
  if (!upper)
    return upper.takeError();
  Expected<double> lower = nonNegativeFloat(desc, "lower");
  if (!lower)
    return lower.takeError();
  return wrapKernel(desc, {"moe"}, {"counts", "ctl", "bias", "window"},
                    {"bias_out", "window_out"}, {"e"},
                    formatv("fk::moe::moeBiasUpdate(counts, ctl, bias, window, bias_out, "
                            "window_out, e, {0}, {1}, {2}, {3});",
                            *every, doubleLiteral(*speed), doubleLiteral(*upper),
                            doubleLiteral(*lower))
                        .str(),
                    "256");
}

Expected<LaunchConfig> biasUpdateLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> counts = shapes.inputs[0];
  if (Error error = checkRank(desc, counts, 1, "input 0 (step_counts)"))
    return std::move(error);
  if (Error error = firstError({
          [&] { return checkShape(desc, shapes.inputs[1], {8}, "input 1 (ctl)"); },
          [&] { return checkShape(desc, shapes.inputs[2], counts, "input 2 (bias)"); },
          [&] { return checkShape(desc, shapes.inputs[3], counts, "input 3 (window)"); },
          [&] { return checkShape(desc, shapes.outputs[0], counts, "output 0 (bias)"); },
          [&] { return checkShape(desc, shapes.outputs[1], counts, "output 1 (window)"); },
      }))
    return std::move(error);
  return linearLaunch(desc, 1, kBiasThreads, 0, {counts[0]});
}

} // namespace

void mlir::fusion::cuda::addMoeKinds(std::vector<KindGenerator> &kinds) {
  kinds.push_back({"moe_route", routeSource, routeLaunch});
  kinds.push_back({"moe_route_grad", routeGradSource, routeGradLaunch});
  kinds.push_back({"moe_dispatch", dispatchSource, dispatchLaunch});
  kinds.push_back({"moe_dispatch_grad", dispatchGradSource, dispatchGradLaunch});
  kinds.push_back({"moe_combine", combineSource, combineLaunch});
  kinds.push_back({"moe_combine_grad", combineGradSource, combineGradLaunch});
  kinds.push_back({"grouped_matmul", groupedMatmulSource, groupedMatmulLaunch});
  kinds.push_back({"grouped_matmul_grad", groupedMatmulGradSource, groupedMatmulGradLaunch});
  kinds.push_back({"moe_balance_loss", balanceLossSource, balanceLossLaunch});
  kinds.push_back({"moe_balance_loss_grad", balanceLossGradSource, balanceLossGradLaunch});
  kinds.push_back({"moe_bias_update", biasUpdateSource, biasUpdateLaunch});
}
