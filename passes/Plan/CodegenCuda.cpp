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
  return failure();
}

/// Reads a float parameter of the kernel, with a default.
double getParam(KernelOp kernel, StringRef name, double defaultValue) {
  if (DictionaryAttr params = kernel.getParamsAttr())
    if (auto value = dyn_cast_or_null<FloatAttr>(params.get(name)))
      return value.getValueAsDouble();
  return defaultValue;
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

    // 1. Group the launches by kernel; the first launch's output fixes the element type.
    llvm::MapVector<KernelOp, SmallVector<LaunchOp>> launches;
    module.walk([&](LaunchOp launch) {
      if (auto kernel = symbols.lookup<KernelOp>(launch.getKernel()))
        launches[kernel].push_back(launch);
    });

    for (auto &[kernel, uses] : launches) {
      if (kernel.getSourceAttr() || !cuda::canGenerate(kernel.getKind()))
        continue;
      // 2. One element type per kernel.
      auto outputType = [&](LaunchOp launch) {
        auto ref = cast<FlatSymbolRefAttr>(launch.getOuts()[0]);
        return symbols.lookup<BufferOp>(ref.getValue()).getTensorType();
      };
      Type elementType = outputType(uses.front()).getElementType();
      for (LaunchOp launch : uses) {
        if (outputType(launch).getElementType() == elementType)
          continue;
        launch.emitOpError("launches kernel @")
                << kernel.getSymName() << " on " << outputType(launch).getElementType()
                << " buffers, but an earlier launch uses " << elementType
                << "; give each element type its own kernel"
                << " (the device function is specialised to one)";
        return signalPassFailure();
      }
      FailureOr<cuda::ElementType> generatorType = toElementType(elementType);
      if (failed(generatorType)) {
        kernel.emitOpError("kernel kind '")
            << kernel.getKind() << "' has no CUDA code for element type " << elementType;
        return signalPassFailure();
      }

      // 3. Source and entry on the kernel.
      cuda::KernelDesc desc;
      desc.name = kernel.getSymName().str();
      desc.kind = kernel.getKind().str();
      desc.elementType = *generatorType;
      desc.value = getParam(kernel, "value", 0.0);
      desc.step = getParam(kernel, "step", 0.0);
      desc.eps = getParam(kernel, "eps", 1e-6);
      desc.factor = getParam(kernel, "factor", 1.0);
      desc.cap = getParam(kernel, "cap", 0.0);
      if (desc.kind == "cast") {
        // The input's element type is part of the kernel too: one per kernel.
        auto inputType = [&](LaunchOp launch) {
          auto ref = cast<FlatSymbolRefAttr>(launch.getIns()[0]);
          return symbols.lookup<BufferOp>(ref.getValue()).getTensorType().getElementType();
        };
        Type in = inputType(uses.front());
        for (LaunchOp launch : uses)
          if (inputType(launch) != in) {
            launch.emitOpError("launches cast kernel @")
                << kernel.getSymName() << " on " << inputType(launch)
                << " inputs, but an earlier launch casts " << in
                << "; give each input type its own kernel";
            return signalPassFailure();
          }
        if (in.isInteger(32)) {
          desc.inputI32 = true;
        } else if (FailureOr<cuda::ElementType> t = toElementType(in); succeeded(t)) {
          desc.inputType = *t;
        } else {
          kernel.emitOpError("cast has no CUDA code for input element type ") << in;
          return signalPassFailure();
        }
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
      for (LaunchOp launch : uses) {
        cuda::LaunchConfig config =
            cuda::computeLaunchConfig(kernel.getKind(), outputType(launch).getShape(), blockSize);
        launch.setGrid(config.grid);
        launch.setBlock(config.block);
        launch.setSmem(config.smem);
        launch.setArgs(config.args);
      }
    }
  }
};

} // namespace mlir::fusion::plan
