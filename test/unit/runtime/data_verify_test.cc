//===- data_verify_test.cc - verifyShardFile / verifyBinFile / BinWriter --===//
//
// Files written byte by byte (data_test_util.h) and corrupted one field at a time; every
// error must name the file and the byte offset (and, inside token data, the token index)
// computed here by hand from the §14.1 / §14.2 layouts: 256-byte shard header + 4-byte
// tokens, 1024-byte .bin header + 2- or 4-byte tokens. BinWriter's files are read back byte
// by byte and through the bin loader.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "test/unit/runtime/data_test_util.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace fusion::rt;
using namespace fusion::rt::data;
using namespace fusion::rt::testing;

namespace {

class VerifyTest : public ::testing::Test {
protected:
  std::string shardError(const std::vector<int32_t> &tokens, ShardFileOptions file,
                         VerifyOptions options = {}) {
    writeShardFile(dir_.path("s.bin"), tokens, file);
    StatusOr<VerifiedFile> verified = verifyShardFile(dir_.path("s.bin"), options);
    if (verified.ok())
      return "";
    EXPECT_EQ(verified.status().code(), StatusCode::kDataLoss) << verified.status().toString();
    // Every message starts with the file.
    EXPECT_EQ(verified.status().message().rfind(dir_.path("s.bin") + ": ", 0), 0u);
    return verified.status().message().substr(dir_.path("s.bin").size() + 2);
  }

  std::string binError(const std::string &path, VerifyOptions options = {}) {
    StatusOr<VerifiedFile> verified = verifyBinFile(path, options);
    if (verified.ok())
      return "";
    EXPECT_EQ(verified.status().message().rfind(path + ": ", 0), 0u);
    return verified.status().message().substr(path.size() + 2);
  }

  /// Rewrites the int32 at header index `index` of .bin file `path`.
  void patchInt(const std::string &path, size_t index, int32_t value) {
    std::vector<uint8_t> bytes = readFileBytes(path);
    std::memcpy(bytes.data() + 4 * index, &value, 4);
    std::FILE *f = std::fopen(path.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }

  TempDir dir_;
};

TEST_F(VerifyTest, AGoodShardVerifies) {
  ShardFileOptions file;
  file.padId = 9;
  writeShardFile(dir_.path("s.bin"), {1, 2, 9, 9, 3, 7, 9, 9}, file);
  VerifyOptions options;
  options.vocabSize = 10;
  options.padId = 9;
  StatusOr<VerifiedFile> verified = verifyShardFile(dir_.path("s.bin"), options);
  ASSERT_TRUE(verified.ok()) << verified.status().toString();
  EXPECT_EQ(verified->format, Format::kFusionShards);
  EXPECT_EQ(verified->numTokens, 8u);
  EXPECT_EQ(verified->packLength, 4u);
  EXPECT_EQ(verified->padId, 9);
  EXPECT_EQ(verified->padTokens, 4u);
  EXPECT_EQ(verified->minId, 1);
  EXPECT_EQ(verified->maxId, 7);
  // An empty shard is fine too.
  EXPECT_EQ(shardError({}, {}), "");
}

TEST_F(VerifyTest, ShardCorruptionNamesTheByteOffset) {
  const std::vector<int32_t> eight = {1, 2, 3, 4, 5, 6, 7, 8};
  VerifyOptions v10;
  v10.vocabSize = 10;
  // A token >= V: token 6 sits at byte 256 + 4 * 6 = 280.
  EXPECT_EQ(shardError({1, 2, 3, 4, 5, 6, 12, 7}, {}, v10),
            "token 6 (byte offset 280) is 12, outside the vocabulary [0, 10)");
  // Negative ids are bad without V as well (token 2: byte 264); the pad id is fine.
  EXPECT_EQ(shardError({1, 2, -5, 4}, {}), "token 2 (byte offset 264) is -5, outside [0, 2^31)");
  ShardFileOptions padded;
  padded.padId = 0;
  EXPECT_EQ(shardError({1, 0, 0, 0}, padded, v10), "");
  // Truncated: 8 tokens = 288 bytes, 6 cut: the last complete token is 5, token 6 starts at
  // byte 280 and is cut short.
  ShardFileOptions cut;
  cut.truncateBy = 6;
  EXPECT_EQ(shardError(eight, cut),
            "truncated at byte offset 280 (token 6): the header says 8 tokens, 288 bytes in all, "
            "the file has 282 bytes (ends inside a token)");
  // n_tokens larger than the file: 12 declared (304 bytes), 8 present.
  ShardFileOptions more;
  more.headerTokens = 12;
  EXPECT_EQ(shardError(eight, more),
            "truncated at byte offset 288 (token 8): the header says 12 tokens, 304 bytes in all, "
            "the file has 288 bytes");
  // n_tokens smaller than the file: 4 declared, the first extra byte is 256 + 16 = 272.
  ShardFileOptions fewer;
  fewer.headerTokens = 4;
  EXPECT_EQ(shardError(eight, fewer),
            "byte offset 272 (token 4) is past the end of the 4 tokens the header declares: the "
            "file has 16 extra bytes (288 in all)");
  // Header fields.
  ShardFileOptions version;
  version.version = 2;
  EXPECT_EQ(shardError(eight, version),
            "byte offset 0: shard version 2, expected 1 (not a fusion_shards file?)");
  ShardFileOptions dirty;
  dirty.dirtyByte = 100;
  EXPECT_EQ(shardError(eight, dirty),
            "byte offset 100: header byte is 0xab (bytes 17..255 must be zero)");
  ShardFileOptions zeroPack;
  zeroPack.packLength = 0;
  EXPECT_EQ(shardError(eight, zeroPack), "byte offset 9: pack length 0 (must be at least 1)");
  ShardFileOptions unpacked;
  unpacked.packLength = 3;
  EXPECT_EQ(shardError(eight, unpacked),
            "byte offset 1: n_tokens 8 is not a multiple of the pack length 3 (MODEL.md §14.4: "
            "n_tokens = rows x pack length)");
  ShardFileOptions badPad;
  badPad.padId = -7;
  EXPECT_EQ(shardError(eight, badPad), "byte offset 13: pad id -7 (must be -1 or a token id)");
  ShardFileOptions bigPad;
  bigPad.padId = 10;
  EXPECT_EQ(shardError(eight, bigPad, v10),
            "byte offset 13: pad id 10 is outside the vocabulary [0, 10)");
  VerifyOptions wantPad;
  wantPad.padId = 3;
  EXPECT_EQ(shardError(eight, {}, wantPad),
            "byte offset 13: pad id -1, expected 3 (the data's pad_token_id, MODEL.md §14.1)");
  // A short header.
  writeTextFile(dir_.path("short.bin"), std::string(100, '\x01'));
  StatusOr<VerifiedFile> shortFile = verifyShardFile(dir_.path("short.bin"), {});
  EXPECT_EQ(shortFile.status().message(),
            dir_.path("short.bin") +
                ": truncated at byte offset 100: the file has 100 bytes, a shard starts with a "
                "256-byte header");
  EXPECT_EQ(verifyShardFile(dir_.path("none.bin"), {}).status().code(), StatusCode::kNotFound);
}

TEST_F(VerifyTest, ManifestChecksEveryShard) {
  writeShardFile(dir_.path("a.bin"), {1, 2, 3, 4});
  writeShardFile(dir_.path("b.bin"), {5, 6, 7, 8, 9, 1, 2, 3});
  auto line = [](const std::string &path, uint64_t n, const std::string &source) {
    return "{\"path\": \"" + path + "\", \"n_tokens\": " + std::to_string(n) +
           ", \"source\": \"" + source + "\"}\n";
  };
  writeTextFile(dir_.path("manifest.jsonl"), line("a.bin", 4, "x") + line("b.bin", 8, "y"));
  StatusOr<std::vector<VerifiedFile>> files = verifyManifest(dir_.path("manifest.jsonl"), {});
  ASSERT_TRUE(files.ok()) << files.status().toString();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[1].source, "y");
  EXPECT_EQ((*files)[1].maxId, 9);
  // The manifest's n_tokens disagrees with the header.
  writeTextFile(dir_.path("manifest.jsonl"), line("a.bin", 4, "x") + line("b.bin", 12, "y"));
  EXPECT_EQ(verifyManifest(dir_.path("manifest.jsonl"), {}).status().message(),
            dir_.path("manifest.jsonl") + ":2: n_tokens is 12 but the header of " +
                dir_.path("b.bin") + " says 8 (byte offset 1)");
  // A bad token in the second shard: token 5 of b.bin, byte 276.
  writeShardFile(dir_.path("b.bin"), {5, 6, 7, 8, 9, 100, 2, 3});
  writeTextFile(dir_.path("manifest.jsonl"), line("a.bin", 4, "x") + line("b.bin", 8, "y"));
  VerifyOptions v10;
  v10.vocabSize = 10;
  EXPECT_EQ(verifyManifest(dir_.path("manifest.jsonl"), v10).status().message(),
            dir_.path("b.bin") + ": token 5 (byte offset 276) is 100, outside the vocabulary "
                                 "[0, 10)");
  // Two pad ids in one data set.
  ShardFileOptions padded;
  padded.padId = 0;
  writeShardFile(dir_.path("b.bin"), {5, 6, 7, 8, 9, 1, 2, 3}, padded);
  EXPECT_EQ(verifyManifest(dir_.path("manifest.jsonl"), {}).status().message(),
            dir_.path("b.bin") + ": byte offset 13: pad id 0 differs from the pad id -1 of " +
                dir_.path("a.bin") + " (one data set has one pad id)");
}

TEST_F(VerifyTest, BinCorruptionNamesTheByteOffset) {
  std::string path = dir_.path("t.bin");
  writeBinFile(path, {1, 2, 3, 4, 5, 6, 7, 8}, false);
  StatusOr<VerifiedFile> good = verifyBinFile(path, {});
  ASSERT_TRUE(good.ok()) << good.status().toString();
  EXPECT_EQ(good->format, Format::kBin);
  EXPECT_EQ(good->tokenBytes, 2u);
  EXPECT_EQ(good->numTokens, 8u);
  EXPECT_EQ(good->maxId, 8);
  // A token >= V in a uint16 file: token 3 at byte 1024 + 2 * 3 = 1030.
  writeBinFile(path, {1, 2, 3, 50000, 5}, false);
  VerifyOptions gpt2;
  gpt2.vocabSize = 50000;
  EXPECT_EQ(binError(path, gpt2),
            "token 3 (byte offset 1030) is 50000, outside the vocabulary [0, 50000)");
  EXPECT_EQ(binError(path), "");
  // uint32: token 1 at byte 1028; without V the limit is the int32 range.
  writeBinFile(path, {7, 3000000000u, 1}, true);
  EXPECT_EQ(binError(path),
            "token 1 (byte offset 1028) is 3000000000, outside [0, 2^31)");
  // Wrong magic, wrong version.
  writeBinFile(path, {1, 2}, false);
  patchInt(path, 0, 12345);
  EXPECT_EQ(binError(path), "byte offset 0: wrong magic 12345 (a nanoGPT/llm.c .bin file starts "
                            "with 20240520 for uint16 or 20240801 for uint32 tokens)");
  writeBinFile(path, {1, 2}, true);
  patchInt(path, 1, 1);
  EXPECT_EQ(binError(path),
            "byte offset 4: version 1 with magic 20240801 (uint32 tokens need version 7)");
  // n_tokens against the file size: 10 declared (1044 bytes), 8 present (1040 bytes).
  writeBinFile(path, {1, 2, 3, 4, 5, 6, 7, 8}, false, 10);
  EXPECT_EQ(binError(path), "truncated at byte offset 1040 (token 8): the header says 10 tokens, "
                            "1044 bytes in all, the file has 1040 bytes");
  writeBinFile(path, {1, 2, 3, 4, 5, 6, 7, 8}, false, 6);
  EXPECT_EQ(binError(path), "byte offset 1036 (token 6) is past the end of the 6 tokens the "
                            "header declares: the file has 4 extra bytes (1040 in all)");
  writeBinFile(path, {1}, false, -3);
  EXPECT_EQ(binError(path), "byte offset 8: negative n_tokens -3");
  writeBinFile(path, {1, 2}, false);
  patchInt(path, 17, 5);
  EXPECT_EQ(binError(path), "byte offset 68: header int 17 is 5 (ints 3..255 must be zero)");
  writeTextFile(path, std::string(1000, '\0'));
  EXPECT_EQ(binError(path), "truncated at byte offset 1000: the file has 1000 bytes, a .bin file "
                            "starts with a 1024-byte header");
}

TEST_F(VerifyTest, BinWriterWritesWhatTheLoaderReads) {
  std::filesystem::create_directories(dir_.path("out"));
  BinWriter::Options options;
  options.dir = dir_.path("out");
  options.prefix = "web_train";
  options.vocabSize = 300;
  options.eosId = 299;
  options.maxTokensPerFile = 6;
  StatusOr<std::unique_ptr<BinWriter>> writer = BinWriter::create(options);
  ASSERT_TRUE(writer.ok()) << writer.status().toString();
  EXPECT_FALSE((*writer)->wide());
  ASSERT_TRUE((*writer)->addDocument({10, 11, 12}).ok());
  ASSERT_TRUE((*writer)->addDocument({20, 21, 22, 23, 24}).ok());
  ASSERT_TRUE((*writer)->addDocument({}).ok());
  EXPECT_EQ((*writer)->addDocument({5, 300}).message(),
            "document 4 token 1 is 300, outside the vocabulary [0, 300)");
  StatusOr<std::vector<std::string>> files = (*writer)->finish();
  ASSERT_TRUE(files.ok()) << files.status().toString();
  // EOS before each document: 299 10 11 12 299 20 | 21 22 23 24 299 (11 tokens, 6 per file).
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0], dir_.path("out/web_train_000000.bin"));
  EXPECT_EQ((*files)[1], dir_.path("out/web_train_000001.bin"));
  std::vector<uint8_t> first = readFileBytes((*files)[0]);
  ASSERT_EQ(first.size(), 1024u + 12);
  int32_t header[3];
  std::memcpy(header, first.data(), 12);
  EXPECT_EQ(header[0], 20240520);
  EXPECT_EQ(header[1], 1);
  EXPECT_EQ(header[2], 6);
  for (size_t i = 12; i < 1024; ++i)
    ASSERT_EQ(first[i], 0) << i;
  std::vector<uint16_t> ids(6);
  std::memcpy(ids.data(), first.data() + 1024, 12);
  EXPECT_EQ(ids, (std::vector<uint16_t>{299, 10, 11, 12, 299, 20}));
  EXPECT_EQ(readFileBytes((*files)[1]).size(), 1024u + 10);
  for (const std::string &file : *files)
    EXPECT_TRUE(verifyBinFile(file, {}).ok()) << file;

  // The loader reads them back in order (sequential, T = 4: 5 tokens per row; the second
  // file holds exactly one micro-batch of B = 1).
  StatusOr<DataSpec> spec = parseDataSpec("bin:" + dir_.path("out/web_train_*.bin"));
  ASSERT_TRUE(spec.ok());
  StatusOr<std::unique_ptr<Source>> source = openSource(*spec, 300);
  ASSERT_TRUE(source.ok()) << source.status().toString();
  std::vector<int32_t> row(5);
  ASSERT_TRUE((*source)->readRows({0, 0, 0, 1, 1}, {1, 4, 0}, row.data()).ok());
  EXPECT_EQ(row, (std::vector<int32_t>{299, 10, 11, 12, 299}));
  ASSERT_TRUE((*source)->readRows({1, 0, 0, 1, 1}, {1, 4, 0}, row.data()).ok());
  EXPECT_EQ(row, (std::vector<int32_t>{21, 22, 23, 24, 299}));

  // V > 65536: uint32, magic 20240801 / version 7.
  options.prefix = "big";
  options.vocabSize = 70000;
  options.eosId = 69999;
  options.maxTokensPerFile = 0;
  writer = BinWriter::create(options);
  ASSERT_TRUE(writer.ok());
  EXPECT_TRUE((*writer)->wide());
  ASSERT_TRUE((*writer)->addDocument({65536, 1}).ok());
  files = (*writer)->finish();
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1u);
  std::vector<uint8_t> wide = readFileBytes((*files)[0]);
  ASSERT_EQ(wide.size(), 1024u + 12);
  std::memcpy(header, wide.data(), 12);
  EXPECT_EQ(header[0], 20240801);
  EXPECT_EQ(header[1], 7);
  EXPECT_EQ(header[2], 3);
  std::vector<uint32_t> wideIds(3);
  std::memcpy(wideIds.data(), wide.data() + 1024, 12);
  EXPECT_EQ(wideIds, (std::vector<uint32_t>{69999, 65536, 1}));
  VerifyOptions v70k;
  v70k.vocabSize = 70000;
  StatusOr<VerifiedFile> verified = verifyBinFile((*files)[0], v70k);
  ASSERT_TRUE(verified.ok()) << verified.status().toString();
  EXPECT_EQ(verified->tokenBytes, 4u);
  EXPECT_EQ(verified->maxId, 69999);

  // Option checks.
  options.eosId = 70000;
  EXPECT_EQ(BinWriter::create(options).status().message(),
            "eos id 70000 is outside the vocabulary [0, 70000)");
  options.eosId = 0;
  options.prefix = "a/b";
  EXPECT_EQ(BinWriter::create(options).status().message(),
            "file prefix 'a/b' may only contain letters, digits, '_', '-' and '.'");
  // Nothing written without documents.
  options.prefix = "empty";
  writer = BinWriter::create(options);
  ASSERT_TRUE(writer.ok());
  files = (*writer)->finish();
  ASSERT_TRUE(files.ok());
  EXPECT_TRUE(files->empty());
}

} // namespace
