//===- Elementwise.cpp - CUDA generators for elementwise kinds ------------===//
//
// Part of the FusionLLM compiler.
//
// fill, add, sub, mul, swiglu, silu, sigmoid, exp, neg, softplus, scale, softcap, reshape,
// cast: grid-stride loops of templates/elementwise.cuh with the math as a lambda, fp32
// arithmetic whatever the storage type (as the CPU reference kernels). fused_elementwise
// (fplan-fuse-elementwise): the same math for each statement of its `expr`, straight-line.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

#include "runtime/include/fusion/rt/fused_elementwise.h"

#include "llvm/Support/FormatVariadic.h"

using namespace llvm;
using namespace mlir::fusion::cuda;
namespace fused = ::fusion::rt::fused;

namespace {

Expected<LaunchConfig> elementwiseLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  return gridStride(numElements(shapes.outputs[0]), desc.blockSize);
}

/// out = f(x) with `expression` in terms of the float `v`.
Expected<std::string> unary(const KernelDesc &desc, StringRef expression) {
  if (Error error = checkArity(desc, 1, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0}, {0}))
    return std::move(error);
  return wrapKernel(desc, {"elementwise"}, {"x"}, {"out"}, {"n"},
                    formatv("fk::unary(x, out, n, [](float v) {{ return {0}; });", expression)
                        .str());
}

/// out = f(a, b) with `expression` in terms of the floats `x` and `y`.
Expected<std::string> binary(const KernelDesc &desc, StringRef expression) {
  if (Error error = checkArity(desc, 2, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0, 1}, {0}))
    return std::move(error);
  return wrapKernel(
      desc, {"elementwise"}, {"a", "b"}, {"out"}, {"n"},
      formatv("fk::binary(a, b, out, n, [](float x, float y) {{ return {0}; });", expression)
          .str());
}

Expected<std::string> fillSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 0, 1))
    return std::move(error);
  Expected<double> value = desc.getFloat("value");
  if (!value)
    return value.takeError();
  return wrapKernel(desc, {"elementwise"}, {}, {"out"}, {"n"},
                    formatv("fk::fill(out, n, {0}, {1});", doubleLiteral(*value),
                            doubleLiteral(desc.getFloat("step", 0.0)))
                        .str());
}

Expected<std::string> castSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 1, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {}, {0}))
    return std::move(error);
  return wrapKernel(desc, {"elementwise"}, {"x"}, {"out"}, {"n"}, "fk::cast(x, out, n);");
}

Expected<std::string> scaleSource(const KernelDesc &desc) {
  Expected<double> factor = desc.getFloat("factor");
  if (!factor)
    return factor.takeError();
  return unary(desc, floatLiteral(*factor) + " * v");
}

Expected<std::string> softcapSource(const KernelDesc &desc) {
  Expected<double> cap = desc.getFloat("cap");
  if (!cap)
    return cap.takeError();
  if (!(*cap > 0))
    return createStringError("softcap needs a positive 'cap', got " + std::to_string(*cap));
  std::string c = floatLiteral(*cap);
  return unary(desc, c + " * tanhf(v / " + c + ")");
}

Expected<std::string> reshapeSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 1, 1))
    return std::move(error);
  if (desc.inputs[0] != desc.outputs[0])
    return createStringError("kernel @" + desc.name + " (kind 'reshape'): copies " +
                             elementTypeName(desc.inputs[0]) + " into " +
                             elementTypeName(desc.outputs[0]) +
                             "; a reshape keeps the element type");
  return wrapKernel(desc, {"elementwise"}, {"x"}, {"out"}, {"n"}, "fk::copy(x, out, n);");
}

/// CUDA float expression of one fused statement on the operand expressions `a` (and `b`),
/// the same math as the unfused kind's lambda above. The multiplications and additions that
/// end a statement are __fmul_rn / __fadd_rn / __fsub_rn so nvcc cannot contract them with
/// the next statement into an FMA, which the unfused kernels (separated by a store) never do.
std::string fusedStmtExpression(const fused::Stmt &stmt, const std::string &a,
                                const std::string &b) {
  switch (stmt.op) {
  case fused::Op::Add:
    return "__fadd_rn(" + a + ", " + b + ")";
  case fused::Op::Sub:
    return "__fsub_rn(" + a + ", " + b + ")";
  case fused::Op::Mul:
    return "__fmul_rn(" + a + ", " + b + ")";
  case fused::Op::Swiglu:
    return "__fmul_rn(" + a + " / (1.0f + expf(-" + a + ")), " + b + ")";
  case fused::Op::Silu:
    return a + " / (1.0f + expf(-" + a + "))";
  case fused::Op::Sigmoid:
    return "1.0f / (1.0f + expf(-" + a + "))";
  case fused::Op::Exp:
    return "expf(" + a + ")";
  case fused::Op::Neg:
    return "-" + a;
  case fused::Op::Softplus:
    return a + " > 20.0f ? " + a + " : fmaxf(" + a + ", 0.0f) + log1pf(expf(-fabsf(" + a + ")))";
  case fused::Op::Cast:
    return a;
  case fused::Op::Scale:
    return "__fmul_rn(" + floatLiteral(stmt.constant) + ", " + a + ")";
  case fused::Op::Softcap: {
    std::string c = floatLiteral(stmt.constant);
    return "__fmul_rn(" + c + ", tanhf(" + a + " / " + c + "))";
  }
  }
  return a;
}

/// fused_elementwise: the `expr` program as straight-line code in a grid-stride loop, each
/// statement's value rounded to its type (bf16/f16 through a store-and-load conversion).
Expected<std::string> fusedSource(const KernelDesc &desc) {
  Expected<std::string> expr = desc.getString("expr");
  if (!expr)
    return expr.takeError();
  fused::Program program;
  std::string error;
  if (!fused::parse(*expr, program, error))
    return kindError(desc, "invalid expr \"" + *expr + "\": " + error);
  if (Error e = checkArity(desc, static_cast<int>(program.numInputs), 1))
    return std::move(e);
  SmallVector<unsigned> inputs;
  for (unsigned i = 0; i < program.numInputs; ++i)
    inputs.push_back(i);
  if (Error e = checkFloat(desc, inputs, {0}))
    return std::move(e);
  fused::ElemType outType = program.stmts[program.output].type;
  if (elementTypeName(desc.outputs[0]) != fused::typeName(outType))
    return kindError(desc, Twine("stores a ") + fused::typeName(outType) +
                               " value to out0, but the output is " +
                               elementTypeName(desc.outputs[0]));
  std::string body;
  raw_string_ostream os(body);
  os << "for (int64_t i = fk::globalThread(); i < n; i += fk::gridThreads()) {\n";
  for (unsigned i = 0; i < program.numInputs; ++i)
    os << "    const float in" << i << "v = fk::ld(in" << i << "[i]);\n";
  auto name = [](const fused::Value &value) {
    return value.isInput ? "in" + std::to_string(value.index) + "v"
                         : "v" + std::to_string(value.index);
  };
  for (size_t k = 0; k < program.stmts.size(); ++k) {
    const fused::Stmt &stmt = program.stmts[k];
    std::string a = name(stmt.args[0]), b = stmt.numArgs > 1 ? name(stmt.args[1]) : "";
    std::string value = fusedStmtExpression(stmt, a, b);
    os << "    const float v" << k << " = ";
    switch (stmt.type) {
    case fused::ElemType::F32:
      os << value;
      break;
    case fused::ElemType::BF16:
      os << "fk::roundBf16(" << value << ")";
      break;
    case fused::ElemType::F16:
      os << "fk::roundF16(" << value << ")";
      break;
    }
    os << ";\n";
  }
  os << "    fk::st(out + i, v" << program.output << ");\n  }";
  std::vector<std::string> names;
  for (unsigned i = 0; i < program.numInputs; ++i)
    names.push_back("in" + std::to_string(i));
  SmallVector<StringRef> nameRefs(names.begin(), names.end());
  return wrapKernel(desc, {"elementwise"}, nameRefs, {"out"}, {"n"}, body);
}

} // namespace

void mlir::fusion::cuda::addElementwiseKinds(std::vector<KindGenerator> &kinds) {
  kinds.push_back({"fill", fillSource, elementwiseLaunch});
  kinds.push_back({"cast", castSource, elementwiseLaunch});
  kinds.push_back({"scale", scaleSource, elementwiseLaunch});
  kinds.push_back({"softcap", softcapSource, elementwiseLaunch});
  kinds.push_back({"add", [](const KernelDesc &d) { return binary(d, "x + y"); },
                   elementwiseLaunch});
  kinds.push_back({"sub", [](const KernelDesc &d) { return binary(d, "x - y"); },
                   elementwiseLaunch});
  kinds.push_back({"mul", [](const KernelDesc &d) { return binary(d, "x * y"); },
                   elementwiseLaunch});
  kinds.push_back({"swiglu", [](const KernelDesc &d) { return binary(d, "x / (1.0f + expf(-x)) * y"); },
                   elementwiseLaunch});
  kinds.push_back({"silu", [](const KernelDesc &d) { return unary(d, "v / (1.0f + expf(-v))"); },
                   elementwiseLaunch});
  kinds.push_back({"sigmoid", [](const KernelDesc &d) { return unary(d, "1.0f / (1.0f + expf(-v))"); },
                   elementwiseLaunch});
  kinds.push_back({"exp", [](const KernelDesc &d) { return unary(d, "expf(v)"); },
                   elementwiseLaunch});
  kinds.push_back({"neg", [](const KernelDesc &d) { return unary(d, "-v"); }, elementwiseLaunch});
  // MODEL.md §1: softplus(x) = x above 20.
  kinds.push_back({"softplus",
                   [](const KernelDesc &d) {
                     return unary(d, "v > 20.0f ? v : fmaxf(v, 0.0f) + log1pf(expf(-fabsf(v)))");
                   },
                   elementwiseLaunch});
  kinds.push_back({"fused_elementwise", fusedSource, elementwiseLaunch});
  // The plan's reshape is a copy (not an alias), of any element type.
  kinds.push_back({"reshape", reshapeSource, elementwiseLaunch});
}
