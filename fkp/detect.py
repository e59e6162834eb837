"""Faces and their 68 keypoints on any photo: a face detector, then the keypoint model in each box.

The pieces::

    Face                one face: box, keypoints (68, 2) in pixels of the input image, score (:mod:`fkp.face`)
    LandmarkerSpec      how a worker process builds a Landmarker, from names
    Landmarker          the pipeline, built once: Landmarker(detector, model)(image) -> list[Face];
                        Landmarker(...).run(paths, jobs=N) streams many images (:mod:`fkp.bulk`)
    detect_keypoints    one call for one photo: builds a Landmarker and runs it

The detectors live in :mod:`fkp.detectors` (the table :func:`fkp.detectors.make_detector` reads),
the model in :mod:`fkp.predict`. The pipeline hands the detector's boxes and roll angles to
``model.predict(image, boxes, angles, labels)`` unchanged: padding and squaring a box the way the
model was trained is the model's job, not the caller's. Notebook 3 (``3_Facial_Keypoint_Detection.ipynb``)
teaches each step.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fkp.bulk import DEFAULT_BATCH_SIZE, ImageResult, run_images
from fkp.detectors import Detections, FaceDetector, detect_faces, make_detector
from fkp.face import Face
from fkp.images import as_rgb8
from fkp.landmarks import NUM_KEYPOINTS
from fkp.predictor import KeypointPredictor


@dataclass(frozen=True)
class LandmarkerSpec:
    """How a worker process builds its :class:`Landmarker`: names and files, no objects,
    so that it can be sent to a fresh process. Calling it builds one.

    Attributes:
        detector: a name for :func:`fkp.detectors.make_detector` (``"auto"``, ``"yunet"``, ``"haar"``).
        model: a model file for :func:`fkp.predict.load_model`; None: the shipped model.
        passes: keypoint passes per face (``fkp detect --passes``).
        labels: the keypoints' labelling convention, one of the model's; None: its default.
        detector_options: further options of :func:`fkp.detectors.make_detector` (``rotations``, ``min_size``, ...).
    """

    detector: str = "auto"
    model: str | None = None
    passes: int = 1
    labels: str | None = None
    detector_options: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> Landmarker:
        from fkp.predict import load_model
        from fkp.predictor import SecondPass

        model = load_model(self.model, second_pass=SecondPass(extra_passes=self.passes - 1))
        detector = make_detector(self.detector, notify=lambda line: None, **self.detector_options)
        return Landmarker(detector, model, labels=self.labels)


class Landmarker:
    """The pipeline, built once and called on many images: faces, then 68 keypoints in each.

    Like face-alignment's ``FaceAlignment`` or MediaPipe's ``FaceLandmarker``: build it once (the
    detector and the model load here), then call it per image::

        landmarker = Landmarker()                  # YuNet if its file is found, else Haar; the shipped model
        faces = landmarker(image)                  # list[Face]

    Args:
        detector: finds the faces: a :class:`fkp.detectors.FaceDetector`, or a name for
            :func:`fkp.detectors.make_detector` (``"auto"``, ``"yunet"``, ``"haar"``, or any
            registered one); None: ``"auto"``. Its roll angles, where known, go to the model.
        model: predicts keypoints in each box (:class:`fkp.predictor.KeypointPredictor`); None: the
            shipped model, :func:`fkp.predict.load_model`.
        labels: the labelling convention of the keypoints, one of the model's ``conventions``
            (``"300w"``, ``"udacity"`` for the shipped model); None: the model's default, 300-W's.

    Raises:
        fkp.detectors.DetectorUnavailableError: the named detector cannot be built here (YuNet
            without its file).
        ValueError: an unknown detector name.
    """

    def __init__(
        self,
        detector: FaceDetector | str | None = None,
        model: KeypointPredictor | None = None,
        labels: str | None = None,
    ) -> None:
        self.spec: LandmarkerSpec | None = None
        """How a worker process of :meth:`run` builds a copy: known when the detector is given by
        name and the model is the shipped one."""
        if detector is None or isinstance(detector, str):
            if model is None:
                self.spec = LandmarkerSpec("auto" if detector is None else detector, labels=labels)
            detector = make_detector("auto" if detector is None else detector)
        if model is None:
            from fkp.predict import load_model

            model = load_model()
        self.detector: FaceDetector = detector
        self.model: KeypointPredictor = model
        self.labels = labels

    def __repr__(self) -> str:
        return f"Landmarker(detector={self.detector!r}, model={self.model!r}, labels={self.labels!r})"

    def detect(self, image: np.ndarray | str | os.PathLike[str]) -> list[Face]:
        """Find every face in a photo and its 68 keypoints.

        Args:
            image: (H, W, 3) uint8 RGB, any layout :func:`fkp.images.to_rgb8` accepts, or an image
                file path (read with :func:`fkp.images.load_image`).

        Returns:
            One :class:`Face` per detected face, in the detector's order (left to right for fkp's);
            an empty list when there is none. Boxes and keypoints are in pixels of ``image``.

        Raises:
            fkp.images.ImageReadError: ``image`` is a path that cannot be read.
            ValueError: (one line) the model has no head for ``labels``, or answers in the wrong shape.
        """
        rgb = as_rgb8(image)
        found = detect_faces(self.detector, rgb)
        if len(found.boxes) == 0:
            return []
        angles = None if np.isnan(found.angles).all() else found.angles
        return _faces(found, self.model.predict(rgb, found.boxes, angles=angles, labels=self.labels))

    def detect_many(self, images: Sequence[np.ndarray | str | os.PathLike[str]]) -> list[list[Face]]:
        """:meth:`detect` for several images, the faces of all of them through the keypoint network
        in one batch per pass (where the model has ``predict_many``, as
        :class:`fkp.predict.KeypointModel` does); the same faces and points as :meth:`detect`.

        Args:
            images: images as :meth:`detect` takes them.

        Returns:
            One list of :class:`Face` per image, in order.

        Raises:
            as :meth:`detect`.
        """
        rgbs = [as_rgb8(image) for image in images]
        found = [detect_faces(self.detector, rgb) for rgb in rgbs]
        angles = [None if np.isnan(each.angles).all() else each.angles for each in found]
        predict_many = getattr(self.model, "predict_many", None)
        if predict_many is None:  # any KeypointPredictor: one call per image with faces
            return [self.detect(rgb) if len(each.boxes) else [] for rgb, each in zip(rgbs, found)]
        keypoints = predict_many(rgbs, [each.boxes for each in found], angles, labels=self.labels)
        return [_faces(each, points) if len(each.boxes) else [] for each, points in zip(found, keypoints)]

    __call__ = detect

    def run(
        self,
        images: Iterable[np.ndarray | str | os.PathLike[str]],
        batch_size: int = DEFAULT_BATCH_SIZE,
        jobs: int = 1,
    ) -> Iterator[ImageResult]:
        """Faces and keypoints of many images, streamed: one result per image as it finishes.

        Args:
            images: image file paths or (H, W, 3) uint8 RGB arrays, read lazily (a generator is fine).
            batch_size: images per task handed to a worker process.
            jobs: worker processes, each with its own copy of this landmarker (built from
                :attr:`spec`: a detector name and the shipped model) and one thread; 1 runs here.

        Returns:
            An iterator of :class:`fkp.bulk.ImageResult` (``index``, ``path``, ``sha256``, ``width``,
            ``height``, ``faces``, ``error``), one per image: in input order for ``jobs=1``, as they
            finish otherwise. An image that cannot be read, or whose worker died twice, has an
            ``error`` and no faces; the others go on.

        Raises:
            ValueError: ``jobs > 1`` for a landmarker built from objects rather than names; use
                :func:`fkp.bulk.run_images` with a :class:`LandmarkerSpec` or another
                picklable factory.
        """
        if jobs > 1 and self.spec is None:
            raise ValueError(
                "jobs > 1 builds a Landmarker in each worker, from names: Landmarker(detector_name); "
                "for other parts use fkp.bulk.run_images with a picklable factory"
            )
        sources = (os.fspath(image) if isinstance(image, (str, os.PathLike)) else image for image in images)
        factory = self.spec if jobs > 1 and self.spec is not None else lambda: self
        return run_images(sources, factory, jobs=jobs, batch_size=batch_size)


def _faces(found: Detections, keypoints: np.ndarray) -> list[Face]:
    """One :class:`Face` per detection, with its (68, 2) keypoints from ``keypoints`` (N, 68, 2)."""
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.shape != (len(found.boxes), NUM_KEYPOINTS, 2):
        raise ValueError(
            f"model.predict returned shape {keypoints.shape}, expected ({len(found.boxes)}, {NUM_KEYPOINTS}, 2)"
        )
    return [
        Face(box=box, keypoints=points, score=None if np.isnan(score) else float(score))
        for box, points, score in zip(found.boxes, keypoints, found.scores)
    ]


def detect_keypoints(
    image: np.ndarray | str | os.PathLike[str],
    detector: FaceDetector | str | None = None,
    model: KeypointPredictor | None = None,
    labels: str | None = None,
) -> list[Face]:
    """Find every face in one photo and its 68 keypoints: ``Landmarker(detector, model, labels)(image)``.

    What it is not given it builds on each call (``"auto"``'s detector, the shipped model): for many
    images, build a :class:`Landmarker` once and call it, or pass ``detector`` and ``model``.

    Args:
        image: (H, W, 3) uint8 RGB, any layout :func:`fkp.images.to_rgb8` accepts, or an image file path.
        detector: a :class:`fkp.detectors.FaceDetector` or a detector name; None: ``"auto"``.
        model: a :class:`fkp.predictor.KeypointPredictor`; None: the shipped model.
        labels: the keypoints' labelling convention, one of the model's; None: its default.

    Returns:
        One :class:`Face` per detected face (see :meth:`Landmarker.detect`); an empty list when there is none.

    Raises:
        fkp.images.ImageReadError: ``image`` is a path that cannot be read.
        fkp.detectors.DetectorUnavailableError: ``detector="yunet"`` and YuNet's file is missing or corrupt.
        ValueError: (one line) the model has no head for ``labels``.
    """
    return Landmarker(detector, model, labels).detect(image)
