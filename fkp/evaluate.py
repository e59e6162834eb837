"""Evaluate a keypoint model on a labelled split, with ground-truth or detector boxes.

With ``boxes="gt"`` each face gets the tight box of its 68 labelled points. With a detector's name
(``"yunet"``, ``"haar"``, any in :func:`fkp.detectors.detector_names`) the detector runs on the whole
image and the detection that overlaps the labelled face is used, with its roll angle where the
detector knows it; a face with no such detection counts as *not found* and is left out of the NME
figures (the found share is reported beside them).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from fkp import conventions, metrics
from fkp.boxes import box_overlap
from fkp.data import FacialKeypointsDataset, Split, subset_of
from fkp.detectors import FaceDetector, detect_faces, detector_names, make_detector
from fkp.geometry import keypoints_box, rotate_image
from fkp.landmarks import NUM_KEYPOINTS
from fkp.predict import KeypointModel
from fkp.utils import PROGRESS_MININTERVAL_S

GROUND_TRUTH = "gt"
"""The box source that gives each face the tight box of its labelled points."""
MIN_OVERLAP = 0.3
"""A detection is the labelled face when its box overlaps the tight box by this much (IoU)."""


@dataclass
class Evaluation:
    """The figures of one evaluation run."""

    split: str
    boxes: str
    total: int  # labelled faces in the split
    found: int  # faces that had a box (all of them with ground-truth boxes)
    report: metrics.Report  # NME figures over the found faces
    ms_per_face: float  # model.predict time per face, one face per call
    errors: np.ndarray = field(repr=False)  # (found,) NME per found face
    names: list[str] = field(repr=False, default_factory=list)  # image names of the found faces
    rotation: float = 0.0  # degrees every photo was turned by, clockwise on screen

    @property
    def found_rate(self) -> float:
        return self.found / self.total if self.total else 0.0

    def by_subset(self) -> dict[str, metrics.Report]:
        """Figures per 300-W subset (``lfpw``, ``helen``, ...) of the found faces; empty for the Udacity set."""
        subsets = np.array([subset_of(name) or "" for name in self.names])
        return {name: metrics.summarize(self.errors[subsets == name]) for name in sorted(set(subsets.tolist()) - {""})}

    def as_dict(self) -> dict[str, object]:
        return {
            "split": self.split,
            "boxes": self.boxes,
            "total": self.total,
            "found": self.found,
            "found_rate": self.found_rate,
            "ms_per_face": self.ms_per_face,
            "rotation": self.rotation,
            **self.report.as_dict(),
            "subsets": {name: report.as_dict() for name, report in self.by_subset().items()},
        }

    def __str__(self) -> str:
        turned = f", photos turned {self.rotation:g} deg" if self.rotation else ""
        subsets = "".join(
            f"\n  {name}: {report.count} faces, mean NME {report.mean_nme:.2%}, failure rate {report.failure_rate:.1%}"
            for name, report in self.by_subset().items()
        )
        return (
            f"{self.split} split, {self.boxes} boxes{turned}: {self.found}/{self.total} faces ({self.found_rate:.1%})\n"
            f"{self.report}{subsets}\n{self.ms_per_face:.2f} ms per face"
        )


def matching_detection(detections: np.ndarray, truth_box: np.ndarray) -> int | None:
    """Index of the detection box that overlaps ``truth_box`` most (IoU >= MIN_OVERLAP), or None."""
    if len(detections) == 0:
        return None
    overlaps = box_overlap(np.asarray(truth_box, dtype=np.float32)[None], detections)[0]
    best = int(np.argmax(overlaps))
    return best if overlaps[best] >= MIN_OVERLAP else None


def box_sources() -> tuple[str, ...]:
    """What ``boxes`` (and ``fkp evaluate --boxes``) accepts: ``"gt"`` and every registered detector."""
    return (GROUND_TRUTH, *detector_names())


def evaluate(
    model: KeypointModel,
    data_root: str | os.PathLike[str] | None = None,
    split: Split = "test",
    boxes: str = GROUND_TRUTH,
    detector: FaceDetector | None = None,
    progress: bool = True,
    dataset: FacialKeypointsDataset | None = None,
    rotation: float = 0.0,
) -> Evaluation:
    """Predict every labelled face of ``split`` and score it.

    Args:
        model: the model to evaluate.
        data_root: the data folder or a data set name (``"udacity"``, ``"300w"``; ``None``: the Udacity set).
        split: ``"test"`` (as the course reports) or ``"training"``.
        boxes: ``"gt"`` tight boxes of the labelled points, or a detector's name (:func:`box_sources`).
        detector: the detector for detection boxes; default ``make_detector(boxes)``
            (:func:`fkp.detectors.make_detector`; ``"yunet"`` raises
            :class:`fkp.detectors.yunet.ModelFileError` without its model file).
        progress: show a tqdm bar.
        dataset: an already loaded split to use instead of ``data_root`` and ``split`` (its
            decoded-image cache is reused, so timings are not disturbed by decoding).
        rotation: turn every photo and its labels by this many degrees first (clockwise on screen).

    A model with a heatmap head for the data set's labelling convention answers with it
    (:attr:`fkp.predict.KeypointModel.conventions`); another model that records its convention
    is scored in the data set's convention (:func:`fkp.conventions.convert`).

    Raises:
        ValueError: ``boxes`` is not a box source.
    """
    from tqdm.auto import tqdm

    dataset = dataset or FacialKeypointsDataset(data_root, split)
    if boxes not in box_sources():
        raise ValueError(f"unknown box source {boxes!r}; use one of {', '.join(box_sources())}")
    if detector is None and boxes != GROUND_TRUTH:
        detector = make_detector(boxes)
    predicted, truth, names = [], [], []
    seconds = 0.0
    spoken = tuple(getattr(model, "conventions", ()))
    labels = dataset.convention if dataset.convention in spoken else None  # the model's head for this set
    for index in tqdm(
        range(len(dataset)),
        desc=f"evaluating {split} ({boxes} boxes)",
        disable=not progress,
        mininterval=PROGRESS_MININTERVAL_S,
    ):
        image, points = dataset.image(index), dataset.keypoints[index]
        if rotation:
            image, points = rotate_image(image, points, rotation)
        box = keypoints_box(points)
        angles = None
        if detector is not None:
            found = detect_faces(detector, image)
            match = matching_detection(found.boxes, box)
            if match is None:
                continue
            box = found.boxes[match]
            angles = None if np.isnan(found.angles[match]) else found.angles[match : match + 1]
        start = time.perf_counter()
        predicted.append(model.predict(image, box[None], angles=angles, labels=labels)[0])
        seconds += time.perf_counter() - start
        truth.append(points)
        names.append(dataset.names[index])
    # (found, 68, 2) each, also when no face was found
    predicted_array = np.asarray(predicted).reshape(-1, NUM_KEYPOINTS, 2)
    truth_array = np.asarray(truth).reshape(-1, NUM_KEYPOINTS, 2)
    model_labels = labels or (spoken[0] if spoken else None)
    if model_labels in conventions.CONVENTIONS and dataset.convention is not None and len(predicted_array):
        # Score in the data set's own convention (see fkp.conventions).
        predicted_array = conventions.convert(predicted_array, model_labels, dataset.convention)
    return Evaluation(
        split=dataset.split,
        boxes=boxes,
        total=len(dataset),
        found=len(predicted),
        report=metrics.report(predicted_array, truth_array),
        ms_per_face=1000 * seconds / max(1, len(predicted)),
        errors=metrics.nme(predicted_array, truth_array),
        names=names,
        rotation=rotation,
    )
