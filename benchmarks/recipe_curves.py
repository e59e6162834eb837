"""A model's errors on 300-W common, upright and rolled: the figures notebook 2 compares recipes with.

    FKP_300W_DIR=path/to/faces-300w python benchmarks/recipe_curves.py MODEL --label TEXT --out docs/FILE.json

Writes the per-face NME on the 554 test photos (box of the labelled points) and the mean NME and
failure rate with every photo turned by each angle of ``ROTATIONS``. Notebook 2 plots the
shipped model live next to the stored curves of an older recipe (``docs/recipe_udacity_only.json``:
the default model of fkp 0.1, trained on the Udacity set alone with +-5 degree rotations).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2

import fkp
from fkp.data import FacialKeypointsDataset
from fkp.evaluate import evaluate

ROTATIONS = (0, 15, 30, 45, 60, 90, 180)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="the model file")
    parser.add_argument("--label", required=True, help="the recipe's name in plots")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    model = fkp.load_model(args.model, threads=1)
    test = FacialKeypointsDataset("300w", "test").preload(progress=False)
    upright = evaluate(model, dataset=test, progress=False)
    rolled = {degrees: evaluate(model, dataset=test, rotation=degrees, progress=False).report for degrees in ROTATIONS}
    figures = {
        "label": args.label,
        "model": Path(args.model).name,
        "errors": [round(float(e), 5) for e in upright.errors],
        "names": upright.names,
        "rotation": {str(d): {"mean_nme": r.mean_nme, "failure_rate": r.failure_rate} for d, r in rolled.items()},
    }
    Path(args.out).write_text(json.dumps(figures) + "\n")
    print(f"{args.label}: 300-W common mean NME {upright.report.mean_nme:.2%}; "
          + ", ".join(f"{d} deg {r.mean_nme:.2%}" for d, r in rolled.items()) + f"; written to {args.out}")


if __name__ == "__main__":
    main()
