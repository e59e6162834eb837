"""How long the default training recipe takes on this machine, from a timed stretch of it.

    python benchmarks/train_time.py --threads 2 --steps 150

Runs the first ``--steps`` optimiser steps of ``fkp train``'s default recipe (data loading,
augmentation, then :func:`fkp.train.train_step`: forward, backward and AdamW, as training does) after a short
warm-up, and prints the time per step and what the recipe's epochs would take at that pace.
Validation (a few seconds per epoch) is left out. A machine busy with other work gives a pessimistic
figure: the script prints the load average beside it.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from fkp.device import use_bf16
from fkp.losses import loss_function
from fkp.models import build_model
from fkp.train import train_step
from fkp.train_config import TrainConfig
from fkp.training_data import WithHeads, head_conventions, training_sets
from fkp.utils import set_seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=150, help="timed optimiser steps")
    args = parser.parse_args()

    config = TrainConfig(threads=args.threads)
    set_seed(config.seed)
    torch.set_num_threads(config.threads)
    heads = head_conventions(config)
    train_set, _ = training_sets(config, progress=False, heads=heads)
    loader = DataLoader(WithHeads(train_set), config.batch_size, shuffle=True, drop_last=True)
    net = build_model(config.model_config(heads)).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn, device = loss_function(config), torch.device("cpu")
    bf16 = use_bf16(config.precision, device)
    times = []
    batches = iter(loader)
    net.train()
    for step in range(args.steps + 10):
        start = time.perf_counter()
        train_step(net, next(batches), optimizer, loss_fn, device, bf16, several=len(heads) > 1)
        if step >= 10:
            times.append(time.perf_counter() - start)
    per_step = float(np.median(times))
    minutes = per_step * len(loader) * config.epochs / 60
    print(
        f"{per_step * 1000:.0f} ms per step of {config.batch_size} on {config.threads} thread(s) (bf16: {bf16}), "
        f"{len(loader)} steps per epoch: {config.epochs} epochs in about {minutes:.0f} min "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
