// RUN: fusion-opt %s --split-input-file --fusion-plan-memory --verify-diagnostics

// fusion-plan-memory checks the views it places (fplan.view_of, from fplan-alias-reshapes).

module {
  fplan.arena @act size(4096)
  fplan.buffer @x : tensor<32xf32> in @act at 0
  // expected-error @+1 {{is a view of @x but has 256 bytes, more than its 128}}
  fplan.buffer @y : tensor<64xf32> in @act at 256 {fplan.view_of = @x}
}

// -----

module {
  fplan.arena @params persistent size(1024)
  fplan.arena @act size(4096)
  fplan.buffer @p : tensor<32xf32> in @params at 0
  // expected-error @+1 {{is a view of @p, but views must share their root's non-persistent arena}}
  fplan.buffer @y : tensor<32xf32> in @act at 0 {fplan.view_of = @p}
}

// -----

module {
  fplan.arena @act size(4096)
  fplan.buffer @x : tensor<32xf32> in @act at 0
  fplan.buffer @y : tensor<32xf32> in @act at 256 {fplan.view_of = @x}
  // expected-error @+1 {{is a view of @y, itself a view; name its root}}
  fplan.buffer @z : tensor<32xf32> in @act at 512 {fplan.view_of = @y}
}

// -----

module {
  fplan.arena @act size(4096)
  fplan.buffer @x : tensor<32xf32> in @act at 0
  // expected-error @+1 {{is a view of @missing, which is not a buffer}}
  fplan.buffer @y : tensor<32xf32> in @act at 256 {fplan.view_of = @missing}
}

// -----

module {
  fplan.arena @act size(4096)
  fplan.buffer @x : tensor<32xf32> in @act at 0
  fplan.buffer @y : tensor<32xf32> in @act at 256 {fplan.view_of = @x}
  fplan.kernel @fill kind "fill" params {value = 1.0 : f32, step = 0.5 : f32}
  fplan.program @main {
    // expected-error @+1 {{writes @y, a view of @x (views are read-only)}}
    fplan.launch @fill ins [] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}
