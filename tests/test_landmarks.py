"""The 68-point layout: regions, the mirror permutation, region lookup, the schematic diagram."""

from __future__ import annotations

import numpy as np
import pytest

from fkp.landmarks import (
    LEFT_EYE_OUTER,
    MIRROR,
    NUM_KEYPOINTS,
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
