"""Int8 quantisation of an exported network (fkp.quantize)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from fkp.export import onnx_bytes  # noqa: E402
from fkp.geometry import standardize  # noqa: E402
from fkp.models import KeypointNetConfig, build_model  # noqa: E402
from fkp.quantize import QUANTIZED_KEY, quantize_onnx  # noqa: E402

SIZE = 32


@pytest.fixture(scope="module")
def float_graph() -> bytes:
    torch.manual_seed(0)
    config = KeypointNetConfig(input_size=SIZE)
    return onnx_bytes(build_model(config), config, {"format": "fkp", "fkp_weights_sha256": "abc"})


def faces(count: int, seed: int = 0) -> np.ndarray:
    """(count, SIZE, SIZE) uint8 crops: a bright disc on a noisy background, moving about."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[:SIZE, :SIZE]
    crops = []
    for _ in range(count):
        cx, cy = rng.uniform(10, 22, size=2)
        disc = ((xs - cx) ** 2 + (ys - cy) ** 2 < 60) * 150.0
        crops.append(np.clip(disc + rng.normal(60, 20, size=(SIZE, SIZE)), 0, 255).astype(np.uint8))
    return np.stack(crops)


def run(graph: bytes, crops: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    return session.run(None, {"crops": standardize(crops)[:, None]})[0]


def test_the_int8_graph_keeps_the_metadata_and_says_it_is_quantised(float_graph):
    graph = onnx.load_from_string(quantize_onnx(float_graph, faces(16)))
    metadata = {prop.key: prop.value for prop in graph.metadata_props}
    assert metadata == {"format": "fkp", "fkp_weights_sha256": "abc", QUANTIZED_KEY: "int8"}


def test_the_convolutions_but_the_heatmap_head_are_int8(float_graph):
    graph = onnx.load_from_string(quantize_onnx(float_graph, faces(16))).graph
    quantized_inputs = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    convolutions = [node for node in graph.node if node.op_type == "Conv"]
    fed_by_int8 = [conv.input[0] in quantized_inputs and conv.input[1] in quantized_inputs for conv in convolutions]
    assert all(fed_by_int8[:-1]) and not fed_by_int8[-1]
    between = [node for node in graph.node if node.op_type in ("Relu", "Add", "Resize")]
    assert between and all(node.input[0] in quantized_inputs for node in between)  # the layers between run in int8 too
    assert not any(node.input[0] in quantized_inputs for node in graph.node if node.op_type in ("Softmax", "MatMul"))


def test_the_int8_graph_predicts_what_the_float_graph_does_on_new_crops(float_graph):
    crops = faces(32, seed=1)  # not the calibration crops
    quantized = run(quantize_onnx(float_graph, faces(64)), crops)
    reference = run(float_graph, crops)
    assert quantized.shape == reference.shape == (32, 68, 2)
    gap = np.abs(quantized - reference) * SIZE / 2  # crop pixels
    assert gap.mean() < 0.5, gap.mean()


@pytest.mark.parametrize("shape", [(0, SIZE, SIZE), (4, SIZE + 1, SIZE + 1), (SIZE, SIZE)])
def test_calibration_crops_of_the_wrong_shape_are_refused(float_graph, shape):
    with pytest.raises(ValueError, match="calibration crops"):
        quantize_onnx(float_graph, np.zeros(shape, np.uint8))
