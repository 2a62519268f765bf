//===- loss_kernels.cc - Per-token cross-entropy ---------------------------===//
//
// loss[n] = logsumexp(z[n, :]) − z[n, y[n]] for y[n] ≥ 0 and 0 for y[n] < 0 (an ignored,
// padding target; MODEL.md §8, §14.3). A target ≥ V is an error naming its position, found
// before anything is written. The log-sum-exp subtracts the row maximum and accumulates the
// fp32 exponentials in double (rows are vocabulary-long: 152k terms), one row per work item.
// Softcapping is a separate `softcap` kernel before this one.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

#include <algorithm>
#include <cmath>

namespace fusion::rt::cpu {

Status crossEntropyKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  const Tensor &logits = context.inputs[0], &targets = context.inputs[1];
  const Tensor &loss = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(logits, "input 0 (logits)"));
  FUSION_RETURN_IF_ERROR(context.expectIndex(targets, "input 1 (targets)"));
  FUSION_RETURN_IF_ERROR(context.expectDType(loss, "output 0 (loss)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectRank(logits, "input 0 (logits)", 2));
  const int64_t N = logits.info->shape[0], V = logits.info->shape[1];
  FUSION_RETURN_IF_ERROR(context.expectShape(targets, "input 1 (targets)", {N}));
  FUSION_RETURN_IF_ERROR(context.expectShape(loss, "output 0 (loss)", {N}));
  for (uint64_t n = 0; n < static_cast<uint64_t>(N); ++n) {
    int64_t target = loadIndex(targets, n);
    if (target >= V)
      return tensorError(targets, "input 1 (targets)",
                         "element " + std::to_string(n) + " is " + std::to_string(target) +
                             ", not below the vocabulary size " + std::to_string(V) +
                             " (negative targets are ignored)");
  }
  const uint64_t vocab = static_cast<uint64_t>(V);
  float *out = static_cast<float *>(loss.data);
  context.parallelFor(static_cast<uint64_t>(N), 4, [&](uint64_t begin, uint64_t end) {
    std::vector<float> row(vocab);
    for (uint64_t n = begin; n < end; ++n) {
      int64_t target = loadIndex(targets, n);
      if (target < 0) {
        out[n] = 0;
        continue;
      }
      loadRow(logits, n * vocab, vocab, row.data());
      float maximum = -INFINITY;
      for (float z : row)
        maximum = std::max(maximum, z);
      double sum = 0; // fp32 exponentials (arguments ≤ 0), accumulated in double
      for (float z : row)
        sum += std::exp(z - maximum);
      double lse = maximum + std::log(sum);
      out[n] = static_cast<float>(lse - row[static_cast<uint64_t>(target)]);
    }
  });
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
