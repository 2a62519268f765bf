#!/usr/bin/env python3
"""Training throughput of a compiled FusionLLM plan on the GPU (issue 6 / 8), measured the
way bench/torch_baseline.py measures the PyTorch baseline, so the two sit side by side.

    python3 bench/fusion_bench.py --run .device/run.sh --plan PLAN.fplan \\
        --flops-per-token 2.06e9 --steps 6 --warmup 2 --json out.json

Runs `fusion-run PLAN --train --backend cuda --no-save --eval-interval 0` for --steps whole
optimizer steps on synthetic rows (MODEL.md §14.3) and reports tokens/s over the steps
after the first --warmup ones (from the trainer's metrics: tokens and elapsed time per
step), model TFLOP/s and MFU against --peak-tflops with the FLOPs/token fusionc --report
prints (MODEL.md §18), the GPU's peak memory in use (nvidia-smi, sampled every 0.2 s: the
process's arenas, workspaces and CUDA context) and the time to the first step's end
(start-up: plan load, arena allocation, module loading, first-run costs).
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time


def gpu_memory_used_mib():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                              "-i", os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]],
                             capture_output=True, text=True, timeout=5).stdout
        return float(out.strip().splitlines()[0])
    except Exception:  # noqa: BLE001
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="fusion-run (or .device/run.sh)")
    ap.add_argument("--plan", required=True)
    ap.add_argument("--flops-per-token", type=float, required=True,
                    help="training FLOPs per token (fusionc CONFIG --report: 'training (3 x forward)')")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--label", default="fusion")
    ap.add_argument("--backend", default="cuda", help="cuda (default) or cpu (a quick local test)")
    ap.add_argument("extra", nargs="*", help="more fusion-run flags (after --)")
    args = ap.parse_args()
    if args.steps <= args.warmup:
        sys.exit("fusion_bench.py: --steps must exceed --warmup")

    baseline = gpu_memory_used_mib()
    peak = [baseline or 0.0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            used = gpu_memory_used_mib()
            if used is not None:
                peak[0] = max(peak[0], used)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        metrics = os.path.join(tmp, "metrics.jsonl")
        cmd = [args.run, args.plan, "--train", "--backend", args.backend, "--no-save", "--eval-interval", "0",
               "--steps", str(args.steps), "--log-interval", "1", "--data", "synthetic:seed=1",
               "--save-dir", os.path.join(tmp, "ckpt"), "--metrics", metrics] + args.extra
        print("+ " + " ".join(cmd), flush=True)
        started = time.time()
        proc = subprocess.run(cmd)
        wall = time.time() - started
        done.set()
        sampler.join()
        if proc.returncode != 0:
            sys.exit("fusion_bench.py: fusion-run failed (exit %d)" % proc.returncode)
        steps = [json.loads(line) for line in open(metrics)]
        steps = [s for s in steps if s["type"] == "train"]
    if len(steps) < args.steps:
        sys.exit("fusion_bench.py: %d steps recorded, %d expected" % (len(steps), args.steps))
    first, last = steps[args.warmup - 1], steps[-1]
    tokens = last["tokens"] - first["tokens"]
    seconds = last["elapsed_s"] - first["elapsed_s"]
    tps = tokens / seconds
    tflops = tps * args.flops_per_token / 1e12
    result = {
        "label": args.label,
        "plan": os.path.basename(args.plan),
        "date": datetime.date.today().isoformat(),
        "steps": args.steps,
        "warmup_steps": args.warmup,
        "timed_tokens": tokens,
        "timed_s": round(seconds, 3),
        "tokens_per_s": round(tps, 1),
        "flops_per_token": args.flops_per_token,
        "tflops": round(tflops, 2),
        "mfu": round(tflops / args.peak_tflops, 4),
        "peak_mem_gib": round(peak[0] / 1024, 2) if peak[0] else None,
        "idle_mem_gib": round((baseline or 0) / 1024, 2),
        "startup_to_first_step_s": round(steps[0]["elapsed_s"], 2),
        "wall_s": round(wall, 1),
        "losses": [round(s["loss"], 4) for s in steps],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
