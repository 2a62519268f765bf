//===- sample_plans.h - Plans with device code for backend checks ---------===//
//
// Small plans that exercise every instruction kind with real device code (the hand-written
// kernels of kernels/test_kernels.cu, embedded as cubins when the build has CUDA). The CUDA
// unit test runs them on both backends and compares every buffer; fusion-rt-write-test-plans
// writes them to disk so scripts/device-run.sh can carry them to a GPU machine and its
// check.sh can compare `fusion-run --backend cpu` with `--backend cuda`.
//
//===----------------------------------------------------------------------===//

#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fusion::rt::testing {

struct KernelDesc;

/// A serialized sample plan and the name it is written under (`<name>.fplan`).
struct SamplePlan {
  std::string name;
  std::vector<uint8_t> bytes;
};

/// True when the test kernels were compiled to cubins (the build has a CUDA toolkit).
bool haveTestCubins();

/// The sample plans, each with a program `main`:
///  - elementwise: fill/add/mul/silu on two streams ordered by record/wait events;
///  - rms_norm: a [3, 1000] RMSNorm;
///  - gemm: f32 gemms with transposes, batches (shared and per-batch b), alpha and beta;
///  - collective: an all-reduce over a mesh axis of size 1.
std::vector<SamplePlan> samplePlans();

/// Gives `kernel` the test kernel `entry` (a symbol of test_kernels.cu) and, when built with
/// CUDA, the test cubins for every embedded architecture.
void attachTestKernel(KernelDesc &kernel, std::string entry);

} // namespace fusion::rt::testing
