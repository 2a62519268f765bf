//===- shard_packer.cc - Packing documents into fusion_shards (§14.4) -----===//
//
// Rows are assembled in memory (one row of pack-length tokens at a time) and streamed to the
// shard file; the header, whose n_tokens is known only at the end, is written last. Each
// shard is written under a temporary name and renamed when complete, so an interrupted run
// never leaves a shard whose header disagrees with its contents.
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

ShardPacker::ShardPacker(Options options) : options_(std::move(options)) {
  row_.reserve(options_.packLength);
}

ShardPacker::~ShardPacker() {
  if (file_) {
    std::fclose(file_);
    std::remove(tempPath_.c_str());
  }
}

StatusOr<std::unique_ptr<ShardPacker>> ShardPacker::create(Options options) {
  auto fail = [](const std::string &message) {
    return Status(StatusCode::kInvalidArgument, message);
  };
  if (options.packLength == 0)
    return fail("pack length must be at least 1");
  if (options.source.empty())
    return fail("the source name is empty");
  for (char c : options.source)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return fail("source name " + rt::quoted(options.source) +
                  " may only contain letters, digits, '_', '-' and '.' (it names the shard files)");
  for (auto [name, id] :
       {std::pair<const char *, int32_t>{"pad", options.padId}, {"eos", options.eosId}}) {
    if (id < 0)
      return fail(std::string(name) + " id must be a token id (>= 0) for packing, got " +
                  std::to_string(id));
    if (options.vocabSize && id >= *options.vocabSize)
      return fail(std::string(name) + " id " + std::to_string(id) +
                  " is outside the vocabulary [0, " + std::to_string(*options.vocabSize) + ")");
  }
  std::error_code error;
  if (!fs::is_directory(options.dir, error))
    return Status(StatusCode::kNotFound, options.dir + ": not a directory");
  return std::unique_ptr<ShardPacker>(new ShardPacker(std::move(options)));
}

Status ShardPacker::addDocument(const std::vector<int32_t> &ids) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || (options_.vocabSize && ids[i] >= *options_.vocabSize))
      return Status(StatusCode::kInvalidArgument,
                    "document " + std::to_string(numDocuments_ + 1) + " token " +
                        std::to_string(i) + " is " + std::to_string(ids[i]) + ", outside " +
                        (options_.vocabSize
                             ? "the vocabulary [0, " + std::to_string(*options_.vocabSize) + ")"
                             : std::string("[0, 2^31)")));
  uint64_t length = ids.size() + 1; // with its EOS
  if (!row_.empty() && length > options_.packLength - row_.size()) {
    // Does not fit the current row: pad it and start the document on a fresh row.
    row_.resize(options_.packLength, options_.padId);
    FUSION_RETURN_IF_ERROR(emitRow());
  }
  FUSION_RETURN_IF_ERROR(appendToRow(ids.data(), ids.size()));
  FUSION_RETURN_IF_ERROR(appendToRow(&options_.eosId, 1));
  ++numDocuments_;
  return Status::okStatus();
}

Status ShardPacker::appendToRow(const int32_t *ids, size_t count) {
  while (count > 0) {
    size_t take = std::min<size_t>(count, options_.packLength - row_.size());
    row_.insert(row_.end(), ids, ids + take);
    ids += take;
    count -= take;
    if (row_.size() == options_.packLength)
      FUSION_RETURN_IF_ERROR(emitRow()); // a long document spills into the next row
  }
  return Status::okStatus();
}

Status ShardPacker::emitRow() {
  if (!file_)
    FUSION_RETURN_IF_ERROR(openShard());
  // Shards are little-endian int32, like the host.
  if (std::fwrite(row_.data(), sizeof(int32_t), row_.size(), file_) != row_.size())
    return Status(StatusCode::kUnavailable, tempPath_ + ": write failed: " + std::strerror(errno));
  row_.clear();
  ++numRows_;
  ++shardRows_;
  if (options_.maxRowsPerShard && shardRows_ == options_.maxRowsPerShard)
    FUSION_RETURN_IF_ERROR(closeShard());
  return Status::okStatus();
}

Status ShardPacker::openShard() {
  char name[64];
  std::snprintf(name, sizeof(name), "_shard_%05u.bin", shardIndex_);
  finalPath_ = (fs::path(options_.dir) / (options_.source + name)).string();
  tempPath_ = finalPath_ + ".tmp";
  file_ = std::fopen(tempPath_.c_str(), "wb");
  if (!file_)
    return Status(StatusCode::kUnavailable, tempPath_ + ": cannot create: " + std::strerror(errno));
  std::array<uint8_t, kShardHeaderBytes> placeholder{};
  if (std::fwrite(placeholder.data(), 1, placeholder.size(), file_) != placeholder.size())
    return Status(StatusCode::kUnavailable, tempPath_ + ": write failed: " + std::strerror(errno));
  shardRows_ = 0;
  return Status::okStatus();
}

Status ShardPacker::closeShard() {
  ShardHeader header;
  header.numTokens = shardRows_ * options_.packLength;
  header.packLength = options_.packLength;
  header.padId = options_.padId;
  std::array<uint8_t, kShardHeaderBytes> bytes = encodeShardHeader(header);
  bool ok = std::fseek(file_, 0, SEEK_SET) == 0 &&
            std::fwrite(bytes.data(), 1, bytes.size(), file_) == bytes.size();
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
  ManifestEntry entry;
  entry.path = fs::path(finalPath_).filename().string();
  entry.resolvedPath = finalPath_;
  entry.numTokens = header.numTokens;
  entry.source = options_.source;
  written_.push_back(std::move(entry));
  ++shardIndex_;
  return Status::okStatus();
}

StatusOr<std::vector<ManifestEntry>> ShardPacker::finish() {
  if (!row_.empty()) {
    row_.resize(options_.packLength, options_.padId);
    FUSION_RETURN_IF_ERROR(emitRow());
  }
  if (file_)
    FUSION_RETURN_IF_ERROR(closeShard());
  return written_;
}

} // namespace fusion::rt::data
