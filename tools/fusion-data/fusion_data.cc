//===- fusion_data.cc - Write and inspect fusion_shards -------------------===//
//
// `fusion-data pack` turns tokenised documents (text files of whitespace-separated token
// ids, one document per line) into fusion_shards: rows packed per MODEL.md §14.4, shard
// files with the §14.1 header, and manifest.jsonl entries, merged into the directory's
// existing manifest so several sources can share one directory. `fusion-data inspect`
// checks a manifest the way the loader does and prints per-shard and per-source statistics.
// Tokenisation itself is out of scope: the input is already ids. Usage errors exit 2, data
// errors exit 1, each as one line on stderr.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/plan.h"

#include <algorithm>
#include <cctype>
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

Writes and inspects fusion_shards (MODEL.md §14.1, packing §14.4).

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
  else if (command.empty())
    failure = usage("missing the command (pack or inspect)");
  else
    failure = usage("unknown command '" + command + "' (expected pack or inspect)");
  std::fflush(stdout);
  if (failure) {
    std::fprintf(stderr, "fusion-data: error: %s\n", failure->message.c_str());
    return failure->exitCode;
  }
  return kExitOk;
}
