"""didlearn: photo animation, taught and done step by step.

Modules follow the course chapters: ``data`` (0), ``features`` (1), ``flow`` (2),
``faces`` and ``motion`` (3), ``generator`` (4), ``optimize`` (5), ``animate``, ``composite``,
``metrics`` and ``protocol`` (6).
Import them directly, e.g. ``from didlearn import flow``; importing the package itself is cheap.
It holds back TensorFlow's C++ start-up log lines (:mod:`didlearn.quiet`; ``DIDLEARN_TF_LOGS=1``
keeps them).
"""

from . import quiet
from .config import quick_mode
from .errors import (
    DidlearnError,
    ImageTooLargeError,
    InvalidFlowError,
    MissingResourceError,
    NoFaceFoundError,
    OutputExistsError,
    UnreadableMediaError,
    UsageError,
)

__version__ = "0.1.0"

quiet.install()  # before any module imports TensorFlow

__all__ = [
    "DidlearnError",
    "ImageTooLargeError",
    "InvalidFlowError",
    "MissingResourceError",
    "NoFaceFoundError",
    "OutputExistsError",
    "UnreadableMediaError",
    "UsageError",
    "quick_mode",
    "__version__",
]
