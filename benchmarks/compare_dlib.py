"""fkp's default model against dlib's 68-point shape predictor, on the same 770 test faces.

    pip install -e ".[bench,onnx]"
    FKP_DATA_DIR=path/to/facial-keypoints python benchmarks/compare_dlib.py [--json report.json]

Rows (one thread each, as the issue's yardstick):
- dlib with its own HOG detector's boxes; the same plus the mean offset between dlib's labelling
  convention and this data set's, learned on the training split; dlib given the ground-truth box.
- fkp's default model given the ground-truth (tight) box and the Haar detector's box, with
  PyTorch and with onnxruntime.
Then fkp's batch throughput on two threads. NME is normalised by the outer-eye-corner distance;
failure = NME above 8%; AUC of the CED up to 8%. Faces a detector misses are left out of its
row's NME and counted in its "found" column.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from tqdm import tqdm

import fkp
from fkp import metrics
from fkp.data import FacialKeypointsDataset
from fkp.evaluate import evaluate, matching_detection
from fkp.geometry import keypoints_box


@dataclass
class Row:
    name: str
    found: int
    total: int
    report: metrics.Report
    ms_per_face: float
    ms_detector: float | None = None


def dlib_tools():
    import dlib
    import face_recognition_models

    return dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


def dlib_run(dataset: FacialKeypointsDataset, boxes: str, desc: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """dlib on every face of ``dataset``: predictions, truth, the boxes used (x, y, w, h) and timings."""
    dlib, detector, predictor = dlib_tools()
    predicted, truth, used, detect_s, predict_s = [], [], [], 0.0, 0.0
    for index in tqdm(range(len(dataset)), desc=desc, leave=False):
        image, points = dataset.image(index), dataset.keypoints[index]
        tight = keypoints_box(points)
        if boxes == "hog":
            start = time.perf_counter()
            rects = detector(image, 1)
            detect_s += time.perf_counter() - start
            found = np.array([[r.left(), r.top(), r.width(), r.height()] for r in rects], dtype=np.float32).reshape(-1, 4)
            match = matching_detection(found, tight)
            if match is None:
                continue
            box = found[match]
        else:
            box = tight
        x, y, w, h = (int(round(v)) for v in box)
        start = time.perf_counter()
        shape = predictor(image, dlib.rectangle(x, y, x + w, y + h))
        predict_s += time.perf_counter() - start
        predicted.append([(p.x, p.y) for p in shape.parts()])
        truth.append(points)
        used.append(box)
    n = max(1, len(predicted))
    return np.asarray(predicted, np.float32), np.asarray(truth), np.asarray(used), 1000 * predict_s / n, 1000 * detect_s / len(dataset)


def box_offset(predicted: np.ndarray, truth: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Mean (68, 2) offset truth - prediction, in units of the detector box's side."""
    return ((truth - predicted) / boxes[:, None, 2:3]).mean(axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", default="benchmark.json", help="where to write the figures")
    parser.add_argument("--no-dlib", action="store_true", help="skip dlib (not installed)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    test = FacialKeypointsDataset(split="test")
    rows: list[Row] = []

    if not args.no_dlib:
        predicted, truth, boxes, ms, ms_detect = dlib_run(test, "hog", "dlib, HOG boxes")
        rows.append(Row("dlib, its HOG detector", len(predicted), len(test), metrics.report(predicted, truth), ms, ms_detect))
        training = FacialKeypointsDataset(split="training")
        train_predicted, train_truth, train_boxes, _, _ = dlib_run(training, "hog", "dlib offset (training split)")
        corrected = predicted + box_offset(train_predicted, train_truth, train_boxes)[None] * boxes[:, None, 2:3]
        rows.append(Row("dlib, HOG + offset learned on training", len(predicted), len(test), metrics.report(corrected, truth), ms, ms_detect))
        predicted, truth, _, ms, _ = dlib_run(test, "gt", "dlib, ground-truth boxes")
        rows.append(Row("dlib, ground-truth box", len(predicted), len(test), metrics.report(predicted, truth), ms))

    for backend in ("torch", "onnx"):
        model = fkp.load_model(backend=backend)
        if backend == "onnx":
            model.use_onnx(threads=1)
        for boxes in ("gt", "haar"):
            result = evaluate(model, split="test", boxes=boxes)
            label = "ground-truth box" if boxes == "gt" else "Haar detector"
            rows.append(Row(f"fkp default ({backend}), {label}", result.found, result.total, result.report, result.ms_per_face))

    throughput = batch_throughput(test, threads=2)

    print()
    header = f"{'method':42s} {'found':>9s} {'mean NME':>9s} {'median':>8s} {'fail@8%':>8s} {'AUC@8%':>7s} {'ms/face':>8s}"
    print(header)
    print("-" * len(header))
    for row in rows:
        r = row.report
        print(
            f"{row.name:42s} {row.found:4d}/{row.total:<4d} {r.mean_nme:9.2%} {r.median_nme:8.2%} "
            f"{r.failure_rate:8.1%} {r.auc:7.3f} {row.ms_per_face:8.2f}"
        )
    for row in rows:
        if row.ms_detector is not None:
            print(f"dlib HOG detector: {row.ms_detector:.1f} ms per image")
            break
    for backend, value in throughput.items():
        print(f"fkp default ({backend}), batches of 64 on 2 threads: {value:.0f} faces/s")
    report = {
        "rows": [{"name": r.name, "found": r.found, "total": r.total, "ms_per_face": r.ms_per_face, **r.report.as_dict()} for r in rows],
        "batch_faces_per_second_2_threads": throughput,
    }
    with open(args.json, "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"figures written to {args.json}")


def batch_throughput(dataset: FacialKeypointsDataset, threads: int, batch: int = 64) -> dict[str, float]:
    """Faces per second of model.predict on batches of faces from one image each (crops included)."""
    torch.set_num_threads(threads)
    image = dataset.image(0)
    boxes = np.repeat(keypoints_box(dataset.keypoints[0])[None], batch, axis=0)
    out = {}
    for backend in ("torch", "onnx"):
        model = fkp.load_model(backend=backend)
        if backend == "onnx":
            model.use_onnx(threads=threads)
        model.predict(image, boxes)
        start, rounds = time.perf_counter(), 20
        for _ in range(rounds):
            model.predict(image, boxes)
        out[backend] = rounds * batch / (time.perf_counter() - start)
    torch.set_num_threads(1)
    return out


if __name__ == "__main__":
    main()
