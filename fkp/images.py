"""The package's one image decoder: any photo into (H, W, 3) uint8 RGB, or (H, W, 4) uint8 RGBA.

:func:`load_image` reads JPEG, PNG, WebP, BMP, TIFF and whatever else Pillow or OpenCV decodes, by
content rather than by extension; it turns the EXIF orientation into real pixels, so that a phone
photo taken upright comes out upright. :func:`load_image_rgba` is the same decoder keeping the alpha
channel (overlay art, :func:`fkp.art.load_art`). :func:`to_rgb8` and :func:`to_rgba8` do the same
conversion for arrays already in memory (grayscale, RGBA, 16-bit, float). Every reader of images in
the package (data sets, overlays, the data set check, the command line) comes through here, so the
rules are one set: 16-bit values are scaled by 255/65535 and rounded; grayscale becomes three equal
channels; alpha is dropped for RGB (colour values kept as they are) and 255 (opaque) where a file has
none for RGBA. A file that cannot be decoded raises :class:`ImageReadError`, whose message names the
file; the command line prints it as one line.

Memory is bounded: the width and height are read from the file's header and an image of more than
:data:`MAX_IMAGE_PIXELS` pixels is refused *before* it is decoded, whatever the decoder. Decoding takes
about 14 bytes per pixel at its peak (14 MB per megapixel; the whole image is decoded, at full
size, whatever the caller needs). Inputs that are not regular files (devices such as ``/dev/zero``,
FIFOs, sockets) are refused without being opened.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fkp.utils import describe_file_type

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".dib", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pnm"}
)
"""File name endings that folder inputs (``fkp detect FOLDER``) treat as images; a single file is read
whatever its name."""


MAX_IMAGE_PIXELS = 100_000_000
"""The largest image fkp decodes: 100 megapixels (e.g. 12000 x 8000; a 108-megapixel phone photo is
refused). Memory while decoding: about 14 bytes per pixel at its peak (14 MB per megapixel: Pillow's
own buffer, the array, and the RGB copy returned), so about 1.4 GB for a 100-megapixel image; the
decoded result itself is 3 bytes per pixel (0.3 GB)."""


class ImageReadError(ValueError):
    """A file that is missing or cannot be decoded as an image; the message starts with its path."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale any image dtype to uint8 (see :func:`to_rgb8` for the rules); the shape is kept."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):  # 16-bit PNG/TIFF, Pillow's 32-bit "I" mode
        return np.round(np.clip(array, 0, 65535) * (255.0 / 65535.0)).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        return np.round(np.clip(np.nan_to_num(array), 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ValueError(f"unsupported image dtype {array.dtype}")


def _channels_last(array: np.ndarray) -> np.ndarray:
    """An image array as (H, W, C) with C in 1..4; raises ValueError for any other shape."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image of shape (H, W), (H, W, 1..4); got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"empty image of shape {array.shape}")
    return array


def to_rgb8(array: np.ndarray) -> np.ndarray:
    """Convert an image array of any common kind to (H, W, 3) uint8 RGB.

    Accepted layouts: (H, W) or (H, W, 1) grayscale, (H, W, 2) grayscale + alpha, (H, W, 3) RGB,
    (H, W, 4) RGBA; channels are taken to be in RGB(A) order. Alpha is dropped (the colour
    values are kept as they are, as ``cv2.imread`` does). Value ranges by dtype: uint8 as is;
    uint16 and other integers as 16-bit (0-65535, scaled by 255/65535); bool as 0/255; floats as
    0.0-1.0 (clipped).

    Args:
        array: the image, see above.

    Returns:
        (H, W, 3) uint8 RGB; a new array (never a view of ``array``).

    Raises:
        ValueError: the shape or dtype is not an image's.
    """
    array = _channels_last(array)
    rgb8 = _to_uint8(array[:, :, :3] if array.shape[2] >= 3 else array[:, :, :1])  # drop alpha
    if rgb8.shape[2] == 1:
        rgb8 = np.repeat(rgb8, 3, axis=2)
    return np.array(rgb8, dtype=np.uint8, order="C", copy=True)


def to_rgba8(array: np.ndarray) -> np.ndarray:
    """Convert an image array of any common kind to (H, W, 4) uint8 RGBA, keeping its alpha.

    The layouts and value ranges are those of :func:`to_rgb8`; an image without alpha
    ((H, W), (H, W, 1), (H, W, 3)) becomes fully opaque (alpha 255).

    Args:
        array: the image.

    Returns:
        (H, W, 4) uint8 RGBA; a new array.

    Raises:
        ValueError: the shape or dtype is not an image's.
    """
    array = _channels_last(array)
    has_alpha = array.shape[2] in (2, 4)
    alpha = _to_uint8(array[:, :, -1:]) if has_alpha else np.full(array.shape[:2] + (1,), 255, np.uint8)
    return np.ascontiguousarray(np.concatenate([to_rgb8(array), alpha], axis=2))


def _pil_to_array(image: Image.Image) -> np.ndarray:
    """A decoded Pillow image, whatever its mode, as an (H, W[, C]) array in RGB(A) channel order
    that :func:`to_rgb8` / :func:`to_rgba8` accept (alpha kept where the image has it)."""
    if image.mode in ("RGB", "L", "RGBA", "LA", "1"):
        return np.asarray(image)
    if image.mode.startswith("I") or image.mode == "F":  # 16/32-bit integer or float grey
        array = np.asarray(image)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("="))
        if image.mode == "F":  # float grey has no fixed range: stretch what is there
            low, high = float(array.min()), float(array.max())
            array = (array - low) / (high - low) if high > low else np.zeros_like(array)
        return array
    if image.mode in ("P", "PA") and ("transparency" in image.info or image.mode == "PA"):
        return np.asarray(image.convert("RGBA"))
    return np.asarray(image.convert("RGB"))  # P, CMYK, YCbCr, LAB, HSV, ...


def check_image_size(path: str | os.PathLike[str], width: int, height: int) -> None:
    """Refuse an image larger than :data:`MAX_IMAGE_PIXELS` (or with no pixels) before decoding it.

    Raises:
        ImageReadError: naming the size and the limit.
    """
    if width < 1 or height < 1:
        raise ImageReadError(path, f"no pixels ({width} x {height})")
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageReadError(
            path, f"{width} x {height} pixels is more than fkp reads ({MAX_IMAGE_PIXELS // 1_000_000} megapixels)"
        )


def radiance_size(header: bytes) -> tuple[int, int] | None:
    """Width and height from the header of a Radiance HDR file (``#?RADIANCE`` or ``#?RGBE``), read
    without decoding it; None if ``header`` is not one (or its resolution line is not in it)."""
    if not header.startswith((b"#?RADIANCE", b"#?RGBE")):
        return None
    _, blank, rest = header.partition(b"\n\n")  # the header ends with an empty line
    fields = rest.split(b"\n", 1)[0].split() if blank else []
    if len(fields) != 4 or fields[0] not in (b"-Y", b"+Y") or fields[2] not in (b"+X", b"-X"):
        return None  # (rotated layouts "X then Y" are legal but rare: refused)
    if not (fields[1].isdigit() and fields[3].isdigit()):
        return None
    return int(fields[3]), int(fields[1])


def _read_with_opencv(path: Path) -> np.ndarray | None:
    """Decode with OpenCV the one format Pillow does not know and whose header gives its size
    (Radiance HDR), as an array in RGB(A) order; None for any other content."""
    data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: works with any file name encoding
    size = radiance_size(data[:65536].tobytes())
    if size is None:
        return None
    check_image_size(path, *size)
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if decoded is None:
        return None
    if decoded.ndim == 3 and decoded.shape[2] == 3:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    elif decoded.ndim == 3 and decoded.shape[2] == 4:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA)
    return decoded


def _decode(path: str | os.PathLike[str], exif_transpose: bool) -> np.ndarray:
    """Decode an image file to an array in RGB(A) order, any dtype (see :func:`load_image`)."""
    path = Path(path)
    try:
        if not path.exists():
            raise ImageReadError(path, "no such file")
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise ImageReadError(path, "is a folder, not an image file")
        if not stat.S_ISREG(mode):  # never opened: a device or FIFO could block or never end
            raise ImageReadError(path, f"not a regular file ({describe_file_type(mode)})")
        if path.stat().st_size == 0:
            raise ImageReadError(path, "empty file")
    except OSError as error:  # a name or path too long, a folder that cannot be entered
        raise ImageReadError(path, error.strerror or str(error)) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # big photos are welcome
            with Image.open(path) as image:
                check_image_size(path, *image.size)  # from the header; nothing decoded yet
                image.load()
                return _pil_to_array(ImageOps.exif_transpose(image) if exif_transpose else image)
    except UnidentifiedImageError:
        pass  # not a format Pillow knows: let OpenCV try
    except ImageReadError:
        raise
    except Image.DecompressionBombError:
        limit = MAX_IMAGE_PIXELS // 1_000_000  # Pillow's own bomb check fires first beyond twice its limit
        raise ImageReadError(path, f"too many pixels: more than fkp reads ({limit} megapixels)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:  # truncated or corrupt data
        reason = str(error).split("\n")[0] or type(error).__name__
        raise ImageReadError(path, f"corrupt or truncated image ({reason})") from None
    try:
        array = _read_with_opencv(path)
    except (OSError, cv2.error, ValueError) as error:
        raise ImageReadError(path, f"not a readable image ({error})") from None
    if array is None:
        raise ImageReadError(path, "not an image file that fkp can read")
    return array


def _convert(
    path: str | os.PathLike[str], array: np.ndarray, convert: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``convert(array)``, its ValueError (an odd layout) reported as the file's ImageReadError."""
    try:
        return convert(array)
    except ValueError as error:
        raise ImageReadError(path, f"not a readable image ({error})") from None


def load_image(path: str | os.PathLike[str], exif_transpose: bool = True) -> np.ndarray:
    """Read an image file into (H, W, 3) uint8 RGB, upright as its EXIF orientation says.

    The file is recognised by its content, not its name. Pillow decodes it first (it applies the
    EXIF orientation and reports truncated files); Radiance HDR files, which Pillow does not know,
    go to OpenCV. Images over :data:`MAX_IMAGE_PIXELS` are refused from their header, undecoded.
    Grayscale, alpha and 16-bit files follow the rules of :func:`to_rgb8`.

    Args:
        path: the image file.
        exif_transpose: apply the EXIF orientation; ``False`` returns the pixels as stored, which
            is what annotations made on the stored pixels (e.g. 300-W's .pts files) refer to.

    Returns:
        (H, W, 3) uint8 RGB pixels; for an EXIF-rotated photo, the rotated (as-displayed) pixels
        unless ``exif_transpose`` is ``False``.

    Raises:
        ImageReadError: the file is missing, a folder, empty, truncated, too large or not an image,
            or its name cannot be opened (too long, ...).
    """
    return _convert(path, _decode(path, exif_transpose), to_rgb8)


def load_image_rgba(path: str | os.PathLike[str], exif_transpose: bool = True) -> np.ndarray:
    """Read an image file into (H, W, 4) uint8 RGBA: :func:`load_image` keeping the alpha channel.

    A file without alpha comes out fully opaque (alpha 255); the rules are those of :func:`to_rgba8`.

    Args:
        path: the image file (an RGBA PNG for transparency).
        exif_transpose: apply the EXIF orientation, as in :func:`load_image`.

    Returns:
        (H, W, 4) uint8 RGBA pixels, upright.

    Raises:
        ImageReadError: as :func:`load_image`.
    """
    return _convert(path, _decode(path, exif_transpose), to_rgba8)


def as_rgb8(image: np.ndarray | str | os.PathLike[str]) -> np.ndarray:
    """An image path or array of any common layout as (H, W, 3) uint8 RGB (no copy when it already is)."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    image = np.asarray(image)
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    return to_rgb8(image)


def to_gray8(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 grey of an image of any layout (RGB taken as RGB)."""
    image = np.asarray(image)
    if image.dtype == np.uint8 and image.ndim == 2:
        return image
    if not (image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        image = to_rgb8(image)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
