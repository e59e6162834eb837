"""Keypoints on every frame of a video or a webcam stream, smoothed over time, written as a video.

:func:`annotate_video` reads frames with OpenCV and hands each to one
:class:`fkp.tracking.FaceTracker`, which follows each face with its own keypoints (running the
detector only every few frames, by default) and smooths them; each frame and its faces then go to a
``render`` function whose picture goes into the output video.
The default render draws boxes and keypoints; ``fkp filter`` passes its own to put overlays on faces.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fkp.annotate import draw_faces
from fkp.detectors import FaceDetector
from fkp.face import Face
from fkp.predictor import KeypointPredictor
from fkp.smoothing import DEFAULT_SMOOTHING
from fkp.tracking import DETECT_EVERY, FaceTracker
from fkp.utils import PROGRESS_MININTERVAL_S, atomic_output

Render = Callable[[np.ndarray, list[Face]], np.ndarray]
"""``render(frame, faces) -> frame``: frame (H, W, 3) uint8 RGB, faces in its pixels; returns the
picture to write, (H, W, 3) uint8 RGB of the same size."""

FOURCC_BY_SUFFIX: dict[str, str] = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
"""Codec for each output container; both work in the opencv-python(-headless) wheels."""
CAMERA_FPS = 30.0
"""Frame rate assumed for a camera that does not report one."""


class VideoReadError(ValueError):
    """A video file or camera that cannot be opened or decoded; the message names it."""


@dataclass(frozen=True)
class VideoStats:
    """What :func:`annotate_video` did.

    Attributes:
        frames: frames read and written.
        faces: faces found, summed over frames.
        seconds: wall time of the whole run (decoding, detection, keypoints, drawing, encoding).
        faces_per_second: ``faces / seconds``.
        detector_runs: frames the face detector ran on.
    """

    frames: int
    faces: int
    seconds: float
    faces_per_second: float
    detector_runs: int = 0

    @property
    def frames_per_second(self) -> float:
        """Frames processed per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def default_render(frame: np.ndarray, faces: list[Face]) -> np.ndarray:
    """Draw boxes, keypoints and region outlines (:func:`fkp.annotate.draw_faces`)."""
    return draw_faces(frame, faces)


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence what OpenCV and FFmpeg print straight to file descriptor 2 (Python's own stderr is kept)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _open_source(source: str | os.PathLike[str] | int) -> tuple[cv2.VideoCapture, str]:
    """Open a video file or camera; OpenCV's own warnings are silenced (the error names the source)."""
    if not isinstance(source, int):
        path = Path(source)
        if not path.is_file():
            raise VideoReadError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    with _quiet_native_stderr():
        if isinstance(source, int):
            capture, name = cv2.VideoCapture(source), f"camera {source}"
        else:
            capture, name = cv2.VideoCapture(str(source)), str(source)
    if not capture.isOpened():
        capture.release()
        raise VideoReadError(f"{name}: cannot open as a video")
    return capture, name


def annotate_video(
    source: str | os.PathLike[str] | int,
    output: str | os.PathLike[str],
    *,
    detector: FaceDetector,
    model: KeypointPredictor,
    render: Render | None = None,
    smoothing: float = DEFAULT_SMOOTHING,
    progress: bool = True,
    max_frames: int | None = None,
    detect_every: int | None = DETECT_EVERY,
) -> VideoStats:
    """Find, smooth and draw faces on every frame of a video, and write the result.

    Args:
        source: a video file, or an int camera index (read until ``max_frames`` or Ctrl-C).
        output: the video to write; ``.mp4`` (codec mp4v) or ``.avi`` (Motion JPEG). It is written
            under a temporary name and renamed when complete, so a failed run leaves none behind.
        detector: face detector, e.g. ``fkp.detect.make_detector("auto")``.
        model: keypoint model, e.g. ``fkp.predict.load_model()``.
        render: ``render(frame, faces) -> frame`` on RGB frames; default :func:`default_render`.
        smoothing: strength of temporal smoothing (:mod:`fkp.smoothing`); 0 turns it off.
        progress: show a tqdm progress bar on stderr.
        max_frames: stop after this many frames (None: the whole video).
        detect_every: track faces by their keypoints and run the detector every this many frames
            (and whenever a track is lost; :class:`fkp.tracking.FaceTracker`); None runs the
            detector on every frame and the model on its boxes.

    Returns:
        :class:`VideoStats` with frame and face counts, wall time and faces per second.

    Raises:
        VideoReadError: the source cannot be opened or has no frame.
        ValueError: ``render`` returned a picture of another shape, or the output cannot be written.
    """
    render = default_render if render is None else render
    tracker = FaceTracker(detector, model, detect_every=detect_every, smoothing=smoothing)
    output = Path(output)
    fourcc = FOURCC_BY_SUFFIX.get(output.suffix.lower())
    if fourcc is None:
        raise ValueError(f"{output}: unsupported video type; use one of {', '.join(sorted(FOURCC_BY_SUFFIX))}")

    capture, name = _open_source(source)
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and fps > 0 and math.isfinite(fps) else CAMERA_FPS
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if not isinstance(source, int) else 0
    if max_frames is not None:
        total = min(total, max_frames) if total > 0 else max_frames
    writer: cv2.VideoWriter | None = None
    frames = faces_found = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total or None, unit="frame", desc=output.name, leave=False, mininterval=PROGRESS_MININTERVAL_S)
    start = time.perf_counter()
    with atomic_output(output) as partial:  # in place only once the video is complete
        try:
            try:
                while max_frames is None or frames < max_frames:
                    ok, bgr = capture.read()
                    if not ok:
                        break
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    # a file's frames are 1/fps apart; a camera's arrive when processing allows
                    timestamp = time.perf_counter() - start if isinstance(source, int) else frames / fps
                    faces = tracker(rgb, timestamp)
                    picture = np.asarray(render(rgb, faces))
                    if picture.shape != rgb.shape or picture.dtype != np.uint8:
                        raise ValueError(f"render returned {picture.shape} {picture.dtype}, expected {rgb.shape} uint8")
                    if writer is None:
                        height, width = rgb.shape[:2]
                        writer = cv2.VideoWriter(str(partial), cv2.VideoWriter.fourcc(*fourcc), fps, (width, height))
                        if not writer.isOpened():
                            raise ValueError(f"{output}: cannot write a {fourcc} video there")
                    writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
                    frames += 1
                    faces_found += len(faces)
                    if bar is not None:
                        bar.update(1)
            except KeyboardInterrupt:
                if not isinstance(source, int):
                    raise  # Ctrl-C ends a camera recording and keeps it; a file run is abandoned
            if writer is None:
                raise VideoReadError(f"{name}: no frame could be read")
        finally:
            capture.release()
            if writer is not None:
                writer.release()
            if bar is not None:
                bar.close()
    seconds = time.perf_counter() - start
    rate = faces_found / seconds if seconds > 0 else 0.0
    return VideoStats(frames, faces_found, seconds, rate, tracker.detector_runs)
