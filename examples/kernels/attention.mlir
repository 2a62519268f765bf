// The attention family with CUDA templates (attention, attention_grad, kv_cache_attention).
// f32 on the smoke model's MLA head sizes (d_qk = 24, d_v = 16), B = 2, H = 4 query heads in
// G = 2 groups, T = 100 tokens (two 64-row forward tiles, four 32-row backward query tiles,
// neither a multiple): sliding window 32 and causal attention with their gradients, and full
// (non-causal) attention. bf16 on bench-1gpu's head sizes (d_qk = 96, d_v = 64), 4 heads in
// one group, T = 130, window 48. kv_cache_attention: f32, 3 new tokens at position 70 of an
// 80-slot cache updated in place (window 32), and bf16 tokens with f32 caches (as bench-1gpu)
// written to separate cache outputs, 1 token at position 129 of 140 (no window: 130 visible
// keys, three key tiles). Inputs come from init_param (normal) and fill (positions); bf16
// inputs are casts of f32 ones. The arena is persistent, so every result keeps its bytes for
// the CPU / GPU comparison.
module {
  fplan.arena @act persistent size(1700352)
  fplan.buffer @q : tensor<2x4x100x24xf32> in @act at 0
  fplan.buffer @k : tensor<2x2x100x24xf32> in @act at 76800
  fplan.buffer @v : tensor<2x2x100x16xf32> in @act at 115200
  fplan.buffer @do : tensor<2x4x100x16xf32> in @act at 140800
  fplan.buffer @o_win : tensor<2x4x100x16xf32> in @act at 192000
  fplan.buffer @o_causal : tensor<2x4x100x16xf32> in @act at 243200
  fplan.buffer @o_full : tensor<2x4x100x16xf32> in @act at 294400
  fplan.buffer @dq_win : tensor<2x4x100x24xf32> in @act at 345600
  fplan.buffer @dk_win : tensor<2x2x100x24xf32> in @act at 422400
  fplan.buffer @dv_win : tensor<2x2x100x16xf32> in @act at 460800
  fplan.buffer @dq_causal : tensor<2x4x100x24xf32> in @act at 486400
  fplan.buffer @dk_causal : tensor<2x2x100x24xf32> in @act at 563200
  fplan.buffer @dv_causal : tensor<2x2x100x16xf32> in @act at 601600
  fplan.buffer @q_src : tensor<1x4x130x96xf32> in @act at 627200
  fplan.buffer @q_bf16 : tensor<1x4x130x96xbf16> in @act at 826880
  fplan.buffer @k_src : tensor<1x1x130x96xf32> in @act at 926720
  fplan.buffer @k_bf16 : tensor<1x1x130x96xbf16> in @act at 976640
  fplan.buffer @v_src : tensor<1x1x130x64xf32> in @act at 1001728
  fplan.buffer @v_bf16 : tensor<1x1x130x64xbf16> in @act at 1035008
  fplan.buffer @do_src : tensor<1x4x130x64xf32> in @act at 1051648
  fplan.buffer @do_bf16 : tensor<1x4x130x64xbf16> in @act at 1184768
  fplan.buffer @o_bf16 : tensor<1x4x130x64xbf16> in @act at 1251328
  fplan.buffer @dq_bf16 : tensor<1x4x130x96xbf16> in @act at 1317888
  fplan.buffer @dk_bf16 : tensor<1x1x130x96xbf16> in @act at 1417728
  fplan.buffer @dv_bf16 : tensor<1x1x130x64xbf16> in @act at 1442816
  fplan.buffer @kv_q : tensor<2x4x3x24xf32> in @act at 1459456
  fplan.buffer @kv_k : tensor<2x2x3x24xf32> in @act at 1461760
  fplan.buffer @kv_v : tensor<2x2x3x16xf32> in @act at 1463040
  fplan.buffer @kv_pos : tensor<1xi32> in @act at 1463808
  fplan.buffer @k_cache : tensor<2x2x80x24xf32> in @act at 1464064
  fplan.buffer @v_cache : tensor<2x2x80x16xf32> in @act at 1494784
  fplan.buffer @kv_o : tensor<2x4x3x16xf32> in @act at 1515264
  fplan.buffer @dec_q_src : tensor<1x4x1x96xf32> in @act at 1516800
  fplan.buffer @dec_k_src : tensor<1x1x1x96xf32> in @act at 1518336
  fplan.buffer @dec_v_src : tensor<1x1x1x64xf32> in @act at 1518848
  fplan.buffer @dec_q : tensor<1x4x1x96xbf16> in @act at 1519104
  fplan.buffer @dec_k : tensor<1x1x1x96xbf16> in @act at 1519872
  fplan.buffer @dec_v : tensor<1x1x1x64xbf16> in @act at 1520128
  fplan.buffer @dec_pos : tensor<1xi32> in @act at 1520384
  fplan.buffer @dec_k_cache : tensor<1x1x140x96xf32> in @act at 1520640
  fplan.buffer @dec_v_cache : tensor<1x1x140x64xf32> in @act at 1574400
  fplan.buffer @dec_o : tensor<1x4x1x64xbf16> in @act at 1610240
  fplan.buffer @dec_k_out : tensor<1x1x140x96xf32> in @act at 1610752
  fplan.buffer @dec_v_out : tensor<1x1x140x64xf32> in @act at 1664512
  fplan.kernel @init_q kind "init_param" params {param_index = 0 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_k kind "init_param" params {param_index = 1 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_v kind "init_param" params {param_index = 2 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_do kind "init_param" params {param_index = 3 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_q_src kind "init_param" params {param_index = 4 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_k_src kind "init_param" params {param_index = 5 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_v_src kind "init_param" params {param_index = 6 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_do_src kind "init_param" params {param_index = 7 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_kv_q kind "init_param" params {param_index = 8 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_kv_k kind "init_param" params {param_index = 9 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_kv_v kind "init_param" params {param_index = 10 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_k_cache kind "init_param" params {param_index = 11 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_v_cache kind "init_param" params {param_index = 12 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_dec_q_src kind "init_param" params {param_index = 13 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_dec_k_src kind "init_param" params {param_index = 14 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_dec_v_src kind "init_param" params {param_index = 15 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_dec_k_cache kind "init_param" params {param_index = 16 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_dec_v_cache kind "init_param" params {param_index = 17 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @fill_kv_pos kind "fill" params {value = 7.0e+01 : f32}
  fplan.kernel @fill_dec_pos kind "fill" params {value = 1.29e+02 : f32}
  fplan.kernel @to_bf16 kind "cast"
  fplan.kernel @attn_win kind "attention" params {causal, scale = 0.204124153 : f32, window = 32 : i64}
  fplan.kernel @attn_causal kind "attention" params {causal, scale = 0.204124153 : f32, window = 0 : i64}
  fplan.kernel @attn_full kind "attention" params {scale = 0.204124153 : f32}
  fplan.kernel @grad_win kind "attention_grad" params {causal, scale = 0.204124153 : f32, window = 32 : i64}
  fplan.kernel @grad_causal kind "attention_grad" params {causal, scale = 0.204124153 : f32, window = 0 : i64}
  fplan.kernel @attn_bf16 kind "attention" params {causal, scale = 0.102062076 : f32, window = 48 : i64}
  fplan.kernel @grad_bf16 kind "attention_grad" params {causal, scale = 0.102062076 : f32, window = 48 : i64}
  fplan.kernel @kv_f32 kind "kv_cache_attention" params {scale = 0.204124153 : f32, window = 32 : i64}
  fplan.kernel @kv_bf16 kind "kv_cache_attention" params {scale = 0.102062076 : f32, window = 0 : i64}
  fplan.program @main {
    fplan.launch @init_q ins [] outs [@q] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_k ins [] outs [@k] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_v ins [] outs [@v] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_do ins [] outs [@do] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_q_src ins [] outs [@q_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_k_src ins [] outs [@k_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_v_src ins [] outs [@v_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_do_src ins [] outs [@do_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_kv_q ins [] outs [@kv_q] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_kv_k ins [] outs [@kv_k] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_kv_v ins [] outs [@kv_v] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_k_cache ins [] outs [@k_cache] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_v_cache ins [] outs [@v_cache] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_dec_q_src ins [] outs [@dec_q_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_dec_k_src ins [] outs [@dec_k_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_dec_v_src ins [] outs [@dec_v_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_dec_k_cache ins [] outs [@dec_k_cache] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_dec_v_cache ins [] outs [@dec_v_cache] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill_kv_pos ins [] outs [@kv_pos] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill_dec_pos ins [] outs [@dec_pos] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@q_src] outs [@q_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@k_src] outs [@k_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@v_src] outs [@v_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@do_src] outs [@do_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@dec_q_src] outs [@dec_q] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@dec_k_src] outs [@dec_k] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@dec_v_src] outs [@dec_v] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_win ins [@q, @k, @v] outs [@o_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_causal ins [@q, @k, @v] outs [@o_causal] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_full ins [@q, @k, @v] outs [@o_full] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad_win ins [@q, @k, @v, @do] outs [@dq_win, @dk_win, @dv_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad_causal ins [@q, @k, @v, @do] outs [@dq_causal, @dk_causal, @dv_causal] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_bf16 ins [@q_bf16, @k_bf16, @v_bf16] outs [@o_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad_bf16 ins [@q_bf16, @k_bf16, @v_bf16, @do_bf16] outs [@dq_bf16, @dk_bf16, @dv_bf16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @kv_f32 ins [@kv_q, @kv_k, @kv_v, @kv_pos, @k_cache, @v_cache] outs [@kv_o, @k_cache, @v_cache] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @kv_bf16 ins [@dec_q, @dec_k, @dec_v, @dec_pos, @dec_k_cache, @dec_v_cache] outs [@dec_o, @dec_k_out, @dec_v_out] grid [1, 1, 1] block [1, 1, 1]
  }
}
