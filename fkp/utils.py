"""Small shared helpers: seeding, the data-folder lookup, the user cache folder, atomic writes."""

from __future__ import annotations

import contextlib
import glob
import os
import random
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

DATA_DIR_ENV = "FKP_DATA_DIR"
"""Environment variable naming the data folder (second in the lookup order)."""
W300_DIR_ENV = "FKP_300W_DIR"
"""Environment variable naming the 300-W folder (in the layout ``fkp data prepare-300w`` writes)."""
DEFAULT_300W_DIR = Path("data") / "faces-300w"
GET_300W_HINT = (
    "get 300-W from https://ibug.doc.ic.ac.uk/resources/300-W/ (research use only), then run "
    "fkp data prepare-300w SRC --dir data/faces-300w (or set FKP_300W_DIR to a prepared copy)"
)
CACHE_DIR_ENV = "FKP_CACHE_DIR"
"""Environment variable naming the cache folder; default ``~/.cache/fkp``."""
DEFAULT_DATA_DIR = Path("data")
GET_DATA_HINT = "get the data set with: fkp data download (or set FKP_DATA_DIR to a copy)"


SMOKE_ENV = "FKP_SMOKE"
"""Environment variable that turns on the notebooks' smoke mode (``1`` or ``true``)."""


def smoke_mode() -> bool:
    """Whether notebooks run their quick smoke version: ``$FKP_SMOKE`` or ``$CI`` is ``1`` or ``true``.

    Case-insensitive; any other value (``0``, ``false``, empty, unset) means the full run a reader gets.
    """
    return any(os.environ.get(name, "").strip().lower() in ("1", "true") for name in (SMOKE_ENV, "CI"))


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

    The folder is not checked for content; :func:`fkp.download.verify` does that.
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


def cache_dir() -> Path:
    """The user cache folder (``$FKP_CACHE_DIR`` or ``~/.cache/fkp``), created on first use."""
    base = os.environ.get(CACHE_DIR_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fkp"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


NAME_MAX = 255
"""Longest file name (bytes) the usual file systems allow; temporary names are kept within it."""
_TMP_SUFFIX = ".tmp"


def _temporary_prefix(path: Path) -> str:
    """``.NAME.`` with NAME shortened so that prefix + 8 random characters + ``.tmp`` fit NAME_MAX."""
    room = NAME_MAX - 2 - 8 - len(_TMP_SUFFIX) - 8  # dots, mkstemp's random part, suffix, margin
    name = path.name.encode()[:room].decode(errors="ignore")
    return f".{name}."


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file and a rename, so no reader sees half a file.

    The temporary file sits next to ``path`` as ``.NAME.XXXXXXXX.tmp`` (NAME shortened if needed,
    so any legal file name works); it is removed if the write fails. This is the package's one
    file writer: every command's outputs go through it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=_TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as tmp:
            tmp.write(payload)
        os.chmod(tmp_name, 0o666 & ~current_umask())  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


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
    """Temporary files that :func:`atomic_write_bytes` left next to ``path`` when killed mid-write
    (and the ``.NAME.tmp`` of earlier versions), for a caller that owns ``path`` to remove."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = f"{glob.escape(_temporary_prefix(path))}*{_TMP_SUFFIX}"
    found = set(path.parent.glob(pattern)) | {path.with_name(f".{path.name}{_TMP_SUFFIX}")}
    return sorted(p for p in found if p.is_file())


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
