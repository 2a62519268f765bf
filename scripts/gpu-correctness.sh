#!/usr/bin/env bash
# gpu-correctness.sh: the CUDA backend's correctness check (issue 6), in one device call.
#
#   scripts/gpu-correctness.sh pack       (here, on the build machine)
#       compiles with --target=cuda: every examples/kernels/*.mlir plan, configs/smoke.yaml and
#       configs/bench-1gpu-check.yaml (the bench-1gpu model at one 2 x 2048 micro-batch), and
#       packs them with fusion-run into .device/ (scripts/device-run.sh pack).
#   scripts/gpu-correctness.sh run        (on the GPU machine: run(command=..., carry=[".device"]))
#       1. kernels: each example plan's programs with fusion-run --check-against-cpu: every
#          kernel against the CPU reference on the same inputs, outputs poisoned first;
#       2. smoke: init, two train_steps and an eval_step of configs/smoke.yaml, every
#          instruction checked against the CPU (--train --check-against-cpu);
#       3. bench-1gpu: init and one train_step of the bench-1gpu model, checked the same way
#          (the CPU side is slow at this size: BENCH_CHECK_TIMEOUT seconds, default 300, then
#          reported as TIMEOUT, not as a pass);
#       4. smoke loss curve: 200 steps on the GPU and on the CPU, the loss of every step
#          compared;
#       then a summary table. Every part runs under a timeout; logs go to $OUT when set (the
#       device tool's output folder), else to a temporary folder. Exit status 0 only if every
#       part passed.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
device_dir="$repo_root/.device"

pack() {
  # One architecture keeps the packing quick: the lent GPUs are Hoppers (GPU_ARCH overrides).
  local build="$repo_root/build" plans=() tmp arch="${GPU_ARCH:-sm_90a}"
  tmp="$(mktemp -d)"
  for example in "$repo_root"/examples/kernels/*.mlir; do
    local name="kernels-$(basename "$example" .mlir)"
    "$build/bin/fusionc" "$example" --target=cuda --cuda-arch="$arch" -o "$tmp/$name.fplan"
    plans+=("$tmp/$name.fplan")
  done
  "$build/bin/fusionc" "$repo_root/configs/smoke.yaml" --target=cuda --cuda-arch="$arch" -o "$tmp/smoke.fplan"
  "$build/bin/fusionc" "$repo_root/configs/bench-1gpu-check.yaml" --target=cuda --cuda-arch="$arch" \
    -o "$tmp/bench-check.fplan"
  plans+=("$tmp/smoke.fplan" "$tmp/bench-check.fplan")
  "$repo_root/scripts/device-run.sh" pack "${plans[@]}" "$@"
  cp "$repo_root/scripts/gpu-correctness.sh" "$device_dir/gpu-correctness.sh"
  rm -rf "$tmp"
}

run() {
  local here run_sh scratch
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  [[ -x "$here/run.sh" ]] || here="$device_dir"
  run_sh="$here/run.sh"
  if [[ -n "${OUT:-}" ]]; then
    scratch="$OUT"
  else
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
  fi
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
  local summary=() failed=0
  record() { summary+=("$(printf '%-34s %-6s %s' "$1" "$2" "$3")"); [[ "$2" == PASS ]] || failed=1; }

  echo "== 1. kernels against the CPU (fusion-run --check-against-cpu)"
  shopt -s nullglob
  for plan in "$here"/plans/kernels-*.fplan; do
    local name programs=()
    name="$(basename "$plan" .fplan)"
    mapfile -t programs < <("$run_sh" "$plan" --dump-plan | python3 -c \
      'import json, sys; [print(p["name"]) for p in json.load(sys.stdin)["programs"]]')
    local args=()
    for p in "${programs[@]}"; do args+=(--program "$p"); done
    if timeout 120 "$run_sh" "$plan" --backend cuda --check-against-cpu "${args[@]}" >"$scratch/$name.txt" 2>&1; then
      record "$name" PASS "$(tail -n 1 "$scratch/$name.txt")"
    else
      record "$name" FAIL "$(tail -n 1 "$scratch/$name.txt")"
    fi
    cat "$scratch/$name.txt"
  done

  echo "== 2. smoke: init + 2 train_steps + eval_step, every instruction checked"
  if timeout 180 "$run_sh" "$here/plans/smoke.fplan" --train --backend cuda --check-against-cpu --steps 2 \
      --eval-interval 2 --eval-batches 1 --data synthetic:seed=11 --save-dir "$scratch/smoke-check" \
      >"$scratch/smoke-check.txt" 2>&1; then
    record "smoke train_step (checked)" PASS "$(tail -n 1 "$scratch/smoke-check.txt")"
  else
    record "smoke train_step (checked)" FAIL "$(tail -n 1 "$scratch/smoke-check.txt")"
  fi
  cat "$scratch/smoke-check.txt"

  echo "== 3. bench-1gpu model (2 x 2048 tokens): init + 1 train_step, every instruction checked"
  local rc=0
  timeout "${BENCH_CHECK_TIMEOUT:-300}" "$run_sh" "$here/plans/bench-check.fplan" --train --backend cuda \
      --check-against-cpu --steps 1 --eval-interval 0 --data synthetic:seed=11 \
      --save-dir "$scratch/bench-check" >"$scratch/bench-check.txt" 2>&1 || rc=$?
  if [[ $rc -eq 0 ]]; then
    record "bench-1gpu train_step (checked)" PASS "$(tail -n 1 "$scratch/bench-check.txt")"
  elif [[ $rc -eq 124 ]]; then
    record "bench-1gpu train_step (checked)" TIMEOUT "after ${BENCH_CHECK_TIMEOUT:-300} s: $(grep -c '^fusion-run: checked' "$scratch/bench-check.txt") program run(s) checked"
  else
    record "bench-1gpu train_step (checked)" FAIL "$(tail -n 1 "$scratch/bench-check.txt")"
  fi
  cat "$scratch/bench-check.txt"

  echo "== 4. smoke: 200 steps on the GPU and on the CPU"
  local ok=1
  for backend in cuda cpu; do
    timeout 200 "$run_sh" "$here/plans/smoke.fplan" --train --backend "$backend" --steps 200 --eval-interval 0 \
      --data synthetic:seed=11 --save-dir "$scratch/smoke-$backend" --log-interval 50 \
      --metrics "$scratch/smoke-$backend.jsonl" >"$scratch/smoke-$backend.txt" 2>&1 || ok=0
    tail -n 3 "$scratch/smoke-$backend.txt"
  done
  if [[ $ok -eq 1 ]] && python3 - "$scratch/smoke-cuda.jsonl" "$scratch/smoke-cpu.jsonl" >"$scratch/curve.txt" <<'PY'
import json, sys
def losses(path):
    return [r["loss"] for r in map(json.loads, open(path)) if r["type"] == "train"]
gpu, cpu = losses(sys.argv[1]), losses(sys.argv[2])
assert len(gpu) == len(cpu) == 200, (len(gpu), len(cpu))
diff = [abs(g - c) for g, c in zip(gpu, cpu)]
worst = max(range(200), key=lambda i: diff[i])
mean10 = lambda xs: sum(xs[-10:]) / 10
print("loss at step 1 / 50 / 100 / 200: gpu %.4f %.4f %.4f %.4f, cpu %.4f %.4f %.4f %.4f"
      % (gpu[0], gpu[49], gpu[99], gpu[199], cpu[0], cpu[49], cpu[99], cpu[199]))
print("largest |gpu - cpu| %.4f at step %d; last-10-step means gpu %.4f cpu %.4f"
      % (diff[worst], worst + 1, mean10(gpu), mean10(cpu)))
# Tracking: the same start, and the curves end within 2% of each other.
sys.exit(0 if diff[0] < 1e-3 and abs(mean10(gpu) - mean10(cpu)) < 0.02 * mean10(cpu) else 1)
PY
  then
    record "smoke 200 steps gpu vs cpu" PASS "$(tail -n 1 "$scratch/curve.txt")"
  else
    record "smoke 200 steps gpu vs cpu" FAIL "$(tail -n 1 "$scratch/curve.txt" 2>/dev/null || echo 'a run failed')"
  fi
  cat "$scratch/curve.txt" 2>/dev/null || true

  echo "== summary"
  printf '%s\n' "${summary[@]}"
  return $failed
}

case "${1:-}" in
  pack) shift; pack "$@" ;;
  run) shift; run "$@" ;;
  *) sed -n '2,/^set -e/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" | sed '$d' >&2; exit 2 ;;
esac
