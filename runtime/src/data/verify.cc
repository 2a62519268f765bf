//===- verify.cc - Complete checks of token files (fusion-data verify) -----===//
//
// The loader checks headers when it opens a data set and token ids only in the rows it reads,
// so a corrupt token deep in a shard surfaces hours into a run. Verification reads every
// header field and every token once, up front, and reports the first problem with the file,
// the byte offset of the first bad byte and, inside token data, the token index, so the
// file can be inspected with `xxd -s OFFSET` directly.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/plan.h"

#include "token_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace fusion::rt::data {

namespace fs = std::filesystem;

namespace {

Status corrupt(const std::string &path, const std::string &message) {
  return Status(StatusCode::kDataLoss, path + ": " + message);
}

/// Reads the first `size` bytes of `path` (fewer when the file is shorter) and its size.
Status readPrefix(const std::string &path, size_t size, std::vector<uint8_t> &bytes,
                  uint64_t &fileSize) {
  std::error_code error;
  if (fs::is_directory(path, error))
    return Status(StatusCode::kInvalidArgument, path + ": is a directory, not a token file");
  std::FILE *file = std::fopen(path.c_str(), "rb");
  if (!file)
    return Status(StatusCode::kNotFound, path + ": cannot open: " + std::strerror(errno));
  fileSize = fs::file_size(path, error);
  if (error) {
    std::fclose(file);
    return Status(StatusCode::kDataLoss, path + ": cannot read the size: " + error.message());
  }
  bytes.resize(size);
  size_t got = std::fread(bytes.data(), 1, size, file);
  std::fclose(file);
  bytes.resize(got);
  return Status::okStatus();
}

uint64_t readLE(const uint8_t *p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i)
    value |= static_cast<uint64_t>(p[i]) << (8 * i);
  return value;
}

/// Checks that the file holds exactly `numTokens` tokens of `width` bytes after `dataOffset`
/// header bytes; a short file names the first missing token, a long one the first extra byte.
Status checkSize(const std::string &path, uint64_t fileSize, uint64_t dataOffset,
                 uint64_t numTokens, uint64_t width) {
  unsigned __int128 expected = static_cast<unsigned __int128>(numTokens) * width + dataOffset;
  if (static_cast<unsigned __int128>(fileSize) < expected) {
    uint64_t complete = (fileSize - dataOffset) / width;
    uint64_t offset = dataOffset + complete * width;
    return corrupt(path, "truncated at byte offset " + std::to_string(offset) + " (token " +
                             std::to_string(complete) + "): the header says " +
                             std::to_string(numTokens) + " tokens, " +
                             std::to_string(static_cast<uint64_t>(expected)) +
                             " bytes in all, the file has " + std::to_string(fileSize) +
                             " bytes" +
                             ((fileSize - dataOffset) % width ? " (ends inside a token)" : ""));
  }
  if (static_cast<unsigned __int128>(fileSize) > expected)
    return corrupt(path, "byte offset " + std::to_string(static_cast<uint64_t>(expected)) +
                             " (token " + std::to_string(numTokens) + ") is past the end of the " +
                             std::to_string(numTokens) + " tokens the header declares: the file " +
                             "has " + std::to_string(fileSize - static_cast<uint64_t>(expected)) +
                             " extra bytes (" + std::to_string(fileSize) + " in all)");
  return Status::okStatus();
}

/// Scans every token of `path`; ids must be in [0, limit) (`limitText` describes it), except
/// `padId` when it is not -1.
Status scanTokens(const std::string &path, uint64_t dataOffset, uint64_t numTokens,
                  TokenElement element, int64_t limit, const std::string &limitText,
                  VerifiedFile &out) {
  if (numTokens == 0)
    return Status::okStatus();
  TokenFile file(path, dataOffset, numTokens, element);
  FUSION_ASSIGN_OR_RETURN(const uint8_t *data, file.data());
  size_t width = tokenElementSize(element);
  for (uint64_t i = 0; i < numTokens; ++i) {
    const uint8_t *p = data + i * width;
    int64_t id;
    if (element == TokenElement::kInt32)
      id = static_cast<int32_t>(static_cast<uint32_t>(readLE(p, 4)));
    else
      id = static_cast<int64_t>(readLE(p, static_cast<int>(width)));
    if (out.padId != -1 && id == out.padId) {
      ++out.padTokens;
      continue;
    }
    if (id < 0 || id >= limit)
      return corrupt(path, "token " + std::to_string(i) + " (byte offset " +
                               std::to_string(dataOffset + i * width) + ") is " +
                               std::to_string(id) + ", outside " + limitText);
    if (out.minId < 0 || id < out.minId)
      out.minId = id;
    if (id > out.maxId)
      out.maxId = id;
  }
  return Status::okStatus();
}

/// The id limit and its description for `options`, capped at `cap` ids (2^31 for the
/// runtime's int32 token buffers, 2^16 for uint16 files).
std::pair<int64_t, std::string> idLimit(const VerifyOptions &options, int64_t cap,
                                        const std::string &capText) {
  if (options.vocabSize && *options.vocabSize <= cap)
    return {*options.vocabSize, "the vocabulary [0, " + std::to_string(*options.vocabSize) + ")"};
  return {cap, capText};
}

} // namespace

StatusOr<VerifiedFile> verifyShardFile(const std::string &path, const VerifyOptions &options) {
  std::vector<uint8_t> header;
  uint64_t fileSize = 0;
  FUSION_RETURN_IF_ERROR(readPrefix(path, kShardHeaderBytes, header, fileSize));
  if (header.size() < kShardHeaderBytes)
    return corrupt(path, "truncated at byte offset " + std::to_string(header.size()) +
                             ": the file has " + std::to_string(header.size()) +
                             " bytes, a shard starts with a 256-byte header");
  if (header[0] != kShardVersion)
    return corrupt(path, "byte offset 0: shard version " + std::to_string(header[0]) +
                             ", expected " + std::to_string(kShardVersion) +
                             " (not a fusion_shards file?)");
  for (size_t i = 17; i < kShardHeaderBytes; ++i)
    if (header[i] != 0) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", header[i]);
      return corrupt(path, "byte offset " + std::to_string(i) + ": header byte is " + hex +
                               " (bytes 17..255 must be zero)");
    }
  VerifiedFile out;
  out.path = path;
  out.format = Format::kFusionShards;
  out.tokenBytes = 4;
  out.numTokens = readLE(header.data() + 1, 8);
  out.packLength = static_cast<uint32_t>(readLE(header.data() + 9, 4));
  out.padId = static_cast<int32_t>(static_cast<uint32_t>(readLE(header.data() + 13, 4)));
  if (out.packLength == 0)
    return corrupt(path, "byte offset 9: pack length 0 (must be at least 1)");
  if (out.numTokens % out.packLength)
    return corrupt(path, "byte offset 1: n_tokens " + std::to_string(out.numTokens) +
                             " is not a multiple of the pack length " +
                             std::to_string(out.packLength) +
                             " (MODEL.md §14.4: n_tokens = rows x pack length)");
  if (out.padId < -1)
    return corrupt(path, "byte offset 13: pad id " + std::to_string(out.padId) +
                             " (must be -1 or a token id)");
  if (options.vocabSize && out.padId >= *options.vocabSize)
    return corrupt(path, "byte offset 13: pad id " + std::to_string(out.padId) +
                             " is outside the vocabulary [0, " +
                             std::to_string(*options.vocabSize) + ")");
  if (options.padId && out.padId != *options.padId)
    return corrupt(path, "byte offset 13: pad id " + std::to_string(out.padId) +
                             ", expected " + std::to_string(*options.padId) +
                             " (the data's pad_token_id, MODEL.md §14.1)");
  FUSION_RETURN_IF_ERROR(checkSize(path, fileSize, kShardHeaderBytes, out.numTokens, 4));
  auto [limit, limitText] =
      idLimit(options, static_cast<int64_t>(INT32_MAX) + 1, "[0, 2^31)");
  FUSION_RETURN_IF_ERROR(scanTokens(path, kShardHeaderBytes, out.numTokens, TokenElement::kInt32,
                                    limit, limitText, out));
  return out;
}

StatusOr<VerifiedFile> verifyBinFile(const std::string &path, const VerifyOptions &options) {
  std::vector<uint8_t> header;
  uint64_t fileSize = 0;
  FUSION_RETURN_IF_ERROR(readPrefix(path, kBinHeaderBytes, header, fileSize));
  if (header.size() < kBinHeaderBytes)
    return corrupt(path, "truncated at byte offset " + std::to_string(header.size()) +
                             ": the file has " + std::to_string(header.size()) +
                             " bytes, a .bin file starts with a 1024-byte header");
  auto field = [&](size_t i) {
    return static_cast<int32_t>(static_cast<uint32_t>(readLE(header.data() + 4 * i, 4)));
  };
  int32_t magic = field(0), version = field(1), count = field(2);
  VerifiedFile out;
  out.path = path;
  out.format = Format::kBin;
  TokenElement element;
  if (magic == kBinMagicUInt16) {
    element = TokenElement::kUInt16;
    if (version != kBinVersionUInt16)
      return corrupt(path, "byte offset 4: version " + std::to_string(version) +
                               " with magic 20240520 (uint16 tokens need version 1)");
  } else if (magic == kBinMagicUInt32) {
    element = TokenElement::kUInt32;
    if (version != kBinVersionUInt32)
      return corrupt(path, "byte offset 4: version " + std::to_string(version) +
                               " with magic 20240801 (uint32 tokens need version 7)");
  } else {
    return corrupt(path, "byte offset 0: wrong magic " + std::to_string(magic) +
                             " (a nanoGPT/llm.c .bin file starts with 20240520 for uint16 or "
                             "20240801 for uint32 tokens)");
  }
  if (count < 0)
    return corrupt(path, "byte offset 8: negative n_tokens " + std::to_string(count));
  for (size_t i = 3; i < 256; ++i)
    if (field(i) != 0)
      return corrupt(path, "byte offset " + std::to_string(4 * i) + ": header int " +
                               std::to_string(i) + " is " + std::to_string(field(i)) +
                               " (ints 3..255 must be zero)");
  out.tokenBytes = static_cast<uint32_t>(tokenElementSize(element));
  out.numTokens = static_cast<uint64_t>(count);
  FUSION_RETURN_IF_ERROR(
      checkSize(path, fileSize, kBinHeaderBytes, out.numTokens, out.tokenBytes));
  auto [limit, limitText] =
      element == TokenElement::kUInt16
          ? idLimit(options, 65536, "[0, 65536)")
          : idLimit(options, static_cast<int64_t>(INT32_MAX) + 1, "[0, 2^31)");
  FUSION_RETURN_IF_ERROR(
      scanTokens(path, kBinHeaderBytes, out.numTokens, element, limit, limitText, out));
  return out;
}

StatusOr<std::vector<VerifiedFile>> verifyManifest(const std::string &path,
                                                   const VerifyOptions &options) {
  FUSION_ASSIGN_OR_RETURN(std::vector<ManifestEntry> entries, readManifest(path));
  std::vector<VerifiedFile> files;
  for (const ManifestEntry &entry : entries) {
    StatusOr<VerifiedFile> file = verifyShardFile(entry.resolvedPath, options);
    if (!file.ok())
      return file.status();
    if (file->numTokens != entry.numTokens)
      return Status(StatusCode::kDataLoss,
                    path + ":" + std::to_string(entry.line) + ": n_tokens is " +
                        std::to_string(entry.numTokens) + " but the header of " +
                        entry.resolvedPath + " says " + std::to_string(file->numTokens) +
                        " (byte offset 1)");
    if (!files.empty() && files.front().padId != file->padId)
      return Status(StatusCode::kDataLoss,
                    entry.resolvedPath + ": byte offset 13: pad id " +
                        std::to_string(file->padId) + " differs from the pad id " +
                        std::to_string(files.front().padId) + " of " + files.front().path +
                        " (one data set has one pad id)");
    file->source = entry.source;
    files.push_back(std::move(*file));
  }
  return files;
}

} // namespace fusion::rt::data
