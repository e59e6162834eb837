"""Facial keypoint data sets as a PyTorch ``Dataset``: the course's Udacity set and 300-W.

Layout on disk (what ``fkp data download`` and ``fkp data prepare-300w`` produce)::

    ROOT/training_frames_keypoints.csv   ROOT/training/*.jpg
    ROOT/test_frames_keypoints.csv       ROOT/test/*.jpg

Each CSV row is a file name then 136 numbers ``x0, y0, ..., x67, y67`` in pixels of that image
(read by :func:`fkp.keypoints_csv.read_keypoints_csv`).
Two data sets come in this layout, each found by name (:func:`resolve_dataset`):

- ``"udacity"``: the course's set, YouTube Faces frames (3462 training, 770 test images);
  ``--dir``/``$FKP_DATA_DIR``, then ``./data``.
- ``"300w"``: real photos of the 300-W family (LFPW, HELEN, AFW; ``$FKP_300W_DIR``, then
  ``./data/faces-300w``). A file name's prefix names its subset (``lfpw_test_``, ``helen_train_``,
  ``afw_``; :func:`subset_of`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch.utils.data import Dataset

from fkp.geometry import face_frame
from fkp.images import load_image
from fkp.keypoints_csv import read_keypoints_csv
from fkp.landmarks import MIRROR
from fkp.utils import GET_300W_HINT, GET_DATA_HINT, PROGRESS_MININTERVAL_S, resolve_300w_dir, resolve_data_dir

Split = Literal["training", "test"]
DATASETS: tuple[str, ...] = ("udacity", "300w")
"""The data sets found by name (see :func:`resolve_dataset`); any other name is a folder."""
SUBSETS: tuple[str, ...] = ("lfpw", "helen", "afw", "ibug")
"""300-W subsets, named by the prefix of each file name."""
SPLITS: tuple[Split, ...] = ("training", "test")
Sample = dict[str, Any]
"""A sample: ``{"image": (H, W, 3) uint8 RGB, "keypoints": (68, 2) float32 pixels (x, y), "name": str}``.
Transforms may change the types (see :mod:`fkp.transforms`)."""


class DataNotFoundError(FileNotFoundError):
    """The data folder, a CSV file or an image is missing."""


def csv_path(root: str | os.PathLike[str], split: Split) -> Path:
    """Path of the keypoints CSV of ``split`` under ``root``."""
    return Path(root) / f"{split}_frames_keypoints.csv"


def person_of(name: str) -> str:
    """The person in an image, from its file name: ``"Aaron_Eckhart_11.jpg" -> "Aaron_Eckhart"``."""
    return re.sub(r"_\d+$", "", Path(name).stem)


def subset_of(name: str) -> str | None:
    """The 300-W subset of an image from its file name (``"helen_test_296814969_3.jpg" -> "helen"``).

    Returns:
        One of :data:`SUBSETS`, or ``None`` for a name without such a prefix (the Udacity set).
    """
    prefix = name.split("_", 1)[0].lower()
    return prefix if prefix in SUBSETS and "_" in name else None


def resolve_dataset(name_or_dir: str | os.PathLike[str] | None) -> Path:
    """The folder of a data set given by name (:data:`DATASETS`) or as a folder.

    ``None`` and ``"udacity"`` follow :func:`fkp.utils.resolve_data_dir`; ``"300w"`` follows
    :func:`fkp.utils.resolve_300w_dir`; anything else is taken as a folder.
    """
    if name_or_dir is None or str(name_or_dir) == "udacity":
        return resolve_data_dir(None)
    if str(name_or_dir) == "300w":
        return resolve_300w_dir(None)
    return Path(name_or_dir).expanduser()


def mirror_asymmetry(keypoints: np.ndarray) -> float:
    """How far a set's labels are from mirror-consistent: 0 when flips with :data:`MIRROR` are valid.

    Every face is moved to its frame (:func:`fkp.geometry.face_frame`), where its eye centres sit at
    (-0.5, 0) and (0.5, 0), the frames
    are averaged into a mean shape, and the mean shape is compared with its own mirror image
    (x -> -x, points reordered by :data:`MIRROR`). Over a set whose poses are as often turned left
    as right, consistent labels give a near-symmetric mean shape.

    Args:
        keypoints: (N, 68, 2) labelled points in pixels, x then y.

    Returns:
        The mean distance between the mean shape and its mirror image, in eye distances.
    """
    points = np.asarray(keypoints, dtype=np.float64)
    frame = face_frame(points).to_frame(points)  # (N, 68, 2) in eye-centre distances
    mean = frame.mean(axis=0)  # (68, 2)
    mirrored = mean[MIRROR] * np.array([-1.0, 1.0])
    return float(np.linalg.norm(mirrored - mean, axis=-1).mean())


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a data set image to (H, W, 3) uint8 RGB with the package's one decoder,
    :func:`fkp.images.load_image` (by content, EXIF upright, 16-bit scaled, alpha dropped).

    Raises:
        fkp.images.ImageReadError: (a ValueError) the file cannot be decoded as an image.
    """
    return load_image(path)


class FacialKeypointsDataset(Dataset):
    """One split of a facial keypoints data set (the Udacity set, 300-W, or any folder in that layout).

    A sample is a dict ``{"image": (H, W, 3) uint8 RGB, "keypoints": (68, 2) float32, "name": str}``
    with keypoints in pixels of the image, x then y, before ``transform`` is applied to it.

    Decoded images are kept in memory after their first use (``cache=True``), so that only the
    first epoch pays for decoding; :meth:`preload` fills the cache up front with a progress bar.

    Args:
        root: the data folder, or a data set name of :data:`DATASETS`; ``None`` is the Udacity
            set (``$FKP_DATA_DIR``, then ``./data``).
        split: ``"training"`` or ``"test"``.
        transform: a callable applied to each sample dict, e.g. a :class:`fkp.transforms.Compose`.
        cache: keep decoded images in memory.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        split: Split = "training",
        transform: Callable[[Sample], Any] | None = None,
        cache: bool = True,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        self.root = resolve_dataset(root)
        self.split = split
        self.transform = transform
        table = csv_path(self.root, split)
        if not table.is_file():
            hint = GET_300W_HINT if str(root) == "300w" else GET_DATA_HINT
            raise DataNotFoundError(f"{table} not found: {hint}")
        self.names, self.keypoints = read_keypoints_csv(table)
        self._cache: list[np.ndarray | None] | None = [None] * len(self.names) if cache else None

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"

    def image_path(self, index: int) -> Path:
        """Path of the image of sample ``index``."""
        return self.root / self.split / self.names[index]

    def image(self, index: int) -> np.ndarray:
        """The image of sample ``index``, (H, W, 3) uint8 RGB, decoded once when caching."""
        if self._cache is None:
            return read_image(self.image_path(index))
        cached = self._cache[index]
        if cached is None:
            cached = self._cache[index] = read_image(self.image_path(index))
        return cached

    def raw(self, index: int) -> Sample:
        """Sample ``index`` before ``transform``: a copy, safe to modify."""
        return {
            "image": self.image(index).copy(),
            "keypoints": self.keypoints[index].copy(),
            "name": self.names[index],
        }

    def __getitem__(self, index: int) -> Any:
        sample = self.raw(index)
        return self.transform(sample) if self.transform is not None else sample

    def preload(self, progress: bool = True) -> FacialKeypointsDataset:
        """Decode every image into the memory cache now; returns ``self``."""
        from tqdm.auto import tqdm

        for index in tqdm(
            range(len(self)), desc=f"decoding {self.split}", disable=not progress, mininterval=PROGRESS_MININTERVAL_S
        ):
            self.image(index)
        return self

    @property
    def convention(self) -> str | None:
        """The labelling convention of this set (:data:`fkp.conventions.CONVENTIONS`), or ``None`` if unknown.

        The Udacity set and 300-W are recognised by where they are found (:func:`resolve_dataset`).
        """
        here = self.root.resolve()
        for name in DATASETS:
            if resolve_dataset(name).resolve() == here:
                return name
        return None

    def subsets(self) -> list[str | None]:
        """The 300-W subset of each sample, in sample order (``None`` where the name has none)."""
        return [subset_of(name) for name in self.names]

    def persons(self) -> list[str]:
        """The person of each sample, in sample order (see :func:`person_of`)."""
        return [person_of(name) for name in self.names]


def person_disjoint_split(
    names: Sequence[str], val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices so that no person appears on both sides.

    Args:
        names: image file names; the person is the name before the trailing frame number.
        val_fraction: the share of *persons* put in the validation part (at least one person);
            0 puts everyone in the train part.
        seed: seeds the choice of validation persons.

    Returns:
        Sorted train indices and sorted validation indices.
    """
    if val_fraction <= 0:
        return np.arange(len(names)), np.arange(0)
    persons = np.array([person_of(name) for name in names])
    unique = np.unique(persons)
    rng = np.random.default_rng(seed)
    n_val = max(1, round(len(unique) * val_fraction))
    val_persons = set(rng.choice(unique, size=n_val, replace=False).tolist())
    is_val = np.array([person in val_persons for person in persons])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
