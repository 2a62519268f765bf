//===- ScheduleComm.cpp - Collectives on their own stream -----------------===//
//
// Part of the FusionLLM compiler.
//
// Moves each collective of a single-stream program to the communication stream, ordered
// after everything before it by an event, and makes stream 0 wait for it only at the first
// later instruction whose bytes conflict with it (by arena offsets, so this runs after
// fusion-plan-memory). Whatever stream 0 does in between overlaps the collective.
//
//===----------------------------------------------------------------------===//

#include "passes/Plan/Passes.h"

#include "dialects/Plan/IR/PlanOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::fusion::plan {

#define GEN_PASS_DEF_SCHEDULECOMMPASS
#include "passes/Plan/Passes.h.inc"

namespace {

/// A byte range of an arena.
struct Range {
  StringRef arena;
  int64_t begin = 0, end = 0;

  bool overlaps(const Range &other) const {
    return arena == other.arena && begin < other.end && other.begin < end;
  }
};

/// The byte ranges an instruction reads and writes.
struct Access {
  SmallVector<Range, 4> reads, writes;
};

class Scheduler {
public:
  explicit Scheduler(ModuleOp module) : symbols(module) {}

  Range rangeOf(FlatSymbolRefAttr ref) {
    auto buffer = symbols.lookup<BufferOp>(ref.getValue());
    return {buffer.getArena(), buffer.getOffset(), buffer.getOffset() + buffer.getSizeInBytes()};
  }

  Access accessOf(Operation &op) {
    Access access;
    auto add = [&](SmallVectorImpl<Range> &into, Attribute ref) {
      into.push_back(rangeOf(cast<FlatSymbolRefAttr>(ref)));
    };
    if (auto launch = dyn_cast<LaunchOp>(op)) {
      for (Attribute a : launch.getIns())
        add(access.reads, a);
      for (Attribute a : launch.getOuts())
        add(access.writes, a);
    } else if (auto gemm = dyn_cast<GemmOp>(op)) {
      add(access.reads, gemm.getAAttr());
      add(access.reads, gemm.getBAttr());
      add(access.reads, gemm.getCAttr()); // beta may be nonzero
      add(access.writes, gemm.getCAttr());
    } else if (auto coll = dyn_cast<CollectiveOp>(op)) {
      add(access.reads, coll.getSendAttr());
      add(access.writes, coll.getRecvAttr());
    }
    return access;
  }

  /// True when `later` must wait for `collective` (written bytes it reads, or bytes it
  /// reads / writes that the collective writes).
  static bool conflicts(const Access &collective, const Access &later) {
    for (const Range &w : later.writes)
      for (const Range &r : collective.reads)
        if (w.overlaps(r))
          return true;
    for (const Range &c : collective.writes) {
      for (const Range &r : later.reads)
        if (r.overlaps(c))
          return true;
      for (const Range &w : later.writes)
        if (w.overlaps(c))
          return true;
    }
    return false;
  }

  SymbolTable symbols;
};

/// True when every instruction of `program` runs on stream 0 and there are no events.
bool isSingleStream(ProgramOp program) {
  for (Operation &op : program.getBody().front()) {
    if (isa<RecordOp, WaitOp>(op))
      return false;
    if (auto stream = op.getAttrOfType<IntegerAttr>("stream"); stream && stream.getInt() != 0)
      return false;
  }
  return true;
}

} // namespace

struct ScheduleCommPass : impl::ScheduleCommPassBase<ScheduleCommPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (commStream < 1) {
      module.emitError("fplan-schedule-comm: comm-stream must be >= 1, got ")
          << static_cast<int64_t>(commStream);
      return signalPassFailure();
    }
    Scheduler scheduler(module);
    for (ProgramOp program : module.getOps<ProgramOp>()) {
      Block &body = program.getBody().front();
      bool hasCollective = false;
      for (Operation &op : body)
        hasCollective |= isa<CollectiveOp>(op);
      if (!hasCollective || !isSingleStream(program))
        continue;
      int32_t nextEvent = 0;
      int32_t stream = static_cast<int32_t>(commStream);
      SmallVector<CollectiveOp> collectives(body.getOps<CollectiveOp>());
      for (CollectiveOp collective : collectives) {
        Access access = scheduler.accessOf(*collective);
        OpBuilder builder(collective);
        Location loc = collective.getLoc();
        int32_t ready = nextEvent++;
        RecordOp::create(builder, loc, ready, 0);
        WaitOp::create(builder, loc, ready, stream);
        collective.setStream(stream);
        builder.setInsertionPointAfter(collective);
        int32_t done = nextEvent++;
        auto record = RecordOp::create(builder, loc, done, stream);
        ++numMoved;
        // The first later stream-0 instruction that touches the collective's bytes waits.
        for (Operation *op = record->getNextNode(); op; op = op->getNextNode()) {
          if (isa<RecordOp, WaitOp, CollectiveOp>(op))
            continue; // events, and collectives ordered on the comm stream
          if (Scheduler::conflicts(access, scheduler.accessOf(*op))) {
            OpBuilder before(op);
            WaitOp::create(before, op->getLoc(), done, 0);
            break;
          }
          ++numOverlapped;
        }
      }
    }
  }
};

} // namespace mlir::fusion::plan
