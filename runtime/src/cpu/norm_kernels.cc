//===- norm_kernels.cc - RMSNorm and L2-norm reference kernels ------------===//
//
// Both normalise over the last dimension, one row per work item on the executor's pool:
// rms_norm y = x / sqrt(mean(x²) + eps) · w with w of shape [d]; l2_norm
// y = scale · x / sqrt(Σx² + eps) (GDN's q and k). The sum of squares is accumulated in
// double: rows can be long (d = 4096+) and the oracle must not be the less accurate side when
// a device kernel is compared against it. A row is read completely before it is written, so
// y may alias x.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

#include <cmath>

namespace fusion::rt::cpu {

namespace {
/// Rows per parallel work item.
constexpr uint64_t kRowGrain = 16;

double sumOfSquares(const Tensor &x, uint64_t base, uint64_t d) {
  double sum = 0;
  for (uint64_t j = 0; j < d; ++j) {
    double v = loadAsFloat(x.data, x.info->dtype, base + j);
    sum += v * v;
  }
  return sum;
}
} // namespace

Status rmsNormKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  FUSION_ASSIGN_OR_RETURN(double eps, context.floatAttr("eps"));
  const Tensor &x = context.inputs[0], &w = context.inputs[1], &y = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0 (x)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(w, "input 1 (w)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(y, "output 0 (y)"));
  if (x.info->shape.empty())
    return Status(StatusCode::kInvalidArgument,
                  "input 0 (x) must have at least one dimension, got a scalar");
  if (eps < 0)
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'eps' must be non-negative, got " + std::to_string(eps));
  uint64_t d = static_cast<uint64_t>(x.info->shape.back());
  if (w.info->shape.size() != 1 || w.info->numElements != d)
    return Status(StatusCode::kInvalidArgument,
                  "input 1 (w) must have shape [" + std::to_string(d) + "] to match x " +
                      formatShape(x.info->shape) + ", got " + formatShape(w.info->shape));
  FUSION_RETURN_IF_ERROR(context.expectNumElements(y, "output 0 (y)", x.info->numElements));
  if (d == 0)
    return Status::okStatus();
  uint64_t rows = x.info->numElements / d;
  context.parallelFor(rows, kRowGrain, [&](uint64_t begin, uint64_t end) {
    for (uint64_t r = begin; r < end; ++r) {
      uint64_t base = r * d;
      double scale = 1.0 / std::sqrt(sumOfSquares(x, base, d) / static_cast<double>(d) + eps);
      for (uint64_t j = 0; j < d; ++j) {
        double v = loadAsFloat(x.data, x.info->dtype, base + j);
        double weight = loadAsFloat(w.data, w.info->dtype, j);
        storeFromFloat(y.data, y.info->dtype, base + j, static_cast<float>(v * scale * weight));
      }
    }
  });
  return Status::okStatus();
}

Status l2NormKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(1, 1));
  FUSION_ASSIGN_OR_RETURN(double eps, context.floatAttr("eps"));
  FUSION_ASSIGN_OR_RETURN(double scale, context.floatAttr("scale"));
  const Tensor &x = context.inputs[0], &y = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0 (x)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(y, "output 0 (y)"));
  if (x.info->shape.empty())
    return Status(StatusCode::kInvalidArgument,
                  "input 0 (x) must have at least one dimension, got a scalar");
  if (!(eps > 0))
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'eps' must be positive, got " + std::to_string(eps));
  FUSION_RETURN_IF_ERROR(context.expectShape(y, "output 0 (y)", x.info->shape));
  uint64_t d = static_cast<uint64_t>(x.info->shape.back());
  if (d == 0)
    return Status::okStatus();
  uint64_t rows = x.info->numElements / d;
  context.parallelFor(rows, kRowGrain, [&](uint64_t begin, uint64_t end) {
    for (uint64_t r = begin; r < end; ++r) {
      uint64_t base = r * d;
      double factor = scale / std::sqrt(sumOfSquares(x, base, d) + eps);
      for (uint64_t j = 0; j < d; ++j) {
        double v = loadAsFloat(x.data, x.info->dtype, base + j);
        storeFromFloat(y.data, y.info->dtype, base + j, static_cast<float>(v * factor));
      }
    }
  });
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
