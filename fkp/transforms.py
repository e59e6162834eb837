"""Sample transforms that move the pixels and the keypoints together.

A sample is the dict of :mod:`fkp.data`: ``{"image": (H, W, 3) uint8 RGB, "keypoints": (68, 2) float32
pixels (x, y), "name": str}``. Every transform is a small callable ``sample -> new sample`` with a
``__repr__``; it never modifies its input. Chain them with :class:`Compose`; the course pipeline is::

    Compose([Rescale(250), RandomCrop(224), Normalize(), ToTensor()])

Why OpenCV and not ``torchvision.transforms.v2``: each geometric transform here is one 2x3 affine
matrix ``A``; ``cv2.warpAffine(image, A)`` moves the pixels and ``A @ [x, y, 1]`` moves the keypoints
*exactly* (same matrix, same pixel convention), on plain NumPy arrays, cheaply on a couple of CPU cores.
The matrices are composed in ``sample["affine"]``, so a prediction made on a crop maps back to the
original photo with :func:`keypoints_to_original`.

Conventions (used by every function in this module):

* Pixel coordinates: x to the right, y down; the *centre* of pixel (row ``i``, column ``j``) is
  ``(x, y) = (j, i)``, so the image covers ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``. This is OpenCV's
  convention for ``warpAffine`` and ``resize``. A horizontal flip maps ``x -> W - 1 - x``; a resize by
  ``s`` maps ``x -> (x + 0.5) * s - 0.5``.
* Sizes are ``(h, w)`` like ``image.shape[:2]``; an int means a square.
* ``sample["affine"]``: (2, 3) float64 matrix from pixels of the *original* image to pixels of the
  current one, composed over every geometric transform (absent means identity).
* Normalised keypoints (after :class:`Normalize`): ``u = (x + 0.5) / (W / 2) - 1``, likewise ``v`` with
  ``H``; -1 and +1 are the outer edges of the image and 0 its centre, as ``align_corners=False`` in
  ``torch.nn.functional.grid_sample``. A horizontal flip negates ``u``.
* Geometric transforms come before :class:`Normalize`, which turns keypoints into normalised units.
* Randomness: transforms draw from ``rng`` if given, else from NumPy's global generator, which
  :func:`fkp.utils.set_seed` seeds and PyTorch's ``DataLoader`` re-seeds in each worker. (A passed
  ``Generator`` is copied into every worker, which then repeat each other's draws.)
* Keypoints that leave the output image (crops, rotations) are kept, outside ``[-0.5, W - 0.5]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import cv2
import numpy as np
import torch

from fkp.data import Sample
from fkp.geometry import crop_affine, keypoints_box
from fkp.landmarks import MIRROR

Size = int | tuple[int, int]
"""An int (square side) or ``(h, w)`` in pixels."""
BorderMode = Literal["replicate", "zeros"]
"""How pixels from outside the source image are filled: copies of the edge pixels, or black."""
_BORDERS: dict[str, int] = {"replicate": cv2.BORDER_REPLICATE, "zeros": cv2.BORDER_CONSTANT}
_ANTIALIAS_BELOW = 2 / 3
"""Warps that shrink by more than 1.5x first downsample with area averaging (less aliasing)."""

Random = Any  # np.random.Generator or the np.random module: both have .uniform(low, high) and .random()


def _hw(size: Size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def _rng(rng: np.random.Generator | None) -> Random:
    return np.random if rng is None else rng


def _homogeneous(affine: np.ndarray) -> np.ndarray:
    """(2, 3) -> (3, 3) with a last row ``[0, 0, 1]``."""
    return np.vstack([np.asarray(affine, dtype=np.float64), [0.0, 0.0, 1.0]])


def compose_affine(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The (2, 3) affine matrix that applies ``first`` then ``second``."""
    return (_homogeneous(second) @ _homogeneous(first))[:2]


def apply_affine(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map points by a (2, 3) affine matrix.

    Args:
        points: (..., 2) points, x then y, pixels.
        affine: (2, 3) matrix ``[[a, b, tx], [c, d, ty]]``: ``x' = a x + b y + tx``, ``y' = c x + d y + ty``.

    Returns:
        (..., 2) mapped points, float32 unless ``points`` is float64.
    """
    points = np.asarray(points)
    affine = np.asarray(affine, dtype=np.float64)
    mapped = points.astype(np.float64) @ affine[:, :2].T + affine[:, 2]
    return mapped.astype(np.float64 if points.dtype == np.float64 else np.float32)


def unapply_affine(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map points back through a (2, 3) affine matrix: the inverse of :func:`apply_affine`.

    Args:
        points: (..., 2) points, x then y, in pixels of the transformed image.
        affine: (2, 3) matrix from original pixels to transformed pixels (``sample["affine"]``).

    Returns:
        (..., 2) points in pixels of the original image. Pure geometry: the point order is unchanged
        (see :func:`keypoints_to_original` for keypoints that went through a flip).
    """
    return apply_affine(points, np.linalg.inv(_homogeneous(affine))[:2])


def keypoints_to_original(keypoints: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map keypoints predicted on a transformed image back to pixels of the original image.

    Like :func:`unapply_affine`, and if ``affine`` contains a reflection (an odd number of flips, whose
    keypoints were reordered with :data:`fkp.landmarks.MIRROR`), also restores the point order.

    Args:
        keypoints: (..., 68, 2) pixels of the transformed image, x then y.
        affine: (2, 3) ``sample["affine"]`` of that image.

    Returns:
        (..., 68, 2) pixels of the original image, x then y, in the original point order.
    """
    points = unapply_affine(keypoints, affine)
    if np.linalg.det(np.asarray(affine, dtype=np.float64)[:, :2]) < 0:
        points = points[..., MIRROR, :]
    return points


def normalize_keypoints(keypoints: np.ndarray | torch.Tensor, size: Size) -> np.ndarray | torch.Tensor:
    """Pixels to normalised units: ``u = (x + 0.5) / (w / 2) - 1``, ``v = (y + 0.5) / (h / 2) - 1``.

    Args:
        keypoints: (..., 2) pixels, x then y (NumPy array or tensor).
        size: the image size ``(h, w)`` or a square side.

    Returns:
        (..., 2) in [-1, 1] for points inside the image, same type as ``keypoints``.
    """
    h, w = _hw(size)
    half = _like(keypoints, [w / 2, h / 2])
    return (keypoints + 0.5) / half - 1


def denormalize_keypoints(keypoints: np.ndarray | torch.Tensor, size: Size) -> np.ndarray | torch.Tensor:
    """Normalised units back to pixels: the inverse of :func:`normalize_keypoints`.

    Args:
        keypoints: (..., 2) normalised, x then y (NumPy array or tensor).
        size: the image size ``(h, w)`` or a square side.

    Returns:
        (..., 2) pixels of that image, x then y, same type as ``keypoints``.
    """
    h, w = _hw(size)
    half = _like(keypoints, [w / 2, h / 2])
    return (keypoints + 1) * half - 0.5


def _like(reference: np.ndarray | torch.Tensor, values: list[float]) -> np.ndarray | torch.Tensor:
    if isinstance(reference, torch.Tensor):
        return torch.tensor(values, dtype=reference.dtype, device=reference.device)
    dtype = reference.dtype if np.issubdtype(np.asarray(reference).dtype, np.floating) else np.float32
    return np.asarray(values, dtype=dtype)


def _face_centre(sample: Sample) -> tuple[float, float]:
    """Centre of the keypoints' box, else of ``sample["box"]``, else of the image."""
    if "keypoints" in sample:
        x, y, w, h = keypoints_box(sample["keypoints"])
    elif "box" in sample:
        x, y, w, h = np.asarray(sample["box"], dtype=np.float64)
    else:
        rows, cols = sample["image"].shape[:2]
        return (cols - 1) / 2, (rows - 1) / 2
    return float(x + w / 2), float(y + h / 2)


def _moved(sample: Sample, matrix: np.ndarray, image: np.ndarray, order: np.ndarray | None = None) -> Sample:
    """A new sample with ``image``, the keypoints and the box mapped by ``matrix``, the affine composed.

    ``order`` reorders the keypoints (a flip); the new box bounds the four mapped box corners.
    """
    out = dict(sample)
    out["image"] = image
    if "keypoints" in sample:
        keypoints = apply_affine(sample["keypoints"], matrix)
        out["keypoints"] = keypoints if order is None else keypoints[order]
    if "box" in sample:
        x, y, w, h = np.asarray(sample["box"], dtype=np.float64)
        corners = apply_affine(np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]]), matrix)
        out["box"] = keypoints_box(corners)
    out["affine"] = compose_affine(matrix, sample.get("affine", np.eye(2, 3)))
    return out


def warp_image(image: np.ndarray, matrix: np.ndarray, size: Size, border: BorderMode = "replicate") -> np.ndarray:
    """``cv2.warpAffine`` with bilinear interpolation and area pre-shrinking for large reductions.

    Args:
        image: (H, W) or (H, W, C), uint8 or float32.
        matrix: (2, 3) from source pixels to output pixels (pixel-centre convention above).
        size: output ``(h, w)`` or a square side.
        border: fill for pixels that come from outside ``image``.

    Returns:
        The output image, same dtype and channels, size ``(h, w)``.
    """
    out_h, out_w = _hw(size)
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if scale < _ANTIALIAS_BELOW:
        rows, cols = image.shape[:2]
        small_w, small_h = max(1, round(cols * scale)), max(1, round(rows * scale))
        image = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        sx, sy = small_w / cols, small_h / rows
        shrink = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]])
        matrix = compose_affine(matrix, np.linalg.inv(_homogeneous(shrink))[:2])  # small -> output
    return cv2.warpAffine(
        image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=_BORDERS[border], borderValue=0
    )


class Compose:
    """Apply transforms in order.

    Args:
        transforms: callables ``sample -> sample``.
    """

    def __init__(self, transforms: Sequence[Callable[[Sample], Sample]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample) -> Sample:
        for transform in self.transforms:
            sample = transform(sample)
        return sample

    def __repr__(self) -> str:
        lines = "".join(f"    {transform!r},\n" for transform in self.transforms)
        return f"{type(self).__name__}([\n{lines}])"


class Rescale:
    """Resize the image (and the keypoints) to ``output_size``.

    Args:
        output_size: ``(h, w)``, or an int: the smaller side becomes ``output_size``, aspect kept.
    """

    def __init__(self, output_size: Size) -> None:
        self.output_size = output_size

    def __call__(self, sample: Sample) -> Sample:
        rows, cols = sample["image"].shape[:2]
        if isinstance(self.output_size, int):
            side = self.output_size
            new_h, new_w = (round(side * rows / cols), side) if rows > cols else (side, round(side * cols / rows))
        else:
            new_h, new_w = _hw(self.output_size)
        shrinking = new_h * new_w < rows * cols
        image = cv2.resize(
            sample["image"], (new_w, new_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        )
        sx, sy = new_w / cols, new_h / rows
        matrix = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]])
        return _moved(sample, matrix, image)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(output_size={self.output_size!r})"


class RandomCrop:
    """Cut a random window of ``size`` out of the image; keypoints shift with it.

    Args:
        size: ``(h, w)`` or a square side; at most the image size.
        rng: random generator (see the module notes); ``None`` uses NumPy's global one.
    """

    def __init__(self, size: Size, rng: np.random.Generator | None = None) -> None:
        self.size = size
        self.rng = rng

    def __call__(self, sample: Sample) -> Sample:
        rows, cols = sample["image"].shape[:2]
        crop_h, crop_w = _hw(self.size)
        if crop_h > rows or crop_w > cols:
            raise ValueError(f"crop {crop_h}x{crop_w} is larger than the image {rows}x{cols}")
        rng = _rng(self.rng)
        top = min(int(rng.uniform(0, rows - crop_h + 1)), rows - crop_h)
        left = min(int(rng.uniform(0, cols - crop_w + 1)), cols - crop_w)
        image = sample["image"][top : top + crop_h, left : left + crop_w].copy()
        matrix = np.array([[1.0, 0, -left], [0, 1.0, -top]])
        return _moved(sample, matrix, image)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size!r})"


class RandomHorizontalFlip:
    """Mirror the image left-right with probability ``p``: ``x -> W - 1 - x``, then reorder the points
    with :data:`fkp.landmarks.MIRROR` so that point 36 is again the subject's right eye's outer corner.

    Args:
        p: probability of flipping.
        rng: random generator (see the module notes); ``None`` uses NumPy's global one.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        self.p = p
        self.rng = rng

    def __call__(self, sample: Sample) -> Sample:
        if _rng(self.rng).random() >= self.p:  # still record the (identity) affine: batches need the same keys
            return _moved(sample, np.eye(2, 3), sample["image"])
        cols = sample["image"].shape[1]
        image = np.ascontiguousarray(sample["image"][:, ::-1])
        matrix = np.array([[-1.0, 0, cols - 1], [0, 1.0, 0]])
        return _moved(sample, matrix, image, order=MIRROR)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class RandomRotation:
    """Rotate by an angle drawn uniformly from ``[-max_degrees, max_degrees]`` about the face centre
    (centre of the keypoints' box). Positive angles turn the picture counter-clockwise on screen.
    The image keeps its size.

    Args:
        max_degrees: largest rotation, degrees.
        border: fill for the corners that come from outside the image.
        rng: random generator (see the module notes); ``None`` uses NumPy's global one.
    """

    def __init__(
        self, max_degrees: float, border: BorderMode = "replicate", rng: np.random.Generator | None = None
    ) -> None:
        self.max_degrees = max_degrees
        self.border = border
        self.rng = rng

    def __call__(self, sample: Sample) -> Sample:
        angle = _rng(self.rng).uniform(-self.max_degrees, self.max_degrees)
        matrix = cv2.getRotationMatrix2D(_face_centre(sample), angle, 1.0)
        image = warp_image(sample["image"], matrix, sample["image"].shape[:2], self.border)
        return _moved(sample, matrix, image)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_degrees={self.max_degrees}, border={self.border!r})"


class RandomScaleShift:
    """Zoom about the face centre by a factor drawn from ``scale``, then shift by up to ``shift`` times
    the image size in x and in y. The image keeps its size.

    Args:
        scale: ``(low, high)`` zoom factors (> 1 enlarges the face).
        shift: largest shift as a fraction of the image width (x) and height (y).
        border: fill for pixels that come from outside the image.
        rng: random generator (see the module notes); ``None`` uses NumPy's global one.
    """

    def __init__(
        self,
        scale: tuple[float, float] = (0.9, 1.1),
        shift: float = 0.1,
        border: BorderMode = "replicate",
        rng: np.random.Generator | None = None,
    ) -> None:
        self.scale = scale
        self.shift = shift
        self.border = border
        self.rng = rng

    def __call__(self, sample: Sample) -> Sample:
        rng = _rng(self.rng)
        rows, cols = sample["image"].shape[:2]
        factor = rng.uniform(*self.scale)
        dx = rng.uniform(-self.shift, self.shift) * cols
        dy = rng.uniform(-self.shift, self.shift) * rows
        matrix = cv2.getRotationMatrix2D(_face_centre(sample), 0.0, factor)
        matrix[:, 2] += (dx, dy)
        image = warp_image(sample["image"], matrix, (rows, cols), self.border)
        return _moved(sample, matrix, image)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale!r}, shift={self.shift}, border={self.border!r})"


class FaceCrop:
    """A square crop around the face, resized to ``output_size``, in one ``warpAffine``.

    The face box is ``sample["box"]`` (``x, y, w, h`` pixels, e.g. from a face detector) when the sample
    has one, else the bounding box of the keypoints. The square is centred on the box, with side
    ``max(w, h) * (1 + 2 * padding)`` (``padding`` is the margin on each side, as a fraction of the box;
    :func:`fkp.geometry.box_affine`'s ``box_scale`` is ``1 + 2 * padding``).
    With ``jitter > 0`` its centre moves by up to ``jitter * side`` in x and y and its side is scaled by
    a factor in ``[1 - jitter, 1 + jitter]``. Parts of the square outside the image are filled by
    ``border``. Works without keypoints (``{"image", "box"}`` at prediction time).

    Args:
        output_size: side of the output square, pixels.
        padding: margin around the box on each side, as a fraction of the box's larger side.
        jitter: random displacement and scale change (0 for evaluation).
        border: fill for pixels that come from outside the image.
        rng: random generator (see the module notes); ``None`` uses NumPy's global one.
    """

    def __init__(
        self,
        output_size: int,
        padding: float = 0.25,
        jitter: float = 0.0,
        border: BorderMode = "replicate",
        rng: np.random.Generator | None = None,
    ) -> None:
        self.output_size = output_size
        self.padding = padding
        self.jitter = jitter
        self.border = border
        self.rng = rng

    def crop_matrix(self, box: np.ndarray) -> np.ndarray:
        """The (2, 3) matrix from image pixels to crop pixels for a face box ``x, y, w, h``, no jitter."""
        x, y, w, h = np.asarray(box, dtype=np.float64)
        return self._matrix(x + w / 2, y + h / 2, max(w, h) * (1 + 2 * self.padding))

    def _matrix(self, centre_x: float, centre_y: float, side: float) -> np.ndarray:
        # The square's edges [c - side/2, c + side/2] map to the output's edges [-0.5, out - 0.5]: the
        # crop that fkp.predict cuts at inference (fkp.geometry.crop_affine), so training matches it.
        return crop_affine(np.array([centre_x, centre_y]), side, self.output_size)

    def __call__(self, sample: Sample) -> Sample:
        if "box" in sample:
            box = np.asarray(sample["box"], dtype=np.float64)
        elif "keypoints" in sample:
            box = keypoints_box(sample["keypoints"]).astype(np.float64)
        else:
            raise ValueError("FaceCrop needs sample['box'] or sample['keypoints']")
        x, y, w, h = box
        centre_x, centre_y, side = x + w / 2, y + h / 2, max(w, h) * (1 + 2 * self.padding)
        if self.jitter > 0:
            rng = _rng(self.rng)
            centre_x += rng.uniform(-self.jitter, self.jitter) * side
            centre_y += rng.uniform(-self.jitter, self.jitter) * side
            side *= rng.uniform(1 - self.jitter, 1 + self.jitter)
        matrix = self._matrix(centre_x, centre_y, side)
        image = warp_image(sample["image"], matrix, self.output_size, self.border)
        return _moved(sample, matrix, image)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(output_size={self.output_size}, padding={self.padding}, "
            f"jitter={self.jitter}, border={self.border!r})"
        )


class ColorJitter:
    """Random brightness and contrast; the keypoints do not move.

    Brightness multiplies the image by a factor in ``[1 - brightness, 1 + brightness]``; contrast
    scales the distance to the mean grey level by a factor in ``[1 - contrast, 1 + contrast]``.
    Works on uint8 images (0-255) and float images (0-1); the result is clipped and keeps the dtype.

    Args:
        brightness: largest relative brightness change.
        contrast: largest relative contrast change.
        rng: random generator (see the module notes); ``None`` uses NumPy's global one.
    """

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2, rng: np.random.Generator | None = None) -> None:
        self.brightness = brightness
        self.contrast = contrast
        self.rng = rng

    def __call__(self, sample: Sample) -> Sample:
        rng = _rng(self.rng)
        gain = rng.uniform(1 - self.brightness, 1 + self.brightness)
        stretch = rng.uniform(1 - self.contrast, 1 + self.contrast)
        image = sample["image"]
        top = 255.0 if image.dtype == np.uint8 else 1.0
        pixels = image.astype(np.float32) * gain
        mean = pixels.mean()
        pixels = np.clip(mean + (pixels - mean) * stretch, 0, top)
        out = dict(sample)
        out["image"] = np.round(pixels).astype(np.uint8) if image.dtype == np.uint8 else pixels.astype(image.dtype)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(brightness={self.brightness}, contrast={self.contrast})"


class Normalize:
    """Image to float32 in [0, 1] (grey (H, W) by default, else RGB (H, W, 3)); keypoints to normalised
    units ``u = (x + 0.5) / (W / 2) - 1`` (see :func:`normalize_keypoints`, undone by
    :func:`denormalize_keypoints`). Apply after every geometric transform.

    Args:
        grayscale: convert RGB to one grey channel (the course model's input).
    """

    def __init__(self, grayscale: bool = True) -> None:
        self.grayscale = grayscale

    def __call__(self, sample: Sample) -> Sample:
        image = sample["image"]
        pixels = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
        if self.grayscale and pixels.ndim == 3:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
        out = dict(sample)
        out["image"] = pixels
        if "keypoints" in sample:
            out["keypoints"] = normalize_keypoints(np.asarray(sample["keypoints"], dtype=np.float32), image.shape[:2])
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(grayscale={self.grayscale})"


class ToTensor:
    """NumPy to torch: image (H, W) -> (1, H, W) or (H, W, C) -> (C, H, W) float32 (uint8 scaled to
    [0, 1]); keypoints -> (68, 2) float32 tensor. Other entries are left as they are."""

    def __call__(self, sample: Sample) -> Sample:
        image = sample["image"]
        pixels = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
        pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
        out = dict(sample)
        out["image"] = torch.from_numpy(np.ascontiguousarray(pixels))
        if "keypoints" in sample:
            out["keypoints"] = torch.as_tensor(np.asarray(sample["keypoints"], dtype=np.float32))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
