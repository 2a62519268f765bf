// RUN: fusion-opt %s --split-input-file --verify-diagnostics

// matmul_c1: both operands need rank >= 2.
func.func @matmul_c1(%a: tensor<8xf32>, %b: tensor<8x4xf32>) {
  // expected-error @+1 {{expects operands of rank >= 2, got lhs 8 and rhs 8x4}}
  %c = fusion.matmul %a, %b : (tensor<8xf32>, tensor<8x4xf32>) -> tensor<4xf32>
  return
}

// -----

// matmul_c2: the contraction dimensions must agree (k = 64 vs 32 once rhs is transposed).
func.func @matmul_c2(%a: tensor<16x64xf32>, %b: tensor<128x32xf32>) {
  // expected-error @+1 {{contraction dimensions differ: lhs 16x64 has k = 64, rhs 128x32 (transposed) has k = 32}}
  %c = fusion.matmul %a, %b {transpose_b} : (tensor<16x64xf32>, tensor<128x32xf32>) -> tensor<16x128xf32>
  return
}

// -----

// matmul_c3: rhs batch dimensions are absent or equal lhs's.
func.func @matmul_c3(%a: tensor<2x16x8xf32>, %b: tensor<3x8x4xf32>) {
  // expected-error @+1 {{rhs batch dimensions (3) must be absent or equal lhs batch dimensions (2)}}
  %c = fusion.matmul %a, %b : (tensor<2x16x8xf32>, tensor<3x8x4xf32>) -> tensor<2x16x4xf32>
  return
}

// -----

// matmul_c4: the declared result must be batch x m x n.
func.func @matmul_c4(%a: tensor<16x8xf32>, %b: tensor<8x4xf32>) {
  // expected-error @+1 {{result shape 16x8 does not match the inferred shape 16x4}}
  %c = fusion.matmul %a, %b : (tensor<16x8xf32>, tensor<8x4xf32>) -> tensor<16x8xf32>
  return
}

// -----

// matmul_c5: no mixed precision inside one matmul (casts are explicit).
func.func @matmul_c5(%a: tensor<16x8xbf16>, %b: tensor<8x4xf32>) {
  // expected-error @+1 {{element types differ: lhs has 'bf16', rhs has 'f32'}}
  %c = fusion.matmul %a, %b : (tensor<16x8xbf16>, tensor<8x4xf32>) -> tensor<16x4xbf16>
  return
}

// -----

// rms_norm_c2: the weight has the size of the normalised (last) dimension.
func.func @rms_norm_c2(%x: tensor<4x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{expects a 1-D weight of size 64 (the input's last dimension), got 32}}
  %y = fusion.rms_norm %x, %w {eps = 1.0e-06 : f32} : (tensor<4x64xf32>, tensor<32xf32>) -> tensor<4x64xf32>
  return
}

// -----

// rms_norm_c3: the result type is the input type.
func.func @rms_norm_c3(%x: tensor<4x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{result type 'tensor<4x32xf32>' must equal the input type 'tensor<4x64xf32>'}}
  %y = fusion.rms_norm %x, %w {eps = 1.0e-06 : f32} : (tensor<4x64xf32>, tensor<64xf32>) -> tensor<4x32xf32>
  return
}

// -----

// rms_norm_c4: eps must be positive.
func.func @rms_norm_c4(%x: tensor<4x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{expects eps > 0, got 0}}
  %y = fusion.rms_norm %x, %w {eps = 0.0 : f32} : (tensor<4x64xf32>, tensor<64xf32>) -> tensor<4x64xf32>
  return
}

// -----

// rms_norm_c5: input and weight share an element type.
func.func @rms_norm_c5(%x: tensor<4x64xbf16>, %w: tensor<64xf32>) {
  // expected-error @+1 {{element types differ: input has 'bf16', weight has 'f32'}}
  %y = fusion.rms_norm %x, %w {eps = 1.0e-06 : f32} : (tensor<4x64xbf16>, tensor<64xf32>) -> tensor<4x64xbf16>
  return
}

// -----

// embedding_c1: the table is [vocab, dim].
func.func @embedding_c1(%t: tensor<512xf32>, %ids: tensor<2x16xi32>) {
  // expected-error @+1 {{expects a 2-D table [vocab, dim], got 512}}
  %x = fusion.embedding %t, %ids : (tensor<512xf32>, tensor<2x16xi32>) -> tensor<2x16x64xf32>
  return
}

// -----

// embedding_c2: the result is ids.shape x dim.
func.func @embedding_c2(%t: tensor<512x64xf32>, %ids: tensor<2x16xi32>) {
  // expected-error @+1 {{result shape 32x64 does not match the inferred shape 2x16x64}}
  %x = fusion.embedding %t, %ids : (tensor<512x64xf32>, tensor<2x16xi32>) -> tensor<32x64xf32>
  return
}

// -----

// Elementwise ops take operands of one type: broadcasts are explicit in this IR.
func.func @add_same_type(%x: tensor<4x8xf32>, %y: tensor<8xf32>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %z = "fusion.add"(%x, %y) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return
}

// -----

// Shapes are static: every tensor becomes one fixed-size buffer.
func.func @static_shapes(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{operand #0 must be statically shaped tensor}}
  %y = "fusion.silu"(%x) : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return
}
