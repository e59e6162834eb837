import pytest
import torch

from fkp.landmarks import NUM_KEYPOINTS
from fkp.models import (
    KeypointNet,
    KeypointNetConfig,
    NaimishNet,
    NaimishNetConfig,
    build_model,
    config_from_dict,
    config_to_dict,
    soft_argmax,
)

SMALL = [NaimishNetConfig(input_size=32, channels=(4, 8), kernel_sizes=(3, 3), dropouts=(0.1, 0.1), dense=16),
         KeypointNetConfig(input_size=32, channels=(4, 4, 8, 8, 8), blocks=(1, 1, 1), decoder_channels=8)]


@pytest.mark.parametrize("config", SMALL, ids=lambda c: c.architecture)
def test_output_shape_range_and_gradients_reach_every_parameter(config):
    torch.manual_seed(0)
    net = build_model(config)
    crops = torch.randn(3, 1, config.input_size, config.input_size)
    out = net(crops)
    assert out.shape == (3, NUM_KEYPOINTS, 2)
    assert torch.isfinite(out).all() and out.abs().max() <= 1.0
    out.sum().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


@pytest.mark.parametrize("config", [NaimishNetConfig(), KeypointNetConfig()], ids=lambda c: c.architecture)
def test_config_round_trips_through_a_dict(config):
    assert config_from_dict(config_to_dict(config)) == config


def test_default_architectures():
    assert isinstance(build_model(NaimishNetConfig()), NaimishNet)
    assert isinstance(build_model(KeypointNetConfig()), KeypointNet)
    with pytest.raises(ValueError, match="unknown architecture"):
        config_from_dict({"architecture": "resnet"})


def test_soft_argmax_finds_a_sharp_peak_at_the_cell_centre():
    heatmaps = torch.full((1, 2, 8, 8), -50.0)
    heatmaps[0, 0, 2, 5] = 50.0  # row 2, column 5
    heatmaps[0, 1, 7, 0] = 50.0
    points = soft_argmax(heatmaps)[0]
    cell = lambda i: (i + 0.5) / 8 * 2 - 1  # noqa: E731
    torch.testing.assert_close(points, torch.tensor([[cell(5), cell(2)], [cell(0), cell(7)]]))
