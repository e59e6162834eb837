"""Where a run over many images writes its results, one record per image (see
:meth:`fkp.bulk.ImageResult.to_record`).

The pieces::

    JsonLinesWriter     one JSON line per image, appended and flushed; reads what a run left to resume
    ParquetWriter       the same records as Parquet row groups (needs pyarrow)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from fkp.model_file import sha256_of


class JsonLinesWriter:
    """Results as JSON Lines, one line per image, each appended and flushed as it comes.

    Opened on an existing file without ``overwrite``, it resumes: a last line cut short by a
    killed run is removed, and so are error lines and lines whose image has changed since (its
    sha256 differs), so that those images run again; :attr:`done` holds the names whose lines
    stay. The file is locked against a second concurrent run.

    Args:
        path: the ``.jsonl`` file (made if missing), or None for standard output (no resume).
        overwrite: start the file over.

    Raises:
        OSError: the file cannot be opened, or another run holds it (``BlockingIOError``).
    """

    def __init__(self, path: Path | None, overwrite: bool = False) -> None:
        self.path = path
        self.done: set[str] = set()
        self.dropped = 0
        if path is None:
            self._fd = 1
            return
        resume = path.is_file() and not overwrite
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | (0 if resume else os.O_TRUNC)
        self._fd = os.open(path, flags, 0o666)
        try:
            lock_exclusive(self._fd, path)
            if resume:
                self._resume(path)
        except BaseException:
            os.close(self._fd)
            raise

    def _resume(self, path: Path) -> None:
        kept: list[bytes] = []
        with open(path, "rb") as handle:
            for line in handle:
                record = _parse(line)
                if record is None:  # cut short by a killed run, or not a result line
                    self.dropped += 1
                    continue
                name = record["path"]
                if record.get("error") or name in self.done or not _unchanged(name, record.get("sha256")):
                    self.dropped += 1
                    continue
                self.done.add(name)
                kept.append(line if line.endswith(b"\n") else line + b"\n")
        if self.dropped:  # rewrite in place what stays (the lock is held on this file)
            os.ftruncate(self._fd, 0)
            for line in kept:
                os.write(self._fd, line)
            os.fsync(self._fd)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as one line (one ``write`` call: a killed run leaves whole lines)."""
        line = json.dumps(record) + "\n"
        if self._fd == 1:
            sys.stdout.write(line)
            sys.stdout.flush()
            return
        payload = line.encode()
        view = memoryview(payload)
        while view:
            view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        """Close the file (standard output stays open)."""
        if self._fd != 1:
            os.close(self._fd)
            self._fd = 1


def parse_line(line: bytes, keys: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """One whole JSON Lines record: the object on ``line``, or None for a line cut short (no final
    newline), one that is not a JSON object, or one without every name in ``keys``."""
    if not line.endswith(b"\n"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and all(key in record for key in keys) else None


def _parse(line: bytes) -> dict[str, Any] | None:
    record = parse_line(line, ("path",))
    return record if record is not None and isinstance(record["path"], str) else None


def _unchanged(name: str, digest: Any) -> bool:
    try:
        return isinstance(digest, str) and sha256_of(name) == digest
    except OSError:
        return True  # no longer there: its line stays, it is not part of this run


def lock_exclusive(fd: int, path: Path) -> None:
    """Hold an exclusive lock on the open file ``fd`` (of ``path``) until it is closed, so that a second
    concurrent run into the same file is refused.

    Raises:
        BlockingIOError: another process holds it.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise BlockingIOError(f"{path}: another run is writing it") from None


PARQUET_ROWS = 1024
"""Records per Parquet row group."""


def parquet_schema() -> Any:
    """The Parquet columns: path, sha256, width, height, labels, error, then per face ``boxes``
    (x, y, w, h), ``scores`` and ``keypoints`` ((68, 2) x, y), all in pixels of the image."""
    import pyarrow as pa

    return pa.schema(
        [
            ("path", pa.string()),
            ("sha256", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("labels", pa.string()),
            ("error", pa.string()),
            ("boxes", pa.list_(pa.list_(pa.float32()))),
            ("scores", pa.list_(pa.float64())),
            ("keypoints", pa.list_(pa.list_(pa.list_(pa.float32())))),
        ]
    )


class ParquetWriter:
    """The records of :class:`JsonLinesWriter` as Parquet, in row groups of :data:`PARQUET_ROWS`.

    Parquet cannot be appended to, so the file is written to a temporary beside it and becomes
    the output at :meth:`close` (also after Ctrl-C: the finished results are kept). There is no
    resume; :attr:`done` is empty.

    Args:
        path: the file to write (staged; see :meth:`fkp.outputs.Output.staged`).
    """

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.done: set[str] = set()
        self.dropped = 0
        self._rows: list[dict[str, Any]] = []
        self._writer = pq.ParquetWriter(str(path), parquet_schema())

    def write(self, record: dict[str, Any]) -> None:
        """Buffer one record; a full row group is written."""
        faces = record["faces"]
        row = {key: record[key] for key in ("path", "sha256", "width", "height", "labels", "error")}
        row["boxes"] = [face["box"] for face in faces]
        row["scores"] = [face["score"] for face in faces]
        row["keypoints"] = [face["keypoints"] for face in faces]
        self._rows.append(row)
        if len(self._rows) >= PARQUET_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=parquet_schema()))
            self._rows = []

    def close(self) -> None:
        """Write what is buffered and the file's footer."""
        self._flush()
        self._writer.close()
