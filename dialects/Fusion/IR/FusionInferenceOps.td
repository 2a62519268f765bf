//===- FusionInferenceOps.td - incremental decoding ops -----------*- tablegen -*-===//
//
// Part of the FusionLLM compiler.
//
// Ops of the inference programs (`decode_step`): the model processes S new tokens at
// position p (S = 1 when generating) and keeps what later tokens need in persistent `cache`
// parameters, updated in place through `state [...]` symbol references like the optimizer
// ops: the MLA key/value cache, the GDN convolution tail and the GDN recurrent state. Each
// op computes exactly what its training counterpart computes for those positions
// (docs/op-kinds.md, "Inference kinds"), so greedy decoding with the caches equals greedy
// decoding by recomputing the whole prefix. None is differentiable: the decode program is
// never trained through.
//
//===----------------------------------------------------------------------------===//

#ifndef FUSION_INFERENCE_OPS_TD
#define FUSION_INFERENCE_OPS_TD

def Fusion_PositionTensor : StaticShapeTensorOf<[I32]>;

def Fusion_RopeAtOp : Fusion_Op<"rope_at", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "rotary position embedding starting at a runtime position";
  let description = [{
    `fusion.rope` for tokens at positions `p + t`: for `x [B, S, …, d]` and
    `position = [p]` (i32), the element at index `t` along dimension 1 is rotated by the
    angles of position `p + t` (`φ = (p + t)·θ_k`, `θ_k = theta^(−2k/d_r)`, interleaved
    pairs of the last `rotary_dims` components, cos/sin in fp32). With `p = 0` it equals
    `fusion.rope`.

    Constraints: `rope_at_c1` rank ≥ 3; `rope_at_c2` rotary_dims even, ≥ 2 and ≤ d;
    `rope_at_c3` theta > 0; `rope_at_c4` position is i32 `[1]`.

    ```mlir
    %y = fusion.rope_at %q at %pos {rotary_dims = 16 : i64, theta = 1.000000e+04 : f32} : tensor<1x1x4x48xf32>, tensor<1xi32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, Fusion_PositionTensor:$position,
                       I64Attr:$rotary_dims, F32Attr:$theta);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = "$input `at` $position attr-dict `:` type($input) `,` type($position)";
  let hasVerifier = 1;
}

class Fusion_CacheOp<string mnemonic> : Fusion_Op<mnemonic,
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let hasVerifier = 1;
}

def Fusion_KvCacheAttentionOp : Fusion_CacheOp<"kv_cache_attention"> {
  let summary = "append keys/values to a cache, then attend over it";
  let description = [{
    With `q [B, H, S, d_qk]`, `k [B, G, S, d_qk]`, `v [B, G, S, d_v]` for positions
    `p .. p+S−1` (`position = [p]`) and `state = [@K, @V]` (`cache` parameters
    `[B, G, T_c, d_qk]` and `[B, G, T_c, d_v]`): first `K[:, :, p+i] ← k[:, :, i]`,
    `V[:, :, p+i] ← v[:, :, i]`; then for query `i` at `t = p + i`,
    `o_{h,i} = Σ_{u∈𝒰(t)} softmax_u(scale · q_{h,i} · K_{g(h),u}) V_{g(h),u}` with
    `g(h) = floor(h/(H/G))` and `𝒰(t) = {u ≤ t}` (window 0) or `{t − window < u ≤ t}` —
    `fusion.attention`'s causal rule on the cached prefix. Softmax statistics in fp32. The
    runtime fails when `p + S > T_c`.

    Constraints: `kv_cache_attention_c1` q, k, v are 4-D with one batch size and one
    number of new tokens S; `kv_cache_attention_c2` k and v have G groups, G divides H, q and
    k have one head dim; `kv_cache_attention_c3` the result is `[B, H, S, d_v]` of q's
    element type; `kv_cache_attention_c4` position is i32 `[1]`; `kv_cache_attention_c5`
    window ≥ 0, scale > 0; `kv_cache_attention_c6` state names two `cache` parameters
    `[B, G, T_c, d_qk]`, `[B, G, T_c, d_v]` with T_c ≥ S.

    ```mlir
    %o = fusion.kv_cache_attention %q, %k, %v at %pos state [@"layers.0.attn.k_cache", @"layers.0.attn.v_cache"] {scale = 0.102 : f32, window = 0 : i64} : (tensor<1x4x1x96xf32>, tensor<1x2x1x96xf32>, tensor<1x2x1x64xf32>, tensor<1xi32>) -> tensor<1x4x1x64xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$query, Fusion_FloatTensor:$key,
                       Fusion_FloatTensor:$value, Fusion_PositionTensor:$position,
                       FlatSymbolRefArrayAttr:$state, I64Attr:$window, F32Attr:$scale);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value `at` $position `state` $state attr-dict `:`
    `(` type($query) `,` type($key) `,` type($value) `,` type($position) `)` `->` type($result)
  }];
}

def Fusion_CausalConv1dStepOp : Fusion_Op<"causal_conv1d_step",
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>, AllTypesMatch<["input", "result"]>]> {
  let hasVerifier = 1;
  let summary = "causal depthwise convolution continuing from a cached input tail";
  let description = [{
    For `x [B, S, C]`, `w [C, K]` and `state = [@tail]` (a `cache` parameter
    `[B, K−1, C]` holding the K−1 inputs before this call, zeros at the start):
    with `z = concat(tail, x)` along time (`K−1+S` rows),
    `y[b, i, c] = Σ_{j<K} w[c, j] · z[b, i + j, c]`, then `tail ← z[:, S:, :]` (the last
    K−1 rows). Over a sequence fed in pieces this equals `fusion.causal_conv1d` on the
    whole sequence.

    Constraints: `causal_conv1d_step_c1` x is `[B, S, C]`, w is `[C, K]` with K ≥ 2;
    `causal_conv1d_step_c2` the result has x's type; `causal_conv1d_step_c3` state names
    one `cache` parameter `[B, K−1, C]`.

    ```mlir
    %y = fusion.causal_conv1d_step %x, %w state [@"layers.5.attn.conv_q_tail"] : tensor<1x1x32xf32>, tensor<32x4xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$input, Fusion_FloatTensor:$weight,
                       FlatSymbolRefArrayAttr:$state);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `state` $state attr-dict `:` type($input) `,` type($weight)
  }];
}

def Fusion_GatedDeltaStepOp : Fusion_CacheOp<"gated_delta_step"> {
  let summary = "gated delta rule, token by token from a cached state";
  let description = [{
    The recurrence of MODEL.md §4.1 over S new tokens, continuing from
    `state = [@Hs]` (a `cache` parameter `[B, H, d_k, d_h]` holding `Hs = Sᵀ`, fp32, zeros
    at the start): per row b, value head h (key head `h·H_k/H`) and token i, with
    `α = exp(g_i)`:
    `Hs ← α (Hs − β_i k_i (k_iᵀ Hs)) + β_i k_i v_iᵀ`, `o_i = Hsᵀ q_i`
    (that is `S_t = α_t S_{t−1}(I − β_t k_t k_tᵀ) + β_t v_t k_tᵀ`, `o_t = S_t q_t`). O(d_k·d_h)
    per token and head, independent of the position; fed a sequence in pieces it equals
    `fusion.gated_delta_rule` (the chunked WY form) up to rounding.

    Constraints: `gated_delta_step_c1`…`c5` as `gated_delta_rule_c1`…`c5` (q, k
    `[B, S, H_k, d_k]`, v `[B, S, H, d_h]`, g and beta `[B, S, H]`, H_k divides H);
    `gated_delta_step_c6` the result has v's type; `gated_delta_step_c7` state names one
    `cache` parameter `[B, H, d_k, d_h]`.

    ```mlir
    %o = fusion.gated_delta_step %q, %k, %v, %g, %beta state [@"layers.5.attn.state"] : (tensor<1x1x2x16xf32>, tensor<1x1x2x16xf32>, tensor<1x1x4x16xf32>, tensor<1x1x4xf32>, tensor<1x1x4xf32>) -> tensor<1x1x4x16xf32>
    ```
  }];
  let arguments = (ins Fusion_FloatTensor:$query, Fusion_FloatTensor:$key,
                       Fusion_FloatTensor:$value, Fusion_FloatTensor:$log_decay,
                       Fusion_FloatTensor:$beta, FlatSymbolRefArrayAttr:$state);
  let results = (outs Fusion_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $log_decay `,` $beta `state` $state attr-dict `:`
    `(` type($query) `,` type($key) `,` type($value) `,` type($log_decay) `,` type($beta) `)`
    `->` type($result)
  }];
}

#endif // FUSION_INFERENCE_OPS_TD
