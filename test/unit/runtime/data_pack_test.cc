//===- data_pack_test.cc - §14.4 packing and the pack -> load round trip --===//

#include "fusion/rt/data.h"
#include "test/unit/runtime/data_test_util.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace fusion::rt;
using namespace fusion::rt::data;
using namespace fusion::rt::testing;

namespace {

/// The int32 tokens of shard `path` (after its header).
std::vector<int32_t> shardTokens(const std::string &path) {
  std::vector<uint8_t> bytes = readFileBytes(path);
  EXPECT_GE(bytes.size(), 256u);
  std::vector<int32_t> tokens((bytes.size() - 256) / 4);
  std::memcpy(tokens.data(), bytes.data() + 256, tokens.size() * 4);
  return tokens;
}

struct Packed {
  std::vector<ManifestEntry> entries;
  std::vector<int32_t> tokens; // all shards concatenated
};

Packed pack(const TempDir &dir, const std::vector<std::vector<int32_t>> &docs, uint32_t packLength,
            int32_t pad, int32_t eos, uint64_t shardRows = 0) {
  ShardPacker::Options options;
  options.dir = dir.dir().string();
  options.source = "web";
  options.packLength = packLength;
  options.padId = pad;
  options.eosId = eos;
  options.maxRowsPerShard = shardRows;
  StatusOr<std::unique_ptr<ShardPacker>> packer = ShardPacker::create(options);
  EXPECT_TRUE(packer.ok()) << packer.status().toString();
  for (const std::vector<int32_t> &doc : docs)
    EXPECT_TRUE((*packer)->addDocument(doc).ok());
  StatusOr<std::vector<ManifestEntry>> entries = (*packer)->finish();
  EXPECT_TRUE(entries.ok()) << entries.status().toString();
  Packed packed;
  packed.entries = *entries;
  for (const ManifestEntry &entry : packed.entries) {
    std::vector<int32_t> tokens = shardTokens(entry.resolvedPath);
    packed.tokens.insert(packed.tokens.end(), tokens.begin(), tokens.end());
  }
  return packed;
}

TEST(DataPack, DocumentsThatFitShareARow) {
  TempDir dir;
  Packed p = pack(dir, {{1, 2}, {3}, {4}}, 8, 0, 9);
  // [1 2 9] [3 9] [4 9] fit in one row of 8; the tail is padded.
  EXPECT_EQ(p.tokens, (std::vector<int32_t>{1, 2, 9, 3, 9, 4, 9, 0}));
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].path, "web_shard_00000.bin");
  EXPECT_EQ(p.entries[0].numTokens, 8u);
  EXPECT_EQ(p.entries[0].source, "web");
}

TEST(DataPack, ADocumentThatDoesNotFitStartsANewRow) {
  TempDir dir;
  Packed p = pack(dir, {{1, 2, 3}, {4, 5, 6, 7}, {8}}, 6, 0, 9);
  // Row 1: [1 2 3 9] + pad (the next document needs 5 > 2 left); row 2: [4 5 6 7 9] + pad
  // ([8 9] needs 2 > 1 left); row 3: [8 9] + pad (the last row).
  EXPECT_EQ(p.tokens, (std::vector<int32_t>{1, 2, 3, 9, 0, 0, 4, 5, 6, 7, 9, 0, 8, 9, 0, 0, 0, 0}));
}

TEST(DataPack, LongDocumentsSpillAndTheirTailOpensTheNextRow) {
  TempDir dir;
  Packed p = pack(dir, {{1}, {2, 3, 4, 5, 6, 7, 8, 9, 10}, {11}}, 4, 0, 99);
  // [1 99] then a 10-token piece: row 1 is padded, the document fills rows 2-3, its tail
  // [10 99] opens row 4, which [11 99] completes exactly.
  EXPECT_EQ(p.tokens, (std::vector<int32_t>{1, 99, 0, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 99, 11, 99}));
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].numTokens, 16u);
}

TEST(DataPack, ExactlyFullRowsNeedNoPadding) {
  TempDir dir;
  Packed p = pack(dir, {{1, 2, 3}, {4, 5, 6}, {7}}, 4, 0, 9);
  EXPECT_EQ(p.tokens, (std::vector<int32_t>{1, 2, 3, 9, 4, 5, 6, 9, 7, 9, 0, 0}));
  // An empty document is just its EOS.
  TempDir dir2;
  EXPECT_EQ(pack(dir2, {{}, {5}}, 4, 0, 9).tokens, (std::vector<int32_t>{9, 5, 9, 0}));
}

TEST(DataPack, PadMayEqualEosAndTheHeaderRecordsIt) {
  TempDir dir;
  Packed p = pack(dir, {{1, 2}, {3, 4, 5}}, 4, 7, 7);
  EXPECT_EQ(p.tokens, (std::vector<int32_t>{1, 2, 7, 7, 3, 4, 5, 7}));
  StatusOr<ShardHeader> header = readShardHeader(p.entries[0].resolvedPath);
  ASSERT_TRUE(header.ok()) << header.status().toString();
  EXPECT_EQ(header->numTokens, 8u);
  EXPECT_EQ(header->packLength, 4u);
  EXPECT_EQ(header->padId, 7);
  std::vector<uint8_t> bytes = readFileBytes(p.entries[0].resolvedPath);
  EXPECT_EQ(bytes[0], 1);
  for (size_t i = 17; i < 256; ++i)
    ASSERT_EQ(bytes[i], 0) << i;
}

TEST(DataPack, ShardRowsSplitShardsAtRowBoundaries) {
  TempDir dir;
  Packed p = pack(dir, {{1, 2, 3, 4, 5, 6, 7}, {8}, {9, 10}}, 3, 0, 99, 2);
  // Rows [1 2 3] [4 5 6] | [7 99 0] ([8 99] does not fit after the tail [7 99]) [8 99 0] |
  // [9 10 99], two rows per shard.
  ASSERT_EQ(p.entries.size(), 3u);
  EXPECT_EQ(p.entries[0].path, "web_shard_00000.bin");
  EXPECT_EQ(p.entries[1].path, "web_shard_00001.bin");
  EXPECT_EQ(p.entries[2].path, "web_shard_00002.bin");
  EXPECT_EQ(p.entries[0].numTokens, 6u);
  EXPECT_EQ(p.entries[2].numTokens, 3u);
  EXPECT_EQ(p.tokens, (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 99, 0, 8, 99, 0, 9, 10, 99}));
  EXPECT_FALSE(std::filesystem::exists(dir.path("web_shard_00000.bin.tmp")));
}

TEST(DataPack, RejectsBadOptionsAndIds) {
  TempDir dir;
  ShardPacker::Options options;
  options.dir = dir.dir().string();
  options.source = "web";
  options.packLength = 4;
  options.padId = 0;
  options.eosId = 1;
  options.vocabSize = 10;
  auto createError = [&](ShardPacker::Options o) {
    return ShardPacker::create(o).status().message();
  };
  ShardPacker::Options bad = options;
  bad.packLength = 0;
  EXPECT_EQ(createError(bad), "pack length must be at least 1");
  bad = options;
  bad.source = "a/b";
  EXPECT_EQ(createError(bad), "source name 'a/b' may only contain letters, digits, '_', '-' and "
                              "'.' (it names the shard files)");
  bad = options;
  bad.padId = -1;
  EXPECT_EQ(createError(bad), "pad id must be a token id (>= 0) for packing, got -1");
  bad = options;
  bad.eosId = 10;
  EXPECT_EQ(createError(bad), "eos id 10 is outside the vocabulary [0, 10)");
  bad = options;
  bad.dir = dir.path("missing");
  EXPECT_EQ(createError(bad), dir.path("missing") + ": not a directory");
  StatusOr<std::unique_ptr<ShardPacker>> packer = ShardPacker::create(options);
  ASSERT_TRUE(packer.ok());
  ASSERT_TRUE((*packer)->addDocument({2, 3}).ok());
  EXPECT_EQ((*packer)->addDocument({4, 12}).message(),
            "document 2 token 1 is 12, outside the vocabulary [0, 10)");
  EXPECT_EQ((*packer)->numDocuments(), 1u);
  ASSERT_TRUE((*packer)->addDocument({5}).ok()); // emits row 1: the shard file is open
  EXPECT_EQ((*packer)->numRows(), 1u);
  EXPECT_TRUE(std::filesystem::exists(dir.path("web_shard_00000.bin.tmp")));
  // An abandoned packer leaves no temporary file behind.
  packer->reset();
  EXPECT_TRUE(std::filesystem::is_empty(dir.dir()));
}

TEST(DataPack, PackedShardsLoadBackWithTheirRows) {
  TempDir dir;
  std::vector<std::vector<int32_t>> docs;
  for (int32_t d = 0; d < 40; ++d) {
    std::vector<int32_t> doc;
    for (int32_t i = 0; i < (d * 7) % 23; ++i)
      doc.push_back(10 + (d * 31 + i) % 200);
    docs.push_back(doc);
  }
  const int32_t pad = 3, eos = 3;
  Packed p = pack(dir, docs, 16, pad, eos, 4);
  ASSERT_TRUE(writeManifest(dir.path("manifest.jsonl"), p.entries).ok());
  StatusOr<std::vector<ManifestEntry>> read = readManifest(dir.path("manifest.jsonl"));
  ASSERT_TRUE(read.ok()) << read.status().toString();
  ASSERT_EQ(read->size(), p.entries.size());
  for (size_t i = 0; i < read->size(); ++i) {
    EXPECT_EQ((*read)[i].path, p.entries[i].path);
    EXPECT_EQ((*read)[i].resolvedPath, p.entries[i].resolvedPath);
    EXPECT_EQ((*read)[i].numTokens, p.entries[i].numTokens);
    EXPECT_EQ((*read)[i].source, "web");
    EXPECT_EQ((*read)[i].weight, 1.0);
  }

  // Sequential reading returns the packed stream: with B = 1 and T = 15, micro-batch 0 is
  // the first packed row (16 tokens).
  StatusOr<DataSpec> spec =
      parseDataSpec("shards:" + dir.path("manifest.jsonl") + ",pad=3,eos=3,sampling=sequential");
  ASSERT_TRUE(spec.ok());
  StatusOr<std::unique_ptr<Source>> source = openSource(*spec, 256);
  ASSERT_TRUE(source.ok()) << source.status().toString();
  StatusOr<Batch> batch = makeBatch(**source, *spec, {1, 15, 1}, {});
  ASSERT_TRUE(batch.ok()) << batch.status().toString();
  EXPECT_EQ(batch->tokens, std::vector<int32_t>(p.tokens.begin(), p.tokens.begin() + 16));
  // pad = eos: the first EOS of a run is a target, the rest of the run is not.
  for (size_t j = 1; j < 16; ++j) {
    bool ignored = batch->tokens[j] == pad && batch->tokens[j - 1] == pad;
    EXPECT_EQ(batch->targets[j], ignored ? -1 : batch->tokens[j]) << j;
  }

  // Mixture sampling over the packed shards: every row is a window of one shard.
  StatusOr<DataSpec> mixture =
      parseDataSpec("shards:" + dir.path("manifest.jsonl") + ",pad=3,eos=3,mix=web:1");
  ASSERT_TRUE(mixture.ok());
  StatusOr<std::unique_ptr<Source>> mixed = openSource(*mixture, 256);
  ASSERT_TRUE(mixed.ok());
  StatusOr<Batch> rows = makeBatch(**mixed, *mixture, {8, 12, 0}, {5, 0, 0, 1, 1});
  ASSERT_TRUE(rows.ok()) << rows.status().toString();
  for (int64_t b = 0; b < 8; ++b) {
    std::vector<int32_t> row(rows->tokens.begin() + b * 13, rows->tokens.begin() + (b + 1) * 13);
    bool found = false;
    size_t start = 0;
    for (const ManifestEntry &entry : p.entries) {
      for (size_t o = 0; o + 13 <= entry.numTokens && !found; ++o)
        found = std::equal(row.begin(), row.end(), p.tokens.begin() + start + o);
      start += entry.numTokens;
    }
    EXPECT_TRUE(found) << "row " << b;
  }
}

} // namespace
