"""fkp.images: every image layout in, (H, W, 3) uint8 RGB out; unreadable files named in the error."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fkp.images import ImageReadError, load_image, load_image_rgba, to_rgb8, to_rgba8


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)


def _assert_rgb8(array: np.ndarray, height: int, width: int) -> None:
    assert array.shape == (height, width, 3)
    assert array.dtype == np.uint8
    assert array.flags.c_contiguous


# --- to_rgb8 on arrays -------------------------------------------------------------------------


def test_to_rgb8_grayscale_becomes_three_equal_channels(rgb: np.ndarray) -> None:
    gray = rgb[:, :, 0]
    for array in (gray, gray[:, :, None]):
        out = to_rgb8(array)
        _assert_rgb8(out, 24, 32)
        assert (out == gray[:, :, None]).all()


def test_to_rgb8_drops_alpha(rgb: np.ndarray) -> None:
    alpha = np.full(rgb.shape[:2] + (1,), 7, np.uint8)
    assert np.array_equal(to_rgb8(np.concatenate([rgb, alpha], axis=2)), rgb)
    gray_alpha = np.concatenate([rgb[:, :, :1], alpha], axis=2)
    assert np.array_equal(to_rgb8(gray_alpha), np.repeat(rgb[:, :, :1], 3, axis=2))


def test_to_rgb8_scales_16_bit_and_float() -> None:
    values16 = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    assert to_rgb8(values16)[0, :, 0].tolist() == [0, 1, 128, 255]
    floats = np.array([[-1.0, 0.0, 0.5, 1.0, 2.0]], dtype=np.float32)
    assert to_rgb8(floats)[0, :, 0].tolist() == [0, 0, 128, 255, 255]
    assert to_rgb8(np.array([[False, True]]))[0, :, 0].tolist() == [0, 255]


def test_to_rgb8_returns_a_copy(rgb: np.ndarray) -> None:
    out = to_rgb8(rgb)
    out[...] = 0
    assert rgb.any()


@pytest.mark.parametrize("shape", [(4,), (4, 4, 5), (0, 4, 3), (2, 2, 2, 3)])
def test_to_rgb8_rejects_non_images(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        to_rgb8(np.zeros(shape, np.uint8))


# --- load_image on files -----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".webp", ".bmp", ".tiff"])
def test_lossless_formats_round_trip(tmp_path, rgb: np.ndarray, suffix: str) -> None:
    path = tmp_path / f"image{suffix}"
    Image.fromarray(rgb).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    out = load_image(path)
    _assert_rgb8(out, 24, 32)
    assert np.array_equal(out, rgb)


def test_jpeg_and_name_without_matching_extension(tmp_path) -> None:
    smooth = np.zeros((24, 32, 3), np.uint8)
    smooth[:, :, 0] = np.linspace(0, 255, 32, dtype=np.uint8)  # red ramp left to right
    smooth[:, :, 2] = 200
    path = tmp_path / "photo.png"  # a JPEG under a PNG name: read by content
    Image.fromarray(smooth).save(path, format="JPEG", quality=95)
    out = load_image(path)
    _assert_rgb8(out, 24, 32)
    assert np.abs(out.astype(int) - smooth).mean() < 5


def test_grayscale_rgba_and_palette_files(tmp_path, rgb: np.ndarray) -> None:
    gray = rgb[:, :, 1]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    assert np.array_equal(load_image(tmp_path / "gray.png"), np.repeat(gray[:, :, None], 3, axis=2))
    rgba = np.concatenate([rgb, np.full((24, 32, 1), 255, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert np.array_equal(load_image(tmp_path / "rgba.png"), rgb)
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.gif")
    _assert_rgb8(load_image(tmp_path / "palette.gif"), 24, 32)


def test_16_bit_files(tmp_path) -> None:
    ramp = np.linspace(0, 65535, 24 * 32).reshape(24, 32).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "gray16.png"), ramp)
    out = load_image(tmp_path / "gray16.png")
    _assert_rgb8(out, 24, 32)
    assert out[0, 0].tolist() == [0, 0, 0] and out[-1, -1].tolist() == [255, 255, 255]
    assert np.abs(out[:, :, 0].astype(int) - ramp / 257.0).max() <= 1
    colour = np.dstack([ramp, ramp // 2, ramp // 4])  # B, G, R as OpenCV writes them
    cv2.imwrite(str(tmp_path / "colour16.png"), colour)
    out = load_image(tmp_path / "colour16.png")
    _assert_rgb8(out, 24, 32)
    assert out[-1, -1].tolist() == pytest.approx([63, 127, 255], abs=1)  # R, G, B


def test_exif_orientation_is_applied(tmp_path) -> None:
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(image).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "rotated.jpg")
    assert out.shape == (40, 20, 3)  # displayed upright: portrait
    assert out[:15].mean() > 200 and out[25:].mean() < 50  # the white half is now on top
    stored = load_image(tmp_path / "rotated.jpg", exif_transpose=False)
    assert stored.shape == (20, 40, 3)  # the pixels as stored, as annotations made on them expect
    assert stored[:, :15].mean() > 200 and stored[:, 25:].mean() < 50


def test_truncated_jpeg_raises_naming_the_file(tmp_path, rgb: np.ndarray) -> None:
    big = cv2.resize(rgb, (320, 240))
    path = tmp_path / "truncated.jpg"
    Image.fromarray(big).save(path, quality=95)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ImageReadError, match="truncated.jpg") as error:
        load_image(path)
    assert isinstance(error.value, ValueError)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("text.jpg", b"this is not a picture\n", "not an image"),
        ("empty.png", b"", "empty"),
    ],
)
def test_non_image_files_raise(tmp_path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as error:
        load_image(path)
    assert error.value.path == path
    assert str(error.value).startswith(str(path))


def test_missing_file_and_folder_raise(tmp_path) -> None:
    with pytest.raises(ImageReadError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageReadError, match="folder"):
        load_image(tmp_path)


# --- one decoder: RGBA, and every reader of the package agrees -----------------------------------


def test_to_rgba8_keeps_alpha_or_makes_opaque(rgb: np.ndarray) -> None:
    alpha = np.arange(24 * 32, dtype=np.uint8).reshape(24, 32, 1)
    rgba = np.concatenate([rgb, alpha], axis=2)
    assert np.array_equal(to_rgba8(rgba), rgba)
    opaque = to_rgba8(rgb[:, :, 0])
    assert opaque.shape == (24, 32, 4) and (opaque[:, :, 3] == 255).all()
    assert np.array_equal(opaque[:, :, 2], rgb[:, :, 0])
    alpha16 = np.dstack([np.full((2, 2), 65535, np.uint16), np.full((2, 2), 32896, np.uint16)])
    assert to_rgba8(alpha16)[0, 0].tolist() == [255, 255, 255, 128]  # grey + alpha, 16-bit scaled


def test_load_image_rgba_files(tmp_path, rgb: np.ndarray) -> None:
    rgba = np.concatenate([rgb, np.arange(24 * 32, dtype=np.uint8).reshape(24, 32, 1)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert np.array_equal(load_image_rgba(tmp_path / "rgba.png"), rgba)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    out = load_image_rgba(tmp_path / "rgb.png")
    assert np.array_equal(out[:, :, :3], rgb) and (out[:, :, 3] == 255).all()
    with pytest.raises(ImageReadError, match="missing.png"):
        load_image_rgba(tmp_path / "missing.png")


def _unified_rule_files(folder: Path) -> dict[str, Path]:
    """One small file for each rule: 16-bit, EXIF orientation, alpha, grayscale."""
    ramp = np.linspace(0, 65535, 12 * 16).reshape(12, 16).astype(np.uint16)
    cv2.imwrite(str(folder / "gray16.png"), ramp)
    upright = np.zeros((10, 20, 3), np.uint8)
    upright[:, :10] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(upright).save(folder / "rotated.jpg", exif=exif, quality=95)
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[2:6, 2:6] = (200, 30, 10, 128)
    Image.fromarray(rgba).save(folder / "alpha.png")
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(folder / "gray.png")
    return {path.stem: path for path in sorted(folder.iterdir())}


def test_data_art_and_verify_decode_alike(tmp_path: Path) -> None:
    from fkp.art import load_art
    from fkp.data import read_image
    from fkp.data_check import ImageError, _check_image, pixel_digest

    for name, path in _unified_rule_files(tmp_path).items():
        rgb = load_image(path)
        assert np.array_equal(read_image(path), rgb), name
        assert np.array_equal(load_art(path, [[0, 0], [1, 1]], [36, 45]).rgba[:, :, :3], rgb), name
        _check_image(path, name, pixel_digest(path))  # verify decodes the same pixels
    with pytest.raises(ImageError, match="other pixels"):
        _check_image(tmp_path / "gray.png", "gray", pixel_digest(tmp_path / "gray16.png"))
    assert read_image(tmp_path / "rotated.jpg").shape == (20, 10, 3)  # EXIF: upright
    assert load_art(tmp_path / "alpha.png", [[0, 0], [1, 1]], [36, 45]).rgba[3, 3].tolist() == [200, 30, 10, 128]


def test_unreadable_files_give_one_line_errors_everywhere(tmp_path: Path) -> None:
    from fkp.art import load_art
    from fkp.data import read_image

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for read in (read_image, load_image, load_image_rgba, lambda p: load_art(p, [[0, 0], [1, 1]], [36, 45])):
        with pytest.raises(ImageReadError) as error:
            read(bad)
        assert str(error.value).startswith(str(bad)) and "\n" not in str(error.value)


def test_devices_and_fifos_are_not_regular_files(tmp_path) -> None:
    os.mkfifo(tmp_path / "fifo")
    for path, kind in (("/dev/zero", "a character device"), ("/dev/urandom", "a character device")):
        with pytest.raises(ImageReadError, match=re.escape(f"not a regular file ({kind})")):
            load_image(path)
    with pytest.raises(ImageReadError, match=re.escape("not a regular file (a FIFO")):
        load_image(tmp_path / "fifo")  # refused without opening: no hang waiting for a writer
