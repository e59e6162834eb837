"""Matplotlib figures of faces and keypoints: one face, a grid of samples, the numbered 68-point
diagram, data-set statistics, and an ipywidgets browser (taught in ``1_Load_and_Visualize_Data.ipynb``).

Keypoints are (68, 2) arrays in pixels of the image they are drawn on, x then y (y down), unless a
function says otherwise. Images may be (H, W, 3) uint8 RGB, (H, W) float grey, or a (C, H, W) tensor.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fkp.geometry import keypoints_box
from fkp.landmarks import NUM_KEYPOINTS, OUTLINES, REGION_COLOURS, REGIONS, mean_shape_diagram

if TYPE_CHECKING:
    from fkp.data import FacialKeypointsDataset

_INNER_LIP = next(outline.points for outline in OUTLINES if outline.name == "inner_lip")
_MOUTH = REGIONS["mouth"]


def region_colour(region: str) -> tuple[float, float, float]:
    """Matplotlib's (r, g, b) in 0-1 of a region's colour in :data:`fkp.landmarks.REGION_COLOURS`."""
    red, green, blue = REGION_COLOURS[region]
    return (red / 255, green / 255, blue / 255)


GROUND_TRUTH_STYLE: dict[str, Any] = {"marker": "o", "c": "lime", "edgecolors": "black", "linewidths": 0.5}
"""Ground truth: green dots with a dark rim."""
PREDICTED_STYLE: dict[str, Any] = {"marker": "x", "c": "magenta", "linewidths": 1.2}
"""Predictions: magenta crosses."""


def _display_image(image: Any) -> tuple[np.ndarray, str | None]:
    """An image as an array that ``imshow`` takes, and the colour map it needs."""
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return array, ("gray" if array.ndim == 2 else None)


def _points(keypoints: Any) -> np.ndarray:
    array = keypoints.detach().cpu().numpy() if hasattr(keypoints, "detach") else np.asarray(keypoints)
    return array.reshape(-1, 2)  # (68, 2) or (136,) -> (68, 2)


def show_keypoints(
    image: Any,
    keypoints: Any | None = None,
    ax: Axes | None = None,
    predicted: Any | None = None,
    numbers: bool = False,
    title: str | None = None,
    marker_size: float = 14.0,
) -> Axes:
    """Draw a face with its keypoints.

    Args:
        image: (H, W, 3) uint8 RGB, (H, W) grey, or a (C, H, W) tensor.
        keypoints: ground truth, (68, 2) pixels of ``image``, x then y: green dots.
        ax: axes to draw on; a new figure when ``None``.
        predicted: predictions, (68, 2) pixels, x then y: magenta crosses. A legend tells them apart.
        numbers: write each ground-truth (else predicted) point's index next to it.
        title: axes title.
        marker_size: marker area in points squared (matplotlib's ``s``).

    Returns:
        The axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    array, cmap = _display_image(image)
    if array.ndim == 2:  # grey: fixed limits, so that brightness changes show (no auto-contrast)
        top = 255 if array.dtype == np.uint8 else 1.0
        ax.imshow(array, cmap=cmap, vmin=min(0, array.min()), vmax=max(top, array.max()))
    else:
        ax.imshow(array)
    labelled = []
    if keypoints is not None:
        style = {**GROUND_TRUTH_STYLE, "s": marker_size}
        labelled.append(ax.scatter(*_points(keypoints).T, label="ground truth", **style))
    if predicted is not None:
        style = {**PREDICTED_STYLE, "s": marker_size * 1.3}
        labelled.append(ax.scatter(*_points(predicted).T, label="predicted", **style))
    if numbers and labelled:
        source = keypoints if keypoints is not None else predicted
        for index, (x, y) in enumerate(_points(source)):
            ax.annotate(str(index), (x, y), xytext=(2, 2), textcoords="offset points", fontsize=6, color="yellow")
    if predicted is not None:
        ax.legend(handles=labelled, loc="lower right", fontsize="small")
    if title is not None:
        ax.set_title(title, fontsize="small")
    ax.axis("off")
    return ax


def show_sample_grid(
    samples: Sequence[dict[str, Any]] | FacialKeypointsDataset,
    indices: Sequence[int] | None = None,
    ncols: int = 4,
    numbers: bool = False,
    panel_size: float = 2.5,
    marker_size: float = 6.0,
) -> Figure:
    """A grid of faces with their keypoints, titled by file name.

    Args:
        samples: a list of sample dicts or a dataset (indexable, samples with ``"image"``,
            ``"keypoints"`` in pixels and optionally ``"name"``).
        indices: which samples; default the first ``2 * ncols``.
        ncols: panels per row.
        numbers: write the point indices.
        panel_size: inches per panel.
        marker_size: keypoint marker area (points squared).

    Returns:
        The figure.
    """
    if indices is None:
        indices = range(min(2 * ncols, len(samples)))
    indices = list(indices)
    nrows = max(1, -(-len(indices) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, indices):
        sample = samples[index]
        image, keypoints, name = sample["image"], sample["keypoints"], sample.get("name")
        show_keypoints(image, keypoints, ax=ax, numbers=numbers, title=name, marker_size=marker_size)
    fig.tight_layout()
    return fig


def show_transforms(
    sample: dict[str, Any], transforms: Sequence[Any], ncols: int = 4, panel_size: float = 2.4
) -> Figure:
    """One face before and after each transform, keypoints drawn on each result.

    Args:
        sample: a raw sample (``"image"`` (H, W, 3) uint8, ``"keypoints"`` (68, 2) pixels, x then y).
        transforms: geometric or colour transforms from :mod:`fkp.transforms` (not ``Normalize``),
            each applied to ``sample`` alone; their ``repr`` titles the panels.
        ncols: panels per row.
        panel_size: inches per panel.

    Returns:
        The figure; the first panel is the input.
    """
    panels = [("original", sample)] + [(repr(transform), transform(sample)) for transform in transforms]
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, result) in zip(axes.flat, panels):
        shape = "x".join(str(n) for n in result["image"].shape[:2])
        title = textwrap.fill(f"{title} -> {shape}", width=32)
        show_keypoints(result["image"], result["keypoints"], ax=ax, title=title, marker_size=8.0)
    fig.tight_layout()
    return fig


def _label_directions(points: np.ndarray) -> np.ndarray:
    """(68, 2) unit vectors (y down) pointing where each point's number goes: away from the centre of
    a closed outline, away from the middle of an open curve's chord, to the right of a near-vertical
    line (the nose bridge); the inner lip's corners point inwards, so that the lips' numbers stay apart."""
    directions = np.zeros_like(points, dtype=np.float64)
    for outline in OUTLINES:
        indices, closed = np.arange(outline.points.start, outline.points.stop), outline.closed
        part = points[indices].astype(np.float64)
        extent = np.ptp(part, axis=0)
        if extent[0] < 0.2 * extent[1]:
            directions[indices] = (1.0, 0.0)
            continue
        away = part - (part.mean(axis=0) if closed else (part[0] + part[-1]) / 2)
        directions[indices] = away / np.maximum(np.linalg.norm(away, axis=1, keepdims=True), 1e-12)
    inner_lip = np.arange(_INNER_LIP.start, _INNER_LIP.stop)
    for corner in inner_lip[[points[inner_lip, 0].argmin(), points[inner_lip, 0].argmax()]]:
        directions[corner] *= -1
    return directions


def _draw_layout(points: np.ndarray, ax: Axes, labelled: np.ndarray, fontsize: float) -> None:
    """Lines, coloured points and (for the indices in ``labelled``) numbers of the 68-point layout."""
    for outline in OUTLINES:
        indices = np.arange(outline.points.start, outline.points.stop)
        line = points[np.append(indices, indices[0]) if outline.closed else indices]
        ax.plot(*line.T, "-", color=region_colour(outline.region), linewidth=1, alpha=0.6)
    for region, span in REGIONS.items():
        label = f"{region} {span.start}-{span.stop - 1}"
        ax.scatter(points[span, 0], points[span, 1], s=22, color=region_colour(region), label=label, zorder=3)
    directions = _label_directions(points)
    for index in labelled:
        dx, dy = directions[index] * 0.9 * fontsize
        ax.annotate(
            str(index),
            points[index],
            xytext=(dx, -dy),
            textcoords="offset points",  # y down in data, up in points
            ha="center",
            va="center",
            fontsize=fontsize,
            zorder=4,
        )
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_numbered_diagram(keypoints: np.ndarray | None = None, ax: Axes | None = None, numbers: bool = True) -> Axes:
    """The 68-point layout: each region in its colour, joined by lines, each point with its index;
    the mouth's numbers are drawn in a zoomed inset on the right, where they do not overlap.

    The figure a learner uses to pick indices (e.g. 36 and 45, the outer eye corners).

    Args:
        keypoints: (68, 2) points, x then y, y down, in any units; default
            :func:`fkp.landmarks.mean_shape_diagram` (a schematic face in the unit box).
        ax: axes to draw on; a new figure when ``None``.
        numbers: write the point indices.

    Returns:
        The main axes (the inset is one of its children).
    """
    points = mean_shape_diagram() if keypoints is None else _points(keypoints).astype(np.float64)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 7))
    mouth = np.arange(_MOUTH.start, _MOUTH.stop)
    all_points = np.arange(len(points))
    outside_mouth = all_points[(all_points < _MOUTH.start) | (all_points >= _MOUTH.stop)]
    _draw_layout(points, ax, outside_mouth if numbers else all_points[:0], 8)
    margin = 0.06 * float(np.ptp(points, axis=0).max())
    ax.set_xlim(points[:, 0].min() - margin, points[:, 0].max() + margin)
    ax.set_ylim(points[:, 1].max() + margin, points[:, 1].min() - margin)  # y down, as in images
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", title="region, points")
    ax.set_title(f"The {NUM_KEYPOINTS}-point layout (right = the subject's right)")
    if numbers:
        zoom = ax.inset_axes((1.02, 0.0, 0.6, 0.45))
        _draw_layout(points, zoom, mouth, 8)
        low, high = points[mouth].min(axis=0), points[mouth].max(axis=0)
        pad = 0.12 * (high - low).max()
        zoom.set_xlim(low[0] - pad, high[0] + pad)
        zoom.set_ylim(high[1] + pad, low[1] - pad)
        zoom.set_title("mouth, zoomed", fontsize="small")
        ax.indicate_inset((*(low - pad), *(high - low + 2 * pad)), edgecolor="grey")  # the zoomed area
    return ax


def face_box_coordinates(keypoints: np.ndarray) -> np.ndarray:
    """Keypoints relative to their own bounding box.

    Args:
        keypoints: (N, 68, 2) pixels, x then y.

    Returns:
        (N, 68, 2): 0 at the box's left/top, 1 at its right/bottom, x then y.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    box = keypoints_box(keypoints)  # (N, 4) x, y, w, h
    return (keypoints - box[:, None, :2]) / box[:, None, 2:]


def _image_sizes(dataset: FacialKeypointsDataset) -> np.ndarray:
    """(N, 2) image (width, height) from the file headers, without decoding the pixels."""
    from PIL import Image

    sizes = []
    for index in range(len(dataset)):
        with Image.open(dataset.image_path(index)) as image:
            sizes.append(image.size)
    return np.array(sizes, dtype=np.float64)


def plot_dataset_statistics(dataset: FacialKeypointsDataset) -> Figure:
    """Four panels about one split: image sizes, face sizes against image sizes, where each point lies
    in its face box, and how much each point varies.

    Args:
        dataset: a :class:`fkp.data.FacialKeypointsDataset` (its ``keypoints`` and image files are read;
            no image is decoded).

    Returns:
        The figure.
    """
    sizes = _image_sizes(dataset)  # (N, 2) width, height
    boxes = keypoints_box(dataset.keypoints)  # (N, 4) x, y, w, h
    relative = face_box_coordinates(dataset.keypoints)
    fig, axes = plt.subplots(2, 2, figsize=(11, 9))

    ax = axes[0, 0]
    ax.scatter(sizes[:, 0], sizes[:, 1], s=4, alpha=0.4)
    ax.set(xlabel="width (px)", ylabel="height (px)", title=f"Image sizes ({len(dataset)} images)")

    ax = axes[0, 1]
    face_side, image_side = boxes[:, 2:].max(axis=1), sizes.max(axis=1)
    ax.scatter(image_side, face_side, s=4, alpha=0.4)
    ratio = float(np.median(face_side / image_side))
    ax.axline((0, 0), slope=ratio, color="black", linewidth=0.8, label=f"median ratio {ratio:.2f}")
    ax.set(xlabel="image's larger side (px)", ylabel="face box's larger side (px)")
    ax.set_title("Face sizes (box around the keypoints)")
    ax.legend(fontsize="small")

    ax = axes[1, 0]
    shown = relative[:: max(1, len(relative) // 500)]  # at most ~500 faces keep the figure light
    for region, indices in REGIONS.items():
        ax.scatter(*shown[:, indices].reshape(-1, 2).T, s=1, alpha=0.1, color=region_colour(region))
    ax.scatter(*relative.mean(axis=0).T, s=8, color="black", label="mean shape (all faces)")
    ax.set(xlim=(-0.05, 1.05), ylim=(1.05, -0.05), aspect="equal", title="Keypoints in their face box (0-1)")
    ax.legend(fontsize="small", loc="lower right")

    ax = axes[1, 1]
    spread = np.linalg.norm(relative.std(axis=0), axis=1)  # (68,) std of each point, face-box units
    for region, indices in REGIONS.items():
        ax.bar(np.arange(indices.start, indices.stop), spread[indices], color=region_colour(region), label=region)
    ax.set(xlabel="point index", ylabel="std (face-box units)", ylim=(0, 1.4 * spread.max()))  # room for the legend
    ax.set_title("Spread of each point")
    ax.legend(fontsize="small", ncols=2)
    fig.tight_layout()
    return fig


def browse_samples(dataset: Sequence[dict[str, Any]] | FacialKeypointsDataset, numbers: bool = False) -> Any:
    """An ipywidgets browser: a slider over the samples and a check box for the point indices.

    Args:
        dataset: indexable samples with ``"image"``, ``"keypoints"`` (pixels) and optionally ``"name"``.
        numbers: initial state of the check box (ticked, the picture is drawn twice as large, so that the
            point numbers can be read).

    Returns:
        The widget (display it, or let it be a cell's value).
    """
    import ipywidgets as widgets

    def draw(index: int, show_numbers: bool) -> None:
        sample = dataset[index]
        _, ax = plt.subplots(figsize=(8, 8) if show_numbers else (4, 4))  # point numbers need room to be read
        show_keypoints(sample["image"], sample["keypoints"], ax=ax, numbers=show_numbers, title=sample.get("name"))
        plt.show()

    return widgets.interactive(
        draw,
        index=widgets.IntSlider(value=0, min=0, max=len(dataset) - 1, description="sample"),
        show_numbers=widgets.Checkbox(value=numbers, description="point numbers"),
    )
