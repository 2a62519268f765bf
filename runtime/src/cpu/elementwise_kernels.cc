//===- elementwise_kernels.cc - fill, add, mul, silu reference kernels ----===//
//
// Elementwise reference kernels. Each reads its operands as fp32 whatever the storage type and
// rounds once when storing, which is what a device kernel with fp32 math does; silu evaluates
// the sigmoid in double so the oracle is at least as accurate as any device version. Element
// i is read before it is written, so an output may alias one of its inputs exactly (in-place
// updates), which plans use for accumulations.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"

#include "../numeric.h"

#include <cmath>

namespace fusion::rt::cpu {

Status fillKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(0, 1));
  FUSION_ASSIGN_OR_RETURN(double value, context.floatAttr("value"));
  FUSION_ASSIGN_OR_RETURN(double step, context.floatAttr("step", 0.0));
  const Tensor &out = context.outputs[0];
  uint64_t n = out.info->numElements;
  switch (out.info->dtype) {
  case schema::DType::I32:
    for (uint64_t i = 0; i < n; ++i)
      static_cast<int32_t *>(out.data)[i] =
          static_cast<int32_t>(std::llround(value + step * static_cast<double>(i)));
    return Status::okStatus();
  case schema::DType::I64:
    for (uint64_t i = 0; i < n; ++i)
      static_cast<int64_t *>(out.data)[i] =
          static_cast<int64_t>(std::llround(value + step * static_cast<double>(i)));
    return Status::okStatus();
  default:
    for (uint64_t i = 0; i < n; ++i)
      storeFromFloat(out.data, out.info->dtype, i,
                     static_cast<float>(value + step * static_cast<double>(i)));
    return Status::okStatus();
  }
}

/// Shared body of the two-operand elementwise kernels.
template <typename Op> static Status binaryKernel(const KernelContext &context, Op op) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  const Tensor &a = context.inputs[0], &b = context.inputs[1], &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(a, "input 0"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(b, "input 1"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(out, "output 0"));
  uint64_t n = a.info->numElements;
  FUSION_RETURN_IF_ERROR(context.expectNumElements(b, "input 1", n));
  FUSION_RETURN_IF_ERROR(context.expectNumElements(out, "output 0", n));
  for (uint64_t i = 0; i < n; ++i) {
    float x = loadAsFloat(a.data, a.info->dtype, i);
    float y = loadAsFloat(b.data, b.info->dtype, i);
    storeFromFloat(out.data, out.info->dtype, i, op(x, y));
  }
  return Status::okStatus();
}

Status addKernel(const KernelContext &context) {
  return binaryKernel(context, [](float x, float y) { return x + y; });
}

Status mulKernel(const KernelContext &context) {
  return binaryKernel(context, [](float x, float y) { return x * y; });
}

Status siluKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(1, 1));
  const Tensor &x = context.inputs[0], &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(out, "output 0"));
  uint64_t n = x.info->numElements;
  FUSION_RETURN_IF_ERROR(context.expectNumElements(out, "output 0", n));
  for (uint64_t i = 0; i < n; ++i) {
    double v = loadAsFloat(x.data, x.info->dtype, i);
    storeFromFloat(out.data, out.info->dtype, i, static_cast<float>(v / (1.0 + std::exp(-v))));
  }
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
