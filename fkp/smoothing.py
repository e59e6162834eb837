"""Temporal smoothing of keypoints in videos: the One Euro filter and a small face tracker.

Keypoints predicted frame by frame jitter by a pixel or two even on a face that does not move. The
One Euro filter (Casiez, Roussel and Vogel, CHI 2012) is a low-pass filter whose cut-off frequency
rises with the speed of the signal: strong smoothing while the face is still, little lag when it
moves. :class:`FaceTracker` follows each face from frame to frame (by box overlap) and runs one
filter per face on its box and its 68 points.

One knob, ``smoothing`` (the "strength"): 0 turns smoothing off, 1 is the default, 2 smooths twice
as hard (half the cut-off frequency at rest), and so on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fkp.boxes import box_overlap
from fkp.detect import Face

DEFAULT_SMOOTHING = 1.0
"""Default strength for :class:`FaceTracker`, ``fkp video --smoothing`` and :func:`fkp.video.annotate_video`."""
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


@dataclass
class _Track:
    box_filter: OneEuroFilter | None
    point_filter: OneEuroFilter | None
    box: np.ndarray  # (4,) last smoothed box x, y, w, h
    missed: int = 0


class FaceTracker:
    """Follows faces across video frames and smooths each one's box and keypoints.

    A face is matched to the track of the previous frames whose box overlaps it most (IoU at least
    ``min_iou``); an unmatched face starts a new track; a track not seen for more than
    ``max_missed`` frames is dropped.

    Args:
        smoothing: strength, 0 (off), 1 (default), 2 (twice as smooth at rest), ...
        min_iou: least box overlap (intersection over union) for a face to continue a track.
        max_missed: frames a track survives without a matching face.
    """

    def __init__(self, smoothing: float = DEFAULT_SMOOTHING, min_iou: float = 0.3, max_missed: int = 5) -> None:
        filter_for_strength(smoothing)  # validates
        self.smoothing = smoothing
        self.min_iou = min_iou
        self.max_missed = max_missed
        self._tracks: dict[int, _Track] = {}
        self._next_id = 0

    def __repr__(self) -> str:
        return f"FaceTracker(smoothing={self.smoothing}, min_iou={self.min_iou}, max_missed={self.max_missed})"

    def reset(self) -> None:
        """Forget every track."""
        self._tracks.clear()

    @property
    def num_tracks(self) -> int:
        """Tracks currently alive."""
        return len(self._tracks)

    def _match(self, faces: Sequence[Face]) -> list[int | None]:
        """Track id for each face (None: new face), greedy by overlap."""
        ids = list(self._tracks)
        matched: list[int | None] = [None] * len(faces)
        if not ids or not faces:
            return matched
        overlap = box_overlap(np.stack([f.box for f in faces]), np.stack([self._tracks[i].box for i in ids]))
        for flat in np.argsort(-overlap, axis=None):
            face_index, track_index = np.unravel_index(flat, overlap.shape)
            if overlap[face_index, track_index] < self.min_iou:
                break
            if matched[face_index] is None and ids[track_index] not in matched:
                matched[face_index] = ids[track_index]
        return matched

    def update(self, faces: Sequence[Face], timestamp: float) -> list[Face]:
        """Smooth the faces found in one frame.

        Args:
            faces: this frame's faces, coordinates in pixels.
            timestamp: the frame's time in seconds (frame index / frames per second).

        Returns:
            The same faces in the same order, with smoothed boxes and keypoints (scores unchanged).
        """
        matched = self._match(faces)
        smoothed: list[Face] = []
        for face, track_id in zip(faces, matched):
            if track_id is None:
                track_id, self._next_id = self._next_id, self._next_id + 1
                self._tracks[track_id] = _Track(
                    filter_for_strength(self.smoothing), filter_for_strength(self.smoothing), face.box.copy()
                )
            track = self._tracks[track_id]
            track.missed = -1  # seen this frame (incremented to 0 below)
            scale = float(max(face.box[2], face.box[3], 1.0))
            box, points = face.box, face.keypoints
            if track.box_filter is not None and track.point_filter is not None:
                corners = np.array([[box[0], box[1]], [box[0] + box[2], box[1] + box[3]]])  # (2, 2) x, y
                corners = track.box_filter(corners, timestamp, scale)
                box = np.concatenate([corners[0], corners[1] - corners[0]])
                points = track.point_filter(points, timestamp, scale)
            track.box = np.asarray(box, dtype=np.float32)
            smoothed.append(Face(box=box, keypoints=points, score=face.score))
        for track_id in list(self._tracks):
            track = self._tracks[track_id]
            track.missed += 1
            if track.missed > self.max_missed:
                del self._tracks[track_id]
        return smoothed
