// RUN: fusion-opt %s --split-input-file --fplan-codegen-cuda --verify-diagnostics | FileCheck %s

// cross_entropy / cross_entropy_grad: one block per row (threads a power of two up to 512),
// args (rows, vocab); the wrapper is typed by the logits (bf16), targets (i32), dce and
// dlogits buffers.
// CHECK-LABEL: module @cross_entropy_rows
//       CHECK:   fplan.kernel @ce kind "cross_entropy" {entry = "fusion_cross_entropy", source = "{{.*}}#include \22fusion/loss.cuh\22{{.*}}extern \22C\22 __global__ void fusion_cross_entropy(const __nv_bfloat16* logits, const int32_t* targets, float* loss, int64_t rows, int64_t vocab) {\0A  fk::crossEntropy(logits, targets, loss, rows, vocab);{{.*}}"}
//       CHECK:   fplan.kernel @ceg kind "cross_entropy_grad" {entry = "fusion_cross_entropy_grad", source = "{{.*}}(const __nv_bfloat16* logits, const int64_t* targets, const float* dce, __nv_bfloat16* dlogits, int64_t rows, int64_t vocab) {\0A  fk::crossEntropyGrad(logits, targets, dce, dlogits, rows, vocab);{{.*}}"}
//       CHECK:   fplan.launch @ce ins [@z, @y] outs [@loss] grid [37, 1, 1] block [512, 1, 1] args [37, 1000]
//       CHECK:   fplan.launch @ceg ins [@z, @y64, @dce] outs [@dz] grid [37, 1, 1] block [512, 1, 1] args [37, 1000]
//       CHECK:   fplan.launch @ce_small ins [@zs, @ys] outs [@ls] grid [3, 1, 1] block [128, 1, 1] args [3, 100]
module @cross_entropy_rows {
  fplan.arena @a size(262144)
  fplan.buffer @z : tensor<37x1000xbf16> in @a at 0
  fplan.buffer @y : tensor<37xi32> in @a at 75008
  fplan.buffer @y64 : tensor<37xi64> in @a at 75264
  fplan.buffer @loss : tensor<37xf32> in @a at 75776
  fplan.buffer @dce : tensor<37xf32> in @a at 76032
  fplan.buffer @dz : tensor<37x1000xbf16> in @a at 76288
  fplan.buffer @zs : tensor<3x100xf32> in @a at 152320
  fplan.buffer @ys : tensor<3xi32> in @a at 153600
  fplan.buffer @ls : tensor<3xf32> in @a at 153856
  fplan.kernel @ce kind "cross_entropy"
  fplan.kernel @ceg kind "cross_entropy_grad"
  fplan.kernel @ce_small kind "cross_entropy"
  fplan.program @main {
    fplan.launch @ce ins [@z, @y] outs [@loss] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @ceg ins [@z, @y64, @dce] outs [@dz] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @ce_small ins [@zs, @ys] outs [@ls] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The fused head at bench-1gpu's shapes (32768 tokens, D = 1024, V = 50304, bf16): the
// forward runs 512 blocks of 64 rows; the gradient 512 lse blocks, then 1024 dh and 1572 dw
// blocks of 32 rows with (32·1024 + 64·32)·4 bytes of dynamic shared memory; the cap is
// baked into the source.
// CHECK-LABEL: module @softcap_ce_bench
//       CHECK:   fplan.kernel @head kind "softcap_ce" params {cap = 1.500000e+01 : f32} {entry = "fusion_softcap_ce", source = "{{.*}}extern \22C\22 __global__ void __launch_bounds__(256) fusion_softcap_ce(const __nv_bfloat16* h, const __nv_bfloat16* w, const int32_t* targets, float* ce, int64_t n, int64_t d, int64_t v) {\0A  fk::softcapCe(h, w, targets, ce, n, d, v, (float)15.0);{{.*}}"}
//       CHECK:   fplan.kernel @head_grad kind "softcap_ce_grad" params {cap = 1.500000e+01 : f32} {entry = "fusion_softcap_ce_grad", source = "{{.*}}fusion_softcap_ce_grad(const __nv_bfloat16* h, const __nv_bfloat16* w, const int32_t* targets, const float* dce, __nv_bfloat16* dh, float* dw, int64_t n, int64_t d, int64_t v, int64_t rows_per_block) {\0A  fk::softcapCeGrad(h, w, targets, dce, dh, dw, n, d, v, (float)15.0, rows_per_block);{{.*}}"}
//       CHECK:   fplan.launch @head ins [@h, @w, @y] outs [@ce] grid [512, 1, 1] block [256, 1, 1] args [32768, 1024, 50304]
//       CHECK:   fplan.launch @head_grad ins [@h, @w, @y, @dce] outs [@dh, @dw] grid [3108, 1, 1] block [256, 1, 1] smem 139264 args [32768, 1024, 50304, 32]
module @softcap_ce_bench {
  fplan.arena @a size(500000000)
  fplan.buffer @h : tensor<32768x1024xbf16> in @a at 0
  fplan.buffer @w : tensor<50304x1024xbf16> in @a at 67108864
  fplan.buffer @y : tensor<32768xi32> in @a at 170131456
  fplan.buffer @ce : tensor<32768xf32> in @a at 170262528
  fplan.buffer @dce : tensor<32768xf32> in @a at 170393600
  fplan.buffer @dh : tensor<32768x1024xbf16> in @a at 170524672
  fplan.buffer @dw : tensor<50304x1024xf32> in @a at 237633536
  fplan.kernel @head kind "softcap_ce" params {cap = 15.0 : f32}
  fplan.kernel @head_grad kind "softcap_ce_grad" params {cap = 15.0 : f32}
  fplan.program @main {
    fplan.launch @head ins [@h, @w, @y] outs [@ce] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @head_grad ins [@h, @w, @y, @dce] outs [@dh, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A wide model (D = 2048) halves the gradient's rows per block to fit shared memory; an
// uncapped head (cap 0) and f32 buffers; N = 100 rows and V = 77 are no multiple of a tile.
// CHECK-LABEL: module @softcap_ce_wide
//       CHECK:   fplan.kernel @head_grad kind "softcap_ce_grad" params {cap = 0.000000e+00 : f32} {entry = "fusion_softcap_ce_grad", source = "{{.*}}(const float* h, const float* w, const int64_t* targets, const float* dce, float* dh, float* dw, {{.*}}fk::softcapCeGrad(h, w, targets, dce, dh, dw, n, d, v, (float)0.0, rows_per_block);{{.*}}"}
//       CHECK:   fplan.launch @head ins [@h, @w, @y] outs [@ce] grid [2, 1, 1] block [256, 1, 1] args [100, 2048, 77]
//       CHECK:   fplan.launch @head_grad ins [@h, @w, @y, @dce] outs [@dh, @dw] grid [14, 1, 1] block [256, 1, 1] smem 135168 args [100, 2048, 77, 16]
module @softcap_ce_wide {
  fplan.arena @a size(4194304)
  fplan.buffer @h : tensor<100x2048xf32> in @a at 0
  fplan.buffer @w : tensor<77x2048xf32> in @a at 819200
  fplan.buffer @y : tensor<100xi64> in @a at 1449984
  fplan.buffer @ce : tensor<100xf32> in @a at 1450880
  fplan.buffer @dce : tensor<100xf32> in @a at 1451520
  fplan.buffer @dh : tensor<100x2048xf32> in @a at 1452032
  fplan.buffer @dw : tensor<77x2048xf32> in @a at 2271232
  fplan.kernel @head kind "softcap_ce" params {cap = 0.0 : f32}
  fplan.kernel @head_grad kind "softcap_ce_grad" params {cap = 0.0 : f32}
  fplan.program @main {
    fplan.launch @head ins [@h, @w, @y] outs [@ce] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @head_grad ins [@h, @w, @y, @dce] outs [@dh, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// init_param: one source per rule whatever the parameter (the header names the rule, not the
// kernel); seed, param_index and the fp64 parameters' bit patterns are launch arguments
// (1.0 = 4607182418800017408, 0.02 = 4581421828931458171; dt_bias passes ln low, ln high).
// CHECK-LABEL: module @init_rules
//       CHECK:   fplan.kernel @a kind "init_param" {{.*}} {entry = "fusion_init_param", source = "// Generated by fusionc (fplan-codegen-cuda) for kind 'init_param'. Do not edit.\0A#include \22fusion/init.cuh\22\0A\0Aextern \22C\22 __global__ void fusion_init_param(float* out, int64_t n, int64_t seed, int64_t param_index, int64_t std_bits) {\0A  fk::initNormal<false>(out, n, seed, param_index, std_bits);\0A}\0A"}
//       CHECK:   fplan.kernel @b kind "init_param" {{.*}} {entry = "fusion_init_param", source = "// Generated by fusionc (fplan-codegen-cuda) for kind 'init_param'. Do not edit.\0A#include \22fusion/init.cuh\22\0A\0Aextern \22C\22 __global__ void fusion_init_param(float* out, int64_t n, int64_t seed, int64_t param_index, int64_t std_bits) {\0A  fk::initNormal<false>(out, n, seed, param_index, std_bits);\0A}\0A"}
//       CHECK:   fplan.kernel @c kind "init_param" {{.*}}source = "{{.*}}fusion_init_param(float* out, int64_t n, int64_t seed, int64_t param_index, int64_t std_bits) {\0A  fk::initNormal<true>(out, n, seed, param_index, std_bits);{{.*}}"}
//       CHECK:   fplan.kernel @d kind "init_param" {{.*}}source = "{{.*}}fusion_init_param(float* out, int64_t n) {\0A  fk::initConstant(out, n, 0.0f);{{.*}}"}
//       CHECK:   fplan.kernel @e kind "init_param" {{.*}}source = "{{.*}}fusion_init_param(float* out, int64_t n) {\0A  fk::initConstant(out, n, 1.0f);{{.*}}"}
//       CHECK:   fplan.kernel @f kind "init_param" {{.*}}source = "{{.*}}fk::initUniform<fk::InitRule::Uniform>(out, n, seed, param_index, a_bits, b_bits);{{.*}}"}
//       CHECK:   fplan.kernel @g kind "init_param" {{.*}}source = "{{.*}}fk::initUniform<fk::InitRule::LogUniform>(out, n, seed, param_index, a_bits, b_bits);{{.*}}"}
//       CHECK:   fplan.kernel @h kind "init_param" {{.*}}source = "{{.*}}fk::initUniform<fk::InitRule::DtBias>(out, n, seed, param_index, a_bits, b_bits);{{.*}}"}
//       CHECK:   fplan.launch @a ins [] outs [@x] grid [4, 1, 1] block [256, 1, 1] args [1000, 1234, 0, 4607182418800017408]
//       CHECK:   fplan.launch @b ins [] outs [@x] grid [4, 1, 1] block [256, 1, 1] args [1000, -7, 9, 4581421828931458171]
//       CHECK:   fplan.launch @c ins [] outs [@x] grid [4, 1, 1] block [256, 1, 1] args [1000, 1234, 2, 4581421828931458171]
//       CHECK:   fplan.launch @d ins [] outs [@x] grid [4, 1, 1] block [256, 1, 1] args [1000]
//       CHECK:   fplan.launch @e ins [] outs [@x] grid [4, 1, 1] block [256, 1, 1] args [1000]
//       CHECK:   fplan.launch @f ins [] outs [@x] grid [4, 1, 1] block [256, 1, 1] args [1000, 1234, 5, -4620693217682128896, 4602678819172646912]
//       CHECK:   fplan.launch @g ins [] outs [@x] grid [4, 1, 1] block [256, 1, 1] args [1000, 1234, 6, 4607182418800017408, 4625196817309499392]
//       CHECK:   fplan.launch @h ins [] outs [@x] grid [4, 1, 1] block [256, 1, 1] args [1000, 1234, 4294967295, -4603908577402290272, -4611004657371359979]
module @init_rules {
  fplan.arena @arena size(4096)
  fplan.buffer @x : tensor<10x100xf32> in @arena at 0
  fplan.kernel @a kind "init_param" params {param_index = 0 : i64, rule = "normal", seed = 1234 : i64, std = 1.0 : f64}
  fplan.kernel @b kind "init_param" params {param_index = 9 : i64, rule = "normal", seed = -7 : i64, std = 2.0e-02 : f64}
  fplan.kernel @c kind "init_param" params {param_index = 2 : i64, rule = "trunc_normal", seed = 1234 : i64, std = 2.0e-02 : f64}
  fplan.kernel @d kind "init_param" params {param_index = 3 : i64, rule = "zeros", seed = 1234 : i64}
  fplan.kernel @e kind "init_param" params {param_index = 4 : i64, rule = "ones", seed = 1234 : i64}
  fplan.kernel @f kind "init_param" params {high = 5.0e-01 : f64, low = -5.0e-01 : f64, param_index = 5 : i64, rule = "uniform", seed = 1234 : i64}
  fplan.kernel @g kind "init_param" params {high = 1.6e+01 : f64, low = 1.0 : f64, param_index = 6 : i64, rule = "log_uniform", seed = 1234 : i64}
  fplan.kernel @h kind "init_param" params {high = 1.0e-01 : f64, low = 1.0e-03 : f64, param_index = 4294967295 : i64, rule = "dt_bias", seed = 1234 : i64}
  fplan.program @main {
    fplan.launch @a ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @b ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @c ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @d ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @e ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @f ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @g ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @h ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Targets must be an index buffer.
module @float_targets {
  fplan.arena @a size(4096)
  fplan.buffer @z : tensor<4x10xf32> in @a at 0
  fplan.buffer @y : tensor<4xf32> in @a at 256
  fplan.buffer @l : tensor<4xf32> in @a at 512
  // expected-error @+1 {{kernel @ce (kind 'cross_entropy'): input 1 must be an index buffer (i32, i64)}}
  fplan.kernel @ce kind "cross_entropy"
  fplan.program @main {
    fplan.launch @ce ins [@z, @y] outs [@l] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The per-row loss is f32, like the CPU kernel's.
module @bf16_loss {
  fplan.arena @a size(4096)
  fplan.buffer @z : tensor<4x10xf32> in @a at 0
  fplan.buffer @y : tensor<4xi32> in @a at 256
  fplan.buffer @l : tensor<4xbf16> in @a at 512
  // expected-error @+1 {{kernel @ce (kind 'cross_entropy'): output 0 (loss) must be f32, got bf16}}
  fplan.kernel @ce kind "cross_entropy"
  fplan.program @main {
    fplan.launch @ce ins [@z, @y] outs [@l] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// One target per logits row.
module @targets_shape {
  fplan.arena @a size(4096)
  fplan.buffer @z : tensor<4x10xf32> in @a at 0
  fplan.buffer @y : tensor<5xi32> in @a at 256
  fplan.buffer @dce : tensor<4xf32> in @a at 512
  fplan.buffer @dz : tensor<4x10xf32> in @a at 1024
  fplan.kernel @ceg kind "cross_entropy_grad"
  fplan.program @main {
    // expected-error @+1 {{kernel @ceg (kind 'cross_entropy_grad'): input 1 (targets) must be [4], got [5]}}
    fplan.launch @ceg ins [@z, @y, @dce] outs [@dz] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// dlogits has the logits' shape.
module @dlogits_shape {
  fplan.arena @a size(4096)
  fplan.buffer @z : tensor<4x10xf32> in @a at 0
  fplan.buffer @y : tensor<4xi32> in @a at 256
  fplan.buffer @dce : tensor<4xf32> in @a at 512
  fplan.buffer @dz : tensor<40xf32> in @a at 1024
  fplan.kernel @ceg kind "cross_entropy_grad"
  fplan.program @main {
    // expected-error @+1 {{output 0 (dlogits) must have the logits' shape [4, 10], got [40]}}
    fplan.launch @ceg ins [@z, @y, @dce] outs [@dz] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The fused head needs its cap (0 = none) ...
module @head_without_cap {
  fplan.arena @a size(4096)
  fplan.buffer @h : tensor<4x8xf32> in @a at 0
  fplan.buffer @w : tensor<16x8xf32> in @a at 256
  fplan.buffer @y : tensor<4xi32> in @a at 1024
  fplan.buffer @ce : tensor<4xf32> in @a at 1280
  // expected-error @+1 {{kernel @head (kind 'softcap_ce'): needs the float attribute 'cap'}}
  fplan.kernel @head kind "softcap_ce"
  fplan.program @main {
    fplan.launch @head ins [@h, @w, @y] outs [@ce] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// ... which is not negative.
module @head_negative_cap {
  fplan.arena @a size(4096)
  fplan.buffer @h : tensor<4x8xf32> in @a at 0
  fplan.buffer @w : tensor<16x8xf32> in @a at 256
  fplan.buffer @y : tensor<4xi32> in @a at 1024
  fplan.buffer @ce : tensor<4xf32> in @a at 1280
  // expected-error @+1 {{kernel @head (kind 'softcap_ce'): attribute 'cap' must be >= 0 (0 = no cap) and finite, got -1.000000}}
  fplan.kernel @head kind "softcap_ce" params {cap = -1.0 : f32}
  fplan.program @main {
    fplan.launch @head ins [@h, @w, @y] outs [@ce] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The table's rows have h's width.
module @head_width_mismatch {
  fplan.arena @a size(4096)
  fplan.buffer @h : tensor<4x8xf32> in @a at 0
  fplan.buffer @w : tensor<16x9xf32> in @a at 256
  fplan.buffer @y : tensor<4xi32> in @a at 1024
  fplan.buffer @ce : tensor<4xf32> in @a at 1280
  fplan.kernel @head kind "softcap_ce" params {cap = 15.0 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @head (kind 'softcap_ce'): input 1 (w) must be [V, 8] (h's D), got [16, 9]}}
    fplan.launch @head ins [@h, @w, @y] outs [@ce] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The fused head's gradient: dw (a parameter gradient) is f32.
module @head_grad_bf16_dw {
  fplan.arena @a size(4096)
  fplan.buffer @h : tensor<4x8xf32> in @a at 0
  fplan.buffer @w : tensor<16x8xf32> in @a at 256
  fplan.buffer @y : tensor<4xi32> in @a at 1024
  fplan.buffer @dce : tensor<4xf32> in @a at 1280
  fplan.buffer @dh : tensor<4x8xf32> in @a at 1536
  fplan.buffer @dw : tensor<16x8xbf16> in @a at 2048
  // expected-error @+1 {{kernel @g (kind 'softcap_ce_grad'): output 1 (dw) must be f32, got bf16}}
  fplan.kernel @g kind "softcap_ce_grad" params {cap = 15.0 : f32}
  fplan.program @main {
    fplan.launch @g ins [@h, @w, @y, @dce] outs [@dh, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// dce is a float buffer.
module @head_grad_index_dce {
  fplan.arena @a size(4096)
  fplan.buffer @h : tensor<4x8xf32> in @a at 0
  fplan.buffer @w : tensor<16x8xf32> in @a at 256
  fplan.buffer @y : tensor<4xi32> in @a at 1024
  fplan.buffer @dce : tensor<4xi32> in @a at 1280
  fplan.buffer @dh : tensor<4x8xf32> in @a at 1536
  fplan.buffer @dw : tensor<16x8xf32> in @a at 2048
  // expected-error @+1 {{kernel @g (kind 'softcap_ce_grad'): input 3 must be a float buffer (f32, bf16, f16)}}
  fplan.kernel @g kind "softcap_ce_grad" params {cap = 15.0 : f32}
  fplan.program @main {
    fplan.launch @g ins [@h, @w, @y, @dce] outs [@dh, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// 16 rows of an fp32 [16 × 4096] gradient accumulator do not fit a block's shared memory.
module @head_grad_too_wide {
  fplan.arena @a size(1048576)
  fplan.buffer @h : tensor<4x4096xf32> in @a at 0
  fplan.buffer @w : tensor<16x4096xf32> in @a at 65536
  fplan.buffer @y : tensor<4xi32> in @a at 327680
  fplan.buffer @dce : tensor<4xf32> in @a at 328192
  fplan.buffer @dh : tensor<4x4096xf32> in @a at 328704
  fplan.buffer @dw : tensor<16x4096xf32> in @a at 394240
  fplan.kernel @g kind "softcap_ce_grad" params {cap = 15.0 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @g (kind 'softcap_ce_grad'): D = 4096 is too large: 16 rows of fp32 gradient (266240 bytes) exceed the 204800 bytes of shared memory a block may use}}
    fplan.launch @g ins [@h, @w, @y, @dce] outs [@dh, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The gradient's per-token scratch holds 2^20 rows.
module @head_grad_too_many_rows {
  fplan.arena @a size(16777216)
  fplan.buffer @h : tensor<1048577x1xbf16> in @a at 0
  fplan.buffer @w : tensor<16x1xbf16> in @a at 2101248
  fplan.buffer @y : tensor<1048577xi32> in @a at 2101504
  fplan.buffer @dce : tensor<1048577xf32> in @a at 6295808
  fplan.buffer @dh : tensor<1048577x1xbf16> in @a at 10490112
  fplan.buffer @dw : tensor<16x1xf32> in @a at 12591360
  fplan.kernel @g kind "softcap_ce_grad" params {cap = 15.0 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @g (kind 'softcap_ce_grad'): 1048577 token rows exceed the 1048576 the CUDA kernel's per-token scratch holds; split the rows}}
    fplan.launch @g ins [@h, @w, @y, @dce] outs [@dh, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @init_unknown_rule {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  // expected-error @+1 {{kernel @k (kind 'init_param'): attribute 'rule' = "xavier" is not one of zeros, ones, normal, trunc_normal, uniform, log_uniform, dt_bias}}
  fplan.kernel @k kind "init_param" params {param_index = 0 : i64, rule = "xavier", seed = 1 : i64}
  fplan.program @main {
    fplan.launch @k ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @init_without_std {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  // expected-error @+1 {{kernel @k (kind 'init_param'): needs the float attribute 'std'}}
  fplan.kernel @k kind "init_param" params {param_index = 0 : i64, rule = "normal", seed = 1 : i64}
  fplan.program @main {
    fplan.launch @k ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @init_zero_std {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  // expected-error @+1 {{kernel @k (kind 'init_param'): attribute 'std' must be positive and finite, got 0.000000}}
  fplan.kernel @k kind "init_param" params {param_index = 0 : i64, rule = "trunc_normal", seed = 1 : i64, std = 0.0 : f64}
  fplan.program @main {
    fplan.launch @k ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @init_without_seed {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  // expected-error @+1 {{kernel @k (kind 'init_param'): needs the integer attribute 'seed'}}
  fplan.kernel @k kind "init_param" params {param_index = 0 : i64, rule = "normal", std = 1.0 : f64}
  fplan.program @main {
    fplan.launch @k ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @init_param_index_range {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  // expected-error @+1 {{kernel @k (kind 'init_param'): attribute 'param_index' = 4294967296 must be in [0, 2^32)}}
  fplan.kernel @k kind "init_param" params {param_index = 4294967296 : i64, rule = "normal", seed = 1 : i64, std = 1.0 : f64}
  fplan.program @main {
    fplan.launch @k ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @init_empty_range {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  // expected-error @+1 {{kernel @k (kind 'init_param'): attributes 'low' = 1.000000 and 'high' = 1.000000 must be finite with low < high}}
  fplan.kernel @k kind "init_param" params {high = 1.0 : f64, low = 1.0 : f64, param_index = 0 : i64, rule = "uniform", seed = 1 : i64}
  fplan.program @main {
    fplan.launch @k ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @init_log_uniform_nonpositive {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  // expected-error @+1 {{kernel @k (kind 'init_param'): rule "log_uniform" needs 'low' > 0, got 0.000000}}
  fplan.kernel @k kind "init_param" params {high = 1.0 : f64, low = 0.0 : f64, param_index = 0 : i64, rule = "log_uniform", seed = 1 : i64}
  fplan.program @main {
    fplan.launch @k ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Parameters (and their optimizer state) are initialised in f32, as on the CPU.
module @init_bf16 {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xbf16> in @a at 0
  // expected-error @+1 {{kernel @k (kind 'init_param'): output 0 must be f32, got bf16}}
  fplan.kernel @k kind "init_param" params {param_index = 0 : i64, rule = "zeros", seed = 1 : i64}
  fplan.program @main {
    fplan.launch @k ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// softcap_ce_rows / softcap_ce_rows_grad (the plans' GEMM form of the head): one block per
// logits row, the row offset a launch argument, so both blocks share one source; cap 15 takes
// the fixed shift, a cap of 50 (> 43) the max shift. Threads: a power of two covering the
// row's V/4 16-byte units, up to 512 for the fixed-shift forward (no shared memory) and 1024
// for the gradient, whose row cache is V floats of dynamic shared memory.
// CHECK-LABEL: module @softcap_ce_rows
//       CHECK:   fplan.kernel @rows0 kind "softcap_ce_rows" params {cap = 1.500000e+01 : f32, row = 0 : i64} {entry = "fusion_softcap_ce_rows", source = "// Generated by fusionc (fplan-codegen-cuda) for kind 'softcap_ce_rows'. Do not edit.{{.*}}__launch_bounds__(512) fusion_softcap_ce_rows(const float* logits, const int32_t* targets, float* ce, int64_t rows, int64_t vocab, int64_t first) {\0A  fk::softcapCeRows<true>(logits, targets, ce, rows, vocab, first, (float)15.0);{{.*}}"}
//       CHECK:   fplan.kernel @rows1 kind "softcap_ce_rows" params {cap = 1.500000e+01 : f32, row = 4736 : i64} {entry = "fusion_softcap_ce_rows", source = "// Generated by fusionc (fplan-codegen-cuda) for kind 'softcap_ce_rows'. Do not edit.{{.*}}fk::softcapCeRows<true>(logits, targets, ce, rows, vocab, first, (float)15.0);{{.*}}"}
//       CHECK:   fplan.kernel @grad kind "softcap_ce_rows_grad" params {cap = 5.000000e+01 : f32, row = 4736 : i64} {entry = "fusion_softcap_ce_rows_grad", source = "{{.*}}__launch_bounds__(1024) fusion_softcap_ce_rows_grad(const float* logits, const int32_t* targets, const float* dce, __nv_bfloat16* dlogits, int64_t rows, int64_t vocab, int64_t first) {\0A  fk::softcapCeRowsGrad<false>(logits, targets, dce, dlogits, rows, vocab, first, (float)50.0);{{.*}}"}
//       CHECK:   fplan.launch @rows0 ins [@l, @y] outs [@ce] grid [4736, 1, 1] block [512, 1, 1] args [4736, 50304, 0]
//       CHECK:   fplan.launch @rows1 ins [@l, @y] outs [@ce] grid [4736, 1, 1] block [512, 1, 1] args [4736, 50304, 4736]
//       CHECK:   fplan.launch @grad ins [@l, @y, @dce] outs [@dl] grid [4736, 1, 1] block [1024, 1, 1] smem 201216 args [4736, 50304, 4736]
module @softcap_ce_rows {
  fplan.arena @a size(2000000000)
  fplan.buffer @l : tensor<4736x50304xf32> in @a at 0
  fplan.buffer @y : tensor<9472xi32> in @a at 952958976
  fplan.buffer @ce : tensor<4736xf32> in @a at 952996864
  fplan.buffer @dce : tensor<9472xf32> in @a at 953015808
  fplan.buffer @dl : tensor<4736x50304xbf16> in @a at 953053696
  fplan.kernel @rows0 kind "softcap_ce_rows" params {cap = 15.0 : f32, row = 0 : i64}
  fplan.kernel @rows1 kind "softcap_ce_rows" params {cap = 15.0 : f32, row = 4736 : i64}
  fplan.kernel @grad kind "softcap_ce_rows_grad" params {cap = 50.0 : f32, row = 4736 : i64}
  fplan.program @main {
    fplan.launch @rows0 ins [@l, @y] outs [@ce] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows1 ins [@l, @y] outs [@ce] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad ins [@l, @y, @dce] outs [@dl] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The max-shift forward (cap 0) caches its row too (V = 37: 10 units, 32 threads, 37 floats
// rounded up to 160 bytes); rows past the 224 KiB cache (V = 60001) get no shared memory and
// take the kernels' multi-pass fallback.
// CHECK-LABEL: module @softcap_ce_rows_cache
//       CHECK:   fplan.kernel @fwd kind "softcap_ce_rows" params {cap = 0.000000e+00 : f32, row = 2 : i64} {entry = "fusion_softcap_ce_rows", source = "{{.*}}__launch_bounds__(1024) fusion_softcap_ce_rows({{.*}}fk::softcapCeRows<false>(logits, targets, ce, rows, vocab, first, (float)0.0);{{.*}}"}
//       CHECK:   fplan.launch @fwd ins [@l, @y] outs [@ce] grid [3, 1, 1] block [32, 1, 1] smem 160 args [3, 37, 2]
//       CHECK:   fplan.launch @fwdlong ins [@ll, @y] outs [@cel] grid [2, 1, 1] block [1024, 1, 1] args [2, 60001, 1]
//       CHECK:   fplan.launch @gradlong ins [@ll, @y, @dce] outs [@dll] grid [2, 1, 1] block [1024, 1, 1] args [2, 60001, 1]
module @softcap_ce_rows_cache {
  fplan.arena @a size(2000000)
  fplan.buffer @l : tensor<3x37xf32> in @a at 0
  fplan.buffer @y : tensor<5xi32> in @a at 512
  fplan.buffer @dce : tensor<5xf32> in @a at 768
  fplan.buffer @ce : tensor<3xf32> in @a at 1024
  fplan.buffer @cel : tensor<2xf32> in @a at 1280
  fplan.buffer @ll : tensor<2x60001xf32> in @a at 2048
  fplan.buffer @dll : tensor<2x60001xf32> in @a at 1000000
  fplan.kernel @fwd kind "softcap_ce_rows" params {cap = 0.0 : f32, row = 2 : i64}
  fplan.kernel @fwdlong kind "softcap_ce_rows" params {cap = 0.0 : f32, row = 1 : i64}
  fplan.kernel @gradlong kind "softcap_ce_rows_grad" params {cap = 15.0 : f32, row = 1 : i64}
  fplan.program @main {
    fplan.launch @fwd ins [@l, @y] outs [@ce] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fwdlong ins [@ll, @y] outs [@cel] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @gradlong ins [@ll, @y, @dce] outs [@dll] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// softcap_ce_rows reads f32 logits only (a GEMM's fp32 result).
module @softcap_ce_rows_bf16_logits {
  fplan.arena @a size(4096)
  fplan.buffer @l : tensor<4x16xbf16> in @a at 0
  fplan.buffer @y : tensor<4xi32> in @a at 256
  fplan.buffer @ce : tensor<4xf32> in @a at 512
  // expected-error @+1 {{kernel @rows (kind 'softcap_ce_rows'): input 0 (logits) must be f32, got bf16}}
  fplan.kernel @rows kind "softcap_ce_rows" params {cap = 15.0 : f32, row = 0 : i64}
  fplan.program @main {
    fplan.launch @rows ins [@l, @y] outs [@ce] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The block's rows must lie within the targets.
module @softcap_ce_rows_past_end {
  fplan.arena @a size(4096)
  fplan.buffer @l : tensor<4x16xf32> in @a at 0
  fplan.buffer @y : tensor<6xi32> in @a at 256
  fplan.buffer @ce : tensor<4xf32> in @a at 512
  fplan.kernel @rows kind "softcap_ce_rows" params {cap = 15.0 : f32, row = 4 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @rows (kind 'softcap_ce_rows'): attribute 'row' = 4 with 4 logit rows runs past the 6 targets}}
    fplan.launch @rows ins [@l, @y] outs [@ce] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The row offset is required.
module @softcap_ce_rows_no_row {
  fplan.arena @a size(4096)
  fplan.buffer @l : tensor<4x16xf32> in @a at 0
  fplan.buffer @y : tensor<4xi32> in @a at 256
  fplan.buffer @dce : tensor<4xf32> in @a at 512
  fplan.buffer @dl : tensor<4x16xf32> in @a at 1024
  // expected-error @+1 {{kernel @g (kind 'softcap_ce_rows_grad'): needs the integer attribute 'row'}}
  fplan.kernel @g kind "softcap_ce_rows_grad" params {cap = 15.0 : f32}
  fplan.program @main {
    fplan.launch @g ins [@l, @y, @dce] outs [@dl] grid [1, 1, 1] block [1, 1, 1]
  }
}
