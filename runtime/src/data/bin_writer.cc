//===- bin_writer.cc - Writing nanoGPT / llm.c .bin token files (§14.2) ---===//
//
// The counterpart of BinSource: tokens are streamed to the file as they come (uint16 or
// uint32 little-endian, like the host), the 1024-byte header, whose n_tokens is known only at
// the end, is written last, and each file is renamed into place only when complete.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/plan.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace fusion::rt::data {

namespace fs = std::filesystem;

BinWriter::BinWriter(Options options) : options_(std::move(options)) {}

BinWriter::~BinWriter() {
  if (file_) {
    std::fclose(file_);
    std::remove(tempPath_.c_str());
  }
}

StatusOr<std::unique_ptr<BinWriter>> BinWriter::create(Options options) {
  auto fail = [](const std::string &message) {
    return Status(StatusCode::kInvalidArgument, message);
  };
  if (options.vocabSize < 1 || options.vocabSize > (int64_t(1) << 32))
    return fail("a .bin file holds ids of a vocabulary of 1 to 2^32 tokens, got V = " +
                std::to_string(options.vocabSize));
  if (options.eosId < 0 || options.eosId >= options.vocabSize)
    return fail("eos id " + std::to_string(options.eosId) + " is outside the vocabulary [0, " +
                std::to_string(options.vocabSize) + ")");
  if (options.prefix.empty())
    return fail("the .bin file prefix is empty");
  for (char c : options.prefix)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return fail("file prefix " + rt::quoted(options.prefix) +
                  " may only contain letters, digits, '_', '-' and '.'");
  if (options.maxTokensPerFile > static_cast<uint64_t>(INT32_MAX))
    return fail("a .bin file holds at most 2^31 - 1 tokens (its n_tokens is an int32), got " +
                std::to_string(options.maxTokensPerFile));
  if (options.maxTokensPerFile == 0)
    options.maxTokensPerFile = static_cast<uint64_t>(INT32_MAX);
  std::error_code error;
  if (!fs::is_directory(options.dir, error))
    return Status(StatusCode::kNotFound, options.dir + ": not a directory");
  return std::unique_ptr<BinWriter>(new BinWriter(std::move(options)));
}

Status BinWriter::addDocument(const std::vector<int32_t> &ids) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= options_.vocabSize)
      return Status(StatusCode::kInvalidArgument,
                    "document " + std::to_string(numDocuments_ + 1) + " token " +
                        std::to_string(i) + " is " + std::to_string(ids[i]) +
                        ", outside the vocabulary [0, " + std::to_string(options_.vocabSize) +
                        ")");
  FUSION_RETURN_IF_ERROR(append(&options_.eosId, 1)); // EOS before each document (§14.2)
  FUSION_RETURN_IF_ERROR(append(ids.data(), ids.size()));
  ++numDocuments_;
  return Status::okStatus();
}

Status BinWriter::append(const int32_t *ids, size_t count) {
  size_t width = wide() ? 4 : 2;
  while (count > 0) {
    if (!file_)
      FUSION_RETURN_IF_ERROR(openFile());
    size_t take = static_cast<size_t>(
        std::min<uint64_t>(count, options_.maxTokensPerFile - fileTokens_));
    buffer_.resize(take * width);
    for (size_t i = 0; i < take; ++i) {
      uint32_t id = static_cast<uint32_t>(ids[i]);
      for (size_t k = 0; k < width; ++k)
        buffer_[i * width + k] = static_cast<uint8_t>(id >> (8 * k));
    }
    if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size())
      return Status(StatusCode::kUnavailable,
                    tempPath_ + ": write failed: " + std::strerror(errno));
    ids += take;
    count -= take;
    fileTokens_ += take;
    numTokens_ += take;
    if (fileTokens_ == options_.maxTokensPerFile)
      FUSION_RETURN_IF_ERROR(closeFile()); // the rest goes to the next file
  }
  return Status::okStatus();
}

Status BinWriter::openFile() {
  char name[64];
  std::snprintf(name, sizeof(name), "_%06u.bin", fileIndex_);
  finalPath_ = (fs::path(options_.dir) / (options_.prefix + name)).string();
  tempPath_ = finalPath_ + ".tmp";
  file_ = std::fopen(tempPath_.c_str(), "wb");
  if (!file_)
    return Status(StatusCode::kUnavailable, tempPath_ + ": cannot create: " + std::strerror(errno));
  std::array<uint8_t, kBinHeaderBytes> placeholder{};
  if (std::fwrite(placeholder.data(), 1, placeholder.size(), file_) != placeholder.size())
    return Status(StatusCode::kUnavailable, tempPath_ + ": write failed: " + std::strerror(errno));
  fileTokens_ = 0;
  return Status::okStatus();
}

Status BinWriter::closeFile() {
  std::array<uint8_t, kBinHeaderBytes> header{};
  int32_t fields[3] = {wide() ? kBinMagicUInt32 : kBinMagicUInt16,
                       wide() ? kBinVersionUInt32 : kBinVersionUInt16,
                       static_cast<int32_t>(fileTokens_)};
  for (int f = 0; f < 3; ++f)
    for (int k = 0; k < 4; ++k)
      header[4 * f + k] = static_cast<uint8_t>(static_cast<uint32_t>(fields[f]) >> (8 * k));
  bool ok = std::fseek(file_, 0, SEEK_SET) == 0 &&
            std::fwrite(header.data(), 1, header.size(), file_) == header.size();
  ok = (std::fclose(file_) == 0) && ok;
  file_ = nullptr;
  if (!ok) {
    std::remove(tempPath_.c_str());
    return Status(StatusCode::kUnavailable, tempPath_ + ": write failed: " + std::strerror(errno));
  }
  std::error_code error;
  fs::rename(tempPath_, finalPath_, error);
  if (error)
    return Status(StatusCode::kUnavailable,
                  "cannot rename " + tempPath_ + " to " + finalPath_ + ": " + error.message());
  written_.push_back(finalPath_);
  ++fileIndex_;
  return Status::okStatus();
}

StatusOr<std::vector<std::string>> BinWriter::finish() {
  if (file_)
    FUSION_RETURN_IF_ERROR(closeFile());
  return written_;
}

} // namespace fusion::rt::data
