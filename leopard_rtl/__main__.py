"""``python -m leopard_rtl`` is ``leopard-rtl``."""

import sys

from .cli import main

sys.exit(main())
