"""One heatmap head per labelling convention: the network, its ONNX graph, training and evaluation."""

import shutil

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from fkp.data import FacialKeypointsDataset
from fkp.evaluate import evaluate
from fkp.export import onnx_bytes
from fkp.geometry import keypoints_box
from fkp.metrics import nme
from fkp.models import KeypointNet, KeypointNetConfig
from fkp.predict import KeypointModel, load_model
from fkp.quantize import quantize_onnx
from fkp.train import train
from fkp.train_config import TrainConfig
from fkp.training_data import head_conventions, training_sets

TWO_HEADS = KeypointNetConfig(input_size=32, heads=("300w", "udacity"))


def _network(config: KeypointNetConfig = TWO_HEADS) -> KeypointNet:
    torch.manual_seed(0)
    net = KeypointNet(config).eval()
    with torch.no_grad():  # heads far enough apart to tell them by their points
        net.heatmap_head.weight.normal_(0, 0.5)
    return net


@pytest.fixture
def two_named_sets(tiny_data_dir, tmp_path, monkeypatch):
    """Two tiny sets that fkp takes for the Udacity set and 300-W (found by name)."""
    second = tmp_path / "tiny-300w"
    shutil.copytree(tiny_data_dir, second)
    monkeypatch.setenv("FKP_DATA_DIR", str(tiny_data_dir))
    monkeypatch.setenv("FKP_300W_DIR", str(second))
    return tiny_data_dir, second


def test_a_single_head_network_keeps_its_layout():
    net = KeypointNet(KeypointNetConfig(input_size=32))
    assert net.heatmap_head.out_channels == 68


def test_each_head_answers_for_its_own_crops():
    net = _network()
    crops = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        first, second = net(crops), net(crops, 1)
        each = net.forward_each(crops, torch.tensor([0, 1, 1]))
    assert first.shape == (3, 68, 2)
    assert (first - second).abs().max() > 0.01
    torch.testing.assert_close(each[0], first[0])
    torch.testing.assert_close(each[1:], second[1:])


def test_heads_must_be_distinct_conventions():
    with pytest.raises(ValueError, match="distinct"):
        KeypointNetConfig(heads=("300w", "300w")).check()
    with pytest.raises(ValueError, match="distinct"):
        KeypointNetConfig(heads=()).check()


def test_the_onnx_graph_picks_the_head_at_run_time_also_in_int8():
    net = _network()
    model = KeypointModel(net, TWO_HEADS)
    assert model.conventions == ("300w", "udacity")
    crops = np.random.default_rng(0).integers(0, 256, (4, 32, 32), dtype=np.uint8)
    float_graph = onnx_bytes(net, TWO_HEADS)
    # the head is picked by a Gather of its weights, with no shape arithmetic around it
    assert {node.op_type for node in onnx.load_from_string(float_graph).graph.node} & {
        "Shape", "Range", "Concat", "Unsqueeze", "Slice"
    } == set()
    for graph in (float_graph, quantize_onnx(float_graph, crops)):
        session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
        assert [value.name for value in session.get_inputs()] == ["crops", "head"]
        onnx_model = KeypointModel(None, TWO_HEADS)
        onnx_model._onnx_session = session  # a two-head config: its graph takes "head"
        for head in (0, 1):
            np.testing.assert_allclose(
                onnx_model.predict_crops(crops, head), model.predict_crops(crops, head), atol=0.02
            )


def test_an_unknown_convention_is_one_clear_error():
    model = KeypointModel(_network(), TWO_HEADS)
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="no 'ibug' head; it answers in"):
        model.predict(image, np.array([[8, 8, 40, 40]]), labels="ibug")


def test_a_single_head_model_speaks_the_convention_it_was_trained_to():
    model = KeypointModel(_network(KeypointNetConfig(input_size=32)), KeypointNetConfig(input_size=32))
    assert model.conventions == ("300w",)
    model.metadata["labels"] = "udacity"
    assert model.conventions == ("udacity",)
    assert model.head_of("udacity") == 0


def test_a_head_per_convention_only_where_two_known_sets_meet(two_named_sets, tmp_path):
    other = shutil.copytree(two_named_sets[0], tmp_path / "other")  # a folder of no known convention
    assert head_conventions(TrainConfig()) == ("300w", "udacity")
    assert head_conventions(TrainConfig(labels="udacity")) == ("udacity", "300w")
    assert head_conventions(TrainConfig(head_per_convention=False)) == ("300w",)
    assert head_conventions(TrainConfig(data=("udacity",))) == ("300w",)  # mapped, as before
    assert head_conventions(TrainConfig(data=("300w", str(other)))) == ("300w",)


def test_each_set_trains_its_own_head_with_its_own_labels(two_named_sets):
    udacity, _ = two_named_sets
    config = TrainConfig(val_fraction=0.2)
    train_set, val_set = training_sets(config, progress=False, heads=("300w", "udacity"))
    raw = np.loadtxt(udacity / "training_frames_keypoints.csv", delimiter=",", skiprows=1, usecols=range(1, 137))
    for crops in (train_set, val_set):
        assert set(crops.heads) == {0, 1}
        udacity_points = crops.keypoints[crops.heads == 1].reshape(-1, 136)
        # the Udacity set's own labels, not mapped to 300-W's convention
        assert all(np.isclose(raw, row, atol=1e-3).all(axis=1).any() for row in udacity_points)
    mapped, _ = training_sets(config, progress=False)
    assert set(mapped.heads) == {0}
    udacity_samples = train_set.heads == 1
    assert np.abs(mapped.keypoints[udacity_samples] - train_set.keypoints[udacity_samples]).max() > 0.1


def test_a_two_set_run_saves_a_model_whose_evaluation_uses_the_sets_head(two_named_sets, tmp_path):
    config = TrainConfig(epochs=1, batch_size=8, input_size=32, out_dir=str(tmp_path / "run"), val_fraction=0.2)
    result = train(config, progress=False)
    model = load_model(result.out_dir / "best.safetensors", backend="onnx")
    assert model.conventions == ("300w", "udacity")
    scored = evaluate(model, "udacity", progress=False)
    dataset = FacialKeypointsDataset("udacity", "test")
    scored_points = [
        model.predict(dataset.image(i), keypoints_box(dataset.keypoints[i])[None], labels="udacity")[0]
        for i in range(len(dataset))
    ]
    np.testing.assert_allclose(scored.errors, nme(np.asarray(scored_points), dataset.keypoints), rtol=1e-5)
    default = [model.predict(dataset.image(i), keypoints_box(dataset.keypoints[i])[None])[0] for i in range(2)]
    assert np.abs(np.asarray(default) - np.asarray(scored_points[:2])).max() > 1e-3
