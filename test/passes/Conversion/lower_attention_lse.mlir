// RUN: fusion-opt %s --fusion-lower-to-plan | FileCheck %s
// RUN: fusion-opt %s --fusion-lower-to-plan=attention-saves-lse=false | FileCheck %s --check-prefix=OFF

// An attention whose attention_grad (same q, k, v and attributes) is in the same function
// saves its rows' log-sum-exp (attention_lse: o and lse [B, H, T] f32), and the gradient reads
// o and lse (attention_grad_lse). An attention without a gradient, and a gradient whose
// attributes differ from every forward's, keep the plain kinds.

//   CHECK-DAG: fplan.buffer @[[LSE:step.o.lse]] : tensor<1x4x8xf32>
//   CHECK-DAG: fplan.kernel @[[FWD:attention_lse[^ ]*]] kind "attention_lse" params {causal, scale = 2.500000e-01 : f32, window = 0 : i64}
//   CHECK-DAG: fplan.kernel @[[BWD:attention_grad_lse[^ ]*]] kind "attention_grad_lse" params {causal, scale = 2.500000e-01 : f32, window = 0 : i64}
//   CHECK-DAG: fplan.kernel @[[PLAIN:attention_grad[.0-9]*]] kind "attention_grad" params {causal, scale = 5.000000e-01 : f32, window = 0 : i64}
//       CHECK: fplan.program @step
//  CHECK-NEXT:   fplan.launch @[[FWD]] ins [@step.q, @step.k, @step.v] outs [@step.o, @[[LSE]]]
//  CHECK-NEXT:   fplan.launch @[[BWD]] ins [@step.q, @step.k, @step.v, @step.do, @step.o, @[[LSE]]] outs
//  CHECK-NEXT:   fplan.launch @[[PLAIN]] ins [@step.q, @step.k, @step.v, @step.do] outs
//       CHECK: fplan.program @eval
//  CHECK-NEXT:   fplan.launch @{{attention[.0-9]*}} ins [@eval.q, @eval.k, @eval.v] outs
//   CHECK-NOT:   attention_lse

//   OFF-NOT: attention_lse
//   OFF-NOT: attention_grad_lse
//       OFF: fplan.program @step
//  OFF-NEXT:   fplan.launch @{{attention[.0-9]*}} ins [@step.q, @step.k, @step.v] outs [@step.o]
//  OFF-NEXT:   fplan.launch @{{attention_grad[.0-9]*}} ins [@step.q, @step.k, @step.v, @step.do] outs

module {
  func.func @step(%q: tensor<1x4x8x16xf32> {fusion.name = "q"}, %k: tensor<1x2x8x16xf32> {fusion.name = "k"},
                  %v: tensor<1x2x8x8xf32> {fusion.name = "v"}, %do: tensor<1x4x8x8xf32> {fusion.name = "do"})
      -> (tensor<1x4x8x8xf32> {fusion.name = "o"}, tensor<1x4x8x16xf32> {fusion.name = "dq"}, tensor<1x4x8x16xf32> {fusion.name = "dq2"}) {
    %o = fusion.attention %q, %k, %v {causal, scale = 0.25 : f32} : (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>) -> tensor<1x4x8x8xf32> loc("step.o")
    %dq, %dk, %dv = fusion.attention_grad %q, %k, %v, %do {causal, scale = 0.25 : f32} : (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>, tensor<1x4x8x8xf32>) -> (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>)
    %dq2, %dk2, %dv2 = fusion.attention_grad %q, %k, %v, %do {causal, scale = 0.5 : f32} : (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>, tensor<1x4x8x8xf32>) -> (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>)
    return %o, %dq, %dq2 : tensor<1x4x8x8xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>
  }
  func.func @eval(%q: tensor<1x4x8x16xf32> {fusion.name = "q"}, %k: tensor<1x2x8x16xf32> {fusion.name = "k"},
                  %v: tensor<1x2x8x8xf32> {fusion.name = "v"}) -> (tensor<1x4x8x8xf32> {fusion.name = "o"}) {
    %o = fusion.attention %q, %k, %v {causal, scale = 0.25 : f32} : (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>) -> tensor<1x4x8x8xf32>
    return %o : tensor<1x4x8x8xf32>
  }
}
