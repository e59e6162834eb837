"""Sample photos, so that demos need no download.

:func:`astronaut` ships with fkp (``fkp/sample_data/astronaut.webp``, lossless: the same pixels as
scikit-image's ``skimage.data.astronaut()``, a NASA portrait in the public domain), so that
``fkp detect`` with no photo works on the core install. :func:`coffee` comes from scikit-image's
bundled data and :func:`grace_hopper` from matplotlib's sample data (both in ``fkp[course]``).
:func:`group_photo` composes several faces from them into one picture, the same every time.
"""

from __future__ import annotations

from importlib import resources

import cv2
import numpy as np

from fkp.images import load_image

ASTRONAUT_FILE = "astronaut.webp"


def astronaut() -> np.ndarray:
    """Eileen Collins, NASA portrait (public domain), as in ``skimage.data``: one frontal face.

    Returns:
        (512, 512, 3) uint8 RGB.
    """
    return load_image(str(resources.files("fkp") / "sample_data" / ASTRONAUT_FILE))


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
    from skimage import data

    return np.ascontiguousarray(data.coffee())


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
