"""The typed configs of the keypoint networks, and the one registry of architectures, without PyTorch.

A model file stores its config as JSON (:func:`config_to_dict`); inference reads it back
(:func:`config_from_dict`) to know the crop size without importing torch.

Adding an architecture, timm-style, is one registration: a frozen config dataclass (an
``architecture`` field, ``init=False``, whose default is its unique name; ``input_size``;
``heads``; a ``check()`` method), and its network (an ``nn.Module`` whose ``__init__`` takes one
such config and whose ``forward`` maps (N, 1, S, S) standardised crops to (N, 68, 2) normalised
points) decorated with ``@register_model(TheConfig)``. Training (``fkp train --architecture
NAME``), saving, loading, :func:`list_models` and the ONNX export then know it. The shipped
architectures register their networks by name (``"fkp.models:KeypointNet"``), so that a model
file's config is read without importing torch; the network class is imported on first build
(:func:`network_class`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Protocol, TypeVar

Architecture = str
"""The name of a registered architecture (see :func:`list_models`)."""

INPUT_SIZE_RANGE = (16, 512)
"""Smallest and largest crop side, in pixels, that a stored config may ask for."""
WIDTH_RANGE = (1, 4096)
"""Smallest and largest channel count, dense width or block count a stored config may ask for."""


@dataclass(frozen=True)
class ModelEntry:
    """One registered architecture: its name, its config class and its network class.

    ``network`` is the class itself, or ``"module:Class"`` until :func:`network_class` imports it.
    """

    name: str
    config: type
    network: type | str


ARCHITECTURES: dict[str, ModelEntry] = {}
"""Architecture name -> its entry, filled by :func:`register_model`: the one registry."""
_Network = TypeVar("_Network", bound=type)


def register_model(config: type, network: str | None = None) -> Callable[[_Network], _Network]:
    """Register an architecture: its config class and its network, under the config's ``architecture``.

    Used as a class decorator on the network, ``@register_model(TinyConfig)``; or called once with
    the network's ``"module:Class"`` name, ``register_model(KeypointNetConfig, "fkp.models:KeypointNet")``,
    so that the config is known before (and without) importing the network's module.

    Raises:
        ValueError: (one line) ``config`` is not a dataclass with an ``architecture`` default,
            or that name is taken.
    """
    defaults = {spec.name: spec.default for spec in fields(config)} if hasattr(config, "__dataclass_fields__") else {}
    name = defaults.get("architecture")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{config.__name__} has no 'architecture' field with a name as its default")
    if name in ARCHITECTURES:
        raise ValueError(f"architecture {name!r} is already registered")
    if "heads" not in defaults and not hasattr(config, "heads"):
        raise ValueError(f"{config.__name__} declares no 'heads' (a field or property: the conventions of its outputs)")

    def register(network_class: _Network) -> _Network:
        ARCHITECTURES[name] = ModelEntry(name, config, network_class)
        return network_class

    if network is not None:
        ARCHITECTURES[name] = ModelEntry(name, config, network)
    return register


def list_models() -> list[str]:
    """The names of the registered architectures, sorted (``fkp train --architecture`` takes them)."""
    return sorted(ARCHITECTURES)


def _entry(architecture: str) -> ModelEntry:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {list_models()}")
    return ARCHITECTURES[architecture]


def config_class(architecture: str) -> type:
    """The config class registered as ``architecture``.

    Raises:
        ValueError: (one line) no such architecture.
    """
    return _entry(architecture).config


def network_class(config: ModelConfig) -> type:
    """The network class registered for ``config`` (imported on first use when registered by name).

    Raises:
        ValueError: (one line) ``config`` is not an instance of a registered config class.
    """
    entry = ARCHITECTURES.get(getattr(config, "architecture", ""))
    if entry is None or not isinstance(config, entry.config):
        raise ValueError(
            f"{type(config).__name__} is not a registered architecture's config "
            f"(registered: {list_models()}; add one with fkp.model_config.register_model)"
        )
    if isinstance(entry.network, str):
        module, name = entry.network.split(":")
        ARCHITECTURES[entry.name] = entry = ModelEntry(
            entry.name, entry.config, getattr(importlib.import_module(module), name)
        )
    return entry.network  # type: ignore[return-value]  # a class once imported


def is_registered(config: object) -> bool:
    """Whether ``config`` is an instance of a registered config class."""
    entry = ARCHITECTURES.get(getattr(config, "architecture", ""))
    return entry is not None and isinstance(config, entry.config)


def _check_widths(name: str, widths: list[Any]) -> None:
    low, high = WIDTH_RANGE
    bad = [width for width in widths if not (isinstance(width, int) and low <= width <= high)]
    if bad:
        raise ValueError(f"{name} config sizes must be integers in [{low}, {high}], got {bad}")


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

    @property
    def heads(self) -> tuple[str, ...]:
        """One output, which does not name its labelling convention (the model file's ``labels`` may)."""
        return ()

    def check(self) -> None:
        """Raise ``ValueError`` unless every stage has its sizes, all in range."""
        if len({len(self.channels), len(self.kernel_sizes), len(self.dropouts)}) != 1:
            raise ValueError("naimishnet channels, kernel_sizes and dropouts must have one entry per stage")
        _check_widths(self.architecture, [*self.channels, *self.kernel_sizes, self.dense])


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


register_model(NaimishNetConfig, "fkp.models:NaimishNet")
register_model(KeypointNetConfig, "fkp.models:KeypointNet")


class ModelConfig(Protocol):
    """What every registered config has (an instance of a class in :data:`ARCHITECTURES`): a dataclass."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def input_size(self) -> int: ...  # side S of the square grayscale input crop, in pixels

    @property
    def architecture(self) -> str: ...  # its name in the registry

    @property
    def heads(self) -> tuple[str, ...]: ...  # labelling convention of each output head; () when it does not say

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
