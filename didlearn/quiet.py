"""TensorFlow without its start-up noise: the C++ log lines it prints when it is imported.

TensorFlow 2.21 logs through absl before ``TF_CPP_MIN_LOG_LEVEL`` takes effect ("All log
messages before absl::InitializeLog()", "Could not find cuda drivers", a cuInit "CUDA error" on a
machine without a GPU). They are not failures, but in a notebook cell or a terminal they look like
ones. ``import didlearn`` installs :class:`QuietTensorFlowFinder`: whoever imports TensorFlow
next (a didlearn module, or the learner's own ``import tensorflow``) gets it with those lines
held back, shown only if the import fails. ``DIDLEARN_TF_LOGS=1`` keeps TensorFlow's own logging.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import IO, Any

#: Set (to anything) to keep TensorFlow's own start-up logging.
KEEP_LOGS = "DIDLEARN_TF_LOGS"
#: What TensorFlow's C++ code logs: "W0000 00:00:1.2 123 file.cc:45] ..." lines, absl's note.
TENSORFLOW_LOG_LINE = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+\.cc:\d+\]|absl::InitializeLog"
)


def tensorflow_log_lines(text: str) -> list[str]:
    """The lines of ``text`` that are TensorFlow's C++ log lines (what this module holds back)."""
    return [line for line in text.splitlines() if TENSORFLOW_LOG_LINE.search(line)]


@contextmanager
def native_stderr_to(sink: IO[Any]) -> Iterator[None]:
    """Send file descriptor 2 (where C++ libraries log) to ``sink`` for the duration."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(sink.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def held_back_logs(keep: Callable[[str], bool] | None = None) -> Iterator[None]:
    """Hold back what C++ code logs in the block; show it all if the block fails, and on
    success only the lines ``keep`` accepts (none without it)."""
    with tempfile.TemporaryFile(mode="w+") as sink:
        try:
            with native_stderr_to(sink):
                yield
        except BaseException:
            sink.seek(0)
            sys.stderr.write(sink.read())
            raise
        if keep is not None:
            sink.seek(0)
            sys.stderr.write("".join(line for line in sink if keep(line)))


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run with its start-up logs held back."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with held_back_logs():
            self.loader.exec_module(module)
            # device initialisation (cuInit) logs here; not in a cluster (TF_CONFIG), whose
            # collective operations must be configured before the devices start
            if not os.environ.get("TF_CONFIG"):
                module.config.list_logical_devices()


class QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual and loads it with its start-up logs held back (once)."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one import; and the real finders must not find us again
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


#: A graph-optimizer (grappler) pass that gave up: TensorFlow runs the graph unoptimized by that
#: pass and says so at ERROR level, e.g. "remapper failed: INVALID_ARGUMENT: Mutation::Apply
#: error" on the train step's gradient graph. Nothing is wrong with the result.
OPTIMIZER_GAVE_UP = re.compile(r"meta_optimizer\.cc:\d+\] \w+ failed: ")


@contextmanager
def optimizer_notes_held_back() -> Iterator[None]:
    """Run a block that traces and optimizes a graph (a ``tf.function``'s first call), dropping
    the graph optimizer's "pass failed" lines (:data:`OPTIMIZER_GAVE_UP`) and passing on every
    other line it logs; everything if the block fails, or with ``DIDLEARN_TF_LOGS`` set."""
    if os.environ.get(KEEP_LOGS):
        yield
        return
    with held_back_logs(keep=lambda line: not OPTIMIZER_GAVE_UP.search(line)):
        yield


def install() -> None:
    """Quiet the next import of TensorFlow (nothing to do if it is imported already, or if
    ``DIDLEARN_TF_LOGS`` is set)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # later INFO and WARNING lines too
    if os.environ.get(KEEP_LOGS) or "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, QuietTensorFlowFinder())
