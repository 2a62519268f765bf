//===- embedding_kernel.cc - Embedding row gather --------------------------===//
//
// out[..., :] = table[ids[...], :] for a table [V, D] and i32/i64 ids of any shape; the
// result has shape ids.shape × D and the table's dtype, so rows are copied bit for bit. All
// ids are checked before anything is written: an id outside [0, V) is an error naming its
// value and position (flat and multi-index), which is how a corrupt data shard shows up.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

#include <cstring>

namespace fusion::rt::cpu {

namespace {
/// "[1,5]": the multi-index of flat element `flat` of `shape`.
std::string multiIndex(uint64_t flat, const std::vector<int64_t> &shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = static_cast<int64_t>(flat % static_cast<uint64_t>(shape[d]));
    flat /= static_cast<uint64_t>(shape[d]);
  }
  return formatShape(index);
}
} // namespace

Status embeddingKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  const Tensor &table = context.inputs[0], &ids = context.inputs[1], &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(table, "input 0 (table)"));
  FUSION_RETURN_IF_ERROR(context.expectIndex(ids, "input 1 (ids)"));
  FUSION_RETURN_IF_ERROR(context.expectRank(table, "input 0 (table)", 2));
  FUSION_RETURN_IF_ERROR(context.expectDType(out, "output 0", table.info->dtype));
  int64_t vocab = table.info->shape[0], dim = table.info->shape[1];
  std::vector<int64_t> expected = ids.info->shape;
  expected.push_back(dim);
  FUSION_RETURN_IF_ERROR(context.expectShape(out, "output 0", expected));
  uint64_t count = ids.info->numElements;
  for (uint64_t i = 0; i < count; ++i) {
    int64_t id = loadIndex(ids, i);
    if (id < 0 || id >= vocab)
      return tensorError(ids, "input 1 (ids)",
                         "element " + std::to_string(i) + " (index " +
                             multiIndex(i, ids.info->shape) + ") is " + std::to_string(id) +
                             ", outside the table's rows [0, " + std::to_string(vocab) + ")");
  }
  if (out.info->numElements == 0)
    return Status::okStatus();
  uint64_t rowBytes = static_cast<uint64_t>(dim) * dtypeSize(table.info->dtype);
  const char *src = static_cast<const char *>(table.data);
  char *dst = static_cast<char *>(out.data);
  context.parallelFor(count, 256, [&](uint64_t begin, uint64_t end) {
    for (uint64_t i = begin; i < end; ++i)
      std::memcpy(dst + i * rowBytes, src + static_cast<uint64_t>(loadIndex(ids, i)) * rowBytes,
                  rowBytes);
  });
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
