//===- bpe_tokenizer.cc - GPT-2 byte-level BPE ----------------------------===//
//
// Loading: encoder.json is parsed with the flat-object JSON parser (json_lines), each token
// string is mapped back to bytes through GPT-2's byte <-> code point table, and every merge
// line of vocab.bpe is resolved to (left, right) -> merged token. Tokens are then renumbered
// densely (see tokenizer.h), and the merge table is keyed by dense ids, so encoding never
// touches strings beyond the per-piece cache.
//
// Pre-tokenisation is a hand-written matcher of GPT-2's pattern over UTF-8 code points: at
// each position the alternatives are tried in the pattern's order; since every code point is
// a letter, number, space or "other", some alternative always matches and the pieces tile
// the text.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/tokenizer.h"

#include "json_lines.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace fusion::rt::data {

//===----------------------------------------------------------------------===//
// Unicode classes
//===----------------------------------------------------------------------===//

namespace {

struct CodePointRange {
  uint32_t lo, hi;
};

#include "unicode_classes.inc"

template <size_t N> bool inRanges(const CodePointRange (&ranges)[N], uint32_t cp) {
  const CodePointRange *end = ranges + N;
  const CodePointRange *it = std::upper_bound(
      ranges, end, cp, [](uint32_t value, const CodePointRange &r) { return value < r.lo; });
  return it != ranges && cp <= (it - 1)->hi;
}

enum class CharClass { kLetter, kNumber, kSpace, kOther };

/// One code point of `text` at `pos`: its value, its length in bytes and whether it was valid
/// UTF-8 (an invalid byte is a one-byte "code point" of class other).
struct Decoded {
  uint32_t cp;
  size_t length;
  bool valid;
};

Decoded decodeUtf8(std::string_view text, size_t pos) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char b0 = byte(pos);
  if (b0 < 0x80)
    return {b0, 1, true};
  size_t length;
  uint32_t cp, min;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    length = 2, cp = b0 & 0x1fu, min = 0x80;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    length = 3, cp = b0 & 0x0fu, min = 0x800;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    length = 4, cp = b0 & 0x07u, min = 0x10000;
  } else {
    return {b0, 1, false};
  }
  if (pos + length > text.size())
    return {b0, 1, false};
  for (size_t i = 1; i < length; ++i) {
    unsigned char b = byte(pos + i);
    if ((b & 0xc0) != 0x80)
      return {b0, 1, false};
    cp = (cp << 6) | (b & 0x3fu);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return {b0, 1, false};
  return {cp, length, true};
}

CharClass classify(const Decoded &d) {
  if (!d.valid)
    return CharClass::kOther;
  uint32_t cp = d.cp;
  if (cp < 0x80) { // ASCII fast path
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z')
      return CharClass::kLetter;
    if (cp >= '0' && cp <= '9')
      return CharClass::kNumber;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0d))
      return CharClass::kSpace;
    return CharClass::kOther;
  }
  if (isUnicodeLetter(cp))
    return CharClass::kLetter;
  if (isUnicodeNumber(cp))
    return CharClass::kNumber;
  if (isUnicodeWhiteSpace(cp))
    return CharClass::kSpace;
  return CharClass::kOther;
}

} // namespace

bool isUnicodeLetter(uint32_t codePoint) { return inRanges(kLetterRanges, codePoint); }
bool isUnicodeNumber(uint32_t codePoint) { return inRanges(kNumberRanges, codePoint); }
bool isUnicodeWhiteSpace(uint32_t codePoint) { return inRanges(kWhiteSpaceRanges, codePoint); }
const char *unicodeTablesVersion() { return kUnicodeVersion; }

//===----------------------------------------------------------------------===//
// GPT-2's byte <-> code point table
//===----------------------------------------------------------------------===//

namespace {

bool byteMapsToItself(unsigned b) {
  return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

struct ByteTable {
  uint32_t toCodePoint[256];
  ByteTable() {
    uint32_t next = 256;
    for (unsigned b = 0; b < 256; ++b)
      toCodePoint[b] = byteMapsToItself(b) ? b : next++;
  }
};

const ByteTable &byteTable() {
  static const ByteTable table;
  return table;
}

} // namespace

uint32_t gpt2ByteToCodePoint(uint8_t byte) { return byteTable().toCodePoint[byte]; }

std::optional<uint8_t> gpt2CodePointToByte(uint32_t codePoint) {
  if (codePoint < 256)
    return byteMapsToItself(codePoint) ? std::optional<uint8_t>(static_cast<uint8_t>(codePoint))
                                       : std::nullopt;
  // The 68 remapped bytes take 256..323 in increasing byte order.
  if (codePoint >= 256 + 68)
    return std::nullopt;
  uint32_t index = codePoint - 256;
  for (unsigned b = 0; b < 256; ++b)
    if (!byteMapsToItself(b) && index-- == 0)
      return static_cast<uint8_t>(b);
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Pre-tokenisation
//===----------------------------------------------------------------------===//

std::vector<std::string_view> preTokenize(std::string_view text) {
  std::vector<std::string_view> pieces;
  const size_t n = text.size();
  size_t i = 0;
  auto classAt = [&](size_t pos, Decoded *out = nullptr) {
    Decoded d = decodeUtf8(text, pos);
    if (out)
      *out = d;
    return classify(d);
  };
  // End of the run of code points of class `cls` starting at `pos`.
  auto runEnd = [&](size_t pos, CharClass cls) {
    while (pos < n) {
      Decoded d;
      if (classAt(pos, &d) != cls)
        break;
      pos += d.length;
    }
    return pos;
  };
  while (i < n) {
    // 's|'t|'re|'ve|'m|'ll|'d
    if (text[i] == '\'' && i + 1 < n) {
      char c1 = text[i + 1];
      char c2 = i + 2 < n ? text[i + 2] : '\0';
      size_t length = 0;
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
        length = 2;
      else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
        length = 3;
      if (length) {
        pieces.push_back(text.substr(i, length));
        i += length;
        continue;
      }
    }
    //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+
    size_t start = text[i] == ' ' ? i + 1 : i;
    if (start < n) {
      CharClass cls = classAt(start);
      if (cls != CharClass::kSpace) {
        size_t end = runEnd(start, cls);
        pieces.push_back(text.substr(i, end - i));
        i = end;
        continue;
      }
    }
    // \s+(?!\S) | \s+ : text[i] starts a run of white space.
    size_t end = i, lastStart = i, count = 0;
    while (end < n) {
      Decoded d;
      if (classAt(end, &d) != CharClass::kSpace)
        break;
      lastStart = end;
      end += d.length;
      ++count;
    }
    if (end < n && count >= 2)
      end = lastStart; // leave the last space to prefix the next word
    pieces.push_back(text.substr(i, end - i));
    i = end;
  }
  return pieces;
}

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

namespace {

StatusOr<std::string> readWholeFile(const std::string &path) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return Status(StatusCode::kNotFound, path + ": cannot open: " + std::strerror(errno));
  std::stringstream text;
  text << file.rdbuf();
  if (file.bad())
    return Status(StatusCode::kDataLoss, path + ": read error");
  return text.str();
}

/// The bytes of a token string written in GPT-2's code point alphabet, or nullopt when a code
/// point is outside it (or the string is not UTF-8).
std::optional<std::string> unicodeTokenToBytes(std::string_view token) {
  std::string bytes;
  for (size_t pos = 0; pos < token.size();) {
    Decoded d = decodeUtf8(token, pos);
    if (!d.valid)
      return std::nullopt;
    std::optional<uint8_t> b = gpt2CodePointToByte(d.cp);
    if (!b)
      return std::nullopt;
    bytes += static_cast<char>(*b);
    pos += d.length;
  }
  return bytes;
}

constexpr std::string_view kEotText = "<|endoftext|>";
constexpr size_t kMaxCacheEntries = 1 << 20;

} // namespace

StatusOr<std::unique_ptr<BpeTokenizer>>
BpeTokenizer::load(const std::string &encoderJsonPath, const std::string &mergesPath,
                   std::optional<uint64_t> maxMerges) {
  StatusOr<std::string> encoder = readWholeFile(encoderJsonPath);
  if (!encoder.ok())
    return encoder.status();
  StatusOr<std::string> merges = readWholeFile(mergesPath);
  if (!merges.ok())
    return merges.status();
  return fromText(*encoder, encoderJsonPath, *merges, mergesPath, maxMerges);
}

StatusOr<std::unique_ptr<BpeTokenizer>>
BpeTokenizer::fromText(std::string_view encoderJson, const std::string &encoderName,
                       std::string_view mergesText, const std::string &mergesName,
                       std::optional<uint64_t> maxMerges) {
  auto dataLoss = [](const std::string &message) {
    return Status(StatusCode::kDataLoss, message);
  };

  // encoder.json: token (GPT-2 code points) -> id.
  StatusOr<JsonObject> object = parseFlatJsonDocument(encoderJson, encoderName);
  if (!object.ok())
    return object.status();
  if (object->empty())
    return dataLoss(encoderName + ": the object is empty (expected token -> id members)");
  std::unordered_map<std::string, int64_t> idOfBytes;
  std::unordered_map<int64_t, std::string> bytesOfId;
  idOfBytes.reserve(object->size());
  bytesOfId.reserve(object->size());
  std::unique_ptr<BpeTokenizer> tokenizer(new BpeTokenizer());
  for (const auto &[key, value] : *object) {
    // Located lazily: computing the line of every member would be quadratic.
    auto where = [&, &value = value] {
      return jsonLocation(encoderJson, value.offset, encoderName);
    };
    std::optional<uint64_t> id = value.asUnsigned();
    if (!id || *id > INT32_MAX)
      return dataLoss(where() + ": the id of token " + jsonQuote(key) +
                      " must be an integer in [0, 2^31), got " +
                      (value.kind == JsonValue::Kind::kNumber ? value.text : value.kindName()));
    if (bytesOfId.count(static_cast<int64_t>(*id)))
      return dataLoss(where() + ": id " + std::to_string(*id) + " of token " + jsonQuote(key) +
                      " is also the id of an earlier token");
    if (key == kEotText) {
      tokenizer->encoderEot_ = static_cast<int64_t>(*id);
      bytesOfId[tokenizer->encoderEot_] = key;
      continue;
    }
    std::optional<std::string> bytes = unicodeTokenToBytes(key);
    if (!bytes || bytes->empty())
      return dataLoss(where() + ": token " + jsonQuote(key) +
                      (bytes ? std::string(" is empty")
                             : std::string(" has a character outside GPT-2's byte alphabet "
                                           "(encoder.json tokens spell bytes as code points)")));
    idOfBytes.emplace(*bytes, static_cast<int64_t>(*id));
    bytesOfId.emplace(static_cast<int64_t>(*id), std::move(*bytes));
  }
  for (unsigned b = 0; b < 256; ++b)
    if (!idOfBytes.count(std::string(1, static_cast<char>(b)))) {
      uint32_t cp = gpt2ByteToCodePoint(static_cast<uint8_t>(b));
      char text[64];
      std::snprintf(text, sizeof(text), "byte 0x%02x (written as U+%04X)", b, cp);
      return dataLoss(encoderName + ": has no token for " + text +
                      "; byte-level BPE needs all 256 byte tokens");
    }

  // vocab.bpe: "#version" line, then one merge "left right" per line, rank = order.
  struct Merge {
    int64_t left, right, result;
  };
  std::vector<Merge> merges;
  size_t lineNumber = 0;
  size_t blankLine = 0; // a blank line is only allowed at the end
  for (size_t pos = 0; pos < mergesText.size();) {
    size_t eol = mergesText.find('\n', pos);
    if (eol == std::string_view::npos)
      eol = mergesText.size();
    std::string_view line = mergesText.substr(pos, eol - pos);
    pos = eol + 1;
    ++lineNumber;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    std::string where = mergesName + ":" + std::to_string(lineNumber);
    if (lineNumber == 1 && line.substr(0, 8) == "#version")
      continue;
    if (line.empty()) {
      if (!blankLine)
        blankLine = lineNumber;
      continue;
    }
    if (blankLine)
      return dataLoss(mergesName + ":" + std::to_string(blankLine) +
                      ": blank line before the end of the merges");
    size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string_view::npos)
      return dataLoss(where + ": expected a merge: two tokens separated by one space, got " +
                      jsonQuote(line));
    std::string_view sides[2] = {line.substr(0, space), line.substr(space + 1)};
    Merge merge{};
    std::string joined;
    for (int s = 0; s < 2; ++s) {
      std::optional<std::string> bytes = unicodeTokenToBytes(sides[s]);
      if (!bytes)
        return dataLoss(where + ": token " + jsonQuote(sides[s]) +
                        " has a character outside GPT-2's byte alphabet");
      auto it = idOfBytes.find(*bytes);
      if (it == idOfBytes.end())
        return dataLoss(where + ": token " + jsonQuote(sides[s]) + " is not in " + encoderName);
      (s == 0 ? merge.left : merge.right) = it->second;
      joined += *bytes;
    }
    auto it = idOfBytes.find(joined);
    if (it == idOfBytes.end())
      return dataLoss(where + ": the merged token " + jsonQuote(std::string(sides[0]) +
                                                                std::string(sides[1])) +
                      " is not in " + encoderName);
    merge.result = it->second;
    merges.push_back(merge);
  }
  tokenizer->availableMerges_ = merges.size();
  size_t keep = merges.size();
  if (maxMerges) {
    if (*maxMerges > merges.size())
      return Status(StatusCode::kInvalidArgument,
                    "asked for " + std::to_string(*maxMerges) + " merges but " + mergesName +
                        " has " + std::to_string(merges.size()));
    keep = static_cast<size_t>(*maxMerges);
  }
  tokenizer->numMerges_ = keep;

  // Kept tokens, renumbered densely in encoder.json id order.
  std::vector<int64_t> kept;
  kept.reserve(256 + keep);
  for (unsigned b = 0; b < 256; ++b)
    kept.push_back(idOfBytes.at(std::string(1, static_cast<char>(b))));
  for (size_t r = 0; r < keep; ++r)
    kept.push_back(merges[r].result);
  std::sort(kept.begin(), kept.end());
  kept.erase(std::unique(kept.begin(), kept.end()), kept.end());
  std::unordered_map<int64_t, int32_t> denseOf;
  denseOf.reserve(kept.size());
  for (size_t d = 0; d < kept.size(); ++d) {
    denseOf[kept[d]] = static_cast<int32_t>(d);
    tokenizer->tokens_.push_back(bytesOfId.at(kept[d]));
    tokenizer->encoderIds_.push_back(kept[d]);
  }
  for (unsigned b = 0; b < 256; ++b)
    tokenizer->byteIds_[b] = denseOf.at(idOfBytes.at(std::string(1, static_cast<char>(b))));
  for (size_t r = 0; r < keep; ++r) {
    auto left = denseOf.find(merges[r].left), right = denseOf.find(merges[r].right);
    if (left == denseOf.end() || right == denseOf.end())
      continue; // an operand no kept merge produces: the merge can never apply
    uint64_t key = (uint64_t(uint32_t(left->second)) << 32) | uint32_t(right->second);
    uint64_t value = (uint64_t(r) << 32) | uint32_t(denseOf.at(merges[r].result));
    tokenizer->merges_.emplace(key, value); // a repeated pair keeps its first (best) rank
  }
  return tokenizer;
}

//===----------------------------------------------------------------------===//
// Encoding and decoding
//===----------------------------------------------------------------------===//

void BpeTokenizer::encodePiece(std::string_view piece, std::vector<int32_t> &out) {
  std::string key(piece);
  auto cached = cache_.find(key);
  if (cached != cache_.end()) {
    out.insert(out.end(), cached->second.begin(), cached->second.end());
    return;
  }
  std::vector<int32_t> word;
  word.reserve(piece.size());
  for (unsigned char c : piece)
    word.push_back(byteIds_[c]);
  std::vector<int32_t> next;
  while (word.size() > 1) {
    // The adjacent pair of lowest rank.
    uint64_t bestRank = UINT64_MAX;
    int32_t bestLeft = 0, bestRight = 0, bestResult = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      uint64_t key = (uint64_t(uint32_t(word[i])) << 32) | uint32_t(word[i + 1]);
      auto it = merges_.find(key);
      if (it != merges_.end() && (it->second >> 32) < bestRank) {
        bestRank = it->second >> 32;
        bestLeft = word[i];
        bestRight = word[i + 1];
        bestResult = static_cast<int32_t>(uint32_t(it->second));
      }
    }
    if (bestRank == UINT64_MAX)
      break;
    // Merge all its non-overlapping occurrences, left to right.
    next.clear();
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == bestLeft && word[i + 1] == bestRight) {
        next.push_back(bestResult);
        i += 2;
      } else {
        next.push_back(word[i]);
        i += 1;
      }
    }
    word.swap(next);
  }
  out.insert(out.end(), word.begin(), word.end());
  if (cache_.size() >= kMaxCacheEntries)
    cache_.clear();
  cache_.emplace(std::move(key), std::move(word));
}

void BpeTokenizer::encode(std::string_view text, std::vector<int32_t> &out) {
  for (std::string_view piece : preTokenize(text))
    encodePiece(piece, out);
}

StatusOr<std::string> BpeTokenizer::decode(const std::vector<int32_t> &ids) const {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocabSize())
      return Status(StatusCode::kInvalidArgument,
                    "token " + std::to_string(i) + " is " + std::to_string(ids[i]) +
                        ", outside the vocabulary [0, " + std::to_string(vocabSize()) + ")");
    text += tokenBytes(ids[i]);
  }
  return text;
}

const std::string &BpeTokenizer::tokenBytes(int32_t id) const {
  return id == eotId() ? eotText_ : tokens_.at(static_cast<size_t>(id));
}

int64_t BpeTokenizer::encoderId(int32_t id) const {
  return id == eotId() ? encoderEot_ : encoderIds_.at(static_cast<size_t>(id));
}

bool BpeTokenizer::idsMatchEncoder() const {
  for (size_t d = 0; d < encoderIds_.size(); ++d)
    if (encoderIds_[d] != static_cast<int64_t>(d))
      return false;
  return true;
}

} // namespace fusion::rt::data
