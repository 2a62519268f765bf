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
#include <unordered_map>
#include <utility>
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

/// The curriculum stage weights of MODEL.md §17, the defaults of `stage1=` / `stage2=`:
/// stage 1 fineweb_edu 0.70, stack_edu 0.15, openr1_math 0.05, fineweb2 0.10; stage 2
/// fineweb_edu 0.30, stack_edu 0.25, openr1_math 0.25, fineweb2 0.10, smollm_corpus 0.10.
std::vector<SourceWeight> defaultCurriculumStage1();
std::vector<SourceWeight> defaultCurriculumStage2();

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
  /// The two-stage curriculum of §13 (mixture sampling only): when S_c =
  /// `curriculumSwitchStep` > 0, rows of optimizer steps s < S_c draw their source with
  /// `stage1` and rows of steps s >= S_c with `stage2` (both renormalised over the sources
  /// present, like `mix`); S_c = 0 uses `mix` throughout.
  uint64_t curriculumSwitchStep = 0;
  std::vector<SourceWeight> stage1;
  std::vector<SourceWeight> stage2;
};

/// The source weights that rows of optimizer step `step` draw with (§13): `mix` when the
/// curriculum is off, else stage 1 before `curriculumSwitchStep` and stage 2 from it on.
const std::vector<SourceWeight> &activeMix(const DataSpec &spec, uint64_t step);

/// 1 or 2: the curriculum stage of step `step`; 0 when the curriculum is off.
int curriculumStage(const DataSpec &spec, uint64_t step);

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

//===----------------------------------------------------------------------===//
// nanoGPT / llm.c .bin files (MODEL.md §14.2)
//===----------------------------------------------------------------------===//

/// Bytes before the tokens of a .bin file: 256 little-endian int32 (magic, version,
/// n_tokens, zeros).
constexpr size_t kBinHeaderBytes = 256 * 4;
/// uint16 tokens: magic 20240520, version 1 (GPT-2 vocabularies, V <= 65536).
constexpr int32_t kBinMagicUInt16 = 20240520;
constexpr int32_t kBinVersionUInt16 = 1;
/// uint32 tokens: magic 20240801, version 7 (larger vocabularies).
constexpr int32_t kBinMagicUInt32 = 20240801;
constexpr int32_t kBinVersionUInt32 = 7;

/// Writes documents as nanoGPT/llm.c token files (§14.2): no packing and no padding, the
/// EOS id *before* each document (nanoGPT's FineWeb convention), uint16 tokens when the
/// vocabulary has at most 65536 ids, else uint32. Files are `dir`/<prefix>_<iiiiii>.bin
/// (6-digit index), each holding at most `maxTokensPerFile` tokens (a document may continue
/// in the next file, as in nanoGPT's writer); each is written under a temporary name and
/// renamed when complete.
class BinWriter {
public:
  struct Options {
    std::string dir;
    std::string prefix;
    int64_t vocabSize = 0;
    int32_t eosId = 0;
    /// 0 = INT32_MAX, the most the int32 n_tokens header field holds.
    uint64_t maxTokensPerFile = 0;
  };

  /// Checks the options (V in [1, 2^32], eos in [0, V), a prefix usable in a file name,
  /// maxTokensPerFile <= INT32_MAX) and that `dir` exists.
  static StatusOr<std::unique_ptr<BinWriter>> create(Options options);
  ~BinWriter();

  /// Appends EOS and the document's ids, which must be in [0, V).
  Status addDocument(const std::vector<int32_t> &ids);

  /// Closes the last file; returns the paths written, in order (none without documents).
  StatusOr<std::vector<std::string>> finish();

  /// True when ids are stored as uint32 (V > 65536).
  bool wide() const { return options_.vocabSize > 65536; }
  uint64_t numDocuments() const { return numDocuments_; }
  uint64_t numTokens() const { return numTokens_; }

private:
  explicit BinWriter(Options options);
  Status append(const int32_t *ids, size_t count);
  Status openFile();
  Status closeFile();

  Options options_;
  uint64_t numDocuments_ = 0;
  uint64_t numTokens_ = 0;
  std::FILE *file_ = nullptr;
  std::string tempPath_;
  std::string finalPath_;
  uint64_t fileTokens_ = 0;
  uint32_t fileIndex_ = 0;
  std::vector<uint8_t> buffer_;
  std::vector<std::string> written_;
};

//===----------------------------------------------------------------------===//
// Verifying token files (fusion-data verify)
//===----------------------------------------------------------------------===//

/// What verification checks the files against.
struct VerifyOptions {
  /// When set, every token must be in [0, V) (and a shard's pad id too); otherwise tokens
  /// must fit the runtime's int32 ids ([0, 2^31)).
  std::optional<int64_t> vocabSize;
  /// When set, every fusion_shards header must carry this pad id (the loader's rule).
  std::optional<int32_t> padId;
};

/// The summary of one file that verified.
struct VerifiedFile {
  std::string path;
  /// The manifest's source ("" for a file verified on its own).
  std::string source;
  Format format = Format::kFusionShards;
  /// Bytes per token: 4 (fusion_shards, bin uint32) or 2 (bin uint16).
  uint32_t tokenBytes = 4;
  uint64_t numTokens = 0;
  /// fusion_shards header fields (0 / -1 for bin).
  uint32_t packLength = 0;
  int32_t padId = -1;
  /// Tokens equal to the pad id (fusion_shards with a pad id; EOS tokens count here too
  /// when pad = eos).
  uint64_t padTokens = 0;
  /// Smallest and largest id that is not the pad id (-1 when there is none).
  int64_t minId = -1;
  int64_t maxId = -1;
};

/// Checks one fusion_shards file completely (§14.1): a 256-byte header, version 1, bytes
/// 17..255 zero, pack length >= 1, n_tokens a multiple of it (§14.4), pad id -1 or a token
/// id (< V when V is known; equal to `options.padId` when given), a file size of exactly
/// 256 + 4 n_tokens, and every token in [0, V). The error is one line naming the file, the
/// byte offset of the first bad byte and, for token data, the token index.
StatusOr<VerifiedFile> verifyShardFile(const std::string &path, const VerifyOptions &options);

/// Checks one nanoGPT/llm.c .bin file (§14.2): a 1024-byte header with magic/version
/// 20240520/1 or 20240801/7, n_tokens >= 0, header ints 3..255 zero, a file size of exactly
/// 1024 + n_tokens * (2 or 4), and every token in [0, V). Errors as verifyShardFile.
StatusOr<VerifiedFile> verifyBinFile(const std::string &path, const VerifyOptions &options);

/// Checks a manifest and every shard it lists (manifest order): the manifest's syntax,
/// each shard as verifyShardFile, the manifest's n_tokens against the header, and one pad
/// id across all shards. Stops at the first error.
StatusOr<std::vector<VerifiedFile>> verifyManifest(const std::string &path,
                                                   const VerifyOptions &options);

//===----------------------------------------------------------------------===//
// Document deduplication (MODEL.md §14.4: MinHash + exact-prefix)
//===----------------------------------------------------------------------===//

/// Defaults of --dedup exact-prefix[:N] and minhash[:T].
constexpr size_t kDefaultDedupPrefixBytes = 512;
constexpr double kDefaultMinHashThreshold = 0.8;
/// MinHash: hash functions (signature length), words per shingle, and the seed of the
/// hash functions (fixed, so dedup is deterministic across runs and machines).
constexpr int kMinHashFunctions = 128;
constexpr int kMinHashShingleWords = 5;
constexpr uint64_t kMinHashSeed = 0x6d696e68617368ull; // "minhash"
/// The seed of hashBytes for shingles.
constexpr uint64_t kShingleSeed = 0x7368696e676c6573ull; // "shingles"

/// Which methods run; both may.
struct DedupOptions {
  /// exact-prefix: documents whose first N bytes after whitespace normalisation equal an
  /// earlier kept document's (the whole normalised text when it is shorter than N).
  std::optional<size_t> exactPrefixBytes;
  /// minhash: documents whose estimated Jaccard similarity of word 5-gram shingles with an
  /// earlier kept document is at least T.
  std::optional<double> minhashThreshold;

  bool enabled() const { return exactPrefixBytes || minhashThreshold; }
};

/// Parses the --dedup value: a comma-separated list of `exact-prefix[:N]` (N >= 1 bytes)
/// and `minhash[:T]` (0 < T <= 1), each at most once; merges into `options` (so the flag
/// may be repeated).
Status parseDedupSpec(std::string_view text, DedupOptions &options);

/// `text` with every run of ASCII whitespace (space, \t, \n, \v, \f, \r) replaced by one
/// space and none at either end.
std::string normalizeWhitespace(std::string_view text);

/// A 64-bit hash of `bytes` (splitmix64 over 8-byte little-endian chunks; not
/// cryptographic, deterministic everywhere).
uint64_t hashBytes(std::string_view bytes, uint64_t seed);

/// The shingles of `text`: its words (maximal runs of non-whitespace, ASCII letters
/// lowercased), every `kMinHashShingleWords` consecutive words joined by one space, hashed
/// with hashBytes(shingle, kShingleSeed); sorted, duplicates removed. A text of 1..4 words
/// is one shingle; a text without words has none.
std::vector<uint64_t> wordShingles(std::string_view text);

/// The MinHash signature of a shingle set: for i = 0..127, the smallest
/// splitmix64(x ^ salt_i) over the shingles x, salt_i = splitmix64(kMinHashSeed + i), kept as
/// its upper 32 bits. Empty for an empty set.
std::vector<uint32_t> minhashSignature(const std::vector<uint64_t> &shingles);

/// The Jaccard estimate of two signatures: the fraction of positions where they agree.
double minhashSimilarity(const std::vector<uint32_t> &a, const std::vector<uint32_t> &b);

/// LSH banding of the signature: `bands` bands of `rows` positions each (bands * rows <= 128).
/// Two documents become candidates when all positions of some band agree, which happens with
/// probability 1 - (1 - J^rows)^bands for Jaccard similarity J.
struct LshBanding {
  int bands = 0;
  int rows = 0;
  /// 1 - (1 - j^rows)^bands.
  double candidateProbability(double j) const;
};

/// The banding for threshold T: the largest rows r (b = floor(128 / r)) whose candidate
/// probability at J = T is at least 0.99, so pairs at the threshold are missed at most 1% of
/// the time while unrelated pairs rarely become candidates (T = 0.8: r = 6, b = 21).
LshBanding chooseLshBanding(double threshold);

/// Online deduplication in document order: add() decides whether a document duplicates an
/// earlier kept one (exact-prefix first, then MinHash; candidates from the LSH bands are
/// confirmed by their signature similarity >= T, the most similar earliest one named);
/// only kept documents are remembered.
class Deduplicator {
public:
  enum class Method { kKept, kExactPrefix, kMinHash };
  struct Verdict {
    Method method = Method::kKept;
    /// The ordinal (0-based add() count) of the kept document it duplicates.
    uint64_t original = 0;
    /// 1 for exact-prefix; the signature similarity for MinHash.
    double similarity = 0;
  };

  explicit Deduplicator(DedupOptions options);
  Verdict add(std::string_view text);

  const DedupOptions &options() const { return options_; }
  const LshBanding &banding() const { return banding_; }
  uint64_t documents() const { return documents_; }
  uint64_t removed(Method method) const {
    return method == Method::kExactPrefix ? removedExact_
           : method == Method::kMinHash   ? removedMinHash_
                                          : documents_ - removedExact_ - removedMinHash_;
  }

private:
  DedupOptions options_;
  LshBanding banding_;
  uint64_t documents_ = 0;
  uint64_t removedExact_ = 0;
  uint64_t removedMinHash_ = 0;
  // exact-prefix: first hash -> (second hash, ordinal) of kept documents.
  std::unordered_map<uint64_t, std::vector<std::pair<uint64_t, uint64_t>>> prefixes_;
  // MinHash: signatures of kept documents (kMinHashFunctions each), their ordinals, and one
  // bucket table per band (band key -> indices into ordinals_).
  std::vector<uint32_t> signatures_;
  std::vector<uint64_t> ordinals_;
  std::vector<std::unordered_map<uint64_t, std::vector<uint32_t>>> bands_;
};

/// "exact-prefix", "minhash" or "kept".
const char *dedupMethodName(Deduplicator::Method method);

} // namespace fusion::rt::data
