//===- check.cc - Lockstep check of a backend against the CPU reference ---===//
//
// See check.h. Buffer lists per instruction: a launch's args (inputs are the first
// num_inputs), a GEMM's a and b (and c when beta != 0) into c, a collective's send into recv.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/check.h"

#include "numeric.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

namespace fusion::rt {

namespace {

bool isFloat(schema::DType dtype) {
  return dtype == schema::DType::F32 || dtype == schema::DType::BF16 ||
         dtype == schema::DType::F16;
}

double boundFor(schema::DType dtype, const CheckOptions &options) {
  switch (dtype) {
  case schema::DType::BF16:
    return options.bf16Bound;
  case schema::DType::F16:
    return options.f16Bound;
  default:
    return options.f32Bound;
  }
}

int64_t loadInteger(const std::vector<uint8_t> &bytes, schema::DType dtype, uint64_t i) {
  if (dtype == schema::DType::I64) {
    int64_t v;
    std::memcpy(&v, bytes.data() + 8 * i, 8);
    return v;
  }
  if (dtype == schema::DType::I32) {
    int32_t v;
    std::memcpy(&v, bytes.data() + 4 * i, 4);
    return v;
  }
  return bytes[i]; // bool / u8
}

OutputCheck compare(uint32_t id, const BufferInfo &buffer, const std::vector<uint8_t> &ref,
                    const std::vector<uint8_t> &out, const CheckOptions &options) {
  OutputCheck check;
  check.buffer = id;
  if (!isFloat(buffer.dtype)) {
    for (uint64_t i = 0; i < buffer.numElements; ++i) {
      int64_t a = loadInteger(ref, buffer.dtype, i), b = loadInteger(out, buffer.dtype, i);
      if (a != b) {
        if (check.mismatches == 0)
          check.worst = i;
        ++check.mismatches;
        check.maxAbs = std::max(check.maxAbs, std::fabs(double(a) - double(b)));
      }
    }
    check.relL2 = check.mismatches ? 1.0 : 0.0;
    check.passed = check.mismatches == 0;
    return check;
  }
  double diff2 = 0, ref2 = 0;
  for (uint64_t i = 0; i < buffer.numElements; ++i) {
    double a = loadAsFloat(ref.data(), buffer.dtype, i);
    double b = loadAsFloat(out.data(), buffer.dtype, i);
    if (std::isfinite(a) && !std::isfinite(b)) {
      if (check.mismatches == 0 || check.maxAbs != INFINITY)
        check.worst = i;
      ++check.mismatches;
      check.maxAbs = INFINITY;
      continue;
    }
    if (!std::isfinite(a)) // the reference's own inf/nan: the device must agree in kind
      continue;
    double d = std::fabs(a - b);
    diff2 += d * d;
    ref2 += a * a;
    if (d > check.maxAbs) {
      check.maxAbs = d;
      check.worst = i;
    }
  }
  check.relL2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  check.passed = check.mismatches == 0 && check.relL2 <= boundFor(buffer.dtype, options);
  return check;
}

std::string instructionKind(const Plan &plan, const schema::Instruction &instruction) {
  switch (instruction.op_type()) {
  case schema::Op::Launch:
    return plan.root().kernels()->Get(instruction.op_as_Launch()->kernel())->kind()->str();
  case schema::Op::Gemm:
    return "gemm";
  case schema::Op::Collective:
    return collectiveKindName(instruction.op_as_Collective()->kind());
  default:
    return "";
  }
}

/// The buffers an instruction reads and writes.
void instructionBuffers(const schema::Instruction &instruction, std::vector<uint32_t> &reads,
                        std::vector<uint32_t> &writes) {
  switch (instruction.op_type()) {
  case schema::Op::Launch: {
    const schema::Launch &launch = *instruction.op_as_Launch();
    for (uint32_t i = 0; launch.args() && i < launch.args()->size(); ++i)
      (i < launch.num_inputs() ? reads : writes).push_back(launch.args()->Get(i));
    return;
  }
  case schema::Op::Gemm: {
    const schema::Gemm &gemm = *instruction.op_as_Gemm();
    reads = {gemm.a(), gemm.b()};
    if (gemm.beta() != 0.0f)
      reads.push_back(gemm.c());
    writes = {gemm.c()};
    return;
  }
  case schema::Op::Collective: {
    const schema::Collective &collective = *instruction.op_as_Collective();
    reads = {collective.send()};
    writes = {collective.recv()};
    return;
  }
  default:
    return;
  }
}

} // namespace

bool InstructionCheck::passed() const {
  return std::all_of(outputs.begin(), outputs.end(),
                     [](const OutputCheck &o) { return o.passed; });
}

StatusOr<std::vector<InstructionCheck>> checkAgainstReference(Executor &reference,
                                                              Executor &device,
                                                              std::string_view program,
                                                              const CheckOptions &options) {
  const Plan &plan = reference.plan();
  std::optional<uint32_t> index = plan.findProgram(program);
  if (!index)
    return Status(StatusCode::kNotFound,
                  plan.displayName() + ": no program named " + quoted(program));
  const auto *instructions = plan.root().programs()->Get(*index)->instructions();
  std::vector<InstructionCheck> checks;
  std::vector<uint8_t> bytes, refBytes, outBytes;
  for (uint32_t i = 0; instructions && i < instructions->size(); ++i) {
    const schema::Instruction &instruction = *instructions->Get(i);
    std::vector<uint32_t> reads, writes;
    instructionBuffers(instruction, reads, writes);
    if (writes.empty())
      continue; // Record / Wait
    // Poison the outputs, then give the device the reference's inputs (an output sharing
    // bytes with an input gets the input's bytes back, as the instruction expects).
    for (uint32_t id : writes) {
      const BufferInfo &buffer = plan.buffers()[id];
      bytes.assign(buffer.byteSize, 0xFF); // NaN for floats, -1 for integers
      FUSION_RETURN_IF_ERROR(device.writeBuffer(id, bytes.data(), bytes.size()));
    }
    for (uint32_t id : reads) {
      FUSION_RETURN_IF_ERROR(reference.readBuffer(id, bytes));
      FUSION_RETURN_IF_ERROR(device.writeBuffer(id, bytes.data(), bytes.size()));
    }
    FUSION_RETURN_IF_ERROR(reference.step(program, i));
    FUSION_RETURN_IF_ERROR(device.step(program, i));
    InstructionCheck check;
    check.program = *index;
    check.index = i;
    check.kind = instructionKind(plan, instruction);
    std::set<uint32_t> seen;
    for (uint32_t id : writes) {
      if (!seen.insert(id).second)
        continue;
      FUSION_RETURN_IF_ERROR(reference.readBuffer(id, refBytes));
      FUSION_RETURN_IF_ERROR(device.readBuffer(id, outBytes));
      check.outputs.push_back(compare(id, plan.buffers()[id], refBytes, outBytes, options));
    }
    checks.push_back(std::move(check));
  }
  return checks;
}

std::string formatCheckReport(const Plan &plan, const std::vector<InstructionCheck> &checks,
                              const CheckOptions &options) {
  struct KindRow {
    size_t instructions = 0, failed = 0;
    double worst = 0;
  };
  std::map<std::string, KindRow> rows;
  size_t failedInstructions = 0;
  for (const InstructionCheck &check : checks) {
    KindRow &row = rows[check.kind];
    ++row.instructions;
    for (const OutputCheck &output : check.outputs)
      row.worst = std::max(row.worst, output.relL2);
    if (!check.passed()) {
      ++row.failed;
      ++failedInstructions;
    }
  }
  std::string text;
  char line[512];
  std::snprintf(line, sizeof line, "%-24s %8s %14s %8s\n", "kind", "checked", "worst rel L2",
                "failed");
  text += line;
  for (const auto &[kind, row] : rows) {
    std::snprintf(line, sizeof line, "%-24s %8zu %14.3e %8zu\n", kind.c_str(), row.instructions,
                  row.worst, row.failed);
    text += line;
  }
  size_t shown = 0;
  for (const InstructionCheck &check : checks) {
    for (const OutputCheck &output : check.outputs) {
      if (output.passed)
        continue;
      if (++shown > 40)
        break;
      const BufferInfo &buffer = plan.buffers()[output.buffer];
      std::snprintf(line, sizeof line,
                    "FAIL %s: %s output '%s' (%s): rel L2 %.3e (bound %.0e), max |diff| %.3e at "
                    "element %llu, %llu non-finite/mismatched\n",
                    plan.describeInstruction(check.program, check.index).c_str(),
                    check.kind.c_str(), buffer.name.c_str(), dtypeName(buffer.dtype).c_str(),
                    output.relL2, boundFor(buffer.dtype, options), output.maxAbs,
                    static_cast<unsigned long long>(output.worst),
                    static_cast<unsigned long long>(output.mismatches));
      text += line;
    }
  }
  std::snprintf(line, sizeof line, "%zu instruction(s) checked, %zu failed\n", checks.size(),
                failedInstructions);
  text += line;
  return text;
}

} // namespace fusion::rt
