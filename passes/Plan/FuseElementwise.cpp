//===- FuseElementwise.cpp - elementwise chains become one launch ---------===//
//
// Part of the FusionLLM compiler.
//
// A launch of an elementwise kind whose output only feeds one later elementwise launch is
// folded into that launch; by repetition a chain or tree of them becomes one launch of a
// `fused_elementwise` kernel whose `expr` (runtime/include/fusion/rt/fused_elementwise.h)
// computes every step per element, rounding each intermediate to the element type of the
// buffer it no longer needs. The intermediates lose their only writer and reader, so
// fusion-plan-memory gives them no bytes.
//
//===----------------------------------------------------------------------===//

#include "passes/Plan/Passes.h"

#include "dialects/Plan/IR/PlanOps.h"
#include "runtime/include/fusion/rt/fused_elementwise.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"

#include <optional>

namespace mlir::fusion::plan {

#define GEN_PASS_DEF_FUSEELEMENTWISEPASS
#include "passes/Plan/Passes.h.inc"

namespace {

namespace fused = ::fusion::rt::fused;

/// Limits of one fused launch: kernel parameters and straight-line code stay small.
constexpr size_t kMaxInputs = 8;
constexpr size_t kMaxStmts = 32;

/// The storage type of a float buffer, or nothing for types a fused kernel cannot hold.
std::optional<fused::ElemType> toElemType(Type type) {
  if (type.isF32())
    return fused::ElemType::F32;
  if (type.isBF16())
    return fused::ElemType::BF16;
  if (type.isF16())
    return fused::ElemType::F16;
  return std::nullopt;
}

/// A launch as the program of the fused launch it is, or will become part of.
struct Node {
  LaunchOp launch;
  /// Buffers the program reads (%inN = inputs[N]), distinct.
  SmallVector<StringAttr> inputs;
  std::vector<fused::Stmt> stmts;
  unsigned output = 0;
  int64_t numElements = 0;
  /// Launches folded into this one (erased when it is rewritten).
  SmallVector<Operation *> absorbed;
  /// Folded into a later node: nothing left to materialise.
  bool consumed = false;

  /// The value naming `buffer` as an input, adding it if new.
  fused::Value addInput(StringAttr buffer) {
    auto *it = llvm::find(inputs, buffer);
    if (it == inputs.end()) {
      inputs.push_back(buffer);
      it = inputs.end() - 1;
    }
    return {true, static_cast<unsigned>(it - inputs.begin())};
  }
};

} // namespace

struct FuseElementwisePass : impl::FuseElementwisePassBase<FuseElementwisePass> {
  using Base::Base;

  /// rms_norm / l2_norm launches P whose output X only a later `cast` launch C reads: P
  /// writes C's output Y directly (the norms compute each value in fp32 and round it once on
  /// the store, so Y's bytes are the same) and C goes. X must be transient, named by this
  /// program only, not bound or a view; Y must be written by C only and named by no
  /// instruction between P and C. Y then lives from P on while X (the wider type) no longer
  /// exists: the peak cannot rise. P gets a kernel of its new type signature (a kernel's
  /// launches share one).
  void foldCastsIntoNorms(ProgramOp program, SymbolTable &symbols,
                          const llvm::DenseMap<StringAttr, unsigned> &programsNaming,
                          const llvm::DenseSet<StringAttr> &excluded,
                          Block::iterator kernelInsertPt,
                          llvm::DenseSet<StringAttr> &touchedKernels,
                          SmallVector<StringAttr> &intermediates) {
    Block &body = program.getBody().front();
    llvm::DenseMap<Operation *, unsigned> position;
    llvm::DenseMap<StringAttr, SmallVector<Operation *, 2>> namedBy;
    llvm::DenseMap<StringAttr, unsigned> numWrites;
    for (Operation &op : body) {
      position[&op] = position.size();
      llvm::DenseSet<StringAttr> seen;
      for (FlatSymbolRefAttr ref : getInstructionBuffers(op))
        if (seen.insert(ref.getAttr()).second)
          namedBy[ref.getAttr()].push_back(&op);
      for (FlatSymbolRefAttr ref : getWrittenBuffers(op))
        ++numWrites[ref.getAttr()];
    }
    auto kindOf = [&](LaunchOp launch) {
      auto kernel = symbols.lookup<KernelOp>(launch.getKernelAttr().getAttr());
      return kernel ? kernel.getKind() : StringRef();
    };
    llvm::DenseMap<StringAttr, SmallVector<StringAttr, 1>> viewsOf;
    for (BufferOp buffer : symbols.getOp()->getRegion(0).getOps<BufferOp>())
      if (auto root = buffer->getAttrOfType<FlatSymbolRefAttr>(kViewOfAttrName))
        viewsOf[root.getAttr()].push_back(buffer.getSymNameAttr());
    llvm::StringMap<KernelOp> retyped;
    SmallVector<LaunchOp> casts;
    for (auto cast : body.getOps<LaunchOp>())
      if (kindOf(cast) == "cast" && cast.getIns().size() == 1 && cast.getOuts().size() == 1)
        casts.push_back(cast);
    for (LaunchOp castOp : casts) {
      StringAttr x = cast<FlatSymbolRefAttr>(castOp.getIns()[0]).getAttr();
      StringAttr y = cast<FlatSymbolRefAttr>(castOp.getOuts()[0]).getAttr();
      const auto &xUsers = namedBy.lookup(x);
      if (xUsers.size() != 2 || xUsers[1] != castOp.getOperation())
        continue;
      auto norm = dyn_cast<LaunchOp>(xUsers[0]);
      if (!norm || (kindOf(norm) != "rms_norm" && kindOf(norm) != "l2_norm") ||
          norm.getOuts().size() != 1 ||
          cast<FlatSymbolRefAttr>(norm.getOuts()[0]).getAttr() != x ||
          llvm::any_of(norm.getIns(),
                       [&](Attribute in) { return cast<FlatSymbolRefAttr>(in).getAttr() == x; }) ||
          norm.getStream() != castOp.getStream())
        continue;
      auto xBuffer = symbols.lookup<BufferOp>(x), yBuffer = symbols.lookup<BufferOp>(y);
      if (!xBuffer || !yBuffer)
        continue;
      auto arena = symbols.lookup<ArenaOp>(xBuffer.getArena());
      auto xType = xBuffer.getTensorType(), yType = yBuffer.getTensorType();
      if (!arena || arena.getPersistent() || excluded.contains(x) ||
          programsNaming.lookup(x) != 1 || numWrites.lookup(x) != 1 ||
          numWrites.lookup(y) != 1 || yBuffer->hasAttr(kViewOfAttrName) ||
          xType.getShape() != yType.getShape() ||
          !isa<FloatType>(yType.getElementType()) || !xType.getElementType().isF32())
        continue;
      // Y (and every view of it: Y may be a view's root, the GEMM's 2-D operand) is named
      // first by C, and no record (another stream's view of the order) lies between P and C.
      const unsigned from = position.lookup(norm), to = position.lookup(castOp);
      auto namedBefore = [&](StringAttr buffer) {
        const auto &users = namedBy.lookup(buffer);
        return !users.empty() && position.lookup(users.front()) < to;
      };
      if (namedBy.lookup(y).front() != castOp.getOperation() ||
          llvm::any_of(viewsOf.lookup(y), namedBefore) ||
          llvm::any_of(llvm::make_range(std::next(norm->getIterator()), castOp->getIterator()),
                       [](Operation &op) { return isa<RecordOp>(op); }) ||
          from >= to)
        continue;
      // A kernel of the norm's kind and params for the new output type, shared by every
      // norm folded the same way.
      auto normKernel = symbols.lookup<KernelOp>(norm.getKernelAttr().getAttr());
      std::string typeName;
      llvm::raw_string_ostream os(typeName);
      os << yType.getElementType();
      std::string name = (normKernel.getSymName() + ".to_" + typeName).str();
      KernelOp kernel = retyped.lookup(name);
      if (!kernel) {
        kernel = symbols.lookup<KernelOp>(name);
        if (!kernel) {
          kernel = cast<KernelOp>(normKernel->clone());
          kernel.setSymName(name);
          symbols.insert(kernel, kernelInsertPt);
        }
        retyped[name] = kernel;
      }
      touchedKernels.insert(normKernel.getSymNameAttr());
      touchedKernels.insert(castOp.getKernelAttr().getAttr());
      norm.setKernelAttr(FlatSymbolRefAttr::get(kernel.getSymNameAttr()));
      norm.setOutsAttr(ArrayAttr::get(norm->getContext(), {FlatSymbolRefAttr::get(y)}));
      intermediates.push_back(x);
      castOp->erase();
      ++numCastsFolded;
    }
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);

    // Buffers named by more than one program, every program's bound buffers, and views and
    // their roots: none may be an intermediate (their bytes outlive one program's order or
    // are shared).
    llvm::DenseMap<StringAttr, unsigned> programsNaming;
    llvm::DenseSet<StringAttr> excluded;
    collectProgramBuffers(module, programsNaming, excluded);
    for (BufferOp buffer : module.getOps<BufferOp>())
      if (auto root = buffer->getAttrOfType<FlatSymbolRefAttr>(kViewOfAttrName)) {
        excluded.insert(buffer.getSymNameAttr());
        excluded.insert(root.getAttr());
      }

    // Fused kernels, one per (expr, element types): the CUDA code is specialised to them.
    llvm::StringMap<KernelOp> fusedKernels;
    llvm::DenseSet<StringAttr> touchedKernels;
    SmallVector<StringAttr> intermediates;
    Block::iterator kernelInsertPt = module.getBody()->end();
    for (Operation &op : *module.getBody())
      if (isa<ProgramOp>(op)) {
        kernelInsertPt = op.getIterator();
        break;
      }

    // Casts into the norms that produce their input (a row reduction's epilogue).
    for (ProgramOp program : module.getOps<ProgramOp>())
      foldCastsIntoNorms(program, symbols, programsNaming, excluded, kernelInsertPt,
                         touchedKernels, intermediates);

    for (ProgramOp program : module.getOps<ProgramOp>()) {
      Block &body = program.getBody().front();
      // Readers (instructions) and writes of every buffer in this program.
      llvm::DenseMap<StringAttr, SmallVector<Operation *, 2>> readers;
      llvm::DenseMap<StringAttr, unsigned> numWrites;
      // Each instruction's position, and the last position that names each buffer: folding
      // a producer into its reader moves the producer's reads there, so its inputs may live
      // longer (a cast early in the forward whose one reader is in the backward would keep
      // its input alive across the peak: +19.5 GB on bench-1gpu before this check).
      llvm::DenseMap<Operation *, unsigned> position;
      llvm::DenseMap<StringAttr, unsigned> lastNamed;
      for (Operation &op : body) {
        const unsigned at = position.size();
        position[&op] = at;
        for (FlatSymbolRefAttr ref : getInstructionBuffers(op))
          lastNamed[ref.getAttr()] = at;
      }
      // Whether moving `producer`'s reads to position `at` cannot raise the memory peak: the
      // producer runs right before, or the transient inputs whose life it extends (named
      // last before `at`) hold no more bytes than the intermediate `out` that folding frees
      // over the whole range they are extended into.
      auto keepsPeak = [&](const Node &producer, StringAttr out, unsigned at) {
        if (position.lookup(producer.launch) + 1 >= at)
          return true;
        int64_t extended = 0;
        for (StringAttr input : producer.inputs) {
          if (lastNamed.lookup(input) >= at)
            continue;
          auto buffer = symbols.lookup<BufferOp>(input);
          auto arena = buffer ? symbols.lookup<ArenaOp>(buffer.getArena()) : ArenaOp();
          if (arena && arena.getPersistent())
            continue;
          extended += buffer ? buffer.getSizeInBytes() : 0;
        }
        auto intermediate = symbols.lookup<BufferOp>(out);
        return intermediate && extended <= intermediate.getSizeInBytes();
      };
      for (Operation &op : body) {
        llvm::DenseSet<StringAttr> written;
        for (FlatSymbolRefAttr ref : getWrittenBuffers(op)) {
          ++numWrites[ref.getAttr()];
          written.insert(ref.getAttr());
        }
        llvm::DenseSet<StringAttr> read;
        SmallVector<FlatSymbolRefAttr> all = getInstructionBuffers(op);
        SmallVector<FlatSymbolRefAttr> outs = getWrittenBuffers(op);
        // Inputs are the buffers named before the outputs (launch ins, gemm a/b, send).
        for (FlatSymbolRefAttr ref : ArrayRef(all).drop_back(outs.size()))
          if (read.insert(ref.getAttr()).second)
            readers[ref.getAttr()].push_back(&op);
        // A gemm with beta reads c; treat every gemm output as read too (it is never an
        // elementwise intermediate anyway).
        if (isa<GemmOp, CollectiveOp>(op))
          for (StringAttr w : written)
            if (read.insert(w).second)
              readers[w].push_back(&op);
      }

      std::vector<std::unique_ptr<Node>> nodes;
      // Nodes whose output may still be folded into its one reader, by output buffer.
      llvm::DenseMap<StringAttr, Node *> pending;

      for (Operation &op : body) {
        if (isa<RecordOp>(op)) {
          // Moving a read past a record could race with a stream that waits for it.
          pending.clear();
          continue;
        }
        auto launch = dyn_cast<LaunchOp>(op);
        std::unique_ptr<Node> node = launch ? buildNode(launch, symbols) : nullptr;
        if (node) {
          // Fold the pending producers of this launch's inputs.
          SmallVector<std::pair<StringAttr, Node *>> producers;
          for (Attribute ref : launch.getIns()) {
            StringAttr buffer = cast<FlatSymbolRefAttr>(ref).getAttr();
            Node *producer = pending.lookup(buffer);
            if (producer && producer->launch.getStream() == launch.getStream() &&
                producer->numElements == node->numElements &&
                keepsPeak(*producer, buffer, position.lookup(launch)) &&
                llvm::none_of(producers, [&](auto &p) { return p.first == buffer; }))
              producers.push_back({buffer, producer});
          }
          if (!producers.empty())
            node = foldProducers(launch, std::move(node), producers, pending);
        }
        // This instruction's writes make pending programs that read those buffers stale
        // (they would read the new bytes if moved past it).
        for (FlatSymbolRefAttr ref : getWrittenBuffers(op))
          for (auto it = pending.begin(); it != pending.end();) {
            auto current = it++;
            if (llvm::is_contained(current->second->inputs, ref.getAttr()))
              pending.erase(current);
          }
        if (!node)
          continue;
        // This launch's output may be folded into its reader.
        StringAttr out = cast<FlatSymbolRefAttr>(launch.getOuts()[0]).getAttr();
        auto outBuffer = symbols.lookup<BufferOp>(out);
        auto arena = outBuffer ? symbols.lookup<ArenaOp>(outBuffer.getArena()) : ArenaOp();
        const auto &outReaders = readers.lookup(out);
        bool foldable = arena && !arena.getPersistent() && !excluded.contains(out) &&
                        programsNaming.lookup(out) == 1 && numWrites.lookup(out) == 1 &&
                        outReaders.size() == 1 && outReaders.front() != &op &&
                        isa<LaunchOp>(outReaders.front()) &&
                        op.isBeforeInBlock(outReaders.front());
        if (foldable)
          pending[out] = node.get();
        nodes.push_back(std::move(node));
      }

      // Rewrite every chain's last launch as one fused launch.
      for (const std::unique_ptr<Node> &node : nodes) {
        if (node->consumed || node->absorbed.empty())
          continue;
        LaunchOp launch = node->launch;
        KernelOp kernel = getFusedKernel(*node, symbols, fusedKernels, kernelInsertPt);
        OpBuilder builder(launch);
        SmallVector<Attribute> ins;
        for (StringAttr input : node->inputs)
          ins.push_back(FlatSymbolRefAttr::get(input));
        LaunchOp::create(
            builder, launch.getLoc(), FlatSymbolRefAttr::get(kernel.getSymNameAttr()),
            builder.getArrayAttr(ins), launch.getOuts(), launch.getGridAttr(),
            launch.getBlockAttr(), launch.getSmemAttr(), launch.getArgsAttr(),
            launch.getStreamAttr());
        for (Operation *absorbed : node->absorbed) {
          auto folded = cast<LaunchOp>(absorbed);
          touchedKernels.insert(folded.getKernelAttr().getAttr());
          intermediates.push_back(cast<FlatSymbolRefAttr>(folded.getOuts()[0]).getAttr());
          absorbed->erase();
        }
        touchedKernels.insert(launch.getKernelAttr().getAttr());
        numLaunchesRemoved += node->absorbed.size();
        ++numFusedLaunches;
        launch.erase();
      }
    }
    // What the programs still name, from one walk (a use query per symbol would walk the
    // module once per intermediate: minutes on an 8-micro-batch step).
    llvm::DenseSet<StringAttr> stillNamed;
    for (ProgramOp program : module.getOps<ProgramOp>()) {
      for (DictionaryAttr bindings : {program.getInputsAttr(), program.getOutputsAttr()})
        if (bindings)
          for (NamedAttribute b : bindings)
            stillNamed.insert(cast<FlatSymbolRefAttr>(b.getValue()).getAttr());
      for (Operation &op : program.getBody().front()) {
        for (FlatSymbolRefAttr ref : getInstructionBuffers(op))
          stillNamed.insert(ref.getAttr());
        if (auto launch = dyn_cast<LaunchOp>(op))
          stillNamed.insert(launch.getKernelAttr().getAttr());
      }
    }
    // The intermediates are named by nothing now: they need no bytes.
    for (StringAttr name : intermediates)
      if (!stillNamed.contains(name))
        if (auto buffer = symbols.lookup<BufferOp>(name))
          symbols.erase(buffer);
    // Kernels whose every launch was folded have nothing left to run.
    for (StringAttr name : touchedKernels)
      if (!stillNamed.contains(name))
        if (auto kernel = symbols.lookup<KernelOp>(name))
          symbols.erase(kernel);
  }

private:
  /// `launch` as a one-statement program, or null when it cannot take part.
  static std::unique_ptr<Node> buildNode(LaunchOp launch, SymbolTable &symbols) {
    auto kernel = symbols.lookup<KernelOp>(launch.getKernel());
    if (!kernel || launch.getOuts().size() != 1 || !launch.getArgs().empty() ||
        launch.getSmem() != 0)
      return nullptr;
    const fused::OpInfo *info = fused::lookupOp(kernel.getKind());
    if (!info || launch.getIns().size() != info->numValues)
      return nullptr;
    auto node = std::make_unique<Node>();
    node->launch = launch;
    fused::Stmt stmt;
    stmt.op = info->op;
    stmt.numArgs = info->numValues;
    if (info->hasConstant) {
      DictionaryAttr params = kernel.getParamsAttr();
      StringRef key = info->op == fused::Op::Scale ? "factor" : "cap";
      auto value = params ? params.getAs<FloatAttr>(key) : FloatAttr();
      if (!value || !std::isfinite(value.getValueAsDouble()) ||
          (info->op == fused::Op::Softcap && !(value.getValueAsDouble() > 0)))
        return nullptr;
      stmt.constant = value.getValueAsDouble();
    }
    int64_t numElements = -1;
    auto check = [&](Attribute ref) -> std::optional<fused::ElemType> {
      auto buffer = symbols.lookup<BufferOp>(cast<FlatSymbolRefAttr>(ref).getValue());
      if (!buffer)
        return std::nullopt;
      int64_t count = buffer.getTensorType().getNumElements();
      if (numElements >= 0 && count != numElements)
        return std::nullopt;
      numElements = count;
      return toElemType(buffer.getTensorType().getElementType());
    };
    for (auto [i, ref] : llvm::enumerate(launch.getIns())) {
      if (!check(ref))
        return nullptr;
      stmt.args[i] = node->addInput(cast<FlatSymbolRefAttr>(ref).getAttr());
    }
    std::optional<fused::ElemType> outType = check(launch.getOuts()[0]);
    if (!outType)
      return nullptr;
    stmt.type = *outType;
    node->stmts.push_back(stmt);
    node->numElements = numElements;
    return node;
  }

  /// `node` (of `launch`) with the programs of `producers` in place of the inputs they
  /// write; returns the node unchanged when the result would be too large.
  static std::unique_ptr<Node>
  foldProducers(LaunchOp launch, std::unique_ptr<Node> node,
                ArrayRef<std::pair<StringAttr, Node *>> producers,
                llvm::DenseMap<StringAttr, Node *> &pending) {
    auto merged = std::make_unique<Node>();
    merged->launch = launch;
    merged->numElements = node->numElements;
    // Each input of the launch: a producer's value or an external input.
    SmallVector<StringAttr> ins;
    for (Attribute ref : launch.getIns())
      ins.push_back(cast<FlatSymbolRefAttr>(ref).getAttr());
    SmallVector<fused::Value> operandValues;
    for (auto [i, buffer] : llvm::enumerate(ins)) {
      const auto *producer =
          llvm::find_if(producers, [&](auto &p) { return p.first == buffer; });
      if (producer == producers.end()) {
        operandValues.push_back(merged->addInput(buffer));
        continue;
      }
      // Inline the producer once, even when this launch reads its output twice.
      auto earlier = llvm::find(ArrayRef(ins).take_front(i), buffer);
      if (earlier != ins.begin() + i) {
        operandValues.push_back(operandValues[earlier - ins.begin()]);
        continue;
      }
      Node *p = producer->second;
      unsigned base = static_cast<unsigned>(merged->stmts.size());
      for (fused::Stmt stmt : p->stmts) {
        for (unsigned a = 0; a < stmt.numArgs; ++a)
          stmt.args[a] = stmt.args[a].isInput
                             ? merged->addInput(p->inputs[stmt.args[a].index])
                             : fused::Value{false, base + stmt.args[a].index};
        merged->stmts.push_back(stmt);
      }
      operandValues.push_back({false, base + p->output});
    }
    fused::Stmt own = node->stmts.front();
    for (unsigned a = 0; a < own.numArgs; ++a)
      own.args[a] = operandValues[a];
    merged->stmts.push_back(own);
    merged->output = static_cast<unsigned>(merged->stmts.size() - 1);
    if (merged->inputs.size() > kMaxInputs || merged->stmts.size() > kMaxStmts)
      return node;
    for (auto [buffer, p] : producers) {
      p->consumed = true;
      pending.erase(buffer);
      merged->absorbed.append(p->absorbed.begin(), p->absorbed.end());
      merged->absorbed.push_back(p->launch);
    }
    return merged;
  }

  /// The fused kernel computing `node`'s program on its buffers' element types.
  static KernelOp getFusedKernel(const Node &node, SymbolTable &symbols,
                                 llvm::StringMap<KernelOp> &kernels,
                                 Block::iterator insertPt) {
    fused::Program program;
    program.stmts = node.stmts;
    program.numInputs = static_cast<unsigned>(node.inputs.size());
    program.output = node.output;
    std::string expr = fused::format(program);
    // The key: the program and its input types (the output's type is the last value's).
    std::string key = expr;
    for (StringAttr input : node.inputs)
      key += "|" + std::string(fused::typeName(*toElemType(
                       symbols.lookup<BufferOp>(input).getTensorType().getElementType())));
    KernelOp &kernel = kernels[key];
    if (kernel)
      return kernel;
    LaunchOp launch = node.launch;
    MLIRContext *context = launch.getContext();
    OpBuilder builder(context);
    kernel = KernelOp::create(
        builder, launch.getLoc(), StringAttr::get(context, "fused_elementwise"),
        StringAttr::get(context, "fused_elementwise"),
        builder.getDictionaryAttr(builder.getNamedAttr("expr", builder.getStringAttr(expr))),
        StringAttr(), StringAttr());
    symbols.insert(kernel, insertPt);
    return kernel;
  }
};

} // namespace mlir::fusion::plan
