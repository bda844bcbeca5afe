"""Repair qrouter's RC trees (``<top>.rc``) so qflow's ``rc2dly`` can read every net.

qrouter (qflow 1.3) writes one line per net::

    <net> <n_drivers> <driver...> <n_receivers> ( R C <receiver> , ( R C ... ) ... )

``( R C`` opens a node (wire resistance from the node on top of the stack, node
capacitance), a receiver token ``INST/PIN`` (or ``PIN/port``) attaches to the top node
with 0 ohm, ``,`` separates and ``)`` pops. For some nets qrouter's delay writer loses
the route tree: the line holds an ``ERROR`` token where a receiver should be (net
``_4318_`` of the tiny front end: a 1,025-node chain, receiver ``OAI21X1_209/A`` twice,
then ``ERROR``; vesta rejects its 4 sinks for a fanout of 2), or loses a receiver.
:func:`sanitize_rc` rewrites each such net as a *lumped* model -- the tree's total R
and total C on one node after the driver, every receiver of the net (from the routed
DEF's NETS section, which lists each net's pins) attached to it::

    <net> 1 <driver> <n> ( R_total C_total rx1 , rx2 , ... )

This is pessimistic for that net (all of its R in front of every receiver); the repaired
nets are reported so a user knows their wire delay is a lumped estimate.

``rc2dly`` (qflow 1.3.17) also overflows the heap by one byte for a net whose name has
``n`` characters with ``n >= 24`` and ``n % 16 == 8`` (``calloc(strlen(name))`` then
``strcpy``): the NUL lands in the next chunk's size field, the net's name comes out with
a stray character (``lanes.lane0.cur_plane[0]!``, which vesta then cannot find) and a
later allocation aborts (``malloc assertion failure in sysmalloc``), leaving no delay file.
:func:`rename_overflow_nets` gives such nets a two-character suffix in the ``.rc`` and in
the netlist vesta reads (``<top>.rtlnopwr.v``, names cleaned as vesta ``-c`` does).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["rc_problems", "def_net_pins", "lumped_line", "sanitize_rc",
           "overflows_rc2dly", "rename_overflow_nets"]


def _num(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _parse(line: str) -> tuple[str, list[str], list[str]]:
    """(net, drivers, tree tokens) of one ``.rc`` line."""
    toks = line.split()
    nd = int(toks[1])
    return toks[0], toks[2:2 + nd], toks[3 + nd:]


def rc_problems(tree: list[str]) -> tuple[list[str], list[str], float, float]:
    """Walk a tree's tokens like ``rc2dly``: (problems, receivers, total R, total C).

    Problems: ``ERROR`` tokens, receivers without ``/`` or listed twice (vesta rejects a
    net whose sink count differs from its fanout), ``( R C`` with non-numbers, a ``)``
    with nothing to pop, or ``(`` left open."""
    problems: list[str] = []
    receivers: list[str] = []
    r_tot = c_tot = 0.0
    depth = 0
    t = 0
    while t < len(tree):
        tok = tree[t]
        if tok == "(":
            rc = tree[t + 1:t + 3]
            if len(rc) < 2 or not all(_num(x) for x in rc):
                problems.append("node without numeric R C")
                t += 1
            else:
                r_tot += float(rc[0])
                c_tot += float(rc[1])
                t += 3
            depth += 1
            continue
        if tok == ")":
            depth -= 1
            if depth < 0:
                problems.append("unbalanced ')'")
                depth = 0
        elif tok == ",":
            pass
        elif tok == "ERROR":
            problems.append("ERROR token")
        elif "/" not in tok:
            problems.append(f"receiver {tok!r} without '/'")
        else:
            receivers.append(tok)
        t += 1
    if depth > 0:
        problems.append(f"{depth} unclosed '('")
    dup = sorted({x for x in receivers if receivers.count(x) > 1})
    if dup:
        problems.append(f"receiver(s) {', '.join(dup)} listed twice")
    return sorted(set(problems)), receivers, r_tot, c_tot


_DEF_NET = re.compile(r"^- (\S+)")
_DEF_PIN = re.compile(r"\(\s*(\S+)\s+(\S+)\s*\)")


def def_net_pins(def_path: Path) -> dict[str, list[str]]:
    """Pins of every net of a DEF's NETS section, as ``INST/PIN`` (``PIN/port`` for a
    top-level port), in the names qrouter writes to the ``.rc`` file."""
    nets: dict[str, list[str]] = {}
    cur: list[str] | None = None
    in_nets = False
    with open(def_path, errors="replace") as fh:
        for line in fh:
            s = line.strip()
            if not in_nets:
                in_nets = s.startswith("NETS ")
                continue
            if s.startswith("END NETS"):
                break
            m = _DEF_NET.match(s)
            if m:
                cur = nets.setdefault(m.group(1), [])
                s = s[m.end():]
            if cur is None or s.startswith("+"):
                cur = None if s.startswith("+") else cur
                continue
            for inst, pin in _DEF_PIN.findall(s):
                cur.append(f"PIN/{pin}" if inst == "PIN" else f"{inst}/{pin}")
            if s.endswith(";"):
                cur = None
    return nets


def lumped_line(net: str, driver: str, receivers: list[str], r_tot: float,
                c_tot: float) -> str:
    """One ``.rc`` line: every receiver on a single node (R ``r_tot``, C ``c_tot``)."""
    return (f"{net} 1 {driver} {len(receivers)} ( {r_tot:.6g} {c_tot:.6g} "
            + " , ".join(receivers) + " ) ")


def sanitize_rc(rc_path: Path, def_path: Path | None = None) -> list[dict[str, Any]]:
    """Rewrite, in place, each malformed net of ``rc_path`` as a lumped RC model.

    A net is malformed when its tree has an ``ERROR`` token, a receiver without ``/`` or
    listed twice, unbalanced parentheses, or (given ``def_path``) lacks a receiver the
    DEF lists. The original file is kept as ``<rc>.orig``. Returns ``[{net, reason,
    receivers, r_ohm, c_pf}]`` for the rewritten nets (receivers: the DEF's, else the
    tree's valid ones)."""
    pins = def_net_pins(def_path) if def_path is not None else {}
    lines = rc_path.read_text(errors="replace").split("\n")
    repaired: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        if len(line) <= 2 or not line.strip():
            continue
        net, drivers, tree = _parse(line)
        problems, rx, r_tot, c_tot = rc_problems(tree)
        want = [p for p in pins.get(net, []) if p not in drivers]
        missing = [p for p in want if p not in rx]
        if missing and not problems:
            problems = [f"receiver(s) {', '.join(missing)} missing from the tree"]
        if not problems:
            continue
        receivers = want or list(dict.fromkeys(rx))
        if len(drivers) != 1 or not receivers:
            raise ValueError(f"{rc_path}: net {net} ({'; '.join(problems)}) cannot be "
                             f"repaired: {len(drivers)} drivers, {len(receivers)} receivers")
        lines[i] = lumped_line(net, drivers[0], receivers, r_tot, c_tot)
        repaired.append({"net": net, "reason": "; ".join(problems), "receivers": receivers,
                         "r_ohm": round(r_tot, 6), "c_pf": round(c_tot, 9)})
    if repaired:
        rc_path.with_name(rc_path.name + ".orig").write_bytes(rc_path.read_bytes())
        rc_path.write_text("\n".join(lines))
    return repaired


def overflows_rc2dly(name: str) -> bool:
    """True if ``rc2dly``'s ``calloc(strlen(name))`` + ``strcpy`` writes past the chunk
    (glibc: usable size ``strlen`` exactly, i.e. ``n >= 24`` and ``n % 16 == 8``)."""
    n = len(name)
    return n >= 24 and n % 16 == 8


def _vesta_name(name: str) -> str:
    """A ``.rc`` net name as it appears in qflow's ``rtlnopwr.v`` (and after vesta's
    ``-c`` cleanup): ``.``, ``[`` and ``]`` become ``_``."""
    return re.sub(r"[.\[\]]", "_", name)


def rename_overflow_nets(rc_path: Path, verilog_path: Path) -> dict[str, str]:
    """Rename, in place, the nets of ``rc_path`` whose names overflow ``rc2dly`` (see
    :func:`overflows_rc2dly`) by appending ``_q`` (``_q<N>`` on a clash), in the ``.rc``
    and in the vesta netlist ``verilog_path``. Returns ``{old rc name: new rc name}``.

    Raises ``ValueError`` when a renamed net is not in the netlist (vesta would then
    miss its wire delay)."""
    lines = rc_path.read_text(errors="replace").split("\n")
    names = {ln.split(" ", 1)[0] for ln in lines if ln.strip()}
    renames: dict[str, str] = {}
    for i, line in enumerate(lines):
        name = line.split(" ", 1)[0]
        if not line.strip() or not overflows_rc2dly(name):
            continue
        new, k = name + "_q", 0
        while new in names or overflows_rc2dly(new) or \
                _vesta_name(new) in {_vesta_name(x) for x in names}:
            k += 1
            new = f"{name}_q{k}"
        names.add(new)
        renames[name] = new
        lines[i] = new + line[len(name):]
    if not renames:
        return renames
    text = verilog_path.read_text(errors="replace")
    for old, new in renames.items():
        text, count = re.subn(r"(?<![\w$\\])" + re.escape(_vesta_name(old)) + r"(?![\w$])",
                              _vesta_name(new), text)
        if count == 0:
            raise ValueError(f"net {old} ({_vesta_name(old)}) of {rc_path} is not in "
                             f"{verilog_path}")
    rc_path.write_text("\n".join(lines))
    verilog_path.write_text(text)
    return renames
