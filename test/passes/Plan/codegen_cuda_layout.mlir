// RUN: fusion-opt %s --split-input-file --fplan-codegen-cuda --verify-diagnostics | FileCheck %s

// slice and slice_grad: the buffers viewed as [outer, full, inner] around `dim`; the
// arguments are (outer, full, size, start, inner), and the grid covers the copied 16-byte
// units (i32 rows of 2048: 6 x 512 units; bf16 rows of 160 with inner 1: 2-byte units).
// CHECK-LABEL: module @slices
//       CHECK:   fplan.kernel @s kind "slice" {{.*}}source = "{{.*}}#include \22fusion/layout.cuh\22{{.*}}extern \22C\22 __global__ void fusion_slice(const int32_t* x, int32_t* out, int64_t outer, int64_t full, int64_t size, int64_t start, int64_t inner) {\0A  fk::slice(x, out, outer, full, size, start, inner);{{.*}}"}
//       CHECK:   fplan.kernel @g kind "slice_grad" {{.*}}source = "{{.*}}fusion_slice_grad(const __nv_bfloat16* dy, __nv_bfloat16* dx, int64_t outer, int64_t full, int64_t size, int64_t start, int64_t inner) {\0A  fk::sliceGrad(dy, dx, outer, full, size, start, inner);{{.*}}"}
//       CHECK:   fplan.launch @s ins [@x] outs [@y] grid [48, 1, 1] block [256, 1, 1] args [6, 2049, 2048, 1, 1]
//       CHECK:   fplan.launch @g ins [@r] outs [@q] grid [22, 1, 1] block [256, 1, 1] args [35, 160, 32, 128, 1]
module @slices {
  fplan.arena @a size(131072)
  fplan.buffer @x : tensor<6x2049xi32> in @a at 0
  fplan.buffer @y : tensor<6x2048xi32> in @a at 65536
  fplan.buffer @q : tensor<5x7x160xbf16> in @a at 0
  fplan.buffer @r : tensor<5x7x32xbf16> in @a at 65536
  fplan.kernel @s kind "slice" params {dim = 1 : i64, start = 1 : i64, size = 2048 : i64}
  fplan.kernel @g kind "slice_grad" params {dim = 2 : i64, start = 128 : i64}
  fplan.program @main {
    fplan.launch @s ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @g ins [@r] outs [@q] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// concat: one grid row per input (blockIdx.y picks it, at the running position along dim);
// arguments (outer, inner, total, size_0, ...). A single input is named x.
// CHECK-LABEL: module @concats
//       CHECK:   fplan.kernel @c kind "concat" {{.*}}source = "{{.*}}fusion_concat(const float* x0, const float* x1, const float* x2, float* out, int64_t outer, int64_t inner, int64_t total, int64_t size0, int64_t size1, int64_t size2) {\0A  switch (blockIdx.y) {\0A  case 0: fk::concatPart(x0, out, outer, inner, total, size0, 0); break;\0A  case 1: fk::concatPart(x1, out, outer, inner, total, size1, size0); break;\0A  case 2: fk::concatPart(x2, out, outer, inner, total, size2, size0 + size1); break;\0A  }{{.*}}"}
//       CHECK:   fplan.kernel @one kind "concat" {{.*}}source = "{{.*}}fusion_concat(const int32_t* x, int32_t* out, int64_t outer, int64_t inner, int64_t total, int64_t size0) {\0A  switch (blockIdx.y) {\0A  case 0: fk::concatPart(x, out, outer, inner, total, size0, 0); break;{{.*}}"}
//       CHECK:   fplan.launch @c ins [@a0, @a1, @a2] outs [@o] grid [1, 3, 1] block [256, 1, 1] args [3, 20, 16, 5, 2, 9]
//       CHECK:   fplan.launch @one ins [@i] outs [@j] grid [1, 1, 1] block [256, 1, 1] args [1, 10, 4, 4]
module @concats {
  fplan.arena @a size(65536)
  fplan.buffer @a0 : tensor<3x5x20xf32> in @a at 0
  fplan.buffer @a1 : tensor<3x2x20xf32> in @a at 4096
  fplan.buffer @a2 : tensor<3x9x20xf32> in @a at 8192
  fplan.buffer @o : tensor<3x16x20xf32> in @a at 16384
  fplan.buffer @i : tensor<4x10xi32> in @a at 32768
  fplan.buffer @j : tensor<4x10xi32> in @a at 36864
  fplan.kernel @c kind "concat" params {dim = 1 : i64}
  fplan.kernel @one kind "concat" params {dim = 0 : i64}
  fplan.program @main {
    fplan.launch @c ins [@a0, @a1, @a2] outs [@o] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @one ins [@i] outs [@j] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// transpose and broadcast: one strided gather. The launch drops size-1 dimensions, merges
// contiguous neighbours and passes (rank, size_0..7, stride_0..7), innermost first: the
// model's [B, T, H, 96] -> [B, H, T, 96] keeps 4 dimensions (the 96 contiguous ones move as
// 16-byte units); a 2-D transpose reads with stride 50; [B, T, 32] -> [B, T, 4, 32] is
// (32, stride 1) x (4, stride 0) x (B·T, stride 32); a scalar broadcast is one stride-0
// dimension.
// CHECK-LABEL: module @gathers
//       CHECK:   fplan.kernel @t kind "transpose" {{.*}}source = "{{.*}}fusion_transpose(const __nv_bfloat16* x, __nv_bfloat16* out, int64_t rank, int64_t size0, {{.*}}, int64_t size7, int64_t stride0, {{.*}}, int64_t stride7) {\0A  const int64_t sizes[8] = {size0, size1, size2, size3, size4, size5, size6, size7};\0A  const int64_t strides[8] = {stride0, stride1, stride2, stride3, stride4, stride5, stride6, stride7};\0A  fk::gather(x, out, (int)rank, sizes, strides);{{.*}}"}
//       CHECK:   fplan.kernel @b kind "broadcast" {{.*}}source = "{{.*}}fusion_broadcast(const __nv_bfloat16* x, __nv_bfloat16* out, int64_t rank, {{.*}}fk::gather(x, out, (int)rank, sizes, strides);{{.*}}"}
//       CHECK:   fplan.launch @t ins [@k] outs [@kt] grid [6, 1, 1] block [256, 1, 1] args [4, 96, 16, 4, 2, 1, 1, 1, 1, 1, 384, 96, 6144, 0, 0, 0, 0]
//       CHECK:   fplan.launch @t2 ins [@m] outs [@mt] grid [6, 1, 1] block [256, 1, 1] args [2, 30, 50, 1, 1, 1, 1, 1, 1, 50, 1, 0, 0, 0, 0, 0, 0]
//       CHECK:   fplan.launch @b ins [@v] outs [@vb] grid [2, 1, 1] block [256, 1, 1] args [3, 32, 4, 32, 1, 1, 1, 1, 1, 1, 0, 32, 0, 0, 0, 0, 0]
//       CHECK:   fplan.launch @b0 ins [@s] outs [@sb] grid [4, 1, 1] block [256, 1, 1] args [1, 1000, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
module @gathers {
  fplan.arena @a size(1048576)
  fplan.buffer @k : tensor<2x16x4x96xbf16> in @a at 0
  fplan.buffer @kt : tensor<2x4x16x96xbf16> in @a at 65536
  fplan.buffer @v : tensor<2x16x32xbf16> in @a at 131072
  fplan.buffer @vb : tensor<2x16x4x32xbf16> in @a at 196608
  fplan.buffer @s : tensor<f32> in @a at 262144
  fplan.buffer @sb : tensor<1000xf32> in @a at 262400
  fplan.buffer @m : tensor<30x50xf32> in @a at 327680
  fplan.buffer @mt : tensor<50x30xf32> in @a at 393216
  fplan.kernel @t kind "transpose" params {perm = array<i64: 0, 2, 1, 3>}
  fplan.kernel @t2 kind "transpose" params {perm = array<i64: 1, 0>}
  fplan.kernel @b kind "broadcast" params {dims = array<i64: 0, 1, 3>}
  fplan.kernel @b0 kind "broadcast" params {dims = array<i64>}
  fplan.program @main {
    fplan.launch @t ins [@k] outs [@kt] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @t2 ins [@m] outs [@mt] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @b ins [@v] outs [@vb] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @b0 ins [@s] outs [@sb] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// sum: block (TX outputs, TY reducing threads), fp64 partials in TX·TY·8 bytes of shared
// memory; args (numOut, R, K2, keptSize_0..3, keptStride_0..3, redSize_0..3, redStride_0..3).
// A full sum of 300000 elements splits over 18 blocks in grid.y; [16, 2048, 32] -> [32] puts
// the 32 outputs in x and 64 splits in y; the model's head sum [.., 4, 32] -> [.., 32] is one
// block per 32 outputs; dims [0, 2] of [3, 37, 20] are two reduced groups (20 contiguous, 3
// at stride 740).
// CHECK-LABEL: module @sums
//       CHECK:   fplan.kernel @all kind "sum" {{.*}}source = "{{.*}}__global__ void __launch_bounds__(1024) fusion_sum(const float* x, float* out, int64_t numOut, int64_t R, int64_t K2, int64_t keptSize0, {{.*}}, int64_t redStride3) {\0A{{.*}}  fk::sum(x, out, numOut, R, K2, keptSize, keptStride, redSize, redStride);{{.*}}"}
//       CHECK:   fplan.kernel @heads kind "sum" {{.*}}source = "{{.*}}fusion_sum(const __nv_bfloat16* x, __nv_bfloat16* out, {{.*}}"}
//       CHECK:   fplan.launch @all ins [@big] outs [@scalar] grid [1, 18, 1] block [1, 1024, 1] smem 8192 args [1, 300000, 1, 1, 1, 1, 1, 0, 0, 0, 0, 300000, 1, 1, 1, 1, 0, 0, 0]
//       CHECK:   fplan.launch @all ins [@g] outs [@gs] grid [1, 64, 1] block [32, 32, 1] smem 8192 args [32, 32768, 32, 1, 1, 1, 1, 0, 0, 0, 0, 32768, 1, 1, 1, 32, 0, 0, 0]
//       CHECK:   fplan.launch @heads ins [@h] outs [@hs] grid [320, 1, 1] block [32, 4, 1] smem 1024 args [10240, 4, 32, 320, 1, 1, 1, 128, 0, 0, 0, 4, 1, 1, 1, 32, 0, 0, 0]
//       CHECK:   fplan.launch @outer ins [@m] outs [@ms] grid [19, 1, 1] block [2, 64, 1] smem 1024 args [37, 60, 1, 37, 1, 1, 1, 20, 0, 0, 0, 20, 3, 1, 1, 1, 740, 0, 0]
module @sums {
  fplan.arena @a size(8388608)
  fplan.buffer @big : tensor<1000x300xf32> in @a at 0
  fplan.buffer @scalar : tensor<f32> in @a at 1200128
  fplan.buffer @h : tensor<16x20x4x32xbf16> in @a at 1310720
  fplan.buffer @hs : tensor<16x20x32xbf16> in @a at 1441792
  fplan.buffer @g : tensor<16x2048x32xf32> in @a at 2097152
  fplan.buffer @gs : tensor<32xf32> in @a at 6291456
  fplan.buffer @m : tensor<3x37x20xf32> in @a at 6295552
  fplan.buffer @ms : tensor<37xf32> in @a at 6307840
  fplan.kernel @all kind "sum" params {dims = array<i64: 0, 1>}
  fplan.kernel @heads kind "sum" params {dims = array<i64: 2>}
  fplan.kernel @outer kind "sum" params {dims = array<i64: 0, 2>}
  fplan.program @main {
    fplan.launch @all ins [@big] outs [@scalar] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @all ins [@g] outs [@gs] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @heads ins [@h] outs [@hs] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @outer ins [@m] outs [@ms] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// embedding: a grid-stride gather of 16-byte units, args (count, V, D). embedding_grad
// (bench-1gpu's shapes): blocks of 1024 threads (one per column) own 20 vocabulary rows of
// fp64 accumulators (160 KiB) plus a 32 KiB token list; rows of 1100 columns take two
// column slices in grid.y. args (count, V, D, rows per block).
// CHECK-LABEL: module @embeddings
//       CHECK:   fplan.kernel @e kind "embedding" {entry = "fusion_embedding", source = "{{.*}}fusion_embedding(const float* table, const int32_t* ids, float* out, int64_t count, int64_t vocab, int64_t dim) {\0A  fk::embedding(table, ids, out, count, vocab, dim);{{.*}}"}
//       CHECK:   fplan.kernel @eg kind "embedding_grad" {entry = "fusion_embedding_grad", source = "{{.*}}__global__ void __launch_bounds__(1024) fusion_embedding_grad(const int32_t* ids, const float* dy, float* dtable, int64_t count, int64_t vocab, int64_t dim, int64_t rowsPerBlock) {\0A  fk::embeddingGrad(ids, dy, dtable, count, vocab, dim, rowsPerBlock);{{.*}}"}
//       CHECK:   fplan.kernel @eg2 kind "embedding_grad" {{.*}}fusion_embedding_grad(const int64_t* ids, const __nv_bfloat16* dy, float* dtable, {{.*}}"}
//       CHECK:   fplan.launch @e ins [@table, @ids] outs [@x] grid [32768, 1, 1] block [256, 1, 1] args [32768, 50304, 1024]
//       CHECK:   fplan.launch @eg ins [@ids, @x] outs [@dtable] grid [2516, 1, 1] block [1024, 1, 1] smem 196740 args [32768, 50304, 1024, 20]
//       CHECK:   fplan.launch @eg2 ins [@ids64, @dys] outs [@dts] grid [30, 2, 1] block [1024, 1, 1] smem 41092 args [21, 30, 1100, 1]
module @embeddings {
  fplan.arena @a size(268435456)
  fplan.buffer @table : tensor<50304x1024xf32> in @a at 0
  fplan.buffer @ids : tensor<16x2048xi32> in @a at 206045184
  fplan.buffer @x : tensor<16x2048x1024xf32> in @a at 0
  fplan.buffer @dtable : tensor<50304x1024xf32> in @a at 0
  fplan.buffer @ids64 : tensor<3x7xi64> in @a at 206045184
  fplan.buffer @dys : tensor<3x7x1100xbf16> in @a at 206176256
  fplan.buffer @dts : tensor<30x1100xf32> in @a at 206307328
  fplan.kernel @e kind "embedding"
  fplan.kernel @eg kind "embedding_grad"
  fplan.kernel @eg2 kind "embedding_grad"
  fplan.program @main {
    fplan.launch @e ins [@table, @ids] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @eg ins [@ids, @x] outs [@dtable] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @eg2 ins [@ids64, @dys] outs [@dts] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A slice needs its window.
module @slice_without_size {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<4x10xf32> in @a at 0
  fplan.buffer @y : tensor<4x3xf32> in @a at 256
  // expected-error @+1 {{kernel @s (kind 'slice'): needs the integer attribute 'size'}}
  fplan.kernel @s kind "slice" params {dim = 1 : i64, start = 2 : i64}
  fplan.program @main {
    fplan.launch @s ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @slice_outside {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<4x10xf32> in @a at 0
  fplan.buffer @y : tensor<4x3xf32> in @a at 256
  fplan.kernel @s kind "slice" params {dim = 1 : i64, start = 8 : i64, size = 3 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @s (kind 'slice'): slice [8, 8+3) does not fit dimension 1 of size 10 of input 0}}
    fplan.launch @s ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @slice_bad_dim {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<4x10xf32> in @a at 0
  fplan.buffer @y : tensor<4x3xf32> in @a at 256
  fplan.kernel @s kind "slice" params {dim = 2 : i64, start = 0 : i64, size = 3 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @s (kind 'slice'): attribute 'dim' = 2 is outside [0, 2) for input 0 of shape [4, 10]}}
    fplan.launch @s ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @slice_wrong_output {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<4x10xf32> in @a at 0
  fplan.buffer @y : tensor<3x3xf32> in @a at 256
  fplan.kernel @s kind "slice" params {dim = 1 : i64, start = 0 : i64, size = 3 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @s (kind 'slice'): output 0 must have shape [4, 3], got [3, 3]}}
    fplan.launch @s ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Copies keep the element type.
module @slice_grad_converts {
  fplan.arena @a size(4096)
  fplan.buffer @dy : tensor<4x3xbf16> in @a at 0
  fplan.buffer @dx : tensor<4x10xf32> in @a at 256
  // expected-error @+1 {{kernel @g (kind 'slice_grad'): input 0 is bf16 but output 0 is f32; the kind copies bits and keeps the element type}}
  fplan.kernel @g kind "slice_grad" params {dim = 1 : i64, start = 0 : i64}
  fplan.program @main {
    fplan.launch @g ins [@dy] outs [@dx] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @slice_grad_rank {
  fplan.arena @a size(4096)
  fplan.buffer @dy : tensor<12xf32> in @a at 0
  fplan.buffer @dx : tensor<4x10xf32> in @a at 256
  fplan.kernel @g kind "slice_grad" params {dim = 1 : i64, start = 0 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @g (kind 'slice_grad'): input 0 (dy) has rank 1 but output 0 (dx) has rank 2}}
    fplan.launch @g ins [@dy] outs [@dx] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @concat_mismatch {
  fplan.arena @a size(4096)
  fplan.buffer @p : tensor<4x3xf32> in @a at 0
  fplan.buffer @q : tensor<5x2xf32> in @a at 256
  fplan.buffer @o : tensor<4x5xf32> in @a at 512
  fplan.kernel @c kind "concat" params {dim = 1 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @c (kind 'concat'): input 1 of shape [5, 2] must match output 0 [4, 5] in every dimension but 1}}
    fplan.launch @c ins [@p, @q] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @concat_total {
  fplan.arena @a size(4096)
  fplan.buffer @p : tensor<4x3xf32> in @a at 0
  fplan.buffer @q : tensor<4x2xf32> in @a at 256
  fplan.buffer @o : tensor<4x6xf32> in @a at 512
  fplan.kernel @c kind "concat" params {dim = 1 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @c (kind 'concat'): output 0 must have size 5 (the inputs' sum) at dimension 1, got 6}}
    fplan.launch @c ins [@p, @q] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @concat_types {
  fplan.arena @a size(4096)
  fplan.buffer @p : tensor<4x3xf32> in @a at 0
  fplan.buffer @q : tensor<4x2xbf16> in @a at 256
  fplan.buffer @o : tensor<4x5xf32> in @a at 512
  // expected-error @+1 {{kernel @c (kind 'concat'): input 1 is bf16 but output 0 is f32}}
  fplan.kernel @c kind "concat" params {dim = 1 : i64}
  fplan.program @main {
    fplan.launch @c ins [@p, @q] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @transpose_not_permutation {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<2x3x4xf32> in @a at 0
  fplan.buffer @y : tensor<3x2x4xf32> in @a at 256
  fplan.kernel @t kind "transpose" params {perm = array<i64: 1, 1, 2>}
  fplan.program @main {
    // expected-error @+1 {{kernel @t (kind 'transpose'): attribute 'perm' [1, 1, 2] is not a permutation of 0..2}}
    fplan.launch @t ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @transpose_wrong_output {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<2x3x4xf32> in @a at 0
  fplan.buffer @y : tensor<2x3x4xf32> in @a at 256
  fplan.kernel @t kind "transpose" params {perm = array<i64: 1, 0, 2>}
  fplan.program @main {
    // expected-error @+1 {{kernel @t (kind 'transpose'): output 0 must have shape [3, 2, 4], got [2, 3, 4]}}
    fplan.launch @t ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Nine dimensions that no merge can join: more than the gather's eight.
module @transpose_rank_nine {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<2x2x2x2x2x2x2x2x2xf32> in @a at 0
  fplan.buffer @y : tensor<2x2x2x2x2x2x2x2x2xf32> in @a at 2048
  fplan.kernel @t kind "transpose" params {perm = array<i64: 8, 7, 6, 5, 4, 3, 2, 1, 0>}
  fplan.program @main {
    // expected-error @+1 {{kernel @t (kind 'transpose'): output of shape [2, 2, 2, 2, 2, 2, 2, 2, 2] still has 9 dimensions after merging contiguous ones; at most 8 are supported}}
    fplan.launch @t ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @broadcast_unsorted {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<3x4xf32> in @a at 0
  fplan.buffer @y : tensor<4x2x3xf32> in @a at 256
  fplan.kernel @b kind "broadcast" params {dims = array<i64: 2, 0>}
  fplan.program @main {
    // expected-error @+1 {{kernel @b (kind 'broadcast'): attribute 'dims' [2, 0] must be strictly increasing}}
    fplan.launch @b ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @broadcast_wrong_size {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<3x4xf32> in @a at 0
  fplan.buffer @y : tensor<3x2x5xf32> in @a at 256
  fplan.kernel @b kind "broadcast" params {dims = array<i64: 0, 2>}
  fplan.program @main {
    // expected-error @+1 {{kernel @b (kind 'broadcast'): output 0 must have size 4 at dimension 2 (input dimension 1, attribute 'dims' [0, 2]), got 5}}
    fplan.launch @b ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @broadcast_without_dims {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<3xf32> in @a at 0
  fplan.buffer @y : tensor<2x3xf32> in @a at 256
  // expected-error @+1 {{kernel @b (kind 'broadcast'): needs the integer list attribute 'dims'}}
  fplan.kernel @b kind "broadcast"
  fplan.program @main {
    fplan.launch @b ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// sum reads floats only.
module @sum_of_ints {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<4x3xi32> in @a at 0
  fplan.buffer @y : tensor<3xf32> in @a at 256
  // expected-error @+1 {{kernel @s (kind 'sum'): input 0 must be a float buffer (f32, bf16, f16)}}
  fplan.kernel @s kind "sum" params {dims = array<i64: 0>}
  fplan.program @main {
    fplan.launch @s ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @sum_wrong_output {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<4x3xf32> in @a at 0
  fplan.buffer @y : tensor<4xf32> in @a at 256
  fplan.kernel @s kind "sum" params {dims = array<i64: 0>}
  fplan.program @main {
    // expected-error @+1 {{kernel @s (kind 'sum'): output 0 must have shape [3], got [4]}}
    fplan.launch @s ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @sum_dim_outside {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<4x3xf32> in @a at 0
  fplan.buffer @y : tensor<4xf32> in @a at 256
  fplan.kernel @s kind "sum" params {dims = array<i64: 2>}
  fplan.program @main {
    // expected-error @+1 {{kernel @s (kind 'sum'): attribute 'dims' [2] has entry 2 outside [0, 2)}}
    fplan.launch @s ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @sum_rank_nine {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<2x2x2x2x2x2x2x2x2xf32> in @a at 0
  fplan.buffer @y : tensor<f32> in @a at 2048
  fplan.kernel @s kind "sum" params {dims = array<i64: 0, 1, 2, 3, 4, 5, 6, 7, 8>}
  fplan.program @main {
    // expected-error @+1 {{kernel @s (kind 'sum'): input 0 has rank 9; at most 8 is supported}}
    fplan.launch @s ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @embedding_float_ids {
  fplan.arena @a size(4096)
  fplan.buffer @t : tensor<10x4xf32> in @a at 0
  fplan.buffer @i : tensor<3xf32> in @a at 256
  fplan.buffer @o : tensor<3x4xf32> in @a at 512
  // expected-error @+1 {{kernel @e (kind 'embedding'): input 1 must be an index buffer (i32, i64)}}
  fplan.kernel @e kind "embedding"
  fplan.program @main {
    fplan.launch @e ins [@t, @i] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @embedding_wrong_output {
  fplan.arena @a size(4096)
  fplan.buffer @t : tensor<10x4xf32> in @a at 0
  fplan.buffer @i : tensor<3xi32> in @a at 256
  fplan.buffer @o : tensor<3x5xf32> in @a at 512
  fplan.kernel @e kind "embedding"
  fplan.program @main {
    // expected-error @+1 {{kernel @e (kind 'embedding'): output 0 must have shape [3, 4], got [3, 5]}}
    fplan.launch @e ins [@t, @i] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @embedding_table_rank {
  fplan.arena @a size(4096)
  fplan.buffer @t : tensor<40xf32> in @a at 0
  fplan.buffer @i : tensor<3xi32> in @a at 256
  fplan.buffer @o : tensor<3x4xf32> in @a at 512
  fplan.kernel @e kind "embedding"
  fplan.program @main {
    // expected-error @+1 {{kernel @e (kind 'embedding'): input 0 (table) must have rank 2, got rank 1}}
    fplan.launch @e ins [@t, @i] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// embedding_grad accumulates into an f32 table, as on the CPU backend.
module @embedding_grad_bf16_table {
  fplan.arena @a size(4096)
  fplan.buffer @i : tensor<3xi32> in @a at 0
  fplan.buffer @dy : tensor<3x4xf32> in @a at 256
  fplan.buffer @dt : tensor<10x4xbf16> in @a at 512
  // expected-error @+1 {{kernel @g (kind 'embedding_grad'): output 0 (dtable) must be f32, got bf16}}
  fplan.kernel @g kind "embedding_grad"
  fplan.program @main {
    fplan.launch @g ins [@i, @dy] outs [@dt] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @embedding_grad_wrong_dy {
  fplan.arena @a size(4096)
  fplan.buffer @i : tensor<3xi32> in @a at 0
  fplan.buffer @dy : tensor<4x4xf32> in @a at 256
  fplan.buffer @dt : tensor<10x4xf32> in @a at 512
  fplan.kernel @g kind "embedding_grad"
  fplan.program @main {
    // expected-error @+1 {{kernel @g (kind 'embedding_grad'): input 1 (dy) must have shape [3, 4], got [4, 4]}}
    fplan.launch @g ins [@i, @dy] outs [@dt] grid [1, 1, 1] block [1, 1, 1]
  }
}
