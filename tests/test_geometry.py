import numpy as np
import pytest

from fkp import geometry


def test_crop_affine_centres_the_box_and_round_trips():
    box = np.array([40.0, 30.0, 20.0, 30.0])
    affine = geometry.box_affine(box, size=64, box_scale=1.5)
    centre = geometry.apply_affine(np.array([[50.0, 45.0]]), affine)
    np.testing.assert_allclose(centre, [[31.5, 31.5]], atol=1e-4)  # (64 - 1) / 2
    # the crop's side covers 1.5 x the longer box side (30 px -> 45 px -> 64 crop px)
    top = geometry.apply_affine(np.array([[50.0, 45.0 - 22.5]]), affine)
    assert top[0, 1] == pytest.approx(31.5 - 32.0, abs=1e-4)
    points = np.random.default_rng(0).uniform(0, 100, size=(10, 2))
    back = geometry.apply_affine(geometry.apply_affine(points, affine), geometry.invert_affine(affine))
    np.testing.assert_allclose(back, points, atol=1e-3)


def test_normalized_coordinates_round_trip_and_edges():
    size = 64
    assert geometry.to_normalized(np.array([-0.5, size - 0.5]), size).tolist() == [-1.0, 1.0]
    points = np.random.default_rng(1).uniform(0, size, size=(68, 2))
    np.testing.assert_allclose(geometry.from_normalized(geometry.to_normalized(points, size), size), points, atol=1e-4)


def test_warp_crop_keeps_a_bright_dot_under_its_point():
    image = np.zeros((120, 160), np.uint8)
    image[70, 90] = 255
    affine = geometry.crop_affine(np.array([80.0, 60.0]), 80.0, 64, angle_degrees=25.0, flip=True)
    crop = geometry.warp_crop(image, affine, 64)
    x, y = np.rint(geometry.apply_affine(np.array([90.0, 70.0]), affine)).astype(int)
    assert crop[y, x] == crop.max() > 0


def test_crop_to_image_inverts_the_crop():
    boxes = np.array([[10.0, 20.0, 50.0, 40.0], [0.0, 0.0, 30.0, 30.0]])
    affines = np.stack([geometry.box_affine(box, 48, 1.3) for box in boxes])
    points = np.random.default_rng(2).uniform(0, 60, size=(2, 5, 2)).astype(np.float32)
    normalized = np.stack([geometry.to_normalized(geometry.apply_affine(p, a), 48) for p, a in zip(points, affines)])
    np.testing.assert_allclose(geometry.crop_to_image(normalized, affines, 48), points, atol=1e-3)


def test_standardize_is_brightness_and_contrast_invariant():
    crop = np.random.default_rng(3).integers(0, 100, size=(16, 16)).astype(np.float32)
    np.testing.assert_allclose(geometry.standardize(crop), geometry.standardize(crop * 2 + 30), atol=1e-5)


def test_standardize_treats_uint8_and_float_crops_alike():
    crops = np.random.default_rng(4).integers(0, 256, size=(3, 16, 16), dtype=np.uint8)
    standardized = geometry.standardize(crops)
    assert standardized.dtype == np.float32 and standardized.shape == crops.shape
    np.testing.assert_allclose(standardized, geometry.standardize(crops.astype(np.float32)), atol=1e-5)
    np.testing.assert_allclose(geometry.standardize(crops[1]), standardized[1], atol=1e-6)
    np.testing.assert_allclose(standardized.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(standardized.std(axis=(1, 2)), 1, atol=1e-4)
    assert not geometry.standardize(np.full((16, 16), 9, np.uint8)).any()  # a flat crop: zeros, no division by 0


def test_keypoints_box():
    points = np.array([[1.0, 2.0], [4.0, 8.0], [2.0, 3.0]])
    assert geometry.keypoints_box(points).tolist() == [1.0, 2.0, 3.0, 6.0]


def _face(roll: float, centre=(60.0, 50.0), eyes: float = 20.0) -> np.ndarray:
    """68 points: eye corners at +-eyes/2 along a line turned by `roll`, the rest spread below."""
    from fkp.landmarks import NUM_KEYPOINTS, REGIONS

    local = np.zeros((NUM_KEYPOINTS, 2))
    local[:, 0] = np.linspace(-eyes, eyes, NUM_KEYPOINTS)
    local[:, 1] = np.linspace(-0.2, 1.5, NUM_KEYPOINTS) * eyes
    local[REGIONS["right_eye"]] = (-eyes / 2, 0.0)
    local[REGIONS["left_eye"]] = (eyes / 2, 0.0)
    theta = np.deg2rad(roll)
    turn = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return local @ turn.T + np.asarray(centre)


@pytest.mark.parametrize("roll", [0.0, 30.0, -60.0, 90.0, 179.0])
def test_roll_is_the_eye_line_angle_clockwise_on_screen(roll):
    points = _face(roll)
    assert geometry.keypoints_roll(points) == pytest.approx(roll, abs=1e-6)
    assert geometry.roll_degrees(np.array([0.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(45.0)  # left eye lower


@pytest.mark.parametrize("roll", [0.0, 30.0, -60.0, 179.0])
def test_face_frame_follows_the_eye_centres(roll):
    points = _face(roll, eyes=20.0)
    frame = geometry.face_frame(points)
    np.testing.assert_allclose(frame.origin, [60.0, 50.0], atol=1e-9)
    assert float(frame.scale) == pytest.approx(20.0) and float(frame.roll) == pytest.approx(roll)
    theta = np.deg2rad(roll)
    np.testing.assert_allclose(frame.x_axis, [np.cos(theta), np.sin(theta)], atol=1e-12)
    np.testing.assert_allclose(frame.y_axis, [-np.sin(theta), np.cos(theta)], atol=1e-12)  # down the face
    local = frame.to_frame(points)  # the face as drawn by _face, in eye distances
    np.testing.assert_allclose(local, _face(0.0, centre=(0.0, 0.0), eyes=20.0) / 20.0, atol=1e-9)


def test_face_frame_takes_batches_and_keeps_float32():
    faces = np.stack([_face(10.0), _face(-20.0, eyes=30.0)]).astype(np.float32)  # (2, 68, 2)
    frame = geometry.face_frame(faces)
    assert frame.origin.shape == frame.x_axis.shape == frame.y_axis.shape == (2, 2) and frame.scale.shape == (2,)
    assert frame.x_axis.dtype == np.float32 and frame.roll.dtype == np.float64
    assert frame.to_frame(faces).shape == (2, 68, 2)
    np.testing.assert_array_equal(frame.roll, geometry.keypoints_roll(faces))
    one = geometry.face_frame(faces[1])
    np.testing.assert_array_equal(one.x_axis, frame.x_axis[1])
    assert float(one.scale) == pytest.approx(30.0, rel=1e-6)


@pytest.mark.parametrize("roll", [0.0, 37.0, -90.0, 150.0])
def test_upright_affine_shows_any_rolled_face_upright_and_equally_framed(roll):
    upright = geometry.apply_affine(_face(0.0), geometry.upright_affine(_face(0.0), 0.0, 64, 1.3))
    turned = geometry.apply_affine(_face(roll), geometry.upright_affine(_face(roll), roll, 64, 1.3))
    np.testing.assert_allclose(turned, upright, atol=1e-3)
    assert geometry.keypoints_roll(turned) == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("degrees", [0.0, 30.0, 90.0, -135.0])
def test_rotate_image_moves_points_with_pixels_and_adds_to_the_roll(degrees):
    image = np.zeros((90, 120), np.uint8)
    image[30, 40] = 255
    face = _face(10.0)
    turned, (dot, *points) = geometry.rotate_image(image, np.vstack([[40.0, 30.0], face]), degrees)
    y, x = np.unravel_index(np.argmax(turned), turned.shape)
    assert abs(x - dot[0]) <= 1 and abs(y - dot[1]) <= 1
    assert turned.shape[0] >= 90 and turned.shape[1] >= 90
    assert geometry.keypoints_roll(np.array(points)) == pytest.approx((10.0 + degrees + 180) % 360 - 180, abs=1e-3)


def test_apply_affine_keeps_float64_and_composes() -> None:
    first = geometry.crop_affine(np.array([40.0, 30.0]), 50.0, 64, angle_degrees=20.0)
    second = geometry.crop_affine(np.array([10.0, 12.0]), 30.0, 48, flip=True)
    points = np.array([[1.0, 2.0], [30.5, 40.25]])
    assert geometry.apply_affine(points, first).dtype == np.float64
    assert geometry.apply_affine(points.astype(np.float32), first).dtype == np.float32
    assert geometry.apply_affine([[1, 2]], first).dtype == np.float32  # integers map to float32
    both = geometry.apply_affine(points, geometry.compose_affine(second, first))
    np.testing.assert_allclose(both, geometry.apply_affine(geometry.apply_affine(points, first), second), atol=1e-12)
