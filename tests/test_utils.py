"""fkp.utils: the one atomic writer (files and folders) leaves either the old file or the new one."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fkp.utils import (
    NAME_MAX,
    NotAFileError,
    atomic_output,
    atomic_write_bytes,
    clear_stale_temporaries,
    staged_folder,
    stale_temporaries,
)


def test_atomic_writes_get_the_usual_file_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"payload")
    mask = os.umask(0)
    os.umask(mask)
    assert target.read_bytes() == b"payload"
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_output_keeps_the_suffix_and_places_the_file_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "video.mp4"
    with atomic_output(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".video.mp4.") and tmp.suffix == ".mp4"
        tmp.write_bytes(b"new")
        assert not target.exists()  # nobody sees it before the block ends
    assert target.read_bytes() == b"new"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"new"  # the old file stands, the temporary is gone
    assert [p.name for p in target.parent.iterdir()] == ["video.mp4"]


def test_any_legal_name_fits_and_stale_temporaries_are_found(tmp_path: Path) -> None:
    target = tmp_path / ("n" * (NAME_MAX - 4) + ".png")
    atomic_write_bytes(target, b"x")
    assert target.read_bytes() == b"x"
    killed = tmp_path / ".last.pt.abcd1234.tmp.pt"  # what a kill during atomic_output leaves
    killed.write_bytes(b"half")
    legacy = tmp_path / ".last.pt.tmp"
    legacy.write_bytes(b"half")
    assert stale_temporaries(tmp_path / "last.pt") == sorted([killed, legacy])


def test_staged_folder_replaces_only_when_complete(tmp_path: Path) -> None:
    dest = tmp_path / "data"
    with staged_folder(dest) as staging:
        (staging / "a.txt").write_text("one")
    with pytest.raises(RuntimeError), staged_folder(dest) as staging:
        (staging / "a.txt").write_text("two")
        raise RuntimeError("interrupted")
    assert (dest / "a.txt").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_link_is_written_through_and_non_files_are_never_renamed_over(tmp_path: Path) -> None:
    target = tmp_path / "target.bin"
    target.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(target.name)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    for name in ("fifo", "folder"):
        with pytest.raises(NotAFileError, match="not a regular file"):
            atomic_write_bytes(tmp_path / name, b"x")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "folder", "link.bin", "target.bin"]


def test_replace_false_claims_the_name_exclusively(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    with pytest.raises(FileExistsError), atomic_output(target, replace=False) as tmp:
        tmp.write_bytes(b"mine")
        target.write_bytes(b"another run's")  # made while this one was writing
    assert target.read_bytes() == b"another run's"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    fresh = tmp_path / "fresh.png"
    atomic_write_bytes(fresh, b"mine", replace=False)
    assert fresh.read_bytes() == b"mine" and fresh.stat().st_nlink == 1


def test_only_unheld_old_temporaries_of_fkps_pattern_are_cleared(tmp_path: Path) -> None:
    old = (1_000_000_000, 1_000_000_000)
    stale = tmp_path / ".a.png.abcd_123.tmp.png"
    user = tmp_path / ".a.png.tmp.notes"  # not the pattern
    for path in (stale, user):
        path.write_bytes(b"x")
        os.utime(path, old)
    with atomic_output(tmp_path / "b.png") as live:  # a writer at work: its temporary is held
        live.write_bytes(b"half")
        os.utime(live, old)
        assert clear_stale_temporaries(tmp_path) == [stale]
        assert live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [user.name, "b.png"]


def test_the_temporary_of_a_writer_killed_with_sigkill_is_removed_later(tmp_path: Path) -> None:
    script = (
        "import os, sys, signal\n"
        "from fkp.utils import atomic_output\n"
        "with atomic_output(sys.argv[1]) as tmp:\n"
        "    tmp.write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "out.png")], env=env, check=False)
    assert done.returncode == -signal.SIGKILL
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(".out.png.") and left.name.endswith(".tmp.png")
    os.utime(left, (1_000_000_000, 1_000_000_000))
    assert clear_stale_temporaries(tmp_path) == [left] and list(tmp_path.iterdir()) == []
