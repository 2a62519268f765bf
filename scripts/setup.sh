#!/usr/bin/env bash
# Installs what the build needs (Debian packages, idempotent) and configures + builds into
# build/. Options: FUSION_BUILD_COMPILER=OFF builds the runtime and fusion-run only;
# FUSION_ENABLE_CUDA=OFF skips the CUDA backend; FUSION_BUILD_FUZZERS=OFF drops the fuzz
# smoke test (clang + libFuzzer, ~10 s per fuzzer after its build); BUILD_DIR overrides build/.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
PACKAGES=(cmake ninja-build ccache python3 llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
          libzstd-dev zlib1g-dev libflatbuffers-dev flatbuffers-compiler libgtest-dev
          libopenblas-dev clang-14 libclang-rt-14-dev)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all packages present"
fi

if [ ! -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then
  echo "setup: NOTICE: no CUDA toolkit found: the CUDA backend and its tests will be skipped"
fi

cmake -G Ninja -S . -B "$BUILD_DIR" \
  -DCMAKE_BUILD_TYPE=Release \
  -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
  -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit \
  -DFUSION_BUILD_COMPILER="${FUSION_BUILD_COMPILER:-ON}" \
  -DFUSION_ENABLE_CUDA="${FUSION_ENABLE_CUDA:-ON}" \
  -DFUSION_BUILD_FUZZERS="${FUSION_BUILD_FUZZERS:-ON}" >/dev/null
echo "setup: building into $BUILD_DIR/"
cmake --build "$BUILD_DIR"
echo "setup: done; tools in $BUILD_DIR/bin"
