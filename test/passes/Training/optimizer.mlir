// RUN: fusion-opt %s --split-input-file --fusion-autodiff --fusion-optimizer --verify-diagnostics | FileCheck %s

// A one-layer MoE model with a tied-style embedding (AdamW), a router and stacked experts
// (NorMuon) and the selection bias (balancing rule), two micro-batches per step.
module attributes {fusion.config = {grad_accum_steps = 2 : i64, warmup_steps = 10 : i64, stable_steps = 70 : i64, decay_steps = 20 : i64, bias_update_every = 2 : i64, lr = 3.0e-3 : f64, muon_lr = 2.0e-2 : f64, muon_momentum = 0.95 : f64, normuon_beta2 = 0.95 : f64, adamw_beta1 = 0.9 : f64, adamw_beta2 = 0.95 : f64, adamw_eps = 1.0e-8 : f64, weight_decay = 0.1 : f64, muon_weight_decay = 0.1 : f64, grad_clip = 1.0 : f64, min_lr_ratio = 0.1 : f64, bias_update_speed = 1.0e-3 : f64, bias_upper_threshold = 0.1 : f64, bias_lower_threshold = 0.1 : f64, cautious_wd_mode = "grad", lr_decay = "linear", nesterov = 1 : i64, cautious_wd = 1 : i64, adamw_cautious_update = 0 : i64, optimizer = "normuon_adamw"}} {
  fusion.parameter @emb : tensor<16x8xf32> {init = "normal", std = 0.1 : f64, optimizer = "adamw", weight_decay}
  fusion.parameter @router : tensor<4x8xf32> {init = "normal", std = 0.1 : f64, optimizer = "normuon", weight_decay}
  fusion.parameter @router.bias : tensor<4xf32> {init = "zeros", optimizer = "none"}
  fusion.parameter @experts : tensor<4x8x8xf32> {init = "normal", std = 0.1 : f64, optimizer = "normuon", weight_decay}

  // Optimizer state is declared next to each parameter.
  // CHECK-DAG: fusion.parameter @emb.adam_m : tensor<16x8xf32> {init = "zeros", optimizer = "state"}
  // CHECK-DAG: fusion.parameter @emb.adam_v : tensor<16x8xf32> {init = "zeros", optimizer = "state"}
  // CHECK-DAG: fusion.parameter @router.muon_v : tensor<4xf32> {init = "zeros", optimizer = "state"}
  // CHECK-DAG: fusion.parameter @experts.muon_m : tensor<4x8x8xf32> {init = "zeros", optimizer = "state"}
  // CHECK-DAG: fusion.parameter @experts.muon_v : tensor<4x8xf32> {init = "zeros", optimizer = "state"}
  // CHECK-DAG: fusion.parameter @router.bias.window : tensor<4xf32> {init = "zeros", optimizer = "state"}

  // @forward survives as the evaluation program; the gradient template is gone.
  // CHECK-LABEL: func.func @eval_step
  // CHECK-NOT: func.func @forward_grad
  // This model's loss has no cross-entropy head, so there is no @score to build.
  // CHECK-NOT: func.func @score
  // CHECK-LABEL: func.func @train_step
  //  CHECK-SAME: (%[[TOK:.*]]: tensor<2x1x5xi32> {fusion.name = "tokens"}, %{{.*}}: tensor<2x1x5xi32> {fusion.name = "targets"}, %{{.*}}: tensor<1xf32> {fusion.name = "inv_counts"}, %[[STEP:.*]]: tensor<2xi32> {fusion.name = "step"})
  //  CHECK-SAME: -> (tensor<f32> {fusion.name = "loss"}, tensor<f32> {fusion.name = "main_loss"}, tensor<8xf32> {fusion.name = "ctl"})
  // Micro-batch 0, then micro-batch 1, each sliced from the step's rows; their expert
  // counts are summed.
  //       CHECK:   fusion.slice %[[TOK]] {dim = 0 : i64, size = 1 : i64, start = 0 : i64}
  //       CHECK:   %{{[a-z_0-9]+}}, %[[SIZES0:[a-z_0-9]+]], %{{[a-z_0-9]+}} = fusion.moe_dispatch
  //       CHECK:   %[[C0:.*]] = fusion.cast %[[SIZES0]] : (tensor<4xi32>) -> tensor<4xf32>
  //       CHECK:   fusion.slice %[[TOK]] {dim = 0 : i64, size = 1 : i64, start = 1 : i64}
  //       CHECK:   %{{[a-z_0-9]+}}, %[[SIZES1:[a-z_0-9]+]], %{{[a-z_0-9]+}} = fusion.moe_dispatch
  //       CHECK:   %[[C1:.*]] = fusion.cast %[[SIZES1]] : (tensor<4xi32>) -> tensor<4xf32>
  //       CHECK:   %[[COUNTS:.*]] = fusion.add %[[C0]], %[[C1]]
  // Global norm, schedule, clip and guard; then the updates in parameter order.
  //       CHECK:   %[[CTL:.*]] = fusion.step_control %[[STEP]], %{{.*}}, %{{.*}} {decay = "linear", decay_steps = 20 : i64, grad_clip = 1.000000e+00 : f32, min_lr_ratio = 1.000000e-01 : f32, stable_steps = 70 : i64, warmup_steps = 10 : i64}
  //       CHECK:   fusion.adamw_update %{{.*}}, %[[CTL]] state [@emb, @emb.adam_m, @emb.adam_v] {{{.*}}lr = 3.000000e-03 : f32{{.*}}weight_decay = 1.000000e-01 : f32}
  //       CHECK:   fusion.normuon_update %{{.*}}, %[[CTL]] state [@router, @router.muon_m, @router.muon_v] {{{.*}}lr = 2.000000e-02 : f32
  //       CHECK:   fusion.normuon_update %{{.*}}, %[[CTL]] state [@experts, @experts.muon_m, @experts.muon_v]
  //       CHECK:   fusion.moe_bias_update %[[COUNTS]], %[[CTL]] state [@router.bias, @router.bias.window] {every = 2 : i64
  //       CHECK:   return
  func.func @forward(%tokens: tensor<1x5xi32>, %targets: tensor<1x5xi32>, %inv: tensor<1xf32>) -> (tensor<f32>, tensor<f32>) {
    %ids = fusion.slice %tokens {dim = 1 : i64, start = 0 : i64, size = 4 : i64} : (tensor<1x5xi32>) -> tensor<1x4xi32>
    %e = fusion.load @emb : tensor<16x8xf32>
    %x3 = fusion.embedding %e, %ids : (tensor<16x8xf32>, tensor<1x4xi32>) -> tensor<1x4x8xf32>
    %x = fusion.reshape %x3 : (tensor<1x4x8xf32>) -> tensor<4x8xf32>
    %r = fusion.load @router : tensor<4x8xf32>
    %logits = fusion.matmul %x, %r {transpose_b} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x4xf32>
    %b = fusion.load @router.bias : tensor<4xf32>
    %w, %idx, %s = fusion.moe_route %logits, %b {top_k = 2 : i64, n_groups = 1 : i64, n_limited_groups = 1 : i64, group_topk = 2 : i64, route_scale = 1.0 : f32} : (tensor<4x4xf32>, tensor<4xf32>) -> (tensor<4x2xf32>, tensor<4x2xi32>, tensor<4x4xf32>)
    %xs, %sizes, %perm = fusion.moe_dispatch %x, %idx {num_experts = 4 : i64} : (tensor<4x8xf32>, tensor<4x2xi32>) -> (tensor<8x8xf32>, tensor<4xi32>, tensor<8xi32>)
    %ew = fusion.load @experts : tensor<4x8x8xf32>
    %ys = fusion.grouped_matmul %xs, %ew, %sizes : (tensor<8x8xf32>, tensor<4x8x8xf32>, tensor<4xi32>) -> tensor<8x8xf32>
    %y = fusion.moe_combine %ys, %w, %perm : (tensor<8x8xf32>, tensor<4x2xf32>, tensor<8xi32>) -> tensor<4x8xf32>
    %l = fusion.sum %y {dims = array<i64: 0, 1>} : (tensor<4x8xf32>) -> tensor<f32>
    return %l, %l : tensor<f32>, tensor<f32>
  }
}

// -----

// Without the training configuration there is no step to build.
// expected-error @+1 {{fusion-optimizer: the module has no fusion.config training configuration}}
module {
  fusion.parameter @w : tensor<4xf32> {init = "ones", optimizer = "adamw"}
  func.func @forward(%t: tensor<1x5xi32>, %y: tensor<1x5xi32>, %inv: tensor<1xf32>) -> (tensor<f32>, tensor<f32>) {
    %w = fusion.load @w : tensor<4xf32>
    %l = fusion.sum %w {dims = array<i64: 0>} : (tensor<4xf32>) -> tensor<f32>
    return %l, %l : tensor<f32>, tensor<f32>
  }
}

// -----

// A missing key is named.
// expected-error @+1 {{fusion-optimizer: fusion.config needs 'warmup_steps' (an integer)}}
module attributes {fusion.config = {grad_accum_steps = 2 : i64}} {
  fusion.parameter @w : tensor<4xf32> {init = "ones", optimizer = "adamw"}
  func.func @forward(%t: tensor<1x5xi32>, %y: tensor<1x5xi32>, %inv: tensor<1xf32>) -> (tensor<f32>, tensor<f32>) {
    %w = fusion.load @w : tensor<4xf32>
    %l = fusion.sum %w {dims = array<i64: 0>} : (tensor<4xf32>) -> tensor<f32>
    return %l, %l : tensor<f32>, tensor<f32>
  }
}
