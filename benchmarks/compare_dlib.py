"""fkp's default model against dlib's 68-point shape predictor: same faces, same run, one thread.

    pip install -e ".[bench]"
    FKP_DATA_DIR=path/to/facial-keypoints FKP_300W_DIR=path/to/faces-300w \\
        python benchmarks/compare_dlib.py [--model PATH] [--json benchmark.json] [--card fkp/weights/MODEL_CARD.md]

Tables (NME normalised by the outer-eye-corner distance; failure = NME above 8%; AUC of the CED
up to 8%; a detector's missed faces are left out of its row and counted in "found"):

1. 300-W common (554 real photos: LFPW and HELEN test sets), overall and per subset: dlib given
   its own HOG detector's box; fkp given the box of the labelled points, on all faces and on the
   faces dlib's detector finds; fkp given the YuNet detector's box (and its roll) and the Haar
   detector's box. YuNet needs its model file (``FKP_MODELS_DIR`` or ``fkp models download``).
2. The course's YouTube test split (770 frames): dlib with its HOG boxes, with the mean offset
   between its labelling convention and this set's learned on the training split, and fkp with
   ground-truth, YuNet and Haar boxes (fkp is scored in the set's own convention, see fkp.conventions).
3. Rolled heads: every test photo turned by 0-180 degrees, fkp given the box of the turned
   points; dlib's HOG pipeline on the same photos for comparison.
4. Time per face, warm, one face per call, median: fkp and dlib on the same 300-W faces and boxes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

import fkp
from fkp import metrics
from fkp.data import FacialKeypointsDataset, subset_of
from fkp.detectors import detector_names, detector_spec
from fkp.evaluate import box_sources, evaluate, matching_detection
from fkp.geometry import keypoints_box, rotate_image

ROTATIONS = (0, 15, 30, 45, 60, 90, 180)


@dataclass
class Row:
    name: str
    found: int
    total: int
    report: metrics.Report

    def line(self) -> str:
        r = self.report
        return (
            f"{self.name:52s} {self.found:4d}/{self.total:<4d} {r.mean_nme:8.2%} {r.median_nme:8.2%} "
            f"{r.failure_rate:8.1%} {r.auc:7.3f}"
        )


HEADER = f"{'method':52s} {'found':>9s} {'mean NME':>8s} {'median':>8s} {'fail@8%':>8s} {'AUC@8%':>7s}"


def table(rows: list[Row]) -> str:
    return "\n".join([HEADER, "-" * len(HEADER), *(row.line() for row in rows)])


class Dlib:
    """dlib's HOG face detector and 68-point shape predictor (the face-recognition-models file)."""

    def __init__(self) -> None:
        import dlib

        # Found without importing face_recognition_models: its __init__ needs pkg_resources.
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("dlib's model is missing: pip install -e '.[bench]'")
        model = Path(spec.submodule_search_locations[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(model))

    def detect(self, image: np.ndarray) -> np.ndarray:
        rects = self.detector(image, 1)
        return np.array([[r.left(), r.top(), r.width(), r.height()] for r in rects], dtype=np.float32).reshape(-1, 4)

    def predict(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        x, y, w, h = (int(round(v)) for v in box)
        shape = self.predictor(image, self.dlib.rectangle(x, y, x + w, y + h))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def run(self, dataset: FacialKeypointsDataset, rotation: float = 0.0, desc: str = "dlib") -> dict[str, np.ndarray]:
        """dlib's HOG pipeline on every face: indices found, their predictions, truth and boxes."""
        found, predicted, truth, boxes = [], [], [], []
        for index in tqdm(range(len(dataset)), desc=desc, leave=False, disable=not sys.stderr.isatty()):
            image, points = dataset.image(index), dataset.keypoints[index]
            if rotation:
                image, points = rotate_image(image, points, rotation)
            match = matching_detection(detections := self.detect(image), keypoints_box(points))
            if match is None:
                continue
            found.append(index)
            predicted.append(self.predict(image, detections[match]))
            truth.append(points)
            boxes.append(detections[match])
        return {
            "found": np.array(found, int),
            "predicted": np.array(predicted),
            "truth": np.array(truth),
            "boxes": np.array(boxes),
        }


def subset_rows(label: str, errors: np.ndarray, names: list[str], total_by_subset: dict[str, int]) -> list[Row]:
    subsets = np.array([subset_of(name) for name in names])
    return [
        Row(f"  {label}, {subset}", int((subsets == subset).sum()), total, metrics.summarize(errors[subsets == subset]))
        for subset, total in total_by_subset.items()
    ]


def interleaved_ms(
    calls: dict[str, Callable], faces: list[tuple[np.ndarray, np.ndarray]], repeats: int = 3, block: int = 25
) -> dict[str, float]:
    """Median milliseconds of each ``call(image, box)`` over ``faces``, each face ``repeats`` times, warm.

    The calls take turns in blocks of ``block`` faces, in a shuffled order: within a block one
    predictor runs face after face, as in real use (its tables and weights stay in the caches),
    and the turns spread whatever else the machine is doing over all of them alike.
    """
    for image, box in faces[:10]:
        for call in calls.values():
            call(image, box)
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for _ in range(repeats):
        for first in range(0, len(faces), block):
            for k in rng.permutation(len(names)):
                call = calls[names[k]]
                for image, box in faces[first : first + block]:
                    start = time.perf_counter()
                    call(image, box)
                    times[names[k]].append(time.perf_counter() - start)
    return {name: 1000 * float(np.median(values)) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--json", default="benchmark.json", help="where to write the figures")
    parser.add_argument("--no-dlib", action="store_true", help="skip dlib (not installed)")
    parser.add_argument("--card", metavar="PATH", help="also write the model card here (fkp/weights/MODEL_CARD.md)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    model = fkp.load_model(args.model, threads=1)
    float_model = None
    if model.weights_path is not None and importlib.util.find_spec("torch") is not None:
        # The same weights run as a float32 ONNX graph (exported from the safetensors file), for
        # the accuracy and the time that int8 quantisation (fkp.quantize) trades.
        float_model = fkp.load_model(model.weights_path, backend="torch").use_onnx(threads=1)
    dlib = None if args.no_dlib else Dlib()
    w300 = FacialKeypointsDataset("300w", "test").preload(progress=False)  # rows time predictors, not decoding
    youtube = FacialKeypointsDataset("udacity", "test").preload(progress=False)
    figures: dict[str, object] = {}
    sections: list[str] = []

    # 1. 300-W common.
    subsets = {name: sum(1 for s in w300.subsets() if s == name) for name in sorted(set(w300.subsets()))}
    rows: list[Row] = []
    gt = evaluate(model, dataset=w300, boxes="gt", progress=False)
    if dlib is not None:
        ours = dlib.run(w300, desc="dlib on 300-W")
        dlib_errors = metrics.nme(ours["predicted"], ours["truth"])
        rows.append(
            Row(
                "dlib, its HOG detector's box",
                len(dlib_errors),
                len(w300),
                metrics.report(ours["predicted"], ours["truth"]),
            )
        )
        rows += subset_rows("dlib", dlib_errors, [w300.names[i] for i in ours["found"]], subsets)
        found_names = {w300.names[i] for i in ours["found"]}
        same = np.array([name in found_names for name in gt.names])
        rows.append(
            Row(
                "fkp, box of the points, on the faces dlib finds",
                int(same.sum()),
                len(w300),
                metrics.summarize(gt.errors[same]),
            )
        )
        figures["dlib_300w_found"] = ours["found"].tolist()
        dlib_boxes = dict(zip(ours["found"].tolist(), ours["boxes"]))  # for the timing in table 4
    rows.append(Row("fkp, box of the points", gt.found, gt.total, gt.report))
    rows += subset_rows("fkp", gt.errors, gt.names, subsets)
    if float_model is not None:
        exact = evaluate(float_model, dataset=w300, boxes="gt", progress=False)
        rows.append(Row("fkp, float32 network, box of the points", exact.found, exact.total, exact.report))
    for boxes in detector_names():
        found = evaluate(model, dataset=w300, boxes=boxes, progress=False)
        rows.append(Row(f"fkp, {detector_spec(boxes).label} detector's box", found.found, found.total, found.report))
    sections.append("300-W common test set (LFPW + HELEN test, 554 real photos)\n" + table(rows))
    figures["300w"] = [{"name": r.name.strip(), "found": r.found, "total": r.total, **r.report.as_dict()} for r in rows]
    print(sections[-1], "\n", flush=True)

    # 2. YouTube test split.
    rows = []
    if dlib is not None:
        ours = dlib.run(youtube, desc="dlib on YouTube")
        rows.append(
            Row(
                "dlib, its HOG detector's box",
                len(ours["found"]),
                len(youtube),
                metrics.report(ours["predicted"], ours["truth"]),
            )
        )
        train = dlib.run(FacialKeypointsDataset("udacity", "training").preload(progress=False), desc="dlib offset")
        offset = ((train["truth"] - train["predicted"]) / train["boxes"][:, None, 2:3]).mean(
            axis=0
        )  # (68, 2) box sides
        corrected = ours["predicted"] + offset[None] * ours["boxes"][:, None, 2:3]
        rows.append(
            Row(
                "dlib, HOG + its offset to this set learned on training",
                len(ours["found"]),
                len(youtube),
                metrics.report(corrected, ours["truth"]),
            )
        )
    for boxes in box_sources():
        result = evaluate(model, dataset=youtube, boxes=boxes, progress=False)
        label = "box of the points" if boxes == "gt" else f"{detector_spec(boxes).label} detector's box"
        rows.append(Row(f"fkp, {label}", result.found, result.total, result.report))
    sections.append("YouTube test split (770 frames; every person also in training)\n" + table(rows))
    figures["youtube"] = [{"name": r.name, "found": r.found, "total": r.total, **r.report.as_dict()} for r in rows]
    print(sections[-1], "\n", flush=True)

    # 3. Rolled heads.
    lines = [
        f"{'turned by':>10s} {'fkp 300-W':>10s} {'fail':>6s} {'fkp YouTube':>12s} {'fail':>6s} {'dlib HOG 300-W found / NME':>28s}"
    ]
    rotation_figures = []
    for degrees in ROTATIONS:
        a = evaluate(model, dataset=w300, boxes="gt", rotation=degrees, progress=False)
        b = evaluate(model, dataset=youtube, boxes="gt", rotation=degrees, progress=False)
        entry = {"degrees": degrees, "300w": a.report.as_dict(), "youtube": b.report.as_dict()}
        dlib_text = ""
        if dlib is not None:
            ours = dlib.run(w300, rotation=degrees, desc=f"dlib at {degrees} deg")
            dlib_nme = metrics.nme(ours["predicted"], ours["truth"]).mean() if len(ours["found"]) else float("nan")
            dlib_text = f"{len(ours['found']):>4d}/{len(w300)} {dlib_nme:7.2%}"
            entry["dlib_300w_found"], entry["dlib_300w_mean_nme"] = len(ours["found"]), float(dlib_nme)
        rotation_figures.append(entry)
        lines.append(
            f"{degrees:>8d}° {a.report.mean_nme:10.2%} {a.report.failure_rate:6.1%} {b.report.mean_nme:12.2%} "
            f"{b.report.failure_rate:6.1%} {dlib_text:>28s}"
        )
    sections.append(
        "Rolled heads: photos turned in the image plane, fkp given the box of the turned points\n" + "\n".join(lines)
    )
    figures["rotation"] = rotation_figures
    print(sections[-1], "\n", flush=True)

    # 4. Time per face.
    if dlib is not None:
        faces = [(w300.image(i), box) for i, box in list(dlib_boxes.items())[:200]]
    else:
        faces = [(w300.image(i), keypoints_box(w300.keypoints[i])) for i in range(200)]
    turned = [
        rotate_image(image, np.array([[box[0], box[1]], [box[0] + box[2], box[1] + box[3]]]), 45)
        for image, box in faces
    ]
    turned_faces = [(image, keypoints_box(corners)) for image, corners in turned]
    calls: dict[str, Callable] = {"fkp": lambda image, box: model.predict(image, box[None])}
    if float_model is not None:
        calls["fkp, float32 network"] = lambda image, box: float_model.predict(image, box[None])
    if dlib is not None:
        calls["dlib"] = dlib.predict
    timing = interleaved_ms(calls, faces)
    timing["fkp, photos turned 45 deg (two passes)"] = interleaved_ms({"fkp": calls["fkp"]}, turned_faces)["fkp"]
    lines = [f"{name}: {value:.2f} ms per face" for name, value in timing.items()]
    if "dlib" in timing:
        lines.append(f"fkp / dlib: {timing['fkp'] / timing['dlib']:.2f}x")
    sections.append(
        f"Time per face, one thread, warm, one face per call, median over {len(faces)} 300-W faces x 3, "
        f"the same boxes for both ({platform.machine()})\n" + "\n".join(lines)
    )
    figures["ms_per_face"] = timing
    print(sections[-1], flush=True)

    text = "\n\n".join(sections)
    Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")
    if args.card:
        from model_card import write_card

        write_card(args.card, model, text)
        print(f"model card written to {args.card}")


if __name__ == "__main__":
    main()
