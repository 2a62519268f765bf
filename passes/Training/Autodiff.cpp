//===- Autodiff.cpp - reverse-mode differentiation of the loss ------------===//
//
// Part of the FusionLLM compiler.
//
// @forward_grad = @forward's ops, then the backward ops in reverse order. Each op's rule
// (DifferentiableOpInterface, dialects/Fusion/IR/Gradients.cpp) turns its results'
// cotangents into its operands' cotangents; a value used several times gets the sum. A
// `fusion.load` of a trainable parameter collects that parameter's gradient.
//
//===----------------------------------------------------------------------===//

#include "passes/Training/Passes.h"

#include "dialects/Fusion/IR/FusionOps.h"
#include "dialects/Fusion/IR/Gradients.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"

#define DEBUG_TYPE "fusion-autodiff"

namespace mlir::fusion {

#define GEN_PASS_DEF_AUTODIFFPASS
#include "passes/Training/Passes.h.inc"

namespace {

bool isTrainable(ParameterOp param) {
  return param.getOptimizer() == "normuon" || param.getOptimizer() == "adamw";
}

bool isFloatTensor(Value value) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  return type && isa<FloatType>(type.getElementType());
}

class Differentiator {
public:
  Differentiator(ModuleOp module, func::FuncOp grad) : module(module), grad(grad) {}

  LogicalResult run();
  unsigned numBackwardOps = 0, numGradients = 0;

private:
  /// Adds `contribution` to the cotangent of `value`.
  void accumulate(OpBuilder &b, Value value, Value contribution);

  ModuleOp module;
  func::FuncOp grad;
  DenseMap<Value, Value> cotangents;
  llvm::MapVector<StringRef, Value> paramGrads;
};

void Differentiator::accumulate(OpBuilder &b, Value value, Value contribution) {
  if (contribution.getType() != value.getType())
    contribution = CastOp::create(b, contribution.getLoc(), value.getType(), contribution);
  Value &slot = cotangents[value];
  slot = slot ? Value(AddOp::create(b, contribution.getLoc(), slot, contribution)) : contribution;
}

LogicalResult Differentiator::run() {
  Block &body = grad.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  if (ret.getNumOperands() == 0)
    return grad.emitOpError("returns nothing; its first result must be the loss");
  Value loss = ret.getOperand(0);
  auto lossType = dyn_cast<RankedTensorType>(loss.getType());
  if (!lossType || lossType.getRank() != 0 || !lossType.getElementType().isF32())
    return grad.emitOpError("first result must be the f32 scalar loss, got ") << loss.getType();

  OpBuilder b(ret);
  Operation *firstBackward = nullptr;
  Value seed = FillOp::create(b, ret.getLoc(), lossType, b.getF64FloatAttr(1.0));
  firstBackward = seed.getDefiningOp();
  cotangents[loss] = seed;

  // Reverse sweep over the forward ops (everything before the seed).
  SmallVector<Operation *> forward;
  for (Operation &op : body) {
    if (&op == firstBackward)
      break;
    forward.push_back(&op);
  }
  for (Operation *op : llvm::reverse(forward)) {
    SmallVector<Value> resultGrads;
    bool any = false;
    for (Value result : op->getResults()) {
      resultGrads.push_back(cotangents.lookup(result));
      any |= bool(resultGrads.back());
    }
    if (!any)
      continue;
    if (auto load = dyn_cast<LoadOp>(op)) {
      auto param = SymbolTable::lookupNearestSymbolFrom<ParameterOp>(op, load.getNameAttr());
      if (param && isTrainable(param)) {
        Value &slot = paramGrads[param.getSymName()];
        Value g = resultGrads[0];
        slot = slot ? Value(AddOp::create(b, op->getLoc(), slot, g)) : g;
      }
      continue;
    }
    auto rule = dyn_cast<DifferentiableOpInterface>(op);
    if (!rule) {
      if (llvm::none_of(op->getOperands(), isFloatTensor))
        continue;
      return op->emitOpError("is on the path to the loss but has no gradient rule");
    }
    Operation *before = b.getInsertionBlock()->empty() ? nullptr : &*std::prev(b.getInsertionPoint());
    SmallVector<Value> operandGrads;
    if (failed(rule.buildGradient(b, resultGrads, operandGrads)))
      return failure();
    for (auto [operand, g] : llvm::zip(op->getOperands(), operandGrads))
      if (g && isFloatTensor(operand))
        accumulate(b, operand, g);
    // Count the ops this rule created.
    for (auto it = before ? std::next(before->getIterator()) : body.begin();
         it != b.getInsertionPoint(); ++it)
      ++numBackwardOps;
  }

  // Results: the original ones, then one f32 gradient per trainable parameter.
  SmallVector<Value> results(ret.getOperands());
  SmallVector<Type> types(grad.getFunctionType().getResults());
  SmallVector<DictionaryAttr> resultAttrs;
  for (unsigned i = 0; i < ret.getNumOperands(); ++i)
    resultAttrs.push_back(grad.getResultAttrDict(i));
  for (ParameterOp param : module.getOps<ParameterOp>()) {
    if (!isTrainable(param))
      continue;
    Value g = paramGrads.lookup(param.getSymName());
    if (!g)
      g = FillOp::create(b, param.getLoc(), param.getTensorType(), b.getF64FloatAttr(0.0));
    results.push_back(g);
    types.push_back(g.getType());
    resultAttrs.push_back(b.getDictionaryAttr(
        {b.getNamedAttr("fusion.name", b.getStringAttr("grad:" + param.getSymName())),
         b.getNamedAttr("fusion.param", FlatSymbolRefAttr::get(param.getSymNameAttr()))}));
    ++numGradients;
  }
  func::ReturnOp::create(b, ret.getLoc(), results);
  ret.erase();
  grad.setType(b.getFunctionType(grad.getArgumentTypes(), types));
  grad.setAllResultAttrs(resultAttrs);
  return success();
}

} // namespace

struct AutodiffPass : impl::AutodiffPassBase<AutodiffPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto fn = module.lookupSymbol<func::FuncOp>(funcName);
    if (!fn) {
      module.emitError("fusion-autodiff: no function @") << funcName << " to differentiate";
      return signalPassFailure();
    }
    std::string gradName = funcName + "_grad";
    if (module.lookupSymbol(gradName)) {
      fn.emitError("fusion-autodiff: @") << gradName << " already exists";
      return signalPassFailure();
    }
    func::FuncOp grad = fn.clone();
    grad.setSymName(gradName);
    module.getBody()->push_back(grad);
    Differentiator differentiator(module, grad);
    if (failed(differentiator.run()))
      return signalPassFailure();
    numBackwardOps = differentiator.numBackwardOps;
    numGradients = differentiator.numGradients;
  }
};

} // namespace mlir::fusion
