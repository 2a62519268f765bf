// A type error at line 4, column 33.
module {
  fplan.arena @a size(64)
  fplan.buffer @x : tensor<4xf32 in @a at 0
}
