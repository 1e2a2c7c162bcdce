"""Chapter 4 widget: step through the driving frames and look inside the generator.

A slider picks the driving frame, toggle buttons pick which intermediate of
:func:`didlearn.generator.forward` to show next to the photo, the true driving frame and the final
output: the photo warped by the refined flow, the decoder's painting (colour), the occlusion map,
the fusion mask, the refined flow, the refiner's correction of the thin-plate flow and where the
warp folds over itself. A checkbox switches on the inference guards of chapter 6
(:func:`didlearn.generator.guard_flow`).

The callbacks are plain functions, tested without a browser: :func:`generator_views` runs the
models on one target and returns every view as an RGB picture, :func:`render_generator` draws them,
and :func:`generator_widget` only wires them to ipywidgets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import flow as fl

__all__ = ["VIEWS", "generator_views", "generator_widget", "render_generator"]

#: What the toggle buttons can show, and what each picture means.
VIEWS = {
    "frame": "the output: M * warped + (1 - M) * colour",
    "warped": "the photo warped by the refined flow F + dF (pixels moved, nothing painted)",
    "colour": "the decoder's painting C (used where the mask M is low)",
    "occlusion": "occlusion O at S/4 (bright = the warped features are trusted)",
    "mask": "fusion mask M (bright = keep the warped photo's pixels)",
    "flow": "refined backward flow F + dF, colour-coded",
    "residual": "the refiner's correction dF of the thin-plate flow, colour-coded",
    "folds": "where the warp folds over itself, det(I + grad F) < 0 (yellow): a mirrored copy",
}


def _gray_to_rgb(values: np.ndarray, size: int) -> np.ndarray:
    """(h, w) values in [0, 1] -> (size, size, 3) viridis picture (nearest upsampling)."""
    import matplotlib

    v = np.clip(np.asarray(values, np.float32), 0.0, 1.0)
    rep = size // v.shape[0]
    if rep > 1:
        v = np.repeat(np.repeat(v, rep, axis=0), rep, axis=1)
    return matplotlib.colormaps["viridis"](v)[..., :3].astype(np.float32)


def generator_views(
    models: Any,
    photo: np.ndarray,
    ks: np.ndarray,
    kp: np.ndarray,
    features: list | None = None,
    guards: bool = False,
) -> dict[str, Any]:
    """Run the generator on one target and return every view of :data:`VIEWS` as a picture.

    Args:
        models: :class:`didlearn.generator.AnimationModels` (trained or not).
        photo: ``(S, S, 3)`` float32 face crop in [0, 1], ``S = models.config.size``.
        ks: ``(N, 2)`` its keypoints; kp: ``(N, 2)`` the target keypoints (crop pixels).
        features: the encoder's output for ``photo`` (computed here if None).
        guards: apply the inference guards (``generator.forward(..., guards=True)``).

    Returns:
        dict with one ``(S, S, 3)`` float32 RGB picture in [0, 1] per key of :data:`VIEWS`, and
        ``"stats"``: mean occlusion, mean mask, largest residual (pixels), largest flow (pixels),
        share of the pixels where the warp folds.
    """
    from .. import generator, motion

    s = models.config.size
    photo = np.asarray(photo, np.float32)
    if photo.shape != (s, s, 3):
        raise ValueError(f"the models run on {s}x{s} crops; got a photo of shape {photo.shape}")
    ks = np.asarray(ks, np.float32)
    kp = np.asarray(kp, np.float32)
    if kp.shape != ks.shape or kp.ndim != 2:
        raise ValueError(f"ks and kp must both be (N, 2); got {ks.shape} and {kp.shape}")
    out = generator.forward(
        models, photo[None], ks[None], kp[None], features=features, guards=guards
    )
    out = {k: v[0].numpy() for k, v in out.items()}
    residual = out["flow"] - out["coarse_flow"]
    res_mag = float(np.hypot(residual[..., 0], residual[..., 1]).max())
    flow_mag = float(np.hypot(out["flow"][..., 0], out["flow"][..., 1]).max())
    folded = motion.area_ratio(out["flow"]) < 0
    views = {
        "frame": np.clip(out["frame"], 0.0, 1.0),
        "warped": np.clip(out["warped"], 0.0, 1.0),
        "colour": np.clip(out["colour"], 0.0, 1.0),
        "occlusion": _gray_to_rgb(out["occlusion"][..., 0], s),
        "mask": _gray_to_rgb(out["mask"][..., 0], s),
        "flow": fl.flow_to_color(out["flow"]),
        # at least 1 px for full saturation, so an untrained (zero) residual shows white
        "residual": fl.flow_to_color(residual, max_magnitude=max(res_mag, 1.0)),
        "folds": _gray_to_rgb(folded, s),
    }
    views["stats"] = {
        "occlusion": float(out["occlusion"].mean()),
        "mask": float(out["mask"].mean()),
        "residual_px": res_mag,
        "flow_px": flow_mag,
        "folded": float(folded.mean()),
    }
    return views


def render_generator(
    models: Any,
    photo: np.ndarray,
    ks: np.ndarray,
    kps: np.ndarray,
    t: int = 0,
    view: str = "occlusion",
    truth: np.ndarray | None = None,
    features: list | None = None,
    guards: bool = False,
) -> Any:
    """Four panels for driving frame ``t``: the photo, the true frame (or the target keypoints),
    the chosen intermediate ``view`` (a key of :data:`VIEWS`) and the output frame.

    Args:
        kps: ``(T, N, 2)`` target keypoints of all driving frames; ``truth``: ``(T, S, S, 3)``
            the real driving crops, if known (then the output's L1 error is shown).
        guards: render with the inference guards of chapter 6.

    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of {list(VIEWS)}")
    kps = np.asarray(kps, np.float32)
    if not 0 <= t < len(kps):
        raise IndexError(f"frame {t} is outside the {len(kps)} driving frames")
    res = generator_views(models, photo, ks, kps[t], features=features, guards=guards)
    st = res["stats"]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.9))
    axes[0].imshow(np.clip(photo, 0, 1))
    axes[0].plot(*np.asarray(ks).T, "g.", ms=2)
    axes[0].set_title("photo and its keypoints")
    if truth is not None:
        axes[1].imshow(np.clip(truth[t], 0, 1))
        axes[1].set_title(f"driving frame {t} (truth)")
    else:
        axes[1].imshow(np.clip(photo, 0, 1), alpha=0.4)
        axes[1].set_title(f"driving frame {t}: target keypoints")
    axes[1].plot(*kps[t].T, "r.", ms=2)
    axes[2].imshow(res[view])
    detail = {
        "occlusion": f" (mean {st['occlusion']:.2f})",
        "mask": f" (mean {st['mask']:.2f})",
        "residual": f" (max {st['residual_px']:.1f} px)",
        "flow": f" (max {st['flow_px']:.0f} px)",
        "folds": f" ({100 * st['folded']:.1f} % of the pixels)",
    }.get(view, "")
    axes[2].set_title(view + detail)
    axes[3].imshow(res["frame"])
    title = "output frame"
    if truth is not None:
        title += f" (L1 {np.abs(res['frame'] - truth[t]).mean():.3f})"
    axes[3].set_title(title)
    for a in axes:
        a.set_xlim(-0.5, photo.shape[1] - 0.5)  # keypoints outside the crop do not widen the axes
        a.set_ylim(photo.shape[0] - 0.5, -0.5)
        a.set_axis_off()
    fig.text(0.5, 0.01, VIEWS[view], ha="center", fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def generator_widget(
    models: Any,
    photo: np.ndarray,
    ks: np.ndarray,
    kps: np.ndarray,
    truth: np.ndarray | None = None,
    start: int = 0,
    view: str = "occlusion",
    guards: bool = False,
) -> Any:
    """A frame slider, view buttons and a guards checkbox redrawing :func:`render_generator` live
    (ipywidgets); ``start``, ``view`` and ``guards`` are their first values.

    The photo is encoded once; each move of the slider runs the refiner and decoder on one frame.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    features = models.encoder(np.asarray(photo, np.float32)[None], training=False)
    frame = widgets.IntSlider(
        value=start, min=0, max=len(kps) - 1, description="driving frame", continuous_update=False
    )
    buttons = widgets.ToggleButtons(options=list(VIEWS), value=view, description="show")
    guard_box = widgets.Checkbox(value=guards, description="inference guards (chapter 6)")

    def show(t: int, view: str, guards: bool) -> None:
        render_generator(
            models, photo, ks, kps, t=t, view=view, truth=truth, features=features, guards=guards
        )
        plt.show()

    out = widgets.interactive_output(show, {"t": frame, "view": buttons, "guards": guard_box})
    return widgets.VBox([frame, buttons, guard_box, out])
