"""How each face detector boxes a face, compared with the tight box of its 68 labelled points.

    FKP_DATA_DIR=path/to/facial-keypoints python benchmarks/detector_boxes.py [--data-dir DIR ...]

Prints the figures behind :mod:`fkp.calibration` for the Haar cascade and YuNet: the share of
faces found, the offset of the detection's centre and the ratio of its side to the tight box's
longer side. YuNet needs its model file (``FKP_MODELS_DIR`` or ``fkp models download``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fkp.data import FacialKeypointsDataset
from fkp.detect import HaarFaceDetector
from fkp.evaluate import matching_detection
from fkp.geometry import keypoints_box

YUNET_FILE = "face_detection_yunet_2023mar.onnx"


def yunet_boxes(detector: cv2.FaceDetectorYN, image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    detector.setInputSize((width, height))
    _, faces = detector.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return np.zeros((0, 4), np.float32) if faces is None else faces[:, :4].astype(np.float32)


def measure(dataset: FacialKeypointsDataset, detect) -> tuple[int, np.ndarray, np.ndarray]:
    offsets, log_zooms = [], []
    for index in tqdm(range(len(dataset)), desc=dataset.root.name, leave=False):
        tight = keypoints_box(dataset.keypoints[index])
        detections = detect(dataset.image(index))
        match = matching_detection(detections, tight)
        if match is None:
            continue
        box = detections[match]
        side = tight[2:].max()
        offsets.append(((box[:2] + box[2:] / 2) - (tight[:2] + tight[2:] / 2)) / side)
        log_zooms.append(np.log(box[2:].max() / side))
    return len(offsets), np.array(offsets), np.array(log_zooms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", nargs="+", default=[None], help="data folders (default: $FKP_DATA_DIR)")
    parser.add_argument("--split", choices=("training", "test"), default="training")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    haar = HaarFaceDetector()
    detectors = {"haar": haar.detect}
    model = Path(os.environ.get("FKP_MODELS_DIR", "")) / YUNET_FILE
    if model.is_file():
        yunet = cv2.FaceDetectorYN.create(str(model), "", (320, 320), 0.6, 0.3, 50)
        detectors["yunet"] = lambda image: yunet_boxes(yunet, image)
    for folder in args.data_dir:
        dataset = FacialKeypointsDataset(folder, args.split)
        for name, detect in detectors.items():
            found, offsets, log_zooms = measure(dataset, detect)
            print(
                f"{dataset.root.name} {args.split}, {name}: found {found}/{len(dataset)} ({found / len(dataset):.1%}); "
                f"centre offset / tight side: x {offsets[:, 0].mean():+.3f} (sd {offsets[:, 0].std():.3f}), "
                f"y {offsets[:, 1].mean():+.3f} (sd {offsets[:, 1].std():.3f}); "
                f"side / tight side: median {np.exp(np.median(log_zooms)):.3f} (sd of the log {log_zooms.std():.3f})"
            )


if __name__ == "__main__":
    main()
