"""fkp's default model against dlib's 68-point shape predictor, on the same 770 test faces.

    pip install -e ".[bench]"
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
    import importlib.util
    from pathlib import Path

    import dlib

    # The model file of face-recognition-models, found without importing the package (its
    # __init__ needs pkg_resources, which recent setuptools no longer ships).
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("dlib's model is missing: pip install -e '.[bench]'")
    model = Path(spec.submodule_search_locations[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    return dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model))


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
    parser.add_argument("--card", metavar="PATH", help="also write the model card here (fkp/weights/MODEL_CARD.md)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    test = FacialKeypointsDataset(split="test").preload(progress=False)  # every row times predictors, not decoding
    rows: list[Row] = []

    if not args.no_dlib:
        predicted, truth, boxes, ms, ms_detect = dlib_run(test, "hog", "dlib, HOG boxes")
        rows.append(Row("dlib, its HOG detector", len(predicted), len(test), metrics.report(predicted, truth), ms, ms_detect))
        training = FacialKeypointsDataset(split="training").preload(progress=False)
        train_predicted, train_truth, train_boxes, _, _ = dlib_run(training, "hog", "dlib offset (training split)")
        corrected = predicted + box_offset(train_predicted, train_truth, train_boxes)[None] * boxes[:, None, 2:3]
        rows.append(Row("dlib, HOG + offset learned on training", len(predicted), len(test), metrics.report(corrected, truth), ms, ms_detect))
        predicted, truth, _, ms, _ = dlib_run(test, "gt", "dlib, ground-truth boxes")
        rows.append(Row("dlib, ground-truth box", len(predicted), len(test), metrics.report(predicted, truth), ms))

    for backend in ("torch", "onnx"):
        model = fkp.load_model(backend=backend, threads=1)
        for boxes in ("gt", "haar"):
            result = evaluate(model, boxes=boxes, dataset=test)
            label = "ground-truth box" if boxes == "gt" else "Haar detector"
            rows.append(Row(f"fkp default ({backend}), {label}", result.found, result.total, result.report, result.ms_per_face))

    warm = warm_latency(test, with_dlib=not args.no_dlib)
    throughput = batch_throughput(test, threads=2)

    table = format_table(rows, throughput, warm)
    print()
    print(table)
    report = {
        "rows": [{"name": r.name, "found": r.found, "total": r.total, "ms_per_face": r.ms_per_face, **r.report.as_dict()} for r in rows],
        "batch_faces_per_second_2_threads": throughput,
        "warm_median_ms_per_face_1_thread": warm,
    }
    with open(args.json, "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"figures written to {args.json}")
    if args.card:
        write_card(args.card, table, rows)
        print(f"model card written to {args.card}")


def format_table(rows: list[Row], throughput: dict[str, float], warm: dict[str, float]) -> str:
    """The benchmark's figures as one fixed-width table, with the speed notes under it."""
    lines = []
    header = f"{'method':42s} {'found':>9s} {'mean NME':>9s} {'median':>8s} {'fail@8%':>8s} {'AUC@8%':>7s} {'ms/face':>8s}"
    lines += [header, "-" * len(header)]
    for row in rows:
        r = row.report
        lines.append(
            f"{row.name:42s} {row.found:4d}/{row.total:<4d} {r.mean_nme:9.2%} {r.median_nme:8.2%} "
            f"{r.failure_rate:8.1%} {r.auc:7.3f} {row.ms_per_face:8.2f}"
        )
    detector_ms = [row.ms_detector for row in rows if row.ms_detector is not None]
    if detector_ms:
        lines.append(f"dlib HOG detector: {detector_ms[0]:.1f} ms per image")
    for name, value in warm.items():
        lines.append(f"{name}, one face per call, warm, median of 500 calls: {value:.2f} ms per face")
    for backend, value in throughput.items():
        lines.append(f"fkp default ({backend}), batches of 64 on 2 threads: {value:.0f} faces/s")
    return "\n".join(lines)


def warm_latency(dataset: FacialKeypointsDataset, with_dlib: bool, calls: int = 500) -> dict[str, float]:
    """Median ms of one face per call, called back to back on 100 test faces (one thread).

    The ms/face column above times each face inside a full pass, where the detector runs between
    calls and evicts caches; this is the latency of the predictor alone, for both tools alike.
    """
    faces = [(dataset.image(i), keypoints_box(dataset.keypoints[i])) for i in range(0, len(dataset), 7)][:100]

    def median_ms(call) -> float:
        for image, box in faces[:10]:
            call(image, box)
        times = []
        for k in range(calls):
            image, box = faces[k % len(faces)]
            start = time.perf_counter()
            call(image, box)
            times.append(time.perf_counter() - start)
        return 1000 * float(np.median(times))

    out = {}
    if with_dlib:
        dlib, _, predictor = dlib_tools()
        out["dlib shape predictor"] = median_ms(
            lambda image, box: predictor(image, dlib.rectangle(*(int(v) for v in (box[0], box[1], box[0] + box[2], box[1] + box[3]))))
        )
    for backend in ("torch", "onnx"):
        model = fkp.load_model(backend=backend, threads=1)
        out[f"fkp default ({backend})"] = median_ms(lambda image, box: model.predict(image, box[None]))
    return out


def write_card(path: str, table: str, rows: list[Row]) -> None:
    """Render the model card from the shipped weights' provenance and this run's figures."""
    import platform
    from pathlib import Path

    from fkp.predict import default_weights_path

    model = fkp.load_model()
    info = model.metadata
    weights = default_weights_path()
    ours = {row.name: row for row in rows}
    gt = ours["fkp default (torch), ground-truth box"].report
    regions = ", ".join(f"{name} {value:.2%}" for name, value in gt.region_nme.items())
    config = info.get("train_config", {})
    text = CARD.format(
        architecture=model.config.architecture,
        model_config=json.dumps(dict(vars(model.config)), default=list),
        size_mb=weights.stat().st_size / 1e6,
        params=sum(p.numel() for p in model.net.parameters()),
        input_size=model.input_size,
        box_scale=model.box_scale,
        refine=model.refine,
        command=info.get("train_command", "?"),
        train_config=json.dumps(config, indent=2, sort_keys=True),
        minutes=info.get("train_minutes", "?"),
        epochs=info.get("epochs_run", "?"),
        best_epoch=info.get("epoch", "?"),
        val_nme=info.get("val_nme", float("nan")),
        machine=info.get("machine", "?"),
        torch=info.get("torch", "?"),
        python=info.get("python", "?"),
        data_sha=json.dumps(info.get("data_sha256", {}), indent=2),
        table=table,
        regions=regions,
        bench_machine=f"{platform.machine()}, {platform.processor() or platform.system()}",
    )
    Path(path).write_text(text)


CARD = """# Model card: fkp default keypoint model

*Written by `python benchmarks/compare_dlib.py --card fkp/weights/MODEL_CARD.md` from the figures
it measured and the provenance stored in `default.safetensors`; do not edit by hand.*

## What it is
- **Task**: 68 facial keypoints (iBUG 300-W layout) of one face, given the photo and a face box
  (tight around the face or a Haar detector's box).
- **Architecture**: `{architecture}`, a residual encoder to stride 16, a pyramid decoder back to
  stride 4 and one heatmap per point read out with a soft-argmax; {params:,} parameters,
  {size_mb:.2f} MB as safetensors. Config: `{model_config}`.
- **Input**: a {input_size} x {input_size} grayscale crop around the box (side = longer box side x
  {box_scale}), standardised per crop; {refine} refinement pass(es) re-crop around the points found.
- **Loading**: `fkp.load_model()`; safetensors, no pickled code.

## Training
- **Data**: the Udacity facial keypoints training split (3462 images), of which the people of a
  10% person-disjoint validation split (selection only) are held out. CSV checksums (sha256):
```
{data_sha}
```
- **Command**: `{command}` (with `FKP_DATA_DIR` pointing at the data).
- **Time**: {minutes} min wall time for {epochs} epochs on {machine}; Python {python}, torch {torch}.
  Best validation NME (people never seen in training) {val_nme:.2%} at epoch {best_epoch}.
- **Full training config**:
```json
{train_config}
```

## Figures
The 770 labelled test faces, one thread ({bench_machine}); NME normalised by the outer-eye-corner
distance (points 36 and 45), failure = NME above 8%, AUC of the CED up to 8%:

```
{table}
```

Per region (ground-truth boxes, PyTorch): {regions}.

## Caveats
- **Every person in the test split also appears in the training split** (other frames of the same
  YouTube video), so test figures measure new frames of known people. The validation NME above,
  on people never seen in training, is the better guide to a stranger's face.
- Frames of YouTube celebrity videos: mostly frontal, well-lit adult faces; expect worse results on
  strong profiles, heavy occlusion, children and unusual lighting.
- dlib's predictor follows the 300-W labelling convention, which differs from this data set's; the
  "offset learned on training" row corrects for that, and is the fair comparison.
"""


def batch_throughput(dataset: FacialKeypointsDataset, threads: int, batch: int = 64) -> dict[str, float]:
    """Faces per second of model.predict on batches of faces from one image each (crops included)."""
    torch.set_num_threads(threads)
    image = dataset.image(0)
    boxes = np.repeat(keypoints_box(dataset.keypoints[0])[None], batch, axis=0)
    out = {}
    for backend in ("torch", "onnx"):
        model = fkp.load_model(backend=backend, threads=threads)
        model.predict(image, boxes)
        start, rounds = time.perf_counter(), 20
        for _ in range(rounds):
            model.predict(image, boxes)
        out[backend] = rounds * batch / (time.perf_counter() - start)
    torch.set_num_threads(1)
    return out


if __name__ == "__main__":
    main()
