"""The DUT side of a generated Verilog testbench, from the build's ``manifest.json``.

A testbench declares one ``reg`` per DUT input and one ``wire`` per DUT output, named as
the port, with the port's width, and instantiates the DUT with every port connected
(:func:`dut_declarations`). Nothing about the DUT's ports is written by hand, so a port
that changes width or name changes the testbench with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["load_ports", "port_width", "dut_declarations"]


def load_ports(manifest: Path | str) -> list[dict[str, Any]]:
    """The port list of an emitted unit (``manifest.json``)."""
    return list(json.loads(Path(manifest).read_text())["ports"])


def port_width(ports: list[dict[str, Any]], name: str) -> int:
    """Width of port ``name``; a ``KeyError`` naming it if the DUT has no such port."""
    for p in ports:
        if p["name"] == name:
            return int(p["width"])
    raise KeyError(f"the DUT has no port {name!r}")


def _range(w: int) -> str:
    return f"[{w - 1}:0] " if w > 1 else ""


def dut_declarations(ports: list[dict[str, Any]], top: str, *,
                     init: dict[str, int] | None = None) -> str:
    """Verilog declarations of every DUT port (but ``clk`` and ``rst``, which the
    testbench drives itself) and the instance ``dut`` of ``top`` connected to them.

    Inputs are ``reg`` initialised to ``init[name]`` (default 0); outputs are ``wire``.
    """
    init = dict(init or {})
    names = {p["name"] for p in ports}
    unknown = sorted(set(init) - names)
    if unknown:
        raise KeyError(f"the DUT has no port(s) {', '.join(unknown)}")
    lines = [f"  // DUT ports of {top} (from manifest.json)"]
    for p in ports:
        if p["name"] in ("clk", "rst"):
            continue
        if p["dir"] == "in":
            lines.append(f"  reg  {_range(p['width'])}{p['name']} = {init.get(p['name'], 0)};")
        else:
            lines.append(f"  wire {_range(p['width'])}{p['name']};")
    conns = ", ".join(f".{p['name']}({p['name']})" for p in ports)
    lines.append(f"  {top} dut ({conns});")
    return "\n".join(lines) + "\n"
