//===- cublaslt_gemm.cc - Gemm instructions through cuBLASLt --------------===//
//
// Preparation follows the usual cuBLASLt recipe: a matmul descriptor (fp32 compute and scale
// for every storage type, so results track the CPU oracle; no TF32), three matrix layouts, a
// preference that states the workspace size and the operands' real alignments, and the
// heuristic's best algorithm, kept for every run. See cublaslt_gemm.h for the row-major to
// column-major mapping.
//
//===----------------------------------------------------------------------===//

#include "cublaslt_gemm.h"

#include <algorithm>
#include <cstdint>

namespace fusion::rt::cuda {

/// Returns a kInternal status naming `what` when a cuBLASLt call fails.
#define FUSION_CUBLASLT_RETURN_IF_ERROR(expr, what)                                             \
  do {                                                                                          \
    cublasStatus_t fusion_rt_blas_status_ = (expr);                                             \
    if (fusion_rt_blas_status_ != CUBLAS_STATUS_SUCCESS)                                        \
      return Status(StatusCode::kInternal,                                                      \
                    std::string(what) + ": " + calleeName(#expr) + " failed: " +                \
                        cublasLtGetStatusName(fusion_rt_blas_status_) + ": " +                  \
                        cublasLtGetStatusString(fusion_rt_blas_status_));                       \
  } while (0)

CublasLtContext::~CublasLtContext() {
  for (void *workspace : workspaces_)
    if (workspace)
      cudaFree(workspace);
  if (handle_)
    cublasLtDestroy(handle_);
}

StatusOr<std::unique_ptr<CublasLtContext>> CublasLtContext::create(size_t workspaceBytes,
                                                                   uint32_t numStreams) {
  std::unique_ptr<CublasLtContext> context(new CublasLtContext());
  FUSION_CUBLASLT_RETURN_IF_ERROR(cublasLtCreate(&context->handle_), "cuBLASLt setup");
  context->workspaceBytes_ = workspaceBytes;
  for (uint32_t i = 0; i < numStreams; ++i) {
    void *workspace = nullptr;
    FUSION_CUDA_RETURN_IF_ERROR(cudaMalloc(&workspace, workspaceBytes),
                                "cuBLASLt workspace of " + std::to_string(workspaceBytes) +
                                    " bytes");
    context->workspaces_.push_back(workspace);
  }
  return context;
}

CublasLtGemm::~CublasLtGemm() {
  for (cublasLtMatrixLayout_t layout : {layoutA_, layoutB_, layoutC_})
    if (layout)
      cublasLtMatrixLayoutDestroy(layout);
  if (desc_)
    cublasLtMatmulDescDestroy(desc_);
}

namespace {

/// The largest power of two (capped at 256, cuBLASLt's default assumption) dividing `value`.
uint32_t alignmentOf(uint64_t value) {
  uint32_t alignment = 256;
  while (alignment > 1 && value % alignment != 0)
    alignment /= 2;
  return alignment;
}

cudaDataType_t cudaTypeOf(schema::DType dtype) {
  switch (dtype) {
  case schema::DType::BF16:
    return CUDA_R_16BF;
  case schema::DType::F16:
    return CUDA_R_16F;
  default:
    return CUDA_R_32F;
  }
}

/// Creates a column-major layout of rows x cols (leading dimension ld), batched when
/// batchCount > 1 with `stride` elements between matrices.
Status makeLayout(cublasLtMatrixLayout_t *layout, cudaDataType_t type, uint64_t rows,
                  uint64_t cols, int64_t ld, int32_t batchCount, int64_t stride) {
  FUSION_CUBLASLT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(layout, type, rows, cols, ld),
                                  "cuBLASLt layout");
  if (batchCount > 1) {
    FUSION_CUBLASLT_RETURN_IF_ERROR(
        cublasLtMatrixLayoutSetAttribute(*layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                         &batchCount, sizeof(batchCount)),
        "cuBLASLt layout");
    FUSION_CUBLASLT_RETURN_IF_ERROR(
        cublasLtMatrixLayoutSetAttribute(*layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                         &stride, sizeof(stride)),
        "cuBLASLt layout");
  }
  return Status::okStatus();
}

} // namespace

StatusOr<std::unique_ptr<CublasLtGemm>>
CublasLtGemm::create(const CublasLtContext &context, const schema::Gemm &gemm,
                     const BufferInfo &aInfo, const void *a, const BufferInfo &bInfo,
                     const void *b, const BufferInfo &cInfo, const void *c) {
  std::unique_ptr<CublasLtGemm> plan(new CublasLtGemm());
  // The plan verifier guarantees positive sizes, consistent element counts, one float dtype
  // for a and b, and c of that dtype or f32.
  const int64_t m = gemm.m(), n = gemm.n(), k = gemm.k(), batch = gemm.batch();
  const bool bShared = batch > 1 && bInfo.numElements == static_cast<uint64_t>(k * n);
  const size_t elementSize = dtypeSize(aInfo.dtype), cElementSize = dtypeSize(cInfo.dtype);
  const cudaDataType_t type = cudaTypeOf(aInfo.dtype), cType = cudaTypeOf(cInfo.dtype);

  // Shape of each matmul call: rows of the plan's a/c per call and the batch count per call.
  int64_t rows = m;     // rows of op(a) and of c per matrix
  int64_t batched = batch;
  if (bShared && !gemm.trans_a()) {
    rows = batch * m; // a [batch, m, k] is one [batch*m, k] matrix
    batched = 1;
  } else if (bShared) {
    plan->calls_ = batch; // a transposed per batch: loop, one matrix per call
    batched = 1;
    plan->aCallStride_ = static_cast<size_t>(m * k) * elementSize;
    plan->cCallStride_ = static_cast<size_t>(m * n) * cElementSize;
  }
  if (batched > INT32_MAX)
    return Status(StatusCode::kUnimplemented,
                  "gemm batch " + std::to_string(batched) + " exceeds cuBLASLt's limit");

  FUSION_CUBLASLT_RETURN_IF_ERROR(
      cublasLtMatmulDescCreate(&plan->desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cuBLASLt desc");
  // cuBLASLt A = plan b, cuBLASLt B = plan a (column-major view of row-major storage).
  cublasOperation_t opA = gemm.trans_b() ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opB = gemm.trans_a() ? CUBLAS_OP_T : CUBLAS_OP_N;
  FUSION_CUBLASLT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(plan->desc_,
                                                                 CUBLASLT_MATMUL_DESC_TRANSA,
                                                                 &opA, sizeof(opA)),
                                  "cuBLASLt desc");
  FUSION_CUBLASLT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(plan->desc_,
                                                                 CUBLASLT_MATMUL_DESC_TRANSB,
                                                                 &opB, sizeof(opB)),
                                  "cuBLASLt desc");
  int32_t batchCount = static_cast<int32_t>(batched);
  // Plan b stored [k,n] (col-major n x k, ld n) or, transposed, [n,k] (col-major k x n, ld k).
  FUSION_RETURN_IF_ERROR(makeLayout(&plan->layoutA_, type, gemm.trans_b() ? k : n,
                                    gemm.trans_b() ? n : k, gemm.trans_b() ? k : n, batchCount,
                                    bShared ? 0 : k * n));
  // Plan a stored [rows,k] (col-major k x rows, ld k) or, transposed, [k,rows] (rows x k).
  FUSION_RETURN_IF_ERROR(makeLayout(&plan->layoutB_, type, gemm.trans_a() ? rows : k,
                                    gemm.trans_a() ? k : rows, gemm.trans_a() ? rows : k,
                                    batchCount, m * k));
  // Plan c stored [rows,n] = col-major n x rows, ld n.
  FUSION_RETURN_IF_ERROR(makeLayout(&plan->layoutC_, cType, n, rows, n, batchCount, m * n));

  // Tell the heuristic the real alignment of every pointer it will see (buffers are only
  // element aligned inside their arena; batches and calls move pointers by their strides).
  auto alignmentFor = [&](const void *ptr, uint64_t strideBytes) {
    uint32_t alignment = alignmentOf(reinterpret_cast<uintptr_t>(ptr));
    if (strideBytes)
      alignment = std::min(alignment, alignmentOf(strideBytes));
    return alignment;
  };
  bool strided = batchCount > 1;
  uint32_t alignA = alignmentFor(b, strided && !bShared ? k * n * elementSize : 0);
  uint32_t alignB = alignmentFor(a, strided ? m * k * elementSize : plan->aCallStride_);
  uint32_t alignC = alignmentFor(c, strided ? m * n * cElementSize : plan->cCallStride_);

  cublasLtMatmulPreference_t preference = nullptr;
  FUSION_CUBLASLT_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&preference),
                                  "cuBLASLt preference");
  // Release the preference on every path out of this scope.
  std::unique_ptr<void, void (*)(void *)> preferenceGuard(preference, [](void *p) {
    cublasLtMatmulPreferenceDestroy(static_cast<cublasLtMatmulPreference_t>(p));
  });
  size_t workspaceBytes = context.workspaceBytes();
  FUSION_CUBLASLT_RETURN_IF_ERROR(
      cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                           &workspaceBytes, sizeof(workspaceBytes)),
      "cuBLASLt preference");
  for (auto [attribute, value] :
       {std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignA},
        std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignB},
        std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignC},
        std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignC}})
    FUSION_CUBLASLT_RETURN_IF_ERROR(
        cublasLtMatmulPreferenceSetAttribute(preference, attribute, &value, sizeof(value)),
        "cuBLASLt preference");

  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  FUSION_CUBLASLT_RETURN_IF_ERROR(
      cublasLtMatmulAlgoGetHeuristic(context.handle(), plan->desc_, plan->layoutA_,
                                     plan->layoutB_, plan->layoutC_, plan->layoutC_, preference,
                                     1, &result, &found),
      "cuBLASLt algorithm search");
  if (found == 0)
    return Status(StatusCode::kUnimplemented,
                  "cuBLASLt has no algorithm for this gemm (" + dtypeName(aInfo.dtype) + " -> " +
                      dtypeName(cInfo.dtype) +
                      ", m=" + std::to_string(m) + ", n=" + std::to_string(n) +
                      ", k=" + std::to_string(k) + ", batch=" + std::to_string(batch) + ")");
  plan->algo_ = result.algo;
  plan->alpha_ = gemm.alpha();
  plan->beta_ = gemm.beta();
  return plan;
}

Status CublasLtGemm::enqueue(const CublasLtContext &context, uint32_t streamIndex,
                             cudaStream_t stream, const void *a, const void *b, void *c) const {
  for (int64_t i = 0; i < calls_; ++i) {
    const char *aCall = static_cast<const char *>(a) + i * aCallStride_;
    char *cCall = static_cast<char *>(c) + i * cCallStride_;
    FUSION_CUBLASLT_RETURN_IF_ERROR(
        cublasLtMatmul(context.handle(), desc_, &alpha_, b, layoutA_, aCall, layoutB_, &beta_,
                       cCall, layoutC_, cCall, layoutC_, &algo_,
                       context.workspaceFor(streamIndex), context.workspaceBytes(), stream),
        "cuBLASLt gemm");
  }
  return Status::okStatus();
}

} // namespace fusion::rt::cuda
