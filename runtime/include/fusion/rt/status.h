//===- status.h - Status and StatusOr for the FusionLLM runtime -----------===//
//
// Every fallible runtime call returns a Status (or a StatusOr<T>) instead of throwing or
// aborting: the runtime loads plans it does not trust, so failures are ordinary values that the
// tool turns into one line on stderr. A Status carries a coarse code, a one-line message that
// already names the plan item involved, and the source position that created it (for
// debugging the runtime itself; never shown to users by default). CUDA results go through
// FUSION_CUDA_RETURN_IF_ERROR so that every device error names the instruction it came from.
//
//===----------------------------------------------------------------------===//

#pragma once

#include <optional>
#include <string>
#include <utility>

namespace fusion::rt {

/// Coarse classification of a failure; the message carries the detail.
enum class StatusCode {
  kOk = 0,
  /// The caller passed something unusable (bad flag value, unknown program name).
  kInvalidArgument,
  /// A file, program or buffer that was asked for does not exist.
  kNotFound,
  /// A plan file is corrupt, truncated or violates the schema's rules.
  kDataLoss,
  /// The plan is well formed but cannot run here (wrong version, missing device code).
  kFailedPrecondition,
  /// The feature exists in the schema but this runtime does not implement it yet.
  kUnimplemented,
  /// A required resource (device, memory) is not available.
  kUnavailable,
  /// A device or library call failed.
  kInternal,
};

/// Returns a short lower-case name of `code` ("ok", "data loss", ...).
const char *statusCodeName(StatusCode code);

/// The result of a fallible runtime call: ok, or a code plus a one-line message.
class [[nodiscard]] Status {
public:
  /// An ok status.
  Status() = default;
  /// An error status; `file` and `line` default to the call site.
  Status(StatusCode code, std::string message, const char *file = __builtin_FILE(),
         int line = __builtin_LINE())
      : code_(code), message_(std::move(message)), file_(file), line_(line) {}

  /// An ok status (reads better than `Status()` at return sites).
  static Status okStatus() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  /// The one-line message (empty when ok).
  const std::string &message() const { return message_; }
  /// Runtime source position that created the error (for debugging the runtime).
  const char *file() const { return file_; }
  int line() const { return line_; }

  /// Returns a copy whose message is `prefix + ": " + message()`; used to add context
  /// (program, instruction) as an error travels up. An ok status stays ok.
  Status withPrefix(const std::string &prefix) const;

  /// "<code>: <message> [file:line]", for logs and test failure output.
  std::string toString() const;

private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  const char *file_ = "";
  int line_ = 0;
};

/// Either a value of type T or an error Status.
template <typename T> class [[nodiscard]] StatusOr {
public:
  /// Holds `value`.
  StatusOr(T value) : value_(std::move(value)) {}
  /// Holds the error `status`; an ok status here is a runtime bug and becomes kInternal.
  StatusOr(Status status) : status_(std::move(status)) {
    if (status_.ok())
      status_ = Status(StatusCode::kInternal, "StatusOr built from an ok status without a value");
  }

  bool ok() const { return value_.has_value(); }
  /// The error (or an ok status when a value is held).
  const Status &status() const { return status_; }
  /// The held value; only valid when ok().
  T &value() & { return *value_; }
  const T &value() const & { return *value_; }
  T &&value() && { return std::move(*value_); }
  T &operator*() & { return *value_; }
  const T &operator*() const & { return *value_; }
  T *operator->() { return &*value_; }
  const T *operator->() const { return &*value_; }

private:
  Status status_;
  std::optional<T> value_;
};

/// The called function's name in a macro's stringized call expression ("cudaMalloc" for
/// "cudaMalloc(&p, n)"), so error messages name the call without its argument text.
inline std::string calleeName(const char *expression) {
  std::string text(expression);
  return text.substr(0, text.find('('));
}

} // namespace fusion::rt

#define FUSION_RT_CONCAT_INNER_(a, b) a##b
#define FUSION_RT_CONCAT_(a, b) FUSION_RT_CONCAT_INNER_(a, b)

/// Evaluates `expr` (a Status) and returns it from the enclosing function if it is an error.
#define FUSION_RETURN_IF_ERROR(expr)                                                            \
  do {                                                                                          \
    ::fusion::rt::Status fusion_rt_status_ = (expr);                                            \
    if (!fusion_rt_status_.ok())                                                                \
      return fusion_rt_status_;                                                                 \
  } while (0)

/// Evaluates `expr` (a StatusOr<T>); on error returns its status, else moves the value into
/// `lhs` (which may be a declaration, e.g. `auto plan`).
#define FUSION_ASSIGN_OR_RETURN(lhs, expr)                                                      \
  FUSION_ASSIGN_OR_RETURN_IMPL_(FUSION_RT_CONCAT_(fusion_rt_statusor_, __LINE__), lhs, expr)
#define FUSION_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)                                           \
  auto tmp = (expr);                                                                            \
  if (!tmp.ok())                                                                                \
    return tmp.status();                                                                        \
  lhs = std::move(tmp).value()

/// Evaluates `expr` (a cudaError_t) and, on failure, returns a kInternal Status
/// "<context>: <function> failed: <cudaGetErrorName>: <cudaGetErrorString>". `context` is a
/// std::string naming what was being done (program, instruction index, loc). Only usable
/// where <cuda_runtime_api.h> is included; this header itself stays CUDA-free.
#define FUSION_CUDA_RETURN_IF_ERROR(expr, context)                                              \
  do {                                                                                          \
    cudaError_t fusion_rt_cuda_err_ = (expr);                                                   \
    if (fusion_rt_cuda_err_ != cudaSuccess) {                                                   \
      (void)cudaGetLastError(); /* reset the last-error slot for later calls */       \
      return ::fusion::rt::Status(::fusion::rt::StatusCode::kInternal,                          \
                                  std::string(context) + ": " +                                 \
                                      ::fusion::rt::calleeName(#expr) + " failed: " +           \
                                      cudaGetErrorName(fusion_rt_cuda_err_) + ": " +            \
                                      cudaGetErrorString(fusion_rt_cuda_err_));                 \
    }                                                                                           \
  } while (0)
