//===- data_test_plans.h - Plans that consume the data inputs -------------===//
//
// A tiny language model built from the reference kernels, with the program bindings a
// compiled model has (docs/op-kinds.md, "Program inputs and outputs"): used by the
// fusion-run data tests (the loss at initialisation must be close to ln V) and as a seed of
// the plan-loader fuzzer.
//
//===----------------------------------------------------------------------===//

#pragma once

#include <cstdint>
#include <vector>

namespace fusion::rt::testing {

/// A plan with a tied-embedding bigram model: program `init` fills
/// tok_embeddings.weight [V, D] with N(0, std^2) (init_param), program `forward` binds
/// tokens and targets [B, T+1] i32 and inv_counts [1] f32 and outputs
///   loss = inv_counts[0] * sum_t CE(E[x_t] E^T, y_t),  x = tokens[:, :T], y = targets[:, 1:],
/// i.e. the §8 main-head loss (ignored targets contribute 0).
std::vector<uint8_t> tinyLanguageModelPlan(int64_t B, int64_t T, int64_t V, int64_t D, double std);

} // namespace fusion::rt::testing
