"""What makes a training run safe to stop and exact to resume (used by :mod:`fkp.train`).

- :func:`rng_state` / :func:`restore_rng_state`: every random stream a run draws from (Python's
  ``random``, NumPy's global generator, torch's CPU generator and the DataLoader's own generator)
  as plain tensors and numbers, so a checkpoint loads with ``weights_only=True``.
- :func:`save_checkpoint` / :func:`read_checkpoint`: atomic writes through
  :func:`fkp.utils.atomic_write_bytes`, and the one reader of ``last.pt`` (also behind
  :func:`fkp.weights_io.load_checkpoint`, which loads a model from it); a corrupt, truncated or
  foreign file is a :class:`CheckpointError` with one line, never a traceback.
  :func:`load_checkpoint` adds what resuming needs (the random state, the same model and batches)
  and :func:`restore` puts a checkpoint back into a run's network, optimiser and scheduler.
- :class:`DeferredInterrupt`: Ctrl-C stops the loop *between* two optimiser steps, so the saved
  state is that of a whole number of steps and resuming repeats none and skips none (a second
  Ctrl-C stops at once).

A checkpoint saved mid-epoch holds ``epoch`` (zero-based index of the last *finished* epoch, -1 if
none), ``step_in_epoch`` (batches done in the next one), the random state at that epoch's start
(to draw the same batch order again) and the random state at the stop (to go on from there).
"""

from __future__ import annotations

import io
import os
import random
import signal
import threading
from collections.abc import Iterator, Mapping
from types import FrameType, TracebackType
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from fkp.train_config import RESUME_MUST_MATCH, ConfigError, TrainConfig
from fkp.utils import atomic_write_bytes, stale_temporaries

CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "train_config", "model_config", "epoch", "history")
"""Keys every training checkpoint holds; a file without them is not one."""


class CheckpointError(ValueError):
    """A checkpoint to resume from that is corrupt, truncated, foreign or for another model."""


def check_batches(batches: int, samples: int, batch_size: int) -> None:
    """Refuse a run whose epochs would hold no full batch (nothing would be trained)."""
    if batches < 1:
        raise ConfigError(
            f"--batch-size {batch_size} is larger than the {samples} training images: lower it or use more data"
        )


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random stream of a training run, as tensors and numbers (``weights_only``-loadable)."""
    version, internal, gauss = random.getstate()
    _, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    keys = np.asarray(keys)  # a str only in the non-legacy form
    return {
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": position,
            "has_gauss": has_gauss,
            "cached": cached,
        },
        "torch": torch.get_rng_state(),
        "loader": generator.get_state(),
    }


def restore_rng_state(state: Mapping[str, Any], generator: torch.Generator) -> None:
    """Put back what :func:`rng_state` saved (the DataLoader's ``generator`` included)."""
    python = state["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["internal"].tolist()), python["gauss"]))
    numpy = state["numpy"]
    keys = numpy["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, numpy["position"], numpy["has_gauss"], numpy["cached"]))
    torch.set_rng_state(state["torch"])
    generator.set_state(state["loader"])


def skip_batches(
    loader: DataLoader, generator: torch.Generator, epoch_start_rng: Mapping[str, Any], steps: int
) -> Iterator[Any]:
    """The batches of an epoch stopped after ``steps`` of them, the ones done skipped: ``loader``
    draws the order that ``epoch_start_rng`` (:func:`rng_state` at the epoch's start) gave, and
    ``generator`` and the other random streams are left as they were at the stop."""
    stop_rng = rng_state(generator)
    restore_rng_state(epoch_start_rng, generator)
    batches = iter(loader)
    for _ in range(steps):
        next(batches)
    restore_rng_state(stop_rng, generator)  # as it was when the run stopped
    return batches


def save_checkpoint(payload: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a checkpoint atomically (a reader, or a kill, never leaves half a file)."""
    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training checkpoint (``weights_only=True``): the one reader of ``last.pt``.

    Returns:
        The checkpoint dictionary (tensors on the CPU), with at least :data:`CHECKPOINT_KEYS`.

    Raises:
        CheckpointError: (one line) the file cannot be read as a checkpoint, or lacks keys.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a bad file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason[:200]})") from None
    if not isinstance(checkpoint, dict) or not all(key in checkpoint for key in CHECKPOINT_KEYS):
        raise CheckpointError(f"{path}: not an fkp training checkpoint")
    return checkpoint


def load_checkpoint(path: str | os.PathLike[str], config: TrainConfig) -> dict[str, Any]:
    """Read a checkpoint to resume ``config``'s run from, refusing one of another model or batching.

    Returns:
        The checkpoint dictionary (tensors on the CPU).

    Raises:
        CheckpointError: the file cannot be read as a checkpoint (:func:`read_checkpoint`), has no
            random state, or was made with other :data:`fkp.train_config.RESUME_MUST_MATCH` settings.
    """
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointError as error:
        raise CheckpointError(f"{error}; remove it to start afresh") from None
    if "rng" not in checkpoint:
        raise CheckpointError(f"{path}: saved by an older fkp that cannot resume exactly; remove it to start afresh")
    saved = checkpoint["train_config"]
    for name in RESUME_MUST_MATCH:
        if not isinstance(saved, dict) or saved.get(name) != getattr(config, name):
            theirs = saved.get(name) if isinstance(saved, dict) else None
            raise CheckpointError(
                f"{path}: made with --{name.replace('_', '-')} {theirs}, not {getattr(config, name)}; "
                "use the same settings or another --out-dir"
            )
    return checkpoint


def restore(
    path: str | os.PathLike[str],
    config: TrainConfig,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
) -> dict[str, Any]:
    """Put the checkpoint at ``path`` back into a run: weights, optimiser, schedule and random state.

    Returns:
        The checkpoint (:func:`load_checkpoint`), for the epoch, history and timings it holds.

    Raises:
        CheckpointError: (one line) it cannot be resumed from, or holds another model's weights.
    """
    checkpoint = load_checkpoint(path, config)
    try:
        net.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
    except (RuntimeError, ValueError, KeyError) as error:
        reason = str(error).strip().splitlines()[0][:200]
        raise CheckpointError(f"{path}: made with another model ({reason})") from None
    restore_rng_state(checkpoint["rng"], generator)
    return checkpoint


def remove_stale_temporaries(path: str | os.PathLike[str]) -> None:
    """Delete the half-written temporaries of ``path`` that a killed run left behind."""
    for stale in stale_temporaries(path):
        stale.unlink(missing_ok=True)


class DeferredInterrupt:
    """Within ``with``, the first Ctrl-C only sets :attr:`requested`; the loop calls
    :meth:`check` between steps, which raises :class:`KeyboardInterrupt` there. A second Ctrl-C
    raises at once. Outside the main thread it does nothing (signals go to the main thread)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise :class:`KeyboardInterrupt` if Ctrl-C was pressed since the last check."""
        if self.requested:
            raise KeyboardInterrupt
