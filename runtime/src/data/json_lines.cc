//===- json_lines.cc - A strict parser for flat JSON objects --------------===//
//
// Recursive descent over one line, with no recursion needed: an object of scalar members.
// Every rejection names the 1-based byte column, so a manifest error points at the exact
// character of the offending line.
//
//===----------------------------------------------------------------------===//

#include "json_lines.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>

namespace fusion::rt::data {

std::optional<uint64_t> JsonValue::asUnsigned() const {
  if (kind != Kind::kNumber || text.empty() || text.size() > 20)
    return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt; // sign, fraction or exponent
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10)
      return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

std::optional<double> JsonValue::asDouble() const {
  if (kind != Kind::kNumber)
    return std::nullopt;
  errno = 0;
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size())
    return std::nullopt;
  return value; // overflow gives +-inf, which callers reject as not finite
}

const char *JsonValue::kindName() const {
  switch (kind) {
  case Kind::kString:
    return "string";
  case Kind::kNumber:
    return "number";
  case Kind::kBool:
    return boolean ? "true" : "false";
  case Kind::kNull:
    return "null";
  }
  return "value";
}

namespace {

class FlatObjectParser {
public:
  /// With a `name`, errors are located as name:line:column; without, as "column N".
  explicit FlatObjectParser(std::string_view text, const std::string *name = nullptr)
      : text_(text), name_(name) {}

  StatusOr<JsonObject> parse() {
    JsonObject object;
    std::unordered_set<std::string> keys; // duplicate check in O(1) per member
    skipSpace();
    if (!consume('{'))
      return fail(atEnd() ? "empty line, expected a JSON object '{'" : "expected '{'");
    skipSpace();
    if (!consume('}')) {
      while (true) {
        skipSpace();
        if (peek() != '"')
          return fail("expected a member name (a string)");
        size_t keyColumn = pos_ + 1;
        StatusOr<std::string> key = parseString();
        if (!key.ok())
          return key.status();
        if (!keys.insert(*key).second)
          return failAt(keyColumn, "duplicate member " + jsonQuote(*key));
        skipSpace();
        if (!consume(':'))
          return fail("expected ':' after the member name");
        skipSpace();
        StatusOr<JsonValue> value = parseValue();
        if (!value.ok())
          return value.status();
        object.emplace_back(std::move(*key), std::move(*value));
        skipSpace();
        if (consume(','))
          continue;
        if (consume('}'))
          break;
        return fail("expected ',' or '}'");
      }
    }
    skipSpace();
    if (!atEnd())
      return fail("unexpected text after the object");
    return object;
  }

private:
  bool atEnd() const { return pos_ >= text_.size(); }
  char peek() const { return atEnd() ? '\0' : text_[pos_]; }
  bool consume(char c) {
    if (peek() != c || atEnd())
      return false;
    ++pos_;
    return true;
  }
  void skipSpace() {
    while (!atEnd() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\r' ||
                        text_[pos_] == '\n'))
      ++pos_;
  }
  Status failAt(size_t column, const std::string &message) const {
    if (name_)
      return Status(StatusCode::kDataLoss,
                    jsonLocation(text_, column - 1, *name_) + ": " + message);
    return Status(StatusCode::kDataLoss, "column " + std::to_string(column) + ": " + message);
  }
  Status fail(const std::string &message) const { return failAt(pos_ + 1, message); }

  StatusOr<JsonValue> parseValue() {
    size_t start = pos_;
    StatusOr<JsonValue> value = parseValueAt();
    if (value.ok())
      value->offset = start;
    return value;
  }

  StatusOr<JsonValue> parseValueAt() {
    JsonValue value;
    char c = peek();
    if (c == '"') {
      StatusOr<std::string> text = parseString();
      if (!text.ok())
        return text.status();
      value.kind = JsonValue::Kind::kString;
      value.text = std::move(*text);
      return value;
    }
    if (c == '{' || c == '[')
      return fail(std::string("nested ") + (c == '{' ? "objects" : "arrays") +
                  " are not supported (manifest lines are flat objects)");
    if (c == '-' || (c >= '0' && c <= '9'))
      return parseNumber();
    for (const char *word : {"true", "false", "null"}) {
      std::string_view w(word);
      if (text_.substr(pos_, w.size()) == w) {
        pos_ += w.size();
        value.kind = w == "null" ? JsonValue::Kind::kNull : JsonValue::Kind::kBool;
        value.boolean = w == "true";
        return value;
      }
    }
    return fail(atEnd() ? "expected a value, found the end of the line" : "expected a value");
  }

  StatusOr<JsonValue> parseNumber() {
    size_t start = pos_;
    consume('-');
    if (consume('0')) {
      // a leading zero stands alone
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9' && !atEnd())
        ++pos_;
    } else {
      return fail("expected a digit");
    }
    if (consume('.')) {
      if (!(peek() >= '0' && peek() <= '9') || atEnd())
        return fail("expected a digit after '.'");
      while (peek() >= '0' && peek() <= '9' && !atEnd())
        ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (!consume('+'))
        consume('-');
      if (!(peek() >= '0' && peek() <= '9') || atEnd())
        return fail("expected a digit in the exponent");
      while (peek() >= '0' && peek() <= '9' && !atEnd())
        ++pos_;
    }
    JsonValue value;
    value.kind = JsonValue::Kind::kNumber;
    value.text = std::string(text_.substr(start, pos_ - start));
    return value;
  }

  /// Four hex digits of a \u escape.
  std::optional<uint32_t> parseHex4() {
    if (pos_ + 4 > text_.size())
      return std::nullopt;
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_ + i];
      uint32_t digit;
      if (c >= '0' && c <= '9')
        digit = static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        digit = static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        digit = static_cast<uint32_t>(c - 'A' + 10);
      else
        return std::nullopt;
      value = value * 16 + digit;
    }
    pos_ += 4;
    return value;
  }

  static void appendUtf8(std::string &out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  StatusOr<std::string> parseString() {
    ++pos_; // opening quote
    std::string out;
    while (true) {
      if (atEnd())
        return fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20)
        return fail("control character in a string (escape it)");
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      size_t escapeColumn = pos_ + 1;
      ++pos_;
      if (atEnd())
        return fail("unterminated escape");
      char e = text_[pos_++];
      switch (e) {
      case '"':
      case '\\':
      case '/':
        out += e;
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        std::optional<uint32_t> unit = parseHex4();
        if (!unit)
          return failAt(escapeColumn, "\\u needs four hex digits");
        uint32_t cp = *unit;
        if (cp >= 0xdc00 && cp <= 0xdfff)
          return failAt(escapeColumn, "unpaired low surrogate in \\u escape");
        if (cp >= 0xd800 && cp <= 0xdbff) {
          if (text_.substr(pos_, 2) != "\\u")
            return failAt(escapeColumn, "unpaired high surrogate in \\u escape");
          pos_ += 2;
          std::optional<uint32_t> low = parseHex4();
          if (!low || *low < 0xdc00 || *low > 0xdfff)
            return failAt(escapeColumn, "high surrogate not followed by a low surrogate");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (*low - 0xdc00);
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        return failAt(escapeColumn, "invalid escape '\\" + std::string(1, e) + "'");
      }
    }
  }

  std::string_view text_;
  const std::string *name_ = nullptr;
  size_t pos_ = 0;
};

} // namespace

StatusOr<JsonObject> parseFlatJsonObject(std::string_view text) {
  return FlatObjectParser(text).parse();
}

StatusOr<JsonObject> parseFlatJsonDocument(std::string_view text, const std::string &name) {
  return FlatObjectParser(text, &name).parse();
}

std::string jsonLocation(std::string_view text, size_t offset, const std::string &name) {
  size_t line = 1, lineStart = 0;
  for (size_t i = 0; i < offset && i < text.size(); ++i)
    if (text[i] == '\n') {
      ++line;
      lineStart = i + 1;
    }
  return name + ":" + std::to_string(line) + ":" + std::to_string(offset - lineStart + 1);
}

std::string jsonQuote(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\u%04x", c);
      out += escape;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

} // namespace fusion::rt::data
