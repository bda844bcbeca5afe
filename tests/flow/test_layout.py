"""The layout figure (leopard_rtl.flow.layout_png): cells coloured by block from the net
names, PNG and PDF, die size; a small DEF written here."""

from __future__ import annotations

from pathlib import Path

from leopard_rtl.flow.layout_png import cell_blocks, render_def

LEF = """MACRO INVX1
  SIZE 1.6 BY 10 ;
END INVX1
MACRO FILL
  SIZE 0.8 BY 10 ;
END FILL
"""

DEF = """VERSION 5.6 ;
DESIGN toy ;
UNITS DISTANCE MICRONS 100 ;
DIEAREA ( 0 0 ) ( 4000 2000 ) ;
COMPONENTS 5 ;
- a INVX1 + PLACED ( 100 100 ) N ;
- b INVX1 + PLACED ( 400 100 ) N ;
- c INVX1 + PLACED ( 700 100 ) N ;
- d INVX1 + PLACED ( 100 1100 ) N ;
- f1 FILL + PLACED ( 900 100 ) N ;
END COMPONENTS
NETS 3 ;
- \\\\lanes.acc[0]
  ( a Y ) ( b A )
  + ROUTED metal1 ( 100 100 ) ( 400 * )
  NEW metal2 ( 400 100 ) ( * 600 ) ;
- _12_
  ( b Y ) ( c A ) ;
- \\\\kbuf.word[1]
  ( d Y ) ( PIN x )
  + ROUTED metal2 ( 100 1100 ) ( 900 * ) ;
END NETS
END DESIGN
"""


def test_cell_blocks_from_net_names() -> None:
    nets = [("\\\\lanes.acc[0]", ["a", "b"]), ("_12_", ["b", "c"]), ("\\\\kbuf.w", ["d"]),
            ("_9_", ["e"])]
    got = cell_blocks(["a", "b", "c", "d", "e"], nets)
    assert got == {"a": "lanes", "b": "lanes", "c": "lanes", "d": "kbuf", "e": "glue"}


def test_render_def_png_pdf(tmp_path: Path) -> None:
    (tmp_path / "c.lef").write_text(LEF)
    (tmp_path / "t.def").write_text(DEF)
    png = tmp_path / "layout.png"
    st = render_def(tmp_path / "t.def", [tmp_path / "c.lef"], png, max_px=400)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    assert (st["die_width_um"], st["die_height_um"]) == (40.0, 20.0)
    assert st["cells"] == 4 and st["cell_area_um2"] == 4 * 16.0
    assert st["blocks"] == {"kbuf": 1, "lanes": 3, "glue": 0}
    assert st["wire_segments"] == 3 and st["layers"] == 2
    assert max(st["png_width"], st["png_height"]) == 400
