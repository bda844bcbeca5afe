"""What the subcommands share: the ``--preset/--set/--unit/--pdk`` arguments and the
configuration they select; argument types that refuse nonsense at parse time
(:func:`positive_float`, :func:`positive_int`, :func:`nonneg_int`); and the checks of
output paths every command runs before any work (:func:`check_out_file`,
:func:`check_out_dir`)."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
from pathlib import Path

from ..config import PRESETS, ConfigError, LeopardConfig, preset
from ..emit import UNITS
from ..errors import UserError
from ..flow.pdk import PDK_NAMES

__all__ = ["add_config_args", "add_unit_arg", "add_pdk_arg", "config_from_args",
           "config_from_file",
           "config_key", "positive_float", "positive_int", "nonneg_int", "check_out_file",
           "check_out_dir"]


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        val = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {text!r}") from None
    if not math.isfinite(val) or val <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, not {text!r}")
    return val


def _int(text: str, lo: int, what: str) -> int:
    try:
        val = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer {what}, not {text!r}") from None
    if val < lo:
        raise argparse.ArgumentTypeError(f"must be an integer {what}, not {text!r}")
    return val


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int(text, 1, ">= 1")


def nonneg_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int(text, 0, ">= 0")


def _file_above(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` if it is not a folder."""
    for parent in path.absolute().parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_out_file(path: str | os.PathLike[str], option: str, suffix: str | None = None,
                   inputs: tuple[str | os.PathLike[str] | None, ...] = ()) -> Path:
    """Refuse an output file that cannot be written, before any work is done.

    Raises :class:`UserError` (naming ``option`` and the path) if ``path`` lacks
    ``suffix``, is a folder, lies under a file, or is one of ``inputs``.
    """
    p = Path(path)
    if suffix and p.suffix != suffix:
        raise UserError(f"{p}: {option} must end in {suffix}")
    if p.is_dir():
        raise UserError(f"{p}: {option} is a folder, not a file")
    above = _file_above(p)
    if above is not None:
        raise UserError(f"{p}: {option} lies under {above}, which is a file")
    for src in inputs:
        if src is not None and Path(src).exists() and p.exists() and p.samefile(src):
            raise UserError(f"{p}: {option} is the input file {src}; refusing to overwrite it")
    return p


def check_out_dir(path: str | os.PathLike[str], option: str) -> Path:
    """Refuse an output folder that is a file or lies under one (:class:`UserError`)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{p}: {option} is a file, not a folder")
    above = _file_above(p)
    if above is not None:
        raise UserError(f"{p}: {option} lies under {above}, which is a file")
    return p


def config_key(cfg: LeopardConfig) -> str:
    """A short hash of every parameter of ``cfg``: tells ``--set`` variants of a preset
    apart (default build folders)."""
    text = json.dumps(cfg.to_dict(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def add_config_args(p: argparse.ArgumentParser, default: str = "paper") -> None:
    """``--preset`` (one of :data:`leopard_rtl.config.PRESETS`) and repeatable ``--set``."""
    p.add_argument("--preset", default=default, metavar="NAME",
                   help=f"configuration preset: {', '.join(PRESETS)} (default: {default})")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a configuration parameter (repeatable)")
    p.add_argument("--config", default=None, metavar="MANIFEST",
                   help="rebuild a recorded configuration: a build's manifest.json (its "
                        "\"config\") or a JSON object of parameters; replaces --preset, "
                        "--set still applies")


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


def config_from_file(path: str | os.PathLike[str]) -> LeopardConfig:
    """The configuration recorded in ``path``: a build's ``manifest.json`` (its ``config``)
    or a JSON object of parameters (:meth:`LeopardConfig.to_dict`'s form)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"{p}: --config: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{p}: --config: not a JSON file ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise UserError(f"{p}: --config: expected a manifest.json or a JSON object of "
                        f"parameters")
    try:
        return LeopardConfig.from_dict(data)
    except (ConfigError, TypeError) as exc:
        raise UserError(f"{p}: --config: {exc}") from None


def config_from_args(args: argparse.Namespace) -> LeopardConfig:
    """The configuration of ``--config`` (else the preset named by ``--preset``) with every
    ``--set`` applied."""
    path = getattr(args, "config", None)
    cfg = config_from_file(path) if path else preset(args.preset)
    if getattr(args, "set", None):
        cfg = cfg.with_overrides(args.set)
    return cfg
