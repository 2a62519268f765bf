// Every elementwise kind with a CUDA template, in f32 and bf16 (casts between them and to f16), on inputs that cover the
// interesting ranges (x from -24 to 24, across softplus's switch at 20 and softcap's
// saturation). On a GPU machine, `scripts/device-run.sh pack elementwise_kinds.fplan` (after
// `fusionc examples/elementwise_kinds.mlir --target=cuda -o elementwise_kinds.fplan`) and
// `.device/check.sh` run it on both backends and compare every buffer (docs/device-runs.md
// has the result). The arena is persistent, so fusion-plan-memory keeps every result in its
// own bytes.
module {
  fplan.arena @act persistent size(94208)
  fplan.buffer @x_f32 : tensor<1000xf32> in @act at 0
  fplan.buffer @y_f32 : tensor<1000xf32> in @act at 4096
  fplan.buffer @silu_f32 : tensor<1000xf32> in @act at 8192
  fplan.buffer @sigmoid_f32 : tensor<1000xf32> in @act at 12288
  fplan.buffer @exp_f32 : tensor<1000xf32> in @act at 16384
  fplan.buffer @neg_f32 : tensor<1000xf32> in @act at 20480
  fplan.buffer @softplus_f32 : tensor<1000xf32> in @act at 24576
  fplan.buffer @scale_f32 : tensor<1000xf32> in @act at 28672
  fplan.buffer @softcap_f32 : tensor<1000xf32> in @act at 32768
  fplan.buffer @reshape_f32 : tensor<1000xf32> in @act at 36864
  fplan.buffer @add_f32 : tensor<1000xf32> in @act at 40960
  fplan.buffer @sub_f32 : tensor<1000xf32> in @act at 45056
  fplan.buffer @mul_f32 : tensor<1000xf32> in @act at 49152
  fplan.buffer @swiglu_f32 : tensor<1000xf32> in @act at 53248
  fplan.buffer @x_bf16 : tensor<1000xbf16> in @act at 57344
  fplan.buffer @y_bf16 : tensor<1000xbf16> in @act at 59392
  fplan.buffer @silu_bf16 : tensor<1000xbf16> in @act at 61440
  fplan.buffer @sigmoid_bf16 : tensor<1000xbf16> in @act at 63488
  fplan.buffer @exp_bf16 : tensor<1000xbf16> in @act at 65536
  fplan.buffer @neg_bf16 : tensor<1000xbf16> in @act at 67584
  fplan.buffer @softplus_bf16 : tensor<1000xbf16> in @act at 69632
  fplan.buffer @scale_bf16 : tensor<1000xbf16> in @act at 71680
  fplan.buffer @softcap_bf16 : tensor<1000xbf16> in @act at 73728
  fplan.buffer @reshape_bf16 : tensor<1000xbf16> in @act at 75776
  fplan.buffer @add_bf16 : tensor<1000xbf16> in @act at 77824
  fplan.buffer @sub_bf16 : tensor<1000xbf16> in @act at 79872
  fplan.buffer @mul_bf16 : tensor<1000xbf16> in @act at 81920
  fplan.buffer @swiglu_bf16 : tensor<1000xbf16> in @act at 83968
  fplan.buffer @cast_f32_to_bf16 : tensor<1000xbf16> in @act at 86016
  fplan.buffer @cast_bf16_to_f32 : tensor<1000xf32> in @act at 88064
  fplan.buffer @cast_f32_to_f16 : tensor<1000xf16> in @act at 92160
  fplan.kernel @fill_x_f32 kind "fill" params {value = -24.0 : f32, step = 0.048 : f32}
  fplan.kernel @fill_y_f32 kind "fill" params {value = 3.0 : f32, step = -0.0055 : f32}
  fplan.kernel @silu_k_f32 kind "silu"
  fplan.kernel @sigmoid_k_f32 kind "sigmoid"
  fplan.kernel @exp_k_f32 kind "exp"
  fplan.kernel @neg_k_f32 kind "neg"
  fplan.kernel @softplus_k_f32 kind "softplus"
  fplan.kernel @scale_k_f32 kind "scale" params {factor = -0.375 : f32}
  fplan.kernel @softcap_k_f32 kind "softcap" params {cap = 15.0 : f32}
  fplan.kernel @reshape_k_f32 kind "reshape"
  fplan.kernel @add_k_f32 kind "add"
  fplan.kernel @sub_k_f32 kind "sub"
  fplan.kernel @mul_k_f32 kind "mul"
  fplan.kernel @swiglu_k_f32 kind "swiglu"
  fplan.kernel @fill_x_bf16 kind "fill" params {value = -24.0 : f32, step = 0.048 : f32}
  fplan.kernel @fill_y_bf16 kind "fill" params {value = 3.0 : f32, step = -0.0055 : f32}
  fplan.kernel @silu_k_bf16 kind "silu"
  fplan.kernel @sigmoid_k_bf16 kind "sigmoid"
  fplan.kernel @exp_k_bf16 kind "exp"
  fplan.kernel @neg_k_bf16 kind "neg"
  fplan.kernel @softplus_k_bf16 kind "softplus"
  fplan.kernel @scale_k_bf16 kind "scale" params {factor = -0.375 : f32}
  fplan.kernel @softcap_k_bf16 kind "softcap" params {cap = 15.0 : f32}
  fplan.kernel @reshape_k_bf16 kind "reshape"
  fplan.kernel @add_k_bf16 kind "add"
  fplan.kernel @sub_k_bf16 kind "sub"
  fplan.kernel @mul_k_bf16 kind "mul"
  fplan.kernel @swiglu_k_bf16 kind "swiglu"
  fplan.kernel @cast_k_to_bf16 kind "cast"
  fplan.kernel @cast_k_to_f32 kind "cast"
  fplan.kernel @cast_k_to_f16 kind "cast"
  fplan.program @init {
  }
  fplan.program @main {
    fplan.launch @fill_x_f32 ins [] outs [@x_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill_y_f32 ins [] outs [@y_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @silu_k_f32 ins [@x_f32] outs [@silu_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @sigmoid_k_f32 ins [@x_f32] outs [@sigmoid_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp_k_f32 ins [@x_f32] outs [@exp_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @neg_k_f32 ins [@x_f32] outs [@neg_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @softplus_k_f32 ins [@x_f32] outs [@softplus_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @scale_k_f32 ins [@x_f32] outs [@scale_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @softcap_k_f32 ins [@x_f32] outs [@softcap_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @reshape_k_f32 ins [@x_f32] outs [@reshape_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @add_k_f32 ins [@x_f32, @y_f32] outs [@add_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @sub_k_f32 ins [@x_f32, @y_f32] outs [@sub_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @mul_k_f32 ins [@x_f32, @y_f32] outs [@mul_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @swiglu_k_f32 ins [@x_f32, @y_f32] outs [@swiglu_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill_x_bf16 ins [] outs [@x_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill_y_bf16 ins [] outs [@y_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @silu_k_bf16 ins [@x_bf16] outs [@silu_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @sigmoid_k_bf16 ins [@x_bf16] outs [@sigmoid_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @exp_k_bf16 ins [@x_bf16] outs [@exp_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @neg_k_bf16 ins [@x_bf16] outs [@neg_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @softplus_k_bf16 ins [@x_bf16] outs [@softplus_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @scale_k_bf16 ins [@x_bf16] outs [@scale_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @softcap_k_bf16 ins [@x_bf16] outs [@softcap_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @reshape_k_bf16 ins [@x_bf16] outs [@reshape_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @add_k_bf16 ins [@x_bf16, @y_bf16] outs [@add_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @sub_k_bf16 ins [@x_bf16, @y_bf16] outs [@sub_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @mul_k_bf16 ins [@x_bf16, @y_bf16] outs [@mul_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @swiglu_k_bf16 ins [@x_bf16, @y_bf16] outs [@swiglu_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @cast_k_to_bf16 ins [@x_f32] outs [@cast_f32_to_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @cast_k_to_f32 ins [@x_bf16] outs [@cast_bf16_to_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @cast_k_to_f16 ins [@x_f32] outs [@cast_f32_to_f16] grid [1, 1, 1] block [1, 1, 1]
  }
}
