"""Training runs that stop and resume (fkp.resume), on a tiny fake data set: exactness, Ctrl-C,
checkpoints that cannot be resumed from, and settings that cannot train."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from fkp.resume import CheckpointError
from fkp.train import train
from fkp.train_config import ConfigError, TrainConfig

TINY = {"input_size": 32, "epochs": 2, "batch_size": 4, "threads": 1, "patience": 0, "warmup_epochs": 0.5,
        "val_fraction": 0.2, "photometric": True, "flip": 0.5, "device": "cpu", "precision": "fp32"}


def _interrupt_at(step: int):
    def on_step(done: int) -> None:
        if done == step:
            raise KeyboardInterrupt

    return on_step


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "last.pt", weights_only=True)["model"]


# 24 training images in batches of 4: 6 steps per epoch. Stop mid-epoch 1, after its last step
# (before its validation), and mid-epoch 2; the checkpoint counts finished epochs only.
@pytest.mark.parametrize("stop_at, finished_epoch", [(3, -1), (6, -1), (10, 0)])
def test_interrupted_and_resumed_equals_uninterrupted_bit_for_bit(tiny_data_dir, tmp_path, stop_at, finished_epoch):
    whole = train(TrainConfig(**TINY, out_dir=str(tmp_path / "whole")), tiny_data_dir, progress=False)
    config = TrainConfig(**TINY, out_dir=str(tmp_path / "parts"))
    stopped = train(config, tiny_data_dir, progress=False, on_step=_interrupt_at(stop_at))
    assert stopped.interrupted
    saved = torch.load(tmp_path / "parts" / "last.pt", weights_only=True)
    assert saved["epoch"] == finished_epoch and saved["step_in_epoch"] == stop_at - 6 * (finished_epoch + 1)
    (tmp_path / "parts" / ".last.pt.tmp").write_bytes(b"half a file from a killed run")
    resumed = train(TrainConfig(**{**TINY, "resume": True}, out_dir=str(tmp_path / "parts")), tiny_data_dir,
                    progress=False)
    assert not (tmp_path / "parts" / ".last.pt.tmp").exists()
    assert [r.train_loss for r in resumed.history] == [r.train_loss for r in whole.history]
    assert [r.val_nme for r in resumed.history] == [r.val_nme for r in whole.history]
    assert [r.lr for r in resumed.history] == [r.lr for r in whole.history]
    for name, tensor in _weights(tmp_path / "whole").items():
        assert torch.equal(tensor, _weights(tmp_path / "parts")[name]), name


def test_ctrl_c_stops_between_two_steps(tiny_data_dir, tmp_path):
    """A real SIGINT in the middle of step 3 lets that step finish; the run stops right after it."""

    def press_ctrl_c(done: int) -> None:
        if done == 3:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in a job started with `&`
    result = train(TrainConfig(**TINY, out_dir=str(tmp_path / "run")), tiny_data_dir, progress=False,
                   on_step=press_ctrl_c)
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert result.interrupted and saved["epoch"] == -1 and saved["step_in_epoch"] == 3
    assert signal.getsignal(signal.SIGINT) is before  # put back


def test_zero_epochs_and_oversized_batches_are_refused(tiny_data_dir, tmp_path):
    with pytest.raises(ConfigError, match="--epochs must be at least 1"):
        train(TrainConfig(**{**TINY, "epochs": 0}, out_dir=str(tmp_path / "a")), tiny_data_dir, progress=False)
    with pytest.raises(ConfigError, match="--batch-size 100 is larger than the 24 training images"):
        train(TrainConfig(**{**TINY, "batch_size": 100}, out_dir=str(tmp_path / "b")), tiny_data_dir, progress=False)
    assert not (tmp_path / "b" / "best.safetensors").exists()


def test_a_run_stopped_before_any_epoch_writes_valid_json(tiny_data_dir, tmp_path):
    result = train(TrainConfig(**TINY, out_dir=str(tmp_path / "run")), tiny_data_dir, progress=False,
                   on_step=_interrupt_at(1))
    assert result.interrupted and result.best_epoch == -1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())  # strict JSON: no Infinity
    assert summary["best_val_nme"] is None and summary["best_epoch"] is None and summary["interrupted"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda path: path.write_bytes(path.read_bytes()[:1000]), "not a readable checkpoint"),
        (lambda path: path.write_bytes(b"\x00" * 64), "not a readable checkpoint"),
        (lambda path: torch.save({"model": {}}, path), "not an fkp training checkpoint"),
        (lambda path: torch.save([1, 2, 3], path), "not an fkp training checkpoint"),
    ],
    ids=["truncated", "garbage", "foreign-dict", "foreign-list"],
)
def test_a_checkpoint_that_cannot_be_resumed_is_one_clear_error(tiny_data_dir, tmp_path, damage, message):
    run = tmp_path / "run"
    train(TrainConfig(**{**TINY, "epochs": 1}, out_dir=str(run)), tiny_data_dir, progress=False)
    damage(run / "last.pt")
    with pytest.raises(CheckpointError, match=message):
        train(TrainConfig(**{**TINY, "resume": True}, out_dir=str(run)), tiny_data_dir, progress=False)


@pytest.mark.parametrize(
    "change, message",
    [({"architecture": "naimishnet"}, "made with --architecture keypointnet, not naimishnet"),
     ({"batch_size": 3}, "made with --batch-size 4, not 3")],
)
def test_a_checkpoint_of_another_model_or_batching_is_refused(tiny_data_dir, tmp_path, change, message):
    run = tmp_path / "run"
    train(TrainConfig(**TINY, out_dir=str(run)), tiny_data_dir, progress=False, on_step=_interrupt_at(2))
    other = TrainConfig(**{**TINY, **change, "resume": True}, out_dir=str(run))
    with pytest.raises(CheckpointError, match=message):
        train(other, tiny_data_dir, progress=False)


def _cli(data_dir, out_dir, *extra: str) -> list[str]:
    return ["train", "--data-dir", str(data_dir), "--out-dir", str(out_dir), "--input-size", "32", "--threads", "1",
            "--device", "cpu", "--precision", "fp32", "--val-fraction", "0.2", "--batch-size", "4", *extra]


def _damage_csv(root):
    table = root / "training_frames_keypoints.csv"
    table.write_text(table.read_text() + "Person_0_9.jpg,1,2,3\n")


CLI_FAILURES = [
    (lambda root, run: None, ["--batch-size", "100", "--limit", "64"], 2, "--batch-size 100 is larger than --limit 64"),
    (lambda root, run: None, ["--batch-size", "30"], 2, "--batch-size 30 is larger than the 24 training images"),
    (lambda root, run: None, ["--val-fraction", "1"], 2, "--val-fraction must be at least 0 and below 1, got 1.0"),
    (lambda root, run: _damage_csv(root), ["--epochs", "1"], 1, "cannot read the data"),
    (lambda root, run: (root / "training" / "Person_3_1.jpg").unlink(), ["--epochs", "1"], 1, "Person_3_1.jpg"),
    (lambda root, run: (run.mkdir(), (run / "last.pt").write_bytes(b"PK\x03\x04 truncated")), ["--resume"], 1,
     "not a readable checkpoint"),
]


@pytest.mark.parametrize("damage, extra, code, words", CLI_FAILURES, ids=["batch-limit", "batch-data", "val-fraction", "csv", "image", "checkpoint"])
def test_fkp_train_failures_are_one_line(tiny_data_dir, tmp_path, capfd, damage, extra, code, words):
    from fkp.cli import main

    run = tmp_path / "run"
    damage(tiny_data_dir, run)
    assert main(_cli(tiny_data_dir, run, *extra)) == code
    err = capfd.readouterr().err  # progress bars aside, one line
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in err, err
    assert not (run / "best.safetensors").exists()


def test_fkp_train_ctrl_c_exits_130_and_resumes(tiny_data_dir, tmp_path, monkeypatch, capsys):
    import fkp.train
    from fkp.cli import main

    real = fkp.train.predict_crops

    def stop(*args, **kwargs):  # Ctrl-C while the first epoch is validated
        monkeypatch.setattr(fkp.train, "predict_crops", real)
        raise KeyboardInterrupt

    monkeypatch.setattr(fkp.train, "predict_crops", stop)
    run = tmp_path / "run"
    assert main(_cli(tiny_data_dir, run, "--epochs", "1")) == 130
    assert "no epoch finished" in capsys.readouterr().out
    assert main(_cli(tiny_data_dir, run, "--epochs", "1", "--resume")) == 0
    assert (run / "best.safetensors").exists()


def test_fkp_train_without_a_validation_part_says_which_epoch_it_kept(tiny_data_dir, tmp_path, capsys):
    from fkp.cli import main

    assert main(_cli(tiny_data_dir, tmp_path / "run", "--epochs", "2", "--val-fraction", "0")) == 0
    assert "done: no validation part, weights of epoch 2," in capsys.readouterr().out


def test_one_reader_for_resuming_and_for_loading_a_model_from_last_pt(tmp_path):
    from fkp.predict import WeightsError, load_model
    from fkp.resume import read_checkpoint

    path = tmp_path / "last.pt"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as resumed:
        read_checkpoint(path)
    with pytest.raises(WeightsError, match="not an fkp training checkpoint") as loaded:
        load_model(path)
    assert "not a readable checkpoint" in str(loaded.value) and str(path) in str(resumed.value)
