//===- rng.cc - The counter-based data RNG of MODEL.md §14.3 --------------===//
//
// Every random choice of the data feed is a pure function of (seed, s, rank, a, b, draw_idx)
// through splitmix64, so any row can be regenerated from its coordinates: resume needs only
// the seed and the step, and all backends and ranks agree bit for bit.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"

namespace fusion::rt::data {

uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t drawState(uint64_t seed, const RowCoord &coord, uint64_t drawIdx) {
  uint64_t x = splitmix64(seed);
  for (uint64_t field : {coord.step, coord.rank, coord.micro, coord.row, drawIdx})
    x = splitmix64(x ^ field);
  return x;
}

uint64_t uniformIndex(uint64_t x, uint64_t n) {
  // (x >> 11) < 2^53, so the product needs up to 53 + 64 bits: form it in 128.
  return static_cast<uint64_t>((static_cast<unsigned __int128>(x >> 11) * n) >> 53);
}

double uniformReal(uint64_t x) { return static_cast<double>(x >> 11) * 0x1.0p-53; }

size_t pickWeighted(const std::vector<double> &weights, double u) {
  double total = 0;
  for (double w : weights)
    total += w;
  double threshold = u * total;
  double cumulative = 0;
  size_t lastPositive = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    cumulative += weights[i];
    if (weights[i] > 0)
      lastPositive = i;
    if (cumulative > threshold)
      return i;
  }
  // Only reachable if u * total rounded up to total; the last weighted entry is the answer.
  return lastPositive;
}

} // namespace fusion::rt::data
