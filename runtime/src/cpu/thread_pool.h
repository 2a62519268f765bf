//===- thread_pool.h - Fixed worker pool of the CPU backend (internal) ----===//
//
// The CPU executor owns one ThreadPool for its lifetime; the heavy reference kernels split
// their independent work items (attention (batch, head) pairs, GDN (batch, head) pairs,
// expert row blocks, loss rows, elementwise chunks) over it with parallelFor. Every item is
// computed entirely by one thread in a fixed order, and no result is reduced across items by
// racing threads, so outputs are bit-identical whatever the number of threads and however
// the items happen to be claimed.
//
//===----------------------------------------------------------------------===//

#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fusion::rt::cpu {

/// A pool of `numThreads - 1` worker threads plus the calling thread.
class ThreadPool {
public:
  /// The body of a parallel loop: processes items [begin, end).
  using RangeFn = std::function<void(uint64_t begin, uint64_t end)>;

  /// Starts `numThreads - 1` workers (none for 0 or 1: everything runs on the caller).
  explicit ThreadPool(unsigned numThreads);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  /// Threads that take part in a parallelFor, the caller included.
  unsigned numThreads() const { return static_cast<unsigned>(workers_.size()) + 1; }

  /// The size an executor's pool gets: $FUSION_CPU_THREADS when it is a positive integer,
  /// else std::thread::hardware_concurrency() (at least 1).
  static unsigned defaultNumThreads();

  /// Calls `body` on consecutive ranges of at most `grain` items that together cover
  /// [0, count) exactly once, spread over the pool; returns when all have run. Runs on the
  /// caller alone when the pool has no workers, when there is a single range, or when called
  /// from inside another parallelFor (nested loops do not deadlock, they serialise).
  void parallelFor(uint64_t count, uint64_t grain, const RangeFn &body);

private:
  void workerLoop();
  /// Claims and runs ranges of the current loop until none are left.
  void runRanges();

  std::vector<std::thread> workers_;
  /// Held by the thread that owns the current loop (one loop at a time).
  std::mutex submitMutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  bool stopping_ = false;
  uint64_t generation_ = 0;
  unsigned busyWorkers_ = 0;
  // The current loop (written under mutex_ before generation_ is bumped).
  const RangeFn *body_ = nullptr;
  uint64_t count_ = 0;
  uint64_t grain_ = 1;
  uint64_t numRanges_ = 0;
  std::atomic<uint64_t> nextRange_{0};
};

} // namespace fusion::rt::cpu
