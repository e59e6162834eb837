"""The training losses, in one registry: a new loss is one function and one :data:`LOSSES` entry.

A loss takes predicted and target points in crop pixels, (N, 68, 2) tensors, and returns a scalar
tensor; its parameters come from :class:`fkp.train_config.TrainConfig` fields named in its entry
(``"wing"``: ``wing_width`` and ``wing_curvature``). ``fkp train --loss NAME`` offers every name
here, and a config naming another loss is refused when it is made.

Importing this module does not import PyTorch (the config, and ``fkp train --help``, read the
names on the core install); the functions import it when they run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

LossFunction = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]
"""``loss(predicted, target)`` on (N, 68, 2) normalised points -> scalar tensor (:func:`loss_function`)."""


def wing_loss(predicted: torch.Tensor, target: torch.Tensor, width: float, curvature: float) -> torch.Tensor:
    """Wing loss (Feng et al., CVPR 2018): logarithmic for small errors, L1 for large ones.

    Args:
        predicted, target: (N, 68, 2) points (x, y) in the same units as ``width`` and ``curvature``.
        width: the error, per coordinate, below which the loss is logarithmic.
        curvature: the curvature of the logarithmic part.

    Returns:
        Scalar: the mean over points and coordinates of the loss of each coordinate's error.
    """
    import torch

    error = (predicted - target).abs()
    constant = width - width * math.log1p(width / curvature)
    loss = torch.where(error < width, width * torch.log1p(error / curvature), error - constant)
    return loss.mean()


def smooth_l1_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Smooth L1 (Huber with ``beta`` 1), the course's loss: the mean over points and coordinates.

    Args:
        predicted, target: (N, 68, 2) points (x, y), in crop pixels.
    """
    from torch import nn

    return nn.functional.smooth_l1_loss(predicted, target)


@dataclass(frozen=True)
class Loss:
    """A registered loss: its function and the config fields its keyword arguments come from."""

    function: Callable[..., torch.Tensor]
    options: dict[str, str] = field(default_factory=dict)  # keyword argument -> TrainConfig field
    description: str = ""


LOSSES: dict[str, Loss] = {
    "wing": Loss(wing_loss, {"width": "wing_width", "curvature": "wing_curvature"}, "wing loss (Feng et al., 2018)"),
    "smoothl1": Loss(smooth_l1_loss, {}, "Smooth L1, the course's choice"),
}
"""Loss name -> :class:`Loss`: what ``TrainConfig.loss`` may name."""


def loss_function(config: Any) -> LossFunction:
    """The loss ``config.loss`` names, on normalised points, computed in crop pixels.

    Args:
        config: a :class:`fkp.train_config.TrainConfig` (its ``loss``, ``input_size`` and the
            fields the loss's entry names).

    Returns:
        ``loss(predicted, target)`` for (N, 68, 2) points normalised to [-1, 1] on the crop; they
        are scaled by half the crop side first, so the loss's parameters read as crop pixels.
    """
    entry = LOSSES[config.loss]
    options = {argument: getattr(config, name) for argument, name in entry.options.items()}
    half = config.input_size / 2
    return lambda p, t: entry.function(p * half, t * half, **options)
