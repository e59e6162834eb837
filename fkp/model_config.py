"""The typed configs of the keypoint networks, and the registry of architectures, without PyTorch.

A model file stores its config as JSON (:func:`config_to_dict`); inference reads it back
(:func:`config_from_dict`) to know the crop size without importing torch. The networks these
configs describe are in :mod:`fkp.models`, which re-exports everything here.

Adding an architecture, timm-style: a frozen config dataclass here, decorated with
:func:`register_config` (its ``architecture`` field names it), and its network in
:mod:`fkp.models`, decorated with :func:`fkp.models.register_model`. Training
(``fkp train --architecture NAME``), saving, loading and the ONNX export then know it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Protocol, TypeVar

Architecture = str
"""The name of a registered architecture (see :data:`CONFIGS`)."""

INPUT_SIZE_RANGE = (16, 512)
"""Smallest and largest crop side, in pixels, that a stored config may ask for."""
WIDTH_RANGE = (1, 4096)
"""Smallest and largest channel count, dense width or block count a stored config may ask for."""


CONFIGS: dict[str, type] = {}
"""Architecture name -> its config class, filled by :func:`register_config`."""
_Config = TypeVar("_Config", bound=type)


def register_config(config_class: _Config) -> _Config:
    """Class decorator: register a frozen config dataclass under its ``architecture`` default.

    The class needs an ``input_size: int`` field, an ``architecture`` field (``init=False``) whose
    default is its unique name, and a ``check()`` method that raises ``ValueError`` for sizes
    a stored file may not ask for.
    """
    name = next(spec.default for spec in fields(config_class) if spec.name == "architecture")
    if not isinstance(name, str) or name in CONFIGS:
        raise ValueError(f"architecture name {name!r} is not a new string")
    CONFIGS[name] = config_class
    return config_class


def config_class(architecture: str) -> type:
    """The config class registered as ``architecture``.

    Raises:
        ValueError: (one line) no such architecture.
    """
    if architecture not in CONFIGS:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {sorted(CONFIGS)}")
    return CONFIGS[architecture]


def _check_widths(name: str, widths: list[Any]) -> None:
    low, high = WIDTH_RANGE
    bad = [width for width in widths if not (isinstance(width, int) and low <= width <= high)]
    if bad:
        raise ValueError(f"{name} config sizes must be integers in [{low}, {high}], got {bad}")


@register_config
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

    def check(self) -> None:
        """Raise ``ValueError`` unless every stage has its sizes, all in range."""
        if len({len(self.channels), len(self.kernel_sizes), len(self.dropouts)}) != 1:
            raise ValueError("naimishnet channels, kernel_sizes and dropouts must have one entry per stage")
        _check_widths(self.architecture, [*self.channels, *self.kernel_sizes, self.dense])


@register_config
@dataclass(frozen=True)
class KeypointNetConfig:
    """The default model: a small residual encoder, a feature pyramid decoder and soft-argmax heatmaps."""

    input_size: int = 72  # side S of the square grayscale input crop, in pixels
    channels: tuple[int, int, int, int, int] = (16, 32, 64, 128, 256)  # stride 2, 2, 4, 8, 16
    blocks: tuple[int, int, int] = (1, 1, 1)  # residual blocks at strides 4, 8, 16
    decoder_channels: int = 48  # width of the pyramid decoder (stride 16 -> 8 -> 4)
    # The labelling convention (fkp.conventions) of each heatmap head; the first is the default.
    heads: tuple[str, ...] = ("300w",)
    architecture: Architecture = field(default="keypointnet", init=False)

    def check(self) -> None:
        """Raise ``ValueError`` unless it has 5 widths, 3 block counts (all in range) and distinct heads."""
        if (len(self.channels), len(self.blocks)) != (5, 3):
            raise ValueError("keypointnet config needs 5 channels and 3 block counts")
        if not self.heads or len(set(self.heads)) != len(self.heads) or not all(isinstance(h, str) for h in self.heads):
            raise ValueError(f"keypointnet heads must be distinct convention names, got {list(self.heads)}")
        _check_widths(self.architecture, [*self.channels, *self.blocks, self.decoder_channels])


class ModelConfig(Protocol):
    """What every registered config has (an instance of a class in :data:`CONFIGS`): a dataclass."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def input_size(self) -> int: ...  # side S of the square grayscale input crop, in pixels

    @property
    def architecture(self) -> str: ...  # its name in the registry

    def check(self) -> None: ...  # raise ValueError for sizes out of range


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
    kind = config_class(str(architecture))
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
    config.check()
