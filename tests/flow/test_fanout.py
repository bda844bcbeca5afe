"""Fan-out repair (leopard_rtl.flow.fanout): buffer trees keep every connection."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from support import require_tool

from leopard_rtl.config import preset
from leopard_rtl.flow.fanout import _CONN, _INST, pick_buffer, read_liberty_cells, repair_fanout
from leopard_rtl.flow.pdk import resolve_pdk
from leopard_rtl.flow.run import LIB_CACHE, synth_unit

pytestmark = pytest.mark.synth


@pytest.fixture(scope="module")
def ng45() -> dict:
    pdk = resolve_pdk("nangate45", LIB_CACHE)
    cells = read_liberty_cells(pdk.liberty)
    return {"pdk": pdk, "cells": cells, "buf": pick_buffer(cells, pdk.dont_use)}


def _instances(text: str, top: str) -> dict[str, tuple[str, dict[str, str]]]:
    mm = re.search(rf"^module\s+{re.escape(top)}\s*\(.*?\);\n", text, re.M | re.S)
    assert mm is not None
    body = text[mm.end():text.index("\nendmodule", mm.end())]
    return {im.group(3): (im.group(2), {p: n.strip() for p, n in _CONN.findall(im.group(4))})
            for im in _INST.finditer(body)}


def check_repair(before: str, after: str, top: str, cells: dict, buf_name: str,
                 max_fanout: int) -> int:
    """Every pin of the original cells reaches its original net through buffers only, and
    no net has more than ``max_fanout`` loads (clock pins aside). Returns the buffers."""
    a, b = _instances(before, top), _instances(after, top)
    bufs = {k: v for k, v in b.items() if k.startswith("leopard_fo_buf_")}
    assert set(b) - set(bufs) == set(a)
    assert all(c == buf_name for c, _ in bufs.values())
    cell = cells[buf_name]
    src = {p[next(iter(cell.outputs))]: p[cell.inputs[0]] for _, p in bufs.values()}

    def root(net: str) -> str:
        seen = 0
        while net in src:
            net, seen = src[net], seen + 1
            assert seen < 20, "buffer loop"
        return net

    loads: dict[str, int] = {}
    for name, (ctype, pins) in b.items():
        lc = cells.get(ctype)
        for pin, net in pins.items():
            if lc is not None and pin in lc.inputs and pin not in lc.clock_pins \
                    and "'" not in net:
                loads[net] = loads.get(net, 0) + 1
            if name in a:
                assert a[name][0] == ctype
                assert root(net) == a[name][1][pin], f"{name}.{pin}: {net} -> {root(net)}"
    assert max(loads.values()) <= max_fanout
    return len(bufs)


def _netlist(n_loads: int) -> str:
    lines = ["module t(clk, d, y);", "  input clk;", "  input d;", "  output [0:0] y;",
             "  wire q;", f"  wire [{n_loads - 1}:0] o;",
             "  DFF_X1 r (", "    .CK(clk),", "    .D(d),", "    .Q(q)", "  );"]
    for i in range(n_loads):
        lines += [f"  INV_X1 i{i} (", "    .A(q),", f"    .ZN(o[{i}])", "  );",
                  f"  DFF_X1 f{i} (", "    .CK(clk),", f"    .D(o[{i}]),", "    .Q()", "  );"]
    lines += ["  assign y = o[0];", "endmodule", ""]
    return "\n".join(lines)


@pytest.mark.parametrize("n_loads,max_fanout", [(10, 16), (40, 16), (300, 16), (300, 4)])
def test_buffer_tree(n_loads: int, max_fanout: int, ng45: dict) -> None:
    text = _netlist(n_loads)
    new, res = repair_fanout(text, "t", ng45["cells"], ng45["buf"], max_fanout)
    if n_loads <= max_fanout:
        assert new == text and res.buffers == 0
        return
    # A tree: ceil(n/F) buffers on the loads, then ceil(that/F) ... until <= F.
    want, level = 0, n_loads
    while level > max_fanout:
        level = math.ceil(level / max_fanout)
        want += level
    assert res.buffers == want and res.nets_repaired == 1
    assert res.worst_fanout_before == n_loads and res.worst_fanout_after <= max_fanout
    # The clock (n_loads + 1 flip-flops) is not buffered: ideal in STA, CTS builds it.
    assert check_repair(text, new, "t", ng45["cells"], ng45["buf"].name, max_fanout) == want
    assert res.area_um2 == pytest.approx(want * ng45["buf"].area)


def test_pick_buffer(ng45: dict) -> None:
    assert ng45["buf"].name == "BUF_X4"
    for name in ("osu018", "sky130hd", "asap7"):
        pdk = resolve_pdk(name, LIB_CACHE)
        buf = pick_buffer(read_liberty_cells(pdk.liberty), pdk.dont_use)
        assert "clk" not in buf.name.lower() and len(buf.inputs) == 1, (name, buf)


def test_synthesized_backend_repaired(build_root: Path, ng45: dict) -> None:
    """The tiny back end: its broadcast nets (FSM state, the reciprocal bit, the MAC
    valid) are buffered, every connection is kept, and the report counts the buffers."""
    require_tool("sta")
    out = build_root / "flow" / "fanout-tiny-backend-nangate45"
    rep = synth_unit("backend", preset("tiny"), "nangate45", out)
    fo = rep["synth"]["fanout"]
    assert fo["max_fanout"] == 16 and fo["buffers"] > 0
    assert fo["worst_fanout_before"] > 100 and fo["worst_fanout_after"] <= 16
    assert rep["synth"]["blocks_um2"]["(fan-out buffers)"] == pytest.approx(fo["area_um2"])
    assert sum(rep["synth"]["blocks_um2"].values()) == pytest.approx(rep["synth"]["area_um2"])
    n = check_repair((out / "netlist_unbuffered.v").read_text(),
                     (out / "netlist.v").read_text(), "leopard_backend", ng45["cells"],
                     fo["buffer_cell"], 16)
    assert n == fo["buffers"]
    off = synth_unit("backend", preset("tiny"), "nangate45", build_root / "flow" /
                     "fanout-tiny-backend-nangate45-off", max_fanout=0)
    assert off["synth"]["fanout"] == {}
    # Unbuffered, the same logic is slower (one X1-class driver per broadcast net).
    assert rep["sta"]["fmax_mhz"] > off["sta"]["fmax_mhz"]
