"""Run the emitted back-end Verilog (``leopard_backend``) on every head of a trace.

The survivors come from the golden front end (:func:`sim.golden.bitserial_prune` with the
configuration's switches, :func:`sim.golden.threshold_register`, causal visibility): one
record per surviving key in key order, a single ``empty`` record for a query without
survivors. A plain Verilog testbench (written here) reads them from a text file with
``$fscanf`` and drives the DUT at one record per cycle, so the run is fast under
``verilator --binary`` (cached build) or Icarus.

Per head the testbench loads V (``v_load``), sets the scale registers, streams all
queries' survivor records and collects one output per query. ``cycles[h]`` is the cycle of
the head's last output transfer minus the cycle its first survivor record is presented
(``out`` always ready): :func:`predicted_cycles` gives the same number from
:func:`sim.perf.backend_pipeline_cycles` with the front end replaced by the record stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from leopard_rtl.config import LeopardConfig
from sim import perf
from sim.golden import (
    bitserial_prune,
    check_fits,
    scale_registers,
    softmax_value,
    stored_survivors,
    threshold_register,
)
from sim.trace import Trace

from ..emit import write_build
from ..errors import UserError
from ..hw import layouts
from .packing import pack, records_to_arrays, unpack
from .ports import dut_declarations, load_ports, port_width
from .toolchain import (
    SIMULATORS,
    TB_FILE_DECLS,
    TB_OPEN_FILES,
    TB_OUTPUT_PROCESS,
    build_testbench,
    icarus_compat,
    run_stimulus,
)

__all__ = ["simulate", "expected", "predicted_cycles", "write_stimulus", "build",
           "pack", "unpack", "SIMULATORS"]



# ------------------------------------------------------------------ golden reference
def front(trace: Trace, cfg: LeopardConfig) -> dict[str, np.ndarray]:
    """Golden front end of ``trace`` (scores and survivor mask) plus the scale registers."""
    check_fits(trace, cfg)
    fe = bitserial_prune(trace.q, trace.k, threshold_register(trace.threshold, cfg),
                         cfg.qk_bits, early_termination=cfg.early_termination,
                         pruning=cfg.pruning, visible=trace.visible())
    mant, shift = scale_registers(trace.scale_q, trace.scale_k, cfg)
    return {"score": fe["score"], "mask": fe["mask"], "mant": mant, "shift": shift}


def expected(score: np.ndarray, mask: np.ndarray, v: np.ndarray, mant: np.ndarray,
             shift: np.ndarray, cfg: LeopardConfig) -> dict[str, np.ndarray]:
    """What the back end must output for survivors ``mask`` sent in key order.

    A query with more than ``survivor_capacity`` survivors keeps its first
    ``survivor_capacity`` (in record order) and raises ``overflow``; the golden model is
    applied to the stored survivors. ``survivors`` counts all of them.
    """
    mask = np.asarray(mask, bool)
    stored = stored_survivors(mask, cfg.survivor_capacity)
    be = softmax_value(score, stored, v, mant, shift, cfg)
    surv = mask.sum(axis=-1)
    return {"out": be["out"], "all_pruned": be["all_pruned"], "survivors": surv,
            "overflow": surv > cfg.survivor_capacity, "stored": stored.sum(axis=-1),
            "backend": be}


def predicted_cycles(survivors: np.ndarray, cfg: LeopardConfig) -> np.ndarray:
    """Back-end cycles per head [H] for records streamed at one per cycle (out ready).

    The record stream plays the front end: query i's records take ``max(1, survivors)``
    cycles; the back end reads ``min(survivors, capacity)`` stored survivors
    (:func:`sim.perf.backend_pipeline_cycles`; without ``overlap_norm`` each query takes
    ``min(survivors, capacity) + be_query_overhead``).
    """
    surv = np.asarray(survivors, np.int64)
    return perf.backend_pipeline_cycles(np.maximum(surv, 1),
                                        np.minimum(surv, cfg.survivor_capacity),
                                        perf.timing(cfg))


# ------------------------------------------------------------------ stimulus and testbench
def write_stimulus(path: Path, score: np.ndarray, mask: np.ndarray, v: np.ndarray,
                   mant: np.ndarray, shift: np.ndarray, cfg: LeopardConfig) -> int:
    """Write the testbench's input file; return the number of expected outputs."""
    slay, vlay = layouts.survivor(cfg), layouts.v_load(cfg)
    H, Nq, _ = score.shape
    lines = [f"{H} {H * Nq}"]
    for h in range(H):
        nk = v.shape[1]
        recs = []
        for i in range(Nq):
            keys = np.flatnonzero(mask[h, i])
            if keys.size == 0:
                recs.append(pack(slay, {"key": 0, "score": 0, "last": 1, "empty": 1}))
            for n, j in enumerate(keys):
                recs.append(pack(slay, {"key": int(j), "score": int(score[h, i, j]),
                                        "last": int(n == keys.size - 1), "empty": 0}))
        lines.append(f"{nk} {int(mant[h]):x} {int(shift[h]):x} {Nq} {len(recs)}")
        lines += [f"{pack(vlay, {'data': [int(x) for x in v[h, j]], 'first': int(j == 0)}):x}"
                  for j in range(nk)]
        lines += [f"{r:x}" for r in recs]
    path.write_text("\n".join(lines) + "\n")
    return H * Nq


def testbench(cfg: LeopardConfig, ports: list[dict[str, Any]]) -> str:
    """The plain Verilog testbench of ``leopard_backend`` (Icarus and Verilator); the DUT's
    ports (``ports``, from the build's manifest) are declared by :func:`dut_declarations`."""
    sw = port_width(ports, "survivor__payload")
    vw = port_width(ports, "v_load__payload")
    mw, shw = port_width(ports, "scale_mant"), port_width(ports, "scale_shift")
    return f"""`timescale 1ns/1ps
// Generated by leopard_rtl.tb.backend: file-driven testbench of leopard_backend.
module tb;
  reg clk = 0;
  reg rst = 1;
  always #5 clk = ~clk;
{dut_declarations(ports, "leopard_backend", init={"scale_shift": 1})}
  integer cycle = 0;
  always @(posedge clk) cycle <= cycle + 1;

  integer r, nheads, total, h, j, nv, nq, nrec, got;
  reg [{max(mw, shw, 32) - 1}:0] tmp_a, tmp_b;
  reg [{max(sw, vw) - 1}:0] word;
{TB_FILE_DECLS}
  initial begin
{TB_OPEN_FILES}    r = $fscanf(fd, "%d %d\\n", nheads, total);
    got = 0;
    repeat (2) @(negedge clk);
    rst = 0;
    for (h = 0; h < nheads; h = h + 1) begin
      r = $fscanf(fd, "%d %h %h %d %d\\n", nv, tmp_a, tmp_b, nq, nrec);
      for (j = 0; j < nv; j = j + 1) begin
        r = $fscanf(fd, "%h\\n", word);
        v_load__payload = word[{vw - 1}:0];
        v_load__valid = 1;
        #1;
        while (!v_load__ready) begin @(negedge clk); #1; end
        @(negedge clk);
        v_load__valid = 0;
      end
      scale_mant = tmp_a[{mw - 1}:0];
      scale_shift = tmp_b[{shw - 1}:0];
      for (j = 0; j < nrec; j = j + 1) begin
        r = $fscanf(fd, "%h\\n", word);
        while (stall_in > 0 && ($urandom % 100) < stall_in) @(negedge clk);
        survivor__payload = word[{sw - 1}:0];
        survivor__valid = 1;
        if (j == 0) $fwrite(fo, "S %0d %0d\\n", h, cycle);
        #1;
        while (!survivor__ready) begin @(negedge clk); #1; end
        @(negedge clk);
        survivor__valid = 0;
      end
    end
  end

{TB_OUTPUT_PROCESS}endmodule
"""


def build(cfg: LeopardConfig, simulator: str, build_dir: Path) -> Path:
    """Emit the back end and testbench into ``build_dir`` and compile them (cached).

    Returns the executable (Verilator) or ``.vvp`` file (Icarus). The build is redone
    only when the Verilog or the testbench changes.
    """
    paths = write_build("backend", cfg, Path(build_dir))
    tb = testbench(cfg, load_ports(paths["manifest"]))
    return build_testbench(paths["verilog"], tb, "tb_backend.v", simulator, Path(build_dir),
                           icarus_fix=icarus_compat)


def parse_output(lines: list[str], cfg: LeopardConfig, heads: int, n_queries: int
                 ) -> dict[str, np.ndarray]:
    """Outputs, flags and per-head cycles from the testbench's output lines."""
    olay = layouts.backend_out(cfg)
    starts: list[int] = []
    outs: list[tuple[int, dict[str, Any]]] = []
    for line in lines:
        tag, *rest = line.split()
        if tag == "S":
            starts.append(int(rest[1]))
        elif tag == "O":
            outs.append((int(rest[0]), unpack(olay, int(rest[1], 16))))
        elif tag == "T":
            raise UserError(f"back-end simulation timed out at cycle {rest[0]} after "
                            f"{len(outs)} of {heads * n_queries} outputs")
    if len(outs) != heads * n_queries or len(starts) != heads:
        raise UserError(f"back-end simulation produced {len(outs)} outputs for "
                        f"{heads * n_queries} queries")
    res = records_to_arrays(outs, heads, n_queries)
    res["out"] = res.pop("data")
    res["all_pruned"] = res["all_pruned"].astype(bool)
    res["overflow"] = res["overflow"].astype(bool)
    res["cycles"] = res.pop("out_cycle")[:, -1] - np.asarray(starts, np.int64)
    return res


def run_arrays(score: np.ndarray, mask: np.ndarray, v: np.ndarray, mant: np.ndarray,
               shift: np.ndarray, cfg: LeopardConfig, *, simulator: str, build_dir: Path,
               stall_in: int = 0, stall_out: int = 0, seed: int = 1
               ) -> dict[str, np.ndarray]:
    """Run the back-end Verilog on explicit scores/survivors (the tests use this)."""
    exe = build(cfg, simulator, build_dir)
    lines = run_stimulus(exe, simulator, Path(build_dir),
                         lambda p: write_stimulus(p, score, mask, v, mant, shift, cfg),
                         stall_in=stall_in, stall_out=stall_out, seed=seed)
    H, Nq, _ = np.asarray(score).shape
    return parse_output(lines, cfg, H, Nq)


def simulate(trace: Trace, cfg: LeopardConfig, simulator: str = "verilator",
             build_dir: Path | str = Path("build/backend/sim")
             ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``leopard-rtl simulate --unit backend``: outputs, flags, cycles and a summary.

    Returns
    -------
    (arrays, summary)
        ``arrays``: ``out`` int [H, Nq, dv], ``all_pruned`` bool [H, Nq], ``survivors``
        int [H, Nq], ``overflow`` bool [H, Nq], ``cycles`` int [H] (back-end cycles per
        head), ``predicted_cycles`` int [H]. ``summary``: cycles per head, cycles per
        survivor, and whether outputs, flags and cycles matched the golden and
        performance models.
    """
    fe = front(trace, cfg)
    got = run_arrays(fe["score"], fe["mask"], trace.v, fe["mant"], fe["shift"], cfg,
                     simulator=simulator, build_dir=Path(build_dir))
    want = expected(fe["score"], fe["mask"], trace.v, fe["mant"], fe["shift"], cfg)
    pred = predicted_cycles(want["survivors"], cfg)
    out_ok = bool(np.array_equal(got["out"], want["out"]))
    flags_ok = bool(np.array_equal(got["all_pruned"], want["all_pruned"])
                    and np.array_equal(got["survivors"], want["survivors"])
                    and np.array_equal(got["overflow"], want["overflow"]))
    cyc_ok = bool(np.array_equal(got["cycles"], pred))
    surv_head = want["survivors"].sum(axis=-1)
    summary: dict[str, Any] = {
        "unit": "backend", "config": cfg.name, "simulator": simulator,
        "heads": int(trace.heads), "queries": int(trace.n_queries),
        "cycles": [int(c) for c in got["cycles"]],
        "predicted_cycles": [int(c) for c in pred],
        "survivors": [int(s) for s in surv_head],
        "cycles_per_survivor": [round(float(c) / max(1, int(s)), 4)
                                for c, s in zip(got["cycles"], surv_head, strict=True)],
        "be_query_overhead": perf.timing(cfg).be_query_overhead,
        "overflow_queries": int(want["overflow"].sum()),
        "all_pruned_queries": int(want["all_pruned"].sum()),
        "match": {"out": out_ok, "flags": flags_ok, "cycles": cyc_ok},
        "matched": out_ok and flags_ok and cyc_ok,
    }
    arrays = {"out": got["out"], "all_pruned": got["all_pruned"],
              "survivors": got["survivors"], "overflow": got["overflow"],
              "cycles": got["cycles"], "predicted_cycles": pred}
    return arrays, summary
