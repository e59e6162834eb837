"""Put a trained run's best weights into the package as the shipped default model.

    python benchmarks/release_model.py runs/default

Copies ``RUN/best.safetensors`` to ``fkp/weights/default.safetensors``, writes
``fkp/weights/default.onnx`` beside it (the network read back from the new file, exported by
:mod:`fkp.export` with that file's sha256 in its metadata, :func:`fkp.model_file.onnx_metadata`), quantises that ONNX
graph to int8 (:func:`fkp.quantize.quantize_onnx`, calibrated on crops of the training sets' faces
as the model cuts them; ``--float`` keeps it float32), and records its
provenance in the weights' metadata: the training command, the run's wall time, the machine, the
library versions and the data set's CSV checksums. ``benchmarks/compare_dlib.py --card`` then
measures the model and writes the model card from these facts and its own figures.

    python benchmarks/release_model.py --onnx-only

writes ``fkp/weights/default.onnx`` again from the shipped ``default.safetensors``, which stays
as it is (after a change to the exported graph, :mod:`fkp.export`, or to the quantisation).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from fkp.data import FacialKeypointsDataset, csv_path, resolve_dataset
from fkp.export import onnx_bytes
from fkp.geometry import keypoints_box
from fkp.model_file import onnx_metadata, sha256_of
from fkp.predict import KeypointModel, default_weights_path, load_model
from fkp.quantize import quantize_onnx
from fkp.train_config import TrainConfig
from fkp.utils import atomic_write_bytes

CALIBRATION_FACES = 256
"""Faces per training set whose crops calibrate the int8 activation ranges."""


def calibration_crops(model: KeypointModel, sets: tuple[str, ...], seed: int = 0) -> np.ndarray:
    """(M, S, S) uint8 crops of training faces, cut around their tight boxes as ``model.predict`` cuts them."""
    rng = np.random.default_rng(seed)
    crops = []
    for name in sets:
        dataset = FacialKeypointsDataset(name, "training")
        for index in rng.choice(len(dataset), size=min(CALIBRATION_FACES, len(dataset)), replace=False):
            box = keypoints_box(dataset.keypoints[int(index)])
            crops.append(model.crops(dataset.image(int(index)), box[None])[0][0])
    return np.stack(crops)


def read_train_config(run: Path) -> TrainConfig:
    """The run's settings: from ``last.pt``, or from ``train_config.json`` (the TrainConfig fields
    that differ from the defaults) for a run whose checkpoint stayed on the machine that trained it."""
    if (run / "last.pt").exists():
        checkpoint = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
        return TrainConfig.from_dict(checkpoint["train_config"])
    return TrainConfig.from_dict(json.loads((run / "train_config.json").read_text()))


def write_onnx(weights: Path, sets: tuple[str, ...], keep_float: bool) -> None:
    """Write ``weights``' ONNX twin beside it (the sha256-tied export), int8 unless ``keep_float``."""
    model = load_model(weights, backend="torch")
    onnx_path = weights.with_suffix(".onnx")
    graph = onnx_bytes(model.net, model.config, onnx_metadata(model.config, model.box_scale, model.metadata, weights))
    if not keep_float:
        graph = quantize_onnx(graph, calibration_crops(model, sets))
    atomic_write_bytes(onnx_path, graph)
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.2f} MB, {'float32' if keep_float else 'int8'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "run", type=Path, nargs="?", help="the training run's folder (holds best.safetensors, last.pt, log.csv)"
    )
    parser.add_argument("--command", default="fkp train --out-dir runs/default", help="the command that trained it")
    parser.add_argument("--machine", help="what trained it, in words (default: this machine, the run's threads)")
    parser.add_argument("--note", help="anything else the model card should say about the training run")
    parser.add_argument("--python", default=sys.version.split()[0], help="Python version that trained it")
    parser.add_argument("--torch", default=torch.__version__, help="torch version that trained it")
    parser.add_argument("--float", action="store_true", help="keep the ONNX twin float32 (no int8 quantisation)")
    parser.add_argument(
        "--onnx-only", action="store_true", help="only write the shipped model's ONNX twin again, from its weights"
    )
    args = parser.parse_args()
    if args.onnx_only:
        write_onnx(
            default_weights_path(), tuple(load_model(backend="torch").metadata["train_config"]["data"]), args.float
        )
        return
    if args.run is None:
        parser.error("give the training run's folder, or --onnx-only")

    model = load_model(args.run / "best.safetensors", backend="torch")
    summary = json.loads((args.run / "summary.json").read_text())
    config = read_train_config(args.run)
    provenance = {
        **model.metadata,
        "train_command": args.command,
        # Paths of the machine that trained it stay out of the shipped file.
        "train_config": {key: value for key, value in config.__dict__.items() if key != "out_dir"},
        "parameters": sum(p.numel() for p in model.net.parameters()),
        "epochs_run": summary["epochs_run"],
        "train_minutes": round(summary["wall_seconds"] / 60, 1),
        "machine": args.machine
        or f"{platform.machine()}, {config.threads} CPU thread(s), {platform.processor() or platform.system()}",
        **({"train_note": args.note} if args.note else {}),
        "python": args.python,
        "torch": args.torch,
        "data_sha256": {
            f"{name} {split}": sha256_of(csv_path(resolve_dataset(name), split))
            for name in config.data
            for split in ("training", "test")
        },
    }
    model.metadata = provenance
    target = default_weights_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    model.save(target, half=True, onnx=False)
    write_onnx(target, config.data, args.float)
    print(
        f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB), epoch {provenance.get('epoch')}, "
        + (f"validation NME {provenance['val_nme']:.2%}, " if "val_nme" in provenance else "no validation part, ")
        + f"{provenance['train_minutes']} min of training"
    )


if __name__ == "__main__":
    main()
