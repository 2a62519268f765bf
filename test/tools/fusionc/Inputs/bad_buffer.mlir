module {
  fplan.arena @a size(64)
  fplan.buffer @x : tensor<16xf32> in @a at 4
  fplan.program @main {
  }
}
