"""From a renderer's motion to output pixels (chapter 6): at the crop's size, or the photo's own.

Every renderer decides the same three things, in the pixels of the face crop it works on::

    flow    (B, S, S, 2)  backward, crop pixels: output pixel u reads the photo at u + flow(u)
    mask    (B, S, S, 1)  weight of the warped photo (1 = warp; 0 = the painting); None = 1
    colour  (B, S, S, 3)  what the generator paints where the warp cannot be right; None = none

:func:`compose_crop` turns that into crops (what the models see and train on, and the
self-reenactment benchmark's frames). :class:`NativeCompositor` turns it into the WHOLE photo at
its own resolution: the crop's flow is brought up to the photo region the crop covers (and
scaled from crop to photo pixels), the photo's own pixels are resampled there with a sharp
filter, the painting is blended only where the mask asks for it. Rendering a 256-px crop and
scaling it up would instead keep about a third of a large photo's fine detail.

Feathering fades the *motion*, not the image: the flow (and the painting's weight) is multiplied
by a ramp that reaches 0 at the crop's edges, so the output meets the untouched photo there
without a seam, and without the double image that cross-fading two shifted pictures leaves.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Width of the ramp the motion fades over at the crop's edges, as a fraction of the crop side.
#: The flows reach the edges small already (the thin-plate spline holds the border still), so a
#: narrow ramp does; a wide one (0.15, the old cross-fade's) stops a big head move short: on the
#: bundled pair the landmarks' error rose from 2.90 to 3.50 % of the inter-ocular distance.
FEATHER = 0.05
#: Motion below this (photo pixels) counts as none: those pixels are the photo's, bit for bit.
STILL_PX = 1e-3
#: A painting weight (1 - mask, feathered) below this counts as nothing painted.
UNPAINTED = 1e-3


@dataclass(frozen=True)
class CropMotion:
    """What a renderer decided for a batch of frames, in crop pixels (see the module docstring).

    Attributes:
        flow: (B, S, S, 2) float32 backward flow, crop pixels.
        mask: (B, S, S, 1) float32 weight of the warped photo, or None (warp everywhere).
        colour: (B, S, S, 3) float32 painting in [0, 1], or None (nothing painted).
    """

    flow: np.ndarray
    mask: np.ndarray | None = None
    colour: np.ndarray | None = None

    def __post_init__(self) -> None:
        flow = np.asarray(self.flow, np.float32)
        if flow.ndim != 4 or flow.shape[-1] != 2:
            raise ValueError(f"flow must be (B, S, S, 2), got {flow.shape}")
        object.__setattr__(self, "flow", flow)
        if (self.mask is None) != (self.colour is None):
            raise ValueError("mask and colour go together: give both or neither")
        if self.mask is not None:
            object.__setattr__(self, "mask", np.asarray(self.mask, np.float32))
            object.__setattr__(self, "colour", np.asarray(self.colour, np.float32))

    def __len__(self) -> int:
        return len(self.flow)

    def at(self, i: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Frame ``i``'s ``(flow (S,S,2), mask (S,S,1) or None, colour (S,S,3) or None)``."""
        if self.mask is None or self.colour is None:
            return self.flow[i], None, None
        return self.flow[i], self.mask[i], self.colour[i]


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(xs, ys)``: two (H, W) float32 arrays of every pixel's x and y coordinate."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs, ys


def compose_crop(image: np.ndarray, motion: CropMotion) -> np.ndarray:
    """Crops ``(B, S, S, 3)`` in [0, 1]: ``mask * warp(image, flow) + (1 - mask) * colour``.

    Bilinear sampling with the border replicated: the same as :func:`didlearn.flow.warp`, with
    OpenCV's ``remap`` (no gradient is needed here; about 7x faster on a CPU).
    """
    img = np.asarray(image, np.float32)
    xs, ys = pixel_grid(*img.shape[:2])
    out = np.empty((len(motion), *img.shape), np.float32)
    for i in range(len(motion)):
        flow, mask, colour = motion.at(i)
        warped = cv2.remap(
            img,
            xs + flow[..., 0],
            ys + flow[..., 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        out[i] = warped if mask is None or colour is None else mask * warped + (1 - mask) * colour
    return np.clip(out, 0.0, 1.0, out=out)


def crop_box(crop, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the box of a photo of ``shape`` (H, W, ...) that ``crop`` covers.

    Raises:
        ValueError: the crop does not overlap the photo.
    """
    h, w = shape[:2]
    s = crop.size - 1
    corners = crop.to_full(np.array([[0, 0], [s, 0], [0, s], [s, s]], np.float32))
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:
        raise ValueError("the face crop does not overlap the photo")
    return int(y0), int(y1), int(x0), int(x1)


def _crop_coordinates(crop, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(u, v)``: two (y1-y0, x1-x0) float32 arrays, the crop coordinates of the box's pixels."""
    y0, y1, x0, x1 = box
    xs, ys = pixel_grid(y1 - y0, x1 - x0)
    m = crop.matrix
    u = (m[0, 0] * (xs + x0) + m[0, 1] * (ys + y0) + m[0, 2]).astype(np.float32)
    v = (m[1, 0] * (xs + x0) + m[1, 1] * (ys + y0) + m[1, 2]).astype(np.float32)
    return u, v


def _moving_box(
    crop, box: tuple[int, int, int, int], flow: np.ndarray, weight: np.ndarray | None
) -> tuple[slice, slice] | None:
    """Rows and columns of ``box`` (photo pixels) where the crop's (faded) ``flow`` (S, S, 2)
    moves by more than :data:`STILL_PX` or its painting ``weight`` (S, S, 1) exceeds
    :data:`UNPAINTED`; None if nothing moves. Found on the crop grid, one crop pixel wider
    (bilinear reach)."""
    active = np.maximum(np.abs(flow[..., 0]), np.abs(flow[..., 1])) > STILL_PX
    if weight is not None:
        active |= weight[..., 0] > UNPAINTED
    rows, cols = np.flatnonzero(active.any(axis=1)), np.flatnonzero(active.any(axis=0))
    if not len(rows):
        return None
    lo = crop.to_full(np.array([[cols[0] - 1, rows[0] - 1]], np.float32))[0]
    hi = crop.to_full(np.array([[cols[-1] + 1, rows[-1] + 1]], np.float32))[0]
    y0, y1, x0, x1 = box
    r0, c0 = max(int(np.floor(lo[1])) - y0, 0), max(int(np.floor(lo[0])) - x0, 0)
    r1, c1 = (
        min(int(np.ceil(hi[1])) + 1 - y0, y1 - y0),
        min(int(np.ceil(hi[0])) + 1 - x0, x1 - x0),
    )
    return (slice(r0, r1), slice(c0, c1)) if r1 > r0 and c1 > c0 else None


class NativeCompositor:
    """Renders crop motion into the whole photo, at the photo's own resolution.

    Args:
        photo: (H, W, 3) float32 photo in [0, 1].
        crop: the :class:`didlearn.faces.FaceCrop` the motion is in (a scale + shift of the photo).
        feather: width of the ramp that fades the motion to 0 at the crop's edges (fraction of
            the crop side).

    Sampling: the photo region under the crop is oversampled 2x once (Lanczos, aligned so that
    every other sample IS a photo pixel), and each frame reads it with bicubic interpolation.
    On a smooth sub-pixel flow that keeps 0.95-0.99 of a portrait's fine detail (Laplacian energy
    in the face) at the cost of bicubic, where bicubic alone keeps 0.84-0.91 and Lanczos 0.92-0.97
    at 5-7x the cost (:data:`SAMPLING`; measured on the bundled portrait and two of
    ../shared/data's). Memory: 4x the region, float32 (48 bytes per photo pixel under the crop).

    Only the region under the crop is touched, and of that only the box where something moves or
    is painted: a 12 MP photo costs what its face costs.
    """

    def __init__(self, photo: np.ndarray, crop, feather: float = FEATHER):
        from .faces import feather_mask

        self.photo = np.asarray(photo, np.float32)
        self.crop = crop
        self.box = crop_box(crop, self.photo.shape[:2])
        y0, y1, x0, x1 = self.box
        xs, ys = pixel_grid(y1 - y0, x1 - x0)
        # crop coordinates of every region pixel: where its flow, mask and colour are read
        self._u, self._v = _crop_coordinates(crop, self.box)
        self._ramp = feather_mask(crop.size, feather)[..., None]
        # crop pixels -> photo pixels (the crop is a scale + shift of the photo), faded at the edges
        self._flow_ramp = self._ramp * float(np.sqrt(abs(np.linalg.det(crop.inverse[:, :2]))))
        self._source, self._origin = _oversampled(self.photo, self.box)
        # region pixels in the source's coordinates
        self._xs2 = (SAMPLING * (xs + x0) - self._origin[0]).astype(np.float32)
        self._ys2 = (SAMPLING * (ys + y0) - self._origin[1]).astype(np.float32)

    def _to_region(self, crop_image: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
        """Bilinearly sample a crop-sized array at the region's pixels ``[rows, cols]``."""
        return _sample(crop_image, self._u[rows, cols], self._v[rows, cols])

    def _active(self, flow: np.ndarray, weight: np.ndarray | None) -> tuple[slice, slice] | None:
        """Rows and columns of the region that move or are painted (found on the crop grid)."""
        return _moving_box(self.crop, self.box, flow, weight)

    def __call__(
        self, flow: np.ndarray, mask: np.ndarray | None = None, colour: np.ndarray | None = None
    ) -> np.ndarray:
        """The whole photo (H, W, 3) float32 for one frame's crop motion (see :class:`CropMotion`).

        Pixels where nothing moves (by less than :data:`STILL_PX`) and nothing is painted are the
        photo's own, bit for bit.
        """
        out = self.photo.copy()
        flow = flow * self._flow_ramp  # photo pixels, faded at the crop's edges
        weight = None if mask is None else self._ramp * (1.0 - mask[..., :1])
        if weight is not None and not (weight > UNPAINTED).any():
            weight = None  # nothing painted on this frame: skip the blend
        where = self._active(flow, weight)
        if where is None:
            return out
        rows, cols = where
        f = self._to_region(flow, rows, cols)
        warped = cv2.remap(
            self._source,
            self._xs2[rows, cols] + SAMPLING * f[..., 0],
            self._ys2[rows, cols] + SAMPLING * f[..., 1],
            cv2.INTER_CUBIC,
            borderMode=cv2.BORDER_REPLICATE,
        )
        if weight is not None and colour is not None:
            a = self._to_region(weight, rows, cols)[..., None]
            warped = warped + a * (self._to_region(colour, rows, cols) - warped)
        y0, _, x0, _ = self.box
        out[y0 + rows.start : y0 + rows.stop, x0 + cols.start : x0 + cols.stop] = np.clip(
            warped, 0.0, 1.0
        )
        return out


@dataclass(frozen=True)
class _Cluster:
    """Crops that overlap, directly or through others, rendered together (:class:`GroupCompositor`).

    Attributes:
        box: ``(y0, y1, x0, x1)`` photo pixels covering every member's crop.
        members: indices of the crops.
        weights: crop index -> (h, w, 1) float32 weight ``w_i`` over that crop's own box.
        source: the box oversampled (see :func:`_oversampled`); xs2, ys2: (H, W) float32 the
            box's pixels in the source's coordinates.
    """

    box: tuple[int, int, int, int]
    members: list[int]
    weights: dict[int, np.ndarray]
    source: np.ndarray
    xs2: np.ndarray
    ys2: np.ndarray


#: How far each face's claim on the pixels where crops overlap reaches: the sigma of a Gaussian
#: around the face's crop centre, as a fraction of the crop side (the crop is ~2x the face).
#: Small enough that a face keeps its own motion where a neighbour's crop covers it.
OWNER_SIGMA = 0.25


class GroupCompositor:
    """Several faces' crop motions rendered into one photo, blended without seams where crops
    overlap (:class:`NativeCompositor` is the one-face case; with one crop the frames agree).

    Each face ``i`` moves the photo by its faded flow ``f_i`` (photo pixels, 0 at its crop's
    edges). Where crops overlap, the photo moves by ``sum_i w_i f_i``, with fixed weights
    ``w_i = r_i g_i / sum_j r_j g_j``: ``r_i`` the crop's fade window, ``g_i`` a Gaussian
    around its centre (:data:`OWNER_SIGMA`), so each face keeps its own motion and the weights
    pass smoothly from one face to the next. Where one crop covers a pixel its weight is 1, and
    at a crop's edge its weight reaches 0 with its flow: the motion field is continuous, so no
    seam can appear (pasting one animated crop over another would cut the first face's motion
    off at the second crop's edge). Paintings blend the same way (weight ``w_i (1 - M_i)``).

    Faces whose crops do not overlap (directly or through others) are rendered independently,
    each group from its own part of the photo: memory follows the faces, not the photo.

    Args:
        photo: (H, W, 3) float32 photo in [0, 1].
        crops: the :class:`didlearn.faces.FaceCrop` of each face, in the order of the motions.
        feather: as for :class:`NativeCompositor`.
    """

    def __init__(self, photo: np.ndarray, crops, feather: float = FEATHER):
        from .faces import feather_mask

        self.photo = np.asarray(photo, np.float32)
        self.crops = list(crops)
        if not self.crops:
            raise ValueError("GroupCompositor needs at least one face crop")
        self.boxes = [crop_box(c, self.photo.shape[:2]) for c in self.crops]
        self._ramps = [feather_mask(c.size, feather)[..., None] for c in self.crops]
        self._scales = [float(np.sqrt(abs(np.linalg.det(c.inverse[:, :2])))) for c in self.crops]
        self._coords = [
            _crop_coordinates(c, b) for c, b in zip(self.crops, self.boxes, strict=True)
        ]
        self.clusters = [self._cluster(members) for members in _overlapping(self.boxes)]

    def _cluster(self, members: list[int]) -> _Cluster:
        """One group of overlapping crops: its box, oversampled source and the faces' weights."""
        box = _union([self.boxes[i] for i in members])
        y0, y1, x0, x1 = box
        claims = {}
        for i in members:
            u, v = self._coords[i]
            size = self.crops[i].size
            window = _sample(self._ramps[i][..., 0], u, v)
            centre, sigma = (size - 1) / 2, OWNER_SIGMA * size
            owner = np.exp(-((u - centre) ** 2 + (v - centre) ** 2) / (2 * sigma**2))
            claims[i] = (window * owner).astype(np.float32)
        total = np.zeros((y1 - y0, x1 - x0), np.float32)
        for i in members:
            total[_within(self.boxes[i], box)] += claims[i]
        weights = {}
        for i in members:
            part = total[_within(self.boxes[i], box)]
            weights[i] = np.divide(claims[i], part, out=np.zeros_like(part), where=part > 0)[
                ..., None
            ]
        source, origin = _oversampled(self.photo, box)
        xs, ys = pixel_grid(y1 - y0, x1 - x0)
        xs2 = (SAMPLING * (xs + x0) - origin[0]).astype(np.float32)
        ys2 = (SAMPLING * (ys + y0) - origin[1]).astype(np.float32)
        return _Cluster(box, members, weights, source, xs2, ys2)

    def __call__(
        self, motions: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]
    ) -> np.ndarray:
        """The whole photo (H, W, 3) float32 for one frame: ``motions[i]`` is face ``i``'s
        ``(flow, mask or None, colour or None)`` in its crop's pixels (see :class:`CropMotion`).

        Pixels where nothing moves (by less than :data:`STILL_PX`) and nothing is painted are the
        photo's own, bit for bit.
        """
        if len(motions) != len(self.crops):
            raise ValueError(f"{len(motions)} motions for {len(self.crops)} face crops")
        out = self.photo.copy()
        for cluster in self.clusters:
            self._render(cluster, motions, out)
        return out

    def _render(self, cluster: _Cluster, motions, out: np.ndarray) -> None:
        """Render one cluster of overlapping crops into ``out`` (in place)."""
        y0, y1, x0, x1 = cluster.box
        flow = np.zeros((y1 - y0, x1 - x0, 2), np.float32)
        paint = np.zeros((y1 - y0, x1 - x0, 3), np.float32)  # sum_i w_i a_i c_i
        alpha = np.zeros((y1 - y0, x1 - x0, 1), np.float32)  # sum_i w_i a_i
        moved = []
        for i in cluster.members:
            f, mask, colour = motions[i]
            f = f * (self._ramps[i] * self._scales[i])  # photo pixels, faded at the crop's edges
            a = None if mask is None else self._ramps[i] * (1.0 - mask[..., :1])
            if a is not None and not (a > UNPAINTED).any():
                a = None
            where = _moving_box(self.crops[i], self.boxes[i], f, a)
            if where is None:
                continue
            rows, cols = where
            u, v = (c[rows, cols] for c in self._coords[i])
            w = cluster.weights[i][rows, cols]
            by, _, bx, _ = self.boxes[i]
            at = (
                slice(by - y0 + rows.start, by - y0 + rows.stop),
                slice(bx - x0 + cols.start, bx - x0 + cols.stop),
            )
            flow[at] += w * _sample(f, u, v)
            if a is not None and colour is not None:
                wa = w * _sample(a, u, v)[..., None]
                alpha[at] += wa
                paint[at] += wa * _sample(colour, u, v)
            moved.append(at)
        if not moved:
            return
        rows = slice(min(r.start for r, _ in moved), max(r.stop for r, _ in moved))
        cols = slice(min(c.start for _, c in moved), max(c.stop for _, c in moved))
        f = flow[rows, cols]
        warped = cv2.remap(
            cluster.source,
            cluster.xs2[rows, cols] + SAMPLING * f[..., 0],
            cluster.ys2[rows, cols] + SAMPLING * f[..., 1],
            cv2.INTER_CUBIC,
            borderMode=cv2.BORDER_REPLICATE,
        )
        if (alpha[rows, cols] > UNPAINTED).any():
            # sum_i w_i a_i (c_i - warped): each face paints with its own weight
            warped = warped + paint[rows, cols] - alpha[rows, cols] * warped
        out[y0 + rows.start : y0 + rows.stop, x0 + cols.start : x0 + cols.stop] = np.clip(
            warped, 0.0, 1.0
        )


def _sample(crop_image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinearly sample a crop-sized array at crop coordinates ``(u, v)`` (border replicated)."""
    return cv2.remap(
        np.ascontiguousarray(crop_image, np.float32),
        u,
        v,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """The smallest ``(y0, y1, x0, x1)`` box holding all ``boxes``."""
    return (
        min(b[0] for b in boxes),
        max(b[1] for b in boxes),
        min(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _within(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]):
    """The slices of ``outer``'s pixels that ``inner`` (a box inside it) covers."""
    return slice(inner[0] - outer[0], inner[1] - outer[0]), slice(
        inner[2] - outer[2], inner[3] - outer[2]
    )


def _overlapping(boxes: list[tuple[int, int, int, int]]) -> list[list[int]]:
    """Indices of ``boxes`` grouped so that boxes overlapping (directly or through others), or
    whose union boxes would overlap, share a group."""
    groups = [[i] for i in range(len(boxes))]
    merged = True
    while merged:  # a handful of faces: merging until nothing changes is cheap
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                ba = _union([boxes[i] for i in groups[a]])
                bb = _union([boxes[i] for i in groups[b]])
                if ba[0] < bb[1] and bb[0] < ba[1] and ba[2] < bb[3] and bb[2] < ba[3]:
                    groups[a] += groups.pop(b)
                    merged = True
                    break
            if merged:
                break
    return [sorted(g) for g in groups]


#: Oversampling of the photo region the frames are sampled from (see :class:`NativeCompositor`).
SAMPLING = 2
#: Photo pixels kept around the crop's region in the oversampled source (motion can read a
#: little outside the crop; beyond this the border is replicated).
SOURCE_MARGIN = 16


def _oversampled(
    photo: np.ndarray, box: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The photo region ``box`` (plus :data:`SOURCE_MARGIN`) oversampled :data:`SAMPLING` x with
    Lanczos, sample ``(i, j)`` at photo ``(x, y) = origin / SAMPLING + (j, i) / SAMPLING``; even
    samples are the photo's own pixels.

    Returns ``(source, origin)`` with origin the (x, y) of sample (0, 0) in oversampled units.
    """
    h, w = photo.shape[:2]
    y0, y1, x0, x1 = box
    y0, x0 = max(y0 - SOURCE_MARGIN, 0), max(x0 - SOURCE_MARGIN, 0)
    y1, x1 = min(y1 + SOURCE_MARGIN, h), min(x1 + SOURCE_MARGIN, w)
    k = SAMPLING
    inverse = np.array([[1 / k, 0, 0], [0, 1 / k, 0]])  # sample (j, i) reads region (j/k, i/k)
    source = cv2.warpAffine(
        np.ascontiguousarray(photo[y0:y1, x0:x1]),
        inverse,
        (k * (x1 - x0) - (k - 1), k * (y1 - y0) - (k - 1)),
        flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return source, np.array([k * x0, k * y0], np.float32)
