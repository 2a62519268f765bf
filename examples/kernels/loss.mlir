// The loss and init families with CUDA templates (cross_entropy, cross_entropy_grad, softcap_ce,
// softcap_ce_grad, init_param), in f32 and bf16 where the model uses them, on shapes that are
// no multiple of any tile: N = 150 token rows (64-row blocks, 32-row gradient blocks), D = 72
// (k-chunks of 32), V = 200 (vocabulary tiles of 64). Inputs come from init_param (normal h,
// w and logits, uniform dce) and fill (targets -1, 0, 1, 3, ..., 199: the first is ignored);
// every init_param rule writes a buffer of its own (one param_index is 2^32 - 1, one seed is
// negative). softcap_ce / softcap_ce_grad run with cap 15 (the CPU's fixed shift) and cap 0
// (an online maximum). The arena is persistent, so every result keeps its bytes for the
// CPU / GPU comparison.
//
// The plans' GEMM form of the head (fusion-lower-to-plan): a bf16 × bf16 → f32 gemm for the
// logits, softcap_ce_rows on all rows and on a 22-row tail block (row offset 128),
// softcap_ce_rows_grad into bf16 (cap 15, fixed shift) and f32 (cap 50, max shift), and the
// gradient's gemms dh = dℓ·w (bf16) and dw = dℓᵀ·h (bf16 operands, f32 result). The row
// kernels' paths (templates/loss.cuh): V = 200 rows read in 16-byte units (the fixed-shift
// forward streaming, the max-shift forward (cap 0) and the gradients through the shared-memory
// row cache, the tail gradient with row offset 128); V = 199 (no multiple of 4: scalar units,
// cap 15 and 0 forward, cap 50 gradient); 4 × 200 logits and an f32 dℓ at bases 4 bytes off
// 16-byte alignment (scalar units; row offset 3); 3 × 60000 logits, longer than the row cache
// (the streaming fixed-shift forward, the two-pass max-shift forward, the uncached gradient;
// row offset 5). Every block of rows starting at row 0 includes the ignored target -1.
module {
  fplan.arena @act persistent size(2443008)
  fplan.buffer @h_f32 : tensor<150x72xf32> in @act at 0
  fplan.buffer @w_f32 : tensor<200x72xf32> in @act at 43264
  fplan.buffer @h_bf16 : tensor<150x72xbf16> in @act at 100864
  fplan.buffer @w_bf16 : tensor<200x72xbf16> in @act at 122624
  fplan.buffer @targets : tensor<150xi32> in @act at 151552
  fplan.buffer @dce : tensor<150xf32> in @act at 152320
  fplan.buffer @logits_f32 : tensor<150x200xf32> in @act at 153088
  fplan.buffer @logits_bf16 : tensor<150x200xbf16> in @act at 273152
  fplan.buffer @init_zeros : tensor<1000xf32> in @act at 333312
  fplan.buffer @init_ones : tensor<1000xf32> in @act at 337408
  fplan.buffer @init_trunc_normal : tensor<3000xf32> in @act at 341504
  fplan.buffer @init_log_uniform : tensor<1000xf32> in @act at 353536
  fplan.buffer @init_dt_bias : tensor<1000xf32> in @act at 357632
  fplan.buffer @ce_f32 : tensor<150xf32> in @act at 361728
  fplan.buffer @ce_bf16 : tensor<150xf32> in @act at 362496
  fplan.buffer @ce_grad_f32 : tensor<150x200xf32> in @act at 363264
  fplan.buffer @ce_grad_bf16 : tensor<150x200xbf16> in @act at 483328
  fplan.buffer @head_ce_f32 : tensor<150xf32> in @act at 543488
  fplan.buffer @head_ce_bf16 : tensor<150xf32> in @act at 544256
  fplan.buffer @head_ce_nocap_f32 : tensor<150xf32> in @act at 545024
  fplan.buffer @head_dh_f32 : tensor<150x72xf32> in @act at 545792
  fplan.buffer @head_dw_f32 : tensor<200x72xf32> in @act at 589056
  fplan.buffer @head_dh_bf16 : tensor<150x72xbf16> in @act at 646656
  fplan.buffer @head_dw_bf16 : tensor<200x72xf32> in @act at 668416
  fplan.buffer @head_dh_nocap_f32 : tensor<150x72xf32> in @act at 726016
  fplan.buffer @head_dw_nocap_f32 : tensor<200x72xf32> in @act at 769280
  fplan.buffer @gemm_logits : tensor<150x200xf32> in @act at 826880
  fplan.buffer @rows_ce : tensor<150xf32> in @act at 946944
  fplan.buffer @rows_dl_bf16 : tensor<150x200xbf16> in @act at 947712
  fplan.buffer @rows_dh_bf16 : tensor<150x72xbf16> in @act at 1007872
  fplan.buffer @rows_dw : tensor<200x72xf32> in @act at 1029632
  fplan.buffer @gemm_logits_tail : tensor<22x200xf32> in @act at 1087232
  fplan.buffer @rows_ce_tail : tensor<22xf32> in @act at 1104896
  fplan.buffer @rows_dl_f32 : tensor<150x200xf32> in @act at 1105152
  fplan.buffer @logits_odd : tensor<100x199xf32> in @act at 1225216
  fplan.buffer @rows_ce_odd : tensor<100xf32> in @act at 1304832
  fplan.buffer @rows_dl_odd : tensor<100x199xbf16> in @act at 1305344
  fplan.buffer @logits_unal : tensor<4x200xf32> in @act at 1345284
  fplan.buffer @rows_dl_unal : tensor<4x200xf32> in @act at 1348612
  fplan.buffer @rows_ce_unal : tensor<4xf32> in @act at 1351936
  fplan.buffer @logits_long : tensor<3x60000xf32> in @act at 1352192
  fplan.buffer @rows_ce_long : tensor<3xf32> in @act at 2072320
  fplan.buffer @rows_dl_long : tensor<3x60000xbf16> in @act at 2072576
  fplan.buffer @rows_dl_tail : tensor<22x200xbf16> in @act at 2432768
  fplan.buffer @rows_ce_nocap : tensor<150xf32> in @act at 2441728
  fplan.buffer @rows_ce_odd_nocap : tensor<100xf32> in @act at 2442496
  fplan.buffer @rows_ce_long_nocap : tensor<3xf32> in @act at 2442368
  fplan.kernel @init_h kind "init_param" params {param_index = 0 : i64, rule = "normal", seed = 1234 : i64, std = 1.0 : f64}
  fplan.kernel @init_w kind "init_param" params {param_index = 1 : i64, rule = "normal", seed = 1234 : i64, std = 0.5 : f64}
  fplan.kernel @init_logits kind "init_param" params {param_index = 2 : i64, rule = "normal", seed = 99 : i64, std = 3.0 : f64}
  fplan.kernel @init_dce kind "init_param" params {high = 1.5 : f64, low = 0.5 : f64, param_index = 3 : i64, rule = "uniform", seed = 1234 : i64}
  fplan.kernel @init_z kind "init_param" params {param_index = 4 : i64, rule = "zeros", seed = 1234 : i64}
  fplan.kernel @init_o kind "init_param" params {param_index = 5 : i64, rule = "ones", seed = 1234 : i64}
  fplan.kernel @init_tn kind "init_param" params {param_index = 6 : i64, rule = "trunc_normal", seed = 1234 : i64, std = 2.0e-02 : f64}
  fplan.kernel @init_lu kind "init_param" params {high = 1.6e+01 : f64, low = 1.0 : f64, param_index = 7 : i64, rule = "log_uniform", seed = -5 : i64}
  fplan.kernel @init_dt kind "init_param" params {high = 1.0e-01 : f64, low = 1.0e-03 : f64, param_index = 4294967295 : i64, rule = "dt_bias", seed = 1234 : i64}
  fplan.kernel @fill_targets kind "fill" params {value = -1.0 : f32, step = 1.34 : f32}
  fplan.kernel @to_bf16_h kind "cast"
  fplan.kernel @to_bf16_w kind "cast"
  fplan.kernel @to_bf16_logits kind "cast"
  fplan.kernel @ce_k_f32 kind "cross_entropy"
  fplan.kernel @ce_k_bf16 kind "cross_entropy"
  fplan.kernel @ce_grad_k_f32 kind "cross_entropy_grad"
  fplan.kernel @ce_grad_k_bf16 kind "cross_entropy_grad"
  fplan.kernel @head_k_f32 kind "softcap_ce" params {cap = 1.500000e+01 : f32}
  fplan.kernel @head_k_bf16 kind "softcap_ce" params {cap = 1.500000e+01 : f32}
  fplan.kernel @head_k_nocap kind "softcap_ce" params {cap = 0.0 : f32}
  fplan.kernel @head_grad_k_f32 kind "softcap_ce_grad" params {cap = 1.500000e+01 : f32}
  fplan.kernel @head_grad_k_bf16 kind "softcap_ce_grad" params {cap = 1.500000e+01 : f32}
  fplan.kernel @head_grad_k_nocap kind "softcap_ce_grad" params {cap = 0.0 : f32}
  fplan.kernel @rows_k kind "softcap_ce_rows" params {cap = 1.500000e+01 : f32, row = 0 : i64}
  fplan.kernel @rows_tail_k kind "softcap_ce_rows" params {cap = 1.500000e+01 : f32, row = 128 : i64}
  fplan.kernel @rows_grad_k kind "softcap_ce_rows_grad" params {cap = 1.500000e+01 : f32, row = 0 : i64}
  fplan.kernel @rows_grad_maxshift_k kind "softcap_ce_rows_grad" params {cap = 5.000000e+01 : f32, row = 0 : i64}
  fplan.kernel @slice_tail kind "slice" params {dim = 0 : i64, start = 128 : i64, size = 22 : i64}
  fplan.kernel @init_logits_odd kind "init_param" params {param_index = 8 : i64, rule = "normal", seed = 77 : i64, std = 3.0 : f64}
  fplan.kernel @init_logits_unal kind "init_param" params {param_index = 9 : i64, rule = "normal", seed = 78 : i64, std = 3.0 : f64}
  fplan.kernel @init_logits_long kind "init_param" params {param_index = 10 : i64, rule = "normal", seed = 79 : i64, std = 3.0 : f64}
  fplan.kernel @rows_nocap_k kind "softcap_ce_rows" params {cap = 0.0 : f32, row = 0 : i64}
  fplan.kernel @rows_grad_tail_k kind "softcap_ce_rows_grad" params {cap = 1.500000e+01 : f32, row = 128 : i64}
  fplan.kernel @rows_odd_k kind "softcap_ce_rows" params {cap = 1.500000e+01 : f32, row = 0 : i64}
  fplan.kernel @rows_odd_nocap_k kind "softcap_ce_rows" params {cap = 0.0 : f32, row = 0 : i64}
  fplan.kernel @rows_grad_odd_k kind "softcap_ce_rows_grad" params {cap = 5.000000e+01 : f32, row = 0 : i64}
  fplan.kernel @rows_unal_k kind "softcap_ce_rows" params {cap = 1.500000e+01 : f32, row = 3 : i64}
  fplan.kernel @rows_grad_unal_k kind "softcap_ce_rows_grad" params {cap = 1.500000e+01 : f32, row = 3 : i64}
  fplan.kernel @rows_long_k kind "softcap_ce_rows" params {cap = 1.500000e+01 : f32, row = 5 : i64}
  fplan.kernel @rows_long_nocap_k kind "softcap_ce_rows" params {cap = 0.0 : f32, row = 5 : i64}
  fplan.kernel @rows_grad_long_k kind "softcap_ce_rows_grad" params {cap = 1.500000e+01 : f32, row = 5 : i64}
  fplan.program @main {
    fplan.launch @init_h ins [] outs [@h_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_w ins [] outs [@w_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_logits ins [] outs [@logits_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_dce ins [] outs [@dce] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_z ins [] outs [@init_zeros] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_o ins [] outs [@init_ones] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_tn ins [] outs [@init_trunc_normal] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_lu ins [] outs [@init_log_uniform] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_dt ins [] outs [@init_dt_bias] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill_targets ins [] outs [@targets] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16_h ins [@h_f32] outs [@h_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16_w ins [@w_f32] outs [@w_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16_logits ins [@logits_f32] outs [@logits_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @ce_k_f32 ins [@logits_f32, @targets] outs [@ce_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @ce_k_bf16 ins [@logits_bf16, @targets] outs [@ce_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @ce_grad_k_f32 ins [@logits_f32, @targets, @dce] outs [@ce_grad_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @ce_grad_k_bf16 ins [@logits_bf16, @targets, @dce] outs [@ce_grad_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @head_k_f32 ins [@h_f32, @w_f32, @targets] outs [@head_ce_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @head_k_bf16 ins [@h_bf16, @w_bf16, @targets] outs [@head_ce_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @head_k_nocap ins [@h_f32, @w_f32, @targets] outs [@head_ce_nocap_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @head_grad_k_f32 ins [@h_f32, @w_f32, @targets, @dce] outs [@head_dh_f32, @head_dw_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @head_grad_k_bf16 ins [@h_bf16, @w_bf16, @targets, @dce] outs [@head_dh_bf16, @head_dw_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @head_grad_k_nocap ins [@h_f32, @w_f32, @targets, @dce] outs [@head_dh_nocap_f32, @head_dw_nocap_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.gemm @h_bf16, @w_bf16 -> @gemm_logits transpose_b
    fplan.launch @rows_k ins [@gemm_logits, @targets] outs [@rows_ce] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @slice_tail ins [@gemm_logits] outs [@gemm_logits_tail] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows_tail_k ins [@gemm_logits_tail, @targets] outs [@rows_ce_tail] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows_grad_k ins [@gemm_logits, @targets, @dce] outs [@rows_dl_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.gemm @rows_dl_bf16, @w_bf16 -> @rows_dh_bf16
    fplan.gemm @rows_dl_bf16, @h_bf16 -> @rows_dw transpose_a
    fplan.launch @rows_grad_maxshift_k ins [@gemm_logits, @targets, @dce] outs [@rows_dl_f32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows_nocap_k ins [@gemm_logits, @targets] outs [@rows_ce_nocap] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows_grad_tail_k ins [@gemm_logits_tail, @targets, @dce] outs [@rows_dl_tail] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_logits_odd ins [] outs [@logits_odd] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_logits_unal ins [] outs [@logits_unal] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_logits_long ins [] outs [@logits_long] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows_odd_k ins [@logits_odd, @targets] outs [@rows_ce_odd] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows_odd_nocap_k ins [@logits_odd, @targets] outs [@rows_ce_odd_nocap] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows_grad_odd_k ins [@logits_odd, @targets, @dce] outs [@rows_dl_odd] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows_unal_k ins [@logits_unal, @targets] outs [@rows_ce_unal] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows_grad_unal_k ins [@logits_unal, @targets, @dce] outs [@rows_dl_unal] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows_long_k ins [@logits_long, @targets] outs [@rows_ce_long] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows_long_nocap_k ins [@logits_long, @targets] outs [@rows_ce_long_nocap] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows_grad_long_k ins [@logits_long, @targets, @dce] outs [@rows_dl_long] grid [1, 1, 1] block [1, 1, 1]
  }
}
