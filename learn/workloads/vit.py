"""Workload (c): a small ViT trained from scratch on Fashion-MNIST.

4 layers, width 64, 4 heads of d_head 16, patch 7 (16 patches + a class token = 17
tokens). Data: Debian ``dataset-fashion-mnist``. Metric: test accuracy (10k images).
Thresholds and weights are trained together. This is the cheapest model: the lambda sweep
runs here.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from learn.threshold import PruningController, ThresholdState, anneal_T, attend
from learn.workloads.common import (
    FASHION_DIR,
    Timer,
    export_captures,
    seed_all,
    setup_threads,
    write_thresholds,
)

MODEL = "ViT (4 layers, d_model 64, 4 heads x d_head 16, patch 7), trained here"
HEADS, DIM, LAYERS, PATCH = 4, 64, 4, 7


def load_fashion(folder: Path = FASHION_DIR) -> tuple[torch.Tensor, ...]:
    """Train/test images (float, [N, 1, 28, 28], normalized) and labels."""
    def imgs(name: str) -> np.ndarray:
        with gzip.open(folder / name) as f:
            return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)

    def labels(name: str) -> np.ndarray:
        with gzip.open(folder / name) as f:
            return np.frombuffer(f.read(), np.uint8, offset=8)

    xtr = torch.tensor(imgs("train-images-idx3-ubyte.gz"), dtype=torch.float32) / 255.0
    xte = torch.tensor(imgs("t10k-images-idx3-ubyte.gz"), dtype=torch.float32) / 255.0
    mean, std = 0.286, 0.353
    return ((xtr - mean) / std, torch.tensor(labels("train-labels-idx1-ubyte.gz")).long(),
            (xte - mean) / std, torch.tensor(labels("t10k-labels-idx1-ubyte.gz")).long())


class Block(nn.Module):
    """Pre-norm transformer block with thresholded attention."""

    def __init__(self, state: ThresholdState) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)
        self.mlp = nn.Sequential(nn.Linear(DIM, 2 * DIM), nn.GELU(), nn.Linear(2 * DIM, DIM))
        self.state = state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One block."""
        B, N, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, N, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
        vis = torch.ones(1, 1, N, N, dtype=torch.bool)
        a = attend(self.state, q, k, v, vis)
        x = x + self.proj(a.transpose(1, 2).reshape(B, N, DIM))
        return x + self.mlp(self.ln2(x))


class ViT(nn.Module):
    """Tiny vision transformer."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(1, DIM, PATCH, PATCH)
        n = (28 // PATCH) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos = nn.Parameter(torch.randn(1, n + 1, DIM) * 0.02)
        states = [ThresholdState(HEADS, f"layer{i}") for i in range(LAYERS)]
        self.blocks = nn.ModuleList(Block(s) for s in states)
        self.ln = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, 10)
        self.ctrl = PruningController(states)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        p = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(len(p), -1, -1), p], 1) + self.pos
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln(x[:, 0]))


@torch.no_grad()
def evaluate(model: ViT, x: torch.Tensor, y: torch.Tensor, mode: str) -> dict[str, Any]:
    """Accuracy and hard-mask pruned fractions with the controller in ``mode``."""
    model.eval()
    ctrl = model.ctrl
    ctrl.mode, ctrl.stats = mode, True
    ctrl.reset_stats()
    correct = sum(int((model(x[i:i + 1000]).argmax(-1) == y[i:i + 1000]).sum())
                  for i in range(0, len(x), 1000))
    ctrl.stats = False
    return {"accuracy": correct / len(x), "pruned_fraction_layers": ctrl.pruned_fraction_layers(),
            "pruned_fraction_total": ctrl.pruned_fraction_total()}


def train_base(epochs: int = 2, bs: int = 128, seed: int = 0) -> tuple[ViT, tuple, dict]:
    """Train the ViT without pruning; return model, data and baseline metrics."""
    setup_threads()
    seed_all(seed)
    timer = Timer()
    data = load_fashion()
    xtr, ytr, xte, yte = data
    model = ViT()
    steps = epochs * math.ceil(len(xtr) / bs)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    lossf = nn.CrossEntropyLoss()
    model.ctrl.mode = "off"
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), bs):
            idx = perm[i:i + bs]
            loss = lossf(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    base = evaluate(model, xte, yte, "off")
    base["seconds"] = timer.s()
    return model, data, base


def prune(model: ViT, data: tuple, lam: float, steps: int = 300, bs: int = 128,
          T0: float = 1.0, T1: float = 0.02, init_quantile: float = 0.1,
          seed: int = 0) -> dict[str, Any]:
    """Co-train thresholds and weights with the soft mask; evaluate with the hard mask."""
    timer = Timer()
    seed_all(seed)
    xtr, ytr, xte, yte = data
    ctrl = model.ctrl
    ctrl.calibrate, ctrl.mode = True, "off"
    with torch.no_grad():
        model.eval()
        model(xtr[:512])
    ctrl.calibrate = False
    ctrl.init_from_calibration(init_quantile)
    theta_ids = {id(p) for p in ctrl.parameters()}
    weights = [p for p in model.parameters() if id(p) not in theta_ids]
    opt = torch.optim.AdamW([{"params": weights, "lr": 3e-4},
                             {"params": ctrl.parameters(), "lr": 0.05, "weight_decay": 0.0}])
    lossf = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed + 1)
    ctrl.mode = "soft"
    model.train()
    log = []
    for step in range(steps):
        idx = torch.randint(0, len(xtr), (bs,), generator=g)
        ctrl.T = anneal_T(step, steps, T0, T1)
        ctrl.reset_reg()
        task = lossf(model(xtr[idx]), ytr[idx])
        reg = ctrl.reg()
        opt.zero_grad()
        (task + lam * reg).backward()
        opt.step()
        if step % 50 == 0:
            log.append({"step": step, "T": ctrl.T, "task": float(task.detach()),
                        "mean_m": float(reg.detach())})
    res = evaluate(model, xte, yte, "hard")
    res.update({"lambda": lam, "seconds": timer.s(), "log": log, "theta": ctrl.thetas(),
                "T_schedule": {"kind": "geometric", "T0": T0, "T1": T1, "steps": steps,
                               "init": f"per-head {init_quantile} quantile of calibration "
                                       "logits"}})
    return res


def run(lams: list[float], export_lam: float, epochs: int = 2, steps: int = 300,
        seed: int = 0) -> dict[str, Any]:
    """Baseline, then one pruning run per lambda (each from the same baseline weights).

    The run with ``export_lam`` is the reported one and is exported as traces.
    """
    import copy

    timer = Timer()
    base_model, data, base = train_base(epochs, seed=seed)
    sweep = []
    chosen: dict[str, Any] = {}
    for lam in lams:
        m = copy.deepcopy(base_model)
        m.ctrl = PruningController([b.state for b in m.blocks])
        r = prune(m, data, lam, steps=steps, seed=seed)
        sweep.append({k: r[k] for k in ("lambda", "accuracy", "pruned_fraction_total",
                                         "pruned_fraction_layers", "seconds")})
        if lam == export_lam:
            chosen, chosen_model = r, m
    res: dict[str, Any] = {
        "workload": "vit", "model": MODEL,
        "data": "Fashion-MNIST (Debian dataset-fashion-mnist): 60k train, 10k test",
        "metric": "accuracy", "higher_is_better": True,
        "metric_no_pruning": base["accuracy"], "metric_learned": chosen["accuracy"],
        "pruned_fraction_layers": chosen["pruned_fraction_layers"],
        "pruned_fraction_total": chosen["pruned_fraction_total"],
        "lambda": export_lam, "T_schedule": chosen["T_schedule"],
        "trained": "thresholds + weights",
        "steps": {"base_epochs": epochs, "prune": steps, "batch": 128},
        "seconds": {"base": base["seconds"], "prune_one_lambda": chosen["seconds"]},
        "sweep": sweep, "theta": chosen["theta"], "log": chosen["log"],
    }
    res["files"] = _export(chosen_model, data, res)
    res["seconds"]["total"] = timer.s()
    return res


def _export(model: ViT, data: tuple, res: dict[str, Any]) -> list[dict[str, Any]]:
    xte, yte = data[2], data[3]
    ctrl = model.ctrl
    ctrl.capture, ctrl.mode = {0, 1, 3}, "hard"
    model.eval()
    with torch.no_grad():
        model(xte[:1])
    meta = {"threshold_method": "learned (soft sigmoid mask, T annealed, lambda*mean(m))",
            "lambda": res["lambda"], "T_schedule": res["T_schedule"],
            "trained": "thresholds + weights", "tokens": 17,
            "input_source": f"Fashion-MNIST test image 0 (label {int(yte[0])}), 16 patches + "
                            "class token",
            "metric": {"accuracy_no_pruning": res["metric_no_pruning"],
                       "accuracy_learned": res["metric_learned"]}}
    files = export_captures(ctrl, "vit", MODEL, [0, 1, 3], 0, "Fashion-MNIST test image 0",
                            False, meta)
    files.append({"path": write_thresholds("vit", MODEL, ctrl, res["lambda"], res["T_schedule"],
                                           {"trained": "thresholds + weights", "heads": HEADS,
                                            "head_dim": DIM // HEADS, "causal": False})})
    return files
