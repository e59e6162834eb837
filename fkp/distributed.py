"""Keypoints for a collection on more than one machine: Ray Data (``pip install 'fkp[ray]'``).

Ray schedules the work over a cluster, retries the tasks of a node that dies, moves images
through its object store and grows or shrinks the cluster with the load; fkp only says what
one worker does with a batch of images::

    import ray
    from fkp.distributed import detect_dataset

    ray.init()                                                       # or ray.init(address="auto") on a cluster
    images = ray.data.read_images("s3://bucket/photos/", include_paths=True, mode="RGB")
    faces = detect_dataset(images)                                   # columns: path, boxes, scores, keypoints, ...
    faces.write_parquet("s3://bucket/keypoints/")

:class:`LandmarkerBatch` is the callable class that ``map_batches`` runs: each Ray worker builds
one :class:`fkp.detect.Landmarker` (detector and model loaded once) and reuses it for every
batch. The rows it writes are :func:`fkp.records.parquet_schema`'s, the columns of
``fkp detect --format parquet``, with the same numbers as the local runner (:mod:`fkp.bulk`).
``fkp detect --engine ray [--address ADDR]`` runs on :func:`run_paths`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from fkp.bulk import DEFAULT_BATCH_SIZE, ImageResult, detect_chunk
from fkp.detect import LandmarkerSpec
from fkp.records import parquet_schema

RAY_HINT = "pip install 'fkp[ray]'"


class LandmarkerBatch:
    """What Ray Data's ``map_batches`` runs on each worker: one :class:`fkp.detect.Landmarker`,
    built once, over batches of images.

    Args:
        spec: how to build it (detector name, model file, passes, labels); None: ``"auto"``'s
            detector and the shipped model.
    """

    def __init__(self, spec: LandmarkerSpec | None = None) -> None:
        import cv2

        cv2.setNumThreads(1)  # one CPU per worker, as Ray schedules it
        self.landmarker = (spec or LandmarkerSpec())()
        conventions = tuple(getattr(self.landmarker.model, "conventions", ()))
        self.labels = self.landmarker.labels or (conventions[0] if conventions else None)

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        """One batch: a ``path`` column of image files (read from the ``file`` column instead where
        there is one: Ray workers do not run in the driver's folder), or an ``image`` column of (H, W, 3) uint8
        RGB arrays (``ray.data.read_images(..., mode="RGB")``; its ``path`` column is kept).

        Returns:
            A ``pyarrow.Table`` of :func:`fkp.records.parquet_schema`'s columns, one row per image:
            ``boxes`` (faces, 4) x, y, w, h, ``scores`` (faces,), ``keypoints`` (faces, 68, 2) x, y,
            all in pixels of the image; ``error`` for an image that cannot be read.
        """
        import pyarrow as pa

        names: list[str | None]
        if "image" in batch:
            sources: list[Any] = list(batch["image"])
            names = [str(path) for path in batch["path"]] if "path" in batch else [None] * len(sources)
        else:  # files, read where "file" says (absolute) and reported by "path" (as the user named them)
            sources = [str(path) for path in batch["file" if "file" in batch else "path"]]
            names = [str(path) for path in batch["path"]]
        rows = []
        for name, result in zip(names, detect_chunk(self.landmarker, list(enumerate(sources)))):
            rows.append(
                {
                    "path": name,
                    "sha256": result.sha256,
                    "width": result.width,
                    "height": result.height,
                    "labels": self.labels,
                    "error": result.error,
                    "boxes": [face.box.tolist() for face in result.faces],  # float32, not rounded
                    "scores": [face.score for face in result.faces],
                    "keypoints": [face.keypoints.tolist() for face in result.faces],
                }
            )
        return pa.Table.from_pylist(rows, schema=parquet_schema())


def detect_dataset(
    dataset: Any,
    spec: LandmarkerSpec | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    concurrency: int | tuple[int, int] | None = None,
) -> Any:
    """Faces and keypoints of every image of a Ray dataset.

    Args:
        dataset: a ``ray.data.Dataset`` with an ``image`` column ((H, W, 3) uint8 RGB, e.g.
            ``ray.data.read_images(root, include_paths=True, mode="RGB")``) or a ``path`` column of
            image files that every worker can read, by absolute path (a table of paths: decoded as
            :func:`fkp.images.load_image` does, EXIF orientation applied); an extra ``file``
            column, if any, is where each is read, ``path`` how it is reported.
        spec: how each worker builds its landmarker; None: ``"auto"``'s detector, the shipped model.
        batch_size: images per batch handed to a worker.
        concurrency: workers (one CPU each), a number or a (least, most) range; None: from 1 up
            to every CPU of the cluster, so that the tasks reading the images find a CPU too.

    Returns:
        A lazy ``ray.data.Dataset``, one row per image, with the columns of
        :func:`fkp.records.parquet_schema`: path, sha256, width, height, labels, error, boxes,
        scores, keypoints (pixels of the image).
    """
    import ray

    if concurrency is None:
        concurrency = (1, max(1, int(ray.cluster_resources().get("CPU", 1))))
    return dataset.map_batches(
        LandmarkerBatch,
        fn_constructor_kwargs={"spec": spec},
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=concurrency,
        num_cpus=1,
    )


def result_from_row(index: int, row: dict[str, Any]) -> ImageResult:
    """An :class:`fkp.bulk.ImageResult` from one row of :func:`detect_dataset` (what the local runner yields)."""
    from fkp.face import Face

    faces = [
        Face(box=np.asarray(box, dtype=np.float32), keypoints=np.asarray(np.stack(points), dtype=np.float32), score=s)
        for box, points, s in zip(row["boxes"], row["keypoints"], row["scores"])
    ]
    return ImageResult(index, row["path"], row["sha256"], row["width"], row["height"], faces, row["error"])


def run_paths(
    paths: Iterable[str],
    spec: LandmarkerSpec | None = None,
    *,
    address: str | None = None,
    jobs: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[ImageResult]:
    """``fkp detect --engine ray``: image files through :func:`detect_dataset`, one result per image
    as Ray hands the rows back (in no set order; each carries its path).

    Args:
        paths: image files every worker can read.
        address: the Ray cluster to join (``ray.init(address=...)``); None: a local Ray with ``jobs`` CPUs.
        jobs: with no address, the local Ray's CPUs (None: the cores).
        spec: how each worker builds its landmarker (see :class:`LandmarkerBatch`).
        batch_size: images per batch.
    """
    import ray

    # paths only, the images are read by the workers, which do not run in this folder
    table = [{"path": path, "file": os.path.abspath(path)} for path in paths]
    if not table:
        return
    if not ray.is_initialized():
        ray.init(
            address=address,
            num_cpus=None if address else jobs,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    ray.data.DataContext.get_current().enable_progress_bars = False
    dataset = ray.data.from_items(table, override_num_blocks=max(1, len(table) // batch_size))
    rows = detect_dataset(dataset, spec, batch_size=batch_size, concurrency=None if address else jobs)
    for index, row in enumerate(rows.iter_rows()):
        yield result_from_row(index, row)
