#!/usr/bin/env python3
"""Training throughput of the PyTorch FusionLLM baseline (issue 6): whole optimizer steps
of the configured run (bench/fusionllm_torch.py model, bench/torch_optim.py optimizers).

    python3 bench/torch_baseline.py configs/bench-1gpu.yaml --mode compile --json out.json
    python3 bench/torch_baseline.py configs/bench-1gpu.yaml --mode eager  --json out.json
    /usr/bin/python3 bench/torch_baseline.py configs/smoke.yaml --device cpu --check

One optimizer step = gradient_accumulation_steps micro-batches of micro_batch_size rows ×
max_seq_len tokens (bench-1gpu: 8 × 16 × 2048 = 262,144 tokens) forward + backward under
bf16 autocast (fp32 master weights, fp32 grad accumulation), then the full §12 step: global
grad-norm clip / non-finite skip, NorMuon (batched bf16 Newton–Schulz) + Cautious AdamW with
the WSD factor f(s), router-bias update. Rows are the §14.3 synthetic generator's.

Speed paths (printed at start-up; a failed self-test falls back loudly, --strict-paths
makes it fatal): FlexAttention with block masks (sliding-window and causal MLA, GQA, d_qk ≠
d_v), torch._grouped_mm over expert-sorted tokens, the chunked WY Gated DeltaNet (fp32,
torch.compile'd), a fused softcap-CE (tiles, gradients formed in forward, tile math
compiled). --mode eager runs the model eagerly (only those kernels compiled, as FlexAttention
needs); --mode compile additionally torch.compiles every block (backbone and MTP).

Reported: tokens/s over the timed whole optimizer steps (after --warmup untimed ones),
model TFLOP/s and MFU against --peak-tflops (989, H100 SXM dense bf16) with FLOPs/token
counted as MODEL.md §18 (3 × (2·N_mm + attention + GDN core)), peak memory
(torch.cuda.max_memory_allocated over the timed steps), warm-up/compile time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusionllm_torch as ft  # noqa: E402
import torch_optim as to  # noqa: E402


# ---------------------------------------------------------------------------------------
# FLOPs (MODEL.md §18)
# ---------------------------------------------------------------------------------------


def mla_matmul_params(cfg: ft.FusionConfig) -> int:
    D, H, G = cfg.dim, cfg.n_heads, cfg.n_kv_groups
    dn, dr, dv, dqk = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim, cfg.d_qk
    q = D * cfg.q_lora_rank + cfg.q_lora_rank * H * dqk if cfg.q_lora_rank > 0 else D * H * dqk
    return q + D * (cfg.kv_lora_rank + dr) + cfg.kv_lora_rank * G * (dn + dv) + H * dv * D


def attn_l_eff(T: int, window: int) -> float:
    """Mean number of keys per query: global (T+1)/2, local (W(W+1)/2 + (T−W)W)/T."""
    if window <= 0 or window >= T:
        return (T + 1) / 2
    return (window * (window + 1) / 2 + (T - window) * window) / T


def flops_per_token(cfg: ft.FusionConfig, T: int) -> dict:
    """Training FLOPs per token, MODEL.md §18: 3·(2·N_mm + attention + GDN core), N_mm = matmul
    weights touched per token (active backbone matmuls incl. router, the tied head once per
    head, each MTP module's proj + MLA + FFN matmuls). Attention: 2·H·(d_qk+d_v)·L_eff per MLA
    layer (MTP blocks global over T, as §18.1 counts them). GDN: H_g·(2C(3d_k+2d_h) +
    6d_k d_h + (2/3)C²) per GDN layer."""
    D, V = cfg.dim, cfg.vocab_size
    is_gdn = ft.layer_is_gdn(cfg)
    windows = ft.mla_windows(cfg, is_gdn)
    Hg, Hk, dk, dh, C = cfg.gdn_heads, cfg.gdn_n_k_heads, cfg.gdn_d_state, cfg.gdn_headdim, cfg.gdn_chunk_size
    mla = mla_matmul_params(cfg)
    expert = 3 * D * cfg.moe_inter_dim
    moe = (cfg.n_activated_experts + cfg.n_shared_experts) * expert + cfg.n_routed_experts * D
    dense = 3 * D * cfg.inter_dim
    gdn = 2 * D * Hk * dk + 3 * D * Hg * dh + 2 * D * Hg
    backbone = 0
    attn = 0.0
    gdn_core = 0.0
    per_head_attn = 2 * cfg.n_heads * (cfg.d_qk + cfg.v_head_dim)
    for g, w in zip(is_gdn, windows):
        if g:
            backbone += gdn + dense
            gdn_core += Hg * (2 * C * (3 * dk + 2 * dh) + 6 * dk * dh + (2 / 3) * C * C)
        else:
            backbone += mla + (moe if cfg.n_routed_experts > 0 else dense)
            attn += per_head_attn * attn_l_eff(T, w)
    head = V * D
    mtp = cfg.mtp_depth * (2 * D * D + mla + 3 * D * cfg.mtp_inter_dim + head)
    attn += cfg.mtp_depth * per_head_attn * attn_l_eff(T, 0)
    n_mm = backbone + head + mtp
    fwd = 2 * n_mm + attn + gdn_core
    return {"n_mm": n_mm, "attention_fwd": attn, "gdn_fwd": gdn_core, "train": 3 * fwd,
            "six_n": 6 * n_mm}


# ---------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------


def _gib(x):
    return "n/a" if x is None else f"{x:.1f} GiB"


def set_dynamo_limits():
    try:
        import torch._dynamo as dynamo

        for key in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit",
                    "accumulated_recompile_limit"):
            if hasattr(dynamo.config, key):
                setattr(dynamo.config, key, max(getattr(dynamo.config, key), 256))
    except Exception:  # noqa: BLE001
        pass


def compile_blocks(model: ft.FusionLLM):
    """torch.compile every backbone block and MTP block in place (names unchanged)."""
    blocks = list(model.layers) + [m.block for m in model.mtp]
    for blk in blocks:
        if hasattr(blk, "compile"):
            blk.compile(dynamic=False)
        else:  # pragma: no cover - very old 2.x
            raise RuntimeError("nn.Module.compile missing: PyTorch >= 2.2 needed for --mode compile")
    return len(blocks)


def build(args, cfg: ft.FusionConfig, dev: torch.device, log=print):
    dtype = torch.float32 if args.fp32 else torch.bfloat16
    model = ft.FusionLLM(cfg, gdn_mode=args.gdn).to(dev)
    if args.paths == "reference":
        paths = dict(ft.REFERENCE_PATHS)
        log("paths: reference (plain implementation, no fast paths)")
    else:
        paths = ft.select_fast_paths(dev, dtype, selftest=not args.no_selftest,
                                     strict=args.strict_paths, log=log)
    model.set_paths(paths)
    ft.set_compute_dtype(None if args.fp32 else torch.bfloat16)
    return model, paths


def make_batches(cfg, B, T, n_acc, dev):
    tok = [ft.synthetic_rows(cfg.seed, cfg.vocab_size, B, T, 0, 0, a) for a in range(n_acc)]
    tgt = [ft.targets_from_tokens(t, cfg.pad_token_id, cfg.eos_token_id) for t in tok]
    inv = ft.inverse_counts(torch.cat(tgt, 0), cfg.mtp_depth)
    return [t.to(dev) for t in tok], [t.to(dev) for t in tgt], inv.to(dev)


def train_steps(model, opt, batches, s0, n_steps, ctx, dev, on_step=None):
    """n_steps whole optimizer steps from step s0; returns per-step (seconds, main loss,
    total loss, info)."""
    toks, tgts, inv = batches
    n_rows = sum(t.shape[0] for t in toks)
    out = []
    for s in range(s0, s0 + n_steps):
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=dev)
        main_sum = torch.zeros((), device=dev)
        for tok, tgt in zip(toks, tgts):
            with ctx():
                o = model(tok, tgt, inv, n_rows)
            o["loss"].backward()
            loss_sum += o["loss"].detach().float()
            main_sum += o["main_loss"].detach().float()
        info = opt.step(s, loss_sum)  # syncs once (grad norm)
        opt.zero_grad()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        rec = (dt, float(main_sum), float(loss_sum), info)
        out.append(rec)
        if on_step:
            on_step(s, rec)
    return out


# ---------------------------------------------------------------------------------------
# --check (CPU)
# ---------------------------------------------------------------------------------------


def run_checks(args, cfg, dev):
    torch.manual_seed(0)
    print(f"--check on {dev} with torch {torch.__version__}")
    # 1. GDN chunked (fast form) vs the token recurrence, partial chunk (T=50, C=16), fp64
    g = torch.Generator().manual_seed(1)
    B, H, T, dk, dh = 2, 3, 50, 8, 4
    q = torch.nn.functional.normalize(torch.randn(B, H, T, dk, generator=g, dtype=torch.float64), dim=-1)
    k = torch.nn.functional.normalize(torch.randn(B, H, T, dk, generator=g, dtype=torch.float64), dim=-1)
    v = torch.randn(B, H, T, dh, generator=g, dtype=torch.float64)
    gg = -2.0 * torch.rand(B, H, T, generator=g, dtype=torch.float64)
    beta = torch.rand(B, H, T, generator=g, dtype=torch.float64)
    ins = [x.requires_grad_() for x in (q * dk ** -0.5, k, v, gg, beta)]
    o1 = ft.gdn_chunked_fast(*ins, 16)
    do = torch.randn(o1.shape, generator=g, dtype=torch.float64)
    g1 = torch.autograd.grad(o1, ins, do)
    o2 = ft.gdn_recurrent(*ins)
    g2 = torch.autograd.grad(o2, ins, do)
    err = max([ft._rel_err(o1, o2)] + [ft._rel_err(a, b) for a, b in zip(g1, g2)])
    print(f"  GDN chunked-fast vs recurrence (T=50, C=16, fp64, fwd+bwd): rel err {err:.1e}")
    assert err < 1e-9, err

    # 2. fused softcap-CE vs the reference (loss and gradients)
    h = torch.randn(37, 16, generator=g).requires_grad_()
    W = (torch.randn(64, 16, generator=g) * 0.5).requires_grad_()
    t = torch.randint(0, 64, (37,), generator=g)
    t[3] = -1
    l1 = ft.softcap_ce_fused(h, W, t, 15.0, tile=8, use_compiled=False)
    gh1, gw1 = torch.autograd.grad(l1 * 0.7, (h, W))
    l2 = ft.softcap_ce(h, W, t, 15.0)[0]
    gh2, gw2 = torch.autograd.grad(l2 * 0.7, (h, W))
    err = max(ft._rel_err(l1, l2), ft._rel_err(gh1, gh2), ft._rel_err(gw1, gw2))
    print(f"  fused softcap-CE vs reference (loss, dh, dW): rel err {err:.1e}")
    assert err < 1e-5, err

    # 3. whole model: fast paths (this PyTorch's fallbacks) vs reference, fp32 loss + grads
    m = ft.FusionLLM(cfg).to(dev)
    tok = ft.synthetic_rows(cfg.seed, cfg.vocab_size, 4, cfg.max_seq_len, 0).to(dev)
    params = list(m.parameters())
    o_ref = m(tok)
    gr = torch.autograd.grad(o_ref["loss"], params)
    m.set_paths(ft.select_fast_paths(dev, torch.float32, log=lambda s: print("    " + s)))
    o_fast = m(tok)
    gf = torch.autograd.grad(o_fast["loss"], params)
    err = max([ft._rel_err(o_fast["loss"], o_ref["loss"])] + [ft._rel_err(a, b) for a, b in zip(gf, gr)])
    print(f"  model fast paths vs reference (loss + {len(params)} grads, fp32): rel err {err:.1e}")
    assert err < 1e-4, err

    # 4. batched Newton–Schulz == per-matrix, and near-orthogonal output
    G = torch.randn(6, 48, 32, generator=g)
    Ob = to.newton_schulz5(G)
    Oi = torch.cat([to.newton_schulz5(G[i:i + 1]) for i in range(6)])
    sv = torch.linalg.svdvals(Ob)
    print(f"  Newton-Schulz batched vs single: max diff {float((Ob - Oi).abs().max()):.1e}; "
          f"singular values in [{float(sv.min()):.2f}, {float(sv.max()):.2f}]")
    assert float((Ob - Oi).abs().max()) < 1e-2 and 0.5 < float(sv.min()) and float(sv.max()) < 1.3

    # 5. schedule and FLOP counts against MODEL.md
    tc = to.TrainConfig(total_steps=100, wsd_warmup_frac=0.1, wsd_stable_frac=0.7)
    fs = [to.wsd_factor(s, tc) for s in (0, 9, 10, 79, 80, 99, 100)]
    print(f"  WSD smoke f(0,9,10,79,80,99,100) = {[round(x, 4) for x in fs]}")
    assert all(abs(a - b) < 1e-12 for a, b in zip(fs, [0.1, 1.0, 1.0, 1.0, 1 - 0.9 / 20, 0.1, 0.1])), fs
    here = os.path.dirname(os.path.abspath(__file__))
    for name, want in (("smoke.yaml", 3.29e6), ("bench-1gpu.yaml", 2.06e9)):
        path = os.path.join(here, "..", "configs", name)
        if os.path.exists(path):
            c = ft.FusionConfig.from_yaml(path)
            fl = flops_per_token(c, c.max_seq_len)["train"]
            print(f"  FLOPs/token {name}: {fl / 1e9:.4f} GFLOP (MODEL.md §18: {want / 1e9:.4g})")
            assert abs(fl / want - 1) < 0.005, (name, fl)

    # 6. training: fast paths + the full optimizer, loss finite and decreasing
    n_steps = args.steps if args.steps_given else 8
    B = args.batch or cfg.micro_batch_size
    T = args.seq_len or cfg.max_seq_len
    n_acc = args.accum or cfg.gradient_accumulation_steps
    model, _ = build(args, cfg, dev, log=lambda s: print("    " + s))
    doc = ft.load_yaml(args.config)
    tc = to.TrainConfig.from_dict(doc)
    tc.total_steps = max(n_steps, 10)  # short WSD so the check leaves warm-up quickly
    opt = to.FusionOptimizer(model, tc)
    print("    " + opt.summary())
    batches = make_batches(cfg, B, T, n_acc, dev)
    ctx = lambda: torch.autocast(device_type=dev.type, enabled=False)  # noqa: E731
    recs = train_steps(model, opt, batches, 0, n_steps, ctx, dev, on_step=lambda s, r: print(
        f"    step {s}: loss {r[2]:.4f} (main {r[1]:.4f}), grad norm {r[3]['grad_norm']:.3f}, "
        f"f(s) {r[3]['lr_factor']:.3f}, {r[0]:.2f} s"))
    losses = [r[2] for r in recs]
    assert all(math.isfinite(x) for x in losses), losses
    assert losses[-1] < losses[0] - 0.05, losses
    biases = torch.stack([m.router.bias for m in opt.moe])
    print(f"  training: loss {losses[0]:.4f} -> {losses[-1]:.4f} over {n_steps} steps; "
          f"router bias range [{float(biases.min()):+.4f}, {float(biases.max()):+.4f}]")
    print("CHECK OK")


# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("--mode", choices=("eager", "compile"), default="eager")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, help="rows per micro-batch (default micro_batch_size)")
    ap.add_argument("--seq-len", type=int, help="T (default max_seq_len)")
    ap.add_argument("--accum", type=int, help="micro-batches per step (default gradient_accumulation_steps)")
    ap.add_argument("--steps", type=int, default=5, help="timed optimizer steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed optimizer steps first")
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--check", action="store_true", help="CPU self-check: unit checks + a few steps")
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ap.add_argument("--paths", choices=("fast", "reference"), default="fast")
    ap.add_argument("--no-selftest", action="store_true", help="skip the fast-path self-tests")
    ap.add_argument("--strict-paths", action="store_true", help="a failed fast path is fatal")
    ap.add_argument("--gdn", choices=("chunked", "recurrent"), default="chunked")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    args = ap.parse_args()
    args.steps_given = "--steps" in sys.argv

    cfg = ft.FusionConfig.from_yaml(args.config)
    dev = torch.device(args.device)
    if str(cfg.dtype).lower() in ("fp32", "float32") or args.check:
        args.fp32 = True  # the config's dtype (smoke: fp32 reference numerics)
    if args.check:
        run_checks(args, cfg, dev)
        return
    if args.mode == "compile" and not ft.has_compile():
        sys.exit(f"--mode compile needs torch.compile (PyTorch >= 2.0); this is {torch.__version__}")

    B = args.batch or cfg.micro_batch_size
    T = args.seq_len or cfg.max_seq_len
    n_acc = args.accum or cfg.gradient_accumulation_steps
    tok_step = B * T * n_acc
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"torch {torch.__version__} on {name}; {os.path.basename(args.config)}: "
          f"B={B} T={T} n_acc={n_acc} ({tok_step:,} tokens/step), mode {args.mode}, "
          f"{'fp32' if args.fp32 else 'bf16 autocast, fp32 master weights'}")
    set_dynamo_limits()
    t_setup = time.perf_counter()
    model, paths = build(args, cfg, dev)
    n_params = sum(p.numel() for p in model.parameters())
    tc = to.TrainConfig.from_dict(ft.load_yaml(args.config))
    opt = to.FusionOptimizer(model, tc)
    print(f"params {n_params:,}; optimizer: {opt.summary()}")
    print(f"schedule: WSD total_steps {tc.total_steps}, f(0) = {to.wsd_factor(0, tc):.3f}; "
          f"clip {tc.grad_clip}; muon_lr {tc.muon_lr}, lr {tc.lr}")
    if args.mode == "compile":
        n = compile_blocks(model)
        print(f"compile: torch.compile on {n} blocks (backbone + MTP), dynamic=False")
    else:
        print("eager: model eager; FlexAttention / GDN chunk / CE tile kernels compiled "
              "where the paths above say so")
    fl = flops_per_token(cfg, T)
    print(f"FLOPs/token (MODEL.md §18): {fl['train'] / 1e9:.4f} GFLOP training "
          f"(N_mm {fl['n_mm'] / 1e6:.1f} M, 6·N_mm {fl['six_n'] / 1e9:.3f} GFLOP, attention fwd "
          f"{fl['attention_fwd'] / 1e6:.1f} MFLOP, GDN core fwd {fl['gdn_fwd'] / 1e6:.2f} MFLOP)")
    batches = make_batches(cfg, B, T, n_acc, dev)
    if args.fp32:
        ctx = lambda: torch.autocast(device_type=dev.type, enabled=False)  # noqa: E731
    else:
        ctx = lambda: torch.autocast(device_type=dev.type, dtype=torch.bfloat16)  # noqa: E731

    def show(s, r):
        print(f"  step {s}: {r[0]:.2f} s ({tok_step / r[0]:,.0f} tok/s), loss {r[2]:.4f} "
              f"(main {r[1]:.4f}), grad norm {r[3]['grad_norm']:.3f}"
              f"{' SKIPPED' if r[3]['skipped'] else ''}", flush=True)

    setup_s = time.perf_counter() - t_setup
    t0 = time.perf_counter()
    warm = train_steps(model, opt, batches, 0, args.warmup, ctx, dev, on_step=show)
    warmup_s = time.perf_counter() - t0
    print(f"warm-up: {args.warmup} steps {warmup_s:.1f} s (setup + self-tests {setup_s:.1f} s)")
    peak_all = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    timed = train_steps(model, opt, batches, args.warmup, args.steps, ctx, dev, on_step=show)
    total = sum(r[0] for r in timed)
    tok_s = tok_step * len(timed) / total if timed else float("nan")
    tflops = fl["train"] * tok_s / 1e12
    mfu = tflops / args.peak_tflops
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
    print(f"RESULT {args.mode}: {tok_s:,.0f} tokens/s over {len(timed)} steps "
          f"({total / max(1, len(timed)):.2f} s/step), {tflops:.1f} TFLOP/s, MFU {100 * mfu:.1f}% "
          f"of {args.peak_tflops:g}, peak {_gib(peak)} (incl. warm-up {_gib(peak_all)}), "
          f"warm-up {warmup_s:.1f} s, last loss {timed[-1][2] if timed else float('nan'):.4f}")
    if args.json:
        res = {
            "device": name, "torch_version": torch.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "mode": args.mode, "tokens_per_s": tok_s, "mfu": mfu, "tflops": tflops,
            "peak_mem_gib": peak, "peak_mem_incl_warmup_gib": peak_all, "warmup_s": warmup_s,
            "setup_s": setup_s, "steps": len(timed), "warmup_steps": args.warmup,
            "config": os.path.basename(args.config), "batch": B, "seq_len": T, "accum": n_acc,
            "tokens_per_step": tok_step, "flops_per_token": fl["train"],
            "peak_tflops": args.peak_tflops, "paths": paths,
            "step_times_s": [r[0] for r in warm + timed], "losses": [r[2] for r in warm + timed],
            "main_losses": [r[1] for r in warm + timed], "n_params": n_params,
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
