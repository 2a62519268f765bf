//===- thread_comm.cc - Shared-memory collectives between threads ---------===//
//
// The CPU backend's communicator: the ranks are threads of one process. Every collective is
// a rendezvous in two phases on state shared by the group (mutex, condition variable, a
// counter of completed phases):
//   1. enter: each rank publishes its call (kind, dtype, counts, buffers, label) and waits
//      for all the others; the last to arrive checks, before releasing them, that all ranks
//      made the same call (a mismatched collective is the classic distributed bug, so it is
//      an error on every rank naming both calls);
//   2. each rank reads its peers' send buffers and computes its own result, then waits for
//      all the others to finish reading ("finish" phase) before it writes any result that
//      could alias a buffer a peer reads, and returns. So buffers stay valid throughout.
// Reductions accumulate in fp32 (int64 for integers) in rank order 0..N-1, independent of
// thread arrival order: the results are bit-identical across runs and across ranks.
//
// Any failure (mismatch, invalid argument, timeout, abort()) aborts the group: waiting ranks
// wake up with an error quoting the first failure, and every later call fails at once. After
// a timeout the process should stop: a rank still copying may read a peer that gave up.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/comm.h"

#include "../numeric.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace fusion::rt {

const char *collectiveCallName(CollectiveCall call) {
  switch (call) {
  case CollectiveCall::kAllReduce:
    return "all_reduce";
  case CollectiveCall::kAllGather:
    return "all_gather";
  case CollectiveCall::kReduceScatter:
    return "reduce_scatter";
  case CollectiveCall::kAllToAllV:
    return "all_to_all_v";
  case CollectiveCall::kBroadcast:
    return "broadcast";
  case CollectiveCall::kBarrier:
    return "barrier";
  }
  return "collective(?)";
}

namespace {

using Clock = std::chrono::steady_clock;

/// One rank's collective call, as published to its peers.
struct CallInfo {
  CollectiveCall kind = CollectiveCall::kBarrier;
  schema::DType dtype = schema::DType::F32;
  schema::ReduceOp op = schema::ReduceOp::Sum;
  /// Elements: total for all_reduce and broadcast, per rank for all_gather/reduce_scatter.
  size_t count = 0;
  int root = 0;
  const void *send = nullptr;
  void *recv = nullptr;
  /// all_to_all_v only; copies, since timeout messages describe calls that have returned.
  std::vector<size_t> sendCounts, recvCounts;
  std::string what;
  /// 1-based index of this call among the rank's collectives.
  uint64_t seq = 0;
};

bool isReduction(CollectiveCall kind) {
  return kind == CollectiveCall::kAllReduce || kind == CollectiveCall::kReduceScatter;
}

std::string reduceOpName(schema::ReduceOp op) {
  switch (op) {
  case schema::ReduceOp::Sum:
    return "sum";
  case schema::ReduceOp::Avg:
    return "avg";
  case schema::ReduceOp::Max:
    return "max";
  }
  return "reduce_op(" + std::to_string(int(op)) + ")";
}

std::string countList(const std::vector<size_t> &counts) {
  std::string text = "[";
  for (size_t i = 0; i < counts.size(); ++i)
    text += (i ? ", " : "") + std::to_string(counts[i]);
  return text + "]";
}

/// "#3 all_gather(4 x f32 per rank) 'label'": what a rank called, for mismatch messages.
std::string describe(const CallInfo &call) {
  std::string args;
  std::string elems = std::to_string(call.count) + " x " + dtypeName(call.dtype);
  switch (call.kind) {
  case CollectiveCall::kAllReduce:
    args = reduceOpName(call.op) + ", " + elems;
    break;
  case CollectiveCall::kAllGather:
    args = elems + " per rank";
    break;
  case CollectiveCall::kReduceScatter:
    args = reduceOpName(call.op) + ", " + elems + " per rank";
    break;
  case CollectiveCall::kAllToAllV:
    args = dtypeName(call.dtype) + ", send counts " + countList(call.sendCounts) +
           ", recv counts " + countList(call.recvCounts);
    break;
  case CollectiveCall::kBroadcast:
    args = elems + ", root " + std::to_string(call.root);
    break;
  case CollectiveCall::kBarrier:
    break;
  }
  return "#" + std::to_string(call.seq) + " " + collectiveCallName(call.kind) + "(" + args +
         ") " + quoted(call.what);
}

std::string rankList(const std::vector<int> &ranks) {
  std::string text;
  for (size_t i = 0; i < ranks.size(); ++i)
    text += (i ? ", " : "") + std::to_string(ranks[i]);
  return text;
}

std::string seconds(std::chrono::milliseconds duration) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g s", double(duration.count()) / 1000.0);
  return text;
}

/// Whether [a, a + aBytes) and [b, b + bBytes) share a byte.
bool overlaps(const void *a, size_t aBytes, const void *b, size_t bBytes) {
  auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return aBytes && bBytes && x < y + bBytes && y < x + aBytes;
}

/// Rendezvous state shared by the communicators of one ThreadGroup.
struct GroupState {
  GroupState(int size, ThreadGroupOptions options)
      : size(size), options(options), present(size, 0), calls(size) {}

  const int size;
  const ThreadGroupOptions options;
  std::mutex mutex;
  std::condition_variable cv;
  /// Completed phases; a waiting rank is released when it moves past its ticket.
  uint64_t phase = 0;
  /// Ranks that reached the current phase, and which ones.
  int arrived = 0;
  std::vector<char> present;
  /// Each rank's latest published call. Written only while entering a collective, read by
  /// peers between the enter and finish phases, when no rank can be publishing.
  std::vector<CallInfo> calls;
  /// The last enter phase's check of `calls` (empty: all ranks made the same call), made once
  /// by the rank that completed the phase, under the mutex. It stays valid until every rank
  /// has entered another collective, so every rank reads it after waking.
  std::string verdict;
  /// Set once, by the first failure; `abortReason` then explains it.
  bool aborted = false;
  StatusCode abortCode = StatusCode::kOk;
  std::string abortReason;

  /// Records the first failure and wakes every waiting rank. Requires `mutex`.
  void abortLocked(StatusCode code, std::string reason) {
    if (!aborted) {
      aborted = true;
      abortCode = code;
      abortReason = std::move(reason);
    }
    cv.notify_all();
  }
};

/// Accumulates ranks' send ranges element-wise, in the order called (rank 0 first).
class Reducer {
public:
  Reducer(schema::DType dtype, schema::ReduceOp op, size_t count) : dtype_(dtype), op_(op) {
    if (isFloatDType(dtype))
      floats_.resize(count);
    else
      ints_.resize(count);
  }

  /// Folds `src[offset, offset + count)` into the accumulator (the first call assigns).
  void add(const void *src, size_t offset) {
    bool first = !started_;
    started_ = true;
    switch (dtype_) {
    case schema::DType::F32:
      fold(first, [&](size_t i) { return static_cast<const float *>(src)[offset + i]; });
      break;
    case schema::DType::BF16:
      fold(first,
           [&](size_t i) { return bf16ToFloat(static_cast<const uint16_t *>(src)[offset + i]); });
      break;
    case schema::DType::F16:
      fold(first,
           [&](size_t i) { return f16ToFloat(static_cast<const uint16_t *>(src)[offset + i]); });
      break;
    case schema::DType::I32:
      foldInt(first,
              [&](size_t i) { return int64_t(static_cast<const int32_t *>(src)[offset + i]); });
      break;
    case schema::DType::I64:
      foldInt(first, [&](size_t i) { return static_cast<const int64_t *>(src)[offset + i]; });
      break;
    }
  }

  /// Writes the result to `dst` in its dtype; Avg divides the fp32 sum by `ranks`.
  void store(void *dst, int ranks) const {
    float scale = op_ == schema::ReduceOp::Avg ? float(ranks) : 1.0f;
    for (size_t i = 0; i < floats_.size(); ++i) {
      float value = op_ == schema::ReduceOp::Avg ? floats_[i] / scale : floats_[i];
      if (dtype_ == schema::DType::F32)
        static_cast<float *>(dst)[i] = value;
      else if (dtype_ == schema::DType::BF16)
        static_cast<uint16_t *>(dst)[i] = floatToBf16(value);
      else
        static_cast<uint16_t *>(dst)[i] = floatToF16(value);
    }
    for (size_t i = 0; i < ints_.size(); ++i) {
      if (dtype_ == schema::DType::I32)
        static_cast<int32_t *>(dst)[i] = int32_t(uint32_t(uint64_t(ints_[i]))); // wraps
      else
        static_cast<int64_t *>(dst)[i] = ints_[i];
    }
  }

private:
  template <typename Load> void fold(bool first, Load load) {
    for (size_t i = 0; i < floats_.size(); ++i) {
      float v = load(i);
      float &acc = floats_[i];
      if (first)
        acc = v;
      else if (op_ == schema::ReduceOp::Max)
        acc = (v > acc || v != v) && acc == acc ? v : acc; // NaN propagates (first one wins)
      else
        acc += v;
    }
  }
  template <typename Load> void foldInt(bool first, Load load) {
    for (size_t i = 0; i < ints_.size(); ++i) {
      int64_t v = load(i);
      int64_t &acc = ints_[i];
      if (first)
        acc = v;
      else if (op_ == schema::ReduceOp::Max)
        acc = std::max(acc, v);
      else
        acc = int64_t(uint64_t(acc) + uint64_t(v)); // wraps like the device would
    }
  }

  schema::DType dtype_;
  schema::ReduceOp op_;
  bool started_ = false;
  std::vector<float> floats_;
  std::vector<int64_t> ints_;
};

class ThreadCommunicator final : public Communicator {
public:
  ThreadCommunicator(std::shared_ptr<GroupState> state, int rank)
      : state_(std::move(state)), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return state_->size; }

  Status allReduce(const void *send, void *recv, size_t count, schema::DType dtype,
                   schema::ReduceOp op, std::string_view what) override {
    CallInfo call = newCall(CollectiveCall::kAllReduce, dtype, count, what);
    call.op = op;
    call.send = send;
    call.recv = recv;
    FUSION_RETURN_IF_ERROR(enter(call));
    Reducer reducer(dtype, op, count);
    for (int p = 0; p < size(); ++p)
      reducer.add(peer(p).send, 0);
    FUSION_RETURN_IF_ERROR(finish(call));
    reducer.store(recv, size());
    return Status::okStatus();
  }

  Status allGather(const void *send, void *recv, size_t countPerRank, schema::DType dtype,
                   std::string_view what) override {
    CallInfo call = newCall(CollectiveCall::kAllGather, dtype, countPerRank, what);
    call.send = send;
    call.recv = recv;
    FUSION_RETURN_IF_ERROR(enter(call));
    size_t chunk = countPerRank * dtypeSize(dtype);
    Output out(recv, chunk * size(), send, chunk);
    for (int p = 0; p < size(); ++p)
      if (chunk)
        std::memmove(out.data() + p * chunk, peer(p).send, chunk);
    FUSION_RETURN_IF_ERROR(finish(call));
    out.commit();
    return Status::okStatus();
  }

  Status reduceScatter(const void *send, void *recv, size_t countPerRank, schema::DType dtype,
                       schema::ReduceOp op, std::string_view what) override {
    CallInfo call = newCall(CollectiveCall::kReduceScatter, dtype, countPerRank, what);
    call.op = op;
    call.send = send;
    call.recv = recv;
    FUSION_RETURN_IF_ERROR(enter(call));
    Reducer reducer(dtype, op, countPerRank);
    for (int p = 0; p < size(); ++p)
      reducer.add(peer(p).send, size_t(rank_) * countPerRank);
    FUSION_RETURN_IF_ERROR(finish(call));
    reducer.store(recv, size());
    return Status::okStatus();
  }

  Status allToAllV(const void *send, const std::vector<size_t> &sendCounts, void *recv,
                   const std::vector<size_t> &recvCounts, schema::DType dtype,
                   std::string_view what) override {
    CallInfo call = newCall(CollectiveCall::kAllToAllV, dtype, 0, what);
    call.send = send;
    call.recv = recv;
    call.sendCounts = sendCounts;
    call.recvCounts = recvCounts;
    FUSION_RETURN_IF_ERROR(enter(call));
    size_t elem = dtypeSize(dtype);
    size_t sendBytes = 0, recvBytes = 0;
    for (int p = 0; p < size(); ++p) {
      sendBytes += sendCounts[p] * elem;
      recvBytes += recvCounts[p] * elem;
    }
    Output out(recv, recvBytes, send, sendBytes);
    size_t at = 0;
    for (int p = 0; p < size(); ++p) {
      // Peer p's chunk for this rank starts after its chunks for ranks 0..rank-1.
      const CallInfo &from = peer(p);
      size_t offset = 0;
      for (int q = 0; q < rank_; ++q)
        offset += from.sendCounts[q];
      size_t bytes = recvCounts[p] * elem;
      if (bytes)
        std::memmove(out.data() + at, static_cast<const char *>(from.send) + offset * elem, bytes);
      at += bytes;
    }
    FUSION_RETURN_IF_ERROR(finish(call));
    out.commit();
    return Status::okStatus();
  }

  Status broadcast(void *buf, size_t count, schema::DType dtype, int root,
                   std::string_view what) override {
    CallInfo call = newCall(CollectiveCall::kBroadcast, dtype, count, what);
    call.send = buf;
    call.recv = buf;
    call.root = root;
    FUSION_RETURN_IF_ERROR(enter(call));
    // Only the root's buffer is read, and the root writes nothing: copy directly.
    const void *source = peer(root).send;
    if (rank_ != root && source != buf && count)
      std::memcpy(buf, source, count * dtypeSize(dtype));
    return finish(call);
  }

  Status barrier(std::string_view what) override {
    CallInfo call = newCall(CollectiveCall::kBarrier, schema::DType::F32, 0, what);
    return enter(call); // nothing is read, so no finish phase is needed
  }

  void abort(std::string_view reason) override {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->abortLocked(StatusCode::kUnavailable,
                        "rank " + std::to_string(rank_) + " aborted the group: " +
                            std::string(reason));
  }

private:
  /// Where a copying collective writes: straight into `recv`, or, when `recv` overlaps this
  /// rank's own send buffer (which peers are still reading), into a staging copy that
  /// commit() moves into place after the finish phase.
  class Output {
  public:
    Output(void *recv, size_t recvBytes, const void *send, size_t sendBytes)
        : recv_(static_cast<char *>(recv)), bytes_(recvBytes) {
      if (overlaps(recv, recvBytes, send, sendBytes))
        staging_.resize(recvBytes);
    }
    char *data() { return staging_.empty() ? recv_ : staging_.data(); }
    void commit() {
      if (!staging_.empty())
        std::memcpy(recv_, staging_.data(), bytes_);
    }

  private:
    char *recv_;
    size_t bytes_;
    std::vector<char> staging_;
  };

  CallInfo newCall(CollectiveCall kind, schema::DType dtype, size_t count, std::string_view what) {
    CallInfo call;
    call.kind = kind;
    call.dtype = dtype;
    call.count = count;
    call.what = std::string(what);
    call.seq = ++seq_;
    return call;
  }

  /// Peer p's call of the current collective (valid between enter and finish).
  const CallInfo &peer(int p) const { return state_->calls[p]; }

  /// This rank's arguments, checked before it meets its peers. An invalid call aborts the
  /// group: the peers would otherwise wait for a call that never comes.
  std::string checkArguments(const CallInfo &call) const {
    size_t elem = dtypeSize(call.dtype);
    if (call.kind == CollectiveCall::kBarrier)
      return "";
    if (!elem)
      return "invalid dtype " + dtypeName(call.dtype);
    if (isReduction(call.kind)) {
      if (call.op != schema::ReduceOp::Sum && call.op != schema::ReduceOp::Avg &&
          call.op != schema::ReduceOp::Max)
        return "invalid reduce op " + reduceOpName(call.op);
      if (call.op == schema::ReduceOp::Avg && !isFloatDType(call.dtype))
        return "avg is not defined on integer dtype " + dtypeName(call.dtype);
    }
    if (call.kind == CollectiveCall::kBroadcast && (call.root < 0 || call.root >= size()))
      return "root " + std::to_string(call.root) + " is not a rank of a group of " +
             std::to_string(size());
    // Bytes touched in the larger of send and recv, checked for overflow.
    std::optional<uint64_t> sendElems = call.count, recvElems = call.count;
    if (call.kind == CollectiveCall::kAllGather)
      recvElems = checkedMul(call.count, uint64_t(size()));
    if (call.kind == CollectiveCall::kReduceScatter)
      sendElems = checkedMul(call.count, uint64_t(size()));
    if (call.kind == CollectiveCall::kAllToAllV) {
      if (call.sendCounts.size() != size_t(size()) || call.recvCounts.size() != size_t(size()))
        return "send counts (" + std::to_string(call.sendCounts.size()) +
               " entries) and recv counts (" + std::to_string(call.recvCounts.size()) +
               " entries) must have one entry per rank (" + std::to_string(size()) + ")";
      sendElems = recvElems = 0;
      for (int p = 0; p < size() && sendElems && recvElems; ++p) {
        sendElems = checkedAdd(*sendElems, call.sendCounts[p]);
        recvElems = sendElems ? checkedAdd(*recvElems, call.recvCounts[p]) : std::nullopt;
      }
    }
    std::optional<uint64_t> sendBytes = sendElems ? checkedMul(*sendElems, elem) : std::nullopt;
    std::optional<uint64_t> recvBytes = recvElems ? checkedMul(*recvElems, elem) : std::nullopt;
    if (!sendBytes || !recvBytes)
      return "element counts overflow";
    if ((*sendBytes && !call.send) || (*recvBytes && !call.recv))
      return "null buffer for " + std::to_string(std::max(*sendBytes, *recvBytes)) + " bytes";
    return "";
  }

  /// The verdict on every rank's published call: empty when all ranks made the same call.
  /// Requires the mutex.
  std::string checkCalls() const {
    const CallInfo &first = peer(0);
    for (int p = 1; p < size(); ++p) {
      const CallInfo &other = peer(p);
      const char *difference = nullptr;
      if (other.kind != first.kind)
        difference = "different collectives";
      else if (other.kind == CollectiveCall::kBarrier)
        continue;
      else if (other.dtype != first.dtype)
        difference = "different dtypes";
      else if (other.count != first.count)
        difference = "different element counts";
      else if (isReduction(other.kind) && other.op != first.op)
        difference = "different reduce ops";
      else if (other.kind == CollectiveCall::kBroadcast && other.root != first.root)
        difference = "different roots";
      if (difference)
        return std::string("collective mismatch (") + difference + "): rank 0 called " +
               describe(first) + " but rank " + std::to_string(p) + " called " +
               describe(other);
    }
    if (first.kind == CollectiveCall::kAllToAllV)
      for (int p = 0; p < size(); ++p)
        for (int q = 0; q < size(); ++q) {
          size_t sent = peer(p).sendCounts[q], expected = peer(q).recvCounts[p];
          if (sent != expected)
            return "all_to_all_v size mismatch: rank " + std::to_string(p) + " sends " +
                   std::to_string(sent) + " elements to rank " + std::to_string(q) +
                   " but rank " + std::to_string(q) + " expects " + std::to_string(expected) +
                   " from rank " + std::to_string(p) + " (rank " + std::to_string(p) +
                   " called " + describe(peer(p)) + ", rank " + std::to_string(q) + " called " +
                   describe(peer(q)) + ")";
        }
    return "";
  }

  /// Phase 1: checks the arguments, publishes the call, waits for every rank, and checks
  /// that all ranks made the same call.
  Status enter(const CallInfo &call) {
    std::string invalid = checkArguments(call);
    if (!invalid.empty()) {
      std::string reason = "invalid " + std::string(collectiveCallName(call.kind)) +
                           " arguments on rank " + std::to_string(rank_) + " in " +
                           describe(call) + ": " + invalid;
      std::lock_guard<std::mutex> lock(state_->mutex);
      if (state_->aborted)
        return abortedError(call);
      state_->abortLocked(StatusCode::kInvalidArgument, reason);
      return Status(StatusCode::kInvalidArgument, call.what + ": " + reason);
    }
    return rendezvous(call, /*publish=*/true);
  }

  /// Phase 2: waits until every rank has finished reading its peers' buffers.
  Status finish(const CallInfo &call) { return rendezvous(call, /*publish=*/false); }

  Status abortedError(const CallInfo &call) const {
    return Status(state_->abortCode, call.what + ": communicator group aborted: " +
                                         state_->abortReason);
  }

  /// After an enter phase completed: the mismatch error, if the ranks' calls differ. The
  /// rank that completed the phase checked them (and aborted the group on a mismatch) before
  /// releasing the others, while no rank could publish a new call. Requires the mutex.
  Status verdictLocked(const CallInfo &call, bool publish) const {
    if (!publish || state_->verdict.empty())
      return Status::okStatus();
    return Status(StatusCode::kFailedPrecondition, call.what + ": " + state_->verdict);
  }

  /// Arrives at the current phase and waits until every rank has, the group aborts, or the
  /// timeout passes (which aborts the group with an error naming the missing ranks). When
  /// `publish`, this is an enter phase: the call is published and checked against the peers'.
  Status rendezvous(const CallInfo &call, bool publish) {
    GroupState &s = *state_;
    std::unique_lock<std::mutex> lock(s.mutex);
    if (s.aborted)
      return abortedError(call);
    if (publish)
      s.calls[rank_] = call;
    s.present[rank_] = 1;
    uint64_t ticket = s.phase;
    if (++s.arrived == s.size) {
      s.arrived = 0;
      std::fill(s.present.begin(), s.present.end(), 0);
      if (publish) {
        s.verdict = checkCalls();
        if (!s.verdict.empty())
          s.abortLocked(StatusCode::kFailedPrecondition, s.verdict);
      }
      ++s.phase;
      s.cv.notify_all();
      return verdictLocked(call, publish);
    }
    Clock::time_point deadline = Clock::now() + s.options.timeout;
    while (true) {
      // A completed phase wins over a later abort: this rank's peers all arrived.
      if (s.phase != ticket)
        return verdictLocked(call, publish);
      if (s.aborted)
        return abortedError(call);
      if (s.cv.wait_until(lock, deadline) == std::cv_status::timeout && s.phase == ticket &&
          !s.aborted)
        break;
    }
    std::vector<int> missing;
    std::string lastCalls;
    for (int p = 0; p < s.size; ++p) {
      if (s.present[p])
        continue;
      missing.push_back(p);
      lastCalls += "; rank " + std::to_string(p) + "'s latest call: " +
                   (s.calls[p].seq ? describe(s.calls[p]) : std::string("none"));
    }
    std::string reason = "rank " + std::to_string(rank_) + " timed out after " +
                         seconds(s.options.timeout) + " in " + describe(call) +
                         " waiting for rank(s) " + rankList(missing) + " to " +
                         (publish ? "call it" : "finish it") + " (" + lastCalls.substr(2) + ")";
    s.abortLocked(StatusCode::kUnavailable, reason);
    return Status(StatusCode::kUnavailable, call.what + ": " + reason);
  }

  std::shared_ptr<GroupState> state_;
  int rank_;
  uint64_t seq_ = 0;
};

} // namespace

StatusOr<std::unique_ptr<ThreadGroup>> ThreadGroup::create(int size, ThreadGroupOptions options) {
  if (size < 1 || size > 4096)
    return Status(StatusCode::kInvalidArgument,
                  "thread communicator group size " + std::to_string(size) +
                      " is outside [1, 4096]");
  if (options.timeout.count() <= 0)
    return Status(StatusCode::kInvalidArgument,
                  "thread communicator timeout must be positive (got " +
                      std::to_string(options.timeout.count()) + " ms)");
  auto state = std::make_shared<GroupState>(size, options);
  std::unique_ptr<ThreadGroup> group(new ThreadGroup());
  for (int rank = 0; rank < size; ++rank)
    group->comms_.push_back(std::make_unique<ThreadCommunicator>(state, rank));
  return group;
}

ThreadGroup::~ThreadGroup() = default;

} // namespace fusion::rt
