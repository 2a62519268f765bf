// fused_elementwise kernels (fplan-fuse-elementwise) in f32, bf16 and f16: the step's
// cast -> add -> cast residual chain, the mixer's gate tree (add, softplus, mul, neg), a bf16
// silu gate, a program using every other op with bf16 intermediates (scale, softcap, sigmoid,
// swiglu, exp, sub, silu), f16 intermediates with an input read twice, and an in-place
// launch (output = input 0), each on 1000003 elements (not a multiple of the block) and on
// 777. The inputs are ramps (and their bf16 / f16 casts) covering negative and positive
// values. The lead runs it on both backends (fusion-run --check-against-cpu) and compares
// every buffer; the arena is persistent, so every result keeps its own bytes.
// Generated with offsets packed at 256-byte boundaries; change shapes and offsets together.
module {
  fplan.arena @act persistent size(40036608)
  fplan.buffer @a_f32_1000003 : tensor<1000003xf32> in @act at 0
  fplan.buffer @a_bf16_1000003 : tensor<1000003xbf16> in @act at 4000256
  fplan.buffer @b_f32_1000003 : tensor<1000003xf32> in @act at 6000384
  fplan.buffer @b_bf16_1000003 : tensor<1000003xbf16> in @act at 10000640
  fplan.buffer @c_f32_1000003 : tensor<1000003xf32> in @act at 12000768
  fplan.buffer @c_bf16_1000003 : tensor<1000003xbf16> in @act at 16001024
  fplan.buffer @h_f16_1000003 : tensor<1000003xf16> in @act at 18001152
  fplan.buffer @out1_1000003 : tensor<1000003xbf16> in @act at 20001280
  fplan.buffer @out2_1000003 : tensor<1000003xf32> in @act at 22001408
  fplan.buffer @out3_1000003 : tensor<1000003xbf16> in @act at 26001664
  fplan.buffer @out4_1000003 : tensor<1000003xf32> in @act at 28001792
  fplan.buffer @out5_1000003 : tensor<1000003xf32> in @act at 32002048
  fplan.buffer @acc_1000003 : tensor<1000003xf32> in @act at 36002304
  fplan.buffer @a_f32_777 : tensor<777xf32> in @act at 40002560
  fplan.buffer @a_bf16_777 : tensor<777xbf16> in @act at 40005888
  fplan.buffer @b_f32_777 : tensor<777xf32> in @act at 40007680
  fplan.buffer @b_bf16_777 : tensor<777xbf16> in @act at 40011008
  fplan.buffer @c_f32_777 : tensor<777xf32> in @act at 40012800
  fplan.buffer @c_bf16_777 : tensor<777xbf16> in @act at 40016128
  fplan.buffer @h_f16_777 : tensor<777xf16> in @act at 40017920
  fplan.buffer @out1_777 : tensor<777xbf16> in @act at 40019712
  fplan.buffer @out2_777 : tensor<777xf32> in @act at 40021504
  fplan.buffer @out3_777 : tensor<777xbf16> in @act at 40024832
  fplan.buffer @out4_777 : tensor<777xf32> in @act at 40026624
  fplan.buffer @out5_777 : tensor<777xf32> in @act at 40029952
  fplan.buffer @acc_777 : tensor<777xf32> in @act at 40033280
  fplan.kernel @k_ramp_a_1000003 kind "fill" params {value = -6.3 : f32, step = 1.3e-05 : f32}
  fplan.kernel @k_ramp_b_1000003 kind "fill" params {value = 4.1 : f32, step = -7.7e-06 : f32}
  fplan.kernel @k_ramp_c_1000003 kind "fill" params {value = -0.75 : f32, step = 2.9e-06 : f32}
  fplan.kernel @k_ramp_a_777 kind "fill" params {value = -6.3 : f32, step = 0.0167311 : f32}
  fplan.kernel @k_ramp_b_777 kind "fill" params {value = 4.1 : f32, step = -0.00990994 : f32}
  fplan.kernel @k_ramp_c_777 kind "fill" params {value = -0.75 : f32, step = 0.00373231 : f32}
  fplan.kernel @k_to_bf16 kind "cast"
  fplan.kernel @k_to_f16 kind "cast"
  fplan.kernel @k_to_f32 kind "cast"
  fplan.kernel @f_cast_add_cast kind "fused_elementwise" params {expr = "%0 = cast.f32 %in0; %1 = add.f32 %0, %in1; %2 = cast.bf16 %1; out0 = %2"}
  fplan.kernel @f_gate kind "fused_elementwise" params {expr = "%0 = add.f32 %in0, %in1; %1 = softplus.f32 %0; %2 = mul.f32 %in2, %1; %3 = neg.f32 %2; out0 = %3"}
  fplan.kernel @f_silu_mul kind "fused_elementwise" params {expr = "%0 = silu.bf16 %in1; %1 = mul.bf16 %in0, %0; out0 = %1"}
  fplan.kernel @f_all_ops kind "fused_elementwise" params {expr = "%0 = scale.f32 %in0, 0.125; %1 = softcap.bf16 %0, 15; %2 = sigmoid.f32 %1; %3 = swiglu.bf16 %in1, %2; %4 = exp.f32 %3; %5 = sub.f32 %4, %in0; %6 = silu.f32 %5; out0 = %6"}
  fplan.kernel @f_f16 kind "fused_elementwise" params {expr = "%0 = cast.f16 %in0; %1 = mul.f16 %0, %0; %2 = add.f32 %1, %in1; %3 = scale.f16 %2, -0.5; %4 = add.f32 %3, %in0; out0 = %4"}
  fplan.kernel @f_in_place kind "fused_elementwise" params {expr = "%0 = mul.f32 %in0, %in1; %1 = add.f32 %0, %in0; out0 = %1"}
  fplan.program @init {
  }
  fplan.program @main {
    fplan.launch @k_ramp_a_1000003 ins [] outs [@a_f32_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@a_f32_1000003] outs [@a_bf16_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_b_1000003 ins [] outs [@b_f32_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@b_f32_1000003] outs [@b_bf16_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_c_1000003 ins [] outs [@c_f32_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@c_f32_1000003] outs [@c_bf16_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_f16 ins [@c_f32_1000003] outs [@h_f16_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @f_cast_add_cast ins [@a_bf16_1000003, @b_f32_1000003] outs [@out1_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @f_gate ins [@a_f32_1000003, @b_f32_1000003, @c_f32_1000003] outs [@out2_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @f_silu_mul ins [@a_bf16_1000003, @b_bf16_1000003] outs [@out3_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @f_all_ops ins [@a_f32_1000003, @c_f32_1000003] outs [@out4_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @f_f16 ins [@h_f16_1000003, @b_f32_1000003] outs [@out5_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_f32 ins [@a_bf16_1000003] outs [@acc_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @f_in_place ins [@acc_1000003, @c_f32_1000003] outs [@acc_1000003] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_a_777 ins [] outs [@a_f32_777] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@a_f32_777] outs [@a_bf16_777] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_b_777 ins [] outs [@b_f32_777] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@b_f32_777] outs [@b_bf16_777] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_c_777 ins [] outs [@c_f32_777] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@c_f32_777] outs [@c_bf16_777] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_f16 ins [@c_f32_777] outs [@h_f16_777] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @f_cast_add_cast ins [@a_bf16_777, @b_f32_777] outs [@out1_777] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @f_gate ins [@a_f32_777, @b_f32_777, @c_f32_777] outs [@out2_777] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @f_silu_mul ins [@a_bf16_777, @b_bf16_777] outs [@out3_777] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @f_all_ops ins [@a_f32_777, @c_f32_777] outs [@out4_777] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @f_f16 ins [@h_f16_777, @b_f32_777] outs [@out5_777] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_f32 ins [@a_bf16_777] outs [@acc_777] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @f_in_place ins [@acc_777, @c_f32_777] outs [@acc_777] grid [1, 1, 1] block [1, 1, 1]
  }
}
