"""The command line never loses a user's file and reports every failure in one line.

Table-driven: each row is a command run in-process in a fresh folder holding ``a.jpg`` (a small
photo), ``notes.txt`` (a plain file, to put outputs "under"), ``photos/`` (``a.jpg`` and the user's
own ``a_fkp.jpg``) and ``model.safetensors`` (bytes standing for a model); the row names the exit
code and words the one stderr line must hold, and the files that must be left as they were.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import fkp.predict
from fkp.cli import main
from fkp.predict import default_weights_path

ORIGINALS = ("a.jpg", "photos/a.jpg", "photos/a_fkp.jpg", "model.safetensors", "clip.mp4", "notes.txt")
LONG = "n" * 300


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shipped = fkp.predict.load_model
    monkeypatch.setattr(fkp.predict, "load_model", lambda path=None: None if path is None else shipped(path))  # blank photos have no face to predict
    gray = np.full((40, 50, 3), 128, np.uint8)
    assert cv2.imwrite("a.jpg", gray)
    (tmp_path / "photos").mkdir()
    assert cv2.imwrite("photos/a.jpg", gray)
    assert cv2.imwrite("photos/a_fkp.jpg", 255 - gray)  # the user's own file, not fkp's
    (tmp_path / "model.safetensors").write_bytes(b"weights that must survive")
    (tmp_path / "clip.mp4").write_bytes(b"a video that must survive")
    (tmp_path / "notes.txt").write_text("a plain file\n")
    os.symlink("a.jpg", "link.jpg")
    return tmp_path


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse's own errors
        return int(exit_.code)


CASES = [
    # output is, or resolves to, an input: exit 2
    (["detect", "a.jpg", "-o", "a.jpg"], 2, "is the input"),
    (["detect", "a.jpg", "-o", "./a.jpg"], 2, "is the input"),
    (["detect", "a.jpg", "-o", "link.jpg"], 2, "is the input"),
    (["detect", "link.jpg", "-o", "a.jpg"], 2, "is the input"),
    (["detect", "a.jpg", "--json", "a.jpg"], 2, "is the input"),
    (["detect", "photos", "-o", "photos"], 2, "is the input"),
    (["detect", "photos", "--no-draw", "--json", "photos/a.jpg"], 2, "is the input"),
    (["video", "clip.mp4", "-o", "clip.mp4"], 2, "is the input"),
    (["video", "clip.mp4", "-o", "./clip.mp4"], 2, "is the input"),
    (["filter", "a.jpg", "--filter", "blur", "-o", "link.jpg"], 2, "is the input"),
    (["filter", "clip.mp4", "--filter", "blur", "-o", "clip.mp4"], 2, "is the input"),
    (["evaluate", "--model", "model.safetensors", "--json", "model.safetensors"], 2, "is the input"),
    (["export", "--model", "model.safetensors", "--onnx", "./model.safetensors"], 2, "is the input"),
    (["export", "--onnx", str(default_weights_path())], 2, "is the input"),  # the shipped model
    # a folder run does not replace a file it did not make: exit 2
    (["detect", "photos", "a.jpg", "-o", "photos"], 2, "is the input"),
    # outputs that cannot be written: exit 1, before any work
    (["detect", "a.jpg", "-o", "notes.txt/out.png"], 1, "is a file, not a folder"),
    (["detect", "a.jpg", "--json", "notes.txt/faces.json"], 1, "is a file, not a folder"),
    (["detect", "photos", "-o", "notes.txt/drawn"], 1, "is a file, not a folder"),
    (["detect", "photos", "-o", "notes.txt"], 1, "not a folder"),
    (["video", "clip.mp4", "-o", "notes.txt/out.mp4"], 1, "is a file, not a folder"),
    (["export", "--onnx", "notes.txt/model.onnx"], 1, "is a file, not a folder"),
    (["evaluate", "--json", "notes.txt/report.json"], 1, "is a file, not a folder"),
    (["train", "--out-dir", "notes.txt"], 1, "is a file, not a folder"),
    (["train", "--out-dir", "notes.txt/run"], 1, "is a file, not a folder"),
    # names and paths too long
    (["detect", LONG + ".jpg"], 1, "too long"),
    (["detect", "a.jpg", "-o", LONG + ".png"], 1, "too long"),
    (["detect", "a.jpg", "-o", "/".join(["d" * 200] * 21) + "/out.png"], 1, "path too long"),
    (["detect", "/".join(["d" * 200] * 21) + "/a.jpg"], 1, "too long"),
    (["video", "clip.mp4", "-o", LONG + ".mp4"], 1, "too long"),
    # settings that cannot work: exit 2
    (["train", "--batch-size", "0"], 2, "--batch-size must be at least 1"),
    (["train", "--limit", "0"], 2, "--limit must be at least 1"),
    (["train", "--threads", "0"], 2, "--threads must be at least 1"),
    (["train", "--epochs", "0"], 2, "--epochs must be at least 1"),
    (["train", "--device", "bogus"], 2, "is not a device"),
    (["evaluate", "--threads", "0"], 2, "must be at least 1"),
]


@pytest.mark.parametrize("argv, code, words", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_refusals_are_one_line_and_touch_no_file(workdir, capfd, argv, code, words):
    before = {name: (workdir / name).read_bytes() for name in ORIGINALS}
    assert _run(argv) == code
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], lines
    assert {name: (workdir / name).read_bytes() for name in ORIGINALS} == before
    assert not list(workdir.glob("**/*_fkp_fkp*")) and not (workdir / "fkp_detect").exists()


def test_folder_runs_refuse_to_replace_existing_files_unless_told(workdir, capfd):
    (workdir / "out").mkdir()
    mine = workdir / "out" / "a_fkp.jpg"
    mine.write_bytes(b"the user's")
    assert _run(["detect", "photos", "-o", "out"]) == 2
    assert "pass --overwrite" in capfd.readouterr().err and mine.read_bytes() == b"the user's"
    assert _run(["detect", "photos", "-o", "out", "--overwrite"]) == 0
    assert cv2.imread(str(mine)) is not None  # replaced by the drawing, on request
    assert sorted(p.name for p in (workdir / "out").iterdir()) == ["a_fkp.jpg", "a_fkp_fkp.jpg"]


def test_a_legal_254_character_output_name_is_written(workdir):
    name = "o" * 250 + ".png"
    assert _run(["detect", "a.jpg", "-o", name]) == 0
    assert cv2.imread(name) is not None
    assert [p.name for p in workdir.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_a_folder_run_into_an_unwritable_folder_is_refused_up_front(workdir, capfd):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    (workdir / "locked").mkdir(mode=0o500)
    assert _run(["detect", "photos", "-o", "locked/sub", "--json", "faces.json"]) == 1
    assert "permission denied" in capfd.readouterr().err
