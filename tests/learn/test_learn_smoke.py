"""Smoke test of the threshold learning on tiny random models (needs torch + transformers).

Not part of the default suite: run with ``make learn-test``.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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
