//===- ShardFsdp.cpp - data parallelism over mesh axis dp -----------------===//
//
// Part of the FusionLLM compiler.
//
// Makes the training programs SPMD over the dp ranks (MODEL.md §16). The NO_SHARD strategy
// keeps parameters and optimizer state whole on every rank and sums, across ranks, exactly
// the values whose single-rank meaning is a sum over the global batch: the gradients the
// optimizer reads, the MoE expert counts of the bias update and the total loss (the
// non-finite guard and the reported losses). Each all_reduce sits right after its value is
// final, so a scheduler can overlap it with the backward pass that is still running.
//
//===----------------------------------------------------------------------===//

#include "passes/Training/Passes.h"

#include "dialects/Fusion/IR/FusionOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/SetVector.h"

#define DEBUG_TYPE "fusion-shard-fsdp"

namespace mlir::fusion {

#define GEN_PASS_DEF_SHARDFSDPPASS
#include "passes/Training/Passes.h.inc"

namespace {

constexpr llvm::StringLiteral kDpAxis = "dp";

bool isTrainStep(func::FuncOp fn) {
  StringRef name = fn.getSymName();
  return name == "train_step" || name.starts_with("train_step_");
}

/// The returned values of `fn` whose result is named `loss` or `main_loss`.
void collectLossResults(func::FuncOp fn, llvm::SetVector<Value> &values) {
  auto ret = cast<func::ReturnOp>(fn.getBody().front().getTerminator());
  for (auto [i, value] : llvm::enumerate(ret.getOperands())) {
    auto name = fn.getResultAttrOfType<StringAttr>(i, "fusion.name");
    if (name && (name.getValue() == "loss" || name.getValue() == "main_loss"))
      values.insert(value);
  }
}

struct ShardFsdpPass : impl::ShardFsdpPassBase<ShardFsdpPass> {
  using Base::Base;

  /// Replaces the uses of `value` that `use` accepts (all by default) by its sum over dp.
  void allReduce(Value value, llvm::function_ref<bool(OpOperand &)> use = nullptr) {
    OpBuilder builder(value.getContext());
    if (Operation *def = value.getDefiningOp())
      builder.setInsertionPointAfter(def);
    else
      builder.setInsertionPointToStart(cast<BlockArgument>(value).getOwner());
    auto reduced = AllReduceOp::create(builder, value.getLoc(), value, kDpAxis, "sum");
    value.replaceUsesWithIf(reduced.getResult(), [&](OpOperand &operand) {
      return operand.getOwner() != reduced && (!use || use(operand));
    });
    ++numAllReduces;
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (dp < 1 || ep < 1) {
      module.emitError("fusion-shard-fsdp: mesh sizes must be ≥ 1, got dp=")
          << static_cast<int64_t>(dp) << ", ep=" << static_cast<int64_t>(ep);
      return signalPassFailure();
    }
    if (ep != 1) {
      module.emitError("fusion-shard-fsdp: ep=")
          << static_cast<int64_t>(ep) << ": expert parallelism (fusion-expert-parallel) is not built yet; use ep=1";
      return signalPassFailure();
    }
    if (strategy != "no_shard" && strategy != "full_shard" && strategy != "shard_grad_op") {
      module.emitError("fusion-shard-fsdp: unknown strategy '")
          << strategy << "' (expected no_shard, full_shard or shard_grad_op)";
      return signalPassFailure();
    }
    if (dp == 1)
      return; // one rank: nothing to reduce
    if (strategy != "no_shard") {
      module.emitError("fusion-shard-fsdp: strategy ")
          << strategy << " over dp=" << static_cast<int64_t>(dp)
          << " is not built yet (ZeRO sharding with NorMuon matrix owners); no_shard "
             "(replicate + all-reduce) is";
      return signalPassFailure();
    }
    if (module->hasAttr(kFusionMeshAttrName)) {
      module.emitError("fusion-shard-fsdp: the module is partitioned already (it has '")
          << kFusionMeshAttrName << "')";
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> trainSteps;
    for (func::FuncOp fn : module.getOps<func::FuncOp>())
      if (isTrainStep(fn))
        trainSteps.push_back(fn);
    if (trainSteps.empty()) {
      module.emitError("fusion-shard-fsdp: the module has no @train_step; the pass runs "
                       "after fusion-optimizer");
      return signalPassFailure();
    }
    Builder builder(module.getContext());
    module->setAttr(kFusionMeshAttrName,
                    builder.getDictionaryAttr({builder.getNamedAttr(kDpAxis, builder.getI64IntegerAttr(dp)),
                                               builder.getNamedAttr("ep", builder.getI64IntegerAttr(ep))}));

    // Losses feed each other (the total includes the main CE): only their uses by the
    // guard and the function's outputs take the reduced value, or a term would be summed
    // twice. Gradients and counts have no other uses than the norm and the updates.
    auto lossUse = [](OpOperand &operand) {
      return isa<func::ReturnOp, StepControlOp>(operand.getOwner());
    };
    for (func::FuncOp fn : trainSteps) {
      llvm::SetVector<Value> grads, losses;
      fn.walk([&](Operation *op) {
        if (isa<AdamwUpdateOp, NormuonUpdateOp, MoeBiasUpdateOp>(op))
          grads.insert(op->getOperand(0));
        else if (auto control = dyn_cast<StepControlOp>(op))
          losses.insert(control.getLoss());
      });
      collectLossResults(fn, losses);
      for (Value value : grads)
        allReduce(value);
      for (Value value : losses)
        allReduce(value, lossUse);
    }
    if (auto eval = module.lookupSymbol<func::FuncOp>("eval_step")) {
      llvm::SetVector<Value> losses;
      collectLossResults(eval, losses);
      for (Value value : losses)
        allReduce(value, lossUse);
    }
  }
};

} // namespace
} // namespace mlir::fusion
