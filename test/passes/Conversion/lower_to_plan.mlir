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
