"""The chapter 6 retargeting widget's callbacks, called as the sliders call them."""

import numpy as np
import pytest

from didlearn import data, faces
from didlearn.landmarks import eye_aspect_ratio, mouth_aspect_ratio
from didlearn.widgets.retarget import (
    RetargetState,
    draw_retarget,
    retarget_frame,
    retarget_widget,
)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.sample_portrait()


@pytest.fixture(scope="module")
def state(photo) -> RetargetState:
    state = RetargetState()
    retarget_frame(photo, state)
    return state


def test_neutral_sliders_give_the_photo_back(photo, state):
    crop = state.animator.crop.image
    frame = retarget_frame(photo, state)
    assert frame.shape == crop.shape and np.abs(frame - crop).max() < 0.02
    # eyes at 1 = the photo's opening: the lids stay within a fraction of a pixel
    np.testing.assert_allclose(state.keypoints, state.animator.source_kp, atol=0.5)
    retarget_frame(photo, state, eyes=1.0)
    np.testing.assert_allclose(state.keypoints, state.animator.source_kp, atol=0.5)


def test_the_sliders_move_the_targets_and_the_rendered_pixels(photo, state):
    ks = state.animator.source_kp
    retarget_frame(photo, state, eyes=0.0)
    assert eye_aspect_ratio(state.keypoints).max() < 0.05 * eye_aspect_ratio(ks).min() + 0.01
    frame = retarget_frame(photo, state, mouth=0.5)
    assert mouth_aspect_ratio(state.keypoints) == pytest.approx(0.5, abs=0.01)
    assert mouth_aspect_ratio(faces.face_landmarks(frame)) > mouth_aspect_ratio(ks) + 0.1
    frame = retarget_frame(photo, state, yaw=15.0)
    nose = (
        faces.face_landmarks(frame)[30, 0] - faces.face_landmarks(state.animator.crop.image)[30, 0]
    )
    assert nose > 5  # the face turned to the image's right
    assert "yaw 15°" in state.message
    fig = draw_retarget(state)
    assert len(fig.axes) == 2


def test_user_errors_become_the_message(photo, state):
    assert retarget_frame(photo, state, eyes=3.0) is None
    assert "eyes 3 is out of range" in state.message
    wall, empty = np.full((120, 160, 3), 0.5, np.float32), RetargetState()
    assert retarget_frame(wall, empty) is None
    assert "face" in empty.message.lower()


def test_the_widget_has_the_five_sliders(photo, state):
    box = retarget_widget(photo, state)
    sliders = box.children[0].children[0].children
    assert [s.description for s in sliders] == ["eyes", "mouth", "yaw", "pitch", "roll"]
