//===- FusionCollectiveOps.td - collectives over mesh axes -------*- tablegen -*-===//
//
// Part of the FusionLLM compiler.
//
// Collectives on tensors: every rank of a mesh axis runs the same op on its own value
// (SPMD) and receives the combined result. They appear only after the partitioning passes
// (fusion-shard-fsdp), which record the mesh as the module attribute
// `fusion.mesh = {dp = D, ...}`; fusion-lower-to-plan turns each into one
// `fplan.collective`. They are not Pure: every rank must run the same collectives in the
// same order, so no pass may drop, duplicate or reorder them on its own. Their reference
// semantics is the runtime's communicator (runtime/include/fusion/rt/comm.h): float sums
// accumulate in fp32 in rank order, so every rank receives bit-identical results.
//
//===----------------------------------------------------------------------------===//

#ifndef FUSION_COLLECTIVE_OPS_TD
#define FUSION_COLLECTIVE_OPS_TD

def Fusion_CollectiveTensor : StaticShapeTensorOf<[F32, BF16, F16, I32, I64]>;

class Fusion_CollectiveOp<string mnemonic, list<Trait> traits = []>
    : Fusion_Op<mnemonic, traits> {
  let hasVerifier = 1;
}

def Fusion_AllReduceOp : Fusion_CollectiveOp<"all_reduce",
    [AllTypesMatch<["input", "result"]>]> {
  let summary = "elementwise reduction over the ranks of a mesh axis";
  let description = [{
    `y[i] = ⊕_{r=0}^{N−1} x_r[i]` over the `N` ranks of mesh axis `axis`, with `⊕` = `sum`,
    `max` or `avg` (= sum / N); every rank receives the same `y`. Float tensors reduce in
    fp32 in rank order 0..N−1; integer tensors support `sum` and `max`.

    Constraints: `all_reduce_c1` the module has `fusion.mesh` and `axis` is one of its axes;
    `all_reduce_c2` `reduce` is `sum`, `max` or `avg`, and integer tensors do not `avg`.

    ```mlir
    %g = fusion.all_reduce %grad {axis = "dp", reduce = "sum"} : tensor<64x32xf32>
    ```
  }];
  let arguments = (ins Fusion_CollectiveTensor:$input, StrAttr:$axis, StrAttr:$reduce);
  let results = (outs Fusion_CollectiveTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Fusion_AllGatherOp : Fusion_CollectiveOp<"all_gather"> {
  let summary = "concatenation of every rank's tensor along dimension 0";
  let description = [{
    `y = concat(x_0, …, x_{N−1})` along dimension 0 over the `N` ranks of mesh axis `axis`:
    `y[r·n + i, …] = x_r[i, …]` for `x [n, …]`, `y [N·n, …]`. Every rank receives the same `y`.

    Constraints: `all_gather_c1` as `all_reduce_c1`; `all_gather_c2` input and result have
    one element type and rank ≥ 1, the result's dimension 0 is N times the input's and the
    other dimensions are equal.

    ```mlir
    %full = fusion.all_gather %shard {axis = "dp"} : (tensor<32x64xf32>) -> tensor<64x64xf32>
    ```
  }];
  let arguments = (ins Fusion_CollectiveTensor:$input, StrAttr:$axis);
  let results = (outs Fusion_CollectiveTensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

def Fusion_ReduceScatterOp : Fusion_CollectiveOp<"reduce_scatter"> {
  let summary = "reduction over the ranks of a mesh axis, each rank keeping one slice";
  let description = [{
    Rank `r` of the `N` ranks of mesh axis `axis` receives slice `r` (along dimension 0) of
    the reduction: `y_r[i, …] = ⊕_{q} x_q[r·n + i, …]` for `x [N·n, …]`, `y [n, …]`, with
    `⊕` and the accumulation rules of `all_reduce`.

    Constraints: `reduce_scatter_c1` as `all_reduce_c1`; `reduce_scatter_c2` as
    `all_reduce_c2`; `reduce_scatter_c3` one element type, rank ≥ 1, the input's dimension 0
    is N times the result's and the other dimensions are equal.

    ```mlir
    %shard = fusion.reduce_scatter %grad {axis = "dp", reduce = "sum"} : (tensor<64x64xf32>) -> tensor<32x64xf32>
    ```
  }];
  let arguments = (ins Fusion_CollectiveTensor:$input, StrAttr:$axis, StrAttr:$reduce);
  let results = (outs Fusion_CollectiveTensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

#endif // FUSION_COLLECTIVE_OPS_TD
