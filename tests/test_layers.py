"""The package's layers import only downward, and no module imports itself back in a circle.

Layers, lowest first: ``leopard_rtl.errors``, ``leopard_rtl.progress``, ``leopard_rtl.paths``,
``leopard_rtl.config``, ``sim`` (golden and cycle models), ``leopard_rtl.hw`` (Amaranth
only), ``leopard_rtl.emit``, ``leopard_rtl.tb`` (everything that drives emitted Verilog),
``leopard_rtl.flow``, ``leopard_rtl.eval``, ``leopard_rtl.cli``. Every import in every
module is read from its source (function-level imports included), so a lazy import cannot
hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT

LAYERS = ["leopard_rtl.errors", "leopard_rtl.progress", "leopard_rtl.paths",
          "leopard_rtl.config", "sim", "leopard_rtl.hw", "leopard_rtl.emit", "leopard_rtl.tb",
          "leopard_rtl.flow", "leopard_rtl.eval", "leopard_rtl.cli"]
PACKAGES = ("leopard_rtl", "sim", "learn")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            out[_module_name(p)] = p
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Absolute names of the project modules that ``name`` imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[:len(base) - node.level + 1]
                mod = ".".join(parent + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)   # "from . import layouts"
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _layer(mod: str) -> int | None:
    best = None
    for i, prefix in enumerate(LAYERS):
        if mod == prefix or mod.startswith(prefix + "."):
            best = i
    return best


def test_every_import_points_down() -> None:
    mods = _modules()
    bad = []
    for name, path in mods.items():
        mine = _layer(name)
        if mine is None:
            continue
        for imp in _imports(name, path):
            theirs = _layer(imp)
            if theirs is not None and theirs > mine:
                bad.append(f"{name} ({LAYERS[mine]}) imports {imp} ({LAYERS[theirs]})")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_no_import_circle() -> None:
    mods = _modules()
    graph = {n: {m for m in _imports(n, p) if m in mods and m != n} for n, p in mods.items()}
    # a package's __init__ importing its own submodules is not a circle of two modules
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for m in sorted(graph[n]):
            if n.startswith(m + ".") or m.startswith(n + "."):
                continue
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m, stack + [m])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_hw_is_amaranth_only() -> None:
    """``leopard_rtl.hw`` imports Amaranth, the configuration and the golden model's exp
    table only: no simulator, flow or file handling."""
    allowed = ("amaranth", "leopard_rtl", "sim", "__future__", "typing", "collections",
               "dataclasses", "math", "functools", "itertools")
    for p in sorted((ROOT / "leopard_rtl" / "hw").glob("*.py")):
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            for n in names:
                assert n.split(".")[0] in allowed, f"{p.relative_to(ROOT)} imports {n}"


def test_the_layer_check_can_fail(tmp_path: Path) -> None:
    """The checker sees an upward import (a function-level one) when there is one."""
    src = tmp_path / "x.py"
    src.write_text("def f():\n    from ..cli import main\n")
    assert _imports("leopard_rtl.hw.x", src) >= {"leopard_rtl.cli", "leopard_rtl.cli.main"}
    assert _layer("leopard_rtl.cli.main") > _layer("leopard_rtl.hw.x")
