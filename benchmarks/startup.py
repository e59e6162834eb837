"""How light fkp is for a tool user: the size of a core install and a cold ``fkp detect``.

    python benchmarks/startup.py [--runs 7] [--keep DIR]

1. Makes a fresh virtual environment and runs ``pip install SOURCE`` into it (the core install,
   no extras; SOURCE is a copy of this working tree's files that git knows or does not ignore),
   checks that PyTorch did not come with it, and prints its size on disk: the installed packages
   (site-packages less pip and setuptools), the largest ones, and the whole environment.
2. Runs ``fkp detect photo.jpg -o out.png`` in that environment, each time a new process, on the
   512 x 512 sample photo (scikit-image's astronaut, read in this environment) saved as a JPEG, ``--runs`` times, and prints the median wall
   time and peak resident memory (RSS) of the process, and the worst run of each. The first, warm-up
   run (cold disk cache) is not counted.
3. Runs ``fkp detect`` with no argument there too: without scikit-image it must say so in one line.

Targets (issue 10): core install <= 300 MB without torch; <= 0.8 s and <= 300 MB RSS per photo.
Needs OpenCV and scikit-image here (the course install) and access to the package index.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
NOT_THE_INSTALL = ("pip", "setuptools", "_distutils_hack", "pkg_resources", "distutils-precedence.pth")


def disk_bytes(path: Path) -> int:
    """Bytes on disk (allocated blocks, as ``du``) of a file or folder tree."""
    if path.is_file() or path.is_symlink():
        return path.lstat().st_blocks * 512
    return sum(p.lstat().st_blocks * 512 for p in path.rglob("*"))


def copy_source(target: Path) -> Path:
    """This working tree's files that git tracks or does not ignore, copied to ``target``."""
    names = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, names):
        source = REPO / os.fsdecode(name)
        if source.is_file():
            (target / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / os.fsdecode(name))
    return target


def site_packages(venv: Path) -> Path:
    return next(venv.glob("lib/python3*/site-packages"))


def install_core(venv: Path, source: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(source)], check=True)


def measure_run(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS in MB of one process running ``command``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of fkp detect (after one warm-up)")
    parser.add_argument("--keep", type=Path, help="build the environment in DIR and keep it (default: a temporary one)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fkp_startup_"))
    venv = args.keep or work / "venv"
    try:
        install_core(venv, copy_source(work / "source"))
        packages = site_packages(venv)
        if list(packages.glob("torch")) or list(packages.glob("torch-*")):
            raise SystemExit("the core install pulled in torch")
        sizes = {p.name: disk_bytes(p) for p in packages.iterdir()}
        installed = sum(size for name, size in sizes.items() if not name.startswith(NOT_THE_INSTALL))
        print(f"core install (pip install . into a fresh venv, Python {sys.version.split()[0]}): no torch")
        print(f"  installed packages: {installed / 1e6:.0f} MB on disk (target <= 300 MB); whole venv {disk_bytes(venv) / 1e6:.0f} MB")
        largest = sorted(sizes.items(), key=lambda item: -item[1])[:8]
        print("  largest: " + ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in largest))

        fkp = str(venv / "bin" / "fkp")
        photo = work / "photo.jpg"
        from fkp.samples import astronaut  # from this (course) environment's scikit-image

        cv2.imwrite(str(photo), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
        command = [fkp, "detect", str(photo), "-o", str(work / "out.png"), "--overwrite"]
        measure_run(command, work)  # warm-up: the disk cache, not fkp
        runs = [measure_run(command, work) for _ in range(args.runs)]
        seconds, rss = zip(*runs)
        print(f"cold `fkp detect photo.jpg -o out.png` (512 x 512 JPEG, one face), {args.runs} runs, new process each:")
        print(f"  wall time: median {statistics.median(seconds):.2f} s, worst {max(seconds):.2f} s (target <= 0.8 s)")
        print(f"  peak RSS:  median {statistics.median(rss):.0f} MB, worst {max(rss):.0f} MB (target <= 300 MB)")
        demo = subprocess.run([fkp, "detect"], cwd=work, capture_output=True, text=True)
        lines = demo.stderr.strip().splitlines()
        assert demo.returncode == 1 and len(lines) == 1 and "scikit-image" in lines[0], demo.stderr
        print(f"`fkp detect` with no photo in the core venv (no scikit-image): one line, exit 1: {lines[0]}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
