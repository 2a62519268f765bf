// RUN: fusion-opt %s --split-input-file --fplan-codegen-cuda --verify-diagnostics | FileCheck %s

// step_control: one thread computes ctl; the schedule and the clip threshold are baked in.
// CHECK-LABEL: module @step_control
//       CHECK:   fplan.kernel @s kind "step_control" {{.*}}source = "{{.*}}#include \22fusion/optimizer.cuh\22{{.*}}extern \22C\22 __global__ void fusion_step_control(const int32_t* step, const float* loss, const float* grad_sumsq, float* ctl) {\0A  fk::stepControl(step, loss, grad_sumsq, ctl, 10, 70, 20, 0.10000000149011612, false, 1.0);{{.*}}"}
//       CHECK:   fplan.launch @s ins [@step, @loss, @sumsq] outs [@ctl] grid [1, 1, 1] block [32, 1, 1]{{$}}
module @step_control {
  fplan.arena @a size(1024)
  fplan.buffer @step : tensor<2xi32> in @a at 0
  fplan.buffer @loss : tensor<f32> in @a at 64
  fplan.buffer @sumsq : tensor<f32> in @a at 128
  fplan.buffer @ctl : tensor<8xf32> in @a at 192
  fplan.kernel @s kind "step_control" params {decay = "linear", decay_steps = 20 : i64, grad_clip = 1.000000e+00 : f32, min_lr_ratio = 1.000000e-01 : f32, stable_steps = 70 : i64, warmup_steps = 10 : i64}
  fplan.program @main {
    fplan.launch @s ins [@step, @loss, @sumsq] outs [@ctl] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// adamw_update in place, as the optimizer pass emits it: a grid-stride loop over the 1000
// elements; the attributes as fp64 literals (exactly the f32 values), mask mode 1 (grad).
// CHECK-LABEL: module @adamw_in_place
//       CHECK:   fplan.kernel @u kind "adamw_update" {{.*}}source = "{{.*}}extern \22C\22 __global__ void fusion_adamw_update(const float* g, const float* ctl, const float* w, const float* m, const float* v, float* w_out, float* m_out, float* v_out, int64_t n) {\0A  fk::adamwUpdate(g, ctl, w, m, v, w_out, m_out, v_out, n, fk::AdamParams{0.0030000000260770321, 0.89999997615814209, 0.94999998807907104, 9.9999999392252903e-09, 0.10000000149011612, 1, false});{{.*}}"}
//       CHECK:   fplan.launch @u ins [@g, @ctl, @w, @m, @v] outs [@w, @m, @v] grid [4, 1, 1] block [256, 1, 1] args [1000]
module @adamw_in_place {
  fplan.arena @a size(32768)
  fplan.buffer @g : tensor<10x100xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 4096
  fplan.buffer @w : tensor<10x100xf32> in @a at 8192
  fplan.buffer @m : tensor<10x100xf32> in @a at 12288
  fplan.buffer @v : tensor<10x100xf32> in @a at 16384
  fplan.kernel @u kind "adamw_update" params {beta1 = 0.899999976 : f32, beta2 = 0.949999988 : f32, cautious_update = 0 : i64, cautious_wd = 1 : i64, cautious_wd_mode = "grad", eps = 9.99999993E-9 : f32, lr = 3.000000e-03 : f32, weight_decay = 1.000000e-01 : f32}
  fplan.program @main {
    fplan.launch @u ins [@g, @ctl, @w, @m, @v] outs [@w, @m, @v] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// cautious_update counts agreeing signs over the whole tensor before any write: one block of
// 1024 threads (launch bounds to match); no cautious_wd: mask mode 0.
// CHECK-LABEL: module @adamw_cautious_update
//       CHECK:   source = "{{.*}}__global__ void __launch_bounds__(1024) fusion_adamw_update({{.*}}fk::AdamParams{0.001, 0.5, 0.75, 1.0000000000000001e-05, 0.0, 0, true});{{.*}}"
//       CHECK:   fplan.launch @u ins [@g, @ctl, @w, @m, @v] outs [@w2, @m2, @v2] grid [1, 1, 1] block [1024, 1, 1] args [5000]
module @adamw_cautious_update {
  fplan.arena @a size(262144)
  fplan.buffer @g : tensor<5000xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 20480
  fplan.buffer @w : tensor<5000xf32> in @a at 24576
  fplan.buffer @m : tensor<5000xf32> in @a at 45056
  fplan.buffer @v : tensor<5000xf32> in @a at 65536
  fplan.buffer @w2 : tensor<5000xf32> in @a at 86016
  fplan.buffer @m2 : tensor<5000xf32> in @a at 106496
  fplan.buffer @v2 : tensor<5000xf32> in @a at 126976
  fplan.kernel @u kind "adamw_update" params {beta1 = 0.5 : f64, beta2 = 0.75 : f64, cautious_update = 1 : i64, eps = 1.0e-5 : f64, lr = 1.0e-3 : f64, weight_decay = 0.0 : f64}
  fplan.program @main {
    fplan.launch @u ins [@g, @ctl, @w, @m, @v] outs [@w2, @m2, @v2] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// normuon_update: one 512-thread block per matrix; dynamic shared memory for X [40, 102]
// (rows padded to an odd word count), Ā and B̄ [40, 40], the staging tile [40, 64] (bf16)
// and 40 fp64 row denominators: 8·40 + 2·(40·102 + 2·40·40 + 40·64) = 20000 bytes. A
// [200, 96] matrix (m > n: X = G̃ᵀ [96, 200 + 2]) needs 89536 bytes, above the 48 KiB
// default (the runtime opts in). Muon (normalize = 0) with the update-mode mask: mode 2.
// CHECK-LABEL: module @normuon
//       CHECK:   fplan.kernel @k kind "normuon_update" {{.*}}source = "{{.*}}#include \22fusion/optimizer.cuh\22{{.*}}extern \22C\22 __global__ void __launch_bounds__(512) fusion_normuon_update(const float* g, const float* ctl, const float* w, const float* M, const float* v, float* w_out, float* M_out, float* v_out, int64_t units, int64_t m, int64_t n) {\0A  fk::normuonUpdate(g, ctl, w, M, v, w_out, M_out, v_out, units, m, n, fk::MuonParams{0.019999999552965164, 0.94999998807907104, 0.94999998807907104, 0.10000000149011612, true, true, 1});{{.*}}"}
//       CHECK:   fplan.kernel @muon kind "normuon_update" {{.*}}fk::MuonParams{0.5, 0.875, 0.0, 0.25, false, false, 2});
//       CHECK:   fplan.launch @k ins [@g, @ctl, @w, @m, @v] outs [@w, @m, @v] grid [2, 1, 1] block [512, 1, 1] smem 20000 args [2, 40, 100]
//       CHECK:   fplan.launch @k ins [@gt, @ctl, @wt, @mt, @vt] outs [@wt, @mt, @vt] grid [1, 1, 1] block [512, 1, 1] smem 89536 args [1, 200, 96]
//       CHECK:   fplan.launch @muon ins [@gt, @ctl, @wt, @mt, @vt] outs [@wt, @mt, @vt] grid [1, 1, 1] block [512, 1, 1] smem 89536 args [1, 200, 96]
module @normuon {
  fplan.arena @a size(1048576)
  fplan.buffer @g : tensor<2x40x100xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 32768
  fplan.buffer @w : tensor<2x40x100xf32> in @a at 65536
  fplan.buffer @m : tensor<2x40x100xf32> in @a at 131072
  fplan.buffer @v : tensor<2x40xf32> in @a at 196608
  fplan.buffer @gt : tensor<200x96xf32> in @a at 262144
  fplan.buffer @wt : tensor<200x96xf32> in @a at 393216
  fplan.buffer @mt : tensor<200x96xf32> in @a at 524288
  fplan.buffer @vt : tensor<200xf32> in @a at 655360
  fplan.kernel @k kind "normuon_update" params {beta1 = 0.949999988 : f32, beta2 = 0.949999988 : f32, cautious_wd = 1 : i64, cautious_wd_mode = "grad", lr = 2.000000e-02 : f32, nesterov = 1 : i64, normalize = 1 : i64, weight_decay = 1.000000e-01 : f32}
  fplan.kernel @muon kind "normuon_update" params {beta1 = 0.875 : f32, beta2 = 0.0 : f32, cautious_wd = 1 : i64, cautious_wd_mode = "update", lr = 0.5 : f32, normalize = 0 : i64, weight_decay = 0.25 : f32}
  fplan.program @main {
    fplan.launch @k ins [@g, @ctl, @w, @m, @v] outs [@w, @m, @v] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @k ins [@gt, @ctl, @wt, @mt, @vt] outs [@wt, @mt, @vt] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @muon ins [@gt, @ctl, @wt, @mt, @vt] outs [@wt, @mt, @vt] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The optimizer kinds are f32 only (as the CPU reference).
module @adamw_bf16_gradient {
  fplan.arena @a size(32768)
  fplan.buffer @g : tensor<100xbf16> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 4096
  fplan.buffer @w : tensor<100xf32> in @a at 8192
  fplan.buffer @m : tensor<100xf32> in @a at 12288
  fplan.buffer @v : tensor<100xf32> in @a at 16384
  // expected-error @+1 {{kernel @u (kind 'adamw_update'): input 0 must be f32, got bf16}}
  fplan.kernel @u kind "adamw_update" params {beta1 = 0.9 : f32, beta2 = 0.95 : f32, eps = 1.0e-8 : f32, lr = 1.0e-3 : f32, weight_decay = 0.0 : f32}
  fplan.program @main {
    fplan.launch @u ins [@g, @ctl, @w, @m, @v] outs [@w, @m, @v] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @adamw_missing_lr {
  fplan.arena @a size(32768)
  fplan.buffer @g : tensor<100xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 4096
  fplan.buffer @w : tensor<100xf32> in @a at 8192
  fplan.buffer @m : tensor<100xf32> in @a at 12288
  fplan.buffer @v : tensor<100xf32> in @a at 16384
  // expected-error @+1 {{kernel @u (kind 'adamw_update'): needs the float attribute 'lr'}}
  fplan.kernel @u kind "adamw_update" params {beta1 = 0.9 : f32, beta2 = 0.95 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32}
  fplan.program @main {
    fplan.launch @u ins [@g, @ctl, @w, @m, @v] outs [@w, @m, @v] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @adamw_beta_one {
  fplan.arena @a size(32768)
  fplan.buffer @g : tensor<100xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 4096
  fplan.buffer @w : tensor<100xf32> in @a at 8192
  fplan.buffer @m : tensor<100xf32> in @a at 12288
  fplan.buffer @v : tensor<100xf32> in @a at 16384
  // expected-error @+1 {{kernel @u (kind 'adamw_update'): attribute 'beta2' must be in [0, 1), got 1}}
  fplan.kernel @u kind "adamw_update" params {beta1 = 0.9 : f32, beta2 = 1.0 : f32, eps = 1.0e-8 : f32, lr = 1.0e-3 : f32, weight_decay = 0.0 : f32}
  fplan.program @main {
    fplan.launch @u ins [@g, @ctl, @w, @m, @v] outs [@w, @m, @v] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @adamw_bad_mask_mode {
  fplan.arena @a size(32768)
  fplan.buffer @g : tensor<100xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 4096
  fplan.buffer @w : tensor<100xf32> in @a at 8192
  fplan.buffer @m : tensor<100xf32> in @a at 12288
  fplan.buffer @v : tensor<100xf32> in @a at 16384
  // expected-error @+1 {{kernel @u (kind 'adamw_update'): attribute 'cautious_wd_mode' must be "grad" or "update", got "weight"}}
  fplan.kernel @u kind "adamw_update" params {beta1 = 0.9 : f32, beta2 = 0.95 : f32, cautious_wd = 1 : i64, cautious_wd_mode = "weight", eps = 1.0e-8 : f32, lr = 1.0e-3 : f32, weight_decay = 0.0 : f32}
  fplan.program @main {
    fplan.launch @u ins [@g, @ctl, @w, @m, @v] outs [@w, @m, @v] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @adamw_shape_mismatch {
  fplan.arena @a size(32768)
  fplan.buffer @g : tensor<100xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 4096
  fplan.buffer @w : tensor<100xf32> in @a at 8192
  fplan.buffer @m : tensor<10x10xf32> in @a at 12288
  fplan.buffer @v : tensor<100xf32> in @a at 16384
  fplan.kernel @u kind "adamw_update" params {beta1 = 0.9 : f32, beta2 = 0.95 : f32, eps = 1.0e-8 : f32, lr = 1.0e-3 : f32, weight_decay = 0.0 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @u (kind 'adamw_update'): input 3 (m) has shape [10, 10], expected [100]}}
    fplan.launch @u ins [@g, @ctl, @w, @m, @v] outs [@w, @m, @v] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @step_control_i64_step {
  fplan.arena @a size(1024)
  fplan.buffer @step : tensor<2xi64> in @a at 0
  fplan.buffer @loss : tensor<f32> in @a at 64
  fplan.buffer @sumsq : tensor<f32> in @a at 128
  fplan.buffer @ctl : tensor<8xf32> in @a at 192
  // expected-error @+1 {{kernel @s (kind 'step_control'): input 0 (step) must be i32, got i64}}
  fplan.kernel @s kind "step_control" params {decay = "linear", decay_steps = 20 : i64, grad_clip = 1.0 : f32, min_lr_ratio = 0.1 : f32, stable_steps = 70 : i64, warmup_steps = 10 : i64}
  fplan.program @main {
    fplan.launch @s ins [@step, @loss, @sumsq] outs [@ctl] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @step_control_bad_decay {
  fplan.arena @a size(1024)
  fplan.buffer @step : tensor<2xi32> in @a at 0
  fplan.buffer @loss : tensor<f32> in @a at 64
  fplan.buffer @sumsq : tensor<f32> in @a at 128
  fplan.buffer @ctl : tensor<8xf32> in @a at 192
  // expected-error @+1 {{kernel @s (kind 'step_control'): attribute 'decay' must be "linear" or "cosine", got "exponential"}}
  fplan.kernel @s kind "step_control" params {decay = "exponential", decay_steps = 20 : i64, grad_clip = 1.0 : f32, min_lr_ratio = 0.1 : f32, stable_steps = 70 : i64, warmup_steps = 10 : i64}
  fplan.program @main {
    fplan.launch @s ins [@step, @loss, @sumsq] outs [@ctl] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @step_control_zero_decay_steps {
  fplan.arena @a size(1024)
  fplan.buffer @step : tensor<2xi32> in @a at 0
  fplan.buffer @loss : tensor<f32> in @a at 64
  fplan.buffer @sumsq : tensor<f32> in @a at 128
  fplan.buffer @ctl : tensor<8xf32> in @a at 192
  // expected-error @+1 {{kernel @s (kind 'step_control'): attribute 'decay_steps' must be in [1, 2147483647], got 0}}
  fplan.kernel @s kind "step_control" params {decay = "cosine", decay_steps = 0 : i64, grad_clip = 1.0 : f32, min_lr_ratio = 0.1 : f32, stable_steps = 70 : i64, warmup_steps = 10 : i64}
  fplan.program @main {
    fplan.launch @s ins [@step, @loss, @sumsq] outs [@ctl] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @step_control_short_ctl {
  fplan.arena @a size(1024)
  fplan.buffer @step : tensor<2xi32> in @a at 0
  fplan.buffer @loss : tensor<f32> in @a at 64
  fplan.buffer @sumsq : tensor<f32> in @a at 128
  fplan.buffer @ctl : tensor<4xf32> in @a at 192
  fplan.kernel @s kind "step_control" params {decay = "cosine", decay_steps = 5 : i64, grad_clip = 1.0 : f32, min_lr_ratio = 0.1 : f32, stable_steps = 70 : i64, warmup_steps = 10 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @s (kind 'step_control'): output 0 (ctl) has shape [4], expected [8]}}
    fplan.launch @s ins [@step, @loss, @sumsq] outs [@ctl] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @normuon_bad_normalize {
  fplan.arena @a size(65536)
  fplan.buffer @g : tensor<8x16xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 4096
  fplan.buffer @w : tensor<8x16xf32> in @a at 8192
  fplan.buffer @m : tensor<8x16xf32> in @a at 12288
  fplan.buffer @v : tensor<8xf32> in @a at 16384
  // expected-error @+1 {{kernel @k (kind 'normuon_update'): attribute 'normalize' must be 1 (NorMuon) or 0 (Muon), got 2}}
  fplan.kernel @k kind "normuon_update" params {beta1 = 0.95 : f32, beta2 = 0.95 : f32, lr = 0.02 : f32, normalize = 2 : i64, weight_decay = 0.1 : f32}
  fplan.program @main {
    fplan.launch @k ins [@g, @ctl, @w, @m, @v] outs [@w, @m, @v] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @normuon_vector {
  fplan.arena @a size(65536)
  fplan.buffer @g : tensor<16xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 4096
  fplan.buffer @w : tensor<16xf32> in @a at 8192
  fplan.buffer @m : tensor<16xf32> in @a at 12288
  fplan.buffer @v : tensor<f32> in @a at 16384
  fplan.kernel @k kind "normuon_update" params {beta1 = 0.95 : f32, beta2 = 0.95 : f32, lr = 0.02 : f32, normalize = 1 : i64, weight_decay = 0.1 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @k (kind 'normuon_update'): input 0 (g) must have rank >= 2 ([..., m, n]), got shape [16]}}
    fplan.launch @k ins [@g, @ctl, @w, @m, @v] outs [@w, @m, @v] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @normuon_row_moment_shape {
  fplan.arena @a size(65536)
  fplan.buffer @g : tensor<8x16xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 4096
  fplan.buffer @w : tensor<8x16xf32> in @a at 8192
  fplan.buffer @m : tensor<8x16xf32> in @a at 12288
  fplan.buffer @v : tensor<16xf32> in @a at 16384
  fplan.kernel @k kind "normuon_update" params {beta1 = 0.95 : f32, beta2 = 0.95 : f32, lr = 0.02 : f32, normalize = 1 : i64, weight_decay = 0.1 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @k (kind 'normuon_update'): input 4 (v) has shape [16], expected [8]}}
    fplan.launch @k ins [@g, @ctl, @w, @m, @v] outs [@w, @m, @v] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// bench-1gpu's largest matrices do not fit one block's shared memory (no scratch buffers).
module @normuon_too_large {
  fplan.arena @a size(67108864)
  fplan.buffer @g : tensor<4096x1024xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 16777216
  fplan.buffer @w : tensor<4096x1024xf32> in @a at 16781312
  fplan.buffer @m : tensor<4096x1024xf32> in @a at 33558528
  fplan.buffer @v : tensor<4096xf32> in @a at 50335744
  fplan.kernel @k kind "normuon_update" params {beta1 = 0.95 : f32, beta2 = 0.95 : f32, lr = 0.02 : f32, normalize = 1 : i64, weight_decay = 0.1 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @k (kind 'normuon_update'): a 4096 x 1024 matrix does not fit the in-block Newton-Schulz iteration: it needs about}}
    fplan.launch @k ins [@g, @ctl, @w, @m, @v] outs [@w, @m, @v] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// normuon_update as the plans run it: 256-thread blocks throughout. normuon_norm: a warp per
// row, 8 rows a block (2·40 rows: 10 blocks; bench-1gpu's experts [16, 1536, 1024]: 24576
// rows). normuon_prepare / normuon_finish: 32×32 tiles of unit blockIdx.y, at most 256 blocks
// per unit ([40, 100]: 2·4 tiles; [1536, 1024]: 1536 tiles over 256 blocks). normuon_rows:
// a block per 32 rows of a unit ([2, 40]: 2·2; experts: m = 1536 from v with X [1024, 1536],
// the m > n layout: 16·48 blocks). The attributes are baked in (Muon: normalize false, mode 2).
// CHECK-LABEL: module @normuon_decomposed
//       CHECK:   fplan.kernel @norm kind "normuon_norm" {{.*}}extern \22C\22 __global__ void __launch_bounds__(256) fusion_normuon_norm(const float* g, const float* ctl, const float* M, float* sumsq, int64_t rows, int64_t n) {\0A  fk::normuonNorm(g, ctl, M, sumsq, rows, n, 0.94999998807907104, true);
//       CHECK:   fplan.kernel @prep kind "normuon_prepare" {{.*}}fusion_normuon_prepare(const float* g, const float* ctl, const float* M, const float* sumsq, float* M_out, __nv_bfloat16* X, int64_t m, int64_t n) {\0A  fk::normuonPrepare(g, ctl, M, sumsq, M_out, X, m, n, 0.875, false);
//       CHECK:   fplan.kernel @rows kind "normuon_rows" {{.*}}fusion_normuon_rows(const __nv_bfloat16* X, const float* ctl, const float* v, float* v_out, float* rowsums, int64_t m, int64_t n) {\0A  fk::normuonRows(X, ctl, v, v_out, rowsums, m, n, 0.94999998807907104);
//       CHECK:   fplan.kernel @fin kind "normuon_finish" {{.*}}fusion_normuon_finish(const __nv_bfloat16* X, const float* g, const float* ctl, const float* w, const float* v, const float* rowsums, float* w_out, int64_t m, int64_t n) {\0A  fk::normuonFinish(X, g, ctl, w, v, rowsums, w_out, m, n, fk::MuonFinishParams{0.019999999552965164, 0.10000000149011612, true, 1});
//       CHECK:   fplan.kernel @muon kind "normuon_finish" {{.*}}fk::MuonFinishParams{0.5, 0.25, false, 2});
//       CHECK:   fplan.launch @norm ins [@g, @ctl, @m] outs [@sq] grid [10, 1, 1] block [256, 1, 1] args [80, 100]
//  CHECK-NEXT:   fplan.launch @norm ins [@ge, @ctl, @me] outs [@sqe] grid [3072, 1, 1] block [256, 1, 1] args [24576, 1024]
//  CHECK-NEXT:   fplan.launch @prep ins [@g, @ctl, @m, @sq] outs [@m, @x] grid [8, 2, 1] block [256, 1, 1] args [40, 100]
//  CHECK-NEXT:   fplan.launch @prep ins [@ge, @ctl, @me, @sqe] outs [@me, @xe] grid [256, 16, 1] block [256, 1, 1] args [1536, 1024]
//  CHECK-NEXT:   fplan.launch @rows ins [@x, @ctl, @v] outs [@v, @rs] grid [4, 1, 1] block [256, 1, 1] args [40, 100]
//  CHECK-NEXT:   fplan.launch @rows ins [@xe, @ctl, @ve] outs [@ve, @rse] grid [768, 1, 1] block [256, 1, 1] args [1536, 1024]
//  CHECK-NEXT:   fplan.launch @fin ins [@x, @g, @ctl, @w, @v, @rs] outs [@w] grid [8, 2, 1] block [256, 1, 1] args [40, 100]
//  CHECK-NEXT:   fplan.launch @fin ins [@xe, @ge, @ctl, @we, @ve, @rse] outs [@we] grid [256, 16, 1] block [256, 1, 1] args [1536, 1024]
//  CHECK-NEXT:   fplan.launch @muon ins [@xe, @ge, @ctl, @we, @ve, @sqe] outs [@we] grid [256, 16, 1] block [256, 1, 1] args [1536, 1024]
module @normuon_decomposed {
  fplan.arena @a size(1073741824)
  fplan.buffer @g : tensor<2x40x100xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 65536
  fplan.buffer @w : tensor<2x40x100xf32> in @a at 131072
  fplan.buffer @m : tensor<2x40x100xf32> in @a at 196608
  fplan.buffer @v : tensor<2x40xf32> in @a at 262144
  fplan.buffer @sq : tensor<2x40x2xf32> in @a at 266240
  fplan.buffer @x : tensor<2x40x100xbf16> in @a at 270336
  fplan.buffer @rs : tensor<2x40x2xf32> in @a at 303104
  fplan.buffer @ge : tensor<16x1536x1024xf32> in @a at 1048576
  fplan.buffer @we : tensor<16x1536x1024xf32> in @a at 101711872
  fplan.buffer @me : tensor<16x1536x1024xf32> in @a at 202375168
  fplan.buffer @ve : tensor<16x1536xf32> in @a at 303038464
  fplan.buffer @sqe : tensor<16x1536x2xf32> in @a at 303136768
  fplan.buffer @xe : tensor<16x1024x1536xbf16> in @a at 303333376
  fplan.buffer @rse : tensor<16x1536x2xf32> in @a at 353665024
  fplan.kernel @norm kind "normuon_norm" params {beta1 = 0.949999988 : f32, nesterov = 1 : i64}
  fplan.kernel @prep kind "normuon_prepare" params {beta1 = 0.875 : f32, nesterov = 0 : i64}
  fplan.kernel @rows kind "normuon_rows" params {beta2 = 0.949999988 : f32}
  fplan.kernel @fin kind "normuon_finish" params {cautious_wd = 1 : i64, cautious_wd_mode = "grad", lr = 2.000000e-02 : f32, normalize = 1 : i64, weight_decay = 1.000000e-01 : f32}
  fplan.kernel @muon kind "normuon_finish" params {cautious_wd = 1 : i64, cautious_wd_mode = "update", lr = 0.5 : f32, normalize = 0 : i64, weight_decay = 0.25 : f32}
  fplan.program @main {
    fplan.launch @norm ins [@g, @ctl, @m] outs [@sq] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @norm ins [@ge, @ctl, @me] outs [@sqe] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @prep ins [@g, @ctl, @m, @sq] outs [@m, @x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @prep ins [@ge, @ctl, @me, @sqe] outs [@me, @xe] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows ins [@x, @ctl, @v] outs [@v, @rs] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @rows ins [@xe, @ctl, @ve] outs [@ve, @rse] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fin ins [@x, @g, @ctl, @w, @v, @rs] outs [@w] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fin ins [@xe, @ge, @ctl, @we, @ve, @rse] outs [@we] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @muon ins [@xe, @ge, @ctl, @we, @ve, @sqe] outs [@we] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The NS5 iterate X of the decomposition is bf16.
module @normuon_prepare_f32_iterate {
  fplan.arena @a size(65536)
  fplan.buffer @g : tensor<8x16xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 4096
  fplan.buffer @m : tensor<8x16xf32> in @a at 8192
  fplan.buffer @sq : tensor<8x2xf32> in @a at 12288
  fplan.buffer @x : tensor<8x16xf32> in @a at 16384
  // expected-error @+1 {{kernel @k (kind 'normuon_prepare'): output 1 must be bf16, got f32}}
  fplan.kernel @k kind "normuon_prepare" params {beta1 = 0.95 : f32, nesterov = 1 : i64}
  fplan.program @main {
    fplan.launch @k ins [@g, @ctl, @m, @sq] outs [@m, @x] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @normuon_norm_no_beta1 {
  fplan.arena @a size(65536)
  fplan.buffer @g : tensor<8x16xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 4096
  fplan.buffer @m : tensor<8x16xf32> in @a at 8192
  fplan.buffer @sq : tensor<8x2xf32> in @a at 12288
  // expected-error @+1 {{kernel @k (kind 'normuon_norm'): needs the float attribute 'beta1'}}
  fplan.kernel @k kind "normuon_norm" params {nesterov = 1 : i64}
  fplan.program @main {
    fplan.launch @k ins [@g, @ctl, @m] outs [@sq] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// m > n iterates on G̃ᵀ: for g [16, 8], X is [8, 16].
module @normuon_prepare_untransposed {
  fplan.arena @a size(65536)
  fplan.buffer @g : tensor<16x8xf32> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 4096
  fplan.buffer @m : tensor<16x8xf32> in @a at 8192
  fplan.buffer @sq : tensor<16x2xf32> in @a at 12288
  fplan.buffer @x : tensor<16x8xbf16> in @a at 16384
  fplan.kernel @k kind "normuon_prepare" params {beta1 = 0.95 : f32, nesterov = 1 : i64}
  fplan.program @main {
    // expected-error @+1 {{kernel @k (kind 'normuon_prepare'): output 1 (X) has shape [16, 8], expected [8, 16]}}
    fplan.launch @k ins [@g, @ctl, @m, @sq] outs [@m, @x] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// The tile kernels put one matrix per grid row.
module @normuon_finish_too_many_units {
  fplan.arena @a size(16777216)
  fplan.buffer @x : tensor<70000x1x2xbf16> in @a at 0
  fplan.buffer @g : tensor<70000x1x2xf32> in @a at 524288
  fplan.buffer @ctl : tensor<8xf32> in @a at 1572864
  fplan.buffer @w : tensor<70000x1x2xf32> in @a at 2097152
  fplan.buffer @v : tensor<70000x1xf32> in @a at 3145728
  fplan.buffer @rs : tensor<70000x1x2xf32> in @a at 4194304
  fplan.kernel @k kind "normuon_finish" params {cautious_wd = 0 : i64, lr = 0.02 : f32, normalize = 1 : i64, weight_decay = 0.1 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @k (kind 'normuon_finish'): has 70000 matrices; the tile kernels put one per grid row (at most 65535)}}
    fplan.launch @k ins [@x, @g, @ctl, @w, @v, @rs] outs [@w] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

module @normuon_finish_bad_normalize {
  fplan.arena @a size(65536)
  fplan.buffer @x : tensor<8x16xbf16> in @a at 0
  fplan.buffer @g : tensor<8x16xf32> in @a at 4096
  fplan.buffer @ctl : tensor<8xf32> in @a at 8192
  fplan.buffer @w : tensor<8x16xf32> in @a at 12288
  fplan.buffer @v : tensor<8xf32> in @a at 16384
  fplan.buffer @rs : tensor<8x2xf32> in @a at 20480
  // expected-error @+1 {{kernel @k (kind 'normuon_finish'): attribute 'normalize' must be 1 (NorMuon) or 0 (Muon), got 3}}
  fplan.kernel @k kind "normuon_finish" params {cautious_wd = 0 : i64, lr = 0.02 : f32, normalize = 3 : i64, weight_decay = 0.1 : f32}
  fplan.program @main {
    fplan.launch @k ins [@x, @g, @ctl, @w, @v, @rs] outs [@w] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// normuon_rows takes m from v: it must be one of X's last two dims.
module @normuon_rows_bad_v {
  fplan.arena @a size(65536)
  fplan.buffer @x : tensor<2x8x16xbf16> in @a at 0
  fplan.buffer @ctl : tensor<8xf32> in @a at 4096
  fplan.buffer @v : tensor<2x12xf32> in @a at 8192
  fplan.buffer @rs : tensor<2x12x2xf32> in @a at 12288
  fplan.kernel @k kind "normuon_rows" params {beta2 = 0.95 : f32}
  fplan.program @main {
    // expected-error @+1 {{kernel @k (kind 'normuon_rows'): input 2 (v) must be [..., m] with the leading dims of input 0 (X) and m one of its last two dims, got shapes [2, 8, 16] and [2, 12]}}
    fplan.launch @k ins [@x, @ctl, @v] outs [@v, @rs] grid [1, 1, 1] block [1, 1, 1]
  }
}
