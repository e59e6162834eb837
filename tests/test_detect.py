"""fkp.detect and fkp.boxes: boxes, the Haar detector on real photos, the Landmarker pipeline with a stub and with the real model."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import fkp
from fkp import samples
from fkp.boxes import box_overlap, left_to_right, merge_overlapping, shrink_to_max_side
from fkp.detect import Landmarker, detect_keypoints
from fkp.detectors import FaceDetector
from fkp.detectors.haar import HaarFaceDetector
from fkp.face import Face
from fkp.landmarks import LEFT_EYE_OUTER, NOSE_TIP, NUM_KEYPOINTS, RIGHT_EYE_OUTER, region_centre
from fkp.predictor import KeypointPredictor

# Where the astronaut's face is (x0, y0, x1, y1), read off the photo: the detector's box must hold it.
ASTRONAUT_FACE_CORE = (200, 95, 245, 145)


@pytest.fixture(scope="module")
def haar() -> HaarFaceDetector:
    return HaarFaceDetector()


# --- Face and box helpers ----------------------------------------------------------------------


def test_face_holds_read_only_copies_and_serialises() -> None:
    box = np.array([1, 2, 3, 4], dtype=np.float64)
    points = np.zeros((NUM_KEYPOINTS, 2))
    face = Face(box=box, keypoints=points, score=3)
    box[0] = 99
    assert face.box[0] == 1 and face.box.dtype == np.float32 and face.score == 3.0
    with pytest.raises(ValueError):
        face.keypoints[0, 0] = 1.0
    record = json.loads(json.dumps(face.to_dict()))
    assert record["box"] == [1, 2, 3, 4] and len(record["keypoints"]) == NUM_KEYPOINTS
    with pytest.raises(ValueError, match="keypoints"):
        Face(box=box, keypoints=np.zeros((5, 2)))


def test_box_overlap_against_hand_values() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5], [2, 2, 4, 4]])
    assert box_overlap(a, b)[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0, 16 / 100])
    assert box_overlap(a, b, over="min")[0].tolist() == pytest.approx([1.0, 0.5, 0.0, 1.0])


def test_merge_overlapping_keeps_the_best_of_nested_boxes() -> None:
    boxes = np.array([[0, 0, 100, 100], [20, 20, 30, 30], [200, 0, 50, 50]], dtype=np.float32)
    assert merge_overlapping(boxes, np.array([5, 9, 1])).tolist() == [1, 2]  # nested box scores higher
    assert sorted(merge_overlapping(boxes).tolist()) == [0, 2]  # no scores: the larger box wins


def test_left_to_right_sorts_by_x_then_y() -> None:
    boxes = np.array([[50, 0, 5, 5], [10, 30, 5, 5], [10, 20, 5, 5], [30, 0, 5, 5]], dtype=np.float32)
    assert left_to_right(boxes).tolist() == [2, 1, 3, 0]
    assert left_to_right(np.zeros((0, 4))).tolist() == []


def test_shrink_to_max_side_scales_the_longer_side_and_keeps_small_images() -> None:
    image = np.zeros((300, 1000, 3), np.uint8)
    small, scale = shrink_to_max_side(image, 500)
    assert small.shape == (150, 500, 3) and scale == 0.5
    kept, one = shrink_to_max_side(image, 1000)
    assert kept is image and one == 1.0
    assert shrink_to_max_side(image, None)[1] == 1.0


# --- the Haar detector -------------------------------------------------------------------------


def test_haar_is_a_face_detector(haar: HaarFaceDetector) -> None:
    assert isinstance(haar, FaceDetector)
    assert "min_neighbors=5" in repr(haar)
    for step in (1.0, 1.0000001, float("nan")):  # a step this close to 1 would build thousands of levels
        with pytest.raises(ValueError, match="scale_factor"):
            HaarFaceDetector(scale_factor=step)


def test_haar_finds_the_astronaut(haar: HaarFaceDetector) -> None:
    boxes, scores = haar.detect_with_scores(samples.astronaut())
    assert boxes.shape == (1, 4) and boxes.dtype == np.float32 and scores.shape == (1,)
    x, y, w, h = boxes[0]
    x0, y0, x1, y1 = ASTRONAUT_FACE_CORE
    assert x <= x0 and y <= y0 and x + w >= x1 and y + h >= y1
    assert w < 200 and scores[0] >= haar.min_neighbors


def test_haar_finds_no_face_in_coffee(haar: HaarFaceDetector) -> None:
    assert haar.detect(samples.coffee()).shape == (0, 4)


def test_haar_finds_the_three_faces_of_the_group_photo_left_to_right(haar: HaarFaceDetector) -> None:
    boxes = haar.detect(samples.group_photo())
    assert len(boxes) == 3
    assert (np.diff(boxes[:, 0]) > 0).all()


def test_haar_on_a_big_photo_searches_a_downscaled_copy(haar: HaarFaceDetector) -> None:
    small = haar.detect(samples.astronaut())
    big_photo = cv2.resize(samples.astronaut(), (2048, 2048), interpolation=cv2.INTER_LINEAR)
    big = HaarFaceDetector(max_side=512).detect(big_photo)
    assert big.shape == (1, 4)
    np.testing.assert_allclose(big[0], small[0] * 4, atol=0.06 * small[0, 2] * 4)  # mapped back to full size


# --- the pipeline with a stub model -------------------------------------------------------------


def test_pipeline_returns_one_face_per_box_in_input_pixels(haar: HaarFaceDetector, mean_shape_model) -> None:
    model = mean_shape_model()
    assert isinstance(model, KeypointPredictor)
    faces = detect_keypoints(samples.astronaut(), detector=haar, model=model)
    assert len(faces) == 1 and model.calls == 1
    face = faces[0]
    assert face.keypoints.shape == (NUM_KEYPOINTS, 2) and face.score is not None
    x, y, w, h = face.box
    assert (face.keypoints >= [x, y]).all() and (face.keypoints <= [x + w, y + h]).all()


def test_pipeline_without_faces_returns_an_empty_list_and_skips_the_model(
    haar: HaarFaceDetector, mean_shape_model
) -> None:
    model = mean_shape_model()
    assert detect_keypoints(samples.coffee(), detector=haar, model=model) == []
    assert model.calls == 0


def test_pipeline_on_the_group_photo(haar: HaarFaceDetector, mean_shape_model) -> None:
    faces = detect_keypoints(samples.group_photo(), detector=haar, model=mean_shape_model())
    assert len(faces) == 3


@pytest.mark.parametrize("kind", ["gray", "rgba", "uint16", "float", "path"])
def test_pipeline_accepts_other_image_layouts(tmp_path, haar: HaarFaceDetector, kind: str, mean_shape_model) -> None:
    rgb = samples.astronaut()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if kind == "gray":
        image = gray
    elif kind == "rgba":
        image = np.dstack([rgb, np.full(gray.shape, 255, np.uint8)])
    elif kind == "uint16":
        image = gray.astype(np.uint16) * 257
    elif kind == "float":
        image = rgb.astype(np.float32) / 255.0
    else:
        image = tmp_path / "astronaut.png"
        cv2.imwrite(str(image), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    faces = detect_keypoints(image, detector=haar, model=mean_shape_model())
    assert len(faces) == 1


def test_pipeline_rejects_a_model_with_the_wrong_output_shape(haar: HaarFaceDetector) -> None:
    class Broken:
        def predict(
            self, image: np.ndarray, boxes: np.ndarray, angles: np.ndarray | None = None, labels: str | None = None
        ) -> np.ndarray:
            return np.zeros((len(boxes), 5, 2))

    with pytest.raises(ValueError, match="model.predict"):
        detect_keypoints(samples.astronaut(), detector=haar, model=Broken())


def test_a_detector_without_scores_gives_faces_without_scores(mean_shape_model) -> None:
    class FixedBox:
        def detect(self, image: np.ndarray) -> np.ndarray:
            return np.array([[10, 10, 50, 50]], dtype=np.float32)

    faces = detect_keypoints(samples.coffee(), detector=FixedBox(), model=mean_shape_model())
    assert len(faces) == 1 and faces[0].score is None


def test_a_landmarker_loads_its_model_once_and_runs_on_many_images(monkeypatch, mean_shape_model) -> None:
    import fkp.predict

    loads = []
    monkeypatch.setattr(fkp.predict, "load_model", lambda: loads.append(1) or mean_shape_model())
    landmarker = Landmarker("haar")
    assert isinstance(landmarker.detector, HaarFaceDetector) and loads == [1]
    first, second = landmarker(samples.astronaut()), landmarker.detect(samples.astronaut())
    assert len(first) == len(second) == 1 and loads == [1] and landmarker(samples.coffee()) == []
    np.testing.assert_array_equal(first[0].keypoints, second[0].keypoints)
    assert "HaarFaceDetector(" in repr(landmarker)


def test_detect_keypoints_is_a_landmarker_built_for_one_call(monkeypatch, haar, mean_shape_model) -> None:
    import fkp.predict

    loads = []
    monkeypatch.setattr(fkp.predict, "load_model", lambda: loads.append(1) or mean_shape_model())
    (face,) = detect_keypoints(samples.astronaut(), detector=haar)
    (same,) = Landmarker(haar, mean_shape_model())(samples.astronaut())
    np.testing.assert_array_equal(face.keypoints, same.keypoints)
    np.testing.assert_array_equal(face.box, same.box)
    assert loads == [1]  # no cache behind it: a second call would load the model again


def test_fkp_exports_the_landmarker() -> None:
    assert fkp.Landmarker is Landmarker and "Landmarker" in fkp.__all__


# --- the pipeline with the real model (loose geometry) ----------------------------------------


@pytest.fixture(scope="module")
def real_model():
    return fkp.load_model()


def test_real_model_on_the_astronaut(real_model) -> None:
    faces = detect_keypoints(samples.astronaut(), model=real_model)
    assert len(faces) == 1
    points = faces[0].keypoints
    x, y, w, h = faces[0].box
    margin = 0.25 * w
    assert (points >= [x - margin, y - margin]).all() and (points <= [x + w + margin, y + h + margin]).all()
    # the subject's right eye is on the left of the photo
    assert points[RIGHT_EYE_OUTER, 0] < points[LEFT_EYE_OUTER, 0]
    eyes_y = max(region_centre(points, "right_eye")[1], region_centre(points, "left_eye")[1])
    assert eyes_y < points[NOSE_TIP, 1] < region_centre(points, "mouth")[1]
    # eye corners inside the eye area read off the photo
    left, right = ASTRONAUT_FACE_CORE[0] - 25, ASTRONAUT_FACE_CORE[2] + 25
    assert left < points[RIGHT_EYE_OUTER, 0] < points[LEFT_EYE_OUTER, 0] < right


def test_real_model_finds_no_face_in_coffee(real_model) -> None:
    assert detect_keypoints(samples.coffee(), model=real_model) == []


def test_real_model_on_the_group_photo(real_model) -> None:
    faces = detect_keypoints(samples.group_photo(), model=real_model)
    assert len(faces) == 3
    for face in faces:
        assert face.keypoints[RIGHT_EYE_OUTER, 0] < face.keypoints[LEFT_EYE_OUTER, 0]


def test_real_model_answers_in_the_labelling_convention_asked_for(real_model, haar: HaarFaceDetector) -> None:
    photo = samples.astronaut()
    default, udacity = (detect_keypoints(photo, haar, real_model, labels)[0] for labels in (None, "udacity"))
    box = default.box[None]
    np.testing.assert_allclose(udacity.keypoints, real_model.predict(photo, box, labels="udacity")[0], atol=1e-4)
    assert not np.allclose(udacity.keypoints, default.keypoints, atol=0.5)
    with pytest.raises(ValueError, match="no 'ibug' head"):
        detect_keypoints(photo, haar, real_model, labels="ibug")
