#!/usr/bin/env python3
"""bench-1gpu side by side (issues 6 and 8): the PyTorch torch.compile baseline and our
compiled plan, in one process tree, one after the other on the same GPU, so the two numbers
come from one device call.

    python3 bench/side_by_side.py --run .device/run.sh --plan .device/plans/bench-1gpu.fplan \\
        --config configs/bench-1gpu.yaml --out $OUT --commit $(git rev-parse --short HEAD)

Runs bench/torch_baseline.py CONFIG --mode compile (and --mode eager with --eager), then
bench/fusion_bench.py on PLAN with the baseline's FLOPs/token (MODEL.md §18), each under a
timeout, and writes OUT/torch-compile.json, OUT/fusion.json and OUT/side_by_side.json:
device, date, commit, both results and speedup_vs_torch_compile = fusion tokens/s over
torch.compile tokens/s. A side that fails or times out is reported as such (its log is in
OUT); the other side's numbers are still written.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_logged(cmd, log_path, timeout):
    """Runs `cmd`, its output to `log_path`; returns 'ok', 'failed (exit N)' or 'timed out'."""
    print("+ " + " ".join(cmd), flush=True)
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timed out after %d s" % timeout
    return "ok" if proc.returncode == 0 else "failed (exit %d)" % proc.returncode


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="fusion-run (or .device/run.sh)")
    ap.add_argument("--plan", required=True, help="the plan compiled from --config")
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True, help="directory for logs and JSON")
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per side")
    ap.add_argument("--warmup", type=int, default=1, help="untimed first steps per side")
    ap.add_argument("--eager", action="store_true", help="also run the eager baseline")
    ap.add_argument("--torch-timeout", type=int, default=240)
    ap.add_argument("--fusion-timeout", type=int, default=240)
    ap.add_argument("--flops-per-token", type=float, default=2.05906e9,
                    help="used when the baseline gives none (bench-1gpu, MODEL.md §18)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    py = sys.executable

    result = {
        "benchmark": os.path.basename(args.config) + " as configured",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": args.commit,
        "same_call": True,
    }
    try:
        name = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        result["device"] = name.splitlines()[0] if name else "unknown"
    except (OSError, subprocess.SubprocessError):
        result["device"] = "unknown"

    modes = ["compile"] + (["eager"] if args.eager else [])
    for mode in modes:
        path = os.path.join(args.out, "torch-%s.json" % mode)
        status = run_logged([py, os.path.join(HERE, "torch_baseline.py"), args.config, "--mode", mode,
                             "--steps", str(args.steps - args.warmup), "--warmup", str(args.warmup),
                             "--json", path],
                            os.path.join(args.out, "torch-%s.log" % mode), args.torch_timeout)
        data = load(path) if status == "ok" else None
        result["torch_" + mode] = {"status": status}
        if data:
            result["torch_" + mode].update({k: data.get(k) for k in (
                "tokens_per_s", "mfu", "tflops", "peak_mem_gib", "warmup_s", "setup_s",
                "flops_per_token", "paths", "torch_version")})
    flops = (result["torch_compile"].get("flops_per_token") or args.flops_per_token)

    path = os.path.join(args.out, "fusion.json")
    status = run_logged([py, os.path.join(HERE, "fusion_bench.py"), "--run", args.run,
                         "--plan", args.plan, "--flops-per-token", str(flops),
                         "--steps", str(args.steps), "--warmup", str(args.warmup), "--json", path],
                        os.path.join(args.out, "fusion.log"), args.fusion_timeout)
    data = load(path) if status == "ok" else None
    result["fusion"] = {"status": status}
    if data:
        result["fusion"].update(data)
        result["tokens_per_s"] = data["tokens_per_s"]
        result["mfu"] = data["mfu"]
        result["peak_mem_gib"] = data.get("peak_mem_gib")
        for mode in modes:
            tps = result["torch_" + mode].get("tokens_per_s")
            if tps:
                result["speedup_vs_torch_" + mode] = round(data["tokens_per_s"] / tps, 4)

    with open(os.path.join(args.out, "side_by_side.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    ok = all(result[k]["status"] == "ok" for k in ["fusion"] + ["torch_" + m for m in modes])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
