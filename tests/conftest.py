"""Shared test setup: quick mode, quiet TensorFlow, a headless matplotlib; shared fixtures."""

import os

import numpy as np
import pytest

os.environ.setdefault("DIDLEARN_QUICK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def outline_landmarks():
    """``make(centre, radius) -> (1, 68, 2)`` landmarks: the face outline (``motion.FACE_OUTLINE``)
    on a circle, the inner points at its centre."""
    from didlearn import motion

    def make(centre, radius) -> np.ndarray:
        kp = np.tile(np.asarray(centre, np.float32), (1, 68, 1))
        angles = np.linspace(0, 2 * np.pi, len(motion.FACE_OUTLINE), endpoint=False)
        kp[0, list(motion.FACE_OUTLINE)] = centre + radius * np.stack(
            [np.cos(angles), np.sin(angles)], -1
        )
        return kp

    return make


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected theirs
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each notebook runs once: one that ``test_browser.py`` runs in JupyterLab (which checks what
    nbval does) leaves nbval's run, unless the browser test cannot run here (it then skips)."""
    from browser_lab import missing

    in_browser = {
        item.callspec.params["ran"]
        for item in items
        if item.path.name == "test_browser.py" and hasattr(item, "callspec")
    }
    if not in_browser or missing():
        return
    twice = [i for i in items if i.path.suffix == ".ipynb" and i.path.name in in_browser]
    if twice:
        config.hook.pytest_deselected(items=twice)
        items[:] = [item for item in items if item not in twice]
