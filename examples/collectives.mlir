// A hand-written data-parallel fplan program for two ranks (mesh dp = 2): every collective
// kind, on a GPU per rank with NCCL (`fusion-run collectives.fplan --backend cuda --nproc 2`,
// after `fusionc examples/collectives.mlir -o collectives.fplan --target=cuda`). Every rank
// fills x with the same values, so the results are easy to check by hand:
//
//   x = 1 + 0.5 · i (8 values)
//   sum      = all_reduce(x)       = 2 · x               (8)
//   gathered = all_gather(x)       = x ++ x              (16)
//   mine     = reduce_scatter(sum) = rank r's half of 2 · sum, i.e. 4 · x[4r .. 4r+3]  (4)
//   swapped  = all_to_all(x)       = x[0..3] from rank 0 ++ x[4..7] from rank 1 on rank 0 (8)
//
// Run on one process it stops at the first collective and says how to run it.
module attributes {fplan.mesh = {dp = 2 : i64}} {
  fplan.arena @act size(4096)

  fplan.buffer @x : tensor<8xf32> in @act at 0
  fplan.buffer @sum : tensor<8xf32> in @act at 256
  fplan.buffer @gathered : tensor<16xf32> in @act at 512
  fplan.buffer @mine : tensor<4xf32> in @act at 1024
  fplan.buffer @swapped : tensor<8xf32> in @act at 1280

  fplan.kernel @fill_x kind "fill" params {value = 1.0 : f32, step = 0.5 : f32}

  fplan.program @init {
  }

  fplan.program @main outputs {gathered = @gathered, mine = @mine, sum = @sum, swapped = @swapped} {
    fplan.launch @fill_x ins [] outs [@x] grid [1, 1, 1] block [1, 1, 1]
    fplan.collective all_reduce @x -> @sum axis "dp"
    fplan.collective all_gather @x -> @gathered axis "dp"
    fplan.collective reduce_scatter @sum -> @mine axis "dp"
    fplan.collective all_to_all @x -> @swapped axis "dp"
  }
}
