//===- Loss.cpp - CUDA generators for the loss kinds ----------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

using namespace llvm;
using namespace mlir::fusion::cuda;

void mlir::fusion::cuda::addLossKinds(std::vector<KindGenerator> &kinds) {}
