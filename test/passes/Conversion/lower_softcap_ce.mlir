// RUN: fusion-opt %s --fusion-lower-to-plan | FileCheck %s --check-prefix=WHOLE
// RUN: fusion-opt %s --fusion-lower-to-plan=softcap-ce-block-bytes=32768 | FileCheck %s --check-prefix=BLOCKS
// RUN: not fusion-opt %s --fusion-lower-to-plan=softcap-ce-block-bytes=0 2>&1 | FileCheck %s --check-prefix=ZERO

// softcap_ce and softcap_ce_grad run as GEMMs around per-row kernels: h·Wᵀ into f32 logits
// (bf16 operands, fp32 result), softcap_ce_rows for the loss; softcap_ce_rows_grad for dℓ
// (h's type), then dh = dℓ·W and dW = dℓᵀ·h (f32).

// All 300 rows fit the default 1 GiB block: no slice, no concat.
//   WHOLE-DAG: fplan.buffer @head.logits : tensor<300x64xf32>
//   WHOLE-DAG: fplan.buffer @head.dlogits : tensor<300x64xbf16>
//   WHOLE-DAG: fplan.kernel @[[ROWS:softcap_ce_rows[^ ]*]] kind "softcap_ce_rows" params {cap = 1.500000e+01 : f32, row = 0 : i64}
//   WHOLE-DAG: fplan.kernel @[[GRAD:softcap_ce_rows_grad[^ ]*]] kind "softcap_ce_rows_grad" params {cap = 1.500000e+01 : f32, row = 0 : i64}
//       WHOLE: fplan.program @step
//  WHOLE-NEXT:   fplan.gemm @step.h, @step.w -> @head.logits transpose_b
//  WHOLE-NEXT:   fplan.launch @[[ROWS]] ins [@head.logits, @step.y] outs [@[[CE:[^ ]+]]]
//  WHOLE-NEXT:   fplan.gemm @step.h, @step.w -> @head.logits{{[.0-9]*}} transpose_b
//  WHOLE-NEXT:   fplan.launch @[[GRAD]] ins [@head.logits{{[.0-9]*}}, @step.y, @step.dce] outs [@head.dlogits]
//  WHOLE-NEXT:   fplan.gemm @head.dlogits, @step.w -> @[[DH:[^ ]+]]{{$}}
//  WHOLE-NEXT:   fplan.gemm @head.dlogits, @step.h -> @[[DW:[^ ]+]] transpose_a{{$}}
//   WHOLE-NOT:   kind "softcap_ce"
//   WHOLE-NOT:   kind "slice"

// A 32 KiB block holds 128 rows of 64 logits: blocks of 128, 128 and 44 rows; h is sliced
// per block, the gradient's dW accumulates from the second block on (beta 1), and the
// per-block ce and dh are concatenated.
//  BLOCKS-DAG: fplan.buffer @head.logits : tensor<128x64xf32>
//  BLOCKS-DAG: fplan.buffer @head.logits.0 : tensor<44x64xf32>
//  BLOCKS-DAG: fplan.kernel @{{slice[^ ]*}} kind "slice" params {dim = 0 : i64, size = 44 : i64, start = 256 : i64}
//  BLOCKS-DAG: fplan.kernel @{{softcap_ce_rows[^ ]*}} kind "softcap_ce_rows" params {cap = 1.500000e+01 : f32, row = 256 : i64}
//      BLOCKS: fplan.program @step
//      BLOCKS:   fplan.launch @{{slice[^ ]*}} ins [@step.h] outs [@[[H0:[^ ]+]]]
// BLOCKS-NEXT:   fplan.gemm @[[H0]], @step.w -> @[[L:head.logits[^ ]*]] transpose_b
// BLOCKS-NEXT:   fplan.launch @{{softcap_ce_rows[^ ]*}} ins [@[[L]], @step.y] outs [@[[C0:[^ ]+]]]
//      BLOCKS:   fplan.gemm {{.*}} -> @head.logits.0 transpose_b
//      BLOCKS:   fplan.launch @{{concat[^ ]*}} ins [@[[C0]], @{{[^ ]+}}, @{{[^ ]+}}] outs [@[[CE:[^ ]+]]]
//      BLOCKS:   fplan.launch @{{softcap_ce_rows_grad[^ ]*}} ins [@{{[^ ]+}}, @step.y, @step.dce] outs [@[[G:[^ ]+]]]
// BLOCKS-NEXT:   fplan.gemm @[[G]], @step.w -> @[[DH0:[^ ]+]]{{$}}
// BLOCKS-NEXT:   fplan.gemm @[[G]], @{{[^ ]+}} -> @[[DW:[^ ]+]] transpose_a{{$}}
//      BLOCKS:   fplan.gemm @{{[^ ]+}}, @{{[^ ]+}} -> @[[DW]] transpose_a {beta = 1.000000e+00 : f32}
//      BLOCKS:   fplan.gemm @{{[^ ]+}}, @{{[^ ]+}} -> @[[DW]] transpose_a {beta = 1.000000e+00 : f32}
// BLOCKS-NEXT:   fplan.launch @{{concat[^ ]*}} ins [@[[DH0]], @{{[^ ]+}}, @{{[^ ]+}}] outs

// ZERO: softcap-ce-block-bytes must be positive, got 0
module {
  func.func @step(%h: tensor<300x8xbf16> {fusion.name = "h"}, %w: tensor<64x8xbf16> {fusion.name = "w"},
                  %y: tensor<300xi32> {fusion.name = "y"}, %dce: tensor<300xf32> {fusion.name = "dce"})
      -> (tensor<300xf32> {fusion.name = "ce"}, tensor<300x8xbf16> {fusion.name = "dh"}, tensor<64x8xf32> {fusion.name = "dw"}) {
    %ce = fusion.softcap_ce %h, %w, %y {cap = 15.0 : f32} : (tensor<300x8xbf16>, tensor<64x8xbf16>, tensor<300xi32>) -> tensor<300xf32> loc("head")
    %dh, %dw = fusion.softcap_ce_grad %h, %w, %y, %dce {cap = 15.0 : f32} : (tensor<300x8xbf16>, tensor<64x8xbf16>, tensor<300xi32>, tensor<300xf32>) -> (tensor<300x8xbf16>, tensor<64x8xf32>) loc("head")
    return %ce, %dh, %dw : tensor<300xf32>, tensor<300x8xbf16>, tensor<64x8xf32>
  }
}
