//===- PlanBase.td - the fplan dialect and its op base class ---*- tablegen -*-===//
//
// Part of the FusionLLM compiler.
//
// The `fplan` dialect is the execution-level IR: buffers at arena offsets, kernels with a
// portable description, and straight-line programs of launches, GEMMs, collectives and
// events per stream. It serialises 1:1 to the plan file (runtime/schema/fusion_plan.fbs).
//
//===----------------------------------------------------------------------------===//

#ifndef FPLAN_BASE_TD
#define FPLAN_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/EnumAttr.td"

def FPlan_Dialect : Dialect {
  let name = "fplan";
  let cppNamespace = "::mlir::fusion::plan";
  let summary = "Execution-level IR of the FusionLLM training step";
  let description = [{
    Module-level symbols declare the memory (`fplan.arena`, `fplan.buffer`) and the code
    (`fplan.kernel`); `fplan.program` holds one straight-line program (init, train_step,
    eval_step, ...) whose instructions name those symbols. The mesh is the module attribute
    `fplan.mesh`, a dictionary from axis name to size (`{dp = 2, ep = 1}`); absent, the plan
    runs on one rank.
  }];
}

class FPlan_Op<string mnemonic, list<Trait> traits = []>
    : Op<FPlan_Dialect, mnemonic, traits>;

def FPlan_CollectiveKind : I32EnumAttr<"CollectiveKind", "collective communication kind", [
    I32EnumAttrCase<"all_reduce", 0>, I32EnumAttrCase<"all_gather", 1>,
    I32EnumAttrCase<"reduce_scatter", 2>, I32EnumAttrCase<"all_to_all", 3>]> {
  let cppNamespace = "::mlir::fusion::plan";
}

def FPlan_ReduceKind : I32EnumAttr<"ReduceKind", "reduction of a collective", [
    I32EnumAttrCase<"sum", 0>, I32EnumAttrCase<"avg", 1>, I32EnumAttrCase<"max", 2>]> {
  let cppNamespace = "::mlir::fusion::plan";
}

#endif // FPLAN_BASE_TD
