//===- thread_pool.cc - Fixed worker pool of the CPU backend --------------===//
//
// Workers sleep on a condition variable until a loop is posted (a generation counter tells a
// new loop from a spurious wake-up), then claim ranges through an atomic counter, as does the
// posting thread. The poster waits until every worker has checked out of the loop before it
// returns, so `body` (a reference to the caller's function object) never outlives the call.
//
//===----------------------------------------------------------------------===//

#include "thread_pool.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace fusion::rt::cpu {

namespace {
/// True on pool workers and on a thread that is running its own parallelFor.
thread_local bool insideParallelFor = false;
} // namespace

ThreadPool::ThreadPool(unsigned numThreads) {
  for (unsigned i = 1; i < numThreads; ++i)
    workers_.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread &worker : workers_)
    worker.join();
}

unsigned ThreadPool::defaultNumThreads() {
  if (const char *text = std::getenv("FUSION_CPU_THREADS")) {
    char *end = nullptr;
    long value = std::strtol(text, &end, 10);
    if (end != text && *end == '\0' && value > 0 && value <= 4096)
      return static_cast<unsigned>(value);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

void ThreadPool::parallelFor(uint64_t count, uint64_t grain, const RangeFn &body) {
  if (count == 0)
    return;
  grain = std::max<uint64_t>(grain, 1);
  uint64_t numRanges = (count - 1) / grain + 1;
  if (workers_.empty() || numRanges == 1 || insideParallelFor || !submitMutex_.try_lock()) {
    body(0, count);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    body_ = &body;
    count_ = count;
    grain_ = grain;
    numRanges_ = numRanges;
    nextRange_.store(0, std::memory_order_relaxed);
    busyWorkers_ = static_cast<unsigned>(workers_.size());
    ++generation_;
  }
  wake_.notify_all();
  insideParallelFor = true;
  runRanges();
  insideParallelFor = false;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return busyWorkers_ == 0; });
    body_ = nullptr;
  }
  submitMutex_.unlock();
}

void ThreadPool::runRanges() {
  for (;;) {
    uint64_t range = nextRange_.fetch_add(1, std::memory_order_relaxed);
    if (range >= numRanges_)
      return;
    uint64_t begin = range * grain_;
    (*body_)(begin, std::min(count_, begin + grain_));
  }
}

void ThreadPool::workerLoop() {
  insideParallelFor = true;
  uint64_t seenGeneration = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seenGeneration; });
      if (stopping_)
        return;
      seenGeneration = generation_;
    }
    runRanges();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busyWorkers_ == 0)
        done_.notify_all();
    }
  }
}

} // namespace fusion::rt::cpu
