"""The 3-D head model: 68 landmarks lifted onto a head, turned rigidly, projected back.

A face photo gives only 2-D landmarks; to turn the head (nod = pitch, turn = yaw, tilt = roll)
each landmark gets a depth — an ellipsoid for the face plus a nose that sticks out — the points
rotate about a pivot, and an orthographic projection drops the depth again. Image axes: x right,
y down, z towards the camera, all in pixels.

Two users, one model with two parameter sets:

* the motion templates (:func:`rotate_head`): an ellipsoid fitted to the jaw, turning about a
  pivot in the neck, so a nod also moves the face down a little, as a real one does;
* the chapter-3 puppet (:func:`rotate_sphere`): a quick sphere round the landmarks' box, turning
  about the front of the face, so the face stays where it was and only the turn shows.

The same head, read backwards, splits landmarks into pose and expression (:func:`fit_pose`):
the rigid rotation + scale + shift (:class:`Pose`) of the photo's head that best explains a
frame's landmarks, and what is left over is the expression (:func:`place` puts expression
landmarks, given in the photo's frame, on a posed head).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .landmarks import COUNT, JAW, LEFT_EYE, RIGHT_EYE, RIGID


@dataclass(frozen=True)
class HeadShape:
    """Ellipsoid semi-axes ``(x, y, z)`` and extra nose depth per landmark, in face units."""

    axes: tuple[float, float, float]
    nose: dict[int, float]

    def bumps(self) -> np.ndarray:
        """(68,) extra depth of every landmark (0 outside the nose), face units."""
        out = np.zeros(COUNT)
        for i, d in self.nose.items():
            out[i] = d
        return out


#: The templates' head, in units of half the jaw width: a face 1.6 x taller than wide.
FACE_HEAD = HeadShape(
    axes=(1.0, 1.6 * np.sqrt(2.0), 0.8),
    nose={27: 0.12, 28: 0.2, 29: 0.3, 30: 0.42, 31: 0.18, 32: 0.24, 33: 0.3, 34: 0.24, 35: 0.18},
)

#: The puppet's head, in units of the face size (the larger side of the landmarks' box).
SPHERE_HEAD = HeadShape(
    axes=(0.75, 0.75, 0.75),
    nose={27: 0.03, 28: 0.06, 29: 0.09, 30: 0.12, 31: 0.07, 32: 0.07, 33: 0.07, 34: 0.07, 35: 0.07},
)


def rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """3x3 rotation (degrees): pitch about the horizontal axis first, then yaw about the vertical,
    then roll about the view axis. Positive pitch lowers the chin (a nod), positive yaw turns the
    face to the image's right, positive roll tilts it clockwise."""
    p, y, r = np.radians([pitch, yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def lift(points: np.ndarray, centre: np.ndarray, unit: float, shape: HeadShape) -> np.ndarray:
    """(68, 2) landmarks -> (68, 3): the depth of the ellipsoid ``shape`` centred at ``centre``
    (x, y pixels), plus the nose; ``unit`` is the face unit in pixels."""
    pts = np.asarray(points, np.float64)
    ax, ay, az = (a * unit for a in shape.axes)
    u, v = (pts[:, 0] - centre[0]) / ax, (pts[:, 1] - centre[1]) / ay
    z = az * np.sqrt(np.clip(1.0 - u**2 - v**2, 0.0, None)) + shape.bumps() * unit
    return np.column_stack([pts, z])


def project(points_3d: np.ndarray, rot: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """(N, 2) orthographic image of (N, 3) points turned by ``rot`` (3x3) about ``pivot`` (3,)."""
    return ((points_3d - pivot) @ rot.T + pivot)[:, :2]


def face_frame(base: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (between the jaw ends, at eye height) and half-width (pixels) of the face."""
    jaw = np.asarray(base)[JAW]
    half = 0.5 * float(np.linalg.norm(jaw[-1] - jaw[0]))
    eyes = np.concatenate([base[RIGHT_EYE], base[LEFT_EYE]])
    centre = np.array([(jaw[0, 0] + jaw[-1, 0]) / 2, eyes[:, 1].mean()])
    return centre, max(half, 1e-6)


def head_points_3d(base: np.ndarray) -> np.ndarray:
    """Lift (68, 2) landmarks to (68, 3) on :data:`FACE_HEAD`; the jaw's ends have z ≈ 0."""
    centre, half = face_frame(base)
    return lift(base, centre, half, FACE_HEAD)


def rotate_head(base: np.ndarray, pitch, yaw, roll) -> np.ndarray:
    """Landmarks of the head rotated by per-frame angles (degrees), orthographic projection.

    The pivot is inside the head behind the face and a little below its centre (about where the
    neck turns it), so a nod also moves the face down a little, as a real one does.

    Args:
        base: (68, 2) neutral landmarks.
        pitch, yaw, roll: (T,) angles in degrees (scalars broadcast).

    Returns:
        (T, 68, 2) float32.
    """
    centre, half = face_frame(np.asarray(base))  # in the landmarks' dtype (float32 usually)
    pts = head_points_3d(np.asarray(base, np.float64))
    pivot = np.array([centre[0], centre[1] + 0.6 * half, -0.9 * half])
    pitch, yaw, roll = np.broadcast_arrays(*(np.atleast_1d(a) for a in (pitch, yaw, roll)))
    out = np.empty((len(pitch), len(pts), 2))
    for i, (p, y, r) in enumerate(zip(pitch, yaw, roll, strict=True)):
        out[i] = project(pts, rotation(p, y, r), pivot)
    return out.astype(np.float32)


def rotate_sphere(points: np.ndarray, size: float, yaw: float, pitch: float) -> np.ndarray:
    """(68, 2) landmarks turned on :data:`SPHERE_HEAD` by ``yaw`` then ``pitch`` (degrees).

    The sphere is centred on the landmarks' box, ``size`` pixels is the face unit; the pivot is
    the front of the sphere, so the face stays in place and only the turn shows. Returns float64.
    """
    pts = np.asarray(points, np.float64)
    if yaw == 0 and pitch == 0:
        return pts
    c = (pts.min(axis=0) + pts.max(axis=0)) / 2
    pivot = np.array([c[0], c[1], SPHERE_HEAD.axes[2] * size])
    rot = rotation(pitch, 0.0, 0.0) @ rotation(0.0, yaw, 0.0)
    return project(lift(pts, c, size, SPHERE_HEAD), rot, pivot)


# --------------------------------------------------------------------------------------------
# Pose fitting: the rigid part of a frame's landmarks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Pose:
    """A rigid head pose relative to the photo's: ``rot`` (3, 3), ``scale`` and ``shift`` (2,)
    in pixels, about the photo's face centre (:func:`face_frame`). Identity = the photo's pose."""

    rot: np.ndarray = field(default_factory=lambda: np.eye(3))
    scale: float = 1.0
    shift: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def linear(self) -> np.ndarray:
        """(2, 2) how the pose maps (x, y) offsets in the face plane: ``scale * rot[:2, :2]``."""
        return self.scale * self.rot[:2, :2]

    def turned(self, pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0) -> Pose:
        """This pose turned further by angles in degrees (as :func:`rotation`), in the camera's
        frame: ``yaw > 0`` turns the face to the image's right whatever the pose was."""
        return Pose(rotation(pitch, yaw, roll) @ self.rot, self.scale, self.shift)

    def angles(self) -> tuple[float, float, float]:
        """(pitch, yaw, roll) in degrees with ``rotation(pitch, yaw, roll) == rot``."""
        r = self.rot
        yaw = -np.arcsin(np.clip(r[2, 0], -1.0, 1.0))
        pitch = np.arctan2(-r[2, 1], r[2, 2])
        roll = np.arctan2(r[1, 0], r[0, 0])
        return float(np.degrees(pitch)), float(np.degrees(yaw)), float(np.degrees(roll))


def place(base: np.ndarray, points: np.ndarray, pose: Pose) -> np.ndarray:
    """(68, 2) landmarks ``points``, given in the frame of the photo's head ``base`` (68, 2),
    put on that head turned to ``pose``: each point takes its landmark's depth on ``base``'s
    head (:func:`head_points_3d`), turns about the face centre, is scaled and shifted, and is
    projected orthographically. ``place(base, points, Pose()) == points``; the map is affine in
    ``points``, so an expression offset ``d`` becomes ``d @ pose.linear().T``. Returns float64."""
    centre, _ = face_frame(np.asarray(base, np.float64))
    depth = head_points_3d(np.asarray(base, np.float64))[:, 2]
    q = np.column_stack([np.asarray(points, np.float64) - centre, depth])
    return pose.scale * (q @ pose.rot.T)[:, :2] + centre + pose.shift


def fit_pose(base: np.ndarray, points: np.ndarray) -> Pose:
    """The rigid pose of ``base``'s head that best explains ``points``.

    Least squares on the landmarks that move with the head only (:data:`landmarks.RIGID`:
    the jaw's ends, the nose, the eyes' corners) over pitch, yaw, roll, log scale and the 2-D
    shift, so an expression (a smile, a blink, an open mouth) leaves the pose where it is. Head
    turns made with :func:`rotate_head` are recovered exactly (any pivot is a shift).

    Args:
        base: (68, 2) the photo's landmarks (its neutral pose).
        points: (68, 2) one frame's landmarks in the same pixels.

    Returns:
        The :class:`Pose` with ``place(base, base, pose)[RIGID] ≈ points[RIGID]``.
    """
    from scipy.optimize import least_squares

    base = np.asarray(base, np.float64)
    target = np.asarray(points, np.float64)[list(RIGID)]
    centre, half = face_frame(base)
    depth = head_points_3d(base)[list(RIGID), 2]
    q = np.column_stack([base[list(RIGID)] - centre, depth]) / half  # face units: well scaled

    def residual(x: np.ndarray) -> np.ndarray:
        rot = rotation(*x[:3])
        moved = np.exp(x[3]) * (q @ rot.T)[:, :2] + x[4:6]
        return (moved - (target - centre) / half).ravel()

    start = np.zeros(6)
    start[4:6] = (target - centre).mean(axis=0) / half - q[:, :2].mean(axis=0)
    x = least_squares(residual, start, method="lm", xtol=1e-12, ftol=1e-12).x
    return Pose(rotation(*x[:3]), float(np.exp(x[3])), x[4:6] * half)


__all__ = [
    "FACE_HEAD",
    "SPHERE_HEAD",
    "HeadShape",
    "Pose",
    "face_frame",
    "fit_pose",
    "head_points_3d",
    "lift",
    "place",
    "project",
    "rotate_head",
    "rotate_sphere",
    "rotation",
]
