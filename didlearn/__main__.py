"""``python -m didlearn``: the same command line as the ``didlearn`` script."""

import sys

from .cli import main

sys.exit(main())
