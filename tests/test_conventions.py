"""Labelling conventions: the Udacity -> 300-W offsets follow each face and round-trip."""

import numpy as np
import pytest

from fkp import conventions, geometry
from fkp.landmarks import NUM_KEYPOINTS


def _faces(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(20, 180, size=(5, NUM_KEYPOINTS, 2)).astype(np.float32)


def test_the_table_holds_one_small_offset_per_point():
    offsets = conventions.udacity_to_300w()
    assert offsets.shape == (NUM_KEYPOINTS, 2)
    lengths = np.linalg.norm(offsets, axis=1)
    assert 0 < lengths.mean() < 0.1 and lengths.max() < 0.3  # a few percent of the eye distance


def test_convert_round_trips_and_is_identity_within_a_convention():
    faces = _faces()
    there = conventions.convert(faces, "udacity", "300w")
    assert not np.allclose(there, faces)
    np.testing.assert_allclose(conventions.convert(faces, "300w", "300w"), faces)
    # Back again: the frame is taken from the converted points, so it is close, not exact.
    back = conventions.convert(there, "300w", "udacity")
    assert np.abs(back - faces).max() < 0.5


def test_offsets_follow_the_face_when_it_turns_and_grows():
    face = _faces(1)[:1]
    moved = conventions.convert(face, "udacity", "300w") - face
    image = np.zeros((200, 200), np.uint8)
    _, turned = geometry.rotate_image(image, face[0] * 1.0, 40.0)
    turned_moved = conventions.convert(turned[None], "udacity", "300w") - turned[None]
    theta = np.deg2rad(40.0)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    np.testing.assert_allclose(turned_moved[0], moved[0] @ rotation.T, atol=1e-3)
    np.testing.assert_allclose(conventions.convert(face * 2, "udacity", "300w") - face * 2, moved * 2, atol=1e-3)


def test_unknown_conventions_are_refused():
    with pytest.raises(ValueError, match="unknown labelling convention"):
        conventions.convert(_faces(), "udacity", "ibug-v2")
