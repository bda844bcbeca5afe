"""Standard-cell libraries for synthesis, timing and power.

Four libraries are known by name:

========= =============================================== ====== ==========================
name      liberty (typical corner)                         time   where it comes from
========= =============================================== ====== ==========================
osu018    ``osu018_stdcells.lib`` (OSU 0.18 um, 1.8 V)      ns     Debian ``qflow`` package
sky130hd  ``sky130_fd_sc_hd__tt_025C_1v80.lib.gz``          ns     ``../shared/pdk/sky130hd``
nangate45 ``NangateOpenCellLibrary_typical.lib.gz``         ns     ``../shared/pdk/nangate45``
asap7     ``asap7sc7p5t_{AO,INVBUF,OA,SEQ,SIMPLE}_RVT_TT``  ps     ``../shared/pdk/asap7``
========= =============================================== ====== ==========================

``../shared/pdk`` is relative to the project root (override with ``LEOPARD_PDK_ROOT``). A
user can point at other copies with explicit ``--liberty``/``--lef`` files or with
``--platform-dir`` (an OpenROAD-flow-scripts ``flow/platforms/<name>`` folder or a
lambdapdk install): the files are then found by name below that folder. Compressed
liberty files are decompressed into the build folder (Yosys's liberty reader and this
OpenSTA both want plain text). The time unit is read from the liberty header, never
assumed, so a clock given in ns is converted once (:meth:`Pdk.to_lib_time`).
"""

from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..errors import LeopardError
from ..paths import project_root

__all__ = ["PDKS", "PDK_NAMES", "Pdk", "PdkError", "PdkSpec", "resolve_pdk", "pdk_root",
           "liberty_units"]

ROOT = project_root()


class PdkError(LeopardError):
    """A library that cannot be found or read; the message names what is missing."""


@dataclass(frozen=True)
class PdkSpec:
    """What the flow knows about a named library before looking on disk."""

    name: str
    #: liberty file names (glob patterns), all given to ABC; the first matching ``seq``
    #: is given to dfflibmap.
    liberty: tuple[str, ...]
    #: pattern of the liberty holding the flip-flops (dfflibmap)
    seq: str
    #: cell LEF and tech LEF patterns (for layout and ORFS only)
    lef: tuple[str, ...]
    tech_lef: str | None
    #: default clock period in ns for synthesis/STA reports
    clock_ns: float
    #: folder under the shared PDK root, or an absolute folder (osu018)
    folder: str
    #: the platform's unit of time in ORFS SDC files
    time_unit: str
    #: cells to keep out of mapping (Yosys ``dont_use``)
    dont_use: tuple[str, ...] = ()
    note: str = ""
    #: SRAM macro area estimate: ``bitcell_um2`` and ``efficiency`` (docs/ENERGY.md)
    sram: dict[str, float] = field(default_factory=dict)
    #: OpenROAD-flow-scripts knobs of the hand-off (empty: not an ORFS platform)
    orfs: dict[str, Any] = field(default_factory=dict)


def _load_specs() -> dict[str, PdkSpec]:
    table = json.loads((files("leopard_rtl.constraints") / "platforms.json").read_text())
    return {name: PdkSpec(name=name, liberty=tuple(p["liberty"]), seq=p["seq"],
                          lef=tuple(p["lef"]), tech_lef=p["tech_lef"], clock_ns=p["clock_ns"],
                          folder=p["folder"], time_unit=p["time_unit"],
                          dont_use=tuple(p["dont_use"]), note=p["note"],
                          sram=dict(p["sram"]), orfs=dict(p.get("orfs", {})))
            for name, p in table["platforms"].items()}


#: The known libraries, from the one platform table ``constraints/platforms.json``.
PDKS: dict[str, PdkSpec] = _load_specs()
#: Their names, in table order (command-line choices, QoR columns).
PDK_NAMES: tuple[str, ...] = tuple(PDKS)


def pdk_root() -> Path:
    """The shared PDK folder: ``$LEOPARD_PDK_ROOT`` or ``<project>/../shared/pdk``."""
    env = os.environ.get("LEOPARD_PDK_ROOT")
    if env:
        return Path(env)
    # A checkout: beside the project. An installed package: beside the working directory.
    for cand in (ROOT.parent / "shared" / "pdk", Path.cwd().parent / "shared" / "pdk"):
        if cand.is_dir():
            return cand
    return ROOT.parent / "shared" / "pdk"


@dataclass
class Pdk:
    """A resolved library: plain-text liberty files on disk and their units."""

    name: str
    liberty: list[Path]
    seq_liberty: Path
    lef: list[Path] = field(default_factory=list)
    tech_lef: Path | None = None
    clock_ns: float = 10.0
    #: liberty time unit in ns (1.0 for "1ns", 0.001 for "1ps")
    time_unit_ns: float = 1.0
    #: liberty leakage-power unit in W
    leakage_unit_w: float = 1e-9
    voltage: float = 0.0
    dont_use: tuple[str, ...] = ()
    source: str = ""

    def to_lib_time(self, ns: float) -> float:
        """A time in ns expressed in the liberty's unit (the unit STA and ABC use)."""
        return ns / self.time_unit_ns

    def from_lib_time(self, t: float) -> float:
        """A time in the liberty's unit, in ns."""
        return t * self.time_unit_ns

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "liberty": [str(p) for p in self.liberty],
                "lef": [str(p) for p in self.lef],
                "tech_lef": str(self.tech_lef) if self.tech_lef else None,
                "time_unit_ns": self.time_unit_ns, "voltage": self.voltage,
                "source": self.source}


_UNIT = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0, "ps": 1e-3, "fs": 1e-6}
_PUNIT = {"W": 1.0, "mW": 1e-3, "uW": 1e-6, "nW": 1e-9, "pW": 1e-12, "fW": 1e-15}


def liberty_units(path: Path) -> tuple[float, float, float]:
    """(time unit in ns, leakage unit in W, nominal voltage) from a liberty header."""
    head = path.read_text(errors="replace")[:20000]
    m = re.search(r'time_unit\s*:\s*"?\s*(\d+(?:\.\d+)?)\s*([munpf]?s)"?', head)
    if not m:
        raise PdkError(f"{path}: no time_unit in the liberty header")
    tu = float(m.group(1)) * _UNIT[m.group(2)]
    m = re.search(r'leakage_power_unit\s*:\s*"?\s*(\d+(?:\.\d+)?)\s*([munpf]?W)"?', head)
    lu = float(m.group(1)) * _PUNIT[m.group(2)] if m else 1e-9
    m = re.search(r"nom_voltage\s*:\s*([\d.]+)", head)
    volt = float(m.group(1)) if m else 0.0
    return tu, lu, volt


def _find(folder: Path, pattern: str, recursive: bool) -> Path | None:
    hits = sorted(folder.rglob(pattern) if recursive else folder.glob(pattern))
    hits = [h for h in hits if h.is_file()]
    # Prefer an uncompressed copy when both exist.
    hits.sort(key=lambda p: p.suffix == ".gz")
    return hits[0] if hits else None


def _plain(path: Path, cache: Path) -> Path:
    """``path`` itself, or a decompressed copy of a ``.gz`` under ``cache``."""
    if path.suffix != ".gz":
        return path
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / path.name[:-3]
    if not out.is_file() or out.stat().st_mtime < path.stat().st_mtime:
        # a name of its own per process: runs sharing the cache (parallel tests) may
        # expand the same library at once, and each renames a whole file into place
        tmp = out.with_suffix(f"{out.suffix}.tmp{os.getpid()}")
        with gzip.open(path, "rb") as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        tmp.replace(out)
    return out


def resolve_pdk(name: str, cache_dir: Path, *, liberty: list[str] | None = None,
                lef: list[str] | None = None, platform_dir: str | None = None) -> Pdk:
    """Find the files of library ``name`` and return them ready for the tools.

    Parameters
    ----------
    name : str
        One of :data:`PDKS`.
    cache_dir : Path
        Where compressed liberty files are expanded.
    liberty, lef : list of str, optional
        Explicit files (override the search; all liberty files go to ABC, the one with
        flip-flops is found by name or is the first).
    platform_dir : str, optional
        Folder searched recursively for the library's files (an ORFS platform folder).

    Raises
    ------
    PdkError
        Unknown name, or a missing file (the message names the file and where it looked).
    """
    if name not in PDKS:
        raise PdkError(f"unknown PDK {name!r}; known: {', '.join(PDKS)}")
    spec = PDKS[name]
    if liberty:
        libs = [Path(p) for p in liberty]
        for p in libs:
            if not p.is_file():
                raise PdkError(f"--liberty {p}: no such file")
        seq = next((p for p in libs if re.fullmatch(spec.seq.replace("*", ".*"), p.name)),
                   libs[0])
        source = "--liberty"
        folder = libs[0].parent
        recursive = False
    else:
        if platform_dir:
            folder = Path(platform_dir)
            recursive = True
            source = f"--platform-dir {folder}"
        elif spec.folder.startswith("/"):
            folder = Path(spec.folder)
            recursive = False
            source = str(folder)
        else:
            folder = pdk_root() / spec.folder
            recursive = False
            source = str(folder)
        if not folder.is_dir():
            hint = ("install Debian's qflow (apt-get install qflow)" if name == "osu018" else
                    "put the shared PDK folder at ../shared/pdk (or set LEOPARD_PDK_ROOT), "
                    "or give --liberty/--lef or --platform-dir")
            raise PdkError(f"PDK {name}: folder {folder} does not exist; {hint}")
        libs = []
        for pat in spec.liberty:
            hit = _find(folder, pat, recursive)
            if hit is None:
                raise PdkError(f"PDK {name}: liberty file {pat} not found in {folder}; "
                               "give --liberty FILE or --platform-dir DIR")
            libs.append(hit)
        seq = _find(folder, spec.seq, recursive) or libs[0]
    lefs: list[Path] = []
    tech: Path | None = None
    if lef:
        lefs = [Path(p) for p in lef]
        for p in lefs:
            if not p.is_file():
                raise PdkError(f"--lef {p}: no such file")
    else:
        for pat in spec.lef:
            hit = _find(folder, pat, recursive)
            if hit is not None:
                lefs.append(hit)
        if spec.tech_lef:
            tech = _find(folder, spec.tech_lef, recursive)
    plain = [_plain(p, cache_dir / "lib") for p in libs]
    seq_plain = _plain(seq, cache_dir / "lib")
    tu, lu, volt = liberty_units(seq_plain)
    return Pdk(name=name, liberty=plain, seq_liberty=seq_plain, lef=lefs, tech_lef=tech,
               clock_ns=spec.clock_ns, time_unit_ns=tu, leakage_unit_w=lu, voltage=volt,
               dont_use=spec.dont_use, source=source)
