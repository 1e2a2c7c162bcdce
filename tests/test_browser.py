"""The widgets in a real browser: JupyterLab in headless Chromium, as a learner runs the course.

For each chapter notebook: open it in JupyterLab, Run All Cells in quick mode, check that every
cell ran without an exception or TensorFlow log lines (what nbval checks: where this test runs a
notebook, ``conftest.py`` leaves it out of nbval, so it runs once), then move one control of
each widget (:data:`WIDGETS`) the way a mouse does and check that its output redraws. Any
JavaScript error of the page fails the test.

Needs Chromium (Debian: ``apt-get install chromium``) and Playwright's Python package (the
``dev`` extra); without them the tests are skipped, saying how to install them, unless
``DIDLEARN_REQUIRE_BROWSER=1`` (CI), where that is a failure. See ``browser_lab.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser_lab import NOTEBOOKS, REQUIRE, Cell, JupyterLab, Notebook, chromium, missing

from didlearn.quiet import tensorflow_log_lines

RUN_ALL_TIMEOUT = 900.0  # s per notebook; quick mode takes 10 s to 2 min on CI's 2 cores
REDRAW_TIMEOUT = 120.0  # s from a move to its redrawn output (a redraw takes 1-10 s)


@dataclass(frozen=True)
class Media:
    """Files a learner would upload: a portrait photo (JPEG) and the bundled driving clip."""

    photo: Path
    video: Path


# What a move does to a widget: acts on the page inside the widget's outermost box.
Act = Callable[[Any, Media], None]


def select(label: str, index: int) -> Act:
    """Choose option ``index`` of the dropdown described ``label``."""
    return lambda widget, media: (
        _control(widget, ".widget-dropdown", label).locator("select").select_option(index=index)
    )


def drag(label: str, dx: float) -> Act:
    """Drag the handle of the slider described ``label`` by ``dx`` pixels, as a mouse does."""

    def act(widget: Any, media: Media) -> None:
        handle = _control(widget, ".widget-slider", label).locator(".noUi-handle")
        handle.scroll_into_view_if_needed()
        box = handle.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        mouse = widget.page.mouse
        mouse.move(x, y)
        mouse.down()
        mouse.move(x + dx, y, steps=4)
        mouse.up()

    return act


def click(name: str) -> Act:
    """Click the button called ``name``."""
    return lambda widget, media: widget.get_by_role("button", name=name, exact=True).click()


def other_view() -> Act:
    """Click the first toggle button that is not the selected one."""
    return lambda widget, media: widget.locator(
        ".widget-toggle-button:not(.mod-active)"
    ).first.click()


def upload(nth: int, kind: str) -> Act:
    """Upload the ``kind`` file ("photo" or "video") through the ``nth`` upload button."""

    def act(widget: Any, media: Media) -> None:
        with widget.page.expect_file_chooser() as chooser:
            widget.locator(".widget-upload").nth(nth).click()
        chooser.value.set_files(getattr(media, kind))

    return act


def then(*acts: Act) -> Act:
    """The acts one after the other."""

    def act(widget: Any, media: Media) -> None:
        for a in acts:
            a(widget, media)

    return act


def _control(widget: Any, kind: str, label: str) -> Any:
    """The control of CSS class ``kind`` whose description is exactly ``label``."""
    return widget.locator(kind).filter(has=widget.page.get_by_text(label, exact=True)).first


@dataclass(frozen=True)
class Move:
    """Moving a control (``act``) must redraw the ``nth`` element ``output`` of the widget, which
    shows something before the move unless ``starts_empty`` (an output only a button fills)."""

    what: str
    act: Act
    output: str = ".widget-output"
    nth: int = 0
    starts_empty: bool = False


@dataclass(frozen=True)
class Widget:
    """The widget shown by the one code cell that calls ``function``, and the moves to try."""

    function: str
    moves: tuple[Move, ...]

    def shown_by(self, cell: Cell) -> bool:
        """Whether ``cell`` calls the function (``animate_widget(`` is not ``upload_animate_…``)."""
        return re.search(rf"(?<!\w){re.escape(self.function)}\(", cell.source) is not None


# One entry per widget of the course: a notebook that shows a widget not listed here fails.
WIDGETS: dict[str, tuple[Widget, ...]] = {
    "00_overview.ipynb": (
        Widget(
            "upload_widget",
            (
                Move("photo upload", upload(0, "photo"), output="div.widget-label", nth=0),
                Move("video upload", upload(1, "video"), output="div.widget-label", nth=1),
            ),
        ),
    ),
    "01_cnn_features.ipynb": (
        Widget("feature_map_widget", (Move("layer dropdown", select("layer", 1)),)),
    ),
    "02_optical_flow.ipynb": (
        Widget("flow_composer_widget", (Move("turn slider", drag("turn °", 40)),)),
    ),
    "03_motion.ipynb": (
        Widget("landmark_puppet_widget", (Move("smile slider", drag("smile", 40)),)),
    ),
    "04_generator.ipynb": (
        Widget("generator_widget", (Move("driving frame slider", drag("driving frame", -40)),)),
    ),
    "05_optimization.ipynb": (
        Widget(
            "train_widget",
            (Move("steps slider to 1, train", then(drag("steps", -400), click("train"))),),
        ),
    ),
    "06_animate.ipynb": (
        Widget("animate_widget", (Move("driver dropdown", select("driver", 1)),)),
        Widget(
            "upload_animate_widget",
            (
                Move("photo upload", upload(0, "photo"), output="div.widget-label"),
                Move("Animate button", click("Animate"), starts_empty=True),
            ),
        ),
        Widget("generator_widget", (Move("view buttons", other_view()),)),
        Widget("retarget_widget", (Move("yaw slider", drag("yaw", 40)),)),
    ),
}
NOTEBOOK_NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
_IDLE = "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'"
# The widget's first drawing is there: else a late one would pass for a redraw.
_DRAWN = f"element => element.innerHTML.trim() !== '' && {_IDLE}"
# The kernel is idle and the output differs from what it was (the argument) before the move.
_REDRAWN = f"([element, before]) => element.innerHTML !== before && {_IDLE}"
_ERRORS_IN = (
    '[data-mime-type="application/vnd.jupyter.error"],'
    ' [data-mime-type="application/vnd.jupyter.stderr"]'
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """One JupyterLab server for the module (skipped, or failed under CI, without a browser)."""
    reason = missing()
    if reason:
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{REQUIRE}=1 but {reason}")
        pytest.skip(reason)
    server = JupyterLab(tmp_path_factory.mktemp("jupyterlab"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(lab: JupyterLab) -> Iterator[Any]:
    """One headless Chromium (the system's, never a download) for the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chrome = playwright.chromium.launch(executable_path=chromium(), headless=True)
        yield chrome
        chrome.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    """A JPEG of the course's portrait and the bundled clip, to upload."""
    from PIL import Image

    from didlearn import data

    photo = tmp_path_factory.mktemp("uploads") / "portrait.jpg"
    Image.fromarray((data.sample_portrait() * 255).round().astype("uint8")).save(photo)
    return Media(photo=photo, video=Path(data.sample_driving_video()))


@dataclass
class Ran:
    """A notebook open in the browser after Run All Cells, and its code cells then."""

    notebook: Notebook
    cells: list[Cell]

    def check_every_cell_ran(self) -> None:
        """Every code cell ran and none raised (Run All stops at the first exception)."""
        name = self.notebook.name
        failed = next((c for c in self.cells if c.error()), None)
        assert failed is None, f"{name}: cell {failed.index} raised:\n{failed.error()}"
        not_run = [c.index for c in self.cells if c.execution_count is None]
        assert not not_run, f"{name}: cells {not_run} did not run"

    def check_quiet(self) -> None:
        """No cell printed TensorFlow's C++ log lines (as ``notebooks/conftest.py`` checks)."""
        noise = [(c.index, s) for c in self.cells for s in tensorflow_log_lines(c.stream_text())]
        assert not noise, f"{self.notebook.name}: TensorFlow log lines in cell outputs: {noise[:5]}"

    def check_no_javascript_error(self) -> None:
        """The page logged no uncaught exception and no console error."""
        errors = self.notebook.js_errors
        assert not errors, f"{self.notebook.name}: JavaScript errors: {errors}"


@pytest.fixture(scope="module", params=NOTEBOOK_NAMES)
def ran(request: pytest.FixtureRequest, lab: JupyterLab, browser: Any) -> Iterator[Ran]:
    """The notebook open in the browser after Run All Cells (one fresh kernel per notebook)."""
    notebook = Notebook(browser, request.param)
    try:
        notebook.open(lab)
        yield Ran(notebook, notebook.run_all(RUN_ALL_TIMEOUT))
    finally:
        notebook.close()
        lab.shutdown_kernels()


def test_notebook_runs_in_jupyterlab(ran: Ran) -> None:
    ran.check_every_cell_ran()
    ran.check_quiet()
    ran.check_no_javascript_error()


def test_every_widget_redraws_when_a_control_moves(ran: Ran, media: Media) -> None:
    ran.check_every_cell_ran()  # else its widgets may not be there: the same failure, said again
    notebook = ran.notebook
    expected = WIDGETS.get(notebook.name, ())
    shown = [c for c in ran.cells if c.shows_widget]
    for widget in expected:
        cells = [c for c in shown if widget.shown_by(c)]
        assert len(cells) == 1, f"{notebook.name}: {len(cells)} cells show {widget.function}"
        view = notebook.widget(cells[0])
        view.wait_for(timeout=REDRAW_TIMEOUT * 1000)
        for move in widget.moves:
            _check_redraw(notebook, view, widget.function, move, media)
    # Checked last, when every widget of the page has long been drawn.
    unlisted = [
        c.index
        for c in shown
        if not any(w.shown_by(c) for w in expected) and notebook.has_controls(c)
    ]
    assert not unlisted, (
        f"{notebook.name}: cells {unlisted} show widgets with controls: give each a move in WIDGETS"
    )
    ran.check_no_javascript_error()


def _check_redraw(notebook: Notebook, view: Any, function: str, move: Move, media: Media) -> None:
    """Make the move; its output must change, once the kernel is idle, and show no error."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    where = f"{notebook.name}: {function}, {move.what}"
    output = view.locator(move.output).nth(move.nth)
    timeout = REDRAW_TIMEOUT * 1000
    if not move.starts_empty:
        try:
            notebook.page.wait_for_function(_DRAWN, arg=output.element_handle(), timeout=timeout)
        except PlaywrightTimeout as error:
            raise AssertionError(f"{where}: nothing drawn before the move") from error
    before = output.inner_html()
    move.act(view, media)
    try:
        notebook.page.wait_for_function(
            _REDRAWN, arg=[output.element_handle(), before], timeout=timeout
        )
    except PlaywrightTimeout as error:  # say which widget, not only how long it waited
        raise AssertionError(
            f"{where}: the output did not change within {REDRAW_TIMEOUT:.0f} s"
        ) from error
    errors = output.locator(_ERRORS_IN)
    assert errors.count() == 0, f"{where}: the output shows an error:\n{errors.first.inner_text()}"
    assert output.inner_html().strip(), f"{where}: the output is empty after the move"
