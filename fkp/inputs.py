"""What a run over many images reads: the image files that paths, folders, globs and list
files name (:func:`iter_inputs`, lazily, for a bulk run; :func:`list_images`, at once, with the
paths that name nothing).

``fkp detect`` and ``fkp align`` (:mod:`fkp.cli`) list their inputs here.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from fkp.images import IMAGE_SUFFIXES

GLOB_CHARACTERS = frozenset("*?[")


def iter_inputs(
    paths: Iterable[str], recursive: bool = False, list_file: str | os.PathLike[str] | None = None
) -> Iterator[str]:
    """The image files to process, lazily, in a stable order: what each path names.

    Args:
        paths: image files (any name: decoding decides), folders (their files with an image ending,
            sorted by name; with ``recursive``, also those of every sub-folder, depth first), and
            glob patterns (``photos/*.jpg``, ``**`` with ``recursive``) that name no existing file.
        recursive: walk sub-folders.
        list_file: a text file of further paths, one per line (blank lines and lines starting with
            ``#`` are skipped); each follows the same rules.

    Yields:
        Each image's name as it will be reported: the path as given, or joined to its folder.
        A path that names nothing is yielded as it is, so that its result says it is missing.
    """

    def lines() -> Iterator[str]:
        if list_file is None:
            return
        with open(list_file, encoding="utf-8") as handle:
            for line in handle:
                text = line.strip()
                if text and not text.startswith("#"):
                    yield text

    for text in _chain(paths, lines()):
        yield from _names(text, recursive)


def _chain(first: Iterable[str], second: Iterator[str]) -> Iterator[str]:
    yield from first
    yield from second


def _names(text: str, recursive: bool) -> Iterator[str]:
    path = Path(text)
    if path.is_dir():
        yield from _folder(path, recursive)
    elif not os.path.lexists(text) and GLOB_CHARACTERS & set(text):
        matches = sorted(glob.iglob(text, recursive=recursive))
        for match in matches:
            if Path(match).is_dir():
                yield from _folder(Path(match), recursive)
            else:
                yield match
        if not matches:
            yield text
    else:
        yield text


def _folder(folder: Path, recursive: bool) -> Iterator[str]:
    try:
        entries = _entries(folder)
    except OSError:
        yield str(folder)  # its result says why it cannot be listed
        return
    yield from _images_of(folder, entries)
    if recursive:
        for entry in entries:
            if entry.is_dir():
                yield from _folder(folder / entry.name, recursive)


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    return sorted(os.scandir(folder), key=lambda entry: entry.name)


def _images_of(folder: Path, entries: list[os.DirEntry[str]]) -> list[str]:
    """The names of the files among ``entries`` with an image ending, joined to ``folder``."""
    return [
        str(folder / entry.name)
        for entry in entries
        if entry.is_file() and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES
    ]


def list_images(paths: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The images that ``fkp detect`` (drawing) and ``fkp align`` process, listed at once, and the
    paths that name none.

    Args:
        paths: image files (any name: decoding decides) and folders (their files with an image
            ending, sorted by name, not those of sub-folders). No globs: the shell expands them.

    Returns:
        (names, errors): each image's name, the path as given or joined to its folder; and
        ``(path, reason)`` for each path that is missing (``"no such file or folder"``) or cannot
        be looked at (the system's reason: a name too long, a folder that cannot be listed).
    """
    names: list[str] = []
    errors: list[tuple[str, str]] = []
    for text in paths:
        path = Path(text)
        try:
            if path.is_dir():
                names.extend(_images_of(path, _entries(path)))
            elif path.exists():
                names.append(text)
            else:
                errors.append((text, "no such file or folder"))
        except OSError as error:  # a name or path too long, a folder that cannot be listed
            errors.append((text, error.strerror or str(error)))
    return names, errors
