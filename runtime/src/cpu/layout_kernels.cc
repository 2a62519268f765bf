//===- layout_kernels.cc - reshape, transpose, slice, concat, broadcast, sum ===//
//
// Data-movement kernels copy elements bit for bit (any dtype, f32/bf16/f16/i32/i64, the same
// on both sides), so they never round. transpose and broadcast are one strided gather: every
// output dimension has an input stride (0 for a broadcast dimension), and the output is
// walked in row-major order with a carried multi-index, in fixed chunks over the pool. slice
// and concat are block copies of the contiguous inner part. sum accumulates in double per
// output element, in input order, then rounds once.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

#include <cstring>

namespace fusion::rt::cpu {

namespace {

/// Output elements per parallel work item of the gathers.
constexpr uint64_t kChunk = 1 << 15;

Status expectSameDType(const Tensor &a, const std::string &roleA, const Tensor &b,
                       const std::string &roleB) {
  if (a.info->dtype == b.info->dtype)
    return Status::okStatus();
  return tensorError(b, roleB,
                     "must have the dtype of " + roleA + " (" + dtypeName(a.info->dtype) + ")");
}

/// Row-major element strides of `shape`.
std::vector<uint64_t> stridesOf(const std::vector<int64_t> &shape) {
  std::vector<uint64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    strides[d - 1] = strides[d] * static_cast<uint64_t>(shape[d]);
  return strides;
}

/// out[o] = in[Σ_d index_d(o)·inStride[d]] for every element o of `out`, with `T` the
/// element's bit pattern type.
template <typename T>
void gather(const KernelContext &context, const Tensor &in, const Tensor &out,
            const std::vector<uint64_t> &inStride) {
  const std::vector<int64_t> &shape = out.info->shape;
  const size_t rank = shape.size();
  const T *src = static_cast<const T *>(in.data);
  T *dst = static_cast<T *>(out.data);
  context.parallelFor(out.info->numElements, kChunk, [&](uint64_t begin, uint64_t end) {
    std::vector<uint64_t> index(rank, 0);
    uint64_t rest = begin, offset = 0;
    for (size_t d = rank; d-- > 0;) {
      index[d] = rest % static_cast<uint64_t>(shape[d]);
      rest /= static_cast<uint64_t>(shape[d]);
      offset += index[d] * inStride[d];
    }
    for (uint64_t o = begin; o < end; ++o) {
      std::memcpy(dst + o, src + offset, sizeof(T));
      for (size_t d = rank; d-- > 0;) { // increment the multi-index, carrying
        offset += inStride[d];
        if (++index[d] < static_cast<uint64_t>(shape[d]))
          break;
        offset -= index[d] * inStride[d];
        index[d] = 0;
      }
    }
  });
}

void gatherAnyType(const KernelContext &context, const Tensor &in, const Tensor &out,
                   const std::vector<uint64_t> &inStride) {
  if (out.info->numElements == 0)
    return;
  switch (dtypeSize(out.info->dtype)) {
  case 2:
    return gather<uint16_t>(context, in, out, inStride);
  case 8:
    return gather<uint64_t>(context, in, out, inStride);
  default:
    return gather<uint32_t>(context, in, out, inStride);
  }
}

/// Checks that `dims` is strictly increasing and inside [0, rank).
Status checkDimList(const std::vector<int64_t> &dims, const char *name, size_t rank) {
  for (size_t j = 0; j < dims.size(); ++j) {
    if (dims[j] < 0 || static_cast<uint64_t>(dims[j]) >= rank)
      return Status(StatusCode::kInvalidArgument,
                    "attribute '" + std::string(name) + "' " + formatList(dims) + " has entry " +
                        std::to_string(dims[j]) + " outside [0, " + std::to_string(rank) + ")");
    if (j > 0 && dims[j] <= dims[j - 1])
      return Status(StatusCode::kInvalidArgument, "attribute '" + std::string(name) + "' " +
                                                      formatList(dims) +
                                                      " must be strictly increasing");
  }
  return Status::okStatus();
}

} // namespace

Status reshapeKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(1, 1));
  const Tensor &x = context.inputs[0], &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(expectSameDType(x, "input 0", out, "output 0"));
  FUSION_RETURN_IF_ERROR(context.expectNumElements(out, "output 0", x.info->numElements));
  if (x.info->byteSize && x.data != out.data)
    std::memmove(out.data, x.data, x.info->byteSize);
  return Status::okStatus();
}

Status transposeKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(1, 1));
  FUSION_ASSIGN_OR_RETURN(std::vector<int64_t> perm, context.intsAttr("perm"));
  const Tensor &x = context.inputs[0], &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(expectSameDType(x, "input 0", out, "output 0"));
  const std::vector<int64_t> &inShape = x.info->shape;
  size_t rank = inShape.size();
  if (perm.size() != rank)
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'perm' " + formatList(perm) + " has " + std::to_string(perm.size()) +
                      " entries, but input 0 has rank " + std::to_string(rank));
  std::vector<bool> seen(rank, false);
  for (int64_t p : perm) {
    if (p < 0 || static_cast<uint64_t>(p) >= rank || seen[p])
      return Status(StatusCode::kInvalidArgument, "attribute 'perm' " + formatList(perm) +
                                                      " is not a permutation of 0.." +
                                                      std::to_string(rank - 1));
    seen[p] = true;
  }
  std::vector<int64_t> expected(rank);
  for (size_t d = 0; d < rank; ++d)
    expected[d] = inShape[perm[d]];
  FUSION_RETURN_IF_ERROR(context.expectShape(out, "output 0", expected));
  std::vector<uint64_t> inStrides = stridesOf(inShape), stride(rank);
  for (size_t d = 0; d < rank; ++d)
    stride[d] = inStrides[perm[d]];
  gatherAnyType(context, x, out, stride);
  return Status::okStatus();
}

Status broadcastKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(1, 1));
  FUSION_ASSIGN_OR_RETURN(std::vector<int64_t> dims, context.intsAttr("dims"));
  const Tensor &x = context.inputs[0], &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(expectSameDType(x, "input 0", out, "output 0"));
  const std::vector<int64_t> &inShape = x.info->shape, &outShape = out.info->shape;
  if (dims.size() != inShape.size())
    return Status(StatusCode::kInvalidArgument, "attribute 'dims' " + formatList(dims) +
                                                    " needs one entry per input " + "dimension (" +
                                                    std::to_string(inShape.size()) + ")");
  FUSION_RETURN_IF_ERROR(checkDimList(dims, "dims", outShape.size()));
  for (size_t j = 0; j < dims.size(); ++j)
    if (outShape[dims[j]] != inShape[j])
      return tensorError(out, "output 0",
                         "must have size " + std::to_string(inShape[j]) + " at dimension " +
                             std::to_string(dims[j]) + " (input dimension " + std::to_string(j) +
                             ", attribute 'dims' " + formatList(dims) + ")");
  std::vector<uint64_t> inStrides = stridesOf(inShape), stride(outShape.size(), 0);
  for (size_t j = 0; j < dims.size(); ++j)
    stride[dims[j]] = inStrides[j];
  gatherAnyType(context, x, out, stride);
  return Status::okStatus();
}

Status sliceKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(1, 1));
  FUSION_ASSIGN_OR_RETURN(int64_t dim, context.intAttr("dim"));
  FUSION_ASSIGN_OR_RETURN(int64_t start, context.intAttr("start"));
  FUSION_ASSIGN_OR_RETURN(int64_t size, context.intAttr("size"));
  const Tensor &x = context.inputs[0], &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(expectSameDType(x, "input 0", out, "output 0"));
  const std::vector<int64_t> &inShape = x.info->shape;
  if (dim < 0 || static_cast<uint64_t>(dim) >= inShape.size())
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'dim' = " + std::to_string(dim) + " is outside [0, " +
                      std::to_string(inShape.size()) + ") for input 0 of shape " +
                      formatShape(inShape));
  if (start < 0 || size < 1 || start > inShape[dim] - size)
    return Status(StatusCode::kInvalidArgument,
                  "slice [" + std::to_string(start) + ", " + std::to_string(start) + "+" +
                      std::to_string(size) + ") does not fit dimension " + std::to_string(dim) +
                      " of size " + std::to_string(inShape[dim]));
  std::vector<int64_t> expected = inShape;
  expected[dim] = size;
  FUSION_RETURN_IF_ERROR(context.expectShape(out, "output 0", expected));
  uint64_t outer = dimProduct(inShape, 0, dim);
  uint64_t inner = dimProduct(inShape, dim + 1, inShape.size()) * dtypeSize(x.info->dtype);
  if (out.info->numElements == 0)
    return Status::okStatus();
  const char *src = static_cast<const char *>(x.data);
  char *dst = static_cast<char *>(out.data);
  for (uint64_t o = 0; o < outer; ++o)
    std::memcpy(dst + o * size * inner, src + (o * inShape[dim] + start) * inner, size * inner);
  return Status::okStatus();
}

Status concatKernel(const KernelContext &context) {
  if (context.inputs.empty() || context.outputs.size() != 1)
    return Status(StatusCode::kInvalidArgument, "expects at least 1 input and 1 output, got " +
                                                    std::to_string(context.inputs.size()) +
                                                    " and " +
                                                    std::to_string(context.outputs.size()));
  FUSION_ASSIGN_OR_RETURN(int64_t dim, context.intAttr("dim"));
  const Tensor &out = context.outputs[0];
  const std::vector<int64_t> &outShape = out.info->shape;
  if (dim < 0 || static_cast<uint64_t>(dim) >= outShape.size())
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'dim' = " + std::to_string(dim) + " is outside [0, " +
                      std::to_string(outShape.size()) + ") for output 0 of shape " +
                      formatShape(outShape));
  uint64_t total = 0;
  for (size_t i = 0; i < context.inputs.size(); ++i) {
    const Tensor &x = context.inputs[i];
    std::string role = "input " + std::to_string(i);
    FUSION_RETURN_IF_ERROR(expectSameDType(out, "output 0", x, role));
    const std::vector<int64_t> &shape = x.info->shape;
    bool ok = shape.size() == outShape.size();
    for (size_t d = 0; ok && d < shape.size(); ++d)
      ok = d == static_cast<uint64_t>(dim) || shape[d] == outShape[d];
    if (!ok)
      return tensorError(x, role,
                         "must match output 0 " + formatShape(outShape) +
                             " in every dimension but " + std::to_string(dim));
    total += shape[dim];
  }
  if (total != static_cast<uint64_t>(outShape[dim]))
    return tensorError(out, "output 0",
                       "must have size " + std::to_string(total) +
                           " (the inputs' sum) at dimension " + std::to_string(dim));
  if (out.info->numElements == 0)
    return Status::okStatus();
  uint64_t outer = dimProduct(outShape, 0, dim);
  uint64_t inner = dimProduct(outShape, dim + 1, outShape.size()) * dtypeSize(out.info->dtype);
  char *dst = static_cast<char *>(out.data);
  uint64_t position = 0; // along dim
  for (const Tensor &x : context.inputs) {
    uint64_t size = static_cast<uint64_t>(x.info->shape[dim]);
    const char *src = static_cast<const char *>(x.data);
    for (uint64_t o = 0; o < outer && size > 0; ++o)
      std::memcpy(dst + (o * outShape[dim] + position) * inner, src + o * size * inner,
                  size * inner);
    position += size;
  }
  return Status::okStatus();
}

Status sumKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(1, 1));
  FUSION_ASSIGN_OR_RETURN(std::vector<int64_t> dims, context.intsAttr("dims"));
  const Tensor &x = context.inputs[0], &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(out, "output 0"));
  const std::vector<int64_t> &inShape = x.info->shape;
  size_t rank = inShape.size();
  FUSION_RETURN_IF_ERROR(checkDimList(dims, "dims", rank));
  std::vector<bool> reduced(rank, false);
  for (int64_t d : dims)
    reduced[d] = true;
  std::vector<int64_t> expected;
  for (size_t d = 0; d < rank; ++d)
    if (!reduced[d])
      expected.push_back(inShape[d]);
  FUSION_RETURN_IF_ERROR(context.expectShape(out, "output 0", expected));
  // Walk the input in order; each element lands on the output element of its kept indices.
  std::vector<uint64_t> outStrides = stridesOf(expected), stride(rank, 0);
  for (size_t d = 0, k = 0; d < rank; ++d)
    if (!reduced[d])
      stride[d] = outStrides[k++];
  std::vector<double> sums(out.info->numElements, 0.0);
  std::vector<uint64_t> index(rank, 0);
  uint64_t offset = 0;
  for (uint64_t i = 0; i < x.info->numElements; ++i) {
    sums[offset] += loadAsFloat(x.data, x.info->dtype, i);
    for (size_t d = rank; d-- > 0;) {
      offset += stride[d];
      if (++index[d] < static_cast<uint64_t>(inShape[d]))
        break;
      offset -= index[d] * stride[d];
      index[d] = 0;
    }
  }
  for (uint64_t o = 0; o < sums.size(); ++o)
    storeFromFloat(out.data, out.info->dtype, o, static_cast<float>(sums[o]));
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
