"""The one output rule of every command that writes files: never lose a user's file.

Every output of every command (a drawing, a folder of drawings, a JSON report, an ONNX file, a
video) is planned with :func:`plan_output` (or :func:`plan_folder_outputs`) *before* any work is
done, so that a long run never fails at its last step, and written through the :class:`Output` it
returns. The rule:

- an existing file is replaced only with ``--overwrite``; without it the run is refused (exit 2,
  one line). An output that is, or resolves to, one of the run's inputs is refused even with
  ``--overwrite`` (symbolic and hard links, ``./``, ``..`` and case-insensitive file systems
  included: :func:`os.path.samefile`);
- two outputs of one run on one path are refused (``-o same.png --json same.png``):
  :func:`check_distinct`;
- ``-`` (and ``/dev/stdout``) means standard output; an existing character device (``/dev/null``)
  or FIFO is written through, never replaced; a block device, socket or folder is refused (exit 2);
  a symbolic link writes its target (which follows the same rule), the link stays;
- an output name ending in ``/`` is a folder (the default file name goes in it);
- the name is claimed create-exclusively when the file is complete
  (:func:`fkp.utils.atomic_output` with ``replace=False``): a concurrent run that made the same name
  meanwhile is reported in one line, and its file is kept;
- temporaries that a killed run left in an output folder (``.NAME.XXXXXXXX.tmp.EXT``) are removed
  when a later run plans an output there (:func:`fkp.utils.clear_stale_temporaries`);
- an output whose folder is a file, is not writable, or whose name or path is too long for the
  file system is refused with one line naming it: :class:`OutputError`, exit code 1.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from fkp.utils import (
    NAME_MAX,
    NotAFileError,
    atomic_output,
    clear_stale_temporaries,
    describe_file_type,
)

PATH_MAX = 4096
"""Longest path (bytes) accepted for an output, as on Linux."""
STDOUT = "-"
"""The output name that means standard output."""
STDOUT_NAMES = frozenset({STDOUT, "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})
"""Output names written to this process's standard output, whatever it is connected to."""


class OutputError(Exception):
    """An output path that cannot be written; the message names it (one line, exit code 1)."""


class OutputConflictError(OutputError):
    """An output that would replace an input, an existing file without ``--overwrite``, another
    output of the run, or something that is not a file (exit code 2)."""


@dataclass(frozen=True)
class Output:
    """One planned output of a run: where its bytes go.

    Attributes:
        shown: the name as the user gave it (for messages).
        path: the regular file to create or replace (a link's target); ``None`` for standard output.
        device: True when ``path`` is a character device or FIFO, written through in place.
        overwrite: an existing regular file may be replaced.
    """

    shown: str
    path: Path | None
    device: bool = False
    overwrite: bool = False

    @property
    def to_stdout(self) -> bool:
        """Whether the bytes go to standard output."""
        return self.path is None

    def __str__(self) -> str:
        return "standard output" if self.to_stdout else self.shown

    def write_bytes(self, payload: bytes) -> None:
        """Write ``payload``: atomically to a file, or through to standard output, a device or a FIFO.

        Raises:
            OutputConflictError: the name was made by another run since it was planned (no
                ``--overwrite``), or is no longer a file.
            OutputError: the write failed (disk full, FIFO without a reader, ...).
        """
        if self.path is None or self.device:
            self._write_through(payload)
            return
        with self.staged() as tmp:
            tmp.write_bytes(payload)

    @contextlib.contextmanager
    def staged(self) -> Iterator[Path]:
        """A temporary file with the output's suffix, for writers that need a path (a video, ...),
        which becomes the output when the ``with`` block succeeds (and is removed otherwise).

        Raises:
            as :meth:`write_bytes`.
        """
        if self.path is None or self.device:
            suffix = Path(self.shown).suffix if self.path is None else self.path.suffix
            handle, name = tempfile.mkstemp(prefix="fkp-", suffix=suffix)
            os.close(handle)
            try:
                yield Path(name)
                self._write_through(Path(name).read_bytes())
            finally:
                Path(name).unlink(missing_ok=True)
            return
        try:
            with atomic_output(self.path, replace=self.overwrite) as tmp:
                yield tmp
        except FileExistsError:
            raise OutputConflictError(
                f"{self.shown} was made by another run meanwhile: kept it (pass --overwrite to replace)"
            ) from None
        except NotAFileError as error:
            raise OutputConflictError(f"{self.shown} {error.strerror}: refused") from None
        except OSError as error:
            raise OutputError(f"{self.shown}: cannot write ({error.strerror or error})") from None

    def _write_through(self, payload: bytes) -> None:
        if self.path is None:
            sys.stdout.flush()
            stream = getattr(sys.stdout, "buffer", None)
            if stream is None:  # a text-only stand-in (tests): the bytes as Latin-1 text
                sys.stdout.write(payload.decode("latin-1"))
            else:
                stream.write(payload)
            sys.stdout.flush()
            return
        try:
            mode = os.lstat(self.path).st_mode
            if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
                raise OutputConflictError(f"{self.shown} is now {describe_file_type(mode)}: refused")
            # non-blocking open: a FIFO without a reader is an error, not a hang
            handle = os.open(self.path, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0))
        except OutputConflictError:
            raise
        except OSError as error:
            reason = "a FIFO with no reader" if error.errno == 6 else (error.strerror or str(error))  # ENXIO
            raise OutputError(f"{self.shown}: cannot write ({reason})") from None
        try:
            if hasattr(os, "set_blocking"):
                os.set_blocking(handle, True)
            view = memoryview(payload)
            while view:
                view = view[os.write(handle, view) :]
        except OSError as error:
            raise OutputError(f"{self.shown}: cannot write ({error.strerror or error})") from None
        finally:
            os.close(handle)


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


def names_folder(text: str) -> bool:
    """Whether an output name means a folder: an existing one, or a name ending in ``/``."""
    return text.endswith(("/", os.sep)) or (text not in STDOUT_NAMES and is_folder(text))


def plan_output(
    path: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    what: str = "output",
    overwrite: bool = False,
) -> Output:
    """Check an output against the rule (module docstring) before any work, and say where it goes.

    Args:
        path: the output as named by the user (``-`` for standard output).
        inputs: the run's input files (``None`` entries are skipped); the output must be none of them.
        what: how to name the output in messages (``"-o"``, ``"--json"``, ...).
        overwrite: an existing regular file may be replaced (``--overwrite``).

    Returns:
        The planned :class:`Output`.

    Raises:
        OutputConflictError: the output is an input, exists (without ``overwrite``), is a
            folder (or a name ending in ``/``), a block device or a socket (exit code 2).
        OutputError: its folder is a file or not writable, or a name in it or the whole path is
            too long (exit code 1).
    """
    shown = os.fspath(path)
    if shown in STDOUT_NAMES:
        return Output(shown, None)
    if shown.endswith(("/", os.sep)):
        raise OutputConflictError(f"{what} {shown} names a folder (it ends in /): give a file name")
    target = Path(shown)
    for source in inputs:
        if source is not None and same_file(target, source):
            raise OutputConflictError(f"{what} {shown} is the input {source}: choose another output name")
    _check_lengths(target, what)
    try:
        if target.is_symlink():
            target = Path(os.path.realpath(target))  # the link's target is written; the link stays
            _check_lengths(target, what)
        mode = os.lstat(target).st_mode if target.exists() else None
    except OSError as error:
        raise OutputError(f"{what} {shown}: {error.strerror or error}") from None
    if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        return Output(shown, target, device=True)
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputConflictError(f"{what} {shown} is {describe_file_type(mode)}, not a file: choose a file name")
    if mode is not None and not overwrite:
        raise OutputConflictError(f"{what} {shown} exists: pass --overwrite to replace it, or choose another name")
    check_folder(target.parent, what=f"{what} {shown}: its folder")
    return Output(shown, target, overwrite=overwrite)


def check_distinct(outputs: Sequence[Output | None]) -> None:
    """Refuse two outputs of one run that would land on one place (one file, or standard output).

    Raises:
        OutputConflictError: naming both outputs.
    """
    seen: dict[str, Output] = {}
    for output in outputs:
        if output is None:
            continue
        key = "-" if output.path is None else os.path.normcase(os.path.realpath(output.path))
        if key in seen:
            raise OutputConflictError(f"two outputs on one place: {seen[key]} and {output}: give each its own name")
        seen[key] = output


def check_folder(folder: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Check that files can be created in ``folder`` (made if missing) before any work is done;
    stale temporaries of killed runs in it are removed.

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
    if existing == Path(os.path.abspath(folder)):
        clear_stale_temporaries(existing)
    return folder


def plan_folder_outputs(
    folder: str | os.PathLike[str],
    names: Sequence[str],
    inputs: Sequence[str | os.PathLike[str] | None],
    overwrite: bool,
) -> list[Output]:
    """Outputs in ``folder`` for a folder run, one per name, each following :func:`plan_output`.

    Two inputs that want the same name get ``NAME_2.EXT``, ``NAME_3.EXT``, ... so that no output
    of the run replaces another.

    Args:
        folder: the output folder (made when the first file is written).
        names: the wanted file name of each output, in input order.
        inputs: every input file of the run; an output that is one of them is always refused.
        overwrite: allow replacing files that exist in ``folder`` (not inputs).

    Returns:
        One :class:`Output` per name.

    Raises:
        OutputConflictError: an output is an input, or exists and ``overwrite`` is off (the
            message counts them all).
        OutputError: as :func:`check_folder`, or a name is too long.
    """
    folder = check_folder(folder)
    taken: set[str] = set()
    wanted: list[Path] = []
    for name in names:
        stem, suffix, n = Path(name).stem, Path(name).suffix, 2
        while name.lower() in taken:  # same file name in two input folders (any letter case)
            name, n = f"{stem}_{n}{suffix}", n + 1
        taken.add(name.lower())
        wanted.append(folder / name)
    existing = [path for path in wanted if os.path.lexists(path) and not any(same_file(path, i) for i in inputs if i)]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputConflictError(
            f"{existing[0]} exists{more}: pass --overwrite to replace, or choose another output folder"
        )
    return [plan_output(path, inputs, overwrite=overwrite) for path in wanted]


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
