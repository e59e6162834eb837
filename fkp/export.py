"""Export a keypoint network to ONNX, for onnxruntime or any other ONNX runtime.

The exported graph takes ``crops``, (N, 1, S, S) float32 standardised crops (see
:func:`fkp.geometry.standardize`), and returns ``keypoints``, (N, 68, 2) normalised crop
coordinates; cutting the crops and mapping the points back stay in Python
(:class:`fkp.predict.KeypointModel`).
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


def onnx_bytes(model: KeypointModel) -> bytes:
    """The model's network as a serialised ONNX graph with a dynamic batch size."""
    example = torch.zeros(1, 1, model.input_size, model.input_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.net.eval(),
            example,
            buffer,
            input_names=["crops"],
            output_names=["keypoints"],
            dynamic_axes={"crops": {0: "batch"}, "keypoints": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def export_onnx(model: KeypointModel, path: str | os.PathLike[str]) -> None:
    """Write the model's network to ``path`` as ONNX (atomically)."""
    atomic_write_bytes(path, onnx_bytes(model))
