//===- program_inputs.cc - Feeding micro-batches to a plan's programs -----===//
//
// A plan says what data a program wants through its input bindings (docs/op-kinds.md,
// "Program inputs and outputs"): `tokens` and `targets` [B, T+1] i32 and `inv_counts`
// [1+D_m] f32. The batch geometry is read from those buffers, and the vocabulary size from
// the embedding table, so a plan needs no separate data description.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/executor.h"
#include "fusion/rt/plan.h"

namespace fusion::rt::data {

bool programTakesData(const Plan &plan, uint32_t program) {
  for (const char *name : {kTokensInput, kTargetsInput, kInvCountsInput})
    if (plan.findInput(program, name))
      return true;
  return false;
}

StatusOr<BatchShape> programBatchShape(const Plan &plan, uint32_t program) {
  std::string programLabel =
      plan.displayName() + ": program " + rt::quoted(plan.programNames()[program]);
  auto describe = [&](const BindingInfo &binding) {
    const BufferInfo &buffer = plan.buffers()[binding.buffer];
    return programLabel + " input " + rt::quoted(binding.name) + " (buffer " +
           std::to_string(binding.buffer) + " " + rt::quoted(buffer.name) + ") is " +
           dtypeName(buffer.dtype) + formatShape(buffer.shape);
  };
  const BindingInfo *rowsInput = nullptr;
  for (const char *name : {kTokensInput, kTargetsInput}) {
    const BindingInfo *input = plan.findInput(program, name);
    if (!input)
      continue;
    const BufferInfo &buffer = plan.buffers()[input->buffer];
    if (buffer.dtype != schema::DType::I32 || buffer.shape.size() != 2 || buffer.shape[0] < 1 ||
        buffer.shape[1] < 2)
      return Status(StatusCode::kInvalidArgument,
                    describe(*input) + "; it must be i32[B, T+1] with B >= 1 and T >= 1");
    if (rowsInput && plan.buffers()[rowsInput->buffer].shape != buffer.shape)
      return Status(StatusCode::kInvalidArgument,
                    describe(*input) + ", but " + rt::quoted(rowsInput->name) + " is " +
                        formatShape(plan.buffers()[rowsInput->buffer].shape) +
                        " (they must have the same shape)");
    rowsInput = input;
  }
  const BindingInfo *counts = plan.findInput(program, kInvCountsInput);
  if (!rowsInput)
    return Status(StatusCode::kInvalidArgument,
                  programLabel + (counts ? " binds inv_counts but neither tokens nor targets, "
                                           "so B and T are unknown"
                                         : " has no tokens or targets input"));
  BatchShape shape;
  shape.rows = plan.buffers()[rowsInput->buffer].shape[0];
  shape.seqLen = plan.buffers()[rowsInput->buffer].shape[1] - 1;
  if (counts) {
    const BufferInfo &buffer = plan.buffers()[counts->buffer];
    if (buffer.dtype != schema::DType::F32 || buffer.shape.size() != 1 || buffer.shape[0] < 1)
      return Status(StatusCode::kInvalidArgument,
                    describe(*counts) + "; it must be f32[1+D_m] (D_m = MTP depth >= 0)");
    shape.mtpDepth = buffer.shape[0] - 1;
  }
  return shape;
}

StatusOr<std::optional<int64_t>> planVocabSize(const Plan &plan) {
  std::optional<int64_t> vocab;
  for (uint32_t id : plan.findBuffers(kEmbeddingBuffer)) {
    const BufferInfo &buffer = plan.buffers()[id];
    if (buffer.shape.size() != 2 || buffer.shape[0] < 1)
      return Status(StatusCode::kInvalidArgument,
                    plan.displayName() + ": buffer " + std::to_string(id) + " " +
                        rt::quoted(buffer.name) + " has shape " + formatShape(buffer.shape) +
                        "; the embedding must be [V, D]");
    if (vocab && *vocab != buffer.shape[0])
      return Status(StatusCode::kInvalidArgument,
                    plan.displayName() + ": buffers called " + rt::quoted(kEmbeddingBuffer) +
                        " disagree on the vocabulary size (" + std::to_string(*vocab) + " vs " +
                        std::to_string(buffer.shape[0]) + ")");
    vocab = buffer.shape[0];
  }
  return vocab;
}

Status feedProgram(Executor &executor, std::string_view program, Source &source,
                   const DataSpec &spec, const BatchCoord &coord) {
  const Plan &plan = executor.plan();
  std::optional<uint32_t> index = plan.findProgram(program);
  if (!index)
    return Status(StatusCode::kNotFound,
                  plan.displayName() + ": no program named " + rt::quoted(program));
  FUSION_ASSIGN_OR_RETURN(BatchShape shape, programBatchShape(plan, *index));
  FUSION_ASSIGN_OR_RETURN(Batch batch, makeBatch(source, spec, shape, coord));
  std::vector<int64_t> rowsShape = {shape.rows, shape.seqLen + 1};
  if (plan.findInput(*index, kTokensInput))
    FUSION_RETURN_IF_ERROR(executor.setInput(program, kTokensInput, schema::DType::I32, rowsShape,
                                             batch.tokens.data(),
                                             batch.tokens.size() * sizeof(int32_t)));
  if (plan.findInput(*index, kTargetsInput))
    FUSION_RETURN_IF_ERROR(executor.setInput(program, kTargetsInput, schema::DType::I32, rowsShape,
                                             batch.targets.data(),
                                             batch.targets.size() * sizeof(int32_t)));
  if (plan.findInput(*index, kInvCountsInput))
    FUSION_RETURN_IF_ERROR(executor.setInput(program, kInvCountsInput, schema::DType::F32,
                                             {shape.mtpDepth + 1}, batch.invCounts.data(),
                                             batch.invCounts.size() * sizeof(float)));
  return Status::okStatus();
}

} // namespace fusion::rt::data
