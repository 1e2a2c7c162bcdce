"""Where a result came from: package versions and the git commit, saved next to weights and runs.

One home for both, so the shipped weights' JSON (``generator.save_models``) and a training run's
``config.json`` (``optimize.fit``) describe their origin the same way.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

#: The folder that holds the ``didlearn`` package: a checkout's root, or site-packages.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages the models depend on (``{"numpy": "2.4.6", ...}``)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from . import __version__

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "didlearn": __version__,
    }


def git_state(root: str | os.PathLike | None = None) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout at ``root`` (default: :data:`PROJECT_ROOT`);
    ``(None, None)`` when it is not one (an installed copy) or git cannot tell. ``dirty``: tracked
    files differ from the commit. Never raises."""
    root = Path(root) if root is not None else PROJECT_ROOT
    # only a checkout of the project itself: an installed copy may sit inside some other repo
    if not (root / ".git").exists():  # a file in a worktree, a folder in a clone
        return None, None
    try:
        git = ["git", "-C", str(root)]
        run = {"capture_output": True, "text": True, "timeout": 10}
        commit = subprocess.run([*git, "rev-parse", "HEAD"], **run)  # type: ignore[call-overload]
        status = subprocess.run(  # type: ignore[call-overload]
            [*git, "status", "--porcelain", "--untracked-files=no"], **run
        )
    except (OSError, subprocess.SubprocessError):  # no git, a hung file system
        return None, None
    if commit.returncode != 0 or not commit.stdout.strip():
        return None, None
    return commit.stdout.strip(), bool(status.stdout.strip()) if status.returncode == 0 else None
