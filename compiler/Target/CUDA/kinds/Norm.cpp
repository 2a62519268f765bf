//===- Norm.cpp - CUDA generators for normalisation kinds -----------------===//
//
// Part of the FusionLLM compiler.
//
// rms_norm: one block per row (templates/norm.cuh), threads a power of two up to 1024.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

#include "llvm/Support/FormatVariadic.h"

using namespace llvm;
using namespace mlir::fusion::cuda;

namespace {

/// One block per row of the last dimension.
LaunchConfig rowLaunch(ArrayRef<int64_t> shape) {
  LaunchConfig config;
  int64_t d = shape.empty() ? 1 : shape.back();
  int64_t rows = d == 0 ? 0 : numElements(shape) / d;
  config.grid = {std::max<int64_t>(rows, 1), 1, 1};
  config.block = {roundThreads(d), 1, 1};
  config.args = {rows, d};
  return config;
}

Expected<std::string> rmsNormSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 2, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1}, {0}))
    return std::move(error);
  return wrapKernel(desc, {"norm"}, {"x", "w"}, {"out"}, {"rows", "d"},
                    formatv("fk::rmsNorm(x, w, out, rows, d, {0});",
                            floatLiteral(desc.getFloat("eps", 1e-6)))
                        .str());
}

} // namespace

void mlir::fusion::cuda::addNormKinds(std::vector<KindGenerator> &kinds) {
  kinds.push_back({"rms_norm", rmsNormSource,
                   [](const KernelDesc &, const LaunchShapes &s) -> Expected<LaunchConfig> {
                     return rowLaunch(s.outputs[0]);
                   }});
}
