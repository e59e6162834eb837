"""Property-based tests (hypothesis): image loading and the box/crop geometry, on random input.

Any array of an image's shape and any file, corrupt or not, gives an (H, W, 3) uint8 array or one
:class:`fkp.images.ImageReadError` / ``ValueError``; never another exception. Crop geometry keeps
points on their pixels for any face box, crop size, angle and flip.
"""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from fkp import geometry
from fkp.images import MAX_IMAGE_PIXELS, ImageReadError, load_image, to_rgb8

FAST = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

DTYPES = st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64, np.bool_])
SHAPES = st.tuples(st.integers(1, 24), st.integers(1, 24), st.sampled_from([None, 1, 2, 3, 4]))


@st.composite
def image_arrays(draw) -> np.ndarray:
    height, width, channels = draw(SHAPES)
    shape = (height, width) if channels is None else (height, width, channels)
    return draw(hnp.arrays(draw(DTYPES), shape))


@FAST
@given(image_arrays())
def test_to_rgb8_gives_rgb8_of_the_same_size(array: np.ndarray) -> None:
    rgb = to_rgb8(array)
    assert rgb.shape == (*array.shape[:2], 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous


@FAST
@given(hnp.arrays(np.uint8, st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 6))))
def test_to_rgb8_refuses_what_is_not_an_image_with_a_value_error(array: np.ndarray) -> None:
    try:
        rgb = to_rgb8(array)
    except ValueError:
        return
    assert rgb.shape == (*array.shape[:2], 3)


@FAST
@given(
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 20), st.integers(1, 20), st.sampled_from([1, 3, 4]))),
    st.sampled_from(["PNG", "BMP", "TIFF", "WEBP", "PPM"]),
)
def test_saved_images_load_back_with_their_size(tmp_path, array: np.ndarray, kind: str) -> None:
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[array.shape[2]]
    if kind in ("BMP", "PPM") and mode == "RGBA":
        mode, array = "RGB", array[:, :, :3]
    path = tmp_path / "image.bin"  # a name that says nothing: the content decides
    Image.fromarray(array[:, :, 0] if mode == "L" else array, mode).save(path, kind, **({"lossless": True} if kind == "WEBP" else {}))
    rgb = load_image(path)
    assert rgb.shape == (*array.shape[:2], 3) and rgb.dtype == np.uint8
    if kind != "WEBP" or mode != "RGBA":  # lossless WebP may change the colour under alpha 0
        assert np.array_equal(rgb, to_rgb8(array))


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (2, 2)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


@FAST
@given(st.binary(min_size=1, max_size=400), st.sampled_from(["garbage", "png", "jpeg", "hdr"]), st.integers(0, 400))
def test_corrupt_bytes_give_an_array_or_one_clean_error(tmp_path, noise: bytes, start: str, cut: int) -> None:
    heads = {
        "garbage": b"",
        "png": _png(8, 6)[:cut],
        "jpeg": cv2.imencode(".jpg", np.full((8, 8, 3), 90, np.uint8))[1].tobytes()[:cut],
        "hdr": b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 4 +X 5\n",
    }
    path = tmp_path / "photo.jpg"
    path.write_bytes(heads[start] + noise)
    try:
        rgb = load_image(path)
    except ImageReadError as error:
        assert str(error).startswith(str(path)) and "\n" not in str(error)
        return
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8


@pytest.mark.parametrize(
    "payload",
    [
        _png(13000, 13000),  # under Pillow's own limit, 169 megapixels
        _png(1 << 20, 1 << 20),
        b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 20000 +X 20000\n" + bytes(1000),  # OpenCV's format
    ],
    ids=["png-13000", "png-huge", "hdr-20000"],
)
def test_images_over_the_pixel_limit_are_refused_before_decoding(tmp_path, payload: bytes) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(payload)
    with pytest.raises(ImageReadError, match=f"more than fkp reads \\({MAX_IMAGE_PIXELS // 1_000_000} megapixels"):
        load_image(path)


def test_an_image_at_the_limit_is_not_refused_for_its_size(tmp_path) -> None:
    width = 10_000
    path = tmp_path / "limit.png"
    path.write_bytes(_png(width, MAX_IMAGE_PIXELS // width))  # header only: decoding fails afterwards
    with pytest.raises(ImageReadError, match="corrupt or truncated"):
        load_image(path)


BOXES = st.tuples(
    st.floats(-50, 300), st.floats(-50, 300), st.floats(1, 400), st.floats(1, 400)
).map(lambda b: np.array(b, np.float32))


@FAST
@given(BOXES, st.integers(8, 96), st.floats(1.0, 2.0), st.floats(-45, 45), st.booleans(),
       hnp.arrays(np.float64, (5, 2), elements=st.floats(0, 1)))
def test_crop_geometry_round_trips_points(box, size, scale, angle, flip, unit) -> None:
    centre, side = geometry.square_box(box, scale)
    affine = geometry.crop_affine(centre, side, size, angle, flip)
    points = box[:2] + unit * box[2:]  # points inside the box, image pixels
    normalized = geometry.to_normalized(geometry.apply_affine(points, affine), size)
    back = geometry.crop_to_image(normalized[None], affine[None], size)[0]
    assert np.allclose(back, points, atol=1e-2 * max(1.0, side / size))
    assert np.all(np.abs(normalized) <= 1.0 / scale * np.sqrt(2) + 1e-3)  # a box point stays in its crop


@FAST
@given(st.integers(1, 40), st.integers(1, 40), BOXES, st.integers(4, 64))
def test_warp_crop_has_the_crop_size_for_any_image_and_box(height, width, box, size) -> None:
    gray = np.random.default_rng(height * width).integers(0, 256, (height, width), dtype=np.uint8)
    crop = geometry.warp_crop(gray, geometry.box_affine(box, size, 1.25), size)
    assert crop.shape == (size, size) and crop.dtype == np.uint8
    assert gray.min() <= crop.min() and crop.max() <= gray.max()  # border pixels repeat, nothing invented
