//===- dedup.cc - Exact-prefix and MinHash document deduplication ---------===//
//
// The "optional MinHash + exact-prefix dedup of documents" step of MODEL.md §14.4, written
// from the textbook definitions (Broder's MinHash, LSH banding) with fixed seeds, so the same
// corpus always loses the same documents:
//   - exact-prefix: the first N bytes of the whitespace-normalised text, hashed to 128 bits
//     (two independent 64-bit hashes), looked up among the kept documents;
//   - MinHash: word 5-gram shingles hashed to 64 bits; 128 hash functions
//     h_i(x) = splitmix64(x ^ salt_i) (each a bijection of the 64-bit space, so min over a
//     set is a min-wise permutation sample); signatures split into b bands of r rows; a
//     document sharing a band with a kept document is a candidate, and a candidate whose
//     signature agrees on >= T of the 128 positions (the Jaccard estimate) is a duplicate.
// Documents are decided in input order against the documents kept so far; removed ones are
// not remembered, so a chain A ~ B ~ C with A !~ C keeps A and C.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/plan.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace fusion::rt::data {

namespace {

bool isSpace(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/// Seeds of the two exact-prefix hashes.
constexpr uint64_t kPrefixSeedA = 0x7072656669782d61ull; // "prefix-a"
constexpr uint64_t kPrefixSeedB = 0x7072656669782d62ull; // "prefix-b"

/// splitmix64, inlined for the signature loop (128 evaluations per shingle).
inline uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

const std::vector<uint64_t> &minhashSalts() {
  static const std::vector<uint64_t> salts = [] {
    std::vector<uint64_t> out(kMinHashFunctions);
    for (int i = 0; i < kMinHashFunctions; ++i)
      out[static_cast<size_t>(i)] = splitmix64(kMinHashSeed + static_cast<uint64_t>(i));
    return out;
  }();
  return salts;
}

} // namespace

const char *dedupMethodName(Deduplicator::Method method) {
  switch (method) {
  case Deduplicator::Method::kExactPrefix:
    return "exact-prefix";
  case Deduplicator::Method::kMinHash:
    return "minhash";
  case Deduplicator::Method::kKept:
    break;
  }
  return "kept";
}

Status parseDedupSpec(std::string_view text, DedupOptions &options) {
  auto fail = [&](const std::string &message) {
    return Status(StatusCode::kInvalidArgument, "--dedup " + rt::quoted(text) + ": " + message);
  };
  if (text.empty())
    return fail("expected exact-prefix[:N] and/or minhash[:T], comma-separated");
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    std::string_view item =
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    size_t colon = item.find(':');
    std::string_view method = item.substr(0, colon);
    std::optional<std::string> argument;
    if (colon != std::string_view::npos)
      argument = std::string(item.substr(colon + 1));
    if (method == "exact-prefix") {
      if (options.exactPrefixBytes)
        return fail("exact-prefix given twice");
      size_t bytes = kDefaultDedupPrefixBytes;
      if (argument) {
        bool digits = !argument->empty() && argument->size() <= 12 &&
                      argument->find_first_not_of("0123456789") == std::string::npos;
        if (!digits || std::strtoull(argument->c_str(), nullptr, 10) == 0)
          return fail("exact-prefix:N needs a byte count N >= 1, got " + rt::quoted(*argument));
        bytes = static_cast<size_t>(std::strtoull(argument->c_str(), nullptr, 10));
      }
      options.exactPrefixBytes = bytes;
    } else if (method == "minhash") {
      if (options.minhashThreshold)
        return fail("minhash given twice");
      double threshold = kDefaultMinHashThreshold;
      if (argument) {
        char *endPtr = nullptr;
        threshold = std::strtod(argument->c_str(), &endPtr);
        if (argument->empty() || endPtr != argument->c_str() + argument->size() ||
            !(threshold > 0 && threshold <= 1))
          return fail("minhash:T needs a Jaccard threshold T in (0, 1], got " +
                      rt::quoted(*argument));
      }
      options.minhashThreshold = threshold;
    } else {
      return fail("unknown method " + rt::quoted(method) +
                  " (expected exact-prefix[:N] or minhash[:T])");
    }
    if (end == std::string_view::npos)
      break;
    start = end + 1;
  }
  return Status::okStatus();
}

std::string normalizeWhitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pendingSpace = false;
  for (char c : text) {
    if (isSpace(static_cast<unsigned char>(c))) {
      pendingSpace = !out.empty();
      continue;
    }
    if (pendingSpace)
      out += ' ';
    pendingSpace = false;
    out += c;
  }
  return out;
}

uint64_t hashBytes(std::string_view bytes, uint64_t seed) {
  uint64_t h = splitmix64(seed ^ bytes.size());
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + i, 8); // little-endian host
    h = splitmix64(h ^ word);
  }
  if (i < bytes.size()) {
    uint64_t word = 0;
    for (size_t k = 0; i + k < bytes.size(); ++k)
      word |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i + k])) << (8 * k);
    h = splitmix64(h ^ word);
  }
  return h;
}

std::vector<uint64_t> wordShingles(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (isSpace(u)) {
      if (!word.empty())
        words.push_back(std::move(word));
      word.clear();
      continue;
    }
    word += (u >= 'A' && u <= 'Z') ? static_cast<char>(u - 'A' + 'a') : c;
  }
  if (!word.empty())
    words.push_back(std::move(word));
  std::vector<uint64_t> shingles;
  if (words.empty())
    return shingles;
  size_t n = static_cast<size_t>(kMinHashShingleWords);
  size_t count = words.size() >= n ? words.size() - n + 1 : 1;
  shingles.reserve(count);
  std::string joined;
  for (size_t i = 0; i < count; ++i) {
    joined.clear();
    for (size_t k = i; k < std::min(words.size(), i + n); ++k) {
      if (k > i)
        joined += ' ';
      joined += words[k];
    }
    shingles.push_back(hashBytes(joined, kShingleSeed));
  }
  std::sort(shingles.begin(), shingles.end());
  shingles.erase(std::unique(shingles.begin(), shingles.end()), shingles.end());
  return shingles;
}

std::vector<uint32_t> minhashSignature(const std::vector<uint64_t> &shingles) {
  if (shingles.empty())
    return {};
  const std::vector<uint64_t> &salts = minhashSalts();
  std::vector<uint64_t> mins(salts.size(), UINT64_MAX);
  for (uint64_t x : shingles)
    for (size_t i = 0; i < salts.size(); ++i)
      mins[i] = std::min(mins[i], mix64(x ^ salts[i]));
  std::vector<uint32_t> signature(salts.size());
  for (size_t i = 0; i < salts.size(); ++i)
    signature[i] = static_cast<uint32_t>(mins[i] >> 32);
  return signature;
}

double minhashSimilarity(const std::vector<uint32_t> &a, const std::vector<uint32_t> &b) {
  if (a.empty() || a.size() != b.size())
    return 0;
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i)
    same += a[i] == b[i];
  return static_cast<double>(same) / static_cast<double>(a.size());
}

double LshBanding::candidateProbability(double j) const {
  return 1 - std::pow(1 - std::pow(j, rows), bands);
}

LshBanding chooseLshBanding(double threshold) {
  LshBanding best{kMinHashFunctions, 1};
  for (int rows = 1; rows <= kMinHashFunctions; ++rows) {
    LshBanding banding{kMinHashFunctions / rows, rows};
    if (banding.candidateProbability(threshold) >= 0.99)
      best = banding;
  }
  return best;
}

Deduplicator::Deduplicator(DedupOptions options) : options_(options) {
  if (options_.minhashThreshold) {
    banding_ = chooseLshBanding(*options_.minhashThreshold);
    bands_.resize(static_cast<size_t>(banding_.bands));
  }
}

Deduplicator::Verdict Deduplicator::add(std::string_view text) {
  uint64_t ordinal = documents_++;
  Verdict verdict;
  std::string normalized;
  uint64_t prefixA = 0, prefixB = 0;
  if (options_.exactPrefixBytes) {
    normalized = normalizeWhitespace(text);
    std::string_view prefix(normalized);
    prefix = prefix.substr(0, *options_.exactPrefixBytes);
    prefixA = hashBytes(prefix, kPrefixSeedA);
    prefixB = hashBytes(prefix, kPrefixSeedB);
    auto it = prefixes_.find(prefixA);
    if (it != prefixes_.end())
      for (const auto &[second, original] : it->second)
        if (second == prefixB) {
          ++removedExact_;
          return {Method::kExactPrefix, original, 1.0};
        }
  }
  std::vector<uint32_t> signature;
  std::vector<uint64_t> keys;
  if (options_.minhashThreshold) {
    signature = minhashSignature(wordShingles(text));
    if (!signature.empty()) {
      // Band keys, and the kept documents that share one (each compared once).
      std::vector<uint32_t> candidates;
      for (int band = 0; band < banding_.bands; ++band) {
        uint64_t key = splitmix64(static_cast<uint64_t>(band));
        for (int r = 0; r < banding_.rows; ++r)
          key = splitmix64(key ^ signature[static_cast<size_t>(band * banding_.rows + r)]);
        keys.push_back(key);
        auto it = bands_[static_cast<size_t>(band)].find(key);
        if (it != bands_[static_cast<size_t>(band)].end())
          candidates.insert(candidates.end(), it->second.begin(), it->second.end());
      }
      std::sort(candidates.begin(), candidates.end());
      candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
      double best = -1;
      uint32_t bestIndex = 0;
      for (uint32_t index : candidates) {
        size_t same = 0;
        const uint32_t *stored = signatures_.data() + size_t(index) * kMinHashFunctions;
        for (size_t i = 0; i < static_cast<size_t>(kMinHashFunctions); ++i)
          same += stored[i] == signature[i];
        double similarity = static_cast<double>(same) / kMinHashFunctions;
        if (similarity > best) { // ties keep the earliest (candidates are sorted)
          best = similarity;
          bestIndex = index;
        }
      }
      if (best >= *options_.minhashThreshold) {
        ++removedMinHash_;
        return {Method::kMinHash, ordinals_[bestIndex], best};
      }
    }
  }
  // Kept: remember it.
  if (options_.exactPrefixBytes)
    prefixes_[prefixA].emplace_back(prefixB, ordinal);
  if (!signature.empty()) {
    uint32_t index = static_cast<uint32_t>(ordinals_.size());
    ordinals_.push_back(ordinal);
    signatures_.insert(signatures_.end(), signature.begin(), signature.end());
    for (int band = 0; band < banding_.bands; ++band)
      bands_[static_cast<size_t>(band)][keys[static_cast<size_t>(band)]].push_back(index);
  }
  verdict.original = ordinal;
  return verdict;
}

} // namespace fusion::rt::data
