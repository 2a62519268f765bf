//===- cpu_kernels.h - Reference kernels of the CPU backend (internal) ----===//
//
// The CPU backend runs a Launch by looking up the kernel's `kind` string here and calling the
// reference implementation with the instruction's buffers. The reference kernels are the
// oracle the CUDA kernels are checked against, so they favour clarity and accuracy over speed:
// they read any float storage (f32, bf16, f16), compute in fp32 or better (reductions and
// transcendental functions in double) and round once on the final store.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/plan.h"
#include "fusion/rt/status.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fusion::rt::cpu {

/// One buffer argument of a launch, resolved to host memory.
struct Tensor {
  void *data = nullptr;
  const BufferInfo *info = nullptr;
  /// Buffer id, for messages.
  uint32_t id = 0;
};

/// What a reference kernel sees of its launch. Errors returned by kernels describe only the
/// kernel-level problem; the executor prefixes the program, instruction and loc.
struct KernelContext {
  const schema::Kernel &kernel;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;

  /// Numeric attribute `name` (an Int or Float attribute) as double; `defaultValue` when
  /// absent, or an error naming the attribute when there is no default.
  StatusOr<double> floatAttr(std::string_view name,
                             std::optional<double> defaultValue = std::nullopt) const;
  /// Error unless the launch has exactly `numInputs` inputs and `numOutputs` outputs.
  Status expectArity(size_t numInputs, size_t numOutputs) const;
  /// Error unless `tensor` has f32, bf16 or f16 storage; `role` names it ("input 0").
  Status expectFloat(const Tensor &tensor, const std::string &role) const;
  /// Error unless `tensor` has exactly `count` elements.
  Status expectNumElements(const Tensor &tensor, const std::string &role,
                           uint64_t count) const;
};

/// A reference kernel.
using KernelFn = Status (*)(const KernelContext &context);

/// The reference kernel for `kind`, or nullptr when the CPU backend has none.
KernelFn findKernel(std::string_view kind);

/// The kinds the CPU backend implements, sorted, comma separated (for error messages).
std::string implementedKinds();

/// out[i] = value + step * i.
Status fillKernel(const KernelContext &context);
/// out = a + b, elementwise.
Status addKernel(const KernelContext &context);
/// out = a * b, elementwise.
Status mulKernel(const KernelContext &context);
/// out = x * sigmoid(x).
Status siluKernel(const KernelContext &context);
/// y = x / sqrt(mean(x^2 over the last dim) + eps) * w.
Status rmsNormKernel(const KernelContext &context);

/// Runs `gemm` on host memory (row-major, OpenBLAS sgemm; bf16/f16 through f32 copies).
Status runGemm(const schema::Gemm &gemm, const BufferInfo &aInfo, const void *a,
               const BufferInfo &bInfo, const void *b, const BufferInfo &cInfo, void *c);

} // namespace fusion::rt::cpu
