"""``fkp export``: write a model's network as ONNX (with its fkp metadata)."""

from __future__ import annotations

import argparse
import sys

from fkp.cli.common import CommandError, add_overwrite_option
from fkp.outputs import plan_output


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fkp export``."""
    parser = subparsers.add_parser("export", help="export a model to ONNX")
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--onnx", required=True, metavar="OUT", help="the .onnx file to write ('-': stdout)")
    add_overwrite_option(parser)
    parser.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from fkp.model_file import WeightsError
    from fkp.predict import default_weights_path, load_model

    output = plan_output(args.onnx, [args.model or default_weights_path()], what="--onnx", overwrite=args.overwrite)
    try:
        model = load_model(args.model, backend="torch")  # export needs only the network
    except WeightsError as error:
        raise CommandError(str(error)) from error
    output.write_bytes(model.onnx_file_bytes())
    print(
        f"wrote {output}: input 'crops' (N, 1, {model.input_size}, {model.input_size}), output 'keypoints' (N, 68, 2)",
        file=sys.stderr if output.to_stdout else sys.stdout,
    )
    return 0
