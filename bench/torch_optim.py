"""MODEL.md §12–§13 optimizers for the PyTorch FusionLLM (bench/fusionllm_torch.py):
NorMuon (batched Newton–Schulz) + Cautious AdamW, WSD schedule, global grad-norm clip,
non-finite skip, aux-loss-free router-bias update (§5).

    opt = FusionOptimizer(model, TrainConfig.from_yaml(path))
    ... n_acc micro-batches: loss.backward() ...
    info = opt.step(s, loss_sum)        # clip, NorMuon + AdamW with f(s), bias update
    opt.zero_grad()

Partition (§12): NorMuon = every 2-D Linear weight of the blocks and MTP modules (MLA,
GDN projections incl. w_a/w_b, dense/expert/shared W1/W2/W3 — stacked experts per expert
slice —, router W_r, MTP proj); Cautious AdamW = tok_embeddings (weight decay 0.1,
cautious), RMSNorm gains, GDN A_log / dt_bias / depthwise conv (no weight decay). The router
bias buffer is in neither. μP (§11): NorMuon's shape factor sqrt(max(1, m/n)) carries the
width transfer; AdamW rates are width-independent; no other LR multipliers.

NorMuon runs per shape: every matrix of one (m, n) shape (e.g. all w1/w3 slices of all
experts of all layers) is stacked and orthogonalised by one batched bf16 Newton–Schulz
(torch.bmm / torch.baddbmm: fp32 accumulation, each right-hand side rounded to bf16 once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Dict, List, Optional, Tuple

import torch

NS_COEFFS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5


@dataclass
class TrainConfig:
    """§17 training keys used by the optimizer step (defaults = §17)."""

    total_steps: int = 143000
    lr: float = 3e-4
    muon_lr: float = 0.02
    muon_momentum: float = 0.95
    nesterov: bool = True
    normuon_beta2: float = 0.95
    adamw_betas: Tuple[float, float] = (0.9, 0.95)
    adamw_eps: float = 1e-8
    adamw_cautious_update: bool = False
    weight_decay: float = 0.1
    muon_weight_decay: Optional[float] = None  # default = weight_decay
    cautious_wd: bool = True
    cautious_wd_mode: str = "grad"
    grad_clip: float = 1.0
    optimizer: str = "normuon_adamw"
    scheduler: str = "wsd"
    wsd_warmup_frac: float = 0.01
    wsd_stable_frac: float = 0.84
    wsd_decay: str = "linear"
    min_lr_ratio: float = 0.1
    warmup_steps: int = 500
    bias_update_speed: float = 1e-3
    bias_update_every: int = 10
    bias_upper_threshold: float = 0.10
    bias_lower_threshold: float = 0.10

    def __post_init__(self):
        if self.muon_weight_decay is None:
            self.muon_weight_decay = self.weight_decay
        self.adamw_betas = tuple(float(b) for b in self.adamw_betas)
        if self.optimizer not in ("normuon_adamw", "muon_adamw"):
            raise ValueError(f"optimizer {self.optimizer!r} not supported")
        if self.cautious_wd_mode not in ("grad", "update"):
            raise ValueError("cautious_wd_mode must be grad or update")

    @classmethod
    def from_dict(cls, doc: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        kw = {}
        for section in ("training", "model"):
            for k, v in (doc.get(section) or {}).items():
                if k in known:
                    kw[k] = v
        return cls(**kw)


def wsd_factor(s: int, tc: TrainConfig) -> float:
    """f(s) of §13 (WSD, or cosine with N_w = warmup_steps)."""
    N = tc.total_steps
    if tc.scheduler == "cosine":
        Nw, Nst, decay = tc.warmup_steps, 0, "cosine"
    else:
        Nw = int(math.floor(tc.wsd_warmup_frac * N + 1e-9))
        Nst = int(math.floor(tc.wsd_stable_frac * N + 1e-9))
        decay = tc.wsd_decay
    Nd = N - Nw - Nst
    if Nd < 1:
        raise ValueError("schedule needs N_d >= 1 (MODEL.md §13)")
    r = tc.min_lr_ratio
    if s < Nw:
        return (s + 1) / Nw
    if s < Nw + Nst:
        return 1.0
    if s >= N:
        return r
    w = (s - Nw - Nst + 1) / Nd
    if decay == "cosine":
        return r + (1 - r) * (1 + math.cos(math.pi * w)) / 2
    return 1 - (1 - r) * w


# ---------------------------------------------------------------------------------------
# Newton–Schulz (§12), batched
# ---------------------------------------------------------------------------------------


def _bf16_matmul_ok(device) -> bool:
    try:
        a = torch.ones(1, 2, 2, dtype=torch.bfloat16, device=device)
        torch.baddbmm(a, a, a, beta=0.5, alpha=0.5)
        return True
    except Exception:  # noqa: BLE001
        return False


_BF16_OK: Dict[str, bool] = {}


def newton_schulz5(G: torch.Tensor, steps: int = NS_STEPS, coeffs=NS_COEFFS) -> torch.Tensor:
    """O = NS5(G̃) for a batch G [b, m, n] (fp32) → [b, m, n] fp32. Y = G̃ᵀ when m > n;
    X = bf16(Y / (‖Y‖_F + 1e-7)) (norm in fp32); 5×: Ā = bf16(X Xᵀ), B̄ = bf16(b·Ā + c·Ā Ā),
    X ← bf16(a·X + B̄ X)."""
    a, b, c = coeffs
    m, n = G.shape[-2:]
    Y = G.transpose(-2, -1) if m > n else G
    norm = torch.linalg.vector_norm(Y.float(), dim=(-2, -1), keepdim=True)
    key = str(G.device)
    if key not in _BF16_OK:
        _BF16_OK[key] = _bf16_matmul_ok(G.device)
    if _BF16_OK[key]:
        X = (Y / (norm + 1e-7)).to(torch.bfloat16).contiguous()
        for _ in range(steps):
            A = torch.bmm(X, X.transpose(-2, -1))
            Bm = torch.baddbmm(A, A, A, beta=b, alpha=c)
            X = torch.baddbmm(X, Bm, X, beta=a, alpha=1.0)
    else:  # old CPU builds without bf16 bmm: fp32 products, the same bf16 roundings
        r = lambda t: t.to(torch.bfloat16).float()  # noqa: E731
        X = r(Y / (norm + 1e-7))
        for _ in range(steps):
            A = r(torch.bmm(X, X.transpose(-2, -1)))
            Bm = r(b * A + c * torch.bmm(A, A))
            X = r(a * X + torch.bmm(Bm, X))
    O = X.float()
    return O.transpose(-2, -1) if m > n else O


# ---------------------------------------------------------------------------------------
# Partition
# ---------------------------------------------------------------------------------------


def is_normuon(name: str, p: torch.Tensor) -> bool:
    """§12: 2-D Linear weights in blocks/MTP, router, stacked expert/shared slices."""
    if name == "tok_embeddings.weight":
        return False
    leaf = name.split(".")[-2] if name.endswith(".weight") else name.split(".")[-1]
    if leaf.startswith("conv_") or leaf in ("A_log", "dt_bias"):
        return False
    if p.dim() == 3:
        return ".experts." in name or ".shared." in name
    return p.dim() == 2


class _MuonGroup:
    """All NorMuon matrices of one (m, n) shape: params viewed as [b_i, m, n]."""

    def __init__(self, m: int, n: int):
        self.m, self.n = m, n
        self.params: List[torch.Tensor] = []
        self.names: List[str] = []
        self.momentum: List[torch.Tensor] = []
        self.v: List[torch.Tensor] = []

    def add(self, name, p):
        b = p.numel() // (self.m * self.n)
        self.params.append(p)
        self.names.append(name)
        self.momentum.append(torch.zeros_like(p, dtype=torch.float32))
        self.v.append(torch.zeros(b, self.m, dtype=torch.float32, device=p.device))


class FusionOptimizer:
    """NorMuon + Cautious AdamW over a FusionLLM, with the §12 step order (clip, skip,
    updates with f(s), bias update). ns_batch bounds how many matrices one batched
    Newton–Schulz call stacks (transient memory)."""

    def __init__(self, model: torch.nn.Module, tc: TrainConfig, ns_batch: int = 192):
        self.model, self.tc, self.ns_batch = model, tc, ns_batch
        self.groups: Dict[Tuple[int, int], _MuonGroup] = {}
        self.adamw: List[Tuple[str, torch.Tensor, float]] = []
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if is_normuon(name, p):
                m, n = p.shape[-2:]
                self.groups.setdefault((m, n), _MuonGroup(m, n)).add(name, p)
            else:
                wd = tc.weight_decay if name == "tok_embeddings.weight" else 0.0
                self.adamw.append((name, p, wd))
        self.adam_m = [torch.zeros_like(p, dtype=torch.float32) for _, p, _ in self.adamw]
        self.adam_v = [torch.zeros_like(p, dtype=torch.float32) for _, p, _ in self.adamw]
        self.applied = 0  # AdamW t − 1
        self.skipped = 0
        self.consecutive_skips = 0
        from fusionllm_torch import MoE  # noqa: WPS433 (same directory)

        self.moe = [m for m in model.modules() if isinstance(m, MoE)]
        self.bias_window = [torch.zeros_like(m.router.bias) for m in self.moe]

    # --- bookkeeping ---
    def all_params(self) -> List[torch.Tensor]:
        ps = [p for g in self.groups.values() for p in g.params]
        return ps + [p for _, p, _ in self.adamw]

    def summary(self) -> str:
        n_mu = sum(p.numel() for g in self.groups.values() for p in g.params)
        n_ad = sum(p.numel() for _, p, _ in self.adamw)
        mats = sum(p.numel() // (g.m * g.n) for g in self.groups.values() for p in g.params)
        shapes = ", ".join(f"{m}x{n}:{sum(p.numel() // (m * n) for p in g.params)}"
                           for (m, n), g in sorted(self.groups.items()))
        return (f"NorMuon {n_mu / 1e6:.1f} M params in {mats} matrices, {len(self.groups)} "
                f"shapes [{shapes}]; AdamW {n_ad / 1e6:.1f} M params in {len(self.adamw)} tensors")

    def zero_grad(self):
        for p in self.all_params():
            p.grad = None

    def reset_counts(self):
        for m in self.moe:
            m.count_acc.zero_()

    # --- the step ---
    @torch.no_grad()
    def step(self, s: int, loss_sum: Optional[torch.Tensor] = None) -> Dict[str, float]:
        tc = self.tc
        params = [p for p in self.all_params() if p.grad is not None]
        grads = [p.grad for p in params]
        if hasattr(torch, "_foreach_norm") and grads and grads[0].is_cuda:
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        else:
            norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
        ok = torch.isfinite(norm)
        if loss_sum is not None:
            ok = ok & torch.isfinite(loss_sum)
        norm_f = float(norm)  # one host sync per optimizer step
        f = wsd_factor(s, tc)
        info = {"grad_norm": norm_f, "lr_factor": f, "skipped": 0.0}
        if not bool(ok):
            self.skipped += 1
            self.consecutive_skips += 1
            info["skipped"] = 1.0
            self.reset_counts()
            if self.consecutive_skips >= 10:
                raise RuntimeError("10 consecutive non-finite steps (MODEL.md §12)")
            return info
        self.consecutive_skips = 0
        if tc.grad_clip > 0 and norm_f > tc.grad_clip:
            coef = tc.grad_clip / (norm_f + 1e-6)
            if hasattr(torch, "_foreach_mul_"):
                torch._foreach_mul_(grads, coef)
            else:
                for g in grads:
                    g.mul_(coef)
        self._normuon(tc.muon_lr * f)
        self._adamw(tc.lr * f)
        self._bias_update(s)
        return info

    def _normuon(self, lr: float):
        tc = self.tc
        b1, b2 = tc.muon_momentum, tc.normuon_beta2
        lam = tc.muon_weight_decay
        for (m, n), grp in self.groups.items():
            live = [i for i, p in enumerate(grp.params) if p.grad is not None]
            if not live:
                continue
            shape_scale = math.sqrt(max(1.0, m / n))
            # chunks of whole params, at most ns_batch matrices per batched NS call
            chunks, cur, cnt = [], [], 0
            for i in live:
                b = grp.params[i].numel() // (m * n)
                if cur and cnt + b > self.ns_batch:
                    chunks.append(cur)
                    cur, cnt = [], 0
                cur.append(i)
                cnt += b
            if cur:
                chunks.append(cur)
            for idxs in chunks:
                ps = [grp.params[i] for i in idxs]
                gs = [p.grad.float() for p in ps]
                Ms = [grp.momentum[i] for i in idxs]
                for M, g in zip(Ms, gs):
                    M.lerp_(g, 1 - b1)  # M ← β1 M + (1−β1) g
                if tc.nesterov:
                    Gt = torch.cat([torch.lerp(g, M, b1).reshape(-1, m, n) for g, M in zip(gs, Ms)])
                else:
                    Gt = torch.cat([M.reshape(-1, m, n) for M in Ms])
                O = newton_schulz5(Gt)  # [b, m, n] fp32
                if tc.optimizer == "normuon_adamw":
                    vs = torch.cat([grp.v[i] for i in idxs])  # [b, m]
                    vs.lerp_(O.square().mean(-1), 1 - b2)
                    Oh = O / (vs.sqrt()[..., None] + 1e-10)
                    on = torch.linalg.vector_norm(O, dim=(-2, -1), keepdim=True)
                    ohn = torch.linalg.vector_norm(Oh, dim=(-2, -1), keepdim=True)
                    U = Oh * (on / (ohn + 1e-10)) * shape_scale
                    pos = 0
                    for i in idxs:
                        b = grp.v[i].shape[0]
                        grp.v[i].copy_(vs[pos:pos + b])
                        pos += b
                else:
                    U = O * shape_scale
                pos = 0
                for p, g in zip(ps, gs):
                    b = p.numel() // (m * n)
                    u = U[pos:pos + b].view(p.shape)
                    pos += b
                    W = p.data
                    if lam > 0:
                        if tc.cautious_wd:
                            mask = (g * W > 0) if tc.cautious_wd_mode == "grad" else (u * W >= 0)
                            W.mul_(1.0 - lr * lam * mask.to(W.dtype))
                        else:
                            W.mul_(1.0 - lr * lam)
                    W.add_(u.to(W.dtype), alpha=-lr)

    def _adamw(self, lr: float):
        tc = self.tc
        b1, b2 = tc.adamw_betas
        self.applied += 1
        t = self.applied
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        for (name, p, wd), m, v in zip(self.adamw, self.adam_m, self.adam_v):
            if p.grad is None:
                continue
            g = p.grad.float()
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            u = (m / bc1) / ((v / bc2).sqrt() + tc.adamw_eps)
            if tc.adamw_cautious_update:
                phi = (u * g > 0).to(u.dtype)
                u = u * phi * (u.numel() / (phi.sum() + 1))
            W = p.data
            if wd > 0:
                if tc.cautious_wd:
                    mask = (g * W > 0) if tc.cautious_wd_mode == "grad" else (u * W >= 0)
                    W.mul_(1.0 - lr * wd * mask.to(W.dtype))
                else:
                    W.mul_(1.0 - lr * wd)
            W.add_(u, alpha=-lr)

    def _bias_update(self, s: int):
        """§5: add this step's counts to the window; every U steps move b by ±γ_b outside
        the ±τ dead band around the mean count, then reset."""
        tc = self.tc
        for acc, mod in zip(self.bias_window, self.moe):
            acc.add_(mod.count_acc)
            mod.count_acc.zero_()
        if (s + 1) % max(1, tc.bias_update_every):
            return
        for acc, mod in zip(self.bias_window, self.moe):
            cbar = acc.mean()
            b = mod.router.bias
            b.sub_(tc.bias_update_speed * (acc > (1 + tc.bias_upper_threshold) * cbar).to(b.dtype))
            b.add_(tc.bias_update_speed * (acc < (1 - tc.bias_lower_threshold) * cbar).to(b.dtype))
            acc.zero_()
