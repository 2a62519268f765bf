//===- status.cc - Status helpers -----------------------------------------===//
//
// Out-of-line parts of Status: code names, context prefixes and the debug rendering. Kept
// tiny on purpose; the interesting information of a status is its message, which the code
// that detects the failure writes.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/status.h"

namespace fusion::rt {

const char *statusCodeName(StatusCode code) {
  switch (code) {
  case StatusCode::kOk:
    return "ok";
  case StatusCode::kInvalidArgument:
    return "invalid argument";
  case StatusCode::kNotFound:
    return "not found";
  case StatusCode::kDataLoss:
    return "data loss";
  case StatusCode::kFailedPrecondition:
    return "failed precondition";
  case StatusCode::kUnimplemented:
    return "unimplemented";
  case StatusCode::kUnavailable:
    return "unavailable";
  case StatusCode::kInternal:
    return "internal";
  }
  return "unknown";
}

Status Status::withPrefix(const std::string &prefix) const {
  if (ok())
    return *this;
  return Status(code_, prefix + ": " + message_, file_, line_);
}

std::string Status::toString() const {
  if (ok())
    return "ok";
  return std::string(statusCodeName(code_)) + ": " + message_ + " [" + file_ + ":" +
         std::to_string(line_) + "]";
}

} // namespace fusion::rt
