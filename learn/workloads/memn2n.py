"""Workload (d): MemN2N on a bAbI-style task generator written here.

Three task types, in the spirit of bAbI (Weston et al. 2015, itself simulator-generated):

* ``single``: single supporting fact ("Where is Mary?");
* ``two``: two supporting facts ("Where is the football?" while someone carries it);
* ``count``: counting ("How many objects is John carrying?" -> none/one/two/three).

Model: end-to-end memory network (Sukhbaatar et al. 2015), 3 hops, adjacent weight tying,
position encoding, temporal encoding, embedding 32. The memory attention of each hop,
``z_i = u . m_i / sqrt(d)``, is treated as one head with its own threshold (the
``1/sqrt(d)`` is part of this model so that the logit matches the trace convention).
Metric: test accuracy (per task and overall). Thresholds and weights are trained together.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import torch
from torch import nn

from learn.threshold import PruningController, ThresholdState, anneal_T, attend
from learn.workloads.common import Timer, export_captures, seed_all, setup_threads, write_thresholds

MODEL = "MemN2N (3 hops, adjacent tying, PE + temporal encoding, d 32), trained here"
PEOPLE = ["mary", "john", "sandra", "daniel"]
PLACES = ["kitchen", "garden", "office", "hallway", "bathroom", "bedroom"]
OBJECTS = ["football", "apple", "milk"]
MOVE = ["moved to the", "went to the", "journeyed to the", "travelled to the"]
TAKE = ["picked up the", "got the", "grabbed the"]
DROP = ["dropped the", "discarded the", "put down the"]
COUNTS = ["none", "one", "two", "three"]
TASKS = ("single", "two", "count")
MEM, SENT_LEN, D, HOPS = 16, 6, 32, 3


def _story(task: str, rng: random.Random) -> tuple[list[list[str]], list[str], str] | None:
    """One story, question and answer of ``task`` (None if the answer is undefined)."""
    n = rng.randint(2, MEM)
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
    """Overall and per-task accuracy, hard-mask pruned fractions."""
    model.eval()
    ctrl = model.ctrl
    ctrl.mode, ctrl.stats = mode, True
    ctrl.reset_stats()
    pred = model(te["stories"], te["questions"], te["nmem"]).argmax(-1)
    ctrl.stats = False
    ok = pred == te["answers"]
    return {"accuracy": float(ok.float().mean()),
            "per_task": {t: float(ok[te["task"] == i].float().mean())
                         for i, t in enumerate(TASKS)},
            "pruned_fraction_layers": ctrl.pruned_fraction_layers(),
            "pruned_fraction_total": ctrl.pruned_fraction_total()}


def _train(model: MemN2N, tr: dict[str, torch.Tensor], steps: int, lr: float, bs: int,
           lam: float | None, T0: float, T1: float, g: torch.Generator) -> list[dict]:
    ctrl = model.ctrl
    if lam is None:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        theta_ids = {id(p) for p in ctrl.parameters()}
        weights = [p for p in model.parameters() if id(p) not in theta_ids]
        opt = torch.optim.Adam([{"params": weights, "lr": lr},
                                {"params": ctrl.parameters(), "lr": 0.05}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    lossf = nn.CrossEntropyLoss()
    model.train()
    log = []
    n = len(tr["answers"])
    for step in range(steps):
        idx = torch.randint(0, n, (bs,), generator=g)
        if lam is not None:
            ctrl.T = anneal_T(step, steps, T0, T1)
            ctrl.reset_reg()
        out = model(tr["stories"][idx], tr["questions"][idx], tr["nmem"][idx])
        task = lossf(out, tr["answers"][idx])
        loss = task if lam is None else task + lam * ctrl.reg()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 40.0)
        opt.step()
        sched.step()
        if step % 200 == 0:
            log.append({"step": step, "T": ctrl.T, "task": float(task.detach()),
                        "mean_m": float(ctrl.reg().detach()) if lam is not None else None})
    return log


def run(lam: float = 0.1, n_train: int = 3000, n_test: int = 1000, base_steps: int = 4000,
        prune_steps: int = 800, bs: int = 64, T0: float = 1.0, T1: float = 0.02,
        init_quantile: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """Train MemN2N without pruning, then co-train thresholds; evaluate; export."""
    setup_threads()
    seed_all(seed)
    timer = Timer()
    voc = vocab()
    tr = encode(generate(n_train, seed), voc)
    te = encode(generate(n_test, seed + 1000), voc)
    model = MemN2N(len(voc) + 1)
    g = torch.Generator().manual_seed(seed)
    model.ctrl.mode = "off"
    _train(model, tr, base_steps, 0.01, bs, None, T0, T1, g)
    base = evaluate(model, te, "off")
    t_base = timer.s()
    pm = copy.deepcopy(model)
    pm.ctrl = PruningController(list(pm.states))
    ctrl = pm.ctrl
    ctrl.calibrate, ctrl.mode = True, "off"
    with torch.no_grad():
        pm.eval()
        pm(tr["stories"][:512], tr["questions"][:512], tr["nmem"][:512])
    ctrl.calibrate = False
    ctrl.init_from_calibration(init_quantile)
    ctrl.mode = "soft"
    log = _train(pm, tr, prune_steps, 0.002, bs, lam, T0, T1, g)
    pruned = evaluate(pm, te, "hard")
    schedule = {"kind": "geometric", "T0": T0, "T1": T1, "steps": prune_steps,
                "init": f"per-hop {init_quantile} quantile of calibration logits"}
    res: dict[str, Any] = {
        "workload": "memn2n", "model": MODEL,
        "data": f"bAbI-style generator (learn/workloads/memn2n.py), tasks {list(TASKS)}, "
                f"{n_train}/{n_test} train/test stories per task, <= {MEM} sentences",
        "metric": "accuracy", "higher_is_better": True,
        "metric_no_pruning": base["accuracy"], "metric_learned": pruned["accuracy"],
        "per_task_no_pruning": base["per_task"], "per_task_learned": pruned["per_task"],
        "pruned_fraction_layers": pruned["pruned_fraction_layers"],
        "pruned_fraction_total": pruned["pruned_fraction_total"],
        "lambda": lam, "T_schedule": schedule, "trained": "thresholds + weights",
        "steps": {"base": base_steps, "prune": prune_steps, "batch": bs},
        "seconds": {"base": t_base, "total": None}, "log": log, "theta": ctrl.thetas(),
    }
    res["files"] = _export(pm, te, res, voc)
    res["seconds"]["total"] = timer.s()
    return res


def _export(model: MemN2N, te: dict[str, torch.Tensor], res: dict[str, Any],
            voc: dict[str, int]) -> list[dict[str, Any]]:
    ctrl = model.ctrl
    inv = {i: w for w, i in voc.items()}
    # the longest test story of the "two supporting facts" task
    cand = (te["task"] == 1).nonzero().view(-1)
    b = int(cand[te["nmem"][cand].argmax()])
    n = int(te["nmem"][b])
    story = [" ".join(inv[int(t)] for t in s if int(t)) for s in te["stories"][b][:n]]
    question = " ".join(inv[int(t)] for t in te["questions"][b] if int(t))
    ctrl.capture, ctrl.mode = set(range(HOPS)), "hard"
    model.eval()
    with torch.no_grad():
        model(te["stories"][b:b + 1], te["questions"][b:b + 1], te["nmem"][b:b + 1])
    meta = {"threshold_method": "learned (soft sigmoid mask, T annealed, lambda*mean(m))",
            "lambda": res["lambda"], "T_schedule": res["T_schedule"],
            "trained": "thresholds + weights", "memory_slots": n,
            "head_note": "memory attention u . m_i of one hop treated as one head (H=1, "
                         "Nq=1 question, Nk = story sentences); layer = hop",
            "input_story": story, "input_question": question,
            "input_answer": inv[int(te["answers"][b])],
            "metric": {"accuracy_no_pruning": res["metric_no_pruning"],
                       "accuracy_learned": res["metric_learned"]}}
    files = export_captures(ctrl, "memn2n", MODEL, list(range(HOPS)), 0,
                            f"bAbI-style two-supporting-facts test story ({n} sentences)",
                            False, meta, n_valid=n)
    files.append({"path": write_thresholds("memn2n", MODEL, ctrl, res["lambda"],
                                           res["T_schedule"],
                                           {"trained": "thresholds + weights", "heads": 1,
                                            "head_dim": D, "causal": False,
                                            "layers_are": "hops"})})
    return files

