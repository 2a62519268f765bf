//===- ShapeRules.h - shape rules of the fusion ops -----------------------===//
//
// Part of the FusionLLM compiler.
//
// The single source of truth for each op's shape rules, as free functions shared by the
// verifiers, the model builders and the passes (StableHLO's TypeInference.cpp does the same).
// Each takes an optional location: with one, a violated rule is emitted there as an error
// naming the offending values; without one, the rule is only checked.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_DIALECTS_FUSION_IR_SHAPERULES_H
#define FUSION_DIALECTS_FUSION_IR_SHAPERULES_H

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/Location.h"
#include "mlir/Support/LLVM.h"

#include <optional>

namespace mlir::fusion {

/// Infers the result shape of `matmul(lhs, rhs)` with the given transposes
/// (constraints matmul_c1..c3).
LogicalResult inferMatmulShape(std::optional<Location> loc, ArrayRef<int64_t> lhs,
                               ArrayRef<int64_t> rhs, bool transposeLhs, bool transposeRhs,
                               SmallVectorImpl<int64_t> &result);

/// Checks `rms_norm(x, w)` operand shapes (rms_norm_c1, c2).
LogicalResult verifyRmsNormShapes(std::optional<Location> loc, ArrayRef<int64_t> input,
                                  ArrayRef<int64_t> weight);

/// Infers the result shape of `embedding(table, ids)` (embedding_c1).
LogicalResult inferEmbeddingShape(std::optional<Location> loc, ArrayRef<int64_t> table,
                                  ArrayRef<int64_t> ids, SmallVectorImpl<int64_t> &result);

/// Checks attention operand shapes and infers `[B, H, T, d_v]` (attention_c1..c4).
LogicalResult inferAttentionShape(std::optional<Location> loc, ArrayRef<int64_t> q,
                                  ArrayRef<int64_t> k, ArrayRef<int64_t> v,
                                  SmallVectorImpl<int64_t> &result);

/// Checks gated_delta_rule operand shapes (gated_delta_rule_c1..c5, and c7 when a chunk
/// size is given; the recurrent gated_delta_step has none).
LogicalResult verifyGatedDeltaRuleShapes(std::optional<Location> loc, ArrayRef<int64_t> q,
                                         ArrayRef<int64_t> k, ArrayRef<int64_t> v,
                                         ArrayRef<int64_t> g, ArrayRef<int64_t> beta,
                                         std::optional<int64_t> chunkSize);

/// Checks rope / rope_at: x [B, T, ..., d] of rank >= 3 (c1), rotary_dims even, >= 2 and <= d
/// (c2), theta > 0 (c3); errors are emitted on `op`.
LogicalResult verifyRope(Operation *op, ArrayRef<int64_t> shape, int64_t rotaryDims,
                         float theta);

/// Checks the parameters named by a stateful op's `state` (each a fusion.parameter of the
/// given shape and, when `optimizer` is not empty, of that optimizer; `roles` names them in
/// errors).
LogicalResult verifyStateParameters(Operation *op, SymbolTableCollection &symbols,
                                    ArrayAttr state, ArrayRef<SmallVector<int64_t>> shapes,
                                    ArrayRef<StringRef> roles, StringRef optimizer = {});

/// MoE routing hyper-parameters (MODEL.md §5 names).
struct MoeRouting {
  int64_t numExperts;     ///< E
  int64_t topK;           ///< K
  int64_t numGroups;      ///< G_e
  int64_t limitedGroups;  ///< M_g
  int64_t groupTopK;      ///< q_g
};

/// Checks the routing rules E mod G_e = 0, q_g <= E/G_e, M_g <= G_e, K <= M_g·E/G_e
/// (moe_route_c2..c5). The config frontend checks the same rules on the YAML.
LogicalResult verifyMoeRouting(std::optional<Location> loc, const MoeRouting &routing);

/// Formats a shape as `2x16x64` for diagnostics.
std::string formatShape(ArrayRef<int64_t> shape);

} // namespace mlir::fusion

#endif // FUSION_DIALECTS_FUSION_IR_SHAPERULES_H
