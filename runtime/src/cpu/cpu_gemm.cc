//===- cpu_gemm.cc - Gemm instruction on the CPU (OpenBLAS) ---------------===//
//
// c = alpha * op(a) @ op(b) + beta * c, row-major, through parallelSgemm: C in fixed blocks of
// rows (columns for short C), each block one single-threaded cblas_sgemm, the blocks spread
// over the executor's pool. OpenBLAS is set to one thread on first use: its own threads
// returned results that depended on their number (OPENBLAS_NUM_THREADS changed the training
// loss in the last digits) and, spinning between calls, competed with the pool's workers
// (on 2 cores the smoke step spent as much time in the kernel as in user code). A batched
// gemm is a loop over batches, except when b is shared by all batches and a is not
// transposed: then a [batch, m, k] is one [batch*m, k] matrix and the whole gemm is a single
// product. bf16/f16 operands are widened to f32 copies (fp32 math, one rounding on the
// store), which is what the device's tensor-core gemms with fp32 accumulation approximate.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"
#include "thread_pool.h"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <mutex>

namespace fusion::rt::cpu {

namespace {

/// Rows of C per block, and columns per block when C has at most kBlockRows rows.
constexpr int64_t kBlockRows = 64;
constexpr int64_t kBlockCols = 256;

void useSingleThreadedBlas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

} // namespace

void parallelSgemm(ThreadPool *pool, bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                   float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                   float beta, float *c, int64_t ldc) {
  if (m <= 0 || n <= 0)
    return;
  useSingleThreadedBlas();
  const int64_t rowBlock = kBlockRows;
  const int64_t colBlock = m <= kBlockRows && n >= 2 * kBlockCols ? kBlockCols : n;
  const int64_t rowBlocks = (m + rowBlock - 1) / rowBlock;
  const int64_t colBlocks = (n + colBlock - 1) / colBlock;
  auto block = [&](uint64_t begin, uint64_t end) {
    for (uint64_t item = begin; item < end; ++item) {
      const int64_t r0 = static_cast<int64_t>(item) / colBlocks * rowBlock;
      const int64_t c0 = static_cast<int64_t>(item) % colBlocks * colBlock;
      const int64_t rows = std::min(rowBlock, m - r0), cols = std::min(colBlock, n - c0);
      // Rows r0.. of op(a): rows of a, or columns of a stored transposed; likewise columns
      // c0.. of op(b).
      const float *aBlock = transA ? a + r0 : a + r0 * lda;
      const float *bBlock = transB ? b + c0 * ldb : b + c0;
      cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                  transB ? CblasTrans : CblasNoTrans, static_cast<int>(rows),
                  static_cast<int>(cols), static_cast<int>(k), alpha, aBlock,
                  static_cast<int>(lda), bBlock, static_cast<int>(ldb), beta,
                  c + r0 * ldc + c0, static_cast<int>(ldc));
    }
  };
  const uint64_t items = static_cast<uint64_t>(rowBlocks * colBlocks);
  if (pool)
    pool->parallelFor(items, 1, block);
  else
    block(0, items);
}

Status runGemm(const schema::Gemm &gemm, const BufferInfo &aInfo, const void *a,
               const BufferInfo &bInfo, const void *b, const BufferInfo &cInfo, void *c,
               ThreadPool *pool) {
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
  // Row-major leading dimensions: the stored row length of each operand.
  const int64_t lda = gemm.trans_a() ? rowsPerCall : k;
  const int64_t ldb = gemm.trans_b() ? k : n;
  const int64_t ldc = n;
  const uint64_t aStride = static_cast<uint64_t>(m * k);
  const uint64_t bStride = bShared ? 0 : static_cast<uint64_t>(k * n);
  const uint64_t cStride = static_cast<uint64_t>(m * n);
  float *cData = cView.mutableData();
  for (int64_t i = 0; i < calls; ++i)
    parallelSgemm(pool, gemm.trans_a(), gemm.trans_b(), rowsPerCall, n, k, gemm.alpha(),
                  aView.data() + i * aStride, lda, bView.data() + i * bStride, ldb, gemm.beta(),
                  cData + i * cStride, ldc);
  cView.storeBack(c);
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
