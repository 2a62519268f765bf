//===- Pointwise.cpp - CUDA generators for the pointwise kinds ----------===//
//
// Part of the FusionLLM compiler.
//
// templates/pointwise.cuh:
//   activation_grad  dx = dy·f′(x), f = silu | sigmoid | softplus | softcap (attribute `fn`,
//                    `cap` for softcap); grid-stride over the elements, argument n.
//   swiglu_grad      s = σ(gate): dgate = dy·up·s(1 + gate(1 − s)), dup = dy·gate·s; the same.
//   rope             x [B, T, …, d]: the last d_r = rotary_dims components rotated in
//                    interleaved pairs by φ_k = p·theta^(−2k/d_r), p the index along dim 1.
//   rope_grad        the inverse rotation R(−φ) (the same tables).
//   rope_at          rope at positions position[0] + t (decoding; input 1 is an i32/i64
//                    buffer of one element, read on the device: a negative position, which
//                    the CPU backend rejects, rotates by its negative angle).
// The rope kinds launch grid (T, S) with S = min(ceil(B / 4), 65535) batch slices when
// T >= 256 (each block loops over its batches, so the fp64 cos/sin table of a position is
// computed B/S times instead of B), else S = min(B, 65535); one position's table in dynamic
// shared memory (d_r/2 float2) and blocks of up to 256 threads walking the position's
// P = Π shape[2..−2] rows: d/2 column pairs per row, each one 4- or 8-byte access, when d and
// d − d_r are even and the buffers pair-aligned, else P·(d − d_r/2) items (pass-through
// elements and pairs); arguments (B, T, P, d); rotary_dims and theta are baked into the
// source. Derivatives are fp64 for f32 results (the CPU kernels' arithmetic), fp32 for
// bf16/f16 results.
//
// Faster versions: 16-byte vector loads/stores (8 bf16 per thread) in the elementwise
// gradients; for rope, 16-byte accesses of 4 pairs, or rope fused into the q/k producers.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace llvm;
using namespace mlir::fusion::cuda;

namespace {

/// Fails unless every buffer of the launch has `n` elements.
Error checkSameCount(const KernelDesc &desc, const LaunchShapes &shapes, int64_t n) {
  for (size_t i = 0; i < shapes.inputs.size(); ++i)
    if (numElements(shapes.inputs[i]) != n)
      return kindError(desc, "input " + Twine(i) + " has " +
                                 Twine(numElements(shapes.inputs[i])) + " elements, input 0 " +
                                 Twine(n));
  for (size_t i = 0; i < shapes.outputs.size(); ++i)
    if (numElements(shapes.outputs[i]) != n)
      return kindError(desc, "output " + Twine(i) + " has " +
                                 Twine(numElements(shapes.outputs[i])) + " elements, input 0 " +
                                 Twine(n));
  return Error::success();
}

Expected<LaunchConfig> elementwiseLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  int64_t n = numElements(shapes.inputs[0]);
  if (Error error = checkSameCount(desc, shapes, n))
    return std::move(error);
  return gridStride(n, desc.blockSize);
}

Expected<std::string> activationGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 2, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1}, {0}))
    return std::move(error);
  Expected<std::string> fn = desc.getString("fn");
  if (!fn)
    return fn.takeError();
  StringRef which;
  double cap = 0.0;
  if (*fn == "silu") {
    which = "fk::kActSilu";
  } else if (*fn == "sigmoid") {
    which = "fk::kActSigmoid";
  } else if (*fn == "softplus") {
    which = "fk::kActSoftplus";
  } else if (*fn == "softcap") {
    which = "fk::kActSoftcap";
    Expected<double> value = desc.getFloat("cap");
    if (!value)
      return value.takeError();
    if (!(*value > 0) || !std::isfinite(*value))
      return kindError(desc, "attribute 'cap' must be positive and finite, got " +
                                 std::to_string(*value));
    cap = *value;
  } else {
    return kindError(desc, "attribute 'fn' must be one of silu, sigmoid, softplus, softcap, "
                           "got '" +
                               *fn + "'");
  }
  return wrapKernel(desc, {"pointwise"}, {"x", "dy"}, {"dx"}, {"n"},
                    formatv("fk::activationGrad<{0}>(x, dy, dx, n, {1});", which,
                            doubleLiteral(cap))
                        .str());
}

Expected<std::string> swigluGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 3, 2))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1, 2}, {0, 1}))
    return std::move(error);
  return wrapKernel(desc, {"pointwise"}, {"gate", "up", "dy"}, {"dgate", "dup"}, {"n"},
                    "fk::swigluGrad(gate, up, dy, dgate, dup, n);");
}

/// rotary_dims (even, >= 2) and theta (> 0, finite).
Error ropeAttributes(const KernelDesc &desc, int64_t &rotary, double &theta) {
  Expected<int64_t> dims = desc.getInt("rotary_dims");
  if (!dims)
    return dims.takeError();
  if (*dims < 2 || *dims % 2 != 0)
    return kindError(desc, "attribute 'rotary_dims' = " + Twine(*dims) +
                               " must be even and >= 2");
  Expected<double> base = desc.getFloat("theta");
  if (!base)
    return base.takeError();
  if (!(*base > 0) || !std::isfinite(*base))
    return kindError(desc, "attribute 'theta' must be positive and finite, got " +
                               std::to_string(*base));
  rotary = *dims;
  theta = *base;
  return Error::success();
}

/// rope / rope_grad (`inverse`) and rope_at (`atPosition`: input 1 holds the first position).
Expected<std::string> ropeSource(const KernelDesc &desc, bool inverse, bool atPosition) {
  if (Error error = checkArity(desc, atPosition ? 2 : 1, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0}, {0}))
    return std::move(error);
  if (atPosition)
    if (Error error = checkIndex(desc, /*isOutput=*/false, 1))
      return std::move(error);
  int64_t rotary;
  double theta;
  if (Error error = ropeAttributes(desc, rotary, theta))
    return std::move(error);
  SmallVector<StringRef> inputs = {inverse ? "dy" : "x"};
  if (atPosition)
    inputs.push_back("position");
  std::string body =
      formatv("fk::rope<{0}>({1}, {2}, batch, seq, rowsPerPosition, d, {3}, {4}, {5});",
              inverse ? "true" : "false", inputs[0], inverse ? "dx" : "out", rotary,
              doubleLiteral(theta), atPosition ? "fk::ldIndex(position[0])" : "0")
          .str();
  return wrapKernel(desc, {"pointwise"}, inputs, {inverse ? "dx" : "out"},
                    {"batch", "seq", "rowsPerPosition", "d"}, body);
}

Expected<LaunchConfig> ropeLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> x = shapes.inputs[0];
  if (x.size() < 3)
    return kindError(desc, "input 0 must have rank >= 3 ([B, T, ..., d]), got rank " +
                               Twine(x.size()));
  if (shapes.outputs[0] != x)
    return kindError(desc, "output 0 must have the shape of input 0, " + shapeString(x) +
                               ", got " + shapeString(shapes.outputs[0]));
  if (shapes.inputs.size() == 2 && numElements(shapes.inputs[1]) != 1)
    return kindError(desc, "input 1 (position) must hold one element, got shape " +
                               shapeString(shapes.inputs[1]));
  int64_t rotary = 0;
  double theta = 0;
  if (Error error = ropeAttributes(desc, rotary, theta))
    return std::move(error);
  int64_t batch = x[0], seq = x[1], d = x.back();
  if (rotary > d)
    return kindError(desc, "attribute 'rotary_dims' = " + Twine(rotary) +
                               " exceeds the last dimension " + Twine(d));
  int64_t rowsPerPosition = numElements(x.slice(2, x.size() - 3));
  int64_t items = d - rotary / 2;
  int64_t perPosition = rowsPerPosition * items;
  if (perPosition > std::numeric_limits<int32_t>::max() ||
      seq > std::numeric_limits<int32_t>::max())
    return kindError(desc, "shape " + shapeString(x) +
                               " has more than 2^31 - 1 positions or items per position");
  int64_t smem = rotary / 2 * 8;
  if (smem > 227 * 1024)
    return kindError(desc, "the cos/sin table of " + Twine(rotary / 2) + " pairs needs " +
                               Twine(smem) + " bytes of shared memory, more than 227 KiB");
  LaunchConfig config;
  int64_t slices = seq >= 256 ? (batch + 3) / 4 : batch;
  config.grid = {std::max<int64_t>(seq, 1), std::clamp<int64_t>(slices, 1, 65535), 1};
  config.block = {roundThreads(perPosition, 256), 1, 1};
  config.smem = smem;
  config.args = {batch, seq, rowsPerPosition, d};
  return config;
}

} // namespace

void mlir::fusion::cuda::addPointwiseKinds(std::vector<KindGenerator> &kinds) {
  kinds.push_back({"activation_grad", activationGradSource, elementwiseLaunch});
  kinds.push_back({"swiglu_grad", swigluGradSource, elementwiseLaunch});
  kinds.push_back(
      {"rope", [](const KernelDesc &d) { return ropeSource(d, false, false); }, ropeLaunch});
  kinds.push_back(
      {"rope_grad", [](const KernelDesc &d) { return ropeSource(d, true, false); }, ropeLaunch});
  kinds.push_back(
      {"rope_at", [](const KernelDesc &d) { return ropeSource(d, false, true); }, ropeLaunch});
}
