//===- Attention.cpp - CUDA generators for the attention kinds ----------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

using namespace llvm;
using namespace mlir::fusion::cuda;

void mlir::fusion::cuda::addAttentionKinds(std::vector<KindGenerator> &kinds) {}
