//===- cpu_gemm.cc - Gemm instruction on the CPU (OpenBLAS) ---------------===//
//
// c = alpha * op(a) @ op(b) + beta * c, row-major, through cblas_sgemm. A batched gemm is a
// loop over batches, except when b is shared by all batches and a is not transposed: then
// a [batch, m, k] is one [batch*m, k] matrix and the whole gemm is a single sgemm call.
// bf16/f16 operands are widened to f32 copies (fp32 math, one rounding on the store), which
// is what the device's tensor-core gemms with fp32 accumulation approximate.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

#include <cblas.h>

#include <climits>

namespace fusion::rt::cpu {

Status runGemm(const schema::Gemm &gemm, const BufferInfo &aInfo, const void *a,
               const BufferInfo &bInfo, const void *b, const BufferInfo &cInfo, void *c) {
  // The plan verifier guarantees positive sizes, matching element counts and float dtypes.
  int64_t m = gemm.m(), n = gemm.n(), k = gemm.k(), batch = gemm.batch();
  bool bShared = batch > 1 && bInfo.numElements == static_cast<uint64_t>(k * n);
  int64_t rowsPerCall = m;
  int64_t calls = batch;
  if (batch > 1 && bShared && !gemm.trans_a()) {
    rowsPerCall = batch * m; // fold the batch into the rows
    calls = 1;
  }
  // OpenBLAS takes 32-bit sizes and leading dimensions.
  for (int64_t v : {rowsPerCall, n, k})
    if (v > INT_MAX)
      return Status(StatusCode::kUnimplemented, "gemm dimension " + std::to_string(v) +
                                                    " exceeds the cpu backend's 32-bit BLAS limit");

  F32View aView(aInfo, a), bView(bInfo, b), cView(cInfo, c);
  const CBLAS_TRANSPOSE transA = gemm.trans_a() ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE transB = gemm.trans_b() ? CblasTrans : CblasNoTrans;
  // Row-major leading dimensions: the stored row length of each operand.
  const int lda = static_cast<int>(gemm.trans_a() ? rowsPerCall : k);
  const int ldb = static_cast<int>(gemm.trans_b() ? k : n);
  const int ldc = static_cast<int>(n);
  const uint64_t aStride = static_cast<uint64_t>(m * k);
  const uint64_t bStride = bShared ? 0 : static_cast<uint64_t>(k * n);
  const uint64_t cStride = static_cast<uint64_t>(m * n);
  float *cData = cView.mutableData();
  for (int64_t i = 0; i < calls; ++i)
    cblas_sgemm(CblasRowMajor, transA, transB, static_cast<int>(rowsPerCall), static_cast<int>(n),
                static_cast<int>(k), gemm.alpha(), aView.data() + i * aStride, lda,
                bView.data() + i * bStride, ldb, gemm.beta(), cData + i * cStride, ldc);
  cView.storeBack(c);
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
