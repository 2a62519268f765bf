// RUN: fusion-opt %s --split-input-file --fplan-fuse-elementwise | FileCheck %s
// RUN: fusion-opt %s --split-input-file --fplan-fuse-elementwise --fusion-plan-memory | FileCheck %s --check-prefix=PLACED

// The step's residual chain: a bf16 activation widened, added to an f32 residual, narrowed
// again. One launch is left; the intermediates round to their buffers' types (cast.f32,
// add.f32, cast.bf16), lose their buffers, and the folded kernels go.
// CHECK-LABEL: module @cast_add_cast
//   CHECK-NOT: fplan.buffer @xf
//   CHECK-NOT: fplan.buffer @s
//   CHECK-NOT: kind "cast"
//   CHECK-NOT: kind "add"
//       CHECK: fplan.kernel @fused_elementwise kind "fused_elementwise" params {expr = "%0 = cast.f32 %in0; %1 = add.f32 %0, %in1; %2 = cast.bf16 %1; out0 = %2"}
//       CHECK: fplan.program @main
//  CHECK-NEXT:   fplan.launch @fill ins [] outs [@x]
//  CHECK-NEXT:   fplan.launch @fill2 ins [] outs [@r]
//  CHECK-NEXT:   fplan.launch @fused_elementwise ins [@x, @r] outs [@y] grid [1, 1, 1] block [1, 1, 1]
//  CHECK-NEXT: }
// The removed intermediates take no bytes: the arena holds x and r, and y overwrites x in
// place (element i of every input is read before element i of the output is written).
// PLACED-LABEL: module @cast_add_cast
//       PLACED: fplan.arena @act size(512)
//       PLACED: fplan.buffer @x : tensor<4x8xbf16> in @act at 0
//       PLACED: fplan.buffer @y : tensor<4x8xbf16> in @act at 0
module @cast_add_cast {
  fplan.arena @act size(8192)
  fplan.buffer @x : tensor<4x8xbf16> in @act at 0
  fplan.buffer @xf : tensor<4x8xf32> in @act at 256
  fplan.buffer @r : tensor<4x8xf32> in @act at 512
  fplan.buffer @s : tensor<4x8xf32> in @act at 768
  fplan.buffer @y : tensor<4x8xbf16> in @act at 1024
  fplan.kernel @fill kind "fill" params {value = 1.0 : f32, step = 0.5 : f32}
  fplan.kernel @fill2 kind "fill" params {value = -3.0 : f32, step = 0.25 : f32}
  fplan.kernel @cast kind "cast"
  fplan.kernel @add kind "add"
  fplan.program @main outputs {y = @y} {
    fplan.launch @fill ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @cast ins [@x] outs [@xf] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill2 ins [] outs [@r] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @add ins [@xf, @r] outs [@s] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @cast ins [@s] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A gate ending in a program output, reading a program input and scaled by a constant (the
// factor prints as the shortest decimal that reads back as the same double); the mul kernel
// is still launched elsewhere, so it stays.
// CHECK-LABEL: module @gate_to_output
//       CHECK: fplan.kernel @mul kind "mul"
//       CHECK: fplan.kernel @fused_elementwise kind "fused_elementwise" params {expr = "%0 = silu.f32 %in0; %1 = mul.f32 %0, %in1; %2 = scale.f32 %1, 0.125; out0 = %2"}
//       CHECK: fplan.program @main inputs {g = @g} outputs {o = @o}
//  CHECK-NEXT:   fplan.launch @fill ins [] outs [@u]
//  CHECK-NEXT:   fplan.launch @fused_elementwise ins [@g, @u] outs [@o]
//  CHECK-NEXT:   fplan.launch @mul ins [@o, @o] outs [@p]
//  CHECK-NEXT: }
module @gate_to_output {
  fplan.arena @act size(8192)
  fplan.buffer @g : tensor<64xf32> in @act at 0
  fplan.buffer @u : tensor<64xf32> in @act at 256
  fplan.buffer @a : tensor<64xf32> in @act at 512
  fplan.buffer @b : tensor<64xf32> in @act at 768
  fplan.buffer @o : tensor<64xf32> in @act at 1024
  fplan.buffer @p : tensor<64xf32> in @act at 1280
  fplan.kernel @fill kind "fill" params {value = 1.0 : f32}
  fplan.kernel @silu kind "silu"
  fplan.kernel @mul kind "mul"
  fplan.kernel @scale kind "scale" params {factor = 0.125 : f32}
  fplan.program @main inputs {g = @g} outputs {o = @o} {
    fplan.launch @fill ins [] outs [@u] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @silu ins [@g] outs [@a] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @mul ins [@a, @u] outs [@b] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @scale ins [@b] outs [@o] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @mul ins [@o, @o] outs [@p] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A tree of three inputs: (a + b) * sigmoid(c), in bf16 (every value rounds to bf16). The add
// runs right before the mul; folding the sigmoid moves its read of c past the add, which
// keeps c (12 bytes) alive where s (12 bytes) no longer is: the peak cannot rise.
// CHECK-LABEL: module @tree
//       CHECK: params {expr = "%0 = add.bf16 %in0, %in1; %1 = sigmoid.bf16 %in2; %2 = mul.bf16 %0, %1; out0 = %2"}
//       CHECK: fplan.program @main
//  CHECK-NEXT:   fplan.launch @fill ins [] outs [@a]
//  CHECK-NEXT:   fplan.launch @fill ins [] outs [@b]
//  CHECK-NEXT:   fplan.launch @fill ins [] outs [@c]
//  CHECK-NEXT:   fplan.launch @fused_elementwise ins [@a, @b, @c] outs [@o]
//  CHECK-NEXT: }
module @tree {
  fplan.arena @act size(8192)
  fplan.buffer @a : tensor<2x3xbf16> in @act at 0
  fplan.buffer @b : tensor<2x3xbf16> in @act at 256
  fplan.buffer @c : tensor<6xbf16> in @act at 512
  fplan.buffer @t : tensor<2x3xbf16> in @act at 768
  fplan.buffer @s : tensor<6xbf16> in @act at 1024
  fplan.buffer @o : tensor<3x2xbf16> in @act at 1280
  fplan.kernel @fill kind "fill" params {value = 1.0 : f32, step = 0.5 : f32}
  fplan.kernel @add kind "add"
  fplan.kernel @sigmoid kind "sigmoid"
  fplan.kernel @mul kind "mul"
  fplan.program @main outputs {o = @o} {
    fplan.launch @fill ins [] outs [@a] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill ins [] outs [@b] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill ins [] outs [@c] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @sigmoid ins [@c] outs [@s] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @add ins [@a, @b] outs [@t] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @mul ins [@t, @s] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The same tree with the add first: folding it would move its reads of a and b (24 bytes)
// past the sigmoid, where only t (12 bytes) is freed, so the memory peak could rise (an
// early forward op folded into a backward reader kept 19.5 GB more alive on bench-1gpu).
// Only the sigmoid, right before the mul, folds.
// CHECK-LABEL: module @tree_peak
//       CHECK: fplan.program @main
//  CHECK-NEXT:   fplan.launch @fill ins [] outs [@a]
//  CHECK-NEXT:   fplan.launch @fill ins [] outs [@b]
//  CHECK-NEXT:   fplan.launch @fill ins [] outs [@c]
//  CHECK-NEXT:   fplan.launch @add ins [@a, @b] outs [@t]
//  CHECK-NEXT:   fplan.launch @fused_elementwise{{[.0-9]*}} ins [@t, @c] outs [@o]
//  CHECK-NEXT: }
module @tree_peak {
  fplan.arena @act size(8192)
  fplan.buffer @a : tensor<2x3xbf16> in @act at 0
  fplan.buffer @b : tensor<2x3xbf16> in @act at 256
  fplan.buffer @c : tensor<6xbf16> in @act at 512
  fplan.buffer @t : tensor<2x3xbf16> in @act at 768
  fplan.buffer @s : tensor<6xbf16> in @act at 1024
  fplan.buffer @o : tensor<3x2xbf16> in @act at 1280
  fplan.kernel @fill kind "fill" params {value = 1.0 : f32, step = 0.5 : f32}
  fplan.kernel @add kind "add"
  fplan.kernel @sigmoid kind "sigmoid"
  fplan.kernel @mul kind "mul"
  fplan.program @main outputs {o = @o} {
    fplan.launch @fill ins [] outs [@a] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill ins [] outs [@b] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill ins [] outs [@c] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @add ins [@a, @b] outs [@t] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @sigmoid ins [@c] outs [@s] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @mul ins [@t, @s] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// t is read twice (neg and add): exp stays a launch of its own; neg (read once) folds into
// the add, which reads t once as %in0.
// CHECK-LABEL: module @read_twice
//       CHECK: params {expr = "%0 = neg.f32 %in0; %1 = add.f32 %in0, %0; out0 = %1"}
//       CHECK: fplan.program @main
//  CHECK-NEXT:   fplan.launch @fill ins [] outs [@a]
//  CHECK-NEXT:   fplan.launch @exp ins [@a] outs [@t]
//  CHECK-NEXT:   fplan.launch @fused_elementwise ins [@t] outs [@v]
//  CHECK-NEXT: }
module @read_twice {
  fplan.arena @act size(8192)
  fplan.buffer @a : tensor<16xf32> in @act at 0
  fplan.buffer @t : tensor<16xf32> in @act at 256
  fplan.buffer @u : tensor<16xf32> in @act at 512
  fplan.buffer @v : tensor<16xf32> in @act at 768
  fplan.kernel @fill kind "fill" params {value = 1.0 : f32}
  fplan.kernel @exp kind "exp"
  fplan.kernel @neg kind "neg"
  fplan.kernel @add kind "add"
  fplan.program @main outputs {v = @v} {
    fplan.launch @fill ins [] outs [@a] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp ins [@a] outs [@t] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @neg ins [@t] outs [@u] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @add ins [@t, @u] outs [@v] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Nothing fuses: t feeds a non-elementwise kind (sum, another element count); a program
// output (o) and a program input (i) are never intermediates; an i32 cast is not a float
// op; a persistent buffer (w) keeps its bytes; a view's root (x) keeps its launch.
// CHECK-LABEL: module @no_fusion
//   CHECK-NOT: fused_elementwise
//       CHECK: fplan.program @main
//  CHECK-NEXT:   fplan.launch @exp ins [@a] outs [@t]
//  CHECK-NEXT:   fplan.launch @sum ins [@t] outs [@total]
//  CHECK-NEXT:   fplan.launch @exp ins [@a] outs [@o]
//  CHECK-NEXT:   fplan.launch @neg ins [@o] outs [@n]
//  CHECK-NEXT:   fplan.launch @exp ins [@a] outs [@i]
//  CHECK-NEXT:   fplan.launch @neg ins [@i] outs [@m]
//  CHECK-NEXT:   fplan.launch @cast ins [@k] outs [@kf]
//  CHECK-NEXT:   fplan.launch @neg ins [@kf] outs [@kn]
//  CHECK-NEXT:   fplan.launch @exp ins [@a] outs [@w]
//  CHECK-NEXT:   fplan.launch @neg ins [@w] outs [@wn]
//  CHECK-NEXT:   fplan.launch @exp ins [@a] outs [@x]
//  CHECK-NEXT:   fplan.launch @neg ins [@xv] outs [@xn]
//  CHECK-NEXT: }
module @no_fusion {
  fplan.arena @act size(16384)
  fplan.arena @state persistent size(256)
  fplan.buffer @a : tensor<16xf32> in @act at 0
  fplan.buffer @t : tensor<16xf32> in @act at 256
  fplan.buffer @total : tensor<f32> in @act at 512
  fplan.buffer @o : tensor<16xf32> in @act at 768
  fplan.buffer @n : tensor<16xf32> in @act at 1024
  fplan.buffer @i : tensor<16xf32> in @act at 1280
  fplan.buffer @m : tensor<16xf32> in @act at 1536
  fplan.buffer @k : tensor<16xi32> in @act at 1792
  fplan.buffer @kf : tensor<16xf32> in @act at 2048
  fplan.buffer @kn : tensor<16xf32> in @act at 2304
  fplan.buffer @w : tensor<16xf32> in @state at 0
  fplan.buffer @wn : tensor<16xf32> in @act at 2560
  fplan.buffer @x : tensor<16xf32> in @act at 2816
  fplan.buffer @xv : tensor<4x4xf32> in @act at 2816 {fplan.view_of = @x}
  fplan.buffer @xn : tensor<4x4xf32> in @act at 3072
  fplan.kernel @exp kind "exp"
  fplan.kernel @neg kind "neg"
  fplan.kernel @cast kind "cast"
  fplan.kernel @sum kind "sum" params {dims = array<i64: 0>}
  fplan.program @main inputs {a = @a, i = @i, k = @k} outputs {o = @o, total = @total, n = @n, m = @m, kn = @kn, wn = @wn, xn = @xn} {
    fplan.launch @exp ins [@a] outs [@t] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @sum ins [@t] outs [@total] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp ins [@a] outs [@o] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @neg ins [@o] outs [@n] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp ins [@a] outs [@i] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @neg ins [@i] outs [@m] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @cast ins [@k] outs [@kf] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @neg ins [@kf] outs [@kn] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp ins [@a] outs [@w] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @neg ins [@w] outs [@wn] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp ins [@a] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @neg ins [@xv] outs [@xn] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A write to the producer's input between producer and consumer (fill rewrites a after exp
// read it): folding exp into neg would read the new a, so both stay. A record between them
// (another stream may wait for it and then write the input) also keeps them apart.
// CHECK-LABEL: module @input_rewritten
//   CHECK-NOT: fused_elementwise
//       CHECK: fplan.program @main
//  CHECK-NEXT:   fplan.launch @fill ins [] outs [@a]
//  CHECK-NEXT:   fplan.launch @exp ins [@a] outs [@t]
//  CHECK-NEXT:   fplan.launch @fill ins [] outs [@a]
//  CHECK-NEXT:   fplan.launch @neg ins [@t] outs [@u]
//  CHECK-NEXT:   fplan.launch @exp ins [@a] outs [@t2]
//  CHECK-NEXT:   fplan.record 0
//  CHECK-NEXT:   fplan.launch @neg ins [@t2] outs [@u2]
module @input_rewritten {
  fplan.arena @act size(8192)
  fplan.buffer @a : tensor<16xf32> in @act at 0
  fplan.buffer @t : tensor<16xf32> in @act at 256
  fplan.buffer @u : tensor<16xf32> in @act at 512
  fplan.buffer @t2 : tensor<16xf32> in @act at 768
  fplan.buffer @u2 : tensor<16xf32> in @act at 1024
  fplan.kernel @fill kind "fill" params {value = 1.0 : f32}
  fplan.kernel @exp kind "exp"
  fplan.kernel @neg kind "neg"
  fplan.program @main outputs {u = @u, u2 = @u2} {
    fplan.launch @fill ins [] outs [@a] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp ins [@a] outs [@t] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill ins [] outs [@a] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @neg ins [@t] outs [@u] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp ins [@a] outs [@t2] grid [1, 1, 1] block [1, 1, 1]
    fplan.record 0
    fplan.launch @neg ins [@t2] outs [@u2] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A cast that only converts an rms_norm's f32 output folds into the norm: the norm writes the
// bf16 buffer directly through a kernel of its new type signature (the norm rounds each fp32
// value once on the store, as the cast did), and the f32 intermediate goes. The second norm's
// output is read twice (cast and mul): it keeps its cast.
// CHECK-LABEL: module @norm_cast
//   CHECK-NOT: fplan.buffer @n :
//       CHECK: fplan.kernel @norm.to_bf16 kind "rms_norm" params {eps = 9.99999997E-7 : f32}
//       CHECK: fplan.program @main
//  CHECK-NEXT:   fplan.launch @norm.to_bf16 ins [@x, @w] outs [@nb]
//  CHECK-NEXT:   fplan.launch @norm ins [@x, @w] outs [@m]
//  CHECK-NEXT:   fplan.launch @to_bf16 ins [@m] outs [@mb]
//  CHECK-NEXT:   fplan.launch @mul ins [@m, @m] outs [@sq]
//  CHECK-NEXT: }
module @norm_cast {
  fplan.arena @act size(8192)
  fplan.buffer @x : tensor<4x16xf32> in @act at 0
  fplan.buffer @w : tensor<16xf32> in @act at 256
  fplan.buffer @n : tensor<4x16xf32> in @act at 512
  fplan.buffer @nb : tensor<4x16xbf16> in @act at 768
  fplan.buffer @m : tensor<4x16xf32> in @act at 1024
  fplan.buffer @mb : tensor<4x16xbf16> in @act at 1280
  fplan.buffer @sq : tensor<4x16xf32> in @act at 1536
  fplan.kernel @norm kind "rms_norm" params {eps = 1.0e-6 : f32}
  fplan.kernel @to_bf16 kind "cast"
  fplan.kernel @mul kind "mul"
  fplan.program @main inputs {x = @x, w = @w} outputs {nb = @nb, mb = @mb, sq = @sq} {
    fplan.launch @norm ins [@x, @w] outs [@n] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@n] outs [@nb] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @norm ins [@x, @w] outs [@m] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@m] outs [@mb] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @mul ins [@m, @m] outs [@sq] grid [1, 1, 1] block [1, 1, 1]
  }
}
