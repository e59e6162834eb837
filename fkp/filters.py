"""Face filters driven by keypoints: overlays (sunglasses, moustache, hat, crown), head-pose axes,
face blur, and the eye aspect ratio.

An overlay is placed with a *similarity transform* (rotation, uniform scale, translation) fitted by
least squares from the art's anchor points to target points on the face, so it follows a tilted,
near or far head; it is then warped into the photo and blended with its alpha channel in
premultiplied form (no dark fringes), clipped at the image borders. Notebook 4
(``4_Fun_with_Keypoints.ipynb``) builds this up from placing sunglasses by hand.

Every filter has the signature ``filter(image, keypoints, strength) -> image`` for one face
((68, 2) keypoints, pixels x then y); :func:`apply_filter` runs one by name over all the faces of a
photo. Images are (H, W, 3) uint8 RGB and are never modified in place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Literal

import cv2
import numpy as np

from fkp import art as artwork
from fkp.geometry import apply_affine
from fkp.landmarks import REGIONS
from fkp.pose import AXIS_LENGTH_MM, draw_pose_axes, estimate_head_pose

FitMethod = Literal["lstsq", "lmeds"]
FilterFunction = Callable[[np.ndarray, np.ndarray, float], np.ndarray]
"""``(image (H, W, 3) uint8 RGB, keypoints (68, 2) pixels x then y, strength in [0, 1]) -> new image``."""

EAR_THRESHOLD: Final[float] = 0.2
"""Eyes whose mean eye aspect ratio is above this count as open (Soukupova and Cech, 2016, use
0.2; open eyes in the training set have a median of 0.27)."""


# ----------------------------------------------------------------------------------------------
# Placing an overlay
# ----------------------------------------------------------------------------------------------


def similarity_transform(source: np.ndarray, target: np.ndarray, method: FitMethod = "lstsq") -> np.ndarray:
    """The similarity transform (rotation, uniform scale, translation) that best maps points onto points.

    ``lstsq`` solves the linear least-squares problem for ``[a, b, tx, ty]`` in
    ``x' = a x - b y + tx, y' = b x + a y + ty`` (exact for two points); ``lmeds`` calls
    ``cv2.estimateAffinePartial2D`` with least-median-of-squares, which ignores a wrong point or two
    when there are several (it falls back to ``lstsq`` if OpenCV finds no solution).

    Args:
        source: (K, 2) points, x then y (K >= 2).
        target: (K, 2) points they should go to, x then y.
        method: ``"lstsq"`` or ``"lmeds"``.

    Returns:
        (2, 3) float64 forward map ``[x', y'] = M @ [x, y, 1]`` (OpenCV's layout).

    Taught in notebook 4 (``4_Fun_with_Keypoints.ipynb``), section "Placement with a similarity transform".
    """
    source = np.asarray(source, np.float64).reshape(-1, 2)
    target = np.asarray(target, np.float64).reshape(-1, 2)
    if len(source) != len(target) or len(source) < 2:
        raise ValueError(f"need the same number (>= 2) of source and target points; got {len(source)}, {len(target)}")
    if method == "lmeds":
        matrix, _ = cv2.estimateAffinePartial2D(source, target, method=cv2.LMEDS)
        if matrix is not None:
            return matrix.astype(np.float64)
    elif method != "lstsq":
        raise ValueError(f"unknown method {method!r}; use 'lstsq' or 'lmeds'")
    x, y = source[:, 0], source[:, 1]
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    design = np.concatenate([np.stack([x, -y, ones, zeros], 1), np.stack([y, x, zeros, ones], 1)])  # (2K, 4)
    (a, b, tx, ty), *_ = np.linalg.lstsq(design, np.concatenate([target[:, 0], target[:, 1]]), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def blend_rgba(image: np.ndarray, rgba: np.ndarray, matrix: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """Warp an RGBA picture into an image with an affine map and blend it over with its alpha.

    Only the part of the image the warped picture covers is touched; parts that fall outside the
    image are clipped. Pixels under fully transparent art keep their exact values. The blend,
    ``out = a * colour + (1 - a) * image``, is written out in notebook 4; here it runs on colours
    premultiplied by alpha, so that warping does not darken the soft edges.

    Args:
        image: (H, W, 3) uint8 RGB.
        rgba: (h, w, 4) uint8 RGBA picture, straight alpha.
        matrix: (2, 3) map from picture pixels to image pixels (x, y).
        opacity: multiplies the picture's alpha, 0-1.

    Returns:
        A new (H, W, 3) uint8 RGB image.
    """
    result = np.array(image, dtype=np.uint8, copy=True)
    matrix = np.asarray(matrix, np.float64)
    opacity = float(np.clip(opacity, 0.0, 1.0))
    if opacity == 0.0:
        return result
    premultiplied: np.ndarray = rgba.astype(np.float32)
    premultiplied[..., :3] *= premultiplied[..., 3:] / 255
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:  # shrink with an area filter first: warpAffine's bilinear sampling would alias
        height, width = rgba.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        premultiplied = cv2.resize(premultiplied, size, interpolation=cv2.INTER_AREA)
        fx, fy = size[0] / width, size[1] / height
        # small-picture pixel x' sits at picture pixel (x' + 0.5) / fx - 0.5
        to_picture = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
        matrix = matrix @ to_picture
    height, width = premultiplied.shape[:2]
    right, bottom = width - 0.5, height - 0.5  # outer edges of the picture's corner pixels
    corners = apply_affine(np.array([[-0.5, -0.5], [right, -0.5], [-0.5, bottom], [right, bottom]]), matrix)
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 1, 0)
    x1 = min(int(np.ceil(corners[:, 0].max())) + 2, image.shape[1])
    y1 = min(int(np.ceil(corners[:, 1].max())) + 2, image.shape[0])
    if x1 <= x0 or y1 <= y0:  # entirely outside the image
        return result
    window = matrix.copy()
    window[:, 2] -= (x0, y0)
    warped = cv2.warpAffine(
        premultiplied, window, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    alpha = np.clip(warped[..., 3:] / 255 * opacity, 0, 1)
    region = result[y0:y1, x0:x1].astype(np.float32)
    blended = warped[..., :3] * opacity + region * (1 - alpha)
    result[y0:y1, x0:x1] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return result


def overlay_transform(keypoints: np.ndarray, art: artwork.OverlayArt, method: FitMethod = "lstsq") -> np.ndarray:
    """The (2, 3) map that carries ``art``'s anchors onto its targets on a face with ``keypoints`` (68, 2)."""
    return similarity_transform(art.anchors, art.target_points(keypoints), method)


def apply_overlay(
    image: np.ndarray, keypoints: np.ndarray, art: artwork.OverlayArt, opacity: float = 1.0, method: FitMethod = "lstsq"
) -> np.ndarray:
    """Place an overlay on one face.

    Args:
        image: (H, W, 3) uint8 RGB.
        keypoints: (68, 2) the face's keypoints in pixels, x then y.
        art: the overlay and its anchors (see :mod:`fkp.art`).
        opacity: 0 (invisible) to 1 (as drawn).
        method: how the transform is fitted (see :func:`similarity_transform`).

    Returns:
        A new (H, W, 3) uint8 RGB image.
    """
    return blend_rgba(image, art.rgba, overlay_transform(keypoints, art, method), opacity)


def pose_axes(image: np.ndarray, keypoints: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Head-pose axes from the nose tip, with the angles written above them; ``strength`` scales
    the axes' length (see :func:`fkp.pose.draw_pose_axes`)."""
    pose = estimate_head_pose(keypoints, image.shape[:2])
    return draw_pose_axes(image, pose, length=AXIS_LENGTH_MM * max(strength, 0.05))


# ----------------------------------------------------------------------------------------------
# Face blur
# ----------------------------------------------------------------------------------------------


def face_hull(keypoints: np.ndarray) -> np.ndarray:
    """Convex hull of the face outline (jaw and both brows).

    Args:
        keypoints: (68, 2) pixels, x then y.

    Returns:
        (M, 2) float32 hull vertices, x then y, in order around the hull.
    """
    outline = np.asarray(keypoints, np.float32)[REGIONS["jaw"].start : REGIONS["left_brow"].stop]
    return cv2.convexHull(outline).reshape(-1, 2)


def hull_coverage(hull: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Anti-aliased mask of a convex polygon: 1 inside, 0 outside, a one-pixel ramp across the edge.

    A pixel's weight is ``clip(0.5 + d, 0, 1)``, with d its signed distance (pixels, > 0 inside) to
    the nearest edge line, so no pixel whose centre lies more than half a pixel outside the polygon
    gets any weight.

    Args:
        hull: (M, 2) convex polygon vertices in order, x then y, in pixels of the mask.
        shape: (height, width) of the mask.

    Returns:
        (height, width) float32 weights in [0, 1].
    """
    start = np.asarray(hull, np.float64).reshape(-1, 2)
    edge = np.roll(start, -1, axis=0) - start
    normal = np.stack([-edge[:, 1], edge[:, 0]], axis=1) / np.maximum(np.linalg.norm(edge, axis=1, keepdims=True), 1e-9)
    inward = np.sign(((start.mean(axis=0) - start) * normal).sum(axis=1, keepdims=True))
    normal *= np.where(inward == 0, 1, inward)  # (M, 2) unit normals pointing into the polygon
    offset = (start * normal).sum(axis=1)  # (M,): d_i(p) = normal_i . p - offset_i
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    distance = np.full(shape, np.inf)
    for (nx, ny), c in zip(normal, offset):
        distance = np.minimum(distance, nx * xs + ny * ys - c)
    return np.clip(0.5 + distance, 0, 1).astype(np.float32)


def blur_face(image: np.ndarray, keypoints: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Blur (anonymise) the face inside the hull of its outline (jaw and brows).

    The Gaussian blur's sigma is ``strength`` times a tenth of the face width; at 1.0 the face is
    no longer recognisable. Pixels outside the hull are left as they are (the hull's edge is
    anti-aliased over one pixel, see :func:`hull_coverage`).

    Args:
        image: (H, W, 3) uint8 RGB.
        keypoints: (68, 2) pixels, x then y.
        strength: 0 (no change) to 1 (strong blur); larger values blur more.

    Returns:
        A new (H, W, 3) uint8 RGB image.
    """
    result = np.array(image, dtype=np.uint8, copy=True)
    hull = face_hull(keypoints)
    low, high = hull.min(axis=0), hull.max(axis=0)
    sigma = float(strength) * 0.1 * float(high[0] - low[0])
    if sigma < 0.3 or cv2.contourArea(hull) < 1.0:  # no blur asked for, or no face area
        return result
    margin = int(np.ceil(3 * sigma))
    x0, y0 = np.maximum(np.floor(low).astype(int) - margin, 0)
    x1 = min(int(np.ceil(high[0])) + margin + 1, image.shape[1])
    y1 = min(int(np.ceil(high[1])) + margin + 1, image.shape[0])
    if x1 <= x0 or y1 <= y0:
        return result
    region = result[y0:y1, x0:x1]
    blurred = cv2.GaussianBlur(region, (0, 0), sigma).astype(np.float32)
    weight = hull_coverage(hull - (x0, y0), region.shape[:2])[..., None]
    mixed = blurred * weight + region.astype(np.float32) * (1 - weight)
    result[y0:y1, x0:x1] = np.clip(np.round(mixed), 0, 255).astype(np.uint8)
    return result


# ----------------------------------------------------------------------------------------------
# Eye aspect ratio
# ----------------------------------------------------------------------------------------------


def _ear(eye: np.ndarray) -> float:
    """EAR of one eye's six points p1..p6 (corner, two upper lid points, corner, two lower lid points)."""
    p1, p2, p3, p4, p5, p6 = np.asarray(eye, np.float64)
    vertical = np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)
    return float(vertical / max(2 * np.linalg.norm(p1 - p4), 1e-9))


def eye_aspect_ratio(keypoints: np.ndarray) -> tuple[float, float]:
    """The eye aspect ratio (EAR) of each eye (Soukupova and Cech, 2016).

    ``EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|)`` over an eye's six points in order: the lid
    opening over the eye's width. About 0.25-0.35 for open eyes, near 0 for closed ones; it does not
    change with the face's size or in-plane rotation.

    Args:
        keypoints: (68, 2) pixels, x then y.

    Returns:
        (right eye EAR, left eye EAR); the subject's right eye is points 36-41.
    """
    keypoints = np.asarray(keypoints)
    return _ear(keypoints[REGIONS["right_eye"]]), _ear(keypoints[REGIONS["left_eye"]])


def eyes_open(keypoints: np.ndarray, threshold: float = EAR_THRESHOLD) -> bool:
    """Whether the eyes are open: the mean of both eyes' aspect ratios is above ``threshold``.

    Args:
        keypoints: (68, 2) pixels, x then y.
        threshold: see :data:`EAR_THRESHOLD`.
    """
    right, left = eye_aspect_ratio(keypoints)
    return (right + left) / 2 > threshold


def overlay_filter(art: artwork.OverlayArt | Callable[[], artwork.OverlayArt]) -> FilterFunction:
    """A filter function for any overlay (e.g. one from :func:`fkp.art.load_art`), or for a function
    that draws one on first use (the shipped art); strength is opacity."""

    def apply(image: np.ndarray, keypoints: np.ndarray, strength: float = 1.0) -> np.ndarray:
        return apply_overlay(image, keypoints, art if isinstance(art, artwork.OverlayArt) else art(), strength)

    return apply


# ----------------------------------------------------------------------------------------------
# The registry used by the command line and the notebooks
# ----------------------------------------------------------------------------------------------

MAX_STRENGTH: Final = 10.0
"""The largest ``strength`` :func:`apply_filter` takes: opacity stops at 1, and a blur of 10 (a sigma
of a face width) or axes 10 times their length are already past any use."""

FILTERS: Final[dict[str, FilterFunction]] = {
    "sunglasses": overlay_filter(artwork.sunglasses_art),
    "moustache": overlay_filter(artwork.moustache_art),
    "hat": overlay_filter(artwork.top_hat_art),
    "crown": overlay_filter(artwork.crown_art),
    "pose": pose_axes,
    "blur": blur_face,
}
"""Filter name -> filter function: the one table the command line's ``--filter``, the notebooks and
:func:`apply_filter` read. A new overlay is one drawing function in :mod:`fkp.art` and one entry
here (``overlay_filter(its_art)``); a new effect is any :data:`FilterFunction`."""
FILTER_NAMES: Final[tuple[str, ...]] = tuple(FILTERS)
"""The filters' names, in table order."""


def apply_filter(
    image: np.ndarray,
    faces: np.ndarray | Sequence[np.ndarray],
    which: str | FilterFunction,
    strength: float = 1.0,
) -> np.ndarray:
    """Apply one filter to every face in a photo.

    Args:
        image: (H, W, 3) uint8 RGB.
        faces: (N, 68, 2) keypoints of N faces (or a list of (68, 2) arrays), pixels x then y.
        which: a name from :data:`FILTER_NAMES`, or a :data:`FilterFunction` (e.g. from
            :func:`overlay_filter`).
        strength: passed to the filter (opacity, blur strength or axis length), usually 0-1, at
            most :data:`MAX_STRENGTH`.

    Returns:
        A new (H, W, 3) uint8 RGB image (an unchanged copy when there is no face).

    Raises:
        ValueError: an unknown filter name, or a strength outside [0, :data:`MAX_STRENGTH`].
    """
    if not 0.0 <= strength <= MAX_STRENGTH:  # also refuses NaN
        raise ValueError(f"strength must be between 0 and {MAX_STRENGTH:g}, got {strength}")
    if callable(which):
        function = which
    elif which in FILTERS:
        function = FILTERS[which]
    else:
        raise ValueError(f"unknown filter {which!r}; choose from {', '.join(FILTER_NAMES)}")
    result = np.array(image, dtype=np.uint8, copy=True)
    for keypoints in faces:
        result = function(result, np.asarray(keypoints), strength)
    return result
