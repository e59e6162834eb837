"""Drawing faces onto image arrays with OpenCV, for the command line and for videos.

Every function returns a new (H, W, 3) uint8 RGB array and leaves its input alone. Sizes (point
radius, line width) follow each face's size, so the drawing looks the same on a thumbnail and on a
24-megapixel photo. Matplotlib figures for the notebooks live in :mod:`fkp.viz`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from fkp.landmarks import NUM_KEYPOINTS, OUTLINES, REGION_COLOURS, REGIONS, Colour

if TYPE_CHECKING:
    from fkp.face import Face

BOX_COLOR: Colour = (0, 255, 0)
"""RGB colour of face boxes."""

_SHIFT = 4  # OpenCV fixed-point bits: coordinates are drawn with 1/16-pixel precision
_ONE = 1 << _SHIFT


def _fixed(points: np.ndarray) -> np.ndarray:
    """(..., 2) float pixels -> int32 fixed-point for OpenCV's ``shift`` argument."""
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32)


def _face_size(keypoints: np.ndarray) -> float:
    """A face's size in pixels: the larger side of its keypoints' bounding box."""
    span = np.ptp(keypoints, axis=0)
    return float(max(span.max(), 1.0))


def draw_keypoints(
    image: np.ndarray,
    keypoints: np.ndarray,
    *,
    lines: bool = True,
    color: Colour | None = None,
    radius: float | None = None,
) -> np.ndarray:
    """Draw one face's 68 points, and the region outlines joining them.

    Args:
        image: (H, W, 3) uint8 RGB.
        keypoints: (68, 2) pixels, x then y.
        lines: draw the outlines of :data:`fkp.landmarks.OUTLINES` (eyes and lips closed).
        color: one RGB colour for everything; default a colour per region (:data:`fkp.landmarks.REGION_COLOURS`).
        radius: point radius in pixels; default scaled to the face size.

    Returns:
        A new (H, W, 3) uint8 RGB image.
    """
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.shape != (NUM_KEYPOINTS, 2):
        raise ValueError(f"keypoints must have shape ({NUM_KEYPOINTS}, 2), got {keypoints.shape}")
    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    size = _face_size(keypoints)
    radius = max(1.0, size / 90.0) if radius is None else radius
    thickness = max(1, round(size / 160.0))
    fixed = _fixed(keypoints)
    if lines:
        for outline in OUTLINES:
            line_colour = color or REGION_COLOURS[outline.region]
            cv2.polylines(out, [fixed[outline.points]], outline.closed, line_colour, thickness, cv2.LINE_AA, _SHIFT)
    for name, indices in REGIONS.items():
        region_colour = color or REGION_COLOURS[name]
        for x, y in fixed[indices]:
            cv2.circle(out, (int(x), int(y)), round(radius * _ONE), region_colour, -1, cv2.LINE_AA, shift=_SHIFT)
    return out


def draw_box(
    image: np.ndarray, box: Sequence[float] | np.ndarray, *, color: Colour = BOX_COLOR, label: str | None = None
) -> np.ndarray:
    """Draw a face box x, y, w, h (pixels), with an optional text label above it.

    Returns:
        A new (H, W, 3) uint8 RGB image.
    """
    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    x, y, w, h = (float(v) for v in box)
    thickness = max(1, round(max(w, h) / 120.0))
    top_left = _fixed(np.array([x, y]))
    bottom_right = _fixed(np.array([x + w, y + h]))
    cv2.rectangle(out, tuple(map(int, top_left)), tuple(map(int, bottom_right)), color, thickness, cv2.LINE_AA, _SHIFT)
    if label:
        font_scale = max(0.4, w / 250.0)
        origin = (round(x), max(0, round(y) - 2 * thickness - 2))
        (text_w, text_h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        if origin[1] - text_h < 0:  # no room above the box: write inside it
            origin = (origin[0], round(y) + text_h + 2 * thickness)
        cv2.putText(out, label, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, color, thickness, cv2.LINE_AA)
    return out


def draw_faces(
    image: np.ndarray,
    faces: Iterable[Face],
    *,
    boxes: bool = True,
    points: bool = True,
    lines: bool = True,
    scores: bool = False,
) -> np.ndarray:
    """Draw every face: its box, its 68 points and its region outlines.

    Args:
        image: (H, W, 3) uint8 RGB.
        faces: :class:`fkp.face.Face` objects with coordinates in pixels of ``image``.
        boxes: draw the detector's boxes.
        points: draw the keypoints.
        lines: join the keypoints of each region.
        scores: write each face's detector score above its box.

    Returns:
        A new (H, W, 3) uint8 RGB image (a copy of ``image`` when ``faces`` is empty).
    """
    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    for face in faces:
        if boxes:
            label = f"{face.score:g}" if scores and face.score is not None else None
            out = draw_box(out, face.box, label=label)
        if points:
            out = draw_keypoints(out, face.keypoints, lines=lines)
    return out
