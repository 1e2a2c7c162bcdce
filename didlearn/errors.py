"""Errors a user can cause. Each message says what was wrong and what to do.

The command line catches :class:`DidlearnError` and prints its message on one line.
"""


class DidlearnError(Exception):
    """Base class of every error caused by user input or a missing resource."""


class UnreadableMediaError(DidlearnError):
    """An image or video file is missing, empty, truncated or not in a supported format."""


class ImageTooLargeError(DidlearnError):
    """An image has more pixels than the configured limit."""


class OutputExistsError(DidlearnError):
    """An output file exists already and overwriting was not asked for."""


class MissingResourceError(DidlearnError):
    """A bundled sample or weights file is not installed (the message names the package)."""


class NoFaceFoundError(DidlearnError):
    """No face was found in an image."""


class InvalidFlowError(DidlearnError, ValueError):
    """A flow field or flow file is malformed (wrong shape, NaN, corrupt .flo)."""


class UsageError(DidlearnError, ValueError):
    """Options that do not go together (the message says which to change)."""


class InvalidMotionFileError(DidlearnError, ValueError):
    """A motion file (``.npz``) is missing, damaged, another program's, or of a newer version."""
