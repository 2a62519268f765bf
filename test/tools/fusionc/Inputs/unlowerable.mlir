// A function with an op outside the fusion dialect: valid IR, but no plan instruction.
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = fusion.silu %x : tensor<4xf32>
  %z = func.call @g(%y) : (tensor<4xf32>) -> tensor<4xf32>
  return %z : tensor<4xf32>
}
func.func private @g(tensor<4xf32>) -> tensor<4xf32>
