//===- Elementwise.cpp - CUDA generators for elementwise kinds ------------===//
//
// Part of the FusionLLM compiler.
//
// fill, add, sub, mul, swiglu, silu, sigmoid, exp, neg, softplus, scale, softcap, reshape,
// cast: grid-stride loops of templates/elementwise.cuh with the math as a lambda, fp32
// arithmetic whatever the storage type (as the CPU reference kernels).
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

#include "llvm/Support/FormatVariadic.h"

using namespace llvm;
using namespace mlir::fusion::cuda;

namespace {

Expected<LaunchConfig> elementwiseLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  return gridStride(numElements(shapes.outputs[0]), desc.blockSize);
}

/// out = f(x) with `expression` in terms of the float `v`.
Expected<std::string> unary(const KernelDesc &desc, StringRef expression) {
  if (Error error = checkArity(desc, 1, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0}, {0}))
    return std::move(error);
  return wrapKernel(desc, {"elementwise"}, {"x"}, {"out"}, {"n"},
                    formatv("fk::unary(x, out, n, [](float v) {{ return {0}; });", expression)
                        .str());
}

/// out = f(a, b) with `expression` in terms of the floats `x` and `y`.
Expected<std::string> binary(const KernelDesc &desc, StringRef expression) {
  if (Error error = checkArity(desc, 2, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1}, {0}))
    return std::move(error);
  return wrapKernel(
      desc, {"elementwise"}, {"a", "b"}, {"out"}, {"n"},
      formatv("fk::binary(a, b, out, n, [](float x, float y) {{ return {0}; });", expression)
          .str());
}

Expected<std::string> fillSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 0, 1))
    return std::move(error);
  Expected<double> value = desc.getFloat("value");
  if (!value)
    return value.takeError();
  return wrapKernel(desc, {"elementwise"}, {}, {"out"}, {"n"},
                    formatv("fk::fill(out, n, {0}, {1});", doubleLiteral(*value),
                            doubleLiteral(desc.getFloat("step", 0.0)))
                        .str());
}

Expected<std::string> castSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 1, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {}, {0}))
    return std::move(error);
  return wrapKernel(desc, {"elementwise"}, {"x"}, {"out"}, {"n"}, "fk::cast(x, out, n);");
}

Expected<std::string> scaleSource(const KernelDesc &desc) {
  Expected<double> factor = desc.getFloat("factor");
  if (!factor)
    return factor.takeError();
  return unary(desc, floatLiteral(*factor) + " * v");
}

Expected<std::string> softcapSource(const KernelDesc &desc) {
  Expected<double> cap = desc.getFloat("cap");
  if (!cap)
    return cap.takeError();
  if (!(*cap > 0))
    return createStringError("softcap needs a positive 'cap', got " + std::to_string(*cap));
  std::string c = floatLiteral(*cap);
  return unary(desc, c + " * tanhf(v / " + c + ")");
}

Expected<std::string> reshapeSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 1, 1))
    return std::move(error);
  if (desc.inputs[0] != desc.outputs[0])
    return createStringError("kernel @" + desc.name + " (kind 'reshape'): copies " +
                             elementTypeName(desc.inputs[0]) + " into " +
                             elementTypeName(desc.outputs[0]) +
                             "; a reshape keeps the element type");
  return wrapKernel(desc, {"elementwise"}, {"x"}, {"out"}, {"n"}, "fk::copy(x, out, n);");
}

} // namespace

void mlir::fusion::cuda::addElementwiseKinds(std::vector<KindGenerator> &kinds) {
  kinds.push_back({"fill", fillSource, elementwiseLaunch});
  kinds.push_back({"cast", castSource, elementwiseLaunch});
  kinds.push_back({"scale", scaleSource, elementwiseLaunch});
  kinds.push_back({"softcap", softcapSource, elementwiseLaunch});
  kinds.push_back({"add", [](const KernelDesc &d) { return binary(d, "x + y"); },
                   elementwiseLaunch});
  kinds.push_back({"sub", [](const KernelDesc &d) { return binary(d, "x - y"); },
                   elementwiseLaunch});
  kinds.push_back({"mul", [](const KernelDesc &d) { return binary(d, "x * y"); },
                   elementwiseLaunch});
  kinds.push_back({"swiglu", [](const KernelDesc &d) { return binary(d, "x / (1.0f + expf(-x)) * y"); },
                   elementwiseLaunch});
  kinds.push_back({"silu", [](const KernelDesc &d) { return unary(d, "v / (1.0f + expf(-v))"); },
                   elementwiseLaunch});
  kinds.push_back({"sigmoid", [](const KernelDesc &d) { return unary(d, "1.0f / (1.0f + expf(-v))"); },
                   elementwiseLaunch});
  kinds.push_back({"exp", [](const KernelDesc &d) { return unary(d, "expf(v)"); },
                   elementwiseLaunch});
  kinds.push_back({"neg", [](const KernelDesc &d) { return unary(d, "-v"); }, elementwiseLaunch});
  // MODEL.md §1: softplus(x) = x above 20.
  kinds.push_back({"softplus",
                   [](const KernelDesc &d) {
                     return unary(d, "v > 20.0f ? v : fmaxf(v, 0.0f) + log1pf(expf(-fabsf(v)))");
                   },
                   elementwiseLaunch});
  // The plan's reshape is a copy (not an alias), of any element type.
  kinds.push_back({"reshape", reshapeSource, elementwiseLaunch});
}
