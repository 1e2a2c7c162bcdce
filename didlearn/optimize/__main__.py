"""``python -m didlearn.optimize``: the training command line (:mod:`didlearn.optimize.cli`)."""

import sys

from .cli import main

sys.exit(main())
