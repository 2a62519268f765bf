//===- grad_kernels.cc - Backward kernels: elementwise, norms, rope, CE ----===//
//
// Reverse-mode reference kernels of the cheap training kinds (docs/op-kinds.md, "Training
// kinds") and the fused softcapped head. Operands are read as fp32 whatever the storage,
// derivatives and reductions are evaluated in double and rounded once on the store (the
// fused head: fp32, see below). Every reduction runs in a fixed order (rows, positions or
// chunks in index order), so a result never depends on the thread count.
//   activation_grad  dx = dy·f′(x): silu′ = σ(1 + x(1−σ)), sigmoid′ = σ(1−σ),
//                    softplus′ = σ(x) (1 above 20, like the forward), softcap′ = 1 − tanh²(x/cap).
//   swiglu_grad      dgate = dy·up·silu′(gate), dup = dy·silu(gate).
//   rms_norm_grad    r = (mean x² + eps)^−½, x̂ = x r, ĝ = dy⊙w: dx = r(ĝ − x̂·mean(ĝ⊙x̂)),
//                    dw = Σ_rows dy⊙x̂.
//   l2_norm_grad     ν = sqrt(‖x‖² + eps), x̂ = x/ν: dx = (scale/ν)(dy − x̂(x̂·dy)).
//   rope_grad        dx = R(−φ)·dy per interleaved pair (the rotation's transpose), with the
//                    forward's fp32 cos/sin tables.
//   embedding_grad   dtable[v] = Σ_{p: ids[p] = v} dy[p], positions in order; unused rows 0.
//   slice_grad       dx = 0 except dx[…, start:start+size, …] = dy.
//   cross_entropy_grad  dz = dce·(softmax(z) − onehot(y)); rows with y < 0 are 0.
//   softcap_ce       ce = lse(z) − z_y with ℓ = h·wᵀ, z = cap·tanh(ℓ/cap) (cap 0: z = ℓ), per
//                    block of 128 rows: [128, V] logits by one sgemm, then per row tanh and exp
//                    in fp32 (vec_math.h) and Σexp in double (shifted by cap, which bounds z,
//                    or by max z when uncapped).
//   softcap_ce_grad  dℓ = dce·(exp(z − lse) − onehot)·(1 − tanh²(ℓ/cap)) per block as above
//                    (ℓ computed once), dh = dℓ·w per block; the dℓ of a chunk of blocks (about
//                    2²² values) stay for dw (+)= dℓᵀ·h, chunks in order. Products are
//                    parallelSgemm (fp32 accumulation, cpu_gemm.cc).
//   softcap_ce_rows       the row part of softcap_ce on logits [R, V] computed by a plan gemm:
//                         ce[r] of the block's rows, targets[row + r].
//   softcap_ce_rows_grad  the row part of softcap_ce_grad: dℓ [R, V] from logits [R, V] and
//                         dce[row + r], the same per-row math as softcap_ce_grad.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "kernel_util.h"
#include "vec_math.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

namespace fusion::rt::cpu {

namespace {

/// Elements per parallel work item of the elementwise kernels.
constexpr uint64_t kChunk = 1 << 15;
/// Rows per parallel work item of the row kernels.
constexpr uint64_t kRowGrain = 16;
/// Rows of the fused head per work item (one sgemm for their logits), and the dℓ that
/// softcap_ce_grad keeps for dw: chunks of about this many elements, whole blocks.
constexpr uint64_t kHeadBlockRows = 128;
constexpr uint64_t kHeadChunkElements = uint64_t(1) << 22;

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

Status invalid(const std::string &message) {
  return Status(StatusCode::kInvalidArgument, message);
}

/// Error unless `tensor` has at least one dimension.
Status expectNotScalar(const Tensor &tensor, const std::string &role) {
  if (!tensor.info->shape.empty())
    return Status::okStatus();
  return tensorError(tensor, role, "must have at least one dimension");
}

/// Checks targets [N] (index dtype, < bound; negative = ignored) before any write.
Status checkTargets(const Tensor &targets, const std::string &role, int64_t bound) {
  for (uint64_t n = 0; n < targets.info->numElements; ++n) {
    int64_t target = loadIndex(targets, n);
    if (target >= bound)
      return tensorError(targets, role,
                         "element " + std::to_string(n) + " is " + std::to_string(target) +
                             ", not below the vocabulary size " + std::to_string(bound) +
                             " (negative targets are ignored)");
  }
  return Status::okStatus();
}

} // namespace

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

Status activationGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  FUSION_ASSIGN_OR_RETURN(std::string fn, context.stringAttr("fn"));
  enum class Fn { kSilu, kSigmoid, kSoftplus, kSoftcap } which;
  double cap = 0;
  if (fn == "silu") {
    which = Fn::kSilu;
  } else if (fn == "sigmoid") {
    which = Fn::kSigmoid;
  } else if (fn == "softplus") {
    which = Fn::kSoftplus;
  } else if (fn == "softcap") {
    which = Fn::kSoftcap;
    FUSION_ASSIGN_OR_RETURN(cap, context.floatAttr("cap"));
    if (!(cap > 0) || !std::isfinite(cap))
      return invalid("attribute 'cap' must be positive and finite, got " + std::to_string(cap));
  } else {
    return invalid("attribute 'fn' must be one of silu, sigmoid, softplus, softcap, got " +
                   quoted(fn));
  }
  const Tensor &x = context.inputs[0], &dy = context.inputs[1], &dx = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0 (x)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dy, "input 1 (dy)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dx, "output 0 (dx)"));
  const uint64_t n = x.info->numElements;
  FUSION_RETURN_IF_ERROR(context.expectNumElements(dy, "input 1 (dy)", n));
  FUSION_RETURN_IF_ERROR(context.expectNumElements(dx, "output 0 (dx)", n));
  context.parallelFor(n, kChunk, [&](uint64_t begin, uint64_t end) {
    for (uint64_t i = begin; i < end; ++i) {
      double v = loadAsFloat(x.data, x.info->dtype, i);
      double g = loadAsFloat(dy.data, dy.info->dtype, i);
      double derivative = 0;
      switch (which) {
      case Fn::kSilu: {
        double s = sigmoid(v);
        derivative = s * (1 + v * (1 - s));
        break;
      }
      case Fn::kSigmoid: {
        double s = sigmoid(v);
        derivative = s * (1 - s);
        break;
      }
      case Fn::kSoftplus:
        derivative = v > 20 ? 1.0 : sigmoid(v);
        break;
      case Fn::kSoftcap: {
        double t = std::tanh(v / cap);
        derivative = 1 - t * t;
        break;
      }
      }
      storeFromFloat(dx.data, dx.info->dtype, i, static_cast<float>(g * derivative));
    }
  });
  return Status::okStatus();
}

Status swigluGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 2));
  const Tensor &gate = context.inputs[0], &up = context.inputs[1], &dy = context.inputs[2];
  const Tensor &dgate = context.outputs[0], &dup = context.outputs[1];
  FUSION_RETURN_IF_ERROR(context.expectFloat(gate, "input 0 (gate)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(up, "input 1 (up)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dy, "input 2 (dy)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dgate, "output 0 (dgate)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dup, "output 1 (dup)"));
  const uint64_t n = gate.info->numElements;
  FUSION_RETURN_IF_ERROR(context.expectNumElements(up, "input 1 (up)", n));
  FUSION_RETURN_IF_ERROR(context.expectNumElements(dy, "input 2 (dy)", n));
  FUSION_RETURN_IF_ERROR(context.expectNumElements(dgate, "output 0 (dgate)", n));
  FUSION_RETURN_IF_ERROR(context.expectNumElements(dup, "output 1 (dup)", n));
  // All three inputs of element i are read before either output of element i is written, so
  // each output may alias any input exactly.
  context.parallelFor(n, kChunk, [&](uint64_t begin, uint64_t end) {
    for (uint64_t i = begin; i < end; ++i) {
      double a = loadAsFloat(gate.data, gate.info->dtype, i);
      double c = loadAsFloat(up.data, up.info->dtype, i);
      double g = loadAsFloat(dy.data, dy.info->dtype, i);
      double s = sigmoid(a);
      storeFromFloat(dgate.data, dgate.info->dtype, i,
                     static_cast<float>(g * c * s * (1 + a * (1 - s))));
      storeFromFloat(dup.data, dup.info->dtype, i, static_cast<float>(g * a * s));
    }
  });
  return Status::okStatus();
}

//===----------------------------------------------------------------------===//
// Normalisation and rotary embedding
//===----------------------------------------------------------------------===//

Status rmsNormGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 2));
  FUSION_ASSIGN_OR_RETURN(double eps, context.floatAttr("eps"));
  const Tensor &x = context.inputs[0], &w = context.inputs[1], &dy = context.inputs[2];
  const Tensor &dx = context.outputs[0], &dw = context.outputs[1];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0 (x)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(w, "input 1 (w)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dy, "input 2 (dy)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dx, "output 0 (dx)"));
  FUSION_RETURN_IF_ERROR(context.expectDType(dw, "output 1 (dw)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(expectNotScalar(x, "input 0 (x)"));
  if (!(eps >= 0))
    return invalid("attribute 'eps' must be non-negative, got " + std::to_string(eps));
  const int64_t D = x.info->shape.back();
  FUSION_RETURN_IF_ERROR(context.expectShape(w, "input 1 (w)", {D}));
  FUSION_RETURN_IF_ERROR(context.expectShape(dy, "input 2 (dy)", x.info->shape));
  FUSION_RETURN_IF_ERROR(context.expectShape(dx, "output 0 (dx)", x.info->shape));
  FUSION_RETURN_IF_ERROR(context.expectShape(dw, "output 1 (dw)", {D}));
  const uint64_t d = static_cast<uint64_t>(D);
  if (d == 0)
    return Status::okStatus();
  const uint64_t rows = x.info->numElements / d;
  std::vector<double> weights(d), rs(rows);
  for (uint64_t j = 0; j < d; ++j)
    weights[j] = loadAsFloat(w.data, w.info->dtype, j);
  // r per row, then dw column by column (rows in order), then dx row by row.
  context.parallelFor(rows, kRowGrain, [&](uint64_t begin, uint64_t end) {
    for (uint64_t r = begin; r < end; ++r) {
      double sum = 0;
      for (uint64_t j = 0; j < d; ++j) {
        double v = loadAsFloat(x.data, x.info->dtype, r * d + j);
        sum += v * v;
      }
      rs[r] = 1.0 / std::sqrt(sum / static_cast<double>(d) + eps);
    }
  });
  std::vector<float> dwValues(d);
  context.parallelFor(d, 64, [&](uint64_t begin, uint64_t end) {
    for (uint64_t j = begin; j < end; ++j) {
      double acc = 0;
      for (uint64_t r = 0; r < rows; ++r)
        acc += static_cast<double>(loadAsFloat(dy.data, dy.info->dtype, r * d + j)) *
               loadAsFloat(x.data, x.info->dtype, r * d + j) * rs[r];
      dwValues[j] = static_cast<float>(acc);
    }
  });
  context.parallelFor(rows, kRowGrain, [&](uint64_t begin, uint64_t end) {
    std::vector<float> xRow(d), dyRow(d), out(d);
    for (uint64_t r = begin; r < end; ++r) {
      loadRow(x, r * d, d, xRow.data());
      loadRow(dy, r * d, d, dyRow.data());
      double mean = 0; // mean(ĝ ⊙ x̂)
      for (uint64_t j = 0; j < d; ++j)
        mean += static_cast<double>(dyRow[j]) * weights[j] * xRow[j] * rs[r];
      mean /= static_cast<double>(d);
      for (uint64_t j = 0; j < d; ++j)
        out[j] = static_cast<float>(rs[r] * (dyRow[j] * weights[j] - xRow[j] * rs[r] * mean));
      storeRow(dx, r * d, d, out.data());
    }
  });
  storeRow(dw, 0, d, dwValues.data());
  return Status::okStatus();
}

Status l2NormGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  FUSION_ASSIGN_OR_RETURN(double eps, context.floatAttr("eps"));
  FUSION_ASSIGN_OR_RETURN(double scale, context.floatAttr("scale"));
  const Tensor &x = context.inputs[0], &dy = context.inputs[1], &dx = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(x, "input 0 (x)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dy, "input 1 (dy)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dx, "output 0 (dx)"));
  FUSION_RETURN_IF_ERROR(expectNotScalar(x, "input 0 (x)"));
  if (!(eps > 0))
    return invalid("attribute 'eps' must be positive, got " + std::to_string(eps));
  FUSION_RETURN_IF_ERROR(context.expectShape(dy, "input 1 (dy)", x.info->shape));
  FUSION_RETURN_IF_ERROR(context.expectShape(dx, "output 0 (dx)", x.info->shape));
  const uint64_t d = static_cast<uint64_t>(x.info->shape.back());
  if (d == 0)
    return Status::okStatus();
  const uint64_t rows = x.info->numElements / d;
  // Both rows are read completely before dx's row is written, so dx may alias x or dy.
  context.parallelFor(rows, kRowGrain, [&](uint64_t begin, uint64_t end) {
    std::vector<float> xRow(d), dyRow(d), out(d);
    for (uint64_t r = begin; r < end; ++r) {
      loadRow(x, r * d, d, xRow.data());
      loadRow(dy, r * d, d, dyRow.data());
      double sumSq = 0, dot = 0;
      for (uint64_t j = 0; j < d; ++j) {
        sumSq += static_cast<double>(xRow[j]) * xRow[j];
        dot += static_cast<double>(xRow[j]) * dyRow[j];
      }
      double nu = std::sqrt(sumSq + eps);
      double projection = dot / (nu * nu); // (x̂·dy)/ν
      for (uint64_t j = 0; j < d; ++j)
        out[j] = static_cast<float>(scale / nu * (dyRow[j] - xRow[j] * projection));
      storeRow(dx, r * d, d, out.data());
    }
  });
  return Status::okStatus();
}

Status ropeGradKernel(const KernelContext &context) {
  // RoPE is orthogonal: the gradient is the inverse rotation, with the forward's tables.
  FUSION_RETURN_IF_ERROR(context.expectArity(1, 1));
  return rotaryKernel(context, /*inverse=*/true, "input 0 (dy)", "output 0 (dx)");
}

//===----------------------------------------------------------------------===//
// Embedding and layout
//===----------------------------------------------------------------------===//

Status embeddingGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  const Tensor &ids = context.inputs[0], &dy = context.inputs[1], &dtable = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectIndex(ids, "input 0 (ids)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dy, "input 1 (dy)"));
  FUSION_RETURN_IF_ERROR(context.expectDType(dtable, "output 0 (dtable)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectRank(dtable, "output 0 (dtable)", 2));
  const int64_t vocab = dtable.info->shape[0], dim = dtable.info->shape[1];
  std::vector<int64_t> expected = ids.info->shape;
  expected.push_back(dim);
  FUSION_RETURN_IF_ERROR(context.expectShape(dy, "input 1 (dy)", expected));
  const uint64_t count = ids.info->numElements;
  // Positions grouped by id (a stable counting sort), after checking every id.
  std::vector<uint64_t> start(static_cast<uint64_t>(vocab) + 1, 0);
  for (uint64_t i = 0; i < count; ++i) {
    int64_t id = loadIndex(ids, i);
    if (id < 0 || id >= vocab)
      return tensorError(ids, "input 0 (ids)",
                         "element " + std::to_string(i) + " is " + std::to_string(id) +
                             ", outside the table's rows [0, " + std::to_string(vocab) + ")");
    ++start[static_cast<uint64_t>(id) + 1];
  }
  if (dtable.info->numElements == 0)
    return Status::okStatus();
  for (uint64_t v = 0; v < static_cast<uint64_t>(vocab); ++v)
    start[v + 1] += start[v];
  std::vector<uint64_t> next(start.begin(), start.end() - 1), positions(count);
  for (uint64_t i = 0; i < count; ++i)
    positions[next[static_cast<uint64_t>(loadIndex(ids, i))]++] = i;
  const uint64_t D = static_cast<uint64_t>(dim);
  float *out = static_cast<float *>(dtable.data);
  context.parallelFor(static_cast<uint64_t>(vocab), 64, [&](uint64_t begin, uint64_t end) {
    std::vector<double> acc(D);
    std::vector<float> row(D);
    for (uint64_t v = begin; v < end; ++v) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (uint64_t k = start[v]; k < start[v + 1]; ++k) {
        loadRow(dy, positions[k] * D, D, row.data());
        for (uint64_t j = 0; j < D; ++j)
          acc[j] += row[j];
      }
      for (uint64_t j = 0; j < D; ++j)
        out[v * D + j] = static_cast<float>(acc[j]);
    }
  });
  return Status::okStatus();
}

Status sliceGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(1, 1));
  FUSION_ASSIGN_OR_RETURN(int64_t dim, context.intAttr("dim"));
  FUSION_ASSIGN_OR_RETURN(int64_t start, context.intAttr("start"));
  const Tensor &dy = context.inputs[0], &dx = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectDType(dx, "output 0 (dx)", dy.info->dtype));
  const std::vector<int64_t> &inShape = dy.info->shape, &outShape = dx.info->shape;
  FUSION_RETURN_IF_ERROR(context.expectRank(dx, "output 0 (dx)", inShape.size()));
  if (dim < 0 || static_cast<uint64_t>(dim) >= inShape.size())
    return invalid("attribute 'dim' = " + std::to_string(dim) + " is outside [0, " +
                   std::to_string(inShape.size()) + ") for input 0 (dy) of shape " +
                   formatShape(inShape));
  for (size_t d = 0; d < inShape.size(); ++d)
    if (d != static_cast<size_t>(dim) && inShape[d] != outShape[d])
      return tensorError(dx, "output 0 (dx)",
                         "must match input 0 (dy) " + formatShape(inShape) +
                             " in every dimension but " + std::to_string(dim));
  const int64_t size = inShape[dim];
  if (start < 0 || start > outShape[dim] - size)
    return invalid("slice [" + std::to_string(start) + ", " + std::to_string(start) + "+" +
                   std::to_string(size) + ") does not fit dimension " + std::to_string(dim) +
                   " of size " + std::to_string(outShape[dim]) + " of output 0 (dx)");
  if (dx.info->numElements == 0)
    return Status::okStatus();
  // Zero bits are 0 in every storage type.
  std::memset(dx.data, 0, dx.info->byteSize);
  const uint64_t outer = dimProduct(outShape, 0, dim);
  const uint64_t inner = dimProduct(outShape, dim + 1, outShape.size()) * dtypeSize(dx.info->dtype);
  const uint64_t sz = static_cast<uint64_t>(size), full = static_cast<uint64_t>(outShape[dim]);
  const char *src = static_cast<const char *>(dy.data);
  char *dst = static_cast<char *>(dx.data);
  for (uint64_t o = 0; o < outer && sz > 0; ++o)
    std::memcpy(dst + (o * full + static_cast<uint64_t>(start)) * inner, src + o * sz * inner,
                sz * inner);
  return Status::okStatus();
}

//===----------------------------------------------------------------------===//
// Cross-entropy and the fused softcapped head
//===----------------------------------------------------------------------===//

Status crossEntropyGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 1));
  const Tensor &logits = context.inputs[0], &targets = context.inputs[1], &dce = context.inputs[2];
  const Tensor &dlogits = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(logits, "input 0 (logits)"));
  FUSION_RETURN_IF_ERROR(context.expectIndex(targets, "input 1 (targets)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dce, "input 2 (dce)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dlogits, "output 0 (dlogits)"));
  FUSION_RETURN_IF_ERROR(context.expectRank(logits, "input 0 (logits)", 2));
  const int64_t N = logits.info->shape[0], V = logits.info->shape[1];
  FUSION_RETURN_IF_ERROR(context.expectShape(targets, "input 1 (targets)", {N}));
  FUSION_RETURN_IF_ERROR(context.expectShape(dce, "input 2 (dce)", {N}));
  FUSION_RETURN_IF_ERROR(context.expectShape(dlogits, "output 0 (dlogits)", {N, V}));
  FUSION_RETURN_IF_ERROR(checkTargets(targets, "input 1 (targets)", V));
  const uint64_t vocab = static_cast<uint64_t>(V);
  if (vocab == 0)
    return Status::okStatus();
  // A row is read completely before it is written, so dlogits may alias logits.
  context.parallelFor(static_cast<uint64_t>(N), 4, [&](uint64_t begin, uint64_t end) {
    std::vector<float> row(vocab);
    for (uint64_t n = begin; n < end; ++n) {
      int64_t target = loadIndex(targets, n);
      if (target < 0) {
        std::fill(row.begin(), row.end(), 0.0f);
        storeRow(dlogits, n * vocab, vocab, row.data());
        continue;
      }
      double scale = loadAsFloat(dce.data, dce.info->dtype, n);
      loadRow(logits, n * vocab, vocab, row.data());
      float maximum = -INFINITY;
      for (float z : row)
        maximum = std::max(maximum, z);
      double sum = 0;
      for (float z : row)
        sum += std::exp(static_cast<double>(z) - maximum);
      for (uint64_t v = 0; v < vocab; ++v) {
        double p = std::exp(static_cast<double>(row[v]) - maximum) / sum;
        row[v] = static_cast<float>(scale * (p - (v == static_cast<uint64_t>(target) ? 1 : 0)));
      }
      storeRow(dlogits, n * vocab, vocab, row.data());
    }
  });
  return Status::okStatus();
}

namespace {

/// The validated operands of softcap_ce / softcap_ce_grad.
struct HeadShape {
  uint64_t N = 0, D = 0, V = 0;
  double cap = 0;
};

StatusOr<HeadShape> checkHead(const KernelContext &context) {
  FUSION_ASSIGN_OR_RETURN(double cap, context.floatAttr("cap"));
  if (!(cap >= 0) || !std::isfinite(cap))
    return invalid("attribute 'cap' must be >= 0 (0 = no cap) and finite, got " +
                   std::to_string(cap));
  const Tensor &h = context.inputs[0], &w = context.inputs[1], &targets = context.inputs[2];
  FUSION_RETURN_IF_ERROR(context.expectFloat(h, "input 0 (h)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(w, "input 1 (w)"));
  FUSION_RETURN_IF_ERROR(context.expectIndex(targets, "input 2 (targets)"));
  FUSION_RETURN_IF_ERROR(context.expectRank(h, "input 0 (h)", 2));
  FUSION_RETURN_IF_ERROR(context.expectRank(w, "input 1 (w)", 2));
  const int64_t N = h.info->shape[0], D = h.info->shape[1], V = w.info->shape[0];
  if (w.info->shape[1] != D)
    return tensorError(w, "input 1 (w)", "must be [V, D] with h's D = " + std::to_string(D));
  FUSION_RETURN_IF_ERROR(context.expectShape(targets, "input 2 (targets)", {N}));
  FUSION_RETURN_IF_ERROR(checkTargets(targets, "input 2 (targets)", V));
  HeadShape shape;
  shape.N = static_cast<uint64_t>(N);
  shape.D = static_cast<uint64_t>(D);
  shape.V = static_cast<uint64_t>(V);
  shape.cap = cap;
  return shape;
}

/// OpenBLAS takes 32-bit sizes and leading dimensions.
Status checkHeadBlasLimits(const HeadShape &s) {
  for (uint64_t v : {s.N, s.D, s.V})
    if (v > static_cast<uint64_t>(INT_MAX))
      return Status(StatusCode::kUnimplemented,
                    "fused head dimension " + std::to_string(v) +
                        " exceeds the cpu backend's 32-bit BLAS limit");
  return Status::okStatus();
}

/// ℓ = h[first:first+rows]·wᵀ, [rows, V], on the calling thread (fp32 accumulation).
void headLogits(const HeadShape &s, const float *h, const float *w, uint64_t first, uint64_t rows,
                float *logits) {
  parallelSgemm(nullptr, false, true, static_cast<int64_t>(rows), static_cast<int64_t>(s.V),
                static_cast<int64_t>(s.D), 1.0f, h + first * s.D, static_cast<int64_t>(s.D), w,
                static_cast<int64_t>(s.D), 0.0f, logits, static_cast<int64_t>(s.V));
}

/// Per-thread scratch of headRow: t = tanh(ℓ/cap) and e = exp(z − shift) of one row.
struct HeadScratch {
  std::vector<float> t, e;
  explicit HeadScratch(uint64_t V) : t(V), e(V) {}
};

/// One row of logits `z` (ℓ on entry): z = cap·tanh(ℓ/cap) in place (ℓ for cap 0), scratch.t
/// = tanh(ℓ/cap), scratch.e = exp(z − shift); returns Σe (double, four partial sums added in
/// a fixed order) and sets `shift`: cap when capped (z ≤ cap, and z − cap ≥ −2·cap keeps e
/// normal for any cap up to 43), else max z. 4-lane vectors (vec_math.h), one pass when
/// capped, two otherwise; the last partial vector is zero-padded and its padding lanes are
/// left out of the max and the sum.
double headRow(const HeadShape &s, float *z, HeadScratch &scratch, float &shift) {
  using namespace vec4;
  const uint64_t V = s.V, full = V / 4 * 4, tail = V - full;
  float *t = scratch.t.data(), *e = scratch.e.data();
  if (s.cap > 0 && s.cap <= 43) {
    const F4 cap = splat(static_cast<float>(s.cap));
    auto lanes = [&](float *zp, float *tp, float *ep) {
      F4 th = tanh4(load(zp) / cap);
      F4 zv = cap * th;
      store(tp, th);
      store(zp, zv);
      store(ep, exp4(zv - cap));
    };
    for (uint64_t j = 0; j < full; j += 4)
      lanes(z + j, t + j, e + j);
    if (tail > 0) {
      float zBuf[4] = {0, 0, 0, 0}, tBuf[4], eBuf[4];
      std::memcpy(zBuf, z + full, tail * sizeof(float));
      lanes(zBuf, tBuf, eBuf);
      std::memcpy(z + full, zBuf, tail * sizeof(float));
      std::memcpy(t + full, tBuf, tail * sizeof(float));
      std::memcpy(e + full, eBuf, tail * sizeof(float));
    }
    shift = static_cast<float>(s.cap);
  } else {
    if (s.cap > 0) {
      const float cap = static_cast<float>(s.cap);
      for (uint64_t j = 0; j < V; ++j)
        t[j] = z[j] / cap;
      tanhF32(t, t, V);
      for (uint64_t j = 0; j < V; ++j)
        z[j] = cap * t[j];
    }
    F4 lanesMax = splat(-INFINITY);
    for (uint64_t j = 0; j < full; j += 4) {
      F4 zv = load(z + j);
      lanesMax = select(zv > lanesMax, zv, lanesMax);
    }
    float m = -INFINITY;
    for (int l = 0; l < 4; ++l)
      m = std::max(m, lanesMax[l]);
    for (uint64_t j = full; j < V; ++j)
      m = std::max(m, z[j]);
    for (uint64_t j = 0; j < V; ++j)
      e[j] = z[j] - m;
    expF32(e, e, V);
    shift = m;
  }
  double partial[4] = {0, 0, 0, 0};
  uint64_t j = 0;
  for (; j + 4 <= V; j += 4)
    for (int l = 0; l < 4; ++l)
      partial[l] += e[j + l];
  for (int l = 0; j < V; ++j, ++l)
    partial[l] += e[j];
  return (partial[0] + partial[1]) + (partial[2] + partial[3]);
}

/// Rows per chunk of softcap_ce_grad: the chunk's [rows, V] dℓ stay in memory for dw.
uint64_t headChunkRows(const HeadShape &s) {
  uint64_t rows = std::max<uint64_t>(kHeadBlockRows, kHeadChunkElements / s.V);
  return std::min<uint64_t>(s.N, rows / kHeadBlockRows * kHeadBlockRows);
}

} // namespace

Status softcapCeKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 1));
  FUSION_ASSIGN_OR_RETURN(HeadShape s, checkHead(context));
  const Tensor &h = context.inputs[0], &w = context.inputs[1], &targets = context.inputs[2];
  const Tensor &ce = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectDType(ce, "output 0 (ce)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectShape(ce, "output 0 (ce)", {static_cast<int64_t>(s.N)}));
  if (s.N == 0)
    return Status::okStatus();
  if (s.V == 0)
    return invalid("input 1 (w) has no vocabulary rows");
  FUSION_RETURN_IF_ERROR(checkHeadBlasLimits(s));
  F32View hView(h), wView(w);
  float *out = static_cast<float *>(ce.data);
  // Blocks of kHeadBlockRows rows: logits (one sgemm), then row by row.
  const uint64_t blocks = (s.N + kHeadBlockRows - 1) / kHeadBlockRows;
  context.parallelFor(blocks, 1, [&](uint64_t begin, uint64_t end) {
    HeadScratch scratch(s.V);
    std::vector<float> logits(kHeadBlockRows * s.V);
    for (uint64_t block = begin; block < end; ++block) {
      const uint64_t first = block * kHeadBlockRows, rows = std::min(kHeadBlockRows, s.N - first);
      if (s.D > 0)
        headLogits(s, hView.data(), wView.data(), first, rows, logits.data());
      else
        std::fill(logits.begin(), logits.end(), 0.0f);
      for (uint64_t r = 0; r < rows; ++r) {
        int64_t target = loadIndex(targets, first + r);
        if (target < 0) {
          out[first + r] = 0.0f;
          continue;
        }
        float *z = &logits[r * s.V], shift;
        double sum = headRow(s, z, scratch, shift);
        double lse = shift + std::log(sum);
        out[first + r] = static_cast<float>(lse - z[static_cast<uint64_t>(target)]);
      }
    }
  });
  return Status::okStatus();
}

Status softcapCeGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(4, 2));
  FUSION_ASSIGN_OR_RETURN(HeadShape s, checkHead(context));
  const Tensor &h = context.inputs[0], &w = context.inputs[1], &targets = context.inputs[2];
  const Tensor &dce = context.inputs[3], &dh = context.outputs[0], &dw = context.outputs[1];
  FUSION_RETURN_IF_ERROR(context.expectFloat(dce, "input 3 (dce)"));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dh, "output 0 (dh)"));
  FUSION_RETURN_IF_ERROR(context.expectDType(dw, "output 1 (dw)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectShape(dce, "input 3 (dce)", {static_cast<int64_t>(s.N)}));
  FUSION_RETURN_IF_ERROR(context.expectShape(dh, "output 0 (dh)", h.info->shape));
  FUSION_RETURN_IF_ERROR(context.expectShape(dw, "output 1 (dw)", w.info->shape));
  if (s.N > 0 && s.V == 0)
    return invalid("input 1 (w) has no vocabulary rows");
  float *dwData = static_cast<float *>(dw.data);
  if (s.N == 0 || s.D == 0) {
    std::fill(dwData, dwData + s.V * s.D, 0.0f);
    return Status::okStatus();
  }
  FUSION_RETURN_IF_ERROR(checkHeadBlasLimits(s));
  // Inputs that overlap an output were copied by runKernel (this kind is not in place).
  F32View hView(h), wView(w);
  const uint64_t chunk = headChunkRows(s);
  std::vector<float> logits(chunk * s.V);
  for (uint64_t first = 0; first < s.N; first += chunk) {
    const uint64_t rows = std::min(chunk, s.N - first);
    // Blocks of kHeadBlockRows rows: ℓ (one sgemm), dℓ in place row by row, dh = dℓ·w.
    const uint64_t blocks = (rows + kHeadBlockRows - 1) / kHeadBlockRows;
    context.parallelFor(blocks, 1, [&](uint64_t begin, uint64_t end) {
      HeadScratch scratch(s.V);
      std::vector<float> dhRows(kHeadBlockRows * s.D);
      for (uint64_t block = begin; block < end; ++block) {
        const uint64_t r0 = block * kHeadBlockRows, count = std::min(kHeadBlockRows, rows - r0);
        float *blockLogits = &logits[r0 * s.V];
        headLogits(s, hView.data(), wView.data(), first + r0, count, blockLogits);
        for (uint64_t r = 0; r < count; ++r) {
          float *z = blockLogits + r * s.V;
          int64_t target = loadIndex(targets, first + r0 + r);
          if (target < 0) {
            std::fill(z, z + s.V, 0.0f);
            continue;
          }
          float shift;
          double sum = headRow(s, z, scratch, shift); // e / sum = exp(z − lse)
          const float scale = loadAsFloat(dce.data, dce.info->dtype, first + r0 + r);
          const float inverse = static_cast<float>(1.0 / sum);
          const float *t = scratch.t.data(), *e = scratch.e.data();
          if (s.cap > 0) {
            for (uint64_t j = 0; j < s.V; ++j)
              z[j] = scale * (e[j] * inverse) * (1.0f - t[j] * t[j]);
          } else {
            for (uint64_t j = 0; j < s.V; ++j)
              z[j] = scale * (e[j] * inverse);
          }
          const uint64_t y = static_cast<uint64_t>(target);
          const float factor = s.cap > 0 ? 1.0f - t[y] * t[y] : 1.0f;
          z[y] = scale * (e[y] * inverse - 1.0f) * factor;
        }
        parallelSgemm(nullptr, false, false, static_cast<int64_t>(count),
                      static_cast<int64_t>(s.D), static_cast<int64_t>(s.V), 1.0f, blockLogits,
                      static_cast<int64_t>(s.V), wView.data(), static_cast<int64_t>(s.D), 0.0f,
                      dhRows.data(), static_cast<int64_t>(s.D));
        storeRow(dh, (first + r0) * s.D, count * s.D, dhRows.data());
      }
    });
    // dw (+)= dℓᵀ·h over the chunk's rows; chunks in order.
    parallelSgemm(context.pool, true, false, static_cast<int64_t>(s.V), static_cast<int64_t>(s.D),
                  static_cast<int64_t>(rows), 1.0f, logits.data(), static_cast<int64_t>(s.V),
                  hView.data() + first * s.D, static_cast<int64_t>(s.D),
                  first == 0 ? 0.0f : 1.0f, dwData, static_cast<int64_t>(s.D));
  }
  return Status::okStatus();
}

namespace {

/// The validated operands of softcap_ce_rows / softcap_ce_rows_grad: logits [R, V] f32 and
/// targets [N] with row + R <= N (the block's targets are rows row .. row + R − 1).
struct RowsShape {
  HeadShape head; // N = R, the block's rows; V; cap
  uint64_t first = 0, total = 0;
};

StatusOr<RowsShape> checkRows(const KernelContext &context) {
  FUSION_ASSIGN_OR_RETURN(double cap, context.floatAttr("cap"));
  if (!(cap >= 0) || !std::isfinite(cap))
    return invalid("attribute 'cap' must be >= 0 (0 = no cap) and finite, got " +
                   std::to_string(cap));
  FUSION_ASSIGN_OR_RETURN(int64_t row, context.intAttr("row"));
  const Tensor &logits = context.inputs[0], &targets = context.inputs[1];
  FUSION_RETURN_IF_ERROR(
      context.expectDType(logits, "input 0 (logits)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(context.expectRank(logits, "input 0 (logits)", 2));
  FUSION_RETURN_IF_ERROR(context.expectIndex(targets, "input 1 (targets)"));
  FUSION_RETURN_IF_ERROR(context.expectRank(targets, "input 1 (targets)", 1));
  const int64_t R = logits.info->shape[0], V = logits.info->shape[1];
  const int64_t N = targets.info->shape[0];
  if (row < 0 || row > N || R > N - row)
    return invalid("attribute 'row' = " + std::to_string(row) + " with " + std::to_string(R) +
                   " logit rows runs past the " + std::to_string(N) + " targets");
  if (R > 0 && V == 0)
    return invalid("input 0 (logits) has no vocabulary columns");
  RowsShape shape;
  shape.head.N = static_cast<uint64_t>(R);
  shape.head.V = static_cast<uint64_t>(V);
  shape.head.cap = cap;
  shape.first = static_cast<uint64_t>(row);
  shape.total = static_cast<uint64_t>(N);
  // Only the block's targets are read; each must index the vocabulary.
  for (uint64_t r = 0; r < shape.head.N; ++r) {
    int64_t target = loadIndex(targets, shape.first + r);
    if (target >= V)
      return tensorError(targets, "input 1 (targets)",
                         "element " + std::to_string(shape.first + r) + " is " +
                             std::to_string(target) + ", not below the vocabulary size " +
                             std::to_string(V) + " (negative targets are ignored)");
  }
  return shape;
}

} // namespace

Status softcapCeRowsKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(2, 1));
  FUSION_ASSIGN_OR_RETURN(RowsShape s, checkRows(context));
  const Tensor &logits = context.inputs[0], &targets = context.inputs[1];
  const Tensor &ce = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectDType(ce, "output 0 (ce)", schema::DType::F32));
  FUSION_RETURN_IF_ERROR(
      context.expectShape(ce, "output 0 (ce)", {static_cast<int64_t>(s.head.N)}));
  const float *l = static_cast<const float *>(logits.data);
  float *out = static_cast<float *>(ce.data);
  const uint64_t V = s.head.V;
  context.parallelFor(s.head.N, kRowGrain, [&](uint64_t begin, uint64_t end) {
    HeadScratch scratch(V);
    std::vector<float> z(V);
    for (uint64_t r = begin; r < end; ++r) {
      int64_t target = loadIndex(targets, s.first + r);
      if (target < 0) {
        out[r] = 0.0f;
        continue;
      }
      std::memcpy(z.data(), l + r * V, V * sizeof(float));
      float shift;
      double sum = headRow(s.head, z.data(), scratch, shift);
      out[r] =
          static_cast<float>(shift + std::log(sum) - z[static_cast<uint64_t>(target)]);
    }
  });
  return Status::okStatus();
}

Status softcapCeRowsGradKernel(const KernelContext &context) {
  FUSION_RETURN_IF_ERROR(context.expectArity(3, 1));
  FUSION_ASSIGN_OR_RETURN(RowsShape s, checkRows(context));
  const Tensor &logits = context.inputs[0], &targets = context.inputs[1];
  const Tensor &dce = context.inputs[2], &dl = context.outputs[0];
  FUSION_RETURN_IF_ERROR(context.expectFloat(dce, "input 2 (dce)"));
  FUSION_RETURN_IF_ERROR(
      context.expectShape(dce, "input 2 (dce)", {static_cast<int64_t>(s.total)}));
  FUSION_RETURN_IF_ERROR(context.expectFloat(dl, "output 0 (dlogits)"));
  FUSION_RETURN_IF_ERROR(context.expectShape(dl, "output 0 (dlogits)", logits.info->shape));
  const float *l = static_cast<const float *>(logits.data);
  const uint64_t V = s.head.V;
  context.parallelFor(s.head.N, kRowGrain, [&](uint64_t begin, uint64_t end) {
    HeadScratch scratch(V);
    std::vector<float> z(V);
    for (uint64_t r = begin; r < end; ++r) {
      int64_t target = loadIndex(targets, s.first + r);
      if (target < 0) {
        std::fill(z.begin(), z.end(), 0.0f);
        storeRow(dl, r * V, V, z.data());
        continue;
      }
      std::memcpy(z.data(), l + r * V, V * sizeof(float));
      float shift;
      double sum = headRow(s.head, z.data(), scratch, shift); // e / sum = exp(z − lse)
      const float scale = loadAsFloat(dce.data, dce.info->dtype, s.first + r);
      const float inverse = static_cast<float>(1.0 / sum);
      const float *t = scratch.t.data(), *e = scratch.e.data();
      // The same expressions as softcap_ce_grad, so the two forms agree bit for bit on dℓ.
      if (s.head.cap > 0) {
        for (uint64_t j = 0; j < V; ++j)
          z[j] = scale * (e[j] * inverse) * (1.0f - t[j] * t[j]);
      } else {
        for (uint64_t j = 0; j < V; ++j)
          z[j] = scale * (e[j] * inverse);
      }
      const uint64_t y = static_cast<uint64_t>(target);
      const float factor = s.head.cap > 0 ? 1.0f - t[y] * t[y] : 1.0f;
      z[y] = scale * (e[y] * inverse - 1.0f) * factor;
      storeRow(dl, r * V, V, z.data());
    }
  });
  return Status::okStatus();
}

} // namespace fusion::rt::cpu
