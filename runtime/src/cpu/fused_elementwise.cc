//===- fused_elementwise.cc - Reference kernel of fused_elementwise -------===//
//
// Interprets the kernel's `expr` program (fusion/rt/fused_elementwise.h) over blocks of
// elements: each statement runs over the whole block before the next, so the dispatch on the
// op is paid once per block, not per element. Every statement computes exactly what the
// unfused kind's reference kernel (elementwise_kernels.cc) computes — two-operand ops in
// float, one-operand ops in double narrowed to float, swiglu in double — and then rounds to
// the statement's type as that kernel's store did, so a fused plan gives the same bytes as
// the unfused one. A block's inputs are all read before its output is stored, so the output
// may be exactly one of the inputs (in place).
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

#include "fusion/rt/fused_elementwise.h"

#include <algorithm>
#include <cmath>

namespace fusion::rt::cpu {

namespace {

/// Elements per parallel work item (as the unfused kernels), and per interpreted block.
constexpr uint64_t kChunk = 1 << 15;
constexpr uint64_t kBlock = 256;

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

/// `v` rounded to `type` and widened back (what a store and a later load do).
float roundTo(fused::ElemType type, float v) {
  switch (type) {
  case fused::ElemType::BF16:
    return bf16ToFloat(floatToBf16(v));
  case fused::ElemType::F16:
    return f16ToFloat(floatToF16(v));
  case fused::ElemType::F32:
    break;
  }
  return v;
}

/// out[j] = round(stmt(a[j], b[j])) for j < count, with the unfused kernels' math.
void applyStmt(const fused::Stmt &stmt, const float *a, const float *b, float *out,
               uint64_t count) {
  auto unary = [&](auto op) {
    for (uint64_t j = 0; j < count; ++j)
      out[j] = roundTo(stmt.type, static_cast<float>(op(static_cast<double>(a[j]))));
  };
  auto binary = [&](auto op) {
    for (uint64_t j = 0; j < count; ++j)
      out[j] = roundTo(stmt.type, op(a[j], b[j]));
  };
  switch (stmt.op) {
  case fused::Op::Add:
    return binary([](float x, float y) { return x + y; });
  case fused::Op::Sub:
    return binary([](float x, float y) { return x - y; });
  case fused::Op::Mul:
    return binary([](float x, float y) { return x * y; });
  case fused::Op::Swiglu:
    return binary([](float gate, float up) {
      double g = gate;
      return static_cast<float>(g * sigmoid(g) * up);
    });
  case fused::Op::Silu:
    return unary([](double v) { return v * sigmoid(v); });
  case fused::Op::Sigmoid:
    return unary([](double v) { return sigmoid(v); });
  case fused::Op::Exp:
    return unary([](double v) { return std::exp(v); });
  case fused::Op::Neg:
    return unary([](double v) { return -v; });
  case fused::Op::Softplus:
    return unary([](double v) {
      return v > 20 ? v : std::max(v, 0.0) + std::log1p(std::exp(-std::abs(v)));
    });
  case fused::Op::Cast:
    return unary([](double v) { return v; });
  case fused::Op::Scale: {
    double factor = stmt.constant;
    return unary([factor](double v) { return factor * v; });
  }
  case fused::Op::Softcap: {
    double cap = stmt.constant;
    return unary([cap](double v) { return cap * std::tanh(v / cap); });
  }
  }
}

} // namespace

Status fusedElementwiseKernel(const KernelContext &context) {
  FUSION_ASSIGN_OR_RETURN(std::string expr, context.stringAttr("expr"));
  fused::Program program;
  std::string error;
  if (!fused::parse(expr, program, error))
    return Status(StatusCode::kInvalidArgument, "invalid expr \"" + expr + "\": " + error);
  FUSION_RETURN_IF_ERROR(context.expectArity(program.numInputs, 1));
  const Tensor &out = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(out, "output 0"));
  uint64_t n = out.info->numElements;
  for (size_t i = 0; i < context.inputs.size(); ++i) {
    std::string role = "input " + std::to_string(i);
    FUSION_RETURN_IF_ERROR(context.expectFloat(context.inputs[i], role));
    FUSION_RETURN_IF_ERROR(context.expectNumElements(context.inputs[i], role, n));
  }
  fused::ElemType outType = program.stmts[program.output].type;
  if (out.info->dtype != fusedStorageType(outType))
    return tensorError(out, "output 0",
                       std::string("must have the type of the value stored to out0 (") +
                           fused::typeName(outType) + ")");

  const size_t numInputs = program.numInputs, numStmts = program.stmts.size();
  context.parallelFor(n, kChunk, [&](uint64_t begin, uint64_t end) {
    // Rows of kBlock floats: the inputs, then one per statement.
    std::vector<float> scratch((numInputs + numStmts) * kBlock);
    auto row = [&](const fused::Value &value) {
      return scratch.data() + (value.isInput ? value.index : numInputs + value.index) * kBlock;
    };
    for (uint64_t base = begin; base < end; base += kBlock) {
      uint64_t count = std::min<uint64_t>(kBlock, end - base);
      for (size_t i = 0; i < numInputs; ++i)
        loadRow(context.inputs[i], base, count, scratch.data() + i * kBlock);
      for (size_t k = 0; k < numStmts; ++k) {
        const fused::Stmt &stmt = program.stmts[k];
        const float *b = stmt.numArgs > 1 ? row(stmt.args[1]) : nullptr;
        applyStmt(stmt, row(stmt.args[0]), b, scratch.data() + (numInputs + k) * kBlock, count);
      }
      // The last statement's value is already rounded to the output's type: the store is
      // exact.
      storeRow(out, base, count, scratch.data() + (numInputs + program.output) * kBlock);
    }
  });
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
