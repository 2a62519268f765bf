//===- Optimizer.cpp - the training step: accumulation, clipping, updates --===//
//
// Part of the FusionLLM compiler.
//
// Builds @train_step from @forward_grad (fusion-autodiff) and the training config in the
// module's `fusion.config` dictionary, in MODEL.md §12's step order: n_acc micro-batches
// with fp32 gradient and expert-count accumulation; the global gradient norm; the schedule,
// clip scale and non-finite guard (step_control); NorMuon and Cautious AdamW updates; the
// MoE bias update. Updates write parameters and optimizer state in place through symbol
// references, so the step is one straight-line program.
//
//===----------------------------------------------------------------------===//

#include "passes/Training/Passes.h"

#include "dialects/Fusion/IR/FusionOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/RegionUtils.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/FormatVariadic.h"

#define DEBUG_TYPE "fusion-optimizer"

namespace mlir::fusion {

#define GEN_PASS_DEF_OPTIMIZERPASS
#include "passes/Training/Passes.h.inc"

namespace {

/// Typed access to `fusion.config`, with a located error for a missing or mistyped key.
class Config {
public:
  Config(ModuleOp module, DictionaryAttr dict) : module(module), dict(dict) {}

  FailureOr<double> number(StringRef key) {
    Attribute value = dict.get(key);
    if (auto f = dyn_cast_or_null<FloatAttr>(value))
      return f.getValueAsDouble();
    if (auto i = dyn_cast_or_null<IntegerAttr>(value))
      return double(i.getInt());
    return missing(key, "a number");
  }
  FailureOr<int64_t> integer(StringRef key) {
    if (auto i = dyn_cast_or_null<IntegerAttr>(dict.get(key)))
      return i.getInt();
    return missing(key, "an integer");
  }
  FailureOr<StringRef> string(StringRef key) {
    if (auto s = dyn_cast_or_null<StringAttr>(dict.get(key)))
      return s.getValue();
    return missing(key, "a string");
  }

private:
  LogicalResult missing(StringRef key, StringRef what) {
    return module.emitError("fusion-optimizer: fusion.config needs '") << key << "' (" << what
                                                                        << ")";
  }
  ModuleOp module;
  DictionaryAttr dict;
};

struct Hyper {
  int64_t nAcc, warmup, stable, decaySteps, biasEvery;
  double lr, muonLr, muonMomentum, normuonBeta2, beta1, beta2, eps, weightDecay,
      muonWeightDecay, gradClip, minLrRatio, biasSpeed, biasUpper, biasLower;
  bool nesterov, normalize, cautiousWd, cautiousUpdate;
  StringRef cautiousMode, decay;
};

FailureOr<Hyper> readHyper(Config &c) {
  Hyper h;
#define READ(field, kind, key)                                                                 \
  {                                                                                            \
    auto v = c.kind(key);                                                                      \
    if (failed(v))                                                                             \
      return failure();                                                                        \
    h.field = *v;                                                                              \
  }
  READ(nAcc, integer, "grad_accum_steps");
  READ(warmup, integer, "warmup_steps");
  READ(stable, integer, "stable_steps");
  READ(decaySteps, integer, "decay_steps");
  READ(biasEvery, integer, "bias_update_every");
  READ(lr, number, "lr");
  READ(muonLr, number, "muon_lr");
  READ(muonMomentum, number, "muon_momentum");
  READ(normuonBeta2, number, "normuon_beta2");
  READ(beta1, number, "adamw_beta1");
  READ(beta2, number, "adamw_beta2");
  READ(eps, number, "adamw_eps");
  READ(weightDecay, number, "weight_decay");
  READ(muonWeightDecay, number, "muon_weight_decay");
  READ(gradClip, number, "grad_clip");
  READ(minLrRatio, number, "min_lr_ratio");
  READ(biasSpeed, number, "bias_update_speed");
  READ(biasUpper, number, "bias_upper_threshold");
  READ(biasLower, number, "bias_lower_threshold");
  READ(cautiousMode, string, "cautious_wd_mode");
  READ(decay, string, "lr_decay");
  int64_t flag;
  READ(nesterov, integer, "nesterov");
  READ(cautiousWd, integer, "cautious_wd");
  READ(cautiousUpdate, integer, "adamw_cautious_update");
  StringRef optimizer;
  auto opt = c.string("optimizer");
  if (failed(opt))
    return failure();
  optimizer = *opt;
  h.normalize = optimizer != "muon_adamw";
  (void)flag;
#undef READ
  return h;
}

RankedTensorType tensorOf(ArrayRef<int64_t> shape, Type element) {
  return RankedTensorType::get(shape, element);
}

} // namespace

struct OptimizerPass : impl::OptimizerPassBase<OptimizerPass> {
  using Base::Base;

  void runOnOperation() override {
    if (failed(build()))
      signalPassFailure();
  }

  LogicalResult build();
  LogicalResult buildScore(ModuleOp module, func::FuncOp forward);
};

LogicalResult OptimizerPass::build() {
  ModuleOp module = getOperation();
  MLIRContext *context = module.getContext();
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  auto grad = module.lookupSymbol<func::FuncOp>("forward_grad");
  if (!forward || !grad)
    return module.emitError("fusion-optimizer: needs @forward and @forward_grad (run "
                            "fusion-autodiff first)");
  auto dict = module->getAttrOfType<DictionaryAttr>("fusion.config");
  if (!dict)
    return module.emitError("fusion-optimizer: the module has no fusion.config training "
                            "configuration");
  Config config(module, dict);
  FailureOr<Hyper> hyperOr = readHyper(config);
  if (failed(hyperOr))
    return failure();
  const Hyper &h = *hyperOr;
  if (h.nAcc < 1)
    return module.emitError("fusion-optimizer: grad_accum_steps must be >= 1");
  if (grad.getNumArguments() != 3)
    return grad.emitOpError("expects (tokens, targets, inv_counts) arguments");

  OpBuilder b(context);
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  auto tokType = cast<RankedTensorType>(grad.getArgument(0).getType());
  ArrayRef<int64_t> rowShape = tokType.getShape();
  SmallVector<int64_t> stepShape = {h.nAcc};
  stepShape.append(rowShape.begin(), rowShape.end());
  Location loc = forward.getLoc();

  // Gradient results of @forward_grad: index → parameter.
  unsigned numPrimal = 0;
  SmallVector<std::pair<unsigned, ParameterOp>> gradResults;
  for (unsigned i = 0; i < grad.getNumResults(); ++i) {
    auto ref = grad.getResultAttrOfType<FlatSymbolRefAttr>(i, "fusion.param");
    if (!ref) {
      numPrimal = i + 1;
      continue;
    }
    auto param = module.lookupSymbol<ParameterOp>(ref.getAttr());
    if (!param)
      return grad.emitOpError("gradient result ") << i << " names unknown parameter " << ref;
    gradResults.push_back({i, param});
  }
  if (numPrimal < 2)
    return grad.emitOpError("expects (loss, main_loss, gradients...) results");

  // MoE layers: the group sizes of each dispatch and the bias parameter of its router.
  SmallVector<std::pair<Value, ParameterOp>> dispatches;
  for (MoeDispatchOp dispatch : grad.getBody().getOps<MoeDispatchOp>()) {
    auto route = dispatch->getOperand(1).getDefiningOp<MoeRouteOp>();
    auto load = route ? route.getBias().getDefiningOp<LoadOp>() : LoadOp();
    auto bias = load ? module.lookupSymbol<ParameterOp>(load.getNameAttr()) : ParameterOp();
    if (!bias)
      return dispatch.emitOpError("fusion-optimizer: cannot find the router bias of this "
                                  "dispatch (moe_route with a loaded bias expected)");
    dispatches.push_back({dispatch->getResult(1), bias});
  }

  // State parameters, declared next to their parameter.
  auto declareState = [&](ParameterOp param, StringRef suffix, ArrayRef<int64_t> shape) {
    OpBuilder pb(param);
    pb.setInsertionPointAfter(param);
    std::string name = (param.getSymName() + "." + suffix).str();
    ParameterOp::create(pb, param.getLoc(), pb.getStringAttr(name),
                        TypeAttr::get(tensorOf(shape, f32)), pb.getStringAttr("zeros"),
                        FloatAttr(), FloatAttr(), FloatAttr(), pb.getStringAttr("state"),
                        UnitAttr());
    return FlatSymbolRefAttr::get(context, name);
  };

  // The function.
  b.setInsertionPointAfter(grad);
  auto fnType = b.getFunctionType(
      {tensorOf(stepShape, i32), tensorOf(stepShape, i32),
       grad.getArgument(2).getType(), tensorOf({2}, i32)},
      {tensorOf({}, f32), tensorOf({}, f32), tensorOf({8}, f32)});
  auto step = func::FuncOp::create(b, loc, "train_step", fnType);
  const char *argNames[] = {"tokens", "targets", "inv_counts", "step"};
  for (auto [i, name] : llvm::enumerate(argNames))
    step.setArgAttr(i, "fusion.name", b.getStringAttr(name));
  const char *resultNames[] = {"loss", "main_loss", "ctl"};
  for (auto [i, name] : llvm::enumerate(resultNames))
    step.setResultAttr(i, "fusion.name", b.getStringAttr(name));
  Block *body = step.addEntryBlock();
  b.setInsertionPointToEnd(body);

  // 1. Micro-batches.
  auto add = [&](Value acc, Value v) {
    return acc ? Value(AddOp::create(b, v.getLoc(), acc, v)) : v;
  };
  auto microSlice = [&](Value all, int64_t a, Location at) {
    SmallVector<int64_t> one = {1};
    one.append(rowShape.begin(), rowShape.end());
    Value s = SliceOp::create(b, at, tensorOf(one, i32), all, b.getI64IntegerAttr(0),
                              b.getI64IntegerAttr(a), b.getI64IntegerAttr(1));
    return Value(ReshapeOp::create(b, at, tokType, s));
  };
  Value loss, mainLoss;
  SmallVector<Value> grads(gradResults.size());
  SmallVector<Value> counts(dispatches.size());
  auto ret = cast<func::ReturnOp>(grad.getBody().front().getTerminator());
  for (int64_t a = 0; a < h.nAcc; ++a) {
    Location at = NameLoc::get(b.getStringAttr(llvm::formatv("micro_batch.{0}", a).str()), loc);
    IRMapping map;
    map.map(grad.getArgument(0), microSlice(body->getArgument(0), a, at));
    map.map(grad.getArgument(1), microSlice(body->getArgument(1), a, at));
    map.map(grad.getArgument(2), body->getArgument(2));
    for (Operation &op : grad.getBody().front().without_terminator())
      b.clone(op, map);
    loss = add(loss, map.lookup(ret.getOperand(0)));
    mainLoss = add(mainLoss, map.lookup(ret.getOperand(1)));
    for (auto [j, entry] : llvm::enumerate(gradResults))
      grads[j] = add(grads[j], map.lookup(ret.getOperand(entry.first)));
    for (auto [j, entry] : llvm::enumerate(dispatches)) {
      Value sizes = map.lookup(entry.first);
      auto type = cast<RankedTensorType>(sizes.getType());
      counts[j] = add(counts[j], CastOp::create(b, at, tensorOf(type.getShape(), f32), sizes));
    }
  }

  // 2. Global gradient norm, schedule, clip and guard.
  Location optLoc = NameLoc::get(b.getStringAttr("optimizer"), loc);
  Value sumsq;
  for (Value g : grads) {
    auto type = cast<RankedTensorType>(g.getType());
    SmallVector<int64_t> all = llvm::to_vector(llvm::seq<int64_t>(0, type.getRank()));
    Value sq = MulOp::create(b, optLoc, g, g);
    sumsq = add(sumsq, SumOp::create(b, optLoc, tensorOf({}, f32), sq,
                                     b.getDenseI64ArrayAttr(all)));
  }
  if (!sumsq)
    sumsq = FillOp::create(b, optLoc, tensorOf({}, f32), b.getF64FloatAttr(0.0));
  Value ctl = StepControlOp::create(
      b, optLoc, tensorOf({8}, f32), body->getArgument(3), loss, sumsq,
      b.getI64IntegerAttr(h.warmup), b.getI64IntegerAttr(h.stable),
      b.getI64IntegerAttr(h.decaySteps), b.getF32FloatAttr(h.minLrRatio),
      b.getStringAttr(h.decay), b.getF32FloatAttr(h.gradClip));

  // 3. Parameter updates.
  for (auto [j, entry] : llvm::enumerate(gradResults)) {
    ParameterOp param = entry.second;
    Location at = param.getLoc();
    ArrayRef<int64_t> shape = param.getTensorType().getShape();
    auto w = FlatSymbolRefAttr::get(param.getSymNameAttr());
    if (param.getOptimizer() == "normuon") {
      SmallVector<int64_t> rows(shape.begin(), shape.end() - 1);
      auto m = declareState(param, "muon_m", shape), v = declareState(param, "muon_v", rows);
      NormuonUpdateOp::create(
          b, at, grads[j], ctl, b.getArrayAttr({w, m, v}), b.getF32FloatAttr(h.muonLr),
          b.getF32FloatAttr(h.muonMomentum), b.getF32FloatAttr(h.normuonBeta2),
          b.getF32FloatAttr(param.getWeightDecay() ? h.muonWeightDecay : 0.0),
          b.getI64IntegerAttr(h.nesterov), b.getI64IntegerAttr(h.normalize),
          b.getI64IntegerAttr(h.cautiousWd), b.getStringAttr(h.cautiousMode));
      ++numNorMuon;
    } else {
      auto m = declareState(param, "adam_m", shape), v = declareState(param, "adam_v", shape);
      AdamwUpdateOp::create(
          b, at, grads[j], ctl, b.getArrayAttr({w, m, v}), b.getF32FloatAttr(h.lr),
          b.getF32FloatAttr(h.beta1), b.getF32FloatAttr(h.beta2), b.getF32FloatAttr(h.eps),
          b.getF32FloatAttr(param.getWeightDecay() ? h.weightDecay : 0.0),
          b.getI64IntegerAttr(h.cautiousWd), b.getStringAttr(h.cautiousMode),
          b.getI64IntegerAttr(h.cautiousUpdate));
      ++numAdamW;
    }
  }

  // 4. MoE bias balancing, once per layer.
  for (auto [j, entry] : llvm::enumerate(dispatches)) {
    ParameterOp bias = entry.second;
    auto window = declareState(bias, "window", bias.getTensorType().getShape());
    MoeBiasUpdateOp::create(b, bias.getLoc(), counts[j], ctl,
                            b.getArrayAttr({FlatSymbolRefAttr::get(bias.getSymNameAttr()), window}),
                            b.getI64IntegerAttr(h.biasEvery), b.getF32FloatAttr(h.biasSpeed),
                            b.getF32FloatAttr(h.biasUpper), b.getF32FloatAttr(h.biasLower));
    ++numBiasUpdates;
  }
  func::ReturnOp::create(b, optLoc, ValueRange{loss, mainLoss, ctl});

  // @score: the main head's per-token cross-entropy [B, T] (no MTP, no balance terms), for
  // log-likelihood scoring of continuations (fusion-run --score-choices).
  if (failed(buildScore(module, forward)))
    return failure();

  // @forward is the held-out evaluation; the gradient template is inlined everywhere.
  grad.erase();
  forward.setSymName("eval_step");
  return success();
}

LogicalResult OptimizerPass::buildScore(ModuleOp module, func::FuncOp forward) {
  // The main head is the first cross-entropy the model builds (MTP heads follow it). A
  // model without one has nothing to score: no @score.
  if (forward.getBody().getOps<CrossEntropyOp>().empty() &&
      forward.getBody().getOps<SoftcapCeOp>().empty())
    return success();
  func::FuncOp score = forward.clone();
  score.setSymName("score");
  module.getBody()->push_back(score);
  Block &body = score.getBody().front();
  Operation *ce = nullptr;
  for (Operation &op : body)
    if (isa<CrossEntropyOp, SoftcapCeOp>(op)) {
      ce = &op;
      break;
    }
  auto tokens = cast<RankedTensorType>(score.getArgument(0).getType());
  if (tokens.getRank() != 2)
    return forward.emitOpError("fusion-optimizer: expects tokens [B, T+1] to build @score");
  int64_t rows = tokens.getShape()[0], seq = tokens.getShape()[1] - 1;
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  OpBuilder b(ret);
  Value perToken = ReshapeOp::create(
      b, ce->getLoc(), RankedTensorType::get({rows, seq}, b.getF32Type()), ce->getResult(0));
  func::ReturnOp::create(b, ret.getLoc(), ValueRange{perToken});
  ret.erase();
  score.setType(b.getFunctionType(score.getArgumentTypes(), {perToken.getType()}));
  score.setResultAttr(0, "fusion.name", b.getStringAttr("ce"));
  // Drop what only the MTP heads and balance terms needed (everything here is side-effect
  // free), last use first.
  SmallVector<Operation *> ops;
  for (Operation &op : body.without_terminator())
    ops.push_back(&op);
  for (Operation *op : llvm::reverse(ops))
    if (isOpTriviallyDead(op))
      op->erase();
  // The loss weights (inv_counts) are not needed for per-token scores.
  for (unsigned i = score.getNumArguments(); i-- > 0;)
    if (score.getArgument(i).use_empty())
      (void)score.eraseArgument(i);
  return success();
}

} // namespace mlir::fusion
