"""Chapter 1 widget: browse the VGG feature maps of a photo by layer and channel.

The callbacks are plain functions, tested without a browser: :func:`compute_maps` runs the
network once, :func:`channel_map` picks and normalises one channel, :func:`channel_limit` gives
the channel slider's range for a layer, and :func:`draw_feature_map` draws the picture.
:func:`feature_map_widget` only wires them to ipywidgets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..features import ALL_BLOCK_LAYERS, feature_extractor, receptive_field

__all__ = [
    "channel_limit",
    "channel_map",
    "compute_maps",
    "draw_feature_map",
    "feature_map_widget",
    "strongest_channels",
]


def compute_maps(image: np.ndarray, layers: Sequence[str] = ALL_BLOCK_LAYERS) -> dict:
    """``{layer: (h, w, C) float32 NumPy map}`` of one RGB image ``(H, W, 3)`` in [0, 1]."""
    maps = feature_extractor(tuple(layers))(image)
    return {name: m[0].numpy() for name, m in zip(layers, maps, strict=True)}


def channel_limit(maps: dict, layer: str) -> int:
    """Largest valid channel index of ``layer`` (the slider's ``max``)."""
    return maps[layer].shape[-1] - 1


def strongest_channels(maps: dict, layer: str, k: int = 8) -> list[int]:
    """The ``k`` channels of ``layer`` with the largest mean activation, strongest first."""
    return [int(c) for c in np.argsort(-maps[layer].mean(axis=(0, 1)))[:k]]


def channel_map(maps: dict, layer: str, channel: int) -> tuple[np.ndarray, float]:
    """One channel scaled to [0, 1] for display, and its raw maximum (0 for a dead channel).

    Raises ``ValueError`` for an unknown layer or a channel out of range (the slider's range
    comes from :func:`channel_limit`, so this only happens when called by hand).
    """
    if layer not in maps:
        raise ValueError(f"unknown layer {layer!r}; choose among {sorted(maps)}")
    if not 0 <= channel <= channel_limit(maps, layer):
        raise ValueError(f"{layer} has channels 0..{channel_limit(maps, layer)}, got {channel}")
    m = maps[layer][..., channel]
    peak = float(m.max())
    return (m / peak if peak > 0 else np.zeros_like(m)).astype(np.float32), peak


def draw_feature_map(image: np.ndarray, maps: dict, layer: str, channel: int) -> Any:
    """Photo, the channel's map, and the map over the photo: a matplotlib Figure."""
    import matplotlib.pyplot as plt

    m, peak = channel_map(maps, layer, channel)
    size, stride = receptive_field(layer)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    axes[0].imshow(image)
    axes[0].set_title("photo")
    axes[1].imshow(m, cmap="magma", vmin=0, vmax=1)
    axes[1].set_title(f"{layer} ch {channel} ({m.shape[1]}x{m.shape[0]}, max {peak:.1f})")
    h, w = image.shape[:2]
    axes[2].imshow(image)
    axes[2].imshow(m, cmap="magma", alpha=0.6, extent=(0, w, h, 0), vmin=0, vmax=1)
    axes[2].set_title(f"overlay; receptive field {size} px, stride {stride}")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def feature_map_widget(image: np.ndarray, layers: Sequence[str] = ALL_BLOCK_LAYERS) -> Any:
    """A layer dropdown and a channel slider showing :func:`draw_feature_map` (ipywidgets)."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    maps = compute_maps(image, layers)
    layer = widgets.Dropdown(options=list(layers), value=layers[0], description="layer")
    channel = widgets.IntSlider(
        value=strongest_channels(maps, layers[0], 1)[0],
        min=0,
        max=channel_limit(maps, layers[0]),
        description="channel",
    )

    def on_layer(change: dict) -> None:
        channel.max = channel_limit(maps, change["new"])
        channel.value = strongest_channels(maps, change["new"], 1)[0]

    layer.observe(on_layer, names="value")

    def show(layer: str, channel: int) -> None:
        draw_feature_map(image, maps, layer, channel)
        plt.show()

    out = widgets.interactive_output(show, {"layer": layer, "channel": channel})
    return widgets.VBox([widgets.HBox([layer, channel]), out])
