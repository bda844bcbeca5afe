"""Formal proof of the front end's terminate logic on the emitted Verilog (Yosys ``sat``).

``leopard-rtl`` emits ``leopard_frontend`` for a small configuration; a generated Verilog
harness loads ``max_keys`` symbolic K rows, sends one symbolic query with a symbolic
threshold and symbolic switches, and compares every per-key result the front end reports
on its ``result`` stream with a reference written from the definitions (no bit-serial
algorithm in it)::

    A_r  = sum_i q_i * (k_i >>> (p - r))              (top r bits of k_i, signed)
    UB_r = 2^(p-r) A_r + Q+ (2^(p-r) - 1),  Q+ = sum_i max(q_i, 0),  S = A_p
    survivor = S >= Th                    (pruning on; every key survives when off)
    planes   = min{r : UB_r < Th}, else p (early termination and pruning on; else p)
    score    = S                          (survivors)

Yosys's SAT solver (through pyosys, the same Yosys as synthesis) proves, for every value
of every Q and K element, of the threshold register (all ``threshold_bits`` values) and of
the two switches, that after reset every key the front end reports matches the reference
(key index, survivor, planes, score; no key twice) and that by :func:`proof_steps` cycles
every key has been reported. The reference's products are written as two's-complement
expansions (shifted copies of ``q``), themselves proven equal to ``q * (k >>> m)`` for
every ``q`` and ``k`` by a combinational lemma (:func:`lemma`) in the same Yosys run.
Registers start from their ``init`` values (Amaranth gives every register one). So the
front end never prunes a key with ``S >= Th``, always prunes one with ``S < Th``, and stops
at the first plane whose bound allows it. It is a bounded proof over one query, at the
small widths given (the SAT problem grows steeply with ``head_dim * qk_bits`` and the
number of keys); :data:`PROOF_CONFIGS` lists those the test suite proves.

The harness uses only the front end's ports (``k_load``, ``query``, ``threshold``, the
switches, ``result``, ``survivor``) and the payload layouts of :mod:`leopard_rtl.hw.layouts`,
so it proves whatever lane and threshold implementation the front end contains.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import LeopardConfig, preset
from ..emit import TOP_NAMES, write_build
from ..errors import UserError
from ..hw import layouts
from .synth import SynthError, run_yosys

__all__ = ["FormalResult", "PROOF_CONFIGS", "proof_config", "proof_steps", "harness",
           "prove_terminate"]


def proof_config(head_dim: int, qk_bits: int, keys: int, lanes: int) -> LeopardConfig:
    """The ``tiny`` preset at the given small sizes (the back-end widths do not matter)."""
    return preset("tiny").replace(head_dim=head_dim, qk_bits=qk_bits, max_keys=keys,
                                  lanes=lanes, name=f"formal-d{head_dim}p{qk_bits}"
                                                    f"k{keys}l{lanes}")


#: (head_dim, qk_bits, keys, lanes) proven by the test suite (the first in the default
#: suite, ~10 s of solver time; the rest behind ``-m slow``, 8-25 s each). Larger ones
#: outgrow Yosys's SAT solver: head_dim=2 with qk_bits=4, or head_dim=3 with qk_bits=3, ran
#: past 300-600 s.
PROOF_CONFIGS: tuple[tuple[int, int, int, int], ...] = (
    (2, 3, 1, 1), (1, 3, 1, 1), (1, 4, 1, 1), (2, 2, 2, 2), (1, 3, 2, 1),
)


def proof_steps(cfg: LeopardConfig) -> int:
    """Cycles after reset by which every key must be reported: K loading (one row per
    cycle), the query's acceptance, every key's planes on one lane plus the lane's
    decision latency, and a few cycles of input and output registers."""
    return cfg.max_keys + 2 + cfg.max_keys * (cfg.qk_bits + cfg.fe_decision_latency) + 6


@dataclass
class FormalResult:
    """Outcome of one proof."""

    config: str
    proven: bool
    steps: int
    seconds: float
    log: Path
    #: On failure: the counterexample's lines of the Yosys log (inputs and ``ok`` per step).
    counterexample: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "proven": self.proven, "steps": self.steps,
                "seconds": round(self.seconds, 2), "log": str(self.log),
                "counterexample": self.counterexample}


def _slice(vec: str, offset: int, width: int) -> str:
    return f"{vec}[{offset + width - 1}:{offset}]"


def _product_term(tag: str, q: str, k: str, p: int, m: int, rw: int) -> list[str]:
    """Verilog for ``pw<tag> = q * (k >>> m)`` (``rw`` bits, signed), written as the
    two's-complement expansion of the top ``p - m`` bits of ``k``: ``-b_(p-1) 2^(r-1) q +
    sum_j b_j 2^(j-m) q`` (r = p - m), a sum of shifted copies of ``q``. This is an
    identity of two's complement; :func:`lemma` proves it for every ``q`` and ``k`` against
    the product ``q * (k >>> m)`` itself (a SAT solver relates shifted sums to the front
    end's accumulator far faster than to a multiplier)."""
    r = p - m
    out = [f"  wire signed [{rw - 1}:0] qx{tag} = {q};"]
    terms = [f"-({k}[{p - 1}] ? (qx{tag} <<< {r - 1}) : {rw}'sd0)"]
    for j in range(m, p - 1):
        terms.append(f"({k}[{j}] ? (qx{tag} <<< {j - m}) : {rw}'sd0)")
    out.append(f"  wire signed [{rw - 1}:0] pw{tag} = " + " + ".join(terms) + ";")
    return out


def lemma(p: int, rw: int) -> str:
    """Verilog module ``formal_lemma``: ``ok`` iff :func:`_product_term` equals
    ``q * (k >>> m)`` for every shift ``m`` (inputs ``q``, ``k``: signed ``p`` bits)."""
    lines = [f"module formal_lemma(input signed [{p - 1}:0] q, input signed [{p - 1}:0] k, "
             "output ok);"]
    checks = []
    for m in range(p):
        lines += _product_term(f"_{m}", "q", "k", p, m, rw)
        lines.append(f"  wire signed [{p - 1}:0] ks_{m} = k >>> {m};")
        lines.append(f"  wire signed [{2 * p - 1}:0] prod_{m} = q * ks_{m};")
        lines.append(f"  wire signed [{rw - 1}:0] prw_{m} = prod_{m};")
        checks.append(f"(pw_{m} == prw_{m})")
    lines.append("  assign ok = " + " & ".join(checks) + ";")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def harness(cfg: LeopardConfig, ports: list[dict[str, Any]]) -> str:
    """Verilog module ``formal_top`` around ``leopard_frontend`` (see the module doc).

    Inputs sampled while ``rst_in`` is high and held after: ``k_in`` (every key's row),
    ``q_in``, ``th_in``, ``et_in``, ``pr_in``. Output ``ok``: high while no reported key
    disagrees with the reference and, from the deadline on, every key has been reported.
    """
    p, d, nk, nl = cfg.qk_bits, cfg.head_dim, cfg.max_keys, cfg.lanes
    top = TOP_NAMES["frontend"]
    known_in = {"clk", "rst", "k_load__valid", "k_load__payload", "query__valid",
                "query__payload", "threshold", "early_termination", "pruning",
                "result__ready", "survivor__ready"}
    names = {pt["name"] for pt in ports}
    unknown = sorted(pt["name"] for pt in ports if pt["dir"] == "in" and pt["name"] not in known_in)
    missing = sorted(n for n in known_in | {"result__valid", "result__payload"} if n not in names)
    if unknown or missing:
        raise UserError(f"formal harness: {top} has inputs it does not drive "
                        f"({', '.join(unknown) or 'none'}) or lacks ports "
                        f"({', '.join(missing) or 'none'})")
    kl, ql, rl, lr = layouts.k_load(cfg), layouts.query(cfg), layouts.result(cfg), \
        layouts.lane_result(cfg)
    tw = cfg.threshold_bits
    rw = cfg.score_bits + p + 4                      # reference width: no overflow
    # (prove_terminate's lemma uses the same width)
    row = d * p
    kidx = max(1, (nk - 1).bit_length())
    lines = [
        "module formal_top(input clk, input rst_in,",
        f"  input [{nk * row - 1}:0] k_in, input [{row - 1}:0] q_in,",
        f"  input [{tw - 1}:0] th_in, input et_in, input pr_in, output ok);",
        f"  reg [{nk * row - 1}:0] k; reg [{row - 1}:0] q; reg signed [{tw - 1}:0] th;",
        "  reg et, pr, qdone;",
        f"  reg [{kidx}:0] kcount;",
        f"  reg [{nk - 1}:0] seen;",
        "  reg [7:0] step;",
        "  reg bad;",
    ]
    for pt in ports:
        w = f"[{pt['width'] - 1}:0] " if pt["width"] > 1 else ""
        if pt["name"] not in ("clk", "rst"):
            lines.append(f"  wire {w}{pt['name']};")
    if not (kl["data"].offset == 0 and kl["first"].offset == row and kl.size == row + 1
            and ql["data"].offset == 0 and ql["n_visible"].offset == row):
        raise UserError("formal harness: unexpected k_load/query payload layout")
    lines += [
        f"  wire kload_more = kcount < {nk};",
        "  assign k_load__valid = kload_more;",
        f"  wire [{row - 1}:0] krow = k >> (kcount * {row});",
        "  assign k_load__payload = {kcount == 0, krow};",
        "  assign query__valid = ~kload_more & ~qdone;",
    ]
    extra = ql.size - row - ql["n_visible"].width
    pad = f"{extra}'b0, " if extra else ""
    lines += [
        f"  assign query__payload = {{{pad}{ql['n_visible'].width}'d{nk}, q}};",
        "  assign threshold = th;",
        "  assign early_termination = et;",
        "  assign pruning = pr;",
        "  assign result__ready = 1'b1;",
        "  assign survivor__ready = 1'b1;",
        f"  {top} dut (" + ", ".join(
            f".{pt['name']}({'rst_in' if pt['name'] == 'rst' else pt['name']})"
            for pt in ports) + ");",
    ]
    # Reference, from the definitions, on the inputs sampled at reset (computed once and
    # registered: later steps only compare).
    regs: list[str] = []
    for i in range(d):
        lines.append(f"  wire signed [{p - 1}:0] q{i} = q_in[{i * p + p - 1}:{i * p}];")
        lines.append(f"  wire signed [{rw - 1}:0] qw{i} = q{i};")
    lines.append(f"  wire signed [{rw - 1}:0] thw = $signed(th_in);")
    lines.append(f"  wire signed [{rw - 1}:0] qpos = " + " + ".join(
        f"(q{i} > 0 ? qw{i} : {rw}'sd0)" for i in range(d)) + ";")
    for j in range(nk):
        for i in range(d):
            base = j * row + i * p
            lines.append(f"  wire signed [{p - 1}:0] k{j}_{i} = k_in[{base + p - 1}:{base}];")
        for r in range(1, p + 1):
            m = p - r
            terms = []
            for i in range(d):
                lines += _product_term(f"{j}_{i}_{r}", f"q{i}", f"k{j}_{i}", p, m, rw)
                terms.append(f"pw{j}_{i}_{r}")
            lines.append(f"  wire signed [{rw - 1}:0] a{j}_{r} = " + " + ".join(terms) + ";")
            lines.append(f"  wire signed [{rw - 1}:0] ub{j}_{r} = (a{j}_{r} <<< {m}) + "
                         f"qpos * {rw}'sd{(1 << m) - 1};")
        lines.append(f"  wire [7:0] first{j}_{p + 1} = 8'd{p};")
        for r in range(p, 0, -1):
            lines.append(f"  wire [7:0] first{j}_{r} = (ub{j}_{r} < thw) ? 8'd{r} : "
                         f"first{j}_{r + 1};")
        lines.append(f"  wire [7:0] ref_planes{j} = (et_in & pr_in) ? first{j}_1 : 8'd{p};")
        lines.append(f"  wire ref_surv{j} = pr_in ? (a{j}_{p} >= thw) : 1'b1;")
        lines.append(f"  reg [7:0] want_planes{j}; reg want_surv{j}; "
                     f"reg signed [{rw - 1}:0] want_s{j};")
        regs.append(f"want_planes{j} <= ref_planes{j}; want_surv{j} <= ref_surv{j}; "
                    f"want_s{j} <= a{j}_{p};")
    # Checks on every lane's result in every cycle.
    checks = []
    res_valid = "result__valid"
    for n in range(nl):
        off = rl["lanes"].offset + n * lr.size
        v = _slice("result__payload", off + lr["valid"].offset, 1)
        key = _slice("result__payload", off + lr["key"].offset, lr["key"].width)
        surv = _slice("result__payload", off + lr["survivor"].offset, 1)
        planes = _slice("result__payload", off + lr["planes"].offset, lr["planes"].width)
        score = _slice("result__payload", off + lr["score"].offset, lr["score"].width)
        lines.append(f"  wire lv{n} = {res_valid} & {v};")
        lines.append(f"  wire [{lr['key'].width - 1}:0] lk{n} = {key};")
        lines.append(f"  wire ls{n} = {surv};")
        lines.append(f"  wire [7:0] lp{n} = {planes};")
        lines.append(f"  wire signed [{rw - 1}:0] lsc{n} = $signed({score});")
        for j in range(nk):
            lines.append(f"  wire bad{n}_{j} = lv{n} & (lk{n} == {j}) & (seen[{j}] | "
                         f"(ls{n} != want_surv{j}) | (lp{n} != want_planes{j}) | "
                         f"(ls{n} & (lsc{n} != want_s{j})));")
            checks.append(f"bad{n}_{j}")
        checks.append(f"(lv{n} & (lk{n} >= {nk}))")
    deadline = proof_steps(cfg)
    lines += [
        "  wire bad_now = " + " | ".join(checks) + ";",
        "  always @(posedge clk) begin",
        "    if (rst_in) begin",
        "      k <= k_in; q <= q_in; th <= th_in; et <= et_in; pr <= pr_in;",
        "      kcount <= 0; qdone <= 0; seen <= 0; step <= 0; bad <= 0;",
        *(f"      {r}" for r in regs),
        "    end else begin",
        "      if (step != 8'hff) step <= step + 1;",
        "      if (k_load__valid & k_load__ready) kcount <= kcount + 1;",
        "      if (query__valid & query__ready) qdone <= 1;",
        "      if (bad_now) bad <= 1;",
    ]
    for n in range(nl):
        lines.append(f"      if (lv{n} & (lk{n} < {nk})) seen[lk{n}] <= 1;")
    lines += [
        "    end",
        "  end",
        f"  assign ok = ~bad & ~bad_now & ((step < {deadline}) | (&seen));",
        "endmodule",
    ]
    return "\n".join(lines) + "\n"


def prove_terminate(cfg: LeopardConfig, out_dir: Path, *, timeout: float = 600
                    ) -> FormalResult:
    """Emit ``leopard_frontend`` for ``cfg`` and prove the harness's ``ok`` (Yosys ``sat``).

    Returns a :class:`FormalResult`; ``proven`` is False (with the counterexample) if the
    solver finds an input sequence that breaks the property.
    """
    out_dir = Path(out_dir)
    paths = write_build("frontend", cfg, out_dir / "rtl")
    ports = json.loads(Path(paths["manifest"]).read_text())["ports"]
    (out_dir / "formal_top.v").write_text(harness(cfg, ports))
    steps = proof_steps(cfg) + 2
    sets = " ".join(f"-set-at {t} rst_in 0" for t in range(2, steps + 1))
    rw = cfg.score_bits + cfg.qk_bits + 4
    (out_dir / "formal_lemma.v").write_text(lemma(cfg.qk_bits, rw))
    script = out_dir / "formal.ys"
    script.write_text(
        f"read_verilog -sv {(out_dir / 'formal_lemma.v').resolve()}\n"
        "prep -top formal_lemma\n"
        "sat -prove ok 1 -verify -show-inputs\n"
        "design -reset\n"
        f"read_verilog -sv {Path(paths['verilog']).resolve()}\n"
        f"read_verilog -sv {(out_dir / 'formal_top.v').resolve()}\n"
        "prep -flatten -top formal_top\n"
        "memory_map\n"
        "opt -fast\n"
        f"sat -seq {steps} -set-at 1 rst_in 1 {sets} -prove ok 1 -prove-skip 1 "
        "-show-inputs -show-outputs -verify\n")
    log = out_dir / "formal.log"
    t0 = time.monotonic()
    try:
        run_yosys(script, log, timeout=timeout)
        proven = True
    except subprocess.TimeoutExpired:
        raise UserError(f"formal: Yosys sat did not finish within {timeout:g} s for "
                        f"{cfg.name} (log: {log}); prove a smaller configuration") from None
    except SynthError:
        text = log.read_text(errors="replace") if log.is_file() else ""
        if "proof did fail" not in text and "failed" not in text.lower():
            raise
        proven = False
    secs = time.monotonic() - t0
    text = log.read_text(errors="replace")
    if proven and len(re.findall(r"SUCCESS!", text)) != 2:
        raise UserError(f"formal: Yosys sat finished without a proof (log: {log})")
    cex = ""
    if not proven:
        rows = re.findall(r"^\s*(\d+)\s+\\(k_in|q_in|th_in|et_in|pr_in|ok)\s+(\S+)\s+\S+\s+(\S+)$",
                          text, re.M)
        want = [f"step {t}: {n} = {dec} (bin {b})" for t, n, dec, b in rows
                if n == "ok" or t == "1"]
        cex = "\n".join(want) if want else text[-4000:]
    return FormalResult(config=cfg.name, proven=proven, steps=steps, seconds=secs, log=log,
                        counterexample=cex)
