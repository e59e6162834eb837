"""The data set class and the person-disjoint split. Tests marked ``needs_data`` read the real data set
from ``$FKP_DATA_DIR`` and are skipped when it is unset; the others need no data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fkp.data import DataNotFoundError, FacialKeypointsDataset, person_disjoint_split, person_of
from fkp.landmarks import NUM_KEYPOINTS
from fkp.transforms import Compose, FaceCrop, Grayscale, Normalize, ToTensor
from fkp.utils import DATA_DIR_ENV

needs_data = pytest.mark.skipif(
    not os.environ.get(DATA_DIR_ENV), reason=f"set {DATA_DIR_ENV} to the data folder (fkp data download)"
)
EXPECTED_LENGTHS = {"training": 3462, "test": 770}


@pytest.fixture(scope="module", params=["training", "test"])
def dataset(request: pytest.FixtureRequest) -> FacialKeypointsDataset:
    return FacialKeypointsDataset(split=request.param)


@needs_data
def test_lengths(dataset: FacialKeypointsDataset) -> None:
    assert len(dataset) == EXPECTED_LENGTHS[dataset.split]
    assert dataset.keypoints.shape == (len(dataset), NUM_KEYPOINTS, 2)


@needs_data
def test_sample_types_and_shapes(dataset: FacialKeypointsDataset) -> None:
    sample = dataset[0]
    image, keypoints = sample["image"], sample["keypoints"]
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert keypoints.dtype == np.float32 and keypoints.shape == (NUM_KEYPOINTS, 2)
    assert isinstance(sample["name"], str) and sample["name"] == dataset.names[0]


@needs_data
def test_keypoints_lie_roughly_inside_their_images(dataset: FacialKeypointsDataset) -> None:
    indices = range(0, len(dataset), 7)
    sizes = []
    for index in indices:
        with Image.open(dataset.image_path(index)) as image:
            sizes.append(image.size)  # (width, height): x then y, like the keypoints
    sizes = np.array(sizes, dtype=np.float32)[:, None, :]  # (N, 1, 2)
    keypoints = dataset.keypoints[list(indices)]
    assert (keypoints > -0.15 * sizes).all() and (keypoints < 1.15 * sizes).all()  # a few faces touch the border
    inside = ((keypoints >= 0) & (keypoints <= sizes - 1)).all(axis=(1, 2))
    assert inside.mean() > 0.99


@needs_data
def test_raw_samples_are_copies_and_images_are_cached(dataset: FacialKeypointsDataset) -> None:
    sample = dataset.raw(1)
    sample["keypoints"][:] = 0
    sample["image"][:] = 0
    assert dataset.keypoints[1].any() and dataset[1]["image"].any()
    assert dataset.image(1) is dataset.image(1)


@needs_data
def test_transform_is_applied() -> None:
    dataset = FacialKeypointsDataset(
        split="test", transform=Compose([Grayscale(), FaceCrop(64), Normalize(), ToTensor()])
    )
    sample = dataset[0]
    assert tuple(sample["image"].shape) == (1, 64, 64)
    assert tuple(sample["keypoints"].shape) == (NUM_KEYPOINTS, 2)


@needs_data
def test_person_disjoint_split_on_the_training_names() -> None:
    names = FacialKeypointsDataset(split="training").names
    train, val = person_disjoint_split(names, val_fraction=0.1, seed=0)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(names)))
    assert {person_of(names[i]) for i in train}.isdisjoint(person_of(names[i]) for i in val)
    assert 0.03 < len(val) / len(names) < 0.2


def test_person_disjoint_split_on_made_up_names() -> None:
    names = [f"Person_{p}_{frame}.jpg" for p in range(20) for frame in range(p % 3 + 1)]
    train, val = person_disjoint_split(names, val_fraction=0.25, seed=3)
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(names)))
    assert {person_of(names[i]) for i in train}.isdisjoint(person_of(names[i]) for i in val)
    assert len({person_of(names[i]) for i in val}) == 5
    again, _ = person_disjoint_split(names, val_fraction=0.25, seed=3)
    assert np.array_equal(train, again)
    everyone, nobody = person_disjoint_split(names, val_fraction=0.0)
    assert everyone.tolist() == list(range(len(names))) and nobody.size == 0


def test_person_of() -> None:
    assert person_of("Aaron_Eckhart_11.jpg") == "Aaron_Eckhart"
    assert person_of("training/Madonna_0.jpg") == "Madonna"


def test_wrong_folder_raises_a_helpful_error(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="fkp data download") as error:
        FacialKeypointsDataset(tmp_path, split="training")
    assert str(tmp_path) in str(error.value)
    assert isinstance(error.value, FileNotFoundError)


def test_unknown_split_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split"):
        FacialKeypointsDataset(tmp_path, split="validation")  # type: ignore[arg-type]


def test_subsets_come_from_the_file_name_prefix():
    from fkp.data import subset_of

    assert subset_of("helen_test_296814969_3.jpg") == "helen"
    assert subset_of("lfpw_train_image_0006_1.jpg") == "lfpw"
    assert subset_of("afw_1051618982_1.jpg") == "afw"
    assert subset_of("Aaron_Eckhart_11.jpg") is None and subset_of("helen.jpg") is None


def test_mirror_asymmetry_is_zero_for_consistent_labels_and_grows_with_a_bias():
    from fkp.data import mirror_asymmetry
    from fkp.landmarks import MIRROR

    rng = np.random.default_rng(0)
    half = rng.uniform(-1, 1, size=(NUM_KEYPOINTS, 2))
    shape = (half + half[MIRROR] * [-1, 1]) / 2  # a mirror-symmetric mean face
    faces = shape[None] * rng.uniform(20, 40, size=(50, 1, 1)) + rng.uniform(50, 100, size=(50, 1, 2))
    assert mirror_asymmetry(faces) < 1e-9
    biased = faces.copy()
    biased[:, 0] += [5.0, 0.0]  # one jaw point always labelled too far right
    assert mirror_asymmetry(biased) > 0.001


def test_the_300w_crops_read_like_the_udacity_set(w300_dir):
    from fkp.data import mirror_asymmetry

    test = FacialKeypointsDataset(w300_dir, "test")
    training = FacialKeypointsDataset(w300_dir, "training")
    assert (len(training), len(test)) == (1964, 554)
    assert set(test.subsets()) == {"lfpw", "helen"} and set(training.subsets()) == {"lfpw", "helen", "afw"}
    sample = test[0]
    assert sample["image"].ndim == 3 and sample["keypoints"].shape == (NUM_KEYPOINTS, 2)
    assert mirror_asymmetry(training.keypoints) < 0.01  # flips are valid on 300-W


@needs_data
def test_the_udacity_labels_are_not_mirror_consistent():
    from fkp.data import mirror_asymmetry

    assert mirror_asymmetry(FacialKeypointsDataset(split="training").keypoints) > 0.015


def test_the_keypoints_csv_round_trips_and_names_a_bad_line(tmp_path) -> None:
    from fkp.keypoints_csv import KeypointsCSVError, read_keypoints_csv, write_keypoints_csv

    rng = np.random.default_rng(0)
    faces = {"b.jpg": rng.uniform(0, 200, (68, 2)), "a.jpg": rng.uniform(0, 200, (68, 2))}
    table = tmp_path / "t.csv"
    write_keypoints_csv(table, list(faces.items()))
    names, keypoints = read_keypoints_csv(table)
    assert names == ["a.jpg", "b.jpg"] and keypoints.shape == (2, 68, 2) and keypoints.dtype == np.float32
    np.testing.assert_allclose(keypoints[1], faces["b.jpg"], atol=1e-3)  # written to 3 decimals
    header, first, second = table.read_text().splitlines()
    for bad, message in [
        (second.replace("b.jpg", "../b.jpg"), "line 3: '../b.jpg' is not an image file name"),
        (second + ",1", "line 3: 138 fields, expected 137"),
        (second.replace(",", ",x", 1), "line 3: could not convert"),
    ]:
        table.write_text("\n".join([header, first, bad]) + "\n")
        with pytest.raises(KeypointsCSVError, match=message.replace("(", r"\(").replace(".", r"\.")):
            read_keypoints_csv(table)
