//===- safetensors.cc - Reading and writing safetensors files -------------===//
//
// See safetensors.h for the format and the rules enforced. The header is written by hand
// (names are JSON-escaped; numbers are integers) and read with the strict JSON parser, so a
// malformed header is one error naming the byte where it goes wrong.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/safetensors.h"

#include "json.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fusion::rt::safetensors {

size_t dtypeSize(std::string_view dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64")
    return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32")
    return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16")
    return 2;
  if (dtype == "BOOL" || dtype == "U8" || dtype == "I8" || dtype == "F8_E5M2" ||
      dtype == "F8_E4M3" || dtype == "F8_E8M0")
    return 1;
  return 0;
}

/// Elements × element size with overflow checks; nullopt on overflow or a negative dim.
static std::optional<uint64_t> tensorBytes(const std::vector<int64_t> &shape, size_t elementSize) {
  unsigned __int128 total = elementSize;
  for (int64_t dim : shape) {
    if (dim < 0)
      return std::nullopt;
    total *= static_cast<uint64_t>(dim);
    if (total > UINT64_MAX)
      return std::nullopt;
  }
  return static_cast<uint64_t>(total);
}

static std::string shapeText(const std::vector<int64_t> &shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

Status Layout::add(std::string name, std::string dtype, std::vector<int64_t> shape) {
  if (name.empty())
    return Status(StatusCode::kInvalidArgument, "safetensors: a tensor needs a non-empty name");
  if (name == "__metadata__")
    return Status(StatusCode::kInvalidArgument,
                  "safetensors: '__metadata__' is reserved and cannot name a tensor");
  if (tensors_.count(name))
    return Status(StatusCode::kInvalidArgument,
                  "safetensors: two tensors named " + json::quote(name));
  size_t size = dtypeSize(dtype);
  if (size == 0)
    return Status(StatusCode::kInvalidArgument, "safetensors: tensor " + json::quote(name) +
                                                    " has unknown dtype " + json::quote(dtype));
  std::optional<uint64_t> bytes = tensorBytes(shape, size);
  if (!bytes)
    return Status(StatusCode::kInvalidArgument, "safetensors: tensor " + json::quote(name) +
                                                    " has an invalid shape " + shapeText(shape));
  TensorInfo info;
  info.name = name;
  info.dtype = std::move(dtype);
  info.shape = std::move(shape);
  info.end = *bytes; // begin/end fixed up by layout()
  tensors_.emplace(std::move(name), std::move(info));
  return Status::okStatus();
}

std::vector<TensorInfo> Layout::layout() const {
  // The reference writer's order: element size descending (so that every tensor starts
  // aligned to its element size, the data starting 8-byte aligned), then bytewise name.
  std::vector<const TensorInfo *> order;
  for (const auto &entry : tensors_) // std::map: bytewise name order
    order.push_back(&entry.second);
  std::stable_sort(order.begin(), order.end(), [](const TensorInfo *a, const TensorInfo *b) {
    return dtypeSize(a->dtype) > dtypeSize(b->dtype);
  });
  std::vector<TensorInfo> out;
  uint64_t offset = 0;
  for (const TensorInfo *tensor : order) {
    TensorInfo info = *tensor;
    info.begin = offset;
    info.end = offset + tensor->end;
    offset = info.end;
    out.push_back(std::move(info));
  }
  return out;
}

uint64_t Layout::dataBytes() const {
  uint64_t total = 0;
  for (const auto &entry : tensors_)
    total += entry.second.end;
  return total;
}

std::vector<uint8_t> Layout::header() const {
  std::string text = "{";
  bool first = true;
  if (!metadata_.empty()) {
    text += "\"__metadata__\":{";
    bool firstKey = true;
    for (const auto &[key, value] : metadata_) {
      text += (firstKey ? "" : ",") + json::quote(key) + ":" + json::quote(value);
      firstKey = false;
    }
    text += "}";
    first = false;
  }
  for (const TensorInfo &tensor : layout()) {
    text += (first ? "" : ",") + json::quote(tensor.name) +
            ":{\"dtype\":" + json::quote(tensor.dtype) + ",\"shape\":" + shapeText(tensor.shape) +
            ",\"data_offsets\":[" + std::to_string(tensor.begin) + "," +
            std::to_string(tensor.end) + "]}";
    first = false;
  }
  text += "}";
  // Pad with spaces so that the data (at 8 + N) starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<uint8_t> out(8 + text.size());
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, text.data(), text.size());
  return out;
}

StatusOr<std::vector<uint8_t>> encode(const std::vector<Tensor> &tensors,
                                      const std::map<std::string, std::string> &metadata) {
  Layout layout;
  for (const Tensor &tensor : tensors)
    FUSION_RETURN_IF_ERROR(layout.add(tensor.name, tensor.dtype, tensor.shape));
  for (const auto &[key, value] : metadata)
    layout.setMetadata(key, value);
  std::vector<uint8_t> out = layout.header();
  for (const TensorInfo &info : layout.layout()) {
    const Tensor *tensor = nullptr;
    for (const Tensor &t : tensors)
      if (t.name == info.name)
        tensor = &t;
    if (tensor->data.size() != info.byteSize())
      return Status(StatusCode::kInvalidArgument,
                    "safetensors: tensor " + json::quote(info.name) + " " + info.dtype +
                        shapeText(info.shape) + " needs " + std::to_string(info.byteSize()) +
                        " bytes, got " + std::to_string(tensor->data.size()));
    out.insert(out.end(), tensor->data.begin(), tensor->data.end());
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Reading
//===----------------------------------------------------------------------===//

Status parseHeader(std::string_view header, uint64_t dataBytes, const std::string &what,
                   std::vector<TensorInfo> &tensors, std::map<std::string, std::string> &metadata) {
  auto fail = [&](const std::string &message) {
    return Status(StatusCode::kDataLoss, what + ": " + message);
  };
  if (header.empty() || header[0] != '{')
    return fail("the safetensors header does not start with '{'");
  StatusOr<json::Value> parsed = json::parse(header);
  if (!parsed.ok())
    return fail("bad safetensors header: " + parsed.status().message());
  if (!parsed->isObject())
    return fail("the safetensors header is not a JSON object");
  tensors.clear();
  metadata.clear();
  for (const auto &[name, value] : parsed->members) {
    std::string label = "tensor " + json::quote(name);
    if (name == "__metadata__") {
      if (!value.isObject())
        return fail("'__metadata__' is a " + std::string(value.kindName()) +
                    ", expected an object of strings");
      for (const auto &[key, entry] : value.members) {
        if (!entry.isString())
          return fail("'__metadata__' entry " + json::quote(key) + " is a " + entry.kindName() +
                      ", expected a string");
        metadata[key] = entry.text;
      }
      continue;
    }
    if (!value.isObject())
      return fail(label + ": expected an object with dtype, shape and data_offsets, got a " +
                  value.kindName());
    const json::Value *dtype = value.find("dtype");
    const json::Value *shape = value.find("shape");
    const json::Value *offsets = value.find("data_offsets");
    if (!dtype || !dtype->isString())
      return fail(label + ": missing or non-string 'dtype'");
    if (!shape || !shape->isArray())
      return fail(label + ": missing or non-array 'shape'");
    if (!offsets || !offsets->isArray() || offsets->items.size() != 2)
      return fail(label + ": 'data_offsets' must be an array [BEGIN, END]");
    TensorInfo info;
    info.name = name;
    info.dtype = dtype->text;
    size_t elementSize = dtypeSize(info.dtype);
    if (elementSize == 0)
      return fail(label + ": unknown dtype " + json::quote(info.dtype));
    for (const json::Value &dim : shape->items) {
      std::optional<uint64_t> d = dim.asUnsigned();
      if (!d || *d > static_cast<uint64_t>(INT64_MAX))
        return fail(label + ": shape entries must be non-negative integers");
      info.shape.push_back(static_cast<int64_t>(*d));
    }
    std::optional<uint64_t> begin = offsets->items[0].asUnsigned();
    std::optional<uint64_t> end = offsets->items[1].asUnsigned();
    if (!begin || !end)
      return fail(label + ": data_offsets must be non-negative integers");
    if (*end < *begin)
      return fail(label + ": data_offsets [" + std::to_string(*begin) + ", " +
                  std::to_string(*end) + "] end before they begin");
    if (*end > dataBytes)
      return fail(label + ": data_offsets [" + std::to_string(*begin) + ", " +
                  std::to_string(*end) + "] run past the data (" + std::to_string(dataBytes) +
                  " bytes; the file is truncated or the header is wrong)");
    info.begin = *begin;
    info.end = *end;
    std::optional<uint64_t> bytes = tensorBytes(info.shape, elementSize);
    if (!bytes || *bytes != info.byteSize())
      return fail(label + ": " + info.dtype + shapeText(info.shape) + " needs " +
                  (bytes ? std::to_string(*bytes) : std::string("too many")) +
                  " bytes, but data_offsets [" + std::to_string(*begin) + ", " +
                  std::to_string(*end) + "] hold " + std::to_string(info.byteSize()));
    tensors.push_back(std::move(info));
  }
  // The tensors must tile the data buffer exactly.
  std::vector<const TensorInfo *> byOffset;
  for (const TensorInfo &tensor : tensors)
    byOffset.push_back(&tensor);
  std::stable_sort(byOffset.begin(), byOffset.end(), [](const TensorInfo *a, const TensorInfo *b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t position = 0;
  for (const TensorInfo *tensor : byOffset) {
    if (tensor->begin != position)
      return fail("tensor " + json::quote(tensor->name) + ": data_offsets [" +
                  std::to_string(tensor->begin) + ", " + std::to_string(tensor->end) + "] " +
                  (tensor->begin < position
                       ? "overlap another tensor"
                       : "leave a hole after byte " + std::to_string(position)) +
                  " (tensors must tile the data buffer)");
    position = tensor->end;
  }
  if (position != dataBytes)
    return fail("the tensors cover " + std::to_string(position) +
                " bytes of data, but the file has " + std::to_string(dataBytes) +
                " after the header (trailing bytes)");
  return Status::okStatus();
}

File::~File() {
  if (fd_ >= 0)
    ::close(fd_);
}

StatusOr<std::unique_ptr<File>> File::open(const std::string &path) {
  std::unique_ptr<File> file(new File());
  file->path_ = path;
  file->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file->fd_ < 0)
    return Status(StatusCode::kNotFound, path + ": cannot open: " + std::strerror(errno));
  struct stat info;
  if (::fstat(file->fd_, &info) != 0)
    return Status(StatusCode::kDataLoss, path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(info.st_mode))
    return Status(StatusCode::kInvalidArgument, path + ": not a regular file");
  uint64_t size = static_cast<uint64_t>(info.st_size);
  if (size < 8)
    return Status(StatusCode::kDataLoss, path + ": truncated safetensors file (" +
                                             std::to_string(size) +
                                             " bytes; the header length alone takes 8)");
  uint8_t prefix[8];
  if (::pread(file->fd_, prefix, 8, 0) != 8)
    return Status(StatusCode::kDataLoss, path + ": read error: " + std::strerror(errno));
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(prefix[i]) << (8 * i);
  if (n > kMaxHeaderBytes)
    return Status(StatusCode::kDataLoss, path + ": safetensors header length " + std::to_string(n) +
                                             " exceeds the 100 MB limit (corrupt file?)");
  if (n > size - 8)
    return Status(StatusCode::kDataLoss, path + ": truncated safetensors file: the header claims " +
                                             std::to_string(n) + " bytes, but only " +
                                             std::to_string(size - 8) + " follow the length");
  std::string header(n, '\0');
  if (n && ::pread(file->fd_, header.data(), n, 8) != static_cast<ssize_t>(n))
    return Status(StatusCode::kDataLoss, path + ": read error: " + std::strerror(errno));
  file->dataStart_ = 8 + n;
  FUSION_RETURN_IF_ERROR(parseHeader(header, size - 8 - n, path, file->tensors_, file->metadata_));
  return file;
}

const TensorInfo *File::find(std::string_view name) const {
  for (const TensorInfo &tensor : tensors_)
    if (tensor.name == name)
      return &tensor;
  return nullptr;
}

Status File::read(const TensorInfo &tensor, std::vector<uint8_t> &out) const {
  out.resize(tensor.byteSize());
  uint64_t done = 0;
  while (done < out.size()) {
    ssize_t got = ::pread(fd_, out.data() + done, out.size() - done,
                          static_cast<off_t>(dataStart_ + tensor.begin + done));
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return Status(StatusCode::kDataLoss,
                    path_ + ": tensor " + json::quote(tensor.name) + ": " +
                        (got < 0 ? std::string("read error: ") + std::strerror(errno)
                                 : std::string("file shrank while reading")));
    done += static_cast<uint64_t>(got);
  }
  return Status::okStatus();
}

} // namespace fusion::rt::safetensors
