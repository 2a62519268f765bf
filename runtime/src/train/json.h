//===- json.h - A small strict JSON reader and writer helpers -------------===//
//
// The checkpoint files carry JSON: the safetensors header (nested objects and arrays) and
// trainer.json. Json::parse is a strict RFC 8259 parser (no comments, no trailing commas,
// no NaN, duplicate member names rejected) that keeps numbers as their source text, so
// 64-bit integers round-trip exactly and callers decide which numbers they accept. Errors
// name the byte offset. Nesting is bounded, so a crafted file cannot exhaust the stack.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/status.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fusion::rt::json {

/// A parsed JSON value.
struct Value {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  /// kNumber: the number's text as written; kString: the decoded UTF-8 string.
  std::string text;
  std::vector<Value> items;
  /// Members in file order (names unique).
  std::vector<std::pair<std::string, Value>> members;

  bool isObject() const { return kind == Kind::kObject; }
  bool isArray() const { return kind == Kind::kArray; }
  bool isString() const { return kind == Kind::kString; }
  bool isNumber() const { return kind == Kind::kNumber; }
  /// The member called `name` of an object, or nullptr.
  const Value *find(std::string_view name) const;
  /// A non-negative integer written without sign, fraction or exponent that fits 64 bits.
  std::optional<uint64_t> asUnsigned() const;
  /// A number as double (any JSON number).
  std::optional<double> asDouble() const;
  /// "object", "array", "string", "number", "true", "false", "null".
  const char *kindName() const;
};

/// Parses `text` as one JSON value (surrounded by optional whitespace).
StatusOr<Value> parse(std::string_view text);

/// `text` as a JSON string literal, with quotes; control bytes and '"', '\' escaped, other
/// bytes copied (the caller passes UTF-8).
std::string quote(std::string_view text);

/// A double as a JSON number that reads back to the same double (%.17g); "null" when not
/// finite (JSON has no NaN or infinity).
std::string number(double value);

/// A float as a JSON number that reads back to the same float (%.9g); "null" when not finite.
std::string number(float value);

} // namespace fusion::rt::json
