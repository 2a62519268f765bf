//===- gdn_kernel.cc - Gated delta rule, chunkwise-parallel WY form --------===//
//
// Per row b and value head h (key head h·H_k/H), with α_t = exp(g_t):
//   S_t = α_t S_{t−1} (I − β_t k_t k_tᵀ) + β_t v_t k_tᵀ,  S_{−1} = 0,  o_t = S_t q_t,
// computed as MODEL.md §4.2 prescribes, chunk by chunk (chunk_size tokens, the last chunk
// possibly shorter), carrying the transposed state Hs = Sᵀ [d_k × d_h] in fp32. Inside a
// chunk with local index i and γ_i = Σ_{j≤i} g_j, Γ_i = exp(γ_i), Λ_ij = exp(γ_i − γ_j) (j ≤ i):
//   A  = strict_lower(β_i Λ_ij k_i·k_j),  Tm = (I + A)⁻¹ by forward substitution,
//   Wm = Tm diag(βΓ) K,  Um = Tm diag(β) V,  Ũ = Um − Wm Hs,
//   O  = diag(Γ) Q Hs + lower_incl_diag((Q Kᵀ) ⊙ Λ) Ũ,
//   Hs ← Γ_n Hs + (diag(exp(γ_n − γ)) K)ᵀ Ũ.
// Overflow guard: Λ is only ever evaluated on and below the diagonal, where its exponent
// γ_i − γ_j = Σ_{j<l≤i} g_l is ≤ 0 (g ≤ 0); above the diagonal the exponent can exceed 88
// and exp would give inf (inf·0 = NaN under a mask). Γ_i and exp(γ_n − γ_i) have exponents
// ≤ 0 too. Everything is fp32 (cumsums, A, Tm, the state); (batch, head) pairs are the work
// items on the executor's pool, each processed sequentially over its chunks.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

#include <algorithm>
#include <cmath>

namespace fusion::rt::cpu {

Status gatedDeltaRuleKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(5, 1));
  FUSION_ASSIGN_OR_RETURN(int64_t chunkSize, context.intAttr("chunk_size"));
  const Tensor &q = context.inputs[0], &k = context.inputs[1], &v = context.inputs[2];
  const Tensor &g = context.inputs[3], &beta = context.inputs[4], &o = context.outputs[0];
  const char *roles[] = {"input 0 (q)", "input 1 (k)", "input 2 (v)", "input 3 (g)",
                         "input 4 (beta)"};
  const size_t ranks[] = {4, 4, 4, 3, 3};
  for (size_t i = 0; i < 5; ++i) {
    FUSION_RETURN_IF_ERROR(context.expectFloat(context.inputs[i], roles[i]));
    FUSION_RETURN_IF_ERROR(context.expectRank(context.inputs[i], roles[i], ranks[i]));
  }
  FUSION_RETURN_IF_ERROR(context.expectFloat(o, "output 0 (o)"));
  if (chunkSize != 16 && chunkSize != 32 && chunkSize != 64 && chunkSize != 128)
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'chunk_size' must be one of 16, 32, 64, 128, got " +
                      std::to_string(chunkSize));
  const std::vector<int64_t> &qs = q.info->shape, &vs = v.info->shape;
  const int64_t B = qs[0], T = qs[1], Hk = qs[2], dk = qs[3];
  const int64_t H = vs[2], dh = vs[3];
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
  FUSION_RETURN_IF_ERROR(context.expectShape(o, "output 0 (o)", vs));
  if (o.info->numElements == 0)
    return Status::okStatus();

  const uint64_t C = static_cast<uint64_t>(chunkSize), len = static_cast<uint64_t>(T);
  const uint64_t K = static_cast<uint64_t>(dk), D = static_cast<uint64_t>(dh);
  const uint64_t numHeads = static_cast<uint64_t>(H), numKeyHeads = static_cast<uint64_t>(Hk);

  context.parallelFor(static_cast<uint64_t>(B * H), 1, [&](uint64_t begin, uint64_t end) {
    // Per-chunk scratch, row-major: [C × d_k] Q, K, Wm; [C × d_h] V, Um/Ũ, O; [C × C] A/Tm,
    // Λ, QKᵀ; the state [d_k × d_h].
    std::vector<float> Q(C * K), Kc(C * K), Wm(C * K), V(C * D), U(C * D), O(C * D);
    std::vector<float> Tm(C * C), L(C * C), QK(C * C), A(C * C);
    std::vector<float> betas(C), gammas(C), Gammas(C), state(K * D);
    for (uint64_t item = begin; item < end; ++item) {
      const uint64_t b = item / numHeads, h = item % numHeads;
      const uint64_t kh = h * numKeyHeads / numHeads;
      std::fill(state.begin(), state.end(), 0.0f);
      for (uint64_t c0 = 0; c0 < len; c0 += C) {
        const uint64_t n = std::min(C, len - c0);
        // Load the chunk and the cumulative log-decays.
        float gamma = 0;
        for (uint64_t i = 0; i < n; ++i) {
          uint64_t token = b * len + c0 + i;
          loadRow(q, (token * numKeyHeads + kh) * K, K, &Q[i * K]);
          loadRow(k, (token * numKeyHeads + kh) * K, K, &Kc[i * K]);
          loadRow(v, (token * numHeads + h) * D, D, &V[i * D]);
          betas[i] = loadAsFloat(beta.data, beta.info->dtype, token * numHeads + h);
          gamma += loadAsFloat(g.data, g.info->dtype, token * numHeads + h);
          gammas[i] = gamma;
          Gammas[i] = std::exp(gamma);
        }
        // Λ, A and QKᵀ on and below the diagonal only (the overflow guard).
        for (uint64_t i = 0; i < n; ++i)
          for (uint64_t j = 0; j <= i; ++j) {
            float lambda = std::exp(gammas[i] - gammas[j]);
            L[i * C + j] = lambda;
            QK[i * C + j] = dotF32(&Q[i * K], &Kc[j * K], K);
            if (j < i)
              A[i * C + j] = betas[i] * lambda * dotF32(&Kc[i * K], &Kc[j * K], K);
          }
        // Tm = (I + A)⁻¹, unit lower triangular: row_i = e_i − Σ_{j<i} A_ij row_j.
        for (uint64_t i = 0; i < n; ++i) {
          float *row = &Tm[i * C];
          std::fill(row, row + i + 1, 0.0f);
          row[i] = 1;
          for (uint64_t j = 0; j < i; ++j)
            axpyF32(-A[i * C + j], &Tm[j * C], row, j + 1);
        }
        // Wm = Tm diag(βΓ) K, Um = Tm diag(β) V, then Ũ = Um − Wm Hs (in U).
        for (uint64_t i = 0; i < n; ++i) {
          float *w = &Wm[i * K], *u = &U[i * D];
          std::fill(w, w + K, 0.0f);
          std::fill(u, u + D, 0.0f);
          for (uint64_t j = 0; j <= i; ++j) {
            float t = Tm[i * C + j] * betas[j];
            axpyF32(t * Gammas[j], &Kc[j * K], w, K);
            axpyF32(t, &V[j * D], u, D);
          }
          for (uint64_t a = 0; a < K; ++a)
            axpyF32(-w[a], &state[a * D], u, D);
        }
        // O = diag(Γ) Q Hs + lower_incl_diag(QKᵀ ⊙ Λ) Ũ.
        for (uint64_t i = 0; i < n; ++i) {
          float *out = &O[i * D];
          std::fill(out, out + D, 0.0f);
          for (uint64_t a = 0; a < K; ++a)
            axpyF32(Q[i * K + a], &state[a * D], out, D);
          for (uint64_t e = 0; e < D; ++e)
            out[e] *= Gammas[i];
          for (uint64_t j = 0; j <= i; ++j)
            axpyF32(QK[i * C + j] * L[i * C + j], &U[j * D], out, D);
          storeRow(o, ((b * len + c0 + i) * numHeads + h) * D, D, out);
        }
        // Hs ← Γ_n Hs + Σ_i exp(γ_n − γ_i) k_i Ũ_iᵀ.
        const float gammaLast = gammas[n - 1], decayAll = Gammas[n - 1];
        for (float &value : state)
          value *= decayAll;
        for (uint64_t i = 0; i < n; ++i) {
          float decay = std::exp(gammaLast - gammas[i]);
          for (uint64_t a = 0; a < K; ++a)
            axpyF32(decay * Kc[i * K + a], &U[i * D], &state[a * D], D);
        }
      }
    }
  });
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
