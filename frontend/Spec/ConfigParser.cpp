//===- ConfigParser.cpp - YAML config file to Config ----------------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// Reads a config with llvm::yaml::Stream over an llvm::SourceMgr and fills a
// Config through the key table. Diagnostics (ours and the YAML scanner's) are
// recorded while the stream is walked and replayed through the caller's
// SourceMgr afterwards, so that after
// a YAML syntax error only the errors located before it are shown (later
// nodes are artefacts of the failed parse) and the cross-key validation is
// skipped. Arbitrary bytes are accepted: the input is screened for nesting
// deep enough to exhaust the stack in llvm::yaml's recursive node skipping,
// and every node kind, including null and alias nodes, is handled.
//
//===----------------------------------------------------------------------===//

#include "frontend/Spec/ConfigInternal.h"
#include "frontend/Spec/ConfigSpec.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/YAMLParser.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>

using namespace fusion::spec;
using namespace fusion::spec::detail;
using llvm::cast;
using llvm::dyn_cast;
using llvm::dyn_cast_or_null;
using llvm::isa;
using llvm::SMLoc;
using llvm::SMRange;
using llvm::StringRef;
using llvm::Twine;
namespace yaml = llvm::yaml;

namespace fusion::spec::detail {
/// Checks every rule of the key table and MODEL.md on \p config (defined in
/// ConfigValidator.cpp). Rules that involve a key in \p skipKeys (keys whose
/// value could not be read) are skipped to avoid follow-on errors.
void validateConfigImpl(const Config &config, DiagEmitter &diags,
                        const KeyLocations &locations,
                        const llvm::StringSet<> &skipKeys);
} // namespace fusion::spec::detail

namespace {

/// At most this many structural characters (':', '-', '?', '[', '{' outside
/// comment lines) are accepted. Every nesting level of a YAML document needs
/// one of them, so this bounds the recursion depth of llvm::yaml's node
/// skipping; real configs have a few hundred.
constexpr size_t kMaxStructuralChars = 10000;

/// A diagnostic recorded during the walk, replayed once the walk is over.
struct RecordedDiag {
  SMLoc loc;
  llvm::SourceMgr::DiagKind kind;
  std::string message;
  llvm::SmallVector<SMRange, 1> ranges;
  /// Reported by llvm::yaml's scanner/parser (a syntax error).
  bool fromYaml = false;
};

/// Rewrites an llvm::yaml message ("Unexpected token. Expected Key or Block
/// End") in LLVM diagnostic style.
std::string rewriteYamlMessage(StringRef message) {
  std::string text = message.trim().rtrim(".!").str();
  if (!text.empty())
    text[0] = llvm::toLower(text[0]);
  std::string result = "invalid YAML: ";
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '.' && i + 1 < text.size() && text[i + 1] == ' ') {
      result += ";";
      continue;
    }
    result += text[i];
  }
  return result;
}

/// SourceMgr handler that records llvm::yaml's diagnostics.
void recordYamlDiag(const llvm::SMDiagnostic &diag, void *context) {
  RecordedDiag record;
  record.loc = diag.getLoc();
  record.kind = diag.getKind();
  record.message = rewriteYamlMessage(diag.getMessage());
  record.fromYaml = true;
  static_cast<std::vector<RecordedDiag> *>(context)->push_back(
      std::move(record));
}

/// Records diagnostics of the walk instead of printing them.
class RecordingEmitter {
public:
  explicit RecordingEmitter(std::vector<RecordedDiag> &records)
      : records(records) {}

  void error(SMLoc loc, const Twine &message, SMRange range = SMRange()) {
    add(loc, llvm::SourceMgr::DK_Error, message, range);
  }
  void note(SMLoc loc, const Twine &message) {
    add(loc, llvm::SourceMgr::DK_Note, message, SMRange());
  }

  /// A position in the record list, for dropOwnSince.
  size_t mark() const { return records.size(); }
  /// Drops our own diagnostics recorded since \p mark, keeping llvm::yaml's.
  void dropOwnSince(size_t mark) {
    auto first = records.begin() + std::min(mark, records.size());
    records.erase(
        std::remove_if(first, records.end(),
                       [](const RecordedDiag &r) { return !r.fromYaml; }),
        records.end());
  }

private:
  void add(SMLoc loc, llvm::SourceMgr::DiagKind kind, const Twine &message,
           SMRange range) {
    RecordedDiag record;
    record.loc = loc;
    record.kind = kind;
    record.message = message.str();
    if (range.isValid())
      record.ranges.push_back(range);
    records.push_back(std::move(record));
  }

  std::vector<RecordedDiag> &records;
};

/// Short description of a node for "got ..." messages.
std::string describeNode(yaml::Node *node) {
  if (!node)
    return "nothing";
  switch (node->getType()) {
  case yaml::Node::NK_Null:
    return "nothing";
  case yaml::Node::NK_Scalar: {
    StringRef raw = cast<yaml::ScalarNode>(node)->getRawValue().trim();
    if (raw.size() > 40)
      return ("'" + raw.take_front(37) + "...'").str();
    return ("'" + raw + "'").str();
  }
  case yaml::Node::NK_BlockScalar:
    return "a block scalar";
  case yaml::Node::NK_KeyValue:
    return "a key/value pair";
  case yaml::Node::NK_Mapping:
    return "a mapping";
  case yaml::Node::NK_Sequence:
    return "a list";
  case yaml::Node::NK_Alias:
    return "an alias";
  }
  return "an unknown node";
}

bool isQuoted(yaml::ScalarNode *scalar) {
  StringRef raw = scalar->getRawValue();
  return !raw.empty() && (raw.front() == '"' || raw.front() == '\'');
}

/// The text of a plain scalar. The raw value of a plain scalar followed by a
/// comment keeps the spaces before the '#'.
StringRef plainText(yaml::ScalarNode *scalar) {
  return scalar->getRawValue().trim();
}

/// Walks the YAML tree and fills the config through the key table.
class ConfigReader {
public:
  ConfigReader(std::vector<RecordedDiag> &records, ParsedConfig &result,
               llvm::StringSet<> &failedKeys, SMLoc bufferStart)
      : diags(records), result(result), failedKeys(failedKeys),
        bufferStart(bufferStart) {}

  void readStream(yaml::Stream &stream);

private:
  /// The source range of \p node. llvm::yaml starts a flow collection at
  /// its first entry (the '[' or '{' is consumed before the node is made);
  /// this moves the start back to the bracket.
  SMRange rangeOf(yaml::Node *node) const {
    if (!node)
      return SMRange();
    SMRange range = node->getSourceRange();
    if (auto *alias = dyn_cast<yaml::AliasNode>(node)) {
      // The alias token is consumed before the node is made, too.
      StringRef name = alias->getName();
      return SMRange(SMLoc::getFromPointer(name.data() - 1),
                     SMLoc::getFromPointer(name.end()));
    }
    if (!isa<yaml::SequenceNode, yaml::MappingNode>(node) || !range.isValid())
      return range;
    const char *begin = bufferStart.getPointer();
    const char *p = range.Start.getPointer();
    while (p > begin && StringRef(" \t\r\n").contains(p[-1]))
      --p;
    if (p > begin && (p[-1] == '[' || p[-1] == '{'))
      range.Start = SMLoc::getFromPointer(p - 1);
    return range;
  }
  SMLoc locOf(yaml::Node *node) const { return rangeOf(node).Start; }

  void readTop(yaml::MappingNode *top);
  void readSection(Section section, yaml::MappingNode *map);
  /// Reads \p value into the field of \p key; false after a type error.
  bool readValue(const KeyInfo &key, SMLoc keyLoc, yaml::Node *value,
                 KeyLocation &location);
  /// Reads the name of a mapping key; reports and returns nullopt if the key
  /// is not a scalar.
  std::optional<std::string> readKeyName(yaml::Node *keyNode, SMLoc fallback,
                                         StringRef what);
  /// Reads a scalar (plain, quoted or block) as text.
  std::optional<std::string> readScalarText(yaml::Node *node);

  void reportUnknownSection(StringRef name, SMLoc loc, SMRange range);
  void reportUnknownKey(Section section, StringRef name, SMLoc loc,
                        SMRange range);
  void reportTypeError(StringRef qualified, SMLoc keyLoc, yaml::Node *value,
                       StringRef expected);

  /// Converters for one scalar node; report and return false on error.
  bool readInteger(StringRef what, SMLoc keyLoc, yaml::Node *node,
                   int64_t &out);
  bool readNumber(StringRef what, SMLoc keyLoc, yaml::Node *node, double &out);
  bool readBool(StringRef what, SMLoc keyLoc, yaml::Node *node, bool &out);
  bool readString(StringRef what, SMLoc keyLoc, yaml::Node *node,
                  std::string &out);

  RecordingEmitter diags;
  ParsedConfig &result;
  llvm::StringSet<> &failedKeys;
  SMLoc bufferStart;
};

} // namespace

void ConfigReader::readStream(yaml::Stream &stream) {
  yaml::document_iterator document = stream.begin();
  if (document == stream.end())
    return;
  yaml::Node *root = document->getRoot();
  if (root && !stream.failed()) {
    if (isa<yaml::NullNode>(root)) {
      diags.error(bufferStart, "config is empty; expected a mapping with "
                               "sections 'model', 'training', 'data' and "
                               "'distributed'");
    } else if (auto *top = dyn_cast<yaml::MappingNode>(root)) {
      readTop(top);
    } else {
      diags.error(locOf(root),
                  "expected a mapping with sections 'model', 'training', "
                  "'data' and 'distributed' at the top level, got " +
                      describeNode(root),
                  rangeOf(root));
    }
  }
  // Consume the rest of the document (this reports syntax errors in parts
  // that were not walked) and reject further documents.
  ++document;
  if (document != stream.end() && !stream.failed()) {
    yaml::Node *next = document->getRoot();
    if (next && !stream.failed())
      diags.error(locOf(next), "expected a single YAML document in a config, "
                               "found a second one");
  }
}

std::optional<std::string> ConfigReader::readScalarText(yaml::Node *node) {
  if (auto *scalar = dyn_cast_or_null<yaml::ScalarNode>(node)) {
    llvm::SmallString<64> storage;
    return scalar->getValue(storage).str();
  }
  if (auto *block = dyn_cast_or_null<yaml::BlockScalarNode>(node))
    return block->getValue().str();
  return std::nullopt;
}

std::optional<std::string>
ConfigReader::readKeyName(yaml::Node *keyNode, SMLoc fallback, StringRef what) {
  if (auto *scalar = dyn_cast_or_null<yaml::ScalarNode>(keyNode)) {
    llvm::SmallString<64> storage;
    return scalar->getValue(storage).str();
  }
  SMLoc loc =
      keyNode && !isa<yaml::NullNode>(keyNode) ? locOf(keyNode) : fallback;
  diags.error(loc, "expected " + what + " name, got " + describeNode(keyNode));
  return std::nullopt;
}

void ConfigReader::reportUnknownSection(StringRef name, SMLoc loc,
                                        SMRange range) {
  std::vector<std::string> sections;
  for (Section section : getAllSections())
    sections.push_back(getSectionName(section).str());
  std::string closest = getClosestMatch(name, sections);
  if (!closest.empty()) {
    diags.error(
        loc, "unknown section '" + name + "'; did you mean '" + closest + "'?",
        range);
    return;
  }
  for (Section section : getAllSections()) {
    if (lookupConfigKey(section, name)) {
      diags.error(loc,
                  "unknown section '" + name + "'; '" + name +
                      "' is a key of section '" + getSectionName(section) +
                      "' and must be indented under it",
                  range);
      return;
    }
  }
  diags.error(loc,
              "unknown section '" + name +
                  "'; expected one of 'model', 'training', 'data', "
                  "'distributed'",
              range);
}

void ConfigReader::reportUnknownKey(Section section, StringRef name, SMLoc loc,
                                    SMRange range) {
  StringRef sectionName = getSectionName(section);
  std::vector<std::string> candidates;
  for (const KeyInfo &key : getConfigKeys())
    if (key.section == section)
      candidates.push_back(key.name);
  for (const KeyAlias &alias : getConfigKeyAliases())
    if (alias.section == section)
      candidates.push_back(alias.alias);
  std::string closest = getClosestMatch(name, candidates);
  if (!closest.empty()) {
    diags.error(loc,
                "unknown key '" + name + "' in section '" + sectionName +
                    "'; did you mean '" + closest + "'?",
                range);
    return;
  }
  for (Section other : getAllSections()) {
    if (other != section && lookupConfigKey(other, name)) {
      diags.error(loc,
                  "unknown key '" + name + "' in section '" + sectionName +
                      "'; '" + name + "' belongs in section '" +
                      getSectionName(other) + "'",
                  range);
      return;
    }
  }
  diags.error(loc,
              "unknown key '" + name + "' in section '" + sectionName + "'",
              range);
}

void ConfigReader::readTop(yaml::MappingNode *top) {
  llvm::StringMap<SMLoc> seen;
  for (yaml::KeyValueNode &entry : *top) {
    yaml::Node *keyNode = entry.getKey();
    SMLoc entryLoc = locOf(&entry);
    std::optional<std::string> name =
        readKeyName(keyNode, entryLoc, "a section");
    // getValue() parses the value; the mapping iterator skips what we leave.
    yaml::Node *value = entry.getValue();
    if (!name || !value)
      continue;
    SMLoc keyLoc = locOf(keyNode);
    SMRange keyRange = rangeOf(keyNode);
    std::optional<Section> section;
    for (Section candidate : getAllSections())
      if (getSectionName(candidate) == *name)
        section = candidate;
    if (!section) {
      reportUnknownSection(*name, keyLoc, keyRange);
      continue;
    }
    auto [it, inserted] = seen.try_emplace(*name, keyLoc);
    if (!inserted) {
      diags.error(keyLoc, "duplicate section '" + *name + "'", keyRange);
      diags.note(it->second, "section '" + *name + "' first defined here");
      continue;
    }
    KeyLocation location;
    location.key = keyRange;
    location.value = rangeOf(value);
    result.locations.set(*name, location);
    if (isa<yaml::NullNode>(value))
      continue; // An empty section keeps every default.
    if (auto *map = dyn_cast<yaml::MappingNode>(value)) {
      readSection(*section, map);
      continue;
    }
    size_t mark = diags.mark();
    diags.error(locOf(value),
                "section '" + *name +
                    "' must be a mapping of keys to values, got " +
                    describeNode(value),
                rangeOf(value));
    // If the value is malformed YAML, the syntax error explains it.
    value->skip();
    if (value->failed())
      diags.dropOwnSince(mark);
  }
}

void ConfigReader::readSection(Section section, yaml::MappingNode *map) {
  StringRef sectionName = getSectionName(section);
  llvm::StringMap<std::pair<SMLoc, std::string>> seen;
  for (yaml::KeyValueNode &entry : *map) {
    yaml::Node *keyNode = entry.getKey();
    SMLoc entryLoc = locOf(&entry);
    std::optional<std::string> name = readKeyName(keyNode, entryLoc, "a key");
    yaml::Node *value = entry.getValue();
    if (!name || !value)
      continue;
    SMLoc keyLoc = locOf(keyNode);
    SMRange keyRange = rangeOf(keyNode);

    const KeyInfo *key = lookupConfigKey(section, *name);
    bool isHint = false;
    if (!key)
      for (const HintPrefix &prefix : getConfigHintPrefixes())
        if (prefix.section == section &&
            StringRef(*name).starts_with(prefix.prefix))
          isHint = true;
    if (!key && !isHint) {
      reportUnknownKey(section, *name, keyLoc, keyRange);
      continue;
    }

    std::string canonical = key ? std::string(key->name) : *name;
    auto [it, inserted] = seen.try_emplace(canonical, keyLoc, *name);
    if (!inserted) {
      std::string spelled =
          it->second.second == *name
              ? "'" + *name + "'"
              : "'" + *name + "' (same key as '" + it->second.second + "')";
      diags.error(keyLoc,
                  "duplicate key " + spelled + " in section '" + sectionName +
                      "'",
                  keyRange);
      diags.note(it->second.first,
                 "'" + it->second.second + "' first defined here");
      continue;
    }

    std::string qualified = (sectionName + "." + canonical).str();
    KeyLocation location;
    location.key = keyRange;
    location.value = rangeOf(value);
    if (isa<yaml::NullNode>(value))
      location.value = keyRange;

    bool ok = true;
    size_t mark = diags.mark();
    if (isHint) {
      std::optional<std::string> text = readScalarText(value);
      if (!text) {
        reportTypeError(qualified, keyLoc, value, "a scalar value");
        ok = false;
      } else {
        HintList &hints = section == Section::Training
                              ? result.config.training.loggingHints
                              : result.config.distributed.runtimeHints;
        hints.emplace_back(*name, *text);
      }
    } else {
      ok = readValue(*key, keyLoc, value, location);
    }
    // Consume the whole value: if it is malformed YAML, the syntax error
    // explains it and what we said about it is an artefact.
    value->skip();
    if (value->failed())
      diags.dropOwnSince(mark);
    if (!ok)
      failedKeys.insert(qualified);
    result.locations.set(qualified, location);
  }
}

void ConfigReader::reportTypeError(StringRef qualified, SMLoc keyLoc,
                                   yaml::Node *value, StringRef expected) {
  if (!value || isa<yaml::NullNode>(value)) {
    diags.error(keyLoc, qualified + " has no value; expected " + expected);
    return;
  }
  if (isa<yaml::AliasNode>(value)) {
    diags.error(locOf(value),
                "YAML aliases are not supported in configs (" + qualified + ")",
                rangeOf(value));
    return;
  }
  std::string got = describeNode(value);
  if (auto *scalar = dyn_cast<yaml::ScalarNode>(value))
    if (isQuoted(scalar))
      got = "the quoted string " + scalar->getRawValue().str();
  diags.error(locOf(value), qualified + " expects " + expected + ", got " + got,
              rangeOf(value));
}

bool ConfigReader::readInteger(StringRef what, SMLoc keyLoc, yaml::Node *node,
                               int64_t &out) {
  auto *scalar = dyn_cast_or_null<yaml::ScalarNode>(node);
  if (!scalar || isQuoted(scalar)) {
    reportTypeError(what, keyLoc, node, "an integer");
    return false;
  }
  switch (parseIntegerText(plainText(scalar), out)) {
  case IntegerParse::Ok:
    return true;
  case IntegerParse::OutOfRange:
    diags.error(locOf(node),
                what + " (" + plainText(scalar) +
                    ") does not fit in a 64-bit integer",
                rangeOf(node));
    return false;
  case IntegerParse::NotAnInteger:
    break;
  }
  reportTypeError(what, keyLoc, node, "an integer");
  return false;
}

bool ConfigReader::readNumber(StringRef what, SMLoc keyLoc, yaml::Node *node,
                              double &out) {
  auto *scalar = dyn_cast_or_null<yaml::ScalarNode>(node);
  if (!scalar || isQuoted(scalar) || !parseNumberText(plainText(scalar), out)) {
    reportTypeError(what, keyLoc, node, "a finite number");
    return false;
  }
  return true;
}

bool ConfigReader::readBool(StringRef what, SMLoc keyLoc, yaml::Node *node,
                            bool &out) {
  auto *scalar = dyn_cast_or_null<yaml::ScalarNode>(node);
  std::optional<bool> value;
  if (scalar && !isQuoted(scalar))
    value = parseBoolText(plainText(scalar));
  if (!value) {
    reportTypeError(what, keyLoc, node, "true or false");
    return false;
  }
  out = *value;
  return true;
}

bool ConfigReader::readString(StringRef what, SMLoc keyLoc, yaml::Node *node,
                              std::string &out) {
  std::optional<std::string> text = readScalarText(node);
  if (!text) {
    reportTypeError(what, keyLoc, node, "a string");
    return false;
  }
  out = std::move(*text);
  return true;
}

bool ConfigReader::readValue(const KeyInfo &key, SMLoc keyLoc,
                             yaml::Node *value, KeyLocation &location) {
  std::string qualified = key.getQualifiedName();
  FieldRef field = key.field(result.config);

  auto elementName = [&](size_t index) {
    return qualified + "[" + std::to_string(index) + "]";
  };

  switch (key.type) {
  case ValueType::Integer: {
    int64_t v = 0;
    if (!readInteger(qualified, keyLoc, value, v))
      return false;
    if (auto **p = std::get_if<int64_t *>(&field))
      **p = v;
    else if (auto **p = std::get_if<std::optional<int64_t> *>(&field))
      **p = v;
    return true;
  }
  case ValueType::Number: {
    double v = 0.0;
    if (!readNumber(qualified, keyLoc, value, v))
      return false;
    if (auto **p = std::get_if<double *>(&field))
      **p = v;
    else if (auto **p = std::get_if<std::optional<double> *>(&field))
      **p = v;
    return true;
  }
  case ValueType::Boolean: {
    bool v = false;
    if (!readBool(qualified, keyLoc, value, v))
      return false;
    if (auto **p = std::get_if<bool *>(&field))
      **p = v;
    return true;
  }
  case ValueType::String: {
    std::string v;
    if (!readString(qualified, keyLoc, value, v))
      return false;
    if (auto **p = std::get_if<std::string *>(&field))
      **p = std::move(v);
    else if (auto **p = std::get_if<std::optional<std::string> *>(&field))
      **p = std::move(v);
    return true;
  }
  case ValueType::Hint: {
    std::optional<std::string> text = readScalarText(value);
    if (!text) {
      reportTypeError(qualified, keyLoc, value, "a scalar value");
      return false;
    }
    if (auto **p = std::get_if<HintList *>(&field))
      (*p)->emplace_back(key.name, std::move(*text));
    return true;
  }
  case ValueType::NumberList:
  case ValueType::StringList: {
    auto *sequence = dyn_cast_or_null<yaml::SequenceNode>(value);
    bool numbers = key.type == ValueType::NumberList;
    if (!sequence) {
      reportTypeError(qualified, keyLoc, value,
                      numbers ? "a list of numbers" : "a list of strings");
      return false;
    }
    std::vector<double> numberItems;
    std::vector<std::string> stringItems;
    bool ok = true;
    size_t index = 0;
    for (yaml::Node &item : *sequence) {
      location.elements.push_back(rangeOf(&item));
      std::string name = elementName(index++);
      if (numbers) {
        double v = 0.0;
        if (readNumber(name, locOf(&item), &item, v))
          numberItems.push_back(v);
        else
          ok = false;
      } else {
        std::string v;
        if (readString(name, locOf(&item), &item, v))
          stringItems.push_back(std::move(v));
        else
          ok = false;
      }
    }
    if (!ok)
      return false;
    if (auto **p = std::get_if<std::vector<double> *>(&field))
      **p = std::move(numberItems);
    else if (auto **p = std::get_if<std::vector<std::string> *>(&field))
      **p = std::move(stringItems);
    return true;
  }
  case ValueType::SourceWeights: {
    auto *map = dyn_cast_or_null<yaml::MappingNode>(value);
    if (!map) {
      reportTypeError(qualified, keyLoc, value,
                      "a mapping of source names to weights");
      return false;
    }
    SourceWeights weights;
    llvm::StringMap<SMLoc> seen;
    bool ok = true;
    for (yaml::KeyValueNode &entry : *map) {
      std::optional<std::string> source =
          readKeyName(entry.getKey(), locOf(&entry), "a source");
      yaml::Node *weightNode = entry.getValue();
      if (!source || !weightNode) {
        ok = false;
        continue;
      }
      SMLoc sourceLoc = locOf(entry.getKey());
      auto [it, inserted] = seen.try_emplace(*source, sourceLoc);
      if (!inserted) {
        diags.error(sourceLoc,
                    "duplicate source '" + *source + "' in " + qualified);
        diags.note(it->second, "'" + *source + "' first defined here");
        ok = false;
        continue;
      }
      location.elements.push_back(rangeOf(weightNode));
      double weight = 0.0;
      if (!readNumber(qualified + "." + *source, sourceLoc, weightNode,
                      weight)) {
        ok = false;
        continue;
      }
      weights.push_back({*source, weight});
    }
    if (!ok)
      return false;
    if (auto **p = std::get_if<SourceWeights *>(&field))
      **p = std::move(weights);
    return true;
  }
  }
  return false;
}

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

/// Returns the first structural character past kMaxStructuralChars, or
/// nullptr if the buffer is within the limit.
static const char *findExcessiveStructure(StringRef text) {
  size_t count = 0;
  bool lineStart = true, commentLine = false;
  for (const char &c : text) {
    if (c == '\n' || c == '\r') {
      lineStart = true;
      commentLine = false;
      continue;
    }
    if (lineStart && c != ' ' && c != '\t') {
      lineStart = false;
      commentLine = c == '#';
    }
    if (commentLine)
      continue;
    if (c == ':' || c == '-' || c == '?' || c == '[' || c == '{')
      if (++count > kMaxStructuralChars)
        return &c;
  }
  return nullptr;
}

std::optional<ParsedConfig>
fusion::spec::parseConfig(llvm::SourceMgr &sourceMgr, unsigned bufferId) {
  ParsedConfig result;
  result.bufferId = bufferId;
  const llvm::MemoryBuffer *buffer = sourceMgr.getMemoryBuffer(bufferId);
  StringRef text = buffer->getBuffer();
  SMLoc bufferStart = SMLoc::getFromPointer(text.data());

  std::vector<RecordedDiag> records;
  llvm::StringSet<> failedKeys;
  bool walked = false;
  if (text.trim().empty()) {
    RecordingEmitter(records).error(
        bufferStart, "config is empty; expected a mapping with sections "
                     "'model', 'training', 'data' and 'distributed'");
  } else if (const char *where = findExcessiveStructure(text)) {
    RecordingEmitter(records).error(
        SMLoc::getFromPointer(where),
        "config is too deeply structured to be a FusionLLM config (more "
        "than " +
            Twine(kMaxStructuralChars) +
            " of ':', '-', '?', '[', '{' outside comment lines)");
  } else {
    // llvm::yaml gets a SourceMgr of its own (its scanner registers the
    // buffer there again); its locations point into the same memory, so
    // they are valid in the caller's SourceMgr when replayed.
    llvm::SourceMgr yamlSourceMgr;
    yamlSourceMgr.setDiagHandler(&recordYamlDiag, &records);
    yaml::Stream stream(buffer->getMemBufferRef(), yamlSourceMgr,
                        /*ShowColors=*/false);
    ConfigReader reader(records, result, failedKeys, bufferStart);
    reader.readStream(stream);
    walked = true;
  }

  // After a syntax error, nodes past the error are artefacts: keep only the
  // diagnostics located before it (plus the syntax error itself).
  const char *syntaxError = nullptr;
  for (const RecordedDiag &record : records)
    if (record.fromYaml && record.kind == llvm::SourceMgr::DK_Error) {
      syntaxError = record.loc.getPointer();
      break;
    }

  DiagEmitter diags(sourceMgr, buffer->getBufferIdentifier());
  bool keepNotes = true;
  for (const RecordedDiag &record : records) {
    if (record.kind == llvm::SourceMgr::DK_Note) {
      if (keepNotes)
        diags.note(record.loc, record.message, record.ranges);
      continue;
    }
    keepNotes = record.fromYaml || !syntaxError ||
                (record.loc.isValid() && record.loc.getPointer() < syntaxError);
    if (!keepNotes)
      continue;
    if (record.kind == llvm::SourceMgr::DK_Error)
      diags.error(record.loc, record.message, record.ranges);
    else if (record.kind == llvm::SourceMgr::DK_Warning)
      diags.warning(record.loc, record.message, record.ranges);
    else
      diags.note(record.loc, record.message, record.ranges);
  }

  if (walked && !syntaxError)
    validateConfigImpl(result.config, diags, result.locations, failedKeys);
  if (diags.getNumErrors() > 0 || syntaxError)
    return std::nullopt;
  return result;
}

std::optional<ParsedConfig>
fusion::spec::parseConfigBuffer(StringRef buffer, StringRef bufferName,
                                llvm::SourceMgr &sourceMgr) {
  unsigned id = sourceMgr.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(buffer, bufferName), SMLoc());
  return parseConfig(sourceMgr, id);
}

std::optional<ParsedConfig>
fusion::spec::parseConfigFile(StringRef path, llvm::SourceMgr &sourceMgr) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> file =
      llvm::MemoryBuffer::getFileOrSTDIN(path, /*IsText=*/true);
  if (std::error_code error = file.getError()) {
    // No buffer to point into: name the file as "path: error: ...".
    llvm::SMDiagnostic diag(path, llvm::SourceMgr::DK_Error,
                            "cannot read config: " + error.message());
    sourceMgr.PrintMessage(llvm::errs(), diag);
    return std::nullopt;
  }
  unsigned id = sourceMgr.AddNewSourceBuffer(std::move(*file), SMLoc());
  return parseConfig(sourceMgr, id);
}
