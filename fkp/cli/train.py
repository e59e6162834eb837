"""``fkp train``, ``fkp evaluate`` and ``fkp export``: the model's life cycle on the command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing

from fkp.cli import CommandError, UsageError
from fkp.outputs import check_folder, check_output
from fkp.utils import atomic_write_bytes


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_train(subparsers)
    _register_evaluate(subparsers)
    _register_export(subparsers)


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a keypoint model",
        description="Train a keypoint model. Every TrainConfig field is an option; outputs go to "
        "--out-dir (last.pt checkpoint, best.safetensors with best.onnx, log.csv). Ctrl-C saves and exits "
        "with code 130; --resume continues exactly where it stopped.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_options_later(_add_train_options)  # TrainConfig imports torch: only for `fkp train`
    parser.set_defaults(handler=_train)


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    from fkp.train import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for spec in dataclasses.fields(TrainConfig):
        flag = "--" + spec.name.replace("_", "-")
        hint = hints[spec.name]
        if spec.name == "data":
            parser.add_argument(
                "--data",
                "--data-dir",
                nargs="+",
                default=spec.default,
                metavar="NAME_OR_DIR",
                help="training sets: 'udacity' ($FKP_DATA_DIR, then ./data), '300w' ($FKP_300W_DIR, then "
                "./data/faces-300w), or folders in the same layout",
            )
        elif typing.get_origin(hint) is tuple:
            item = typing.get_args(hint)[0]
            parser.add_argument(flag, nargs="+", type=item, default=spec.default)
        elif hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=spec.default)
        elif typing.get_origin(hint) is typing.Literal:
            parser.add_argument(flag, choices=typing.get_args(hint), default=spec.default)
        else:
            kind = next((t for t in (int, float, str) if t is hint or t in typing.get_args(hint)), str)
            parser.add_argument(flag, type=kind, default=spec.default)


def _train(args: argparse.Namespace) -> int:
    from fkp.data import DataNotFoundError
    from fkp.resume import CheckpointError, ConfigError, validate_config
    from fkp.train import TrainConfig, train

    values = {spec.name: getattr(args, spec.name) for spec in dataclasses.fields(TrainConfig)}
    config = TrainConfig.from_dict(values)
    try:
        validate_config(config)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    check_folder(config.out_dir, what="--out-dir")
    try:
        result = train(config)
    except ConfigError as error:  # found once the data is read (a batch larger than the data)
        raise UsageError(str(error)) from None
    except (DataNotFoundError, CheckpointError) as error:
        raise CommandError(str(error)) from None
    except ValueError as error:  # a malformed CSV row, a missing or undecodable image
        raise CommandError(f"cannot read the data: {str(error).splitlines()[0] if str(error) else error!r}") from None
    state = "interrupted; resume with --resume" if result.interrupted else "done"
    if result.best_epoch < 1:
        print(f"{state}: no epoch finished, no weights written; checkpoint in {result.out_dir / 'last.pt'}")
    else:
        print(
            f"{state}: best validation NME {result.best_val_nme:.2%} at epoch {result.best_epoch}, "
            f"{result.seconds / 60:.1f} min; weights in {result.out_dir / 'best.safetensors'}"
        )
    return 130 if result.interrupted else 0


def _register_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a model on a labelled split",
        description="Print mean and median NME, failure rate, AUC, per-region NME and ms per face "
        "(one thread), and write a JSON report.",
    )
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--split", choices=("test", "training"), default="test")
    parser.add_argument(
        "--boxes", choices=("gt", "haar", "yunet"), default="gt", help="ground-truth, Haar or YuNet detector boxes"
    )
    parser.add_argument("--backend", choices=("torch", "onnx", "auto"), default="auto")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the model")
    parser.add_argument(
        "--data",
        "--data-dir",
        dest="data_dir",
        metavar="NAME_OR_DIR",
        help="'udacity' (the default: $FKP_DATA_DIR, then ./data), '300w' ($FKP_300W_DIR, then ./data/faces-300w) or a folder",
    )
    parser.add_argument(
        "--rotation", type=float, default=0.0, metavar="DEG", help="turn every photo by DEG degrees first (clockwise)"
    )
    parser.add_argument("--json", dest="json_path", default="fkp_evaluation.json", help="where to write the report")
    parser.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    import cv2
    import torch

    from fkp.data import DataNotFoundError
    from fkp.evaluate import evaluate
    from fkp.predict import WeightsError, default_weights_path, load_model
    from fkp.yunet import ModelFileError

    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    check_output(
        args.json_path, [args.model or default_weights_path()], what="--json"
    )  # before the evaluation, not after it
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    try:
        model = load_model(args.model, backend=args.backend, threads=args.threads)
        result = evaluate(model, args.data_dir, split=args.split, boxes=args.boxes, rotation=args.rotation)
    except (WeightsError, DataNotFoundError, ModelFileError) as error:
        raise CommandError(str(error)) from error
    print(f"{model}\n{result}")
    report = {"model": args.model or "default", "backend": model.backend, **result.as_dict()}
    atomic_write_bytes(args.json_path, (json.dumps(report, indent=2) + "\n").encode())
    print(f"report written to {args.json_path}")
    return 0


def _register_export(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export a model to ONNX")
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--onnx", required=True, metavar="OUT", help="the .onnx file to write")
    parser.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from fkp.export import export_onnx
    from fkp.predict import WeightsError, default_weights_path, load_model

    check_output(args.onnx, [args.model or default_weights_path()], what="--onnx")
    try:
        model = load_model(args.model, backend="torch")  # export needs only the network
    except WeightsError as error:
        raise CommandError(str(error)) from error
    export_onnx(model, args.onnx)
    print(
        f"wrote {args.onnx}: input 'crops' (N, 1, {model.input_size}, {model.input_size}), output 'keypoints' (N, 68, 2)"
    )
    return 0
