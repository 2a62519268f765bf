// RUN: fusion-opt %s | fusion-opt | FileCheck %s
// RUN: fusion-opt %s --mlir-print-op-generic | fusion-opt | FileCheck %s

// A two-stream program: every instruction kind, arenas, buffers and kernels.

// CHECK: module attributes {fplan.mesh = {dp = 2 : i64}}
module attributes {fplan.mesh = {dp = 2 : i64}} {
  // CHECK-DAG: fplan.arena @params persistent size(4096)
  // CHECK-DAG: fplan.arena @act size(8192)
  fplan.arena @params persistent size(4096)
  fplan.arena @act size(8192)
  // CHECK-DAG: fplan.buffer @w : tensor<8x16xf32> in @params at 0
  // CHECK-DAG: fplan.buffer @x : tensor<4x16xf32> in @act at 0
  fplan.buffer @w : tensor<8x16xf32> in @params at 0
  fplan.buffer @g : tensor<16xf32> in @params at 512
  fplan.buffer @x : tensor<4x16xf32> in @act at 0
  fplan.buffer @n : tensor<4x16xf32> in @act at 256
  fplan.buffer @y : tensor<4x8xf32> in @act at 512
  fplan.buffer @full : tensor<8x8xf32> in @act at 640
  fplan.buffer @nb : tensor<4x16xbf16> in @act at 1024
  fplan.buffer @wb : tensor<8x16xbf16> in @act at 1280
  // CHECK-DAG: fplan.kernel @fill0 kind "fill" params {step = 5.000000e-01 : f32, value = 1.000000e+00 : f32}
  // CHECK-DAG: fplan.kernel @norm0 kind "rms_norm" params {eps = 9.99999997E-7 : f32}
  fplan.kernel @fill0 kind "fill" params {value = 1.0 : f32, step = 0.5 : f32}
  fplan.kernel @norm0 kind "rms_norm" params {eps = 1.0e-6 : f32}

  // CHECK-LABEL: fplan.program @main inputs {x = @x} outputs {y = @y}
  //       CHECK:   fplan.launch @fill0 ins [] outs [@x] grid [1, 1, 1] block [64, 1, 1] args [64]
  //       CHECK:   fplan.launch @norm0 ins [@x, @g] outs [@n] grid [4, 1, 1] block [32, 1, 1] smem 128 args [4, 16]
  //       CHECK:   fplan.gemm @n, @w -> @y transpose_b
  //       CHECK:   fplan.gemm @nb, @wb -> @y transpose_b {beta = 1.000000e+00 : f32}
  //       CHECK:   fplan.record 0
  //       CHECK:   fplan.wait 0 stream 1
  //       CHECK:   fplan.collective all_gather @y -> @full axis "dp" stream 1
  //       CHECK:   fplan.collective all_reduce @y -> @y axis "dp" reduce avg stream 1
  fplan.program @main inputs {x = @x} outputs {y = @y} {
    fplan.launch @fill0 ins [] outs [@x] grid [1, 1, 1] block [64, 1, 1] args [64]
    fplan.launch @norm0 ins [@x, @g] outs [@n] grid [4, 1, 1] block [32, 1, 1] smem 128 args [4, 16]
    fplan.gemm @n, @w -> @y transpose_b
    // bf16 operands, f32 result (gemm_c3), accumulated into c.
    fplan.gemm @nb, @wb -> @y transpose_b {beta = 1.0 : f32}
    fplan.record 0
    fplan.wait 0 stream 1
    fplan.collective all_gather @y -> @full axis "dp" stream 1
    fplan.collective all_reduce @y -> @y axis "dp" reduce avg stream 1
  }
}
