//===- test_plan_builder.cc - Building plans in tests ---------------------===//
//
// Serialization of PlanBuilder's descriptions with the generated FlatBuffers builders. Child
// objects (strings, vectors, sub-tables) must be created before the table that points at them,
// which is why descriptions are kept as plain structs until finish().
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/test_plan_builder.h"

#include <algorithm>

namespace fusion::rt::testing {

AttrDesc AttrDesc::number(std::string name, double value) {
  AttrDesc attr;
  attr.name = std::move(name);
  attr.type = schema::AttrType::Float;
  attr.f = value;
  return attr;
}

AttrDesc AttrDesc::integer(std::string name, int64_t value) {
  AttrDesc attr;
  attr.name = std::move(name);
  attr.type = schema::AttrType::Int;
  attr.i = value;
  return attr;
}

AttrDesc AttrDesc::string(std::string name, std::string value) {
  AttrDesc attr;
  attr.name = std::move(name);
  attr.type = schema::AttrType::String;
  attr.s = std::move(value);
  return attr;
}

AttrDesc AttrDesc::intList(std::string name, std::vector<int64_t> values) {
  AttrDesc attr;
  attr.name = std::move(name);
  attr.type = schema::AttrType::Ints;
  attr.ints = std::move(values);
  return attr;
}

AttrDesc AttrDesc::floatList(std::string name, std::vector<double> values) {
  AttrDesc attr;
  attr.name = std::move(name);
  attr.type = schema::AttrType::Floats;
  attr.floats = std::move(values);
  return attr;
}

InstrDesc launchOp(uint32_t kernel, std::vector<uint32_t> inputs, std::vector<uint32_t> outputs,
                   std::vector<int64_t> intArgs) {
  InstrDesc instr;
  instr.type = schema::Op::Launch;
  instr.kernel = kernel;
  instr.numInputs = static_cast<uint32_t>(inputs.size());
  instr.args = std::move(inputs);
  instr.args.insert(instr.args.end(), outputs.begin(), outputs.end());
  instr.intArgs = std::move(intArgs);
  return instr;
}

InstrDesc gemmOp(uint32_t a, uint32_t b, uint32_t c, int64_t m, int64_t n, int64_t k,
                 int64_t batch, bool transA, bool transB, float alpha, float beta) {
  InstrDesc instr;
  instr.type = schema::Op::Gemm;
  instr.a = a;
  instr.b = b;
  instr.c = c;
  instr.m = m;
  instr.n = n;
  instr.k = k;
  instr.batch = batch;
  instr.transA = transA;
  instr.transB = transB;
  instr.alpha = alpha;
  instr.beta = beta;
  return instr;
}

InstrDesc collectiveOp(schema::CollectiveKind kind, std::string axis, uint32_t send,
                       uint32_t recv, schema::ReduceOp reduce) {
  InstrDesc instr;
  instr.type = schema::Op::Collective;
  instr.collectiveKind = kind;
  instr.axis = std::move(axis);
  instr.send = send;
  instr.recv = recv;
  instr.reduce = reduce;
  return instr;
}

InstrDesc recordOp(uint32_t event, uint32_t stream) {
  InstrDesc instr;
  instr.type = schema::Op::Record;
  instr.event = event;
  instr.stream = stream;
  return instr;
}

InstrDesc waitOp(uint32_t event, uint32_t stream) {
  InstrDesc instr;
  instr.type = schema::Op::Wait;
  instr.event = event;
  instr.stream = stream;
  return instr;
}

ProgramDesc &ProgramDesc::add(InstrDesc instruction, std::string loc) {
  if (!loc.empty())
    instruction.loc = std::move(loc);
  instructions.push_back(std::move(instruction));
  return *this;
}

ProgramDesc &ProgramDesc::input(std::string name, uint32_t buffer) {
  inputs.push_back({std::move(name), buffer});
  return *this;
}

ProgramDesc &ProgramDesc::output(std::string name, uint32_t buffer) {
  outputs.push_back({std::move(name), buffer});
  return *this;
}

uint32_t PlanBuilder::addArena(std::string name, schema::ArenaClass arenaClass) {
  arenas.push_back({std::move(name), arenaClass, 0});
  return static_cast<uint32_t>(arenas.size() - 1);
}

uint32_t PlanBuilder::addBuffer(std::string name, schema::DType dtype,
                                std::vector<int64_t> shape, uint32_t arena,
                                schema::BufferRole role) {
  if (arenas.empty())
    addArena("transient");
  uint64_t offset = (arenas[arena].sizeBytes + 63) / 64 * 64;
  uint64_t numElements = 1;
  for (int64_t dim : shape)
    numElements *= static_cast<uint64_t>(std::max<int64_t>(dim, 0));
  arenas[arena].sizeBytes = offset + numElements * dtypeSize(dtype);
  buffers.push_back({std::move(name), dtype, std::move(shape), arena, offset, role});
  return static_cast<uint32_t>(buffers.size() - 1);
}

uint32_t PlanBuilder::addKernel(std::string name, std::string kind, std::vector<AttrDesc> attrs) {
  KernelDesc kernel;
  kernel.name = std::move(name);
  kernel.kind = std::move(kind);
  kernel.attrs = std::move(attrs);
  kernels.push_back(std::move(kernel));
  return static_cast<uint32_t>(kernels.size() - 1);
}

ProgramDesc &PlanBuilder::addProgram(std::string name, uint32_t numStreams, uint32_t numEvents) {
  programs.push_back({std::move(name), {}, numStreams, numEvents, {}, {}});
  return programs.back();
}

namespace {

flatbuffers::Offset<void> buildOp(flatbuffers::FlatBufferBuilder &fbb, const InstrDesc &instr) {
  switch (instr.type) {
  case schema::Op::Launch:
    return schema::CreateLaunchDirect(fbb, instr.kernel, &instr.args, instr.numInputs,
                                      instr.grid.empty() ? nullptr : &instr.grid,
                                      instr.block.empty() ? nullptr : &instr.block,
                                      instr.sharedMemBytes,
                                      instr.intArgs.empty() ? nullptr : &instr.intArgs)
        .Union();
  case schema::Op::Gemm:
    return schema::CreateGemm(fbb, instr.a, instr.b, instr.c, instr.m, instr.n, instr.k,
                              instr.batch, instr.transA, instr.transB, instr.alpha, instr.beta)
        .Union();
  case schema::Op::Collective:
    return schema::CreateCollectiveDirect(fbb, instr.collectiveKind, instr.axis.c_str(),
                                          instr.send, instr.recv, instr.reduce)
        .Union();
  case schema::Op::Record:
    return schema::CreateRecord(fbb, instr.event).Union();
  case schema::Op::Wait:
    return schema::CreateWait(fbb, instr.event).Union();
  case schema::Op::NONE:
    break;
  }
  // NONE (or a raw op type): still store a table, since `op` is required.
  return schema::CreateRecord(fbb, instr.event).Union();
}

} // namespace

std::vector<uint8_t> PlanBuilder::finish() const {
  flatbuffers::FlatBufferBuilder fbb;

  std::vector<flatbuffers::Offset<schema::MeshAxis>> meshOffsets;
  for (const MeshAxisDesc &axis : mesh)
    meshOffsets.push_back(schema::CreateMeshAxisDirect(fbb, axis.name.c_str(), axis.size));

  std::vector<flatbuffers::Offset<schema::Arena>> arenaOffsets;
  for (const ArenaDesc &arena : arenas)
    arenaOffsets.push_back(
        schema::CreateArenaDirect(fbb, arena.name.c_str(), arena.arenaClass, arena.sizeBytes));

  std::vector<flatbuffers::Offset<schema::Buffer>> bufferOffsets;
  for (const BufferDesc &buffer : buffers)
    bufferOffsets.push_back(schema::CreateBufferDirect(fbb, buffer.name.c_str(), buffer.dtype,
                                                       &buffer.shape, buffer.arena,
                                                       buffer.offset, nullptr, buffer.role));

  auto buildAttr = [&](const AttrDesc &attr) {
    return schema::CreateAttributeDirect(
        fbb, attr.name.c_str(), attr.type, attr.i, attr.f,
        attr.type == schema::AttrType::String ? attr.s.c_str() : nullptr,
        attr.type == schema::AttrType::Ints ? &attr.ints : nullptr,
        attr.type == schema::AttrType::Floats ? &attr.floats : nullptr);
  };

  std::vector<flatbuffers::Offset<schema::Kernel>> kernelOffsets;
  for (const KernelDesc &kernel : kernels) {
    std::vector<flatbuffers::Offset<schema::Attribute>> attrs;
    for (const AttrDesc &attr : kernel.attrs)
      attrs.push_back(buildAttr(attr));
    std::vector<flatbuffers::Offset<schema::Cubin>> cubins;
    for (const CubinDesc &cubin : kernel.cubins)
      cubins.push_back(schema::CreateCubinDirect(fbb, cubin.arch.c_str(), &cubin.image));
    kernelOffsets.push_back(schema::CreateKernelDirect(
        fbb, kernel.name.c_str(), kernel.kind.c_str(), &attrs,
        kernel.entry.empty() ? nullptr : kernel.entry.c_str(), nullptr,
        cubins.empty() ? nullptr : &cubins));
  }

  std::vector<flatbuffers::Offset<schema::Program>> programOffsets;
  for (const ProgramDesc &program : programs) {
    std::vector<flatbuffers::Offset<schema::Instruction>> instructions;
    for (const InstrDesc &instr : program.instructions) {
      flatbuffers::Offset<void> op = buildOp(fbb, instr);
      schema::Op type =
          instr.rawOpType >= 0 ? static_cast<schema::Op>(instr.rawOpType) : instr.type;
      instructions.push_back(schema::CreateInstructionDirect(
          fbb, type, op, instr.stream, instr.loc.empty() ? nullptr : instr.loc.c_str()));
    }
    auto bindings = [&](const std::vector<BindingDesc> &list) {
      std::vector<flatbuffers::Offset<schema::Binding>> offsets;
      for (const BindingDesc &binding : list)
        offsets.push_back(schema::CreateBindingDirect(fbb, binding.name.c_str(), binding.buffer));
      return offsets;
    };
    std::vector<flatbuffers::Offset<schema::Binding>> inputs = bindings(program.inputs);
    std::vector<flatbuffers::Offset<schema::Binding>> outputs = bindings(program.outputs);
    programOffsets.push_back(schema::CreateProgramDirect(
        fbb, program.name.c_str(), &instructions, inputs.empty() ? nullptr : &inputs,
        outputs.empty() ? nullptr : &outputs, program.numStreams, program.numEvents));
  }

  std::vector<flatbuffers::Offset<schema::Attribute>> configOffsets;
  for (const AttrDesc &attr : config)
    configOffsets.push_back(buildAttr(attr));

  auto root = schema::CreatePlanDirect(fbb, schemaVersion, "fusion-rt-tests", &meshOffsets,
                                       &arenaOffsets, &bufferOffsets, &kernelOffsets,
                                       &programOffsets, nullptr,
                                       config.empty() ? nullptr : &configOffsets);
  schema::FinishPlanBuffer(fbb, root);
  return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

} // namespace fusion::rt::testing
