//===- Gdn.cpp - CUDA generators for the gdn kinds ----------===//
//
// Part of the FusionLLM compiler.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Kinds.h"

using namespace llvm;
using namespace mlir::fusion::cuda;

void mlir::fusion::cuda::addGdnKinds(std::vector<KindGenerator> &kinds) {}
