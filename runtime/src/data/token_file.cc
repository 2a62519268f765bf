//===- token_file.cc - Memory-mapped token files --------------------------===//
//
// The whole file is mapped read-only (MAP_PRIVATE): the kernel pages in only what rows touch,
// so opening a 400 MB shard to read one row costs one page fault per page read. The file size
// is checked again at mapping time, since the file may have changed since its header was read.
//
//===----------------------------------------------------------------------===//

#include "token_file.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fusion::rt::data {

size_t tokenElementSize(TokenElement element) { return element == TokenElement::kUInt16 ? 2 : 4; }

TokenFile::TokenFile(std::string path, uint64_t dataOffset, uint64_t numTokens,
                     TokenElement element)
    : path_(std::move(path)), dataOffset_(dataOffset), numTokens_(numTokens), element_(element) {}

TokenFile::~TokenFile() {
  if (base_)
    munmap(base_, mappedSize_);
}

Status TokenFile::map() {
  if (base_)
    return Status::okStatus();
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status(StatusCode::kNotFound, path_ + ": cannot open: " + std::strerror(errno));
  struct stat info;
  if (fstat(fd, &info) != 0) {
    int error = errno;
    ::close(fd);
    return Status(StatusCode::kDataLoss, path_ + ": cannot stat: " + std::strerror(error));
  }
  unsigned __int128 needed =
      static_cast<unsigned __int128>(numTokens_) * tokenElementSize(element_) + dataOffset_;
  if (static_cast<unsigned __int128>(info.st_size) < needed) {
    ::close(fd);
    return Status(StatusCode::kDataLoss,
                  path_ + ": truncated: " + std::to_string(numTokens_) + " tokens need " +
                      std::to_string(static_cast<uint64_t>(needed)) + " bytes, the file has " +
                      std::to_string(info.st_size));
  }
  size_t size = static_cast<size_t>(needed);
  if (size == 0) {
    ::close(fd);
    return Status(StatusCode::kDataLoss, path_ + ": empty file");
  }
  void *base = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int error = errno;
  ::close(fd);
  if (base == MAP_FAILED)
    return Status(StatusCode::kUnavailable, path_ + ": cannot map " + std::to_string(size) +
                                                " bytes: " + std::strerror(error));
  base_ = base;
  mappedSize_ = size;
  return Status::okStatus();
}

StatusOr<const uint8_t *> TokenFile::data() {
  FUSION_RETURN_IF_ERROR(map());
  return static_cast<const uint8_t *>(base_) + dataOffset_;
}

Status TokenFile::read(uint64_t offset, uint64_t count, std::optional<int64_t> vocabSize,
                       int32_t *out) {
  if (offset > numTokens_ || count > numTokens_ - offset)
    return Status(StatusCode::kInternal, path_ + ": read of tokens [" + std::to_string(offset) +
                                             ", " + std::to_string(offset) + "+" +
                                             std::to_string(count) + ") past its " +
                                             std::to_string(numTokens_) + " tokens");
  FUSION_ASSIGN_OR_RETURN(const uint8_t *tokens, data());
  size_t elementSize = tokenElementSize(element_);
  // Ids must index the embedding (< V) and fit the int32 token buffers (< 2^31).
  constexpr int64_t kInt32Limit = static_cast<int64_t>(INT32_MAX) + 1;
  bool vocabBinds = vocabSize && *vocabSize < kInt32Limit;
  int64_t limit = vocabBinds ? *vocabSize : kInt32Limit;
  for (uint64_t i = 0; i < count; ++i) {
    const uint8_t *p = tokens + (offset + i) * elementSize;
    int64_t id = 0;
    switch (element_) {
    case TokenElement::kInt32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      id = v;
      break;
    }
    case TokenElement::kUInt16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      id = v;
      break;
    }
    case TokenElement::kUInt32: {
      uint32_t v;
      std::memcpy(&v, p, 4);
      id = v;
      break;
    }
    }
    if (id < 0 || id >= limit) {
      uint64_t token = offset + i;
      return Status(StatusCode::kDataLoss,
                    path_ + ": token " + std::to_string(token) + " (byte offset " +
                        std::to_string(dataOffset_ + token * elementSize) + ") is " +
                        std::to_string(id) + ", outside " +
                        (vocabBinds ? "the vocabulary [0, " + std::to_string(*vocabSize) + ")"
                                    : std::string("[0, 2^31)")));
    }
    out[i] = static_cast<int32_t>(id);
  }
  return Status::okStatus();
}

} // namespace fusion::rt::data
