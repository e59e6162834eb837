"""fkp.annotate: drawings on image arrays follow the one outline table of fkp.landmarks."""

from __future__ import annotations

import numpy as np

from fkp.annotate import draw_keypoints
from fkp.landmarks import NOSE_TIP, NUM_KEYPOINTS, OUTLINES, REGIONS, mean_shape_diagram


def _face(size: int = 400) -> np.ndarray:
    return mean_shape_diagram() * (size - 40) + 20  # (68, 2) pixels in a size x size image


def _midpoint_drawn(drawn: np.ndarray, points: np.ndarray, a: int, b: int) -> bool:
    x, y = np.round((points[a] + points[b]) / 2).astype(int)
    return bool(drawn[y - 1 : y + 2, x - 1 : x + 2].any())


def test_lines_follow_the_outlines_and_nothing_else() -> None:
    points = _face()
    drawn = draw_keypoints(np.zeros((400, 400, 3), np.uint8), points, radius=1.0)
    for outline in OUTLINES:  # every outline segment is drawn ...
        start, stop = outline.points.start, outline.points.stop
        assert _midpoint_drawn(drawn, points, start, start + 1), outline.name
        if outline.closed:
            assert _midpoint_drawn(drawn, points, stop - 1, start), outline.name
    # ... and not the strays: nose tip to nostril, outer lip to inner lip, brow to brow
    assert not _midpoint_drawn(drawn, points, NOSE_TIP, NOSE_TIP + 1)
    mouth = REGIONS["mouth"]
    assert not _midpoint_drawn(drawn, points, mouth.start + 11, mouth.start + 12)
    assert not _midpoint_drawn(drawn, points, REGIONS["right_brow"].stop - 1, REGIONS["left_brow"].start)


def test_one_colour_for_everything_and_no_lines() -> None:
    points = _face()
    drawn = draw_keypoints(np.zeros((400, 400, 3), np.uint8), points, color=(0, 0, 255), lines=False)
    assert set(map(tuple, drawn.reshape(-1, 3)[drawn.reshape(-1, 3).any(axis=1)])) <= {
        (0, 0, value) for value in range(256)
    }
    assert not _midpoint_drawn(drawn, points, 0, 1)
    assert drawn.shape == (400, 400, 3) and NUM_KEYPOINTS == len(points)
