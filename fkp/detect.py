"""Faces and their 68 keypoints on any photo: a face detector, then the keypoint model in each box.

The pieces::

    FaceDetector        protocol: detect(image) -> (N, 4) boxes x, y, w, h in pixels
    Detections          what detect_faces(image) returns on every fkp detector: boxes, scores, roll angles
    HaarFaceDetector    OpenCV's frontal-face Haar cascade behind that protocol
    YuNetFaceDetector   a small modern detector (fkp.yunet), better on rolled, small and many faces
    make_detector       "auto" | "yunet" | "haar" -> a detector ("auto": YuNet when its file is found)
    Face                one face: box, keypoints (68, 2) in pixels of the input image, score
    detect_keypoints    the pipeline: image -> list[Face] (an empty list when there is no face)

The pipeline hands the detector's boxes and roll angles to ``model.predict(image, boxes, angles)`` unchanged: padding and
squaring a box the way the model was trained is the model's job, not the caller's. Notebook 3
(``3_Facial_Keypoint_Detection.ipynb``) teaches each step.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast, runtime_checkable

import cv2
import numpy as np

from fkp.boxes import merge_overlapping
from fkp.calibration import HAAR, BoxStyle
from fkp.images import as_rgb8, to_gray8
from fkp.landmarks import NUM_KEYPOINTS
from fkp.predict import KeypointPredictor

HAAR_CASCADE_FILE = "haarcascade_frontalface_default.xml"
"""The cascade :class:`HaarFaceDetector` loads from ``cv2.data.haarcascades``."""
DetectorName = Literal["auto", "yunet", "haar"]
DETECTOR_NAMES: tuple[str, ...] = ("auto", "yunet", "haar")
"""Names :func:`make_detector` and ``--detector`` accept."""


@dataclass(frozen=True)
class Detections:
    """Faces found on one image, as every fkp detector's ``detect_faces(image)`` returns them.

    Attributes:
        boxes: (N, 4) float32 x, y, w, h in pixels of the image.
        scores: (N,) float32 confidence (the detector's own scale), NaN where it gives none.
        angles: (N,) float32 roll of each face in degrees (:func:`fkp.geometry.roll_degrees`),
            NaN where the detector does not know it.
    """

    boxes: np.ndarray
    scores: np.ndarray
    angles: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        object.__setattr__(self, "boxes", boxes)
        for name in ("scores", "angles"):
            values = np.asarray(getattr(self, name), dtype=np.float32).reshape(-1)
            if len(values) != len(boxes):
                raise ValueError(f"Detections: {len(boxes)} boxes but {len(values)} {name}")
            object.__setattr__(self, name, values)

    def __len__(self) -> int:
        return len(self.boxes)


@runtime_checkable
class FaceDetector(Protocol):
    """Anything that finds faces: ``detect(image) -> boxes``."""

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Find faces.

        Args:
            image: (H, W, 3) uint8 RGB.

        Returns:
            (N, 4) float32 boxes x, y, w, h in pixels of ``image`` (N may be 0).
        """
        ...


def _frozen_array(values: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.array(values, dtype=np.float32)  # a copy, so freezing it cannot freeze the caller's array
    if array.shape != shape:
        raise ValueError(f"Face.{name} must have shape {shape}, got {array.shape}")
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face.

    Attributes:
        box: (4,) float32 x, y, w, h of the detector's box, in pixels of the input image.
        keypoints: (68, 2) float32 points, x then y, in pixels of the input image.
        score: the detector's confidence (for :class:`HaarFaceDetector`, the number of raw
            detections merged into the box; for YuNet, 0-1), or None if the detector gives none.

    The arrays are read-only copies.
    """

    box: np.ndarray
    keypoints: np.ndarray
    score: float | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", _frozen_array(self.box, (4,), "box"))
        object.__setattr__(self, "keypoints", _frozen_array(self.keypoints, (NUM_KEYPOINTS, 2), "keypoints"))
        if self.score is not None:
            object.__setattr__(self, "score", float(self.score))

    def to_dict(self, decimals: int = 2) -> dict[str, Any]:
        """JSON-ready form: ``{"box": [x, y, w, h], "score": float | None, "keypoints": [[x, y], ...]}``."""
        return {
            "box": [round(float(v), decimals) for v in self.box],
            "score": self.score,
            "keypoints": [[round(float(x), decimals), round(float(y), decimals)] for x, y in self.keypoints],
        }


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (Viola-Jones) as a :class:`FaceDetector`.

    It knows no roll: :meth:`detect_faces` gives NaN angles, and it finds few faces rolled by more
    than about 20 degrees.

    Big photos are searched on a copy whose longer side is at most ``max_side`` pixels and the boxes
    are mapped back, which bounds time and memory; nested and duplicate boxes are merged.

    Args:
        scale_factor: how much the search window grows between pyramid levels (> 1); smaller
            finds more faces, more slowly.
        min_neighbors: a box is kept only if more than this many raw detections overlap it;
            higher means fewer false faces and more missed ones.
        min_size: smallest face side searched for, in pixels of the input image.
        max_side: longer side of the copy the cascade runs on; None searches at full size.
        merge_overlap: boxes overlapping more than this fraction of the smaller one are merged
            (:func:`merge_overlapping`); None keeps every box OpenCV returns.
    """

    box_style: BoxStyle = HAAR
    """How the cascade's boxes relate to the tight box of the 68 points (:mod:`fkp.calibration`)."""

    def __init__(
        self,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 30,
        max_side: int | None = 1280,
        merge_overlap: float | None = 0.5,
    ) -> None:
        if scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be above 1, got {scale_factor}")
        if min_neighbors < 0 or min_size < 1 or (max_side is not None and max_side < 32):
            raise ValueError("min_neighbors must be >= 0, min_size >= 1 and max_side >= 32")
        if merge_overlap is not None and not 0 < merge_overlap <= 1:
            raise ValueError(f"merge_overlap must be in (0, 1] or None, got {merge_overlap}")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.max_side = max_side
        self.merge_overlap = merge_overlap
        path = os.path.join(cv2.data.haarcascades, HAAR_CASCADE_FILE)  # type: ignore[attr-defined]  # no stub for cv2.data
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"cannot load the Haar cascade {path} (OpenCV 4.x ships it; OpenCV 5 does not)")

    def __repr__(self) -> str:
        return (
            f"HaarFaceDetector(scale_factor={self.scale_factor}, min_neighbors={self.min_neighbors}, "
            f"min_size={self.min_size}, max_side={self.max_side}, merge_overlap={self.merge_overlap})"
        )

    def detect_with_scores(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Find faces, with a confidence per face.

        Args:
            image: (H, W, 3) uint8 RGB (other layouts go through :func:`fkp.images.to_rgb8`).

        Returns:
            boxes (N, 4) float32 x, y, w, h in pixels of ``image``, sorted left to right, and
            scores (N,) float32: the number of raw detections merged into each box.
        """
        gray = to_gray8(image)
        height, width = gray.shape
        scale = 1.0
        if self.max_side is not None and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        min_side = max(1, round(self.min_size * scale))
        found, counts = self._cascade.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_side, min_side)
        )
        boxes = np.asarray(found, dtype=np.float32).reshape(-1, 4) / scale
        scores = np.asarray(counts, dtype=np.float32).reshape(-1)
        if len(boxes) > 1 and self.merge_overlap is not None:
            kept = merge_overlapping(boxes, scores, self.merge_overlap)
            boxes, scores = boxes[kept], scores[kept]
        order = np.lexsort((boxes[:, 1], boxes[:, 0]))  # left to right, then top to bottom
        return boxes[order], scores[order]

    def detect_faces(self, image: np.ndarray) -> Detections:
        """:meth:`detect_with_scores` as :class:`Detections` (angles NaN: the cascade knows no roll)."""
        boxes, scores = self.detect_with_scores(image)
        return Detections(boxes, scores, np.full(len(boxes), np.nan, np.float32))

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Find faces: (N, 4) float32 boxes x, y, w, h in pixels of ``image``, left to right."""
        return self.detect_with_scores(image)[0]


def detect_faces(detector: FaceDetector, image: np.ndarray) -> Detections:
    """Run any :class:`FaceDetector` and get :class:`Detections`: its own ``detect_faces`` if it
    has one, else its boxes with NaN scores and angles."""
    own = getattr(detector, "detect_faces", None)
    if callable(own):
        return own(image)
    boxes = np.asarray(detector.detect(image), dtype=np.float32).reshape(-1, 4)
    nan = np.full(len(boxes), np.nan, np.float32)
    return Detections(boxes, nan, nan)


def _stderr_line(message: str) -> None:
    print(message, file=sys.stderr)


def make_detector(
    name: str = "auto", notify: Any = _stderr_line, rotations: bool = True, **haar_options: Any
) -> FaceDetector:
    """The face detector called ``name``.

    Args:
        name: ``"yunet"`` (:class:`fkp.yunet.YuNetFaceDetector`), ``"haar"`` (:class:`HaarFaceDetector`)
            or ``"auto"``: YuNet when its model file is found and intact, else Haar.
        notify: called with one line when ``"auto"`` falls back to Haar (default: print it on stderr).
        rotations: YuNet also searches copies turned by :data:`fkp.yunet.ROTATIONS`, for faces
            rolled beyond about 30 deg (about three times the time; Haar ignores it); False
            searches the image only.
        haar_options: keyword arguments for :class:`HaarFaceDetector`.

    Raises:
        fkp.yunet.ModelFileError: ``"yunet"`` and its file is missing, corrupt or unloadable.
        ValueError: an unknown name.
    """
    if name not in DETECTOR_NAMES:
        raise ValueError(f"unknown detector {name!r}; use one of {', '.join(DETECTOR_NAMES)}")
    if name == "haar":
        return HaarFaceDetector(**haar_options)
    from fkp.yunet import ROTATIONS, ModelFileError, YuNetFaceDetector

    turns = ROTATIONS if rotations else ()
    if name == "yunet":
        return YuNetFaceDetector(rotations=turns)
    try:
        return YuNetFaceDetector(rotations=turns)
    except ModelFileError as error:
        notify(f"using the Haar face detector: {error}")
        return HaarFaceDetector(**haar_options)


@functools.lru_cache(maxsize=1)
def default_detector() -> FaceDetector:
    """The detector :func:`detect_keypoints` uses when given none: ``make_detector("auto")``, built
    once (so the hint that YuNet's file is missing is shown once)."""
    return make_detector("auto")


@functools.lru_cache(maxsize=1)
def default_model() -> KeypointPredictor:
    """The shipped keypoint model, ``fkp.load_model()``, loaded once and reused."""
    from fkp.predict import load_model

    return load_model()


def detect_keypoints(
    image: np.ndarray | str | os.PathLike[str],
    detector: FaceDetector | DetectorName | None = None,
    model: KeypointPredictor | None = None,
    labels: str | None = None,
) -> list[Face]:
    """Find every face in a photo and its 68 keypoints.

    Args:
        image: (H, W, 3) uint8 RGB, any layout :func:`fkp.images.to_rgb8` accepts, or an image
            file path (read with :func:`fkp.images.load_image`).
        detector: finds the faces: a :class:`FaceDetector`, or a name for :func:`make_detector`
            (``"auto"``, ``"yunet"``, ``"haar"``); default ``"auto"`` (built once and reused).
            Its roll angles, where known, go to ``model.predict``.
        model: predicts keypoints in each box; default the shipped model (``fkp.load_model()``),
            loaded on first use and cached.
        labels: the labelling convention of the keypoints, one of the model's ``conventions``
            (``"300w"``, ``"udacity"`` for the shipped model); ``None``: the model's default, 300-W's.

    Returns:
        One :class:`Face` per detected face, in the detector's order (left to right for fkp's);
        an empty list when there is none. Boxes and keypoints are in pixels of ``image``.

    Raises:
        fkp.images.ImageReadError: ``image`` is a path that cannot be read.
        fkp.yunet.ModelFileError: ``detector="yunet"`` and YuNet's file is missing or corrupt.
        ValueError: (one line) the model has no head for ``labels``.
    """
    rgb = as_rgb8(image)
    if detector is None or detector == "auto":
        detector = default_detector()
    elif isinstance(detector, str):
        detector = make_detector(detector)
    found = detect_faces(detector, rgb)
    boxes = found.boxes
    if len(boxes) == 0:
        return []
    model = default_model() if model is None else model
    angles = None if np.isnan(found.angles).all() else found.angles
    predict = cast(Callable[..., np.ndarray], model.predict)
    options = {} if labels is None else {"labels": labels}  # KeypointModel.predict takes it, not every predictor
    keypoints = np.asarray(predict(rgb, boxes, angles=angles, **options), dtype=np.float32)
    if keypoints.shape != (len(boxes), NUM_KEYPOINTS, 2):
        raise ValueError(f"model.predict returned shape {keypoints.shape}, expected ({len(boxes)}, {NUM_KEYPOINTS}, 2)")
    return [
        Face(box=box, keypoints=points, score=None if np.isnan(score) else float(score))
        for box, points, score in zip(boxes, keypoints, found.scores)
    ]
