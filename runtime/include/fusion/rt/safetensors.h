//===- safetensors.h - Reading and writing safetensors files --------------===//
//
// The checkpoint tensor format (MODEL.md §15), as the reference implementation
// (huggingface/safetensors) defines it:
//
//   bytes 0..7      N, the header length, unsigned 64-bit little-endian
//   bytes 8..8+N    the header: a UTF-8 JSON object starting with '{', optionally padded
//                   with trailing spaces; member "__metadata__" (optional) maps strings to
//                   strings, every other member NAME maps to
//                   {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]}
//   bytes 8+N..     the data buffer; [BEGIN, END) is relative to its start
//
// The reader enforces what the reference loader enforces: a header of at most 100 MB inside
// the file, a known dtype, END − BEGIN = elements × dtype size, and tensors that tile the
// data buffer exactly (sorted by offset, the first at 0, each starting where the previous
// ends, the last ending at the end of the file: no holes, no overlaps, no trailing bytes).
// The writer orders tensors as the reference writer does, by element size (descending), then
// bytewise name, lists them in the header in that order with their data in the same order,
// and pads the header with spaces so that the data starts at a multiple of 8 bytes: every
// tensor is aligned to its element size. Every error names the file and, where there is one,
// the tensor.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/status.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fusion::rt::safetensors {

/// The reference loader's limit on N.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

/// Bytes per element of a safetensors dtype name ("F32" -> 4, "BF16" -> 2, "I64" -> 8, ...);
/// 0 for names safetensors does not define (or sub-byte types, which we do not read).
size_t dtypeSize(std::string_view dtype);

/// One tensor of a file: name, dtype, shape and its bytes [begin, end) in the data buffer.
struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t byteSize() const { return end - begin; }
};

/// A tensor to write, with its bytes (elements × dtypeSize(dtype), little-endian).
struct Tensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

/// Lays out a file before its data is written: add() every tensor, then header() gives the
/// first 8 + N bytes and layout() the tensors in data order (element size descending, then
/// bytewise name) with their offsets, so the data can be streamed tensor by tensor.
class Layout {
public:
  /// Adds a tensor; errors on an empty or duplicate name, "__metadata__", an unknown
  /// dtype, a negative dimension or a size overflow.
  Status add(std::string name, std::string dtype, std::vector<int64_t> shape);
  /// Sets a "__metadata__" entry.
  void setMetadata(std::string key, std::string value) {
    metadata_[std::move(key)] = std::move(value);
  }

  /// The 8-byte length + the JSON header, padded with spaces to a multiple of 8 bytes.
  std::vector<uint8_t> header() const;
  /// The tensors in data order with their offsets.
  std::vector<TensorInfo> layout() const;
  /// Total bytes of the data buffer.
  uint64_t dataBytes() const;

private:
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// Encodes whole tensors into the bytes of a file (for tests and small files).
StatusOr<std::vector<uint8_t>> encode(const std::vector<Tensor> &tensors,
                                      const std::map<std::string, std::string> &metadata = {});

/// An open, validated safetensors file. Tensor data is read on demand.
class File {
public:
  ~File();
  File(const File &) = delete;
  File &operator=(const File &) = delete;

  /// Opens `path` and validates its header against the file size (see the file comment).
  static StatusOr<std::unique_ptr<File>> open(const std::string &path);

  const std::string &path() const { return path_; }
  /// The tensors in header order.
  const std::vector<TensorInfo> &tensors() const { return tensors_; }
  /// The tensor called `name`, or nullptr.
  const TensorInfo *find(std::string_view name) const;
  /// The "__metadata__" entries.
  const std::map<std::string, std::string> &metadata() const { return metadata_; }

  /// Reads the bytes of `tensor` (one of tensors()) into `out`.
  Status read(const TensorInfo &tensor, std::vector<uint8_t> &out) const;

private:
  File() = default;
  std::string path_;
  int fd_ = -1;
  uint64_t dataStart_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// Validates a header (the N bytes after the length) for a data buffer of `dataBytes` bytes
/// and returns its tensors (header order) and metadata. `what` prefixes errors (the path).
Status parseHeader(std::string_view header, uint64_t dataBytes, const std::string &what,
                   std::vector<TensorInfo> &tensors, std::map<std::string, std::string> &metadata);

} // namespace fusion::rt::safetensors
