//===- basic_kernels_test.cc - Elementwise, layout, matmul, norm kernels --===//
//
// The simple op kinds of docs/op-kinds.md against fp64 evaluations written here: every
// elementwise kind in f32 and bf16 storage, cast rounding, the layout kinds (reshape,
// transpose, slice, concat, broadcast, sum) against index arithmetic done from scratch,
// matmul over transposes and batch/shared operands, l2_norm, embedding (and its id check),
// rope and causal_conv1d; plus the attribute and shape errors of these kinds.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/kernel_test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

double tolFor(DType dtype) { return dtype == DType::F32 ? 1e-5 : 1e-2; }

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

struct UnaryCase {
  const char *kind;
  std::vector<AttrDesc> attrs;
  std::function<double(double)> reference;
  float low, high;
};

class UnaryKernelTest : public ::testing::TestWithParam<DType> {};

TEST_P(UnaryKernelTest, MatchesFp64) {
  const DType dtype = GetParam();
  std::vector<UnaryCase> cases = {
      {"silu", {}, [](double x) { return x / (1 + std::exp(-x)); }, -8, 8},
      {"sigmoid", {}, [](double x) { return 1 / (1 + std::exp(-x)); }, -10, 10},
      {"exp", {}, [](double x) { return std::exp(x); }, -5, 5},
      {"neg", {}, [](double x) { return -x; }, -3, 3},
      {"softplus", {}, [](double x) { return x > 20 ? x : std::log1p(std::exp(x)); }, -30, 40},
      {"scale", {AttrDesc::number("factor", -0.375)}, [](double x) { return -0.375 * x; }, -3, 3},
      {"softcap",
       {AttrDesc::number("cap", 15)},
       [](double x) { return 15 * std::tanh(x / 15); },
       -60,
       60},
  };
  for (const UnaryCase &c : cases) {
    KernelCase kernel(c.kind, c.attrs);
    kernel.input("x", dtype, {3, 37}, uniformValues(111, 11, c.low, c.high));
    kernel.output("y", dtype, {3, 37});
    Status status = kernel.run();
    ASSERT_TRUE(status.ok()) << c.kind << ": " << status.toString();
    std::vector<double> x = kernel.inputValues(0), expected;
    for (double v : x)
      expected.push_back(c.reference(v));
    expectClose(kernel.outputFloats(0), expected, tolFor(dtype), 1e-30, c.kind);
  }
}

TEST_P(UnaryKernelTest, BinaryKindsMatchFp64) {
  const DType dtype = GetParam();
  struct BinaryCase {
    const char *kind;
    std::function<double(double, double)> reference;
  };
  std::vector<BinaryCase> cases = {
      {"add", [](double a, double b) { return a + b; }},
      {"sub", [](double a, double b) { return a - b; }},
      {"mul", [](double a, double b) { return a * b; }},
      {"swiglu", [](double a, double b) { return a / (1 + std::exp(-a)) * b; }},
  };
  for (const BinaryCase &c : cases) {
    KernelCase kernel(c.kind);
    kernel.input("a", dtype, {64}, uniformValues(64, 21, -4, 4));
    kernel.input("b", dtype, {8, 8}, uniformValues(64, 22, -4, 4));
    kernel.output("z", dtype, {64});
    ASSERT_TRUE(kernel.run().ok()) << c.kind;
    std::vector<double> a = kernel.inputValues(0), b = kernel.inputValues(1), expected;
    for (size_t i = 0; i < a.size(); ++i)
      expected.push_back(c.reference(a[i], b[i]));
    // sub of nearly equal bf16 values is exact, so a relative bound suffices everywhere.
    expectClose(kernel.outputFloats(0), expected, tolFor(dtype), 1e-30, c.kind);
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, UnaryKernelTest, ::testing::Values(DType::F32, DType::BF16),
                         [](const auto &info) { return dtypeName(info.param); });

TEST(ElementwiseKernelTest, SoftplusIsIdentityAbove20AndStableBelow) {
  KernelCase kernel("softplus");
  kernel.input("x", DType::F32, {4}, {20.5f, 25.0f, -100.0f, 0.0f});
  kernel.output("y", DType::F32, {4});
  ASSERT_TRUE(kernel.run().ok());
  std::vector<float> y = kernel.outputFloats(0);
  EXPECT_EQ(y[0], 20.5f);
  EXPECT_EQ(y[1], 25.0f);
  EXPECT_FLOAT_EQ(y[2], static_cast<float>(std::exp(-100.0)));
  EXPECT_FLOAT_EQ(y[3], static_cast<float>(std::log(2.0)));
}

TEST(ElementwiseKernelTest, CastRoundsToNearestEvenBetweenAllFloatTypes) {
  // 1 + 2^-8 is a bf16 tie between 1 and 1 + 2^-7: rounds to even (1). 1 + 3·2^-9 rounds up.
  std::vector<float> values = {1.0f + 1.0f / 256, 1.0f + 3.0f / 512, -2.5f, 65504.0f, 1e-8f,
                               3.14159265f};
  for (DType from : {DType::F32, DType::BF16, DType::F16})
    for (DType to : {DType::F32, DType::BF16, DType::F16}) {
      KernelCase kernel("cast");
      kernel.input("x", from, {6}, values);
      kernel.output("y", to, {6});
      ASSERT_TRUE(kernel.run().ok());
      std::vector<double> stored = kernel.inputValues(0);
      std::vector<float> y = kernel.outputFloats(0);
      for (size_t i = 0; i < values.size(); ++i)
        EXPECT_EQ(y[i], roundTo(to, static_cast<float>(stored[i])))
            << dtypeName(from) << " -> " << dtypeName(to) << " element " << i;
    }
  KernelCase tie("cast");
  tie.input("x", DType::F32, {2}, {1.0f + 1.0f / 256, 1.0f + 3.0f / 256});
  tie.output("y", DType::BF16, {2});
  ASSERT_TRUE(tie.run().ok());
  EXPECT_EQ(tie.outputFloats(0), (std::vector<float>{1.0f, 1.0f + 4.0f / 256}));
}

TEST(ElementwiseKernelTest, SoftcapRejectsNonPositiveCap) {
  KernelCase kernel("softcap", {AttrDesc::number("cap", 0)});
  kernel.input("x", DType::F32, {2}, {1, 2});
  kernel.output("y", DType::F32, {2});
  Status status = kernel.run();
  EXPECT_EQ(status.message(), "plan.fplan: program 'main' instruction 0: kernel 0 'softcap_0' "
                              "(kind 'softcap'): attribute 'cap' must be positive, got 0.000000");
}

//===----------------------------------------------------------------------===//
// Layout
//===----------------------------------------------------------------------===//

/// Row-major flat index of `index` in `shape`.
int64_t flatIndex(const std::vector<int64_t> &index, const std::vector<int64_t> &shape) {
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d)
    flat = flat * shape[d] + index[d];
  return flat;
}

/// Calls fn(index) for every multi-index of `shape` in row-major order.
void forEachIndex(const std::vector<int64_t> &shape,
                  const std::function<void(const std::vector<int64_t> &)> &fn) {
  int64_t total = 1;
  for (int64_t d : shape)
    total *= d;
  std::vector<int64_t> index(shape.size(), 0);
  for (int64_t i = 0; i < total; ++i) {
    int64_t rest = i;
    for (size_t d = shape.size(); d-- > 0;) {
      index[d] = rest % shape[d];
      rest /= shape[d];
    }
    fn(index);
  }
}

TEST(LayoutKernelTest, ReshapeCopiesBytesAndKeepsIntegers) {
  KernelCase kernel("reshape");
  std::vector<int64_t> ids = {5, -7, 1 << 30, 0, 42, -1};
  kernel.indexInput("x", DType::I32, {2, 3}, ids);
  kernel.output("y", DType::I32, {3, 1, 2});
  ASSERT_TRUE(kernel.run().ok());
  EXPECT_EQ(kernel.outputInts(0), ids);

  KernelCase bad("reshape");
  bad.indexInput("x", DType::I32, {2, 3}, ids);
  bad.output("y", DType::I32, {7});
  EXPECT_FALSE(bad.run().ok());
}

TEST(LayoutKernelTest, TransposeMatchesIndexPermutation) {
  const std::vector<int64_t> inShape = {2, 3, 4, 5}, perm = {0, 2, 3, 1};
  std::vector<int64_t> outShape;
  for (int64_t p : perm)
    outShape.push_back(inShape[p]);
  for (DType dtype : {DType::F32, DType::BF16}) {
    KernelCase kernel("transpose", {AttrDesc::intList("perm", perm)});
    kernel.input("x", dtype, inShape, uniformValues(120, 31));
    kernel.output("y", dtype, outShape);
    ASSERT_TRUE(kernel.run().ok());
    std::vector<double> x = kernel.inputValues(0);
    std::vector<double> expected(120);
    forEachIndex(outShape, [&](const std::vector<int64_t> &o) {
      std::vector<int64_t> in(4);
      for (size_t d = 0; d < 4; ++d)
        in[perm[d]] = o[d];
      expected[flatIndex(o, outShape)] = x[flatIndex(in, inShape)];
    });
    expectClose(kernel.outputFloats(0), expected, 0, 0, "transpose");
  }
  KernelCase notPermutation("transpose", {AttrDesc::intList("perm", {0, 2, 2, 1})});
  notPermutation.input("x", DType::F32, inShape, uniformValues(120, 31));
  notPermutation.output("y", DType::F32, outShape);
  EXPECT_EQ(notPermutation.run().message(),
            "plan.fplan: program 'main' instruction 0: kernel 0 'transpose_0' (kind "
            "'transpose'): attribute 'perm' [0,2,2,1] is not a permutation of 0..3");
}

TEST(LayoutKernelTest, SliceAndConcatAlongEveryDimension) {
  const std::vector<int64_t> shape = {3, 4, 5};
  for (int64_t dim = 0; dim < 3; ++dim) {
    int64_t start = 1, size = shape[dim] - 2;
    std::vector<int64_t> outShape = shape;
    outShape[dim] = size;
    KernelCase slice("slice", {AttrDesc::integer("dim", dim), AttrDesc::integer("start", start),
                               AttrDesc::integer("size", size)});
    slice.input("x", DType::F16, shape, uniformValues(60, 40 + dim));
    slice.output("y", DType::F16, outShape);
    ASSERT_TRUE(slice.run().ok()) << "dim " << dim;
    std::vector<double> x = slice.inputValues(0), expected;
    forEachIndex(outShape, [&](const std::vector<int64_t> &o) {
      std::vector<int64_t> in = o;
      in[dim] += start;
      expected.push_back(x[flatIndex(in, shape)]);
    });
    expectClose(slice.outputFloats(0), expected, 0, 0, "slice dim " + std::to_string(dim));

    // Three inputs of sizes 1, 2 and shape[dim] along dim.
    std::vector<int64_t> sizes = {1, 2, shape[dim]};
    KernelCase concat("concat", {AttrDesc::integer("dim", dim)});
    std::vector<std::vector<int64_t>> shapes;
    int64_t total = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::vector<int64_t> s = shape;
      s[dim] = sizes[i];
      shapes.push_back(s);
      int64_t n = s[0] * s[1] * s[2];
      concat.input("x" + std::to_string(i), DType::F32, s, uniformValues(n, 50 + i));
      total += sizes[i];
    }
    std::vector<int64_t> catShape = shape;
    catShape[dim] = total;
    concat.output("y", DType::F32, catShape);
    ASSERT_TRUE(concat.run().ok()) << "dim " << dim;
    std::vector<double> catExpected;
    forEachIndex(catShape, [&](const std::vector<int64_t> &o) {
      int64_t position = o[dim];
      size_t part = 0;
      while (position >= sizes[part])
        position -= sizes[part++];
      std::vector<int64_t> in = o;
      in[dim] = position;
      catExpected.push_back(concat.inputValues(part)[flatIndex(in, shapes[part])]);
    });
    expectClose(concat.outputFloats(0), catExpected, 0, 0, "concat dim " + std::to_string(dim));
  }
  KernelCase outOfRange("slice", {AttrDesc::integer("dim", 1), AttrDesc::integer("start", 3),
                                  AttrDesc::integer("size", 2)});
  outOfRange.input("x", DType::F32, shape, uniformValues(60, 1));
  outOfRange.output("y", DType::F32, {3, 2, 5});
  EXPECT_EQ(outOfRange.run().message(),
            "plan.fplan: program 'main' instruction 0: kernel 0 'slice_0' (kind 'slice'): slice "
            "[3, 3+2) does not fit dimension 1 of size 4");
  KernelCase mismatched("concat", {AttrDesc::integer("dim", 0)});
  mismatched.input("a", DType::F32, {1, 4}, uniformValues(4, 1));
  mismatched.input("b", DType::F32, {1, 5}, uniformValues(5, 1));
  mismatched.output("y", DType::F32, {2, 4});
  EXPECT_EQ(mismatched.run().message(),
            "plan.fplan: program 'main' instruction 0: kernel 0 'concat_0' (kind 'concat'): "
            "input 1 (buffer 1 'b', f32[1,5]) must match output 0 [2,4] in every dimension but 0");
}

TEST(LayoutKernelTest, BroadcastRepeatsUnmappedDimensions) {
  const std::vector<int64_t> inShape = {3, 4}, outShape = {2, 3, 5, 4}, dims = {1, 3};
  KernelCase kernel("broadcast", {AttrDesc::intList("dims", dims)});
  kernel.input("x", DType::BF16, inShape, uniformValues(12, 60));
  kernel.output("y", DType::BF16, outShape);
  ASSERT_TRUE(kernel.run().ok());
  std::vector<double> x = kernel.inputValues(0), expected;
  forEachIndex(outShape,
               [&](const std::vector<int64_t> &o) { expected.push_back(x[o[1] * 4 + o[3]]); });
  expectClose(kernel.outputFloats(0), expected, 0, 0, "broadcast");

  KernelCase wrongSize("broadcast", {AttrDesc::intList("dims", {2})});
  wrongSize.input("x", DType::F32, {4}, uniformValues(4, 1));
  wrongSize.output("y", DType::F32, {2, 16, 3});
  EXPECT_FALSE(wrongSize.run().ok());
  KernelCase notIncreasing("broadcast", {AttrDesc::intList("dims", {3, 1})});
  notIncreasing.input("x", DType::F32, {3, 4}, uniformValues(12, 1));
  notIncreasing.output("y", DType::F32, {2, 3, 5, 4});
  EXPECT_EQ(notIncreasing.run().message(),
            "plan.fplan: program 'main' instruction 0: kernel 0 'broadcast_0' (kind "
            "'broadcast'): attribute 'dims' [3,1] must be strictly increasing");
}

TEST(LayoutKernelTest, SumOverDimsMatchesFp64) {
  const std::vector<int64_t> shape = {3, 4, 5, 6};
  for (const std::vector<int64_t> &dims :
       {std::vector<int64_t>{0}, {1, 3}, {0, 2}, {3}, {0, 1, 2, 3}}) {
    std::vector<int64_t> outShape;
    for (int64_t d = 0; d < 4; ++d)
      if (std::find(dims.begin(), dims.end(), d) == dims.end())
        outShape.push_back(shape[d]);
    KernelCase kernel("sum", {AttrDesc::intList("dims", dims)});
    kernel.input("x", DType::F32, shape, uniformValues(360, 70));
    kernel.output("y", DType::F32, outShape);
    ASSERT_TRUE(kernel.run().ok()) << formatShape(dims);
    std::vector<double> x = kernel.inputValues(0);
    int64_t outCount = 1;
    for (int64_t d : outShape)
      outCount *= d;
    std::vector<double> expected(outCount, 0.0);
    forEachIndex(shape, [&](const std::vector<int64_t> &i) {
      std::vector<int64_t> kept;
      for (int64_t d = 0; d < 4; ++d)
        if (std::find(dims.begin(), dims.end(), d) == dims.end())
          kept.push_back(i[d]);
      expected[flatIndex(kept, outShape)] += x[flatIndex(i, shape)];
    });
    expectClose(kernel.outputFloats(0), expected, 1e-6, 1e-6, "sum " + formatShape(dims));
  }
  KernelCase wrongOut("sum", {AttrDesc::intList("dims", {1})});
  wrongOut.input("x", DType::F32, {3, 4}, uniformValues(12, 1));
  wrongOut.output("y", DType::F32, {4});
  EXPECT_EQ(wrongOut.run().message(),
            "plan.fplan: program 'main' instruction 0: kernel 0 'sum_0' (kind 'sum'): output 0 "
            "(buffer 1 'y', f32[4]) must have shape [3]");
}

//===----------------------------------------------------------------------===//
// matmul, norms, embedding, rope, causal conv
//===----------------------------------------------------------------------===//

struct MatmulCase {
  bool transA, transB, sharedB;
  DType dtype;
};

class MatmulKernelTest : public ::testing::TestWithParam<MatmulCase> {};

TEST_P(MatmulKernelTest, MatchesFp64) {
  const MatmulCase &p = GetParam();
  const int64_t b0 = 2, b1 = 3, m = 5, n = 7, k = 6;
  std::vector<AttrDesc> attrs;
  if (p.transA)
    attrs.push_back(AttrDesc::integer("transpose_a", 1));
  if (p.transB)
    attrs.push_back(AttrDesc::integer("transpose_b", 1));
  KernelCase kernel("matmul", attrs);
  std::vector<int64_t> aShape = {b0, b1, p.transA ? k : m, p.transA ? m : k};
  std::vector<int64_t> bShape = {p.transB ? n : k, p.transB ? k : n};
  if (!p.sharedB)
    bShape.insert(bShape.begin(), {b0, b1});
  int64_t bCount = (p.sharedB ? 1 : b0 * b1) * k * n;
  kernel.input("a", p.dtype, aShape, uniformValues(b0 * b1 * m * k, 80));
  kernel.input("b", p.dtype, bShape, uniformValues(bCount, 81));
  kernel.output("c", p.dtype, {b0, b1, m, n});
  Status status = kernel.run();
  ASSERT_TRUE(status.ok()) << status.toString();
  std::vector<double> a = kernel.inputValues(0), b = kernel.inputValues(1), expected;
  for (int64_t batch = 0; batch < b0 * b1; ++batch)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        const double *A = a.data() + batch * m * k;
        const double *B = b.data() + (p.sharedB ? 0 : batch * k * n);
        for (int64_t l = 0; l < k; ++l)
          acc +=
              (p.transA ? A[l * m + i] : A[i * k + l]) * (p.transB ? B[j * k + l] : B[l * n + j]);
        expected.push_back(acc);
      }
  expectClose(kernel.outputFloats(0), expected, tolFor(p.dtype), tolFor(p.dtype), "matmul");
}

INSTANTIATE_TEST_SUITE_P(Combinations, MatmulKernelTest,
                         ::testing::Values(MatmulCase{false, false, false, DType::F32},
                                           MatmulCase{true, false, false, DType::F32},
                                           MatmulCase{false, true, true, DType::F32},
                                           MatmulCase{true, true, true, DType::F32},
                                           MatmulCase{false, true, true, DType::BF16},
                                           MatmulCase{true, false, false, DType::F16}),
                         [](const auto &info) {
                           const MatmulCase &p = info.param;
                           return std::string(p.transA ? "AT" : "A") + (p.transB ? "BT" : "B") +
                                  (p.sharedB ? "_sharedB_" : "_batchedB_") + dtypeName(p.dtype);
                         });

TEST(MatmulKernelTest, RejectsMismatchedContraction) {
  KernelCase kernel("matmul", {AttrDesc::integer("transpose_b", 1)});
  kernel.input("a", DType::F32, {2, 4, 8}, uniformValues(64, 1));
  kernel.input("b", DType::F32, {3, 7}, uniformValues(21, 1));
  kernel.output("c", DType::F32, {2, 4, 3});
  EXPECT_EQ(kernel.run().message(),
            "plan.fplan: program 'main' instruction 0: kernel 0 'matmul_0' (kind 'matmul'): "
            "input 1 (b) (buffer 1 'b', f32[3,7]) has contraction size 7, but a has 8");
}

TEST(NormKernelTest, L2NormMatchesFp64) {
  for (DType dtype : {DType::F32, DType::BF16}) {
    KernelCase kernel("l2_norm", {AttrDesc::number("eps", 1e-6), AttrDesc::number("scale", 0.125)});
    kernel.input("x", dtype, {2, 3, 4, 32}, uniformValues(768, 90, -2, 2));
    kernel.output("y", dtype, {2, 3, 4, 32});
    ASSERT_TRUE(kernel.run().ok());
    std::vector<double> x = kernel.inputValues(0), expected(x.size());
    for (size_t r = 0; r < x.size() / 32; ++r) {
      double sumSquares = 0;
      for (size_t j = 0; j < 32; ++j)
        sumSquares += x[r * 32 + j] * x[r * 32 + j];
      for (size_t j = 0; j < 32; ++j)
        expected[r * 32 + j] = 0.125 * x[r * 32 + j] / std::sqrt(sumSquares + 1e-6);
    }
    expectClose(kernel.outputFloats(0), expected, tolFor(dtype), 1e-7, "l2_norm");
  }
}

TEST(EmbeddingKernelTest, GathersRowsOfTheTable) {
  const int64_t V = 11, D = 6;
  for (DType idType : {DType::I32, DType::I64}) {
    KernelCase kernel("embedding");
    kernel.input("table", DType::BF16, {V, D}, uniformValues(V * D, 100));
    std::vector<int64_t> ids = {3, 0, 10, 3, 7, 1};
    kernel.indexInput("ids", idType, {2, 3}, ids);
    kernel.output("out", DType::BF16, {2, 3, D});
    ASSERT_TRUE(kernel.run().ok());
    std::vector<double> table = kernel.inputValues(0), expected;
    for (int64_t id : ids)
      for (int64_t j = 0; j < D; ++j)
        expected.push_back(table[id * D + j]);
    expectClose(kernel.outputFloats(0), expected, 0, 0, "embedding");
  }
}

TEST(EmbeddingKernelTest, IdOutsideTheTableIsAnErrorNamingIdAndPosition) {
  for (int64_t bad : {11, -1}) {
    KernelCase kernel("embedding");
    kernel.input("table", DType::F32, {11, 4}, uniformValues(44, 1));
    kernel.indexInput("tokens", DType::I32, {2, 3}, {3, 0, 10, 3, bad, 1});
    kernel.output("out", DType::F32, {2, 3, 4});
    Status status = kernel.run("model.yaml:2:1");
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(status.message(),
              "plan.fplan: program 'main' instruction 0 (loc: model.yaml:2:1): kernel 0 "
              "'embedding_0' (kind 'embedding'): input 1 (ids) (buffer 1 'tokens', i32[2,3]) "
              "element 4 (index [1,1]) is " +
                  std::to_string(bad) + ", outside the table's rows [0, 11)");
  }
}

TEST(RopeKernelTest, RotatesInterleavedPairsOfTheLastRotaryDims) {
  const int64_t B = 2, T = 9, H = 3, d = 12, dr = 8;
  const double theta = 10000;
  for (DType dtype : {DType::F32, DType::BF16}) {
    KernelCase kernel("rope",
                      {AttrDesc::integer("rotary_dims", dr), AttrDesc::number("theta", theta)});
    kernel.input("x", dtype, {B, T, H, d}, uniformValues(B * T * H * d, 110));
    kernel.output("y", dtype, {B, T, H, d});
    ASSERT_TRUE(kernel.run().ok());
    std::vector<double> x = kernel.inputValues(0), expected = x;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < H; ++h) {
          int64_t base = ((b * T + t) * H + h) * d;
          for (int64_t k = 0; k < dr / 2; ++k) {
            double phi = t * std::pow(theta, -2.0 * k / dr);
            int64_t i = base + d - dr + 2 * k;
            expected[i] = x[i] * std::cos(phi) - x[i + 1] * std::sin(phi);
            expected[i + 1] = x[i] * std::sin(phi) + x[i + 1] * std::cos(phi);
          }
        }
    expectClose(kernel.outputFloats(0), expected, tolFor(dtype), tolFor(dtype) * 1e-1, "rope");
  }
  KernelCase odd("rope", {AttrDesc::integer("rotary_dims", 5), AttrDesc::number("theta", 1e4)});
  odd.input("x", DType::F32, {1, 2, 8}, uniformValues(16, 1));
  odd.output("y", DType::F32, {1, 2, 8});
  EXPECT_EQ(odd.run().message(),
            "plan.fplan: program 'main' instruction 0: kernel 0 'rope_0' (kind 'rope'): "
            "attribute 'rotary_dims' = 5 must be even, >= 2 and <= the last dimension 8");
}

TEST(CausalConv1dKernelTest, MatchesFp64) {
  const int64_t B = 2, T = 13, C = 7, K = 4;
  for (DType dtype : {DType::F32, DType::BF16}) {
    KernelCase kernel("causal_conv1d");
    kernel.input("x", dtype, {B, T, C}, uniformValues(B * T * C, 120));
    kernel.input("w", dtype, {C, K}, uniformValues(C * K, 121));
    kernel.output("y", dtype, {B, T, C});
    ASSERT_TRUE(kernel.run().ok());
    std::vector<double> x = kernel.inputValues(0), w = kernel.inputValues(1), expected;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < K; ++j)
            if (t - K + 1 + j >= 0)
              acc += w[c * K + j] * x[(b * T + t - K + 1 + j) * C + c];
          expected.push_back(acc);
        }
    expectClose(kernel.outputFloats(0), expected, tolFor(dtype), tolFor(dtype) * 0.1,
                "causal_conv1d");
  }
  KernelCase wrongRows("causal_conv1d");
  wrongRows.input("x", DType::F32, {1, 4, 3}, uniformValues(12, 1));
  wrongRows.input("w", DType::F32, {2, 4}, uniformValues(8, 1));
  wrongRows.output("y", DType::F32, {1, 4, 3});
  EXPECT_FALSE(wrongRows.run().ok());
}

TEST(KernelAttributeTest, MissingAndIllTypedAttributesAreNamed) {
  KernelCase missing("scale");
  missing.input("x", DType::F32, {2}, {1, 2});
  missing.output("y", DType::F32, {2});
  EXPECT_EQ(missing.run().message(),
            "plan.fplan: program 'main' instruction 0: kernel 0 'scale_0' (kind 'scale'): "
            "missing required attribute 'factor'");
  KernelCase wrongType("slice", {AttrDesc::number("dim", 0), AttrDesc::integer("start", 0),
                                 AttrDesc::integer("size", 1)});
  wrongType.input("x", DType::F32, {2}, {1, 2});
  wrongType.output("y", DType::F32, {1});
  EXPECT_EQ(wrongType.run().message(),
            "plan.fplan: program 'main' instruction 0: kernel 0 'slice_0' (kind 'slice'): "
            "attribute 'dim' must be an integer (Int), but it is of type Float");
  KernelCase notAList("transpose", {AttrDesc::integer("perm", 0)});
  notAList.input("x", DType::F32, {2}, {1, 2});
  notAList.output("y", DType::F32, {2});
  EXPECT_EQ(notAList.run().message(),
            "plan.fplan: program 'main' instruction 0: kernel 0 'transpose_0' (kind "
            "'transpose'): attribute 'perm' must be an integer list (Ints), but it is of type Int");
}

} // namespace
