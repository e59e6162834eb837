"""YuNet, a small modern face detector (OpenCV Model Zoo, MIT licence), and its model file.

The ONNX file is not part of fkp: :func:`download_yunet` fetches it from the OpenCV Model Zoo into
the user cache, ``~/.cache/fkp/models`` (``$XDG_CACHE_HOME`` is honoured), and checks its sha256;
``fkp models download`` runs it, and so does the detector table on first use
(:func:`fkp.detectors.registry.make_detector`, unless ``$FKP_OFFLINE`` is set).
``$FKP_MODELS_DIR`` names a folder that already holds it (looked in first, then the cache).
:class:`YuNetFaceDetector` runs it with ``cv2.FaceDetectorYN``.

Rotation: YuNet finds faces rolled up to about 30 degrees on its own. ``rotations="auto"`` (the
default) searches copies of the image turned by :data:`ROTATIONS` (on a smaller copy each) only
when the upright pass finds no face, so upright photos pay for one pass; ``"always"`` searches them on every image (it
also finds a rolled face beside an upright one), ``"never"`` not at all. ``benchmarks/pipeline_speed.py``
measures the three.

YuNet also gives five points per face (the eyes, the nose tip, the mouth corners); the roll of
the eye line is handed to the keypoint model. Those eye points follow only part of a face's roll,
so the model still checks the roll itself (:meth:`fkp.predict.KeypointModel.predict`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

import cv2
import numpy as np

from fkp.boxes import left_to_right, merge_overlapping, shrink_to_max_side
from fkp.detectors.base import Detections, DetectorUnavailableError
from fkp.geometry import apply_affine, invert_affine, roll_degrees, rotate_image
from fkp.images import to_rgb8
from fkp.model_file import sha256_of
from fkp.utils import atomic_output

YUNET_FILE = "face_detection_yunet_2023mar.onnx"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
YUNET_URL = "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/" + YUNET_FILE
"""The OpenCV Model Zoo's copy (Git LFS; GitHub redirects to the file's bytes)."""
MODELS_DIR_ENV = "FKP_MODELS_DIR"
"""Environment variable naming a folder that already holds the detector file (looked in first)."""
ROTATIONS: tuple[float, ...] = (-45.0, 45.0, -90.0, 90.0)
"""The angles (degrees) of the turned copies searched besides the image: with YuNet's own reach of
about 30 degrees, they cover faces rolled by up to about 120 degrees either way. (Two copies at -60
and 60 degrees cost less but find fewer faces rolled by 90, and more false faces.)"""
RotationSearch = Literal["always", "auto", "never"]
"""When :class:`YuNetFaceDetector` searches the turned copies: on every image, only on an image whose
upright pass finds no face, or never."""
ROTATION_SEARCHES: tuple[RotationSearch, ...] = get_args(RotationSearch)
"""The values of :data:`RotationSearch`, for ``--rotations``' choices."""
DOWNLOAD_TIMEOUT_S = 10.0
"""Seconds without an answer before the download on first use gives up (offline, it fails fast)."""
GET_YUNET_HINT = "get it with: fkp models download (or set FKP_MODELS_DIR to a folder that holds it)"


_UNIT = np.array([[0, 0], [1, 0], [0, 1]], np.float32)  # three points that fix an affine map


class ModelFileError(DetectorUnavailableError):
    """The detector's model file is missing, corrupt or cannot be loaded; the message names it."""


def models_cache_dir() -> Path:
    """Where ``fkp models download`` puts model files: ``$XDG_CACHE_HOME/fkp/models``, by default
    ``~/.cache/fkp/models`` (``$FKP_MODELS_DIR`` overrides it for finding the file; see :func:`find_yunet`)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(cache) / "fkp" / "models"


def find_yunet() -> Path:
    """The YuNet file: ``$FKP_MODELS_DIR/<file>`` if that variable is set and the file is there,
    else the cache's copy (:func:`models_cache_dir`).

    When neither exists, the first place looked in is returned (``$FKP_MODELS_DIR``'s when set);
    :func:`check_yunet` checks the file.
    """
    from_env = os.environ.get(MODELS_DIR_ENV)
    cached = models_cache_dir() / YUNET_FILE
    if not from_env:
        return cached
    in_env = Path(from_env).expanduser() / YUNET_FILE
    return cached if not in_env.exists() and cached.is_file() else in_env


def check_yunet(path: str | os.PathLike[str] | None = None) -> Path:
    """The path of a present, intact YuNet file (sha256 checked).

    Raises:
        ModelFileError: the file is missing or its checksum is wrong (the message says how to get it).
    """
    path = find_yunet() if path is None else Path(path)
    if not path.is_file():
        raise ModelFileError(f"YuNet face detector file {path} not found; {GET_YUNET_HINT}")
    if sha256_of(path) != YUNET_SHA256:
        raise ModelFileError(f"YuNet face detector file {path} is corrupt (wrong sha256); {GET_YUNET_HINT}")
    return path


def download_yunet(
    url: str = YUNET_URL,
    dest: str | os.PathLike[str] | None = None,
    progress: bool = True,
    sha256: str = YUNET_SHA256,
    timeout: float | None = None,
) -> Path:
    """Download the YuNet file into ``dest`` (default :func:`models_cache_dir`) and check its sha256.

    The bytes go to a temporary file in ``dest`` that is renamed only once the checksum matches, so a
    failed, interrupted or wrong download leaves nothing behind: neither a file nor a folder it
    created. An intact copy already there is kept.

    Args:
        url: where to download from (any URL urllib opens).
        dest: the folder to put the file in.
        progress: show a progress bar on stderr.
        sha256: the expected checksum.
        timeout: seconds without an answer before giving up; None: :data:`fkp.fetch.TIMEOUT_S`.

    Returns:
        The path of the placed file.

    Raises:
        fkp.fetch.FetchError: the URL could not be read (no network, HTTP error, cut connection).
        ModelFileError: the download's checksum is wrong.
        OSError: ``dest`` cannot be created or written.
    """
    from fkp.fetch import TIMEOUT_S, fetch, removing_new_folders

    folder = models_cache_dir() if dest is None else Path(dest)
    target = folder / YUNET_FILE
    if target.is_file() and sha256_of(target) == sha256:
        return target
    with removing_new_folders(folder), atomic_output(target) as tmp:
        fetch(url, tmp, progress=progress, timeout=TIMEOUT_S if timeout is None else timeout)
        digest = sha256_of(tmp)
        if digest != sha256:
            raise ModelFileError(f"{url}: wrong sha256 {digest[:12]}..., expected {sha256[:12]}...; nothing written")
    return target


def fetch_yunet(notify: Callable[[str], Any]) -> Path:
    """Download the missing YuNet file into the user cache, on first use (the detector table's ``fetch``).

    Shows one line through ``notify`` before it starts; downloads from :data:`YUNET_URL` (read
    when called) with no progress bar and a short timeout (:data:`DOWNLOAD_TIMEOUT_S`), so that
    offline it fails fast.

    Returns:
        The path of the placed file.

    Raises:
        ModelFileError: the download failed or its checksum was wrong (the one-line message says
            how to get the file otherwise); nothing is left behind.
    """
    from fkp.fetch import FetchError

    folder = models_cache_dir()
    notify(f"downloading the YuNet face detector (230 KB, once) from {YUNET_URL} into {folder}")
    try:
        return download_yunet(YUNET_URL, folder, progress=False, timeout=DOWNLOAD_TIMEOUT_S)
    except (FetchError, ModelFileError, OSError) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise ModelFileError(
            f"YuNet face detector file not found and not downloaded ({reason}); {GET_YUNET_HINT}"
        ) from None


class YuNetFaceDetector:
    """YuNet (``cv2.FaceDetectorYN``) as a :class:`~fkp.detectors.base.FaceDetector`, with scores and roll.

    YuNet is trained for faces of about 10 to 300 pixels, so a photo whose longer side is above
    ``max_side`` is searched on a scaled-down copy and the boxes are scaled back.

    Args:
        path: the ONNX file; default :func:`find_yunet`. Checked with :func:`check_yunet`.
        score_threshold: least face score kept, in (0, 1).
        nms_threshold: boxes overlapping more than this (IoU) are merged.
        max_side: longer side of the copy YuNet runs on.
        min_size: smallest face side kept, in pixels of the input image.
        rotations: when to also search copies of the image turned by ``turns``, for faces rolled
            further than YuNet finds on its own (:data:`RotationSearch`): ``"auto"`` only when the
            image itself shows no face, ``"always"`` on every image (a YuNet pass per copy),
            ``"never"``.
        turns: the angles of the turned copies (degrees, clockwise on screen). A face found on a
            turned copy gets its box centre mapped back, its width and height along its own axes,
            and the roll of the copy added to its own.
        turns_max_side: longer side of the copy YuNet runs on for each turned copy (at most
            ``max_side``): strongly rolled faces are rarely small, and a smaller copy costs less,
            which matters on images with no face, where ``"auto"`` searches every turned copy.

    Raises:
        ModelFileError: the model file is missing, corrupt or cannot be loaded.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        max_side: int = 640,
        min_size: int = 10,
        rotations: RotationSearch = "auto",
        turns: tuple[float, ...] = ROTATIONS,
        turns_max_side: int = 320,
    ) -> None:
        if not 0 < score_threshold < 1 or not 0 < nms_threshold <= 1:
            raise ValueError("score_threshold must be in (0, 1) and nms_threshold in (0, 1]")
        if max_side < 32 or turns_max_side < 32 or min_size < 1:
            raise ValueError("max_side and turns_max_side must be >= 32 and min_size >= 1")
        if rotations not in ROTATION_SEARCHES:
            raise ValueError(f"rotations must be one of {', '.join(ROTATION_SEARCHES)}, got {rotations!r}")
        self.path = check_yunet(path)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side
        self.min_size = min_size
        self.rotations: RotationSearch = rotations
        self.turns = tuple(float(degrees) for degrees in turns)
        self.turns_max_side = min(turns_max_side, max_side)
        try:
            self._net = cv2.FaceDetectorYN.create(str(self.path), "", (320, 320), score_threshold, nms_threshold, 5000)
        except cv2.error as error:
            raise ModelFileError(
                f"cannot load {self.path}: {str(error).strip().splitlines()[-1]}; {GET_YUNET_HINT}"
            ) from None
        self._input_size = (320, 320)

    def __repr__(self) -> str:
        return (
            f"YuNetFaceDetector(score_threshold={self.score_threshold}, nms_threshold={self.nms_threshold}, "
            f"max_side={self.max_side}, min_size={self.min_size}, rotations={self.rotations!r}, "
            f"turns={self.turns}, turns_max_side={self.turns_max_side})"
        )

    def detect_faces(self, image: np.ndarray) -> Detections:
        """Find faces with their scores and roll (on turned copies too, as ``rotations`` says).

        Args:
            image: (H, W, 3) uint8 RGB (other layouts go through :func:`fkp.images.to_rgb8`).

        Returns:
            :class:`~fkp.detectors.base.Detections` in pixels of ``image``, left to right; ``scores`` are
            YuNet's (0-1), ``angles`` the roll of the line from the subject's right eye to the left
            (:func:`fkp.geometry.roll_degrees`).
        """
        image = np.asarray(image)
        if not (image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            image = to_rgb8(image)
        found = self._detect_upright(image)
        if self.rotations == "never" or not self.turns or (self.rotations == "auto" and len(found)):
            return found
        boxes, scores, angles = [found.boxes], [found.scores], [found.angles]
        for degrees in self.turns:
            turned, corners = rotate_image(image, _UNIT, degrees)
            more = self._detect_upright(turned, self.turns_max_side)
            back = invert_affine(cv2.getAffineTransform(_UNIT, corners.astype(np.float32)))  # turned -> image
            centres = apply_affine(more.boxes[:, :2] + more.boxes[:, 2:] / 2, back)
            boxes.append(np.concatenate([centres - more.boxes[:, 2:] / 2, more.boxes[:, 2:]], axis=1))
            scores.append(more.scores)
            angles.append((more.angles - degrees + 180.0) % 360.0 - 180.0)
        all_boxes, all_scores, all_angles = np.concatenate(boxes), np.concatenate(scores), np.concatenate(angles)
        kept = merge_overlapping(all_boxes, all_scores, overlap=0.5)
        kept = kept[left_to_right(all_boxes[kept])]
        return Detections(all_boxes[kept], all_scores[kept], all_angles[kept])

    def _detect_upright(self, image: np.ndarray, max_side: int | None = None) -> Detections:
        """One YuNet pass on (H, W, 3) uint8 RGB ``image``, scaled down if its longer side is above
        ``max_side`` (default :attr:`max_side`)."""
        limit = self.max_side if max_side is None else max_side
        bgr, scale = shrink_to_max_side(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), limit)
        size = (bgr.shape[1], bgr.shape[0])
        if size != self._input_size:
            self._net.setInputSize(size)
            self._input_size = size
        _, found = self._net.detect(bgr)
        rows = np.zeros((0, 15), np.float32) if found is None else np.asarray(found, np.float32).reshape(-1, 15)
        rows = rows.copy()
        rows[:, :14] /= scale  # boxes and points back to the input's pixels
        rows = rows[np.minimum(rows[:, 2], rows[:, 3]) >= self.min_size]
        # YuNet's points, as seen in the image: the first eye is on the image's left (the subject's right)
        angles = roll_degrees(rows[:, 4:6], rows[:, 6:8]).astype(np.float32)
        order = left_to_right(rows[:, :4])
        return Detections(rows[order, :4], rows[order, 14], angles[order])

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Find faces: (N, 4) float32 boxes x, y, w, h in pixels of ``image``, left to right."""
        return self.detect_faces(image).boxes
