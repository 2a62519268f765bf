//===- Passes.td - fusion -> fplan conversion ------------------*- tablegen -*-===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------------===//

#ifndef FUSION_CONVERSION_PASSES_TD
#define FUSION_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def LowerToPlanPass : Pass<"fusion-lower-to-plan", "::mlir::ModuleOp"> {
  let summary = "Lower tensor-level fusion IR to an executable fplan program";
  let description = [{
    Every tensor gets a buffer and every op an instruction carrying a portable description
    of what it computes (docs/op-kinds.md): the op's mnemonic as the kernel kind, its
    attributes as kernel parameters, its operands then results as the launch's buffers.
    `fusion.matmul` becomes `fplan.gemm`. Parameters become buffers of a persistent arena
    written by an `init` program of `init_param` kernels (seed from the module attribute
    `fusion.seed`); each function becomes a program of the same name whose arguments and
    results are its input and output bindings (named by the argument / result attribute
    `fusion.name`, else `arg<N>` / `result<N>`).

    `softcap_ce` and `softcap_ce_grad` become blocks of logit rows: `fplan.gemm` for h·Wᵀ
    (fp32 result), a `softcap_ce_rows(_grad)` kernel per block, and for the gradient two
    GEMMs (dh = dℓ·W, dW += dℓᵀ·h); blocks hold at most `softcap-ce-block-bytes` of logits,
    so the [N, V] matrix never exists at once (docs/op-kinds.md, "softcap_ce in plans").

    An `attention` whose `attention_grad` (same q, k, v and attributes) is in the same
    function becomes `attention_lse`, which also writes each query row's log-sum-exp
    (`[B, H, T]` f32), and the gradient becomes `attention_grad_lse` reading o and lse, so
    the backward need not recompute the softmax statistics (`attention-saves-lse=false`
    keeps the plain kinds).

    A module without functions or parameters (already fplan IR) is left unchanged.
    Buffers are laid out one after another (no reuse); `fusion-plan-memory` then assigns
    offsets from liveness. Kernels with equal kind, parameters and output element type are
    shared.

    Before:
    ```mlir
    fusion.parameter @w : tensor<4x8xf32> {init = "ones", optimizer = "adamw"}
    func.func @forward(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
      %w = fusion.load @w : tensor<4x8xf32>
      %y = fusion.matmul %x, %w {transpose_b} : (...) -> tensor<2x4xf32>
      %z = fusion.silu %y : tensor<2x4xf32>
      return %z : tensor<2x4xf32>
    }
    ```
    After:
    ```mlir
    fplan.arena @params persistent size(128)
    fplan.arena @transient size(...)
    fplan.buffer @w : tensor<4x8xf32> in @params at 0
    fplan.kernel @init.w kind "init_param" params {rule = "ones", ...}
    fplan.program @init { fplan.launch @init.w ins [] outs [@w] ... }
    fplan.program @forward inputs {arg0 = @forward.arg0} outputs {result0 = @...} {
      fplan.gemm @forward.arg0, @w -> @... transpose_b
      fplan.launch @silu ins [...] outs [...] ...
    }
    ```
  }];
  let dependentDialects = ["::mlir::fusion::plan::FPlanDialect"];
  let options = [
    Option<"seed", "seed", "int64_t", /*default=*/"-1",
           "init seed (default: the module's fusion.seed attribute, else 1234)">,
    Option<"softcapCeBlockBytes", "softcap-ce-block-bytes", "int64_t", /*default=*/"1073741824",
           "most bytes of f32 logits per block of rows when softcap_ce / softcap_ce_grad "
           "become GEMMs and per-row kernels (default 1 GiB)">,
    Option<"attentionSavesLse", "attention-saves-lse", "bool", /*default=*/"true",
           "lower an attention whose attention_grad is in the same function to "
           "attention_lse (o and the rows' log-sum-exp) and the gradient to "
           "attention_grad_lse, which reads them instead of recomputing (default on)">,
  ];
  let statistics = [
    Statistic<"numBuffers", "num-buffers", "buffers created">,
    Statistic<"numKernels", "num-kernels", "distinct kernels created">,
    Statistic<"numInstructions", "num-instructions", "instructions emitted">,
    Statistic<"numSavedLse", "num-saved-lse", "attention forwards that save their lse for the gradient">,
  ];
}

#endif // FUSION_CONVERSION_PASSES_TD
