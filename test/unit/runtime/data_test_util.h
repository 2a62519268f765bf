//===- data_test_util.h - Files for the data feed tests -------------------===//
//
// The data tests write small shard, manifest and .bin files byte by byte (so that headers can
// be corrupted one field at a time) into a per-test temporary directory, and need an
// independent reference of the §14.3 RNG to predict which rows the loader must return.
//
//===----------------------------------------------------------------------===//

#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace fusion::rt::testing {

/// A fresh directory under the test temp dir, removed (with its contents) on destruction.
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  /// dir/name as a string.
  std::string path(const std::string &name) const;
  const std::filesystem::path &dir() const { return dir_; }

private:
  std::filesystem::path dir_;
};

/// How writeShardFile builds a (possibly corrupt) shard.
struct ShardFileOptions {
  uint32_t packLength = 4;
  int32_t padId = -1;
  /// The header's n_tokens; default: tokens.size().
  std::optional<uint64_t> headerTokens;
  uint8_t version = 1;
  /// When set, header byte `dirtyByte` is set to 0xab (to break the zero-fill rule).
  std::optional<size_t> dirtyByte;
  /// Bytes cut from the end of the file.
  size_t truncateBy = 0;
};

/// Writes a fusion_shards file holding `tokens` (int32 LE after the 256-byte header).
void writeShardFile(const std::string &path, const std::vector<int32_t> &tokens,
                    const ShardFileOptions &options = {});

/// Writes a nanoGPT/llm.c .bin file: magic/version for uint16 (20240520/1) or uint32
/// (20240801/7) tokens, then the tokens; `headerTokens` overrides the count in the header.
void writeBinFile(const std::string &path, const std::vector<uint32_t> &tokens, bool wide,
                  std::optional<int32_t> headerTokens = std::nullopt);

/// Writes `text` to `path`.
void writeTextFile(const std::string &path, const std::string &text);

/// The contents of `path` (empty when unreadable).
std::vector<uint8_t> readFileBytes(const std::string &path);

/// Reference RNG written independently of runtime/src/data/rng.cc (same §14.3 definitions).
namespace ref {
uint64_t splitmix64(uint64_t z);
uint64_t draw(uint64_t seed, uint64_t s, uint64_t rank, uint64_t a, uint64_t b, uint64_t idx);
uint64_t index(uint64_t x, uint64_t n);
double real(uint64_t x);
/// First i whose running sum of weights exceeds u * total.
size_t pick(const std::vector<double> &weights, double u);
} // namespace ref

} // namespace fusion::rt::testing
