// RUN: fusion-opt %s --split-input-file --verify-diagnostics --allow-unregistered-dialect

// buffer_c1: the arena must exist.
module {
  // expected-error @+1 {{arena @nowhere does not name an fplan.arena}}
  fplan.buffer @x : tensor<4xf32> in @nowhere at 0
}

// -----

// buffer_c2: a buffer ends inside its arena (64 + 16 bytes > 64).
module {
  fplan.arena @a size(64)
  // expected-error @+1 {{ends at byte 80 (offset 64 + 16 bytes), past the end of arena @a (64 bytes)}}
  fplan.buffer @x : tensor<4xf32> in @a at 64
}

// -----

// buffer_c3: offsets are element-aligned.
module {
  fplan.arena @a size(64)
  // expected-error @+1 {{offset 2 is not a multiple of the element size (4 bytes)}}
  fplan.buffer @x : tensor<4xf32> in @a at 2
}

// -----

// Arenas have a positive size.
module {
  // expected-error @+1 {{attribute 'size' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  fplan.arena @a size(0)
}

// -----

// kernel_c1: only kinds the runtime implements.
module {
  // expected-error @+1 {{unknown kernel kind 'gelu'; known: fill, add, sub, mul, silu,}}
  fplan.kernel @k kind "gelu"
}

// -----

// kernel_c2: device code needs both the source and its entry point.
module {
  // expected-error @+1 {{expects 'source' and 'entry' together}}
  fplan.kernel @k kind "add" {source = "__global__ void f() {}"}
}

// -----

// launch_c1: the kernel must exist.
module {
  fplan.arena @a size(64)
  fplan.buffer @x : tensor<4xf32> in @a at 0
  fplan.program @main {
    // expected-error @+1 {{kernel @missing does not name an fplan.kernel}}
    fplan.launch @missing ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// launch_c2: every buffer must exist.
module {
  fplan.kernel @k kind "silu"
  fplan.arena @a size(64)
  fplan.buffer @x : tensor<4xf32> in @a at 0
  fplan.program @main {
    // expected-error @+1 {{input @nope does not name an fplan.buffer}}
    fplan.launch @k ins [@nope] outs [@x] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// launch_c3: launch geometry has three positive extents.
module {
  fplan.kernel @k kind "fill"
  fplan.arena @a size(64)
  fplan.buffer @x : tensor<4xf32> in @a at 0
  fplan.program @main {
    // expected-error @+1 {{expects block to have 3 positive entries, got [0, 1, 1]}}
    fplan.launch @k ins [] outs [@x] grid [1, 1, 1] block [0, 1, 1]
  }
}

// -----

// launch_c4: a launch writes something.
module {
  fplan.kernel @k kind "fill"
  fplan.program @main {
    // expected-error @+1 {{expects at least one output buffer}}
    fplan.launch @k ins [] outs [] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// launch_c5: arity of the kernel kind.
module {
  fplan.kernel @k kind "add"
  fplan.arena @a size(64)
  fplan.buffer @x : tensor<4xf32> in @a at 0
  fplan.buffer @y : tensor<4xf32> in @a at 16
  fplan.program @main {
    // expected-error @+1 {{kernel @k of kind 'add' takes 2 input(s) and 1 output(s), got 1 and 1}}
    fplan.launch @k ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// launch_c5: elementwise kinds need one element count.
module {
  fplan.kernel @k kind "add"
  fplan.arena @a size(128)
  fplan.buffer @x : tensor<4xf32> in @a at 0
  fplan.buffer @y : tensor<8xf32> in @a at 16
  fplan.buffer @z : tensor<4xf32> in @a at 64
  fplan.program @main {
    // expected-error @+1 {{elementwise kernel 'add' needs buffers of one element count: @y has 8, the output has 4}}
    fplan.launch @k ins [@x, @y] outs [@z] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// launch_c5: rms_norm shape rules are the fusion.rms_norm rules.
module {
  fplan.kernel @k kind "rms_norm" params {eps = 1.0e-6 : f32}
  fplan.arena @a size(256)
  fplan.buffer @x : tensor<2x8xf32> in @a at 0
  fplan.buffer @w : tensor<4xf32> in @a at 64
  fplan.buffer @y : tensor<2x8xf32> in @a at 128
  fplan.program @main {
    // expected-error @+1 {{expects a 1-D weight of size 8 (the input's last dimension), got 4}}
    fplan.launch @k ins [@x, @w] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// gemm_c2: the GEMM's shapes must form a matmul whose result is c.
module {
  fplan.arena @a size(1024)
  fplan.buffer @x : tensor<4x16xf32> in @a at 0
  fplan.buffer @w : tensor<8x16xf32> in @a at 256
  fplan.buffer @y : tensor<4x4xf32> in @a at 768
  fplan.program @main {
    // expected-error @+1 {{c has shape 4x4, the product has 4x8}}
    fplan.gemm @x, @w -> @y transpose_b
  }
}

// -----

// gemm_c2: contraction mismatch without the transpose.
module {
  fplan.arena @a size(1024)
  fplan.buffer @x : tensor<4x16xf32> in @a at 0
  fplan.buffer @w : tensor<8x16xf32> in @a at 256
  fplan.buffer @y : tensor<4x8xf32> in @a at 768
  fplan.program @main {
    // expected-error @+1 {{contraction dimensions differ: lhs 4x16 has k = 16, rhs 8x16 has k = 8}}
    fplan.gemm @x, @w -> @y
  }
}

// -----

// gemm_c3: a and b must share one element type.
module {
  fplan.arena @a size(1024)
  fplan.buffer @x : tensor<4x16xbf16> in @a at 0
  fplan.buffer @w : tensor<8x16xf32> in @a at 256
  fplan.buffer @y : tensor<4x8xf32> in @a at 768
  fplan.program @main {
    // expected-error @+1 {{a and b must share one float element type and c must have it or be f32, got 'bf16', 'f32' -> 'f32'}}
    fplan.gemm @x, @w -> @y transpose_b
  }
}

// -----

// gemm_c3: c is a's type or f32, never narrower.
module {
  fplan.arena @a size(1024)
  fplan.buffer @x : tensor<4x16xf32> in @a at 0
  fplan.buffer @w : tensor<8x16xf32> in @a at 256
  fplan.buffer @y : tensor<4x8xbf16> in @a at 768
  fplan.program @main {
    // expected-error @+1 {{got 'f32', 'f32' -> 'bf16'}}
    fplan.gemm @x, @w -> @y transpose_b
  }
}

// -----

// collective_c2: the axis must be a mesh axis.
module attributes {fplan.mesh = {dp = 2 : i64}} {
  fplan.arena @a size(64)
  fplan.buffer @x : tensor<4xf32> in @a at 0
  fplan.program @main {
    // expected-error @+1 {{mesh axis 'ep' is not in the module's fplan.mesh {dp = 2 : i64}}}
    fplan.collective all_reduce @x -> @x axis "ep"
  }
}

// -----

// collective_c3: an all_gather over 2 ranks doubles the element count.
module attributes {fplan.mesh = {dp = 2 : i64}} {
  fplan.arena @a size(64)
  fplan.buffer @x : tensor<4xf32> in @a at 0
  fplan.buffer @y : tensor<4xf32> in @a at 16
  fplan.program @main {
    // expected-error @+1 {{all_gather over axis 'dp' (size 2) of 4 elements needs a recv of 8 elements, got 4}}
    fplan.collective all_gather @x -> @y axis "dp"
  }
}

// -----

// collective_c3: reduce_scatter needs an evenly divisible send.
module attributes {fplan.mesh = {dp = 4 : i64}} {
  fplan.arena @a size(64)
  fplan.buffer @x : tensor<6xf32> in @a at 0
  fplan.buffer @y : tensor<2xf32> in @a at 32
  fplan.program @main {
    // expected-error @+1 {{reduce_scatter of 6 elements over axis 'dp' of size 4 does not divide evenly}}
    fplan.collective reduce_scatter @x -> @y axis "dp"
  }
}

// -----

// collective_c1: one element type on both sides.
module attributes {fplan.mesh = {dp = 1 : i64}} {
  fplan.arena @a size(64)
  fplan.buffer @x : tensor<4xf32> in @a at 0
  fplan.buffer @y : tensor<4xbf16> in @a at 16
  fplan.program @main {
    // expected-error @+1 {{send and recv element types differ: 'f32' vs 'bf16'}}
    fplan.collective all_reduce @x -> @y axis "dp"
  }
}

// -----

// program_c2: a wait needs an earlier record of its event.
module {
  fplan.program @main {
    // expected-error @+1 {{waits for event 3, which no earlier fplan.record in program "main" records}}
    fplan.wait 3 stream 1
    fplan.record 3
  }
}

// -----

// program_c1: programs hold instructions only.
module {
  fplan.program @main {
    // expected-error @+1 {{is not an fplan instruction and cannot appear in a program}}
    "test.not_an_instruction"() : () -> ()
  }
}

// -----

// program_c3: bindings name buffers.
module {
  // expected-error @+1 {{binding 'tokens' @nothing does not name an fplan.buffer}}
  fplan.program @forward inputs {tokens = @nothing} {
  }
}

// -----

// buffer_c4: a checkpoint role names what a persistent buffer holds.
module {
  fplan.arena @params persistent size(256)
  // expected-error @+1 {{unknown role 'gradient'; roles: weight, model_buffer, optimizer_state}}
  fplan.buffer @w : tensor<4xf32> in @params at 0 {role = "gradient"}
}

// -----

// buffer_c4: only persistent buffers have a role.
module {
  fplan.arena @transient size(256)
  // expected-error @+1 {{has role 'weight' but lives in the transient arena @transient}}
  fplan.buffer @w : tensor<4xf32> in @transient at 0 {role = "weight"}
}
