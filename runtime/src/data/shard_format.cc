//===- shard_format.cc - fusion_shards headers and manifests --------------===//
//
// The on-disk side of MODEL.md §14.1: the 256-byte shard header (encoded here for the
// packer, checked here for the loader and fusion-data inspect) and manifest.jsonl (read with
// the strict flat-object parser, written one object per line). Every check names the file,
// and for manifests the line, so a bad shard set is fixed without a debugger.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/plan.h"

#include "json_lines.h"
#include "token_file.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fusion::rt::data {

namespace fs = std::filesystem;

std::array<uint8_t, kShardHeaderBytes> encodeShardHeader(const ShardHeader &header) {
  std::array<uint8_t, kShardHeaderBytes> bytes{};
  bytes[0] = kShardVersion;
  for (int i = 0; i < 8; ++i)
    bytes[1 + i] = static_cast<uint8_t>(header.numTokens >> (8 * i));
  for (int i = 0; i < 4; ++i)
    bytes[9 + i] = static_cast<uint8_t>(header.packLength >> (8 * i));
  uint32_t pad = static_cast<uint32_t>(header.padId);
  for (int i = 0; i < 4; ++i)
    bytes[13 + i] = static_cast<uint8_t>(pad >> (8 * i));
  return bytes;
}

StatusOr<ShardHeader> readShardHeader(const std::string &path) {
  std::FILE *file = std::fopen(path.c_str(), "rb");
  if (!file)
    return Status(StatusCode::kNotFound, path + ": cannot open shard: " + std::strerror(errno));
  std::error_code error;
  uint64_t fileSize = fs::file_size(path, error);
  if (error) {
    std::fclose(file);
    return Status(StatusCode::kDataLoss, path + ": cannot read the shard size: " + error.message());
  }
  uint8_t bytes[kShardHeaderBytes];
  size_t got = std::fread(bytes, 1, sizeof(bytes), file);
  std::fclose(file);
  if (fileSize < kShardHeaderBytes || got != kShardHeaderBytes)
    return Status(StatusCode::kDataLoss, path + ": truncated shard header (" +
                                             std::to_string(fileSize) +
                                             " bytes; a shard starts with a 256-byte header)");
  if (bytes[0] != kShardVersion)
    return Status(StatusCode::kDataLoss, path + ": shard version " + std::to_string(bytes[0]) +
                                             ", expected " + std::to_string(kShardVersion) +
                                             " (not a fusion_shards file?)");
  for (size_t i = 17; i < kShardHeaderBytes; ++i)
    if (bytes[i] != 0) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", bytes[i]);
      return Status(StatusCode::kDataLoss, path + ": shard header byte " + std::to_string(i) +
                                               " is " + hex + " (bytes 17..255 must be zero)");
    }
  ShardHeader header;
  for (int i = 0; i < 8; ++i)
    header.numTokens |= static_cast<uint64_t>(bytes[1 + i]) << (8 * i);
  for (int i = 0; i < 4; ++i)
    header.packLength |= static_cast<uint32_t>(bytes[9 + i]) << (8 * i);
  uint32_t pad = 0;
  for (int i = 0; i < 4; ++i)
    pad |= static_cast<uint32_t>(bytes[13 + i]) << (8 * i);
  header.padId = static_cast<int32_t>(pad);
  if (header.packLength == 0)
    return Status(StatusCode::kDataLoss, path + ": shard header has pack length 0");
  if (header.padId < -1)
    return Status(StatusCode::kDataLoss, path + ": shard header has pad id " +
                                             std::to_string(header.padId) +
                                             " (must be -1 or a token id)");
  uint64_t payload = fileSize - kShardHeaderBytes;
  unsigned __int128 expected = static_cast<unsigned __int128>(header.numTokens) * 4;
  if (expected > payload)
    return Status(StatusCode::kDataLoss,
                  path + ": truncated shard: the header says " + std::to_string(header.numTokens) +
                      " tokens, the file holds " + std::to_string(payload / 4) +
                      (payload % 4 ? " and a partial token" : "") + " after the header");
  if (expected < payload)
    return Status(StatusCode::kDataLoss,
                  path + ": shard is " + std::to_string(payload - static_cast<uint64_t>(expected)) +
                      " bytes longer than its header's " + std::to_string(header.numTokens) +
                      " tokens");
  return header;
}

StatusOr<ShardStats> computeShardStats(const std::string &path, int32_t eosId) {
  FUSION_ASSIGN_OR_RETURN(ShardHeader header, readShardHeader(path));
  ShardStats stats;
  stats.header = header;
  if (header.numTokens == 0)
    return stats;
  TokenFile file(path, kShardHeaderBytes, header.numTokens, TokenElement::kInt32);
  FUSION_ASSIGN_OR_RETURN(const uint8_t *data, file.data());
  bool padIsEos = eosId != -1 && eosId == header.padId;
  int32_t previous = 0;
  for (uint64_t i = 0; i < header.numTokens; ++i) {
    int32_t id;
    std::memcpy(&id, data + 4 * i, 4);
    bool isPadId = header.padId != -1 && id == header.padId;
    if (isPadId && padIsEos) {
      // pad = eos: the first of a run is a document's EOS, the rest is padding (§14.3).
      ++(i > 0 && previous == id ? stats.padTokens : stats.eosTokens);
    } else if (isPadId) {
      ++stats.padTokens;
    } else {
      if (eosId != -1 && id == eosId)
        ++stats.eosTokens;
      if (id < 0) {
        ++stats.negativeTokens;
      } else {
        if (stats.minId < 0 || id < stats.minId)
          stats.minId = id;
        if (id > stats.maxId)
          stats.maxId = id;
      }
    }
    previous = id;
  }
  return stats;
}

StatusOr<std::vector<ManifestEntry>> readManifest(const std::string &path) {
  std::error_code error;
  if (fs::is_directory(path, error))
    return Status(StatusCode::kInvalidArgument,
                  path + ": is a directory, not a manifest (did you mean " +
                      (fs::path(path) / "manifest.jsonl").string() + "?)");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status(StatusCode::kNotFound, path + ": cannot open manifest: " + std::strerror(errno));
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty())
    dir = ".";

  std::vector<ManifestEntry> entries;
  std::string line;
  size_t lineNumber = 0;
  while (std::getline(in, line)) {
    ++lineNumber;
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    std::string where = path + ":" + std::to_string(lineNumber);
    StatusOr<JsonObject> object = parseFlatJsonObject(line);
    if (!object.ok())
      return Status(StatusCode::kDataLoss, where + ": " + object.status().message());
    ManifestEntry entry;
    entry.line = lineNumber;
    bool havePath = false, haveTokens = false, haveSource = false;
    for (const auto &[key, value] : *object) {
      auto wrongType = [&, &key = key, &value = value](const char *expected) {
        return Status(
            StatusCode::kDataLoss,
            where + ": " + jsonQuote(key) + " must be " + expected + ", got " + value.kindName() +
                (value.kind == JsonValue::Kind::kNumber ? " " + value.text : std::string()));
      };
      if (key == "path" || key == "source" || key == "domain") {
        if (value.kind != JsonValue::Kind::kString)
          return wrongType("a string");
        if (key == "path") {
          if (value.text.empty())
            return Status(StatusCode::kDataLoss, where + ": \"path\" is empty");
          if (value.text.find('\0') != std::string::npos)
            return Status(StatusCode::kDataLoss, where + ": \"path\" contains a NUL byte");
          entry.path = value.text;
          havePath = true;
        } else if (key == "source") {
          if (value.text.empty())
            return Status(StatusCode::kDataLoss, where + ": \"source\" is empty");
          entry.source = value.text;
          haveSource = true;
        } else {
          entry.domain = value.text;
        }
      } else if (key == "n_tokens") {
        std::optional<uint64_t> n = value.asUnsigned();
        if (!n)
          return wrongType("an integer in [0, 2^64)");
        entry.numTokens = *n;
        haveTokens = true;
      } else if (key == "weight" || key == "quality_score") {
        std::optional<double> number = value.asDouble();
        if (!number || !std::isfinite(*number))
          return wrongType("a finite number");
        (key == "weight" ? entry.weight : entry.qualityScore) = *number;
      }
      // Other members are extensions the loader does not need.
    }
    if (!havePath || !haveTokens || !haveSource)
      return Status(StatusCode::kDataLoss, where + ": missing " +
                                               (!havePath     ? "\"path\""
                                                : !haveTokens ? "\"n_tokens\""
                                                              : "\"source\"") +
                                               " (each line needs path, n_tokens and source)");
    fs::path shard(entry.path);
    if (shard.is_absolute()) {
      entry.resolvedPath = shard.string();
    } else {
      fs::path primary = dir / shard;
      fs::path fallback = dir / ".." / shard;
      entry.resolvedPath =
          (!fs::exists(primary, error) && fs::exists(fallback, error) ? fallback : primary)
              .string();
    }
    entries.push_back(std::move(entry));
  }
  if (in.bad())
    return Status(StatusCode::kDataLoss, path + ": read error");
  if (entries.empty())
    return Status(StatusCode::kDataLoss, path + ": the manifest lists no shards");
  return entries;
}

/// A double as JSON: shortest form that round-trips, always with a '.' or exponent.
static std::string jsonNumber(double value) {
  char text[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof(text), "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value)
      break;
  }
  std::string out = text;
  if (out.find_first_of(".eE") == std::string::npos)
    out += ".0";
  return out;
}

std::string formatManifestLine(const ManifestEntry &entry) {
  return "{\"path\": " + jsonQuote(entry.path) +
         ", \"n_tokens\": " + std::to_string(entry.numTokens) +
         ", \"source\": " + jsonQuote(entry.source) + ", \"weight\": " + jsonNumber(entry.weight) +
         ", \"quality_score\": " + jsonNumber(entry.qualityScore) +
         ", \"domain\": " + jsonQuote(entry.domain) + "}";
}

Status writeManifest(const std::string &path, const std::vector<ManifestEntry> &entries) {
  std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out)
      return Status(StatusCode::kUnavailable, temp + ": cannot create: " + std::strerror(errno));
    for (const ManifestEntry &entry : entries)
      out << formatManifestLine(entry) << '\n';
    out.close();
    if (!out)
      return Status(StatusCode::kUnavailable, temp + ": write failed");
  }
  std::error_code error;
  fs::rename(temp, path, error);
  if (error)
    return Status(StatusCode::kUnavailable,
                  "cannot rename " + temp + " to " + path + ": " + error.message());
  return Status::okStatus();
}

} // namespace fusion::rt::data
