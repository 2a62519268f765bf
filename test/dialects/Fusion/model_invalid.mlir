// RUN: fusion-opt %s --split-input-file --verify-diagnostics

// reshape_c1: the element count is kept.
func.func @reshape_c1(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{cannot reshape 4x8 (32 elements) to 4x4 (16 elements)}}
  %y = fusion.reshape %x : (tensor<4x8xf32>) -> tensor<4x4xf32>
  return
}

// -----

// transpose_c1: perm must be a permutation.
func.func @transpose_c1(%x: tensor<2x3x4xf32>) {
  // expected-error @+1 {{perm [0, 0, 1] is not a permutation of the 3 input dimensions}}
  %y = fusion.transpose %x {perm = array<i64: 0, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<2x2x3xf32>
  return
}

// -----

// transpose_c2: the result is the permuted shape.
func.func @transpose_c2(%x: tensor<2x3x4xf32>) {
  // expected-error @+1 {{result shape 2x3x4 does not match the inferred shape 2x4x3}}
  %y = fusion.transpose %x {perm = array<i64: 0, 2, 1>} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  return
}

// -----

// slice_c2: the range stays inside the dimension.
func.func @slice_c2(%x: tensor<2x17xi32>) {
  // expected-error @+1 {{slice [10, 20) is out of range for dimension 1 of size 17}}
  %y = fusion.slice %x {dim = 1 : i64, start = 10 : i64, size = 10 : i64} : (tensor<2x17xi32>) -> tensor<2x10xi32>
  return
}

// -----

// slice_c1: dim is a dimension of the input.
func.func @slice_c1(%x: tensor<2x17xi32>) {
  // expected-error @+1 {{dim 2 is out of range for rank 2}}
  %y = fusion.slice %x {dim = 2 : i64, start = 0 : i64, size = 1 : i64} : (tensor<2x17xi32>) -> tensor<2x17xi32>
  return
}

// -----

// concat_c3: only the concatenated dimension may differ.
func.func @concat_c3(%a: tensor<2x4xf32>, %b: tensor<3x4xf32>) {
  // expected-error @+1 {{input 1 has shape 3x4, input 0 has 2x4: only dimension 1 may differ}}
  %y = fusion.concat %a, %b {dim = 1 : i64} : (tensor<2x4xf32>, tensor<3x4xf32>) -> tensor<2x8xf32>
  return
}

// -----

// concat_c4: the result adds up the concatenated sizes.
func.func @concat_c4(%a: tensor<2x4xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+1 {{result shape 2x4 does not match the inferred shape 2x8}}
  %y = fusion.concat %a, %b {dim = 1 : i64} : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  return
}

// -----

// broadcast_c2: a mapped dimension keeps its size.
func.func @broadcast_c2(%x: tensor<4xf32>) {
  // expected-error @+1 {{input dimension 0 (size 4) maps to result dimension 1 of size 16}}
  %y = fusion.broadcast %x {dims = array<i64: 1>} : (tensor<4xf32>) -> tensor<2x16x4xf32>
  return
}

// -----

// broadcast_c1: one dims entry per input dimension.
func.func @broadcast_c1(%x: tensor<4xf32>) {
  // expected-error @+1 {{expects one entry in dims per input dimension (1), got 2}}
  %y = fusion.broadcast %x {dims = array<i64: 1, 2>} : (tensor<4xf32>) -> tensor<2x16x4xf32>
  return
}

// -----

// sum_c1: reduced dims are increasing and in range.
func.func @sum_c1(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{dims must be strictly increasing and below the rank (2)}}
  %y = fusion.sum %x {dims = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<f32>
  return
}

// -----

// rope_c2: rotary dims are even and fit the head.
func.func @rope_c2(%x: tensor<2x16x4x48xf32>) {
  // expected-error @+1 {{rotary_dims (15) must be even, >= 2 and <= the head dim (48)}}
  %y = fusion.rope %x {rotary_dims = 15 : i64, theta = 10000.0 : f32} : tensor<2x16x4x48xf32>
  return
}

// -----

// rope_c1: positions need a [B, T, ...] layout.
func.func @rope_c1(%x: tensor<16x48xf32>) {
  // expected-error @+1 {{expects a tensor [B, T, ..., d] of rank >= 3, got 16x48}}
  %y = fusion.rope %x {rotary_dims = 16 : i64, theta = 10000.0 : f32} : tensor<16x48xf32>
  return
}

// -----

// rope_c3: theta is positive.
func.func @rope_c3(%x: tensor<2x16x48xf32>) {
  // expected-error @+1 {{expects theta > 0, got 0}}
  %y = fusion.rope %x {rotary_dims = 16 : i64, theta = 0.0 : f32} : tensor<2x16x48xf32>
  return
}

// -----

// attention_c3: the key/value groups divide the query heads.
func.func @attention_c3(%q: tensor<2x6x16x32xf32>, %k: tensor<2x4x16x32xf32>, %v: tensor<2x4x16x32xf32>) {
  // expected-error @+1 {{the number of query heads (6) must be divisible by the number of key/value groups (4)}}
  %o = fusion.attention %q, %k, %v {causal, scale = 1.0 : f32} : (tensor<2x6x16x32xf32>, tensor<2x4x16x32xf32>, tensor<2x4x16x32xf32>) -> tensor<2x6x16x32xf32>
  return
}

// -----

// attention_c2: one batch and sequence length.
func.func @attention_c2(%q: tensor<2x4x16x32xf32>, %k: tensor<2x2x8x32xf32>, %v: tensor<2x2x8x32xf32>) {
  // expected-error @+1 {{batch and sequence sizes differ: q 2x4x16x32, k 2x2x8x32, v 2x2x8x32}}
  %o = fusion.attention %q, %k, %v {causal, scale = 1.0 : f32} : (tensor<2x4x16x32xf32>, tensor<2x2x8x32xf32>, tensor<2x2x8x32xf32>) -> tensor<2x4x16x32xf32>
  return
}

// -----

// attention_c4: q and k share the head dim (d_qk).
func.func @attention_c4(%q: tensor<2x4x16x48xf32>, %k: tensor<2x2x16x32xf32>, %v: tensor<2x2x16x32xf32>) {
  // expected-error @+1 {{q head dim (48) differs from k head dim (32)}}
  %o = fusion.attention %q, %k, %v {causal, scale = 1.0 : f32} : (tensor<2x4x16x48xf32>, tensor<2x2x16x32xf32>, tensor<2x2x16x32xf32>) -> tensor<2x4x16x32xf32>
  return
}

// -----

// attention_c5: the output has v's head dim.
func.func @attention_c5(%q: tensor<2x4x16x48xf32>, %k: tensor<2x2x16x48xf32>, %v: tensor<2x2x16x32xf32>) {
  // expected-error @+1 {{result shape 2x4x16x48 does not match the inferred shape 2x4x16x32}}
  %o = fusion.attention %q, %k, %v {causal, scale = 1.0 : f32} : (tensor<2x4x16x48xf32>, tensor<2x2x16x48xf32>, tensor<2x2x16x32xf32>) -> tensor<2x4x16x48xf32>
  return
}

// -----

// attention_c6: a sliding window only makes sense for causal attention.
func.func @attention_c6(%q: tensor<2x4x16x32xf32>, %k: tensor<2x2x16x32xf32>, %v: tensor<2x2x16x32xf32>) {
  // expected-error @+1 {{a sliding window (8) needs causal attention}}
  %o = fusion.attention %q, %k, %v {window = 8 : i64, scale = 1.0 : f32} : (tensor<2x4x16x32xf32>, tensor<2x2x16x32xf32>, tensor<2x2x16x32xf32>) -> tensor<2x4x16x32xf32>
  return
}

// -----

// attention_c7: the score scale is positive.
func.func @attention_c7(%q: tensor<2x4x16x32xf32>, %k: tensor<2x2x16x32xf32>, %v: tensor<2x2x16x32xf32>) {
  // expected-error @+1 {{expects scale > 0, got -1}}
  %o = fusion.attention %q, %k, %v {causal, scale = -1.0 : f32} : (tensor<2x4x16x32xf32>, tensor<2x2x16x32xf32>, tensor<2x2x16x32xf32>) -> tensor<2x4x16x32xf32>
  return
}

// -----

// causal_conv1d_c2: one filter row per channel.
func.func @causal_conv1d_c2(%x: tensor<2x16x64xf32>, %w: tensor<32x4xf32>) {
  // expected-error @+1 {{w has 32 channels, x has 64}}
  %y = fusion.causal_conv1d %x, %w : (tensor<2x16x64xf32>, tensor<32x4xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

// l2_norm_c1: eps keeps the norm away from zero.
func.func @l2_norm_c1(%x: tensor<2x16x32xf32>) {
  // expected-error @+1 {{expects eps > 0, got 0}}
  %y = fusion.l2_norm %x {eps = 0.0 : f32, scale = 1.0 : f32} : tensor<2x16x32xf32>
  return
}

// -----

// gated_delta_rule_c4: key heads divide value heads.
func.func @gated_delta_rule_c4(%q: tensor<2x16x3x32xf32>, %v: tensor<2x16x4x16xf32>, %g: tensor<2x16x4xf32>) {
  // expected-error @+1 {{the number of key heads (3) must divide the number of value heads (4)}}
  %o = fusion.gated_delta_rule %q, %q, %v, %g, %g {chunk_size = 64 : i64} : (tensor<2x16x3x32xf32>, tensor<2x16x3x32xf32>, tensor<2x16x4x16xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>) -> tensor<2x16x4x16xf32>
  return
}

// -----

// gated_delta_rule_c5: gates are per value head and token.
func.func @gated_delta_rule_c5(%q: tensor<2x16x2x32xf32>, %v: tensor<2x16x4x16xf32>, %g: tensor<2x16x2xf32>) {
  // expected-error @+1 {{g (2x16x2) and beta (2x16x2) must be [B, T, H] = 2x16x4}}
  %o = fusion.gated_delta_rule %q, %q, %v, %g, %g {chunk_size = 64 : i64} : (tensor<2x16x2x32xf32>, tensor<2x16x2x32xf32>, tensor<2x16x4x16xf32>, tensor<2x16x2xf32>, tensor<2x16x2xf32>) -> tensor<2x16x4x16xf32>
  return
}

// -----

// gated_delta_rule_c7: chunk sizes the kernels support.
func.func @gated_delta_rule_c7(%q: tensor<2x16x2x32xf32>, %v: tensor<2x16x4x16xf32>, %g: tensor<2x16x4xf32>) {
  // expected-error @+1 {{chunk_size must be 16, 32, 64 or 128, got 48}}
  %o = fusion.gated_delta_rule %q, %q, %v, %g, %g {chunk_size = 48 : i64} : (tensor<2x16x2x32xf32>, tensor<2x16x2x32xf32>, tensor<2x16x4x16xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>) -> tensor<2x16x4x16xf32>
  return
}

// -----

// gated_delta_rule_c3: q and k have one shape.
func.func @gated_delta_rule_c3(%q: tensor<2x16x2x32xf32>, %k: tensor<2x16x2x16xf32>, %v: tensor<2x16x4x16xf32>, %g: tensor<2x16x4xf32>) {
  // expected-error @+1 {{q (2x16x2x32) and k (2x16x2x16) must have one shape}}
  %o = fusion.gated_delta_rule %q, %k, %v, %g, %g {chunk_size = 64 : i64} : (tensor<2x16x2x32xf32>, tensor<2x16x2x16xf32>, tensor<2x16x4x16xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>) -> tensor<2x16x4x16xf32>
  return
}

// -----

// moe_route_c2: expert groups divide the experts.
func.func @moe_route_c2(%l: tensor<4x6xf32>, %b: tensor<6xf32>) {
  // expected-error @+1 {{n_groups (4) must divide the number of experts (6)}}
  %w, %i, %s = fusion.moe_route %l, %b {top_k = 2 : i64, n_groups = 4 : i64, n_limited_groups = 1 : i64, group_topk = 1 : i64, route_scale = 1.0 : f32} : (tensor<4x6xf32>, tensor<6xf32>) -> (tensor<4x2xf32>, tensor<4x2xi32>, tensor<4x6xf32>)
  return
}

// -----

// moe_route_c3: group_topk fits a group.
func.func @moe_route_c3(%l: tensor<4x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{group_topk (5) must be in [1, 4] (experts per group)}}
  %w, %i, %s = fusion.moe_route %l, %b {top_k = 2 : i64, n_groups = 2 : i64, n_limited_groups = 1 : i64, group_topk = 5 : i64, route_scale = 1.0 : f32} : (tensor<4x8xf32>, tensor<8xf32>) -> (tensor<4x2xf32>, tensor<4x2xi32>, tensor<4x8xf32>)
  return
}

// -----

// moe_route_c4: at most all groups are kept.
func.func @moe_route_c4(%l: tensor<4x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{n_limited_groups (3) must be in [1, 2] (n_groups)}}
  %w, %i, %s = fusion.moe_route %l, %b {top_k = 2 : i64, n_groups = 2 : i64, n_limited_groups = 3 : i64, group_topk = 1 : i64, route_scale = 1.0 : f32} : (tensor<4x8xf32>, tensor<8xf32>) -> (tensor<4x2xf32>, tensor<4x2xi32>, tensor<4x8xf32>)
  return
}

// -----

// moe_route_c5: top_k fits the experts of the kept groups.
func.func @moe_route_c5(%l: tensor<4x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{top_k (6) must be in [1, 4] (n_limited_groups x experts per group)}}
  %w, %i, %s = fusion.moe_route %l, %b {top_k = 6 : i64, n_groups = 2 : i64, n_limited_groups = 1 : i64, group_topk = 2 : i64, route_scale = 1.0 : f32} : (tensor<4x8xf32>, tensor<8xf32>) -> (tensor<4x6xf32>, tensor<4x6xi32>, tensor<4x8xf32>)
  return
}

// -----

// moe_route_c6: results are [N, K], [N, K], [N, E].
func.func @moe_route_c6(%l: tensor<4x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{result shape 4x3 does not match the inferred shape 4x2}}
  %w, %i, %s = fusion.moe_route %l, %b {top_k = 2 : i64, n_groups = 2 : i64, n_limited_groups = 1 : i64, group_topk = 2 : i64, route_scale = 1.0 : f32} : (tensor<4x8xf32>, tensor<8xf32>) -> (tensor<4x3xf32>, tensor<4x2xi32>, tensor<4x8xf32>)
  return
}

// -----

// moe_route_c1: the bias has one entry per expert.
func.func @moe_route_c1(%l: tensor<4x8xf32>, %b: tensor<6xf32>) {
  // expected-error @+1 {{expects logits [N, E] and bias [E], got 4x8 and 6}}
  %w, %i, %s = fusion.moe_route %l, %b {top_k = 2 : i64, n_groups = 2 : i64, n_limited_groups = 1 : i64, group_topk = 2 : i64, route_scale = 1.0 : f32} : (tensor<4x8xf32>, tensor<6xf32>) -> (tensor<4x2xf32>, tensor<4x2xi32>, tensor<4x8xf32>)
  return
}

// -----

// moe_route_c7: a positive route scale.
func.func @moe_route_c7(%l: tensor<4x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{expects route_scale > 0, got 0}}
  %w, %i, %s = fusion.moe_route %l, %b {top_k = 2 : i64, n_groups = 2 : i64, n_limited_groups = 1 : i64, group_topk = 2 : i64, route_scale = 0.0 : f32} : (tensor<4x8xf32>, tensor<8xf32>) -> (tensor<4x2xf32>, tensor<4x2xi32>, tensor<4x8xf32>)
  return
}

// -----

// moe_dispatch_c2: N·K dispatched rows.
func.func @moe_dispatch_c2(%x: tensor<32x64xf32>, %i: tensor<32x2xi32>) {
  // expected-error @+1 {{result shape 32x64 does not match the inferred shape 64x64}}
  %xs, %n, %p = fusion.moe_dispatch %x, %i {num_experts = 8 : i64} : (tensor<32x64xf32>, tensor<32x2xi32>) -> (tensor<32x64xf32>, tensor<8xi32>, tensor<64xi32>)
  return
}

// -----

// moe_dispatch_c1: one selection row per token.
func.func @moe_dispatch_c1(%x: tensor<32x64xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{expects x [N, D] and indices [N, K], got 32x64 and 16x2}}
  %xs, %n, %p = fusion.moe_dispatch %x, %i {num_experts = 8 : i64} : (tensor<32x64xf32>, tensor<16x2xi32>) -> (tensor<64x64xf32>, tensor<8xi32>, tensor<64xi32>)
  return
}

// -----

// grouped_matmul_c2: the expert weights take x's features.
func.func @grouped_matmul_c2(%x: tensor<64x64xf32>, %w: tensor<8x32x48xf32>, %n: tensor<8xi32>) {
  // expected-error @+1 {{weight D_in (48) differs from x's (64)}}
  %y = fusion.grouped_matmul %x, %w, %n : (tensor<64x64xf32>, tensor<8x32x48xf32>, tensor<8xi32>) -> tensor<64x32xf32>
  return
}

// -----

// grouped_matmul_c1: one group size per expert.
func.func @grouped_matmul_c1(%x: tensor<64x64xf32>, %w: tensor<8x32x64xf32>, %n: tensor<4xi32>) {
  // expected-error @+1 {{expects x [M, D_in], weight [E, D_out, D_in], group_sizes [E], got 64x64, 8x32x64, 4}}
  %y = fusion.grouped_matmul %x, %w, %n : (tensor<64x64xf32>, tensor<8x32x64xf32>, tensor<4xi32>) -> tensor<64x32xf32>
  return
}

// -----

// moe_combine_c1: N·K expert rows for N tokens with K weights each.
func.func @moe_combine_c1(%ys: tensor<60x64xf32>, %w: tensor<32x2xf32>, %p: tensor<60xi32>) {
  // expected-error @+1 {{expects ys [N*K, D], weights [N, K], permutation [N*K], got 60x64, 32x2, 60}}
  %y = fusion.moe_combine %ys, %w, %p : (tensor<60x64xf32>, tensor<32x2xf32>, tensor<60xi32>) -> tensor<32x64xf32>
  return
}

// -----

// moe_balance_loss_c2: whole rows of seq_len tokens.
func.func @moe_balance_loss_c2(%s: tensor<30x8xf32>, %i: tensor<30x2xi32>) {
  // expected-error @+1 {{seq_len (16) must divide the token count (30)}}
  %l = fusion.moe_balance_loss %s, %i {seq_len = 16 : i64} : (tensor<30x8xf32>, tensor<30x2xi32>) -> tensor<f32>
  return
}

// -----

// cross_entropy_c1: one target per logits row.
func.func @cross_entropy_c1(%z: tensor<32x512xf32>, %y: tensor<16xi32>) {
  // expected-error @+1 {{expects logits [N, V] and targets [N], got 32x512 and 16}}
  %l = fusion.cross_entropy %z, %y : (tensor<32x512xf32>, tensor<16xi32>) -> tensor<32xf32>
  return
}

// -----

// softcap_c1: a positive cap (no softcap op at all when capping is off).
func.func @softcap_c1(%z: tensor<4x8xf32>) {
  // expected-error @+1 {{expects cap > 0, got 0}}
  %y = fusion.softcap %z {cap = 0.0 : f32} : tensor<4x8xf32>
  return
}

// -----

// parameter_c1: a known init rule.
// expected-error @+1 {{unknown init 'xavier'; rules: zeros, ones, normal, trunc_normal, uniform, log_uniform, dt_bias}}
fusion.parameter @w : tensor<4x4xf32> {init = "xavier", optimizer = "normuon"}

// -----

// parameter_c1: the rule's attributes are present.
// expected-error @+1 {{init 'trunc_normal' needs 'std'}}
fusion.parameter @w : tensor<4x4xf32> {init = "trunc_normal", optimizer = "normuon"}

// -----

// parameter_c2: logarithmic rules need a positive range.
// expected-error @+1 {{init 'log_uniform' needs low > 0, got 0}}
fusion.parameter @a : tensor<4xf32> {init = "log_uniform", low = 0.0 : f64, high = 16.0 : f64, optimizer = "adamw"}

// -----

// parameter_c3: NorMuon orthogonalises matrices only.
// expected-error @+1 {{normuon needs a matrix (rank >= 2), got 4}}
fusion.parameter @g : tensor<4xf32> {init = "ones", optimizer = "normuon"}

// -----

// parameter_c4: master weights are fp32.
// expected-error @+1 {{parameters are stored in f32, got 'bf16'}}
fusion.parameter @w : tensor<4x4xbf16> {init = "zeros", optimizer = "adamw"}

// -----

// load_c1: a load names a parameter.
func.func @load_c1() {
  // expected-error @+1 {{'missing' does not name a fusion.parameter}}
  %w = fusion.load @missing : tensor<4xf32>
  return
}

// -----

// load_c2: with the parameter's type.
fusion.parameter @g : tensor<4xf32> {init = "ones", optimizer = "adamw"}
func.func @load_c2() {
  // expected-error @+1 {{result type 'tensor<8xf32>' differs from parameter 'g' of type 'tensor<4xf32>'}}
  %w = fusion.load @g : tensor<8xf32>
  return
}
