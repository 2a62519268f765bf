//===- json.cc - A small strict JSON reader and writer helpers ------------===//

#include "json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace fusion::rt::json {

const Value *Value::find(std::string_view name) const {
  for (const auto &member : members)
    if (member.first == name)
      return &member.second;
  return nullptr;
}

std::optional<uint64_t> Value::asUnsigned() const {
  if (kind != Kind::kNumber || text.empty() || text.size() > 20)
    return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10)
      return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

std::optional<double> Value::asDouble() const {
  if (kind != Kind::kNumber)
    return std::nullopt;
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size())
    return std::nullopt;
  return value;
}

const char *Value::kindName() const {
  switch (kind) {
  case Kind::kNull:
    return "null";
  case Kind::kBool:
    return boolean ? "true" : "false";
  case Kind::kNumber:
    return "number";
  case Kind::kString:
    return "string";
  case Kind::kArray:
    return "array";
  case Kind::kObject:
    return "object";
  }
  return "value";
}

namespace {

constexpr int kMaxDepth = 64;

class Parser {
public:
  explicit Parser(std::string_view text) : text_(text) {}

  StatusOr<Value> parseDocument() {
    Value value;
    FUSION_RETURN_IF_ERROR(parseValue(value, 0));
    skipSpace();
    if (pos_ != text_.size())
      return fail("unexpected text after the JSON value");
    return value;
  }

private:
  Status fail(const std::string &message) const {
    return Status(StatusCode::kDataLoss,
                  "invalid JSON at byte " + std::to_string(pos_) + ": " + message);
  }
  bool atEnd() const { return pos_ >= text_.size(); }
  char peek() const { return atEnd() ? '\0' : text_[pos_]; }
  void skipSpace() {
    while (!atEnd() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                        text_[pos_] == '\r'))
      ++pos_;
  }
  bool consumeWord(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word)
      return false;
    pos_ += word.size();
    return true;
  }

  Status parseValue(Value &out, int depth) {
    if (depth > kMaxDepth)
      return fail("nesting deeper than " + std::to_string(kMaxDepth));
    skipSpace();
    if (atEnd())
      return fail("unexpected end of text, expected a value");
    char c = peek();
    if (c == '{')
      return parseObject(out, depth);
    if (c == '[')
      return parseArray(out, depth);
    if (c == '"') {
      out.kind = Value::Kind::kString;
      return parseString(out.text);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      out.kind = Value::Kind::kNumber;
      return parseNumber(out.text);
    }
    if (consumeWord("true")) {
      out.kind = Value::Kind::kBool;
      out.boolean = true;
      return Status::okStatus();
    }
    if (consumeWord("false")) {
      out.kind = Value::Kind::kBool;
      return Status::okStatus();
    }
    if (consumeWord("null")) {
      out.kind = Value::Kind::kNull;
      return Status::okStatus();
    }
    return fail("unexpected character, expected a value");
  }

  Status parseObject(Value &out, int depth) {
    out.kind = Value::Kind::kObject;
    ++pos_; // '{'
    skipSpace();
    if (peek() == '}') {
      ++pos_;
      return Status::okStatus();
    }
    while (true) {
      skipSpace();
      if (peek() != '"')
        return fail("expected a member name (a string)");
      size_t namePos = pos_;
      std::string name;
      FUSION_RETURN_IF_ERROR(parseString(name));
      if (out.find(name)) {
        pos_ = namePos;
        return fail("duplicate member " + quote(name));
      }
      skipSpace();
      if (peek() != ':')
        return fail("expected ':' after a member name");
      ++pos_;
      Value value;
      FUSION_RETURN_IF_ERROR(parseValue(value, depth + 1));
      out.members.emplace_back(std::move(name), std::move(value));
      skipSpace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return Status::okStatus();
      }
      return fail("expected ',' or '}' in an object");
    }
  }

  Status parseArray(Value &out, int depth) {
    out.kind = Value::Kind::kArray;
    ++pos_; // '['
    skipSpace();
    if (peek() == ']') {
      ++pos_;
      return Status::okStatus();
    }
    while (true) {
      Value value;
      FUSION_RETURN_IF_ERROR(parseValue(value, depth + 1));
      out.items.push_back(std::move(value));
      skipSpace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return Status::okStatus();
      }
      return fail("expected ',' or ']' in an array");
    }
  }

  Status parseNumber(std::string &out) {
    size_t start = pos_;
    if (peek() == '-')
      ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9')
        ++pos_;
    } else {
      return fail("malformed number");
    }
    if (peek() == '.') {
      ++pos_;
      if (!(peek() >= '0' && peek() <= '9'))
        return fail("malformed number (digits must follow '.')");
      while (peek() >= '0' && peek() <= '9')
        ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-')
        ++pos_;
      if (!(peek() >= '0' && peek() <= '9'))
        return fail("malformed number (digits must follow the exponent)");
      while (peek() >= '0' && peek() <= '9')
        ++pos_;
    }
    out.assign(text_.substr(start, pos_ - start));
    return Status::okStatus();
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

  bool parseHex4(uint32_t &out) {
    if (pos_ + 4 > text_.size())
      return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_ + i];
      uint32_t digit;
      if (c >= '0' && c <= '9')
        digit = c - '0';
      else if (c >= 'a' && c <= 'f')
        digit = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        digit = c - 'A' + 10;
      else
        return false;
      out = out * 16 + digit;
    }
    pos_ += 4;
    return true;
  }

  Status parseString(std::string &out) {
    ++pos_; // '"'
    out.clear();
    while (true) {
      if (atEnd())
        return fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return Status::okStatus();
      }
      if (c < 0x20)
        return fail("control character in a string");
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
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
        uint32_t cp;
        if (!parseHex4(cp))
          return fail("malformed \\u escape");
        if (cp >= 0xd800 && cp <= 0xdbff) {
          uint32_t low;
          if (!consumeWord("\\u") || !parseHex4(low) || low < 0xdc00 || low > 0xdfff)
            return fail("unpaired surrogate in a \\u escape");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
          return fail("unpaired surrogate in a \\u escape");
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        return fail("unknown escape");
      }
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

} // namespace

StatusOr<Value> parse(std::string_view text) { return Parser(text).parseDocument(); }

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (c < 0x20 || c == 0x7f) {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "\\u%04x", c);
        out += hex;
      } else {
        out += static_cast<char>(c);
      }
    }
  }
  return out + "\"";
}

std::string number(double value) {
  if (!std::isfinite(value))
    return "null";
  char text[40];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}

std::string number(float value) {
  if (!std::isfinite(value))
    return "null";
  char text[40];
  std::snprintf(text, sizeof(text), "%.9g", static_cast<double>(value));
  return text;
}

} // namespace fusion::rt::json
