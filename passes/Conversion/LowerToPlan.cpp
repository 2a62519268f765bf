//===- LowerToPlan.cpp - fusion IR to fplan programs ----------------------===//
//
// Part of the FusionLLM compiler.
//
// Lowers each function of tensor-level fusion IR to a straight-line fplan program: one
// buffer per tensor, one instruction per op (the op's portable description, see
// docs/op-kinds.md), parameters in a persistent arena written by an `init` program. The
// exceptions are normuon_update, which becomes its grid-parallel parts around batched bf16
// GEMMs for the Newton–Schulz iteration (lowerNormuon), and softcap_ce / softcap_ce_grad,
// which become blocks of logit rows computed by GEMMs around per-row kernels
// (lowerSoftcapCe).
//
//===----------------------------------------------------------------------===//

#include "passes/Conversion/Passes.h"

#include "dialects/Fusion/IR/FusionDialect.h"
#include "dialects/Fusion/IR/FusionOps.h"
#include "dialects/Plan/IR/PlanOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"

#define DEBUG_TYPE "fusion-lower-to-plan"

namespace mlir::fusion {

#define GEN_PASS_DEF_LOWERTOPLANPASS
#include "passes/Conversion/Passes.h.inc"

namespace {

using namespace mlir::fusion::plan;

/// Buffers are placed at multiples of this (GPU-friendly; also keeps every dtype aligned).
constexpr int64_t kAlignment = 256;

int64_t alignTo(int64_t value) { return (value + kAlignment - 1) / kAlignment * kAlignment; }

int64_t byteSize(RankedTensorType type) {
  return type.getNumElements() * getElementByteSize(type.getElementType());
}

/// The module path of a location (`layers.3.attn.q`), if it has one.
std::string pathOf(Location loc) {
  if (auto name = dyn_cast<NameLoc>(loc))
    return name.getName().str();
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location inner : fused.getLocations())
      if (std::string path = pathOf(inner); !path.empty())
        return path;
  return "";
}

/// Creates the fplan module contents next to the fusion IR, then erases the fusion IR.
class Lowering {
public:
  Lowering(ModuleOp module, int64_t seed, int64_t softcapCeBlockBytes, bool attentionSavesLse)
      : module(module), builder(module.getContext()), seed(seed),
        softcapCeBlockBytes(softcapCeBlockBytes), attentionSavesLse(attentionSavesLse) {}

  LogicalResult run();

  unsigned numBuffers = 0, numKernels = 0, numInstructions = 0, numSavedLse = 0;

private:
  /// A fresh, unique buffer symbol for a tensor of `type` named after `hint`.
  FlatSymbolRefAttr newBuffer(StringRef hint, RankedTensorType type, StringRef arena,
                              Location loc);
  /// The kernel symbol for (kind, params, element types of every operand and result),
  /// created on first use: a device function is specialised to its buffers' types.
  FlatSymbolRefAttr getKernel(StringRef kind, DictionaryAttr params, ArrayRef<Type> elementTypes,
                              Location loc);
  LogicalResult lowerFunction(func::FuncOp fn);
  LogicalResult lowerOp(Operation *op, OpBuilder &body, StringRef program);
  /// normuon_update as GEMMs: norm, prepare, 5 Newton–Schulz steps of batched GEMMs, rows
  /// (NorMuon), finish (docs/op-kinds.md, "normuon_update in plans").
  LogicalResult lowerNormuon(NormuonUpdateOp op, ArrayRef<Attribute> ins, OpBuilder &body);
  /// softcap_ce / softcap_ce_grad as blocks of logit rows: gemm, per-row kernel, gemms
  /// (docs/op-kinds.md, "softcap_ce in plans").
  LogicalResult lowerSoftcapCe(Operation *op, ArrayRef<Attribute> ins, ArrayRef<Attribute> outs,
                               OpBuilder &body);
  /// Pairs each attention_grad of `fn` with an attention of the same q, k, v and attributes
  /// (the forward it differentiates): those lower to attention_lse / attention_grad_lse.
  void pairAttention(func::FuncOp fn);
  /// attention_lse (o, lse) for a paired attention; attention_grad_lse for a paired gradient.
  LogicalResult lowerPairedAttention(Operation *op, ArrayRef<Attribute> ins,
                                     ArrayRef<Attribute> outs, OpBuilder &body);
  /// A gemm instruction c = alpha·op(a)·op(b) + beta·c.
  void gemm(OpBuilder &body, Location loc, FlatSymbolRefAttr a, FlatSymbolRefAttr b,
            FlatSymbolRefAttr c, bool transposeA, bool transposeB, float alpha = 1.0f,
            float beta = 0.0f);
  /// A launch of a kernel of `kind` over `ins` -> `outs` (kernel created on first use).
  void launch(OpBuilder &body, Location loc, StringRef kind, ArrayRef<NamedAttribute> params,
              ArrayRef<Attribute> ins, ArrayRef<Attribute> outs);
  /// The element type of buffer `ref`.
  Type elementTypeOf(FlatSymbolRefAttr ref);

  ModuleOp module;
  OpBuilder builder;
  int64_t seed;
  /// Most bytes of f32 logits one block of softcap_ce rows may hold.
  int64_t softcapCeBlockBytes;
  /// Whether paired attention / attention_grad save and reuse the forward's lse.
  bool attentionSavesLse;
  /// attention_grad -> its forward attention; the forwards that have a gradient; the lse
  /// buffer of each lowered paired forward.
  llvm::DenseMap<Operation *, Operation *> forwardOfGrad;
  llvm::DenseSet<Operation *> pairedForwards;
  llvm::DenseMap<Operation *, FlatSymbolRefAttr> lseOf;
  /// Insertion point for module-level declarations (before the first program).
  Operation *declAnchor = nullptr;
  llvm::StringSet<> usedNames;
  llvm::StringMap<unsigned> nextSuffix;
  llvm::DenseMap<Value, FlatSymbolRefAttr> bufferOf;
  llvm::DenseMap<Attribute, FlatSymbolRefAttr> kernels;
  llvm::StringMap<FlatSymbolRefAttr> paramBuffers;
  llvm::StringMap<int64_t> arenaSizes;
  llvm::StringMap<RankedTensorType> bufferTypes;
};

FlatSymbolRefAttr Lowering::newBuffer(StringRef hint, RankedTensorType type, StringRef arena,
                                      Location loc) {
  std::string base = hint.empty() ? std::string("t") : hint.str();
  std::string name = base;
  // Next suffix per base name: names stay `base`, `base.0`, `base.1`, ... in linear time.
  for (unsigned &i = nextSuffix[base]; usedNames.contains(name); ++i)
    name = llvm::formatv("{0}.{1}", base, i).str();
  usedNames.insert(name);
  int64_t &end = arenaSizes[arena];
  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPoint(declAnchor);
  BufferOp::create(builder, loc, builder.getStringAttr(name), TypeAttr::get(type),
                   FlatSymbolRefAttr::get(builder.getContext(), arena),
                   builder.getI64IntegerAttr(end), StringAttr());
  end = alignTo(end + std::max<int64_t>(byteSize(type), 1));
  ++numBuffers;
  bufferTypes[name] = type;
  return FlatSymbolRefAttr::get(builder.getContext(), name);
}

FlatSymbolRefAttr Lowering::getKernel(StringRef kind, DictionaryAttr params,
                                      ArrayRef<Type> elementTypes, Location loc) {
  MLIRContext *context = builder.getContext();
  SmallVector<Attribute> types;
  for (Type type : elementTypes)
    types.push_back(TypeAttr::get(type));
  Attribute key = ArrayAttr::get(
      context, {StringAttr::get(context, kind), params ? Attribute(params) : UnitAttr::get(context),
                ArrayAttr::get(context, types)});
  if (auto it = kernels.find(key); it != kernels.end())
    return it->second;
  std::string name = kind.str();
  for (unsigned &i = nextSuffix[name]; usedNames.contains(name); ++i)
    name = llvm::formatv("{0}.{1}", kind, i).str();
  usedNames.insert(name);
  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPoint(declAnchor);
  KernelOp::create(builder, loc, builder.getStringAttr(name), builder.getStringAttr(kind),
                   params && !params.empty() ? params : DictionaryAttr(), StringAttr(),
                   StringAttr());
  ++numKernels;
  return kernels[key] = FlatSymbolRefAttr::get(context, name);
}

LogicalResult Lowering::lowerOp(Operation *op, OpBuilder &body, StringRef program) {
  Location loc = op->getLoc();
  // Parameters are their buffers: a load is free.
  if (auto load = dyn_cast<LoadOp>(op)) {
    auto it = paramBuffers.find(load.getName());
    if (it == paramBuffers.end())
      return load.emitOpError("loads an unknown parameter");
    bufferOf[load.getResult()] = it->second;
    return success();
  }
  std::string path = pathOf(loc);
  StringRef hint = path.empty() ? StringRef(program) : StringRef(path);
  SmallVector<Attribute> outs;
  for (Value result : op->getResults()) {
    auto type = dyn_cast<RankedTensorType>(result.getType());
    if (!type)
      return op->emitOpError("has a non-tensor result, which has no plan buffer");
    FlatSymbolRefAttr buffer = newBuffer(hint, type, "transient", loc);
    bufferOf[result] = buffer;
    outs.push_back(buffer);
  }
  SmallVector<Attribute> ins;
  for (Value operand : op->getOperands()) {
    FlatSymbolRefAttr buffer = bufferOf.lookup(operand);
    if (!buffer)
      return op->emitOpError("uses a value with no buffer (defined outside the function?)");
    ins.push_back(buffer);
  }
  // Optimizer ops update parameters in place: their `state` buffers are read and written.
  NamedAttrList params(op->getAttrDictionary());
  if (auto state = op->getAttrOfType<ArrayAttr>("state")) {
    for (auto ref : state.getAsRange<FlatSymbolRefAttr>()) {
      auto it = paramBuffers.find(ref.getValue());
      if (it == paramBuffers.end())
        return op->emitOpError("updates unknown parameter ") << ref;
      ins.push_back(it->second);
      outs.push_back(it->second);
    }
    params.erase("state");
  }
  // `fill` kernels take a start value and a step (0 here).
  if (isa<FillOp>(op))
    params.set("step", body.getF64FloatAttr(0.0));

  // Collectives are communication, not kernels.
  if (isa<AllReduceOp, AllGatherOp, ReduceScatterOp>(op)) {
    plan::CollectiveKind kind = isa<AllReduceOp>(op)   ? plan::CollectiveKind::all_reduce
                                : isa<AllGatherOp>(op) ? plan::CollectiveKind::all_gather
                                                       : plan::CollectiveKind::reduce_scatter;
    plan::ReduceKind reduce = plan::ReduceKind::sum;
    if (auto name = op->getAttrOfType<StringAttr>("reduce"))
      reduce = *plan::symbolizeReduceKind(name.getValue());
    MLIRContext *context = op->getContext();
    plan::CollectiveOp::create(body, loc, plan::CollectiveKindAttr::get(context, kind),
                               cast<FlatSymbolRefAttr>(ins[0]), cast<FlatSymbolRefAttr>(outs[0]),
                               op->getAttrOfType<StringAttr>("axis"),
                               plan::ReduceKindAttr::get(context, reduce),
                               body.getI32IntegerAttr(0));
    ++numInstructions;
    return success();
  }
  if (auto matmul = dyn_cast<MatmulOp>(op)) {
    GemmOp::create(body, loc, cast<FlatSymbolRefAttr>(ins[0]), cast<FlatSymbolRefAttr>(ins[1]),
                   cast<FlatSymbolRefAttr>(outs[0]), matmul.getTransposeAAttr(),
                   matmul.getTransposeBAttr(), body.getF32FloatAttr(1.0f),
                   body.getF32FloatAttr(0.0f), body.getI32IntegerAttr(0));
    ++numInstructions;
    return success();
  }
  if (auto normuon = dyn_cast<NormuonUpdateOp>(op))
    return lowerNormuon(normuon, ins, body);
  if (isa<SoftcapCeOp, SoftcapCeGradOp>(op))
    return lowerSoftcapCe(op, ins, outs, body);
  if (pairedForwards.contains(op) || forwardOfGrad.count(op))
    return lowerPairedAttention(op, ins, outs, body);
  StringRef kind = op->getName().stripDialect();
  if (!lookupKernelKind(kind))
    return op->emitOpError("has no plan kernel kind '") << kind << "' (docs/op-kinds.md)";
  SmallVector<Type> elementTypes;
  for (Value value : llvm::concat<Value>(op->getOperands(), op->getResults()))
    if (auto tensor = dyn_cast<RankedTensorType>(value.getType()))
      elementTypes.push_back(tensor.getElementType());
  FlatSymbolRefAttr kernel =
      getKernel(kind, params.getDictionary(op->getContext()), elementTypes, loc);
  LaunchOp::create(body, loc, kernel, body.getArrayAttr(ins), body.getArrayAttr(outs),
                   body.getDenseI64ArrayAttr({1, 1, 1}), body.getDenseI64ArrayAttr({1, 1, 1}),
                   body.getI64IntegerAttr(0), body.getDenseI64ArrayAttr({}),
                   body.getI32IntegerAttr(0));
  ++numInstructions;
  return success();
}

Type Lowering::elementTypeOf(FlatSymbolRefAttr ref) {
  return bufferTypes.lookup(ref.getValue()).getElementType();
}

void Lowering::launch(OpBuilder &body, Location loc, StringRef kind,
                      ArrayRef<NamedAttribute> params, ArrayRef<Attribute> ins,
                      ArrayRef<Attribute> outs) {
  SmallVector<Type> elementTypes;
  for (Attribute ref : llvm::concat<const Attribute>(ins, outs))
    elementTypes.push_back(elementTypeOf(cast<FlatSymbolRefAttr>(ref)));
  FlatSymbolRefAttr kernel =
      getKernel(kind, body.getDictionaryAttr(params), elementTypes, loc);
  LaunchOp::create(body, loc, kernel, body.getArrayAttr(ins), body.getArrayAttr(outs),
                   body.getDenseI64ArrayAttr({1, 1, 1}), body.getDenseI64ArrayAttr({1, 1, 1}),
                   body.getI64IntegerAttr(0), body.getDenseI64ArrayAttr({}),
                   body.getI32IntegerAttr(0));
  ++numInstructions;
}

void Lowering::gemm(OpBuilder &body, Location loc, FlatSymbolRefAttr a, FlatSymbolRefAttr b,
                    FlatSymbolRefAttr c, bool transposeA, bool transposeB, float alpha,
                    float beta) {
  GemmOp::create(body, loc, a, b, c, transposeA ? body.getUnitAttr() : UnitAttr(),
                 transposeB ? body.getUnitAttr() : UnitAttr(), body.getF32FloatAttr(alpha),
                 body.getF32FloatAttr(beta), body.getI32IntegerAttr(0));
  ++numInstructions;
}

void Lowering::pairAttention(func::FuncOp fn) {
  if (!attentionSavesLse)
    return;
  SmallVector<AttentionOp> forwards;
  for (Operation &op : fn.getBody().front()) {
    if (auto forward = dyn_cast<AttentionOp>(op)) {
      forwards.push_back(forward);
      continue;
    }
    auto grad = dyn_cast<AttentionGradOp>(op);
    if (!grad)
      continue;
    // The latest earlier forward of the same operands and attributes (a recomputed forward
    // has the same inputs, so either gives the same o and lse).
    for (AttentionOp forward : llvm::reverse(forwards)) {
      if (forward.getQuery() != grad.getQuery() || forward.getKey() != grad.getKey() ||
          forward.getValue() != grad.getValue() || forward.getCausal() != grad.getCausal() ||
          forward.getWindow() != grad.getWindow() || forward.getScale() != grad.getScale())
        continue;
      forwardOfGrad[grad] = forward;
      pairedForwards.insert(forward);
      break;
    }
  }
}

/// A paired forward: attention_lse q, k, v -> o, lse [B, H, T] f32 (the lse buffer named after
/// o). A paired gradient: attention_grad_lse q, k, v, do, o, lse -> dq, dk, dv.
LogicalResult Lowering::lowerPairedAttention(Operation *op, ArrayRef<Attribute> ins,
                                             ArrayRef<Attribute> outs, OpBuilder &body) {
  Location loc = op->getLoc();
  SmallVector<NamedAttribute> params(op->getAttrs());
  if (auto forward = dyn_cast<AttentionOp>(op)) {
    auto oType = cast<RankedTensorType>(forward.getResult().getType());
    auto lseType = RankedTensorType::get(oType.getShape().drop_back(),
                                         Float32Type::get(op->getContext()));
    auto o = cast<FlatSymbolRefAttr>(outs[0]);
    FlatSymbolRefAttr lse = newBuffer((o.getValue() + ".lse").str(), lseType, "transient", loc);
    lseOf[op] = lse;
    launch(body, loc, "attention_lse", params, ins, {o, lse});
    ++numSavedLse;
    return success();
  }
  Operation *forward = forwardOfGrad.lookup(op);
  FlatSymbolRefAttr lse = lseOf.lookup(forward);
  if (!lse)
    return op->emitOpError("is paired with an attention that was not lowered before it");
  SmallVector<Attribute> gradIns(ins.begin(), ins.end());
  gradIns.push_back(bufferOf.lookup(forward->getResult(0)));
  gradIns.push_back(lse);
  launch(body, loc, "attention_grad_lse", params, gradIns, outs);
  return success();
}

/// softcap_ce(h [N, D], w [V, D], y [N]) -> ce [N] and softcap_ce_grad(h, w, y, dce) -> dh,
/// dw [V, D] f32 become blocks of R rows (R a multiple of 128 with R·V f32 logits within
/// softcapCeBlockBytes; one block, and no slice or concat, when all N rows fit):
///   slice h -> h_b [R, D]                                       (several blocks only)
///   gemm h_b, w -> L [R, V] f32 transpose_b                      logits, fp32
///   softcap_ce:      softcap_ce_rows L, y -> ce_b [R] {cap, row}
///   softcap_ce_grad: softcap_ce_rows_grad L, y, dce -> G [R, V] {cap, row} (h's type)
///                    gemm G, w -> dh_b [R, D]                     dh = dℓ·w
///                    gemm G, h_b -> dw transpose_a {beta 1 after the first block}
///   concat ce_b / dh_b -> ce / dh                               (several blocks only)
/// so the [N, V] logits never exist at once and the products run on the GEMM library.
LogicalResult Lowering::lowerSoftcapCe(Operation *op, ArrayRef<Attribute> ins,
                                       ArrayRef<Attribute> outs, OpBuilder &body) {
  Location loc = op->getLoc();
  MLIRContext *context = op->getContext();
  const bool grad = isa<SoftcapCeGradOp>(op);
  auto h = cast<FlatSymbolRefAttr>(ins[0]), w = cast<FlatSymbolRefAttr>(ins[1]),
       targets = cast<FlatSymbolRefAttr>(ins[2]);
  auto hType = cast<RankedTensorType>(op->getOperand(0).getType());
  auto wType = cast<RankedTensorType>(op->getOperand(1).getType());
  if (hType.getRank() != 2 || wType.getRank() != 2)
    return op->emitOpError("needs h [N, D] and w [V, D] to become a plan");
  const int64_t N = hType.getDimSize(0), D = hType.getDimSize(1), V = wType.getDimSize(0);
  if (N == 0 || V == 0 || D == 0)
    return op->emitOpError("has an empty operand (N = ")
           << N << ", D = " << D << ", V = " << V << "), which a plan cannot run";
  if (hType.getElementType() != wType.getElementType())
    return op->emitOpError("needs h and w of one element type to become a plan");
  // Block rows: whole multiples of 128 within the byte budget, spread evenly.
  constexpr int64_t kRowQuantum = 128;
  const int64_t budgetRows = std::max<int64_t>(kRowQuantum, softcapCeBlockBytes / (4 * V));
  const int64_t numBlocks = llvm::divideCeil(N, budgetRows);
  const int64_t rows = std::min<int64_t>(
      N, static_cast<int64_t>(llvm::alignTo(llvm::divideCeil(N, numBlocks), kRowQuantum)));
  Type f32 = Float32Type::get(context), hElement = hType.getElementType();
  std::string base = pathOf(loc);
  if (base.empty())
    base = "softcap_ce";
  FloatAttr cap = op->getAttrOfType<FloatAttr>("cap");

  SmallVector<Attribute> blockResults;
  FlatSymbolRefAttr logits, dlogits;
  int64_t logitsRows = -1;
  for (int64_t first = 0; first < N; first += rows) {
    const int64_t count = std::min(rows, N - first);
    const bool whole = count == N;
    FlatSymbolRefAttr hBlock = h;
    if (!whole) {
      hBlock = newBuffer(base + ".rows_h", RankedTensorType::get({count, D}, hElement),
                         "transient", loc);
      launch(body, loc, "slice",
             {body.getNamedAttr("dim", body.getI64IntegerAttr(0)),
              body.getNamedAttr("start", body.getI64IntegerAttr(first)),
              body.getNamedAttr("size", body.getI64IntegerAttr(count))},
             {h}, {hBlock});
    }
    if (count != logitsRows) {
      logits = newBuffer(base + ".logits", RankedTensorType::get({count, V}, f32), "transient",
                         loc);
      if (grad)
        dlogits = newBuffer(base + ".dlogits", RankedTensorType::get({count, V}, hElement),
                            "transient", loc);
      logitsRows = count;
    }
    gemm(body, loc, hBlock, w, logits, /*transposeA=*/false, /*transposeB=*/true);
    SmallVector<NamedAttribute> params = {
        body.getNamedAttr("cap", cap),
        body.getNamedAttr("row", body.getI64IntegerAttr(first))};
    if (!grad) {
      FlatSymbolRefAttr ce =
          whole ? cast<FlatSymbolRefAttr>(outs[0])
                : newBuffer(base + ".rows_ce", RankedTensorType::get({count}, f32), "transient",
                            loc);
      launch(body, loc, "softcap_ce_rows", params, {logits, targets}, {ce});
      if (!whole)
        blockResults.push_back(ce);
      continue;
    }
    launch(body, loc, "softcap_ce_rows_grad", params, {logits, targets, ins[3]}, {dlogits});
    FlatSymbolRefAttr dh =
        whole ? cast<FlatSymbolRefAttr>(outs[0])
              : newBuffer(base + ".rows_dh", RankedTensorType::get({count, D}, hElement),
                          "transient", loc);
    gemm(body, loc, dlogits, w, dh, /*transposeA=*/false, /*transposeB=*/false);
    gemm(body, loc, dlogits, hBlock, cast<FlatSymbolRefAttr>(outs[1]), /*transposeA=*/true,
         /*transposeB=*/false, 1.0f, first == 0 ? 0.0f : 1.0f);
    if (!whole)
      blockResults.push_back(dh);
  }
  if (!blockResults.empty())
    launch(body, loc, "concat", {body.getNamedAttr("dim", body.getI64IntegerAttr(0))},
           blockResults, {outs[0]});
  return success();
}

/// normuon_update(g [..., m, n], ctl; state w, M, v [..., m]) becomes, with p = min(m, n),
/// q = max(m, n) and new transient buffers (leading dims kept):
///   normuon_norm     g, ctl, M        -> sq [..., m, 2] f32   (row sums of G̃²)
///   normuon_prepare  g, ctl, M, sq    -> M, X0 [..., p, q] bf16 (X0 = bf16(Y/(‖Y‖+1e-7)))
///   5 × (X, X' ping-pong over X0 / X1):
///     gemm X, X -> A transpose_b                      A = bf16(X Xᵀ)        [..., p, p]
///     reshape A -> B; gemm A, A -> B {c, beta b}      B = bf16(b·A + c·A A)
///     reshape X -> X'; gemm B, X -> X' {1, beta a}    X' = bf16(a·X + B X)
///   normuon_rows     X1, ctl, v       -> v, rs [..., m, 2] f32 (NorMuon only)
///   normuon_finish   X1, g, ctl, w, v, rs (sq for Muon, unread) -> w
/// Every GEMM accumulates in fp32 and rounds its bf16 result once, the rounding points of
/// the fused reference kernel.
LogicalResult Lowering::lowerNormuon(NormuonUpdateOp op, ArrayRef<Attribute> ins,
                                     OpBuilder &body) {
  constexpr float kA = 3.4445f, kB = -4.7750f, kC = 2.0315f;
  Location loc = op.getLoc();
  MLIRContext *context = op.getContext();
  auto g = cast<FlatSymbolRefAttr>(ins[0]), ctl = cast<FlatSymbolRefAttr>(ins[1]),
       w = cast<FlatSymbolRefAttr>(ins[2]), M = cast<FlatSymbolRefAttr>(ins[3]),
       v = cast<FlatSymbolRefAttr>(ins[4]);
  auto gType = cast<RankedTensorType>(op.getGrad().getType());
  ArrayRef<int64_t> shape = gType.getShape();
  if (shape.size() < 2)
    return op.emitOpError("needs a gradient of rank >= 2 to become a plan");
  const int64_t m = shape[shape.size() - 2], n = shape.back();
  SmallVector<int64_t> sumsShape(shape.drop_back()), xShape(shape.drop_back(2)),
      aShape(shape.drop_back(2));
  sumsShape.push_back(2);
  xShape.append({std::min(m, n), std::max(m, n)});
  aShape.append({std::min(m, n), std::min(m, n)});
  Type f32 = Float32Type::get(context), bf16 = BFloat16Type::get(context);
  // Transient buffers are named after the weight they update (the op's path names the
  // producer of its gradient).
  std::string base = w.getValue().str();
  auto sq = newBuffer(base + ".muon_sumsq", RankedTensorType::get(sumsShape, f32), "transient",
                      loc);
  FlatSymbolRefAttr x[2] = {
      newBuffer(base + ".muon_x0", RankedTensorType::get(xShape, bf16), "transient", loc),
      newBuffer(base + ".muon_x1", RankedTensorType::get(xShape, bf16), "transient", loc)};
  auto a = newBuffer(base + ".muon_a", RankedTensorType::get(aShape, bf16), "transient", loc);
  auto b = newBuffer(base + ".muon_b", RankedTensorType::get(aShape, bf16), "transient", loc);

  auto attr = [&](StringRef name) { return body.getNamedAttr(name, op->getAttr(name)); };
  SmallVector<NamedAttribute> momentumParams = {attr("beta1"), attr("nesterov")};
  launch(body, loc, "normuon_norm", momentumParams, {g, ctl, M}, {sq});
  launch(body, loc, "normuon_prepare", momentumParams, {g, ctl, M, sq}, {M, x[0]});
  auto gemm = [&](FlatSymbolRefAttr lhs, FlatSymbolRefAttr rhs, FlatSymbolRefAttr out,
                  bool transposeB, float alpha, float beta) {
    GemmOp::create(body, loc, lhs, rhs, out, UnitAttr(),
                   transposeB ? body.getUnitAttr() : UnitAttr(), body.getF32FloatAttr(alpha),
                   body.getF32FloatAttr(beta), body.getI32IntegerAttr(0));
    ++numInstructions;
  };
  for (int iter = 0; iter < 5; ++iter) {
    FlatSymbolRefAttr cur = x[iter % 2], next = x[(iter + 1) % 2];
    gemm(cur, cur, a, /*transposeB=*/true, 1.0f, 0.0f);
    launch(body, loc, "reshape", {}, {a}, {b});
    gemm(a, a, b, /*transposeB=*/false, kC, kB);
    launch(body, loc, "reshape", {}, {cur}, {next});
    gemm(b, cur, next, /*transposeB=*/false, 1.0f, kA);
  }
  FlatSymbolRefAttr result = x[1]; // five steps: X0 -> X1 -> ... -> X1
  FlatSymbolRefAttr rowSums = sq;
  if (op.getNormalize() != 0) {
    rowSums = newBuffer(base + ".muon_rowsums", RankedTensorType::get(sumsShape, f32),
                        "transient", loc);
    launch(body, loc, "normuon_rows", {attr("beta2")}, {result, ctl, v}, {v, rowSums});
  }
  SmallVector<NamedAttribute> finishParams = {attr("lr"), attr("weight_decay"),
                                              attr("normalize"), attr("cautious_wd")};
  if (op->getAttr("cautious_wd_mode"))
    finishParams.push_back(attr("cautious_wd_mode"));
  launch(body, loc, "normuon_finish", finishParams, {result, g, ctl, w, v, rowSums}, {w});
  return success();
}

LogicalResult Lowering::lowerFunction(func::FuncOp fn) {
  if (!fn.getBody().hasOneBlock())
    return fn.emitOpError("needs a single-block body to become a straight-line program");
  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(module.getBody());
  auto program = ProgramOp::create(builder, fn.getLoc(), fn.getSymNameAttr(), DictionaryAttr(),
                                   DictionaryAttr());
  program.getBody().push_back(new Block());
  OpBuilder body = OpBuilder::atBlockEnd(&program.getBody().front());

  auto bindingName = [&](DictionaryAttr attrs, StringRef fallback) {
    if (attrs)
      if (auto name = attrs.getAs<StringAttr>("fusion.name"))
        return name.str();
    return fallback.str();
  };
  SmallVector<NamedAttribute> inputs, outputs;
  for (BlockArgument arg : fn.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    if (!type)
      return fn.emitOpError("argument ") << arg.getArgNumber() << " is not a ranked tensor";
    std::string name =
        bindingName(fn.getArgAttrDict(arg.getArgNumber()), llvm::formatv("arg{0}", arg.getArgNumber()).str());
    FlatSymbolRefAttr buffer = newBuffer(fn.getSymName().str() + "." + name, type, "transient",
                                         fn.getLoc());
    bufferOf[arg] = buffer;
    inputs.push_back(builder.getNamedAttr(name, buffer));
  }
  pairAttention(fn);
  for (Operation &op : fn.getBody().front()) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      for (auto [i, value] : llvm::enumerate(ret.getOperands())) {
        std::string name =
            bindingName(fn.getResultAttrDict(i), llvm::formatv("result{0}", i).str());
        outputs.push_back(builder.getNamedAttr(name, bufferOf.lookup(value)));
      }
      continue;
    }
    if (!isa<FusionDialect>(op.getDialect()))
      return op.emitOpError("cannot be lowered to a plan instruction");
    if (failed(lowerOp(&op, body, fn.getSymName())))
      return failure();
  }
  if (!inputs.empty())
    program.setInputsAttr(builder.getDictionaryAttr(inputs));
  if (!outputs.empty())
    program.setOutputsAttr(builder.getDictionaryAttr(outputs));
  return success();
}

LogicalResult Lowering::run() {
  MLIRContext *context = module.getContext();
  SmallVector<func::FuncOp> functions(module.getOps<func::FuncOp>());
  SmallVector<ParameterOp> params(module.getOps<ParameterOp>());
  // A module that is already fplan IR (no functions, no parameters) passes through.
  if (functions.empty() && params.empty())
    return success();
  if (!module.getOps<ProgramOp>().empty())
    return module.emitError("mixes tensor-level functions with fplan programs: lower a "
                            "module once");

  // 1. Arenas and declarations go first; the init program and the functions' programs
  //    follow. The anchor is a placeholder that marks where declarations end.
  builder.setInsertionPointToStart(module.getBody());
  auto persistent = ArenaOp::create(builder, module.getLoc(), "params", true, 1);
  auto transient = ArenaOp::create(builder, module.getLoc(), "transient", false, 1);
  builder.setInsertionPointAfter(transient);
  auto anchor = ArenaOp::create(builder, module.getLoc(), "__decl_end", false, 1);
  declAnchor = anchor;
  for (StringRef reserved : {"params", "transient", "__decl_end", "init"})
    usedNames.insert(reserved);
  for (func::FuncOp fn : functions)
    usedNames.insert(fn.getSymName());

  // 2. Parameters: persistent buffers and their init kernels.
  int64_t effectiveSeed = seed;
  if (effectiveSeed < 0) {
    auto attr = module->getAttrOfType<IntegerAttr>("fusion.seed");
    effectiveSeed = attr ? attr.getInt() : 1234;
  }
  builder.setInsertionPointToEnd(module.getBody());
  auto init = ProgramOp::create(builder, module.getLoc(), builder.getStringAttr("init"),
                                DictionaryAttr(), DictionaryAttr());
  init.getBody().push_back(new Block());
  OpBuilder initBody = OpBuilder::atBlockEnd(&init.getBody().front());
  for (ParameterOp param : params)
    usedNames.insert(param.getSymName());
  for (auto [index, param] : llvm::enumerate(params)) {
    RankedTensorType type = param.getTensorType();
    int64_t &end = arenaSizes["params"];
    {
      OpBuilder::InsertionGuard guard(builder);
      builder.setInsertionPoint(declAnchor);
      StringRef opt = param.getOptimizer();
      StringRef role = opt == "state"   ? "optimizer_state"
                       : opt == "none"  ? "model_buffer"
                       : opt == "cache" ? "inference_state"
                                        : "weight";
      BufferOp::create(builder, param.getLoc(), param.getSymNameAttr(), TypeAttr::get(type),
                       FlatSymbolRefAttr::get(context, "params"), builder.getI64IntegerAttr(end),
                       builder.getStringAttr(role));
    }
    end = alignTo(end + byteSize(type));
    ++numBuffers;
    bufferTypes[param.getSymName()] = type;
    auto buffer = FlatSymbolRefAttr::get(param.getSymNameAttr());
    paramBuffers[param.getSymName()] = buffer;
    SmallVector<NamedAttribute> attrs = {
        builder.getNamedAttr("rule", param.getInitAttr()),
        builder.getNamedAttr("seed", builder.getI64IntegerAttr(effectiveSeed)),
        builder.getNamedAttr("param_index", builder.getI64IntegerAttr(index))};
    for (StringRef key : {"std", "low", "high"})
      if (Attribute value = param->getAttr(key))
        attrs.push_back(builder.getNamedAttr(key, value));
    // One kernel per parameter: the parameter index is part of its description.
    std::string kernelName = ("init." + param.getSymName()).str();
    usedNames.insert(kernelName);
    {
      OpBuilder::InsertionGuard guard(builder);
      builder.setInsertionPoint(declAnchor);
      KernelOp::create(builder, param.getLoc(), builder.getStringAttr(kernelName),
                       builder.getStringAttr("init_param"), builder.getDictionaryAttr(attrs),
                       StringAttr(), StringAttr());
    }
    ++numKernels;
    LaunchOp::create(initBody, param.getLoc(), FlatSymbolRefAttr::get(context, kernelName),
                     initBody.getArrayAttr({}), initBody.getArrayAttr({buffer}),
                     initBody.getDenseI64ArrayAttr({1, 1, 1}),
                     initBody.getDenseI64ArrayAttr({1, 1, 1}), initBody.getI64IntegerAttr(0),
                     initBody.getDenseI64ArrayAttr({}), initBody.getI32IntegerAttr(0));
    ++numInstructions;
  }

  // 3. Functions become programs.
  for (func::FuncOp fn : functions)
    if (failed(lowerFunction(fn)))
      return failure();

  // 4. Arena sizes, then drop the tensor-level IR and the anchor.
  persistent.setSize(std::max<int64_t>(arenaSizes["params"], kAlignment));
  transient.setSize(std::max<int64_t>(arenaSizes["transient"], kAlignment));
  anchor.erase();
  for (func::FuncOp fn : functions)
    fn.erase();
  for (ParameterOp param : params)
    param.erase();
  module->removeAttr("fusion.seed");
  // The mesh the collectives run over becomes the plan's.
  if (auto mesh = module->getAttrOfType<DictionaryAttr>(kFusionMeshAttrName)) {
    module->setAttr(plan::kMeshAttrName, mesh);
    module->removeAttr(kFusionMeshAttrName);
  }
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// fusion-lower-to-plan
//===----------------------------------------------------------------------===//

struct LowerToPlanPass : impl::LowerToPlanPassBase<LowerToPlanPass> {
  using Base::Base;

  void runOnOperation() override {
    if (softcapCeBlockBytes < 1) {
      getOperation().emitError("fusion-lower-to-plan: softcap-ce-block-bytes must be positive, got ")
          << static_cast<int64_t>(softcapCeBlockBytes);
      return signalPassFailure();
    }
    Lowering lowering(getOperation(), seed, softcapCeBlockBytes, attentionSavesLse);
    if (failed(lowering.run()))
      return signalPassFailure();
    numSavedLse = lowering.numSavedLse;
    numBuffers = lowering.numBuffers;
    numKernels = lowering.numKernels;
    numInstructions = lowering.numInstructions;
  }
};

} // namespace mlir::fusion
