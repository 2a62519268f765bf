//===- CodegenCuda.cpp - CUDA C++ for plan kernels ------------------------===//
//
// Part of the FusionLLM compiler.
//
// Gives every fplan.kernel without device code a CUDA C++ source (from its portable
// description, specialised to the element type it is launched on) and every launch of it
// the matching grid, block and integer arguments. Compilation to cubins happens when the
// plan is written (compiler/Target/Flatbuffer), so IR dumps stay readable.
//
//===----------------------------------------------------------------------===//

#include "passes/Plan/Passes.h"

#include "compiler/Target/CUDA/KernelSource.h"
#include "dialects/Plan/IR/PlanOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/MapVector.h"

#define DEBUG_TYPE "fplan-codegen-cuda"

namespace mlir::fusion::plan {

#define GEN_PASS_DEF_CODEGENCUDAPASS
#include "passes/Plan/Passes.h.inc"

namespace {

/// Maps an MLIR element type to the generator's; failure for types kernels cannot hold.
FailureOr<cuda::ElementType> toElementType(Type type) {
  if (type.isF32())
    return cuda::ElementType::F32;
  if (type.isBF16())
    return cuda::ElementType::BF16;
  if (type.isF16())
    return cuda::ElementType::F16;
  if (type.isInteger(32))
    return cuda::ElementType::I32;
  if (type.isInteger(64))
    return cuda::ElementType::I64;
  return failure();
}

/// Copies the kernel's params into the generator's description.
void readParams(KernelOp kernel, cuda::KernelDesc &desc) {
  DictionaryAttr params = kernel.getParamsAttr();
  if (!params)
    return;
  for (NamedAttribute param : params) {
    StringRef key = param.getName().getValue();
    Attribute value = param.getValue();
    if (auto f = dyn_cast<FloatAttr>(value))
      desc.floats[key] = f.getValueAsDouble();
    else if (auto i = dyn_cast<IntegerAttr>(value))
      desc.ints[key] = i.getInt();
    else if (auto b = dyn_cast<BoolAttr>(value))
      desc.ints[key] = b.getValue() ? 1 : 0;
    else if (isa<UnitAttr>(value))
      desc.ints[key] = 1;
    else if (auto str = dyn_cast<StringAttr>(value))
      desc.strings[key] = str.getValue().str();
    else if (auto list = dyn_cast<DenseI64ArrayAttr>(value))
      desc.lists[key] = SmallVector<int64_t>(list.asArrayRef());
  }
}

/// The element types of a launch's buffers ("f32, bf16 -> i32"), for messages.
std::string describeTypes(ArrayRef<Type> ins, ArrayRef<Type> outs) {
  std::string text;
  llvm::raw_string_ostream os(text);
  llvm::interleaveComma(ins, os);
  os << " -> ";
  llvm::interleaveComma(outs, os);
  return text;
}

} // namespace

//===----------------------------------------------------------------------===//
// fplan-codegen-cuda
//===----------------------------------------------------------------------===//

struct CodegenCudaPass : impl::CodegenCudaPassBase<CodegenCudaPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);

    // 1. Group the launches by kernel.
    llvm::MapVector<KernelOp, SmallVector<LaunchOp>> launches;
    module.walk([&](LaunchOp launch) {
      if (auto kernel = symbols.lookup<KernelOp>(launch.getKernel()))
        launches[kernel].push_back(launch);
    });

    auto bufferTypes = [&](ArrayAttr refs, SmallVectorImpl<RankedTensorType> &types) {
      for (Attribute ref : refs)
        types.push_back(
            symbols.lookup<BufferOp>(cast<FlatSymbolRefAttr>(ref).getValue()).getTensorType());
    };
    auto elementTypes = [](ArrayRef<RankedTensorType> types) {
      SmallVector<Type> result;
      for (RankedTensorType type : types)
        result.push_back(type.getElementType());
      return result;
    };

    for (auto &[kernel, uses] : launches) {
      if (kernel.getSourceAttr() || !cuda::canGenerate(kernel.getKind()))
        continue;
      // 2. One set of buffer element types per kernel: the device function is specialised
      //    to them.
      SmallVector<RankedTensorType> firstIns, firstOuts;
      bufferTypes(uses.front().getIns(), firstIns);
      bufferTypes(uses.front().getOuts(), firstOuts);
      SmallVector<Type> inTypes = elementTypes(firstIns), outTypes = elementTypes(firstOuts);
      for (LaunchOp launch : uses) {
        SmallVector<RankedTensorType> ins, outs;
        bufferTypes(launch.getIns(), ins);
        bufferTypes(launch.getOuts(), outs);
        if (elementTypes(ins) == inTypes && elementTypes(outs) == outTypes)
          continue;
        launch.emitOpError("launches kernel @")
            << kernel.getSymName() << " on buffers of types "
            << describeTypes(elementTypes(ins), elementTypes(outs))
            << ", but an earlier launch uses " << describeTypes(inTypes, outTypes)
            << "; give each element type its own kernel (the device function is specialised "
               "to one)";
        return signalPassFailure();
      }

      // 3. Source and entry on the kernel.
      cuda::KernelDesc desc;
      desc.name = kernel.getSymName().str();
      desc.kind = kernel.getKind().str();
      desc.blockSize = blockSize;
      readParams(kernel, desc);
      for (auto [types, target] : {std::make_pair(&inTypes, &desc.inputs),
                                   std::make_pair(&outTypes, &desc.outputs)}) {
        for (Type type : *types) {
          FailureOr<cuda::ElementType> generatorType = toElementType(type);
          if (failed(generatorType)) {
            kernel.emitOpError("kernel kind '")
                << kernel.getKind() << "' has no CUDA code for element type " << type;
            return signalPassFailure();
          }
          target->push_back(*generatorType);
        }
      }
      // Every launch's shapes: generators may specialise the source to them.
      for (LaunchOp launch : uses) {
        SmallVector<RankedTensorType> ins, outs;
        bufferTypes(launch.getIns(), ins);
        bufferTypes(launch.getOuts(), outs);
        cuda::LaunchShapes &shapes = desc.launches.emplace_back();
        for (RankedTensorType type : ins)
          shapes.inputs.emplace_back(type.getShape());
        for (RankedTensorType type : outs)
          shapes.outputs.emplace_back(type.getShape());
      }
      llvm::Expected<std::string> source = cuda::generateKernelSource(desc);
      if (!source) {
        kernel.emitOpError(llvm::toString(source.takeError()));
        return signalPassFailure();
      }
      Builder builder(kernel);
      kernel.setEntryAttr(builder.getStringAttr(cuda::entryName(desc)));
      kernel.setSourceAttr(builder.getStringAttr(*source));
      ++numKernelsEmitted;

      // 4. Geometry of every launch.
      for (auto [launch, shapes] : llvm::zip_equal(uses, desc.launches)) {
        llvm::Expected<cuda::LaunchConfig> config = cuda::computeLaunchConfig(desc, shapes);
        if (!config) {
          launch.emitOpError(llvm::toString(config.takeError()));
          return signalPassFailure();
        }
        launch.setGrid(config->grid);
        launch.setBlock(config->block);
        launch.setSmem(config->smem);
        launch.setArgs(config->args);
      }
    }
  }
};

} // namespace mlir::fusion::plan
