"""One detected face: its box, 68 keypoints and score, in pixels of the image it was found in.

What :class:`fkp.detect.Landmarker` answers, :mod:`fkp.bulk` streams and :mod:`fkp.tracking` smooths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fkp.landmarks import NUM_KEYPOINTS


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
        score: the detector's confidence (for :class:`fkp.detectors.haar.HaarFaceDetector`, the
            number of raw detections merged into the box; for YuNet, 0-1), or None if the detector
            gives none.

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
