"""The training and validation crops of a run, from one or several data sets, images decoded once.

Each data set is split person-disjointly, repeated as ``TrainConfig.data_repeats`` says, mirrored
only where its labels allow it (:data:`MIRROR_TOLERANCE`), and either keeps its own labelling
convention for a head of its own or is mapped to ``TrainConfig.labels`` (:mod:`fkp.conventions`).
Used by :func:`fkp.train.train` and ``benchmarks/train_time.py``.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from fkp import conventions
from fkp.data import FacialKeypointsDataset, mirror_asymmetry, person_disjoint_split
from fkp.train_config import TrainConfig
from fkp.transforms import FaceCrops
from fkp.utils import PROGRESS_MININTERVAL_S

DataRoot = str | os.PathLike[str] | list[str | os.PathLike[str]] | None
"""A data folder, or a list of folders and names, to train on instead of ``TrainConfig.data``."""

MIRROR_TOLERANCE = 0.01
"""Flips are used on a data set only when its labels are this mirror-consistent (in eye distances,
:func:`fkp.data.mirror_asymmetry`): 300-W is, the Udacity set is not. Its mirrored mean shape
misses its mean shape at the jaw and brows, so flipped faces would teach a bias (taught in
``1_Load_and_Visualize_Data.ipynb``)."""


class WithHeads(Dataset):
    """``FaceCrops`` items with each sample's head index: ``(crop, points, head)``."""

    def __init__(self, crops: FaceCrops) -> None:
        self.crops = crops

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        crop, points = self.crops[index]
        return crop, points, int(self.crops.heads[index])


def grayscale_images(dataset: FacialKeypointsDataset, indices: np.ndarray, progress: bool = True) -> list[np.ndarray]:
    """Decode the images at ``indices`` once, as (H, W) uint8 grayscale."""
    from tqdm.auto import tqdm

    return [
        cv2.cvtColor(dataset.image(int(i)), cv2.COLOR_RGB2GRAY)
        for i in tqdm(indices, desc="decoding", disable=not progress, leave=False, mininterval=PROGRESS_MININTERVAL_S)
    ]


def _sources(config: TrainConfig, data_root: DataRoot) -> list[str | os.PathLike[str]]:
    if data_root is None:
        return list(config.data)
    if isinstance(data_root, (list, tuple)):
        return list(data_root)
    return [data_root]


def head_conventions(config: TrainConfig, data_root: DataRoot = None) -> tuple[str, ...]:
    """The labelling conventions of the heatmap heads a run trains, ``config.labels`` first.

    With ``config.head_per_convention``, sets in two or more known conventions (the default
    Udacity + 300-W mix), one of them ``config.labels``, get a head each; otherwise one head
    learns every set, mapped to ``config.labels`` (:func:`fkp.conventions.convert`).
    """
    known: list[str] = []
    for source in _sources(config, data_root):
        convention = FacialKeypointsDataset(source, "training").convention
        if convention is not None and convention not in known:
            known.append(convention)
    if config.head_per_convention and config.labels in known and len(known) > 1:
        return (config.labels, *(name for name in known if name != config.labels))
    return (config.labels,)


def training_sets(
    config: TrainConfig,
    data_root: DataRoot = None,
    progress: bool = True,
    heads: tuple[str, ...] | None = None,
) -> tuple[FaceCrops, FaceCrops]:
    """The training and validation crops of every data set of a run, images decoded once.

    Each set is split person-disjointly (:func:`fkp.data.person_disjoint_split`); a set's
    training images appear ``config.data_repeats[k]`` times per epoch; flips are allowed on the
    sets whose labels are mirror-consistent (:data:`MIRROR_TOLERANCE`). A set in a convention
    that has its own head (``heads``) keeps its labels and trains that head; labels of a set in
    another known convention are mapped to ``config.labels`` (:func:`fkp.conventions.convert`)
    and train head 0.

    Args:
        config: the run's settings (``data``, ``data_repeats``, ``val_fraction``, ``limit``, ``seed``).
        data_root: a folder, or a list of folders and names, instead of ``config.data``.
        progress: show a bar while decoding.
        heads: the labelling conventions of the network's heads (default: ``(config.labels,)``).

    Returns:
        (training crops, validation crops); each sample's head is in their ``heads`` arrays.
    """
    heads = heads or (config.labels,)
    sources = _sources(config, data_root)
    grays: list[np.ndarray] = []
    points: list[np.ndarray] = []
    flippable: list[np.ndarray] = []
    head_of: list[np.ndarray] = []
    val_grays: list[np.ndarray] = []
    val_points: list[np.ndarray] = []
    val_heads: list[np.ndarray] = []
    for k, source in enumerate(sources):
        dataset = FacialKeypointsDataset(source, "training")
        train_idx, val_idx = person_disjoint_split(dataset.names, config.val_fraction, seed=config.seed)
        if config.limit is not None:
            rng = np.random.default_rng(config.seed)
            train_idx = np.sort(rng.choice(train_idx, size=min(config.limit, len(train_idx)), replace=False))
            val_idx = val_idx[: max(8, config.limit // 4)]
        decoded = grayscale_images(dataset, np.concatenate([train_idx, val_idx]), progress)
        repeats = config.data_repeats[k] if k < len(config.data_repeats) else 1
        mirror_ok = mirror_asymmetry(dataset.keypoints[train_idx]) < MIRROR_TOLERANCE
        labels, head = dataset.keypoints, 0
        if dataset.convention in heads:
            head = heads.index(dataset.convention)
        elif dataset.convention is not None:
            labels = conventions.convert(labels, dataset.convention, config.labels)
        grays += decoded[: len(train_idx)] * repeats
        points += [labels[train_idx]] * repeats
        flippable.append(np.full(len(train_idx) * repeats, mirror_ok))
        head_of.append(np.full(len(train_idx) * repeats, head))
        val_grays += decoded[len(train_idx) :]
        val_points.append(labels[val_idx])
        val_heads.append(np.full(len(val_idx), head))
    train_set = FaceCrops(
        grays,
        np.concatenate(points),
        config,
        augment=True,
        flippable=np.concatenate(flippable),
        heads=np.concatenate(head_of),
    )
    val_set = FaceCrops(val_grays, np.concatenate(val_points), config, augment=False, heads=np.concatenate(val_heads))
    return train_set, val_set
