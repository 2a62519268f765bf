// RUN: fusion-opt %s --split-input-file --fusion-plan-memory --verify-diagnostics | FileCheck %s
// RUN: not fusion-opt %s --split-input-file --fusion-plan-memory=memory-budget=2000 2>&1 | FileCheck %s --check-prefix=BUDGET

// Hand-computed: five 1 KiB buffers.   x: [-1,0] (input)   a = silu(x): [0,2], in place of x
// b = exp(a): [1,3]   c = add(a, b): [2,3], in place of a   d = mul(b, c): [3,end], in place of b
// Live bytes per instruction: 1024, 1024, 2048, 2048, 2048, 1024 -> peak 2048, and the
// placement needs exactly that: x, a, c at 0; b, d at 1024.
// CHECK-LABEL: module @chain
//   CHECK-DAG: fplan.arena @act size(2048)
//   CHECK-DAG: fplan.buffer @x : tensor<256xf32> in @act at 0
//   CHECK-DAG: fplan.buffer @a : tensor<256xf32> in @act at 0
//   CHECK-DAG: fplan.buffer @b : tensor<256xf32> in @act at 1024
//   CHECK-DAG: fplan.buffer @c : tensor<256xf32> in @act at 0
//   CHECK-DAG: fplan.buffer @d : tensor<256xf32> in @act at 1024
//   CHECK-DAG: fplan.buffer @w : tensor<256xf32> in @params at 0
//       CHECK: fplan.program @main inputs {x = @x} outputs {d = @d} attributes {fplan.peak_live_bytes = 2048 : i64}
// BUDGET: error: 'fplan.program' op needs 3072 bytes of arenas, over the memory budget of 2000 bytes; the live peak is 2048 bytes at instruction 1
// BUDGET: note: live at the peak: @a ('tensor<256xf32>', 1024 bytes)
// BUDGET: note: live at the peak: @b ('tensor<256xf32>', 1024 bytes)
module @chain {
  fplan.arena @params persistent size(1024)
  fplan.arena @act size(8192)
  fplan.buffer @w : tensor<256xf32> in @params at 0
  fplan.buffer @x : tensor<256xf32> in @act at 0
  fplan.buffer @a : tensor<256xf32> in @act at 1024
  fplan.buffer @b : tensor<256xf32> in @act at 2048
  fplan.buffer @c : tensor<256xf32> in @act at 3072
  fplan.buffer @d : tensor<256xf32> in @act at 4096
  fplan.kernel @silu kind "silu"
  fplan.kernel @exp kind "exp"
  fplan.kernel @add kind "add"
  fplan.kernel @mul kind "mul"
  fplan.program @main inputs {x = @x} outputs {d = @d} {
    fplan.launch @silu ins [@x] outs [@a] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp ins [@a] outs [@b] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @add ins [@a, @b] outs [@c] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @mul ins [@b, @c] outs [@d] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Not in place: the GEMM is not elementwise, so its output never overwrites an input, and a
// buffer named by two programs keeps its own bytes (here @s, at the end of the arena).
// CHECK-LABEL: module @no_reuse
//   CHECK-DAG: fplan.arena @act size(3072)
//   CHECK-DAG: fplan.buffer @s : tensor<256xf32> in @act at 0
//   CHECK-DAG: fplan.buffer @p : tensor<16x16xf32> in @act at 1024
//   CHECK-DAG: fplan.buffer @q : tensor<16x16xf32> in @act at 2048
module @no_reuse {
  fplan.arena @act size(8192)
  fplan.buffer @s : tensor<256xf32> in @act at 4096
  fplan.buffer @p : tensor<16x16xf32> in @act at 0
  fplan.buffer @q : tensor<16x16xf32> in @act at 1024
  fplan.kernel @fill kind "fill"
  fplan.program @first {
    fplan.launch @fill ins [] outs [@s] grid [1, 1, 1] block [1, 1, 1]
  }
  fplan.program @second {
    fplan.launch @fill ins [] outs [@p] grid [1, 1, 1] block [1, 1, 1]
    fplan.gemm @p, @p -> @q
    fplan.launch @fill ins [] outs [@s] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Not in place either, though the kinds have one element count: a transpose moves elements
// to other positions, and a cast from f32 to bf16 would write output element i over input
// element i/2 (a parallel kernel races). The same-size cast and the add do reuse their input.
// CHECK-LABEL: module @not_in_place_kinds
//   CHECK-DAG: fplan.buffer @x : tensor<16x16xf32> in @act at 0
//   CHECK-DAG: fplan.buffer @t : tensor<16x16xf32> in @act at 1024
//   CHECK-DAG: fplan.buffer @h : tensor<16x16xbf16> in @act at 0
//   CHECK-DAG: fplan.buffer @g : tensor<16x16xbf16> in @act at 0
//   CHECK-DAG: fplan.buffer @y : tensor<16x16xbf16> in @act at 0
module @not_in_place_kinds {
  fplan.arena @act size(8192)
  fplan.buffer @x : tensor<16x16xf32> in @act at 0
  fplan.buffer @t : tensor<16x16xf32> in @act at 1024
  fplan.buffer @h : tensor<16x16xbf16> in @act at 2048
  fplan.buffer @g : tensor<16x16xbf16> in @act at 3072
  fplan.buffer @y : tensor<16x16xbf16> in @act at 4096
  fplan.kernel @fill kind "fill"
  fplan.kernel @transpose kind "transpose" params {perm = array<i64: 1, 0>}
  fplan.kernel @cast kind "cast"
  fplan.kernel @cast16 kind "cast"
  fplan.kernel @add kind "add"
  fplan.program @main outputs {y = @y} {
    fplan.launch @fill ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @transpose ins [@x] outs [@t] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @cast ins [@t] outs [@h] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @cast16 ins [@h] outs [@g] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @add ins [@g, @g] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A collective's send buffer lives until its result is first read: @y, written while the
// all_reduce may still be in flight (fplan-schedule-comm), does not take @g's bytes, though
// @g's last named use is the collective. @x is an output, so four buffers are live at @y's
// birth: 4096 bytes (3072 if @y could reuse @g's bytes).
// CHECK-LABEL: module @collective_send_lives
//       CHECK: fplan.arena @act size(4096)
module @collective_send_lives attributes {fplan.mesh = {dp = 2 : i64}} {
  fplan.arena @act size(16384)
  fplan.buffer @x : tensor<256xf32> in @act at 12288
  fplan.buffer @g : tensor<256xf32> in @act at 0
  fplan.buffer @r : tensor<256xf32> in @act at 1024
  fplan.buffer @y : tensor<256xf32> in @act at 2048
  fplan.buffer @w : tensor<256xf32> in @act at 3072
  fplan.kernel @k kind "exp"
  fplan.kernel @a kind "add"
  fplan.program @main inputs {x = @x} outputs {w = @w, x2 = @x} {
    fplan.launch @k ins [@x] outs [@g] grid [1, 1, 1] block [1, 1, 1]
    fplan.collective all_reduce @g -> @r axis "dp"
    fplan.launch @k ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @a ins [@r, @y] outs [@w] grid [1, 1, 1] block [1, 1, 1]
  }
}
