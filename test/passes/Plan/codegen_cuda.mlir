// RUN: fusion-opt %s --split-input-file --fplan-codegen-cuda --verify-diagnostics | FileCheck %s
// RUN: fusion-opt %s --split-input-file --fplan-codegen-cuda=block-size=128 --verify-diagnostics | FileCheck %s --check-prefix=B128

// An elementwise kernel gets CUDA source specialised to bf16 and a grid covering its
// 1000 elements; its launch gets the element count as the integer argument.
// CHECK-LABEL: module @elementwise_bf16
//       CHECK:   fplan.kernel @add0 kind "add" {entry = "fusion_add0", source = "{{.*}}__nv_bfloat16{{.*}}__bfloat162float(a[i]) + __bfloat162float(b[i]){{.*}}"}
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
