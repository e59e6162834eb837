import numpy as np
import pytest
import torch
import torch.nn.functional as F

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
from fkp.models import _upsample_to as upsample_to

SMALL = [
    NaimishNetConfig(input_size=32, channels=(4, 8), kernel_sizes=(3, 3), dropouts=(0.1, 0.1), dense=16),
    KeypointNetConfig(input_size=32, channels=(4, 4, 8, 8, 8), blocks=(1, 1, 1), decoder_channels=8),
]


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


def test_one_pair_of_decorators_adds_an_architecture_that_trains_saves_and_loads(tmp_path):
    """The registry: a config class and its network, registered once, are all a new architecture needs."""
    from dataclasses import dataclass, field

    from torch import nn

    import fkp
    from fkp.model_config import ARCHITECTURES, register_model
    from fkp.predict import KeypointModel, load_model
    from fkp.train_config import TrainConfig

    @dataclass(frozen=True)
    class TinyConfig:
        input_size: int = 16
        heads: tuple[str, ...] = ()
        architecture: str = field(default="tiny-test-net", init=False)

        def check(self) -> None:
            pass

    @register_model(TinyConfig)
    class TinyNet(nn.Module):
        def __init__(self, config: TinyConfig) -> None:
            super().__init__()
            self.config = config
            self.head = nn.Linear(config.input_size**2, 136)

        def forward(self, crops: torch.Tensor) -> torch.Tensor:
            return torch.tanh(self.head(crops.flatten(1))).view(-1, 68, 2)

    try:
        assert "tiny-test-net" in fkp.list_models()
        config = TrainConfig(architecture="tiny-test-net", input_size=16).model_config()
        assert isinstance(config, TinyConfig) and config.input_size == 16
        net = build_model(config)
        assert isinstance(net, TinyNet)
        KeypointModel(net, config).save(tmp_path / "tiny.safetensors", onnx=False)
        loaded = load_model(tmp_path / "tiny.safetensors", backend="torch")
        crops = np.zeros((2, 16, 16), np.uint8)
        np.testing.assert_allclose(
            loaded.predict_crops(crops), KeypointModel(net, config).predict_crops(crops), atol=1e-6
        )
        with pytest.raises(ValueError, match="'tiny-test-net' is already registered"):
            register_model(TinyConfig)(TinyNet)
    finally:
        del ARCHITECTURES["tiny-test-net"]
    assert "tiny-test-net" not in fkp.list_models()


def test_an_unregistered_config_is_one_clear_error():
    from dataclasses import dataclass, field

    from fkp.model_config import register_model

    @dataclass(frozen=True)
    class Stray:
        input_size: int = 16
        heads: tuple[str, ...] = ()
        architecture: str = field(default="stray", init=False)

    with pytest.raises(ValueError, match="Stray is not a registered architecture's config") as error:
        build_model(Stray())
    assert "\n" not in str(error.value)

    @dataclass(frozen=True)
    class Nameless:
        input_size: int = 16

    with pytest.raises(ValueError, match="no 'architecture' field"):
        register_model(Nameless)

    @dataclass(frozen=True)
    class Headless:
        input_size: int = 16
        architecture: str = field(default="headless", init=False)

    with pytest.raises(ValueError, match="declares no 'heads'"):
        register_model(Headless)


def test_every_config_declares_its_heads():
    assert NaimishNetConfig().heads == () and KeypointNetConfig().heads == ("300w",)
    assert KeypointNetConfig(heads=("300w", "udacity")).heads == ("300w", "udacity")


def test_an_unknown_architecture_is_one_clear_error():
    from fkp.model_config import config_from_dict
    from fkp.train_config import ConfigError, TrainConfig

    with pytest.raises(ValueError, match="unknown architecture 'resnet'"):
        config_from_dict({"architecture": "resnet", "input_size": 64})
    with pytest.raises(ConfigError, match="--architecture 'resnet'"):
        TrainConfig(architecture="resnet")


@pytest.mark.parametrize("size", [3, 5, 6, 12])
def test_decoder_upsampling_is_nearest_neighbour_to_odd_and_even_sizes(size):
    features = torch.randn(1, 2, size, size)
    for target in (2 * size, 2 * size - 1):  # a stride-2 stage halves a size, rounding up
        like = torch.zeros(1, 1, target, target)
        expected = F.interpolate(features, size=(target, target), mode="nearest")
        torch.testing.assert_close(upsample_to(features, like), expected)


@pytest.mark.parametrize("input_size", [32, 40])  # 40: stride-16 maps of 3 x 3, upsampled to 5 x 5
def test_the_exported_graph_has_no_shape_arithmetic_and_runs_any_batch(input_size):
    """Each small ONNX op costs microseconds per face: the graph is convolutions, resizes and a soft-argmax only."""
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from fkp.export import onnx_bytes

    config = KeypointNetConfig(input_size=input_size, channels=(4, 4, 8, 8, 8), blocks=(1, 1, 1), decoder_channels=8)
    torch.manual_seed(0)
    net = build_model(config).eval()
    graph = onnx.load_from_string(onnx_bytes(net, config))
    assert {node.op_type for node in graph.graph.node} & {"Shape", "Gather", "Range", "Concat", "Unsqueeze"} == set()
    session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        crops = torch.randn(batch, 1, input_size, input_size)
        with torch.no_grad():
            expected = net(crops).numpy()
        np.testing.assert_allclose(session.run(None, {"crops": crops.numpy()})[0], expected, atol=1e-5)
