"""Transforms as invariants: keypoints follow the pixels, inverses round-trip, draws reproduce."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from fkp import geometry
from fkp.data import Sample
from fkp.landmarks import MIRROR, NUM_KEYPOINTS
from fkp.train_config import TrainConfig
from fkp.transforms import (
    Compose,
    FaceCrop,
    FaceCrops,
    Grayscale,
    Normalize,
    RandomFaceCrop,
    RandomPixels,
    ToTensor,
    crop_transforms,
    keypoints_to_original,
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
    grey = np.clip((image.mean(axis=-1) if image.ndim == 3 else image) - 10, 0, None)  # background 10 -> 0
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


EVERYTHING = dict(rotation_degrees=20.0, wide_rotation=0.3, upright=0.3, detector_boxes=0.5, flip=0.5)
GEOMETRIC: list[Callable[[Sample], Sample]] = [
    FaceCrop(160, box_scale=1.2),
    FaceCrop(256, box_scale=1.2),  # enlarges
    RandomFaceCrop(160, box_scale=1.2, **EVERYTHING),
    RandomFaceCrop(200, box_scale=1.2, rotation_degrees=0.0, box_shift=0.0, box_zoom=0.0, flip=1.0),
    Compose([Grayscale(), RandomFaceCrop(192, box_scale=1.2, **EVERYTHING), RandomPixels(0.0, 0.0)]),
]


@pytest.mark.parametrize("transform", GEOMETRIC, ids=repr)
def test_keypoints_stay_on_the_same_image_content(transform: Callable[[Sample], Sample]) -> None:
    set_seed(0)
    for _ in range(5):
        assert_keypoints_on_blobs(transform(blob_sample()))


def test_keypoints_stay_on_their_blobs_at_the_training_size() -> None:
    """The crop fkp train cuts (96 px, box scale 1.35) shrinks the blobs to ~2 px; they stay under the points."""
    set_seed(0)
    transform = RandomFaceCrop(TrainConfig().input_size, TrainConfig().box_scale, **EVERYTHING)
    for _ in range(5):
        assert_keypoints_on_blobs(transform(blob_sample()))


@pytest.mark.parametrize("transform", GEOMETRIC, ids=repr)
def test_keypoints_sit_on_the_blob_centres_to_a_fraction_of_a_pixel(transform: Callable[[Sample], Sample]) -> None:
    set_seed(0)
    for _ in range(3):
        offsets = centroid_offsets(transform(blob_sample()))
        assert len(offsets) >= NUM_KEYPOINTS // 2
        assert np.abs(offsets).max() < 0.2


def test_centroid_check_detects_a_half_pixel_error() -> None:
    sample = FaceCrop(256, box_scale=1.2)(blob_sample())  # 1.3x
    assert np.abs(centroid_offsets(sample)).max() < 0.2
    sample["keypoints"] = sample["keypoints"] + 0.5
    assert np.abs(centroid_offsets(sample)).max() > 0.4


@pytest.mark.parametrize("transform", GEOMETRIC, ids=repr)
def test_keypoints_to_original_undoes_the_transform(transform: Callable[[Sample], Sample]) -> None:
    set_seed(1)
    sample = blob_sample()
    for _ in range(3):
        out = transform(sample)
        np.testing.assert_allclose(
            keypoints_to_original(out["keypoints"], out["affine"]), sample["keypoints"], atol=1e-3
        )
        assert out["image"].dtype == np.uint8
        assert sample["keypoints"] is not out["keypoints"]  # the input is not modified


def test_a_mirrored_crop_is_the_crop_mirrored_with_its_points_renamed() -> None:
    """Same draws except the last: the mirror maps x -> S - 1 - x and renames the points with MIRROR."""
    size = 96
    plain = RandomFaceCrop(size, flip=None, **{k: v for k, v in EVERYTHING.items() if k != "flip"})
    mirror = RandomFaceCrop(size, flip=1.0, **{k: v for k, v in EVERYTHING.items() if k != "flip"})
    for seed in range(5):
        set_seed(seed)
        a = plain(blob_sample())
        set_seed(seed)
        b = mirror(blob_sample())
        difference = np.abs(b["image"].astype(int) - a["image"][:, ::-1].astype(int))
        # warpAffine rounds sample positions to 1/32 px: up to 240 / 32 grey levels on a blob's edge
        assert difference.max() <= 8 and difference.mean() < 0.2
        expected = a["keypoints"][MIRROR] * [-1, 1] + [size - 1, 0]
        np.testing.assert_allclose(b["keypoints"], expected, atol=1e-3)
        assert np.linalg.det(b["affine"][:, :2]) < 0 < np.linalg.det(a["affine"][:, :2])


def test_flip_none_never_mirrors_and_draws_nothing_for_it() -> None:
    set_seed(0)
    dets = [np.linalg.det(RandomFaceCrop(96, flip=None)(blob_sample())["affine"][:, :2]) for _ in range(20)]
    assert min(dets) > 0
    set_seed(0)
    RandomFaceCrop(96, flip=None)(blob_sample())
    after_none = np.random.random()
    set_seed(0)
    RandomFaceCrop(96, flip=0.0)(blob_sample())
    after_zero = np.random.random()
    assert after_none != after_zero  # flip=0.0 still draws (labels that could be mirrored), None does not


def test_face_crop_centres_the_face_box() -> None:
    sample = blob_sample()
    out = FaceCrop(96, box_scale=1.5)(sample)
    x, y, w, h = geometry.keypoints_box(out["keypoints"])
    np.testing.assert_allclose([x + w / 2, y + h / 2], [47.5, 47.5], atol=1e-3)  # (S - 1) / 2
    assert max(w, h) == pytest.approx(96 / 1.5, abs=1e-3)


def test_face_crop_uses_a_given_box_without_keypoints() -> None:
    sample = blob_sample()
    box = geometry.keypoints_box(sample["keypoints"])
    with_points = FaceCrop(64)(sample)
    box_only = FaceCrop(64)({"image": sample["image"], "box": box})
    assert np.array_equal(with_points["image"], box_only["image"])
    np.testing.assert_allclose(box_only["box"][2:], box[2:] * 64 / (box[2:].max() * 1.35), atol=1e-3)


def test_face_crop_is_the_crop_cut_at_prediction() -> None:
    gray = Grayscale()(blob_sample())
    box = np.array([30.0, 40.0, 80.0, 100.0])
    affine = geometry.box_affine(box, 96, geometry.DEFAULT_BOX_SCALE)
    np.testing.assert_allclose(FaceCrop(96).crop_matrix(box), affine, atol=1e-12)
    cut = FaceCrop(96)({"image": gray["image"], "box": box})["image"]
    assert np.array_equal(cut, geometry.warp_crop(gray["image"], affine, 96))


def test_random_pixels_change_pixels_only() -> None:
    sample = Compose([Grayscale(), FaceCrop(96)])(blob_sample())
    set_seed(0)
    changed = RandomPixels(photometric=1.0, occlusion=1.0)(sample)
    assert changed["image"].dtype == np.uint8 and changed["image"].shape == sample["image"].shape
    assert not np.array_equal(changed["image"], sample["image"])
    assert np.array_equal(changed["keypoints"], sample["keypoints"])
    assert np.array_equal(RandomPixels(0.0, 0.0)(sample)["image"], sample["image"])


def test_normalized_units_edges_and_centre() -> None:
    sample = {
        "image": np.arange(64 * 64, dtype=np.uint8).reshape(64, 64),
        "keypoints": np.array([[-0.5, -0.5], [63.5, 63.5], [31.5, 31.5]], np.float32),
    }
    out = Normalize()(sample)
    np.testing.assert_allclose(out["keypoints"], [[-1, -1], [1, 1], [0, 0]], atol=1e-6)
    np.testing.assert_allclose(geometry.from_normalized(out["keypoints"], 64), sample["keypoints"], atol=1e-5)
    assert abs(float(out["image"].mean())) < 1e-4 and float(out["image"].std()) == pytest.approx(1.0, abs=1e-3)


def test_to_tensor_shapes() -> None:
    out = Compose([Grayscale(), FaceCrop(96), Normalize(), ToTensor()])(blob_sample())
    assert out["image"].shape == (1, 96, 96) and out["image"].dtype == torch.float32
    assert out["keypoints"].shape == (NUM_KEYPOINTS, 2) and out["keypoints"].dtype == torch.float32


def test_training_pipeline_batches_with_a_dataloader() -> None:
    transform = crop_transforms(TrainConfig(), augment=True)
    set_seed(0)
    samples = [transform(blob_sample()) for _ in range(4)]
    batch = next(iter(torch.utils.data.DataLoader(samples, batch_size=4)))
    size = TrainConfig().input_size
    assert batch["image"].shape == (4, 1, size, size)
    assert batch["keypoints"].shape == (4, NUM_KEYPOINTS, 2)
    assert batch["affine"].shape == (4, 2, 3)


def test_the_training_pipeline_is_what_face_crops_feed_the_network() -> None:
    """fkp train's FaceCrops and crop_transforms on an RGB sample (notebook 1) give the same tensors."""
    sample = blob_sample()
    gray = Grayscale()(sample)["image"]
    config = TrainConfig(photometric=0.5, occlusion=0.5, wide_rotation=0.3, upright=0.3)
    for augment, mirror in [(True, False), (True, True), (False, False)]:
        crops = FaceCrops([gray], sample["keypoints"][None], config, augment, flippable=np.array([mirror]))
        set_seed(3)
        crop, points = crops[0]
        set_seed(3)
        out = crop_transforms(config, augment, mirror)(sample)
        assert torch.equal(crop, out["image"]) and torch.equal(points, out["keypoints"])


def test_compose_repr() -> None:
    assert repr(crop_transforms(TrainConfig(input_size=96, box_scale=1.35), augment=False)) == (
        "Compose([\n    Grayscale(),\n    FaceCrop(size=96, box_scale=1.35),\n    Normalize(),\n    ToTensor(),\n])"
    )


def test_reproducible_under_set_seed() -> None:
    transform = crop_transforms(TrainConfig(photometric=1.0, detector_boxes=0.5), augment=True, mirror=True)
    set_seed(7)
    first = transform(blob_sample())
    set_seed(7)
    second = transform(blob_sample())
    set_seed(8)
    third = transform(blob_sample())
    assert torch.equal(first["image"], second["image"]) and torch.equal(first["keypoints"], second["keypoints"])
    assert not torch.equal(first["keypoints"], third["keypoints"])


def test_reproducible_with_a_passed_random_state() -> None:
    def run(seed: int) -> np.ndarray:
        rng = np.random.RandomState(seed)
        transform = Compose([RandomFaceCrop(64, detector_boxes=0.5, rng=rng), RandomPixels(1.0, 1.0, rng=rng)])
        return transform(blob_sample())["keypoints"]

    assert np.array_equal(run(0), run(0)) and not np.array_equal(run(0), run(1))
