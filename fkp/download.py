"""Download the Udacity facial keypoints data set (checked by :mod:`fkp.data_check`).

:func:`download` fetches the upstream archive (falling back to the GitHub copy) with
:func:`fkp.fetch.fetch`, extracts the data folder into a temporary folder next to the destination,
verifies it there (:func:`fkp.data_check.verify_folder`) and only then renames it into place, so
an interrupted or failed run leaves neither half a data set nor temporary files. Extraction stops
at :data:`MAX_EXTRACTED_BYTES`; the data folder gets the usual mode (umask), and a failed download
removes the folders it made. Every failure is raised as a :class:`fkp.data_check.DataError` subclass.
"""

from __future__ import annotations

import os
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from fkp.data_check import (
    CSV_NAMES,
    SPLITS,
    DataError,
    DataVerificationError,
    VerifyReport,
    holds_data_set,
    verify,
    verify_folder,
)
from fkp.fetch import FetchError, FetchSizeError, fetch, removing_new_folders
from fkp.utils import PROGRESS_MININTERVAL_S, resolve_data_dir, staged_folder

PRIMARY_URL = (
    "https://s3.amazonaws.com/video.udacity-data.com/topher/2018/May/5aea1b91_train-test-data/train-test-data.zip"
)
"""Udacity's archive: the CSV files and the training/ and test/ folders at its root."""
PRIMARY_SIZE = 338_613_624
"""Size in bytes of the archive at :data:`PRIMARY_URL`."""
FALLBACK_URL = "https://github.com/udacity/P1_Facial_Keypoints/archive/refs/heads/master.zip"
"""The GitHub repository's archive; the same files are under ``P1_Facial_Keypoints-master/data/``."""

MAX_EXTRACTED_BYTES = 600 * 2**20
"""Most bytes extracted from an archive: the data folder is about 340 MB (its PNG images do not
compress, so it is the size of the 339 MB archive); anything much larger is not the data set."""
_CHUNK = 1 << 20


class DownloadError(DataError):
    """No source could be reached or read (no network, HTTP error, timeout, connection closed)."""


class DestinationError(DataError):
    """The destination is unusable: a file, or a non-empty folder that holds no data set."""


class SizeMismatchError(DataVerificationError):
    """The downloaded archive does not have the expected size."""


class BadArchiveError(DataVerificationError):
    """The download is not a zip archive, or holds no data folder."""


@dataclass(frozen=True)
class Source:
    """A place to download the data set archive from.

    Args:
        url: any URL urllib opens (``https://``, ``http://``, ``file://``).
        size: the archive's expected size in bytes, or ``None`` not to check it.
    """

    url: str
    size: int | None = None


def default_sources() -> tuple[Source, ...]:
    """The upstream archive (size-checked), then the GitHub fallback, from the module constants."""
    return (Source(PRIMARY_URL, PRIMARY_SIZE), Source(FALLBACK_URL))


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
    candidates: Sequence[Source], dest: Path, checksums: Mapping[str, str] | None, progress: bool
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


def _download_into(source: Source, staging: Path, checksums: Mapping[str, str] | None, progress: bool) -> VerifyReport:
    """Fetch ``source`` next to ``staging``, extract its data folder into ``staging`` and verify it."""
    handle, archive_name = tempfile.mkstemp(prefix=f"{staging.name}.", suffix=".zip", dir=staging.parent)
    os.close(handle)
    archive = Path(archive_name)
    try:
        _fetch(source, archive, progress)
        _extract(archive, staging, source.url, progress)
    finally:
        archive.unlink(missing_ok=True)
    return verify_folder(staging, checksums, progress, label=f"the archive from {source.url}")


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
