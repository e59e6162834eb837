"""Aligned faces (fkp.align): how fast, and how steady the eyes sit in the crops, with fkp's points and dlib's.

    pip install -e ".[bench]"
    FKP_300W_DIR=path/to/faces-300w [FKP_MODELS_DIR=...] python benchmarks/align.py [--model PATH] [--limit N]

On the 300-W common test faces (the ``lfpw_test_`` and ``helen_test_`` photos), each face is found
and its 68 points predicted twice: by fkp (``fkp.detect_keypoints`` with ``make_detector("auto")``:
YuNet when its file is found, else Haar) and by dlib (its HOG detector and the 68-point shape
predictor of ``face_recognition_models``, as benchmarks/compare_dlib.py runs them). Detections are
matched to the labelled face by overlap with the box of its points. On the faces both find, every
style of :func:`fkp.align.align_face` is computed from each set of points, and the labelled eye
centres (means of points 36-41 and 42-47) are mapped into the crop. Their spread across faces (the
standard deviation in crop pixels, x and y of both eyes pooled) is what a data set built this way
shows: the smaller, the steadier the points. The row of the labelled points themselves is the floor,
what faces' own shapes leave.

Speed: ``align_face`` alone (points given; no detection), one thread, on the same photos, as aligned
faces per second.
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np
from compare_dlib import Dlib
from tqdm import tqdm

import fkp
from fkp.align import align_face
from fkp.data import FacialKeypointsDataset
from fkp.detect import detect_keypoints, make_detector
from fkp.evaluate import matching_detection
from fkp.geometry import apply_affine, keypoints_box
from fkp.landmarks import region_centre

COMMON_PREFIXES = ("lfpw_test_", "helen_test_")
"""The 300-W common test set: LFPW's and HELEN's test photos."""
SPREAD_STYLES: tuple[tuple[str, int], ...] = (("ffhq", 256), ("arcface", 112))
"""(style, crop side) of each column of the spread table."""
SPEED_STYLES: tuple[tuple[str, int], ...] = (("ffhq", 256), ("ffhq", 1024), ("arcface", 112))
"""(style, crop side) of each column of the speed table."""


def fkp_points(dataset: FacialKeypointsDataset, indices: list[int], model: object) -> dict[int, np.ndarray]:
    """fkp's 68 points of each labelled face its detector finds (index -> (68, 2))."""
    detector = make_detector("auto")
    found: dict[int, np.ndarray] = {}
    for index in tqdm(indices, desc="fkp", leave=False, disable=not sys.stderr.isatty()):
        faces = detect_keypoints(dataset.image(index), detector=detector, model=model)  # type: ignore[arg-type]
        boxes = np.array([face.box for face in faces], dtype=np.float32).reshape(-1, 4)
        match = matching_detection(boxes, keypoints_box(dataset.keypoints[index]))
        if match is not None:
            found[index] = np.asarray(faces[match].keypoints, dtype=np.float64)
    return found


def dlib_points(dataset: FacialKeypointsDataset, indices: list[int]) -> dict[int, np.ndarray]:
    """dlib's 68 points of each labelled face its HOG detector finds (index -> (68, 2))."""
    dlib = Dlib()
    found: dict[int, np.ndarray] = {}
    for index in tqdm(indices, desc="dlib", leave=False, disable=not sys.stderr.isatty()):
        image = dataset.image(index)
        boxes = dlib.detect(image)
        match = matching_detection(boxes, keypoints_box(dataset.keypoints[index]))
        if match is not None:
            found[index] = dlib.predict(image, boxes[match]).astype(np.float64)
    return found


def eye_spread(dataset: FacialKeypointsDataset, points: dict[int, np.ndarray], style: str, size: int) -> float:
    """Std (crop pixels) of the labelled eye centres after aligning each face with ``points``."""
    eyes = []
    for index, keypoints in points.items():
        truth = dataset.keypoints[index].astype(np.float64)
        centres = np.stack([region_centre(truth, "right_eye"), region_centre(truth, "left_eye")])
        _, transform = align_face(np.zeros((2, 2, 3), np.uint8), keypoints, style=style, size=size)  # type: ignore[arg-type]
        eyes.append(apply_affine(centres, transform))
    aligned = np.array(eyes)  # (faces, 2 eyes, 2 coordinates)
    return float(np.sqrt(aligned.var(axis=0).mean()))


def faces_per_second(dataset: FacialKeypointsDataset, points: dict[int, np.ndarray], style: str, size: int) -> float:
    """Aligned faces per second, ``align_face`` alone on decoded photos, one thread."""
    images = {index: dataset.image(index) for index in points}
    start = time.perf_counter()
    for index, keypoints in points.items():
        align_face(images[index], keypoints, style=style, size=size)  # type: ignore[arg-type]
    return len(points) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--limit", type=int, help="only the first N faces (a quick look)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    model = fkp.load_model(args.model, threads=1)
    dataset = FacialKeypointsDataset("300w", "test")
    indices = [i for i, name in enumerate(dataset.names) if name.startswith(COMMON_PREFIXES)][: args.limit]
    sources = {
        "fkp": fkp_points(dataset, indices, model),
        "dlib": dlib_points(dataset, indices),
    }
    common = sorted(set(sources["fkp"]) & set(sources["dlib"]))
    sources["labelled points (floor)"] = {i: dataset.keypoints[i].astype(np.float64) for i in common}
    print(
        f"300-W common test: {len(indices)} faces; fkp finds {len(sources['fkp'])}, dlib {len(sources['dlib'])}, "
        f"both {len(common)} (the rows below)\n"
    )
    print("eye spread: std of the labelled eye centres in the crop, pixels (smaller: steadier)")
    print(_header("points", SPREAD_STYLES))
    for name, points in sources.items():
        shared = {i: points[i] for i in common}
        print(f"{name:26s}" + "".join(f"{eye_spread(dataset, shared, s, n):14.2f}" for s, n in SPREAD_STYLES))
    print("\naligned faces per second, one thread (align_face alone on decoded photos, fkp's points)")
    print(_header("", SPEED_STYLES))
    speed = {i: sources["fkp"][i] for i in common}
    print(f"{'faces/s':26s}" + "".join(f"{faces_per_second(dataset, speed, s, n):14.0f}" for s, n in SPEED_STYLES))


def _header(first: str, styles: tuple[tuple[str, int], ...]) -> str:
    line = f"{first:26s}" + "".join(f"{f'{style} {size}':>14s}" for style, size in styles)
    return line + "\n" + "-" * len(line)


if __name__ == "__main__":
    main()
