//===- AliasReshapes.cpp - reshape copies become views --------------------===//
//
// Part of the FusionLLM compiler.
//
// A `reshape` launch copies its input's bytes unchanged into a buffer of another shape.
// Where both can share those bytes, the launch goes and the output buffer becomes a view of
// the input (`fplan.view_of = @root`); fusion-plan-memory then places the view at its
// root's offset and keeps the root alive as long as any of its views.
//
//===----------------------------------------------------------------------===//

#include "passes/Plan/Passes.h"

#include "dialects/Plan/IR/PlanOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseSet.h"

namespace mlir::fusion::plan {

#define GEN_PASS_DEF_ALIASRESHAPESPASS
#include "passes/Plan/Passes.h.inc"

struct AliasReshapesPass : impl::AliasReshapesPassBase<AliasReshapesPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    MLIRContext *context = module.getContext();

    // Buffers named by more than one program, and every program's bound buffers: neither may
    // take part (their bytes outlive one program's instruction order).
    llvm::DenseMap<StringAttr, unsigned> programsNaming;
    llvm::DenseSet<StringAttr> bound;
    collectProgramBuffers(module, programsNaming, bound);

    for (ProgramOp program : module.getOps<ProgramOp>()) {
      Block &body = program.getBody().front();
      // Instruction index of every write, per buffer.
      llvm::DenseMap<StringAttr, SmallVector<int64_t, 2>> writes;
      SmallVector<Operation *> order;
      for (Operation &op : body) {
        for (FlatSymbolRefAttr ref : getWrittenBuffers(op))
          writes[ref.getAttr()].push_back(static_cast<int64_t>(order.size()));
        order.push_back(&op);
      }
      llvm::DenseMap<StringAttr, StringAttr> rootOf; // view -> root, within this program
      SmallVector<Operation *> erased;
      for (auto [index, op] : llvm::enumerate(order)) {
        auto launch = dyn_cast<LaunchOp>(op);
        if (!launch || launch.getIns().size() != 1 || launch.getOuts().size() != 1)
          continue;
        auto kernel = symbols.lookup<KernelOp>(launch.getKernel());
        if (!kernel || kernel.getKind() != "reshape")
          continue;
        StringAttr in = cast<FlatSymbolRefAttr>(launch.getIns()[0]).getAttr();
        StringAttr out = cast<FlatSymbolRefAttr>(launch.getOuts()[0]).getAttr();
        StringAttr root = rootOf.lookup(in) ? rootOf.lookup(in) : in;
        auto rootBuffer = symbols.lookup<BufferOp>(root);
        auto outBuffer = symbols.lookup<BufferOp>(out);
        if (!rootBuffer || !outBuffer || root == out)
          continue;
        auto arena = symbols.lookup<ArenaOp>(rootBuffer.getArena());
        if (!arena || arena.getPersistent() || rootBuffer.getArena() != outBuffer.getArena())
          continue;
        if (rootBuffer.getTensorType().getElementType() !=
                outBuffer.getTensorType().getElementType() ||
            outBuffer.getSizeInBytes() > rootBuffer.getSizeInBytes())
          continue;
        if (programsNaming.lookup(root) != 1 || programsNaming.lookup(out) != 1 ||
            bound.contains(out) || outBuffer->hasAttr(kViewOfAttrName) ||
            rootBuffer->hasAttr(kViewOfAttrName))
          continue;
        // The output is written only by this copy, and the root not after it: then the view
        // reads exactly the bytes the copy would have held, wherever it is read.
        if (writes.lookup(out).size() != 1)
          continue;
        bool rootWrittenLater = llvm::any_of(
            writes.lookup(root), [&](int64_t w) { return w > static_cast<int64_t>(index); });
        if (rootWrittenLater)
          continue;
        outBuffer->setAttr(kViewOfAttrName, FlatSymbolRefAttr::get(context, root));
        rootOf[out] = root;
        erased.push_back(op);
      }
      for (Operation *op : erased)
        op->erase();
      numAliased += erased.size();
    }
    // Reshape kernels whose every launch became a view have nothing left to run.
    SmallVector<KernelOp> unused;
    for (KernelOp kernel : module.getOps<KernelOp>())
      if (kernel.getKind() == "reshape" && SymbolTable::symbolKnownUseEmpty(kernel, module))
        unused.push_back(kernel);
    for (KernelOp kernel : unused)
      kernel.erase();
  }
};

} // namespace mlir::fusion::plan
