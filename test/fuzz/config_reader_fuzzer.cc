//===- config_reader_fuzzer.cc - libFuzzer target: the YAML config reader --===//
//
// Feeds arbitrary bytes to fusion::spec::parseConfigBuffer (YAML parse + key table + range
// and cross-key validation, frontend/Spec) and, for configs that pass, computes and prints
// the model report (parameter and FLOP counts from untrusted sizes). Diagnostics go to a
// handler that drops them, so a long run does not flood the log. Links the compiler-side
// FusionSpec sources and Debian's libLLVM; built by test/fuzz/CMakeLists.txt (standalone).
//
//===----------------------------------------------------------------------===//

#include "frontend/Spec/ConfigSpec.h"
#include "frontend/Spec/Report.h"

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>

namespace {
void dropDiagnostic(const llvm::SMDiagnostic &, void *) {}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::SourceMgr sourceMgr;
  sourceMgr.setDiagHandler(dropDiagnostic);
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  std::optional<fusion::spec::ParsedConfig> parsed =
      fusion::spec::parseConfigBuffer(text, "fuzz.yaml", sourceMgr);
  if (!parsed)
    return 0;
  llvm::raw_null_ostream sink;
  fusion::spec::printReport(parsed->config, sink);
  return 0;
}
