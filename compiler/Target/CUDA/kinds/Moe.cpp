//===- Moe.cpp - CUDA generators for the moe kinds ----------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

using namespace llvm;
using namespace mlir::fusion::cuda;

void mlir::fusion::cuda::addMoeKinds(std::vector<KindGenerator> &kinds) {}
