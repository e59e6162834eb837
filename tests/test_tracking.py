"""fkp.tracking: one track per face, followed by its points, matched once per frame, smoothed.

The first tests use the shipped model and YuNet; the rest a scene of moving boxes, with a detector
and a model that read the scene (quick and exact), and a hypothesis property test over random scenes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fkp import samples
from fkp.boxes import box_overlap
from fkp.detectors import Detections
from fkp.detectors.haar import HaarFaceDetector
from fkp.detectors.yunet import YUNET_FILE, YuNetFaceDetector
from fkp.geometry import keypoints_box, keypoints_roll
from fkp.landmarks import mean_shape_diagram
from fkp.predict import load_model
from fkp.predictor import KeypointPredictor
from fkp.tracking import DUPLICATE_OVERLAP, MAX_DISAGREEMENT, FaceTracker, pass_disagreement


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
def shipped() -> KeypointPredictor:
    """The shipped keypoint model, loaded once for this module."""
    return load_model()


@pytest.fixture(scope="module")
def yunet(models_dir: Path) -> CountingDetector:
    return CountingDetector(YuNetFaceDetector(models_dir / YUNET_FILE))


def test_disagreement_separates_a_face_from_background(shipped: KeypointPredictor) -> None:
    model = shipped
    image = samples.astronaut()
    (face,) = model.predict(image, HaarFaceDetector().detect(image))[None]
    on_face, _ = pass_disagreement(model, image, face)
    coffee = samples.coffee()
    boxes = np.array([[40, 40, 120, 120], [250, 60, 150, 150], [100, 200, 90, 90]], np.float32)
    on_coffee, _ = pass_disagreement(model, coffee, model.predict(coffee, boxes))
    assert on_face[0] < MAX_DISAGREEMENT / 2
    assert (on_coffee > MAX_DISAGREEMENT).all()


def test_a_still_face_runs_the_detector_every_n_frames(yunet: CountingDetector, shipped: KeypointPredictor) -> None:
    yunet.runs = 0
    tracker = FaceTracker(yunet, shipped, detect_every=5, smoothing=0.0)
    frame = samples.astronaut()
    faces = [tracker(frame) for _ in range(20)]
    assert all(len(f) == 1 for f in faces)
    assert yunet.runs == tracker.detector_runs == 4  # frames 1, 6, 11, 16
    first, last = faces[0][0], faces[-1][0]
    assert np.abs(last.keypoints - first.keypoints).max() < 3.0  # the same face (first from YuNet's box)
    assert np.abs(last.keypoints - faces[-2][0].keypoints).max() < 0.1  # a still face: a steady crop
    np.testing.assert_allclose(last.box, keypoints_box(last.keypoints))


def test_a_face_that_turns_is_followed_without_the_detector(
    yunet: CountingDetector, shipped: KeypointPredictor
) -> None:
    tracker = FaceTracker(yunet, shipped, detect_every=100, smoothing=0.0)
    image = samples.astronaut()
    yunet.runs = 0
    rolls = []
    for degrees in range(0, 45, 3):  # 3 degrees a frame, clockwise about the face's centre
        turned = cv2.warpAffine(image, cv2.getRotationMatrix2D((223.0, 120.0), -degrees, 1.0), image.shape[1::-1])
        (face,) = tracker(turned)
        rolls.append(float(keypoints_roll(face.keypoints)))
    assert yunet.runs == 1
    assert rolls[-1] - rolls[0] == pytest.approx(42, abs=5)


def test_a_face_that_leaves_is_dropped_at_once_and_found_again(
    yunet: CountingDetector, shipped: KeypointPredictor
) -> None:
    tracker = FaceTracker(yunet, shipped, detect_every=10, smoothing=0.0)
    face, empty = samples.astronaut(), samples.coffee()[:512, :512]
    counts = [len(tracker(frame)) for frame in [face] * 5 + [empty] * 5 + [face] * 3]
    assert counts == [1] * 5 + [0] * 5 + [1] * 3


# --- a scene of moving boxes, read by a stub detector and a stub model --------------------------


class Scene:
    """The faces on the current frame, (N, 4) boxes x, y, w, h; a stub detector and model read it."""

    def __init__(self) -> None:
        self.boxes = np.zeros((0, 4), np.float32)
        self.order = np.random.default_rng(0)

    def show(self, boxes) -> None:
        self.boxes = np.asarray(boxes, np.float32).reshape(-1, 4)


class SceneDetector:
    """Finds every face of the scene, in a random order, with scores 0, 1, 2, ... in the scene's order."""

    def __init__(self, scene: Scene) -> None:
        self.scene, self.runs = scene, 0

    def detect_faces(self, image: np.ndarray) -> Detections:
        self.runs += 1
        order = self.scene.order.permutation(len(self.scene.boxes))
        nan = np.full(len(order), np.nan, np.float32)
        return Detections(self.scene.boxes[order], order.astype(np.float32), nan)

    def detect(self, image: np.ndarray) -> np.ndarray:
        return self.detect_faces(image).boxes


def mean_face(box: np.ndarray) -> np.ndarray:
    """The schematic face stretched over a box: (68, 2)."""
    return (np.asarray(box[:2]) + mean_shape_diagram() * np.asarray(box[2:])).astype(np.float32)


class SceneModel:
    """The schematic face of the scene face that best fits a crop (intersection over union); on background, points that
    shrink towards the crop's centre (so a second pass disagrees), or stay put if ``sticky``
    (a model that cannot tell a face has gone)."""

    def __init__(self, scene: Scene, sticky: bool = False) -> None:
        self.scene, self.sticky = scene, sticky

    def predict(self, image: np.ndarray, boxes: np.ndarray, angles: np.ndarray | None = None) -> np.ndarray:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, *mean_shape_diagram().shape), np.float32)
        near = box_overlap(boxes, self.scene.boxes, over="min") >= 0.5  # (crops, faces)
        iou = np.where(near, box_overlap(boxes, self.scene.boxes), -1.0)
        points = []
        for crop, row in zip(boxes, iou):
            if len(row) and row.max() >= 0:
                points.append(mean_face(self.scene.boxes[int(np.argmax(row))]))
            elif self.sticky:
                points.append(mean_face(crop))
            else:
                centre = crop[:2] + crop[2:] / 2
                points.append(mean_face(np.concatenate([centre - crop[2:] / 4, crop[2:] / 2])))
        return np.stack(points)


FRAME = np.zeros((480, 640, 3), np.uint8)  # the stubs never look at it


def scene_tracker(detect_every: int | None = 4, smoothing: float = 1.0, sticky: bool = False):
    scene = Scene()
    detector = SceneDetector(scene)
    return scene, detector, FaceTracker(detector, SceneModel(scene, sticky), detect_every, smoothing=smoothing)


def test_a_third_face_walks_in_and_one_leaves() -> None:
    """Issue 24's crash: the number of faces changes between detector runs while faces are tracked."""
    scene, detector, tracker = scene_tracker(detect_every=3)
    two = [[20, 20, 80, 80], [200, 20, 80, 80]]
    three = [*two, [400, 200, 90, 90]]
    counts = []
    for boxes in [two] * 4 + [three] * 5 + [[three[0]]] * 5:
        scene.show(boxes)
        counts.append(len(tracker(FRAME)))
    assert counts == [2] * 4 + [2, 2, 3, 3, 3] + [1] * 5  # the third face is found by the next detector run
    assert [t.identity for t in tracker.drawn] == [0]


def test_a_face_keeps_its_track_and_its_smoothing_when_the_order_changes() -> None:
    scene, detector, tracker = scene_tracker(detect_every=None, smoothing=2.0)
    rng = np.random.default_rng(1)
    for _ in range(30):
        left = [50 + rng.normal(0, 1.5), 80 + rng.normal(0, 1.5), 150, 150]
        right = [400 + rng.normal(0, 1.5), 80 + rng.normal(0, 1.5), 150, 150]
        scene.show([left, right])
        faces = tracker(FRAME)
        assert [int(f.score) for f in faces] == [int(t.score) for t in tracker.drawn]  # the detector's order
        for face, track in zip(faces, tracker.drawn):
            assert np.abs(face.keypoints - track.keypoints).max() < 10
            assert face.box[0] < 300 if track.box[0] < 300 else face.box[0] > 300
    assert sorted(t.identity for t in tracker.tracks) == [0, 1] and detector.runs == 30


def test_smoothing_off_passes_the_points_through() -> None:
    scene, _, tracker = scene_tracker(detect_every=None, smoothing=0.0)
    for x in (10.0, 14.0, 30.0):
        scene.show([[x, 20, 100, 100]])
        (face,) = tracker(FRAME)
        np.testing.assert_array_equal(face.keypoints, mean_face(np.array([x, 20, 100, 100], np.float32)))
        np.testing.assert_array_equal(face.box, [x, 20, 100, 100])


def test_a_face_found_again_continues_its_track_and_an_old_one_is_forgotten() -> None:
    scene, _, tracker = scene_tracker(detect_every=None)
    face = [[100, 100, 120, 120]]
    for boxes in [face] * 3 + [[]] * 2 + [face]:
        scene.show(boxes)
        tracker(FRAME)
    assert [t.identity for t in tracker.drawn] == [0]
    for _ in range(tracker.keep_missed + 1):
        scene.show([])
        assert tracker(FRAME) == []
    assert tracker.tracks == []


def test_two_tracks_on_one_face_become_one() -> None:
    """Two faces cross, the model follows both crops onto the front face: one of them stops being drawn."""
    scene, _, tracker = scene_tracker(detect_every=100, smoothing=0.0)
    scene.show([[100, 100, 100, 100], [160, 100, 100, 100]])
    assert len(tracker(FRAME)) == 2
    scene.show([[130, 100, 100, 100]])  # one face hides the other: both crops land on the front one
    assert len(tracker(FRAME)) == 1 and [t.identity for t in tracker.drawn] == [0]


def test_the_tracker_refuses_a_bad_setting() -> None:
    with pytest.raises(ValueError, match="detect_every"):
        scene_tracker(detect_every=0)
    with pytest.raises(ValueError, match="smoothing"):
        scene_tracker(smoothing=-1.0)


@st.composite
def scenes(draw) -> tuple[list[np.ndarray], int | None, bool, int]:
    """Random scenes: up to 5 faces at a time that appear, vanish, move and cross, over up to 30 frames."""
    frames = draw(st.integers(1, 30))
    faces = []
    for _ in range(draw(st.integers(0, 8))):
        start = draw(st.integers(0, frames - 1))
        stop = draw(st.integers(start + 1, frames))
        x, y = draw(st.floats(0, 560)), draw(st.floats(0, 400))
        dx, dy = draw(st.floats(-40, 40)), draw(st.floats(-20, 20))
        side = draw(st.floats(30, 120))
        faces.append((start, stop, x, y, dx, dy, side))
    boxes = []
    for t in range(frames):
        alive = [f for f in faces if f[0] <= t < f[1]][:5]
        boxes.append(np.array([[x + dx * (t - s), y + dy * (t - s), w, w] for s, _, x, y, dx, dy, w in alive]))
    return boxes, draw(st.sampled_from([None, 1, 2, 5])), draw(st.booleans()), draw(st.integers(0, 2**16))


@settings(max_examples=60, deadline=None, database=None)
@given(scenes())
def test_any_scene_one_track_per_face_and_no_stale_track_for_long(case) -> None:
    frames, detect_every, sticky, seed = case
    scene, detector, tracker = scene_tracker(detect_every, smoothing=1.0, sticky=sticky)
    scene.order = np.random.default_rng(seed)
    stale: dict[int, int] = {}  # track identity -> frames drawn in a row with no face under it
    for boxes in frames:
        scene.show(boxes)
        runs = detector.runs
        faces = tracker(FRAME)
        drawn = tracker.drawn
        assert len(faces) == len(drawn) and len({t.identity for t in drawn}) == len(drawn)
        assert all(np.isfinite(f.keypoints).all() and np.isfinite(f.box).all() for f in faces)
        on_face = [[np.array_equal(t.keypoints, mean_face(b)) for b in scene.boxes] for t in drawn]  # (tracks, faces)
        hidden = (box_overlap(scene.boxes, scene.boxes) >= DUPLICATE_OVERLAP).sum(axis=1) > 1  # one face covers another
        for covered, column in zip(hidden, zip(*on_face) if drawn else []):
            assert covered or sum(column) <= 1  # one track per face (two faces in one place are one to the model)
        if detector.runs > runs:  # a detector run: exactly one drawn track per face
            assert len(drawn) == len(scene.boxes)
        for track, row in zip(drawn, on_face):
            stale[track.identity] = 0 if any(row) else stale.get(track.identity, 0) + 1
            assert stale[track.identity] <= (detect_every or 1)
