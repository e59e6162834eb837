"""Int8 post-training quantisation of an exported keypoint network, for fast inference on CPUs.

The convolutions' weights (one scale per output channel) and the activations between the layers
(after each ReLU, residual addition and upsampling) become 8-bit integers, with activation ranges
calibrated on real face crops. The heatmap head and everything after it (softmax and soft-argmax,
:func:`fkp.models.soft_argmax`) stay float32: a heatmap's softmax turns small rounding errors in
its logits into visible shifts of the point, while the layers before it barely notice.
``benchmarks/compare_dlib.py`` prints the time per face and the error of both backends.

The quantised graph keeps the float graph's ``metadata_props`` (the fkp config and the sha256 of
the safetensors weights it was exported from, see :mod:`fkp.export`) and adds
:data:`QUANTIZED_KEY`. Needs onnx and onnxruntime (``pip install "fkp[train]"``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fkp import geometry

QUANTIZED_OPS = ("Conv", "Relu", "Add", "Resize")
"""ONNX operator types that :func:`quantize_onnx` runs in int8 (the heatmap head excepted): the
ReLUs, additions and upsampling as well as the convolutions, so that activations stay int8 between
layers."""
QUANTIZED_KEY = "fkp_quantized"
"""ONNX metadata key present (value ``"int8"``) on a graph written by :func:`quantize_onnx`."""


def quantize_onnx(model_bytes: bytes, crops: np.ndarray, op_types: tuple[str, ...] = QUANTIZED_OPS) -> bytes:
    """An int8 copy of a float keypoint network, calibrated on ``crops``.

    Args:
        model_bytes: a serialised float ONNX graph as :func:`fkp.export.onnx_bytes` writes it
            (input ``crops``, (N, 1, S, S) standardised float32; a multi-head graph's ``head``
            input is fed 0, the default head, during calibration).
        crops: (M, S, S) uint8 grayscale face crops cut as the model cuts them
            (:meth:`fkp.predict.KeypointModel.crops`); a few hundred are plenty.

    Returns:
        The serialised quantised graph (QDQ format), same input and output as the float one.

    Raises:
        ValueError: no crops, or crops whose size does not fit the graph's input.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    graph = onnx.load_from_string(model_bytes)
    side = graph.graph.input[0].type.tensor_type.shape.dim[-1].dim_value
    has_head = any(value.name == "head" for value in graph.graph.input)  # a multi-head network
    crops = np.asarray(crops)
    if crops.ndim != 3 or len(crops) == 0 or crops.shape[1:] != (side, side):
        raise ValueError(f"calibration crops must be (M, {side}, {side}) uint8, got shape {crops.shape}")

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches: Iterator[np.ndarray] = iter(geometry.standardize(crops)[:, None, None])

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            if batch is None:
                return None
            return {"crops": batch, "head": np.array(0, dtype=np.int64)} if has_head else {"crops": batch}

    with tempfile.TemporaryDirectory(prefix="fkp_quantize_") as folder:
        source, prepared, target = (Path(folder) / name for name in ("float.onnx", "prepared.onnx", "int8.onnx"))
        source.write_bytes(model_bytes)
        # onnx's own shape inference: the symbolic one loses the batch size through Resize
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        convolutions = [node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Conv"]
        head = convolutions[-1]  # the heatmap head: the last convolution before the soft-argmax
        quantize_static(
            str(prepared),
            str(target),
            Crops(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(op_types),
            nodes_to_exclude=[head],
        )
        quantized = onnx.load(str(target))
    del quantized.metadata_props[:]
    for prop in graph.metadata_props:
        quantized.metadata_props.add(key=prop.key, value=prop.value)
    quantized.metadata_props.add(key=QUANTIZED_KEY, value="int8")
    return quantized.SerializeToString()
