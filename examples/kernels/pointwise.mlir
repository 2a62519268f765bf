// Every kind of the pointwise family with a CUDA template (rms_norm_grad, l2_norm,
// l2_norm_grad, rope, rope_grad, rope_at, activation_grad, swiglu_grad), in f32 and bf16,
// on shapes that exercise each launch geometry (row groups of one warp and of four, several
// row sweeps per block for rms_norm_grad's dw, rows and element counts that are not
// multiples of the block, rope with pass-through columns). The norms read a "noise" input:
// the bf16 rounding residual of a steep f32 ramp, r - f32(bf16(r)), an irregular sawtooth.
// The lead runs it on both backends (fusion-run --check-against-cpu) and compares every
// buffer; the arena is persistent, so every result keeps its own bytes.
// Buffers are packed by hand at 256-byte boundaries; change shapes and offsets together.
module {
  fplan.arena @act persistent size(17044224)
  fplan.buffer @tmp600000_ramp : tensor<600000xf32> in @act at 0
  fplan.buffer @tmp600000_bf16 : tensor<600000xbf16> in @act at 2400000
  fplan.buffer @tmp600000_back : tensor<600000xf32> in @act at 3600128
  fplan.buffer @rms_x_f32 : tensor<4x150x1000xf32> in @act at 6000128
  fplan.buffer @rms_dy_f32 : tensor<4x150x1000xf32> in @act at 8400128
  fplan.buffer @rms_w_f32 : tensor<1000xf32> in @act at 10800128
  fplan.buffer @rms_norm_grad_dx_f32 : tensor<4x150x1000xf32> in @act at 10804224
  fplan.buffer @rms_norm_grad_dw_f32 : tensor<1000xf32> in @act at 13204224
  fplan.buffer @tmp47520_ramp : tensor<47520xf32> in @act at 13208320
  fplan.buffer @tmp47520_bf16 : tensor<47520xbf16> in @act at 13398528
  fplan.buffer @tmp47520_back : tensor<47520xf32> in @act at 13493760
  fplan.buffer @rms_x_bf16_f32 : tensor<5x33x3x96xf32> in @act at 13683968
  fplan.buffer @rms_x_bf16 : tensor<5x33x3x96xbf16> in @act at 13874176
  fplan.buffer @rms_dy_bf16_f32 : tensor<5x33x3x96xf32> in @act at 13969408
  fplan.buffer @rms_dy_bf16 : tensor<5x33x3x96xbf16> in @act at 14159616
  fplan.buffer @rms_w_bf16 : tensor<96xbf16> in @act at 14254848
  fplan.buffer @rms_w_bf16_f32 : tensor<96xf32> in @act at 14255104
  fplan.buffer @rms_norm_grad_dx_bf16 : tensor<5x33x3x96xbf16> in @act at 14255616
  fplan.buffer @rms_norm_grad_dw_bf16 : tensor<96xf32> in @act at 14350848
  fplan.buffer @tmp15300_ramp : tensor<15300xf32> in @act at 14351360
  fplan.buffer @tmp15300_bf16 : tensor<15300xbf16> in @act at 14412800
  fplan.buffer @tmp15300_back : tensor<15300xf32> in @act at 14443520
  fplan.buffer @l2_x_f32 : tensor<3x17x300xf32> in @act at 14504960
  fplan.buffer @l2_dy_f32 : tensor<3x17x300xf32> in @act at 14566400
  fplan.buffer @l2_norm_out_f32 : tensor<3x17x300xf32> in @act at 14627840
  fplan.buffer @l2_norm_grad_dx_f32 : tensor<3x17x300xf32> in @act at 14689280
  fplan.buffer @tmp76800_ramp : tensor<76800xf32> in @act at 14750720
  fplan.buffer @tmp76800_bf16 : tensor<76800xbf16> in @act at 15057920
  fplan.buffer @tmp76800_back : tensor<76800xf32> in @act at 15211520
  fplan.buffer @l2_x_bf16_f32 : tensor<2x50x6x128xf32> in @act at 15518720
  fplan.buffer @l2_x_bf16 : tensor<2x50x6x128xbf16> in @act at 15825920
  fplan.buffer @l2_dy_bf16_f32 : tensor<2x50x6x128xf32> in @act at 15979520
  fplan.buffer @l2_dy_bf16 : tensor<2x50x6x128xbf16> in @act at 16286720
  fplan.buffer @l2_norm_out_bf16 : tensor<2x50x6x128xbf16> in @act at 16440320
  fplan.buffer @l2_norm_grad_dx_bf16 : tensor<2x50x6x128xbf16> in @act at 16593920
  fplan.buffer @act_x_f32 : tensor<8x125xf32> in @act at 16747520
  fplan.buffer @act_x_bf16 : tensor<8x125xbf16> in @act at 16751616
  fplan.buffer @act_g_f32 : tensor<8x125xf32> in @act at 16753664
  fplan.buffer @act_g_bf16 : tensor<8x125xbf16> in @act at 16757760
  fplan.buffer @act_u_f32 : tensor<8x125xf32> in @act at 16759808
  fplan.buffer @act_u_bf16 : tensor<8x125xbf16> in @act at 16763904
  fplan.buffer @activation_grad_silu_f32 : tensor<8x125xf32> in @act at 16765952
  fplan.buffer @activation_grad_sigmoid_f32 : tensor<8x125xf32> in @act at 16770048
  fplan.buffer @activation_grad_softplus_f32 : tensor<8x125xf32> in @act at 16774144
  fplan.buffer @activation_grad_softcap_f32 : tensor<8x125xf32> in @act at 16778240
  fplan.buffer @swiglu_grad_dgate_f32 : tensor<8x125xf32> in @act at 16782336
  fplan.buffer @swiglu_grad_dup_f32 : tensor<8x125xf32> in @act at 16786432
  fplan.buffer @activation_grad_silu_bf16 : tensor<8x125xbf16> in @act at 16790528
  fplan.buffer @activation_grad_softcap_bf16 : tensor<8x125xbf16> in @act at 16792576
  fplan.buffer @swiglu_grad_dgate_bf16 : tensor<8x125xbf16> in @act at 16794624
  fplan.buffer @swiglu_grad_dup_bf16 : tensor<8x125xbf16> in @act at 16796672
  fplan.buffer @rope_x_f32 : tensor<3x21x5x24xf32> in @act at 16798720
  fplan.buffer @rope_out_f32 : tensor<3x21x5x24xf32> in @act at 16829184
  fplan.buffer @rope_grad_dx_f32 : tensor<3x21x5x24xf32> in @act at 16859648
  fplan.buffer @rope_at_x_f32 : tensor<2x3x4x24xf32> in @act at 16890112
  fplan.buffer @rope_at_position_f32 : tensor<1xi32> in @act at 16892416
  fplan.buffer @rope_at_out_f32 : tensor<2x3x4x24xf32> in @act at 16892672
  fplan.buffer @rope_x_bf16 : tensor<2x19x4x96xbf16> in @act at 16894976
  fplan.buffer @rope_x_bf16_f32 : tensor<2x19x4x96xf32> in @act at 16924160
  fplan.buffer @rope_out_bf16 : tensor<2x19x4x96xbf16> in @act at 16982528
  fplan.buffer @rope_grad_dx_bf16 : tensor<2x19x4x96xbf16> in @act at 17011712
  fplan.buffer @rope_at_x_bf16 : tensor<1x1x4x96xbf16> in @act at 17040896
  fplan.buffer @rope_at_x_bf16_f32 : tensor<1x1x4x96xf32> in @act at 17041664
  fplan.buffer @rope_at_position_bf16 : tensor<1xi32> in @act at 17043200
  fplan.buffer @rope_at_out_bf16 : tensor<1x1x4x96xbf16> in @act at 17043456
  fplan.kernel @k_ramp_x kind "fill" params {value = 1000.3 : f32, step = 0.7371 : f32}
  fplan.kernel @k_ramp_g kind "fill" params {value = -2999.7 : f32, step = 1.2345 : f32}
  fplan.kernel @k_ramp_w kind "fill" params {value = 0.25 : f32, step = 0.0123 : f32}
  fplan.kernel @k_to_bf16 kind "cast"
  fplan.kernel @k_to_f32 kind "cast"
  fplan.kernel @k_residual kind "sub"
  fplan.kernel @k_rms_norm_grad_f32 kind "rms_norm_grad" params {eps = 1.0e-6 : f32}
  fplan.kernel @k_rms_norm_grad_bf16 kind "rms_norm_grad" params {eps = 1.0e-6 : f32}
  fplan.kernel @k_l2_norm_f32 kind "l2_norm" params {eps = 1.0e-6 : f32, scale = 0.0883883461 : f32}
  fplan.kernel @k_l2_norm_bf16 kind "l2_norm" params {eps = 1.0e-6 : f32, scale = 1.0 : f32}
  fplan.kernel @k_l2_norm_grad_f32 kind "l2_norm_grad" params {eps = 1.0e-6 : f32, scale = 0.0883883461 : f32}
  fplan.kernel @k_l2_norm_grad_bf16 kind "l2_norm_grad" params {eps = 1.0e-6 : f32, scale = 1.0 : f32}
  fplan.kernel @k_act_x_f32 kind "fill" params {value = -24.0 : f32, step = 0.048 : f32}
  fplan.kernel @k_act_g_f32 kind "fill" params {value = 3.0 : f32, step = -0.0055 : f32}
  fplan.kernel @k_act_u_f32 kind "fill" params {value = -1.5 : f32, step = 0.0041 : f32}
  fplan.kernel @k_activation_grad_silu_f32 kind "activation_grad" params {fn = "silu"}
  fplan.kernel @k_activation_grad_sigmoid_f32 kind "activation_grad" params {fn = "sigmoid"}
  fplan.kernel @k_activation_grad_softplus_f32 kind "activation_grad" params {fn = "softplus"}
  fplan.kernel @k_activation_grad_softcap_f32 kind "activation_grad" params {fn = "softcap", cap = 15.0 : f32}
  fplan.kernel @k_swiglu_grad_f32 kind "swiglu_grad"
  fplan.kernel @k_activation_grad_silu_bf16 kind "activation_grad" params {fn = "silu"}
  fplan.kernel @k_activation_grad_softcap_bf16 kind "activation_grad" params {fn = "softcap", cap = 15.0 : f32}
  fplan.kernel @k_swiglu_grad_bf16 kind "swiglu_grad"
  fplan.kernel @k_rope_in_f32 kind "fill" params {value = -1.7 : f32, step = 0.00113 : f32}
  fplan.kernel @k_pos_i32 kind "fill" params {value = 1234.0 : f32}
  fplan.kernel @k_rope_f32 kind "rope" params {rotary_dims = 16 : i64, theta = 1.0e+04 : f32}
  fplan.kernel @k_rope_grad_f32 kind "rope_grad" params {rotary_dims = 16 : i64, theta = 1.0e+04 : f32}
  fplan.kernel @k_rope_at_f32 kind "rope_at" params {rotary_dims = 16 : i64, theta = 1.0e+04 : f32}
  fplan.kernel @k_rope_bf16 kind "rope" params {rotary_dims = 32 : i64, theta = 1.0e+04 : f32}
  fplan.kernel @k_rope_grad_bf16 kind "rope_grad" params {rotary_dims = 32 : i64, theta = 1.0e+04 : f32}
  fplan.kernel @k_rope_at_bf16 kind "rope_at" params {rotary_dims = 32 : i64, theta = 1.0e+04 : f32}
  fplan.program @init {
  }
  fplan.program @main {
    fplan.launch @k_ramp_x ins [] outs [@tmp600000_ramp] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@tmp600000_ramp] outs [@tmp600000_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_f32 ins [@tmp600000_bf16] outs [@tmp600000_back] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_residual ins [@tmp600000_ramp, @tmp600000_back] outs [@rms_x_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_g ins [] outs [@tmp600000_ramp] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@tmp600000_ramp] outs [@tmp600000_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_f32 ins [@tmp600000_bf16] outs [@tmp600000_back] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_residual ins [@tmp600000_ramp, @tmp600000_back] outs [@rms_dy_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_w ins [] outs [@rms_w_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rms_norm_grad_f32 ins [@rms_x_f32, @rms_w_f32, @rms_dy_f32] outs [@rms_norm_grad_dx_f32, @rms_norm_grad_dw_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_x ins [] outs [@tmp47520_ramp] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@tmp47520_ramp] outs [@tmp47520_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_f32 ins [@tmp47520_bf16] outs [@tmp47520_back] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_residual ins [@tmp47520_ramp, @tmp47520_back] outs [@rms_x_bf16_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@rms_x_bf16_f32] outs [@rms_x_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_g ins [] outs [@tmp47520_ramp] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@tmp47520_ramp] outs [@tmp47520_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_f32 ins [@tmp47520_bf16] outs [@tmp47520_back] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_residual ins [@tmp47520_ramp, @tmp47520_back] outs [@rms_dy_bf16_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@rms_dy_bf16_f32] outs [@rms_dy_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_w ins [] outs [@rms_w_bf16_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@rms_w_bf16_f32] outs [@rms_w_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rms_norm_grad_bf16 ins [@rms_x_bf16, @rms_w_bf16, @rms_dy_bf16] outs [@rms_norm_grad_dx_bf16, @rms_norm_grad_dw_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_x ins [] outs [@tmp15300_ramp] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@tmp15300_ramp] outs [@tmp15300_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_f32 ins [@tmp15300_bf16] outs [@tmp15300_back] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_residual ins [@tmp15300_ramp, @tmp15300_back] outs [@l2_x_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_g ins [] outs [@tmp15300_ramp] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@tmp15300_ramp] outs [@tmp15300_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_f32 ins [@tmp15300_bf16] outs [@tmp15300_back] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_residual ins [@tmp15300_ramp, @tmp15300_back] outs [@l2_dy_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_l2_norm_f32 ins [@l2_x_f32] outs [@l2_norm_out_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_l2_norm_grad_f32 ins [@l2_x_f32, @l2_dy_f32] outs [@l2_norm_grad_dx_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_x ins [] outs [@tmp76800_ramp] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@tmp76800_ramp] outs [@tmp76800_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_f32 ins [@tmp76800_bf16] outs [@tmp76800_back] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_residual ins [@tmp76800_ramp, @tmp76800_back] outs [@l2_x_bf16_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@l2_x_bf16_f32] outs [@l2_x_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_ramp_g ins [] outs [@tmp76800_ramp] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@tmp76800_ramp] outs [@tmp76800_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_f32 ins [@tmp76800_bf16] outs [@tmp76800_back] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_residual ins [@tmp76800_ramp, @tmp76800_back] outs [@l2_dy_bf16_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@l2_dy_bf16_f32] outs [@l2_dy_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_l2_norm_bf16 ins [@l2_x_bf16] outs [@l2_norm_out_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_l2_norm_grad_bf16 ins [@l2_x_bf16, @l2_dy_bf16] outs [@l2_norm_grad_dx_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_act_x_f32 ins [] outs [@act_x_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@act_x_f32] outs [@act_x_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_act_g_f32 ins [] outs [@act_g_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@act_g_f32] outs [@act_g_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_act_u_f32 ins [] outs [@act_u_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@act_u_f32] outs [@act_u_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_activation_grad_silu_f32 ins [@act_x_f32, @act_g_f32] outs [@activation_grad_silu_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_activation_grad_sigmoid_f32 ins [@act_x_f32, @act_g_f32] outs [@activation_grad_sigmoid_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_activation_grad_softplus_f32 ins [@act_x_f32, @act_g_f32] outs [@activation_grad_softplus_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_activation_grad_softcap_f32 ins [@act_x_f32, @act_g_f32] outs [@activation_grad_softcap_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_swiglu_grad_f32 ins [@act_x_f32, @act_u_f32, @act_g_f32] outs [@swiglu_grad_dgate_f32, @swiglu_grad_dup_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_activation_grad_silu_bf16 ins [@act_x_bf16, @act_g_bf16] outs [@activation_grad_silu_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_activation_grad_softcap_bf16 ins [@act_x_bf16, @act_g_bf16] outs [@activation_grad_softcap_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_swiglu_grad_bf16 ins [@act_x_bf16, @act_u_bf16, @act_g_bf16] outs [@swiglu_grad_dgate_bf16, @swiglu_grad_dup_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_in_f32 ins [] outs [@rope_x_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_f32 ins [@rope_x_f32] outs [@rope_out_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_grad_f32 ins [@rope_x_f32] outs [@rope_grad_dx_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_in_f32 ins [] outs [@rope_at_x_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_pos_i32 ins [] outs [@rope_at_position_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_at_f32 ins [@rope_at_x_f32, @rope_at_position_f32] outs [@rope_at_out_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_in_f32 ins [] outs [@rope_x_bf16_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@rope_x_bf16_f32] outs [@rope_x_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_bf16 ins [@rope_x_bf16] outs [@rope_out_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_grad_bf16 ins [@rope_x_bf16] outs [@rope_grad_dx_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_in_f32 ins [] outs [@rope_at_x_bf16_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@rope_at_x_bf16_f32] outs [@rope_at_x_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_pos_i32 ins [] outs [@rope_at_position_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_at_bf16 ins [@rope_at_x_bf16, @rope_at_position_bf16] outs [@rope_at_out_bf16] grid [1, 1, 1] block [1, 1, 1]
  }
}
