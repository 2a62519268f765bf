//===- causal_conv1d_kernel.cc - Depthwise causal convolution over time ----===//
//
// For x [B, T, C] and w [C, K]: y[b, t, c] = Σ_{j<K} w[c, j]·x[b, t − K + 1 + j, c], with x = 0
// before the row start and no bias (GDN's short convolution, MODEL.md §4.1). fp32 products
// summed in fp32 in tap order j = 0..K−1; one (row, time step) per work item.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

namespace fusion::rt::cpu {

Status causalConv1dKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  const Tensor &x = context.inputs[0], &w = context.inputs[1], &y = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0 (x)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(w, "input 1 (w)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(y, "output 0"));
  FUSION_RETURN_IF_ERROR(context.expectRank(x, "input 0 (x)", 3));
  FUSION_RETURN_IF_ERROR(context.expectRank(w, "input 1 (w)", 2));
  const int64_t batch = x.info->shape[0], seqLen = x.info->shape[1], channels = x.info->shape[2];
  if (w.info->shape[0] != channels)
    return tensorError(w, "input 1 (w)",
                       "must have one row per channel of x (" + std::to_string(channels) + ")");
  FUSION_RETURN_IF_ERROR(context.expectShape(y, "output 0", x.info->shape));
  const int64_t taps = w.info->shape[1];
  if (y.info->numElements == 0)
    return Status::okStatus();
  F32View xs(x), ws(w);
  const float *xData = xs.data(), *wData = ws.data();
  const uint64_t C = static_cast<uint64_t>(channels);
  context.parallelFor(static_cast<uint64_t>(batch * seqLen), 16, [&](uint64_t begin, uint64_t end) {
    std::vector<float> out(C);
    for (uint64_t row = begin; row < end; ++row) {
      int64_t t = static_cast<int64_t>(row % static_cast<uint64_t>(seqLen));
      uint64_t rowStart = row - static_cast<uint64_t>(t); // index of (b, 0)
      for (uint64_t c = 0; c < C; ++c) {
        float acc = 0;
        for (int64_t j = 0; j < taps; ++j) {
          int64_t source = t - taps + 1 + j;
          if (source >= 0)
            acc += wData[c * static_cast<uint64_t>(taps) + j] *
                   xData[(rowStart + static_cast<uint64_t>(source)) * C + c];
        }
        out[c] = acc;
      }
      storeRow(y, row * C, C, out.data());
    }
  });
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
