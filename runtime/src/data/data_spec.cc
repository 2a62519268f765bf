//===- data_spec.cc - Parsing the --data SPEC -----------------------------===//
//
// One string selects the data of a run: `FORMAT:MAIN,KEY=VALUE,...`. The grammar is small and
// strict: every key belongs to a format, appears at most once and has a checked value, so a
// typo is a one-line error instead of silently different data.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/plan.h"

#include <cmath>
#include <cstdlib>

namespace fusion::rt::data {

const char *const kDataSpecHelp =
    R"(  synthetic[:KEY=VALUE,...]       the §14.3 generator: row b = (a + d*i) mod V (needs V)
  shards:MANIFEST[,KEY=VALUE...]  fusion_shards (§14.1); MANIFEST: manifest.jsonl or its dir
  bin:GLOB[,KEY=VALUE...]         nanoGPT/llm.c .bin files (§14.2), matches in byte order
keys:
  seed=S        RNG seed, decimal or 0x-hex (default 1234); synthetic and shards
  pad=ID        pad_token_id, -1 = none (default -1); must equal the shard headers' pad id
  eos=ID        eos_token_id, -1 = none (default -1); with pad it selects the ignore rule
  sampling=M    shards: mixture (default) or sequential; bin is always sequential
  mix=SRC:W+SRC:W...
                shards mixture weights, renormalised over the sources present (default:
                the seed data_mix fineweb_edu:0.6+finemath:0.15+stack_edu:0.15+
                cosmopedia:0.05+openr1_math:0.05)
  curriculum=S  shards mixture: two-stage curriculum switching at optimizer step S (0 = off,
                the default): steps s < S draw sources with stage1, s >= S with stage2
  stage1=SRC:W+..., stage2=SRC:W+...
                the stage weights (default MODEL.md §17: fineweb_edu:0.7+stack_edu:0.15+
                openr1_math:0.05+fineweb2:0.1, then fineweb_edu:0.3+stack_edu:0.25+
                openr1_math:0.25+fineweb2:0.1+smollm_corpus:0.1)
example: shards:data/shards/manifest.jsonl,pad=151643,eos=151643,mix=fineweb_edu:1
Paths and globs cannot contain ','.)";

const char *formatName(Format format) {
  switch (format) {
  case Format::kSynthetic:
    return "synthetic";
  case Format::kFusionShards:
    return "fusion_shards";
  case Format::kBin:
    return "bin";
  }
  return "unknown";
}

const char *samplingName(Sampling sampling) {
  return sampling == Sampling::kMixture ? "mixture" : "sequential";
}

std::vector<SourceWeight> defaultDataMix() {
  return {{"fineweb_edu", 0.60},
          {"finemath", 0.15},
          {"stack_edu", 0.15},
          {"cosmopedia", 0.05},
          {"openr1_math", 0.05}};
}

std::vector<SourceWeight> defaultCurriculumStage1() {
  return {{"fineweb_edu", 0.70}, {"stack_edu", 0.15}, {"openr1_math", 0.05}, {"fineweb2", 0.10}};
}

std::vector<SourceWeight> defaultCurriculumStage2() {
  return {{"fineweb_edu", 0.30},
          {"stack_edu", 0.25},
          {"openr1_math", 0.25},
          {"fineweb2", 0.10},
          {"smollm_corpus", 0.10}};
}

int curriculumStage(const DataSpec &spec, uint64_t step) {
  if (spec.curriculumSwitchStep == 0)
    return 0;
  return step < spec.curriculumSwitchStep ? 1 : 2;
}

const std::vector<SourceWeight> &activeMix(const DataSpec &spec, uint64_t step) {
  switch (curriculumStage(spec, step)) {
  case 1:
    return spec.stage1;
  case 2:
    return spec.stage2;
  default:
    return spec.mix;
  }
}

namespace {

/// A token id: -1 or 0..2^31-1, decimal.
std::optional<int32_t> parseTokenId(std::string_view text) {
  if (text == "-1")
    return -1;
  if (text.empty() || text.size() > 10)
    return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value > INT32_MAX)
    return std::nullopt;
  return static_cast<int32_t>(value);
}

/// A 64-bit unsigned integer, decimal or 0x-hex.
std::optional<uint64_t> parseSeed(std::string_view text) {
  bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  if (hex)
    text.remove_prefix(2);
  if (text.empty())
    return std::nullopt;
  uint64_t base = hex ? 16 : 10;
  uint64_t value = 0;
  for (char c : text) {
    uint64_t digit;
    if (c >= '0' && c <= '9')
      digit = static_cast<uint64_t>(c - '0');
    else if (hex && c >= 'a' && c <= 'f')
      digit = static_cast<uint64_t>(c - 'a' + 10);
    else if (hex && c >= 'A' && c <= 'F')
      digit = static_cast<uint64_t>(c - 'A' + 10);
    else
      return std::nullopt;
    if (value > (UINT64_MAX - digit) / base)
      return std::nullopt;
    value = value * base + digit;
  }
  return value;
}

/// A finite non-negative decimal weight (no sign, no exponent letters beyond strtod's).
std::optional<double> parseWeight(const std::string &text) {
  if (text.empty() || !(text[0] == '.' || (text[0] >= '0' && text[0] <= '9')))
    return std::nullopt;
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value) || value < 0)
    return std::nullopt;
  return value;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos)
      return parts;
    start = end + 1;
  }
}

} // namespace

StatusOr<DataSpec> parseDataSpec(std::string_view text) {
  auto fail = [&](const std::string &message) {
    return Status(StatusCode::kInvalidArgument, "data spec " + rt::quoted(text) + ": " + message);
  };
  DataSpec spec;
  size_t colon = text.find(':');
  std::string_view format = text.substr(0, colon);
  std::string_view rest = colon == std::string_view::npos ? "" : text.substr(colon + 1);
  if (format == "synthetic")
    spec.format = Format::kSynthetic;
  else if (format == "shards" || format == "fusion_shards")
    spec.format = Format::kFusionShards;
  else if (format == "bin")
    spec.format = Format::kBin;
  else
    return fail("unknown format " + rt::quoted(format) +
                " (expected synthetic:..., shards:MANIFEST... or bin:GLOB...)");
  spec.sampling = spec.format == Format::kBin ? Sampling::kSequential : Sampling::kMixture;

  std::vector<std::string_view> items;
  if (!rest.empty() || colon != std::string_view::npos)
    items = split(rest, ',');
  size_t first = 0;
  if (spec.format != Format::kSynthetic) {
    if (items.empty() || items[0].empty())
      return fail(std::string(spec.format == Format::kBin ? "bin needs a file glob (bin:GLOB)"
                                                          : "shards needs a manifest path "
                                                            "(shards:PATH/manifest.jsonl)"));
    spec.path = std::string(items[0]);
    first = 1;
  } else if (colon != std::string_view::npos && rest.empty()) {
    return fail("nothing after 'synthetic:' (write 'synthetic' or 'synthetic:seed=S')");
  }

  std::vector<std::string_view> allowed;
  switch (spec.format) {
  case Format::kSynthetic:
    allowed = {"seed", "pad", "eos"};
    break;
  case Format::kFusionShards:
    allowed = {"seed", "pad", "eos", "sampling", "mix", "curriculum", "stage1", "stage2"};
    break;
  case Format::kBin:
    allowed = {"pad", "eos"};
    break;
  }
  std::vector<std::string_view> seen;
  bool mixGiven = false, stage1Given = false, stage2Given = false, curriculumGiven = false;
  // SRC:W+SRC:W... into `out` (`key` names the option in messages).
  auto parseMix = [&](const std::string &key, const std::string &value,
                      std::vector<SourceWeight> &out) -> Status {
    for (std::string_view entry : split(value, '+')) {
      size_t sep = entry.rfind(':');
      if (sep == std::string_view::npos || sep == 0)
        return fail(key + " entries are SOURCE:WEIGHT joined by '+', got " + rt::quoted(entry));
      std::string source(entry.substr(0, sep));
      std::optional<double> weight = parseWeight(std::string(entry.substr(sep + 1)));
      if (!weight)
        return fail(key + " weight of " + rt::quoted(source) +
                    " must be a finite non-negative number, got " +
                    rt::quoted(entry.substr(sep + 1)));
      for (const SourceWeight &existing : out)
        if (existing.source == source)
          return fail(key + " lists source " + rt::quoted(source) + " twice");
      out.push_back({source, *weight});
    }
    double total = 0;
    for (const SourceWeight &entry : out)
      total += entry.weight;
    if (!(total > 0))
      return fail(key + " weights sum to 0");
    return Status::okStatus();
  };
  for (size_t i = first; i < items.size(); ++i) {
    std::string_view item = items[i];
    size_t eq = item.find('=');
    if (item.empty())
      return fail("empty option (stray ',')");
    if (eq == std::string_view::npos || eq == 0)
      return fail("expected KEY=VALUE, got " + rt::quoted(item));
    std::string_view key = item.substr(0, eq);
    std::string value(item.substr(eq + 1));
    bool known = false;
    for (std::string_view a : allowed)
      known = known || a == key;
    if (!known) {
      std::string list;
      for (std::string_view a : allowed)
        list += (list.empty() ? "" : ", ") + std::string(a);
      return fail("unknown key " + rt::quoted(key) + " for " + formatName(spec.format) +
                  " (keys: " + list + ")");
    }
    for (std::string_view s : seen)
      if (s == key)
        return fail("key " + rt::quoted(key) + " given twice");
    seen.push_back(key);

    if (key == "seed") {
      std::optional<uint64_t> seed = parseSeed(value);
      if (!seed)
        return fail("seed must be a 64-bit unsigned integer (decimal or 0x-hex), got " +
                    rt::quoted(value));
      spec.seed = *seed;
    } else if (key == "pad" || key == "eos") {
      std::optional<int32_t> id = parseTokenId(value);
      if (!id)
        return fail(std::string(key) + " must be -1 or a token id in [0, 2^31), got " +
                    rt::quoted(value));
      (key == "pad" ? spec.padId : spec.eosId) = *id;
    } else if (key == "sampling") {
      if (value == "mixture")
        spec.sampling = Sampling::kMixture;
      else if (value == "sequential")
        spec.sampling = Sampling::kSequential;
      else
        return fail("sampling must be mixture or sequential, got " + rt::quoted(value));
    } else if (key == "curriculum") {
      curriculumGiven = true;
      std::optional<uint64_t> step = parseSeed(value);
      if (!step || value.find_first_not_of("0123456789") != std::string::npos)
        return fail("curriculum must be the switch step S_c, a decimal integer (0 = off), "
                    "got " + rt::quoted(value));
      spec.curriculumSwitchStep = *step;
    } else if (key == "stage1" || key == "stage2") {
      (key == "stage1" ? stage1Given : stage2Given) = true;
      FUSION_RETURN_IF_ERROR(
          parseMix(std::string(key), value, key == "stage1" ? spec.stage1 : spec.stage2));
    } else { // mix
      mixGiven = true;
      FUSION_RETURN_IF_ERROR(parseMix("mix", value, spec.mix));
    }
  }
  if (mixGiven && spec.sampling == Sampling::kSequential)
    return fail("mix only applies to sampling=mixture");
  if ((curriculumGiven || stage1Given || stage2Given) && spec.sampling == Sampling::kSequential)
    return fail("curriculum, stage1 and stage2 only apply to sampling=mixture");
  if ((stage1Given || stage2Given) && spec.curriculumSwitchStep == 0)
    return fail(std::string(stage1Given ? "stage1" : "stage2") +
                " needs curriculum=S (the switch step, > 0)");
  if (spec.format == Format::kFusionShards && !mixGiven)
    spec.mix = defaultDataMix();
  if (spec.curriculumSwitchStep > 0) {
    if (!stage1Given)
      spec.stage1 = defaultCurriculumStage1();
    if (!stage2Given)
      spec.stage2 = defaultCurriculumStage2();
  }
  return spec;
}

} // namespace fusion::rt::data
