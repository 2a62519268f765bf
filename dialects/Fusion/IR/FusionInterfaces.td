//===- FusionInterfaces.td - interfaces of the fusion ops ------*- tablegen -*-===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------------===//

#ifndef FUSION_INTERFACES_TD
#define FUSION_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Fusion_DifferentiableOpInterface : OpInterface<"DifferentiableOpInterface"> {
  let cppNamespace = "::mlir::fusion";
  let description = [{
    An op that reverse-mode differentiation (`fusion-autodiff`) can pass through. Its rule
    builds, at the builder's insertion point, the ops of its vector–Jacobian product: given
    the cotangent of each result (a null Value when the loss does not depend on that
    result), it returns the cotangent contribution of each operand (null for an operand
    without a gradient: integer ids, routing indices, the MoE selection bias). The rules
    live in Gradients.cpp and are attached to the ops when the dialect loads.
  }];
  let methods = [
    InterfaceMethod<[{
        Builds the VJP: `resultGrads` has one entry per result, `operandGrads` receives one
        entry per operand. Fails (with a diagnostic on the op) only for configurations the
        rule does not support.
      }],
      "::mlir::LogicalResult", "buildGradient",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::ArrayRef<::mlir::Value>":$resultGrads,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGrads)>,
  ];
}

#endif // FUSION_INTERFACES_TD
