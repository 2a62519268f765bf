//===- PlanWriter.cpp - fplan IR to a .fplan file -------------------------===//
//
// Part of the FusionLLM compiler.
//
// Symbols become indices: arenas, buffers and kernels are numbered in module order and
// instructions refer to them by index, as the runtime expects. Every instruction keeps its
// MLIR location as a string, so runtime errors can point back at the source.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/Flatbuffer/PlanWriter.h"

#include "compiler/Target/CUDA/KernelSource.h"

#include "dialects/Plan/IR/PlanOps.h"
#include "runtime/schema/fusion_plan_generated.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/ThreadPool.h"
#include "llvm/Support/Threading.h"

using namespace mlir;
using namespace mlir::fusion;
using namespace mlir::fusion::plan;
namespace fb = ::fusion::plan;

namespace {

std::string locationString(Location loc) {
  std::string text;
  llvm::raw_string_ostream os(text);
  loc.print(os);
  return text;
}

FailureOr<fb::DType> toDType(Operation *op, Type type) {
  if (type.isF32())
    return fb::DType::F32;
  if (type.isBF16())
    return fb::DType::BF16;
  if (type.isF16())
    return fb::DType::F16;
  if (type.isInteger(32))
    return fb::DType::I32;
  if (type.isInteger(64))
    return fb::DType::I64;
  return op->emitOpError("element type ") << type << " has no plan dtype";
}

class Writer {
public:
  Writer(ModuleOp module, const PlanWriterOptions &options, cuda::NvccStats &stats)
      : module(module), options(options), stats(stats) {}

  LogicalResult write(llvm::raw_ostream &os);

private:
  LogicalResult writeKernel(KernelOp kernel);
  /// Expands every kernel's source and compiles each distinct one for every architecture,
  /// nvcc processes in parallel (a kernel cache hit costs no process).
  LogicalResult compileKernels();
  FailureOr<flatbuffers::Offset<fb::Instruction>> writeInstruction(Operation &op);
  /// Program bindings from a dictionary {name = @buffer}.
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Binding>>>
  writeBindings(DictionaryAttr bindings) {
    std::vector<flatbuffers::Offset<fb::Binding>> out;
    if (bindings)
      for (NamedAttribute binding : bindings)
        out.push_back(fb::CreateBinding(fbb, fbb.CreateString(binding.getName().str()),
                                        bufferIndex(binding.getValue())));
    return fbb.CreateVector(out);
  }
  uint32_t bufferIndex(Attribute ref) {
    return bufferIndices.lookup(cast<FlatSymbolRefAttr>(ref).getAttr());
  }

  ModuleOp module;
  const PlanWriterOptions &options;
  cuda::NvccStats &stats;
  flatbuffers::FlatBufferBuilder fbb;
  llvm::DenseMap<StringAttr, uint32_t> arenaIndices, bufferIndices, kernelIndices;
  llvm::DenseMap<StringAttr, BufferOp> buffers;
  std::vector<flatbuffers::Offset<fb::Kernel>> kernels;
  /// Expanded source of each kernel with device code.
  llvm::DenseMap<Operation *, std::string> expandedSources;
  /// Cubin images by expanded source, one per options.archs entry.
  llvm::StringMap<std::vector<std::string>> images;
  /// Cubin tables by expanded source: kernels with equal code share the bytes in the plan.
  llvm::StringMap<std::vector<flatbuffers::Offset<fb::Cubin>>> cubinTables;
};

/// A kernel parameter or config entry as a plan Attribute; false when it has no encoding.
std::optional<flatbuffers::Offset<fb::Attribute>>
encodeAttribute(flatbuffers::FlatBufferBuilder &fbb, NamedAttribute param) {
  auto name = fbb.CreateString(param.getName().str());
  Attribute value = param.getValue();
  if (auto f = dyn_cast<FloatAttr>(value))
    return fb::CreateAttribute(fbb, name, fb::AttrType::Float, 0, f.getValueAsDouble());
  if (auto i = dyn_cast<IntegerAttr>(value))
    return fb::CreateAttribute(fbb, name, fb::AttrType::Int, i.getInt());
  if (auto s = dyn_cast<StringAttr>(value))
    return fb::CreateAttribute(fbb, name, fb::AttrType::String, 0, 0, fbb.CreateString(s.str()));
  if (isa<UnitAttr>(value))
    return fb::CreateAttribute(fbb, name, fb::AttrType::Int, 1);
  if (auto flag = dyn_cast<BoolAttr>(value))
    return fb::CreateAttribute(fbb, name, fb::AttrType::Int, flag.getValue());
  if (auto ints = dyn_cast<DenseI64ArrayAttr>(value))
    return fb::CreateAttribute(fbb, name, fb::AttrType::Ints, 0, 0, 0,
                               fbb.CreateVector(ints.asArrayRef().vec()));
  return std::nullopt;
}

LogicalResult Writer::writeKernel(KernelOp kernel) {
  std::vector<flatbuffers::Offset<fb::Attribute>> attrs;
  if (DictionaryAttr params = kernel.getParamsAttr()) {
    for (NamedAttribute param : params) {
      Attribute value = param.getValue();
      if (auto encoded = encodeAttribute(fbb, param)) {
        attrs.push_back(*encoded);
      } else {
        return kernel.emitOpError("parameter '")
               << param.getName().str() << "' = " << value
               << " has no plan encoding (use a float, integer, unit, bool, string or array<i64>)";
      }
    }
  }

  std::vector<flatbuffers::Offset<fb::Cubin>> cubins;
  if (kernel.getSource()) {
    std::string source = expandedSources.lookup(kernel.getOperation());
    if (!options.kernelDumpDir.empty()) {
      SmallString<256> path(options.kernelDumpDir);
      llvm::sys::fs::create_directories(path);
      llvm::sys::path::append(path, kernel.getSymName() + ".cu");
      std::error_code ec;
      llvm::raw_fd_ostream os(path, ec);
      if (ec)
        return kernel.emitOpError("cannot write ") << path << ": " << ec.message();
      os << source;
    }
    if (options.embedCubins) {
      auto [table, inserted] = cubinTables.try_emplace(source);
      if (inserted) {
        const std::vector<std::string> &compiled = images.find(source)->second;
        for (size_t a = 0; a < options.archs.size(); ++a) {
          auto bytes = fbb.CreateVector(reinterpret_cast<const uint8_t *>(compiled[a].data()),
                                        compiled[a].size());
          table->second.push_back(
              fb::CreateCubin(fbb, fbb.CreateString(options.archs[a]), bytes));
        }
      }
      cubins = table->second;
    }
  } else if (options.embedCubins) {
    return kernel.emitOpError("has no device code to compile; run fplan-codegen-cuda first "
                              "(fusionc --target=cuda does)");
  }

  auto entry = kernel.getEntry() ? fbb.CreateString(kernel.getEntry()->str())
                                 : flatbuffers::Offset<flatbuffers::String>();
  auto source = kernel.getSource() ? fbb.CreateString(kernel.getSource()->str())
                                   : flatbuffers::Offset<flatbuffers::String>();
  kernels.push_back(fb::CreateKernel(fbb, fbb.CreateString(kernel.getSymName().str()),
                                     fbb.CreateString(kernel.getKind().str()),
                                     fbb.CreateVector(attrs), entry, source,
                                     fbb.CreateVector(cubins)));
  return success();
}

FailureOr<flatbuffers::Offset<fb::Instruction>> Writer::writeInstruction(Operation &op) {
  auto loc = fbb.CreateString(locationString(op.getLoc()));
  auto toU32 = [](ArrayRef<int64_t> values) {
    return std::vector<uint32_t>(values.begin(), values.end());
  };
  if (auto launch = dyn_cast<LaunchOp>(op)) {
    std::vector<uint32_t> args;
    for (Attribute ref : launch.getIns())
      args.push_back(bufferIndex(ref));
    for (Attribute ref : launch.getOuts())
      args.push_back(bufferIndex(ref));
    auto body = fb::CreateLaunch(
        fbb, kernelIndices.lookup(launch.getKernelAttr().getAttr()), fbb.CreateVector(args),
        launch.getIns().size(), fbb.CreateVector(toU32(launch.getGrid())),
        fbb.CreateVector(toU32(launch.getBlock())), launch.getSmem(),
        fbb.CreateVector(launch.getArgs().vec()));
    return fb::CreateInstruction(fbb, fb::Op::Launch, body.Union(), launch.getStream(), loc);
  }
  if (auto gemm = dyn_cast<GemmOp>(op)) {
    ArrayRef<int64_t> a = buffers.lookup(gemm.getAAttr().getAttr()).getTensorType().getShape();
    ArrayRef<int64_t> c = buffers.lookup(gemm.getCAttr().getAttr()).getTensorType().getShape();
    int64_t batch = 1;
    for (int64_t d : a.drop_back(2))
      batch *= d;
    int64_t k = gemm.getTransposeA() ? a[a.size() - 2] : a.back();
    auto body = fb::CreateGemm(fbb, bufferIndex(gemm.getAAttr()), bufferIndex(gemm.getBAttr()),
                               bufferIndex(gemm.getCAttr()), c[c.size() - 2], c.back(), k,
                               batch, gemm.getTransposeA(), gemm.getTransposeB(),
                               gemm.getAlpha().convertToFloat(),
                               gemm.getBeta().convertToFloat());
    return fb::CreateInstruction(fbb, fb::Op::Gemm, body.Union(), gemm.getStream(), loc);
  }
  if (auto coll = dyn_cast<CollectiveOp>(op)) {
    auto body = fb::CreateCollective(
        fbb, static_cast<fb::CollectiveKind>(coll.getKind()),
        fbb.CreateString(coll.getAxis().str()), bufferIndex(coll.getSendAttr()),
        bufferIndex(coll.getRecvAttr()), static_cast<fb::ReduceOp>(coll.getReduce()));
    return fb::CreateInstruction(fbb, fb::Op::Collective, body.Union(), coll.getStream(), loc);
  }
  if (auto record = dyn_cast<RecordOp>(op))
    return fb::CreateInstruction(fbb, fb::Op::Record,
                                 fb::CreateRecord(fbb, record.getEvent()).Union(),
                                 record.getStream(), loc);
  if (auto wait = dyn_cast<WaitOp>(op))
    return fb::CreateInstruction(fbb, fb::Op::Wait, fb::CreateWait(fbb, wait.getEvent()).Union(),
                                 wait.getStream(), loc);
  return op.emitOpError("has no plan encoding");
}

LogicalResult Writer::compileKernels() {
  // 1. Expand every source (the templates are inlined); remember the first kernel of each.
  std::vector<std::pair<std::string, KernelOp>> distinct;
  llvm::StringMap<size_t> seen;
  for (KernelOp kernel : module.getOps<KernelOp>()) {
    std::optional<StringRef> raw = kernel.getSource();
    if (!raw)
      continue;
    llvm::Expected<std::string> expanded = cuda::expandTemplates(*raw);
    if (!expanded)
      return kernel.emitOpError(llvm::toString(expanded.takeError()));
    if (seen.try_emplace(*expanded, distinct.size()).second)
      distinct.emplace_back(*expanded, kernel);
    expandedSources[kernel.getOperation()] = std::move(*expanded);
  }
  if (!options.embedCubins || distinct.empty())
    return success();

  // 2. One task per (source, arch); each keeps its own counters.
  size_t numArchs = options.archs.size();
  size_t numTasks = distinct.size() * numArchs;
  std::vector<std::string> results(numTasks);
  std::vector<std::string> errors(numTasks);
  std::vector<cuda::NvccStats> taskStats(numTasks);
  llvm::DefaultThreadPool pool(llvm::hardware_concurrency());
  for (size_t t = 0; t < numTasks; ++t)
    pool.async([&, t] {
      llvm::Expected<std::string> image = cuda::compileToCubin(
          distinct[t / numArchs].first, options.archs[t % numArchs], options.nvcc, taskStats[t]);
      if (image)
        results[t] = std::move(*image);
      else
        errors[t] = llvm::toString(image.takeError());
    });
  pool.wait();
  for (size_t t = 0; t < numTasks; ++t) {
    stats.compiled += taskStats[t].compiled;
    stats.cacheHits += taskStats[t].cacheHits;
    if (!errors[t].empty())
      return distinct[t / numArchs].second.emitOpError("cannot compile for ")
             << options.archs[t % numArchs] << ": " << errors[t];
  }
  for (size_t d = 0; d < distinct.size(); ++d) {
    std::vector<std::string> &perArch = images[distinct[d].first];
    for (size_t a = 0; a < numArchs; ++a)
      perArch.push_back(std::move(results[d * numArchs + a]));
  }
  return success();
}

LogicalResult Writer::write(llvm::raw_ostream &os) {
  std::vector<flatbuffers::Offset<fb::MeshAxis>> mesh;
  if (auto meshAttr = module->getAttrOfType<DictionaryAttr>(kMeshAttrName)) {
    for (NamedAttribute axis : meshAttr) {
      auto size = dyn_cast<IntegerAttr>(axis.getValue());
      if (!size || size.getInt() < 1)
        return module.emitError("mesh axis '")
               << axis.getName().str() << "' needs a positive integer size, got "
               << axis.getValue();
      mesh.push_back(
          fb::CreateMeshAxis(fbb, fbb.CreateString(axis.getName().str()), size.getInt()));
    }
  }

  std::vector<flatbuffers::Offset<fb::Arena>> arenas;
  std::vector<flatbuffers::Offset<fb::Buffer>> bufferDefs;
  std::vector<flatbuffers::Offset<fb::Program>> programs;
  for (ArenaOp arena : module.getOps<ArenaOp>()) {
    arenaIndices[arena.getSymNameAttr()] = arenas.size();
    arenas.push_back(fb::CreateArena(
        fbb, fbb.CreateString(arena.getSymName().str()),
        arena.getPersistent() ? fb::ArenaClass::Persistent : fb::ArenaClass::Transient,
        arena.getSize()));
  }
  for (BufferOp buffer : module.getOps<BufferOp>()) {
    FailureOr<fb::DType> dtype = toDType(buffer, buffer.getTensorType().getElementType());
    if (failed(dtype))
      return failure();
    bufferIndices[buffer.getSymNameAttr()] = bufferDefs.size();
    buffers[buffer.getSymNameAttr()] = buffer;
    fb::BufferRole role = fb::BufferRole::Activation;
    if (std::optional<StringRef> name = buffer.getRole())
      role = *name == "weight"            ? fb::BufferRole::Weight
             : *name == "model_buffer"    ? fb::BufferRole::ModelBuffer
             : *name == "inference_state" ? fb::BufferRole::InferenceState
                                          : fb::BufferRole::OptimizerState;
    bufferDefs.push_back(fb::CreateBuffer(
        fbb, fbb.CreateString(buffer.getSymName().str()), *dtype,
        fbb.CreateVector(buffer.getTensorType().getShape().vec()),
        arenaIndices.lookup(buffer.getArenaAttr().getAttr()), buffer.getOffset(),
        fbb.CreateString(locationString(buffer.getLoc())), role));
  }
  if (failed(compileKernels()))
    return failure();
  for (KernelOp kernel : module.getOps<KernelOp>()) {
    kernelIndices[kernel.getSymNameAttr()] = kernels.size();
    if (failed(writeKernel(kernel)))
      return failure();
  }
  for (ProgramOp program : module.getOps<ProgramOp>()) {
    std::vector<flatbuffers::Offset<fb::Instruction>> instructions;
    for (Operation &op : program.getBody().front()) {
      FailureOr<flatbuffers::Offset<fb::Instruction>> instr = writeInstruction(op);
      if (failed(instr))
        return failure();
      instructions.push_back(*instr);
    }
    auto name = fbb.CreateString(program.getSymName().str());
    auto body = fbb.CreateVector(instructions);
    auto inputs = writeBindings(program.getInputsAttr());
    auto outputs = writeBindings(program.getOutputsAttr());
    fb::ProgramBuilder pb(fbb);
    pb.add_name(name);
    pb.add_instructions(body);
    pb.add_inputs(inputs);
    pb.add_outputs(outputs);
    pb.add_num_streams(program.getNumStreams());
    pb.add_num_events(program.getNumEvents());
    programs.push_back(pb.Finish());
  }

  flatbuffers::Offset<flatbuffers::String> sourceMlir;
  if (options.embedSourceMlir) {
    std::string text;
    llvm::raw_string_ostream textOs(text);
    module.print(textOs);
    sourceMlir = fbb.CreateString(text);
  }
  // The resolved training config (fusion.config) for the runtime's training loop.
  std::vector<flatbuffers::Offset<fb::Attribute>> config;
  if (auto dict = module->getAttrOfType<DictionaryAttr>("fusion.config")) {
    for (NamedAttribute entry : dict) {
      std::optional<flatbuffers::Offset<fb::Attribute>> encoded = encodeAttribute(fbb, entry);
      if (!encoded)
        return module.emitError("fusion.config entry '")
               << entry.getName().str() << "' has no plan encoding";
      config.push_back(*encoded);
    }
  }
  auto root = fb::CreatePlan(fbb, options.schemaVersion, fbb.CreateString(options.compilerVersion),
                             fbb.CreateVector(mesh), fbb.CreateVector(arenas),
                             fbb.CreateVector(bufferDefs), fbb.CreateVector(kernels),
                             fbb.CreateVector(programs), sourceMlir, fbb.CreateVector(config));
  fb::FinishPlanBuffer(fbb, root);
  os.write(reinterpret_cast<const char *>(fbb.GetBufferPointer()), fbb.GetSize());
  return success();
}

} // namespace

LogicalResult mlir::fusion::writePlan(ModuleOp module, const PlanWriterOptions &options,
                                      llvm::raw_ostream &os, cuda::NvccStats &stats) {
  if (module.getOps<ProgramOp>().empty())
    return module.emitError("has no fplan.program: nothing to write");
  return Writer(module, options, stats).write(os);
}
