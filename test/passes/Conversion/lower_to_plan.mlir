// RUN: fusion-opt %s --split-input-file --fusion-lower-to-plan --verify-diagnostics | FileCheck %s

// Parameters become persistent buffers written by `init`; arguments and results become the
// program's bindings; matmul becomes a GEMM, every other op a launch of a kernel whose kind
// is the op's mnemonic and whose parameters are the op's attributes.
// CHECK-LABEL: module @mlp
//   CHECK-DAG: fplan.arena @params persistent size(256)
//   CHECK-DAG: fplan.buffer @w : tensor<4x8xf32> in @params at 0
//   CHECK-DAG: fplan.kernel @init.w kind "init_param" params {param_index = 0 : i64, rule = "trunc_normal", seed = 7 : i64, std = 5.000000e-01 : f64}
//   CHECK-DAG: fplan.kernel @softcap kind "softcap" params {cap = 1.500000e+01 : f32}
//       CHECK: fplan.program @init {
//  CHECK-NEXT:   fplan.launch @init.w ins [] outs [@w]
//       CHECK: fplan.program @forward inputs {x = @forward.x} outputs {y = @[[Y:.+]]} {
//  CHECK-NEXT:   fplan.gemm @forward.x, @w -> @[[H:.+]] transpose_b
//  CHECK-NEXT:   fplan.launch @softcap ins [@[[H]]] outs [@[[Y]]]
//   CHECK-NOT: func.func
//   CHECK-NOT: fusion.
module @mlp attributes {fusion.seed = 7 : i64} {
  fusion.parameter @w : tensor<4x8xf32> {init = "trunc_normal", std = 0.5 : f64, optimizer = "normuon"}
  func.func @forward(%x: tensor<2x8xf32> {fusion.name = "x"}) -> (tensor<2x4xf32> {fusion.name = "y"}) {
    %w = fusion.load @w : tensor<4x8xf32>
    %h = fusion.matmul %x, %w {transpose_b} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
    %y = fusion.softcap %h {cap = 15.0 : f32} : tensor<2x4xf32>
    return %y : tensor<2x4xf32>
  }
}

// -----

// Ops with equal kind, parameters and element types share one kernel; a different
// element type gets its own (a device function is specialised to its buffers' types).
// CHECK-LABEL: module @shared_kernels
//   CHECK-DAG: fplan.kernel @silu kind "silu"
//   CHECK-DAG: fplan.kernel @silu.0 kind "silu"
//       CHECK: fplan.launch @silu ins
//       CHECK: fplan.launch @silu ins
//       CHECK: fplan.launch @silu.0 ins
module @shared_kernels {
  func.func @f(%x: tensor<4xf32>, %h: tensor<4xbf16>) -> (tensor<4xf32>, tensor<4xbf16>) {
    %a = fusion.silu %x : tensor<4xf32>
    %b = fusion.silu %a : tensor<4xf32>
    %c = fusion.silu %h : tensor<4xbf16>
    return %b, %c : tensor<4xf32>, tensor<4xbf16>
  }
}

// -----

// The operands' element types count too: casts to f32 from bf16 and from i32 are two
// kernels, casts from bf16 share one.
// CHECK-LABEL: module @kernels_by_operand_types
//   CHECK-DAG: fplan.kernel @cast kind "cast"
//   CHECK-DAG: fplan.kernel @cast.0 kind "cast"
//       CHECK: fplan.launch @cast ins
//       CHECK: fplan.launch @cast ins
//       CHECK: fplan.launch @cast.0 ins
module @kernels_by_operand_types {
  func.func @f(%h: tensor<4xbf16>, %g: tensor<4xbf16>, %i: tensor<4xi32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
    %a = fusion.cast %h : (tensor<4xbf16>) -> tensor<4xf32>
    %b = fusion.cast %g : (tensor<4xbf16>) -> tensor<4xf32>
    %c = fusion.cast %i : (tensor<4xi32>) -> tensor<4xf32>
    return %a, %b, %c : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
  }
}

// -----

// An fplan-only module passes through untouched.
// CHECK-LABEL: module @already_a_plan
//       CHECK:   fplan.arena @a size(64)
//       CHECK:   fplan.program @main
module @already_a_plan {
  fplan.arena @a size(64)
  fplan.program @main {
  }
}

// -----

// Ops outside the fusion dialect have no plan instruction.
module @foreign_op {
  func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
    // expected-error @+1 {{'func.call' op cannot be lowered to a plan instruction}}
    %y = func.call @g(%x) : (tensor<4xf32>) -> tensor<4xf32>
    return %y : tensor<4xf32>
  }
  func.func private @g(tensor<4xf32>) -> tensor<4xf32>
}

// -----

// Functions and programs are not mixed: a module is lowered once.
// expected-error @+1 {{mixes tensor-level functions with fplan programs: lower a module once}}
module @mixed {
  fplan.program @main {
  }
  func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}

// -----

// Collectives become fplan.collective instructions (no kernel), and the module's mesh
// becomes the plan's.
// CHECK-LABEL: module @collectives
//  CHECK-SAME: fplan.mesh = {dp = 2 : i64, ep = 1 : i64}
//   CHECK-NOT: fusion.mesh
//       CHECK: fplan.program @f
//       CHECK:   fplan.collective all_reduce @[[G:[^ ]+]] -> @[[R:[^ ]+]] axis "dp"
//  CHECK-NEXT:   fplan.collective all_gather @[[S:[^ ]+]] -> @[[F:[^ ]+]] axis "dp"
//  CHECK-NEXT:   fplan.collective reduce_scatter @[[R]] -> @{{[^ ]+}} axis "dp" reduce avg
//   CHECK-NOT:   fplan.launch
module @collectives attributes {fusion.mesh = {dp = 2 : i64, ep = 1 : i64}} {
  func.func @f(%g: tensor<8x4xf32>, %s: tensor<4x4xf32>) -> (tensor<8x4xf32>, tensor<8x4xf32>, tensor<4x4xf32>) {
    %r = fusion.all_reduce %g {axis = "dp", reduce = "sum"} : tensor<8x4xf32>
    %f = fusion.all_gather %s {axis = "dp"} : (tensor<4x4xf32>) -> tensor<8x4xf32>
    %h = fusion.reduce_scatter %r {axis = "dp", reduce = "avg"} : (tensor<8x4xf32>) -> tensor<4x4xf32>
    return %r, %f, %h : tensor<8x4xf32>, tensor<8x4xf32>, tensor<4x4xf32>
  }
}

// -----

// normuon_update runs as GEMMs: normuon_norm (row sums of G̃²), normuon_prepare (momentum in
// place, X0 = bf16(Y/‖Y‖) [..., p, q]), five Newton–Schulz steps of batched GEMMs over the
// X0/X1 ping-pong (A = X Xᵀ; B = copy of A, then c·A A + b·B; X' = copy of X, then
// B X + a·X'), then normuon_rows (NorMuon: v in place, row sums of O) and normuon_finish (w in
// place). A matrix with m > n iterates on G̃ᵀ: [8, 4] matrices give X [2, 4, 8]. Muon
// (normalize = 0) has no normuon_rows; its finish reads the norm's row sums (unused) and v
// (unchanged). Other update ops stay single launches.
// CHECK-LABEL: module @normuon
//   CHECK-DAG: fplan.buffer @[[SQ:[^ ]*muon_sumsq[^ ]*]] : tensor<4x2xf32> in @transient
//   CHECK-DAG: fplan.buffer @[[X0:[^ ]*muon_x0[^ ]*]] : tensor<4x8xbf16> in @transient
//   CHECK-DAG: fplan.buffer @[[X1:[^ ]*muon_x1[^ ]*]] : tensor<4x8xbf16> in @transient
//   CHECK-DAG: fplan.buffer @[[A:[^ ]*muon_a[^ ]*]] : tensor<4x4xbf16> in @transient
//   CHECK-DAG: fplan.buffer @[[B:[^ ]*muon_b[^ ]*]] : tensor<4x4xbf16> in @transient
//   CHECK-DAG: fplan.buffer @[[RS:[^ ]*muon_rowsums[^ ]*]] : tensor<4x2xf32> in @transient
//   CHECK-DAG: fplan.buffer @[[ESQ:[^ ]*muon_sumsq[^ ]*]] : tensor<2x8x2xf32> in @transient
//   CHECK-DAG: fplan.buffer @[[EX0:[^ ]*muon_x0[^ ]*]] : tensor<2x4x8xbf16> in @transient
//   CHECK-DAG: fplan.buffer @[[EX1:[^ ]*muon_x1[^ ]*]] : tensor<2x4x8xbf16> in @transient
//   CHECK-DAG: fplan.buffer @[[EA:[^ ]*muon_a[^ ]*]] : tensor<2x4x4xbf16> in @transient
//   CHECK-DAG: fplan.buffer @[[EB:[^ ]*muon_b[^ ]*]] : tensor<2x4x4xbf16> in @transient
//   CHECK-DAG: fplan.kernel @[[NORM:normuon_norm[^ ]*]] kind "normuon_norm" params {beta1 = 0.949999988 : f32, nesterov = 1 : i64}
//   CHECK-DAG: fplan.kernel @[[PREP:normuon_prepare[^ ]*]] kind "normuon_prepare" params {beta1 = 0.949999988 : f32, nesterov = 1 : i64}
//   CHECK-DAG: fplan.kernel @[[COPY:reshape[^ ]*]] kind "reshape"
//   CHECK-DAG: fplan.kernel @[[ROWS:normuon_rows[^ ]*]] kind "normuon_rows" params {beta2 = 0.949999988 : f32}
//   CHECK-DAG: fplan.kernel @[[FIN:normuon_finish[^ ]*]] kind "normuon_finish" params {cautious_wd = 1 : i64, cautious_wd_mode = "grad", lr = 2.000000e-02 : f32, normalize = 1 : i64, weight_decay = 1.000000e-01 : f32}
//   CHECK-DAG: fplan.kernel @[[EFIN:normuon_finish[^ ]*]] kind "normuon_finish" params {cautious_wd = 0 : i64, cautious_wd_mode = "grad", lr = 2.000000e-02 : f32, normalize = 0 : i64, weight_decay = 0.000000e+00 : f32}
//   CHECK-NOT: kind "normuon_update"
//       CHECK: fplan.program @step
//  CHECK-NEXT:   fplan.launch @[[NORM]] ins [@[[G:[^ ]+]], @[[CTL:[^ ]+]], @w.muon_m] outs [@[[SQ]]]
//  CHECK-NEXT:   fplan.launch @[[PREP]] ins [@[[G]], @[[CTL]], @w.muon_m, @[[SQ]]] outs [@w.muon_m, @[[X0]]]
//  CHECK-NEXT:   fplan.gemm @[[X0]], @[[X0]] -> @[[A]] transpose_b
//  CHECK-NEXT:   fplan.launch @[[COPY]] ins [@[[A]]] outs [@[[B]]]
//  CHECK-NEXT:   fplan.gemm @[[A]], @[[A]] -> @[[B]] {alpha = 2.031500e+00 : f32, beta = -4.775000e+00 : f32}
//  CHECK-NEXT:   fplan.launch @[[COPY]] ins [@[[X0]]] outs [@[[X1]]]
//  CHECK-NEXT:   fplan.gemm @[[B]], @[[X0]] -> @[[X1]] {beta = 3.444500e+00 : f32}
//  CHECK-NEXT:   fplan.gemm @[[X1]], @[[X1]] -> @[[A]] transpose_b
//  CHECK-NEXT:   fplan.launch @[[COPY]] ins [@[[A]]] outs [@[[B]]]
//  CHECK-NEXT:   fplan.gemm @[[A]], @[[A]] -> @[[B]] {alpha = 2.031500e+00 : f32, beta = -4.775000e+00 : f32}
//  CHECK-NEXT:   fplan.launch @[[COPY]] ins [@[[X1]]] outs [@[[X0]]]
//  CHECK-NEXT:   fplan.gemm @[[B]], @[[X1]] -> @[[X0]] {beta = 3.444500e+00 : f32}
// Steps 3 to 5 alternate the same way; the fifth writes X1.
//       CHECK:   fplan.gemm @[[B]], @[[X0]] -> @[[X1]] {beta = 3.444500e+00 : f32}
//       CHECK:   fplan.gemm @[[B]], @[[X1]] -> @[[X0]] {beta = 3.444500e+00 : f32}
//       CHECK:   fplan.gemm @[[B]], @[[X0]] -> @[[X1]] {beta = 3.444500e+00 : f32}
//  CHECK-NEXT:   fplan.launch @[[ROWS]] ins [@[[X1]], @[[CTL]], @w.muon_v] outs [@w.muon_v, @[[RS]]]
//  CHECK-NEXT:   fplan.launch @[[FIN]] ins [@[[X1]], @[[G]], @[[CTL]], @w, @w.muon_v, @[[RS]]] outs [@w]
//  CHECK-NEXT:   fplan.launch @{{normuon_norm[^ ]*}} ins [@[[EG:[^ ]+]], @[[CTL]], @e.muon_m] outs [@[[ESQ]]]
//  CHECK-NEXT:   fplan.launch @{{normuon_prepare[^ ]*}} ins [@[[EG]], @[[CTL]], @e.muon_m, @[[ESQ]]] outs [@e.muon_m, @[[EX0]]]
//  CHECK-NEXT:   fplan.gemm @[[EX0]], @[[EX0]] -> @[[EA]] transpose_b
//  CHECK-NEXT:   fplan.launch @{{reshape[^ ]*}} ins [@[[EA]]] outs [@[[EB]]]
//  CHECK-NEXT:   fplan.gemm @[[EA]], @[[EA]] -> @[[EB]] {alpha = 2.031500e+00 : f32, beta = -4.775000e+00 : f32}
//  CHECK-NEXT:   fplan.launch @{{reshape[^ ]*}} ins [@[[EX0]]] outs [@[[EX1]]]
//  CHECK-NEXT:   fplan.gemm @[[EB]], @[[EX0]] -> @[[EX1]] {beta = 3.444500e+00 : f32}
//       CHECK:   fplan.gemm @[[EB]], @[[EX1]] -> @[[EX0]] {beta = 3.444500e+00 : f32}
//       CHECK:   fplan.gemm @[[EB]], @[[EX0]] -> @[[EX1]] {beta = 3.444500e+00 : f32}
//       CHECK:   fplan.gemm @[[EB]], @[[EX1]] -> @[[EX0]] {beta = 3.444500e+00 : f32}
//       CHECK:   fplan.gemm @[[EB]], @[[EX0]] -> @[[EX1]] {beta = 3.444500e+00 : f32}
//  CHECK-NEXT:   fplan.launch @[[EFIN]] ins [@[[EX1]], @[[EG]], @[[CTL]], @e, @e.muon_v, @[[ESQ]]] outs [@e]
//  CHECK-NEXT:   fplan.launch @{{adamw_update[^ ]*}} ins [@{{[^ ]+}}, @[[CTL]], @b, @b.adam_m, @b.adam_v] outs [@b, @b.adam_m, @b.adam_v]
//  CHECK-NEXT: }
module @normuon {
  fusion.parameter @w : tensor<4x8xf32> {init = "normal", std = 0.1 : f64, optimizer = "normuon", weight_decay}
  fusion.parameter @w.muon_m : tensor<4x8xf32> {init = "zeros", optimizer = "state"}
  fusion.parameter @w.muon_v : tensor<4xf32> {init = "zeros", optimizer = "state"}
  fusion.parameter @e : tensor<2x8x4xf32> {init = "normal", std = 0.1 : f64, optimizer = "normuon"}
  fusion.parameter @e.muon_m : tensor<2x8x4xf32> {init = "zeros", optimizer = "state"}
  fusion.parameter @e.muon_v : tensor<2x8xf32> {init = "zeros", optimizer = "state"}
  fusion.parameter @b : tensor<8xf32> {init = "ones", optimizer = "adamw"}
  fusion.parameter @b.adam_m : tensor<8xf32> {init = "zeros", optimizer = "state"}
  fusion.parameter @b.adam_v : tensor<8xf32> {init = "zeros", optimizer = "state"}
  func.func @step(%gw: tensor<4x8xf32>, %ge: tensor<2x8x4xf32>, %gb: tensor<8xf32>, %ctl: tensor<8xf32>) {
    fusion.normuon_update %gw, %ctl state [@w, @w.muon_m, @w.muon_v] {lr = 0.02 : f32, beta1 = 0.95 : f32, beta2 = 0.95 : f32, weight_decay = 0.1 : f32, nesterov = 1 : i64, normalize = 1 : i64, cautious_wd = 1 : i64, cautious_wd_mode = "grad"} : tensor<4x8xf32>, tensor<8xf32>
    fusion.normuon_update %ge, %ctl state [@e, @e.muon_m, @e.muon_v] {lr = 0.02 : f32, beta1 = 0.95 : f32, beta2 = 0.95 : f32, weight_decay = 0.0 : f32, nesterov = 1 : i64, normalize = 0 : i64, cautious_wd = 0 : i64, cautious_wd_mode = "grad"} : tensor<2x8x4xf32>, tensor<8xf32>
    fusion.adamw_update %gb, %ctl state [@b, @b.adam_m, @b.adam_v] {lr = 3.0e-3 : f32, beta1 = 0.9 : f32, beta2 = 0.95 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32, cautious_wd = 1 : i64, cautious_wd_mode = "grad", cautious_update = 0 : i64} : tensor<8xf32>, tensor<8xf32>
    return
  }
}
