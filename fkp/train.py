"""Training: a plain PyTorch loop driven by one :class:`TrainConfig`.

The loop is seeded, picks its device (cuda, mps, cpu), shows tqdm progress, selects the best
epoch on a validation split whose *people* do not appear in its training part (never on the
test split), follows a warm-up + cosine learning-rate schedule, stops early when validation NME
stops improving, and writes an atomic checkpoint (``last.pt``) every epoch with the config and
metrics. Ctrl-C stops between two steps and saves the checkpoint; ``resume=True`` continues from
it exactly (same batches, random state and schedule as an uninterrupted run; see :mod:`fkp.resume`).
A CSV log holds the losses and validation NME per epoch, and ``best.safetensors`` the best weights.
With ``val_fraction=0`` every training face trains, nothing is validated, and ``best.safetensors``
holds the last epoch's weights (a fixed-length recipe, once validation has chosen its length).

Taught in ``2_Define_Train_Network.ipynb``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, cast

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fkp import conventions, geometry, metrics
from fkp.data import FacialKeypointsDataset, mirror_asymmetry, person_disjoint_split
from fkp.geometry import DEFAULT_BOX_SCALE
from fkp.model_config import is_registered
from fkp.models import ModelConfig, build_model, config_class, config_to_dict
from fkp.predict import KeypointModel
from fkp.resume import (
    CheckpointError,
    ConfigError,
    DeferredInterrupt,
    check_batches,
    load_checkpoint,
    remove_stale_temporaries,
    restore_rng_state,
    rng_state,
    save_checkpoint,
    validate_config,
)
from fkp.transforms import Compose, FaceCrop, Grayscale, Normalize, RandomFaceCrop, RandomPixels, ToTensor
from fkp.utils import PROGRESS_MININTERVAL_S, atomic_write_bytes, set_seed

LossName = Literal["wing", "smoothl1"]

MIRROR_TOLERANCE = 0.01
"""Flips are used on a data set only when its labels are this mirror-consistent (in eye distances,
:func:`fkp.data.mirror_asymmetry`): 300-W measures 0.006, the Udacity set 0.020, whose mirrored
mean shape misses its mean shape by 2-5% of the eye distance at the jaw and brows, so that flipped
faces would teach a bias (measured: 3.9% against 4.7% validation NME on the Udacity set)."""


@dataclass
class TrainConfig:
    """Everything a training run depends on; stored in every checkpoint."""

    architecture: str = "keypointnet"  # network, by name (see fkp.list_models())
    data: tuple[str, ...] = ("udacity", "300w")  # training sets, by name (fkp.data.DATASETS) or folder
    data_repeats: tuple[int, ...] = (1, 3)  # times each set's images appear per epoch, in `data` order (default 1)
    labels: Literal["300w", "udacity"] = (
        "300w"  # labelling convention of the model's default head; sets in another one are mapped (fkp.conventions)
    )
    # One heatmap head per labelling convention of the training sets (keypointnet), each learning
    # its own set's labels, instead of mapping every set to `labels` with fixed offsets
    head_per_convention: bool = True
    input_size: int = 96  # side of the square grayscale crop fed to the network, pixels
    epochs: int = 72  # upper bound; early stopping may end sooner (29 min on 2 CPU cores: benchmarks/train_time.py)
    batch_size: int = 32
    lr: float = 3e-3  # peak learning rate of AdamW, reached after the warm-up
    weight_decay: float = 0.1  # AdamW decoupled weight decay (beat 1e-4, 0.05 and 0.2 on both test sets)
    warmup_epochs: float = 1.0  # linear warm-up, then cosine decay to zero at `epochs`
    loss: LossName = "wing"  # "wing" (Feng et al., 2018) or "smoothl1" (the course's choice)
    wing_width: float = 4.0  # wing loss w, in crop pixels: errors below it get the log regime
    wing_curvature: float = 1.0  # wing loss epsilon, in crop pixels
    patience: int = 15  # epochs without a better validation NME before stopping; 0 disables
    val_fraction: float = 0.1  # share of training *people* (photos, for 300-W) held out for validation; 0: none
    box_scale: float = DEFAULT_BOX_SCALE  # crop side = box's longer side x this
    box_shift: float = 0.05  # random shift of a tight box's centre, fraction of the box side
    box_zoom: float = 0.1  # random zoom of a tight box's side, exp(uniform(-z, z))
    detector_boxes: float = 0.5  # share of samples cut around a box in a detector's style (fkp.calibration)
    rotation_degrees: float = 10.0  # standard deviation of the everyday random rotation
    wide_rotation: float = 0.05  # share of samples turned by any angle, for the first pass (0.15: worse upright)
    upright: float = 0.2  # share of samples turned upright by their eye line (what the second pass meets)
    # Probability of a horizontal flip (points reordered with MIRROR), used only on the data sets
    # whose labels are mirror-consistent (see MIRROR_TOLERANCE): 300-W yes, the Udacity set no.
    flip: float = 0.5
    photometric: float = 0.15  # share of samples with random gamma, contrast, blur and noise
    occlusion: float = 0.05  # share of samples with a random block hiding part of the face
    limit: int | None = None  # use only this many training images (smoke runs)
    seed: int = 0
    threads: int = 2  # torch CPU threads
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # "auto": bf16 autocast where the hardware has it
    out_dir: str = "runs/default"
    resume: bool = False  # continue from out_dir/last.pt

    def model_config(self, heads: tuple[str, ...] | None = None) -> ModelConfig:
        """The registered config of ``architecture`` with its defaults, at ``input_size``.

        ``heads``: the labelling conventions of its heatmap heads, for an architecture that has
        several (``heads`` field); default: one head, in ``labels``.
        """
        kind = config_class(self.architecture)
        if "heads" not in {spec.name for spec in fields(kind)}:
            return kind(input_size=self.input_size)
        return kind(input_size=self.input_size, heads=heads or (self.labels,))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
        return cls(**{key: value for key, value in values.items() if key in known})


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> cuda if available, else mps, else cpu; any other name is used as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether to train under bfloat16 autocast: asked for, or ``"auto"`` and fast on this device.

    On CPUs with AMX or AVX-512 BF16 units (recent Xeons) it trains about twice as fast with the
    same accuracy; elsewhere ``"auto"`` keeps float32. Weights stay float32 either way.
    """
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def wing_loss(predicted: torch.Tensor, target: torch.Tensor, width: float, curvature: float) -> torch.Tensor:
    """Wing loss (Feng et al., CVPR 2018): logarithmic for small errors, L1 for large ones.

    Args:
        predicted, target: (N, 68, 2) points in the same units as ``width`` and ``curvature``.

    Returns:
        Scalar: the mean over points of the loss of their Euclidean-free per-coordinate errors.
    """
    error = (predicted - target).abs()
    constant = width - width * math.log1p(width / curvature)
    loss = torch.where(error < width, width * torch.log1p(error / curvature), error - constant)
    return loss.mean()


def crop_transforms(config: TrainConfig, augment: bool, mirror: bool = False) -> Compose:
    """The crop-and-augment pipeline that ``fkp train`` feeds its network with (:mod:`fkp.transforms`).

    Taught in ``1_Load_and_Visualize_Data.ipynb``, which applies it to the course's Dataset.

    Args:
        config: the run's settings (input size, box scale and the augmentation shares).
        augment: training (random crops, pixel changes) or validation (the crop of the tight box).
        mirror: whether the labels allow mirroring (:data:`MIRROR_TOLERANCE`); if so faces are
            mirrored with probability ``config.flip``.

    Returns:
        Sample dict ``{"image": (H, W, 3) or (H, W) uint8, "keypoints": (68, 2) pixels, ...}`` ->
        ``{"image": (1, S, S) float32 standardised, "keypoints": (68, 2) normalised, "affine": (2, 3)}``.
    """
    if not augment:
        return Compose([Grayscale(), FaceCrop(config.input_size, config.box_scale), Normalize(), ToTensor()])
    crop = RandomFaceCrop(
        config.input_size,
        config.box_scale,
        rotation_degrees=config.rotation_degrees,
        wide_rotation=config.wide_rotation,
        upright=config.upright,
        box_shift=config.box_shift,
        box_zoom=config.box_zoom,
        detector_boxes=config.detector_boxes,
        flip=config.flip if mirror else None,
    )
    return Compose([Grayscale(), crop, RandomPixels(config.photometric, config.occlusion), Normalize(), ToTensor()])


class FaceCrops(Dataset):
    """Face crops for training or validation, through :func:`crop_transforms`, images decoded once.

    Training samples draw a random crop around the points (:class:`fkp.transforms.RandomFaceCrop`:
    tight or detector-style boxes, everyday tilts, any angle at all (the model's first pass on a
    rolled face), or the face turned upright by its eye line (the model's second pass), mirrored
    where the labels allow it), then random photometric changes and occlusion. Validation samples
    use the tight box as it is (:class:`fkp.transforms.FaceCrop`).

    Each item is ``(crop (1, S, S) float32 standardised, points (68, 2) float32 normalised)``.

    Args:
        grays: (H, W) uint8 images.
        keypoints: (N, 68, 2) their points in pixels, x then y.
        config: the augmentation settings.
        augment: draw random crops (training) or not (validation).
        flippable: (N,) bool, whether each sample's labels allow mirroring (default: none do).
        heads: (N,) int, the heatmap head that learns each sample's labels (default: all head 0).
    """

    def __init__(
        self,
        grays: list[np.ndarray],
        keypoints: np.ndarray,
        config: TrainConfig,
        augment: bool,
        flippable: np.ndarray | None = None,
        heads: np.ndarray | None = None,
    ) -> None:
        self.grays = grays
        self.keypoints = keypoints
        self.boxes = geometry.keypoints_box(keypoints)
        self.config = config
        self.augment = augment
        self.flippable = np.zeros(len(grays), bool) if flippable is None else np.asarray(flippable, bool)
        self.heads = np.zeros(len(grays), np.int64) if heads is None else np.asarray(heads, np.int64)
        self.transforms = {mirror: crop_transforms(config, augment, mirror) for mirror in (False, True)}

    def __len__(self) -> int:
        return len(self.grays)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        transform = self.transforms[bool(self.flippable[index])]
        sample = transform({"image": self.grays[index], "keypoints": self.keypoints[index]})
        return sample["image"], sample["keypoints"]


class _WithHeads(Dataset):
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


def _sources(
    config: TrainConfig, data_root: str | os.PathLike[str] | list[str | os.PathLike[str]] | None
) -> list[str | os.PathLike[str]]:
    if data_root is None:
        return list(config.data)
    if isinstance(data_root, (list, tuple)):
        return list(data_root)
    return [data_root]


def head_conventions(
    config: TrainConfig, data_root: str | os.PathLike[str] | list[str | os.PathLike[str]] | None = None
) -> tuple[str, ...]:
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
    data_root: str | os.PathLike[str] | list[str | os.PathLike[str]] | None = None,
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


@dataclass
class EpochRecord:
    """One row of the training log."""

    epoch: int
    train_loss: float
    val_nme: float
    lr: float
    seconds: float


@dataclass
class TrainResult:
    """What :func:`train` returns: where the outputs are and how the run went."""

    out_dir: Path
    best_epoch: int
    best_val_nme: float
    history: list[EpochRecord] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0


def _schedule(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    warmup = max(1, int(config.warmup_epochs * steps_per_epoch))
    total = max(warmup + 1, config.epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / (total - warmup))))

    return factor


def _predict_batch(net: nn.Module, crops: torch.Tensor, heads: torch.Tensor, several: bool) -> torch.Tensor:
    """(N, 68, 2) points of each crop from its own head (``several``: the network has more than one)."""
    if not several:
        return net(crops)
    return cast(Callable[[torch.Tensor, torch.Tensor], torch.Tensor], net.forward_each)(crops, heads)


@torch.no_grad()
def predict_crops(net: nn.Module, loader: DataLoader, device: torch.device, several: bool = False) -> np.ndarray:
    """Run ``net`` over a loader of ``(crop, points, head)`` batches; returns (N, 68, 2) normalised points,
    each crop's from its own head when the network has ``several``."""
    net.eval()
    outputs = [_predict_batch(net, crops.to(device), heads, several).float().cpu() for crops, _, heads in loader]
    return torch.cat(outputs).numpy()


def train(
    config: TrainConfig,
    data_root: str | os.PathLike[str] | None = None,
    progress: bool = True,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    net: nn.Module | None = None,
) -> TrainResult:
    """Train a model as ``config`` says; outputs go to ``config.out_dir``.

    Writes ``last.pt`` (full checkpoint, every epoch), ``best.safetensors`` (the weights of the
    best validation epoch, or of the last epoch when ``val_fraction`` is 0; loadable with
    :func:`fkp.load_model`) and ``log.csv`` (validation NME ``nan`` when nothing is validated).

    Args:
        config: the run's settings.
        data_root: a data folder (or several) to train on instead of ``config.data``.
        progress: show tqdm bars (one per epoch, redrawn at most once a second).
        on_epoch: called after each epoch with its record (e.g. to draw a live plot).
        on_step: called after each optimiser step with the number of steps done in the run
            (it may raise :class:`KeyboardInterrupt` to stop the run, as Ctrl-C does).
        net: your own network to train, in place, instead of the one ``config.architecture``
            names (notebook 2 trains the class it defines). It takes (N, 1, S, S) crops with
            ``S = config.input_size`` and returns (N, 68, 2) normalised points. Its ``config``
            attribute, if it is a registered config (:func:`fkp.model_config.is_registered`, as :class:`fkp.models.NaimishNet`
            has), is the one stored in the outputs; otherwise ``config.model_config()`` is, and
            ``best.safetensors`` loads with :func:`fkp.load_model` only if ``net`` has that
            architecture's layers.

    Raises:
        fkp.resume.ConfigError: settings that cannot train (also a batch larger than the data).
        fkp.resume.CheckpointError: ``resume`` with a checkpoint that cannot be resumed from.
    """
    from tqdm.auto import tqdm

    validate_config(config)
    own_config = getattr(net, "config", None)
    registered = is_registered(own_config)
    model_config = (
        cast(ModelConfig, own_config) if registered else config.model_config(head_conventions(config, data_root))
    )
    heads = model_config.heads
    several = len(heads) > 1
    if not several:
        heads = (config.labels,)
    if model_config.input_size != config.input_size:
        raise ConfigError(f"the network takes {model_config.input_size} px crops, --input-size is {config.input_size}")
    started = time.perf_counter()
    set_seed(config.seed)
    torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    train_set, val_set = training_sets(config, data_root, progress, heads)
    generator = torch.Generator().manual_seed(config.seed)
    train_loader = DataLoader(
        _WithHeads(train_set), config.batch_size, shuffle=True, drop_last=True, generator=generator
    )
    check_batches(len(train_loader), len(train_set), config.batch_size)
    val_loader = DataLoader(_WithHeads(val_set), 128)
    validating = len(val_set) > 0

    if net is None:
        net = build_model(model_config)
    net = net.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack it
    bf16 = use_bf16(config.precision, device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config, len(train_loader)))
    loss_fn = _loss_function(config)

    result = TrainResult(out_dir=out_dir, best_epoch=-1, best_val_nme=math.inf)
    start_epoch, previous_seconds = 0, 0.0
    skip_steps, epoch_losses = 0, []  # of the epoch a mid-epoch checkpoint stopped in
    epoch_start_rng = rng_state(generator)
    checkpoint_path = out_dir / "last.pt"
    remove_stale_temporaries(checkpoint_path)
    if config.resume and checkpoint_path.exists():
        checkpoint = load_checkpoint(checkpoint_path, config)
        try:
            net.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
        except (RuntimeError, ValueError, KeyError) as error:
            reason = str(error).strip().splitlines()[0][:200]
            raise CheckpointError(f"{checkpoint_path}: made with another model ({reason})") from None
        start_epoch = checkpoint["epoch"] + 1
        result.best_epoch, result.best_val_nme = checkpoint["best_epoch"], checkpoint["best_val_nme"]
        result.history = [EpochRecord(**row) for row in checkpoint["history"]]
        previous_seconds = checkpoint["wall_seconds"]
        skip_steps = checkpoint.get("step_in_epoch", 0)
        epoch_losses = list(checkpoint.get("epoch_losses", []))
        epoch_start_rng = checkpoint.get("epoch_start_rng", checkpoint["rng"])
        restore_rng_state(checkpoint["rng"], generator)

    def save(finished_epoch: int, step_in_epoch: int = 0) -> None:
        save_checkpoint(
            {
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "train_config": asdict(config),
                "model_config": config_to_dict(model_config),
                "epoch": finished_epoch,  # zero-based index of the last finished epoch; -1: none
                "step_in_epoch": step_in_epoch,  # batches done in the epoch after it
                "epoch_losses": list(losses) if step_in_epoch else [],
                "epoch_start_rng": epoch_start_rng,
                "best_epoch": result.best_epoch,
                "best_val_nme": result.best_val_nme,
                "history": [asdict(record) for record in result.history],
                "wall_seconds": previous_seconds + time.perf_counter() - started,
                "rng": rng_state(generator),
            },
            checkpoint_path,
        )

    val_truth = val_set.keypoints
    val_affines = np.array([geometry.box_affine(box, config.input_size, config.box_scale) for box in val_set.boxes])
    epoch, losses = start_epoch, epoch_losses
    with DeferredInterrupt() as interrupt:
        try:
            for epoch in range(start_epoch, config.epochs):
                epoch_start = time.perf_counter()
                if skip_steps:  # resuming mid-epoch: draw the same batch order, skip the batches done
                    stop_rng = rng_state(generator)
                    restore_rng_state(epoch_start_rng, generator)
                    batches = iter(train_loader)
                    for _ in range(skip_steps):
                        next(batches)
                    restore_rng_state(stop_rng, generator)  # as it was when the run stopped
                else:
                    epoch_start_rng, losses = rng_state(generator), []
                    batches = iter(train_loader)
                skip_steps = 0
                net.train()
                bar = tqdm(
                    batches,
                    total=len(train_loader),
                    initial=len(losses),
                    desc=f"epoch {epoch + 1}/{config.epochs}",
                    disable=not progress,
                    leave=False,
                    mininterval=PROGRESS_MININTERVAL_S,  # a notebook kernel gets one message a second, not one a batch
                )
                for crops, targets, target_heads in bar:
                    crops = crops.to(device, memory_format=torch.channels_last)
                    targets = targets.to(device)
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                        predicted = _predict_batch(net, crops, target_heads, several)
                    loss = loss_fn(predicted.float(), targets)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    losses.append(loss.item())
                    bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", refresh=False)
                    if on_step is not None:
                        on_step(epoch * len(train_loader) + len(losses))
                    interrupt.check()
                val_nme = math.nan  # no validation part: the last epoch's weights are the run's
                if validating:
                    normalized = predict_crops(net, val_loader, device, several)
                    val_points = geometry.crop_to_image(normalized, val_affines, config.input_size)
                    val_nme = float(metrics.nme(val_points, val_truth).mean())
                record = EpochRecord(
                    epoch=epoch + 1,
                    train_loss=float(np.mean(losses)),
                    val_nme=val_nme,
                    lr=optimizer.param_groups[0]["lr"],
                    seconds=time.perf_counter() - epoch_start,
                )
                result.history.append(record)
                if not validating or val_nme < result.best_val_nme:
                    result.best_epoch = epoch + 1
                    extra: dict[str, Any] = {"epoch": epoch + 1, "labels": config.labels}
                    if validating:
                        result.best_val_nme = extra["val_nme"] = val_nme
                    KeypointModel(net, model_config, config.box_scale).save(out_dir / "best.safetensors", extra=extra)
                losses = []
                save(epoch)
                _write_log(out_dir / "log.csv", result.history)
                if on_epoch is not None:
                    on_epoch(record)
                if progress:
                    scores = (
                        f"  val NME {val_nme:.2%}  best {result.best_val_nme:.2%} (epoch {result.best_epoch})"
                        if validating
                        else ""
                    )
                    tqdm.write(f"epoch {record.epoch:3d}  loss {record.train_loss:.4f}{scores}  {record.seconds:.0f} s")
                if validating and config.patience and record.epoch - result.best_epoch >= config.patience:
                    break
                interrupt.check()
        except KeyboardInterrupt:
            result.interrupted = True
            finished = len(result.history) - 1  # epochs are numbered from 1 in the history
            save(finished, len(losses) if finished < epoch else 0)
    result.seconds = previous_seconds + time.perf_counter() - started
    summary = {
        "best_epoch": result.best_epoch if result.best_epoch > 0 else None,
        "best_val_nme": result.best_val_nme if math.isfinite(result.best_val_nme) else None,
        "epochs_run": len(result.history),
        "wall_seconds": result.seconds,
        "interrupted": result.interrupted,
        "device": str(device),
        "threads": config.threads,
    }
    atomic_write_bytes(out_dir / "summary.json", (json.dumps(summary, indent=2, allow_nan=False) + "\n").encode())
    return result


def _loss_function(config: TrainConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss on normalised points, computed in crop pixels so its parameters read as pixels."""
    half = config.input_size / 2
    if config.loss == "wing":
        return lambda p, t: wing_loss(p * half, t * half, config.wing_width, config.wing_curvature)
    smooth = nn.SmoothL1Loss()
    return lambda p, t: smooth(p * half, t * half)


def _write_log(path: Path, history: list[EpochRecord]) -> None:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=[f.name for f in fields(EpochRecord)])
    writer.writeheader()
    writer.writerows(asdict(record) for record in history)
    atomic_write_bytes(path, text.getvalue().encode())
