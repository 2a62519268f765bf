//===- FusionLLM.cpp - the whole model: schedule, head, MTP, loss ---------===//
//
// Part of the FusionLLM compiler.
//
// Assembles MODEL.md §2, §7 and §8 into one function:
//
//   func.func @forward(%tokens: tensor<B x (T+1) x i32>, %targets: tensor<B x (T+1) x i32>,
//                      %inv_counts: tensor<(1+D_m) x f32>) -> (tensor<f32>, tensor<f32>)
//
// (`targets` = tokens with ignored positions set to −1, MODEL.md §14.3), returning this micro-batch's contribution to the step loss: the main-head CE sum times
// inv_counts[0] (= 1/N_0, the step's global count of kept targets, known before compute),
// each MTP depth k's CE sum times w_k · inv_counts[k], and α/(n_acc·W_dp) times each MoE
// layer's row-mean balance loss (result `loss`), and the main-head term alone (result
// `main_loss`, the number MODEL.md §8 logs as "loss").
//
//===----------------------------------------------------------------------===//

#include "models/ModelBuilder.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <cstdio>

using namespace mlir;
using namespace mlir::fusion;
using namespace mlir::fusion::models;

namespace {

/// One pre-norm residual block: x += mixer(RMSNorm(x)); x += ffn(RMSNorm(x)).
/// `x` is the fp32 residual stream.
Value buildBlock(ModelBuilder &mb, Value x, llvm::StringRef prefix, bool gdn, int64_t window,
                 bool moe, int64_t ffnWidth) {
  int64_t dim = mb.model().dim;
  Type f32 = mb.b().getF32Type();
  auto name = [&](llvm::StringRef leaf) { return (prefix + "." + leaf).str(); };
  Location normLoc = mb.loc(name("attn_norm"), "model.norm_eps");
  Value u = mb.cast(mb.rmsNorm(x, mb.param(name("attn_norm.weight"), {dim}, mb.normInit(), normLoc),
                               normLoc),
                    mb.computeType(), normLoc);
  Value mixed = gdn ? buildGdn(mb, u, name("attn")) : buildMla(mb, u, name("attn"), window);
  Location residualLoc = mb.loc(name("residual"), "model.dim");
  x = mb.add(x, mb.cast(mixed, f32, residualLoc), residualLoc);

  Location ffnNormLoc = mb.loc(name("ffn_norm"), "model.norm_eps");
  u = mb.cast(mb.rmsNorm(x, mb.param(name("ffn_norm.weight"), {dim}, mb.normInit(), ffnNormLoc),
                         ffnNormLoc),
              mb.computeType(), ffnNormLoc);
  Value ffn = moe ? buildMoe(mb, u, name("ffn"))
                  : mb.denseFfn(u, name("ffn"), ffnWidth, mb.loc(name("ffn"), "model.inter_dim"));
  return mb.add(x, mb.cast(ffn, f32, residualLoc), residualLoc);
}

} // namespace

ParamSpec ModelBuilder::embeddingInit() {
  // Tied embedding W_E [V, D]: σ = D^(−1/2) under μP.
  if (model().muP)
    return {"trunc_normal", 1.0 / std::sqrt(double(model().dim)), 0, 0, "adamw", true};
  return {"normal", 0.02, 0, 0, "adamw", true};
}

Value ModelBuilder::loadTiedWeight() {
  const spec::ModelConfig &m = model();
  tiedWeight = param("tok_embeddings.weight", {m.vocabSize, m.dim}, embeddingInit(),
                     loc("tok_embeddings", "model.vocab_size"));
  return tiedWeight;
}

Value ModelBuilder::embed(Value ids, Location at) {
  auto shape = llvm::cast<RankedTensorType>(ids.getType()).getShape();
  return EmbeddingOp::create(builder, at,
                             tensor({shape[0], shape[1], model().dim}, builder.getF32Type()),
                             tiedWeight, ids);
}

Value ModelBuilder::backbone(Value x) {
  const spec::ModelConfig &m = model();
  std::vector<spec::LayerKind> kinds = m.getLayerKinds();
  for (auto [i, kind] : llvm::enumerate(kinds))
    x = buildBlock(*this, x, llvm::formatv("layers.{0}", i).str(), kind.isGdn(), kind.window,
                   kind.isMoE(), m.interDim);
  return x;
}

Value ModelBuilder::headLogits(Value h, llvm::StringRef normName, double cap, Location at) {
  const spec::ModelConfig &m = model();
  auto shape = llvm::cast<RankedTensorType>(h.getType()).getShape();
  int64_t rows = shape[0] * shape[1];
  Value hn = rmsNorm(h, param(normName, {m.dim}, normInit(), at), at);
  Value logits = linear(reshape(cast(hn, compute, at), {rows, m.dim}, at),
                        cast(tiedWeight, compute, at), at);
  Value z = cast(logits, builder.getF32Type(), at);
  if (cap > 0)
    z = SoftcapOp::create(builder, at, z.getType(), z, builder.getF32FloatAttr(cap));
  return z;
}

OwningOpRef<ModuleOp> ModelBuilder::build(bool withInference) {
  const spec::ModelConfig &m = model();
  int64_t batch = shapeRows, seq = shapeSeqLen, depth = m.mtpDepth;
  Type f32 = builder.getF32Type(), i32 = builder.getI32Type();
  Location top = loc("model", "model");
  OwningOpRef<ModuleOp> owned = ModuleOp::create(top);
  module = *owned;

  // The function: parameters are declared above it as they are first used.
  builder.setInsertionPointToEnd(module.getBody());
  auto fnType = builder.getFunctionType(
      {tensor({batch, seq + 1}, i32), tensor({batch, seq + 1}, i32), tensor({1 + depth}, f32)},
      {tensor({}, f32), tensor({}, f32)});
  auto fn = func::FuncOp::create(builder, top, "forward", fnType);
  const char *argNames[] = {"tokens", "targets", "inv_counts"};
  for (auto [i, name] : llvm::enumerate(argNames))
    fn.setArgAttr(i, "fusion.name", builder.getStringAttr(name));
  fn.setResultAttr(0, "fusion.name", builder.getStringAttr("loss"));
  fn.setResultAttr(1, "fusion.name", builder.getStringAttr("main_loss"));
  module->setAttr("fusion.seed", builder.getI64IntegerAttr(training().seed));
  paramAnchor = fn;
  Block *body = fn.addEntryBlock();
  builder.setInsertionPointToEnd(body);
  Value tokens = body->getArgument(0), targets = body->getArgument(1),
        invCounts = body->getArgument(2);
  Location embLoc = loc("tok_embeddings", "model.vocab_size");
  loadTiedWeight();

  // 1. Backbone, by the layer schedule (§2).
  Value x = backbone(embed(slice(tokens, 1, 0, seq, embLoc), embLoc));

  // 2. A softcapped, tied head and its CE sum over `rows` positions (§8, §9).
  auto headLoss = [&](Value h, llvm::StringRef normName, Value targets, double cap,
                      llvm::StringRef path) {
    Location at = loc(path, cap > 0 ? "model.logit_softcap" : "model.vocab_size");
    Value z = headLogits(h, normName, cap, at);
    int64_t rows = llvm::cast<RankedTensorType>(z.getType()).getShape()[0];
    Value ce = CrossEntropyOp::create(builder, at, tensor({rows}, f32), z,
                                      reshape(targets, {rows}, at));
    return scalarSum(ce, at);
  };
  auto countScale = [&](int64_t k, Location at) {
    return reshape(slice(invCounts, 0, k, 1, at), {}, at);
  };

  Location lossLoc = loc("loss", "model.vocab_size");
  Value mainLoss = mul(headLoss(x, "norm.weight", slice(targets, 1, 1, seq, lossLoc),
                            m.logitSoftcap, "head"),
                   countScale(0, lossLoc), lossLoc);
  Value loss = mainLoss;

  // 3. MTP depths k = 1..D_m on positions 0..T−1−k (§7).
  Value h = x;
  for (int64_t k = 1; k <= depth; ++k) {
    std::string prefix = llvm::formatv("mtp.{0}", k - 1).str();
    Location at = loc(prefix, "model.mtp_depth");
    int64_t len = seq - k;
    Value hPrev = slice(h, 1, 0, len, at);
    Value e = embed(slice(tokens, 1, k, len, at), at);
    Value mIn = concat({rmsNorm(hPrev, param(prefix + ".norm_h.weight", {m.dim}, normInit(), at), at),
                        rmsNorm(e, param(prefix + ".norm_e.weight", {m.dim}, normInit(), at), at)},
                       2, at);
    Value proj = computeParam(prefix + ".proj.weight", {m.dim, 2 * m.dim}, matrixInit(2 * m.dim), at);
    Value mk = cast(linear(cast(mIn, compute, at), proj, at), f32, at);
    h = buildBlock(*this, mk, prefix + ".block", /*gdn=*/false, /*window=*/0, /*moe=*/false,
                   m.mtpFfnDim());
    double cap = m.mtpSoftcap ? m.mtpSoftcapValue : 0.0;
    Value ce = headLoss(h, prefix + ".norm_out.weight", slice(targets, 1, k + 1, len, at), cap,
                        prefix + ".head");
    Value weighted = ScaleOp::create(builder, at, ce.getType(), ce,
                                     builder.getF32FloatAttr(m.mtpLossWeightAt(k)));
    loss = add(loss, mul(weighted, countScale(k, at), at), at);
  }

  // 4. MoE balance terms.
  if (auxLoss)
    loss = add(loss, auxLoss, lossLoc);
  func::ReturnOp::create(builder, lossLoc, ValueRange{loss, mainLoss});
  module->setAttr("fusion.config", buildConfigAttr());
  if (withInference)
    buildInferenceFunctions(top);
  return owned;
}

void ModelBuilder::buildInferenceFunctions(Location top) {
  const spec::ModelConfig &m = model();
  int64_t batch = shapeRows, seq = shapeSeqLen;
  Type f32 = builder.getF32Type(), i32 = builder.getI32Type();
  Location headLoc = loc("head", m.logitSoftcap > 0 ? "model.logit_softcap" : "model.vocab_size");
  Location embLoc = loc("tok_embeddings", "model.vocab_size");
  inference = true;
  auxLoss = Value();

  // @logits: the main head at every position of the first T tokens of [B, T+1] rows (the
  // rows of the other programs; no MTP, no loss).
  builder.setInsertionPointToEnd(module.getBody());
  auto logitsFn = func::FuncOp::create(
      builder, top, "logits",
      builder.getFunctionType({tensor({batch, seq + 1}, i32)},
                              {tensor({batch, seq, m.vocabSize}, f32)}));
  logitsFn.setArgAttr(0, "fusion.name", builder.getStringAttr("tokens"));
  logitsFn.setResultAttr(0, "fusion.name", builder.getStringAttr("logits"));
  builder.setInsertionPointToEnd(logitsFn.addEntryBlock());
  loadTiedWeight();
  Value x = backbone(embed(slice(logitsFn.getArgument(0), 1, 0, seq, embLoc), embLoc));
  Value z = headLogits(x, "norm.weight", m.logitSoftcap, headLoc);
  func::ReturnOp::create(builder, headLoc, reshape(z, {batch, seq, m.vocabSize}, headLoc));

  // @decode_step: one token at `position` through the caches.
  builder.setInsertionPointToEnd(module.getBody());
  auto decodeFn = func::FuncOp::create(
      builder, top, "decode_step",
      builder.getFunctionType({tensor({1, 1}, i32), tensor({1}, i32)},
                              {tensor({1, m.vocabSize}, f32)}));
  decodeFn.setArgAttr(0, "fusion.name", builder.getStringAttr("token"));
  decodeFn.setArgAttr(1, "fusion.name", builder.getStringAttr("position"));
  decodeFn.setResultAttr(0, "fusion.name", builder.getStringAttr("logits"));
  builder.setInsertionPointToEnd(decodeFn.addEntryBlock());
  Decoding decoding{decodeFn.getArgument(1), m.maxSeqLen};
  decode = &decoding;
  loadTiedWeight();
  x = backbone(embed(decodeFn.getArgument(0), embLoc));
  decode = nullptr;
  z = headLogits(x, "norm.weight", m.logitSoftcap, headLoc);
  func::ReturnOp::create(builder, headLoc, z);
  inference = false;
}

DictionaryAttr ModelBuilder::buildConfigAttr() {
  // The resolved settings the training passes (fusion-optimizer) and the runtime's training
  // loop (Plan.config) read; names follow MODEL.md §17 where a key exists.
  const spec::TrainingConfig &t = training();
  const spec::DataConfig &d = config().data;
  spec::LrPhases phases = spec::getLrPhases(t);
  OpBuilder &b = builder;
  SmallVector<NamedAttribute> entries;
  auto integer = [&](llvm::StringRef key, int64_t v) {
    entries.push_back(b.getNamedAttr(key, b.getI64IntegerAttr(v)));
  };
  auto number = [&](llvm::StringRef key, double v) {
    entries.push_back(b.getNamedAttr(key, b.getF64FloatAttr(v)));
  };
  auto string = [&](llvm::StringRef key, llvm::StringRef v) {
    entries.push_back(b.getNamedAttr(key, b.getStringAttr(v)));
  };
  // Shapes and loop: the steady-state micro-batch of @forward / train_step / eval_step, and
  // the ramps' schedule "s:BxT,..." (MODEL.md §13; one train program per shape it visits,
  // `train_step_b{B}_t{T}` besides the steady `train_step`).
  std::vector<spec::ShapeSegment> schedule = spec::getShapeSchedule(config());
  integer("micro_batch_size", schedule.back().rows);
  integer("grad_accum_steps", t.gradientAccumulationSteps);
  integer("seq_len", schedule.back().seqLen);
  std::string scheduleText;
  for (const spec::ShapeSegment &segment : schedule)
    scheduleText += llvm::formatv("{0}{1}:{2}x{3}", scheduleText.empty() ? "" : ",",
                                  segment.firstStep, segment.rows, segment.seqLen)
                        .str();
  string("shape_schedule", scheduleText);
  integer("vocab_size", model().vocabSize);
  integer("mtp_depth", model().mtpDepth);
  integer("total_steps", t.totalSteps);
  integer("seed", t.seed);
  integer("eval_enabled", t.evalEnabled);
  integer("eval_interval", t.evalInterval);
  integer("eval_max_batches", t.evalMaxBatches);
  integer("save_interval", t.saveInterval);
  integer("keep_last", t.keepLast);
  integer("log_interval", t.logInterval);
  string("save_dir", t.saveDir);
  // Optimizer (§12) and schedule (§13).
  string("optimizer", t.optimizer);
  number("lr", t.lr);
  number("muon_lr", t.muonLr);
  number("muon_momentum", t.muonMomentum);
  integer("nesterov", t.nesterov);
  number("normuon_beta2", t.normuonBeta2);
  number("adamw_beta1", t.adamwBetas.size() > 0 ? t.adamwBetas[0] : 0.9);
  number("adamw_beta2", t.adamwBetas.size() > 1 ? t.adamwBetas[1] : 0.95);
  number("adamw_eps", t.adamwEps);
  integer("adamw_cautious_update", t.adamwCautiousUpdate);
  number("weight_decay", t.weightDecay);
  number("muon_weight_decay", t.getMuonWeightDecay());
  integer("cautious_wd", t.cautiousWd);
  string("cautious_wd_mode", t.cautiousWdMode);
  number("grad_clip", t.gradClip);
  integer("warmup_steps", phases.warmup);
  integer("stable_steps", phases.stable);
  integer("decay_steps", phases.decay);
  string("lr_decay", t.scheduler == "cosine" ? llvm::StringRef("cosine")
                                              : llvm::StringRef(t.wsdDecay));
  number("min_lr_ratio", t.minLrRatio);
  number("bias_update_speed", t.biasUpdateSpeed);
  integer("bias_update_every", t.biasUpdateEvery);
  number("bias_upper_threshold", model().biasUpperThreshold);
  number("bias_lower_threshold", model().biasLowerThreshold);
  // Data (§14).
  string("data_format", d.format);
  string("sampling", d.getSampling());
  integer("eos_token_id", d.eosTokenId);
  integer("pad_token_id", d.padTokenId);
  string("shard_manifest_path", d.shardManifestPath);
  string("val_shard_manifest_path", d.valShardManifestPath);
  string("train_data_path", d.trainDataPath);
  string("val_data_path", d.valDataPath);
  // Source weights as the runtime's `mix=` grammar, "src:w+src:w" (§13, §14.3).
  auto mixText = [](const spec::SourceWeights &weights) {
    std::string text;
    for (const spec::SourceWeight &w : weights)
    {
      char weight[32];
      std::snprintf(weight, sizeof weight, "%.10g", w.weight);
      text += (text.empty() ? "" : "+") + w.source + ":" + weight;
    }
    return text;
  };
  string("data_mix", mixText(d.dataMix));
  integer("curriculum_switch_step", t.curriculumSwitchStep);
  string("curriculum_stage1", mixText(t.curriculumStage1Weights));
  string("curriculum_stage2", mixText(t.curriculumStage2Weights));
  return b.getDictionaryAttr(entries);
}
