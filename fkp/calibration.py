"""How each face detector boxes a face, compared with the tight box of the face's 68 points.

The keypoint model is trained on crops around boxes drawn in the style of every detector it
serves (:class:`BoxStyle`), so at inference a detector's box goes to the model unchanged: each
detector's row of the table (:mod:`fkp.detectors.registry`) carries its style, the model needs no
per-detector adjustment. The figures below are measured on the training splits by
``benchmarks/detector_boxes.py``, which prints them for the table's detectors.

Offsets and sizes are fractions of the tight box's longer side; a box's centre offset is measured
along the face's own axes (x to the subject's left, y down towards the chin) for an upright face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BoxStyle:
    """A detector's boxes relative to the tight box of the 68 points.

    Attributes:
        name: the detector's name.
        shift: (x, y) mean offset of the box centre from the tight box centre, fraction of the
            tight box's longer side.
        shift_spread: (x, y) standard deviation of that offset.
        zoom: median of (box's longer side / tight box's longer side).
        zoom_spread: standard deviation of the log of that ratio.
    """

    name: str
    shift: tuple[float, float]
    shift_spread: tuple[float, float]
    zoom: float
    zoom_spread: float

    def sample(
        self, centre: np.ndarray, side: float, rng: np.random.Generator | np.random.RandomState
    ) -> tuple[np.ndarray, float]:
        """A random box of this style around a face whose tight box has ``centre`` and longer ``side``.

        Args:
            centre: (2,) tight box centre, in the frame the offsets are measured in.
            side: the tight box's longer side, pixels.
            rng: the random generator to draw with.

        Returns:
            ((2,) box centre, box's longer side).
        """
        offset = rng.normal(np.asarray(self.shift), np.asarray(self.shift_spread)) * side
        return np.asarray(centre) + offset, side * self.zoom * math.exp(rng.normal(0.0, self.zoom_spread))


# OpenCV's frontal-face Haar cascade, measured on the training splits of the Udacity set (98.6%
# found; centre y -0.181, sd x 0.104, y 0.036; side x1.141, log sd 0.094) and 300-W (91.3% found;
# y -0.166, sd x 0.093, y 0.046; x1.149, log sd 0.096): it takes in the forehead, not the chin.
HAAR = BoxStyle("haar", shift=(0.0, -0.175), shift_spread=(0.10, 0.04), zoom=1.145, zoom_spread=0.095)

# YuNet (OpenCV Model Zoo, 2023mar), same benchmark: Udacity 100% found (y -0.162, sd x 0.033,
# y 0.037; x1.230, log sd 0.075) and 300-W 100% (y -0.163, sd x 0.032, y 0.045; x1.274, log sd 0.075).
YUNET = BoxStyle("yunet", shift=(0.0, -0.16), shift_spread=(0.035, 0.04), zoom=1.25, zoom_spread=0.075)
