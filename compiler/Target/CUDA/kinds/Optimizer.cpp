//===- Optimizer.cpp - CUDA generators for the optimizer kinds ----------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

using namespace llvm;
using namespace mlir::fusion::cuda;

void mlir::fusion::cuda::addOptimizerKinds(std::vector<KindGenerator> &kinds) {}
