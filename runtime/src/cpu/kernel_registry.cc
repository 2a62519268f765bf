//===- kernel_registry.cc - Kind -> reference kernel table ----------------===//
//
// The single dispatch table of the CPU backend (op kind string -> reference kernel), plus the
// argument helpers every kernel uses to validate its launch. Adding an op kind to the CPU
// backend means adding its kernel and one row here.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"

#include <algorithm>
#include <utility>

namespace fusion::rt::cpu {

namespace {
/// Sorted by kind, so implementedKinds() lists them alphabetically.
constexpr std::pair<std::string_view, KernelFn> kKernels[] = {
    {"add", addKernel},
    {"fill", fillKernel},
    {"mul", mulKernel},
    {"rms_norm", rmsNormKernel},
    {"silu", siluKernel},
};
} // namespace

KernelFn findKernel(std::string_view kind) {
  for (const auto &[name, fn] : kKernels)
    if (name == kind)
      return fn;
  return nullptr;
}

std::string implementedKinds() {
  std::string out;
  for (const auto &entry : kKernels)
    out += (out.empty() ? "" : ", ") + std::string(entry.first);
  return out;
}

StatusOr<double> KernelContext::floatAttr(std::string_view name,
                                          std::optional<double> defaultValue) const {
  if (kernel.attrs())
    for (const schema::Attribute *attr : *kernel.attrs()) {
      if (attr->name()->string_view() != name)
        continue;
      if (attr->type() == schema::AttrType::Float)
        return attr->f();
      if (attr->type() == schema::AttrType::Int)
        return static_cast<double>(attr->i());
      return Status(StatusCode::kInvalidArgument,
                    "attribute " + quoted(name) + " must be a number, but it is of type " +
                        schema::EnumNameAttrType(attr->type()));
    }
  if (defaultValue)
    return *defaultValue;
  return Status(StatusCode::kInvalidArgument,
                "missing required attribute " + quoted(name));
}

Status KernelContext::expectArity(size_t numInputs, size_t numOutputs) const {
  if (inputs.size() == numInputs && outputs.size() == numOutputs)
    return Status::okStatus();
  return Status(StatusCode::kInvalidArgument,
                "expects " + std::to_string(numInputs) + " input(s) and " +
                    std::to_string(numOutputs) + " output(s), got " +
                    std::to_string(inputs.size()) + " and " + std::to_string(outputs.size()));
}

Status KernelContext::expectFloat(const Tensor &tensor, const std::string &role) const {
  if (isFloatDType(tensor.info->dtype))
    return Status::okStatus();
  return Status(StatusCode::kUnimplemented,
                role + " (buffer " + std::to_string(tensor.id) + " " +
                    quoted(tensor.info->name) + ") has dtype " + dtypeName(tensor.info->dtype) +
                    "; this kernel supports f32, bf16 and f16");
}

Status KernelContext::expectNumElements(const Tensor &tensor, const std::string &role,
                                        uint64_t count) const {
  if (tensor.info->numElements == count)
    return Status::okStatus();
  return Status(StatusCode::kInvalidArgument,
                role + " (buffer " + std::to_string(tensor.id) + " " +
                    quoted(tensor.info->name) + ", shape " + formatShape(tensor.info->shape) +
                    ") has " + std::to_string(tensor.info->numElements) + " elements, expected " +
                    std::to_string(count));
}

} // namespace fusion::rt::cpu
