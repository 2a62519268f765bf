#!/usr/bin/env python3
"""Compare fusion-run's loss with an independent PyTorch model (bench/fusionllm_torch.py).

Two exact comparisons, both on batches regenerated bit-exactly in Python from the §14.3
synthetic generator (splitmix64, fields (seed, s, rank, a, b, draw_idx)):

  checkpoint mode (default): CHECKPOINT is a checkpoint dir written by `fusion-run --train`,
    or `latest` (with --save-dir). Let k = trainer.json's step.
      ours:    fusion-run TRAIN.fplan --train --resume CHECKPOINT --steps k+1
                 --save-dir TMP --eval-interval 1 --metrics TMP/metrics.jsonl
               The train line of step k+1 carries loss / main_loss of step s=k computed with
               the checkpoint's weights (train_step reports the loss before its update); the
               eval line carries val_loss of the weights after that step, which the run saves
               as TMP/step_{k+1}.
      PyTorch: load CHECKPOINT/model.safetensors, the §8 loss of step s=k's n_acc
               micro-batches (s=k, rank 0, a); then load TMP/step_{k+1}/model.safetensors,
               the token-weighted main-head CE over the synthetic validation batches
               (step field 2^64-1-i, a=0).
  --init mode: no checkpoint. fusion-run runs a `--mode=grad` plan: `--program init
    --program forward_grad --data synthetic:seed=S --batch-index N`, dumping every weight,
    router bias, loss, main_loss and every gradient (`grad:<name>` outputs) with
    --dump-tensor; PyTorch loads the dumped weights and compares loss, main_loss and all
    parameter gradients (autograd) on the same micro-batch (s=N, rank 0, a=0).

Tolerance: relative 1e-4 with PyTorch in fp32/fp64 on the CPU, 2e-2 with --bf16 (autocast,
meant for a GPU). Exit status 0 = all compared quantities within tolerance, 1 = mismatch,
2 = usage / tool error.

Examples:
  scripts/interop_check.py /tmp/ck/step_00000003 --config configs/smoke.yaml
  scripts/interop_check.py latest --save-dir /tmp/ck
  scripts/interop_check.py --init --config configs/smoke.yaml --batch-index 5 --dtype fp64
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import fusionllm_torch as ft  # noqa: E402


def die(msg: str, code: int = 2):
    print(f"interop_check: error: {msg}", file=sys.stderr)
    sys.exit(code)


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        die(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-4000:]}")
    return r.stdout


def parse_data_spec(spec: str):
    """synthetic[:seed=S] → seed (None if not given)."""
    if not spec.startswith("synthetic"):
        die(f"only synthetic data can be regenerated in Python, got {spec!r}")
    seed = None
    rest = spec[len("synthetic"):].lstrip(":")
    for kv in filter(None, rest.split(",")):
        k, _, v = kv.partition("=")
        if k == "seed":
            seed = int(v, 0)
    return seed


def resolve_checkpoint(ck: str, save_dir: str | None) -> str:
    if ck == "latest":
        if not save_dir:
            die("`latest` needs --save-dir")
        with open(os.path.join(save_dir, "latest")) as f:
            name = f.read().strip()
        ck = name if os.path.isabs(name) else os.path.join(save_dir, name)
    if not os.path.isfile(os.path.join(ck, "trainer.json")):
        die(f"{ck} is not a checkpoint directory (no trainer.json)")
    return os.path.abspath(ck)


def cmp_row(name, ours, theirs, rtol):
    d = theirs - ours
    rel = abs(d) / max(abs(ours), 1e-30)
    ok = rel <= rtol and math.isfinite(ours) and math.isfinite(theirs)
    print(f"  {name:<12} {ours:>16.9f} {theirs:>16.9f} {d:>+13.3e} {rel:>10.3e}  {'ok' if ok else 'MISMATCH'}")
    return ok


def header():
    print(f"  {'quantity':<12} {'fusion-run':>16} {'pytorch':>16} {'diff':>13} {'rel':>10}")


def make_model(cfg, args):
    model = ft.FusionLLM(cfg, gdn_mode=args.gdn)
    if args.dtype == "fp64":
        model = model.double()
    return model.to(args.device)


def autocast(args):
    if args.bf16:
        return torch.autocast(device_type=torch.device(args.device).type, dtype=torch.bfloat16)
    return torch.autocast(device_type="cpu", enabled=False)


def load_weights(model, sd, args):
    dt = torch.float64 if args.dtype == "fp64" else torch.float32
    model.load_state_dict({k: v.to(dt) for k, v in sd.items()}, strict=True)


# ---------------------------------------------------------------------------------------


def compare_logits(z_ours, z_ref, args, what):
    """Per-position logits: fp32 judged by max |diff| / max |z| (rtol); under --bf16 by the
    relative L2 error (2e-2), since a bf16 rounding can flip a token's MoE routing and move
    that one position's logits a lot (shown: the 99.9th percentile |diff| and how often the
    argmax agrees)."""
    d = (z_ours - z_ref).abs()
    diff = float(d.max())
    scale = float(z_ref.abs().max())
    rel = diff / max(scale, 1e-30)
    rel_l2 = float((z_ours - z_ref).norm()) / max(float(z_ref.norm()), 1e-30)
    flat = d.reshape(-1)
    k = max(1, int(round(0.999 * flat.numel())))
    p999 = float(flat.kthvalue(k).values)
    agree = float((z_ours.argmax(-1) == z_ref.argmax(-1)).double().mean())
    if args.bf16:
        ok, judged = rel_l2 <= 2e-2, f"relative L2 {rel_l2:.3e} (tolerance 0.02)"
    else:
        ok, judged = rel <= args.rtol, f"max relative {rel:.3e} (tolerance {args.rtol:g})"
    print(f"  logits [{', '.join(str(x) for x in z_ours.shape)}] {what}: max |diff| {diff:.3e} "
          f"(max |z| {scale:.3f}), relative L2 {rel_l2:.3e}, p99.9 |diff| {p999:.3e}, argmax "
          f"agrees at {100 * agree:.2f}% of positions; {judged}  {'ok' if ok else 'MISMATCH'}")
    return ok


def check_checkpoint(args) -> bool:
    ck = resolve_checkpoint(args.checkpoint, args.save_dir)
    with open(os.path.join(ck, "trainer.json")) as f:
        trainer = json.load(f)
    k = int(trainer["step"])
    work = args.work or tempfile.mkdtemp(prefix="interop_")
    os.makedirs(work, exist_ok=True)
    cfg_path = args.config
    if not cfg_path:
        cfg_path = os.path.join(work, "config.yaml")
        with open(cfg_path, "w", encoding="utf-8") as f:
            f.write(trainer["config_text"])
    cfg = ft.FusionConfig.from_yaml(cfg_path)
    doc = ft.load_yaml(cfg_path)
    tr = doc.get("training") or {}
    for key in ("batch_size_schedule_enabled", "seq_len_schedule_enabled"):
        if tr.get(key):
            die(f"{key} is not supported by this check")
    if args.data:
        seed = parse_data_spec(args.data)
    else:
        data = trainer.get("data") or {}
        if data.get("format") != "synthetic":
            die(f"checkpoint trained on {data.get('format')!r} data; pass --data synthetic:seed=S")
        seed = data.get("seed")
    seed = cfg.seed if seed is None else seed
    spec = f"synthetic:seed={seed}"
    B, n_acc, T, V = cfg.micro_batch_size, cfg.gradient_accumulation_steps, cfg.max_seq_len, cfg.vocab_size
    n_val = args.val_batches if args.val_batches is not None else int(tr.get("eval_max_batches", 8))

    # --- ours ----------------------------------------------------------------------------
    plan = args.plan or os.path.join(work, "train.fplan")
    if not args.plan:
        run([args.fusionc, cfg_path, "-o", plan])
    out_dir = os.path.join(work, "resume")
    shutil.rmtree(out_dir, ignore_errors=True)
    metrics = os.path.join(work, "metrics.jsonl")
    if os.path.exists(metrics):
        os.remove(metrics)
    cmd = [args.fusion_run, plan, "--train", "--resume", ck, "--steps", str(k + 1),
           "--save-dir", out_dir, "--save-interval", "0", "--keep-last", "0",
           "--eval-interval", "1", "--eval-batches", str(n_val), "--data", spec,
           "--val-data", spec, "--metrics", metrics, "--log-interval", "1000000"]
    if args.force_resume:
        cmd.append("--force-resume")
    print("ours:   ", " ".join(cmd))
    run(cmd)
    train_line = eval_line = None
    with open(metrics) as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("type") == "train" and rec.get("step") == k + 1:
                train_line = rec
            if rec.get("type") == "eval" and rec.get("step") == k + 1:
                eval_line = rec
    if train_line is None or eval_line is None:
        die(f"no train/eval metrics for step {k + 1} in {metrics}")
    if train_line.get("skipped"):
        print("note: fusion-run skipped that step (non-finite loss or gradient norm)")

    # --- PyTorch -------------------------------------------------------------------------
    model = make_model(cfg, args)
    load_weights(model, ft.load_safetensors(os.path.join(ck, "model.safetensors")), args)
    mbs = [ft.synthetic_rows(seed, V, B, T, k, 0, a) for a in range(n_acc)]
    with torch.no_grad(), autocast(args):
        got = ft.step_loss(model, mbs, step=k, world_size=cfg.n_gpus)
    after = os.path.join(out_dir, f"step_{k + 1:08d}", "model.safetensors")
    load_weights(model, ft.load_safetensors(after), args)
    ce_sum, n_tok = 0.0, 0
    with torch.no_grad(), autocast(args):
        for i in range(n_val):
            tok = ft.synthetic_val_rows(seed, V, B, T, i).to(args.device)
            tgt = ft.targets_from_tokens(tok, cfg.pad_token_id, cfg.eos_token_id)
            o = model(tok, tgt, inv_counts=torch.ones(1 + cfg.mtp_depth))
            ce_sum += float(o["main_loss"])
            n_tok += int((tgt[:, 1:] >= 0).sum())
    val = ce_sum / n_tok

    print(f"checkpoint {ck} (step {k}), data {spec}, B={B} n_acc={n_acc} T={T}; PyTorch "
          f"{args.dtype}{' + bf16 autocast' if args.bf16 else ''} on {args.device}, GDN {args.gdn}")
    print(f"step s={k} on the checkpoint weights; val on the step-{k + 1} weights ({n_val} batches)")
    header()
    ok = cmp_row("loss", float(train_line["loss"]), got["loss"], args.rtol)
    ok &= cmp_row("main_loss", float(train_line["main_loss"]), got["main_loss"], args.rtol)
    ok &= cmp_row("val_loss", float(eval_line["val_loss"]), val, args.rtol)
    print(f"  (PyTorch parts: balance {got['balance']:.6e}, "
          + ", ".join(f"mtp{j + 1} {got[f'mtp_{j}']:.6f}" for j in range(cfg.mtp_depth)) + ")")

    # Per-position logits of the checkpoint's weights on micro-batch (s=k, a=0): the plan's
    # `logits` program (fusion-run --program init --checkpoint CK --program logits).
    desc = json.loads(run([args.fusion_run, plan, "--dump-plan"]))
    lprog = next((p for p in desc["programs"] if p["name"] == "logits"), None)
    if lprog is None:
        print("  logits: the plan has no 'logits' program (compiled by an older fusionc); skipped")
    else:
        lname = desc["buffers"][lprog["outputs"][0]["buffer"]]["name"]
        lfile = os.path.join(work, "logits.npy")
        run([args.fusion_run, plan, "--program", "init", "--checkpoint", ck, "--program", "logits",
             "--data", spec, "--batch-index", str(k), "--dump-tensor", f"{lname}={lfile}"])
        load_weights(model, ft.load_safetensors(os.path.join(ck, "model.safetensors")), args)
        tok = ft.synthetic_rows(seed, V, B, T, k, 0, 0).to(args.device)
        with torch.no_grad(), autocast(args):
            z_ref = model(tok, return_logits=True)["logits"].double().cpu()
        z_ours = torch.from_numpy(np.load(lfile).astype(np.float64)).reshape(z_ref.shape)
        ok &= compare_logits(z_ours, z_ref, args, f"of micro-batch (s={k}, a=0)")
    if not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return ok


def check_init(args) -> bool:
    if not args.config:
        die("--init needs --config")
    cfg = ft.FusionConfig.from_yaml(args.config)
    seed = parse_data_spec(args.data) if args.data else None
    seed = cfg.seed if seed is None else seed
    spec = f"synthetic:seed={seed}"
    work = args.work or tempfile.mkdtemp(prefix="interop_")
    os.makedirs(work, exist_ok=True)
    plan = args.plan or os.path.join(work, "grad.fplan")
    if not args.plan:
        run([args.fusionc, args.config, "--mode=grad", "-o", plan])
    desc = json.loads(run([args.fusion_run, plan, "--dump-plan"]))
    bufs = desc["buffers"]
    prog = next((p for p in desc["programs"] if p["name"] == "forward_grad"), None)
    if prog is None:
        die(f"{plan} has no forward_grad program (compile with --mode=grad)")
    dumps = {}  # key → (buffer name, file)
    for b in bufs:
        if b["role"] in ("Weight", "ModelBuffer"):
            dumps["w:" + b["name"]] = b["name"]
    for o in prog["outputs"]:
        dumps["o:" + o["name"]] = bufs[o["buffer"]]["name"]
    # The per-position logits of the main head, from the plan's `logits` program (grad plans
    # of this fusionc carry it) on the same rows.
    # (A second run: programs share the transient arena, so logits would overwrite the
    # gradients; init is deterministic, so both runs see the same weights.)
    lprog = next((p for p in desc["programs"] if p["name"] == "logits"), None)
    cmd = [args.fusion_run, plan, "--program", "init", "--program", "forward_grad",
           "--data", spec, "--batch-index", str(args.batch_index)]
    files = {}
    for i, (key, bname) in enumerate(dumps.items()):
        files[key] = os.path.join(work, f"t{i}.npy")
        cmd += ["--dump-tensor", f"{bname}={files[key]}"]
    print("ours:   ", " ".join(cmd[:9]), f"... ({len(dumps)} --dump-tensor)")
    run(cmd)
    if lprog is not None:
        files["l:logits"] = os.path.join(work, "logits.npy")
        lname = bufs[lprog["outputs"][0]["buffer"]]["name"]
        run([args.fusion_run, plan, "--program", "init", "--program", "logits", "--data", spec,
             "--batch-index", str(args.batch_index), "--dump-tensor",
             f"{lname}={files['l:logits']}"])
    arr = {key: np.load(f) for key, f in files.items()}
    sd = {key[2:]: torch.from_numpy(a.copy()) for key, a in arr.items() if key.startswith("w:")}
    loss_ours = float(arr["o:loss"].reshape(-1)[0])
    main_ours = float(arr["o:main_loss"].reshape(-1)[0])

    model = make_model(cfg, args)
    load_weights(model, sd, args)

    in_tok = next(bufs[i["buffer"]] for i in prog["inputs"] if i["name"] == "tokens")
    B, T1 = in_tok["shape"]
    tok = ft.synthetic_rows(seed, cfg.vocab_size, B, T1 - 1, args.batch_index, 0, 0).to(args.device)
    # The plan scales each MoE layer's row-mean L_bal by α/(n_acc·W_dp) (a micro-batch's
    # share of the step's mean_rows) also in forward/grad mode, where the CE terms are
    # normalised by this one micro-batch's counts; mirror that, and show the §8 value of a
    # step made of this micro-batch alone (mean over its B rows) for reference.
    plan_rows = B * cfg.gradient_accumulation_steps * cfg.n_gpus
    with autocast(args):
        o = model(tok, n_rows=plan_rows, coord=(args.batch_index, 0, 0),
                  return_logits=lprog is not None)
        o["loss"].backward()
    with torch.no_grad(), autocast(args):
        o_b = model(tok, n_rows=B, coord=(args.batch_index, 0, 0))
    print(f"init weights of {plan}, micro-batch (s={args.batch_index}, rank 0, a=0) of {spec}, "
          f"B={B} T={T1 - 1}; PyTorch {args.dtype}{' + bf16 autocast' if args.bf16 else ''} "
          f"on {args.device}, GDN {args.gdn}")
    header()
    ok = cmp_row("loss", loss_ours, o["loss"].item(), args.rtol)
    ok &= cmp_row("main_loss", main_ours, o["main_loss"].item(), args.rtol)
    print(f"  (balance term with mean_rows over B*n_acc*W_dp = {plan_rows} rows as the plan does; "
          f"over this micro-batch's B = {B} rows the PyTorch loss is {float(o_b['loss']):.9f})")
    if lprog is not None:
        z_ours = torch.from_numpy(arr["l:logits"].astype(np.float64))
        z_ref = o["logits"].detach().double().cpu().reshape(z_ours.shape)
        ok &= compare_logits(z_ours, z_ref, args, "(init weights)")

    # gradients: relative L2 error per tensor
    params = dict(model.named_parameters())
    worst, rows, missing = 0.0, [], []
    for key, a in arr.items():
        if not key.startswith("o:grad:"):
            continue
        name = key[len("o:grad:"):]
        p = params.get(name)
        if p is None or p.grad is None:
            missing.append(name)
            continue
        g_ref = p.grad.detach().double().cpu()
        g_our = torch.from_numpy(a.astype(np.float64)).reshape(g_ref.shape)
        den = float(g_ref.norm())
        err = float((g_our - g_ref).norm()) / max(den, 1e-30) if den > 0 else float(g_our.norm())
        rows.append((err, name, den))
        worst = max(worst, err)
    rows.sort(reverse=True)
    n_grad = len(rows)
    gtol = args.grad_rtol if args.grad_rtol is not None else 1e-3
    if args.bf16 and args.grad_rtol is None:
        # bf16 activations flip near-tied routing choices and move small gradients a lot
        # (0.24 seen on an H100 for the smoke model): shown, not judged.
        gok = not missing
        verdict = "not judged under --bf16 (give --grad-rtol to judge)"
    else:
        gok = worst <= gtol and not missing
        verdict = f"(tolerance {gtol:g})  {'ok' if gok else 'MISMATCH'}"
    print(f"  gradients: {n_grad} tensors, worst relative L2 error {worst:.3e} {verdict}")
    for err, name, den in rows[: args.show]:
        print(f"    {err:10.3e}  |g|={den:10.3e}  {name}")
    if missing:
        print(f"  no PyTorch gradient for: {', '.join(missing)}")
    if not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return ok and gok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__[__doc__.index("Two exact"):])
    ap.add_argument("checkpoint", nargs="?", help="checkpoint dir or `latest` (checkpoint mode)")
    ap.add_argument("--init", action="store_true", help="compare at init weights incl. gradients")
    ap.add_argument("--config", help="YAML config (default: the checkpoint's config_text)")
    ap.add_argument("--save-dir", help="where `latest` lives")
    ap.add_argument("--data", help="synthetic[:seed=S] (default: the checkpoint's data state / config seed)")
    ap.add_argument("--batch-index", type=int, default=0, help="--init: micro-batch s=N")
    ap.add_argument("--val-batches", type=int, help="validation micro-batches (default eval_max_batches)")
    ap.add_argument("--plan", help="use this plan instead of compiling one")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"), help="fusionc / fusion-run dir")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=("fp32", "fp64"), default="fp32", help="PyTorch master dtype")
    ap.add_argument("--bf16", action="store_true", help="PyTorch under bf16 autocast (rtol 2e-2)")
    ap.add_argument("--gdn", choices=("chunked", "recurrent"), default="chunked")
    ap.add_argument("--rtol", type=float, help="loss tolerance (default 1e-4, 2e-2 with --bf16)")
    ap.add_argument("--grad-rtol", type=float, help="gradient tolerance (default 1e-3; none with --bf16)")
    ap.add_argument("--show", type=int, default=5, help="--init: list the N worst gradients")
    ap.add_argument("--force-resume", action="store_true")
    ap.add_argument("--work", help="keep intermediate files here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    args.fusionc = os.path.join(args.bin, "fusionc")
    args.fusion_run = os.path.join(args.bin, "fusion-run")
    if args.rtol is None:
        args.rtol = 2e-2 if args.bf16 else 1e-4
    torch.manual_seed(0)
    if not args.bf16:  # fp32 means fp32: no TF32 in GEMMs or the GDN convolution
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if args.init == bool(args.checkpoint):
        die("give either a CHECKPOINT (dir or `latest`) or --init")
    ok = check_init(args) if args.init else check_checkpoint(args)
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
