"""``fkp train``: options from TrainConfig's field metadata, help without PyTorch, and one line
(exit code 2) for settings that cannot train, a run that would replace an earlier one, or a
``--resume`` with nothing to resume from; a run whose loss diverges exits with code 1."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fkp.cli import build_parser, main
from fkp.train_config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
NO_TORCH = "import sys; sys.modules['torch'] = None; from fkp.cli import main; sys.exit(main(sys.argv[1:]))"
"""``fkp`` as on the core install: ``import torch`` fails."""


def _train_parser() -> argparse.ArgumentParser:
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices["train"]


def _without_torch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )


def test_every_train_option_has_help_and_its_default(capsys) -> None:
    parser = _train_parser()
    options = [a for a in parser._actions if a.dest != "help"]
    assert {a.dest for a in options} == {spec.name for spec in dataclasses.fields(TrainConfig)} | {"overwrite"}
    for action in options:
        assert action.help and len(action.help) > 10, action.dest
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert text.count("(default: ") == len(options)
    assert "--input-size INPUT_SIZE side of the square grayscale crop fed to the network, pixels (default: 96)" in text
    assert "--loss {wing,smoothl1}" in text  # the loss registry's names


def test_the_help_is_the_field_metadata() -> None:
    """Help comes from ``field(metadata={"help": ...})`` (a literal % doubled for argparse)."""
    helps = {action.dest: action.help for action in _train_parser()._actions}
    for spec in dataclasses.fields(TrainConfig):
        assert helps[spec.name] == spec.metadata["help"].replace("%", "%%"), spec.name


def test_train_help_works_without_torch_and_training_says_how_to_get_it(tmp_path) -> None:
    shown = _without_torch("train", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--input-size" in shown.stdout and "--overwrite" in shown.stdout
    refused = _without_torch("train", "--input-size", "8", "--out-dir", str(tmp_path / "a"))
    assert refused.returncode == 2 and "--input-size must be from 16 to 512" in refused.stderr
    run = _without_torch("train", "--out-dir", str(tmp_path / "run"))
    assert run.returncode == 1, run.stderr
    assert run.stderr.strip().splitlines() == ["fkp train: error: needs torch: pip install 'fkp[train]'"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_evaluate_and_export_without_torch_say_how_to_get_it(tmp_path, command) -> None:
    done = _without_torch(command, *(["--onnx", str(tmp_path / "out.onnx")] if command == "export" else []))
    if done.returncode == 0:
        pytest.skip(f"fkp {command} no longer needs torch")
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert done.returncode == 1 and "pip install 'fkp[train]'" in lines[0], done.stderr


@pytest.mark.parametrize(
    "options, words",
    [
        (["--input-size", "8"], "--input-size must be from 16 to 512 pixels"),
        (["--input-size", "600"], "--input-size must be from 16 to 512 pixels"),
        (["--input-size", "100000"], "--input-size must be from 16 to 512 pixels"),
        (["--lr", "0"], "--lr must be a number above 0, got 0.0"),
        (["--lr", "nan"], "--lr must be a number above 0, got nan"),
        (["--lr", "inf"], "--lr must be a number above 0, got inf"),
        (["--patience", "-1"], "--patience must be at least 0"),
        (["--data", "udacity", "--data-repeats", "1", "2", "3"], "--data-repeats has 3 counts for 1 data set(s)"),
        (["--data-repeats", "1", "0"], "--data-repeats counts must be at least 1"),
        (["--flip", "1.5"], "--flip is a share: from 0 to 1, got 1.5"),
        (["--wing-curvature", "0"], "--wing-curvature must be a number above 0"),
        (["--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["--seed", "-1"], "--seed must be from 0 to 2**32 - 1"),
        (["--architecture", "resnet"], "--architecture 'resnet' is not one of"),
    ],
)
def test_settings_that_cannot_train_are_one_line_before_any_work(tmp_path, capsys, options, words) -> None:
    run = tmp_path / "run"
    assert main(["train", *options, "--out-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and words in err, err
    assert not run.exists()


def test_the_config_refuses_what_the_command_line_refuses() -> None:
    from fkp.train_config import ConfigError

    with pytest.raises(ConfigError, match="--loss 'l2' is not one of"):
        TrainConfig(loss="l2")  # today a typo would not silently train another loss
    with pytest.raises(ConfigError, match="--precision 'fp16'"):
        TrainConfig(precision="fp16")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--labels 'dlib'"):
        TrainConfig(labels="dlib")
    assert TrainConfig(data=("udacity",)).data_repeats == (1,)  # the recipe's counts, cut to one set
    assert TrainConfig(data=("a", "b", "c")).data_repeats == (1, 3)  # the third set once


def test_train_config_imports_no_torch() -> None:
    code = "import sys, fkp.train_config, fkp.cli.train; sys.exit('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0


def _cli(data_dir: Path, out_dir: Path, *extra: str) -> list[str]:
    return ["train", "--data-dir", str(data_dir), "--out-dir", str(out_dir), "--input-size", "32", "--threads", "1",
            "--device", "cpu", "--precision", "fp32", "--val-fraction", "0.2", "--batch-size", "4", *extra]


def test_resume_without_a_checkpoint_is_refused(tiny_data_dir, tmp_path, capsys) -> None:
    assert main(_cli(tiny_data_dir, tmp_path / "run", "--resume")) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--resume: no checkpoint" in err
    assert not (tmp_path / "run").exists()


def test_an_earlier_run_is_replaced_only_with_overwrite(tiny_data_dir, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(_cli(tiny_data_dir, run, "--epochs", "1")) == 0
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    assert {"last.pt", "best.safetensors", "log.csv", "summary.json"} <= set(before)
    capsys.readouterr()
    assert main(_cli(tiny_data_dir, run, "--epochs", "1")) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--resume" in err and "--overwrite" in err, err
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before
    assert main(_cli(tiny_data_dir, run, "--epochs", "1", "--resume", "--overwrite")) == 2
    assert "give one of them" in capsys.readouterr().err
    assert main(_cli(tiny_data_dir / "nowhere", run, "--epochs", "1", "--overwrite")) == 1  # no data: kept
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before
    assert main(_cli(tiny_data_dir, run, "--epochs", "1", "--seed", "1", "--overwrite")) == 0
    assert (run / "log.csv").read_bytes() != before["log.csv"]


def test_a_diverging_run_exits_1_naming_the_epoch_and_step(tiny_data_dir, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(_cli(tiny_data_dir, run, "--epochs", "1", "--lr", "1e30")) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and re.search(r"the loss became (NaN|infinite) at epoch 1, step \d+", lines[0]), err
    assert not (run / "best.safetensors").exists()
