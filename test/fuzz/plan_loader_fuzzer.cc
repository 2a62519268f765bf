//===- plan_loader_fuzzer.cc - libFuzzer target: plan loading and CPU runs --===//
//
// Feeds arbitrary bytes to Plan::loadBytes, the runtime's trust boundary. Properties checked
// beyond "no crash, no sanitizer report": every rejection is one line (no '\n'), as the tool
// prints it. A plan that loads is then run on the CPU backend when it is small (arenas, gemm
// work and instruction counts bounded below, so one input costs milliseconds): every program
// named `main` or with data inputs, data inputs filled from the synthetic generator, so the
// binding checks, batch-shape derivation and every reference kernel's argument validation
// see adversarial plans too. Runtime errors are fine; crashes and hangs are not.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/executor.h"
#include "fusion/rt/plan.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

using namespace fusion::rt;

namespace {

/// Limits that keep a run of a loaded plan in the millisecond range.
constexpr uint64_t kMaxArenaBytes = 16 << 10;
constexpr uint64_t kMaxInstructions = 64;
constexpr uint64_t kMaxGemmFlops = 1 << 22;

void requireOneLine(const Status &status) {
  if (status.message().find('\n') != std::string::npos) {
    std::fprintf(stderr, "multi-line error message: %s\n", status.message().c_str());
    std::abort();
  }
}

/// True when running `program` of `plan` is cheap enough for a fuzz iteration.
bool smallEnough(const Plan &plan) {
  const schema::Plan &root = plan.root();
  uint64_t arenaBytes = 0;
  if (root.arenas())
    for (const schema::Arena *arena : *root.arenas()) {
      arenaBytes += arena->size_bytes();
      if (arena->size_bytes() > kMaxArenaBytes || arenaBytes > kMaxArenaBytes)
        return false;
    }
  if (!root.programs())
    return true;
  uint64_t flops = 0;
  for (const schema::Program *program : *root.programs()) {
    if (!program->instructions())
      continue;
    if (program->instructions()->size() > kMaxInstructions)
      return false;
    for (const schema::Instruction *instruction : *program->instructions())
      if (const schema::Gemm *gemm = instruction->op_as_Gemm()) {
        // Verified positive and consistent with buffers inside the arenas; bound the product.
        unsigned __int128 work = static_cast<unsigned __int128>(gemm->m()) * gemm->n();
        work *= static_cast<unsigned __int128>(gemm->k()) * gemm->batch();
        flops += work > kMaxGemmFlops ? kMaxGemmFlops + 1 : static_cast<uint64_t>(work);
        if (flops > kMaxGemmFlops)
          return false;
      }
  }
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
  StatusOr<std::shared_ptr<const Plan>> loaded =
      Plan::loadBytes(std::vector<uint8_t>(bytes, bytes + size), "fuzz.fplan");
  if (!loaded.ok()) {
    requireOneLine(loaded.status());
    return 0;
  }
  const Plan &plan = **loaded;
  // The query API must work on every verified plan.
  for (uint32_t i = 0; i < plan.programNames().size(); ++i) {
    (void)plan.numStreams(i);
    for (const BindingInfo &input : plan.programInputs(i))
      (void)plan.buffers()[input.buffer];
  }
  StatusOr<std::optional<int64_t>> vocab = data::planVocabSize(plan);
  if (!vocab.ok())
    requireOneLine(vocab.status());
  if (!smallEnough(plan))
    return 0;

  StatusOr<std::unique_ptr<Executor>> executor = createExecutor(*loaded, BackendKind::kCpu);
  if (!executor.ok()) {
    requireOneLine(executor.status());
    return 0;
  }
  data::DataSpec spec;
  spec.padId = spec.eosId = 0;
  int64_t vocabSize = vocab.ok() && *vocab ? std::min<int64_t>(**vocab, 1 << 20) : 64;
  StatusOr<std::unique_ptr<data::Source>> source = data::openSource(spec, vocabSize);
  if (!source.ok())
    std::abort(); // the synthetic source opens for any positive V
  std::vector<std::string> names = plan.programNames();
  for (uint32_t i = 0; i < names.size(); ++i) {
    bool takesData = data::programTakesData(plan, i);
    if (names[i] != "main" && !takesData)
      continue;
    if (takesData) {
      Status fed = data::feedProgram(**executor, names[i], **source, spec, {});
      requireOneLine(fed);
      if (!fed.ok())
        continue;
    }
    Status status = (*executor)->run(names[i]);
    requireOneLine(status);
    std::vector<uint8_t> out;
    for (const BindingInfo &output : plan.programOutputs(i))
      if ((*executor)->readOutput(names[i], output.name, out).ok())
        (void)formatOutput(output.name, plan.buffers()[output.buffer], out, 8);
  }
  return 0;
}
