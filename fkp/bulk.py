"""Keypoints for a whole collection: streamed, in worker processes.

The pieces::

    ImageResult         one image's answer: its name, content hash, size, faces or error
    run_images          results per image as they finish, from 1 or N worker processes

Inputs are listed by :func:`fkp.inputs.iter_inputs` and results written by :mod:`fkp.records`.
``fkp detect -r``, ``--from`` and ``--jobs`` (:mod:`fkp.cli.detect_bulk`) and
:meth:`fkp.detect.Landmarker.run` run on these; :mod:`fkp.distributed` does the same on Ray.
This module knows the pipeline only as :class:`FaceFinder` (anything with ``detect``), so that
:mod:`fkp.detect` can build on it.

Memory stays bounded whatever the collection: inputs are walked lazily and at most
``2 * jobs`` chunks of ``batch_size`` images are in flight. A worker that dies (killed by the
OOM killer, a crash in a native library) loses no other result: the images of the chunks in flight
are run again, one at a time, after the others; an image whose worker dies twice is reported as
an error.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fkp.face import Face
from fkp.images import ImageReadError, as_rgb8, load_image
from fkp.model_file import sha256_of

DEFAULT_BATCH_SIZE = 8
"""Images per task sent to a worker process (and per progress update)."""
WORKER_DIED = "the worker process running it died twice (killed, or out of memory?)"
"""The error of an image whose worker died on the first try and on the retry."""


class FaceFinder(Protocol):
    """What a bulk run calls per image, as :class:`fkp.detect.Landmarker` is: ``detect`` of an
    (H, W, 3) uint8 RGB image gives its faces, in pixels of the image. An optional
    ``detect_many(images) -> list[list[Face]]`` runs a chunk at once."""

    def detect(self, image: np.ndarray) -> list[Face]: ...


def default_jobs() -> int:
    """The number of CPU cores this process may use: the default of ``--jobs``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ImageResult:
    """One image's answer in a bulk run.

    Attributes:
        index: the image's position in the run's input.
        path: its name as given (a file path), or None for an in-memory image.
        sha256: hex sha256 of the file's bytes (of the pixel bytes for an in-memory image); None
            when the file cannot be read.
        width, height: the image's size in pixels (None after an error).
        faces: one :class:`fkp.face.Face` per face found, boxes and keypoints in pixels of the image.
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
            digest = sha256_of(path)
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


def detect_one(landmarker: FaceFinder, index: int, source: str | np.ndarray) -> ImageResult:
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


def detect_chunk(landmarker: FaceFinder, chunk: list[tuple[int, Any]]) -> list[ImageResult]:
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


Chunk = list[tuple[int, Any]]  # (index, path or image) pairs
_worker_landmarker: FaceFinder | None = None


def _start_worker(factory: Callable[[], FaceFinder]) -> None:
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
    factory: Callable[[], FaceFinder],
    jobs: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[ImageResult]:
    """Faces and keypoints of many images, one result per image as it finishes.

    Args:
        sources: image file paths or (H, W, 3) uint8 RGB arrays, read lazily.
        factory: builds the :class:`FaceFinder` (a :class:`fkp.detect.Landmarker`) once per worker process (once in this
            process for ``jobs=1``). Workers start from a fresh process (forkserver, or spawn),
            never forked from this one (OpenCV's and onnxruntime's threads do not survive a fork),
            so for ``jobs > 1`` it is sent to them: a :class:`fkp.detect.LandmarkerSpec`, or any picklable callable.
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

    def __init__(self, factory: Callable[[], FaceFinder], jobs: int) -> None:
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
