"""Box maths shared by the detectors, the tracker and the evaluation: overlap, suppression, the
left-to-right order, and searching a big photo on a scaled-down copy.

Boxes are (N, 4) arrays ``x, y, w, h`` in pixels of one image.
"""

from __future__ import annotations

import cv2
import numpy as np


def box_overlap(boxes_a: np.ndarray, boxes_b: np.ndarray, over: str = "union") -> np.ndarray:
    """Pairwise overlap of two sets of boxes.

    Args:
        boxes_a: (N, 4) x, y, w, h.
        boxes_b: (M, 4) x, y, w, h.
        over: ``"union"`` for intersection over union (IoU), ``"min"`` for intersection over the
            smaller box's area (1.0 when one box lies inside the other).

    Returns:
        (N, M) float array in [0, 1].
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    ax0, ay0, ax1, ay1 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    inter = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None) * np.clip(
        np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None
    )
    area_a, area_b = a[:, 2:3] * a[:, 3:4], b[:, 2] * b[:, 3]
    if over == "union":
        denominator = area_a + area_b - inter
    elif over == "min":
        denominator = np.minimum(area_a, area_b)
    else:
        raise ValueError(f"over must be 'union' or 'min', got {over!r}")
    return np.divide(inter, denominator, out=np.zeros_like(inter), where=denominator > 0)


def merge_overlapping(boxes: np.ndarray, scores: np.ndarray | None = None, overlap: float = 0.5) -> np.ndarray:
    """Non-maximum suppression for face boxes: of boxes that overlap, keep the best one.

    Two boxes overlap when their intersection covers at least ``overlap`` of the smaller box, so a
    small box nested inside a face's box is merged into it, as are near-duplicates.

    Args:
        boxes: (N, 4) x, y, w, h.
        scores: (N,) higher is better; None ranks by box area.
        overlap: fraction of the smaller box, in (0, 1].

    Returns:
        (K,) int indices of the kept boxes, best first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    rank = boxes[:, 2] * boxes[:, 3] if scores is None else np.asarray(scores, dtype=np.float64)
    order = np.lexsort((-boxes[:, 2] * boxes[:, 3], -rank))  # best score first, larger box on ties
    overlaps = box_overlap(boxes, boxes, over="min")
    kept: list[int] = []
    for index in order:
        if all(overlaps[index, k] < overlap for k in kept):
            kept.append(int(index))
    return np.array(kept, dtype=np.int64)


def left_to_right(boxes: np.ndarray) -> np.ndarray:
    """The order that sorts boxes left to right, then top to bottom.

    Args:
        boxes: (N, 4) x, y, w, h (only x and y are read).

    Returns:
        (N,) int indices: ``boxes[left_to_right(boxes)]`` is sorted by x, ties by y.
    """
    boxes = np.asarray(boxes).reshape(-1, 4)
    return np.lexsort((boxes[:, 1], boxes[:, 0]))


def shrink_to_max_side(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """A copy of ``image`` whose longer side is at most ``max_side`` pixels, for a detector to search.

    Boxes and points found on the copy are in the image's pixels once divided by the returned scale.

    Args:
        image: (H, W) or (H, W, C) uint8.
        max_side: the longest side allowed; None keeps any size.

    Returns:
        The image itself (when small enough) or its copy resized with area averaging, and the scale
        from the image to it (1.0 when unchanged, else ``max_side / max(H, W)``).
    """
    height, width = image.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return image, 1.0
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale
