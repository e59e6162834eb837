"""Transforms as invariants: keypoints follow the pixels, inverses round-trip, draws reproduce."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from fkp.data import Sample
from fkp.geometry import keypoints_box
from fkp.landmarks import LEFT_EYE_OUTER, MIRROR, NUM_KEYPOINTS, RIGHT_EYE_OUTER
from fkp.transforms import (
    ColorJitter,
    Compose,
    FaceCrop,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotation,
    RandomScaleShift,
    Rescale,
    ToTensor,
    apply_affine,
    denormalize_keypoints,
    unapply_affine,
    keypoints_to_original,
    normalize_keypoints,
)
from fkp.utils import set_seed

HEIGHT, WIDTH = 200, 220
BLOB_RADIUS = 2  # 5x5 bright squares
GRID_COLUMNS = 17


def blob_sample() -> Sample:
    """A dark RGB image with a bright 5x5 blob centred on each of the 68 keypoints (a 17-wide grid
    with 10 px spacing, around the image centre), keypoints at the blob centres (integer pixels)."""
    index = np.arange(NUM_KEYPOINTS)
    columns, rows = index % GRID_COLUMNS, index // GRID_COLUMNS
    x = WIDTH / 2 + 10 * (columns - (GRID_COLUMNS - 1) / 2)
    y = HEIGHT / 2 + 10 * (rows - rows.max() / 2)
    keypoints = np.stack([np.round(x), np.round(y)], axis=1).astype(np.float32)
    image = np.full((HEIGHT, WIDTH, 3), 10, dtype=np.uint8)
    for px, py in keypoints.astype(int):
        image[py - BLOB_RADIUS : py + BLOB_RADIUS + 1, px - BLOB_RADIUS : px + BLOB_RADIUS + 1] = 250
    return {"image": image, "keypoints": keypoints, "name": "blobs.jpg"}


def brightness_at(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) brightest value in the 3x3 pixels around each point's nearest pixel (0 if outside)."""
    grey = image.mean(axis=-1) if image.ndim == 3 else image
    values = []
    for x, y in np.round(points).astype(int):
        patch = grey[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
        values.append(patch.max() if patch.size else 0)
    return np.array(values)


def assert_keypoints_on_blobs(sample: Sample) -> None:
    image, keypoints = sample["image"], sample["keypoints"]
    rows, cols = image.shape[:2]
    inside = ((keypoints >= 1) & (keypoints <= [cols - 2, rows - 2])).all(axis=1)
    assert inside.sum() >= NUM_KEYPOINTS // 2, "too few keypoints left in the image to test"
    assert brightness_at(image, keypoints[inside]).min() > 120  # blobs are 250 on 10, blurred when shrunk


def centroid_offsets(sample: Sample) -> np.ndarray:
    """(M, 2) offset from each keypoint well inside the image to the brightness centroid of its blob,
    in output pixels. Linear resampling keeps centroids, so this is ~0 if pixels and points agree."""
    image, keypoints = sample["image"].astype(np.float64), sample["keypoints"]
    grey = np.clip(image.mean(axis=-1) - 10, 0, None)  # background 10 -> 0
    scale = np.sqrt(abs(np.linalg.det(sample["affine"][:, :2])))
    radius = max(2, int(4 * scale))  # the blob and its blur, not the neighbours 10 * scale away
    offsets = []
    for x, y in keypoints:
        cx, cy = round(float(x)), round(float(y))
        if not (radius <= cx < grey.shape[1] - radius and radius <= cy < grey.shape[0] - radius):
            continue
        window = grey[cy - radius : cy + radius + 1, cx - radius : cx + radius + 1]
        dy, dx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
        mass = window.sum()
        offsets.append([cx + (window * dx).sum() / mass - x, cy + (window * dy).sum() / mass - y])
    return np.array(offsets)


def test_blob_check_detects_misplaced_keypoints() -> None:
    sample = blob_sample()
    assert brightness_at(sample["image"], sample["keypoints"]).min() == 250
    assert brightness_at(sample["image"], sample["keypoints"] + [5, 5]).max() == 10


GEOMETRIC: list[Callable[[Sample], Sample]] = [
    Rescale(100),
    Rescale((300, 260)),
    RandomCrop(150),
    RandomHorizontalFlip(p=1.0),
    RandomRotation(30),
    RandomScaleShift(scale=(0.7, 1.3), shift=0.1),
    FaceCrop(128, padding=0.1),
    FaceCrop(96, padding=0.1, jitter=0.1),  # shrinks by ~2x: the anti-aliased path
    FaceCrop(256, padding=0.1, jitter=0.1),
    Compose([RandomHorizontalFlip(p=1.0), RandomRotation(20), FaceCrop(160, padding=0.1), ColorJitter()]),
]


@pytest.mark.parametrize("transform", GEOMETRIC, ids=repr)
def test_keypoints_stay_on_the_same_image_content(transform: Callable[[Sample], Sample]) -> None:
    set_seed(0)
    for _ in range(3):
        assert_keypoints_on_blobs(transform(blob_sample()))


@pytest.mark.parametrize("transform", GEOMETRIC, ids=repr)
def test_keypoints_sit_on_the_blob_centres_to_a_fraction_of_a_pixel(transform: Callable[[Sample], Sample]) -> None:
    set_seed(0)
    offsets = centroid_offsets(transform(blob_sample()))
    assert len(offsets) >= NUM_KEYPOINTS // 2
    assert np.abs(offsets).max() < 0.2


def test_centroid_check_detects_a_half_pixel_error() -> None:
    sample = Rescale(440)(blob_sample())  # 2x
    assert np.abs(centroid_offsets(sample)).max() < 0.2
    sample["keypoints"] = sample["keypoints"] + 0.5
    assert np.abs(centroid_offsets(sample)).max() > 0.4


@pytest.mark.parametrize("transform", GEOMETRIC, ids=repr)
def test_keypoints_to_original_undoes_the_transform(transform: Callable[[Sample], Sample]) -> None:
    set_seed(1)
    sample = blob_sample()
    out = transform(sample)
    np.testing.assert_allclose(keypoints_to_original(out["keypoints"], out["affine"]), sample["keypoints"], atol=1e-3)
    assert transform(sample)["image"].dtype == np.uint8
    assert sample["keypoints"] is not out["keypoints"]  # the input is not modified


def test_flip_twice_is_identity() -> None:
    sample = blob_sample()
    sample["image"][0, 0] = 0  # make the image asymmetric
    flip = RandomHorizontalFlip(p=1.0)
    twice = flip(flip(sample))
    assert np.array_equal(twice["image"], sample["image"])
    assert np.array_equal(twice["keypoints"], sample["keypoints"])
    np.testing.assert_allclose(twice["affine"], np.eye(2, 3))


def test_flip_mirrors_x_and_reorders_points() -> None:
    sample = blob_sample()
    flipped = RandomHorizontalFlip(p=1.0)(sample)
    assert np.array_equal(flipped["image"], sample["image"][:, ::-1])
    old_right_eye = sample["keypoints"][RIGHT_EYE_OUTER]
    assert flipped["keypoints"][LEFT_EYE_OUTER, 0] == WIDTH - 1 - old_right_eye[0]
    assert flipped["keypoints"][LEFT_EYE_OUTER, 1] == old_right_eye[1]
    expected = sample["keypoints"][MIRROR].copy()
    expected[:, 0] = WIDTH - 1 - expected[:, 0]
    assert np.array_equal(flipped["keypoints"], expected)


def test_flip_with_p_zero_changes_nothing() -> None:
    sample = blob_sample()
    out = RandomHorizontalFlip(p=0.0)(sample)
    assert np.array_equal(out["image"], sample["image"]) and np.array_equal(out["keypoints"], sample["keypoints"])
    np.testing.assert_array_equal(out["affine"], np.eye(2, 3))  # recorded either way, so that batches collate


def test_flip_negates_normalised_x() -> None:
    sample = blob_sample()
    plain = Normalize()(sample)["keypoints"]
    flipped = Normalize()(RandomHorizontalFlip(p=1.0)(sample))["keypoints"]
    np.testing.assert_allclose(flipped[MIRROR, 0], -plain[:, 0], atol=1e-6)


def test_rotation_by_zero_is_identity() -> None:
    sample = blob_sample()
    out = RandomRotation(0)(sample)
    assert np.array_equal(out["image"], sample["image"])
    np.testing.assert_allclose(out["keypoints"], sample["keypoints"], atol=1e-5)


def test_rescale_sizes() -> None:
    sample = blob_sample()  # 200 x 220 (h, w)
    assert Rescale(100)(sample)["image"].shape == (100, 110, 3)  # smaller side -> 100
    assert Rescale((50, 80))(sample)["image"].shape == (50, 80, 3)
    tall = {**sample, "image": sample["image"].transpose(1, 0, 2)}
    assert Rescale(100)(tall)["image"].shape == (110, 100, 3)


def test_random_crop_is_a_slice() -> None:
    set_seed(0)
    sample = blob_sample()
    out = RandomCrop((120, 150))(sample)
    left, top = -out["affine"][:, 2]
    assert out["image"].shape == (120, 150, 3)
    assert np.array_equal(out["image"], sample["image"][int(top) : int(top) + 120, int(left) : int(left) + 150])
    with pytest.raises(ValueError, match="larger than the image"):
        RandomCrop(HEIGHT + 1)(sample)


@pytest.mark.parametrize("padding", [0.0, 0.25])
def test_face_crop_centres_the_face(padding: float) -> None:
    sample = blob_sample()
    out = FaceCrop(100, padding=padding)(sample)
    x, y, w, h = keypoints_box(out["keypoints"])
    assert out["image"].shape == (100, 100, 3)
    np.testing.assert_allclose(max(w, h), 100 / (1 + 2 * padding), rtol=1e-5)
    np.testing.assert_allclose([x + w / 2, y + h / 2], [49.5, 49.5], atol=1e-4)  # the centre of a 100 px image


def test_face_crop_uses_a_given_box_without_keypoints() -> None:
    sample = blob_sample()
    box = keypoints_box(sample["keypoints"])
    with_box = FaceCrop(96)({"image": sample["image"], "box": box})
    from_points = FaceCrop(96)(sample)
    np.testing.assert_allclose(FaceCrop(96).crop_matrix(box), from_points["affine"])
    assert np.array_equal(with_box["image"], from_points["image"])
    np.testing.assert_allclose(with_box["affine"], from_points["affine"])
    np.testing.assert_allclose(with_box["box"], keypoints_box(from_points["keypoints"]), atol=1e-4)
    with pytest.raises(ValueError, match="box"):
        FaceCrop(96)({"image": sample["image"]})


def test_face_crop_border_modes() -> None:
    sample = blob_sample()
    sample["keypoints"] = sample["keypoints"] - sample["keypoints"].min(axis=0)  # face in the top-left corner
    zeros = FaceCrop(64, padding=0.5, border="zeros")(sample)["image"]
    replicate = FaceCrop(64, padding=0.5, border="replicate")(sample)["image"]
    assert zeros[0, 0].max() == 0 and replicate[0, 0].min() > 0


def test_color_jitter_changes_pixels_only() -> None:
    set_seed(0)
    sample = blob_sample()
    out = ColorJitter(brightness=0.5, contrast=0.5)(sample)
    assert out["image"].dtype == np.uint8 and out["image"].shape == sample["image"].shape
    assert not np.array_equal(out["image"], sample["image"])
    assert np.array_equal(out["keypoints"], sample["keypoints"]) and "affine" not in out
    floats = ColorJitter()({"image": sample["image"] / 255.0})["image"]
    assert floats.dtype == np.float64 and 0 <= floats.min() and floats.max() <= 1


def test_normalize_then_denormalize_round_trips() -> None:
    sample = blob_sample()
    out = Normalize()(sample)
    assert out["image"].shape == (HEIGHT, WIDTH) and out["image"].dtype == np.float32
    assert 0 <= out["image"].min() and out["image"].max() <= 1
    assert np.abs(out["keypoints"]).max() <= 1
    np.testing.assert_allclose(denormalize_keypoints(out["keypoints"], (HEIGHT, WIDTH)), sample["keypoints"], atol=1e-4)
    rgb = Normalize(grayscale=False)(sample)["image"]
    assert rgb.shape == (HEIGHT, WIDTH, 3)


def test_normalised_units_edges_and_centre() -> None:
    corners = np.array([[-0.5, -0.5], [WIDTH - 0.5, HEIGHT - 0.5], [(WIDTH - 1) / 2, (HEIGHT - 1) / 2]])
    np.testing.assert_allclose(normalize_keypoints(corners, (HEIGHT, WIDTH)), [[-1, -1], [1, 1], [0, 0]], atol=1e-12)
    tensor = torch.rand(4, NUM_KEYPOINTS, 2) * 2 - 1
    back = normalize_keypoints(denormalize_keypoints(tensor, 224), 224)
    assert isinstance(back, torch.Tensor)
    torch.testing.assert_close(back, tensor)


def test_affine_helpers_round_trip() -> None:
    affine = np.array([[0.8, -0.3, 12.0], [0.4, 1.1, -7.0]])
    points = np.random.default_rng(0).uniform(0, 100, size=(5, 2))
    np.testing.assert_allclose(unapply_affine(apply_affine(points, affine), affine), points, atol=1e-9)


def test_to_tensor_shapes() -> None:
    out = Compose([Normalize(), ToTensor()])(blob_sample())
    assert out["image"].shape == (1, HEIGHT, WIDTH) and out["image"].dtype == torch.float32
    assert out["keypoints"].shape == (NUM_KEYPOINTS, 2) and out["keypoints"].dtype == torch.float32
    rgb = ToTensor()(blob_sample())["image"]
    assert rgb.shape == (3, HEIGHT, WIDTH) and float(rgb.max()) <= 1


def test_full_pipeline_batches_with_a_dataloader() -> None:
    transform = Compose([RandomHorizontalFlip(), FaceCrop(96, jitter=0.05), Normalize(), ToTensor()])
    set_seed(0)
    samples = [transform(blob_sample()) for _ in range(4)]
    batch = next(iter(torch.utils.data.DataLoader(samples, batch_size=4)))
    assert batch["image"].shape == (4, 1, 96, 96)
    assert batch["keypoints"].shape == (4, NUM_KEYPOINTS, 2)
    assert batch["affine"].shape == (4, 2, 3)


def test_compose_repr() -> None:
    transform = Compose([Rescale(250), RandomCrop(224), Normalize(), ToTensor()])
    assert repr(transform) == (
        "Compose([\n"
        "    Rescale(output_size=250),\n"
        "    RandomCrop(size=224),\n"
        "    Normalize(grayscale=True),\n"
        "    ToTensor(),\n"
        "])"
    )


AUGMENT = Compose(
    [RandomHorizontalFlip(), RandomRotation(15), RandomScaleShift(), FaceCrop(64, jitter=0.1), ColorJitter()]
)


def test_reproducible_under_set_seed() -> None:
    set_seed(7)
    first = AUGMENT(blob_sample())
    set_seed(7)
    second = AUGMENT(blob_sample())
    set_seed(8)
    third = AUGMENT(blob_sample())
    assert np.array_equal(first["image"], second["image"]) and np.array_equal(first["keypoints"], second["keypoints"])
    assert not np.array_equal(first["keypoints"], third["keypoints"])


def test_reproducible_with_a_passed_generator() -> None:
    def run(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        transform = Compose([RandomRotation(15, rng=rng), FaceCrop(64, jitter=0.1, rng=rng)])
        return transform(blob_sample())["keypoints"]

    assert np.array_equal(run(0), run(0)) and not np.array_equal(run(0), run(1))


def test_face_crop_is_the_crop_cut_at_prediction() -> None:
    from fkp.geometry import box_affine

    box = np.array([30.0, 40.0, 80.0, 100.0])
    np.testing.assert_allclose(FaceCrop(96, padding=0.175).crop_matrix(box), box_affine(box, 96, 1.35), atol=1e-9)
