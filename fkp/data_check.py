"""The Udacity facial keypoints data set's files, and the check of a copy of it.

:func:`verify` checks a copy: the CSV checksums, that every labelled image is present and decodes,
and that its decoded pixels are upstream's (:data:`PIXEL_CHECKSUMS_FILE`, shipped with the package),
so any changed pixel is named. :func:`fkp.download.download` verifies what it fetched here before
placing it. Every failure is raised as a :class:`DataError` subclass.

Layout (as upstream)::

    DEST/training_frames_keypoints.csv   DEST/training/*.jpg   (3462 labelled images)
    DEST/test_frames_keypoints.csv       DEST/test/*.jpg       (770 labelled, 1538 unlabelled)

Images are decoded by content: upstream's are RGBA PNGs named ``*.jpg``; other copies may hold WebP.
Pixel checksums are of the decoded RGB pixels, so any lossless copy matches; they were computed with
``python -c "from fkp.data_check import write_pixel_checksums as w; w('PATH/TO/DATA')"``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from fkp.images import IMAGE_SUFFIXES, ImageReadError, load_image
from fkp.keypoints_csv import KeypointsCSVError, read_keypoints_csv
from fkp.model_file import sha256_of
from fkp.utils import GET_DATA_HINT, PROGRESS_MININTERVAL_S, atomic_write_bytes, resolve_data_dir

SPLITS = ("training", "test")
CSV_NAMES = {split: f"{split}_frames_keypoints.csv" for split in SPLITS}
"""Split -> its keypoints CSV file name, in the data folder."""
CSV_SHA256 = {
    "training_frames_keypoints.csv": "9f3d1213429893d4955e2789076f6ce11e297253fed86337cffb6ca85bd61ec8",
    "test_frames_keypoints.csv": "348e5e1a5906001f64d3da627e4f61dc3de90771d6d92f5d93628029b3c85e65",
}
"""CSV file name -> sha256 of the upstream file (which fixes the labelled image counts 3462 and 770)."""
PIXEL_CHECKSUMS_FILE = Path(__file__).with_name("udacity_pixels.json.gz")
"""Shipped ``{"split/name": digest}`` for every labelled image, digest as :func:`pixel_digest` gives it."""


class DataError(Exception):
    """Base class: the data set could not be downloaded, placed or verified."""


class DataVerificationError(DataError):
    """A copy of the data set (or a downloaded archive) is not the expected one."""


class MissingDataError(DataVerificationError):
    """A CSV file or a split folder is missing: not the data folder."""


class ChecksumMismatchError(DataVerificationError):
    """A CSV file does not have the expected sha256 checksum."""


class BadCSVError(DataVerificationError):
    """A CSV row does not hold a file name and one (x, y) pair per keypoint."""


class ImageError(DataVerificationError):
    """An image listed in a CSV file is missing, cannot be decoded, or has other pixels than upstream's."""


@dataclass(frozen=True)
class VerifyReport:
    """The result of a successful verification.

    Attributes:
        root: the data folder.
        counts: split -> number of labelled images (CSV rows), every one present and decodable.
        unlabelled: split -> number of other image files in the split folder (upstream test/ has
            1538); files that are not images (by their name) are not counted.
        source: the URL the data set was just downloaded from; ``None`` when it was only verified.
    """

    root: Path
    counts: dict[str, int]
    unlabelled: dict[str, int] = field(default_factory=dict)
    source: str | None = None

    def __str__(self) -> str:
        text = ", ".join(f"{split}: {count} images OK" for split, count in self.counts.items())
        extra = [f"{count} unlabelled {split} images" for split, count in self.unlabelled.items() if count]
        return f"{text} (+{', '.join(extra)})" if extra else text


def holds_data_set(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` holds at least one of the keypoints CSV files (content is not checked)."""
    return any((Path(root) / name).is_file() for name in CSV_NAMES.values())


def pixel_digest(path: str | os.PathLike[str]) -> str:
    """A checksum of an image's decoded pixels, whatever its file format: the first 32 hex digits
    (128 bits) of the sha256 of ``b"HxW:"`` followed by its (H, W, 3) uint8 RGB bytes (C order).

    Raises:
        ImageReadError: the file cannot be decoded.
    """
    rgb = load_image(path)
    digest = hashlib.sha256(f"{rgb.shape[0]}x{rgb.shape[1]}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()[:32]


def shipped_pixel_checksums() -> dict[str, str]:
    """``{"split/name": pixel digest}`` of upstream's labelled images (shipped with the package)."""
    with gzip.open(PIXEL_CHECKSUMS_FILE, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def write_pixel_checksums(root: str | os.PathLike[str], path: str | os.PathLike[str] = PIXEL_CHECKSUMS_FILE) -> int:
    """Compute the pixel digest of every labelled image of a verified copy and write them, gzip'd
    JSON sorted by name, to ``path``; returns how many were written."""
    root = Path(root)
    verify(root, progress=False, pixel_checksums={})
    table = {
        f"{split}/{name}": pixel_digest(root / split / name)
        for split, csv_name in CSV_NAMES.items()
        for name in _read_names(root / csv_name, csv_name)
    }
    payload = json.dumps(dict(sorted(table.items())), separators=(",", ":")).encode()
    atomic_write_bytes(path, gzip.compress(payload, mtime=0))
    return len(table)


def verify(
    root: str | os.PathLike[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    progress: bool = True,
    pixel_checksums: Mapping[str, str] | None = None,
) -> VerifyReport:
    """Check a copy of the data set: both CSV files, their checksums, and every labelled image.

    Args:
        root: the data folder; ``None`` looks it up (``$FKP_DATA_DIR``, then ``./data``).
        checksums: CSV file name -> expected sha256; ``None`` for upstream's (:data:`CSV_SHA256`),
            ``{}`` to skip the check.
        progress: show a progress bar (on stderr) while decoding the images.
        pixel_checksums: ``"split/name"`` -> expected :func:`pixel_digest`; ``None`` for the
            shipped ones (:func:`shipped_pixel_checksums`), ``{}`` to check only that images decode.
            Images with no entry are only decoded.

    Returns:
        The counts of labelled (and unlabelled) images per split.

    Raises:
        DataVerificationError: a subclass naming the file at fault (missing CSV or folder,
            checksum mismatch, malformed row, missing or undecodable image).
    """
    root = resolve_data_dir(root)
    pixels = shipped_pixel_checksums() if pixel_checksums is None else pixel_checksums
    return verify_folder(root, CSV_SHA256 if checksums is None else checksums, progress, label=str(root), pixels=pixels)


def verify_folder(
    root: Path,
    checksums: Mapping[str, str] | None,
    progress: bool,
    label: str,
    pixels: Mapping[str, str] | None = None,
) -> VerifyReport:
    """:func:`verify` of the folder ``root``, its errors naming it as ``label`` (a staged download
    is named by its source); ``checksums`` and ``pixels``: None for upstream's."""
    checksums = CSV_SHA256 if checksums is None else checksums
    pixels = shipped_pixel_checksums() if pixels is None else pixels
    if root.exists() and not root.is_dir():
        raise MissingDataError(f"{label} is a file, not a folder: give the data folder ({GET_DATA_HINT})")
    if not root.is_dir():
        raise MissingDataError(f"{label} does not exist: {GET_DATA_HINT}")
    names: dict[str, list[str]] = {}
    for split, csv_name in CSV_NAMES.items():
        table = root / csv_name
        if not table.is_file():
            raise MissingDataError(f"{label} holds no {csv_name}: is it the data folder? {GET_DATA_HINT}")
        expected = checksums.get(csv_name)
        if expected is not None and (actual := sha256_of(table)) != expected:
            raise ChecksumMismatchError(
                f"{label}: {csv_name} has sha256 {actual}, expected {expected} (damaged, or not the upstream file)"
            )
        if not (root / split).is_dir():
            raise MissingDataError(f"{label} holds no {split}/ folder")
        names[split] = _read_names(table, f"{label}: {csv_name}")

    with tqdm(
        total=sum(map(len, names.values())),
        unit="img",
        desc="verifying",
        disable=not progress,
        mininterval=PROGRESS_MININTERVAL_S,
    ) as bar:
        damaged: list[ImageError] = []
        for split, split_names in names.items():
            for name in split_names:
                try:
                    _check_image(root / split / name, f"{split}/{name}", pixels.get(f"{split}/{name}"))
                except ImageError as error:
                    damaged.append(error)
                bar.update()
    if len(damaged) == 1:
        raise ImageError(f"{label}: {damaged[0]}")
    if damaged:
        raise ImageError(f"{label}: {len(damaged)} damaged images: {'; '.join(map(str, damaged))}")
    unlabelled = {split: _count_other_images(root / split, set(split_names)) for split, split_names in names.items()}
    return VerifyReport(root, {split: len(split_names) for split, split_names in names.items()}, unlabelled)


def _read_names(table: Path, label: str) -> list[str]:
    """Image names of a keypoints CSV, checking each row holds a name and numeric (x, y) pairs."""
    try:
        return read_keypoints_csv(table)[0]
    except KeypointsCSVError as error:
        raise BadCSVError(f"{label} {error}") from None


def _count_other_images(folder: Path, labelled: set[str]) -> int:
    """Image files (by name) in ``folder`` that no CSV row names; hidden and other files are not counted."""
    return sum(
        1
        for entry in os.scandir(folder)
        if entry.is_file()
        and entry.name not in labelled
        and not entry.name.startswith(".")
        and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES
    )


def _check_image(path: Path, label: str, expected: str | None = None) -> None:
    """Decode an image by its content (whatever its extension) and compare its pixel digest with
    ``expected`` (if given); raise :class:`ImageError` if it is missing, undecodable or changed."""
    if not path.is_file():
        raise ImageError(f"{label} is missing")
    try:
        digest = pixel_digest(path)
    except ImageReadError:
        raise ImageError(f"{label} cannot be decoded as an image") from None
    if expected is not None and digest != expected:
        raise ImageError(f"{label} has other pixels than upstream's (damaged or edited)")
