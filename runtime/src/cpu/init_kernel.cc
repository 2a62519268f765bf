//===- init_kernel.cc - Parameter initialisation (init_param) --------------===//
//
// The rules of MODEL.md §11 with the counter-based randomness of docs/op-kinds.md, so every
// backend and rank produces identical weights. Element i (flat index) of a parameter draws
// Philox4x32-10 with key (seed_lo ^ param_index, seed_hi) and counter (i_lo, i_hi, draw, 0);
// `draw` counts the redraws of a truncated normal. From the output words x0, x1:
//   uniform u = (x0 + 0.5)·2⁻³²,  normal z = sqrt(−2 ln u1)·cos(2π u2) with u1, u2 from x0, x1.
// Each value is computed in double and rounded to f32 once:
//   zeros 0 | ones 1 | normal std·z | trunc_normal std·z, redrawn while |z| > 2 |
//   uniform low + (high − low)·u | log_uniform ln(low + (high − low)·u) |
//   dt_bias softplus⁻¹(max(exp(ln low + (ln high − ln low)·u), 1e-4)), softplus⁻¹(y) =
//   y + ln(−expm1(−y)).
// Elements are independent, so fixed chunks run on the pool.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"
#include "philox.h"

#include <algorithm>
#include <cmath>

namespace fusion::rt::cpu {

namespace {

enum class Rule { kZeros, kOnes, kNormal, kTruncNormal, kUniform, kLogUniform, kDtBias };

constexpr double kTwoPow32 = 4294967296.0;
constexpr double kPi = 3.14159265358979323846;

/// The four Philox words of element `index`, redraw `draw`.
std::array<uint32_t, 4> drawWords(std::array<uint32_t, 2> key, uint64_t index, uint32_t draw) {
  return philox4x32_10({static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), draw, 0u},
                       key);
}

double uniformOf(uint32_t word) { return (static_cast<double>(word) + 0.5) / kTwoPow32; }

double normalOf(const std::array<uint32_t, 4> &words) {
  double u1 = uniformOf(words[0]), u2 = uniformOf(words[1]);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

} // namespace

Status initParamKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(0, 1));
  FUSION_ASSIGN_OR_RETURN(std::string ruleName, context.stringAttr("rule"));
  const Tensor &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectDType(out, "output 0", schema::DType::F32));
  Rule rule;
  if (ruleName == "zeros")
    rule = Rule::kZeros;
  else if (ruleName == "ones")
    rule = Rule::kOnes;
  else if (ruleName == "normal")
    rule = Rule::kNormal;
  else if (ruleName == "trunc_normal")
    rule = Rule::kTruncNormal;
  else if (ruleName == "uniform")
    rule = Rule::kUniform;
  else if (ruleName == "log_uniform")
    rule = Rule::kLogUniform;
  else if (ruleName == "dt_bias")
    rule = Rule::kDtBias;
  else
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'rule' = " + quoted(ruleName) +
                      " is not one of zeros, ones, normal, trunc_normal, uniform, "
                      "log_uniform, dt_bias");
  float *data = static_cast<float *>(out.data);
  const uint64_t count = out.info->numElements;
  constexpr uint64_t kChunk = 1 << 14;
  if (rule == Rule::kZeros || rule == Rule::kOnes) {
    float value = rule == Rule::kOnes ? 1.0f : 0.0f;
    for (uint64_t i = 0; i < count; ++i)
      data[i] = value;
    return Status::okStatus();
  }

  FUSION_ASSIGN_OR_RETURN(int64_t seed, context.intAttr("seed"));
  FUSION_ASSIGN_OR_RETURN(int64_t paramIndex, context.intAttr("param_index"));
  if (paramIndex < 0 || paramIndex > static_cast<int64_t>(UINT32_MAX))
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'param_index' = " + std::to_string(paramIndex) +
                      " must be in [0, 2^32)");
  const uint64_t seedBits = static_cast<uint64_t>(seed);
  const std::array<uint32_t, 2> key = {static_cast<uint32_t>(seedBits) ^
                                           static_cast<uint32_t>(paramIndex),
                                       static_cast<uint32_t>(seedBits >> 32)};

  if (rule == Rule::kNormal || rule == Rule::kTruncNormal) {
    FUSION_ASSIGN_OR_RETURN(double stddev, context.floatAttr("std"));
    if (!(stddev > 0) || !std::isfinite(stddev))
      return Status(StatusCode::kInvalidArgument,
                    "attribute 'std' must be positive and finite, got " + std::to_string(stddev));
    const bool truncate = rule == Rule::kTruncNormal;
    context.parallelFor(count, kChunk, [&](uint64_t begin, uint64_t end) {
      for (uint64_t i = begin; i < end; ++i) {
        double z = normalOf(drawWords(key, i, 0));
        // Rejection: a redraw has probability 4.6%, so the loop ends after a few draws.
        for (uint32_t draw = 1; truncate && !(std::abs(z) <= 2.0); ++draw)
          z = normalOf(drawWords(key, i, draw));
        data[i] = static_cast<float>(stddev * z);
      }
    });
    return Status::okStatus();
  }

  FUSION_ASSIGN_OR_RETURN(double low, context.floatAttr("low"));
  FUSION_ASSIGN_OR_RETURN(double high, context.floatAttr("high"));
  if (!(low < high) || !std::isfinite(low) || !std::isfinite(high))
    return Status(StatusCode::kInvalidArgument, "attributes 'low' = " + std::to_string(low) +
                                                    " and 'high' = " + std::to_string(high) +
                                                    " must be finite with low < high");
  if (rule != Rule::kUniform && !(low > 0))
    return Status(StatusCode::kInvalidArgument,
                  "rule " + quoted(ruleName) + " needs 'low' > 0, got " + std::to_string(low));
  const double logLow = std::log(low), logHigh = std::log(high);
  context.parallelFor(count, kChunk, [&](uint64_t begin, uint64_t end) {
    for (uint64_t i = begin; i < end; ++i) {
      double u = uniformOf(drawWords(key, i, 0)[0]);
      double value;
      switch (rule) {
      case Rule::kUniform:
        value = low + (high - low) * u;
        break;
      case Rule::kLogUniform:
        value = std::log(low + (high - low) * u);
        break;
      default: { // dt_bias
        double dt = std::max(std::exp(logLow + (logHigh - logLow) * u), 1e-4);
        value = dt + std::log(-std::expm1(-dt));
        break;
      }
      }
      data[i] = static_cast<float>(value);
    }
  });
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
