"""``fkp data download`` / ``verify`` run in-process: exit codes, one-line errors, data folder lookup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import fkp.data_check
import fkp.download
from fkp.cli import main
from fkp.utils import DATA_DIR_ENV, resolve_data_dir


@pytest.fixture
def fake_upstream(make_archive, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the default source and checksums at a fake archive; returns tmp_path/fake, not created yet."""
    archive = make_archive()
    monkeypatch.setattr(fkp.data_check, "CSV_SHA256", archive.checksums)
    monkeypatch.setattr(fkp.download, "PRIMARY_URL", archive.url)
    monkeypatch.setattr(fkp.download, "PRIMARY_SIZE", archive.size)
    return tmp_path / "fake"


def test_download_prints_where(fake_upstream: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_data = fake_upstream
    assert main(["data", "download", "--dir", str(fake_data)]) == 0
    out = capsys.readouterr().out
    assert f"data set ready in {fake_data.absolute()}" in out
    assert "training: 3 images OK, test: 2 images OK" in out
    assert main(["data", "download", "--dir", str(fake_data)]) == 0  # already there: verified, kept
    assert "already holds the data set" in capsys.readouterr().out


def test_default_urls_unreachable(
    dead_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(fkp.download, "PRIMARY_URL", dead_url)
    monkeypatch.setattr(fkp.download, "FALLBACK_URL", dead_url.replace(".zip", "-fallback.zip"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["data", "download", "--dir", str(empty)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fkp data: error: ") and "-fallback.zip" in err
    assert list(tmp_path.iterdir()) == [empty] and list(empty.iterdir()) == []


def test_verify_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "verify", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no training_frames_keypoints.csv" in err


def test_data_folder_lookup_order(
    fake_upstream: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_data = fake_upstream
    assert main(["data", "download", "--dir", str(fake_data)]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert resolve_data_dir() == Path("data")
    assert main(["data", "verify"]) == 1  # ./data does not exist
    (tmp_path / "data").symlink_to(fake_data)
    assert main(["data", "verify"]) == 0
    monkeypatch.setenv(DATA_DIR_ENV, str(empty))  # the variable beats ./data
    assert resolve_data_dir() == empty
    assert main(["data", "verify"]) == 1
    assert main(["data", "verify", "--dir", str(fake_data)]) == 0  # --dir beats the variable
    assert resolve_data_dir(fake_data) == fake_data
    capsys.readouterr()


def test_verify_shared_copy(capsys: pytest.CaptureFixture[str]) -> None:
    """The real data set (FKP_DATA_DIR; always set in CI): 3462 training and 770 test images."""
    root = os.environ.get(DATA_DIR_ENV)
    if not root:
        pytest.skip(f"set {DATA_DIR_ENV} to a copy of the data set (fkp data download) to run this test")
    assert Path(root).is_dir(), f"{DATA_DIR_ENV}={root} does not exist"
    assert main(["data", "verify"]) == 0
    assert capsys.readouterr().out.strip() == "training: 3462 images OK, test: 770 images OK"
