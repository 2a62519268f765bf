// RUN: fusion-opt %s --split-input-file --fplan-codegen-cuda --verify-diagnostics | FileCheck %s

// attention on the smoke model's shapes (f32, MLA d_qk = 24 != d_v = 16, sliding window 32):
// the wrapper bakes causal, window and the f32 scale; one block per 64-query tile and
// (batch, head) pair, 256 threads, 4·(64·25 + 64·25 + 64·65 + 64·16 + 64) bytes of shared
// memory; args (B, H, G, T, d_qk, d_v, tensorCores = 0): f32 has only the CUDA-core path.
// CHECK-LABEL: module @attention_smoke
//       CHECK:   fplan.kernel @attn kind "attention" params {causal, scale = 0.204124153 : f32, window = 32 : i64} {entry = "fusion_attention", source = "{{.*}}#include \22fusion/attention.cuh\22{{.*}}extern \22C\22 __global__ void __launch_bounds__(256) fusion_attention(const float* q, const float* k, const float* v, float* o, int64_t batch, int64_t heads, int64_t groups, int64_t seqLen, int64_t dimQK, int64_t dimV, int64_t tensorCores) {\0A  fk::attentionForward(q, k, v, o, nullptr, batch, heads, groups, seqLen, dimQK, dimV, true, 32, (float)0.20412415266036987);\0A}{{.*}}"}
//       CHECK:   fplan.launch @attn ins [@q, @k, @v] outs [@o] grid [1, 32, 1] block [256, 1, 1] smem 33792 args [8, 4, 2, 64, 24, 16, 0]
module @attention_smoke {
  fplan.arena @a size(1048576)
  fplan.buffer @q : tensor<8x4x64x24xf32> in @a at 0
  fplan.buffer @k : tensor<8x2x64x24xf32> in @a at 196608
  fplan.buffer @v : tensor<8x2x64x16xf32> in @a at 294912
  fplan.buffer @o : tensor<8x4x64x16xf32> in @a at 360448
  fplan.kernel @attn kind "attention" params {causal, scale = 0.204124153 : f32, window = 32 : i64}
  fplan.program @main {
    fplan.launch @attn ins [@q, @k, @v] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// bench-1gpu's shapes in bf16 (B = 16, H = 16 heads in G = 4 groups, T = 2048, d_qk = 96,
// d_v = 64) take the tensor-core path: every launch does, so the source holds only that
// path, its register arrays sized <96, 64> (the launches' head sizes), bounds (256, 2): 16
// query tiles of 128 rows x 256 (batch, head) pairs of 256 threads (8 warps),
// 2·(128·104 + 128·104 + 128·72) = 71680 bytes of shared memory, tensorCores = 1.
// and a zero window.
// CHECK-LABEL: module @attention_bench
//       CHECK:   fplan.kernel @causal kind "attention" {{.*}}source = "{{.*}}__launch_bounds__(256, 2) fusion_attention(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* o, {{.*}}int64_t dimV, int64_t tensorCores) {\0A  // Every launch takes the tensor cores: bf16 / f16 mma.sync, 256 threads.\0A  fk::attentionForwardTc<96, 64>(q, k, v, o, nullptr, batch, heads, groups, seqLen, dimQK, dimV, true, 0, (float)0.10206207633018494);\0A}{{.*}}"}
//       CHECK:   fplan.kernel @full kind "attention" {{.*}}source = "{{.*}}fk::attentionForwardTc<96, 64>({{.*}}dimQK, dimV, false, 0, (float)0.10206207633018494);{{.*}}"}
//       CHECK:   fplan.launch @causal ins [@q, @k, @v] outs [@o] grid [16, 256, 1] block [256, 1, 1] smem 71680 args [16, 16, 4, 2048, 96, 64, 1]
//       CHECK:   fplan.launch @full ins [@q, @k, @v] outs [@o] grid [16, 256, 1] block [256, 1, 1] smem 71680 args [16, 16, 4, 2048, 96, 64, 1]
module @attention_bench {
  fplan.arena @a size(268435456)
  fplan.buffer @q : tensor<16x16x2048x96xbf16> in @a at 0
  fplan.buffer @k : tensor<16x4x2048x96xbf16> in @a at 100663296
  fplan.buffer @v : tensor<16x4x2048x64xbf16> in @a at 125829120
  fplan.buffer @o : tensor<16x16x2048x64xbf16> in @a at 142606336
  fplan.kernel @causal kind "attention" params {causal, scale = 0.102062076 : f32, window = 0 : i64}
  fplan.kernel @full kind "attention" params {scale = 0.102062076 : f32}
  fplan.program @main {
    fplan.launch @causal ins [@q, @k, @v] outs [@o] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @full ins [@q, @k, @v] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// attention_grad: a persistent grid of min(items, 1024) blocks. bench-1gpu's bf16 shapes take
// the tensor-core path: items = B·H·ceil(T/64) query tiles + B·G·ceil(T/64) key tiles, 128
// threads, shared memory 2·64·3·(96 + 64 + 16) + 1024 = 68608, tensorCores = 1. The f32
// smoke shapes take the CUDA-core path: items = B·H·ceil(T/32) + B·G·ceil(T/64) = 8·4·2 +
// 8·2·1 = 80, shared memory 4·(96·(25 + 17) + 32·65 + 64·40 + 96), tensorCores = 0.
// CHECK-LABEL: module @attention_grad
//       CHECK:   fplan.kernel @bench kind "attention_grad" {{.*}}source = "{{.*}}__launch_bounds__(128, 3) fusion_attention_grad(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const __nv_bfloat16* dout, __nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv, int64_t batch, int64_t heads, int64_t groups, int64_t seqLen, int64_t dimQK, int64_t dimV, int64_t tensorCores) {\0A  // Every launch takes the tensor cores: bf16 / f16 mma.sync, 128 threads.\0A  fk::attentionBackwardTc<96, 64>(q, k, v, dout, static_cast<decltype(q)>(nullptr), nullptr, dq, dk, dv, batch, heads, groups, seqLen, dimQK, dimV, true, 1024, (float)0.10206207633018494);\0A}{{.*}}"}
//       CHECK:   fplan.kernel @smoke kind "attention_grad" {{.*}}source = "{{.*}}const float* dout, float* dq, float* dk, float* dv, {{.*}}int64_t tensorCores) {\0A  fk::attentionBackward({{.*}}, true, 32, (float)0.20412415266036987);\0A}{{.*}}"}
//       CHECK:   fplan.launch @bench ins [@q, @k, @v, @do] outs [@dq, @dk, @dv] grid [1024, 1, 1] block [128, 1, 1] smem 68608 args [16, 16, 4, 2048, 96, 64, 1]
//       CHECK:   fplan.launch @smoke ins [@sq, @sk, @sv, @sdo] outs [@sdq, @sdk, @sdv] grid [80, 1, 1] block [256, 1, 1] smem 35072 args [8, 4, 2, 64, 24, 16, 0]
module @attention_grad {
  fplan.arena @a size(1073741824)
  fplan.buffer @q : tensor<16x16x2048x96xbf16> in @a at 0
  fplan.buffer @k : tensor<16x4x2048x96xbf16> in @a at 100663296
  fplan.buffer @v : tensor<16x4x2048x64xbf16> in @a at 125829120
  fplan.buffer @do : tensor<16x16x2048x64xbf16> in @a at 142606336
  fplan.buffer @dq : tensor<16x16x2048x96xbf16> in @a at 209715200
  fplan.buffer @dk : tensor<16x4x2048x96xbf16> in @a at 310378496
  fplan.buffer @dv : tensor<16x4x2048x64xbf16> in @a at 335544320
  fplan.buffer @sq : tensor<8x4x64x24xf32> in @a at 352321536
  fplan.buffer @sk : tensor<8x2x64x24xf32> in @a at 352518144
  fplan.buffer @sv : tensor<8x2x64x16xf32> in @a at 352616448
  fplan.buffer @sdo : tensor<8x4x64x16xf32> in @a at 352681984
  fplan.buffer @sdq : tensor<8x4x64x24xf32> in @a at 352813056
  fplan.buffer @sdk : tensor<8x2x64x24xf32> in @a at 353009664
  fplan.buffer @sdv : tensor<8x2x64x16xf32> in @a at 353107968
  fplan.kernel @bench kind "attention_grad" params {causal, scale = 0.102062076 : f32, window = 1024 : i64}
  fplan.kernel @smoke kind "attention_grad" params {causal, scale = 0.204124153 : f32, window = 32 : i64}
  fplan.program @main {
    fplan.launch @bench ins [@q, @k, @v, @do] outs [@dq, @dk, @dv] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @smoke ins [@sq, @sk, @sv, @sdo] outs [@sdq, @sdk, @sdv] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Kernels with launches on both paths keep both (256-thread bounds) and branch on
// tensorCores; the register arrays fit the largest tensor-core launch (<96, 64>).
// The MTP module's T = 2047 (ragged last tile) still takes the tensor-core path: 32 query
// tiles; the backward has 16·16·32 + 16·4·32 = 10240 items (grid capped at 1024). The same
// bf16 kernels launched on head sizes the tensor cores do not take (d_qk = 24, not a multiple
// of 16; d_v = 192 > 128) keep their source and pass tensorCores = 0 with the CUDA-core
// geometry (the backward's 2·4·4 + 2·2·2 = 40 items of 32 / 64 rows).
// CHECK-LABEL: module @attention_tc_choice
//       CHECK:   fplan.kernel @fwd kind "attention" {{.*}}__launch_bounds__(256) {{.*}}if (tensorCores)\0A    fk::attentionForwardTc<96, 64>({{.*}}else\0A    fk::attentionForward(
//       CHECK:   fplan.kernel @grad kind "attention_grad" {{.*}}__launch_bounds__(256) {{.*}}if (tensorCores)\0A    fk::attentionBackwardTc<96, 64>({{.*}}else\0A    fk::attentionBackward(
//       CHECK:   fplan.launch @fwd ins [@q, @k, @v] outs [@o] grid [16, 256, 1] block [256, 1, 1] smem 71680 args [16, 16, 4, 2047, 96, 64, 1]
//       CHECK:   fplan.launch @fwd ins [@sq, @sk, @sv] outs [@so] grid [2, 8, 1] block [256, 1, 1] smem 33792 args [2, 4, 2, 100, 24, 16, 0]
//       CHECK:   fplan.launch @fwd ins [@wq, @wk, @wv] outs [@wo] grid [1, 2, 1] block [256, 1, 1] smem {{[0-9]+}} args [1, 2, 1, 8, 64, 192, 0]
//       CHECK:   fplan.launch @grad ins [@q, @k, @v, @do] outs [@dq, @dk, @dv] grid [1024, 1, 1] block [128, 1, 1] smem 68608 args [16, 16, 4, 2047, 96, 64, 1]
//       CHECK:   fplan.launch @grad ins [@sq, @sk, @sv, @so] outs [@sdq, @sdk, @sdv] grid [40, 1, 1] block [256, 1, 1] smem 35072 args [2, 4, 2, 100, 24, 16, 0]
module @attention_tc_choice {
  fplan.arena @a size(1073741824)
  fplan.buffer @q : tensor<16x16x2047x96xbf16> in @a at 0
  fplan.buffer @k : tensor<16x4x2047x96xbf16> in @a at 100663296
  fplan.buffer @v : tensor<16x4x2047x64xbf16> in @a at 125829120
  fplan.buffer @o : tensor<16x16x2047x64xbf16> in @a at 142606336
  fplan.buffer @do : tensor<16x16x2047x64xbf16> in @a at 209715200
  fplan.buffer @dq : tensor<16x16x2047x96xbf16> in @a at 276824064
  fplan.buffer @dk : tensor<16x4x2047x96xbf16> in @a at 377487360
  fplan.buffer @dv : tensor<16x4x2047x64xbf16> in @a at 402653184
  fplan.buffer @sq : tensor<2x4x100x24xbf16> in @a at 419430400
  fplan.buffer @sk : tensor<2x2x100x24xbf16> in @a at 419471360
  fplan.buffer @sv : tensor<2x2x100x16xbf16> in @a at 419491840
  fplan.buffer @so : tensor<2x4x100x16xbf16> in @a at 419504128
  fplan.buffer @sdq : tensor<2x4x100x24xbf16> in @a at 419529728
  fplan.buffer @sdk : tensor<2x2x100x24xbf16> in @a at 419570688
  fplan.buffer @sdv : tensor<2x2x100x16xbf16> in @a at 419591168
  fplan.buffer @wq : tensor<1x2x8x64xbf16> in @a at 419604480
  fplan.buffer @wk : tensor<1x1x8x64xbf16> in @a at 419606528
  fplan.buffer @wv : tensor<1x1x8x192xbf16> in @a at 419607552
  fplan.buffer @wo : tensor<1x2x8x192xbf16> in @a at 419610624
  fplan.kernel @fwd kind "attention" params {causal, scale = 0.102062076 : f32, window = 1024 : i64}
  fplan.kernel @grad kind "attention_grad" params {causal, scale = 0.102062076 : f32, window = 1024 : i64}
  fplan.program @main {
    fplan.launch @fwd ins [@q, @k, @v] outs [@o] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fwd ins [@sq, @sk, @sv] outs [@so] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fwd ins [@wq, @wk, @wv] outs [@wo] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad ins [@q, @k, @v, @do] outs [@dq, @dk, @dv] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad ins [@sq, @sk, @sv, @so] outs [@sdq, @sdk, @sdv] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// f16 takes the tensor-core path too (2·(128·40 + 128·40 + 128·40) = 30720 bytes at d = 32); the
// source of mixed input types (bf16 q with f32 k, v) holds only the CUDA-core path
// (tensorCores = 0); so does bf16 q, k, v with an f32 output (the tensor-core path rounds P
// to bf16, which an f32 result would expose).
// CHECK-LABEL: module @attention_tc_types
//       CHECK:   fplan.kernel @half kind "attention" {{.*}}fusion_attention(const __half* q, const __half* k, const __half* v, __half* o, {{.*}}fk::attentionForwardTc<32, 32>(
//       CHECK:   fplan.kernel @mixed kind "attention" {{.*}}source = "{{.*}}fusion_attention(const __nv_bfloat16* q, const float* k, const float* v, float* o, {{.*}}int64_t tensorCores) {\0A  fk::attentionForward(q, k, v, o, nullptr, {{.*}});\0A}{{.*}}"}
//       CHECK:   fplan.kernel @wide kind "attention" {{.*}}source = "{{.*}}fusion_attention(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, float* o, {{.*}}int64_t tensorCores) {\0A  fk::attentionForward(q, k, v, o, nullptr, {{.*}});\0A}{{.*}}"}
//       CHECK:   fplan.launch @half ins [@hq, @hk, @hv] outs [@ho] grid [1, 4, 1] block [256, 1, 1] smem 30720 args [1, 4, 4, 100, 32, 32, 1]
//       CHECK:   fplan.launch @mixed ins [@q, @k, @v] outs [@o] grid [2, 4, 1] block [256, 1, 1] smem {{[0-9]+}} args [1, 4, 4, 100, 32, 32, 0]
//       CHECK:   fplan.launch @wide ins [@q, @bk, @bv] outs [@o] grid [2, 4, 1] block [256, 1, 1] smem {{[0-9]+}} args [1, 4, 4, 100, 32, 32, 0]
module @attention_tc_types {
  fplan.arena @a size(1048576)
  fplan.buffer @hq : tensor<1x4x100x32xf16> in @a at 0
  fplan.buffer @hk : tensor<1x4x100x32xf16> in @a at 32768
  fplan.buffer @hv : tensor<1x4x100x32xf16> in @a at 65536
  fplan.buffer @ho : tensor<1x4x100x32xf16> in @a at 98304
  fplan.buffer @q : tensor<1x4x100x32xbf16> in @a at 131072
  fplan.buffer @k : tensor<1x4x100x32xf32> in @a at 163840
  fplan.buffer @v : tensor<1x4x100x32xf32> in @a at 229376
  fplan.buffer @o : tensor<1x4x100x32xf32> in @a at 294912
  fplan.buffer @bk : tensor<1x4x100x32xbf16> in @a at 360448
  fplan.buffer @bv : tensor<1x4x100x32xbf16> in @a at 393216
  fplan.kernel @half kind "attention" params {causal, scale = 0.125 : f32}
  fplan.kernel @mixed kind "attention" params {causal, scale = 0.125 : f32}
  fplan.kernel @wide kind "attention" params {causal, scale = 0.125 : f32}
  fplan.program @main {
    fplan.launch @half ins [@hq, @hk, @hv] outs [@ho] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @mixed ins [@q, @k, @v] outs [@o] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @wide ins [@q, @bk, @bv] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// kv_cache_attention as bench-1gpu decodes: one bf16 token, f32 caches of 2048 positions
// updated in place, the position in an i32 buffer read on the device; always causal.
// CHECK-LABEL: module @kv_cache_decode
//       CHECK:   fplan.kernel @kv kind "kv_cache_attention" {{.*}}source = "{{.*}}fusion_kv_cache_attention(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const int32_t* position, const float* kCache, const float* vCache, __nv_bfloat16* o, float* kOut, float* vOut, int64_t batch, int64_t heads, int64_t groups, int64_t newTokens, int64_t cacheLen, int64_t dimQK, int64_t dimV) {\0A  fk::kvCacheAttention(q, k, v, position, kCache, vCache, o, kOut, vOut, batch, heads, groups, newTokens, cacheLen, dimQK, dimV, 1024, (float)0.10206207633018494);{{.*}}"}
//       CHECK:   fplan.launch @kv ins [@q, @k, @v, @pos, @kc, @vc] outs [@o, @kc, @vc] grid [1, 16, 1] block [256, 1, 1] smem 82944 args [1, 16, 4, 1, 2048, 96, 64]
module @kv_cache_decode {
  fplan.arena @a size(8388608)
  fplan.buffer @q : tensor<1x16x1x96xbf16> in @a at 0
  fplan.buffer @k : tensor<1x4x1x96xbf16> in @a at 4096
  fplan.buffer @v : tensor<1x4x1x64xbf16> in @a at 8192
  fplan.buffer @pos : tensor<1xi32> in @a at 12288
  fplan.buffer @o : tensor<1x16x1x64xbf16> in @a at 12544
  fplan.buffer @kc : tensor<1x4x2048x96xf32> in @a at 16384
  fplan.buffer @vc : tensor<1x4x2048x64xf32> in @a at 3162112
  fplan.kernel @kv kind "kv_cache_attention" params {scale = 0.102062076 : f32, window = 1024 : i64}
  fplan.program @main {
    fplan.launch @kv ins [@q, @k, @v, @pos, @kc, @vc] outs [@o, @kc, @vc] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A prefill of 100 tokens: two query tiles.
// CHECK-LABEL: module @kv_cache_prefill
//       CHECK:   fplan.launch @kv ins [@q, @k, @v, @pos, @kc, @vc] outs [@o, @kc2, @vc2] grid [2, 8, 1] block [256, 1, 1] smem 33792 args [1, 8, 2, 100, 128, 24, 16]
module @kv_cache_prefill {
  fplan.arena @a size(1048576)
  fplan.buffer @q : tensor<1x8x100x24xf32> in @a at 0
  fplan.buffer @k : tensor<1x2x100x24xf32> in @a at 81920
  fplan.buffer @v : tensor<1x2x100x16xf32> in @a at 102400
  fplan.buffer @pos : tensor<1xi64> in @a at 118784
  fplan.buffer @o : tensor<1x8x100x16xf32> in @a at 119040
  fplan.buffer @kc : tensor<1x2x128x24xf32> in @a at 172032
  fplan.buffer @vc : tensor<1x2x128x16xf32> in @a at 196608
  fplan.buffer @kc2 : tensor<1x2x128x24xf32> in @a at 212992
  fplan.buffer @vc2 : tensor<1x2x128x16xf32> in @a at 237568
  fplan.kernel @kv kind "kv_cache_attention" params {scale = 0.204124153 : f32}
  fplan.program @main {
    fplan.launch @kv ins [@q, @k, @v, @pos, @kc, @vc] outs [@o, @kc2, @vc2] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @window_needs_causal {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x8x4xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x8x4xf32> in @a at 1024
  fplan.buffer @v : tensor<1x1x8x4xf32> in @a at 2048
  fplan.buffer @o : tensor<1x2x8x4xf32> in @a at 3072
  // expected-error @+1 {{kernel @attn (kind 'attention'): attribute 'window' = 4 must be >= 0, and a window > 0 needs 'causal'}}
  fplan.kernel @attn kind "attention" params {scale = 0.5 : f32, window = 4 : i64}
  fplan.program @main {
    fplan.launch @attn ins [@q, @k, @v] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @missing_scale {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x8x4xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x8x4xf32> in @a at 1024
  fplan.buffer @v : tensor<1x1x8x4xf32> in @a at 2048
  fplan.buffer @do : tensor<1x2x8x4xf32> in @a at 3072
  fplan.buffer @dq : tensor<1x2x8x4xf32> in @a at 4096
  fplan.buffer @dk : tensor<1x1x8x4xf32> in @a at 5120
  fplan.buffer @dv : tensor<1x1x8x4xf32> in @a at 6144
  // expected-error @+1 {{kernel @g (kind 'attention_grad'): needs the float attribute 'scale'}}
  fplan.kernel @g kind "attention_grad" params {causal}
  fplan.program @main {
    fplan.launch @g ins [@q, @k, @v, @do] outs [@dq, @dk, @dv] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @negative_scale {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x8x4xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x8x4xf32> in @a at 1024
  fplan.buffer @v : tensor<1x1x8x4xf32> in @a at 2048
  fplan.buffer @o : tensor<1x2x8x4xf32> in @a at 3072
  // expected-error @+1 {{kernel @attn (kind 'attention'): attribute 'scale' must be positive and finite, got -0.500000}}
  fplan.kernel @attn kind "attention" params {causal, scale = -0.5 : f32}
  fplan.program @main {
    fplan.launch @attn ins [@q, @k, @v] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @index_query {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x8x4xi32> in @a at 0
  fplan.buffer @k : tensor<1x1x8x4xf32> in @a at 1024
  fplan.buffer @v : tensor<1x1x8x4xf32> in @a at 2048
  fplan.buffer @o : tensor<1x2x8x4xf32> in @a at 3072
  // expected-error @+1 {{kernel @attn (kind 'attention'): input 0 must be a float buffer (f32, bf16, f16)}}
  fplan.kernel @attn kind "attention" params {causal, scale = 0.5 : f32}
  fplan.program @main {
    fplan.launch @attn ins [@q, @k, @v] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @grad_index_gradient {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x8x4xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x8x4xf32> in @a at 1024
  fplan.buffer @v : tensor<1x1x8x4xf32> in @a at 2048
  fplan.buffer @do : tensor<1x2x8x4xi64> in @a at 3072
  fplan.buffer @dq : tensor<1x2x8x4xf32> in @a at 4096
  fplan.buffer @dk : tensor<1x1x8x4xf32> in @a at 5120
  fplan.buffer @dv : tensor<1x1x8x4xf32> in @a at 6144
  // expected-error @+1 {{kernel @g (kind 'attention_grad'): input 3 must be a float buffer (f32, bf16, f16)}}
  fplan.kernel @g kind "attention_grad" params {causal, scale = 0.5 : f32}
  fplan.program @main {
    fplan.launch @g ins [@q, @k, @v, @do] outs [@dq, @dk, @dv] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @groups_must_divide_heads {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x3x8x4xf32> in @a at 0
  fplan.buffer @k : tensor<1x2x8x4xf32> in @a at 1024
  fplan.buffer @v : tensor<1x2x8x4xf32> in @a at 2048
  fplan.buffer @o : tensor<1x3x8x4xf32> in @a at 3072
  fplan.kernel @attn kind "attention" params {causal, scale = 0.5 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @attn (kind 'attention'): input 1 (k) has 2 groups, which must be >= 1 and divide the 3 query heads}}
    fplan.launch @attn ins [@q, @k, @v] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @value_length {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x8x4xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x8x4xf32> in @a at 1024
  fplan.buffer @v : tensor<1x1x9x4xf32> in @a at 2048
  fplan.buffer @o : tensor<1x2x8x4xf32> in @a at 3072
  fplan.kernel @attn kind "attention" params {causal, scale = 0.5 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @attn (kind 'attention'): input 2 (v) must be [B, G, T, d_v] with k's B = 1, G = 1, T = 8, got [1, 1, 9, 4]}}
    fplan.launch @attn ins [@q, @k, @v] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @rank {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<2x8x4xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x8x4xf32> in @a at 1024
  fplan.buffer @v : tensor<1x1x8x4xf32> in @a at 2048
  fplan.buffer @o : tensor<1x2x8x4xf32> in @a at 3072
  fplan.kernel @attn kind "attention" params {causal, scale = 0.5 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @attn (kind 'attention'): input 0 (q) must have rank 4, got rank 3}}
    fplan.launch @attn ins [@q, @k, @v] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @grad_output_shape {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x8x4xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x8x4xf32> in @a at 1024
  fplan.buffer @v : tensor<1x1x8x4xf32> in @a at 2048
  fplan.buffer @do : tensor<1x2x8x4xf32> in @a at 3072
  fplan.buffer @dq : tensor<1x2x8x4xf32> in @a at 4096
  fplan.buffer @dk : tensor<1x2x8x4xf32> in @a at 5120
  fplan.buffer @dv : tensor<1x1x8x4xf32> in @a at 6144
  fplan.kernel @g kind "attention_grad" params {causal, scale = 0.5 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @g (kind 'attention_grad'): output 1 (dk) must have shape [1, 1, 8, 4], got [1, 2, 8, 4]}}
    fplan.launch @g ins [@q, @k, @v, @do] outs [@dq, @dk, @dv] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Head sizes whose tiles do not fit 227 KiB of shared memory.
module @head_too_large {
  fplan.arena @a size(1048576)
  fplan.buffer @q : tensor<1x1x8x512xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x8x512xf32> in @a at 16384
  fplan.buffer @v : tensor<1x1x8x512xf32> in @a at 32768
  fplan.buffer @o : tensor<1x1x8x512xf32> in @a at 49152
  fplan.kernel @attn kind "attention" params {causal, scale = 0.5 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @attn (kind 'attention'): head sizes d_qk = 512, d_v = 512 need 410624 bytes of shared memory, more than the 232384 a block may use}}
    fplan.launch @attn ins [@q, @k, @v] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The 7B's head sizes (d_qk = 192, d_v = 128) fit the backward; 256 / 256 does not.
module @grad_head_too_large {
  fplan.arena @a size(1048576)
  fplan.buffer @q : tensor<1x1x8x256xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x8x256xf32> in @a at 16384
  fplan.buffer @v : tensor<1x1x8x256xf32> in @a at 32768
  fplan.buffer @do : tensor<1x1x8x256xf32> in @a at 49152
  fplan.buffer @dq : tensor<1x1x8x256xf32> in @a at 65536
  fplan.buffer @dk : tensor<1x1x8x256xf32> in @a at 81920
  fplan.buffer @dv : tensor<1x1x8x256xf32> in @a at 98304
  fplan.kernel @g kind "attention_grad" params {causal, scale = 0.5 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @g (kind 'attention_grad'): head sizes d_qk = 256, d_v = 256 need 337152 bytes of shared memory, more than the 232384 a block may use}}
    fplan.launch @g ins [@q, @k, @v, @do] outs [@dq, @dk, @dv] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// grid.y holds the (batch, head) pairs.
module @too_many_heads {
  fplan.arena @a size(67108864)
  fplan.buffer @q : tensor<1024x128x1x4xf32> in @a at 0
  fplan.buffer @k : tensor<1024x1x1x4xf32> in @a at 2097152
  fplan.buffer @v : tensor<1024x1x1x4xf32> in @a at 2113536
  fplan.buffer @o : tensor<1024x128x1x4xf32> in @a at 2129920
  fplan.kernel @attn kind "attention" params {causal, scale = 0.5 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @attn (kind 'attention'): B·H = 1024·128 = 131072 (batch, head) pairs exceed the 65535 blocks of grid.y}}
    fplan.launch @attn ins [@q, @k, @v] outs [@o] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The backward's statistics scratch holds 2^20 query rows.
module @grad_too_many_rows {
  fplan.arena @a size(268435456)
  fplan.buffer @q : tensor<64x16x2048x4xf32> in @a at 0
  fplan.buffer @k : tensor<64x1x2048x4xf32> in @a at 33554432
  fplan.buffer @v : tensor<64x1x2048x4xf32> in @a at 35651584
  fplan.buffer @do : tensor<64x16x2048x4xf32> in @a at 37748736
  fplan.buffer @dq : tensor<64x16x2048x4xf32> in @a at 71303168
  fplan.buffer @dk : tensor<64x1x2048x4xf32> in @a at 104857600
  fplan.buffer @dv : tensor<64x1x2048x4xf32> in @a at 106954752
  fplan.kernel @g kind "attention_grad" params {causal, scale = 0.5 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @g (kind 'attention_grad'): B·H·T = 2097152 query rows exceed the 1048576 rows of the backward's statistics scratch}}
    fplan.launch @g ins [@q, @k, @v, @do] outs [@dq, @dk, @dv] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @kv_position_type {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x1x4xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x1x4xf32> in @a at 256
  fplan.buffer @v : tensor<1x1x1x4xf32> in @a at 512
  fplan.buffer @pos : tensor<1xf32> in @a at 768
  fplan.buffer @kc : tensor<1x1x16x4xf32> in @a at 1024
  fplan.buffer @vc : tensor<1x1x16x4xf32> in @a at 2048
  fplan.buffer @o : tensor<1x2x1x4xf32> in @a at 3072
  // expected-error @+1 {{kernel @kv (kind 'kv_cache_attention'): input 3 must be an index buffer (i32, i64)}}
  fplan.kernel @kv kind "kv_cache_attention" params {scale = 0.5 : f32}
  fplan.program @main {
    fplan.launch @kv ins [@q, @k, @v, @pos, @kc, @vc] outs [@o, @kc, @vc] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @kv_cache_output_type {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x1x4xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x1x4xf32> in @a at 256
  fplan.buffer @v : tensor<1x1x1x4xf32> in @a at 512
  fplan.buffer @pos : tensor<1xi32> in @a at 768
  fplan.buffer @kc : tensor<1x1x16x4xf32> in @a at 1024
  fplan.buffer @vc : tensor<1x1x16x4xf32> in @a at 2048
  fplan.buffer @o : tensor<1x2x1x4xf32> in @a at 3072
  fplan.buffer @vc2 : tensor<1x1x16x4xbf16> in @a at 4096
  // expected-error @+1 {{kernel @kv (kind 'kv_cache_attention'): output 2 must have the element type of its cache, input 5 (f32), got bf16}}
  fplan.kernel @kv kind "kv_cache_attention" params {scale = 0.5 : f32}
  fplan.program @main {
    fplan.launch @kv ins [@q, @k, @v, @pos, @kc, @vc] outs [@o, @kc, @vc2] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @kv_negative_window {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x1x4xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x1x4xf32> in @a at 256
  fplan.buffer @v : tensor<1x1x1x4xf32> in @a at 512
  fplan.buffer @pos : tensor<1xi32> in @a at 768
  fplan.buffer @kc : tensor<1x1x16x4xf32> in @a at 1024
  fplan.buffer @vc : tensor<1x1x16x4xf32> in @a at 2048
  fplan.buffer @o : tensor<1x2x1x4xf32> in @a at 3072
  // expected-error @+1 {{kernel @kv (kind 'kv_cache_attention'): attribute 'window' = -1 must be >= 0}}
  fplan.kernel @kv kind "kv_cache_attention" params {scale = 0.5 : f32, window = -1 : i64}
  fplan.program @main {
    fplan.launch @kv ins [@q, @k, @v, @pos, @kc, @vc] outs [@o, @kc, @vc] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @kv_cache_shape {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x1x4xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x1x4xf32> in @a at 256
  fplan.buffer @v : tensor<1x1x1x4xf32> in @a at 512
  fplan.buffer @pos : tensor<1xi32> in @a at 768
  fplan.buffer @kc : tensor<1x1x16x4xf32> in @a at 1024
  fplan.buffer @vc : tensor<1x1x15x4xf32> in @a at 2048
  fplan.buffer @o : tensor<1x2x1x4xf32> in @a at 3072
  fplan.kernel @kv kind "kv_cache_attention" params {scale = 0.5 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @kv (kind 'kv_cache_attention'): input 5 (V cache) must have shape [1, 1, 16, 4], got [1, 1, 15, 4]}}
    fplan.launch @kv ins [@q, @k, @v, @pos, @kc, @vc] outs [@o, @kc, @vc] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @kv_too_many_tokens {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x20x4xf32> in @a at 0
  fplan.buffer @k : tensor<1x1x20x4xf32> in @a at 1024
  fplan.buffer @v : tensor<1x1x20x4xf32> in @a at 2048
  fplan.buffer @pos : tensor<1xi32> in @a at 3072
  fplan.buffer @kc : tensor<1x1x16x4xf32> in @a at 4096
  fplan.buffer @vc : tensor<1x1x16x4xf32> in @a at 5120
  fplan.buffer @o : tensor<1x2x20x4xf32> in @a at 6144
  fplan.kernel @kv kind "kv_cache_attention" params {scale = 0.5 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @kv (kind 'kv_cache_attention'): 20 new tokens do not fit a cache of 16 positions}}
    fplan.launch @kv ins [@q, @k, @v, @pos, @kc, @vc] outs [@o, @kc, @vc] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// attention_lse / attention_grad_lse (the forward's log-sum-exp saved for the backward) on
// bench-1gpu's bf16 shapes: the same geometry as attention / attention_grad; the forward
// writes lse [B, H, T] f32 beside o, and the tensor-core backward reads o and lse (its
// CUDA-core branch recomputes them).
// CHECK-LABEL: module @attention_lse
//       CHECK:   fplan.kernel @fwd kind "attention_lse" {{.*}}source = "{{.*}}__launch_bounds__(256, 2) fusion_attention_lse(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* o, float* lse, {{.*}}fk::attentionForwardTc<96, 64>(q, k, v, o, lse, batch, {{.*}}"}
//       CHECK:   fplan.kernel @grad kind "attention_grad_lse" {{.*}}source = "{{.*}}__launch_bounds__(128, 3) fusion_attention_grad_lse(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const __nv_bfloat16* dout, const __nv_bfloat16* o, const float* lse, __nv_bfloat16* dq, {{.*}}fk::attentionBackwardTc<96, 64>(q, k, v, dout, o, lse, dq, dk, dv, {{.*}}"}
//       CHECK:   fplan.launch @fwd ins [@q, @k, @v] outs [@o, @lse] grid [16, 256, 1] block [256, 1, 1] smem 71680 args [16, 16, 4, 2048, 96, 64, 1]
//       CHECK:   fplan.launch @grad ins [@q, @k, @v, @do, @o, @lse] outs [@dq, @dk, @dv] grid [1024, 1, 1] block [128, 1, 1] smem 68608 args [16, 16, 4, 2048, 96, 64, 1]
module @attention_lse {
  fplan.arena @a size(1073741824)
  fplan.buffer @q : tensor<16x16x2048x96xbf16> in @a at 0
  fplan.buffer @k : tensor<16x4x2048x96xbf16> in @a at 100663296
  fplan.buffer @v : tensor<16x4x2048x64xbf16> in @a at 125829120
  fplan.buffer @do : tensor<16x16x2048x64xbf16> in @a at 142606336
  fplan.buffer @dq : tensor<16x16x2048x96xbf16> in @a at 209715200
  fplan.buffer @dk : tensor<16x4x2048x96xbf16> in @a at 310378496
  fplan.buffer @dv : tensor<16x4x2048x64xbf16> in @a at 335544320
  fplan.buffer @o : tensor<16x16x2048x64xbf16> in @a at 352321536
  fplan.buffer @lse : tensor<16x16x2048xf32> in @a at 419430400
  fplan.kernel @fwd kind "attention_lse" params {causal, scale = 0.102062076 : f32, window = 1024 : i64}
  fplan.kernel @grad kind "attention_grad_lse" params {causal, scale = 0.102062076 : f32, window = 1024 : i64}
  fplan.program @main {
    fplan.launch @fwd ins [@q, @k, @v] outs [@o, @lse] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad ins [@q, @k, @v, @do, @o, @lse] outs [@dq, @dk, @dv] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @attention_lse_bf16_stats {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x8x16xbf16> in @a at 0
  fplan.buffer @k : tensor<1x1x8x16xbf16> in @a at 1024
  fplan.buffer @v : tensor<1x1x8x16xbf16> in @a at 2048
  fplan.buffer @o : tensor<1x2x8x16xbf16> in @a at 3072
  fplan.buffer @lse : tensor<1x2x8xbf16> in @a at 4096
  // expected-error @+1 {{kernel @fwd (kind 'attention_lse'): output 1 (lse) must be f32, got bf16}}
  fplan.kernel @fwd kind "attention_lse" params {causal, scale = 0.25 : f32}
  fplan.program @main {
    fplan.launch @fwd ins [@q, @k, @v] outs [@o, @lse] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @attention_grad_lse_shape {
  fplan.arena @a size(65536)
  fplan.buffer @q : tensor<1x2x8x16xbf16> in @a at 0
  fplan.buffer @k : tensor<1x1x8x16xbf16> in @a at 1024
  fplan.buffer @v : tensor<1x1x8x16xbf16> in @a at 2048
  fplan.buffer @do : tensor<1x2x8x16xbf16> in @a at 3072
  fplan.buffer @o : tensor<1x2x8x16xbf16> in @a at 4096
  fplan.buffer @lse : tensor<1x2x7xf32> in @a at 5120
  fplan.buffer @dq : tensor<1x2x8x16xbf16> in @a at 6144
  fplan.buffer @dk : tensor<1x1x8x16xbf16> in @a at 7168
  fplan.buffer @dv : tensor<1x1x8x16xbf16> in @a at 8192
  fplan.kernel @grad kind "attention_grad_lse" params {causal, scale = 0.25 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @grad (kind 'attention_grad_lse'): input 5 (lse) must have shape [1, 2, 8], got [1, 2, 7]}}
    fplan.launch @grad ins [@q, @k, @v, @do, @o, @lse] outs [@dq, @dk, @dv] grid [1, 1, 1] block [1, 1, 1]
  }
}
