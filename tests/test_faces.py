"""Faces: detection on the sample portrait, landmarks, crop/paste-back, tracking and smoothing."""

import numpy as np
import pytest
import skimage.data

from didlearn import faces
from didlearn.data import read_video, sample_driving_video, sample_portrait
from didlearn.errors import NoFaceFoundError


@pytest.fixture(scope="module")
def portrait():
    return sample_portrait()


@pytest.fixture(scope="module")
def landmarks(portrait):
    return faces.face_landmarks(portrait)


@pytest.fixture(scope="module")
def clip():
    return read_video(sample_driving_video()).frames


def test_portrait_best_face_is_the_astronaut_not_the_patch(portrait):
    found = faces.detect_faces(portrait)
    best = found[0]
    x0, y0, x1, y1 = best.box
    # Eileen Collins' face spans about x 175..265, y 76..166 (checked on a plot); the mission
    # patch on the suit is around (170, 380).
    assert x0 < 222 < x1 and y0 < 125 < y1
    assert 60 < best.size < 140
    assert all(f.box[1] > 250 for f in found[1:])


def test_landmarks_lie_on_the_face(portrait, landmarks):
    assert landmarks.shape == (68, 2) and landmarks.dtype == np.float32
    right_eye = landmarks[faces.RIGHT_EYE].mean(axis=0)
    left_eye = landmarks[faces.LEFT_EYE].mean(axis=0)
    mouth = landmarks[faces.MOUTH].mean(axis=0)
    assert right_eye[0] < left_eye[0]  # subject's right eye is on the image's left
    assert mouth[1] > right_eye[1] + 20 and mouth[1] > left_eye[1] + 20
    assert 25 < left_eye[0] - right_eye[0] < 60
    nose = landmarks[30]
    assert 200 < nose[0] < 250 and 100 < nose[1] < 150


def test_choosing_another_face_or_a_missing_one(portrait):
    found = faces.detect_faces(portrait)
    other = faces.face_landmarks(portrait, found[-1])
    assert other.mean(axis=0)[1] > 250 or len(found) == 1
    with pytest.raises(NoFaceFoundError, match="only"):
        faces.face_landmarks(portrait, face=len(found))


@pytest.mark.parametrize("kind", ["coffee", "flat"])
def test_no_face_raises_with_advice(kind):
    image = (
        (skimage.data.coffee() / 255.0).astype(np.float32)
        if kind == "coffee"
        else np.full((200, 300, 3), 0.5, np.float32)
    )
    assert faces.detect_faces(image) == []
    with pytest.raises(NoFaceFoundError, match="larger.*frontal.*lit"):
        faces.face_landmarks(image)


def test_crop_maps_points_both_ways(portrait, landmarks):
    crop = faces.crop_face(portrait, landmarks, size=256)
    assert crop.image.shape == (256, 256, 3) and crop.image.dtype == np.float32
    inside = crop.to_crop(landmarks)
    assert inside.min() > 30 and inside.max() < 226  # the face sits well inside its crop
    np.testing.assert_allclose(crop.to_full(inside), landmarks, atol=1e-3)
    # the crop's pixel at a mapped landmark shows the photo's pixel there (smooth area: cheek)
    u, v = np.round(inside[2]).astype(int)
    x, y = crop.to_full(np.array([u, v], np.float32))
    np.testing.assert_allclose(crop.image[v, u], portrait[int(round(y)), int(round(x))], atol=0.06)


def test_paste_back_keeps_far_pixels_and_places_the_crop(portrait, landmarks):
    crop = faces.crop_face(portrait, landmarks, size=128)
    black = np.zeros_like(crop.image)
    out = faces.paste_back(portrait, black, crop, feather=0.1)
    assert out.shape == portrait.shape
    corners = crop.to_full(np.array([[0, 0], [127, 127]], np.float32))
    (x0, y0), (x1, y1) = np.floor(corners[0]) - 1, np.ceil(corners[1]) + 1
    far = np.ones(portrait.shape[:2], bool)
    far[int(y0) : int(y1) + 1, int(x0) : int(x1) + 1] = False
    assert np.array_equal(out[far], portrait[far])
    centre = crop.to_full(np.array([64, 64], np.float32)).round().astype(int)
    assert np.all(out[centre[1], centre[0]] == 0)
    # pasting the unchanged crop back changes the photo only by resampling blur
    same = faces.paste_back(portrait, crop.image, crop)
    assert np.abs(same - portrait).mean() < 0.01


def test_one_euro_filter_keeps_still_points_and_follows_steps():
    filt = faces.OneEuroFilter(fps=30)
    pts = np.array([[10.0, 20.0], [30.0, 40.0]])
    for _ in range(5):
        np.testing.assert_allclose(filt(pts), pts, atol=1e-5)
    moved = [filt(pts + 5.0, scale=100.0) for _ in range(60)]
    assert np.abs(moved[0] - pts).max() < 4.0  # lags at first ...
    np.testing.assert_allclose(moved[-1], pts + 5.0, atol=0.05)  # ... then arrives


def test_tracking_mostly_tracks_and_smoothing_lowers_jitter(clip):
    raw = faces.track_landmarks(clip, smoothing=False, fps=29.97)
    smooth = faces.track_landmarks(clip, smoothing=True, fps=29.97)
    assert raw.landmarks.shape == (len(clip), 68, 2)
    assert raw.bridged == 0 and raw.found.all()
    assert raw.detections < len(clip) // 4  # the detector is the exception, not the rule
    j_raw, j_smooth = faces.jitter(raw.landmarks), faces.jitter(smooth.landmarks)
    assert j_smooth < 0.6 * j_raw
    # smoothing must not drag the landmarks away from the face
    assert np.abs(smooth.landmarks - raw.landmarks).mean() < 1.5


def test_tracking_follows_the_detector(clip):
    track = faces.track_landmarks(clip[:30:5], smoothing=False)
    for frame, lm in zip(clip[:30:5], track.landmarks, strict=True):
        direct = faces.face_landmarks(frame)
        assert np.abs(direct - lm).mean() < 2.0


def test_frames_without_a_face_are_bridged(clip):
    frames = list(clip[:12])
    blank = np.full_like(frames[0], 0.4)
    frames[5] = frames[6] = blank
    track = faces.track_landmarks(frames, smoothing=False)
    assert track.bridged == 2 and not track.found[5] and not track.found[6]
    lm = track.landmarks
    np.testing.assert_allclose(lm[5], lm[4] + (lm[7] - lm[4]) / 3, atol=1e-3)


def test_tracker_without_any_face_raises():
    tracker = faces.LandmarkTracker()
    with pytest.raises(NoFaceFoundError):
        tracker.update(np.full((144, 176, 3), 0.5, np.float32))
    with pytest.raises(NoFaceFoundError):
        faces.track_landmarks(np.zeros((3, 64, 64, 3), np.float32))


def test_when_the_hog_detector_finds_nothing_the_cnn_detector_is_tried(monkeypatch):
    """A face the HOG detector misses (three-quarter views, paintings) goes on to the HOG
    detector at 2x on a large photo, then to dlib's CNN detector; its landmarks are as good."""
    from didlearn import landmarks

    photo = sample_portrait()
    expected = faces.face_landmarks(photo)
    calls = []

    def blind(image, upsample=None, threshold=0.0):
        calls.append(upsample)
        return []

    monkeypatch.setattr(faces, "detect_faces", blind)
    found, tried = faces.find_faces(photo)
    assert tried == ["the HOG detector", "the CNN detector"]  # 512 px: already upsampled
    assert len(found) == 1 and found[0].score > 0.5
    got = faces.face_landmarks(photo)
    eyes = np.r_[landmarks.RIGHT_EYE, landmarks.LEFT_EYE]
    iod = np.linalg.norm(
        expected[landmarks.LEFT_EYE].mean(0) - expected[landmarks.RIGHT_EYE].mean(0)
    )
    assert np.abs(got[eyes] - expected[eyes]).mean() < 0.1 * iod
    big = np.repeat(np.repeat(photo, 2, axis=0), 2, axis=1)  # 1024 px: the 2x pass comes first
    assert faces.find_faces(big)[1] == [
        "the HOG detector", "the HOG detector at 2x", "the CNN detector"
    ]  # fmt: skip
    with pytest.raises(NoFaceFoundError, match="tried the HOG detector, the CNN detector"):
        faces.face_landmarks(np.full((240, 320, 3), 0.5, np.float32))


def test_the_tracker_holds_a_lost_face_rather_than_jump_to_another_one():
    """Two faces; the one followed vanishes (covered in grey): the tracker holds it for
    ``REACQUIRE_AFTER`` frames instead of taking the other face, and only then takes it."""
    from didlearn.data import sample_group_photo

    photo = sample_group_photo()
    covered = photo.copy()
    found = faces.detect_faces(photo)
    left = min(found, key=lambda f: f.box[0])
    x0, y0, x1, y1 = (int(round(v)) for v in left.box)
    covered[max(y0 - 20, 0) : y1 + 20, max(x0 - 20, 0) : x1 + 20] = 0.5
    assert len(faces.detect_faces(covered)) >= 1  # the other face is still there to jump to

    tracker = faces.LandmarkTracker(smoothing=False)
    first = tracker.update(photo)
    assert first[:, 0].mean() < photo.shape[1] / 2  # it follows the (larger) left face
    held = [tracker.update(covered) for _ in range(faces.REACQUIRE_AFTER)]
    assert not tracker.found and all(np.array_equal(h, first) for h in held)
    later = tracker.update(covered)
    assert tracker.found and later[:, 0].mean() > photo.shape[1] / 2  # re-acquired: the other
