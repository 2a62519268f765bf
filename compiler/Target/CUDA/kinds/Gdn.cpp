//===- Gdn.cpp - CUDA generators for the Gated DeltaNet kinds -------------===//
//
// Part of the FusionLLM compiler.
//
// The GDN sequence mixer (templates/gdn.cuh, which describes the device algorithms):
//   causal_conv1d         x [B,T,C], w [C,K] -> y; causal_conv1d_grad x, w, dy -> dx, dw [C,K]
//                         f32 (K <= 8): blocks of (64, 4) threads, each thread 4 consecutive
//                         channels and one segment of S time steps (a register window over
//                         time); grid (B·ceil(T / 4S), ceil(C / 256)), args (B, T, C, K, S) with
//                         S = min(128, max(16, ceil(T / 8))), raised for the grad until its fp64
//                         dw partials (grid.x · C · K) fit the module scratch (2^20 doubles);
//                         at most 4096 channel tiles.
//   causal_conv1d_step    x [B,S,C], w, tail [B,K−1,C] -> y, tail: grid-stride over B·C
//                         (b, c) pairs, args (B·C, S, C, K); 2 <= K <= 8.
//   gated_delta_rule      q, k [B,T,Hk,dk], v [B,T,H,dh], g, beta [B,T,H] -> o [B,T,H,dh]:
//                         grid (B·H, ceil(dh / RB)), L lanes per state row (the smallest power
//                         of two with dk <= 16·L), RB = min(dh, 256 / L) rows per block, block
//                         RB·L rounded up to 32; args (B, T, Hk, dk, H, dh, L, RB); dynamic
//                         shared memory 16·(2·dk + 2·RB + 3) floats. dk <= 512.
//   gated_delta_step      the same with the state Hs [B,H,dk,dh] f32 (input 5, output 1).
//   gated_delta_rule_grad q, k, v, g, beta, do -> dq, dk, dv, dg, dbeta: one block per
//                         (b, key head) holding the (H/Hk)·dh state rows of its value heads
//                         (R·L <= 512 threads), blocks looping over items; grid capped by the
//                         module's state scratch (fk::kGdnScratchFloats floats, each block a
//                         slot of (ceil(T/chunk) + chunk + 1)·ceil(dk/L)·threads floats); args
//                         (B, T, Hk, dk, H, dh, L, chunk, numChunks, slotFloats).
//   Chunked fast path     gated_delta_rule and gated_delta_rule_grad with bf16 q, k, v (, do),
//                         d_k = 128, d_h = 64 (and H = H_k for the grad): the WY form on
//                         64-token chunks (fk::gatedDeltaChunkForward / Backward), one
//                         256-thread block per (b, h); the wrapper of these types takes a
//                         trailing argument `chunked` (1 for this path, 0 for the recurrence
//                         kernels above). Forward: grid B·H, 174080 bytes of shared memory;
//                         backward: grid min(B·H, scratch / slot) with a slot of
//                         ceil(T/64)·128·64 floats (one checkpoint per chunk), 225792 bytes.
// Shapes the kernels cannot hold (taps > 8, dk > 512, too many backward rows, a sequence
// whose checkpoints overflow the scratch, shared memory over 227 KiB) are launch errors.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

#include "llvm/Support/FormatVariadic.h"

using namespace llvm;
using namespace mlir::fusion::cuda;

namespace {

/// Limits shared with templates/gdn.cuh (fk::kGdnMaxTaps, kGdnSlots, kGdnTile,
/// kGdnScratchFloats).
constexpr int64_t kMaxTaps = 8;
constexpr int64_t kSlots = 16;
constexpr int64_t kTile = 16;
constexpr int64_t kScratchFloats = int64_t(1) << 27;
/// Threads of the forward blocks and the backward's limit (its __launch_bounds__).
constexpr int64_t kForwardThreads = 256;
constexpr int64_t kBackwardThreads = 512;
/// The conv kernels' geometry and dw scratch (fk::kConvVec, kConvLanes, kConvSegs,
/// kConvPartials, kConvMaxTiles).
constexpr int64_t kConvVec = 4, kConvLanes = 64, kConvSegs = 4;
constexpr int64_t kConvPartials = int64_t(1) << 20, kConvMaxTiles = 4096;
/// causal_conv1d_grad's __launch_bounds__: two 256-thread blocks per SM (<= 128 registers).
constexpr const char *kConvGradBounds = "256, 2";
/// The most dynamic shared memory a block may use (sm_90: 227 KiB).
constexpr int64_t kMaxSmem = 227 * 1024;
/// The chunked (WY) fast path of gated_delta_rule / gated_delta_rule_grad (fk::kGdnC,
/// kGdnDk, kGdnDv, kGdnThreads, kGdnStateFloats, kGdnFwdSmemFloats, kGdnBwdSmemFloats).
constexpr int64_t kChunkTokens = 64, kChunkDk = 128, kChunkDv = 64, kChunkThreads = 256;
constexpr int64_t kChunkStateFloats = kChunkDk * kChunkDv;
constexpr int64_t kChunkTileFloats = 64 * (64 + 4), kChunkBf16Floats = 64 * (kChunkDk + 8) / 2;
constexpr int64_t kChunkSFloats = kChunkDv * (kChunkDk + 4);
constexpr int64_t kChunkFwdSmem =
    (2 * kChunkBf16Floats + kChunkSFloats + 6 * kChunkTileFloats + 4 * 64) * 4;
constexpr int64_t kChunkBwdSmem =
    (2 * kChunkBf16Floats + 2 * kChunkSFloats + 7 * kChunkTileFloats + 6 * 64) * 4;
static_assert(kChunkBwdSmem <= kMaxSmem, "the chunked backward must fit in shared memory");

Error checkF32(const KernelDesc &desc, bool isOutput, unsigned index, StringRef what) {
  ElementType type = isOutput ? desc.outputs[index] : desc.inputs[index];
  if (type == ElementType::F32)
    return Error::success();
  return kindError(desc, what + " must be f32, got " + elementTypeName(type));
}

/// chunk_size: required, one of 16, 32, 64, 128 (as on the CPU).
Expected<int64_t> chunkSize(const KernelDesc &desc) {
  Expected<int64_t> chunk = desc.getInt("chunk_size");
  if (!chunk)
    return chunk.takeError();
  if (*chunk != 16 && *chunk != 32 && *chunk != 64 && *chunk != 128)
    return kindError(desc, "attribute 'chunk_size' must be one of 16, 32, 64, 128, got " +
                               Twine(*chunk));
  return *chunk;
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t roundUp32(int64_t n) { return std::max<int64_t>(ceilDiv(n, 32) * 32, 32); }

/// Element types the chunked delta-rule kernels take: bf16 q, k, v (and do for the grad).
bool chunkTypes(const KernelDesc &desc, bool grad) {
  for (unsigned i : {0u, 1u, 2u})
    if (desc.inputs[i] != ElementType::BF16)
      return false;
  return !grad || desc.inputs[5] == ElementType::BF16;
}

//===----------------------------------------------------------------------===//
// Causal convolution
//===----------------------------------------------------------------------===//

/// x [B,T,C] and w [C,K] with K in [minTaps, kMaxTaps] (when `limitTaps`).
Error checkConv(const KernelDesc &desc, ArrayRef<int64_t> x, ArrayRef<int64_t> w,
                int64_t minTaps, bool limitTaps) {
  if (Error error = checkRank(desc, x, 3, "input 0 (x)"))
    return error;
  if (Error error = checkRank(desc, w, 2, "input 1 (w)"))
    return error;
  if (w[0] != x[2])
    return kindError(desc, "input 1 (w) must have one row per channel of x (" + Twine(x[2]) +
                               "), got shape " + shapeString(w));
  if (w[1] < minTaps || (limitTaps && w[1] > kMaxTaps))
    return kindError(desc, "input 1 (w) has " + Twine(w[1]) + " taps; the CUDA kernel takes " +
                               Twine(minTaps) + " to " + Twine(kMaxTaps));
  return Error::success();
}

/// The tiled geometry of causal_conv1d(_grad) (see the file header): grid (row blocks,
/// channel tiles), block (64, 4), args (B, T, C, K, S).
Expected<LaunchConfig> convTiles(const KernelDesc &desc, ArrayRef<int64_t> x, int64_t K,
                                 bool forGrad) {
  const int64_t B = x[0], T = x[1], C = x[2];
  int64_t S = std::min<int64_t>(128, std::max<int64_t>(16, ceilDiv(T, 8)));
  int64_t tiles = std::max<int64_t>(ceilDiv(C, kConvLanes * kConvVec), 1);
  if (forGrad) {
    if (tiles > kConvMaxTiles)
      return kindError(desc, Twine(C) + " channels need more than " + Twine(kConvMaxTiles) +
                                 " tiles of " + Twine(kConvLanes * kConvVec));
    // Row blocks per sequence whose dw partials fit the scratch.
    int64_t perBlock = std::max<int64_t>(B * C * K, 1);
    int64_t groups = kConvPartials / perBlock;
    if (groups < 1)
      return kindError(desc, "dw partials of " + Twine(B) + " sequences x " + Twine(C) +
                                 " channels x " + Twine(K) + " taps exceed the " +
                                 Twine(kConvPartials) + "-double scratch");
    S = std::max(S, ceilDiv(T, kConvSegs * groups));
  }
  int64_t rowBlocks = std::max<int64_t>(B * ceilDiv(T, kConvSegs * S), 1);
  if (rowBlocks > std::numeric_limits<int32_t>::max() || tiles > 65535)
    return kindError(desc, "shape " + shapeString(x) + " needs too many blocks");
  LaunchConfig config;
  config.grid = {rowBlocks, tiles, 1};
  config.block = {kConvLanes, kConvSegs, 1};
  config.args = {B, T, C, K, S};
  return config;
}

Expected<std::string> convSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 2, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1}, {0}))
    return std::move(error);
  return wrapKernel(desc, {"gdn"}, {"x", "w"}, {"y"}, {"B", "T", "C", "K", "S"},
                    "fk::causalConv1d(x, w, y, B, T, C, K, S);");
}

Expected<LaunchConfig> convLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> x = shapes.inputs[0];
  if (Error error = checkConv(desc, x, shapes.inputs[1], 1, /*limitTaps=*/false))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[0], x, "output 0 (y)"))
    return std::move(error);
  return convTiles(desc, x, shapes.inputs[1][1], /*forGrad=*/false);
}

Expected<std::string> convGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 2))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1, 2}, {0}))
    return std::move(error);
  if (Error error = checkF32(desc, /*isOutput=*/true, 1, "output 1 (dw)"))
    return std::move(error);
  return wrapKernel(desc, {"gdn"}, {"x", "w", "dy"}, {"dx", "dw"}, {"B", "T", "C", "K", "S"},
                    "fk::causalConv1dGrad(x, w, dy, dx, dw, B, T, C, K, S);",
                    kConvGradBounds);
}

Expected<LaunchConfig> convGradLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> x = shapes.inputs[0], w = shapes.inputs[1];
  if (Error error = checkConv(desc, x, w, 1, /*limitTaps=*/true))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.inputs[2], x, "input 2 (dy)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[0], x, "output 0 (dx)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[1], w, "output 1 (dw)"))
    return std::move(error);
  return convTiles(desc, x, w[1], /*forGrad=*/true);
}

Expected<std::string> convStepSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 2))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1, 2}, {0, 1}))
    return std::move(error);
  return wrapKernel(desc, {"gdn"}, {"x", "w", "tail"}, {"y", "tailOut"}, {"n", "S", "C", "K"},
                    "fk::causalConv1dStep(x, w, tail, y, tailOut, n, S, C, K);");
}

Expected<LaunchConfig> convStepLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> x = shapes.inputs[0], w = shapes.inputs[1];
  if (Error error = checkConv(desc, x, w, 2, /*limitTaps=*/true))
    return std::move(error);
  SmallVector<int64_t> tail = {x[0], w[1] - 1, x[2]};
  if (Error error = checkShape(desc, shapes.inputs[2], tail, "input 2 (tail)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[0], x, "output 0 (y)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[1], tail, "output 1 (tail)"))
    return std::move(error);
  int64_t pairs = x[0] * x[2];
  LaunchConfig config = gridStride(pairs, desc.blockSize);
  config.args = {pairs, x[1], x[2], w[1]};
  return config;
}

//===----------------------------------------------------------------------===//
// Gated delta rule
//===----------------------------------------------------------------------===//

/// The dimensions of a delta-rule launch, checked against q, k, v, g, beta (inputs 0..4).
struct DeltaDims {
  int64_t B, T, Hk, dk, H, dh, L;
};

Expected<DeltaDims> deltaDims(const KernelDesc &desc, const LaunchShapes &shapes) {
  const char *roles[] = {"input 0 (q)", "input 1 (k)", "input 2 (v)", "input 3 (g)",
                         "input 4 (beta)"};
  const size_t ranks[] = {4, 4, 4, 3, 3};
  for (unsigned i = 0; i < 5; ++i)
    if (Error error = checkRank(desc, shapes.inputs[i], ranks[i], roles[i]))
      return std::move(error);
  ArrayRef<int64_t> q = shapes.inputs[0], v = shapes.inputs[2];
  DeltaDims d{q[0], q[1], q[2], q[3], v[2], v[3], 1};
  if (Error error = checkShape(desc, shapes.inputs[1], q, roles[1]))
    return std::move(error);
  if (v[0] != d.B || v[1] != d.T)
    return kindError(desc, "input 2 (v) must be [B, T, H, d_h] with q's B = " + Twine(d.B) +
                               " and T = " + Twine(d.T) + ", got " + shapeString(v));
  if (d.Hk < 1 || d.H % d.Hk != 0)
    return kindError(desc, "input 0 (q) has " + Twine(d.Hk) +
                               " key heads, which must be >= 1 and divide the " + Twine(d.H) +
                               " value heads");
  if (Error error = checkShape(desc, shapes.inputs[3], {d.B, d.T, d.H}, roles[3]))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.inputs[4], {d.B, d.T, d.H}, roles[4]))
    return std::move(error);
  if (d.dk > 32 * kSlots)
    return kindError(desc, "key dimension d_k = " + Twine(d.dk) + " exceeds the " +
                               Twine(32 * kSlots) + " a state row holds (32 lanes x " +
                               Twine(kSlots) + " columns)");
  while (d.L * kSlots < d.dk)
    d.L *= 2;
  return d;
}

/// Dimensions the chunked kernels take: d_k = 128, d_h = 64, T >= 1 (and H = H_k for the
/// gradient, which sums dq/dk per key head within one block).
bool chunkDims(const DeltaDims &d, bool grad) {
  return d.dk == kChunkDk && d.dh == kChunkDv && d.T >= 1 && d.B >= 1 &&
         d.B * d.H <= std::numeric_limits<int32_t>::max() && (!grad || d.H == d.Hk);
}

/// Forward geometry (gated_delta_rule and gated_delta_step).
Expected<LaunchConfig> forwardConfig(const KernelDesc &desc, const DeltaDims &d) {
  int64_t rows = std::max<int64_t>(1, std::min(d.dh, kForwardThreads / d.L));
  int64_t blocksY = std::max<int64_t>(ceilDiv(d.dh, rows), 1);
  if (blocksY > 65535)
    return kindError(desc, "value dimension d_h = " + Twine(d.dh) + " needs " + Twine(blocksY) +
                               " row blocks, more than grid.y allows (65535)");
  if (d.B * d.H > std::numeric_limits<int32_t>::max())
    return kindError(desc, Twine(d.B * d.H) + " (batch, head) pairs exceed the grid");
  LaunchConfig config;
  config.grid = {std::max<int64_t>(d.B * d.H, 1), blocksY, 1};
  config.block = {roundUp32(rows * d.L), 1, 1};
  config.smem = kTile * (2 * d.dk + 2 * rows + 3) * 4;
  if (config.smem > kMaxSmem)
    return kindError(desc, "d_k = " + Twine(d.dk) + " needs " + Twine(config.smem) +
                               " bytes of shared memory, more than " + Twine(kMaxSmem));
  config.args = {d.B, d.T, d.Hk, d.dk, d.H, d.dh, d.L, rows};
  return config;
}

Expected<std::string> ruleSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 5, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1, 2, 3, 4}, {0}))
    return std::move(error);
  if (Expected<int64_t> chunk = chunkSize(desc); !chunk)
    return chunk.takeError();
  if (chunkTypes(desc, /*grad=*/false))
    return wrapKernel(desc, {"gdn"}, {"q", "k", "v", "g", "beta"}, {"o"},
                      {"B", "T", "Hk", "dk", "H", "dh", "L", "rowsPerBlock", "chunked"},
                      "if (chunked)\n    fk::gatedDeltaChunkForward(q, k, v, g, beta, o, B, T, "
                      "Hk, H);\n  else\n    fk::gatedDeltaForward(q, k, v, g, beta, "
                      "(const float *)nullptr, o, (float *)nullptr, B, T, Hk, dk, H, dh, L, "
                      "rowsPerBlock);",
                      std::to_string(kForwardThreads));
  return wrapKernel(desc, {"gdn"}, {"q", "k", "v", "g", "beta"}, {"o"},
                    {"B", "T", "Hk", "dk", "H", "dh", "L", "rowsPerBlock"},
                    "fk::gatedDeltaForward(q, k, v, g, beta, (const float *)nullptr, o, "
                    "(float *)nullptr, B, T, Hk, dk, H, dh, L, rowsPerBlock);",
                    std::to_string(kForwardThreads));
}

Expected<LaunchConfig> ruleLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<DeltaDims> d = deltaDims(desc, shapes);
  if (!d)
    return d.takeError();
  if (Error error = checkShape(desc, shapes.outputs[0], shapes.inputs[2], "output 0 (o)"))
    return std::move(error);
  if (!chunkTypes(desc, /*grad=*/false))
    return forwardConfig(desc, *d);
  if (!chunkDims(*d, /*grad=*/false)) {
    Expected<LaunchConfig> config = forwardConfig(desc, *d);
    if (config)
      config->args.push_back(0);
    return config;
  }
  // Chunked: one 256-thread block per (b, h).
  LaunchConfig config;
  config.grid = {d->B * d->H, 1, 1};
  config.block = {kChunkThreads, 1, 1};
  config.smem = kChunkFwdSmem;
  config.args = {d->B, d->T, d->Hk, d->dk, d->H, d->dh, d->L, 0, 1};
  return config;
}

Expected<std::string> stepSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 6, 2))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1, 2, 3, 4}, {0}))
    return std::move(error);
  if (Error error = checkF32(desc, /*isOutput=*/false, 5, "input 5 (state)"))
    return std::move(error);
  if (Error error = checkF32(desc, /*isOutput=*/true, 1, "output 1 (state)"))
    return std::move(error);
  return wrapKernel(desc, {"gdn"}, {"q", "k", "v", "g", "beta", "state"}, {"o", "stateOut"},
                    {"B", "T", "Hk", "dk", "H", "dh", "L", "rowsPerBlock"},
                    "fk::gatedDeltaForward(q, k, v, g, beta, state, o, stateOut, B, T, Hk, "
                    "dk, H, dh, L, rowsPerBlock);",
                    std::to_string(kForwardThreads));
}

Expected<LaunchConfig> stepLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<DeltaDims> d = deltaDims(desc, shapes);
  if (!d)
    return d.takeError();
  SmallVector<int64_t> state = {d->B, d->H, d->dk, d->dh};
  if (Error error = checkShape(desc, shapes.inputs[5], state, "input 5 (state)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[0], shapes.inputs[2], "output 0 (o)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[1], state, "output 1 (state)"))
    return std::move(error);
  return forwardConfig(desc, *d);
}

Expected<std::string> ruleGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 6, 5))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1, 2, 3, 4, 5}, {0, 1, 2, 3, 4}))
    return std::move(error);
  if (Expected<int64_t> chunk = chunkSize(desc); !chunk)
    return chunk.takeError();
  if (chunkTypes(desc, /*grad=*/true))
    return wrapKernel(
        desc, {"gdn"}, {"q", "k", "v", "g", "beta", "dout"}, {"dq", "dk", "dv", "dg", "dbeta"},
        {"B", "T", "Hk", "dkDim", "H", "dh", "L", "chunk", "numChunks", "slotFloats",
         "chunked"},
        "if (chunked)\n    fk::gatedDeltaChunkBackward(q, k, v, g, beta, dout, dq, dk, dv, dg, "
        "dbeta, B, T, H, numChunks, slotFloats);\n  else\n    fk::gatedDeltaBackward(q, k, v, "
        "g, beta, dout, dq, dk, dv, dg, dbeta, B, T, Hk, dkDim, H, dh, L, chunk, numChunks, "
        "slotFloats);",
        std::to_string(kBackwardThreads));
  return wrapKernel(
      desc, {"gdn"}, {"q", "k", "v", "g", "beta", "dout"}, {"dq", "dk", "dv", "dg", "dbeta"},
      {"B", "T", "Hk", "dkDim", "H", "dh", "L", "chunk", "numChunks", "slotFloats"},
      "fk::gatedDeltaBackward(q, k, v, g, beta, dout, dq, dk, dv, dg, dbeta, B, T, Hk, dkDim, "
      "H, dh, L, chunk, numChunks, slotFloats);",
      std::to_string(kBackwardThreads));
}

Expected<LaunchConfig> ruleGradLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<int64_t> chunk = chunkSize(desc);
  if (!chunk)
    return chunk.takeError();
  Expected<DeltaDims> dims = deltaDims(desc, shapes);
  if (!dims)
    return dims.takeError();
  const DeltaDims &d = *dims;
  ArrayRef<int64_t> q = shapes.inputs[0], v = shapes.inputs[2];
  if (Error error = checkShape(desc, shapes.inputs[5], v, "input 5 (do)"))
    return std::move(error);
  const char *outRoles[] = {"output 0 (dq)", "output 1 (dk)", "output 2 (dv)", "output 3 (dg)",
                            "output 4 (dbeta)"};
  SmallVector<SmallVector<int64_t>> expected = {
      SmallVector<int64_t>(q), SmallVector<int64_t>(q), SmallVector<int64_t>(v),
      {d.B, d.T, d.H}, {d.B, d.T, d.H}};
  for (unsigned i = 0; i < 5; ++i)
    if (Error error = checkShape(desc, shapes.outputs[i], expected[i], outRoles[i]))
      return std::move(error);
  const bool chunkable = chunkTypes(desc, /*grad=*/true);
  if (chunkable && chunkDims(d, /*grad=*/true)) {
    // Chunked: 256-thread blocks looping over the (b, h) items, each block a scratch slot of
    // one checkpoint per 64-token chunk.
    const int64_t numChunks = ceilDiv(d.T, kChunkTokens);
    const int64_t slotFloats = numChunks * kChunkStateFloats;
    if (slotFloats <= kScratchFloats) {
      LaunchConfig config;
      config.grid = {std::min(d.B * d.H, kScratchFloats / slotFloats), 1, 1};
      config.block = {kChunkThreads, 1, 1};
      config.smem = kChunkBwdSmem;
      config.args = {d.B, d.T, d.Hk, d.dk, d.H, d.dh, d.L, kChunkTokens, numChunks, slotFloats,
                     1};
      return config;
    }
  }
  const int64_t heads = d.H / d.Hk, rows = heads * d.dh;
  const int64_t threads = roundUp32(rows * d.L);
  if (threads > kBackwardThreads)
    return kindError(desc, Twine(heads) + " value head(s) per key head x d_h = " + Twine(d.dh) +
                               " state rows x " + Twine(d.L) + " lanes need " +
                               Twine(threads) + " threads, more than the " +
                               Twine(kBackwardThreads) + " a backward block holds");
  const int64_t numChunks = ceilDiv(d.T, *chunk);
  const int64_t slotFloats = (numChunks + *chunk + 1) * ceilDiv(d.dk, d.L) * threads;
  if (slotFloats > kScratchFloats)
    return kindError(desc, "a sequence of " + Twine(d.T) + " tokens needs " +
                               Twine(slotFloats) + " floats of state checkpoints per block, " +
                               "more than the " + Twine(kScratchFloats) + " of the scratch");
  const int64_t items = d.B * d.Hk;
  LaunchConfig config;
  config.grid = {std::max<int64_t>(std::min(items, kScratchFloats / slotFloats), 1), 1, 1};
  config.block = {threads, 1, 1};
  config.smem = (kTile * (2 * d.dk + 2 * rows + 2 * heads) + 2 * rows * (d.dk + d.L) +
                 2 * rows) *
                4;
  if (config.smem > kMaxSmem)
    return kindError(desc, "d_k = " + Twine(d.dk) + " with " + Twine(rows) + " state rows needs " +
                               Twine(config.smem) + " bytes of shared memory, more than " +
                               Twine(kMaxSmem));
  config.args = {d.B, d.T, d.Hk, d.dk, d.H, d.dh, d.L, *chunk, numChunks, slotFloats};
  if (chunkable)
    config.args.push_back(0);
  return config;
}

} // namespace

void mlir::fusion::cuda::addGdnKinds(std::vector<KindGenerator> &kinds) {
  kinds.push_back({"causal_conv1d", convSource, convLaunch});
  kinds.push_back({"causal_conv1d_grad", convGradSource, convGradLaunch});
  kinds.push_back({"causal_conv1d_step", convStepSource, convStepLaunch});
  kinds.push_back({"gated_delta_rule", ruleSource, ruleLaunch});
  kinds.push_back({"gated_delta_rule_grad", ruleGradSource, ruleGradLaunch});
  kinds.push_back({"gated_delta_step", stepSource, stepLaunch});
}
