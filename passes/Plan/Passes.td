//===- Passes.td - fplan passes --------------------------------*- tablegen -*-===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------------===//

#ifndef FPLAN_PASSES_TD
#define FPLAN_PASSES_TD

include "mlir/Pass/PassBase.td"

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

#endif // FPLAN_PASSES_TD
