// The tensor-core path of attention / attention_grad (templates/attention.cuh: bf16 / f16
// mma.sync, d_qk and d_v multiples of 16 <= 128) against the CPU reference, on bench-1gpu's
// head sizes (d_qk = 96, d_v = 64) with GQA (H = 4 query heads in G = 2 groups), small B and
// T not a multiple of 64 (ragged last query and key tiles):
//   t200_*  B = 2, T = 200: sliding window 100 (the window starts mid-tile), global causal and
//           non-causal forward; window and global causal backward.
//   t257_*  B = 1, T = 257 (a last tile of one row): window 70 and global causal, forward and
//           backward; the forward also with an f32 output, which takes the CUDA-core path (an
//           f32 result would expose the tensor-core path's bf16 P: 1.1e-3 rel L2 on an H200).
//   h_*     f16, B = 1, H = 2, G = 1, T = 77, d_qk = d_v = 32: causal forward and backward.
//   u_*     bf16, T = 130, q / do at a 2-byte offset and v at an 8-byte offset: not 16-byte
//           aligned, so the kernels load tiles with plain loads instead of cp.async.
//   s*_*    attention_lse / attention_grad_lse (the forward's log-sum-exp saved for the
//           backward): s200 window 100 and s257 global causal (bf16), sh (f16), and sf with an
//           f32 o and f32 gradients from bf16 inputs, which take the CUDA-core kernels (the
//           backward then recomputes the statistics instead of reading them).
// Every other launch takes tensorCores = 1 (fusionc --dump-kernels-to shows the branch; the launch's
// last argument is 1). Inputs come from init_param (normal) cast to bf16 / f16; the arena is
// persistent, so every result keeps its bytes for the CPU / GPU comparison.
// GPU check: fusionc examples/kernels/attention_tc.mlir --target=cuda -o attention_tc.fplan &&
//            fusion-run attention_tc.fplan --backend cuda --check-against-cpu
module {
  fplan.arena @act persistent size(11170560)
  fplan.buffer @t200_q_src : tensor<2x4x200x96xf32> in @act at 0
  fplan.buffer @t200_q : tensor<2x4x200x96xbf16> in @act at 614400
  fplan.buffer @t200_k_src : tensor<2x2x200x96xf32> in @act at 921600
  fplan.buffer @t200_k : tensor<2x2x200x96xbf16> in @act at 1228800
  fplan.buffer @t200_v_src : tensor<2x2x200x64xf32> in @act at 1382400
  fplan.buffer @t200_v : tensor<2x2x200x64xbf16> in @act at 1587200
  fplan.buffer @t200_do_src : tensor<2x4x200x64xf32> in @act at 1689600
  fplan.buffer @t200_do : tensor<2x4x200x64xbf16> in @act at 2099200
  fplan.buffer @t200_o_win : tensor<2x4x200x64xbf16> in @act at 2304000
  fplan.buffer @t200_o_causal : tensor<2x4x200x64xbf16> in @act at 2508800
  fplan.buffer @t200_o_full : tensor<2x4x200x64xbf16> in @act at 2713600
  fplan.buffer @t200_dq_win : tensor<2x4x200x96xbf16> in @act at 2918400
  fplan.buffer @t200_dk_win : tensor<2x2x200x96xbf16> in @act at 3225600
  fplan.buffer @t200_dv_win : tensor<2x2x200x64xbf16> in @act at 3379200
  fplan.buffer @t200_dq_causal : tensor<2x4x200x96xbf16> in @act at 3481600
  fplan.buffer @t200_dk_causal : tensor<2x2x200x96xbf16> in @act at 3788800
  fplan.buffer @t200_dv_causal : tensor<2x2x200x64xbf16> in @act at 3942400
  fplan.buffer @t257_q_src : tensor<1x4x257x96xf32> in @act at 4044800
  fplan.buffer @t257_q : tensor<1x4x257x96xbf16> in @act at 4439552
  fplan.buffer @t257_k_src : tensor<1x2x257x96xf32> in @act at 4636928
  fplan.buffer @t257_k : tensor<1x2x257x96xbf16> in @act at 4834304
  fplan.buffer @t257_v_src : tensor<1x2x257x64xf32> in @act at 4933120
  fplan.buffer @t257_v : tensor<1x2x257x64xbf16> in @act at 5064704
  fplan.buffer @t257_do_src : tensor<1x4x257x64xf32> in @act at 5130496
  fplan.buffer @t257_do : tensor<1x4x257x64xbf16> in @act at 5393664
  fplan.buffer @t257_o_win : tensor<1x4x257x64xbf16> in @act at 5525248
  fplan.buffer @t257_o_causal : tensor<1x4x257x64xbf16> in @act at 5656832
  fplan.buffer @t257_dq_win : tensor<1x4x257x96xbf16> in @act at 5788416
  fplan.buffer @t257_dk_win : tensor<1x2x257x96xbf16> in @act at 5985792
  fplan.buffer @t257_dv_win : tensor<1x2x257x64xbf16> in @act at 6084608
  fplan.buffer @t257_dq_causal : tensor<1x4x257x96xbf16> in @act at 6150400
  fplan.buffer @t257_dk_causal : tensor<1x2x257x96xbf16> in @act at 6347776
  fplan.buffer @t257_dv_causal : tensor<1x2x257x64xbf16> in @act at 6446592
  fplan.buffer @t257f_q_src : tensor<1x4x257x96xf32> in @act at 6512384
  fplan.buffer @t257f_q : tensor<1x4x257x96xbf16> in @act at 6907136
  fplan.buffer @t257f_k_src : tensor<1x2x257x96xf32> in @act at 7104512
  fplan.buffer @t257f_k : tensor<1x2x257x96xbf16> in @act at 7301888
  fplan.buffer @t257f_v_src : tensor<1x2x257x64xf32> in @act at 7400704
  fplan.buffer @t257f_v : tensor<1x2x257x64xbf16> in @act at 7532288
  fplan.buffer @t257f_do_src : tensor<1x4x257x64xf32> in @act at 7598080
  fplan.buffer @t257f_do : tensor<1x4x257x64xbf16> in @act at 7861248
  fplan.buffer @t257f_o_win : tensor<1x4x257x64xf32> in @act at 7992832
  fplan.buffer @h_q_src : tensor<1x2x77x32xf32> in @act at 8256000
  fplan.buffer @h_q : tensor<1x2x77x32xf16> in @act at 8275712
  fplan.buffer @h_k_src : tensor<1x1x77x32xf32> in @act at 8285696
  fplan.buffer @h_k : tensor<1x1x77x32xf16> in @act at 8295680
  fplan.buffer @h_v_src : tensor<1x1x77x32xf32> in @act at 8300800
  fplan.buffer @h_v : tensor<1x1x77x32xf16> in @act at 8310784
  fplan.buffer @h_do_src : tensor<1x2x77x32xf32> in @act at 8315904
  fplan.buffer @h_do : tensor<1x2x77x32xf16> in @act at 8335616
  fplan.buffer @h_o_causal : tensor<1x2x77x32xf16> in @act at 8345600
  fplan.buffer @h_dq_causal : tensor<1x2x77x32xf16> in @act at 8355584
  fplan.buffer @h_dk_causal : tensor<1x1x77x32xf16> in @act at 8365568
  fplan.buffer @h_dv_causal : tensor<1x1x77x32xf16> in @act at 8370688
  fplan.buffer @u_q_src : tensor<1x2x130x96xf32> in @act at 8375808
  fplan.buffer @u_q : tensor<1x2x130x96xbf16> in @act at 8475650
  fplan.buffer @u_k_src : tensor<1x1x130x96xf32> in @act at 8525824
  fplan.buffer @u_k : tensor<1x1x130x96xbf16> in @act at 8575744
  fplan.buffer @u_v_src : tensor<1x1x130x64xf32> in @act at 8600832
  fplan.buffer @u_v : tensor<1x1x130x64xbf16> in @act at 8634120
  fplan.buffer @u_do_src : tensor<1x2x130x64xf32> in @act at 8651008
  fplan.buffer @u_do : tensor<1x2x130x64xbf16> in @act at 8717570
  fplan.buffer @u_o_win : tensor<1x2x130x64xbf16> in @act at 8751104
  fplan.buffer @u_dq_win : tensor<1x2x130x96xbf16> in @act at 8784384
  fplan.buffer @u_dk_win : tensor<1x1x130x96xbf16> in @act at 8834304
  fplan.buffer @u_dv_win : tensor<1x1x130x64xbf16> in @act at 8859392
  fplan.buffer @s200_o : tensor<2x4x200x64xbf16> in @act at 8876032
  fplan.buffer @s200_lse : tensor<2x4x200xf32> in @act at 9080832
  fplan.buffer @s200_dq : tensor<2x4x200x96xbf16> in @act at 9087232
  fplan.buffer @s200_dk : tensor<2x2x200x96xbf16> in @act at 9394432
  fplan.buffer @s200_dv : tensor<2x2x200x64xbf16> in @act at 9548032
  fplan.buffer @s257_o : tensor<1x4x257x64xbf16> in @act at 9650432
  fplan.buffer @s257_lse : tensor<1x4x257xf32> in @act at 9782016
  fplan.buffer @s257_dq : tensor<1x4x257x96xbf16> in @act at 9786368
  fplan.buffer @s257_dk : tensor<1x2x257x96xbf16> in @act at 9983744
  fplan.buffer @s257_dv : tensor<1x2x257x64xbf16> in @act at 10082560
  fplan.buffer @sh_o : tensor<1x2x77x32xf16> in @act at 10148352
  fplan.buffer @sh_lse : tensor<1x2x77xf32> in @act at 10158336
  fplan.buffer @sh_dq : tensor<1x2x77x32xf16> in @act at 10159104
  fplan.buffer @sh_dk : tensor<1x1x77x32xf16> in @act at 10169088
  fplan.buffer @sh_dv : tensor<1x1x77x32xf16> in @act at 10174208
  fplan.buffer @sf_o : tensor<1x4x257x64xf32> in @act at 10179328
  fplan.buffer @sf_lse : tensor<1x4x257xf32> in @act at 10442496
  fplan.buffer @sf_dq : tensor<1x4x257x96xf32> in @act at 10446848
  fplan.buffer @sf_dk : tensor<1x2x257x96xf32> in @act at 10841600
  fplan.buffer @sf_dv : tensor<1x2x257x64xf32> in @act at 11038976
  fplan.kernel @init_t200_q_src kind "init_param" params {param_index = 0 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_t200_k_src kind "init_param" params {param_index = 1 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_t200_v_src kind "init_param" params {param_index = 2 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_t200_do_src kind "init_param" params {param_index = 3 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_t257_q_src kind "init_param" params {param_index = 4 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_t257_k_src kind "init_param" params {param_index = 5 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_t257_v_src kind "init_param" params {param_index = 6 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_t257_do_src kind "init_param" params {param_index = 7 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_t257f_q_src kind "init_param" params {param_index = 8 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_t257f_k_src kind "init_param" params {param_index = 9 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_t257f_v_src kind "init_param" params {param_index = 10 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_t257f_do_src kind "init_param" params {param_index = 11 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_h_q_src kind "init_param" params {param_index = 12 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_h_k_src kind "init_param" params {param_index = 13 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_h_v_src kind "init_param" params {param_index = 14 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_h_do_src kind "init_param" params {param_index = 15 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_u_q_src kind "init_param" params {param_index = 16 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_u_k_src kind "init_param" params {param_index = 17 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_u_v_src kind "init_param" params {param_index = 18 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @init_u_do_src kind "init_param" params {param_index = 19 : i64, rule = "normal", seed = 4321 : i64, std = 1.0 : f64}
  fplan.kernel @to_bf16 kind "cast"
  fplan.kernel @to_f16 kind "cast"
  fplan.kernel @attn_win100 kind "attention" params {causal, scale = 0.102062076 : f32, window = 100 : i64}
  fplan.kernel @attn_causal kind "attention" params {causal, scale = 0.102062076 : f32, window = 0 : i64}
  fplan.kernel @attn_full kind "attention" params {scale = 0.102062076 : f32}
  fplan.kernel @grad_win100 kind "attention_grad" params {causal, scale = 0.102062076 : f32, window = 100 : i64}
  fplan.kernel @grad_causal kind "attention_grad" params {causal, scale = 0.102062076 : f32, window = 0 : i64}
  fplan.kernel @attn_win70 kind "attention" params {causal, scale = 0.102062076 : f32, window = 70 : i64}
  fplan.kernel @grad_win70 kind "attention_grad" params {causal, scale = 0.102062076 : f32, window = 70 : i64}
  fplan.kernel @attn_win70_f32 kind "attention" params {causal, scale = 0.102062076 : f32, window = 70 : i64}
  fplan.kernel @attn_h kind "attention" params {causal, scale = 0.176776695 : f32, window = 0 : i64}
  fplan.kernel @grad_h kind "attention_grad" params {causal, scale = 0.176776695 : f32, window = 0 : i64}
  fplan.kernel @attn_u kind "attention" params {causal, scale = 0.102062076 : f32, window = 48 : i64}
  fplan.kernel @grad_u kind "attention_grad" params {causal, scale = 0.102062076 : f32, window = 48 : i64}
  fplan.kernel @attnlse_win100 kind "attention_lse" params {causal, scale = 0.102062076 : f32, window = 100 : i64}
  fplan.kernel @gradlse_win100 kind "attention_grad_lse" params {causal, scale = 0.102062076 : f32, window = 100 : i64}
  fplan.kernel @attnlse_causal kind "attention_lse" params {causal, scale = 0.102062076 : f32, window = 0 : i64}
  fplan.kernel @gradlse_causal kind "attention_grad_lse" params {causal, scale = 0.102062076 : f32, window = 0 : i64}
  fplan.kernel @attnlse_h kind "attention_lse" params {causal, scale = 0.176776695 : f32, window = 0 : i64}
  fplan.kernel @gradlse_h kind "attention_grad_lse" params {causal, scale = 0.176776695 : f32, window = 0 : i64}
  fplan.kernel @attnlse_win70_f32 kind "attention_lse" params {causal, scale = 0.102062076 : f32, window = 70 : i64}
  fplan.kernel @gradlse_win70_f32 kind "attention_grad_lse" params {causal, scale = 0.102062076 : f32, window = 70 : i64}
  fplan.program @main {
    fplan.launch @init_t200_q_src ins [] outs [@t200_q_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_t200_k_src ins [] outs [@t200_k_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_t200_v_src ins [] outs [@t200_v_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_t200_do_src ins [] outs [@t200_do_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_t257_q_src ins [] outs [@t257_q_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_t257_k_src ins [] outs [@t257_k_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_t257_v_src ins [] outs [@t257_v_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_t257_do_src ins [] outs [@t257_do_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_t257f_q_src ins [] outs [@t257f_q_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_t257f_k_src ins [] outs [@t257f_k_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_t257f_v_src ins [] outs [@t257f_v_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_t257f_do_src ins [] outs [@t257f_do_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_h_q_src ins [] outs [@h_q_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_h_k_src ins [] outs [@h_k_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_h_v_src ins [] outs [@h_v_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_h_do_src ins [] outs [@h_do_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_u_q_src ins [] outs [@u_q_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_u_k_src ins [] outs [@u_k_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_u_v_src ins [] outs [@u_v_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @init_u_do_src ins [] outs [@u_do_src] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@t200_q_src] outs [@t200_q] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@t200_k_src] outs [@t200_k] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@t200_v_src] outs [@t200_v] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@t200_do_src] outs [@t200_do] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@t257_q_src] outs [@t257_q] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@t257_k_src] outs [@t257_k] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@t257_v_src] outs [@t257_v] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@t257_do_src] outs [@t257_do] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@t257f_q_src] outs [@t257f_q] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@t257f_k_src] outs [@t257f_k] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@t257f_v_src] outs [@t257f_v] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@t257f_do_src] outs [@t257f_do] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_f16 ins [@h_q_src] outs [@h_q] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_f16 ins [@h_k_src] outs [@h_k] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_f16 ins [@h_v_src] outs [@h_v] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_f16 ins [@h_do_src] outs [@h_do] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@u_q_src] outs [@u_q] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@u_k_src] outs [@u_k] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@u_v_src] outs [@u_v] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @to_bf16 ins [@u_do_src] outs [@u_do] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_win100 ins [@t200_q, @t200_k, @t200_v] outs [@t200_o_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_causal ins [@t200_q, @t200_k, @t200_v] outs [@t200_o_causal] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_full ins [@t200_q, @t200_k, @t200_v] outs [@t200_o_full] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad_win100 ins [@t200_q, @t200_k, @t200_v, @t200_do] outs [@t200_dq_win, @t200_dk_win, @t200_dv_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad_causal ins [@t200_q, @t200_k, @t200_v, @t200_do] outs [@t200_dq_causal, @t200_dk_causal, @t200_dv_causal] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_win70 ins [@t257_q, @t257_k, @t257_v] outs [@t257_o_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_causal ins [@t257_q, @t257_k, @t257_v] outs [@t257_o_causal] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad_win70 ins [@t257_q, @t257_k, @t257_v, @t257_do] outs [@t257_dq_win, @t257_dk_win, @t257_dv_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad_causal ins [@t257_q, @t257_k, @t257_v, @t257_do] outs [@t257_dq_causal, @t257_dk_causal, @t257_dv_causal] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_win70_f32 ins [@t257f_q, @t257f_k, @t257f_v] outs [@t257f_o_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_h ins [@h_q, @h_k, @h_v] outs [@h_o_causal] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad_h ins [@h_q, @h_k, @h_v, @h_do] outs [@h_dq_causal, @h_dk_causal, @h_dv_causal] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attn_u ins [@u_q, @u_k, @u_v] outs [@u_o_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @grad_u ins [@u_q, @u_k, @u_v, @u_do] outs [@u_dq_win, @u_dk_win, @u_dv_win] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attnlse_win100 ins [@t200_q, @t200_k, @t200_v] outs [@s200_o, @s200_lse] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @gradlse_win100 ins [@t200_q, @t200_k, @t200_v, @t200_do, @s200_o, @s200_lse] outs [@s200_dq, @s200_dk, @s200_dv] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attnlse_causal ins [@t257_q, @t257_k, @t257_v] outs [@s257_o, @s257_lse] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @gradlse_causal ins [@t257_q, @t257_k, @t257_v, @t257_do, @s257_o, @s257_lse] outs [@s257_dq, @s257_dk, @s257_dv] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attnlse_h ins [@h_q, @h_k, @h_v] outs [@sh_o, @sh_lse] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @gradlse_h ins [@h_q, @h_k, @h_v, @h_do, @sh_o, @sh_lse] outs [@sh_dq, @sh_dk, @sh_dv] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @attnlse_win70_f32 ins [@t257f_q, @t257f_k, @t257f_v] outs [@sf_o, @sf_lse] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @gradlse_win70_f32 ins [@t257f_q, @t257f_k, @t257f_v, @t257f_do, @sf_o, @sf_lse] outs [@sf_dq, @sf_dk, @sf_dv] grid [1, 1, 1] block [1, 1, 1]
  }
}
