// RUN: fusion-opt %s --split-input-file --verify-diagnostics

// rope_at_c1: rank >= 3.
func.func @rope_at_c1(%x: tensor<1x24xf32>, %p: tensor<1xi32>) {
  // expected-error @+1 {{expects a tensor [B, T, ..., d] of rank >= 3, got 1x24}}
  %y = fusion.rope_at %x at %p {rotary_dims = 8 : i64, theta = 1.0e4 : f32} : tensor<1x24xf32>, tensor<1xi32>
  return
}

// -----

// rope_at_c2: rotary_dims even and <= d.
func.func @rope_at_c2(%x: tensor<1x1x2x24xf32>, %p: tensor<1xi32>) {
  // expected-error @+1 {{rotary_dims (7) must be even, >= 2 and <= the head dim (24)}}
  %y = fusion.rope_at %x at %p {rotary_dims = 7 : i64, theta = 1.0e4 : f32} : tensor<1x1x2x24xf32>, tensor<1xi32>
  return
}

// -----

// rope_at_c3: theta > 0.
func.func @rope_at_c3(%x: tensor<1x1x2x24xf32>, %p: tensor<1xi32>) {
  // expected-error @+1 {{expects theta > 0, got 0}}
  %y = fusion.rope_at %x at %p {rotary_dims = 8 : i64, theta = 0.0 : f32} : tensor<1x1x2x24xf32>, tensor<1xi32>
  return
}

// -----

// rope_at_c4: one position.
func.func @rope_at_c4(%x: tensor<1x1x2x24xf32>, %p: tensor<2xi32>) {
  // expected-error @+1 {{position must be tensor<1xi32>, got 'tensor<2xi32>'}}
  %y = fusion.rope_at %x at %p {rotary_dims = 8 : i64, theta = 1.0e4 : f32} : tensor<1x1x2x24xf32>, tensor<2xi32>
  return
}

// -----

// kv_cache_attention_c1: one batch and one number of new tokens.
func.func @kv_cache_attention_c1(%q: tensor<1x4x2x24xf32>, %k: tensor<1x2x1x24xf32>, %v: tensor<1x2x1x8xf32>, %p: tensor<1xi32>) {
  // expected-error @+1 {{batch and new-token sizes differ: q 1x4x2x24, k 1x2x1x24, v 1x2x1x8}}
  %o = fusion.kv_cache_attention %q, %k, %v at %p state [@k, @v] {scale = 0.25 : f32, window = 0 : i64} : (tensor<1x4x2x24xf32>, tensor<1x2x1x24xf32>, tensor<1x2x1x8xf32>, tensor<1xi32>) -> tensor<1x4x2x8xf32>
  return
}

// -----

// kv_cache_attention_c2: G divides H.
func.func @kv_cache_attention_c2(%q: tensor<1x4x1x24xf32>, %k: tensor<1x3x1x24xf32>, %v: tensor<1x3x1x8xf32>, %p: tensor<1xi32>) {
  // expected-error @+1 {{k and v must have one number of groups G dividing the 4 query heads}}
  %o = fusion.kv_cache_attention %q, %k, %v at %p state [@k, @v] {scale = 0.25 : f32, window = 0 : i64} : (tensor<1x4x1x24xf32>, tensor<1x3x1x24xf32>, tensor<1x3x1x8xf32>, tensor<1xi32>) -> tensor<1x4x1x8xf32>
  return
}

// -----

// kv_cache_attention_c3: the result is [B, H, S, d_v].
func.func @kv_cache_attention_c3(%q: tensor<1x4x1x24xf32>, %k: tensor<1x2x1x24xf32>, %v: tensor<1x2x1x8xf32>, %p: tensor<1xi32>) {
  // expected-error @+1 {{result must be 1x4x1x8 of q's element type, got 'tensor<1x4x1x24xf32>'}}
  %o = fusion.kv_cache_attention %q, %k, %v at %p state [@k, @v] {scale = 0.25 : f32, window = 0 : i64} : (tensor<1x4x1x24xf32>, tensor<1x2x1x24xf32>, tensor<1x2x1x8xf32>, tensor<1xi32>) -> tensor<1x4x1x24xf32>
  return
}

// -----

// kv_cache_attention_c5: scale > 0.
func.func @kv_cache_attention_c5(%q: tensor<1x4x1x24xf32>, %k: tensor<1x2x1x24xf32>, %v: tensor<1x2x1x8xf32>, %p: tensor<1xi32>) {
  // expected-error @+1 {{expects scale > 0, got 0}}
  %o = fusion.kv_cache_attention %q, %k, %v at %p state [@k, @v] {scale = 0.0 : f32, window = 0 : i64} : (tensor<1x4x1x24xf32>, tensor<1x2x1x24xf32>, tensor<1x2x1x8xf32>, tensor<1xi32>) -> tensor<1x4x1x8xf32>
  return
}

// -----

fusion.parameter @k : tensor<1x2x16x24xf32> {init = "zeros", optimizer = "cache"}
fusion.parameter @v : tensor<1x2x8x8xf32> {init = "zeros", optimizer = "cache"}

// kv_cache_attention_c6: both caches hold the same positions.
func.func @kv_cache_attention_c6(%q: tensor<1x4x1x24xf32>, %k: tensor<1x2x1x24xf32>, %v: tensor<1x2x1x8xf32>, %p: tensor<1xi32>) {
  // expected-error @+1 {{state V @v has shape 1x2x8x8, expected 1x2x16x8}}
  %o = fusion.kv_cache_attention %q, %k, %v at %p state [@k, @v] {scale = 0.25 : f32, window = 0 : i64} : (tensor<1x4x1x24xf32>, tensor<1x2x1x24xf32>, tensor<1x2x1x8xf32>, tensor<1xi32>) -> tensor<1x4x1x8xf32>
  return
}

// -----

fusion.parameter @k : tensor<1x2x16x24xf32> {init = "zeros", optimizer = "state"}
fusion.parameter @v : tensor<1x2x16x8xf32> {init = "zeros", optimizer = "cache"}

// kv_cache_attention_c6: caches are `cache` parameters (zeroed per generation, not saved).
func.func @kv_cache_attention_c6_role(%q: tensor<1x4x1x24xf32>, %k: tensor<1x2x1x24xf32>, %v: tensor<1x2x1x8xf32>, %p: tensor<1xi32>) {
  // expected-error @+1 {{state K @k must be a 'cache' parameter, got optimizer 'state'}}
  %o = fusion.kv_cache_attention %q, %k, %v at %p state [@k, @v] {scale = 0.25 : f32, window = 0 : i64} : (tensor<1x4x1x24xf32>, tensor<1x2x1x24xf32>, tensor<1x2x1x8xf32>, tensor<1xi32>) -> tensor<1x4x1x8xf32>
  return
}

// -----

// causal_conv1d_step_c1: K >= 2.
func.func @causal_conv1d_step_c1(%x: tensor<1x1x32xf32>, %w: tensor<32x1xf32>) {
  // expected-error @+1 {{needs K >= 2 taps (a K = 1 convolution keeps no state), got 1}}
  %y = fusion.causal_conv1d_step %x, %w state [@t] : tensor<1x1x32xf32>, tensor<32x1xf32>
  return
}

// -----

// causal_conv1d_step_c1: one weight row per channel.
func.func @causal_conv1d_step_c1_channels(%x: tensor<1x1x32xf32>, %w: tensor<16x4xf32>) {
  // expected-error @+1 {{w has 16 channels, x has 32}}
  %y = fusion.causal_conv1d_step %x, %w state [@t] : tensor<1x1x32xf32>, tensor<16x4xf32>
  return
}

// -----

fusion.parameter @t : tensor<1x4x32xf32> {init = "zeros", optimizer = "cache"}

// causal_conv1d_step_c3: the tail holds K - 1 inputs.
func.func @causal_conv1d_step_c3(%x: tensor<1x1x32xf32>, %w: tensor<32x4xf32>) {
  // expected-error @+1 {{state tail @t has shape 1x4x32, expected 1x3x32}}
  %y = fusion.causal_conv1d_step %x, %w state [@t] : tensor<1x1x32xf32>, tensor<32x4xf32>
  return
}

// -----

// gated_delta_step_c4: key heads divide value heads.
func.func @gated_delta_step_c4(%q: tensor<1x1x3x16xf32>, %v: tensor<1x1x4x8xf32>, %g: tensor<1x1x4xf32>) {
  // expected-error @+1 {{the number of key heads (3) must divide the number of value heads (4)}}
  %o = fusion.gated_delta_step %q, %q, %v, %g, %g state [@s] : (tensor<1x1x3x16xf32>, tensor<1x1x3x16xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4xf32>, tensor<1x1x4xf32>) -> tensor<1x1x4x8xf32>
  return
}

// -----

// gated_delta_step_c6: the result has v's type.
func.func @gated_delta_step_c6(%q: tensor<1x1x2x16xf32>, %v: tensor<1x1x4x8xf32>, %g: tensor<1x1x4xf32>) {
  // expected-error @+1 {{result type 'tensor<1x1x4x16xf32>' must equal v's type 'tensor<1x1x4x8xf32>'}}
  %o = fusion.gated_delta_step %q, %q, %v, %g, %g state [@s] : (tensor<1x1x2x16xf32>, tensor<1x1x2x16xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4xf32>, tensor<1x1x4xf32>) -> tensor<1x1x4x16xf32>
  return
}

// -----

fusion.parameter @s : tensor<1x4x8x16xf32> {init = "zeros", optimizer = "cache"}

// gated_delta_step_c7: the state is Hs = S^T, [B, H, d_k, d_h].
func.func @gated_delta_step_c7(%q: tensor<1x1x2x16xf32>, %v: tensor<1x1x4x8xf32>, %g: tensor<1x1x4xf32>) {
  // expected-error @+1 {{state Hs @s has shape 1x4x8x16, expected 1x4x16x8}}
  %o = fusion.gated_delta_step %q, %q, %v, %g, %g state [@s] : (tensor<1x1x2x16xf32>, tensor<1x1x2x16xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4xf32>, tensor<1x1x4xf32>) -> tensor<1x1x4x8xf32>
  return
}

// -----

// parameter_c3: cache parameters start at zero.
// expected-error @+1 {{cache parameters start at zero (init 'zeros'), got init 'ones'}}
fusion.parameter @c : tensor<8xf32> {init = "ones", optimizer = "cache"}
