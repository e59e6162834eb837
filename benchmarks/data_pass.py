"""Time one pass over the training images, decoding from disk and then from the memory cache.

    FKP_DATA_DIR=path/to/facial-keypoints python benchmarks/data_pass.py
"""

from __future__ import annotations

import time

from fkp.data import FacialKeypointsDataset


def one_pass(dataset: FacialKeypointsDataset) -> float:
    start = time.perf_counter()
    for index in range(len(dataset)):
        dataset[index]
    return time.perf_counter() - start


def main() -> None:
    uncached = FacialKeypointsDataset(split="training", cache=False)
    print(f"{len(uncached)} training images, no cache:            {one_pass(uncached):6.2f} s per pass")
    cached = FacialKeypointsDataset(split="training")
    print(f"with the memory cache, first pass (decodes): {one_pass(cached):6.2f} s")
    print(f"with the memory cache, second pass:          {one_pass(cached):6.2f} s")


if __name__ == "__main__":
    main()
