"""Overlay art for the face filters, drawn by code: sunglasses, a moustache, a top hat and a crown.

Each piece is an :class:`OverlayArt`: an RGBA picture plus K *anchor* points in the picture's pixels
and the K *target* points on a face that those anchors go to (keypoint indices, or a rule that
computes the targets from the 68 keypoints). :func:`fkp.filters.apply_overlay` fits the similarity
transform that carries the anchors onto the targets and blends the picture into the photo.

Nothing is copied from elsewhere: every piece is drawn here with OpenCV's polygon, ellipse and line
calls on a canvas :data:`SUPERSAMPLE` times larger than the result, composited with the Porter-Duff
"over" rule in premultiplied alpha, and then averaged down (``cv2.INTER_AREA``), which gives smooth,
anti-aliased edges without dark fringes. Your own RGBA PNG with anchor points works too
(:func:`load_art`). Notebook 4 (``4_Fun_with_Keypoints.ipynb``) explains RGBA and the alpha channel.

Coordinates are pixels, x then y, y pointing down; pixel centres sit at integer coordinates.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fkp.geometry import face_frame
from fkp.images import load_image_rgba
from fkp.landmarks import NUM_KEYPOINTS, REGIONS, region_centre

SUPERSAMPLE = 4
"""Art is drawn this many times larger than its final size, then averaged down."""
_SHIFT = 4  # fractional bits of OpenCV drawing coordinates (1/16 pixel)

TargetRule = Callable[[np.ndarray], np.ndarray]
"""A rule ``(68, 2) keypoints -> (K, 2) target points``, pixels x then y."""


@dataclass(frozen=True, eq=False)
class OverlayArt:
    """A picture to place on a face, and where on the face it goes.

    Attributes:
        rgba: (H, W, 4) uint8 RGBA picture with straight (not premultiplied) alpha; 0 is transparent.
        anchors: (K, 2) float32 anchor points in the picture's pixels, x then y (K >= 2; they may lie
            outside the picture).
        targets: where the anchors go on a face: K keypoint indices (0-67), or a :data:`TargetRule`
            that returns the K target points from a face's keypoints.
        name: a short label.
    """

    rgba: np.ndarray
    anchors: np.ndarray
    targets: Sequence[int] | TargetRule
    name: str = "custom"
    _indices: np.ndarray | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        rgba = np.asarray(self.rgba)
        if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
            raise ValueError(f"rgba must be (H, W, 4) uint8; got {rgba.shape} {rgba.dtype}")
        anchors = np.array(self.anchors, dtype=np.float32).reshape(-1, 2)  # copies: freezing them is safe
        if len(anchors) < 2:
            raise ValueError("an overlay needs at least 2 anchor points")
        indices = None
        if not callable(self.targets):
            indices = np.asarray(self.targets, dtype=np.int64).reshape(-1)
            if len(indices) != len(anchors):
                raise ValueError(f"{len(anchors)} anchors but {len(indices)} keypoint indices")
            if indices.min() < 0 or indices.max() >= NUM_KEYPOINTS:
                raise ValueError(f"keypoint indices must lie in 0..{NUM_KEYPOINTS - 1}")
        rgba = np.array(rgba, order="C", copy=True)
        rgba.flags.writeable = False
        anchors.flags.writeable = False
        object.__setattr__(self, "rgba", rgba)
        object.__setattr__(self, "anchors", anchors)
        object.__setattr__(self, "_indices", indices)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the picture in pixels."""
        return self.rgba.shape[1], self.rgba.shape[0]

    def target_points(self, keypoints: np.ndarray) -> np.ndarray:
        """The points on a face where the anchors go.

        Args:
            keypoints: (68, 2) one face's keypoints in pixels, x then y.

        Returns:
            (K, 2) float64 target points in pixels, x then y, one per anchor.
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)
        if self._indices is not None:
            return keypoints[self._indices]
        points = np.asarray(self.targets(keypoints), dtype=np.float64).reshape(-1, 2)  # type: ignore[operator]
        if len(points) != len(self.anchors):
            raise ValueError(f"target rule gave {len(points)} points for {len(self.anchors)} anchors")
        return points


# ----------------------------------------------------------------------------------------------
# Target rules: where on a face each piece goes
# ----------------------------------------------------------------------------------------------

EYE_HALF_WIDTH = 0.19
"""Half the width of an eye (corner to corner) as a fraction of the distance between the two eye
centres (median over the training set: 0.385 / 2)."""


def eye_targets(keypoints: np.ndarray) -> np.ndarray:
    """Targets for sunglasses: both eye centres, then the four eye corners.

    Returns:
        (6, 2): right eye centre, left eye centre, points 36, 39, 42, 45 (outer right, inner right,
        inner left, outer left corners), pixels x then y.
    """
    centres = [region_centre(keypoints, "right_eye"), region_centre(keypoints, "left_eye")]
    corners = [keypoints[REGIONS["right_eye"].start], keypoints[REGIONS["right_eye"].start + 3]]
    corners += [keypoints[REGIONS["left_eye"].start], keypoints[REGIONS["left_eye"].start + 3]]
    return np.stack(centres + corners)


def forehead_targets(lift: float, half_width: float) -> TargetRule:
    """A rule for headwear: three points on a line across the forehead.

    Args:
        lift: how far above the centre of the brows the line runs, in eye distances.
        half_width: half the line's length, in eye distances.

    Returns:
        A rule giving (3, 2) points: the line's end on the subject's right (image left), its middle,
        and its end on the subject's left.
    """

    def rule(keypoints: np.ndarray) -> np.ndarray:
        frame = face_frame(keypoints)
        x_axis, up, distance = frame.x_axis, -frame.y_axis, float(frame.scale)
        brows = keypoints[REGIONS["right_brow"].start : REGIONS["left_brow"].stop].mean(axis=0)
        middle = brows + up * lift * distance
        side = x_axis * half_width * distance
        return np.stack([middle - side, middle, middle + side])

    return rule


# Moustache targets: nose base (33), top of the upper lip (51), mouth corners (48, 54).
MOUSTACHE_POINTS: tuple[int, ...] = (
    REGIONS["nose"].start + 6,
    REGIONS["mouth"].start + 3,
    REGIONS["mouth"].start,
    REGIONS["mouth"].start + 6,
)


# ----------------------------------------------------------------------------------------------
# A small supersampled RGBA canvas
# ----------------------------------------------------------------------------------------------

Colour = tuple[float, float, float] | np.ndarray


class _Canvas:
    """An RGBA canvas in premultiplied float32, ``SUPERSAMPLE`` times the final size.

    Shapes are given in final-size pixel coordinates; each is drawn as a coverage mask and composited
    "over" what is already there, with its own colour and opacity.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        shape = (height * SUPERSAMPLE, width * SUPERSAMPLE)
        self.premultiplied = np.zeros((*shape, 3), np.float32)
        self.alpha = np.zeros(shape, np.float32)

    def _points(self, points: np.ndarray) -> np.ndarray:
        # final pixel centre x -> supersampled pixel centre (x + 0.5) * S - 0.5, in 1/16 pixels
        scaled = (np.asarray(points, np.float64) + 0.5) * SUPERSAMPLE - 0.5
        return np.round(scaled * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)

    def _mask(self) -> np.ndarray:
        return np.zeros(self.alpha.shape, np.uint8)

    def polygon(self, points: np.ndarray) -> np.ndarray:
        """Coverage (float32 0-1, supersampled) of a filled polygon given by (N, 2) points."""
        mask = self._mask()
        cv2.fillPoly(mask, [self._points(points)], 255, cv2.LINE_AA, _SHIFT)
        return mask.astype(np.float32) / 255

    def polyline(self, points: np.ndarray, thickness: float, closed: bool = False) -> np.ndarray:
        """Coverage of a polyline of the given thickness (final pixels) through (N, 2) points."""
        mask = self._mask()
        width = max(1, round(thickness * SUPERSAMPLE))
        cv2.polylines(mask, [self._points(points)], closed, 255, width, cv2.LINE_AA, _SHIFT)
        return mask.astype(np.float32) / 255

    def ellipse(self, centre: tuple[float, float], axes: tuple[float, float], angle: float = 0.0) -> np.ndarray:
        """Coverage of a filled ellipse: centre, semi-axes (final pixels), rotation in degrees."""
        return self.polygon(ellipse_points(centre, axes, angle))

    def paint(self, coverage: np.ndarray, colour: Colour, opacity: float = 1.0) -> None:
        """Composite ``colour`` (RGB 0-255, or an array broadcastable to the canvas, e.g. a vertical
        gradient of shape (H*S, 1, 3)) over the canvas where ``coverage`` says, times ``opacity``."""
        rows = np.flatnonzero(coverage.any(axis=1))
        cols = np.flatnonzero(coverage.any(axis=0))
        if len(rows) == 0:
            return
        window = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        colour_field = np.broadcast_to(np.asarray(colour, np.float32), self.premultiplied.shape)[window]
        a = coverage[window] * opacity
        self.premultiplied[window] = colour_field * a[..., None] + self.premultiplied[window] * (1 - a[..., None])
        self.alpha[window] = a + self.alpha[window] * (1 - a)

    def vertical_gradient(self, top_y: float, bottom_y: float, top: Colour, bottom: Colour) -> np.ndarray:
        """A colour field (H*S, 1, 3) going from ``top`` at ``top_y`` to ``bottom`` at ``bottom_y``."""
        y = (np.arange(self.alpha.shape[0]) + 0.5) / SUPERSAMPLE - 0.5
        t = np.clip((y - top_y) / max(bottom_y - top_y, 1e-9), 0, 1)[:, None, None]
        return (np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t).astype(np.float32)

    def to_rgba(self) -> np.ndarray:
        """Average down to the final size and return (H, W, 4) uint8 RGBA with straight alpha."""
        size = (self.width, self.height)
        premultiplied = cv2.resize(self.premultiplied, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(self.alpha, size, interpolation=cv2.INTER_AREA)
        rgb = premultiplied / np.maximum(alpha, 1e-6)[..., None]
        rgba = np.clip(np.round(np.dstack([rgb, alpha * 255])), 0, 255).astype(np.uint8)
        rgba[rgba[..., 3] == 0] = 0  # fully transparent: no stray colour
        return rgba


def ellipse_points(
    centre: tuple[float, float], axes: tuple[float, float], angle: float = 0.0, n: int = 96
) -> np.ndarray:
    """(n, 2) points around an ellipse: centre (x, y), semi-axes (a, b), rotation in degrees."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = axes[0] * np.cos(t), axes[1] * np.sin(t)
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    return np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)


def bezier(
    p0: Sequence[float], p1: Sequence[float], p2: Sequence[float], p3: Sequence[float], n: int = 48
) -> np.ndarray:
    """(n, 2) points along the cubic Bezier curve with control points p0..p3 (each x, y)."""
    t = np.linspace(0, 1, n)[:, None]
    p = [np.asarray(q, np.float64) for q in (p0, p1, p2, p3)]
    return (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]


def stroke_outline(centreline: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Outline polygon of a brush stroke: a centreline (N, 2) with a width per point (N,)."""
    tangent = np.gradient(centreline, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) * (widths[:, None] / 2)
    return np.concatenate([centreline + normal, (centreline - normal)[::-1]])


def _lens_outline(centre: tuple[float, float], half_width: float, half_height: float, n: int = 96) -> np.ndarray:
    """A wayfarer-like lens: a superellipse, a little wider at the top, its centroid at ``centre``."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    power = 2 / 3.2
    x = np.sign(np.cos(t)) * np.abs(np.cos(t)) ** power
    y = np.sign(np.sin(t)) * np.abs(np.sin(t)) ** power
    x = x * (1 - 0.10 * y)  # y = -1 at the top: 10% wider there, 10% narrower at the bottom
    points = np.stack([x * half_width, y * half_height], axis=1)
    moments = cv2.moments(points.astype(np.float32))
    centroid = np.array([moments["m10"], moments["m01"]]) / moments["m00"]
    return points - centroid + np.asarray(centre)


# ----------------------------------------------------------------------------------------------
# The pieces
# ----------------------------------------------------------------------------------------------

BLACK = (18.0, 18.0, 22.0)


@functools.cache
def sunglasses_art() -> OverlayArt:
    """Dark wayfarer-style sunglasses, 440 x 170 pixels.

    Anchors: the two lens centroids (which go to the eye centres) and, on the line through them, a
    point an eye's half-width either side of each (which go to the eye corners 36, 39, 42, 45).
    The lenses are 88% opaque, so the eyes show through a little; the frame is opaque.
    """
    width, height, spacing = 440, 170, 200.0
    canvas = _Canvas(width, height)
    centres = [(width / 2 - spacing / 2, 82.0), (width / 2 + spacing / 2, 82.0)]
    lenses = [_lens_outline(c, 80, 54) for c in centres]
    frame_outline = [_lens_outline(c, 92, 66) for c in centres]
    # temples (the hinges seen from the front) and the bridge
    for side in (-1, 1):
        x0 = width / 2 + side * (spacing / 2 + 88)
        hinge = np.array([[x0, 38], [x0 + side * 26, 35], [x0 + side * 26, 50], [x0, 58]])
        canvas.paint(canvas.polygon(hinge), BLACK)
    bridge = bezier((width / 2 - 24, 56), (width / 2 - 10, 40), (width / 2 + 10, 40), (width / 2 + 24, 56))
    canvas.paint(canvas.polyline(bridge, 12), BLACK)
    for outline in frame_outline:
        canvas.paint(canvas.polygon(outline), BLACK)
    tint = canvas.vertical_gradient(30, 136, (22, 26, 48), (78, 88, 118))
    for lens, (cx, cy) in zip(lenses, centres):
        lens_cover = canvas.polygon(lens)
        # cut the lens out of the frame first, so the tint is not laid over opaque black
        canvas.premultiplied *= (1 - lens_cover)[..., None]
        canvas.alpha *= 1 - lens_cover
        canvas.paint(lens_cover, tint, 0.88)
        glare = canvas.ellipse((cx - 30, cy - 22), (34, 9), -28) * lens_cover
        canvas.paint(glare, (255, 255, 255), 0.30)
    rgba = canvas.to_rgba()
    offset = EYE_HALF_WIDTH * spacing
    anchors = [centres[0], centres[1]]
    anchors += [(centres[0][0] - offset, centres[0][1]), (centres[0][0] + offset, centres[0][1])]
    anchors += [(centres[1][0] - offset, centres[1][1]), (centres[1][0] + offset, centres[1][1])]
    return OverlayArt(rgba, np.array(anchors), eye_targets, name="sunglasses")


@functools.cache
def moustache_art() -> OverlayArt:
    """A curled handlebar moustache, 300 x 110 pixels.

    Anchors: the nose base (33) above the middle, the top of the upper lip (51) at the middle of the
    lower edge, and the mouth corners (48, 54) under the two halves.
    """
    width, height = 300, 110
    cx = width / 2
    canvas = _Canvas(width, height)
    brown = (62.0, 40.0, 26.0)
    for side in (-1, 1):
        line = bezier((cx, 34), (cx + side * 60, 20), (cx + side * 112, 92), (cx + side * 140, 26), n=64)
        t = np.linspace(0, 1, len(line))
        widths = 44 * (1 - t) ** 0.9 + 3
        body = canvas.polygon(stroke_outline(line, widths))
        canvas.paint(body, brown)
        curl = bezier(line[-1], (cx + side * 146, 12), (cx + side * 128, 6), (cx + side * 124, 18), n=16)
        canvas.paint(canvas.polyline(curl, 4), brown)
        # a few lighter hairs along the stroke for texture
        for k, offset in enumerate((-10, -2, 7)):
            hair = line[4:-14] + np.array([0, offset])
            canvas.paint(canvas.polyline(hair, 1.5) * body, (110, 78, 52), 0.55 - 0.1 * k)
    canvas.paint(canvas.ellipse((cx, 35), (26, 20)), brown)  # join the halves under the nose
    canvas.paint(canvas.polyline(np.array([[cx, 22], [cx, 44]]), 1.5), (40, 25, 16), 0.5)
    anchors = np.array([[cx, 5], [cx, 50], [cx - 82, 75], [cx + 82, 75]])
    return OverlayArt(canvas.to_rgba(), anchors, MOUSTACHE_POINTS, name="moustache")


@functools.cache
def top_hat_art() -> OverlayArt:
    """A black top hat with a red band, 360 x 320 pixels.

    Anchors: the ends and the middle of the brim's centre line, which go to a line across the upper
    forehead (:func:`forehead_targets` with ``lift=0.75``, ``half_width=1.35`` eye distances).
    """
    width, height = 360, 320
    cx, brim_y = width / 2, 280.0
    canvas = _Canvas(width, height)
    body = np.array([[cx - 95, brim_y], [cx - 85, 32], [cx + 85, 32], [cx + 95, brim_y]])
    felt = canvas.vertical_gradient(20, brim_y, (42, 42, 50), (14, 14, 18))
    canvas.paint(canvas.polygon(body), felt)
    canvas.paint(canvas.ellipse((cx, 32), (85, 15)), (52, 52, 60))
    band = np.array([[cx - 93, brim_y - 12], [cx - 91, brim_y - 58], [cx + 91, brim_y - 58], [cx + 93, brim_y - 12]])
    canvas.paint(canvas.polygon(band), (160, 24, 34))
    canvas.paint(canvas.polyline(np.array([[cx - 60, 50], [cx - 66, brim_y - 70]]), 10), (255, 255, 255), 0.12)
    canvas.paint(canvas.ellipse((cx, brim_y), (176, 26)), (26, 26, 32))
    canvas.paint(canvas.ellipse((cx, brim_y - 5), (150, 13)), (10, 10, 12), 0.6)
    anchors = np.array([[cx - 176, brim_y], [cx, brim_y], [cx + 176, brim_y]])
    return OverlayArt(canvas.to_rgba(), anchors, forehead_targets(lift=0.75, half_width=1.35), name="hat")


@functools.cache
def crown_art() -> OverlayArt:
    """A golden crown with jewels, 320 x 220 pixels.

    Anchors: the ends and the middle of the band's lower edge, which go to a line across the forehead
    (:func:`forehead_targets` with ``lift=0.6``, ``half_width=1.05`` eye distances).
    """
    width, height = 320, 220
    canvas = _Canvas(width, height)
    left, right, band_top, band_bottom = 20.0, 300.0, 150.0, 200.0
    gold = canvas.vertical_gradient(20, band_bottom, (250, 214, 90), (196, 140, 30))
    tips_x = np.linspace(left, right, 5)
    top = [(left, band_top)]
    for i, x in enumerate(tips_x):
        top.append((x, 28.0 if i % 2 == 0 else 40.0))
        if i < len(tips_x) - 1:
            top.append(((x + tips_x[i + 1]) / 2, 112.0))
    top.append((right, band_top))
    outline = np.array(top + [(right, band_bottom), (left, band_bottom)])
    canvas.paint(canvas.polygon(outline), gold)
    canvas.paint(canvas.polyline(outline, 3, closed=True), (140, 92, 12))
    band = np.array([[left, band_top], [right, band_top], [right, band_bottom], [left, band_bottom]])
    canvas.paint(canvas.polyline(band, 3, closed=True), (140, 92, 12))
    for x, y in (p for p in top[1:-1] if p[1] < 100):
        canvas.paint(canvas.ellipse((x, y - 4), (11, 11)), (255, 236, 150))
        canvas.paint(canvas.polyline(ellipse_points((x, y - 4), (11, 11)), 2, closed=True), (150, 100, 20))
    jewels = [((90, 175), (200, 20, 40)), ((160, 175), (30, 70, 200)), ((230, 175), (200, 20, 40))]
    for (x, y), colour in jewels:
        canvas.paint(canvas.ellipse((x, y), (16, 12)), colour)
        canvas.paint(canvas.ellipse((x - 5, y - 4), (5, 3)), (255, 255, 255), 0.6)
    anchors = np.array([[left, band_bottom], [(left + right) / 2, band_bottom], [right, band_bottom]])
    return OverlayArt(canvas.to_rgba(), anchors, forehead_targets(lift=0.6, half_width=1.05), name="crown")


def load_art(
    path: str | os.PathLike[str],
    anchors: np.ndarray | Sequence[Sequence[float]],
    targets: Sequence[int] | TargetRule,
    name: str | None = None,
) -> OverlayArt:
    """Load your own overlay from a PNG (or any image :func:`fkp.images.load_image_rgba` reads), with its
    anchor points.

    An image without an alpha channel is taken as fully opaque; a grayscale one becomes grey RGB;
    16-bit values are scaled to 8 bits; the EXIF orientation is applied.

    Args:
        path: the picture; RGBA PNG for transparency.
        anchors: (K, 2) anchor points in the picture's pixels, x then y.
        targets: K keypoint indices (0-67) the anchors go to, e.g. ``[36, 45]`` for the outer eye
            corners, or a :data:`TargetRule`.
        name: a label; default the file name without its extension.

    Returns:
        The :class:`OverlayArt`.

    Raises:
        fkp.images.ImageReadError: (a ValueError) the file cannot be read as an image.
        ValueError: anchors and targets do not match.
    """
    path = Path(path)
    image = load_image_rgba(path)
    return OverlayArt(image, np.asarray(anchors, np.float32), targets, name=name or path.stem)
