//===- optimizer_kernels_test.cc - step_control and the optimizer updates -===//
//
// The optimizer kinds of docs/op-kinds.md against values written out here: the WSD factor at
// the boundaries of the smoke schedule (linear and cosine), the clip scale and the skip flag;
// CautiousAdamW over two steps against hand-derived numbers and a double-precision reference
// (both weight-decay masks, the cautious update, the skip); NorMuon against a straightforward
// double re-implementation with the same bf16 rounding points (3×5, 6×4, stacked [2,4,3]),
// plus properties that need no tolerance argument (the sqrt(max(1, m/n)) shape factor from a
// transposed twin, the norm-preserving rescale and the row second moment from the Muon run of
// the same input, idle units, stacking independence, the skip); normuon_update as the plans
// run it (normuon_norm, normuon_prepare, the NS5 GEMMs, normuon_rows, normuon_finish) against
// the fused kernel (m < n, m > n, batched, Nesterov on/off, NorMuon/Muon, a skipped step) and
// its documented intermediates; the MoE bias dead band and
// window reset; in-place launches (state outputs = state inputs) and bad inputs.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/kernel_test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

/// Expects `status` to be an error whose message contains `fragment`.
void expectError(const Status &status, const std::string &fragment) {
  ASSERT_FALSE(status.ok()) << "expected an error containing: " << fragment;
  EXPECT_NE(status.message().find(fragment), std::string::npos) << status.message();
}

std::vector<float> toFloats(const std::vector<double> &values) {
  return std::vector<float>(values.begin(), values.end());
}

std::vector<double> toDoubles(const std::vector<float> &values) {
  return std::vector<double>(values.begin(), values.end());
}

/// ctl as step_control writes it (norm 3 is informational only).
std::vector<float> makeCtl(double f, double clip, double ok, double t, double s) {
  return {float(f), float(clip), float(ok), 3.0f, float(t), float(s), 0.0f, 0.0f};
}

/// A buffer of an in-place launch.
struct Buffer {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

/// Runs `kind` once on the CPU executor with every buffer as an input (in order) and the
/// buffers at positions `outputs` as its outputs — the very same buffers, as the optimizer's
/// plans launch the update kinds. Returns every buffer's contents after the run.
std::vector<std::vector<float>> runAliased(const std::string &kind,
                                           const std::vector<AttrDesc> &attrs,
                                           const std::vector<Buffer> &buffers,
                                           const std::vector<uint32_t> &outputs, Status &status) {
  PlanBuilder plan;
  std::vector<uint32_t> ids;
  for (const Buffer &buffer : buffers)
    ids.push_back(plan.addBuffer(buffer.name, DType::F32, buffer.shape));
  std::vector<uint32_t> outputIds;
  for (uint32_t position : outputs)
    outputIds.push_back(ids.at(position));
  uint32_t kernel = plan.addKernel(kind + "_0", kind, attrs);
  plan.addProgram("main").add(launchOp(kernel, ids, outputIds));
  auto loaded = Plan::loadBytes(plan.finish(), "plan.fplan");
  if (!loaded.ok()) {
    status = loaded.status();
    return {};
  }
  auto executor = createExecutor(*loaded, BackendKind::kCpu);
  if (!executor.ok()) {
    status = executor.status();
    return {};
  }
  for (uint32_t i = 0; i < buffers.size(); ++i) {
    status = (*executor)->writeBuffer(ids[i], buffers[i].values.data(),
                                      buffers[i].values.size() * sizeof(float));
    if (!status.ok())
      return {};
  }
  status = (*executor)->run("main");
  std::vector<std::vector<float>> contents;
  for (uint32_t i = 0; i < buffers.size(); ++i) {
    std::vector<uint8_t> bytes;
    Status read = (*executor)->readBuffer(ids[i], bytes);
    EXPECT_TRUE(read.ok()) << read.toString();
    std::vector<float> values(bytes.size() / sizeof(float));
    std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
    contents.push_back(std::move(values));
  }
  return contents;
}

//===----------------------------------------------------------------------===//
// step_control
//===----------------------------------------------------------------------===//

std::vector<AttrDesc> scheduleAttrs(int64_t warmup, int64_t stable, int64_t decay,
                                    const std::string &shape, double gradClip = 1.0,
                                    double minRatio = 0.1) {
  return {AttrDesc::integer("warmup_steps", warmup), AttrDesc::integer("stable_steps", stable),
          AttrDesc::integer("decay_steps", decay),   AttrDesc::number("min_lr_ratio", minRatio),
          AttrDesc::string("decay", shape),          AttrDesc::number("grad_clip", gradClip)};
}

/// The ctl of one step_control launch (empty on error, which fails the test).
std::vector<float> stepControl(const std::vector<AttrDesc> &attrs, int64_t s, int64_t t,
                               float loss, float sumSq) {
  KernelCase kernel("step_control", attrs);
  kernel.indexInput("step", DType::I32, {2}, {s, t});
  kernel.input("loss", DType::F32, {}, {loss});
  kernel.input("grad_sumsq", DType::F32, {}, {sumSq});
  kernel.output("ctl", DType::F32, {8});
  Status status = kernel.run();
  EXPECT_TRUE(status.ok()) << status.toString();
  return status.ok() ? kernel.outputFloats(0) : std::vector<float>(8, kNaN);
}

struct SchedulePoint {
  int64_t s;
  double f;
};

TEST(StepControlKernelTest, WsdLinearAtTheSmokeBoundaries) {
  // Smoke: total 100, warmup 0.1, stable 0.7 -> N_w = 10, N_st = 70, N_d = 20, r = 0.1.
  auto attrs = scheduleAttrs(10, 70, 20, "linear");
  for (SchedulePoint p : std::vector<SchedulePoint>{{0, 0.1},
                                                    {4, 0.5},
                                                    {9, 1.0},
                                                    {10, 1.0},
                                                    {79, 1.0},
                                                    {80, 1 - 0.9 / 20},
                                                    {89, 1 - 0.9 * 10 / 20},
                                                    {98, 1 - 0.9 * 19 / 20},
                                                    {99, 0.1},
                                                    {100, 0.1},
                                                    {150, 0.1}}) {
    std::vector<float> ctl = stepControl(attrs, p.s, p.s + 1, 2.5f, 0.25f);
    EXPECT_FLOAT_EQ(ctl[0], float(p.f)) << "f(" << p.s << ")";
    EXPECT_EQ(ctl[4], float(p.s + 1)) << "t";
    EXPECT_EQ(ctl[5], float(p.s)) << "s";
    EXPECT_EQ(ctl[6], 0.0f);
    EXPECT_EQ(ctl[7], 0.0f);
  }
}

TEST(StepControlKernelTest, WsdCosine) {
  auto attrs = scheduleAttrs(10, 70, 20, "cosine");
  for (SchedulePoint p :
       std::vector<SchedulePoint>{{0, 0.1},
                                  {9, 1.0},
                                  {79, 1.0},
                                  {80, 0.1 + 0.9 * (1 + std::cos(kPi / 20)) / 2},
                                  {84, 0.1 + 0.9 * (1 + std::cos(kPi * 5 / 20)) / 2},
                                  {89, 0.55},
                                  {99, 0.1},
                                  {150, 0.1}}) {
    std::vector<float> ctl = stepControl(attrs, p.s, 1, 2.5f, 0.25f);
    EXPECT_FLOAT_EQ(ctl[0], float(p.f)) << "f(" << p.s << ")";
  }
  // `scheduler: cosine` (MODEL.md §13): N_st = 0, N_d = N_tot − N_w.
  auto plainCosine = scheduleAttrs(5, 0, 15, "cosine", 1.0, 0.2);
  EXPECT_FLOAT_EQ(stepControl(plainCosine, 4, 1, 1, 0)[0], 1.0f);
  EXPECT_FLOAT_EQ(stepControl(plainCosine, 5, 1, 1, 0)[0],
                  float(0.2 + 0.8 * (1 + std::cos(kPi / 15)) / 2));
  EXPECT_FLOAT_EQ(stepControl(plainCosine, 19, 1, 1, 0)[0], 0.2f);
}

TEST(StepControlKernelTest, EmptyWarmupAndStablePhases) {
  auto attrs = scheduleAttrs(0, 0, 4, "linear");
  EXPECT_FLOAT_EQ(stepControl(attrs, 0, 1, 1, 0)[0], 0.775f); // 1 − 0.9·1/4
  EXPECT_FLOAT_EQ(stepControl(attrs, 2, 1, 1, 0)[0], 0.325f); // 1 − 0.9·3/4
  EXPECT_FLOAT_EQ(stepControl(attrs, 3, 1, 1, 0)[0], 0.1f);
  auto noStable = scheduleAttrs(2, 0, 2, "linear");
  EXPECT_FLOAT_EQ(stepControl(noStable, 1, 1, 1, 0)[0], 1.0f);
  EXPECT_FLOAT_EQ(stepControl(noStable, 2, 1, 1, 0)[0], 0.55f);
}

TEST(StepControlKernelTest, ClipScale) {
  auto clip1 = scheduleAttrs(10, 70, 20, "linear", 1.0);
  std::vector<float> ctl = stepControl(clip1, 3, 4, 2.5f, 4.0f); // norm 2 > 1
  EXPECT_FLOAT_EQ(ctl[1], float(1.0 / (2.0 + 1e-6)));
  EXPECT_EQ(ctl[2], 1.0f);
  EXPECT_EQ(ctl[3], 2.0f);
  EXPECT_FLOAT_EQ(ctl[0], 0.4f);
  EXPECT_EQ(stepControl(clip1, 3, 4, 2.5f, 0.25f)[1], 1.0f) << "norm 0.5 is below the clip";
  EXPECT_EQ(stepControl(clip1, 3, 4, 2.5f, 1.0f)[1], 1.0f) << "norm = clip is not clipped";
  std::vector<float> half = stepControl(scheduleAttrs(10, 70, 20, "linear", 0.5), 3, 4, 1, 9);
  EXPECT_FLOAT_EQ(half[1], float(0.5 / (3.0 + 1e-6)));
  EXPECT_EQ(half[3], 3.0f);
  for (double off : {0.0, -1.0}) {
    std::vector<float> ctlOff = stepControl(scheduleAttrs(10, 70, 20, "linear", off), 3, 4, 1, 100);
    EXPECT_EQ(ctlOff[1], 1.0f) << "grad_clip " << off << " is off";
    EXPECT_EQ(ctlOff[3], 10.0f);
    EXPECT_EQ(ctlOff[2], 1.0f);
  }
}

TEST(StepControlKernelTest, OkFlagNeedsFiniteLossAndNorm) {
  auto attrs = scheduleAttrs(10, 70, 20, "linear");
  EXPECT_EQ(stepControl(attrs, 3, 4, 2.5f, 4.0f)[2], 1.0f);
  EXPECT_EQ(stepControl(attrs, 3, 4, kNaN, 4.0f)[2], 0.0f) << "NaN loss";
  EXPECT_EQ(stepControl(attrs, 3, 4, kInf, 4.0f)[2], 0.0f) << "inf loss";
  EXPECT_EQ(stepControl(attrs, 3, 4, -kInf, 4.0f)[2], 0.0f) << "-inf loss";
  EXPECT_EQ(stepControl(attrs, 3, 4, 2.5f, kNaN)[2], 0.0f) << "NaN norm";
  std::vector<float> infNorm = stepControl(attrs, 85, 80, 2.5f, kInf);
  EXPECT_EQ(infNorm[2], 0.0f) << "inf norm";
  EXPECT_EQ(infNorm[3], kInf);
  // A skipped step still reports the schedule and the counters (they advance anyway).
  EXPECT_FLOAT_EQ(infNorm[0], float(1 - 0.9 * 6 / 20));
  EXPECT_EQ(infNorm[4], 80.0f);
  EXPECT_EQ(infNorm[5], 85.0f);
}

TEST(StepControlKernelTest, BadLaunchesAreErrors) {
  auto run = [](std::vector<AttrDesc> attrs, DType stepType, std::vector<int64_t> stepShape,
                std::vector<int64_t> lossShape, std::vector<int64_t> ctlShape,
                int64_t s = 3) {
    KernelCase kernel("step_control", std::move(attrs));
    std::vector<int64_t> step(stepShape.empty() ? 1 : stepShape[0], 1);
    step[0] = s;
    if (stepType == DType::F32)
      kernel.input("step", DType::F32, stepShape, std::vector<float>(step.size(), 1));
    else
      kernel.indexInput("step", stepType, stepShape, step);
    kernel.input("loss", DType::F32, lossShape,
                 std::vector<float>(lossShape.empty() ? 1 : lossShape[0], 1));
    kernel.input("grad_sumsq", DType::F32, {}, {1});
    kernel.output("ctl", DType::F32, ctlShape);
    return kernel.run();
  };
  auto good = scheduleAttrs(10, 70, 20, "linear");
  EXPECT_TRUE(run(good, DType::I32, {2}, {}, {8}).ok());
  auto without = [&](const std::string &name) {
    std::vector<AttrDesc> attrs;
    for (const AttrDesc &attr : good)
      if (attr.name != name)
        attrs.push_back(attr);
    return attrs;
  };
  expectError(run(without("decay"), DType::I32, {2}, {}, {8}),
              "missing required attribute 'decay'");
  expectError(run(without("grad_clip"), DType::I32, {2}, {}, {8}),
              "missing required attribute 'grad_clip'");
  expectError(run(without("warmup_steps"), DType::I32, {2}, {}, {8}),
              "missing required attribute 'warmup_steps'");
  expectError(run(scheduleAttrs(10, 70, 20, "step"), DType::I32, {2}, {}, {8}),
              "attribute 'decay' must be \"linear\" or \"cosine\"");
  expectError(run(scheduleAttrs(10, 70, 0, "linear"), DType::I32, {2}, {}, {8}),
              "attribute 'decay_steps' must be in [1,");
  expectError(run(scheduleAttrs(-1, 70, 20, "linear"), DType::I32, {2}, {}, {8}),
              "attribute 'warmup_steps' must be in [0,");
  expectError(run(scheduleAttrs(10, 70, 20, "linear", 1.0, 1.5), DType::I32, {2}, {}, {8}),
              "attribute 'min_lr_ratio' must be in [0, 1], got 1.5");
  expectError(run(good, DType::F32, {2}, {}, {8}), "has dtype f32; this kernel needs i32");
  expectError(run(good, DType::I64, {2}, {}, {8}), "has dtype i64; this kernel needs i32");
  expectError(run(good, DType::I32, {3}, {}, {8}), "must have shape [2]");
  expectError(run(good, DType::I32, {2}, {2}, {8}), "input 1 (loss)");
  expectError(run(good, DType::I32, {2}, {}, {7}), "output 0 (ctl)");
  expectError(run(good, DType::I32, {2}, {}, {8}, -1), "(s, t) = (-1, 1)");

  KernelCase twoInputs("step_control", good);
  twoInputs.indexInput("step", DType::I32, {2}, {0, 1});
  twoInputs.input("loss", DType::F32, {}, {1});
  twoInputs.output("ctl", DType::F32, {8});
  expectError(twoInputs.run(), "expects 3 input(s) and 1 output(s), got 2 and 1");
}

//===----------------------------------------------------------------------===//
// adamw_update
//===----------------------------------------------------------------------===//

struct AdamParams {
  double lr = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weightDecay = 0.1;
  bool cautiousWd = true;
  std::string mode = "grad";
  bool cautiousUpdate = false;

  std::vector<AttrDesc> attrs() const {
    std::vector<AttrDesc> out = {AttrDesc::number("lr", lr),       AttrDesc::number("beta1", beta1),
                                 AttrDesc::number("beta2", beta2), AttrDesc::number("eps", eps),
                                 AttrDesc::number("weight_decay", weightDecay),
                                 AttrDesc::integer("cautious_wd", cautiousWd ? 1 : 0),
                                 AttrDesc::integer("cautious_update", cautiousUpdate ? 1 : 0)};
    if (cautiousWd)
      out.push_back(AttrDesc::string("cautious_wd_mode", mode));
    return out;
  }
};

struct State {
  std::vector<double> w, m, v;
};

/// MODEL.md §12 CautiousAdamW in double, written from the formula.
State adamwReference(const AdamParams &p, const std::vector<double> &rawGrad,
                     const std::vector<float> &ctl, State state) {
  const size_t n = rawGrad.size();
  const double eta = p.lr * ctl[0], t = ctl[4];
  std::vector<double> g(n), u(n);
  for (size_t i = 0; i < n; ++i) {
    g[i] = ctl[1] * rawGrad[i];
    state.m[i] = p.beta1 * state.m[i] + (1 - p.beta1) * g[i];
    state.v[i] = p.beta2 * state.v[i] + (1 - p.beta2) * g[i] * g[i];
    double mHat = state.m[i] / (1 - std::pow(p.beta1, t));
    double vHat = state.v[i] / (1 - std::pow(p.beta2, t));
    u[i] = mHat / (std::sqrt(vHat) + p.eps);
  }
  if (p.cautiousUpdate) {
    double agree = 0;
    for (size_t i = 0; i < n; ++i)
      agree += u[i] * g[i] > 0 ? 1 : 0;
    for (size_t i = 0; i < n; ++i)
      u[i] = u[i] * g[i] > 0 ? u[i] * double(n) / (agree + 1) : 0;
  }
  for (size_t i = 0; i < n; ++i) {
    double w = state.w[i], mask = 1;
    if (p.cautiousWd)
      mask = p.mode == "grad" ? (g[i] * w > 0 ? 1 : 0) : (u[i] * w >= 0 ? 1 : 0);
    state.w[i] = w - eta * p.weightDecay * mask * w - eta * u[i];
  }
  return state;
}

/// One adamw_update launch on separate output buffers; returns (w, m, v).
StatusOr<State> runAdamw(const AdamParams &p, const std::vector<int64_t> &shape,
                         const std::vector<float> &g, const std::vector<float> &ctl,
                         const State &in) {
  KernelCase kernel("adamw_update", p.attrs());
  kernel.input("g", DType::F32, shape, g);
  kernel.input("ctl", DType::F32, {8}, ctl);
  kernel.input("w", DType::F32, shape, toFloats(in.w));
  kernel.input("m", DType::F32, shape, toFloats(in.m));
  kernel.input("v", DType::F32, shape, toFloats(in.v));
  kernel.output("w_out", DType::F32, shape);
  kernel.output("m_out", DType::F32, shape);
  kernel.output("v_out", DType::F32, shape);
  FUSION_RETURN_IF_ERROR(kernel.run());
  return State{toDoubles(kernel.outputFloats(0)), toDoubles(kernel.outputFloats(1)),
               toDoubles(kernel.outputFloats(2))};
}

/// The hand example: zero state, t = 1, clip 0.5, f = 0.5 (η = 0.05), λ = 0.1.
const std::vector<float> kHandGrad = {1, -4, 0.5f, -2}; // clipped: 0.5, −2, 0.25, −1
const State kHandState = {{1, 1, -0.5, -0.5}, {0, 0, 0, 0}, {0, 0, 0, 0}};

TEST(AdamwKernelTest, FirstStepByHand) {
  // From zero moments m̂ = g and v̂ = g², so u = g/(|g| + ε) = ±1 (to 5e-8).
  const std::vector<float> ctl = makeCtl(0.5, 0.5, 1, 1, 0);
  AdamParams p;
  auto grad = runAdamw(p, {4}, kHandGrad, ctl, kHandState);
  ASSERT_TRUE(grad.ok()) << grad.status().toString();
  // mask 1[g·W > 0] = [1, 0, 0, 1]: W − 0.005·[1, 0, 0, −0.5] − 0.05·[1, −1, 1, −1].
  expectClose(toFloats(grad->w), {0.945, 1.05, -0.55, -0.4475}, 1e-7, 0, "w (mode grad)");
  expectClose(toFloats(grad->m), {0.05, -0.2, 0.025, -0.1}, 1e-7, 0, "m");
  expectClose(toFloats(grad->v), {0.0125, 0.2, 0.003125, 0.05}, 1e-7, 0, "v");

  p.cautiousWd = false; // mask 1 everywhere
  auto plain = runAdamw(p, {4}, kHandGrad, ctl, kHandState);
  ASSERT_TRUE(plain.ok());
  expectClose(toFloats(plain->w), {0.945, 1.045, -0.5475, -0.4475}, 1e-7, 0, "w (no mask)");

  p.cautiousWd = true;
  p.cautiousUpdate = true; // φ = 1 everywhere: u·4/(4+1)
  auto cautious = runAdamw(p, {4}, kHandGrad, ctl, kHandState);
  ASSERT_TRUE(cautious.ok());
  expectClose(toFloats(cautious->w), {0.955, 1.04, -0.54, -0.4575}, 1e-7, 0, "w (cautious)");
}

TEST(AdamwKernelTest, SecondStepSeparatesTheMaskModes) {
  // Step 2 with g = [−0.2, −1, 0.1, 1], clip 1, f = 1 (η = 0.1), t = 2, from the step-1
  // state of the hand example. Element 0 has u > 0 against g < 0 with W > 0: the grad mask
  // skips its decay, the update mask applies it; element 3 is masked by both (W < 0 < g, u).
  const std::vector<float> g2 = {-0.2f, -1, 0.1f, 1};
  const std::vector<float> ctl2 = makeCtl(1, 1, 1, 2, 1);
  const double m2[4] = {0.025, -0.28, 0.0325, 0.01};
  const double v2[4] = {0.013875, 0.24, 0.00346875, 0.0975};
  const double w1[4] = {0.945, 1.05, -0.55, -0.4475};
  double u[4];
  for (int i = 0; i < 4; ++i)
    u[i] = (m2[i] / 0.19) / (std::sqrt(v2[i] / 0.0975) + 1e-8); // 1 − 0.9², 1 − 0.95²
  ASSERT_GT(u[0], 0.3) << "u agrees with m, not with g = −0.2";
  for (const char *mode : {"grad", "update"}) {
    AdamParams p;
    p.mode = mode;
    auto step1 = runAdamw(p, {4}, kHandGrad, makeCtl(0.5, 0.5, 1, 1, 0), kHandState);
    ASSERT_TRUE(step1.ok());
    auto step2 = runAdamw(p, {4}, g2, ctl2, *step1);
    ASSERT_TRUE(step2.ok()) << step2.status().toString();
    const bool gradMode = std::string(mode) == "grad";
    // grad: 1[g·W > 0] = [0, 0, 0, 0]; update: 1[u·W >= 0] = [1, 0, 0, 0].
    const double mask[4] = {gradMode ? 0.0 : 1.0, 0, 0, 0};
    std::vector<double> expectedW(4), expectedM(m2, m2 + 4), expectedV(v2, v2 + 4);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(mask[i], gradMode ? double(g2[i] * w1[i] > 0) : double(u[i] * w1[i] >= 0));
      expectedW[i] = w1[i] - 0.1 * 0.1 * mask[i] * w1[i] - 0.1 * u[i];
    }
    expectClose(toFloats(step2->m), expectedM, 2e-7, 0, std::string("m step 2 ") + mode);
    expectClose(toFloats(step2->v), expectedV, 2e-7, 0, std::string("v step 2 ") + mode);
    expectClose(toFloats(step2->w), expectedW, 2e-7, 0, std::string("w step 2 ") + mode);
  }
}

TEST(AdamwKernelTest, TwoStepsMatchTheReferenceInEveryMode) {
  const std::vector<int64_t> shape = {5, 9};
  const size_t n = 45;
  std::vector<float> g1 = uniformValues(n, 1, -2, 2), g2 = uniformValues(n, 2, -2, 2);
  for (size_t i = 0; i < n; i += 7)
    g1[i] = 0; // g = 0: no decay under the grad mask
  State start{toDoubles(uniformValues(n, 3, -1, 1)), toDoubles(uniformValues(n, 4, -0.3f, 0.3f)),
              toDoubles(uniformValues(n, 5, 0.01f, 0.2f))};
  const std::vector<float> ctl1 = makeCtl(0.3, 0.7, 1, 5, 9), ctl2 = makeCtl(0.9, 1, 1, 6, 10);
  struct Mode {
    bool cautiousWd;
    const char *mode;
    bool cautiousUpdate;
  };
  for (Mode mode : {Mode{false, "grad", false}, Mode{true, "grad", false},
                    Mode{true, "update", false}, Mode{true, "grad", true},
                    Mode{true, "update", true}}) {
    AdamParams p;
    p.eps = 1e-3; // large enough that ε's place (outside the square root) shows
    p.cautiousWd = mode.cautiousWd;
    p.mode = mode.mode;
    p.cautiousUpdate = mode.cautiousUpdate;
    std::string what = std::string("cautious_wd ") + (mode.cautiousWd ? mode.mode : "off") +
                       (mode.cautiousUpdate ? " + cautious_update" : "");
    auto step1 = runAdamw(p, shape, g1, ctl1, start);
    ASSERT_TRUE(step1.ok()) << step1.status().toString();
    auto step2 = runAdamw(p, shape, g2, ctl2, *step1);
    ASSERT_TRUE(step2.ok());
    State ref1 = adamwReference(p, toDoubles(g1), ctl1, start);
    State ref2 = adamwReference(p, toDoubles(g2), ctl2, ref1);
    expectClose(toFloats(step1->w), ref1.w, 1e-6, 1e-7, what + ": w after step 1");
    expectClose(toFloats(step2->w), ref2.w, 1e-6, 1e-7, what + ": w after step 2");
    // m and v are sums of O(0.3) terms: allow f32 rounding of that scale on small results.
    expectClose(toFloats(step2->m), ref2.m, 1e-6, 5e-8, what + ": m after step 2");
    expectClose(toFloats(step2->v), ref2.v, 1e-6, 5e-8, what + ": v after step 2");
    // The update really moved the weights (by about η ≈ 0.09 at step 2).
    double moved = 0;
    for (size_t i = 0; i < n; ++i)
      moved = std::max(moved, std::abs(step2->w[i] - step1->w[i]));
    EXPECT_GT(moved, 0.05) << what;
  }
  // The cautious update's φ = 1[u·g > 0] = 1[m_new·g > 0] is neither all ones nor all
  // zeros at step 1 (m starts against g in places), so both of its branches ran.
  size_t agreeing = 0;
  for (size_t i = 0; i < n; ++i) {
    double g = ctl1[1] * double(g1[i]);
    agreeing += (0.9 * start.m[i] + 0.1 * g) * g > 0;
  }
  EXPECT_GT(agreeing, n / 4);
  EXPECT_LT(agreeing, n - n / 4);
}

TEST(AdamwKernelTest, CautiousUpdateCountsOverTheWholeTensor) {
  // More elements than one parallel chunk: Σφ must be the total over all chunks.
  const size_t n = 40000;
  std::vector<float> g = uniformValues(n, 11, -1, 1);
  State start{toDoubles(uniformValues(n, 12, -1, 1)), toDoubles(uniformValues(n, 13, -0.2f, 0.2f)),
              toDoubles(uniformValues(n, 14, 0.01f, 0.1f))};
  AdamParams p;
  p.cautiousUpdate = true;
  p.mode = "update";
  const std::vector<float> ctl = makeCtl(1, 1, 1, 3, 2);
  auto out = runAdamw(p, {int64_t(n)}, g, ctl, start);
  ASSERT_TRUE(out.ok()) << out.status().toString();
  expectClose(toFloats(out->w), adamwReference(p, toDoubles(g), ctl, start).w, 1e-6, 1e-7, "w");
}

TEST(AdamwKernelTest, SkippedStepChangesNothing) {
  std::vector<float> g = {kNaN, 1, -kInf, 2};
  AdamParams p;
  p.cautiousUpdate = true;
  auto out = runAdamw(p, {4}, g, makeCtl(0.5, 0, 0, 0, 7), kHandState);
  ASSERT_TRUE(out.ok()) << out.status().toString();
  EXPECT_EQ(out->w, kHandState.w);
  EXPECT_EQ(out->m, kHandState.m);
  EXPECT_EQ(out->v, kHandState.v);
}

TEST(AdamwKernelTest, InPlaceLaunchMatchesSeparateOutputs) {
  const size_t n = 30;
  std::vector<float> g = uniformValues(n, 21, -1, 1), w = uniformValues(n, 22, -1, 1),
                     m = uniformValues(n, 23, -0.1f, 0.1f), v = uniformValues(n, 24, 0, 0.1f);
  const std::vector<float> ctl = makeCtl(0.8, 0.9, 1, 4, 3);
  AdamParams p;
  p.cautiousUpdate = true;
  auto separate = runAdamw(p, {int64_t(n)}, g, ctl, {toDoubles(w), toDoubles(m), toDoubles(v)});
  ASSERT_TRUE(separate.ok());
  Status status;
  auto buffers = runAliased("adamw_update", p.attrs(),
                            {{"g", {int64_t(n)}, g},
                             {"ctl", {8}, ctl},
                             {"w", {int64_t(n)}, w},
                             {"m", {int64_t(n)}, m},
                             {"v", {int64_t(n)}, v}},
                            {2, 3, 4}, status);
  ASSERT_TRUE(status.ok()) << status.toString();
  EXPECT_EQ(buffers[2], toFloats(separate->w));
  EXPECT_EQ(buffers[3], toFloats(separate->m));
  EXPECT_EQ(buffers[4], toFloats(separate->v));
  EXPECT_EQ(buffers[0], g) << "the gradient is only read";
  // An output that is another input's buffer (here g) is not an in-place state update.
  runAliased("adamw_update", p.attrs(),
             {{"g", {int64_t(n)}, g},
              {"ctl", {8}, ctl},
              {"w", {int64_t(n)}, w},
              {"m", {int64_t(n)}, m},
              {"v", {int64_t(n)}, v}},
             {0, 3, 4}, status);
  expectError(status, "output 0 (buffer 0 'g', f32[30]) is the buffer of input 0");
}

TEST(AdamwKernelTest, BadLaunchesAreErrors) {
  auto attempt = [](std::vector<AttrDesc> attrs, std::vector<int64_t> mShape,
                    DType gType = DType::F32, std::vector<float> ctl = makeCtl(1, 1, 1, 1, 0)) {
    KernelCase kernel("adamw_update", std::move(attrs));
    kernel.input("g", gType, {4}, {1, 2, 3, 4});
    kernel.input("ctl", DType::F32, {int64_t(ctl.size())}, ctl);
    kernel.input("w", DType::F32, {4}, {1, 2, 3, 4});
    kernel.input("m", DType::F32, mShape, std::vector<float>(mShape.empty() ? 1 : mShape[0], 0));
    kernel.input("v", DType::F32, {4}, {0, 0, 0, 0});
    kernel.output("w_out", DType::F32, {4});
    kernel.output("m_out", DType::F32, {4});
    kernel.output("v_out", DType::F32, {4});
    return kernel.run();
  };
  AdamParams p;
  EXPECT_TRUE(attempt(p.attrs(), {4}).ok());
  expectError(attempt(p.attrs(), {5}), "input 3 (m) (buffer 3 'm', f32[5]) must have shape [4]");
  expectError(attempt(p.attrs(), {4}, DType::BF16), "input 0 (g)");
  expectError(attempt(p.attrs(), {4}, DType::F32, {1, 1, 1, 1, 1, 1, 1}),
              "input 1 (ctl) (buffer 1 'ctl', f32[7]) must have shape [8]");
  expectError(attempt(p.attrs(), {4}, DType::F32, makeCtl(1, 1, 1, 0, 0)),
              "element 4 (t) is 0; the AdamW update count must be >= 1");
  expectError(attempt(p.attrs(), {4}, DType::F32, makeCtl(1, 1, 0.5, 1, 0)),
              "element 2 (ok) must be 0 or 1, got 0.5");
  expectError(attempt(p.attrs(), {4}, DType::F32, makeCtl(kNaN, 1, 1, 1, 0)),
              "non-finite schedule factor");
  std::vector<AttrDesc> noLr = p.attrs();
  noLr.erase(noLr.begin());
  expectError(attempt(noLr, {4}), "missing required attribute 'lr'");
  AdamParams badBeta;
  badBeta.beta2 = 1;
  expectError(attempt(badBeta.attrs(), {4}), "attribute 'beta2' must be in [0, 1), got 1");
  AdamParams badMode;
  badMode.mode = "sign";
  expectError(attempt(badMode.attrs(), {4}), "attribute 'cautious_wd_mode' must be");
  std::vector<AttrDesc> noMode = p.attrs();
  noMode.pop_back();
  expectError(attempt(noMode, {4}), "missing required attribute 'cautious_wd_mode'");
  AdamParams zeroEps;
  zeroEps.eps = 0;
  expectError(attempt(zeroEps.attrs(), {4}), "attribute 'eps' must be finite and > 0");
}

//===----------------------------------------------------------------------===//
// normuon_update
//===----------------------------------------------------------------------===//

struct MuonParams {
  double lr = 0.02, beta1 = 0.95, beta2 = 0.95, weightDecay = 0.1;
  bool nesterov = true;
  int normalize = 1;
  bool cautiousWd = true;
  std::string mode = "grad";

  std::vector<AttrDesc> attrs() const {
    std::vector<AttrDesc> out = {AttrDesc::number("lr", lr),
                                 AttrDesc::number("beta1", beta1),
                                 AttrDesc::number("beta2", beta2),
                                 AttrDesc::number("weight_decay", weightDecay),
                                 AttrDesc::integer("nesterov", nesterov ? 1 : 0),
                                 AttrDesc::integer("normalize", normalize),
                                 AttrDesc::integer("cautious_wd", cautiousWd ? 1 : 0)};
    if (cautiousWd)
      out.push_back(AttrDesc::string("cautious_wd_mode", mode));
    return out;
  }
};

/// Round to bf16 (8 significant bits, nearest even), directly from double.
double bf16(double x) {
  if (x == 0 || !std::isfinite(x))
    return x;
  int exponent;
  double mantissa = std::frexp(x, &exponent); // |mantissa| in [0.5, 1)
  return std::ldexp(std::nearbyint(std::ldexp(mantissa, 8)), exponent - 8);
}

/// Distance from x ≠ 0 to the nearest bf16 rounding boundary (a midpoint between adjacent
/// bf16 values, including the one below the binade's power of two).
double tieDistance(double x) {
  int exponent;
  double scaled = std::ldexp(std::frexp(std::abs(x), &exponent), 8); // in [128, 256)
  double units = std::min(std::abs(scaled - (std::floor(scaled) + 0.5)), scaled - 127.75);
  return std::ldexp(units, exponent - 8);
}

/// NS5 of MODEL.md §12 in double with the bf16 roundings of the spec; g̃ is m×n row-major.
/// `margin` (when given) receives the smallest distance of a rounded value to a bf16 rounding
/// boundary, relative to the sum of the magnitudes that formed it: an fp32 evaluation errs by
/// at most about (terms + 3)·2⁻²⁴ of that sum, so a larger margin means the fp32 kernel
/// rounds every intermediate exactly as this reference does.
std::vector<double> ns5Reference(const std::vector<double> &gt, int m, int n,
                                 double *margin = nullptr) {
  const double a = 3.4445, b = -4.7750, c = 2.0315;
  double smallest = INFINITY;
  auto round = [&](double value, double magnitude) {
    if (magnitude > 0)
      smallest = std::min(smallest, value == 0 ? 0.0 : tieDistance(value) / magnitude);
    return bf16(value);
  };
  const bool transpose = m > n;
  const int p = std::min(m, n), q = std::max(m, n);
  std::vector<double> x(p * q);
  double norm = 0;
  for (int i = 0; i < p; ++i)
    for (int j = 0; j < q; ++j) {
      x[i * q + j] = transpose ? gt[j * n + i] : gt[i * n + j];
      norm += x[i * q + j] * x[i * q + j];
    }
  norm = std::sqrt(norm);
  for (double &value : x) {
    double scaled = value / (norm + 1e-7);
    value = round(scaled, std::abs(scaled));
  }
  for (int iter = 0; iter < 5; ++iter) {
    std::vector<double> A(p * p), B(p * p), next(p * q);
    for (int i = 0; i < p; ++i)
      for (int k = 0; k < p; ++k) {
        double sum = 0, magnitude = 0;
        for (int j = 0; j < q; ++j) {
          sum += x[i * q + j] * x[k * q + j];
          magnitude += std::abs(x[i * q + j] * x[k * q + j]);
        }
        A[i * p + k] = round(sum, magnitude);
      }
    for (int i = 0; i < p; ++i)
      for (int k = 0; k < p; ++k) {
        double sum = 0, magnitude = std::abs(b * A[i * p + k]);
        for (int j = 0; j < p; ++j) {
          sum += A[i * p + j] * A[j * p + k];
          magnitude += std::abs(c * A[i * p + j] * A[j * p + k]);
        }
        B[i * p + k] = round(b * A[i * p + k] + c * sum, magnitude);
      }
    for (int i = 0; i < p; ++i)
      for (int j = 0; j < q; ++j) {
        double sum = 0, magnitude = std::abs(a * x[i * q + j]);
        for (int k = 0; k < p; ++k) {
          sum += B[i * p + k] * x[k * q + j];
          magnitude += std::abs(B[i * p + k] * x[k * q + j]);
        }
        next[i * q + j] = round(a * x[i * q + j] + sum, magnitude);
      }
    x = next;
  }
  std::vector<double> o(m * n);
  for (int i = 0; i < p; ++i)
    for (int j = 0; j < q; ++j)
      (transpose ? o[j * n + i] : o[i * n + j]) = x[i * q + j];
  if (margin)
    *margin = smallest;
  return o;
}

/// MODEL.md §12 NorMuon (or Muon) for one m×n unit in double; `v` has m entries.
State normuonReference(const MuonParams &p, const std::vector<double> &rawGrad,
                       const std::vector<float> &ctl, State unit, int m, int n,
                       double *margin = nullptr) {
  const size_t mn = size_t(m) * n;
  std::vector<double> g(mn), gt(mn);
  for (size_t i = 0; i < mn; ++i) {
    g[i] = ctl[1] * rawGrad[i];
    unit.m[i] = p.beta1 * unit.m[i] + (1 - p.beta1) * g[i];
    gt[i] = p.nesterov ? (1 - p.beta1) * g[i] + p.beta1 * unit.m[i] : unit.m[i];
  }
  std::vector<double> o = ns5Reference(gt, m, n, margin), u = o;
  if (p.normalize) {
    double normO = 0, normHat = 0;
    for (int r = 0; r < m; ++r) {
      double meanSq = 0;
      for (int j = 0; j < n; ++j)
        meanSq += o[r * n + j] * o[r * n + j] / n;
      unit.v[r] = p.beta2 * unit.v[r] + (1 - p.beta2) * meanSq;
      for (int j = 0; j < n; ++j) {
        u[r * n + j] = o[r * n + j] / (std::sqrt(unit.v[r]) + 1e-10);
        normO += o[r * n + j] * o[r * n + j];
        normHat += u[r * n + j] * u[r * n + j];
      }
    }
    for (double &value : u)
      value *= std::sqrt(normO) / (std::sqrt(normHat) + 1e-10);
  }
  const double eta = p.lr * ctl[0], shape = std::sqrt(std::max(1.0, double(m) / n));
  for (size_t i = 0; i < mn; ++i) {
    u[i] *= shape;
    double w = unit.w[i], mask = 1;
    if (p.cautiousWd)
      mask = p.mode == "grad" ? (g[i] * w > 0 ? 1 : 0) : (u[i] * w >= 0 ? 1 : 0);
    unit.w[i] = w - eta * p.weightDecay * mask * w - eta * u[i];
  }
  return unit;
}

/// One normuon_update launch on separate output buffers; returns (w, M, v).
StatusOr<State> runNormuon(const MuonParams &p, const std::vector<int64_t> &shape,
                           const std::vector<float> &g, const std::vector<float> &ctl,
                           const State &in) {
  std::vector<int64_t> rowShape(shape.begin(), shape.end() - 1);
  KernelCase kernel("normuon_update", p.attrs());
  kernel.input("g", DType::F32, shape, g);
  kernel.input("ctl", DType::F32, {8}, ctl);
  kernel.input("w", DType::F32, shape, toFloats(in.w));
  kernel.input("M", DType::F32, shape, toFloats(in.m));
  kernel.input("v", DType::F32, rowShape, toFloats(in.v));
  kernel.output("w_out", DType::F32, shape);
  kernel.output("M_out", DType::F32, shape);
  kernel.output("v_out", DType::F32, rowShape);
  FUSION_RETURN_IF_ERROR(kernel.run());
  return State{toDoubles(kernel.outputFloats(0)), toDoubles(kernel.outputFloats(1)),
               toDoubles(kernel.outputFloats(2))};
}

/// Unit `u` (of `size` elements) of a stacked vector.
std::vector<double> slice(const std::vector<double> &values, size_t u, size_t size) {
  return std::vector<double>(values.begin() + u * size, values.begin() + (u + 1) * size);
}

/// Random state for `units` m×n matrices.
State randomMuonState(size_t units, int m, int n, uint64_t seed) {
  size_t mn = units * m * n;
  return {toDoubles(uniformValues(mn, seed, -0.5f, 0.5f)),
          toDoubles(uniformValues(mn, seed + 1, -0.3f, 0.3f)),
          toDoubles(uniformValues(units * m, seed + 2, 0.01f, 0.1f))};
}

// fp32 errs by at most ~(p + 3)·2⁻²⁴ ≈ 4e-7 of the summed magnitudes here (p ≤ 4 terms).
constexpr double kTieMargin = 1e-6;

/// Gradient and state of a NorMuon test.
struct MuonInputs {
  std::vector<float> g;
  State start;
};

/// Random inputs for `units` m×n matrices from the first seed at or after `seed` whose
/// reference NS5 decides every bf16 rounding of every unit by more than kTieMargin. A
/// rounding that close to a tie could go either way in fp32 depending on the BLAS's
/// summation order (and one flipped bf16 ulp moves O by up to a few per cent), so with such
/// inputs the kernel's bf16 iterates equal the reference's exactly, on any machine, and the
/// comparison can be tight. The search is pure double arithmetic, hence the same everywhere.
MuonInputs decidableInputs(const MuonParams &p, size_t units, int m, int n,
                           const std::vector<float> &ctl, uint64_t seed, bool idle = false) {
  const size_t mn = size_t(m) * n;
  for (uint64_t attempt = seed; attempt < seed + 400; attempt += 4) {
    MuonInputs inputs{uniformValues(units * mn, attempt + 3, -1, 1),
                      randomMuonState(units, m, n, attempt)};
    if (idle)
      std::fill(inputs.g.begin(), inputs.g.end(), 0.0f);
    bool decidable = true;
    for (size_t u = 0; u < units && decidable; ++u) {
      double margin;
      normuonReference(p, slice(toDoubles(inputs.g), u, mn), ctl,
                       {slice(inputs.start.w, u, mn), slice(inputs.start.m, u, mn),
                        slice(inputs.start.v, u, m)},
                       m, n, &margin);
      decidable = margin > kTieMargin;
    }
    if (decidable)
      return inputs;
  }
  ADD_FAILURE() << "no decidable NorMuon inputs near seed " << seed;
  return {};
}

TEST(NormuonKernelTest, MatchesTheDoubleReference) {
  struct Case {
    std::vector<int64_t> shape;
    const char *mode;
    bool nesterov;
  };
  for (const Case &c : {Case{{3, 5}, "grad", true}, Case{{6, 4}, "update", true},
                        Case{{2, 4, 3}, "grad", false}, Case{{3, 5}, "update", false}}) {
    const int m = int(c.shape[c.shape.size() - 2]), n = int(c.shape.back());
    const size_t units = c.shape.size() == 3 ? size_t(c.shape[0]) : 1, mn = size_t(m) * n;
    MuonParams p;
    p.mode = c.mode;
    p.nesterov = c.nesterov;
    const std::vector<float> ctl = makeCtl(0.8, 0.6, 1, 3, 2);
    auto [g, start] = decidableInputs(p, units, m, n, ctl, 31);
    auto out = runNormuon(p, c.shape, g, ctl, start);
    ASSERT_TRUE(out.ok()) << out.status().toString();
    const double eta = p.lr * 0.8;
    for (size_t u = 0; u < units; ++u) {
      std::string what = "[" + std::to_string(m) + "x" + std::to_string(n) + "] unit " +
                         std::to_string(u) + " mode " + c.mode +
                         (c.nesterov ? " nesterov" : "");
      State in{slice(start.w, u, mn), slice(start.m, u, mn), slice(start.v, u, m)};
      State ref = normuonReference(p, slice(toDoubles(g), u, mn), ctl, in, m, n);
      expectClose(toFloats(slice(out->m, u, mn)), ref.m, 1e-6, 1e-8, what + ": M");
      expectClose(toFloats(slice(out->v, u, m)), ref.v, 1e-5, 0, what + ": v");
      // W moves by η(U + λW) ≈ 0.016·O(1); f32 W itself is good to ~3e-8.
      expectClose(toFloats(slice(out->w, u, mn)), ref.w, 0, 1e-5 * eta + 1e-7, what + ": w");
      double moved = 0;
      for (size_t i = 0; i < mn; ++i)
        moved = std::max(moved, std::abs(out->w[u * mn + i] - in.w[i]));
      EXPECT_GT(moved, 0.2 * eta) << what;
    }
  }
}

TEST(NormuonKernelTest, MuonShapeFactorFromTheTransposedTwin) {
  // A 6×4 matrix and its 4×6 transpose run the same NS5 iteration (Y = G̃ᵀ vs Y = G̃), so with
  // W = 0 (W_new = −ηU) their updates differ only by sqrt(max(1, m/n)): sqrt(1.5) vs 1.
  // η = 2⁻⁶ makes the 4×6 update exactly −η·O, whose entries must be bf16 values.
  MuonParams p;
  p.normalize = 0;
  p.lr = 1.0 / 64;
  const int m = 6, n = 4;
  const std::vector<float> ctl = makeCtl(1, 1, 1, 1, 0);
  auto [gT, wideStart] = decidableInputs(p, 1, n, m, ctl, 41);
  std::vector<float> g(m * n);
  std::vector<double> M(m * n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      g[i * n + j] = gT[j * m + i];
      M[i * n + j] = wideStart.m[j * m + i];
    }
  const std::vector<double> zeros(m * n, 0.0);
  auto tall = runNormuon(p, {m, n}, g, ctl, {zeros, M, std::vector<double>(m, 0.5)});
  auto wide = runNormuon(p, {n, m}, gT, ctl, {zeros, wideStart.m, std::vector<double>(n, 0.5)});
  ASSERT_TRUE(tall.ok() && wide.ok());
  std::vector<double> expected(m * n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      expected[i * n + j] = std::sqrt(1.5) * wide->w[j * m + i];
  expectClose(toFloats(tall->w), expected, 1e-6, 0, "6x4 update = sqrt(1.5) x (4x6 update)ᵀ");
  EXPECT_EQ(tall->v, std::vector<double>(m, 0.5)) << "Muon leaves v alone";
  // O = fp32(X) with X in bf16, and equal to the reference's.
  State ref = normuonReference(p, toDoubles(gT), ctl,
                               {zeros, wideStart.m, std::vector<double>(n, 0.5)}, n, m);
  for (int i = 0; i < m * n; ++i) {
    double o = -64 * wide->w[i];
    EXPECT_EQ(o, bf16(o)) << "O entry " << i << " is not a bf16 value";
    EXPECT_EQ(o, -64 * ref.w[i]) << "O entry " << i;
  }
}

TEST(NormuonKernelTest, NormalizationRescalesRowsAndPreservesTheNorm) {
  // Same input through Muon (U_μ = sO) and NorMuon (U = sÔ), W = 0 so U = −W_new/η exactly:
  //   ‖U‖_F = ‖U_μ‖_F;  v = β2 v0 + (1−β2) mean_j (U_μ/s)²;  U_rj·(sqrt(v_r) + 1e-10)/U_μ,rj
  //   is one constant (‖O‖/‖Ô‖) for every entry.
  for (std::vector<int64_t> shape : {std::vector<int64_t>{3, 5}, std::vector<int64_t>{6, 4}}) {
    const int m = int(shape[0]), n = int(shape[1]);
    const double s = std::sqrt(std::max(1.0, double(m) / n));
    MuonParams p;
    std::vector<float> g = uniformValues(m * n, 51, -1, 1);
    State start{std::vector<double>(m * n, 0.0), toDoubles(uniformValues(m * n, 52, -0.3f, 0.3f)),
                toDoubles(uniformValues(m, 53, 0.001f, 0.05f))};
    const std::vector<float> ctl = makeCtl(0.5, 1, 1, 1, 0);
    const double eta = p.lr * 0.5;
    auto normuon = runNormuon(p, shape, g, ctl, start);
    p.normalize = 0;
    auto muon = runNormuon(p, shape, g, ctl, start);
    ASSERT_TRUE(normuon.ok() && muon.ok());
    double normU = 0, normMuon = 0;
    for (int i = 0; i < m * n; ++i) {
      normU += normuon->w[i] * normuon->w[i];
      normMuon += muon->w[i] * muon->w[i];
    }
    EXPECT_NEAR(std::sqrt(normU / normMuon), 1.0, 1e-5) << "norm-preserving rescale";
    std::vector<double> expectedV(m);
    for (int r = 0; r < m; ++r) {
      double meanSq = 0;
      for (int j = 0; j < n; ++j) {
        double o = -muon->w[r * n + j] / (eta * s);
        meanSq += o * o / n;
      }
      expectedV[r] = 0.95 * start.v[r] + 0.05 * meanSq;
    }
    expectClose(toFloats(normuon->v), expectedV, 1e-5, 0, "v from the Muon run's O");
    EXPECT_EQ(muon->v, start.v);
    std::vector<double> ratios;
    for (int r = 0; r < m; ++r)
      for (int j = 0; j < n; ++j)
        if (std::abs(muon->w[r * n + j]) > 1e-3 * eta)
          ratios.push_back(normuon->w[r * n + j] * (std::sqrt(normuon->v[r]) + 1e-10) /
                           muon->w[r * n + j]);
    ASSERT_GT(ratios.size(), size_t(m * n / 2));
    expectClose(toFloats(ratios), std::vector<double>(ratios.size(), ratios[0]), 1e-4, 0,
                "per-row normalisation");
    // ...and it is a real change of direction (row second moments differ).
    double differs = 0;
    for (int i = 0; i < m * n; ++i)
      differs = std::max(differs, std::abs(normuon->w[i] - muon->w[i]));
    EXPECT_GT(differs, 0.05 * eta);
  }
}

TEST(NormuonKernelTest, StackedUnitsAreIndependentAndIdleOnesStayFinite) {
  // [2, 4, 3]: unit 0 is an idle expert (zero gradient, zero momentum, zero v), unit 1 is
  // busy. Unit 1 must equal a lone [4, 3] run; unit 0 must be finite, keep M = 0 and v = 0,
  // and change W only by decay: none under the grad mask (g = 0), W(1 − ηλ) under the
  // update mask (U = 0 ⇒ decay).
  const int m = 4, n = 3, mn = m * n;
  std::vector<float> g = uniformValues(2 * mn, 61, -1, 1);
  std::fill(g.begin(), g.begin() + mn, 0.0f);
  State start = randomMuonState(2, m, n, 62);
  std::fill(start.m.begin(), start.m.begin() + mn, 0.0);
  std::fill(start.v.begin(), start.v.begin() + m, 0.0);
  const std::vector<float> ctl = makeCtl(1, 1, 1, 1, 0);
  for (const char *mode : {"grad", "update"}) {
    MuonParams p;
    p.mode = mode;
    auto stacked = runNormuon(p, {2, m, n}, g, ctl, start);
    ASSERT_TRUE(stacked.ok()) << stacked.status().toString();
    for (double value : stacked->w)
      ASSERT_TRUE(std::isfinite(value)) << mode;
    for (double value : stacked->v)
      ASSERT_TRUE(std::isfinite(value)) << mode;
    EXPECT_EQ(slice(stacked->m, 0, mn), std::vector<double>(mn, 0.0));
    EXPECT_EQ(slice(stacked->v, 0, m), std::vector<double>(m, 0.0));
    std::vector<double> idleW = slice(start.w, 0, mn);
    if (std::string(mode) == "update")
      for (double &w : idleW)
        w = float(w - p.lr * p.weightDecay * w);
    EXPECT_EQ(slice(stacked->w, 0, mn), idleW) << mode;
    auto lone = runNormuon(p, {m, n}, std::vector<float>(g.begin() + mn, g.end()), ctl,
                           {slice(start.w, 1, mn), slice(start.m, 1, mn), slice(start.v, 1, m)});
    ASSERT_TRUE(lone.ok());
    EXPECT_EQ(slice(stacked->w, 1, mn), lone->w) << mode;
    EXPECT_EQ(slice(stacked->m, 1, mn), lone->m) << mode;
    EXPECT_EQ(slice(stacked->v, 1, m), lone->v) << mode;
  }
  // An idle expert that still carries momentum: finite and as the reference says.
  MuonParams p;
  MuonInputs carrying = decidableInputs(p, 1, m, n, ctl, 63, /*idle=*/true);
  auto out = runNormuon(p, {m, n}, carrying.g, ctl, carrying.start);
  ASSERT_TRUE(out.ok());
  State ref = normuonReference(p, toDoubles(carrying.g), ctl, carrying.start, m, n);
  expectClose(toFloats(out->w), ref.w, 0, 1e-5 * p.lr + 1e-7, "idle with momentum: w");
  expectClose(toFloats(out->m), ref.m, 1e-6, 0, "idle with momentum: M");
  expectClose(toFloats(out->v), ref.v, 1e-5, 0, "idle with momentum: v");
}

TEST(NormuonKernelTest, SkippedStepChangesNothing) {
  const int m = 4, n = 3;
  std::vector<float> g = uniformValues(2 * m * n, 71, -1, 1);
  g[5] = kNaN;
  State start = randomMuonState(2, m, n, 72);
  auto out = runNormuon(MuonParams{}, {2, m, n}, g, makeCtl(1, 0, 0, 1, 0), start);
  ASSERT_TRUE(out.ok()) << out.status().toString();
  EXPECT_EQ(toFloats(out->w), toFloats(start.w));
  EXPECT_EQ(toFloats(out->m), toFloats(start.m));
  EXPECT_EQ(toFloats(out->v), toFloats(start.v));
}

TEST(NormuonKernelTest, InPlaceLaunchMatchesSeparateOutputs) {
  const int m = 4, n = 3;
  MuonParams p;
  std::vector<float> g = uniformValues(2 * m * n, 81, -1, 1);
  State start = randomMuonState(2, m, n, 82);
  const std::vector<float> ctl = makeCtl(0.7, 0.9, 1, 2, 1);
  auto separate = runNormuon(p, {2, m, n}, g, ctl, start);
  ASSERT_TRUE(separate.ok());
  Status status;
  auto buffers = runAliased("normuon_update", p.attrs(),
                            {{"g", {2, m, n}, g},
                             {"ctl", {8}, ctl},
                             {"w", {2, m, n}, toFloats(start.w)},
                             {"M", {2, m, n}, toFloats(start.m)},
                             {"v", {2, m}, toFloats(start.v)}},
                            {2, 3, 4}, status);
  ASSERT_TRUE(status.ok()) << status.toString();
  EXPECT_EQ(buffers[2], toFloats(separate->w));
  EXPECT_EQ(buffers[3], toFloats(separate->m));
  EXPECT_EQ(buffers[4], toFloats(separate->v));
}

TEST(NormuonKernelTest, BadLaunchesAreErrors) {
  auto attempt = [](std::vector<AttrDesc> attrs, std::vector<int64_t> gShape,
                    std::vector<int64_t> vShape, DType mType = DType::F32) {
    auto count = [](const std::vector<int64_t> &shape) {
      int64_t n = 1;
      for (int64_t d : shape)
        n *= d;
      return size_t(n);
    };
    KernelCase kernel("normuon_update", std::move(attrs));
    kernel.input("g", DType::F32, gShape, std::vector<float>(count(gShape), 0.5f));
    kernel.input("ctl", DType::F32, {8}, makeCtl(1, 1, 1, 1, 0));
    kernel.input("w", DType::F32, gShape, std::vector<float>(count(gShape), 0.5f));
    kernel.input("M", mType, gShape, std::vector<float>(count(gShape), 0));
    kernel.input("v", DType::F32, vShape, std::vector<float>(count(vShape), 0));
    kernel.output("w_out", DType::F32, gShape);
    kernel.output("M_out", DType::F32, gShape);
    kernel.output("v_out", DType::F32, vShape);
    return kernel.run();
  };
  MuonParams p;
  EXPECT_TRUE(attempt(p.attrs(), {2, 4, 3}, {2, 4}).ok());
  expectError(attempt(p.attrs(), {2, 4, 3}, {2, 3}),
              "input 4 (v) (buffer 4 'v', f32[2,3]) must have shape [2,4]");
  expectError(attempt(p.attrs(), {12}, {1}), "must have rank >= 2 ([..., m, n])");
  expectError(attempt(p.attrs(), {2, 4, 3}, {2, 4}, DType::BF16),
              "input 3 (M) (buffer 3 'M') has dtype bf16; this kernel needs f32");
  std::vector<AttrDesc> noNormalize;
  for (const AttrDesc &attr : p.attrs())
    if (attr.name != "normalize")
      noNormalize.push_back(attr);
  expectError(attempt(noNormalize, {4, 3}, {4}), "missing required attribute 'normalize'");
  MuonParams two;
  two.normalize = 2;
  expectError(attempt(two.attrs(), {4, 3}, {4}), "attribute 'normalize' must be 1 (NorMuon)");
  MuonParams badMode;
  badMode.mode = "both";
  expectError(attempt(badMode.attrs(), {4, 3}, {4}), "attribute 'cautious_wd_mode' must be");
  MuonParams negativeDecay;
  negativeDecay.weightDecay = -0.1;
  expectError(attempt(negativeDecay.attrs(), {4, 3}, {4}),
              "attribute 'weight_decay' must be finite and >= 0");
}

//===----------------------------------------------------------------------===//
// normuon_update as the plans run it: normuon_norm, normuon_prepare, NS5 GEMMs,
// normuon_rows, normuon_finish
//===----------------------------------------------------------------------===//

/// The attributes of `p` named in `names`.
std::vector<AttrDesc> pick(const MuonParams &p, std::initializer_list<const char *> names) {
  std::vector<AttrDesc> out;
  for (const AttrDesc &attr : p.attrs())
    for (const char *name : names)
      if (attr.name == name)
        out.push_back(attr);
  return out;
}

/// Runs fusion-lower-to-plan's decomposition of one normuon_update on the CPU executor, the
/// state buffers updated in place as in the plans: normuon_norm, normuon_prepare, five
/// times (gemm X Xᵀ -> A; copy A -> B; gemm c·A A + b·B -> B; copy X -> X'; gemm B X + a·X'
/// -> X') over bf16 buffers, normuon_rows (NorMuon), normuon_finish. Returns (w, M, v).
StatusOr<State> runDecomposedNormuon(const MuonParams &p, const std::vector<int64_t> &shape,
                                     const std::vector<float> &g,
                                     const std::vector<float> &ctl, const State &in) {
  const int64_t m = shape[shape.size() - 2], n = shape.back();
  const int64_t pDim = std::min(m, n), qDim = std::max(m, n);
  const std::vector<int64_t> leading(shape.begin(), shape.end() - 2);
  int64_t batch = 1;
  for (int64_t d : leading)
    batch *= d;
  auto withTail = [&](std::vector<int64_t> tail) {
    std::vector<int64_t> out = leading;
    out.insert(out.end(), tail.begin(), tail.end());
    return out;
  };
  PlanBuilder plan;
  const uint32_t gBuf = plan.addBuffer("g", DType::F32, shape);
  const uint32_t ctlBuf = plan.addBuffer("ctl", DType::F32, {8});
  const uint32_t wBuf = plan.addBuffer("w", DType::F32, shape);
  const uint32_t mBuf = plan.addBuffer("M", DType::F32, shape);
  const uint32_t vBuf = plan.addBuffer("v", DType::F32, withTail({m}));
  const uint32_t sumsq = plan.addBuffer("sumsq", DType::F32, withTail({m, 2}));
  const uint32_t x[2] = {plan.addBuffer("x0", DType::BF16, withTail({pDim, qDim})),
                         plan.addBuffer("x1", DType::BF16, withTail({pDim, qDim}))};
  const uint32_t a = plan.addBuffer("a", DType::BF16, withTail({pDim, pDim}));
  const uint32_t b = plan.addBuffer("b", DType::BF16, withTail({pDim, pDim}));
  const uint32_t rowsums = plan.addBuffer("rowsums", DType::F32, withTail({m, 2}));
  const uint32_t norm = plan.addKernel("norm", "normuon_norm", pick(p, {"beta1", "nesterov"}));
  const uint32_t prepare =
      plan.addKernel("prepare", "normuon_prepare", pick(p, {"beta1", "nesterov"}));
  const uint32_t copy = plan.addKernel("copy", "reshape");
  const uint32_t rows = plan.addKernel("rows", "normuon_rows", pick(p, {"beta2"}));
  const uint32_t finish = plan.addKernel(
      "finish", "normuon_finish",
      pick(p, {"lr", "weight_decay", "normalize", "cautious_wd", "cautious_wd_mode"}));
  ProgramDesc &program = plan.addProgram("main");
  program.add(launchOp(norm, {gBuf, ctlBuf, mBuf}, {sumsq}));
  program.add(launchOp(prepare, {gBuf, ctlBuf, mBuf, sumsq}, {mBuf, x[0]}));
  for (int iter = 0; iter < 5; ++iter) {
    const uint32_t cur = x[iter % 2], next = x[(iter + 1) % 2];
    program.add(gemmOp(cur, cur, a, pDim, pDim, qDim, batch, false, /*transB=*/true));
    program.add(launchOp(copy, {a}, {b}));
    program.add(gemmOp(a, a, b, pDim, pDim, pDim, batch, false, false, 2.0315f, -4.7750f));
    program.add(launchOp(copy, {cur}, {next}));
    program.add(gemmOp(b, cur, next, pDim, qDim, pDim, batch, false, false, 1.0f, 3.4445f));
  }
  if (p.normalize)
    program.add(launchOp(rows, {x[1], ctlBuf, vBuf}, {vBuf, rowsums}));
  program.add(launchOp(finish, {x[1], gBuf, ctlBuf, wBuf, vBuf, p.normalize ? rowsums : sumsq},
                       {wBuf}));
  FUSION_ASSIGN_OR_RETURN(auto loaded, Plan::loadBytes(plan.finish(), "plan.fplan"));
  FUSION_ASSIGN_OR_RETURN(auto executor, createExecutor(loaded, BackendKind::kCpu));
  auto write = [&](uint32_t buffer, const std::vector<float> &values) {
    return executor->writeBuffer(buffer, values.data(), values.size() * sizeof(float));
  };
  FUSION_RETURN_IF_ERROR(write(gBuf, g));
  FUSION_RETURN_IF_ERROR(write(ctlBuf, ctl));
  FUSION_RETURN_IF_ERROR(write(wBuf, toFloats(in.w)));
  FUSION_RETURN_IF_ERROR(write(mBuf, toFloats(in.m)));
  FUSION_RETURN_IF_ERROR(write(vBuf, toFloats(in.v)));
  FUSION_RETURN_IF_ERROR(executor->run("main"));
  auto read = [&](uint32_t buffer) -> StatusOr<std::vector<double>> {
    std::vector<uint8_t> bytes;
    FUSION_RETURN_IF_ERROR(executor->readBuffer(buffer, bytes));
    std::vector<float> values(bytes.size() / sizeof(float));
    std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
    return toDoubles(values);
  };
  State out;
  FUSION_ASSIGN_OR_RETURN(out.w, read(wBuf));
  FUSION_ASSIGN_OR_RETURN(out.m, read(mBuf));
  FUSION_ASSIGN_OR_RETURN(out.v, read(vBuf));
  return out;
}

/// ‖a − b‖₂ / ‖b − base‖₂: the error of a relative to the change b made from base.
double relativeChangeError(const std::vector<double> &a, const std::vector<double> &b,
                           const std::vector<double> &base) {
  double diff = 0, change = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    change += (b[i] - base[i]) * (b[i] - base[i]);
  }
  return std::sqrt(diff / change);
}

struct DecomposedCase {
  std::vector<int64_t> shape;
  bool nesterov;
  int normalize;
  const char *mode;
};

const DecomposedCase kDecomposedCases[] = {
    {{3, 5}, true, 1, "grad"},    // m < n
    {{6, 4}, true, 1, "update"},  // m > n: NS5 on G̃ᵀ
    {{2, 4, 3}, false, 1, "grad"}, // batched, m > n, no Nesterov
    {{3, 5}, false, 0, "update"}, // Muon
    {{2, 3, 4}, true, 0, "grad"}, // batched Muon, m < n
};

TEST(NormuonDecomposedTest, MatchesTheFusedKernelOnDecidableInputs) {
  // With inputs whose NS5 decides every bf16 rounding by a margin beyond fp32's error,
  // both evaluations produce the same bf16 iterates whatever the GEMM's summation order or
  // beta handling, so O is identical. M is then bit-identical (same formula), v too (same
  // row sums in the same order); w differs only through the per-row sums of O² and Ô²
  // being stored as f32 for the rescale (≤ 2⁻²⁴ relative in U, η·|U| ≲ 0.1) and the final
  // f32 rounding: a few ulps of w at most.
  const std::vector<float> ctl = makeCtl(0.8, 0.9, 1, 3, 2);
  uint64_t seed = 500;
  for (const DecomposedCase &c : kDecomposedCases) {
    const int m = int(c.shape[c.shape.size() - 2]), n = int(c.shape.back());
    const size_t units = c.shape.size() == 3 ? size_t(c.shape[0]) : 1;
    MuonParams p;
    p.nesterov = c.nesterov;
    p.normalize = c.normalize;
    p.mode = c.mode;
    MuonInputs inputs = decidableInputs(p, units, m, n, ctl, seed += 100);
    auto fused = runNormuon(p, c.shape, inputs.g, ctl, inputs.start);
    auto split = runDecomposedNormuon(p, c.shape, inputs.g, ctl, inputs.start);
    ASSERT_TRUE(fused.ok()) << fused.status().toString();
    ASSERT_TRUE(split.ok()) << split.status().toString();
    const std::string what = "shape [" + std::to_string(m) + "x" + std::to_string(n) +
                             "] x" + std::to_string(units) + " normalize " +
                             std::to_string(c.normalize);
    EXPECT_EQ(split->m, fused->m) << what;
    EXPECT_EQ(split->v, fused->v) << what;
    expectClose(toFloats(split->w), fused->w, 5e-7, 1e-9, what + ": w");
    EXPECT_NE(split->w, inputs.start.w) << what;
  }
}

TEST(NormuonDecomposedTest, LargerMatricesAgreeUpToBf16RoundingFlips) {
  // Matrices large enough for the GEMMs to run in row blocks over the pool, on plain random
  // inputs. M is the same formula, so bit-identical. The iterates may differ where a GEMM
  // result lies within an fp32 ulp of a bf16 rounding midpoint: the fused kernel forms
  // b·A + c·(A A) and a·X + B X itself, the plan's GEMM applies beta to C and adds alpha times
  // its accumulator (an FMA or two roundings). One flipped element moves by 2⁻⁸ of itself and
  // the following steps spread that over its row and column, so O, hence the update W − W₀
  // and v, may move by a small fraction of a per cent in L2; 1e-2 is a safe bound that still
  // catches any real error (a wrong transpose, scale or coefficient changes the update by
  // O(1)). With the OpenBLAS of the development machine no iterate flips: the errors are 0
  // and 6e-8 (the f32 row sums of the rescale).
  const std::vector<float> ctl = makeCtl(1, 0.7, 1, 5, 4);
  for (const DecomposedCase &c :
       {DecomposedCase{{24, 72}, true, 1, "grad"}, DecomposedCase{{3, 72, 40}, true, 1, "update"},
        DecomposedCase{{2, 40, 24}, false, 0, "grad"}}) {
    const int m = int(c.shape[c.shape.size() - 2]), n = int(c.shape.back());
    const size_t units = c.shape.size() == 3 ? size_t(c.shape[0]) : 1;
    MuonParams p;
    p.nesterov = c.nesterov;
    p.normalize = c.normalize;
    p.mode = c.mode;
    const std::vector<float> g = uniformValues(units * m * n, 900 + m, -1, 1);
    const State start = randomMuonState(units, m, n, 950 + n);
    auto fused = runNormuon(p, c.shape, g, ctl, start);
    auto split = runDecomposedNormuon(p, c.shape, g, ctl, start);
    ASSERT_TRUE(fused.ok()) << fused.status().toString();
    ASSERT_TRUE(split.ok()) << split.status().toString();
    EXPECT_EQ(split->m, fused->m);
    EXPECT_LT(relativeChangeError(split->w, fused->w, start.w), 1e-2) << m << "x" << n;
    if (c.normalize)
      EXPECT_LT(relativeChangeError(split->v, fused->v, start.v), 1e-2) << m << "x" << n;
    else
      EXPECT_EQ(split->v, start.v);
  }
}

TEST(NormuonDecomposedTest, SkippedStepChangesNothing) {
  // ok = 0 with a NaN gradient: prepare zeroes X (no NaN reaches the GEMMs), every state
  // buffer keeps its value.
  for (int normalize : {1, 0}) {
    MuonParams p;
    p.normalize = normalize;
    std::vector<float> g = uniformValues(2 * 4 * 6, 71, -1, 1);
    g[5] = kNaN;
    State start = randomMuonState(2, 6, 4, 72);
    auto out = runDecomposedNormuon(p, {2, 6, 4}, g, makeCtl(1, 0, 0, 1, 0), start);
    ASSERT_TRUE(out.ok()) << out.status().toString();
    EXPECT_EQ(out->w, start.w);
    EXPECT_EQ(out->m, toDoubles(toFloats(start.m)));
    EXPECT_EQ(out->v, toDoubles(toFloats(start.v)));
  }
}

TEST(NormuonDecomposedTest, KernelsWriteTheDocumentedIntermediates) {
  // normuon_norm: (hi, lo) of Σ_j G̃_rj²; normuon_prepare: X = bf16(G̃ᵀ/‖G̃‖) for m > n.
  MuonParams p;
  const int m = 5, n = 3;
  const std::vector<float> g = uniformValues(m * n, 31, -1, 1), M0 = uniformValues(m * n, 32);
  const std::vector<float> ctl = makeCtl(1, 0.5, 1, 1, 0);
  std::vector<double> gt(m * n);
  double total = 0;
  std::vector<double> rowSums(m, 0.0);
  for (int i = 0; i < m * n; ++i) {
    const float clipped = 0.5f * g[i];
    const float mNew = float(p.beta1 * M0[i] + (1 - p.beta1) * clipped);
    gt[i] = float((1 - p.beta1) * clipped + p.beta1 * mNew);
    rowSums[i / n] += gt[i] * gt[i];
  }
  KernelCase normCase("normuon_norm", pick(p, {"beta1", "nesterov"}));
  normCase.input("g", DType::F32, {m, n}, g);
  normCase.input("ctl", DType::F32, {8}, ctl);
  normCase.input("M", DType::F32, {m, n}, M0);
  normCase.output("sumsq", DType::F32, {m, 2});
  ASSERT_TRUE(normCase.run().ok());
  std::vector<float> sums = normCase.outputFloats(0);
  for (int r = 0; r < m; ++r) {
    // hi + lo carries s_r to ~2⁻⁴⁸ of itself.
    EXPECT_NEAR(double(sums[2 * r]) + sums[2 * r + 1], rowSums[r], 1e-13 * rowSums[r]) << r;
    EXPECT_EQ(sums[2 * r], float(rowSums[r])) << r;
    total += rowSums[r];
  }
  KernelCase prepareCase("normuon_prepare", pick(p, {"beta1", "nesterov"}));
  prepareCase.input("g", DType::F32, {m, n}, g);
  prepareCase.input("ctl", DType::F32, {8}, ctl);
  prepareCase.input("M", DType::F32, {m, n}, M0);
  prepareCase.input("sumsq", DType::F32, {m, 2}, sums);
  prepareCase.output("M_out", DType::F32, {m, n});
  prepareCase.output("X", DType::BF16, {n, m});
  ASSERT_TRUE(prepareCase.run().ok());
  const std::vector<float> xs = prepareCase.outputFloats(1);
  const float denom = float(std::sqrt(total)) + 1e-7f;
  for (int r = 0; r < m; ++r)
    for (int c = 0; c < n; ++c)
      EXPECT_EQ(xs[c * m + r], float(bf16(float(gt[r * n + c]) / denom))) << r << "," << c;
}

TEST(NormuonDecomposedTest, BadLaunchesAreErrors) {
  MuonParams p;
  auto prepare = [&](DType xType, std::vector<int64_t> xShape) {
    KernelCase kernel("normuon_prepare", pick(p, {"beta1", "nesterov"}));
    kernel.input("g", DType::F32, {4, 3}, std::vector<float>(12, 0.5f));
    kernel.input("ctl", DType::F32, {8}, makeCtl(1, 1, 1, 1, 0));
    kernel.input("M", DType::F32, {4, 3}, std::vector<float>(12, 0));
    kernel.input("sumsq", DType::F32, {4, 2}, std::vector<float>(8, 1));
    kernel.output("M_out", DType::F32, {4, 3});
    kernel.output("X", xType, xShape);
    return kernel.run();
  };
  EXPECT_TRUE(prepare(DType::BF16, {3, 4}).ok());
  expectError(prepare(DType::F32, {3, 4}), "output 1 (X) (buffer 5 'X') has dtype f32");
  expectError(prepare(DType::BF16, {4, 3}), "must have shape [3,4]");
  auto rows = [&](std::vector<int64_t> xShape, std::vector<int64_t> vShape) {
    KernelCase kernel("normuon_rows", pick(p, {"beta2"}));
    size_t xCount = 1, vCount = 1;
    for (int64_t d : xShape)
      xCount *= d;
    for (int64_t d : vShape)
      vCount *= d;
    kernel.input("X", DType::BF16, xShape, std::vector<float>(xCount, 0.25f));
    kernel.input("ctl", DType::F32, {8}, makeCtl(1, 1, 1, 1, 0));
    kernel.input("v", DType::F32, vShape, std::vector<float>(vCount, 0));
    std::vector<int64_t> sumsShape = vShape;
    sumsShape.push_back(2);
    kernel.output("v_out", DType::F32, vShape);
    kernel.output("rowsums", DType::F32, sumsShape);
    return kernel.run();
  };
  EXPECT_TRUE(rows({2, 3, 4}, {2, 4}).ok());
  EXPECT_TRUE(rows({2, 3, 4}, {2, 3}).ok());
  expectError(rows({2, 3, 4}, {2, 5}), "m one of its last two dims");
  expectError(rows({2, 4, 3}, {2, 4}), "must be [..., p, q] with 1 <= p <= q");
  auto finish = [&](MuonParams q, std::vector<int64_t> sumsShape) {
    KernelCase kernel("normuon_finish", pick(q, {"lr", "weight_decay", "normalize",
                                                 "cautious_wd", "cautious_wd_mode"}));
    kernel.input("X", DType::BF16, {3, 4}, std::vector<float>(12, 0.25f));
    kernel.input("g", DType::F32, {4, 3}, std::vector<float>(12, 0.5f));
    kernel.input("ctl", DType::F32, {8}, makeCtl(1, 1, 1, 1, 0));
    kernel.input("w", DType::F32, {4, 3}, std::vector<float>(12, 0.5f));
    kernel.input("v", DType::F32, {4}, std::vector<float>(4, 0.1f));
    kernel.input("rowsums", DType::F32, sumsShape, std::vector<float>(8, 1));
    kernel.output("w_out", DType::F32, {4, 3});
    return kernel.run();
  };
  EXPECT_TRUE(finish(p, {4, 2}).ok());
  expectError(finish(p, {2, 4}), "input 5 (rowsums) (buffer 5 'rowsums', f32[2,4]) must have shape [4,2]");
  MuonParams two;
  two.normalize = 2;
  expectError(finish(two, {4, 2}), "attribute 'normalize' must be 1 (NorMuon)");
}

//===----------------------------------------------------------------------===//
// moe_bias_update
//===----------------------------------------------------------------------===//

std::vector<AttrDesc> biasAttrs(int64_t every, double speed, double upper, double lower) {
  return {AttrDesc::integer("every", every), AttrDesc::number("speed", speed),
          AttrDesc::number("upper", upper), AttrDesc::number("lower", lower)};
}

struct BiasState {
  std::vector<float> bias, window;
};

StatusOr<BiasState> runBiasUpdate(const std::vector<AttrDesc> &attrs,
                                  const std::vector<float> &counts, const std::vector<float> &ctl,
                                  const BiasState &in) {
  const int64_t E = int64_t(counts.size());
  KernelCase kernel("moe_bias_update", attrs);
  kernel.input("step_counts", DType::F32, {E}, counts);
  kernel.input("ctl", DType::F32, {8}, ctl);
  kernel.input("bias", DType::F32, {E}, in.bias);
  kernel.input("window", DType::F32, {E}, in.window);
  kernel.output("bias_out", DType::F32, {E});
  kernel.output("window_out", DType::F32, {E});
  FUSION_RETURN_IF_ERROR(kernel.run());
  return BiasState{kernel.outputFloats(0), kernel.outputFloats(1)};
}

/// An f32 bias moved by ±γ_b (the step is taken in double and rounded once).
float shifted(float bias, double delta) { return float(double(bias) + delta); }

// Window after this step's counts: [10, 12, 8, 10, 15, 5], mean 10.
const std::vector<float> kCounts = {5, 6, 4, 5, 8, 2};
const BiasState kBiasStart = {{0, 0.5f, -0.5f, 0, 0, 1}, {5, 6, 4, 5, 7, 3}};

TEST(MoeBiasUpdateKernelTest, AccumulatesUntilDue) {
  // U = 2: s = 0 is not due ((0+1) mod 2 ≠ 0): the window grows, the bias stays.
  auto out = runBiasUpdate(biasAttrs(2, 0.01, 0.1, 0.1), kCounts, makeCtl(1, 1, 1, 1, 0),
                           kBiasStart);
  ASSERT_TRUE(out.ok()) << out.status().toString();
  EXPECT_EQ(out->bias, kBiasStart.bias);
  EXPECT_EQ(out->window, (std::vector<float>{10, 12, 8, 10, 15, 5}));
}

TEST(MoeBiasUpdateKernelTest, DeadBandAndReset) {
  // s = 1, U = 2: due. Band (1 ± 0.1)·10 = (9, 11): 12 and 15 overloaded (−γ), 8 and 5
  // underloaded (+γ), 10 and 10 inside; the window is reset.
  auto out = runBiasUpdate(biasAttrs(2, 0.01, 0.1, 0.1), kCounts, makeCtl(1, 1, 1, 2, 1),
                           kBiasStart);
  ASSERT_TRUE(out.ok()) << out.status().toString();
  EXPECT_EQ(out->bias, (std::vector<float>{0, shifted(0.5f, -0.01), shifted(-0.5f, 0.01), 0,
                                            shifted(0, -0.01), shifted(1, 0.01)}));
  EXPECT_EQ(out->window, std::vector<float>(6, 0.0f));
  // Band edges are exclusive: with τ = 0.5 the band is [5, 15] and 15, 5 stay put.
  auto edges = runBiasUpdate(biasAttrs(2, 0.01, 0.5, 0.5), kCounts, makeCtl(1, 1, 1, 2, 1),
                             kBiasStart);
  ASSERT_TRUE(edges.ok());
  EXPECT_EQ(edges->bias, kBiasStart.bias);
  EXPECT_EQ(edges->window, std::vector<float>(6, 0.0f));
  // Asymmetric band: upper 0.6 (> 16 none), lower 0.25 (< 7.5: only 5).
  auto asym = runBiasUpdate(biasAttrs(2, 0.25, 0.6, 0.25), kCounts, makeCtl(1, 1, 1, 2, 1),
                            kBiasStart);
  ASSERT_TRUE(asym.ok());
  EXPECT_EQ(asym->bias, (std::vector<float>{0, 0.5f, -0.5f, 0, 0, 1.25f}));
  // DeepSeek-V3 (U = 1, no band): due every step; an exactly balanced window changes nothing.
  auto v3 = runBiasUpdate(biasAttrs(1, 0.01, 0, 0), {3, 3, 3}, makeCtl(1, 1, 1, 1, 6),
                          {{0.1f, 0.2f, 0.3f}, {0, 0, 0}});
  ASSERT_TRUE(v3.ok());
  EXPECT_EQ(v3->bias, (std::vector<float>{0.1f, 0.2f, 0.3f}));
  auto v3Skewed = runBiasUpdate(biasAttrs(1, 0.01, 0, 0), {4, 3, 2}, makeCtl(1, 1, 1, 1, 6),
                                {{0.1f, 0.2f, 0.3f}, {0, 0, 0}});
  ASSERT_TRUE(v3Skewed.ok());
  EXPECT_EQ(v3Skewed->bias, (std::vector<float>{shifted(0.1f, -0.01), 0.2f, shifted(0.3f, 0.01)}));
}

TEST(MoeBiasUpdateKernelTest, SkippedDueStepKeepsTheWindowForTheNextOne) {
  // s = 1 due but skipped: nothing changes (this step's counts are dropped, the window kept).
  auto skipped = runBiasUpdate(biasAttrs(2, 0.01, 0.1, 0.1), kCounts, makeCtl(1, 0, 0, 2, 1),
                               kBiasStart);
  ASSERT_TRUE(skipped.ok()) << skipped.status().toString();
  EXPECT_EQ(skipped->bias, kBiasStart.bias);
  EXPECT_EQ(skipped->window, kBiasStart.window);
  // s = 2 (not due) accumulates; s = 3 (due) updates with everything since the last reset.
  auto s2 = runBiasUpdate(biasAttrs(2, 0.01, 0.1, 0.1), kCounts, makeCtl(1, 1, 1, 2, 2),
                          *skipped);
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->window, (std::vector<float>{10, 12, 8, 10, 15, 5}));
  auto s3 = runBiasUpdate(biasAttrs(2, 0.01, 0.1, 0.1), {0, 0, 0, 0, 0, 0},
                          makeCtl(1, 1, 1, 3, 3), *s2);
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ(s3->bias, (std::vector<float>{0, shifted(0.5f, -0.01), shifted(-0.5f, 0.01), 0,
                                           shifted(0, -0.01), shifted(1, 0.01)}));
  EXPECT_EQ(s3->window, std::vector<float>(6, 0.0f));
}

TEST(MoeBiasUpdateKernelTest, InPlaceLaunchMatchesSeparateOutputs) {
  auto separate = runBiasUpdate(biasAttrs(2, 0.01, 0.1, 0.1), kCounts, makeCtl(1, 1, 1, 2, 1),
                                kBiasStart);
  ASSERT_TRUE(separate.ok());
  Status status;
  auto buffers = runAliased("moe_bias_update", biasAttrs(2, 0.01, 0.1, 0.1),
                            {{"step_counts", {6}, kCounts},
                             {"ctl", {8}, makeCtl(1, 1, 1, 2, 1)},
                             {"bias", {6}, kBiasStart.bias},
                             {"window", {6}, kBiasStart.window}},
                            {2, 3}, status);
  ASSERT_TRUE(status.ok()) << status.toString();
  EXPECT_EQ(buffers[2], separate->bias);
  EXPECT_EQ(buffers[3], separate->window);
}

TEST(MoeBiasUpdateKernelTest, BadLaunchesAreErrors) {
  auto good = biasAttrs(2, 0.01, 0.1, 0.1);
  expectError(runBiasUpdate(biasAttrs(0, 0.01, 0.1, 0.1), kCounts, makeCtl(1, 1, 1, 2, 1),
                            kBiasStart)
                  .status(),
              "attribute 'every' must be >= 1, got 0");
  expectError(runBiasUpdate(biasAttrs(2, -0.01, 0.1, 0.1), kCounts, makeCtl(1, 1, 1, 2, 1),
                            kBiasStart)
                  .status(),
              "attribute 'speed' must be finite and >= 0");
  expectError(runBiasUpdate({AttrDesc::integer("every", 2), AttrDesc::number("speed", 0.1),
                             AttrDesc::number("upper", 0.1)},
                            kCounts, makeCtl(1, 1, 1, 2, 1), kBiasStart)
                  .status(),
              "missing required attribute 'lower'");
  expectError(runBiasUpdate(good, kCounts, makeCtl(1, 1, 1, 2, 1.5), kBiasStart).status(),
              "element 5 (s) is 1.5");
  KernelCase shortBias("moe_bias_update", good);
  shortBias.input("step_counts", DType::F32, {6}, kCounts);
  shortBias.input("ctl", DType::F32, {8}, makeCtl(1, 1, 1, 2, 1));
  shortBias.input("bias", DType::F32, {5}, {0, 0, 0, 0, 0});
  shortBias.input("window", DType::F32, {6}, kBiasStart.window);
  shortBias.output("bias_out", DType::F32, {6});
  shortBias.output("window_out", DType::F32, {6});
  expectError(shortBias.run(), "input 2 (bias) (buffer 2 'bias', f32[5]) must have shape [6]");
  KernelCase intCounts("moe_bias_update", good);
  intCounts.indexInput("step_counts", DType::I32, {6}, {5, 6, 4, 5, 8, 2});
  intCounts.input("ctl", DType::F32, {8}, makeCtl(1, 1, 1, 2, 1));
  intCounts.input("bias", DType::F32, {6}, kBiasStart.bias);
  intCounts.input("window", DType::F32, {6}, kBiasStart.window);
  intCounts.output("bias_out", DType::F32, {6});
  intCounts.output("window_out", DType::F32, {6});
  expectError(intCounts.run(), "has dtype i32; this kernel needs f32");
}

} // namespace
