// RUN: fusion-opt %s --split-input-file --fplan-codegen-cuda --verify-diagnostics | FileCheck %s
// RUN: fusion-opt %s --split-input-file --fplan-codegen-cuda=block-size=128 --verify-diagnostics | FileCheck %s --check-prefix=B128

// An elementwise kernel gets a wrapper that includes its template and instantiates it for
// bf16, and a grid covering its 1000 elements; its launch gets the element count as the
// integer argument.
// CHECK-LABEL: module @elementwise_bf16
//       CHECK:   fplan.kernel @add0 kind "add" {entry = "fusion_add", source = "{{.*}}#include \22fusion/elementwise.cuh\22{{.*}}extern \22C\22 __global__ void fusion_add(const __nv_bfloat16* a, const __nv_bfloat16* b, __nv_bfloat16* out, int64_t n) {\0A  fk::binary(a, b, out, n, [](float x, float y) { return x + y; });{{.*}}"}
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

// rms_norm: row groups (d = 96: 16 lanes per row, 16 rows per 256-thread block) and
// (rows, d, T) as arguments; eps is baked into the source (exactly the f32 attribute).
// CHECK-LABEL: module @rms_norm_rows
//       CHECK:   fplan.kernel @norm kind "rms_norm" params {eps = 9.99999974E-6 : f32} {entry = "fusion_rms_norm", source = "{{.*}}fk::rmsNormRows(x, w, out, rows, d, groupThreads, (float)9.9999997473787516e-06);{{.*}}"}
//       CHECK:   fplan.launch @norm ins [@x, @w] outs [@y] grid [1, 1, 1] block [256, 1, 1] args [6, 96, 16]
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

// rms_norm rows longer than a row group holds (4096): one block of up to 512 threads per row,
// groupThreads = 0.
// CHECK-LABEL: module @rms_norm_long_rows
//       CHECK:   fplan.launch @norm ins [@x, @w] outs [@y] grid [2, 1, 1] block [512, 1, 1] args [2, 5000, 0]
module @rms_norm_long_rows {
  fplan.arena @a size(131072)
  fplan.buffer @x : tensor<2x5000xf32> in @a at 0
  fplan.buffer @w : tensor<5000xf32> in @a at 40192
  fplan.buffer @y : tensor<2x5000xf32> in @a at 60416
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
    // expected-error @+1 {{launches kernel @k on buffers of types  -> f16, but an earlier launch uses  -> f32; give each element type its own kernel}}
    fplan.launch @k ins [] outs [@h] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The other elementwise kinds: their attributes are baked into the source (scale's factor,
// softcap's cap), softplus switches to x above 20 as MODEL.md §1 says, swiglu is silu(a)·b.
// CHECK-LABEL: module @more_kinds
//       CHECK:   fplan.kernel @s kind "scale" params {factor = -3.750000e-01 : f32} {entry = "fusion_scale", source = "{{.*}}return (float)-0.375 * v;{{.*}}"}
//       CHECK:   fplan.kernel @c kind "softcap" params {cap = 1.500000e+01 : f32} {entry = "fusion_softcap", source = "{{.*}}return (float)15.0 * tanhf(v / (float)15.0);{{.*}}"}
//       CHECK:   fplan.kernel @p kind "softplus" {entry = "fusion_softplus", source = "{{.*}}v > 20.0f ? v : fmaxf(v, 0.0f) + log1pf(expf(-fabsf(v))){{.*}}"}
//       CHECK:   fplan.kernel @g kind "swiglu" {entry = "fusion_swiglu", source = "{{.*}}x / (1.0f + expf(-x)) * y{{.*}}"}
//       CHECK:   fplan.kernel @r kind "reshape" {entry = "fusion_reshape", source = "{{.*}}fk::copy(x, out, n);{{.*}}"}
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

// softcap without a cap has no meaning: an error at the kernel.
module @softcap_without_cap {
  fplan.arena @a size(256)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  fplan.buffer @y : tensor<16xf32> in @a at 64
  // expected-error @+1 {{kernel @c (kind 'softcap'): needs the float attribute 'cap'}}
  fplan.kernel @c kind "softcap"
  fplan.program @main {
    fplan.launch @c ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// cast converts through fp32 with one rounding at the store; the input type is part of the
// kernel (an i32 input converts exactly below 2^24).
// CHECK-LABEL: module @casts
//       CHECK:   fplan.kernel @down kind "cast" {entry = "fusion_cast", source = "{{.*}}(const float* x, __nv_bfloat16* out, int64_t n) {\0A  fk::cast(x, out, n);{{.*}}"}
//       CHECK:   fplan.kernel @counts kind "cast" {entry = "fusion_cast", source = "{{.*}}(const int32_t* x, float* out, int64_t n) {\0A  fk::cast(x, out, n);{{.*}}"}
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
    // expected-error @+1 {{launches kernel @c on buffers of types f16 -> bf16, but an earlier launch uses f32 -> bf16}}
    fplan.launch @c ins [@h] outs [@z] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A negative cap is refused too.
module @softcap_negative_cap {
  fplan.arena @a size(256)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  fplan.buffer @y : tensor<16xf32> in @a at 64
  // expected-error @+1 {{softcap needs a positive 'cap', got -2.000000}}
  fplan.kernel @c kind "softcap" params {cap = -2.0 : f32}
  fplan.program @main {
    fplan.launch @c ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Index buffers are no float storage for elementwise math.
module @index_output {
  fplan.arena @a size(256)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  fplan.buffer @y : tensor<16xi32> in @a at 64
  // expected-error @+1 {{kernel @k (kind 'silu'): output 0 must be a float buffer (f32, bf16, f16)}}
  fplan.kernel @k kind "silu"
  fplan.program @main {
    fplan.launch @k ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// reshape copies any element type (targets are i32), and keeps it.
// CHECK-LABEL: module @reshape_index
//       CHECK:   fplan.kernel @r kind "reshape" {entry = "fusion_reshape", source = "{{.*}}(const int32_t* x, int32_t* out, int64_t n){{.*}}"}
module @reshape_index {
  fplan.arena @a size(256)
  fplan.buffer @x : tensor<2x8xi32> in @a at 0
  fplan.buffer @y : tensor<16xi32> in @a at 64
  fplan.kernel @r kind "reshape"
  fplan.program @main {
    fplan.launch @r ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @reshape_changes_type {
  fplan.arena @a size(256)
  fplan.buffer @x : tensor<16xf32> in @a at 0
  fplan.buffer @y : tensor<16xbf16> in @a at 64
  // expected-error @+1 {{kernel @r (kind 'reshape'): copies f32 into bf16; a reshape keeps the element type}}
  fplan.kernel @r kind "reshape"
  fplan.program @main {
    fplan.launch @r ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}
