"""The whole pipeline's speed, side by side on one core: fkp's default against its variants and dlib.

1. The 554 300-W common test photos (``$FKP_300W_DIR/test``, names ``lfpw_test_*`` and
   ``helen_test_*``), decoded beforehand: ms per photo for the pipeline (detector and keypoints)
   and for its detector alone, and the photos whose face is found (a box covering at least half of
   the tight box of its labelled points; ``benchmarks/detectors.py``'s rule). Rows: fkp's default
   (YuNet, ``--rotations auto``), YuNet on the photo only (``never``), YuNet with the turned copies
   on every photo (``always``), Haar, and dlib's HOG detector (upsampled once) with its 68-point
   shape predictor.
2. The YouTube test faces (``$FKP_DATA_DIR/test``) turned by 0 to 90 degrees
   (:func:`fkp.geometry.rotate_image`): faces found with the default settings.
3. A 640 x 480 webcam-size frame with one face (the astronaut on a grey canvas), end to end with
   the detector on every frame, as ``fkp video --detect-every 1`` (the tracker also runs the model
   on the track) and ``--no-tracking`` run it, at YuNet's default size and with ``--max-side 320``:
   colour conversion, detector, keypoints, smoothing, drawing, and back to BGR (no video encoding).
4. ``fkp detect PHOTO`` cold: a fresh process per run, YuNet's file in the user cache (a temporary
   ``$XDG_CACHE_HOME``): median wall time.
5. Where the time goes on one photo and on one webcam frame: each step timed alone.

One core: ``cv2.setNumThreads(1)`` and onnxruntime with one thread; run it as
``OMP_NUM_THREADS=1 python benchmarks/pipeline_speed.py``. Needs ``$FKP_300W_DIR``,
``$FKP_DATA_DIR``, YuNet's file (``$FKP_MODELS_DIR`` or the cache), and for the dlib row
``dlib`` and ``face_recognition_models``.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from fkp.annotate import draw_faces
from fkp.boxes import shrink_to_max_side
from fkp.data import read_image
from fkp.detect import Landmarker
from fkp.detectors import make_detector
from fkp.detectors.yunet import MODELS_DIR_ENV, YUNET_FILE, find_yunet
from fkp.geometry import keypoints_box
from fkp.images import load_image
from fkp.keypoints_csv import read_keypoints_csv
from fkp.landmarks import NUM_KEYPOINTS
from fkp.predict import load_model
from fkp.tracking import FaceTracker
from fkp.utils import resolve_data_dir

sys.path.insert(0, str(Path(__file__).parent))
from detectors import detect_turned, matches, test_faces  # noqa: E402  - the found-face rule and rolled-face count of the detector benchmark

ANGLES = (0, 15, 30, 45, 60, 90)
COMMON_TEST = ("lfpw_test_", "helen_test_")
"""The 300-W common test subset: 554 photos."""


def ms(seconds: float, count: int) -> float:
    return 1000 * seconds / max(count, 1)


def common_test_photos(root: Path) -> tuple[list[Path], list[np.ndarray], np.ndarray]:
    """The 300-W common test photos: paths, decoded (H, W, 3) uint8 RGB images, (N, 4) tight face boxes."""
    names, keypoints = read_keypoints_csv(root / "test_frames_keypoints.csv")
    picks = [i for i, name in enumerate(names) if name.startswith(COMMON_TEST)]
    paths = [root / "test" / names[i] for i in picks]
    boxes = np.stack([keypoints_box(points) for points in keypoints[picks].reshape(-1, NUM_KEYPOINTS, 2)])
    return paths, [read_image(path) for path in paths], boxes


class DlibPipeline:
    """dlib's HOG face detector (upsampled once) and its 68-point shape predictor, timed in two parts."""

    def __init__(self) -> None:
        import dlib
        import face_recognition_models

        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

    def detect(self, image: np.ndarray) -> np.ndarray:
        rects = self.detector(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 1)
        return np.array([[r.left(), r.top(), r.width(), r.height()] for r in rects], np.float32).reshape(-1, 4)

    def points(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        rects = [self._dlib.rectangle(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in boxes]
        shapes = [self.predictor(image, rect) for rect in rects]
        return np.array([[(p.x, p.y) for p in shape.parts()] for shape in shapes], np.float32)


def photo_table(images: list[np.ndarray], faces: np.ndarray, model) -> None:
    print(
        f"1. 300-W common test photos: {len(images)} (longer side at most {max(max(i.shape[:2]) for i in images)} px)"
    )
    print(f"{'pipeline':40s} {'ms per photo':>12s} {'detector':>9s} {'found':>9s}")
    rows: dict[str, tuple[Callable, Callable]] = {}
    for label, rotations in (
        ("fkp default (YuNet, --rotations auto)", "auto"),
        ("fkp YuNet on the photo only (never)", "never"),
        ("fkp YuNet, turned copies always", "always"),
    ):
        detector = make_detector("yunet", rotations=rotations)
        rows[label] = (detector.detect_faces, _fkp_points(model))
    haar = make_detector("haar")
    rows["fkp Haar"] = (haar.detect_faces, _fkp_points(model))
    try:
        dlib_pipeline = DlibPipeline()
        rows["dlib HOG (upsample 1) + 68 points"] = (dlib_pipeline.detect, dlib_pipeline.points)
    except ImportError as error:
        print(f"(no dlib row: {error})")
    for label, (detect, points) in rows.items():
        detect(images[0]), points(images[0], np.array([[60, 60, 120, 120]], np.float32))  # warm up
        detector_s = total_s = 0.0
        found = 0
        for image, face in zip(images, faces):
            start = time.perf_counter()
            result = detect(image)
            middle = time.perf_counter()
            boxes = getattr(result, "boxes", result)
            if len(boxes):
                points(image, result)
            end = time.perf_counter()
            detector_s += middle - start
            total_s += end - start
            found += matches(boxes, face[None])[0]
        print(
            f"{label:40s} {ms(total_s, len(images)):12.1f} {ms(detector_s, len(images)):9.1f} {found:5d}/{len(images)}"
        )


def _fkp_points(model) -> Callable:
    """The keypoint half of :class:`fkp.detect.Landmarker`: the detector's boxes and roll to the model."""

    def points(image: np.ndarray, found) -> np.ndarray:
        boxes = getattr(found, "boxes", found)
        angles = getattr(found, "angles", None)
        angles = None if angles is None or np.isnan(angles).all() else angles
        return model.predict(image, boxes, angles=angles)

    return points


def rolled_table(root: Path, count: int | None) -> None:
    images, keypoints = test_faces(root, count)
    detector = make_detector("yunet")
    print(f"\n2. {len(images)} YouTube test faces turned in the image plane, default settings (--rotations auto)")
    print(f"{'degrees':>8s} {'found':>14s} {'ms per image':>13s}")
    for angle in ANGLES:
        found, _, seconds = detect_turned(detector, images, keypoints, angle)
        print(f"{angle:8d} {found:5d} {100 * found / len(images):6.1f}% {ms(seconds, len(images)):13.1f}")


def webcam_frame() -> np.ndarray:
    """(480, 640, 3) uint8 BGR: the astronaut, 400 px high, on a grey 640 x 480 canvas, as a camera gives it."""
    from fkp.samples import astronaut

    face = cv2.resize(astronaut(), (400, 400), interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[40:440, 120:520] = face
    return cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)


def webcam_row(model, frames: int) -> None:
    bgr = webcam_frame()
    print("\n3. 640x480 webcam frame, one face, the detector on every frame, end to end:")
    rows = (
        ("--detect-every 1", 640, True),
        ("--detect-every 1 --max-side 320", 320, True),
        ("--no-tracking", 640, False),
        ("--no-tracking --max-side 320", 320, False),
    )
    for label, max_side, tracking in rows:
        tracker = FaceTracker(make_detector("yunet", max_side=max_side), model, detect_every=1 if tracking else None)
        times = []
        found = 0
        for index in range(frames + 5):
            start = time.perf_counter()
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            faces = tracker(rgb, index / 30)
            out = cv2.cvtColor(draw_faces(rgb, faces), cv2.COLOR_RGB2BGR)
            times.append(time.perf_counter() - start)
            found += len(faces)
            assert out.shape == bgr.shape
        times = times[5:]  # warm-up aside
        print(
            f"   {label:34s} {1000 * statistics.median(times):5.1f} ms median ({1000 * float(np.mean(times)):.1f} mean) "
            f"over {frames} frames, {found / (frames + 5):.2f} faces per frame"
        )


def empty_frame_row(repeat: int) -> None:
    """The detector alone on a 640x480 frame with no face: what ``auto``'s turned copies cost where they find nothing."""
    from fkp.samples import coffee

    empty = cv2.resize(coffee(), (640, 480), interpolation=cv2.INTER_AREA)  # a cup of coffee, no face
    cells = []
    for rotations in ("never", "auto", "always"):
        detector = make_detector("yunet", rotations=rotations)
        found = len(detector.detect(empty))
        cells.append(
            f"{rotations} {ms(_time(functools.partial(detector.detect, empty), repeat), repeat):.1f} ms ({found} found)"
        )
    print(f"   the detector alone on a 640x480 photo with no face (coffee): {', '.join(cells)}")


def cold_detect(photo: Path, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        cache = folder / "xdg" / "fkp" / "models"
        cache.mkdir(parents=True)
        shutil.copy(find_yunet(), cache / YUNET_FILE)
        env = {key: value for key, value in os.environ.items() if key != MODELS_DIR_ENV}
        env.update(XDG_CACHE_HOME=str(folder / "xdg"), FKP_OFFLINE="1", OMP_NUM_THREADS="1")
        command = [sys.executable, "-m", "fkp", "detect", str(photo), "-o", str(folder / "out.png"), "--overwrite"]
        subprocess.run(command, check=True, capture_output=True, env=env)  # disk caches warm
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            run = subprocess.run(command, check=True, capture_output=True, env=env, text=True)
            times.append(time.perf_counter() - start)
        import_s = subprocess.run(
            [
                sys.executable,
                "-c",
                "import time; t = time.perf_counter(); import fkp.cli.detect, fkp.predict, "
                "fkp.detectors, onnxruntime; print(time.perf_counter() - t)",
            ],
            check=True,
            capture_output=True,
            env=env,
            text=True,
        ).stdout
    print(
        f"\n4. fkp detect on one photo, cold (fresh process, YuNet in the cache): {statistics.median(times):.2f} s "
        f"median of {repeat} (imports alone: {float(import_s):.2f} s); stderr: {run.stderr.strip()!r}"
    )


def profile(label: str, steps: dict[str, Callable[[], object]], repeat: int) -> None:
    """Time each step alone, ``repeat`` times; print the median ms of each and their sum."""
    medians = {}
    for step, call in steps.items():
        call()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        medians[step] = 1000 * statistics.median(times)
    total = sum(medians.values())
    print(f"\n5. Where the time goes, {label} (median of {repeat}, each step alone): {total:.2f} ms in all")
    for step, value in medians.items():
        print(f"   {step:44s} {value:7.2f} ms {100 * value / total:5.1f}%")


def profiles(photo: Path, model, repeat: int) -> None:
    detector = make_detector("yunet")
    profile_one(
        "one 300-W photo",
        load_image(photo),
        ("decode the file (fkp.images.load_image)", lambda: load_image(photo)),
        detector,
        model,
        repeat,
    )
    bgr = webcam_frame()
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    camera = ("camera frame BGR -> RGB", lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    profile_one("one 640x480 webcam frame", rgb, camera, detector, model, repeat)


def profile_one(
    label: str, rgb: np.ndarray, decode: tuple[str, Callable[[], object]], detector, model, repeat: int
) -> None:
    """Time each step of the pipeline on ``rgb`` alone, then the wholes."""
    from fkp.geometry import crop_to_image

    found = detector.detect_faces(rgb)
    small, _ = shrink_to_max_side(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), detector.max_side)
    net = detector._net
    crops, affines = model.crops(rgb, found.boxes, found.angles)
    raw = model.predict_crops(crops)
    faces = Landmarker(detector, model)(rgb)
    steps = {
        decode[0]: decode[1],
        "RGB -> BGR for YuNet": lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        "YuNet network (cv2.FaceDetectorYN.detect)": lambda: net.detect(small),
        "crop the face, grayscale (model.crops)": lambda: model.crops(rgb, found.boxes, found.angles),
        "keypoint network, first pass": lambda: model.predict_crops(crops),
        "points back to the image": lambda: crop_to_image(raw, affines, model.input_size),
        "draw the faces (fkp.annotate.draw_faces)": lambda: draw_faces(rgb, faces),
    }
    profile(label, steps, repeat)
    detect_ms = ms(_time(lambda: detector.detect_faces(rgb), repeat), repeat)
    predict_ms = ms(_time(lambda: model.predict(rgb, found.boxes, angles=found.angles), repeat), repeat)
    whole_ms = ms(_time(lambda: Landmarker(detector, model)(rgb), repeat), repeat)
    print(
        f"   as wholes: detector.detect_faces {detect_ms:.2f} ms, model.predict {predict_ms:.2f} ms "
        f"(crops, first pass, and a second pass where the first finds the face rolled), Landmarker {whole_ms:.2f} ms"
    )


def _time(call: Callable[[], object], repeat: int) -> float:
    call()
    start = time.perf_counter()
    for _ in range(repeat):
        call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--faces", type=int, default=None, help="YouTube test faces for the rolled table (default all 770)"
    )
    parser.add_argument("--frames", type=int, default=200, help="webcam frames timed (default 200)")
    parser.add_argument(
        "--repeat", type=int, default=7, help="runs of fkp detect, and of each profiled step (default 7)"
    )
    parser.add_argument("--skip", nargs="*", default=(), choices=("photos", "rolled", "webcam", "cold", "profile"))
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} CPUs")
    model = load_model(threads=1)
    w300 = Path(os.environ["FKP_300W_DIR"])
    paths, images, faces = common_test_photos(w300)
    if "photos" not in args.skip:
        photo_table(images, faces, model)
    if "rolled" not in args.skip:
        rolled_table(resolve_data_dir(), args.faces)
    if "webcam" not in args.skip:
        webcam_row(model, args.frames)
        empty_frame_row(args.repeat)
    if "cold" not in args.skip:
        cold_detect(paths[0], args.repeat)
    if "profile" not in args.skip:
        profiles(paths[0], model, max(args.repeat, 50))
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
