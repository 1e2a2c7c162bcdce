"""nbval runs every notebook; this hook also fails a cell whose output shows TensorFlow's C++
log lines (``import didlearn`` holds back its start-up ones: see :mod:`didlearn.quiet`)."""

import os

import pytest
from jupyter_client.manager import KernelManager

from didlearn.quiet import tensorflow_log_lines


def _start_kernel_as_jupyter_does(start):
    """ipykernel puts what C++ code writes to file descriptors 1 and 2 into the cells' outputs, as
    a learner sees it in JupyterLab, except when ``PYTEST_CURRENT_TEST`` is in its environment:
    nbval's kernels start without it, so the check below sees what a learner would."""

    def start_kernel(self, **kwargs):
        env = {k: v for k, v in kwargs.pop("env", os.environ).items() if k != "PYTEST_CURRENT_TEST"}
        return start(self, env=env, **kwargs)

    return start_kernel


KernelManager.start_kernel = _start_kernel_as_jupyter_does(KernelManager.start_kernel)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" or not report.passed:
        return
    streams = [
        o for o in getattr(item, "test_outputs", None) or [] if o.get("output_type") == "stream"
    ]
    noise = [line for o in streams for line in tensorflow_log_lines(o.get("text", ""))]
    if noise:
        report.outcome = "failed"
        report.longrepr = "TensorFlow log lines in the cell's output:\n" + "\n".join(noise[:10])
