//===- kernel_registry.cc - Kind -> reference kernel table ----------------===//
//
// The single dispatch table of the CPU backend (op kind string -> reference kernel), the
// argument helpers every kernel uses to validate its launch (attributes by name, dtypes,
// shapes), and runKernel, which protects kernels from inputs that overlap their outputs.
// Adding an op kind to the CPU backend means adding its kernel and one row here.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"

#include "thread_pool.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace fusion::rt::cpu {

namespace {
/// Sorted by kind, so implementedKinds() lists them alphabetically.
constexpr KernelEntry kKernels[] = {
    {"activation_grad", activationGradKernel, true},
    {"adamw_update", adamwUpdateKernel, true},
    {"add", addKernel, true},
    {"attention", attentionKernel, false},
    {"attention_grad", attentionGradKernel, false},
    {"attention_lse", attentionLseKernel, false},
    {"attention_grad_lse", attentionGradLseKernel, false},
    {"broadcast", broadcastKernel, false},
    {"cast", castKernel, true},
    {"causal_conv1d", causalConv1dKernel, false},
    {"causal_conv1d_grad", causalConv1dGradKernel, false},
    {"causal_conv1d_step", causalConv1dStepKernel, true},
    {"concat", concatKernel, false},
    {"cross_entropy", crossEntropyKernel, false},
    {"cross_entropy_grad", crossEntropyGradKernel, true},
    {"embedding", embeddingKernel, false},
    {"embedding_grad", embeddingGradKernel, false},
    {"exp", expKernel, true},
    {"fill", fillKernel, true},
    {"fused_elementwise", fusedElementwiseKernel, true},
    {"gated_delta_rule", gatedDeltaRuleKernel, false},
    {"gated_delta_rule_grad", gatedDeltaRuleGradKernel, false},
    {"gated_delta_step", gatedDeltaStepKernel, true},
    {"grouped_matmul", groupedMatmulKernel, false},
    {"grouped_matmul_grad", groupedMatmulGradKernel, false},
    {"init_param", initParamKernel, true},
    {"kv_cache_attention", kvCacheAttentionKernel, true},
    {"l2_norm", l2NormKernel, true},
    {"l2_norm_grad", l2NormGradKernel, true},
    {"matmul", matmulKernel, false},
    {"moe_balance_loss", moeBalanceLossKernel, false},
    {"moe_balance_loss_grad", moeBalanceLossGradKernel, false},
    {"moe_bias_update", moeBiasUpdateKernel, true},
    {"moe_combine", moeCombineKernel, false},
    {"moe_combine_grad", moeCombineGradKernel, false},
    {"moe_dispatch", moeDispatchKernel, false},
    {"moe_dispatch_grad", moeDispatchGradKernel, false},
    {"moe_route", moeRouteKernel, false},
    {"moe_route_grad", moeRouteGradKernel, false},
    {"mul", mulKernel, true},
    {"neg", negKernel, true},
    {"normuon_finish", normuonFinishKernel, true},
    {"normuon_norm", normuonNormKernel, false},
    {"normuon_prepare", normuonPrepareKernel, true},
    {"normuon_rows", normuonRowsKernel, true},
    {"normuon_update", normuonUpdateKernel, true},
    {"reshape", reshapeKernel, true},
    {"rms_norm", rmsNormKernel, true},
    {"rms_norm_grad", rmsNormGradKernel, false},
    {"rope", ropeKernel, true},
    {"rope_at", ropeAtKernel, false},
    {"rope_grad", ropeGradKernel, true},
    {"scale", scaleKernel, true},
    {"sigmoid", sigmoidKernel, true},
    {"silu", siluKernel, true},
    {"slice", sliceKernel, false},
    {"slice_grad", sliceGradKernel, false},
    {"softcap", softcapKernel, true},
    {"softcap_ce", softcapCeKernel, false},
    {"softcap_ce_grad", softcapCeGradKernel, false},
    {"softcap_ce_rows", softcapCeRowsKernel, false},
    {"softcap_ce_rows_grad", softcapCeRowsGradKernel, false},
    {"softplus", softplusKernel, true},
    {"step_control", stepControlKernel, false},
    {"sub", subKernel, true},
    {"sum", sumKernel, false},
    {"swiglu", swigluKernel, true},
    {"swiglu_grad", swigluGradKernel, true},
    {"transpose", transposeKernel, false},
};

/// The attribute called `name`, or nullptr.
const schema::Attribute *findAttr(const schema::Kernel &kernel, std::string_view name) {
  if (kernel.attrs())
    for (const schema::Attribute *attr : *kernel.attrs())
      if (attr->name()->string_view() == name)
        return attr;
  return nullptr;
}

Status attrTypeError(std::string_view name, const char *expected, const schema::Attribute &attr) {
  return Status(StatusCode::kInvalidArgument, "attribute " + quoted(name) + " must be " + expected +
                                                  ", but it is of type " +
                                                  schema::EnumNameAttrType(attr.type()));
}

Status missingAttr(std::string_view name) {
  return Status(StatusCode::kInvalidArgument, "missing required attribute " + quoted(name));
}

/// Byte range of a tensor's storage.
struct ByteRange {
  const char *begin;
  const char *end;
};

ByteRange rangeOf(const Tensor &tensor) {
  const char *begin = static_cast<const char *>(tensor.data);
  return {begin, begin ? begin + tensor.info->byteSize : begin};
}

bool overlap(const Tensor &a, const Tensor &b) {
  ByteRange ra = rangeOf(a), rb = rangeOf(b);
  return ra.begin && rb.begin && ra.begin < rb.end && rb.begin < ra.end;
}

/// True when `a` and `b` are the same elements: same address, dtype and element count.
bool sameRegion(const Tensor &a, const Tensor &b) {
  return a.data == b.data && a.info->dtype == b.info->dtype &&
         a.info->numElements == b.info->numElements;
}
} // namespace

const KernelEntry *findKernel(std::string_view kind) {
  for (const KernelEntry &entry : kKernels)
    if (entry.kind == kind)
      return &entry;
  return nullptr;
}

std::string implementedKinds() {
  std::string out;
  for (const KernelEntry &entry : kKernels)
    out += (out.empty() ? "" : ", ") + std::string(entry.kind);
  return out;
}

Status runKernel(const KernelEntry &entry, KernelContext context) {
  std::vector<std::vector<char>> copies;
  for (Tensor &input : context.inputs) {
    bool mustCopy = false;
    for (const Tensor &output : context.outputs)
      if (overlap(input, output) && !(entry.inPlace && sameRegion(input, output)))
        mustCopy = true;
    if (!mustCopy)
      continue;
    const char *begin = static_cast<const char *>(input.data);
    copies.emplace_back(begin, begin + input.info->byteSize);
    input.data = copies.back().data();
  }
  return entry.fn(context);
}

StatusOr<double> KernelContext::floatAttr(std::string_view name,
                                          std::optional<double> defaultValue) const {
  if (const schema::Attribute *attr = findAttr(kernel, name)) {
    if (attr->type() == schema::AttrType::Float)
      return attr->f();
    if (attr->type() == schema::AttrType::Int)
      return static_cast<double>(attr->i());
    return attrTypeError(name, "a number", *attr);
  }
  if (defaultValue)
    return *defaultValue;
  return missingAttr(name);
}

StatusOr<int64_t> KernelContext::intAttr(std::string_view name,
                                         std::optional<int64_t> defaultValue) const {
  if (const schema::Attribute *attr = findAttr(kernel, name)) {
    if (attr->type() == schema::AttrType::Int)
      return attr->i();
    return attrTypeError(name, "an integer (Int)", *attr);
  }
  if (defaultValue)
    return *defaultValue;
  return missingAttr(name);
}

StatusOr<bool> KernelContext::flagAttr(std::string_view name) const {
  const schema::Attribute *attr = findAttr(kernel, name);
  if (!attr)
    return false;
  if (attr->type() != schema::AttrType::Int)
    return attrTypeError(name, "a flag (Int 0 or 1)", *attr);
  if (attr->i() != 0 && attr->i() != 1)
    return Status(StatusCode::kInvalidArgument, "attribute " + quoted(name) +
                                                    " must be 0 or 1, got " +
                                                    std::to_string(attr->i()));
  return attr->i() == 1;
}

StatusOr<std::vector<int64_t>> KernelContext::intsAttr(std::string_view name) const {
  const schema::Attribute *attr = findAttr(kernel, name);
  if (!attr)
    return missingAttr(name);
  if (attr->type() != schema::AttrType::Ints)
    return attrTypeError(name, "an integer list (Ints)", *attr);
  std::vector<int64_t> values;
  if (attr->ints())
    values.assign(attr->ints()->begin(), attr->ints()->end());
  return values;
}

StatusOr<std::string> KernelContext::stringAttr(std::string_view name) const {
  const schema::Attribute *attr = findAttr(kernel, name);
  if (!attr)
    return missingAttr(name);
  if (attr->type() != schema::AttrType::String)
    return attrTypeError(name, "a String", *attr);
  return attr->s() ? attr->s()->str() : std::string();
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
  return Status(StatusCode::kUnimplemented, role + " (buffer " + std::to_string(tensor.id) + " " +
                                                quoted(tensor.info->name) + ") has dtype " +
                                                dtypeName(tensor.info->dtype) +
                                                "; this kernel supports f32, bf16 and f16");
}

Status KernelContext::expectIndex(const Tensor &tensor, const std::string &role) const {
  schema::DType dtype = tensor.info->dtype;
  if (dtype == schema::DType::I32 || dtype == schema::DType::I64)
    return Status::okStatus();
  return Status(StatusCode::kUnimplemented, role + " (buffer " + std::to_string(tensor.id) + " " +
                                                quoted(tensor.info->name) + ") has dtype " +
                                                dtypeName(dtype) +
                                                "; this kernel supports i32 and i64 indices");
}

Status KernelContext::expectDType(const Tensor &tensor, const std::string &role,
                                  schema::DType dtype) const {
  if (tensor.info->dtype == dtype)
    return Status::okStatus();
  return Status(StatusCode::kUnimplemented, role + " (buffer " + std::to_string(tensor.id) + " " +
                                                quoted(tensor.info->name) + ") has dtype " +
                                                dtypeName(tensor.info->dtype) +
                                                "; this kernel needs " + dtypeName(dtype));
}

Status KernelContext::expectNumElements(const Tensor &tensor, const std::string &role,
                                        uint64_t count) const {
  if (tensor.info->numElements == count)
    return Status::okStatus();
  return Status(StatusCode::kInvalidArgument, role + " (buffer " + std::to_string(tensor.id) + " " +
                                                  quoted(tensor.info->name) + ", shape " +
                                                  formatShape(tensor.info->shape) + ") has " +
                                                  std::to_string(tensor.info->numElements) +
                                                  " elements, expected " + std::to_string(count));
}

Status KernelContext::expectRank(const Tensor &tensor, const std::string &role, size_t rank) const {
  if (tensor.info->shape.size() == rank)
    return Status::okStatus();
  return tensorError(tensor, role, "must have rank " + std::to_string(rank));
}

Status KernelContext::expectShape(const Tensor &tensor, const std::string &role,
                                  const std::vector<int64_t> &shape) const {
  if (tensor.info->shape == shape)
    return Status::okStatus();
  return tensorError(tensor, role, "must have shape " + formatShape(shape));
}

void KernelContext::parallelFor(uint64_t count, uint64_t grain,
                                const std::function<void(uint64_t, uint64_t)> &body) const {
  if (pool) {
    pool->parallelFor(count, grain, body);
    return;
  }
  if (count > 0)
    body(0, count);
}

Status tensorError(const Tensor &tensor, const std::string &role, const std::string &problem) {
  return Status(StatusCode::kInvalidArgument, role + " (buffer " + std::to_string(tensor.id) + " " +
                                                  quoted(tensor.info->name) + ", " +
                                                  dtypeName(tensor.info->dtype) +
                                                  formatShape(tensor.info->shape) + ") " + problem);
}

} // namespace fusion::rt::cpu
