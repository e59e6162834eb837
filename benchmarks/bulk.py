"""Keypoints for a whole collection: batched network calls, worker processes, Ray, memory, dlib.

    python benchmarks/bulk.py [--photos 2000] [--memory-images 20000 200] [--ray-images 400]

Prints, side by side in one run (README "Many photos"):

1. the keypoint model on one core: faces/s of one face per ``predict`` call, and of
   ``predict_many`` over the faces of 4, 8, 16 and 32 photos per call, with the largest difference
   of the points (pixels);
2. ``fkp detect FOLDER --json out.jsonl --jobs 1`` and ``--jobs 2`` on a folder of ``--photos``
   photos (symbolic links to the test photos of both data sets, repeated under other names);
3. ``fkp detect --engine ray`` on a local 2-CPU Ray against one process, on ``--ray-images`` photos
   (Ray's start-up counted apart);
4. the peak memory (RSS) of the run's main process (its workers are the forkserver's children,
   which this does not see; each holds one chunk of images), for the two
   ``--memory-images`` sizes (a list file repeating the folder's photos; the Haar detector, the
   quickest, unless ``--memory-detector``);
5. dlib's HOG detector and 68-point predictor, one process, on the same photos, for scale;

and the projected hours per million photos of each. Needs both data sets (``FKP_DATA_DIR``,
``FKP_300W_DIR``), YuNet's file, Ray (``fkp[ray]``) and dlib (``fkp[bench]``); a missing one
leaves its row out with one line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fkp.detect import Landmarker
from fkp.images import IMAGE_SUFFIXES, load_image
from fkp.utils import resolve_300w_dir, resolve_data_dir

BATCHES = (4, 8, 16, 32)
SUMMARY = re.compile(r"(\d+) images, (\d+) faces, (\d+) failures, ([\d.]+) s")


def test_photos() -> list[Path]:
    """The test photos of the course data set and of 300-W, sorted."""
    photos = []
    for root in (resolve_data_dir() / "test", resolve_300w_dir() / "test"):
        photos += sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return photos


def make_folder(folder: Path, photos: list[Path], count: int) -> list[Path]:
    """``count`` symbolic links in ``folder`` to ``photos``, repeated under other names as needed."""
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for i in range(count):
        source = photos[i % len(photos)]
        link = folder / f"{i:06d}_{source.name}"
        link.symlink_to(source)
        links.append(link)
    return links


def hours_per_million(images_per_second: float) -> float:
    return 1e6 / images_per_second / 3600


def batched_network(landmarker: Landmarker, photos: list[Path], faces_wanted: int = 256) -> list[str]:
    """Faces/s of the keypoint model on one core: one face per ``predict`` call, against
    ``predict_many`` over the faces of B images per call; and the points' largest change."""
    model: Any = landmarker.model
    images, boxes = [], []
    for path in photos:
        image = load_image(path)
        found = landmarker.detector.detect(image)
        if len(found):
            images.append(image)
            boxes.append(found)
        if sum(len(b) for b in boxes) >= faces_wanted:
            break
    faces = sum(len(b) for b in boxes)

    def one_by_one() -> list[np.ndarray]:
        return [
            np.concatenate([model.predict(im, b[i : i + 1]) for i in range(len(b))]) for im, b in zip(images, boxes)
        ]

    def batched(size: int) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for i in range(0, len(images), size):
            out += model.predict_many(images[i : i + size], boxes[i : i + size])
        return out

    def best_rate(run: Any) -> tuple[float, list[np.ndarray]]:
        rates, out = [], []
        for _ in range(3):
            start = time.perf_counter()
            out = run()
            rates.append(faces / (time.perf_counter() - start))
        return max(rates), out

    base, reference = best_rate(one_by_one)
    lines = [f"1. keypoints (model.predict), one core, {faces} faces of {len(images)} photos:"]
    lines.append(f"   one face per call:    {base:7.0f} faces/s  1.00x")
    for size in BATCHES:
        rate, out = best_rate(lambda size=size: batched(size))
        moved = max(float(np.abs(a - b).max()) for a, b in zip(out, reference))
        lines.append(
            f"   {size:>3} photos per call: {rate:7.0f} faces/s  {rate / base:4.2f}x  max change {moved:.1e} px"
        )
    return lines


def run_cli(arguments: list[str]) -> tuple[float, dict[str, float]]:
    """Run ``fkp detect`` with ``arguments`` in a fresh process: (wall seconds, its summary and peak RSS)."""
    script = (
        "import resource, sys\n"
        "from fkp.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, "detect", *arguments], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"fkp detect {' '.join(arguments)} failed: {done.stderr.strip().splitlines()[-1:]}")
    images, faces, failures, run_seconds = SUMMARY.search(done.stdout).groups()  # type: ignore[union-attr]
    rss = re.search(r"RSS (\d+) (\d+)", done.stdout).groups()  # type: ignore[union-attr]
    return seconds, {
        "images": int(images),
        "faces": int(faces),
        "failures": int(failures),
        "seconds": float(run_seconds),
        "main_mb": int(rss[0]) / 1024,
        "worker_mb": int(rss[1]) / 1024,
    }


def same_results(a: Path, b: Path) -> bool:
    def records(path: Path) -> dict[str, dict]:
        return {r["path"]: r for r in map(json.loads, path.read_text().splitlines())}

    return records(a) == records(b)


def dlib_rate(photos: list[Path], count: int) -> float | None:
    try:
        sys.path.insert(0, str(Path(__file__).parent))
        from compare_dlib import Dlib
    except (ImportError, SystemExit) as error:
        print(f"dlib: left out ({error})")
        return None
    dlib = Dlib()
    start = time.perf_counter()
    for path in photos[:count]:
        image = load_image(path)
        for box in dlib.detect(image):
            dlib.predict(image, box)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=2000, help="photos in the folder of --jobs 1 / 2")
    parser.add_argument("--memory-images", type=int, nargs=2, default=(20000, 200), metavar=("LARGE", "SMALL"))
    parser.add_argument("--ray-images", type=int, default=400)
    parser.add_argument(
        "--memory-detector", default="haar", help="face detector of the memory runs (haar: the quickest to 20000)"
    )
    parser.add_argument("--dlib-images", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(
        f"machine: {os.cpu_count()} cores; uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}"
    )
    photos = test_photos()
    landmarker = Landmarker()
    for line in batched_network(landmarker, photos):
        print(line, flush=True)

    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="fkp-bulk-") as tmp:
        root = Path(tmp)
        make_folder(root / "photos", photos, args.photos)
        for jobs in (1, 2):
            wall, stats = run_cli(
                [str(root / "photos"), "--json", str(root / f"jobs{jobs}.jsonl"), "--jobs", str(jobs)]
            )
            rates[f"fkp --jobs {jobs}"] = stats["images"] / stats["seconds"]
            print(
                f"2. --jobs {jobs}: {stats['images']} photos, {stats['faces']} faces in {stats['seconds']:.1f} s "
                f"({wall:.1f} s with start-up): {rates[f'fkp --jobs {jobs}']:.1f} images/s",
                flush=True,
            )
        same = same_results(root / "jobs1.jsonl", root / "jobs2.jsonl")
        print(f"   --jobs 2 / --jobs 1: {rates['fkp --jobs 2'] / rates['fkp --jobs 1']:.2f}x, same results: {same}")

        sample = sorted((root / "photos").iterdir())[: args.ray_images]
        (root / "ray.txt").write_text("".join(f"{p}\n" for p in sample))
        _, one = run_cli(["--from", str(root / "ray.txt"), "--json", str(root / "one.jsonl"), "--jobs", "1"])
        rates["fkp, one process"] = one["images"] / one["seconds"]
        try:
            import ray  # noqa: F401

            wall, distributed = run_cli(
                ["--from", str(root / "ray.txt"), "--json", str(root / "ray.jsonl"), "--engine", "ray", "--jobs", "2"]
            )
            rates["fkp --engine ray (local, 2 CPUs)"] = distributed["images"] / distributed["seconds"]
            print(
                f"3. {len(sample)} photos: one process {rates['fkp, one process']:.1f} images/s; Ray local 2 CPUs "
                f"{rates['fkp --engine ray (local, 2 CPUs)']:.1f} images/s (Ray's start-up included: "
                f"{distributed['seconds']:.1f} s of the run, {wall:.1f} s with the process start): "
                f"{rates['fkp --engine ray (local, 2 CPUs)'] / rates['fkp, one process']:.2f}x, "
                f"same results: {same_results(root / 'one.jsonl', root / 'ray.jsonl')}",
                flush=True,
            )
        except ImportError:
            print("3. Ray: left out (pip install 'fkp[ray]')")

        memory = {}
        for count in args.memory_images:
            listing = root / f"list{count}.txt"
            links = sorted((root / "photos").iterdir())
            listing.write_text("".join(f"{links[i % len(links)]}\n" for i in range(count)))
            # a list naming the same photo several times: each is one result line (same path, same hash)
            _, memory[count] = run_cli(
                ["--from", str(listing), "--json", str(root / f"mem{count}.jsonl"), "--jobs", "2"]
            )
        large, small = args.memory_images
        print(
            f"4. peak RSS of the main process, --jobs 2 --detector {args.memory_detector}: {large} images "
            f"{memory[large]['main_mb']:.0f} MB, {small} images {memory[small]['main_mb']:.0f} MB; ratio "
            f"{memory[large]['main_mb'] / memory[small]['main_mb']:.2f}x",
            flush=True,
        )

    rate = dlib_rate(photos, args.dlib_images)
    if rate is not None:
        rates["dlib HOG + 68 points, one process"] = rate
        print(f"5. dlib HOG + 68 points, one process, {args.dlib_images} photos: {rate:.1f} images/s")
    print("\nprojected hours per million photos (this machine):")
    for name, value in rates.items():
        print(f"   {name:<36} {value:7.1f} images/s  {hours_per_million(value):7.1f} h")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
