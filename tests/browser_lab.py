"""JupyterLab in headless Chromium, for ``test_browser.py``: what a learner's browser runs.

:func:`missing` says what is not installed (Chromium, Playwright), :class:`JupyterLab` runs a
server on a free loopback port with its own token and a throwaway root, config and runtime
folder, and :class:`Notebook` drives one notebook in a Playwright page: open it, run all cells,
read them back, find a cell's widget.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
#: Set to 1 (CI does) to fail instead of skipping when Chromium or Playwright is missing.
REQUIRE = "DIDLEARN_REQUIRE_BROWSER"
#: A Chromium of your own, when it is not where :func:`chromium` looks.
CHROMIUM = "DIDLEARN_CHROMIUM"
HOW_TO_INSTALL = (
    "install Chromium (Debian/Ubuntu: `apt-get install chromium`; macOS: `brew install --cask "
    f"chromium`; or set {CHROMIUM}=/path/to/chromium) and Playwright (`make install`: the dev "
    "extra); never `playwright install`, the test drives the system's Chromium"
)
# Debian's /usr/bin/chromium is a shell wrapper: the binary itself starts faster and cleaner.
_CHROMIUM_PATHS = (
    "/usr/lib/chromium/chromium",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
)
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# JupyterLab's settings for a test: no news pop-up over the widgets, no autosave of outputs,
# every cell in the page at once (by default cells are rendered as they scroll into view).
_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def chromium() -> str | None:
    """Path of a Chromium executable: ``$DIDLEARN_CHROMIUM``, Debian's, macOS's, or on PATH."""
    if os.environ.get(CHROMIUM):
        return os.environ[CHROMIUM]
    found = [p for p in _CHROMIUM_PATHS if Path(p).exists()]
    found += [p for p in map(shutil.which, _CHROMIUM_NAMES) if p]
    return found[0] if found else None


def missing() -> str | None:
    """Why the browser test cannot run here (what to install), or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"Playwright's Python package is not installed: {HOW_TO_INSTALL}"
    if chromium() is None:
        return f"no Chromium found: {HOW_TO_INSTALL}"
    return None


def plain(text: str) -> str:
    """``text`` without terminal colour codes (tracebacks carry them)."""
    return _ANSI.sub("", text)


class JupyterLab:
    """A JupyterLab server for one test module, touching nothing in ``$HOME``.

    ``folder`` gets ``root/`` (copies of the notebooks: running them in the browser must not
    write outputs or checkpoints into the repository) beside ``benchmarks/`` (a link: chapter 6
    reads ``../benchmarks/results``) and the server's own config, data, runtime and IPython
    folders. The kernels get ``DIDLEARN_QUICK=1`` and matplotlib's default backend, as in a
    learner's JupyterLab (``make test`` sets ``MPLBACKEND=Agg``, under which nothing is drawn).
    """

    def __init__(self, folder: Path, start_timeout: float = 120.0) -> None:
        self.token = secrets.token_hex(16)
        self.log_path = folder / "server.log"
        notebooks = folder / "root" / "notebooks"
        notebooks.mkdir(parents=True)
        for path in NOTEBOOKS.glob("*.ipynb"):
            shutil.copy(path, notebooks / path.name)
        (folder / "root" / "benchmarks").symlink_to(REPO / "benchmarks")
        env = self._environment(folder)
        runtime = Path(env["JUPYTER_RUNTIME_DIR"])
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                self._command(folder), env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.url = self._wait_for_url(runtime, start_timeout)

    @staticmethod
    def _environment(folder: Path) -> dict[str, str]:
        dropped = ("MPLBACKEND", "PYTEST_CURRENT_TEST")  # see notebooks/conftest.py for the latter
        env = {k: v for k, v in os.environ.items() if k not in dropped}
        env["DIDLEARN_QUICK"] = "1"
        for name, sub in [
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("IPYTHONDIR", "ipython"),
        ]:
            env[name] = str(folder / sub)
        settings = folder / "config" / "lab" / "user-settings"
        for plugin, values in _SETTINGS.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        return env

    def _command(self, folder: Path) -> list[str]:
        return [
            *(sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root"),
            *("--ip=127.0.0.1", "--port=0", f"--IdentityProvider.token={self.token}"),
            f"--ServerApp.root_dir={folder / 'root'}",
            "--ServerApp.terminals_enabled=False",
            # The page reads the notebook's model and kernel through window.jupyterapp.
            "--LabApp.expose_app_in_browser=True",
            # No request leaves the machine: no news feed, no extension manager looking at PyPI.
            "--LabApp.news_url=None",
            "--LabApp.extension_manager=readonly",
            f"--LabApp.user_settings_dir={folder / 'config' / 'lab' / 'user-settings'}",
            f"--LabApp.workspaces_dir={folder / 'config' / 'lab' / 'workspaces'}",
        ]

    def _wait_for_url(self, runtime: Path, timeout: float) -> str:
        """The server's URL from the file it writes once it listens (port 0: the OS chose)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited at start:\n{self.log()}")
            for info in runtime.glob("jpserver-*.json"):
                text = info.read_text()
                if text.strip().endswith("}"):  # written whole, not half-way
                    return json.loads(text)["url"]
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"JupyterLab did not start within {timeout:.0f} s:\n{self.log()}")

    def log(self, tail: int = 40) -> str:
        """The last lines the server (and its kernels) printed."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-tail:])

    def api(self, method: str, path: str) -> Any:
        """One call of the server's REST API (``/api/...``), its JSON answer."""
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """End every session and its kernel: each notebook starts on a fresh kernel."""
        for session in self.api("GET", "api/sessions"):
            self.api("DELETE", f"api/sessions/{session['id']}")

    def stop(self) -> None:
        """Stop the server (its kernels with it)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# The open notebook panel, from JupyterLab's own objects (exposed as window.jupyterapp).
_PANEL = "window.jupyterapp?.shell.currentWidget"
_READY = f"""() => {{
    const panel = {_PANEL};
    return !!panel?.context?.isReady && panel.sessionContext?.session?.kernel?.status === 'idle';
}}"""
# JupyterLab's "Run > Run All Cells"; its promise settles once the last cell ran (or one failed).
_RUN_ALL = """() => {
    window.didlearnRanAll = null;
    window.jupyterapp.commands.execute('notebook:run-all-cells').then(
        ok => { window.didlearnRanAll = {ok}; },
        error => { window.didlearnRanAll = {error: String(error)}; });
}"""
_RAN_ALL = f"""() => window.didlearnRanAll !== null
    && {_PANEL}.sessionContext.session.kernel.status === 'idle' && window.didlearnRanAll"""
# Code cells as nbformat JSON, without the (large) pictures: what the checks read.
_CELLS = f"""() => {{
    const cells = {_PANEL}.content.model.cells;
    const out = [];
    for (let i = 0; i < cells.length; i++) {{
        const cell = cells.get(i);
        if (cell.type !== 'code') continue;
        const outputs = cell.outputs.toJSON().map(o => ({{
            output_type: o.output_type, name: o.name, text: o.text, ename: o.ename,
            evalue: o.evalue, traceback: o.traceback, mime: Object.keys(o.data || {{}}),
        }}));
        out.push({{index: i, source: cell.sharedModel.getSource(),
                   execution_count: cell.executionCount, outputs}});
    }}
    return out;
}}"""
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: What a learner can move or click in a widget: sliders, dropdowns, buttons, boxes, text fields.
CONTROLS = "select, button, input, textarea, .noUi-target"


@dataclass
class Cell:
    """A code cell after the run: its position among all cells, source and outputs (JSON)."""

    index: int
    source: str
    execution_count: int | None
    outputs: list[dict] = field(default_factory=list)

    @property
    def shows_widget(self) -> bool:
        """Whether one of its outputs is a widget view."""
        return any(WIDGET_MIME in o.get("mime", ()) for o in self.outputs)

    def error(self) -> str | None:
        """The traceback of the exception the cell raised, if it did."""
        for o in self.outputs:
            if o["output_type"] == "error":
                return plain("\n".join(o.get("traceback") or [f"{o['ename']}: {o['evalue']}"]))
        return None

    def stream_text(self) -> str:
        """Everything the cell printed (stdout and stderr)."""
        return "".join(
            "".join(o["text"]) if isinstance(o["text"], list) else o["text"]
            for o in self.outputs
            if o["output_type"] == "stream"
        )


class Notebook:
    """One notebook open in a page of JupyterLab, with the page's JavaScript errors collected."""

    def __init__(self, browser: Any, name: str) -> None:
        self.name = name
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.js_errors: list[str] = []
        self.page.on("pageerror", lambda error: self.js_errors.append(f"page error: {error}"))
        self.page.on("console", self._console)

    def open(self, lab: JupyterLab, timeout: float = 180.0) -> None:
        """Open the notebook in JupyterLab; wait until its kernel is up and idle."""
        # ?reset: a fresh workspace, so only this notebook opens.
        self.page.goto(f"{lab.url}lab/tree/notebooks/{self.name}?reset&token={lab.token}")
        self.page.wait_for_function(_READY, timeout=timeout * 1000)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.js_errors.append(f"console error: {message.text}")

    def run_all(self, timeout: float) -> list[Cell]:
        """Run > Run All Cells; wait until it is done and the kernel is idle; the code cells."""
        self.page.evaluate(_RUN_ALL)
        result = self.page.wait_for_function(_RAN_ALL, timeout=timeout * 1000).json_value()
        if "error" in result:
            raise AssertionError(f"{self.name}: Run All Cells failed: {result['error']}")
        return self.cells()

    def cells(self) -> list[Cell]:
        """The code cells as they are now."""
        return [Cell(**c) for c in self.page.evaluate(_CELLS)]

    def _outputs(self, cell: Cell) -> Any:
        return self.page.locator(f'.jp-Cell[data-windowed-list-index="{cell.index}"]').locator(
            ".jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output"
        )

    def widget(self, cell: Cell) -> Any:
        """Locator of the widget the cell shows (its outermost box)."""
        return self._outputs(cell).locator(":scope > .jupyter-widgets").first

    def has_controls(self, cell: Cell) -> bool:
        """Whether the cell shows a widget with a control (a progress bar has none)."""
        return self._outputs(cell).locator(".jupyter-widgets").locator(CONTROLS).count() > 0

    def close(self) -> None:
        """Close the page (the kernel is shut down by :meth:`JupyterLab.shutdown_kernels`)."""
        self.page.close()
