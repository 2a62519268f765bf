//===- data_shards_test.cc - fusion_shards: manifest, headers, sampling ---===//
//
// Shards written byte by byte (data_test_util.h) and read through openSource: the mixture
// rule checked row by row against the reference RNG, sequential reading, path resolution, and
// every load error (corrupt header, pad mismatch, truncation, bad manifest, ids outside the
// vocabulary, which must name the shard file and the token offset).
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "test/unit/runtime/data_test_util.h"

#include <gtest/gtest.h>

using namespace fusion::rt;
using namespace fusion::rt::data;
using namespace fusion::rt::testing;

namespace {

/// Tokens k*1000 + i, i = 0..n-1: every row tells which shard and offset it came from.
std::vector<int32_t> labelled(int32_t k, int32_t n) {
  std::vector<int32_t> tokens(n);
  for (int32_t i = 0; i < n; ++i)
    tokens[i] = k * 1000 + i;
  return tokens;
}

std::string manifestLine(const std::string &path, uint64_t n, const std::string &source) {
  return "{\"path\": \"" + path + "\", \"n_tokens\": " + std::to_string(n) + ", \"source\": \"" +
         source +
         "\", \"weight\": 1.0, \"quality_score\": 0.5, "
         "\"domain\": \"test\"}\n";
}

class ShardsTest : public ::testing::Test {
protected:
  /// Writes shard `name` with `tokens` and returns its manifest line.
  std::string shard(const std::string &name, const std::vector<int32_t> &tokens,
                    const std::string &source, ShardFileOptions options = {}) {
    writeShardFile(dir_.path(name), tokens, options);
    return manifestLine(name, tokens.size(), source);
  }

  StatusOr<std::unique_ptr<Source>> open(const std::string &manifestText,
                                         const std::string &specText,
                                         std::optional<int64_t> vocab = 100000) {
    writeTextFile(dir_.path("manifest.jsonl"), manifestText);
    StatusOr<DataSpec> spec = parseDataSpec("shards:" + dir_.path("manifest.jsonl") + specText);
    EXPECT_TRUE(spec.ok()) << spec.status().toString();
    spec_ = *spec;
    return openSource(spec_, vocab);
  }

  /// The error of reading micro-batch 0 (B x T) from a source opened from the manifest.
  std::string readError(const std::string &manifestText, const std::string &specText,
                        BatchShape shape, std::optional<int64_t> vocab = 100000) {
    StatusOr<std::unique_ptr<Source>> source = open(manifestText, specText, vocab);
    if (!source.ok())
      return source.status().message();
    std::vector<int32_t> tokens(shape.rows * (shape.seqLen + 1));
    return (*source)->readRows({}, shape, tokens.data()).message();
  }

  TempDir dir_;
  DataSpec spec_;
};

TEST_F(ShardsTest, MixtureSamplingFollowsTheReference) {
  std::string manifest = shard("alpha_0.bin", labelled(1, 100), "alpha") +
                         shard("beta_0.bin", labelled(2, 80), "beta") +
                         shard("alpha_1.bin", labelled(3, 50), "alpha") +
                         shard("beta_1.bin", labelled(4, 5), "beta") +   // too short for T = 8
                         shard("gamma_0.bin", labelled(5, 90), "gamma"); // not in the mix
  StatusOr<std::unique_ptr<Source>> source =
      open(manifest, ",seed=2024,mix=beta:1+alpha:3+delta:5");
  ASSERT_TRUE(source.ok()) << source.status().toString();
  const int64_t B = 16, T = 8;
  std::vector<int32_t> tokens(B * (T + 1));
  // Sources in byte order: alpha, beta (delta has no shard, gamma no weight); shards in
  // manifest order weighted by n_tokens; offsets uniform in [0, n - T).
  struct ShardRef {
    int32_t label;
    uint64_t n;
  };
  std::vector<std::vector<ShardRef>> shardsOf = {{{1, 100}, {3, 50}}, {{2, 80}}};
  std::vector<double> sourceWeights = {3, 1};
  bool sawAlpha = false, sawBeta = false;
  for (uint64_t step : {0ull, 1ull, 77ull})
    for (uint32_t rank = 0; rank < 2; ++rank) {
      BatchCoord coord{step, 1, rank, 2, 2};
      ASSERT_TRUE((*source)->readRows(coord, {B, T, 0}, tokens.data()).ok());
      for (uint64_t b = 0; b < static_cast<uint64_t>(B); ++b) {
        size_t s = ref::pick(sourceWeights, ref::real(ref::draw(2024, step, rank, 1, b, 0)));
        std::vector<double> shardWeights;
        for (const ShardRef &shardRef : shardsOf[s])
          shardWeights.push_back(static_cast<double>(shardRef.n));
        const ShardRef &chosen =
            shardsOf[s][ref::pick(shardWeights, ref::real(ref::draw(2024, step, rank, 1, b, 1)))];
        uint64_t offset = ref::index(ref::draw(2024, step, rank, 1, b, 2), chosen.n - T);
        for (int64_t i = 0; i <= T; ++i)
          ASSERT_EQ(tokens[b * (T + 1) + i], chosen.label * 1000 + static_cast<int32_t>(offset + i))
              << "step " << step << " rank " << rank << " row " << b << " i " << i;
        (s == 0 ? sawAlpha : sawBeta) = true;
      }
    }
  EXPECT_TRUE(sawAlpha);
  EXPECT_TRUE(sawBeta);
  // Stateless: the same coordinates give the same rows.
  std::vector<int32_t> again(tokens.size());
  ASSERT_TRUE((*source)->readRows({77, 1, 1, 2, 2}, {B, T, 0}, again.data()).ok());
  EXPECT_EQ(again, tokens);
}

TEST_F(ShardsTest, RowsMayEndAtTheLastToken) {
  // n = T + 1: the only offset is 0 and the row is the whole shard.
  StatusOr<std::unique_ptr<Source>> source =
      open(shard("only.bin", labelled(7, 9), "web"), ",mix=web:1");
  ASSERT_TRUE(source.ok());
  std::vector<int32_t> tokens(2 * 9);
  ASSERT_TRUE((*source)->readRows({}, {2, 8, 0}, tokens.data()).ok());
  std::vector<int32_t> row = labelled(7, 9);
  EXPECT_EQ(std::vector<int32_t>(tokens.begin(), tokens.begin() + 9), row);
  EXPECT_EQ(std::vector<int32_t>(tokens.begin() + 9, tokens.end()), row);
}

TEST_F(ShardsTest, SequentialSamplingReadsShardsInManifestOrder) {
  // B = 2, T = 3: a micro-batch takes tokens [pos, pos + 7); shard sizes 15 -> 2 batches,
  // 6 -> none (skipped), 8 -> 1 batch; cycle of 3.
  std::string manifest = shard("s0.bin", labelled(1, 15), "web") +
                         shard("s1.bin", labelled(2, 6), "web") +
                         shard("s2.bin", labelled(3, 8), "code");
  StatusOr<std::unique_ptr<Source>> source = open(manifest, ",sampling=sequential");
  ASSERT_TRUE(source.ok()) << source.status().toString();
  std::vector<int32_t> tokens(8);
  auto batchAt = [&](uint64_t step) {
    EXPECT_TRUE((*source)->readRows({step, 0, 0, 1, 1}, {2, 3, 0}, tokens.data()).ok());
    return tokens;
  };
  EXPECT_EQ(batchAt(0), (std::vector<int32_t>{1000, 1001, 1002, 1003, 1003, 1004, 1005, 1006}));
  EXPECT_EQ(batchAt(1), (std::vector<int32_t>{1006, 1007, 1008, 1009, 1009, 1010, 1011, 1012}));
  EXPECT_EQ(batchAt(2), (std::vector<int32_t>{3000, 3001, 3002, 3003, 3003, 3004, 3005, 3006}));
  EXPECT_EQ(batchAt(3), batchAt(0)); // cyclic
}

TEST_F(ShardsTest, ResolvesPathsAgainstTheManifestDirectory) {
  std::filesystem::create_directories(dir_.dir() / "shards");
  writeShardFile(dir_.path("shards/a.bin"), labelled(1, 20));
  writeShardFile(dir_.path("b.bin"), labelled(2, 20));
  // Next to the manifest; seed-era "shards/..." relative to the manifest dir's parent; absolute.
  std::string manifest = manifestLine("a.bin", 20, "web") +
                         manifestLine("shards/a.bin", 20, "web") + "\n   \n" +
                         manifestLine(dir_.path("b.bin"), 20, "web");
  writeTextFile(dir_.path("shards/manifest.jsonl"), manifest);
  StatusOr<std::vector<ManifestEntry>> entries = readManifest(dir_.path("shards/manifest.jsonl"));
  ASSERT_TRUE(entries.ok()) << entries.status().toString();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].resolvedPath, dir_.path("shards/a.bin"));
  EXPECT_EQ((*entries)[1].resolvedPath, (dir_.dir() / "shards" / ".." / "shards/a.bin").string());
  EXPECT_EQ((*entries)[2].resolvedPath, dir_.path("b.bin"));
  EXPECT_EQ((*entries)[2].line, 5u); // blank lines are skipped but counted
  EXPECT_EQ((*entries)[0].qualityScore, 0.5);
  EXPECT_EQ((*entries)[0].domain, "test");
  // A directory works as the manifest path in --data.
  StatusOr<DataSpec> spec = parseDataSpec("shards:" + dir_.path("shards") + ",mix=web:1");
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE(openSource(*spec, 100000).ok());
}

TEST_F(ShardsTest, CorruptHeadersAreLoadErrors) {
  std::string path = dir_.path("bad.bin");
  auto error = [&](const std::vector<int32_t> &tokens, ShardFileOptions options,
                   uint64_t manifestTokens) {
    writeShardFile(path, tokens, options);
    writeTextFile(dir_.path("manifest.jsonl"), manifestLine("bad.bin", manifestTokens, "web"));
    StatusOr<DataSpec> spec = parseDataSpec("shards:" + dir_.path("manifest.jsonl") + ",mix=web:1");
    StatusOr<std::unique_ptr<Source>> source = openSource(*spec, 100000);
    return source.ok() ? std::string("ok") : source.status().message();
  };
  std::string where = dir_.path("manifest.jsonl") + ":1: " + path;
  ShardFileOptions version;
  version.version = 2;
  EXPECT_EQ(error(labelled(1, 10), version, 10),
            where + ": shard version 2, expected 1 (not a fusion_shards file?)");
  ShardFileOptions dirty;
  dirty.dirtyByte = 200;
  EXPECT_EQ(error(labelled(1, 10), dirty, 10),
            where + ": shard header byte 200 is 0xab (bytes 17..255 must be zero)");
  ShardFileOptions shortHeader;
  shortHeader.truncateBy = 4 * 10 + 56;
  EXPECT_EQ(error(labelled(1, 10), shortHeader, 10),
            where + ": truncated shard header (200 bytes; a shard starts with a 256-byte header)");
  ShardFileOptions truncated;
  truncated.truncateBy = 6;
  EXPECT_EQ(error(labelled(1, 10), truncated, 10),
            where + ": truncated shard: the header says 10 tokens, the file holds 8 and a "
                    "partial token after the header");
  ShardFileOptions longer;
  longer.headerTokens = 8;
  EXPECT_EQ(error(labelled(1, 10), longer, 8),
            where + ": shard is 8 bytes longer than its header's 8 tokens");
  ShardFileOptions noPack;
  noPack.packLength = 0;
  EXPECT_EQ(error(labelled(1, 10), noPack, 10), where + ": shard header has pack length 0");
  EXPECT_EQ(error(labelled(1, 10), {}, 11), dir_.path("manifest.jsonl") +
                                                ":1: n_tokens is 11 but the header of " + path +
                                                " says 10");
  EXPECT_EQ(error(labelled(1, 10), {}, 10), "ok");
  writeTextFile(dir_.path("manifest.jsonl"), manifestLine("missing.bin", 4, "web"));
  StatusOr<DataSpec> spec = parseDataSpec("shards:" + dir_.path("manifest.jsonl"));
  EXPECT_EQ(openSource(*spec, 10).status().message(),
            dir_.path("manifest.jsonl") + ":1: " + dir_.path("missing.bin") +
                ": cannot open shard: No such file or directory");
}

TEST_F(ShardsTest, PadIdMustMatchTheHeader) {
  ShardFileOptions padded;
  padded.padId = 151643;
  std::string line = shard("web.bin", labelled(1, 10), "web", padded);
  StatusOr<std::unique_ptr<Source>> wrong = open(line, ",mix=web:1");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().message(),
            dir_.path("web.bin") + ": shard pad_token_id is 151643 but the data's pad id is -1 "
                                   "(they must be equal, MODEL.md §14.1)");
  EXPECT_TRUE(open(line, ",mix=web:1,pad=151643").ok());
  StatusOr<std::unique_ptr<Source>> other = open(line, ",pad=0,mix=web:1");
  EXPECT_FALSE(other.ok());
}

TEST_F(ShardsTest, OutOfRangeIdsNameTheShardAndOffset) {
  std::vector<int32_t> tokens = labelled(0, 64);
  tokens[37] = 1000; // V = 1000
  std::string line = shard("ids.bin", tokens, "web");
  EXPECT_EQ(readError(line, ",sampling=sequential", {1, 40, 0}, 1000),
            dir_.path("ids.bin") + ": token 37 (byte offset 404) is 1000, outside the vocabulary "
                                   "[0, 1000)");
  tokens[37] = -5;
  line = shard("ids.bin", tokens, "web");
  EXPECT_EQ(readError(line, ",sampling=sequential", {1, 40, 0}, 1000),
            dir_.path("ids.bin") + ": token 37 (byte offset 404) is -5, outside the vocabulary "
                                   "[0, 1000)");
  // Without a vocabulary size only negative ids are errors.
  EXPECT_EQ(readError(line, ",sampling=sequential", {1, 40, 0}, std::nullopt),
            dir_.path("ids.bin") + ": token 37 (byte offset 404) is -5, outside [0, 2^31)");
  // Rows that do not touch the bad id read fine.
  EXPECT_EQ(readError(line, ",sampling=sequential", {1, 30, 0}, 1000), "");
}

TEST_F(ShardsTest, MixtureNeedsAWeightedEligibleSource) {
  std::string manifest = shard("a.bin", labelled(1, 10), "mine");
  EXPECT_EQ(readError(manifest, "", {1, 4, 0}),
            dir_.path("manifest.jsonl") +
                ": no source of the mix (fineweb_edu, finemath, stack_edu, cosmopedia, "
                "openr1_math) has a shard of at least T+1 = 5 tokens (sources with such shards: "
                "mine); set the weights with mix=SOURCE:WEIGHT+...");
  EXPECT_EQ(readError(manifest, ",mix=mine:1", {1, 10, 0}),
            dir_.path("manifest.jsonl") +
                ": no source of the mix (mine) has a shard of at least T+1 = 11 tokens (sources "
                "with such shards: none); set the weights with mix=SOURCE:WEIGHT+...");
  EXPECT_EQ(readError(manifest, ",mix=mine:1", {1, 9, 0}), "");
  EXPECT_EQ(readError(manifest, ",sampling=sequential", {2, 5, 0}),
            dir_.path("manifest.jsonl") + ": no data file holds the 11 tokens one micro-batch "
                                          "needs (1 rank(s) x B=2, T=5, +1)");
}

TEST_F(ShardsTest, ManifestErrorsNameTheLine) {
  std::string m = dir_.path("manifest.jsonl");
  auto error = [&](const std::string &text) {
    writeTextFile(m, text);
    StatusOr<std::vector<ManifestEntry>> entries = readManifest(m);
    return entries.ok() ? std::string("ok") : entries.status().message();
  };
  EXPECT_EQ(error(""), m + ": the manifest lists no shards");
  EXPECT_EQ(error("\n{\"path\": \"a\", \"n_tokens\": 3}\n"),
            m + ":2: missing \"source\" (each line needs path, n_tokens and source)");
  EXPECT_EQ(error("{\"n_tokens\": 3, \"source\": \"x\"}"),
            m + ":1: missing \"path\" (each line needs path, n_tokens and source)");
  EXPECT_EQ(error("{\"path\": \"a\", \"n_tokens\": \"3\", \"source\": \"x\"}"),
            m + ":1: \"n_tokens\" must be an integer in [0, 2^64), got string");
  EXPECT_EQ(error("{\"path\": \"a\", \"n_tokens\": 3.5, \"source\": \"x\"}"),
            m + ":1: \"n_tokens\" must be an integer in [0, 2^64), got number 3.5");
  EXPECT_EQ(error("{\"path\": 1, \"n_tokens\": 3, \"source\": \"x\"}"),
            m + ":1: \"path\" must be a string, got number 1");
  EXPECT_EQ(error("{\"path\": \"a\", \"n_tokens\": 3, \"source\": \"\"}"),
            m + ":1: \"source\" is empty");
  EXPECT_EQ(error("{\"path\": \"a\", \"n_tokens\": 3, \"source\": \"x\", \"weight\": 1e999}"),
            m + ":1: \"weight\" must be a finite number, got number 1e999");
  EXPECT_EQ(error("{\"path\": \"a\", \"n_tokens\": 3, \"source\": \"x\", \"extra\": [1]}"),
            m + ":1: column 54: nested arrays are not supported (manifest lines are flat "
                "objects)");
  EXPECT_EQ(error(manifestLine("a", 1, "x") + "{oops}\n"),
            m + ":2: column 2: expected a member name (a string)");
  EXPECT_EQ(error("{\"path\": \"a\", \"n_tokens\": 3, \"source\": \"x\", \"extra\": 7}"), "ok");
  EXPECT_EQ(readManifest(dir_.dir().string()).status().message(),
            dir_.dir().string() + ": is a directory, not a manifest (did you mean " +
                (dir_.dir() / "manifest.jsonl").string() + "?)");
  EXPECT_EQ(readManifest(dir_.path("nope.jsonl")).status().message(),
            dir_.path("nope.jsonl") + ": cannot open manifest: No such file or directory");
}

TEST_F(ShardsTest, ShardStatsCountPaddingAndEos) {
  ShardFileOptions options;
  options.padId = 9;
  options.packLength = 6;
  // Two rows: doc EOS(9) pad pad | doc EOS(9) — pad = eos = 9.
  writeShardFile(dir_.path("s.bin"), {4, 5, 9, 9, 9, 9, 1, 2, 3, 7, 9, 9}, options);
  StatusOr<ShardStats> stats = computeShardStats(dir_.path("s.bin"), 9);
  ASSERT_TRUE(stats.ok()) << stats.status().toString();
  EXPECT_EQ(stats->header.numTokens, 12u);
  EXPECT_EQ(stats->header.packLength, 6u);
  EXPECT_EQ(stats->header.padId, 9);
  EXPECT_EQ(stats->eosTokens, 2u);
  EXPECT_EQ(stats->padTokens, 4u);
  EXPECT_EQ(stats->minId, 1);
  EXPECT_EQ(stats->maxId, 7);
  // eos different from pad: every pad id is padding; EOS counted separately.
  StatusOr<ShardStats> other = computeShardStats(dir_.path("s.bin"), 7);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->padTokens, 6u);
  EXPECT_EQ(other->eosTokens, 1u);
}

} // namespace
