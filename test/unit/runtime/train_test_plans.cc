//===- train_test_plans.cc - Tiny training plans for the trainer tests ----===//

#include "test/unit/runtime/train_test_plans.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>

namespace fusion::rt::testing {

using schema::BufferRole;
using schema::DType;

std::vector<AttrDesc> tinyTrainingConfig(const TrainPlanOptions &options) {
  return {
      AttrDesc::integer("micro_batch_size", options.rows),
      AttrDesc::integer("grad_accum_steps", options.accumulation),
      AttrDesc::integer("seq_len", options.seqLen),
      AttrDesc::integer("vocab_size", options.vocab),
      AttrDesc::integer("mtp_depth", options.mtpDepth),
      AttrDesc::integer("total_steps", 20),
      AttrDesc::integer("eval_enabled", options.withEval ? 1 : 0),
      AttrDesc::integer("eval_interval", 5),
      AttrDesc::integer("eval_max_batches", 2),
      AttrDesc::integer("save_interval", 10),
      AttrDesc::integer("keep_last", 3),
      AttrDesc::integer("log_interval", 5),
      AttrDesc::integer("seed", 7),
      AttrDesc::string("data_format", "synthetic"),
      AttrDesc::integer("eos_token_id", -1),
      AttrDesc::integer("pad_token_id", -1),
      AttrDesc::string("save_dir", "checkpoints/tiny"),
      AttrDesc::string("config_sha256",
                       "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"),
      AttrDesc::string("config_text", "model:\n  name: tiny\ntraining:\n  total_steps: 20\n"),
  };
}

namespace {

/// Fills `table` [K,1] in `init` with value(s) per row s, as runs of fills + one concat.
void fillStepTable(PlanBuilder &plan, ProgramDesc &init, uint32_t table, int64_t rows,
                   uint32_t transient, const std::string &name,
                   const std::function<double(int64_t)> &value) {
  std::vector<uint32_t> pieces;
  int64_t start = 0;
  while (start < rows) {
    int64_t end = start + 1;
    double v = value(start);
    auto same = [&](double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; };
    while (end < rows && same(value(end), v))
      ++end;
    uint32_t piece = plan.addBuffer(name + "_piece" + std::to_string(pieces.size()), DType::F32,
                                    {end - start, 1}, transient);
    uint32_t fill = plan.addKernel(name + "_fill" + std::to_string(pieces.size()), "fill",
                                   {AttrDesc::number("value", v)});
    init.add(launchOp(fill, {}, {piece}));
    pieces.push_back(piece);
    start = end;
  }
  uint32_t concat = plan.addKernel(name + "_concat", "concat", {AttrDesc::integer("dim", 0)});
  init.add(launchOp(concat, pieces, {table}));
}

} // namespace

std::vector<uint8_t> tinyTrainingPlan(const TrainPlanOptions &o) {
  PlanBuilder plan;
  plan.config = o.config.empty() ? tinyTrainingConfig(o) : o.config;
  uint32_t persistent = plan.addArena("persistent", schema::ArenaClass::Persistent);
  uint32_t transient = plan.addArena("transient");
  int64_t N = o.accumulation * o.rows * (o.seqLen + 1);
  int64_t K = o.maxSteps;

  // Persistent state: checkpointed (Weight, OptimizerState, ModelBuffer) and constants that
  // `init` rebuilds (Activation).
  uint32_t w = plan.addBuffer("w", DType::F32, {N}, persistent, BufferRole::Weight);
  uint32_t mom =
      plan.addBuffer("w.momentum", DType::F32, {N}, persistent, BufferRole::OptimizerState);
  uint32_t applied =
      plan.addBuffer("applied_steps", DType::F32, {1}, persistent, BufferRole::ModelBuffer);
  uint32_t tokTable = plan.addBuffer("token_values", DType::F32, {o.vocab, 1}, persistent);
  uint32_t indexTable = plan.addBuffer("index_values", DType::F32, {K, 1}, persistent);
  uint32_t okTable = plan.addBuffer("ok_values", DType::F32, {K, 1}, persistent);
  uint32_t nanTable = plan.addBuffer("nan_values", DType::F32, {K, 1}, persistent);

  // train_step bindings and temporaries.
  uint32_t tokens =
      plan.addBuffer("tokens", DType::I32, {o.accumulation, o.rows, o.seqLen + 1}, transient);
  uint32_t targets =
      plan.addBuffer("targets", DType::I32, {o.accumulation, o.rows, o.seqLen + 1}, transient);
  uint32_t invCounts = plan.addBuffer("inv_counts", DType::F32, {1 + o.mtpDepth}, transient);
  uint32_t step = plan.addBuffer("step", DType::I32, {2}, transient);
  uint32_t x =
      plan.addBuffer("x", DType::F32, {o.accumulation, o.rows, o.seqLen + 1, 1}, transient);
  uint32_t d = plan.addBuffer("d", DType::F32, {N}, transient);
  uint32_t d2 = plan.addBuffer("d2", DType::F32, {N}, transient);
  uint32_t sse = plan.addBuffer("sse", DType::F32, {}, transient);
  uint32_t inv0 = plan.addBuffer("inv0", DType::F32, {1}, transient);
  uint32_t loss = plan.addBuffer("loss", DType::F32, {}, transient);
  uint32_t mainLoss = plan.addBuffer("main_loss", DType::F32, {}, transient);
  uint32_t sid = plan.addBuffer("s_id", DType::I32, {1}, transient);
  uint32_t st = plan.addBuffer("st", DType::F32, {2, 1}, transient);
  uint32_t stFlat = plan.addBuffer("st_flat", DType::F32, {2}, transient);
  uint32_t sF = plan.addBuffer("s_f", DType::F32, {1}, transient);
  uint32_t tF = plan.addBuffer("t_f", DType::F32, {1}, transient);
  uint32_t okv = plan.addBuffer("ok_v", DType::F32, {1, 1}, transient);
  uint32_t ok1 = plan.addBuffer("ok_1", DType::F32, {1}, transient);
  uint32_t nanv = plan.addBuffer("nan_v", DType::F32, {1, 1}, transient);
  uint32_t okb = plan.addBuffer("ok_b", DType::F32, {N, 1}, transient);
  uint32_t mScaled = plan.addBuffer("m_scaled", DType::F32, {N}, transient);
  uint32_t dm = plan.addBuffer("dm", DType::F32, {N}, transient);
  uint32_t u1 = plan.addBuffer("u1", DType::F32, {N}, transient);
  uint32_t u2 = plan.addBuffer("u2", DType::F32, {N}, transient);
  uint32_t u = plan.addBuffer("u", DType::F32, {N}, transient);
  uint32_t one1 = plan.addBuffer("one_1", DType::F32, {1}, transient);
  uint32_t gn1 = plan.addBuffer("gn_1", DType::F32, {1}, transient);
  uint32_t zeros2 = plan.addBuffer("zeros_2", DType::F32, {2}, transient);
  uint32_t ctl = plan.addBuffer("ctl", DType::F32, {8}, transient);

  auto kernel = [&](const std::string &name, const std::string &kind,
                    std::vector<AttrDesc> attrs = {}) {
    return plan.addKernel(name, kind, std::move(attrs));
  };
  uint32_t fillW =
      kernel("init_w", "fill", {AttrDesc::number("value", 0.5), AttrDesc::number("step", 0.01)});
  uint32_t fillZero = kernel("zero", "fill", {AttrDesc::number("value", 0)});
  uint32_t fillOne = kernel("one", "fill", {AttrDesc::number("value", 1)});
  uint32_t fillTok = kernel(
      "token_values", "fill",
      {AttrDesc::number("value", 0), AttrDesc::number("step", 1.0 / static_cast<double>(o.vocab))});
  uint32_t fillIndex =
      kernel("index_values", "fill", {AttrDesc::number("value", 0), AttrDesc::number("step", 1)});
  uint32_t embed = kernel("lookup", "embedding");
  uint32_t sub = kernel("sub", "sub");
  uint32_t add = kernel("add", "add");
  uint32_t mul = kernel("mul", "mul");
  uint32_t sum = kernel("sum", "sum", {AttrDesc::intList("dims", {0})});
  uint32_t reshape = kernel("reshape", "reshape");
  auto slice = [&](const std::string &name, int64_t start) {
    return kernel(name, "slice",
                  {AttrDesc::integer("dim", 0), AttrDesc::integer("start", start),
                   AttrDesc::integer("size", 1)});
  };
  uint32_t first = slice("first", 0), second = slice("second", 1);
  uint32_t bcast = kernel("broadcast_ok", "broadcast", {AttrDesc::intList("dims", {1})});
  uint32_t scaleMom = kernel("scale_m", "scale", {AttrDesc::number("factor", -0.1)});
  uint32_t scaleD = kernel("scale_d", "scale", {AttrDesc::number("factor", 0.1)});
  uint32_t scaleM2 = kernel("scale_m2", "scale", {AttrDesc::number("factor", 0.01)});
  uint32_t concat = kernel("ctl", "concat", {AttrDesc::integer("dim", 0)});

  ProgramDesc &init = plan.addProgram("init");
  init.add(launchOp(fillW, {}, {w}))
      .add(launchOp(fillZero, {}, {mom}))
      .add(launchOp(fillZero, {}, {applied}))
      .add(launchOp(fillTok, {}, {tokTable}))
      .add(launchOp(fillIndex, {}, {indexTable}));
  auto skipped = [&](int64_t s) {
    return o.skipSteps.count(s) || (o.skipFrom >= 0 && s >= o.skipFrom);
  };
  fillStepTable(plan, plan.programs.back(), okTable, K, transient, "ok",
                [&](int64_t s) { return skipped(s) ? 0.0 : 1.0; });
  fillStepTable(plan, plan.programs.back(), nanTable, K, transient, "nan", [&](int64_t s) {
    return skipped(s) ? std::numeric_limits<double>::quiet_NaN() : 0.0;
  });

  ProgramDesc &train = plan.addProgram("train_step");
  train.add(launchOp(embed, {tokTable, tokens}, {x}))
      .add(launchOp(sub, {w, x}, {d}))
      .add(launchOp(mul, {d, d}, {d2}))
      .add(launchOp(sum, {d2}, {sse}))
      .add(launchOp(first, {invCounts}, {inv0}))
      .add(launchOp(mul, {sse, inv0}, {mainLoss}))
      // s, t as floats; the per-step ok flag and NaN term.
      .add(launchOp(embed, {indexTable, step}, {st}))
      .add(launchOp(reshape, {st}, {stFlat}))
      .add(launchOp(first, {stFlat}, {sF}))
      .add(launchOp(second, {stFlat}, {tF}))
      .add(launchOp(first, {step}, {sid}))
      .add(launchOp(embed, {okTable, sid}, {okv}))
      .add(launchOp(reshape, {okv}, {ok1}))
      .add(launchOp(embed, {nanTable, sid}, {nanv}))
      .add(launchOp(add, {sse, nanv}, {loss}))
      .add(launchOp(bcast, {ok1}, {okb}))
      // m += ok·(d − 0.1 m); w −= ok·(0.1 d + 0.01 m); applied += ok.
      .add(launchOp(scaleMom, {mom}, {mScaled}))
      .add(launchOp(add, {mScaled, d}, {dm}))
      .add(launchOp(mul, {dm, okb}, {dm}))
      .add(launchOp(add, {mom, dm}, {mom}))
      .add(launchOp(scaleD, {d}, {u1}))
      .add(launchOp(scaleM2, {mom}, {u2}))
      .add(launchOp(add, {u1, u2}, {u}))
      .add(launchOp(mul, {u, okb}, {u}))
      .add(launchOp(sub, {w, u}, {w}))
      .add(launchOp(add, {applied, ok1}, {applied}))
      // ctl = [f(s) = 1, clip = 1, ok, Σd², t, s, 0, 0].
      .add(launchOp(fillOne, {}, {one1}))
      .add(launchOp(reshape, {sse}, {gn1}))
      .add(launchOp(fillZero, {}, {zeros2}))
      .add(launchOp(concat, {one1, one1, ok1, gn1, tF, sF, zeros2}, {ctl}))
      .input("tokens", tokens)
      .input("targets", targets)
      .input("inv_counts", invCounts)
      .input("step", step)
      .output("loss", loss)
      .output("main_loss", mainLoss)
      .output("ctl", ctl);

  if (o.withEval) {
    int64_t M = o.rows * (o.seqLen + 1);
    uint32_t eTokens = plan.addBuffer("eval_tokens", DType::I32, {o.rows, o.seqLen + 1}, transient);
    uint32_t eTargets =
        plan.addBuffer("eval_targets", DType::I32, {o.rows, o.seqLen + 1}, transient);
    uint32_t eCounts = plan.addBuffer("eval_inv_counts", DType::F32, {1 + o.mtpDepth}, transient);
    uint32_t ex = plan.addBuffer("eval_x", DType::F32, {o.rows, o.seqLen + 1, 1}, transient);
    uint32_t ew = plan.addBuffer("eval_w", DType::F32, {M}, transient);
    uint32_t ed = plan.addBuffer("eval_d", DType::F32, {M}, transient);
    uint32_t ed2 = plan.addBuffer("eval_d2", DType::F32, {M}, transient);
    uint32_t esse = plan.addBuffer("eval_sse", DType::F32, {}, transient);
    uint32_t einv0 = plan.addBuffer("eval_inv0", DType::F32, {1}, transient);
    uint32_t eMain = plan.addBuffer("eval_main_loss", DType::F32, {}, transient);
    uint32_t sliceW = kernel(
        "eval_w", "slice",
        {AttrDesc::integer("dim", 0), AttrDesc::integer("start", 0), AttrDesc::integer("size", M)});
    plan.addProgram("eval_step")
        .add(launchOp(embed, {tokTable, eTokens}, {ex}))
        .add(launchOp(sliceW, {w}, {ew}))
        .add(launchOp(sub, {ew, ex}, {ed}))
        .add(launchOp(mul, {ed, ed}, {ed2}))
        .add(launchOp(sum, {ed2}, {esse}))
        .add(launchOp(first, {eCounts}, {einv0}))
        .add(launchOp(mul, {esse, einv0}, {eMain}))
        .input("tokens", eTokens)
        .input("targets", eTargets)
        .input("inv_counts", eCounts)
        .output("loss", eMain)
        .output("main_loss", eMain);
  }
  return plan.finish();
}

} // namespace fusion::rt::testing
