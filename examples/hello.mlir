// A hand-written fplan program: the smallest plan that exercises kernels, a GEMM and both
// backends. fusionc compiles it (`fusionc examples/hello.mlir -o hello.fplan`, add
// `--target=cuda` for GPU kernels) and fusion-run executes it:
//
//   x = 0.01 · i (64 × 32), g = 1 + 0.02 · j (32), w = 0.5 − 0.001 · i (16 × 32)
//   n = rms_norm(x, g)
//   y = silu(n) · n + n
//   z = y @ wᵀ            (a GEMM: 64 × 16)
module {
  fplan.arena @params persistent size(4096)
  fplan.arena @act size(32768)

  fplan.buffer @g : tensor<32xf32> in @params at 0
  fplan.buffer @w : tensor<16x32xf32> in @params at 128
  fplan.buffer @x : tensor<64x32xf32> in @act at 0
  fplan.buffer @n : tensor<64x32xf32> in @act at 8192
  fplan.buffer @s : tensor<64x32xf32> in @act at 16384
  fplan.buffer @y : tensor<64x32xf32> in @act at 24576
  fplan.buffer @z : tensor<64x16xf32> in @act at 0

  fplan.kernel @fill_x kind "fill" params {value = 0.0 : f32, step = 0.01 : f32}
  fplan.kernel @fill_g kind "fill" params {value = 1.0 : f32, step = 0.02 : f32}
  fplan.kernel @fill_w kind "fill" params {value = 0.5 : f32, step = -0.001 : f32}
  fplan.kernel @norm kind "rms_norm" params {eps = 1.0e-6 : f32}
  fplan.kernel @swish kind "silu"
  fplan.kernel @gate kind "mul"
  fplan.kernel @residual kind "add"

  // Parameters, written once.
  fplan.program @init {
    fplan.launch @fill_g ins [] outs [@g] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill_w ins [] outs [@w] grid [1, 1, 1] block [1, 1, 1]
  }

  // The computation. @z reuses the bytes of @x, dead once @n is computed.
  fplan.program @main {
    fplan.launch @fill_x ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @norm ins [@x, @g] outs [@n] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @swish ins [@n] outs [@s] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @gate ins [@s, @n] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @residual ins [@y, @n] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.gemm @y, @w -> @z transpose_b
  }
}
