// RUN: fusion-opt %s --split-input-file --fplan-codegen-cuda --verify-diagnostics | FileCheck %s
// RUN: fusion-opt %s --split-input-file --fplan-codegen-cuda=block-size=128 --verify-diagnostics | FileCheck %s --check-prefix=B128

// An elementwise kernel gets CUDA source specialised to bf16 and a grid covering its
// 1000 elements; its launch gets the element count as the integer argument.
// CHECK-LABEL: module @elementwise_bf16
//       CHECK:   fplan.kernel @add0 kind "add" {entry = "fusion_add0", source = "{{.*}}__nv_bfloat16{{.*}}float x = __bfloat162float(a[i]), y = __bfloat162float(b[i]); out[i] = __float2bfloat16(x + y);{{.*}}"}
//       CHECK:   fplan.launch @add0 ins [@x, @y] outs [@z] grid [4, 1, 1] block [256, 1, 1] args [1000]
//       B128:   fplan.launch @add0 ins [@x, @y] outs [@z] grid [8, 1, 1] block [128, 1, 1] args [1000]
module @elementwise_bf16 {
  fplan.arena @a size(8192)
  fplan.buffer @x : tensor<1000xbf16> in @a at 0
  fplan.buffer @y : tensor<1000xbf16> in @a at 2048
  fplan.buffer @z : tensor<1000xbf16> in @a at 4096
  fplan.kernel @add0 kind "add"
  fplan.program @main {
    fplan.launch @add0 ins [@x, @y] outs [@z] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// rms_norm: one block per row, a power-of-two block for the tree reduction, its shared
// memory, and (rows, d) as arguments; eps is baked into the source.
// CHECK-LABEL: module @rms_norm_rows
//       CHECK:   fplan.kernel @norm kind "rms_norm" params {eps = 9.99999974E-6 : f32} {entry = "fusion_norm", source = "{{.*}}rsqrtf(partial[0] / (float)d + 1.000000e-05f){{.*}}"}
//       CHECK:   fplan.launch @norm ins [@x, @w] outs [@y] grid [6, 1, 1] block [128, 1, 1] smem 512 args [6, 96]
module @rms_norm_rows {
  fplan.arena @a size(8192)
  fplan.buffer @x : tensor<6x96xf32> in @a at 0
  fplan.buffer @w : tensor<96xf32> in @a at 4096
  fplan.buffer @y : tensor<6x96xf32> in @a at 4480
  fplan.kernel @norm kind "rms_norm" params {eps = 1.0e-5 : f32}
  fplan.program @main {
    fplan.launch @norm ins [@x, @w] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A kernel that already has device code is left alone, launches included.
// CHECK-LABEL: module @keeps_existing_source
//       CHECK:   fplan.kernel @k kind "silu" {entry = "mine", source = "hand written"}
//       CHECK:   fplan.launch @k ins [@x] outs [@y] grid [3, 1, 1] block [7, 1, 1]
//   CHECK-NOT:   args
module @keeps_existing_source {
  fplan.arena @a size(64)
  fplan.buffer @x : tensor<4xf32> in @a at 0
  fplan.buffer @y : tensor<4xf32> in @a at 16
  fplan.kernel @k kind "silu" {entry = "mine", source = "hand written"}
  fplan.program @main {
    fplan.launch @k ins [@x] outs [@y] grid [3, 1, 1] block [7, 1, 1]
  }
}

// -----

// A kernel that is never launched needs no device code.
// CHECK-LABEL: module @unlaunched
//       CHECK:   fplan.kernel @k kind "mul"{{$}}
module @unlaunched {
  fplan.kernel @k kind "mul"
  fplan.program @main {
  }
}

// -----

// One device function per element type: the second launch on f16 is an error.
module @mixed_element_types {
  fplan.arena @a size(64)
  fplan.buffer @x : tensor<4xf32> in @a at 0
  fplan.buffer @h : tensor<4xf16> in @a at 16
  fplan.kernel @k kind "fill"
  fplan.program @main {
    fplan.launch @k ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    // expected-error @+1 {{launches kernel @k on 'f16' buffers, but an earlier launch uses 'f32'}}
    fplan.launch @k ins [] outs [@h] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The other elementwise kinds: their attributes are baked into the source (scale's factor,
// softcap's cap), softplus switches to x above 20 as MODEL.md §1 says, swiglu is silu(a)·b.
// CHECK-LABEL: module @more_kinds
//       CHECK:   fplan.kernel @s kind "scale" params {factor = -3.750000e-01 : f32} {entry = "fusion_s", source = "{{.*}}out[i] = (-3.750000e-01f * v);{{.*}}"}
//       CHECK:   fplan.kernel @c kind "softcap" params {cap = 1.500000e+01 : f32} {entry = "fusion_c", source = "{{.*}}out[i] = (1.500000e+01f * tanhf(v / 1.500000e+01f));{{.*}}"}
//       CHECK:   fplan.kernel @p kind "softplus" {entry = "fusion_p", source = "{{.*}}v > 20.0f ? v : fmaxf(v, 0.0f) + log1pf(expf(-fabsf(v))){{.*}}"}
//       CHECK:   fplan.kernel @g kind "swiglu" {entry = "fusion_g", source = "{{.*}}x / (1.0f + expf(-x)) * y{{.*}}"}
//       CHECK:   fplan.kernel @r kind "reshape" {entry = "fusion_r", source = "{{.*}}out[i] = (v);{{.*}}"}
//       CHECK:   fplan.launch @s ins [@x] outs [@y] grid [1, 1, 1] block [256, 1, 1] args [16]
module @more_kinds {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  fplan.buffer @y : tensor<16xf32> in @a at 256
  fplan.buffer @z : tensor<16xf32> in @a at 512
  fplan.kernel @s kind "scale" params {factor = -0.375 : f32}
  fplan.kernel @c kind "softcap" params {cap = 15.0 : f32}
  fplan.kernel @p kind "softplus"
  fplan.kernel @g kind "swiglu"
  fplan.kernel @r kind "reshape"
  fplan.program @main {
    fplan.launch @s ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @c ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @p ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @g ins [@x, @y] outs [@z] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @r ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// softcap without a positive cap has no meaning: an error at the kernel.
module @softcap_without_cap {
  fplan.arena @a size(256)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  fplan.buffer @y : tensor<16xf32> in @a at 64
  // expected-error @+1 {{softcap needs a positive 'cap', got 0.000000}}
  fplan.kernel @c kind "softcap"
  fplan.program @main {
    fplan.launch @c ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// cast converts through fp32 with one rounding at the store; the input type is part of the
// kernel (an i32 input converts exactly below 2^24).
// CHECK-LABEL: module @casts
//       CHECK:   fplan.kernel @down kind "cast" {entry = "fusion_down", source = "{{.*}}(const float* x, __nv_bfloat16* out, int64_t n){{.*}}out[i] = __float2bfloat16((x[i]));{{.*}}"}
//       CHECK:   fplan.kernel @counts kind "cast" {entry = "fusion_counts", source = "{{.*}}(const int32_t* x, float* out, int64_t n){{.*}}out[i] = ((float)x[i]);{{.*}}"}
module @casts {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  fplan.buffer @h : tensor<16xbf16> in @a at 256
  fplan.buffer @c : tensor<16xi32> in @a at 512
  fplan.buffer @f : tensor<16xf32> in @a at 768
  fplan.kernel @down kind "cast"
  fplan.kernel @counts kind "cast"
  fplan.program @main {
    fplan.launch @down ins [@x] outs [@h] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @counts ins [@c] outs [@f] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// One cast kernel, two input types: the device function is specialised to one.
module @cast_two_inputs {
  fplan.arena @a size(4096)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  fplan.buffer @h : tensor<16xf16> in @a at 256
  fplan.buffer @y : tensor<16xbf16> in @a at 512
  fplan.buffer @z : tensor<16xbf16> in @a at 768
  fplan.kernel @c kind "cast"
  fplan.program @main {
    fplan.launch @c ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    // expected-error @+1 {{launches cast kernel @c on 'f16' inputs, but an earlier launch casts 'f32'; give each input type its own kernel}}
    fplan.launch @c ins [@h] outs [@z] grid [1, 1, 1] block [1, 1, 1]
  }
}
