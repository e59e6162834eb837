"""Fetch one URL to a file, and leave no folder behind when that fails: the download mechanics
that the data set (:func:`fkp.download.download`) and the YuNet file
(:func:`fkp.detectors.yunet.download_yunet`) share.

Only urllib is used; every network failure is raised as a :class:`FetchError` with a one-line message
that names the URL.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tqdm.auto import tqdm

from fkp.utils import PROGRESS_MININTERVAL_S

TIMEOUT_S = 60.0
"""Seconds without an answer before a fetch gives up, by default."""
_CHUNK = 1 << 20


class FetchError(Exception):
    """The URL could not be read: no network, HTTP error, timeout, connection closed early."""


class FetchSizeError(FetchError):
    """The URL's answer does not have the expected size."""


def fetch(
    url: str,
    path: str | os.PathLike[str],
    size: int | None = None,
    progress: bool = False,
    timeout: float = TIMEOUT_S,
) -> None:
    """Download ``url`` to the file ``path`` (made or overwritten), checking its length.

    Args:
        url: any URL urllib opens (``https://``, ``http://``, ``file://``).
        path: the file to write; on failure it may hold part of the answer (the caller's temporary).
        size: the expected size in bytes, or None not to check it.
        progress: show a progress bar on stderr.
        timeout: seconds without an answer before giving up.

    Raises:
        FetchSizeError: the answer announces or has another size than ``size``.
        FetchError: the URL could not be read, or the connection closed before the announced length.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if size is not None and total is not None and total != size:
                raise FetchSizeError(f"{url} has {total:,} bytes, expected {size:,}")
            bar = tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc="downloading",
                disable=not progress,
                mininterval=PROGRESS_MININTERVAL_S,
            )
            with bar, open(path, "wb") as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        raise FetchError(f"{url}: {error}") from None
    except urllib.error.URLError as error:
        raise FetchError(f"{url}: {error.reason or error}") from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise FetchError(f"{url}: {str(error) or type(error).__name__}") from None
    got = Path(path).stat().st_size
    if total is not None and got != total:
        raise FetchError(f"{url}: connection closed after {got:,} of {total:,} bytes")
    if size is not None and got != size:
        raise FetchSizeError(f"{url} gave {got:,} bytes, expected {size:,}")


@contextlib.contextmanager
def removing_new_folders(folder: str | os.PathLike[str]) -> Iterator[None]:
    """On any failure or interruption in the ``with`` block, remove ``folder`` and those of its
    parents that did not exist on entry, deepest first, while they are empty; then re-raise.

    Args:
        folder: the folder the block makes (with its missing parents) and fills.
    """
    made = [each for each in (Path(folder), *Path(folder).parents) if not each.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for each in made:  # the folders this call made, if still empty
            try:
                each.rmdir()
            except OSError:
                break
        raise
