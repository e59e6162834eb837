"""The fkp model file format, in one place, without PyTorch or onnxruntime.

A model is a pair of files:

* ``NAME.safetensors``: the network's tensors, and in the safetensors ``__metadata__`` the strings
  :func:`file_metadata` writes: ``format`` (``"fkp"``), ``format_version``
  (:data:`FORMAT_VERSION`), ``model_config`` (the JSON of :func:`fkp.model_config.config_to_dict`),
  ``box_scale`` (crop side / face box side) and ``info`` (a JSON object of free-form facts:
  training figures, provenance, the labelling convention).
* ``NAME.onnx``: the same network exported for onnxruntime (:mod:`fkp.export`), whose
  ``metadata_props`` carry the same strings plus :data:`WEIGHTS_SHA256_KEY`, the sha256 of the
  safetensors file it was made from, so that a mismatched pair is refused.

Writing the tensors and exporting the graph need torch (:mod:`fkp.weights_io`, :mod:`fkp.export`);
reading the metadata back (:func:`read_safetensors_metadata`, :func:`parse_metadata`) does not.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fkp.geometry import DEFAULT_BOX_SCALE
from fkp.model_config import ModelConfig, config_from_dict, config_to_dict

FORMAT_VERSION = "1"
"""The layout of the metadata and tensors a model file carries; a file of another version is refused on load."""
WEIGHTS_SHA256_KEY = "fkp_weights_sha256"
"""ONNX metadata key: sha256 of the safetensors file the ONNX graph was exported from."""
BOX_SCALE_RANGE = (1.0, 4.0)
"""Crop side / box side that a stored model may ask for."""
_CHUNK = 1 << 20  # bytes read at a time when hashing a file


class WeightsError(ValueError):
    """A weights file that is missing, unreadable or not an fkp model (its message is one line)."""


@dataclass(frozen=True)
class ModelFile:
    """What a model file's metadata says about its network (the tensors aside).

    Attributes:
        config: the network's config (:mod:`fkp.model_config`).
        box_scale: crop side as a multiple of the face box's longer side.
        info: free-form facts stored with the weights (training figures, provenance, ``labels``).
    """

    config: ModelConfig
    box_scale: float
    info: dict[str, Any]


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex sha256 digest of a file's bytes (read in chunks, so any size fits in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_metadata(config: ModelConfig, box_scale: float, info: dict[str, Any] | None = None) -> dict[str, str]:
    """The string metadata a model file carries: format, version, config, box scale and ``info`` facts."""
    return {
        "format": "fkp",
        "format_version": FORMAT_VERSION,
        "model_config": json.dumps(config_to_dict(config)),
        "box_scale": repr(box_scale),
        "info": json.dumps(info or {}),
    }


def onnx_metadata(
    config: ModelConfig,
    box_scale: float,
    info: dict[str, Any] | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """:func:`file_metadata`, plus the sha256 of the safetensors file ``weights`` the graph is made
    from (under :data:`WEIGHTS_SHA256_KEY`) when there is one."""
    metadata = file_metadata(config, box_scale, info)
    if weights is not None:
        metadata[WEIGHTS_SHA256_KEY] = sha256_of(weights)
    return metadata


def read_safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its JSON header without torch.

    Raises:
        WeightsError: (one line) the file is not a safetensors file.
    """
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 2 <= size <= min(path.stat().st_size - 8, 100_000_000):
                raise ValueError(f"header length {size} does not fit the file")
            header = json.loads(handle.read(size))
        metadata = header.get("__metadata__") or {} if isinstance(header, dict) else None
        if not isinstance(metadata, dict):
            raise ValueError("no JSON object header")
    except (OSError, ValueError) as error:
        raise WeightsError(f"{path}: not a safetensors weights file ({error})") from error
    return metadata


def parse_metadata(path: Path, metadata: dict[str, str]) -> ModelFile:
    """Read :func:`file_metadata`'s strings back (from a safetensors header or an ONNX graph).

    Args:
        path: the file they came from (named in errors).
        metadata: its string metadata.

    Raises:
        WeightsError: (one line) not fkp metadata, another format version, or a bad config,
            box scale or ``info``.
    """
    if metadata.get("format") != "fkp":
        raise WeightsError(f"{path}: a {path.suffix[1:]} file, but not an fkp model (no fkp metadata)")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise WeightsError(
            f"{path}: fkp model format version {version}, but this fkp reads version {FORMAT_VERSION} "
            "(a model from another fkp release: use that release, or train and save it again)"
        )
    try:
        config = config_from_dict(json.loads(metadata.get("model_config", "")))
        box_scale = float(metadata.get("box_scale", DEFAULT_BOX_SCALE))
        info = json.loads(metadata.get("info", "{}"))
    except ValueError as error:  # JSONDecodeError is a ValueError
        raise WeightsError(f"{path}: bad fkp metadata: {str(error).splitlines()[0]}") from error
    low, high = BOX_SCALE_RANGE
    if not (math.isfinite(box_scale) and low <= box_scale <= high):
        raise WeightsError(f"{path}: bad fkp metadata: box_scale {box_scale} is outside [{low}, {high}]")
    if not isinstance(info, dict):
        raise WeightsError(f"{path}: bad fkp metadata: info is not a JSON object")
    return ModelFile(config, box_scale, info)


def onnx_session(source: str | os.PathLike[str] | bytes, threads: int) -> Any:
    """An onnxruntime session on the CPU, for a file or serialised graph.

    Raises:
        WeightsError: (one line) not an ONNX model onnxruntime can run.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    model = source if isinstance(source, bytes) else str(source)
    try:
        return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for a bad file
        where = "the exported graph" if isinstance(source, bytes) else str(source)
        raise WeightsError(f"{where}: not an ONNX model onnxruntime can run ({type(error).__name__})") from error


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (read through onnxruntime, so no onnx package needed)."""
    return dict(onnx_session(path, 1).get_modelmeta().custom_metadata_map)


def check_onnx_pair(session: Any, onnx_path: str | os.PathLike[str], weights: Path, input_size: int) -> None:
    """Refuse an ONNX file (open as the onnxruntime ``session``) that was exported from other weights
    than the safetensors file ``weights``, or that takes other than (batch, 1, input_size, input_size) crops.

    Raises:
        WeightsError: (one line) naming the command that writes it again.
    """
    recorded = session.get_modelmeta().custom_metadata_map.get(WEIGHTS_SHA256_KEY)
    if recorded != sha256_of(weights):
        raise WeightsError(
            f"{onnx_path}: not made from {weights.name} (sha256 differs); "
            f"write it again with: fkp export --model {weights} --onnx {onnx_path}"
        )
    inputs = session.get_inputs()[0].shape  # ["batch", 1, S, S]
    if list(inputs[1:]) != [1, input_size, input_size]:
        raise WeightsError(f"{onnx_path}: input shape {inputs} does not fit a {input_size} px model")
