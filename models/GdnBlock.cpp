//===- GdnBlock.cpp - Gated DeltaNet --------------------------------------===//
//
// Part of the FusionLLM compiler.
//
// MODEL.md §4.1: q/k/v/z/a/b projections, short causal convolutions with SiLU, per-head L2
// normalisation (q scaled by d_k^(−1/2)), gates β = σ(b) and g = −exp(A_log)·softplus(a +
// dt_bias) in fp32, the chunked gated delta rule, a gated RMSNorm and the output
// projection.
//
//===----------------------------------------------------------------------===//

#include "models/ModelBuilder.h"

#include <cmath>

using namespace mlir;
using namespace mlir::fusion;
using namespace mlir::fusion::models;

Value mlir::fusion::models::buildGdn(ModelBuilder &mb, Value u, llvm::StringRef prefix) {
  const spec::ModelConfig &m = mb.model();
  auto shape = cast<RankedTensorType>(u.getType()).getShape();
  int64_t batch = shape[0], seq = shape[1], dim = m.dim;
  int64_t dk = m.gdnDState, dh = m.gdnHeaddim, heads = m.gdnValueHeads(),
          kHeads = m.gdnKeyHeads(), kc = m.gdnDConv;
  auto name = [&](llvm::StringRef leaf) { return (prefix + "." + leaf).str(); };
  Location projLoc = mb.loc(name("proj"), "model.gdn_expand");
  Location convLoc = mb.loc(name("conv"), "model.gdn_d_conv");
  Location gateLoc = mb.loc(name("gates"), "model.layer_schedule");
  Location coreLoc = mb.loc(name("core"), "model.gdn_chunk_size");
  Location outLoc = mb.loc(name("w_out"), "model.gdn_headdim");
  OpBuilder &b = mb.b();
  Type f32 = b.getF32Type();

  // 1. Projections; the gates w_a, w_b start at zero under μP ("zero the gates").
  ParamSpec gateInit = m.muP ? ParamSpec{"zeros", 0, 0, 0, "normuon", true} : mb.matrixInit(dim);
  auto proj = [&](llvm::StringRef leaf, int64_t out, const ParamSpec &init) {
    return mb.linear(u, mb.computeParam(name(leaf), {out, dim}, init, projLoc), projLoc);
  };
  Value qp = proj("w_q.weight", kHeads * dk, mb.matrixInit(dim));
  Value kp = proj("w_k.weight", kHeads * dk, mb.matrixInit(dim));
  Value vp = proj("w_v.weight", heads * dh, mb.matrixInit(dim));
  Value z = proj("w_z.weight", heads * dh, mb.matrixInit(dim));
  Value a = proj("w_a.weight", heads, gateInit);
  Value bb = proj("w_b.weight", heads, gateInit);

  // 2. Causal depthwise convolutions + SiLU.
  double bound = 1.0 / std::sqrt(double(kc));
  ParamSpec convInit{"uniform", 0, -bound, bound, "adamw", false};
  //    Decoding continues each convolution from its cached input tail.
  const ModelBuilder::Decoding *decoding = mb.decoding();
  auto conv = [&](Value x, llvm::StringRef leaf, int64_t channels) {
    Value w = mb.computeParam(name((leaf + ".weight").str()), {channels, kc}, convInit, convLoc);
    Value y;
    if (decoding)
      y = CausalConv1dStepOp::create(
          b, convLoc, x.getType(), x, w,
          b.getArrayAttr({mb.cache(name((leaf + ".tail").str()), {batch, kc - 1, channels}, convLoc)}));
    else
      y = CausalConv1dOp::create(b, convLoc, x.getType(), x, w);
    return Value(SiluOp::create(b, convLoc, y.getType(), y));
  };
  Value qc = conv(qp, "conv_q", kHeads * dk);
  Value kcv = conv(kp, "conv_k", kHeads * dk);
  Value vc = conv(vp, "conv_v", heads * dh);

  // 3. Per-head L2 norm; q carries the d_k^(−1/2) score scale.
  auto l2 = [&](Value x, double scale) {
    Value heads4 = mb.reshape(x, {batch, seq, kHeads, dk}, coreLoc);
    return Value(L2NormOp::create(b, coreLoc, heads4.getType(), heads4, b.getF32FloatAttr(1e-6),
                                  b.getF32FloatAttr(scale)));
  };
  Value q = l2(qc, 1.0 / std::sqrt(double(dk)));
  Value k = l2(kcv, 1.0);
  Value v = mb.reshape(vc, {batch, seq, heads, dh}, coreLoc);

  // 4. Gates in fp32: β = σ(b), g = −exp(A_log)·softplus(a + dt_bias).
  Value beta = SigmoidOp::create(b, gateLoc, mb.tensor({batch, seq, heads}, f32),
                                 mb.cast(bb, f32, gateLoc));
  Value aLog = mb.param(name("A_log"), {heads}, {"log_uniform", 0, 1.0, 16.0, "adamw", false},
                        gateLoc);
  Value dtBias = mb.param(name("dt_bias"), {heads}, {"dt_bias", 0, 1e-3, 1e-1, "adamw", false},
                          gateLoc);
  RankedTensorType gateType = mb.tensor({batch, seq, heads}, f32);
  Value shifted = mb.add(mb.cast(a, f32, gateLoc),
                         mb.broadcast(dtBias, {batch, seq, heads}, {2}, gateLoc), gateLoc);
  Value softplus = SoftplusOp::create(b, gateLoc, gateType, shifted);
  Value decayRate = ExpOp::create(b, gateLoc, aLog.getType(), aLog);
  Value g = NegOp::create(
      b, gateLoc, gateType,
      mb.mul(mb.broadcast(decayRate, {batch, seq, heads}, {2}, gateLoc), softplus, gateLoc));

  // 5. The recurrence (state and decays fp32 inside the kernel).
  //    Decoding: the recurrent form from the cached state, O(d_k·d_h) per token and head.
  Value o;
  if (decoding)
    o = GatedDeltaStepOp::create(
        b, coreLoc, v.getType(), q, k, v, g, beta,
        b.getArrayAttr({mb.cache(name("state"), {batch, heads, dk, dh}, coreLoc)}));
  else
    o = GatedDeltaRuleOp::create(b, coreLoc, v.getType(), q, k, v, g, beta,
                                 b.getI64IntegerAttr(m.gdnChunkSize));

  // 6. Gated RMSNorm (γ_o shared by heads) and the output projection.
  Value normed =
      mb.rmsNorm(o, mb.param(name("o_norm.weight"), {dh}, mb.normInit(), outLoc), outLoc);
  Value gate = mb.reshape(z, {batch, seq, heads, dh}, outLoc);
  Value y = mb.mul(normed, SiluOp::create(b, outLoc, gate.getType(), gate), outLoc);
  y = mb.reshape(y, {batch, seq, heads * dh}, outLoc);
  Value wout = mb.computeParam(name("w_out.weight"), {dim, heads * dh},
                               mb.residualOutputInit(heads * dh), outLoc);
  return mb.linear(y, wout, outLoc);
}
