//===- PlanOps.cpp - fplan dialect ops ------------------------------------===//
//
// Part of the FusionLLM compiler.
//
// Verifiers of the fplan ops. Rules that relate an instruction to the module's symbols
// (buffers, kernels, arenas, mesh) run in verifySymbolUses, after every symbol exists.
//
//===----------------------------------------------------------------------===//

#include "dialects/Plan/IR/PlanOps.h"
#include "dialects/Fusion/IR/ShapeRules.h"
#include "runtime/include/fusion/rt/fused_elementwise.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::fusion;
using namespace mlir::fusion::plan;
namespace fused = ::fusion::rt::fused;

#include "dialects/Plan/IR/PlanEnums.cpp.inc"

#define GET_OP_CLASSES
#include "dialects/Plan/IR/PlanOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

ArrayRef<KernelKindInfo> mlir::fusion::plan::getKernelKinds() {
  // docs/op-kinds.md is the contract; the runtime's CPU backend implements each kind.
  static const KernelKindInfo kinds[] = {
      {"fill", 0, 1, true},
      {"add", 2, 1, true},
      {"sub", 2, 1, true},
      {"mul", 2, 1, true},
      {"silu", 1, 1, true},
      {"sigmoid", 1, 1, true},
      {"exp", 1, 1, true},
      {"neg", 1, 1, true},
      {"softplus", 1, 1, true},
      {"scale", 1, 1, true},
      {"swiglu", 2, 1, true},
      {"softcap", 1, 1, true},
      {"cast", 1, 1, true},
      // fplan-fuse-elementwise: a chain of the kinds above, its `expr` program per element.
      {"fused_elementwise", kVariadic, 1, true},
      {"reshape", 1, 1, true},
      {"transpose", 1, 1, true},
      {"slice", 1, 1, false},
      {"concat", kVariadic, 1, false},
      {"broadcast", 1, 1, false},
      {"sum", 1, 1, false},
      {"matmul", 2, 1, false},
      {"rms_norm", 2, 1, false},
      {"l2_norm", 1, 1, true},
      {"embedding", 2, 1, false},
      {"rope", 1, 1, true},
      {"attention", 3, 1, false},
      // attention + its row log-sum-exp [B, H, T] f32, saved for attention_grad_lse.
      {"attention_lse", 3, 2, false},
      {"causal_conv1d", 2, 1, false},
      {"gated_delta_rule", 5, 1, false},
      {"moe_route", 2, 3, false},
      {"moe_dispatch", 2, 3, false},
      {"grouped_matmul", 3, 1, false},
      {"moe_combine", 3, 1, false},
      {"moe_balance_loss", 2, 1, false},
      {"cross_entropy", 2, 1, false},
      {"init_param", 0, 1, false},
      // Training kinds (docs/op-kinds.md, "Training kinds").
      {"activation_grad", 2, 1, true},
      {"swiglu_grad", 3, 2, false},
      {"rms_norm_grad", 3, 2, false},
      {"l2_norm_grad", 2, 1, false},
      {"rope_grad", 1, 1, true},
      {"attention_grad", 4, 3, false},
      // attention_grad given the forward's o and lse (q, k, v, do, o, lse -> dq, dk, dv).
      {"attention_grad_lse", 6, 3, false},
      {"causal_conv1d_grad", 3, 2, false},
      {"gated_delta_rule_grad", 6, 5, false},
      {"embedding_grad", 2, 1, false},
      {"slice_grad", 1, 1, false},
      {"moe_route_grad", 3, 1, false},
      {"moe_dispatch_grad", 2, 1, false},
      {"moe_combine_grad", 4, 2, false},
      {"grouped_matmul_grad", 4, 2, false},
      {"moe_balance_loss_grad", 3, 1, false},
      {"cross_entropy_grad", 3, 1, false},
      {"softcap_ce", 3, 1, false},
      {"softcap_ce_grad", 4, 2, false},
      // softcap_ce(_grad) as the plans run them (fusion-lower-to-plan): row blocks of logits
      // by fplan.gemm, then these per-row kernels.
      {"softcap_ce_rows", 2, 1, false},
      {"softcap_ce_rows_grad", 3, 1, false},
      {"step_control", 3, 1, false},
      {"adamw_update", 5, 3, false},
      {"normuon_update", 5, 3, false},
      // normuon_update as the plans run it (fusion-lower-to-plan): norm, prepare, the NS5
      // GEMMs, rows (NorMuon only), finish.
      {"normuon_norm", 3, 1, false},
      {"normuon_prepare", 4, 2, false},
      {"normuon_rows", 3, 2, false},
      {"normuon_finish", 6, 1, false},
      {"moe_bias_update", 4, 2, false},
      // Inference kinds (docs/op-kinds.md, "Inference kinds"): caches are ins and outs.
      {"rope_at", 2, 1, false},
      {"kv_cache_attention", 6, 3, false},
      {"causal_conv1d_step", 3, 2, false},
      {"gated_delta_step", 6, 2, false},
  };
  return kinds;
}

const KernelKindInfo *mlir::fusion::plan::lookupKernelKind(StringRef kind) {
  for (const KernelKindInfo &info : getKernelKinds())
    if (info.kind == kind)
      return &info;
  return nullptr;
}

int64_t mlir::fusion::plan::getElementByteSize(Type type) {
  return llvm::divideCeil(type.getIntOrFloatBitWidth(), 8);
}

SmallVector<FlatSymbolRefAttr> mlir::fusion::plan::getInstructionBuffers(Operation &op) {
  SmallVector<FlatSymbolRefAttr> refs;
  if (auto launch = dyn_cast<LaunchOp>(op)) {
    for (Attribute a : llvm::concat<const Attribute>(launch.getIns(), launch.getOuts()))
      refs.push_back(cast<FlatSymbolRefAttr>(a));
  } else if (auto gemm = dyn_cast<GemmOp>(op)) {
    refs = {gemm.getAAttr(), gemm.getBAttr(), gemm.getCAttr()};
  } else if (auto coll = dyn_cast<CollectiveOp>(op)) {
    refs = {coll.getSendAttr(), coll.getRecvAttr()};
  }
  return refs;
}

SmallVector<FlatSymbolRefAttr> mlir::fusion::plan::getWrittenBuffers(Operation &op) {
  SmallVector<FlatSymbolRefAttr> refs;
  if (auto launch = dyn_cast<LaunchOp>(op))
    for (Attribute a : launch.getOuts())
      refs.push_back(cast<FlatSymbolRefAttr>(a));
  else if (auto gemm = dyn_cast<GemmOp>(op))
    refs.push_back(gemm.getCAttr());
  else if (auto coll = dyn_cast<CollectiveOp>(op))
    refs.push_back(coll.getRecvAttr());
  return refs;
}

void mlir::fusion::plan::collectProgramBuffers(
    ModuleOp module, llvm::DenseMap<StringAttr, unsigned> &programsNaming,
    llvm::DenseSet<StringAttr> &bound) {
  for (ProgramOp program : module.getOps<ProgramOp>()) {
    llvm::DenseSet<StringAttr> seen;
    for (Operation &op : program.getBody().front())
      for (FlatSymbolRefAttr ref : getInstructionBuffers(op))
        if (seen.insert(ref.getAttr()).second)
          ++programsNaming[ref.getAttr()];
    for (DictionaryAttr bindings : {program.getInputsAttr(), program.getOutputsAttr()})
      if (bindings)
        for (NamedAttribute b : bindings)
          bound.insert(cast<FlatSymbolRefAttr>(b.getValue()).getAttr());
  }
}

int64_t BufferOp::getSizeInBytes() {
  RankedTensorType type = getTensorType();
  return type.getNumElements() * getElementByteSize(type.getElementType());
}

/// Resolves `ref` to a buffer, or emits an error naming `role` on `op`.
static BufferOp lookupBuffer(Operation *op, SymbolTableCollection &symbols,
                             FlatSymbolRefAttr ref, StringRef role) {
  auto buffer = symbols.lookupNearestSymbolFrom<BufferOp>(op, ref);
  if (!buffer)
    op->emitOpError() << role << " " << ref << " does not name an fplan.buffer";
  return buffer;
}

/// The kind fplan-fuse-elementwise creates; its `expr` grammar is shared with the runtime.
static constexpr llvm::StringLiteral kFusedElementwiseKind = "fused_elementwise";

/// `type` as the IR prints it ("bf16").
static std::string getElementTypeName(Type type) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << type;
  return text;
}

/// Reads a fused_elementwise kernel's `expr` param, or emits a located error on the kernel.
static LogicalResult parseFusedElementwiseExpr(KernelOp kernel, fused::Program &program) {
  DictionaryAttr params = kernel.getParamsAttr();
  auto expr = params ? params.getAs<StringAttr>("expr") : StringAttr();
  if (!expr)
    return kernel.emitOpError("of kind '")
           << kFusedElementwiseKind << "' needs a string param 'expr' (its program)";
  std::string error;
  if (!fused::parse(expr.getValue(), program, error))
    return kernel.emitOpError("has an invalid expr \"") << expr.getValue() << "\": " << error;
  return success();
}

//===----------------------------------------------------------------------===//
// BufferOp
//===----------------------------------------------------------------------===//

LogicalResult BufferOp::verifySymbolUses(SymbolTableCollection &symbols) {
  // buffer_c1
  auto arena = symbols.lookupNearestSymbolFrom<ArenaOp>(*this, getArenaAttr());
  if (!arena)
    return emitOpError("arena ") << getArenaAttr() << " does not name an fplan.arena";
  // buffer_c4
  if (std::optional<StringRef> role = getRole()) {
    if (*role != "weight" && *role != "model_buffer" && *role != "optimizer_state" &&
        *role != "inference_state")
      return emitOpError("unknown role '")
             << *role << "'; roles: weight, model_buffer, optimizer_state, inference_state";
    if (!arena.getPersistent())
      return emitOpError("has role '") << *role << "' but lives in the transient arena "
                                       << getArenaAttr();
  }
  int64_t bytes = getSizeInBytes();
  int64_t elementBytes = getElementByteSize(getTensorType().getElementType());
  // buffer_c3
  if (getOffset() % elementBytes != 0)
    return emitOpError("offset ") << getOffset() << " is not a multiple of the element size ("
                                  << elementBytes << " bytes)";
  // buffer_c2
  if (getOffset() > arena.getSize() || bytes > arena.getSize() - getOffset())
    return emitOpError("ends at byte ")
           << getOffset() + bytes << " (offset " << getOffset() << " + " << bytes
           << " bytes), past the end of arena " << getArenaAttr() << " (" << arena.getSize()
           << " bytes)";
  return success();
}

//===----------------------------------------------------------------------===//
// KernelOp
//===----------------------------------------------------------------------===//

LogicalResult KernelOp::verify() {
  // kernel_c1
  if (!lookupKernelKind(getKind())) {
    InFlightDiagnostic diag = emitOpError("unknown kernel kind '") << getKind() << "'; known: ";
    llvm::interleaveComma(getKernelKinds(), diag,
                          [&](const KernelKindInfo &info) { diag << info.kind; });
    return diag;
  }
  // kernel_c2
  if (getSource().has_value() != getEntry().has_value())
    return emitOpError("expects 'source' and 'entry' together (device code needs both)");
  // kernel_c3
  if (getKind() == kFusedElementwiseKind) {
    fused::Program program;
    return parseFusedElementwiseExpr(*this, program);
  }
  return success();
}

//===----------------------------------------------------------------------===//
// ProgramOp
//===----------------------------------------------------------------------===//

LogicalResult ProgramOp::verifyRegions() {
  llvm::DenseSet<uint32_t> recorded;
  for (Operation &op : getBody().front()) {
    // program_c1
    if (!isa<LaunchOp, GemmOp, CollectiveOp, RecordOp, WaitOp>(op))
      return op.emitOpError("is not an fplan instruction and cannot appear in a program");
    if (auto record = dyn_cast<RecordOp>(op))
      recorded.insert(record.getEvent());
    // program_c2
    if (auto wait = dyn_cast<WaitOp>(op); wait && !recorded.contains(wait.getEvent()))
      return wait.emitOpError("waits for event ")
             << wait.getEvent() << ", which no earlier fplan.record in program "
             << getSymNameAttr() << " records";
  }
  return success();
}

LogicalResult ProgramOp::verifySymbolUses(SymbolTableCollection &symbols) {
  // program_c3
  for (DictionaryAttr bindings : {getInputsAttr(), getOutputsAttr()}) {
    if (!bindings)
      continue;
    for (NamedAttribute binding : bindings) {
      auto ref = dyn_cast<FlatSymbolRefAttr>(binding.getValue());
      if (!ref || !lookupBuffer(*this, symbols, ref, "binding '" + binding.getName().str() + "'"))
        return ref ? failure()
                   : emitOpError("binding '") << binding.getName().str()
                                              << "' must name a buffer (@name), got "
                                              << binding.getValue();
    }
  }
  return success();
}

/// Stream index of an instruction.
static uint32_t getStream(Operation &op) {
  return llvm::TypeSwitch<Operation *, uint32_t>(&op)
      .Case<LaunchOp, GemmOp, CollectiveOp, RecordOp, WaitOp>(
          [](auto instr) { return instr.getStream(); })
      .Default([](Operation *) { return 0u; });
}

unsigned ProgramOp::getNumStreams() {
  uint32_t highest = 0;
  for (Operation &op : getBody().front())
    highest = std::max(highest, getStream(op));
  return highest + 1;
}

unsigned ProgramOp::getNumEvents() {
  unsigned count = 0;
  for (Operation &op : getBody().front()) {
    if (auto record = dyn_cast<RecordOp>(op))
      count = std::max<unsigned>(count, record.getEvent() + 1);
    if (auto wait = dyn_cast<WaitOp>(op))
      count = std::max<unsigned>(count, wait.getEvent() + 1);
  }
  return count;
}

//===----------------------------------------------------------------------===//
// LaunchOp
//===----------------------------------------------------------------------===//

LogicalResult LaunchOp::verify() {
  // launch_c3
  for (auto [name, dims] : {std::pair<StringRef, ArrayRef<int64_t>>{"grid", getGrid()},
                            {"block", getBlock()}}) {
    if (dims.size() != 3 || llvm::any_of(dims, [](int64_t d) { return d <= 0; })) {
      InFlightDiagnostic diag = emitOpError("expects ") << name << " to have 3 positive entries, got [";
      llvm::interleaveComma(dims, diag);
      return diag << "]";
    }
  }
  // launch_c4
  if (getOuts().empty())
    return emitOpError("expects at least one output buffer");
  return success();
}

LogicalResult LaunchOp::verifySymbolUses(SymbolTableCollection &symbols) {
  // launch_c1
  auto kernel = symbols.lookupNearestSymbolFrom<KernelOp>(*this, getKernelAttr());
  if (!kernel)
    return emitOpError("kernel ") << getKernelAttr() << " does not name an fplan.kernel";
  // launch_c2
  SmallVector<BufferOp> buffers;
  for (auto [role, refs] : {std::pair<StringRef, ArrayAttr>{"input", getIns()},
                            {"output", getOuts()}}) {
    for (Attribute ref : refs) {
      BufferOp buffer = lookupBuffer(*this, symbols, cast<FlatSymbolRefAttr>(ref), role);
      if (!buffer)
        return failure();
      buffers.push_back(buffer);
    }
  }
  // launch_c5
  const KernelKindInfo *info = lookupKernelKind(kernel.getKind());
  if (!info)
    return success(); // the kernel's own verifier reports the unknown kind
  bool inputsOk = info->numInputs == kVariadic ? !getIns().empty()
                                               : getIns().size() == info->numInputs;
  if (!inputsOk || getOuts().size() != info->numOutputs)
    return emitOpError("kernel ")
           << getKernelAttr() << " of kind '" << kernel.getKind() << "' takes "
           << (info->numInputs == kVariadic ? std::string("1 or more")
                                            : std::to_string(info->numInputs))
           << " input(s) and " << info->numOutputs << " output(s), got "
           << getIns().size() << " and " << getOuts().size();
  if (info->elementwise) {
    int64_t numel = buffers.back().getTensorType().getNumElements();
    for (BufferOp buffer : buffers)
      if (buffer.getTensorType().getNumElements() != numel)
        return emitOpError("elementwise kernel '")
               << kernel.getKind() << "' needs buffers of one element count: @"
               << buffer.getSymName() << " has " << buffer.getTensorType().getNumElements()
               << ", the output has " << numel;
  }
  if (kernel.getKind() == kFusedElementwiseKind) {
    fused::Program program;
    if (failed(parseFusedElementwiseExpr(kernel, program)))
      return emitOpError("launches kernel ") << getKernelAttr() << ", whose expr is invalid";
    if (getIns().size() != program.numInputs)
      return emitOpError("kernel ")
             << getKernelAttr() << "'s expr reads " << program.numInputs
             << " input(s), the launch passes " << getIns().size();
    for (BufferOp buffer : buffers)
      if (Type type = buffer.getTensorType().getElementType();
          !type.isF32() && !type.isBF16() && !type.isF16())
        return emitOpError("fused_elementwise buffer @")
               << buffer.getSymName() << " has element type "
               << buffer.getTensorType().getElementType() << "; it takes f32, bf16 and f16";
    StringRef outType = fused::typeName(program.stmts[program.output].type);
    Type actual = buffers.back().getTensorType().getElementType();
    if (getElementTypeName(actual) != outType)
      return emitOpError("kernel ")
             << getKernelAttr() << " stores a " << outType << " value to out0, but @"
             << buffers.back().getSymName() << " holds " << actual;
  }
  if (kernel.getKind() == "rms_norm") {
    BufferOp input = buffers[0], weight = buffers[1], output = buffers[2];
    if (failed(verifyRmsNormShapes(getLoc(), input.getTensorType().getShape(),
                                   weight.getTensorType().getShape())))
      return failure();
    // The element type may differ (fplan-fuse-elementwise folds a following cast: the norm
    // computes each value in fp32 and rounds it once on the store).
    if (output.getTensorType().getShape() != input.getTensorType().getShape())
      return emitOpError("rms_norm output ")
             << output.getTensorType() << " must have the shape of its input "
             << input.getTensorType();
  }
  return success();
}

//===----------------------------------------------------------------------===//
// GemmOp
//===----------------------------------------------------------------------===//

LogicalResult GemmOp::verifySymbolUses(SymbolTableCollection &symbols) {
  // gemm_c1
  BufferOp a = lookupBuffer(*this, symbols, getAAttr(), "a");
  BufferOp b = a ? lookupBuffer(*this, symbols, getBAttr(), "b") : BufferOp();
  BufferOp c = b ? lookupBuffer(*this, symbols, getCAttr(), "c") : BufferOp();
  if (!c)
    return failure();
  // gemm_c2
  SmallVector<int64_t> shape;
  if (failed(inferMatmulShape(getLoc(), a.getTensorType().getShape(),
                              b.getTensorType().getShape(), getTransposeA(), getTransposeB(),
                              shape)))
    return failure();
  if (c.getTensorType().getShape() != ArrayRef<int64_t>(shape))
    return emitOpError("c has shape ")
           << formatShape(c.getTensorType().getShape()) << ", the product has "
           << formatShape(shape);
  // gemm_c3
  Type aType = a.getTensorType().getElementType(), bType = b.getTensorType().getElementType(),
       cType = c.getTensorType().getElementType();
  if (!isa<FloatType>(aType) || aType != bType || (cType != aType && !cType.isF32()))
    return emitOpError("a and b must share one float element type and c must have it or be "
                       "f32, got ")
           << aType << ", " << bType << " -> " << cType;
  return success();
}

//===----------------------------------------------------------------------===//
// CollectiveOp
//===----------------------------------------------------------------------===//

LogicalResult CollectiveOp::verifySymbolUses(SymbolTableCollection &symbols) {
  // collective_c1
  BufferOp send = lookupBuffer(*this, symbols, getSendAttr(), "send");
  BufferOp recv = send ? lookupBuffer(*this, symbols, getRecvAttr(), "recv") : BufferOp();
  if (!recv)
    return failure();
  if (send.getTensorType().getElementType() != recv.getTensorType().getElementType())
    return emitOpError("send and recv element types differ: ")
           << send.getTensorType().getElementType() << " vs "
           << recv.getTensorType().getElementType();
  // collective_c2
  auto module = (*this)->getParentOfType<ModuleOp>();
  auto mesh = module ? module->getAttrOfType<DictionaryAttr>(kMeshAttrName) : DictionaryAttr();
  auto size = mesh ? dyn_cast_or_null<IntegerAttr>(mesh.get(getAxis())) : IntegerAttr();
  if (!size || size.getInt() < 1)
    return emitOpError("mesh axis '") << getAxis() << "' is not in the module's "
                                      << kMeshAttrName << (mesh ? " " : " (absent)")
                                      << (mesh ? Attribute(mesh) : Attribute());
  // collective_c3
  int64_t n = size.getInt();
  int64_t s = send.getTensorType().getNumElements(), r = recv.getTensorType().getNumElements();
  int64_t expectedRecv = s;
  switch (getKind()) {
  case CollectiveKind::all_reduce:
  case CollectiveKind::all_to_all:
    break;
  case CollectiveKind::all_gather:
    expectedRecv = s * n;
    break;
  case CollectiveKind::reduce_scatter:
    if (s % n != 0)
      return emitOpError("reduce_scatter of ")
             << s << " elements over axis '" << getAxis() << "' of size " << n
             << " does not divide evenly";
    expectedRecv = s / n;
    break;
  }
  if (r != expectedRecv)
    return emitOpError() << stringifyCollectiveKind(getKind()) << " over axis '" << getAxis()
                         << "' (size " << n << ") of " << s << " elements needs a recv of "
                         << expectedRecv << " elements, got " << r;
  return success();
}
