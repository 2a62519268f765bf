//===- grad_kernels_test.cc - Backward kernels against finite differences ---===//
//
// Every backward kind of docs/op-kinds.md ("Training kinds", the autodiff rows) against
// central finite differences of its forward reference kernel: random inputs x, a random
// cotangent c for each forward output, and for a sample of coordinates i (all of them for
// small tensors)
//   fd_i = Σ_outputs ⟨c, f(x + h e_i) − f(x − h e_i)⟩ / (x_i⁺ − x_i⁻),
// where x_i^± are x_i ± h rounded to the storage type (the step actually taken), must match
// the grad kernel's dx_i. The checks run in f32 storage: the CPU backend has no f64 storage
// type, and its kernels load every float as fp32 whatever the storage, so f64 buffers would
// not make the forward any more accurate. With h = 1e-2 the truncation error (h²·f‴/6) and
// the forward's fp32 rounding noise (~1e-7·|f|/h per output) stay within ~3e-4 of the
// gradient's scale here, so the bound |fd − dx| ≤ 2e-3·|dx| + 2e-4·max|dx| holds with a
// margin of about 8× (measured) and rejects a wrong factor, a dropped term or a 2% error on
// every coordinate that matters; each check also requires a share of its samples to be such
// coordinates (|dx| > 10× the absolute term).
// Besides: attention with a window and GQA; GDN with T = 50 (not a multiple of chunk 16) and
// fewer key than value heads; softcap_ce / softcap_ce_grad against the unfused chain
// (matmul → softcap → cross_entropy; cross_entropy_grad → activation_grad → matmul) over
// several vocabulary tiles; ignored targets; bf16/f16 storage; thread-count independence;
// and the validation errors.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/kernel_test_util.h"

#include "runtime/src/cpu/thread_pool.h"
#include "runtime/src/numeric.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

//===----------------------------------------------------------------------===//
// Harness
//===----------------------------------------------------------------------===//

/// One operand of a launch: float values or integer ids.
struct Operand {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<float> values;
  std::vector<int64_t> ids;
  bool index = false;
};

uint64_t countOf(const std::vector<int64_t> &shape) {
  uint64_t n = 1;
  for (int64_t d : shape)
    n *= static_cast<uint64_t>(d);
  return n;
}

bool isIndex(DType dtype) { return dtype == DType::I32 || dtype == DType::I64; }

/// A one-kernel launch that can be re-run with modified inputs.
struct Launch {
  std::string kind;
  std::vector<AttrDesc> attrs;
  std::vector<Operand> ins, outs;

  explicit Launch(std::string k, std::vector<AttrDesc> a = {})
      : kind(std::move(k)), attrs(std::move(a)) {}

  Launch &in(std::string name, std::vector<int64_t> shape, std::vector<float> values,
             DType dtype = DType::F32) {
    ins.push_back({std::move(name), dtype, std::move(shape), std::move(values), {}, false});
    return *this;
  }
  Launch &idx(std::string name, std::vector<int64_t> shape, std::vector<int64_t> ids,
              DType dtype = DType::I32) {
    ins.push_back({std::move(name), dtype, std::move(shape), {}, std::move(ids), true});
    return *this;
  }
  Launch &out(std::string name, std::vector<int64_t> shape, DType dtype = DType::F32) {
    outs.push_back({std::move(name), dtype, std::move(shape), {}, {}, isIndex(dtype)});
    return *this;
  }

  KernelCase build() const {
    KernelCase kernel(kind, attrs);
    for (const Operand &op : ins) {
      if (op.index)
        kernel.indexInput(op.name, op.dtype, op.shape, op.ids);
      else
        kernel.input(op.name, op.dtype, op.shape, op.values);
    }
    for (const Operand &op : outs)
      kernel.output(op.name, op.dtype, op.shape);
    return kernel;
  }

  /// Runs on the CPU executor; on success fills `results` (index outputs as integers).
  Status tryRun(std::vector<std::vector<double>> *results = nullptr) const {
    KernelCase kernel = build();
    Status status = kernel.run();
    if (results) {
      results->clear();
      for (uint32_t i = 0; i < outs.size(); ++i) {
        if (!status.ok()) {
          results->emplace_back(countOf(outs[i].shape), 0.0);
        } else if (outs[i].index) {
          std::vector<int64_t> v = kernel.outputInts(i);
          results->emplace_back(v.begin(), v.end());
        } else {
          std::vector<float> v = kernel.outputFloats(i);
          results->emplace_back(v.begin(), v.end());
        }
      }
    }
    return status;
  }

  /// Runs the kernel, which must succeed; its outputs.
  std::vector<std::vector<double>> run() const {
    std::vector<std::vector<double>> results;
    Status status = tryRun(&results);
    EXPECT_TRUE(status.ok()) << kind << ": " << status.toString();
    return results;
  }

  /// Output bytes of a direct call with `pool` (null: single-threaded).
  std::vector<std::vector<uint8_t>> runDirect(cpu::ThreadPool *pool) const {
    KernelCase kernel = build();
    Status status = kernel.runDirect(pool);
    EXPECT_TRUE(status.ok()) << kind << ": " << status.toString();
    std::vector<std::vector<uint8_t>> bytes;
    for (uint32_t i = 0; i < outs.size(); ++i)
      bytes.push_back(kernel.outputBytes(i));
    return bytes;
  }
};

std::vector<double> toDouble(const std::vector<float> &values) {
  return std::vector<double>(values.begin(), values.end());
}

std::vector<float> toFloat(const std::vector<double> &values) {
  return std::vector<float>(values.begin(), values.end());
}

std::vector<int64_t> toInts(const std::vector<double> &values) {
  return std::vector<int64_t>(values.begin(), values.end());
}

struct FdOptions {
  double h = 1e-2;
  double rtol = 2e-3;
  /// Absolute tolerance as a fraction of max |analytic|.
  double atolFraction = 2e-4;
  size_t maxSamples = 48;
  /// Share of the samples whose |analytic| must exceed 10× the absolute tolerance.
  double minSignificant = 0.25;
  /// Forward outputs that must not change under the perturbation (selections, permutations).
  std::vector<size_t> stable;
};

/// Checks `analytic` (the gradient of Σ_o ⟨cotangents[o], forward_o⟩ with respect to float
/// input `input` of `forward`) against central differences on a sample of coordinates.
/// An empty cotangent leaves its output out of the sum.
void expectMatchesFiniteDifferences(const Launch &forward, size_t input,
                                    const std::vector<std::vector<double>> &cotangents,
                                    const std::vector<double> &analytic, const std::string &what,
                                    const FdOptions &opt = {}) {
  SCOPED_TRACE(what);
  const Operand &x = forward.ins.at(input);
  ASSERT_FALSE(x.index);
  ASSERT_EQ(analytic.size(), x.values.size());
  ASSERT_EQ(cotangents.size(), forward.outs.size());
  const std::vector<std::vector<double>> base = forward.run();
  for (size_t o = 0; o < cotangents.size(); ++o)
    if (!cotangents[o].empty())
      ASSERT_EQ(cotangents[o].size(), base[o].size()) << "cotangent " << o;
  const size_t n = x.values.size();
  std::vector<size_t> samples;
  if (n <= opt.maxSamples) {
    samples.resize(n);
    std::iota(samples.begin(), samples.end(), 0);
  } else {
    std::vector<float> u = uniformValues(opt.maxSamples, 1000 + n, 0, 1);
    for (float v : u)
      samples.push_back(std::min(n - 1, static_cast<size_t>(v * static_cast<float>(n))));
  }
  const double scale = maxAbs(analytic);
  const double atol = opt.atolFraction * scale;
  ASSERT_GT(scale, 0) << "the analytic gradient is identically zero";
  size_t significant = 0, failures = 0;
  for (size_t i : samples) {
    Launch plus = forward, minus = forward;
    const float xp = x.values[i] + static_cast<float>(opt.h);
    const float xm = x.values[i] - static_cast<float>(opt.h);
    plus.ins[input].values[i] = xp;
    minus.ins[input].values[i] = xm;
    const std::vector<std::vector<double>> fp = plus.run(), fm = minus.run();
    for (size_t o : opt.stable) {
      ASSERT_EQ(fp[o], base[o]) << "output " << o << " changed at +h on coordinate " << i;
      ASSERT_EQ(fm[o], base[o]) << "output " << o << " changed at -h on coordinate " << i;
    }
    double dot = 0;
    for (size_t o = 0; o < cotangents.size(); ++o)
      for (size_t e = 0; e < cotangents[o].size(); ++e)
        dot += cotangents[o][e] * (fp[o][e] - fm[o][e]);
    const double fd = dot / (static_cast<double>(xp) - static_cast<double>(xm));
    const double allowed = opt.rtol * std::abs(analytic[i]) + atol;
    if (std::abs(analytic[i]) > 10 * atol)
      ++significant;
    if (!(std::abs(fd - analytic[i]) <= allowed) && ++failures <= 5)
      ADD_FAILURE() << "coordinate " << i << ": analytic " << analytic[i]
                    << ", finite difference " << fd << " (allowed error " << allowed << ")";
  }
  EXPECT_EQ(failures, 0u) << failures << " of " << samples.size() << " sampled coordinates";
  EXPECT_GE(static_cast<double>(significant), opt.minSignificant * samples.size())
      << "too few sampled coordinates with a gradient well above the absolute tolerance";
}

/// The kernel-level message of a launch that must fail (the executor's prefix removed).
std::string errorOf(const Launch &launch) {
  Status status = launch.tryRun();
  if (status.ok())
    return "<ok>";
  const std::string &message = status.message();
  size_t kind = message.find("(kind '");
  size_t end = kind == std::string::npos ? kind : message.find("'): ", kind);
  return end == std::string::npos ? message : message.substr(end + 4);
}

#define EXPECT_ERROR(launch, text)                                                             \
  do {                                                                                         \
    std::string message_ = errorOf(launch);                                                    \
    EXPECT_NE(message_.find(text), std::string::npos) << "error: " << message_;                \
  } while (0)

/// Rows of `d` values with unit norm times `scale` (GDN's normalised q and k).
std::vector<float> unitRows(size_t rows, size_t d, uint64_t seed, float scale) {
  std::vector<float> values = uniformValues(rows * d, seed);
  for (size_t r = 0; r < rows; ++r) {
    double norm = 0;
    for (size_t j = 0; j < d; ++j)
      norm += values[r * d + j] * values[r * d + j];
    for (size_t j = 0; j < d; ++j)
      values[r * d + j] = static_cast<float>(values[r * d + j] * scale / std::sqrt(norm));
  }
  return values;
}

/// Random integers in [low, high).
std::vector<int64_t> randomInts(size_t n, uint64_t seed, int64_t low, int64_t high) {
  std::vector<float> u = uniformValues(n, seed, 0, 1);
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i)
    out[i] = std::min(high - 1, low + static_cast<int64_t>(u[i] * static_cast<float>(high - low)));
  return out;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

TEST(GradKernelTest, ActivationGradMatchesFiniteDifferences) {
  struct Fn {
    const char *name;
    double cap;
    float low, high;
  };
  for (Fn fn : {Fn{"silu", 0, -6, 6}, Fn{"sigmoid", 0, -5, 5}, Fn{"softplus", 0, -6, 6},
                Fn{"softcap", 3.0, -9, 9}}) {
    std::vector<float> x = uniformValues(40, 11, fn.low, fn.high);
    if (std::string(fn.name) == "softplus") { // the linear branch above 20
      x[0] = 22.5f;
      x[1] = 35.0f;
    }
    std::vector<float> dy = uniformValues(40, 12);
    std::vector<AttrDesc> forwardAttrs, attrs = {AttrDesc::string("fn", fn.name)};
    if (fn.cap > 0) {
      forwardAttrs.push_back(AttrDesc::number("cap", fn.cap));
      attrs.push_back(AttrDesc::number("cap", fn.cap));
    }
    Launch forward(fn.name, forwardAttrs);
    forward.in("x", {5, 8}, x).out("y", {5, 8});
    Launch grad("activation_grad", attrs);
    grad.in("x", {5, 8}, x).in("dy", {5, 8}, dy).out("dx", {5, 8});
    std::vector<double> dx = grad.run()[0];
    expectMatchesFiniteDifferences(forward, 0, {toDouble(dy)}, dx,
                                   std::string("activation_grad ") + fn.name);
    if (std::string(fn.name) == "softplus") {
      EXPECT_EQ(dx[0], static_cast<double>(dy[0])); // softplus′ = 1 above 20
      EXPECT_EQ(dx[1], static_cast<double>(dy[1]));
    }
  }
}

TEST(GradKernelTest, SwigluGradMatchesFiniteDifferences) {
  std::vector<float> gate = uniformValues(24, 21, -4, 4), up = uniformValues(24, 22, -2, 2);
  std::vector<float> dy = uniformValues(24, 23);
  Launch forward("swiglu");
  forward.in("gate", {4, 6}, gate).in("up", {4, 6}, up).out("y", {4, 6});
  Launch grad("swiglu_grad");
  grad.in("gate", {4, 6}, gate).in("up", {4, 6}, up).in("dy", {4, 6}, dy);
  grad.out("dgate", {4, 6}).out("dup", {4, 6});
  std::vector<std::vector<double>> g = grad.run();
  expectMatchesFiniteDifferences(forward, 0, {toDouble(dy)}, g[0], "swiglu_grad dgate");
  expectMatchesFiniteDifferences(forward, 1, {toDouble(dy)}, g[1], "swiglu_grad dup");
}

//===----------------------------------------------------------------------===//
// Normalisation, rope, embedding, slice
//===----------------------------------------------------------------------===//

TEST(GradKernelTest, RmsNormGradMatchesFiniteDifferences) {
  const std::vector<int64_t> shape = {3, 5, 16};
  std::vector<float> x = uniformValues(240, 31, -2, 2), w = uniformValues(16, 32, 0.5f, 1.5f);
  std::vector<float> dy = uniformValues(240, 33);
  Launch forward("rms_norm", {AttrDesc::number("eps", 1e-5)});
  forward.in("x", shape, x).in("w", {16}, w).out("y", shape);
  Launch grad("rms_norm_grad", {AttrDesc::number("eps", 1e-5)});
  grad.in("x", shape, x).in("w", {16}, w).in("dy", shape, dy);
  grad.out("dx", shape).out("dw", {16});
  std::vector<std::vector<double>> g = grad.run();
  expectMatchesFiniteDifferences(forward, 0, {toDouble(dy)}, g[0], "rms_norm_grad dx");
  expectMatchesFiniteDifferences(forward, 1, {toDouble(dy)}, g[1], "rms_norm_grad dw");
}

TEST(GradKernelTest, L2NormGradMatchesFiniteDifferences) {
  const std::vector<int64_t> shape = {4, 3, 8};
  std::vector<float> x = uniformValues(96, 41, -1, 1), dy = uniformValues(96, 42);
  std::vector<AttrDesc> attrs = {AttrDesc::number("eps", 1e-6), AttrDesc::number("scale", 0.35)};
  Launch forward("l2_norm", attrs);
  forward.in("x", shape, x).out("y", shape);
  Launch grad("l2_norm_grad", attrs);
  grad.in("x", shape, x).in("dy", shape, dy).out("dx", shape);
  expectMatchesFiniteDifferences(forward, 0, {toDouble(dy)}, grad.run()[0], "l2_norm_grad");
}

TEST(GradKernelTest, RopeGradIsTheInverseRotation) {
  const std::vector<int64_t> shape = {2, 7, 3, 10};
  std::vector<AttrDesc> attrs = {AttrDesc::integer("rotary_dims", 6),
                                 AttrDesc::number("theta", 100.0)};
  std::vector<float> x = uniformValues(420, 51), dy = uniformValues(420, 52);
  Launch forward("rope", attrs);
  forward.in("x", shape, x).out("y", shape);
  Launch grad("rope_grad", attrs);
  grad.in("dy", shape, dy).out("dx", shape);
  expectMatchesFiniteDifferences(forward, 0, {toDouble(dy)}, grad.run()[0], "rope_grad");
  // rope_grad(rope(x)) = x: the rotation is orthogonal; the 4 leading components pass through.
  Launch back("rope_grad", attrs);
  back.in("dy", shape, toFloat(forward.run()[0])).out("dx", shape);
  std::vector<double> roundTrip = back.run()[0];
  expectClose(toFloat(roundTrip), toDouble(x), 0, 1e-6, "rope_grad(rope(x))");
  for (size_t i = 0; i < 4; ++i)
    EXPECT_EQ(roundTrip[i], static_cast<double>(x[i]));
}

TEST(GradKernelTest, EmbeddingGradMatchesFiniteDifferences) {
  // Rows 4 and 10 are never used; row 2 is used three times.
  std::vector<int64_t> ids = {2, 0, 3, 2, 9, 1, 5, 6, 7, 8, 2, 0, 3, 1, 6};
  std::vector<float> table = uniformValues(66, 61), dy = uniformValues(90, 62);
  Launch forward("embedding");
  forward.in("table", {11, 6}, table).idx("ids", {3, 5}, ids).out("y", {3, 5, 6});
  Launch grad("embedding_grad");
  grad.idx("ids", {3, 5}, ids).in("dy", {3, 5, 6}, dy).out("dtable", {11, 6});
  std::vector<double> dtable = grad.run()[0];
  FdOptions opt;
  opt.maxSamples = 66;
  expectMatchesFiniteDifferences(forward, 0, {toDouble(dy)}, dtable, "embedding_grad", opt);
  for (int64_t j = 0; j < 6; ++j) {
    EXPECT_EQ(dtable[4 * 6 + j], 0.0);
    EXPECT_EQ(dtable[10 * 6 + j], 0.0);
    EXPECT_FLOAT_EQ(dtable[2 * 6 + j], dy[0 * 6 + j] + dy[3 * 6 + j] + dy[10 * 6 + j]);
  }
  // i64 ids give the same result.
  Launch wide("embedding_grad");
  wide.idx("ids", {3, 5}, ids, DType::I64).in("dy", {3, 5, 6}, dy).out("dtable", {11, 6});
  EXPECT_EQ(wide.run()[0], dtable);
}

TEST(GradKernelTest, SliceGradMatchesFiniteDifferencesOnEveryDim) {
  const std::vector<int64_t> inShape = {4, 6, 5};
  std::vector<float> x = uniformValues(120, 71);
  for (int64_t dim = 0; dim < 3; ++dim) {
    const int64_t start = 1, size = 2;
    std::vector<int64_t> outShape = inShape;
    outShape[dim] = size;
    std::vector<float> dy = uniformValues(countOf(outShape), 72 + dim);
    Launch forward("slice", {AttrDesc::integer("dim", dim), AttrDesc::integer("start", start),
                             AttrDesc::integer("size", size)});
    forward.in("x", inShape, x).out("y", outShape);
    Launch grad("slice_grad", {AttrDesc::integer("dim", dim), AttrDesc::integer("start", start)});
    grad.in("dy", outShape, dy).out("dx", inShape);
    std::vector<double> dx = grad.run()[0];
    FdOptions opt;
    opt.maxSamples = 120;
    opt.minSignificant = 0.2;
    expectMatchesFiniteDifferences(forward, 0, {toDouble(dy)}, dx,
                                   "slice_grad dim " + std::to_string(dim), opt);
    // Exact values: dy inside the range, 0 elsewhere.
    size_t inside = 0;
    for (int64_t a = 0; a < 4; ++a)
      for (int64_t b = 0; b < 6; ++b)
        for (int64_t c = 0; c < 5; ++c) {
          int64_t index[3] = {a, b, c};
          double value = dx[(a * 6 + b) * 5 + c];
          if (index[dim] < start || index[dim] >= start + size) {
            EXPECT_EQ(value, 0.0);
            continue;
          }
          index[dim] -= start;
          EXPECT_EQ(value, dy[(index[0] * outShape[1] + index[1]) * outShape[2] + index[2]]);
          ++inside;
        }
    EXPECT_EQ(inside, dy.size());
  }
}

//===----------------------------------------------------------------------===//
// Cross-entropy and the fused softcapped head
//===----------------------------------------------------------------------===//

TEST(GradKernelTest, CrossEntropyGradMatchesFiniteDifferences) {
  std::vector<float> logits = uniformValues(66, 81, -3, 3), dce = uniformValues(6, 82, 0.2f, 1);
  std::vector<int64_t> targets = {3, -1, 10, 0, -5, 7};
  Launch forward("cross_entropy");
  forward.in("logits", {6, 11}, logits).idx("targets", {6}, targets).out("loss", {6});
  Launch grad("cross_entropy_grad");
  grad.in("logits", {6, 11}, logits).idx("targets", {6}, targets).in("dce", {6}, dce);
  grad.out("dlogits", {6, 11});
  std::vector<double> dlogits = grad.run()[0];
  FdOptions opt;
  opt.maxSamples = 66;
  opt.minSignificant = 0.15;
  expectMatchesFiniteDifferences(forward, 0, {toDouble(dce)}, dlogits, "cross_entropy_grad", opt);
  for (int64_t row : {1, 4}) // ignored targets
    for (int64_t v = 0; v < 11; ++v)
      EXPECT_EQ(dlogits[row * 11 + v], 0.0);
  // Each kept row sums to 0 (softmax − onehot).
  double rowSum = 0;
  for (int64_t v = 0; v < 11; ++v)
    rowSum += dlogits[3 * 11 + v];
  EXPECT_NEAR(rowSum, 0.0, 1e-6);
}

/// logits = h·wᵀ through the matmul kernel.
std::vector<double> headLogits(const std::vector<float> &h, const std::vector<float> &w,
                               int64_t N, int64_t D, int64_t V) {
  Launch matmul("matmul", {AttrDesc::integer("transpose_b", 1)});
  matmul.in("h", {N, D}, h).in("w", {V, D}, w).out("logits", {N, V});
  return matmul.run()[0];
}

TEST(GradKernelTest, SoftcapCeEqualsUnfusedChain) {
  const int64_t N = 7, D = 16, V = 600; // tiles of 256, 256 and 88 columns
  std::vector<float> h = uniformValues(N * D, 91, -1.5f, 1.5f), w = uniformValues(V * D, 92);
  std::vector<int64_t> targets = {3, -1, 599, 256, 0, -1, 255};
  std::vector<float> dce = uniformValues(N, 93, 0.2f, 1.0f);
  for (double cap : {4.0, 0.0}) {
    SCOPED_TRACE("cap " + std::to_string(cap));
    Launch fused("softcap_ce", {AttrDesc::number("cap", cap)});
    fused.in("h", {N, D}, h).in("w", {V, D}, w).idx("targets", {N}, targets).out("ce", {N});
    std::vector<double> ce = fused.run()[0];
    // The chain: logits (matmul), z (softcap), ce (cross_entropy).
    std::vector<double> logits = headLogits(h, w, N, D, V), z = logits;
    if (cap > 0) {
      Launch softcap("softcap", {AttrDesc::number("cap", cap)});
      softcap.in("x", {N, V}, toFloat(logits)).out("z", {N, V});
      z = softcap.run()[0];
    }
    Launch crossEntropy("cross_entropy");
    crossEntropy.in("z", {N, V}, toFloat(z)).idx("targets", {N}, targets).out("ce", {N});
    std::vector<double> expected = crossEntropy.run()[0];
    expectClose(toFloat(ce), expected, 1e-5, 1e-5, "softcap_ce vs chain");
    EXPECT_EQ(ce[1], 0.0);
    EXPECT_EQ(ce[5], 0.0);
    EXPECT_GT(ce[0], 0.0);

    // Backward: cross_entropy_grad → activation_grad(softcap) → two matmuls.
    Launch fusedGrad("softcap_ce_grad", {AttrDesc::number("cap", cap)});
    fusedGrad.in("h", {N, D}, h).in("w", {V, D}, w).idx("targets", {N}, targets);
    fusedGrad.in("dce", {N}, dce).out("dh", {N, D}).out("dw", {V, D});
    std::vector<std::vector<double>> g = fusedGrad.run();
    Launch ceGrad("cross_entropy_grad");
    ceGrad.in("z", {N, V}, toFloat(z)).idx("targets", {N}, targets).in("dce", {N}, dce);
    ceGrad.out("dz", {N, V});
    std::vector<double> dl = ceGrad.run()[0];
    if (cap > 0) {
      Launch act("activation_grad",
                 {AttrDesc::string("fn", "softcap"), AttrDesc::number("cap", cap)});
      act.in("x", {N, V}, toFloat(logits)).in("dy", {N, V}, toFloat(dl)).out("dx", {N, V});
      dl = act.run()[0];
    }
    Launch dhChain("matmul");
    dhChain.in("dl", {N, V}, toFloat(dl)).in("w", {V, D}, w).out("dh", {N, D});
    Launch dwChain("matmul", {AttrDesc::integer("transpose_a", 1)});
    dwChain.in("dl", {N, V}, toFloat(dl)).in("h", {N, D}, h).out("dw", {V, D});
    std::vector<double> dh = dhChain.run()[0], dw = dwChain.run()[0];
    expectClose(toFloat(g[0]), dh, 1e-4, 1e-6 * maxAbs(dh), "softcap_ce_grad dh vs chain");
    expectClose(toFloat(g[1]), dw, 1e-4, 1e-6 * maxAbs(dw), "softcap_ce_grad dw vs chain");
    for (int64_t j = 0; j < D; ++j) {
      EXPECT_EQ(g[0][1 * D + j], 0.0);
      EXPECT_EQ(g[0][5 * D + j], 0.0);
    }
  }
}

// The plans' form of the head (fusion-lower-to-plan): logits by a gemm, then
// softcap_ce_rows / softcap_ce_rows_grad per block of rows (row offset into targets and dce),
// then dh = dℓ·w and dw = dℓᵀ·h. Blocks of 4 and 3 rows give the fused kernels' results, for
// a fixed shift (cap 4), a max shift (cap 50 > 43) and no cap.
TEST(GradKernelTest, SoftcapCeRowsEqualFusedHead) {
  const int64_t N = 7, D = 16, V = 600;
  std::vector<float> h = uniformValues(N * D, 91, -1.5f, 1.5f), w = uniformValues(V * D, 92);
  std::vector<int64_t> targets = {3, -1, 599, 256, 0, -1, 255};
  std::vector<float> dce = uniformValues(N, 93, 0.2f, 1.0f);
  std::vector<float> logits = toFloat(headLogits(h, w, N, D, V));
  for (double cap : {4.0, 50.0, 0.0}) {
    SCOPED_TRACE("cap " + std::to_string(cap));
    Launch fused("softcap_ce", {AttrDesc::number("cap", cap)});
    fused.in("h", {N, D}, h).in("w", {V, D}, w).idx("targets", {N}, targets).out("ce", {N});
    std::vector<double> ce = fused.run()[0];
    Launch fusedGrad("softcap_ce_grad", {AttrDesc::number("cap", cap)});
    fusedGrad.in("h", {N, D}, h).in("w", {V, D}, w).idx("targets", {N}, targets);
    fusedGrad.in("dce", {N}, dce).out("dh", {N, D}).out("dw", {V, D});
    std::vector<std::vector<double>> g = fusedGrad.run();

    std::vector<double> rowsCe, dl;
    for (auto [first, count] : {std::pair<int64_t, int64_t>{0, 4}, {4, 3}}) {
      std::vector<float> block(logits.begin() + first * V, logits.begin() + (first + count) * V);
      std::vector<AttrDesc> attrs = {AttrDesc::number("cap", cap),
                                     AttrDesc::integer("row", first)};
      Launch rows("softcap_ce_rows", attrs);
      rows.in("logits", {count, V}, block).idx("targets", {N}, targets).out("ce", {count});
      std::vector<double> part = rows.run()[0];
      rowsCe.insert(rowsCe.end(), part.begin(), part.end());
      Launch rowsGrad("softcap_ce_rows_grad", attrs);
      rowsGrad.in("logits", {count, V}, block).idx("targets", {N}, targets);
      rowsGrad.in("dce", {N}, dce).out("dlogits", {count, V});
      std::vector<double> dPart = rowsGrad.run()[0];
      dl.insert(dl.end(), dPart.begin(), dPart.end());
    }
    expectClose(toFloat(rowsCe), ce, 1e-6, 1e-6, "softcap_ce_rows vs softcap_ce");
    EXPECT_EQ(rowsCe[1], 0.0);
    EXPECT_EQ(rowsCe[5], 0.0);
    for (int64_t j = 0; j < V; ++j)
      ASSERT_EQ(dl[5 * V + j], 0.0) << "ignored row 5, column " << j;
    Launch dhGemm("matmul");
    dhGemm.in("dl", {N, V}, toFloat(dl)).in("w", {V, D}, w).out("dh", {N, D});
    Launch dwGemm("matmul", {AttrDesc::integer("transpose_a", 1)});
    dwGemm.in("dl", {N, V}, toFloat(dl)).in("h", {N, D}, h).out("dw", {V, D});
    std::vector<double> dh = dhGemm.run()[0], dw = dwGemm.run()[0];
    expectClose(toFloat(dh), g[0], 1e-5, 1e-6 * maxAbs(g[0]), "rows dh vs softcap_ce_grad");
    expectClose(toFloat(dw), g[1], 1e-5, 1e-6 * maxAbs(g[1]), "rows dw vs softcap_ce_grad");
  }
}

TEST(GradKernelTest, SoftcapCeRowsRejectBadOperands) {
  auto rows = [](std::vector<AttrDesc> attrs, DType logitsType, std::vector<int64_t> targets) {
    Launch l("softcap_ce_rows", std::move(attrs));
    l.in("logits", {2, 5}, uniformValues(10, 4), logitsType);
    const int64_t n = static_cast<int64_t>(targets.size());
    l.idx("targets", {n}, std::move(targets)).out("ce", {2});
    return l;
  };
  const AttrDesc cap = AttrDesc::number("cap", 3);
  EXPECT_ERROR(rows({cap, AttrDesc::integer("row", 3)}, DType::F32, {0, 1, 2, 3}),
               "attribute 'row' = 3 with 2 logit rows runs past the 4 targets");
  EXPECT_ERROR(rows({cap, AttrDesc::integer("row", -1)}, DType::F32, {0, 1, 2, 3}),
               "attribute 'row' = -1");
  EXPECT_ERROR(rows({cap}, DType::F32, {0, 1}), "row");
  EXPECT_ERROR(rows({cap, AttrDesc::integer("row", 0)}, DType::BF16, {0, 1}), "input 0 (logits)");
  // Only the block's targets are read, and each must be below V.
  EXPECT_ERROR(rows({cap, AttrDesc::integer("row", 1)}, DType::F32, {9, 0, 5}),
               "element 2 is 5, not below the vocabulary size 5");
  std::vector<std::vector<double>> out;
  EXPECT_TRUE(rows({cap, AttrDesc::integer("row", 1)}, DType::F32, {9, 0, 4}).tryRun(&out).ok());
  Launch grad("softcap_ce_rows_grad", {cap, AttrDesc::integer("row", 0)});
  grad.in("logits", {2, 5}, uniformValues(10, 4)).idx("targets", {2}, {0, 1});
  grad.in("dce", {3}, uniformValues(3, 5)).out("dlogits", {2, 5});
  EXPECT_ERROR(grad, "input 2 (dce)");
}

TEST(GradKernelTest, SoftcapCeGradMatchesFiniteDifferences) {
  struct Case {
    int64_t N, D, V;
    double cap;
  };
  for (Case c : {Case{5, 8, 300, 3.0}, Case{6, 8, 40, 2.0}, Case{6, 8, 40, 0.0}}) {
    SCOPED_TRACE("V " + std::to_string(c.V) + " cap " + std::to_string(c.cap));
    std::vector<float> h = uniformValues(c.N * c.D, 101, -1.5f, 1.5f);
    std::vector<float> w = uniformValues(c.V * c.D, 102);
    std::vector<int64_t> targets = randomInts(c.N, 103, 0, c.V);
    targets[1] = -1;
    std::vector<float> dce = uniformValues(c.N, 104, 0.2f, 1.0f);
    std::vector<AttrDesc> attrs = {AttrDesc::number("cap", c.cap)};
    Launch forward("softcap_ce", attrs);
    forward.in("h", {c.N, c.D}, h).in("w", {c.V, c.D}, w).idx("targets", {c.N}, targets);
    forward.out("ce", {c.N});
    Launch grad("softcap_ce_grad", attrs);
    grad.in("h", {c.N, c.D}, h).in("w", {c.V, c.D}, w).idx("targets", {c.N}, targets);
    grad.in("dce", {c.N}, dce).out("dh", {c.N, c.D}).out("dw", {c.V, c.D});
    std::vector<std::vector<double>> g = grad.run();
    FdOptions opt;
    opt.minSignificant = 0.2;
    expectMatchesFiniteDifferences(forward, 0, {toDouble(dce)}, g[0], "softcap_ce_grad dh", opt);
    // Most vocabulary rows of a wide head get small gradients (p ≈ 1/V): no share asked.
    opt.minSignificant = c.V > 100 ? 0.0 : 0.1;
    expectMatchesFiniteDifferences(forward, 1, {toDouble(dce)}, g[1], "softcap_ce_grad dw", opt);
  }
}

//===----------------------------------------------------------------------===//
// Sequence mixers
//===----------------------------------------------------------------------===//

struct AttentionCase {
  const char *name;
  int64_t B, H, G, T, dqk, dv;
  bool causal;
  int64_t window;
};

void PrintTo(const AttentionCase &c, std::ostream *os) { *os << c.name; }

class AttentionGradTest : public ::testing::TestWithParam<AttentionCase> {};

/// A case's attributes (scale 1/sqrt(d_qk), causal, window) and its q, k, v, o shapes.
struct AttentionSetup {
  std::vector<AttrDesc> attrs;
  std::vector<int64_t> qShape, kShape, vShape, oShape;
};

AttentionSetup attentionSetup(const AttentionCase &c) {
  AttentionSetup s;
  s.attrs = {AttrDesc::number("scale", 1.0 / std::sqrt(double(c.dqk)))};
  if (c.causal)
    s.attrs.push_back(AttrDesc::integer("causal", 1));
  if (c.window > 0)
    s.attrs.push_back(AttrDesc::integer("window", c.window));
  s.qShape = {c.B, c.H, c.T, c.dqk};
  s.kShape = {c.B, c.G, c.T, c.dqk};
  s.vShape = {c.B, c.G, c.T, c.dv};
  s.oShape = {c.B, c.H, c.T, c.dv};
  return s;
}

TEST_P(AttentionGradTest, MatchesFiniteDifferences) {
  const AttentionCase c = GetParam();
  const auto [attrs, qShape, kShape, vShape, oShape] = attentionSetup(c);
  std::vector<float> q = uniformValues(countOf(qShape), 111, -2, 2);
  std::vector<float> k = uniformValues(countOf(kShape), 112, -2, 2);
  std::vector<float> v = uniformValues(countOf(vShape), 113);
  std::vector<float> dout = uniformValues(countOf(oShape), 114);
  Launch forward("attention", attrs);
  forward.in("q", qShape, q).in("k", kShape, k).in("v", vShape, v).out("o", oShape);
  Launch grad("attention_grad", attrs);
  grad.in("q", qShape, q).in("k", kShape, k).in("v", vShape, v).in("do", oShape, dout);
  grad.out("dq", qShape).out("dk", kShape).out("dv", vShape);
  std::vector<std::vector<double>> g = grad.run();
  const char *names[] = {"dq", "dk", "dv"};
  for (size_t i = 0; i < 3; ++i)
    expectMatchesFiniteDifferences(forward, i, {toDouble(dout)}, g[i],
                                   std::string(c.name) + " " + names[i]);
}

// attention_lse writes attention's o and each row's log-sum-exp; attention_grad_lse, given
// them, gives attention_grad's gradients (P = exp(s − lse), delta = rowsum(dO ⊙ o)).
TEST_P(AttentionGradTest, SavedStatisticsMatchRecomputed) {
  const AttentionCase c = GetParam();
  const double scale = 1.0 / std::sqrt(double(c.dqk));
  const auto [attrs, qShape, kShape, vShape, oShape] = attentionSetup(c);
  const std::vector<int64_t> lseShape = {c.B, c.H, c.T};
  std::vector<float> q = uniformValues(countOf(qShape), 211, -2, 2);
  std::vector<float> k = uniformValues(countOf(kShape), 212, -2, 2);
  std::vector<float> v = uniformValues(countOf(vShape), 213);
  std::vector<float> dout = uniformValues(countOf(oShape), 214);
  Launch plain("attention", attrs);
  plain.in("q", qShape, q).in("k", kShape, k).in("v", vShape, v).out("o", oShape);
  Launch saving("attention_lse", attrs);
  saving.in("q", qShape, q).in("k", kShape, k).in("v", vShape, v).out("o", oShape);
  saving.out("lse", lseShape);
  const std::vector<std::vector<double>> o = plain.run(), saved = saving.run();
  EXPECT_EQ(saved[0], o[0]) << "attention_lse's o differs from attention's";
  // lse against a double-precision log-sum-exp over the allowed keys.
  const int64_t groupSize = c.H / c.G;
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t t = 0; t < c.T; ++t) {
        const int64_t g = h / groupSize;
        int64_t first = 0, last = c.T - 1;
        if (c.causal) {
          last = t;
          first = c.window > 0 ? std::max<int64_t>(0, t - c.window + 1) : 0;
        }
        double maxScore = -INFINITY;
        std::vector<double> scores;
        for (int64_t u = first; u <= last; ++u) {
          double dot = 0;
          for (int64_t d = 0; d < c.dqk; ++d)
            dot += double(q[((b * c.H + h) * c.T + t) * c.dqk + d]) *
                   double(k[((b * c.G + g) * c.T + u) * c.dqk + d]);
          scores.push_back(scale * dot);
          maxScore = std::max(maxScore, scale * dot);
        }
        double sum = 0;
        for (double s : scores)
          sum += std::exp(s - maxScore);
        const double expected = maxScore + std::log(sum);
        EXPECT_NEAR(saved[1][(b * c.H + h) * c.T + t], expected, 1e-5 * (1 + std::fabs(expected)))
            << "lse of row (" << b << ", " << h << ", " << t << ")";
      }
  Launch grad("attention_grad", attrs);
  grad.in("q", qShape, q).in("k", kShape, k).in("v", vShape, v).in("do", oShape, dout);
  grad.out("dq", qShape).out("dk", kShape).out("dv", vShape);
  Launch gradSaved("attention_grad_lse", attrs);
  gradSaved.in("q", qShape, q).in("k", kShape, k).in("v", vShape, v).in("do", oShape, dout);
  gradSaved.in("o", oShape, toFloat(saved[0])).in("lse", lseShape, toFloat(saved[1]));
  gradSaved.out("dq", qShape).out("dk", kShape).out("dv", vShape);
  const std::vector<std::vector<double>> expected = grad.run(), actual = gradSaved.run();
  const char *names[] = {"dq", "dk", "dv"};
  for (size_t i = 0; i < 3; ++i)
    for (size_t j = 0; j < expected[i].size(); ++j)
      ASSERT_NEAR(actual[i][j], expected[i][j], 1e-5 * (1 + std::fabs(expected[i][j])))
          << c.name << " " << names[i] << "[" << j << "]";
}

TEST(GradKernelTest, AttentionGradLseRejectsBadStatistics) {
  std::vector<AttrDesc> attrs = {AttrDesc::number("scale", 0.5), AttrDesc::integer("causal", 1)};
  const std::vector<int64_t> qShape = {1, 2, 4, 8}, kShape = {1, 1, 4, 8}, vShape = {1, 1, 4, 4};
  const std::vector<int64_t> oShape = {1, 2, 4, 4};
  auto launch = [&](std::vector<int64_t> lseShape, DType lseType) {
    Launch grad("attention_grad_lse", attrs);
    grad.in("q", qShape, std::vector<float>(8 * 8, 0.1f))
        .in("k", kShape, std::vector<float>(4 * 8, 0.2f))
        .in("v", vShape, std::vector<float>(4 * 4, 0.3f))
        .in("do", oShape, std::vector<float>(8 * 4, 0.4f))
        .in("o", oShape, std::vector<float>(8 * 4, 0.3f))
        .in("lse", lseShape, std::vector<float>(countOf(lseShape), 0.0f), lseType);
    grad.out("dq", qShape).out("dk", kShape).out("dv", vShape);
    return errorOf(grad);
  };
  EXPECT_NE(launch({1, 2, 3}, DType::F32).find("input 5 (lse)"), std::string::npos);
  EXPECT_NE(launch({1, 2, 4}, DType::BF16).find("input 5 (lse)"), std::string::npos);
  EXPECT_EQ(launch({1, 2, 4}, DType::F32), "<ok>");
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AttentionGradTest,
    ::testing::Values(AttentionCase{"window_gqa", 2, 4, 2, 9, 8, 6, true, 4},
                      AttentionCase{"causal_mqa", 1, 3, 1, 10, 4, 5, true, 0},
                      AttentionCase{"full", 1, 2, 2, 7, 6, 4, false, 0}),
    [](const ::testing::TestParamInfo<AttentionCase> &info) { return info.param.name; });

TEST(GradKernelTest, CausalConv1dGradMatchesFiniteDifferences) {
  const std::vector<int64_t> xShape = {2, 9, 5};
  std::vector<float> x = uniformValues(90, 121), w = uniformValues(20, 122);
  std::vector<float> dy = uniformValues(90, 123);
  Launch forward("causal_conv1d");
  forward.in("x", xShape, x).in("w", {5, 4}, w).out("y", xShape);
  Launch grad("causal_conv1d_grad");
  grad.in("x", xShape, x).in("w", {5, 4}, w).in("dy", xShape, dy);
  grad.out("dx", xShape).out("dw", {5, 4});
  std::vector<std::vector<double>> g = grad.run();
  FdOptions opt;
  opt.maxSamples = 90;
  expectMatchesFiniteDifferences(forward, 0, {toDouble(dy)}, g[0], "causal_conv1d_grad dx", opt);
  expectMatchesFiniteDifferences(forward, 1, {toDouble(dy)}, g[1], "causal_conv1d_grad dw", opt);
}

struct GdnCase {
  const char *name;
  int64_t B, T, Hk, H, dk, dh, chunk;
};

void PrintTo(const GdnCase &c, std::ostream *os) { *os << c.name; }

class GatedDeltaRuleGradTest : public ::testing::TestWithParam<GdnCase> {};

TEST_P(GatedDeltaRuleGradTest, MatchesFiniteDifferences) {
  const GdnCase c = GetParam();
  const std::vector<int64_t> qShape = {c.B, c.T, c.Hk, c.dk}, vShape = {c.B, c.T, c.H, c.dh};
  const std::vector<int64_t> gShape = {c.B, c.T, c.H};
  const size_t tokens = static_cast<size_t>(c.B * c.T);
  // Normalised q (times d_k^-1/2) and k as in the model, decays in [-0.5, -0.01], β in (0, 1).
  std::vector<float> q = unitRows(tokens * c.Hk, c.dk, 131, 1.0f / std::sqrt(float(c.dk)));
  std::vector<float> k = unitRows(tokens * c.Hk, c.dk, 132, 1.0f);
  std::vector<float> v = uniformValues(countOf(vShape), 133);
  std::vector<float> g = uniformValues(countOf(gShape), 134, -0.5f, -0.01f);
  std::vector<float> beta = uniformValues(countOf(gShape), 135, 0.1f, 0.9f);
  std::vector<float> dout = uniformValues(countOf(vShape), 136);
  std::vector<AttrDesc> attrs = {AttrDesc::integer("chunk_size", c.chunk)};
  Launch forward("gated_delta_rule", attrs);
  forward.in("q", qShape, q).in("k", qShape, k).in("v", vShape, v).in("g", gShape, g);
  forward.in("beta", gShape, beta).out("o", vShape);
  Launch grad("gated_delta_rule_grad", attrs);
  grad.in("q", qShape, q).in("k", qShape, k).in("v", vShape, v).in("g", gShape, g);
  grad.in("beta", gShape, beta).in("do", vShape, dout);
  grad.out("dq", qShape).out("dk", qShape).out("dv", vShape).out("dg", gShape);
  grad.out("dbeta", gShape);
  std::vector<std::vector<double>> grads = grad.run();
  const char *names[] = {"dq", "dk", "dv", "dg", "dbeta"};
  FdOptions opt;
  opt.maxSamples = 40;
  for (size_t i = 0; i < 5; ++i)
    expectMatchesFiniteDifferences(forward, i, {toDouble(dout)}, grads[i],
                                   std::string(c.name) + " " + names[i], opt);
  // The gradient does not depend on chunk_size (the reference backpropagates the recurrence).
  Launch other = grad;
  other.attrs = {AttrDesc::integer("chunk_size", c.chunk == 16 ? 64 : 16)};
  std::vector<std::vector<double>> again = other.run();
  for (size_t i = 0; i < 5; ++i)
    expectClose(toFloat(again[i]), grads[i], 1e-6, 1e-6, std::string("chunk-size ") + names[i]);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GatedDeltaRuleGradTest,
    ::testing::Values(GdnCase{"T50_C16_Hk1_H2", 1, 50, 1, 2, 8, 6, 16},
                      GdnCase{"B2_T20_Hk2_H4", 2, 20, 2, 4, 4, 3, 16},
                      GdnCase{"T37_C32_Hk2_H2", 1, 37, 2, 2, 6, 5, 32}),
    [](const ::testing::TestParamInfo<GdnCase> &info) { return info.param.name; });

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

TEST(GradKernelTest, MoeRouteGradMatchesFiniteDifferences) {
  const int64_t N = 6, E = 8, K = 3;
  const double rho = 2.5;
  // Each row: a permutation of evenly spaced logits (gaps of 6/7) plus a little noise, so
  // s^b = σ(ℓ) + b has gaps far above what the ±h perturbation can move.
  std::vector<float> logits = uniformValues(N * E, 141, -0.05f, 0.05f);
  for (int64_t n = 0; n < N; ++n) {
    std::vector<int64_t> order(E);
    std::iota(order.begin(), order.end(), 0);
    std::vector<float> keys = uniformValues(E, 150 + n, 0, 1);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return keys[a] < keys[b]; });
    for (int64_t e = 0; e < E; ++e)
      logits[n * E + order[e]] += -3.0f + 6.0f * static_cast<float>(e) / (E - 1);
  }
  std::vector<float> bias = uniformValues(E, 142, -0.005f, 0.005f);
  std::vector<float> dweights = uniformValues(N * K, 143);
  Launch forward("moe_route", {AttrDesc::integer("top_k", K), AttrDesc::integer("n_groups", 2),
                               AttrDesc::integer("n_limited_groups", 2),
                               AttrDesc::integer("group_topk", 2),
                               AttrDesc::number("route_scale", rho)});
  forward.in("logits", {N, E}, logits).in("bias", {E}, bias);
  forward.out("weights", {N, K}).out("indices", {N, K}, DType::I32).out("scores", {N, E});
  std::vector<std::vector<double>> routed = forward.run();
  Launch grad("moe_route_grad", {AttrDesc::number("route_scale", rho)});
  grad.in("scores", {N, E}, toFloat(routed[2])).idx("indices", {N, K}, toInts(routed[1]));
  grad.in("dweights", {N, K}, dweights).out("dlogits", {N, E});
  std::vector<double> dlogits = grad.run()[0];
  FdOptions opt;
  opt.stable = {1}; // the selection must not change under the perturbation
  opt.minSignificant = 0.2;
  expectMatchesFiniteDifferences(forward, 0, {toDouble(dweights), {}, {}}, dlogits,
                                 "moe_route_grad", opt);
  // Unselected experts get exactly 0.
  for (int64_t n = 0; n < N; ++n)
    for (int64_t e = 0; e < E; ++e) {
      bool selected = false;
      for (int64_t k = 0; k < K; ++k)
        selected |= routed[1][n * K + k] == e;
      if (!selected)
        EXPECT_EQ(dlogits[n * E + e], 0.0);
    }
  // K = 1 with normalisation: w = ρ is constant, so the router gets no gradient (MODEL.md §9).
  Launch single("moe_route_grad", {AttrDesc::number("route_scale", rho)});
  single.in("scores", {N, E}, toFloat(routed[2])).idx("indices", {N, 1}, randomInts(N, 144, 0, E));
  single.in("dweights", {N, 1}, uniformValues(N, 145)).out("dlogits", {N, E});
  std::vector<double> constant = single.run()[0];
  ASSERT_EQ(constant.size(), static_cast<size_t>(N * E));
  for (double value : constant)
    EXPECT_NEAR(value, 0.0, 1e-7);
}

TEST(GradKernelTest, MoeDispatchGradMatchesFiniteDifferences) {
  const int64_t N = 5, K = 2, D = 4, E = 4;
  std::vector<float> x = uniformValues(N * D, 151);
  std::vector<int64_t> indices = {3, 1, 0, 3, 2, 1, 1, 0, 3, 2};
  Launch forward("moe_dispatch", {AttrDesc::integer("num_experts", E)});
  forward.in("x", {N, D}, x).idx("indices", {N, K}, indices);
  forward.out("xs", {N * K, D}).out("group_sizes", {E}, DType::I32).out("perm", {N * K}, DType::I32);
  std::vector<std::vector<double>> dispatched = forward.run();
  std::vector<float> dxs = uniformValues(N * K * D, 152);
  Launch grad("moe_dispatch_grad");
  grad.in("dxs", {N * K, D}, dxs).idx("perm", {N * K}, toInts(dispatched[2])).out("dx", {N, D});
  std::vector<double> dx = grad.run()[0];
  FdOptions opt;
  opt.stable = {1, 2};
  expectMatchesFiniteDifferences(forward, 0, {toDouble(dxs), {}, {}}, dx, "moe_dispatch_grad",
                                 opt);
  // Direct: token 0 went to rows r(0,0), r(0,1) with perm[r] = 0·K + k.
  std::vector<int64_t> perm = toInts(dispatched[2]);
  for (int64_t j = 0; j < D; ++j) {
    double expected = 0;
    for (int64_t r = 0; r < N * K; ++r)
      if (perm[r] / K == 0)
        expected += dxs[r * D + j];
    EXPECT_FLOAT_EQ(dx[j], expected);
  }
}

TEST(GradKernelTest, MoeCombineGradMatchesFiniteDifferences) {
  const int64_t N = 5, K = 2, D = 4, E = 3;
  // The permutation of a real dispatch, so combine and its gradient use moe_dispatch's order.
  Launch dispatch("moe_dispatch", {AttrDesc::integer("num_experts", E)});
  dispatch.in("x", {N, D}, uniformValues(N * D, 160));
  dispatch.idx("indices", {N, K}, {2, 0, 1, 2, 0, 1, 2, 1, 0, 2});
  dispatch.out("xs", {N * K, D}).out("group_sizes", {E}, DType::I32).out("perm", {N * K}, DType::I32);
  std::vector<int64_t> perm = toInts(dispatch.run()[2]);
  std::vector<float> ys = uniformValues(N * K * D, 161), weights = uniformValues(N * K, 162, 0, 1);
  std::vector<float> dy = uniformValues(N * D, 163);
  Launch forward("moe_combine");
  forward.in("ys", {N * K, D}, ys).in("weights", {N, K}, weights).idx("perm", {N * K}, perm);
  forward.out("y", {N, D});
  Launch grad("moe_combine_grad");
  grad.in("ys", {N * K, D}, ys).in("weights", {N, K}, weights).idx("perm", {N * K}, perm);
  grad.in("dy", {N, D}, dy).out("dys", {N * K, D}).out("dweights", {N, K});
  std::vector<std::vector<double>> g = grad.run();
  expectMatchesFiniteDifferences(forward, 0, {toDouble(dy)}, g[0], "moe_combine_grad dys");
  expectMatchesFiniteDifferences(forward, 1, {toDouble(dy)}, g[1], "moe_combine_grad dweights");
}

TEST(GradKernelTest, GroupedMatmulGradMatchesFiniteDifferences) {
  const int64_t M = 9, Din = 5, E = 4, Dout = 3;
  std::vector<int64_t> sizes = {3, 0, 4, 1}; // an empty group and one row past the last group
  std::vector<float> xs = uniformValues(M * Din, 171), w = uniformValues(E * Dout * Din, 172);
  std::vector<float> dout = uniformValues(M * Dout, 173);
  Launch forward("grouped_matmul");
  forward.in("xs", {M, Din}, xs).in("w", {E, Dout, Din}, w).idx("group_sizes", {E}, sizes);
  forward.out("y", {M, Dout});
  Launch grad("grouped_matmul_grad");
  grad.in("xs", {M, Din}, xs).in("w", {E, Dout, Din}, w).idx("group_sizes", {E}, sizes);
  grad.in("dout", {M, Dout}, dout).out("dxs", {M, Din}).out("dw", {E, Dout, Din});
  std::vector<std::vector<double>> g = grad.run();
  FdOptions opt;
  opt.maxSamples = 60;
  expectMatchesFiniteDifferences(forward, 0, {toDouble(dout)}, g[0], "grouped_matmul_grad dxs",
                                 opt);
  expectMatchesFiniteDifferences(forward, 1, {toDouble(dout)}, g[1], "grouped_matmul_grad dw",
                                 opt);
  for (int64_t i = 0; i < Dout * Din; ++i)
    EXPECT_EQ(g[1][1 * Dout * Din + i], 0.0); // the empty group
  for (int64_t i = 0; i < Din; ++i)
    EXPECT_EQ(g[0][8 * Din + i], 0.0); // the row past the last group
}

TEST(GradKernelTest, MoeBalanceLossGradMatchesFiniteDifferences) {
  const int64_t N = 8, E = 6, K = 2, T = 4;
  std::vector<float> scores = uniformValues(N * E, 181, 0.05f, 0.95f);
  std::vector<int64_t> indices = {0, 1, 1, 2, 5, 0, 3, 4, 2, 2, 1, 0, 5, 4, 3, 1};
  const float dloss = 0.7f;
  Launch forward("moe_balance_loss", {AttrDesc::integer("seq_len", T)});
  forward.in("scores", {N, E}, scores).idx("indices", {N, K}, indices).out("loss", {});
  Launch grad("moe_balance_loss_grad", {AttrDesc::integer("seq_len", T)});
  grad.in("scores", {N, E}, scores).idx("indices", {N, K}, indices).in("dloss", {}, {dloss});
  grad.out("dscores", {N, E});
  FdOptions opt;
  expectMatchesFiniteDifferences(forward, 0, std::vector<std::vector<double>>{{dloss}},
                                 grad.run()[0], "moe_balance_loss_grad", opt);
}

//===----------------------------------------------------------------------===//
// Storage types and thread counts
//===----------------------------------------------------------------------===//

/// `values` rounded to `dtype` storage.
std::vector<float> rounded(DType dtype, std::vector<float> values) {
  for (float &v : values)
    v = roundTo(dtype, v);
  return values;
}

TEST(GradKernelTest, HalfStorageMatchesF32OnTheSameValues) {
  for (DType dtype : {DType::BF16, DType::F16}) {
    SCOPED_TRACE(dtype == DType::BF16 ? "bf16" : "f16");
    // rms_norm_grad: dx in the storage type, dw always f32.
    std::vector<float> x = rounded(dtype, uniformValues(64, 191, -2, 2));
    std::vector<float> w = rounded(dtype, uniformValues(16, 192, 0.5f, 1.5f));
    std::vector<float> dy = rounded(dtype, uniformValues(64, 193));
    auto rms = [&](DType storage) {
      Launch grad("rms_norm_grad", {AttrDesc::number("eps", 1e-5)});
      grad.in("x", {4, 16}, x, storage).in("w", {16}, w, storage).in("dy", {4, 16}, dy, storage);
      grad.out("dx", {4, 16}, storage).out("dw", {16});
      return grad.run();
    };
    std::vector<std::vector<double>> half = rms(dtype), full = rms(DType::F32);
    expectClose(toFloat(half[0]), full[0], 1e-2, 1e-3 * maxAbs(full[0]), "rms_norm_grad dx");
    expectClose(toFloat(half[1]), full[1], 1e-6, 1e-6, "rms_norm_grad dw (f32)");
    // attention_grad in half storage.
    std::vector<float> q = rounded(dtype, uniformValues(2 * 6 * 4, 194));
    std::vector<float> k = rounded(dtype, uniformValues(6 * 4, 195));
    std::vector<float> do_ = rounded(dtype, uniformValues(2 * 6 * 4, 196));
    auto attn = [&](DType storage) {
      Launch grad("attention_grad",
                  {AttrDesc::number("scale", 0.5), AttrDesc::integer("causal", 1)});
      grad.in("q", {1, 2, 6, 4}, q, storage).in("k", {1, 1, 6, 4}, k, storage);
      grad.in("v", {1, 1, 6, 4}, k, storage).in("do", {1, 2, 6, 4}, do_, storage);
      grad.out("dq", {1, 2, 6, 4}, storage).out("dk", {1, 1, 6, 4}, storage);
      grad.out("dv", {1, 1, 6, 4}, storage);
      return grad.run();
    };
    std::vector<std::vector<double>> halfA = attn(dtype), fullA = attn(DType::F32);
    for (size_t i = 0; i < 3; ++i)
      expectClose(toFloat(halfA[i]), fullA[i], 1e-2, 1e-3 * maxAbs(fullA[i]), "attention_grad");
  }
}

TEST(GradKernelTest, ResultsDoNotDependOnTheThreadCount) {
  std::vector<Launch> launches;
  {
    Launch l("rms_norm_grad", {AttrDesc::number("eps", 1e-5)});
    l.in("x", {300, 24}, uniformValues(7200, 201)).in("w", {24}, uniformValues(24, 202));
    l.in("dy", {300, 24}, uniformValues(7200, 203)).out("dx", {300, 24}).out("dw", {24});
    launches.push_back(l);
  }
  {
    Launch l("softcap_ce_grad", {AttrDesc::number("cap", 5.0)});
    l.in("h", {40, 8}, uniformValues(320, 204)).in("w", {700, 8}, uniformValues(5600, 205));
    l.idx("targets", {40}, randomInts(40, 206, -1, 700)).in("dce", {40}, uniformValues(40, 207));
    l.out("dh", {40, 8}).out("dw", {700, 8});
    launches.push_back(l);
  }
  {
    Launch l("embedding_grad");
    l.idx("ids", {200}, randomInts(200, 208, 0, 30)).in("dy", {200, 8}, uniformValues(1600, 209));
    l.out("dtable", {30, 8});
    launches.push_back(l);
  }
  {
    Launch l("gated_delta_rule_grad", {AttrDesc::integer("chunk_size", 16)});
    l.in("q", {2, 20, 2, 4}, unitRows(80, 4, 210, 0.5f)).in("k", {2, 20, 2, 4}, unitRows(80, 4, 211, 1));
    l.in("v", {2, 20, 4, 3}, uniformValues(480, 212));
    l.in("g", {2, 20, 4}, uniformValues(160, 213, -0.5f, 0));
    l.in("beta", {2, 20, 4}, uniformValues(160, 214, 0, 1));
    l.in("do", {2, 20, 4, 3}, uniformValues(480, 215));
    l.out("dq", {2, 20, 2, 4}).out("dk", {2, 20, 2, 4}).out("dv", {2, 20, 4, 3});
    l.out("dg", {2, 20, 4}).out("dbeta", {2, 20, 4});
    launches.push_back(l);
  }
  {
    Launch l("grouped_matmul_grad");
    l.in("xs", {50, 6}, uniformValues(300, 216)).in("w", {3, 4, 6}, uniformValues(72, 217));
    l.idx("group_sizes", {3}, {20, 0, 30}).in("dout", {50, 4}, uniformValues(200, 218));
    l.out("dxs", {50, 6}).out("dw", {3, 4, 6});
    launches.push_back(l);
  }
  cpu::ThreadPool pool(3);
  for (const Launch &launch : launches)
    EXPECT_EQ(launch.runDirect(nullptr), launch.runDirect(&pool)) << launch.kind;
}

//===----------------------------------------------------------------------===//
// Validation
//===----------------------------------------------------------------------===//

TEST(GradKernelTest, RejectsBadAttributes) {
  auto activation = [](std::vector<AttrDesc> attrs) {
    Launch l("activation_grad", std::move(attrs));
    l.in("x", {4}, uniformValues(4, 1)).in("dy", {4}, uniformValues(4, 2)).out("dx", {4});
    return l;
  };
  EXPECT_ERROR(activation({}), "missing required attribute 'fn'");
  EXPECT_ERROR(activation({AttrDesc::string("fn", "relu")}), "attribute 'fn' must be one of");
  EXPECT_ERROR(activation({AttrDesc::string("fn", "softcap")}), "missing required attribute 'cap'");
  EXPECT_ERROR(activation({AttrDesc::string("fn", "softcap"), AttrDesc::number("cap", 0)}),
               "attribute 'cap' must be positive");

  Launch rms("rms_norm_grad");
  rms.in("x", {2, 4}, uniformValues(8, 3)).in("w", {4}, uniformValues(4, 4));
  rms.in("dy", {2, 4}, uniformValues(8, 5)).out("dx", {2, 4}).out("dw", {4});
  EXPECT_ERROR(rms, "missing required attribute 'eps'");

  Launch l2("l2_norm_grad", {AttrDesc::number("eps", 0), AttrDesc::number("scale", 1)});
  l2.in("x", {2, 4}, uniformValues(8, 3)).in("dy", {2, 4}, uniformValues(8, 5)).out("dx", {2, 4});
  EXPECT_ERROR(l2, "attribute 'eps' must be positive");

  Launch rope("rope_grad", {AttrDesc::integer("rotary_dims", 3), AttrDesc::number("theta", 1e4)});
  rope.in("dy", {1, 2, 1, 4}, uniformValues(8, 6)).out("dx", {1, 2, 1, 4});
  EXPECT_ERROR(rope, "attribute 'rotary_dims' = 3 must be even");

  auto softcapCe = [](std::vector<AttrDesc> attrs) {
    Launch l("softcap_ce", std::move(attrs));
    l.in("h", {2, 4}, uniformValues(8, 7)).in("w", {5, 4}, uniformValues(20, 8));
    l.idx("targets", {2}, {1, -1}).out("ce", {2});
    return l;
  };
  EXPECT_ERROR(softcapCe({}), "missing required attribute 'cap'");
  EXPECT_ERROR(softcapCe({AttrDesc::number("cap", -1)}), "attribute 'cap' must be >= 0");
  EXPECT_EQ(errorOf(softcapCe({AttrDesc::number("cap", 0)})), "<ok>");

  auto attention = [](std::vector<AttrDesc> attrs) {
    Launch l("attention_grad", std::move(attrs));
    l.in("q", {1, 2, 3, 4}, uniformValues(24, 9)).in("k", {1, 1, 3, 4}, uniformValues(12, 10));
    l.in("v", {1, 1, 3, 4}, uniformValues(12, 11)).in("do", {1, 2, 3, 4}, uniformValues(24, 12));
    l.out("dq", {1, 2, 3, 4}).out("dk", {1, 1, 3, 4}).out("dv", {1, 1, 3, 4});
    return l;
  };
  EXPECT_ERROR(attention({AttrDesc::number("scale", 0.5), AttrDesc::integer("window", 2)}),
               "a window > 0 needs 'causal'");
  EXPECT_ERROR(attention({AttrDesc::integer("causal", 1)}), "missing required attribute 'scale'");

  Launch gdn("gated_delta_rule_grad", {AttrDesc::integer("chunk_size", 20)});
  gdn.in("q", {1, 3, 1, 2}, uniformValues(6, 13)).in("k", {1, 3, 1, 2}, uniformValues(6, 14));
  gdn.in("v", {1, 3, 2, 2}, uniformValues(12, 15)).in("g", {1, 3, 2}, uniformValues(6, 16));
  gdn.in("beta", {1, 3, 2}, uniformValues(6, 17)).in("do", {1, 3, 2, 2}, uniformValues(12, 18));
  gdn.out("dq", {1, 3, 1, 2}).out("dk", {1, 3, 1, 2}).out("dv", {1, 3, 2, 2});
  gdn.out("dg", {1, 3, 2}).out("dbeta", {1, 3, 2});
  EXPECT_ERROR(gdn, "attribute 'chunk_size' must be one of 16, 32, 64, 128, got 20");

  Launch route("moe_route_grad", {AttrDesc::number("route_scale", 0)});
  route.in("scores", {2, 4}, uniformValues(8, 19, 0, 1)).idx("indices", {2, 1}, {0, 3});
  route.in("dweights", {2, 1}, uniformValues(2, 20)).out("dlogits", {2, 4});
  EXPECT_ERROR(route, "attribute 'route_scale' must be positive");

  Launch balance("moe_balance_loss_grad", {AttrDesc::integer("seq_len", 3)});
  balance.in("scores", {4, 3}, uniformValues(12, 21, 0, 1)).idx("indices", {4, 1}, {0, 1, 2, 0});
  balance.in("dloss", {}, {1.0f}).out("dscores", {4, 3});
  EXPECT_ERROR(balance, "attribute 'seq_len' = 3 must be >= 1 and divide the 4 tokens");

  Launch slice("slice_grad", {AttrDesc::integer("dim", 1), AttrDesc::integer("start", 3)});
  slice.in("dy", {2, 2}, uniformValues(4, 22)).out("dx", {2, 4});
  EXPECT_ERROR(slice, "slice [3, 3+2) does not fit dimension 1 of size 4");
  Launch sliceDim("slice_grad", {AttrDesc::integer("dim", 2), AttrDesc::integer("start", 0)});
  sliceDim.in("dy", {2, 2}, uniformValues(4, 22)).out("dx", {2, 4});
  EXPECT_ERROR(sliceDim, "attribute 'dim' = 2 is outside [0, 2)");
  Launch sliceStart("slice_grad", {AttrDesc::integer("dim", 1)});
  sliceStart.in("dy", {2, 2}, uniformValues(4, 22)).out("dx", {2, 4});
  EXPECT_ERROR(sliceStart, "missing required attribute 'start'");
}

TEST(GradKernelTest, RejectsBadShapesAndDtypes) {
  Launch swiglu("swiglu_grad");
  swiglu.in("gate", {4}, uniformValues(4, 1)).in("up", {5}, uniformValues(5, 2));
  swiglu.in("dy", {4}, uniformValues(4, 3)).out("dgate", {4}).out("dup", {4});
  EXPECT_ERROR(swiglu, "input 1 (up) (buffer 1 'up', shape [5]) has 5 elements, expected 4");

  auto rms = [](std::vector<int64_t> wShape, DType dwType) {
    Launch l("rms_norm_grad", {AttrDesc::number("eps", 1e-5)});
    l.in("x", {2, 4}, uniformValues(8, 3)).in("w", wShape, uniformValues(countOf(wShape), 4));
    l.in("dy", {2, 4}, uniformValues(8, 5)).out("dx", {2, 4}).out("dw", wShape, dwType);
    return l;
  };
  EXPECT_ERROR(rms({5}, DType::F32), "input 1 (w) (buffer 1 'w', f32[5]) must have shape [4]");
  EXPECT_ERROR(rms({4}, DType::BF16), "output 1 (dw) (buffer 4 'dw') has dtype bf16; this "
                                      "kernel needs f32");

  Launch conv("causal_conv1d_grad");
  conv.in("x", {1, 5, 3}, uniformValues(15, 6)).in("w", {2, 4}, uniformValues(8, 7));
  conv.in("dy", {1, 5, 3}, uniformValues(15, 8)).out("dx", {1, 5, 3}).out("dw", {2, 4});
  EXPECT_ERROR(conv, "must have one row per channel of x (3)");

  Launch attention("attention_grad", {AttrDesc::number("scale", 0.5)});
  attention.in("q", {1, 2, 3, 4}, uniformValues(24, 9)).in("k", {1, 1, 3, 4}, uniformValues(12, 10));
  attention.in("v", {1, 1, 3, 4}, uniformValues(12, 11)).in("do", {1, 2, 3, 5}, uniformValues(30, 12));
  attention.out("dq", {1, 2, 3, 4}).out("dk", {1, 1, 3, 4}).out("dv", {1, 1, 3, 4});
  EXPECT_ERROR(attention, "input 3 (do) (buffer 3 'do', f32[1,2,3,5]) must have shape [1,2,3,4]");

  Launch gdn("gated_delta_rule_grad", {AttrDesc::integer("chunk_size", 16)});
  gdn.in("q", {1, 3, 2, 2}, uniformValues(12, 13)).in("k", {1, 3, 2, 2}, uniformValues(12, 14));
  gdn.in("v", {1, 3, 3, 2}, uniformValues(18, 15)).in("g", {1, 3, 3}, uniformValues(9, 16));
  gdn.in("beta", {1, 3, 3}, uniformValues(9, 17)).in("do", {1, 3, 3, 2}, uniformValues(18, 18));
  gdn.out("dq", {1, 3, 2, 2}).out("dk", {1, 3, 2, 2}).out("dv", {1, 3, 3, 2});
  gdn.out("dg", {1, 3, 3}).out("dbeta", {1, 3, 3});
  EXPECT_ERROR(gdn, "has 2 key heads, which must be >= 1 and divide the 3 value heads");

  Launch ce("cross_entropy_grad");
  ce.in("logits", {2, 3}, uniformValues(6, 19)).idx("targets", {2}, {0, 1});
  ce.in("dce", {3}, uniformValues(3, 20)).out("dlogits", {2, 3});
  EXPECT_ERROR(ce, "input 2 (dce) (buffer 2 'dce', f32[3]) must have shape [2]");

  Launch head("softcap_ce_grad", {AttrDesc::number("cap", 3)});
  head.in("h", {2, 4}, uniformValues(8, 21)).in("w", {5, 3}, uniformValues(15, 22));
  head.idx("targets", {2}, {1, 2}).in("dce", {2}, uniformValues(2, 23));
  head.out("dh", {2, 4}).out("dw", {5, 3});
  EXPECT_ERROR(head, "must be [V, D] with h's D = 4");
  Launch headOut("softcap_ce", {AttrDesc::number("cap", 3)});
  headOut.in("h", {2, 4}, uniformValues(8, 21)).in("w", {5, 4}, uniformValues(20, 22));
  headOut.idx("targets", {2}, {1, 2}).out("ce", {2}, DType::BF16);
  EXPECT_ERROR(headOut, "this kernel needs f32");

  Launch embedding("embedding_grad");
  embedding.idx("ids", {2, 3}, {0, 1, 2, 0, 1, 2}).in("dy", {2, 4}, uniformValues(8, 24));
  embedding.out("dtable", {5, 4});
  EXPECT_ERROR(embedding, "input 1 (dy) (buffer 1 'dy', f32[2,4]) must have shape [2,3,4]");

  Launch dispatch("moe_dispatch_grad");
  dispatch.in("dxs", {7, 2}, uniformValues(14, 25)).idx("perm", {7}, {0, 1, 2, 3, 4, 5, 6});
  dispatch.out("dx", {3, 2});
  EXPECT_ERROR(dispatch, "must have N·K rows for output 0's N = 3");

  Launch route("moe_route_grad", {AttrDesc::number("route_scale", 1)});
  route.in("scores", {2, 4}, uniformValues(8, 26, 0, 1)).idx("indices", {2, 2}, {0, 1, 2, 3});
  route.in("dweights", {2, 1}, uniformValues(2, 27)).out("dlogits", {2, 4});
  EXPECT_ERROR(route, "input 2 (dweights) (buffer 2 'dweights', f32[2,1]) must have shape [2,2]");

  Launch balance("moe_balance_loss_grad", {AttrDesc::integer("seq_len", 2)});
  balance.in("scores", {4, 3}, uniformValues(12, 28, 0, 1)).idx("indices", {4, 1}, {0, 1, 2, 0});
  balance.in("dloss", {2}, {1.0f, 2.0f}).out("dscores", {4, 3});
  EXPECT_ERROR(balance, "has 2 elements, expected 1");

  Launch gmm("grouped_matmul_grad");
  gmm.in("xs", {4, 2}, uniformValues(8, 29)).in("w", {2, 3, 2}, uniformValues(12, 30));
  gmm.idx("group_sizes", {2}, {3, 2}).in("dout", {4, 3}, uniformValues(12, 31));
  gmm.out("dxs", {4, 2}).out("dw", {2, 3, 2});
  EXPECT_ERROR(gmm, "element 1 is 2: group sizes must be >= 0 and sum to at most xs's 4 rows");
}

TEST(GradKernelTest, RejectsOutOfRangeIndices) {
  auto embedding = [](std::vector<int64_t> ids) {
    Launch l("embedding_grad");
    l.idx("ids", {3}, std::move(ids)).in("dy", {3, 2}, uniformValues(6, 1)).out("dtable", {4, 2});
    return l;
  };
  EXPECT_ERROR(embedding({0, 4, 1}), "element 1 is 4, outside the table's rows [0, 4)");
  EXPECT_ERROR(embedding({0, 1, -1}), "element 2 is -1, outside the table's rows [0, 4)");

  Launch ce("cross_entropy_grad");
  ce.in("logits", {2, 3}, uniformValues(6, 2)).idx("targets", {2}, {-1, 3});
  ce.in("dce", {2}, uniformValues(2, 3)).out("dlogits", {2, 3});
  EXPECT_ERROR(ce, "element 1 is 3, not below the vocabulary size 3");

  for (const char *kind : {"softcap_ce", "softcap_ce_grad"}) {
    Launch head(kind, {AttrDesc::number("cap", 3)});
    head.in("h", {2, 4}, uniformValues(8, 4)).in("w", {5, 4}, uniformValues(20, 5));
    head.idx("targets", {2}, {5, 0});
    if (std::string(kind) == "softcap_ce") {
      head.out("ce", {2});
    } else {
      head.in("dce", {2}, uniformValues(2, 6)).out("dh", {2, 4}).out("dw", {5, 4});
    }
    EXPECT_ERROR(head, "element 0 is 5, not below the vocabulary size 5");
  }

  Launch dispatch("moe_dispatch_grad");
  dispatch.in("dxs", {4, 2}, uniformValues(8, 7)).idx("perm", {4}, {0, 1, 1, 3});
  dispatch.out("dx", {2, 2});
  EXPECT_ERROR(dispatch, "is not a permutation: pair 1 appears at rows 1 and 2");

  Launch combine("moe_combine_grad");
  combine.in("ys", {4, 2}, uniformValues(8, 8)).in("weights", {2, 2}, uniformValues(4, 9));
  combine.idx("perm", {4}, {0, 4, 2, 3}).in("dy", {2, 2}, uniformValues(4, 10));
  combine.out("dys", {4, 2}).out("dweights", {2, 2});
  EXPECT_ERROR(combine, "element 1 is 4, outside [0, 4) (pair index)");

  Launch route("moe_route_grad", {AttrDesc::number("route_scale", 1)});
  route.in("scores", {2, 4}, uniformValues(8, 11, 0, 1)).idx("indices", {2, 1}, {0, 4});
  route.in("dweights", {2, 1}, uniformValues(2, 12)).out("dlogits", {2, 4});
  EXPECT_ERROR(route, "element 1 is 4, outside [0, 4) (expert index)");

  Launch balance("moe_balance_loss_grad", {AttrDesc::integer("seq_len", 2)});
  balance.in("scores", {2, 3}, uniformValues(6, 13, 0, 1)).idx("indices", {2, 1}, {-1, 0});
  balance.in("dloss", {}, {1.0f}).out("dscores", {2, 3});
  EXPECT_ERROR(balance, "element 0 is -1, outside [0, 3) (expert index)");

  Launch gmm("grouped_matmul_grad");
  gmm.in("xs", {4, 2}, uniformValues(8, 14)).in("w", {2, 3, 2}, uniformValues(12, 15));
  gmm.idx("group_sizes", {2}, {-1, 2}).in("dout", {4, 3}, uniformValues(12, 16));
  gmm.out("dxs", {4, 2}).out("dw", {2, 3, 2});
  EXPECT_ERROR(gmm, "element 0 is -1: group sizes must be >= 0");
}

} // namespace
