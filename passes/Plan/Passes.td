//===- Passes.td - fplan passes --------------------------------*- tablegen -*-===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------------===//

#ifndef FPLAN_PASSES_TD
#define FPLAN_PASSES_TD

include "mlir/Pass/PassBase.td"

def FuseElementwisePass : Pass<"fplan-fuse-elementwise", "::mlir::ModuleOp"> {
  let summary = "Fold chains of elementwise launches into fused_elementwise launches";
  let description = [{
    A launch P of an elementwise kind (add, sub, mul, swiglu, silu, sigmoid, exp, neg,
    softplus, cast, scale, softcap) on float buffers of one element count, whose output X is
    read by exactly one later launch C, is folded into C when C is such a launch too: P goes,
    and C becomes (or stays) a launch of a `fused_elementwise` kernel whose `expr` program
    computes P's value and then C's, rounding P's value to X's element type exactly as P's
    store did (docs/op-kinds.md, "fused_elementwise"). By repetition a chain or tree becomes
    one launch reading its distinct external inputs; a CPU run gives the same bytes.

    X must be written by P only and read by C only, in a non-persistent arena, named by this
    program only, not a program input or output, not a view or a view's root; P and C run on
    one stream with no `fplan.record` between them, and no instruction between them writes a
    buffer P's program reads (P's reads move to C's position). Moving P's reads must not
    raise the memory peak: P runs right before C, or the transient inputs whose last use it
    moves later hold no more bytes than X, which folding frees over that range (an early
    forward op folded into its one backward reader kept 19.5 GB more alive on bench-1gpu).
    First, a `cast` whose input is an `rms_norm` / `l2_norm` output read by nothing else
    folds into the norm (a row reduction's epilogue): the norm writes the cast's buffer
    through a kernel of its new type signature (`<kernel>.to_bf16`), exact because the norm
    rounds each fp32 value once on its store.
    A fused launch reads at most
    8 buffers and has at most 32 statements. Runs before fusion-plan-memory, so the
    intermediates get no bytes.

    Before:
    ```mlir
    fplan.launch @cast ins [@x] outs [@xf] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @add ins [@xf, @r] outs [@s] grid [1, 1, 1] block [1, 1, 1]
    ```
    After (x bf16, r and s f32):
    ```mlir
    fplan.kernel @fused_elementwise kind "fused_elementwise"
        params {expr = "%0 = cast.f32 %in0; %1 = add.f32 %0, %in1; out0 = %1"}
    fplan.launch @fused_elementwise ins [@x, @r] outs [@s] grid [1, 1, 1] block [1, 1, 1]
    ```
  }];
  let dependentDialects = ["::mlir::fusion::plan::FPlanDialect"];
  let statistics = [
    Statistic<"numLaunchesRemoved", "num-launches-removed",
              "elementwise launches folded into a later launch">,
    Statistic<"numFusedLaunches", "num-fused-launches", "fused_elementwise launches created">,
    Statistic<"numCastsFolded", "num-casts-folded", "casts folded into the rms_norm / l2_norm that produce their input">,
  ];
}

def CodegenCudaPass : Pass<"fplan-codegen-cuda", "::mlir::ModuleOp"> {
  let summary = "Emit CUDA C++ for plan kernels and set their launch geometry";
  let description = [{
    For every `fplan.kernel` without device code, emits CUDA C++ from its portable
    description (`kind` + `params`) specialised to the element type of the buffers it is
    launched on, and sets `entry` and `source`. Every `fplan.launch` of such a kernel gets
    its grid, block and integer arguments (element counts, row sizes) from the buffers it
    names. The sources are compiled to cubins by nvcc when the plan is written.

    Before:
    ```mlir
    fplan.kernel @add0 kind "add"
    fplan.launch @add0 ins [@x, @y] outs [@z] grid [1, 1, 1] block [1, 1, 1]
    ```
    After (z has 1000 elements):
    ```mlir
    fplan.kernel @add0 kind "add" {entry = "fusion_add0", source = "..."}
    fplan.launch @add0 ins [@x, @y] outs [@z] grid [4, 1, 1] block [256, 1, 1] args [1000]
    ```
    A kernel launched on buffers of different element types is an error: it would need two
    device functions (the caller should give it two kernel symbols).
  }];
  let dependentDialects = ["::mlir::fusion::plan::FPlanDialect"];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"256",
           "threads per block of elementwise kernels">,
  ];
  let statistics = [
    Statistic<"numKernelsEmitted", "num-kernels-emitted", "kernels given CUDA source">,
  ];
}

def AliasReshapesPass : Pass<"fplan-alias-reshapes", "::mlir::ModuleOp"> {
  let summary = "Turn reshape copies into views of their input's bytes";
  let description = [{
    A `reshape` launch copies its input's bytes unchanged. Before fusion-plan-memory, each
    such launch whose copy can share those bytes is removed and its output buffer becomes a
    view of the input's root buffer (`fplan.view_of = @root`; a reshape of a view is a view
    of the same root). fusion-plan-memory places a view at its root's offset and keeps the
    root alive while any view is.

    A reshape stays a copy unless: both buffers are in the same non-persistent arena and
    named by this program only; the output is not a program binding, has the root's element
    type and at most its bytes, and is written by no other instruction; and the root is
    written by no instruction after the reshape (so the view reads exactly the bytes the copy
    would have held). The NorMuon lowering's copies that seed a GEMM's `beta` accumulator
    are written again and stay copies.

    Before:
    ```mlir
    fplan.launch @reshape ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
    fplan.launch @silu ins [@y] outs [@z] grid [1, 1, 1] block [1, 1, 1]
    ```
    After:
    ```mlir
    fplan.buffer @y : tensor<4x8xf32> in @transient at 0 {fplan.view_of = @x}
    fplan.launch @silu ins [@y] outs [@z] grid [1, 1, 1] block [1, 1, 1]
    ```
  }];
  let dependentDialects = ["::mlir::fusion::plan::FPlanDialect"];
  let statistics = [
    Statistic<"numAliased", "num-aliased", "reshape copies turned into views">,
  ];
}

def PlanMemoryPass : Pass<"fusion-plan-memory", "::mlir::ModuleOp"> {
  let summary = "Assign transient buffers to arena offsets from liveness";
  let description = [{
    For every program, a buffer of a non-persistent arena is live from the first to the last
    instruction that names it (input bindings from the start, output bindings to the end).
    Buffers whose lifetimes do not overlap share bytes; an elementwise kernel may write its
    output over an input that dies at that instruction (in-place). Placement is greedy,
    largest buffer first, at the lowest 256-byte-aligned offset free of every overlapping
    buffer; a buffer named by several programs keeps bytes of its own. A collective's send
    buffer lives until its result is first read, so the instructions in between may run
    while the collective is in flight (fplan-schedule-comm). A view (`fplan.view_of`, from
    fplan-alias-reshapes) has no lifetime of its own: its uses extend its root's, and it gets
    its root's offset; a view of a buffer in another arena, of a view, of a missing buffer,
    or larger than its root is an error.

    Each program gets `fplan.peak_live_bytes` (the largest total size of buffers live at one
    instruction: a lower bound of any placement) and the arena its final size. With
    `memory-budget` > 0, a plan whose arenas need more bytes than the budget is an error at
    the program with the peak, naming its largest live buffers there.
  }];
  let dependentDialects = ["::mlir::fusion::plan::FPlanDialect"];
  let options = [
    Option<"memoryBudget", "memory-budget", "int64_t", /*default=*/"0",
           "bytes all arenas may use together (0 = no limit)">,
  ];
  let statistics = [
    Statistic<"numInPlace", "num-in-place", "outputs placed over a dying input">,
    Statistic<"bytesSaved", "bytes-saved", "transient bytes saved over one buffer each">,
  ];
}

def ScheduleCommPass : Pass<"fplan-schedule-comm", "::mlir::ModuleOp"> {
  let summary = "Run collectives on their own stream, waited for only where their bytes are next touched";
  let description = [{
    After fusion-plan-memory (it reads arena offsets). In every program whose instructions
    all run on stream 0, each `fplan.collective` moves to stream `comm-stream`:
    `fplan.record e stream 0` + `fplan.wait e stream S` before it (it starts once everything
    before it in program order is done), `fplan.record e' stream S` after it, and
    `fplan.wait e' stream 0` right before the first later stream-0 instruction that writes
    bytes the collective reads (its send buffer) or reads or writes bytes it writes (its
    recv buffer), same arena and overlapping byte ranges. Instructions in between run
    concurrently with the collective; with none, the program's end (which waits for every
    stream) is the wait. Collectives keep their program order on stream S, so every rank
    issues them in the same order. Programs that already use several streams or events are
    left as they are.

    This is the data-parallel case of the design's fusion-schedule-comm (each gradient's
    all_reduce overlaps the backward pass that follows it); prefetching the next layer's
    all_gather needs the sharded strategies, which are not built. The CUDA executor runs
    stream > 0 at the highest priority and enqueues NCCL there without a host wait.

    ```mlir
    fplan.launch @k ins [@a] outs [@g] ...
    fplan.record 0 stream 0
    fplan.wait 0 stream 1
    fplan.collective all_reduce @g -> @r axis "dp" stream 1
    fplan.record 1 stream 1
    fplan.launch @other ins [@x] outs [@y] ...      // overlaps the all_reduce
    fplan.wait 1 stream 0
    fplan.launch @update ins [@r] outs [@w] ...     // reads the reduced gradient
    ```
  }];
  let dependentDialects = ["::mlir::fusion::plan::FPlanDialect"];
  let options = [
    Option<"commStream", "comm-stream", "int64_t", /*default=*/"1",
           "the stream collectives run on (≥ 1)">,
  ];
  let statistics = [
    Statistic<"numMoved", "num-moved", "collectives moved to the communication stream">,
    Statistic<"numOverlapped", "num-overlapped",
              "stream-0 instructions that run while a collective is in flight">,
  ];
}

#endif // FPLAN_PASSES_TD
