// RUN: fusion-opt %s --split-input-file --fplan-codegen-cuda --verify-diagnostics | FileCheck %s

// causal_conv1d: blocks of (64, 4) threads over (row blocks of 4 segments of S time steps,
// tiles of 256 channels); (B, T, C, K, S) with S = max(16, ceil(T / 8)) up to 128.
// CHECK-LABEL: module @conv
//       CHECK:   fplan.kernel @c kind "causal_conv1d" {entry = "fusion_causal_conv1d", source = "{{.*}}#include \22fusion/gdn.cuh\22{{.*}}extern \22C\22 __global__ void fusion_causal_conv1d(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y, int64_t B, int64_t T, int64_t C, int64_t K, int64_t S) {\0A  fk::causalConv1d(x, w, y, B, T, C, K, S);{{.*}}"}
//       CHECK:   fplan.launch @c ins [@x, @w] outs [@y] grid [2, 1, 1] block [64, 4, 1] args [2, 64, 20, 4, 16]
module @conv {
  fplan.arena @a size(16384)
  fplan.buffer @x : tensor<2x64x20xbf16> in @a at 0
  fplan.buffer @w : tensor<20x4xbf16> in @a at 5120
  fplan.buffer @y : tensor<2x64x20xbf16> in @a at 5376
  fplan.kernel @c kind "causal_conv1d"
  fplan.program @main {
    fplan.launch @c ins [@x, @w] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// causal_conv1d_grad: the geometry of causal_conv1d, __launch_bounds__(256, 2); (B, T, C, K, S);
// dw is f32.
// CHECK-LABEL: module @conv_grad
//       CHECK:   fplan.kernel @c kind "causal_conv1d_grad" {entry = "fusion_causal_conv1d_grad", source = "{{.*}}fusion_causal_conv1d_grad(const __nv_bfloat16* x, const __nv_bfloat16* w, const __nv_bfloat16* dy, __nv_bfloat16* dx, float* dw, int64_t B, int64_t T, int64_t C, int64_t K, int64_t S) {\0A  fk::causalConv1dGrad(x, w, dy, dx, dw, B, T, C, K, S);{{.*}}"}
//       CHECK:   fplan.launch @c ins [@x, @w, @dy] outs [@dx, @dw] grid [2, 1, 1] block [64, 4, 1] args [2, 64, 70, 4, 16]
module @conv_grad {
  fplan.arena @a size(65536)
  fplan.buffer @x : tensor<2x64x70xbf16> in @a at 0
  fplan.buffer @w : tensor<70x4xbf16> in @a at 17920
  fplan.buffer @dy : tensor<2x64x70xbf16> in @a at 18560
  fplan.buffer @dx : tensor<2x64x70xbf16> in @a at 36480
  fplan.buffer @dw : tensor<70x4xf32> in @a at 54400
  fplan.kernel @c kind "causal_conv1d_grad"
  fplan.program @main {
    fplan.launch @c ins [@x, @w, @dy] outs [@dx, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// causal_conv1d_grad at bench-1gpu's shape: S = 128, 4 row blocks per sequence, 16 channel
// tiles (64 x 4096 x 4 dw partials exactly fill the 2^20-double, 8 MiB scratch).
// CHECK-LABEL: module @conv_grad_bench
//       CHECK:   fplan.launch @c ins [@x, @w, @dy] outs [@dx, @dw] grid [64, 16, 1] block [64, 4, 1] args [16, 2048, 4096, 4, 128]
module @conv_grad_bench {
  fplan.arena @a size(805404672)
  fplan.buffer @x : tensor<16x2048x4096xbf16> in @a at 0
  fplan.buffer @w : tensor<4096x4xbf16> in @a at 268435456
  fplan.buffer @dy : tensor<16x2048x4096xbf16> in @a at 268468224
  fplan.buffer @dx : tensor<16x2048x4096xbf16> in @a at 536903680
  fplan.buffer @dw : tensor<4096x4xf32> in @a at 805339136
  fplan.kernel @c kind "causal_conv1d_grad"
  fplan.program @main {
    fplan.launch @c ins [@x, @w, @dy] outs [@dx, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// causal_conv1d_step: one thread per (b, c), the tail updated in place; (B·C, S, C, K).
// CHECK-LABEL: module @conv_step
//       CHECK:   fplan.kernel @c kind "causal_conv1d_step" {entry = "fusion_causal_conv1d_step", source = "{{.*}}fusion_causal_conv1d_step(const float* x, const float* w, const float* tail, float* y, float* tailOut, int64_t n, int64_t S, int64_t C, int64_t K) {\0A  fk::causalConv1dStep(x, w, tail, y, tailOut, n, S, C, K);{{.*}}"}
//       CHECK:   fplan.launch @c ins [@x, @w, @tail] outs [@y, @tail] grid [2, 1, 1] block [256, 1, 1] args [300, 1, 300, 4]
module @conv_step {
  fplan.arena @a size(16384)
  fplan.buffer @x : tensor<1x1x300xf32> in @a at 0
  fplan.buffer @w : tensor<300x4xf32> in @a at 1280
  fplan.buffer @tail : tensor<1x3x300xf32> in @a at 6400
  fplan.buffer @y : tensor<1x1x300xf32> in @a at 10240
  fplan.kernel @c kind "causal_conv1d_step"
  fplan.program @main {
    fplan.launch @c ins [@x, @w, @tail] outs [@y, @tail] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// gated_delta_rule at the bench-1gpu head shape (bf16 q, k, v; d_k = 128, d_h = 64) takes
// the chunked WY kernel: one 256-thread block per (b, h) (two value heads per key head here),
// 174080 bytes of shared memory, the trailing argument 1 selecting it. g and beta stay f32.
// CHECK-LABEL: module @rule
//       CHECK:   fplan.kernel @r kind "gated_delta_rule" params {chunk_size = 64 : i64} {entry = "fusion_gated_delta_rule", source = "{{.*}}extern \22C\22 __global__ void __launch_bounds__(256) fusion_gated_delta_rule(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const float* g, const float* beta, __nv_bfloat16* o, int64_t B, int64_t T, int64_t Hk, int64_t dk, int64_t H, int64_t dh, int64_t L, int64_t rowsPerBlock, int64_t chunked) {\0A  if (chunked)\0A    fk::gatedDeltaChunkForward(q, k, v, g, beta, o, B, T, Hk, H);\0A  else\0A    fk::gatedDeltaForward(q, k, v, g, beta, (const float *)nullptr, o, (float *)nullptr, B, T, Hk, dk, H, dh, L, rowsPerBlock);{{.*}}"}
//       CHECK:   fplan.launch @r ins [@q, @k, @v, @g, @beta] outs [@o] grid [8, 1, 1] block [256, 1, 1] smem 174080 args [2, 100, 2, 128, 4, 64, 8, 0, 1]
module @rule {
  fplan.arena @a size(1048576)
  fplan.buffer @q : tensor<2x100x2x128xbf16> in @a at 0
  fplan.buffer @k : tensor<2x100x2x128xbf16> in @a at 102400
  fplan.buffer @v : tensor<2x100x4x64xbf16> in @a at 204800
  fplan.buffer @g : tensor<2x100x4xf32> in @a at 307200
  fplan.buffer @beta : tensor<2x100x4xf32> in @a at 310400
  fplan.buffer @o : tensor<2x100x4x64xbf16> in @a at 313600
  fplan.kernel @r kind "gated_delta_rule" params {chunk_size = 64 : i64}
  fplan.program @main {
    fplan.launch @r ins [@q, @k, @v, @g, @beta] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// bf16 with a d_k the chunked kernel does not take (96): the recurrence kernel, 8 lanes per
// state row (d_k <= 16·8), 32 rows per 256-thread block, two row blocks per (b, h); 16·(2·96
// + 2·32 + 3) floats of shared memory; the trailing argument 0.
// CHECK-LABEL: module @rule_bf16_recurrence
//       CHECK:   fplan.launch @r ins [@q, @k, @v, @g, @beta] outs [@o] grid [8, 2, 1] block [256, 1, 1] smem 16576 args [2, 100, 2, 96, 4, 64, 8, 32, 0]
module @rule_bf16_recurrence {
  fplan.arena @a size(1048576)
  fplan.buffer @q : tensor<2x100x2x96xbf16> in @a at 0
  fplan.buffer @k : tensor<2x100x2x96xbf16> in @a at 102400
  fplan.buffer @v : tensor<2x100x4x64xbf16> in @a at 204800
  fplan.buffer @g : tensor<2x100x4xf32> in @a at 307200
  fplan.buffer @beta : tensor<2x100x4xf32> in @a at 310400
  fplan.buffer @o : tensor<2x100x4x64xbf16> in @a at 313600
  fplan.kernel @r kind "gated_delta_rule" params {chunk_size = 64 : i64}
  fplan.program @main {
    fplan.launch @r ins [@q, @k, @v, @g, @beta] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// gated_delta_step: the rule's geometry, the f32 state read and written in place.
// CHECK-LABEL: module @step
//       CHECK:   fplan.kernel @s kind "gated_delta_step" {entry = "fusion_gated_delta_step", source = "{{.*}}fusion_gated_delta_step(const float* q, const float* k, const float* v, const float* g, const float* beta, const float* state, float* o, float* stateOut, int64_t B, int64_t T, int64_t Hk, int64_t dk, int64_t H, int64_t dh, int64_t L, int64_t rowsPerBlock) {\0A  fk::gatedDeltaForward(q, k, v, g, beta, state, o, stateOut, B, T, Hk, dk, H, dh, L, rowsPerBlock);{{.*}}"}
//       CHECK:   fplan.launch @s ins [@q, @k, @v, @g, @beta, @state] outs [@o, @state] grid [8, 1, 1] block [32, 1, 1] smem 4288 args [1, 1, 8, 16, 8, 16, 1, 16]
module @step {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x1x8x16xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x8x16xf32> in @a at 512
  fplan.buffer @v : tensor<1x1x8x16xf32> in @a at 1024
  fplan.buffer @g : tensor<1x1x8xf32> in @a at 1536
  fplan.buffer @beta : tensor<1x1x8xf32> in @a at 1792
  fplan.buffer @state : tensor<1x8x16x16xf32> in @a at 2048
  fplan.buffer @o : tensor<1x1x8x16xf32> in @a at 10240
  fplan.kernel @s kind "gated_delta_step"
  fplan.program @main {
    fplan.launch @s ins [@q, @k, @v, @g, @beta, @state] outs [@o, @state] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// gated_delta_rule_grad at the bench-1gpu head shape (bf16 q, k, v, do; d_k = 128, d_h = 64,
// H = H_k) takes the chunked kernel: 256-thread blocks over the 4 (b, h) items, 16 chunk
// checkpoints of 64·128 floats per block (T = 1000; the scratch would hold 1024 slots),
// 225792 bytes of shared memory, the trailing argument 1 selecting it.
// CHECK-LABEL: module @rule_grad
//       CHECK:   fplan.kernel @r kind "gated_delta_rule_grad" params {chunk_size = 64 : i64} {entry = "fusion_gated_delta_rule_grad", source = "{{.*}}__launch_bounds__(512) fusion_gated_delta_rule_grad(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const float* g, const float* beta, const __nv_bfloat16* dout, __nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv, float* dg, float* dbeta, int64_t B, int64_t T, int64_t Hk, int64_t dkDim, int64_t H, int64_t dh, int64_t L, int64_t chunk, int64_t numChunks, int64_t slotFloats, int64_t chunked) {\0A  if (chunked)\0A    fk::gatedDeltaChunkBackward(q, k, v, g, beta, dout, dq, dk, dv, dg, dbeta, B, T, H, numChunks, slotFloats);\0A  else\0A    fk::gatedDeltaBackward(q, k, v, g, beta, dout, dq, dk, dv, dg, dbeta, B, T, Hk, dkDim, H, dh, L, chunk, numChunks, slotFloats);{{.*}}"}
//       CHECK:   fplan.launch @r ins [@q, @k, @v, @g, @beta, @do] outs [@dq, @dk, @dv, @dg, @dbeta] grid [4, 1, 1] block [256, 1, 1] smem 225792 args [2, 1000, 2, 128, 2, 64, 8, 64, 16, 131072, 1]
module @rule_grad {
  fplan.arena @a size(16777216)
  fplan.buffer @q : tensor<2x1000x2x128xbf16> in @a at 0
  fplan.buffer @k : tensor<2x1000x2x128xbf16> in @a at 1048576
  fplan.buffer @v : tensor<2x1000x2x64xbf16> in @a at 2097152
  fplan.buffer @g : tensor<2x1000x2xf32> in @a at 3145728
  fplan.buffer @beta : tensor<2x1000x2xf32> in @a at 3211264
  fplan.buffer @do : tensor<2x1000x2x64xbf16> in @a at 3276800
  fplan.buffer @dq : tensor<2x1000x2x128xbf16> in @a at 4194304
  fplan.buffer @dk : tensor<2x1000x2x128xbf16> in @a at 5242880
  fplan.buffer @dv : tensor<2x1000x2x64xbf16> in @a at 6291456
  fplan.buffer @dg : tensor<2x1000x2xf32> in @a at 7340032
  fplan.buffer @dbeta : tensor<2x1000x2xf32> in @a at 7405568
  fplan.kernel @r kind "gated_delta_rule_grad" params {chunk_size = 64 : i64}
  fplan.program @main {
    fplan.launch @r ins [@q, @k, @v, @g, @beta, @do] outs [@dq, @dk, @dv, @dg, @dbeta] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The same types with d_h = 48 take the recurrence kernel: one block per (b, key head) with
// its 48 rows x 8 lanes = 384 threads; 16 checkpoints plus the 65 states of a chunk make
// (16 + 65)·16·384 = 497664 scratch floats per block; the trailing argument 0.
// CHECK-LABEL: module @rule_grad_bf16_recurrence
//       CHECK:   fplan.launch @r ins [@q, @k, @v, @g, @beta, @do] outs [@dq, @dk, @dv, @dg, @dbeta] grid [4, 1, 1] block [384, 1, 1] smem {{[0-9]+}} args [2, 1000, 2, 128, 2, 48, 8, 64, 16, 497664, 0]
module @rule_grad_bf16_recurrence {
  fplan.arena @a size(16777216)
  fplan.buffer @q : tensor<2x1000x2x128xbf16> in @a at 0
  fplan.buffer @k : tensor<2x1000x2x128xbf16> in @a at 1048576
  fplan.buffer @v : tensor<2x1000x2x48xbf16> in @a at 2097152
  fplan.buffer @g : tensor<2x1000x2xf32> in @a at 3145728
  fplan.buffer @beta : tensor<2x1000x2xf32> in @a at 3211264
  fplan.buffer @do : tensor<2x1000x2x48xbf16> in @a at 3276800
  fplan.buffer @dq : tensor<2x1000x2x128xbf16> in @a at 4194304
  fplan.buffer @dk : tensor<2x1000x2x128xbf16> in @a at 5242880
  fplan.buffer @dv : tensor<2x1000x2x48xbf16> in @a at 6291456
  fplan.buffer @dg : tensor<2x1000x2xf32> in @a at 7340032
  fplan.buffer @dbeta : tensor<2x1000x2xf32> in @a at 7405568
  fplan.kernel @r kind "gated_delta_rule_grad" params {chunk_size = 64 : i64}
  fplan.program @main {
    fplan.launch @r ins [@q, @k, @v, @g, @beta, @do] outs [@dq, @dk, @dv, @dg, @dbeta] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Two value heads per key head: the backward block holds both heads' rows (2·20 rows x 2
// lanes = 80 threads, rounded up to 96).
// CHECK-LABEL: module @rule_grad_gqa
//       CHECK:   fplan.launch @r ins [@q, @k, @v, @g, @beta, @do] outs [@dq, @dk, @dv, @dg, @dbeta] grid [4, 1, 1] block [96, 1, 1] smem 17088 args [2, 45, 2, 24, 4, 20, 2, 16, 3, 23040]
module @rule_grad_gqa {
  fplan.arena @a size(262144)
  fplan.buffer @q : tensor<2x45x2x24xf32> in @a at 0
  fplan.buffer @k : tensor<2x45x2x24xf32> in @a at 17408
  fplan.buffer @v : tensor<2x45x4x20xf32> in @a at 34816
  fplan.buffer @g : tensor<2x45x4xf32> in @a at 64000
  fplan.buffer @beta : tensor<2x45x4xf32> in @a at 65536
  fplan.buffer @do : tensor<2x45x4x20xf32> in @a at 67072
  fplan.buffer @dq : tensor<2x45x2x24xf32> in @a at 96256
  fplan.buffer @dk : tensor<2x45x2x24xf32> in @a at 113664
  fplan.buffer @dv : tensor<2x45x4x20xf32> in @a at 131072
  fplan.buffer @dg : tensor<2x45x4xf32> in @a at 160256
  fplan.buffer @dbeta : tensor<2x45x4xf32> in @a at 161792
  fplan.kernel @r kind "gated_delta_rule_grad" params {chunk_size = 16 : i64}
  fplan.program @main {
    fplan.launch @r ins [@q, @k, @v, @g, @beta, @do] outs [@dq, @dk, @dv, @dg, @dbeta] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// causal_conv1d_grad's dw must be f32.
module @conv_grad_bf16_dw {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<1x8x4xf32> in @a at 0
  fplan.buffer @w : tensor<4x4xf32> in @a at 256
  fplan.buffer @dy : tensor<1x8x4xf32> in @a at 512
  fplan.buffer @dx : tensor<1x8x4xf32> in @a at 768
  fplan.buffer @dw : tensor<4x4xbf16> in @a at 1024
  // expected-error @+1 {{kernel @c (kind 'causal_conv1d_grad'): output 1 (dw) must be f32, got bf16}}
  fplan.kernel @c kind "causal_conv1d_grad"
  fplan.program @main {
    fplan.launch @c ins [@x, @w, @dy] outs [@dx, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Index buffers are not convolved.
module @conv_int_input {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<1x8x4xi32> in @a at 0
  fplan.buffer @w : tensor<4x4xf32> in @a at 256
  fplan.buffer @y : tensor<1x8x4xf32> in @a at 512
  // expected-error @+1 {{kernel @c (kind 'causal_conv1d'): input 0 must be a float buffer (f32, bf16, f16)}}
  fplan.kernel @c kind "causal_conv1d"
  fplan.program @main {
    fplan.launch @c ins [@x, @w] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// More taps than the backward holds in registers.
module @conv_grad_taps {
  fplan.arena @a size(8192)
  fplan.buffer @x : tensor<1x8x4xf32> in @a at 0
  fplan.buffer @w : tensor<4x9xf32> in @a at 256
  fplan.buffer @dy : tensor<1x8x4xf32> in @a at 512
  fplan.buffer @dx : tensor<1x8x4xf32> in @a at 768
  fplan.buffer @dw : tensor<4x9xf32> in @a at 1024
  fplan.kernel @c kind "causal_conv1d_grad"
  fplan.program @main {
    // expected-error @+1 {{kernel @c (kind 'causal_conv1d_grad'): input 1 (w) has 9 taps; the CUDA kernel takes 1 to 8}}
    fplan.launch @c ins [@x, @w, @dy] outs [@dx, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A decode tail of the wrong length.
module @conv_step_tail {
  fplan.arena @a size(8192)
  fplan.buffer @x : tensor<1x1x4xf32> in @a at 0
  fplan.buffer @w : tensor<4x4xf32> in @a at 256
  fplan.buffer @tail : tensor<1x2x4xf32> in @a at 512
  fplan.buffer @y : tensor<1x1x4xf32> in @a at 768
  fplan.kernel @c kind "causal_conv1d_step"
  fplan.program @main {
    // expected-error @+1 {{kernel @c (kind 'causal_conv1d_step'): input 2 (tail) must have shape [1, 3, 4], got [1, 2, 4]}}
    fplan.launch @c ins [@x, @w, @tail] outs [@y, @tail] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// chunk_size is required ...
module @rule_no_chunk {
  fplan.arena @a size(8192)
  fplan.buffer @q : tensor<1x4x1x8xf32> in @a at 0
  fplan.buffer @v : tensor<1x4x1x8xf32> in @a at 256
  fplan.buffer @g : tensor<1x4x1xf32> in @a at 512
  fplan.buffer @o : tensor<1x4x1x8xf32> in @a at 768
  // expected-error @+1 {{kernel @r (kind 'gated_delta_rule'): needs the integer attribute 'chunk_size'}}
  fplan.kernel @r kind "gated_delta_rule"
  fplan.program @main {
    fplan.launch @r ins [@q, @q, @v, @g, @g] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// ... and one of 16, 32, 64, 128.
module @rule_bad_chunk {
  fplan.arena @a size(8192)
  fplan.buffer @q : tensor<1x4x1x8xf32> in @a at 0
  fplan.buffer @v : tensor<1x4x1x8xf32> in @a at 256
  fplan.buffer @g : tensor<1x4x1xf32> in @a at 512
  fplan.buffer @do : tensor<1x4x1x8xf32> in @a at 768
  fplan.buffer @d : tensor<1x4x1x8xf32> in @a at 1024
  fplan.buffer @dg : tensor<1x4x1xf32> in @a at 1280
  // expected-error @+1 {{kernel @r (kind 'gated_delta_rule_grad'): attribute 'chunk_size' must be one of 16, 32, 64, 128, got 48}}
  fplan.kernel @r kind "gated_delta_rule_grad" params {chunk_size = 48 : i64}
  fplan.program @main {
    fplan.launch @r ins [@q, @q, @v, @g, @g, @do] outs [@d, @d, @d, @dg, @dg] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The decode state is f32.
module @step_bf16_state {
  fplan.arena @a size(8192)
  fplan.buffer @q : tensor<1x1x1x8xf32> in @a at 0
  fplan.buffer @g : tensor<1x1x1xf32> in @a at 256
  fplan.buffer @state : tensor<1x1x8x8xbf16> in @a at 512
  fplan.buffer @o : tensor<1x1x1x8xf32> in @a at 768
  // expected-error @+1 {{kernel @s (kind 'gated_delta_step'): input 5 (state) must be f32, got bf16}}
  fplan.kernel @s kind "gated_delta_step"
  fplan.program @main {
    fplan.launch @s ins [@q, @q, @q, @g, @g, @state] outs [@o, @state] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Value heads must be a multiple of the key heads.
module @rule_heads {
  fplan.arena @a size(8192)
  fplan.buffer @q : tensor<1x4x2x8xf32> in @a at 0
  fplan.buffer @v : tensor<1x4x3x8xf32> in @a at 512
  fplan.buffer @g : tensor<1x4x3xf32> in @a at 1024
  fplan.buffer @o : tensor<1x4x3x8xf32> in @a at 1280
  fplan.kernel @r kind "gated_delta_rule" params {chunk_size = 16 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @r (kind 'gated_delta_rule'): input 0 (q) has 2 key heads, which must be >= 1 and divide the 3 value heads}}
    fplan.launch @r ins [@q, @q, @v, @g, @g] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A key dimension wider than a state row of 32 lanes x 16 columns.
module @rule_wide_key {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x1x600xf32> in @a at 0
  fplan.buffer @v : tensor<1x2x1x8xf32> in @a at 8192
  fplan.buffer @g : tensor<1x2x1xf32> in @a at 8448
  fplan.buffer @o : tensor<1x2x1x8xf32> in @a at 8704
  fplan.kernel @r kind "gated_delta_rule" params {chunk_size = 16 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @r (kind 'gated_delta_rule'): key dimension d_k = 600 exceeds the 512 a state row holds (32 lanes x 16 columns)}}
    fplan.launch @r ins [@q, @q, @v, @g, @g] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Too many state rows for one backward block: 2 value heads x d_h = 64 x 8 lanes.
module @rule_grad_rows {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x1x128xf32> in @a at 0
  fplan.buffer @v : tensor<1x2x2x64xf32> in @a at 1024
  fplan.buffer @g : tensor<1x2x2xf32> in @a at 2048
  fplan.buffer @dq : tensor<1x2x1x128xf32> in @a at 2304
  fplan.buffer @dv : tensor<1x2x2x64xf32> in @a at 3328
  fplan.buffer @dg : tensor<1x2x2xf32> in @a at 4352
  fplan.kernel @r kind "gated_delta_rule_grad" params {chunk_size = 16 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @r (kind 'gated_delta_rule_grad'): 2 value head(s) per key head x d_h = 64 state rows x 8 lanes need 1024 threads, more than the 512 a backward block holds}}
    fplan.launch @r ins [@q, @q, @v, @g, @g, @v] outs [@dq, @dq, @dv, @dg, @dg] grid [1, 1, 1] block [1, 1, 1]
  }
}
