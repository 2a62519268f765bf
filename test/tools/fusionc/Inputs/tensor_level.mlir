// A tensor-level function: valid input, not yet lowerable to a plan.
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = fusion.silu %x : tensor<4xf32>
  return %y : tensor<4xf32>
}
