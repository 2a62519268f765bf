//===- cublaslt_gemm.h - Gemm instructions through cuBLASLt (internal) ----===//
//
// A CublasLtGemm is one plan Gemm instruction, prepared once when the executor is created
// (descriptors, layouts and the heuristic's algorithm choice, which depends on the shapes and
// the operand alignments) and then only enqueued at run time. Plans are row-major and cuBLASLt
// is column-major, so the product is computed transposed: a row-major C[m,n] is a column-major
// C^T[n,m] = op(B)^T op(A)^T, i.e. cuBLASLt's A operand is the plan's b and vice versa.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/plan.h"
#include "fusion/rt/status.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <memory>

namespace fusion::rt::cuda {

/// A cuBLASLt handle plus the workspace all gemms share (they run one at a time per stream,
/// and streams only run gemms concurrently when the plan says so; see workspaceFor()).
class CublasLtContext {
public:
  ~CublasLtContext();
  /// Creates the handle and a workspace of `workspaceBytes` for each of `numStreams` streams.
  static StatusOr<std::unique_ptr<CublasLtContext>> create(size_t workspaceBytes,
                                                           uint32_t numStreams);
  cublasLtHandle_t handle() const { return handle_; }
  size_t workspaceBytes() const { return workspaceBytes_; }
  /// The workspace of stream `stream`: one per stream, so concurrent gemms never share one.
  void *workspaceFor(uint32_t stream) const { return workspaces_[stream]; }

private:
  CublasLtContext() = default;
  cublasLtHandle_t handle_ = nullptr;
  size_t workspaceBytes_ = 0;
  std::vector<void *> workspaces_;
};

/// One prepared gemm instruction.
class CublasLtGemm {
public:
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm &) = delete;
  CublasLtGemm &operator=(const CublasLtGemm &) = delete;

  /// Prepares `gemm` for operands at device addresses a, b, c (the addresses only matter for
  /// their alignment, which constrains the algorithms cuBLASLt may pick).
  static StatusOr<std::unique_ptr<CublasLtGemm>>
  create(const CublasLtContext &context, const schema::Gemm &gemm, const BufferInfo &aInfo,
         const void *a, const BufferInfo &bInfo, const void *b, const BufferInfo &cInfo,
         const void *c);

  /// Enqueues the gemm on `stream` using that stream's workspace.
  Status enqueue(const CublasLtContext &context, uint32_t streamIndex, cudaStream_t stream,
                 const void *a, const void *b, void *c) const;

private:
  CublasLtGemm() = default;

  cublasLtMatmulDesc_t desc_ = nullptr;
  /// Layouts of cuBLASLt's A (the plan's b), B (the plan's a) and C/D (the plan's c).
  cublasLtMatrixLayout_t layoutA_ = nullptr, layoutB_ = nullptr, layoutC_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  float alpha_ = 1, beta_ = 0;
  /// Number of matmul calls and the byte strides between them (only > 1 when the plan's b is
  /// shared by all batches and a is transposed, which one strided-batched call cannot express
  /// without a zero stride).
  int64_t calls_ = 1;
  size_t aCallStride_ = 0, cCallStride_ = 0;
};

} // namespace fusion::rt::cuda
