"""Output-path safety for every command that writes files: never lose a user's file.

The rules, checked before any work is done (so a long run never fails at its last step):

- an output that is, or resolves to, one of the run's inputs is refused (symbolic and hard links,
  ``./``, ``..`` and case-insensitive file systems included: two paths are the same file when
  :func:`os.path.samefile` says so): :class:`OutputConflictError`, exit code 2;
- a folder run (``fkp detect FOLDER``) never writes over a file it did not create in this run:
  an existing output is refused unless ``--overwrite`` is given (:func:`plan_folder_outputs`);
- an output whose folder is a file, is not writable, or whose name or path is too long for the
  file system is refused with one line naming it: :class:`OutputError`, exit code 1.

Writing itself goes through :func:`fkp.utils.atomic_write_bytes`, the package's one writer.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from fkp.utils import NAME_MAX

PATH_MAX = 4096
"""Longest path (bytes) accepted for an output, as on Linux."""


class OutputError(Exception):
    """An output path that cannot be written; the message names it (one line, exit code 1)."""


class OutputConflictError(OutputError):
    """An output that would replace an input or a file the run did not create (exit code 2)."""


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two existing paths are the same file (links, ``./`` and letter case resolved);
    False when either does not exist or cannot be examined."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def is_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an existing folder; False also when it cannot be examined (too long, ...)."""
    try:
        return Path(path).is_dir()
    except OSError:
        return False


def check_output(
    path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = (), what: str = "output"
) -> Path:
    """Check that a file can be written at ``path`` without replacing an input.

    Args:
        path: the file to write (it may exist: an explicit output file is replaced on request).
        inputs: the run's input files; ``path`` must be none of them.
        what: how to name the path in messages (``"-o"``, ``"--json"``, ...).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputConflictError: ``path`` is one of ``inputs``.
        OutputError: ``path`` is a folder, its folder is a file or not writable, or a name in it
            or the whole path is too long.
    """
    path = Path(path)
    for source in inputs:
        if same_file(path, source):
            raise OutputConflictError(f"{what} {path} is the input {source}: choose another output name")
    _check_lengths(path, what)
    if is_folder(path):
        raise OutputError(f"{what} {path} is a folder, not a file")
    check_folder(path.parent, what=f"{what} {path}: its folder")
    return path


def check_folder(folder: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Check that files can be created in ``folder`` (made if missing) before any work is done.

    Raises:
        OutputError: ``folder`` or a folder above it is a file, the nearest existing folder is
            not writable, or the path is too long.
    """
    folder = Path(folder)
    _check_lengths(folder, what)
    existing = Path(os.path.abspath(folder))
    try:
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise OutputError(f"{what} {folder}: {existing} is a file, not a folder")
    except OSError as error:
        raise OutputError(f"{what} {folder}: {error.strerror or error}") from None
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {folder}: cannot write in {existing} (permission denied)")
    return folder


def plan_folder_outputs(
    folder: str | os.PathLike[str], names: Sequence[str], inputs: Sequence[str | os.PathLike[str]], overwrite: bool
) -> list[Path]:
    """Output paths in ``folder`` for a folder run, one per name, none replacing what it must not.

    Two inputs that want the same name get ``NAME_2.EXT``, ``NAME_3.EXT``, ... so that no output
    of the run replaces another.

    Args:
        folder: the output folder (made later, when the first file is written).
        names: the wanted file name of each output, in input order.
        inputs: every input file of the run; an output that is one of them is always refused.
        overwrite: allow replacing files that exist in ``folder`` (not inputs).

    Returns:
        One path per name.

    Raises:
        OutputConflictError: an output is an input, or exists and ``overwrite`` is off.
        OutputError: as :func:`check_folder`, or a name is too long.
    """
    folder = check_folder(folder)
    taken: set[str] = set()
    paths: list[Path] = []
    for name in names:
        stem, suffix, n = Path(name).stem, Path(name).suffix, 2
        while name.lower() in taken:  # same file name in two input folders (any letter case)
            name, n = f"{stem}_{n}{suffix}", n + 1
        taken.add(name.lower())
        paths.append(check_output(folder / name, inputs))
    existing = [path for path in paths if path.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputConflictError(
            f"{existing[0]} exists{more}: pass --overwrite to replace, or choose another output folder"
        )
    return paths


def _check_lengths(path: Path, what: str) -> None:
    """Refuse a path longer than PATH_MAX or with a name longer than NAME_MAX (bytes)."""
    encoded = os.fsencode(os.path.abspath(path))
    if len(encoded) > PATH_MAX:
        raise OutputError(f"{what}: path too long ({len(encoded)} bytes, at most {PATH_MAX})")
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            shown = part[:40] + "..."
            raise OutputError(f"{what}: file name {shown} too long ({size} bytes, at most {NAME_MAX})")
