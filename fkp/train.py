"""Training: a plain PyTorch loop driven by one :class:`fkp.train_config.TrainConfig`.

The loop is seeded, picks its device (cuda, mps, cpu; :mod:`fkp.device`), shows tqdm progress,
selects the best epoch on a validation split whose *people* do not appear in its training part
(never on the test split), follows a warm-up + cosine learning-rate schedule, stops early when
validation NME stops improving, and writes an atomic checkpoint (``last.pt``) every epoch with the
config and metrics. Ctrl-C stops between two steps and saves the checkpoint; ``resume=True``
continues from it exactly (same batches, random state and schedule as an uninterrupted run; see
:mod:`fkp.resume`). A loss that stops being finite ends the run with :class:`DivergedError`.
A CSV log holds the losses and validation NME per epoch, and ``best.safetensors`` the best weights.
With ``val_fraction=0`` every training face trains, nothing is validated, and ``best.safetensors``
holds the last epoch's weights (a fixed-length recipe, once validation has chosen its length).

The crops come from :mod:`fkp.training_data`, the loss from :mod:`fkp.losses`; one optimisation
step is :func:`train_step`. Taught in ``2_Define_Train_Network.ipynb``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from fkp import geometry, metrics
from fkp.device import pick_device, use_bf16
from fkp.losses import LossFunction, loss_function
from fkp.model_config import ModelConfig, config_to_dict, is_registered
from fkp.models import build_model
from fkp.predict import KeypointModel
from fkp.resume import (
    DeferredInterrupt,
    check_batches,
    remove_stale_temporaries,
    restore,
    rng_state,
    save_checkpoint,
    skip_batches,
)
from fkp.train_config import ConfigError, TrainConfig
from fkp.training_data import DataRoot, WithHeads, head_conventions, training_sets
from fkp.utils import PROGRESS_MININTERVAL_S, atomic_write_bytes, set_seed


class DivergedError(ArithmeticError):
    """The training loss became NaN or infinite (the command line exits with code 1)."""


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


def train_step(
    net: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFunction,
    device: torch.device,
    bf16: bool = False,
    several: bool = False,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> float:
    """One optimisation step on a batch: forward (under bfloat16 autocast if ``bf16``), loss, backward,
    optimiser step, then the scheduler's step if one is given.

    Args:
        net: the network, in training mode, on ``device`` (channels-last memory format).
        batch: ``(crops (N, 1, S, S) float32 standardised, targets (N, 68, 2) normalised points,
            heads (N,) int64)``, as :class:`fkp.training_data.WithHeads` yields them.
        optimizer, scheduler: what steps the weights and the learning rate.
        loss_fn: the loss on normalised points (:func:`fkp.losses.loss_function`), computed in float32.
        device: where ``net`` is.
        bf16: compute the forward pass under bfloat16 autocast (:func:`fkp.device.use_bf16`).
        several: ``net`` has several heads (``forward_each``); each crop's points come from its head.

    Returns:
        The batch's loss, as a float (NaN or infinite if training diverged).
    """
    crops, targets, heads = batch
    crops = crops.to(device, memory_format=torch.channels_last)
    targets = targets.to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        predicted = _predict_batch(net, crops, heads, several)
    loss = loss_fn(predicted.float(), targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return loss.item()


def train(
    config: TrainConfig,
    data_root: DataRoot = None,
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
        fkp.train_config.ConfigError: settings that cannot train (a batch larger than the data, a
            device this machine lacks, ``resume`` without a checkpoint, a network of another size).
        fkp.resume.CheckpointError: ``resume`` with a checkpoint that cannot be resumed from.
        DivergedError: the loss became NaN or infinite (``last.pt`` keeps the last finished epoch).
    """
    from tqdm.auto import tqdm

    out_dir = Path(config.out_dir)
    checkpoint_path = out_dir / "last.pt"
    if config.resume and not checkpoint_path.exists():
        raise ConfigError(f"--resume: no checkpoint {checkpoint_path} to resume from (leave out --resume to start)")
    device = pick_device(config.device)
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
    out_dir.mkdir(parents=True, exist_ok=True)

    train_set, val_set = training_sets(config, data_root, progress, heads)
    generator = torch.Generator().manual_seed(config.seed)
    train_loader = DataLoader(
        WithHeads(train_set), config.batch_size, shuffle=True, drop_last=True, generator=generator
    )
    check_batches(len(train_loader), len(train_set), config.batch_size)
    val_loader = DataLoader(WithHeads(val_set), 128)
    validating = len(val_set) > 0

    if net is None:
        net = build_model(model_config)
    net = net.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack it
    bf16 = use_bf16(config.precision, device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config, len(train_loader)))
    loss_fn = loss_function(config)

    result = TrainResult(out_dir=out_dir, best_epoch=-1, best_val_nme=math.inf)
    start_epoch, previous_seconds = 0, 0.0
    skip_steps, epoch_losses = 0, []  # of the epoch a mid-epoch checkpoint stopped in
    epoch_start_rng = rng_state(generator)
    remove_stale_temporaries(checkpoint_path)
    if config.resume:
        checkpoint = restore(checkpoint_path, config, net, optimizer, scheduler, generator)
        start_epoch = checkpoint["epoch"] + 1
        result.best_epoch, result.best_val_nme = checkpoint["best_epoch"], checkpoint["best_val_nme"]
        result.history = [EpochRecord(**row) for row in checkpoint["history"]]
        previous_seconds = checkpoint["wall_seconds"]
        skip_steps = checkpoint.get("step_in_epoch", 0)
        epoch_losses = list(checkpoint.get("epoch_losses", []))
        epoch_start_rng = checkpoint.get("epoch_start_rng", checkpoint["rng"])

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
                    batches = skip_batches(train_loader, generator, epoch_start_rng, skip_steps)
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
                for batch in bar:
                    losses.append(train_step(net, batch, optimizer, loss_fn, device, bf16, several, scheduler))
                    if not math.isfinite(losses[-1]):
                        what = "NaN" if math.isnan(losses[-1]) else "infinite"
                        raise DivergedError(
                            f"the loss became {what} at epoch {epoch + 1}, step {len(losses)}: try a lower --lr"
                        )
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
                    best = f"  val NME {val_nme:.2%}  best {result.best_val_nme:.2%} (epoch {result.best_epoch})"
                    scores = best if validating else ""
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


def _write_log(path: Path, history: list[EpochRecord]) -> None:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=[f.name for f in fields(EpochRecord)])
    writer.writeheader()
    writer.writerows(asdict(record) for record in history)
    atomic_write_bytes(path, text.getvalue().encode())
