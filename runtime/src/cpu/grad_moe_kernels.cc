//===- grad_moe_kernels.cc - Backward of the MoE kinds ---------------------===//
//
// Reverse-mode reference kernels of the DeepSeekMoE pipeline (MODEL.md §5, §9), in double
// with one rounding on the store; reductions in a fixed order, so results do not depend on
// the thread count. r(n, k) is the row of the dispatched tensor holding pair p = n·K + k,
// i.e. perm[r(n, k)] = n·K + k (moe_dispatch writes perm[r] = the pair sorted to row r).
//   moe_route_grad   Z = Σ_𝒮 s_j, w_k = ρ s_{i_k}/Z: ds_{i_k} += (ρ/Z)(dw_k − Σ_j (w_j/ρ) dw_j)
//                    (exact also for repeated experts), dlogits = ds·s(1 − s).
//   moe_dispatch_grad  dx[n] = Σ_k dxs[r(n, k)], slots in order.
//   moe_combine_grad   dys[r(n, k)] = w[n, k]·dy[n]; dweights[n, k] = ⟨dy[n], ys[r(n, k)]⟩.
//   grouped_matmul_grad  per group e of consecutive rows: dxs_e = dout_e·W[e], dW[e] =
//                    dout_eᵀ·xs_e (0 for empty groups); rows past the last group get dxs 0.
//                    Two parallelSgemms per group (fp32 accumulation, cpu_gemm.cc).
//   moe_balance_loss_grad  per row of seq_len tokens with f_i = E/(K·T)·#{t: i ∈ 𝒮_t}:
//                    ds_{t,i} = (dloss/rows)·(1/T)(f_i − Σ_j f_j s′_{t,j})/Σ_j s_{t,j}.
// Every index from a buffer (experts, group sizes, the permutation) is checked before use.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

#include <algorithm>
#include <climits>
#include <cmath>

namespace fusion::rt::cpu {

namespace {

Status invalid(const std::string &message) {
  return Status(StatusCode::kInvalidArgument, message);
}

/// Checks that every element of `indices` lies in [0, bound).
Status checkIndices(const Tensor &indices, const std::string &role, int64_t bound,
                    const char *what) {
  for (uint64_t i = 0; i < indices.info->numElements; ++i) {
    int64_t value = loadIndex(indices, i);
    if (value < 0 || value >= bound)
      return tensorError(indices, role,
                         "element " + std::to_string(i) + " is " + std::to_string(value) +
                             ", outside [0, " + std::to_string(bound) + ") (" + what + ")");
  }
  return Status::okStatus();
}

/// rowOf[p] = the row r with perm[r] = p, checking that perm is a permutation of [0, pairs).
StatusOr<std::vector<uint64_t>> invertPermutation(const Tensor &perm, const std::string &role,
                                                  uint64_t pairs) {
  const uint64_t kUnset = UINT64_MAX;
  std::vector<uint64_t> rowOf(pairs, kUnset);
  for (uint64_t r = 0; r < pairs; ++r) {
    int64_t p = loadIndex(perm, r);
    if (p < 0 || static_cast<uint64_t>(p) >= pairs)
      return tensorError(perm, role,
                         "element " + std::to_string(r) + " is " + std::to_string(p) +
                             ", outside [0, " + std::to_string(pairs) + ") (pair index)");
    if (rowOf[p] != kUnset)
      return tensorError(perm, role,
                         "is not a permutation: pair " + std::to_string(p) + " appears at rows " +
                             std::to_string(rowOf[p]) + " and " + std::to_string(r));
    rowOf[p] = r;
  }
  return rowOf;
}

} // namespace

Status moeRouteGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 1));
  FUSION_ASSIGN_OR_RETURN(double routeScale, context.floatAttr("route_scale"));
  const Tensor &scores = context.inputs[0], &indices = context.inputs[1];
  const Tensor &dweights = context.inputs[2], &dlogits = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(scores, "input 0 (scores)"));
  FUSION_RETURN_IF_ERROR(context.expectIndex(indices, "input 1 (indices)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dweights, "input 2 (dweights)"));
  FUSION_RETURN_IF_ERROR(context.expectDType(dlogits, "output 0 (dlogits)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectRank(scores, "input 0 (scores)", 2));
  FUSION_RETURN_IF_ERROR(context.expectRank(indices, "input 1 (indices)", 2));
  const int64_t N = scores.info->shape[0], E = scores.info->shape[1];
  const int64_t K = indices.info->shape[1];
  if (indices.info->shape[0] != N)
    return tensorError(indices, "input 1 (indices)",
                       "must have the " + std::to_string(N) + " rows of scores");
  FUSION_RETURN_IF_ERROR(context.expectShape(dweights, "input 2 (dweights)", {N, K}));
  FUSION_RETURN_IF_ERROR(context.expectShape(dlogits, "output 0 (dlogits)", {N, E}));
  if (!(routeScale > 0))
    return invalid("attribute 'route_scale' must be positive, got " + std::to_string(routeScale));
  FUSION_RETURN_IF_ERROR(checkIndices(indices, "input 1 (indices)", E, "expert index"));
  const uint64_t experts = static_cast<uint64_t>(E), slots = static_cast<uint64_t>(K);
  float *out = static_cast<float *>(dlogits.data);
  context.parallelFor(static_cast<uint64_t>(N), 64, [&](uint64_t begin, uint64_t end) {
    std::vector<double> s(experts), ds(experts), dw(slots);
    std::vector<uint64_t> chosen(slots);
    for (uint64_t row = begin; row < end; ++row) {
      for (uint64_t i = 0; i < experts; ++i)
        s[i] = loadAsFloat(scores.data, scores.info->dtype, row * experts + i);
      double total = 0;
      for (uint64_t k = 0; k < slots; ++k) {
        chosen[k] = static_cast<uint64_t>(loadIndex(indices, row * slots + k));
        dw[k] = loadAsFloat(dweights.data, dweights.info->dtype, row * slots + k);
        total += s[chosen[k]];
      }
      double mean = 0; // Σ_j (w_j/ρ)·dw_j
      for (uint64_t k = 0; k < slots; ++k)
        mean += s[chosen[k]] / total * dw[k];
      std::fill(ds.begin(), ds.end(), 0.0);
      for (uint64_t k = 0; k < slots; ++k)
        ds[chosen[k]] += routeScale / total * (dw[k] - mean);
      for (uint64_t i = 0; i < experts; ++i)
        out[row * experts + i] = static_cast<float>(ds[i] * s[i] * (1 - s[i]));
    }
  });
  return Status::okStatus();
}

Status moeDispatchGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  const Tensor &dxs = context.inputs[0], &perm = context.inputs[1], &dx = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(dxs, "input 0 (dxs)"));
  FUSION_RETURN_IF_ERROR(context.expectIndex(perm, "input 1 (perm)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dx, "output 0 (dx)"));
  FUSION_RETURN_IF_ERROR(context.expectRank(dxs, "input 0 (dxs)", 2));
  FUSION_RETURN_IF_ERROR(context.expectRank(dx, "output 0 (dx)", 2));
  const int64_t pairs = dxs.info->shape[0], D = dxs.info->shape[1], N = dx.info->shape[0];
  FUSION_RETURN_IF_ERROR(context.expectShape(perm, "input 1 (perm)", {pairs}));
  if (dx.info->shape[1] != D)
    return tensorError(dx, "output 0 (dx)", "must be [N, D] with dxs's D = " + std::to_string(D));
  if ((N == 0 && pairs != 0) || (N > 0 && pairs % N != 0))
    return tensorError(dxs, "input 0 (dxs)",
                       "must have N·K rows for output 0's N = " + std::to_string(N));
  FUSION_ASSIGN_OR_RETURN(std::vector<uint64_t> rowOf,
                          invertPermutation(perm, "input 1 (perm)", static_cast<uint64_t>(pairs)));
  if (dx.info->numElements == 0)
    return Status::okStatus();
  const uint64_t slots = static_cast<uint64_t>(pairs / N), width = static_cast<uint64_t>(D);
  context.parallelFor(static_cast<uint64_t>(N), 16, [&](uint64_t begin, uint64_t end) {
    std::vector<double> acc(width);
    std::vector<float> row(width);
    for (uint64_t n = begin; n < end; ++n) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (uint64_t k = 0; k < slots; ++k) {
        loadRow(dxs, rowOf[n * slots + k] * width, width, row.data());
        for (uint64_t e = 0; e < width; ++e)
          acc[e] += row[e];
      }
      for (uint64_t e = 0; e < width; ++e)
        row[e] = static_cast<float>(acc[e]);
      storeRow(dx, n * width, width, row.data());
    }
  });
  return Status::okStatus();
}

Status moeCombineGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(4, 2));
  const Tensor &ys = context.inputs[0], &weights = context.inputs[1], &perm = context.inputs[2];
  const Tensor &dy = context.inputs[3], &dys = context.outputs[0], &dweights = context.outputs[1];
  FUSION_RETURN_IF_ERROR(context.expectFloat(ys, "input 0 (ys)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(weights, "input 1 (weights)"));
  FUSION_RETURN_IF_ERROR(context.expectIndex(perm, "input 2 (perm)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dy, "input 3 (dy)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dys, "output 0 (dys)"));
  FUSION_RETURN_IF_ERROR(
      context.expectDType(dweights, "output 1 (dweights)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectRank(ys, "input 0 (ys)", 2));
  FUSION_RETURN_IF_ERROR(context.expectRank(weights, "input 1 (weights)", 2));
  const int64_t N = weights.info->shape[0], K = weights.info->shape[1];
  const int64_t D = ys.info->shape[1];
  const uint64_t pairs = weights.info->numElements;
  if (static_cast<uint64_t>(ys.info->shape[0]) != pairs)
    return tensorError(ys, "input 0 (ys)",
                       "must have N·K = " + std::to_string(pairs) + " rows (weights are " +
                           formatShape(weights.info->shape) + ")");
  FUSION_RETURN_IF_ERROR(
      context.expectShape(perm, "input 2 (perm)", {static_cast<int64_t>(pairs)}));
  FUSION_RETURN_IF_ERROR(context.expectShape(dy, "input 3 (dy)", {N, D}));
  FUSION_RETURN_IF_ERROR(context.expectShape(dys, "output 0 (dys)", ys.info->shape));
  FUSION_RETURN_IF_ERROR(context.expectShape(dweights, "output 1 (dweights)", {N, K}));
  FUSION_ASSIGN_OR_RETURN(std::vector<uint64_t> rowOf,
                          invertPermutation(perm, "input 2 (perm)", pairs));
  const uint64_t width = static_cast<uint64_t>(D), slots = static_cast<uint64_t>(K);
  float *dwOut = static_cast<float *>(dweights.data);
  // Each token writes the rows of its own pairs: distinct rows, no races.
  context.parallelFor(static_cast<uint64_t>(N), 16, [&](uint64_t begin, uint64_t end) {
    std::vector<float> grad(width), row(width), out(width);
    for (uint64_t n = begin; n < end; ++n) {
      loadRow(dy, n * width, width, grad.data());
      for (uint64_t k = 0; k < slots; ++k) {
        const uint64_t r = rowOf[n * slots + k];
        double weight = loadAsFloat(weights.data, weights.info->dtype, n * slots + k);
        loadRow(ys, r * width, width, row.data());
        double dot = 0;
        for (uint64_t e = 0; e < width; ++e) {
          dot += static_cast<double>(grad[e]) * row[e];
          out[e] = static_cast<float>(weight * grad[e]);
        }
        dwOut[n * slots + k] = static_cast<float>(dot);
        storeRow(dys, r * width, width, out.data());
      }
    }
  });
  return Status::okStatus();
}

Status groupedMatmulGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(4, 2));
  const Tensor &x = context.inputs[0], &w = context.inputs[1], &sizes = context.inputs[2];
  const Tensor &dout = context.inputs[3], &dx = context.outputs[0], &dw = context.outputs[1];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0 (xs)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(w, "input 1 (w)"));
  FUSION_RETURN_IF_ERROR(context.expectIndex(sizes, "input 2 (group_sizes)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dout, "input 3 (dout)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dx, "output 0 (dxs)"));
  FUSION_RETURN_IF_ERROR(context.expectDType(dw, "output 1 (dw)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectRank(x, "input 0 (xs)", 2));
  FUSION_RETURN_IF_ERROR(context.expectRank(w, "input 1 (w)", 3));
  const int64_t M = x.info->shape[0], dIn = x.info->shape[1];
  const int64_t E = w.info->shape[0], dOut = w.info->shape[1];
  if (w.info->shape[2] != dIn)
    return tensorError(w, "input 1 (w)",
                       "must be [E, D_out, D_in] with xs's D_in = " + std::to_string(dIn));
  FUSION_RETURN_IF_ERROR(context.expectShape(sizes, "input 2 (group_sizes)", {E}));
  FUSION_RETURN_IF_ERROR(context.expectShape(dout, "input 3 (dout)", {M, dOut}));
  FUSION_RETURN_IF_ERROR(context.expectShape(dx, "output 0 (dxs)", x.info->shape));
  FUSION_RETURN_IF_ERROR(context.expectShape(dw, "output 1 (dw)", w.info->shape));
  std::vector<uint64_t> offsets(static_cast<uint64_t>(E) + 1, 0);
  for (int64_t e = 0; e < E; ++e) {
    int64_t size = loadIndex(sizes, static_cast<uint64_t>(e));
    if (size < 0 || size > M - static_cast<int64_t>(offsets[e]))
      return tensorError(sizes, "input 2 (group_sizes)",
                         "element " + std::to_string(e) + " is " + std::to_string(size) +
                             ": group sizes must be >= 0 and sum to at most xs's " +
                             std::to_string(M) + " rows");
    offsets[e + 1] = offsets[e] + static_cast<uint64_t>(size);
  }
  const uint64_t in = static_cast<uint64_t>(dIn), out = static_cast<uint64_t>(dOut);
  const uint64_t experts = static_cast<uint64_t>(E);
  for (uint64_t v : {static_cast<uint64_t>(M), in, out})
    if (v > static_cast<uint64_t>(INT_MAX))
      return Status(StatusCode::kUnimplemented,
                    "grouped_matmul_grad dimension " + std::to_string(v) +
                        " exceeds the cpu backend's 32-bit BLAS limit");
  F32View xs(x), ws(w), gs(dout);
  const float *xData = xs.data(), *wData = ws.data(), *gData = gs.data();
  // Per group e (two parallelSgemms, fp32 accumulation): dxs_e = dout_e·W[e], dW[e] =
  // dout_eᵀ·xs_e.
  // Rows past the last group get dxs = 0; an empty group gets dW[e] = 0.
  std::vector<float> dxRows(dx.info->numElements, 0.0f);
  float *dwOut = static_cast<float *>(dw.data);
  std::fill(dwOut, dwOut + experts * out * in, 0.0f);
  for (uint64_t e = 0; e < experts; ++e) {
    const uint64_t first = offsets[e], count = offsets[e + 1] - offsets[e];
    if (count == 0 || in == 0 || out == 0)
      continue;
    const float *g = gData + first * out;
    const int64_t n = static_cast<int64_t>(count), i = static_cast<int64_t>(in),
                  o = static_cast<int64_t>(out);
    parallelSgemm(context.pool, false, false, n, i, o, 1.0f, g, o, wData + e * out * in, i, 0.0f,
                  dxRows.data() + first * in, i);
    parallelSgemm(context.pool, true, false, o, i, n, 1.0f, g, o, xData + first * in, i, 0.0f,
                  dwOut + e * out * in, i);
  }
  storeRow(dx, 0, dxRows.size(), dxRows.data());
  return Status::okStatus();
}

Status moeBalanceLossGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 1));
  FUSION_ASSIGN_OR_RETURN(int64_t seqLen, context.intAttr("seq_len"));
  const Tensor &scores = context.inputs[0], &indices = context.inputs[1];
  const Tensor &dloss = context.inputs[2], &dscores = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(scores, "input 0 (scores)"));
  FUSION_RETURN_IF_ERROR(context.expectIndex(indices, "input 1 (indices)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dloss, "input 2 (dloss)"));
  FUSION_RETURN_IF_ERROR(context.expectDType(dscores, "output 0 (dscores)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectRank(scores, "input 0 (scores)", 2));
  FUSION_RETURN_IF_ERROR(context.expectRank(indices, "input 1 (indices)", 2));
  FUSION_RETURN_IF_ERROR(context.expectNumElements(dloss, "input 2 (dloss)", 1));
  const int64_t N = scores.info->shape[0], E = scores.info->shape[1];
  const int64_t K = indices.info->shape[1];
  if (indices.info->shape[0] != N)
    return tensorError(indices, "input 1 (indices)",
                       "must have the " + std::to_string(N) + " rows of scores");
  FUSION_RETURN_IF_ERROR(context.expectShape(dscores, "output 0 (dscores)", {N, E}));
  if (seqLen < 1 || N % seqLen != 0)
    return invalid("attribute 'seq_len' = " + std::to_string(seqLen) +
                   " must be >= 1 and divide the " + std::to_string(N) + " tokens");
  if (N == 0 || E == 0 || K == 0)
    return invalid("needs at least one token, expert and selection (scores " +
                   formatShape(scores.info->shape) + ", indices " +
                   formatShape(indices.info->shape) + ")");
  FUSION_RETURN_IF_ERROR(checkIndices(indices, "input 1 (indices)", E, "expert index"));
  const uint64_t T = static_cast<uint64_t>(seqLen), experts = static_cast<uint64_t>(E);
  const uint64_t slots = static_cast<uint64_t>(K), rows = static_cast<uint64_t>(N) / T;
  const double upstream = static_cast<double>(loadAsFloat(dloss.data, dloss.info->dtype, 0)) /
                          static_cast<double>(rows);
  const double fScale = static_cast<double>(E) / (static_cast<double>(K) * static_cast<double>(T));
  float *out = static_cast<float *>(dscores.data);
  context.parallelFor(rows, 1, [&](uint64_t begin, uint64_t end) {
    std::vector<double> f(experts), s(experts);
    std::vector<uint64_t> lastSeen(experts);
    for (uint64_t row = begin; row < end; ++row) {
      std::fill(f.begin(), f.end(), 0.0);
      std::fill(lastSeen.begin(), lastSeen.end(), UINT64_MAX);
      for (uint64_t t = row * T; t < (row + 1) * T; ++t)
        for (uint64_t k = 0; k < slots; ++k) { // 1[i ∈ 𝒮_t], each expert once per token
          uint64_t e = static_cast<uint64_t>(loadIndex(indices, t * slots + k));
          if (lastSeen[e] != t) {
            lastSeen[e] = t;
            f[e] += fScale;
          }
        }
      for (uint64_t t = row * T; t < (row + 1) * T; ++t) {
        double total = 0, weighted = 0;
        for (uint64_t i = 0; i < experts; ++i) {
          s[i] = loadAsFloat(scores.data, scores.info->dtype, t * experts + i);
          total += s[i];
          weighted += f[i] * s[i];
        }
        const double mean = weighted / total; // Σ_j f_j s′_{t,j}
        for (uint64_t i = 0; i < experts; ++i)
          out[t * experts + i] =
              static_cast<float>(upstream * (f[i] - mean) / (static_cast<double>(T) * total));
      }
    }
  });
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
