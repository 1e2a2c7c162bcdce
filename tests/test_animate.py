"""Animator: renderers, motion transfer, streaming, paste-back, templates, saving."""

import numpy as np
import pytest

from didlearn import animate, data, faces
from didlearn.composite import compose_crop
from didlearn.errors import NoFaceFoundError, OutputExistsError


@pytest.fixture(scope="module")
def photo():
    return data.sample_portrait()


@pytest.fixture(scope="module")
def driving():
    return data.read_video(data.sample_driving_video(), max_frames=12).frames


@pytest.fixture(scope="module")
def animator(photo):
    return animate.Animator(photo, method="thin_plate", progress=False)


def test_the_face_is_cropped_and_its_landmarks_follow(animator):
    assert animator.crop.image.shape == (256, 256, 3)
    assert animator.source_kp.shape == (68, 2)
    assert ((animator.source_kp > 0) & (animator.source_kp < 255)).all()
    assert animator.frame_size == (512, 512)


@pytest.mark.parametrize("method", ["still", "similarity", "piecewise_affine", "thin_plate"])
def test_no_motion_gives_back_the_crop(animator, method):
    ks = animator.source_kp
    motion = animate.make_renderer(method)(animator.crop.image, ks, np.stack([ks, ks]))
    assert motion.flow.shape == (2, 256, 256, 2) and motion.flow.dtype == np.float32
    out = compose_crop(animator.crop.image, motion)
    assert out.shape == (2, 256, 256, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, np.stack([animator.crop.image] * 2), atol=2e-3)


@pytest.mark.parametrize("method", animate.renderer_names())
def test_a_still_target_gives_back_the_photo_at_full_resolution(photo, method):
    """Frame 0 of a relative run asks for the photo's own landmarks: every renderer, the model
    included, must give back the photo itself, bit for bit, at its own size."""
    anim = animate.Animator(photo, method=method, progress=False)
    frames = list(anim.animate_targets(np.stack([anim.source_kp] * 2)))
    assert all(f.shape == photo.shape and np.array_equal(f, photo) for f in frames)


@pytest.mark.parametrize("method", ["similarity", "piecewise_affine", "thin_plate"])
def test_renderers_move_the_keypoints_where_asked(animator, method):
    crop, ks = animator.crop.image, animator.source_kp
    kp = ks + np.array([6.0, -4.0], np.float32)  # the whole face moves right and up
    out = compose_crop(crop, animate.make_renderer(method)(crop, ks, kp[None]))[0]
    nose = ks[30].round().astype(int)
    moved = (nose + [6, -4]).astype(int)
    patch = crop[nose[1] - 8 : nose[1] + 8, nose[0] - 8 : nose[0] + 8]
    there = out[moved[1] - 8 : moved[1] + 8, moved[0] - 8 : moved[0] + 8]
    assert np.abs(there - patch).mean() < 0.02
    assert np.abs(out[nose[1] - 8 : nose[1] + 8, nose[0] - 8 : nose[0] + 8] - patch).mean() > 0.02


@pytest.mark.parametrize("scale", [3.0, 0.3])
def test_photos_much_larger_and_smaller_than_the_crop(photo, scale):
    """Output frames have the photo's size; the motion lands where it was asked in the photo."""
    import cv2

    big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    landmarks = faces.face_landmarks(photo) * scale
    anim = animate.Animator(big, method="thin_plate", landmarks=landmarks, progress=False)
    assert anim.frame_size == (big.shape[1], big.shape[0])
    shift = np.array([10.0, 0.0], np.float32) * scale  # photo pixels
    kp = anim.crop.to_crop(landmarks + shift)
    frame = next(anim.animate_targets(kp[None]))
    assert frame.shape == big.shape
    nose = np.round(landmarks[30]).astype(int)
    r = max(int(4 * scale), 2)
    before = big[nose[1] - r : nose[1] + r, nose[0] - r : nose[0] + r]
    at = nose + np.round(shift).astype(int)
    after = frame[at[1] - r : at[1] + r, at[0] - r : at[0] + r]
    assert np.abs(after - before).mean() < 0.25 * np.abs(before - before.mean()).mean() + 0.01
    far = (slice(0, max(int(10 * scale), 3)), slice(0, max(int(10 * scale), 3)))
    assert np.array_equal(frame[far], big[far])  # outside the crop: the photo's own pixels


def test_model_method_needs_models():
    with pytest.raises(ValueError, match="trained models"):
        animate.make_renderer("model")
    with pytest.raises(ValueError, match="unknown method"):
        animate.make_renderer("magic")


def test_relative_transfer_and_intensity(animator, driving):
    ks = animator.source_kp
    kd0 = faces.face_landmarks(driving[0])
    kd = kd0 + np.array([3.0, 0.0], np.float32)
    np.testing.assert_allclose(animator.transfer(kd0, kd0), ks, atol=1e-4)
    moved = animator.transfer(kd, kd0) - ks
    assert np.allclose(moved[:, 1], 0, atol=1e-4) and (moved[:, 0] > 3).all()  # photo face larger
    animator.intensity = 0.5
    try:
        np.testing.assert_allclose(animator.transfer(kd, kd0) - ks, moved / 2, atol=1e-4)
    finally:
        animator.intensity = 1.0


def test_a_driving_video_streams_through(animator, driving, photo):
    consumed = []

    def frames():
        for f in driving:
            consumed.append(1)
            yield f

    stream = animator.animate(frames())
    first = next(stream)
    assert len(consumed) <= animator.batch + 1  # lazy: one batch in flight, not the whole video
    rest = list(stream)
    assert len(rest) + 1 == len(driving)
    assert first.shape == photo.shape
    # the first driving frame is the reference: the photo comes back unchanged
    assert np.array_equal(first, photo)
    assert max(np.abs(f - photo).max() for f in rest) > 0.05  # and then it moves
    rep = animator.fps_report()
    assert rep["fps"] > 0 and {"track_ms", "render_ms", "paste_ms"} <= set(rep)


def test_leading_frames_without_a_face_are_kept_still(photo, driving):
    anim = animate.Animator(photo, method="thin_plate", paste_back=False, progress=False)
    blank = np.full((3, *driving.shape[1:]), 0.5, np.float32)
    out = list(anim.animate(np.concatenate([blank, driving[:5]])))
    assert len(out) == 8 and out[0].shape == (256, 256, 3)
    np.testing.assert_allclose(out[0], anim.crop.image, atol=2e-3)
    assert anim.bridged >= 3
    with pytest.raises(NoFaceFoundError, match="driving frames"):
        list(anim.animate(blank))


def test_templates_relative_and_absolute(photo):
    rel = animate.Animator(photo, method="thin_plate", progress=False)
    kps = rel.template_keypoints("nod", duration=1.0, fps=10)
    assert kps.shape == (10, 68, 2)
    np.testing.assert_allclose(kps[0], rel.source_kp, atol=1e-4)
    ab = animate.Animator(photo, method="thin_plate", relative=False, progress=False)
    kpa = ab.template_keypoints("nod", duration=1.0, fps=10)
    # absolute: the canonical (symmetrised) face shape, not the photo's own
    assert np.abs(kpa[0] - ab.source_kp).mean() > 0.2
    frames = list(rel.animate_template("blink", duration=0.5, fps=10))
    assert len(frames) == 5 and frames[0].shape == photo.shape


def test_photo_without_a_face():
    with pytest.raises(NoFaceFoundError):
        animate.Animator(np.full((200, 200, 3), 0.3, np.float32), method="still")


def test_save_writes_mp4_and_gif_or_nothing(tmp_path, animator):
    frames = list(animator.animate_template("smile", duration=0.4, fps=10))
    out = tmp_path / "a.mp4"
    paths = animate.save(iter(frames), out, 10, gif=tmp_path / "a.gif")
    assert [p.name for p in paths] == ["a.mp4", "a.gif"]
    v = data.read_video(out)
    assert v.frames.shape == (4, 512, 512, 3)

    def must_not_run():
        raise AssertionError("frames were computed although the output exists")
        yield

    with pytest.raises(OutputExistsError, match="overwrite=True"):
        animate.save(must_not_run(), out, 10)
    (tmp_path / "b.gif").write_bytes(b"x")
    with pytest.raises(OutputExistsError):
        animate.save(must_not_run(), tmp_path / "b.mp4", 10, gif=tmp_path / "b.gif")
    assert not (tmp_path / "b.mp4").exists()


# --------------------------------------------------------------------------------------------
# Widget callbacks (didlearn.widgets.animate), without a browser
# --------------------------------------------------------------------------------------------


def test_preview_callback_templates_video_and_errors(photo):
    from didlearn.widgets.animate import AnimateState, draw_preview, preview

    state = AnimateState(method="thin_plate")
    frames = preview(photo, "turn", state, intensity=1.0, relative=True, frames=4)
    assert len(frames) == 4 and frames[0].shape == (256, 256, 3)
    assert state.keypoints.shape == (4, 68, 2) and "turn" in state.message
    animator = state.animator
    still = preview(photo, "turn", state, intensity=0.0)
    assert state.animator is animator  # built once per photo
    np.testing.assert_allclose(still[-1], animator.crop.image, atol=2e-3)
    absolute = preview(photo, "turn", state, relative=False)
    assert np.abs(state.keypoints[0] - animator.source_kp).mean() > 0.2
    assert len(absolute) == 5
    video = preview(photo, data.sample_driving_video(), state, frames=3, duration=1.0)
    assert len(video) == 3
    fig = draw_preview(state)
    assert len(fig.axes) == 3

    empty = preview(np.full((120, 120, 3), 0.5, np.float32), "nod", AnimateState("still"))
    assert empty == []


def test_animate_upload_callback(tmp_path, photo):
    from didlearn.widgets.animate import animate_upload
    from didlearn.widgets.upload import UploadState

    path, message = animate_upload(UploadState(), folder=tmp_path)
    assert path is None and "photo" in message
    state = UploadState(image=photo)
    path, message = animate_upload(state, "blink", 0.4, folder=tmp_path, method="thin_plate")
    assert path.is_file() and "10 frames" in message
    state.video = data.sample_driving_video()
    path, message = animate_upload(state, folder=tmp_path, max_frames=6, method="thin_plate")
    assert data.video_info(path).n_frames == 6
    state.image = np.full((120, 120, 3), 0.5, np.float32)
    path, message = animate_upload(state, folder=tmp_path, method="thin_plate")
    assert path is None and "No face" in message


def test_the_model_renderer_pads_short_batches_instead_of_retracing(photo):
    """A new batch size would retrace the compiled model: short batches are padded, then cut."""
    from didlearn import generator

    anim = animate.Animator(photo, method="model", progress=False)
    kps = anim.template_keypoints("nod", duration=1.2, fps=10)[:11]
    full = anim.render(kps[:8])
    compiled = generator.compiled_renderer(anim.models)
    traces = compiled.experimental_get_tracing_count()
    short = anim.render(kps[5:8])
    rest = anim.render(kps[8:])
    assert short.shape[0] == 3 and rest.shape[0] == 3
    assert compiled.experimental_get_tracing_count() == traces  # no new trace for 3 frames
    np.testing.assert_allclose(short, full[5:8], atol=1e-5)


def test_fine_tuning_asks_for_the_model(photo):
    from didlearn.errors import UsageError

    with pytest.raises(UsageError, match="--method model"):
        animate.Animator(photo, method="thin_plate", fine_tune=2, progress=False)


def test_the_model_refuses_a_crop_size_it_was_not_trained_for(photo):
    from didlearn.errors import UsageError

    with pytest.raises(UsageError, match="renders 256-pixel face crops, not 128"):
        animate.Animator(photo, method="model", size=128, progress=False)
    assert animate.Animator(photo, method="thin_plate", size=128, progress=False).crop.size == 128


def test_a_uint8_photo_is_read_as_the_floats_it_stands_for(photo):
    as_bytes = animate.Animator(data.to_uint8(photo), method="still", progress=False)
    as_floats = animate.Animator(photo, method="still", progress=False)
    assert as_bytes.photo.dtype == np.float32 and as_bytes.photo.max() <= 1.0
    np.testing.assert_allclose(as_bytes.source_kp, as_floats.source_kp, atol=1.0)
