"""Course-wide settings: quick mode shrinks sizes and iteration counts (it never skips work)."""

import os


def quick_mode() -> bool:
    """True when ``DIDLEARN_QUICK`` is set to anything but ``""`` or ``"0"`` (the tests set it)."""
    return os.environ.get("DIDLEARN_QUICK", "") not in ("", "0")


def pick(full, quick):
    """Return ``quick`` in quick mode and ``full`` otherwise, e.g. ``steps = pick(500, 20)``."""
    return quick if quick_mode() else full
