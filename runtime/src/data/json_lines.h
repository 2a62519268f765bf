//===- json_lines.h - A strict parser for flat JSON objects (internal) ----===//
//
// The shard manifest (MODEL.md §14.1) is JSON lines: one object per line whose values are
// strings and numbers. The runtime takes no JSON dependency for that, so this is a small
// strict RFC 8259 parser restricted to one flat object: string keys, and values that are
// strings, numbers, true, false or null. Nested objects and arrays are rejected with a clear
// message rather than skipped, so a manifest the loader does not understand never loads
// half-read. Numbers keep their source text, so integers such as n_tokens are converted
// exactly (not through a double). The same parser reads GPT-2's encoder.json (one flat
// object of token -> id) for the BPE tokenizer, with errors located as file:line:column.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/status.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fusion::rt::data {

/// One scalar JSON value.
struct JsonValue {
  enum class Kind { kString, kNumber, kBool, kNull };
  Kind kind = Kind::kNull;
  /// The decoded string (kString) or the number's source text (kNumber).
  std::string text;
  bool boolean = false;
  /// Byte offset of the value's first character in the parsed text (for located errors).
  size_t offset = 0;

  /// The value as an exact non-negative integer (a kNumber written without fraction or
  /// exponent, fitting 64 bits), or nullopt.
  std::optional<uint64_t> asUnsigned() const;
  /// The value of a kNumber as double, or nullopt for other kinds.
  std::optional<double> asDouble() const;
  /// "string", "number", "true/false", "null": for messages.
  const char *kindName() const;
};

/// The members of one flat object, in source order (duplicate keys are an error).
using JsonObject = std::vector<std::pair<std::string, JsonValue>>;

/// Parses `text` as exactly one flat JSON object (surrounding whitespace allowed). Errors
/// are one line naming the byte column (1-based) and what was expected there.
StatusOr<JsonObject> parseFlatJsonObject(std::string_view text);

/// The same for a whole file holding one flat object (e.g. GPT-2's encoder.json, one object
/// of 50k members, possibly spread over several lines): errors read
/// "<name>:<line>:<column>: <message>" (1-based, columns in bytes).
StatusOr<JsonObject> parseFlatJsonDocument(std::string_view text, const std::string &name);

/// "<name>:<line>:<column>" of byte `offset` of `text` (1-based; columns in bytes).
std::string jsonLocation(std::string_view text, size_t offset, const std::string &name);

/// `text` as a JSON string literal: quoted, with '"', '\\' and control bytes escaped (other
/// bytes, UTF-8 included, are copied as they are).
std::string jsonQuote(std::string_view text);

} // namespace fusion::rt::data
