"""Crop geometry shared by training and prediction: face box -> square crop -> normalised points.

Conventions: pixel centres sit at integer coordinates, so an image of width W spans x in
[-0.5, W - 0.5]. A crop of side S maps to normalised coordinates ``u = (x + 0.5) / S * 2 - 1``,
so -1 and +1 are the crop's outer edges. Boxes are ``(x, y, w, h)`` in pixels, x, y the top-left.
Affine matrices are OpenCV's (2, 3) forward maps ``[x', y'] = A @ [x, y, 1]``.
"""

from __future__ import annotations

import cv2
import numpy as np


def keypoints_box(keypoints: np.ndarray) -> np.ndarray:
    """The tight box around a face's points.

    Args:
        keypoints: (..., K, 2) points in pixels, x then y.

    Returns:
        (..., 4) boxes x, y, w, h.
    """
    low = keypoints.min(axis=-2)
    high = keypoints.max(axis=-2)
    return np.concatenate([low, high - low], axis=-1).astype(np.float32)


def square_box(box: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """Centre and side of the square crop for a face box: side ``max(w, h) * scale``.

    Returns:
        ((2,) centre x, y in pixels, side in pixels).
    """
    x, y, w, h = np.asarray(box, dtype=np.float64)
    return np.array([x + w / 2, y + h / 2]), float(max(w, h, 1.0) * scale)


def crop_affine(
    centre: np.ndarray, side: float, size: int, angle_degrees: float = 0.0, flip: bool = False
) -> np.ndarray:
    """The affine map from image pixels to pixels of a ``size`` x ``size`` crop.

    The crop shows the square of ``side`` pixels around ``centre``, turned by ``angle_degrees``
    (counter-clockwise as seen in the crop), mirrored left-right if ``flip``.

    Returns:
        (2, 3) float64 matrix for ``cv2.warpAffine`` (image -> crop).
    """
    scale = size / side
    theta = np.deg2rad(angle_degrees)
    cos, sin = np.cos(theta) * scale, np.sin(theta) * scale
    linear = np.array([[cos, sin], [-sin, cos]])
    if flip:
        linear[0] *= -1
    # The crop's centre ((size - 1) / 2 in pixel-centre coordinates) shows the box centre.
    offset = np.full(2, (size - 1) / 2) - linear @ np.asarray(centre, dtype=np.float64)
    return np.hstack([linear, offset[:, None]])


def box_affine(box: np.ndarray, size: int, box_scale: float) -> np.ndarray:
    """The (2, 3) image -> crop map of the square ``size`` x ``size`` crop around a face box.

    This is the crop the model sees at inference: centred on the box, side ``max(w, h) * box_scale``.
    """
    centre, side = square_box(box, box_scale)
    return crop_affine(centre, side, size)


def crop_to_image(normalized: np.ndarray, affines: np.ndarray, size: int) -> np.ndarray:
    """Map normalised crop points back to pixels of the image the crops were cut from.

    Args:
        normalized: (N, K, 2) points in [-1, 1] crop coordinates, x then y.
        affines: (N, 2, 3) image -> crop maps, one per crop.
        size: the crop side S in pixels.

    Returns:
        (N, K, 2) float32 points in image pixels.
    """
    out = np.empty(np.shape(normalized), dtype=np.float32)
    for i, (points, affine) in enumerate(zip(normalized, affines)):
        out[i] = apply_affine(from_normalized(points, size), invert_affine(affine))
    return out


def apply_affine(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map (..., 2) points by a (2, 3) affine matrix; returns float32 points of the same shape."""
    points = np.asarray(points, dtype=np.float64)
    return (points @ affine[:, :2].T + affine[:, 2]).astype(np.float32)


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """The inverse of a (2, 3) affine matrix, as a (2, 3) matrix."""
    return cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))


def to_normalized(points: np.ndarray, size: int) -> np.ndarray:
    """Crop pixels -> normalised crop coordinates in [-1, 1] (see the module docstring)."""
    return ((np.asarray(points, dtype=np.float32) + 0.5) / size * 2 - 1).astype(np.float32)


def from_normalized(points: np.ndarray, size: int) -> np.ndarray:
    """Normalised crop coordinates -> crop pixels; inverse of :func:`to_normalized`."""
    return ((np.asarray(points, dtype=np.float32) + 1) / 2 * size - 0.5).astype(np.float32)


def warp_crop(gray: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """Cut a ``size`` x ``size`` crop out of a grayscale image; outside pixels repeat the border.

    Args:
        gray: (H, W) uint8 image.
        affine: (2, 3) image -> crop map from :func:`crop_affine`.

    Returns:
        (size, size) uint8 crop.
    """
    return cv2.warpAffine(gray, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def standardize(crops: np.ndarray) -> np.ndarray:
    """Per-crop standardisation: zero mean and unit variance, so brightness and contrast don't matter.

    Args:
        crops: (N, S, S) or (S, S) uint8 or float crops.

    Returns:
        float32 array of the same shape.
    """
    crops = np.asarray(crops, dtype=np.float32)
    mean = crops.mean(axis=(-2, -1), keepdims=True)
    std = crops.std(axis=(-2, -1), keepdims=True)
    return (crops - mean) / np.maximum(std, 1.0)
