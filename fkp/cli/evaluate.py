"""``fkp evaluate``: score a model on a labelled split (NME, failure rate, AUC, speed) and write a JSON report."""

from __future__ import annotations

import argparse
import json
import sys

from fkp.cli.common import CommandError, UsageError, add_overwrite_option, add_passes_option, finite_float
from fkp.outputs import plan_output


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fkp evaluate``."""
    from fkp.detectors import detector_names  # fkp.evaluate.box_sources, without importing torch for --help

    parser = subparsers.add_parser(
        "evaluate",
        help="score a model on a labelled split",
        description="Print mean and median NME, failure rate, AUC, per-region NME and ms per face "
        "(one thread), and write a JSON report.",
    )
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--split", choices=("test", "training"), default="test")
    parser.add_argument(
        "--boxes",
        choices=("gt", *detector_names()),
        default="gt",
        help="gt: the tight box of the labelled points (default), or a face detector's boxes",
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
        "--rotation",
        type=finite_float,
        default=0.0,
        metavar="DEG",
        help="turn every photo by DEG degrees first (clockwise)",
    )
    add_passes_option(parser)
    parser.add_argument("--json", dest="json_path", default="fkp_evaluation.json", help="where to write the report")
    add_overwrite_option(parser)
    parser.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    import cv2
    import torch

    from fkp.data import DataNotFoundError
    from fkp.detectors import DetectorUnavailableError
    from fkp.evaluate import evaluate
    from fkp.model_file import WeightsError
    from fkp.predict import default_weights_path, load_model
    from fkp.predictor import SecondPass

    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    output = plan_output(  # before the evaluation, not after it
        args.json_path, [args.model or default_weights_path()], what="--json", overwrite=args.overwrite
    )
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    try:
        rule = SecondPass(extra_passes=args.passes - 1)
        model = load_model(args.model, backend=args.backend, threads=args.threads, second_pass=rule)
        result = evaluate(model, args.data_dir, split=args.split, boxes=args.boxes, rotation=args.rotation)
    except (WeightsError, DataNotFoundError, DetectorUnavailableError) as error:
        raise CommandError(str(error)) from error
    print(f"{model}\n{result}")
    report = {"model": args.model or "default", "backend": model.backend, "passes": args.passes, **result.as_dict()}
    output.write_bytes((json.dumps(report, indent=2) + "\n").encode())
    print(f"report written to {output}", file=sys.stderr if output.to_stdout else sys.stdout)
    return 0
