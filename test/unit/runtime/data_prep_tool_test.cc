//===- data_prep_tool_test.cc - fusion-data verify, --dedup, --source, bin ===//
//
// Runs the real fusion-data binary (next to this test, in bin/) on a hand-made GPT-2 style
// vocabulary (tokenizer_test_util.h): tokenize --dedup on a corpus with identical documents,
// near-duplicates and different documents (which documents go, with which method, and that
// the shards hold exactly the kept ones), several sources with weights in one manifest,
// --output-format bin, pack --dedup, and verify on good and corrupted files (exit status and
// the one-line located error).
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/tokenizer.h"
#include "test/unit/runtime/data_test_util.h"
#include "test/unit/runtime/tokenizer_test_util.h"
#include "test/unit/runtime/tool_runner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

using namespace fusion::rt;
using namespace fusion::rt::testing;

namespace {

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<int32_t> shardTokens(const std::string &path) {
  std::vector<uint8_t> bytes = readFileBytes(path);
  std::vector<int32_t> tokens;
  if (bytes.size() < data::kShardHeaderBytes)
    return tokens;
  tokens.resize((bytes.size() - data::kShardHeaderBytes) / 4);
  std::memcpy(tokens.data(), bytes.data() + data::kShardHeaderBytes, tokens.size() * 4);
  return tokens;
}

/// The first number after "key": in `json` (NaN when absent or null).
double jsonNumber(const std::string &json, const std::string &key) {
  size_t at = json.find("\"" + key + "\": ");
  if (at == std::string::npos)
    return std::nan("");
  const char *start = json.c_str() + at + key.size() + 4;
  char *end = nullptr;
  double value = std::strtod(start, &end);
  return end == start ? std::nan("") : value;
}

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

class DataPrepToolTest : public ::testing::Test {
protected:
  void SetUp() override {
    bin_ = std::filesystem::read_symlink("/proc/self/exe").parent_path();
    ASSERT_TRUE(std::filesystem::exists(bin_ / "fusion-data"));
    TinyVocab vocab = makeTinyVocab(tinyMerges());
    std::filesystem::create_directories(dir_.path("tok"));
    writeTextFile(dir_.path("tok/encoder.json"), vocab.encoderJson);
    writeTextFile(dir_.path("tok/vocab.bpe"), vocab.vocabBpe);
    StatusOr<std::unique_ptr<data::BpeTokenizer>> tokenizer = data::BpeTokenizer::fromText(
        vocab.encoderJson, "encoder.json", vocab.vocabBpe, "vocab.bpe", std::nullopt);
    ASSERT_TRUE(tokenizer.ok());
    tokenizer_ = std::move(*tokenizer);
  }

  RunResult run(const std::string &args) {
    return runTool((bin_ / "fusion-data").string(), args, dir_.path("stderr.txt"));
  }

  /// Writes `texts` as DIR/d00.txt, d01.txt, ...
  std::string writeDocs(const std::string &name, const std::vector<std::string> &texts) {
    std::string docs = dir_.path(name);
    std::filesystem::create_directories(docs);
    for (size_t i = 0; i < texts.size(); ++i) {
      char file[32];
      std::snprintf(file, sizeof(file), "/d%02zu.txt", i);
      writeTextFile(docs + file, texts[i]);
    }
    return docs;
  }

  /// Every token of the shards of `manifest` without padding (pad = eos = 266: a run of 266s
  /// is one EOS followed by padding).
  std::vector<int32_t> unpadded(const std::string &manifest) {
    StatusOr<std::vector<data::ManifestEntry>> entries = data::readManifest(manifest);
    EXPECT_TRUE(entries.ok()) << entries.status().toString();
    std::vector<int32_t> out;
    if (!entries.ok())
      return out;
    for (const data::ManifestEntry &entry : *entries) {
      int32_t previous = -1;
      for (int32_t t : shardTokens(entry.resolvedPath)) {
        if (!(t == 266 && previous == 266))
          out.push_back(t);
        previous = t;
      }
    }
    return out;
  }

  TempDir dir_;
  std::filesystem::path bin_;
  std::unique_ptr<data::BpeTokenizer> tokenizer_;
};

/// The hand-made corpus: 0 = A (204 words), 1 = A re-spaced (equal after whitespace
/// normalisation), 2 = A with 2 words changed (word 5-gram Jaccard 190/210 = 0.905), 3 = an
/// unrelated text, 4 = A's first half + a new half (Jaccard 98/302 = 0.32), 5 and 6 = the
/// same short text up to whitespace, 7 = that text continued (Jaccard 1/3 with 5). A's first
/// 512 bytes are its words 0..124, so 2 and 4 differ from A within them.
std::vector<std::string> corpus() {
  std::string a = words("w", 204);
  std::string respaced = "  " + words("w", 100) + "\n\n\t" + words("w", 204).substr(
                                                                 words("w", 100).size() + 1) +
                         "\n";
  return {a,
          respaced,
          words("w", 204, {{50, "hello"}, {150, "fellow"}}),
          words("v", 204),
          words("w", 102) + " " + words("u", 102),
          "the end of the tower",
          "the  end of\nthe tower  ",
          "the end of the tower and more"};
}

TEST_F(DataPrepToolTest, TokenizeRemovesDuplicates) {
  std::vector<std::string> texts = corpus();
  std::string docs = writeDocs("docs", texts);
  std::string out = dir_.path("out");
  RunResult result = run("tokenize --tokenizer " + dir_.path("tok") + " -o " + out +
                         " --val-fraction 0 --pack-length 64 --dedup exact-prefix,minhash " +
                         docs);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  // Removed: 1 and 6 by exact-prefix (equal after normalisation), 2 by MinHash.
  EXPECT_NE(result.out.find("documents   5 (train 5, validation 0), 3 duplicate(s) removed\n"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("dedup       exact-prefix:512 removed 2, minhash:0.8 (128 hashes, "
                            "word 5-grams, 21 bands x 6 rows) removed 1, of 8 documents\n"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("  exact-prefix  " + docs + "/d01.txt  duplicates  " + docs +
                            "/d00.txt\n"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("  exact-prefix  " + docs + "/d06.txt  duplicates  " + docs +
                            "/d05.txt\n"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("  minhash       " + docs + "/d02.txt  ~ "), std::string::npos)
      << result.out;
  std::string stats = readFile(out + "/stats.json");
  EXPECT_EQ(jsonNumber(stats, "documents"), 5);
  EXPECT_EQ(jsonNumber(stats, "duplicate_documents"), 3);
  EXPECT_EQ(jsonNumber(stats, "documents_in"), 8);
  EXPECT_EQ(jsonNumber(stats, "removed_exact_prefix"), 2);
  EXPECT_EQ(jsonNumber(stats, "removed_minhash"), 1);
  EXPECT_EQ(jsonNumber(stats, "exact_prefix_bytes"), 512);
  EXPECT_EQ(jsonNumber(stats, "minhash_threshold"), 0.8);
  EXPECT_EQ(jsonNumber(stats, "minhash_bands"), 21);
  EXPECT_NE(stats.find("{\"method\": \"exact-prefix\", \"removed\": \"" + docs +
                       "/d01.txt\", \"kept\": \"" + docs + "/d00.txt\", \"similarity\": 1}"),
            std::string::npos)
      << stats;
  EXPECT_NE(stats.find("{\"method\": \"minhash\", \"removed\": \"" + docs +
                       "/d02.txt\", \"kept\": \"" + docs + "/d00.txt\", \"similarity\": 0."),
            std::string::npos)
      << stats;
  // The shard holds exactly the kept documents, in input order.
  std::vector<int32_t> expected;
  for (size_t i : {0, 3, 4, 5, 7}) {
    std::vector<int32_t> ids = tokenizer_->encode(texts[i]);
    expected.insert(expected.end(), ids.begin(), ids.end());
    expected.push_back(266);
  }
  EXPECT_EQ(unpadded(out + "/manifest.jsonl"), expected);

  // MinHash alone also catches the re-spaced copies (the same words: similarity 1).
  result = run("tokenize --tokenizer " + dir_.path("tok") + " -o " + out +
               " --replace --val-fraction 0 --dedup minhash " + docs);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  stats = readFile(out + "/stats.json");
  EXPECT_EQ(jsonNumber(stats, "removed_minhash"), 3);
  EXPECT_EQ(jsonNumber(stats, "removed_exact_prefix"), 0);
  EXPECT_TRUE(std::isnan(jsonNumber(stats, "exact_prefix_bytes")));
  // exact-prefix alone keeps the near-duplicate. With N = 20 bytes every document that
  // starts like another goes: 1, 2 and 4 (they start with A's "w0 w1 w2 w3 w4 w5 w6"), 6 and
  // 7 ("the end of the tower and more" starts with the 20 bytes "the end of the tower").
  result = run("tokenize --tokenizer " + dir_.path("tok") + " -o " + out +
               " --replace --val-fraction 0 --dedup exact-prefix " + docs);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(jsonNumber(readFile(out + "/stats.json"), "removed_exact_prefix"), 2);
  result = run("tokenize --tokenizer " + dir_.path("tok") + " -o " + out +
               " --replace --val-fraction 0 --dedup exact-prefix:20 " + docs);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(jsonNumber(readFile(out + "/stats.json"), "removed_exact_prefix"), 5);
  // Without --dedup nothing is removed and stats.json says so.
  result = run("tokenize --tokenizer " + dir_.path("tok") + " -o " + out +
               " --replace --val-fraction 0 " + docs);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  stats = readFile(out + "/stats.json");
  EXPECT_EQ(jsonNumber(stats, "documents"), 8);
  EXPECT_NE(stats.find("\"dedup\": null"), std::string::npos) << stats;
}

TEST_F(DataPrepToolTest, DedupRunsBeforeTheSplit) {
  // 6 copies of one text and 4 other texts: after dedup 5 documents, round(0.4 * 5) = 2 go
  // to validation, and no validation document repeats a training document.
  std::vector<std::string> texts(6, "the same text again");
  for (const char *other : {"hello tower", "lower the fellow", "12 owls", "the end"})
    texts.push_back(other);
  std::string docs = writeDocs("docs", texts);
  std::string out = dir_.path("out");
  RunResult result = run("tokenize --tokenizer " + dir_.path("tok") + " -o " + out +
                         " --val-fraction 0.4 --dedup exact-prefix " + docs);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_NE(result.out.find("documents   5 (train 3, validation 2), 5 duplicate(s) removed\n"),
            std::string::npos)
      << result.out;
}

TEST_F(DataPrepToolTest, SeveralSourcesShareOneManifest) {
  std::string web = writeDocs("web", {"the fellow said hello", " the 12 owls", "lower the tower",
                                      "whether the weather"});
  std::string code = writeDocs("code", {"12 12 12", "hello world\n\n"});
  writeTextFile(dir_.path("more.txt"), "tell the fellow the truth");
  std::string out = dir_.path("out");
  RunResult result =
      run("tokenize --tokenizer " + dir_.path("tok") + " -o " + out +
          " --val-fraction 0.25 --pack-length 16 --source web=" + web + ":0.7 --source code=" +
          code + ":0.3 --source web=" + dir_.path("more.txt"));
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_NE(result.out.find("data        --data shards:" + out +
                            ",pad=266,eos=266,mix=web:0.7+code:0.3\n"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("source      web (weight 0.7): documents train 4, validation 1"),
            std::string::npos)
      << result.out;
  // web: 5 documents, round(0.25 * 5) = 1 for validation; code: 2 documents, round(0.5) = 1
  // (llround rounds half away from zero), at most n - 1 = 1.
  EXPECT_NE(result.out.find("source      code (weight 0.3): documents train 1, validation 1"),
            std::string::npos)
      << result.out;
  StatusOr<std::vector<data::ManifestEntry>> train = data::readManifest(out + "/manifest.jsonl");
  ASSERT_TRUE(train.ok()) << train.status().toString();
  ASSERT_EQ(train->size(), 2u);
  EXPECT_EQ((*train)[0].path, "web_shard_00000.bin");
  EXPECT_EQ((*train)[0].source, "web");
  EXPECT_EQ((*train)[0].weight, 0.7);
  EXPECT_EQ((*train)[1].path, "code_shard_00000.bin");
  EXPECT_EQ((*train)[1].source, "code");
  EXPECT_EQ((*train)[1].weight, 0.3);
  StatusOr<std::vector<data::ManifestEntry>> val =
      data::readManifest(out + "/val_manifest.jsonl");
  ASSERT_TRUE(val.ok());
  ASSERT_EQ(val->size(), 2u);
  EXPECT_EQ((*val)[0].path, "val/web_shard_00000.bin");
  EXPECT_EQ((*val)[1].path, "val/code_shard_00000.bin");
  std::string stats = readFile(out + "/stats.json");
  EXPECT_NE(stats.find("\"data_mix\": \"web:0.7+code:0.3\""), std::string::npos) << stats;
  EXPECT_NE(stats.find("{\"name\": \"code\", \"weight\": 0.3, \"input_documents\": 2"),
            std::string::npos)
      << stats;
  EXPECT_EQ(stats.find("\"source\": "), std::string::npos); // only for one source

  // The printed spec loads, and the sampler draws both sources (T = 3: every shard is
  // eligible).
  StatusOr<data::DataSpec> spec =
      data::parseDataSpec("shards:" + out + ",pad=266,eos=266,mix=web:0.7+code:0.3");
  ASSERT_TRUE(spec.ok());
  StatusOr<std::unique_ptr<data::Source>> source = data::openSource(*spec, 267);
  ASSERT_TRUE(source.ok()) << source.status().toString();
  std::vector<int32_t> tokens(64 * 4);
  ASSERT_TRUE((*source)->readRows({}, {64, 3, 0}, tokens.data()).ok());
  RunResult verify = run("verify " + out + " --vocab 267 --pad 266");
  EXPECT_EQ(verify.exitCode, 0) << verify.err;
  EXPECT_NE(verify.out.find("verified 4 file(s) (4 fusion_shards, 0 bin): "), std::string::npos)
      << verify.out;

  // Usage errors.
  std::string common = "tokenize --tokenizer " + dir_.path("tok") + " -o " + dir_.path("o2") + " ";
  struct Case {
    std::string args, message;
  } cases[] = {
      {common + "--source web=" + web + ":0", "--source web=" + web +
                                                  ":0: the weight after the last ':' must be a "
                                                  "positive number, got '0' (see --help)"},
      {common + "--source web=" + web + " " + code,
       "give the inputs either as INPUTS or as --source NAME=PATH[:WEIGHT], not both (got '" +
           code + "') (see --help)"},
      {common + "--source web --source code " + web,
       "--source NAME given twice (several sources: --source NAME=PATH[:WEIGHT] for each) (see "
       "--help)"},
      {common + "--source web=" + web + ":1 --source web=" + code + ":2",
       "source 'web' has two weights (1 and 2) (see --help)"},
      {common + "--output-format bin --source web=" + web + ":1",
       "source weights need --output-format fusion_shards (bin files are read sequentially, "
       "without a mixture) (see --help)"},
      {common + "--output-format bin --pack-length 8 " + web,
       "--pack-length applies to fusion_shards output only (.bin files are neither packed nor "
       "padded) (see --help)"},
      {common + "--shard-tokens 8 " + web,
       "--shard-tokens applies to --output-format bin only (fusion_shards: --shard-rows) (see "
       "--help)"},
      {common + "--dedup minhash:2 " + web,
       "--dedup 'minhash:2': minhash:T needs a Jaccard threshold T in (0, 1], got '2' (see "
       "--help)"},
  };
  for (const Case &c : cases) {
    RunResult bad = run(c.args);
    EXPECT_EQ(bad.exitCode, 2) << c.args << "\n" << bad.err;
    EXPECT_EQ(bad.err, "fusion-data: error: " + c.message + "\n") << c.args;
  }
}

TEST_F(DataPrepToolTest, WritesNanoGptBinFiles) {
  std::vector<std::string> texts = {"the fellow said hello", " the 12 owls", "lower the tower",
                                    "whether the weather"};
  std::string docs = writeDocs("docs", texts);
  std::string out = dir_.path("out");
  RunResult result = run("tokenize --tokenizer " + dir_.path("tok") + " -o " + out +
                         " --output-format bin --val-fraction 0.25 --source web " + docs);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_NE(result.out.find("data        --data bin:" + out + "/web_train_*.bin\n"),
            std::string::npos)
      << result.out;
  EXPECT_FALSE(std::filesystem::exists(out + "/manifest.jsonl"));
  EXPECT_FALSE(std::filesystem::exists(out + "/val"));
  // The split (same rule as fusion_shards): the document with the smallest key.
  std::vector<std::pair<uint64_t, size_t>> keys;
  for (size_t i = 0; i < texts.size(); ++i)
    keys.emplace_back(data::splitmix64(data::splitmix64(1234) ^ i), i);
  std::sort(keys.begin(), keys.end());
  std::vector<uint16_t> expected[2];
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<uint16_t> &split = expected[i == keys[0].second ? 1 : 0];
    split.push_back(266); // EOS before each document
    for (int32_t id : tokenizer_->encode(texts[i]))
      split.push_back(static_cast<uint16_t>(id));
  }
  for (int v = 0; v < 2; ++v) {
    std::string path = out + (v ? "/web_val_000000.bin" : "/web_train_000000.bin");
    std::vector<uint8_t> bytes = readFileBytes(path);
    ASSERT_EQ(bytes.size(), 1024 + 2 * expected[v].size()) << path;
    int32_t header[3];
    std::memcpy(header, bytes.data(), 12);
    EXPECT_EQ(header[0], 20240520);
    EXPECT_EQ(header[1], 1);
    EXPECT_EQ(header[2], static_cast<int32_t>(expected[v].size()));
    std::vector<uint16_t> ids(expected[v].size());
    std::memcpy(ids.data(), bytes.data() + 1024, 2 * ids.size());
    EXPECT_EQ(ids, expected[v]) << path;
  }
  RunResult verify = run("verify '" + out + "/*.bin' --vocab 267");
  EXPECT_EQ(verify.exitCode, 0) << verify.err;
  EXPECT_NE(verify.out.find("verified 2 file(s) (0 fusion_shards, 2 bin)"), std::string::npos)
      << verify.out;
  verify = run("verify " + out + " --format bin");
  EXPECT_EQ(verify.exitCode, 0) << verify.err;
  // An existing dataset needs --replace; with it, the old files that are not rewritten go.
  result = run("tokenize --tokenizer " + dir_.path("tok") + " -o " + out +
               " --output-format bin --source web " + docs);
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_EQ(result.err, "fusion-data: error: " + out +
                            "/stats.json already exists (pass --replace to overwrite the dataset "
                            "in " + out + ")\n");
  result = run("tokenize --tokenizer " + dir_.path("tok") + " -o " + out +
               " --output-format bin --val-fraction 0 --shard-tokens 8 --replace --source web " +
               docs);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_FALSE(std::filesystem::exists(out + "/web_val_000000.bin"));
  EXPECT_TRUE(std::filesystem::exists(out + "/web_train_000001.bin"));
  EXPECT_NE(result.out.find("train       "), std::string::npos);
}

TEST_F(DataPrepToolTest, PackDeduplicatesLines) {
  writeTextFile(dir_.path("ids.txt"), "1 2 3 4\n1  2 3\t4\n5 6 7 8 9 10\n5 6 7 8 9 11\n");
  std::string out = dir_.path("out");
  RunResult result = run("pack --pack-length 8 --pad 0 --eos 0 --source web -o " + out +
                         " --dedup exact-prefix " + dir_.path("ids.txt"));
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_NE(result.out.find("packed 3 documents"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("dedup       exact-prefix:512 removed 1, of 4 documents\n"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("  exact-prefix  " + dir_.path("ids.txt") + ":2  duplicates  " +
                            dir_.path("ids.txt") + ":1\n"),
            std::string::npos)
      << result.out;
  EXPECT_EQ(shardTokens(out + "/web_shard_00000.bin"),
            (std::vector<int32_t>{1, 2, 3, 4, 0, 0, 0, 0, 5, 6, 7, 8, 9, 10, 0, 0, 5, 6, 7, 8, 9,
                                  11, 0, 0}));
}

TEST_F(DataPrepToolTest, VerifyNamesTheFirstBadByte) {
  // A good data set from pack, then corrupted copies.
  writeTextFile(dir_.path("ids.txt"), "1 2 3\n4 5 6 7 8 9\n");
  std::string out = dir_.path("out");
  ASSERT_EQ(run("pack --pack-length 4 --pad 0 --eos 0 --source web -o " + out + " " +
                dir_.path("ids.txt"))
                .exitCode,
            0);
  std::string shard = out + "/web_shard_00000.bin";
  // Rows: 1 2 3 0 | 4 5 6 7 | 8 9 0 0: 12 tokens, 3 of them the pad id 0.
  RunResult good = run("verify " + out + "/manifest.jsonl --vocab 10");
  ASSERT_EQ(good.exitCode, 0) << good.err;
  EXPECT_EQ(good.err, "");
  EXPECT_EQ(good.out, "ok  " + shard + "  source web, 12 tokens, fusion_shards pack 4 pad 0 (3 "
                                       "pad-id tokens), ids [1, 9]\n"
                                       "verified 1 file(s) (1 fusion_shards, 0 bin): 12 tokens "
                                       "(3 pad-id), ids in [1, 9], every id < V = 10\n");
  // A token >= V: token 9 (the 9) at byte 256 + 36 = 292.
  RunResult bad = run("verify " + out + " --vocab 9");
  EXPECT_EQ(bad.exitCode, 1);
  EXPECT_EQ(bad.err, "fusion-data: error: " + shard +
                         ": token 9 (byte offset 292) is 9, outside the vocabulary [0, 9)\n");
  EXPECT_EQ(bad.out, "");
  // Truncated.
  std::vector<uint8_t> bytes = readFileBytes(shard);
  std::string cut = dir_.path("cut.bin");
  {
    std::ofstream f(cut, std::ios::binary);
    f.write(reinterpret_cast<const char *>(bytes.data()), 256 + 4 * 7 + 1);
  }
  bad = run("verify " + cut);
  EXPECT_EQ(bad.exitCode, 1);
  EXPECT_EQ(bad.err, "fusion-data: error: " + cut +
                         ": truncated at byte offset 284 (token 7): the header says 12 tokens, "
                         "304 bytes in all, the file has 285 bytes (ends inside a token)\n");
  // Wrong magic in a .bin file (format named), and a file that is neither format (sniffed).
  std::string wrong = dir_.path("wrong.bin");
  writeBinFile(wrong, {1, 2, 3}, false);
  std::vector<uint8_t> binBytes = readFileBytes(wrong);
  binBytes[0] ^= 1; // 20240520 -> 20240521
  {
    std::ofstream f(wrong, std::ios::binary);
    f.write(reinterpret_cast<const char *>(binBytes.data()),
            static_cast<std::streamsize>(binBytes.size()));
  }
  bad = run("verify --format bin " + wrong);
  EXPECT_EQ(bad.exitCode, 1);
  EXPECT_EQ(bad.err, "fusion-data: error: " + wrong +
                         ": byte offset 0: wrong magic 20240521 (a nanoGPT/llm.c .bin file starts "
                         "with 20240520 for uint16 or 20240801 for uint32 tokens)\n");
  bad = run("verify " + wrong);
  EXPECT_EQ(bad.exitCode, 1);
  EXPECT_EQ(bad.err, "fusion-data: error: " + wrong +
                         ": byte offset 0: neither a fusion_shards shard (version byte 137, "
                         "expected 1) nor a nanoGPT/llm.c .bin file (magic 20240521, expected "
                         "20240520 or 20240801); --format names the format\n");
  // n_tokens in the manifest disagrees with the header.
  std::string manifest = readFile(out + "/manifest.jsonl");
  size_t at = manifest.find("\"n_tokens\": 12");
  ASSERT_NE(at, std::string::npos);
  writeTextFile(out + "/manifest.jsonl", manifest.replace(at, 14, "\"n_tokens\": 16"));
  bad = run("verify " + out);
  EXPECT_EQ(bad.exitCode, 1);
  EXPECT_EQ(bad.err, "fusion-data: error: " + out + "/manifest.jsonl:1: n_tokens is 16 but the "
                                                    "header of " + shard +
                         " says 12 (byte offset 1)\n");
  // Usage.
  RunResult usage = run("verify");
  EXPECT_EQ(usage.exitCode, 2);
  EXPECT_EQ(usage.err, "fusion-data: error: verify needs a manifest, a directory or token files "
                       "(see --help)\n");
  usage = run("verify " + out + " --format xml");
  EXPECT_EQ(usage.exitCode, 2);
  RunResult missing = run("verify " + dir_.path("none"));
  EXPECT_EQ(missing.exitCode, 1);
  EXPECT_EQ(missing.err,
            "fusion-data: error: " + dir_.path("none") + ": no such file or directory\n");
  RunResult help = run("--help");
  for (const char *text : {"verify MANIFEST_OR_FILE", "--dedup SPEC", "exact-prefix[:N]",
                           "minhash[:T]", "--source NAME=PATH[:WEIGHT]", "--output-format F",
                           "--shard-tokens N"})
    EXPECT_NE(help.out.find(text), std::string::npos) << text;
}

} // namespace
