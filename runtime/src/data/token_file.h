//===- token_file.h - Memory-mapped token files (internal) ----------------===//
//
// Both file formats are a fixed header followed by little-endian token ids (int32 for
// fusion_shards, uint16 or uint32 for bin). A TokenFile maps such a file read-only on first
// use and copies ranges of tokens out as int32, checking every id against the vocabulary, so
// a bad id is reported with its file and token offset instead of reaching an embedding.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/status.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace fusion::rt::data {

/// How the ids of a token file are stored.
enum class TokenElement { kInt32, kUInt16, kUInt32 };

/// Bytes per id.
size_t tokenElementSize(TokenElement element);

class TokenFile {
public:
  /// A file whose `numTokens` ids start at byte `dataOffset`. Nothing is opened yet.
  TokenFile(std::string path, uint64_t dataOffset, uint64_t numTokens, TokenElement element);
  ~TokenFile();
  TokenFile(const TokenFile &) = delete;
  TokenFile &operator=(const TokenFile &) = delete;

  const std::string &path() const { return path_; }
  uint64_t numTokens() const { return numTokens_; }

  /// Copies ids [offset, offset + count) to `out` as int32 (maps the file on first use).
  /// Fails when the range is outside the file or an id is negative, above INT32_MAX or, when
  /// `vocabSize` is given, not below it; the message names the file, the token offset and
  /// its byte offset.
  Status read(uint64_t offset, uint64_t count, std::optional<int64_t> vocabSize, int32_t *out);

  /// The mapped ids (maps on first use); valid while the TokenFile lives.
  StatusOr<const uint8_t *> data();

private:
  Status map();

  std::string path_;
  uint64_t dataOffset_;
  uint64_t numTokens_;
  TokenElement element_;
  void *base_ = nullptr;
  size_t mappedSize_ = 0;
};

} // namespace fusion::rt::data
