"""Build the 300-W data set folder (``fkp data prepare-300w``) from the official 300-W files.

The iBUG group distributes 300-W as folders of photos (.png/.jpg), each annotated face in its own
.pts file next to its photo (68 points, 1-indexed pixel coordinates)::

    SRC/lfpw/trainset/image_0001.png   SRC/lfpw/trainset/image_0001.pts
    SRC/lfpw/testset/   SRC/helen/trainset/   SRC/helen/testset/   SRC/afw/   SRC/ibug/

:func:`prepare_300w` crops every annotated face into the layout of the Udacity set (see
:mod:`fkp.data`): ``training/`` = LFPW trainset + HELEN trainset + AFW, ``test/`` = LFPW testset +
HELEN testset + iBUG, one JPEG per face named ``<prefix><stem>.jpg`` (prefixes in :data:`PARTS`),
and one keypoints CSV per split. Subset folders that are absent are skipped. The crop, described
step by step in the README of the data set folder:

1. 0-indexed points: 1 is subtracted from the .pts coordinates (the top-left pixel's centre is (0, 0)).
2. Square of side ``2 x`` the longer side of the points' tight box, centred on that box,
   rounded to whole pixels and clipped to the photo (no padding).
3. Downscaled with Pillow's LANCZOS filter so that its longer side is at most 256 px, points mapped
   with the pixel-centre convention ``x' = (x - left + 0.5) * w' / w - 0.5``.
4. A face with a point outside the area its crop's pixels cover is dropped.

The folder is written into a temporary folder next to the destination and renamed into place at
the end (:func:`fkp.utils.staged_folder`): a failed or interrupted run leaves no partial data set.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from fkp.data_check import CSV_NAMES, SPLITS, DataError
from fkp.download import DestinationError, check_destination
from fkp.images import ImageReadError, load_image
from fkp.keypoints_csv import write_keypoints_csv
from fkp.landmarks import NUM_KEYPOINTS
from fkp.utils import PROGRESS_MININTERVAL_S, resolve_300w_dir, staged_folder


@dataclass(frozen=True)
class Part:
    """One part of 300-W: where it is in the official folders, and where its faces go.

    Attributes:
        folder: the folder under SRC, e.g. ``"lfpw/trainset"``.
        prefix: the output file name prefix, e.g. ``"lfpw_train_"``; it names the subset.
        split: ``"training"`` or ``"test"``.
        face_suffix: appended to a .pts stem that carries no face number (LFPW: one face per photo).
    """

    folder: str
    prefix: str
    split: str
    face_suffix: str = ""


PARTS: tuple[Part, ...] = (
    Part("lfpw/trainset", "lfpw_train_", "training", face_suffix="_1"),
    Part("helen/trainset", "helen_train_", "training"),
    Part("afw", "afw_", "training"),
    Part("lfpw/testset", "lfpw_test_", "test", face_suffix="_1"),
    Part("helen/testset", "helen_test_", "test"),
    Part("ibug", "ibug_", "test"),
)
"""The 300-W parts in the standard split: training = LFPW, HELEN trainsets + AFW; test = the rest."""
CROP_SCALE = 2.0
"""Side of the square crop, in units of the longer side of the points' tight box."""
MAX_SIDE = 256
"""Longest side of a saved crop in pixels; larger crops are downscaled, smaller ones kept."""
JPEG_QUALITY = 95
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")
"""Endings looked for, in this order, for the photo next to a .pts file."""
_EDGE_TOLERANCE = 1e-6  # pixels: float rounding at the crop's outer edge does not drop a face


class SourceError(DataError):
    """The 300-W source folder is missing, holds no .pts file, or holds a malformed or orphan one."""


@dataclass(frozen=True)
class SourceFace:
    """One annotated face of the source folder.

    Attributes:
        pts: its .pts file.
        image: the photo next to it.
        part: its 300-W part.
        name: the output image file name, e.g. ``"lfpw_test_image_0011_1.jpg"``.
    """

    pts: Path
    image: Path
    part: Part
    name: str


@dataclass(frozen=True)
class PrepareReport:
    """The result of :func:`prepare_300w`.

    Attributes:
        root: the data set folder written.
        counts: output prefix (``"lfpw_train_"``, ...) -> faces written, for every part in :data:`PARTS`.
        dropped: output names of the faces dropped (a point outside their crop).
    """

    root: Path
    counts: dict[str, int]
    dropped: tuple[str, ...] = ()

    def split_count(self, split: str) -> int:
        """Faces written to ``split``."""
        return sum(self.counts[part.prefix] for part in PARTS if part.split == split)

    def __str__(self) -> str:
        splits = []
        for split in SPLITS:
            parts = ", ".join(
                f"{part.prefix.rstrip('_')} {self.counts[part.prefix]}" for part in PARTS if part.split == split
            )
            splits.append(f"{split}: {self.split_count(split)} faces ({parts})")
        return f"{'; '.join(splits)}; dropped: {len(self.dropped)}"


def read_pts(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a 300-W .pts file, with or without its ``version`` / ``n_points`` / ``{`` ... ``}`` frame.

    Args:
        path: the .pts file: one ``x y`` line per point.

    Returns:
        (68, 2) float64 points as written in the file (300-W's are 1-indexed pixels), x then y.

    Raises:
        SourceError: a line is neither a header line nor two numbers, or the file does not hold
            exactly 68 points; the message names the file.
    """
    points: list[tuple[float, float]] = []
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        raise SourceError(f"{path}: cannot be read ({error.strerror or error})") from None
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text in ("{", "}") or text.startswith("version:"):
            continue
        if text.startswith("n_points:"):
            declared = text.split(":", 1)[1].strip()
            if declared != str(NUM_KEYPOINTS):
                raise SourceError(f"{path}: n_points is {declared}, expected {NUM_KEYPOINTS}")
            continue
        fields = text.split()
        try:
            x, y = (float(value) for value in fields)
        except ValueError:
            raise SourceError(f"{path} line {number}: {text[:40]!r} is not an 'x y' point") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise SourceError(f"{path} line {number}: {text[:40]!r} is not a finite point")
        points.append((x, y))
    if len(points) != NUM_KEYPOINTS:
        raise SourceError(f"{path}: {len(points)} points, expected {NUM_KEYPOINTS}")
    return np.array(points, dtype=np.float64)


def crop_bounds(keypoints: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The data set's crop of a face (steps 2-3 of the data set README), clipped to the photo.

    This is the fixed crop the data set files are cut with, not the model's input crop
    (:mod:`fkp.geometry`); it is computed in float64, exactly as written.

    Args:
        keypoints: (68, 2) 0-indexed points in pixels of the photo, x then y.
        width: the photo's width W in pixels.
        height: the photo's height H in pixels.

    Returns:
        (left, top, right, bottom) in pixels, right and bottom exclusive, within [0, W] x [0, H].
        The crop is empty (right <= left or bottom <= top) if the face lies outside the photo.
    """
    points = np.asarray(keypoints, dtype=np.float64)
    x_min, y_min = points.min(axis=0)
    x_max, y_max = points.max(axis=0)
    cx, cy = (x_min + x_max) / 2, (y_min + y_max) / 2
    side_f = CROP_SCALE * max(x_max - x_min, y_max - y_min)
    left = math.floor(cx - side_f / 2 + 0.5)
    top = math.floor(cy - side_f / 2 + 0.5)
    side = math.floor(side_f + 0.5)
    return max(left, 0), max(top, 0), min(left + side, width), min(top + side, height)


def output_size(width: int, height: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The saved size of a crop: downscaled so its longer side is at most ``max_side``, never upscaled.

    Returns:
        (width', height') in pixels, each rounded half up.
    """
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return math.floor(width * scale + 0.5), math.floor(height * scale + 0.5)


def crop_face(image: np.ndarray, pts_points: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Cut one annotated face out of its photo, as the data set stores it.

    Args:
        image: (H, W, 3) uint8 RGB photo, pixels as stored (no EXIF rotation).
        pts_points: (68, 2) points as read from the .pts file: 1-indexed pixels, x then y.

    Returns:
        The crop, (h', w', 3) uint8 RGB with max(h', w') <= :data:`MAX_SIDE`, and its (68, 2)
        float64 points in pixels of the crop, x then y, 0-indexed (pixel (i, j) covers
        [i - 0.5, i + 0.5] x [j - 0.5, j + 0.5]); ``None`` when the face is dropped, because a
        point falls outside [-0.5, w' - 0.5] x [-0.5, h' - 0.5] (or the crop is empty).
    """
    height, width = image.shape[:2]
    points = np.asarray(pts_points, dtype=np.float64) - 1.0  # 1-indexed -> 0-indexed
    left, top, right, bottom = crop_bounds(points, width, height)
    crop_w, crop_h = right - left, bottom - top
    if crop_w <= 0 or crop_h <= 0:
        return None
    crop = image[top:bottom, left:right]
    out_w, out_h = output_size(crop_w, crop_h)
    if (out_w, out_h) != (crop_w, crop_h):
        resized = Image.fromarray(np.ascontiguousarray(crop)).resize((out_w, out_h), Image.Resampling.LANCZOS)
        crop = np.asarray(resized)
    mapped = points_in_crop(points, (left, top, right, bottom), (out_w, out_h))
    low, high = -0.5 - _EDGE_TOLERANCE, np.array([out_w, out_h]) - 0.5 + _EDGE_TOLERANCE
    if (mapped < low).any() or (mapped > high).any():
        return None
    return np.ascontiguousarray(crop), mapped


def points_in_crop(keypoints: np.ndarray, bounds: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """Map points of a photo into its crop, resized, with the pixel-centre convention of Pillow's resize.

    Edges map to edges and pixel centres to pixel centres: ``x' = (x - left + 0.5) * w' / w - 0.5``,
    which is ``x - left`` when the crop is not resized.

    Args:
        keypoints: (K, 2) 0-indexed points in pixels of the photo, x then y.
        bounds: the crop (left, top, right, bottom) in pixels of the photo, right and bottom exclusive.
        size: the saved crop's (width', height') in pixels.

    Returns:
        (K, 2) float64 points in pixels of the saved crop, x then y.
    """
    left, top, right, bottom = bounds
    scale = np.array([size[0] / (right - left), size[1] / (bottom - top)])
    return (np.asarray(keypoints, dtype=np.float64) - np.array([left, top]) + 0.5) * scale - 0.5


def find_faces(src: str | os.PathLike[str]) -> list[SourceFace]:
    """List the annotated faces of an unpacked 300-W folder, with the photo of each.

    Each part's folder (:data:`PARTS`) is searched for .pts files, sub-folders included; parts
    whose folder is absent are skipped.

    Args:
        src: the folder holding ``lfpw/``, ``helen/``, ``afw/``, ``ibug/``.

    Returns:
        The faces, in the order of :data:`PARTS`, then by .pts path.

    Raises:
        SourceError: ``src`` is not a folder, holds no .pts file in any part's folder, or a .pts
            file has no photo next to it.
    """
    src = Path(src)
    if not src.is_dir():
        raise SourceError(f"{src} is not a folder: unpack the 300-W archives into it")
    faces: list[SourceFace] = []
    for part in PARTS:
        folder = src / part.folder
        if not folder.is_dir():
            continue
        for pts in sorted(folder.rglob("*.pts")):
            image = next((pts.with_suffix(s) for s in IMAGE_SUFFIXES if pts.with_suffix(s).is_file()), None)
            if image is None:
                raise SourceError(f"{pts}: no photo next to it ({pts.stem}.png or .jpg)")
            faces.append(SourceFace(pts, image, part, f"{part.prefix}{pts.stem}{part.face_suffix}.jpg"))
    if not faces:
        folders = ", ".join(part.folder for part in PARTS)
        raise SourceError(f"{src} holds no .pts file in any of {folders}: is it the unpacked 300-W folder?")
    return faces


def prepare_300w(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str] | None = None,
    progress: bool = True,
    force: bool = False,
) -> PrepareReport:
    """Crop every annotated face of an unpacked 300-W folder into a data set folder.

    Args:
        src: the unpacked 300-W folder (see :func:`find_faces`).
        dest: the data set folder to create; ``None`` looks it up (``$FKP_300W_DIR``, then
            ``./data/faces-300w``). It may be absent, an empty folder, or hold a data set
            (replaced only with ``force``).
        progress: show a progress bar (on stderr).
        force: replace a data set already in ``dest``.

    Returns:
        Faces written per part and the names of the faces dropped; ``report.root`` is ``dest``.

    Raises:
        SourceError: see :func:`find_faces` and :func:`read_pts`; also a photo that cannot be read.
        DestinationError: ``dest`` is a file, a non-empty folder without a data set, or holds a
            data set and ``force`` is not set.
    """
    dest = Path(os.path.abspath(resolve_300w_dir(dest)))
    faces = find_faces(src)
    if check_destination(dest) and not force:
        raise DestinationError(f"{dest} already holds a data set: --force replaces it")
    counts: Counter[str] = Counter()
    dropped: list[str] = []
    rows: dict[str, list[tuple[str, np.ndarray]]] = {split: [] for split in SPLITS}
    with staged_folder(dest) as staging:
        for split in SPLITS:
            (staging / split).mkdir()
        photo_path, photo = None, None
        for face in tqdm(faces, unit="face", desc="cropping", disable=not progress, mininterval=PROGRESS_MININTERVAL_S):
            points = read_pts(face.pts)
            if face.image != photo_path:  # the faces of one photo come one after another
                try:
                    photo, photo_path = load_image(face.image, exif_transpose=False), face.image
                except ImageReadError as error:
                    raise SourceError(str(error)) from None
            assert photo is not None  # read for the first face: photo_path starts as None
            result = crop_face(photo, points)
            if result is None:
                dropped.append(face.name)
                continue
            crop, keypoints = result
            Image.fromarray(crop).save(staging / face.part.split / face.name, "JPEG", quality=JPEG_QUALITY)
            rows[face.part.split].append((face.name, keypoints))
            counts[face.part.prefix] += 1
        for split in SPLITS:
            write_keypoints_csv(staging / CSV_NAMES[split], rows[split])
    return PrepareReport(dest, {part.prefix: counts[part.prefix] for part in PARTS}, tuple(dropped))
