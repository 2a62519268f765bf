//===- attention_gdn_test.cc - Attention and gated delta rule kernels -----===//
//
// attention against a naive fp64 softmax over the allowed keys (causal, sliding window, GQA,
// non-causal, d_qk ≠ d_v), and gated_delta_rule — computed by the kernel in the chunked WY
// form — against the token-by-token fp64 recurrence of MODEL.md §4.1, for chunk sizes 16 to
// 128, sequence lengths that are not a multiple of the chunk, fewer key heads than value
// heads, and decays strong enough that an unguarded exp(γ_i − γ_j) above the diagonal would
// overflow.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/kernel_test_util.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

struct AttentionCase {
  const char *name;
  int64_t B, H, G, T, dqk, dv;
  bool causal;
  int64_t window;
  DType dtype;
};

/// o[b, h, t, :] by the definition: softmax over the allowed keys, in fp64.
std::vector<double> naiveAttention(const AttentionCase &c, const std::vector<double> &q,
                                   const std::vector<double> &k, const std::vector<double> &v,
                                   double scale) {
  std::vector<double> o(c.B * c.H * c.T * c.dv, 0.0);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h) {
      int64_t g = h / (c.H / c.G);
      for (int64_t t = 0; t < c.T; ++t) {
        std::vector<double> weights(c.T, 0.0);
        double maximum = -INFINITY;
        for (int64_t u = 0; u < c.T; ++u) {
          bool allowed = !c.causal || (u <= t && (c.window == 0 || u > t - c.window));
          if (!allowed) {
            weights[u] = -INFINITY;
            continue;
          }
          double s = 0;
          for (int64_t j = 0; j < c.dqk; ++j)
            s +=
                q[((b * c.H + h) * c.T + t) * c.dqk + j] * k[((b * c.G + g) * c.T + u) * c.dqk + j];
          weights[u] = scale * s;
          maximum = std::max(maximum, weights[u]);
        }
        double total = 0;
        for (double &w : weights) {
          w = std::isinf(w) ? 0.0 : std::exp(w - maximum);
          total += w;
        }
        for (int64_t u = 0; u < c.T; ++u)
          for (int64_t e = 0; e < c.dv; ++e)
            o[((b * c.H + h) * c.T + t) * c.dv + e] +=
                weights[u] / total * v[((b * c.G + g) * c.T + u) * c.dv + e];
      }
    }
  return o;
}

class AttentionKernelTest : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionKernelTest, MatchesNaiveSoftmax) {
  const AttentionCase &c = GetParam();
  const double scale = 1 / std::sqrt(static_cast<double>(c.dqk));
  std::vector<AttrDesc> attrs = {AttrDesc::number("scale", scale)};
  if (c.causal)
    attrs.push_back(AttrDesc::integer("causal", 1));
  if (c.window)
    attrs.push_back(AttrDesc::integer("window", c.window));
  KernelCase kernel("attention", attrs);
  kernel.input("q", c.dtype, {c.B, c.H, c.T, c.dqk},
               uniformValues(c.B * c.H * c.T * c.dqk, 1, -2, 2));
  kernel.input("k", c.dtype, {c.B, c.G, c.T, c.dqk},
               uniformValues(c.B * c.G * c.T * c.dqk, 2, -2, 2));
  kernel.input("v", c.dtype, {c.B, c.G, c.T, c.dv}, uniformValues(c.B * c.G * c.T * c.dv, 3));
  kernel.output("o", c.dtype, {c.B, c.H, c.T, c.dv});
  Status status = kernel.run();
  ASSERT_TRUE(status.ok()) << status.toString();
  std::vector<double> expected = naiveAttention(c, kernel.inputValues(0), kernel.inputValues(1),
                                                kernel.inputValues(2), roundTo(DType::F32, scale));
  double tol = c.dtype == DType::F32 ? 1e-5 : 1e-2;
  expectClose(kernel.outputFloats(0), expected, tol, tol * maxAbs(expected), c.name);
}

INSTANTIATE_TEST_SUITE_P(
    Masks, AttentionKernelTest,
    ::testing::Values(AttentionCase{"window_gqa", 2, 4, 2, 19, 12, 8, true, 5, DType::F32},
                      AttentionCase{"window_gqa_bf16", 2, 4, 2, 19, 12, 8, true, 5, DType::BF16},
                      AttentionCase{"window1_self_only", 1, 2, 1, 7, 4, 3, true, 1, DType::F32},
                      AttentionCase{"window_longer_than_t", 1, 2, 2, 9, 8, 8, true, 64, DType::F32},
                      AttentionCase{"causal_mqa", 2, 3, 1, 23, 16, 24, true, 0, DType::F32},
                      AttentionCase{"causal_f16", 1, 4, 4, 17, 8, 8, true, 0, DType::F16},
                      AttentionCase{"bidirectional", 2, 6, 3, 11, 10, 6, false, 0, DType::F32}),
    [](const auto &info) { return std::string(info.param.name); });

TEST(AttentionKernelTest, RejectsBadAttributesAndShapes) {
  auto make = [](std::vector<AttrDesc> attrs, int64_t kT) {
    KernelCase kernel("attention", std::move(attrs));
    kernel.input("q", DType::F32, {1, 4, 8, 4}, uniformValues(128, 1));
    kernel.input("k", DType::F32, {1, 2, kT, 4}, uniformValues(8 * kT, 2));
    kernel.input("v", DType::F32, {1, 2, kT, 4}, uniformValues(8 * kT, 3));
    kernel.output("o", DType::F32, {1, 4, 8, 4});
    return kernel.run().message();
  };
  const std::string prefix =
      "plan.fplan: program 'main' instruction 0: kernel 0 'attention_0' (kind 'attention'): ";
  EXPECT_EQ(make({AttrDesc::integer("causal", 1)}, 8),
            prefix + "missing required attribute 'scale'");
  EXPECT_EQ(make({AttrDesc::number("scale", 0.5), AttrDesc::integer("window", 4)}, 8),
            prefix + "attribute 'window' = 4 must be >= 0, and a window > 0 needs 'causal'");
  EXPECT_EQ(make({AttrDesc::number("scale", 0.5), AttrDesc::number("window", 4)}, 8),
            prefix + "attribute 'window' must be an integer (Int), but it is of type Float");
  EXPECT_EQ(make({AttrDesc::number("scale", 0.5), AttrDesc::integer("causal", 2)}, 8),
            prefix + "attribute 'causal' must be 0 or 1, got 2");
  EXPECT_EQ(make({AttrDesc::number("scale", 0.5)}, 7),
            prefix + "input 1 (k) (buffer 1 'k', f32[1,2,7,4]) must be [B, G, T, d_qk] with "
                     "q's B = 1, T = 8, d_qk = 4");
}

//===----------------------------------------------------------------------===//
// Gated delta rule
//===----------------------------------------------------------------------===//

struct GdnCase {
  int64_t chunk, B, T, Hk, H, dk, dh;
  DType dtype;
  float gLow, gHigh;
};

/// The recurrence S_t = α_t S_{t−1}(I − β_t k_t k_tᵀ) + β_t v_t k_tᵀ, o_t = S_t q_t in fp64.
std::vector<double> recurrence(const GdnCase &c, const std::vector<double> &q,
                               const std::vector<double> &k, const std::vector<double> &v,
                               const std::vector<double> &g, const std::vector<double> &beta) {
  std::vector<double> o(c.B * c.T * c.H * c.dh, 0.0);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h) {
      int64_t kh = h * c.Hk / c.H;
      std::vector<double> S(c.dh * c.dk, 0.0); // S[e][a]
      for (int64_t t = 0; t < c.T; ++t) {
        const double *qt = &q[((b * c.T + t) * c.Hk + kh) * c.dk];
        const double *kt = &k[((b * c.T + t) * c.Hk + kh) * c.dk];
        const double *vt = &v[((b * c.T + t) * c.H + h) * c.dh];
        double alpha = std::exp(g[(b * c.T + t) * c.H + h]);
        double bt = beta[(b * c.T + t) * c.H + h];
        for (int64_t e = 0; e < c.dh; ++e) {
          double sk = 0; // (S k)_e
          for (int64_t a = 0; a < c.dk; ++a)
            sk += S[e * c.dk + a] * kt[a];
          for (int64_t a = 0; a < c.dk; ++a)
            S[e * c.dk + a] = alpha * (S[e * c.dk + a] - bt * sk * kt[a]) + bt * vt[e] * kt[a];
        }
        for (int64_t e = 0; e < c.dh; ++e) {
          double acc = 0;
          for (int64_t a = 0; a < c.dk; ++a)
            acc += S[e * c.dk + a] * qt[a];
          o[((b * c.T + t) * c.H + h) * c.dh + e] = acc;
        }
      }
    }
  return o;
}


class GatedDeltaRuleTest : public ::testing::TestWithParam<GdnCase> {};

TEST_P(GatedDeltaRuleTest, ChunkedFormMatchesTokenRecurrence) {
  const GdnCase &c = GetParam();
  KernelCase kernel("gated_delta_rule", {AttrDesc::integer("chunk_size", c.chunk)});
  size_t keyRows = c.B * c.T * c.Hk, tokens = c.B * c.T * c.H;
  kernel.input("q", c.dtype, {c.B, c.T, c.Hk, c.dk},
               normalisedRows(keyRows, c.dk, 10, 1 / std::sqrt(double(c.dk))));
  kernel.input("k", c.dtype, {c.B, c.T, c.Hk, c.dk}, normalisedRows(keyRows, c.dk, 11, 1));
  kernel.input("v", c.dtype, {c.B, c.T, c.H, c.dh}, uniformValues(tokens * c.dh, 12));
  kernel.input("g", c.dtype, {c.B, c.T, c.H}, uniformValues(tokens, 13, c.gLow, c.gHigh));
  kernel.input("beta", c.dtype, {c.B, c.T, c.H}, uniformValues(tokens, 14, 0.05f, 0.95f));
  kernel.output("o", c.dtype, {c.B, c.T, c.H, c.dh});
  Status status = kernel.run();
  ASSERT_TRUE(status.ok()) << status.toString();
  std::vector<double> expected =
      recurrence(c, kernel.inputValues(0), kernel.inputValues(1), kernel.inputValues(2),
                 kernel.inputValues(3), kernel.inputValues(4));
  std::vector<float> actual = kernel.outputFloats(0);
  for (float value : actual)
    ASSERT_TRUE(std::isfinite(value)) << "non-finite output";
  double tol = c.dtype == DType::F32 ? 1e-5 : 1e-2;
  expectClose(actual, expected, tol, tol * maxAbs(expected), "gated_delta_rule");
}

std::string gdnName(const ::testing::TestParamInfo<GdnCase> &info) {
  const GdnCase &c = info.param;
  return "C" + std::to_string(c.chunk) + "_T" + std::to_string(c.T) + "_Hk" + std::to_string(c.Hk) +
         "_H" + std::to_string(c.H) + "_" + dtypeName(c.dtype) +
         (c.gLow < -3 ? "_strong_decay" : "");
}

INSTANTIATE_TEST_SUITE_P(
    Chunks, GatedDeltaRuleTest,
    ::testing::Values(GdnCase{16, 2, 37, 1, 2, 16, 8, DType::F32, -1.6f, -0.01f},
                      GdnCase{16, 1, 100, 2, 4, 16, 12, DType::F32, -1.6f, -0.01f},
                      GdnCase{32, 2, 37, 2, 4, 32, 16, DType::F32, -1.6f, -0.01f},
                      GdnCase{32, 1, 100, 1, 3, 16, 8, DType::F32, -1.6f, -0.01f},
                      GdnCase{64, 2, 37, 1, 2, 16, 16, DType::F32, -1.6f, -0.01f},
                      GdnCase{64, 1, 100, 2, 4, 32, 8, DType::F32, -1.6f, -0.01f},
                      GdnCase{64, 1, 128, 2, 2, 16, 8, DType::F32, -0.1f, -0.0f},
                      GdnCase{128, 1, 130, 1, 2, 16, 8, DType::F32, -1.6f, -0.01f},
                      GdnCase{64, 1, 100, 1, 2, 16, 8, DType::F32, -6.0f, -4.0f},
                      GdnCase{32, 2, 45, 1, 2, 16, 8, DType::BF16, -1.6f, -0.01f}),
    gdnName);

TEST(GatedDeltaRuleKernelTest, RejectsBadChunkSizeAndHeads) {
  auto make = [](int64_t chunk, int64_t Hk, int64_t H) {
    KernelCase kernel("gated_delta_rule", {AttrDesc::integer("chunk_size", chunk)});
    kernel.input("q", DType::F32, {1, 4, Hk, 8}, uniformValues(32 * Hk, 1));
    kernel.input("k", DType::F32, {1, 4, Hk, 8}, uniformValues(32 * Hk, 1));
    kernel.input("v", DType::F32, {1, 4, H, 8}, uniformValues(32 * H, 1));
    kernel.input("g", DType::F32, {1, 4, H}, uniformValues(4 * H, 1));
    kernel.input("beta", DType::F32, {1, 4, H}, uniformValues(4 * H, 1));
    kernel.output("o", DType::F32, {1, 4, H, 8});
    return kernel.run().message();
  };
  const std::string prefix = "plan.fplan: program 'main' instruction 0: kernel 0 "
                             "'gated_delta_rule_0' (kind 'gated_delta_rule'): ";
  EXPECT_EQ(make(48, 1, 2),
            prefix + "attribute 'chunk_size' must be one of 16, 32, 64, 128, got 48");
  EXPECT_EQ(make(16, 2, 3), prefix + "input 0 (q) (buffer 0 'q', f32[1,4,2,8]) has 2 key "
                                     "heads, which must be >= 1 and divide the 3 value heads");
}

} // namespace
