"""The typed configs of the keypoint networks, without PyTorch.

A model file stores its config as JSON (:func:`config_to_dict`); inference reads it back
(:func:`config_from_dict`) to know the crop size without importing torch. The networks these
configs describe are in :mod:`fkp.models`, which re-exports everything here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Architecture = Literal["naimishnet", "keypointnet"]

INPUT_SIZE_RANGE = (16, 512)
"""Smallest and largest crop side, in pixels, that a stored config may ask for."""
WIDTH_RANGE = (1, 4096)
"""Smallest and largest channel count, dense width or block count a stored config may ask for."""


@dataclass(frozen=True)
class NaimishNetConfig:
    """The course baseline: convolution, pooling and dropout stages, then dense layers."""

    input_size: int = 64  # side S of the square grayscale input crop, in pixels
    channels: tuple[int, ...] = (16, 32, 64, 128)  # one conv + pool + dropout stage each
    kernel_sizes: tuple[int, ...] = (5, 3, 3, 3)
    dropouts: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4)  # rising with depth, as in NaimishNet
    dense: int = 256  # width of the two hidden dense layers
    dense_dropout: float = 0.5
    architecture: Architecture = field(default="naimishnet", init=False)


@dataclass(frozen=True)
class KeypointNetConfig:
    """The default model: a small residual encoder, a feature pyramid decoder and soft-argmax heatmaps."""

    input_size: int = 72  # side S of the square grayscale input crop, in pixels
    channels: tuple[int, int, int, int, int] = (16, 32, 64, 128, 256)  # stride 2, 2, 4, 8, 16
    blocks: tuple[int, int, int] = (1, 1, 1)  # residual blocks at strides 4, 8, 16
    decoder_channels: int = 48  # width of the pyramid decoder (stride 16 -> 8 -> 4)
    architecture: Architecture = field(default="keypointnet", init=False)


ModelConfig = NaimishNetConfig | KeypointNetConfig

_KINDS: dict[str, type[NaimishNetConfig] | type[KeypointNetConfig]] = {
    "naimishnet": NaimishNetConfig,
    "keypointnet": KeypointNetConfig,
}


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """A JSON-friendly dict of a model config (tuples become lists)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()}


def config_from_dict(values: dict[str, Any]) -> ModelConfig:
    """Rebuild a model config from :func:`config_to_dict`'s output.

    Raises:
        ValueError: (one line) not a dict, an unknown architecture or key, or a size out of
            :data:`INPUT_SIZE_RANGE` / :data:`WIDTH_RANGE`.
    """
    if not isinstance(values, dict):
        raise ValueError(f"model config must be a JSON object, got {type(values).__name__}")
    values = dict(values)
    architecture = values.pop("architecture", None)
    if architecture not in _KINDS:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {sorted(_KINDS)}")
    kind = _KINDS[architecture]
    known = {spec.name for spec in fields(kind) if spec.init}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {architecture} config keys {unknown}")
    arguments: dict[str, Any] = {
        key: tuple(value) if isinstance(value, list) else value for key, value in values.items()
    }
    config = kind(**arguments)
    _check_sizes(config)
    return config


def _check_sizes(config: ModelConfig) -> None:
    low, high = INPUT_SIZE_RANGE
    if not (isinstance(config.input_size, int) and low <= config.input_size <= high):
        raise ValueError(f"input_size must be an integer in [{low}, {high}], got {config.input_size!r}")
    widths: list[Any] = list(config.channels)
    if isinstance(config, NaimishNetConfig):
        lengths = {len(config.channels), len(config.kernel_sizes), len(config.dropouts)}
        if len(lengths) != 1:
            raise ValueError("naimishnet channels, kernel_sizes and dropouts must have one entry per stage")
        widths += [*config.kernel_sizes, config.dense]
    else:
        if (len(config.channels), len(config.blocks)) != (5, 3):
            raise ValueError("keypointnet config needs 5 channels and 3 block counts")
        widths += [*config.blocks, config.decoder_channels]
    low, high = WIDTH_RANGE
    bad = [width for width in widths if not (isinstance(width, int) and low <= width <= high)]
    if bad:
        raise ValueError(f"{config.architecture} config sizes must be integers in [{low}, {high}], got {bad}")
