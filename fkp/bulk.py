"""Keypoints for a whole collection: streamed, in worker processes, resumable.

The pieces::

    iter_inputs         the image files of paths, folders (recursive or not), globs and list files
    ImageResult         one image's answer: its name, content hash, size, faces or error
    run_images          results per image as they finish, from 1 or N worker processes
    JsonLinesWriter     one JSON line per image, appended and flushed; reads what a run left to resume
    ParquetWriter       the same records as Parquet row groups (needs pyarrow)

``fkp detect -r``, ``--from`` and ``--jobs`` (:mod:`fkp.cli.detect`) and
:meth:`fkp.detect.Landmarker.run` run on these; :mod:`fkp.distributed` does the same on Ray.

Memory stays bounded whatever the collection: inputs are walked lazily and at most
``2 * jobs`` chunks of ``batch_size`` images are in flight. A worker that dies (killed by the
OOM killer, a crash in a native library) loses no other result: the images of the chunks in flight
are run again, one at a time, after the others; an image whose worker dies twice is reported as
an error.
"""

from __future__ import annotations

import concurrent.futures
import glob
import hashlib
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fkp.images import IMAGE_SUFFIXES, ImageReadError, as_rgb8, load_image

if TYPE_CHECKING:
    from fkp.detect import Face, Landmarker

DEFAULT_BATCH_SIZE = 8
"""Images per task sent to a worker process (and per progress update)."""
WORKER_DIED = "the worker process running it died twice (killed, or out of memory?)"
"""The error of an image whose worker died on the first try and on the retry."""
GLOB_CHARACTERS = frozenset("*?[")


def default_jobs() -> int:
    """The number of CPU cores this process may use: the default of ``--jobs``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        yield str(folder)  # its result says why it cannot be listed
        return
    for entry in entries:
        if entry.is_file() and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
            yield str(folder / entry.name)
    if recursive:
        for entry in entries:
            if entry.is_dir():
                yield from _folder(folder / entry.name, recursive)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes (what a resumed run compares)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ImageResult:
    """One image's answer in a bulk run.

    Attributes:
        index: the image's position in the run's input.
        path: its name as given (a file path), or None for an in-memory image.
        sha256: hex sha256 of the file's bytes (of the pixel bytes for an in-memory image); None
            when the file cannot be read.
        width, height: the image's size in pixels (None after an error).
        faces: one :class:`fkp.detect.Face` per face found, boxes and keypoints in pixels of the image.
        error: why the image has no answer (unreadable, missing, its worker died), else None.
    """

    index: int
    path: str | None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    faces: list[Face] = field(default_factory=list)
    error: str | None = None

    def to_record(self, labels: str | None) -> dict[str, Any]:
        """The JSON-ready record written per image: ``{"path", "sha256", "width", "height",
        "labels", "faces": [Face.to_dict(), ...], "error"}``."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
            "labels": labels,
            "faces": [face.to_dict() for face in self.faces],
            "error": self.error,
        }


def _read(index: int, source: str | np.ndarray) -> ImageResult | tuple[str, np.ndarray]:
    """(sha256, (H, W, 3) uint8 RGB) of an image file or array, or the error result of one that cannot be read."""
    path = source if isinstance(source, str) else None
    try:
        if path is not None:
            digest = sha256_file(path)
            return digest, load_image(path)
        image = as_rgb8(source)
        return hashlib.sha256(image.tobytes()).hexdigest(), image
    except ImageReadError as error:
        return ImageResult(index, path, error=error.reason)
    except OSError as error:
        return ImageResult(index, path, error=error.strerror or str(error))
    except Exception as error:  # one bad image must not stop a run of a million
        return ImageResult(index, path, error=f"{type(error).__name__}: {error}")


def _answer(index: int, source: Any, digest: str, image: np.ndarray, faces: list[Face]) -> ImageResult:
    path = source if isinstance(source, str) else None
    return ImageResult(index, path, digest, int(image.shape[1]), int(image.shape[0]), faces)


def detect_one(landmarker: Landmarker, index: int, source: str | np.ndarray) -> ImageResult:
    """Run ``landmarker`` on one image file or array; a failure becomes the result's ``error``."""
    read = _read(index, source)
    if isinstance(read, ImageResult):
        return read
    digest, image = read
    try:
        faces = landmarker.detect(image)
    except Exception as error:  # one bad image must not stop a run of a million
        return ImageResult(index, source if isinstance(source, str) else None, error=f"{type(error).__name__}: {error}")
    return _answer(index, source, digest, image, faces)


def detect_chunk(landmarker: Landmarker, chunk: list[tuple[int, Any]]) -> list[ImageResult]:
    """Results of a chunk of ``(index, path or image)``: the faces of all its readable images go
    through the keypoint network together (:meth:`fkp.detect.Landmarker.detect_many`); should
    that fail, each image is run alone, so that one bad image fails alone."""
    reads = [(index, source, _read(index, source)) for index, source in chunk]
    readable = [(index, source, read) for index, source, read in reads if not isinstance(read, ImageResult)]
    detect_many = getattr(landmarker, "detect_many", None)
    answers: dict[int, ImageResult] = {}
    if detect_many is not None and readable:
        try:
            faces = detect_many([read[1] for _, _, read in readable])
        except Exception:  # noqa: BLE001 - fall back to one image at a time below
            faces = None
        if faces is not None:
            for (index, source, (digest, image)), found in zip(readable, faces):
                answers[index] = _answer(index, source, digest, image, found)
    results = []
    for index, source, read in reads:
        if isinstance(read, ImageResult):
            results.append(read)
        elif index in answers:
            results.append(answers[index])
        else:
            results.append(detect_one(landmarker, index, source))
    return results


@dataclass(frozen=True)
class LandmarkerSpec:
    """How a worker process builds its :class:`fkp.detect.Landmarker`: names and files, no objects,
    so that it can be sent to a fresh process. Calling it builds one.

    Attributes:
        detector: a name for :func:`fkp.detectors.make_detector` (``"auto"``, ``"yunet"``, ``"haar"``).
        model: a model file for :func:`fkp.predict.load_model`; None: the shipped model.
        passes: keypoint passes per face (``fkp detect --passes``).
        labels: the keypoints' labelling convention, one of the model's; None: its default.
        detector_options: further options of :func:`fkp.detectors.make_detector` (``rotations``, ``min_size``, ...).
    """

    detector: str = "auto"
    model: str | None = None
    passes: int = 1
    labels: str | None = None
    detector_options: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> Landmarker:
        from fkp.detect import Landmarker
        from fkp.detectors import make_detector
        from fkp.predict import SecondPass, load_model

        model = load_model(self.model, second_pass=SecondPass(extra_passes=self.passes - 1))
        detector = make_detector(self.detector, notify=lambda line: None, **self.detector_options)
        return Landmarker(detector, model, labels=self.labels)


Chunk = list[tuple[int, Any]]  # (index, path or image) pairs
_worker_landmarker: Landmarker | None = None


def _start_worker(factory: Callable[[], Landmarker]) -> None:
    """Worker process initializer: Ctrl-C is the parent's to handle; one thread; the model once."""
    global _worker_landmarker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    import cv2

    cv2.setNumThreads(1)
    _worker_landmarker = factory()


def _die_with_parent() -> None:
    """On Linux, have the kernel end this worker when the process that started it dies (SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - no prctl
        pass


def _work(chunk: Chunk) -> list[ImageResult]:
    assert _worker_landmarker is not None, "the worker was not started by _start_worker"
    return detect_chunk(_worker_landmarker, chunk)


def _chunks(sources: Iterable[Any], size: int) -> Iterator[Chunk]:
    chunk: Chunk = []
    for index, source in enumerate(sources):
        chunk.append((index, source))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_images(
    sources: Iterable[str | np.ndarray],
    factory: Callable[[], Landmarker],
    jobs: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[ImageResult]:
    """Faces and keypoints of many images, one result per image as it finishes.

    Args:
        sources: image file paths or (H, W, 3) uint8 RGB arrays, read lazily.
        factory: builds the :class:`fkp.detect.Landmarker` once per worker process (once in this
            process for ``jobs=1``). Workers start from a fresh process (forkserver, or spawn),
            never forked from this one (OpenCV's and onnxruntime's threads do not survive a fork),
            so for ``jobs > 1`` it is sent to them: a :class:`LandmarkerSpec`, or any picklable callable.
        jobs: worker processes; 1 runs in this process.
        batch_size: images per task handed to a worker.

    Yields:
        One :class:`ImageResult` per source, exactly once: in input order for ``jobs=1``, in the
        order they finish otherwise (``index`` says where each came from).
    """
    if jobs < 1 or batch_size < 1:
        raise ValueError(f"jobs and batch_size must be at least 1, got {jobs} and {batch_size}")
    chunks = _chunks(sources, batch_size)
    if jobs == 1:
        landmarker = factory()
        for chunk in chunks:
            yield from detect_chunk(landmarker, chunk)
        return
    yield from _Pool(factory, jobs).run(chunks)


class _Pool:
    """Worker processes with at most ``2 * jobs`` chunks in flight, rebuilt when one dies."""

    def __init__(self, factory: Callable[[], Landmarker], jobs: int) -> None:
        self.factory = factory
        self.jobs = jobs
        if "forkserver" in multiprocessing.get_all_start_methods():
            self.context: Any = multiprocessing.get_context("forkserver")
            self.context.set_forkserver_preload(["fkp.detect"])  # each worker starts with the imports done
        else:
            self.context = multiprocessing.get_context("spawn")
        self.executor: concurrent.futures.ProcessPoolExecutor | None = None
        self.retry: Chunk = []

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self.executor is None:
            self.executor = concurrent.futures.ProcessPoolExecutor(
                self.jobs, mp_context=self.context, initializer=_start_worker, initargs=(self.factory,)
            )
        return self.executor

    def _stop(self) -> None:
        if self.executor is None:
            return
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # a task in flight is not waited for (Ctrl-C, the end of a broken pool)
            process.terminate()
        for process in processes:
            process.join()
        self.executor = None

    def run(self, chunks: Iterator[Chunk]) -> Iterator[ImageResult]:
        pending: dict[concurrent.futures.Future[list[ImageResult]], Chunk] = {}
        try:
            for chunk in chunks:
                while len(pending) >= 2 * self.jobs:
                    yield from self._collect(pending)
                pending[self._executor().submit(_work, chunk)] = chunk
            while pending:
                yield from self._collect(pending)
            for item in self.retry:  # one at a time: a second death is this image's own
                try:
                    yield from self._executor().submit(_work, [item]).result()
                except BrokenProcessPool:
                    self._stop()
                    yield ImageResult(item[0], item[1] if isinstance(item[1], str) else None, error=WORKER_DIED)
        finally:
            self._stop()

    def _collect(self, pending: dict[concurrent.futures.Future[list[ImageResult]], Chunk]) -> Iterator[ImageResult]:
        done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        broken = False
        for future in done:
            chunk = pending.pop(future)
            try:
                results = future.result()
            except BrokenProcessPool:
                self.retry.extend(chunk)
                broken = True
                continue
            yield from results
        if broken:  # every chunk still in flight died with the pool: run them again after the rest
            for future, chunk in list(pending.items()):
                if future.done() and future.exception() is None:
                    yield from future.result()
                else:
                    self.retry.extend(chunk)
            pending.clear()
            self._stop()


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
            _lock_exclusive(self._fd, path)
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


def _parse(line: bytes) -> dict[str, Any] | None:
    if not line.endswith(b"\n"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("path"), str) else None


def _unchanged(name: str, digest: Any) -> bool:
    try:
        return isinstance(digest, str) and sha256_file(name) == digest
    except OSError:
        return True  # no longer there: its line stays, it is not part of this run


def _lock_exclusive(fd: int, path: Path) -> None:
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
