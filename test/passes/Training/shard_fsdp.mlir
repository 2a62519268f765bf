// RUN: fusion-opt %s --fusion-autodiff --fusion-optimizer --fusion-shard-fsdp=dp=2 | FileCheck %s
// RUN: fusion-opt %s --fusion-autodiff --fusion-optimizer --fusion-shard-fsdp=dp=1 | FileCheck %s --check-prefix=ONE
// RUN: not fusion-opt %s --fusion-autodiff --fusion-optimizer "--fusion-shard-fsdp=dp=2 strategy=full_shard" 2>&1 | FileCheck %s --check-prefix=FULL
// RUN: not fusion-opt %s --fusion-autodiff --fusion-optimizer "--fusion-shard-fsdp=dp=2 ep=2" 2>&1 | FileCheck %s --check-prefix=EP
// RUN: not fusion-opt %s --fusion-autodiff --fusion-optimizer "--fusion-shard-fsdp=dp=2 strategy=zero9" 2>&1 | FileCheck %s --check-prefix=STRATEGY
// RUN: not fusion-opt %s --fusion-shard-fsdp=dp=2 2>&1 | FileCheck %s --check-prefix=ORDER
// RUN: not fusion-opt %s --fusion-autodiff --fusion-optimizer --fusion-shard-fsdp=dp=2 --fusion-shard-fsdp=dp=2 2>&1 | FileCheck %s --check-prefix=TWICE

// The one-layer MoE model of optimizer.mlir (AdamW embedding, NorMuon router and stacked
// experts, the selection bias), two micro-batches per step, made data parallel over 2 ranks
// with NO_SHARD: each value the optimizer reads that sums over the global batch is
// all-reduced right after it is final, and nothing else is.

// CHECK: module attributes {{{.*}}fusion.mesh = {dp = 2 : i64, ep = 1 : i64}
// CHECK-LABEL: func.func @train_step
// The total and main losses (the guard and the outputs).
// CHECK: %[[LOSS:.*]] = fusion.all_reduce %{{.*}} {axis = "dp", reduce = "sum"} : tensor<f32>
// CHECK: %[[MAIN:.*]] = fusion.all_reduce %{{.*}} {axis = "dp", reduce = "sum"} : tensor<f32>
// Each gradient, after the second micro-batch's contribution is added.
// CHECK: %[[GEMB:.*]] = fusion.all_reduce %{{.*}} {axis = "dp", reduce = "sum"} : tensor<16x8xf32>
// CHECK: %[[GROUTER:.*]] = fusion.all_reduce %{{.*}} {axis = "dp", reduce = "sum"} : tensor<4x8xf32>
// CHECK: %[[GEXP:.*]] = fusion.all_reduce %{{.*}} {axis = "dp", reduce = "sum"} : tensor<4x8x8xf32>
// The expert counts of the bias update.
// CHECK: %[[COUNTS:.*]] = fusion.all_reduce %{{.*}} {axis = "dp", reduce = "sum"} : tensor<4xf32>
// The squared norm is computed from the reduced gradients.
// CHECK: fusion.mul %[[GEMB]], %[[GEMB]]
// CHECK: %[[CTL:.*]] = fusion.step_control %{{.*}}, %[[LOSS]], %{{.*}}
// CHECK: fusion.adamw_update %[[GEMB]], %[[CTL]] state [@emb,
// CHECK: fusion.normuon_update %[[GROUTER]], %[[CTL]] state [@router,
// CHECK: fusion.normuon_update %[[GEXP]], %[[CTL]] state [@experts,
// CHECK: fusion.moe_bias_update %[[COUNTS]], %[[CTL]] state [@router.bias,
// CHECK: return %[[LOSS]], %[[MAIN]], %[[CTL]]
// Exactly six collectives.
// CHECK-NOT: fusion.all_reduce

// One rank: nothing changes.
// ONE-NOT: fusion.mesh
// ONE-NOT: fusion.all_reduce

// FULL: error: fusion-shard-fsdp: strategy full_shard over dp=2 is not built yet (ZeRO sharding with NorMuon matrix owners); no_shard (replicate + all-reduce) is
// EP: error: fusion-shard-fsdp: ep=2: expert parallelism (fusion-expert-parallel) is not built yet; use ep=1
// STRATEGY: error: fusion-shard-fsdp: unknown strategy 'zero9' (expected no_shard, full_shard or shard_grad_op)
// ORDER: error: fusion-shard-fsdp: the module has no @train_step; the pass runs after fusion-optimizer
// TWICE: error: fusion-shard-fsdp: the module is partitioned already (it has 'fusion.mesh')

module attributes {fusion.config = {grad_accum_steps = 2 : i64, warmup_steps = 10 : i64, stable_steps = 70 : i64, decay_steps = 20 : i64, bias_update_every = 2 : i64, lr = 3.0e-3 : f64, muon_lr = 2.0e-2 : f64, muon_momentum = 0.95 : f64, normuon_beta2 = 0.95 : f64, adamw_beta1 = 0.9 : f64, adamw_beta2 = 0.95 : f64, adamw_eps = 1.0e-8 : f64, weight_decay = 0.1 : f64, muon_weight_decay = 0.1 : f64, grad_clip = 1.0 : f64, min_lr_ratio = 0.1 : f64, bias_update_speed = 1.0e-3 : f64, bias_upper_threshold = 0.1 : f64, bias_lower_threshold = 0.1 : f64, cautious_wd_mode = "grad", lr_decay = "linear", nesterov = 1 : i64, cautious_wd = 1 : i64, adamw_cautious_update = 0 : i64, optimizer = "normuon_adamw"}} {
  fusion.parameter @emb : tensor<16x8xf32> {init = "normal", std = 0.1 : f64, optimizer = "adamw", weight_decay}
  fusion.parameter @router : tensor<4x8xf32> {init = "normal", std = 0.1 : f64, optimizer = "normuon", weight_decay}
  fusion.parameter @router.bias : tensor<4xf32> {init = "zeros", optimizer = "none"}
  fusion.parameter @experts : tensor<4x8x8xf32> {init = "normal", std = 0.1 : f64, optimizer = "normuon", weight_decay}
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
