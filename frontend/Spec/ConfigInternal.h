//===- ConfigInternal.h - Helpers shared by the config sources --*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// Private to frontend/Spec: the scalar converters shared by the YAML parser
// and the key table's defaults (so a default is read exactly like a value in
// a file), number formatting, and the diagnostic emitter used by the parser
// and the validator.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_FRONTEND_SPEC_CONFIGINTERNAL_H
#define FUSION_FRONTEND_SPEC_CONFIGINTERNAL_H

#include "frontend/Spec/ConfigSpec.h"

#include "llvm/ADT/Twine.h"
#include "llvm/Support/SourceMgr.h"

namespace fusion::spec::detail {

/// Result of reading an integer scalar.
enum class IntegerParse { Ok, NotAnInteger, OutOfRange };

/// Reads a decimal integer with optional sign and '_' digit separators
/// (`143_000`).
IntegerParse parseIntegerText(llvm::StringRef text, int64_t &value);

/// Reads a finite real number (decimal, optional fraction and exponent, '_'
/// digit separators). Rejects inf/nan and overflow.
bool parseNumberText(llvm::StringRef text, double &value);

/// Reads `true`/`false` (also `True`, `TRUE`, ...).
std::optional<bool> parseBoolText(llvm::StringRef text);

/// Shortest decimal text that reads back as exactly \p value.
std::string formatNumber(double value);

/// Sets the field of \p key in \p config to the key's default (or clears it
/// when the default is derived from other keys).
void applyDefault(const KeyInfo &key, Config &config);

/// Prints a key's valid range for documentation and messages ("in [0, 1)").
std::string describeRule(const KeyInfo &key);

/// Returns the closest candidate to \p name by edit distance, or an empty
/// string if none is close enough to be a plausible typo.
std::string getClosestMatch(llvm::StringRef name,
                            llvm::ArrayRef<std::string> candidates);

/// Emits diagnostics through a SourceMgr and counts errors. After
/// kMaxErrors errors it reports once that it stops and drops the rest.
class DiagEmitter {
public:
  static constexpr unsigned kMaxErrors = 50;

  /// \p bufferName names unlocated diagnostics ("t.yaml: error: ...").
  explicit DiagEmitter(llvm::SourceMgr &sourceMgr,
                       llvm::StringRef bufferName = "")
      : sourceMgr(sourceMgr), bufferName(bufferName.str()) {}

  void error(llvm::SMLoc loc, const llvm::Twine &message,
             llvm::ArrayRef<llvm::SMRange> ranges = {});
  void warning(llvm::SMLoc loc, const llvm::Twine &message,
               llvm::ArrayRef<llvm::SMRange> ranges = {});
  /// A note belongs to the previous error or warning and is dropped with it.
  void note(llvm::SMLoc loc, const llvm::Twine &message,
            llvm::ArrayRef<llvm::SMRange> ranges = {});

  unsigned getNumErrors() const { return numErrors; }
  llvm::SourceMgr &getSourceMgr() { return sourceMgr; }

private:
  void print(llvm::SMLoc loc, llvm::SourceMgr::DiagKind kind,
             const llvm::Twine &message, llvm::ArrayRef<llvm::SMRange> ranges);
  void emit(llvm::SMLoc loc, llvm::SourceMgr::DiagKind kind,
            const llvm::Twine &message, llvm::ArrayRef<llvm::SMRange> ranges);

  llvm::SourceMgr &sourceMgr;
  std::string bufferName;
  unsigned numErrors = 0;
  bool dropping = false;
  bool droppedLast = false;
};

} // namespace fusion::spec::detail

#endif // FUSION_FRONTEND_SPEC_CONFIGINTERNAL_H
