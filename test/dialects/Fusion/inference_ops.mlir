// RUN: fusion-opt %s | fusion-opt | FileCheck %s
// RUN: fusion-opt %s --mlir-print-op-generic | fusion-opt | FileCheck %s

// The decoding ops round-trip, with their cache parameters.

fusion.parameter @k_cache : tensor<1x2x16x24xf32> {init = "zeros", optimizer = "cache"}
fusion.parameter @v_cache : tensor<1x2x16x8xf32> {init = "zeros", optimizer = "cache"}
fusion.parameter @conv_tail : tensor<1x3x32xf32> {init = "zeros", optimizer = "cache"}
fusion.parameter @gdn_state : tensor<1x4x16x8xf32> {init = "zeros", optimizer = "cache"}

// CHECK-LABEL: func.func @decode
func.func @decode(%q: tensor<1x4x1x24xf32>, %k: tensor<1x2x1x24xf32>, %v: tensor<1x2x1x8xf32>,
                  %pos: tensor<1xi32>, %x: tensor<1x1x32xf32>, %w: tensor<32x4xf32>,
                  %gq: tensor<1x1x2x16xf32>, %gv: tensor<1x1x4x8xf32>, %g: tensor<1x1x4xf32>,
                  %beta: tensor<1x1x4xf32>) -> (tensor<1x4x1x8xf32>, tensor<1x1x32xf32>, tensor<1x1x4x8xf32>) {
  // CHECK: fusion.rope_at %{{.*}} at %{{.*}} {rotary_dims = 8 : i64, theta = 1.000000e+04 : f32} : tensor<1x4x1x24xf32>, tensor<1xi32>
  %qr = fusion.rope_at %q at %pos {rotary_dims = 8 : i64, theta = 1.0e4 : f32} : tensor<1x4x1x24xf32>, tensor<1xi32>
  // CHECK: fusion.kv_cache_attention %{{.*}}, %{{.*}}, %{{.*}} at %{{.*}} state [@k_cache, @v_cache] {scale = 2.500000e-01 : f32, window = 4 : i64} : (tensor<1x4x1x24xf32>, tensor<1x2x1x24xf32>, tensor<1x2x1x8xf32>, tensor<1xi32>) -> tensor<1x4x1x8xf32>
  %o = fusion.kv_cache_attention %qr, %k, %v at %pos state [@k_cache, @v_cache] {scale = 0.25 : f32, window = 4 : i64} : (tensor<1x4x1x24xf32>, tensor<1x2x1x24xf32>, tensor<1x2x1x8xf32>, tensor<1xi32>) -> tensor<1x4x1x8xf32>
  // CHECK: fusion.causal_conv1d_step %{{.*}}, %{{.*}} state [@conv_tail] : tensor<1x1x32xf32>, tensor<32x4xf32>
  %y = fusion.causal_conv1d_step %x, %w state [@conv_tail] : tensor<1x1x32xf32>, tensor<32x4xf32>
  // CHECK: fusion.gated_delta_step %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} state [@gdn_state] : (tensor<1x1x2x16xf32>, tensor<1x1x2x16xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4xf32>, tensor<1x1x4xf32>) -> tensor<1x1x4x8xf32>
  %go = fusion.gated_delta_step %gq, %gq, %gv, %g, %beta state [@gdn_state] : (tensor<1x1x2x16xf32>, tensor<1x1x2x16xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4xf32>, tensor<1x1x4xf32>) -> tensor<1x1x4x8xf32>
  return %o, %y, %go : tensor<1x4x1x8xf32>, tensor<1x1x32xf32>, tensor<1x1x4x8xf32>
}
