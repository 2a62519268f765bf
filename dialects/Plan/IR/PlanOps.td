//===- PlanOps.td - fplan dialect ops --------------------------*- tablegen -*-===//
//
// Part of the FusionLLM compiler.
//
// Constraint IDs (`buffer_c1`) tag each rule in PlanOps.cpp; the invalid tests are named
// after them.
//
//===----------------------------------------------------------------------------===//

#ifndef FPLAN_OPS_TD
#define FPLAN_OPS_TD

include "dialects/Plan/IR/PlanBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/IR/BuiltinAttributes.td"

//===----------------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------------===//

def FPlan_ArenaOp : FPlan_Op<"arena", [Symbol, HasParent<"::mlir::ModuleOp">]> {
  let summary = "one contiguous device allocation";
  let description = [{
    An arena of `size` bytes. A `persistent` arena lives across programs and steps
    (parameters, optimizer state); the others are reused within a program run (activations,
    temporaries). The runtime allocates each arena once.

    ```mlir
    fplan.arena @activations size(4096)
    fplan.arena @params persistent size(1024)
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, UnitAttr:$persistent,
                       ConfinedAttr<I64Attr, [IntPositive]>:$size);
  let assemblyFormat = "$sym_name (`persistent` $persistent^)? `size` `(` $size `)` attr-dict";
}

def FPlan_BufferOp : FPlan_Op<"buffer", [Symbol, HasParent<"::mlir::ModuleOp">,
                                         DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "a typed tensor at an offset of an arena";
  let description = [{
    A buffer holds one tensor of static shape at byte `offset` of `arena`; it occupies
    `numel × sizeof(dtype)` bytes.

    `role` marks what a persistent buffer holds, for checkpoints: `weight` (a trained
    parameter), `model_buffer` (a non-trained model tensor such as the MoE router bias),
    `optimizer_state` (moments, expert-count windows) or `inference_state` (the decode
    program's caches: zeroed per generation, not checkpointed); absent = an activation.

    Constraints: `buffer_c4` role is one of the four and only on a persistent arena's
    buffer; `buffer_c1` the arena names an `fplan.arena`; `buffer_c2` the buffer ends
    inside the arena (`offset + bytes ≤ arena size`); `buffer_c3` the offset is a multiple of
    the element size.

    ```mlir
    fplan.buffer @x : tensor<4x8xf32> in @activations at 0
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       TypeAttrOf<StaticShapeTensorOf<[F32, BF16, F16, I32, I64]>>:$type,
                       FlatSymbolRefAttr:$arena,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$offset,
                       OptionalAttr<StrAttr>:$role);
  let assemblyFormat = "$sym_name `:` $type `in` $arena `at` $offset attr-dict";
  let extraClassDeclaration = [{
    /// The tensor type the buffer holds.
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
    /// Size in bytes.
    int64_t getSizeInBytes();
  }];
}

//===----------------------------------------------------------------------------===//
// Code
//===----------------------------------------------------------------------------===//

def FPlan_KernelOp : FPlan_Op<"kernel", [Symbol, HasParent<"::mlir::ModuleOp">]> {
  let summary = "a kernel: what it computes, and optionally its device code";
  let description = [{
    `kind` and `params` are the portable description of the computation (the CPU backend
    runs the reference kernel of that kind with those parameters); `entry` and `source` are
    the device code generated for it by `fplan-codegen-cuda` (CUDA C++, compiled to cubins by
    nvcc when the plan is written). Device kernels take one pointer per launch buffer, in
    order, then the launch's `args` as 64-bit integers.

    ```mlir
    fplan.kernel @add0 kind "add"
    fplan.kernel @fill0 kind "fill" params {value = 1.0 : f32, step = 0.5 : f32}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, StrAttr:$kind,
                       OptionalAttr<DictionaryAttr>:$params,
                       OptionalAttr<StrAttr>:$entry, OptionalAttr<StrAttr>:$source);
  let assemblyFormat = "$sym_name `kind` $kind (`params` $params^)? attr-dict";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------------===//
// Programs
//===----------------------------------------------------------------------------===//

def FPlan_ProgramOp : FPlan_Op<"program", [Symbol, HasParent<"::mlir::ModuleOp">,
                                           SingleBlock, NoTerminator,
                                           DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "a straight-line program of instructions";
  let description = [{
    The instructions run in order on their streams; across streams, order only follows
    `fplan.record` / `fplan.wait`. The runtime runs a program by name (`init`, `train_step`,
    `eval_step`, `main`, ...).

    `inputs` and `outputs` bind names to buffers: the runtime fills the inputs before a run
    (`tokens`, `targets`, `inv_counts` of the model's `forward`) and reports the outputs after
    it (`loss`).

    Constraints: `program_c1` only fplan instructions appear in the body; `program_c2` every
    `fplan.wait` waits for an event recorded earlier in the program; `program_c3` every
    binding names an `fplan.buffer`.

    ```mlir
    fplan.program @forward inputs {tokens = @tokens} outputs {loss = @loss} {
      ...
    }
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, OptionalAttr<DictionaryAttr>:$inputs,
                       OptionalAttr<DictionaryAttr>:$outputs);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $sym_name (`inputs` $inputs^)? (`outputs` $outputs^)? attr-dict-with-keyword $body
  }];
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    /// Number of streams the program uses (highest stream index + 1).
    unsigned getNumStreams();
    /// Number of distinct event ids (highest event id + 1).
    unsigned getNumEvents();
  }];
}

class FPlan_InstructionOp<string mnemonic, list<Trait> traits = []>
    : FPlan_Op<mnemonic, !listconcat(traits, [HasParent<"ProgramOp">])>;

def FPlan_LaunchOp : FPlan_InstructionOp<"launch",
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "run a kernel over buffers";
  let description = [{
    Runs `kernel` reading `ins` and writing `outs`, with launch geometry `grid` × `block`
    (CUDA backend), `smem` bytes of dynamic shared memory and integer `args` appended to the
    kernel's parameters.

    Constraints: `launch_c1` the kernel names an `fplan.kernel`; `launch_c2` every buffer
    names an `fplan.buffer`; `launch_c3` grid and block have 3 positive entries;
    `launch_c4` at least one output; `launch_c5` the kernel kind's arity holds (elementwise
    kinds: inputs and outputs of one element count).

    ```mlir
    fplan.launch @add0 ins [@x, @y] outs [@z] grid [1, 1, 1] block [256, 1, 1] args [32]
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$kernel, FlatSymbolRefArrayAttr:$ins,
                       FlatSymbolRefArrayAttr:$outs, DenseI64ArrayAttr:$grid,
                       DenseI64ArrayAttr:$block,
                       DefaultValuedAttr<I64Attr, "0">:$smem,
                       DefaultValuedAttr<DenseI64ArrayAttr, "{}">:$args,
                       DefaultValuedAttr<I32Attr, "0">:$stream);
  let assemblyFormat = [{
    $kernel `ins` $ins `outs` $outs `grid` $grid `block` $block
    (`smem` $smem^)? (`args` $args^)? (`stream` $stream^)? attr-dict
  }];
  let hasVerifier = 1;
}

def FPlan_GemmOp : FPlan_InstructionOp<"gemm",
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "a (batched) GEMM through cuBLASLt / BLAS";
  let description = [{
    `c = alpha · op(a) @ op(b) + beta · c`, row-major, `op` transposing the last two
    dimensions when `transpose_a` / `transpose_b` is set; fp32 accumulation. `a` may carry
    batch dimensions; `b` has the same batch dimensions or none.

    Constraints: `gemm_c1` all three name `fplan.buffer`s; `gemm_c2` the shapes form a valid
    matmul (the `fusion.matmul` rules) whose result shape is c's; `gemm_c3` a and b share one
    float element type, and c has it too or is f32 (a bf16/f16 product kept in fp32, e.g.
    logits for softcap_ce_rows or an f32 weight gradient).

    ```mlir
    fplan.gemm @a, @b -> @c transpose_b
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$a, FlatSymbolRefAttr:$b, FlatSymbolRefAttr:$c,
                       UnitAttr:$transpose_a, UnitAttr:$transpose_b,
                       DefaultValuedAttr<F32Attr, "1.0f">:$alpha,
                       DefaultValuedAttr<F32Attr, "0.0f">:$beta,
                       DefaultValuedAttr<I32Attr, "0">:$stream);
  let assemblyFormat = [{
    $a `,` $b `->` $c (`transpose_a` $transpose_a^)? (`transpose_b` $transpose_b^)?
    (`stream` $stream^)? attr-dict
  }];
}

def FPlan_CollectiveOp : FPlan_InstructionOp<"collective",
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "a collective over one mesh axis";
  let description = [{
    Runs `kind` over the ranks of mesh axis `axis` (size `N`), from `send` into `recv`:
    `all_reduce` (recv = reduce over ranks of send; same element count), `all_gather`
    (recv = concatenation of every rank's send; `|recv| = N·|send|`), `reduce_scatter`
    (recv = this rank's 1/N slice of the reduction; `|send| = N·|recv|`), `all_to_all`
    (slice i of send goes to rank i; equal counts).

    Constraints: `collective_c1` send and recv name `fplan.buffer`s of one element type;
    `collective_c2` the axis is in the module's `fplan.mesh`; `collective_c3` the element
    counts follow the kind's rule.

    ```mlir
    fplan.collective all_gather @shard -> @full axis "dp"
    fplan.collective reduce_scatter @grad -> @grad_shard axis "dp" reduce sum
    ```
  }];
  let arguments = (ins FPlan_CollectiveKind:$kind, FlatSymbolRefAttr:$send,
                       FlatSymbolRefAttr:$recv, StrAttr:$axis,
                       DefaultValuedAttr<FPlan_ReduceKind, "ReduceKind::sum">:$reduce,
                       DefaultValuedAttr<I32Attr, "0">:$stream);
  let assemblyFormat = [{
    $kind $send `->` $recv `axis` $axis (`reduce` $reduce^)? (`stream` $stream^)? attr-dict
  }];
}

def FPlan_RecordOp : FPlan_InstructionOp<"record"> {
  let summary = "record an event on a stream";
  let description = [{
    Marks the point in `stream` that a later `fplan.wait` of the same event waits for.

    ```mlir
    fplan.record 0 stream 1
    ```
  }];
  let arguments = (ins ConfinedAttr<I32Attr, [IntNonNegative]>:$event,
                       DefaultValuedAttr<I32Attr, "0">:$stream);
  let assemblyFormat = "$event (`stream` $stream^)? attr-dict";
}

def FPlan_WaitOp : FPlan_InstructionOp<"wait"> {
  let summary = "make a stream wait for an event";
  let description = [{
    Instructions of `stream` after this one start only after the instructions before the
    matching `fplan.record` have completed.

    ```mlir
    fplan.wait 0 stream 0
    ```
  }];
  let arguments = (ins ConfinedAttr<I32Attr, [IntNonNegative]>:$event,
                       DefaultValuedAttr<I32Attr, "0">:$stream);
  let assemblyFormat = "$event (`stream` $stream^)? attr-dict";
}

#endif // FPLAN_OPS_TD
