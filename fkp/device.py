"""Where a training run computes, and in which precision: the device and bfloat16 choices."""

from __future__ import annotations

import torch

from fkp.train_config import ConfigError


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> cuda if available, else mps, else cpu; any other name is used as given.

    Raises:
        ConfigError: (one line) ``name`` is not a device, or names a GPU this machine lacks.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {name!r} is not a device (auto, cpu, cuda, cuda:1, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA GPU here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {name}: no MPS GPU here")
    return device


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether to train under bfloat16 autocast: asked for, or ``"auto"`` and fast on this device.

    On CPUs with AMX or AVX-512 BF16 units (recent Xeons) it trains faster with the same
    accuracy; elsewhere ``"auto"`` keeps float32. Weights stay float32 either way.
    """
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False
