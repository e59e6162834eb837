"""When should the upright second pass replace the first pass's points, and when join them?

    FKP_DATA_DIR=... FKP_300W_DIR=... python benchmarks/second_pass.py [--model PATH]

``model.predict`` runs a second pass on a crop turned upright when the first pass finds the eye
line tilted by more than ``fkp.predict.ROLL_THRESHOLD`` degrees. This script scores the rules for
what to do with the two answers, with the box of the points, on both data sets' faces turned by
0, 15 and 30 degrees:

* one pass only;
* the upright pass replaces the first (the rule before ``fkp.predict.AVERAGE_TILT``);
* the two are averaged up to 20, 25 or 30 degrees of tilt, replaced beyond;
* every face gets the upright pass (``model.refine = 1``), averaged as the default rule says:
  what two passes for every face would buy, at twice the time.

Each rule is the package's own ``model.predict`` with its constants set, so nothing here repeats
its logic. The rows marked ``validation`` are the faces the model's training run held out (its
``val_fraction`` and ``seed``, from the weights' metadata or the options): pick a rule there, and read the
``test`` rows only as a check. About a minute on one core.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np
from tqdm.auto import tqdm

import fkp
import fkp.predict
from fkp import metrics
from fkp.data import FacialKeypointsDataset, person_disjoint_split
from fkp.geometry import keypoints_box, rotate_image

ROTATIONS = (0, 15, 30)
RULES: dict[str, tuple[float, float, int]] = {  # name: (ROLL_THRESHOLD, AVERAGE_TILT, refine)
    "one pass": (math.inf, -math.inf, 0),
    "upright replaces": (fkp.predict.ROLL_THRESHOLD, -math.inf, 0),
    "averaged to 20°": (fkp.predict.ROLL_THRESHOLD, 20.0, 0),
    "averaged to 25°": (fkp.predict.ROLL_THRESHOLD, 25.0, 0),
    "averaged to 30°": (fkp.predict.ROLL_THRESHOLD, 30.0, 0),
    "every face twice": (fkp.predict.ROLL_THRESHOLD, fkp.predict.AVERAGE_TILT, 1),
}


@contextmanager
def rule(model: fkp.KeypointModel, threshold: float, average_tilt: float, refine: int) -> Iterator[None]:
    """Run ``model.predict`` under another second-pass rule, restoring the package's afterwards."""
    saved = fkp.predict.ROLL_THRESHOLD, fkp.predict.AVERAGE_TILT, model.refine
    fkp.predict.ROLL_THRESHOLD, fkp.predict.AVERAGE_TILT, model.refine = threshold, average_tilt, refine
    try:
        yield
    finally:
        fkp.predict.ROLL_THRESHOLD, fkp.predict.AVERAGE_TILT, model.refine = saved


def score(model: fkp.KeypointModel, dataset: FacialKeypointsDataset, indices: np.ndarray, degrees: int) -> list[float]:
    """Mean NME of each rule of :data:`RULES` on the faces ``indices`` turned by ``degrees``."""
    labels = dataset.convention if dataset.convention in model.conventions else None
    predicted: dict[str, list[np.ndarray]] = {name: [] for name in RULES}
    truth = []
    for index in indices:
        image, points = dataset.image(index), dataset.keypoints[index]
        if degrees:
            image, points = rotate_image(image, points, degrees)
        box = keypoints_box(points)[None]
        for name, settings in RULES.items():
            with rule(model, *settings):
                predicted[name].append(model.predict(image, box, labels=labels)[0])
        truth.append(points)
    return [float(metrics.nme(np.asarray(predicted[name]), np.asarray(truth)).mean()) for name in RULES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--val-fraction", type=float, help="the run's --val-fraction (default: from the metadata)")
    parser.add_argument("--seed", type=int, help="the run's --seed (default: from the metadata)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    model = fkp.load_model(args.model, threads=1)
    trained = model.metadata.get("train_config", {})
    trained = dict(trained) if isinstance(trained, dict) else {}
    for key in ("val_fraction", "seed"):
        if getattr(args, key) is not None:
            trained[key] = getattr(args, key)
        elif key not in trained:
            parser.error(f"the model's metadata lacks its run's {key}: pass --{key.replace('_', '-')}")
    header = f"{'faces':<22s} {'turned':>6s} " + " ".join(f"{name:>17s}" for name in RULES)
    print("Mean NME, box of the points, per rule for the two passes\n" + header)
    for name in ("udacity", "300w"):
        for split in ("validation", "test"):
            dataset = FacialKeypointsDataset(name, "training" if split == "validation" else "test")
            indices = np.arange(len(dataset))
            if split == "validation":
                indices = person_disjoint_split(dataset.names, trained["val_fraction"], seed=trained["seed"])[1]
            for degrees in tqdm(ROTATIONS, desc=f"{name} {split}", leave=False):
                figures = score(model, dataset, indices, degrees)
                label = f"{name} {split} ({len(indices)})"
                tqdm.write(f"{label:<22s} {degrees:>5d}° " + " ".join(f"{value:17.3%}" for value in figures))


if __name__ == "__main__":
    main()
