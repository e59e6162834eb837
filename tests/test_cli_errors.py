"""The command line never loses a user's file and reports every failure in one line.

Table-driven: each row is a command run in-process in a fresh folder holding ``a.jpg`` (a small
photo), ``notes.txt`` (a plain file, to put outputs "under"), ``photos/`` (``a.jpg`` and the user's
own ``a_fkp.jpg``), ``model.safetensors`` and ``clip.mp4`` (bytes standing for a model and a
video), and files a previous run or the user made: ``existing.png``, ``keep.json``, ``keep.onnx``,
``existing.mp4``, ``a_fkp.jpg`` (the default output of ``fkp detect a.jpg``), ``to_existing.png``
(a link to ``existing.png``), a FIFO and a socket. A row may add more (device nodes, as root). The
row names the exit code and words the one stderr line must hold; every file, link and special file
of the folder must be left exactly as it was.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

import fkp.predict
from fkp.cli import main
from fkp.predict import default_weights_path

LONG = "n" * 300
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shipped = fkp.predict.load_model
    monkeypatch.setattr(fkp.predict, "load_model", lambda path=None, **_: None if path is None else shipped(path))  # blank photos have no face to predict
    gray = np.full((40, 50, 3), 128, np.uint8)
    assert cv2.imwrite("a.jpg", gray)
    (tmp_path / "photos").mkdir()
    assert cv2.imwrite("photos/a.jpg", gray)
    assert cv2.imwrite("photos/a_fkp.jpg", 255 - gray)  # the user's own file, not fkp's
    (tmp_path / "model.safetensors").write_bytes(b"weights that must survive")
    (tmp_path / "clip.mp4").write_bytes(b"a video that must survive")
    (tmp_path / "notes.txt").write_text("a plain file\n")
    for name in ("existing.png", "keep.json", "keep.onnx", "existing.mp4", "a_fkp.jpg"):
        (tmp_path / name).write_bytes(f"the user's {name}".encode())
    os.symlink("a.jpg", "link.jpg")
    os.symlink("existing.png", "to_existing.png")
    os.mkfifo("fifo")
    return tmp_path


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse's own errors
        return int(exit_.code or 0)


def snapshot(folder: Path) -> dict[str, object]:
    """Every entry under ``folder``: a file's bytes, a link's target, a special file's type."""
    state: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            state[str(path)] = ("link", os.readlink(path))
        elif stat.S_ISREG(mode):
            state[str(path)] = path.read_bytes()
        elif not stat.S_ISDIR(mode):
            state[str(path)] = ("special", stat.S_IFMT(mode), path.lstat().st_rdev)
    return state


def _socket(folder: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock"))
    server.close()  # the socket file stays


def _block_device(folder: Path) -> None:
    os.mknod(folder / "blockdev", 0o600 | stat.S_IFBLK, os.makedev(7, 0))


NOTHING: Callable[[Path], None] = lambda folder: None  # noqa: E731

# (argv, exit code, words in the one stderr line, extra setup, needs root)
CASES: list[tuple[list[str], int, str, Callable[[Path], None], bool]] = [
    # output is, or resolves to, an input: exit 2 (even with --overwrite)
    (["detect", "a.jpg", "-o", "a.jpg"], 2, "is the input", NOTHING, False),
    (["detect", "a.jpg", "-o", "./a.jpg", "--overwrite"], 2, "is the input", NOTHING, False),
    (["detect", "a.jpg", "-o", "link.jpg"], 2, "is the input", NOTHING, False),
    (["detect", "link.jpg", "-o", "a.jpg"], 2, "is the input", NOTHING, False),
    (["detect", "a.jpg", "--json", "a.jpg"], 2, "is the input", NOTHING, False),
    (["detect", "photos", "-o", "photos"], 2, "is the input", NOTHING, False),
    (["detect", "photos", "--no-draw", "--json", "photos/a.jpg"], 2, "is the input", NOTHING, False),
    (["video", "clip.mp4", "-o", "clip.mp4"], 2, "is the input", NOTHING, False),
    (["video", "clip.mp4", "-o", "./clip.mp4", "--overwrite"], 2, "is the input", NOTHING, False),
    (["filter", "a.jpg", "--filter", "blur", "-o", "link.jpg"], 2, "is the input", NOTHING, False),
    (["filter", "clip.mp4", "--filter", "blur", "-o", "clip.mp4"], 2, "is the input", NOTHING, False),
    (["evaluate", "--model", "model.safetensors", "--json", "model.safetensors"], 2, "is the input", NOTHING, False),
    (["export", "--model", "model.safetensors", "--onnx", "./model.safetensors"], 2, "is the input", NOTHING, False),
    (["export", "--onnx", str(default_weights_path()), "--overwrite"], 2, "is the input", NOTHING, False),
    (["detect", "photos", "a.jpg", "-o", "photos"], 2, "is the input", NOTHING, False),
    # an existing file is replaced only with --overwrite: exit 2
    (["detect", "a.jpg", "-o", "existing.png"], 2, "exists: pass --overwrite", NOTHING, False),
    (["detect", "a.jpg"], 2, "a_fkp.jpg exists: pass --overwrite", NOTHING, False),
    (["detect", "a.jpg", "--no-draw", "--json", "keep.json"], 2, "exists: pass --overwrite", NOTHING, False),
    (["detect", "a.jpg", "-o", "to_existing.png"], 2, "exists: pass --overwrite", NOTHING, False),  # link's target
    (["detect", "photos", "a.jpg", "-o", "."], 2, "a_fkp.jpg exists: pass --overwrite", NOTHING, False),
    (["video", "clip.mp4", "-o", "existing.mp4"], 2, "exists: pass --overwrite", NOTHING, False),
    (["filter", "a.jpg", "--filter", "blur", "-o", "existing.png"], 2, "exists: pass --overwrite", NOTHING, False),
    (["export", "--onnx", "keep.onnx"], 2, "exists: pass --overwrite", NOTHING, False),
    (["evaluate", "--json", "keep.json"], 2, "exists: pass --overwrite", NOTHING, False),
    # two outputs of one command on one place: exit 2
    (["detect", "a.jpg", "-o", "same.png", "--json", "same.png"], 2, "two outputs on one place", NOTHING, False),
    (["detect", "a.jpg", "-o", "same.png", "--json", "./same.png"], 2, "two outputs on one place", NOTHING, False),
    (["detect", "a.jpg", "-o", "-", "--json", "-"], 2, "two outputs on one place", NOTHING, False),
    (["detect", "a.jpg", "-o", "/dev/stdout", "--json", "-"], 2, "two outputs on one place", NOTHING, False),
    # outputs that are not files: refused, never replaced (devices and FIFOs are written through)
    (["detect", "a.jpg", "-o", "sock"], 2, "is a socket, not a file", _socket, False),
    (["detect", "a.jpg", "-o", "photos", "--json", "photos"], 2, "is a folder, not a file", NOTHING, False),
    (["detect", "a.jpg", "-o", "blockdev", "--overwrite"], 2, "is a block device, not a file", _block_device, True),
    (["detect", "a.jpg", "-o", "fifo"], 1, "a FIFO with no reader", NOTHING, False),
    (["export", "--onnx", "newdir/"], 2, "names a folder (it ends in /)", NOTHING, False),
    (["detect", "a.jpg", "--json", "newdir/"], 2, "names a folder (it ends in /)", NOTHING, False),
    (["video", "clip.mp4", "-o", "-"], 2, "a video is written to a file", NOTHING, False),
    (["video", "clip.mp4", "-o", "fifo"], 2, "a video is written to a file", NOTHING, False),
    # misleading words, and usage errors that exited 1 or were ignored
    (["detect", "/dev/zero"], 1, "not a regular file (a character device)", NOTHING, False),
    (["detect", "/dev/urandom"], 1, "not a regular file (a character device)", NOTHING, False),
    (["detect", "fifo"], 1, "not a regular file (a FIFO", NOTHING, False),
    (["filter", "/dev/zero"], 1, "not a regular file (a character device)", NOTHING, False),
    (["data", "verify", "--dir", "notes.txt"], 1, "is a file, not a folder", NOTHING, False),
    (["detect", "a.jpg", "--no-draw", "-o", "out.png"], 2, "with --no-draw: nothing would be drawn", NOTHING, False),
    (["detect", "photos", "-o", "notes.txt"], 2, "several inputs need an output folder", NOTHING, False),
    (["detect", "photos", "a.jpg", "-o", "-"], 2, "several inputs need an output folder", NOTHING, False),
    (["detect", "photos", "a.jpg", "-o", "many.png"], 2, "several inputs need an output folder", NOTHING, False),
    # argparse errors: one line with a --help hint
    (["detect", "--passes", "3"], 2, "(see fkp detect --help)", NOTHING, False),
    ([], 2, "(see fkp --help)", NOTHING, False),
    (["bogus"], 2, "invalid choice", NOTHING, False),
    (["data"], 2, "(see fkp data --help)", NOTHING, False),
    (["data", "verify", "--bogus"], 2, "unrecognized arguments", NOTHING, False),
    (["filter", "--anchors", "1,2"], 2, "--anchors and --points go with --art", NOTHING, False),
    (["video"], 2, "(see fkp video --help)", NOTHING, False),
    # outputs that cannot be written: exit 1, before any work
    (["detect", "a.jpg", "-o", "notes.txt/out.png"], 1, "is a file, not a folder", NOTHING, False),
    (["detect", "a.jpg", "--json", "notes.txt/faces.json"], 1, "is a file, not a folder", NOTHING, False),
    (["detect", "photos", "-o", "notes.txt/drawn"], 1, "is a file, not a folder", NOTHING, False),
    (["video", "clip.mp4", "-o", "notes.txt/out.mp4"], 1, "is a file, not a folder", NOTHING, False),
    (["export", "--onnx", "notes.txt/model.onnx"], 1, "is a file, not a folder", NOTHING, False),
    (["evaluate", "--json", "notes.txt/report.json"], 1, "is a file, not a folder", NOTHING, False),
    (["train", "--out-dir", "notes.txt"], 1, "is a file, not a folder", NOTHING, False),
    (["train", "--out-dir", "notes.txt/run"], 1, "is a file, not a folder", NOTHING, False),
    # names and paths too long
    (["detect", LONG + ".jpg"], 1, "too long", NOTHING, False),
    (["detect", "a.jpg", "-o", LONG + ".png"], 1, "too long", NOTHING, False),
    (["detect", "a.jpg", "-o", "/".join(["d" * 200] * 21) + "/out.png"], 1, "path too long", NOTHING, False),
    (["detect", "/".join(["d" * 200] * 21) + "/a.jpg"], 1, "too long", NOTHING, False),
    (["video", "clip.mp4", "-o", LONG + ".mp4"], 1, "too long", NOTHING, False),
    # settings that cannot work: exit 2
    (["train", "--batch-size", "0"], 2, "--batch-size must be at least 1", NOTHING, False),
    (["train", "--limit", "0"], 2, "--limit must be at least 1", NOTHING, False),
    (["train", "--threads", "0"], 2, "--threads must be at least 1", NOTHING, False),
    (["train", "--epochs", "0"], 2, "--epochs must be at least 1", NOTHING, False),
    (["train", "--device", "bogus"], 2, "is not a device", NOTHING, False),
    (["evaluate", "--threads", "0"], 2, "must be at least 1", NOTHING, False),
]


@pytest.mark.parametrize("argv, code, words, setup, root", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_refusals_are_one_line_and_touch_no_file(workdir, capfd, argv, code, words, setup, root):
    if root and not ROOT:
        pytest.skip("device nodes need root (mknod)")
    setup(workdir)
    before = snapshot(workdir)
    assert _run(argv) == code
    err = capfd.readouterr().err.splitlines()
    lines = [line for line in err if line.strip() and "using the Haar face detector" not in line]  # a note
    assert len(lines) == 1 and words in lines[0], lines
    assert snapshot(workdir) == before
