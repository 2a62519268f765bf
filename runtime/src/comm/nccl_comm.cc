//===- nccl_comm.cc - The NCCL Communicator (CUDA builds) -----------------===//
//
// One rank of a multi-process job on one GPU. Rank 0 makes the NCCL unique id and hands it
// to the others through the bootstrap exchange (bootstrap.cc). Every collective is enqueued
// on the communicator's own stream and waited for here: the caller (the CUDA executor, the
// trainer) has synchronised its own work first, so the call is complete on return, which is
// the Communicator contract. Waiting polls the stream and ncclCommGetAsyncError, so a peer
// that died or a hang past the timeout aborts the communicator (ncclCommAbort) and fails
// with the collective's label instead of blocking forever. (Initialisation is blocking: the
// bootstrap exchange has seen every rank before ncclCommInitRank runs.) Host buffers (the trainer's
// counts and stop flag) are staged through a device scratch buffer.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/comm.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <thread>

namespace fusion::rt {

namespace {

std::optional<ncclDataType_t> ncclType(schema::DType dtype) {
  switch (dtype) {
  case schema::DType::F32:
    return ncclFloat32;
  case schema::DType::BF16:
    return ncclBfloat16;
  case schema::DType::F16:
    return ncclFloat16;
  case schema::DType::I32:
    return ncclInt32;
  case schema::DType::I64:
    return ncclInt64;
  default:
    return std::nullopt;
  }
}

class NcclCommunicator final : public Communicator {
public:
  NcclCommunicator(const RankEnvironment &env, std::chrono::milliseconds timeout)
      : env_(env), timeout_(timeout) {}

  ~NcclCommunicator() override {
    if (comm_)
      aborted_ ? ncclCommAbort(comm_) : ncclCommDestroy(comm_);
    if (scratch_)
      cudaFree(scratch_);
    if (stream_)
      cudaStreamDestroy(stream_);
  }

  Status initialize() {
    if (cudaSetDevice(env_.localRank) != cudaSuccess) {
      (void)cudaGetLastError();
      return fail("initialisation", "cannot select GPU " + std::to_string(env_.localRank) +
                                        " (LOCAL_RANK)");
    }
    ncclUniqueId id;
    std::string blob;
    if (env_.rank == 0) {
      if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess)
        return fail("initialisation", std::string("ncclGetUniqueId: ") + ncclGetErrorString(r));
      blob.assign(reinterpret_cast<const char *>(&id), sizeof(id));
    }
    FUSION_ASSIGN_OR_RETURN(std::string received, exchangeBootstrapBlob(env_, blob, timeout_));
    if (received.size() != sizeof(id))
      return fail("initialisation", "the bootstrap blob has " + std::to_string(received.size()) +
                                        " bytes, not an NCCL id");
    std::memcpy(&id, received.data(), sizeof(id));
    if (cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking) != cudaSuccess)
      return fail("initialisation", "cannot create a CUDA stream");
    // Blocking init: the bootstrap exchange has already seen every rank alive.
    ncclResult_t r = ncclCommInitRank(&comm_, env_.worldSize, id, env_.rank);
    if (r != ncclSuccess)
      return fail("initialisation", std::string("ncclCommInitRank: ") + ncclGetErrorString(r) +
                                        " (" + ncclGetLastError(nullptr) + ")");
    return Status::okStatus();
  }

  int rank() const override { return env_.rank; }
  int size() const override { return env_.worldSize; }

  Status allReduce(const void *send, void *recv, size_t count, schema::DType dtype,
                   schema::ReduceOp op, std::string_view what) override {
    FUSION_ASSIGN_OR_RETURN(ncclRedOp_t redOp, reduceOp(op, dtype, what));
    size_t bytes = count * dtypeSize(dtype);
    return staged(send, bytes, recv, bytes, what, [&](const void *in, void *out) {
      return issue(CollectiveCall::kAllReduce, in, out, count, dtype, redOp, {}, {}, stream_);
    });
  }

  Status allGather(const void *send, void *recv, size_t countPerRank, schema::DType dtype,
                   std::string_view what) override {
    size_t bytes = countPerRank * dtypeSize(dtype);
    return staged(send, bytes, recv, bytes * env_.worldSize, what,
                  [&](const void *in, void *out) {
                    return issue(CollectiveCall::kAllGather, in, out, countPerRank, dtype,
                                 ncclSum, {}, {}, stream_);
                  });
  }

  Status reduceScatter(const void *send, void *recv, size_t countPerRank, schema::DType dtype,
                       schema::ReduceOp op, std::string_view what) override {
    FUSION_ASSIGN_OR_RETURN(ncclRedOp_t redOp, reduceOp(op, dtype, what));
    size_t bytes = countPerRank * dtypeSize(dtype);
    return staged(send, bytes * env_.worldSize, recv, bytes, what,
                  [&](const void *in, void *out) {
                    return issue(CollectiveCall::kReduceScatter, in, out, countPerRank, dtype,
                                 redOp, {}, {}, stream_);
                  });
  }

  Status allToAllV(const void *send, const std::vector<size_t> &sendCounts, void *recv,
                   const std::vector<size_t> &recvCounts, schema::DType dtype,
                   std::string_view what) override {
    size_t n = static_cast<size_t>(env_.worldSize);
    if (sendCounts.size() != n || recvCounts.size() != n)
      return fail(what, "all_to_all_v needs one count per rank");
    size_t size = dtypeSize(dtype);
    size_t sendTotal = 0, recvTotal = 0;
    for (size_t p = 0; p < n; ++p) {
      sendTotal += sendCounts[p];
      recvTotal += recvCounts[p];
    }
    return staged(send, sendTotal * size, recv, recvTotal * size, what,
                  [&](const void *in, void *out) {
                    return issue(CollectiveCall::kAllToAllV, in, out, 0, dtype, ncclSum,
                                 sendCounts, recvCounts, stream_);
                  });
  }

  Status broadcast(void *buf, size_t count, schema::DType dtype, int root,
                   std::string_view what) override {
    if (root < 0 || root >= env_.worldSize)
      return fail(what, "broadcast root " + std::to_string(root) + " is not a rank");
    size_t bytes = count * dtypeSize(dtype);
    return staged(buf, bytes, buf, bytes, what, [&](const void *in, void *out) {
      return ncclBroadcast(in, out, count, *ncclType(dtype), root, comm_, stream_);
    });
  }

  Status barrier(std::string_view what) override {
    int32_t token = 0;
    return allReduce(&token, &token, 1, schema::DType::I32, schema::ReduceOp::Sum, what);
  }

  bool supportsStreams() const override { return true; }

  Status enqueueOnStream(CollectiveCall call, const void *send, void *recv, size_t count,
                         schema::DType dtype, schema::ReduceOp op, void *stream,
                         std::string_view what) override {
    if (aborted_ || !comm_)
      return fail(what, "the communicator was aborted" +
                            (abortReason_.empty() ? std::string() : ": " + abortReason_));
    ncclRedOp_t redOp = ncclSum;
    if (call == CollectiveCall::kAllReduce || call == CollectiveCall::kReduceScatter) {
      FUSION_ASSIGN_OR_RETURN(redOp, reduceOp(op, dtype, what));
    } else if (!ncclType(dtype)) {
      return fail(what, "unsupported dtype for NCCL");
    }
    if (call == CollectiveCall::kBroadcast || call == CollectiveCall::kBarrier)
      return fail(what, "not a stream-ordered collective");
    // all_to_all: `count` elements for every peer.
    std::vector<size_t> counts;
    if (call == CollectiveCall::kAllToAllV)
      counts.assign(static_cast<size_t>(env_.worldSize), count);
    ncclResult_t r = issue(call, send, recv, count, dtype, redOp, counts, counts,
                           static_cast<cudaStream_t>(stream));
    if (r != ncclSuccess)
      return fail(what, std::string("NCCL: ") + ncclGetErrorString(r) + " (" +
                            ncclGetLastError(comm_) + ")");
    return Status::okStatus();
  }

  Status waitStream(void *streamHandle, std::string_view what) override {
    return waitFor(static_cast<cudaStream_t>(streamHandle), what);
  }

  void abort(std::string_view reason) override {
    if (comm_ && !aborted_) {
      aborted_ = true;
      abortReason_ = std::string(reason);
      ncclCommAbort(comm_);
      comm_ = nullptr;
    }
  }

private:
  /// Enqueues one collective on `stream` (device buffers). `count` is per rank for
  /// all_gather / reduce_scatter; all_to_all_v takes per-peer counts instead.
  ncclResult_t issue(CollectiveCall call, const void *in, void *out, size_t count,
                     schema::DType dtype, ncclRedOp_t op, const std::vector<size_t> &sendCounts,
                     const std::vector<size_t> &recvCounts, cudaStream_t stream) {
    if (!ncclType(dtype))
      return ncclInvalidArgument;
    ncclDataType_t type = *ncclType(dtype);
    switch (call) {
    case CollectiveCall::kAllReduce:
      return ncclAllReduce(in, out, count, type, op, comm_, stream);
    case CollectiveCall::kAllGather:
      return ncclAllGather(in, out, count, type, comm_, stream);
    case CollectiveCall::kReduceScatter:
      return ncclReduceScatter(in, out, count, type, op, comm_, stream);
    case CollectiveCall::kAllToAllV: {
      size_t size = dtypeSize(dtype);
      ncclResult_t r = ncclGroupStart();
      size_t sendOffset = 0, recvOffset = 0;
      for (size_t p = 0; p < sendCounts.size() && r == ncclSuccess; ++p) {
        if (sendCounts[p])
          r = ncclSend(static_cast<const char *>(in) + sendOffset * size, sendCounts[p], type,
                       static_cast<int>(p), comm_, stream);
        if (r == ncclSuccess && recvCounts[p])
          r = ncclRecv(static_cast<char *>(out) + recvOffset * size, recvCounts[p], type,
                       static_cast<int>(p), comm_, stream);
        sendOffset += sendCounts[p];
        recvOffset += recvCounts[p];
      }
      ncclResult_t end = ncclGroupEnd();
      return r != ncclSuccess ? r : end;
    }
    default:
      return ncclInvalidUsage;
    }
  }

  Status fail(std::string_view what, const std::string &message) {
    return Status(StatusCode::kUnavailable, "rank " + std::to_string(env_.rank) + " of " +
                                            std::to_string(env_.worldSize) + ": " +
                                            std::string(what) + ": " + message);
  }

  StatusOr<ncclRedOp_t> reduceOp(schema::ReduceOp op, schema::DType dtype,
                                 std::string_view what) {
    if (!ncclType(dtype))
      return fail(what, "unsupported dtype for NCCL");
    switch (op) {
    case schema::ReduceOp::Sum:
      return ncclSum;
    case schema::ReduceOp::Max:
      return ncclMax;
    case schema::ReduceOp::Avg:
      if (dtype == schema::DType::I32 || dtype == schema::DType::I64)
        return fail(what, "integers do not average");
      return ncclAvg;
    }
    return fail(what, "unknown reduce op");
  }

  /// Runs `enqueue(in, out)` on device pointers: host buffers are copied through scratch
  /// memory (input first, output after). Waits for completion with the timeout.
  template <typename Enqueue>
  Status staged(const void *send, size_t sendBytes, void *recv, size_t recvBytes,
                std::string_view what, Enqueue enqueue) {
    if (aborted_ || !comm_)
      return fail(what, "the communicator was aborted" +
                            (abortReason_.empty() ? std::string() : ": " + abortReason_));
    cudaPointerAttributes attributes;
    bool hostSend = cudaPointerGetAttributes(&attributes, send) != cudaSuccess ||
                    attributes.type == cudaMemoryTypeUnregistered ||
                    attributes.type == cudaMemoryTypeHost;
    (void)cudaGetLastError();
    const void *in = send;
    void *out = recv;
    if (hostSend) {
      size_t need = sendBytes + recvBytes;
      if (need > scratchBytes_) {
        if (scratch_)
          cudaFree(scratch_);
        scratch_ = nullptr;
        scratchBytes_ = 0;
        if (cudaMalloc(&scratch_, need) != cudaSuccess) {
          (void)cudaGetLastError();
          return fail(what, "cannot allocate " + std::to_string(need) + " bytes of staging");
        }
        scratchBytes_ = need;
      }
      char *base = static_cast<char *>(scratch_);
      if (sendBytes &&
          cudaMemcpyAsync(base, send, sendBytes, cudaMemcpyHostToDevice, stream_) != cudaSuccess)
        return fail(what, "staging the input failed");
      in = base;
      out = base + sendBytes;
      if (send == recv && sendBytes == recvBytes)
        out = base; // in place stays in place
    }
    ncclResult_t r = enqueue(in, out);
    if (r != ncclSuccess)
      return fail(what, std::string("NCCL: ") + ncclGetErrorString(r) + " (" +
                            ncclGetLastError(comm_) + ")");
    if (hostSend && recvBytes &&
        cudaMemcpyAsync(recv, out, recvBytes, cudaMemcpyDeviceToHost, stream_) != cudaSuccess)
      return fail(what, "copying the result back failed");
    return waitFor(stream_, what);
  }

  /// Waits for `stream`, polling NCCL's asynchronous error and the timeout.
  Status waitFor(cudaStream_t stream, std::string_view what) {
    auto start = std::chrono::steady_clock::now();
    for (;;) {
      cudaError_t state = cudaStreamQuery(stream);
      if (state == cudaSuccess)
        return Status::okStatus();
      if (state != cudaErrorNotReady) {
        (void)cudaGetLastError();
        return fail(what, std::string("CUDA error: ") + cudaGetErrorString(state));
      }
      FUSION_RETURN_IF_ERROR(checkAsync(what, start));
      // Spin for the first millisecond (small collectives finish in tens of microseconds,
      // below the scheduler's sleep granularity), then poll gently.
      if (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1))
        std::this_thread::yield();
      else
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

  Status checkAsync(std::string_view what, std::chrono::steady_clock::time_point start) {
    ncclResult_t state = ncclSuccess;
    ncclCommGetAsyncError(comm_, &state);
    if (state != ncclSuccess) {
      std::string message = std::string("NCCL: ") + ncclGetErrorString(state) + " (" +
                            (ncclGetLastError(comm_) ? ncclGetLastError(comm_) : "") + ")";
      abort(message);
      return fail(what, message);
    }
    return checkTimeout(what, start);
  }

  Status checkTimeout(std::string_view what, std::chrono::steady_clock::time_point start) {
    auto waited = std::chrono::steady_clock::now() - start;
    if (waited < timeout_)
      return Status::okStatus();
    std::string message =
        "timed out after " +
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(waited).count()) +
        " s waiting for the other ranks (a peer failed or is stuck); the communicator was "
        "aborted";
    abort(message);
    return fail(what, message);
  }

  RankEnvironment env_;
  std::chrono::milliseconds timeout_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void *scratch_ = nullptr;
  size_t scratchBytes_ = 0;
  bool aborted_ = false;
  std::string abortReason_;
};

} // namespace

bool isNcclBuilt() { return true; }

StatusOr<std::unique_ptr<Communicator>>
createNcclCommunicator(const RankEnvironment &env, std::chrono::milliseconds timeout) {
  auto comm = std::make_unique<NcclCommunicator>(env, timeout);
  FUSION_RETURN_IF_ERROR(comm->initialize());
  return std::unique_ptr<Communicator>(std::move(comm));
}

} // namespace fusion::rt
