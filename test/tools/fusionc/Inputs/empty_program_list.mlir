// Valid fplan IR with nothing to run.
module {
  fplan.arena @a size(64)
}
