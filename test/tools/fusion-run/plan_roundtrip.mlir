// fplan IR -> .fplan -> fusion-run --dump-plan: every piece of the IR reaches the plan.

// RUN: fusionc %s -o %t.fplan
// RUN: fusion-run %t.fplan --dump-plan | FileCheck %s
// RUN: fusion-run %t.fplan --program init --program main --print-buffer z --print-limit 4 | FileCheck %s --check-prefix=OUT

// CHECK: "schema_version": 2
// CHECK: "compiler_version": "fusionc
// CHECK: "mesh": [
// CHECK:   "name": "dp",
// CHECK:   "size": 1
// CHECK: "arenas": [
// CHECK:   "name": "params",
// CHECK:   "class": "Persistent",
// CHECK:   "size_bytes": 256
// CHECK:   "name": "act",
// CHECK:   "class": "Transient",
// CHECK: "buffers": [
// CHECK:   "name": "w",
// CHECK:   "dtype": "F32",
// CHECK:   "shape": [
// CHECK-NEXT: 4,
// CHECK-NEXT: 8
// CHECK:   "loc": "loc(\"{{.*}}plan_roundtrip.mlir\":62:3)"
// CHECK: "kernels": [
// CHECK:   "name": "fill_w",
// CHECK:   "kind": "fill",
// CHECK:   "attrs": [
// CHECK:       "name": "step",
// CHECK:       "type": "Float",
// CHECK:       "f": 0.5
// CHECK: "programs": [
// CHECK:   "name": "init",
// CHECK:   "name": "main",
// CHECK:   "op_type": "Launch",
// CHECK:   "op_type": "Gemm",
// CHECK:     "m": 2,
// CHECK-NEXT: "n": 4,
// CHECK-NEXT: "k": 8,
// CHECK:     "trans_b": true,
// CHECK:   "op_type": "Record",
// CHECK:   "op_type": "Wait",
// CHECK:   "stream": 1,
// CHECK:   "op_type": "Collective",
// CHECK:     "kind": "AllReduce",
// CHECK:     "axis": "dp",
// CHECK: "inputs": [
// CHECK:   "name": "x",
// CHECK-NEXT: "buffer": 1
// CHECK: "outputs": [
// CHECK:   "name": "z",
// CHECK-NEXT: "buffer": 2
// CHECK: "num_streams": 2,
// CHECK-NEXT: "num_events": 1

// x = [0, 1, ..., 15] as 2x8; w = 0.5 i as 4x8; z = x wᵀ; z[0][0] = Σ_j j · 0.5 j = 70.
// OUT: z f32[2,4] = [70, 182, 294, 406, ...]

module attributes {fplan.mesh = {dp = 1 : i64}} {
  fplan.arena @params persistent size(256)
  fplan.arena @act size(256)
  fplan.buffer @w : tensor<4x8xf32> in @params at 0
  fplan.buffer @x : tensor<2x8xf32> in @act at 0
  fplan.buffer @z : tensor<2x4xf32> in @act at 64
  fplan.buffer @s : tensor<2x4xf32> in @act at 96
  fplan.kernel @fill_w kind "fill" params {value = 0.0 : f32, step = 0.5 : f32}
  fplan.kernel @fill_x kind "fill" params {value = 0.0 : f32, step = 1.0 : f32}
  fplan.program @init {
    fplan.launch @fill_w ins [] outs [@w] grid [1, 1, 1] block [32, 1, 1] args [32]
  }
  fplan.program @main inputs {x = @x} outputs {z = @z} {
    fplan.launch @fill_x ins [] outs [@x] grid [1, 1, 1] block [32, 1, 1] args [16]
    fplan.gemm @x, @w -> @z transpose_b
    fplan.record 0
    fplan.wait 0 stream 1
    fplan.collective all_reduce @z -> @s axis "dp" stream 1
  }
}
