//===- RobustnessTest.cpp - Arbitrary input never crashes the parser ------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// A deterministic stand-in for the libFuzzer target: thousands of random and
// mutated inputs must parse without crashing, a failed parse must always say
// why (at least one error), and a successful one must survive the report and
// a print/parse round trip. Pathological nesting must be rejected cleanly.
//
//===----------------------------------------------------------------------===//

#include "SpecTestUtil.h"

#include "frontend/Spec/ConfigSpec.h"
#include "frontend/Spec/Report.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <random>

using namespace fusion::spec;
using namespace fusion::spec::test;

namespace {

/// Counts diagnostics by kind and drops them.
struct Counter {
  unsigned errors = 0, total = 0;
  static void handle(const llvm::SMDiagnostic &diag, void *context) {
    auto *self = static_cast<Counter *>(context);
    ++self->total;
    if (diag.getKind() == llvm::SourceMgr::DK_Error)
      ++self->errors;
  }
};

/// Parses \p input and checks the invariants; returns true if it parsed.
bool checkInput(const std::string &input) {
  llvm::SourceMgr sourceMgr;
  Counter counter;
  sourceMgr.setDiagHandler(&Counter::handle, &counter);
  std::optional<ParsedConfig> parsed =
      parseConfigBuffer(input, "fuzz.yaml", sourceMgr);
  if (!parsed) {
    EXPECT_GT(counter.errors, 0u) << "failed without an error:\n" << input;
    return false;
  }
  EXPECT_EQ(counter.errors, 0u) << input;
  // A valid config must produce a report and print back to a valid config.
  ModelReport report = computeReport(parsed->config);
  EXPECT_GE(report.params.totalWithMtp, report.params.total);
  std::string text;
  llvm::raw_string_ostream os(text);
  printReport(parsed->config, report, os);
  std::string yaml;
  llvm::raw_string_ostream yamlStream(yaml);
  printConfigYaml(parsed->config, yamlStream);
  llvm::SourceMgr again;
  Counter againCounter;
  again.setDiagHandler(&Counter::handle, &againCounter);
  EXPECT_TRUE(parseConfigBuffer(yaml, "printed.yaml", again).has_value())
      << "printed config does not parse:\n"
      << yaml;
  return true;
}

std::vector<std::string> loadSeeds() {
  std::vector<std::string> seeds;
  for (const char *path :
       {"configs/smoke.yaml", "configs/bench-1gpu.yaml",
        "configs/fusionllm-7b.yaml", "configs/ablations/moe-off.yaml",
        "test/frontend/invalid/heads_not_divisible.yaml",
        "test/frontend/invalid/yaml_syntax.yaml"}) {
    auto buffer = llvm::MemoryBuffer::getFile(sourceDir() + "/" + path);
    EXPECT_TRUE(bool(buffer)) << path;
    if (buffer)
      seeds.push_back((*buffer)->getBuffer().str());
  }
  // Flow-style configs exercise a different part of the YAML parser.
  seeds.push_back("model: {dim: 128, n_layers: 2, layer_schedule: \"1:1\", "
                  "n_heads: 4, n_kv_groups: 2, mtp_depth: 1, "
                  "mtp_loss_weight_schedule: [0.3]}\n"
                  "training: {total_steps: 100, adamw_betas: [0.9, 0.95]}\n"
                  "data: {format: synthetic, data_mix: {a: 1, b: 2}}\n");
  return seeds;
}

TEST(Robustness, ShippedSeedsBehave) {
  std::vector<std::string> seeds = loadSeeds();
  ASSERT_EQ(seeds.size(), 7u);
  EXPECT_TRUE(checkInput(seeds[0]));
  EXPECT_TRUE(checkInput(seeds[1]));
  EXPECT_TRUE(checkInput(seeds[2]));
  EXPECT_TRUE(checkInput(seeds[3]));
  EXPECT_FALSE(checkInput(seeds[4]));
  EXPECT_FALSE(checkInput(seeds[5]));
  EXPECT_TRUE(checkInput(seeds[6]));
}

TEST(Robustness, RandomBytes) {
  std::mt19937_64 rng(0x5eed);
  const std::string yamlish = "abcdefgmnorstu_0123456789.-+:[]{},#'\"!&*?|> "
                              "\n\n\n\t\r\\%@`";
  for (int i = 0; i < 2000; ++i) {
    size_t length = rng() % 400;
    std::string input;
    bool raw = i % 2 == 0;
    for (size_t j = 0; j < length; ++j)
      input += raw ? char(rng() & 0xff) : yamlish[rng() % yamlish.size()];
    checkInput(input);
  }
}

TEST(Robustness, MutatedConfigs) {
  std::vector<std::string> seeds = loadSeeds();
  std::mt19937_64 rng(0xfeed);
  const std::string interesting = ":-[]{},#'\"!&*?|>\n \t0123456789.e_";
  int parsedCount = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string input = seeds[rng() % seeds.size()];
    int mutations = 1 + rng() % 4;
    for (int m = 0; m < mutations && !input.empty(); ++m) {
      size_t pos = rng() % input.size();
      switch (rng() % 7) {
      case 0: // flip a byte
        input[pos] = char(rng() & 0xff);
        break;
      case 1: // structural character
        input[pos] = interesting[rng() % interesting.size()];
        break;
      case 2: // insert
        input.insert(pos, 1, interesting[rng() % interesting.size()]);
        break;
      case 3: // delete a run
        input.erase(pos, 1 + rng() % 16);
        break;
      case 4: // truncate
        input.resize(pos);
        break;
      case 5: { // duplicate a line
        size_t start = input.rfind('\n', pos);
        start = start == std::string::npos ? 0 : start + 1;
        size_t end = input.find('\n', pos);
        end = end == std::string::npos ? input.size() : end + 1;
        input.insert(end, input.substr(start, end - start));
        break;
      }
      case 6: { // replace a value with a number at the edge of the ranges
        static const char *edges[] = {"0",
                                      "-1",
                                      "9223372036854775807",
                                      "-9223372036854775808",
                                      "99999999999999999999",
                                      "1e308",
                                      "1e-320",
                                      "65536",
                                      "4096",
                                      ".5"};
        size_t colon = input.find(": ", pos);
        if (colon == std::string::npos)
          break;
        size_t end = input.find('\n', colon);
        if (end == std::string::npos)
          end = input.size();
        input.replace(colon + 2, end - colon - 2, edges[rng() % 10]);
        break;
      }
      }
    }
    parsedCount += checkInput(input);
  }
  // Some mutations (in comments, of equal values) leave the config valid.
  EXPECT_GT(parsedCount, 0);
}

TEST(Robustness, PathologicalNesting) {
  const size_t depth = 200000;
  std::vector<std::string> inputs = {
      std::string(depth, '['),
      std::string(depth, '[') + std::string(depth, ']'),
      "model: " + std::string(depth, '{'),
  };
  std::string dashes;
  for (size_t i = 0; i < depth / 2; ++i)
    dashes += "- ";
  inputs.push_back(dashes + "x\n");
  std::string keys;
  for (size_t i = 0; i < depth / 2; ++i)
    keys += "? ";
  inputs.push_back(keys);
  std::string mappings = "model:\n";
  for (size_t i = 0; i < 2000; ++i)
    mappings += std::string(i + 2, ' ') + "k:\n";
  inputs.push_back(mappings);
  for (const std::string &input : inputs)
    EXPECT_FALSE(checkInput(input));
}

TEST(Robustness, NestingWithinTheLimitParses) {
  // 5000 levels (the screen allows 10000 structural characters) must go
  // through llvm::yaml without exhausting the stack.
  const size_t depth = 4999;
  EXPECT_FALSE(checkInput("model: {x: " + std::string(depth, '[') +
                          std::string(depth, ']') + "}\n"));
}

TEST(Robustness, LargeInputs) {
  std::string wide =
      "model:\n  layer_schedule: \"" + std::string(1 << 20, 'x') + "\"\n";
  EXPECT_FALSE(checkInput(wide));
  std::string nul("model:\n  dim: 64\0\0\0\n", 20);
  EXPECT_FALSE(checkInput(nul));
}

} // namespace
