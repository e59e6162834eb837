"""The ``fkp`` command line: ``fkp data``, ``fkp models``, ``fkp train``, ``fkp evaluate``, ``fkp export``,
``fkp detect``, ``fkp video`` and ``fkp filter``.

Each sub-command lives in its own module with a ``register(subparsers)`` function that adds its
parser and sets ``handler``. Handlers return an exit code; they raise :class:`CommandError` for a
failure the user can fix, which :func:`main` prints as one line on stderr (exit code 1). Bad
arguments exit with code 2 (argparse's convention), as do :class:`UsageError` and an output that
would replace an input (:class:`fkp.outputs.OutputConflictError`). An unwritable output
(:class:`fkp.outputs.OutputError`) or any other file-system error is one line with exit code 1;
Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

SUBCOMMAND_MODULES = ("data", "models", "train", "detect", "filter")
"""Modules of this package that register sub-commands, in the order ``fkp --help`` lists them."""


class CommandError(Exception):
    """A failure reported to the user as one line on stderr, with exit code 1."""


class SubcommandParser(argparse.ArgumentParser):
    """A sub-command's parser that can add options on first use (:meth:`add_options_later`), so that
    building the whole ``fkp`` parser imports nothing heavy: ``fkp train``'s options come from
    ``TrainConfig``, which imports torch, and ``fkp detect`` must start without it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[Callable[[argparse.ArgumentParser], None]] = []

    def add_options_later(self, add_options: Callable[[argparse.ArgumentParser], None]) -> None:
        """Call ``add_options(self)`` before this parser first parses or prints its help."""
        self._pending.append(add_options)

    def _add_pending(self) -> None:
        while self._pending:
            self._pending.pop(0)(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._add_pending()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._add_pending()
        return super().format_help()


class UsageError(Exception):
    """Arguments that cannot work together or are out of range: one line on stderr, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """The ``fkp`` argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="fkp", description="68-point facial keypoint detection.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=SubcommandParser)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"fkp.cli.{name}")
        except ModuleNotFoundError as error:  # a sub-command module not written yet
            if error.name != f"fkp.cli.{name}":
                raise
            continue
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
        print(f"fkp {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (CommandError, OutputError) as error:
        print(f"fkp {args.command}: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a file-system failure no handler foresaw: still one line
        where = f"{_short(error.filename)}: " if error.filename else ""
        print(f"fkp {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"fkp {args.command}: interrupted", file=sys.stderr)
        return 130


def _short(name: object, limit: int = 120) -> str:
    """A path for a one-line message, its middle cut out when it is very long."""
    text = str(name)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]}"
