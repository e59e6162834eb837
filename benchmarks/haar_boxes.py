"""How the Haar cascade boxes a face, compared with the tight box of its 68 labelled points.

    FKP_DATA_DIR=path/to/facial-keypoints python benchmarks/haar_boxes.py [--split training]

Prints the figures behind ``fkp.train.HAAR_BOX_*``: the share of faces found, and the offset of
the detection's centre and the ratio of its side to the tight box's longer side.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from tqdm import tqdm

from fkp.data import FacialKeypointsDataset
from fkp.detect import HaarFaceDetector
from fkp.evaluate import matching_detection
from fkp.geometry import keypoints_box


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("training", "test"), default="training")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    dataset = FacialKeypointsDataset(split=args.split)
    detector = HaarFaceDetector()
    offsets, log_zooms = [], []
    for index in tqdm(range(len(dataset)), desc="Haar cascade"):
        tight = keypoints_box(dataset.keypoints[index])
        detections = detector.detect(dataset.image(index))
        match = matching_detection(detections, tight)
        if match is None:
            continue
        box = detections[match]
        side = tight[2:].max()
        offsets.append(((box[:2] + box[2:] / 2) - (tight[:2] + tight[2:] / 2)) / side)
        log_zooms.append(np.log(box[2:].max() / side))
    offsets, log_zooms = np.array(offsets), np.array(log_zooms)
    print(f"{args.split}: Haar found {len(offsets)}/{len(dataset)} faces ({len(offsets) / len(dataset):.1%})")
    print(f"centre offset / tight side: mean x {offsets[:, 0].mean():+.3f} (sd {offsets[:, 0].std():.3f}), "
          f"mean y {offsets[:, 1].mean():+.3f} (sd {offsets[:, 1].std():.3f})")
    print(f"side / tight side: median {np.exp(np.median(log_zooms)):.3f}, sd of the log {log_zooms.std():.3f}")


if __name__ == "__main__":
    main()
