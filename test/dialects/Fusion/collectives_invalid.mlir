// RUN: fusion-opt %s --split-input-file --verify-diagnostics

// all_reduce_c1: the module must record a mesh.
func.func @no_mesh(%g: tensor<4xf32>) {
  // expected-error @+1 {{runs over mesh axis 'dp', but the module has no 'fusion.mesh' attribute}}
  %0 = fusion.all_reduce %g {axis = "dp", reduce = "sum"} : tensor<4xf32>
  return
}

// -----

// all_reduce_c1: the axis must be one of the mesh's.
module attributes {fusion.mesh = {dp = 2 : i64, ep = 1 : i64}} {
  func.func @unknown_axis(%g: tensor<4xf32>) {
    // expected-error @+1 {{runs over mesh axis 'tp', which the module's mesh does not have (axes: dp, ep)}}
    %0 = fusion.all_reduce %g {axis = "tp", reduce = "sum"} : tensor<4xf32>
    return
  }
}

// -----

// all_reduce_c2: the reduction kinds.
module attributes {fusion.mesh = {dp = 2 : i64}} {
  func.func @bad_reduce(%g: tensor<4xf32>) {
    // expected-error @+1 {{reduce must be sum, max or avg, got 'prod'}}
    %0 = fusion.all_reduce %g {axis = "dp", reduce = "prod"} : tensor<4xf32>
    return
  }
}

// -----

// all_reduce_c2: integers do not average.
module attributes {fusion.mesh = {dp = 2 : i64}} {
  func.func @int_avg(%c: tensor<4xi32>) {
    // expected-error @+1 {{cannot average integer tensors ('i32'): use sum or max}}
    %0 = fusion.all_reduce %c {axis = "dp", reduce = "avg"} : tensor<4xi32>
    return
  }
}

// -----

// all_gather_c2: dimension 0 grows by the axis size.
module attributes {fusion.mesh = {dp = 4 : i64}} {
  func.func @gather_rows(%s: tensor<8x16xf32>) {
    // expected-error @+1 {{the result's dimension 0 (16) must be 4 (the mesh axis size) times the input's (8)}}
    %0 = fusion.all_gather %s {axis = "dp"} : (tensor<8x16xf32>) -> tensor<16x16xf32>
    return
  }
}

// -----

// all_gather_c2: other dimensions are kept.
module attributes {fusion.mesh = {dp = 2 : i64}} {
  func.func @gather_cols(%s: tensor<8x16xf32>) {
    // expected-error @+1 {{input and result differ in dimension 1}}
    %0 = fusion.all_gather %s {axis = "dp"} : (tensor<8x16xf32>) -> tensor<16x8xf32>
    return
  }
}

// -----

// all_gather_c2: one element type.
module attributes {fusion.mesh = {dp = 2 : i64}} {
  func.func @gather_type(%s: tensor<8xf32>) {
    // expected-error @+1 {{input and result element types differ: 'f32' vs 'bf16'}}
    %0 = fusion.all_gather %s {axis = "dp"} : (tensor<8xf32>) -> tensor<16xbf16>
    return
  }
}

// -----

// reduce_scatter_c3: dimension 0 shrinks by the axis size.
module attributes {fusion.mesh = {dp = 2 : i64}} {
  func.func @scatter_rows(%g: tensor<8x4xf32>) {
    // expected-error @+1 {{the input's dimension 0 (8) must be 2 (the mesh axis size) times the result's (8)}}
    %0 = fusion.reduce_scatter %g {axis = "dp", reduce = "sum"} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    return
  }
}

// -----

// reduce_scatter_c3: rank >= 1.
module attributes {fusion.mesh = {dp = 1 : i64}} {
  func.func @scatter_scalar(%g: tensor<f32>) {
    // expected-error @+1 {{needs input and result of one rank ≥ 1}}
    %0 = fusion.reduce_scatter %g {axis = "dp", reduce = "sum"} : (tensor<f32>) -> tensor<f32>
    return
  }
}
