"""fkp.utils: the one atomic writer (files and folders) leaves either the old file or the new one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fkp.utils import NAME_MAX, atomic_output, atomic_write_bytes, staged_folder, stale_temporaries


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
