"""Do the Udacity set and 300-W place the 68 points the same way? A model trained on one, tested on the other.

    FKP_DATA_DIR=... FKP_300W_DIR=... python benchmarks/label_conventions.py \\
        --udacity-model runs/udacity/best.safetensors --w300-model runs/w300/best.safetensors \\
        [--split training] [--write fkp/label_conventions.json]

Each model predicts the *other* set's faces (ground-truth boxes; the training split by default,
which neither model has seen from the other set). The script prints the mean signed error per
region (truth minus prediction, in each face's own frame: x along the eye line, y down the face,
in eye distances) and the NME before and after removing that mean offset. A convention gap shows
as the same offset with opposite signs in the two directions; a domain gap only as a larger NME.

The convention gap, per point, is half the difference of the two directions' mean offsets;
``--write`` stores it as the offset that takes a Udacity label to the 300-W convention
(:mod:`fkp.conventions`).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

import fkp
from fkp import conventions, metrics
from fkp.data import FacialKeypointsDataset
from fkp.geometry import keypoints_box
from fkp.landmarks import REGIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--udacity-model", required=True, help="a model trained on the Udacity set only")
    parser.add_argument("--w300-model", required=True, help="a model trained on 300-W only")
    parser.add_argument("--split", choices=("training", "test"), default="training")
    parser.add_argument("--write", metavar="JSON", help="store the Udacity -> 300-W offsets here")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    mean_offsets = {}
    for model_path, trained_on, tested_on in ((args.udacity_model, "udacity", "300w"), (args.w300_model, "300w", "udacity")):
        model = fkp.load_model(model_path, threads=1)
        data = FacialKeypointsDataset(tested_on, args.split)
        truth = data.keypoints
        predicted = np.stack([model.predict(data.image(i), keypoints_box(truth[i])[None])[0] for i in range(len(data))])
        offsets = conventions.to_face_frame(truth - predicted, truth)  # (N, 68, 2) eye distances
        mean_offset = mean_offsets[trained_on] = offsets.mean(axis=0)  # (68, 2)
        corrected = predicted + conventions.from_face_frame(np.broadcast_to(mean_offset, truth.shape), predicted)
        print(f"trained on {trained_on}, tested on {tested_on} ({args.split} split, {len(data)} faces): mean NME "
              f"{metrics.nme(predicted, truth).mean():.2%}, {metrics.nme(corrected, truth).mean():.2%} after removing the mean offset")
        for name, indices in REGIONS.items():
            x, y = mean_offset[indices].mean(axis=0)
            length = np.linalg.norm(mean_offset[indices], axis=-1).mean()
            print(f"  {name:10s} mean offset x {x:+.3f}, y {y:+.3f}; mean length {length:.3f} eye distances")
    # Udacity model on 300-W: 300-W truth - Udacity-style prediction = gap + domain error.
    # 300-W model on Udacity: Udacity truth - 300-W-style prediction = -gap + domain error.
    gap = (mean_offsets["udacity"] - mean_offsets["300w"]) / 2
    print(f"convention gap Udacity -> 300-W: mean length {np.linalg.norm(gap, axis=-1).mean():.3f} eye distances, "
          f"largest {np.linalg.norm(gap, axis=-1).max():.3f} (point {int(np.linalg.norm(gap, axis=-1).argmax())})")
    if args.write:
        conventions.write_offsets(args.write, gap, source=f"benchmarks/label_conventions.py --split {args.split}")
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
