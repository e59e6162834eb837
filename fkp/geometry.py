"""Crop geometry shared by training and prediction: face box -> square crop -> normalised points.

Conventions: pixel centres sit at integer coordinates, so an image of width W spans x in
[-0.5, W - 0.5]. A crop of side S maps to normalised coordinates ``u = (x + 0.5) / S * 2 - 1``,
so -1 and +1 are the crop's outer edges. Boxes are ``(x, y, w, h)`` in pixels, x, y the top-left.
Affine matrices are OpenCV's (2, 3) forward maps ``[x', y'] = A @ [x, y, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fkp.landmarks import REGIONS

DEFAULT_BOX_SCALE = 1.35
"""Crop side = the box's longer side x this: room for the whole face around a tight box (training's
default, :class:`fkp.train.TrainConfig`, and every model file's unless it says otherwise)."""


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
    theta = math.radians(angle_degrees)
    cos, sin = math.cos(theta) * scale, math.sin(theta) * scale
    mirror = -1.0 if flip else 1.0
    (a, b), (c, d) = (mirror * cos, mirror * sin), (-sin, cos)
    centre_x, centre_y = (float(value) for value in np.asarray(centre, dtype=np.float64).reshape(2))
    # The crop's centre ((size - 1) / 2 in pixel-centre coordinates) shows the box centre.
    middle = (size - 1) / 2
    return np.array([[a, b, middle - (a * centre_x + b * centre_y)], [c, d, middle - (c * centre_x + d * centre_y)]])


def box_affine(box: np.ndarray, size: int, box_scale: float, angle_degrees: float = 0.0) -> np.ndarray:
    """The (2, 3) image -> crop map of the square ``size`` x ``size`` crop around a face box.

    This is the crop the model's first pass sees: centred on the box, side ``max(w, h) * box_scale``,
    turned by ``angle_degrees`` (a face with that roll, see :func:`roll_degrees`, appears upright).
    """
    centre, side = square_box(box, box_scale)
    return crop_affine(centre, side, size, angle_degrees)


def roll_degrees(right_eye: np.ndarray, left_eye: np.ndarray) -> np.ndarray:
    """The roll of a face: the angle of its eye line, from the subject's right eye to the left eye.

    Args:
        right_eye: (..., 2) centre of the subject's right eye (on the image's left in an upright
            frontal face), pixels, x then y.
        left_eye: (..., 2) centre of the subject's left eye.

    Returns:
        (...) degrees in (-180, 180]: 0 for an upright face, positive when the face is turned
        clockwise on screen (image y points down, so its left eye sits lower than its right).
    """
    delta = np.asarray(left_eye, dtype=np.float64) - np.asarray(right_eye, dtype=np.float64)
    return np.degrees(np.arctan2(delta[..., 1], delta[..., 0]))


@dataclass(frozen=True)
class FaceFrame:
    """The package's one face frame, attached to the eye line: what roll, overlays, the mirror check
    and the labelling conventions all measure faces in.

    The eyes are the eye *centres*, the mean of each eye's six points (not the outer corners that
    the NME's inter-ocular distance uses, :func:`fkp.metrics.interocular_distance`). The origin is
    midway between them, the x axis runs from the subject's right eye centre to the left one
    (towards the image's right on an upright face), the y axis runs down the face (the x axis turned
    by +90 degrees in image coordinates, whose y points down), and the scale is the distance between
    the eye centres. Built by :func:`face_frame`; every quantity is computed in the points' dtype
    (float64 points give float64 frames), except :attr:`roll`, always float64.

    Attributes:
        right_eye: (..., 2) centre of the subject's right eye, pixels x then y.
        left_eye: (..., 2) centre of the subject's left eye.
    """

    right_eye: np.ndarray
    left_eye: np.ndarray

    @property
    def origin(self) -> np.ndarray:
        """(..., 2) the midpoint of the eye centres, pixels."""
        return (self.right_eye + self.left_eye) / 2

    @property
    def eye_line(self) -> np.ndarray:
        """(..., 2) the vector from the right eye centre to the left one, pixels."""
        return self.left_eye - self.right_eye

    @property
    def scale(self) -> np.ndarray:
        """(...) the distance between the eye centres, pixels."""
        line = self.eye_line
        return np.hypot(line[..., 0], line[..., 1])

    @property
    def x_axis(self) -> np.ndarray:
        """(..., 2) unit vector along the eye line, from the right eye to the left."""
        return self.eye_line / np.maximum(self.scale, 1e-9)[..., None]

    @property
    def y_axis(self) -> np.ndarray:
        """(..., 2) unit vector down the face (towards the chin); its negative points up."""
        x_axis = self.x_axis
        return np.stack([-x_axis[..., 1], x_axis[..., 0]], axis=-1)

    @property
    def roll(self) -> np.ndarray:
        """(...) float64 roll in degrees, :func:`roll_degrees` of the eye centres."""
        return roll_degrees(self.right_eye, self.left_eye)

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Points in the frame: x along the eye line, y down the face, in eye-centre distances.

        Args:
            points: (..., K, 2) pixels, x then y, of the faces this frame was built from.

        Returns:
            (..., K, 2) coordinates in the frame (the eye centres land on (-0.5, 0) and (0.5, 0)).
        """
        centred = np.asarray(points) - self.origin[..., None, :]
        (cos, sin), scale = np.moveaxis(self.eye_line / self.scale[..., None], -1, 0), self.scale
        x = centred[..., 0] * cos[..., None] + centred[..., 1] * sin[..., None]
        y = -centred[..., 0] * sin[..., None] + centred[..., 1] * cos[..., None]
        return np.stack([x, y], axis=-1) / scale[..., None, None]


def face_frame(keypoints: np.ndarray) -> FaceFrame:
    """The :class:`FaceFrame` of faces from their 68 points.

    Args:
        keypoints: (..., 68, 2) points in pixels, x then y.

    Returns:
        Their frames, with (..., 2) eye centres (each the mean of the eye's six points).
    """
    keypoints = np.asarray(keypoints)
    right = keypoints[..., REGIONS["right_eye"], :].mean(axis=-2)
    left = keypoints[..., REGIONS["left_eye"], :].mean(axis=-2)
    return FaceFrame(right, left)


def keypoints_roll(keypoints: np.ndarray) -> np.ndarray:
    """:func:`roll_degrees` of faces from their 68 points: ``face_frame(keypoints).roll``.

    Args:
        keypoints: (..., 68, 2) points in pixels, x then y.

    Returns:
        (...) roll in degrees.
    """
    return face_frame(keypoints).roll


def upright_box(keypoints: np.ndarray, angle_degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The tight box of a face's points as seen in a frame turned by ``angle_degrees``.

    This is :func:`keypoints_box` for a rolled face: measured along the face's own axes, so that
    a face turned by 45 degrees gets the same box side as the same face upright.

    Args:
        keypoints: (K, 2) points in image pixels, x then y.
        angle_degrees: the face's roll (see :func:`roll_degrees`).

    Returns:
        ((2,) centre of the box in image pixels, (2,) its width and height along the face's axes).
    """
    theta = np.deg2rad(angle_degrees)
    axes = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])  # image -> face frame
    turned = np.asarray(keypoints, dtype=np.float64) @ axes.T
    low, high = turned.min(axis=0), turned.max(axis=0)
    return axes.T @ ((low + high) / 2), high - low


def upright_affine(keypoints: np.ndarray, angle_degrees: float, size: int, box_scale: float) -> np.ndarray:
    """The (2, 3) image -> crop map that shows a face upright, framed by its points.

    The crop is centred on :func:`upright_box`, its side is the box's longer side x ``box_scale``,
    and it is turned by ``angle_degrees`` so that a face with that roll appears upright: the crop
    the model's second pass sees (:meth:`fkp.predict.KeypointModel.predict`) and the one that
    training imitates.
    """
    centre, extent = upright_box(keypoints, angle_degrees)
    return crop_affine(centre, float(max(extent.max(), 1.0) * box_scale), size, angle_degrees)


def crop_to_image(normalized: np.ndarray, affines: np.ndarray, size: int) -> np.ndarray:
    """Map normalised crop points back to pixels of the image the crops were cut from.

    Args:
        normalized: (N, K, 2) points in [-1, 1] crop coordinates, x then y.
        affines: (N, 2, 3) image -> crop maps, one per crop.
        size: the crop side S in pixels.

    Returns:
        (N, K, 2) float32 points in image pixels.
    """
    pixels = from_normalized(normalized, size).astype(np.float64)  # (N, K, 2) crop pixels
    inverse = np.array([invert_affine(affine) for affine in affines]).reshape(-1, 2, 3)  # crop -> image maps
    return (pixels @ inverse[:, :, :2].transpose(0, 2, 1) + inverse[:, None, :, 2]).astype(np.float32)


def apply_affine(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map points by a (2, 3) affine matrix: the package's one point mapper.

    Args:
        points: (..., 2) points, x then y, pixels (an array or nested lists).
        affine: (2, 3) matrix ``[[a, b, tx], [c, d, ty]]``: ``x' = a x + b y + tx``, ``y' = c x + d y + ty``.

    Returns:
        (..., 2) mapped points, computed in float64; float64 when ``points`` is, else float32.
    """
    points = np.asarray(points)
    affine = np.asarray(affine, dtype=np.float64)
    mapped = points.astype(np.float64) @ affine[:, :2].T + affine[:, 2]
    return mapped if points.dtype == np.float64 else mapped.astype(np.float32)


def compose_affine(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The (2, 3) affine matrix that applies ``first`` then ``second`` (both (2, 3))."""
    bottom = np.array([[0.0, 0.0, 1.0]])
    return (np.vstack([second, bottom]) @ np.vstack([first, bottom]))[:2]


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
    """Cut a ``size`` x ``size`` crop out of an image, bilinear; outside pixels repeat the border.

    Training (:mod:`fkp.transforms`) and prediction (:mod:`fkp.predict`) both cut with it.

    Args:
        gray: (H, W) uint8 grayscale image (an (H, W, C) one works too).
        affine: (2, 3) image -> crop map from :func:`crop_affine`.

    Returns:
        (size, size) uint8 crop ((size, size, C) for a colour image).
    """
    return cv2.warpAffine(gray, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def standardize(crops: np.ndarray) -> np.ndarray:
    """Per-crop standardisation: zero mean and unit variance, so brightness and contrast don't matter.

    Args:
        crops: (N, S, S) or (S, S) uint8 or float crops.

    Returns:
        float32 array of the same shape.
    """
    crops = np.asarray(crops)
    if crops.dtype == np.uint8 and crops.ndim in (2, 3):  # the common case, done by OpenCV
        flat = crops.reshape(-1, *crops.shape[-2:])
        moments = np.array([cv2.meanStdDev(crop) for crop in flat], dtype=np.float32).reshape(len(flat), 2)
        mean, std = moments[:, 0, None, None], moments[:, 1, None, None]  # (N, 1, 1) each
        return ((flat - mean) / np.maximum(std, 1.0)).reshape(crops.shape)
    crops = crops.astype(np.float32, copy=False)
    mean = crops.mean(axis=(-2, -1), keepdims=True)
    std = crops.std(axis=(-2, -1), keepdims=True)
    return (crops - mean) / np.maximum(std, 1.0)


def rotate_image(image: np.ndarray, keypoints: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Turn a photo and its points about the photo's centre, on a canvas that holds all of it.

    Args:
        image: (H, W) or (H, W, C) uint8 image.
        keypoints: (..., 2) points in pixels of ``image``, x then y.
        degrees: the turn, clockwise on screen: a face with roll r gets roll r + degrees
            (see :func:`roll_degrees`). Uncovered corners are black.

    Returns:
        (the turned image, (H', W') with H', W' >= H, W; the points in its pixels, same shape).
    """
    height, width = image.shape[:2]
    theta = np.deg2rad(degrees)
    cos, sin = abs(np.cos(theta)), abs(np.sin(theta))
    new_width, new_height = int(np.ceil(width * cos + height * sin)), int(np.ceil(width * sin + height * cos))
    linear = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])  # clockwise on screen
    old_centre = np.array([(width - 1) / 2, (height - 1) / 2])
    new_centre = np.array([(new_width - 1) / 2, (new_height - 1) / 2])
    affine = np.hstack([linear, (new_centre - linear @ old_centre)[:, None]])
    turned = cv2.warpAffine(
        image, affine, (new_width, new_height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return turned, apply_affine(keypoints, affine)
