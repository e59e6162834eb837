"""Download the Udacity facial keypoints data set and verify a copy of it.

:func:`download` fetches the upstream archive (falling back to the GitHub copy), extracts the data
folder into a temporary folder next to the destination, verifies it there and only then renames it
into place, so an interrupted or failed run leaves neither half a data set nor temporary files.
:func:`verify` checks a copy: the CSV checksums, that every labelled image is present and decodes,
and that its decoded pixels are upstream's (:data:`PIXEL_CHECKSUMS_FILE`, shipped with the package),
so any changed pixel is named. Extraction stops at :data:`MAX_EXTRACTED_BYTES`; the data folder
gets the usual mode (umask), and a failed download removes the folders it made.

Layout produced (as upstream)::

    DEST/training_frames_keypoints.csv   DEST/training/*.jpg   (3462 labelled images)
    DEST/test_frames_keypoints.csv       DEST/test/*.jpg       (770 labelled, 1538 unlabelled)

Images are decoded by content: upstream's are RGBA PNGs named ``*.jpg``; other copies may hold WebP.
Pixel checksums are of the decoded RGB pixels, so any lossless copy matches; they were computed with
``python -c "from fkp.download import write_pixel_checksums as w; w('PATH/TO/DATA')"``.
The network is :mod:`fkp.fetch`'s (urllib); every failure is raised as a :class:`DataError` subclass.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from fkp.fetch import FetchError, FetchSizeError, fetch, removing_new_folders
from fkp.images import IMAGE_SUFFIXES, ImageReadError, load_image
from fkp.keypoints_csv import KeypointsCSVError, read_keypoints_csv
from fkp.model_file import sha256_of
from fkp.utils import GET_DATA_HINT, PROGRESS_MININTERVAL_S, atomic_write_bytes, resolve_data_dir, staged_folder

PRIMARY_URL = (
    "https://s3.amazonaws.com/video.udacity-data.com/topher/2018/May/5aea1b91_train-test-data/train-test-data.zip"
)
"""Udacity's archive: the CSV files and the training/ and test/ folders at its root."""
PRIMARY_SIZE = 338_613_624
"""Size in bytes of the archive at :data:`PRIMARY_URL`."""
FALLBACK_URL = "https://github.com/udacity/P1_Facial_Keypoints/archive/refs/heads/master.zip"
"""The GitHub repository's archive; the same files are under ``P1_Facial_Keypoints-master/data/``."""

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
MAX_EXTRACTED_BYTES = 600 * 2**20
"""Most bytes extracted from an archive: the data folder is about 340 MB (its PNG images do not
compress, so it is the size of the 339 MB archive); anything much larger is not the data set."""
_CHUNK = 1 << 20


class DataError(Exception):
    """Base class: the data set could not be downloaded, placed or verified."""


class DownloadError(DataError):
    """No source could be reached or read (no network, HTTP error, timeout, connection closed)."""


class DestinationError(DataError):
    """The destination is unusable: a file, or a non-empty folder that holds no data set."""


class DataVerificationError(DataError):
    """A copy of the data set (or a downloaded archive) is not the expected one."""


class SizeMismatchError(DataVerificationError):
    """The downloaded archive does not have the expected size."""


class BadArchiveError(DataVerificationError):
    """The download is not a zip archive, or holds no data folder."""


class MissingDataError(DataVerificationError):
    """A CSV file or a split folder is missing: not the data folder."""


class ChecksumMismatchError(DataVerificationError):
    """A CSV file does not have the expected sha256 checksum."""


class BadCSVError(DataVerificationError):
    """A CSV row does not hold a file name and one (x, y) pair per keypoint."""


class ImageError(DataVerificationError):
    """An image listed in a CSV file is missing, cannot be decoded, or has other pixels than upstream's."""


@dataclass(frozen=True)
class Source:
    """A place to download the data set archive from.

    Args:
        url: any URL urllib opens (``https://``, ``http://``, ``file://``).
        size: the archive's expected size in bytes, or ``None`` not to check it.
    """

    url: str
    size: int | None = None


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


def default_sources() -> tuple[Source, ...]:
    """The upstream archive (size-checked), then the GitHub fallback, from the module constants."""
    return (Source(PRIMARY_URL, PRIMARY_SIZE), Source(FALLBACK_URL))


def holds_data_set(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` holds at least one of the keypoints CSV files (content is not checked)."""
    return any((Path(root) / name).is_file() for name in CSV_NAMES.values())


def check_destination(dest: Path) -> bool:
    """Whether the folder ``dest`` may receive a data set, and whether it already holds one.

    Returns:
        ``True`` if ``dest`` holds a data set (see :func:`holds_data_set`), ``False`` if it is
        absent or an empty folder.

    Raises:
        DestinationError: ``dest`` is a file, or a non-empty folder that holds no data set.
    """
    if not dest.exists():
        return False
    if not dest.is_dir():
        raise DestinationError(f"{dest} is a file, not a folder")
    if holds_data_set(dest):
        return True
    if any(dest.iterdir()):
        raise DestinationError(f"{dest} is not empty and holds no data set: choose a new or empty folder")
    return False


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
    return _verify(root, CSV_SHA256 if checksums is None else checksums, progress, label=str(root), pixels=pixels)


def _verify(
    root: Path, checksums: Mapping[str, str], progress: bool, label: str, pixels: Mapping[str, str] | None = None
) -> VerifyReport:
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


def download(
    dest: str | os.PathLike[str] | None = None,
    sources: Sequence[Source | str] | None = None,
    checksums: Mapping[str, str] | None = None,
    progress: bool = True,
    force: bool = False,
) -> VerifyReport:
    """Download, verify and place the data set in ``dest``; sources are tried in order.

    The archive is written to a temporary file in ``dest``'s parent folder, extracted into a
    temporary folder there, verified, and renamed to ``dest``: on any failure or interruption
    both are removed and ``dest`` is left as it was. The folder that holds
    ``training_frames_keypoints.csv`` inside the archive is the data folder, wherever it is.

    If ``dest`` already holds a data set it is verified and returned without downloading,
    unless ``force`` is set, in which case a fresh copy replaces it once verified.

    Args:
        dest: the data folder to create; ``None`` looks it up (``$FKP_DATA_DIR``, then ``./data``).
            It may be absent, an empty folder, or hold a data set (see ``force``).
        sources: archives to try in order (a plain string is a URL with no size check);
            ``None`` for :func:`default_sources` (upstream, then GitHub).
        checksums: CSV file name -> sha256; ``None`` for upstream's, ``{}`` to skip.
        progress: show progress bars and a note when falling back to the next source (stderr).
        force: replace a data set already in ``dest``.

    Returns:
        The verification report of the placed data set (``report.root`` is ``dest``, made absolute);
        ``report.source`` is the URL used, ``None`` if an existing data set was only verified.

    Raises:
        DownloadError: no source could be downloaded (each source's reason is in the message).
        DataVerificationError: an archive was downloaded but is not the expected data set.
        DestinationError: ``dest`` is a file, or a non-empty folder that holds no data set.
    """
    dest = Path(os.path.abspath(resolve_data_dir(dest)))
    checksums = CSV_SHA256 if checksums is None else checksums
    if check_destination(dest) and not force:
        try:
            return verify(dest, checksums, progress)
        except DataVerificationError as error:
            hint = "download it again with force (fkp data download --force)"
            raise type(error)(f"{error}; {hint}") from None
    sources = default_sources() if sources is None else sources
    candidates = [Source(s) if isinstance(s, str) else s for s in sources]
    if not candidates:
        raise ValueError("no source to download the data set from")
    with removing_new_folders(dest.parent):
        dest.parent.mkdir(parents=True, exist_ok=True)
        return _download_first(candidates, dest, checksums, progress)


def _download_first(
    candidates: Sequence[Source], dest: Path, checksums: Mapping[str, str], progress: bool
) -> VerifyReport:
    """Try each source in turn; place the first verified copy at ``dest``."""
    failures: list[DataError] = []
    for index, source in enumerate(candidates):
        try:
            with staged_folder(dest) as staging:
                report = _download_into(source, staging, checksums, progress)
            return replace(report, root=dest, source=source.url)
        except DataError as error:
            failures.append(error)
            if progress and index + 1 < len(candidates):
                print(f"{error}; trying {candidates[index + 1].url}", file=sys.stderr)
    if len(failures) == 1:
        raise failures[0]
    kind = next((type(f) for f in failures if not isinstance(f, DownloadError)), DownloadError)
    raise kind(f"could not get the data set from any source: {'; '.join(map(str, failures))}")


def _download_into(source: Source, staging: Path, checksums: Mapping[str, str], progress: bool) -> VerifyReport:
    """Fetch ``source`` next to ``staging``, extract its data folder into ``staging`` and verify it."""
    handle, archive_name = tempfile.mkstemp(prefix=f"{staging.name}.", suffix=".zip", dir=staging.parent)
    os.close(handle)
    archive = Path(archive_name)
    try:
        _fetch(source, archive, progress)
        _extract(archive, staging, source.url, progress)
    finally:
        archive.unlink(missing_ok=True)
    return _verify(staging, checksums, progress, label=f"the archive from {source.url}")


def _fetch(source: Source, archive: Path, progress: bool) -> None:
    """Download ``source`` to the file ``archive`` (:func:`fkp.fetch.fetch`), as this module's errors."""
    try:
        fetch(source.url, archive, source.size, progress)
    except FetchSizeError as error:
        raise SizeMismatchError(str(error)) from None
    except FetchError as error:
        raise DownloadError(str(error)) from None


def _extract(archive: Path, target: Path, url: str, progress: bool) -> None:
    """Extract the data folder of ``archive`` (CSV files, training/ and test/) into ``target``."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [info for info in zipped.infolist() if not info.is_dir()]
            prefix = _data_prefix([info.filename for info in members], url)
            budget = MAX_EXTRACTED_BYTES
            for info in tqdm(
                members, unit="file", desc="extracting", disable=not progress, mininterval=PROGRESS_MININTERVAL_S
            ):
                parts = _data_member(info.filename, prefix)
                if parts is None:
                    continue
                path = target.joinpath(*parts)
                path.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as source, open(path, "wb") as out:
                    while chunk := source.read(min(_CHUNK, budget + 1)):  # sizes in the zip may lie
                        budget -= len(chunk)
                        if budget < 0:
                            raise BadArchiveError(
                                f"the archive from {url} unpacks to more than {MAX_EXTRACTED_BYTES // 2**20} MB: "
                                "not the data set"
                            )
                        out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise BadArchiveError(f"the archive from {url} is damaged or not a zip file ({error})") from None


def _data_prefix(names: list[str], url: str) -> str:
    """The folder inside the archive (``""`` or ``"a/b/"``) that holds the training CSV, shallowest first."""
    csv_name = CSV_NAMES["training"]
    found = [n for n in names if n.split("/")[-1] == csv_name and "__MACOSX" not in n.split("/")]
    if not found:
        raise BadArchiveError(f"the archive from {url} holds no {csv_name}")
    return min(found, key=lambda n: n.count("/"))[: -len(csv_name)]


def _data_member(name: str, prefix: str) -> list[str] | None:
    """Path parts under the data folder of an archive member to extract, or ``None`` to skip it."""
    if not name.startswith(prefix):
        return None
    parts = name[len(prefix) :].split("/")
    if any(part in ("", ".", "..") or part.startswith(".") or "\\" in part for part in parts):
        return None  # unsafe paths and hidden files (.DS_Store, AppleDouble ._*)
    if len(parts) == 1:
        return parts if parts[0] in CSV_NAMES.values() else None
    return parts if parts[0] in SPLITS else None
