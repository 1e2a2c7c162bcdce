"""Deep Image Prior (Ulyanov, Vedaldi & Lempitsky, CVPR 2018): restore one photo, no training data.

The idea
--------
A randomly initialised convolutional encoder-decoder :math:`f_\\theta` maps a *fixed* random code
:math:`z` to an image. Fitting :math:`\\theta` by gradient descent so that :math:`f_\\theta(z)`
reproduces the damaged photo :math:`y` on its known pixels,

.. math:: \\theta^* = \\arg\\min_\\theta \\; \\lVert m \\odot (f_\\theta(z) - y) \\rVert^2,

restores it, because the *architecture* is the prior: convolutions, upsampling and skip
connections produce natural image structure (smooth regions, edges, repeated texture) long before
they can produce noise. The fit therefore goes through three phases: the output first becomes a
blurry version of the photo, then a sharp and clean one (PSNR against the clean photo peaks), then
the network starts reproducing the noise too (PSNR falls). Restoration = stopping in the middle.

* Denoising: ``m = 1`` everywhere; stop early (:func:`fit_image_prior` explains the rule).
* Inpainting (scratches, holes): ``m = 0`` on the unknown pixels, which therefore never enter the
  loss; the network fills them with whatever its structure prefers, i.e. the continuation of the
  surroundings.

Two tricks of the paper are used: the code is perturbed by small Gaussian noise at every step
(``input_noise``, regularisation), and the returned image is an exponential moving average (EMA)
of the outputs, which averages out the jitter of individual steps and makes the peak broad.

Shapes: images are float32 ``(H, W, 3)`` in [0, 1], masks ``(H, W, 1)`` (or ``(H, W)``) float32
with 1 = known pixel, 0 = unknown. ``H`` and ``W`` must be multiples of ``2**levels`` (16 for the
default 4 levels): use :func:`pad_to_multiple` and crop the result back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import keras
import numpy as np
import tensorflow as tf

from .config import pick
from .metrics import psnr

#: Channels of the code ``z`` (as in the paper).
CODE_CHANNELS = 32

#: Default channels of the four down/up levels, finest first. The paper uses 128 everywhere, which
#: costs ~10x more arithmetic per step; 32-64 keeps a 256x256 fit within minutes on a CPU.
DEFAULT_CHANNELS: tuple[int, ...] = (32, 32, 64, 64)


# --------------------------------------------------------------------------------------------
# Damage: noise and scratches
# --------------------------------------------------------------------------------------------


def damage(
    image: np.ndarray,
    noise_sigma: float = 0.1,
    scratches: int = 0,
    seed: int = 0,
    thickness: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate an old photo: additive Gaussian noise and thin bright scratches.

    Args:
        image: clean RGB ``(H, W, 3)`` in [0, 1].
        noise_sigma: standard deviation of the noise, in [0, 1] units (0.1 = 25.5 grey levels).
            The noisy image is clipped to [0, 1].
        scratches: number of random straight scratch lines (length 20-60% of the image size,
            any direction, whitish grey 0.85-1.0), drawn over the noise.
        seed: seed of the noise and of the scratches (same seed, same damage).
        thickness: width of the scratches in pixels; ``None``: ``max(1, min(H, W) // 128)``.

    Returns:
        ``(damaged, mask)``: float32 ``(H, W, 3)`` in [0, 1] and float32 ``(H, W, 1)`` with
        1 = known pixel, 0 = pixel under a scratch (its value is lost).
    """
    image = _check_image(image, "image")
    h, w = image.shape[:2]
    rng = np.random.default_rng(seed)
    damaged = image + rng.normal(0.0, noise_sigma, image.shape) if noise_sigma > 0 else image
    damaged = np.clip(damaged, 0.0, 1.0).astype(np.float32)
    lines = np.zeros((h, w), np.uint8)
    width = thickness or max(1, min(h, w) // 128)
    for _ in range(scratches):
        length = rng.uniform(0.2, 0.6) * min(h, w)
        angle = rng.uniform(0.0, np.pi)
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
        colour = rng.uniform(0.85, 1.0)
        scratch = np.zeros((h, w), np.uint8)
        cv2.line(scratch, (round(x0), round(y0)), (round(x1), round(y1)), 1, width, cv2.LINE_8)
        damaged[scratch > 0] = colour
        lines |= scratch
    mask = (1.0 - lines[..., None]).astype(np.float32)
    return damaged, mask


def estimate_noise_sigma(image: np.ndarray) -> float:
    """Standard deviation of the (white, Gaussian) noise of ``image``, in [0, 1] units.

    Donoho's robust wavelet estimator with the Haar wavelet: the finest diagonal detail
    ``(a - b - c + d) / 2`` of every 2x2 block has standard deviation ``sigma`` for white noise
    and is close to 0 on a clean photo except at edges; the median of its absolute value,
    divided by 0.6745 (the median of ``|N(0, 1)|``), ignores the edges and thin scratches.
    Averaged over the 3 channels. About 0.005-0.01 on clean photos; slightly below the true
    ``sigma`` when clipping to [0, 1] has removed part of the noise.
    """
    x = _check_image(image, "image").astype(np.float64)
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    a, b = x[0:h:2, 0:w:2], x[0:h:2, 1:w:2]
    c, d = x[1:h:2, 0:w:2], x[1:h:2, 1:w:2]
    detail = (a - b - c + d) / 2.0
    return float(np.mean(np.median(np.abs(detail), axis=(0, 1)) / 0.6745))


def pad_to_multiple(
    image: np.ndarray, multiple: int = 16, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pad ``image`` at the bottom and right to a multiple of ``multiple`` (mirror padding).

    The padding is marked *unknown* in the returned mask, so :func:`fit_image_prior` fills it
    without being told what is there. Crop the result back with ``restored[:H, :W]``.

    Returns:
        ``(padded (H', W', 3), mask (H', W', 1))`` with ``H' = ceil(H / multiple) * multiple``.
    """
    image = _check_image(image, "image")
    h, w = image.shape[:2]
    mask = np.ones((h, w, 1), np.float32) if mask is None else _check_mask(mask, (h, w))
    ph, pw = -h % multiple, -w % multiple
    padded = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="symmetric")
    padded_mask = np.pad(mask, ((0, ph), (0, pw), (0, 0)), mode="constant")
    return padded.astype(np.float32), padded_mask.astype(np.float32)


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------


def _check_size(height: int, width: int, levels: int) -> None:
    multiple = 2**levels
    if height % multiple or width % multiple or height < multiple or width < multiple:
        fit_h, fit_w = (
            max(multiple, -(-height // multiple) * multiple),
            max(multiple, -(-width // multiple) * multiple),
        )
        crop_h, crop_w = height // multiple * multiple, width // multiple * multiple
        crop = f"crop to {crop_h}x{crop_w} or " if crop_h and crop_w else ""
        raise ValueError(
            f"image size {height}x{width} (HxW) is not a multiple of {multiple} = 2**levels "
            f"(levels={levels}): {crop}pad to {fit_h}x{fit_w}, e.g. with pad_to_multiple(image, "
            f"{multiple}), and crop the result back with [:{height}, :{width}]"
        )


def build_prior_network(
    height: int,
    width: int,
    channels: int | Sequence[int] = DEFAULT_CHANNELS,
    levels: int = 4,
    skip_channels: int = 4,
    batch_norm: bool = True,
    seed: int = 0,
) -> keras.Model:
    """The hourglass with skip connections of the paper (its "skip" network), randomly initialised.

    Level ``i`` (``i = 0`` at full resolution) has:

    * down: 3x3 conv stride 2 -> BN -> LeakyReLU(0.2) -> 3x3 conv -> BN -> LeakyReLU, to
      ``H / 2**(i+1)``;
    * skip: 1x1 conv to ``skip_channels`` -> BN -> LeakyReLU, at ``H / 2**i``;
    * up: bilinear x2 upsampling of the level below -> concatenate the skip -> BN -> 3x3 conv ->
      BN -> LeakyReLU -> 1x1 conv -> BN -> LeakyReLU.

    A final 1x1 conv and a sigmoid give RGB in [0, 1].

    Args:
        height, width: image size, multiples of ``2**levels``.
        channels: channels of each level (finest first), or one number for all levels.
        levels: number of down/up levels (4: the bottleneck is ``H / 16``).
        skip_channels: channels of each skip connection (0: none, a plain hourglass).
        batch_norm: use BatchNormalization (always called in training mode, i.e. normalised with
            the statistics of the one image, as in the paper).
        seed: seed of the weight initialisation.

    Returns:
        A Keras functional model ``(1, H, W, CODE_CHANNELS) -> (1, H, W, 3)``.

    Raises:
        ValueError: when the size is not a multiple of ``2**levels`` (says what to crop/pad to).
    """
    _check_size(height, width, levels)
    widths = [channels] * levels if isinstance(channels, int) else list(channels)
    if len(widths) != levels:
        raise ValueError(f"channels has {len(widths)} entries, expected one per level ({levels})")
    counter = iter(range(1_000_000))

    def conv(x, filters: int, size: int, strides: int = 1):
        init = keras.initializers.HeUniform(seed=seed * 1000 + next(counter))
        return keras.layers.Conv2D(
            filters, size, strides=strides, padding="same", kernel_initializer=init
        )(x)

    def norm_act(x, act: bool = True):
        if batch_norm:
            x = keras.layers.BatchNormalization()(x)
        return keras.layers.LeakyReLU(negative_slope=0.2)(x) if act else x

    code = keras.Input((height, width, CODE_CHANNELS), batch_size=1, name="code")
    x, skips = code, []
    for filters in widths:
        skips.append(norm_act(conv(x, skip_channels, 1)) if skip_channels else None)
        x = norm_act(conv(x, filters, 3, strides=2))
        x = norm_act(conv(x, filters, 3))
    for filters, skip in zip(reversed(widths), reversed(skips), strict=True):
        x = keras.layers.UpSampling2D(2, interpolation="bilinear")(x)
        if skip is not None:
            x = keras.layers.Concatenate()([skip, x])
        x = norm_act(x, act=False)
        x = norm_act(conv(x, filters, 3))
        x = norm_act(conv(x, filters, 1))
    rgb = keras.layers.Activation("sigmoid", name="rgb")(conv(x, 3, 1))
    return keras.Model(code, rgb, name="deep_image_prior")


def random_code(height: int, width: int, seed: int = 0) -> np.ndarray:
    """The fixed input code ``z``: uniform noise in [0, 0.1), float32 ``(1, H, W, 32)``."""
    rng = np.random.default_rng(seed)
    return (0.1 * rng.random((1, height, width, CODE_CHANNELS))).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


def masked_loss(output, target, mask, kind: str = "l2") -> tf.Tensor:
    """Mean squared (``"l2"``) or absolute (``"l1"``) error over the known pixels only.

    Args:
        output, target: ``(B, H, W, 3)`` tensors.
        mask: ``(B, H, W, 1)``, 1 = known; unknown pixels contribute nothing (not even a
            gradient), and the mean is taken over the known values, so the loss of a perfect
            fit is 0 whatever the fraction of unknown pixels.

    Returns:
        float32 scalar.
    """
    if kind not in ("l1", "l2"):
        raise ValueError(f"kind must be 'l1' or 'l2', got {kind!r}")
    diff = (output - target) * mask
    err = tf.square(diff) if kind == "l2" else tf.abs(diff)
    known = tf.reduce_sum(mask) * tf.cast(tf.shape(output)[-1], tf.float32)
    return tf.reduce_sum(err) / tf.maximum(known, 1.0)


@dataclass
class PriorResult:
    """What :func:`fit_image_prior` found. Images are float32 ``(H, W, 3)`` in [0, 1].

    Attributes:
        image: the restoration: the EMA output at ``step``, chosen without the clean photo.
        step: the step (number of updates done) where the stopping rule chose ``image``.
        stopped_by: ``"discrepancy"`` (the rule fired) or ``"steps"`` (it never did; ``image``
            is then the EMA output after the last step).
        final: the EMA output after the last step run (``image`` if the fit ended at the stop).
        history: one dict per check (every ``every`` steps, at ``step`` and at the end):
            ``step``, ``loss`` (training loss of that step), ``mse`` (mean squared residual of
            the EMA output against the damaged photo on its known pixels), and with a reference
            ``psnr`` (EMA output) and ``psnr_raw`` (the raw output of that step), in dB.
        noise_sigma: the noise level the rule used (given or estimated).
        psnr: PSNR of ``image`` against the reference (``None`` without one).
        best_image, best_step, best_psnr: the best EMA output among the checks by PSNR against
            the reference, the "oracle" stop a user without the clean photo cannot make
            (``None`` without a reference). Compare it to ``image`` to see what the rule costs.
        seconds_per_step: wall time per step (tracing of the first step excluded).
    """

    image: np.ndarray
    step: int
    stopped_by: str
    final: np.ndarray
    history: list[dict] = field(default_factory=list)
    noise_sigma: float = 0.0
    psnr: float | None = None
    best_image: np.ndarray | None = None
    best_step: int | None = None
    best_psnr: float | None = None
    seconds_per_step: float = 0.0


def _check_image(image, name: str) -> np.ndarray:
    x = np.asarray(image, dtype=np.float32)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"{name} must be an RGB image (H, W, 3) in [0, 1], got shape {x.shape}")
    return x


def _check_mask(mask, size: tuple[int, int]) -> np.ndarray:
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim == 2:
        m = m[..., None]
    if m.shape != (*size, 1):
        raise ValueError(f"mask must be (H, W, 1) or (H, W) with H, W = {size}, got {m.shape}")
    if not np.any(m > 0):
        raise ValueError("mask marks no pixel as known (1): there is nothing to fit")
    return m


def _make_train_step(model, optimizer, code, target, mask, kind, input_noise, ema_decay, seed):
    """A ``tf.function`` doing one Adam step.

    Returns ``(train_step, average)``: ``train_step()`` returns ``(loss, raw output, average,
    mse of the average on the known pixels)``; ``average()`` the current EMA ``(1, H, W, 3)``.
    The EMA is bias-corrected like Adam's moments: ``m_t = d m_{t-1} + (1 - d) f_t`` from
    ``m_0 = 0``, divided by ``1 - d**t``, so it is a weighted mean of the outputs so far in
    which the poor first outputs soon weigh nothing.
    """
    noise = tf.random.Generator.from_seed(seed + 1)
    ema = tf.Variable(tf.zeros_like(target), trainable=False)
    count = tf.Variable(0.0, trainable=False)
    optimizer.build(model.trainable_variables)

    def average():
        return ema / (1.0 - ema_decay**count) if ema_decay > 0 else ema

    @tf.function
    def train_step():
        z = code + input_noise * noise.normal(tf.shape(code)) if input_noise > 0 else code
        with tf.GradientTape() as tape:
            out = model(z, training=True)
            loss = masked_loss(out, target, mask, kind)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        ema.assign(ema_decay * ema + (1.0 - ema_decay) * out)
        count.assign_add(1.0)
        mean = average()
        return loss, out, mean, masked_loss(mean, target, mask, "l2")

    return train_step, average


def fit_image_prior(
    damaged: np.ndarray,
    mask: np.ndarray | None = None,
    steps: int | None = None,
    lr: float = 0.01,
    seed: int = 0,
    reference: np.ndarray | None = None,
    every: int | None = None,
    patience: int | None = 0,
    progress: bool = True,
    noise_sigma: float | None = None,
    loss: str = "l2",
    input_noise: float = 1.0 / 30.0,
    ema_decay: float = 0.99,
    channels: int | Sequence[int] = DEFAULT_CHANNELS,
    levels: int = 4,
    batch_norm: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> PriorResult:
    """Restore one damaged photo with the Deep Image Prior, stopping without the clean photo.

    Fits :func:`build_prior_network` (seeded) so that ``f(z + noise)`` matches ``damaged`` on the
    known pixels (``mask == 1``) with Adam, one ``tf.function`` step at a time, and keeps an
    exponential moving average (EMA) of the outputs, which is what is returned.

    The stopping rule (Morozov's discrepancy principle): stop at the first step where the mean
    squared residual of the EMA output on the known pixels is at most ``noise_sigma**2``:

    .. math:: \\frac{1}{|m|} \\lVert m \\odot (\\bar f - y) \\rVert^2 \\le \\sigma^2

    Why: if ``y = x + n`` with noise of variance ``sigma**2``, a perfect restoration ``x`` has
    exactly that residual (``E|y - x|^2 = sigma^2`` per value). A residual above it means the
    output still misses image content; going below it is only possible by reproducing part of
    the noise (``|y - f|^2 = |x - f|^2 + sigma^2 - 2 <n, f - x>``), which is what the network does
    after its PSNR peak. So the rule stops around the peak without looking at the clean photo;
    it needs only the noise level, which is estimated from the photo
    (:func:`estimate_noise_sigma`) when not given.

    Caveats. The rule is as good as ``noise_sigma``: the residual falls slowly near the peak, so
    a 5% error on sigma moves the stop by a few hundred steps (the EMA keeps the PSNR peak broad,
    so this costs a fraction of a dB). Clipping to [0, 1] removes part of the noise in dark and
    bright regions: noise of nominal sigma 0.1 on the portrait has an RMS of 0.093, so passing the
    nominal 0.1 makes the rule fire early (the safe side: a slightly smoother image), while the
    estimate (0.090 at 256 px) is close to the truth. On tiny or very textured images the estimate
    is too high (0.103 at 64 px) and the rule fires early too. Without noise (scratches only) the
    floor is the photo's own grain, ~0.01**2: the fit runs (almost) all ``steps``, and that is
    right, since there is no noise to overfit and more steps only sharpen.
    Args:
        damaged: the photo to restore, ``(H, W, 3)`` in [0, 1]; ``H, W`` multiples of
            ``2**levels`` (see :func:`pad_to_multiple`).
        mask: ``(H, W, 1)`` or ``(H, W)``, 1 = known, 0 = unknown (scratch, hole); ``None``: all
            known.
        steps: maximum number of Adam steps (default 2000, 150 in quick mode).
        lr: Adam learning rate.
        seed: seed of the weights, of the code ``z`` and of the perturbation noise.
        reference: the clean photo, if known (to teach, never used to stop): PSNR of the EMA and
            raw outputs is recorded at every check and the best check is kept as ``best_*``.
        every: steps between two checks (history entries); default 25, 10 in quick mode.
        patience: checks to keep training after the rule fired, e.g. to watch the PSNR fall;
            ``0``: end at once; ``None``: always run all ``steps``.
        progress: show a tqdm progress bar.
        noise_sigma: noise standard deviation of ``damaged`` in [0, 1] units; ``None``: estimate.
        loss: ``"l2"`` (the paper's) or ``"l1"`` on the known pixels.
        input_noise: standard deviation of the Gaussian noise added to ``z`` at every step.
        ema_decay: weight of the past in the EMA of the outputs (0: no averaging).
        channels, levels, batch_norm: the network, see :func:`build_prior_network`.
        on_step: called after every step as ``on_step(step, seconds)``, ``seconds`` being the
            wall time since the first step ended (that step includes the tracing), e.g. to
            announce how long the fit will take once a few steps are timed.

    Returns:
        A :class:`PriorResult`.

    Raises:
        ValueError: wrong shapes, or a size that is not a multiple of ``2**levels``.
    """
    from tqdm.auto import tqdm

    damaged, mask, reference = _check_inputs(damaged, mask, reference)
    if loss not in ("l1", "l2"):
        raise ValueError(f"loss must be 'l1' or 'l2', got {loss!r}")
    h, w = damaged.shape[:2]
    model = build_prior_network(
        h, w, channels=channels, levels=levels, batch_norm=batch_norm, seed=seed
    )
    steps = pick(2000, 150) if steps is None else int(steps)
    every = max(1, pick(25, 10) if every is None else int(every))
    sigma = estimate_noise_sigma(damaged) if noise_sigma is None else float(noise_sigma)
    train_step, average = _make_train_step(
        model,
        keras.optimizers.Adam(learning_rate=lr),
        tf.constant(random_code(h, w, seed)),
        tf.constant(damaged[None]),
        tf.constant(mask[None]),
        loss,
        float(input_noise),
        float(ema_decay),
        seed,
    )
    monitor = _Monitor(sigma**2, reference, patience)
    bar = tqdm(range(1, steps + 1), desc="deep image prior", disable=not progress, leave=False)
    start, done = time.perf_counter(), 0
    for step in bar:
        loss_value, out, mean, mse = train_step()
        if step == 1:
            start = time.perf_counter()  # the first step includes tracing and graph optimisation
        done = step
        if on_step is not None:
            on_step(step, time.perf_counter() - start)
        fired = monitor.fires(float(mse))
        if fired or step % every == 0 or step == steps:
            end = monitor.record(step, float(loss_value), float(mse), out, mean, fired)
            bar.set_postfix(monitor.postfix())
            if end:
                break
    bar.close()
    return monitor.result(
        average().numpy()[0], done, sigma, (time.perf_counter() - start) / max(done - 1, 1)
    )


def _check_inputs(damaged, mask, reference) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validated float32 ``(damaged (H, W, 3), mask (H, W, 1), reference or None)``."""
    damaged = _check_image(damaged, "damaged")
    size = damaged.shape[:2]
    mask = np.ones((*size, 1), np.float32) if mask is None else _check_mask(mask, size)
    if reference is not None:
        reference = _check_image(reference, "reference")
        if reference.shape != damaged.shape:
            raise ValueError(f"reference {reference.shape} and damaged {damaged.shape} differ")
    return damaged, mask, reference


class _Monitor:
    """Bookkeeping of one fit: the history, the stopping rule, the best check by PSNR."""

    def __init__(self, floor: float, reference: np.ndarray | None, patience: int | None):
        self.floor, self.reference, self.patience = floor, reference, patience
        self.history: list[dict] = []
        self.stop_step: int | None = None
        self.stop_image: np.ndarray | None = None
        self.best: dict = {"psnr": None, "step": None, "image": None}
        self.checks_after_stop = 0

    def fires(self, mse: float) -> bool:
        """True the first time the EMA residual reaches the noise floor (the discrepancy rule)."""
        return self.stop_step is None and mse <= self.floor

    def record(self, step: int, loss: float, mse: float, out, mean, fired: bool) -> bool:
        """Append a history entry; returns True when the fit should end (patience used up)."""
        current = mean.numpy()[0]
        entry = {"step": step, "loss": loss, "mse": mse}
        if self.reference is not None:
            entry["psnr"] = psnr(current, self.reference)
            entry["psnr_raw"] = psnr(out.numpy()[0], self.reference)
            if self.best["psnr"] is None or entry["psnr"] > self.best["psnr"]:
                self.best = {"psnr": entry["psnr"], "step": step, "image": current}
        self.history.append(entry)
        if fired:
            self.stop_step, self.stop_image = step, current
        elif self.stop_step is not None:
            self.checks_after_stop += 1
        stopped = self.stop_step is not None and self.patience is not None
        return stopped and self.checks_after_stop >= self.patience

    def postfix(self) -> dict:
        """The last entry, short, for the progress bar."""
        last = self.history[-1]
        shown = {"loss": f"{last['loss']:.4f}"}
        if "psnr" in last:
            shown["psnr"] = f"{last['psnr']:.2f}"
        return shown

    def result(self, final: np.ndarray, done: int, sigma: float, per_step: float) -> PriorResult:
        fired = self.stop_step is not None
        image = self.stop_image if fired else final
        return PriorResult(
            image=image,
            step=self.stop_step if fired else done,
            stopped_by="discrepancy" if fired else "steps",
            final=final,
            history=self.history,
            noise_sigma=sigma,
            psnr=None if self.reference is None else psnr(image, self.reference),
            best_image=self.best["image"],
            best_step=self.best["step"],
            best_psnr=self.best["psnr"],
            seconds_per_step=per_step,
        )
