// RUN: fusion-opt %s | fusion-opt | FileCheck %s

// Round trip of the collectives over mesh axis dp (2 ranks).

module attributes {fusion.mesh = {dp = 2 : i64, ep = 1 : i64}} {
  // CHECK-LABEL: func.func @collectives
  func.func @collectives(%g: tensor<64x32xf32>, %s: tensor<32x32xbf16>, %c: tensor<6xi64>) -> (tensor<64x32xf32>, tensor<64x32xbf16>, tensor<32x32xf32>, tensor<6xi64>) {
    // CHECK: fusion.all_reduce %{{.*}} {axis = "dp", reduce = "sum"} : tensor<64x32xf32>
    %0 = fusion.all_reduce %g {axis = "dp", reduce = "sum"} : tensor<64x32xf32>
    // CHECK: fusion.all_gather %{{.*}} {axis = "dp"} : (tensor<32x32xbf16>) -> tensor<64x32xbf16>
    %1 = fusion.all_gather %s {axis = "dp"} : (tensor<32x32xbf16>) -> tensor<64x32xbf16>
    // CHECK: fusion.reduce_scatter %{{.*}} {axis = "dp", reduce = "avg"} : (tensor<64x32xf32>) -> tensor<32x32xf32>
    %2 = fusion.reduce_scatter %0 {axis = "dp", reduce = "avg"} : (tensor<64x32xf32>) -> tensor<32x32xf32>
    // CHECK: fusion.all_reduce %{{.*}} {axis = "dp", reduce = "max"} : tensor<6xi64>
    %3 = fusion.all_reduce %c {axis = "dp", reduce = "max"} : tensor<6xi64>
    return %0, %1, %2, %3 : tensor<64x32xf32>, tensor<64x32xbf16>, tensor<32x32xf32>, tensor<6xi64>
  }
}
