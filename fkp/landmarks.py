"""The 68-point facial landmark layout (iBUG 300-W / Multi-PIE), named once for the whole package.

Points are 0-indexed. "Right" and "left" are the *subject's* sides: the subject's right eye
(points 36-41) appears on the left of a photo. Every other module indexes regions by name
through :data:`REGIONS` and never writes the point count or a region's indices as literals.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np

NUM_KEYPOINTS: Final[int] = 68

REGIONS: Final[dict[str, slice]] = {
    "jaw": slice(0, 17),
    "right_brow": slice(17, 22),
    "left_brow": slice(22, 27),
    "nose": slice(27, 36),
    "right_eye": slice(36, 42),
    "left_eye": slice(42, 48),
    "mouth": slice(48, 68),
}
"""Region name -> slice of point indices."""

RIGHT_EYE_OUTER: Final[int] = 36
"""Outer corner of the subject's right eye; with :data:`LEFT_EYE_OUTER` it defines the NME normaliser."""
LEFT_EYE_OUTER: Final[int] = 45
NOSE_TIP: Final[int] = 30


class Outline(NamedTuple):
    """One line drawn through the points: a run of consecutive points inside one region."""

    name: str  # e.g. "outer_lip"
    region: str  # the key of REGIONS it lies in, which gives its colour
    points: slice  # consecutive point indices, within REGIONS[region]
    closed: bool  # drawn as a loop (the last point joined back to the first)


OUTLINES: Final[tuple[Outline, ...]] = (
    Outline("jaw", "jaw", slice(0, 17), False),
    Outline("right_brow", "right_brow", slice(17, 22), False),
    Outline("left_brow", "left_brow", slice(22, 27), False),
    Outline("nose_bridge", "nose", slice(27, 31), False),  # ends at the nose tip, 30
    Outline("nostrils", "nose", slice(31, 36), False),  # 31-35 under the tip, not joined to it
    Outline("right_eye", "right_eye", slice(36, 42), True),
    Outline("left_eye", "left_eye", slice(42, 48), True),
    Outline("outer_lip", "mouth", slice(48, 60), True),
    Outline("inner_lip", "mouth", slice(60, 68), True),
)
"""The lines every drawing of the package (:mod:`fkp.annotate` on images, :mod:`fkp.viz` in figures)
draws through the points; no line joins two regions, the nose tip to a nostril, or the outer lip
to the inner one."""

Colour = tuple[int, int, int]

REGION_COLOURS: Final[dict[str, Colour]] = {
    "jaw": (31, 119, 180),  # matplotlib's tab10 blue
    "right_brow": (255, 127, 14),  # orange
    "left_brow": (188, 189, 34),  # olive
    "nose": (44, 160, 44),  # green
    "right_eye": (214, 39, 40),  # red
    "left_eye": (148, 103, 189),  # purple
    "mouth": (227, 119, 194),  # pink
}
"""Region name -> RGB colour (0-255) of its points and outlines, in every drawing and figure; the
subject's right and left brows and eyes differ, so a mirrored prediction shows."""


def _mirror_permutation() -> np.ndarray:
    """Build the permutation that maps point i of a face to point MIRROR[i] of its mirror image."""
    pairs: list[tuple[int, int]] = []
    pairs += [(i, 16 - i) for i in range(8)]  # jaw: 0<->16 ... 7<->9, 8 is the chin
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows: 17<->26 ... 21<->22
    pairs += [(31, 35), (32, 34)]  # nostrils; the bridge 27-30 and 33 stay
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lip; 51, 57 stay
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lip; 62, 66 stay
    permutation = np.arange(NUM_KEYPOINTS)
    for a, b in pairs:
        permutation[a], permutation[b] = b, a
    return permutation


MIRROR: Final[np.ndarray] = _mirror_permutation()
"""(68,) int array: after a horizontal flip, ``keypoints[MIRROR]`` restores the point order."""
MIRROR.flags.writeable = False


def region_of(index: int) -> str:
    """Return the name of the region that holds point ``index`` (0-67)."""
    for name, indices in REGIONS.items():
        if indices.start <= index < indices.stop:
            return name
    raise IndexError(f"point index {index} is outside 0..{NUM_KEYPOINTS - 1}")


def region_centre(keypoints: np.ndarray, region: str) -> np.ndarray:
    """Mean (x, y) of one region.

    Args:
        keypoints: (..., 68, 2) points, x then y, in any units.
        region: a key of :data:`REGIONS`.

    Returns:
        (..., 2) centre of that region, same units.
    """
    return np.asarray(keypoints)[..., REGIONS[region], :].mean(axis=-2)


def mean_shape_diagram() -> np.ndarray:
    """A schematic frontal 68-point face, for the numbered diagram when no data is at hand.

    Returns:
        (68, 2) float32 points, x then y, in a unit box (x and y in [0, 1], y down).
    """
    t = np.linspace(np.pi, 0, 17)
    jaw = np.stack([0.5 + 0.45 * np.cos(t), 0.45 + 0.5 * np.sin(t)], axis=1)
    brow_x = np.linspace(0.15, 0.42, 5)
    right_brow = np.stack([brow_x, 0.28 - 0.05 * np.sin(np.linspace(0, np.pi, 5))], axis=1)
    left_brow = right_brow.copy()
    left_brow[:, 0] = 1.0 - right_brow[::-1, 0]
    left_brow[:, 1] = right_brow[::-1, 1]
    bridge = np.stack([np.full(4, 0.5), np.linspace(0.35, 0.58, 4)], axis=1)
    nostrils = np.stack([np.linspace(0.40, 0.60, 5), 0.64 + 0.02 * np.cos(np.linspace(-1.2, 1.2, 5))], axis=1)
    angles = np.deg2rad([180, 120, 60, 0, 300, 240])
    right_eye = np.stack([0.30 + 0.08 * np.cos(angles), 0.40 - 0.035 * np.sin(angles)], axis=1)
    left_eye = np.stack([1.0 - right_eye[[3, 2, 1, 0, 5, 4], 0], right_eye[[3, 2, 1, 0, 5, 4], 1]], axis=1)
    outer = np.deg2rad(np.linspace(180, -180, 13)[:-1])
    outer_lip = np.stack([0.5 + 0.16 * np.cos(outer), 0.80 - 0.06 * np.sin(outer)], axis=1)
    inner = np.deg2rad(np.linspace(180, -180, 9)[:-1])
    inner_lip = np.stack([0.5 + 0.10 * np.cos(inner), 0.80 - 0.02 * np.sin(inner)], axis=1)
    points = np.concatenate([jaw, right_brow, left_brow, bridge, nostrils, right_eye, left_eye, outer_lip, inner_lip])
    return points.astype(np.float32)
