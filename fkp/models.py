"""Keypoint networks: the course baseline and the shipped default, each built from a typed config.

Both take a batch of grayscale face crops, (N, 1, S, S) float32 standardised per crop (see
:func:`fkp.geometry.standardize`), and return keypoints in *normalised crop coordinates*,
(N, 68, 2) x then y in [-1, 1]: -1 is the left (top) edge of the crop, +1 the right (bottom) edge.
Their configs live in :mod:`fkp.model_config` (no torch), re-exported here; both networks are
registered there by name (``register_model(KeypointNetConfig, "fkp.models:KeypointNet")``), so
that a model file's config is read without importing this module.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from fkp.landmarks import NUM_KEYPOINTS
from fkp.model_config import (
    Architecture,
    KeypointNetConfig,
    ModelConfig,
    NaimishNetConfig,
    config_class,
    config_from_dict,
    config_to_dict,
    network_class,
)

__all__ = [
    "Architecture",
    "KeypointNet",
    "KeypointNetConfig",
    "ModelConfig",
    "NaimishNet",
    "NaimishNetConfig",
    "build_model",
    "config_class",
    "config_from_dict",
    "config_to_dict",
    "soft_argmax",
]


def build_model(config: ModelConfig) -> nn.Module:
    """The network a registered config describes (:func:`fkp.model_config.network_class`), freshly initialised.

    Raises:
        ValueError: (one line) ``config`` is not a registered architecture's config.
    """
    return cast(nn.Module, network_class(config)(config))


class NaimishNet(nn.Module):
    """The course baseline, after NaimishNet (Agarwal, Krohn-Grimberghe and Vyas, 2017, arXiv:1710.00977):
    direct regression of 136 numbers.

    Each stage is conv -> ELU -> 2x2 max-pool -> dropout; two dense hidden layers follow, with an
    ELU and a ReLU (the paper: ELU, then linear). The output passes through ``tanh`` so that points
    stay inside the crop's [-1, 1] box. Taught in ``2_Define_Train_Network.ipynb``, where the
    learner writes it out as the class ``Net`` (same layers and names: its weights load into this one).
    """

    def __init__(self, config: NaimishNetConfig = NaimishNetConfig()) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        in_channels, size = 1, config.input_size
        for out_channels, kernel, dropout in zip(config.channels, config.kernel_sizes, config.dropouts, strict=True):
            layers += [
                nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2),
                nn.ELU(),
                nn.MaxPool2d(2),
                nn.Dropout(dropout),
            ]
            in_channels, size = out_channels, size // 2
        self.features = nn.Sequential(*layers)
        self.regressor = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * size * size, config.dense),
            nn.ELU(),
            nn.Dropout(config.dense_dropout),
            nn.Linear(config.dense, config.dense),
            nn.ReLU(),
            nn.Dropout(config.dense_dropout),
            nn.Linear(config.dense, NUM_KEYPOINTS * 2),
        )

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) crops -> (N, 68, 2) normalised keypoints."""
        out = self.regressor(self.features(crops))
        return torch.tanh(out).view(-1, NUM_KEYPOINTS, 2)  # (N, 136) -> (N, 68, 2)


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut (a 1x1 projection when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn_relu(in_channels, out_channels, stride),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


def _stage(in_channels: int, out_channels: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(
        ResidualBlock(in_channels, out_channels, stride=2),
        *(ResidualBlock(out_channels, out_channels) for _ in range(blocks - 1)),
    )


def cell_centres(height: int, width: int) -> torch.Tensor:
    """(H * W, 2) normalised (x, y) of each heatmap cell's centre, row by row: ``(i + 0.5) / W * 2 - 1``."""
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 - 1
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)


def soft_argmax(heatmaps: torch.Tensor) -> torch.Tensor:
    """Expected (x, y) position under a softmax over each heatmap (integral regression).

    Written as one softmax and one matrix product with a constant grid, so that the exported ONNX
    graph has no shape arithmetic (each small op costs microseconds at inference).

    Args:
        heatmaps: (N, K, H, W) logits.

    Returns:
        (N, K, 2) positions, x then y, normalised to [-1, 1] with cell centres at
        ``(i + 0.5) / W * 2 - 1`` (the same convention as the crop coordinates).
    """
    _, k, h, w = (int(size) for size in heatmaps.shape)  # Python ints: constants in an exported graph
    # full precision for the softmax, also under bfloat16 autocast
    probabilities = heatmaps.float().reshape(-1, k, h * w).softmax(dim=-1)  # (N, K, H * W)
    return probabilities @ cell_centres(h, w).to(probabilities.device)  # (N, K, 2)


def _upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour x2 upsampling of ``x`` to ``like``'s height and width.

    A stride-2 stage leaves ``ceil(S / 2)``, so the target is twice ``x``'s size or one less (then
    the last row and column are cut). The result equals ``F.interpolate(x, size=like.shape[-2:])``,
    but a constant scale and Python-int sizes keep the exported graph free of shape arithmetic.
    """
    height, width = (int(size) for size in like.shape[-2:])
    up = F.interpolate(x, scale_factor=2.0, mode="nearest")
    return up if tuple(up.shape[-2:]) == (height, width) else up[..., :height, :width]


class KeypointNet(nn.Module):
    """The default model: residual encoder to stride 16, pyramid decoder back to stride 4, one
    heatmap per keypoint and a soft-argmax that turns each heatmap into sub-pixel coordinates.

    For an S px input the heatmaps are S/4 x S/4; the decoder adds stride-8 and stride-4 detail to
    the stride-16 context, so every point sees the whole face.

    With several ``config.heads``, one 1x1 heatmap head per labelling convention shares the whole
    network: ``heatmap_head`` holds their weights one after the other (68 maps each), and
    ``head`` picks one by its index in ``config.heads`` (0, the default convention, if omitted).
    A network trained on two data sets thus learns each set's way of placing the points instead
    of a mapping between them; picking a head costs nothing at inference.
    """

    def __init__(self, config: KeypointNetConfig = KeypointNetConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        d = config.decoder_channels
        self.stem = nn.Sequential(_conv_bn_relu(1, c[0], stride=2), _conv_bn_relu(c[0], c[1]))
        self.stage4 = _stage(c[1], c[2], config.blocks[0])
        self.stage8 = _stage(c[2], c[3], config.blocks[1])
        self.stage16 = _stage(c[3], c[4], config.blocks[2])
        self.lateral16 = nn.Conv2d(c[4], d, 1)
        self.lateral8 = nn.Conv2d(c[3], d, 1)
        self.lateral4 = nn.Conv2d(c[2], d, 1)
        self.smooth8 = _conv_bn_relu(d, d)
        self.smooth4 = _conv_bn_relu(d, d)
        self.heatmap_head = nn.Conv2d(d, NUM_KEYPOINTS * len(config.heads), 1)

    def features(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) crops -> (N, decoder_channels, S/4, S/4) features the heatmap heads read."""
        x = self.stem(crops)
        f4 = self.stage4(x)
        f8 = self.stage8(f4)
        f16 = self.stage16(f8)
        y = self.lateral16(f16)
        y = self.smooth8(_upsample_to(y, f8) + self.lateral8(f8))
        return self.smooth4(_upsample_to(y, f4) + self.lateral4(f4))

    def heatmaps(self, crops: torch.Tensor, head: int | torch.Tensor = 0) -> torch.Tensor:
        """(N, 1, S, S) crops -> (N, 68, S/4, S/4) heatmap logits of head number ``head``.

        ``head`` may be a 0-d int64 tensor (an input of the exported graph): the head's weights
        are then picked at run time, and only its 68 maps are computed.
        """
        features = self.features(crops)
        if len(self.config.heads) == 1:
            return self.heatmap_head(features)
        heads, width = len(self.config.heads), self.config.decoder_channels  # ints: a constant reshape in ONNX
        weight = self.heatmap_head.weight.reshape(heads, NUM_KEYPOINTS, width, 1, 1)[head]
        bias = cast(torch.Tensor, self.heatmap_head.bias).reshape(heads, NUM_KEYPOINTS)[head]
        return F.conv2d(features, weight, bias)

    def forward(self, crops: torch.Tensor, head: int | torch.Tensor = 0) -> torch.Tensor:
        """(N, 1, S, S) crops -> (N, 68, 2) normalised keypoints, in head ``head``'s convention."""
        return soft_argmax(self.heatmaps(crops, head))

    def forward_each(self, crops: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) crops -> (N, 68, 2) normalised keypoints, crop i's from head ``heads[i]``.

        For training on several data sets at once: (N,) int64 ``heads`` says which head learns
        each crop's labels; every head's maps are computed, the soft-argmax only on the chosen.
        """
        maps = self.heatmap_head(self.features(crops))  # (N, H * 68, S/4, S/4)
        maps = maps.unflatten(1, (len(self.config.heads), NUM_KEYPOINTS))
        return soft_argmax(maps[torch.arange(len(crops), device=crops.device), heads.to(crops.device)])
