"""A picture of a placed-and-routed DEF, written as PNG with numpy and zlib only.

Cells (from ``COMPONENTS`` and the LEF ``SIZE`` of their macro) are drawn as grey boxes
(fill cells lighter), routed wires (``NETS``/``SPECIALNETS`` ``ROUTED`` segments) as lines
coloured by metal layer, and the die outline in black. The image is at most ``max_px``
pixels on its long side.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_lef_sizes", "render_def", "write_png"]

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


def render_def(def_path: Path, lef_paths: list[Path], png_path: Path,
               max_px: int = 1200) -> dict[str, float]:
    """Draw ``def_path`` into ``png_path``; returns die size and counts."""
    text = Path(def_path).read_text(errors="replace")
    dbu = float(re.search(r"UNITS\s+DISTANCE\s+MICRONS\s+(\d+)", text).group(1))
    d = re.search(r"DIEAREA\s*\(\s*(-?\d+)\s+(-?\d+)\s*\)\s*\(\s*(-?\d+)\s+(-?\d+)\s*\)", text)
    x0, y0, x1, y1 = (int(v) for v in d.groups())
    scale = max_px / max(x1 - x0, y1 - y0)
    w, h = max(1, int((x1 - x0) * scale) + 1), max(1, int((y1 - y0) * scale) + 1)
    img = np.full((h, w, 3), 255, dtype=np.uint8)
    sizes = read_lef_sizes(lef_paths)

    def px(x: float, y: float) -> tuple[int, int]:
        return (min(w - 1, max(0, int((x - x0) * scale))),
                min(h - 1, max(0, int((y1 - y) * scale))))

    comps = re.search(r"^COMPONENTS.*?^END COMPONENTS", text, re.M | re.S)
    n_cells = 0
    cell_area = 0.0
    if comps:
        for m in re.finditer(r"-\s+(\S+)\s+(\S+).*?(?:PLACED|FIXED)\s*\(\s*(-?\d+)\s+(-?\d+)"
                             r"\s*\)\s*(\w+)", comps.group(0), re.S):
            macro = m.group(2)
            cw, ch = sizes.get(macro, (0.0, 0.0))
            if m.group(5) in ("E", "W", "FE", "FW"):
                cw, ch = ch, cw
            cx, cy = int(m.group(3)), int(m.group(4))
            ax, ay = px(cx, cy + ch * dbu)
            bx, by = px(cx + cw * dbu, cy)
            fill = macro.upper().startswith("FILL")
            img[ay:by + 1, ax:bx + 1] = (235, 235, 235) if fill else (170, 170, 170)
            if not fill:
                n_cells += 1
                cell_area += cw * ch
                img[ay, ax:bx + 1] = img[by, ax:bx + 1] = (110, 110, 110)
                img[ay:by + 1, ax] = img[ay:by + 1, bx] = (110, 110, 110)
    layers: dict[str, int] = {}
    n_seg = 0
    for sect in re.finditer(r"^(SPECIALNETS|NETS).*?^END \1", text, re.M | re.S):
        for line in sect.group(0).splitlines():
            m = re.search(r"(?:ROUTED|NEW)\s+(\S+)", line)
            if not m:
                continue
            color = _LAYER_RGB[layers.setdefault(m.group(1), len(layers)) % len(_LAYER_RGB)]
            pts: list[tuple[int, int]] = []
            for pm in re.finditer(r"\(\s*([-\d*]+)\s+([-\d*]+)", line[m.end():]):
                x = pts[-1][0] if pm.group(1) == "*" else int(pm.group(1))
                y = pts[-1][1] if pm.group(2) == "*" else int(pm.group(2))
                pts.append((x, y))
            for (ax_, ay_), (bx_, by_) in zip(pts, pts[1:], strict=False):
                (pa, qa), (pb, qb) = px(ax_, ay_), px(bx_, by_)
                img[min(qa, qb):max(qa, qb) + 1, min(pa, pb):max(pa, pb) + 1] = color
                n_seg += 1
    img[0, :] = img[-1, :] = 0
    img[:, 0] = img[:, -1] = 0
    write_png(png_path, img)
    return {"die_width_um": (x1 - x0) / dbu, "die_height_um": (y1 - y0) / dbu,
            "die_area_um2": (x1 - x0) * (y1 - y0) / dbu ** 2, "cells": n_cells,
            "cell_area_um2": cell_area, "wire_segments": n_seg, "layers": len(layers),
            "png_width": w, "png_height": h}
