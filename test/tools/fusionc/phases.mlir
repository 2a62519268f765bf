// fusionc stops after --compile-to and prints that phase's IR; --dump-phases-to writes one
// numbered file per phase that ran.

// RUN: fusionc %s --compile-to=input | FileCheck %s --check-prefix=INPUT
// RUN: fusionc %s --compile-to=codegen --target=cuda | FileCheck %s --check-prefix=CUDA
// RUN: fusionc %s --compile-to=codegen --target=cpu | FileCheck %s --check-prefix=CPU
// RUN: rm -rf %t && fusionc %s --target=cuda --compile-to=codegen --dump-phases-to=%t -o /dev/null
// RUN: ls %t | FileCheck %s --check-prefix=FILES
// RUN: FileCheck %s --check-prefix=CUDA < %t/04-codegen.mlir
// RUN: fusionc %s --compile-to=plan --mlir-print-ir-after-all --target=cuda -o /dev/null 2>&1 | FileCheck %s --check-prefix=PLAN
// RUN: fusionc %s --compile-to=codegen --mlir-print-ir-after-all --target=cuda -o /dev/null 2>&1 | FileCheck %s --check-prefix=AFTER

// INPUT: fplan.kernel @k kind "silu"{{$}}
// CUDA: fplan.kernel @k kind "silu" {entry = "fusion_silu", source =
// CUDA: fplan.launch @k ins [@x] outs [@y] grid [1, 1, 1] block [256, 1, 1] args [8]
// CPU: fplan.kernel @k kind "silu"{{$}}
// CPU: fplan.launch @k ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]{{$}}
// FILES: 01-input.mlir
// FILES-NEXT: 02-train.mlir
// FILES-NEXT: 03-plan.mlir
// FILES-NEXT: 04-codegen.mlir
// FILES-NOT: emit
// PLAN: IR Dump After LowerToPlanPass (fusion-lower-to-plan)
// PLAN: IR Dump After PlanMemoryPass (fusion-plan-memory)
// PLAN-NOT: CodegenCudaPass
// AFTER: IR Dump After CodegenCudaPass (fplan-codegen-cuda)
module {
  fplan.arena @a size(64)
  fplan.buffer @x : tensor<8xf32> in @a at 0
  fplan.buffer @y : tensor<8xf32> in @a at 32
  fplan.kernel @k kind "silu"
  fplan.program @main {
    fplan.launch @k ins [@x] outs [@y] grid [1, 1, 1] block [1, 1, 1]
  }
}
