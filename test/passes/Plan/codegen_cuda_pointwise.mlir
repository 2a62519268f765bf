// RUN: fusion-opt %s --split-input-file --fplan-codegen-cuda --verify-diagnostics | FileCheck %s

// The pointwise family (kinds/Pointwise.cpp, templates/pointwise.cuh) and the norms beyond
// rms_norm (kinds/Norm.cpp, templates/norm.cuh): wrapper sources and launch geometry, then
// the errors for wrong buffers, attributes and shapes.

// rms_norm_grad, bf16 with an f32 dw: d = 96 gives row groups of 16 lanes (T = 16, 2 chunks
// of 4 columns each), 16 per block; 40 rows need 3 blocks; eps is baked in (exactly the f32
// attribute). The dynamic shared memory holds the 16 groups' fp64 dw accumulators
// (16 x 96 doubles).
// CHECK-LABEL: module @rms_norm_grad_bf16
//       CHECK:   fplan.kernel @g kind "rms_norm_grad" params {eps = 9.99999997E-7 : f32} {entry = "fusion_rms_norm_grad", source = "{{.*}}#include \22fusion/norm.cuh\22{{.*}}extern \22C\22 __global__ void __launch_bounds__(512) fusion_rms_norm_grad(const __nv_bfloat16* x, const __nv_bfloat16* w, const __nv_bfloat16* dy, __nv_bfloat16* dx, float* dw, int64_t rows, int64_t d, int64_t groupThreads) {\0A  fk::rmsNormGrad(x, w, dy, dx, dw, rows, d, groupThreads, 9.9999999747524271e-07);{{.*}}"}
//       CHECK:   fplan.launch @g ins [@x, @w, @dy] outs [@dx, @dw] grid [3, 1, 1] block [256, 1, 1] smem 12288 args [40, 96, 16]
module @rms_norm_grad_bf16 {
  fplan.arena @a size(65536)
  fplan.buffer @x : tensor<4x10x96xbf16> in @a at 0
  fplan.buffer @w : tensor<96xbf16> in @a at 8192
  fplan.buffer @dy : tensor<4x10x96xbf16> in @a at 8448
  fplan.buffer @dx : tensor<4x10x96xbf16> in @a at 16640
  fplan.buffer @dw : tensor<96xf32> in @a at 24832
  fplan.kernel @g kind "rms_norm_grad" params {eps = 1.0e-6 : f32}
  fplan.program @main {
    fplan.launch @g ins [@x, @w, @dy] outs [@dx, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// d = 1024: groups of 128 threads (8 columns each), 2 per block; 3000 rows are capped at
// 1024 blocks (also 2^20 / 1024, the dw partial scratch), which loop over the rows.
// CHECK-LABEL: module @rms_norm_grad_wide
//       CHECK:   fplan.launch @g ins [@x, @w, @dy] outs [@dx, @dw] grid [1024, 1, 1] block [256, 1, 1] smem 16384 args [3000, 1024, 128]
module @rms_norm_grad_wide {
  fplan.arena @a size(67108864)
  fplan.buffer @x : tensor<3000x1024xf32> in @a at 0
  fplan.buffer @w : tensor<1024xf32> in @a at 12288000
  fplan.buffer @dy : tensor<3000x1024xf32> in @a at 12292096
  fplan.buffer @dx : tensor<3000x1024xf32> in @a at 24580096
  fplan.buffer @dw : tensor<1024xf32> in @a at 36868096
  fplan.kernel @g kind "rms_norm_grad" params {eps = 1.0e-6 : f32}
  fplan.program @main {
    fplan.launch @g ins [@x, @w, @dy] outs [@dx, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// l2_norm and l2_norm_grad over rows of 128 (GDN's heads): 16 lanes per row, 16 rows per block;
// eps and scale are baked in as doubles.
// CHECK-LABEL: module @l2_norms
//       CHECK:   fplan.kernel @n kind "l2_norm" {{.*}}source = "{{.*}}fusion_l2_norm(const float* x, float* out, int64_t rows, int64_t d, int64_t groupThreads) {\0A  fk::l2Norm(x, out, rows, d, groupThreads, 9.9999999747524271e-07, 0.25);{{.*}}"}
//       CHECK:   fplan.kernel @ng kind "l2_norm_grad" {{.*}}source = "{{.*}}fusion_l2_norm_grad(const float* x, const float* dy, float* dx, int64_t rows, int64_t d, int64_t groupThreads) {\0A  fk::l2NormGrad(x, dy, dx, rows, d, groupThreads, 9.9999999747524271e-07, 0.25);{{.*}}"}
//       CHECK:   fplan.launch @n ins [@x] outs [@y] grid [2, 1, 1] block [256, 1, 1] args [30, 128, 16]
//       CHECK:   fplan.launch @ng ins [@x, @dy] outs [@dx] grid [2, 1, 1] block [256, 1, 1] args [30, 128, 16]
module @l2_norms {
  fplan.arena @a size(65536)
  fplan.buffer @x : tensor<2x5x3x128xf32> in @a at 0
  fplan.buffer @dy : tensor<2x5x3x128xf32> in @a at 15360
  fplan.buffer @y : tensor<2x5x3x128xf32> in @a at 30720
  fplan.buffer @dx : tensor<2x5x3x128xf32> in @a at 46080
  fplan.kernel @n kind "l2_norm" params {eps = 1.0e-6 : f32, scale = 0.25 : f32}
  fplan.kernel @ng kind "l2_norm_grad" params {eps = 1.0e-6 : f32, scale = 0.25 : f32}
  fplan.program @main {
    fplan.launch @n ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @ng ins [@x, @dy] outs [@dx] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// activation_grad picks its derivative at compile time (softcap's cap baked in);
// swiglu_grad has two outputs; both are grid-stride loops over the element count.
// CHECK-LABEL: module @activation_grads
//       CHECK:   fplan.kernel @silu kind "activation_grad" {{.*}}source = "{{.*}}#include \22fusion/pointwise.cuh\22{{.*}}fusion_activation_grad(const __nv_bfloat16* x, const __nv_bfloat16* dy, __nv_bfloat16* dx, int64_t n) {\0A  fk::activationGrad<fk::kActSilu>(x, dy, dx, n, 0.0);{{.*}}"}
//       CHECK:   fplan.kernel @cap kind "activation_grad" {{.*}}source = "{{.*}}fusion_activation_grad(const float* x, const float* dy, float* dx, int64_t n) {\0A  fk::activationGrad<fk::kActSoftcap>(x, dy, dx, n, 15.0);{{.*}}"}
//       CHECK:   fplan.kernel @sw kind "swiglu_grad" {entry = "fusion_swiglu_grad", source = "{{.*}}fusion_swiglu_grad(const float* gate, const float* up, const float* dy, float* dgate, float* dup, int64_t n) {\0A  fk::swigluGrad(gate, up, dy, dgate, dup, n);{{.*}}"}
//       CHECK:   fplan.launch @silu ins [@x, @dy] outs [@dx] grid [4, 1, 1] block [256, 1, 1] args [1000]
//       CHECK:   fplan.launch @cap ins [@xf, @dyf] outs [@dxf] grid [4, 1, 1] block [256, 1, 1] args [1000]
//       CHECK:   fplan.launch @sw ins [@xf, @dyf, @dyf] outs [@dxf, @duf] grid [4, 1, 1] block [256, 1, 1] args [1000]
module @activation_grads {
  fplan.arena @a size(65536)
  fplan.buffer @x : tensor<1000xbf16> in @a at 0
  fplan.buffer @dy : tensor<1000xbf16> in @a at 2048
  fplan.buffer @dx : tensor<1000xbf16> in @a at 4096
  fplan.buffer @xf : tensor<10x100xf32> in @a at 8192
  fplan.buffer @dyf : tensor<10x100xf32> in @a at 12288
  fplan.buffer @dxf : tensor<10x100xf32> in @a at 16384
  fplan.buffer @duf : tensor<10x100xf32> in @a at 20480
  fplan.kernel @silu kind "activation_grad" params {fn = "silu"}
  fplan.kernel @cap kind "activation_grad" params {fn = "softcap", cap = 15.0 : f32}
  fplan.kernel @sw kind "swiglu_grad"
  fplan.program @main {
    fplan.launch @silu ins [@x, @dy] outs [@dx] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @cap ins [@xf, @dyf] outs [@dxf] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @sw ins [@xf, @dyf, @dyf] outs [@dxf, @duf] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// rope, rope_grad (in place, on the bench's k shape) and rope_at: a block per (position,
// batch slice) with the position's 16 cos/sin pairs in dynamic shared memory (T = 2048 >= 256:
// 4 slices of 4 batches; the decode shape's T = 3: one slice per batch), arguments
// (B, T, rows per position, d); rotary_dims and theta are baked in; rope_at reads its first
// position from the index buffer.
// CHECK-LABEL: module @ropes
//       CHECK:   fplan.kernel @r kind "rope" {{.*}}source = "{{.*}}fusion_rope(const __nv_bfloat16* x, __nv_bfloat16* out, int64_t batch, int64_t seq, int64_t rowsPerPosition, int64_t d) {\0A  fk::rope<false>(x, out, batch, seq, rowsPerPosition, d, 32, 10000.0, 0);{{.*}}"}
//       CHECK:   fplan.kernel @rg kind "rope_grad" {{.*}}source = "{{.*}}fusion_rope_grad(const __nv_bfloat16* dy, __nv_bfloat16* dx, int64_t batch, int64_t seq, int64_t rowsPerPosition, int64_t d) {\0A  fk::rope<true>(dy, dx, batch, seq, rowsPerPosition, d, 32, 10000.0, 0);{{.*}}"}
//       CHECK:   fplan.kernel @ra kind "rope_at" {{.*}}source = "{{.*}}fusion_rope_at(const float* x, const int32_t* position, float* out, int64_t batch, int64_t seq, int64_t rowsPerPosition, int64_t d) {\0A  fk::rope<false>(x, out, batch, seq, rowsPerPosition, d, 32, 10000.0, fk::ldIndex(position[0]));{{.*}}"}
//       CHECK:   fplan.launch @r ins [@x] outs [@y] grid [2048, 4, 1] block [256, 1, 1] smem 128 args [16, 2048, 4, 96]
//       CHECK:   fplan.launch @rg ins [@y] outs [@x] grid [2048, 4, 1] block [256, 1, 1] smem 128 args [16, 2048, 4, 96]
//       CHECK:   fplan.launch @ra ins [@q, @p] outs [@qo] grid [3, 1, 1] block [256, 1, 1] smem 128 args [1, 3, 16, 96]
module @ropes {
  fplan.arena @a size(25231360)
  fplan.buffer @x : tensor<16x2048x4x96xbf16> in @a at 0
  fplan.buffer @y : tensor<16x2048x4x96xbf16> in @a at 0
  fplan.buffer @q : tensor<1x3x16x96xf32> in @a at 25165824
  fplan.buffer @qo : tensor<1x3x16x96xf32> in @a at 25198592
  fplan.buffer @p : tensor<1xi32> in @a at 25231104
  fplan.kernel @r kind "rope" params {rotary_dims = 32 : i64, theta = 1.0e+04 : f32}
  fplan.kernel @rg kind "rope_grad" params {rotary_dims = 32 : i64, theta = 1.0e+04 : f32}
  fplan.kernel @ra kind "rope_at" params {rotary_dims = 32 : i64, theta = 1.0e+04 : f32}
  fplan.program @main {
    fplan.launch @r ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rg ins [@y] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @ra ins [@q, @p] outs [@qo] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// dw is f32 whatever the other buffers (as on the CPU).
module @dw_not_f32 {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<4x8xbf16> in @a at 0
  fplan.buffer @w : tensor<8xbf16> in @a at 256
  fplan.buffer @dy : tensor<4x8xbf16> in @a at 512
  fplan.buffer @dx : tensor<4x8xbf16> in @a at 768
  fplan.buffer @dw : tensor<8xbf16> in @a at 1024
  // expected-error @+1 {{kernel @g (kind 'rms_norm_grad'): output 1 (dw) must be f32, got bf16}}
  fplan.kernel @g kind "rms_norm_grad" params {eps = 1.0e-6 : f32}
  fplan.program @main {
    fplan.launch @g ins [@x, @w, @dy] outs [@dx, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// eps is required (no default), as on the CPU.
module @rms_norm_grad_without_eps {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<4x8xf32> in @a at 0
  fplan.buffer @w : tensor<8xf32> in @a at 256
  fplan.buffer @dy : tensor<4x8xf32> in @a at 512
  fplan.buffer @dx : tensor<4x8xf32> in @a at 768
  fplan.buffer @dw : tensor<8xf32> in @a at 1024
  // expected-error @+1 {{kernel @g (kind 'rms_norm_grad'): needs the float attribute 'eps'}}
  fplan.kernel @g kind "rms_norm_grad"
  fplan.program @main {
    fplan.launch @g ins [@x, @w, @dy] outs [@dx, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A row group holds at most 512 x 2 x 4 columns.
module @rms_norm_grad_too_wide {
  fplan.arena @a size(262144)
  fplan.buffer @x : tensor<2x5000xf32> in @a at 0
  fplan.buffer @w : tensor<5000xf32> in @a at 40960
  fplan.buffer @dy : tensor<2x5000xf32> in @a at 61440
  fplan.buffer @dx : tensor<2x5000xf32> in @a at 102400
  fplan.buffer @dw : tensor<5000xf32> in @a at 143360
  fplan.kernel @g kind "rms_norm_grad" params {eps = 1.0e-6 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @g (kind 'rms_norm_grad'): rows of 5000 elements are longer than the 4096 a row group holds (512 threads x 2 chunks of 4 columns)}}
    fplan.launch @g ins [@x, @w, @dy] outs [@dx, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// w must have the shape [d].
module @rms_norm_grad_wrong_weight {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<4x8xf32> in @a at 0
  fplan.buffer @w : tensor<4xf32> in @a at 256
  fplan.buffer @dy : tensor<4x8xf32> in @a at 512
  fplan.buffer @dx : tensor<4x8xf32> in @a at 768
  fplan.buffer @dw : tensor<8xf32> in @a at 1024
  fplan.kernel @g kind "rms_norm_grad" params {eps = 1.0e-6 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @g (kind 'rms_norm_grad'): input 1 (w) must have shape [8], got [4]}}
    fplan.launch @g ins [@x, @w, @dy] outs [@dx, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// l2_norm's eps must be positive (the CPU kernel's rule).
module @l2_norm_zero_eps {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<4x8xf32> in @a at 0
  fplan.buffer @y : tensor<4x8xf32> in @a at 256
  // expected-error @+1 {{kernel @n (kind 'l2_norm'): attribute 'eps' must be positive, got 0.000000}}
  fplan.kernel @n kind "l2_norm" params {eps = 0.0 : f32, scale = 1.0 : f32}
  fplan.program @main {
    fplan.launch @n ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// scale is required.
module @l2_norm_grad_without_scale {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<4x8xf32> in @a at 0
  fplan.buffer @dy : tensor<4x8xf32> in @a at 256
  fplan.buffer @dx : tensor<4x8xf32> in @a at 512
  // expected-error @+1 {{kernel @n (kind 'l2_norm_grad'): needs the float attribute 'scale'}}
  fplan.kernel @n kind "l2_norm_grad" params {eps = 1.0e-6 : f32}
  fplan.program @main {
    fplan.launch @n ins [@x, @dy] outs [@dx] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Norms of integer buffers have no meaning.
module @l2_norm_integer_input {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<4x8xi32> in @a at 0
  fplan.buffer @y : tensor<4x8xf32> in @a at 256
  // expected-error @+1 {{kernel @n (kind 'l2_norm'): input 0 must be a float buffer (f32, bf16, f16)}}
  fplan.kernel @n kind "l2_norm" params {eps = 1.0e-6 : f32, scale = 1.0 : f32}
  fplan.program @main {
    fplan.launch @n ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// activation_grad knows four functions.
module @activation_grad_unknown_fn {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  fplan.buffer @dy : tensor<16xf32> in @a at 256
  fplan.buffer @dx : tensor<16xf32> in @a at 512
  // expected-error @+1 {{kernel @k (kind 'activation_grad'): attribute 'fn' must be one of silu, sigmoid, softplus, softcap, got 'gelu'}}
  fplan.kernel @k kind "activation_grad" params {fn = "gelu"}
  fplan.program @main {
    fplan.launch @k ins [@x, @dy] outs [@dx] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// softcap's derivative needs its cap.
module @activation_grad_softcap_without_cap {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  fplan.buffer @dy : tensor<16xf32> in @a at 256
  fplan.buffer @dx : tensor<16xf32> in @a at 512
  // expected-error @+1 {{kernel @k (kind 'activation_grad'): needs the float attribute 'cap'}}
  fplan.kernel @k kind "activation_grad" params {fn = "softcap"}
  fplan.program @main {
    fplan.launch @k ins [@x, @dy] outs [@dx] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// fn is required.
module @activation_grad_without_fn {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  fplan.buffer @dy : tensor<16xf32> in @a at 256
  fplan.buffer @dx : tensor<16xf32> in @a at 512
  // expected-error @+1 {{kernel @k (kind 'activation_grad'): needs the string attribute 'fn'}}
  fplan.kernel @k kind "activation_grad"
  fplan.program @main {
    fplan.launch @k ins [@x, @dy] outs [@dx] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Every buffer of an elementwise gradient has the same element count.
module @swiglu_grad_mismatched {
  fplan.arena @a size(4096)
  fplan.buffer @g : tensor<16xf32> in @a at 0
  fplan.buffer @u : tensor<16xf32> in @a at 256
  fplan.buffer @dy : tensor<8xf32> in @a at 512
  fplan.buffer @dg : tensor<16xf32> in @a at 768
  fplan.buffer @du : tensor<16xf32> in @a at 1024
  fplan.kernel @k kind "swiglu_grad"
  fplan.program @main {
    // expected-error @+1 {{kernel @k (kind 'swiglu_grad'): input 2 has 8 elements, input 0 16}}
    fplan.launch @k ins [@g, @u, @dy] outs [@dg, @du] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// rotary_dims counts whole pairs.
module @rope_odd_dims {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<1x2x2x8xf32> in @a at 0
  fplan.buffer @y : tensor<1x2x2x8xf32> in @a at 256
  // expected-error @+1 {{kernel @r (kind 'rope'): attribute 'rotary_dims' = 5 must be even and >= 2}}
  fplan.kernel @r kind "rope" params {rotary_dims = 5 : i64, theta = 1.0e+04 : f32}
  fplan.program @main {
    fplan.launch @r ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// rope needs [B, T, ..., d].
module @rope_rank_two {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<2x8xf32> in @a at 0
  fplan.buffer @y : tensor<2x8xf32> in @a at 256
  fplan.kernel @r kind "rope_grad" params {rotary_dims = 4 : i64, theta = 1.0e+04 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @r (kind 'rope_grad'): input 0 must have rank >= 3 ([B, T, ..., d]), got rank 2}}
    fplan.launch @r ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// rotary_dims cannot exceed the row.
module @rope_dims_exceed_row {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<1x2x2x8xf32> in @a at 0
  fplan.buffer @y : tensor<1x2x2x8xf32> in @a at 256
  fplan.kernel @r kind "rope" params {rotary_dims = 16 : i64, theta = 1.0e+04 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @r (kind 'rope'): attribute 'rotary_dims' = 16 exceeds the last dimension 8}}
    fplan.launch @r ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// rope_at's position is an index buffer...
module @rope_at_float_position {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<1x1x2x8xf32> in @a at 0
  fplan.buffer @p : tensor<1xf32> in @a at 256
  fplan.buffer @y : tensor<1x1x2x8xf32> in @a at 512
  // expected-error @+1 {{kernel @r (kind 'rope_at'): input 1 must be an index buffer (i32, i64)}}
  fplan.kernel @r kind "rope_at" params {rotary_dims = 8 : i64, theta = 1.0e+04 : f32}
  fplan.program @main {
    fplan.launch @r ins [@x, @p] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// ... of one element.
module @rope_at_two_positions {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<1x1x2x8xf32> in @a at 0
  fplan.buffer @p : tensor<2xi32> in @a at 256
  fplan.buffer @y : tensor<1x1x2x8xf32> in @a at 512
  fplan.kernel @r kind "rope_at" params {rotary_dims = 8 : i64, theta = 1.0e+04 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @r (kind 'rope_at'): input 1 (position) must hold one element, got shape [2]}}
    fplan.launch @r ins [@x, @p] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}
