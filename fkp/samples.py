"""Sample photos, so that demos need no download.

:func:`astronaut` and :func:`coffee` come from scikit-image's bundled data and :func:`grace_hopper`
from matplotlib's sample data (both in ``fkp[course]``); fkp ships no photo of its own. On a core
install without them, asking for a sample raises :class:`SampleUnavailableError` with the one line
that says what to install.
:func:`group_photo` composes several faces from them into one picture, the same every time.
"""

from __future__ import annotations

import cv2
import numpy as np

from fkp.images import load_image


class SampleUnavailableError(ImportError):
    """The package that carries a sample photo is not installed."""


def _skimage_data():
    try:
        from skimage import data
    except ImportError as error:
        raise SampleUnavailableError(
            "the sample photos come with scikit-image: pip install scikit-image (or 'fkp[course]'), or give a photo"
        ) from error
    return data


def astronaut() -> np.ndarray:
    """Eileen Collins, NASA portrait (public domain), from ``skimage.data``: one frontal face.

    Returns:
        (512, 512, 3) uint8 RGB.

    Raises:
        SampleUnavailableError: scikit-image is not installed.
    """
    return np.ascontiguousarray(_skimage_data().astronaut())


def grace_hopper() -> np.ndarray:
    """Rear Admiral Grace Hopper, US Navy portrait (public domain), from matplotlib's sample data.

    Returns:
        (600, 512, 3) uint8 RGB.
    """
    from matplotlib import cbook

    return load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def coffee() -> np.ndarray:
    """A cup of coffee, from ``skimage.data``: a photo with no face in it.

    Returns:
        (400, 600, 3) uint8 RGB.
    """
    return np.ascontiguousarray(_skimage_data().coffee())


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    width = round(image.shape[1] * height / image.shape[0])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def group_photo() -> np.ndarray:
    """Three faces side by side on a grey backdrop: the astronaut, Grace Hopper, and a smaller,
    mirrored astronaut, so that a multi-face photo is at hand without any download.

    Returns:
        (400, 1021, 3) uint8 RGB; deterministic (the same pixels on every call).
    """
    height, gap = 400, 20
    left = _fit_height(astronaut(), height)  # (400, 400)
    middle = _fit_height(grace_hopper(), height)  # (400, 341)
    right = _fit_height(astronaut()[:, ::-1], 240)  # (240, 240), mirrored
    width = left.shape[1] + middle.shape[1] + right.shape[1] + 2 * gap
    canvas = np.full((height, width, 3), 128, dtype=np.uint8)
    x = 0
    for part, top in ((left, 0), (middle, 0), (right, (height - right.shape[0]) // 2)):
        canvas[top : top + part.shape[0], x : x + part.shape[1]] = part
        x += part.shape[1] + gap
    return canvas
