"""The crop-and-augment pipeline of training: sample transforms that move pixels and keypoints together.

A sample is the dict of :mod:`fkp.data`: ``{"image": (H, W, 3) uint8 RGB, "keypoints": (68, 2)
pixels (x, y), "name": str}``. Every transform is a small callable ``sample -> new sample`` with a
``__repr__``; it never modifies its input. :func:`crop_transforms` chains them into the
pipeline that ``fkp train`` feeds its network with (taught in ``1_Load_and_Visualize_Data.ipynb``)::

    Compose([Grayscale(), RandomFaceCrop(96, box_scale=1.35, ...), RandomPixels(...), Normalize(), ToTensor()])

and, for validation, ``FaceCrop`` (the crop :mod:`fkp.predict` cuts) in place of the random ones.

Each geometric transform is one (2, 3) affine matrix from :mod:`fkp.geometry`: ``cv2.warpAffine``
moves the pixels (:func:`fkp.geometry.warp_crop`) and :func:`fkp.geometry.apply_affine` moves the
keypoints, *exactly* (same matrix, same pixel convention). The matrices are composed in
``sample["affine"]``, so a prediction made on a crop maps back to the original photo with
:func:`keypoints_to_original`.

Conventions:

* Pixel coordinates: x to the right, y down; the *centre* of pixel (row ``i``, column ``j``) is
  ``(x, y) = (j, i)``, so an image covers ``[-0.5, W - 0.5] x [-0.5, H - 0.5]`` (OpenCV's
  convention). A mirror of a crop of side S maps ``x -> S - 1 - x`` and renames the points with
  :data:`fkp.landmarks.MIRROR`.
* ``sample["affine"]``: (2, 3) float64 matrix from pixels of the *original* image to pixels of the
  current one, composed over every geometric transform (absent means identity).
* Normalised keypoints (after :class:`Normalize`): ``u = (x + 0.5) / S * 2 - 1`` on a crop of side S
  (:func:`fkp.geometry.to_normalized`): -1 and +1 are the crop's outer edges, 0 its centre.
* Randomness: transforms draw from ``rng`` if given (a ``np.random.RandomState``), else from NumPy's
  global generator, which :func:`fkp.utils.set_seed` seeds and PyTorch's ``DataLoader`` re-seeds in
  each worker.
* Keypoints that leave the crop are kept, outside ``[-0.5, S - 0.5]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from fkp import geometry
from fkp.data import Sample
from fkp.detectors import box_styles
from fkp.landmarks import MIRROR

if TYPE_CHECKING:
    from fkp.train_config import TrainConfig

Random = Any  # np.random.RandomState or the np.random module: .random(), .uniform(), .normal(), .randint()


def _rng(rng: np.random.RandomState | None) -> Random:
    return np.random if rng is None else rng


def keypoints_to_original(keypoints: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map keypoints predicted on a transformed image back to pixels of the original image.

    If ``affine`` contains a reflection (a mirrored crop, whose keypoints were renamed with
    :data:`fkp.landmarks.MIRROR`), the point order is restored too.

    Args:
        keypoints: (..., 68, 2) pixels of the transformed image, x then y.
        affine: (2, 3) ``sample["affine"]`` of that image.

    Returns:
        (..., 68, 2) pixels of the original image, x then y, in the original point order.
    """
    points = geometry.apply_affine(keypoints, geometry.invert_affine(affine))
    if np.linalg.det(np.asarray(affine, dtype=np.float64)[:, :2]) < 0:
        points = points[..., MIRROR, :]
    return points


def _moved(sample: Sample, matrix: np.ndarray, image: np.ndarray, mirrored: bool = False) -> Sample:
    """A new sample with ``image``, the keypoints and the box mapped by ``matrix``, the affine composed.

    ``mirrored`` renames the keypoints with ``MIRROR``; the new box bounds the four mapped box corners.
    """
    out = dict(sample)
    out["image"] = image
    if "keypoints" in sample:
        keypoints = geometry.apply_affine(sample["keypoints"], matrix)
        out["keypoints"] = keypoints[MIRROR] if mirrored else keypoints
    if "box" in sample:
        x, y, w, h = np.asarray(sample["box"], dtype=np.float64)
        corners = geometry.apply_affine(np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]]), matrix)
        out["box"] = geometry.keypoints_box(corners)
    out["affine"] = geometry.compose_affine(matrix, sample.get("affine", np.eye(2, 3)))
    return out


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


class Grayscale:
    """RGB uint8 image -> (H, W) uint8 grey levels (OpenCV's weights); a grey image passes unchanged.

    The network sees grey crops: colour varies with camera and light more than with the face.
    """

    def __call__(self, sample: Sample) -> Sample:
        if sample["image"].ndim == 2:
            return sample
        out = dict(sample)
        out["image"] = cv2.cvtColor(sample["image"], cv2.COLOR_RGB2GRAY)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FaceCrop:
    """The square crop around a face box, resized to ``size``, in one warp: the crop prediction cuts.

    The box is ``sample["box"]`` (``x, y, w, h`` pixels, e.g. from a face detector) when the sample
    has one, else the tight box of the keypoints. The square is centred on the box, its side is the
    box's longer side x ``box_scale`` (:func:`fkp.geometry.box_affine`); parts outside the image
    repeat the border pixels. Validation in ``fkp train`` uses it as it is.

    Args:
        size: side S of the output crop, pixels (the network's input size).
        box_scale: crop side / the box's longer side.
    """

    def __init__(self, size: int, box_scale: float = geometry.DEFAULT_BOX_SCALE) -> None:
        self.size = size
        self.box_scale = box_scale

    def crop_matrix(self, box: np.ndarray) -> np.ndarray:
        """The (2, 3) matrix from image pixels to crop pixels for a face box ``x, y, w, h``."""
        return geometry.box_affine(box, self.size, self.box_scale)

    def __call__(self, sample: Sample) -> Sample:
        if "box" in sample:
            box = np.asarray(sample["box"], dtype=np.float64)
        elif "keypoints" in sample:
            box = geometry.keypoints_box(sample["keypoints"])
        else:
            raise ValueError("FaceCrop needs sample['box'] or sample['keypoints']")
        matrix = self.crop_matrix(box)
        return _moved(sample, matrix, geometry.warp_crop(sample["image"], matrix, self.size))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, box_scale={self.box_scale})"


class RandomFaceCrop:
    """A random crop around the keypoints, turned, zoomed, shifted and maybe mirrored, in one warp.

    What the network meets at prediction time, drawn at random per sample:

    * the roll: with probability ``upright`` the face turned upright by its eye line (give or take
      3 degrees, what the model's second pass sees), else with probability ``wide_rotation`` any
      angle at all (a rolled head on the first pass), else an everyday tilt, normal with standard
      deviation ``rotation_degrees`` (clipped to 45);
    * the box, measured along the crop's axes: with probability ``detector_boxes`` a box in the
      style of one of the face detectors (:func:`fkp.detectors.box_styles`), else the tight
      box of the points shifted by up to ``box_shift`` of its side and zoomed by
      ``exp(uniform(-box_zoom, box_zoom))``;
    * a mirror with probability ``flip`` (points renamed with ``MIRROR``); ``flip=None`` for labels
      that are not mirror-consistent (see :data:`fkp.training_data.MIRROR_TOLERANCE`) draws nothing.

    The crop's side is the box's longer side x ``box_scale``. The sample needs 68 keypoints.

    Args:
        size: side S of the output crop, pixels.
        box_scale: crop side / the box's longer side.
        rotation_degrees: standard deviation of the everyday tilt.
        wide_rotation: share of samples turned by any angle.
        upright: share of samples turned upright by their eye line.
        box_shift: largest shift of a tight box's centre, fraction of its side.
        box_zoom: largest log-zoom of a tight box's side.
        detector_boxes: share of samples cut around a detector-style box.
        flip: probability of a mirror, or ``None`` to never mirror.
        rng: a ``np.random.RandomState``; ``None`` uses NumPy's global one.
    """

    def __init__(
        self,
        size: int,
        box_scale: float = geometry.DEFAULT_BOX_SCALE,
        rotation_degrees: float = 10.0,
        wide_rotation: float = 0.0,
        upright: float = 0.0,
        box_shift: float = 0.05,
        box_zoom: float = 0.1,
        detector_boxes: float = 0.0,
        flip: float | None = None,
        rng: np.random.RandomState | None = None,
    ) -> None:
        self.size = size
        self.box_scale = box_scale
        self.rotation_degrees = rotation_degrees
        self.wide_rotation = wide_rotation
        self.upright = upright
        self.box_shift = box_shift
        self.box_zoom = box_zoom
        self.detector_boxes = detector_boxes
        self.flip = flip
        self.rng = rng

    def crop_matrix(self, keypoints: np.ndarray) -> tuple[np.ndarray, bool]:
        """Draw the (2, 3) image -> crop matrix for a face's (68, 2) points, and whether it mirrors."""
        rng = _rng(self.rng)
        draw = rng.random()
        if draw < self.upright:  # as the second pass sees it, up to its error in the roll
            angle = float(geometry.keypoints_roll(keypoints)) + rng.normal(0.0, 3.0)
        elif draw < self.upright + self.wide_rotation:
            angle = rng.uniform(-180.0, 180.0)
        else:
            angle = float(np.clip(rng.normal(0.0, self.rotation_degrees), -45, 45))
        # The box is measured along the crop's axes: the axis-aligned box of the face in a photo
        # turned by `angle`, which is what a detector (or the tight box of the points) gives.
        centre, extent = geometry.upright_box(keypoints, angle)
        side = float(max(extent.max(), 1.0))
        if rng.random() < self.detector_boxes:
            styles = box_styles()
            style = styles[sorted(styles)[rng.randint(len(styles))]]
            offset, side = style.sample(np.zeros(2), side, rng)
        else:
            offset = rng.uniform(-self.box_shift, self.box_shift, size=2) * side
            side *= math.exp(rng.uniform(-self.box_zoom, self.box_zoom))
        theta = math.radians(angle)
        to_image = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        centre = centre + to_image @ offset  # the offset is along the crop's axes
        mirrored = self.flip is not None and rng.random() < self.flip
        return geometry.crop_affine(centre, side * self.box_scale, self.size, angle, mirrored), mirrored

    def __call__(self, sample: Sample) -> Sample:
        matrix, mirrored = self.crop_matrix(sample["keypoints"])
        return _moved(sample, matrix, geometry.warp_crop(sample["image"], matrix, self.size), mirrored)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(size={self.size}, box_scale={self.box_scale}, "
            f"rotation_degrees={self.rotation_degrees}, wide_rotation={self.wide_rotation}, upright={self.upright}, "
            f"box_shift={self.box_shift}, box_zoom={self.box_zoom}, detector_boxes={self.detector_boxes}, "
            f"flip={self.flip})"
        )


def augment_pixels(crop: np.ndarray, photometric: float, occlusion: float, rng: Random) -> np.ndarray:
    """Random photometric changes (gamma, low contrast, blur, noise) and occlusion of a uint8 crop.

    A blur stands for a low-resolution face, a block of random grey for a hand, a microphone or hair.

    Args:
        crop: (S, S) uint8 crop.
        photometric: probability of the photometric changes.
        occlusion: probability of an occluding block.
        rng: ``np.random`` or a ``np.random.RandomState``.

    Returns:
        (S, S) uint8 crop.
    """
    image = crop.astype(np.float32) / 255.0
    if rng.random() < photometric:
        image = image ** rng.uniform(0.6, 1.6)
        if rng.random() < 0.4:  # low contrast
            image = image.mean() + (image - image.mean()) * rng.uniform(0.3, 0.8)
        if rng.random() < 0.4:  # a low-resolution or out-of-focus face
            image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.8))
        if rng.random() < 0.4:  # sensor noise
            image = image + rng.normal(0.0, rng.uniform(0.01, 0.06), size=image.shape).astype(np.float32)
    if rng.random() < occlusion:
        size = crop.shape[0]
        height, width = (rng.uniform(0.15, 0.4, size=2) * size).astype(int)
        top, left = rng.randint(0, size - height), rng.randint(0, size - width)
        image[top : top + height, left : left + width] = rng.uniform(0.0, 1.0)
    return np.clip(image * 255.0, 0, 255).astype(np.uint8)


class RandomPixels:
    """Random photometric changes and occlusion of a grey crop (:func:`augment_pixels`); points stay.

    Args:
        photometric: share of samples with random gamma, contrast, blur and noise.
        occlusion: share of samples with a random block hiding part of the face.
        rng: a ``np.random.RandomState``; ``None`` uses NumPy's global one.
    """

    def __init__(
        self, photometric: float = 0.3, occlusion: float = 0.1, rng: np.random.RandomState | None = None
    ) -> None:
        self.photometric = photometric
        self.occlusion = occlusion
        self.rng = rng

    def __call__(self, sample: Sample) -> Sample:
        out = dict(sample)
        out["image"] = augment_pixels(sample["image"], self.photometric, self.occlusion, _rng(self.rng))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(photometric={self.photometric}, occlusion={self.occlusion})"


class Normalize:
    """A square grey crop to zero mean and unit variance (:func:`fkp.geometry.standardize`), float32;
    keypoints to normalised crop units ``u = (x + 0.5) / S * 2 - 1`` (:func:`fkp.geometry.to_normalized`,
    undone by :func:`fkp.geometry.from_normalized`). Apply after the crop."""

    def __call__(self, sample: Sample) -> Sample:
        image = sample["image"]
        if image.ndim != 2:
            raise ValueError(f"Normalize takes a grey (H, W) crop, got shape {image.shape}: put Grayscale() first")
        out = dict(sample)
        out["image"] = geometry.standardize(image)
        if "keypoints" in sample:
            out["keypoints"] = geometry.to_normalized(sample["keypoints"], image.shape[0])
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ToTensor:
    """NumPy to torch: image (H, W) -> (1, H, W) float32 tensor; keypoints -> (68, 2) float32 tensor.
    Other entries are left as they are."""

    def __call__(self, sample: Sample) -> Sample:
        out = dict(sample)
        out["image"] = torch.from_numpy(np.asarray(sample["image"], dtype=np.float32))[None]  # (1, H, W)
        if "keypoints" in sample:
            out["keypoints"] = torch.from_numpy(np.asarray(sample["keypoints"], dtype=np.float32))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def crop_transforms(config: TrainConfig, augment: bool, mirror: bool = False) -> Compose:
    """The crop-and-augment pipeline that ``fkp train`` feeds its network with, from the transforms above.

    Taught in ``1_Load_and_Visualize_Data.ipynb``, which applies it to the course's Dataset.

    Args:
        config: the run's settings (input size, box scale and the augmentation shares).
        augment: training (random crops, pixel changes) or validation (the crop of the tight box).
        mirror: whether the labels allow mirroring (:data:`fkp.training_data.MIRROR_TOLERANCE`); if so faces are
            mirrored with probability ``config.flip``.

    Returns:
        Sample dict ``{"image": (H, W, 3) or (H, W) uint8, "keypoints": (68, 2) pixels, ...}`` ->
        ``{"image": (1, S, S) float32 standardised, "keypoints": (68, 2) normalised, "affine": (2, 3)}``.
    """
    if not augment:
        return Compose([Grayscale(), FaceCrop(config.input_size, config.box_scale), Normalize(), ToTensor()])
    crop = RandomFaceCrop(
        config.input_size,
        config.box_scale,
        rotation_degrees=config.rotation_degrees,
        wide_rotation=config.wide_rotation,
        upright=config.upright,
        box_shift=config.box_shift,
        box_zoom=config.box_zoom,
        detector_boxes=config.detector_boxes,
        flip=config.flip if mirror else None,
    )
    return Compose([Grayscale(), crop, RandomPixels(config.photometric, config.occlusion), Normalize(), ToTensor()])


class FaceCrops(Dataset):
    """Face crops for training or validation, through :func:`crop_transforms`, images decoded once.

    Training samples draw a random crop around the points (:class:`fkp.transforms.RandomFaceCrop`:
    tight or detector-style boxes, everyday tilts, any angle at all (the model's first pass on a
    rolled face), or the face turned upright by its eye line (the model's second pass), mirrored
    where the labels allow it), then random photometric changes and occlusion. Validation samples
    use the tight box as it is (:class:`fkp.transforms.FaceCrop`).

    Each item is ``(crop (1, S, S) float32 standardised, points (68, 2) float32 normalised)``.

    Args:
        grays: (H, W) uint8 images.
        keypoints: (N, 68, 2) their points in pixels, x then y.
        config: the augmentation settings.
        augment: draw random crops (training) or not (validation).
        flippable: (N,) bool, whether each sample's labels allow mirroring (default: none do).
        heads: (N,) int, the heatmap head that learns each sample's labels (default: all head 0).
    """

    def __init__(
        self,
        grays: list[np.ndarray],
        keypoints: np.ndarray,
        config: TrainConfig,
        augment: bool,
        flippable: np.ndarray | None = None,
        heads: np.ndarray | None = None,
    ) -> None:
        self.grays = grays
        self.keypoints = keypoints
        self.boxes = geometry.keypoints_box(keypoints)
        self.config = config
        self.augment = augment
        self.flippable = np.zeros(len(grays), bool) if flippable is None else np.asarray(flippable, bool)
        self.heads = np.zeros(len(grays), np.int64) if heads is None else np.asarray(heads, np.int64)
        self.transforms = {mirror: crop_transforms(config, augment, mirror) for mirror in (False, True)}

    def __len__(self) -> int:
        return len(self.grays)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        transform = self.transforms[bool(self.flippable[index])]
        sample = transform({"image": self.grays[index], "keypoints": self.keypoints[index]})
        return sample["image"], sample["keypoints"]
