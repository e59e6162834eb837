"""Export a keypoint network to ONNX, for onnxruntime or any other ONNX runtime.

The exported graph takes ``crops``, (N, 1, S, S) float32 standardised crops (see
:func:`fkp.geometry.standardize`), and returns ``keypoints``, (N, 68, 2) normalised crop
coordinates; cutting the crops and mapping the points back stay in Python
(:class:`fkp.predict.KeypointModel`). The file's metadata (``metadata_props``) carries the model
file's strings (:func:`fkp.model_file.onnx_metadata`: config, box scale, facts, and the sha256 of
the safetensors file it was made from), so :func:`fkp.load_model` can load an ``.onnx`` file
alone and refuses a mismatched pair.
"""

from __future__ import annotations

import io
import os
import warnings

import torch
from torch import nn

from fkp.model_config import ModelConfig
from fkp.utils import atomic_write_bytes

OPSET = 17


def onnx_bytes(net: nn.Module, config: ModelConfig, metadata: dict[str, str] | None = None) -> bytes:
    """A network as a serialised ONNX graph with a dynamic batch size.

    Input ``crops`` (N, 1, S, S) float32, output ``keypoints`` (N, 68, 2); a network whose config
    has several ``heads`` has a second input, ``head``, a 0-d int64 index into them.

    Args:
        net: the network (put in eval mode here).
        config: its config (the crop side S and the heads).
        metadata: strings to store in the graph's ``metadata_props`` (needs the onnx package).
    """
    example = torch.zeros(1, 1, config.input_size, config.input_size)
    inputs: tuple[torch.Tensor, ...] = (example,)
    if len(config.heads) > 1:  # several heads: a 0-d int64 input "head" picks one
        inputs = (example, torch.tensor(0))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.eval(),
            inputs,
            buffer,  # type: ignore[arg-type]  # the stubs omit file objects, which export takes
            input_names=["crops", "head"][: len(inputs)],
            output_names=["keypoints"],
            dynamic_axes={"crops": {0: "batch"}, "keypoints": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    if not metadata:
        return buffer.getvalue()
    import onnx

    graph = onnx.load_from_string(buffer.getvalue())
    for key, value in metadata.items():
        graph.metadata_props.add(key=key, value=value)
    return graph.SerializeToString()


def export_onnx(
    net: nn.Module, config: ModelConfig, path: str | os.PathLike[str], metadata: dict[str, str] | None = None
) -> None:
    """Write :func:`onnx_bytes` to ``path`` (atomically)."""
    atomic_write_bytes(path, onnx_bytes(net, config, metadata))
