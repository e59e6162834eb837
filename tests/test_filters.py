"""Face filters: overlay placement checked on pixels, alpha blending, clipping, blur, eye aspect ratio."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fkp import art, filters
from fkp.geometry import apply_affine
from fkp.landmarks import REGIONS, mean_shape_diagram, region_centre


def synthetic_face(centre: tuple[float, float] = (200, 200), size: float = 160, angle: float = 0.0) -> np.ndarray:
    """The schematic 68-point face, ``size`` pixels wide, turned by ``angle`` degrees (counter-clockwise
    as seen in the image), centred on ``centre``; (68, 2) float64 x, y."""
    points = (mean_shape_diagram().astype(np.float64) - 0.5) * size
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    return points @ np.array([[c, s], [-s, c]]).T + np.asarray(centre)


def noise_image(height: int = 400, width: int = 400, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def lens_centres(image_size: tuple[int, int], keypoints: np.ndarray) -> np.ndarray:
    """Find the sunglasses' lenses by their pixels: render the glasses on white and on black; where
    the two differ a little, the overlay is partly see-through: the 88%-opaque lenses (the frame is
    opaque, the background transparent). Returns (2, 2) lens centroids, left one first."""
    white = np.full((*image_size, 3), 255, np.uint8)
    black = np.zeros((*image_size, 3), np.uint8)
    glasses = art.sunglasses_art()
    seen_through = filters.apply_overlay(white, keypoints, glasses).astype(int) - filters.apply_overlay(
        black, keypoints, glasses
    )
    lens = ((seen_through[..., 0] > 8) & (seen_through[..., 0] < 80)).astype(np.uint8)
    lens = cv2.morphologyEx(lens, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))  # drop stray edge pixels
    _, _, stats, centroids = cv2.connectedComponentsWithStats(lens)
    biggest = np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1][:2] + 1
    found = centroids[biggest]
    return found[np.argsort(found[:, 0])]


# ------------------------------------------------------------------ similarity transform


@pytest.mark.parametrize("method", ["lstsq", "lmeds"])
def test_similarity_transform_recovers_a_known_map(method: str) -> None:
    angle, scale, shift = np.deg2rad(25), 1.7, np.array([30.0, -12.0])
    truth = np.array([[scale * np.cos(angle), -scale * np.sin(angle)], [scale * np.sin(angle), scale * np.cos(angle)]])
    source = np.random.default_rng(1).uniform(0, 100, (6, 2))
    target = source @ truth.T + shift
    matrix = filters.similarity_transform(source, target, method)
    np.testing.assert_allclose(matrix[:, :2], truth, atol=1e-6)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-4)


def test_similarity_transform_from_two_points_is_exact() -> None:
    matrix = filters.similarity_transform([[0, 0], [10, 0]], [[5, 5], [5, 25]])
    mapped = apply_affine(np.array([[0, 0], [10, 0], [0, 10]], np.float64), matrix)
    np.testing.assert_allclose(mapped, [[5, 5], [5, 25], [-15, 5]], atol=1e-9)


def test_lmeds_ignores_one_bad_point() -> None:
    source = np.random.default_rng(2).uniform(0, 100, (8, 2))
    target = source * 2 + 5
    target[3] += 80  # one badly placed keypoint
    robust = filters.similarity_transform(source, target, "lmeds")
    np.testing.assert_allclose(robust, [[2, 0, 5], [0, 2, 5]], atol=1e-3)
    plain = filters.similarity_transform(source, target, "lstsq")
    assert np.abs(plain - [[2, 0, 5], [0, 2, 5]]).max() > 1


def test_similarity_transform_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        filters.similarity_transform([[0, 0]], [[1, 1]])
    with pytest.raises(ValueError, match="method"):
        filters.similarity_transform([[0, 0], [1, 1]], [[0, 0], [1, 1]], "ransac")  # type: ignore[arg-type]


# ------------------------------------------------------------------ overlay placement


@pytest.mark.parametrize("angle", [0.0, 20.0, -20.0])
def test_sunglasses_lenses_land_on_the_eyes(angle: float) -> None:
    face = synthetic_face(angle=angle)
    found = lens_centres((400, 400), face)
    eyes = np.stack([region_centre(face, "right_eye"), region_centre(face, "left_eye")])
    eyes = eyes[np.argsort(eyes[:, 0])]
    np.testing.assert_allclose(found, eyes, atol=2.0)
    tilt = np.degrees(np.arctan2(-(found[1, 1] - found[0, 1]), found[1, 0] - found[0, 0]))
    assert tilt == pytest.approx(angle, abs=1.5)


def test_sunglasses_scale_with_the_face() -> None:
    small, large = synthetic_face(size=80), synthetic_face(size=240)
    ratio = np.ptp(lens_centres((400, 400), large)[:, 0]) / np.ptp(lens_centres((400, 400), small)[:, 0])
    assert ratio == pytest.approx(3.0, rel=0.03)


def _square_art() -> art.OverlayArt:
    """A 40 x 40 picture: opaque red in the middle 20 x 20, the rest fully transparent but green
    underneath (colour hidden under alpha 0 must never show). Anchors at two corners of the square."""
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 1] = 255
    rgba[10:30, 10:30] = (255, 0, 0, 255)
    return art.OverlayArt(rgba, np.array([[10.0, 10.0], [29.0, 10.0]]), [36, 45], name="square")


def _face_with_eye_corners(right_outer: tuple[float, float], left_outer: tuple[float, float]) -> np.ndarray:
    face = synthetic_face()
    face[36], face[45] = right_outer, left_outer
    return face


def test_transparent_pixels_stay_exactly_unchanged() -> None:
    image = noise_image()
    face = _face_with_eye_corners((100, 100), (119, 100))  # identity map: art pixel (x, y) -> (x + 90, y + 90)
    result = filters.apply_overlay(image, face, _square_art())
    changed = (result != image).any(axis=2)
    rows, cols = np.nonzero(changed)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (100, 119, 100, 119)
    assert (result[100:120, 100:120] == (255, 0, 0)).all()
    assert image is not result and not (result == image).all()


def test_opacity_blends_and_zero_changes_nothing() -> None:
    image = np.full((200, 200, 3), 100, np.uint8)
    face = _face_with_eye_corners((100, 100), (119, 100))
    half = filters.apply_overlay(image, face, _square_art(), opacity=0.5)
    np.testing.assert_array_equal(half[110, 110], [178, 50, 50])  # round(0.5 * 255 + 0.5 * 100), ...
    np.testing.assert_array_equal(filters.apply_overlay(image, face, _square_art(), opacity=0.0), image)


def test_blend_has_no_dark_fringe() -> None:
    """Premultiplied warping: a white overlay on a white image stays white at its soft edges."""
    rgba = np.zeros((40, 40, 4), np.uint8)
    cv2.circle(rgba, (20, 20), 12, (255, 255, 255, 255), -1, cv2.LINE_AA)
    rgba[..., :3] = 255  # straight alpha: white everywhere, the alpha channel alone says where
    piece = art.OverlayArt(rgba, np.array([[8.0, 20.0], [32.0, 20.0]]), [36, 45])
    image = np.full((300, 300, 3), 255, np.uint8)
    face = _face_with_eye_corners((80, 150), (150.5, 163))  # scaled about 3x, rotated, sub-pixel shift
    np.testing.assert_array_equal(filters.apply_overlay(image, face, piece), image)


@pytest.mark.parametrize("where", [(0, 0), (0.5, 0), (1, 0), (1, 0.5), (1, 1), (0.5, 1), (0, 1), (0, 0.5)])
@pytest.mark.parametrize("name", ["sunglasses", "moustache", "hat", "crown"])
def test_overlays_at_the_border_are_clipped_like_a_crop(where: tuple[float, float], name: str) -> None:
    """An overlay that sticks out of the image (at each corner and side) gives the same pixels as
    the same overlay placed on a bigger image, then cropped."""
    size, pad = 400, 300
    face = synthetic_face(size=180, angle=15)
    big = noise_image(size + 2 * pad, size + 2 * pad, seed=3)
    # move the face so that the middle of the overlay's footprint sits on the chosen border point
    footprint = np.argwhere((filters.apply_filter(big, [face + pad], name) != big).any(axis=2))
    middle = (footprint.min(axis=0) + footprint.max(axis=0))[::-1] / 2 - pad  # x, y in image pixels
    face = face + np.array(where) * (size - 1) - middle
    image = big[pad:-pad, pad:-pad].copy()
    clipped = filters.apply_filter(image, [face], name)
    reference = filters.apply_filter(big, [face + pad], name)
    visible = (clipped != image).any(axis=2).sum()
    assert 0 < visible < (reference != big).any(axis=2).sum()  # partly in, partly out
    difference = np.abs(clipped.astype(int) - reference[pad:-pad, pad:-pad]).max(axis=2)
    # warpAffine rounds sample positions to 1/32 pixel, from translations that differ by whole
    # pixels here; a rare position rounds the other way: allow a handful of small differences
    assert difference.max() <= 8 and (difference > 1).sum() <= 0.005 * visible


def test_overlay_entirely_outside_changes_nothing() -> None:
    image = noise_image(100, 100)
    face = synthetic_face(centre=(600, -500), size=120)
    for name in filters.FILTER_NAMES:
        np.testing.assert_array_equal(filters.apply_filter(image, [face], name), image)


def test_tiny_face_uses_the_area_filter_without_error() -> None:
    image = noise_image(60, 60)
    result = filters.FILTERS["sunglasses"](image, synthetic_face(centre=(30, 30), size=12), 1.0)
    assert result.shape == image.shape and (result != image).any()


# ------------------------------------------------------------------ all filters, the registry


@pytest.mark.parametrize("name", filters.FILTER_NAMES)
def test_every_filter_changes_the_face_and_not_the_input(name: str) -> None:
    image = noise_image()
    before = image.copy()
    result = filters.apply_filter(image, [synthetic_face(angle=10)], name, 1.0)
    np.testing.assert_array_equal(image, before)
    assert result.shape == image.shape and result.dtype == np.uint8
    assert (result != image).any(axis=2).sum() > 100


def test_apply_filter_handles_many_faces_none_and_unknown_names() -> None:
    image = noise_image(300, 600)
    faces = np.stack([synthetic_face(centre=(150, 150), size=120), synthetic_face(centre=(450, 150), size=120)])
    both = filters.apply_filter(image, faces, "sunglasses")
    assert (both[:, :300] != image[:, :300]).any() and (both[:, 300:] != image[:, 300:]).any()
    np.testing.assert_array_equal(filters.apply_filter(image, [], "hat"), image)
    with pytest.raises(ValueError, match="unknown filter"):
        filters.apply_filter(image, faces, "bunny_ears")


def test_overlay_filter_wraps_custom_art() -> None:
    image = noise_image()
    face = _face_with_eye_corners((100, 100), (119, 100))
    result = filters.apply_filter(image, [face], filters.overlay_filter(_square_art()))
    assert (result[100:120, 100:120] == (255, 0, 0)).all()


# ------------------------------------------------------------------ face blur


def test_blur_changes_pixels_inside_the_hull_only() -> None:
    image = noise_image()
    face = synthetic_face(angle=12)
    result = filters.blur_face(image, face, strength=1.0)
    hull = filters.face_hull(face).reshape(-1, 1, 2)
    changed = (result != image).any(axis=2)
    ys, xs = np.nonzero(changed)
    distance = np.array([cv2.pointPolygonTest(hull, (float(x), float(y)), True) for x, y in zip(xs, ys)])
    assert distance.min() > -1.0  # nothing changes more than a pixel outside the hull
    inside = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(inside, np.round(hull).astype(np.int32), 1)
    inner = cv2.erode(inside, np.ones((5, 5), np.uint8)).astype(bool)
    assert changed[inner].mean() > 0.95
    # and it is a real blur: the noise inside is smoothed away
    assert result[inner].std() < 0.3 * image[inner].std()


def test_blur_strength() -> None:
    image = noise_image()
    face = synthetic_face()
    np.testing.assert_array_equal(filters.blur_face(image, face, 0.0), image)
    inside = filters.face_hull(face).mean(axis=0).astype(int)
    window = np.s_[inside[1] - 20 : inside[1] + 20, inside[0] - 20 : inside[0] + 20]
    weak = filters.blur_face(image, face, 0.1)[window].std()
    strong = filters.blur_face(image, face, 1.0)[window].std()
    assert strong < weak < image[window].std()


def test_face_hull_covers_jaw_and_brows() -> None:
    face = synthetic_face()
    hull = filters.face_hull(face).reshape(-1, 1, 2)
    outline = face[REGIONS["jaw"].start : REGIONS["left_brow"].stop]
    assert all(cv2.pointPolygonTest(hull, (float(x), float(y)), True) >= -1e-3 for x, y in outline)


# ------------------------------------------------------------------ eye aspect ratio


def _eyes(opening: float) -> np.ndarray:
    """A face whose eyes are hexagons 30 px wide and ``2 * opening`` px tall, in the 68-point order."""
    face = synthetic_face()
    for region, cx in (("right_eye", 150.0), ("left_eye", 250.0)):
        corner, upper_1, upper_2, far_corner, lower_2, lower_1 = range(REGIONS[region].start, REGIONS[region].stop)
        face[corner] = (cx - 15, 180)
        face[upper_1], face[upper_2] = (cx - 5, 180 - opening), (cx + 5, 180 - opening)
        face[far_corner] = (cx + 15, 180)
        face[lower_2], face[lower_1] = (cx + 5, 180 + opening), (cx - 5, 180 + opening)
    return face


def test_eye_aspect_ratio_by_hand() -> None:
    right, left = filters.eye_aspect_ratio(_eyes(opening=4.5))
    assert right == pytest.approx((9 + 9) / (2 * 30))  # (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|) = 0.3
    assert left == pytest.approx(0.3)


def test_eye_aspect_ratio_tells_open_from_closed() -> None:
    assert filters.eyes_open(_eyes(opening=4.5))
    assert not filters.eyes_open(_eyes(opening=0.5))
    assert filters.eyes_open(_eyes(opening=1.0), threshold=0.05)


def test_eye_aspect_ratio_ignores_size_and_rotation() -> None:
    face = _eyes(opening=4.0)
    c, s = np.cos(0.6), np.sin(0.6)
    moved = (face - 200) @ (2.5 * np.array([[c, -s], [s, c]])).T + 50
    np.testing.assert_allclose(filters.eye_aspect_ratio(moved), filters.eye_aspect_ratio(face))
