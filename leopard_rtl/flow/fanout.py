"""Fan-out repair of a flat gate-level netlist: buffer trees on high-fan-out nets.

Yosys/ABC map each module separately and never buffer a net that leaves a flip-flop or
enters a module, so a broadcast signal of a d-wide datapath (the back end's MAC valid,
the reciprocal bit that reaches every product register, the normalizer's shift) ends up
as one X1 driver with 500-2000 loads, and pre-layout timing is then that one net. Place
and route tools repair this first (OpenROAD ``repair_design``); :func:`repair_fanout` does
the same minimal job on the synthesized netlist, before STA, so that the reported fmax is
the logic's:

* every net with more than ``max_fanout`` cell input loads (the clock nets, i.e. nets on
  a liberty ``clock : true`` pin, excepted) is split: its loads are grouped by
  ``max_fanout``, each group is driven by a new buffer, and the buffers' inputs are
  themselves split the same way until the source drives at most ``max_fanout``;
* the buffer is a mid-drive non-clock buffer of the library (:func:`pick_buffer`);
* the buffers' area is added to the synthesis report (its own block, ``(fan-out
  buffers)``), so areas and cell counts stay honest.

No placement is known, so loads are grouped in netlist order; OpenROAD re-buffers with
placement anyway.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LibCell", "read_liberty_cells", "pick_buffer", "repair_fanout", "FanoutResult"]


@dataclass
class LibCell:
    """A liberty cell: area and pin directions (and functions of outputs)."""

    name: str
    area: float
    inputs: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    clock_pins: set[str] = field(default_factory=set)


_CELL = re.compile(r"^\s*cell\s*\(\s*\"?([\w$]+)\"?\s*\)", re.M)
_PIN = re.compile(r"^\s*pin\s*\(\s*\"?([\w\[\]]+)\"?\s*\)\s*\{", re.M)


def read_liberty_cells(liberty: list[Path]) -> dict[str, LibCell]:
    """Cells of the liberty files: area, input and output pins, clock pins."""
    cells: dict[str, LibCell] = {}
    for path in liberty:
        text = path.read_text(errors="replace")
        starts = [(m.start(), m.group(1)) for m in _CELL.finditer(text)]
        for i, (pos, name) in enumerate(starts):
            body = text[pos:starts[i + 1][0] if i + 1 < len(starts) else len(text)]
            am = re.search(r"^\s*area\s*:\s*([\d.eE+-]+)", body, re.M)
            cell = LibCell(name, float(am.group(1)) if am else 0.0)
            pins = list(_PIN.finditer(body))
            for j, pm in enumerate(pins):
                pb = body[pm.end():pins[j + 1].start() if j + 1 < len(pins) else len(body)]
                dm = re.search(r"direction\s*:\s*\"?(\w+)", pb)
                if not dm:
                    continue
                if dm.group(1) == "input":
                    cell.inputs.append(pm.group(1))
                    if re.search(r"^\s*clock\s*:\s*\"?true", pb, re.M):
                        cell.clock_pins.add(pm.group(1))
                elif dm.group(1) == "output":
                    fm = re.search(r"function\s*:\s*\"([^\"]*)\"", pb)
                    cell.outputs[pm.group(1)] = fm.group(1) if fm else ""
            cells[name] = cell
    return cells


def pick_buffer(cells: dict[str, LibCell], dont_use: tuple[str, ...] = ()) -> LibCell:
    """A mid-drive buffer: the lower median by area of the library's non-clock buffers
    (cells with one input, one output whose function is the input, named ``*buf*``)."""
    bufs = []
    for c in cells.values():
        if any(fnmatch.fnmatch(c.name, p) for p in dont_use) or "clk" in c.name.lower():
            continue
        if len(c.inputs) == 1 and len(c.outputs) == 1 and c.area > 0:
            func = next(iter(c.outputs.values())).replace("(", "").replace(")", "").strip()
            if func == c.inputs[0]:
                bufs.append(c)
    if not bufs:
        raise ValueError("the liberty has no buffer cell (one input, function = input)")
    # Delay cells (sky130 dlygate/dlymetal) are buffers too, slow by design: prefer "buf".
    named = [c for c in bufs if "buf" in c.name.lower()]
    bufs = named or bufs
    bufs.sort(key=lambda c: (c.area, c.name))
    return bufs[(len(bufs) - 1) // 2]


@dataclass
class FanoutResult:
    """What :func:`repair_fanout` did."""

    buffer_cell: str
    buffers: int
    area_um2: float
    nets_repaired: int
    worst_fanout_before: int
    worst_fanout_after: int

    def to_dict(self) -> dict[str, object]:
        return {"buffer_cell": self.buffer_cell, "buffers": self.buffers,
                "area_um2": round(self.area_um2, 3), "nets_repaired": self.nets_repaired,
                "worst_fanout_before": self.worst_fanout_before,
                "worst_fanout_after": self.worst_fanout_after}


_INST = re.compile(r"^(\s*)([\w$\\][^\s(]*)\s+(\\\S+|[\w$]+)\s*\((.*?)\);", re.M | re.S)
_CONN = re.compile(r"\.(\w+)\(\s*(.*?)\s*\)(?=\s*,|\s*$)", re.S)


def repair_fanout(text: str, top: str, cells: dict[str, LibCell], buffer: LibCell,
                  max_fanout: int = 16) -> tuple[str, FanoutResult]:
    """Buffer every net of module ``top`` in ``text`` with more than ``max_fanout`` loads.

    ``text`` is a flat Yosys ``write_verilog -noattr -noexpr`` netlist; returns the new
    text and a :class:`FanoutResult`. Cells not in ``cells`` (macros) are left alone and
    not counted as loads.
    """
    if max_fanout < 2:
        raise ValueError(f"max_fanout must be >= 2, not {max_fanout}")
    mm = re.search(rf"^module\s+{re.escape(top)}\s*\(.*?\);\n", text, re.M | re.S)
    if mm is None:
        raise ValueError(f"module {top} not found in the netlist")
    end = text.index("\nendmodule", mm.end())
    body = text[mm.end():end]
    insts = list(_INST.finditer(body))
    loads: dict[str, list[tuple[int, str]]] = {}
    clock_nets: set[str] = set()
    conns: list[dict[str, str]] = []
    for k, im in enumerate(insts):
        cell = cells.get(im.group(2))
        pins = {p: n for p, n in _CONN.findall(im.group(4))}
        conns.append(pins)
        if cell is None:
            continue
        for p, n in pins.items():
            if p not in cell.inputs or not n or "'" in n or n.startswith("{"):
                continue
            if p in cell.clock_pins:
                clock_nets.add(n)
            loads.setdefault(n, []).append((k, p))
    worst_before = max((len(v) for n, v in loads.items() if n not in clock_nets), default=0)
    new_pin: dict[tuple[int, str], str] = {}     # (instance, pin) -> its new net
    new_bufs: list[str] = []                      # buffer i drives net new_bufs[i] ...
    buf_in: dict[int, str] = {}                   # ... from net buf_in[i]
    bin_, bout = buffer.inputs[0], next(iter(buffer.outputs))
    repaired = 0
    worst_after = 0

    def split(src: str, pins: list[tuple[int, str]]) -> None:
        # Level by level: groups of max_fanout sinks (cell pins first, then the buffers
        # of the level below) each get a new buffer, until src drives <= max_fanout.
        sinks: list[tuple[int, str] | int] = list(pins)
        while len(sinks) > max_fanout:
            level: list[tuple[int, str] | int] = []
            for i in range(0, len(sinks), max_fanout):
                net = f"leopard_fo_{len(new_bufs)}"
                for sink in sinks[i:i + max_fanout]:
                    if isinstance(sink, int):
                        buf_in[sink] = net
                    else:
                        new_pin[sink] = net
                level.append(len(new_bufs))
                new_bufs.append(net)
            sinks = level
        for sink in sinks:
            if isinstance(sink, int):
                buf_in[sink] = src

    for net, ls in loads.items():
        if net in clock_nets:                     # ideal clocks: CTS buffers them
            continue
        if len(ls) <= max_fanout:
            worst_after = max(worst_after, len(ls))
            continue
        repaired += 1
        split(net, ls)
    worst_after = max(worst_after, max_fanout if repaired else 0)
    if not new_bufs:
        return text, FanoutResult(buffer.name, 0, 0.0, 0, worst_before, worst_after)
    out = []
    pos = 0
    for k, im in enumerate(insts):
        pins = conns[k]
        changed = {p: new_pin[(k, p)] for p in pins if (k, p) in new_pin}
        if not changed:
            continue
        out.append(body[pos:im.start(4)])
        out.append(_CONN.sub(lambda c, ch=changed: f".{c.group(1)}({ch[c.group(1)]})"
                             if c.group(1) in ch else c.group(0), im.group(4)))
        pos = im.end(4)
    out.append(body[pos:])
    decl = "".join(f"  wire {w};\n" for w in new_bufs)
    # "net )": an escaped identifier (\\name) ends at white space.
    inst_text = "".join(f"  {buffer.name} leopard_fo_buf_{i} (\n    .{bin_}({buf_in[i]} ),\n"
                        f"    .{bout}({net})\n  );\n" for i, net in enumerate(new_bufs))
    new_text = text[:mm.end()] + decl + "".join(out) + "\n" + inst_text + text[end:]
    n = len(new_bufs)
    return new_text, FanoutResult(buffer.name, n, n * buffer.area, repaired, worst_before,
                                  worst_after)
