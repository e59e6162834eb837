"""Small shared helpers: seeding, the smoke switch, the data-folder lookup, and the one atomic writer (files and folders)."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import random
import re
import shutil
import stat
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: stale temporaries go by age alone
    fcntl = None  # type: ignore[assignment]

DATA_DIR_ENV = "FKP_DATA_DIR"
"""Environment variable naming the data folder (second in the lookup order)."""
W300_DIR_ENV = "FKP_300W_DIR"
"""Environment variable naming the 300-W folder (in the layout ``fkp data prepare-300w`` writes)."""
DEFAULT_300W_DIR = Path("data") / "faces-300w"
GET_300W_HINT = (
    "get 300-W from https://ibug.doc.ic.ac.uk/resources/300-W/ (research use only), then run "
    "fkp data prepare-300w SRC --dir data/faces-300w (or set FKP_300W_DIR to a prepared copy)"
)
DEFAULT_DATA_DIR = Path("data")
GET_DATA_HINT = "get the data set with: fkp data download (or set FKP_DATA_DIR to a copy)"


SMOKE_ENV = "FKP_SMOKE"
"""Environment variable that turns on the notebooks' quick smoke mode ("1" or "true")."""
_TRUE = ("1", "true")


PROGRESS_MININTERVAL_S = 1.0
"""Seconds between two updates of a tqdm bar: in a notebook each update is a kernel message, so
bars stay at one a second (tqdm's default, 0.1 s, floods a kernel on a long loop)."""


def ci_mode() -> bool:
    """True on a CI machine: ``CI`` is "1" or "true" (any case; ``CI=false`` is not CI)."""
    return os.environ.get("CI", "").strip().lower() in _TRUE


def smoke_mode() -> bool:
    """True when the notebooks should take their quick path: ``FKP_SMOKE`` or ``CI`` is "1" or "true".

    Case does not matter; any other value (``CI=false``, empty, unset) means the full run. The pytest
    session sets ``FKP_SMOKE=1`` for the notebook kernels it starts (the root ``conftest.py``), so
    ``pytest --nbval`` is quick whatever ``CI`` says; a learner in JupyterLab gets the full run.
    """
    return os.environ.get(SMOKE_ENV, "").strip().lower() in _TRUE or ci_mode()


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and all GPUs) in one call.

    torch is seeded when it has been imported (training code and the notebooks that train import
    it first); inference never imports it, so ``fkp detect`` does not pay for it here.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def resolve_data_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """Find the data folder: ``directory`` if given, else ``$FKP_DATA_DIR``, else ``./data``.

    The folder is not checked for content; :func:`fkp.data_check.verify` does that.
    """
    if directory is not None:
        return Path(directory).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return DEFAULT_DATA_DIR


def resolve_300w_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """Find the 300-W folder: ``directory`` if given, else ``$FKP_300W_DIR``, else ``./data/faces-300w``."""
    if directory is not None:
        return Path(directory).expanduser()
    from_env = os.environ.get(W300_DIR_ENV)
    return Path(from_env).expanduser() if from_env else DEFAULT_300W_DIR


NAME_MAX = 255
"""Longest file name (bytes) the usual file systems allow; temporary names are kept within it."""
_TMP_SUFFIX = ".tmp"
_TMP_PATTERN = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[^.]+)?$")
"""The names :func:`atomic_output` gives its temporaries: ``.NAME.XXXXXXXX.tmp`` + NAME's suffix."""
STALE_AFTER_S = 2.0
"""A temporary no writer holds is stale once this old (the margin covers a writer between
creating its temporary and locking it)."""


class NotAFileError(OSError):
    """An output path that exists and is not a regular file (a folder, device, FIFO or socket): the
    atomic writer never renames a file over it."""


def _temporary_prefix(path: Path) -> str:
    """``.NAME.`` with NAME shortened so that prefix + 8 random characters + ``.tmp`` + the suffix
    fit NAME_MAX."""
    room = NAME_MAX - 2 - 8 - len(_TMP_SUFFIX) - len(path.suffix.encode()) - 8  # dots, random part, margin
    name = path.name.encode()[: max(room, 1)].decode(errors="ignore")
    return f".{name}."


def _refuse_non_file(path: Path) -> None:
    """Raise :class:`NotAFileError` when ``path`` exists (not followed) and is not a regular file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise NotAFileError(errno.EEXIST, f"is {describe_file_type(mode)}, not a regular file", str(path))


def describe_file_type(mode: int) -> str:
    """``"a folder"``, ``"a character device"``, ... for a ``st_mode`` (as in one-line messages)."""
    for test, words in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(mode):
            return words
    return "not a regular file"


def _lock(handle: int) -> None:
    """Hold an exclusive lock on an open temporary while it is written (so that
    :func:`clear_stale_temporaries` in another process leaves it alone)."""
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], replace: bool = True) -> Iterator[Path]:
    """A temporary file next to ``path`` that becomes ``path`` only when the ``with`` block succeeds.

    The package's one atomic writer: every file a command or a training run writes comes through
    here (directly, or through :func:`atomic_write_bytes`), so no reader, and no kill mid-write,
    ever sees half a file. The block writes the yielded path however it likes (``open``, a
    ``cv2.VideoWriter``, a download); when it ends normally the file gets the usual mode (0666 less
    the umask) and takes ``path``'s name; when it raises, or is interrupted, it is removed and
    ``path`` is left as it was. Folders: :func:`staged_folder`.

    What is at ``path`` is never destroyed by mistake: a symbolic link is followed (its target is
    written, the link stays); a folder, device, FIFO or socket is refused (:class:`NotAFileError`),
    never renamed over. With ``replace=False`` the name is claimed create-exclusively when the file
    is complete (a hard link, or ``O_EXCL``): if another writer made ``path`` meanwhile,
    :class:`FileExistsError` and nothing is replaced. While written, the temporary is locked, so
    that :func:`clear_stale_temporaries` removes only those of killed writers.

    Args:
        path: the file to create (or replace, with ``replace``); its folder is created if needed.
        replace: replace an existing regular file at ``path``.

    Yields:
        The temporary path, ``.NAME.XXXXXXXX.tmp`` followed by ``path``'s suffix (so writers that go
        by the extension pick the right format), NAME shortened so that any legal name works.

    Raises:
        NotAFileError: ``path`` (or its link's target) is not a regular file.
        FileExistsError: ``replace`` is off and ``path`` exists when the file is placed.
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))  # write the target; never replace the link by a file
    _refuse_non_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(
        prefix=_temporary_prefix(path), suffix=_TMP_SUFFIX + path.suffix, dir=path.parent
    )
    tmp = Path(tmp_name)
    try:
        _lock(handle)
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600 files; give the usual mode
        _refuse_non_file(path)  # made meanwhile: still never renamed over
        if replace:
            os.replace(tmp, path)
        else:
            _place_exclusively(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone already once placed (or a second name of the placed file)
        os.close(handle)


def _place_exclusively(tmp: Path, path: Path) -> None:
    """Give the complete file ``tmp`` the name ``path`` unless that name exists (FileExistsError)."""
    try:
        os.link(tmp, path)  # atomic and exclusive: the name appears with the whole file
        return
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: claim the name, then fill it
        pass
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    os.replace(tmp, path)


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes, replace: bool = True) -> None:
    """Write ``payload`` to ``path`` atomically (through :func:`atomic_output`, whose ``replace`` this is)."""
    with atomic_output(path, replace=replace) as tmp:
        tmp.write_bytes(payload)


def clear_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries that killed :func:`atomic_output` writers left in ``folder``.

    Only files named as :func:`atomic_output` names them (``.NAME.XXXXXXXX.tmp[.EXT]``) that no
    live writer holds (their lock is free) and that are older than :data:`STALE_AFTER_S` are
    removed (without ``fcntl``, e.g. on Windows: older than an hour). Nothing else is touched.

    Returns:
        The paths removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not (entry.name.startswith(".") and _TMP_PATTERN.match(entry.name)):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if age < (STALE_AFTER_S if fcntl is not None else 3600.0) or not _unheld(entry.path):
                continue
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _unheld(path: str) -> bool:
    """Whether no process holds the lock of the temporary at ``path``."""
    if fcntl is None:
        return True
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(handle)


@contextlib.contextmanager
def staged_folder(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary folder next to ``dest`` that becomes ``dest`` only when the ``with`` block succeeds.

    The block fills the yielded folder. When it ends normally the folder is renamed to ``dest``,
    replacing an absent or empty folder, or an old folder (which is removed only once the new one
    is in place). When the block raises, or is interrupted, the temporary folder is removed and
    ``dest`` is left as it was: no reader ever sees half a folder.

    Args:
        dest: the folder to create or replace; its parent is created if needed.

    Yields:
        The temporary folder (hidden, named after ``dest``, in ``dest``'s parent folder).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes 0700 folders; give the usual mode
        yield staging
        _replace_folder(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already once placed


def _replace_folder(staging: Path, dest: Path) -> None:
    """Rename ``staging`` to ``dest``, replacing an empty folder or an old one (put back if that fails)."""
    if not dest.exists():
        os.rename(staging, dest)
        return
    if not any(dest.iterdir()):
        dest.rmdir()
        os.rename(staging, dest)
        return
    old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(dest, old)
    try:
        os.rename(staging, dest)
    except BaseException:
        os.rename(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary files that :func:`atomic_output` left next to ``path`` when killed mid-write
    (and the ``.NAME.tmp`` of earlier versions), for a caller that owns ``path`` to remove."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = f"{glob.escape(_temporary_prefix(path))}*{_TMP_SUFFIX}*"
    found = set(path.parent.glob(pattern)) | {path.with_name(f".{path.name}{_TMP_SUFFIX}")}
    return sorted(p for p in found if p.is_file())


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
