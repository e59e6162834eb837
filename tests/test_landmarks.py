"""The 68-point layout: regions, the mirror permutation, region lookup, the schematic diagram."""

from __future__ import annotations

import numpy as np
import pytest

from fkp.landmarks import (
    LEFT_EYE_OUTER,
    MIRROR,
    NOSE_TIP,
    NUM_KEYPOINTS,
    OUTLINES,
    REGION_COLOURS,
    REGIONS,
    RIGHT_EYE_OUTER,
    mean_shape_diagram,
    region_centre,
    region_of,
)


def test_regions_cover_every_point_exactly_once() -> None:
    covered = np.concatenate([np.arange(NUM_KEYPOINTS)[indices] for indices in REGIONS.values()])
    assert sorted(covered.tolist()) == list(range(NUM_KEYPOINTS))


def test_mirror_is_an_involution_permutation() -> None:
    assert sorted(MIRROR.tolist()) == list(range(NUM_KEYPOINTS))
    assert np.array_equal(MIRROR[MIRROR], np.arange(NUM_KEYPOINTS))
    assert not MIRROR.flags.writeable


def test_mirror_swaps_the_outer_eye_corners() -> None:
    assert MIRROR[RIGHT_EYE_OUTER] == LEFT_EYE_OUTER
    assert MIRROR[LEFT_EYE_OUTER] == RIGHT_EYE_OUTER


@pytest.mark.parametrize(
    ("region", "image"),
    [
        ("right_eye", "left_eye"),
        ("right_brow", "left_brow"),
        ("jaw", "jaw"),
        ("nose", "nose"),
        ("mouth", "mouth"),
    ],
)
def test_mirror_maps_regions_onto_their_mirror_regions(region: str, image: str) -> None:
    points = np.arange(NUM_KEYPOINTS)
    assert set(MIRROR[REGIONS[region]].tolist()) == set(points[REGIONS[image]].tolist())


def test_region_of() -> None:
    assert region_of(0) == "jaw"
    assert region_of(RIGHT_EYE_OUTER) == "right_eye"
    assert region_of(LEFT_EYE_OUTER) == "left_eye"
    assert region_of(NUM_KEYPOINTS - 1) == "mouth"
    for name, indices in REGIONS.items():
        assert {region_of(i) for i in range(indices.start, indices.stop)} == {name}


@pytest.mark.parametrize("index", [-1, NUM_KEYPOINTS])
def test_region_of_rejects_indices_outside_the_layout(index: int) -> None:
    with pytest.raises(IndexError):
        region_of(index)


def test_region_centre_is_the_mean_of_the_region() -> None:
    points = np.random.default_rng(0).uniform(0, 100, size=(3, NUM_KEYPOINTS, 2))
    centre = region_centre(points, "nose")
    assert centre.shape == (3, 2)
    np.testing.assert_allclose(centre, points[:, REGIONS["nose"]].mean(axis=1))


def test_mean_shape_diagram_is_a_symmetric_face_in_the_unit_box() -> None:
    shape = mean_shape_diagram()
    assert shape.shape == (NUM_KEYPOINTS, 2) and shape.dtype == np.float32
    assert shape.min() >= 0 and shape.max() <= 1
    mirrored = shape.copy()
    mirrored[:, 0] = 1 - mirrored[:, 0]
    np.testing.assert_allclose(mirrored[MIRROR], shape, atol=1e-6)  # flip + reorder = same face
    assert shape[RIGHT_EYE_OUTER, 0] < shape[LEFT_EYE_OUTER, 0]  # subject's right on the picture's left


# --- the one table of outlines and colours ----------------------------------------------------------


def _segments() -> list[tuple[int, int]]:
    """Every pair of points that a drawing joins with a line."""
    pairs = []
    for outline in OUTLINES:
        indices = list(range(outline.points.start, outline.points.stop))
        pairs += list(zip(indices, indices[1:]))
        if outline.closed:
            pairs.append((indices[-1], indices[0]))
    return pairs


def test_outlines_cover_every_point_once_within_their_region() -> None:
    covered = sorted(i for outline in OUTLINES for i in range(outline.points.start, outline.points.stop))
    assert covered == list(range(NUM_KEYPOINTS))
    for outline in OUTLINES:
        assert {region_of(i) for i in range(outline.points.start, outline.points.stop)} == {outline.region}
    assert set(REGION_COLOURS) == set(REGIONS)
    assert all(len(rgb) == 3 and all(0 <= value <= 255 for value in rgb) for rgb in REGION_COLOURS.values())


def test_no_segment_joins_two_regions_the_nose_tip_to_a_nostril_or_the_two_lips() -> None:
    rings = {outline.name: set(range(outline.points.start, outline.points.stop)) for outline in OUTLINES}
    for a, b in _segments():
        assert region_of(a) == region_of(b), (a, b)
        assert not ({a, b} & rings["outer_lip"] and {a, b} & rings["inner_lip"]), (a, b)
        assert not ({a, b} & rings["nose_bridge"] and {a, b} & rings["nostrils"]), (a, b)
    assert (NOSE_TIP, NOSE_TIP + 1) not in _segments()
    assert (59, 48) in _segments() and (67, 60) in _segments()  # both lips are closed rings
