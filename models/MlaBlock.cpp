//===- MlaBlock.cpp - Multi-head Latent Attention -------------------------===//
//
// Part of the FusionLLM compiler.
//
// MODEL.md §3: low-rank q and kv projections with RMSNorm on the latents, decoupled RoPE
// (a d_r key part shared by all groups), optional per-head qk-norm, GQA over G groups,
// causal or sliding-window attention, output projection. Training materialises K and V
// per group (no latent absorption); decoding (@decode_step) caches them per group.
//
//===----------------------------------------------------------------------===//

#include "models/ModelBuilder.h"

#include <cmath>

using namespace mlir;
using namespace mlir::fusion;
using namespace mlir::fusion::models;

Value mlir::fusion::models::buildMla(ModelBuilder &mb, Value u, llvm::StringRef prefix,
                                     int64_t window) {
  const spec::ModelConfig &m = mb.model();
  auto shape = cast<RankedTensorType>(u.getType()).getShape();
  int64_t batch = shape[0], seq = shape[1], dim = m.dim;
  int64_t heads = m.nHeads, groups = m.nKvGroups, dn = m.qkNopeHeadDim, dr = m.qkRopeHeadDim,
          dv = m.vHeadDim, dqk = m.qkHeadDim(), rq = m.qLoraRank, rkv = m.kvLoraRank;
  auto name = [&](llvm::StringRef leaf) { return (prefix + "." + leaf).str(); };
  Location qLoc = mb.loc(name("q"), "model.q_lora_rank");
  Location kvLoc = mb.loc(name("kv"), "model.kv_lora_rank");
  Location ropeLoc = mb.loc(name("rope"), "model.qk_rope_head_dim");
  Location coreLoc = mb.loc(name("core"), window > 0 ? "model.sliding_window" : "model.n_heads");
  Location outLoc = mb.loc(name("wo"), "model.v_head_dim");

  // 1. Queries: c_q = RMSNorm(W_DQ u), q = W_UQ c_q (or q = W_Q u without the q latent).
  Value q;
  if (rq > 0) {
    Value wqa = mb.computeParam(name("wq_a.weight"), {rq, dim}, mb.matrixInit(dim), qLoc);
    Value cq = mb.rmsNorm(mb.linear(u, wqa, qLoc),
                          mb.param(name("q_norm.weight"), {rq}, mb.normInit(), qLoc), qLoc);
    Value wqb = mb.computeParam(name("wq_b.weight"), {heads * dqk, rq}, mb.matrixInit(rq), qLoc);
    q = mb.linear(cq, wqb, qLoc);
  } else {
    Value wq = mb.computeParam(name("wq.weight"), {heads * dqk, dim}, mb.matrixInit(dim), qLoc);
    q = mb.linear(u, wq, qLoc);
  }
  q = mb.reshape(q, {batch, seq, heads, dqk}, qLoc);

  // 2. Keys and values: [c_kv ; k_r] = W_DKV u, [k_n ; v]_g = W_UKV RMSNorm(c_kv).
  Value wkva = mb.computeParam(name("wkv_a.weight"), {rkv + dr, dim}, mb.matrixInit(dim), kvLoc);
  Value kva = mb.linear(u, wkva, kvLoc);
  Value ckv = mb.rmsNorm(mb.slice(kva, 2, 0, rkv, kvLoc),
                         mb.param(name("kv_norm.weight"), {rkv}, mb.normInit(), kvLoc), kvLoc);
  Value kr = mb.slice(kva, 2, rkv, dr, kvLoc);
  Value wkvb =
      mb.computeParam(name("wkv_b.weight"), {groups * (dn + dv), rkv}, mb.matrixInit(rkv), kvLoc);
  Value kvb = mb.reshape(mb.linear(ckv, wkvb, kvLoc), {batch, seq, groups, dn + dv}, kvLoc);
  Value kn = mb.slice(kvb, 3, 0, dn, kvLoc);
  Value v = mb.slice(kvb, 3, dn, dv, kvLoc);
  // The rope key part is one d_r vector per token, shared by every group.
  Value krGroups = mb.broadcast(kr, {batch, seq, groups, dr}, {0, 1, 3}, kvLoc);
  Value k = dn > 0 ? mb.concat({kn, krGroups}, 3, kvLoc) : krGroups;

  // 3. qk-norm (gains shared across heads), then RoPE on the last d_r components.
  if (m.qkNorm) {
    q = mb.rmsNorm(q, mb.param(name("qk_norm_q.weight"), {dqk}, mb.normInit(), qLoc), qLoc);
    k = mb.rmsNorm(k, mb.param(name("qk_norm_k.weight"), {dqk}, mb.normInit(), kvLoc), kvLoc);
  }
  OpBuilder &b = mb.b();
  const ModelBuilder::Decoding *decoding = mb.decoding();
  auto rope = [&](Value x) -> Value {
    if (decoding)
      return RopeAtOp::create(b, ropeLoc, x.getType(), x, decoding->position,
                              b.getI64IntegerAttr(dr), b.getF32FloatAttr(m.ropeTheta));
    return RopeOp::create(b, ropeLoc, x.getType(), x, b.getI64IntegerAttr(dr),
                          b.getF32FloatAttr(m.ropeTheta));
  };
  q = rope(q);
  k = rope(k);

  // 4. Attention over [B, heads, T, d], GQA with contiguous head blocks per group.
  Value qh = mb.transpose(q, {0, 2, 1, 3}, coreLoc);
  Value kh = mb.transpose(k, {0, 2, 1, 3}, coreLoc);
  Value vh = mb.transpose(v, {0, 2, 1, 3}, coreLoc);
  RankedTensorType oType = mb.tensor({batch, heads, seq, dv}, mb.computeType());
  FloatAttr scale = b.getF32FloatAttr(1.0 / std::sqrt(double(dqk)));
  Value o;
  if (decoding) {
    // Decoding: append this token's K/V to the layer's caches, attend over the prefix.
    int64_t len = decoding->cacheLength;
    ArrayAttr caches = b.getArrayAttr(
        {mb.cache(name("k_cache"), {batch, groups, len, dqk}, coreLoc),
         mb.cache(name("v_cache"), {batch, groups, len, dv}, coreLoc)});
    o = KvCacheAttentionOp::create(b, coreLoc, oType, qh, kh, vh, decoding->position, caches,
                                   b.getI64IntegerAttr(window), scale);
  } else {
    o = AttentionOp::create(b, coreLoc, oType, qh, kh, vh, /*causal=*/b.getUnitAttr(),
                            b.getI64IntegerAttr(window), scale);
  }
  o = mb.reshape(mb.transpose(o, {0, 2, 1, 3}, coreLoc), {batch, seq, heads * dv}, coreLoc);

  // 5. Output projection (a residual-branch output: depth-scaled init).
  Value wo = mb.computeParam(name("wo.weight"), {dim, heads * dv},
                             mb.residualOutputInit(heads * dv), outLoc);
  return mb.linear(o, wo, outLoc);
}
