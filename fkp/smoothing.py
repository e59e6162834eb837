"""Temporal smoothing of keypoints in videos: the One Euro filter.

Keypoints predicted frame by frame jitter by a pixel or two even on a face that does not move. The
One Euro filter (Casiez, Roussel and Vogel, CHI 2012) is a low-pass filter whose cut-off frequency
rises with the speed of the signal: strong smoothing while the face is still, little lag when it
moves. Each face that :class:`fkp.tracking.FaceTracker` follows carries one filter on its box and
one on its 68 points.

One knob, ``smoothing`` (the "strength"): 0 turns smoothing off, 1 is the default, 2 smooths twice
as hard (half the cut-off frequency at rest), and so on.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_SMOOTHING = 1.0
"""Default strength for :class:`fkp.tracking.FaceTracker`, ``fkp video --smoothing`` and :func:`fkp.video.annotate_video`."""
MIN_CUTOFF_HZ = 1.0
"""Cut-off frequency of a still face at strength 1 (divided by the strength)."""
BETA = 4.0
"""How fast the cut-off rises with speed, per face size per second: at one face size per second the
cut-off is ``MIN_CUTOFF_HZ / strength + BETA`` Hz."""
DERIVATIVE_CUTOFF_HZ = 1.0
"""Cut-off of the low-pass filter on the speed estimate."""


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Exponential smoothing factor of a first-order low-pass filter with this cut-off (Hz)."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """The One Euro filter on arrays of points.

    Args:
        min_cutoff: cut-off frequency (Hz) when the points are still; lower smooths more.
        beta: growth of the cut-off with speed, Hz per (unit of ``scale``) per second; higher
            lags less on fast moves.
        d_cutoff: cut-off frequency (Hz) of the speed estimate.

    Each point (last axis = its coordinates, e.g. x and y) gets its own cut-off from its own speed.
    """

    def __init__(self, min_cutoff: float = MIN_CUTOFF_HZ, beta: float = BETA, d_cutoff: float = DERIVATIVE_CUTOFF_HZ):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be positive and beta non-negative")
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def __repr__(self) -> str:
        return f"OneEuroFilter(min_cutoff={self.min_cutoff}, beta={self.beta}, d_cutoff={self.d_cutoff})"

    def reset(self) -> None:
        """Forget the past: the next value passes through unchanged."""
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time: float | None = None

    def __call__(self, value: np.ndarray, timestamp: float, scale: float = 1.0) -> np.ndarray:
        """Filter the next sample.

        Args:
            value: (..., D) array, e.g. (68, 2) keypoints x, y in pixels.
            timestamp: its time in seconds (increasing).
            scale: the size that speeds are measured in, e.g. the face size in pixels, so that
                ``beta`` means the same for a small face and a big one.

        Returns:
            The filtered (..., D) float64 array.
        """
        value = np.asarray(value, dtype=np.float64)
        if self._value is None or self._time is None or self._value.shape != value.shape:
            self._value, self._speed, self._time = value.copy(), np.zeros_like(value), float(timestamp)
            return value.copy()
        dt = max(float(timestamp) - self._time, 1e-6)
        speed = (value - self._value) / dt
        self._speed = self._speed + _alpha(self.d_cutoff, dt) * (speed - self._speed)
        magnitude = np.linalg.norm(self._speed, axis=-1, keepdims=True) / max(scale, 1e-9)
        alpha = _alpha(self.min_cutoff + self.beta * magnitude, dt)
        self._value = self._value + alpha * (value - self._value)
        self._time = float(timestamp)
        return self._value.copy()


def filter_for_strength(smoothing: float) -> OneEuroFilter | None:
    """The :class:`OneEuroFilter` for a smoothing strength (see the module docstring); None for 0."""
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    if smoothing == 0:
        return None
    return OneEuroFilter(min_cutoff=MIN_CUTOFF_HZ / smoothing, beta=BETA, d_cutoff=DERIVATIVE_CUTOFF_HZ)
