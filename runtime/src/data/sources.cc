//===- sources.cc - The three row sources of MODEL.md §14.3 ---------------===//
//
// A Source turns micro-batch coordinates into B rows of T+1 tokens:
//   - SyntheticSource: row b = (a + d·i) mod V, a and d drawn from the row's RNG fields.
//   - ShardSource (fusion_shards): mixture sampling (source, shard, offset: three draws per
//     row) or sequential reading in manifest order.
//   - BinSource (nanoGPT/llm.c): sequential reading of the glob's files in byte order.
// Sequential reading numbers micro-batches globally (g = s·n_acc + a) and maps g to a file
// and position arithmetically, which equals stepping `pos` through the files from the
// start (§14.3) but costs nothing for large g. Files too small for one micro-batch of all
// ranks are skipped (the spec's stepping rule never reads from them consistently).
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/plan.h"

#include "token_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include <glob.h>

namespace fusion::rt::data {

namespace {

std::string describeShape(const BatchShape &shape) {
  return "B=" + std::to_string(shape.rows) + ", T=" + std::to_string(shape.seqLen);
}

Status checkCoord(const BatchCoord &coord) {
  if (coord.worldSize == 0 || coord.rank >= coord.worldSize)
    return Status(StatusCode::kInvalidArgument, "rank " + std::to_string(coord.rank) +
                                                    " out of range for " +
                                                    std::to_string(coord.worldSize) + " ranks");
  if (coord.accumulation == 0 || coord.micro >= coord.accumulation)
    return Status(StatusCode::kInvalidArgument,
                  "micro-batch " + std::to_string(coord.micro) + " out of range for " +
                      std::to_string(coord.accumulation) + " micro-batches per step");
  return Status::okStatus();
}

/// Where micro-batch `coord` starts when reading `files` sequentially (in order, cyclic),
/// §14.3: the file and the shared position `pos` (rank 0's first token) in it.
StatusOr<SequentialPosition> locateSequential(const std::vector<TokenFile *> &files,
                                              const BatchCoord &coord, const BatchShape &shape) {
  uint64_t B = static_cast<uint64_t>(shape.rows), T = static_cast<uint64_t>(shape.seqLen);
  // Tokens all ranks consume per micro-batch: S = W·B·T, and one more for the last target.
  unsigned __int128 stride = static_cast<unsigned __int128>(coord.worldSize) * B * T;
  std::vector<uint64_t> batchesPerFile(files.size());
  unsigned __int128 cycle = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    uint64_t n = files[i]->numTokens();
    batchesPerFile[i] = n >= stride + 1 ? static_cast<uint64_t>((n - 1) / stride) : 0;
    cycle += batchesPerFile[i];
  }
  if (cycle == 0)
    return Status(StatusCode::kFailedPrecondition,
                  "no data file holds the " + std::to_string(static_cast<uint64_t>(stride + 1)) +
                      " tokens one micro-batch needs (" + std::to_string(coord.worldSize) +
                      " rank(s) x " + describeShape(shape) + ", +1)");
  unsigned __int128 global =
      static_cast<unsigned __int128>(coord.step) * coord.accumulation + coord.micro;
  uint64_t index = static_cast<uint64_t>(global % cycle);
  size_t file = 0;
  while (index >= batchesPerFile[file]) {
    index -= batchesPerFile[file];
    ++file;
  }
  return SequentialPosition{file, static_cast<uint64_t>(index * stride)};
}

/// Reads micro-batches sequentially from `files` (in order, cyclic), §14.3.
Status readSequential(const std::vector<TokenFile *> &files, const BatchCoord &coord,
                      const BatchShape &shape, std::optional<int64_t> vocabSize, int32_t *tokens) {
  FUSION_ASSIGN_OR_RETURN(SequentialPosition at, locateSequential(files, coord, shape));
  uint64_t B = static_cast<uint64_t>(shape.rows), T = static_cast<uint64_t>(shape.seqLen);
  uint64_t base = at.pos + coord.rank * B * T;
  for (uint64_t b = 0; b < B; ++b)
    FUSION_RETURN_IF_ERROR(
        files[at.shard]->read(base + b * T, T + 1, vocabSize, tokens + b * (T + 1)));
  return Status::okStatus();
}

//===----------------------------------------------------------------------===//
// synthetic
//===----------------------------------------------------------------------===//

class SyntheticSource final : public Source {
public:
  SyntheticSource(uint64_t seed, int64_t vocabSize) : seed_(seed), vocab_(vocabSize) {}

  Status readRows(const BatchCoord &coord, const BatchShape &shape, int32_t *tokens) override {
    FUSION_RETURN_IF_ERROR(checkCoord(coord));
    uint64_t V = static_cast<uint64_t>(vocab_);
    uint64_t rowLength = static_cast<uint64_t>(shape.seqLen) + 1;
    for (uint64_t b = 0; b < static_cast<uint64_t>(shape.rows); ++b) {
      RowCoord row{coord.step, coord.rank, coord.micro, b};
      uint64_t start = uniformIndex(drawState(seed_, row, 0), V);
      uint64_t stride = 1 + uniformIndex(drawState(seed_, row, 1), 7);
      // (start + stride·i) mod V, kept reduced step by step (no overflow for any T).
      uint64_t token = start;
      for (uint64_t i = 0; i < rowLength; ++i) {
        tokens[b * rowLength + i] = static_cast<int32_t>(token);
        token = (token + stride) % V;
      }
    }
    return Status::okStatus();
  }

  std::string describe() const override {
    return "synthetic (seed " + std::to_string(seed_) + ", V=" + std::to_string(vocab_) + ")";
  }

private:
  uint64_t seed_;
  int64_t vocab_;
};

//===----------------------------------------------------------------------===//
// fusion_shards
//===----------------------------------------------------------------------===//

class ShardSource final : public Source {
public:
  struct Shard {
    ManifestEntry entry;
    std::unique_ptr<TokenFile> file;
  };

  ShardSource(const DataSpec &spec, std::string manifest, std::vector<Shard> shards,
              std::optional<int64_t> vocabSize)
      : spec_(spec), manifest_(std::move(manifest)), shards_(std::move(shards)), vocab_(vocabSize) {
  }

  Status readRows(const BatchCoord &coord, const BatchShape &shape, int32_t *tokens) override {
    FUSION_RETURN_IF_ERROR(checkCoord(coord));
    if (spec_.sampling == Sampling::kSequential) {
      std::vector<TokenFile *> files;
      for (Shard &shard : shards_)
        files.push_back(shard.file.get());
      Status status = readSequential(files, coord, shape, vocab_, tokens);
      return status.code() == StatusCode::kFailedPrecondition ? status.withPrefix(manifest_)
                                                              : status;
    }
    FUSION_RETURN_IF_ERROR(prepareMixture(shape.seqLen));
    // The curriculum stage of this optimizer step picks the source weights (§13).
    const Mixture &mixture = mixtures_[curriculumStage(spec_, coord.step)];
    uint64_t T = static_cast<uint64_t>(shape.seqLen);
    for (uint64_t b = 0; b < static_cast<uint64_t>(shape.rows); ++b) {
      RowCoord row{coord.step, coord.rank, coord.micro, b};
      const MixtureSource &source = mixture.sources[pickWeighted(
          mixture.weights, uniformReal(drawState(spec_.seed, row, 0)))];
      Shard &shard = shards_[source.shards[pickWeighted(
          source.shardWeights, uniformReal(drawState(spec_.seed, row, 1)))]];
      uint64_t offset = uniformIndex(drawState(spec_.seed, row, 2), shard.entry.numTokens - T);
      FUSION_RETURN_IF_ERROR(shard.file->read(offset, T + 1, vocab_, tokens + b * (T + 1)));
    }
    return Status::okStatus();
  }

  StatusOr<std::optional<SequentialPosition>>
  sequentialPosition(const BatchCoord &coord, const BatchShape &shape) override {
    if (spec_.sampling != Sampling::kSequential)
      return std::optional<SequentialPosition>();
    std::vector<TokenFile *> files;
    for (Shard &shard : shards_)
      files.push_back(shard.file.get());
    StatusOr<SequentialPosition> at = locateSequential(files, coord, shape);
    if (!at.ok())
      return at.status().withPrefix(manifest_);
    return std::optional<SequentialPosition>(*at);
  }

  std::string describe() const override {
    std::string text = "fusion_shards " + manifest_ + " (" + std::to_string(shards_.size()) +
                       " shards, " + samplingName(spec_.sampling) + ", seed " +
                       std::to_string(spec_.seed);
    if (spec_.sampling == Sampling::kMixture && spec_.curriculumSwitchStep > 0)
      text += ", curriculum switch at step " + std::to_string(spec_.curriculumSwitchStep);
    return text + ")";
  }

private:
  /// A source of the mixture: its eligible shards (manifest order) and their weights.
  struct MixtureSource {
    std::string name;
    std::vector<size_t> shards;
    std::vector<double> shardWeights;
  };

  /// The sources a weight list draws from (those with weight > 0 and an eligible shard,
  /// in bytewise name order) and their weights.
  struct Mixture {
    std::vector<MixtureSource> sources;
    std::vector<double> weights;
  };

  /// Builds the mixture tables for rows of T+1 tokens (cached for the last T): the one of
  /// `mix`, or with a curriculum one per stage, both checked up front so that a run does not
  /// fail only when it reaches the switch step.
  Status prepareMixture(int64_t seqLen) {
    if (preparedFor_ == seqLen)
      return Status::okStatus();
    if (spec_.curriculumSwitchStep == 0) {
      FUSION_RETURN_IF_ERROR(buildMixture(seqLen, spec_.mix, "the mix", "mix", mixtures_[0]));
    } else { // `mix` is not used
      FUSION_RETURN_IF_ERROR(buildMixture(seqLen, spec_.stage1,
                                          "the curriculum's stage-1 mix", "stage1", mixtures_[1]));
      FUSION_RETURN_IF_ERROR(buildMixture(seqLen, spec_.stage2,
                                          "the curriculum's stage-2 mix", "stage2", mixtures_[2]));
    }
    preparedFor_ = seqLen;
    return Status::okStatus();
  }

  Status buildMixture(int64_t seqLen, const std::vector<SourceWeight> &weights,
                      const std::string &what, const std::string &key, Mixture &out) {
    std::map<std::string, MixtureSource> bySource; // std::map: bytewise name order
    std::vector<std::string> allSources;
    for (size_t i = 0; i < shards_.size(); ++i) {
      const ManifestEntry &entry = shards_[i].entry;
      if (std::find(allSources.begin(), allSources.end(), entry.source) == allSources.end())
        allSources.push_back(entry.source);
      if (entry.numTokens < static_cast<uint64_t>(seqLen) + 1)
        continue; // not eligible: too short for one row
      MixtureSource &source = bySource[entry.source];
      source.name = entry.source;
      source.shards.push_back(i);
      source.shardWeights.push_back(static_cast<double>(entry.numTokens));
    }
    out.sources.clear();
    out.weights.clear();
    for (auto &[name, source] : bySource) {
      double weight = 0;
      for (const SourceWeight &mix : weights)
        if (mix.source == name)
          weight = mix.weight;
      if (weight > 0) {
        out.sources.push_back(source);
        out.weights.push_back(weight);
      }
    }
    if (out.sources.empty()) {
      std::string mixNames, eligible;
      for (const SourceWeight &mix : weights)
        if (mix.weight > 0)
          mixNames += (mixNames.empty() ? "" : ", ") + mix.source;
      for (const auto &entry : bySource)
        eligible += (eligible.empty() ? "" : ", ") + entry.first;
      return Status(StatusCode::kFailedPrecondition,
                    manifest_ + ": no source of " + what + " (" + mixNames +
                        ") has a shard of at least T+1 = " + std::to_string(seqLen + 1) +
                        " tokens (sources with such shards: " +
                        (eligible.empty() ? std::string("none") : eligible) +
                        "); set the weights with " + key + "=SOURCE:WEIGHT+...");
    }
    return Status::okStatus();
  }

  DataSpec spec_;
  std::string manifest_;
  std::vector<Shard> shards_;
  std::optional<int64_t> vocab_;
  int64_t preparedFor_ = -1;
  // Indexed by curriculumStage(): 0 = mix, 1 = stage 1, 2 = stage 2.
  Mixture mixtures_[3];
};

StatusOr<std::unique_ptr<Source>> openShards(const DataSpec &spec,
                                             std::optional<int64_t> vocabSize) {
  std::string manifest = spec.path;
  std::error_code error;
  if (std::filesystem::is_directory(manifest, error))
    manifest = (std::filesystem::path(manifest) / "manifest.jsonl").string();
  FUSION_ASSIGN_OR_RETURN(std::vector<ManifestEntry> entries, readManifest(manifest));
  std::vector<ShardSource::Shard> shards;
  for (ManifestEntry &entry : entries) {
    std::string where = manifest + ":" + std::to_string(entry.line) + ": ";
    StatusOr<ShardHeader> header = readShardHeader(entry.resolvedPath);
    if (!header.ok())
      return header.status().withPrefix(manifest + ":" + std::to_string(entry.line));
    if (header->numTokens != entry.numTokens)
      return Status(StatusCode::kDataLoss, where + "n_tokens is " +
                                               std::to_string(entry.numTokens) +
                                               " but the header of " + entry.resolvedPath +
                                               " says " + std::to_string(header->numTokens));
    if (header->padId != spec.padId)
      return Status(StatusCode::kFailedPrecondition,
                    entry.resolvedPath + ": shard pad_token_id is " +
                        std::to_string(header->padId) + " but the data's pad id is " +
                        std::to_string(spec.padId) + " (they must be equal, MODEL.md §14.1)");
    auto file = std::make_unique<TokenFile>(entry.resolvedPath, kShardHeaderBytes, entry.numTokens,
                                            TokenElement::kInt32);
    shards.push_back({std::move(entry), std::move(file)});
  }
  return std::unique_ptr<Source>(
      std::make_unique<ShardSource>(spec, manifest, std::move(shards), vocabSize));
}

//===----------------------------------------------------------------------===//
// bin
//===----------------------------------------------------------------------===//

constexpr int32_t kMagicUInt16 = kBinMagicUInt16, kVersionUInt16 = kBinVersionUInt16;
constexpr int32_t kMagicUInt32 = kBinMagicUInt32, kVersionUInt32 = kBinVersionUInt32;

class BinSource final : public Source {
public:
  BinSource(std::string pattern, std::vector<std::unique_ptr<TokenFile>> files,
            std::optional<int64_t> vocabSize)
      : pattern_(std::move(pattern)), files_(std::move(files)), vocab_(vocabSize) {}

  Status readRows(const BatchCoord &coord, const BatchShape &shape, int32_t *tokens) override {
    FUSION_RETURN_IF_ERROR(checkCoord(coord));
    std::vector<TokenFile *> files;
    for (auto &file : files_)
      files.push_back(file.get());
    Status status = readSequential(files, coord, shape, vocab_, tokens);
    return status.code() == StatusCode::kFailedPrecondition ? status.withPrefix("bin:" + pattern_)
                                                            : status;
  }

  StatusOr<std::optional<SequentialPosition>>
  sequentialPosition(const BatchCoord &coord, const BatchShape &shape) override {
    std::vector<TokenFile *> files;
    for (auto &file : files_)
      files.push_back(file.get());
    StatusOr<SequentialPosition> at = locateSequential(files, coord, shape);
    if (!at.ok())
      return at.status().withPrefix("bin:" + pattern_);
    return std::optional<SequentialPosition>(*at);
  }

  std::string describe() const override {
    return "bin " + pattern_ + " (" + std::to_string(files_.size()) + " files, sequential)";
  }

private:
  std::string pattern_;
  std::vector<std::unique_ptr<TokenFile>> files_;
  std::optional<int64_t> vocab_;
};

StatusOr<std::unique_ptr<TokenFile>> openBinFile(const std::string &path) {
  std::FILE *file = std::fopen(path.c_str(), "rb");
  if (!file)
    return Status(StatusCode::kNotFound, path + ": cannot open: " + std::strerror(errno));
  int32_t header[256];
  size_t got = std::fread(header, 1, sizeof(header), file);
  std::fclose(file);
  if (got != sizeof(header))
    return Status(StatusCode::kDataLoss, path + ": truncated header (" + std::to_string(got) +
                                             " bytes; a .bin file starts with 1024)");
  // Little-endian host (the runtime's only target), so the ints read as they are stored.
  TokenElement element;
  if (header[0] == kMagicUInt16 && header[1] == kVersionUInt16)
    element = TokenElement::kUInt16;
  else if (header[0] == kMagicUInt32 && header[1] == kVersionUInt32)
    element = TokenElement::kUInt32;
  else
    return Status(StatusCode::kDataLoss,
                  path + ": not a nanoGPT/llm.c token file (magic " + std::to_string(header[0]) +
                      ", version " + std::to_string(header[1]) + "; expected 20240520/1 for " +
                      "uint16 or 20240801/7 for uint32 tokens)");
  if (header[2] < 0)
    return Status(StatusCode::kDataLoss,
                  path + ": negative token count " + std::to_string(header[2]));
  uint64_t numTokens = static_cast<uint64_t>(header[2]);
  std::error_code error;
  uint64_t size = std::filesystem::file_size(path, error);
  uint64_t expected = kBinHeaderBytes + numTokens * tokenElementSize(element);
  if (error || size != expected)
    return Status(StatusCode::kDataLoss,
                  path + ": " + (size < expected ? "truncated" : "too long") + ": " +
                      std::to_string(numTokens) + " tokens need " + std::to_string(expected) +
                      " bytes, the file has " + std::to_string(size));
  return std::make_unique<TokenFile>(path, kBinHeaderBytes, numTokens, element);
}

StatusOr<std::unique_ptr<Source>> openBin(const DataSpec &spec, std::optional<int64_t> vocabSize) {
  glob_t matches{};
  int rc = ::glob(spec.path.c_str(), GLOB_NOSORT | GLOB_ERR, nullptr, &matches);
  std::vector<std::string> paths;
  if (rc == 0)
    for (size_t i = 0; i < matches.gl_pathc; ++i)
      paths.push_back(matches.gl_pathv[i]);
  globfree(&matches);
  if (rc == GLOB_NOMATCH || (rc == 0 && paths.empty()))
    return Status(StatusCode::kNotFound, "bin: no file matches " + rt::quoted(spec.path));
  if (rc != 0)
    return Status(StatusCode::kUnavailable,
                  "bin: cannot expand " + rt::quoted(spec.path) + " (read error)");
  std::sort(paths.begin(), paths.end()); // bytewise (char_traits<char> compares unsigned)
  std::vector<std::unique_ptr<TokenFile>> files;
  for (const std::string &path : paths) {
    FUSION_ASSIGN_OR_RETURN(std::unique_ptr<TokenFile> file, openBinFile(path));
    files.push_back(std::move(file));
  }
  return std::unique_ptr<Source>(
      std::make_unique<BinSource>(spec.path, std::move(files), vocabSize));
}

} // namespace

StatusOr<std::unique_ptr<Source>> openSource(const DataSpec &spec,
                                             std::optional<int64_t> vocabSize) {
  if (vocabSize && *vocabSize < 1)
    return Status(StatusCode::kInvalidArgument,
                  "vocabulary size " + std::to_string(*vocabSize) + " (must be at least 1)");
  switch (spec.format) {
  case Format::kSynthetic:
    if (!vocabSize)
      return Status(StatusCode::kInvalidArgument, "synthetic data needs the vocabulary size V");
    if (*vocabSize > static_cast<int64_t>(INT32_MAX) + 1)
      return Status(StatusCode::kInvalidArgument, "vocabulary size " + std::to_string(*vocabSize) +
                                                      " does not fit int32 token ids");
    return std::unique_ptr<Source>(std::make_unique<SyntheticSource>(spec.seed, *vocabSize));
  case Format::kFusionShards:
    return openShards(spec, vocabSize);
  case Format::kBin:
    if (spec.sampling != Sampling::kSequential)
      return Status(StatusCode::kInvalidArgument, "bin data is read sequentially only");
    return openBin(spec, vocabSize);
  }
  return Status(StatusCode::kInvalidArgument, "unknown data format");
}

} // namespace fusion::rt::data
