//===- rope_kernel.cc - Rotary position embedding --------------------------===//
//
// For x [B, T, …, d], position p = index along dimension 1 (plus the first position, for
// rope_at), the last d_r = rotary_dims
// components are rotated in interleaved pairs (MODEL.md §3): θ_k = theta^(−2k/d_r), φ = p·θ_k,
// (a, b) = (x_{o+2k}, x_{o+2k+1}) → (a cos φ − b sin φ, a sin φ + b cos φ) with o = d − d_r;
// the first o components pass through. The angle is formed in double (p·θ_k in fp32 would
// lose ~1e-4 rad at p = 4096) and cos/sin are rounded to fp32 tables, as the spec asks; the
// rotation itself is evaluated in double from those fp32 values and rounded once. A row is
// read before it is written, so the output may alias x.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

#include <cmath>

namespace fusion::rt::cpu {

Status rotaryKernel(const KernelContext &context, bool inverse, const char *inputRole,
                    const char *outputRole, int64_t firstPosition) {
  FUSION_ASSIGN_OR_RETURN(int64_t rotaryDims, context.intAttr("rotary_dims"));
  FUSION_ASSIGN_OR_RETURN(double theta, context.floatAttr("theta"));
  const Tensor &x = context.inputs[0], &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, inputRole));
  FUSION_RETURN_IF_ERROR(context.expectFloat(out, outputRole));
  const std::vector<int64_t> &shape = x.info->shape;
  if (shape.size() < 3)
    return tensorError(x, inputRole, "must have rank >= 3 ([B, T, ..., d])");
  FUSION_RETURN_IF_ERROR(context.expectShape(out, outputRole, shape));
  int64_t d = shape.back();
  if (rotaryDims < 2 || rotaryDims % 2 != 0 || rotaryDims > d)
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'rotary_dims' = " + std::to_string(rotaryDims) +
                      " must be even, >= 2 and <= the last dimension " + std::to_string(d));
  if (!(theta > 0))
    return Status(StatusCode::kInvalidArgument,
                  "attribute 'theta' must be positive, got " + std::to_string(theta));
  if (x.info->numElements == 0)
    return Status::okStatus();
  const uint64_t seqLen = static_cast<uint64_t>(shape[1]);
  const uint64_t half = static_cast<uint64_t>(rotaryDims / 2);
  const uint64_t offset = static_cast<uint64_t>(d - rotaryDims);
  // cos/sin per (position, pair), fp32; the inverse rotation R(−φ) negates sin.
  std::vector<float> cosTable(seqLen * half), sinTable(seqLen * half);
  for (uint64_t p = 0; p < seqLen; ++p)
    for (uint64_t k = 0; k < half; ++k) {
      double angle = static_cast<double>(static_cast<uint64_t>(firstPosition) + p) * std::pow(theta, -2.0 * static_cast<double>(k) /
                                                                  static_cast<double>(rotaryDims));
      cosTable[p * half + k] = static_cast<float>(std::cos(angle));
      sinTable[p * half + k] = static_cast<float>(std::sin(angle));
    }
  const double sign = inverse ? -1.0 : 1.0;
  const uint64_t rowsPerPosition = dimProduct(shape, 2, shape.size() - 1);
  const uint64_t rows = x.info->numElements / static_cast<uint64_t>(d);
  context.parallelFor(rows, 64, [&](uint64_t begin, uint64_t end) {
    std::vector<float> row(static_cast<uint64_t>(d));
    for (uint64_t r = begin; r < end; ++r) {
      uint64_t base = r * static_cast<uint64_t>(d);
      uint64_t p = (r / rowsPerPosition) % seqLen;
      loadRow(x, base, row.size(), row.data());
      for (uint64_t k = 0; k < half; ++k) {
        double c = cosTable[p * half + k], s = sign * sinTable[p * half + k];
        double a = row[offset + 2 * k], b = row[offset + 2 * k + 1];
        row[offset + 2 * k] = static_cast<float>(a * c - b * s);
        row[offset + 2 * k + 1] = static_cast<float>(a * s + b * c);
      }
      storeRow(out, base, row.size(), row.data());
    }
  });
  return Status::okStatus();
}

Status ropeKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(1, 1));
  return rotaryKernel(context, /*inverse=*/false, "input 0 (x)", "output 0");
}

} // namespace fusion::rt::cpu
