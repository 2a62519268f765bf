//===- kernel_util.h - Helpers shared by the CPU reference kernels --------===//
//
// Tensor access in fp32 whatever the storage (whole-buffer views and row loads/stores with an
// f32 fast path), index loads (i32 or i64), saturating shape products (a shape with a zero
// dimension may have sub-products that overflow), and the two inner loops of the fp32 kernels:
// a dot product with eight fixed partial sums (vectorisable, and the same summation order on
// every call, hence deterministic) and axpy.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "cpu_kernels.h"

#include "../numeric.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace fusion::rt::cpu {

/// An f32 view of a whole float buffer: the buffer itself for f32, else a widened copy.
class F32View {
public:
  F32View(const BufferInfo &info, const void *data) : info_(info) {
    if (info.dtype == schema::DType::F32) {
      view_ = static_cast<const float *>(data);
      return;
    }
    copy_.resize(info.numElements);
    for (uint64_t i = 0; i < info.numElements; ++i)
      copy_[i] = loadAsFloat(data, info.dtype, i);
    view_ = copy_.data();
  }
  explicit F32View(const Tensor &tensor) : F32View(*tensor.info, tensor.data) {}
  const float *data() const { return view_; }
  float *mutableData() { return copy_.empty() ? const_cast<float *>(view_) : copy_.data(); }
  /// Stores a widened copy back into its buffer (no-op for f32, which was used in place).
  void storeBack(void *data) const {
    for (uint64_t i = 0; i < copy_.size(); ++i)
      storeFromFloat(data, info_.dtype, i, copy_[i]);
  }

private:
  const BufferInfo &info_;
  const float *view_ = nullptr;
  std::vector<float> copy_;
};

/// Reads `count` elements of `tensor` starting at element `offset` into `dst` as f32.
inline void loadRow(const Tensor &tensor, uint64_t offset, uint64_t count, float *dst) {
  if (tensor.info->dtype == schema::DType::F32) {
    std::memcpy(dst, static_cast<const float *>(tensor.data) + offset, count * sizeof(float));
    return;
  }
  for (uint64_t i = 0; i < count; ++i)
    dst[i] = loadAsFloat(tensor.data, tensor.info->dtype, offset + i);
}

/// Writes `count` f32 values to `tensor` at element `offset`, rounding to its storage type.
inline void storeRow(const Tensor &tensor, uint64_t offset, uint64_t count, const float *src) {
  if (tensor.info->dtype == schema::DType::F32) {
    std::memcpy(static_cast<float *>(tensor.data) + offset, src, count * sizeof(float));
    return;
  }
  for (uint64_t i = 0; i < count; ++i)
    storeFromFloat(tensor.data, tensor.info->dtype, offset + i, src[i]);
}

/// Element `i` of an i32 or i64 buffer.
inline int64_t loadIndex(const Tensor &tensor, uint64_t i) {
  if (tensor.info->dtype == schema::DType::I64) {
    int64_t v;
    std::memcpy(&v, static_cast<const char *>(tensor.data) + 8 * i, 8);
    return v;
  }
  int32_t v;
  std::memcpy(&v, static_cast<const char *>(tensor.data) + 4 * i, 4);
  return v;
}

/// Writes element `i` of an i32 buffer.
inline void storeI32(const Tensor &tensor, uint64_t i, int32_t value) {
  std::memcpy(static_cast<char *>(tensor.data) + 4 * i, &value, 4);
}

/// Product of shape[begin, end), saturating at UINT64_MAX (never wraps).
inline uint64_t dimProduct(const std::vector<int64_t> &shape, size_t begin, size_t end) {
  uint64_t product = 1;
  for (size_t i = begin; i < end && i < shape.size(); ++i) {
    std::optional<uint64_t> next = checkedMul(product, static_cast<uint64_t>(shape[i]));
    if (!next)
      return std::numeric_limits<uint64_t>::max();
    product = *next;
  }
  return product;
}

/// "[1,2,3]" for an integer list (attribute values in messages).
inline std::string formatList(const std::vector<int64_t> &values) { return formatShape(values); }

/// Σ a[i]·b[i] in fp32 with eight partial sums combined in a fixed order.
inline float dotF32(const float *a, const float *b, uint64_t n) {
  float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l)
      partial[l] += a[i + l] * b[i + l];
  for (int l = 0; i < n; ++i, ++l)
    partial[l] += a[i] * b[i];
  return ((partial[0] + partial[4]) + (partial[1] + partial[5])) +
         ((partial[2] + partial[6]) + (partial[3] + partial[7]));
}

/// y[i] += alpha·x[i].
inline void axpyF32(float alpha, const float *x, float *y, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i)
    y[i] += alpha * x[i];
}

} // namespace fusion::rt::cpu
