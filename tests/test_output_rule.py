"""The one output rule (fkp/outputs.py), from the side of what it writes: standard output, devices,
FIFOs, links, folders named with a trailing slash, --overwrite, a name another run makes meanwhile,
the temporaries a killed run left; and the README's list of exit codes, each checked on the CLI."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

import fkp.detect
import fkp.predict
from fkp.cli import main
from fkp.outputs import OutputConflictError, check_distinct, plan_output

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = "## Exit codes and outputs"
SECTION = """## Exit codes and outputs

- 0: success, also when no face is found.
- 1: a failure, told in one line on stderr: an unreadable input (the other inputs are still processed, and each bad one is named), an output that cannot be written (its folder is a file or read-only, the disk is full, a FIFO with no reader), a missing or damaged data set, model or checkpoint.
- 2: bad arguments or settings, one line on stderr (a malformed command line ends with a `--help` hint); also any output the rule below refuses.
- 130: interrupted with Ctrl-C (`fkp train` first saves a checkpoint that `--resume` continues from exactly).

One rule for every output of every command (`-o`, `--json`, `--onnx`, `--out-dir`, a folder of drawings, a video): an existing file is replaced only with `--overwrite`, and never when it is one of the command's inputs (through a link, `./` or another letter case); two outputs of one command on one path are refused; `-` (or `/dev/stdout`) means standard output; a character device such as `/dev/null` or a FIFO is written through, a symbolic link writes its target, and neither is ever replaced by a file; a name ending in `/` is a folder. A file appears whole or not at all: it is written aside and then takes its name, which it claims only if no other run took it meanwhile (that run's file is kept and named in one line); temporaries that a killed run left (`.NAME.XXXXXXXX.tmp.EXT`) are removed by the next run writing there.
"""
"""The README's section as proposed (the README is checked when it has the heading)."""


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fkp.predict, "load_model", lambda path=None, **_: None)  # blank photos have no face to predict
    gray = np.full((40, 50, 3), 128, np.uint8)
    assert cv2.imwrite("a.jpg", gray)
    (tmp_path / "photos").mkdir()
    assert cv2.imwrite("photos/a.jpg", gray)
    assert cv2.imwrite("photos/b.jpg", gray)
    (tmp_path / "existing.png").write_bytes(b"the user's")
    os.symlink("existing.png", "to_existing.png")
    return tmp_path


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def test_dash_and_dev_stdout_write_the_image_to_stdout(workdir, capfdbinary):
    for name in ("-", "/dev/stdout"):
        assert _run(["detect", "a.jpg", "-o", name]) == 0
        captured = capfdbinary.readouterr()
        assert captured.out.startswith(JPEG) is False and captured.out.startswith(PNG)  # no ending: PNG
        assert b"wrote standard output" in captured.err  # the summary goes to stderr
    assert _run(["filter", "a.jpg", "--filter", "blur", "-o", "-"]) == 0
    captured = capfdbinary.readouterr()
    assert captured.out.startswith(PNG) and b"wrote standard output" in captured.err
    assert not (workdir / "-").exists()
    assert os.path.islink("/dev/stdout") or not ROOT  # the link was written through, not replaced


def test_a_trailing_slash_means_a_folder(workdir):
    assert _run(["detect", "a.jpg", "-o", "newdir/"]) == 0
    assert (workdir / "newdir").is_dir() and (workdir / "newdir" / "a_fkp.jpg").read_bytes().startswith(JPEG)
    assert _run(["filter", "a.jpg", "--filter", "blur", "-o", "other/"]) == 0
    assert (workdir / "other" / "a_blur.jpg").is_file()


def test_overwrite_replaces_a_file_and_a_link_keeps_its_place(workdir):
    assert _run(["detect", "a.jpg", "-o", "to_existing.png", "--overwrite"]) == 0
    assert os.readlink("to_existing.png") == "existing.png"  # the link stays a link
    assert (workdir / "existing.png").read_bytes().startswith(PNG)  # its target was written
    os.symlink("target.png", "dangling.png")
    assert _run(["detect", "a.jpg", "-o", "dangling.png"]) == 0
    assert os.path.islink("dangling.png") and (workdir / "target.png").read_bytes().startswith(PNG)


def test_dev_null_is_written_through(workdir):
    assert _run(["detect", "a.jpg", "-o", "/dev/null", "--json", "/dev/null"]) == 2  # two outputs, one place
    assert _run(["detect", "a.jpg", "-o", "/dev/null"]) == 0
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_a_device_node_stays_a_device(workdir):
    if not ROOT:
        pytest.skip("device nodes need root (mknod)")
    os.mknod("fakenull", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    assert _run(["detect", "a.jpg", "-o", "fakenull", "--json", "fakenull2"]) == 0
    assert stat.S_ISCHR(os.lstat("fakenull").st_mode) and os.lstat("fakenull").st_rdev == os.makedev(1, 3)


def test_a_fifo_with_a_reader_gets_the_bytes(workdir):
    os.mkfifo("pipe")
    reader = os.open("pipe", os.O_RDONLY | os.O_NONBLOCK)  # a reader is there; the small PNG fits the pipe
    try:
        assert _run(["detect", "a.jpg", "-o", "pipe", "--json", "faces.json"]) == 0
        received = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
    assert received.startswith(PNG) and stat.S_ISFIFO(os.lstat("pipe").st_mode)
    assert (workdir / "faces.json").is_file()


def test_a_name_another_run_makes_meanwhile_is_kept(workdir, monkeypatch, capfd):
    real = fkp.detect.Landmarker.__call__

    def other_run_writes_first(self, image):
        out = workdir / "out" / "b_fkp.jpg"
        if not out.exists():
            out.parent.mkdir(exist_ok=True)
            out.write_bytes(b"the other run's drawing")
        return real(self, image)

    monkeypatch.setattr(fkp.detect.Landmarker, "__call__", other_run_writes_first)
    assert _run(["detect", "photos", "-o", "out"]) == 1
    lines = [line for line in capfd.readouterr().err.splitlines() if "error" in line]
    assert len(lines) == 1 and "b_fkp.jpg was made by another run meanwhile" in lines[0], lines
    assert (workdir / "out" / "b_fkp.jpg").read_bytes() == b"the other run's drawing"
    assert (workdir / "out" / "a_fkp.jpg").read_bytes().startswith(JPEG)
    assert sorted(p.name for p in (workdir / "out").iterdir()) == ["a_fkp.jpg", "b_fkp.jpg"]  # no temporary


def test_stale_temporaries_of_a_killed_run_are_removed(workdir):
    out = workdir / "out"
    out.mkdir()
    stale = out / ".a_fkp.jpg.k1ll3d_x.tmp.jpg"
    stale.write_bytes(b"half a drawing")
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    mine = out / ".notes.tmp"  # not fkp's pattern: kept
    mine.write_bytes(b"the user's")
    assert _run(["detect", "photos", "-o", "out"]) == 0
    assert not stale.exists() and mine.read_bytes() == b"the user's"


def test_plan_output_and_check_distinct(tmp_path):
    target = tmp_path / "x.json"
    planned = plan_output(target)
    target.write_bytes(b"made meanwhile")
    with pytest.raises(OutputConflictError, match="another run meanwhile"):
        planned.write_bytes(b"mine")
    assert target.read_bytes() == b"made meanwhile"
    with pytest.raises(OutputConflictError, match="exists: pass --overwrite"):
        plan_output(target)
    plan_output(target, overwrite=True).write_bytes(b"mine")
    assert target.read_bytes() == b"mine"
    with pytest.raises(OutputConflictError, match="two outputs"):
        check_distinct([plan_output(tmp_path / "a.png"), plan_output(tmp_path / "sub" / ".." / "a.png")])


# --- the README's exit codes, each checked against the CLI ---------------------------------------


def readme_codes() -> dict[int, str]:
    """Code -> its text, from the README's section (the proposed one until the README has it)."""
    text = README.read_text(encoding="utf-8") if README.is_file() else ""
    if HEADING not in text:
        text = SECTION
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    codes = {int(m.group(1)): m.group(2) for m in re.finditer(r"^- (\d+): (.+)$", section, re.MULTILINE)}
    assert "--overwrite" in section and "`-`" in section, "the section states the output rule"
    return codes


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


PROBES: dict[int, list[tuple[list[str], str]]] = {
    0: [(["detect", "a.jpg"], "1 images, 0 faces")],  # no face found is still success
    1: [
        (["detect", "missing.jpg"], "missing.jpg: no such file"),
        (["detect", "a.jpg", "-o", "existing.png/x.png"], "is a file, not a folder"),
    ],
    2: [
        (["detect", "--passes", "3"], "--help"),
        (["detect", "a.jpg", "-o", "existing.png"], "pass --overwrite"),
        (["detect", "a.jpg", "-o", "a.jpg", "--overwrite"], "is the input"),
    ],
    130: [(["detect", "a.jpg"], "interrupted")],
}


def test_the_readme_lists_exactly_the_codes_the_cli_gives():
    assert sorted(readme_codes()) == sorted(PROBES)


@pytest.mark.parametrize("code", sorted(PROBES))
def test_each_exit_code_of_the_readme_is_true(workdir, capfd, monkeypatch, code):
    assert code in readme_codes()
    if code == 130:
        monkeypatch.setattr(fkp.detect.Landmarker, "__call__", _interrupt)
    for argv, words in PROBES[code]:
        before = (workdir / "existing.png").read_bytes()
        assert _run(argv) == code, argv
        captured = capfd.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip() and "using the Haar" not in line]
        if code == 0:
            assert words in captured.out
        else:
            assert len(lines) == 1 and words in lines[0], lines
        assert (workdir / "existing.png").read_bytes() == before
