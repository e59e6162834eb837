"""``fkp train``: train a keypoint model; every :class:`fkp.train_config.TrainConfig` field is an option.

The options, their types, choices and help come from the config's fields and their metadata, so
``fkp train --help`` needs no PyTorch; training itself does (``pip install 'fkp[train]'``).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from pathlib import Path

from fkp.cli.common import CommandError, UsageError
from fkp.outputs import check_folder
from fkp.train_config import ConfigError, TrainConfig

RUN_FILES = ("last.pt", "best.safetensors", "best.onnx", "log.csv", "summary.json")
"""What a run writes in its ``--out-dir``: an earlier run there is replaced only with ``--overwrite``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fkp train``."""
    parser = subparsers.add_parser(
        "train",
        help="train a keypoint model",
        description="Train a keypoint model. Every TrainConfig field is an option; outputs go to "
        "--out-dir (last.pt checkpoint, best.safetensors with best.onnx, log.csv). Ctrl-C saves and exits "
        "with code 130; --resume continues exactly where it stopped.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_config_options(parser)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace an earlier run in --out-dir (its {', '.join(RUN_FILES)} are removed before training)",
    )
    parser.set_defaults(handler=_train)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`TrainConfig` field (``input_size`` -> ``--input-size``), with the
    field's type, default, help (``metadata["help"]``) and choices (``metadata["choices"]``, or
    the values of a ``Literal``); a ``bool`` field gets ``--name`` / ``--no-name``."""
    hints = typing.get_type_hints(TrainConfig)
    for spec in dataclasses.fields(TrainConfig):
        hint = hints[spec.name]
        names = ["--" + spec.name.replace("_", "-")] + (["--data-dir"] if spec.name == "data" else [])
        # argparse %-formats help text (for %(default)s): a literal % must be doubled
        options: dict[str, typing.Any] = {"default": spec.default, "help": spec.metadata["help"].replace("%", "%%")}
        if "choices" in spec.metadata:
            options["choices"] = spec.metadata["choices"]
        if typing.get_origin(hint) is tuple:
            options.update(nargs="+", type=typing.get_args(hint)[0])
            if spec.name == "data":
                options["metavar"] = "NAME_OR_DIR"
        elif hint is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) is typing.Literal:
            options["choices"] = typing.get_args(hint)
        else:
            options["type"] = next((t for t in (int, float, str) if t is hint or t in typing.get_args(hint)), str)
        parser.add_argument(*names, **options)


def check_earlier_run(config: TrainConfig, overwrite: bool) -> list[Path]:
    """Refuse to start over an earlier run in ``config.out_dir`` unless ``overwrite``, and refuse
    ``resume`` without a checkpoint to resume from.

    Returns:
        The earlier run's files, for the caller to remove (with ``overwrite``) once the run can start.

    Raises:
        UsageError: (one line, exit code 2) naming ``--resume`` and ``--overwrite``.
    """
    out_dir = Path(config.out_dir)
    checkpoint = out_dir / "last.pt"
    if config.resume:
        if overwrite:
            raise UsageError("--resume continues the run in --out-dir and --overwrite replaces it: give one of them")
        if not checkpoint.exists():
            raise UsageError(f"--resume: no checkpoint {checkpoint} to resume from (leave out --resume to start)")
        return []
    earlier = [out_dir / name for name in RUN_FILES if (out_dir / name).exists()]
    if earlier and not overwrite:
        raise UsageError(
            f"--out-dir {out_dir} holds an earlier run ({', '.join(path.name for path in earlier)}): "
            "--resume to continue it, --overwrite to replace it, or another --out-dir"
        )
    return earlier


def _train(args: argparse.Namespace) -> int:
    values = {spec.name: getattr(args, spec.name) for spec in dataclasses.fields(TrainConfig)}
    try:
        config = TrainConfig.from_dict(values)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    check_folder(config.out_dir, what="--out-dir")
    earlier = check_earlier_run(config, args.overwrite)

    from fkp.data import DataNotFoundError
    from fkp.device import pick_device
    from fkp.resume import CheckpointError
    from fkp.train import DivergedError, train
    from fkp.training_data import head_conventions

    try:
        pick_device(config.device)  # a device this machine lacks is refused before any data is read
        head_conventions(config)  # reads each set's table: data that is missing is reported first
        for path in earlier:  # --overwrite: the earlier run goes once this one can start
            path.unlink()
        result = train(config)
    except ConfigError as error:  # found once the data is read (a batch larger than the data)
        raise UsageError(str(error)) from None
    except (DataNotFoundError, CheckpointError, DivergedError) as error:
        raise CommandError(str(error)) from None
    except ValueError as error:  # a malformed CSV row, a missing or undecodable image
        raise CommandError(f"cannot read the data: {str(error).splitlines()[0] if str(error) else error!r}") from None
    state = "interrupted; resume with --resume" if result.interrupted else "done"
    if result.best_epoch < 1:
        print(f"{state}: no epoch finished, no weights written; checkpoint in {result.out_dir / 'last.pt'}")
    else:
        chosen = (
            f"best validation NME {result.best_val_nme:.2%} at epoch {result.best_epoch}"
            if math.isfinite(result.best_val_nme)
            else f"no validation part, weights of epoch {result.best_epoch}"
        )
        print(f"{state}: {chosen}, {result.seconds / 60:.1f} min; weights in {result.out_dir / 'best.safetensors'}")
    return 130 if result.interrupted else 0
