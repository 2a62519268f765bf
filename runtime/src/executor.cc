//===- executor.cc - Backend selection and buffer formatting --------------===//
//
// The backend-independent part of execution: choosing a backend by name, the shared argument
// checks of buffer access, and the `NAME f32[4,8] = [...]` rendering that fusion-run prints
// and the device check script compares between backends.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/executor.h"

#include "backends.h"
#include "numeric.h"

#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace fusion::rt {

const char *backendName(BackendKind kind) {
  switch (kind) {
  case BackendKind::kCpu:
    return "cpu";
  case BackendKind::kCuda:
    return "cuda";
  }
  return "unknown";
}

std::optional<BackendKind> parseBackendKind(std::string_view text) {
  if (text == "cpu")
    return BackendKind::kCpu;
  if (text == "cuda")
    return BackendKind::kCuda;
  return std::nullopt;
}

bool isBackendBuilt(BackendKind kind) {
  if (kind == BackendKind::kCpu)
    return true;
#if FUSION_RT_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

StatusOr<std::unique_ptr<Executor>> createExecutor(std::shared_ptr<const Plan> plan,
                                                   BackendKind kind) {
  if (!plan)
    return Status(StatusCode::kInvalidArgument, "createExecutor: no plan");
  switch (kind) {
  case BackendKind::kCpu:
    return createCpuExecutor(std::move(plan));
  case BackendKind::kCuda:
#if FUSION_RT_HAVE_CUDA
    return createCudaExecutor(std::move(plan));
#else
    return Status(StatusCode::kUnavailable,
                  "this build has no cuda backend (no CUDA toolkit was found at build time)");
#endif
  }
  return Status(StatusCode::kInvalidArgument, "unknown backend");
}

Status Executor::checkBufferAccess(uint32_t id, std::optional<size_t> size) const {
  if (id >= plan_->buffers().size())
    return Status(StatusCode::kNotFound, "buffer " + std::to_string(id) +
                                             " out of range (the plan has " +
                                             std::to_string(plan_->buffers().size()) +
                                             " buffers)");
  const BufferInfo &buffer = plan_->buffers()[id];
  if (size && *size != buffer.byteSize)
    return Status(StatusCode::kInvalidArgument,
                  "buffer " + std::to_string(id) + " " + quoted(buffer.name) + " holds " +
                      std::to_string(buffer.byteSize) + " bytes, not " + std::to_string(*size));
  return Status::okStatus();
}

std::string formatBuffer(const BufferInfo &buffer, const std::vector<uint8_t> &bytes,
                         size_t limit) {
  // Plain names print as they are; anything that could confuse a reader or the device check
  // script's parser (spaces, quotes, control bytes, empty) is quoted and escaped.
  bool plainName = !buffer.name.empty();
  for (char ch : buffer.name)
    plainName = plainName && (std::isalnum(static_cast<unsigned char>(ch)) ||
                              (ch != 0 && std::strchr("_.:/-#@", ch) != nullptr));
  std::string out = (plainName ? buffer.name : quoted(buffer.name)) + " " +
                    dtypeName(buffer.dtype) + formatShape(buffer.shape) + " = [";
  uint64_t count = buffer.numElements;
  if (bytes.size() < buffer.byteSize)
    count = 0; // never read past what we were given
  uint64_t shown = (limit == 0 || limit >= count) ? count : limit;
  char text[64];
  for (uint64_t i = 0; i < shown; ++i) {
    switch (buffer.dtype) {
    case schema::DType::I32: {
      int32_t v;
      std::memcpy(&v, bytes.data() + 4 * i, 4);
      std::snprintf(text, sizeof(text), "%" PRId32, v);
      break;
    }
    case schema::DType::I64: {
      int64_t v;
      std::memcpy(&v, bytes.data() + 8 * i, 8);
      std::snprintf(text, sizeof(text), "%" PRId64, v);
      break;
    }
    default:
      std::snprintf(text, sizeof(text), "%g",
                    static_cast<double>(loadAsFloat(bytes.data(), buffer.dtype, i)));
      break;
    }
    if (i)
      out += ", ";
    out += text;
  }
  if (shown < count)
    out += shown ? ", ..." : "...";
  return out + "]";
}

} // namespace fusion::rt
