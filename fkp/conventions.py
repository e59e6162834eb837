"""Labelling conventions: the Udacity set and 300-W place some of the 68 points differently.

Both sets follow the iBUG 68-point layout, but a model trained on one and tested on the other is
off by the same offsets, with opposite signs in the two directions: the Udacity set puts the
nose, the left brow and the jaw a few percent of the eye distance away from where 300-W's
annotators put them (``benchmarks/label_conventions.py`` measures it and writes the table in
``label_conventions.json``). The shipped model speaks the 300-W convention, which dlib and the
literature share, by default. It has a second heatmap head that learnt the Udacity set's own
labels (:attr:`fkp.predict.KeypointModel.conventions`), so it needs no mapping: the offsets are
only the average difference, and where annotators disagree also changes from face to face. The
offsets here serve single-head models: training with ``--no-head-per-convention`` maps Udacity
labels into the 300-W convention, and evaluation on the Udacity set maps such a model's points
back into the Udacity convention before scoring.

Offsets live in each face's own frame: x along the eye line (from the subject's right eye to the
left), y down the face, in eye distances (outer corners, as the NME uses), so that they follow a
face whatever its size and roll.
"""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources

import numpy as np

from fkp.geometry import face_frame
from fkp.landmarks import NUM_KEYPOINTS
from fkp.metrics import interocular_distance

CONVENTIONS: tuple[str, ...] = ("300w", "udacity")
"""Known labelling conventions. ``"300w"`` is the one every shipped model predicts."""
TABLE_FILE = "label_conventions.json"


def _frame(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cos and sin of each face's roll (:func:`fkp.geometry.face_frame`) and its eye distance, shaped
    (N, 1) for broadcasting."""
    theta = np.deg2rad(face_frame(keypoints).roll)[..., None]
    eyes = interocular_distance(keypoints)[..., None]  # the scale: outer eye corners, as the NME, not the frame's
    return np.cos(theta), np.sin(theta), np.maximum(eyes, 1e-6)


def to_face_frame(offsets: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """(N, 68, 2) pixel offsets -> the faces' own frames, in eye distances (faces from ``keypoints``)."""
    cos, sin, eyes = _frame(keypoints)
    x, y = offsets[..., 0], offsets[..., 1]
    return np.stack([x * cos + y * sin, -x * sin + y * cos], axis=-1) / eyes[..., None]


def from_face_frame(offsets: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_face_frame`: (N, 68, 2) face-frame offsets -> pixels of the faces ``keypoints``."""
    cos, sin, eyes = _frame(keypoints)
    x, y = offsets[..., 0] * eyes, offsets[..., 1] * eyes
    return np.stack([x * cos - y * sin, x * sin + y * cos], axis=-1)


@cache
def udacity_to_300w() -> np.ndarray:
    """(68, 2) offsets, in the face's frame and eye distances, that take a Udacity label to 300-W's."""
    table = json.loads((resources.files("fkp") / TABLE_FILE).read_text())
    offsets = np.asarray(table["udacity_to_300w"], dtype=np.float64)
    if offsets.shape != (NUM_KEYPOINTS, 2):
        raise ValueError(f"{TABLE_FILE}: expected {NUM_KEYPOINTS} offsets, got shape {offsets.shape}")
    offsets.flags.writeable = False
    return offsets


def convert(keypoints: np.ndarray, source: str, target: str) -> np.ndarray:
    """Move (N, 68, 2) points in pixels from one labelling convention to another.

    Args:
        keypoints: points labelled (or predicted) in the ``source`` convention.
        source, target: names of :data:`CONVENTIONS`.

    Returns:
        (N, 68, 2) float32 points in the ``target`` convention (the input itself when they agree).
    """
    for name in (source, target):
        if name not in CONVENTIONS:
            raise ValueError(f"unknown labelling convention {name!r}; expected one of {CONVENTIONS}")
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if source == target:
        return keypoints
    sign = 1.0 if (source, target) == ("udacity", "300w") else -1.0
    offsets = np.broadcast_to(sign * udacity_to_300w(), keypoints.shape)
    return (keypoints + from_face_frame(offsets, keypoints)).astype(np.float32)


def write_offsets(path: str | os.PathLike[str], offsets: np.ndarray, source: str) -> None:
    """Store (68, 2) Udacity -> 300-W offsets as the table :func:`udacity_to_300w` reads."""
    from fkp.utils import atomic_write_bytes

    table = {
        "about": "Offsets that take a Udacity-set label to the 300-W convention: per point, x along the eye line "
        "and y down the face, in eye distances (outer eye corners).",
        "measured_by": source,
        "udacity_to_300w": np.round(np.asarray(offsets, dtype=np.float64), 4).tolist(),
    }
    atomic_write_bytes(path, (json.dumps(table, indent=1) + "\n").encode())
