"""What every face detector is: the :class:`FaceDetector` protocol and the :class:`Detections` it gives.

A detector only needs ``detect(image) -> boxes``; fkp's own also have ``detect_faces(image) ->
Detections`` (boxes, scores and roll angles), and :func:`detect_faces` gives that shape for any
detector. Boxes are (N, 4) float32 ``x, y, w, h`` in pixels of the image, left to right for fkp's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class DetectorUnavailableError(RuntimeError):
    """A detector cannot be built on this machine (a model file missing or broken); the message says
    how to get it. ``make_detector("auto")`` then tries the next detector of the table."""


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


def detect_faces(detector: FaceDetector, image: np.ndarray) -> Detections:
    """Run any :class:`FaceDetector` and get :class:`Detections`: its own ``detect_faces`` if it
    has one, else its boxes with NaN scores and angles."""
    own = getattr(detector, "detect_faces", None)
    if callable(own):
        return own(image)
    boxes = np.asarray(detector.detect(image), dtype=np.float32).reshape(-1, 4)
    nan = np.full(len(boxes), np.nan, np.float32)
    return Detections(boxes, nan, nan)
