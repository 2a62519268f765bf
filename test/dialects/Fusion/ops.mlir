// RUN: fusion-opt %s | fusion-opt | FileCheck %s
// RUN: fusion-opt %s --mlir-print-op-generic | fusion-opt | FileCheck %s

// Elementwise ops keep their operand order and type.
// CHECK-LABEL: func.func @elementwise
//  CHECK-SAME: (%[[X:.+]]: tensor<4x8xf32>, %[[Y:.+]]: tensor<4x8xf32>)
//       CHECK:   %[[S:.+]] = fusion.add %[[X]], %[[Y]] : tensor<4x8xf32>
//       CHECK:   %[[P:.+]] = fusion.mul %[[S]], %[[Y]] : tensor<4x8xf32>
//       CHECK:   fusion.silu %[[P]] : tensor<4x8xf32>
func.func @elementwise(%x: tensor<4x8xf32>, %y: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %s = fusion.add %x, %y : tensor<4x8xf32>
  %p = fusion.mul %s, %y : tensor<4x8xf32>
  %r = fusion.silu %p : tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}

// A batched activation times a shared, transposed weight (x @ Wᵀ).
// CHECK-LABEL: func.func @matmul_shared_weight
//       CHECK:   fusion.matmul %{{.+}}, %{{.+}} {transpose_b} : (tensor<2x16x64xbf16>, tensor<128x64xbf16>) -> tensor<2x16x128xbf16>
func.func @matmul_shared_weight(%x: tensor<2x16x64xbf16>, %w: tensor<128x64xbf16>) -> tensor<2x16x128xbf16> {
  %y = fusion.matmul %x, %w {transpose_b} : (tensor<2x16x64xbf16>, tensor<128x64xbf16>) -> tensor<2x16x128xbf16>
  return %y : tensor<2x16x128xbf16>
}

// Batched on both sides, transposed lhs (the weight-gradient form Xᵀ @ dY).
// CHECK-LABEL: func.func @matmul_batched_transpose_a
//       CHECK:   fusion.matmul %{{.+}}, %{{.+}} {transpose_a} : (tensor<3x16x8xf32>, tensor<3x16x4xf32>) -> tensor<3x8x4xf32>
func.func @matmul_batched_transpose_a(%a: tensor<3x16x8xf32>, %b: tensor<3x16x4xf32>) -> tensor<3x8x4xf32> {
  %c = fusion.matmul %a, %b {transpose_a} : (tensor<3x16x8xf32>, tensor<3x16x4xf32>) -> tensor<3x8x4xf32>
  return %c : tensor<3x8x4xf32>
}

// RMSNorm keeps eps.
// CHECK-LABEL: func.func @rms_norm
//       CHECK:   fusion.rms_norm %{{.+}}, %{{.+}} {eps = 9.99999997E-7 : f32} : (tensor<2x16x64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
func.func @rms_norm(%x: tensor<2x16x64xf32>, %w: tensor<64xf32>) -> tensor<2x16x64xf32> {
  %y = fusion.rms_norm %x, %w {eps = 1.0e-06 : f32} : (tensor<2x16x64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  return %y : tensor<2x16x64xf32>
}

// Embedding appends the table's row size to the ids' shape.
// CHECK-LABEL: func.func @embedding
//       CHECK:   fusion.embedding %{{.+}}, %{{.+}} : (tensor<512x64xf32>, tensor<2x16xi32>) -> tensor<2x16x64xf32>
func.func @embedding(%table: tensor<512x64xf32>, %ids: tensor<2x16xi32>) -> tensor<2x16x64xf32> {
  %x = fusion.embedding %table, %ids : (tensor<512x64xf32>, tensor<2x16xi32>) -> tensor<2x16x64xf32>
  return %x : tensor<2x16x64xf32>
}
