//===- FusionTrainingOps.td - backward, fused-loss and optimizer ops -*- tablegen -*-===//
//
// Part of the FusionLLM compiler.
//
// Ops that the training passes create: the backward ops that gradient rules
// (Gradients.cpp) build, the fused softcap + cross-entropy of `fusion-fuse-softcap-ce`, and
// the optimizer ops of `fusion-optimizer`, which update parameters and optimizer state in
// place through symbol references. Each op's math is its runtime kernel's contract
// (docs/op-kinds.md, "Training kinds"); shape rules carry constraint IDs as in FusionOps.td.
//
//===----------------------------------------------------------------------------===//

#ifndef FUSION_TRAINING_OPS_TD
#define FUSION_TRAINING_OPS_TD

//===----------------------------------------------------------------------------===//
// Constants
//===----------------------------------------------------------------------------===//

def Fusion_FillOp : Fusion_Op<"fill", [Pure]> {
  let summary = "a tensor with every element equal to a constant";
  let description = [{
    `y[i] = value`. The seed of reverse mode (`∂L/∂L = 1`) and the zero gradient of a
    parameter that the loss does not reach.

    ```mlir
    %one = fusion.fill {value = 1.0 : f64} : tensor<f32>
    ```
  }];
  let arguments = (ins F64Attr:$value);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------------===//
// Backward ops
//===----------------------------------------------------------------------------===//

def Fusion_ActivationGradOp : Fusion_Op<"activation_grad", [Pure, SameOperandsAndResultType]> {
  let summary = "gradient of an elementwise activation";
  let description = [{
    `dx = dy · f′(x)` for `fn` ∈ {`silu`, `sigmoid`, `softplus`, `softcap`}:
    silu′(x) = σ(x)(1 + x(1 − σ(x))); sigmoid′(x) = σ(x)(1 − σ(x)); softplus′(x) = σ(x)
    (1 for x > 20, as the forward is linear there); softcap′(x) = 1 − tanh²(x/cap).

    Constraints: `activation_grad_c1` fn is one of the four; `activation_grad_c2` cap is
    given and > 0 exactly when fn is softcap.

    ```mlir
    %dx = fusion.activation_grad %x, %dy {fn = "silu"} : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, Fusion_FloatTensor:$grad, StrAttr:$fn,
                       OptionalAttr<F32Attr>:$cap);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input `,` $grad attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Fusion_SwigluGradOp : Fusion_Op<"swiglu_grad", [Pure, SameOperandsAndResultType]> {
  let summary = "gradient of SiLU(a) ⊙ c";
  let description = [{
    `da = dy ⊙ c ⊙ silu′(a)`, `dc = dy ⊙ silu(a)` (MODEL.md §9).

    ```mlir
    %da, %dc = fusion.swiglu_grad %a, %c, %dy : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$gate, Fusion_FloatTensor:$up,
                       Fusion_FloatTensor:$grad);
  let results = (outs Fusion_FloatTensor:$grad_gate, Fusion_FloatTensor:$grad_up);
  let assemblyFormat = "$gate `,` $up `,` $grad attr-dict `:` type($grad_gate)";
}

def Fusion_RmsNormGradOp : Fusion_Op<"rms_norm_grad", [Pure]> {
  let summary = "gradient of rms_norm";
  let description = [{
    With `r = (mean x² + eps)^(−1/2)`, `x̂ = x r`, `ĝ = dy ⊙ w` (MODEL.md §9):
    `dx = r (ĝ − x̂ · mean(ĝ ⊙ x̂))` per row, `dw = Σ_rows dy ⊙ x̂` (f32).

    Constraints: `rms_norm_grad_c1` x and w as for rms_norm, dy and dx have x's type;
    `rms_norm_grad_c2` dw is f32 of w's shape.

    ```mlir
    %dx, %dw = fusion.rms_norm_grad %x, %w, %dy {eps = 1.0e-06 : f32} : (tensor<2x8xf32>, tensor<8xf32>, tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<8xf32>)
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, Fusion_FloatTensor:$weight,
                       Fusion_FloatTensor:$grad, F32Attr:$eps);
  let results = (outs Fusion_FloatTensor:$grad_input, RankedTensorOf<[F32]>:$grad_weight);
  let assemblyFormat = "$input `,` $weight `,` $grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_L2NormGradOp : Fusion_Op<"l2_norm_grad", [Pure, SameOperandsAndResultType]> {
  let summary = "gradient of l2_norm";
  let description = [{
    With `ν = sqrt(‖x‖² + eps)` and `x̂ = x/ν` over the last dimension:
    `dx = (scale/ν)(dy − x̂ (x̂ · dy))` (MODEL.md §4.3).

    ```mlir
    %dx = fusion.l2_norm_grad %x, %dy {eps = 1.0e-06 : f32, scale = 0.25 : f32} : tensor<2x4x16xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, Fusion_FloatTensor:$grad, F32Attr:$eps,
                       F32Attr:$scale);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input `,` $grad attr-dict `:` type($result)";
}

def Fusion_RopeGradOp : Fusion_Op<"rope_grad", [Pure, SameOperandsAndResultType]> {
  let summary = "gradient of rope: the inverse rotation";
  let description = [{
    RoPE is orthogonal, so `dx_pair = R(−φ) dy_pair` on the same interleaved pairs of the
    last `rotary_dims` components, at the same positions (index along dimension 1).

    ```mlir
    %dx = fusion.rope_grad %dy {rotary_dims = 8 : i64, theta = 1.0e+04 : f32} : tensor<2x16x4x24xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$grad, I64Attr:$rotary_dims, F32Attr:$theta);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$grad attr-dict `:` type($result)";
}

def Fusion_AttentionGradOp : Fusion_Op<"attention_grad", [Pure]> {
  let summary = "gradient of attention";
  let description = [{
    FlashAttention-2 backward over the same mask: `P = softmax(scale·QKᵀ)`,
    `dV = Pᵀ dO`, `dP = dO Vᵀ`, `dS = P ⊙ (dP − rowsum(dO ⊙ O))`, `dQ = scale·dS K`,
    `dK = scale·dSᵀ Q`; dK and dV sum over the H/G query heads of a group.

    Constraints: `attention_grad_c1` q, k, v as for attention and dO of the attention
    result shape; `attention_grad_c2` dq, dk, dv have the types of q, k, v.

    ```mlir
    %dq, %dk, %dv = fusion.attention_grad %q, %k, %v, %do {causal, scale = 0.25 : f32} : (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>, tensor<1x4x8x8xf32>) -> (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>)
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$query, Fusion_FloatTensor:$key,
                       Fusion_FloatTensor:$value, Fusion_FloatTensor:$grad, UnitAttr:$causal,
                       DefaultValuedAttr<I64Attr, "0">:$window, F32Attr:$scale);
  let results = (outs Fusion_FloatTensor:$grad_query, Fusion_FloatTensor:$grad_key,
                      Fusion_FloatTensor:$grad_value);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $grad attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Fusion_CausalConv1dGradOp : Fusion_Op<"causal_conv1d_grad", [Pure]> {
  let summary = "gradient of causal_conv1d";
  let description = [{
    `dx[b,s,c] = Σ_j w[c,j] dy[b, s+K−1−j, c]` (terms past T vanish),
    `dw[c,j] = Σ_{b,t} dy[b,t,c] x[b, t−K+1+j, c]` (f32).

    Constraints: `causal_conv1d_grad_c1` x `[B,T,C]`, w `[C,K]`, dy and dx of x's type;
    `causal_conv1d_grad_c2` dw is f32 `[C,K]`.

    ```mlir
    %dx, %dw = fusion.causal_conv1d_grad %x, %w, %dy : (tensor<2x16x8xf32>, tensor<8x4xf32>, tensor<2x16x8xf32>) -> (tensor<2x16x8xf32>, tensor<8x4xf32>)
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, Fusion_FloatTensor:$weight,
                       Fusion_FloatTensor:$grad);
  let results = (outs Fusion_FloatTensor:$grad_input, RankedTensorOf<[F32]>:$grad_weight);
  let assemblyFormat = "$input `,` $weight `,` $grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_GatedDeltaRuleGradOp : Fusion_Op<"gated_delta_rule_grad", [Pure]> {
  let summary = "gradient of gated_delta_rule";
  let description = [{
    Reverse mode through the gated delta rule (MODEL.md §4.3; the chunkwise backward, or
    equivalently backpropagation through the §4.1 recurrence), fp32 state. Results are the
    gradients of q, k, v, g and beta, with their types.

    Constraints: `gated_delta_rule_grad_c1` operands as for gated_delta_rule plus dO of v's
    shape; `gated_delta_rule_grad_c2` each result has the type of its primal operand.

    ```mlir
    %dq, %dk, %dv, %dg, %db = fusion.gated_delta_rule_grad %q, %k, %v, %g, %beta, %do {chunk_size = 16 : i64} : (tensor<1x16x1x8xf32>, tensor<1x16x1x8xf32>, tensor<1x16x2x4xf32>, tensor<1x16x2xf32>, tensor<1x16x2xf32>, tensor<1x16x2x4xf32>) -> (tensor<1x16x1x8xf32>, tensor<1x16x1x8xf32>, tensor<1x16x2x4xf32>, tensor<1x16x2xf32>, tensor<1x16x2xf32>)
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$query, Fusion_FloatTensor:$key,
                       Fusion_FloatTensor:$value, Fusion_FloatTensor:$log_decay,
                       Fusion_FloatTensor:$beta, Fusion_FloatTensor:$grad, I64Attr:$chunk_size);
  let results = (outs Fusion_FloatTensor:$grad_query, Fusion_FloatTensor:$grad_key,
                      Fusion_FloatTensor:$grad_value, Fusion_FloatTensor:$grad_log_decay,
                      Fusion_FloatTensor:$grad_beta);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $log_decay `,` $beta `,` $grad attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Fusion_EmbeddingGradOp : Fusion_Op<"embedding_grad", [Pure]> {
  let summary = "gradient of embedding: scatter-add of rows";
  let description = [{
    `dtable[v, :] = Σ_{p : ids[p] = v} dy[p, :]` (f32); V is the result's first dimension.

    Constraints: `embedding_grad_c1` the result is f32 `[V, D]` and dy is `ids.shape × D`.

    ```mlir
    %dt = fusion.embedding_grad %ids, %dy : (tensor<2x16xi32>, tensor<2x16x64xf32>) -> tensor<512x64xf32>
    ```
  }];
  let arguments = (ins Fusion_IndexTensor:$ids, Fusion_FloatTensor:$grad);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$ids `,` $grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_SliceGradOp : Fusion_Op<"slice_grad", [Pure]> {
  let summary = "gradient of slice: zero padding back to the full shape";
  let description = [{
    `dx = 0` except `dx[..., start : start + size, ...] = dy` along `dim` (size from dy).

    Constraints: `slice_grad_c1` dx and dy agree except along dim, where
    `start + dy.shape[dim] ≤ dx.shape[dim]`; element types agree.

    ```mlir
    %dx = fusion.slice_grad %dy {dim = 1 : i64, start = 1 : i64} : (tensor<2x16xf32>) -> tensor<2x17xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$grad, I64Attr:$dim, I64Attr:$start);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_MoeRouteGradOp : Fusion_Op<"moe_route_grad", [Pure]> {
  let summary = "gradient of the routing weights with respect to the router logits";
  let description = [{
    With `Z = Σ_{j∈𝒮} s_j` and `w_i = ρ s_i / Z` (MODEL.md §9):
    `ds_i = (ρ/Z)(dw_i − Σ_{j∈𝒮} (w_j/ρ) dw_j)` for i ∈ 𝒮 (0 otherwise) and
    `dℓ = ds ⊙ s(1 − s)`. Selection and the bias have no gradient.

    Constraints: `moe_route_grad_c1` scores and the result `[N, E]` f32, indices and
    dweights `[N, K]`.

    ```mlir
    %dl = fusion.moe_route_grad %s, %idx, %dw {route_scale = 1.0 : f32} : (tensor<32x8xf32>, tensor<32x2xi32>, tensor<32x2xf32>) -> tensor<32x8xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$scores, RankedTensorOf<[I32]>:$indices,
                       RankedTensorOf<[F32]>:$grad, F32Attr:$route_scale);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$scores `,` $indices `,` $grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_MoeDispatchGradOp : Fusion_Op<"moe_dispatch_grad", [Pure]> {
  let summary = "gradient of moe_dispatch: sum of each token's copies";
  let description = [{
    `dx[n] = Σ_k dxs[r(n, k)]` with `r` the permutation's inverse.

    Constraints: `moe_dispatch_grad_c1` dxs `[N·K, D]`, perm `[N·K]`, result `[N, D]`
    with N dividing N·K; element types of dxs and the result agree.

    ```mlir
    %dx = fusion.moe_dispatch_grad %dxs, %perm : (tensor<64x16xf32>, tensor<64xi32>) -> tensor<32x16xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$grad, RankedTensorOf<[I32]>:$perm);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$grad `,` $perm attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_MoeCombineGradOp : Fusion_Op<"moe_combine_grad", [Pure]> {
  let summary = "gradient of moe_combine";
  let description = [{
    `dys[r(n,k)] = w[n,k] · dy[n]`, `dweights[n,k] = ⟨dy[n], ys[r(n,k)]⟩` (f32).

    Constraints: `moe_combine_grad_c1` operands as for moe_combine plus dy `[N, D]`;
    `moe_combine_grad_c2` dys has ys's type and dweights is f32 `[N, K]`.

    ```mlir
    %dys, %dw = fusion.moe_combine_grad %ys, %w, %perm, %dy : (tensor<64x16xf32>, tensor<32x2xf32>, tensor<64xi32>, tensor<32x16xf32>) -> (tensor<64x16xf32>, tensor<32x2xf32>)
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$expert_outputs, RankedTensorOf<[F32]>:$weights,
                       RankedTensorOf<[I32]>:$perm, Fusion_FloatTensor:$grad);
  let results = (outs Fusion_FloatTensor:$grad_expert_outputs, RankedTensorOf<[F32]>:$grad_weights);
  let assemblyFormat = [{
    $expert_outputs `,` $weights `,` $perm `,` $grad attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Fusion_GroupedMatmulGradOp : Fusion_Op<"grouped_matmul_grad", [Pure]> {
  let summary = "gradient of grouped_matmul";
  let description = [{
    Per group e (rows of xs in order, `group_sizes[e]` each): `dxs_e = dout_e · W[e]`,
    `dW[e] = dout_eᵀ · xs_e` (f32; 0 for an empty group).

    Constraints: `grouped_matmul_grad_c1` operands as for grouped_matmul plus dout
    `[M, D_out]`; `grouped_matmul_grad_c2` dxs has xs's type, dw is f32 of w's shape.

    ```mlir
    %dxs, %dw = fusion.grouped_matmul_grad %xs, %w, %sizes, %dout : (tensor<64x16xf32>, tensor<4x8x16xf32>, tensor<4xi32>, tensor<64x8xf32>) -> (tensor<64x16xf32>, tensor<4x8x16xf32>)
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, Fusion_FloatTensor:$weight,
                       RankedTensorOf<[I32]>:$group_sizes, Fusion_FloatTensor:$grad);
  let results = (outs Fusion_FloatTensor:$grad_input, RankedTensorOf<[F32]>:$grad_weight);
  let assemblyFormat = [{
    $input `,` $weight `,` $group_sizes `,` $grad attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Fusion_MoeBalanceLossGradOp : Fusion_Op<"moe_balance_loss_grad", [Pure]> {
  let summary = "gradient of the sequence-wise balance loss with respect to the affinities";
  let description = [{
    Per row of `seq_len` tokens, `∂L_bal/∂s_{t,i} = (1/T)(f_i − Σ_j f_j s′_{t,j}) / Σ_j s_{t,j}`
    (MODEL.md §5), times `dloss / rows` (the loss is a mean over rows).

    Constraints: `moe_balance_loss_grad_c1` scores and the result `[N, E]` f32, indices
    `[N, K]`, dloss a scalar, seq_len divides N.

    ```mlir
    %ds = fusion.moe_balance_loss_grad %s, %idx, %dl {seq_len = 16 : i64} : (tensor<32x8xf32>, tensor<32x2xi32>, tensor<f32>) -> tensor<32x8xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$scores, RankedTensorOf<[I32]>:$indices,
                       0DTensorOf<[F32]>:$grad, I64Attr:$seq_len);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$scores `,` $indices `,` $grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_CrossEntropyGradOp : Fusion_Op<"cross_entropy_grad", [Pure]> {
  let summary = "gradient of cross_entropy";
  let description = [{
    `dz[n] = dce[n] · (softmax(z_n) − onehot(y_n))`, 0 on rows with `y_n < 0`.

    Constraints: `cross_entropy_grad_c1` logits `[N, V]`, targets and dce `[N]`, the
    result has the logits' type.

    ```mlir
    %dz = fusion.cross_entropy_grad %z, %y, %dce : (tensor<32x512xf32>, tensor<32xi32>, tensor<32xf32>) -> tensor<32x512xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$logits, Fusion_IndexTensor:$targets,
                       RankedTensorOf<[F32]>:$grad);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$logits `,` $targets `,` $grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------------===//
// Fused softcapped head + cross-entropy
//===----------------------------------------------------------------------------===//

def Fusion_SoftcapCeOp : Fusion_Op<"softcap_ce", [Pure]> {
  let summary = "per-token cross-entropy of softcapped logits h·Wᵀ, without the logits";
  let description = [{
    `ce[n] = lse(z_n) − z_{n, y_n}` with `z = cap·tanh(h Wᵀ / cap)` (`cap = 0`: no cap), 0 for
    `y_n < 0`. Computed over vocabulary tiles with an online max/sum in fp32, so the
    `[N, V]` logits are never stored (MODEL.md §9). Built by `fusion-fuse-softcap-ce` from
    `cross_entropy(softcap(cast(matmul(h, W, transpose_b))))`.

    Constraints: `softcap_ce_c1` h `[N, D]`, w `[V, D]` of one element type, targets `[N]`;
    `softcap_ce_c2` the result is f32 `[N]`; `softcap_ce_c3` cap ≥ 0.

    ```mlir
    %ce = fusion.softcap_ce %h, %w, %y {cap = 15.0 : f32} : (tensor<32x64xf32>, tensor<512x64xf32>, tensor<32xi32>) -> tensor<32xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$hidden, Fusion_FloatTensor:$weight,
                       Fusion_IndexTensor:$targets, F32Attr:$cap);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$hidden `,` $weight `,` $targets attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Fusion_SoftcapCeGradOp : Fusion_Op<"softcap_ce_grad", [Pure]> {
  let summary = "gradient of softcap_ce, recomputing logit tiles";
  let description = [{
    Per vocabulary tile, `ℓ = h Wᵀ` is recomputed and
    `dℓ = dce[n] · (softmax(z_n) − onehot(y_n)) · (1 − (z/cap)²)` (factor 1 when cap = 0);
    `dh = dℓ W`, `dW = dℓᵀ h` (f32). The `[N, V]` matrix is never stored.

    Constraints: `softcap_ce_grad_c1` operands as for softcap_ce plus dce f32 `[N]`;
    `softcap_ce_grad_c2` dh has h's type, dw is f32 of w's shape.

    ```mlir
    %dh, %dw = fusion.softcap_ce_grad %h, %w, %y, %dce {cap = 15.0 : f32} : (tensor<32x64xf32>, tensor<512x64xf32>, tensor<32xi32>, tensor<32xf32>) -> (tensor<32x64xf32>, tensor<512x64xf32>)
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$hidden, Fusion_FloatTensor:$weight,
                       Fusion_IndexTensor:$targets, RankedTensorOf<[F32]>:$grad, F32Attr:$cap);
  let results = (outs Fusion_FloatTensor:$grad_hidden, RankedTensorOf<[F32]>:$grad_weight);
  let assemblyFormat = [{
    $hidden `,` $weight `,` $targets `,` $grad attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------------===//

def Fusion_StepControlOp : Fusion_Op<"step_control", [Pure]> {
  let summary = "LR schedule, gradient clipping and the non-finite guard of one step";
  let description = [{
    From `step = (s, t)` (optimizer step; applied-update count incl. this one), the step's
    total loss and the sum of squares of all gradients, computes
    `ctl = [f(s), clip, ok, ‖g‖, t, s, 0, 0]`: `f` the WSD (or cosine) schedule of MODEL.md
    §13 with `warmup_steps`, `stable_steps`, `decay_steps`, `min_lr_ratio` and `decay`;
    `clip = grad_clip/(‖g‖ + 1e-6)` when `‖g‖ > grad_clip > 0`, else 1; `ok = 1` when the loss
    and the norm are finite, else 0 (the step is skipped, §12).

    Constraints: `step_control_c1` step is i32 `[2]`, loss and grad_sumsq f32 scalars, the
    result f32 `[8]`; `step_control_c2` decay is `linear` or `cosine`, the step counts are
    ≥ 0 and decay_steps ≥ 1.

    ```mlir
    %ctl = fusion.step_control %step, %loss, %ss {warmup_steps = 10 : i64, stable_steps = 70 : i64, decay_steps = 20 : i64, min_lr_ratio = 0.1 : f32, decay = "linear", grad_clip = 1.0 : f32} : (tensor<2xi32>, tensor<f32>, tensor<f32>) -> tensor<8xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[I32]>:$step, 0DTensorOf<[F32]>:$loss,
                       0DTensorOf<[F32]>:$grad_sumsq, I64Attr:$warmup_steps,
                       I64Attr:$stable_steps, I64Attr:$decay_steps, F32Attr:$min_lr_ratio,
                       StrAttr:$decay, F32Attr:$grad_clip);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$step `,` $loss `,` $grad_sumsq attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

class Fusion_StatefulOp<string mnemonic> : Fusion_Op<mnemonic,
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let hasVerifier = 1;
}

def Fusion_AdamwUpdateOp : Fusion_StatefulOp<"adamw_update"> {
  let summary = "Cautious AdamW update of one parameter, in place";
  let description = [{
    Updates the parameters named by `state = [@w, @m, @v]` (MODEL.md §12): with
    `g ← ctl[1]·grad`, `m ← β1 m + (1−β1) g`, `v ← β2 v + (1−β2) g²`,
    `u = (m/(1−β1ᵗ)) / (sqrt(v/(1−β2ᵗ)) + eps)` (t = ctl[4]), optional cautious update
    mask, then `W ← W − η λ (mask ⊙ W) − η u` with `η = lr·ctl[0]`, `λ = weight_decay`
    and the cautious weight-decay mask (`grad`: 1[g⊙W > 0], `update`: 1[u⊙W ≥ 0]). Nothing
    changes when `ctl[2] = 0` (a skipped step).

    Constraints: `adamw_update_c1` state names three parameters of grad's shape;
    `adamw_update_c2` ctl is f32 `[8]`; `adamw_update_c3` cautious_wd_mode is `grad` or
    `update`, 0 ≤ β < 1, eps > 0.

    ```mlir
    fusion.adamw_update %g, %ctl state [@w, @w.adam_m, @w.adam_v] {lr = 3.0e-3 : f32, beta1 = 0.9 : f32, beta2 = 0.95 : f32, eps = 1.0e-8 : f32, weight_decay = 0.1 : f32, cautious_wd = 1 : i64, cautious_wd_mode = "grad", cautious_update = 0 : i64} : tensor<8xf32>, tensor<8xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$grad, RankedTensorOf<[F32]>:$ctl,
                       FlatSymbolRefArrayAttr:$state, F32Attr:$lr, F32Attr:$beta1,
                       F32Attr:$beta2, F32Attr:$eps, F32Attr:$weight_decay,
                       I64Attr:$cautious_wd, StrAttr:$cautious_wd_mode, I64Attr:$cautious_update);
  let assemblyFormat = "$grad `,` $ctl `state` $state attr-dict `:` type($grad) `,` type($ctl)";
}

def Fusion_NormuonUpdateOp : Fusion_StatefulOp<"normuon_update"> {
  let summary = "NorMuon update of one matrix (or a stack of matrices), in place";
  let description = [{
    Updates `state = [@w, @M, @v]` per `[m, n]` matrix (leading dimensions index
    independent units such as experts; v is `[..., m]`), MODEL.md §12: with
    `g ← ctl[1]·grad`, `M ← β1 M + (1−β1) g`, `G̃ = (1−β1) g + β1 M` (Nesterov, else M),
    `O = NS5(G̃)` (bf16 Newton–Schulz, (a,b,c) = (3.4445, −4.7750, 2.0315)); with
    `normalize`: `v ← β2 v + (1−β2) mean_j O²`, `Ô = O/(sqrt(v)+1e-10)` rescaled to ‖O‖_F;
    `U = Ô·sqrt(max(1, m/n))`, `W ← W − η λ (mask ⊙ W) − η U`, `η = lr·ctl[0]`. Nothing
    changes when `ctl[2] = 0`.

    Constraints: `normuon_update_c1` grad is ≥ 2-D and state names three parameters of
    shapes grad, grad and grad without its last dimension; `normuon_update_c2` ctl is f32
    `[8]`; `normuon_update_c3` cautious_wd_mode is `grad` or `update`, 0 ≤ β < 1.

    ```mlir
    fusion.normuon_update %g, %ctl state [@w, @w.muon_m, @w.muon_v] {lr = 0.02 : f32, beta1 = 0.95 : f32, beta2 = 0.95 : f32, weight_decay = 0.1 : f32, nesterov = 1 : i64, normalize = 1 : i64, cautious_wd = 1 : i64, cautious_wd_mode = "grad"} : tensor<16x8xf32>, tensor<8xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$grad, RankedTensorOf<[F32]>:$ctl,
                       FlatSymbolRefArrayAttr:$state, F32Attr:$lr, F32Attr:$beta1,
                       F32Attr:$beta2, F32Attr:$weight_decay, I64Attr:$nesterov,
                       I64Attr:$normalize, I64Attr:$cautious_wd, StrAttr:$cautious_wd_mode);
  let assemblyFormat = "$grad `,` $ctl `state` $state attr-dict `:` type($grad) `,` type($ctl)";
}

def Fusion_MoeBiasUpdateOp : Fusion_StatefulOp<"moe_bias_update"> {
  let summary = "aux-loss-free balancing: the router bias update, in place";
  let description = [{
    `state = [@bias, @window]` (MODEL.md §5). If `ctl[2] = 1`: `window += counts` (this
    step's expert assignments); then if `(s + 1) mod every = 0` (s = ctl[5]):
    `c̄ = mean(window)`, `bias_i −= speed` where `window_i > (1 + upper) c̄`, `+= speed` where
    `window_i < (1 − lower) c̄`, and `window = 0`. A skipped step changes nothing.

    Constraints: `moe_bias_update_c1` counts f32 `[E]`, state names two parameters of shape
    `[E]`; `moe_bias_update_c2` ctl f32 `[8]`, every ≥ 1, speed ≥ 0, 0 ≤ upper, lower < 1.

    ```mlir
    fusion.moe_bias_update %counts, %ctl state [@b, @b.window] {every = 10 : i64, speed = 1.0e-3 : f32, upper = 0.1 : f32, lower = 0.1 : f32} : tensor<8xf32>, tensor<8xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$counts, RankedTensorOf<[F32]>:$ctl,
                       FlatSymbolRefArrayAttr:$state, I64Attr:$every, F32Attr:$speed,
                       F32Attr:$upper, F32Attr:$lower);
  let assemblyFormat = "$counts `,` $ctl `state` $state attr-dict `:` type($counts) `,` type($ctl)";
}

#endif // FUSION_TRAINING_OPS_TD
