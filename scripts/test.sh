#!/usr/bin/env bash
# Runs every test: builds if needed (setting up first on a fresh machine), then ctest over
# the lit suite and the GoogleTest unit tests, and prints ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  scripts/setup.sh
else
  cmake --build "$BUILD_DIR"
fi
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2
