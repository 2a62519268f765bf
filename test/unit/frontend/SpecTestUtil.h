//===- SpecTestUtil.h - Helpers for the frontend/Spec unit tests -*- C++
//-*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// Parses config text or files with every diagnostic captured as the first
// line LLVM would print ("file:line:col: error: message"), and locates the
// repository's configs/ directory.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_TEST_UNIT_FRONTEND_SPECTESTUTIL_H
#define FUSION_TEST_UNIT_FRONTEND_SPECTESTUTIL_H

#include "frontend/Spec/ConfigSpec.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fusion::spec::test {

/// The result of one parse: the config (if it parsed) and its diagnostics.
struct ParseOutcome {
  std::optional<ParsedConfig> parsed;
  /// "name:line:col: error: message" (or "error: message" when unlocated).
  std::vector<std::string> diagnostics;
  /// The SourceMgr owns the buffer the locations point into.
  std::unique_ptr<llvm::SourceMgr> sourceMgr;

  bool ok() const { return parsed.has_value(); }
  const Config &config() const { return parsed->config; }

  /// Only the errors.
  std::vector<std::string> errors() const {
    std::vector<std::string> result;
    for (const std::string &d : diagnostics)
      if (d.find(" error: ") != std::string::npos || d.rfind("error: ", 0) == 0)
        result.push_back(d);
    return result;
  }
  std::string joined() const {
    std::string text;
    for (const std::string &d : diagnostics)
      text += d + "\n";
    return text;
  }
};

/// Formats a diagnostic like the first line of SMDiagnostic::print.
inline std::string formatDiagnostic(const llvm::SMDiagnostic &diag) {
  std::string text;
  llvm::raw_string_ostream os(text);
  if (!diag.getFilename().empty()) {
    os << diag.getFilename();
    if (diag.getLineNo() != -1)
      os << ":" << diag.getLineNo() << ":" << diag.getColumnNo() + 1;
    os << ": ";
  }
  switch (diag.getKind()) {
  case llvm::SourceMgr::DK_Error:
    os << "error: ";
    break;
  case llvm::SourceMgr::DK_Warning:
    os << "warning: ";
    break;
  case llvm::SourceMgr::DK_Remark:
    os << "remark: ";
    break;
  case llvm::SourceMgr::DK_Note:
    os << "note: ";
    break;
  }
  os << diag.getMessage();
  return text;
}

inline void captureHandler(const llvm::SMDiagnostic &diag, void *context) {
  static_cast<std::vector<std::string> *>(context)->push_back(
      formatDiagnostic(diag));
}

/// Parses \p text as the buffer \p name.
inline ParseOutcome parseText(llvm::StringRef text,
                              llvm::StringRef name = "t.yaml") {
  ParseOutcome outcome;
  outcome.sourceMgr = std::make_unique<llvm::SourceMgr>();
  outcome.sourceMgr->setDiagHandler(captureHandler, &outcome.diagnostics);
  outcome.parsed = parseConfigBuffer(text, name, *outcome.sourceMgr);
  return outcome;
}

/// Succeeds if \p text contains \p part.
inline ::testing::AssertionResult hasSubstr(const std::string &text,
                                            const std::string &part) {
  if (text.find(part) != std::string::npos)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "'" << text << "' does not contain '" << part << "'";
}

/// The repository root (FUSION_SOURCE_DIR from ctest, else the build-time
/// path).
inline std::string sourceDir() {
  if (const char *env = std::getenv("FUSION_SOURCE_DIR"))
    return env;
  return FUSION_SPEC_TEST_SOURCE_DIR;
}

/// Parses a file under the repository root.
inline ParseOutcome parseRepoFile(llvm::StringRef relativePath) {
  ParseOutcome outcome;
  outcome.sourceMgr = std::make_unique<llvm::SourceMgr>();
  outcome.sourceMgr->setDiagHandler(captureHandler, &outcome.diagnostics);
  outcome.parsed = parseConfigFile(sourceDir() + "/" + relativePath.str(),
                                   *outcome.sourceMgr);
  return outcome;
}

} // namespace fusion::spec::test

#endif // FUSION_TEST_UNIT_FRONTEND_SPECTESTUTIL_H
