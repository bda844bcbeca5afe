"""Workload (c): a small ViT trained from scratch on Fashion-MNIST.

4 layers, width 64, 4 heads of d_head 16, patch 4 (49 patches + a class token = 50
tokens). Data: Debian ``dataset-fashion-mnist``: the 60k training images are split into
55k for training and 5k for validation (fixed permutation), the 10k test images are the
test set. Metric: accuracy. Thresholds and weights are trained together with the
two-stage recipe of :mod:`learn.recipe`.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from learn.threshold import PruningController, ThresholdState, attend
from learn.workloads.common import (
    FASHION_DIR,
    RECIPE_METHOD,
    Timer,
    export_captures,
    recipe_schedule,
    seed_all,
    setup_threads,
    write_thresholds,
)

MODEL = "ViT (4 layers, d_model 64, 4 heads x d_head 16, patch 4, 50 tokens), trained here"
HEADS, DIM, LAYERS, PATCH = 4, 64, 4, 4
TOKENS = (28 // PATCH) ** 2 + 1
N_VAL = 5000


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
    """Accuracy, per-item correctness and hard-mask pruned fractions in ``mode``."""
    model.eval()
    ctrl = model.ctrl
    ctrl.mode, ctrl.stats = mode, True
    ctrl.reset_stats()
    ok = torch.cat([model(x[i:i + 1000]).argmax(-1) == y[i:i + 1000]
                    for i in range(0, len(x), 1000)])
    ctrl.stats = False
    return {"metric": float(ok.float().mean()), "items": ok.numpy(), "n": len(x),
            "pruned_fraction_layers": ctrl.pruned_fraction_layers(),
            "pruned_fraction_total": ctrl.pruned_fraction_total()}


class VitWorkload:
    """The ViT workload for :func:`learn.recipe.run_stages`.

    Parameters
    ----------
    epochs : int
        Baseline training epochs (AdamW, one-cycle, peak lr 2e-3, batch 128).
    seed : int
        Seed of the baseline and of the data split.
    """

    name = "vit"
    higher_is_better = True

    def __init__(self, epochs: int = 8, seed: int = 0) -> None:
        setup_threads()
        self.epochs, self.seed = epochs, seed
        xtr, ytr, self.xte, self.yte = load_fashion()
        perm = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(1234))
        va, tr = perm[:N_VAL], perm[N_VAL:]
        self.xtr, self.ytr, self.xva, self.yva = xtr[tr], ytr[tr], xtr[va], ytr[va]

    def new_model(self) -> ViT:
        """A fresh ViT (seeded)."""
        seed_all(self.seed)
        return ViT()

    def train_base(self, model: ViT) -> dict[str, Any]:
        """Train without pruning; return timing and validation accuracy."""
        timer = Timer()
        bs = 128
        steps = self.epochs * math.ceil(len(self.xtr) / bs)
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
        lossf = nn.CrossEntropyLoss()
        model.ctrl.mode = "off"
        g = torch.Generator().manual_seed(self.seed)
        log = []
        for ep in range(self.epochs):
            model.train()
            perm = torch.randperm(len(self.xtr), generator=g)
            for i in range(0, len(self.xtr), bs):
                idx = perm[i:i + bs]
                loss = lossf(model(self.xtr[idx]), self.ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
            acc = evaluate(model, self.xva, self.yva, "off")["metric"]
            log.append({"epoch": ep, "val_accuracy": acc, "seconds": timer.s()})
            print(log[-1], flush=True)
        return {"epochs": self.epochs, "batch": bs, "log": log, "seconds": timer.s(),
                "val_accuracy": log[-1]["val_accuracy"]}

    def batch(self, g: torch.Generator, bs: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random training batch."""
        idx = torch.randint(0, len(self.xtr), (bs,), generator=g)
        return self.xtr[idx], self.ytr[idx]

    def forward(self, model: ViT, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Class logits."""
        return model(batch[0])

    def task_loss(self, logits: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]
                  ) -> torch.Tensor:
        """Cross-entropy."""
        return nn.functional.cross_entropy(logits, batch[1])

    def calibration_batches(self) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """512 training images."""
        return [(self.xtr[:512], self.ytr[:512])]

    def trainable(self, model: ViT) -> list[nn.Parameter]:
        """Every weight."""
        return list(model.parameters())

    def evaluate(self, model: ViT, split: str, mode: str) -> dict[str, Any]:
        """Accuracy on ``split`` ("val": 5k held-out training images, "test": 10k)."""
        x, y = (self.xva, self.yva) if split == "val" else (self.xte, self.yte)
        return evaluate(model, x, y, mode)

    def describe(self) -> dict[str, Any]:
        """Model, data and budget."""
        return {"model": MODEL, "metric": "accuracy", "trained": "thresholds + weights",
                "data": f"Fashion-MNIST (Debian dataset-fashion-mnist): {len(self.xtr)} train, "
                        f"{len(self.xva)} validation (held out of the 60k), "
                        f"{len(self.xte)} test; {TOKENS} tokens",
                "baseline_epochs": self.epochs}

    def export(self, model: ViT, res: dict[str, Any]) -> list[dict[str, Any]]:
        """Traces of layers 0, 1, 3 on test image 0, and thresholds.json."""
        ctrl = model.ctrl
        ctrl.capture, ctrl.mode = {0, 1, 3}, "hard"
        model.eval()
        with torch.no_grad():
            model(self.xte[:1])
        schedule = recipe_schedule(res)
        meta = {"threshold_method": RECIPE_METHOD, "lambda": res["lambda_final"],
                "T_schedule": schedule, "trained": "thresholds + weights", "tokens": TOKENS,
                "input_source": f"Fashion-MNIST test image 0 (label {int(self.yte[0])}), "
                                f"{TOKENS - 1} patches + class token",
                "metric": {"accuracy_control": res["metric_no_pruning"],
                           "accuracy_learned": res["metric_learned"]}}
        files = export_captures(ctrl, "vit", MODEL, [0, 1, 3], 0, "Fashion-MNIST test image 0",
                                False, meta)
        files.append({"path": write_thresholds(
            "vit", MODEL, ctrl, res["lambda_final"], schedule,
            {"trained": "thresholds + weights", "heads": HEADS, "head_dim": DIM // HEADS,
             "causal": False, "tokens": TOKENS})})
        return files

