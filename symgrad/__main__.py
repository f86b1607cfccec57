"""``python -m symgrad``: the command line (see :mod:`symgrad.cli`)."""

import sys

from .cli import main

sys.exit(main())
