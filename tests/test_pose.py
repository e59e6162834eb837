"""Head pose: synthetic faces made by projecting the 3D model with a known pose give that pose back."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from fkp import pose
from fkp.landmarks import NOSE_TIP, NUM_KEYPOINTS, mean_shape_diagram

IMAGE_SIZE = (480, 640)  # height, width
DISTANCE = np.array([15.0, -10.0, 700.0])  # the head a little right of and above the centre, 70 cm away


def synthetic_face(
    yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0, translation: np.ndarray = DISTANCE
) -> np.ndarray:
    """A (68, 2) face whose model points are the 3D model seen with the given pose; the other points
    (not used by the pose) come from the schematic face."""
    keypoints = mean_shape_diagram().astype(np.float64) * 100 + 270
    keypoints[pose.MODEL_INDICES] = pose.project_model(yaw, pitch, roll, translation, IMAGE_SIZE)
    return keypoints


def test_model_is_symmetric_and_named_by_index() -> None:
    assert len(pose.MODEL_INDICES) == len(pose.MODEL_POINTS) >= 6
    assert pose.MODEL_INDICES.max() < NUM_KEYPOINTS
    assert {8, 30, 36, 45, 48, 54} <= set(pose.MODEL_INDICES.tolist())
    mirrored = pose.MODEL_POINTS * [-1, 1, 1]
    # every point's mirror image is in the model too
    for point in mirrored:
        assert np.min(np.linalg.norm(pose.MODEL_POINTS - point, axis=1)) < 1e-9


def test_frontal_face_is_near_zero() -> None:
    estimate = pose.estimate_head_pose(synthetic_face(), IMAGE_SIZE)
    np.testing.assert_allclose(estimate.angles, (0, 0, 0), atol=0.1)
    np.testing.assert_allclose(estimate.translation, DISTANCE, rtol=1e-3)
    assert estimate.error < 0.01


@pytest.mark.parametrize(
    "angles", [(20, 0, 0), (-20, 0, 0), (0, 15, 0), (0, -15, 0), (0, 0, 20), (0, 0, -30), (30, -10, 15), (-25, 20, -10)]
)
def test_rotated_face_gives_the_rotation_back(angles: tuple[float, float, float]) -> None:
    estimate = pose.estimate_head_pose(synthetic_face(*angles), IMAGE_SIZE)
    np.testing.assert_allclose(estimate.angles, angles, atol=0.1)


def test_pose_survives_noisy_keypoints() -> None:
    rng = np.random.default_rng(0)
    for angles in [(0, 0, 0), (25, 10, -15)]:
        noisy = synthetic_face(*angles) + rng.normal(0, 1.0, (NUM_KEYPOINTS, 2))  # 1 px noise on a ~90 px face
        np.testing.assert_allclose(pose.estimate_head_pose(noisy, IMAGE_SIZE).angles, angles, atol=6)


def test_sign_conventions_match_the_picture() -> None:
    """yaw > 0: the nose moves to the image's right; pitch > 0: up; roll > 0: clockwise."""
    nose = list(pose.MODEL_INDICES).index(NOSE_TIP)
    frontal = pose.project_model(0, 0, 0, DISTANCE, IMAGE_SIZE)
    assert pose.project_model(20, 0, 0, DISTANCE, IMAGE_SIZE)[nose, 0] > frontal[nose, 0] + 5
    assert pose.project_model(0, 20, 0, DISTANCE, IMAGE_SIZE)[nose, 1] < frontal[nose, 1] - 5
    # a roll turns the eye line clockwise on screen: the subject's left eye (image right) goes down
    left_eye = list(pose.MODEL_INDICES).index(45)
    assert pose.project_model(0, 0, 20, DISTANCE, IMAGE_SIZE)[left_eye, 1] > frontal[left_eye, 1] + 5


def test_turning_the_photo_changes_the_roll() -> None:
    """Rotating the image by +20 degrees (OpenCV's counter-clockwise) gives roll -20."""
    face = synthetic_face()
    matrix = cv2.getRotationMatrix2D((IMAGE_SIZE[1] / 2, IMAGE_SIZE[0] / 2), 20, 1.0)
    turned = face @ matrix[:, :2].T + matrix[:, 2]
    estimate = pose.estimate_head_pose(turned, IMAGE_SIZE)
    assert estimate.roll == pytest.approx(-20, abs=1.5)
    assert abs(estimate.yaw) < 2 and abs(estimate.pitch) < 2


@pytest.mark.parametrize("angles", list(itertools.product([-40, 0, 35], [-30, 0, 25], [-60, 0, 45])))
def test_angles_and_rotation_round_trip(angles: tuple[float, float, float]) -> None:
    rotation = pose.rotation_from_angles(*angles)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    np.testing.assert_allclose(pose.angles_from_rotation(rotation), angles, atol=1e-9)


def test_camera_matrix() -> None:
    camera = pose.camera_matrix((480, 640))
    np.testing.assert_allclose(camera, [[640, 0, 319.5], [0, 640, 239.5], [0, 0, 1]])


def test_draw_pose_axes() -> None:
    image = np.zeros((*IMAGE_SIZE, 3), np.uint8)
    estimate = pose.estimate_head_pose(synthetic_face(yaw=30), IMAGE_SIZE)
    drawn = pose.draw_pose_axes(image, estimate)
    assert (image == 0).all() and drawn.shape == image.shape
    nose = synthetic_face(yaw=30)[NOSE_TIP].round().astype(int)
    assert drawn[nose[1] - 3 : nose[1] + 4, nose[0] - 3 : nose[0] + 4].any()  # the axes start at the nose tip
    red, green, blue = [((drawn[..., c] > 150) & (drawn[..., (c + 1) % 3] < 120)).sum() for c in range(3)]
    assert red > 20 and green > 20 and blue > 20  # three coloured axes
    unlabelled = pose.draw_pose_axes(image, estimate, label=False)
    assert ((drawn > 200).all(axis=2)).sum() > ((unlabelled > 200).all(axis=2)).sum()  # white text
