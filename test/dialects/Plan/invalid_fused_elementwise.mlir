// RUN: fusion-opt %s --split-input-file --verify-diagnostics

// kernel_c3: a fused_elementwise kernel carries its program.
module {
  // expected-error @+1 {{of kind 'fused_elementwise' needs a string param 'expr' (its program)}}
  fplan.kernel @f kind "fused_elementwise"
}

// -----

// Unknown ops are named, with the position.
module {
  // expected-error @+1 {{has an invalid expr "%0 = tanh.f32 %in0; out0 = %0": at character 5: unknown op 'tanh'}}
  fplan.kernel @f kind "fused_elementwise" params {expr = "%0 = tanh.f32 %in0; out0 = %0"}
}

// -----

// SSA order: a value is defined before it is used.
module {
  // expected-error @+1 {{at character 19: %1 is used before it is defined}}
  fplan.kernel @f kind "fused_elementwise" params {expr = "%0 = add.f32 %in0, %1; %1 = neg.f32 %0; out0 = %1"}
}

// -----

// Statements are numbered in order.
module {
  // expected-error @+1 {{statement 0 must define %0, not %3}}
  fplan.kernel @f kind "fused_elementwise" params {expr = "%3 = neg.f32 %in0; out0 = %3"}
}

// -----

// Arity: add takes two values.
module {
  // expected-error @+1 {{expected ','}}
  fplan.kernel @f kind "fused_elementwise" params {expr = "%0 = add.f32 %in0; out0 = %0"}
}

// -----

// Element types are f32, bf16 or f16.
module {
  // expected-error @+1 {{unknown element type 'f64' (f32, bf16, f16)}}
  fplan.kernel @f kind "fused_elementwise" params {expr = "%0 = neg.f64 %in0; out0 = %0"}
}

// -----

// Every input from %in0 up is used.
module {
  // expected-error @+1 {{%in0 is never used}}
  fplan.kernel @f kind "fused_elementwise" params {expr = "%0 = neg.f32 %in1; out0 = %0"}
}

// -----

// softcap's cap is positive.
module {
  // expected-error @+1 {{softcap needs a positive cap, got -2}}
  fplan.kernel @f kind "fused_elementwise" params {expr = "%0 = softcap.f32 %in0, -2; out0 = %0"}
}

// -----

// The program ends with out0.
module {
  // expected-error @+1 {{expected ';'}}
  fplan.kernel @f kind "fused_elementwise" params {expr = "%0 = neg.f32 %in0"}
}

// -----

// A launch passes one buffer per input of the program.
module {
  fplan.arena @a size(1024)
  fplan.buffer @x : tensor<4xf32> in @a at 0
  fplan.buffer @y : tensor<4xf32> in @a at 256
  fplan.kernel @f kind "fused_elementwise" params {expr = "%0 = add.f32 %in0, %in1; out0 = %0"}
  fplan.program @main {
    // expected-error @+1 {{kernel @f's expr reads 2 input(s), the launch passes 1}}
    fplan.launch @f ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The output holds the type of the value stored to it.
module {
  fplan.arena @a size(1024)
  fplan.buffer @x : tensor<4xf32> in @a at 0
  fplan.buffer @y : tensor<4xf32> in @a at 256
  fplan.kernel @f kind "fused_elementwise" params {expr = "%0 = neg.bf16 %in0; out0 = %0"}
  fplan.program @main {
    // expected-error @+1 {{kernel @f stores a bf16 value to out0, but @y holds 'f32'}}
    fplan.launch @f ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Float buffers only.
module {
  fplan.arena @a size(1024)
  fplan.buffer @x : tensor<4xi32> in @a at 0
  fplan.buffer @y : tensor<4xf32> in @a at 256
  fplan.kernel @f kind "fused_elementwise" params {expr = "%0 = cast.f32 %in0; out0 = %0"}
  fplan.program @main {
    // expected-error @+1 {{fused_elementwise buffer @x has element type 'i32'; it takes f32, bf16 and f16}}
    fplan.launch @f ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}
