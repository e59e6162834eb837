"""fkp.tracking with the shipped model and YuNet: faces followed by their points, lost when they leave."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fkp import samples
from fkp.detectors.haar import HaarFaceDetector
from fkp.detectors.yunet import YUNET_FILE, YuNetFaceDetector
from fkp.geometry import keypoints_box, keypoints_roll
from fkp.predict import load_model
from fkp.tracking import MAX_DISAGREEMENT, KeypointTracker, pass_disagreement


class CountingDetector:
    """Wraps a detector and counts its runs."""

    def __init__(self, detector) -> None:
        self.detector, self.runs = detector, 0

    def detect_faces(self, image: np.ndarray):
        self.runs += 1
        return self.detector.detect_faces(image)

    def detect(self, image: np.ndarray) -> np.ndarray:
        return self.detect_faces(image).boxes


@pytest.fixture(scope="module")
def shipped():
    """The shipped keypoint model, loaded once for this module."""
    return load_model()


@pytest.fixture(scope="module")
def yunet(models_dir: Path) -> CountingDetector:
    return CountingDetector(YuNetFaceDetector(models_dir / YUNET_FILE))


def test_disagreement_separates_a_face_from_background(shipped) -> None:
    model = shipped
    image = samples.astronaut()
    (face,) = model.predict(image, HaarFaceDetector().detect(image))[None]
    on_face, _ = pass_disagreement(model, image, face)
    coffee = samples.coffee()
    boxes = np.array([[40, 40, 120, 120], [250, 60, 150, 150], [100, 200, 90, 90]], np.float32)
    on_coffee, _ = pass_disagreement(model, coffee, model.predict(coffee, boxes))
    assert on_face[0] < MAX_DISAGREEMENT / 2
    assert (on_coffee > MAX_DISAGREEMENT).all()


def test_a_still_face_runs_the_detector_every_n_frames(yunet: CountingDetector, shipped) -> None:
    yunet.runs = 0
    tracker = KeypointTracker(yunet, shipped, detect_every=5)
    frame = samples.astronaut()
    faces = [tracker(frame) for _ in range(20)]
    assert all(len(f) == 1 for f in faces)
    assert yunet.runs == tracker.detector_runs == 4  # frames 1, 6, 11, 16
    first, last = faces[0][0], faces[-1][0]
    assert np.abs(last.keypoints - first.keypoints).max() < 3.0  # the same face (first from YuNet's box)
    assert np.abs(last.keypoints - faces[-2][0].keypoints).max() < 0.1  # a still face: a steady crop
    np.testing.assert_allclose(last.box, keypoints_box(last.keypoints))


def test_a_face_that_turns_is_followed_without_the_detector(yunet: CountingDetector, shipped) -> None:
    tracker = KeypointTracker(yunet, shipped, detect_every=100)
    image = samples.astronaut()
    yunet.runs = 0
    rolls = []
    for degrees in range(0, 45, 3):  # 3 degrees a frame, clockwise about the face's centre
        turned = cv2.warpAffine(image, cv2.getRotationMatrix2D((223.0, 120.0), -degrees, 1.0), image.shape[1::-1])
        (face,) = tracker(turned)
        rolls.append(float(keypoints_roll(face.keypoints)))
    assert yunet.runs == 1
    assert rolls[-1] - rolls[0] == pytest.approx(42, abs=5)


def test_a_face_that_leaves_is_dropped_at_once_and_found_again(yunet: CountingDetector, shipped) -> None:
    tracker = KeypointTracker(yunet, shipped, detect_every=10)
    face, empty = samples.astronaut(), samples.coffee()[:512, :512]
    counts = [len(tracker(frame)) for frame in [face] * 5 + [empty] * 5 + [face] * 3]
    assert counts == [1] * 5 + [0] * 5 + [1] * 3
