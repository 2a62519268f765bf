#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz with clang and -fsanitize=fuzzer,address,undefined
# into build-fuzz/ and runs each, one after the other, for SECONDS (default 600) at low
# priority: plan_loader (Plan::loadBytes + verification + bounded CPU runs of loaded plans)
# from plans written by fusion-fuzz-seeds, and config_reader (frontend/Spec
# parseConfigBuffer + report) from configs/**/*.yaml with a dictionary of their keys.
# The corpora grow across runs in build-fuzz/corpus/<fuzzer>; crashes, timeouts and leaks
# are saved as build-fuzz/artifacts/<fuzzer>-*. A summary line per fuzzer ends the output.
#
# usage: scripts/fuzz.sh [SECONDS]
# env:   FUZZ_BUILD_DIR (default build-fuzz), CLANG (a clang++ to use; default the first of
#        clang++-22, clang++-14, clang++ with the libFuzzer runtime), FUZZ_JOBS (ninja -j,
#        default 1), FUZZ_NICE (default 19), FUZZ_TARGETS (default "plan_loader config_reader")
# exit:  0 no finding; 1 a fuzzer reported a crash, timeout or leak; 2 usage or build error;
#        77 skipped: no clang with libFuzzer (Debian 12: apt-get install clang-14
#        libclang-rt-14-dev)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-600}
if ! [[ "$DURATION" =~ ^[0-9]+$ ]] || [ "$DURATION" -lt 1 ] || [ $# -gt 1 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS]" >&2
  exit 2
fi
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
NICE=${FUZZ_NICE:-19}
TARGETS=${FUZZ_TARGETS:-plan_loader config_reader}

# A clang++ whose libFuzzer and sanitizer runtimes are installed: link a trivial fuzzer.
find_clang() {
  local probe cxx
  probe=$(mktemp -d)
  echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char *, unsigned long) { return 0; }' \
    >"$probe/probe.cc"
  for cxx in ${CLANG:-} clang++-22 clang++-14 clang++; do
    command -v "$cxx" >/dev/null 2>&1 || continue
    if "$cxx" -fsanitize=fuzzer,address,undefined "$probe/probe.cc" -o "$probe/probe" \
         >/dev/null 2>&1; then
      rm -rf "$probe"
      echo "$cxx"
      return 0
    fi
  done
  rm -rf "$probe"
  return 1
}
if ! CXX_BIN=$(find_clang); then
  echo "fuzz: SKIPPED: no clang++ with the libFuzzer runtime (Debian 12: apt-get install" \
       "clang-14 libclang-rt-14-dev)"
  exit 77
fi
CC_BIN=${CXX_BIN/clang++/clang}

echo "fuzz: building with $CXX_BIN into $BUILD"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -G Ninja -S test/fuzz -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX_BIN" \
        -DCMAKE_C_COMPILER="$CC_BIN" >"$BUILD.configure.log" 2>&1 ||
    { cat "$BUILD.configure.log" >&2; exit 2; }
  rm -f "$BUILD.configure.log"
fi
nice -n "$NICE" ninja -C "$BUILD" -j"${FUZZ_JOBS:-1}" >"$BUILD/build.log" 2>&1 ||
  { tail -40 "$BUILD/build.log" >&2; exit 2; }

# Seeds: valid plans, the repo's configs, and a dictionary of config keys and YAML syntax.
SEEDS=$BUILD/seeds
mkdir -p "$SEEDS/plan_loader" "$SEEDS/config_reader" "$BUILD/artifacts"
"$BUILD/fusion-fuzz-seeds" "$SEEDS/plan_loader"
find configs -name '*.yaml' -exec cp {} "$SEEDS/config_reader/" \;
DICT=$BUILD/config.dict
{
  grep -rhoE '[A-Za-z_][A-Za-z0-9_]*:' configs | sort -u | sed 's/.*/"&"/'
  printf '"%s"\n' '{' '}' '[' ']' ', ' ': ' '- ' '# ' '---' '...' '&a ' '*a' '!!str ' "'" \
    'true' 'false' 'null' '~' '1.0e-6' '-1' '0x10' '.inf' '.nan' '"' '|' '>'
} >"$DICT"

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
status=0
summaries=()
for name in $TARGETS; do
  fuzzer=$BUILD/${name}_fuzzer
  if [ ! -x "$fuzzer" ]; then
    summaries+=("fuzz: $name: not built (see $BUILD/build.log)")
    continue
  fi
  corpus=$BUILD/corpus/$name
  log=$BUILD/$name.log
  mkdir -p "$corpus"
  extra=()
  if [ "$name" = plan_loader ]; then
    extra=(-max_len=65536)
  else
    extra=(-max_len=16384 -dict="$DICT")
  fi
  echo "fuzz: running $name for ${DURATION}s (log: $log)"
  rc=0
  nice -n "$NICE" "$fuzzer" "$corpus" "$SEEDS/$name" -max_total_time="$DURATION" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$name-" \
    "${extra[@]}" >"$log" 2>&1 || rc=$?
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
  findings=$(grep -cE '^==[0-9]+== ?ERROR|runtime error:|ALARM: working on|ERROR: libFuzzer' \
               "$log" || true)
  line="fuzz: $name: ${DURATION}s, ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
  if [ "$rc" -ne 0 ] || [ "${findings:-0}" -ne 0 ]; then
    status=1
    artifact=$(sed -nE 's/.*Test unit written to (.*)/\1/p' "$log" | tail -1)
    line+=", FINDING (exit $rc): ${artifact:-see $log}"
    grep -m3 -E 'ERROR|runtime error:|ALARM' "$log" | sed 's/^/  /' >&2 || true
  else
    line+=", no crash"
  fi
  summaries+=("$line")
done
printf '%s\n' "${summaries[@]}"
exit $status
