//===- matmul_kernel.cc - The matmul kind (batched, OpenBLAS) -------------===//
//
// C[b, m, n] = Σ_k op(A)[b, m, k]·op(B)[b, k, n], op = transpose of the last two dims when
// transpose_a / transpose_b is set. A's leading dims are the batch; B has the same batch dims
// or none (a weight shared by all batches). The compiler normally emits matmul as an
// fplan.gemm instruction (cpu_gemm.cc); this kind is the same product for plans that keep it
// a kernel. Operands are widened to f32 when stored as bf16/f16, each batch is one
// parallelSgemm (fp32 accumulation, cpu_gemm.cc), and the result is rounded once on the store.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"

#include <climits>

namespace fusion::rt::cpu {

Status matmulKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  FUSION_ASSIGN_OR_RETURN(bool transA, context.flagAttr("transpose_a"));
  FUSION_ASSIGN_OR_RETURN(bool transB, context.flagAttr("transpose_b"));
  const Tensor &a = context.inputs[0], &b = context.inputs[1], &c = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(a, "input 0 (a)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(b, "input 1 (b)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(c, "output 0 (c)"));
  if (b.info->dtype != a.info->dtype || c.info->dtype != a.info->dtype)
    return Status(StatusCode::kInvalidArgument,
                  "a, b and c must share one dtype, got " + dtypeName(a.info->dtype) + ", " +
                      dtypeName(b.info->dtype) + " and " + dtypeName(c.info->dtype));
  const std::vector<int64_t> &aShape = a.info->shape, &bShape = b.info->shape;
  size_t rank = aShape.size();
  if (rank < 2)
    return tensorError(a, "input 0 (a)", "must have rank >= 2");
  if (bShape.size() != 2 && bShape.size() != rank)
    return tensorError(b, "input 1 (b)",
                       "must have rank 2 (shared by all batches) or a's rank " +
                           std::to_string(rank));
  bool bShared = bShape.size() == 2;
  for (size_t d = 0; !bShared && d + 2 < rank; ++d)
    if (bShape[d] != aShape[d])
      return tensorError(b, "input 1 (b)",
                         "must have a's batch dimensions " +
                             formatShape({aShape.begin(), aShape.end() - 2}));
  int64_t m = transA ? aShape[rank - 1] : aShape[rank - 2];
  int64_t k = transA ? aShape[rank - 2] : aShape[rank - 1];
  size_t bRank = bShape.size();
  int64_t kb = transB ? bShape[bRank - 1] : bShape[bRank - 2];
  int64_t n = transB ? bShape[bRank - 2] : bShape[bRank - 1];
  if (kb != k)
    return tensorError(b, "input 1 (b)",
                       "has contraction size " + std::to_string(kb) + ", but a has " +
                           std::to_string(k));
  std::vector<int64_t> expected(aShape.begin(), aShape.end() - 2);
  expected.push_back(m);
  expected.push_back(n);
  FUSION_RETURN_IF_ERROR(context.expectShape(c, "output 0 (c)", expected));
  for (int64_t v : {m, n, k})
    if (v > INT_MAX)
      return Status(StatusCode::kUnimplemented, "matmul dimension " + std::to_string(v) +
                                                    " exceeds the cpu backend's 32-bit BLAS limit");
  if (c.info->numElements == 0)
    return Status::okStatus();
  uint64_t batch = dimProduct(aShape, 0, rank - 2);
  std::vector<float> result(c.info->numElements, 0.0f);
  if (k > 0) {
    F32View aView(a), bView(b);
    const uint64_t aStride = static_cast<uint64_t>(m) * k;
    const uint64_t bStride = bShared ? 0 : static_cast<uint64_t>(k) * n;
    const uint64_t cStride = static_cast<uint64_t>(m) * n;
    for (uint64_t i = 0; i < batch; ++i)
      parallelSgemm(context.pool, transA, transB, m, n, k, 1.0f, aView.data() + i * aStride,
                    transA ? m : k, bView.data() + i * bStride, transB ? k : n, 0.0f,
                    result.data() + i * cStride, n);
  }
  storeRow(c, 0, result.size(), result.data());
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
