"""The keypoints CSV, the data sets' label table: its one reader and its one writer (torch-free).

A header line, then one row per image: the image's file name, then 136 numbers
``x0, y0, ..., x67, y67`` in pixels of that image (the Udacity layout, which ``fkp data prepare-300w``
writes too). :func:`fkp.data.FacialKeypointsDataset`, ``fkp data verify``
(:func:`fkp.data_check.verify`) and the benchmarks all read it with :func:`read_keypoints_csv`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

import numpy as np

from fkp.landmarks import NUM_KEYPOINTS
from fkp.utils import atomic_write_bytes

FIELDS = 1 + 2 * NUM_KEYPOINTS
"""Fields of a row: the file name, then x0, y0, ..., x67, y67."""


class KeypointsCSVError(ValueError):
    """A keypoints CSV row that is not a file name and 136 numbers; the message names the line."""


def read_keypoints_csv(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """Read a keypoints CSV, checking every row.

    Args:
        path: the CSV file.

    Returns:
        The image file names (N,) and their keypoints, (N, 68, 2) float32 pixels, x then y.

    Raises:
        KeypointsCSVError: a row without 137 fields, whose name is not a plain file name (no folder,
            not hidden, not empty), or whose coordinates are not numbers; the message says
            ``line L: ...`` (L counts from 1, the header being line 1).
        OSError: the file cannot be read.
    """
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    for line, row in enumerate(rows, start=2):
        if len(row) != FIELDS:
            raise KeypointsCSVError(f"line {line}: {len(row)} fields, expected {FIELDS}")
        name = row[0]
        if not name or name != os.path.basename(name) or name.startswith("."):
            raise KeypointsCSVError(f"line {line}: {name!r} is not an image file name")
    try:
        values = np.array([row[1:] for row in rows], dtype=np.float32).reshape(len(rows), NUM_KEYPOINTS, 2)
    except ValueError:
        for line, row in enumerate(rows, start=2):
            try:
                [float(value) for value in row[1:]]
            except ValueError as error:
                raise KeypointsCSVError(f"line {line}: {error}") from None
        raise
    return [row[0] for row in rows], values  # (N, 136) -> (N, 68, 2) above


def _format(value: float) -> str:
    """A coordinate as the CSV writes it: rounded to 3 decimals, shortest form, never ``-0.0``."""
    return repr(round(float(value), 3) + 0.0)


def write_keypoints_csv(path: str | os.PathLike[str], rows: Sequence[tuple[str, np.ndarray]]) -> None:
    """Write a keypoints CSV in the Udacity layout (header ``,0,1,...,135``), rows sorted by name.

    Args:
        path: the CSV file to write (atomically).
        rows: (image file name, (68, 2) points in pixels, x then y) pairs.
    """
    header = ",".join(["", *map(str, range(2 * NUM_KEYPOINTS))])
    lines = [header]
    for name, points in sorted(rows, key=lambda row: row[0]):
        lines.append(",".join([name, *map(_format, np.asarray(points).reshape(-1))]))  # (68, 2) -> (136,)
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))
