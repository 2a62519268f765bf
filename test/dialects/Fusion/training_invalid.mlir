// RUN: fusion-opt %s --split-input-file --verify-diagnostics

// activation_grad_c1: a known activation.
func.func @activation_grad_c1(%x: tensor<4xf32>) {
  // expected-error @+1 {{unknown fn 'tanh'; expected silu, sigmoid, softplus or softcap}}
  %d = fusion.activation_grad %x, %x {fn = "tanh"} : tensor<4xf32>
  return
}

// -----

// activation_grad_c2: softcap needs its cap.
func.func @activation_grad_c2(%x: tensor<4xf32>) {
  // expected-error @+1 {{'cap' is required for softcap and only for softcap}}
  %d = fusion.activation_grad %x, %x {fn = "softcap"} : tensor<4xf32>
  return
}

// -----

// rms_norm_grad_c2: the weight gradient is f32 of w's shape.
func.func @rms_norm_grad_c2(%x: tensor<2x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{dw must be f32 of shape 8, got 'tensor<2x8xf32>'}}
  %dx, %dw = fusion.rms_norm_grad %x, %w, %x {eps = 1.0e-06 : f32} : (tensor<2x8xf32>, tensor<8xf32>, tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

// attention_grad_c1: dO has the attention result's shape.
func.func @attention_grad_c1(%q: tensor<1x4x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x8xf32>, %do: tensor<1x4x8x16xf32>) {
  // expected-error @+1 {{dO must have shape 1x4x8x8, got 1x4x8x16}}
  %dq, %dk, %dv = fusion.attention_grad %q, %k, %v, %do {scale = 0.25 : f32} : (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>, tensor<1x4x8x16xf32>) -> (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>)
  return
}

// -----

// attention_grad_c2: each gradient has its primal's type.
func.func @attention_grad_c2(%q: tensor<1x4x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x8xf32>, %do: tensor<1x4x8x8xf32>) {
  // expected-error @+1 {{dk has type 'tensor<1x4x8x16xf32>', expected 'tensor<1x2x8x16xf32>'}}
  %dq, %dk, %dv = fusion.attention_grad %q, %k, %v, %do {scale = 0.25 : f32} : (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>, tensor<1x4x8x8xf32>) -> (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x2x8x8xf32>)
  return
}

// -----

// causal_conv1d_grad_c1: x [B, T, C] and w [C, K].
func.func @causal_conv1d_grad_c1(%x: tensor<2x16x8xf32>, %w: tensor<4x4xf32>) {
  // expected-error @+1 {{expects x [B, T, C] and w [C, K], got 2x16x8 and 4x4}}
  %dx, %dw = fusion.causal_conv1d_grad %x, %w, %x : (tensor<2x16x8xf32>, tensor<4x4xf32>, tensor<2x16x8xf32>) -> (tensor<2x16x8xf32>, tensor<4x4xf32>)
  return
}

// -----

// causal_conv1d_grad_c2: dw is f32 [C, K].
func.func @causal_conv1d_grad_c2(%x: tensor<2x16x8xbf16>, %w: tensor<8x4xbf16>) {
  // expected-error @+1 {{result #1 must be ranked tensor of 32-bit float values}}
  %dx, %dw = fusion.causal_conv1d_grad %x, %w, %x : (tensor<2x16x8xbf16>, tensor<8x4xbf16>, tensor<2x16x8xbf16>) -> (tensor<2x16x8xbf16>, tensor<8x4xbf16>)
  return
}

// -----

// gated_delta_rule_grad_c1: dO has v's shape.
func.func @gated_delta_rule_grad_c1(%q: tensor<1x16x1x8xf32>, %v: tensor<1x16x2x4xf32>, %g: tensor<1x16x2xf32>, %do: tensor<1x16x2x8xf32>) {
  // expected-error @+1 {{dO must have shape 1x16x2x4, got 1x16x2x8}}
  %a, %b, %c, %d, %e = fusion.gated_delta_rule_grad %q, %q, %v, %g, %g, %do {chunk_size = 16 : i64} : (tensor<1x16x1x8xf32>, tensor<1x16x1x8xf32>, tensor<1x16x2x4xf32>, tensor<1x16x2xf32>, tensor<1x16x2xf32>, tensor<1x16x2x8xf32>) -> (tensor<1x16x1x8xf32>, tensor<1x16x1x8xf32>, tensor<1x16x2x4xf32>, tensor<1x16x2xf32>, tensor<1x16x2xf32>)
  return
}

// -----

// gated_delta_rule_grad_c2: each gradient has its primal's type.
func.func @gated_delta_rule_grad_c2(%q: tensor<1x16x1x8xf32>, %v: tensor<1x16x2x4xf32>, %g: tensor<1x16x2xf32>) {
  // expected-error @+1 {{gradient has type 'tensor<1x16x2x4xf32>', expected 'tensor<1x16x1x8xf32>'}}
  %a, %b, %c, %d, %e = fusion.gated_delta_rule_grad %q, %q, %v, %g, %g, %v {chunk_size = 16 : i64} : (tensor<1x16x1x8xf32>, tensor<1x16x1x8xf32>, tensor<1x16x2x4xf32>, tensor<1x16x2xf32>, tensor<1x16x2xf32>, tensor<1x16x2x4xf32>) -> (tensor<1x16x2x4xf32>, tensor<1x16x1x8xf32>, tensor<1x16x2x4xf32>, tensor<1x16x2xf32>, tensor<1x16x2xf32>)
  return
}

// -----

// embedding_grad_c1: dy is ids.shape × D and the table gradient is f32.
func.func @embedding_grad_c1(%ids: tensor<2x16xi32>, %dy: tensor<2x16x32xf32>) {
  // expected-error @+1 {{dy must have shape 2x16x64, got 2x16x32}}
  %dt = fusion.embedding_grad %ids, %dy : (tensor<2x16xi32>, tensor<2x16x32xf32>) -> tensor<512x64xf32>
  return
}

// -----

// slice_grad_c1: the slice fits the full dimension.
func.func @slice_grad_c1(%dy: tensor<4x8xf32>) {
  // expected-error @+1 {{slice [6, 14) does not fit dimension 1 of size 12}}
  %dx = fusion.slice_grad %dy {dim = 1 : i64, start = 6 : i64} : (tensor<4x8xf32>) -> tensor<4x12xf32>
  return
}

// -----

// moe_route_grad_c1: dweights match the indices.
func.func @moe_route_grad_c1(%s: tensor<32x8xf32>, %idx: tensor<32x2xi32>, %dw: tensor<32x3xf32>) {
  // expected-error @+1 {{expects scores [N, E], indices and dweights [N, K], got 32x8, 32x2, 32x3}}
  %a = fusion.moe_route_grad %s, %idx, %dw {route_scale = 1.0 : f32} : (tensor<32x8xf32>, tensor<32x2xi32>, tensor<32x3xf32>) -> tensor<32x8xf32>
  return
}

// -----

// moe_dispatch_grad_c1: N divides N·K.
func.func @moe_dispatch_grad_c1(%dxs: tensor<64x16xf32>, %perm: tensor<64xi32>) {
  // expected-error @+1 {{expects dxs [N·K, D], perm [N·K] and a result [N, D], got 64x16, 64, 24x16}}
  %b = fusion.moe_dispatch_grad %dxs, %perm : (tensor<64x16xf32>, tensor<64xi32>) -> tensor<24x16xf32>
  return
}

// -----

// moe_combine_grad_c1: dy is [N, D].
func.func @moe_combine_grad_c1(%ys: tensor<64x16xf32>, %w: tensor<32x2xf32>, %perm: tensor<64xi32>, %dy: tensor<32x8xf32>) {
  // expected-error @+1 {{expects ys [N·K, D], weights [N, K], perm [N·K], dy [N, D], got 64x16, 32x2, 64, 32x8}}
  %c, %d = fusion.moe_combine_grad %ys, %w, %perm, %dy : (tensor<64x16xf32>, tensor<32x2xf32>, tensor<64xi32>, tensor<32x8xf32>) -> (tensor<64x16xf32>, tensor<32x2xf32>)
  return
}

// -----

// grouped_matmul_grad_c1: dout is [M, Dout].
func.func @grouped_matmul_grad_c1(%xs: tensor<64x16xf32>, %w: tensor<4x8x16xf32>, %sizes: tensor<4xi32>, %dout: tensor<64x16xf32>) {
  // expected-error @+1 {{expects xs [M, Din], w [E, Dout, Din], group_sizes [E], dout [M, Dout], got 64x16, 4x8x16, 4, 64x16}}
  %e, %f = fusion.grouped_matmul_grad %xs, %w, %sizes, %dout : (tensor<64x16xf32>, tensor<4x8x16xf32>, tensor<4xi32>, tensor<64x16xf32>) -> (tensor<64x16xf32>, tensor<4x8x16xf32>)
  return
}

// -----

// grouped_matmul_grad_c2: dw is f32.
func.func @grouped_matmul_grad_c2(%xs: tensor<64x16xbf16>, %w: tensor<4x8x16xbf16>, %sizes: tensor<4xi32>, %dout: tensor<64x8xbf16>) {
  // expected-error @+1 {{result #1 must be ranked tensor of 32-bit float values}}
  %e, %f = fusion.grouped_matmul_grad %xs, %w, %sizes, %dout : (tensor<64x16xbf16>, tensor<4x8x16xbf16>, tensor<4xi32>, tensor<64x8xbf16>) -> (tensor<64x16xbf16>, tensor<4x8x16xbf16>)
  return
}

// -----

// moe_balance_loss_grad_c1: seq_len divides N.
func.func @moe_balance_loss_grad_c1(%s: tensor<32x8xf32>, %idx: tensor<32x2xi32>, %dl: tensor<f32>) {
  // expected-error @+1 {{seq_len 12 must divide N = 32}}
  %g = fusion.moe_balance_loss_grad %s, %idx, %dl {seq_len = 12 : i64} : (tensor<32x8xf32>, tensor<32x2xi32>, tensor<f32>) -> tensor<32x8xf32>
  return
}

// -----

// cross_entropy_grad_c1: dce is [N].
func.func @cross_entropy_grad_c1(%z: tensor<32x512xf32>, %y: tensor<32xi32>, %dce: tensor<16xf32>) {
  // expected-error @+1 {{dce must have shape 32, got 16}}
  %dz = fusion.cross_entropy_grad %z, %y, %dce : (tensor<32x512xf32>, tensor<32xi32>, tensor<16xf32>) -> tensor<32x512xf32>
  return
}

// -----

// softcap_ce_c1: h and w share D.
func.func @softcap_ce_c1(%h: tensor<32x64xf32>, %w: tensor<512x32xf32>, %y: tensor<32xi32>) {
  // expected-error @+1 {{expects h [N, D], w [V, D] and targets [N], got 32x64, 512x32, 32}}
  %ce = fusion.softcap_ce %h, %w, %y {cap = 15.0 : f32} : (tensor<32x64xf32>, tensor<512x32xf32>, tensor<32xi32>) -> tensor<32xf32>
  return
}

// -----

// softcap_ce_c3: cap >= 0.
func.func @softcap_ce_c3(%h: tensor<32x64xf32>, %w: tensor<512x64xf32>, %y: tensor<32xi32>) {
  // expected-error @+1 {{expects cap >= 0, got -1}}
  %ce = fusion.softcap_ce %h, %w, %y {cap = -1.0 : f32} : (tensor<32x64xf32>, tensor<512x64xf32>, tensor<32xi32>) -> tensor<32xf32>
  return
}

// -----

// softcap_ce_grad_c2: dw is f32 of w's shape.
func.func @softcap_ce_grad_c2(%h: tensor<32x64xf32>, %w: tensor<512x64xf32>, %y: tensor<32xi32>, %dce: tensor<32xf32>) {
  // expected-error @+1 {{dw must be f32 of shape 512x64, got 'tensor<64x512xf32>'}}
  %dh, %dw = fusion.softcap_ce_grad %h, %w, %y, %dce {cap = 15.0 : f32} : (tensor<32x64xf32>, tensor<512x64xf32>, tensor<32xi32>, tensor<32xf32>) -> (tensor<32x64xf32>, tensor<64x512xf32>)
  return
}

// -----

// step_control_c2: a known decay shape and at least one decay step.
func.func @step_control_c2(%step: tensor<2xi32>, %loss: tensor<f32>) {
  // expected-error @+1 {{decay must be 'linear' or 'cosine', got 'step'}}
  %ctl = fusion.step_control %step, %loss, %loss {warmup_steps = 10 : i64, stable_steps = 70 : i64, decay_steps = 20 : i64, min_lr_ratio = 0.1 : f32, decay = "step", grad_clip = 1.0 : f32} : (tensor<2xi32>, tensor<f32>, tensor<f32>) -> tensor<8xf32>
  return
}

// -----

// step_control_c1: step is (s, t).
func.func @step_control_c1(%step: tensor<3xi32>, %loss: tensor<f32>) {
  // expected-error @+1 {{step must be i32 [2] = (s, t), got 'tensor<3xi32>'}}
  %ctl = fusion.step_control %step, %loss, %loss {warmup_steps = 10 : i64, stable_steps = 70 : i64, decay_steps = 20 : i64, min_lr_ratio = 0.1 : f32, decay = "linear", grad_clip = 1.0 : f32} : (tensor<3xi32>, tensor<f32>, tensor<f32>) -> tensor<8xf32>
  return
}

// -----

fusion.parameter @e : tensor<8xf32> {init = "ones", optimizer = "adamw"}
fusion.parameter @e.adam_m : tensor<8xf32> {init = "zeros", optimizer = "state"}

// adamw_update_c1: three state parameters of the gradient's shape.
func.func @adamw_update_c1(%g: tensor<8xf32>, %ctl: tensor<8xf32>) {
  // expected-error @+1 {{state v @e.adam_v does not name a fusion.parameter}}
  fusion.adamw_update %g, %ctl state [@e, @e.adam_m, @e.adam_v] {lr = 3.0e-3 : f32, beta1 = 0.9 : f32, beta2 = 0.95 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32, cautious_wd = 1 : i64, cautious_wd_mode = "grad", cautious_update = 0 : i64} : tensor<8xf32>, tensor<8xf32>
  return
}

// -----

fusion.parameter @e : tensor<8xf32> {init = "ones", optimizer = "adamw"}

// adamw_update_c3: a known cautious weight-decay mode.
func.func @adamw_update_c3(%g: tensor<8xf32>, %ctl: tensor<8xf32>) {
  // expected-error @+1 {{cautious_wd_mode must be 'grad' or 'update', got 'sign'}}
  fusion.adamw_update %g, %ctl state [@e, @e, @e] {lr = 3.0e-3 : f32, beta1 = 0.9 : f32, beta2 = 0.95 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32, cautious_wd = 1 : i64, cautious_wd_mode = "sign", cautious_update = 0 : i64} : tensor<8xf32>, tensor<8xf32>
  return
}

// -----

// adamw_update_c2: ctl is f32 [8].
func.func @adamw_update_c2(%g: tensor<8xf32>, %ctl: tensor<4xf32>) {
  // expected-error @+1 {{ctl must be f32 of shape 8, got 'tensor<4xf32>'}}
  fusion.adamw_update %g, %ctl state [@e, @e, @e] {lr = 3.0e-3 : f32, beta1 = 0.9 : f32, beta2 = 0.95 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32, cautious_wd = 1 : i64, cautious_wd_mode = "grad", cautious_update = 0 : i64} : tensor<8xf32>, tensor<4xf32>
  return
}

// -----

fusion.parameter @w : tensor<16x8xf32> {init = "normal", std = 0.1 : f64, optimizer = "normuon"}
fusion.parameter @w.muon_m : tensor<16x8xf32> {init = "zeros", optimizer = "state"}
fusion.parameter @w.muon_v : tensor<8xf32> {init = "zeros", optimizer = "state"}

// normuon_update_c1: v holds one entry per output row.
func.func @normuon_update_c1(%g: tensor<16x8xf32>, %ctl: tensor<8xf32>) {
  // expected-error @+1 {{state v @w.muon_v has shape 8, expected 16}}
  fusion.normuon_update %g, %ctl state [@w, @w.muon_m, @w.muon_v] {lr = 0.02 : f32, beta1 = 0.95 : f32, beta2 = 0.95 : f32, weight_decay = 0.1 : f32, nesterov = 1 : i64, normalize = 1 : i64, cautious_wd = 1 : i64, cautious_wd_mode = "grad"} : tensor<16x8xf32>, tensor<8xf32>
  return
}

// -----

// normuon_update_c3: betas in [0, 1).
func.func @normuon_update_c3(%g: tensor<16x8xf32>, %ctl: tensor<8xf32>) {
  // expected-error @+1 {{beta1 must be in [0, 1), got 1}}
  fusion.normuon_update %g, %ctl state [@w, @w, @w] {lr = 0.02 : f32, beta1 = 1.0 : f32, beta2 = 0.95 : f32, weight_decay = 0.1 : f32, nesterov = 1 : i64, normalize = 1 : i64, cautious_wd = 1 : i64, cautious_wd_mode = "grad"} : tensor<16x8xf32>, tensor<8xf32>
  return
}

// -----

// moe_bias_update_c2: a positive period.
func.func @moe_bias_update_c2(%c: tensor<8xf32>, %ctl: tensor<8xf32>) {
  // expected-error @+1 {{expects every >= 1, speed >= 0 and thresholds in [0, 1)}}
  fusion.moe_bias_update %c, %ctl state [@b, @b] {every = 0 : i64, speed = 1.0e-3 : f32, upper = 0.1 : f32, lower = 0.1 : f32} : tensor<8xf32>, tensor<8xf32>
  return
}

// -----

fusion.parameter @b : tensor<8xf32> {init = "zeros", optimizer = "none"}

// moe_bias_update_c1: the window matches the bias.
func.func @moe_bias_update_c1(%c: tensor<8xf32>, %ctl: tensor<8xf32>) {
  // expected-error @+1 {{expects 2 state parameters, got 1}}
  fusion.moe_bias_update %c, %ctl state [@b] {every = 10 : i64, speed = 1.0e-3 : f32, upper = 0.1 : f32, lower = 0.1 : f32} : tensor<8xf32>, tensor<8xf32>
  return
}

// -----

// parameter_c3: a known optimizer.
// expected-error @+1 {{unknown optimizer 'sgd'; optimizers: normuon, adamw, none, state}}
fusion.parameter @p : tensor<8xf32> {init = "zeros", optimizer = "sgd"}
