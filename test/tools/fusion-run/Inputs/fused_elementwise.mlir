// A fused_elementwise launch for fused_elementwise.test: y = -(x * x) on x = [1, 1.5, 2, 2.5],
// and z = 100 * bf16(1.01 * x) (the intermediate rounds to bf16 before the f32 output).
module {
  fplan.arena @act persistent size(1024)
  fplan.buffer @x : tensor<4xf32> in @act at 0
  fplan.buffer @y : tensor<4xf32> in @act at 256
  fplan.buffer @z : tensor<4xf32> in @act at 512
  fplan.kernel @fill kind "fill" params {value = 1.0 : f32, step = 0.5 : f32}
  fplan.kernel @square_neg kind "fused_elementwise" params {expr = "%0 = mul.f32 %in0, %in0; %1 = neg.f32 %0; out0 = %1"}
  fplan.kernel @scale_round kind "fused_elementwise" params {expr = "%0 = scale.bf16 %in0, 1.01; %1 = scale.f32 %0, 100; out0 = %1"}
  fplan.program @main {
    fplan.launch @fill ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @square_neg ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @scale_round ins [@x] outs [@z] grid [1, 1, 1] block [1, 1, 1]
  }
}
