//===- FusionBase.td - the fusion dialect and its op base class -*- tablegen -*-===//
//
// Part of the FusionLLM compiler.
//
// The `fusion` dialect is the tensor-level IR: the model's own vocabulary (matmul, norms,
// attention, MoE routing, ...) on ranked tensors, before any scheduling or memory planning.
//
//===----------------------------------------------------------------------------===//

#ifndef FUSION_BASE_TD
#define FUSION_BASE_TD

include "mlir/IR/OpBase.td"

def Fusion_Dialect : Dialect {
  let name = "fusion";
  let cppNamespace = "::mlir::fusion";
  let summary = "Tensor-level IR of the FusionLLM training step";
  let description = [{
    Ops on ranked tensors that carry the model's semantics: each op's exact meaning is one
    reference kernel in the runtime's CPU backend, and its shape rules are free functions in
    `ShapeRules.cpp` shared by the verifiers and the passes. Functions (`func.func`) hold the
    forward model, the loss and, after the training passes, the backward and optimizer.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

class Fusion_Op<string mnemonic, list<Trait> traits = []>
    : Op<Fusion_Dialect, mnemonic, traits>;

/// Floating-point tensors the model computes in (storage dtypes of the plan).
def Fusion_FloatTensor : StaticShapeTensorOf<[F32, BF16, F16]>;
/// Token-id tensors.
def Fusion_IndexTensor : StaticShapeTensorOf<[I32, I64]>;

#endif // FUSION_BASE_TD
