#!/usr/bin/env bash
# Fresh machine to a running model: sets up and builds (scripts/setup.sh), prints the smoke
# model's report, compiles it to a plan (dumping every phase's IR), and runs its forward
# pass on synthetic data with the CPU backend. Then compiles and runs the hand-written
# examples/hello.mlir plan.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BIN=$BUILD_DIR/bin

scripts/setup.sh
mkdir -p out
echo
echo "== fusionc configs/smoke.yaml --report"
"$BIN/fusionc" configs/smoke.yaml --report
echo
echo "== fusionc configs/smoke.yaml -o out/smoke.fplan --dump-phases-to=out/smoke-phases -v"
"$BIN/fusionc" configs/smoke.yaml -o out/smoke.fplan --dump-phases-to=out/smoke-phases -v
ls out/smoke-phases
echo
echo "== fusion-run out/smoke.fplan --program init --program forward --data synthetic:seed=1234"
"$BIN/fusion-run" out/smoke.fplan --program init --program forward --data synthetic:seed=1234
echo
echo "== fusionc examples/hello.mlir -o out/hello.fplan; fusion-run out/hello.fplan --program init --program main --print-buffer z"
"$BIN/fusionc" examples/hello.mlir -o out/hello.fplan
"$BIN/fusion-run" out/hello.fplan --program init --program main --print-buffer z
