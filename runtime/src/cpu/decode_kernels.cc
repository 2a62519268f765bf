//===- decode_kernels.cc - Incremental decoding with caches ----------------===//
//
// The inference kinds (docs/op-kinds.md, "Inference kinds"): S new tokens at position p,
// with per-layer caches that are inputs and outputs of the launch (in plans the same buffer,
// updated in place; a separate output buffer first receives a copy of the cache):
//   rope_at             RoPE at positions p + t (rope_kernel.cc's rotation with an offset).
//   kv_cache_attention  K/V appended at p..p+S−1, then causal/windowed GQA attention over the
//                       cached prefix, with the attention kernel's arithmetic (scores and
//                       softmax in fp32, the same summation order), so a query attends
//                       exactly as it does in the full-sequence kernel.
//   causal_conv1d_step  the depthwise causal convolution continued from the last K−1 inputs.
//   gated_delta_step    the gated delta rule in its recurrent form, one token at a time:
//                       Hs ← α(Hs − β k (kᵀHs)) + β k vᵀ, o = Hsᵀ q, Hs = Sᵀ [d_k × d_h] fp32.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"
#include "vec_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace fusion::rt::cpu {

namespace {

/// The position input: i32/i64 with one element, >= 0.
StatusOr<int64_t> readPosition(const KernelContext &context, const Tensor &position,
                               const std::string &role) {
  FUSION_RETURN_IF_ERROR(context.expectIndex(position, role));
  FUSION_RETURN_IF_ERROR(context.expectNumElements(position, role, 1));
  int64_t p = loadIndex(position, 0);
  if (p < 0)
    return tensorError(position, role, "holds position " + std::to_string(p) + " < 0");
  return p;
}

/// Cache output `output` continues cache input `input`: normally the same buffer (updated in
/// place); a separate buffer of the same type and shape first receives a copy.
Status continueState(const KernelContext &context, size_t input, size_t output) {
  const Tensor &in = context.inputs[input], &out = context.outputs[output];
  if (in.info->dtype != out.info->dtype || in.info->shape != out.info->shape)
    return tensorError(out, "output " + std::to_string(output),
                       "must have the type and shape of its cache, input " +
                           std::to_string(input));
  if (in.data != out.data && in.info->byteSize > 0)
    std::memcpy(out.data, in.data, in.info->byteSize);
  return Status::okStatus();
}

} // namespace

Status ropeAtKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  FUSION_ASSIGN_OR_RETURN(int64_t position,
                          readPosition(context, context.inputs[1], "input 1 (position)"));
  return rotaryKernel(context, /*inverse=*/false, "input 0 (x)", "output 0", position);
}

Status kvCacheAttentionKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(6, 3));
  FUSION_ASSIGN_OR_RETURN(int64_t window, context.intAttr("window", 0));
  FUSION_ASSIGN_OR_RETURN(double scaleAttr, context.floatAttr("scale"));
  const Tensor &q = context.inputs[0], &k = context.inputs[1], &v = context.inputs[2];
  const Tensor &kCache = context.inputs[4], &vCache = context.inputs[5], &o = context.outputs[0];
  const char *roles[] = {"input 0 (q)", "input 1 (k)", "input 2 (v)", "input 3 (position)",
                         "input 4 (K cache)", "input 5 (V cache)"};
  for (size_t i : {0, 1, 2, 4, 5}) {
    FUSION_RETURN_IF_ERROR(context.expectFloat(context.inputs[i], roles[i]));
    FUSION_RETURN_IF_ERROR(context.expectRank(context.inputs[i], roles[i], 4));
  }
  FUSION_ASSIGN_OR_RETURN(int64_t p, readPosition(context, context.inputs[3], roles[3]));
  const std::vector<int64_t> &qs = q.info->shape, &ks = k.info->shape, &vs = v.info->shape,
                             &cs = kCache.info->shape;
  const int64_t B = qs[0], H = qs[1], S = qs[2], dqk = qs[3], G = ks[1], dv = vs[3],
                Tc = cs[2];
  if (G < 1 || H % G != 0)
    return tensorError(k, roles[1], "must have a number of groups dividing the " +
                                        std::to_string(H) + " query heads");
  FUSION_RETURN_IF_ERROR(context.expectShape(k, roles[1], {B, G, S, dqk}));
  FUSION_RETURN_IF_ERROR(context.expectShape(v, roles[2], {B, G, S, dv}));
  FUSION_RETURN_IF_ERROR(context.expectShape(kCache, roles[4], {B, G, Tc, dqk}));
  FUSION_RETURN_IF_ERROR(context.expectShape(vCache, roles[5], {B, G, Tc, dv}));
  FUSION_RETURN_IF_ERROR(context.expectShape(o, "output 0 (o)", {B, H, S, dv}));
  if (window < 0)
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'window' = " + std::to_string(window) + " must be >= 0");
  if (!(scaleAttr > 0))
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'scale' must be positive, got " + std::to_string(scaleAttr));
  if (p + S > Tc)
    return tensorError(kCache, roles[4],
                       "holds " + std::to_string(Tc) + " positions; position " +
                           std::to_string(p) + " + " + std::to_string(S) +
                           " new token(s) does not fit");
  FUSION_RETURN_IF_ERROR(continueState(context, 4, 1));
  FUSION_RETURN_IF_ERROR(continueState(context, 5, 2));
  if (o.info->numElements == 0)
    return Status::okStatus();
  const Tensor &kOut = context.outputs[1], &vOut = context.outputs[2];

  const uint64_t qkRow = static_cast<uint64_t>(dqk), vRow = static_cast<uint64_t>(dv);
  const uint64_t cacheLen = static_cast<uint64_t>(Tc), newLen = static_cast<uint64_t>(S);
  // 1. Append: cache[b, g, p + i] = new[b, g, i].
  std::vector<float> row(std::max(qkRow, vRow));
  for (uint64_t bg = 0; bg < static_cast<uint64_t>(B * G); ++bg)
    for (uint64_t i = 0; i < newLen; ++i) {
      uint64_t slot = bg * cacheLen + static_cast<uint64_t>(p) + i;
      loadRow(k, (bg * newLen + i) * qkRow, qkRow, row.data());
      storeRow(kOut, slot * qkRow, qkRow, row.data());
      loadRow(v, (bg * newLen + i) * vRow, vRow, row.data());
      storeRow(vOut, slot * vRow, vRow, row.data());
    }

  // 2. Attend over the cached prefix, as attention_kernel.cc does for query t = p + i.
  const float scale = static_cast<float>(scaleAttr);
  const uint64_t headsPerGroup = static_cast<uint64_t>(H / G);
  const uint64_t visible = static_cast<uint64_t>(p) + newLen;
  context.parallelFor(static_cast<uint64_t>(B * H), 1, [&](uint64_t begin, uint64_t end) {
    std::vector<float> keys(visible * qkRow), values(visible * vRow), query(qkRow),
        scores(visible), acc(vRow);
    for (uint64_t item = begin; item < end; ++item) {
      uint64_t b = item / static_cast<uint64_t>(H), h = item % static_cast<uint64_t>(H);
      uint64_t kvHead = b * static_cast<uint64_t>(G) + h / headsPerGroup;
      loadRow(kOut, kvHead * cacheLen * qkRow, visible * qkRow, keys.data());
      loadRow(vOut, kvHead * cacheLen * vRow, visible * vRow, values.data());
      for (uint64_t i = 0; i < newLen; ++i) {
        loadRow(q, (item * newLen + i) * qkRow, qkRow, query.data());
        int64_t last = p + static_cast<int64_t>(i);
        int64_t first = window > 0 ? std::max<int64_t>(0, last - window + 1) : 0;
        attendOneQuery(query.data(), keys.data(), values.data(), qkRow, vRow, first, last, scale,
                       scores.data(), acc.data());
        storeRow(o, (item * newLen + i) * vRow, vRow, acc.data());
      }
    }
  });
  return Status::okStatus();
}

Status causalConv1dStepKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 2));
  const Tensor &x = context.inputs[0], &w = context.inputs[1], &tail = context.inputs[2];
  const Tensor &y = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0 (x)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(w, "input 1 (w)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(tail, "input 2 (tail)"));
  FUSION_RETURN_IF_ERROR(context.expectRank(x, "input 0 (x)", 3));
  FUSION_RETURN_IF_ERROR(context.expectRank(w, "input 1 (w)", 2));
  const int64_t B = x.info->shape[0], S = x.info->shape[1], C = x.info->shape[2];
  const int64_t K = w.info->shape[1];
  if (w.info->shape[0] != C)
    return tensorError(w, "input 1 (w)",
                       "must have one row per channel of x (" + std::to_string(C) + ")");
  if (K < 2)
    return tensorError(w, "input 1 (w)", "must have K >= 2 taps (a K = 1 convolution has no tail)");
  FUSION_RETURN_IF_ERROR(context.expectShape(tail, "input 2 (tail)", {B, K - 1, C}));
  FUSION_RETURN_IF_ERROR(context.expectShape(y, "output 0 (y)", x.info->shape));
  FUSION_RETURN_IF_ERROR(context.expectShape(context.outputs[1], "output 1 (tail)", {B, K - 1, C}));
  if (y.info->numElements == 0)
    return Status::okStatus();
  F32View ws(w);
  const float *wData = ws.data();
  const uint64_t channels = static_cast<uint64_t>(C), taps = static_cast<uint64_t>(K);
  const uint64_t zLen = taps - 1 + static_cast<uint64_t>(S);
  std::vector<float> z(zLen * channels), out(channels);
  for (uint64_t b = 0; b < static_cast<uint64_t>(B); ++b) {
    // z = concat(tail, x) along time.
    loadRow(tail, b * (taps - 1) * channels, (taps - 1) * channels, z.data());
    loadRow(x, b * static_cast<uint64_t>(S) * channels, static_cast<uint64_t>(S) * channels,
            z.data() + (taps - 1) * channels);
    for (uint64_t i = 0; i < static_cast<uint64_t>(S); ++i) {
      // Taps in order j = 0..K−1, fp32, as causal_conv1d_kernel.cc sums them.
      for (uint64_t c = 0; c < channels; ++c) {
        float acc = 0;
        for (uint64_t j = 0; j < taps; ++j)
          acc += wData[c * taps + j] * z[(i + j) * channels + c];
        out[c] = acc;
      }
      storeRow(y, (b * static_cast<uint64_t>(S) + i) * channels, channels, out.data());
    }
    storeRow(context.outputs[1], b * (taps - 1) * channels, (taps - 1) * channels,
             z.data() + static_cast<uint64_t>(S) * channels);
  }
  return Status::okStatus();
}

Status gatedDeltaStepKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(6, 2));
  const Tensor &q = context.inputs[0], &k = context.inputs[1], &v = context.inputs[2];
  const Tensor &g = context.inputs[3], &beta = context.inputs[4], &state = context.inputs[5];
  const Tensor &o = context.outputs[0];
  const char *roles[] = {"input 0 (q)", "input 1 (k)", "input 2 (v)", "input 3 (g)",
                         "input 4 (beta)", "input 5 (state)"};
  const size_t ranks[] = {4, 4, 4, 3, 3, 4};
  for (size_t i = 0; i < 6; ++i) {
    FUSION_RETURN_IF_ERROR(context.expectFloat(context.inputs[i], roles[i]));
    FUSION_RETURN_IF_ERROR(context.expectRank(context.inputs[i], roles[i], ranks[i]));
  }
  FUSION_RETURN_IF_ERROR(context.expectDType(state, roles[5], schema::DType::F32));
  const std::vector<int64_t> &qs = q.info->shape, &vs = v.info->shape;
  const int64_t B = qs[0], S = qs[1], Hk = qs[2], dk = qs[3], H = vs[2], dh = vs[3];
  FUSION_RETURN_IF_ERROR(context.expectShape(k, roles[1], qs));
  if (vs[0] != B || vs[1] != S)
    return tensorError(v, roles[2], "must be [B, S, H, d_h] with q's B and S");
  if (Hk < 1 || H % Hk != 0)
    return tensorError(q, roles[0], "has " + std::to_string(Hk) +
                                        " key heads, which must divide the " +
                                        std::to_string(H) + " value heads");
  FUSION_RETURN_IF_ERROR(context.expectShape(g, roles[3], {B, S, H}));
  FUSION_RETURN_IF_ERROR(context.expectShape(beta, roles[4], {B, S, H}));
  FUSION_RETURN_IF_ERROR(context.expectShape(state, roles[5], {B, H, dk, dh}));
  FUSION_RETURN_IF_ERROR(context.expectShape(o, "output 0 (o)", vs));
  FUSION_RETURN_IF_ERROR(continueState(context, 5, 1));
  if (o.info->numElements == 0)
    return Status::okStatus();
  const uint64_t K = static_cast<uint64_t>(dk), D = static_cast<uint64_t>(dh);
  const uint64_t numHeads = static_cast<uint64_t>(H), numKeyHeads = static_cast<uint64_t>(Hk);
  const uint64_t len = static_cast<uint64_t>(S);
  float *hsAll = static_cast<float *>(context.outputs[1].data);
  context.parallelFor(static_cast<uint64_t>(B * H), 1, [&](uint64_t begin, uint64_t end) {
    std::vector<float> qq(K), kk(K), vv(D), kh(D), out(D);
    for (uint64_t item = begin; item < end; ++item) {
      const uint64_t b = item / numHeads, h = item % numHeads;
      const uint64_t keyHead = h * numKeyHeads / numHeads;
      float *hs = hsAll + item * K * D; // [d_k × d_h], this (b, h)
      for (uint64_t i = 0; i < len; ++i) {
        uint64_t token = b * len + i;
        loadRow(q, (token * numKeyHeads + keyHead) * K, K, qq.data());
        loadRow(k, (token * numKeyHeads + keyHead) * K, K, kk.data());
        loadRow(v, (token * numHeads + h) * D, D, vv.data());
        float alpha = std::exp(loadAsFloat(g.data, g.info->dtype, token * numHeads + h));
        float b_ = loadAsFloat(beta.data, beta.info->dtype, token * numHeads + h);
        // kh = kᵀ Hs, then Hs ← α (Hs − β k khᵀ) + β k vᵀ.
        std::fill(kh.begin(), kh.end(), 0.0f);
        for (uint64_t a = 0; a < K; ++a)
          axpyF32(kk[a], hs + a * D, kh.data(), D);
        for (uint64_t a = 0; a < K; ++a) {
          float *r = hs + a * D;
          float bk = b_ * kk[a];
          for (uint64_t e = 0; e < D; ++e)
            r[e] = alpha * (r[e] - bk * kh[e]) + bk * vv[e];
        }
        // o = Hsᵀ q.
        std::fill(out.begin(), out.end(), 0.0f);
        for (uint64_t a = 0; a < K; ++a)
          axpyF32(qq[a], hs + a * D, out.data(), D);
        storeRow(o, (token * numHeads + h) * D, D, out.data());
      }
    }
  });
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
