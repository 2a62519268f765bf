//===- ModelBuilder.cpp - building FusionLLM as fusion IR -----------------===//
//
// Part of the FusionLLM compiler.
//
// Shapes of every op come from the ShapeRules the verifiers use (through the ops' own
// verification after the module is built); the helpers here only compute the result
// types they need to create the ops.
//
//===----------------------------------------------------------------------===//

#include "models/ModelBuilder.h"

#include "dialects/Fusion/IR/ShapeRules.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace mlir::fusion;
using namespace mlir::fusion::models;

ModelBuilder::ModelBuilder(MLIRContext *context, const spec::ParsedConfig &parsed,
                           const llvm::SourceMgr &sourceMgr)
    : context(context), parsed(parsed), sourceMgr(sourceMgr), builder(context) {
  compute = parsed.config.training.dtype == "fp32" ? Type(builder.getF32Type())
                                                   : Type(builder.getBF16Type());
  numResidualLayers = 2 * parsed.config.model.nLayers;
  spec::ShapeSegment steady = spec::getShapeSchedule(parsed.config).back();
  shapeRows = steady.rows;
  shapeSeqLen = steady.seqLen;
}

Location ModelBuilder::loc(llvm::StringRef name, llvm::StringRef key) {
  const llvm::MemoryBuffer *buffer = sourceMgr.getMemoryBuffer(parsed.bufferId);
  StringAttr file = builder.getStringAttr(buffer->getBufferIdentifier());
  unsigned line = 1, col = 1;
  const spec::KeyLocation *where = parsed.locations.lookup(key);
  if (!where)
    where = parsed.locations.lookup(key.split('.').first);
  if (where && where->key.Start.isValid())
    std::tie(line, col) = sourceMgr.getLineAndColumn(where->key.Start, parsed.bufferId);
  return NameLoc::get(builder.getStringAttr(name), FileLineColLoc::get(file, line, col));
}

RankedTensorType ModelBuilder::tensor(llvm::ArrayRef<int64_t> shape, Type elementType) {
  return RankedTensorType::get(shape, elementType);
}

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

ParamSpec ModelBuilder::matrixInit(int64_t fanIn) {
  if (!model().muP)
    return {"normal", 0.02, 0, 0, "normuon", true};
  return {"trunc_normal", 1.0 / std::sqrt(double(fanIn)), 0, 0, "normuon", true};
}

ParamSpec ModelBuilder::residualOutputInit(int64_t fanIn) {
  if (!model().muP)
    return {"normal", 0.02, 0, 0, "normuon", true};
  return {"trunc_normal", 1.0 / std::sqrt(double(fanIn) * double(numResidualLayers)), 0, 0,
          "normuon", true};
}

ParamSpec ModelBuilder::normInit() { return {"ones", 0, 0, 0, "adamw", false}; }

void ModelBuilder::declare(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                           const ParamSpec &spec, Location loc) {
  if (params.count(name))
    return;
  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPoint(paramAnchor);
  bool ranged = spec.init == "uniform" || spec.init == "log_uniform" || spec.init == "dt_bias";
  auto op = ParameterOp::create(
      builder, loc, builder.getStringAttr(name), TypeAttr::get(tensor(shape, builder.getF32Type())),
      builder.getStringAttr(spec.init),
      spec.std > 0 ? builder.getF64FloatAttr(spec.std) : FloatAttr(),
      ranged ? builder.getF64FloatAttr(spec.low) : FloatAttr(),
      ranged ? builder.getF64FloatAttr(spec.high) : FloatAttr(),
      builder.getStringAttr(spec.optimizer),
      spec.weightDecay ? builder.getUnitAttr() : UnitAttr());
  params[name] = op;
}

Value ModelBuilder::param(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                          const ParamSpec &spec, Location loc) {
  declare(name, shape, spec, loc);
  return LoadOp::create(builder, loc, tensor(shape, builder.getF32Type()),
                        FlatSymbolRefAttr::get(context, name));
}

FlatSymbolRefAttr ModelBuilder::cache(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                                      Location loc) {
  declare(name, shape, {"zeros", 0, 0, 0, "cache", false}, loc);
  return FlatSymbolRefAttr::get(context, name);
}

Value ModelBuilder::computeParam(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                                 const ParamSpec &spec, Location loc) {
  return cast(param(name, shape, spec, loc), compute, loc);
}

//===----------------------------------------------------------------------===//
// Op helpers
//===----------------------------------------------------------------------===//

static ArrayRef<int64_t> shapeOf(Value v) { return llvm::cast<RankedTensorType>(v.getType()).getShape(); }
static Type elementOf(Value v) { return llvm::cast<RankedTensorType>(v.getType()).getElementType(); }

Value ModelBuilder::cast(Value x, Type elementType, Location loc) {
  if (elementOf(x) == elementType)
    return x;
  return CastOp::create(builder, loc, tensor(shapeOf(x), elementType), x);
}

Value ModelBuilder::linear(Value x, Value weight, Location loc) {
  SmallVector<int64_t> shape;
  (void)inferMatmulShape(std::nullopt, shapeOf(x), shapeOf(weight), false, true, shape);
  return MatmulOp::create(builder, loc, tensor(shape, elementOf(x)), x, weight,
                          /*transpose_a=*/false, /*transpose_b=*/true);
}

Value ModelBuilder::rmsNorm(Value x, Value weight, Location loc) {
  return RmsNormOp::create(builder, loc, x.getType(), x, cast(weight, elementOf(x), loc),
                           builder.getF32FloatAttr(model().normEps));
}

Value ModelBuilder::reshape(Value x, llvm::ArrayRef<int64_t> shape, Location loc) {
  return ReshapeOp::create(builder, loc, tensor(shape, elementOf(x)), x);
}

Value ModelBuilder::transpose(Value x, llvm::ArrayRef<int64_t> perm, Location loc) {
  SmallVector<int64_t> shape;
  for (int64_t p : perm)
    shape.push_back(shapeOf(x)[p]);
  return TransposeOp::create(builder, loc, tensor(shape, elementOf(x)), x,
                             builder.getDenseI64ArrayAttr(perm));
}

Value ModelBuilder::slice(Value x, int64_t dim, int64_t start, int64_t size, Location loc) {
  SmallVector<int64_t> shape(shapeOf(x));
  shape[dim] = size;
  return SliceOp::create(builder, loc, tensor(shape, elementOf(x)), x,
                         builder.getI64IntegerAttr(dim), builder.getI64IntegerAttr(start),
                         builder.getI64IntegerAttr(size));
}

Value ModelBuilder::concat(llvm::ArrayRef<Value> xs, int64_t dim, Location loc) {
  SmallVector<int64_t> shape(shapeOf(xs.front()));
  shape[dim] = 0;
  for (Value x : xs)
    shape[dim] += shapeOf(x)[dim];
  return ConcatOp::create(builder, loc, tensor(shape, elementOf(xs.front())), xs,
                          builder.getI64IntegerAttr(dim));
}

Value ModelBuilder::broadcast(Value x, llvm::ArrayRef<int64_t> shape,
                              llvm::ArrayRef<int64_t> dims, Location loc) {
  return BroadcastOp::create(builder, loc, tensor(shape, elementOf(x)), x,
                             builder.getDenseI64ArrayAttr(dims));
}

Value ModelBuilder::add(Value a, Value b, Location loc) {
  return AddOp::create(builder, loc, a.getType(), a, b);
}

Value ModelBuilder::mul(Value a, Value b, Location loc) {
  return MulOp::create(builder, loc, a.getType(), a, b);
}

Value ModelBuilder::scalarSum(Value x, Location loc) {
  SmallVector<int64_t> dims;
  for (int64_t d = 0; d < int64_t(shapeOf(x).size()); ++d)
    dims.push_back(d);
  return SumOp::create(builder, loc, tensor({}, elementOf(x)), x,
                       builder.getDenseI64ArrayAttr(dims));
}

Value ModelBuilder::denseFfn(Value u, llvm::StringRef prefix, int64_t width, Location loc) {
  int64_t dim = model().dim;
  Value w1 = computeParam((prefix + ".w1.weight").str(), {width, dim}, matrixInit(dim), loc);
  Value w3 = computeParam((prefix + ".w3.weight").str(), {width, dim}, matrixInit(dim), loc);
  Value w2 = computeParam((prefix + ".w2.weight").str(), {dim, width},
                          residualOutputInit(width), loc);
  Value a = linear(u, w1, loc), c = linear(u, w3, loc);
  Value h = SwigluOp::create(builder, loc, a.getType(), a, c);
  return linear(h, w2, loc);
}
