"""The two-stage pruning recipe (issue 16), its control run and the paired report.

Starting from a converged baseline (the *teacher*, never pruned):

1. **soft stage** (``soft_steps``): thresholds and weights train together with the soft
   mask (or its straight-through hard version, ``soft_forward="ste"``), the temperature
   anneals geometrically from ``T0`` to ``T1`` over the first ``anneal_frac`` of the stage
   and then stays at ``T1``. Loss = ``(1 - a) * task + a * KD(student, teacher) +
   lam * mean(m)``. ``lam`` is steered toward a target pruned fraction: after each step
   ``lam = I + kp * e``, ``I += gain * e``, ``e = target - pruned`` where ``pruned`` is
   the hard-mask pruned fraction of that batch (PI control; lambda may turn negative to
   pull thresholds back).
   The weight and threshold learning rates decay (cosine, to 1/10) over the stage.
2. **hard stage** (``hard_steps``): thresholds frozen, hard mask in the forward pass (what
   the hardware computes, empty rows output zero), weights fine-tuned with
   ``(1 - a) * task + a * KD + lam * mean(m)``. The regularizer stays (``hard_reg``,
   default on), with its gradient reaching only the weights through a straight-through
   mask (forward hard, backward soft at ``T1``) and lambda still steered: without it the
   weights undo the pruning, since softmax is invariant to a shift of a row's logits and
   raising them above the frozen thresholds costs nothing (ViT: 85 % -> 77 % pruned in
   325 hard-stage steps).

The **control** starts from the same baseline weights and runs the same number of steps on
the same batches with the same loss (task + KD from the same teacher) and optimizer
schedule, without any mask, so that drift from the extra training alone cancels in the
paired comparison.

Each stage is cached as a checkpoint under ``<out>/ckpt/<workload>/`` so that a long
workload runs as several short commands (``--stage base|prune|control|report``).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from learn.stats import paired_accuracy, paired_perplexity, verdict
from learn.threshold import PruningController, anneal_T

__all__ = ["Recipe", "Workload", "LambdaSteer", "kd_loss", "calibrate", "train_recipe",
           "run_stages", "STAGES"]

STAGES = ("base", "prune", "control", "report")


@dataclass
class Recipe:
    """Hyper-parameters of the two-stage recipe (shared by the pruned and control runs)."""

    target: float = 0.85
    soft_steps: int = 600
    hard_steps: int = 600
    batch: int = 128
    lam0: float = 0.05
    lam_gain: float = 0.01
    lam_kp: float = 5.0
    lam_max: float = 20.0
    theta_lr: float = 0.02
    weight_lr: float = 3e-4
    weight_decay: float = 0.01
    T0: float = 1.0
    T1: float = 0.02
    anneal_frac: float = 0.75
    kd_alpha: float = 0.5
    kd_T: float = 2.0
    init_quantile: float = 0.1
    soft_forward: str = "soft"
    hard_reg: bool = True
    clip: float = 1.0
    seed: int = 0


class Workload(Protocol):
    """What a workload provides to :func:`train_recipe` and :func:`run_stages`."""

    name: str
    higher_is_better: bool

    def new_model(self) -> nn.Module:
        """A fresh model with a ``ctrl`` (:class:`PruningController`) attribute."""
        ...

    def train_base(self, model: nn.Module) -> dict[str, Any]:
        """Train the baseline in place (no pruning); return its log."""
        ...

    def batch(self, g: torch.Generator, bs: int) -> Any:
        """A training batch drawn with ``g``."""
        ...

    def forward(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Logits of ``model`` on ``batch``."""
        ...

    def task_loss(self, logits: torch.Tensor, batch: Any) -> torch.Tensor:
        """The task loss."""
        ...

    def calibration_batches(self) -> Iterable[Any]:
        """Batches whose logits initialise the thresholds."""
        ...

    def trainable(self, model: nn.Module) -> list[nn.Parameter]:
        """Weights trained by the recipe (never the thresholds)."""
        ...

    def evaluate(self, model: nn.Module, split: str, mode: str) -> dict[str, Any]:
        """Metric, per-item results and pruned fractions on ``split`` in ``mode``."""
        ...

    def export(self, model: nn.Module, res: dict[str, Any]) -> list[dict[str, Any]]:
        """Write traces and thresholds of the pruned model; return the file list."""
        ...

    def describe(self) -> dict[str, Any]:
        """Model, data and budget description for the results."""
        ...


class LambdaSteer:
    """Proportional-integral controller steering lambda toward a target pruned fraction.

    After each step, with ``e = target - pruned``: ``I += gain * e`` and
    ``lam = I + kp * e``, clipped to ``[-hi, hi]``. Lambda rises while too little is
    pruned and falls, through zero if needed, once too much is (a negative lambda pulls
    the thresholds down). A positive-only or purely integral lambda overshoots: with Adam
    on the thresholds any positive lambda keeps raising them when the task loss hardly
    resists, as it does under the soft mask.

    Parameters
    ----------
    lam : float
        Initial lambda (initial integral term).
    target : float
        Target hard-mask pruned fraction.
    gain : float
        Integral gain (lambda change per step and unit of error).
    kp : float
        Proportional gain.
    hi : float
        Lambda is clipped to ``[-hi, hi]``.
    """

    def __init__(self, lam: float, target: float, gain: float, kp: float, hi: float) -> None:
        self.lam, self.integral, self.target = lam, lam, target
        self.gain, self.kp, self.hi = gain, kp, hi

    def update(self, pruned: float) -> float:
        """Update lambda from the last measured pruned fraction; return the new lambda."""
        e = self.target - pruned
        self.integral = float(np.clip(self.integral + self.gain * e, -self.hi, self.hi))
        self.lam = float(np.clip(self.integral + self.kp * e, -self.hi, self.hi))
        return self.lam


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, T: float) -> torch.Tensor:
    """Distillation loss ``T^2 KL(softmax(t/T) || softmax(s/T))`` averaged over rows.

    Parameters
    ----------
    student, teacher : Tensor [..., C]
        Logits; every leading position is one row.
    T : float
        Distillation temperature.

    Returns
    -------
    Tensor
        Scalar loss.
    """
    s = student.reshape(-1, student.shape[-1]) / T
    t = teacher.reshape(-1, teacher.shape[-1]) / T
    return nn.functional.kl_div(nn.functional.log_softmax(s, -1),
                                nn.functional.log_softmax(t, -1), log_target=True,
                                reduction="batchmean") * T * T


@torch.no_grad()
def calibrate(model: nn.Module, wl: Workload, quantile: float) -> None:
    """Initialise each head's threshold at ``quantile`` of its calibration logits."""
    ctrl: PruningController = model.ctrl  # type: ignore[assignment]
    ctrl.calibrate, ctrl.mode = True, "off"
    model.eval()
    for b in wl.calibration_batches():
        wl.forward(model, b)
    ctrl.calibrate = False
    ctrl.init_from_calibration(quantile)


def _cosine(step: int, steps: int, lr: float) -> float:
    """Cosine decay from ``lr`` to ``lr / 10`` over ``steps``."""
    return lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * step / max(steps - 1, 1))))


def train_recipe(model: nn.Module, teacher: nn.Module, wl: Workload, rc: Recipe,
                 prune: bool) -> dict[str, Any]:
    """Run the two-stage recipe (``prune=True``) or its control (``prune=False``) in place.

    Parameters
    ----------
    model : nn.Module
        Starts as a copy of the baseline; trained in place.
    teacher : nn.Module
        The baseline, unpruned and frozen (distillation target).
    wl : Workload
        The workload.
    rc : Recipe
        Hyper-parameters.
    prune : bool
        True: soft then hard stage; False: the control, same steps/batches/loss, no mask.

    Returns
    -------
    dict
        Log (every 25 steps), final lambda, stage times, thresholds.
    """
    ctrl: PruningController = model.ctrl  # type: ignore[assignment]
    tctrl: PruningController = teacher.ctrl  # type: ignore[assignment]
    tctrl.mode = "off"
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    if prune:
        calibrate(model, wl, rc.init_quantile)
    g = torch.Generator().manual_seed(rc.seed + 12345)
    thetas = ctrl.parameters()
    theta_ids = {id(p) for p in thetas}
    weights = [p for p in wl.trainable(model) if id(p) not in theta_ids]
    for p in weights:
        p.requires_grad_(True)
    steer = LambdaSteer(rc.lam0, rc.target, rc.lam_gain, rc.lam_kp, rc.lam_max)
    log: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    anneal = max(int(rc.anneal_frac * rc.soft_steps), 1)
    for stage, steps in (("soft", rc.soft_steps), ("hard", rc.hard_steps)):
        t0 = time.perf_counter()
        groups: list[dict[str, Any]] = [{"params": weights, "lr": rc.weight_lr,
                                         "weight_decay": rc.weight_decay}]
        if prune and stage == "soft":
            groups.append({"params": thetas, "lr": rc.theta_lr, "weight_decay": 0.0})
        for p in thetas:
            p.requires_grad_(prune and stage == "soft")
        opt = torch.optim.AdamW(groups)
        reg_on = prune and (stage == "soft" or rc.hard_reg)
        ctrl.mode = "off" if not prune else (
            rc.soft_forward if stage == "soft" else ("ste" if rc.hard_reg else "hard"))
        model.train()
        for step in range(steps):
            opt.param_groups[0]["lr"] = _cosine(step, steps, rc.weight_lr)
            if len(opt.param_groups) > 1:
                opt.param_groups[1]["lr"] = _cosine(step, steps, rc.theta_lr)
            ctrl.T = (anneal_T(min(step, anneal - 1), anneal, rc.T0, rc.T1)
                      if stage == "soft" else rc.T1)
            b = wl.batch(g, rc.batch)
            tlog = None
            if rc.kd_alpha > 0:  # kd_alpha 0: no distillation, no teacher forward
                with torch.no_grad():
                    tlog = wl.forward(teacher, b)
            ctrl.reset_reg()
            ctrl.reset_stats()
            ctrl.stats = prune
            logits = wl.forward(model, b)
            ctrl.stats = False
            task = wl.task_loss(logits, b)
            kd = kd_loss(logits, tlog, rc.kd_T) if tlog is not None else torch.zeros(())
            loss = (1.0 - rc.kd_alpha) * task + rc.kd_alpha * kd
            reg = ctrl.reg()
            if reg_on:
                loss = loss + steer.lam * reg
            opt.zero_grad()
            loss.backward()
            if rc.clip:
                nn.utils.clip_grad_norm_(weights, rc.clip)
            opt.step()
            pruned = ctrl.pruned_fraction_total() if prune else 0.0
            lam = steer.lam
            if reg_on:
                steer.update(pruned)
            if step % 25 == 0 or step == steps - 1:
                log.append({"stage": stage, "step": step, "T": ctrl.T, "lam": lam,
                            "task": float(task.detach()), "kd": float(kd.detach()),
                            "mean_m": float(reg.detach()) if prune else None,
                            "pruned_batch": pruned})
                print(json.dumps(log[-1]), flush=True)
        seconds[stage] = round(time.perf_counter() - t0, 1)
        if stage == "soft":
            theta_soft = ctrl.thetas()
    for p in thetas:
        p.requires_grad_(False)
    return {"log": log, "lam_final": steer.lam, "seconds": seconds,
            "theta": ctrl.thetas() if prune else None,
            "theta_after_soft": theta_soft if prune else None}


def _ckpt(out: Path, wl: Workload) -> Path:
    d = out / "ckpt" / wl.name
    d.mkdir(parents=True, exist_ok=True)
    return d


def _load(model: nn.Module, path: Path) -> nn.Module:
    model.load_state_dict(torch.load(path, weights_only=True))
    return model


def _summ(ev: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ev.items() if k not in ("items", "nll", "tokens")}


def run_stages(wl: Workload, rc: Recipe, out: Path, stages: Iterable[str],
               force: bool = False) -> dict[str, Any] | None:
    """Run (or reuse from checkpoints) the stages of one workload.

    Parameters
    ----------
    wl : Workload
    rc : Recipe
    out : Path
        Work folder; checkpoints go to ``out/ckpt/<workload>/``.
    stages : iterable of str
        Subset of :data:`STAGES`, run in that order; a stage whose checkpoint exists is
        skipped unless ``force``.
    force : bool
        Re-run the requested stages even if their checkpoints exist.

    Returns
    -------
    dict or None
        The results entry when ``report`` ran, else None.
    """
    ck = _ckpt(out, wl)
    stages = list(stages)
    if "base" in stages and (force or not (ck / "base.pt").is_file()):
        model = wl.new_model()
        info = wl.train_base(model)
        torch.save(model.state_dict(), ck / "base.pt")
        (ck / "base.json").write_text(json.dumps(info, indent=1) + "\n")
        print(json.dumps({"base": _summ(info)}), flush=True)
    for name, prune in (("prune", True), ("control", False)):
        if name in stages and (force or not (ck / f"{name}.pt").is_file()):
            if not (ck / "base.pt").is_file():
                raise FileNotFoundError(f"{ck / 'base.pt'}: run --stage base first")
            teacher = _load(wl.new_model(), ck / "base.pt")
            model = copy.deepcopy(teacher)
            model.ctrl = PruningController(list(_states(model)))
            info = train_recipe(model, teacher, wl, rc, prune)
            info["recipe"] = asdict(rc)
            torch.save(model.state_dict(), ck / f"{name}.pt")
            (ck / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
    if "report" not in stages:
        return None
    return report(wl, rc, ck)


def _states(model: nn.Module) -> list[Any]:
    """The model's threshold states, in layer order (from its controller)."""
    return list(model.ctrl.states)  # type: ignore[union-attr]


def report(wl: Workload, rc: Recipe, ck: Path) -> dict[str, Any]:
    """Evaluate baseline, control and pruned models on the same items; compare; export.

    The recipe recorded is the one the pruned run used (``prune.json``), not ``rc``.
    """
    t0 = time.perf_counter()
    base = _load(wl.new_model(), ck / "base.pt")
    has_control = (ck / "control.pt").is_file()
    # without a control run (it did not fit in the time), the baseline stands in for it,
    # and the results say so (``control_missing``)
    control = _load(wl.new_model(), ck / "control.pt") if has_control else base
    pruned = _load(wl.new_model(), ck / "prune.pt")
    pinfo = json.loads((ck / "prune.json").read_text())
    cinfo = (json.loads((ck / "control.json").read_text()) if has_control
             else {"recipe": None, "seconds": {}})
    binfo = json.loads((ck / "base.json").read_text())
    ev: dict[str, dict[str, Any]] = {}
    for split in ("val", "test"):
        ev[f"base_{split}"] = wl.evaluate(base, split, "off")
        ev[f"control_{split}"] = (wl.evaluate(control, split, "off") if has_control
                                  else ev[f"base_{split}"])
        ev[f"pruned_{split}"] = wl.evaluate(pruned, split, "hard")
    comps: dict[str, Any] = {}
    for split in ("val", "test"):
        p, c, b = ev[f"pruned_{split}"], ev[f"control_{split}"], ev[f"base_{split}"]
        if wl.higher_is_better:
            vs_c = paired_accuracy(p["items"], c["items"])
            vs_b = paired_accuracy(p["items"], b["items"])
            c_vs_b = paired_accuracy(c["items"], b["items"])
        else:
            vs_c = paired_perplexity(p["nll"], c["nll"], p["tokens"])
            vs_b = paired_perplexity(p["nll"], b["nll"], p["tokens"])
            c_vs_b = paired_perplexity(c["nll"], b["nll"], p["tokens"])
        vs_c["verdict_0.2pct"] = verdict(vs_c["ci95_bootstrap"], 0.002, wl.higher_is_better)
        comps[split] = {"pruned_vs_control": vs_c, "pruned_vs_base": vs_b,
                        "control_vs_base": c_vs_b}
    test = comps["test"]["pruned_vs_control"]
    res: dict[str, Any] = {
        "protocol": "issue16-v2", "workload": wl.name, **wl.describe(),
        "control_missing": not has_control,
        "higher_is_better": wl.higher_is_better,
        "metric_no_pruning": ev["control_test"]["metric"],
        "metric_base": ev["base_test"]["metric"],
        "metric_learned": ev["pruned_test"]["metric"],
        "pruned_fraction_layers": ev["pruned_test"]["pruned_fraction_layers"],
        "pruned_fraction_total": ev["pruned_test"]["pruned_fraction_total"],
        "pruned_fraction_val": ev["pruned_val"]["pruned_fraction_total"],
        "paired": comps, "verdict": test["verdict_0.2pct"],
        "recipe": pinfo["recipe"], "control_recipe": cinfo["recipe"],
        "lambda_final": pinfo["lam_final"],
        "theta": pinfo["theta"], "log": pinfo["log"],
        "seconds": {"base": binfo.get("seconds"), "prune": pinfo["seconds"],
                    "control": cinfo["seconds"]},
        "evaluations": {k: _summ(v) for k, v in ev.items()},
        "trained": wl.describe().get("trained", "thresholds + weights"),
    }
    if "per_task" in ev["base_test"]:
        res["per_task"] = {k: ev[f"{k}_test"]["per_task"] for k in ("base", "control", "pruned")}
    res["files"] = wl.export(pruned, res)
    res["seconds"]["report"] = round(time.perf_counter() - t0, 1)
    return res
