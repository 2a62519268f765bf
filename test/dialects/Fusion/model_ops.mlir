// RUN: fusion-opt %s | fusion-opt | FileCheck %s
// RUN: fusion-opt %s --mlir-print-op-generic | fusion-opt | FileCheck %s

// Round trip of the model-block ops: each split of a block's math as the builders emit it.

// CHECK: fusion.parameter @layers.0.attn.wo.weight : tensor<64x64xf32> {init = "trunc_normal", optimizer = "normuon", std = 1.250000e-02 : f64, weight_decay}
// CHECK: fusion.parameter @layers.0.attn.A_log : tensor<4xf32> {high = 1.600000e+01 : f64, init = "log_uniform", low = 1.000000e+00 : f64, optimizer = "adamw"}
// CHECK: fusion.parameter @layers.1.ffn.router.bias : tensor<8xf32> {init = "zeros", optimizer = "none"}
fusion.parameter @"layers.0.attn.wo.weight" : tensor<64x64xf32> {init = "trunc_normal", std = 0.0125 : f64, optimizer = "normuon", weight_decay}
fusion.parameter @"layers.0.attn.A_log" : tensor<4xf32> {init = "log_uniform", low = 1.0 : f64, high = 16.0 : f64, optimizer = "adamw"}
fusion.parameter @"layers.1.ffn.router.bias" : tensor<8xf32> {init = "zeros", optimizer = "none"}

// CHECK-LABEL: func.func @load
//       CHECK:   fusion.load @layers.0.attn.wo.weight : tensor<64x64xf32>
func.func @load() -> tensor<64x64xf32> {
  %w = fusion.load @"layers.0.attn.wo.weight" : tensor<64x64xf32>
  return %w : tensor<64x64xf32>
}

// CHECK-LABEL: func.func @layout
//       CHECK:   %[[R:.+]] = fusion.reshape %{{.+}} : (tensor<2x16x64xf32>) -> tensor<2x16x4x16xf32>
//       CHECK:   %[[T:.+]] = fusion.transpose %[[R]] {perm = array<i64: 0, 2, 1, 3>} : (tensor<2x16x4x16xf32>) -> tensor<2x4x16x16xf32>
//       CHECK:   %[[S:.+]] = fusion.slice %[[T]] {dim = 3 : i64, size = 8 : i64, start = 8 : i64} : (tensor<2x4x16x16xf32>) -> tensor<2x4x16x8xf32>
//       CHECK:   fusion.concat %[[T]], %[[S]] {dim = 3 : i64} : (tensor<2x4x16x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x24xf32>
//       CHECK:   fusion.broadcast %{{.+}} {dims = array<i64: 1>} : (tensor<4xf32>) -> tensor<2x4x16x24xf32>
//       CHECK:   fusion.cast %{{.+}} : (tensor<2x4x16x24xf32>) -> tensor<2x4x16x24xbf16>
//       CHECK:   fusion.sum %{{.+}} {dims = array<i64: 0, 2>} : (tensor<2x4x16x24xf32>) -> tensor<4x24xf32>
func.func @layout(%x: tensor<2x16x64xf32>, %b: tensor<4xf32>) -> (tensor<2x4x16x24xbf16>, tensor<4x24xf32>) {
  %r = fusion.reshape %x : (tensor<2x16x64xf32>) -> tensor<2x16x4x16xf32>
  %t = fusion.transpose %r {perm = array<i64: 0, 2, 1, 3>} : (tensor<2x16x4x16xf32>) -> tensor<2x4x16x16xf32>
  %s = fusion.slice %t {dim = 3 : i64, start = 8 : i64, size = 8 : i64} : (tensor<2x4x16x16xf32>) -> tensor<2x4x16x8xf32>
  %c = fusion.concat %t, %s {dim = 3 : i64} : (tensor<2x4x16x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x24xf32>
  %bb = fusion.broadcast %b {dims = array<i64: 1>} : (tensor<4xf32>) -> tensor<2x4x16x24xf32>
  %sum = fusion.add %c, %bb : tensor<2x4x16x24xf32>
  %h = fusion.cast %sum : (tensor<2x4x16x24xf32>) -> tensor<2x4x16x24xbf16>
  %red = fusion.sum %sum {dims = array<i64: 0, 2>} : (tensor<2x4x16x24xf32>) -> tensor<4x24xf32>
  return %h, %red : tensor<2x4x16x24xbf16>, tensor<4x24xf32>
}

// MLA attention core: decoupled RoPE on the last 16 dims, GQA (4 heads, 2 groups), d_qk 48
// and d_v 32, a sliding window.
// CHECK-LABEL: func.func @mla_core
//       CHECK:   fusion.rope %{{.+}} {rotary_dims = 16 : i64, theta = 1.000000e+04 : f32} : tensor<2x16x4x48xbf16>
//       CHECK:   fusion.attention %{{.+}}, %{{.+}}, %{{.+}} {causal, scale = 0.144337565 : f32, window = 8 : i64} : (tensor<2x4x16x48xbf16>, tensor<2x2x16x48xbf16>, tensor<2x2x16x32xbf16>) -> tensor<2x4x16x32xbf16>
func.func @mla_core(%q: tensor<2x16x4x48xbf16>, %k: tensor<2x2x16x48xbf16>, %v: tensor<2x2x16x32xbf16>) -> tensor<2x4x16x32xbf16> {
  %qr = fusion.rope %q {rotary_dims = 16 : i64, theta = 10000.0 : f32} : tensor<2x16x4x48xbf16>
  %qt = fusion.transpose %qr {perm = array<i64: 0, 2, 1, 3>} : (tensor<2x16x4x48xbf16>) -> tensor<2x4x16x48xbf16>
  %o = fusion.attention %qt, %k, %v {causal, window = 8 : i64, scale = 0.144337565 : f32} : (tensor<2x4x16x48xbf16>, tensor<2x2x16x48xbf16>, tensor<2x2x16x32xbf16>) -> tensor<2x4x16x32xbf16>
  return %o : tensor<2x4x16x32xbf16>
}

// Gated DeltaNet core: conv, L2 norm, gates, the chunked recurrence.
// CHECK-LABEL: func.func @gdn_core
//       CHECK:   fusion.causal_conv1d %{{.+}}, %{{.+}} : (tensor<2x16x64xf32>, tensor<64x4xf32>) -> tensor<2x16x64xf32>
//       CHECK:   fusion.l2_norm %{{.+}} {eps = 9.99999997E-7 : f32, scale = 0.176776692 : f32} : tensor<2x16x2x32xf32>
//       CHECK:   fusion.softplus
//       CHECK:   fusion.sigmoid
//       CHECK:   fusion.gated_delta_rule %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} {chunk_size = 64 : i64} : (tensor<2x16x2x32xf32>, tensor<2x16x2x32xf32>, tensor<2x16x4x16xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>) -> tensor<2x16x4x16xf32>
func.func @gdn_core(%x: tensor<2x16x64xf32>, %w: tensor<64x4xf32>, %v: tensor<2x16x4x16xf32>, %a: tensor<2x16x4xf32>, %b: tensor<2x16x4xf32>) -> tensor<2x16x4x16xf32> {
  %c = fusion.causal_conv1d %x, %w : (tensor<2x16x64xf32>, tensor<64x4xf32>) -> tensor<2x16x64xf32>
  %s = fusion.silu %c : tensor<2x16x64xf32>
  %q = fusion.reshape %s : (tensor<2x16x64xf32>) -> tensor<2x16x2x32xf32>
  %qn = fusion.l2_norm %q {eps = 1.0e-6 : f32, scale = 0.176776692 : f32} : tensor<2x16x2x32xf32>
  %sp = fusion.softplus %a : tensor<2x16x4xf32>
  %g = fusion.neg %sp : tensor<2x16x4xf32>
  %beta = fusion.sigmoid %b : tensor<2x16x4xf32>
  %o = fusion.gated_delta_rule %qn, %qn, %v, %g, %beta {chunk_size = 64 : i64} : (tensor<2x16x2x32xf32>, tensor<2x16x2x32xf32>, tensor<2x16x4x16xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>) -> tensor<2x16x4x16xf32>
  return %o : tensor<2x16x4x16xf32>
}

// DeepSeekMoE routed path: route, dispatch, grouped SwiGLU experts, combine, balance loss.
// CHECK-LABEL: func.func @moe
//       CHECK:   %[[W:.+]], %[[IDX:.+]], %[[S:.+]] = fusion.moe_route %{{.+}}, %{{.+}} {group_topk = 2 : i64, n_groups = 2 : i64, n_limited_groups = 1 : i64, route_scale = 1.000000e+00 : f32, top_k = 2 : i64}
//       CHECK:   %[[XS:.+]], %[[SIZES:.+]], %[[PERM:.+]] = fusion.moe_dispatch %{{.+}}, %[[IDX]] {num_experts = 8 : i64}
//       CHECK:   fusion.grouped_matmul %[[XS]], %{{.+}}, %[[SIZES]] : (tensor<64x64xbf16>, tensor<8x32x64xbf16>, tensor<8xi32>) -> tensor<64x32xbf16>
//       CHECK:   fusion.swiglu
//       CHECK:   fusion.moe_combine %{{.+}}, %[[W]], %[[PERM]] : (tensor<64x64xbf16>, tensor<32x2xf32>, tensor<64xi32>) -> tensor<32x64xbf16>
//       CHECK:   fusion.moe_balance_loss %[[S]], %[[IDX]] {seq_len = 16 : i64} : (tensor<32x8xf32>, tensor<32x2xi32>) -> tensor<f32>
func.func @moe(%x: tensor<32x64xbf16>, %logits: tensor<32x8xf32>, %bias: tensor<8xf32>, %w1: tensor<8x32x64xbf16>, %w3: tensor<8x32x64xbf16>, %w2: tensor<8x64x32xbf16>) -> (tensor<32x64xbf16>, tensor<f32>) {
  %w, %idx, %s = fusion.moe_route %logits, %bias {top_k = 2 : i64, n_groups = 2 : i64, n_limited_groups = 1 : i64, group_topk = 2 : i64, route_scale = 1.0 : f32} : (tensor<32x8xf32>, tensor<8xf32>) -> (tensor<32x2xf32>, tensor<32x2xi32>, tensor<32x8xf32>)
  %xs, %sizes, %perm = fusion.moe_dispatch %x, %idx {num_experts = 8 : i64} : (tensor<32x64xbf16>, tensor<32x2xi32>) -> (tensor<64x64xbf16>, tensor<8xi32>, tensor<64xi32>)
  %a = fusion.grouped_matmul %xs, %w1, %sizes : (tensor<64x64xbf16>, tensor<8x32x64xbf16>, tensor<8xi32>) -> tensor<64x32xbf16>
  %c = fusion.grouped_matmul %xs, %w3, %sizes : (tensor<64x64xbf16>, tensor<8x32x64xbf16>, tensor<8xi32>) -> tensor<64x32xbf16>
  %h = fusion.swiglu %a, %c : tensor<64x32xbf16>
  %ys = fusion.grouped_matmul %h, %w2, %sizes : (tensor<64x32xbf16>, tensor<8x64x32xbf16>, tensor<8xi32>) -> tensor<64x64xbf16>
  %y = fusion.moe_combine %ys, %w, %perm : (tensor<64x64xbf16>, tensor<32x2xf32>, tensor<64xi32>) -> tensor<32x64xbf16>
  %l = fusion.moe_balance_loss %s, %idx {seq_len = 16 : i64} : (tensor<32x8xf32>, tensor<32x2xi32>) -> tensor<f32>
  return %y, %l : tensor<32x64xbf16>, tensor<f32>
}

// Softcapped cross-entropy, summed and scaled by 1/N_0.
// CHECK-LABEL: func.func @loss
//       CHECK:   fusion.softcap %{{.+}} {cap = 1.500000e+01 : f32} : tensor<32x512xf32>
//       CHECK:   fusion.cross_entropy %{{.+}}, %{{.+}} : (tensor<32x512xf32>, tensor<32xi32>) -> tensor<32xf32>
//       CHECK:   fusion.scale %{{.+}} {factor = 3.125000e-02 : f32} : tensor<f32>
func.func @loss(%l: tensor<32x512xf32>, %y: tensor<32xi32>) -> tensor<f32> {
  %z = fusion.softcap %l {cap = 15.0 : f32} : tensor<32x512xf32>
  %ce = fusion.cross_entropy %z, %y : (tensor<32x512xf32>, tensor<32xi32>) -> tensor<32xf32>
  %sum = fusion.sum %ce {dims = array<i64: 0>} : (tensor<32xf32>) -> tensor<f32>
  %mean = fusion.scale %sum {factor = 0.03125 : f32} : tensor<f32>
  %e = fusion.exp %mean : tensor<f32>
  %d = fusion.sub %e, %mean : tensor<f32>
  return %d : tensor<f32>
}
