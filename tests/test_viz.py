"""Light checks that the figures draw with the Agg backend and return figures / axes."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fkp.landmarks import NUM_KEYPOINTS, REGIONS, mean_shape_diagram  # noqa: E402
from fkp.utils import DATA_DIR_ENV  # noqa: E402
from fkp.viz import (  # noqa: E402
    browse_samples,
    face_box_coordinates,
    plot_dataset_statistics,
    plot_numbered_diagram,
    show_keypoints,
    show_sample_grid,
    show_transforms,
)


def fake_sample(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    keypoints = (mean_shape_diagram() * 80 + 10 + rng.normal(0, 1, (NUM_KEYPOINTS, 2))).astype(np.float32)
    image = rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)
    return {"image": image, "keypoints": keypoints, "name": f"face_{seed}.jpg"}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_show_keypoints_with_predictions_has_a_legend() -> None:
    sample = fake_sample()
    ax = show_keypoints(sample["image"], sample["keypoints"], predicted=sample["keypoints"] + 2, numbers=True)
    assert isinstance(ax, Axes)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["ground truth", "predicted"]
    assert len(ax.texts) == NUM_KEYPOINTS


def test_show_keypoints_takes_grey_tensors() -> None:
    sample = fake_sample()
    _, ax = plt.subplots()
    image = torch.rand(1, 100, 100)
    assert show_keypoints(image, torch.from_numpy(sample["keypoints"]), ax=ax) is ax
    assert ax.get_legend() is None


def test_show_sample_grid() -> None:
    samples = [fake_sample(seed) for seed in range(5)]
    fig = show_sample_grid(samples, ncols=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    assert fig.axes[0].get_title() == "face_0.jpg"


def test_numbered_diagram_numbers_every_point() -> None:
    ax = plot_numbered_diagram()
    assert isinstance(ax, Axes)
    texts = [text for axes in [ax, *ax.child_axes] for text in axes.texts]  # the mouth is in a zoomed inset
    assert sorted(int(text.get_text()) for text in texts) == list(range(NUM_KEYPOINTS))
    assert len(ax.get_legend().get_texts()) == len(REGIONS)
    assert ax.yaxis_inverted()  # y down, as in images
    assert len(plot_numbered_diagram(fake_sample()["keypoints"], numbers=False).texts) == 0


def test_face_box_coordinates_span_the_unit_box() -> None:
    relative = face_box_coordinates(np.stack([fake_sample(seed)["keypoints"] for seed in range(3)]))
    assert relative.shape == (3, NUM_KEYPOINTS, 2)
    np.testing.assert_allclose(relative.min(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(relative.max(axis=1), 1, atol=1e-6)


def test_browse_samples_builds_a_widget() -> None:
    widget = browse_samples([fake_sample(seed) for seed in range(3)])
    slider, checkbox = widget.children[:2]
    assert (slider.min, slider.max) == (0, 2)
    assert checkbox.value is False


def test_browse_samples_draws_the_point_numbers_large_enough_to_read() -> None:
    widget = browse_samples([fake_sample(seed) for seed in range(3)])
    plt.close("all")
    widget.children[1].value = True  # tick "point numbers": the widget redraws
    assert tuple(plt.gcf().get_size_inches()) == (8.0, 8.0)
    plt.close("all")


needs_data = pytest.mark.skipif(
    not os.environ.get(DATA_DIR_ENV), reason=f"set {DATA_DIR_ENV} to the data folder (fkp data download)"
)


@needs_data
def test_dataset_statistics() -> None:
    from fkp.data import FacialKeypointsDataset

    fig = plot_dataset_statistics(FacialKeypointsDataset(split="test"))
    assert isinstance(fig, Figure) and len(fig.axes) == 4


def test_show_transforms_draws_one_panel_per_transform() -> None:
    from fkp.transforms import FaceCrop, RandomFaceCrop

    fig = show_transforms(fake_sample(), [RandomFaceCrop(64, flip=1.0), FaceCrop(64)], ncols=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert fig.axes[0].get_title() == "original -> 100x100"
    assert fig.axes[2].get_title().startswith("FaceCrop(")
