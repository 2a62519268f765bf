//===- kernel_test_util.h - Running one CPU reference kernel in tests -----===//
//
// The kernel tests check each op kind against an independent fp64 computation written in the
// test itself. KernelCase builds a one-launch plan (inputs, then outputs, in one arena), runs
// it on the CPU executor — or calls the kernel entry point directly with a chosen thread
// pool, for the thread-count determinism tests — and hands back the outputs. Inputs are
// rounded to their storage dtype when set, and the references read them back through
// inputValues(), so a reference always starts from exactly what the kernel saw.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/executor.h"
#include "runtime/src/cpu/cpu_kernels.h"
#include "test/unit/runtime/test_plan_builder.h"

#include <cstdint>
#include <string>
#include <vector>

namespace fusion::rt::testing {

/// Deterministic values uniform in [low, high) (a 64-bit LCG), so failures reproduce.
std::vector<float> uniformValues(size_t n, uint64_t seed, float low = -1, float high = 1);

/// Rows of `dim` uniform values, each L2-normalised and multiplied by `scale` (GDN's q, k).
std::vector<float> normalisedRows(size_t rows, int64_t dim, uint64_t seed, double scale);

/// `value` rounded to `dtype` storage and widened back.
float roundTo(schema::DType dtype, float value);

/// A one-kernel plan under test.
class KernelCase {
public:
  explicit KernelCase(std::string kind, std::vector<AttrDesc> attrs = {});

  /// Adds a float input holding `values` (rounded to `dtype`); returns its input position.
  uint32_t input(std::string name, schema::DType dtype, std::vector<int64_t> shape,
                 const std::vector<float> &values);
  /// Adds an index input (i32 or i64) holding `values`.
  uint32_t indexInput(std::string name, schema::DType dtype, std::vector<int64_t> shape,
                      const std::vector<int64_t> &values);
  /// Adds an output (filled with a 0x7f byte pattern before the run, so a kernel that leaves
  /// elements unwritten is caught); returns its output position.
  uint32_t output(std::string name, schema::DType dtype, std::vector<int64_t> shape);

  /// The stored values of float input `i`, widened to double.
  std::vector<double> inputValues(uint32_t i) const;

  /// Runs the plan on the CPU executor (program "main", instruction loc `loc` when set).
  Status run(const std::string &loc = "");
  /// Calls the kernel's entry point directly with `pool` (nullptr: single-threaded).
  Status runDirect(cpu::ThreadPool *pool);

  /// Output `i` after a run, widened to float.
  std::vector<float> outputFloats(uint32_t i) const;
  /// Output `i` after a run, as integers (i32 or i64 storage).
  std::vector<int64_t> outputInts(uint32_t i) const;
  /// Number of outputs.
  uint32_t numOutputs() const { return static_cast<uint32_t>(outputs_.size()); }
  /// The raw bytes of output `i` after a run.
  const std::vector<uint8_t> &outputBytes(uint32_t i) const { return outputData_[i]; }

private:
  struct Arg {
    std::string name;
    schema::DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  PlanBuilder planWithLaunch(const std::string &loc) const;

  std::string kind_;
  std::vector<AttrDesc> attrs_;
  std::vector<Arg> inputs_, outputs_;
  std::vector<std::vector<uint8_t>> outputData_;
};

/// Expects |actual[i] − expected[i]| ≤ rtol·|expected[i]| + atol for all i, reporting the
/// number of violations and the worst element (by error / allowed error).
void expectClose(const std::vector<float> &actual, const std::vector<double> &expected, double rtol,
                 double atol, const std::string &what);

/// max |values[i]|.
double maxAbs(const std::vector<double> &values);

} // namespace fusion::rt::testing
