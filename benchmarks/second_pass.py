"""When should the upright second pass replace the first pass's points, and when join them?

    FKP_DATA_DIR=... FKP_300W_DIR=... python benchmarks/second_pass.py [--model PATH]

``model.predict`` runs a second pass on a crop turned upright when the first pass finds the eye
line tilted by more than its rule's ``roll_threshold`` (:class:`fkp.predictor.SecondPass`). This
script scores the rules for what to do with the two answers, with the box of the points, on both
data sets' faces turned by 0, 15 and 30 degrees:

* one pass only (``SecondPass.off()``);
* the upright pass replaces the first (the rule before ``average_tilt``);
* the two are averaged up to 20, 25 or 30 degrees of tilt, replaced beyond;
* every face gets the upright pass (``extra_passes=1``), averaged as the default rule says:
  what two passes for every face would buy, at twice the time.

Each rule is a model loaded with that :class:`~fkp.predictor.SecondPass`, running the package's own
``model.predict``, so nothing here repeats its logic. The rows marked ``validation`` are the faces the model's training run held out (its
``val_fraction`` and ``seed``, from the weights' metadata or the options): pick a rule there, and read the
``test`` rows only as a check. About a minute on one core.
"""

from __future__ import annotations

import argparse
import math

import cv2
import numpy as np
from tqdm.auto import tqdm

import fkp
from fkp import metrics
from fkp.data import FacialKeypointsDataset, person_disjoint_split
from fkp.geometry import keypoints_box, rotate_image
from fkp.predict import KeypointModel
from fkp.predictor import SecondPass

ROTATIONS = (0, 15, 30)
RULES: dict[str, SecondPass] = {
    "one pass": SecondPass.off(),
    "upright replaces": SecondPass(average_tilt=-math.inf),
    "averaged to 20°": SecondPass(average_tilt=20.0),
    "averaged to 25°": SecondPass(average_tilt=25.0),
    "averaged to 30°": SecondPass(average_tilt=30.0),
    "every face twice": SecondPass(extra_passes=1),
}


def score(
    models: dict[str, KeypointModel], dataset: FacialKeypointsDataset, indices: np.ndarray, degrees: int
) -> list[float]:
    """Mean NME of each rule's model on the faces ``indices`` turned by ``degrees``."""
    labels = dataset.convention if dataset.convention in next(iter(models.values())).conventions else None
    predicted: dict[str, list[np.ndarray]] = {name: [] for name in models}
    truth = []
    for index in indices:
        image, points = dataset.image(index), dataset.keypoints[index]
        if degrees:
            image, points = rotate_image(image, points, degrees)
        box = keypoints_box(points)[None]
        for name, model in models.items():
            predicted[name].append(model.predict(image, box, labels=labels)[0])
        truth.append(points)
    return [float(metrics.nme(np.asarray(predicted[name]), np.asarray(truth)).mean()) for name in models]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--val-fraction", type=float, help="the run's --val-fraction (default: from the metadata)")
    parser.add_argument("--seed", type=int, help="the run's --seed (default: from the metadata)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    models = {name: fkp.load_model(args.model, threads=1, second_pass=rule) for name, rule in RULES.items()}
    trained = models["one pass"].metadata.get("train_config", {})
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
                figures = score(models, dataset, indices, degrees)
                label = f"{name} {split} ({len(indices)})"
                tqdm.write(f"{label:<22s} {degrees:>5d}° " + " ".join(f"{value:17.3%}" for value in figures))


if __name__ == "__main__":
    main()
