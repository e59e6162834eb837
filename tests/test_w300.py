"""``fkp data prepare-300w`` on a fake 300-W tree the tests draw: bright dots at the labelled points.

Every fake face is a lattice of 68 points (17 columns, 4 rows), each drawn as a small Gaussian dot
on a black photo, with a .pts file written as 300-W does (1-indexed). After the command, each CSV
point must sit on the centre of its dot in the saved crop; the crop offsets and sizes below are
worked out by hand from the data set README's steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fkp.w300
from fkp.cli import main
from fkp.data import subset_of
from fkp.data_check import verify
from fkp.keypoints_csv import read_keypoints_csv
from fkp.landmarks import NUM_KEYPOINTS
from fkp.w300 import SourceError, read_pts


def _lattice(x0: float, y0: float, step: float) -> np.ndarray:
    """(68, 2) 0-indexed points: 17 columns, 4 rows, ``step`` pixels apart, the first at (x0, y0)."""
    index = np.arange(NUM_KEYPOINTS)
    return np.stack([x0 + (index % 17) * step, y0 + (index // 17) * step], axis=1).astype(np.float64)


def _draw(size: tuple[int, int], faces: list[np.ndarray], sigma: float) -> np.ndarray:
    """A black (H, W, 3) uint8 photo of ``size`` (W, H) with a white Gaussian dot at every 0-indexed point."""
    width, height = size
    canvas = np.zeros((height, width))
    reach = int(np.ceil(4 * sigma))
    for x, y in np.concatenate(faces):
        cols = np.arange(max(int(x) - reach, 0), min(int(x) + reach + 1, width))
        rows = np.arange(max(int(y) - reach, 0), min(int(y) + reach + 1, height))
        blob = np.exp(-((cols[None, :] - x) ** 2 + (rows[:, None] - y) ** 2) / (2 * sigma**2))
        canvas[rows[:, None], cols[None, :]] += blob
    return np.repeat(np.clip(canvas * 255, 0, 255).round().astype(np.uint8)[:, :, None], 3, axis=2)


def _write_pts(path: Path, points0: np.ndarray, header: bool) -> None:
    """Write 0-indexed points as a 300-W .pts file: 1-indexed, with or without the version/{...} frame."""
    lines = [f"{x + 1:.6f} {y + 1:.6f}" for x, y in points0]
    if header:
        lines = ["version: 1", f"n_points:  {NUM_KEYPOINTS}", "{", *lines, "}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# Fake faces: 0-indexed points, and where their crop lands by the README's steps 2-3 (worked by hand).
BIG = _lattice(340.3, 300.2, 20.0)  # box 320 x 60, centre (500.3, 330.2): S = 640, left 180, top 10
SMALL = _lattice(80.25, 150.75, 8.0)  # box 128 x 24, centre (144.25, 162.75): S = 256, left 16, top 35
AT_EDGE = _lattice(-0.4, 60.5, 8.0)  # first column half a pixel from the photo's left edge: kept
RIGHT = _lattice(250.5, 100.5, 8.0)  # a second face in the same photo: left 187, top -15 -> 0
CORNER = _lattice(10.5, 40.5, 8.0)  # larger than its 150 x 100 photo: the crop is the whole photo
OUTSIDE = CORNER.copy()
OUTSIDE[-1] = (-3.0, 50.0)  # a point left of the photo: the face is dropped


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A fake unpacked 300-W folder: every part but HELEN testset, .png and .jpg, with and without headers."""
    src = tmp_path / "300w"

    def photo(path: Path, size: tuple[int, int], faces: list[np.ndarray], sigma: float = 1.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(_draw(size, faces, sigma))
        image.save(path, quality=100) if path.suffix == ".jpg" else image.save(path)

    photo(src / "lfpw/trainset/image_0001.png", (840, 660), [BIG], sigma=2.5)
    _write_pts(src / "lfpw/trainset/image_0001.pts", BIG, header=True)
    photo(src / "lfpw/trainset/image_0003.png", (700, 660), [BIG], sigma=2.5)  # crop cut at x = 700
    _write_pts(src / "lfpw/trainset/image_0003.pts", BIG, header=False)
    photo(src / "lfpw/testset/image_0002.png", (300, 240), [SMALL])
    _write_pts(src / "lfpw/testset/image_0002.pts", SMALL, header=True)
    for face, points in (("1", AT_EDGE), ("2", RIGHT)):  # HELEN: one copy of the photo per face
        photo(src / f"helen/trainset/100_{face}.jpg", (400, 220), [AT_EDGE, RIGHT])
        _write_pts(src / f"helen/trainset/100_{face}.pts", points, header=False)
    photo(src / "afw/200_1.jpg", (150, 100), [CORNER])
    _write_pts(src / "afw/200_1.pts", CORNER, header=False)
    photo(src / "afw/300_1.jpg", (150, 100), [CORNER])
    _write_pts(src / "afw/300_1.pts", OUTSIDE, header=False)
    photo(src / "ibug/image_003_1.jpg", (150, 100), [CORNER])
    _write_pts(src / "ibug/image_003_1.pts", CORNER, header=True)
    return src


def _table(root: Path, split: str) -> dict[str, np.ndarray]:
    names, keypoints = read_keypoints_csv(root / f"{split}_frames_keypoints.csv")
    return dict(zip(names, keypoints.astype(np.float64)))


def _dot_centres(image: np.ndarray, points: np.ndarray, radius: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Brightness-weighted centre of the dot around each point whose window fits in the image.

    Returns:
        (M, 2) centres x, y and the (M,) indices of the points measured.
    """
    gray = image.astype(np.float64).mean(axis=2)
    height, width = gray.shape
    centres, measured = [], []
    for index, (x, y) in enumerate(points):
        cx, cy = int(np.rint(x)), int(np.rint(y))
        if cx - radius < 0 or cy - radius < 0 or cx + radius >= width or cy + radius >= height:
            continue
        window = gray[cy - radius : cy + radius + 1, cx - radius : cx + radius + 1]
        offsets = np.arange(-radius, radius + 1)
        total = window.sum()
        centres.append((cx + (window.sum(axis=0) @ offsets) / total, cy + (window.sum(axis=1) @ offsets) / total))
        measured.append(index)
    return np.array(centres), np.array(measured)


def test_prepare_300w_crops_names_splits_and_points(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "out" / "faces-300w"
    assert main(["data", "prepare-300w", str(source), "--dir", str(dest)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        f"300-W ready in {dest}: training: 5 faces (lfpw_train 2, helen_train 2, afw 1); "
        "test: 2 faces (lfpw_test 1, helen_test 0, ibug 1); dropped: 1"
    )
    assert sorted(p.name for p in dest.parent.iterdir()) == ["faces-300w"]  # no temporary folder left
    assert verify(dest, checksums={}, progress=False).counts == {"training": 5, "test": 2}

    training, test = _table(dest, "training"), _table(dest, "test")
    assert list(training) == sorted(
        [
            "afw_200_1.jpg",
            "helen_train_100_1.jpg",
            "helen_train_100_2.jpg",
            "lfpw_train_image_0001_1.jpg",
            "lfpw_train_image_0003_1.jpg",
        ]
    )  # LFPW stems get their face number; the dropped afw_300_1 is nowhere
    assert list(test) == ["ibug_image_003_1.jpg", "lfpw_test_image_0002_1.jpg"]
    assert sorted(p.name for p in (dest / "training").iterdir()) == list(training)
    assert sorted(p.name for p in (dest / "test").iterdir()) == list(test)
    assert {subset_of(name) for name in training} == {"lfpw", "helen", "afw"}
    assert {subset_of(name) for name in test} == {"lfpw", "ibug"}

    header, first = (dest / "test_frames_keypoints.csv").read_text().splitlines()[:2]
    assert header == "," + ",".join(str(i) for i in range(2 * NUM_KEYPOINTS))
    assert first.startswith("ibug_image_003_1.jpg,10.5,40.5,18.5,40.5,")  # 3 decimals, shortest form
    # Not resized: the points only move by the crop's top-left corner.
    assert test["lfpw_test_image_0002_1.jpg"] == pytest.approx(SMALL - [16, 35], abs=1e-3)
    assert training["helen_train_100_1.jpg"][0] == pytest.approx([-0.4, 60.5])  # kept: within half a pixel
    assert training["helen_train_100_2.jpg"] == pytest.approx(RIGHT - [187, 0], abs=1e-3)

    # Resized 640 -> 256 (scale 0.4) with the pixel-centre convention x' = (x - left + 0.5) * 0.4 - 0.5,
    # not (x - left) * 0.4, which would put every point (1 - 0.4) / 2 = 0.3 px off its dot.
    big = training["lfpw_train_image_0001_1.jpg"]
    assert big == pytest.approx((BIG - [180, 10] + 0.5) * 0.4 - 0.5, abs=1e-3)
    assert big[0] == pytest.approx([63.82, 115.78])

    sizes = {}
    for split, table in (("training", training), ("test", test)):
        for name, points in table.items():
            image = np.asarray(Image.open(dest / split / name))
            sizes[name] = image.shape[1::-1]
            assert max(sizes[name]) <= 256
            assert (points >= -0.5).all() and (points <= np.array(sizes[name]) - 0.5).all()
            centres, measured = _dot_centres(image, points)
            assert len(measured) >= NUM_KEYPOINTS // 2, name
            assert np.abs(centres - points[measured]).max() < 0.1, name  # every point sits on its dot
    assert sizes == {
        "lfpw_train_image_0001_1.jpg": (256, 256),  # 640 x 640, downscaled
        "lfpw_train_image_0003_1.jpg": (208, 256),  # 520 x 640 (cut by the photo's right edge), downscaled
        "lfpw_test_image_0002_1.jpg": (256, 205),  # 256 wide: at the limit, kept as is
        "helen_train_100_1.jpg": (192, 201),  # cut at the left and top edges, never padded
        "helen_train_100_2.jpg": (213, 220),  # cut at the top and right edges
        "afw_200_1.jpg": (150, 100),  # the whole photo, never upscaled
        "ibug_image_003_1.jpg": (150, 100),
    }


def test_prepare_300w_replaces_only_with_force(source: Path, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "faces-300w"
    assert main(["data", "prepare-300w", str(source), "--dir", str(dest)]) == 0
    (source / "ibug" / "image_003_1.pts").unlink()
    assert main(["data", "prepare-300w", str(source), "--dir", str(dest)]) == 1
    assert "already holds a data set: --force replaces it" in capsys.readouterr().err
    assert (dest / "test" / "ibug_image_003_1.jpg").is_file()
    assert main(["data", "prepare-300w", str(source), "--dir", str(dest), "--force"]) == 0
    assert list(_table(dest, "test")) == ["lfpw_test_image_0002_1.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["300w", "faces-300w"]  # old copy removed


def test_prepare_300w_default_folder(source: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FKP_300W_DIR", raising=False)
    assert main(["data", "prepare-300w", str(source)]) == 0
    assert (tmp_path / "data" / "faces-300w" / "training_frames_keypoints.csv").is_file()
    monkeypatch.setenv("FKP_300W_DIR", str(tmp_path / "elsewhere"))
    assert main(["data", "prepare-300w", str(source)]) == 0
    assert (tmp_path / "elsewhere" / "test_frames_keypoints.csv").is_file()
    capsys.readouterr()


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fkp data: error: ")
    return err


def test_prepare_300w_errors_are_one_line_and_leave_nothing(source: Path, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "out" / "faces-300w"
    argv = ["data", "prepare-300w", str(source), "--dir", str(dest)]
    assert "is not a folder" in _error(["data", "prepare-300w", str(tmp_path / "nope"), "--dir", str(dest)], capsys)
    empty = tmp_path / "empty"
    (empty / "afw").mkdir(parents=True)
    assert "holds no .pts file" in _error(["data", "prepare-300w", str(empty), "--dir", str(dest)], capsys)

    _write_pts(source / "ibug" / "image_009_1.pts", CORNER, header=False)  # no photo beside it
    assert "image_009_1.pts: no photo next to it" in _error(argv, capsys)
    (source / "ibug" / "image_009_1.pts").unlink()

    short = source / "ibug" / "image_003_1.pts"  # the last face: all others are cropped by then
    short.write_text("\n".join(short.read_text().splitlines()[:-3] + ["}"]))
    assert f"{short}: 66 points, expected 68" in _error(argv, capsys)
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # nothing half-written is left


def test_prepare_300w_interrupted_leaves_nothing(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    crop_face, calls = fkp.w300.crop_face, []

    def interrupted(*args: object) -> object:
        calls.append(1)
        if len(calls) == 4:  # three faces are saved by then
            raise KeyboardInterrupt
        return crop_face(*args)

    monkeypatch.setattr(fkp.w300, "crop_face", interrupted)
    dest = tmp_path / "out" / "faces-300w"
    assert main(["data", "prepare-300w", str(source), "--dir", str(dest)]) == 130
    assert capsys.readouterr().err == "fkp data: interrupted\n"
    assert len(calls) == 4 and list(dest.parent.iterdir()) == []


def test_read_pts_frames_and_errors(tmp_path: Path) -> None:
    points = _lattice(3.25, 4.5, 2.0)
    for header in (True, False):
        _write_pts(tmp_path / "face.pts", points, header)
        assert read_pts(tmp_path / "face.pts") == pytest.approx(points + 1)  # as written: 1-indexed
    (tmp_path / "bad.pts").write_text("version: 1\nn_points: 39\n{\n1 2\n}\n")
    with pytest.raises(SourceError, match="bad.pts: n_points is 39, expected 68"):
        read_pts(tmp_path / "bad.pts")
    (tmp_path / "bad.pts").write_text("1 2\n3 four\n")
    with pytest.raises(SourceError, match="bad.pts line 2: '3 four' is not an 'x y' point"):
        read_pts(tmp_path / "bad.pts")
