//===- FusionOps.td - fusion dialect ops -----------------------*- tablegen -*-===//
//
// Part of the FusionLLM compiler.
//
// Ops of the tensor-level IR. Every op states its math in the description; cross-operand
// shape rules live in ShapeRules.cpp and are tagged with constraint IDs (`matmul_c1`) that the
// invalid tests are named after.
//
//===----------------------------------------------------------------------------===//

#ifndef FUSION_OPS_TD
#define FUSION_OPS_TD

include "dialects/Fusion/IR/FusionBase.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/CommonAttrConstraints.td"

//===----------------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------------===//

class Fusion_BinaryElementwiseOp<string mnemonic, string math>
    : Fusion_Op<mnemonic, [Pure, SameOperandsAndResultType, Commutative]> {
  let summary = "elementwise " # mnemonic;
  let description = [{
    Elementwise }] # math # [{ of two tensors of the same type (no implicit broadcasting:
    broadcasts are explicit in this IR so that every buffer has one static size).

    ```mlir
    %z = fusion.}] # mnemonic # [{ %x, %y : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$lhs, Fusion_FloatTensor:$rhs);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Fusion_AddOp : Fusion_BinaryElementwiseOp<"add", "sum `z[i] = x[i] + y[i]`">;
def Fusion_MulOp : Fusion_BinaryElementwiseOp<"mul", "product `z[i] = x[i] * y[i]`">;

def Fusion_SiluOp : Fusion_Op<"silu", [Pure, SameOperandsAndResultType]> {
  let summary = "SiLU (swish) activation";
  let description = [{
    `y[i] = x[i] * σ(x[i])` with `σ(t) = 1 / (1 + exp(-t))`, computed in fp32.
    Its derivative, used by the backward pass, is `σ(x) * (1 + x * (1 - σ(x)))`.

    ```mlir
    %y = fusion.silu %x : tensor<4x8xbf16>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------------===//

def Fusion_MatmulOp : Fusion_Op<"matmul", [Pure]> {
  let summary = "(batched) matrix product with optional transposes";
  let description = [{
    `C[b, m, n] = Σ_k op(A)[b, m, k] · op(B)[b, k, n]`, where `op(X)` transposes the last two
    dimensions of `X` when `transpose_a` / `transpose_b` is set. Accumulation is fp32 whatever
    the storage dtype.

    Shapes: `A` has rank ≥ 2; its leading dimensions are batch dimensions. `B` has either the
    same batch dimensions as `A` or none (a weight shared across the batch, the common case
    `x @ Wᵀ` written with `transpose_b`). The result has `A`'s batch dimensions, then `m, n`.

    Constraints: `matmul_c1` rank(A) ≥ 2 and rank(B) ≥ 2; `matmul_c2` contraction dimensions
    agree; `matmul_c3` batch dimensions of B are absent or equal to A's; `matmul_c4` the result
    shape is `batch × m × n`; `matmul_c5` all element types agree.

    ```mlir
    %y = fusion.matmul %x, %w {transpose_b} : (tensor<2x16x64xf32>, tensor<128x64xf32>) -> tensor<2x16x128xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$lhs, Fusion_FloatTensor:$rhs,
                       UnitAttr:$transpose_a, UnitAttr:$transpose_b);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------------===//
// Normalisation
//===----------------------------------------------------------------------------===//

def Fusion_RmsNormOp : Fusion_Op<"rms_norm", [Pure]> {
  let summary = "RMS normalisation over the last dimension, with a learned scale";
  let description = [{
    `y[..., i] = x[..., i] / sqrt(mean_j(x[..., j]²) + eps) · w[i]`, the mean over the last
    dimension `d`, accumulated in fp32. `eps` is the model's `norm_eps` (MODEL.md §17).

    Constraints: `rms_norm_c1` rank(x) ≥ 1; `rms_norm_c2` w is 1-D of size `d = x.shape[-1]`;
    `rms_norm_c3` result type equals x's; `rms_norm_c4` eps > 0; `rms_norm_c5` element types
    of x and w agree.

    ```mlir
    %y = fusion.rms_norm %x, %w {eps = 1.0e-06 : f32} : (tensor<2x16x64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, Fusion_FloatTensor:$weight, F32Attr:$eps);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------------===//

def Fusion_EmbeddingOp : Fusion_Op<"embedding", [Pure]> {
  let summary = "row gather from an embedding table";
  let description = [{
    `y[..., :] = table[ids[...], :]` for a table of shape `[V, D]` and integer ids of any
    shape; the result has shape `ids.shape × D`. An id outside `[0, V)` is a runtime error
    naming the data shard and offset (the runtime checks ids when it loads a batch).

    Constraints: `embedding_c1` the table is 2-D; `embedding_c2` the result shape is
    `ids.shape × D`; `embedding_c3` the result element type is the table's.

    ```mlir
    %x = fusion.embedding %table, %ids : (tensor<512x64xf32>, tensor<2x16xi32>) -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$table, Fusion_IndexTensor:$ids);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$table `,` $ids attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

#endif // FUSION_OPS_TD
