"""Workload (d): MemN2N on a bAbI-style task generator written here.

Three task types, in the spirit of bAbI (Weston et al. 2015, itself simulator-generated):

* ``single``: single supporting fact ("Where is Mary?");
* ``two``: two supporting facts ("Where is the football?" while someone carries it);
* ``count``: counting ("How many objects is John carrying?" -> none/one/two/three).

Model: end-to-end memory network (Sukhbaatar et al. 2015), 3 hops, adjacent weight tying,
position encoding, temporal encoding, embedding 32. The memory attention of each hop,
``z_i = u . m_i / sqrt(d)``, is treated as one head with its own threshold (the
``1/sqrt(d)`` is part of this model so that the logit matches the trace convention).
Stories have 10 to 50 sentences (uniform), the memory holds 50 (the bAbI setting of the
MemN2N paper). Data: 10,000 training, 1,000 validation and 10,000 test stories per task
(30k test items), each split generated with its own seed. Metric: accuracy (per task and
overall). Thresholds and weights are trained together with the two-stage recipe of
:mod:`learn.recipe`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from learn.threshold import PruningController, ThresholdState, attend
from learn.workloads.common import (
    RECIPE_METHOD,
    Timer,
    export_captures,
    recipe_schedule,
    seed_all,
    setup_threads,
    write_thresholds,
)

MODEL = "MemN2N (3 hops, adjacent tying, PE + temporal encoding, d 32, memory 50), trained here"
PEOPLE = ["mary", "john", "sandra", "daniel"]
PLACES = ["kitchen", "garden", "office", "hallway", "bathroom", "bedroom"]
OBJECTS = ["football", "apple", "milk"]
MOVE = ["moved to the", "went to the", "journeyed to the", "travelled to the"]
TAKE = ["picked up the", "got the", "grabbed the"]
DROP = ["dropped the", "discarded the", "put down the"]
COUNTS = ["none", "one", "two", "three"]
TASKS = ("single", "two", "count")
MEM, SENT_LEN, D, HOPS = 50, 6, 32, 3
MIN_SENTS = 10


def _story(task: str, rng: random.Random) -> tuple[list[list[str]], list[str], str] | None:
    """One story, question and answer of ``task`` (None if the answer is undefined)."""
    n = rng.randint(MIN_SENTS, MEM)
    loc: dict[str, str] = {}
    holder: dict[str, str | None] = dict.fromkeys(OBJECTS)
    obj_loc: dict[str, str | None] = dict.fromkeys(OBJECTS)
    sents: list[list[str]] = []
    for _ in range(n):
        p = rng.choice(PEOPLE)
        r = rng.random()
        if task == "single" or r < 0.5 or p not in loc:
            place = rng.choice(PLACES)
            loc[p] = place
            sents.append([p, *rng.choice(MOVE).split(), place])
            continue
        held = [o for o in OBJECTS if holder[o] == p]
        free = [o for o in OBJECTS if holder[o] is None and (obj_loc[o] in (None, loc[p]))]
        if held and (r < 0.7 or not free):
            o = rng.choice(held)
            holder[o], obj_loc[o] = None, loc[p]
            sents.append([p, *rng.choice(DROP).split(), o])
        elif free:
            o = rng.choice(free)
            holder[o], obj_loc[o] = p, None
            sents.append([p, *rng.choice(TAKE).split(), o])
        else:
            place = rng.choice(PLACES)
            loc[p] = place
            sents.append([p, *rng.choice(MOVE).split(), place])
    for o in OBJECTS:
        if holder[o] is not None:
            obj_loc[o] = loc[holder[o]]
    if task == "single":
        known = [p for p in PEOPLE if p in loc]
        p = rng.choice(known)
        return sents, ["where", "is", p], loc[p]
    if task == "two":
        known = [o for o in OBJECTS if holder[o] is not None or obj_loc[o] is not None]
        if not known:
            return None
        o = rng.choice(known)
        return sents, ["where", "is", "the", o], str(obj_loc[o])
    p = rng.choice(PEOPLE)
    return sents, ["how", "many", "objects", "is", p, "carrying"], \
        COUNTS[sum(holder[o] == p for o in OBJECTS)]


def generate(n_per_task: int, seed: int) -> list[tuple[str, list[list[str]], list[str], str]]:
    """``n_per_task`` examples of each task: (task, sentences, question, answer)."""
    rng = random.Random(seed)
    out = []
    for task in TASKS:
        k = 0
        while k < n_per_task:
            s = _story(task, rng)
            if s is None:
                continue
            out.append((task, *s))
            k += 1
    rng.shuffle(out)
    return out


def vocab() -> dict[str, int]:
    """Word -> id (0 is padding)."""
    words = set(PEOPLE + PLACES + OBJECTS + COUNTS)
    for phrase in MOVE + TAKE + DROP:
        words.update(phrase.split())
    words.update("where is how many objects carrying the".split())
    return {w: i + 1 for i, w in enumerate(sorted(words))}


def encode(data: list, voc: dict[str, int]) -> dict[str, torch.Tensor]:
    """Tensors: stories [B, MEM, SENT_LEN], questions [B, SENT_LEN], answers, task ids."""
    B = len(data)
    st = torch.zeros(B, MEM, SENT_LEN, dtype=torch.long)
    qu = torch.zeros(B, SENT_LEN, dtype=torch.long)
    ans = torch.zeros(B, dtype=torch.long)
    nmem = torch.zeros(B, dtype=torch.long)
    task = torch.zeros(B, dtype=torch.long)
    for b, (t, sents, q, a) in enumerate(data):
        for i, s in enumerate(sents):
            st[b, i, :len(s)] = torch.tensor([voc[w] for w in s])
        qu[b, :len(q)] = torch.tensor([voc[w] for w in q])
        ans[b], nmem[b], task[b] = voc[a], len(sents), TASKS.index(t)
    return {"stories": st, "questions": qu, "answers": ans, "nmem": nmem, "task": task}


class MemN2N(nn.Module):
    """End-to-end memory network with thresholded memory attention (one head per hop)."""

    def __init__(self, nvocab: int) -> None:
        super().__init__()
        self.emb = nn.ModuleList(nn.Embedding(nvocab, D, padding_idx=0) for _ in range(HOPS + 1))
        self.temporal = nn.ParameterList(nn.Parameter(torch.randn(MEM, D) * 0.1)
                                         for _ in range(HOPS + 1))
        for e in self.emb:
            nn.init.normal_(e.weight, std=0.1)
        J, d = SENT_LEN, D
        pe = torch.tensor([[(1 - j / J) - (k / d) * (1 - 2 * j / J) for k in range(1, d + 1)]
                           for j in range(1, J + 1)])
        self.register_buffer("pe", pe)
        states = [ThresholdState(1, f"hop{i}") for i in range(HOPS)]
        self.states = nn.ModuleList(states)
        self.ctrl = PruningController(states)

    def _mem(self, i: int, stories: torch.Tensor) -> torch.Tensor:
        """Memory embedding ``i`` (A_k = C_(k-1) by adjacent tying): [B, MEM, D]."""
        return (self.emb[i](stories) * self.pe).sum(2) + self.temporal[i]

    def forward(self, stories: torch.Tensor, questions: torch.Tensor,
                nmem: torch.Tensor) -> torch.Tensor:
        """Answer logits over the vocabulary."""
        u = (self.emb[0](questions) * self.pe).sum(1)  # B (query embedding tied to A_1)
        vis = (torch.arange(MEM)[None, :] < nmem[:, None]).view(-1, 1, 1, MEM)
        for h in range(HOPS):
            m = self._mem(h, stories)
            c = self._mem(h + 1, stories)
            o = attend(self.states[h], u.view(-1, 1, 1, D), m.unsqueeze(1), c.unsqueeze(1), vis)
            u = u + o.view(-1, D)
        return u @ self.emb[HOPS].weight.T


@torch.no_grad()
def evaluate(model: MemN2N, te: dict[str, torch.Tensor], mode: str) -> dict[str, Any]:
    """Overall and per-task accuracy, per-item correctness, hard-mask pruned fractions."""
    model.eval()
    ctrl = model.ctrl
    ctrl.mode, ctrl.stats = mode, True
    ctrl.reset_stats()
    n = len(te["answers"])
    pred = torch.cat([model(te["stories"][i:i + 2000], te["questions"][i:i + 2000],
                            te["nmem"][i:i + 2000]).argmax(-1) for i in range(0, n, 2000)])
    ctrl.stats = False
    ok = pred == te["answers"]
    return {"metric": float(ok.float().mean()), "items": ok.numpy(), "n": n,
            "per_task": {t: float(ok[te["task"] == i].float().mean())
                         for i, t in enumerate(TASKS)},
            "pruned_fraction_layers": ctrl.pruned_fraction_layers(),
            "pruned_fraction_total": ctrl.pruned_fraction_total()}


class MemN2NWorkload:
    """The MemN2N workload for :func:`learn.recipe.run_stages`.

    Parameters
    ----------
    n_train, n_val, n_test : int
        Stories per task in each split.
    base_steps : int
        Baseline training steps (Adam 0.01, cosine, batch 64, gradient clip 40).
    seed : int
        Seed of the model and the generator.
    cache : Path, optional
        Folder where the generated splits are cached (generating 63k stories takes ~1 min).
    """

    name = "memn2n"
    higher_is_better = True

    def __init__(self, n_train: int = 10000, n_val: int = 1000, n_test: int = 10000,
                 base_steps: int = 4000, seed: int = 0, cache: Path | None = None) -> None:
        setup_threads()
        self.seed, self.base_steps = seed, base_steps
        self.voc = vocab()
        self.sizes = (n_train, n_val, n_test)
        path = (cache / f"memn2n_{MIN_SENTS}-{MEM}_{n_train}_{n_val}_{n_test}_s{seed}.pt"
                if cache else None)
        if path is not None and path.is_file():
            self.tr, self.va, self.te = torch.load(path, weights_only=True)
            return
        self.tr = encode(generate(n_train, seed), self.voc)
        self.va = encode(generate(n_val, seed + 500), self.voc)
        self.te = encode(generate(n_test, seed + 1000), self.voc)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save((self.tr, self.va, self.te), path)

    def new_model(self) -> MemN2N:
        """A fresh MemN2N (seeded)."""
        seed_all(self.seed)
        return MemN2N(len(self.voc) + 1)

    def train_base(self, model: MemN2N) -> dict[str, Any]:
        """Train without pruning (Adam 0.01 with cosine decay)."""
        timer = Timer()
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.base_steps)
        g = torch.Generator().manual_seed(self.seed)
        model.ctrl.mode = "off"
        log = []
        for step in range(self.base_steps):
            model.train()
            b = self.batch(g, 64)
            loss = self.task_loss(self.forward(model, b), b)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 40.0)
            opt.step()
            sched.step()
            if (step + 1) % 2000 == 0:
                acc = evaluate(model, self.va, "off")["metric"]
                log.append({"step": step + 1, "val_accuracy": acc, "seconds": timer.s()})
                print(log[-1], flush=True)
        return {"steps": self.base_steps, "batch": 64, "log": log, "seconds": timer.s()}

    def batch(self, g: torch.Generator, bs: int) -> dict[str, torch.Tensor]:
        """Random training batch."""
        idx = torch.randint(0, len(self.tr["answers"]), (bs,), generator=g)
        return {k: v[idx] for k, v in self.tr.items()}

    def forward(self, model: MemN2N, b: dict[str, torch.Tensor]) -> torch.Tensor:
        """Answer logits."""
        return model(b["stories"], b["questions"], b["nmem"])

    def task_loss(self, logits: torch.Tensor, b: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy."""
        return nn.functional.cross_entropy(logits, b["answers"])

    def calibration_batches(self) -> Iterable[dict[str, torch.Tensor]]:
        """512 training stories."""
        return [{k: v[:512] for k, v in self.tr.items()}]

    def trainable(self, model: MemN2N) -> list[nn.Parameter]:
        """Every weight."""
        return list(model.parameters())

    def evaluate(self, model: MemN2N, split: str, mode: str) -> dict[str, Any]:
        """Accuracy on ``split`` ("val" or "test")."""
        return evaluate(model, self.va if split == "val" else self.te, mode)

    def describe(self) -> dict[str, Any]:
        """Model, data and budget."""
        n_train, n_val, n_test = self.sizes
        return {"model": MODEL, "metric": "accuracy", "trained": "thresholds + weights",
                "data": f"bAbI-style generator (learn/workloads/memn2n.py), tasks "
                        f"{list(TASKS)}, {n_train}/{n_val}/{n_test} train/val/test stories per "
                        f"task, {MIN_SENTS}-{MEM} sentences",
                "baseline_steps": self.base_steps}

    def export(self, model: MemN2N, res: dict[str, Any]) -> list[dict[str, Any]]:
        """Traces of the 3 hops on the longest two-supporting-facts test story."""
        te, voc = self.te, self.voc
        ctrl = model.ctrl
        inv = {i: w for w, i in voc.items()}
        cand = (te["task"] == 1).nonzero().view(-1)
        b = int(cand[te["nmem"][cand].argmax()])
        n = int(te["nmem"][b])
        story = [" ".join(inv[int(t)] for t in s if int(t)) for s in te["stories"][b][:n]]
        question = " ".join(inv[int(t)] for t in te["questions"][b] if int(t))
        ctrl.capture, ctrl.mode = set(range(HOPS)), "hard"
        model.eval()
        with torch.no_grad():
            model(te["stories"][b:b + 1], te["questions"][b:b + 1], te["nmem"][b:b + 1])
        schedule = recipe_schedule(res)
        meta = {"threshold_method": RECIPE_METHOD, "lambda": res["lambda_final"],
                "T_schedule": schedule, "trained": "thresholds + weights",
                "memory_slots": n,
                "head_note": "memory attention u . m_i of one hop treated as one head (H=1, "
                             "Nq=1 question, Nk = story sentences); layer = hop",
                "input_story": story, "input_question": question,
                "input_answer": inv[int(te["answers"][b])],
                "metric": {"accuracy_control": res["metric_no_pruning"],
                           "accuracy_learned": res["metric_learned"]}}
        files = export_captures(ctrl, "memn2n", MODEL, list(range(HOPS)), 0,
                                f"bAbI-style two-supporting-facts test story ({n} sentences)",
                                False, meta, n_valid=n)
        files.append({"path": write_thresholds(
            "memn2n", MODEL, ctrl, res["lambda_final"], schedule,
            {"trained": "thresholds + weights", "heads": 1, "head_dim": D, "causal": False,
             "layers_are": "hops"})})
        return files
