"""``fkp export``: write a model's network as ONNX (with its fkp metadata)."""

from __future__ import annotations

import argparse

from fkp.cli.common import CommandError
from fkp.outputs import check_output


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fkp export``."""
    parser = subparsers.add_parser("export", help="export a model to ONNX")
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--onnx", required=True, metavar="OUT", help="the .onnx file to write")
    parser.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from fkp.model_file import WeightsError
    from fkp.predict import default_weights_path, load_model

    check_output(args.onnx, [args.model or default_weights_path()], what="--onnx")
    try:
        model = load_model(args.model, backend="torch")  # export needs only the network
    except WeightsError as error:
        raise CommandError(str(error)) from error
    model.export_onnx(args.onnx)
    print(
        f"wrote {args.onnx}: input 'crops' (N, 1, {model.input_size}, {model.input_size}), output 'keypoints' (N, 68, 2)"
    )
    return 0
