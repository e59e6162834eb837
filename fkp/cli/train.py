"""``fkp train``: train a keypoint model; every :class:`fkp.train.TrainConfig` field is an option."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import math
import textwrap
import tokenize
import typing

from fkp.cli.common import CommandError, UsageError
from fkp.outputs import check_folder

_HELP_WITHOUT_COMMENT = {
    "batch_size": "images per optimiser step",
    "seed": "seed of every random choice (fkp.utils.set_seed): the same seed, the same run",
    "out_dir": "folder for last.pt, best.safetensors, best.onnx, log.csv and summary.json",
}
"""Help for the TrainConfig fields that have no comment in fkp/train.py (a comment there wins)."""


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
    parser.add_options_later(_add_train_options)  # TrainConfig imports torch: only for `fkp train`
    parser.set_defaults(handler=_train)


def field_help(cls: type) -> dict[str, str]:
    """Each dataclass field's comment in ``cls``'s source, as help text: the comment on the field's
    line(s), else the comment lines just above it ("" for a field with neither).

    ``TrainConfig`` documents its fields with comments (one place); ``fkp train --help`` shows them.
    """
    source = textwrap.dedent(inspect.getsource(cls))
    comments: dict[int, str] = {}  # line number -> comment text
    code_lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.update(range(token.start[0], token.end[0] + 1))
    help_texts: dict[str, str] = {}
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    for node in body.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        end = node.end_lineno or node.lineno
        on_line = [comments[n] for n in range(node.lineno, end + 1) if n in comments]
        above: list[str] = []
        line = node.lineno - 1
        while line in comments and line not in code_lines:  # a block of comment-only lines
            above.insert(0, comments[line])
            line -= 1
        help_texts[node.target.id] = " ".join(on_line or above)
    return help_texts


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    from fkp.train import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    help_texts = field_help(TrainConfig)
    for spec in dataclasses.fields(TrainConfig):
        flag = "--" + spec.name.replace("_", "-")
        hint = hints[spec.name]
        # argparse %-formats help text (for %(default)s): a literal % in a comment must be doubled
        text = (help_texts.get(spec.name) or _HELP_WITHOUT_COMMENT.get(spec.name, "")).replace("%", "%%")
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
            parser.add_argument(flag, nargs="+", type=item, default=spec.default, help=text)
        elif hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=spec.default, help=text)
        elif typing.get_origin(hint) is typing.Literal:
            parser.add_argument(flag, choices=typing.get_args(hint), default=spec.default, help=text)
        else:
            kind = next((t for t in (int, float, str) if t is hint or t in typing.get_args(hint)), str)
            parser.add_argument(flag, type=kind, default=spec.default, help=text)


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
        chosen = (
            f"best validation NME {result.best_val_nme:.2%} at epoch {result.best_epoch}"
            if math.isfinite(result.best_val_nme)
            else f"no validation part, weights of epoch {result.best_epoch}"
        )
        print(f"{state}: {chosen}, {result.seconds / 60:.1f} min; weights in {result.out_dir / 'best.safetensors'}")
    return 130 if result.interrupted else 0
