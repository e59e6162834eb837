"""What a keypoint model is to the rest of fkp: :class:`KeypointPredictor`, anything with
``predict(image, boxes, angles, labels)``, and :class:`SecondPass`, the rule for an upright second
look at a tilted face. :func:`fkp.predict.load_model` returns a :class:`fkp.predict.KeypointModel`,
one such predictor; :mod:`fkp.detect`, :mod:`fkp.tracking` and :mod:`fkp.video` accept any.

Roll normalisation: the model does not care how the head is rolled. A first pass finds the
points; when their eye line is tilted from the crop's axes by more than the model's
:class:`SecondPass` rule allows, a second pass runs on a crop turned so that the face is upright
and framed by the points found (:func:`fkp.geometry.upright_affine`), and its points are mapped
back, averaged with the first pass's or replacing them as the rule says. A detector that knows
each face's roll (YuNet's eye points) can pass it as ``angles``, so the first pass is already
upright. ``SecondPass.off()`` asks for the first pass alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class KeypointPredictor(Protocol):
    """Anything with the model API of :func:`fkp.predict.load_model`: ``predict(image, boxes, angles, labels) -> keypoints``."""

    def predict(
        self, image: np.ndarray, boxes: np.ndarray, angles: np.ndarray | None = None, labels: str | None = None
    ) -> np.ndarray:
        """Keypoints of the face in each box.

        Args:
            image: (H, W, 3) uint8 RGB.
            boxes: (N, 4) float x, y, w, h in pixels.
            angles: (N,) roll of each face in degrees (:func:`fkp.geometry.roll_degrees`), NaN
                where unknown; None when no angle is known.
            labels: the labelling convention to answer in (:mod:`fkp.conventions`); None: the
                predictor's default.

        Returns:
            (N, 68, 2) keypoints in pixels of ``image``, x then y.
        """
        ...


@dataclass(frozen=True)
class SecondPass:
    """When a face gets an upright second pass, and how it meets the first: the model's rule.

    After each pass, a face's roll left in the crop it was cut from (the eye line of the points
    found, :func:`fkp.geometry.keypoints_roll`, less the roll the crop was turned by) is its tilt.

    Attributes:
        roll_threshold: degrees of tilt above which a face gets an upright pass
            (``math.inf``: never, see :meth:`off`).
        average_tilt: degrees of tilt up to which the pass before's points are averaged with the
            upright pass's instead of replaced by them: there both crops are views the network
            was trained on (training tilts its everyday crops by a few degrees),
            and two views of one face err differently. ``benchmarks/second_pass.py`` scores rules.
        extra_passes: upright passes every face gets whatever its tilt, each cropped around the
            points of the pass before.
    """

    roll_threshold: float = 10.0
    average_tilt: float = 25.0
    extra_passes: int = 0

    def __post_init__(self) -> None:
        if math.isnan(self.roll_threshold) or math.isnan(self.average_tilt):
            raise ValueError(f"second-pass angles must be numbers, got {self}")
        if not (isinstance(self.extra_passes, int) and self.extra_passes >= 0):
            raise ValueError(f"extra_passes must be an integer >= 0, got {self.extra_passes!r}")

    @classmethod
    def off(cls) -> SecondPass:
        """One plain pass: crop the given box, predict; never a second look."""
        return cls(roll_threshold=math.inf)
