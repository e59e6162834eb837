"""fkp.fetch: one URL to a file, its size checked, one-line errors, and no folder left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from fkp.fetch import FetchError, FetchSizeError, fetch, removing_new_folders


def test_fetch_writes_the_bytes_and_checks_the_size(http_dir: tuple[Path, str], tmp_path: Path) -> None:
    folder, url = http_dir
    (folder / "blob.bin").write_bytes(b"0123456789")
    fetch(f"{url}/blob.bin", tmp_path / "out.bin", size=10)
    assert (tmp_path / "out.bin").read_bytes() == b"0123456789"
    with pytest.raises(FetchSizeError, match="has 10 bytes, expected 11"):
        fetch(f"{url}/blob.bin", tmp_path / "other.bin", size=11)


def test_fetch_failures_are_one_line_fetch_errors(http_dir: tuple[Path, str], dead_url: str, tmp_path: Path) -> None:
    _, url = http_dir
    with pytest.raises(FetchError, match="404") as missing:
        fetch(f"{url}/missing.bin", tmp_path / "out.bin")
    assert not isinstance(missing.value, FetchSizeError) and "\n" not in str(missing.value)
    with pytest.raises(FetchError, match=dead_url.split("//")[1].split("/")[0]):
        fetch(dead_url, tmp_path / "out.bin", timeout=5)


def test_removing_new_folders_removes_only_what_the_block_made(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    deep = tmp_path / "old" / "new" / "deeper"
    with pytest.raises(KeyboardInterrupt), removing_new_folders(deep):
        deep.mkdir(parents=True)
        raise KeyboardInterrupt
    assert (tmp_path / "old").is_dir() and not (tmp_path / "old" / "new").exists()
    with removing_new_folders(deep):  # success keeps them
        deep.mkdir(parents=True)
    assert deep.is_dir()


def test_removing_new_folders_keeps_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    deep = tmp_path / "new" / "deeper"
    with pytest.raises(OSError), removing_new_folders(deep):
        deep.mkdir(parents=True)
        (tmp_path / "new" / "kept.txt").write_text("x")
        raise OSError("disk full")
    assert not deep.exists() and (tmp_path / "new" / "kept.txt").is_file()
