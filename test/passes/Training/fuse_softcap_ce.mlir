// RUN: fusion-opt %s --split-input-file --fusion-fuse-softcap-ce | FileCheck %s

// The main head as the model builds it in bf16: matmul, cast to f32, softcap, CE.
// CHECK-LABEL: func.func @bf16_head
//  CHECK-SAME: (%[[H:.*]]: tensor<64x32xbf16>, %[[W:.*]]: tensor<512x32xbf16>, %[[Y:.*]]: tensor<64xi32>)
//   CHECK-NOT:   fusion.matmul
//       CHECK:   %[[CE:.*]] = fusion.softcap_ce %[[H]], %[[W]], %[[Y]] {cap = 1.500000e+01 : f32} : (tensor<64x32xbf16>, tensor<512x32xbf16>, tensor<64xi32>) -> tensor<64xf32>
//   CHECK-NOT:   fusion.softcap
//       CHECK:   return %[[CE]]
func.func @bf16_head(%h: tensor<64x32xbf16>, %w: tensor<512x32xbf16>, %y: tensor<64xi32>) -> tensor<64xf32> {
  %l = fusion.matmul %h, %w {transpose_b} : (tensor<64x32xbf16>, tensor<512x32xbf16>) -> tensor<64x512xbf16>
  %f = fusion.cast %l : (tensor<64x512xbf16>) -> tensor<64x512xf32>
  %z = fusion.softcap %f {cap = 15.0 : f32} : tensor<64x512xf32>
  %ce = fusion.cross_entropy %z, %y : (tensor<64x512xf32>, tensor<64xi32>) -> tensor<64xf32>
  return %ce : tensor<64xf32>
}

// -----

// An uncapped f32 head fuses with cap = 0.
// CHECK-LABEL: func.func @uncapped
//       CHECK:   fusion.softcap_ce %{{.*}}, %{{.*}}, %{{.*}} {cap = 0.000000e+00 : f32}
func.func @uncapped(%h: tensor<64x32xf32>, %w: tensor<512x32xf32>, %y: tensor<64xi32>) -> tensor<64xf32> {
  %l = fusion.matmul %h, %w {transpose_b} : (tensor<64x32xf32>, tensor<512x32xf32>) -> tensor<64x512xf32>
  %ce = fusion.cross_entropy %l, %y : (tensor<64x512xf32>, tensor<64xi32>) -> tensor<64xf32>
  return %ce : tensor<64xf32>
}

// -----

// Logits with another use must stay materialised: nothing changes.
// CHECK-LABEL: func.func @logits_escape
//       CHECK:   fusion.matmul
//       CHECK:   fusion.softcap
//       CHECK:   fusion.cross_entropy
//   CHECK-NOT:   fusion.softcap_ce
func.func @logits_escape(%h: tensor<64x32xf32>, %w: tensor<512x32xf32>, %y: tensor<64xi32>) -> (tensor<64xf32>, tensor<64x512xf32>) {
  %l = fusion.matmul %h, %w {transpose_b} : (tensor<64x32xf32>, tensor<512x32xf32>) -> tensor<64x512xf32>
  %z = fusion.softcap %l {cap = 15.0 : f32} : tensor<64x512xf32>
  %ce = fusion.cross_entropy %z, %y : (tensor<64x512xf32>, tensor<64xi32>) -> tensor<64xf32>
  return %ce, %z : tensor<64xf32>, tensor<64x512xf32>
}

// -----

// A head whose weight is not [V, D] (no transpose_b) is not the tied head: left alone.
// CHECK-LABEL: func.func @not_transposed
//       CHECK:   fusion.matmul
//   CHECK-NOT:   fusion.softcap_ce
func.func @not_transposed(%h: tensor<64x32xf32>, %w: tensor<32x512xf32>, %y: tensor<64xi32>) -> tensor<64xf32> {
  %l = fusion.matmul %h, %w : (tensor<64x32xf32>, tensor<32x512xf32>) -> tensor<64x512xf32>
  %ce = fusion.cross_entropy %l, %y : (tensor<64x512xf32>, tensor<64xi32>) -> tensor<64xf32>
  return %ce : tensor<64xf32>
}
