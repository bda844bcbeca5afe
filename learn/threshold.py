"""Learnable per-(layer, head) pruning thresholds: soft mask, hard mask, regularizer.

Formulas (SPEC section 7, ``docs/LEARNING.md``), for logits ``z = q.k / sqrt(d)`` of one
head with threshold ``theta`` and temperature ``T``:

* soft mask (training): ``m = sigmoid((z - theta) / T)``; attention weights are
  ``softmax(z + log m)`` over the visible keys, i.e. ``m exp(z) / sum(m exp(z))``;
* hard mask (inference, what the hardware computes): keep iff ``z >= theta``; a query
  whose visible keys are all pruned gets all-zero weights (no survivor, no output);
* regularizer: ``lam * mean(m)`` over every visible score of every thresholded layer.

The T -> 0 limit of the soft mask is the hard mask (``m -> 1`` for ``z > theta``, ``0``
for ``z < theta``; exact ties ``z == theta`` are the only difference).

This module imports torch; it is not imported by the default test suite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = [
    "soft_mask", "hard_keep", "masked_attention", "regularizer", "anneal_T",
    "ThresholdState", "PruningController", "attend", "install_hf",
]

_NEG = torch.finfo(torch.float32).min


def soft_mask(z: torch.Tensor, theta: torch.Tensor, T: float) -> torch.Tensor:
    """Soft mask ``sigmoid((z - theta) / T)``.

    Parameters
    ----------
    z : Tensor [B, H, Nq, Nk]
        Logits ``q.k / sqrt(d)``.
    theta : Tensor [H]
        One threshold per head (logit domain).
    T : float
        Temperature, > 0.

    Returns
    -------
    Tensor [B, H, Nq, Nk]
        Mask values in (0, 1).
    """
    return torch.sigmoid((z - theta.view(1, -1, 1, 1)) / T)


def hard_keep(z: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Hard mask (bool): a score survives iff ``z >= theta`` (per head)."""
    return z >= theta.view(1, -1, 1, 1)


def masked_attention(z: torch.Tensor, visible: torch.Tensor, theta: torch.Tensor | None,
                     T: float, mode: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention probabilities with an optional soft or hard threshold mask.

    Parameters
    ----------
    z : Tensor [B, H, Nq, Nk]
        Logits.
    visible : bool Tensor broadcastable to ``z``
        Which scores exist (padding and causality).
    theta : Tensor [H] or None
        Thresholds; ignored when ``mode == "off"``.
    T : float
        Soft-mask temperature (``mode == "soft"`` only).
    mode : {"off", "soft", "ste", "hard"}
        No pruning, soft mask (training), straight-through hard mask (forward = hard,
        gradient = soft) or hard mask (inference; weights still get gradients through
        the kept scores).

    Returns
    -------
    probs : Tensor [B, H, Nq, Nk]
        Attention weights; zero on invisible and (hard mode) pruned scores.
    m : Tensor or None
        The soft mask (``mode == "soft"``), else None.
    """
    visible = visible.expand_as(z)
    if mode == "off" or theta is None:
        return torch.softmax(z.masked_fill(~visible, _NEG), dim=-1) * visible, None
    if mode == "soft":
        u = (z - theta.view(1, -1, 1, 1)) / T
        logits = (z + nn.functional.logsigmoid(u)).masked_fill(~visible, _NEG)
        return torch.softmax(logits, dim=-1) * visible, torch.sigmoid(u)
    if mode == "ste":
        # straight-through: the forward value is the hard mask (what the hardware computes,
        # empty rows give zero), the gradient is the soft mask's (thresholds keep learning)
        soft, m = masked_attention(z, visible, theta, T, "soft")
        hard, _ = masked_attention(z, visible, theta, T, "hard")
        return hard + (soft - soft.detach()), m
    if mode == "hard":
        keep = hard_keep(z, theta) & visible
        # Rows with no survivor: softmax of all-_NEG is uniform, times keep (all 0) gives 0.
        return torch.softmax(z.masked_fill(~keep, _NEG), dim=-1) * keep, None
    raise ValueError(f"mode must be 'off', 'soft', 'ste' or 'hard', not {mode!r}")


def regularizer(m: torch.Tensor, visible: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of the soft mask over visible scores, and the visible count (for a pooled mean)."""
    vis = visible.expand_as(m).to(m.dtype)
    return (m * vis).sum(), vis.sum()


def anneal_T(step: int, steps: int, T0: float, T1: float) -> float:
    """Geometric temperature schedule ``T0 * (T1 / T0) ** (step / (steps - 1))``."""
    if steps <= 1:
        return T1
    return T0 * (T1 / T0) ** (step / (steps - 1))


class ThresholdState(nn.Module):
    """Thresholds of one attention layer (one per head) plus its bookkeeping.

    Parameters
    ----------
    heads : int
        Number of (query) heads.
    name : str
        Layer name used in reports (e.g. ``"layer3"``).
    """

    def __init__(self, heads: int, name: str) -> None:
        super().__init__()
        self.name = name
        self.theta = nn.Parameter(torch.zeros(heads))
        self.ctrl: PruningController | None = None


@dataclass
class PruningController:
    """Shared mode, temperature and statistics of every thresholded layer of a model.

    Attributes
    ----------
    states : list of ThresholdState
        One per attention layer, in layer order.
    mode : str
        ``"off"``, ``"soft"``, ``"ste"`` or ``"hard"``.
    T : float
        Current soft-mask temperature.
    stats : bool
        Accumulate hard-mask kept/visible counts per layer and head (any mode).
    capture : set of int
        Layer indices whose q, k, v (after RoPE / GQA expansion) and visibility are kept.
    calibrate : bool
        Keep the visible logits per layer and head (for threshold initialisation).
    """

    states: list[ThresholdState]
    mode: str = "off"
    T: float = 1.0
    stats: bool = False
    capture: set[int] = field(default_factory=set)
    calibrate: bool = False
    reg_sum: Any = 0.0
    reg_count: Any = 0.0
    kept: dict[int, torch.Tensor] = field(default_factory=dict)
    seen: dict[int, torch.Tensor] = field(default_factory=dict)
    captured: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    calib: dict[int, list[torch.Tensor]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for s in self.states:
            s.ctrl = self

    def index(self, state: ThresholdState) -> int:
        """Layer index of ``state``."""
        return next(i for i, s in enumerate(self.states) if s is state)

    def parameters(self) -> list[nn.Parameter]:
        """The threshold parameters of every layer."""
        return [s.theta for s in self.states]

    def reset_reg(self) -> None:
        """Clear the regularizer accumulators (call before each training forward)."""
        self.reg_sum, self.reg_count = 0.0, 0.0

    def reg(self) -> torch.Tensor:
        """Pooled ``mean(m)`` over all visible scores of the last forward(s)."""
        if not torch.is_tensor(self.reg_sum):
            return torch.zeros(())
        return self.reg_sum / self.reg_count.clamp_min(1.0)

    def reset_stats(self) -> None:
        """Clear the per-layer kept/visible counters."""
        self.kept, self.seen = {}, {}

    def pruned_fraction(self) -> list[list[float]]:
        """Hard-mask pruned fraction per layer and head, from the accumulated counts."""
        out = []
        for i in range(len(self.states)):
            if i not in self.seen:
                out.append([])
                continue
            out.append((1.0 - self.kept[i] / self.seen[i].clamp_min(1.0)).tolist())
        return out

    def pruned_fraction_layers(self) -> list[float]:
        """Hard-mask pruned fraction per layer (pooled over heads)."""
        return [float(1.0 - self.kept[i].sum() / self.seen[i].sum().clamp_min(1.0))
                if i in self.seen else float("nan") for i in range(len(self.states))]

    def pruned_fraction_total(self) -> float:
        """Hard-mask pruned fraction over every layer and head."""
        k = sum(float(v.sum()) for v in self.kept.values())
        s = sum(float(v.sum()) for v in self.seen.values())
        return 1.0 - k / max(s, 1.0)

    def thetas(self) -> list[list[float]]:
        """Current thresholds, per layer and head."""
        return [s.theta.detach().tolist() for s in self.states]

    @torch.no_grad()
    def init_from_calibration(self, quantile: float) -> None:
        """Set each head's theta to the ``quantile`` of its calibration logits."""
        for i, s in enumerate(self.states):
            zs = torch.cat(self.calib[i], dim=1)  # [H, n]
            for h in range(zs.shape[0]):
                zh = zs[h]
                s.theta[h] = torch.quantile(zh[:200_000], quantile)
        self.calib = {}


def attend(state: ThresholdState | None, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
           visible: torch.Tensor, scaling: float | None = None) -> torch.Tensor:
    """Thresholded attention for the project's own models (ViT, MemN2N).

    Parameters
    ----------
    state : ThresholdState or None
        The layer's thresholds (its controller gives mode and T); None = plain attention.
    q, k, v : Tensor [B, H, N, d]
        Queries, keys, values.
    visible : bool Tensor broadcastable to [B, H, Nq, Nk]
    scaling : float, optional
        Logit scale; default ``1 / sqrt(d)``.

    Returns
    -------
    Tensor [B, H, Nq, dv]
    """
    if scaling is None:
        scaling = 1.0 / math.sqrt(q.shape[-1])
    z = torch.matmul(q, k.transpose(-1, -2)) * scaling
    if state is None or state.ctrl is None:
        probs, _ = masked_attention(z, visible, None, 1.0, "off")
        return torch.matmul(probs, v)
    ctrl = state.ctrl
    i = ctrl.index(state)
    vis = visible.expand_as(z)
    if i in ctrl.capture:
        ctrl.captured[i] = {"q": q.detach(), "k": k.detach(), "v": v.detach(),
                            "visible": vis.detach()}
    if ctrl.calibrate:
        zz = torch.stack([z.detach()[:, h][vis[:, h]] for h in range(z.shape[1])])
        ctrl.calib.setdefault(i, []).append(zz)
    if ctrl.stats:
        with torch.no_grad():
            keep = hard_keep(z, state.theta) & vis
            kept = keep.sum(dim=(0, 2, 3)).double()
            seen = vis.sum(dim=(0, 2, 3)).double()
            ctrl.kept[i] = ctrl.kept.get(i, 0) + kept
            ctrl.seen[i] = ctrl.seen.get(i, 0) + seen
    probs, m = masked_attention(z, vis, state.theta, ctrl.T, ctrl.mode)
    if m is not None:
        s, c = regularizer(m, vis)
        ctrl.reg_sum = ctrl.reg_sum + s
        ctrl.reg_count = ctrl.reg_count + c
    return torch.matmul(probs, v)


def _hf_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor,
                  value: torch.Tensor, attention_mask: torch.Tensor | None,
                  scaling: float | None = None, dropout: float = 0.0,
                  **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Hugging Face attention function: eager attention plus the LeOPArd threshold mask."""
    groups = int(getattr(module, "num_key_value_groups", 1))
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    nq, nk = query.shape[-2], key.shape[-2]
    if attention_mask is None:
        visible = torch.ones(1, 1, nq, nk, dtype=torch.bool, device=query.device)
        if getattr(module, "is_causal", False) and nq > 1:
            visible = torch.ones(nq, nk, dtype=torch.bool).tril(nk - nq).view(1, 1, nq, nk)
    elif attention_mask.dtype == torch.bool:
        visible = attention_mask[..., :nk]
    else:
        visible = attention_mask[..., :nk] > _NEG / 2
    state = getattr(module, "lp_state", None)
    out = attend(state, query, key, value, visible, scaling)
    if dropout > 0.0 and module.training:
        out = nn.functional.dropout(out, p=dropout)
    return out.transpose(1, 2).contiguous(), None  # type: ignore[return-value]


def install_hf(attn_modules: list[nn.Module], heads: int) -> PruningController:
    """Attach thresholds to Hugging Face attention modules and route "eager" through them.

    The model must have been loaded with ``attn_implementation="eager"``. The global
    "eager" entry of transformers' attention interface is replaced by a function that is
    exactly eager attention when a module has no thresholds (``mode == "off"``).

    Parameters
    ----------
    attn_modules : list of nn.Module
        The self-attention modules, in layer order.
    heads : int
        Query heads per layer.

    Returns
    -------
    PruningController
    """
    from transformers.modeling_utils import AttentionInterface

    AttentionInterface.register("eager", _hf_attention)
    states = []
    for i, mod in enumerate(attn_modules):
        st = ThresholdState(heads, f"layer{i}")
        mod.lp_state = st  # registers as a submodule: theta moves with the model
        states.append(st)
    return PruningController(states)
