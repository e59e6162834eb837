"""``fkp video`` speed and keypoint jitter: tracking with YuNet against Haar on every frame.

The script builds a 640 x 480, 300-frame clip (30 frames/s) from a YouTube test image: 100 frames
still, then 200 frames in which the face moves, turns (up to 30 deg) and grows and shrinks. Each
configuration runs :func:`fkp.video.annotate_video` end to end (decode, detection, keypoints,
smoothing, drawing, encoding; the model loaded before the clock starts) ``--repeat`` times and
prints the median frames/s, and the jitter: the mean frame-to-frame motion of the 68 points over
the still frames, in pixels, over all of them and after the first 10 (while the smoothing settles
on a new track). Run on one core::

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/video_tracking.py

Needs ``$FKP_DATA_DIR`` and YuNet's file (``$FKP_MODELS_DIR`` or ``fkp models download``).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
from pathlib import Path

import cv2
import numpy as np

from fkp.data import read_image
from fkp.detectors import make_detector
from fkp.keypoints_csv import read_keypoints_csv
from fkp.predict import load_model
from fkp.predictor import KeypointPredictor
from fkp.utils import resolve_data_dir
from fkp.video import annotate_video, default_render

WIDTH, HEIGHT, FRAMES, STILL, FPS = 640, 480, 300, 100, 30.0


def make_clip(path: Path, face: np.ndarray) -> None:
    """Write the test clip: ``face`` (RGB) pasted on a plain textured background, still then moving."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(60, 200, (HEIGHT, WIDTH, 3), dtype=np.uint8), (0, 0), 8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    side = face.shape[0]
    for t in range(FRAMES):
        phase = max(0, t - STILL) / (FRAMES - STILL)  # 0 while still, then 0 -> 1
        angle = 30 * np.sin(2 * np.pi * phase)
        scale = (200 / side) * (1 + 0.3 * np.sin(4 * np.pi * phase))
        centre = (WIDTH / 2 + 150 * np.sin(2 * np.pi * phase), HEIGHT / 2 + 40 * np.sin(6 * np.pi * phase))
        affine = cv2.getRotationMatrix2D((side / 2, side / 2), -angle, scale)
        affine[:, 2] += np.array(centre) - np.array([side / 2, side / 2])
        warped = cv2.warpAffine(face, affine, (WIDTH, HEIGHT))
        mask = cv2.warpAffine(np.ones(face.shape[:2], np.uint8), affine, (WIDTH, HEIGHT)) > 0
        frame = background.copy()
        frame[mask] = warped[mask]
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


SETTLE = 10


def run(
    clip: Path, out: Path, detector, model: KeypointPredictor, detect_every: int | None
) -> tuple[float, float, float, int, int]:
    """(frames/s, jitter px on the still frames, the same after SETTLE frames, frames with no face,
    detector runs) of one run."""
    points: list[np.ndarray | None] = []

    def render(frame: np.ndarray, faces: list) -> np.ndarray:
        points.append(faces[0].keypoints.copy() if len(faces) == 1 else None)
        return default_render(frame, faces)

    stats = annotate_video(
        clip, out, render=render, detector=detector, model=model, progress=False, detect_every=detect_every
    )
    still = points[:STILL]
    steps = [np.linalg.norm(b - a, axis=1).mean() if a is not None and b is not None else np.nan
             for a, b in itertools.pairwise(still)]
    return (stats.frames_per_second, float(np.nanmean(steps)), float(np.nanmean(steps[SETTLE:])),
            sum(p is None for p in points), stats.detector_runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration; the median is printed")
    args = parser.parse_args()
    root = resolve_data_dir()
    names, _ = read_keypoints_csv(root / "test_frames_keypoints.csv")
    face = read_image(root / "test" / names[0])
    side = min(face.shape[:2])
    face = np.ascontiguousarray(face[:side, :side])
    model = load_model()  # loaded once, before any clock
    configs = {
        "Haar, every frame (before)": (make_detector("haar"), None),
        "YuNet, every frame": (make_detector("yunet"), None),
        "YuNet, tracking (default)": (make_detector("yunet"), 10),
        "YuNet --rotations never, tracking": (make_detector("yunet", rotations="never"), 10),
        "Haar, tracking": (make_detector("haar"), 10),
    }
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        make_clip(clip, face)
        print(f"clip: {WIDTH}x{HEIGHT}, {FRAMES} frames ({STILL} still), face image {names[0]}")
        print(f"{'configuration':38s} {'frames/s':>9s} {'jitter px':>10s} {f'after {SETTLE}':>9s} "
              f"{'no face':>8s} {'detector runs':>14s}")
        for label, (detector, every) in configs.items():
            results = [run(clip, Path(folder) / "out.mp4", detector, model, every) for _ in range(args.repeat)]
            fps = statistics.median(r[0] for r in results)
            _, jitter, settled, missing, runs = results[0]
            print(f"{label:38s} {fps:9.1f} {jitter:10.4f} {settled:9.4f} {missing:8d} {runs:14d}")


if __name__ == "__main__":
    main()
