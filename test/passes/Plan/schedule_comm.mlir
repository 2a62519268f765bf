// RUN: fusion-opt %s --split-input-file --fplan-schedule-comm | FileCheck %s
// RUN: fusion-opt %s --split-input-file --fplan-schedule-comm=comm-stream=2 | FileCheck %s --check-prefix=STREAM2
// RUN: not fusion-opt %s --fplan-schedule-comm=comm-stream=0 2>&1 | FileCheck %s --check-prefix=BADSTREAM

// A gradient's all_reduce overlaps an independent kernel; the update that reads the reduced
// gradient waits for it.
// CHECK-LABEL: module @overlap
//       CHECK: fplan.launch @grad ins [@x] outs [@g]
//  CHECK-NEXT: fplan.record 0{{$}}
//  CHECK-NEXT: fplan.wait 0 stream 1
//  CHECK-NEXT: fplan.collective all_reduce @g -> @r axis "dp" stream 1
//  CHECK-NEXT: fplan.record 1 stream 1
//  CHECK-NEXT: fplan.launch @other ins [@x] outs [@y]
//  CHECK-NEXT: fplan.wait 1{{$}}
//  CHECK-NEXT: fplan.launch @update ins [@r] outs [@w]
// STREAM2-LABEL: module @overlap
//       STREAM2: fplan.wait 0 stream 2
//  STREAM2-NEXT: fplan.collective all_reduce @g -> @r axis "dp" stream 2
//  STREAM2-NEXT: fplan.record 1 stream 2
module @overlap attributes {fplan.mesh = {dp = 2 : i64}} {
  fplan.arena @act size(8192)
  fplan.buffer @x : tensor<256xf32> in @act at 0
  fplan.buffer @g : tensor<256xf32> in @act at 1024
  fplan.buffer @r : tensor<256xf32> in @act at 2048
  fplan.buffer @y : tensor<256xf32> in @act at 3072
  fplan.buffer @w : tensor<256xf32> in @act at 4096
  fplan.kernel @grad kind "silu"
  fplan.kernel @other kind "exp"
  fplan.kernel @update kind "neg"
  fplan.program @step {
    fplan.launch @grad ins [@x] outs [@g] grid [1, 1, 1] block [1, 1, 1]
    fplan.collective all_reduce @g -> @r axis "dp"
    fplan.launch @other ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @update ins [@r] outs [@w] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A kernel that overwrites the bytes being sent (the memory planner reused them) must wait:
// @z shares @g's offset.
// CHECK-LABEL: module @reuse
//       CHECK: fplan.collective all_reduce @g -> @r axis "dp" stream 1
//  CHECK-NEXT: fplan.record 1 stream 1
//  CHECK-NEXT: fplan.wait 1{{$}}
//  CHECK-NEXT: fplan.launch @reuser ins [@s] outs [@z]
module @reuse attributes {fplan.mesh = {dp = 2 : i64}} {
  fplan.arena @act size(8192)
  fplan.buffer @x : tensor<256xf32> in @act at 0
  fplan.buffer @g : tensor<256xf32> in @act at 1024
  fplan.buffer @r : tensor<256xf32> in @act at 2048
  fplan.buffer @z : tensor<128xf32> in @act at 1536
  fplan.buffer @s : tensor<128xf32> in @act at 4096
  fplan.kernel @grad kind "silu"
  fplan.kernel @reuser kind "exp"
  fplan.program @step {
    fplan.launch @grad ins [@x] outs [@g] grid [1, 1, 1] block [1, 1, 1]
    fplan.collective all_reduce @g -> @r axis "dp"
    fplan.launch @reuser ins [@s] outs [@z] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// Two collectives keep their order on the comm stream; a later collective is no reason
// for stream 0 to wait, and nothing after them touches their bytes: the program's end is
// the wait.
// CHECK-LABEL: module @two
//       CHECK: fplan.collective all_reduce @a -> @ra axis "dp" stream 1
//  CHECK-NEXT: fplan.record 1 stream 1
//  CHECK-NEXT: fplan.record 2{{$}}
//  CHECK-NEXT: fplan.wait 2 stream 1
//  CHECK-NEXT: fplan.collective all_gather @b -> @gb axis "dp" stream 1
//  CHECK-NEXT: fplan.record 3 stream 1
//  CHECK-NEXT: fplan.launch @last ins [@x] outs [@y]
//   CHECK-NOT: fplan.wait
//       CHECK: }
module @two attributes {fplan.mesh = {dp = 2 : i64}} {
  fplan.arena @act size(16384)
  fplan.buffer @x : tensor<256xf32> in @act at 0
  fplan.buffer @a : tensor<256xf32> in @act at 1024
  fplan.buffer @ra : tensor<256xf32> in @act at 2048
  fplan.buffer @b : tensor<256xf32> in @act at 3072
  fplan.buffer @gb : tensor<512xf32> in @act at 4096
  fplan.buffer @y : tensor<256xf32> in @act at 6144
  fplan.kernel @last kind "exp"
  fplan.program @step outputs {ra = @ra, gb = @gb} {
    fplan.collective all_reduce @a -> @ra axis "dp"
    fplan.collective all_gather @b -> @gb axis "dp"
    fplan.launch @last ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}

// -----

// A program that already uses streams and events is left alone, as is one without
// collectives.
// CHECK-LABEL: module @scheduled
//       CHECK: fplan.program @mine {
//  CHECK-NEXT: fplan.collective all_reduce @a -> @ra axis "dp" stream 3
//  CHECK-NEXT: fplan.record 0 stream 3
//  CHECK-NEXT: fplan.wait 0{{$}}
//  CHECK-NEXT: }
//       CHECK: fplan.program @plain {
//  CHECK-NEXT: fplan.launch @k ins [@a] outs [@ra]
//  CHECK-NEXT: }
module @scheduled attributes {fplan.mesh = {dp = 2 : i64}} {
  fplan.arena @act size(4096)
  fplan.buffer @a : tensor<256xf32> in @act at 0
  fplan.buffer @ra : tensor<256xf32> in @act at 1024
  fplan.kernel @k kind "exp"
  fplan.program @mine {
    fplan.collective all_reduce @a -> @ra axis "dp" stream 3
    fplan.record 0 stream 3
    fplan.wait 0
  }
  fplan.program @plain {
    fplan.launch @k ins [@a] outs [@ra] grid [1, 1, 1] block [1, 1, 1]
  }
}

// BADSTREAM: error: fplan-schedule-comm: comm-stream must be >= 1, got 0
