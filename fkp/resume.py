"""What makes a training run safe to stop and exact to resume (used by :mod:`fkp.train`).

- :func:`validate_config`: settings that cannot work are refused before any work, in one line.
- :func:`rng_state` / :func:`restore_rng_state`: every random stream a run draws from (Python's
  ``random``, NumPy's global generator, torch's CPU generator and the DataLoader's own generator)
  as plain tensors and numbers, so a checkpoint loads with ``weights_only=True``.
- :func:`save_checkpoint` / :func:`load_checkpoint`: atomic writes through
  :func:`fkp.utils.atomic_write_bytes`; a corrupt, truncated or foreign file is a
  :class:`CheckpointError` with one line, never a traceback.
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
from collections.abc import Mapping
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fkp.utils import atomic_write_bytes, stale_temporaries

if TYPE_CHECKING:
    from fkp.train import TrainConfig

CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "train_config", "model_config", "epoch", "history")
"""Keys every training checkpoint holds; a file without them is not one."""


RESUME_MUST_MATCH = ("architecture", "input_size", "batch_size", "limit", "val_fraction", "seed")
"""Settings a resumed run must share with its checkpoint: the model, and what fixes the batches."""


class ConfigError(ValueError):
    """Training settings that cannot work (the command line exits with code 2)."""


class CheckpointError(ValueError):
    """A checkpoint to resume from that is corrupt, truncated, foreign or for another model."""


def validate_config(config: TrainConfig) -> None:
    """Refuse settings that cannot train, naming the option, before any data is read.

    Raises:
        ConfigError: a size or count below 1, a fraction outside its range, an unknown architecture
            or an unknown device.
    """
    at_least_one = {
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "threads": config.threads,
        "input_size": config.input_size,
    }
    if config.limit is not None:
        at_least_one["limit"] = config.limit
    for name, value in at_least_one.items():
        if value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if config.limit is not None and config.limit < config.batch_size:
        raise ConfigError(f"--batch-size {config.batch_size} is larger than --limit {config.limit}: nothing to train")
    from fkp.model_config import list_models

    if config.architecture not in list_models():
        raise ConfigError(f"--architecture {config.architecture!r} is not one of {list_models()}")
    if not 0.0 <= config.val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be at least 0 and below 1, got {config.val_fraction}")
    if not config.lr > 0:
        raise ConfigError(f"--lr must be above 0, got {config.lr}")
    if config.device != "auto":
        try:
            device = torch.device(config.device)
        except (RuntimeError, ValueError):
            raise ConfigError(f"--device {config.device!r} is not a device (auto, cpu, cuda, cuda:1, mps)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"--device {config.device}: no CUDA GPU here")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ConfigError(f"--device {config.device}: no MPS GPU here")


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


def save_checkpoint(payload: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a checkpoint atomically (a reader, or a kill, never leaves half a file)."""
    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike[str], config: TrainConfig) -> dict[str, Any]:
    """Read a checkpoint to resume ``config``'s run from, refusing one of another model.

    Returns:
        The checkpoint dictionary (tensors on the CPU).

    Raises:
        CheckpointError: the file cannot be read as a checkpoint, lacks keys, or was made
            with another architecture or input size.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a bad file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({reason[:200]}); remove it to start afresh"
        ) from None
    if not isinstance(checkpoint, dict) or not all(key in checkpoint for key in CHECKPOINT_KEYS):
        raise CheckpointError(f"{path}: not an fkp training checkpoint; remove it to start afresh")
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
