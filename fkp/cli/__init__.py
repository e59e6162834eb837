"""The ``fkp`` command line: ``fkp data``, ``fkp models``, ``fkp train``, ``fkp evaluate``, ``fkp export``,
``fkp detect``, ``fkp video``, ``fkp filter`` and ``fkp align``.

Each sub-command lives in its own module (``fkp/cli/detect.py`` for ``fkp detect``, ...) with a
``register(subparsers)`` function that adds its parser and sets ``handler``; what several of them
share is in :mod:`fkp.cli.common`. Handlers return an exit code; they raise
:class:`~fkp.cli.common.CommandError` for a failure the user can fix, which :func:`main` prints as
one line on stderr (exit code 1). Bad arguments exit with code 2 in one line with a ``--help`` hint
(:class:`~fkp.cli.common.OneLineParser`), as do :class:`~fkp.cli.common.UsageError` and an output
that the output rule of :mod:`fkp.outputs` refuses (:class:`fkp.outputs.OutputConflictError`: an
input, an existing file without ``--overwrite``, two outputs on one place, a socket, ...). An
unwritable output (:class:`fkp.outputs.OutputError`) or any other file-system error is one line with
exit code 1; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fkp.cli import align, data, detect, evaluate, export, filter, models, train, video
from fkp.cli.common import CommandError, OneLineParser, SubcommandParser, UsageError

SUBCOMMANDS = (data, models, train, evaluate, export, detect, video, filter, align)
"""The modules that register sub-commands, in the order ``fkp --help`` lists them."""
TRAIN_EXTRA = ("torch", "safetensors", "onnx")
"""Modules of ``fkp[train]`` that the core install lacks: a command that needs one says how to get it."""


def build_parser() -> argparse.ArgumentParser:
    """The ``fkp`` argument parser with every sub-command registered."""
    parser = OneLineParser(prog="fkp", description="68-point facial keypoint detection.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=SubcommandParser)
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 1 failure, 2 bad arguments, 130 Ctrl-C)."""
    from fkp.outputs import OutputConflictError, OutputError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (UsageError, OutputConflictError) as error:
        print(f"fkp {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except (CommandError, OutputError) as error:
        print(f"fkp {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except OSError as error:  # a file-system failure no handler foresaw: still one line
        where = f"{_short(error.filename)}: " if error.filename else ""
        print(f"fkp {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"fkp {args.command}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:  # the core install lacks what training, export and evaluation need
        missing = (error.name or "").split(".")[0]
        if missing not in TRAIN_EXTRA:
            raise
        print(f"fkp {args.command}: error: needs {missing}: pip install 'fkp[train]'", file=sys.stderr)
        return 1


def _one_line(error: Exception) -> str:
    """An error's message on one line (a library's multi-line text joined with spaces)."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _short(name: object, limit: int = 120) -> str:
    """A path for a one-line message, its middle cut out when it is very long."""
    text = str(name)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]}"
