//===- ModelBuilder.h - building FusionLLM as fusion IR -------------------===//
//
// Part of the FusionLLM compiler.
//
// ModelBuilder owns what every block builder needs: the OpBuilder, the config, the
// parameters declared so far, and locations. Every op gets a location that fuses the
// module path of its block (`layers.11.ffn.router`) with the YAML position of the config
// key that shaped it, so diagnostics and IR dumps point back into the config file.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_MODELS_MODELBUILDER_H
#define FUSION_MODELS_MODELBUILDER_H

#include "dialects/Fusion/IR/FusionOps.h"
#include "frontend/Spec/ConfigSpec.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/SourceMgr.h"

#include <string>

namespace mlir::fusion::models {

namespace spec = ::fusion::spec;

/// How a parameter is initialised, optimised and decayed (MODEL.md §11, §12).
struct ParamSpec {
  std::string init;          ///< zeros, ones, normal, trunc_normal, uniform, log_uniform, dt_bias
  double std = 0, low = 0, high = 0;
  std::string optimizer;     ///< normuon, adamw, none
  bool weightDecay = false;
};

class ModelBuilder {
public:
  ModelBuilder(MLIRContext *context, const spec::ParsedConfig &parsed,
               const llvm::SourceMgr &sourceMgr);

  /// Builds the module: parameters and `func.func @forward(tokens, targets, inv_counts) ->
  /// (loss, main_loss)`; with `inference`, also the inference programs
  ///   `@logits(tokens [B, T+1] i32) -> [B, T, V] f32` (the main head's softcapped logits at
  ///   each of the first T positions), and
  ///   `@decode_step(token [1, 1] i32, position [1] i32) -> [1, V] f32` (the logits after one
  ///   more token at `position`, reading and updating the `cache` parameters: each MLA
  ///   layer's K/V cache of max_seq_len positions, each GDN layer's convolution tails and
  ///   recurrent state).
  OwningOpRef<ModuleOp> build(bool inference = false);

  /// Builds @forward (and the train functions derived from it) for micro-batches of `rows` x
  /// `seqLen` instead of the steady-state shape (a shape the batch-size / sequence-length
  /// ramps visit, MODEL.md §13).
  void setShape(int64_t rows, int64_t seqLen) {
    shapeRows = rows;
    shapeSeqLen = seqLen;
  }

  /// Set while building @decode_step: the blocks then use the cache ops.
  struct Decoding {
    Value position;      ///< i32 [1]: the position of the new token
    int64_t cacheLength; ///< positions the caches hold (max_seq_len)
  };
  const Decoding *decoding() const { return decode; }
  /// True while building an inference function (no auxiliary losses).
  bool inInferenceFunction() const { return inference; }
  /// Declares a `cache` parameter (zeros at the start of each generation, not checkpointed)
  /// and returns its symbol, for a cache op's `state`.
  FlatSymbolRefAttr cache(llvm::StringRef name, llvm::ArrayRef<int64_t> shape, Location loc);

  /// The module attribute `fusion.config`: the resolved training, schedule and data
  /// settings that fusion-optimizer and the runtime's training loop read.
  DictionaryAttr buildConfigAttr();

  //===--- used by the block builders ---------------------------------------===//

  const spec::ModelConfig &model() const { return parsed.config.model; }
  const spec::TrainingConfig &training() const { return parsed.config.training; }
  const spec::Config &config() const { return parsed.config; }
  OpBuilder &b() { return builder; }

  /// The location `name(yaml:line:col of key)`; `key` is "section.key".
  Location loc(llvm::StringRef name, llvm::StringRef key);

  /// Declares a parameter (once) and loads it; returns the fp32 value.
  Value param(llvm::StringRef name, llvm::ArrayRef<int64_t> shape, const ParamSpec &spec,
              Location loc);
  /// Loads a parameter as the compute dtype (bf16 compute copy when training in bf16).
  Value computeParam(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                     const ParamSpec &spec, Location loc);

  /// Init rules of MODEL.md §11 for the common kinds of tensors.
  ParamSpec matrixInit(int64_t fanIn);
  ParamSpec residualOutputInit(int64_t fanIn);
  ParamSpec normInit();

  /// The dtype activations are computed in (bf16 or f32, `training.dtype`).
  Type computeType() { return compute; }
  RankedTensorType tensor(llvm::ArrayRef<int64_t> shape, Type elementType);

  //===--- op helpers (shapes inferred from operands) -----------------------===//

  Value cast(Value x, Type elementType, Location loc);
  /// y = x Wᵀ for x [..., in] and W [out, in].
  Value linear(Value x, Value weight, Location loc);
  Value rmsNorm(Value x, Value weight, Location loc);
  Value reshape(Value x, llvm::ArrayRef<int64_t> shape, Location loc);
  Value transpose(Value x, llvm::ArrayRef<int64_t> perm, Location loc);
  Value slice(Value x, int64_t dim, int64_t start, int64_t size, Location loc);
  Value concat(llvm::ArrayRef<Value> xs, int64_t dim, Location loc);
  Value broadcast(Value x, llvm::ArrayRef<int64_t> shape, llvm::ArrayRef<int64_t> dims,
                  Location loc);
  Value add(Value a, Value b, Location loc);
  Value mul(Value a, Value b, Location loc);
  Value scalarSum(Value x, Location loc);

  /// Dense SwiGLU FFN with weights `<prefix>.{w1,w3,w2}.weight` (MODEL.md §6).
  Value denseFfn(Value u, llvm::StringRef prefix, int64_t width, Location loc);

  /// Accumulated auxiliary loss terms (MoE balance), scaled.
  Value auxLoss;

private:
  /// Declares parameter `name` once, just above the first function.
  void declare(llvm::StringRef name, llvm::ArrayRef<int64_t> shape, const ParamSpec &spec,
               Location loc);
  ParamSpec embeddingInit();
  /// Loads W_E in the current function (the one value embed() and headLogits() use).
  Value loadTiedWeight();
  /// The tied embedding of `ids` [B, S] as fp32 [B, S, D].
  Value embed(Value ids, Location loc);
  /// The backbone blocks of the layer schedule on the fp32 residual stream [B, S, D].
  Value backbone(Value x);
  /// A tied head's logits [rows, V] in fp32: final RMSNorm (`normName`), W_E, softcap `cap`
  /// (none when 0).
  Value headLogits(Value h, llvm::StringRef normName, double cap, Location loc);
  /// @logits and @decode_step (see build()).
  void buildInferenceFunctions(Location top);

  MLIRContext *context;
  const spec::ParsedConfig &parsed;
  const llvm::SourceMgr &sourceMgr;
  OpBuilder builder;
  ModuleOp module;
  /// Parameters are declared before this op (the forward function).
  Operation *paramAnchor = nullptr;
  Type compute;
  llvm::StringMap<ParameterOp> params;
  /// Number of blocks with residual outputs (2L, for the depth-scaled init).
  int64_t numResidualLayers;
  const Decoding *decode = nullptr;
  Value tiedWeight;
  /// The micro-batch shape of @forward: the steady state unless setShape() chose another.
  int64_t shapeRows, shapeSeqLen;
  bool inference = false;
};

/// Block builders (one file each). `x` is the normalised block input [B, T, D] in the
/// compute dtype; each returns the block output [B, T, D] in the compute dtype.
Value buildMla(ModelBuilder &mb, Value u, llvm::StringRef prefix, int64_t window);
Value buildGdn(ModelBuilder &mb, Value u, llvm::StringRef prefix);
Value buildMoe(ModelBuilder &mb, Value u, llvm::StringRef prefix);

} // namespace mlir::fusion::models

#endif // FUSION_MODELS_MODELBUILDER_H
