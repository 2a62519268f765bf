// Every kind of the pointwise family with a CUDA template (rms_norm_grad, l2_norm,
// l2_norm_grad, rope, rope_grad, rope_at, activation_grad, swiglu_grad), in f32 and bf16,
// on shapes that exercise each launch geometry (row groups of one warp and of four, several
// row sweeps per block for rms_norm_grad's dw, rows and element counts that are not
// multiples of the block, rope with pass-through columns). The norms read a "noise" input:
// the bf16 rounding residual of a steep f32 ramp, r - f32(bf16(r)), an irregular sawtooth.
// The lead runs it on both backends (fusion-run --check-against-cpu) and compares every
// buffer; the arena is persistent, so every result keeps its own bytes.
// Buffers are packed by hand at 256-byte boundaries; change shapes and offsets together.
// Appended last (init_param inputs): rms_norm forward on the grad cases' inputs (f32 d = 1000:
// 128-lane groups with vector loads; bf16 d = 96: 16-lane groups), the four row-group norms
// on f32 d = 30 (scalar loads: d not a multiple of 4) and on bf16 d = 64 both with x 2 bytes
// off a vector boundary (mis_*, scalar loads) and aligned (al_*, vector loads, 8-lane
// groups), and rms_norm rows of 5000 (one block per row); rope / rope_grad on f32 d = 25
// (d − rotary odd: element-wise items), bf16 [5,300,2,40] (T >= 256: 2 batch slices looping
// over 5 batches, pair accesses) and bf16 x 2 bytes off a pair boundary (element-wise items).
// The earlier rope cases (d = 24 f32, d = 96 bf16) take pair accesses.
module {
  fplan.arena @act persistent size(21005056)
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
  fplan.buffer @rms_norm_out_f32 : tensor<4x150x1000xf32> in @act at 17044224
  fplan.buffer @rms_norm_out_bf16 : tensor<5x33x3x96xbf16> in @act at 19444224
  fplan.buffer @odd_x : tensor<37x30xf32> in @act at 19539456
  fplan.buffer @odd_w : tensor<30xf32> in @act at 19544064
  fplan.buffer @odd_dy : tensor<37x30xf32> in @act at 19544320
  fplan.buffer @odd_rms_out : tensor<37x30xf32> in @act at 19548928
  fplan.buffer @odd_rms_dx : tensor<37x30xf32> in @act at 19553536
  fplan.buffer @odd_rms_dw : tensor<30xf32> in @act at 19558144
  fplan.buffer @odd_l2_out : tensor<37x30xf32> in @act at 19558400
  fplan.buffer @odd_l2_dx : tensor<37x30xf32> in @act at 19563008
  fplan.buffer @mis_x_f32 : tensor<2x20x64xf32> in @act at 19567616
  fplan.buffer @mis_x : tensor<2x20x64xbf16> in @act at 19577858
  fplan.buffer @mis_w_f32 : tensor<64xf32> in @act at 19583232
  fplan.buffer @mis_w : tensor<64xbf16> in @act at 19583488
  fplan.buffer @mis_dy_f32 : tensor<2x20x64xf32> in @act at 19583744
  fplan.buffer @mis_dy : tensor<2x20x64xbf16> in @act at 19593984
  fplan.buffer @al_x_f32 : tensor<2x20x64xf32> in @act at 19599104
  fplan.buffer @al_x : tensor<2x20x64xbf16> in @act at 19609344
  fplan.buffer @mis_rms_out : tensor<2x20x64xbf16> in @act at 19614464
  fplan.buffer @mis_rms_dx : tensor<2x20x64xbf16> in @act at 19619584
  fplan.buffer @mis_rms_dw : tensor<64xf32> in @act at 19624704
  fplan.buffer @mis_l2_out : tensor<2x20x64xbf16> in @act at 19624960
  fplan.buffer @mis_l2_dx : tensor<2x20x64xbf16> in @act at 19630080
  fplan.buffer @al_rms_out : tensor<2x20x64xbf16> in @act at 19635200
  fplan.buffer @al_rms_dx : tensor<2x20x64xbf16> in @act at 19640320
  fplan.buffer @al_rms_dw : tensor<64xf32> in @act at 19645440
  fplan.buffer @al_l2_dx : tensor<2x20x64xbf16> in @act at 19645696
  fplan.buffer @long_x : tensor<3x5000xf32> in @act at 19650816
  fplan.buffer @long_w : tensor<5000xf32> in @act at 19710976
  fplan.buffer @long_out : tensor<3x5000xf32> in @act at 19731200
  fplan.buffer @rope_odd_x : tensor<2x5x3x25xf32> in @act at 19791360
  fplan.buffer @rope_odd_out : tensor<2x5x3x25xf32> in @act at 19794432
  fplan.buffer @rope_odd_dx : tensor<2x5x3x25xf32> in @act at 19797504
  fplan.buffer @rope_long_x_f32 : tensor<5x300x2x40xf32> in @act at 19800576
  fplan.buffer @rope_long_x : tensor<5x300x2x40xbf16> in @act at 20280576
  fplan.buffer @rope_long_out : tensor<5x300x2x40xbf16> in @act at 20520704
  fplan.buffer @rope_long_dx : tensor<5x300x2x40xbf16> in @act at 20760832
  fplan.buffer @rope_mis_x_f32 : tensor<2x3x2x40xf32> in @act at 21000960
  fplan.buffer @rope_mis_x : tensor<2x3x2x40xbf16> in @act at 21003010
  fplan.buffer @rope_mis_out : tensor<2x3x2x40xbf16> in @act at 21004032
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
  fplan.kernel @k_rms_norm_f32 kind "rms_norm" params {eps = 1.0e-6 : f32}
  fplan.kernel @k_rms_norm_bf16 kind "rms_norm" params {eps = 1.0e-6 : f32}
  fplan.kernel @k_norm_grad_f32 kind "rms_norm_grad" params {eps = 1.0e-6 : f32}
  fplan.kernel @k_l2n_f32 kind "l2_norm" params {eps = 1.0e-6 : f32, scale = 0.5 : f32}
  fplan.kernel @k_l2n_grad_f32 kind "l2_norm_grad" params {eps = 1.0e-6 : f32, scale = 0.5 : f32}
  fplan.kernel @k_init_odd_x kind "init_param" params {high = 1.0 : f64, low = -1.0 : f64, param_index = 101 : i64, rule = "uniform", seed = 2024 : i64}
  fplan.kernel @k_init_odd_w kind "init_param" params {high = 1.5 : f64, low = 0.5 : f64, param_index = 102 : i64, rule = "uniform", seed = 2024 : i64}
  fplan.kernel @k_init_odd_dy kind "init_param" params {high = 1.0 : f64, low = -1.0 : f64, param_index = 103 : i64, rule = "uniform", seed = 2024 : i64}
  fplan.kernel @k_norm_grad_bf16x kind "rms_norm_grad" params {eps = 1.0e-6 : f32}
  fplan.kernel @k_l2n_bf16 kind "l2_norm" params {eps = 1.0e-6 : f32, scale = 0.5 : f32}
  fplan.kernel @k_l2n_grad_bf16 kind "l2_norm_grad" params {eps = 1.0e-6 : f32, scale = 0.5 : f32}
  fplan.kernel @k_init_mis_x kind "init_param" params {high = 1.0 : f64, low = -1.0 : f64, param_index = 104 : i64, rule = "uniform", seed = 2024 : i64}
  fplan.kernel @k_init_mis_w kind "init_param" params {high = 1.5 : f64, low = 0.5 : f64, param_index = 105 : i64, rule = "uniform", seed = 2024 : i64}
  fplan.kernel @k_init_mis_dy kind "init_param" params {high = 1.0 : f64, low = -1.0 : f64, param_index = 106 : i64, rule = "uniform", seed = 2024 : i64}
  fplan.kernel @k_init_al_x kind "init_param" params {high = 1.0 : f64, low = -1.0 : f64, param_index = 107 : i64, rule = "uniform", seed = 2024 : i64}
  fplan.kernel @k_init_long_x kind "init_param" params {high = 1.0 : f64, low = -1.0 : f64, param_index = 108 : i64, rule = "uniform", seed = 2024 : i64}
  fplan.kernel @k_init_long_w kind "init_param" params {high = 1.5 : f64, low = 0.5 : f64, param_index = 109 : i64, rule = "uniform", seed = 2024 : i64}
  fplan.kernel @k_rope_odd_f32 kind "rope" params {rotary_dims = 16 : i64, theta = 1.0e+04 : f32}
  fplan.kernel @k_rope_grad_odd_f32 kind "rope_grad" params {rotary_dims = 16 : i64, theta = 1.0e+04 : f32}
  fplan.kernel @k_rope_long_bf16 kind "rope" params {rotary_dims = 16 : i64, theta = 1.0e+04 : f32}
  fplan.kernel @k_rope_grad_long_bf16 kind "rope_grad" params {rotary_dims = 16 : i64, theta = 1.0e+04 : f32}
  fplan.kernel @k_init_rope_odd_x kind "init_param" params {high = 1.0 : f64, low = -1.0 : f64, param_index = 131 : i64, rule = "uniform", seed = 2024 : i64}
  fplan.kernel @k_init_rope_long_x kind "init_param" params {high = 1.0 : f64, low = -1.0 : f64, param_index = 132 : i64, rule = "uniform", seed = 2024 : i64}
  fplan.kernel @k_init_rope_mis_x kind "init_param" params {high = 1.0 : f64, low = -1.0 : f64, param_index = 133 : i64, rule = "uniform", seed = 2024 : i64}
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
    fplan.launch @k_rms_norm_f32 ins [@rms_x_f32, @rms_w_f32] outs [@rms_norm_out_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rms_norm_bf16 ins [@rms_x_bf16, @rms_w_bf16] outs [@rms_norm_out_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_init_odd_x ins [] outs [@odd_x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_init_odd_w ins [] outs [@odd_w] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_init_odd_dy ins [] outs [@odd_dy] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rms_norm_f32 ins [@odd_x, @odd_w] outs [@odd_rms_out] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_norm_grad_f32 ins [@odd_x, @odd_w, @odd_dy] outs [@odd_rms_dx, @odd_rms_dw] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_l2n_f32 ins [@odd_x] outs [@odd_l2_out] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_l2n_grad_f32 ins [@odd_x, @odd_dy] outs [@odd_l2_dx] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_init_mis_x ins [] outs [@mis_x_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@mis_x_f32] outs [@mis_x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_init_mis_w ins [] outs [@mis_w_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@mis_w_f32] outs [@mis_w] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_init_mis_dy ins [] outs [@mis_dy_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@mis_dy_f32] outs [@mis_dy] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_init_al_x ins [] outs [@al_x_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@al_x_f32] outs [@al_x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rms_norm_bf16 ins [@mis_x, @mis_w] outs [@mis_rms_out] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_norm_grad_bf16x ins [@mis_x, @mis_w, @mis_dy] outs [@mis_rms_dx, @mis_rms_dw] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_l2n_bf16 ins [@mis_x] outs [@mis_l2_out] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_l2n_grad_bf16 ins [@mis_x, @mis_dy] outs [@mis_l2_dx] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rms_norm_bf16 ins [@al_x, @mis_w] outs [@al_rms_out] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_norm_grad_bf16x ins [@al_x, @mis_w, @mis_dy] outs [@al_rms_dx, @al_rms_dw] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_l2n_grad_bf16 ins [@al_x, @mis_dy] outs [@al_l2_dx] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_init_long_x ins [] outs [@long_x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_init_long_w ins [] outs [@long_w] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rms_norm_f32 ins [@long_x, @long_w] outs [@long_out] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_init_rope_odd_x ins [] outs [@rope_odd_x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_odd_f32 ins [@rope_odd_x] outs [@rope_odd_out] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_grad_odd_f32 ins [@rope_odd_x] outs [@rope_odd_dx] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_init_rope_long_x ins [] outs [@rope_long_x_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@rope_long_x_f32] outs [@rope_long_x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_long_bf16 ins [@rope_long_x] outs [@rope_long_out] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_grad_long_bf16 ins [@rope_long_x] outs [@rope_long_dx] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_init_rope_mis_x ins [] outs [@rope_mis_x_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_to_bf16 ins [@rope_mis_x_f32] outs [@rope_mis_x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k_rope_long_bf16 ins [@rope_mis_x] outs [@rope_mis_out] grid [1, 1, 1] block [1, 1, 1]
  }
}
