"""The public API of ``leopard_rtl``: every exported name resolves, and importing the package
loads no Amaranth (the configuration and the golden model need none)."""

from __future__ import annotations

import subprocess
import sys

import leopard_rtl


def test_every_exported_name_resolves() -> None:
    for name in leopard_rtl.__all__:
        assert getattr(leopard_rtl, name) is not None, name
    assert set(leopard_rtl._LAZY) <= set(dir(leopard_rtl))


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        leopard_rtl.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("leopard_rtl.NoSuchThing resolved")


def test_import_loads_no_amaranth() -> None:
    code = ("import sys, leopard_rtl; cfg = leopard_rtl.preset('tiny'); "
            "print(cfg.score_bits, 'amaranth' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [str(leopard_rtl.preset("tiny").score_bits), "False"], out
