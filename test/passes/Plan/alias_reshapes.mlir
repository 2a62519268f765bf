// RUN: fusion-opt %s --split-input-file --fplan-alias-reshapes | FileCheck %s
// RUN: fusion-opt %s --split-input-file --fplan-alias-reshapes --fusion-plan-memory | FileCheck %s --check-prefix=PLACED

// A reshape of a dying activation and a reshape of that view (x -> y -> z, read by silu and
// exp) become views of x: no launch is left, both name their root x, and
// fusion-plan-memory puts them at x's offset and keeps x alive until z's last read.
// CHECK-LABEL: module @chain
//   CHECK-DAG: fplan.buffer @y : tensor<4x8xf32> in @act at 256 {fplan.view_of = @x}
//   CHECK-DAG: fplan.buffer @z : tensor<32xf32> in @act at 512 {fplan.view_of = @x}
// The reshape kernel has no launch left: it is gone too.
//   CHECK-NOT: kind "reshape"
//       CHECK: fplan.program @main
//  CHECK-NEXT:   fplan.launch @fill ins [] outs [@x]
//  CHECK-NEXT:   fplan.launch @silu ins [@y] outs [@a]
//  CHECK-NEXT:   fplan.launch @exp ins [@z] outs [@b]
//   CHECK-NOT:   @reshape
// PLACED-LABEL: module @chain
//   PLACED-DAG: fplan.buffer @x : tensor<32xf32> in @act at [[X:[0-9]+]]
//   PLACED-DAG: fplan.buffer @y : tensor<4x8xf32> in @act at [[X]] {fplan.view_of = @x}
//   PLACED-DAG: fplan.buffer @z : tensor<32xf32> in @act at [[X]] {fplan.view_of = @x}
// a (born at silu) may not take x's bytes: x lives on through z's read.
//   PLACED-NOT: fplan.buffer @a : tensor<32xf32> in @act at [[X]]{{$}}
module @chain {
  fplan.arena @act size(4096)
  fplan.buffer @x : tensor<32xf32> in @act at 0
  fplan.buffer @y : tensor<4x8xf32> in @act at 256
  fplan.buffer @z : tensor<32xf32> in @act at 512
  fplan.buffer @a : tensor<4x8xf32> in @act at 768
  fplan.buffer @b : tensor<32xf32> in @act at 1024
  fplan.kernel @fill kind "fill" params {value = 1.0 : f32, step = 0.5 : f32}
  fplan.kernel @reshape kind "reshape"
  fplan.kernel @silu kind "silu"
  fplan.kernel @exp kind "exp"
  fplan.program @main outputs {a = @a, b = @b} {
    fplan.launch @fill ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @reshape ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @silu ins [@y] outs [@a] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @reshape ins [@y] outs [@z] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp ins [@z] outs [@b] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Copies stay copies where a view would read other bytes: the output is written again (the
// NorMuon lowering's beta seed), the root is written after the reshape, the output is a
// program binding, the buffers sit in a persistent arena, the element types differ.
// CHECK-LABEL: module @copies
//   CHECK-NOT: fplan.view_of
//       CHECK: fplan.launch @reshape ins [@x] outs [@seed]
//       CHECK: fplan.launch @reshape ins [@x] outs [@early]
//       CHECK: fplan.launch @reshape ins [@x] outs [@out]
//       CHECK: fplan.launch @reshape ins [@p] outs [@q]
//       CHECK: fplan.launch @reshape ins [@x] outs [@xi]
module @copies {
  fplan.arena @params persistent size(1024)
  fplan.arena @act size(4096)
  fplan.buffer @p : tensor<32xf32> in @params at 0
  fplan.buffer @q : tensor<4x8xf32> in @params at 256
  fplan.buffer @x : tensor<4x8xf32> in @act at 0
  fplan.buffer @seed : tensor<4x8xf32> in @act at 256
  fplan.buffer @early : tensor<32xf32> in @act at 512
  fplan.buffer @out : tensor<32xf32> in @act at 768
  fplan.buffer @xi : tensor<32xi32> in @act at 1024
  fplan.buffer @y : tensor<32xf32> in @act at 1280
  fplan.buffer @w : tensor<8x8xf32> in @act at 1536
  fplan.kernel @fill kind "fill" params {value = 1.0 : f32, step = 0.5 : f32}
  fplan.kernel @reshape kind "reshape"
  fplan.kernel @exp kind "exp"
  fplan.program @main inputs {w = @w} outputs {out = @out, q = @q, y = @y, xi = @xi} {
    fplan.launch @fill ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @reshape ins [@x] outs [@seed] grid [1, 1, 1] block [1, 1, 1]
    fplan.gemm @x, @w -> @seed {beta = 1.0 : f32}
    fplan.launch @reshape ins [@x] outs [@early] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp ins [@seed] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp ins [@early] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @reshape ins [@x] outs [@out] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @reshape ins [@p] outs [@q] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @reshape ins [@x] outs [@xi] grid [1, 1, 1] block [1, 1, 1]
  }
}
