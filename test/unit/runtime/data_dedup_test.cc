//===- data_dedup_test.cc - Exact-prefix and MinHash deduplication --------===//
//
// Hand-made corpora with hand-computed expectations: documents equal after whitespace
// normalisation, prefixes of N bytes, near-duplicates that differ in two words (their word
// 5-gram Jaccard similarity is 190/210 by counting), unrelated and half-overlapping
// documents that must be kept, the MinHash estimate against the exact Jaccard similarity
// (computed here from shingle strings, independently of the library's hashing), and the LSH
// banding rule against the S-curve computed by hand.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

using namespace fusion::rt;
using namespace fusion::rt::data;

namespace {

using Method = Deduplicator::Method;

/// "p0 p1 ... p{n-1}" with word i replaced by replacements[i] where given.
std::string words(const std::string &prefix, int n,
                  const std::vector<std::pair<int, std::string>> &replacements = {}) {
  std::string text;
  for (int i = 0; i < n; ++i) {
    std::string word = prefix + std::to_string(i);
    for (const auto &[at, other] : replacements)
      if (at == i)
        word = other;
    text += (i ? " " : "") + word;
  }
  return text;
}

/// The word 5-gram shingles of `text` as strings (an independent reference: split on
/// spaces, lowercase, join five consecutive words).
std::set<std::string> shingleStrings(const std::string &text) {
  std::vector<std::string> list;
  std::string word;
  for (char c : text + " ") {
    if (c == ' ' || c == '\n' || c == '\t') {
      if (!word.empty())
        list.push_back(word);
      word.clear();
    } else {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  std::set<std::string> out;
  for (size_t i = 0; i + 5 <= list.size(); ++i)
    out.insert(list[i] + " " + list[i + 1] + " " + list[i + 2] + " " + list[i + 3] + " " +
               list[i + 4]);
  return out;
}

double exactJaccard(const std::string &a, const std::string &b) {
  std::set<std::string> x = shingleStrings(a), y = shingleStrings(b);
  size_t common = 0;
  for (const std::string &s : x)
    common += y.count(s);
  return static_cast<double>(common) / static_cast<double>(x.size() + y.size() - common);
}

TEST(DedupTest, NormalizesWhitespace) {
  EXPECT_EQ(normalizeWhitespace("  a \t b\n\nc  "), "a b c");
  EXPECT_EQ(normalizeWhitespace("\r\n\v\f"), "");
  EXPECT_EQ(normalizeWhitespace("x"), "x");
  EXPECT_EQ(normalizeWhitespace("Caf\xc3\xa9  \xe2\x98\x95"), "Caf\xc3\xa9 \xe2\x98\x95");
}

TEST(DedupTest, ParsesTheSpec) {
  DedupOptions options;
  ASSERT_TRUE(parseDedupSpec("exact-prefix", options).ok());
  EXPECT_EQ(options.exactPrefixBytes, std::optional<size_t>(512));
  EXPECT_FALSE(options.minhashThreshold);
  ASSERT_TRUE(parseDedupSpec("minhash", options).ok()); // merges: the flag may repeat
  EXPECT_EQ(options.minhashThreshold, std::optional<double>(0.8));
  EXPECT_EQ(options.exactPrefixBytes, std::optional<size_t>(512));

  DedupOptions both;
  ASSERT_TRUE(parseDedupSpec("exact-prefix:100,minhash:0.7", both).ok());
  EXPECT_EQ(both.exactPrefixBytes, std::optional<size_t>(100));
  EXPECT_EQ(both.minhashThreshold, std::optional<double>(0.7));

  struct Case {
    const char *spec, *message;
  } cases[] = {
      {"", "--dedup '': expected exact-prefix[:N] and/or minhash[:T], comma-separated"},
      {"minhash:0", "--dedup 'minhash:0': minhash:T needs a Jaccard threshold T in (0, 1], got '0'"},
      {"minhash:1.5",
       "--dedup 'minhash:1.5': minhash:T needs a Jaccard threshold T in (0, 1], got '1.5'"},
      {"exact-prefix:0",
       "--dedup 'exact-prefix:0': exact-prefix:N needs a byte count N >= 1, got '0'"},
      {"exact-prefix:x",
       "--dedup 'exact-prefix:x': exact-prefix:N needs a byte count N >= 1, got 'x'"},
      {"simhash", "--dedup 'simhash': unknown method 'simhash' (expected exact-prefix[:N] or "
                  "minhash[:T])"},
      {"minhash,minhash:0.9", "--dedup 'minhash,minhash:0.9': minhash given twice"},
  };
  for (const Case &c : cases) {
    DedupOptions fresh;
    Status status = parseDedupSpec(c.spec, fresh);
    EXPECT_EQ(status.message(), c.message) << c.spec;
  }
}

TEST(DedupTest, ShinglesAreLowercasedWordFiveGrams) {
  std::vector<uint64_t> six = wordShingles("A b  c\nd e F");
  std::vector<uint64_t> expected = {hashBytes("a b c d e", kShingleSeed),
                                    hashBytes("b c d e f", kShingleSeed)};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(six, expected);
  // 1..4 words: one shingle of all of them; no words: none; repeats collapse.
  EXPECT_EQ(wordShingles("x y z"),
            std::vector<uint64_t>{hashBytes("x y z", kShingleSeed)});
  EXPECT_TRUE(wordShingles(" \n ").empty());
  EXPECT_EQ(wordShingles("a a a a a a a a").size(), 1u);
  EXPECT_EQ(wordShingles(words("w", 204)).size(), 200u);
  EXPECT_TRUE(minhashSignature({}).empty());
  EXPECT_EQ(minhashSignature(wordShingles("x y z")).size(), 128u);
}

TEST(DedupTest, BandingFollowsTheSCurve) {
  // T = 0.8: r = 7 (b = 18) gives 1 - (1 - 0.8^7)^18 = 0.9855 < 0.99; r = 6 (b = 21) gives
  // 1 - (1 - 0.262144)^21 = 1 - 0.0016887 = 0.99831.
  LshBanding b08 = chooseLshBanding(0.8);
  EXPECT_EQ(b08.bands, 21);
  EXPECT_EQ(b08.rows, 6);
  EXPECT_NEAR(b08.candidateProbability(0.8), 0.998311, 1e-6);
  EXPECT_NEAR((LshBanding{18, 7}).candidateProbability(0.8), 0.98555, 1e-5);
  // Unrelated documents (J = 0.1) almost never become candidates: 1 - (1 - 1e-6)^21.
  EXPECT_NEAR(b08.candidateProbability(0.1), 2.1e-5, 1e-7);
  // T = 0.5: r = 3, b = 42 (0.99633; r = 4, b = 32 gives 0.873). T = 0.3: r = 2, b = 64.
  EXPECT_EQ(chooseLshBanding(0.5).rows, 3);
  EXPECT_EQ(chooseLshBanding(0.5).bands, 42);
  EXPECT_EQ(chooseLshBanding(0.3).rows, 2);
  EXPECT_EQ(chooseLshBanding(0.3).bands, 64);
  // T = 1: only identical signatures, one band of all 128 positions.
  EXPECT_EQ(chooseLshBanding(1.0).rows, 128);
  EXPECT_EQ(chooseLshBanding(1.0).bands, 1);
}

TEST(DedupTest, MinHashEstimatesTheJaccardSimilarity) {
  // A: 204 distinct words = 200 shingles. B: words 50 and 150 replaced; each replacement
  // changes the 5 shingles that contain it, so |A & B| = 190, |A | B| = 210, J = 19/21.
  std::string a = words("w", 204);
  std::string b = words("w", 204, {{50, "x"}, {150, "y"}});
  EXPECT_DOUBLE_EQ(exactJaccard(a, b), 190.0 / 210.0);
  // C: 10 replacements 20 words apart: 50 shingles differ, J = 150 / 250 = 0.6.
  std::vector<std::pair<int, std::string>> ten;
  for (int i = 0; i < 10; ++i)
    ten.emplace_back(10 + 20 * i, "z" + std::to_string(i));
  std::string c = words("w", 204, ten);
  EXPECT_DOUBLE_EQ(exactJaccard(a, c), 0.6);
  // The estimate of a fixed pair with 128 hash functions has standard deviation
  // sqrt(J (1 - J) / 128): 0.026 for J = 0.905, 0.043 for J = 0.6. Within 3 sigma:
  for (const auto &[other, j] : {std::pair{b, 190.0 / 210.0}, std::pair{c, 0.6}}) {
    double estimate =
        minhashSimilarity(minhashSignature(wordShingles(a)), minhashSignature(wordShingles(other)));
    double sigma = std::sqrt(j * (1 - j) / 128);
    EXPECT_NEAR(estimate, j, 3 * sigma) << "exact " << j;
  }
  // Identical shingle sets give identical signatures; disjoint ones (almost) never agree.
  EXPECT_EQ(minhashSimilarity(minhashSignature(wordShingles(a)),
                              minhashSignature(wordShingles("W0 " + words("w", 204).substr(3)))),
            1.0);
  EXPECT_LE(minhashSimilarity(minhashSignature(wordShingles(a)),
                              minhashSignature(wordShingles(words("v", 204)))),
            2.0 / 128);
  // Deterministic: fixed seeds.
  EXPECT_EQ(minhashSignature(wordShingles(b)), minhashSignature(wordShingles(b)));
}

TEST(DedupTest, ExactPrefixComparesNormalisedPrefixes) {
  DedupOptions options;
  options.exactPrefixBytes = 512;
  Deduplicator dedup(options);
  EXPECT_EQ(dedup.add("Hello   world.\nThis is doc one.").method, Method::kKept);      // 0
  Deduplicator::Verdict again = dedup.add("  Hello world. This\tis doc one.\n");       // 1
  EXPECT_EQ(again.method, Method::kExactPrefix);
  EXPECT_EQ(again.original, 0u);
  EXPECT_EQ(again.similarity, 1.0);
  EXPECT_EQ(dedup.add("Hello world. This is doc two.").method, Method::kKept);        // 2
  EXPECT_EQ(dedup.add("hello world. This is doc one.").method, Method::kKept);        // 3: case
  EXPECT_EQ(dedup.add("Hello world.").method, Method::kKept);                         // 4: shorter
  EXPECT_EQ(dedup.add("Hello world. This is doc one. And more.").method,
            Method::kKept); // 5: longer than doc 0 (prefix of 512 bytes differs)
  Deduplicator::Verdict twoAgain = dedup.add("Hello world. This is doc two.");
  EXPECT_EQ(twoAgain.method, Method::kExactPrefix);
  EXPECT_EQ(twoAgain.original, 2u);
  EXPECT_EQ(dedup.removed(Method::kExactPrefix), 2u);
  EXPECT_EQ(dedup.removed(Method::kMinHash), 0u);
  EXPECT_EQ(dedup.removed(Method::kKept), 5u);

  // With N = 16 only the first 16 normalised bytes count: "Hello world. Thi".
  options.exactPrefixBytes = 16;
  Deduplicator shortPrefix(options);
  EXPECT_EQ(shortPrefix.add("Hello world. This is doc one.").method, Method::kKept);
  Deduplicator::Verdict two = shortPrefix.add("Hello   world. This is doc two.");
  EXPECT_EQ(two.method, Method::kExactPrefix);
  EXPECT_EQ(two.original, 0u);
  EXPECT_EQ(shortPrefix.add("Hello world. That is it.").method, Method::kKept);
}

TEST(DedupTest, MinHashRemovesNearDuplicatesAndKeepsDifferentDocuments) {
  std::string a = words("w", 204);
  DedupOptions options;
  options.minhashThreshold = 0.8;
  Deduplicator dedup(options);
  EXPECT_EQ(dedup.banding().bands, 21);
  EXPECT_EQ(dedup.banding().rows, 6);
  EXPECT_EQ(dedup.add(a).method, Method::kKept); // 0
  // Two words changed (J = 0.905): caught.
  Deduplicator::Verdict near = dedup.add(words("w", 204, {{50, "x"}, {150, "y"}})); // 1
  EXPECT_EQ(near.method, Method::kMinHash);
  EXPECT_EQ(near.original, 0u);
  EXPECT_GE(near.similarity, 0.8);
  // The same words re-spaced and in upper case: J = 1.
  std::string shouted = words("W", 204);
  Deduplicator::Verdict same = dedup.add(shouted); // 2
  EXPECT_EQ(same.method, Method::kMinHash);
  EXPECT_EQ(same.similarity, 1.0);
  // Unrelated (J = 0), half-overlapping (first 102 words shared: 98 common shingles,
  // J = 98 / 302 = 0.32) and 10 changes (J = 0.6): kept.
  EXPECT_EQ(dedup.add(words("v", 204)).method, Method::kKept); // 3
  std::string half = words("w", 102) + " " + words("u", 102);
  EXPECT_NEAR(exactJaccard(a, half), 98.0 / 302.0, 1e-12);
  EXPECT_EQ(dedup.add(half).method, Method::kKept); // 4
  std::vector<std::pair<int, std::string>> ten;
  for (int i = 0; i < 10; ++i)
    ten.emplace_back(10 + 20 * i, "z" + std::to_string(i));
  EXPECT_EQ(dedup.add(words("w", 204, ten)).method, Method::kKept); // 5
  // A near-duplicate of a later kept document names that one.
  Deduplicator::Verdict ofV = dedup.add(words("v", 204, {{100, "q"}})); // 6
  EXPECT_EQ(ofV.method, Method::kMinHash);
  EXPECT_EQ(ofV.original, 3u);
  // Documents without words have no signature and are kept.
  EXPECT_EQ(dedup.add(" \n").method, Method::kKept); // 7
  EXPECT_EQ(dedup.removed(Method::kMinHash), 3u);
  EXPECT_EQ(dedup.documents(), 8u);
}

TEST(DedupTest, BothMethodsReportTheFirstThatMatches) {
  DedupOptions options;
  options.exactPrefixBytes = 512;
  options.minhashThreshold = 0.8;
  Deduplicator dedup(options);
  std::string a = words("w", 204);
  EXPECT_EQ(dedup.add(a).method, Method::kKept);
  EXPECT_EQ(dedup.add("  " + a + "\n").method, Method::kExactPrefix); // exact-prefix first
  EXPECT_EQ(dedup.add(words("w", 204, {{7, "seven"}})).method, Method::kMinHash);
  // A removed document is not remembered: its own near-duplicate is compared with doc 0.
  EXPECT_EQ(dedup.add(words("w", 204, {{7, "seven"}})).method, Method::kMinHash);
  EXPECT_EQ(dedup.removed(Method::kExactPrefix), 1u);
  EXPECT_EQ(dedup.removed(Method::kMinHash), 2u);
  EXPECT_STREQ(dedupMethodName(Method::kExactPrefix), "exact-prefix");
  EXPECT_STREQ(dedupMethodName(Method::kMinHash), "minhash");
}

} // namespace
