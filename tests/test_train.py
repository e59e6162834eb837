import csv

import numpy as np
import pytest
import torch

from fkp.landmarks import NUM_KEYPOINTS, REGIONS
from fkp.losses import wing_loss
from fkp.predict import load_model
from fkp.train import train
from fkp.train_config import TrainConfig
from fkp.training_data import training_sets
from fkp.transforms import FaceCrops

TINY = dict(input_size=32, epochs=2, batch_size=8, limit=24, threads=1, patience=0, warmup_epochs=0.5)


def test_wing_loss_is_log_for_small_and_linear_for_large_errors():
    zero = torch.zeros(1, 1, 2)
    small = wing_loss(torch.full((1, 1, 2), 1.0), zero, width=4.0, curvature=1.0)
    assert small.item() == pytest.approx(4.0 * np.log(2.0))
    large_a = wing_loss(torch.full((1, 1, 2), 10.0), zero, 4.0, 1.0)
    large_b = wing_loss(torch.full((1, 1, 2), 11.0), zero, 4.0, 1.0)
    assert (large_b - large_a).item() == pytest.approx(1.0)  # slope 1 beyond the width
    at_width = wing_loss(torch.full((1, 1, 2), 4.0), zero, 4.0, 1.0)  # continuous at the width
    assert at_width.item() == pytest.approx(4.0 * np.log(5.0))


def test_face_crops_keep_points_on_their_pixels():
    """Bright dots drawn at five points stay under them through zoom, shift, any rotation and flip."""
    gray = np.zeros((100, 100), np.uint8)
    points = np.full((NUM_KEYPOINTS, 2), 50.0, dtype=np.float32)
    points[REGIONS["right_eye"]] = (36, 40)  # the eye line sets the roll of "upright" samples
    points[REGIONS["left_eye"]] = (64, 43)
    marked = [0, 16, 30, 8, 57]  # closed under MIRROR, so flipped samples still mark dots
    points[marked] = [[30, 40], [70, 42], [50, 60], [40, 75], [62, 74]]
    for x, y in points[marked].astype(int):
        gray[y - 1 : y + 2, x - 1 : x + 2] = 255
    config = TrainConfig(input_size=64, photometric=0.0, occlusion=0.0, flip=0.5, wide_rotation=0.4, upright=0.3)
    crops = FaceCrops([gray], points[None], config, augment=True, flippable=np.array([True]))
    np.random.seed(0)
    for _ in range(20):
        crop, normalized = crops[0]
        pixels = np.rint((normalized.numpy()[marked] + 1) / 2 * 64 - 0.5).astype(int)
        image = crop[0].numpy()
        inside = [(x, y) for x, y in pixels if 0 <= x < 64 and 0 <= y < 64]  # a random crop may cut a point off
        assert len(inside) >= 3
        assert all(image[y, x] > image.mean() + image.std() for x, y in inside)


def test_training_writes_checkpoint_log_and_weights_and_resumes(data_dir, tmp_path):
    config = TrainConfig(**TINY, out_dir=str(tmp_path / "run"))
    result = train(config, data_dir, progress=False)
    assert [r.epoch for r in result.history] == [1, 2] and not result.interrupted
    assert all(np.isfinite(r.train_loss) and 0 < r.val_nme for r in result.history)
    with open(tmp_path / "run" / "log.csv") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1", "2"]
    model = load_model(tmp_path / "run" / "best.safetensors")
    assert model.input_size == 32
    checkpoint = load_model(tmp_path / "run" / "last.pt")
    assert checkpoint.metadata["epoch"] == 1  # zero-based index of the last finished epoch

    longer = TrainConfig(**{**TINY, "epochs": 3}, out_dir=str(tmp_path / "run"), resume=True)
    resumed = train(longer, data_dir, progress=False)
    assert [r.epoch for r in resumed.history] == [1, 2, 3]


def test_without_a_validation_part_every_face_trains_and_the_last_epoch_ships(data_dir, tmp_path, capsys):
    config = TrainConfig(**{**TINY, "epochs": 3, "patience": 1}, val_fraction=0.0, out_dir=str(tmp_path / "run"))
    train_set, val_set = training_sets(config, data_dir, progress=False)
    assert len(train_set) == config.limit and len(val_set) == 0
    result = train(config, data_dir, progress=True)
    assert [r.epoch for r in result.history] == [1, 2, 3]  # patience needs a validation NME to act on
    assert all(np.isnan(r.val_nme) for r in result.history) and result.best_epoch == 3
    printed = capsys.readouterr()
    assert "epoch   3  loss" in printed.out + printed.err and "val NME" not in printed.out + printed.err
    shipped = load_model(tmp_path / "run" / "best.safetensors")
    last = load_model(tmp_path / "run" / "last.pt")
    assert shipped.metadata["epoch"] == 3 and "val_nme" not in shipped.metadata
    for name, weights in last.net.state_dict().items():
        assert torch.equal(shipped.net.state_dict()[name].float(), weights.float()), name
    summary = (tmp_path / "run" / "summary.json").read_text()
    assert '"best_val_nme": null' in summary and '"best_epoch": 3' in summary


def test_ctrl_c_saves_a_checkpoint_to_resume_from(data_dir, tmp_path):
    config = TrainConfig(**TINY, out_dir=str(tmp_path / "run"))

    def interrupt(record):
        raise KeyboardInterrupt

    result = train(config, data_dir, progress=False, on_epoch=interrupt)
    assert result.interrupted and len(result.history) == 1
    assert (tmp_path / "run" / "last.pt").exists()
    resumed = train(TrainConfig(**TINY, out_dir=str(tmp_path / "run"), resume=True), data_dir, progress=False)
    assert [r.epoch for r in resumed.history] == [1, 2]


def test_seeded_runs_repeat(data_dir, tmp_path):
    runs = [train(TrainConfig(**{**TINY, "epochs": 1}, out_dir=str(tmp_path / f"r{i}")), data_dir, progress=False)
            for i in range(2)]
    assert runs[0].history[0].train_loss == runs[1].history[0].train_loss


def test_fkp_train_command_line_maps_every_option(data_dir, tmp_path, capsys):
    from fkp.cli import main

    out = tmp_path / "cli-run"
    code = main(["train", "--data-dir", str(data_dir), "--epochs", "1", "--limit", "16", "--input-size", "32",
                 "--threads", "1", "--batch-size", "8", "--photometric", "0", "--loss", "smoothl1", "--out-dir", str(out)])
    assert code == 0
    assert (out / "best.safetensors").exists() and (out / "summary.json").exists()
    assert "best validation NME" in capsys.readouterr().out
    assert main(["train", "--data-dir", str(tmp_path / "nowhere"), "--out-dir", str(tmp_path / "other")]) == 1
    assert "fkp data download" in capsys.readouterr().err


def test_train_takes_your_own_network_and_trains_it_in_place(data_dir, tmp_path):
    """Notebook 2 hands fkp.train the class it wrote; its config (here a NaimishNet's) goes into the outputs."""
    from fkp.models import NaimishNet, NaimishNetConfig

    net = NaimishNet(NaimishNetConfig(input_size=32, dropouts=(0.0, 0.0, 0.0, 0.0), dense_dropout=0.0))
    before = [p.detach().clone() for p in net.parameters()]
    config = TrainConfig(**{**TINY, "epochs": 1}, architecture="naimishnet", out_dir=str(tmp_path / "own"))
    result = train(config, data_dir, progress=False, net=net)
    assert len(result.history) == 1
    assert all(not torch.equal(a, b.cpu()) for a, b in zip(before, net.parameters()))
    model = load_model(tmp_path / "own" / "best.safetensors")
    assert model.net.config.dropouts == (0.0, 0.0, 0.0, 0.0)  # the network's own config, not the default
    with pytest.raises(ValueError, match="takes 64 px crops"):
        train(TrainConfig(**TINY, out_dir=str(tmp_path / "wrong")), data_dir, progress=False, net=NaimishNet())


def test_a_loss_is_one_function_and_one_registry_entry(monkeypatch):
    """Each entry's options name TrainConfig fields; a new entry is a valid --loss at once."""
    import dataclasses

    from fkp.losses import LOSSES, Loss, loss_function
    from fkp.train_config import ConfigError

    names = {spec.name for spec in dataclasses.fields(TrainConfig)}
    assert all(set(entry.options.values()) <= names for entry in LOSSES.values())
    with pytest.raises(ConfigError, match="--loss 'l1' is not one of"):
        TrainConfig(loss="l1")
    seen = {}

    def l1_loss(predicted, target, width):
        seen["width"] = width
        return (predicted - target).abs().mean()

    monkeypatch.setitem(LOSSES, "l1", Loss(l1_loss, {"width": "wing_width"}))
    config = TrainConfig(loss="l1", input_size=32, wing_width=2.5)
    value = loss_function(config)(torch.zeros(1, 68, 2), torch.full((1, 68, 2), 0.5))
    assert value.item() == pytest.approx(0.5 * 16) and seen == {"width": 2.5}  # in crop pixels: 32 / 2


def test_smooth_l1_from_the_registry_is_torchs_bit_for_bit():
    from fkp.losses import loss_function

    predicted, target = torch.randn(4, 68, 2), torch.randn(4, 68, 2)
    ours = loss_function(TrainConfig(loss="smoothl1", input_size=96))(predicted, target)
    assert torch.equal(ours, torch.nn.SmoothL1Loss()(predicted * 48.0, target * 48.0))


def test_train_step_is_one_optimisation_step():
    from fkp.losses import loss_function
    from fkp.models import NaimishNet, NaimishNetConfig
    from fkp.train import train_step

    torch.manual_seed(0)
    net = NaimishNet(NaimishNetConfig(input_size=32)).to(memory_format=torch.channels_last)
    before = [p.detach().clone() for p in net.parameters()]
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5)
    batch = (torch.randn(4, 1, 32, 32), torch.rand(4, 68, 2) * 2 - 1, torch.zeros(4, dtype=torch.int64))
    loss = train_step(net, batch, optimizer, loss_function(TrainConfig(input_size=32)), torch.device("cpu"),
                      scheduler=scheduler)
    assert np.isfinite(loss) and loss > 0
    assert all(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)  # the scheduler stepped


def test_resume_without_a_checkpoint_is_refused(data_dir, tmp_path):
    from fkp.train_config import ConfigError

    with pytest.raises(ConfigError, match="--resume: no checkpoint"):
        train(TrainConfig(**TINY, resume=True, out_dir=str(tmp_path / "run")), data_dir, progress=False)
    assert not (tmp_path / "run").exists()
