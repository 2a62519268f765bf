// Unfused elementwise chains in a transient arena for fused_elementwise.test: every op a
// fused program can apply, f32 / bf16 / f16 intermediates, a tree with a shared input.
// fusionc folds them (fplan-fuse-elementwise) unless --fuse-elementwise=false.
module {
  fplan.arena @act size(1048576)
  fplan.buffer @a : tensor<3x1000xf32> in @act at 0
  fplan.buffer @b : tensor<3x1000xf32> in @act at 0
  fplan.buffer @ab : tensor<3x1000xbf16> in @act at 0
  fplan.buffer @t0 : tensor<3x1000xf32> in @act at 0
  fplan.buffer @t1 : tensor<3x1000xbf16> in @act at 0
  fplan.buffer @t2 : tensor<3x1000xf32> in @act at 0
  fplan.buffer @t3 : tensor<3x1000xf16> in @act at 0
  fplan.buffer @t4 : tensor<3x1000xf32> in @act at 0
  fplan.buffer @t5 : tensor<3x1000xbf16> in @act at 0
  fplan.buffer @t6 : tensor<3x1000xf32> in @act at 0
  fplan.buffer @y : tensor<3x1000xf32> in @act at 0
  fplan.buffer @u0 : tensor<3000xf32> in @act at 0
  fplan.buffer @u1 : tensor<3000xbf16> in @act at 0
  fplan.buffer @u2 : tensor<3000xf32> in @act at 0
  fplan.buffer @u3 : tensor<3000xf32> in @act at 0
  fplan.buffer @z : tensor<3000xbf16> in @act at 0
  fplan.kernel @ramp_a kind "fill" params {value = -9.5 : f32, step = 0.0071 : f32}
  fplan.kernel @ramp_b kind "fill" params {value = 3.25 : f32, step = -0.0023 : f32}
  fplan.kernel @to_bf16 kind "cast"
  fplan.kernel @to_bf16_2 kind "cast"
  fplan.kernel @scale kind "scale" params {factor = 0.3 : f32}
  fplan.kernel @softcap kind "softcap" params {cap = 7.5 : f32}
  fplan.kernel @softplus kind "softplus"
  fplan.kernel @sigmoid kind "sigmoid"
  fplan.kernel @exp kind "exp"
  fplan.kernel @swiglu kind "swiglu"
  fplan.kernel @silu kind "silu"
  fplan.kernel @sub kind "sub"
  fplan.kernel @neg kind "neg"
  fplan.kernel @mul kind "mul"
  fplan.kernel @add kind "add"
  fplan.program @main outputs {y = @y, z = @z} {
    fplan.launch @ramp_a ins [] outs [@a] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @ramp_b ins [] outs [@b] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@a] outs [@ab] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @scale ins [@a] outs [@t0] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @softcap ins [@t0] outs [@t1] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @softplus ins [@t1] outs [@t2] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @sigmoid ins [@t2] outs [@t3] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @swiglu ins [@b, @t3] outs [@t4] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp ins [@t4] outs [@t5] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @sub ins [@t5, @ab] outs [@t6] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @silu ins [@t6] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @mul ins [@a, @b] outs [@u0] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @neg ins [@b] outs [@u1] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @add ins [@u0, @u1] outs [@u2] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @mul ins [@u2, @a] outs [@u3] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16_2 ins [@u3] outs [@z] grid [1, 1, 1] block [1, 1, 1]
  }
}
