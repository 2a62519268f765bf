//===- Init.cpp - CUDA generators for the init kinds ----------------------===//
//
// Part of the FusionLLM compiler.
//
// init_param (templates/init.cuh): the counter-based rules of docs/op-kinds.md. A plan has one
// init_param kernel per parameter (hundreds), so the source depends only on the rule: seed,
// param_index and the float parameters (fp64 bit patterns) are launch arguments, and the
// wrapper's header names the rule instead of the kernel, so every kernel of one rule has the
// same text and costs one nvcc compile. Launch: grid-stride over the output's elements,
// args [n] (zeros, ones), [n, seed, param_index, std] (normal, trunc_normal),
// [n, seed, param_index, low, high] (uniform, log_uniform) or [n, seed, param_index, ln low,
// ln high] (dt_bias; the logarithms by the host's libm, like the CPU kernel).
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <cstdint>

using namespace llvm;
using namespace mlir::fusion::cuda;

namespace {

enum class Rule { Zeros, Ones, Normal, TruncNormal, Uniform, LogUniform, DtBias, Unknown };

/// The rule of `desc`, validated with the attributes it needs (the CPU kernel's checks).
Expected<Rule> readRule(const KernelDesc &desc) {
  Expected<std::string> name = desc.getString("rule");
  if (!name)
    return name.takeError();
  Rule rule = StringSwitch<Rule>(*name)
                  .Case("zeros", Rule::Zeros)
                  .Case("ones", Rule::Ones)
                  .Case("normal", Rule::Normal)
                  .Case("trunc_normal", Rule::TruncNormal)
                  .Case("uniform", Rule::Uniform)
                  .Case("log_uniform", Rule::LogUniform)
                  .Case("dt_bias", Rule::DtBias)
                  .Default(Rule::Unknown);
  if (rule == Rule::Unknown)
    return kindError(desc, "attribute 'rule' = \"" + *name +
                               "\" is not one of zeros, ones, normal, trunc_normal, uniform, "
                               "log_uniform, dt_bias");
  if (rule == Rule::Zeros || rule == Rule::Ones)
    return rule;
  for (StringRef key : {"seed", "param_index"})
    if (Expected<int64_t> value = desc.getInt(key); !value)
      return value.takeError();
  int64_t paramIndex = desc.getInt("param_index", 0);
  if (paramIndex < 0 || paramIndex > static_cast<int64_t>(UINT32_MAX))
    return kindError(desc, "attribute 'param_index' = " + Twine(paramIndex) +
                               " must be in [0, 2^32)");
  if (rule == Rule::Normal || rule == Rule::TruncNormal) {
    Expected<double> stddev = desc.getFloat("std");
    if (!stddev)
      return stddev.takeError();
    if (!(*stddev > 0) || !std::isfinite(*stddev))
      return kindError(desc, "attribute 'std' must be positive and finite, got " +
                                 Twine(std::to_string(*stddev)));
    return rule;
  }
  Expected<double> low = desc.getFloat("low");
  if (!low)
    return low.takeError();
  Expected<double> high = desc.getFloat("high");
  if (!high)
    return high.takeError();
  if (!(*low < *high) || !std::isfinite(*low) || !std::isfinite(*high))
    return kindError(desc, "attributes 'low' = " + Twine(std::to_string(*low)) +
                               " and 'high' = " + Twine(std::to_string(*high)) +
                               " must be finite with low < high");
  if (rule != Rule::Uniform && !(*low > 0))
    return kindError(desc, "rule \"" + *name + "\" needs 'low' > 0, got " +
                               Twine(std::to_string(*low)));
  return rule;
}

Expected<std::string> initParamSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 0, 1))
    return std::move(error);
  if (desc.outputs[0] != ElementType::F32)
    return kindError(desc, "output 0 must be f32, got " + elementTypeName(desc.outputs[0]));
  Expected<Rule> rule = readRule(desc);
  if (!rule)
    return rule.takeError();
  // The text must not depend on the kernel's name: one source (one compile) per rule.
  KernelDesc generic = desc;
  generic.name = "init_param." + desc.strings.lookup("rule");
  SmallVector<StringRef> args = {"n"};
  std::string body;
  switch (*rule) {
  case Rule::Zeros:
  case Rule::Ones:
    body = formatv("fk::initConstant(out, n, {0});", *rule == Rule::Ones ? "1.0f" : "0.0f");
    break;
  case Rule::Normal:
  case Rule::TruncNormal:
    args.append({"seed", "param_index", "std_bits"});
    body = formatv("fk::initNormal<{0}>(out, n, seed, param_index, std_bits);",
                   *rule == Rule::TruncNormal ? "true" : "false");
    break;
  default:
    args.append({"seed", "param_index", "a_bits", "b_bits"});
    body = formatv("fk::initUniform<fk::InitRule::{0}>(out, n, seed, param_index, a_bits, "
                   "b_bits);",
                   *rule == Rule::Uniform      ? "Uniform"
                   : *rule == Rule::LogUniform ? "LogUniform"
                                               : "DtBias");
    break;
  }
  return wrapKernel(generic, {"init"}, {}, {"out"}, args, body);
}

Expected<LaunchConfig> initParamLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<Rule> rule = readRule(desc);
  if (!rule)
    return rule.takeError();
  LaunchConfig config = gridStride(numElements(shapes.outputs[0]), desc.blockSize);
  if (*rule == Rule::Zeros || *rule == Rule::Ones)
    return config;
  config.args.push_back(desc.getInt("seed", 0));
  config.args.push_back(desc.getInt("param_index", 0));
  if (*rule == Rule::Normal || *rule == Rule::TruncNormal) {
    config.args.push_back(doubleBits(desc.getFloat("std", 0.0)));
    return config;
  }
  double low = desc.getFloat("low", 0.0), high = desc.getFloat("high", 0.0);
  if (*rule == Rule::DtBias) {
    low = std::log(low);
    high = std::log(high);
  }
  config.args.push_back(doubleBits(low));
  config.args.push_back(doubleBits(high));
  return config;
}

} // namespace

void mlir::fusion::cuda::addInitKinds(std::vector<KindGenerator> &kinds) {
  kinds.push_back({"init_param", initParamSource, initParamLaunch});
}
