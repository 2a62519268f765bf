#!/usr/bin/env bash
# Fresh machine to a running plan: sets up and builds (scripts/setup.sh), compiles the
# checked-in example (examples/hello.mlir) to a plan, prints the plan, and runs it on the
# CPU backend.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BIN=$BUILD_DIR/bin

scripts/setup.sh
mkdir -p out
echo
echo "== fusionc examples/hello.mlir -o out/hello.fplan --dump-phases-to=out/hello-phases"
"$BIN/fusionc" examples/hello.mlir -o out/hello.fplan --dump-phases-to=out/hello-phases -v
ls out/hello-phases
echo
echo "== fusion-run out/hello.fplan --dump-plan (first lines)"
"$BIN/fusion-run" out/hello.fplan --dump-plan | head -n 40
echo "   ..."
echo
echo "== fusion-run out/hello.fplan --program init,main --print-buffer z"
"$BIN/fusion-run" out/hello.fplan --program init --program main --print-buffer z
