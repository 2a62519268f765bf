// RUN: fusion-opt %s --split-input-file --fplan-codegen-cuda --verify-diagnostics | FileCheck %s

// moe_route: one warp per token (8 per 256-thread block), the attributes baked into the
// call (route_scale as the f32 attribute's double); moe_route_grad: the same geometry, typed
// by its buffers (bf16 dweights, i64 indices), args (tokens, experts, slots).
// CHECK-LABEL: module @route
//       CHECK:   fplan.kernel @route kind "moe_route" {{.*}}source = "{{.*}}#include \22fusion/moe.cuh\22{{.*}}extern \22C\22 __global__ void __launch_bounds__(256) fusion_moe_route(const float* logits, const float* bias, float* weights, int32_t* indices, float* scores, int64_t n, int64_t e) {\0A  fk::moe::moeRoute(logits, bias, weights, indices, scores, n, e, 2, 4, 2, 2, 2.5);{{.*}}"}
//       CHECK:   fplan.kernel @route_grad kind "moe_route_grad" {{.*}}source = "{{.*}}fusion_moe_route_grad(const float* scores, const int64_t* indices, const __nv_bfloat16* dweights, float* dlogits, int64_t n, int64_t e, int64_t k) {\0A  fk::moe::moeRouteGrad(scores, indices, dweights, dlogits, n, e, k, 2.5);{{.*}}"}
//       CHECK:   fplan.launch @route ins [@logits, @bias] outs [@w, @idx, @s] grid [13, 1, 1] block [256, 1, 1] args [100, 16]
//       CHECK:   fplan.launch @route_grad ins [@s, @idx64, @dw] outs [@dl] grid [13, 1, 1] block [256, 1, 1] args [100, 16, 2]
module @route {
  fplan.arena @a size(23808)
  fplan.buffer @logits : tensor<100x16xf32> in @a at 0
  fplan.buffer @bias : tensor<16xf32> in @a at 6400
  fplan.buffer @w : tensor<100x2xf32> in @a at 6656
  fplan.buffer @idx : tensor<100x2xi32> in @a at 7680
  fplan.buffer @s : tensor<100x16xf32> in @a at 8704
  fplan.buffer @idx64 : tensor<100x2xi64> in @a at 15104
  fplan.buffer @dw : tensor<100x2xbf16> in @a at 16896
  fplan.buffer @dl : tensor<100x16xf32> in @a at 17408
  fplan.kernel @route kind "moe_route" params {group_topk = 2 : i64, n_groups = 4 : i64, n_limited_groups = 2 : i64, route_scale = 2.5 : f32, top_k = 2 : i64}
  fplan.kernel @route_grad kind "moe_route_grad" params {route_scale = 2.5 : f32}
  fplan.program @main {
    fplan.launch @route ins [@logits, @bias] outs [@w, @idx, @s] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @route_grad ins [@s, @idx64, @dw] outs [@dl] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// moe_dispatch: 256 pairs per block (600 pairs: 3 blocks), (2 + 8)·E ints of dynamic shared
// memory, args (N, D, K, E). The gather kinds (moe_combine, moe_combine_grad,
// moe_dispatch_grad): 128 tokens per 512-thread block, 128·K ints of shared memory, args
// (N, K, D).
// CHECK-LABEL: module @dispatch_combine
//       CHECK:   fplan.kernel @dispatch kind "moe_dispatch" {{.*}}source = "{{.*}}fusion_moe_dispatch(const __nv_bfloat16* x, const int64_t* indices, __nv_bfloat16* xs, int32_t* group_sizes, int32_t* perm, int64_t n, int64_t d, int64_t k, int64_t e) {\0A  fk::moe::moeDispatch(x, indices, xs, group_sizes, perm, n, d, k, e);{{.*}}"}
//       CHECK:   fplan.kernel @combine kind "moe_combine" {{.*}}source = "{{.*}}__launch_bounds__(512) fusion_moe_combine(const __nv_bfloat16* ys, const float* weights, const int32_t* perm, __nv_bfloat16* y, int64_t n, int64_t k, int64_t d) {\0A  fk::moe::moeCombine(ys, weights, perm, y, n, k, d);{{.*}}"}
//       CHECK:   fplan.kernel @combine_grad kind "moe_combine_grad" {{.*}}source = "{{.*}}fusion_moe_combine_grad(const __nv_bfloat16* ys, const float* weights, const int32_t* perm, const __nv_bfloat16* dy, __nv_bfloat16* dys, float* dweights, int64_t n, int64_t k, int64_t d) {\0A  fk::moe::moeCombineGrad(ys, weights, perm, dy, dys, dweights, n, k, d);{{.*}}"}
//       CHECK:   fplan.kernel @dispatch_grad kind "moe_dispatch_grad" {{.*}}source = "{{.*}}fusion_moe_dispatch_grad(const __nv_bfloat16* dxs, const int32_t* perm, __nv_bfloat16* dx, int64_t n, int64_t k, int64_t d) {\0A  fk::moe::moeDispatchGrad(dxs, perm, dx, n, k, d);{{.*}}"}
//       CHECK:   fplan.launch @dispatch ins [@x, @idx] outs [@xs, @sizes, @perm] grid [3, 1, 1] block [256, 1, 1] smem 320 args [300, 72, 2, 8]
//       CHECK:   fplan.launch @combine ins [@xs, @w, @perm] outs [@y] grid [3, 1, 1] block [512, 1, 1] smem 1024 args [300, 2, 72]
//       CHECK:   fplan.launch @combine_grad ins [@xs, @w, @perm, @y] outs [@dys, @dw] grid [3, 1, 1] block [512, 1, 1] smem 1024 args [300, 2, 72]
//       CHECK:   fplan.launch @dispatch_grad ins [@dys, @perm] outs [@dx] grid [3, 1, 1] block [512, 1, 1] smem 1024 args [300, 2, 72]
module @dispatch_combine {
  fplan.arena @a size(315648)
  fplan.buffer @x : tensor<300x72xbf16> in @a at 0
  fplan.buffer @idx : tensor<300x2xi64> in @a at 43264
  fplan.buffer @xs : tensor<600x72xbf16> in @a at 48128
  fplan.buffer @sizes : tensor<8xi32> in @a at 134656
  fplan.buffer @perm : tensor<600xi32> in @a at 134912
  fplan.buffer @w : tensor<300x2xf32> in @a at 137472
  fplan.buffer @y : tensor<300x72xbf16> in @a at 140032
  fplan.buffer @dys : tensor<600x72xbf16> in @a at 183296
  fplan.buffer @dw : tensor<300x2xf32> in @a at 269824
  fplan.buffer @dx : tensor<300x72xbf16> in @a at 272384
  fplan.kernel @dispatch kind "moe_dispatch" params {num_experts = 8 : i64}
  fplan.kernel @combine kind "moe_combine"
  fplan.kernel @combine_grad kind "moe_combine_grad"
  fplan.kernel @dispatch_grad kind "moe_dispatch_grad"
  fplan.program @main {
    fplan.launch @dispatch ins [@x, @idx] outs [@xs, @sizes, @perm] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @combine ins [@xs, @w, @perm] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @combine_grad ins [@xs, @w, @perm, @y] outs [@dys, @dw] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @dispatch_grad ins [@dys, @perm] outs [@dx] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// grouped_matmul: bf16 / f16 operands take the tensor-core tiles (128 x 128: the mma.sync
// tile with its 3-slot cp.async pipeline of 64-wide k-tiles, 98304 bytes of dynamic shared
// memory, two blocks per multiprocessor; the kernel falls back to WMMA when D_in or D_out is
// no multiple of 8),
// f32 ones the CUDA-core tiles (64 x 64, 28672 bytes); the row-tile grid is an upper bound,
// ceil(M/BM) + E + 1, and the columns are ceil(D_out/BN). grouped_matmul_grad: a 1-D grid of
// E·ceil(D_out/BM)·ceil(D_in/BN) dW blocks and (ceil(M/BM) + E + 1)·ceil(D_in/BN) dxs blocks,
// each product configured by its own operands (f32 xs: CUDA cores for dW; bf16 dout and w:
// tensor cores for dxs), shared memory for the larger.
// CHECK-LABEL: module @grouped
//       CHECK:   fplan.kernel @gmm kind "grouped_matmul" {{.*}}source = "{{.*}}__launch_bounds__(256, 2) fusion_grouped_matmul(const __nv_bfloat16* x, const __nv_bfloat16* w, const int32_t* group_sizes, __nv_bfloat16* y, int64_t m, int64_t din, int64_t dout, int64_t e) {\0A  fk::moe::groupedMatmul<fk::moe::GemmMma>(x, w, group_sizes, y, m, din, dout, e);{{.*}}"}
//       CHECK:   fplan.kernel @gmm_f32 kind "grouped_matmul" {{.*}}__launch_bounds__(256) fusion_grouped_matmul({{.*}}fk::moe::groupedMatmul<fk::moe::GemmSimt>(x, w, group_sizes, y, m, din, dout, e);{{.*}}"}
//       CHECK:   fplan.kernel @gmm_f16 kind "grouped_matmul" {{.*}}__launch_bounds__(256, 2) fusion_grouped_matmul(const __half* x, const __half* w, const int64_t* group_sizes, __half* y, {{.*}}fk::moe::groupedMatmul<fk::moe::GemmMma>(x, w, group_sizes, y, m, din, dout, e);{{.*}}"}
//       CHECK:   fplan.kernel @gmm_grad kind "grouped_matmul_grad" {{.*}}source = "{{.*}}__launch_bounds__(256, 2) fusion_grouped_matmul_grad(const __nv_bfloat16* xs, const __nv_bfloat16* w, const int32_t* group_sizes, const __nv_bfloat16* dout, __nv_bfloat16* dxs, float* dw, int64_t m, int64_t din, int64_t d_out, int64_t e) {\0A  fk::moe::groupedMatmulGrad<fk::moe::GemmMma, fk::moe::GemmMma>(xs, w, group_sizes, dout, dxs, dw, m, din, d_out, e);{{.*}}"}
//       CHECK:   fplan.kernel @gmm_grad_mixed kind "grouped_matmul_grad" {{.*}}fk::moe::groupedMatmulGrad<fk::moe::GemmSimt, fk::moe::GemmMma>({{.*}}"}
//       CHECK:   fplan.launch @gmm ins [@x, @w, @sizes] outs [@y] grid [17, 2, 1] block [256, 1, 1] smem 98304 args [1000, 72, 136, 8]
//       CHECK:   fplan.launch @gmm_f32 ins [@x32, @w32, @sizes] outs [@y32] grid [25, 3, 1] block [256, 1, 1] smem 28672 args [1000, 72, 136, 8]
//       CHECK:   fplan.launch @gmm_f16 ins [@x16, @w16, @sizes64] outs [@y16] grid [17, 2, 1] block [256, 1, 1] smem 98304 args [1000, 72, 136, 8]
//       CHECK:   fplan.launch @gmm_grad ins [@x, @w, @sizes, @y] outs [@dx, @dw] grid [33, 1, 1] block [256, 1, 1] smem 98304 args [1000, 72, 136, 8]
//       CHECK:   fplan.launch @gmm_grad_mixed ins [@x32, @w, @sizes, @y] outs [@dx32, @dw] grid [65, 1, 1] block [256, 1, 1] smem 98304 args [1000, 72, 136, 8]
module @grouped {
  fplan.arena @a size(2464256)
  fplan.buffer @x : tensor<1000x72xbf16> in @a at 0
  fplan.buffer @w : tensor<8x136x72xbf16> in @a at 144128
  fplan.buffer @sizes : tensor<8xi32> in @a at 300800
  fplan.buffer @y : tensor<1000x136xbf16> in @a at 301056
  fplan.buffer @x32 : tensor<1000x72xf32> in @a at 573184
  fplan.buffer @w32 : tensor<8x136x72xf32> in @a at 861184
  fplan.buffer @y32 : tensor<1000x136xf32> in @a at 1174528
  fplan.buffer @dx : tensor<1000x72xbf16> in @a at 1718528
  fplan.buffer @dx32 : tensor<1000x72xf32> in @a at 1862656
  fplan.buffer @dw : tensor<8x136x72xf32> in @a at 2150656
  fplan.buffer @x16 : tensor<1000x72xf16> in @a at 0
  fplan.buffer @w16 : tensor<8x136x72xf16> in @a at 144128
  fplan.buffer @sizes64 : tensor<8xi64> in @a at 2464000
  fplan.buffer @y16 : tensor<1000x136xf16> in @a at 301056
  fplan.kernel @gmm kind "grouped_matmul"
  fplan.kernel @gmm_f32 kind "grouped_matmul"
  fplan.kernel @gmm_f16 kind "grouped_matmul"
  fplan.kernel @gmm_grad kind "grouped_matmul_grad"
  fplan.kernel @gmm_grad_mixed kind "grouped_matmul_grad"
  fplan.program @main {
    fplan.launch @gmm ins [@x, @w, @sizes] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @gmm_f32 ins [@x32, @w32, @sizes] outs [@y32] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @gmm_f16 ins [@x16, @w16, @sizes64] outs [@y16] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @gmm_grad ins [@x, @w, @sizes, @y] outs [@dx, @dw] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @gmm_grad_mixed ins [@x32, @w, @sizes, @y] outs [@dx32, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The benchmark's shapes (examples/kernels/moe_bench.mlir): M = 65536 rows, E = 16, the up
// projection (D_in, D_out) = (1024, 1536): ceil(65536/128) + 16 + 1 = 529 row tiles × 12
// column tiles; the gradient: 16·12·8 = 1536 dW blocks + 529·8 dxs blocks.
// CHECK-LABEL: module @grouped_bench
//       CHECK:   fplan.launch @gmm ins [@x, @w, @sizes] outs [@h] grid [529, 12, 1] block [256, 1, 1] smem 98304 args [65536, 1024, 1536, 16]
//       CHECK:   fplan.launch @gmm_grad ins [@x, @w, @sizes, @h] outs [@dx, @dw] grid [5768, 1, 1] block [256, 1, 1] smem 98304 args [65536, 1024, 1536, 16]
module @grouped_bench {
  fplan.arena @a size(620757248)
  fplan.buffer @x : tensor<65536x1024xbf16> in @a at 0
  fplan.buffer @w : tensor<16x1536x1024xbf16> in @a at 134217728
  fplan.buffer @sizes : tensor<16xi32> in @a at 184549376
  fplan.buffer @h : tensor<65536x1536xbf16> in @a at 184549632
  fplan.buffer @dx : tensor<65536x1024xbf16> in @a at 385876224
  fplan.buffer @dw : tensor<16x1536x1024xf32> in @a at 520093952
  fplan.kernel @gmm kind "grouped_matmul"
  fplan.kernel @gmm_grad kind "grouped_matmul_grad"
  fplan.program @main {
    fplan.launch @gmm ins [@x, @w, @sizes] outs [@h] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @gmm_grad ins [@x, @w, @sizes, @h] outs [@dx, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// moe_balance_loss: (N/seq_len)·ceil(seq_len/256) blocks of 256 threads (2 rows of 2 chunks
// here), (256 + max(E, 256)) doubles + E ints of shared memory; one 1024-thread block with
// (1024 + max(E, 1024)) doubles + E ints when the rows·E exceed the 2^16 scratch partials
// (8192 rows of 16 experts); the gradient: 256 tokens per block, (N/seq_len)·ceil(seq_len/256)
// blocks, E doubles + E ints; args (N, E, K, seq_len).
// CHECK-LABEL: module @balance
//       CHECK:   fplan.kernel @loss kind "moe_balance_loss" {{.*}}source = "{{.*}}__launch_bounds__(1024) fusion_moe_balance_loss(const float* scores, const int32_t* indices, float* loss, int64_t n, int64_t e, int64_t k, int64_t seq_len) {\0A  fk::moe::moeBalanceLoss(scores, indices, loss, n, e, k, seq_len);{{.*}}"}
//       CHECK:   fplan.kernel @loss_grad kind "moe_balance_loss_grad" {{.*}}source = "{{.*}}fusion_moe_balance_loss_grad(const float* scores, const int32_t* indices, const float* dloss, float* dscores, int64_t n, int64_t e, int64_t k, int64_t seq_len) {\0A  fk::moe::moeBalanceLossGrad(scores, indices, dloss, dscores, n, e, k, seq_len);{{.*}}"}
//       CHECK:   fplan.launch @loss ins [@s, @idx] outs [@l] grid [4, 1, 1] block [256, 1, 1] smem 4160 args [600, 16, 2, 300]
//       CHECK:   fplan.launch @loss_grad ins [@s, @idx, @l] outs [@ds] grid [4, 1, 1] block [256, 1, 1] smem 192 args [600, 16, 2, 300]
//       CHECK:   fplan.launch @loss_rows ins [@sb, @idxb] outs [@l] grid [1, 1, 1] block [1024, 1, 1] smem 16448 args [8192, 16, 2, 1]
module @balance {
  fplan.arena @a size(720896)
  fplan.buffer @s : tensor<600x16xf32> in @a at 0
  fplan.buffer @idx : tensor<600x2xi32> in @a at 38400
  fplan.buffer @l : tensor<f32> in @a at 43264
  fplan.buffer @ds : tensor<600x16xf32> in @a at 43520
  fplan.buffer @sb : tensor<8192x16xf32> in @a at 81920
  fplan.buffer @idxb : tensor<8192x2xi32> in @a at 606208
  fplan.kernel @loss kind "moe_balance_loss" params {seq_len = 300 : i64}
  fplan.kernel @loss_grad kind "moe_balance_loss_grad" params {seq_len = 300 : i64}
  fplan.kernel @loss_rows kind "moe_balance_loss" params {seq_len = 1 : i64}
  fplan.program @main {
    fplan.launch @loss ins [@s, @idx] outs [@l] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @loss_grad ins [@s, @idx, @l] outs [@ds] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @loss_rows ins [@sb, @idxb] outs [@l] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// moe_bias_update: one block, in place; every, speed, upper and lower (f32 attributes, as
// doubles) baked into the call.
// CHECK-LABEL: module @bias_update
//       CHECK:   fplan.kernel @upd kind "moe_bias_update" {{.*}}source = "{{.*}}fusion_moe_bias_update(const float* counts, const float* ctl, const float* bias, const float* window, float* bias_out, float* window_out, int64_t e) {\0A  fk::moe::moeBiasUpdate(counts, ctl, bias, window, bias_out, window_out, e, 10, 0.0010000000474974513, 0.10000000149011612, 0.20000000298023224);{{.*}}"}
//       CHECK:   fplan.launch @upd ins [@counts, @ctl, @b, @win] outs [@b, @win] grid [1, 1, 1] block [256, 1, 1] args [16]
module @bias_update {
  fplan.arena @a size(1024)
  fplan.buffer @counts : tensor<16xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 256
  fplan.buffer @b : tensor<16xf32> in @a at 512
  fplan.buffer @win : tensor<16xf32> in @a at 768
  fplan.kernel @upd kind "moe_bias_update" params {every = 10 : i64, lower = 2.000000e-01 : f32, speed = 1.000000e-03 : f32, upper = 1.000000e-01 : f32}
  fplan.program @main {
    fplan.launch @upd ins [@counts, @ctl, @b, @win] outs [@b, @win] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The router's logits are f32, like the CPU kernel's.
module @route_bf16_logits {
  fplan.arena @a size(2048)
  fplan.buffer @logits : tensor<10x16xbf16> in @a at 0
  fplan.buffer @bias : tensor<16xf32> in @a at 512
  fplan.buffer @w : tensor<10x2xf32> in @a at 768
  fplan.buffer @idx : tensor<10x2xi32> in @a at 1024
  fplan.buffer @s : tensor<10x16xf32> in @a at 1280
  // expected-error @+1 {{kernel @route (kind 'moe_route'): input 0 (logits) must be f32, got bf16}}
  fplan.kernel @route kind "moe_route" params {group_topk = 2 : i64, n_groups = 4 : i64, n_limited_groups = 2 : i64, route_scale = 1.0 : f32, top_k = 2 : i64}
  fplan.program @main {
    fplan.launch @route ins [@logits, @bias] outs [@w, @idx, @s] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// top_k is required.
module @route_no_top_k {
  fplan.arena @a size(2304)
  fplan.buffer @logits : tensor<10x16xf32> in @a at 0
  fplan.buffer @bias : tensor<16xf32> in @a at 768
  fplan.buffer @w : tensor<10x2xf32> in @a at 1024
  fplan.buffer @idx : tensor<10x2xi32> in @a at 1280
  fplan.buffer @s : tensor<10x16xf32> in @a at 1536
  // expected-error @+1 {{kernel @route (kind 'moe_route'): needs the integer attribute 'top_k'}}
  fplan.kernel @route kind "moe_route" params {group_topk = 2 : i64, n_groups = 4 : i64, n_limited_groups = 2 : i64, route_scale = 1.0 : f32}
  fplan.program @main {
    fplan.launch @route ins [@logits, @bias] outs [@w, @idx, @s] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// More kept groups than groups.
module @route_limited_groups {
  fplan.arena @a size(2304)
  fplan.buffer @logits : tensor<10x16xf32> in @a at 0
  fplan.buffer @bias : tensor<16xf32> in @a at 768
  fplan.buffer @w : tensor<10x2xf32> in @a at 1024
  fplan.buffer @idx : tensor<10x2xi32> in @a at 1280
  fplan.buffer @s : tensor<10x16xf32> in @a at 1536
  // expected-error @+1 {{kernel @route (kind 'moe_route'): attribute 'n_limited_groups' = 5 must be in [1, 4]}}
  fplan.kernel @route kind "moe_route" params {group_topk = 2 : i64, n_groups = 4 : i64, n_limited_groups = 5 : i64, route_scale = 1.0 : f32, top_k = 2 : i64}
  fplan.program @main {
    fplan.launch @route ins [@logits, @bias] outs [@w, @idx, @s] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// n_groups must divide the experts, which a launch's shapes give.
module @route_groups_divide {
  fplan.arena @a size(2304)
  fplan.buffer @logits : tensor<10x16xf32> in @a at 0
  fplan.buffer @bias : tensor<16xf32> in @a at 768
  fplan.buffer @w : tensor<10x2xf32> in @a at 1024
  fplan.buffer @idx : tensor<10x2xi32> in @a at 1280
  fplan.buffer @s : tensor<10x16xf32> in @a at 1536
  fplan.kernel @route kind "moe_route" params {group_topk = 2 : i64, n_groups = 3 : i64, n_limited_groups = 2 : i64, route_scale = 1.0 : f32, top_k = 2 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @route (kind 'moe_route'): attribute 'n_groups' = 3 must divide the 16 experts}}
    fplan.launch @route ins [@logits, @bias] outs [@w, @idx, @s] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A warp holds at most 256 experts.
module @route_too_many_experts {
  fplan.arena @a size(25856)
  fplan.buffer @logits : tensor<10x300xf32> in @a at 0
  fplan.buffer @bias : tensor<300xf32> in @a at 12032
  fplan.buffer @w : tensor<10x2xf32> in @a at 13312
  fplan.buffer @idx : tensor<10x2xi32> in @a at 13568
  fplan.buffer @s : tensor<10x300xf32> in @a at 13824
  fplan.kernel @route kind "moe_route" params {group_topk = 1 : i64, n_groups = 1 : i64, n_limited_groups = 1 : i64, route_scale = 1.0 : f32, top_k = 2 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @route (kind 'moe_route'): routes over 300 experts; the kernel holds 1 to 256 (8 per lane of a warp)}}
    fplan.launch @route ins [@logits, @bias] outs [@w, @idx, @s] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// group_sizes and perm are i32.
module @dispatch_f32_sizes {
  fplan.arena @a size(2048)
  fplan.buffer @x : tensor<10x8xf32> in @a at 0
  fplan.buffer @idx : tensor<10x2xi32> in @a at 512
  fplan.buffer @xs : tensor<20x8xf32> in @a at 768
  fplan.buffer @sizes : tensor<4xf32> in @a at 1536
  fplan.buffer @perm : tensor<20xi32> in @a at 1792
  // expected-error @+1 {{kernel @dispatch (kind 'moe_dispatch'): output 1 (group_sizes) must be i32, got f32}}
  fplan.kernel @dispatch kind "moe_dispatch" params {num_experts = 4 : i64}
  fplan.program @main {
    fplan.launch @dispatch ins [@x, @idx] outs [@xs, @sizes, @perm] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// perm has one entry per (token, slot) pair.
module @dispatch_perm_shape {
  fplan.arena @a size(2048)
  fplan.buffer @x : tensor<10x8xf32> in @a at 0
  fplan.buffer @idx : tensor<10x2xi32> in @a at 512
  fplan.buffer @xs : tensor<20x8xf32> in @a at 768
  fplan.buffer @sizes : tensor<4xi32> in @a at 1536
  fplan.buffer @perm : tensor<10xi32> in @a at 1792
  fplan.kernel @dispatch kind "moe_dispatch" params {num_experts = 4 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @dispatch (kind 'moe_dispatch'): output 2 (perm) must have shape [20], got [10]}}
    fplan.launch @dispatch ins [@x, @idx] outs [@xs, @sizes, @perm] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// dweights is f32, like the CPU kernel's.
module @combine_grad_bf16_dweights {
  fplan.arena @a size(2816)
  fplan.buffer @ys : tensor<20x8xf32> in @a at 0
  fplan.buffer @w : tensor<10x2xf32> in @a at 768
  fplan.buffer @perm : tensor<20xi32> in @a at 1024
  fplan.buffer @dy : tensor<10x8xf32> in @a at 1280
  fplan.buffer @dys : tensor<20x8xf32> in @a at 1792
  fplan.buffer @dw : tensor<10x2xbf16> in @a at 2560
  // expected-error @+1 {{kernel @cg (kind 'moe_combine_grad'): output 1 (dweights) must be f32, got bf16}}
  fplan.kernel @cg kind "moe_combine_grad"
  fplan.program @main {
    fplan.launch @cg ins [@ys, @w, @perm, @dy] outs [@dys, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// ys has a row per (token, slot) pair.
module @combine_rows {
  fplan.arena @a size(1792)
  fplan.buffer @ys : tensor<21x8xf32> in @a at 0
  fplan.buffer @w : tensor<10x2xf32> in @a at 768
  fplan.buffer @perm : tensor<20xi32> in @a at 1024
  fplan.buffer @y : tensor<10x8xf32> in @a at 1280
  fplan.kernel @c kind "moe_combine"
  fplan.program @main {
    // expected-error @+1 {{kernel @c (kind 'moe_combine'): input 0 (ys) must have shape [20, 8], got [21, 8]}}
    fplan.launch @c ins [@ys, @w, @perm] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The expert weights are [E, D_out, D_in] with x's D_in.
module @gmm_din {
  fplan.arena @a size(31488)
  fplan.buffer @x : tensor<64x72xbf16> in @a at 0
  fplan.buffer @w : tensor<4x32x70xbf16> in @a at 9216
  fplan.buffer @sizes : tensor<4xi32> in @a at 27136
  fplan.buffer @y : tensor<64x32xbf16> in @a at 27392
  fplan.kernel @gmm kind "grouped_matmul"
  fplan.program @main {
    // expected-error @+1 {{kernel @gmm (kind 'grouped_matmul'): input 1 (w) must be [E, D_out, D_in] with x's D_in = 72, got [4, 32, 70]}}
    fplan.launch @gmm ins [@x, @w, @sizes] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The group table lives in shared memory: at most 512 groups.
module @gmm_groups {
  fplan.arena @a size(82432)
  fplan.buffer @x : tensor<64x8xf32> in @a at 0
  fplan.buffer @w : tensor<600x4x8xf32> in @a at 2048
  fplan.buffer @sizes : tensor<600xi32> in @a at 78848
  fplan.buffer @y : tensor<64x4xf32> in @a at 81408
  fplan.kernel @gmm kind "grouped_matmul"
  fplan.program @main {
    // expected-error @+1 {{kernel @gmm (kind 'grouped_matmul'): 600 groups are more than the 512 the kernel's group table holds}}
    fplan.launch @gmm ins [@x, @w, @sizes] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// dw is f32, like the CPU kernel's.
module @gmm_grad_bf16_dw {
  fplan.arena @a size(6400)
  fplan.buffer @x : tensor<64x8xbf16> in @a at 0
  fplan.buffer @w : tensor<4x16x8xbf16> in @a at 1024
  fplan.buffer @sizes : tensor<4xi32> in @a at 2048
  fplan.buffer @dout : tensor<64x16xbf16> in @a at 2304
  fplan.buffer @dx : tensor<64x8xbf16> in @a at 4352
  fplan.buffer @dw : tensor<4x16x8xbf16> in @a at 5376
  // expected-error @+1 {{kernel @g (kind 'grouped_matmul_grad'): output 1 (dw) must be f32, got bf16}}
  fplan.kernel @g kind "grouped_matmul_grad"
  fplan.program @main {
    fplan.launch @g ins [@x, @w, @sizes, @dout] outs [@dx, @dw] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// seq_len must divide the tokens.
module @balance_seq_len {
  fplan.arena @a size(7680)
  fplan.buffer @s : tensor<100x16xf32> in @a at 0
  fplan.buffer @idx : tensor<100x2xi32> in @a at 6400
  fplan.buffer @l : tensor<f32> in @a at 7424
  fplan.kernel @loss kind "moe_balance_loss" params {seq_len = 30 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @loss (kind 'moe_balance_loss'): attribute 'seq_len' = 30 must be >= 1 and divide the 100 tokens}}
    fplan.launch @loss ins [@s, @idx] outs [@l] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The index buffer of the balance-loss gradient must hold integers.
module @balance_grad_float_indices {
  fplan.arena @a size(14080)
  fplan.buffer @s : tensor<100x16xf32> in @a at 0
  fplan.buffer @idx : tensor<100x2xf32> in @a at 6400
  fplan.buffer @l : tensor<f32> in @a at 7424
  fplan.buffer @ds : tensor<100x16xf32> in @a at 7680
  // expected-error @+1 {{kernel @g (kind 'moe_balance_loss_grad'): input 1 must be an index buffer (i32, i64)}}
  fplan.kernel @g kind "moe_balance_loss_grad" params {seq_len = 50 : i64}
  fplan.program @main {
    fplan.launch @g ins [@s, @idx, @l] outs [@ds] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The update interval is at least one step.
module @bias_update_every {
  fplan.arena @a size(1024)
  fplan.buffer @counts : tensor<16xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 256
  fplan.buffer @b : tensor<16xf32> in @a at 512
  fplan.buffer @win : tensor<16xf32> in @a at 768
  // expected-error @+1 {{kernel @upd (kind 'moe_bias_update'): attribute 'every' = 0 must be in [1, 9223372036854775807]}}
  fplan.kernel @upd kind "moe_bias_update" params {every = 0 : i64, lower = 1.000000e-01 : f32, speed = 1.000000e-03 : f32, upper = 1.000000e-01 : f32}
  fplan.program @main {
    fplan.launch @upd ins [@counts, @ctl, @b, @win] outs [@b, @win] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// ctl is the step_control vector of 8.
module @bias_update_ctl {
  fplan.arena @a size(1024)
  fplan.buffer @counts : tensor<16xf32> in @a at 0
  fplan.buffer @ctl : tensor<6xf32> in @a at 256
  fplan.buffer @b : tensor<16xf32> in @a at 512
  fplan.buffer @win : tensor<16xf32> in @a at 768
  fplan.kernel @upd kind "moe_bias_update" params {every = 2 : i64, lower = 1.000000e-01 : f32, speed = 1.000000e-03 : f32, upper = 1.000000e-01 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @upd (kind 'moe_bias_update'): input 1 (ctl) must have shape [8], got [6]}}
    fplan.launch @upd ins [@counts, @ctl, @b, @win] outs [@b, @win] grid [1, 1, 1] block [1, 1, 1]
  }
}
