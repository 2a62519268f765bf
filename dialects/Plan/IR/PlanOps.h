//===- PlanOps.h - fplan dialect ops --------------------------------------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_DIALECTS_PLAN_IR_PLANOPS_H
#define FUSION_DIALECTS_PLAN_IR_PLANOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"

#include "dialects/Plan/IR/PlanDialect.h"
#include "dialects/Plan/IR/PlanEnums.h.inc"

#define GET_OP_CLASSES
#include "dialects/Plan/IR/PlanOps.h.inc"

namespace mlir::fusion::plan {

/// Name of the module attribute holding the mesh: a dictionary from axis name to size.
inline constexpr llvm::StringLiteral kMeshAttrName = "fplan.mesh";
/// On an `fplan.buffer`: the buffer is a view of the named buffer's bytes (fplan-alias-reshapes);
/// fusion-plan-memory places it at that buffer's offset.
inline constexpr llvm::StringLiteral kViewOfAttrName = "fplan.view_of";

/// numInputs of a kind that takes one or more inputs (concat).
inline constexpr unsigned kVariadic = ~0u;

/// Arity of a kernel kind the runtime knows: number of input and output buffers, and
/// whether all buffers must have one element count (elementwise kinds).
struct KernelKindInfo {
  llvm::StringLiteral kind;
  unsigned numInputs;
  unsigned numOutputs;
  bool elementwise;
};

/// The kernel kinds the runtime's CPU backend implements (one reference kernel each).
llvm::ArrayRef<KernelKindInfo> getKernelKinds();

/// Looks up a kernel kind; nullptr if the runtime does not know it.
const KernelKindInfo *lookupKernelKind(llvm::StringRef kind);

/// Size in bytes of one element of `type` (f32, bf16, f16, i32, i64).
int64_t getElementByteSize(Type type);

/// The buffers an instruction (launch, gemm, collective) names: a launch's ins then outs,
/// a gemm's a, b, c, a collective's send, recv. Empty for other ops.
llvm::SmallVector<FlatSymbolRefAttr> getInstructionBuffers(Operation &op);
/// The buffers an instruction writes: a launch's outs, a gemm's c, a collective's recv.
llvm::SmallVector<FlatSymbolRefAttr> getWrittenBuffers(Operation &op);

/// How many programs of `module` name each buffer (in any instruction), and the buffers bound
/// as some program's input or output: the plan passes that rewrite one program's buffers
/// (fplan-alias-reshapes, fplan-fuse-elementwise) leave both alone.
void collectProgramBuffers(ModuleOp module, llvm::DenseMap<StringAttr, unsigned> &programsNaming,
                           llvm::DenseSet<StringAttr> &bound);

} // namespace mlir::fusion::plan

#endif // FUSION_DIALECTS_PLAN_IR_PLANOPS_H
