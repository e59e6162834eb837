"""Put a trained run's best weights into the package as the shipped default model.

    python benchmarks/release_model.py runs/default

Copies ``RUN/best.safetensors`` to ``fkp/weights/default.safetensors``, writes
``fkp/weights/default.onnx`` beside it (:meth:`fkp.predict.KeypointModel.save`: the network read
back from the new file, exported, with that file's sha256 in its metadata), and records its
provenance in the weights' metadata: the training command, the run's wall time, the machine, the
library versions and the data set's CSV checksums. ``benchmarks/compare_dlib.py --card`` then
measures the model and writes the model card from these facts and its own figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path

import torch

from fkp.data import csv_path, resolve_dataset
from fkp.predict import default_weights_path, load_model
from fkp.train import TrainConfig


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="the training run's folder (holds best.safetensors, last.pt, log.csv)")
    parser.add_argument("--command", default="fkp train --out-dir runs/default", help="the command that trained it")
    args = parser.parse_args()

    model = load_model(args.run / "best.safetensors")
    checkpoint = torch.load(args.run / "last.pt", map_location="cpu", weights_only=True)
    summary = json.loads((args.run / "summary.json").read_text())
    config = TrainConfig.from_dict(checkpoint["train_config"])
    provenance = {
        **model.metadata,
        "train_command": args.command,
        # Paths of the machine that trained it stay out of the shipped file.
        "train_config": {key: value for key, value in config.__dict__.items() if key != "out_dir"},
        "parameters": sum(p.numel() for p in model.net.parameters()),
        "epochs_run": summary["epochs_run"],
        "train_minutes": round(summary["wall_seconds"] / 60, 1),
        "machine": f"{platform.machine()}, {config.threads} CPU thread(s), {platform.processor() or platform.system()}",
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "data_sha256": {
            f"{name} {split}": sha256(csv_path(resolve_dataset(name), split)) for name in config.data for split in ("training", "test")
        },
    }
    model.metadata = provenance
    target = default_weights_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    model.save(target, half=True)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB), best epoch {provenance.get('epoch')}, "
          f"validation NME {provenance.get('val_nme', float('nan')):.2%}, {provenance['train_minutes']} min of training")


if __name__ == "__main__":
    main()
