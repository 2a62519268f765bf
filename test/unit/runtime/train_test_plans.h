//===- train_test_plans.h - Tiny training plans for the trainer tests -----===//
//
// A training plan that follows the fusion-run --train contract (runtime/include/fusion/rt/
// train.h) with kernels the CPU backend already has: x = tokens / V (an `embedding` lookup
// of a [V,1] table), d = w − x, loss = Σ d², momentum m ← m + ok·(d − 0.1·m), weights
// w ← w − ok·(0.1·d + 0.01·m), a model buffer `applied` ← applied + ok, and
// ctl = [1, 1, ok, Σ d², t, s, 0, 0] with s and t looked up in an index table. Which steps
// are skipped (ok = 0, loss NaN) comes from per-step tables, so skip patterns can be tested.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "test/unit/runtime/test_plan_builder.h"

#include <cstdint>
#include <set>
#include <vector>

namespace fusion::rt::testing {

struct TrainPlanOptions {
  int64_t accumulation = 2; // n_acc
  int64_t rows = 2;         // B
  int64_t seqLen = 3;       // T
  int64_t vocab = 64;       // V
  int64_t mtpDepth = 1;     // D_m (inv_counts [1+D_m])
  /// Rows of the step-indexed tables: steps must stay below this.
  int64_t maxSteps = 4096;
  /// Steps s whose loss is NaN and whose update is skipped (ok = 0).
  std::set<int64_t> skipSteps;
  /// Every step from this one on is skipped (-1: none).
  int64_t skipFrom = -1;
  bool withEval = true;
  /// Plan.config (training settings); defaults filled by tinyTrainingPlan when empty.
  std::vector<AttrDesc> config;
};

/// The default config of the tiny plan: shapes of `options`, total_steps 20, eval every 5
/// steps on 2 batches, save_interval 10, keep_last 3, log_interval 5, seed 7, synthetic data,
/// a config hash and text.
std::vector<AttrDesc> tinyTrainingConfig(const TrainPlanOptions &options);

/// The plan (with tinyTrainingConfig unless options.config is set).
std::vector<uint8_t> tinyTrainingPlan(const TrainPlanOptions &options);

} // namespace fusion::rt::testing
