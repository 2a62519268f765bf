//===- moe_loss_test.cc - MoE routing/dispatch/combine and loss kernels ---===//
//
// moe_route against brute-force enumeration: every subset of groups and of experts is
// tried, and the selection must be the unique subset whose members all rank before every
// eligible non-member (larger value, ties to the lower index) — on random logits and on
// logits drawn from a four-value set, which makes ties the common case. moe_dispatch →
// grouped_matmul → moe_combine as one plan against a dense per-token loop; the balance loss
// and softcap → cross_entropy against fp64, with ignored targets; and the index errors.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/kernel_test_util.h"

#include "runtime/src/numeric.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

//===----------------------------------------------------------------------===//
// moe_route
//===----------------------------------------------------------------------===//

struct RouteCase {
  const char *name;
  int64_t N, E, G, Mg, qg, K;
  double rho;
  bool ties;
};

/// a ranks before b: larger value, ties to the lower index.
bool ranksBefore(float va, int64_t a, float vb, int64_t b) {
  return va > vb || (va == vb && a < b);
}

/// The unique size-`size` subset (bitmask over `values`) of `candidates` whose members all
/// rank before every candidate outside it, found by trying every subset.
uint32_t bruteForceTop(const std::vector<float> &values, uint32_t candidates, int size) {
  uint32_t found = 0;
  int count = 0;
  for (uint32_t mask = 0; mask < (1u << values.size()); ++mask) {
    if ((mask & ~candidates) || __builtin_popcount(mask) != size)
      continue;
    bool valid = true;
    for (size_t i = 0; i < values.size() && valid; ++i)
      for (size_t j = 0; j < values.size() && valid; ++j)
        if ((mask >> i & 1) && (candidates >> j & 1) && !(mask >> j & 1))
          valid = ranksBefore(values[i], i, values[j], j);
    if (valid) {
      found = mask;
      ++count;
    }
  }
  EXPECT_EQ(count, 1) << "brute force must find exactly one valid subset";
  return found;
}

/// True when a member of `chosen` and a candidate outside it have equal values: a selection
/// that only the lower-index rule decides.
bool tieAtBoundary(const std::vector<float> &values, uint32_t candidates, uint32_t chosen) {
  for (size_t i = 0; i < values.size(); ++i)
    for (size_t j = 0; j < values.size(); ++j)
      if ((chosen >> i & 1) && (candidates >> j & 1) && !(chosen >> j & 1) &&
          values[i] == values[j])
        return true;
  return false;
}

class MoeRouteTest : public ::testing::TestWithParam<RouteCase> {};

TEST_P(MoeRouteTest, MatchesBruteForceEnumeration) {
  const RouteCase &c = GetParam();
  std::vector<float> logits = uniformValues(c.N * c.E, 200, -3, 3);
  std::vector<float> bias = uniformValues(c.E, 201, -0.1f, 0.1f);
  if (c.ties) {
    const float levels[4] = {-1.0f, -0.25f, 0.5f, 1.5f};
    for (float &l : logits)
      l = levels[std::min(3, static_cast<int>((l + 3) / 1.5f))];
    for (float &b : bias)
      b = b > 0 ? 0.125f : 0.0f;
  }
  KernelCase kernel(
      "moe_route", {AttrDesc::integer("top_k", c.K), AttrDesc::integer("n_groups", c.G),
                    AttrDesc::integer("n_limited_groups", c.Mg),
                    AttrDesc::integer("group_topk", c.qg), AttrDesc::number("route_scale", c.rho)});
  kernel.input("logits", DType::F32, {c.N, c.E}, logits);
  kernel.input("bias", DType::F32, {c.E}, bias);
  kernel.output("weights", DType::F32, {c.N, c.K});
  kernel.output("indices", DType::I32, {c.N, c.K});
  kernel.output("scores", DType::F32, {c.N, c.E});
  Status status = kernel.run();
  ASSERT_TRUE(status.ok()) << status.toString();
  std::vector<float> weights = kernel.outputFloats(0), scores = kernel.outputFloats(2);
  std::vector<int64_t> indices = kernel.outputInts(1);
  const int64_t perGroup = c.E / c.G;
  int groupTies = 0, expertTies = 0; // rows decided by the tie rules
  for (int64_t n = 0; n < c.N; ++n) {
    std::vector<float> s(c.E), sb(c.E);
    for (int64_t i = 0; i < c.E; ++i) {
      double exact = 1 / (1 + std::exp(-static_cast<double>(logits[n * c.E + i])));
      EXPECT_NEAR(scores[n * c.E + i], exact, 1e-7 * exact) << "row " << n << " expert " << i;
      s[i] = static_cast<float>(exact);
      sb[i] = s[i] + bias[i]; // s^b is formed in fp32
    }
    uint32_t eligible = (1u << c.E) - 1;
    if (c.G > 1) {
      // ψ_m: the largest fp32 sum (in descending order) over the group's q_g-subsets.
      std::vector<float> psi(c.G, -INFINITY);
      for (int64_t m = 0; m < c.G; ++m)
        for (uint32_t mask = 0; mask < (1u << perGroup); ++mask) {
          if (__builtin_popcount(mask) != c.qg)
            continue;
          std::vector<float> members;
          for (int64_t j = 0; j < perGroup; ++j)
            if (mask >> j & 1)
              members.push_back(sb[m * perGroup + j]);
          std::sort(members.rbegin(), members.rend());
          float sum = 0;
          for (float v : members)
            sum += v;
          psi[m] = std::max(psi[m], sum);
        }
      uint32_t groups = bruteForceTop(psi, (1u << c.G) - 1, c.Mg);
      groupTies += tieAtBoundary(psi, (1u << c.G) - 1, groups);
      eligible = 0;
      for (int64_t i = 0; i < c.E; ++i)
        if (groups >> (i / perGroup) & 1)
          eligible |= 1u << i;
    }
    uint32_t chosen = bruteForceTop(sb, eligible, c.K);
    expertTies += tieAtBoundary(sb, eligible, chosen);
    // Selection order: repeatedly the member that ranks before all remaining members.
    std::vector<int64_t> order;
    uint32_t remaining = chosen;
    while (remaining) {
      int64_t best = -1;
      for (int64_t i = 0; i < c.E; ++i)
        if ((remaining >> i & 1) && (best < 0 || ranksBefore(sb[i], i, sb[best], best)))
          best = i;
      order.push_back(best);
      remaining &= ~(1u << best);
    }
    double total = 0;
    for (int64_t i : order)
      total += s[i];
    for (int64_t k = 0; k < c.K; ++k) {
      ASSERT_EQ(indices[n * c.K + k], order[k]) << c.name << " row " << n << " slot " << k;
      double expected = c.rho * s[order[k]] / total;
      EXPECT_NEAR(weights[n * c.K + k], expected, 1e-6 * expected) << "row " << n;
    }
  }
  if (c.ties) { // the four-level logits must actually exercise the tie rules
    if (c.K < c.Mg * perGroup) // else every eligible expert is chosen
      EXPECT_GT(expertTies, 0) << "no row had tied experts at the top-k boundary";
    if (c.G > 1 && c.Mg < c.G)
      EXPECT_GT(groupTies, 0) << "no row had tied groups at the kept-groups boundary";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Routing, MoeRouteTest,
    ::testing::Values(RouteCase{"groups_ties", 64, 16, 4, 2, 2, 4, 2.5, true},
                      RouteCase{"groups_random", 64, 16, 4, 2, 2, 4, 1.0, false},
                      RouteCase{"pair_groups", 48, 16, 8, 3, 2, 6, 1.0, true},
                      RouteCase{"no_groups_ties", 48, 12, 1, 1, 1, 3, 1.0, true},
                      RouteCase{"no_groups_random", 48, 12, 1, 1, 2, 5, 1.0, false},
                      RouteCase{"one_expert_per_group", 48, 8, 8, 4, 1, 2, 1.0, true},
                      RouteCase{"k_fills_kept_groups", 48, 8, 2, 1, 3, 4, 0.5, true}),
    [](const auto &info) { return std::string(info.param.name); });

TEST(MoeRouteKernelTest, EqualScoresPickLowestGroupsAndExperts) {
  KernelCase kernel("moe_route",
                    {AttrDesc::integer("top_k", 3), AttrDesc::integer("n_groups", 4),
                     AttrDesc::integer("n_limited_groups", 2), AttrDesc::integer("group_topk", 1),
                     AttrDesc::number("route_scale", 1)});
  kernel.input("logits", DType::F32, {1, 8}, std::vector<float>(8, 0.25f));
  kernel.input("bias", DType::F32, {8}, std::vector<float>(8, 0.0f));
  kernel.output("weights", DType::F32, {1, 3});
  kernel.output("indices", DType::I32, {1, 3});
  kernel.output("scores", DType::F32, {1, 8});
  ASSERT_TRUE(kernel.run().ok());
  EXPECT_EQ(kernel.outputInts(1), (std::vector<int64_t>{0, 1, 2}));
  for (float w : kernel.outputFloats(0))
    EXPECT_FLOAT_EQ(w, 1.0f / 3);
}

TEST(MoeRouteKernelTest, RejectsInconsistentGroupAttributes) {
  auto make = [](int64_t G, int64_t Mg, int64_t qg, int64_t K) {
    KernelCase kernel("moe_route",
                      {AttrDesc::integer("top_k", K), AttrDesc::integer("n_groups", G),
                       AttrDesc::integer("n_limited_groups", Mg),
                       AttrDesc::integer("group_topk", qg), AttrDesc::number("route_scale", 1)});
    kernel.input("logits", DType::F32, {2, 8}, uniformValues(16, 1));
    kernel.input("bias", DType::F32, {8}, uniformValues(8, 2));
    kernel.output("weights", DType::F32, {2, K});
    kernel.output("indices", DType::I32, {2, K});
    kernel.output("scores", DType::F32, {2, 8});
    return kernel.run().message();
  };
  const std::string prefix =
      "plan.fplan: program 'main' instruction 0: kernel 0 'moe_route_0' (kind 'moe_route'): ";
  EXPECT_EQ(make(3, 1, 1, 2),
            prefix + "attribute 'n_groups' = 3 must be >= 1 and divide the 8 experts");
  EXPECT_EQ(make(4, 2, 3, 2),
            prefix + "attribute 'group_topk' = 3 must be in [1, 2] (experts per group)");
  EXPECT_EQ(make(4, 1, 1, 3), prefix +
                                  "attribute 'top_k' = 3 must be in [1, 2] (n_limited_groups × "
                                  "experts per group)");
}

//===----------------------------------------------------------------------===//
// dispatch → grouped_matmul → combine
//===----------------------------------------------------------------------===//

std::vector<uint8_t> floatBytes(DType dtype, const std::vector<float> &values) {
  std::vector<uint8_t> bytes(values.size() * dtypeSize(dtype));
  for (size_t i = 0; i < values.size(); ++i)
    storeFromFloat(bytes.data(), dtype, i, values[i]);
  return bytes;
}

std::vector<double> bytesToDoubles(DType dtype, const std::vector<uint8_t> &bytes) {
  std::vector<double> values(bytes.size() / dtypeSize(dtype));
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = loadAsFloat(bytes.data(), dtype, i);
  return values;
}

std::vector<int32_t> bytesToInts(const std::vector<uint8_t> &bytes) {
  std::vector<int32_t> values(bytes.size() / 4);
  std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

class MoePipelineTest : public ::testing::TestWithParam<DType> {};

TEST_P(MoePipelineTest, DispatchGroupedMatmulCombineMatchesDenseLoop) {
  const DType dtype = GetParam();
  const int64_t N = 29, D = 12, E = 6, K = 2, Dout = 10;
  // Distinct experts per token; expert 4 is never chosen (an empty group).
  std::vector<int32_t> indices(N * K);
  std::vector<float> draws = uniformValues(N * K, 300, 0, 1);
  for (int64_t n = 0; n < N; ++n) {
    int32_t first = static_cast<int32_t>(draws[n * K] * 5); // 0..4 → skip 4
    int32_t second = static_cast<int32_t>(draws[n * K + 1] * 4);
    first = first >= 4 ? 5 : first;
    second = second >= first ? second + 1 : second;
    second = second == 4 ? (first == 5 ? 0 : 5) : second;
    indices[n * K] = first;
    indices[n * K + 1] = second;
  }
  PlanBuilder plan;
  uint32_t x = plan.addBuffer("x", dtype, {N, D});
  uint32_t idx = plan.addBuffer("indices", DType::I32, {N, K});
  uint32_t w = plan.addBuffer("w", DType::F32, {N, K});
  uint32_t W = plan.addBuffer("W", dtype, {E, Dout, D});
  uint32_t xs = plan.addBuffer("xs", dtype, {N * K, D});
  uint32_t sizes = plan.addBuffer("group_sizes", DType::I32, {E});
  uint32_t perm = plan.addBuffer("perm", DType::I32, {N * K});
  uint32_t ys = plan.addBuffer("ys", dtype, {N * K, Dout});
  uint32_t y = plan.addBuffer("y", dtype, {N, Dout});
  uint32_t dispatch =
      plan.addKernel("dispatch", "moe_dispatch", {AttrDesc::integer("num_experts", E)});
  uint32_t gmm = plan.addKernel("gmm", "grouped_matmul");
  uint32_t combine = plan.addKernel("combine", "moe_combine");
  plan.addProgram("main")
      .add(launchOp(dispatch, {x, idx}, {xs, sizes, perm}))
      .add(launchOp(gmm, {xs, W, sizes}, {ys}))
      .add(launchOp(combine, {ys, w, perm}, {y}));
  auto loaded = Plan::loadBytes(plan.finish(), "moe.fplan");
  ASSERT_TRUE(loaded.ok()) << loaded.status().toString();
  auto executor = createExecutor(*loaded, BackendKind::kCpu);
  ASSERT_TRUE(executor.ok());
  Executor &run = **executor;
  std::vector<uint8_t> xBytes = floatBytes(dtype, uniformValues(N * D, 301));
  std::vector<uint8_t> WBytes = floatBytes(dtype, uniformValues(E * Dout * D, 302));
  std::vector<uint8_t> wBytes = floatBytes(DType::F32, uniformValues(N * K, 303, 0.1f, 1));
  ASSERT_TRUE(run.writeBuffer(x, xBytes.data(), xBytes.size()).ok());
  ASSERT_TRUE(run.writeBuffer(W, WBytes.data(), WBytes.size()).ok());
  ASSERT_TRUE(run.writeBuffer(w, wBytes.data(), wBytes.size()).ok());
  ASSERT_TRUE(run.writeBuffer(idx, indices.data(), indices.size() * 4).ok());
  Status status = run.run("main");
  ASSERT_TRUE(status.ok()) << status.toString();

  // group_sizes and perm: the stable sort of the pair indices by expert.
  std::vector<int32_t> pairs(N * K);
  for (int32_t p = 0; p < N * K; ++p)
    pairs[p] = p;
  std::stable_sort(pairs.begin(), pairs.end(),
                   [&](int32_t a, int32_t b) { return indices[a] < indices[b]; });
  std::vector<int32_t> counts(E, 0);
  for (int32_t e : indices)
    ++counts[e];
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(run.readBuffer(perm, bytes).ok());
  EXPECT_EQ(bytesToInts(bytes), pairs);
  ASSERT_TRUE(run.readBuffer(sizes, bytes).ok());
  EXPECT_EQ(bytesToInts(bytes), counts);
  EXPECT_EQ(counts[4], 0);

  std::vector<double> xv = bytesToDoubles(dtype, xBytes), Wv = bytesToDoubles(dtype, WBytes);
  std::vector<double> wv = bytesToDoubles(DType::F32, wBytes), expected(N * Dout, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      int64_t e = indices[n * K + k];
      for (int64_t o = 0; o < Dout; ++o) {
        double dot = 0;
        for (int64_t i = 0; i < D; ++i)
          dot += Wv[(e * Dout + o) * D + i] * xv[n * D + i];
        expected[n * Dout + o] += wv[n * K + k] * dot;
      }
    }
  ASSERT_TRUE(run.readBuffer(y, bytes).ok());
  std::vector<double> actualD = bytesToDoubles(dtype, bytes);
  std::vector<float> actual(actualD.begin(), actualD.end());
  double tol = dtype == DType::F32 ? 1e-5 : 2e-2;
  expectClose(actual, expected, tol, tol * maxAbs(expected), "moe pipeline");
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MoePipelineTest, ::testing::Values(DType::F32, DType::BF16),
                         [](const auto &info) { return dtypeName(info.param); });

TEST(GroupedMatmulKernelTest, RowsPastTheGroupsAreZeroAndSizesAreChecked) {
  KernelCase kernel("grouped_matmul");
  kernel.input("xs", DType::F32, {10, 4}, uniformValues(40, 310));
  kernel.input("w", DType::F32, {3, 5, 4}, uniformValues(60, 311));
  kernel.indexInput("group_sizes", DType::I32, {3}, {2, 0, 5});
  kernel.output("y", DType::F32, {10, 5});
  ASSERT_TRUE(kernel.run().ok());
  std::vector<double> x = kernel.inputValues(0), w = kernel.inputValues(1), expected(50, 0.0);
  const int64_t expertOf[7] = {0, 0, 2, 2, 2, 2, 2};
  for (int64_t r = 0; r < 7; ++r)
    for (int64_t o = 0; o < 5; ++o)
      for (int64_t i = 0; i < 4; ++i)
        expected[r * 5 + o] += w[(expertOf[r] * 5 + o) * 4 + i] * x[r * 4 + i];
  expectClose(kernel.outputFloats(0), expected, 1e-5, 1e-6, "grouped_matmul");

  KernelCase tooMany("grouped_matmul");
  tooMany.input("xs", DType::F32, {10, 4}, uniformValues(40, 310));
  tooMany.input("w", DType::F32, {3, 5, 4}, uniformValues(60, 311));
  tooMany.indexInput("group_sizes", DType::I32, {3}, {2, 6, 5});
  tooMany.output("y", DType::F32, {10, 5});
  EXPECT_EQ(tooMany.run().message(),
            "plan.fplan: program 'main' instruction 0: kernel 0 'grouped_matmul_0' (kind "
            "'grouped_matmul'): input 2 (group_sizes) (buffer 2 'group_sizes', i32[3]) element 2 "
            "is 5: group sizes must be >= 0 and sum to at most x's 10 rows");
}

TEST(MoeKernelErrorTest, DispatchAndCombineCheckTheirIndices) {
  KernelCase dispatch("moe_dispatch", {AttrDesc::integer("num_experts", 4)});
  dispatch.input("x", DType::F32, {3, 2}, uniformValues(6, 1));
  dispatch.indexInput("indices", DType::I32, {3, 2}, {0, 1, 2, 4, 3, 0});
  dispatch.output("xs", DType::F32, {6, 2});
  dispatch.output("group_sizes", DType::I32, {4});
  dispatch.output("perm", DType::I32, {6});
  EXPECT_EQ(dispatch.run().message(),
            "plan.fplan: program 'main' instruction 0: kernel 0 'moe_dispatch_0' (kind "
            "'moe_dispatch'): input 1 (indices) (buffer 1 'indices', i32[3,2]) element 3 is 4, "
            "outside [0, 4) (expert index)");
  KernelCase combine("moe_combine");
  combine.input("ys", DType::F32, {4, 3}, uniformValues(12, 1));
  combine.input("weights", DType::F32, {2, 2}, uniformValues(4, 2));
  combine.indexInput("perm", DType::I32, {4}, {0, 2, 2, 3});
  combine.output("y", DType::F32, {2, 3});
  EXPECT_EQ(combine.run().message(),
            "plan.fplan: program 'main' instruction 0: kernel 0 'moe_combine_0' (kind "
            "'moe_combine'): input 2 (perm) (buffer 2 'perm', i32[4]) is not a permutation: "
            "pair 2 appears at rows 1 and 2");
}

TEST(MoeBalanceLossKernelTest, MatchesFp64MeanOverRows) {
  const int64_t rows = 3, T = 5, E = 6, K = 2, N = rows * T;
  std::vector<float> scores = uniformValues(N * E, 320, 0.05f, 0.95f);
  std::vector<int64_t> indices(N * K);
  std::vector<float> draws = uniformValues(N, 321, 0, 1);
  for (int64_t t = 0; t < N; ++t) {
    indices[t * K] = static_cast<int64_t>(draws[t] * E) % E;
    indices[t * K + 1] = (indices[t * K] + 1 + t % (E - 1)) % E;
  }
  KernelCase kernel("moe_balance_loss", {AttrDesc::integer("seq_len", T)});
  kernel.input("scores", DType::F32, {N, E}, scores);
  kernel.indexInput("indices", DType::I32, {N, K}, indices);
  kernel.output("loss", DType::F32, {});
  ASSERT_TRUE(kernel.run().ok());
  double mean = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double loss = 0;
    for (int64_t i = 0; i < E; ++i) {
      double selected = 0, P = 0;
      for (int64_t t = r * T; t < (r + 1) * T; ++t) {
        selected += (indices[t * K] == i || indices[t * K + 1] == i) ? 1 : 0;
        double rowSum = 0;
        for (int64_t j = 0; j < E; ++j)
          rowSum += scores[t * E + j];
        P += scores[t * E + i] / rowSum / T;
      }
      loss += double(E) / (K * T) * selected * P;
    }
    mean += loss / rows;
  }
  expectClose(kernel.outputFloats(0), {mean}, 1e-6, 0, "moe_balance_loss");

  KernelCase badSeq("moe_balance_loss", {AttrDesc::integer("seq_len", 4)});
  badSeq.input("scores", DType::F32, {N, E}, scores);
  badSeq.indexInput("indices", DType::I32, {N, K}, indices);
  badSeq.output("loss", DType::F32, {});
  EXPECT_FALSE(badSeq.run().ok());
}

//===----------------------------------------------------------------------===//
// softcap → cross_entropy
//===----------------------------------------------------------------------===//

TEST(CrossEntropyKernelTest, SoftcappedLogitsMatchFp64WithIgnoredTargets) {
  const int64_t N = 9, V = 77;
  const double cap = 15;
  std::vector<int32_t> targets = {3, -1, 76, 0, -100, 40, 40, 12, -1};
  PlanBuilder plan;
  uint32_t logits = plan.addBuffer("logits", DType::F32, {N, V});
  uint32_t z = plan.addBuffer("z", DType::F32, {N, V});
  uint32_t y = plan.addBuffer("targets", DType::I32, {N});
  uint32_t loss = plan.addBuffer("loss", DType::F32, {N});
  uint32_t softcap = plan.addKernel("softcap", "softcap", {AttrDesc::number("cap", cap)});
  uint32_t ce = plan.addKernel("ce", "cross_entropy");
  plan.addProgram("main").add(launchOp(softcap, {logits}, {z})).add(launchOp(ce, {z, y}, {loss}));
  auto loaded = Plan::loadBytes(plan.finish(), "ce.fplan");
  ASSERT_TRUE(loaded.ok());
  auto executor = createExecutor(*loaded, BackendKind::kCpu);
  ASSERT_TRUE(executor.ok());
  std::vector<float> l = uniformValues(N * V, 330, -45, 45);
  ASSERT_TRUE((*executor)->writeBuffer(logits, l.data(), l.size() * 4).ok());
  ASSERT_TRUE((*executor)->writeBuffer(y, targets.data(), targets.size() * 4).ok());
  ASSERT_TRUE((*executor)->run("main").ok());
  std::vector<uint8_t> bytes;
  ASSERT_TRUE((*executor)->readBuffer(loss, bytes).ok());
  std::vector<float> actual(N);
  std::memcpy(actual.data(), bytes.data(), N * 4);
  std::vector<double> expected(N, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] < 0)
      continue;
    double maximum = -INFINITY, total = 0;
    std::vector<double> capped(V);
    for (int64_t v = 0; v < V; ++v) {
      capped[v] = cap * std::tanh(l[n * V + v] / cap);
      maximum = std::max(maximum, capped[v]);
    }
    for (double c : capped)
      total += std::exp(c - maximum);
    expected[n] = maximum + std::log(total) - capped[targets[n]];
  }
  expectClose(actual, expected, 1e-5, 1e-6, "softcap + cross_entropy");
  EXPECT_EQ(actual[1], 0.0f);
  EXPECT_EQ(actual[4], 0.0f);
}

TEST(CrossEntropyKernelTest, Bf16LogitsAndI64Targets) {
  const int64_t N = 5, V = 300;
  KernelCase kernel("cross_entropy");
  kernel.input("logits", DType::BF16, {N, V}, uniformValues(N * V, 340, -8, 8));
  kernel.indexInput("targets", DType::I64, {N}, {299, 0, -1, 150, 7});
  kernel.output("loss", DType::F32, {N});
  ASSERT_TRUE(kernel.run().ok());
  std::vector<double> z = kernel.inputValues(0), expected(N, 0.0);
  const int64_t t[N] = {299, 0, -1, 150, 7};
  for (int64_t n = 0; n < N; ++n) {
    if (t[n] < 0)
      continue;
    double total = 0;
    for (int64_t v = 0; v < V; ++v)
      total += std::exp(z[n * V + v]);
    expected[n] = std::log(total) - z[n * V + t[n]];
  }
  expectClose(kernel.outputFloats(0), expected, 1e-5, 1e-6, "cross_entropy bf16");
}

TEST(CrossEntropyKernelTest, TargetAtOrAboveVocabularyIsAnError) {
  KernelCase kernel("cross_entropy");
  kernel.input("logits", DType::F32, {3, 10}, uniformValues(30, 1));
  kernel.indexInput("targets", DType::I32, {3}, {1, -1, 10});
  kernel.output("loss", DType::F32, {3});
  Status status = kernel.run("loss.yaml:9:2");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "plan.fplan: program 'main' instruction 0 (loc: loss.yaml:9:2): kernel 0 "
            "'cross_entropy_0' (kind 'cross_entropy'): input 1 (targets) (buffer 1 'targets', "
            "i32[3]) element 2 is 10, not below the vocabulary size 10 (negative targets are "
            "ignored)");
}

} // namespace
