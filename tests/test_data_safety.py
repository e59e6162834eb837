"""fkp.download: pixel checksums name any changed pixel, stray files are not images, the data
folder gets the usual mode, a failed download removes the folders it made, extraction is bounded."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import fkp.data_check
import fkp.download
from fkp.data_check import ImageError, pixel_digest, shipped_pixel_checksums, verify
from fkp.download import BadArchiveError, DownloadError, Source, download


@pytest.fixture
def placed(make_archive, tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """A downloaded fake data set: (folder, CSV checksums, pixel checksums of its labelled images)."""
    archive = make_archive()
    dest = tmp_path / "work" / "data"
    download(dest, [Source(archive.url, archive.size)], archive.checksums, progress=False)
    pixels = {
        f"{split}/{p.name}": pixel_digest(p)
        for split in ("training", "test")
        for p in (dest / split).iterdir()
        if not p.name.startswith("Unlabelled")
    }
    return dest, archive.checksums, pixels


def test_one_changed_pixel_is_named(placed) -> None:
    dest, checksums, pixels = placed
    assert verify(dest, checksums, progress=False, pixel_checksums=pixels).counts == {"training": 3, "test": 2}
    image = cv2.imread(str(dest / "test" / "Di_Ek_3.jpg"), cv2.IMREAD_UNCHANGED)
    image[5, 4, 0] ^= 1
    cv2.imwrite(str(dest / "test" / "Di_Ek_3.png"), image)  # still lossless, one bit changed
    os.replace(dest / "test" / "Di_Ek_3.png", dest / "test" / "Di_Ek_3.jpg")
    with pytest.raises(ImageError, match="test/Di_Ek_3.jpg has other pixels than upstream's"):
        verify(dest, checksums, progress=False, pixel_checksums=pixels)


def test_a_lossless_copy_in_another_format_matches(placed) -> None:
    dest, checksums, pixels = placed
    rgba = cv2.imread(str(dest / "training" / "Bo_Chen_10.jpg"), cv2.IMREAD_UNCHANGED)
    _, webp = cv2.imencode(".webp", rgba, [cv2.IMWRITE_WEBP_QUALITY, 101])  # quality above 100: lossless
    (dest / "training" / "Bo_Chen_10.jpg").write_bytes(webp.tobytes())
    assert verify(dest, checksums, progress=False, pixel_checksums=pixels).counts["training"] == 3


def test_stray_files_are_not_unlabelled_images(placed) -> None:
    dest, checksums, pixels = placed
    (dest / "test" / "notes.txt").write_text("mine")
    (dest / "test" / ".DS_Store").write_bytes(b"\0")
    (dest / "training" / "Thumbs.db").write_bytes(b"\0")
    report = verify(dest, checksums, progress=False, pixel_checksums=pixels)
    assert report.unlabelled == {"training": 0, "test": 1}


def test_the_data_folder_follows_the_umask(make_archive, tmp_path: Path) -> None:
    archive = make_archive()
    previous = os.umask(0o027)
    try:
        dest = tmp_path / "data"
        download(dest, [Source(archive.url, archive.size)], archive.checksums, progress=False)
    finally:
        os.umask(previous)
    assert dest.stat().st_mode & 0o777 == 0o750
    assert (dest / "training").stat().st_mode & 0o777 == 0o750


def test_a_failed_download_removes_the_folders_it_made(dead_url: str, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    with pytest.raises(DownloadError):
        download(tmp_path / "work" / "new" / "deeper" / "data", [dead_url], progress=False)
    assert list((tmp_path / "work").iterdir()) == []


def test_extraction_stops_at_the_known_data_size(make_archive, tmp_path: Path, monkeypatch) -> None:
    archive = make_archive()
    monkeypatch.setattr(fkp.download, "MAX_EXTRACTED_BYTES", 2000)  # the fake archive unpacks to more
    (tmp_path / "work").mkdir()
    with pytest.raises(BadArchiveError, match="unpacks to more than"):
        download(tmp_path / "work" / "data", [Source(archive.url, archive.size)], archive.checksums, progress=False)
    assert list((tmp_path / "work").iterdir()) == []


def test_shipped_pixel_checksums_fit_the_shared_copy(data_dir: Path, tmp_path: Path) -> None:
    shipped = shipped_pixel_checksums()
    assert len(shipped) == 3462 + 770
    names = sorted(shipped)[::700]  # a few of each split
    assert all(pixel_digest(data_dir / name) == shipped[name] for name in names)
    changed = tmp_path / "changed.png"
    rgb = cv2.imread(str(data_dir / names[0]))
    rgb[rgb.shape[0] // 2, rgb.shape[1] // 2] ^= np.uint8(1)
    cv2.imwrite(str(changed), rgb)
    assert pixel_digest(changed) != shipped[names[0]]


def test_verify_names_every_damaged_image_and_a_file_is_not_a_folder(placed) -> None:
    dest, checksums, pixels = placed
    (dest / "training" / "Bo_Chen_10.jpg").write_bytes(b"not an image")
    (dest / "test" / "Di_Ek_3.jpg").unlink()
    with pytest.raises(ImageError) as raised:
        verify(dest, checksums, progress=False, pixel_checksums=pixels)
    message = str(raised.value)
    assert "2 damaged images" in message and "\n" not in message
    assert "training/Bo_Chen_10.jpg cannot be decoded" in message and "test/Di_Ek_3.jpg is missing" in message
    with pytest.raises(fkp.data_check.MissingDataError, match="is a file, not a folder"):
        verify(dest / "training_frames_keypoints.csv", checksums, progress=False)
