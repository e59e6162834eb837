"""``fkp train --help``: every option has a line of help and shows its default."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from fkp.cli import build_parser
from fkp.cli.train import field_help
from fkp.train import TrainConfig


def _train_parser() -> argparse.ArgumentParser:
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = subparsers.choices["train"]
    parser.format_help()  # adds the options that wait for first use
    return parser


def test_every_train_option_has_help_and_its_default(capsys) -> None:
    parser = _train_parser()
    options = [a for a in parser._actions if a.dest != "help"]
    assert {a.dest for a in options} == {spec.name for spec in dataclasses.fields(TrainConfig)}
    for action in options:
        assert action.help and len(action.help) > 10, action.dest
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert text.count("(default: ") == len(options)
    assert "--input-size INPUT_SIZE side of the square grayscale crop fed to the network, pixels (default: 96)" in text


def test_field_help_reads_line_and_block_comments() -> None:
    @dataclasses.dataclass
    class Example:
        plain: int = 1  # on its line
        # a block
        # of two lines
        above: float = 0.5
        bare: str = "x"
        wrapped: tuple[int, ...] = (
            1,  # inside the value
        )

    assert field_help(Example) == {
        "plain": "on its line",
        "above": "a block of two lines",
        "bare": "",
        "wrapped": "inside the value",
    }


def test_a_percent_sign_in_a_field_comment_shows_in_the_help(monkeypatch, capsys) -> None:
    import fkp.cli.train as cli_train

    comments = field_help(TrainConfig)
    monkeypatch.setattr(cli_train, "field_help", lambda cls: {**comments, "lr": "peak learning rate: 3% of a bigger one"})
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    assert "peak learning rate: 3% of a bigger one (default: 0.003)" in " ".join(capsys.readouterr().out.split())
