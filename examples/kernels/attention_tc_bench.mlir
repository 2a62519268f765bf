// Timing plan for the tensor-core attention kernels at bench-1gpu's shapes (bf16, B = 16,
// H = 16 query heads in G = 4 groups, d_qk = 96, d_v = 64, scale 1/sqrt(96)): T = 2048 with
// the sliding window 1024 and global causal, forward and backward, and the MTP module's
// T = 2047 (window 1024); then T = 2048 again with attention_lse / attention_grad_lse (the
// saved log-sum-exp, as training steps run them). Too large for the CPU reference: run it on the GPU alone and read
// the kernel times from the trace:
//   fusionc examples/kernels/attention_tc_bench.mlir --target=cuda -o attention_tc_bench.fplan
//   fusion-run attention_tc_bench.fplan --backend cuda --trace attention_tc_bench.json
module {
  fplan.arena @act size(1891221504)
  fplan.buffer @b_q_src : tensor<16x16x2048x96xf32> in @act at 0
  fplan.buffer @b_q : tensor<16x16x2048x96xbf16> in @act at 201326592
  fplan.buffer @b_k_src : tensor<16x4x2048x96xf32> in @act at 301989888
  fplan.buffer @b_k : tensor<16x4x2048x96xbf16> in @act at 352321536
  fplan.buffer @b_v_src : tensor<16x4x2048x64xf32> in @act at 377487360
  fplan.buffer @b_v : tensor<16x4x2048x64xbf16> in @act at 411041792
  fplan.buffer @b_do_src : tensor<16x16x2048x64xf32> in @act at 427819008
  fplan.buffer @b_do : tensor<16x16x2048x64xbf16> in @act at 562036736
  fplan.buffer @b_o_win : tensor<16x16x2048x64xbf16> in @act at 629145600
  fplan.buffer @b_o_glob : tensor<16x16x2048x64xbf16> in @act at 696254464
  fplan.buffer @b_dq_win : tensor<16x16x2048x96xbf16> in @act at 763363328
  fplan.buffer @b_dk_win : tensor<16x4x2048x96xbf16> in @act at 864026624
  fplan.buffer @b_dv_win : tensor<16x4x2048x64xbf16> in @act at 889192448
  fplan.buffer @b_dq_glob : tensor<16x16x2048x96xbf16> in @act at 905969664
  fplan.buffer @b_dk_glob : tensor<16x4x2048x96xbf16> in @act at 1006632960
  fplan.buffer @b_dv_glob : tensor<16x4x2048x64xbf16> in @act at 1031798784
  fplan.buffer @m_q_src : tensor<16x16x2047x96xf32> in @act at 1048576000
  fplan.buffer @m_q : tensor<16x16x2047x96xbf16> in @act at 1249804288
  fplan.buffer @m_k_src : tensor<16x4x2047x96xf32> in @act at 1350418432
  fplan.buffer @m_k : tensor<16x4x2047x96xbf16> in @act at 1400725504
  fplan.buffer @m_v_src : tensor<16x4x2047x64xf32> in @act at 1425879040
  fplan.buffer @m_v : tensor<16x4x2047x64xbf16> in @act at 1459417088
  fplan.buffer @m_do_src : tensor<16x16x2047x64xf32> in @act at 1476186112
  fplan.buffer @m_do : tensor<16x16x2047x64xbf16> in @act at 1610338304
  fplan.buffer @m_o_win : tensor<16x16x2047x64xbf16> in @act at 1677414400
  fplan.buffer @m_dq_win : tensor<16x16x2047x96xbf16> in @act at 1744490496
  fplan.buffer @m_dk_win : tensor<16x4x2047x96xbf16> in @act at 1845104640
  fplan.buffer @m_dv_win : tensor<16x4x2047x64xbf16> in @act at 1870258176
  fplan.buffer @b_lse_win : tensor<16x16x2048xf32> in @act at 1887027200
  fplan.buffer @b_lse_glob : tensor<16x16x2048xf32> in @act at 1889124352
  fplan.kernel @init_b_q_src kind "init_param" params {param_index = 0 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_b_k_src kind "init_param" params {param_index = 1 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_b_v_src kind "init_param" params {param_index = 2 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_b_do_src kind "init_param" params {param_index = 3 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_m_q_src kind "init_param" params {param_index = 4 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_m_k_src kind "init_param" params {param_index = 5 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_m_v_src kind "init_param" params {param_index = 6 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_m_do_src kind "init_param" params {param_index = 7 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @to_bf16 kind "cast"
  fplan.kernel @attn_win kind "attention" params {causal, scale = 0.102062076 : f32, window = 1024 : i64}
  fplan.kernel @attn_glob kind "attention" params {causal, scale = 0.102062076 : f32, window = 0 : i64}
  fplan.kernel @grad_win kind "attention_grad" params {causal, scale = 0.102062076 : f32, window = 1024 : i64}
  fplan.kernel @grad_glob kind "attention_grad" params {causal, scale = 0.102062076 : f32, window = 0 : i64}
  fplan.kernel @attnlse_win kind "attention_lse" params {causal, scale = 0.102062076 : f32, window = 1024 : i64}
  fplan.kernel @attnlse_glob kind "attention_lse" params {causal, scale = 0.102062076 : f32, window = 0 : i64}
  fplan.kernel @gradlse_win kind "attention_grad_lse" params {causal, scale = 0.102062076 : f32, window = 1024 : i64}
  fplan.kernel @gradlse_glob kind "attention_grad_lse" params {causal, scale = 0.102062076 : f32, window = 0 : i64}
  fplan.program @main {
    fplan.launch @init_b_q_src ins [] outs [@b_q_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_b_k_src ins [] outs [@b_k_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_b_v_src ins [] outs [@b_v_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_b_do_src ins [] outs [@b_do_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_m_q_src ins [] outs [@m_q_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_m_k_src ins [] outs [@m_k_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_m_v_src ins [] outs [@m_v_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_m_do_src ins [] outs [@m_do_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@b_q_src] outs [@b_q] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@b_k_src] outs [@b_k] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@b_v_src] outs [@b_v] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@b_do_src] outs [@b_do] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@m_q_src] outs [@m_q] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@m_k_src] outs [@m_k] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@m_v_src] outs [@m_v] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@m_do_src] outs [@m_do] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_win ins [@b_q, @b_k, @b_v] outs [@b_o_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_glob ins [@b_q, @b_k, @b_v] outs [@b_o_glob] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad_win ins [@b_q, @b_k, @b_v, @b_do] outs [@b_dq_win, @b_dk_win, @b_dv_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad_glob ins [@b_q, @b_k, @b_v, @b_do] outs [@b_dq_glob, @b_dk_glob, @b_dv_glob] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_win ins [@m_q, @m_k, @m_v] outs [@m_o_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad_win ins [@m_q, @m_k, @m_v, @m_do] outs [@m_dq_win, @m_dk_win, @m_dv_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attnlse_win ins [@b_q, @b_k, @b_v] outs [@b_o_win, @b_lse_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attnlse_glob ins [@b_q, @b_k, @b_v] outs [@b_o_glob, @b_lse_glob] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @gradlse_win ins [@b_q, @b_k, @b_v, @b_do, @b_o_win, @b_lse_win] outs [@b_dq_win, @b_dk_win, @b_dv_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @gradlse_glob ins [@b_q, @b_k, @b_v, @b_do, @b_o_glob, @b_lse_glob] outs [@b_dq_glob, @b_dk_glob, @b_dv_glob] grid [1, 1, 1] block [1, 1, 1]
  }
}
