"""OpenCV's frontal-face Haar cascade (Viola-Jones) behind the :class:`~fkp.detectors.base.FaceDetector` protocol.

Notebook 3 (``3_Facial_Keypoint_Detection.ipynb``) teaches how it works and what its options do.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from fkp.boxes import left_to_right, merge_overlapping, shrink_to_max_side
from fkp.detectors.base import Detections
from fkp.images import to_gray8

HAAR_CASCADE_FILE = "haarcascade_frontalface_default.xml"
"""The cascade :class:`HaarFaceDetector` loads from ``cv2.data.haarcascades``."""
MIN_SCALE_FACTOR = 1.01
"""The smallest pyramid step accepted: a step closer to 1 makes OpenCV build thousands of levels
and run out of memory instead of finding more faces."""


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (Viola-Jones) as a :class:`~fkp.detectors.base.FaceDetector`.

    It knows no roll: :meth:`detect_faces` gives NaN angles, and it finds few faces rolled by more
    than about 20 degrees.

    Big photos are searched on a copy whose longer side is at most ``max_side`` pixels and the boxes
    are mapped back (:func:`fkp.boxes.shrink_to_max_side`), which bounds time and memory; nested and
    duplicate boxes are merged.

    Args:
        scale_factor: how much the search window grows between pyramid levels, at least
            :data:`MIN_SCALE_FACTOR`; smaller finds more faces, more slowly.
        min_neighbors: a box is kept only if more than this many raw detections overlap it;
            higher means fewer false faces and more missed ones.
        min_size: smallest face side searched for, in pixels of the input image.
        max_side: longer side of the copy the cascade runs on; None searches at full size.
        merge_overlap: boxes overlapping more than this fraction of the smaller one are merged
            (:func:`fkp.boxes.merge_overlapping`); None keeps every box OpenCV returns.
    """

    def __init__(
        self,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 30,
        max_side: int | None = 1280,
        merge_overlap: float | None = 0.5,
    ) -> None:
        if not scale_factor >= MIN_SCALE_FACTOR:
            raise ValueError(f"scale_factor must be at least {MIN_SCALE_FACTOR}, got {scale_factor}")
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
        gray, scale = shrink_to_max_side(to_gray8(image), self.max_side)
        min_side = max(1, round(self.min_size * scale))
        found, counts = self._cascade.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_side, min_side)
        )
        boxes = np.asarray(found, dtype=np.float32).reshape(-1, 4) / scale
        scores = np.asarray(counts, dtype=np.float32).reshape(-1)
        if len(boxes) > 1 and self.merge_overlap is not None:
            kept = merge_overlapping(boxes, scores, self.merge_overlap)
            boxes, scores = boxes[kept], scores[kept]
        order = left_to_right(boxes)
        return boxes[order], scores[order]

    def detect_faces(self, image: np.ndarray) -> Detections:
        """:meth:`detect_with_scores` as :class:`~fkp.detectors.base.Detections` (angles NaN: the cascade knows no roll)."""
        boxes, scores = self.detect_with_scores(image)
        return Detections(boxes, scores, np.full(len(boxes), np.nan, np.float32))

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Find faces: (N, 4) float32 boxes x, y, w, h in pixels of ``image``, left to right."""
        return self.detect_with_scores(image)[0]
