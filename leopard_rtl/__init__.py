"""LeOPArd RTL: an Amaranth generator for the LeOPArd attention accelerator (ISCA 2022).

Importing this package loads no Amaranth: the configuration is plain Python so that the
golden model in ``sim/`` stays independent. Hardware components live in submodules.
"""

from .config import PRESETS, ConfigError, LeopardConfig, preset

__version__ = "0.1.0"

__all__ = ["LeopardConfig", "PRESETS", "preset", "ConfigError", "__version__"]
