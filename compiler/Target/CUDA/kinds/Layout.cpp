//===- Layout.cpp - CUDA generators for the layout kinds ----------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

using namespace llvm;
using namespace mlir::fusion::cuda;

void mlir::fusion::cuda::addLayoutKinds(std::vector<KindGenerator> &kinds) {}
