//===- kernel_test_util.cc - Running one CPU reference kernel in tests ----===//
//
// Plan construction and buffer transfer for KernelCase, and the tolerance check shared by
// the kernel tests.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/kernel_test_util.h"

#include "runtime/src/numeric.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace fusion::rt::testing {

std::vector<float> uniformValues(size_t n, uint64_t seed, float low, float high) {
  std::vector<float> values(n);
  uint64_t state = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (float &v : values) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    double unit = static_cast<double>(state >> 11) / 9007199254740992.0; // [0, 1)
    v = static_cast<float>(low + (high - low) * unit);
  }
  return values;
}

std::vector<float> normalisedRows(size_t rows, int64_t dim, uint64_t seed, double scale) {
  std::vector<float> values = uniformValues(rows * dim, seed);
  for (size_t r = 0; r < rows; ++r) {
    double norm = 0;
    for (int64_t j = 0; j < dim; ++j)
      norm += double(values[r * dim + j]) * values[r * dim + j];
    norm = std::sqrt(norm + 1e-6);
    for (int64_t j = 0; j < dim; ++j)
      values[r * dim + j] = static_cast<float>(values[r * dim + j] / norm * scale);
  }
  return values;
}

float roundTo(schema::DType dtype, float value) {
  uint8_t bytes[4];
  storeFromFloat(bytes, dtype, 0, value);
  return loadAsFloat(bytes, dtype, 0);
}

KernelCase::KernelCase(std::string kind, std::vector<AttrDesc> attrs)
    : kind_(std::move(kind)), attrs_(std::move(attrs)) {}

namespace {
uint64_t countOf(const std::vector<int64_t> &shape) {
  uint64_t n = 1;
  for (int64_t d : shape)
    n *= static_cast<uint64_t>(d);
  return n;
}
} // namespace

uint32_t KernelCase::input(std::string name, schema::DType dtype, std::vector<int64_t> shape,
                           const std::vector<float> &values) {
  Arg arg{std::move(name), dtype, std::move(shape), {}};
  uint64_t n = countOf(arg.shape);
  EXPECT_EQ(values.size(), n) << "values for input " << arg.name;
  arg.bytes.assign(n * dtypeSize(dtype), 0);
  for (uint64_t i = 0; i < n && i < values.size(); ++i)
    storeFromFloat(arg.bytes.data(), dtype, i, values[i]);
  inputs_.push_back(std::move(arg));
  return static_cast<uint32_t>(inputs_.size() - 1);
}

uint32_t KernelCase::indexInput(std::string name, schema::DType dtype, std::vector<int64_t> shape,
                                const std::vector<int64_t> &values) {
  Arg arg{std::move(name), dtype, std::move(shape), {}};
  uint64_t n = countOf(arg.shape);
  EXPECT_EQ(values.size(), n) << "values for input " << arg.name;
  arg.bytes.assign(n * dtypeSize(dtype), 0);
  for (uint64_t i = 0; i < n && i < values.size(); ++i) {
    if (dtype == schema::DType::I64) {
      int64_t v = values[i];
      std::memcpy(arg.bytes.data() + 8 * i, &v, 8);
    } else {
      int32_t v = static_cast<int32_t>(values[i]);
      std::memcpy(arg.bytes.data() + 4 * i, &v, 4);
    }
  }
  inputs_.push_back(std::move(arg));
  return static_cast<uint32_t>(inputs_.size() - 1);
}

uint32_t KernelCase::output(std::string name, schema::DType dtype, std::vector<int64_t> shape) {
  Arg arg{std::move(name), dtype, std::move(shape), {}};
  arg.bytes.assign(countOf(arg.shape) * dtypeSize(dtype), 0x7f);
  outputs_.push_back(std::move(arg));
  return static_cast<uint32_t>(outputs_.size() - 1);
}

std::vector<double> KernelCase::inputValues(uint32_t i) const {
  const Arg &arg = inputs_.at(i);
  uint64_t n = countOf(arg.shape);
  std::vector<double> values(n);
  for (uint64_t j = 0; j < n; ++j)
    values[j] = loadAsFloat(arg.bytes.data(), arg.dtype, j);
  return values;
}

PlanBuilder KernelCase::planWithLaunch(const std::string &loc) const {
  PlanBuilder plan;
  std::vector<uint32_t> inputIds, outputIds;
  for (const Arg &arg : inputs_)
    inputIds.push_back(plan.addBuffer(arg.name, arg.dtype, arg.shape));
  for (const Arg &arg : outputs_)
    outputIds.push_back(plan.addBuffer(arg.name, arg.dtype, arg.shape));
  uint32_t kernel = plan.addKernel(kind_ + "_0", kind_, attrs_);
  plan.addProgram("main").add(launchOp(kernel, inputIds, outputIds), loc);
  return plan;
}

Status KernelCase::run(const std::string &loc) {
  auto plan = Plan::loadBytes(planWithLaunch(loc).finish(), "plan.fplan");
  if (!plan.ok())
    return plan.status();
  auto executor = createExecutor(*plan, BackendKind::kCpu);
  if (!executor.ok())
    return executor.status();
  uint32_t id = 0;
  for (const std::vector<Arg> *args : {&inputs_, &outputs_})
    for (const Arg &arg : *args)
      FUSION_RETURN_IF_ERROR((*executor)->writeBuffer(id++, arg.bytes.data(), arg.bytes.size()));
  Status status = (*executor)->run("main");
  outputData_.assign(outputs_.size(), {});
  for (size_t i = 0; i < outputs_.size(); ++i)
    FUSION_RETURN_IF_ERROR(
        (*executor)->readBuffer(static_cast<uint32_t>(inputs_.size() + i), outputData_[i]));
  return status;
}

Status KernelCase::runDirect(cpu::ThreadPool *pool) {
  auto plan = Plan::loadBytes(planWithLaunch("").finish(), "plan.fplan");
  if (!plan.ok())
    return plan.status();
  const cpu::KernelEntry *entry = cpu::findKernel(kind_);
  if (!entry)
    return Status(StatusCode::kNotFound, "no cpu kernel for " + kind_);
  std::vector<std::vector<uint8_t>> memory;
  for (const std::vector<Arg> *args : {&inputs_, &outputs_})
    for (const Arg &arg : *args)
      memory.push_back(arg.bytes);
  cpu::KernelContext context{*(*plan)->root().kernels()->Get(0), {}, {}, pool};
  for (uint32_t id = 0; id < memory.size(); ++id) {
    cpu::Tensor tensor{memory[id].data(), &(*plan)->buffers()[id], id};
    (id < inputs_.size() ? context.inputs : context.outputs).push_back(tensor);
  }
  Status status = cpu::runKernel(*entry, context);
  outputData_.assign(memory.begin() + inputs_.size(), memory.end());
  return status;
}

std::vector<float> KernelCase::outputFloats(uint32_t i) const {
  const Arg &arg = outputs_.at(i);
  const std::vector<uint8_t> &bytes = outputData_.at(i);
  uint64_t n = countOf(arg.shape);
  std::vector<float> values(n);
  for (uint64_t j = 0; j < n; ++j)
    values[j] = loadAsFloat(bytes.data(), arg.dtype, j);
  return values;
}

std::vector<int64_t> KernelCase::outputInts(uint32_t i) const {
  const Arg &arg = outputs_.at(i);
  const std::vector<uint8_t> &bytes = outputData_.at(i);
  uint64_t n = countOf(arg.shape);
  std::vector<int64_t> values(n);
  for (uint64_t j = 0; j < n; ++j) {
    if (arg.dtype == schema::DType::I64) {
      std::memcpy(&values[j], bytes.data() + 8 * j, 8);
    } else {
      int32_t v;
      std::memcpy(&v, bytes.data() + 4 * j, 4);
      values[j] = v;
    }
  }
  return values;
}

void expectClose(const std::vector<float> &actual, const std::vector<double> &expected, double rtol,
                 double atol, const std::string &what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  size_t violations = 0, worst = 0;
  double worstRatio = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    double allowed = rtol * std::abs(expected[i]) + atol;
    double error = std::abs(static_cast<double>(actual[i]) - expected[i]);
    double ratio = std::isnan(error) ? INFINITY : error / allowed;
    if (ratio > 1)
      ++violations;
    if (ratio > worstRatio || (i == 0 && ratio == 0)) {
      worstRatio = ratio;
      worst = i;
    }
  }
  EXPECT_EQ(violations, 0u) << what << ": " << violations << " of " << actual.size()
                            << " elements outside rtol " << rtol << " atol " << atol
                            << "; worst at " << worst << ": got " << actual[worst] << ", expected "
                            << expected[worst] << " (" << worstRatio << "x the allowed error)";
}

double maxAbs(const std::vector<double> &values) {
  double m = 0;
  for (double v : values)
    m = std::max(m, std::abs(v));
  return m;
}

} // namespace fusion::rt::testing
