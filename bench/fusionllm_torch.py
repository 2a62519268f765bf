#!/usr/bin/env python3
"""FusionLLM in plain PyTorch, written from ../shared/spec/MODEL.md (§2-§11, §14.3).

An independent reference for our compiler/runtime (scripts/interop_check.py) and the
speed baseline of issue 6. Parameter and buffer names are the checkpoint names of
MODEL.md §10, so `model.load_state_dict(load_safetensors(".../model.safetensors"))` works
on a checkpoint written by `fusion-run --train`.

    from fusionllm_torch import FusionConfig, FusionLLM, load_safetensors
    cfg = FusionConfig.from_yaml("configs/smoke.yaml")
    model = FusionLLM(cfg)
    model.load_state_dict(load_safetensors("ck/step_00000003/model.safetensors"))
    out = model(tokens)            # tokens [B, T+1] int; out["loss"], out["main_loss"], ...

Numerics (§1): fp32 master weights; under `torch.autocast(dtype=torch.bfloat16)` the
matmuls run in bf16 while RMSNorm statistics, RoPE angles, the router (§5), the GDN core
(§4), softcap and cross-entropy stay fp32; the residual stream is fp32. On the CPU without
autocast everything is fp32 (the reference path).

Hot paths are free of data-dependent Python control flow except the GDN chunk loop
(or the token-by-token recurrence, `gdn_mode="recurrent"`) and the MoE expert loop.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import dataclass, fields
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------


def _parse_scalar(text: str):
    t = text.strip()
    if t == "" or t in ("~", "null", "Null", "NULL"):
        return None
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
        return t[1:-1]
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if t.startswith("[") and t.endswith("]"):
        inner = t[1:-1].strip()
        return [] if not inner else [_parse_scalar(p) for p in inner.split(",")]
    if t.startswith("{") and t.endswith("}"):
        inner = t[1:-1].strip()
        out = {}
        for part in filter(None, (p.strip() for p in inner.split(","))):
            k, _, v = part.partition(":")
            out[k.strip()] = _parse_scalar(v)
        return out
    if re.fullmatch(r"[-+]?\d+", t):
        return int(t)
    if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", t):
        return float(t)
    return t


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def parse_block_yaml(text: str) -> dict:
    """The block-YAML subset of configs/*.yaml: nested `key: value` mappings by indentation,
    scalars, quoted strings, flow lists/maps of scalars, `#` comments. Used when PyYAML is
    not installed."""
    root: dict = {}
    stack = [(-1, root)]
    for raw in text.splitlines():
        line = _strip_comment(raw).rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, sep, value = line.strip().partition(":")
        if not sep:
            raise ValueError(f"unsupported YAML line: {raw!r}")
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value.strip() == "":
            child: dict = {}
            parent[key.strip()] = child
            stack.append((indent, child))
        else:
            parent[key.strip()] = _parse_scalar(value)
    return root


def load_yaml(path_or_text: str) -> dict:
    text = path_or_text
    if "\n" not in path_or_text and os.path.exists(path_or_text):
        with open(path_or_text, encoding="utf-8") as f:
            text = f.read()
    try:
        import yaml  # PyYAML

        return yaml.safe_load(text) or {}
    except ImportError:
        return parse_block_yaml(text)


@dataclass
class FusionConfig:
    """Model keys of MODEL.md §17 (defaults = §17) plus the training keys the loss needs."""

    vocab_size: int = 152064
    max_seq_len: int = 4096
    dim: int = 2048
    n_layers: int = 30
    layer_schedule: str = "5:1"
    norm_eps: float = 1e-6
    n_heads: int = 32
    n_kv_groups: int = 8
    q_lora_rank: int = 512
    kv_lora_rank: int = 256
    qk_nope_head_dim: int = 128
    qk_rope_head_dim: int = 64
    v_head_dim: int = 128
    qk_norm: bool = True
    rope_theta: float = 10000.0
    rope_factor: float = 1.0
    sliding_window: int = 2048
    sliding_window_schedule: str = "5:1"
    inter_dim: int = 4096
    ffn_activation: str = "swiglu"
    n_routed_experts: int = 64
    n_activated_experts: int = 6
    n_shared_experts: int = 4
    moe_inter_dim: int = 1536
    moe_activation: str = "swiglu"
    n_expert_groups: int = 8
    n_limited_groups: int = 3
    group_topk: int = 2
    route_scale: float = 1.0
    expert_capacity_factor: float = 0.0
    expert_dropout_prob: float = 0.0
    moe_warmup_steps: int = 0
    ssm_type: str = "gdn"
    gdn_d_state: int = 128
    gdn_headdim: int = 64
    gdn_d_conv: int = 4
    gdn_expand: int = 2
    gdn_n_k_heads: Optional[int] = None  # default H_g
    gdn_chunk_size: int = 64
    mtp_depth: int = 3
    mtp_inter_dim: Optional[int] = None  # default inter_dim
    mtp_loss_weight_schedule: Optional[List[float]] = None  # default [0.3, 0.2, 0.1]
    mtp_loss_weight: float = 0.3
    mtp_softcap: bool = True
    mtp_softcap_value: float = 15.0
    logit_softcap: float = 15.0
    muP: bool = True
    # training / data keys used by the forward + loss
    balance_loss_alpha: float = 1e-4
    seed: int = 1234
    micro_batch_size: int = 2
    gradient_accumulation_steps: int = 16
    dtype: str = "bf16"
    eos_token_id: int = -1
    pad_token_id: int = -1
    n_gpus: int = 8  # distributed.n_gpus (W_dp)

    def __post_init__(self):
        if self.mtp_inter_dim is None:
            self.mtp_inter_dim = self.inter_dim
        if self.mtp_loss_weight_schedule is None:
            self.mtp_loss_weight_schedule = [0.3, 0.2, 0.1]
        if self.gdn_n_k_heads is None:
            self.gdn_n_k_heads = self.gdn_heads
        if self.rope_factor != 1.0:
            raise ValueError("rope_factor must be 1.0 (MODEL.md §3)")
        if self.ffn_activation != "swiglu" or self.moe_activation != "swiglu":
            raise ValueError("only swiglu FFNs are implemented (relu2 is legacy, §6)")
        if self.ssm_type != "gdn":
            raise ValueError("ssm_type must be gdn")

    # derived quantities (MODEL.md §1)
    @property
    def d_qk(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def gdn_heads(self) -> int:
        return self.gdn_expand * self.dim // self.gdn_headdim

    def mtp_weight(self, k: int) -> float:
        w = self.mtp_loss_weight_schedule
        return float(w[k]) if k < len(w) else float(self.mtp_loss_weight)

    @classmethod
    def from_dict(cls, doc: dict) -> "FusionConfig":
        known = {f.name for f in fields(cls)}
        kw = {}
        for section in ("model", "training", "data", "distributed"):
            for k, v in (doc.get(section) or {}).items():
                if k in known:
                    kw[k] = v
        return cls(**kw)

    @classmethod
    def from_yaml(cls, path_or_text: str) -> "FusionConfig":
        return cls.from_dict(load_yaml(path_or_text))


def layer_is_gdn(cfg: FusionConfig) -> List[bool]:
    """MODEL.md §2 layer schedule."""
    s, L = str(cfg.layer_schedule).strip(), cfg.n_layers
    if s in ("mha", "attention", "transformer"):
        return [False] * L
    if s in ("ssm", "mamba", "gdn"):
        return [True] * L
    m = re.fullmatch(r"ssm:(\d+)", s)
    if m:
        n = int(m.group(1))
        return [(i + 1) % n == 0 for i in range(L)]
    m = re.fullmatch(r"(\d+):(\d+)", s)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        return [(i % (a + b)) >= a for i in range(L)]
    raise ValueError(f"bad layer_schedule {s!r}")


def mla_windows(cfg: FusionConfig, is_gdn: Sequence[bool]) -> List[int]:
    """Window per layer (0 = global; GDN layers get 0) from the §2 sliding-window rule."""
    s = str(cfg.sliding_window_schedule).strip()
    out, j = [], 0
    for g in is_gdn:
        if g:
            out.append(0)
            continue
        if cfg.sliding_window == 0 or s == "none":
            local = False
        elif s == "all":
            local = True
        else:
            m = re.fullmatch(r"(\d+):(\d+)", s)
            if not m:
                raise ValueError(f"bad sliding_window_schedule {s!r}")
            a, b = int(m.group(1)), int(m.group(2))
            local = (j % (a + b)) < a
        out.append(cfg.sliding_window if local else 0)
        j += 1
    return out


# ---------------------------------------------------------------------------------------
# Fast paths (benchmark): FlexAttention, torch._grouped_mm, compiled chunked GDN, fused
# softcap-CE. Each is chosen per model with FusionLLM.set_paths() (select_fast_paths()
# picks the best one the running PyTorch/device supports, after a numerical self-test).
# The default ("reference" everywhere) is the plain path above, which the interop check
# and CPU runs use; every fast path has a fallback that runs on old / CPU PyTorch.
# ---------------------------------------------------------------------------------------

REFERENCE_PATHS = {"attention": "reference", "experts": "reference", "gdn": "reference",
                   "ce": "reference"}

# When set (by the benchmark), the matmul dtype every module uses; saves the autocast
# queries in _compute_dtype inside compiled graphs.
_COMPUTE_DTYPE: Optional[torch.dtype] = None


def set_compute_dtype(dt: Optional[torch.dtype]):
    global _COMPUTE_DTYPE
    _COMPUTE_DTYPE = dt


_FLEX: list = []


def _flex_api():
    """(flex_attention, create_block_mask) or None on PyTorch < 2.5 (cached: the import
    runs once, outside compiled regions)."""
    if not _FLEX:
        try:
            from torch.nn.attention.flex_attention import create_block_mask, flex_attention
            _FLEX.append((flex_attention, create_block_mask))
        except Exception:  # noqa: BLE001 - any import problem means "not available"
            _FLEX.append(None)
    return _FLEX[0]


def has_grouped_mm() -> bool:
    return hasattr(torch, "_grouped_mm")


def has_compile() -> bool:
    return hasattr(torch, "compile")


_COMPILED: Dict[str, object] = {}


def compiled(name: str, fn):
    """torch.compile(fn) once per name (static shapes); fn itself without torch.compile."""
    if not has_compile():
        return fn
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(fn, dynamic=False)
    return _COMPILED[name]


# --- attention -------------------------------------------------------------------------

_BLOCK_MASKS: Dict[tuple, object] = {}


def get_block_mask(T: int, window: int, device) -> object:
    """Causal (window 0) or sliding-window causal BlockMask for T×T, cached. Built outside
    compiled regions by FusionLLM.prepare_attention(); inside them this is a dict hit."""
    key = (int(T), int(window))  # one device per process
    bm = _BLOCK_MASKS.get(key)
    if bm is None:
        create_block_mask = _flex_api()[1]
        if window > 0:
            W = int(window)

            def mask_mod(b, h, q_idx, kv_idx):  # 𝒰(t) = {t−W < u ≤ t}
                return (kv_idx <= q_idx) & (q_idx - kv_idx < W)
        else:
            def mask_mod(b, h, q_idx, kv_idx):  # 𝒰(t) = {u ≤ t}
                return kv_idx <= q_idx
        bm = create_block_mask(mask_mod, None, None, T, T, device=device)
        _BLOCK_MASKS[key] = bm
    return bm


def _flex_call(q, k, v, block_mask, scale, enable_gqa):
    return _flex_api()[0](q, k, v, block_mask=block_mask, scale=scale, enable_gqa=enable_gqa)


def attention_flex(q, k, v, window: int, pad_qk: int = 0):
    """q [B,H,T,d_qk], k [B,G,T,d_qk], v [B,G,T,d_v] (same dtype) → o [B,H,T,d_v].
    GQA inside the kernel (query head h uses KV group h // (H/G), §3). pad_qk > d_qk
    zero-pads q and k (same dot products; the scale stays 1/sqrt(d_qk))."""
    T, dqk = q.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(dqk)
    if pad_qk > dqk:
        q = F.pad(q, (0, pad_qk - dqk))
        k = F.pad(k, (0, pad_qk - dqk))
    bm = get_block_mask(T, window, q.device)
    fn = compiled("flex_attention", _flex_call)
    return fn(q, k, v, bm, scale, q.shape[1] != k.shape[1])


def attention_reference(q, k, v, window: int):
    """Same contract as attention_flex (k, v with G heads), via _sdpa."""
    rep = q.shape[1] // k.shape[1]
    if rep > 1:
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    return _sdpa(q, k, v.to(q.dtype), window)


# --- experts ---------------------------------------------------------------------------


def grouped_mm_fallback(x, w, offs):
    """torch._grouped_mm(x, w, offs=offs) semantics for 2-D x [M,K], 3-D w [E,K,N], int32
    offs [E] = cumulative group ends: rows offs[e−1]:offs[e] of x times w[e]."""
    ends = [int(e) for e in offs.tolist()]
    outs, start = [], 0
    for e, end in enumerate(ends):
        outs.append(torch.matmul(x[start:end], w[e]))
        start = end
    out = torch.cat(outs, 0)
    return out if out.shape[0] == x.shape[0] else torch.cat(
        (out, x.new_zeros(x.shape[0] - out.shape[0], w.shape[-1])), 0)


def grouped_mm(x, w, offs, impl: str):
    if impl == "grouped_mm":
        return torch._grouped_mm(x, w, offs=offs)
    return grouped_mm_fallback(x, w, offs)


# --- fused softcap cross-entropy -------------------------------------------------------


def _ce_chunk_math(logits: torch.Tensor, t: torch.Tensor, cap: float):
    """logits [n,V] (matmul dtype), t [n] (−1 = ignored) → (Σ CE fp32, dCE/dlogits in the
    logits dtype): dℓ = (softmax(z) − onehot)·(1 − (z/c)²) (§9), 0 on ignored rows."""
    lf = logits.float()
    if cap > 0:
        th = torch.tanh(lf / cap)
        z = cap * th
    else:
        z = lf
    lse = torch.logsumexp(z, dim=-1)
    valid = t >= 0
    tc = t.clamp_min(0)
    zy = torch.gather(z, -1, tc[:, None])[:, 0]
    ce = torch.where(valid, lse - zy, torch.zeros_like(lse)).sum()
    p = torch.exp(z - lse[:, None])
    onehot = torch.arange(z.shape[-1], device=z.device)[None, :] == tc[:, None]
    d = p - onehot.to(p.dtype)
    if cap > 0:
        d = d * (1.0 - th * th)
    d = torch.where(valid[:, None], d, torch.zeros_like(d))
    return ce, d.to(logits.dtype)


class FusedSoftcapCE(torch.autograd.Function):
    """Σ_valid CE(c·tanh(h Wᵀ/c), y) over row tiles; the gradients dh, dW are formed in the
    forward (the loss is terminal, so backward only scales them): no [N,V] tensor is kept,
    no logits are recomputed."""

    @staticmethod
    def forward(ctx, h, W, targets, cap: float, tile: int, use_compiled: bool):
        Wc = W.to(h.dtype)
        math_fn = compiled("softcap_ce_tile", _ce_chunk_math) if use_compiled else _ce_chunk_math
        N = h.shape[0]
        ce = torch.zeros((), dtype=torch.float32, device=h.device)
        dh = torch.empty_like(h)
        dW = torch.zeros(W.shape, dtype=torch.float32, device=W.device)
        for i in range(0, N, tile):
            hi = h[i:i + tile]
            ce_i, dl = math_fn(torch.matmul(hi, Wc.t()), targets[i:i + tile], cap)
            ce = ce + ce_i
            dh[i:i + tile] = torch.matmul(dl, Wc)
            dW += torch.matmul(dl.t(), hi).float()
        ctx.save_for_backward(dh, dW)
        ctx.w_dtype = W.dtype
        return ce

    @staticmethod
    def backward(ctx, g):
        dh, dW = ctx.saved_tensors
        return dh * g.to(dh.dtype), (dW * g).to(ctx.w_dtype), None, None, None, None


def softcap_ce_fused(h, W, targets, cap: float, tile: int = 8192, use_compiled: bool = True):
    """Fused-path equivalent of softcap_ce(h, W, targets, cap)[0]."""
    h2 = h.reshape(-1, h.shape[-1])
    t2 = targets.reshape(-1).long()
    return FusedSoftcapCE.apply(h2, W, t2, float(cap), int(tile), bool(use_compiled))


# --- selection + self-test -------------------------------------------------------------


def _rel_err(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / (b.norm() + 1e-30))


def _selftest_attention(dev, pad_qk=0):
    g = torch.Generator(device="cpu").manual_seed(0)
    B, H, G, T, dqk, dv = 2, 4, 2, 256, 96, 64
    errs = []
    for window in (64, 0):
        q = torch.randn(B, H, T, dqk, generator=g).to(dev, torch.bfloat16).requires_grad_()
        k = torch.randn(B, G, T, dqk, generator=g).to(dev, torch.bfloat16).requires_grad_()
        v = torch.randn(B, G, T, dv, generator=g).to(dev, torch.bfloat16).requires_grad_()
        do = torch.randn(B, H, T, dv, generator=g).to(dev, torch.bfloat16)
        o = attention_flex(q, k, v, window, pad_qk)
        gq, gk, gv = torch.autograd.grad(o, (q, k, v), do)
        qf, kf, vf = (x.detach().float().requires_grad_() for x in (q, k, v))
        o_ref = attention_reference(qf, kf, vf, window)
        rq, rk, rv = torch.autograd.grad(o_ref, (qf, kf, vf), do.float())
        errs += [_rel_err(o, o_ref), _rel_err(gq, rq), _rel_err(gk, rk), _rel_err(gv, rv)]
    return max(errs)


def _selftest_experts(dev):
    g = torch.Generator(device="cpu").manual_seed(0)
    E, Kd, Nn = 4, 128, 96
    sizes = [37, 0, 200, 19]
    x = torch.randn(sum(sizes), Kd, generator=g).to(dev, torch.bfloat16).requires_grad_()
    w = torch.randn(E, Nn, Kd, generator=g).to(dev, torch.bfloat16).requires_grad_()
    offs = torch.tensor(sizes, device=dev).cumsum(0).to(torch.int32)
    y = torch._grouped_mm(x, w.transpose(-2, -1), offs=offs)
    dy = torch.randn(y.shape, generator=g).to(dev, torch.bfloat16)
    gx, gw = torch.autograd.grad(y, (x, w), dy)
    xf, wf = x.detach().float().requires_grad_(), w.detach().float().requires_grad_()
    y_ref = grouped_mm_fallback(xf, wf.transpose(-2, -1), offs)
    rx, rw = torch.autograd.grad(y_ref, (xf, wf), dy.float())
    return max(_rel_err(y, y_ref), _rel_err(gx, rx), _rel_err(gw, rw))


def _selftest_gdn(dev, use_compiled):
    g = torch.Generator(device="cpu").manual_seed(0)
    B, H, T, dk, dh, C = 1, 2, 80, 32, 16, 16
    q = F.normalize(torch.randn(B, H, T, dk, generator=g), dim=-1) * dk ** -0.5
    k = F.normalize(torch.randn(B, H, T, dk, generator=g), dim=-1)
    v = torch.randn(B, H, T, dh, generator=g)
    gg = -torch.rand(B, H, T, generator=g)
    beta = torch.rand(B, H, T, generator=g)
    ins = [x.to(dev).requires_grad_() for x in (q, k, v, gg, beta)]
    fn = compiled("gdn_selftest", gdn_chunked_fast) if use_compiled else gdn_chunked_fast
    o = fn(*ins, C)
    do = torch.randn(o.shape, generator=g).to(dev)
    gr = torch.autograd.grad(o, ins, do)
    ins_r = [x.detach().double().requires_grad_() for x in ins]
    o_r = gdn_recurrent(*ins_r)
    gr_r = torch.autograd.grad(o_r, ins_r, do.double())
    return max([_rel_err(o, o_r)] + [_rel_err(a, b) for a, b in zip(gr, gr_r)])


def select_fast_paths(device, dtype=torch.bfloat16, selftest: bool = True, strict: bool = False,
                      log=print) -> Dict[str, str]:
    """The fastest path per piece that this PyTorch / device supports. With selftest, each
    GPU fast path is first run (forward + backward) on small shapes against the reference;
    a failure prints a loud message and falls back (or raises with strict)."""
    dev = torch.device(device)
    paths = dict(REFERENCE_PATHS)
    notes: Dict[str, str] = {}
    on_gpu = dev.type == "cuda"

    def attempt(piece, name, test):
        try:
            err = test() if selftest else None
        except Exception as e:  # noqa: BLE001
            msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            log(f"!!!! {piece}: fast path '{name}' FAILED its self-test ({msg})")
            if strict:
                raise
            return False
        if err is not None and not (err < 3e-2):
            log(f"!!!! {piece}: fast path '{name}' self-test error {err:.3g} too large")
            if strict:
                raise RuntimeError(f"{piece} self-test error {err}")
            return False
        paths[piece] = name
        notes[piece] = "" if err is None else f" (self-test rel err {err:.1e})"
        return True

    # attention: FlexAttention (GQA + window in the kernel, d_qk != d_v); if the head dim 96
    # is refused, zero-padded q/k; else the SDPA/math fallback.
    if on_gpu and _flex_api() is not None and has_compile() and dtype in (torch.bfloat16, torch.float16):
        if not attempt("attention", "flex", lambda: _selftest_attention(dev)):
            attempt("attention", "flex-padded", lambda: _selftest_attention(dev, pad_qk=128))
    if paths["attention"] == "reference":
        paths["attention"] = "sdpa" if hasattr(F, "scaled_dot_product_attention") else "math"
    # experts: grouped GEMM on expert-sorted tokens, else the same dispatch with a loop.
    if on_gpu and has_grouped_mm() and dtype == torch.bfloat16:
        attempt("experts", "grouped_mm", lambda: _selftest_experts(dev))
    if paths["experts"] == "reference":
        paths["experts"] = "sorted-loop"
    # GDN: chunked WY form with batched outputs, torch.compile'd when possible.
    if has_compile() and on_gpu:
        attempt("gdn", "chunked-compiled", lambda: _selftest_gdn(dev, True))
    if paths["gdn"] == "reference":
        attempt("gdn", "chunked-fast", lambda: _selftest_gdn(dev, False))
    if paths["gdn"] == "reference":
        paths["gdn"] = "chunked"
    # CE: fused tile loop with gradients formed in forward; tile math compiled on the GPU.
    paths["ce"] = "fused-compiled" if (has_compile() and on_gpu) else "fused"
    # create the compiled wrappers now, outside any compiled region
    if paths["attention"].startswith("flex"):
        compiled("flex_attention", _flex_call)
    if paths["gdn"] == "chunked-compiled":
        compiled("gdn_chunked", gdn_chunked_fast)
    if paths["ce"] == "fused-compiled":
        compiled("softcap_ce_tile", _ce_chunk_math)
    for piece in ("attention", "experts", "gdn", "ce"):
        log(f"{piece}: {paths[piece]}{notes.get(piece, '')}")
    return paths


# ---------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------


class Linear(nn.Module):
    """y = W x, W stored [out, in] (§1), no bias."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))

    def forward(self, x):
        return F.linear(x, self.weight)


def _up(x: torch.Tensor) -> torch.Tensor:
    """fp32 for fp32/bf16/fp16 tensors; fp64 stays fp64 (the --dtype fp64 reference)."""
    return x if x.dtype == torch.float64 else x.float()


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """γ ⊙ x / sqrt(mean x² + ε), statistics in fp32; result in fp32."""
    xf = _up(x)
    r = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return xf * r * _up(weight)


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


def rope_cos_sin(T: int, d_r: int, theta: float, device, dtype=torch.float32):
    """cos/sin [T, d_r/2] for interleaved-pair RoPE (§3), fp32 (angles formed in fp64)."""
    k = torch.arange(d_r // 2, dtype=torch.float64, device=device)
    inv = theta ** (-2.0 * k / d_r)
    phi = torch.arange(T, dtype=torch.float64, device=device)[:, None] * inv[None, :]
    return torch.cos(phi).to(dtype), torch.sin(phi).to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [..., T, h, d_r]; pairs (x_{2k}, x_{2k+1}) rotated by p·θ_k (§3)."""
    xf = _up(x)
    a, b = xf[..., 0::2], xf[..., 1::2]
    c = cos[:, None, :]
    s = sin[:, None, :]
    out = torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)
    return out.to(x.dtype)


def swiglu(u, w1, w3, w2):
    return F.linear(F.silu(F.linear(u, w1)) * F.linear(u, w3), w2)


class DenseFFN(nn.Module):
    """§6: y = W2 (SiLU(W1 u) ⊙ W3 u)."""

    def __init__(self, dim: int, inter: int):
        super().__init__()
        self.w1 = Linear(dim, inter)
        self.w3 = Linear(dim, inter)
        self.w2 = Linear(inter, dim)

    def forward(self, u):
        return swiglu(u, self.w1.weight, self.w3.weight, self.w2.weight)


# ---------------------------------------------------------------------------------------
# MLA (§3)
# ---------------------------------------------------------------------------------------


def _sdpa(q, k, v, window: int):
    """q [B,H,T,d_qk], k [B,H,T,d_qk], v [B,H,T,d_v]; causal (+ sliding window)."""
    T = q.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1])
    i = torch.arange(T, device=q.device)
    allowed = i[None, :] <= i[:, None]
    if window > 0:
        allowed = allowed & (i[None, :] > i[:, None] - window)
    if hasattr(F, "scaled_dot_product_attention"):
        if window == 0:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    s = torch.matmul(_up(q), _up(k).transpose(-1, -2)) * scale
    s = s.masked_fill(~allowed, float("-inf"))
    p = torch.softmax(s, dim=-1)
    return torch.matmul(p, _up(v)).to(v.dtype)


class MLA(nn.Module):
    def __init__(self, cfg: FusionConfig, window: int):
        super().__init__()
        self.cfg, self.window = cfg, window
        self.paths = REFERENCE_PATHS
        D, H, G = cfg.dim, cfg.n_heads, cfg.n_kv_groups
        dn, dr, dv, dqk = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim, cfg.d_qk
        if H % G:
            raise ValueError("n_heads must be a multiple of n_kv_groups")
        if cfg.q_lora_rank > 0:
            self.wq_a = Linear(D, cfg.q_lora_rank)
            self.q_norm = RMSNorm(cfg.q_lora_rank, cfg.norm_eps)
            self.wq_b = Linear(cfg.q_lora_rank, H * dqk)
        else:
            self.wq = Linear(D, H * dqk)
        self.wkv_a = Linear(D, cfg.kv_lora_rank + dr)
        self.kv_norm = RMSNorm(cfg.kv_lora_rank, cfg.norm_eps)
        self.wkv_b = Linear(cfg.kv_lora_rank, G * (dn + dv))
        self.wo = Linear(H * dv, D)
        if cfg.qk_norm:
            self.qk_norm_q = RMSNorm(dqk, cfg.norm_eps)
            self.qk_norm_k = RMSNorm(dqk, cfg.norm_eps)

    def forward(self, u, cos, sin):
        cfg = self.cfg
        B, T, _ = u.shape
        H, G = cfg.n_heads, cfg.n_kv_groups
        dn, dr, dv, dqk = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim, cfg.d_qk
        dt = _compute_dtype(u)
        if cfg.q_lora_rank > 0:
            q = self.wq_b(self.q_norm(self.wq_a(u)).to(dt))
        else:
            q = self.wq(u)
        q = q.view(B, T, H, dqk)
        kv = self.wkv_a(u)
        c_kv, kr = kv[..., : cfg.kv_lora_rank], kv[..., cfg.kv_lora_rank:]
        kvb = self.wkv_b(self.kv_norm(c_kv).to(dt)).view(B, T, G, dn + dv)
        kn, v = kvb[..., :dn], kvb[..., dn:]
        k = torch.cat((kn, kr[:, :, None, :].expand(B, T, G, dr).to(kn.dtype)), dim=-1)
        if cfg.qk_norm:
            q = self.qk_norm_q(q).to(dt)
            k = self.qk_norm_k(k).to(dt)
        q = torch.cat((q[..., :dn], apply_rope(q[..., dn:], cos, sin)), dim=-1)
        k = torch.cat((k[..., :dn], apply_rope(k[..., dn:], cos, sin)), dim=-1)
        rep = H // G  # g(h) = floor(h / (H/G)): contiguous blocks of heads per group
        qh = q.transpose(1, 2)  # [B,H,T,dqk]
        path = self.paths["attention"]
        if path != "reference":
            kg, vg = k.transpose(1, 2), v.transpose(1, 2).to(qh.dtype)  # [B,G,T,·]
            if path.startswith("flex"):
                pad = 1 << (dqk - 1).bit_length() if path == "flex-padded" else 0
                with torch.autocast(device_type=u.device.type, enabled=False):
                    o = attention_flex(qh, kg, vg, self.window, pad)
            else:
                o = attention_reference(qh, kg, vg, self.window)
            o = o.transpose(1, 2).reshape(B, T, H * dv)
            return self.wo(o)
        kh = k.transpose(1, 2).repeat_interleave(rep, dim=1)
        vh = v.transpose(1, 2).repeat_interleave(rep, dim=1)
        o = _sdpa(qh, kh, vh.to(qh.dtype), self.window)  # [B,H,T,dv]
        o = o.transpose(1, 2).reshape(B, T, H * dv)
        return self.wo(o)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The matmul dtype: autocast's for x's device when enabled, else x's own (or the
    benchmark's fixed choice, set_compute_dtype)."""
    if _COMPUTE_DTYPE is not None:
        return _COMPUTE_DTYPE
    dev = x.device.type
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
    if dev == "cuda" and torch.is_autocast_enabled():
        return torch.get_autocast_gpu_dtype()
    if dev == "cpu" and torch.is_autocast_cpu_enabled():
        return torch.get_autocast_cpu_dtype()
    return x.dtype


# ---------------------------------------------------------------------------------------
# Gated DeltaNet (§4)
# ---------------------------------------------------------------------------------------


def gdn_recurrent(q, k, v, g, beta):
    """Token-by-token oracle of §4.1. q,k [B,H,T,d_k], v [B,H,T,d_h], g,beta [B,H,T]; fp32.
    Returns o [B,H,T,d_h]."""
    B, H, T, dk = q.shape
    dh = v.shape[-1]
    S = q.new_zeros(B, H, dh, dk)
    outs = []
    alpha = torch.exp(g)
    for t in range(T):
        kt, vt, qt = k[:, :, t], v[:, :, t], q[:, :, t]
        a = alpha[:, :, t, None, None]
        b = beta[:, :, t, None]
        Sk = torch.einsum("bhvk,bhk->bhv", S, kt)
        S = a * S + torch.einsum("bhv,bhk->bhvk", b * (vt - alpha[:, :, t, None] * Sk), kt)
        outs.append(torch.einsum("bhvk,bhk->bhv", S, qt))
    return torch.stack(outs, dim=2)


def gdn_chunked(q, k, v, g, beta, C: int):
    """Chunkwise-parallel (WY) form of §4.2; same inputs/outputs as gdn_recurrent.
    Phase 1 (all chunks at once): γ, Λ, A, Tm, Wm, Um. Phase 2: loop over chunks."""
    B, H, T, dk = q.shape
    dh = v.shape[-1]
    pad = (-T) % C
    if pad:
        # Zero-padding at the end: k = v = q = 0, g = 0, β = 0 changes no earlier output.
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
        g, beta = (F.pad(x, (0, pad)) for x in (g, beta))
    n = (T + pad) // C
    q, k = q.view(B, H, n, C, dk), k.view(B, H, n, C, dk)
    v = v.view(B, H, n, C, dh)
    g, beta = g.view(B, H, n, C), beta.view(B, H, n, C)
    gam = torch.cumsum(g, dim=-1)  # γ_i
    Gam = torch.exp(gam)  # Γ_i
    diff = gam[..., :, None] - gam[..., None, :]  # γ_i − γ_j
    tril = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    Lam = torch.exp(torch.where(tril, diff, torch.full_like(diff, -float("inf"))))  # Λ, 0 above
    KK = torch.matmul(k, k.transpose(-1, -2))
    A = (beta[..., :, None] * Lam * KK).tril(-1)
    eye = torch.eye(C, dtype=q.dtype, device=q.device)
    Tm = torch.linalg.solve_triangular(eye + A, eye.expand_as(A), upper=False, unitriangular=True)
    Wm = torch.matmul(Tm, (beta * Gam)[..., None] * k)  # [.., C, dk]
    Um = torch.matmul(Tm, beta[..., None] * v)  # [.., C, dh]
    P = torch.matmul(q, k.transpose(-1, -2)) * Lam  # lower incl. diag (Λ is 0 above)
    decay_to_end = torch.exp(gam[..., -1:] - gam)  # exp(γ_n − γ_i)
    Hs = q.new_zeros(B, H, dk, dh)
    outs = []
    for c in range(n):
        Ut = Um[:, :, c] - torch.matmul(Wm[:, :, c], Hs)
        O = Gam[:, :, c, :, None] * torch.matmul(q[:, :, c], Hs) + torch.matmul(P[:, :, c], Ut)
        outs.append(O)
        Hs = Gam[:, :, c, -1, None, None] * Hs + torch.matmul(
            (decay_to_end[:, :, c, :, None] * k[:, :, c]).transpose(-1, -2), Ut)
    o = torch.stack(outs, dim=2).reshape(B, H, n * C, dh)
    return o[:, :, :T]


def gdn_chunked_fast(q, k, v, g, beta, C: int):
    """gdn_chunked with less sequential work: the chunk loop carries only the state
    (Ũ = Um − Wm·Hs, Hs' = Γ_n Hs + K̂ᵀ Ũ); O = diag(Γ) Q Hs + P Ũ is then one batched
    product over all chunks. fp32 throughout (§1); same contract as gdn_recurrent."""
    B, H, T, dk = q.shape
    dh = v.shape[-1]
    pad = (-T) % C
    if pad:
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
        g, beta = (F.pad(x, (0, pad)) for x in (g, beta))
    n = (T + pad) // C
    q, k = q.reshape(B, H, n, C, dk), k.reshape(B, H, n, C, dk)
    v = v.reshape(B, H, n, C, dh)
    g, beta = g.reshape(B, H, n, C), beta.reshape(B, H, n, C)
    gam = torch.cumsum(g, dim=-1)  # γ_i
    Gam = torch.exp(gam)  # Γ_i
    tril = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    diff = gam[..., :, None] - gam[..., None, :]
    Lam = torch.exp(torch.where(tril, diff, torch.full_like(diff, -float("inf"))))  # Λ (0 above)
    A = (beta[..., :, None] * Lam * torch.matmul(k, k.transpose(-1, -2))).tril(-1)
    eye = torch.eye(C, dtype=q.dtype, device=q.device)
    Tm = torch.linalg.solve_triangular(eye + A, eye.expand_as(A), upper=False, unitriangular=True)
    Wm = torch.matmul(Tm, (beta * Gam)[..., None] * k)  # [B,H,n,C,dk]
    Um = torch.matmul(Tm, beta[..., None] * v)  # [B,H,n,C,dh]
    P = torch.matmul(q, k.transpose(-1, -2)) * Lam
    kdec_t = (torch.exp(gam[..., -1:] - gam)[..., None] * k).transpose(-1, -2)  # K̂ᵀ [..,dk,C]
    Gn = Gam[..., -1, None, None]  # Γ_n [B,H,n,1,1]
    Hs = q.new_zeros(B, H, dk, dh)
    states, pseudo = [], []
    for c in range(n):
        states.append(Hs)
        Ut = Um[:, :, c] - torch.matmul(Wm[:, :, c], Hs)
        pseudo.append(Ut)
        if c + 1 < n:
            Hs = Gn[:, :, c] * Hs + torch.matmul(kdec_t[:, :, c], Ut)
    Hs_all = torch.stack(states, dim=2)  # [B,H,n,dk,dh]
    U_all = torch.stack(pseudo, dim=2)  # [B,H,n,C,dh]
    O = Gam[..., None] * torch.matmul(q, Hs_all) + torch.matmul(P, U_all)
    return O.reshape(B, H, n * C, dh)[:, :, :T]


class GDN(nn.Module):
    def __init__(self, cfg: FusionConfig, mode: str = "chunked"):
        super().__init__()
        self.cfg, self.mode = cfg, mode
        self.paths = REFERENCE_PATHS
        D, Hg, Hk = cfg.dim, cfg.gdn_heads, cfg.gdn_n_k_heads
        dk, dh, Kc = cfg.gdn_d_state, cfg.gdn_headdim, cfg.gdn_d_conv
        if Hg % Hk:
            raise ValueError("gdn_n_k_heads must divide the value heads")
        self.w_q = Linear(D, Hk * dk)
        self.w_k = Linear(D, Hk * dk)
        self.w_v = Linear(D, Hg * dh)
        self.w_z = Linear(D, Hg * dh)
        self.w_a = Linear(D, Hg)
        self.w_b = Linear(D, Hg)
        self.w_out = Linear(Hg * dh, D)
        self.conv_q = nn.Module()
        self.conv_q.weight = nn.Parameter(torch.empty(Hk * dk, Kc))
        self.conv_k = nn.Module()
        self.conv_k.weight = nn.Parameter(torch.empty(Hk * dk, Kc))
        self.conv_v = nn.Module()
        self.conv_v.weight = nn.Parameter(torch.empty(Hg * dh, Kc))
        self.A_log = nn.Parameter(torch.empty(Hg))
        self.dt_bias = nn.Parameter(torch.empty(Hg))
        self.o_norm = RMSNorm(dh, cfg.norm_eps)

    @staticmethod
    def _conv_silu(x, w):
        """Causal depthwise conv: y_t = Σ_j w[c,j] x_{t−K+1+j}, x_{<0} = 0, no bias; SiLU."""
        K = w.shape[-1]
        xt = F.pad(x.transpose(1, 2), (K - 1, 0))  # [B, C, T+K-1]
        y = F.conv1d(xt, w.to(xt.dtype)[:, None, :], groups=w.shape[0])
        return F.silu(y.transpose(1, 2))

    def forward(self, u, cos=None, sin=None):
        cfg = self.cfg
        B, T, _ = u.shape
        Hg, Hk = cfg.gdn_heads, cfg.gdn_n_k_heads
        dk, dh = cfg.gdn_d_state, cfg.gdn_headdim
        qb = self._conv_silu(self.w_q(u), self.conv_q.weight)
        kb = self._conv_silu(self.w_k(u), self.conv_k.weight)
        vb = self._conv_silu(self.w_v(u), self.conv_v.weight)
        z = self.w_z(u)
        a = _up(self.w_a(u))
        b = _up(self.w_b(u))
        q = _up(qb).view(B, T, Hk, dk)
        k = _up(kb).view(B, T, Hk, dk)
        q = q / torch.sqrt(q.pow(2).sum(-1, keepdim=True) + 1e-6) * dk ** -0.5
        k = k / torch.sqrt(k.pow(2).sum(-1, keepdim=True) + 1e-6)
        rep = Hg // Hk  # value head h uses key head floor(h·H_gk/H_g)
        q = q.transpose(1, 2)  # [B,Hk,T,dk]
        k = k.transpose(1, 2)
        if rep > 1:
            q = q.repeat_interleave(rep, dim=1)  # [B,Hg,T,dk]
            k = k.repeat_interleave(rep, dim=1)
        v = _up(vb).view(B, T, Hg, dh).transpose(1, 2)
        beta = torch.sigmoid(b).transpose(1, 2)  # [B,Hg,T]
        g = (-torch.exp(_up(self.A_log)) * F.softplus(a + _up(self.dt_bias))).transpose(1, 2)
        with torch.autocast(device_type=u.device.type, enabled=False):  # fp32 core (§1)
            path = self.paths["gdn"]
            if self.mode == "recurrent":
                o = gdn_recurrent(q, k, v, g, beta)
            elif path == "chunked-compiled":
                o = compiled("gdn_chunked", gdn_chunked_fast)(q, k, v, g, beta, cfg.gdn_chunk_size)
            elif path == "chunked-fast":
                o = gdn_chunked_fast(q, k, v, g, beta, cfg.gdn_chunk_size)
            else:
                o = gdn_chunked(q, k, v, g, beta, cfg.gdn_chunk_size)
        o = o.transpose(1, 2)  # [B,T,Hg,dh]
        y = self.o_norm(o) * F.silu(_up(z).view(B, T, Hg, dh))
        return self.w_out(y.reshape(B, T, Hg * dh).to(_compute_dtype(u)))


# ---------------------------------------------------------------------------------------
# DeepSeekMoE (§5)
# ---------------------------------------------------------------------------------------


class Router(nn.Module):
    def __init__(self, dim: int, n_experts: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_experts, dim))
        self.register_buffer("bias", torch.zeros(n_experts))  # selection only, no grad


class StackedExperts(nn.Module):
    def __init__(self, n: int, dim: int, inter: int):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(n, inter, dim))
        self.w3 = nn.Parameter(torch.empty(n, inter, dim))
        self.w2 = nn.Parameter(torch.empty(n, dim, inter))


def _topk_lowest_index_ties(x: torch.Tensor, k: int):
    """Top-k along the last dim, ties → lower index (a stable descending sort)."""
    vals, idx = torch.sort(x, dim=-1, descending=True, stable=True)
    return vals[..., :k], idx[..., :k]


def splitmix64(z: int) -> int:
    M = (1 << 64) - 1
    z = (z + 0x9E3779B97F4A7C15) & M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)


def draw_state(seed: int, s: int, rank: int, a: int, b: int, draw_idx: int) -> int:
    """§14.3 RNG state for fields (s, rank, a, b, draw_idx)."""
    M = (1 << 64) - 1
    x = splitmix64(seed & M)
    for f in (s, rank, a, b, draw_idx):
        x = splitmix64(x ^ (f & M))
    return x


def uniform_index(x: int, n: int) -> int:
    return ((x >> 11) * n) >> 53  # Python ints: the exact 128-bit product


def uniform_real(x: int) -> float:
    return float(x >> 11) * 2.0 ** -53


class MoE(nn.Module):
    def __init__(self, cfg: FusionConfig, layer_index: int):
        super().__init__()
        self.cfg, self.layer_index = cfg, layer_index
        self.paths = REFERENCE_PATHS
        E, S, I, D = cfg.n_routed_experts, cfg.n_shared_experts, cfg.moe_inter_dim, cfg.dim
        # c_i summed over the micro-batches since the last reset (fast paths; the reference
        # path sets last_counts). Not persistent: not part of the §10 checkpoint names.
        self.register_buffer("count_acc", torch.zeros(E), persistent=False)
        self.router = Router(D, E)
        self.experts = StackedExperts(E, D, I)
        if S > 0:
            self.shared = StackedExperts(S, D, I)

    def route(self, u2: torch.Tensor):
        """u2 [N, D] → (scores s [N,E] fp32, selected experts [N,K], weights [N,K] fp32)."""
        cfg = self.cfg
        E, K, Ge, Mg, qg = (cfg.n_routed_experts, cfg.n_activated_experts, cfg.n_expert_groups,
                            cfg.n_limited_groups, cfg.group_topk)
        with torch.autocast(device_type=u2.device.type, enabled=False):
            logits = F.linear(_up(u2), _up(self.router.weight))  # fully fp32
        s = torch.sigmoid(logits)
        sb = s.detach() + self.router.bias.to(s.dtype)
        if Ge > 1:
            grp = sb.view(-1, Ge, E // Ge)
            psi = _topk_lowest_index_ties(grp, qg)[0].sum(-1)  # [N, Ge]
            keep = _topk_lowest_index_ties(psi, Mg)[1]  # [N, Mg]
            gmask = torch.zeros_like(psi, dtype=torch.bool).scatter_(-1, keep, True)
            sb = sb.masked_fill(~gmask.repeat_interleave(E // Ge, dim=-1), float("-inf"))
        idx = _topk_lowest_index_ties(sb, K)[1]  # [N, K]
        s_sel = torch.gather(s, -1, idx)
        w = cfg.route_scale * s_sel / s_sel.sum(-1, keepdim=True)
        return s, idx, w

    def forward(self, u, coord=None):
        """u [B,T,D] → (y [B,T,D], L_bal summed over the B rows (fp32 scalar))."""
        cfg = self.cfg
        B, T, D = u.shape
        E, K = cfg.n_routed_experts, cfg.n_activated_experts
        u2 = u.reshape(B * T, D)
        s, idx, w = self.route(u2)
        N = B * T
        dt = _compute_dtype(u)

        # selection counts for f_i (before capacity drops / dropout, §5)
        onehot = torch.zeros(N, E, dtype=s.dtype, device=u.device).scatter_(-1, idx, 1.0)

        keep = torch.ones(N, K, dtype=torch.bool, device=u.device)
        if cfg.expert_capacity_factor > 0:
            cap = math.ceil(cfg.expert_capacity_factor * N * K / E)
            # position of each assignment within its expert, in token order n = b·T + t
            flat = F.one_hot(idx.reshape(-1), E).view(N, K, E)
            before = torch.cumsum(flat.sum(1), dim=0) - flat.sum(1)  # earlier tokens
            within = torch.cumsum(flat, dim=1) - flat  # earlier slots of the same token
            pos = torch.sum((before[:, None, :] + within) * flat, dim=-1)
            keep &= pos < cap
        if cfg.expert_dropout_prob > 0 and coord is not None and coord[0] < cfg.moe_warmup_steps:
            st, rank, micro = coord
            disabled = [uniform_real(draw_state(cfg.seed, st, rank, micro, (1 << 32) + self.layer_index, e))
                        < cfg.expert_dropout_prob for e in range(E)]
            dis = torch.tensor(disabled, device=u.device)
            keep &= ~dis[idx]
        w_eff = w * keep

        if self.paths["experts"] != "reference":
            y = self._experts_sorted(u2, idx, w_eff, onehot, dt)
            f = onehot.view(B, T, E).sum(1) * (E / (K * T))  # no grad
            sp = s / s.sum(-1, keepdim=True)
            l_bal = (f * sp.view(B, T, E).mean(1)).sum()
            self.count_acc.add_(onehot.sum(0).detach())
            return y.view(B, T, D).to(dt), l_bal

        # dropless dispatch: sort assignments by expert, one GEMM chain per expert
        y = torch.zeros(N, D, dtype=s.dtype, device=u.device)
        flat_e = idx.reshape(-1)
        order = torch.argsort(flat_e, stable=True)
        tok = order // K
        counts = torch.bincount(flat_e, minlength=E).tolist()
        xs = u2.index_select(0, tok)
        ws = w_eff.reshape(-1).index_select(0, order)
        start = 0
        for e, c in enumerate(counts):
            if c == 0:
                continue
            sl = slice(start, start + c)
            h = swiglu(xs[sl], self.experts.w1[e], self.experts.w3[e], self.experts.w2[e])
            y.index_add_(0, tok[sl], _up(h) * ws[sl, None])
            start += c
        if cfg.n_shared_experts > 0:
            for e in range(cfg.n_shared_experts):
                y = y + swiglu(u2, self.shared.w1[e], self.shared.w3[e], self.shared.w2[e]).to(y.dtype)

        # sequence-wise balance loss (§5), per row, summed over rows
        f = onehot.view(B, T, E).sum(1) * (E / (K * T))  # no grad
        sp = s / s.sum(-1, keepdim=True)
        P = sp.view(B, T, E).mean(1)
        l_bal = (f * P).sum()
        self.last_counts = onehot.sum(0).detach()  # c_i of this micro-batch
        self.count_acc.add_(self.last_counts)
        return y.view(B, T, D).to(dt), l_bal


    def _experts_sorted(self, u2, idx, w_eff, onehot, dt):
        """Dropless dispatch without host syncs: assignments sorted by expert (stable), one
        grouped GEMM per projection over all experts (int32 cumulative offsets), then the
        outputs are put back in (token, slot) order and combined in fp32 (§5)."""
        cfg = self.cfg
        N, D = u2.shape
        E, K = cfg.n_routed_experts, cfg.n_activated_experts
        impl = self.paths["experts"]
        flat_e = idx.reshape(-1)
        order = torch.argsort(flat_e, stable=True)  # assignment ids sorted by expert
        offs = torch.cumsum(onehot.sum(0), 0).to(torch.int32)  # group ends
        xs = u2.to(dt).index_select(0, order // K)  # [N·K, D]
        I = cfg.moe_inter_dim
        w13 = torch.cat((self.experts.w1.to(dt), self.experts.w3.to(dt)), dim=1)  # [E,2I,D]
        h13 = grouped_mm(xs, w13.transpose(-2, -1), offs, impl)  # [N·K, 2I]
        h = F.silu(h13[:, :I]) * h13[:, I:]
        ys = grouped_mm(h, self.experts.w2.to(dt).transpose(-2, -1), offs, impl)  # [N·K, D]
        inv = torch.empty_like(order)
        inv[order] = torch.arange(order.numel(), device=order.device)
        y = (_up(ys.index_select(0, inv)).view(N, K, D) * w_eff[..., None]).sum(1)
        for e in range(cfg.n_shared_experts):
            y = y + _up(swiglu(u2, self.shared.w1[e], self.shared.w3[e], self.shared.w2[e]))
        return y


# ---------------------------------------------------------------------------------------
# Blocks, MTP, model
# ---------------------------------------------------------------------------------------


class Block(nn.Module):
    """x ← x + Mixer(RMSNorm(x)); x ← x + FFN(RMSNorm(x))  (§2)."""

    def __init__(self, cfg: FusionConfig, index: int, is_gdn: bool, window: int,
                 gdn_mode: str = "chunked", ffn_dim: Optional[int] = None, force_dense=False):
        super().__init__()
        self.is_gdn = is_gdn
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = GDN(cfg, gdn_mode) if is_gdn else MLA(cfg, window)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.is_moe = (not is_gdn) and cfg.n_routed_experts > 0 and not force_dense
        if self.is_moe:
            self.ffn = MoE(cfg, index)
        else:
            self.ffn = DenseFFN(cfg.dim, ffn_dim or cfg.inter_dim)

    def forward(self, x, cos, sin, coord=None):
        dt = _compute_dtype(x)
        x = x + _up(self.attn(self.attn_norm(x).to(dt), cos, sin))
        h = self.ffn_norm(x).to(dt)
        if self.is_moe:
            y, l_bal = self.ffn(h, coord)
        else:
            y, l_bal = self.ffn(h), None
        return x + _up(y), l_bal


class MTPModule(nn.Module):
    def __init__(self, cfg: FusionConfig):
        super().__init__()
        self.norm_h = RMSNorm(cfg.dim, cfg.norm_eps)
        self.norm_e = RMSNorm(cfg.dim, cfg.norm_eps)
        self.proj = Linear(2 * cfg.dim, cfg.dim)
        self.block = Block(cfg, -1, False, 0, ffn_dim=cfg.mtp_inter_dim, force_dense=True)
        self.norm_out = RMSNorm(cfg.dim, cfg.norm_eps)


def _softcap_ce_rows(h: torch.Tensor, W: torch.Tensor, targets: torch.Tensor, cap: float):
    logits = _up(F.linear(h, W.to(h.dtype)))
    z = cap * torch.tanh(logits / cap) if cap > 0 else logits
    lse = torch.logsumexp(z, dim=-1)
    zy = torch.gather(z, -1, targets.clamp_min(0)[..., None].long())[..., 0]
    ce = torch.where(targets >= 0, lse - zy, torch.zeros_like(lse)).sum()
    return ce, z


# Rows per head tile when the [N, V] logits would be large: each tile's logits are
# recomputed in backward (activation checkpointing), like the runtime's fused softcap-CE.
CE_TILE_ROWS = 8192


def softcap_ce(h: torch.Tensor, W: torch.Tensor, targets: torch.Tensor, cap: float,
               return_logits: bool = False):
    """Σ over valid targets of CE(c·tanh(ĥ W_Eᵀ / c), y) (fp32), and optionally z."""
    if return_logits or h.shape[:-1].numel() <= CE_TILE_ROWS:
        return _softcap_ce_rows(h, W, targets, cap)
    from torch.utils.checkpoint import checkpoint

    h2, t2 = h.reshape(-1, h.shape[-1]), targets.reshape(-1)
    ce = _up(h2.new_zeros(()))
    for i in range(0, h2.shape[0], CE_TILE_ROWS):
        hi, ti = h2[i:i + CE_TILE_ROWS], t2[i:i + CE_TILE_ROWS]
        if torch.is_grad_enabled():
            part = checkpoint(lambda a, w, t: _softcap_ce_rows(a, w, t, cap)[0], hi, W, ti,
                              use_reentrant=False)
        else:
            part = _softcap_ce_rows(hi, W, ti, cap)[0]
        ce = ce + part
    return ce, None


def targets_from_tokens(tokens: torch.Tensor, pad_id: int = -1, eos_id: int = -1) -> torch.Tensor:
    """§14.3 ignore rule: ignored targets become −1."""
    t = tokens.clone()
    if pad_id != -1:
        is_pad = tokens == pad_id
        if pad_id != eos_id:
            ign = is_pad
        else:
            prev = torch.zeros_like(is_pad)
            prev[:, 1:] = is_pad[:, :-1]
            ign = is_pad & prev
        t[ign] = -1
    return t


def inverse_counts(targets: torch.Tensor, mtp_depth: int) -> torch.Tensor:
    """1/N_k, k = 0..D_m: valid targets at positions k+1..T over the given rows."""
    inv = []
    for k in range(mtp_depth + 1):
        n = int((targets[:, k + 1:] >= 0).sum())
        inv.append(1.0 / n if n else 0.0)
    return torch.tensor(inv, dtype=torch.float32)


class FusionLLM(nn.Module):
    def __init__(self, cfg: FusionConfig, gdn_mode: str = "chunked"):
        super().__init__()
        self.cfg = cfg
        self.is_gdn = layer_is_gdn(cfg)
        self.windows = mla_windows(cfg, self.is_gdn)
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(
            Block(cfg, i, g, w, gdn_mode) for i, (g, w) in enumerate(zip(self.is_gdn, self.windows)))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mtp = nn.ModuleList(MTPModule(cfg) for _ in range(cfg.mtp_depth))
        self.paths = REFERENCE_PATHS
        self.reset_parameters()

    def set_paths(self, paths: Dict[str, str]):
        """Choose the implementation of each piece (REFERENCE_PATHS, or select_fast_paths())."""
        self.paths = dict(paths)
        for m in self.modules():
            if isinstance(m, (MLA, GDN, MoE)):
                m.paths = self.paths
        return self

    def prepare_attention(self, T: int, device):
        """Build the FlexAttention block masks for rows of T tokens (main blocks: T; MTP
        depth k: T−k) outside any compiled region."""
        if not self.paths["attention"].startswith("flex"):
            return
        for i, w in enumerate(self.windows):
            if not self.is_gdn[i]:
                get_block_mask(T, w, device)
        for k in range(1, len(self.mtp) + 1):
            if T - k > 0:
                get_block_mask(T - k, 0, device)

    # --- §11 initialisation (not bit-identical to fusion-run's Philox stream) ---
    @torch.no_grad()
    def reset_parameters(self, seed: Optional[int] = None):
        cfg = self.cfg
        gen = torch.Generator().manual_seed(cfg.seed if seed is None else seed)
        L = cfg.n_layers

        def normal(p, std):
            t = torch.empty(p.shape)
            if cfg.muP:
                # truncated at ±2σ by rejection (§11)
                t.normal_(0.0, std, generator=gen)
                while True:
                    bad = t.abs() > 2 * std
                    if not bad.any():
                        break
                    t[bad] = torch.empty(int(bad.sum())).normal_(0.0, std, generator=gen)
            else:
                t.normal_(0.0, std, generator=gen)
            p.copy_(t)

        def uniform(p, lo, hi):
            p.copy_(torch.rand(p.shape, generator=gen, dtype=torch.float64).mul(hi - lo).add(lo).float())

        residual_out = {"wo", "w_out", "w2"}
        for name, p in self.named_parameters():
            leaf = name.split(".")[-1] if not name.endswith(".weight") else name.split(".")[-2]
            if name.endswith("norm.weight") or re.search(r"(norm|norm_[a-z]+|qk_norm_[qk])\.weight$", name):
                p.fill_(1.0)
            elif name == "tok_embeddings.weight":
                normal(p, cfg.dim ** -0.5 if cfg.muP else 0.02)
            elif name.endswith("router.weight"):
                normal(p, 0.006)
            elif leaf in ("w_a", "w_b") and ".attn." in name:
                if cfg.muP:
                    p.zero_()
                else:
                    normal(p, 0.02)
            elif leaf == "A_log":
                uniform(p, 1.0, 16.0)
                p.log_()
            elif leaf == "dt_bias":
                lo, hi = math.log(1e-3), math.log(1e-1)
                uniform(p, lo, hi)
                dt = p.exp().clamp_min(1e-4)
                p.copy_(dt + torch.log(-torch.expm1(-dt)))
            elif leaf.startswith("conv_"):
                bound = 1.0 / math.sqrt(cfg.gdn_d_conv)
                uniform(p, -bound, bound)
            elif not cfg.muP:
                normal(p, 0.02)
            else:
                fan_in = p.shape[-1]
                if leaf in residual_out:
                    normal(p, (1.0 / (fan_in * 2 * L)) ** 0.5)
                else:
                    normal(p, fan_in ** -0.5)
        for m in self.modules():
            if isinstance(m, Router):
                m.bias.zero_()

    def _ce(self, h, W, targets, cap, return_logits):
        path = self.paths["ce"]
        if path == "reference" or return_logits:
            return softcap_ce(h, W, targets, cap, return_logits)
        return softcap_ce_fused(h, W, targets, cap, use_compiled=(path == "fused-compiled")), None

    def forward(self, tokens: torch.Tensor, targets: Optional[torch.Tensor] = None,
                inv_counts: Optional[torch.Tensor] = None, n_rows: Optional[int] = None,
                coord=None, return_logits: bool = False) -> Dict[str, torch.Tensor]:
        """tokens [B, T+1] (§14.3 rows); targets [B, T+1] with −1 = ignored (default: the
        ignore rule of the config); inv_counts [1+D_m] = 1/N_k of the *step* (default: this
        batch's); n_rows = rows of the step for mean_rows (default B). Returns the §8 loss
        contribution of this micro-batch: loss, main_loss, mtp_losses [D_m] (weighted
        w_k/N_k·ΣCE), balance (α·Σ_layers Σ_rows L_bal / n_rows), and with return_logits the
        softcapped main-head logits z [B,T,V] and MTP logits."""
        cfg = self.cfg
        tokens = tokens.long()
        B, T1 = tokens.shape
        T = T1 - 1
        if targets is None:
            targets = targets_from_tokens(tokens, cfg.pad_token_id, cfg.eos_token_id)
        targets = targets.long().to(tokens.device)
        if inv_counts is None:
            inv_counts = inverse_counts(targets, cfg.mtp_depth)
        W = self.tok_embeddings.weight
        inv_counts = inv_counts.to(tokens.device, _up(W).dtype)
        n_rows = B if n_rows is None else n_rows
        dev = tokens.device

        self.prepare_attention(T, dev)
        x = _up(F.embedding(tokens[:, :T], W))
        cos, sin = rope_cos_sin(T, cfg.qk_rope_head_dim, cfg.rope_theta, dev, x.dtype)
        bal = torch.zeros((), device=dev, dtype=x.dtype)
        for layer in self.layers:
            x, l_bal = layer(x, cos, sin, coord)
            if l_bal is not None:
                bal = bal + l_bal
        h_L = x
        dt = _compute_dtype(x)
        out: Dict[str, torch.Tensor] = {}
        ce0, z0 = self._ce(self.norm(h_L).to(dt), W, targets[:, 1:T + 1], cfg.logit_softcap,
                           return_logits)
        main = ce0 * inv_counts[0]
        balance = cfg.balance_loss_alpha * bal / n_rows
        total = main + balance
        mtp_losses = []
        h = h_L
        for k1, mod in enumerate(self.mtp):
            k = k1 + 1
            Tk = T - k
            if Tk <= 0:
                mtp_losses.append(torch.zeros((), device=dev))
                continue
            hp = h[:, :Tk]
            e = F.embedding(tokens[:, k:k + Tk], W)
            m = mod.proj(torch.cat((mod.norm_h(hp), mod.norm_e(e)), dim=-1).to(dt))
            ck, sk = cos[:Tk], sin[:Tk]
            h, _ = mod.block(_up(m), ck, sk)
            cap = cfg.mtp_softcap_value if cfg.mtp_softcap else 0.0
            cek, zk = self._ce(mod.norm_out(h).to(dt), W, targets[:, k + 1:T + 1], cap,
                               return_logits)
            lk = cfg.mtp_weight(k1) * cek * inv_counts[k]
            mtp_losses.append(lk)
            total = total + lk
            if return_logits:
                out[f"mtp_logits.{k1}"] = zk
        out.update(loss=total, main_loss=main, balance=balance,
                   mtp_losses=torch.stack(mtp_losses) if mtp_losses else torch.zeros(0))
        if return_logits:
            out["logits"] = z0
        return out


# ---------------------------------------------------------------------------------------
# Checkpoints (safetensors, parsed by hand when the package is missing)
# ---------------------------------------------------------------------------------------

_ST_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64,
              "F16": np.float16, "U8": np.uint8, "I8": np.int8, "I16": np.int16}


def load_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """8-byte LE header length, JSON header {name: {dtype, shape, data_offsets}}, raw LE data."""
    try:
        from safetensors.torch import load_file  # type: ignore

        return load_file(path)
    except ImportError:
        pass
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = blob[base + b:base + e]
        dt = info["dtype"]
        if dt == "BF16":
            u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u16.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(_ST_DTYPES[dt]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.copy().reshape(info["shape"]))
    return out


def save_safetensors(tensors: Dict[str, torch.Tensor], path: str):
    names = {torch.float32: "F32", torch.float64: "F64", torch.int32: "I32", torch.int64: "I64"}
    header, chunks, off = {}, [], 0
    for k, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy()
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[k] = {"dtype": names[t.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    hb = json.dumps(header).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(chunks))


# ---------------------------------------------------------------------------------------
# Synthetic data (§14.3)
# ---------------------------------------------------------------------------------------


def synthetic_rows(seed: int, vocab: int, rows: int, seq_len: int, step: int, rank: int = 0,
                   micro: int = 0) -> torch.Tensor:
    """Row b: a = U[0,V) (draw 0), d = 1 + U[0,7) (draw 1), token_i = (a + d·i) mod V."""
    out = np.empty((rows, seq_len + 1), dtype=np.int64)
    i = np.arange(seq_len + 1, dtype=np.int64)
    for b in range(rows):
        a = uniform_index(draw_state(seed, step, rank, micro, b, 0), vocab)
        d = 1 + uniform_index(draw_state(seed, step, rank, micro, b, 1), 7)
        out[b] = (a + d * i) % vocab
    return torch.from_numpy(out)


def synthetic_val_rows(seed: int, vocab: int, rows: int, seq_len: int, i: int) -> torch.Tensor:
    """Validation micro-batch i: step field 2⁶⁴−1−i, micro a = 0 (§14.3)."""
    return synthetic_rows(seed, vocab, rows, seq_len, (1 << 64) - 1 - i, 0, 0)


def step_loss(model: FusionLLM, micro_batches: Sequence[torch.Tensor], step: Optional[int] = None,
              rank: int = 0, world_size: int = 1) -> Dict[str, float]:
    """The §8 loss of one optimizer step over its n_acc micro-batches (N_k over them, mean
    over all rows), as fusion-run's train_step reports it (before the update). With
    world_size > 1 only this rank's share is computed (rows of the other ranks count in
    mean_rows; N_k are this rank's)."""
    cfg = model.cfg
    tgts = [targets_from_tokens(t, cfg.pad_token_id, cfg.eos_token_id) for t in micro_batches]
    inv = inverse_counts(torch.cat(tgts, 0), cfg.mtp_depth)
    n_rows = sum(t.shape[0] for t in micro_batches) * world_size
    acc: Dict[str, float] = {}
    for a, (tok, tgt) in enumerate(zip(micro_batches, tgts)):
        coord = (step, rank, a) if step is not None else None
        dev = next(model.parameters()).device
        o = model(tok.to(dev), tgt.to(dev), inv, n_rows, coord)
        for k in ("loss", "main_loss", "balance"):
            acc[k] = acc.get(k, 0.0) + float(o[k])
        for j, v in enumerate(o["mtp_losses"].tolist()):
            acc[f"mtp_{j}"] = acc.get(f"mtp_{j}", 0.0) + v
    return acc


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="FusionLLM forward on synthetic data")
    ap.add_argument("config")
    ap.add_argument("--checkpoint", help="model.safetensors or a checkpoint dir")
    ap.add_argument("--step", type=int, default=0)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    cfg = FusionConfig.from_yaml(args.config)
    model = FusionLLM(cfg)
    if args.checkpoint:
        p = args.checkpoint
        if os.path.isdir(p):
            p = os.path.join(p, "model.safetensors")
        model.load_state_dict(load_safetensors(p))
    seed = cfg.seed if args.seed is None else args.seed
    mbs = [synthetic_rows(seed, cfg.vocab_size, cfg.micro_batch_size, cfg.max_seq_len, args.step, 0, a)
           for a in range(cfg.gradient_accumulation_steps)]
    with torch.no_grad():
        print(step_loss(model, mbs, args.step))
