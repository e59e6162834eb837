"""Aligned faces: turn a face into a crop with the eyes and mouth in fixed places, from its 68 points.

Three styles (:data:`STYLES`), each a similarity transform (rotation, uniform scale, translation)
from image pixels to crop pixels, computed from the points:

- ``"ffhq"``: the recipe that made the FFHQ data set (Karras et al., 2019, ``recreate_aligned_images``
  in the ``ffhq-dataset`` repository): an oriented square (:func:`ffhq_quad`) from the eye centres
  and the mouth corners; large faces are first shrunk by a whole factor, and a square reaching past
  the photo's edge is filled by reflecting the photo, blurred and faded to its median colour towards
  the outer edge, as the recipe does.
- ``"arcface"``: the five-point template of face recognisers (ArcFace, insightface): the eye centres,
  the nose tip and the mouth corners mapped onto :data:`ARCFACE_TEMPLATE` by the least-squares
  similarity (Umeyama, :func:`similarity_transform`); 112 x 112 crops, or 128 x 128 with the template
  moved 8 pixels right, as insightface does. Outside the photo is black.
- ``"custom"``: any N-point :class:`Template` (which points, and where they go in the crop), read from
  JSON by :func:`load_template`; fitted and filled like ``"arcface"``.

Conventions are :mod:`fkp.geometry`'s: points are x, y in pixels, pixel centres at integer
coordinates, so a crop of side S spans [-0.5, S - 0.5]; transforms are (2, 3) OpenCV matrices
``[x', y'] = A @ [x, y, 1]`` from the input image to the crop. The points are 300-W's 68 (the
shipped model's default labels, :mod:`fkp.landmarks`). NumPy and OpenCV only: no torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import cv2
import numpy as np

from fkp.geometry import apply_affine, compose_affine, invert_affine
from fkp.landmarks import NOSE_TIP, NUM_KEYPOINTS, REGIONS, region_centre

AlignStyle = Literal["ffhq", "arcface", "custom"]
STYLES: Final[tuple[AlignStyle, ...]] = ("ffhq", "arcface", "custom")
"""The alignment styles, in the order ``fkp align --help`` lists them."""
DEFAULT_SIZES: Final[dict[AlignStyle, int]] = {"ffhq": 256, "arcface": 112, "custom": 256}
"""Crop side in pixels when none is given."""
MAX_SIZE: Final[int] = 4096
"""The largest crop side, and the most an FFHQ crop is sampled at before it is averaged down to its
size: the recipe's working size."""
ARCFACE_SIZES: Final[tuple[int, ...]] = (112, 128)
"""The crop sides the ``"arcface"`` template is defined for."""

MOUTH_RIGHT_CORNER: Final[int] = REGIONS["mouth"].start  # 48, the subject's right: the photo's left
MOUTH_LEFT_CORNER: Final[int] = REGIONS["mouth"].start + 6  # 54

ARCFACE_TEMPLATE: Final[np.ndarray] = np.array(
    [
        [38.2946, 51.6963],  # the subject's right eye (the photo's left)
        [73.5318, 51.5014],  # the subject's left eye
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # mouth corner, the subject's right
        [70.7299, 92.2041],  # mouth corner, the subject's left
    ]
)
"""(5, 2) x, y in pixels of a 112 x 112 crop: the standard ArcFace template (insightface)."""
ARCFACE_TEMPLATE.flags.writeable = False
ARCFACE_SHIFT_128: Final[float] = 8.0
"""For 128 x 128 crops the 112 template is moved right by this many pixels (insightface's rule)."""


class TemplateError(ValueError):
    """A custom template that cannot be used; the message says why, in one line."""


@dataclass(frozen=True, eq=False)
class Template:
    """Where chosen points go in the crop: the ``"custom"`` style.

    Attributes:
        groups: one tuple of 68-point indices per template point; the template point is their
            mean (one index: that point; ``REGIONS["right_eye"]``'s six: the eye's centre).
        positions: (N, 2) float64 target x, y in crop coordinates in [0, 1], 0 and 1 the crop's
            outer edges (x right, y down), so they hold for any crop side.
    """

    groups: tuple[tuple[int, ...], ...]
    positions: np.ndarray

    def __post_init__(self) -> None:
        positions = np.array(self.positions, dtype=np.float64)
        if positions.shape != (len(self.groups), 2):
            raise TemplateError(f"{len(self.groups)} point groups but positions of shape {positions.shape}")
        if len(self.groups) < 2:
            raise TemplateError("a template needs at least 2 points")
        for group in self.groups:
            if not group or not all(0 <= index < NUM_KEYPOINTS for index in group):
                raise TemplateError(f"point indices must be 0..{NUM_KEYPOINTS - 1}, got {list(group)}")
        if not (np.isfinite(positions).all() and (positions >= 0).all() and (positions <= 1).all()):
            raise TemplateError("positions must be numbers in [0, 1] (crop coordinates)")
        if np.ptp(positions, axis=0).max() == 0:
            raise TemplateError("the positions are all the same point")
        positions.flags.writeable = False
        object.__setattr__(self, "positions", positions)

    def source_points(self, keypoints: np.ndarray) -> np.ndarray:
        """(N, 2) float64 template points of a face from its (68, 2) keypoints, pixels of its image."""
        points = np.asarray(keypoints, dtype=np.float64)
        return np.array([points[list(group)].mean(axis=0) for group in self.groups])

    def target_pixels(self, size: int) -> np.ndarray:
        """(N, 2) float64 target points in pixels of a ``size`` x ``size`` crop."""
        return self.positions * size - 0.5


def load_template(path: str | os.PathLike[str]) -> Template:
    """Read a custom template from JSON.

    The file holds ``{"points": [...], "positions": [[x, y], ...]}``: ``points`` has one entry per
    template point, a 68-point index (``30``, the nose tip), a list of indices whose mean is used
    (``[36, 37, 38, 39, 40, 41]``) or a region name of :data:`fkp.landmarks.REGIONS`
    (``"right_eye"``, the mean of its points); ``positions`` gives where each goes, x and y in
    [0, 1] crop coordinates (0 and 1 the crop's edges). Example: the ArcFace points,
    ``{"points": ["right_eye", "left_eye", 30, 48, 54], "positions": [[0.346, 0.466], ...]}``.

    Raises:
        TemplateError: (one line) the file cannot be read, is not such JSON, or names bad points.
    """
    try:
        data = json.loads(Path(path).read_text())
    except OSError as error:
        raise TemplateError(f"{path}: {error.strerror or error}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise TemplateError(f"{path}: not JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        raise TemplateError(f'{path}: expected {{"points": [...], "positions": [[x, y], ...]}}')
    groups: list[tuple[int, ...]] = []
    for entry in data["points"]:
        if isinstance(entry, str) and entry in REGIONS:
            groups.append(tuple(range(NUM_KEYPOINTS))[REGIONS[entry]])
        elif isinstance(entry, int) and not isinstance(entry, bool):
            groups.append((entry,))
        elif isinstance(entry, list) and entry and all(isinstance(i, int) and not isinstance(i, bool) for i in entry):
            groups.append(tuple(entry))
        else:
            names = ", ".join(REGIONS)
            raise TemplateError(f"{path}: point {entry!r} is not an index, a list of indices or a region ({names})")
    try:
        positions = np.array(data.get("positions"), dtype=np.float64)
    except (TypeError, ValueError):
        raise TemplateError(f"{path}: positions must be a list of [x, y] numbers") from None
    try:
        return Template(tuple(groups), positions)
    except TemplateError as error:
        raise TemplateError(f"{path}: {error}") from None


def arcface_points(keypoints: np.ndarray) -> np.ndarray:
    """The five ArcFace points of a face: eye centres, nose tip, mouth corners.

    Args:
        keypoints: (68, 2) points, x then y, pixels.

    Returns:
        (5, 2) float64, in :data:`ARCFACE_TEMPLATE`'s order (the subject's right eye first).
    """
    points = np.asarray(keypoints, dtype=np.float64)
    return np.stack(
        [
            region_centre(points, "right_eye"),
            region_centre(points, "left_eye"),
            points[NOSE_TIP],
            points[MOUTH_RIGHT_CORNER],
            points[MOUTH_LEFT_CORNER],
        ]
    )


def arcface_template(size: int) -> np.ndarray:
    """(5, 2) float64 ArcFace target points in pixels of a ``size`` x ``size`` crop (112 or 128)."""
    if size not in ARCFACE_SIZES:
        raise ValueError(f"the arcface style makes {' or '.join(map(str, ARCFACE_SIZES))} pixel crops, not {size}")
    shift = 0.0 if size == 112 else ARCFACE_SHIFT_128
    return np.asarray(ARCFACE_TEMPLATE, dtype=np.float64) + [shift, 0.0]


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The least-squares similarity from ``source`` to ``target`` points (Umeyama, 1991).

    Rotation, uniform scale and translation, no reflection: the map that minimises the summed
    squared distance between the mapped ``source`` and ``target``.

    Args:
        source: (N, 2) points, x then y, N >= 2, not all the same.
        target: (N, 2) points they should land on.

    Returns:
        (2, 3) float64 matrix ``[s R | t]``, source -> target.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need two (N, 2) arrays with N >= 2, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    variance = (src_c**2).sum() / len(src)
    if not variance > 0:
        raise ValueError("the source points are all the same point: no transform fits them")
    covariance = dst_c.T @ src_c / len(src)  # (2, 2)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.diag([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0])  # a rotation, never a mirror
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(singular) @ sign)) / variance
    linear = scale * rotation
    return np.hstack([linear, (dst_mean - linear @ src_mean)[:, None]])


def ffhq_quad(keypoints: np.ndarray) -> tuple[np.ndarray, float]:
    """The FFHQ recipe's oriented crop square for a face.

    With e0, e1 the centres of the subject's right and left eye (points 36-41 and 42-47), m the
    midpoint of the mouth corners 48 and 54: ``eye_to_eye = e1 - e0``, ``eye_to_mouth = m - (e0 + e1) / 2``;
    ``x = eye_to_eye - rot90(eye_to_mouth)`` (the face's rightward axis, from both vectors), scaled to
    half-side ``max(2 |eye_to_eye|, 1.8 |eye_to_mouth|)``; ``y = x`` turned by 90 degrees (downward);
    centre ``c = (e0 + e1) / 2 + 0.1 eye_to_mouth``.

    Args:
        keypoints: (68, 2) points, x then y, pixels.

    Returns:
        ((4, 2) float64 corners ``c - x - y`` (top left), ``c - x + y`` (bottom left),
        ``c + x + y`` (bottom right), ``c + x - y`` (top right); the square's side ``2 |x|``).
    """
    points = np.asarray(keypoints, dtype=np.float64)
    eye_right, eye_left = region_centre(points, "right_eye"), region_centre(points, "left_eye")
    eye_avg = (eye_right + eye_left) * 0.5
    eye_to_eye = eye_left - eye_right
    mouth_avg = (points[MOUTH_RIGHT_CORNER] + points[MOUTH_LEFT_CORNER]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    return quad, float(np.hypot(*x) * 2)


def quad_transform(quad: np.ndarray, size: int) -> np.ndarray:
    """The (2, 3) similarity that maps an oriented square onto a ``size`` x ``size`` crop.

    Args:
        quad: (4, 2) corners as :func:`ffhq_quad` orders them; ``quad[0]`` goes to the crop's top-left
            corner (-0.5, -0.5), ``quad[3]`` to its top-right, ``quad[1]`` to its bottom-left.
        size: crop side in pixels.
    """
    quad = np.asarray(quad, dtype=np.float64)
    across, down = quad[3] - quad[0], quad[1] - quad[0]
    side = float(np.hypot(*across))
    linear = size / side * np.stack([across / side, down / float(np.hypot(*down))])  # rows: crop x, crop y
    return np.hstack([linear, (-linear @ quad[0] - 0.5)[:, None]])


def _median(image: np.ndarray) -> np.ndarray:
    """(C,) float32 per-channel median of (H, W, C) uint8, as ``np.median(image, axis=(0, 1))``, by histogram."""
    count = image.shape[0] * image.shape[1]
    middle = [(count - 1) // 2, count // 2]  # the two middle ranks (the same one for an odd count)
    medians = []
    for channel in range(image.shape[2]):
        cumulative = np.cumsum(np.bincount(image[:, :, channel].ravel(), minlength=256))
        medians.append(np.searchsorted(cumulative, np.array(middle) + 1).mean())
    return np.array(medians, dtype=np.float32)


def _pad_like_ffhq(image: np.ndarray, pad: np.ndarray, qsize: float) -> np.ndarray:
    """Pad (H, W, C) uint8 by reflection, blurred and faded to the median colour towards the outer
    edge, as the FFHQ recipe does. ``pad`` is (left, top, right, bottom) pixels, each >= 1.

    The recipe's arithmetic, with OpenCV's blur and blend in place of scipy's and numpy's, on whole
    grey levels up to the last blend (each step at most half a level from the recipe's floats)."""
    left, top, right, bottom = (int(p) for p in pad)
    channels = image.shape[2]
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REFLECT_101)  # numpy's "reflect"
    padded = padded.reshape(padded.shape[0], padded.shape[1], channels)
    height, width = padded.shape[:2]
    x, y = np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    mask = np.maximum(
        1.0 - np.minimum(x / left, (width - 1 - x) / right)[None, :],
        1.0 - np.minimum(y / top, (height - 1 - y) / bottom)[:, None],
    )  # (H, W): 1 at the outer edge, 0 where the photo starts, negative inside it
    sigma = qsize * 0.02
    if sigma > 0:
        ksize = 2 * int(np.ceil(4 * sigma)) + 1  # the recipe's scipy blur reaches 4 sigma
        blurred = cv2.GaussianBlur(padded, (ksize, ksize), sigmaX=sigma, sigmaY=sigma)
        weight = np.clip(mask * 3.0 + 1.0, 0.0, 1.0)  # img += (blur - img) * weight
        padded = cv2.blendLinear(blurred, padded, weight, 1.0 - weight).reshape(height, width, channels)
    weight = np.clip(mask, 0.0, 1.0)  # img += (median - img) * weight
    median = np.empty(padded.shape, np.float32)
    median[:] = _median(padded)
    faded = cv2.blendLinear(median, padded.astype(np.float32), weight, 1.0 - weight)
    return np.clip(np.rint(faded), 0, 255).astype(np.uint8).reshape(height, width, channels)


def _ffhq_crop(image: np.ndarray, quad: np.ndarray, qsize: float, size: int) -> np.ndarray:
    """Sample the square ``quad`` of (H, W, C) uint8 ``image`` into a ``size`` x ``size`` crop, as the
    recipe does: shrink by a whole factor for large faces, cut the square's surroundings, pad past
    the photo's edges, then warp. The crop is exactly ``quad_transform(quad, size)`` of the input:
    every step is tracked as an affine map (``to_work``, input pixels -> working image pixels)."""
    work = image
    to_work = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        height, width = work.shape[:2]
        new_width, new_height = max(int(np.rint(width / shrink)), 1), max(int(np.rint(height / shrink)), 1)
        work = cv2.resize(work, (new_width, new_height), interpolation=cv2.INTER_AREA).reshape(
            new_height, new_width, -1
        )
        sx, sy = new_width / width, new_height / height
        to_work = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])  # pixel centres kept
        qsize /= shrink
    q = apply_affine(quad, to_work)
    border = max(int(np.rint(qsize * 0.1)), 3)

    height, width = work.shape[:2]
    low, high = np.floor(q.min(axis=0)).astype(int), np.ceil(q.max(axis=0)).astype(int)
    x0, y0 = min(max(low[0] - border, 0), width - 1), min(max(low[1] - border, 0), height - 1)
    x1, y1 = max(min(high[0] + border, width), x0 + 1), max(min(high[1] + border, height), y0 + 1)
    if x1 - x0 < width or y1 - y0 < height:
        work = work[y0:y1, x0:x1]
        to_work[:, 2] -= (x0, y0)
        q = q - (x0, y0)

    height, width = work.shape[:2]
    low, high = np.floor(q.min(axis=0)).astype(int), np.ceil(q.max(axis=0)).astype(int)
    pad = np.array(
        [
            max(-low[0] + border, 0),
            max(-low[1] + border, 0),
            max(high[0] - width + border, 0),
            max(high[1] - height + border, 0),
        ]
    )
    if pad.max() > qsize + 2 * border:  # the square misses the photo altogether: only its colour is left
        return np.broadcast_to(np.rint(_median(image)).astype(np.uint8), (size, size, image.shape[2])).copy()
    if pad.max() > border - 4:
        pad = np.maximum(pad, max(int(np.rint(qsize * 0.3)), 1))
        work = _pad_like_ffhq(work, pad, qsize)
        to_work[:, 2] += pad[:2]

    # sample at least as densely as the photo (the recipe: at MAX_SIZE), then average down by a whole factor
    factor = int(min(max(np.ceil(qsize / size), 1), max(MAX_SIZE // size, 1)))
    to_crop = quad_transform(quad, size * factor)
    work_to_crop = compose_affine(to_crop, invert_affine(to_work))
    crop = cv2.warpAffine(
        work, work_to_crop, (size * factor, size * factor), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    if factor > 1:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)  # whole factor: plain averaging
    return crop.reshape(size, size, -1)


def align_face(
    image: np.ndarray,
    keypoints: np.ndarray,
    style: AlignStyle = "ffhq",
    size: int | None = None,
    template: Template | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut one face out of a photo as an aligned crop.

    Args:
        image: (H, W, 3) uint8 RGB (any channel order works: channels are not mixed), or (H, W) grey.
        keypoints: (68, 2) the face's points, x then y, in pixels of ``image`` (300-W's layout).
        style: ``"ffhq"``, ``"arcface"`` or ``"custom"`` (see the module docstring).
        size: the crop's side in pixels, at most :data:`MAX_SIZE`; default :data:`DEFAULT_SIZES` of
            the style (``"arcface"``: 112 or 128 only).
        template: the points and their places for ``"custom"`` (:func:`load_template`); only then.

    Returns:
        (the crop, (size, size, C) uint8 (``(size, size)`` for a grey image); the (2, 3) float64
        similarity from ``image`` pixels to crop pixels: ``fkp.geometry.apply_affine(keypoints, transform)``
        gives the points in the crop).

    Raises:
        ValueError: an unknown style, a size the style does not make, a missing or unwanted
            ``template``, an image that is not uint8, or keypoints that are not (68, 2) finite numbers.
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; use one of {', '.join(STYLES)}")
    size = DEFAULT_SIZES[style] if size is None else int(size)
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"size must be 1..{MAX_SIZE} pixels, got {size}")
    if (template is None) == (style == "custom"):
        raise ValueError('a template is needed for style="custom", and only for it')
    points = np.asarray(keypoints, dtype=np.float64)
    if points.shape != (NUM_KEYPOINTS, 2) or not np.isfinite(points).all():
        raise ValueError(f"keypoints must be ({NUM_KEYPOINTS}, 2) finite numbers, got shape {points.shape}")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (H, W, C) uint8, got {image.dtype} {image.shape}")
    grey = image.ndim == 2
    pixels = image[:, :, None] if grey else image

    if style == "ffhq":
        quad, qsize = ffhq_quad(points)
        if not qsize > 0:
            raise ValueError("the eyes and mouth are all at one point: no crop fits them")
        transform = quad_transform(quad, size)
        crop = _ffhq_crop(pixels, quad, qsize, size)
    else:
        if style == "arcface":
            source, target = arcface_points(points), arcface_template(size)
        else:
            assert template is not None
            source, target = template.source_points(points), template.target_pixels(size)
        transform = similarity_transform(source, target)
        crop = cv2.warpAffine(
            pixels, transform, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        ).reshape(size, size, -1)
    return (crop[:, :, 0] if grey else crop), transform
