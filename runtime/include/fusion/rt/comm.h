//===- comm.h - Collective communication between the ranks of a mesh ------===//
//
// A Communicator is one rank's handle on a group of ranks that run the same plan (SPMD) and
// exchange data through collectives: all-reduce, all-gather, reduce-scatter, all-to-all with
// per-peer sizes, broadcast and barrier. The interface is backend-neutral, so that NCCL can
// implement it for the CUDA backend; this header also declares ThreadGroup, the CPU backend's
// implementation, where the ranks are threads of one process and buffers are exchanged
// through shared memory (for tests and the CPU oracle; see runtime/src/comm/thread_comm.cc).
//
// Contract shared by every implementation:
//  - Every rank of the group makes the same sequence of collective calls. A call whose kind,
//    dtype, element count, reduce op or root differs from its peers' is an error on every
//    rank, naming the ranks involved and their calls; it aborts the group.
//  - Every call takes `what`, a human-readable label of the operation ("all_gather of
//    layers.3.attn.wq_b.weight at train_step instruction 42 (loc ...)") that errors quote.
//  - A failure (mismatch, timeout, abort(), invalid argument) aborts the whole group: every
//    later call on any rank fails at once with the first error, so no rank hangs waiting for
//    a peer that has already given up.
//  - Counts are in elements of `dtype`. Buffers must stay valid for the duration of the call.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/plan.h"
#include "fusion/rt/status.h"

#include <chrono>
#include <cstdio>
#include <optional>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fusion::rt {

/// The collective kinds, as named in messages ("all_reduce", ...). Wider than the plan's
/// schema::CollectiveKind: broadcast and barrier exist for the runtime's own use (start-up,
/// checkpoints).
enum class CollectiveCall {
  kAllReduce,
  kAllGather,
  kReduceScatter,
  kAllToAllV,
  kBroadcast,
  kBarrier,
};

/// "all_reduce", "all_gather", "reduce_scatter", "all_to_all_v", "broadcast", "barrier".
const char *collectiveCallName(CollectiveCall call);

/// One rank's handle on a communicator group.
class Communicator {
public:
  virtual ~Communicator() = default;

  /// This rank, in [0, size()).
  virtual int rank() const = 0;
  /// Number of ranks in the group.
  virtual int size() const = 0;

  /// recv[i] = op over ranks of send[i], for i < count. Float dtypes (f32, bf16, f16) reduce
  /// in fp32; integer dtypes (i32, i64) support Sum and Max only (Avg is rejected). In place
  /// (send == recv) is allowed.
  virtual Status allReduce(const void *send, void *recv, size_t count, schema::DType dtype,
                           schema::ReduceOp op, std::string_view what) = 0;

  /// recv (size() * countPerRank elements) = concatenation of every rank's send, in rank
  /// order. send may alias recv's own chunk (recv + rank() * countPerRank elements).
  virtual Status allGather(const void *send, void *recv, size_t countPerRank,
                           schema::DType dtype, std::string_view what) = 0;

  /// recv (countPerRank elements) = op over ranks of chunk rank() of send (size() *
  /// countPerRank elements). Same dtype rules as allReduce.
  virtual Status reduceScatter(const void *send, void *recv, size_t countPerRank,
                               schema::DType dtype, schema::ReduceOp op,
                               std::string_view what) = 0;

  /// Personalised exchange with variable sizes. send holds sendCounts[p] elements for each
  /// peer p, consecutively in peer order; recv receives recvCounts[p] elements from each
  /// peer p, consecutively in peer order. Both vectors have size() entries, and recvCounts[p]
  /// on this rank must equal sendCounts[rank()] on rank p (checked: a mismatch is an error
  /// naming both ranks).
  virtual Status allToAllV(const void *send, const std::vector<size_t> &sendCounts, void *recv,
                           const std::vector<size_t> &recvCounts, schema::DType dtype,
                           std::string_view what) = 0;

  /// Copies `count` elements of rank `root`'s buf into every other rank's buf.
  virtual Status broadcast(void *buf, size_t count, schema::DType dtype, int root,
                           std::string_view what) = 0;

  /// Returns once every rank has called barrier.
  virtual Status barrier(std::string_view what) = 0;

  /// Aborts the group with `reason` (e.g. a kernel error on this rank): ranks waiting in a
  /// collective return an error quoting it, and every later call fails at once. The first
  /// failure wins; later aborts are ignored.
  virtual void abort(std::string_view reason) = 0;

  //===--- Stream-ordered use (device communicators only) -----------------===//

  /// True when enqueueOnStream works: the collective can run on the caller's device stream
  /// without the host waiting for it (NCCL). The CPU ThreadGroup says false.
  virtual bool supportsStreams() const { return false; }
  /// Enqueues one plan collective (all_reduce, all_gather, reduce_scatter, all_to_all with
  /// equal counts; device buffers) on `stream` (a cudaStream_t) and returns at once. Errors
  /// of the collective itself surface in waitStream.
  virtual Status enqueueOnStream(CollectiveCall /*call*/, const void * /*send*/,
                                 void * /*recv*/, size_t /*count*/, schema::DType /*dtype*/,
                                 schema::ReduceOp /*op*/, void * /*stream*/,
                                 std::string_view /*what*/) {
    return Status(StatusCode::kUnimplemented, "this communicator does not run on streams");
  }
  /// Waits until `stream` has drained, polling the communicator's asynchronous errors and
  /// the timeout (a peer that died shows up here instead of a hang); aborts on either.
  virtual Status waitStream(void * /*stream*/, std::string_view /*what*/) {
    return Status(StatusCode::kUnimplemented, "this communicator does not run on streams");
  }
};

/// Options of a ThreadGroup.
struct ThreadGroupOptions {
  /// How long a rank waits in a collective for its peers before it aborts the group with a
  /// timeout error naming the ranks that did not arrive.
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
};

/// The CPU backend's communicator group: `size` ranks that are threads of this process, each
/// driving comm(rank) from its own thread. Collectives rendezvous on shared state (a mutex,
/// a condition variable and a phase counter), read the peers' buffers directly, and return
/// only when every rank has finished reading, so buffers stay valid. Reductions are
/// deterministic: every element is accumulated in fp32 in rank order 0..size-1, whatever
/// order the threads arrive in, so results are bit-identical across runs and across ranks
/// (Avg = Sum / size). Each rank reduces the whole range itself: simple, not fast.
class ThreadGroup {
public:
  /// A group of `size` ranks (1 <= size <= 4096).
  static StatusOr<std::unique_ptr<ThreadGroup>> create(int size, ThreadGroupOptions options = {});
  ~ThreadGroup();

  int size() const { return static_cast<int>(comms_.size()); }
  /// The communicator of `rank` (0 <= rank < size()); owned by the group, which must outlive
  /// its use. Each communicator must be used by one thread at a time.
  Communicator &comm(int rank) { return *comms_[rank]; }

private:
  ThreadGroup() = default;
  std::vector<std::unique_ptr<Communicator>> comms_;
};

//===----------------------------------------------------------------------===//
// Processes as ranks: bootstrap, NCCL, the local launcher
//===----------------------------------------------------------------------===//

/// Where this process stands in a multi-process job, from its environment.
struct RankEnvironment {
  int rank = 0;
  int worldSize = 1;
  /// The GPU of this rank on its host.
  int localRank = 0;
  /// Rank 0's address and the port of the bootstrap exchange: FUSION_BOOTSTRAP_PORT when
  /// set (the --nproc launcher sets it), else MASTER_PORT + 1 under torchrun (MASTER_PORT is
  /// torchrun's own store) and MASTER_PORT under Slurm.
  std::string masterAddr;
  int masterPort = 0;
  /// "torchrun" (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or "slurm"
  /// (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; MASTER_ADDR / MASTER_PORT when set, else
  /// SLURM_LAUNCH_NODE_IPADDR and port 29500).
  std::string source;
};

/// The rank variables of this process's environment, or nullopt when none is set (a
/// single-process run). A partial or malformed set is an error naming the variable.
/// `getenv` is injectable for tests.
StatusOr<std::optional<RankEnvironment>>
readRankEnvironment(const char *(*getenv)(const char *) = nullptr);

/// The bootstrap exchange: rank 0 listens on masterPort and sends `blob` (its argument) to
/// every other rank; the others connect to masterAddr:masterPort (retrying until `timeout`)
/// and return the blob rank 0 sent. Errors name the address, the rank and the system error.
StatusOr<std::string> exchangeBootstrapBlob(const RankEnvironment &env, const std::string &blob,
                                            std::chrono::milliseconds timeout);

/// True when this build has NCCL (the CUDA backend).
bool isNcclBuilt();

/// An NCCL communicator of the ranks described by `env` on GPU `env.localRank`: rank 0
/// creates the NCCL unique id and the bootstrap exchange hands it to the others. Buffers
/// passed to its collectives may be device memory (used in place) or host memory (staged
/// through device memory). Each call waits for its own completion, polling NCCL for
/// asynchronous errors; one that exceeds `timeout` aborts the communicator and fails with
/// the collective's label, the rank and the time waited.
StatusOr<std::unique_ptr<Communicator>>
createNcclCommunicator(const RankEnvironment &env, std::chrono::milliseconds timeout);

/// The command that starts this program again as one rank: this executable
/// (/proc/self/exe, else argv[0]) and argv[1..] without `flag VALUE` / `flag=VALUE` (the
/// launcher's own `--nproc N`).
std::vector<std::string> relaunchCommand(int argc, char **argv, std::string_view flag);

/// The local launcher behind `--nproc N`: runs `argv` (argv[0] an executable path) N times
/// as ranks 0..N-1 of one job on this host, with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR
/// (127.0.0.1) and MASTER_PORT (a free port) set. Waits for all; when one exits with an
/// error or a signal, the others get SIGTERM (then SIGKILL after `grace`). Returns the exit
/// status of the first rank that failed (128 + signal for a signal), else 0; `report`
/// receives a line per failed rank.
StatusOr<int> launchLocalRanks(const std::vector<std::string> &argv, int nproc,
                               std::chrono::milliseconds grace, std::FILE *report);

} // namespace fusion::rt
