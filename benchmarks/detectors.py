"""The table's face detectors against each other: rolled faces, a group photo, and the time of ``fkp detect`` on one photo.

1. Rolled faces: the first ``--faces`` labelled YouTube test images, each turned by 0, 15, 30, 45,
   60 and 90 deg (:func:`fkp.geometry.rotate_image`). A face is found when a box covers at least half
   of the tight box of its turned points and is at most 2.5 times its side; other boxes are false faces.
2. A group photo built from 8 test images tiled on a 1600 x 900 canvas, each scaled (0.45-0.95 of its cell) and
   turned (-12 to 12 deg): faces found and false faces.
3. ``fkp detect PHOTO --detector D [--rotations R]`` on the group photo, run ``--repeat`` times in a fresh process each: median wall time.

Every detector of :mod:`fkp.detectors.registry` is built as ``fkp detect --detector NAME`` builds it;
one that takes ``rotations`` is run with each of them: "LABEL-never" (``--rotations never``: the image
only), "LABEL" (the default, ``auto``: the turned copies of :data:`fkp.detectors.yunet.ROTATIONS`
only when the image shows no face) and "LABEL-always". Run on one core: ``OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/detectors.py``.
Needs ``$FKP_DATA_DIR`` and YuNet's file (``$FKP_MODELS_DIR`` or ``fkp models download``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from fkp.boxes import box_overlap
from fkp.data import read_image
from fkp.detectors import FaceDetector, detector_names, detector_spec, make_detector
from fkp.geometry import keypoints_box, rotate_image
from fkp.keypoints_csv import read_keypoints_csv
from fkp.landmarks import NUM_KEYPOINTS
from fkp.utils import resolve_data_dir

ANGLES = (0, 15, 30, 45, 60, 90)


def matches(boxes: np.ndarray, faces: np.ndarray) -> tuple[int, int]:
    """(faces found, false boxes) for detector ``boxes`` (N, 4) against faces' tight boxes (M, 4)."""
    if len(boxes) == 0:
        return 0, 0
    inter = box_overlap(faces, boxes, over="min") * np.minimum(
        (faces[:, 2] * faces[:, 3])[:, None], (boxes[:, 2] * boxes[:, 3])[None]
    )
    cover = inter / (faces[:, 2] * faces[:, 3])[:, None]  # (M, N) fraction of each face box covered
    size_ok = np.maximum(boxes[:, 2], boxes[:, 3])[None] <= 2.5 * np.maximum(faces[:, 2], faces[:, 3])[:, None]
    good = (cover >= 0.5) & size_ok
    return int(good.any(axis=1).sum()), int((~good.any(axis=0)).sum())


def test_faces(root: Path, count: int | None) -> tuple[list[np.ndarray], np.ndarray]:
    """The first ``count`` YouTube test faces (all for None): (H, W, 3) RGB images and (N, 68, 2) keypoints."""
    names, keypoints = read_keypoints_csv(root / "test_frames_keypoints.csv")
    names, keypoints = names[:count], keypoints[:count].reshape(-1, NUM_KEYPOINTS, 2)
    return [read_image(root / "test" / name) for name in names], keypoints


def detect_turned(
    detector: FaceDetector, images: list[np.ndarray], keypoints: np.ndarray, angle: int
) -> tuple[int, int, float]:
    """(faces found, false boxes, seconds in ``detector.detect``) on ``images`` turned by ``angle`` degrees."""
    found = false = 0
    seconds = 0.0
    for image, points in zip(images, keypoints):
        turned, turned_points = rotate_image(image, points, angle)
        start = time.perf_counter()
        boxes = detector.detect(turned)
        seconds += time.perf_counter() - start
        hit, extra = matches(boxes, keypoints_box(turned_points)[None])
        found, false = found + hit, false + extra
    return found, false, seconds


def rolled_faces(detectors: dict, root: Path, count: int) -> None:
    images, keypoints = test_faces(root, count)
    print(f"Rolled faces: {len(images)} YouTube test faces turned in the image plane (found / false boxes, ms per image)")
    print(f"{'detector':12s} " + " ".join(f"{f'{a} deg':>16s}" for a in ANGLES))
    for label, detector in detectors.items():
        cells = []
        for angle in ANGLES:
            found, false, seconds = detect_turned(detector, images, keypoints, angle)
            cells.append(f"{found:3d} {100 * found / len(images):5.1f}% {false:2d} {1000 * seconds / len(images):3.0f}")
        print(f"{label:12s} " + " ".join(f"{c:>16s}" for c in cells))


def group_photo(root: Path, count: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A 1600 x 900 canvas of ``count`` test images, scaled and turned: (image, (count, 4) face boxes)."""
    rng = np.random.default_rng(7)
    names, keypoints = read_keypoints_csv(root / "test_frames_keypoints.csv")
    picks = rng.choice(len(names), count, replace=False)
    canvas = cv2.GaussianBlur(rng.integers(40, 220, (900, 1600, 3), dtype=np.uint8), (0, 0), 6)
    faces = []
    cell_w, cell_h = 1600 // 4, 900 // 2
    for slot, index in enumerate(picks):
        image = read_image(root / "test" / names[index])
        points = keypoints[index].reshape(-1, 2)
        turned, points = rotate_image(image, points, rng.uniform(-12, 12))
        scale = rng.uniform(0.45, 0.95) * min(cell_w / turned.shape[1], cell_h / turned.shape[0])
        turned = cv2.resize(turned, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        points = points * scale
        x = (slot % 4) * cell_w + rng.integers(0, cell_w - turned.shape[1] + 1)
        y = (slot // 4) * cell_h + rng.integers(0, cell_h - turned.shape[0] + 1)
        mask = turned.sum(axis=2) > 0  # the turned photo, not its black corners
        region = canvas[y : y + turned.shape[0], x : x + turned.shape[1]]
        region[mask] = turned[mask]
        faces.append(keypoints_box(points + [x, y]))
    return canvas, np.stack(faces)


def detect_command_time(photo: Path, options: list[str], repeat: int, folder: Path) -> float:
    """Median wall time of ``fkp detect photo OPTIONS`` in a fresh process."""
    command = [sys.executable, "-m", "fkp", "detect", str(photo), *options, "-o", str(folder / "out.png"), "--overwrite"]
    subprocess.run(command, check=True, capture_output=True)  # cold start (disk caches) aside
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=200, help="rolled YouTube test faces (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of fkp detect per detector (default 5)")
    args = parser.parse_args()
    root = resolve_data_dir()
    detectors: dict[str, FaceDetector] = {}
    commands: list[list[str]] = []
    for name in detector_names():
        spec = detector_spec(name)
        if "rotations" in spec.options:
            detectors[f"{spec.label}-never"] = make_detector(name, rotations="never")
            commands.append(["--detector", name, "--rotations", "never"])
        detectors[spec.label] = make_detector(name)
        commands.append(["--detector", name])
        if "rotations" in spec.options:
            detectors[f"{spec.label}-always"] = make_detector(name, rotations="always")
            commands.append(["--detector", name, "--rotations", "always"])
    rolled_faces(detectors, root, args.faces)

    canvas, faces = group_photo(root)
    print(f"\nGroup photo: {canvas.shape[1]}x{canvas.shape[0]}, {len(faces)} faces, turned up to 12 deg")
    for label, detector in detectors.items():
        found, false = matches(detector.detect(canvas), faces)
        print(f"{label:12s} {found}/{len(faces)} faces found, {false} false faces")

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        photo = folder / "group.png"
        cv2.imwrite(str(photo), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        print(f"\nfkp detect on the group photo, fresh process each run, median of {args.repeat}:")
        for options in commands:
            print(f"{' '.join(options):28s} {detect_command_time(photo, options, args.repeat, folder):.2f} s")


if __name__ == "__main__":
    main()
