//===- grad_mixer_kernels.cc - Backward of attention, conv1d, gated delta rule ===//
//
// Reverse-mode reference kernels of the sequence mixers, in double (operands read as fp32,
// one rounding on the store; attention_grad: fp32). Reductions run in a fixed order, so
// results do not depend on the thread count.
//   attention_grad   per query row, recomputed in fp32 (dot products with eight fixed partial
//                    sums, exp of vec_math.h, Σexp in double): P = softmax(scale·q·Kᵀ) over the
//                    forward's mask, O = P V, D = dO·O; dS = P⊙(dO·Vᵀ − D): dq = scale·dS K,
//                    dk += scale·dSᵀ q, dv += Pᵀ dO (fp32 accumulation, rows and heads in
//                    order). Work items are (batch, group) pairs, which walk the H/G query heads
//                    of the group in order, so dk and dv (summed over the group's heads) need no
//                    atomics.
//   causal_conv1d_grad  dx[b,s,c] = Σ_j w[c,j]·dy[b,s+K−1−j,c] (terms inside the row only);
//                    dw[c,j] = Σ_{b,t} dy[b,t,c]·x[b,t−K+1+j,c], one channel per work item.
//   gated_delta_rule_grad  backpropagation through the token recurrence of MODEL.md §4.1 (exact,
//                    independent of chunk_size, which only sets the checkpoint spacing): with
//                    A = α_t S_{t−1}, u = v_t − A k_t, S_t = A + β_t u k_tᵀ, o_t = S_t q_t and G =
//                    dS_t + do_t q_tᵀ: dq_t = S_tᵀ do_t, dβ_t = uᵀG k_t, du = β_t G k_t, dv_t = du,
//                    dk_t = β_t Gᵀu − Aᵀdu, dA = G − du k_tᵀ, dg_t = α_t⟨S_{t−1}, dA⟩,
//                    dS_{t−1} = α_t dA. States (fp64) are checkpointed every chunk_size tokens and
//                    recomputed one chunk at a time in reverse. Work items are (batch, key head)
//                    pairs walking the key head's value heads (h·H_k/H = key head) in order, so
//                    dq and dk (summed over those value heads) need no atomics.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"
#include "vec_math.h"

#include <algorithm>
#include <cmath>

namespace fusion::rt::cpu {

namespace {

Status invalid(const std::string &message) {
  return Status(StatusCode::kInvalidArgument, message);
}

/// Stores `count` doubles to `tensor` at element `offset`, rounding once.
void storeDoubles(const Tensor &tensor, uint64_t offset, uint64_t count, const double *src) {
  for (uint64_t i = 0; i < count; ++i)
    storeFromFloat(tensor.data, tensor.info->dtype, offset + i, static_cast<float>(src[i]));
}

} // namespace

//===----------------------------------------------------------------------===//
// attention_grad
//===----------------------------------------------------------------------===//

namespace {

/// attention_grad (saved = false) and attention_grad_lse (saved: inputs 4 and 5 are the
/// forward's o and lse; P = exp(s − lse) and delta = rowsum(dO ⊙ o) come from them).
Status attentionGradImpl(const KernelContext &context, bool saved) {
  FUSION_RETURN_IF_ERROR(context.expectArity(saved ? 6 : 4, 3));
  FUSION_ASSIGN_OR_RETURN(bool causal, context.flagAttr("causal"));
  FUSION_ASSIGN_OR_RETURN(int64_t window, context.intAttr("window", 0));
  FUSION_ASSIGN_OR_RETURN(double scale, context.floatAttr("scale"));
  const Tensor &q = context.inputs[0], &k = context.inputs[1], &v = context.inputs[2];
  const Tensor &dout = context.inputs[3];
  const Tensor &dq = context.outputs[0], &dk = context.outputs[1], &dv = context.outputs[2];
  const char *roles[] = {"input 0 (q)", "input 1 (k)", "input 2 (v)", "input 3 (do)"};
  for (size_t i = 0; i < 4; ++i) {
    FUSION_RETURN_IF_ERROR(context.expectFloat(context.inputs[i], roles[i]));
    FUSION_RETURN_IF_ERROR(context.expectRank(context.inputs[i], roles[i], 4));
  }
  FUSION_RETURN_IF_ERROR(context.expectFloat(dq, "output 0 (dq)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dk, "output 1 (dk)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dv, "output 2 (dv)"));
  const std::vector<int64_t> &qs = q.info->shape, &ks = k.info->shape, &vs = v.info->shape;
  const int64_t B = qs[0], H = qs[1], T = qs[2], dqk = qs[3];
  const int64_t G = ks[1], dvDim = vs[3];
  if (ks[0] != B || ks[2] != T || ks[3] != dqk)
    return tensorError(k, roles[1],
                       "must be [B, G, T, d_qk] with q's B = " + std::to_string(B) +
                           ", T = " + std::to_string(T) + ", d_qk = " + std::to_string(dqk));
  if (vs[0] != B || vs[1] != G || vs[2] != T)
    return tensorError(v, roles[2],
                       "must be [B, G, T, d_v] with k's B = " + std::to_string(B) +
                           ", G = " + std::to_string(G) + ", T = " + std::to_string(T));
  if (G < 1 || H % G != 0)
    return tensorError(k, roles[1],
                       "has " + std::to_string(G) + " groups, which must be >= 1 and divide " +
                           "the " + std::to_string(H) + " query heads");
  FUSION_RETURN_IF_ERROR(context.expectShape(dout, roles[3], {B, H, T, dvDim}));
  FUSION_RETURN_IF_ERROR(context.expectShape(dq, "output 0 (dq)", qs));
  FUSION_RETURN_IF_ERROR(context.expectShape(dk, "output 1 (dk)", ks));
  FUSION_RETURN_IF_ERROR(context.expectShape(dv, "output 2 (dv)", vs));
  if (saved) {
    FUSION_RETURN_IF_ERROR(context.expectFloat(context.inputs[4], "input 4 (o)"));
    FUSION_RETURN_IF_ERROR(context.expectShape(context.inputs[4], "input 4 (o)", {B, H, T, dvDim}));
    FUSION_RETURN_IF_ERROR(
        context.expectDType(context.inputs[5], "input 5 (lse)", schema::DType::F32));
    FUSION_RETURN_IF_ERROR(context.expectShape(context.inputs[5], "input 5 (lse)", {B, H, T}));
  }
  if (window < 0 || (window > 0 && !causal))
    return invalid("attribute 'window' = " + std::to_string(window) +
                   " must be >= 0, and a window > 0 needs 'causal'");
  if (!(scale > 0))
    return invalid("attribute 'scale' must be positive, got " + std::to_string(scale));
  if (q.info->numElements == 0 && k.info->numElements == 0 && v.info->numElements == 0)
    return Status::okStatus();
  const uint64_t len = static_cast<uint64_t>(T), qkRow = static_cast<uint64_t>(dqk);
  const uint64_t vRow = static_cast<uint64_t>(dvDim);
  const uint64_t headsPerGroup = static_cast<uint64_t>(H / G);

  context.parallelFor(static_cast<uint64_t>(B * G), 1, [&](uint64_t begin, uint64_t end) {
    std::vector<float> keys(len * qkRow), values(len * vRow), query(qkRow), grad(vRow);
    std::vector<float> dKeys(len * qkRow), dValues(len * vRow), probs(len), out(vRow);
    std::vector<float> dQuery(qkRow);
    const float scaleF = static_cast<float>(scale);
    for (uint64_t item = begin; item < end; ++item) {
      const uint64_t b = item / static_cast<uint64_t>(G), g = item % static_cast<uint64_t>(G);
      loadRow(k, item * len * qkRow, len * qkRow, keys.data());
      loadRow(v, item * len * vRow, len * vRow, values.data());
      std::fill(dKeys.begin(), dKeys.end(), 0.0f);
      std::fill(dValues.begin(), dValues.end(), 0.0f);
      for (uint64_t h = g * headsPerGroup; h < (g + 1) * headsPerGroup; ++h) {
        const uint64_t qHead = b * static_cast<uint64_t>(H) + h;
        for (int64_t t = 0; t < T; ++t) {
          const uint64_t row = qHead * len + static_cast<uint64_t>(t);
          loadRow(q, row * qkRow, qkRow, query.data());
          loadRow(dout, row * vRow, vRow, grad.data());
          int64_t first = 0, last = T - 1;
          if (causal) {
            last = t;
            first = window > 0 ? std::max<int64_t>(0, t - window + 1) : 0;
          }
          const uint64_t u0 = static_cast<uint64_t>(first);
          const uint64_t count = static_cast<uint64_t>(last - first + 1);
          float rowDot; // rowsum(dO ⊙ O)
          if (saved) {
            // P = exp(s − lse) with the forward's lse; O as the forward stored it.
            float lse;
            loadRow(context.inputs[5], row, 1, &lse);
            for (uint64_t u = u0; u < u0 + count; ++u)
              probs[u] = scaleF * dotF32(query.data(), &keys[u * qkRow], qkRow) - lse;
            expF32(&probs[u0], &probs[u0], count);
            loadRow(context.inputs[4], row * vRow, vRow, out.data());
            rowDot = dotF32(grad.data(), out.data(), vRow);
          } else {
            float maximum = -INFINITY;
            for (uint64_t u = u0; u < u0 + count; ++u) {
              probs[u] = scaleF * dotF32(query.data(), &keys[u * qkRow], qkRow);
              maximum = std::max(maximum, probs[u]);
            }
            for (uint64_t u = u0; u < u0 + count; ++u)
              probs[u] -= maximum;
            expF32(&probs[u0], &probs[u0], count);
            double sum = 0;
            for (uint64_t u = u0; u < u0 + count; ++u)
              sum += probs[u];
            const float inverse = static_cast<float>(1.0 / sum);
            std::fill(out.begin(), out.end(), 0.0f);
            for (uint64_t u = u0; u < u0 + count; ++u) {
              probs[u] *= inverse;
              axpyF32(probs[u], &values[u * vRow], out.data(), vRow);
            }
            rowDot = dotF32(grad.data(), out.data(), vRow);
          }
          std::fill(dQuery.begin(), dQuery.end(), 0.0f);
          for (uint64_t u = u0; u < u0 + count; ++u) {
            const float dp = dotF32(grad.data(), &values[u * vRow], vRow);
            const float ds = scaleF * probs[u] * (dp - rowDot);
            axpyF32(ds, &keys[u * qkRow], dQuery.data(), qkRow);
            axpyF32(ds, query.data(), &dKeys[u * qkRow], qkRow);
            axpyF32(probs[u], grad.data(), &dValues[u * vRow], vRow);
          }
          storeRow(dq, row * qkRow, qkRow, dQuery.data());
        }
      }
      storeRow(dk, item * len * qkRow, len * qkRow, dKeys.data());
      storeRow(dv, item * len * vRow, len * vRow, dValues.data());
    }
  });
  return Status::okStatus();
}

} // namespace

Status attentionGradKernel(const KernelContext &context) {
  return attentionGradImpl(context, /*saved=*/false);
}

Status attentionGradLseKernel(const KernelContext &context) {
  return attentionGradImpl(context, /*saved=*/true);
}

//===----------------------------------------------------------------------===//
// causal_conv1d_grad
//===----------------------------------------------------------------------===//

Status causalConv1dGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 2));
  const Tensor &x = context.inputs[0], &w = context.inputs[1], &dy = context.inputs[2];
  const Tensor &dx = context.outputs[0], &dw = context.outputs[1];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0 (x)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(w, "input 1 (w)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dy, "input 2 (dy)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dx, "output 0 (dx)"));
  FUSION_RETURN_IF_ERROR(context.expectDType(dw, "output 1 (dw)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectRank(x, "input 0 (x)", 3));
  FUSION_RETURN_IF_ERROR(context.expectRank(w, "input 1 (w)", 2));
  const int64_t batch = x.info->shape[0], seqLen = x.info->shape[1], channels = x.info->shape[2];
  if (w.info->shape[0] != channels)
    return tensorError(w, "input 1 (w)",
                       "must have one row per channel of x (" + std::to_string(channels) + ")");
  FUSION_RETURN_IF_ERROR(context.expectShape(dy, "input 2 (dy)", x.info->shape));
  FUSION_RETURN_IF_ERROR(context.expectShape(dx, "output 0 (dx)", x.info->shape));
  FUSION_RETURN_IF_ERROR(context.expectShape(dw, "output 1 (dw)", w.info->shape));
  const int64_t taps = w.info->shape[1];
  F32View xs(x), ws(w), dys(dy);
  const float *xData = xs.data(), *wData = ws.data(), *dyData = dys.data();
  const uint64_t C = static_cast<uint64_t>(channels), K = static_cast<uint64_t>(taps);
  const uint64_t L = static_cast<uint64_t>(seqLen);
  // dx: one (row, time step) per item; inputs that overlap an output were copied by runKernel.
  context.parallelFor(static_cast<uint64_t>(batch) * L, 16, [&](uint64_t begin, uint64_t end) {
    std::vector<float> out(C);
    for (uint64_t row = begin; row < end; ++row) {
      const int64_t s = static_cast<int64_t>(row % L);
      const uint64_t rowStart = row - static_cast<uint64_t>(s);
      for (uint64_t c = 0; c < C; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < taps; ++j) {
          int64_t t = s + taps - 1 - j;
          if (t < seqLen)
            acc += static_cast<double>(wData[c * K + static_cast<uint64_t>(j)]) *
                   dyData[(rowStart + static_cast<uint64_t>(t)) * C + c];
        }
        out[c] = static_cast<float>(acc);
      }
      storeRow(dx, row * C, C, out.data());
    }
  });
  float *dwData = static_cast<float *>(dw.data);
  context.parallelFor(C, 4, [&](uint64_t begin, uint64_t end) {
    std::vector<double> acc(K);
    for (uint64_t c = begin; c < end; ++c) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (uint64_t b = 0; b < static_cast<uint64_t>(batch); ++b)
        for (int64_t t = 0; t < seqLen; ++t) {
          double g = dyData[(b * L + static_cast<uint64_t>(t)) * C + c];
          for (int64_t j = 0; j < taps; ++j) {
            int64_t source = t - taps + 1 + j;
            if (source >= 0)
              acc[j] += g * xData[(b * L + static_cast<uint64_t>(source)) * C + c];
          }
        }
      for (uint64_t j = 0; j < K; ++j)
        dwData[c * K + j] = static_cast<float>(acc[j]);
    }
  });
  return Status::okStatus();
}

//===----------------------------------------------------------------------===//
// gated_delta_rule_grad
//===----------------------------------------------------------------------===//

Status gatedDeltaRuleGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(6, 5));
  FUSION_ASSIGN_OR_RETURN(int64_t chunkSize, context.intAttr("chunk_size"));
  const char *roles[] = {"input 0 (q)",    "input 1 (k)", "input 2 (v)",
                         "input 3 (g)",    "input 4 (beta)", "input 5 (do)"};
  const char *outRoles[] = {"output 0 (dq)", "output 1 (dk)", "output 2 (dv)", "output 3 (dg)",
                            "output 4 (dbeta)"};
  const size_t ranks[] = {4, 4, 4, 3, 3, 4};
  for (size_t i = 0; i < 6; ++i) {
    FUSION_RETURN_IF_ERROR(context.expectFloat(context.inputs[i], roles[i]));
    FUSION_RETURN_IF_ERROR(context.expectRank(context.inputs[i], roles[i], ranks[i]));
  }
  for (size_t i = 0; i < 5; ++i)
    FUSION_RETURN_IF_ERROR(context.expectFloat(context.outputs[i], outRoles[i]));
  if (chunkSize != 16 && chunkSize != 32 && chunkSize != 64 && chunkSize != 128)
    return invalid("attribute 'chunk_size' must be one of 16, 32, 64, 128, got " +
                   std::to_string(chunkSize));
  const Tensor &q = context.inputs[0], &k = context.inputs[1], &v = context.inputs[2];
  const Tensor &g = context.inputs[3], &beta = context.inputs[4], &dout = context.inputs[5];
  const std::vector<int64_t> &qs = q.info->shape, &vs = v.info->shape;
  const int64_t B = qs[0], T = qs[1], Hk = qs[2], dkDim = qs[3];
  const int64_t H = vs[2], dhDim = vs[3];
  FUSION_RETURN_IF_ERROR(context.expectShape(k, roles[1], qs));
  if (vs[0] != B || vs[1] != T)
    return tensorError(v, roles[2],
                       "must be [B, T, H, d_h] with q's B = " + std::to_string(B) +
                           " and T = " + std::to_string(T));
  if (Hk < 1 || H % Hk != 0)
    return tensorError(q, roles[0],
                       "has " + std::to_string(Hk) + " key heads, which must be >= 1 and " +
                           "divide the " + std::to_string(H) + " value heads");
  FUSION_RETURN_IF_ERROR(context.expectShape(g, roles[3], {B, T, H}));
  FUSION_RETURN_IF_ERROR(context.expectShape(beta, roles[4], {B, T, H}));
  FUSION_RETURN_IF_ERROR(context.expectShape(dout, roles[5], vs));
  FUSION_RETURN_IF_ERROR(context.expectShape(context.outputs[0], outRoles[0], qs));
  FUSION_RETURN_IF_ERROR(context.expectShape(context.outputs[1], outRoles[1], qs));
  FUSION_RETURN_IF_ERROR(context.expectShape(context.outputs[2], outRoles[2], vs));
  FUSION_RETURN_IF_ERROR(context.expectShape(context.outputs[3], outRoles[3], {B, T, H}));
  FUSION_RETURN_IF_ERROR(context.expectShape(context.outputs[4], outRoles[4], {B, T, H}));
  const Tensor &dq = context.outputs[0], &dk = context.outputs[1], &dv = context.outputs[2];
  const Tensor &dg = context.outputs[3], &dbeta = context.outputs[4];
  if (B == 0 || T == 0 || Hk == 0)
    return Status::okStatus();

  const uint64_t len = static_cast<uint64_t>(T), C = static_cast<uint64_t>(chunkSize);
  const uint64_t K = static_cast<uint64_t>(dkDim), D = static_cast<uint64_t>(dhDim);
  const uint64_t numHeads = static_cast<uint64_t>(H), numKeyHeads = static_cast<uint64_t>(Hk);
  const uint64_t headsPerKey = numHeads / numKeyHeads, SZ = D * K;
  const uint64_t numChunks = (len + C - 1) / C;

  context.parallelFor(static_cast<uint64_t>(B) * numKeyHeads, 1, [&](uint64_t begin,
                                                                      uint64_t end) {
    // Per item: the key head's q, k for all tokens; one value head's v, g, β, do; the
    // checkpoints (state before each chunk) and the states of the chunk being processed.
    std::vector<float> Q(len * K), Kt(len * K), V(len * D), dO(len * D), gs(len), betas(len);
    std::vector<double> dQ(len * K), dK(len * K), dV(len * D), dG(len), dBeta(len);
    std::vector<double> checkpoints(numChunks * SZ), states((C + 1) * SZ), dS(SZ);
    std::vector<double> Sk(D), u(D), Gk(D), du(D);
    // One token of the recurrence: next = α S + β (v − α S k) kᵀ (S [d_h × d_k], row-major).
    auto step = [&](const double *S, double *next, uint64_t t) {
      const double alpha = std::exp(static_cast<double>(gs[t])), bt = betas[t];
      const float *kt = &Kt[t * K];
      for (uint64_t i = 0; i < D; ++i) {
        double s = 0;
        for (uint64_t j = 0; j < K; ++j)
          s += S[i * K + j] * kt[j];
        double ui = V[t * D + i] - alpha * s;
        for (uint64_t j = 0; j < K; ++j)
          next[i * K + j] = alpha * S[i * K + j] + bt * ui * kt[j];
      }
    };
    for (uint64_t item = begin; item < end; ++item) {
      const uint64_t b = item / numKeyHeads, kh = item % numKeyHeads;
      for (uint64_t t = 0; t < len; ++t) {
        uint64_t token = b * len + t;
        loadRow(q, (token * numKeyHeads + kh) * K, K, &Q[t * K]);
        loadRow(k, (token * numKeyHeads + kh) * K, K, &Kt[t * K]);
      }
      std::fill(dQ.begin(), dQ.end(), 0.0);
      std::fill(dK.begin(), dK.end(), 0.0);
      for (uint64_t h = kh * headsPerKey; h < (kh + 1) * headsPerKey; ++h) {
        for (uint64_t t = 0; t < len; ++t) {
          uint64_t token = b * len + t;
          loadRow(v, (token * numHeads + h) * D, D, &V[t * D]);
          loadRow(dout, (token * numHeads + h) * D, D, &dO[t * D]);
          gs[t] = loadAsFloat(g.data, g.info->dtype, token * numHeads + h);
          betas[t] = loadAsFloat(beta.data, beta.info->dtype, token * numHeads + h);
        }
        // Forward: the state before each chunk.
        std::fill(states.begin(), states.begin() + SZ, 0.0);
        for (uint64_t c = 0; c < numChunks; ++c) {
          std::copy(states.begin(), states.begin() + SZ, checkpoints.begin() + c * SZ);
          for (uint64_t t = c * C; t < std::min(len, (c + 1) * C); ++t) {
            step(states.data(), states.data() + SZ, t);
            std::copy(states.begin() + SZ, states.begin() + 2 * SZ, states.begin());
          }
        }
        // Backward, chunk by chunk in reverse; dS = ∂L/∂S_t of the token being processed.
        std::fill(dS.begin(), dS.end(), 0.0);
        for (uint64_t c = numChunks; c-- > 0;) {
          const uint64_t t0 = c * C, n = std::min(len, t0 + C) - t0;
          std::copy(checkpoints.begin() + c * SZ, checkpoints.begin() + (c + 1) * SZ,
                    states.begin());
          for (uint64_t i = 0; i < n; ++i)
            step(&states[i * SZ], &states[(i + 1) * SZ], t0 + i);
          for (uint64_t i = n; i-- > 0;) {
            const uint64_t t = t0 + i;
            const double *prev = &states[i * SZ], *cur = &states[(i + 1) * SZ];
            const double alpha = std::exp(static_cast<double>(gs[t])), bt = betas[t];
            const float *qt = &Q[t * K], *kt = &Kt[t * K], *dot = &dO[t * D];
            // o_t = S_t q_t: dq += S_tᵀ do, and G = dS + do qᵀ (in dS).
            for (uint64_t i2 = 0; i2 < D; ++i2)
              for (uint64_t j = 0; j < K; ++j) {
                dQ[t * K + j] += cur[i2 * K + j] * dot[i2];
                dS[i2 * K + j] += static_cast<double>(dot[i2]) * qt[j];
              }
            // u = v − α S_{t−1} k; Gk = G k; ⟨S_{t−1}, G⟩.
            double prevDotG = 0;
            for (uint64_t i2 = 0; i2 < D; ++i2) {
              double s = 0, gk = 0;
              for (uint64_t j = 0; j < K; ++j) {
                s += prev[i2 * K + j] * kt[j];
                gk += dS[i2 * K + j] * kt[j];
                prevDotG += prev[i2 * K + j] * dS[i2 * K + j];
              }
              Sk[i2] = s;
              u[i2] = V[t * D + i2] - alpha * s;
              Gk[i2] = gk;
            }
            double dbt = 0, duDotSk = 0;
            for (uint64_t i2 = 0; i2 < D; ++i2) {
              dbt += u[i2] * Gk[i2];
              du[i2] = bt * Gk[i2];
              duDotSk += du[i2] * Sk[i2];
              dV[t * D + i2] = du[i2];
            }
            dBeta[t] = dbt;
            dG[t] = alpha * (prevDotG - duDotSk);
            // dk = β Gᵀu − α S_{t−1}ᵀ du.
            for (uint64_t j = 0; j < K; ++j) {
              double acc = 0;
              for (uint64_t i2 = 0; i2 < D; ++i2)
                acc += bt * dS[i2 * K + j] * u[i2] - alpha * prev[i2 * K + j] * du[i2];
              dK[t * K + j] += acc;
            }
            // dS_{t−1} = α (G − du kᵀ).
            for (uint64_t i2 = 0; i2 < D; ++i2)
              for (uint64_t j = 0; j < K; ++j)
                dS[i2 * K + j] = alpha * (dS[i2 * K + j] - du[i2] * kt[j]);
          }
        }
        for (uint64_t t = 0; t < len; ++t) {
          uint64_t token = b * len + t;
          storeDoubles(dv, (token * numHeads + h) * D, D, &dV[t * D]);
          storeFromFloat(dg.data, dg.info->dtype, token * numHeads + h, static_cast<float>(dG[t]));
          storeFromFloat(dbeta.data, dbeta.info->dtype, token * numHeads + h,
                         static_cast<float>(dBeta[t]));
        }
      }
      for (uint64_t t = 0; t < len; ++t) {
        uint64_t token = b * len + t;
        storeDoubles(dq, (token * numKeyHeads + kh) * K, K, &dQ[t * K]);
        storeDoubles(dk, (token * numKeyHeads + kh) * K, K, &dK[t * K]);
      }
    }
  });
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
