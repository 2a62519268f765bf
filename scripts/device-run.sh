#!/usr/bin/env bash
# device-run.sh: package fusion-run and plans for the lent GPU machine.
#
# The build machine has no GPU; the GPU machine has no FlatBuffers or OpenBLAS development
# setup. So we build here and carry a self-contained folder there: .device/ (gitignored),
# which the device tool ships along with the working tree when a call names it in `carry`.
#
# Usage (on the build machine):
#   scripts/device-run.sh pack [--build-dir DIR] [--sample-plans] [--with-tests] [PLAN.fplan...]
#       Recreates .device/ with:
#         bin/fusion-run        from DIR/bin (DIR defaults to ./build)
#         bin/fusion-comm-bench from DIR/bin when built (NCCL collective bandwidth)
#         lib/                  its shared libraries that a stock GPU machine may lack
#                               (OpenBLAS, gfortran runtime; never glibc, libstdc++ or CUDA);
#                               those over 4 MiB xz-compressed, unpacked by run.sh on first use
#         plans/                the given plans, plus with --sample-plans the runtime's sample
#                               plans (real cubins; written by DIR/bin/fusion-rt-write-test-plans)
#         run.sh                runs bin/fusion-run with lib/ on the library path
#         check.sh              the GPU check: runs every plan in plans/ on --backend cpu and
#                               --backend cuda and compares all buffers (fails on mismatch)
#         run-tests.sh          with --with-tests: runs the runtime unit tests there
#       and prints what it packed. Plans need a program `main` (or pass --program to check.sh).
#   scripts/device-run.sh clean
#       Removes .device/.
#
# Then, on the GPU machine (device tool, from the repository root):
#   run(command=".device/check.sh", carry=[".device"])
#   run(command=".device/check.sh --rtol 1e-3 --atol 1e-4 -- --program train_step", carry=[".device"])
#   run(command=".device/run.sh .device/plans/x.fplan --backend cuda --print-buffer y",
#       carry=[".device"])
#   run(command=".device/run-tests.sh", carry=[".device"])
# The carried folder is limited to 64 MiB; pack prints the total.

set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
device_dir="$repo_root/.device"

die() {
  echo "device-run.sh: error: $*" >&2
  exit 1
}

usage() {
  sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# Copies the shared libraries of binary $1 that are not part of the base system or the CUDA
# toolkit into $2 (the GPU machine has glibc, libstdc++ and /usr/local/cuda, but maybe not
# OpenBLAS and the Fortran runtime it needs).
copy_libraries() {
  local binary="$1" dest="$2" name path
  while read -r name path; do
    case "$name" in
      linux-vdso.so.* | ld-linux*.so.* | libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | \
        librt.so.* | libstdc++.so.* | libgcc_s.so.* | libcuda.so.* | libcudart.so.* | \
        libcublas*.so.* | libnccl.so.*)
        continue ;;
    esac
    [[ "$path" == /usr/local/cuda* ]] && continue
    [[ -f "$path" ]] || die "$binary needs $name, which is not found here"
    if [[ ! -f "$dest/$name" ]]; then
      cp -L "$path" "$dest/$name"
      echo "  lib/$name  (from $path, $(du -h "$dest/$name" | cut -f1))"
    fi
  done < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }')
}

write_run_sh() {
  cat >"$device_dir/run.sh" <<'EOF'
#!/usr/bin/env bash
# Runs the packed fusion-run with the packed libraries; arguments are passed through.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for packed in "$here"/lib/*.xz; do # compressed by pack; unpacked once
  [[ -f "$packed" && ! -f "${packed%.xz}" ]] && xz -dk "$packed"
done
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$here/bin/fusion-run" "$@"
EOF
  chmod +x "$device_dir/run.sh"
}

write_check_sh() {
  cat >"$device_dir/compare.awk" <<'EOF'
# Compares two `fusion-run --print-all-buffers --print-limit 0` outputs: the first file is
# the cpu (reference) run, the second the cuda run. Lines are `NAME dtype[shape] = [v, ...]`.
# Floats must agree within atol + rtol * |cpu|; integers and nan/inf must match exactly.
function header(line) { return substr(line, 1, index(line, " = [") - 1) }
function values(line, out,   body) {
  body = substr(line, index(line, " = [") + 4)
  sub(/\]$/, "", body)
  if (body == "") return 0
  return split(body, out, ", ")
}
function abs(x) { return x < 0 ? -x : x }
FNR == NR { cpu[header($0)] = $0; order[++count] = header($0); next }
{
  key = header($0)
  seen[key] = 1
  if (!(key in cpu)) { printf "  %s: only in the cuda output\n", key; bad = 1; next }
  n = values(cpu[key], expected)
  m = values($0, actual)
  if (n != m) { printf "  %s: %d values on cpu, %d on cuda\n", key, n, m; bad = 1; next }
  exact = (key ~ / i(32|64)\[/)
  shown = 0
  for (i = 1; i <= n; i++) {
    e = expected[i]; a = actual[i]
    if (e == a) continue
    if (e ~ /nan/ && a ~ /nan/) continue # NaN signs differ between CPU and GPU; both are NaN
    special = (e ~ /nan|inf/ || a ~ /nan|inf/)
    if (exact || special || abs(a - e) > atol + rtol * abs(e)) {
      if (shown++ < 5) printf "  %s[%d]: cpu %s, cuda %s\n", key, i - 1, e, a
      bad = 1
    }
  }
  if (shown > 5) printf "  %s: %d mismatching values in all\n", key, shown
}
END {
  for (i = 1; i <= count; i++)
    if (!(order[i] in seen)) { printf "  %s: missing from the cuda output\n", order[i]; bad = 1 }
  exit bad
}
EOF

  cat >"$device_dir/check.sh" <<'EOF'
#!/usr/bin/env bash
# The GPU check: runs every plan in plans/ with --backend cpu and --backend cuda, printing all
# buffers in full, and compares them (compare.awk). Exit status 0 only if every plan ran on
# both backends and every buffer agreed.
#
# usage: .device/check.sh [--rtol R] [--atol A] [-- FUSION-RUN FLAGS...]
#   --rtol R, --atol A   tolerance: |cuda - cpu| <= A + R * |cpu| (defaults 1e-4, 1e-5)
#   after --              extra fusion-run flags for both runs, e.g. --program train_step
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rtol=1e-4
atol=1e-5
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rtol) [[ $# -ge 2 ]] || { echo "check.sh: --rtol needs a value" >&2; exit 2; }; rtol="$2"; shift 2 ;;
    --atol) [[ $# -ge 2 ]] || { echo "check.sh: --atol needs a value" >&2; exit 2; }; atol="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "check.sh: unknown argument '$1' (usage: check.sh [--rtol R] [--atol A] [-- flags])" >&2; exit 2 ;;
  esac
done

shopt -s nullglob
plans=("$here"/plans/*.fplan)
if [[ ${#plans[@]} -eq 0 ]]; then
  echo "check.sh: no plans in $here/plans" >&2
  exit 2
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=0
for plan in "${plans[@]}"; do
  name="$(basename "$plan")"
  ok=1
  for backend in cpu cuda; do
    if ! "$here/run.sh" "$plan" --backend "$backend" --print-all-buffers --print-limit 0 \
        ${extra[@]+"${extra[@]}"} >"$scratch/$backend.txt" 2>"$scratch/$backend.err"; then
      echo "FAIL $name: the $backend run failed: $(cat "$scratch/$backend.err")"
      ok=0
      break
    fi
  done
  if [[ $ok -eq 1 ]]; then
    if awk -v rtol="$rtol" -v atol="$atol" -f "$here/compare.awk" \
        "$scratch/cpu.txt" "$scratch/cuda.txt" >"$scratch/diff.txt"; then
      echo "PASS $name ($(wc -l <"$scratch/cpu.txt") buffers agree, rtol $rtol, atol $atol)"
    else
      echo "FAIL $name: cpu and cuda disagree:"
      cat "$scratch/diff.txt"
      ok=0
    fi
  fi
  [[ $ok -eq 1 ]] || failed=1
done
exit $failed
EOF
  chmod +x "$device_dir/check.sh"
}

write_run_tests_sh() {
  cat >"$device_dir/run-tests.sh" <<'EOF'
#!/usr/bin/env bash
# Runs the packed runtime unit tests (the CUDA backend tests run only where a GPU is).
# Arguments are passed to each test binary (e.g. --gtest_filter='CudaBackendTest.*').
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for packed in "$here"/lib/*.xz; do # compressed by pack; unpacked once
  [[ -f "$packed" && ! -f "${packed%.xz}" ]] && xz -dk "$packed"
done
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
status=0
for test in "$here"/bin/*Tests; do
  echo "== $(basename "$test")"
  "$test" "$@" || status=1
done
exit $status
EOF
  chmod +x "$device_dir/run-tests.sh"
}

pack() {
  local build_dir="$repo_root/build" sample_plans=0 with_tests=0
  local plans=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --build-dir)
        [[ $# -ge 2 ]] || die "--build-dir needs a value"
        build_dir="$(cd "$2" && pwd)" || die "no build directory $2"
        shift 2 ;;
      --build-dir=*) build_dir="$(cd "${1#*=}" && pwd)" || die "no build directory ${1#*=}"; shift ;;
      --sample-plans) sample_plans=1; shift ;;
      --with-tests) with_tests=1; shift ;;
      -h | --help) usage ;;
      -*) die "unknown flag '$1' (see scripts/device-run.sh --help)" ;;
      *) plans+=("$1"); shift ;;
    esac
  done
  local fusion_run="$build_dir/bin/fusion-run"
  [[ -x "$fusion_run" ]] || die "$fusion_run not found: build first (ninja -C $build_dir fusion-run)"
  if [[ ${#plans[@]} -eq 0 && $sample_plans -eq 0 ]]; then
    die "nothing to check: give plan files and/or --sample-plans"
  fi
  for plan in ${plans[@]+"${plans[@]}"}; do
    [[ -f "$plan" ]] || die "no plan file $plan"
  done

  rm -rf "$device_dir"
  mkdir -p "$device_dir/bin" "$device_dir/lib" "$device_dir/plans"
  echo "packing $device_dir:"
  cp "$fusion_run" "$device_dir/bin/"
  echo "  bin/fusion-run  (from $fusion_run)"
  copy_libraries "$fusion_run" "$device_dir/lib"
  if [[ -x "$build_dir/bin/fusion-comm-bench" ]]; then
    cp "$build_dir/bin/fusion-comm-bench" "$device_dir/bin/"
    echo "  bin/fusion-comm-bench  (collective bandwidth; run with lib/ on LD_LIBRARY_PATH)"
  fi

  if [[ $with_tests -eq 1 ]]; then
    local test
    for test in FusionRuntimeTests FusionRunToolTests FusionCommTests; do
      [[ -x "$build_dir/bin/$test" ]] || die "$build_dir/bin/$test not found: build the tests first"
      cp "$build_dir/bin/$test" "$device_dir/bin/"
      echo "  bin/$test"
      copy_libraries "$build_dir/bin/$test" "$device_dir/lib"
    done
    write_run_tests_sh
    echo "  run-tests.sh"
  fi

  if [[ $sample_plans -eq 1 ]]; then
    local writer="$build_dir/bin/fusion-rt-write-test-plans"
    [[ -x "$writer" ]] || die "$writer not found: build it first"
    "$writer" "$device_dir/plans" | sed 's|^'"$device_dir"'/|  |'
  fi
  local plan base
  for plan in ${plans[@]+"${plans[@]}"}; do
    base="$(basename "$plan")"
    [[ -e "$device_dir/plans/$base" ]] && die "two plans named $base"
    cp "$plan" "$device_dir/plans/$base"
    echo "  plans/$base  (from $plan)"
  done

  # Large libraries travel xz-compressed (OpenBLAS: 35 MiB -> 4 MiB of the 64 MiB carry);
  # run.sh / run-tests.sh unpack them on first use.
  local lib
  for lib in "$device_dir"/lib/*; do
    if [[ -f "$lib" && $(du -k "$lib" | cut -f1) -gt 4096 ]]; then
      xz -T0 -6 "$lib"
      echo "  lib/$(basename "$lib").xz  (compressed, $(du -h "$lib.xz" | cut -f1); unpacked by run.sh)"
    fi
  done

  write_run_sh
  write_check_sh
  echo "  run.sh, check.sh, compare.awk"
  local total_kib
  total_kib="$(du -sk "$device_dir" | cut -f1)"
  echo "total $((total_kib / 1024)) MiB; carry it with carry=[\".device\"]"
  if [[ $total_kib -gt $((64 * 1024)) ]]; then
    die ".device is over the 64 MiB carry limit"
  fi
}

[[ $# -ge 1 ]] || usage
command="$1"
shift
case "$command" in
  pack) pack "$@" ;;
  clean) rm -rf "$device_dir"; echo "removed $device_dir" ;;
  -h | --help | help) usage ;;
  *) die "unknown command '$command' (expected pack or clean)" ;;
esac
