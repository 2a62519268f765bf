//===- cpu_kernels.h - Reference kernels of the CPU backend (internal) ----===//
//
// The CPU backend runs a Launch by looking up the kernel's `kind` string here and calling the
// reference implementation with the instruction's buffers. The reference kernels are the
// oracle the CUDA kernels are checked against, so they favour clarity and accuracy over speed:
// they read any float storage (f32, bf16, f16), compute in fp32 or better (fp32 accumulation
// at least; several reductions and transcendental functions in double) and round once on the
// final store. The contract of every kind (operands, attributes, math) is docs/op-kinds.md;
// a kernel validates its attributes and buffer shapes against that contract before it touches
// any memory, so a bad plan yields an error Status, never a crash.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/plan.h"
#include "fusion/rt/status.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fusion::rt::cpu {

class ThreadPool;

/// One buffer argument of a launch, resolved to host memory.
struct Tensor {
  void *data = nullptr;
  const BufferInfo *info = nullptr;
  /// Buffer id, for messages.
  uint32_t id = 0;
};

/// What a reference kernel sees of its launch. Errors returned by kernels describe only the
/// kernel-level problem; the executor prefixes the program, instruction, loc and kernel.
struct KernelContext {
  const schema::Kernel &kernel;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
  /// The executor's worker pool; null runs every parallel loop on the calling thread.
  ThreadPool *pool = nullptr;

  /// Numeric attribute `name` (an Int or Float attribute) as double; `defaultValue` when
  /// absent, or an error naming the attribute when there is no default.
  StatusOr<double> floatAttr(std::string_view name,
                             std::optional<double> defaultValue = std::nullopt) const;
  /// Integer attribute `name` (an Int attribute); `defaultValue` when absent, else an error.
  StatusOr<int64_t> intAttr(std::string_view name,
                            std::optional<int64_t> defaultValue = std::nullopt) const;
  /// Unit/boolean attribute `name`: absent is false, Int 0/1 is false/true.
  StatusOr<bool> flagAttr(std::string_view name) const;
  /// Integer-list attribute `name` (an Ints attribute); required.
  StatusOr<std::vector<int64_t>> intsAttr(std::string_view name) const;
  /// String attribute `name`; required.
  StatusOr<std::string> stringAttr(std::string_view name) const;

  /// Error unless the launch has exactly `numInputs` inputs and `numOutputs` outputs.
  Status expectArity(size_t numInputs, size_t numOutputs) const;
  /// Error unless `tensor` has f32, bf16 or f16 storage; `role` names it ("input 0").
  Status expectFloat(const Tensor &tensor, const std::string &role) const;
  /// Error unless `tensor` has i32 or i64 storage (ids, targets).
  Status expectIndex(const Tensor &tensor, const std::string &role) const;
  /// Error unless `tensor` has storage `dtype`.
  Status expectDType(const Tensor &tensor, const std::string &role, schema::DType dtype) const;
  /// Error unless `tensor` has exactly `count` elements.
  Status expectNumElements(const Tensor &tensor, const std::string &role, uint64_t count) const;
  /// Error unless `tensor` has rank `rank`.
  Status expectRank(const Tensor &tensor, const std::string &role, size_t rank) const;
  /// Error unless `tensor` has exactly `shape`.
  Status expectShape(const Tensor &tensor, const std::string &role,
                     const std::vector<int64_t> &shape) const;

  /// `body` over [0, count) in ranges of at most `grain` items, on the pool when there is one
  /// (see ThreadPool::parallelFor). Items must be independent of each other.
  void parallelFor(uint64_t count, uint64_t grain,
                   const std::function<void(uint64_t, uint64_t)> &body) const;
};

/// "<role> (buffer 3 'x', bf16[2,8]) <problem>": the form of every buffer-shape error.
Status tensorError(const Tensor &tensor, const std::string &role, const std::string &problem);

/// A reference kernel.
using KernelFn = Status (*)(const KernelContext &context);

/// One row of the dispatch table.
struct KernelEntry {
  std::string_view kind;
  KernelFn fn;
  /// True when an output may be the very same buffer region as an input (element i, or row
  /// r, is read before it is written); other overlaps are resolved by copying the input.
  bool inPlace;
};

/// The reference kernel for `kind`, or nullptr when the CPU backend has none.
const KernelEntry *findKernel(std::string_view kind);

/// The kinds the CPU backend implements, sorted, comma separated (for error messages).
std::string implementedKinds();

/// Runs `entry` on `context`. Inputs whose memory overlaps an output (other than the exact
/// in-place aliasing the kind allows) are first copied, so a kernel never reads data it has
/// already overwritten.
Status runKernel(const KernelEntry &entry, KernelContext context);

// Elementwise (elementwise_kernels.cc).
/// out[i] = value + step * i.
Status fillKernel(const KernelContext &context);
/// out = a + b, elementwise.
Status addKernel(const KernelContext &context);
/// out = a - b, elementwise.
Status subKernel(const KernelContext &context);
/// out = a * b, elementwise.
Status mulKernel(const KernelContext &context);
/// out = x * sigmoid(x).
Status siluKernel(const KernelContext &context);
/// out = 1 / (1 + exp(-x)).
Status sigmoidKernel(const KernelContext &context);
/// out = exp(x).
Status expKernel(const KernelContext &context);
/// out = -x.
Status negKernel(const KernelContext &context);
/// out = ln(1 + exp(x)), x itself for x > 20.
Status softplusKernel(const KernelContext &context);
/// out = factor * x.
Status scaleKernel(const KernelContext &context);
/// out = silu(gate) * up.
Status swigluKernel(const KernelContext &context);
/// out = cap * tanh(x / cap).
Status softcapKernel(const KernelContext &context);
/// Storage conversion between f32, bf16 and f16 (round to nearest even).
Status castKernel(const KernelContext &context);
/// fplan-fuse-elementwise's chains: the `expr` program per element (fused_elementwise.cc).
Status fusedElementwiseKernel(const KernelContext &context);

// Layout and reductions (layout_kernels.cc).
/// Copy to a new shape with the same element count.
Status reshapeKernel(const KernelContext &context);
/// Output dim d = input dim perm[d].
Status transposeKernel(const KernelContext &context);
/// A [start, start + size) range of one dimension.
Status sliceKernel(const KernelContext &context);
/// Concatenation of any number of inputs along `dim`.
Status concatKernel(const KernelContext &context);
/// Input dim j -> output dim dims[j]; the other output dims repeat.
Status broadcastKernel(const KernelContext &context);
/// Sum over `dims`, which are removed.
Status sumKernel(const KernelContext &context);

// Linear algebra and normalisation.
/// Batched c = op(a) @ op(b) (matmul_kernel.cc).
Status matmulKernel(const KernelContext &context);
/// y = x / sqrt(mean(x^2 over the last dim) + eps) * w (norm_kernels.cc).
Status rmsNormKernel(const KernelContext &context);
/// y = scale * x / sqrt(|x|^2 + eps) over the last dim (norm_kernels.cc).
Status l2NormKernel(const KernelContext &context);

// Sequence model blocks.
/// out[...] = table[ids[...]] (embedding_kernel.cc).
Status embeddingKernel(const KernelContext &context);
/// Interleaved rotary embedding of the last rotary_dims components (rope_kernel.cc).
Status ropeKernel(const KernelContext &context);
/// rope (inverse = false) or its gradient, the rotation R(−φ) (inverse = true), of inputs[0]
/// into outputs[0], the token at index t of dimension 1 being at position firstPosition + t;
/// the roles name the tensors in errors. The caller checks the arity.
Status rotaryKernel(const KernelContext &context, bool inverse, const char *inputRole,
                    const char *outputRole, int64_t firstPosition = 0);

/// One query row of causal softmax attention over keys/values rows [first, last]: scores
/// scale·q·k_u in fp32 (written to scores[first..last]), max-subtracted exp, the weighted sum
/// of value rows divided by the sum, into out[vRow]. Shared by attention and
/// kv_cache_attention so a cached query attends with the very same arithmetic. Returns the
/// row's log-sum-exp of the scores (attention_lse).
float attendOneQuery(const float *query, const float *keys, const float *values, uint64_t qkRow,
                     uint64_t vRow, int64_t first, int64_t last, float scale, float *scores,
                     float *out);

// Inference kinds with caches (decode_kernels.cc).
/// rope at positions position[0] + t.
Status ropeAtKernel(const KernelContext &context);
/// Appends K/V at the position, then attends over the cached prefix (caches in place).
Status kvCacheAttentionKernel(const KernelContext &context);
/// Causal depthwise convolution continuing from the cached K−1 input rows.
Status causalConv1dStepKernel(const KernelContext &context);
/// Gated delta rule, recurrent form, from the cached state Hs = Sᵀ.
Status gatedDeltaStepKernel(const KernelContext &context);
/// Causal/sliding-window GQA softmax attention (attention_kernel.cc).
Status attentionKernel(const KernelContext &context);
/// attention plus each query row's log-sum-exp, lse [B, H, T] f32 (attention_kernel.cc).
Status attentionLseKernel(const KernelContext &context);
/// Depthwise causal convolution over time (causal_conv1d_kernel.cc).
Status causalConv1dKernel(const KernelContext &context);
/// Gated delta rule in the chunked WY form (gdn_kernel.cc).
Status gatedDeltaRuleKernel(const KernelContext &context);

// Mixture of experts (moe_kernels.cc).
/// Sigmoid router with bias and group-limited top-k.
Status moeRouteKernel(const KernelContext &context);
/// Stable sort of (token, slot) pairs by expert.
Status moeDispatchKernel(const KernelContext &context);
/// One matrix product per expert over consecutive row groups.
Status groupedMatmulKernel(const KernelContext &context);
/// Weighted sum of expert outputs back in token order.
Status moeCombineKernel(const KernelContext &context);
/// Sequence-wise balance loss, mean over rows.
Status moeBalanceLossKernel(const KernelContext &context);

// Loss and parameters.
/// Per-row logsumexp - target logit; 0 for negative targets (loss_kernels.cc).
Status crossEntropyKernel(const KernelContext &context);
/// Counter-based (Philox4x32-10) parameter initialisation (init_kernel.cc).
Status initParamKernel(const KernelContext &context);

// Backward kinds and the fused head (grad_kernels.cc, grad_mixer_kernels.cc,
// grad_moe_kernels.cc); gradient outputs of parameters are f32 and overwritten.
/// dx = dy * f'(x) for fn = silu, sigmoid, softplus, softcap.
Status activationGradKernel(const KernelContext &context);
/// dgate = dy * up * silu'(gate), dup = dy * silu(gate).
Status swigluGradKernel(const KernelContext &context);
/// dx and dw of rms_norm over the last dim.
Status rmsNormGradKernel(const KernelContext &context);
/// dx of l2_norm over the last dim.
Status l2NormGradKernel(const KernelContext &context);
/// The inverse rotation of rope.
Status ropeGradKernel(const KernelContext &context);
/// dtable[v] = sum of dy over the positions with id v.
Status embeddingGradKernel(const KernelContext &context);
/// dx = 0 except the sliced range, which is dy.
Status sliceGradKernel(const KernelContext &context);
/// dlogits = dce * (softmax - onehot), 0 for negative targets.
Status crossEntropyGradKernel(const KernelContext &context);
/// Fused logits (h w^T), softcap and cross-entropy in vocabulary tiles.
Status softcapCeKernel(const KernelContext &context);
/// dh and dw of softcap_ce, logits recomputed per vocabulary tile.
Status softcapCeGradKernel(const KernelContext &context);
/// ce of a block of logit rows [R, V] computed by a gemm (targets from row `row` on).
Status softcapCeRowsKernel(const KernelContext &context);
/// dℓ of softcap_ce from precomputed logit rows (the GEMM form of softcap_ce_grad).
Status softcapCeRowsGradKernel(const KernelContext &context);
/// dq, dk, dv of attention (dk, dv summed over each group's heads).
Status attentionGradKernel(const KernelContext &context);
/// attention_grad from the forward's o and lse (P = exp(s − lse), delta = rowsum(dO ⊙ o)).
Status attentionGradLseKernel(const KernelContext &context);
/// dx and dw of causal_conv1d.
Status causalConv1dGradKernel(const KernelContext &context);
/// dq, dk, dv, dg, dbeta of gated_delta_rule through the token recurrence.
Status gatedDeltaRuleGradKernel(const KernelContext &context);
/// dlogits of moe_route through its weights.
Status moeRouteGradKernel(const KernelContext &context);
/// dx[n] = sum over slots of the dispatched rows' gradients.
Status moeDispatchGradKernel(const KernelContext &context);
/// dys and dweights of moe_combine.
Status moeCombineGradKernel(const KernelContext &context);
/// dxs and dw of grouped_matmul.
Status groupedMatmulGradKernel(const KernelContext &context);
/// dscores of moe_balance_loss.
Status moeBalanceLossGradKernel(const KernelContext &context);

// Optimizer step (optimizer_kernels.cc); the update kinds work in place.
/// ctl = [f(s), clip scale, ok, grad norm, t, s, 0, 0]: WSD factor, clipping, skip flag.
Status stepControlKernel(const KernelContext &context);
/// CautiousAdamW (MODEL.md §12), elementwise.
Status adamwUpdateKernel(const KernelContext &context);
/// NorMuon / Muon per [m, n] matrix (NS5 with bf16 rounding).
Status normuonUpdateKernel(const KernelContext &context);
/// The decomposed NorMuon of the plans (optimizer_kernels.cc): row sums of squares of the
/// Newton–Schulz input, momentum + the normalised bf16 NS5 input, the row second moment of
/// the NS5 output, and the weight update.
Status normuonNormKernel(const KernelContext &context);
Status normuonPrepareKernel(const KernelContext &context);
Status normuonRowsKernel(const KernelContext &context);
Status normuonFinishKernel(const KernelContext &context);
/// Router-bias dead-band update from the expert counts of a window of steps.
Status moeBiasUpdateKernel(const KernelContext &context);

/// Runs `gemm` on host memory (row-major, parallelSgemm on `pool`; bf16/f16 through f32
/// copies).
Status runGemm(const schema::Gemm &gemm, const BufferInfo &aInfo, const void *a,
               const BufferInfo &bInfo, const void *b, const BufferInfo &cInfo, void *c,
               ThreadPool *pool);

/// c = alpha·op(a)·op(b) + beta·c, row-major with cblas_sgemm's arguments (m × n result,
/// contraction k, leading dimensions; every size below 2³¹). C is cut into blocks of rows (and
/// of columns when it has few rows) whose boundaries depend only on the shape; each block is
/// one single-threaded OpenBLAS call, the blocks spread over `pool` (null: the caller). So the
/// result does not depend on the pool's size, and OpenBLAS's own threads (set to 1 on first
/// use) neither split the contraction differently nor spin against the pool's workers.
void parallelSgemm(ThreadPool *pool, bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                   float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                   float beta, float *c, int64_t ldc);

} // namespace fusion::rt::cpu
