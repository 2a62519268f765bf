//===- write_seed_plans.cc - Seed corpus of the plan-loader fuzzer --------===//
//
// `fusion-fuzz-seeds DIR` writes valid plans for the plan-loader fuzzer to start from: the
// runtime test sample plans (every instruction kind) and the tiny language model whose
// `forward` binds the data inputs (so mutations reach bindings, batch shapes and the data
// feed). Mutating valid plans reaches the semantic checks far sooner than random bytes.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/data_test_plans.h"
#include "test/unit/runtime/sample_plans.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace {

bool write(const std::filesystem::path &path, const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char *>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out)
    std::fprintf(stderr, "fusion-fuzz-seeds: error: cannot write %s\n", path.c_str());
  return static_cast<bool>(out);
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fusion-fuzz-seeds OUTPUT_DIR\n");
    return 2;
  }
  std::filesystem::path dir = argv[1];
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  bool ok = true;
  for (const fusion::rt::testing::SamplePlan &plan : fusion::rt::testing::samplePlans())
    ok = write(dir / (plan.name + ".fplan"), plan.bytes) && ok;
  ok =
      write(dir / "tiny_lm.fplan", fusion::rt::testing::tinyLanguageModelPlan(2, 6, 16, 4, 0.02)) &&
      ok;
  ok = write(dir / "tiny_lm_wide.fplan",
             fusion::rt::testing::tinyLanguageModelPlan(1, 3, 5, 2, 1.0)) &&
       ok;
  return ok ? 0 : 1;
}
