//===- elementwise_kernels.cc - Elementwise reference kernels -------------===//
//
// fill, add, sub, mul, silu, sigmoid, exp, neg, softplus, scale, swiglu, softcap and cast.
// Each reads its operands as fp32 whatever the storage type and rounds once when storing,
// which is what a device kernel with fp32 math does; the transcendental functions are
// evaluated in double so the oracle is at least as accurate as any device version. Element
// i is read before it is written, so an output may alias one of its inputs exactly (in-place
// updates), which plans use for accumulations. Large tensors are split into fixed chunks over
// the executor's pool; every element is an independent function of its inputs, so the split
// cannot change a result.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

#include <algorithm>
#include <cmath>

namespace fusion::rt::cpu {

namespace {

/// Elements per parallel work item.
constexpr uint64_t kChunk = 1 << 15;

/// Shared body of the one-operand kernels: out[i] = op(x[i]) with op on double.
template <typename Op> Status unaryKernel(const KernelContext &context, Op op) {
  FUSION_RETURN_IF_ERROR(context.expectArity(1, 1));
  const Tensor &x = context.inputs[0], &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(out, "output 0"));
  uint64_t n = x.info->numElements;
  FUSION_RETURN_IF_ERROR(context.expectNumElements(out, "output 0", n));
  context.parallelFor(n, kChunk, [&](uint64_t begin, uint64_t end) {
    for (uint64_t i = begin; i < end; ++i) {
      double v = loadAsFloat(x.data, x.info->dtype, i);
      storeFromFloat(out.data, out.info->dtype, i, static_cast<float>(op(v)));
    }
  });
  return Status::okStatus();
}

/// Shared body of the two-operand kernels: out[i] = op(a[i], b[i]) with op on float.
template <typename Op> Status binaryKernel(const KernelContext &context, Op op) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  const Tensor &a = context.inputs[0], &b = context.inputs[1], &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(a, "input 0"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(b, "input 1"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(out, "output 0"));
  uint64_t n = a.info->numElements;
  FUSION_RETURN_IF_ERROR(context.expectNumElements(b, "input 1", n));
  FUSION_RETURN_IF_ERROR(context.expectNumElements(out, "output 0", n));
  context.parallelFor(n, kChunk, [&](uint64_t begin, uint64_t end) {
    for (uint64_t i = begin; i < end; ++i) {
      float x = loadAsFloat(a.data, a.info->dtype, i);
      float y = loadAsFloat(b.data, b.info->dtype, i);
      storeFromFloat(out.data, out.info->dtype, i, op(x, y));
    }
  });
  return Status::okStatus();
}

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

} // namespace

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
    context.parallelFor(n, kChunk, [&](uint64_t begin, uint64_t end) {
      for (uint64_t i = begin; i < end; ++i)
        storeFromFloat(out.data, out.info->dtype, i,
                       static_cast<float>(value + step * static_cast<double>(i)));
    });
    return Status::okStatus();
  }
}

Status addKernel(const KernelContext &context) {
  return binaryKernel(context, [](float x, float y) { return x + y; });
}

Status subKernel(const KernelContext &context) {
  return binaryKernel(context, [](float x, float y) { return x - y; });
}

Status mulKernel(const KernelContext &context) {
  return binaryKernel(context, [](float x, float y) { return x * y; });
}

Status swigluKernel(const KernelContext &context) {
  return binaryKernel(context, [](float gate, float up) {
    double g = gate;
    return static_cast<float>(g * sigmoid(g) * up);
  });
}

Status siluKernel(const KernelContext &context) {
  return unaryKernel(context, [](double v) { return v * sigmoid(v); });
}

Status sigmoidKernel(const KernelContext &context) {
  return unaryKernel(context, [](double v) { return sigmoid(v); });
}

Status expKernel(const KernelContext &context) {
  return unaryKernel(context, [](double v) { return std::exp(v); });
}

Status negKernel(const KernelContext &context) {
  return unaryKernel(context, [](double v) { return -v; });
}

Status softplusKernel(const KernelContext &context) {
  // ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|) avoids overflow for large x; MODEL.md §1 fixes
  // the value x itself above 20.
  return unaryKernel(context, [](double v) {
    return v > 20 ? v : std::max(v, 0.0) + std::log1p(std::exp(-std::abs(v)));
  });
}

Status scaleKernel(const KernelContext &context) {
  FUSION_ASSIGN_OR_RETURN(double factor, context.floatAttr("factor"));
  return unaryKernel(context, [factor](double v) { return factor * v; });
}

Status softcapKernel(const KernelContext &context) {
  FUSION_ASSIGN_OR_RETURN(double cap, context.floatAttr("cap"));
  if (!(cap > 0))
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'cap' must be positive, got " + std::to_string(cap));
  return unaryKernel(context, [cap](double v) { return cap * std::tanh(v / cap); });
}

Status castKernel(const KernelContext &context) {
  // i32 -> float (expert counts): exact below 2^24, then the store's rounding.
  if (context.inputs.size() == 1 && context.inputs[0].info->dtype == schema::DType::I32) {
    FUSION_RETURN_IF_ERROR(context.expectArity(1, 1));
    const Tensor &x = context.inputs[0], &out = context.outputs[0];
    FUSION_RETURN_IF_ERROR(context.expectFloat(out, "output 0"));
    uint64_t n = x.info->numElements;
    FUSION_RETURN_IF_ERROR(context.expectNumElements(out, "output 0", n));
    for (uint64_t i = 0; i < n; ++i)
      storeFromFloat(out.data, out.info->dtype, i,
                     static_cast<float>(static_cast<const int32_t *>(x.data)[i]));
    return Status::okStatus();
  }
  // Widening to f32 is exact, so the one rounding is the store's (nearest even).
  return unaryKernel(context, [](double v) { return v; });
}

} // namespace fusion::rt::cpu
