"""The renderer registry: one function and one registration make a renderer that the Animator,
the CLI and the benchmarks all offer, with no other edit."""

import sys
from pathlib import Path

import numpy as np
import pytest

from didlearn import animate, cli, data, renderers
from didlearn.composite import CropMotion

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def shift_renderer(monkeypatch):
    """A toy renderer, registered for the test only: every frame reads 3 px to its right."""
    monkeypatch.setattr(renderers, "RENDERERS", dict(renderers.RENDERERS))

    @renderers.register_renderer("shift3", "every pixel reads the photo 3 px to its right")
    def render_shift(crop, ks, kps):
        flow = np.zeros((len(kps), *crop.shape[:2], 2), np.float32)
        flow[..., 0] = 3.0
        return CropMotion(flow)

    return "shift3"


def test_the_registry_lists_the_course_renderers_simplest_first():
    assert renderers.renderer_names() == (
        "still", "similarity", "piecewise_affine", "thin_plate", "model"
    )  # fmt: skip
    assert renderers.DEFAULT_METHOD in renderers.renderer_names()
    assert [m for m in renderers.renderer_names() if renderers.renderer_entry(m).needs_models] == [
        "model"
    ]
    with pytest.raises(ValueError, match="registered already"):
        renderers.register_renderer("still", "a second still")(renderers.render_still)
    with pytest.raises(ValueError, match="unknown method 'magic'.*thin_plate"):
        renderers.make_renderer("magic")


def test_a_registered_renderer_reaches_the_animator_and_the_cli(shift_renderer, tmp_path, capsys):
    photo = data.sample_portrait()
    anim = animate.Animator(photo, method=shift_renderer, progress=False)
    moved = anim.render(np.stack([anim.source_kp + 1.0]))[0]
    np.testing.assert_allclose(moved[:, :-8], anim.crop.image[:, 3:-5], atol=1e-5)

    with pytest.raises(SystemExit):
        cli.main(["animate", "--help"])
    assert "shift3: every pixel reads the photo 3 px to its right" in capsys.readouterr().out
    portrait = tmp_path / "p.png"
    from PIL import Image

    Image.fromarray(data.to_uint8(photo)).save(portrait)
    out = tmp_path / "out.mp4"
    argv = ["animate", str(portrait), "--template", "nod", "--duration", "0.2", "--fps", "10"]
    assert cli.main([*argv, "--method", shift_renderer, "-o", str(out), "-q"]) == 0
    assert data.video_info(out).n_frames == 2


def test_a_registered_renderer_reaches_the_benchmarks(shift_renderer, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import reenact_benchmark

    out = tmp_path / "reenact.json"
    argv = ["--methods", f"still,{shift_renderer}", "--max-frames", "3", "--json", str(out)]
    assert reenact_benchmark.main(argv) == 0
    import json

    means = json.loads(out.read_text())["mean"]
    assert set(means) == {"still", shift_renderer}
    assert means[shift_renderer]["l1"] != means["still"]["l1"]
    sys.modules.pop("reenact_benchmark", None)
