//===- data.h - Training data: formats, rows, targets and loss counts -----===//
//
// The data feed of MODEL.md §14, as the runtime's programs consume it: a micro-batch is B rows
// of T+1 tokens (`tokens` [B, T+1] i32), the same rows with ignored target positions set to
// −1 (`targets`), and 1/N_k for the main head (k = 0) and each MTP depth k = 1..D_m
// (`inv_counts` [1+D_m] f32), where N_k counts the kept targets of the micro-batch (§8).
//
// Three formats are read (§14.1–§14.3):
//   - synthetic: row b is an arithmetic progression mod V drawn from the §14.3 RNG;
//   - fusion_shards: manifest.jsonl + shard files (256-byte header, int32 tokens), memory
//     mapped, sampled with the stateless mixture rule (or sequentially);
//   - bin: nanoGPT / llm.c files (1024-byte header, uint16 or uint32 tokens), read
//     sequentially.
// The RNG is splitmix64 over the fields (seed, s, rank, a, b, draw_idx), so any micro-batch
// can be produced directly from its coordinates, which is what exact resume needs.
//
// Counts and the world: N_k of §8 is a count over the whole optimizer step (all micro-batches,
// all ranks). makeBatch counts one micro-batch of one rank, so its inv_counts are the step's
// global 1/N_k exactly when the step is one micro-batch on one rank (W_dp = 1, n_acc = 1), as in
// `fusion-run --data`. A multi-rank or accumulating trainer must sum the counts of every
// micro-batch of the step (Batch::counts) before inverting them (inverseCounts).
//
// Shard writing (§14.4 packing) lives here too, so that the fusion-data tool and the tests
// share one implementation with the reader.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/status.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fusion::rt {
class Executor;
class Plan;
} // namespace fusion::rt

namespace fusion::rt::data {

//===----------------------------------------------------------------------===//
// RNG (MODEL.md §14.3)
//===----------------------------------------------------------------------===//

/// splitmix64: z += 0x9E3779B97F4A7C15, then two xor-shift-multiply rounds and a final
/// xor-shift (all mod 2^64).
uint64_t splitmix64(uint64_t z);

/// Where a row sits in the data stream: optimizer step s, rank, micro-batch a, row b.
struct RowCoord {
  uint64_t step = 0;
  uint64_t rank = 0;
  uint64_t micro = 0;
  uint64_t row = 0;
};

/// The state x of draw `drawIdx` of a row: x = splitmix64(seed), then x = splitmix64(x ^ f)
/// for f = s, rank, a, b, drawIdx in that order.
uint64_t drawState(uint64_t seed, const RowCoord &coord, uint64_t drawIdx);

/// A uniform integer in [0, n) from x: ((x >> 11) * n) >> 53, the product formed exactly in
/// 128 bits. n must be at least 1.
uint64_t uniformIndex(uint64_t x, uint64_t n);

/// A uniform real in [0, 1) from x: (x >> 11) * 2^-53 (exact in fp64).
double uniformReal(uint64_t x);

/// The weighted choice of §14.3: the index of the first weight whose running fp64 sum
/// exceeds u * (sum of all weights). `weights` must be non-empty with a positive sum.
size_t pickWeighted(const std::vector<double> &weights, double u);

//===----------------------------------------------------------------------===//
// What to read: the --data spec
//===----------------------------------------------------------------------===//

enum class Format { kSynthetic, kFusionShards, kBin };
enum class Sampling { kMixture, kSequential };

/// "synthetic", "fusion_shards", "bin".
const char *formatName(Format format);
/// "mixture", "sequential".
const char *samplingName(Sampling sampling);

/// One entry of a source mixture (`data_mix`).
struct SourceWeight {
  std::string source;
  double weight = 0;
};

/// The seed README `data_mix` (§14.3): fineweb_edu 0.60, finemath 0.15, stack_edu 0.15,
/// cosmopedia 0.05, openr1_math 0.05; the default of `mix=`.
std::vector<SourceWeight> defaultDataMix();

/// A parsed --data SPEC (see kDataSpecHelp).
struct DataSpec {
  Format format = Format::kSynthetic;
  /// fusion_shards: the manifest (a directory means DIR/manifest.jsonl); bin: a glob.
  std::string path;
  /// RNG seed (`seed` of the config, §17; default 1234).
  uint64_t seed = 1234;
  /// pad_token_id and eos_token_id (−1 = none), for the ignore rule and the header check.
  int32_t padId = -1;
  int32_t eosId = -1;
  /// fusion_shards only: mixture (default) or sequential; bin is always sequential.
  Sampling sampling = Sampling::kMixture;
  /// fusion_shards mixture: source weights, renormalised over the sources present.
  std::vector<SourceWeight> mix;
};

/// The --data grammar, as printed by `fusion-run --help`.
extern const char *const kDataSpecHelp;

/// Parses a --data SPEC. Errors are one line naming the offending part.
StatusOr<DataSpec> parseDataSpec(std::string_view text);

//===----------------------------------------------------------------------===//
// Batches
//===----------------------------------------------------------------------===//

/// The geometry of a micro-batch: B rows of T+1 tokens, D_m MTP depths.
struct BatchShape {
  int64_t rows = 0;
  int64_t seqLen = 0;
  int64_t mtpDepth = 0;
};

/// Which micro-batch: step s, micro-batch a of the step (of `accumulation` = n_acc), on
/// `rank` of `worldSize` data-parallel ranks. The sequential rule numbers micro-batches
/// globally (s * n_acc + a); the mixture and synthetic rules use (s, rank, a) directly.
struct BatchCoord {
  uint64_t step = 0;
  uint64_t micro = 0;
  uint32_t rank = 0;
  uint32_t worldSize = 1;
  uint64_t accumulation = 1;
};

/// Where sequential reading (§14.3) stands when a micro-batch starts: the shard / file index
/// in read order and the shared token position `pos` in it (rank r reads from
/// pos + r·B·T). The data state of a checkpoint (§15).
struct SequentialPosition {
  uint64_t shard = 0;
  uint64_t pos = 0;
};

/// A source of rows. Implementations are deterministic functions of the coordinates.
class Source {
public:
  virtual ~Source() = default;
  /// For sources read sequentially: the position micro-batch `coord` starts at (its rank
  /// field ignored). nullopt for stateless sampling (synthetic, mixture), whose state is the
  /// seed alone.
  virtual StatusOr<std::optional<SequentialPosition>>
  sequentialPosition(const BatchCoord &/*coord*/, const BatchShape &/*shape*/) {
    return std::optional<SequentialPosition>();
  }
  /// Writes the B rows of T+1 tokens of micro-batch `coord` to `tokens` (B * (T+1) values,
  /// row-major). Fails on unreadable or corrupt data and on token ids outside [0, V) when the
  /// vocabulary size is known, naming the file and token offset.
  virtual Status readRows(const BatchCoord &coord, const BatchShape &shape, int32_t *tokens) = 0;
  /// One line for logs: format, files and sampling.
  virtual std::string describe() const = 0;
};

/// Opens the source of `spec`. `vocabSize` (V) bounds token ids; synthetic data needs it,
/// the file formats check ids against it when given (and reject negative ids always).
/// fusion_shards headers (version, size, pad id) are checked here; token data is mapped
/// when first read.
StatusOr<std::unique_ptr<Source>> openSource(const DataSpec &spec,
                                             std::optional<int64_t> vocabSize);

/// Sets `targets` to `tokens` with ignored target positions set to −1 (§14.3), row by row
/// (`rows` rows of `rowLength` tokens): pad = −1 ignores nothing; pad ≠ eos ignores t_j = pad;
/// pad = eos ignores t_j = pad when t_{j−1} = pad too (the first EOS stays a target). Position
/// 0 has no predecessor in its row and is never a target; it is kept unless pad ≠ eos and it
/// is pad.
void applyIgnoreRule(const int32_t *tokens, int32_t *targets, int64_t rows, int64_t rowLength,
                     int32_t padId, int32_t eosId);

/// N_k for k = 0..mtpDepth: the kept targets (≥ 0) of the main head at positions 1..T and of
/// MTP depth k at positions k+1..T, over all rows of `targets` ([rows, T+1]).
std::vector<uint64_t> countTargets(const int32_t *targets, int64_t rows, int64_t seqLen,
                                   int64_t mtpDepth);

/// 1/N_k in f32 (rounded once from fp64); 0 where N_k = 0, so a head without targets
/// contributes nothing instead of NaN.
std::vector<float> inverseCounts(const std::vector<uint64_t> &counts);

/// One micro-batch, ready for a program's `tokens`, `targets` and `inv_counts` inputs.
struct Batch {
  BatchShape shape;
  /// [B, T+1] row-major.
  std::vector<int32_t> tokens;
  /// [B, T+1]: tokens with ignored positions set to −1.
  std::vector<int32_t> targets;
  /// N_k, k = 0..D_m, of this micro-batch.
  std::vector<uint64_t> counts;
  /// 1/N_k (see the file comment on when these are the step's global counts).
  std::vector<float> invCounts;
};

/// Reads micro-batch `coord` from `source` and derives targets and counts with the pad and
/// eos ids of `spec`.
StatusOr<Batch> makeBatch(Source &source, const DataSpec &spec, const BatchShape &shape,
                          const BatchCoord &coord);

//===----------------------------------------------------------------------===//
// Feeding a plan's programs
//===----------------------------------------------------------------------===//

/// The names of the data inputs a program may bind.
constexpr const char *kTokensInput = "tokens";
constexpr const char *kTargetsInput = "targets";
constexpr const char *kInvCountsInput = "inv_counts";
/// The embedding buffer whose shape [V, D] gives the vocabulary size.
constexpr const char *kEmbeddingBuffer = "tok_embeddings.weight";

/// True when program `program` binds any of tokens, targets, inv_counts.
bool programTakesData(const Plan &plan, uint32_t program);

/// B, T and D_m of program `program` from its data inputs: tokens or targets [B, T+1] i32
/// (both, if bound, with the same shape), inv_counts [1+D_m] f32 (D_m = 0 when unbound).
StatusOr<BatchShape> programBatchShape(const Plan &plan, uint32_t program);

/// V from the plan: dim 0 of the 2-D buffer(s) called tok_embeddings.weight; nullopt when
/// there is none, an error when such buffers disagree or are not 2-D.
StatusOr<std::optional<int64_t>> planVocabSize(const Plan &plan);

/// Builds micro-batch `coord` for program `program` and copies it into whichever of tokens,
/// targets and inv_counts the program binds.
Status feedProgram(Executor &executor, std::string_view program, Source &source,
                   const DataSpec &spec, const BatchCoord &coord);

//===----------------------------------------------------------------------===//
// fusion_shards files (MODEL.md §14.1) and packing (§14.4)
//===----------------------------------------------------------------------===//

/// Bytes before the tokens of a shard file.
constexpr size_t kShardHeaderBytes = 256;
/// The only shard format version.
constexpr uint8_t kShardVersion = 1;

/// The fields of a shard header.
struct ShardHeader {
  uint64_t numTokens = 0;
  uint32_t packLength = 0;
  int32_t padId = -1;
};

/// The 256 header bytes: version 0x01, n_tokens (u64 LE), pack length (u32 LE), pad id
/// (i32 LE), zeros.
std::array<uint8_t, kShardHeaderBytes> encodeShardHeader(const ShardHeader &header);

/// Reads and checks the header of shard `path`: size ≥ 256, version 1, bytes 17..255 zero,
/// and a file size of exactly 256 + 4 * n_tokens. Errors name `path`.
StatusOr<ShardHeader> readShardHeader(const std::string &path);

/// Token statistics of one shard file (for `fusion-data inspect`).
struct ShardStats {
  ShardHeader header;
  /// Padding: tokens equal to the header's pad id (0 when it is −1); when pad = eos, only
  /// those that follow another pad id (the first of a run is a document's EOS, §14.3).
  uint64_t padTokens = 0;
  /// EOS tokens (0 when `eosId` is −1): about one per document.
  uint64_t eosTokens = 0;
  /// Negative tokens other than padding (always an error for training).
  uint64_t negativeTokens = 0;
  /// Smallest and largest id among the tokens that are neither padding nor EOS-as-pad nor
  /// negative (−1 when there are none).
  int32_t minId = -1;
  int32_t maxId = -1;
};

/// Checks the header of shard `path` (as readShardHeader) and scans its tokens.
StatusOr<ShardStats> computeShardStats(const std::string &path, int32_t eosId);

/// One manifest line.
struct ManifestEntry {
  /// `path` as written in the manifest.
  std::string path;
  /// The file it names (relative paths resolved against the manifest's directory).
  std::string resolvedPath;
  uint64_t numTokens = 0;
  std::string source;
  double weight = 1;
  double qualityScore = 1;
  std::string domain;
  /// 1-based line in the manifest.
  size_t line = 0;
};

/// Reads manifest.jsonl: one flat JSON object per non-blank line with `path` (string),
/// `n_tokens` (integer) and `source` (non-empty string) required, `weight`,
/// `quality_score` (numbers) and `domain` (string) optional, other members ignored. A
/// relative path is resolved against the manifest's directory; if no file is there but one
/// exists relative to that directory's parent (seed-era manifests wrote
/// "shards/<source>_shard_<i>.bin" next to a manifest inside shards/), that one is used.
/// Errors name the manifest and line.
StatusOr<std::vector<ManifestEntry>> readManifest(const std::string &path);

/// `entry` as one manifest line (no newline), members in §14.1 order.
std::string formatManifestLine(const ManifestEntry &entry);

/// Packs documents into rows of `packLength` tokens and writes shard files (§14.4): each
/// document's ids are followed by EOS; a document that fits the current row's remaining
/// space is appended to it; otherwise the current row, if non-empty, is padded with the pad
/// id and the document starts a new row, spilling over as many rows as it needs, its last
/// piece opening the row the next documents continue. The last row is padded. Shards are
/// written to `dir`/<source>_shard_<iiiii>.bin (5-digit index), each holding at most
/// `maxRowsPerShard` rows (0 = all in one shard), through a temporary file renamed into place.
class ShardPacker {
public:
  struct Options {
    std::string dir;
    std::string source;
    uint32_t packLength = 8192;
    int32_t padId = -1;
    int32_t eosId = -1;
    /// When set, ids must be < vocabSize.
    std::optional<int64_t> vocabSize;
    uint64_t maxRowsPerShard = 0;
  };

  /// Checks the options (pack length ≥ 1, pad and eos ≥ 0 and < V, a source name usable in
  /// a file name) and that `dir` exists.
  static StatusOr<std::unique_ptr<ShardPacker>> create(Options options);
  ~ShardPacker();

  /// Appends one document (its ids, without EOS); ids must be in [0, V).
  Status addDocument(const std::vector<int32_t> &ids);

  /// Pads and writes the last row, closes the last shard and returns one manifest entry per
  /// shard written (path relative to `dir`, weight and quality 1, empty domain). No shard is
  /// written when no document was added.
  StatusOr<std::vector<ManifestEntry>> finish();

  /// Documents and rows so far.
  uint64_t numDocuments() const { return numDocuments_; }
  uint64_t numRows() const { return numRows_; }

private:
  explicit ShardPacker(Options options);
  Status appendToRow(const int32_t *ids, size_t count);
  Status emitRow();
  Status openShard();
  Status closeShard();

  Options options_;
  std::vector<int32_t> row_;
  uint64_t numDocuments_ = 0;
  uint64_t numRows_ = 0;
  // The shard being written.
  std::FILE *file_ = nullptr;
  std::string tempPath_;
  std::string finalPath_;
  uint64_t shardRows_ = 0;
  uint32_t shardIndex_ = 0;
  std::vector<ManifestEntry> written_;
};

/// Writes `entries` as `path` (a manifest), through a temporary file renamed into place.
Status writeManifest(const std::string &path, const std::vector<ManifestEntry> &entries);

} // namespace fusion::rt::data
