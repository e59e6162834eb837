"""Overlay art: well-formed RGBA pictures, anchors where the drawing says, target rules, user PNGs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fkp import art
from fkp.geometry import face_frame
from fkp.landmarks import NUM_KEYPOINTS, mean_shape_diagram, region_centre

BUILT_IN = [art.sunglasses_art, art.moustache_art, art.top_hat_art, art.crown_art]


def synthetic_face(centre: tuple[float, float] = (200, 200), size: float = 160, angle: float = 0.0) -> np.ndarray:
    """The schematic 68-point face, ``size`` pixels wide, turned by ``angle`` degrees (counter-clockwise
    as seen in the image) about its centre, then moved to ``centre``; (68, 2) float64 x, y."""
    points = (mean_shape_diagram().astype(np.float64) - 0.5) * size
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    rotation = np.array([[c, s], [-s, c]])  # y points down: this turns counter-clockwise on screen
    return points @ rotation.T + np.asarray(centre)


@pytest.mark.parametrize("make", BUILT_IN, ids=lambda f: f.__name__)
def test_built_in_art_is_clean_rgba(make) -> None:
    piece = make()
    rgba = piece.rgba
    assert rgba.ndim == 3 and rgba.shape[2] == 4 and rgba.dtype == np.uint8
    alpha = rgba[..., 3]
    assert (alpha == 0).any() and (alpha == 255).any()
    assert ((alpha > 0) & (alpha < 255)).sum() > 100  # anti-aliased edges
    assert (rgba[alpha == 0, :3] == 0).all()  # nothing hides in transparent pixels
    # nothing opaque on the picture's border: the drawing is not cut off
    assert max(alpha[0].max(), alpha[-1].max(), alpha[:, 0].max(), alpha[:, -1].max()) < 255
    assert np.isfinite(piece.anchors).all() and len(piece.anchors) >= 2
    targets = piece.target_points(synthetic_face())
    assert targets.shape == piece.anchors.shape
    assert not rgba.flags.writeable


@pytest.mark.parametrize("make", BUILT_IN, ids=lambda f: f.__name__)
def test_built_in_art_is_deterministic(make) -> None:
    fresh = make.__wrapped__()  # bypass the cache: draw again
    np.testing.assert_array_equal(fresh.rgba, make().rgba)
    np.testing.assert_array_equal(fresh.anchors, make().anchors)


def test_sunglasses_anchors_are_the_lens_centres() -> None:
    piece = art.sunglasses_art()
    alpha = piece.rgba[..., 3].astype(int)
    lens = ((alpha > 200) & (alpha < 245)).astype(np.uint8)  # the lenses are 88% opaque, the frame 100%
    count, _, stats, centroids = cv2.connectedComponentsWithStats(lens)
    biggest = np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1][:2] + 1
    found = centroids[biggest][np.argsort(centroids[biggest][:, 0])]
    np.testing.assert_allclose(found, piece.anchors[:2], atol=1.0)


def test_eye_targets_are_eye_centres_then_corners() -> None:
    face = synthetic_face()
    targets = art.eye_targets(face)
    np.testing.assert_allclose(targets[0], region_centre(face, "right_eye"))
    np.testing.assert_allclose(targets[1], region_centre(face, "left_eye"))
    np.testing.assert_allclose(targets[2:], face[[36, 39, 42, 45]])


@pytest.mark.parametrize("angle", [0.0, 20.0, -35.0])
def test_forehead_targets_turn_with_the_face(angle: float) -> None:
    rule = art.forehead_targets(lift=0.6, half_width=1.0)
    upright = rule(synthetic_face())
    turned = rule(synthetic_face(angle=angle))
    # the same points, turned: the rule is equivariant to in-plane rotation about the face centre
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    expected = (upright - 200) @ np.array([[c, s], [-s, c]]).T + 200
    np.testing.assert_allclose(turned, expected, atol=1e-6)
    # upright, the line lies above the brows, runs left to right, centred on the face
    brows_top = synthetic_face()[17:27, 1].min()
    assert (upright[:, 1] < brows_top).all()
    assert upright[0, 0] < upright[1, 0] < upright[2, 0]
    assert upright[1, 0] == pytest.approx(200, abs=1e-6)


def test_the_face_frame_of_the_synthetic_face() -> None:
    frame = face_frame(synthetic_face(size=100))
    np.testing.assert_allclose(frame.x_axis, [1, 0], atol=1e-6)
    np.testing.assert_allclose(-frame.y_axis, [0, -1], atol=1e-6)  # up the face is up the image
    assert float(frame.scale) == pytest.approx(40, abs=1e-4)  # eye centres at x = 0.30 and 0.70 of the width


def test_overlay_art_validates() -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)
    with pytest.raises(ValueError, match="at least 2"):
        art.OverlayArt(rgba, np.array([[1, 1]]), [36])
    with pytest.raises(ValueError, match="indices"):
        art.OverlayArt(rgba, np.array([[1, 1], [2, 2]]), [36])
    with pytest.raises(ValueError, match="0..67"):
        art.OverlayArt(rgba, np.array([[1, 1], [2, 2]]), [36, NUM_KEYPOINTS])
    with pytest.raises(ValueError, match="uint8"):
        art.OverlayArt(np.zeros((10, 10, 3), np.uint8), np.array([[1, 1], [2, 2]]), [36, 45])
    bad_rule = art.OverlayArt(rgba, np.array([[1, 1], [2, 2]]), lambda keypoints: keypoints[:3])
    with pytest.raises(ValueError, match="3 points for 2 anchors"):
        bad_rule.target_points(synthetic_face())


def test_load_art_from_rgba_png(tmp_path: Path) -> None:
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[5:15, 5:25] = (255, 0, 0, 255)  # opaque red in RGBA order
    path = tmp_path / "mask.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    piece = art.load_art(path, [[5, 10], [25, 10]], [36, 45])
    np.testing.assert_array_equal(piece.rgba, rgba)
    assert piece.name == "mask"
    np.testing.assert_allclose(piece.target_points(synthetic_face()), synthetic_face()[[36, 45]])


def test_load_art_without_alpha_is_opaque(tmp_path: Path) -> None:
    path = tmp_path / "plain.jpg"
    assert cv2.imwrite(str(path), np.full((8, 8, 3), 200, np.uint8))
    piece = art.load_art(path, [[0, 0], [7, 7]], [36, 45], name="plain")
    assert (piece.rgba[..., 3] == 255).all()


def test_load_art_rejects_bad_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="notes.png"):
        art.load_art(text, [[0, 0], [1, 1]], [36, 45])
    with pytest.raises(ValueError, match="missing.png"):
        art.load_art(tmp_path / "missing.png", [[0, 0], [1, 1]], [36, 45])
