//===- Attention.cpp - CUDA generators for the attention kinds ----------===//
//
// Part of the FusionLLM compiler.
//
// Causal / sliding-window GQA attention (templates/attention.cuh), q [B,H,T,D],
// k [B,G,T,D], v [B,G,T,E], o [B,H,T,E] with D = d_qk, E = d_v passed as arguments (one kernel
// serves every head size that fits its shared memory); causal, window and scale are baked.
//
// Two implementations, chosen per launch (deterministically, from the element types and the
// static shapes) and named by the launch's last argument, tensorCores:
//   tensor cores (1)  q, k, v (and do) and the outputs all bf16 or all f16, D and E multiples of 16 in
//                     [16, 128]: mma.sync m16n8k16 with fp32 accumulation, 64 x 64 tiles,
//                     128 threads (fk::attentionForwardTc / attentionBackwardTc). The kernel
//                     source of such a type signature holds both paths and branches on the
//                     argument; every other kernel holds only the CUDA-core path.
//   CUDA cores (0)    everything else (f32, mixed types, f32 outputs, other head sizes): the fp32
//                     shared-memory kernels, 256 threads.
//
//   attention           flash-attention forward: grid (ceil(T/64) query tiles, B·H).
//                       CUDA cores: 256 threads, 4·(64 (D|1) + 64 max(D|1, E|1) + 64·65 + 64 E
//                       + 64) bytes of dynamic shared memory. Tensor cores: 128 threads,
//                       2·64·(3 (D + 8) + 2 (E + 8)) bytes. Args (B, H, G, T, D, E, tensorCores).
//   attention_grad      one persistent kernel: phase A per (b, h, query tile) computes the row
//                       statistics (CUDA cores: max, 1/sum, D = dO·O; tensor cores: log2-sum-exp
//                       and D = rowsum(P ⊙ dP)), publishes them in a module-level scratch and
//                       writes dq; phase B per (b, g, 64-key tile) waits for phase A and
//                       accumulates dk, dv over the group's heads in a fixed order (an atomic
//                       ticket hands out items; no float atomics, deterministic). Grid
//                       min(items, 1024); B·H·T <= 2^20 rows. CUDA cores: 32-row query tiles,
//                       256 threads, 4·(96 (D|1 + E|1) + 32·65 + 64 (D + E) + 96) bytes.
//                       Tensor cores: 64-row query tiles, 128 threads, 2·64·3 (D + E + 16)
//                       + 1024 bytes. Args (B, H, G, T, D, E, tensorCores).
//   kv_cache_attention  the forward over a K/V cache at position p (read on the device from the
//                       position buffer), CUDA cores: grid (ceil(S/64), B·H), the forward's
//                       shared memory; args (B, H, G, S, T_c, D, E). The group's first head
//                       appends k/v to the cache (and copies the rest when the output cache is
//                       a separate buffer); p + S > T_c, the CPU's error, writes NaN to o.
// Every kind uses at most 227 KiB less 64 bytes of shared memory (the launch checks: D = E = 256
// fits the CUDA-core forward, D = 192 / E = 128 the backward) and grid.y = B·H <= 65535.
//
// Faster versions: wgmma with TMA-loaded swizzled tiles on sm_90a (FlashAttention-3), GQA head
// packing (one K/V tile for the H/G heads of a group), compile-time head sizes (the register
// arrays are sized for 128 today), and split-key decoding (see the template).
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace llvm;
using namespace mlir::fusion::cuda;

namespace {

/// Geometry of templates/attention.cuh (fk::attn): threads per block, key tile, query tiles
/// of the forward and the backward, the P tile's row stride, the backward's block cap and
/// statistics capacity (GradScratch::kRows).
constexpr int64_t kThreads = 256;
constexpr int64_t kKeyTile = 64;
constexpr int64_t kQueryTile = 64;
constexpr int64_t kGradQueryTile = 32;
constexpr int64_t kPLd = kKeyTile + 1;
constexpr int64_t kGradMaxBlocks = 1024;
constexpr int64_t kGradStatRows = int64_t(1) << 20;
/// The most dynamic shared memory a block may use: sm_90's 227 KiB less 64 bytes for the
/// kernels' static shared variables (the backward's ticket).
constexpr int64_t kMaxSmemBytes = 227 * 1024 - 64;
/// The tensor-core path (fk::attn::kTc*): threads, tile rows, largest head size, row padding.
constexpr int64_t kTcThreads = 128;
constexpr int64_t kTcTile = 64;
constexpr int64_t kTcMaxDim = 128;
constexpr int64_t kTcPad = 8;

/// fk::attn::forwardSmemFloats / backwardSmemFloats, in bytes.
int64_t forwardSmemBytes(int64_t D, int64_t E) {
  return 4 * (kQueryTile * (D | 1) + kKeyTile * std::max(D | 1, E | 1) + kQueryTile * kPLd +
              kQueryTile * E + kQueryTile);
}
int64_t backwardSmemBytes(int64_t D, int64_t E) {
  return 4 * ((kKeyTile + kGradQueryTile) * ((D | 1) + (E | 1)) + kGradQueryTile * kPLd +
              kKeyTile * (D + E) + 3 * kGradQueryTile);
}

/// fk::attn::tcForwardSmemBytes / tcBackwardSmemBytes.
int64_t tcForwardSmemBytes(int64_t D, int64_t E) {
  return 2 * kTcTile * (3 * (D + kTcPad) + 2 * (E + kTcPad));
}
int64_t tcBackwardSmemBytes(int64_t D, int64_t E) {
  return 2 * kTcTile * 3 * (D + E + 2 * kTcPad) + 4 * kTcTile * 4;
}

/// Whether the kernel's source holds the tensor-core path: inputs 0 .. numInputs − 1 (q, k, v
/// and, for the gradient, do) and every output all bf16 or all f16. The path rounds P (and
/// dS) to that type before their products, which an f32 output would expose: on an H200 an f32
/// o from bf16 q, k, v was 1.1e-3 (rel L2) from the fp32 reference, over the f32 bound of 1e-3.
bool tcTypes(const KernelDesc &desc, unsigned numInputs) {
  ElementType type = desc.inputs[0];
  if (type != ElementType::BF16 && type != ElementType::F16)
    return false;
  for (unsigned i = 1; i < numInputs; ++i)
    if (desc.inputs[i] != type)
      return false;
  for (ElementType output : desc.outputs)
    if (output != type)
      return false;
  return true;
}

/// Whether a launch takes the tensor-core path (fk::attn::tcDims, and T small enough for the
/// kernels' int positions).
bool useTensorCores(const KernelDesc &desc, unsigned numInputs, int64_t D, int64_t E,
                    int64_t T) {
  return tcTypes(desc, numInputs) && D >= 16 && E >= 16 && D <= kTcMaxDim && E <= kTcMaxDim &&
         D % 16 == 0 && E % 16 == 0 && T < (int64_t(1) << 30);
}

Error checkSmem(const KernelDesc &desc, int64_t bytes, int64_t D, int64_t E) {
  if (bytes <= kMaxSmemBytes)
    return Error::success();
  return kindError(desc, "head sizes d_qk = " + Twine(D) + ", d_v = " + Twine(E) + " need " +
                             Twine(bytes) + " bytes of shared memory, more than the " +
                             Twine(kMaxSmemBytes) + " a block may use");
}

/// The attributes every attention kind bakes: causal (a flag), window and scale.
struct Attributes {
  bool causal;
  int64_t window;
  double scale;
};

Expected<Attributes> attentionAttributes(const KernelDesc &desc, bool alwaysCausal) {
  Attributes attrs;
  attrs.causal = alwaysCausal || desc.hasFlag("causal");
  attrs.window = desc.getInt("window", 0);
  if (attrs.window < 0 || (attrs.window > 0 && !attrs.causal))
    return kindError(desc, "attribute 'window' = " + Twine(attrs.window) +
                               (alwaysCausal ? " must be >= 0"
                                             : " must be >= 0, and a window > 0 needs 'causal'"));
  Expected<double> scale = desc.getFloat("scale");
  if (!scale)
    return scale.takeError();
  if (!(*scale > 0) || !std::isfinite(*scale))
    return kindError(desc, "attribute 'scale' must be positive and finite, got " +
                               std::to_string(*scale));
  attrs.scale = *scale;
  return attrs;
}

/// The arguments after the pointers of attention / attention_grad's template call.
std::string attributeArgs(const Attributes &attrs) {
  return formatv("{0}, {1}, {2}", attrs.causal ? "true" : "false", attrs.window,
                 floatLiteral(attrs.scale))
      .str();
}

/// Sizes of q [B,H,T,D], k [B,G,T,D], v [B,G,T,E] (checked as the CPU kernels check them).
struct Dims {
  int64_t B, H, G, T, D, E;
};

Expected<Dims> attentionDims(const KernelDesc &desc, const LaunchShapes &shapes) {
  const char *roles[] = {"input 0 (q)", "input 1 (k)", "input 2 (v)"};
  for (unsigned i = 0; i < 3; ++i)
    if (Error error = checkRank(desc, shapes.inputs[i], 4, roles[i]))
      return std::move(error);
  ArrayRef<int64_t> qs = shapes.inputs[0], ks = shapes.inputs[1], vs = shapes.inputs[2];
  Dims d{qs[0], qs[1], ks[1], qs[2], qs[3], vs[3]};
  if (ks[0] != d.B || ks[2] != d.T || ks[3] != d.D)
    return kindError(desc, "input 1 (k) must be [B, G, T, d_qk] with q's B = " + Twine(d.B) +
                               ", T = " + Twine(d.T) + ", d_qk = " + Twine(d.D) + ", got " +
                               shapeString(ks));
  if (vs[0] != d.B || vs[1] != d.G || vs[2] != d.T)
    return kindError(desc, "input 2 (v) must be [B, G, T, d_v] with k's B = " + Twine(d.B) +
                               ", G = " + Twine(d.G) + ", T = " + Twine(d.T) + ", got " +
                               shapeString(vs));
  if (d.G < 1 || d.H % d.G != 0)
    return kindError(desc, "input 1 (k) has " + Twine(d.G) +
                               " groups, which must be >= 1 and divide the " + Twine(d.H) +
                               " query heads");
  return d;
}

/// grid.y = B·H: at most 65535.
Error checkHeads(const KernelDesc &desc, int64_t B, int64_t H) {
  if (B * H <= 65535)
    return Error::success();
  return kindError(desc, "B·H = " + Twine(B) + "·" + Twine(H) + " = " + Twine(B * H) +
                             " (batch, head) pairs exceed the 65535 blocks of grid.y");
}

//===----------------------------------------------------------------------===//
// attention
//===----------------------------------------------------------------------===//

Expected<std::string> attentionSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1, 2}, {0}))
    return std::move(error);
  Expected<Attributes> attrs = attentionAttributes(desc, /*alwaysCausal=*/false);
  if (!attrs)
    return attrs.takeError();
  const std::string args = "(q, k, v, o, batch, heads, groups, seqLen, dimQK, dimV, " +
                           attributeArgs(*attrs) + ");";
  std::string body = "fk::attentionForward" + args;
  if (tcTypes(desc, 3))
    body = "// tensorCores = 1: bf16 / f16 mma.sync (d_qk, d_v multiples of 16 <= 128).\n"
           "  if (tensorCores)\n    fk::attentionForwardTc" +
           args + "\n  else\n    " + body;
  return wrapKernel(desc, {"attention"}, {"q", "k", "v"}, {"o"},
                    {"batch", "heads", "groups", "seqLen", "dimQK", "dimV", "tensorCores"}, body,
                    "256");
}

Expected<LaunchConfig> attentionLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<Dims> d = attentionDims(desc, shapes);
  if (!d)
    return d.takeError();
  if (Error error = checkShape(desc, shapes.outputs[0], {d->B, d->H, d->T, d->E}, "output 0 (o)"))
    return std::move(error);
  if (Error error = checkHeads(desc, d->B, d->H))
    return std::move(error);
  const bool tc = useTensorCores(desc, 3, d->D, d->E, d->T);
  int64_t smem = tc ? tcForwardSmemBytes(d->D, d->E) : forwardSmemBytes(d->D, d->E);
  if (Error error = checkSmem(desc, smem, d->D, d->E))
    return std::move(error);
  LaunchConfig config;
  config.grid = {std::max<int64_t>((d->T + kQueryTile - 1) / kQueryTile, 1),
                 std::max<int64_t>(d->B * d->H, 1), 1};
  config.block = {tc ? kTcThreads : kThreads, 1, 1};
  config.smem = smem;
  config.args = {d->B, d->H, d->G, d->T, d->D, d->E, tc ? 1 : 0};
  return config;
}

//===----------------------------------------------------------------------===//
// attention_grad
//===----------------------------------------------------------------------===//

Expected<std::string> attentionGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 4, 3))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1, 2, 3}, {0, 1, 2}))
    return std::move(error);
  Expected<Attributes> attrs = attentionAttributes(desc, /*alwaysCausal=*/false);
  if (!attrs)
    return attrs.takeError();
  const std::string args =
      "(q, k, v, dout, dq, dk, dv, batch, heads, groups, seqLen, dimQK, dimV, " +
      attributeArgs(*attrs) + ");";
  std::string body = "fk::attentionBackward" + args;
  if (tcTypes(desc, 4))
    body = "// tensorCores = 1: bf16 / f16 mma.sync (d_qk, d_v multiples of 16 <= 128).\n"
           "  if (tensorCores)\n    fk::attentionBackwardTc" +
           args + "\n  else\n    " + body;
  return wrapKernel(desc, {"attention"}, {"q", "k", "v", "dout"}, {"dq", "dk", "dv"},
                    {"batch", "heads", "groups", "seqLen", "dimQK", "dimV", "tensorCores"}, body,
                    "256");
}

Expected<LaunchConfig> attentionGradLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  if (Error error = checkRank(desc, shapes.inputs[3], 4, "input 3 (do)"))
    return std::move(error);
  Expected<Dims> d = attentionDims(desc, shapes);
  if (!d)
    return d.takeError();
  if (Error error = checkShape(desc, shapes.inputs[3], {d->B, d->H, d->T, d->E}, "input 3 (do)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[0], shapes.inputs[0], "output 0 (dq)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[1], shapes.inputs[1], "output 1 (dk)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[2], shapes.inputs[2], "output 2 (dv)"))
    return std::move(error);
  const bool tc = useTensorCores(desc, 4, d->D, d->E, d->T);
  int64_t smem = tc ? tcBackwardSmemBytes(d->D, d->E) : backwardSmemBytes(d->D, d->E);
  if (Error error = checkSmem(desc, smem, d->D, d->E))
    return std::move(error);
  if (d->B * d->H * d->T > kGradStatRows)
    return kindError(desc, "B·H·T = " + Twine(d->B * d->H * d->T) + " query rows exceed the " +
                               Twine(kGradStatRows) + " rows of the backward's statistics scratch");
  const int64_t queryTile = tc ? kTcTile : kGradQueryTile;
  int64_t items = d->B * d->H * ((d->T + queryTile - 1) / queryTile) +
                  d->B * d->G * ((d->T + kKeyTile - 1) / kKeyTile);
  LaunchConfig config;
  config.grid = {std::clamp<int64_t>(items, 1, kGradMaxBlocks), 1, 1};
  config.block = {tc ? kTcThreads : kThreads, 1, 1};
  config.smem = smem;
  config.args = {d->B, d->H, d->G, d->T, d->D, d->E, tc ? 1 : 0};
  return config;
}

//===----------------------------------------------------------------------===//
// kv_cache_attention
//===----------------------------------------------------------------------===//

Expected<std::string> kvCacheAttentionSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 6, 3))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1, 2, 4, 5}, {0, 1, 2}))
    return std::move(error);
  if (Error error = checkIndex(desc, /*isOutput=*/false, 3))
    return std::move(error);
  for (unsigned i : {1u, 2u})
    if (desc.outputs[i] != desc.inputs[i + 3])
      return kindError(desc, "output " + Twine(i) + " must have the element type of its cache, " +
                                 "input " + Twine(i + 3) + " (" +
                                 elementTypeName(desc.inputs[i + 3]) + "), got " +
                                 elementTypeName(desc.outputs[i]));
  Expected<Attributes> attrs = attentionAttributes(desc, /*alwaysCausal=*/true);
  if (!attrs)
    return attrs.takeError();
  return wrapKernel(
      desc, {"attention"}, {"q", "k", "v", "position", "kCache", "vCache"}, {"o", "kOut", "vOut"},
      {"batch", "heads", "groups", "newTokens", "cacheLen", "dimQK", "dimV"},
      formatv("fk::kvCacheAttention(q, k, v, position, kCache, vCache, o, kOut, vOut, batch, "
              "heads, groups, newTokens, cacheLen, dimQK, dimV, {0}, {1});",
              attrs->window, floatLiteral(attrs->scale))
          .str(),
      "256");
}

Expected<LaunchConfig> kvCacheAttentionLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  const char *roles[] = {"input 0 (q)",        "input 1 (k)",       "input 2 (v)",
                         "input 3 (position)", "input 4 (K cache)", "input 5 (V cache)"};
  for (unsigned i : {0u, 1u, 2u, 4u, 5u})
    if (Error error = checkRank(desc, shapes.inputs[i], 4, roles[i]))
      return std::move(error);
  if (numElements(shapes.inputs[3]) != 1)
    return kindError(desc, "input 3 (position) must hold one element, got shape " +
                               shapeString(shapes.inputs[3]));
  ArrayRef<int64_t> qs = shapes.inputs[0], ks = shapes.inputs[1], vs = shapes.inputs[2],
                    cs = shapes.inputs[4];
  const int64_t B = qs[0], H = qs[1], S = qs[2], D = qs[3], G = ks[1], E = vs[3], Tc = cs[2];
  if (G < 1 || H % G != 0)
    return kindError(desc, "input 1 (k) has " + Twine(G) +
                               " groups, which must be >= 1 and divide the " + Twine(H) +
                               " query heads");
  if (Error error = checkShape(desc, ks, {B, G, S, D}, roles[1]))
    return std::move(error);
  if (Error error = checkShape(desc, vs, {B, G, S, E}, roles[2]))
    return std::move(error);
  if (Error error = checkShape(desc, cs, {B, G, Tc, D}, roles[4]))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.inputs[5], {B, G, Tc, E}, roles[5]))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[0], {B, H, S, E}, "output 0 (o)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[1], cs, "output 1 (K cache)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[2], shapes.inputs[5], "output 2 (V cache)"))
    return std::move(error);
  if (S > Tc)
    return kindError(desc,
                     Twine(S) + " new tokens do not fit a cache of " + Twine(Tc) + " positions");
  if (Error error = checkHeads(desc, B, H))
    return std::move(error);
  int64_t smem = forwardSmemBytes(D, E);
  if (Error error = checkSmem(desc, smem, D, E))
    return std::move(error);
  LaunchConfig config;
  config.grid = {std::max<int64_t>((S + kQueryTile - 1) / kQueryTile, 1),
                 std::max<int64_t>(B * H, 1), 1};
  config.block = {kThreads, 1, 1};
  config.smem = smem;
  config.args = {B, H, G, S, Tc, D, E};
  return config;
}

} // namespace

void mlir::fusion::cuda::addAttentionKinds(std::vector<KindGenerator> &kinds) {
  kinds.push_back({"attention", attentionSource, attentionLaunch});
  kinds.push_back({"attention_grad", attentionGradSource, attentionGradLaunch});
  kinds.push_back({"kv_cache_attention", kvCacheAttentionSource, kvCacheAttentionLaunch});
}
