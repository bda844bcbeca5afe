"""A figure of a placed-and-routed DEF: cells coloured by block, wires, legend, scale bar.

:func:`render_def` draws cells (from ``COMPONENTS`` and the LEF ``SIZE`` of their macro)
coloured by the design block they belong to, routed wires (``NETS``/``SPECIALNETS``
``ROUTED`` segments) as thin lines coloured by metal layer, the die outline, a scale bar
and the die size, with a legend, as PNG and PDF (matplotlib). A flattened netlist keeps
the hierarchy only in net names (``\\lanes.lane0.acc [3]``): a cell on such a net takes
that block, and the remaining cells take the block most of their neighbours on small nets
have (label propagation); cells no block reaches are "glue". :func:`write_png` is a
dependency-free PNG writer.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_lef_sizes", "render_def", "write_png", "cell_blocks"]

_LAYER_RGB = [(220, 50, 47), (38, 139, 210), (133, 153, 0), (211, 54, 130),
              (42, 161, 152), (181, 137, 0)]


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an ``(h, w, 3)`` uint8 array as an 8-bit RGB PNG."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    Path(path).write_bytes(png)


def read_lef_sizes(lef_paths: list[Path]) -> dict[str, tuple[float, float]]:
    """Macro name -> (width, height) in microns from LEF files."""
    sizes: dict[str, tuple[float, float]] = {}
    for p in lef_paths:
        text = Path(p).read_text(errors="replace")
        for m in re.finditer(r"^\s*MACRO\s+(\S+)(.*?)^\s*END\s+\1\b", text, re.M | re.S):
            s = re.search(r"SIZE\s+([\d.]+)\s+BY\s+([\d.]+)", m.group(2))
            if s:
                sizes[m.group(1)] = (float(s.group(1)), float(s.group(2)))
    return sizes


def _components(text: str, sizes: dict[str, tuple[float, float]], dbu: float
                ) -> list[tuple[str, str, float, float, float, float]]:
    """(instance, macro, x, y, width, height) of every placed component, in microns."""
    out = []
    comps = re.search(r"^COMPONENTS.*?^END COMPONENTS", text, re.M | re.S)
    if not comps:
        return out
    for m in re.finditer(r"-\s+(\S+)\s+(\S+).*?(?:PLACED|FIXED)\s*\(\s*(-?\d+)\s+(-?\d+)"
                         r"\s*\)\s*(\w+)", comps.group(0), re.S):
        cw, ch = sizes.get(m.group(2), (0.0, 0.0))
        if m.group(5) in ("E", "W", "FE", "FW"):
            cw, ch = ch, cw
        out.append((m.group(1), m.group(2), int(m.group(3)) / dbu, int(m.group(4)) / dbu,
                    cw, ch))
    return out


def _nets(text: str) -> list[tuple[str, list[str]]]:
    """(net name, instances on it) of every regular net."""
    sect = re.search(r"^NETS.*?^END NETS", text, re.M | re.S)
    if not sect:
        return []
    out = []
    for block in re.split(r"^-\s+", sect.group(0), flags=re.M)[1:]:
        name = block.split(None, 1)[0] if block.strip() else ""
        head = block.split("+", 1)[0]
        insts = [i for i in re.findall(r"\(\s*(\S+)\s+\S+\s*\)", head) if i != "PIN"]
        out.append((name, insts))
    return out


def cell_blocks(cells: list[str], nets: list[tuple[str, list[str]]],
                max_fanout: int = 16, rounds: int = 30) -> dict[str, str]:
    """Block of each cell: the first component of a hierarchical net name it touches, else
    the most common block among its neighbours on nets of at most ``max_fanout`` cells
    (repeated ``rounds`` times); ``"glue"`` for cells no block reaches."""
    votes: dict[str, dict[str, int]] = {c: {} for c in cells}
    for name, insts in nets:
        bare = name.lstrip("\\")
        if "." in bare:
            blk = bare.split(".", 1)[0]
            for i in insts:
                if i in votes:
                    votes[i][blk] = votes[i].get(blk, 0) + 1
    label = {c: max(v, key=v.get) for c, v in votes.items() if v}
    small = [[i for i in insts if i in votes] for _, insts in nets if len(insts) <= max_fanout]
    neigh: dict[str, list[str]] = {c: [] for c in cells}
    for insts in small:
        for i in insts:
            neigh[i].extend(j for j in insts if j != i)
    for _ in range(rounds):
        new = {}
        for c in cells:
            if c in label:
                continue
            count: dict[str, int] = {}
            for j in neigh[c]:
                if j in label:
                    count[label[j]] = count.get(label[j], 0) + 1
            if count:
                new[c] = max(sorted(count), key=count.get)
        if not new:
            break
        label.update(new)
    return {c: label.get(c, "glue") for c in cells}


def _scale_bar(length_um: float) -> float:
    """A round scale-bar length near a fifth of ``length_um``."""
    target = length_um / 5
    mag = 10 ** np.floor(np.log10(target))
    return float(max(m * mag for m in (1, 2, 5) if m * mag <= target))


def render_def(def_path: Path, lef_paths: list[Path], png_path: Path,
               max_px: int = 1600, title: str | None = None) -> dict[str, Any]:
    """Draw ``def_path`` into ``png_path`` and the PDF beside it (module docstring).

    Parameters
    ----------
    def_path : Path
        Routed DEF.
    lef_paths : list of Path
        LEF files with the cells' ``SIZE``.
    png_path : Path
        Output PNG; the PDF gets the same name with ``.pdf``.
    max_px : int
        Long side of the PNG in pixels.
    title : str, optional
        Figure title (default: the DEF's design name).

    Returns
    -------
    dict
        Die size and area, cells and their area, cells per block, wire segments, layers,
        the PNG's size.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection, PatchCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    text = Path(def_path).read_text(errors="replace")
    dbu = float(re.search(r"UNITS\s+DISTANCE\s+MICRONS\s+(\d+)", text).group(1))
    d = re.search(r"DIEAREA\s*\(\s*(-?\d+)\s+(-?\d+)\s*\)\s*\(\s*(-?\d+)\s+(-?\d+)\s*\)", text)
    x0, y0, x1, y1 = (int(v) / dbu for v in d.groups())
    design = re.search(r"^DESIGN\s+(\S+)", text, re.M)
    comps = _components(text, read_lef_sizes(lef_paths), dbu)
    logic = [c for c in comps if not c[1].upper().startswith("FILL")]
    blocks = cell_blocks([c[0] for c in logic], _nets(text))
    names = sorted({b for b in blocks.values() if b != "glue"})
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    colour = {b: cmap(i % cmap.N) for i, b in enumerate(names)}
    colour["glue"] = (0.55, 0.55, 0.55, 1.0)

    w_um, h_um = x1 - x0, y1 - y0
    long_in = 8.0
    fig_w, fig_h = (long_in, long_in * h_um / w_um) if w_um >= h_um else \
        (long_in * w_um / h_um, long_in)
    fig, ax = plt.subplots(figsize=(fig_w + 3.0, fig_h + 0.9))
    fill = [Rectangle((x, y), cw, ch) for _, m, x, y, cw, ch in comps
            if m.upper().startswith("FILL")]
    ax.add_collection(PatchCollection(fill, facecolor=(0.93, 0.93, 0.93), edgecolor="none"))
    rects = [Rectangle((x, y), cw, ch) for _, _, x, y, cw, ch in logic]
    ax.add_collection(PatchCollection(rects, facecolor=[colour[blocks[c[0]]] for c in logic],
                                      edgecolor="none", alpha=0.85))
    layers: dict[str, list[tuple[tuple[float, float], tuple[float, float]]]] = {}
    n_seg = 0
    for sect in re.finditer(r"^(SPECIALNETS|NETS).*?^END \1", text, re.M | re.S):
        for line in sect.group(0).splitlines():
            m = re.search(r"(?:ROUTED|NEW)\s+(\S+)", line)
            if not m:
                continue
            segs = layers.setdefault(m.group(1), [])
            pts: list[tuple[float, float]] = []
            for pm in re.finditer(r"\(\s*([-\d*]+)\s+([-\d*]+)", line[m.end():]):
                x = pts[-1][0] if pm.group(1) == "*" else int(pm.group(1)) / dbu
                y = pts[-1][1] if pm.group(2) == "*" else int(pm.group(2)) / dbu
                pts.append((x, y))
            segs.extend(zip(pts, pts[1:], strict=False))
            n_seg += max(0, len(pts) - 1)
    layer_rgb = {name: tuple(c / 255 for c in _LAYER_RGB[i % len(_LAYER_RGB)])
                 for i, name in enumerate(layers)}
    for name, segs in layers.items():
        ax.add_collection(LineCollection(segs, colors=[layer_rgb[name]], linewidths=0.25,
                                         alpha=0.35, rasterized=True))
    ax.add_patch(Rectangle((x0, y0), w_um, h_um, fill=False, edgecolor="k", lw=1.0))
    bar = _scale_bar(w_um)
    bx, by = x0 + 0.04 * w_um, y0 - 0.05 * h_um
    ax.plot([bx, bx + bar], [by, by], color="k", lw=2.5, solid_capstyle="butt")
    ax.text(bx + bar / 2, by - 0.015 * h_um, f"{bar:g} um", ha="center", va="top",
            fontsize=8)
    ax.set_xlim(x0 - 0.02 * w_um, x1 + 0.02 * w_um)
    ax.set_ylim(y0 - 0.1 * h_um, y1 + 0.02 * h_um)
    ax.set_aspect("equal")
    ax.axis("off")
    cell_area = sum(cw * ch for *_, cw, ch in logic)
    counts = {b: sum(1 for v in blocks.values() if v == b) for b in [*names, "glue"]}
    ax.set_title(f"{title or (design.group(1) if design else Path(def_path).stem)}: die "
                 f"{w_um:.0f} x {h_um:.0f} um = {w_um * h_um / 1e6:.3f} mm^2, "
                 f"{len(logic)} cells ({100 * cell_area / (w_um * h_um):.0f} % of the die)",
                 fontsize=9)
    handles = [Patch(facecolor=colour[b], label=f"{b} ({counts[b]} cells)")
               for b in [*names, "glue"] if counts[b]]
    handles.append(Patch(facecolor=(0.93, 0.93, 0.93), label="fill"))
    handles += [Line2D([], [], color=layer_rgb[n], lw=1.5, label=f"wires {n}") for n in layers]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
              frameon=False)
    fig.tight_layout()
    dpi = max_px / max(fig.get_size_inches())
    fig.savefig(png_path, dpi=dpi)
    fig.savefig(Path(png_path).with_suffix(".pdf"), dpi=200)
    px_w, px_h = (int(round(v * dpi)) for v in fig.get_size_inches())
    plt.close(fig)
    return {"die_width_um": w_um, "die_height_um": h_um, "die_area_um2": w_um * h_um,
            "cells": len(logic), "cell_area_um2": cell_area, "blocks": counts,
            "wire_segments": n_seg, "layers": len(layers), "png_width": px_w,
            "png_height": px_h}
