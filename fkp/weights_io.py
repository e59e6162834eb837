"""The PyTorch side of model files: build a network from safetensors, save one, read a checkpoint.

Inference never imports this module (:mod:`fkp.predict` runs the ONNX file beside the weights);
training, export, notebook 2 and a :class:`fkp.predict.KeypointModel`'s ``net`` / ``save`` /
PyTorch backend do. The format itself (metadata, version, sha256) is :mod:`fkp.model_file`; this
module never imports :mod:`fkp.predict`. Needs ``fkp[train]``: torch, safetensors and onnx.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from fkp.model_config import ModelConfig, config_from_dict
from fkp.model_file import ModelFile, WeightsError, file_metadata, onnx_metadata
from fkp.models import build_model
from fkp.resume import CheckpointError, read_checkpoint
from fkp.utils import atomic_write_bytes


def read_network(path: Path, config: ModelConfig) -> nn.Module:
    """The network ``config`` describes, with the weights of safetensors file ``path`` (as float32).

    Raises:
        WeightsError: (one line) the file cannot be read, or its tensors do not fit ``config``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(f"{path}: not a safetensors weights file ({error})") from error
    return _fit(path, config, state)


def _fit(path: Path, config: ModelConfig, state: dict[str, torch.Tensor]) -> nn.Module:
    net = build_model(config)
    try:
        net.load_state_dict(state)  # casts float16 tensors to the network's float32
    except RuntimeError as error:
        raise WeightsError(
            f"{path}: weights do not fit a {config.architecture} model: {str(error).splitlines()[0]}"
        ) from error
    return net.eval()


def load_checkpoint(path: Path) -> tuple[nn.Module, ModelFile]:
    """The network and model facts of a training checkpoint ``last.pt``, read by :func:`fkp.resume.read_checkpoint`.

    Raises:
        WeightsError: (one line) not an fkp training checkpoint, or weights that do not fit its config.
    """
    try:
        checkpoint = read_checkpoint(path)
        config = config_from_dict(checkpoint["model_config"])
        box_scale = float(checkpoint["train_config"]["box_scale"])
        state = checkpoint["model"]
    except CheckpointError as error:
        reason = str(error).removeprefix(f"{path}: ")
        raise WeightsError(f"{path}: not an fkp training checkpoint ({reason})") from None
    except (ValueError, KeyError, TypeError) as error:
        raise WeightsError(f"{path}: not an fkp training checkpoint ({type(error).__name__}: {error})") from None
    return _fit(path, config, state), ModelFile(config, box_scale, {"epoch": checkpoint.get("epoch")})


def save_model(
    net: nn.Module,
    model: ModelFile,
    path: str | os.PathLike[str],
    half: bool = False,
    onnx: bool = True,
) -> None:
    """Write a network as an fkp model file (safetensors, atomically), and its ONNX export beside it.

    Args:
        net: the network to save (its ``state_dict``).
        model: its config, box scale and ``info`` facts (:func:`fkp.model_file.file_metadata`).
        path: the ``.safetensors`` file to write.
        half: store floating-point tensors as float16.
        onnx: also write ``path.with_suffix(".onnx")``: the network read back from ``path`` (so
            float16 rounding included), exported, with the sha256 of ``path`` in its metadata.
    """
    from safetensors.torch import save

    path = Path(path)
    state = {key: value.detach().cpu().contiguous() for key, value in net.state_dict().items()}
    if half:
        state = {key: value.half() if value.is_floating_point() else value for key, value in state.items()}
    atomic_write_bytes(path, save(state, metadata=file_metadata(model.config, model.box_scale, model.info)))
    if onnx:
        from fkp.export import export_onnx

        metadata = onnx_metadata(model.config, model.box_scale, model.info, weights=path)
        export_onnx(read_network(path, model.config), model.config, path.with_suffix(".onnx"), metadata)
