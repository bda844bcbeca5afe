"""Smoke test of the threshold learning on tiny random models (needs torch + transformers).

Not part of the default suite: run with ``make learn-test``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.learn

# torch is imported by the tests only (not at collection), so that collecting the default
# suite, which deselects the ``learn`` marker, never imports torch.
torch: Any = None
PruningController = ThresholdState = attend = masked_attention = soft_mask = None
make_trace: Any = None


@pytest.fixture(autouse=True)
def _torch() -> None:
    global torch, PruningController, ThresholdState, attend, masked_attention, soft_mask
    global make_trace
    torch = pytest.importorskip("torch")
    from learn import threshold as t
    from learn.export import make_trace as mt

    PruningController, ThresholdState, attend = t.PruningController, t.ThresholdState, t.attend
    masked_attention, soft_mask, make_trace = t.masked_attention, t.soft_mask, mt


def tiny_attn(heads: int = 2, d: int = 16) -> Any:
    """One attention layer + linear readout on random data."""

    class TinyAttn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads, self.d = heads, d
            self.qkv = torch.nn.Linear(heads * d, 3 * heads * d)
            self.out = torch.nn.Linear(heads * d, 3)
            self.state = ThresholdState(heads, "layer0")
            self.ctrl = PruningController([self.state])

        def forward(self, x: Any) -> Any:
            B, N, _ = x.shape
            q, k, v = self.qkv(x).view(B, N, 3, self.heads, self.d).permute(2, 0, 3, 1, 4)
            a = attend(self.state, q, k, v, torch.ones(1, 1, N, N, dtype=torch.bool))
            return self.out(a.transpose(1, 2).reshape(B, N, -1).mean(1))

    return TinyAttn()


def test_threshold_moves_under_regularizer() -> None:
    torch.manual_seed(0)
    m = tiny_attn()
    x = torch.randn(8, 10, 32)
    y = torch.randint(0, 3, (8,))
    m.ctrl.mode, m.ctrl.T = "soft", 0.5
    with torch.no_grad():
        m.state.theta.fill_(-0.5)
    theta0 = m.state.theta.detach().clone()
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    for _ in range(20):
        m.ctrl.reset_reg()
        loss = torch.nn.functional.cross_entropy(m(x), y) + 1.0 * m.ctrl.reg()
        opt.zero_grad()
        loss.backward()
        assert m.state.theta.grad is not None and torch.all(m.state.theta.grad != 0)
        opt.step()
    assert torch.all(m.state.theta.detach() > theta0)
    # the hard-mask pruned fraction grows with it
    m.ctrl.stats, m.ctrl.mode = True, "hard"
    with torch.no_grad():
        m(x)
    assert m.ctrl.pruned_fraction_total() > 0.0


def test_regularizer_gradient_sign() -> None:
    z = torch.randn(1, 3, 5, 5)
    theta = torch.zeros(3, requires_grad=True)
    soft_mask(z, theta, 0.3).mean().backward()
    assert torch.all(theta.grad < 0)  # raising theta lowers mean(m)


def test_hard_mask_is_soft_limit() -> None:
    torch.manual_seed(1)
    z = torch.randn(2, 4, 7, 9) * 3
    vis = torch.ones(1, 1, 7, 9, dtype=torch.bool).tril()
    theta = torch.tensor([-1.0, 0.0, 0.5, 2.0])
    hard, _ = masked_attention(z, vis, theta, 1.0, "hard")
    keep = (z >= theta.view(1, -1, 1, 1)) & vis
    gap = (z - theta.view(1, -1, 1, 1)).abs().min()
    assert gap > 1e-3  # no ties in this draw
    for T in (1e-2, 1e-3, 1e-4):
        soft, m = masked_attention(z, vis, theta, T, "soft")
        assert m is not None
        assert torch.equal((m > 0.5) & vis, keep)
    soft, m = masked_attention(z, vis, theta, 1e-5, "soft")
    rows = keep.any(-1, keepdim=True)
    # rows with survivors: identical probabilities; rows without: hard gives zeros
    assert torch.allclose(soft * rows, hard, atol=1e-5)
    assert torch.all(hard[~rows.expand_as(hard)] == 0)
    assert torch.all(hard[~keep] == 0)


def test_exported_integer_threshold_exact() -> None:
    rng = np.random.default_rng(3)
    H, N, d = 3, 24, 16
    q = rng.normal(size=(H, N, d))
    k = rng.normal(size=(H, N, d))
    v = rng.normal(size=(H, N, d))
    theta = np.array([-0.7, 0.1, 0.9])
    tr = make_trace(q, k, v, theta, causal=True,
                    meta={"model": "random", "layer": 0, "input": "random",
                          "provenance": "test"})
    vis = tr.visible()
    for h in range(H):
        S = tr.q[h] @ tr.k[h].T
        # exact rational boundary: z = S s_q s_k / sqrt(d) >= theta  <=>  S >= real
        real = (Fraction(float(theta[h])) * int(math.isqrt(d))
                / (Fraction(float(tr.scale_q[h])) * Fraction(float(tr.scale_k[h]))))
        for i in range(N):
            for j in range(N):
                if not vis[i, j]:
                    continue
                s = int(S[i, j])
                assert (s >= int(tr.threshold[h])) == (s >= real)
        assert int(tr.threshold[h]) - 1 < real <= int(tr.threshold[h])


def test_hf_tiny_bert_and_llama() -> None:
    transformers = pytest.importorskip("transformers")
    from learn.threshold import install_hf

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64)
    bert = transformers.BertModel(cfg, add_pooling_layer=False).eval()
    bert.config._attn_implementation = "eager"
    ids = torch.randint(0, 50, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0
    with torch.no_grad():
        ref = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    ctrl = install_hf([lay.attention.self for lay in bert.encoder.layer], 2)
    with torch.no_grad():
        out = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(ref, out, atol=1e-5)
    ctrl.mode, ctrl.stats, ctrl.capture = "hard", True, {1}
    with torch.no_grad():
        for s in ctrl.states:
            s.theta.fill_(0.0)
        bert(input_ids=ids, attention_mask=mask)
    pf = ctrl.pruned_fraction_layers()
    assert all(0.0 < f < 1.0 for f in pf)
    assert ctrl.captured[1]["visible"][1, 0, 0, 6:].sum() == 0  # padding invisible

    lcfg = transformers.LlamaConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=4, num_key_value_heads=2,
                                    intermediate_size=64, head_dim=8)
    llama = transformers.LlamaForCausalLM(lcfg).eval()
    llama.config._attn_implementation = "eager"
    with torch.no_grad():
        ref = llama(input_ids=ids[:1]).logits
    lctrl = install_hf([lay.self_attn for lay in llama.model.layers], 4)
    lctrl.capture = {0}
    with torch.no_grad():
        out = llama(input_ids=ids[:1]).logits
    assert torch.allclose(ref, out, atol=1e-5)
    cap = lctrl.captured[0]
    assert torch.equal(cap["k"][0, 0], cap["k"][0, 1])  # GQA: heads 0, 1 share kv head 0
    assert not torch.equal(cap["k"][0, 1], cap["k"][0, 2])
    assert torch.equal(cap["visible"][0, 0], torch.ones(9, 9, dtype=torch.bool).tril())
    # thresholds train through the HF model
    lctrl.mode, lctrl.T = "soft", 0.5
    opt = torch.optim.Adam(lctrl.parameters(), lr=0.1)
    th0 = lctrl.states[0].theta.detach().clone()
    for _ in range(3):
        lctrl.reset_reg()
        loss = llama(input_ids=ids[:1], labels=ids[:1]).loss + 1.0 * lctrl.reg()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not torch.equal(th0, lctrl.states[0].theta.detach())


def test_ste_forward_is_hard_gradient_is_soft() -> None:
    torch.manual_seed(2)
    z = (torch.randn(2, 3, 5, 6) * 2).requires_grad_(True)
    vis = torch.ones(1, 1, 5, 6, dtype=torch.bool)
    theta = torch.tensor([-0.5, 0.3, 1.0], requires_grad=True)
    ste, _ = masked_attention(z, vis, theta, 0.5, "ste")
    hard, _ = masked_attention(z, vis, theta, 0.5, "hard")
    assert torch.allclose(ste, hard, atol=1e-6)
    ste.sum().backward()
    assert theta.grad is not None and torch.isfinite(theta.grad).all()


def test_paired_statistics() -> None:
    from learn.stats import mcnemar_exact, paired_accuracy, paired_perplexity, verdict

    rng = np.random.default_rng(0)
    b = rng.random(20000) < 0.9
    a = b.copy()
    flip = rng.random(a.size) < 0.02
    a[flip] = ~a[flip]
    r = paired_accuracy(a, b)
    assert r["diff"] == pytest.approx(a.mean() - b.mean())
    lo, hi = r["ci95_bootstrap"]
    assert lo < r["diff"] < hi and hi - lo < 0.01
    assert abs(r["ci95_normal"][0] - lo) < 1e-3 and abs(r["ci95_normal"][1] - hi) < 1e-3
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)
    assert mcnemar_exact(0, 10) == pytest.approx(2 / 1024)
    assert verdict([-0.001, 0.003]) == "within"
    assert verdict([-0.01, -0.003]) == "beyond"
    assert verdict([-0.004, 0.001]) == "undecided"
    assert verdict([0.0, 0.001], higher_is_better=False) == "within"
    nll = rng.random(64) * 100 + 300
    p = paired_perplexity(nll * 1.01, nll, np.full(64, 128))
    assert p["rel_change"] == pytest.approx(np.exp(0.01 * nll.sum() / (64 * 128)) - 1)
    assert p["ci95_bootstrap"][0] <= p["rel_change"] <= p["ci95_bootstrap"][1]


def test_recipe_toy_workload() -> None:
    """Two-stage recipe and control on a tiny attention model: target steering, frozen
    thresholds in the hard stage, the control never masks and sees the same batches."""
    import copy

    from learn.recipe import Recipe, train_recipe

    torch.manual_seed(0)
    x = torch.randn(256, 12, 32)
    y = (x[:, :3, 0].sum(1) > 0).long() + (x[:, 0, 1] > 1).long()
    seen: list[list[int]] = []

    class Toy:
        name, higher_is_better = "toy", True

        def batch(self, g: Any, bs: int) -> Any:
            idx = torch.randint(0, len(x), (bs,), generator=g)
            seen.append(idx.tolist())
            return x[idx], y[idx]

        def forward(self, model: Any, b: Any) -> Any:
            return model(b[0])

        def task_loss(self, logits: Any, b: Any) -> Any:
            return torch.nn.functional.cross_entropy(logits, b[1])

        def calibration_batches(self) -> Any:
            return [(x[:64], y[:64])]

        def trainable(self, model: Any) -> Any:
            return list(model.parameters())

    teacher = tiny_attn()
    model = copy.deepcopy(teacher)
    model.ctrl = PruningController([model.state])
    rc = Recipe(target=0.8, soft_steps=60, hard_steps=10, batch=32, lam0=0.5, lam_gain=0.5,
                theta_lr=0.1, weight_lr=1e-3)
    info = train_recipe(model, teacher, Toy(), rc, prune=True)
    soft_log = [e for e in info["log"] if e["stage"] == "soft"]
    hard_log = [e for e in info["log"] if e["stage"] == "hard"]
    assert soft_log[-1]["pruned_batch"] > soft_log[0]["pruned_batch"]
    assert soft_log[-1]["pruned_batch"] > 0.5
    # thresholds frozen in the hard stage (the regularizer there only reaches the weights)
    assert info["theta"] == info["theta_after_soft"] == model.ctrl.thetas()
    assert all(not p.requires_grad for p in model.ctrl.parameters())
    assert hard_log and all(e["T"] == rc.T1 for e in hard_log)
    pruned_batches = list(seen)
    seen.clear()
    ctl = copy.deepcopy(teacher)
    ctl.ctrl = PruningController([ctl.state])
    cinfo = train_recipe(ctl, teacher, Toy(), rc, prune=False)
    assert seen == pruned_batches  # same batches, same number of steps
    assert ctl.ctrl.mode == "off" and all(e["pruned_batch"] == 0.0 for e in cinfo["log"])


def test_recipe_without_distillation_never_runs_the_teacher() -> None:
    """kd_alpha 0 (SmolLM2): the loss is the task loss alone and the teacher is never run;
    kd_alpha > 0 runs it once per step."""
    import copy

    from learn.recipe import Recipe, train_recipe

    torch.manual_seed(0)
    x = torch.randn(64, 8, 32)
    y = (x[:, 0, 0] > 0).long()
    calls: dict[str, int] = {"teacher": 0, "student": 0}

    class Toy:
        name, higher_is_better = "toy", True

        def batch(self, g: Any, bs: int) -> Any:
            idx = torch.randint(0, len(x), (bs,), generator=g)
            return x[idx], y[idx]

        def forward(self, model: Any, b: Any) -> Any:
            calls["teacher" if model is teacher else "student"] += 1
            return model(b[0])

        def task_loss(self, logits: Any, b: Any) -> Any:
            return torch.nn.functional.cross_entropy(logits, b[1])

        def calibration_batches(self) -> Any:
            return [(x[:16], y[:16])]

        def trainable(self, model: Any) -> Any:
            return list(model.parameters())

    teacher = tiny_attn()
    for kd, want in ((0.0, 0), (0.5, 5)):
        calls.update(teacher=0, student=0)
        model = copy.deepcopy(teacher)
        model.ctrl = PruningController([model.state])
        rc = Recipe(target=0.5, soft_steps=3, hard_steps=2, batch=8, kd_alpha=kd)
        info = train_recipe(model, teacher, Toy(), rc, prune=True)
        assert calls["teacher"] == want, (kd, calls)
        assert calls["student"] == 5 + 1  # 5 steps + 1 calibration batch
        if kd == 0.0:
            assert all(e["kd"] == 0.0 for e in info["log"])
        else:
            assert any(e["kd"] > 0.0 for e in info["log"])
