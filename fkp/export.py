"""Export a keypoint network to ONNX, for onnxruntime or any other ONNX runtime.

The exported graph takes ``crops``, (N, 1, S, S) float32 standardised crops (see
:func:`fkp.geometry.standardize`), and returns ``keypoints``, (N, 68, 2) normalised crop
coordinates; cutting the crops and mapping the points back stay in Python
(:class:`fkp.predict.KeypointModel`). The file's metadata (``metadata_props``) carries the model's
fkp metadata (config, box scale, facts), so :func:`fkp.load_model` can load an ``.onnx`` file alone,
and the sha256 of the safetensors file it was made from, so that a mismatched pair is refused.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import TYPE_CHECKING

import torch

from fkp.utils import atomic_write_bytes

if TYPE_CHECKING:
    from fkp.predict import KeypointModel

OPSET = 17


def onnx_bytes(model: KeypointModel, metadata: dict[str, str] | None = None) -> bytes:
    """The model's network as a serialised ONNX graph with a dynamic batch size.

    Input ``crops`` (N, 1, S, S) float32, output ``keypoints`` (N, 68, 2); a network with several
    heatmap heads (:attr:`fkp.predict.KeypointModel.conventions`) has a second input, ``head``,
    a 0-d int64 index into them.

    Args:
        model: the model whose :attr:`~fkp.predict.KeypointModel.net` is exported.
        metadata: strings to store in the graph's ``metadata_props`` (needs the onnx package).
    """
    example = torch.zeros(1, 1, model.input_size, model.input_size)
    inputs: tuple[torch.Tensor, ...] = (example,)
    if len(model.conventions) > 1:  # several heads: a 0-d int64 input "head" picks one
        inputs = (example, torch.tensor(0))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.net.eval(),
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


def model_file_bytes(model: KeypointModel) -> bytes:
    """The ONNX file :func:`export_onnx` writes, as bytes: the graph with its fkp metadata and, when
    the model was read from a safetensors file, that file's sha256."""
    from fkp.predict import WEIGHTS_SHA256_KEY, sha256_of
    from fkp.weights_io import weights_metadata

    metadata = weights_metadata(model)
    if model.weights_path is not None:
        metadata[WEIGHTS_SHA256_KEY] = sha256_of(model.weights_path)
    return onnx_bytes(model, metadata)


def export_onnx(model: KeypointModel, path: str | os.PathLike[str]) -> None:
    """Write the model's network to ``path`` as ONNX (atomically): :func:`model_file_bytes`."""
    atomic_write_bytes(path, model_file_bytes(model))
