"""fkp.download on a tiny fake archive served on 127.0.0.1: atomic placement; failures leave nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

import fkp.download
from fkp.download import (
    BadArchiveError,
    BadCSVError,
    ChecksumMismatchError,
    DestinationError,
    DownloadError,
    ImageError,
    MissingDataError,
    SizeMismatchError,
    Source,
    download,
    verify,
)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The destination's parent folder, empty: whatever a run leaves behind shows up here."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def test_download_verifies_and_places(make_archive, work: Path) -> None:
    archive = make_archive()
    dest = work / "data"
    report = download(dest, [Source(archive.url, archive.size)], archive.checksums, progress=False)
    assert report.root == dest and report.source == archive.url
    assert report.counts == archive.counts == {"training": 3, "test": 2}
    assert report.unlabelled == {"training": 0, "test": 1}  # upstream's extra test images are kept
    assert sorted(p.name for p in work.iterdir()) == ["data"]  # no temp file or folder left
    assert sorted(p.name for p in dest.iterdir()) == [
        "test", "test_frames_keypoints.csv", "training", "training_frames_keypoints.csv"
    ]
    assert (dest / "test" / "Unlabelled_9.jpg").is_file()
    assert verify(dest, archive.checksums, progress=False).counts == archive.counts
    assert str(report) == "training: 3 images OK, test: 2 images OK (+1 unlabelled test images)"


def test_download_into_empty_folder_and_file_url(make_archive, work: Path) -> None:
    archive = make_archive()
    served = work.parent / "served" / "data.zip"
    dest = work / "data"
    dest.mkdir()
    report = download(dest, [served.as_uri()], archive.checksums, progress=False)
    assert report.counts == archive.counts and sorted(p.name for p in work.iterdir()) == ["data"]


def test_prefix_folder_inside_archive(make_archive, work: Path) -> None:
    archive = make_archive(prefix="P1_Facial_Keypoints-master/data/")
    dest = work / "data"
    download(dest, [archive.url], archive.checksums, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == [
        "test", "test_frames_keypoints.csv", "training", "training_frames_keypoints.csv"
    ]


def test_wrong_checksum_leaves_nothing(make_archive, work: Path) -> None:
    archive = make_archive()
    wrong = dict(archive.checksums, **{"test_frames_keypoints.csv": "0" * 64})
    with pytest.raises(ChecksumMismatchError, match="test_frames_keypoints.csv"):
        download(work / "data", [archive.url], wrong, progress=False)
    assert list(work.iterdir()) == []


def test_wrong_size_leaves_nothing(make_archive, work: Path) -> None:
    archive = make_archive()
    with pytest.raises(SizeMismatchError, match="expected"):
        download(work / "data", [Source(archive.url, archive.size + 1)], archive.checksums, progress=False)
    assert list(work.iterdir()) == []


def test_undecodable_image_is_named(make_archive, work: Path) -> None:
    archive = make_archive(bad_image="training/Bo_Chen_10.jpg")
    with pytest.raises(ImageError, match="training/Bo_Chen_10.jpg cannot be decoded"):
        download(work / "data", [archive.url], archive.checksums, progress=False)
    assert list(work.iterdir()) == []


def test_not_a_zip_and_no_csv(http_dir, make_archive, work: Path) -> None:
    served, base = http_dir
    (served / "page.html").write_text("<html>sorry</html>")
    with pytest.raises(BadArchiveError, match="not a zip"):
        download(work / "data", [f"{base}/page.html"], progress=False)
    with pytest.raises(DownloadError, match="404"):
        download(work / "data", [f"{base}/absent.zip"], progress=False)
    assert list(work.iterdir()) == []


def test_unreachable_then_fallback(make_archive, dead_url: str, work: Path) -> None:
    archive = make_archive()
    report = download(work / "data", [dead_url, archive.url], archive.checksums, progress=False)
    assert report.source == archive.url


def test_all_unreachable_names_every_url(dead_url: str, work: Path) -> None:
    other = dead_url.replace(".zip", "-mirror.zip")
    with pytest.raises(DownloadError) as caught:
        download(work / "data", [dead_url, other], progress=False)
    assert dead_url in str(caught.value) and other in str(caught.value)
    assert list(work.iterdir()) == []


def test_interrupt_leaves_nothing(make_archive, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_archive()
    extract = fkp.download._extract

    def extract_then_interrupt(*args: object) -> None:
        extract(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(fkp.download, "_extract", extract_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        download(work / "data", [archive.url], archive.checksums, progress=False)
    assert list(work.iterdir()) == []


def test_existing_data_set_is_kept_or_replaced(make_archive, dead_url: str, work: Path) -> None:
    archive = make_archive()
    dest = work / "data"
    download(dest, [archive.url], archive.checksums, progress=False)
    kept = download(dest, [dead_url], archive.checksums, progress=False)  # no network needed
    assert kept.source is None and kept.counts == archive.counts
    (dest / "training" / "Ann_Lee_00.jpg").unlink()
    with pytest.raises(ImageError, match="force"):
        download(dest, [dead_url], archive.checksums, progress=False)
    with pytest.raises(DownloadError):  # a failed forced download keeps the old copy
        download(dest, [dead_url], archive.checksums, progress=False, force=True)
    assert (dest / "training_frames_keypoints.csv").is_file()
    replaced = download(dest, [archive.url], archive.checksums, progress=False, force=True)
    assert replaced.source == archive.url and (dest / "training" / "Ann_Lee_00.jpg").is_file()
    assert sorted(p.name for p in work.iterdir()) == ["data"]


def test_foreign_folder_is_refused_untouched(make_archive, work: Path) -> None:
    archive = make_archive()
    dest = work / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    for force in (False, True):
        with pytest.raises(DestinationError, match="not empty"):
            download(dest, [archive.url], archive.checksums, progress=False, force=force)
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
    assert [p.name for p in work.iterdir()] == ["mine"]


def test_verify_errors(make_archive, work: Path) -> None:
    archive = make_archive()
    dest = work / "data"
    download(dest, [archive.url], archive.checksums, progress=False)
    with pytest.raises(MissingDataError, match="holds no training_frames_keypoints.csv"):
        verify(work, progress=False)
    with pytest.raises(MissingDataError, match="does not exist"):
        verify(work / "absent", progress=False)
    with pytest.raises(ChecksumMismatchError):
        verify(dest, progress=False)  # upstream's checksums by default
    (dest / "test" / "Di_Ek_3.jpg").unlink()
    with pytest.raises(ImageError, match="test/Di_Ek_3.jpg is missing"):
        verify(dest, {}, progress=False)
    with (dest / "training_frames_keypoints.csv").open("a") as table:
        table.write("Short_1.jpg,1,2\n")
    with pytest.raises(BadCSVError, match="line 5"):
        verify(dest, {}, progress=False)


def test_default_sources_follow_constants(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fkp.download.default_sources()[0] == Source(fkp.download.PRIMARY_URL, fkp.download.PRIMARY_SIZE)
    assert fkp.download.PRIMARY_SIZE == 338_613_624
    monkeypatch.setattr(fkp.download, "FALLBACK_URL", "http://127.0.0.1:9/x.zip")
    assert fkp.download.default_sources()[1] == Source("http://127.0.0.1:9/x.zip", None)
