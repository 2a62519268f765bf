//===- Layout.cpp - CUDA generators for the layout kinds ----------===//
//
// Part of the FusionLLM compiler.
//
// slice, slice_grad, concat, broadcast, transpose, sum, embedding, embedding_grad
// (templates/layout.cuh). The launch functions check every shape the CPU kernels check
// (runtime/src/cpu/layout_kernels.cc, embedding_kernel.cc, grad_kernels.cc) and reduce it to
// the few numbers the device code needs:
//   slice, slice_grad  [outer, full, inner] around `dim`; args (outer, full, size, start,
//                      inner); a grid-stride copy of 16-byte units where rows allow.
//   concat             the output as [outer, total, inner]; blockIdx.y picks the input;
//                      args (outer, inner, total, size_0, ..., size_{n-1}).
//   transpose,         a strided gather over the output with one input stride per output
//   broadcast          dimension (0 for a broadcast one); size-1 dimensions are dropped and
//                      contiguous neighbours merged, at most 8 remain; args (rank,
//                      size_0..7, stride_0..7), dimension 0 innermost.
//   sum                dimensions classified kept / reduced, size-1 ones dropped and
//                      neighbours of one class merged: the trailing kept run is K2, at most
//                      4 groups of each class remain; args (numOut, R, K2, keptSize_0..3,
//                      keptStride_0..3, redSize_0..3, redStride_0..3). Block (TX, TY): TX
//                      consecutive outputs (up to 32; up to 128 for short reductions), TY
//                      (a power of two) threads over the reduced elements; fp64
//                      accumulation. Up to 32 outputs with long reductions
//                      split the reduced range over grid.y <= 256 blocks (fp64 partials in
//                      module scratch, summed in block order by the last block).
//   embedding          grid-stride over (token, 16-byte unit of the row); args (count, V, D).
//   embedding_grad     grid (ceil(V / R), ceil(D / C)), block C threads (the power of two
//                      >= D, 32 to 1024), one per column; R rows of fp64 accumulators per
//                      block (R·C·8 bytes of shared memory, at most 160 KiB, and at most
//                      ceil(V / 264) rows so small tables still spread over the GPU) plus a
//                      token list of C·8 entries; args (count, V, D, R). Deterministic and
//                      bit-identical to the CPU kernel; an id outside [0, V) adds nothing
//                      (the CPU kernel rejects it), embedding writes a zero row for it.
// Faster versions: transposes that move the innermost dimension would use a shared-memory
// tile (none in the model: every transpose keeps the last dimension); fast integer division
// (precomputed magic numbers) for the gathers' index math; a cluster (DSMEM) reduction for
// single-output sums, and splitting long reductions of more than 32 outputs too;
// embedding_grad from a sort of the ids (a radix sort of 32k keys, then
// one segment per row) instead of every block scanning all ids.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>

using namespace llvm;
using namespace mlir::fusion::cuda;

namespace {

/// Dimensions of a merged gather (fk::kLayoutMaxDims) and groups of a sum
/// (fk::kSumMaxGroups); sum splits (fk::kSumMaxSplits) and embedding_grad's chunk
/// (fk::kGradIdsPerThread).
constexpr int64_t kMaxDims = 8;
constexpr int64_t kMaxGroups = 4;
constexpr int64_t kMaxSplits = 256;
constexpr int64_t kIdsPerThread = 8;
/// embedding_grad's fp64 accumulator budget per block.
constexpr int64_t kGradAccBytes = 160 * 1024;

std::string listString(ArrayRef<int64_t> values) {
  std::string text = "[";
  for (size_t i = 0; i < values.size(); ++i)
    text += (i ? ", " : "") + std::to_string(values[i]);
  return text + "]";
}

int64_t elementBytes(ElementType type) {
  switch (type) {
  case ElementType::BF16:
  case ElementType::F16:
    return 2;
  case ElementType::I64:
    return 8;
  default:
    return 4;
  }
}

int64_t product(ArrayRef<int64_t> shape, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end && i < shape.size(); ++i)
    n *= shape[i];
  return n;
}

/// Row-major element strides of `shape`.
SmallVector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    strides[d - 1] = strides[d] * shape[d];
  return strides;
}

/// The widest unit (<= 16 bytes) dividing `bytes`, assuming aligned buffers (the device
/// code checks the addresses): for grid sizes only.
int64_t unitFor(int64_t bytes) {
  int64_t unit = 16;
  while (unit > 1 && bytes % unit != 0)
    unit >>= 1;
  return unit;
}

/// A grid-stride launch over `units` work items with the kernel's block size.
LaunchConfig unitLaunch(const KernelDesc &desc, int64_t units) {
  return gridStride(units, desc.blockSize);
}

/// Fails unless every buffer of the kernel has the element type of output 0.
Error checkSameTypes(const KernelDesc &desc) {
  for (size_t i = 0; i < desc.inputs.size(); ++i)
    if (desc.inputs[i] != desc.outputs[0])
      return kindError(desc, "input " + Twine(i) + " is " + elementTypeName(desc.inputs[i]) +
                                 " but output 0 is " + elementTypeName(desc.outputs[0]) +
                                 "; the kind copies bits and keeps the element type");
  return Error::success();
}

/// An integer attribute that must be >= 0.
Expected<int64_t> nonNegative(const KernelDesc &desc, StringRef key) {
  Expected<int64_t> value = desc.getInt(key);
  if (!value)
    return value.takeError();
  if (*value < 0)
    return kindError(desc, "attribute '" + key + "' must be non-negative, got " +
                               Twine(*value));
  return *value;
}

Expected<int64_t> dimAttribute(const KernelDesc &desc, ArrayRef<int64_t> shape,
                               StringRef what) {
  Expected<int64_t> dim = desc.getInt("dim");
  if (!dim)
    return dim.takeError();
  if (*dim < 0 || *dim >= static_cast<int64_t>(shape.size()))
    return kindError(desc, "attribute 'dim' = " + Twine(*dim) + " is outside [0, " +
                               Twine(shape.size()) + ") for " + what + " of shape " +
                               listString(shape));
  return *dim;
}

//===----------------------------------------------------------------------===//
// slice, slice_grad, concat
//===----------------------------------------------------------------------===//

Expected<std::string> copySource(const KernelDesc &desc, StringRef call, StringRef in,
                                 StringRef out) {
  if (Error error = checkArity(desc, 1, 1))
    return std::move(error);
  if (Error error = checkSameTypes(desc))
    return std::move(error);
  if (desc.kind == "slice") {
    if (Expected<int64_t> size = desc.getInt("size"); !size)
      return size.takeError();
  }
  for (StringRef key : {"dim", "start"})
    if (Expected<int64_t> value = nonNegative(desc, key); !value)
      return value.takeError();
  return wrapKernel(desc, {"layout"}, {in}, {out}, {"outer", "full", "size", "start", "inner"},
                    formatv("fk::{0}({1}, {2}, outer, full, size, start, inner);", call, in,
                            out)
                        .str());
}

/// The launch of a row copy between `big` (the sliced / padded side) and `small`.
Expected<LaunchConfig> windowLaunch(const KernelDesc &desc, ArrayRef<int64_t> big,
                                    StringRef bigName, ArrayRef<int64_t> small,
                                    StringRef smallName, int64_t size, bool smallIsOutput) {
  Expected<int64_t> dim = dimAttribute(desc, big, bigName);
  if (!dim)
    return dim.takeError();
  Expected<int64_t> start = desc.getInt("start");
  if (!start)
    return start.takeError();
  const int64_t full = big[*dim];
  if (*start < 0 || size < (smallIsOutput ? 1 : 0) || *start > full - size)
    return kindError(desc, "slice [" + Twine(*start) + ", " + Twine(*start) + "+" +
                               Twine(size) + ") does not fit dimension " + Twine(*dim) +
                               " of size " + Twine(full) + " of " + bigName);
  SmallVector<int64_t> expected(big);
  expected[*dim] = size;
  if (ArrayRef<int64_t>(expected) != small)
    return kindError(desc, smallName + " must have shape " + listString(expected) + ", got " +
                               listString(small));
  const int64_t outer = product(big, 0, *dim), inner = product(big, *dim + 1, big.size());
  const int64_t w = elementBytes(desc.outputs[0]);
  const int64_t written = smallIsOutput ? outer * size * inner : outer * full * inner;
  LaunchConfig config = unitLaunch(desc, written * w / unitFor(inner * w));
  config.args = {outer, full, size, *start, inner};
  return config;
}

Expected<LaunchConfig> sliceLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<int64_t> size = desc.getInt("size");
  if (!size)
    return size.takeError();
  return windowLaunch(desc, shapes.inputs[0], "input 0", shapes.outputs[0], "output 0", *size,
                      /*smallIsOutput=*/true);
}

Expected<LaunchConfig> sliceGradLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> dy = shapes.inputs[0], dx = shapes.outputs[0];
  if (dy.size() != dx.size())
    return kindError(desc, "input 0 (dy) has rank " + Twine(dy.size()) +
                               " but output 0 (dx) has rank " + Twine(dx.size()));
  Expected<int64_t> dim = dimAttribute(desc, dx, "output 0 (dx)");
  if (!dim)
    return dim.takeError();
  return windowLaunch(desc, dx, "output 0 (dx)", dy, "input 0 (dy)", dy[*dim],
                      /*smallIsOutput=*/false);
}

/// Name of concat input `i` in the wrapper (wrapKernel numbers a variadic tail).
std::string concatInput(const KernelDesc &desc, size_t i) {
  return desc.inputs.size() == 1 ? std::string("x") : "x" + std::to_string(i);
}

Expected<std::string> concatSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, -1, 1))
    return std::move(error);
  if (desc.inputs.empty())
    return kindError(desc, "expects at least 1 input buffer, got 0");
  if (desc.inputs.size() > 65535)
    return kindError(desc, "has " + Twine(desc.inputs.size()) +
                               " inputs; one grid row each allows at most 65535");
  if (Error error = checkSameTypes(desc))
    return std::move(error);
  if (Expected<int64_t> dim = nonNegative(desc, "dim"); !dim)
    return dim.takeError();
  SmallVector<std::string> argNames = {"outer", "inner", "total"};
  for (size_t i = 0; i < desc.inputs.size(); ++i)
    argNames.push_back("size" + std::to_string(i));
  SmallVector<StringRef> argRefs(argNames.begin(), argNames.end());
  std::string body = "switch (blockIdx.y) {\n";
  std::string position = "0";
  for (size_t i = 0; i < desc.inputs.size(); ++i) {
    body += formatv("  case {0}: fk::concatPart({1}, out, outer, inner, total, size{0}, {2}); "
                    "break;\n",
                    i, concatInput(desc, i), position)
                .str();
    position = i == 0 ? "size0" : position + " + size" + std::to_string(i);
  }
  body += "  }";
  return wrapKernel(desc, {"layout"}, {"x"}, {"out"}, argRefs, body);
}

Expected<LaunchConfig> concatLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> out = shapes.outputs[0];
  Expected<int64_t> dim = dimAttribute(desc, out, "output 0");
  if (!dim)
    return dim.takeError();
  int64_t total = 0, widest = 0;
  SmallVector<int64_t> sizes;
  for (size_t i = 0; i < shapes.inputs.size(); ++i) {
    ArrayRef<int64_t> shape = shapes.inputs[i];
    bool ok = shape.size() == out.size();
    for (size_t d = 0; ok && d < shape.size(); ++d)
      ok = static_cast<int64_t>(d) == *dim || shape[d] == out[d];
    if (!ok)
      return kindError(desc, "input " + Twine(i) + " of shape " + listString(shape) +
                                 " must match output 0 " + listString(out) +
                                 " in every dimension but " + Twine(*dim));
    sizes.push_back(shape[*dim]);
    total += shape[*dim];
    widest = std::max(widest, shape[*dim]);
  }
  if (total != out[*dim])
    return kindError(desc, "output 0 must have size " + Twine(total) +
                               " (the inputs' sum) at dimension " + Twine(*dim) + ", got " +
                               Twine(out[*dim]));
  const int64_t outer = product(out, 0, *dim), inner = product(out, *dim + 1, out.size());
  const int64_t w = elementBytes(desc.outputs[0]);
  LaunchConfig config = unitLaunch(desc, outer * widest * inner * w / unitFor(inner * w));
  config.grid[1] = static_cast<int64_t>(shapes.inputs.size());
  config.args = {outer, inner, total};
  config.args.append(sizes.begin(), sizes.end());
  return config;
}

//===----------------------------------------------------------------------===//
// transpose, broadcast
//===----------------------------------------------------------------------===//

Expected<std::string> gatherSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 1, 1))
    return std::move(error);
  if (Error error = checkSameTypes(desc))
    return std::move(error);
  StringRef key = desc.kind == "transpose" ? "perm" : "dims";
  if (Expected<SmallVector<int64_t>> list = desc.getList(key); !list)
    return list.takeError();
  SmallVector<std::string> names = {"rank"};
  for (int64_t d = 0; d < kMaxDims; ++d)
    names.push_back("size" + std::to_string(d));
  for (int64_t d = 0; d < kMaxDims; ++d)
    names.push_back("stride" + std::to_string(d));
  SmallVector<StringRef> refs(names.begin(), names.end());
  return wrapKernel(
      desc, {"layout"}, {"x"}, {"out"}, refs,
      "const int64_t sizes[8] = {size0, size1, size2, size3, size4, size5, size6, size7};\n"
      "  const int64_t strides[8] = {stride0, stride1, stride2, stride3, stride4, stride5, "
      "stride6, stride7};\n"
      "  fk::gather(x, out, (int)rank, sizes, strides);");
}

/// The gather launch for an output of `shape` reading the input at `strides` (elements,
/// one per output dimension).
Expected<LaunchConfig> gatherLaunch(const KernelDesc &desc, ArrayRef<int64_t> shape,
                                    ArrayRef<int64_t> strides) {
  // Innermost first, without size-1 dimensions, contiguous neighbours merged.
  SmallVector<int64_t> sizes, steps;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 1)
      continue;
    if (!sizes.empty() && strides[d] == steps.back() * sizes.back()) {
      sizes.back() *= shape[d];
      continue;
    }
    sizes.push_back(shape[d]);
    steps.push_back(strides[d]);
  }
  if (static_cast<int64_t>(sizes.size()) > kMaxDims)
    return kindError(desc, "output of shape " + listString(shape) + " still has " +
                               Twine(sizes.size()) +
                               " dimensions after merging contiguous ones; at most " +
                               Twine(kMaxDims) + " are supported");
  const int64_t w = elementBytes(desc.outputs[0]);
  int64_t n = numElements(shape), unit = w;
  if (!sizes.empty() && steps[0] == 1) {
    int64_t bytes = sizes[0] * w;
    for (size_t d = 1; d < steps.size(); ++d)
      bytes |= steps[d] * w;
    unit = std::max(unit, unitFor(bytes));
  }
  LaunchConfig config = unitLaunch(desc, n * w / unit);
  config.args = {static_cast<int64_t>(sizes.size())};
  for (int64_t d = 0; d < kMaxDims; ++d)
    config.args.push_back(d < static_cast<int64_t>(sizes.size()) ? sizes[d] : 1);
  for (int64_t d = 0; d < kMaxDims; ++d)
    config.args.push_back(d < static_cast<int64_t>(steps.size()) ? steps[d] : 0);
  return config;
}

Expected<LaunchConfig> transposeLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<SmallVector<int64_t>> perm = desc.getList("perm");
  if (!perm)
    return perm.takeError();
  ArrayRef<int64_t> in = shapes.inputs[0], out = shapes.outputs[0];
  const size_t rank = in.size();
  if (perm->size() != rank)
    return kindError(desc, "attribute 'perm' " + listString(*perm) + " has " +
                               Twine(perm->size()) + " entries, but input 0 has rank " +
                               Twine(rank));
  SmallVector<bool> seen(rank, false);
  for (int64_t p : *perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[p])
      return kindError(desc, "attribute 'perm' " + listString(*perm) +
                                 " is not a permutation of 0.." + Twine(rank - 1));
    seen[p] = true;
  }
  SmallVector<int64_t> expected(rank), inStrides = stridesOf(in), strides(rank);
  for (size_t d = 0; d < rank; ++d) {
    expected[d] = in[(*perm)[d]];
    strides[d] = inStrides[(*perm)[d]];
  }
  if (ArrayRef<int64_t>(expected) != out)
    return kindError(desc, "output 0 must have shape " + listString(expected) + ", got " +
                               listString(out));
  return gatherLaunch(desc, out, strides);
}

/// Fails unless `dims` is strictly increasing within [0, rank).
Error checkDimList(const KernelDesc &desc, ArrayRef<int64_t> dims, StringRef name,
                   size_t rank) {
  for (size_t j = 0; j < dims.size(); ++j) {
    if (dims[j] < 0 || dims[j] >= static_cast<int64_t>(rank))
      return kindError(desc, "attribute '" + name + "' " + listString(dims) + " has entry " +
                                 Twine(dims[j]) + " outside [0, " + Twine(rank) + ")");
    if (j > 0 && dims[j] <= dims[j - 1])
      return kindError(desc, "attribute '" + name + "' " + listString(dims) +
                                 " must be strictly increasing");
  }
  return Error::success();
}

Expected<LaunchConfig> broadcastLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<SmallVector<int64_t>> dims = desc.getList("dims");
  if (!dims)
    return dims.takeError();
  ArrayRef<int64_t> in = shapes.inputs[0], out = shapes.outputs[0];
  if (dims->size() != in.size())
    return kindError(desc, "attribute 'dims' " + listString(*dims) +
                               " needs one entry per input dimension (" + Twine(in.size()) +
                               ")");
  if (Error error = checkDimList(desc, *dims, "dims", out.size()))
    return std::move(error);
  SmallVector<int64_t> inStrides = stridesOf(in), strides(out.size(), 0);
  for (size_t j = 0; j < dims->size(); ++j) {
    if (out[(*dims)[j]] != in[j])
      return kindError(desc, "output 0 must have size " + Twine(in[j]) + " at dimension " +
                                 Twine((*dims)[j]) + " (input dimension " + Twine(j) +
                                 ", attribute 'dims' " + listString(*dims) + "), got " +
                                 Twine(out[(*dims)[j]]));
    strides[(*dims)[j]] = inStrides[j];
  }
  return gatherLaunch(desc, out, strides);
}

//===----------------------------------------------------------------------===//
// sum
//===----------------------------------------------------------------------===//

Expected<std::string> sumSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 1, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0}, {0}))
    return std::move(error);
  if (Expected<SmallVector<int64_t>> dims = desc.getList("dims"); !dims)
    return dims.takeError();
  SmallVector<std::string> names = {"numOut", "R", "K2"};
  for (StringRef prefix : {"keptSize", "keptStride", "redSize", "redStride"})
    for (int64_t g = 0; g < kMaxGroups; ++g)
      names.push_back(prefix.str() + std::to_string(g));
  SmallVector<StringRef> refs(names.begin(), names.end());
  return wrapKernel(
      desc, {"layout"}, {"x"}, {"out"}, refs,
      "const int64_t keptSize[4] = {keptSize0, keptSize1, keptSize2, keptSize3};\n"
      "  const int64_t keptStride[4] = {keptStride0, keptStride1, keptStride2, keptStride3};\n"
      "  const int64_t redSize[4] = {redSize0, redSize1, redSize2, redSize3};\n"
      "  const int64_t redStride[4] = {redStride0, redStride1, redStride2, redStride3};\n"
      "  fk::sum(x, out, numOut, R, K2, keptSize, keptStride, redSize, redStride);",
      "1024");
}

Expected<LaunchConfig> sumLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  Expected<SmallVector<int64_t>> dims = desc.getList("dims");
  if (!dims)
    return dims.takeError();
  ArrayRef<int64_t> in = shapes.inputs[0], out = shapes.outputs[0];
  const size_t rank = in.size();
  if (rank > static_cast<size_t>(kMaxDims))
    return kindError(desc, "input 0 has rank " + Twine(rank) + "; at most " +
                               Twine(kMaxDims) + " is supported");
  if (Error error = checkDimList(desc, *dims, "dims", rank))
    return std::move(error);
  SmallVector<bool> reduced(rank, false);
  for (int64_t d : *dims)
    reduced[d] = true;
  SmallVector<int64_t> expected;
  for (size_t d = 0; d < rank; ++d)
    if (!reduced[d])
      expected.push_back(in[d]);
  if (ArrayRef<int64_t>(expected) != out)
    return kindError(desc, "output 0 must have shape " + listString(expected) + ", got " +
                               listString(out));

  // Groups, innermost first: size-1 dimensions dropped, neighbours of one class merged
  // (row-major strides make them contiguous).
  struct Group {
    bool reduced;
    int64_t size, stride;
  };
  SmallVector<Group> groups;
  SmallVector<int64_t> strides = stridesOf(in);
  for (size_t d = rank; d-- > 0;) {
    if (in[d] == 1)
      continue;
    if (!groups.empty() && groups.back().reduced == reduced[d]) {
      groups.back().size *= in[d];
      continue;
    }
    groups.push_back({reduced[d], in[d], strides[d]});
  }
  int64_t K2 = 1;
  size_t first = 0;
  if (!groups.empty() && !groups[0].reduced) {
    K2 = groups[0].size;
    first = 1;
  }
  SmallVector<int64_t> keptSize, keptStride, redSize, redStride;
  for (size_t g = first; g < groups.size(); ++g) {
    (groups[g].reduced ? redSize : keptSize).push_back(groups[g].size);
    (groups[g].reduced ? redStride : keptStride).push_back(groups[g].stride);
  }
  if (static_cast<int64_t>(keptSize.size()) > kMaxGroups ||
      static_cast<int64_t>(redSize.size()) > kMaxGroups)
    return kindError(desc, "dimensions " + listString(*dims) + " of input 0 " +
                               listString(in) + " alternate into more than " +
                               Twine(kMaxGroups) + " kept or reduced groups");
  const int64_t numOut = numElements(out);
  int64_t reducedCount = 1;
  for (int64_t d : *dims)
    reducedCount *= in[d];

  // Block: TX outputs by TY threads over the reduced elements (a power of two).
  int64_t TX = K2 > 1 ? std::min<int64_t>(32, PowerOf2Ceil(K2)) : 1;
  const int64_t budget = numOut <= TX * 264 ? 1024 : 256;
  int64_t TY = std::min<int64_t>(PowerOf2Ceil(std::max<int64_t>(reducedCount, 1)), budget / TX);
  if (TX * TY < 128)
    TX = std::max<int64_t>(
        TX, std::min<int64_t>(PowerOf2Ceil(std::max<int64_t>(numOut, 1)), 128 / TY));
  const int64_t tiles = (numOut + TX - 1) / TX;
  // Split long reductions of up to TX (<= 32) outputs over several blocks.
  int64_t splits = 1;
  if (tiles == 1 && TX <= 32)
    splits = std::clamp<int64_t>(numOut * reducedCount / 16384, 1, kMaxSplits);

  LaunchConfig config;
  config.grid = {std::clamp<int64_t>(tiles, 1, 65535), splits, 1};
  config.block = {TX, TY, 1};
  config.smem = TX * TY * 8;
  config.args = {numOut, reducedCount, K2};
  // Unused groups: size 1, stride 0.
  auto append = [&](ArrayRef<int64_t> list, int64_t fill) {
    for (int64_t g = 0; g < kMaxGroups; ++g)
      config.args.push_back(g < static_cast<int64_t>(list.size()) ? list[g] : fill);
  };
  append(keptSize, 1);
  append(keptStride, 0);
  append(redSize, 1);
  append(redStride, 0);
  return config;
}

//===----------------------------------------------------------------------===//
// embedding, embedding_grad
//===----------------------------------------------------------------------===//

Expected<std::string> embeddingSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 2, 1))
    return std::move(error);
  if (Error error = checkFloat(desc, {0}, {0}))
    return std::move(error);
  if (Error error = checkIndex(desc, /*isOutput=*/false, 1))
    return std::move(error);
  if (desc.outputs[0] != desc.inputs[0])
    return kindError(desc, "output 0 is " + elementTypeName(desc.outputs[0]) +
                               " but input 0 (table) is " + elementTypeName(desc.inputs[0]) +
                               "; rows are copied and keep the element type");
  return wrapKernel(desc, {"layout"}, {"table", "ids"}, {"out"}, {"count", "vocab", "dim"},
                    "fk::embedding(table, ids, out, count, vocab, dim);");
}

Expected<LaunchConfig> embeddingLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> table = shapes.inputs[0], ids = shapes.inputs[1], out = shapes.outputs[0];
  if (Error error = checkRank(desc, table, 2, "input 0 (table)"))
    return std::move(error);
  SmallVector<int64_t> expected(ids);
  expected.push_back(table[1]);
  if (ArrayRef<int64_t>(expected) != out)
    return kindError(desc, "output 0 must have shape " + listString(expected) + ", got " +
                               listString(out));
  const int64_t count = numElements(ids), w = elementBytes(desc.inputs[0]);
  LaunchConfig config = unitLaunch(desc, count * table[1] * w / unitFor(table[1] * w));
  config.args = {count, table[0], table[1]};
  return config;
}

Expected<std::string> embeddingGradSource(const KernelDesc &desc) {
  if (Error error = checkArity(desc, 2, 1))
    return std::move(error);
  if (Error error = checkIndex(desc, /*isOutput=*/false, 0))
    return std::move(error);
  if (Error error = checkFloat(desc, {1}, {}))
    return std::move(error);
  if (desc.outputs[0] != ElementType::F32)
    return kindError(desc, "output 0 (dtable) must be f32, got " +
                               elementTypeName(desc.outputs[0]));
  return wrapKernel(desc, {"layout"}, {"ids", "dy"}, {"dtable"},
                    {"count", "vocab", "dim", "rowsPerBlock"},
                    "fk::embeddingGrad(ids, dy, dtable, count, vocab, dim, rowsPerBlock);",
                    "1024");
}

Expected<LaunchConfig> embeddingGradLaunch(const KernelDesc &desc, const LaunchShapes &shapes) {
  ArrayRef<int64_t> ids = shapes.inputs[0], dy = shapes.inputs[1], dtable = shapes.outputs[0];
  if (Error error = checkRank(desc, dtable, 2, "output 0 (dtable)"))
    return std::move(error);
  const int64_t vocab = dtable[0], dim = dtable[1];
  SmallVector<int64_t> expected(ids);
  expected.push_back(dim);
  if (ArrayRef<int64_t>(expected) != dy)
    return kindError(desc, "input 1 (dy) must have shape " + listString(expected) + ", got " +
                               listString(dy));
  const int64_t threads = roundThreads(dim, 1024);
  const int64_t columnSlices = std::max<int64_t>((dim + threads - 1) / threads, 1);
  // Rows per block: the accumulator budget, but spread small tables over ~2 blocks per SM.
  int64_t rows = std::max<int64_t>(kGradAccBytes / (threads * 8), 1);
  rows = std::min(rows, std::max<int64_t>((vocab + 263) / 264, 1));
  const int64_t rowGroups = std::max<int64_t>((vocab + rows - 1) / rows, 1);
  if (columnSlices > 65535)
    return kindError(desc, "rows of " + Twine(dim) + " columns need " + Twine(columnSlices) +
                               " column slices of 1024; at most 65535 are supported");
  LaunchConfig config;
  config.grid = {rowGroups, columnSlices, 1};
  config.block = {threads, 1, 1};
  config.smem = rows * threads * 8 + threads * kIdsPerThread * 4 + 33 * 4;
  config.args = {numElements(ids), vocab, dim, rows};
  return config;
}

} // namespace

void mlir::fusion::cuda::addLayoutKinds(std::vector<KindGenerator> &kinds) {
  kinds.push_back({"slice",
                   [](const KernelDesc &d) { return copySource(d, "slice", "x", "out"); },
                   sliceLaunch});
  kinds.push_back({"slice_grad",
                   [](const KernelDesc &d) { return copySource(d, "sliceGrad", "dy", "dx"); },
                   sliceGradLaunch});
  kinds.push_back({"concat", concatSource, concatLaunch});
  kinds.push_back({"transpose", gatherSource, transposeLaunch});
  kinds.push_back({"broadcast", gatherSource, broadcastLaunch});
  kinds.push_back({"sum", sumSource, sumLaunch});
  kinds.push_back({"embedding", embeddingSource, embeddingLaunch});
  kinds.push_back({"embedding_grad", embeddingGradSource, embeddingGradLaunch});
}
