//===- batch.cc - Targets, the ignore rule and loss counts ----------------===//
//
// From rows to what the loss needs (MODEL.md §8, §14.3): targets are the rows with ignored
// positions set to −1 (the cross-entropy kernels skip negative targets), and N_k counts the
// targets each head actually scores: the main head predicts positions 1..T, MTP depth k
// predicts positions k+1..T.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"

#include "../numeric.h"

namespace fusion::rt::data {

void applyIgnoreRule(const int32_t *tokens, int32_t *targets, int64_t rows, int64_t rowLength,
                     int32_t padId, int32_t eosId) {
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t *row = tokens + r * rowLength;
    int32_t *out = targets + r * rowLength;
    for (int64_t j = 0; j < rowLength; ++j) {
      bool ignored = false;
      if (padId != -1 && row[j] == padId)
        ignored = padId != eosId || (j > 0 && row[j - 1] == padId);
      out[j] = ignored ? -1 : row[j];
    }
  }
}

std::vector<uint64_t> countTargets(const int32_t *targets, int64_t rows, int64_t seqLen,
                                   int64_t mtpDepth) {
  // kept[j] = kept targets at position j over all rows; N_k sums positions k+1..T.
  std::vector<uint64_t> kept(static_cast<size_t>(seqLen) + 1, 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 1; j <= seqLen; ++j)
      kept[j] += targets[r * (seqLen + 1) + j] >= 0;
  std::vector<uint64_t> counts(static_cast<size_t>(mtpDepth) + 1, 0);
  uint64_t suffix = 0; // kept targets at positions > k
  for (int64_t j = seqLen; j >= 1; --j) {
    suffix += kept[j];
    if (j - 1 <= mtpDepth)
      counts[j - 1] = suffix;
  }
  return counts;
}

std::vector<float> inverseCounts(const std::vector<uint64_t> &counts) {
  std::vector<float> inverse(counts.size());
  for (size_t k = 0; k < counts.size(); ++k)
    inverse[k] = counts[k] ? static_cast<float>(1.0 / static_cast<double>(counts[k])) : 0.0f;
  return inverse;
}

StatusOr<Batch> makeBatch(Source &source, const DataSpec &spec, const BatchShape &shape,
                          const BatchCoord &coord) {
  if (shape.rows < 1 || shape.seqLen < 1 || shape.mtpDepth < 0)
    return Status(StatusCode::kInvalidArgument, "batch shape B=" + std::to_string(shape.rows) +
                                                    ", T=" + std::to_string(shape.seqLen) +
                                                    ", D_m=" + std::to_string(shape.mtpDepth) +
                                                    " (need B >= 1, T >= 1, D_m >= 0)");
  std::optional<uint64_t> count =
      checkedMul(static_cast<uint64_t>(shape.rows), static_cast<uint64_t>(shape.seqLen) + 1);
  if (!count || *count > (uint64_t(1) << 40))
    return Status(StatusCode::kInvalidArgument, "batch shape B=" + std::to_string(shape.rows) +
                                                    ", T=" + std::to_string(shape.seqLen) +
                                                    " is too large");
  Batch batch;
  batch.shape = shape;
  batch.tokens.resize(*count);
  batch.targets.resize(*count);
  FUSION_RETURN_IF_ERROR(source.readRows(coord, shape, batch.tokens.data()));
  applyIgnoreRule(batch.tokens.data(), batch.targets.data(), shape.rows, shape.seqLen + 1,
                  spec.padId, spec.eosId);
  batch.counts = countTargets(batch.targets.data(), shape.rows, shape.seqLen, shape.mtpDepth);
  batch.invCounts = inverseCounts(batch.counts);
  return batch;
}

} // namespace fusion::rt::data
