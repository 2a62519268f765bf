//===- thread_pool_test.cc - The CPU backend's pool and determinism -------===//
//
// ThreadPool::parallelFor must cover every item exactly once, run nested loops inline and
// work without workers; and the heavy kernels, called directly with pools of 1, 3 and 8
// threads (and none), must produce bit-identical outputs: no reduction may depend on how
// work items are spread over threads.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/kernel_test_util.h"

#include "runtime/src/cpu/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

TEST(ThreadPoolTest, EveryItemRunsExactlyOnce) {
  cpu::ThreadPool pool(4);
  EXPECT_EQ(pool.numThreads(), 4u);
  for (uint64_t count : {0ull, 1ull, 7ull, 1000ull, 4099ull})
    for (uint64_t grain : {1ull, 7ull, 64ull, 5000ull}) {
      std::vector<std::atomic<int>> hits(count);
      std::atomic<uint64_t> calls{0};
      pool.parallelFor(count, grain, [&](uint64_t begin, uint64_t end) {
        ASSERT_LT(begin, end);
        ASSERT_LE(end, count);
        ++calls;
        for (uint64_t i = begin; i < end; ++i)
          ++hits[i];
      });
      for (uint64_t i = 0; i < count; ++i)
        ASSERT_EQ(hits[i].load(), 1) << "count " << count << " grain " << grain << " item " << i;
      EXPECT_LE(calls.load(), count == 0 ? 0 : (count - 1) / grain + 1);
    }
}

TEST(ThreadPoolTest, UsesSeveralThreadsAndNestedLoopsRunInline) {
  cpu::ThreadPool pool(3);
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::atomic<uint64_t> inner{0};
  pool.parallelFor(64, 1, [&](uint64_t begin, uint64_t end) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      threads.insert(std::this_thread::get_id());
    }
    // Slow enough that the workers get to claim ranges too.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    pool.parallelFor(10, 1, [&](uint64_t b, uint64_t e) { inner += e - b; });
  });
  EXPECT_EQ(inner.load(), 640u);
  EXPECT_GE(threads.size(), 2u);
  EXPECT_LE(threads.size(), 3u);
}

TEST(ThreadPoolTest, SingleThreadPoolRunsOnTheCaller) {
  cpu::ThreadPool pool(1);
  std::thread::id caller = std::this_thread::get_id();
  uint64_t covered = 0;
  pool.parallelFor(100, 3, [&](uint64_t begin, uint64_t end) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    covered += end - begin;
  });
  EXPECT_EQ(covered, 100u);
  EXPECT_GE(cpu::ThreadPool::defaultNumThreads(), 1u);
}

/// Runs `build()`'s kernel with no pool and pools of 1, 3 and 8 threads; every output must
/// be bitwise equal to the no-pool run.
void expectThreadCountInvariant(const std::function<KernelCase()> &build, const char *what) {
  KernelCase reference = build();
  Status status = reference.runDirect(nullptr);
  ASSERT_TRUE(status.ok()) << what << ": " << status.toString();
  for (unsigned threads : {1u, 3u, 8u}) {
    cpu::ThreadPool pool(threads);
    KernelCase kernel = build();
    ASSERT_TRUE(kernel.runDirect(&pool).ok()) << what;
    for (uint32_t i = 0; i < reference.numOutputs(); ++i)
      EXPECT_EQ(kernel.outputBytes(i), reference.outputBytes(i))
          << what << " output " << i << " with " << threads << " threads";
  }
}

TEST(DeterminismTest, HeavyKernelsAreBitIdenticalForAnyThreadCount) {
  expectThreadCountInvariant(
      [] {
        KernelCase k("attention", {AttrDesc::integer("causal", 1), AttrDesc::integer("window", 9),
                                   AttrDesc::number("scale", 0.25)});
        k.input("q", DType::BF16, {2, 4, 33, 16}, uniformValues(2 * 4 * 33 * 16, 1));
        k.input("k", DType::BF16, {2, 2, 33, 16}, uniformValues(2 * 2 * 33 * 16, 2));
        k.input("v", DType::BF16, {2, 2, 33, 8}, uniformValues(2 * 2 * 33 * 8, 3));
        k.output("o", DType::BF16, {2, 4, 33, 8});
        return k;
      },
      "attention");
  expectThreadCountInvariant(
      [] {
        KernelCase k("gated_delta_rule", {AttrDesc::integer("chunk_size", 16)});
        k.input("q", DType::F32, {2, 40, 2, 16}, uniformValues(2 * 40 * 2 * 16, 4, -0.25f, 0.25f));
        k.input("k", DType::F32, {2, 40, 2, 16}, uniformValues(2 * 40 * 2 * 16, 5, -0.25f, 0.25f));
        k.input("v", DType::F32, {2, 40, 4, 8}, uniformValues(2 * 40 * 4 * 8, 6));
        k.input("g", DType::F32, {2, 40, 4}, uniformValues(2 * 40 * 4, 7, -1, 0));
        k.input("beta", DType::F32, {2, 40, 4}, uniformValues(2 * 40 * 4, 8, 0, 1));
        k.output("o", DType::F32, {2, 40, 4, 8});
        return k;
      },
      "gated_delta_rule");
  expectThreadCountInvariant(
      [] {
        KernelCase k("grouped_matmul");
        k.input("xs", DType::F32, {90, 24}, uniformValues(90 * 24, 9));
        k.input("w", DType::F32, {5, 20, 24}, uniformValues(5 * 20 * 24, 10));
        k.indexInput("group_sizes", DType::I32, {5}, {17, 0, 40, 3, 30});
        k.output("y", DType::F32, {90, 20});
        return k;
      },
      "grouped_matmul");
  expectThreadCountInvariant(
      [] {
        KernelCase k("cross_entropy");
        k.input("logits", DType::F32, {37, 500}, uniformValues(37 * 500, 11, -10, 10));
        std::vector<int64_t> targets(37);
        for (int64_t i = 0; i < 37; ++i)
          targets[i] = i % 5 == 0 ? -1 : (i * 131) % 500;
        k.indexInput("targets", DType::I32, {37}, targets);
        k.output("loss", DType::F32, {37});
        return k;
      },
      "cross_entropy");
  expectThreadCountInvariant(
      [] {
        KernelCase k("rms_norm", {AttrDesc::number("eps", 1e-6)});
        k.input("x", DType::BF16, {300, 64}, uniformValues(300 * 64, 12));
        k.input("w", DType::BF16, {64}, uniformValues(64, 13));
        k.output("y", DType::BF16, {300, 64});
        return k;
      },
      "rms_norm");
  expectThreadCountInvariant(
      [] {
        KernelCase k("silu");
        k.input("x", DType::F32, {200000}, uniformValues(200000, 14, -6, 6));
        k.output("y", DType::F32, {200000});
        return k;
      },
      "silu");
  expectThreadCountInvariant(
      [] {
        KernelCase k("init_param",
                     {AttrDesc::string("rule", "trunc_normal"), AttrDesc::integer("seed", 5),
                      AttrDesc::integer("param_index", 2), AttrDesc::number("std", 0.02)});
        k.output("p", DType::F32, {70000});
        return k;
      },
      "init_param");
  expectThreadCountInvariant(
      [] {
        KernelCase k("moe_route",
                     {AttrDesc::integer("top_k", 2), AttrDesc::integer("n_groups", 2),
                      AttrDesc::integer("n_limited_groups", 1), AttrDesc::integer("group_topk", 2),
                      AttrDesc::number("route_scale", 1)});
        k.input("logits", DType::F32, {500, 8}, uniformValues(4000, 15));
        k.input("bias", DType::F32, {8}, uniformValues(8, 16, -0.01f, 0.01f));
        k.output("weights", DType::F32, {500, 2});
        k.output("indices", DType::I32, {500, 2});
        k.output("scores", DType::F32, {500, 8});
        return k;
      },
      "moe_route");
}

} // namespace
