//===- FuseSoftcapCe.cpp - the tied head + softcap + CE as one op ---------===//
//
// Part of the FusionLLM compiler.
//
// cross_entropy(softcap?(cast?(matmul(h, W, transpose_b)))) → softcap_ce(h, W, y) {cap}.
// The logits of a head are [tokens × vocab] (7B: 2.5 GB bf16 per micro-batch); the fused op
// streams vocabulary tiles in forward and backward instead (MODEL.md §9).
//
//===----------------------------------------------------------------------===//

#include "passes/Training/Passes.h"

#include "dialects/Fusion/IR/FusionOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#define DEBUG_TYPE "fusion-fuse-softcap-ce"

namespace mlir::fusion {

#define GEN_PASS_DEF_FUSESOFTCAPCEPASS
#include "passes/Training/Passes.h.inc"

namespace {

/// The ops of one matched head, from the cross-entropy back to the matmul.
struct HeadMatch {
  CrossEntropyOp ce;
  SoftcapOp softcap; ///< null when the head is uncapped
  CastOp cast;       ///< null when the logits are already f32
  MatmulOp matmul;
};

/// Matches the head feeding `ce`; every intermediate must have `ce` as its only user.
std::optional<HeadMatch> matchHead(CrossEntropyOp ce) {
  HeadMatch match{ce, nullptr, nullptr, nullptr};
  Value v = ce.getLogits();
  auto single = [](Value value) { return value.hasOneUse(); };
  if (auto softcap = v.getDefiningOp<SoftcapOp>(); softcap && single(v)) {
    match.softcap = softcap;
    v = softcap->getOperand(0);
  }
  if (auto cast = v.getDefiningOp<CastOp>(); cast && single(v)) {
    match.cast = cast;
    v = cast->getOperand(0);
  }
  auto matmul = v.getDefiningOp<MatmulOp>();
  if (!matmul || !single(v) || matmul.getTransposeA() || !matmul.getTransposeB() ||
      matmul.getLhs().getType().getRank() != 2 || matmul.getRhs().getType().getRank() != 2)
    return std::nullopt;
  match.matmul = matmul;
  return match;
}

} // namespace

struct FuseSoftcapCePass : impl::FuseSoftcapCePassBase<FuseSoftcapCePass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<HeadMatch> matches;
    getOperation().walk([&](CrossEntropyOp ce) {
      if (std::optional<HeadMatch> match = matchHead(ce))
        matches.push_back(*match);
    });
    for (HeadMatch &m : matches) {
      OpBuilder builder(m.ce);
      double cap = m.softcap ? m.softcap.getCap().convertToDouble() : 0.0;
      Location loc = FusedLoc::get(builder.getContext(), {m.matmul.getLoc(), m.ce.getLoc()});
      auto fused = SoftcapCeOp::create(builder, loc, m.ce.getResult().getType(),
                                       m.matmul.getLhs(), m.matmul.getRhs(), m.ce.getTargets(),
                                       builder.getF32FloatAttr(cap));
      m.ce.getResult().replaceAllUsesWith(fused.getResult());
      m.ce.erase();
      if (m.softcap)
        m.softcap.erase();
      if (m.cast)
        m.cast.erase();
      m.matmul.erase();
      ++numFused;
    }
  }
};

} // namespace mlir::fusion
