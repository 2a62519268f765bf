//===- decode_kernels_test.cc - The inference kinds against the training kinds -===//
//
// Each cache kind, fed a sequence in pieces (1 token at a time, and uneven pieces), must
// reproduce its full-sequence counterpart: kv_cache_attention ↔ attention (the same
// arithmetic: equal to fp32 rounding), causal_conv1d_step ↔ causal_conv1d (exact),
// gated_delta_step ↔ gated_delta_rule (recurrent vs chunked WY form: 1e-5), rope_at ↔ rope.
// The caches travel from one launch's outputs to the next launch's inputs, as the plan's
// in-place buffers do between decode_step runs.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/kernel_test_util.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

/// Rows [b, i0 .. i0+n) along dimension `axis` of a row-major tensor `shape` (dims before
/// `axis` are outer, the rest inner).
std::vector<float> sliceAxis(const std::vector<float> &x, const std::vector<int64_t> &shape,
                             size_t axis, int64_t i0, int64_t n) {
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d)
    outer *= shape[d];
  for (size_t d = axis + 1; d < shape.size(); ++d)
    inner *= shape[d];
  std::vector<float> out;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = i0; i < i0 + n; ++i)
      for (int64_t e = 0; e < inner; ++e)
        out.push_back(x[(o * shape[axis] + i) * inner + e]);
  return out;
}

std::vector<double> toDoubles(const std::vector<float> &x) { return {x.begin(), x.end()}; }

/// The pieces a sequence of length T is fed in.
std::vector<int64_t> pieces(int64_t T, bool oneByOne) {
  if (oneByOne)
    return std::vector<int64_t>(static_cast<size_t>(T), 1);
  std::vector<int64_t> out;
  for (int64_t done = 0, n = 3; done < T; n = n % 4 + 1) {
    out.push_back(std::min(n, T - done));
    done += out.back();
  }
  return out;
}

struct AttentionCase {
  int64_t window;
  bool oneByOne;
};

class KvCacheAttentionTest : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(KvCacheAttentionTest, PiecesReproduceFullAttention) {
  const int64_t B = 2, H = 4, G = 2, T = 11, dqk = 6, dv = 5, Tc = 16;
  const int64_t window = GetParam().window;
  const double scale = 0.4;
  std::vector<float> q = uniformValues(B * H * T * dqk, 1), k = uniformValues(B * G * T * dqk, 2),
                     v = uniformValues(B * G * T * dv, 3);
  KernelCase full("attention", {AttrDesc::integer("causal", 1), AttrDesc::integer("window", window),
                                AttrDesc::number("scale", scale)});
  full.input("q", DType::F32, {B, H, T, dqk}, q);
  full.input("k", DType::F32, {B, G, T, dqk}, k);
  full.input("v", DType::F32, {B, G, T, dv}, v);
  full.output("o", DType::F32, {B, H, T, dv});
  ASSERT_TRUE(full.run().ok());
  std::vector<float> expected = full.outputFloats(0);

  std::vector<float> kCache(B * G * Tc * dqk, 0.0f), vCache(B * G * Tc * dv, 0.0f);
  int64_t p = 0;
  for (int64_t n : pieces(T, GetParam().oneByOne)) {
    KernelCase step("kv_cache_attention",
                    {AttrDesc::integer("window", window), AttrDesc::number("scale", scale)});
    step.input("q", DType::F32, {B, H, n, dqk}, sliceAxis(q, {B * H, T, dqk}, 1, p, n));
    step.input("k", DType::F32, {B, G, n, dqk}, sliceAxis(k, {B * G, T, dqk}, 1, p, n));
    step.input("v", DType::F32, {B, G, n, dv}, sliceAxis(v, {B * G, T, dv}, 1, p, n));
    step.indexInput("position", DType::I32, {1}, {p});
    step.input("k_cache", DType::F32, {B, G, Tc, dqk}, kCache);
    step.input("v_cache", DType::F32, {B, G, Tc, dv}, vCache);
    step.output("o", DType::F32, {B, H, n, dv});
    step.output("k_cache_out", DType::F32, {B, G, Tc, dqk});
    step.output("v_cache_out", DType::F32, {B, G, Tc, dv});
    Status status = step.run();
    ASSERT_TRUE(status.ok()) << status.toString();
    expectClose(step.outputFloats(0),
                toDoubles(sliceAxis(expected, {B * H, T, dv}, 1, p, n)), 1e-6, 1e-7,
                "o at positions " + std::to_string(p) + ".." + std::to_string(p + n - 1));
    kCache = step.outputFloats(1);
    vCache = step.outputFloats(2);
    p += n;
  }
  // The caches hold exactly the keys and values, zeros after them.
  EXPECT_EQ(sliceAxis(kCache, {B * G, Tc, dqk}, 1, 0, T), k);
  for (float value : sliceAxis(kCache, {B * G, Tc, dqk}, 1, T, Tc - T))
    ASSERT_EQ(value, 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Windows, KvCacheAttentionTest,
                         ::testing::Values(AttentionCase{0, true}, AttentionCase{0, false},
                                           AttentionCase{3, true}, AttentionCase{4, false}));

TEST(KvCacheAttentionTest, RejectsAPositionPastTheCache) {
  KernelCase step("kv_cache_attention",
                  {AttrDesc::integer("window", 0), AttrDesc::number("scale", 0.5)});
  step.input("q", DType::F32, {1, 2, 2, 4}, uniformValues(16, 1));
  step.input("k", DType::F32, {1, 1, 2, 4}, uniformValues(8, 2));
  step.input("v", DType::F32, {1, 1, 2, 4}, uniformValues(8, 3));
  step.indexInput("position", DType::I32, {1}, {7});
  step.input("k_cache", DType::F32, {1, 1, 8, 4}, std::vector<float>(32, 0));
  step.input("v_cache", DType::F32, {1, 1, 8, 4}, std::vector<float>(32, 0));
  step.output("o", DType::F32, {1, 2, 2, 4});
  step.output("k_out", DType::F32, {1, 1, 8, 4});
  step.output("v_out", DType::F32, {1, 1, 8, 4});
  Status status = step.run();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("holds 8 positions; position 7 + 2 new token(s) does not fit"),
            std::string::npos)
      << status.message();
}

TEST(KvCacheAttentionTest, RejectsANegativePosition) {
  KernelCase step("kv_cache_attention",
                  {AttrDesc::integer("window", 0), AttrDesc::number("scale", 0.5)});
  step.input("q", DType::F32, {1, 1, 1, 4}, uniformValues(4, 1));
  step.input("k", DType::F32, {1, 1, 1, 4}, uniformValues(4, 2));
  step.input("v", DType::F32, {1, 1, 1, 4}, uniformValues(4, 3));
  step.indexInput("position", DType::I32, {1}, {-1});
  step.input("k_cache", DType::F32, {1, 1, 8, 4}, std::vector<float>(32, 0));
  step.input("v_cache", DType::F32, {1, 1, 8, 4}, std::vector<float>(32, 0));
  step.output("o", DType::F32, {1, 1, 1, 4});
  step.output("k_out", DType::F32, {1, 1, 8, 4});
  step.output("v_out", DType::F32, {1, 1, 8, 4});
  Status status = step.run();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("holds position -1 < 0"), std::string::npos) << status.message();
}

class ConvStepTest : public ::testing::TestWithParam<bool> {};

TEST_P(ConvStepTest, PiecesReproduceTheFullConvolution) {
  const int64_t B = 2, T = 9, C = 5, K = 4;
  std::vector<float> x = uniformValues(B * T * C, 4), w = uniformValues(C * K, 5);
  KernelCase full("causal_conv1d");
  full.input("x", DType::F32, {B, T, C}, x);
  full.input("w", DType::F32, {C, K}, w);
  full.output("y", DType::F32, {B, T, C});
  ASSERT_TRUE(full.run().ok());
  std::vector<float> expected = full.outputFloats(0);
  std::vector<float> tail(B * (K - 1) * C, 0.0f);
  int64_t p = 0;
  for (int64_t n : pieces(T, GetParam())) {
    KernelCase step("causal_conv1d_step");
    step.input("x", DType::F32, {B, n, C}, sliceAxis(x, {B, T, C}, 1, p, n));
    step.input("w", DType::F32, {C, K}, w);
    step.input("tail", DType::F32, {B, K - 1, C}, tail);
    step.output("y", DType::F32, {B, n, C});
    step.output("tail_out", DType::F32, {B, K - 1, C});
    Status status = step.run();
    ASSERT_TRUE(status.ok()) << status.toString();
    // Same products, same order: equal.
    EXPECT_EQ(step.outputFloats(0), sliceAxis(expected, {B, T, C}, 1, p, n)) << "at " << p;
    tail = step.outputFloats(1);
    p += n;
  }
  EXPECT_EQ(tail, sliceAxis(x, {B, T, C}, 1, T - (K - 1), K - 1));
}

INSTANTIATE_TEST_SUITE_P(Pieces, ConvStepTest, ::testing::Values(true, false));

TEST(ConvStepTest, RejectsATailOfTheWrongLength) {
  KernelCase step("causal_conv1d_step");
  step.input("x", DType::F32, {1, 1, 3}, uniformValues(3, 1));
  step.input("w", DType::F32, {3, 4}, uniformValues(12, 2));
  step.input("tail", DType::F32, {1, 2, 3}, std::vector<float>(6, 0));
  step.output("y", DType::F32, {1, 1, 3});
  step.output("tail_out", DType::F32, {1, 2, 3});
  Status status = step.run();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("input 2 (tail)"), std::string::npos) << status.message();
}


class GatedDeltaStepTest : public ::testing::TestWithParam<bool> {};

TEST_P(GatedDeltaStepTest, PiecesReproduceTheChunkedRule) {
  // T = 37 with chunk 16: two full chunks and a partial one on the reference side.
  const int64_t B = 2, T = 37, Hk = 1, H = 2, dk = 16, dh = 8;
  std::vector<float> q = normalisedRows(B * T * Hk, dk, 10, 0.25),
                     k = normalisedRows(B * T * Hk, dk, 11, 1),
                     v = uniformValues(B * T * H * dh, 12),
                     g = uniformValues(B * T * H, 13, -1.6f, -0.01f),
                     beta = uniformValues(B * T * H, 14, 0.05f, 0.95f);
  KernelCase full("gated_delta_rule", {AttrDesc::integer("chunk_size", 16)});
  full.input("q", DType::F32, {B, T, Hk, dk}, q);
  full.input("k", DType::F32, {B, T, Hk, dk}, k);
  full.input("v", DType::F32, {B, T, H, dh}, v);
  full.input("g", DType::F32, {B, T, H}, g);
  full.input("beta", DType::F32, {B, T, H}, beta);
  full.output("o", DType::F32, {B, T, H, dh});
  ASSERT_TRUE(full.run().ok());
  std::vector<float> expected = full.outputFloats(0);
  std::vector<float> state(B * H * dk * dh, 0.0f);
  int64_t p = 0;
  for (int64_t n : pieces(T, GetParam())) {
    KernelCase step("gated_delta_step");
    step.input("q", DType::F32, {B, n, Hk, dk}, sliceAxis(q, {B, T, Hk * dk}, 1, p, n));
    step.input("k", DType::F32, {B, n, Hk, dk}, sliceAxis(k, {B, T, Hk * dk}, 1, p, n));
    step.input("v", DType::F32, {B, n, H, dh}, sliceAxis(v, {B, T, H * dh}, 1, p, n));
    step.input("g", DType::F32, {B, n, H}, sliceAxis(g, {B, T, H}, 1, p, n));
    step.input("beta", DType::F32, {B, n, H}, sliceAxis(beta, {B, T, H}, 1, p, n));
    step.input("state", DType::F32, {B, H, dk, dh}, state);
    step.output("o", DType::F32, {B, n, H, dh});
    step.output("state_out", DType::F32, {B, H, dk, dh});
    Status status = step.run();
    ASSERT_TRUE(status.ok()) << status.toString();
    std::vector<double> want = toDoubles(sliceAxis(expected, {B, T, H * dh}, 1, p, n));
    expectClose(step.outputFloats(0), want, 1e-5, 1e-5 * maxAbs(want),
                "o at " + std::to_string(p));
    state = step.outputFloats(1);
    p += n;
  }
}

INSTANTIATE_TEST_SUITE_P(Pieces, GatedDeltaStepTest, ::testing::Values(true, false));

TEST(RopeAtTest, EqualsRopeAtTheSamePositions) {
  const int64_t B = 2, T = 12, H = 3, d = 10, rotary = 6, p = 7, n = 3;
  std::vector<float> x = uniformValues(B * T * H * d, 20);
  std::vector<AttrDesc> attrs = {AttrDesc::integer("rotary_dims", rotary),
                                 AttrDesc::number("theta", 10000.0)};
  KernelCase full("rope", attrs);
  full.input("x", DType::F32, {B, T, H, d}, x);
  full.output("y", DType::F32, {B, T, H, d});
  ASSERT_TRUE(full.run().ok());
  KernelCase at("rope_at", attrs);
  at.input("x", DType::F32, {B, n, H, d}, sliceAxis(x, {B, T, H * d}, 1, p, n));
  at.indexInput("position", DType::I32, {1}, {p});
  at.output("y", DType::F32, {B, n, H, d});
  Status status = at.run();
  ASSERT_TRUE(status.ok()) << status.toString();
  EXPECT_EQ(at.outputFloats(0), sliceAxis(full.outputFloats(0), {B, T, H * d}, 1, p, n));
}

} // namespace
