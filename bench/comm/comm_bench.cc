//===- comm_bench.cc - Collective bandwidth through the runtime's NCCL path -===//
//
//   fusion-comm-bench --nproc N [--sizes 1M,16M,256M] [--iters 20] [--warmup 5]
//
// Measures all_reduce, all_gather, reduce_scatter and all_to_all through the same
// Communicator the CUDA executor uses (runtime/src/comm/nccl_comm.cc: its own stream, a
// blocking wait with async-error polling), on fp32 device buffers, one process per GPU
// (started by the runtime's launcher, or by torchrun / srun). Sizes are the payload per call
// in bytes: the full buffer for all_reduce, the gathered / scattered buffer for the others
// (nccl-tests' convention). Rank 0 prints per collective and size the mean time per call,
// the algorithm bandwidth (size / time) and the bus bandwidth (the bytes each rank moves
// over its links: all_reduce 2(n−1)/n, the others (n−1)/n of the size, per second), next to
// the bus bandwidth the cost model assumes inside a node (fusionc --report --mesh:
// NVLink 450 GB/s per direction × kLinkEfficiency 0.8 = 360 GB/s, frontend/Spec/CostModel.h).
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/comm.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace fusion::rt;

namespace {

constexpr double kModelBusBandwidth = 450e9 * 0.8; // CostModel.h: NVLink × kLinkEfficiency

const char *kUsage =
    "usage: fusion-comm-bench --nproc N [--sizes LIST] [--iters K] [--warmup W]\n"
    "  --nproc N      ranks (one process and GPU each) started on this host; leave it out\n"
    "                 under torchrun / srun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, ...)\n"
    "  --sizes LIST   payload bytes per call, comma separated, K/M/G suffixes (default\n"
    "                 1M,16M,64M,256M)\n"
    "  --iters K      timed calls per collective and size (default 20)\n"
    "  --warmup W     untimed calls first (default 5)\n";

bool parseSize(const std::string &text, size_t &bytes) {
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || value <= 0)
    return false;
  std::string suffix = end;
  double scale = suffix.empty() ? 1 : suffix == "K" ? 1024.0 : suffix == "M" ? 1048576.0
                                  : suffix == "G"  ? 1073741824.0 : -1;
  if (scale < 0)
    return false;
  bytes = static_cast<size_t>(value * scale);
  return true;
}

int fail(const std::string &message) {
  std::fprintf(stderr, "fusion-comm-bench: error: %s\n", message.c_str());
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  int nproc = 0, iters = 20, warmup = 5;
  std::vector<size_t> sizes = {1u << 20, 16u << 20, 64u << 20, 256u << 20};
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fputs(kUsage, stderr);
      return fail(flag + " needs a value");
    }
    std::string value = argv[++i];
    if (flag == "--nproc") {
      nproc = std::atoi(value.c_str());
    } else if (flag == "--iters") {
      iters = std::atoi(value.c_str());
    } else if (flag == "--warmup") {
      warmup = std::atoi(value.c_str());
    } else if (flag == "--sizes") {
      sizes.clear();
      size_t start = 0;
      while (start <= value.size()) {
        size_t comma = value.find(',', start);
        std::string part = value.substr(start, comma - start);
        size_t bytes = 0;
        if (!parseSize(part, bytes))
          return fail("--sizes: cannot read '" + part + "' (e.g. 1M,64M,1G)");
        sizes.push_back(bytes);
        if (comma == std::string::npos)
          break;
        start = comma + 1;
      }
    } else {
      std::fputs(kUsage, stderr);
      return fail("unknown flag '" + flag + "'");
    }
  }
  if (iters < 1 || warmup < 0)
    return fail("--iters must be >= 1 and --warmup >= 0");

  StatusOr<std::optional<RankEnvironment>> env = readRankEnvironment();
  if (!env.ok())
    return fail(env.status().message());
  if (!*env) {
    if (nproc < 1)
      return fail("--nproc N is required outside torchrun / srun");
    std::vector<std::string> args = relaunchCommand(argc, argv, "--nproc");
    StatusOr<int> code = launchLocalRanks(args, nproc, std::chrono::seconds(10), stderr);
    if (!code.ok())
      return fail(code.status().message());
    return *code;
  }
  const RankEnvironment &rank = **env;
  StatusOr<std::unique_ptr<Communicator>> comm =
      createNcclCommunicator(rank, std::chrono::seconds(120));
  if (!comm.ok())
    return fail(comm.status().message());
  Communicator &c = **comm;
  int n = c.size();
  size_t maxBytes = *std::max_element(sizes.begin(), sizes.end());
  void *send = nullptr, *recv = nullptr;
  if (cudaMalloc(&send, maxBytes) != cudaSuccess || cudaMalloc(&recv, maxBytes) != cudaSuccess)
    return fail("cannot allocate 2 x " + std::to_string(maxBytes) + " bytes on the GPU");
  cudaMemset(send, 0, maxBytes);
  cudaDeviceSynchronize();
  if (rank.rank == 0) {
    cudaDeviceProp properties;
    cudaGetDeviceProperties(&properties, rank.localRank);
    std::printf("fusion-comm-bench: %d ranks, %s, fp32, %d timed calls after %d warm-up; "
                "model bus bandwidth %.0f GB/s (CostModel.h)\n",
                n, properties.name, iters, warmup, kModelBusBandwidth / 1e9);
    std::printf("%-15s %12s %12s %12s %12s %8s\n", "collective", "bytes", "time (us)",
                "algbw GB/s", "busbw GB/s", "model");
  }
  const char *names[] = {"all_reduce", "all_gather", "reduce_scatter", "all_to_all"};
  for (int kind = 0; kind < 4; ++kind) {
    for (size_t bytes : sizes) {
      size_t count = bytes / 4;
      count -= count % static_cast<size_t>(n);
      if (count == 0)
        continue;
      size_t perRank = count / static_cast<size_t>(n);
      std::vector<size_t> counts(static_cast<size_t>(n), perRank);
      auto call = [&]() -> Status {
        switch (kind) {
        case 0:
          return c.allReduce(send, recv, count, schema::DType::F32, schema::ReduceOp::Sum,
                             "bench all_reduce");
        case 1:
          return c.allGather(send, recv, perRank, schema::DType::F32, "bench all_gather");
        case 2:
          return c.reduceScatter(send, recv, perRank, schema::DType::F32,
                                 schema::ReduceOp::Sum, "bench reduce_scatter");
        default:
          return c.allToAllV(send, counts, recv, counts, schema::DType::F32, "bench all_to_all");
        }
      };
      for (int i = 0; i < warmup; ++i)
        if (Status s = call(); !s.ok())
          return fail(s.message());
      if (Status s = c.barrier("bench barrier"); !s.ok())
        return fail(s.message());
      auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < iters; ++i)
        if (Status s = call(); !s.ok())
          return fail(s.message());
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iters;
      double payload = static_cast<double>(count) * 4;
      double factor = (kind == 0 ? 2.0 : 1.0) * (n - 1) / n;
      double algbw = payload / seconds, busbw = algbw * factor;
      if (rank.rank == 0)
        std::printf("%-15s %12.0f %12.1f %12.1f %12.1f %7.0f%%\n", names[kind], payload,
                    seconds * 1e6, algbw / 1e9, busbw / 1e9, 100.0 * busbw / kModelBusBandwidth);
    }
  }
  std::fflush(stdout);
  cudaFree(send);
  cudaFree(recv);
  return 0;
}
