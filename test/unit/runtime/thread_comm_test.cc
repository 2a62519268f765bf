//===- thread_comm_test.cc - The CPU backend's shared-memory communicator -===//
//
// ThreadGroup collectives with 1 to 4 ranks (threads) against hand-computed results, the
// bit-identical determinism of its reductions whatever order the threads arrive in, and its
// failure modes: mismatched calls, a rank that never arrives (timeout), abort(), invalid
// arguments, and calls after the group aborted.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/comm.h"

#include "runtime/src/numeric.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <random>
#include <thread>

using namespace fusion::rt;
using schema::DType;
using schema::ReduceOp;

namespace {

using Body = std::function<Status(Communicator &)>;

std::unique_ptr<ThreadGroup> makeGroup(int size, std::chrono::milliseconds timeout =
                                                     std::chrono::seconds(30)) {
  auto group = ThreadGroup::create(size, ThreadGroupOptions{timeout});
  EXPECT_TRUE(group.ok()) << group.status().toString();
  return std::move(group).value();
}

/// Runs `body` on every rank of `group`, one thread per rank, each started after a random
/// delay (0..maxDelayUs) drawn from `seed`, and returns the ranks' statuses.
std::vector<Status> runRanks(ThreadGroup &group, const Body &body, unsigned seed = 0,
                             int maxDelayUs = 0) {
  std::vector<Status> statuses(group.size());
  std::vector<std::thread> threads;
  std::mt19937 rng(seed);
  for (int rank = 0; rank < group.size(); ++rank) {
    int delay = maxDelayUs ? int(rng() % unsigned(maxDelayUs)) : 0;
    threads.emplace_back([&, rank, delay] {
      if (delay)
        std::this_thread::sleep_for(std::chrono::microseconds(delay));
      statuses[rank] = body(group.comm(rank));
    });
  }
  for (std::thread &thread : threads)
    thread.join();
  return statuses;
}

void expectAllOk(const std::vector<Status> &statuses) {
  for (size_t rank = 0; rank < statuses.size(); ++rank)
    EXPECT_TRUE(statuses[rank].ok()) << "rank " << rank << ": " << statuses[rank].toString();
}

std::vector<uint16_t> toBf16(const std::vector<float> &values) {
  std::vector<uint16_t> bits;
  for (float v : values)
    bits.push_back(floatToBf16(v));
  return bits;
}

std::vector<float> fromBf16(const std::vector<uint16_t> &bits) {
  std::vector<float> values;
  for (uint16_t b : bits)
    values.push_back(bf16ToFloat(b));
  return values;
}

/// Rank r's all-reduce input: element i is ±(r + 1) * (i + 1), negative for odd i. Every
/// value and every partial sum is a small integer, exact in f32 and bf16.
std::vector<float> reduceInput(int rank, size_t count) {
  std::vector<float> values(count);
  for (size_t i = 0; i < count; ++i)
    values[i] = float((i % 2 ? -1 : 1) * (rank + 1) * int(i + 1));
  return values;
}

/// The hand-computed reduction of reduceInput over `n` ranks: sum_r (r + 1) = n(n+1)/2.
std::vector<float> reduceExpected(int n, size_t count, ReduceOp op) {
  std::vector<float> values(count);
  for (size_t i = 0; i < count; ++i) {
    float sign = i % 2 ? -1.0f : 1.0f, magnitude = float(i + 1);
    float sum = sign * magnitude * float(n * (n + 1) / 2);
    if (op == ReduceOp::Sum)
      values[i] = sum;
    else if (op == ReduceOp::Avg)
      values[i] = sum / float(n);
    else // max: rank n-1 for positive elements, rank 0 for negative ones
      values[i] = sign > 0 ? magnitude * float(n) : -magnitude;
  }
  return values;
}

class CommSizeTest : public ::testing::TestWithParam<int> {};

INSTANTIATE_TEST_SUITE_P(Ranks, CommSizeTest, ::testing::Values(1, 2, 3, 4),
                         [](const auto &info) { return "n" + std::to_string(info.param); });

//===----------------------------------------------------------------------===//
// Results
//===----------------------------------------------------------------------===//

TEST_P(CommSizeTest, AllReduceF32) {
  int n = GetParam();
  auto group = makeGroup(n);
  const size_t count = 7;
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max}) {
    std::vector<std::vector<float>> out(n, std::vector<float>(count, -99.0f));
    std::vector<std::vector<float>> inPlace(n);
    expectAllOk(runRanks(*group, [&](Communicator &comm) {
      int r = comm.rank();
      std::vector<float> in = reduceInput(r, count);
      FUSION_RETURN_IF_ERROR(
          comm.allReduce(in.data(), out[r].data(), count, DType::F32, op, "all_reduce of x"));
      inPlace[r] = reduceInput(r, count);
      return comm.allReduce(inPlace[r].data(), inPlace[r].data(), count, DType::F32, op,
                            "in-place all_reduce of x");
    }));
    for (int r = 0; r < n; ++r) {
      EXPECT_EQ(out[r], reduceExpected(n, count, op)) << "rank " << r << " op " << int(op);
      EXPECT_EQ(inPlace[r], reduceExpected(n, count, op)) << "rank " << r << " op " << int(op);
    }
  }
}

TEST_P(CommSizeTest, AllReduceBf16) {
  int n = GetParam();
  auto group = makeGroup(n);
  const size_t count = 6;
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max}) {
    std::vector<std::vector<uint16_t>> out(n, std::vector<uint16_t>(count));
    expectAllOk(runRanks(*group, [&](Communicator &comm) {
      std::vector<uint16_t> buf = toBf16(reduceInput(comm.rank(), count));
      FUSION_RETURN_IF_ERROR(comm.allReduce(buf.data(), buf.data(), count, DType::BF16, op,
                                            "all_reduce of bf16 grads"));
      out[comm.rank()] = buf;
      return Status::okStatus();
    }));
    for (int r = 0; r < n; ++r)
      EXPECT_EQ(fromBf16(out[r]), reduceExpected(n, count, op)) << "rank " << r;
  }
}

// bf16 inputs are widened and summed in fp32: 1 + 2^-8 + 2^-8 = 1 + 2^-7, representable in
// bf16. Summing in bf16 would round 1 + 2^-8 back to 1 (ties to even) at each step.
TEST(ThreadCommTest, Bf16SumAccumulatesInFp32) {
  auto group = makeGroup(3);
  std::vector<uint16_t> out(3);
  expectAllOk(runRanks(*group, [&](Communicator &comm) {
    uint16_t in = floatToBf16(comm.rank() == 0 ? 1.0f : std::ldexp(1.0f, -8));
    uint16_t result = 0;
    FUSION_RETURN_IF_ERROR(
        comm.allReduce(&in, &result, 1, DType::BF16, ReduceOp::Sum, "all_reduce of tiny"));
    out[comm.rank()] = result;
    return Status::okStatus();
  }));
  for (uint16_t bits : out)
    EXPECT_EQ(bits, 0x3F81) << bf16ToFloat(bits); // 1 + 2^-7
}

TEST_P(CommSizeTest, AllReduceI32SumAndMax) {
  int n = GetParam();
  auto group = makeGroup(n);
  std::vector<std::vector<int32_t>> sums(n), maxes(n);
  expectAllOk(runRanks(*group, [&](Communicator &comm) {
    int r = comm.rank();
    std::vector<int32_t> in = {r, 10 * r, -r};
    sums[r].resize(3);
    maxes[r].resize(3);
    FUSION_RETURN_IF_ERROR(comm.allReduce(in.data(), sums[r].data(), 3, DType::I32,
                                          ReduceOp::Sum, "all_reduce of token counts"));
    return comm.allReduce(in.data(), maxes[r].data(), 3, DType::I32, ReduceOp::Max,
                          "all_reduce max of token counts");
  }));
  int32_t t = n * (n - 1) / 2;
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(sums[r], (std::vector<int32_t>{t, 10 * t, -t}));
    EXPECT_EQ(maxes[r], (std::vector<int32_t>{n - 1, 10 * (n - 1), 0}));
  }
}

TEST_P(CommSizeTest, AllGatherConcatenatesInRankOrder) {
  int n = GetParam();
  auto group = makeGroup(n);
  const size_t per = 3;
  std::vector<std::vector<float>> out(n, std::vector<float>(n * per)), inPlace(n);
  expectAllOk(runRanks(*group, [&](Communicator &comm) {
    int r = comm.rank();
    std::vector<float> in = {10.0f * r, 10.0f * r + 1, 10.0f * r + 2};
    FUSION_RETURN_IF_ERROR(
        comm.allGather(in.data(), out[r].data(), per, DType::F32, "all_gather of w"));
    // In place: this rank's chunk already sits at its slot of the output.
    inPlace[r].assign(n * per, -1.0f);
    std::copy(in.begin(), in.end(), inPlace[r].begin() + r * per);
    return comm.allGather(inPlace[r].data() + r * per, inPlace[r].data(), per, DType::F32,
                          "in-place all_gather of w");
  }));
  std::vector<float> expected;
  for (int p = 0; p < n; ++p)
    for (size_t k = 0; k < per; ++k)
      expected.push_back(10.0f * p + float(k));
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(out[r], expected) << "rank " << r;
    EXPECT_EQ(inPlace[r], expected) << "rank " << r;
  }
}

TEST_P(CommSizeTest, ReduceScatterGivesEachRankItsChunk) {
  int n = GetParam();
  auto group = makeGroup(n);
  const size_t per = 2;
  std::vector<std::vector<float>> sums(n, std::vector<float>(per)), avgs = sums;
  expectAllOk(runRanks(*group, [&](Communicator &comm) {
    int r = comm.rank();
    std::vector<float> in(n * per);
    for (size_t j = 0; j < in.size(); ++j)
      in[j] = float(100 * r + int(j)); // element j of rank r
    FUSION_RETURN_IF_ERROR(comm.reduceScatter(in.data(), sums[r].data(), per, DType::F32,
                                              ReduceOp::Sum, "reduce_scatter of grads"));
    return comm.reduceScatter(in.data(), avgs[r].data(), per, DType::F32, ReduceOp::Avg,
                              "reduce_scatter avg of grads");
  }));
  // Rank r gets elements j = r*per + k summed over p: 100 * n(n-1)/2 + n * j.
  for (int r = 0; r < n; ++r)
    for (size_t k = 0; k < per; ++k) {
      float j = float(r * per + k);
      float sum = 100.0f * float(n * (n - 1) / 2) + float(n) * j;
      EXPECT_EQ(sums[r][k], sum) << "rank " << r << " k " << k;
      EXPECT_EQ(avgs[r][k], sum / float(n)) << "rank " << r << " k " << k;
    }
}

/// Elements rank p sends to rank q in the all-to-all tests: uneven, and zero when
/// (p + 2q) % 3 == 0 (e.g. rank 0 to itself).
size_t a2aCount(int p, int q) { return size_t((p + 2 * q) % 3); }

TEST_P(CommSizeTest, AllToAllVUnevenAndZeroCounts) {
  int n = GetParam();
  auto group = makeGroup(n);
  std::vector<std::vector<int32_t>> out(n);
  expectAllOk(runRanks(*group, [&](Communicator &comm) {
    int r = comm.rank();
    std::vector<size_t> sendCounts(n), recvCounts(n);
    std::vector<int32_t> send;
    for (int q = 0; q < n; ++q) {
      sendCounts[q] = a2aCount(r, q);
      recvCounts[q] = a2aCount(q, r);
      for (size_t k = 0; k < sendCounts[q]; ++k)
        send.push_back(1000 * r + 100 * q + int(k)); // from r, to q, k-th
    }
    size_t total = 0;
    for (size_t c : recvCounts)
      total += c;
    out[r].assign(total, -1);
    return comm.allToAllV(send.data(), sendCounts, out[r].data(), recvCounts, DType::I32,
                          "all_to_all_v of moe tokens");
  }));
  for (int r = 0; r < n; ++r) {
    std::vector<int32_t> expected;
    for (int p = 0; p < n; ++p)
      for (size_t k = 0; k < a2aCount(p, r); ++k)
        expected.push_back(1000 * p + 100 * r + int(k));
    EXPECT_EQ(out[r], expected) << "rank " << r;
  }
}

// The same exchange spelled out for 3 ranks: counts[p][q] = (p + 2q) % 3 is
//   rank 0 -> {0, 2, 1}, rank 1 -> {1, 0, 2}, rank 2 -> {2, 1, 0}.
TEST(ThreadCommTest, AllToAllVHandBuilt) {
  auto group = makeGroup(3);
  std::vector<std::vector<float>> send = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};
  std::vector<std::vector<size_t>> sendCounts = {{0, 2, 1}, {1, 0, 2}, {2, 1, 0}};
  std::vector<std::vector<size_t>> recvCounts = {{0, 1, 2}, {2, 0, 1}, {1, 2, 0}};
  std::vector<std::vector<float>> out = {std::vector<float>(3), std::vector<float>(3),
                                         std::vector<float>(3)};
  expectAllOk(runRanks(*group, [&](Communicator &comm) {
    int r = comm.rank();
    return comm.allToAllV(send[r].data(), sendCounts[r], out[r].data(), recvCounts[r],
                          DType::F32, "all_to_all_v by hand");
  }));
  EXPECT_EQ(out[0], (std::vector<float>{4, 7, 8}));
  EXPECT_EQ(out[1], (std::vector<float>{1, 2, 9}));
  EXPECT_EQ(out[2], (std::vector<float>{3, 5, 6}));
}

TEST_P(CommSizeTest, BroadcastCopiesTheRoot) {
  int n = GetParam();
  auto group = makeGroup(n);
  for (int root : {0, n - 1}) {
    std::vector<std::vector<uint16_t>> bufs(n);
    expectAllOk(runRanks(*group, [&](Communicator &comm) {
      int r = comm.rank();
      bufs[r] = toBf16({float(r), float(r) + 0.5f, -float(r)});
      return comm.broadcast(bufs[r].data(), 3, DType::BF16, root, "broadcast of seed");
    }));
    for (int r = 0; r < n; ++r)
      EXPECT_EQ(fromBf16(bufs[r]), (std::vector<float>{float(root), root + 0.5f, -float(root)}))
          << "rank " << r << " root " << root;
  }
}

TEST_P(CommSizeTest, BarrierWaitsForEveryRank) {
  int n = GetParam();
  auto group = makeGroup(n);
  std::atomic<int> before{0};
  std::vector<int> seen(n);
  expectAllOk(runRanks(
      *group,
      [&](Communicator &comm) {
        ++before;
        FUSION_RETURN_IF_ERROR(comm.barrier("barrier at step start"));
        seen[comm.rank()] = before.load();
        return Status::okStatus();
      },
      /*seed=*/7, /*maxDelayUs=*/20000));
  for (int r = 0; r < n; ++r)
    EXPECT_EQ(seen[r], n) << "rank " << r;
}

//===----------------------------------------------------------------------===//
// Determinism
//===----------------------------------------------------------------------===//

// Inputs whose sums round differently in different orders; 20 runs with random thread start
// delays must give the same bits, on every rank, as a serial sum in rank order.
TEST(ThreadCommTest, ReductionsAreBitIdenticalWhateverTheArrivalOrder) {
  const int n = 4;
  const size_t count = 257;
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-1e3f, 1e3f);
  std::vector<std::vector<float>> in(n, std::vector<float>(count));
  for (auto &values : in)
    for (float &v : values)
      v = dist(rng) * std::ldexp(1.0f, int(rng() % 40) - 20);
  std::vector<float> reference(count);
  for (size_t i = 0; i < count; ++i) {
    float acc = in[0][i];
    for (int p = 1; p < n; ++p)
      acc += in[p][i];
    reference[i] = acc;
  }
  auto group = makeGroup(n);
  std::vector<float> firstScatter;
  std::vector<uint16_t> firstBf16;
  for (unsigned run = 0; run < 20; ++run) {
    std::vector<std::vector<float>> sums(n, std::vector<float>(count));
    std::vector<std::vector<float>> scatter(n, std::vector<float>(count / n));
    std::vector<std::vector<uint16_t>> bf(n);
    expectAllOk(runRanks(
        *group,
        [&](Communicator &comm) {
          int r = comm.rank();
          FUSION_RETURN_IF_ERROR(comm.allReduce(in[r].data(), sums[r].data(), count, DType::F32,
                                                ReduceOp::Sum, "all_reduce of grads"));
          FUSION_RETURN_IF_ERROR(comm.reduceScatter(in[r].data(), scatter[r].data(), count / n,
                                                    DType::F32, ReduceOp::Avg,
                                                    "reduce_scatter of grads"));
          bf[r] = toBf16(in[r]);
          return comm.allReduce(bf[r].data(), bf[r].data(), count, DType::BF16, ReduceOp::Sum,
                                "all_reduce of bf16 grads");
        },
        /*seed=*/run, /*maxDelayUs=*/2000));
    std::vector<float> gathered;
    for (int r = 0; r < n; ++r) {
      ASSERT_EQ(std::memcmp(sums[r].data(), reference.data(), count * sizeof(float)), 0)
          << "run " << run << " rank " << r;
      ASSERT_EQ(bf[r], bf[0]) << "run " << run << " rank " << r;
      gathered.insert(gathered.end(), scatter[r].begin(), scatter[r].end());
    }
    if (run == 0) {
      firstScatter = gathered;
      firstBf16 = bf[0];
    }
    ASSERT_EQ(std::memcmp(gathered.data(), firstScatter.data(), gathered.size() * sizeof(float)),
              0)
        << "run " << run;
    ASSERT_EQ(bf[0], firstBf16) << "run " << run;
  }
}

//===----------------------------------------------------------------------===//
// Failures
//===----------------------------------------------------------------------===//

void expectContains(const Status &status, const std::vector<std::string> &parts,
                    const std::string &context) {
  ASSERT_FALSE(status.ok()) << context;
  for (const std::string &part : parts)
    EXPECT_NE(status.message().find(part), std::string::npos)
        << context << ": '" << part << "' not in: " << status.message();
}

TEST(ThreadCommTest, MismatchedKindsFailOnEveryRankNamingBoth) {
  auto group = makeGroup(2);
  std::vector<float> in(4, 1.0f), out(8);
  std::vector<Status> later(2);
  auto statuses = runRanks(*group, [&](Communicator &comm) {
    Status status =
        comm.rank() == 0
            ? comm.allGather(in.data(), out.data(), 4, DType::F32, "all_gather of layers.3.w")
            : comm.allReduce(in.data(), out.data(), 4, DType::F32, ReduceOp::Sum,
                             "all_reduce of layers.3.grad");
    later[comm.rank()] = comm.barrier("barrier after the mismatch");
    return status;
  });
  for (int r = 0; r < 2; ++r) {
    std::string context = "rank " + std::to_string(r);
    EXPECT_EQ(statuses[r].code(), StatusCode::kFailedPrecondition) << context;
    expectContains(statuses[r],
                   {"collective mismatch (different collectives)", "rank 0 called #1 all_gather",
                    "'all_gather of layers.3.w'", "rank 1 called #1 all_reduce(sum, 4 x f32)",
                    "'all_reduce of layers.3.grad'"},
                   context);
    // The group is aborted: the next call fails at once, quoting the mismatch.
    expectContains(later[r],
                   {"barrier after the mismatch: communicator group aborted: collective "
                    "mismatch"},
                   context);
  }
}

TEST(ThreadCommTest, MismatchedCountsAndDtypes) {
  struct Case {
    size_t count1;
    DType dtype1;
    const char *difference;
  };
  for (Case c : {Case{5, DType::F32, "different element counts"},
                 Case{4, DType::BF16, "different dtypes"}}) {
    auto group = makeGroup(2);
    std::vector<float> buf(8);
    auto statuses = runRanks(*group, [&](Communicator &comm) {
      bool one = comm.rank() == 1;
      return comm.allReduce(buf.data(), buf.data() + 0, one ? c.count1 : 4,
                            one ? c.dtype1 : DType::F32, ReduceOp::Sum, "all_reduce of g");
    });
    for (int r = 0; r < 2; ++r)
      expectContains(statuses[r],
                     {c.difference, "rank 0 called #1 all_reduce(sum, 4 x f32)",
                      "rank 1 called #1 all_reduce(sum, " + std::to_string(c.count1) + " x " +
                          dtypeName(c.dtype1)},
                     "rank " + std::to_string(r));
  }
}

TEST(ThreadCommTest, AllToAllVRecvCountMismatchNamesBothRanks) {
  auto group = makeGroup(2);
  auto statuses = runRanks(*group, [&](Communicator &comm) {
    std::vector<float> send(4), recv(8);
    // Rank 1 sends 2 elements to rank 0, but rank 0 expects 3 from rank 1.
    std::vector<size_t> sendCounts = comm.rank() == 0 ? std::vector<size_t>{1, 1}
                                                      : std::vector<size_t>{2, 1};
    std::vector<size_t> recvCounts = comm.rank() == 0 ? std::vector<size_t>{1, 3}
                                                      : std::vector<size_t>{1, 1};
    return comm.allToAllV(send.data(), sendCounts, recv.data(), recvCounts, DType::F32,
                          "all_to_all_v of tokens");
  });
  for (int r = 0; r < 2; ++r)
    expectContains(statuses[r],
                   {"all_to_all_v of tokens: all_to_all_v size mismatch: rank 1 sends 2 "
                    "elements to rank 0 but rank 0 expects 3 from rank 1"},
                   "rank " + std::to_string(r));
}

TEST(ThreadCommTest, MissingRankTimesOutNamingIt) {
  auto group = makeGroup(3, std::chrono::milliseconds(200));
  std::vector<float> in(2, 1.0f);
  std::vector<std::vector<float>> out(3, std::vector<float>(6));
  std::vector<double> elapsedMs(3);
  Status late;
  auto statuses = runRanks(*group, [&](Communicator &comm) {
    int r = comm.rank();
    FUSION_RETURN_IF_ERROR(comm.barrier("barrier at start"));
    if (r == 2) {
      // This rank "hangs" elsewhere, then arrives after the others gave up.
      std::this_thread::sleep_for(std::chrono::milliseconds(600));
      late = comm.allGather(in.data(), out[r].data(), 2, DType::F32, "all_gather of X");
      return Status::okStatus();
    }
    auto start = std::chrono::steady_clock::now();
    Status status = comm.allGather(in.data(), out[r].data(), 2, DType::F32, "all_gather of X");
    elapsedMs[r] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count();
    return status;
  });
  for (int r = 0; r < 2; ++r) {
    std::string context = "rank " + std::to_string(r);
    EXPECT_EQ(statuses[r].code(), StatusCode::kUnavailable) << context;
    expectContains(statuses[r],
                   {"all_gather of X: ", "timed out after 0.2 s in #2 all_gather",
                    "waiting for rank(s) 2 to call it", "rank 2's latest call: #1 barrier"},
                   context);
    EXPECT_GE(elapsedMs[r], 150.0) << context;
    EXPECT_LT(elapsedMs[r], 5000.0) << context;
  }
  EXPECT_TRUE(statuses[2].ok());
  // The late rank fails fast with the first error.
  EXPECT_EQ(late.code(), StatusCode::kUnavailable);
  expectContains(late, {"all_gather of X: communicator group aborted: rank ", "timed out"},
                 "late rank 2");
}

TEST(ThreadCommTest, TimeoutListsEveryMissingRank) {
  auto group = makeGroup(4, std::chrono::milliseconds(100));
  Status status = group->comm(0).barrier("barrier before eval");
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  expectContains(status,
                 {"barrier before eval: rank 0 timed out after 0.1 s in #1 barrier() "
                  "'barrier before eval' waiting for rank(s) 1, 2, 3 to call it",
                  "rank 1's latest call: none"},
                 "rank 0");
  // Every rank, including those that never arrived, now fails fast.
  for (int r = 0; r < 4; ++r) {
    auto start = std::chrono::steady_clock::now();
    Status later = group->comm(r).barrier("later barrier");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
    expectContains(later, {"later barrier: communicator group aborted: rank 0 timed out"},
                   "rank " + std::to_string(r));
  }
}

TEST(ThreadCommTest, AbortReleasesWaitingRanksWithTheReason) {
  auto group = makeGroup(3); // 30 s timeout: the abort, not the timeout, must release them
  std::vector<double> elapsedMs(3);
  std::vector<Status> later(3);
  auto statuses = runRanks(*group, [&](Communicator &comm) {
    int r = comm.rank();
    std::vector<float> buf(4, 1.0f);
    auto start = std::chrono::steady_clock::now();
    Status status;
    if (r == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      comm.abort("kernel 'mla_fwd' failed at train_step instruction 7");
      status = Status(StatusCode::kInternal, "kernel failed");
    } else {
      status = comm.allReduce(buf.data(), buf.data(), 4, DType::F32, ReduceOp::Sum,
                              "all_reduce of grads");
    }
    elapsedMs[r] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count();
    later[r] = comm.barrier("barrier after abort");
    return status;
  });
  for (int r : {0, 2}) {
    std::string context = "rank " + std::to_string(r);
    EXPECT_EQ(statuses[r].code(), StatusCode::kUnavailable) << context;
    expectContains(statuses[r],
                   {"all_reduce of grads: communicator group aborted: rank 1 aborted the "
                    "group: kernel 'mla_fwd' failed at train_step instruction 7"},
                   context);
    EXPECT_LT(elapsedMs[r], 5000.0) << context;
  }
  for (int r = 0; r < 3; ++r)
    expectContains(later[r], {"barrier after abort: communicator group aborted: rank 1 aborted"},
                   "rank " + std::to_string(r));
}

TEST(ThreadCommTest, FirstAbortWins) {
  auto group = makeGroup(2);
  group->comm(0).abort("first reason");
  group->comm(1).abort("second reason");
  Status status = group->comm(1).barrier("barrier");
  expectContains(status, {"rank 0 aborted the group: first reason"}, "rank 1");
  EXPECT_EQ(status.message().find("second reason"), std::string::npos);
}

TEST(ThreadCommTest, InvalidArgumentsAbortTheGroup) {
  auto group = makeGroup(2);
  auto statuses = runRanks(*group, [&](Communicator &comm) {
    std::vector<int32_t> buf(2, 1);
    return comm.allReduce(buf.data(), buf.data(), 2, DType::I32, ReduceOp::Avg,
                          "all_reduce of counts");
  });
  // Whichever rank checks first aborts; the other may fail its own check or be released.
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(statuses[r].code(), StatusCode::kInvalidArgument) << "rank " << r;
    expectContains(statuses[r],
                   {"all_reduce of counts: ", "avg is not defined on integer dtype i32"},
                   "rank " + std::to_string(r));
  }

  auto group2 = makeGroup(2);
  std::vector<float> buf(2);
  auto statuses2 = runRanks(*group2, [&](Communicator &comm) {
    int root = comm.rank() == 0 ? 2 : 0; // rank 0 names a root outside the group
    return comm.broadcast(buf.data(), 2, DType::F32, root, "broadcast of params");
  });
  expectContains(statuses2[0],
                 {"invalid broadcast arguments on rank 0", "root 2 is not a rank of a group of 2"},
                 "rank 0");
  expectContains(statuses2[1], {"broadcast of params: communicator group aborted: invalid"},
                 "rank 1");
}

TEST(ThreadCommTest, CreateRejectsBadSizes) {
  EXPECT_FALSE(ThreadGroup::create(0).ok());
  EXPECT_FALSE(ThreadGroup::create(2, ThreadGroupOptions{std::chrono::milliseconds(0)}).ok());
  auto group = ThreadGroup::create(3);
  ASSERT_TRUE(group.ok());
  EXPECT_EQ((*group)->size(), 3);
  EXPECT_EQ((*group)->comm(2).rank(), 2);
  EXPECT_EQ((*group)->comm(2).size(), 3);
}

} // namespace
