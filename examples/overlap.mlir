// Communication overlap on 2 ranks: a 256 MiB all_reduce, then 15 independent elementwise
// kernels over 64 Mi floats, then the result's reader. fplan-schedule-comm (default on)
// moves the all_reduce to stream 1 and makes only the reader wait for it; the CUDA executor
// enqueues NCCL on that (high-priority) stream without a host wait. Measured on 2 x H200
// (2026-11-28, docs/device-runs.md): 4.00 ms per run in line (--schedule-comm=false),
// 3.38 ms scheduled, with the all_reduce (1.0 ms) entirely under the kernels.
//   fusionc examples/overlap.mlir --target=cuda -o overlap.fplan
//   fusion-run overlap.fplan --backend cuda --nproc 2 --program main --program main --trace t.json
module attributes {fplan.mesh = {dp = 2 : i64}} {
  fplan.arena @act size(1342177280)
  fplan.buffer @g : tensor<67108864xf32> in @act at 0
  fplan.buffer @r : tensor<67108864xf32> in @act at 268435456
  fplan.buffer @x : tensor<67108864xf32> in @act at 536870912
  fplan.buffer @y : tensor<67108864xf32> in @act at 805306368
  fplan.buffer @z : tensor<67108864xf32> in @act at 1073741824
  fplan.kernel @fill_g kind "fill" params {value = 1.0 : f32, step = 0.0 : f32}
  fplan.kernel @fill_x kind "fill" params {value = 0.5 : f32, step = 0.0 : f32}
  fplan.kernel @work kind "neg"
  fplan.kernel @use kind "add"
  fplan.program @init {
  }
  fplan.program @main outputs {z = @z} {
    fplan.launch @fill_g ins [] outs [@g] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @fill_x ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.collective all_reduce @g -> @r axis "dp"
    fplan.launch @work ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@y] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@y] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@y] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@y] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@y] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@y] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@y] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @work ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @use ins [@r, @y] outs [@z] grid [1, 1, 1] block [1, 1, 1]
  }
}
