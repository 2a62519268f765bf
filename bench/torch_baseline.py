#!/usr/bin/env python3
"""Throughput of the PyTorch FusionLLM (bench/fusionllm_torch.py): forward + backward
(+ optionally an AdamW step) per micro-batch on synthetic §14.3 rows, bf16 autocast.

    python3 bench/torch_baseline.py configs/bench-1gpu.yaml --batch 4 --steps 10 [--compile]

Prints tokens/s (timed steps only, after --warmup untimed ones), peak GPU memory and the
last loss. This is the baseline of issue 6, not our runtime: the optimizer here is plain
AdamW (not NorMuon), there is no activation recompute, and the MoE / GDN chunk loops run
in Python.
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusionllm_torch as ft  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("--batch", type=int, help="rows per micro-batch (default micro_batch_size)")
    ap.add_argument("--seq-len", type=int, help="T (default max_seq_len)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ap.add_argument("--compile", action="store_true", help="torch.compile each block")
    ap.add_argument("--optim", action="store_true", help="include a fused AdamW step")
    ap.add_argument("--gdn", choices=("chunked", "recurrent"), default="chunked")
    args = ap.parse_args()

    cfg = ft.FusionConfig.from_yaml(args.config)
    B = args.batch or cfg.micro_batch_size
    T = args.seq_len or cfg.max_seq_len
    dev = torch.device(args.device)
    model = ft.FusionLLM(cfg, gdn_mode=args.gdn).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    if args.compile:
        for i, blk in enumerate(model.layers):
            model.layers[i] = torch.compile(blk)
        for m in model.mtp:
            m.block = torch.compile(m.block)
    opt = None
    if args.optim:
        kw = {"fused": True} if dev.type == "cuda" else {}
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **kw)
    batches = [ft.synthetic_rows(cfg.seed, cfg.vocab_size, B, T, s).to(dev) for s in range(4)]
    ctx = (torch.autocast(device_type=dev.type, dtype=torch.bfloat16) if not args.fp32
           else torch.autocast(device_type=dev.type, enabled=False))

    def step(s):
        tok = batches[s % len(batches)]
        with ctx:
            out = model(tok)
        out["loss"].backward()
        if opt:
            opt.step()
            opt.zero_grad(set_to_none=True)
        else:
            for p in model.parameters():
                p.grad = None
        return out

    t_first = time.time()
    for s in range(args.warmup):
        step(s)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    warm_s = time.time() - t_first
    t0 = time.time()
    for s in range(args.steps):
        out = step(args.warmup + s)
    loss = out["loss"].item()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.time() - t0
    tok_s = B * T * args.steps / dt
    mem = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else float("nan")
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    print(f"{os.path.basename(args.config)}: {n_params / 1e6:.1f} M params, B={B} T={T}, "
          f"{'fp32' if args.fp32 else 'bf16 autocast'}{', compiled' if args.compile else ''}"
          f"{', +AdamW' if opt else ''}, GDN {args.gdn}, torch {torch.__version__} on {name}")
    print(f"  warmup {args.warmup} steps {warm_s:.1f} s; {args.steps} steps {dt:.2f} s = "
          f"{dt / args.steps * 1e3:.1f} ms/step, {tok_s:,.0f} tokens/s, peak {mem:.1f} GiB, "
          f"last loss {loss:.4f}")


if __name__ == "__main__":
    main()
