//===- Passes.td - training passes -----------------------------*- tablegen -*-===//
//
// Part of the FusionLLM compiler.
//
// The passes that turn the forward model into a training step: the fused softcapped head,
// reverse-mode differentiation and the optimizer step.
//
//===----------------------------------------------------------------------------===//

#ifndef FUSION_TRAINING_PASSES_TD
#define FUSION_TRAINING_PASSES_TD

include "mlir/Pass/PassBase.td"

def FuseSoftcapCePass : Pass<"fusion-fuse-softcap-ce", "::mlir::ModuleOp"> {
  let summary = "Fuse the tied head's matmul, softcap and cross-entropy into softcap_ce";
  let description = [{
    Rewrites `cross_entropy(softcap?(cast?(matmul(h, W, transpose_b))), y)` — the main head
    and every MTP head — into `softcap_ce(h, W, y) {cap}`, whose forward and backward work
    over vocabulary tiles and never hold the `[tokens × vocab]` logits (MODEL.md §9). The
    match requires the logits to have no other use; anything else is left alone.

    Before:
    ```mlir
    %l = fusion.matmul %h, %w {transpose_b} : (tensor<64x32xf32>, tensor<512x32xf32>) -> tensor<64x512xf32>
    %z = fusion.softcap %l {cap = 15.0 : f32} : tensor<64x512xf32>
    %ce = fusion.cross_entropy %z, %y : (tensor<64x512xf32>, tensor<64xi32>) -> tensor<64xf32>
    ```
    After:
    ```mlir
    %ce = fusion.softcap_ce %h, %w, %y {cap = 15.0 : f32} : (tensor<64x32xf32>, tensor<512x32xf32>, tensor<64xi32>) -> tensor<64xf32>
    ```
  }];
  let statistics = [
    Statistic<"numFused", "num-fused", "heads fused into softcap_ce">,
  ];
}

def AutodiffPass : Pass<"fusion-autodiff", "::mlir::ModuleOp"> {
  let summary = "Reverse-mode differentiation of the loss with respect to every trainable parameter";
  let description = [{
    Builds `@<func>_grad` next to `@<func>`: the forward ops, then the backward ops made by
    each op's gradient rule (DifferentiableOpInterface, Gradients.cpp) in reverse order,
    seeded with ∂L/∂L = 1 on the function's first result. Its results are the original
    results followed by one f32 gradient per trainable parameter (`optimizer` normuon or
    adamw, in declaration order), each tagged `fusion.name = "grad:<parameter>"`;
    contributions of a value's several uses are summed. Integer operands, the routing
    selection and parameters with `optimizer = "none"` (the MoE selection bias) get no
    gradient. An op on the path from a parameter to the loss without a gradient rule is an
    error at that op.
  }];
  let options = [
    Option<"funcName", "func", "std::string", /*default=*/"\"forward\"",
           "the function to differentiate (its first result is the loss)">,
  ];
  let statistics = [
    Statistic<"numBackwardOps", "num-backward-ops", "ops created for the backward pass">,
    Statistic<"numGradients", "num-gradients", "parameter gradients returned">,
  ];
}

def OptimizerPass : Pass<"fusion-optimizer", "::mlir::ModuleOp"> {
  let summary = "Build train_step: gradient accumulation, clipping, NorMuon + Cautious AdamW, WSD, MoE bias balancing";
  let description = [{
    From `@forward` and `@forward_grad` (fusion-autodiff) and the module's `fusion.config`
    dictionary (the resolved training config), builds

    `func.func @train_step(%tokens: [n_acc, B, T+1] i32, %targets: [n_acc, B, T+1] i32,
    %inv_counts: [1+D_m] f32, %step: [2] i32) -> (loss, main_loss, ctl [8] f32)`:

    1. the micro-batches a = 0..n_acc−1, each a copy of `@forward_grad` on slice a, their
       losses and gradients summed in fp32, their MoE expert counts summed per layer;
    2. the global squared gradient norm, then `fusion.step_control` (WSD factor f(s), clip
       scale, the non-finite guard; MODEL.md §12, §13);
    3. one `fusion.normuon_update` per NorMuon matrix (stacked experts update per slice) and
       one `fusion.adamw_update` per AdamW tensor, on optimizer-state parameters it declares
       (`<p>.muon_m`, `<p>.muon_v`, `<p>.adam_m`, `<p>.adam_v`, zero-initialised,
       `optimizer = "state"`);
    4. per MoE layer, `fusion.moe_bias_update` on the router bias and its count window
       (`<bias>.window`).

    `@forward` is renamed `@eval_step` (the held-out loss); `@forward_grad` is removed; `@score`
    (tokens, targets → `ce [B, T]`, the main head's per-token cross-entropy, MTP and balance
    terms dropped) serves log-likelihood scoring of continuations.
  }];
  let statistics = [
    Statistic<"numNorMuon", "num-normuon", "NorMuon updates">,
    Statistic<"numAdamW", "num-adamw", "AdamW updates">,
    Statistic<"numBiasUpdates", "num-bias-updates", "MoE bias updates">,
  ];
}

def ShardFsdpPass : Pass<"fusion-shard-fsdp", "::mlir::ModuleOp"> {
  let summary = "Data parallelism over mesh axis dp: the cross-rank reductions of a training step";
  let description = [{
    Makes the training programs of fusion-optimizer SPMD over `W_dp = dp` ranks (MODEL.md
    §16): every rank runs the same `train_step` on its own micro-batches, and the pass adds
    the collectives that make the ranks agree. Records the mesh as the module attribute
    `fusion.mesh = {dp = D, ep = 1}`.

    Strategy `no_shard` (replicate + all-reduce): parameters and optimizer state stay whole
    on every rank; in each `train_step*` function, every gradient an optimizer update reads
    (`adamw_update`, `normuon_update`), every MoE expert-count window input
    (`moe_bias_update`) and the total loss `step_control` reads is replaced by its
    `all_reduce sum` over `dp`, placed right after the value is final. The returned `loss`
    and `main_loss` of `train_step*` and `eval_step` are summed the same way. The trainer
    feeds `inv_counts` of the global batch (all micro-batches of all ranks, §8), so the
    summed gradient is the single-rank gradient of the global batch, the norm, clipping,
    skip decision and updates are identical on every rank, and the weights stay replicated.

    `full_shard` and `shard_grad_op` (ZeRO-3 / ZeRO-2 with whole-matrix NorMuon owners) are
    not built yet and are rejected; so is an `ep` axis larger than 1.

    Before (dp = 2):
    ```mlir
    %g = fusion.add %g0, %g1 : tensor<64x32xf32>
    fusion.adamw_update %g, %ctl state [@w, @w.adam_m, @w.adam_v] {...}
    ```
    After:
    ```mlir
    %g = fusion.add %g0, %g1 : tensor<64x32xf32>
    %r = fusion.all_reduce %g {axis = "dp", reduce = "sum"} : tensor<64x32xf32>
    fusion.adamw_update %r, %ctl state [@w, @w.adam_m, @w.adam_v] {...}
    ```
  }];
  let options = [
    Option<"dp", "dp", "int64_t", /*default=*/"1", "data-parallel ranks (mesh axis dp)">,
    Option<"ep", "ep", "int64_t", /*default=*/"1",
           "expert-parallel ranks (mesh axis ep; only 1 is built)">,
    Option<"strategy", "strategy", "std::string", /*default=*/"\"no_shard\"",
           "fsdp_shard_strategy: no_shard (built), full_shard or shard_grad_op (not built)">,
  ];
  let statistics = [
    Statistic<"numAllReduces", "num-all-reduces", "all_reduce collectives added">,
  ];
}

#endif // FUSION_TRAINING_PASSES_TD
