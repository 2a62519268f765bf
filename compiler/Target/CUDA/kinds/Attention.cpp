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
// The tensor-core templates take their register-array sizes <DM, EM> from the largest head
// sizes among the kernel's launches (KernelDesc::launches), and when every launch takes the
// tensor cores the source holds only that path with its launch bounds (the forward's 8 warps:
// 2 blocks per SM, 126 registers at <96, 64>; the backward's 4 warps: 3 blocks per SM when the
// shared memory allows, 168 registers).
//
//   attention           flash-attention forward. CUDA cores: grid (ceil(T/64) query tiles,
//                       B·H), 256 threads, 4·(64 (D|1) + 64 max(D|1, E|1) + 64·65 + 64 E
//                       + 64) bytes of dynamic shared memory. Tensor cores: grid (ceil(T/128),
//                       B·H), 256 threads (8 warps), 2·(128 (D + 8) + 128 (D + 8) + 128 (E + 8))
//                       bytes. Args (B, H, G, T, D, E, tensorCores).
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
//   attention_lse       attention that also writes lse [B, H, T] f32, each query row's natural
//                       log-sum-exp of scale·q·k (the forward's statistics, saved for the
//                       backward by fusion-lower-to-plan).
//   attention_grad_lse  attention_grad given the forward's o and lse as inputs 4 and 5: the
//                       tensor-core kernel's phase A takes lse2 = lse·log2 e and delta =
//                       rowsum(dO ⊙ O) from them instead of a first pass over the keys (S and
//                       dP recomputed twice, not three times); the CUDA-core kernel ignores
//                       them and recomputes.
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
/// sm_90's shared memory per SM for blocks (228 KiB) and the 1 KiB the driver reserves per
/// block: how many tensor-core backward blocks fit one SM.
constexpr int64_t kSmemPerSm = 228 * 1024;
constexpr int64_t kSmemPerBlockReserved = 1024;
/// The tensor-core path (fk::attn::kTc*): threads, tile rows, largest head size, row padding.
constexpr int64_t kTcThreads = 128;
/// The tensor-core forward: 8 warps over 128 query rows.
constexpr int64_t kTcFwdThreads = 256;
constexpr int64_t kTcFwdRows = 128;
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
  return 2 * (kTcFwdRows * (D + kTcPad) + 2 * kTcTile * (D + kTcPad) + 2 * kTcTile * (E + kTcPad));
}
int64_t tcBackwardSmemBytes(int64_t D, int64_t E) {
  return 2 * kTcTile * 3 * (D + E + 2 * kTcPad) + 4 * kTcTile * 4;
}

/// Whether the kernel's source holds the tensor-core path: inputs 0 .. numInputs − 1 (q, k, v
/// and, for the gradient, do and the saved o) and outputs 0 .. numOutputs − 1 (not the f32
/// lse) all bf16 or all f16. The path rounds P (and dS) to that type before their products,
/// which an f32 output would expose: on an H200 an f32 o from bf16 q, k, v was 1.1e-3 (rel L2)
/// from the fp32 reference, over the f32 bound of 1e-3.
bool tcTypes(const KernelDesc &desc, unsigned numInputs, unsigned numOutputs) {
  ElementType type = desc.inputs[0];
  if (type != ElementType::BF16 && type != ElementType::F16)
    return false;
  for (unsigned i = 1; i < numInputs; ++i)
    if (desc.inputs[i] != type)
      return false;
  for (unsigned i = 0; i < numOutputs; ++i)
    if (desc.outputs[i] != type)
      return false;
  return true;
}

/// Whether a launch takes the tensor-core path (fk::attn::tcDims, and T small enough for the
/// kernels' int positions).
bool useTensorCores(const KernelDesc &desc, unsigned numInputs, unsigned numOutputs, int64_t D,
                    int64_t E, int64_t T) {
  return tcTypes(desc, numInputs, numOutputs) && D >= 16 && E >= 16 && D <= kTcMaxDim &&
         E <= kTcMaxDim && D % 16 == 0 && E % 16 == 0 && T < (int64_t(1) << 30);
}

/// The register-array sizes of the tensor-core kernels, "<DM, EM>": the largest d_qk and d_v
/// of the kernel's tensor-core launches rounded up to 16 (128 each when no launch is known).
/// Arrays sized to the model's head dims instead of the largest supported (128) keep the
/// backward within the register file: at d_qk = 96 / d_v = 64 it spilled at 255 registers.
struct TcDims {
  int64_t dm, em;
  std::string templateArgs() const { return formatv("<{0}, {1}>", dm, em).str(); }
};

TcDims tcRegisterDims(const KernelDesc &desc) {
  int64_t dm = 0, em = 0;
  for (const LaunchShapes &shapes : desc.launches) {
    if (shapes.inputs.size() < 3 || shapes.inputs[0].size() != 4 || shapes.inputs[2].size() != 4)
      continue;
    const int64_t D = shapes.inputs[0][3], E = shapes.inputs[2][3];
    if (D >= 16 && E >= 16 && D <= kTcMaxDim && E <= kTcMaxDim && D % 16 == 0 && E % 16 == 0) {
      dm = std::max(dm, D);
      em = std::max(em, E);
    }
  }
  if (dm == 0)
    dm = em = kTcMaxDim;
  return {dm, em};
}

/// Whether the source was specialised to register arrays that hold d_qk = D and d_v = E.
Error checkTcRegisterDims(const KernelDesc &desc, int64_t D, int64_t E) {
  const TcDims dims = tcRegisterDims(desc);
  if (D <= dims.dm && E <= dims.em)
    return Error::success();
  return kindError(desc, "a launch with d_qk = " + Twine(D) + ", d_v = " + Twine(E) +
                             " exceeds the head sizes " + dims.templateArgs() +
                             " the kernel's source was generated for");
}

/// Whether every launch of the kernel is known and takes the tensor-core path (the kinds'
/// first numTyped inputs and numOutputs outputs share one 16-bit type): then the source holds
/// only that path, with launch bounds for its 128-thread blocks.
bool allLaunchesTc(const KernelDesc &desc, unsigned numTyped, unsigned numOutputs) {
  if (desc.launches.empty() || !tcTypes(desc, numTyped, numOutputs))
    return false;
  for (const LaunchShapes &shapes : desc.launches) {
    if (shapes.inputs.size() < 3 || shapes.inputs[0].size() != 4 || shapes.inputs[2].size() != 4)
      return false;
    if (!useTensorCores(desc, numTyped, numOutputs, shapes.inputs[0][3], shapes.inputs[2][3],
                        shapes.inputs[0][2]))
      return false;
  }
  return true;
}

/// The saved statistics of attention_lse / attention_grad_lse: lse [B, H, T] f32.
Error checkLse(const KernelDesc &desc, bool isOutput, unsigned index) {
  ElementType type = isOutput ? desc.outputs[index] : desc.inputs[index];
  if (type == ElementType::F32)
    return Error::success();
  return kindError(desc, Twine(isOutput ? "output " : "input ") + Twine(index) +
                             " (lse) must be f32, got " + elementTypeName(type));
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

/// attention (q, k, v -> o) and attention_lse (q, k, v -> o, lse).
Expected<std::string> attentionSource(const KernelDesc &desc, bool withLse) {
  if (Error error = checkArity(desc, 3, withLse ? 2 : 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1, 2}, {0}))
    return std::move(error);
  if (withLse)
    if (Error error = checkLse(desc, /*isOutput=*/true, 1))
      return std::move(error);
  Expected<Attributes> attrs = attentionAttributes(desc, /*alwaysCausal=*/false);
  if (!attrs)
    return attrs.takeError();
  const std::string args = std::string("(q, k, v, o, ") + (withLse ? "lse" : "nullptr") +
                           ", batch, heads, groups, seqLen, dimQK, dimV, " +
                           attributeArgs(*attrs) + ");";
  std::string body = "fk::attentionForward" + args;
  std::string bounds = "256";
  const std::string tcCall = "fk::attentionForwardTc" + tcRegisterDims(desc).templateArgs() + args;
  if (allLaunchesTc(desc, 3, 1)) {
    body = "// Every launch takes the tensor cores: bf16 / f16 mma.sync, 256 threads.\n  " + tcCall;
    bounds = "256, 2";
  } else if (tcTypes(desc, 3, 1)) {
    body = "// tensorCores = 1: bf16 / f16 mma.sync (d_qk, d_v multiples of 16 <= 128).\n"
           "  if (tensorCores)\n    " +
           tcCall + "\n  else\n    " + body;
  }
  SmallVector<StringRef> outputs = {"o"};
  if (withLse)
    outputs.push_back("lse");
  return wrapKernel(desc, {"attention"}, {"q", "k", "v"}, outputs,
                    {"batch", "heads", "groups", "seqLen", "dimQK", "dimV", "tensorCores"}, body,
                    bounds);
}

Expected<LaunchConfig> attentionLaunch(const KernelDesc &desc, const LaunchShapes &shapes,
                                       bool withLse) {
  Expected<Dims> d = attentionDims(desc, shapes);
  if (!d)
    return d.takeError();
  if (Error error = checkShape(desc, shapes.outputs[0], {d->B, d->H, d->T, d->E}, "output 0 (o)"))
    return std::move(error);
  if (withLse)
    if (Error error = checkShape(desc, shapes.outputs[1], {d->B, d->H, d->T}, "output 1 (lse)"))
      return std::move(error);
  if (Error error = checkHeads(desc, d->B, d->H))
    return std::move(error);
  const bool tc = useTensorCores(desc, 3, 1, d->D, d->E, d->T);
  if (tc)
    if (Error error = checkTcRegisterDims(desc, d->D, d->E))
      return std::move(error);
  int64_t smem = tc ? tcForwardSmemBytes(d->D, d->E) : forwardSmemBytes(d->D, d->E);
  if (Error error = checkSmem(desc, smem, d->D, d->E))
    return std::move(error);
  const int64_t queryTile = tc ? kTcFwdRows : kQueryTile;
  LaunchConfig config;
  config.grid = {std::max<int64_t>((d->T + queryTile - 1) / queryTile, 1),
                 std::max<int64_t>(d->B * d->H, 1), 1};
  config.block = {tc ? kTcFwdThreads : kThreads, 1, 1};
  config.smem = smem;
  config.args = {d->B, d->H, d->G, d->T, d->D, d->E, tc ? 1 : 0};
  return config;
}

//===----------------------------------------------------------------------===//
// attention_grad
//===----------------------------------------------------------------------===//

/// attention_grad (q, k, v, do -> dq, dk, dv) and attention_grad_lse (q, k, v, do, o, lse ->
/// dq, dk, dv). The CUDA-core kernel recomputes the statistics either way; the tensor-core
/// kernel reads the saved ones.
Expected<std::string> attentionGradSource(const KernelDesc &desc, bool withLse) {
  if (Error error = checkArity(desc, withLse ? 6 : 4, 3))
    return std::move(error);
  SmallVector<unsigned> floatInputs = {0, 1, 2, 3};
  if (withLse)
    floatInputs.push_back(4);
  if (Error error = checkFloat(desc, floatInputs, {0, 1, 2}))
    return std::move(error);
  if (withLse)
    if (Error error = checkLse(desc, /*isOutput=*/false, 5))
      return std::move(error);
  Expected<Attributes> attrs = attentionAttributes(desc, /*alwaysCausal=*/false);
  if (!attrs)
    return attrs.takeError();
  const std::string tail = "dq, dk, dv, batch, heads, groups, seqLen, dimQK, dimV, " +
                           attributeArgs(*attrs) + ");";
  std::string body = "fk::attentionBackward(q, k, v, dout, " + tail;
  const unsigned numTyped = withLse ? 5 : 4;
  const TcDims dims = tcRegisterDims(desc);
  const std::string tcCall =
      "fk::attentionBackwardTc" + dims.templateArgs() + "(q, k, v, dout, " +
      (withLse ? "o, lse, " : "static_cast<decltype(q)>(nullptr), nullptr, ") + tail;
  std::string bounds = "256";
  if (allLaunchesTc(desc, numTyped, 3)) {
    // 128-thread blocks only: ask for as many per SM as the shared memory allows (at most 3:
    // d_qk = 96 / d_v = 64 then fits 168 registers, 24 bytes spilled, instead of 208).
    const int64_t perSm = std::clamp<int64_t>(
        kSmemPerSm / (tcBackwardSmemBytes(dims.dm, dims.em) + kSmemPerBlockReserved), 1, 3);
    body = "// Every launch takes the tensor cores: bf16 / f16 mma.sync, 128 threads.\n  " + tcCall;
    bounds = formatv("128, {0}", perSm).str();
  } else if (tcTypes(desc, numTyped, 3)) {
    body = "// tensorCores = 1: bf16 / f16 mma.sync (d_qk, d_v multiples of 16 <= 128).\n"
           "  if (tensorCores)\n    " +
           tcCall + "\n  else\n    " + body;
  }
  SmallVector<StringRef> inputs = {"q", "k", "v", "dout"};
  if (withLse)
    inputs.append({"o", "lse"});
  return wrapKernel(desc, {"attention"}, inputs, {"dq", "dk", "dv"},
                    {"batch", "heads", "groups", "seqLen", "dimQK", "dimV", "tensorCores"}, body,
                    bounds);
}

Expected<LaunchConfig> attentionGradLaunch(const KernelDesc &desc, const LaunchShapes &shapes,
                                           bool withLse) {
  if (Error error = checkRank(desc, shapes.inputs[3], 4, "input 3 (do)"))
    return std::move(error);
  Expected<Dims> d = attentionDims(desc, shapes);
  if (!d)
    return d.takeError();
  if (Error error = checkShape(desc, shapes.inputs[3], {d->B, d->H, d->T, d->E}, "input 3 (do)"))
    return std::move(error);
  if (withLse) {
    if (Error error = checkShape(desc, shapes.inputs[4], {d->B, d->H, d->T, d->E}, "input 4 (o)"))
      return std::move(error);
    if (Error error = checkShape(desc, shapes.inputs[5], {d->B, d->H, d->T}, "input 5 (lse)"))
      return std::move(error);
  }
  if (Error error = checkShape(desc, shapes.outputs[0], shapes.inputs[0], "output 0 (dq)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[1], shapes.inputs[1], "output 1 (dk)"))
    return std::move(error);
  if (Error error = checkShape(desc, shapes.outputs[2], shapes.inputs[2], "output 2 (dv)"))
    return std::move(error);
  const bool tc = useTensorCores(desc, withLse ? 5 : 4, 3, d->D, d->E, d->T);
  if (tc)
    if (Error error = checkTcRegisterDims(desc, d->D, d->E))
      return std::move(error);
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
  kinds.push_back({"attention", [](const KernelDesc &d) { return attentionSource(d, false); },
                   [](const KernelDesc &d, const LaunchShapes &s) {
                     return attentionLaunch(d, s, false);
                   }});
  kinds.push_back({"attention_lse", [](const KernelDesc &d) { return attentionSource(d, true); },
                   [](const KernelDesc &d, const LaunchShapes &s) {
                     return attentionLaunch(d, s, true);
                   }});
  kinds.push_back({"attention_grad",
                   [](const KernelDesc &d) { return attentionGradSource(d, false); },
                   [](const KernelDesc &d, const LaunchShapes &s) {
                     return attentionGradLaunch(d, s, false);
                   }});
  kinds.push_back({"attention_grad_lse",
                   [](const KernelDesc &d) { return attentionGradSource(d, true); },
                   [](const KernelDesc &d, const LaunchShapes &s) {
                     return attentionGradLaunch(d, s, true);
                   }});
  kinds.push_back({"kv_cache_attention", kvCacheAttentionSource, kvCacheAttentionLaunch});
}
