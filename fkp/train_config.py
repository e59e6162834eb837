"""The settings of a training run: one :class:`TrainConfig`, checked when it is made, without PyTorch.

Every field carries its help text in its metadata (``field(..., metadata={"help": ...})``), from
which ``fkp train`` builds one option per field (:mod:`fkp.cli.train`); importing this module
does not import PyTorch, so ``fkp train --help`` works on the core install. A config that cannot
train (an unknown loss, a crop size no model file may have, a learning rate of 0, ...) raises
:class:`ConfigError` with one line naming the option, before any data is read.

The loop that runs a config is :func:`fkp.train.train`; every checkpoint stores the config.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from fkp.conventions import CONVENTIONS
from fkp.geometry import DEFAULT_BOX_SCALE
from fkp.losses import LOSSES
from fkp.model_config import INPUT_SIZE_RANGE, ModelConfig, config_class, config_from_dict, config_to_dict, list_models

Precision = Literal["auto", "fp32", "bf16"]

RECIPE_DATA = ("udacity", "300w")
"""The training sets of the default recipe."""
RECIPE_REPEATS = (1, 3)
"""How often each of :data:`RECIPE_DATA` appears per epoch. Left at this default with fewer
data sets, it is cut to their number (the first set once, as before)."""

RESUME_MUST_MATCH = ("architecture", "input_size", "batch_size", "limit", "val_fraction", "seed")
"""Settings a resumed run must share with its checkpoint: the model, and what fixes the batches."""

SHARES = ("detector_boxes", "wide_rotation", "upright", "flip", "photometric", "occlusion")
"""Fields that are a share of the samples (or a probability): from 0 to 1."""


class ConfigError(ValueError):
    """Training settings that cannot work (the command line exits with code 2)."""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class TrainConfig:
    """Everything a training run depends on; stored in every checkpoint, checked when made.

    Raises:
        ConfigError: (one line, naming the option) settings that cannot train.
    """

    architecture: str = field(default="keypointnet", metadata=_help("network, by name (fkp.list_models())"))
    data: tuple[str, ...] = field(
        default=RECIPE_DATA,
        metadata=_help(
            "training sets: 'udacity' ($FKP_DATA_DIR, then ./data), '300w' ($FKP_300W_DIR, then "
            "./data/faces-300w), or folders in the same layout"
        ),
    )
    data_repeats: tuple[int, ...] = field(
        default=RECIPE_REPEATS,
        metadata=_help("times each set's images appear per epoch, in --data order (a set without a count: once)"),
    )
    labels: str = field(
        default="300w",
        metadata={
            "help": "labelling convention of the model's default head; sets in another one are mapped "
            "(fkp.conventions)",
            "choices": CONVENTIONS,
        },
    )
    head_per_convention: bool = field(
        default=True,
        metadata=_help(
            "one heatmap head per labelling convention of the training sets (keypointnet), each learning "
            "its own set's labels, instead of mapping every set to --labels with fixed offsets"
        ),
    )
    input_size: int = field(default=96, metadata=_help("side of the square grayscale crop fed to the network, pixels"))
    epochs: int = field(default=72, metadata=_help("upper bound; early stopping may end sooner"))
    batch_size: int = field(default=32, metadata=_help("images per optimiser step"))
    lr: float = field(default=3e-3, metadata=_help("peak learning rate of AdamW, reached after the warm-up"))
    weight_decay: float = field(default=0.1, metadata=_help("AdamW decoupled weight decay"))
    warmup_epochs: float = field(default=1.0, metadata=_help("linear warm-up, then cosine decay to zero at --epochs"))
    loss: str = field(
        default="wing",
        metadata={"help": "training loss, by name (fkp.losses.LOSSES)", "choices": LOSSES},
    )
    wing_width: float = field(
        default=4.0, metadata=_help("wing loss w, in crop pixels: errors below it get the log regime")
    )
    wing_curvature: float = field(default=1.0, metadata=_help("wing loss epsilon, in crop pixels"))
    patience: int = field(
        default=15, metadata=_help("epochs without a better validation NME before stopping; 0 disables")
    )
    val_fraction: float = field(
        default=0.1,
        metadata=_help("share of training *people* (photos, for 300-W) held out for validation; 0: none"),
    )
    box_scale: float = field(default=DEFAULT_BOX_SCALE, metadata=_help("crop side = box's longer side x this"))
    box_shift: float = field(
        default=0.05, metadata=_help("random shift of a tight box's centre, fraction of the box side")
    )
    box_zoom: float = field(default=0.1, metadata=_help("random zoom of a tight box's side, exp(uniform(-z, z))"))
    detector_boxes: float = field(
        default=0.5, metadata=_help("share of samples cut around a box in a detector's style (fkp.calibration)")
    )
    rotation_degrees: float = field(
        default=10.0, metadata=_help("standard deviation of the everyday random rotation, degrees")
    )
    wide_rotation: float = field(
        default=0.05, metadata=_help("share of samples turned by any angle, for the first pass")
    )
    upright: float = field(
        default=0.2, metadata=_help("share of samples turned upright by their eye line (what the second pass meets)")
    )
    flip: float = field(
        default=0.5,
        metadata=_help(
            "probability of a horizontal flip (points reordered with MIRROR), used only on the data sets "
            "whose labels are mirror-consistent (fkp.training_data.MIRROR_TOLERANCE): 300-W yes, Udacity no"
        ),
    )
    photometric: float = field(
        default=0.15, metadata=_help("share of samples with random gamma, contrast, blur and noise")
    )
    occlusion: float = field(
        default=0.05, metadata=_help("share of samples with a random block hiding part of the face")
    )
    limit: int | None = field(default=None, metadata=_help("use only this many training images (smoke runs)"))
    seed: int = field(
        default=0, metadata=_help("seed of every random choice (fkp.utils.set_seed): the same seed, the same run")
    )
    threads: int = field(default=2, metadata=_help("torch CPU threads"))
    device: str = field(default="auto", metadata=_help("'auto' picks cuda, then mps, then cpu"))
    precision: Precision = field(
        default="auto", metadata=_help("'auto': bfloat16 autocast where the hardware has it, else float32")
    )
    out_dir: str = field(
        default="runs/default",
        metadata=_help("folder for last.pt, best.safetensors, best.onnx, log.csv and summary.json"),
    )
    resume: bool = field(default=False, metadata=_help("continue from --out-dir's last.pt"))

    def __post_init__(self) -> None:
        if self.data_repeats == RECIPE_REPEATS and len(self.data) < len(RECIPE_REPEATS):
            self.data_repeats = RECIPE_REPEATS[: len(self.data)]
        _validate(self)

    def model_config(self, heads: tuple[str, ...] | None = None) -> ModelConfig:
        """The registered config of ``architecture`` with its defaults, at ``input_size``.

        ``heads``: the labelling conventions of its heatmap heads, for an architecture that has
        several (``heads`` field); default: one head, in ``labels``.
        """
        kind = config_class(self.architecture)
        if "heads" not in {spec.name for spec in fields(kind)}:
            return typing.cast(ModelConfig, kind(input_size=self.input_size))
        return typing.cast(ModelConfig, kind(input_size=self.input_size, heads=heads or (self.labels,)))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from :func:`dataclasses.asdict`'s output (lists become tuples; unknown keys are ignored).

        Raises:
            ConfigError: the values cannot train.
        """
        known = {f.name for f in fields(cls)}
        values = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
        return cls(**{key: value for key, value in values.items() if key in known})


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _validate(config: TrainConfig) -> None:
    """Refuse settings that cannot train, naming the option (see :class:`TrainConfig`)."""
    at_least_one = {name: getattr(config, name) for name in ("epochs", "batch_size", "threads")}
    if config.limit is not None:
        at_least_one["limit"] = config.limit
    for name, value in at_least_one.items():
        if value < 1:
            raise ConfigError(f"{_flag(name)} must be at least 1, got {value}")
    if config.limit is not None and config.limit < config.batch_size:
        raise ConfigError(f"--batch-size {config.batch_size} is larger than --limit {config.limit}: nothing to train")
    if config.architecture not in list_models():
        raise ConfigError(f"--architecture {config.architecture!r} is not one of {list_models()}")
    low, high = INPUT_SIZE_RANGE
    if not low <= config.input_size <= high:
        raise ConfigError(
            f"--input-size must be from {low} to {high} pixels (what a model file may ask for), got {config.input_size}"
        )
    try:  # the very checks a model file's config passes when it is loaded
        config_from_dict(config_to_dict(config.model_config()))
    except ValueError as error:
        raise ConfigError(
            f"--architecture {config.architecture} at --input-size {config.input_size}: {error}"
        ) from None
    _validate_data(config)
    if config.labels not in CONVENTIONS:
        raise ConfigError(f"--labels {config.labels!r} is not one of {list(CONVENTIONS)}")
    if config.loss not in LOSSES:
        raise ConfigError(f"--loss {config.loss!r} is not one of {sorted(LOSSES)}")
    if config.precision not in typing.get_args(Precision):
        raise ConfigError(f"--precision {config.precision!r} is not one of {list(typing.get_args(Precision))}")
    if not 0.0 <= config.val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be at least 0 and below 1, got {config.val_fraction}")
    if not (math.isfinite(config.lr) and config.lr > 0):
        raise ConfigError(f"--lr must be a number above 0, got {config.lr}")
    positive = ("wing_width", "wing_curvature", "box_scale")
    non_negative = ("weight_decay", "warmup_epochs", "box_shift", "box_zoom", "rotation_degrees")
    for name in positive + non_negative:
        value = getattr(config, name)
        if not (math.isfinite(value) and (value > 0 if name in positive else value >= 0)):
            raise ConfigError(
                f"{_flag(name)} must be a number {'above' if name in positive else 'at least'} 0, got {value}"
            )
    for name in SHARES:
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ConfigError(f"{_flag(name)} is a share: from 0 to 1, got {getattr(config, name)}")
    if config.patience < 0:
        raise ConfigError(f"--patience must be at least 0 (0 disables early stopping), got {config.patience}")
    if not 0 <= config.seed < 2**32:
        raise ConfigError(f"--seed must be from 0 to 2**32 - 1, got {config.seed}")


def _validate_data(config: TrainConfig) -> None:
    if not config.data or not all(isinstance(name, str) and name for name in config.data):
        raise ConfigError(f"--data needs at least one data set name or folder, got {list(config.data)}")
    if len(config.data_repeats) > len(config.data):
        raise ConfigError(
            f"--data-repeats has {len(config.data_repeats)} counts for {len(config.data)} data set(s) "
            f"({' '.join(config.data)}): give at most one count per set"
        )
    if any(count < 1 for count in config.data_repeats):
        raise ConfigError(f"--data-repeats counts must be at least 1, got {list(config.data_repeats)}")
