//===- KernelSource.cpp - CUDA C++ for plan kernels -----------------------===//
//
// Part of the FusionLLM compiler.
//
// The kind table (one generator per kind, registered by kinds/*.cpp), the wrapper helpers
// the families share, and template expansion from the texts embedded at build time
// (CudaTemplates.inc, generated from templates/*.cuh).
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/KernelSource.h"
#include "compiler/Target/CUDA/Kinds.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cstring>

using namespace llvm;
using namespace mlir::fusion::cuda;

namespace {

struct EmbeddedTemplate {
  const char *name;
  const char *text;
};

// clang-format off
const EmbeddedTemplate kTemplates[] = {
#include "CudaTemplates.inc"
};
// clang-format on

const std::vector<KindGenerator> &kindTable() {
  static const std::vector<KindGenerator> table = [] {
    std::vector<KindGenerator> kinds;
    addElementwiseKinds(kinds);
    addNormKinds(kinds);
    addLayoutKinds(kinds);
    addAttentionKinds(kinds);
    addGdnKinds(kinds);
    addMoeKinds(kinds);
    addLossKinds(kinds);
    addOptimizerKinds(kinds);
    addPointwiseKinds(kinds);
    addInitKinds(kinds);
    std::sort(kinds.begin(), kinds.end(), [](const KindGenerator &a, const KindGenerator &b) {
      return std::strcmp(a.kind, b.kind) < 0;
    });
    return kinds;
  }();
  return table;
}

const KindGenerator *findKind(StringRef kind) {
  for (const KindGenerator &generator : kindTable())
    if (kind == generator.kind)
      return &generator;
  return nullptr;
}

} // namespace

//===----------------------------------------------------------------------===//
// Types and attributes
//===----------------------------------------------------------------------===//

StringRef mlir::fusion::cuda::storageName(ElementType type) {
  switch (type) {
  case ElementType::F32:
    return "float";
  case ElementType::BF16:
    return "__nv_bfloat16";
  case ElementType::F16:
    return "__half";
  case ElementType::I32:
    return "int32_t";
  case ElementType::I64:
    return "int64_t";
  }
  llvm_unreachable("unknown element type");
}

StringRef mlir::fusion::cuda::elementTypeName(ElementType type) {
  switch (type) {
  case ElementType::F32:
    return "f32";
  case ElementType::BF16:
    return "bf16";
  case ElementType::F16:
    return "f16";
  case ElementType::I32:
    return "i32";
  case ElementType::I64:
    return "i64";
  }
  llvm_unreachable("unknown element type");
}

Expected<double> KernelDesc::getFloat(StringRef key) const {
  if (auto it = floats.find(key); it != floats.end())
    return it->second;
  if (auto it = ints.find(key); it != ints.end())
    return static_cast<double>(it->second);
  return kindError(*this, "needs the float attribute '" + key + "'");
}

double KernelDesc::getFloat(StringRef key, double defaultValue) const {
  if (auto it = floats.find(key); it != floats.end())
    return it->second;
  if (auto it = ints.find(key); it != ints.end())
    return static_cast<double>(it->second);
  return defaultValue;
}

Expected<int64_t> KernelDesc::getInt(StringRef key) const {
  if (auto it = ints.find(key); it != ints.end())
    return it->second;
  return kindError(*this, "needs the integer attribute '" + key + "'");
}

int64_t KernelDesc::getInt(StringRef key, int64_t defaultValue) const {
  if (auto it = ints.find(key); it != ints.end())
    return it->second;
  return defaultValue;
}

Expected<std::string> KernelDesc::getString(StringRef key) const {
  if (auto it = strings.find(key); it != strings.end())
    return it->second;
  return kindError(*this, "needs the string attribute '" + key + "'");
}

Expected<SmallVector<int64_t>> KernelDesc::getList(StringRef key) const {
  if (auto it = lists.find(key); it != lists.end())
    return it->second;
  return kindError(*this, "needs the integer list attribute '" + key + "'");
}

//===----------------------------------------------------------------------===//
// Helpers for the families
//===----------------------------------------------------------------------===//

Error mlir::fusion::cuda::kindError(const KernelDesc &desc, const Twine &message) {
  return createStringError("kernel @" + desc.name + " (kind '" + desc.kind + "'): " + message);
}

std::string mlir::fusion::cuda::shapeString(ArrayRef<int64_t> shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

Error mlir::fusion::cuda::checkShape(const KernelDesc &desc, ArrayRef<int64_t> shape,
                                     ArrayRef<int64_t> expected, StringRef what) {
  if (shape == expected)
    return Error::success();
  return kindError(desc, what + " must have shape " + shapeString(expected) + ", got " +
                             shapeString(shape));
}

Error mlir::fusion::cuda::checkArity(const KernelDesc &desc, int numInputs, int numOutputs) {
  auto mismatch = [&](int expected, size_t actual, StringRef what) -> Error {
    return kindError(desc, "expects " + Twine(expected) + " " + what + " buffer(s), got " +
                                 Twine(actual));
  };
  if (numInputs >= 0 && desc.inputs.size() != static_cast<size_t>(numInputs))
    return mismatch(numInputs, desc.inputs.size(), "input");
  if (numOutputs >= 0 && desc.outputs.size() != static_cast<size_t>(numOutputs))
    return mismatch(numOutputs, desc.outputs.size(), "output");
  return Error::success();
}

static bool isFloatType(ElementType type) {
  return type == ElementType::F32 || type == ElementType::BF16 || type == ElementType::F16;
}

Error mlir::fusion::cuda::checkFloat(const KernelDesc &desc, ArrayRef<unsigned> inputs,
                                     ArrayRef<unsigned> outputs) {
  for (unsigned i : inputs)
    if (i >= desc.inputs.size() || !isFloatType(desc.inputs[i]))
      return kindError(desc, "input " + Twine(i) + " must be a float buffer (f32, bf16, f16)");
  for (unsigned i : outputs)
    if (i >= desc.outputs.size() || !isFloatType(desc.outputs[i]))
      return kindError(desc,
                         "output " + Twine(i) + " must be a float buffer (f32, bf16, f16)");
  return Error::success();
}

Error mlir::fusion::cuda::checkIndex(const KernelDesc &desc, bool isOutput, unsigned index) {
  const SmallVector<ElementType> &types = isOutput ? desc.outputs : desc.inputs;
  if (index >= types.size() ||
      (types[index] != ElementType::I32 && types[index] != ElementType::I64))
    return kindError(desc, Twine(isOutput ? "output " : "input ") + Twine(index) +
                                 " must be an index buffer (i32, i64)");
  return Error::success();
}

Error mlir::fusion::cuda::checkRank(const KernelDesc &desc, ArrayRef<int64_t> shape,
                                    size_t rank, StringRef what) {
  if (shape.size() != rank)
    return kindError(desc, what + " must have rank " + Twine(rank) + ", got rank " +
                                 Twine(shape.size()));
  return Error::success();
}

std::string mlir::fusion::cuda::wrapKernel(const KernelDesc &desc, ArrayRef<StringRef> templates,
                                           ArrayRef<StringRef> inputNames,
                                           ArrayRef<StringRef> outputNames,
                                           ArrayRef<StringRef> intArgNames, StringRef body,
                                           StringRef launchBounds) {
  std::string text;
  raw_string_ostream os(text);
  // No kernel name here: kernels whose code is equal (parameters that travel as launch
  // arguments) then share one nvcc compile and one cubin in the plan.
  os << "// Generated by fusionc (fplan-codegen-cuda) for kind '" << desc.kind
     << "'. Do not edit.\n";
  for (StringRef name : templates)
    os << "#include \"fusion/" << name << ".cuh\"\n";
  os << "\nextern \"C\" __global__ void ";
  if (!launchBounds.empty())
    os << "__launch_bounds__(" << launchBounds << ") ";
  os << entryName(desc) << "(";
  bool first = true;
  auto separator = [&] {
    if (!first)
      os << ", ";
    first = false;
  };
  // A list shorter than the buffers numbers its last name (variadic inputs: x0, x1, ...).
  auto emitBuffers = [&](ArrayRef<ElementType> types, ArrayRef<StringRef> names, bool isConst) {
    for (size_t i = 0; i < types.size(); ++i) {
      separator();
      if (isConst)
        os << "const ";
      os << storageName(types[i]) << "* ";
      if (i + 1 < names.size() || (i + 1 == names.size() && types.size() == names.size()))
        os << names[i];
      else
        os << names.back() << (i - (names.size() - 1));
    }
  };
  emitBuffers(desc.inputs, inputNames, /*isConst=*/true);
  emitBuffers(desc.outputs, outputNames, /*isConst=*/false);
  for (StringRef name : intArgNames) {
    separator();
    os << "int64_t " << name;
  }
  os << ") {\n  " << body << "\n}\n";
  return text;
}

std::string mlir::fusion::cuda::floatLiteral(double value) {
  return formatv("(float){0}", doubleLiteral(static_cast<float>(value))).str();
}

std::string mlir::fusion::cuda::doubleLiteral(double value) {
  std::string text;
  raw_string_ostream os(text);
  os << format("%.17g", value);
  // Keep it a floating literal ("1" -> "1.0").
  if (text.find_first_of(".eEn") == std::string::npos)
    text += ".0";
  return text;
}

int64_t mlir::fusion::cuda::doubleBits(double value) {
  int64_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

int64_t mlir::fusion::cuda::numElements(ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

int64_t mlir::fusion::cuda::roundThreads(int64_t work, int64_t cap) {
  int64_t threads = 32;
  while (threads < work && threads < cap)
    threads *= 2;
  return threads;
}

LaunchConfig mlir::fusion::cuda::gridStride(int64_t n, int64_t blockSize) {
  LaunchConfig config;
  int64_t blocks =
      std::min<int64_t>(std::max<int64_t>((n + blockSize - 1) / blockSize, 1), 65535);
  config.grid = {blocks, 1, 1};
  config.block = {blockSize, 1, 1};
  config.args = {n};
  return config;
}

//===----------------------------------------------------------------------===//
// Public entry points
//===----------------------------------------------------------------------===//

bool mlir::fusion::cuda::canGenerate(StringRef kind) { return findKind(kind) != nullptr; }

SmallVector<StringRef> mlir::fusion::cuda::generatedKinds() {
  SmallVector<StringRef> kinds;
  for (const KindGenerator &generator : kindTable())
    kinds.push_back(generator.kind);
  return kinds;
}

std::string mlir::fusion::cuda::entryName(const KernelDesc &desc) {
  return "fusion_" + desc.kind;
}

Expected<std::string> mlir::fusion::cuda::generateKernelSource(const KernelDesc &desc) {
  const KindGenerator *generator = findKind(desc.kind);
  if (!generator)
    return createStringError("no CUDA template for kernel kind '" + desc.kind + "'");
  return generator->source(desc);
}

Expected<LaunchConfig> mlir::fusion::cuda::computeLaunchConfig(const KernelDesc &desc,
                                                               const LaunchShapes &shapes) {
  const KindGenerator *generator = findKind(desc.kind);
  if (!generator)
    return createStringError("no CUDA template for kernel kind '" + desc.kind + "'");
  if (shapes.inputs.size() != desc.inputs.size() || shapes.outputs.size() != desc.outputs.size())
    return kindError(desc, "launch binds " + Twine(shapes.inputs.size()) + " input(s) and " +
                                 Twine(shapes.outputs.size()) + " output(s), the kernel " +
                                 Twine(desc.inputs.size()) + " and " +
                                 Twine(desc.outputs.size()));
  return generator->launch(desc, shapes);
}

Expected<std::string> mlir::fusion::cuda::expandTemplates(StringRef source) {
  std::string out;
  StringSet<> included;
  // Expands `text` into `out`; `depth` guards against include cycles.
  std::function<Error(StringRef, unsigned)> expand = [&](StringRef text,
                                                         unsigned depth) -> Error {
    if (depth > 8)
      return createStringError("template includes nest deeper than 8 levels");
    while (!text.empty()) {
      auto [line, rest] = text.split('\n');
      text = rest;
      StringRef trimmed = line.trim();
      if (trimmed == "#pragma once")
        continue;
      if (trimmed.consume_front("#include \"fusion/") && trimmed.consume_back(".cuh\"")) {
        if (!included.insert(trimmed).second)
          continue;
        const EmbeddedTemplate *found = nullptr;
        for (const EmbeddedTemplate &t : kTemplates)
          if (trimmed == t.name)
            found = &t;
        if (!found)
          return createStringError("unknown kernel template 'fusion/" + trimmed + ".cuh'");
        if (Error error = expand(found->text, depth + 1))
          return error;
        continue;
      }
      out.append(line.begin(), line.end());
      out.push_back('\n');
    }
    return Error::success();
  };
  if (Error error = expand(source, 0))
    return std::move(error);
  return out;
}
