//===- Pointwise.cpp - CUDA generators for the pointwise kinds ----------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

using namespace llvm;
using namespace mlir::fusion::cuda;

void mlir::fusion::cuda::addPointwiseKinds(std::vector<KindGenerator> &kinds) {}
