"""How each face detector boxes a face, compared with the tight box of its 68 labelled points.

    FKP_DATA_DIR=path/to/facial-keypoints python benchmarks/detector_boxes.py [--data-dir DIR ...] [--limit N]

Prints the figures behind :mod:`fkp.calibration` for every detector of the table that has a box
style (:func:`fkp.detectors.box_styles`), each built by :func:`fkp.detectors.make_detector` exactly
as ``fkp detect --detector NAME`` builds it: the share of faces found, the offset of the detection's
centre and the ratio of its side to the tight box's longer side. YuNet needs its model file
(``FKP_MODELS_DIR`` or ``fkp models download``); a detector that cannot be built here is skipped
with one line.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from tqdm import tqdm

from fkp.data import FacialKeypointsDataset
from fkp.detectors import DetectorUnavailableError, FaceDetector, box_styles, make_detector
from fkp.evaluate import matching_detection
from fkp.geometry import keypoints_box


def measure(
    dataset: FacialKeypointsDataset, detector: FaceDetector, limit: int | None
) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(faces looked at, faces found, (found, 2) centre offsets / tight side, (found,) log side ratios)."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    offsets, log_zooms = [], []
    for index in tqdm(range(count), desc=dataset.root.name, leave=False):
        tight = keypoints_box(dataset.keypoints[index])
        detections = detector.detect(dataset.image(index))
        match = matching_detection(detections, tight)
        if match is None:
            continue
        box = detections[match]
        side = tight[2:].max()
        offsets.append(((box[:2] + box[2:] / 2) - (tight[:2] + tight[2:] / 2)) / side)
        log_zooms.append(np.log(box[2:].max() / side))
    return count, len(offsets), np.array(offsets).reshape(-1, 2), np.array(log_zooms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", nargs="+", default=[None], help="data folders (default: $FKP_DATA_DIR)")
    parser.add_argument("--split", choices=("training", "test"), default="training")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N faces of each set (a quick check)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    detectors: dict[str, FaceDetector] = {}
    for name in box_styles():
        try:
            detectors[name] = make_detector(name)
        except DetectorUnavailableError as error:
            print(f"skipping {name}: {error}")
    for folder in args.data_dir:
        dataset = FacialKeypointsDataset(folder, args.split)
        for name, detector in detectors.items():
            total, found, offsets, log_zooms = measure(dataset, detector, args.limit)
            if not found:
                print(f"{dataset.root.name} {args.split}, {name}: found 0/{total}")
                continue
            print(
                f"{dataset.root.name} {args.split}, {name}: found {found}/{total} ({found / total:.1%}); "
                f"centre offset / tight side: x {offsets[:, 0].mean():+.3f} (sd {offsets[:, 0].std():.3f}), "
                f"y {offsets[:, 1].mean():+.3f} (sd {offsets[:, 1].std():.3f}); "
                f"side / tight side: median {np.exp(np.median(log_zooms)):.3f} (sd of the log {log_zooms.std():.3f})"
            )


if __name__ == "__main__":
    main()
