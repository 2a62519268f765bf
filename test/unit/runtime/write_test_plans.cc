//===- write_test_plans.cc - Write the sample plans to a directory --------===//
//
// `fusion-rt-write-test-plans DIR` writes DIR/<name>.fplan for every sample plan (see
// sample_plans.h): plans with real device code that scripts/device-run.sh packs for the GPU
// machine, where check.sh runs each on both backends and compares the results.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/sample_plans.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fusion-rt-write-test-plans OUTPUT_DIR\n");
    return 2;
  }
  std::filesystem::path dir = argv[1];
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    std::fprintf(stderr, "fusion-rt-write-test-plans: error: cannot create %s: %s\n",
                 dir.c_str(), error.message().c_str());
    return 1;
  }
  if (!fusion::rt::testing::haveTestCubins())
    std::fprintf(stderr, "fusion-rt-write-test-plans: note: built without CUDA, the plans "
                         "have no cubins (cpu backend only)\n");
  for (const fusion::rt::testing::SamplePlan &plan : fusion::rt::testing::samplePlans()) {
    std::filesystem::path path = dir / (plan.name + ".fplan");
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char *>(plan.bytes.data()),
              static_cast<std::streamsize>(plan.bytes.size()));
    out.close();
    if (!out) {
      std::fprintf(stderr, "fusion-rt-write-test-plans: error: cannot write %s\n",
                   path.c_str());
      return 1;
    }
    std::printf("%s (%zu bytes)\n", path.c_str(), plan.bytes.size());
  }
  return 0;
}
