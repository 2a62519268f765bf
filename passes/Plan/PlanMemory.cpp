//===- PlanMemory.cpp - liveness-based arena offsets ----------------------===//
//
// Part of the FusionLLM compiler.
//
// Gives every buffer of a transient arena an offset so that buffers live at the same time
// never share bytes, and shrinks the arena to what the placement needs.
//
//===----------------------------------------------------------------------===//

#include "passes/Plan/Passes.h"

#include "dialects/Plan/IR/PlanOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/Support/FormatVariadic.h"

#define DEBUG_TYPE "fusion-plan-memory"

namespace mlir::fusion::plan {

#define GEN_PASS_DEF_PLANMEMORYPASS
#include "passes/Plan/Passes.h.inc"

namespace {

constexpr int64_t kAlignment = 256;

int64_t alignUp(int64_t value) { return (value + kAlignment - 1) / kAlignment * kAlignment; }

/// One transient buffer and where it lives.
struct Interval {
  BufferOp buffer;
  StringRef arena;
  int64_t size = 0;  ///< aligned bytes
  int64_t start = 0; ///< first instruction (index in the program's order)
  int64_t end = 0;   ///< last instruction, inclusive
  bool shared = false; ///< named by several programs: lives for all of them
  int64_t offset = -1;
  /// Input this buffer may overwrite in place (dies at `start`, elementwise kernel).
  Interval *inPlaceOf = nullptr;
  /// The last query of a TimeIndex that returned this interval (deduplication).
  uint32_t seenBy = 0;
};

bool overlaps(const Interval &a, const Interval &b) {
  if (a.shared || b.shared)
    return true;
  return a.start <= b.end && b.start <= a.end;
}

/// The placed buffers of one arena, indexed by time so that placing a buffer looks only at
/// the buffers alive near its lifetime: each interval is listed in every bucket of
/// kBucketSize instructions it spans (shared ones, alive throughout, in `always`). A query
/// costs the entries of the buckets it spans, where scanning every placed buffer made the
/// pass quadratic (52 s on the 7B step with 16 micro-batches).
class TimeIndex {
public:
  static constexpr int64_t kBucketSize = 64;

  void add(Interval *iv) {
    if (iv->shared) {
      always.push_back(iv);
      return;
    }
    size_t last = static_cast<size_t>(iv->end / kBucketSize);
    if (buckets.size() <= last)
      buckets.resize(last + 1);
    for (size_t b = static_cast<size_t>(iv->start / kBucketSize); b <= last; ++b)
      buckets[b].push_back(iv);
  }

  /// The placed intervals whose lifetimes overlap `iv`'s (each once).
  void overlapping(const Interval &iv, SmallVectorImpl<Interval *> &out) {
    ++stamp;
    auto visit = [&](Interval *p) {
      if (p->seenBy == stamp)
        return;
      p->seenBy = stamp;
      if (overlaps(iv, *p))
        out.push_back(p);
    };
    for (Interval *p : always)
      visit(p);
    if (iv.shared) {
      for (auto &bucket : buckets)
        for (Interval *p : bucket)
          visit(p);
      return;
    }
    size_t last = std::min(buckets.size(), static_cast<size_t>(iv.end / kBucketSize) + 1);
    for (size_t b = static_cast<size_t>(iv.start / kBucketSize); b < last; ++b)
      for (Interval *p : buckets[b])
        visit(p);
  }

private:
  std::vector<SmallVector<Interval *, 4>> buckets;
  SmallVector<Interval *> always;
  uint32_t stamp = 0;
};


/// True if `a` and `b` may share bytes even though their lifetimes touch: one is the
/// in-place output of the other and they sit at the same offset.
bool inPlacePair(const Interval &a, const Interval &b) {
  return (a.inPlaceOf == &b || b.inPlaceOf == &a) && a.offset == b.offset;
}

} // namespace

//===----------------------------------------------------------------------===//
// fusion-plan-memory
//===----------------------------------------------------------------------===//

struct PlanMemoryPass : impl::PlanMemoryPassBase<PlanMemoryPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);

    // 1. Lifetimes: one interval per transient buffer and program that names it.
    llvm::StringMap<ArenaOp> arenas;
    for (ArenaOp arena : module.getOps<ArenaOp>())
      arenas[arena.getSymName()] = arena;

    // 0. Views (fplan-alias-reshapes): a view shares its root's bytes, so it is the root
    //    for liveness and placement.
    llvm::DenseMap<Operation *, BufferOp> rootOfView;
    for (BufferOp buffer : module.getOps<BufferOp>()) {
      auto ref = buffer->getAttrOfType<FlatSymbolRefAttr>(kViewOfAttrName);
      if (!ref) {
        if (buffer->hasAttr(kViewOfAttrName)) {
          buffer.emitOpError("'") << kViewOfAttrName << "' must name a buffer";
          return signalPassFailure();
        }
        continue;
      }
      auto root = symbols.lookup<BufferOp>(ref.getValue());
      ArenaOp arena = arenas.lookup(buffer.getArena());
      if (!root) {
        buffer.emitOpError("is a view of ") << ref << ", which is not a buffer";
        return signalPassFailure();
      }
      if (root->hasAttr(kViewOfAttrName)) {
        buffer.emitOpError("is a view of ") << ref << ", itself a view; name its root";
        return signalPassFailure();
      }
      if (root.getArena() != buffer.getArena() || !arena || arena.getPersistent()) {
        buffer.emitOpError("is a view of ")
            << ref << ", but views must share their root's non-persistent arena";
        return signalPassFailure();
      }
      if (buffer.getSizeInBytes() > root.getSizeInBytes()) {
        buffer.emitOpError("is a view of ")
            << ref << " but has " << buffer.getSizeInBytes() << " bytes, more than its "
            << root.getSizeInBytes();
        return signalPassFailure();
      }
      rootOfView[buffer] = root;
    }
    auto lookupBuffer = [&](StringRef name) -> BufferOp {
      auto buffer = symbols.lookup<BufferOp>(name);
      if (buffer)
        if (BufferOp root = rootOfView.lookup(buffer))
          return root;
      return buffer;
    };
    // A view is never written: its bytes are its root's, written before the view exists.
    for (ProgramOp program : module.getOps<ProgramOp>())
      for (Operation &op : program.getBody().front()) {
        for (FlatSymbolRefAttr ref : getWrittenBuffers(op))
          if (auto buffer = symbols.lookup<BufferOp>(ref.getValue()))
            if (rootOfView.count(buffer)) {
              op.emitOpError("writes @") << ref.getValue() << ", a view of @"
                                         << rootOfView.lookup(buffer).getSymName()
                                         << " (views are read-only)";
              return signalPassFailure();
            }
      }
    llvm::MapVector<Operation *, SmallVector<std::unique_ptr<Interval>>> perProgram;
    llvm::DenseMap<Operation *, unsigned> programsNaming;
    for (ProgramOp program : module.getOps<ProgramOp>()) {
      llvm::SmallPtrSet<Operation *, 16> seen;
      for (Operation &op : program.getBody().front())
        for (FlatSymbolRefAttr ref : getInstructionBuffers(op))
          if (auto buffer = lookupBuffer(ref.getValue()))
            if (seen.insert(buffer).second)
              ++programsNaming[buffer];
      for (DictionaryAttr bindings : {program.getInputsAttr(), program.getOutputsAttr()})
        if (bindings)
          for (NamedAttribute b : bindings)
            if (auto buffer = lookupBuffer(cast<FlatSymbolRefAttr>(b.getValue()).getValue()))
              if (seen.insert(buffer).second)
                ++programsNaming[buffer];
    }

    llvm::DenseMap<Operation *, Interval *> sharedIntervals;
    SmallVector<std::unique_ptr<Interval>> sharedStorage;
    for (ProgramOp program : module.getOps<ProgramOp>()) {
      auto &intervals = perProgram[program];
      llvm::DenseMap<Operation *, Interval *> byBuffer;
      auto touch = [&](BufferOp buffer, int64_t index) -> Interval * {
        ArenaOp arena = arenas.lookup(buffer.getArena());
        if (!arena || arena.getPersistent())
          return nullptr;
        if (programsNaming.lookup(buffer) > 1) {
          Interval *&shared = sharedIntervals[buffer];
          if (!shared) {
            sharedStorage.push_back(std::make_unique<Interval>());
            shared = sharedStorage.back().get();
            *shared = {buffer, buffer.getArena(), alignUp(buffer.getSizeInBytes()), 0, 0, true};
          }
          return shared;
        }
        Interval *&slot = byBuffer[buffer];
        if (!slot) {
          intervals.push_back(std::make_unique<Interval>());
          slot = intervals.back().get();
          *slot = {buffer, buffer.getArena(), alignUp(buffer.getSizeInBytes()), index, index};
        }
        slot->end = std::max(slot->end, index);
        return slot;
      };
      int64_t count = 0;
      for (Operation &op : program.getBody().front())
        (void)op, ++count;
      if (DictionaryAttr inputs = program.getInputsAttr())
        for (NamedAttribute b : inputs)
          touch(lookupBuffer(cast<FlatSymbolRefAttr>(b.getValue()).getValue()), -1);
      int64_t index = 0;
      for (Operation &op : program.getBody().front()) {
        SmallVector<Interval *> ins, outs;
        for (FlatSymbolRefAttr ref : getInstructionBuffers(op))
          touch(lookupBuffer(ref.getValue()), index);
        // 1b. A collective's send buffer stays live until the result is first read, so that
        //     fplan-schedule-comm can let the instructions in between run while the
        //     collective is in flight (reusing its bytes there would force a wait).
        if (auto coll = dyn_cast<CollectiveOp>(op)) {
          int64_t later = index + 1;
          for (Operation *next = op.getNextNode(); next; next = next->getNextNode(), ++later) {
            bool reads = false;
            for (FlatSymbolRefAttr ref : getInstructionBuffers(*next))
              reads |= ref == coll.getRecvAttr();
            if (reads) {
              touch(lookupBuffer(coll.getSendAttr().getValue()), later);
              break;
            }
          }
        }
        // 2. In-place candidates: an elementwise launch whose output is born here may
        //    overwrite an input of at least its size that dies here, when element i of the
        //    output depends on element i of the inputs only and sits at the same bytes: a
        //    parallel kernel (every thread reads its elements, then writes them) stays
        //    correct. Not a transpose (equal element counts, other positions), and not a
        //    cast between element sizes (output element i overlaps input element i/2).
        if (auto launch = dyn_cast<LaunchOp>(op)) {
          auto kernel = symbols.lookup<KernelOp>(launch.getKernel());
          const KernelKindInfo *info = kernel ? lookupKernelKind(kernel.getKind()) : nullptr;
          if (info && info->elementwise && kernel.getKind() != "transpose" &&
              launch.getOuts().size() == 1) {
            auto outBuffer = lookupBuffer(cast<FlatSymbolRefAttr>(launch.getOuts()[0]).getValue());
            Interval *out = byBuffer.lookup(outBuffer);
            auto elementBits = [](BufferOp buffer) {
              return buffer.getTensorType().getElementType().getIntOrFloatBitWidth();
            };
            if (out && !out->shared && out->start == index)
              for (Attribute a : launch.getIns())
                if (Interval *in = byBuffer.lookup(lookupBuffer(cast<FlatSymbolRefAttr>(a).getValue())))
                  if (in != out && !in->shared && in->size >= out->size &&
                      elementBits(symbols.lookup<BufferOp>(cast<FlatSymbolRefAttr>(a).getValue())) ==
                          elementBits(outBuffer)) {
                    out->inPlaceOf = in;
                    break;
                  }
          }
        }
        ++index;
      }
      if (DictionaryAttr outputs = program.getOutputsAttr())
        for (NamedAttribute b : outputs)
          if (Interval *iv = touch(lookupBuffer(cast<FlatSymbolRefAttr>(b.getValue()).getValue()), count))
            iv->end = count;
      // An in-place pair is only valid if the input really dies at the output's birth.
      for (auto &iv : intervals)
        if (iv->inPlaceOf && iv->inPlaceOf->end != iv->start)
          iv->inPlaceOf = nullptr;
    }

    // 3. Placement per arena: shared buffers first (they conflict with everything), then
    //    each program's buffers, largest first, at the lowest free aligned offset.
    llvm::StringMap<int64_t> arenaEnd;
    llvm::StringMap<SmallVector<Interval *>> placedShared;
    for (auto &iv : sharedStorage) {
      auto &placed = placedShared[iv->arena];
      int64_t offset = 0;
      for (Interval *p : placed)
        offset = std::max(offset, p->offset + p->size);
      iv->offset = offset;
      placed.push_back(iv.get());
      arenaEnd[iv->arena] = std::max(arenaEnd[iv->arena], offset + iv->size);
    }
    int64_t originalBytes = 0;
    for (auto &[program, intervals] : perProgram) {
      SmallVector<Interval *> order;
      for (auto &iv : intervals) {
        order.push_back(iv.get());
        originalBytes += iv->size;
      }
      llvm::stable_sort(order, [](Interval *a, Interval *b) {
        return a->size != b->size ? a->size > b->size : a->start < b->start;
      });
      llvm::StringMap<TimeIndex> placed;
      for (auto &[arena, shared] : placedShared)
        for (Interval *p : shared)
          placed[arena].add(p);
      for (Interval *iv : order) {
        TimeIndex &others = placed[iv->arena];
        // Only buffers whose lifetimes overlap this one constrain it: collect them once
        // (from the time index), sorted by offset, then take the lowest gap that fits
        // (first fit).
        SmallVector<Interval *> live;
        others.overlapping(*iv, live);
        auto fits = [&](int64_t offset) {
          iv->offset = offset;
          for (Interval *p : live)
            if (offset < p->offset + p->size && p->offset < offset + iv->size &&
                !inPlacePair(*iv, *p))
              return false;
          return true;
        };
        // Prefer the bytes of the input this output may overwrite in place.
        int64_t best = -1;
        if (iv->inPlaceOf && iv->inPlaceOf->offset >= 0 && fits(iv->inPlaceOf->offset)) {
          best = iv->inPlaceOf->offset;
          ++numInPlace;
        } else {
          iv->offset = -1;
          llvm::sort(live, [](Interval *a, Interval *b) { return a->offset < b->offset; });
          int64_t cursor = 0;
          for (Interval *p : live) {
            if (p->offset >= cursor + iv->size)
              break;
            cursor = std::max(cursor, p->offset + p->size);
          }
          best = cursor;
        }
        iv->offset = best;
        others.add(iv);
        arenaEnd[iv->arena] = std::max(arenaEnd[iv->arena], best + iv->size);
      }
    }

    // 4. Rewrite offsets and arena sizes; record each program's live peak.
    OpBuilder builder(module.getContext());
    int64_t newBytes = 0;
    for (auto &[arena, end] : arenaEnd) {
      ArenaOp op = arenas.lookup(arena);
      op.setSize(std::max<int64_t>(end, kAlignment));
      newBytes += end;
    }
    for (auto &[program, intervals] : perProgram)
      for (auto &iv : intervals)
        iv->buffer.setOffset(iv->offset);
    for (auto &iv : sharedStorage)
      iv->buffer.setOffset(iv->offset);
    for (auto &[view, root] : rootOfView)
      cast<BufferOp>(view).setOffset(root.getOffset());
    bytesSaved = std::max<int64_t>(originalBytes - newBytes, 0);

    int64_t totalArenaBytes = 0;
    for (ArenaOp arena : module.getOps<ArenaOp>())
      totalArenaBytes += arena.getSize();
    struct Peak {
      ProgramOp program;
      int64_t bytes = -1, at = 0;
    } worst;
    for (auto &[programOp, intervals] : perProgram) {
      auto program = cast<ProgramOp>(programOp);
      int64_t count = 0, peak = 0, peakAt = 0;
      for (Operation &op : program.getBody().front())
        (void)op, ++count;
      // Live bytes per instruction index i ∈ [-1, count] by a difference array: a buffer
      // counts on [start, end], from start + 1 when it overwrites its input in place.
      std::vector<int64_t> delta(count + 3, 0);
      for (auto &iv : intervals) {
        int64_t from = iv->inPlaceOf ? iv->start + 1 : iv->start;
        if (from > iv->end)
          continue;
        delta[from + 1] += iv->size;
        delta[iv->end + 2] -= iv->size;
      }
      int64_t sharedBytes = 0;
      for (auto &iv : sharedStorage)
        sharedBytes += iv->size;
      int64_t running = 0;
      for (int64_t i = -1; i <= count; ++i) {
        running += delta[i + 1];
        int64_t live = running + sharedBytes;
        if (live > peak)
          peak = live, peakAt = i;
      }
      program->setAttr("fplan.peak_live_bytes", builder.getI64IntegerAttr(peak));
      if (peak > worst.bytes)
        worst = {program, peak, peakAt};
    }

    // 5. The budget, checked against what the arenas really need, reported at the program
    //    with the highest live peak.
    if (memoryBudget > 0 && totalArenaBytes > memoryBudget && worst.program) {
      SmallVector<Interval *> live;
      for (auto &iv : perProgram[worst.program])
        if (iv->start <= worst.at && worst.at <= iv->end)
          live.push_back(iv.get());
      llvm::sort(live, [](Interval *a, Interval *b) { return a->size > b->size; });
      InFlightDiagnostic diag = worst.program.emitOpError()
                                << "needs " << totalArenaBytes << " bytes of arenas, over the "
                                << "memory budget of " << int64_t(memoryBudget)
                                << " bytes; the live peak is " << worst.bytes
                                << " bytes at instruction " << worst.at;
      for (Interval *iv : llvm::ArrayRef(live).take_front(5))
        diag.attachNote(iv->buffer.getLoc())
            << "live at the peak: @" << iv->buffer.getSymName() << " ("
            << iv->buffer.getTensorType() << ", " << iv->size << " bytes)";
      return signalPassFailure();
    }
  }
};

} // namespace mlir::fusion::plan
