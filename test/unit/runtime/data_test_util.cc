//===- data_test_util.cc - Files for the data feed tests ------------------===//
//
// Byte-level writers of the §14.1/§14.2 file formats and the reference RNG.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/data_test_util.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include <unistd.h>

namespace fusion::rt::testing {

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  dir_ = std::filesystem::path(::testing::TempDir()) /
         ("fusion_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
}

TempDir::~TempDir() {
  std::error_code error;
  std::filesystem::remove_all(dir_, error);
}

std::string TempDir::path(const std::string &name) const { return (dir_ / name).string(); }

static void putLe(std::vector<uint8_t> &out, size_t at, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out[at + i] = static_cast<uint8_t>(value >> (8 * i));
}

static void writeBytes(const std::string &path, const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char *>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

void writeShardFile(const std::string &path, const std::vector<int32_t> &tokens,
                    const ShardFileOptions &options) {
  std::vector<uint8_t> bytes(256 + 4 * tokens.size(), 0);
  bytes[0] = options.version;
  putLe(bytes, 1, options.headerTokens.value_or(tokens.size()), 8);
  putLe(bytes, 9, options.packLength, 4);
  putLe(bytes, 13, static_cast<uint32_t>(options.padId), 4);
  if (options.dirtyByte)
    bytes[*options.dirtyByte] = 0xab;
  for (size_t i = 0; i < tokens.size(); ++i)
    putLe(bytes, 256 + 4 * i, static_cast<uint32_t>(tokens[i]), 4);
  bytes.resize(bytes.size() - std::min(options.truncateBy, bytes.size()));
  writeBytes(path, bytes);
}

void writeBinFile(const std::string &path, const std::vector<uint32_t> &tokens, bool wide,
                  std::optional<int32_t> headerTokens) {
  size_t width = wide ? 4 : 2;
  std::vector<uint8_t> bytes(1024 + width * tokens.size(), 0);
  putLe(bytes, 0, wide ? 20240801u : 20240520u, 4);
  putLe(bytes, 4, wide ? 7u : 1u, 4);
  putLe(bytes, 8, static_cast<uint32_t>(headerTokens.value_or(static_cast<int32_t>(tokens.size()))),
        4);
  for (size_t i = 0; i < tokens.size(); ++i)
    putLe(bytes, 1024 + width * i, tokens[i], static_cast<int>(width));
  writeBytes(path, bytes);
}

void writeTextFile(const std::string &path, const std::string &text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

std::vector<uint8_t> readFileBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

namespace ref {

// The stateful form of splitmix64 (Steele, Lea, Flood 2014; Vigna's splitmix64.c): the state
// advances by the golden gamma and the output mixes the new state. One step from state z is
// the spec's stateless splitmix64(z).
uint64_t splitmix64(uint64_t z) {
  uint64_t state = z + 0x9e3779b97f4a7c15ull;
  uint64_t r = state;
  r ^= r >> 30;
  r *= 0xbf58476d1ce4e5b9ull;
  r ^= r >> 27;
  r *= 0x94d049bb133111ebull;
  r ^= r >> 31;
  return r;
}

uint64_t draw(uint64_t seed, uint64_t s, uint64_t rank, uint64_t a, uint64_t b, uint64_t idx) {
  uint64_t x = splitmix64(seed);
  x = splitmix64(x ^ s);
  x = splitmix64(x ^ rank);
  x = splitmix64(x ^ a);
  x = splitmix64(x ^ b);
  return splitmix64(x ^ idx);
}

uint64_t index(uint64_t x, uint64_t n) {
  // ((x >> 11) * n) >> 53 with the 117-bit product built from 32-bit limbs (schoolbook),
  // independently of the runtime's unsigned __int128.
  uint64_t a = x >> 11;
  uint64_t aLo = a & 0xffffffffu, aHi = a >> 32, nLo = n & 0xffffffffu, nHi = n >> 32;
  uint64_t ll = aLo * nLo, lh = aLo * nHi, hl = aHi * nLo, hh = aHi * nHi;
  uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
  uint64_t lo = (ll & 0xffffffffu) | (mid << 32);
  uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
  return (hi << 11) | (lo >> 53);
}

double real(uint64_t x) { return std::ldexp(static_cast<double>(x >> 11), -53); }

size_t pick(const std::vector<double> &weights, double u) {
  double total = 0;
  for (double w : weights)
    total += w;
  double running = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    running += weights[i];
    if (running > u * total)
      return i;
  }
  return weights.size() - 1;
}

} // namespace ref

} // namespace fusion::rt::testing
