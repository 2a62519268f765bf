// RUN: fusion-opt %s | fusion-opt | FileCheck %s
// RUN: fusion-opt %s --mlir-print-op-generic | fusion-opt | FileCheck %s

// Round trip of the training ops (FusionTrainingOps.td): backward ops, the fused head and
// the optimizer ops with their in-place state.

fusion.parameter @w : tensor<16x8xf32> {init = "normal", std = 0.1 : f64, optimizer = "normuon", weight_decay}
fusion.parameter @w.muon_m : tensor<16x8xf32> {init = "zeros", optimizer = "state"}
fusion.parameter @w.muon_v : tensor<16xf32> {init = "zeros", optimizer = "state"}
fusion.parameter @e : tensor<8xf32> {init = "ones", optimizer = "adamw"}
fusion.parameter @e.adam_m : tensor<8xf32> {init = "zeros", optimizer = "state"}
fusion.parameter @e.adam_v : tensor<8xf32> {init = "zeros", optimizer = "state"}
fusion.parameter @b : tensor<8xf32> {init = "zeros", optimizer = "none"}
fusion.parameter @b.window : tensor<8xf32> {init = "zeros", optimizer = "state"}

// CHECK-LABEL: func.func @elementwise
//       CHECK:   fusion.fill {value = 1.000000e+00 : f64} : tensor<f32>
//       CHECK:   fusion.activation_grad %{{.*}}, %{{.*}} {fn = "silu"} : tensor<4x8xf32>
//       CHECK:   fusion.activation_grad %{{.*}}, %{{.*}} {cap = 1.500000e+01 : f32, fn = "softcap"} : tensor<4x8xf32>
//       CHECK:   fusion.swiglu_grad %{{.*}}, %{{.*}}, %{{.*}} : tensor<4x8xf32>
//       CHECK:   fusion.slice_grad %{{.*}} {dim = 1 : i64, start = 2 : i64} : (tensor<4x8xf32>) -> tensor<4x12xf32>
func.func @elementwise(%x: tensor<4x8xf32>, %dy: tensor<4x8xf32>) {
  %one = fusion.fill {value = 1.0 : f64} : tensor<f32>
  %a = fusion.activation_grad %x, %dy {fn = "silu"} : tensor<4x8xf32>
  %c = fusion.activation_grad %x, %dy {fn = "softcap", cap = 15.0 : f32} : tensor<4x8xf32>
  %dg, %du = fusion.swiglu_grad %x, %x, %dy : tensor<4x8xf32>
  %p = fusion.slice_grad %dy {dim = 1 : i64, start = 2 : i64} : (tensor<4x8xf32>) -> tensor<4x12xf32>
  return
}

// CHECK-LABEL: func.func @norms
//       CHECK:   fusion.rms_norm_grad {{.*}} -> (tensor<2x8xf32>, tensor<8xf32>)
//       CHECK:   fusion.l2_norm_grad
//       CHECK:   fusion.rope_grad
func.func @norms(%x: tensor<2x8xf32>, %w: tensor<8xf32>, %dy: tensor<2x8xf32>, %q: tensor<2x16x4x24xf32>) {
  %dx, %dw = fusion.rms_norm_grad %x, %w, %dy {eps = 1.0e-06 : f32} : (tensor<2x8xf32>, tensor<8xf32>, tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<8xf32>)
  %l = fusion.l2_norm_grad %x, %dy {eps = 1.0e-06 : f32, scale = 0.25 : f32} : tensor<2x8xf32>
  %r = fusion.rope_grad %q {rotary_dims = 8 : i64, theta = 1.0e+04 : f32} : tensor<2x16x4x24xf32>
  return
}

// CHECK-LABEL: func.func @mixers
//       CHECK:   fusion.attention_grad {{.*}}causal
//       CHECK:   fusion.causal_conv1d_grad
//       CHECK:   fusion.gated_delta_rule_grad
//       CHECK:   fusion.embedding_grad
func.func @mixers(%q: tensor<1x4x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x8xf32>, %do: tensor<1x4x8x8xf32>,
                  %x: tensor<2x16x8xf32>, %cw: tensor<8x4xf32>,
                  %gq: tensor<1x16x1x8xf32>, %gv: tensor<1x16x2x4xf32>, %gg: tensor<1x16x2xf32>,
                  %ids: tensor<2x16xi32>, %de: tensor<2x16x64xf32>) {
  %dq, %dk, %dv = fusion.attention_grad %q, %k, %v, %do {causal, window = 4 : i64, scale = 0.25 : f32} : (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>, tensor<1x4x8x8xf32>) -> (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>)
  %dx, %dcw = fusion.causal_conv1d_grad %x, %cw, %x : (tensor<2x16x8xf32>, tensor<8x4xf32>, tensor<2x16x8xf32>) -> (tensor<2x16x8xf32>, tensor<8x4xf32>)
  %a, %b, %c, %d, %e = fusion.gated_delta_rule_grad %gq, %gq, %gv, %gg, %gg, %gv {chunk_size = 16 : i64} : (tensor<1x16x1x8xf32>, tensor<1x16x1x8xf32>, tensor<1x16x2x4xf32>, tensor<1x16x2xf32>, tensor<1x16x2xf32>, tensor<1x16x2x4xf32>) -> (tensor<1x16x1x8xf32>, tensor<1x16x1x8xf32>, tensor<1x16x2x4xf32>, tensor<1x16x2xf32>, tensor<1x16x2xf32>)
  %dt = fusion.embedding_grad %ids, %de : (tensor<2x16xi32>, tensor<2x16x64xf32>) -> tensor<512x64xf32>
  return
}

// CHECK-LABEL: func.func @moe
//       CHECK:   fusion.moe_route_grad
//       CHECK:   fusion.moe_dispatch_grad
//       CHECK:   fusion.moe_combine_grad
//       CHECK:   fusion.grouped_matmul_grad
//       CHECK:   fusion.moe_balance_loss_grad
func.func @moe(%s: tensor<32x8xf32>, %idx: tensor<32x2xi32>, %dw: tensor<32x2xf32>, %dxs: tensor<64x16xf32>,
               %perm: tensor<64xi32>, %dy: tensor<32x16xf32>, %ew: tensor<4x8x16xf32>, %sizes: tensor<4xi32>,
               %dout: tensor<64x8xf32>, %dl: tensor<f32>) {
  %a = fusion.moe_route_grad %s, %idx, %dw {route_scale = 1.0 : f32} : (tensor<32x8xf32>, tensor<32x2xi32>, tensor<32x2xf32>) -> tensor<32x8xf32>
  %b = fusion.moe_dispatch_grad %dxs, %perm : (tensor<64x16xf32>, tensor<64xi32>) -> tensor<32x16xf32>
  %c, %d = fusion.moe_combine_grad %dxs, %dw, %perm, %dy : (tensor<64x16xf32>, tensor<32x2xf32>, tensor<64xi32>, tensor<32x16xf32>) -> (tensor<64x16xf32>, tensor<32x2xf32>)
  %e, %f = fusion.grouped_matmul_grad %dxs, %ew, %sizes, %dout : (tensor<64x16xf32>, tensor<4x8x16xf32>, tensor<4xi32>, tensor<64x8xf32>) -> (tensor<64x16xf32>, tensor<4x8x16xf32>)
  %g = fusion.moe_balance_loss_grad %s, %idx, %dl {seq_len = 16 : i64} : (tensor<32x8xf32>, tensor<32x2xi32>, tensor<f32>) -> tensor<32x8xf32>
  return
}

// CHECK-LABEL: func.func @head
//       CHECK:   fusion.softcap_ce %{{.*}}, %{{.*}}, %{{.*}} {cap = 1.500000e+01 : f32}
//       CHECK:   fusion.softcap_ce_grad
//       CHECK:   fusion.cross_entropy_grad
func.func @head(%h: tensor<32x64xf32>, %w: tensor<512x64xf32>, %y: tensor<32xi32>, %z: tensor<32x512xf32>) {
  %ce = fusion.softcap_ce %h, %w, %y {cap = 15.0 : f32} : (tensor<32x64xf32>, tensor<512x64xf32>, tensor<32xi32>) -> tensor<32xf32>
  %dh, %dw = fusion.softcap_ce_grad %h, %w, %y, %ce {cap = 15.0 : f32} : (tensor<32x64xf32>, tensor<512x64xf32>, tensor<32xi32>, tensor<32xf32>) -> (tensor<32x64xf32>, tensor<512x64xf32>)
  %dz = fusion.cross_entropy_grad %z, %y, %ce : (tensor<32x512xf32>, tensor<32xi32>, tensor<32xf32>) -> tensor<32x512xf32>
  return
}

// CHECK-LABEL: func.func @optimizer
//       CHECK:   fusion.step_control {{.*}}decay = "linear"
//       CHECK:   fusion.normuon_update %{{.*}}, %{{.*}} state [@w, @w.muon_m, @w.muon_v]
//       CHECK:   fusion.adamw_update %{{.*}}, %{{.*}} state [@e, @e.adam_m, @e.adam_v]
//       CHECK:   fusion.moe_bias_update %{{.*}}, %{{.*}} state [@b, @b.window]
func.func @optimizer(%step: tensor<2xi32>, %loss: tensor<f32>, %gw: tensor<16x8xf32>, %ge: tensor<8xf32>) {
  %ctl = fusion.step_control %step, %loss, %loss {warmup_steps = 10 : i64, stable_steps = 70 : i64, decay_steps = 20 : i64, min_lr_ratio = 0.1 : f32, decay = "linear", grad_clip = 1.0 : f32} : (tensor<2xi32>, tensor<f32>, tensor<f32>) -> tensor<8xf32>
  fusion.normuon_update %gw, %ctl state [@w, @w.muon_m, @w.muon_v] {lr = 0.02 : f32, beta1 = 0.95 : f32, beta2 = 0.95 : f32, weight_decay = 0.1 : f32, nesterov = 1 : i64, normalize = 1 : i64, cautious_wd = 1 : i64, cautious_wd_mode = "grad"} : tensor<16x8xf32>, tensor<8xf32>
  fusion.adamw_update %ge, %ctl state [@e, @e.adam_m, @e.adam_v] {lr = 3.0e-3 : f32, beta1 = 0.9 : f32, beta2 = 0.95 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32, cautious_wd = 1 : i64, cautious_wd_mode = "grad", cautious_update = 0 : i64} : tensor<8xf32>, tensor<8xf32>
  fusion.moe_bias_update %ge, %ctl state [@b, @b.window] {every = 10 : i64, speed = 1.0e-3 : f32, upper = 0.1 : f32, lower = 0.1 : f32} : tensor<8xf32>, tensor<8xf32>
  return
}
