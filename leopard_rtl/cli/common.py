"""What the subcommands share: the ``--preset/--set/--unit/--pdk`` arguments and the
configuration they select."""

from __future__ import annotations

import argparse

from ..config import PRESETS, LeopardConfig, preset
from ..emit import UNITS
from ..flow.pdk import PDK_NAMES

__all__ = ["add_config_args", "add_unit_arg", "add_pdk_arg", "config_from_args"]


def add_config_args(p: argparse.ArgumentParser, default: str = "paper") -> None:
    """``--preset`` (one of :data:`leopard_rtl.config.PRESETS`) and repeatable ``--set``."""
    p.add_argument("--preset", default=default, metavar="NAME",
                   help=f"configuration preset: {', '.join(PRESETS)} (default: {default})")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a configuration parameter (repeatable)")


def add_unit_arg(p: argparse.ArgumentParser, default: str | None = "core",
                 help_default: str | None = None) -> None:
    """``--unit`` (one of :data:`leopard_rtl.emit.UNITS`)."""
    p.add_argument("--unit", default=default, choices=tuple(UNITS),
                   help=f"top level (default: {help_default or default})")


def add_pdk_arg(p: argparse.ArgumentParser, default: str | None,
                multiple: bool = False) -> None:
    """``--pdk`` (one of the platform table's libraries)."""
    if multiple:
        p.add_argument("--pdk", action="append", default=[], choices=PDK_NAMES,
                       help="libraries (default: all; repeatable)")
    else:
        p.add_argument("--pdk", default=default, choices=PDK_NAMES,
                       help=f"standard-cell library (default: {default})")


def config_from_args(args: argparse.Namespace) -> LeopardConfig:
    """The preset named by ``--preset`` with every ``--set`` applied."""
    cfg = preset(args.preset)
    if getattr(args, "set", None):
        cfg = cfg.with_overrides(args.set)
    return cfg
