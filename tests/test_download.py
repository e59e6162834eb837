"""fkp.download on a tiny fake archive served on 127.0.0.1: atomic placement; failures leave nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

import fkp.download
from fkp.data_check import BadCSVError, ChecksumMismatchError, ImageError, MissingDataError, verify
from fkp.download import BadArchiveError, DestinationError, DownloadError, SizeMismatchError, Source, download


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
        "test",
        "test_frames_keypoints.csv",
        "training",
        "training_frames_keypoints.csv",
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
        "test",
        "test_frames_keypoints.csv",
        "training",
        "training_frames_keypoints.csv",
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


# --- YuNet's file on first use (fkp.detectors.make_detector), from a local server ----------------


@pytest.fixture
def first_use(monkeypatch, tmp_path: Path) -> Path:
    """No YuNet file anywhere, downloads allowed: returns the (empty) user cache folder of models."""
    from fkp.detectors.yunet import MODELS_DIR_ENV

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(MODELS_DIR_ENV, str(empty))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("FKP_OFFLINE", raising=False)
    return tmp_path / "xdg" / "fkp" / "models"


def _serve_yunet(http_dir, monkeypatch, payload: bytes) -> str:
    import fkp.detectors.yunet as yunet

    folder, base = http_dir
    (folder / yunet.YUNET_FILE).write_bytes(payload)
    url = f"{base}/{yunet.YUNET_FILE}"
    monkeypatch.setattr(yunet, "YUNET_URL", url)
    return url


def test_auto_downloads_yunet_on_first_use(first_use: Path, http_dir, models_dir: Path, monkeypatch) -> None:
    from fkp.detectors import make_detector
    from fkp.detectors.yunet import YUNET_FILE, YuNetFaceDetector

    url = _serve_yunet(http_dir, monkeypatch, (models_dir / YUNET_FILE).read_bytes())
    lines: list[str] = []
    detector = make_detector("auto", notify=lines.append)
    assert isinstance(detector, YuNetFaceDetector) and detector.path == first_use / YUNET_FILE
    assert len(lines) == 1 and "downloading the YuNet face detector" in lines[0] and url in lines[0]
    assert sorted(p.name for p in first_use.iterdir()) == [YUNET_FILE]  # no temporary file left
    (http_dir[0] / YUNET_FILE).unlink()  # from now on the cache's copy is used, without the server
    assert isinstance(make_detector("yunet", notify=lines.append), YuNetFaceDetector) and len(lines) == 1


def test_fkp_detect_downloads_yunet_with_one_notice(
    first_use: Path, http_dir, models_dir: Path, monkeypatch, capfd, mean_shape_model
) -> None:
    import fkp.predict
    from fkp.cli import main
    from fkp.detectors.yunet import YUNET_FILE

    _serve_yunet(http_dir, monkeypatch, (models_dir / YUNET_FILE).read_bytes())
    monkeypatch.setattr(fkp.predict, "load_model", lambda path=None, **_: mean_shape_model())
    monkeypatch.chdir(first_use.parents[2])
    assert main(["detect"]) == 0
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("fkp detect: downloading the YuNet face detector")
    assert (first_use / YUNET_FILE).is_file()


def test_offline_first_use_falls_back_to_haar_fast(first_use: Path, dead_url: str, monkeypatch) -> None:
    import time

    import fkp.detectors.yunet as yunet
    from fkp.detectors import make_detector
    from fkp.detectors.haar import HaarFaceDetector

    monkeypatch.setattr(yunet, "YUNET_URL", dead_url)
    lines: list[str] = []
    start = time.perf_counter()
    assert isinstance(make_detector("auto", notify=lines.append), HaarFaceDetector)
    assert time.perf_counter() - start < yunet.DOWNLOAD_TIMEOUT_S
    assert len(lines) == 2 and "downloading" in lines[0]
    assert lines[1].startswith("using the Haar face detector") and "fkp models download" in lines[1]
    assert not first_use.parents[2].joinpath("xdg").exists()  # nothing left behind, not even the folders
    with pytest.raises(yunet.ModelFileError, match="not downloaded.*fkp models download"):
        make_detector("yunet", notify=lines.append)


def test_fkp_offline_never_downloads(first_use: Path, http_dir, models_dir: Path, monkeypatch) -> None:
    from fkp.detectors import make_detector
    from fkp.detectors.haar import HaarFaceDetector
    from fkp.detectors.yunet import YUNET_FILE

    _serve_yunet(http_dir, monkeypatch, (models_dir / YUNET_FILE).read_bytes())
    monkeypatch.setenv("FKP_OFFLINE", "1")
    lines: list[str] = []
    assert isinstance(make_detector("auto", notify=lines.append), HaarFaceDetector)
    assert len(lines) == 1 and lines[0].startswith("using the Haar face detector") and "not found" in lines[0]
    assert not first_use.exists()


def test_a_wrong_first_use_download_is_not_kept(first_use: Path, http_dir, monkeypatch) -> None:
    from fkp.detectors import make_detector
    from fkp.detectors.haar import HaarFaceDetector

    _serve_yunet(http_dir, monkeypatch, b"<html>not the model</html>")
    lines: list[str] = []
    assert isinstance(make_detector("auto", notify=lines.append), HaarFaceDetector)
    assert "wrong sha256" in lines[1] and not first_use.exists()
