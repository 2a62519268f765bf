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
include "mlir/IR/SymbolInterfaces.td"

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
def Fusion_SubOp : Fusion_Op<"sub", [Pure, SameOperandsAndResultType]> {
  let summary = "elementwise difference";
  let description = [{
    `z[i] = x[i] − y[i]` of two tensors of the same type.

    ```mlir
    %z = fusion.sub %x, %y : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$lhs, Fusion_FloatTensor:$rhs);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

class Fusion_UnaryElementwiseOp<string mnemonic, string math>
    : Fusion_Op<mnemonic, [Pure, SameOperandsAndResultType]> {
  let summary = "elementwise " # mnemonic;
  let description = [{
    `y[i] = }] # math # [{`, computed in fp32 whatever the storage type.

    ```mlir
    %y = fusion.}] # mnemonic # [{ %x : tensor<4x8xbf16>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Fusion_SiluOp : Fusion_UnaryElementwiseOp<"silu",
    "x[i] · σ(x[i])` with `σ(t) = 1 / (1 + exp(-t))`; its derivative is `σ(x)(1 + x(1 − σ(x)))">;
def Fusion_SigmoidOp : Fusion_UnaryElementwiseOp<"sigmoid", "σ(x[i]) = 1 / (1 + exp(−x[i]))">;
def Fusion_ExpOp : Fusion_UnaryElementwiseOp<"exp", "exp(x[i])">;
def Fusion_NegOp : Fusion_UnaryElementwiseOp<"neg", "−x[i]">;
def Fusion_SoftplusOp : Fusion_UnaryElementwiseOp<"softplus",
    "ln(1 + exp(x[i]))`, and `x[i]` itself for `x[i] > 20` (MODEL.md §1)">;

def Fusion_ScaleOp : Fusion_Op<"scale", [Pure, SameOperandsAndResultType]> {
  let summary = "multiplication by a compile-time constant";
  let description = [{
    `y[i] = factor · x[i]` (fp32 math), e.g. the `1/N_0` of the loss or `d_k^(−1/2)`.

    ```mlir
    %y = fusion.scale %x {factor = 5.0e-01 : f32} : tensor<4xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, F32Attr:$factor);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Fusion_SwigluOp : Fusion_Op<"swiglu", [Pure, SameOperandsAndResultType]> {
  let summary = "SwiGLU gate: SiLU(a) ⊙ c";
  let description = [{
    `h[i] = SiLU(a[i]) · c[i]` with `a = W1 u`, `c = W3 u` (MODEL.md §6). Backward:
    `da = dh ⊙ c ⊙ σ(a)(1 + a(1 − σ(a)))`, `dc = dh ⊙ SiLU(a)`.

    ```mlir
    %h = fusion.swiglu %a, %c : tensor<2x16x256xbf16>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$gate, Fusion_FloatTensor:$up);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

def Fusion_SoftcapOp : Fusion_Op<"softcap", [Pure, SameOperandsAndResultType]> {
  let summary = "logit soft-capping c·tanh(x/c)";
  let description = [{
    `z[i] = cap · tanh(x[i] / cap)` (Gemma 2), fp32. Its derivative is `1 − (z/cap)²`.
    A config with `logit_softcap: 0` emits no softcap op.

    Constraints: `softcap_c1` cap > 0.

    ```mlir
    %z = fusion.softcap %l {cap = 1.500000e+01 : f32} : tensor<32x512xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, F32Attr:$cap);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
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


//===----------------------------------------------------------------------------===//
// Layout: reshape, transpose, slice, concat, broadcast, cast, reductions
//===----------------------------------------------------------------------------===//

def Fusion_AnyTensor : StaticShapeTensorOf<[F32, BF16, F16, I32, I64]>;

def Fusion_ReshapeOp : Fusion_Op<"reshape", [Pure]> {
  let summary = "same elements, new shape (row-major)";
  let description = [{
    Reinterprets a row-major tensor with another static shape of the same element count
    (splitting heads: `[B, T, H·d] → [B, T, H, d]`). No data movement in a plan.

    Constraints: `reshape_c1` element counts agree; `reshape_c2` element types agree.

    ```mlir
    %y = fusion.reshape %x : (tensor<2x16x64xf32>) -> tensor<2x16x4x16xf32>
    ```
  }];
  let arguments = (ins Fusion_AnyTensor:$input);
  let results = (outs Fusion_AnyTensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_TransposeOp : Fusion_Op<"transpose", [Pure]> {
  let summary = "dimension permutation";
  let description = [{
    `y[i_{perm[0]}, …] = x[i_0, …]`: result dimension `d` is input dimension `perm[d]`
    (`[B, T, H, d] → [B, H, T, d]` is `perm = [0, 2, 1, 3]`).

    Constraints: `transpose_c1` perm is a permutation of `0..rank-1`; `transpose_c2` the
    result shape is the permuted input shape.

    ```mlir
    %y = fusion.transpose %x {perm = array<i64: 0, 2, 1, 3>} : (tensor<2x16x4x8xf32>) -> tensor<2x4x16x8xf32>
    ```
  }];
  let arguments = (ins Fusion_AnyTensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs Fusion_AnyTensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_SliceOp : Fusion_Op<"slice", [Pure]> {
  let summary = "a contiguous range of one dimension";
  let description = [{
    `y = x[…, start : start + size, …]` along dimension `dim` (e.g. the nope / rope parts of a
    head, or `x = row[0:T]`, `y = row[1:T+1]` of a token row).

    Constraints: `slice_c1` 0 ≤ dim < rank; `slice_c2` 0 ≤ start, size ≥ 1 and
    start + size ≤ x.shape[dim]; `slice_c3` the result shape is x's with `size` at dim.

    ```mlir
    %y = fusion.slice %x {dim = 1 : i64, start = 1 : i64, size = 16 : i64} : (tensor<2x17xi32>) -> tensor<2x16xi32>
    ```
  }];
  let arguments = (ins Fusion_AnyTensor:$input, I64Attr:$dim, I64Attr:$start, I64Attr:$size);
  let results = (outs Fusion_AnyTensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_ConcatOp : Fusion_Op<"concat", [Pure]> {
  let summary = "concatenation along one dimension";
  let description = [{
    `y = [x_0 ; x_1 ; …]` along `dim` (q = [q_nope ; q_rope]; MTP's `[RMSNorm(h) ; RMSNorm(e)]`).

    Constraints: `concat_c1` at least one operand, all of one rank and element type;
    `concat_c2` 0 ≤ dim < rank; `concat_c3` all other dimensions agree; `concat_c4` the
    result has the summed size at dim.

    ```mlir
    %y = fusion.concat %a, %b {dim = 3 : i64} : (tensor<2x4x16x8xf32>, tensor<2x4x16x4xf32>) -> tensor<2x4x16x12xf32>
    ```
  }];
  let arguments = (ins Variadic<Fusion_FloatTensor>:$inputs, I64Attr:$dim);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_BroadcastOp : Fusion_Op<"broadcast", [Pure]> {
  let summary = "explicit broadcast to a larger shape";
  let description = [{
    `y[i] = x[i restricted to dims]`: input dimension `j` becomes result dimension
    `dims[j]`; the other result dimensions repeat (a per-head `dt_bias [H]` added to
    `a [B, T, H]` is a broadcast with `dims = [2]` then an add).

    Constraints: `broadcast_c1` one entry per input dimension, strictly increasing, in
    range; `broadcast_c2` each mapped dimension has the input's size; `broadcast_c3`
    element types agree.

    ```mlir
    %y = fusion.broadcast %x {dims = array<i64: 2>} : (tensor<4xf32>) -> tensor<2x16x4xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, DenseI64ArrayAttr:$dims);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_CastOp : Fusion_Op<"cast", [Pure, SameOperandsAndResultShape]> {
  let summary = "element type conversion (round to nearest even)";
  let description = [{
    `y[i] = convert(x[i])` between f32, bf16 and f16 (the bf16 compute copy of an fp32
    master weight, the fp32 residual stream), or from i32 to a float type (expert counts
    for the bias update).

    ```mlir
    %y = fusion.cast %x : (tensor<4x8xf32>) -> tensor<4x8xbf16>
    ```
  }];
  let arguments = (ins StaticShapeTensorOf<[F32, BF16, F16, I32]>:$input);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

def Fusion_SumOp : Fusion_Op<"sum", [Pure]> {
  let summary = "sum over dimensions (fp32 accumulation)";
  let description = [{
    `y = Σ_{dims} x`, the reduced dimensions removed; fp32 accumulation.

    Constraints: `sum_c1` dims strictly increasing and in range; `sum_c2` the result shape
    is the input shape without `dims`.

    ```mlir
    %total = fusion.sum %losses {dims = array<i64: 0>} : (tensor<32xf32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, DenseI64ArrayAttr:$dims);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------------===//
// Model blocks: positional encoding, attention, GDN
//===----------------------------------------------------------------------------===//

def Fusion_RopeOp : Fusion_Op<"rope", [Pure, SameOperandsAndResultType]> {
  let summary = "rotary position embedding on the last `rotary_dims` components";
  let description = [{
    For `x` of shape `[B, T, …, d]`, position `p` = index along dimension 1 (restarting at
    every row), the last `rotary_dims = d_r` components are rotated in interleaved pairs
    (MODEL.md §3): for `k < d_r/2`, `θ_k = theta^(−2k/d_r)`, `φ = p·θ_k`,
    `(a, b) = (x_{o+2k}, x_{o+2k+1}) → (a cos φ − b sin φ, a sin φ + b cos φ)` with
    `o = d − d_r`; the first `d − d_r` ("nope") components pass through (decoupled RoPE).
    cos/sin in fp32. Backward: the rotation by `−φ`.

    Constraints: `rope_c1` rank ≥ 3; `rope_c2` rotary_dims even, ≥ 2 and ≤ d;
    `rope_c3` theta > 0.

    ```mlir
    %y = fusion.rope %q {rotary_dims = 16 : i64, theta = 1.000000e+04 : f32} : tensor<2x16x4x48xbf16>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, I64Attr:$rotary_dims, F32Attr:$theta);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Fusion_AttentionOp : Fusion_Op<"attention", [Pure]> {
  let summary = "causal / sliding-window grouped-query softmax attention";
  let description = [{
    With `q [B, H, T, d_qk]`, `k [B, G, T, d_qk]`, `v [B, G, T, d_v]`, query head `h` using
    key/value group `g(h) = floor(h / (H/G))` (MODEL.md §3):
    `s_{h,t,u} = scale · q_{h,t} · k_{g(h),u}` for `u ∈ 𝒰(t)`, else −∞;
    `o_{h,t} = Σ_u softmax_u(s_{h,t,·}) v_{g(h),u}`. `𝒰(t) = {u ≤ t}` when `causal` with
    `window = 0`, `{t − window < u ≤ t}` with `window > 0` (exactly `window` keys including
    self), all u when not causal. Softmax statistics in fp32. Backward: FlashAttention-2,
    GQA summing dK, dV over a group's heads.

    Constraints: `attention_c1` q, k, v are 4-D; `attention_c2` batch and sequence sizes
    agree; `attention_c3` k and v have the same number of groups G, and G divides H;
    `attention_c4` q and k have one head dim; `attention_c5` the result is `[B, H, T, d_v]`;
    `attention_c6` window ≥ 0, and window > 0 needs causal; `attention_c7` scale > 0.

    ```mlir
    %o = fusion.attention %q, %k, %v {causal, scale = 0.102 : f32, window = 8 : i64} : (tensor<2x4x16x96xbf16>, tensor<2x2x16x96xbf16>, tensor<2x2x16x64xbf16>) -> tensor<2x4x16x64xbf16>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$query, Fusion_FloatTensor:$key,
                       Fusion_FloatTensor:$value, UnitAttr:$causal,
                       DefaultValuedAttr<I64Attr, "0">:$window, F32Attr:$scale);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$query `,` $key `,` $value attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_CausalConv1dOp : Fusion_Op<"causal_conv1d", [Pure]> {
  let summary = "causal depthwise 1-D convolution over time";
  let description = [{
    For `x [B, T, C]` and `w [C, K]`: `y[b, t, c] = Σ_{j<K} w[c, j] · x[b, t − K + 1 + j, c]`,
    `x` = 0 before the row start, no bias (GDN's short convolution, MODEL.md §4.1).

    Constraints: `causal_conv1d_c1` x is 3-D and w is 2-D; `causal_conv1d_c2` w has C rows;
    `causal_conv1d_c3` the result type is x's.

    ```mlir
    %y = fusion.causal_conv1d %x, %w : (tensor<2x16x128xbf16>, tensor<128x4xbf16>) -> tensor<2x16x128xbf16>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, Fusion_FloatTensor:$weight);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_L2NormOp : Fusion_Op<"l2_norm", [Pure, SameOperandsAndResultType]> {
  let summary = "L2 normalisation over the last dimension, times a constant";
  let description = [{
    `y = scale · x / sqrt(‖x‖² + eps)` over the last dimension (GDN's q with
    `scale = d_k^(−1/2)`, k with `scale = 1`, `eps = 1e-6`; MODEL.md §4.1). Backward with
    `ν = sqrt(‖x‖² + eps)`, `x̂ = x/ν`: `dx = (scale/ν)(dy − x̂ (x̂ · dy))`.

    Constraints: `l2_norm_c1` eps > 0.

    ```mlir
    %y = fusion.l2_norm %x {eps = 9.99999997E-7 : f32, scale = 1.000000e+00 : f32} : tensor<2x16x4x32xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, F32Attr:$eps, F32Attr:$scale);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Fusion_GatedDeltaRuleOp : Fusion_Op<"gated_delta_rule", [Pure]> {
  let summary = "the gated delta rule recurrence (Gated DeltaNet), chunked";
  let description = [{
    Per row and value head h (key head `floor(h·H_k/H)`), with `α_t = exp(g_t)`:
    `S_t = α_t S_{t−1} (I − β_t k_t k_tᵀ) + β_t v_t k_tᵀ`, `S_{−1} = 0`,
    `o_t = S_t q_t` (MODEL.md §4.1), state `S ∈ R^{d_h×d_k}` in fp32. Computed in the
    chunkwise-parallel WY form with chunks of `chunk_size` tokens (§4.2; the last chunk may
    be shorter); the decays are only ever exponentiated where the exponent is ≤ 0.

    Operands: `q, k [B, T, H_k, d_k]` (already L2-normalised and scaled), `v [B, T, H, d_h]`,
    `g [B, T, H]` (log-decay ≤ 0), `beta [B, T, H]` (write strength in (0, 1)).

    Constraints: `gated_delta_rule_c1` ranks 4, 4, 4, 3, 3; `gated_delta_rule_c2` B and T
    agree; `gated_delta_rule_c3` q and k have one shape; `gated_delta_rule_c4` H_k divides
    H; `gated_delta_rule_c5` g and beta are `[B, T, H]`; `gated_delta_rule_c6` the result
    is v's shape; `gated_delta_rule_c7` chunk_size ∈ {16, 32, 64, 128}.

    ```mlir
    %o = fusion.gated_delta_rule %q, %k, %v, %g, %beta {chunk_size = 64 : i64} : (tensor<2x16x2x32xf32>, tensor<2x16x2x32xf32>, tensor<2x16x4x16xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>) -> tensor<2x16x4x16xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$query, Fusion_FloatTensor:$key,
                       Fusion_FloatTensor:$value, Fusion_FloatTensor:$log_decay,
                       Fusion_FloatTensor:$beta, I64Attr:$chunk_size);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $log_decay `,` $beta attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------------===//

def Fusion_MoeRouteOp : Fusion_Op<"moe_route", [Pure]> {
  let summary = "sigmoid router with selection bias and group-limited top-k";
  let description = [{
    From router logits `ℓ [N, E]` (fp32) and the selection bias `b [E]` (MODEL.md §5):
    `s = σ(ℓ)`, `s^b = s + b`; with `n_groups = G_e > 1`, group `m` holds experts
    `[m·E/G_e, (m+1)·E/G_e)`, scores `ψ_m` = the sum of its `group_topk` largest `s^b`, and
    only the `n_limited_groups` best groups stay eligible (ties → lower group index).
    `𝒮` = the `top_k` largest eligible `s^b` (ties → lower expert index);
    `w_i = route_scale · s_i / Σ_{j∈𝒮} s_j`. Results: `weights [N, K]` (fp32), `indices
    [N, K]` (i32, in selection order) and the affinities `s [N, E]` (for the balance loss).
    Selection has no gradient; `b` never receives one.

    Constraints: `moe_route_c1` logits `[N, E]`, bias `[E]`, f32; `moe_route_c2` G_e
    divides E; `moe_route_c3` 1 ≤ group_topk ≤ E/G_e; `moe_route_c4` 1 ≤ n_limited_groups
    ≤ G_e; `moe_route_c5` 1 ≤ top_k ≤ n_limited_groups·E/G_e; `moe_route_c6` result shapes
    `[N, K]`, `[N, K]`, `[N, E]`; `moe_route_c7` route_scale > 0.

    ```mlir
    %w, %idx, %s = fusion.moe_route %logits, %bias {top_k = 2 : i64, n_groups = 2 : i64, n_limited_groups = 1 : i64, group_topk = 2 : i64, route_scale = 1.000000e+00 : f32} : (tensor<32x8xf32>, tensor<8xf32>) -> (tensor<32x2xf32>, tensor<32x2xi32>, tensor<32x8xf32>)
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$logits, RankedTensorOf<[F32]>:$bias,
                       I64Attr:$top_k, I64Attr:$n_groups, I64Attr:$n_limited_groups,
                       I64Attr:$group_topk, F32Attr:$route_scale);
  let results = (outs RankedTensorOf<[F32]>:$weights, RankedTensorOf<[I32]>:$indices,
                      RankedTensorOf<[F32]>:$scores);
  let assemblyFormat = "$logits `,` $bias attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_MoeDispatchOp : Fusion_Op<"moe_dispatch", [Pure]> {
  let summary = "permute token copies into expert order (dropless)";
  let description = [{
    For tokens `x [N, D]` and selections `indices [N, K]`, the `N·K` (token, slot) pairs are
    stably sorted by expert: `xs[r] = x[perm[r] / K]` where `perm [N·K]` lists the pair
    index `n·K + k` of each sorted row, and `group_sizes [E]` (i32) counts each expert's rows
    (empty experts have 0). Shapes are static; only the split between experts is decided
    at run time.

    Constraints: `moe_dispatch_c1` x is 2-D, indices `[N, K]` with x's N;
    `moe_dispatch_c2` results `[N·K, D]`, `[E]`, `[N·K]` with E = num_experts ≥ 1.

    ```mlir
    %xs, %sizes, %perm = fusion.moe_dispatch %x, %idx {num_experts = 8 : i64} : (tensor<32x64xbf16>, tensor<32x2xi32>) -> (tensor<64x64xbf16>, tensor<8xi32>, tensor<64xi32>)
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, RankedTensorOf<[I32]>:$indices,
                       I64Attr:$num_experts);
  let results = (outs Fusion_FloatTensor:$result, RankedTensorOf<[I32]>:$group_sizes,
                      RankedTensorOf<[I32]>:$permutation);
  let assemblyFormat = "$input `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_GroupedMatmulOp : Fusion_Op<"grouped_matmul", [Pure]> {
  let summary = "one GEMM per expert over consecutive row groups";
  let description = [{
    Rows `[o_e, o_e + group_sizes[e])` of `x [M, D_in]` (with `o_e` the prefix sum) are
    multiplied by expert `e`'s weight stored `[out, in]`:
    `y[r] = W[e] x[r]` for `W [E, D_out, D_in]`; fp32 accumulation. Rows beyond the total
    group size (none with dropless dispatch) are zero.

    Constraints: `grouped_matmul_c1` x 2-D, weight 3-D, group_sizes `[E]`;
    `grouped_matmul_c2` weight's D_in equals x's; `grouped_matmul_c3` the result is
    `[M, D_out]` of x's element type.

    ```mlir
    %h = fusion.grouped_matmul %xs, %w1, %sizes : (tensor<64x64xbf16>, tensor<8x32x64xbf16>, tensor<8xi32>) -> tensor<64x32xbf16>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, Fusion_FloatTensor:$weight,
                       RankedTensorOf<[I32]>:$group_sizes);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `,` $group_sizes attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Fusion_MoeCombineOp : Fusion_Op<"moe_combine", [Pure]> {
  let summary = "weighted sum of the expert outputs back in token order";
  let description = [{
    Inverse of `moe_dispatch`: `y[n] = Σ_k weights[n, k] · ys[r(n, k)]` where row `r` of
    `ys [N·K, D]` holds pair `perm[r] = n·K + k`; fp32 accumulation, result in the element
    type of ys.

    Constraints: `moe_combine_c1` ys 2-D, weights `[N, K]`, perm `[N·K]`;
    `moe_combine_c2` the result is `[N, D]`.

    ```mlir
    %y = fusion.moe_combine %ys, %w, %perm : (tensor<64x64xbf16>, tensor<32x2xf32>, tensor<64xi32>) -> tensor<32x64xbf16>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, RankedTensorOf<[F32]>:$weights,
                       RankedTensorOf<[I32]>:$permutation);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weights `,` $permutation attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Fusion_MoeBalanceLossOp : Fusion_Op<"moe_balance_loss", [Pure]> {
  let summary = "sequence-wise balance loss (DeepSeek-V3), mean over rows";
  let description = [{
    For each row of `seq_len = T` tokens (MODEL.md §5): `f_i = E/(K·T) Σ_t 1[i ∈ 𝒮_t]`
    (no gradient), `s'_{t,i} = s_{t,i} / Σ_j s_{t,j}`, `P_i = (1/T) Σ_t s'_{t,i}`,
    `L_bal = Σ_i f_i P_i`; the result is the mean of `L_bal` over the `N/T` rows (a 0-d f32
    tensor). Gradient: `∂L_bal/∂s_{t,i} = (1/T)(f_i − Σ_j f_j s'_{t,j}) / Σ_j s_{t,j}`.

    Constraints: `moe_balance_loss_c1` scores `[N, E]`, indices `[N, K]` with one N;
    `moe_balance_loss_c2` seq_len ≥ 1 divides N.

    ```mlir
    %l = fusion.moe_balance_loss %s, %idx {seq_len = 16 : i64} : (tensor<32x8xf32>, tensor<32x2xi32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$scores, RankedTensorOf<[I32]>:$indices,
                       I64Attr:$seq_len);
  let results = (outs 0DTensorOf<[F32]>:$result);
  let assemblyFormat = "$scores `,` $indices attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------------===//

def Fusion_CrossEntropyOp : Fusion_Op<"cross_entropy", [Pure]> {
  let summary = "per-token cross-entropy, negative targets ignored";
  let description = [{
    `loss[n] = logsumexp(z[n, :]) − z[n, y[n]]` in fp32 for `y[n] ≥ 0`, and 0 for
    `y[n] < 0` (an ignored, padding target; MODEL.md §14.3). A target ≥ V is a runtime
    error. Gradient: `softmax(z) − onehot(y)` on kept rows.

    Constraints: `cross_entropy_c1` logits `[N, V]`, targets `[N]`; `cross_entropy_c2`
    the result is `[N]` f32.

    ```mlir
    %l = fusion.cross_entropy %z, %y : (tensor<32x512xf32>, tensor<32xi32>) -> tensor<32xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$logits, Fusion_IndexTensor:$targets);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$logits `,` $targets attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------------===//

def Fusion_ParameterOp : Fusion_Op<"parameter", [Symbol, HasParent<"::mlir::ModuleOp">]> {
  let summary = "a trainable tensor (or buffer) of the model, with its init rule";
  let description = [{
    A module-level global named by its canonical checkpoint name (MODEL.md §10, e.g.
    `layers.11.ffn.router.weight`), stored fp32. `init` is the rule of MODEL.md §11:

    | init | meaning | needs |
    |---|---|---|
    | `zeros`, `ones` | constant | |
    | `normal` | N(0, std²) | std |
    | `trunc_normal` | N(0, std²) resampled outside ±2·std (μP) | std |
    | `uniform` | U(low, high) | low, high |
    | `log_uniform` | ln(U(low, high)) (GDN `A_log`) | low, high |
    | `dt_bias` | softplus⁻¹(exp(U(ln low, ln high)) clamped ≥ 1e-4) (GDN `dt_bias`) | low, high |

    `optimizer` is `normuon`, `adamw`, `none` (the MoE selection bias: updated by the
    balancing rule, never by gradient) or `state` (optimizer state created by
    `fusion-optimizer`: moments, expert-count windows; checkpointed with the optimizer) or
    `cache` (inference state of the decode program: KV caches, GDN convolution tails and
    recurrent states; zeros at the start of each generation, never checkpointed);
    `weight_decay` marks tensors that decay.

    Constraints: `parameter_c1` init is one of the rules above with its attributes;
    `parameter_c2` std > 0, low < high (and low > 0 for the logarithmic rules);
    `parameter_c3` normuon tensors are ≥ 2-D; `parameter_c4` the type is f32.

    ```mlir
    fusion.parameter @"layers.0.attn.wo.weight" : tensor<64x64xf32> {init = "trunc_normal", optimizer = "normuon", std = 0.0125 : f64, weight_decay}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttrOf<Fusion_FloatTensor>:$type,
                       StrAttr:$init, OptionalAttr<F64Attr>:$std, OptionalAttr<F64Attr>:$low,
                       OptionalAttr<F64Attr>:$high, StrAttr:$optimizer, UnitAttr:$weight_decay);
  let assemblyFormat = "$sym_name `:` $type attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
  }];
}

def Fusion_LoadOp : Fusion_Op<"load", [Pure,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "read a parameter";
  let description = [{
    The current value of parameter `name` inside a function.

    Constraints: `load_c1` the name is a `fusion.parameter`; `load_c2` the result type is
    the parameter's.

    ```mlir
    %w = fusion.load @"tok_embeddings.weight" : tensor<512x64xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

include "dialects/Fusion/IR/FusionTrainingOps.td"
include "dialects/Fusion/IR/FusionInferenceOps.td"
include "dialects/Fusion/IR/FusionCollectiveOps.td"

#endif // FUSION_OPS_TD
