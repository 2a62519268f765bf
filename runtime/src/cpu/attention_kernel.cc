//===- attention_kernel.cc - Causal / sliding-window GQA attention ---------===//
//
// q [B, H, T, d_qk], k [B, G, T, d_qk], v [B, G, T, d_v] → o [B, H, T, d_v]; query head h uses
// key/value group g(h) = h / (H/G) (MODEL.md §3). s_{t,u} = scale·q_t·k_u over the allowed
// keys 𝒰(t): u ≤ t (causal), t − window < u ≤ t (causal with window > 0: exactly `window`
// keys including self), every u (not causal). Two-pass softmax in fp32 per query row: the
// scores and their maximum, then p_u = exp(s_u − max) (vec_math.h), Σp and Σ p_u·v_u, divided
// once. Work items are (batch, head) pairs on the executor's pool; each converts its group's K
// and V to fp32 once and walks its query rows in order, so results do not depend on the
// thread count.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"
#include "vec_math.h"

#include <algorithm>
#include <cmath>

namespace fusion::rt::cpu {

float attendOneQuery(const float *query, const float *keys, const float *values, uint64_t qkRow,
                     uint64_t vRow, int64_t first, int64_t last, float scale, float *scores,
                     float *out) {
  float maxScore = -INFINITY;
  for (int64_t u = first; u <= last; ++u) {
    float s = scale * dotF32(query, keys + u * qkRow, qkRow);
    scores[u] = s;
    maxScore = std::max(maxScore, s);
  }
  for (int64_t u = first; u <= last; ++u)
    scores[u] -= maxScore;
  expF32(&scores[first], &scores[first], static_cast<uint64_t>(last - first + 1));
  std::fill(out, out + vRow, 0.0f);
  float denominator = 0;
  for (int64_t u = first; u <= last; ++u) {
    float p = scores[u];
    denominator += p;
    axpyF32(p, values + u * vRow, out, vRow);
  }
  float inverse = 1.0f / denominator;
  for (uint64_t e = 0; e < vRow; ++e)
    out[e] *= inverse;
  return maxScore + std::log(denominator);
}

namespace {

/// attention (withLse = false) and attention_lse (output 1: lse [B, H, T] f32).
Status attentionImpl(const KernelContext &context, bool withLse) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, withLse ? 2 : 1));
  FUSION_ASSIGN_OR_RETURN(bool causal, context.flagAttr("causal"));
  FUSION_ASSIGN_OR_RETURN(int64_t window, context.intAttr("window", 0));
  FUSION_ASSIGN_OR_RETURN(double scaleAttr, context.floatAttr("scale"));
  const Tensor &q = context.inputs[0], &k = context.inputs[1], &v = context.inputs[2];
  const Tensor &o = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(q, "input 0 (q)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(k, "input 1 (k)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(v, "input 2 (v)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(o, "output 0 (o)"));
  FUSION_RETURN_IF_ERROR(context.expectRank(q, "input 0 (q)", 4));
  FUSION_RETURN_IF_ERROR(context.expectRank(k, "input 1 (k)", 4));
  FUSION_RETURN_IF_ERROR(context.expectRank(v, "input 2 (v)", 4));
  const std::vector<int64_t> &qs = q.info->shape, &ks = k.info->shape, &vs = v.info->shape;
  const int64_t B = qs[0], H = qs[1], T = qs[2], dqk = qs[3];
  const int64_t G = ks[1], dv = vs[3];
  if (ks[0] != B || ks[2] != T || ks[3] != dqk)
    return tensorError(k, "input 1 (k)",
                       "must be [B, G, T, d_qk] with q's B = " + std::to_string(B) +
                           ", T = " + std::to_string(T) + ", d_qk = " + std::to_string(dqk));
  if (vs[0] != B || vs[1] != G || vs[2] != T)
    return tensorError(v, "input 2 (v)",
                       "must be [B, G, T, d_v] with k's B = " + std::to_string(B) +
                           ", G = " + std::to_string(G) + ", T = " + std::to_string(T));
  if (G < 1 || H % G != 0)
    return tensorError(k, "input 1 (k)",
                       "has " + std::to_string(G) + " groups, which must be >= 1 and divide " +
                           "the " + std::to_string(H) + " query heads");
  FUSION_RETURN_IF_ERROR(context.expectShape(o, "output 0 (o)", {B, H, T, dv}));
  if (withLse) {
    FUSION_RETURN_IF_ERROR(
        context.expectDType(context.outputs[1], "output 1 (lse)", schema::DType::F32));
    FUSION_RETURN_IF_ERROR(context.expectShape(context.outputs[1], "output 1 (lse)", {B, H, T}));
  }
  if (window < 0 || (window > 0 && !causal))
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'window' = " + std::to_string(window) +
                      " must be >= 0, and a window > 0 needs 'causal'");
  if (!(scaleAttr > 0))
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'scale' must be positive, got " + std::to_string(scaleAttr));
  if (o.info->numElements == 0)
    return Status::okStatus();
  const float scale = static_cast<float>(scaleAttr);
  const int64_t headsPerGroup = H / G;
  const uint64_t qkRow = static_cast<uint64_t>(dqk), vRow = static_cast<uint64_t>(dv);
  const uint64_t len = static_cast<uint64_t>(T);

  context.parallelFor(static_cast<uint64_t>(B * H), 1, [&](uint64_t begin, uint64_t end) {
    std::vector<float> keys(len * qkRow), values(len * vRow), query(qkRow), scores(len), acc(vRow);
    for (uint64_t item = begin; item < end; ++item) {
      uint64_t b = item / static_cast<uint64_t>(H), h = item % static_cast<uint64_t>(H);
      uint64_t g = h / static_cast<uint64_t>(headsPerGroup);
      uint64_t kvHead = b * static_cast<uint64_t>(G) + g;
      loadRow(k, kvHead * len * qkRow, len * qkRow, keys.data());
      loadRow(v, kvHead * len * vRow, len * vRow, values.data());
      uint64_t qHead = item; // b * H + h
      for (int64_t t = 0; t < T; ++t) {
        loadRow(q, (qHead * len + t) * qkRow, qkRow, query.data());
        int64_t first = 0, last = T - 1;
        if (causal) {
          last = t;
          first = window > 0 ? std::max<int64_t>(0, t - window + 1) : 0;
        }
        float lse = attendOneQuery(query.data(), keys.data(), values.data(), qkRow, vRow, first,
                                   last, scale, scores.data(), acc.data());
        storeRow(o, (qHead * len + t) * vRow, vRow, acc.data());
        if (withLse)
          storeRow(context.outputs[1], qHead * len + static_cast<uint64_t>(t), 1, &lse);
      }
    }
  });
  return Status::okStatus();
}

} // namespace

Status attentionKernel(const KernelContext &context) {
  return attentionImpl(context, /*withLse=*/false);
}

Status attentionLseKernel(const KernelContext &context) {
  return attentionImpl(context, /*withLse=*/true);
}

} // namespace fusion::rt::cpu
