// RUN: fusion-opt %s --split-input-file --fusion-autodiff --verify-diagnostics | FileCheck %s

// L = Σ silu(x Wᵀ) with W trained by NorMuon and a bias buffer that is not trained.
fusion.parameter @w : tensor<4x8xf32> {init = "normal", std = 0.1 : f64, optimizer = "normuon", weight_decay}
fusion.parameter @g : tensor<8xf32> {init = "ones", optimizer = "adamw"}
fusion.parameter @unused : tensor<3xf32> {init = "zeros", optimizer = "adamw"}
fusion.parameter @buf : tensor<4xf32> {init = "zeros", optimizer = "none"}

// CHECK-LABEL: func.func @forward_grad
//  CHECK-SAME: (%[[X:.*]]: tensor<2x8xf32>) -> (tensor<f32>, tensor<4x8xf32> {fusion.name = "grad:w", fusion.param = @w}, tensor<8xf32> {fusion.name = "grad:g", fusion.param = @g}, tensor<3xf32> {fusion.name = "grad:unused", fusion.param = @unused})
// Forward first.
//       CHECK:   %[[N:.*]] = fusion.rms_norm %[[X]]
//       CHECK:   %[[Y:.*]] = fusion.matmul %[[N]], %{{.*}} {transpose_b}
//       CHECK:   %[[S:.*]] = fusion.silu %[[Y]]
//       CHECK:   %[[L:.*]] = fusion.sum
// Then the seed and the VJPs in reverse order.
//       CHECK:   %[[ONE:.*]] = fusion.fill {value = 1.000000e+00 : f64} : tensor<f32>
//       CHECK:   %[[DS:.*]] = fusion.broadcast %[[ONE]] {dims = array<i64>} : (tensor<f32>) -> tensor<2x4xf32>
//       CHECK:   %[[DY:.*]] = fusion.activation_grad %[[Y]], %[[DS]] {fn = "silu"}
//       CHECK:   %[[DN:.*]] = fusion.matmul %[[DY]], %{{.*}} :
//       CHECK:   %[[DW:.*]] = fusion.matmul %[[DY]], %[[N]] {transpose_a}
//       CHECK:   %{{.*}}, %[[DG:.*]] = fusion.rms_norm_grad %[[X]], %{{.*}}, %[[DN]]
//       CHECK:   %[[ZERO:.*]] = fusion.fill {value = 0.000000e+00 : f64} : tensor<3xf32>
//       CHECK:   return %[[L]], %[[DW]], %[[DG]], %[[ZERO]]
func.func @forward(%x: tensor<2x8xf32>) -> tensor<f32> {
  %g = fusion.load @g : tensor<8xf32>
  %n = fusion.rms_norm %x, %g {eps = 1.0e-06 : f32} : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  %w = fusion.load @w : tensor<4x8xf32>
  %y = fusion.matmul %n, %w {transpose_b} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  %s = fusion.silu %y : tensor<2x4xf32>
  %l = fusion.sum %s {dims = array<i64: 0, 1>} : (tensor<2x4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// A value used twice gets the sum of both contributions.
fusion.parameter @w : tensor<4xf32> {init = "ones", optimizer = "adamw"}
// CHECK-LABEL: func.func @forward_grad
//       CHECK:   fusion.fill
//       CHECK:   %[[A:.*]] = fusion.mul %{{.*}}, %[[W:.*]] :
//       CHECK:   %[[B:.*]] = fusion.mul %{{.*}}, %[[W]] :
//       CHECK:   %[[SUM:.*]] = fusion.add %[[A]], %[[B]]
//       CHECK:   return %{{.*}}, %[[SUM]]
func.func @forward() -> tensor<f32> {
  %w = fusion.load @w : tensor<4xf32>
  %sq = fusion.mul %w, %w : tensor<4xf32>
  %l = fusion.sum %sq {dims = array<i64: 0>} : (tensor<4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// An op without a gradient rule on the path from a parameter to the loss is an error there.
fusion.parameter @w : tensor<8xf32> {init = "ones", optimizer = "adamw"}
func.func @forward(%x: tensor<2x8xf32>) -> tensor<f32> {
  %w = fusion.load @w : tensor<8xf32>
  // expected-error @+1 {{'fusion.rms_norm_grad' op is on the path to the loss but has no gradient rule}}
  %dx, %dw = fusion.rms_norm_grad %x, %w, %x {eps = 1.0e-06 : f32} : (tensor<2x8xf32>, tensor<8xf32>, tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<8xf32>)
  %l = fusion.sum %dx {dims = array<i64: 0, 1>} : (tensor<2x8xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// The loss must be an f32 scalar.
// expected-error @+1 {{'func.func' op first result must be the f32 scalar loss, got 'tensor<4xf32>'}}
func.func @forward(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

// Nothing to differentiate.
// expected-error @+1 {{fusion-autodiff: no function @forward to differentiate}}
module {
  func.func @main() {
    return
  }
}
