//===- moe_kernels.cc - Router, dispatch, grouped GEMM, combine, balance loss ===//
//
// The DeepSeekMoE pipeline of MODEL.md §5 in five kinds:
//   moe_route       s = σ(ℓ), s^b = s + b; with n_groups > 1 each group scores the sum of its
//                   group_topk largest s^b and only the n_limited_groups best groups stay
//                   eligible; 𝒮 = the top_k largest eligible s^b; w = route_scale·s/Σ_𝒮 s.
//                   Ties go to the lower group / expert index everywhere. Selections are
//                   plain scans (no sort), so NaN inputs cannot break an ordering contract.
//   moe_dispatch    stable counting sort of the N·K (token, slot) pairs by expert.
//   grouped_matmul  rows of group e times W[e]ᵀ (W stored [E, out, in]); one parallelSgemm
//                   per group.
//   moe_combine     y[n] = Σ_k w[n, k]·ys[r(n, k)] with r the inverse of the permutation.
//   moe_balance_loss  mean over rows of L_bal = Σ_i f_i P_i (DeepSeek-V3 sequence-wise loss).
// Every index that comes from a buffer (expert ids, group sizes, the permutation) is checked
// before it is used to address memory, and an invalid one is an error naming its position.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

namespace fusion::rt::cpu {

namespace {

/// True when candidate (value a, index ia) ranks before (b, ib): larger value, then lower
/// index. A scan that replaces its best only when `ranksBefore` holds keeps the lower index on
/// ties when it visits indices in increasing order.
inline bool ranksBefore(float a, int64_t ia, float b, int64_t ib) {
  return a > b || (a == b && ia < ib);
}

/// Error for index buffer element `i` = `value` outside [0, bound).
Status indexError(const Tensor &tensor, const std::string &role, uint64_t i, int64_t value,
                  int64_t bound, const char *what) {
  return tensorError(tensor, role,
                     "element " + std::to_string(i) + " is " + std::to_string(value) +
                         ", outside [0, " + std::to_string(bound) + ") (" + what + ")");
}

/// Checks that every element of `indices` lies in [0, bound).
Status checkIndices(const Tensor &indices, const std::string &role, int64_t bound,
                    const char *what) {
  for (uint64_t i = 0; i < indices.info->numElements; ++i) {
    int64_t value = loadIndex(indices, i);
    if (value < 0 || value >= bound)
      return indexError(indices, role, i, value, bound, what);
  }
  return Status::okStatus();
}

} // namespace

Status moeRouteKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 3));
  FUSION_ASSIGN_OR_RETURN(int64_t topK, context.intAttr("top_k"));
  FUSION_ASSIGN_OR_RETURN(int64_t numGroups, context.intAttr("n_groups"));
  FUSION_ASSIGN_OR_RETURN(int64_t limitedGroups, context.intAttr("n_limited_groups"));
  FUSION_ASSIGN_OR_RETURN(int64_t groupTopK, context.intAttr("group_topk"));
  FUSION_ASSIGN_OR_RETURN(double routeScale, context.floatAttr("route_scale"));
  const Tensor &logits = context.inputs[0], &bias = context.inputs[1];
  const Tensor &weights = context.outputs[0], &indices = context.outputs[1],
               &scores = context.outputs[2];
  FUSION_RETURN_IF_ERROR(context.expectDType(logits, "input 0 (logits)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectDType(bias, "input 1 (bias)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectDType(weights, "output 0 (weights)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectDType(indices, "output 1 (indices)", schema::DType::I32));
  FUSION_RETURN_IF_ERROR(context.expectDType(scores, "output 2 (scores)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectRank(logits, "input 0 (logits)", 2));
  const int64_t N = logits.info->shape[0], E = logits.info->shape[1];
  FUSION_RETURN_IF_ERROR(context.expectShape(bias, "input 1 (bias)", {E}));
  auto attrError = [](const std::string &message) {
    return Status(StatusCode::kInvalidArgument, message);
  };
  if (numGroups < 1 || E % numGroups != 0)
    return attrError("attribute 'n_groups' = " + std::to_string(numGroups) +
                     " must be >= 1 and divide the " + std::to_string(E) + " experts");
  const int64_t groupSize = E / numGroups;
  if (groupTopK < 1 || groupTopK > groupSize)
    return attrError("attribute 'group_topk' = " + std::to_string(groupTopK) + " must be in [1, " +
                     std::to_string(groupSize) + "] (experts per group)");
  if (limitedGroups < 1 || limitedGroups > numGroups)
    return attrError("attribute 'n_limited_groups' = " + std::to_string(limitedGroups) +
                     " must be in [1, n_groups = " + std::to_string(numGroups) + "]");
  if (topK < 1 || topK > limitedGroups * groupSize)
    return attrError("attribute 'top_k' = " + std::to_string(topK) + " must be in [1, " +
                     std::to_string(limitedGroups * groupSize) +
                     "] (n_limited_groups × experts per group)");
  if (!(routeScale > 0))
    return attrError("attribute 'route_scale' must be positive, got " + std::to_string(routeScale));
  FUSION_RETURN_IF_ERROR(context.expectShape(weights, "output 0 (weights)", {N, topK}));
  FUSION_RETURN_IF_ERROR(context.expectShape(indices, "output 1 (indices)", {N, topK}));
  FUSION_RETURN_IF_ERROR(context.expectShape(scores, "output 2 (scores)", {N, E}));

  const float *logit = static_cast<const float *>(logits.data);
  const float *b = static_cast<const float *>(bias.data);
  float *weightOut = static_cast<float *>(weights.data);
  float *scoreOut = static_cast<float *>(scores.data);
  const uint64_t experts = static_cast<uint64_t>(E), K = static_cast<uint64_t>(topK);
  context.parallelFor(static_cast<uint64_t>(N), 64, [&](uint64_t begin, uint64_t end) {
    std::vector<float> s(experts), sb(experts), groupScore(numGroups);
    std::vector<char> eligible(experts), taken(experts), groupKept(numGroups);
    std::vector<int64_t> selected(K);
    for (uint64_t row = begin; row < end; ++row) {
      for (uint64_t i = 0; i < experts; ++i) {
        double l = logit[row * experts + i];
        s[i] = static_cast<float>(1.0 / (1.0 + std::exp(-l)));
        sb[i] = s[i] + b[i];
      }
      std::fill(eligible.begin(), eligible.end(), 1);
      if (numGroups > 1) {
        // ψ_m = the sum of the group_topk largest s^b of group m, in selection order.
        for (int64_t m = 0; m < numGroups; ++m) {
          std::fill(taken.begin(), taken.end(), 0);
          float psi = 0;
          for (int64_t pick = 0; pick < groupTopK; ++pick) {
            int64_t best = -1;
            for (int64_t i = m * groupSize; i < (m + 1) * groupSize; ++i)
              if (!taken[i] && (best < 0 || ranksBefore(sb[i], i, sb[best], best)))
                best = i;
            taken[best] = 1;
            psi += sb[best];
          }
          groupScore[m] = psi;
        }
        std::fill(groupKept.begin(), groupKept.end(), 0);
        for (int64_t pick = 0; pick < limitedGroups; ++pick) {
          int64_t best = -1;
          for (int64_t m = 0; m < numGroups; ++m)
            if (!groupKept[m] &&
                (best < 0 || ranksBefore(groupScore[m], m, groupScore[best], best)))
              best = m;
          groupKept[best] = 1;
        }
        for (uint64_t i = 0; i < experts; ++i)
          eligible[i] = groupKept[i / static_cast<uint64_t>(groupSize)];
      }
      // 𝒮: the top_k eligible experts by s^b, in selection order.
      std::fill(taken.begin(), taken.end(), 0);
      double total = 0;
      for (uint64_t pick = 0; pick < K; ++pick) {
        int64_t best = -1;
        for (int64_t i = 0; i < E; ++i)
          if (eligible[i] && !taken[i] && (best < 0 || ranksBefore(sb[i], i, sb[best], best)))
            best = i;
        taken[best] = 1;
        selected[pick] = best;
        total += s[best];
      }
      for (uint64_t pick = 0; pick < K; ++pick) {
        weightOut[row * K + pick] = static_cast<float>(routeScale * s[selected[pick]] / total);
        storeI32(indices, row * K + pick, static_cast<int32_t>(selected[pick]));
      }
      std::memcpy(scoreOut + row * experts, s.data(), experts * sizeof(float));
    }
  });
  return Status::okStatus();
}

Status moeDispatchKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 3));
  FUSION_ASSIGN_OR_RETURN(int64_t numExperts, context.intAttr("num_experts"));
  const Tensor &x = context.inputs[0], &indices = context.inputs[1];
  const Tensor &xs = context.outputs[0], &groupSizes = context.outputs[1],
               &perm = context.outputs[2];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0 (x)"));
  FUSION_RETURN_IF_ERROR(context.expectIndex(indices, "input 1 (indices)"));
  FUSION_RETURN_IF_ERROR(context.expectDType(xs, "output 0 (xs)", x.info->dtype));
  FUSION_RETURN_IF_ERROR(
      context.expectDType(groupSizes, "output 1 (group_sizes)", schema::DType::I32));
  FUSION_RETURN_IF_ERROR(context.expectDType(perm, "output 2 (perm)", schema::DType::I32));
  FUSION_RETURN_IF_ERROR(context.expectRank(x, "input 0 (x)", 2));
  FUSION_RETURN_IF_ERROR(context.expectRank(indices, "input 1 (indices)", 2));
  const int64_t N = x.info->shape[0], D = x.info->shape[1], K = indices.info->shape[1];
  if (indices.info->shape[0] != N)
    return tensorError(indices, "input 1 (indices)",
                       "must have x's " + std::to_string(N) + " rows");
  if (numExperts < 1)
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'num_experts' must be >= 1, got " + std::to_string(numExperts));
  const uint64_t pairs = indices.info->numElements;
  if (pairs > static_cast<uint64_t>(INT32_MAX))
    return tensorError(indices, "input 1 (indices)",
                       "has more (token, slot) pairs than an i32 permutation can index");
  FUSION_RETURN_IF_ERROR(
      context.expectShape(xs, "output 0 (xs)", {static_cast<int64_t>(pairs), D}));
  FUSION_RETURN_IF_ERROR(context.expectShape(groupSizes, "output 1 (group_sizes)", {numExperts}));
  FUSION_RETURN_IF_ERROR(
      context.expectShape(perm, "output 2 (perm)", {static_cast<int64_t>(pairs)}));
  FUSION_RETURN_IF_ERROR(checkIndices(indices, "input 1 (indices)", numExperts, "expert index"));

  // Counting sort: offsets from the counts, then pairs in order (stable).
  std::vector<uint64_t> counts(static_cast<uint64_t>(numExperts), 0);
  for (uint64_t p = 0; p < pairs; ++p)
    ++counts[static_cast<uint64_t>(loadIndex(indices, p))];
  std::vector<uint64_t> next(counts.size(), 0);
  for (size_t e = 1; e < counts.size(); ++e)
    next[e] = next[e - 1] + counts[e - 1];
  std::vector<uint64_t> sourcePair(pairs);
  for (uint64_t p = 0; p < pairs; ++p)
    sourcePair[next[static_cast<uint64_t>(loadIndex(indices, p))]++] = p;
  for (size_t e = 0; e < counts.size(); ++e)
    storeI32(groupSizes, e, static_cast<int32_t>(counts[e]));
  for (uint64_t r = 0; r < pairs; ++r)
    storeI32(perm, r, static_cast<int32_t>(sourcePair[r]));
  if (xs.info->numElements == 0)
    return Status::okStatus();
  const uint64_t rowBytes = static_cast<uint64_t>(D) * dtypeSize(x.info->dtype);
  const char *src = static_cast<const char *>(x.data);
  char *dst = static_cast<char *>(xs.data);
  context.parallelFor(pairs, 256, [&](uint64_t begin, uint64_t end) {
    for (uint64_t r = begin; r < end; ++r)
      std::memcpy(dst + r * rowBytes, src + (sourcePair[r] / static_cast<uint64_t>(K)) * rowBytes,
                  rowBytes);
  });
  return Status::okStatus();
}

Status groupedMatmulKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 1));
  const Tensor &x = context.inputs[0], &w = context.inputs[1], &sizes = context.inputs[2];
  const Tensor &y = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0 (x)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(w, "input 1 (w)"));
  FUSION_RETURN_IF_ERROR(context.expectIndex(sizes, "input 2 (group_sizes)"));
  FUSION_RETURN_IF_ERROR(context.expectDType(y, "output 0", x.info->dtype));
  FUSION_RETURN_IF_ERROR(context.expectRank(x, "input 0 (x)", 2));
  FUSION_RETURN_IF_ERROR(context.expectRank(w, "input 1 (w)", 3));
  const int64_t M = x.info->shape[0], dIn = x.info->shape[1];
  const int64_t E = w.info->shape[0], dOut = w.info->shape[1];
  if (w.info->shape[2] != dIn)
    return tensorError(w, "input 1 (w)",
                       "must be [E, D_out, D_in] with x's D_in = " + std::to_string(dIn));
  FUSION_RETURN_IF_ERROR(context.expectShape(sizes, "input 2 (group_sizes)", {E}));
  FUSION_RETURN_IF_ERROR(context.expectShape(y, "output 0", {M, dOut}));
  std::vector<uint64_t> offsets(static_cast<uint64_t>(E) + 1, 0);
  for (int64_t e = 0; e < E; ++e) {
    int64_t size = loadIndex(sizes, static_cast<uint64_t>(e));
    if (size < 0 || size > M - static_cast<int64_t>(offsets[e]))
      return tensorError(sizes, "input 2 (group_sizes)",
                         "element " + std::to_string(e) + " is " + std::to_string(size) +
                             ": group sizes must be >= 0 and sum to at most x's " +
                             std::to_string(M) + " rows");
    offsets[e + 1] = offsets[e] + static_cast<uint64_t>(size);
  }
  if (y.info->numElements == 0)
    return Status::okStatus();
  const uint64_t in = static_cast<uint64_t>(dIn), out = static_cast<uint64_t>(dOut);
  for (uint64_t v : {static_cast<uint64_t>(M), in, out})
    if (v > static_cast<uint64_t>(INT_MAX))
      return Status(StatusCode::kUnimplemented, "grouped_matmul dimension " + std::to_string(v) +
                                                    " exceeds the cpu backend's 32-bit BLAS limit");
  // One product per non-empty group: y_e = x_e·W[e]ᵀ (parallelSgemm, fp32 accumulation). Rows
  // past the last group (none with dropless dispatch) are zero.
  F32View xs(x), weights(w);
  const float *xData = xs.data(), *wData = weights.data();
  std::vector<float> result(y.info->numElements, 0.0f);
  for (uint64_t e = 0; e < static_cast<uint64_t>(E); ++e) {
    const uint64_t first = offsets[e], count = offsets[e + 1] - offsets[e];
    if (count == 0 || in == 0)
      continue;
    parallelSgemm(context.pool, false, true, static_cast<int64_t>(count),
                  static_cast<int64_t>(out), static_cast<int64_t>(in), 1.0f, xData + first * in,
                  static_cast<int64_t>(in), wData + e * out * in, static_cast<int64_t>(in), 0.0f,
                  result.data() + first * out, static_cast<int64_t>(out));
  }
  storeRow(y, 0, result.size(), result.data());
  return Status::okStatus();
}

Status moeCombineKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 1));
  const Tensor &ys = context.inputs[0], &weights = context.inputs[1], &perm = context.inputs[2];
  const Tensor &y = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(ys, "input 0 (ys)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(weights, "input 1 (weights)"));
  FUSION_RETURN_IF_ERROR(context.expectIndex(perm, "input 2 (perm)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(y, "output 0"));
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
  FUSION_RETURN_IF_ERROR(context.expectShape(y, "output 0", {N, D}));
  // rowOf[p] = the row of ys holding pair p; perm must be a permutation of [0, N·K).
  const uint64_t kUnset = UINT64_MAX;
  std::vector<uint64_t> rowOf(pairs, kUnset);
  for (uint64_t r = 0; r < pairs; ++r) {
    int64_t p = loadIndex(perm, r);
    if (p < 0 || static_cast<uint64_t>(p) >= pairs)
      return indexError(perm, "input 2 (perm)", r, p, static_cast<int64_t>(pairs), "pair index");
    if (rowOf[p] != kUnset)
      return tensorError(perm, "input 2 (perm)",
                         "is not a permutation: pair " + std::to_string(p) + " appears at rows " +
                             std::to_string(rowOf[p]) + " and " + std::to_string(r));
    rowOf[p] = r;
  }
  if (y.info->numElements == 0)
    return Status::okStatus();
  const uint64_t width = static_cast<uint64_t>(D), slots = static_cast<uint64_t>(K);
  context.parallelFor(static_cast<uint64_t>(N), 16, [&](uint64_t begin, uint64_t end) {
    std::vector<float> acc(width), row(width);
    for (uint64_t n = begin; n < end; ++n) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (uint64_t k = 0; k < slots; ++k) {
        float weight = loadAsFloat(weights.data, weights.info->dtype, n * slots + k);
        loadRow(ys, rowOf[n * slots + k] * width, width, row.data());
        axpyF32(weight, row.data(), acc.data(), width);
      }
      storeRow(y, n * width, width, acc.data());
    }
  });
  return Status::okStatus();
}

Status moeBalanceLossKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  FUSION_ASSIGN_OR_RETURN(int64_t seqLen, context.intAttr("seq_len"));
  const Tensor &scores = context.inputs[0], &indices = context.inputs[1];
  const Tensor &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(scores, "input 0 (scores)"));
  FUSION_RETURN_IF_ERROR(context.expectIndex(indices, "input 1 (indices)"));
  FUSION_RETURN_IF_ERROR(context.expectDType(out, "output 0", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectRank(scores, "input 0 (scores)", 2));
  FUSION_RETURN_IF_ERROR(context.expectRank(indices, "input 1 (indices)", 2));
  const int64_t N = scores.info->shape[0], E = scores.info->shape[1];
  const int64_t K = indices.info->shape[1];
  if (indices.info->shape[0] != N)
    return tensorError(indices, "input 1 (indices)",
                       "must have the " + std::to_string(N) + " rows of scores");
  FUSION_RETURN_IF_ERROR(context.expectNumElements(out, "output 0", 1));
  if (seqLen < 1 || N % seqLen != 0)
    return Status(StatusCode::kInvalidArgument, "attribute 'seq_len' = " + std::to_string(seqLen) +
                                                    " must be >= 1 and divide the " +
                                                    std::to_string(N) + " tokens");
  if (N == 0 || E == 0 || K == 0)
    return Status(StatusCode::kInvalidArgument,
                  "needs at least one token, expert and selection (scores " +
                      formatShape(scores.info->shape) + ", indices " +
                      formatShape(indices.info->shape) + ")");
  FUSION_RETURN_IF_ERROR(checkIndices(indices, "input 1 (indices)", E, "expert index"));
  const uint64_t T = static_cast<uint64_t>(seqLen), experts = static_cast<uint64_t>(E);
  const uint64_t slots = static_cast<uint64_t>(K), rows = static_cast<uint64_t>(N) / T;
  std::vector<double> rowLoss(rows);
  context.parallelFor(rows, 1, [&](uint64_t begin, uint64_t end) {
    std::vector<double> f(experts), P(experts);
    std::vector<uint64_t> lastSeen(experts);
    for (uint64_t row = begin; row < end; ++row) {
      std::fill(f.begin(), f.end(), 0.0);
      std::fill(P.begin(), P.end(), 0.0);
      std::fill(lastSeen.begin(), lastSeen.end(), UINT64_MAX);
      for (uint64_t t = row * T; t < (row + 1) * T; ++t) {
        for (uint64_t k = 0; k < slots; ++k) { // 1[i ∈ 𝒮_t], each expert once per token
          uint64_t e = static_cast<uint64_t>(loadIndex(indices, t * slots + k));
          if (lastSeen[e] != t) {
            lastSeen[e] = t;
            f[e] += 1;
          }
        }
        double total = 0;
        for (uint64_t i = 0; i < experts; ++i)
          total += loadAsFloat(scores.data, scores.info->dtype, t * experts + i);
        for (uint64_t i = 0; i < experts; ++i)
          P[i] += loadAsFloat(scores.data, scores.info->dtype, t * experts + i) / total;
      }
      double loss = 0;
      const double fScale = static_cast<double>(E) / (static_cast<double>(K) * T);
      for (uint64_t i = 0; i < experts; ++i)
        loss += (fScale * f[i]) * (P[i] / static_cast<double>(T));
      rowLoss[row] = loss;
    }
  });
  double sum = 0;
  for (double loss : rowLoss)
    sum += loss;
  float mean = static_cast<float>(sum / static_cast<double>(rows));
  std::memcpy(out.data, &mean, sizeof(float));
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
