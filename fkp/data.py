"""The Udacity facial keypoints data set as a PyTorch ``Dataset``.

Layout on disk (what ``fkp data download`` produces)::

    ROOT/training_frames_keypoints.csv   ROOT/training/*.jpg   (3462 labelled images)
    ROOT/test_frames_keypoints.csv       ROOT/test/*.jpg       (770 labelled images)

Each CSV row is a file name then 136 numbers ``x0, y0, ..., x67, y67`` in pixels of that image.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from torch.utils.data import Dataset

from fkp.landmarks import NUM_KEYPOINTS
from fkp.utils import GET_DATA_HINT, resolve_data_dir

Split = Literal["training", "test"]
SPLITS: tuple[Split, ...] = ("training", "test")
Sample = dict[str, Any]
"""A sample: ``{"image": (H, W, 3) uint8 RGB, "keypoints": (68, 2) float32 pixels (x, y), "name": str}``.
Transforms may change the types (see :mod:`fkp.transforms`)."""


class DataNotFoundError(FileNotFoundError):
    """The data folder, a CSV file or an image is missing."""


def csv_path(root: str | os.PathLike[str], split: Split) -> Path:
    """Path of the keypoints CSV of ``split`` under ``root``."""
    return Path(root) / f"{split}_frames_keypoints.csv"


def read_keypoints_csv(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """Read a keypoints CSV.

    Returns:
        The image file names (N,) and their keypoints, (N, 68, 2) float32 pixels, x then y.
    """
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    names = [row[0] for row in rows[1:]]
    values = np.array([row[1:] for row in rows[1:]], dtype=np.float32)
    return names, values.reshape(len(names), NUM_KEYPOINTS, 2)  # (N, 136) -> (N, 68, 2)


def person_of(name: str) -> str:
    """The person in an image, from its file name: ``"Aaron_Eckhart_11.jpg" -> "Aaron_Eckhart"``."""
    return re.sub(r"_\d+$", "", Path(name).stem)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file by its content (whatever its extension) to (H, W, 3) uint8 RGB.

    Raises:
        ValueError: the file cannot be decoded as an image.
    """
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class FacialKeypointsDataset(Dataset):
    """One split of the facial keypoints data set.

    A sample is a dict ``{"image": (H, W, 3) uint8 RGB, "keypoints": (68, 2) float32, "name": str}``
    with keypoints in pixels of the image, x then y, before ``transform`` is applied to it.

    Decoded images are kept in memory after their first use (``cache=True``), so that only the
    first epoch pays for decoding; :meth:`preload` fills the cache up front with a progress bar.

    Args:
        root: the data folder; ``None`` looks it up (``$FKP_DATA_DIR``, then ``./data``).
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
        self.root = resolve_data_dir(root)
        self.split = split
        self.transform = transform
        table = csv_path(self.root, split)
        if not table.is_file():
            raise DataNotFoundError(f"{table} not found: {GET_DATA_HINT}")
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

        for index in tqdm(range(len(self)), desc=f"decoding {self.split}", disable=not progress):
            self.image(index)
        return self

    def persons(self) -> list[str]:
        """The person of each sample, in sample order (see :func:`person_of`)."""
        return [person_of(name) for name in self.names]


def person_disjoint_split(
    names: Sequence[str], val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices so that no person appears on both sides.

    Args:
        names: image file names; the person is the name before the trailing frame number.
        val_fraction: the share of *persons* put in the validation part.
        seed: seeds the choice of validation persons.

    Returns:
        Sorted train indices and sorted validation indices.
    """
    persons = np.array([person_of(name) for name in names])
    unique = np.unique(persons)
    rng = np.random.default_rng(seed)
    n_val = max(1, round(len(unique) * val_fraction))
    val_persons = set(rng.choice(unique, size=n_val, replace=False).tolist())
    is_val = np.array([person in val_persons for person in persons])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
