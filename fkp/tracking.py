"""Faces followed through video frames by their keypoints, with the detector run only now and then.

Once a face is found, the 68 points of frame t give its box (the tight box of the points along the
face's own axes, :func:`fkp.geometry.upright_box`, a style the model is trained on) and its roll
(:func:`fkp.geometry.keypoints_roll`) for frame t+1, so the
keypoint model runs on each frame and the detector only every ``detect_every`` frames (to pick up
new faces) or as soon as a track is lost.

A track is lost when its points stop looking like a face. The test (:func:`pass_disagreement`):
run the model a second time from the box and roll of its own points and measure how far the points
move, as a fraction of the box's longer side. On a face the model lands where it started; on
background it wanders. Measured with the shipped model on 60 YouTube test faces turned by 0, 30,
45 and 60 deg (boxes from their labelled points): at most 0.015 (median 0.005) at every angle;
on 150 random boxes and angles on the coffee photo: at least 0.049 (median 0.11). The threshold
:data:`MAX_DISAGREEMENT` = 0.03 lies between.
"""

from __future__ import annotations

import numpy as np

from fkp.boxes import box_overlap
from fkp.detect import Face, FaceDetector, detect_faces
from fkp.geometry import keypoints_box, keypoints_roll, upright_box
from fkp.landmarks import NUM_KEYPOINTS
from fkp.predict import KeypointPredictor

HOLD_BOX = 0.02
"""A track keeps last frame's crop box while its points' box moves less than this (fraction of its
side) and turns less than :data:`HOLD_ANGLE` degrees: a still face gets the same crop every frame."""
HOLD_ANGLE = 2.0
MAX_DISAGREEMENT = 0.03
"""Most point motion between two passes (fraction of the box's longer side) for a face to be kept."""
DETECT_EVERY = 10
"""Frames between detector runs while every track holds."""


def face_boxes(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The crop box and roll that faces' points give for the next frame.

    Args:
        keypoints: (N, 68, 2) points in pixels, x then y.

    Returns:
        ((N, 4) boxes x, y, w, h: centred on :func:`fkp.geometry.upright_box`, with its width and
        height along the face's axes, so that with the roll the model crops the face upright at the
        size of an upright face's tight box; (N,) roll in degrees).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 2)
    angles = keypoints_roll(keypoints).reshape(-1)
    boxes = np.zeros((len(keypoints), 4), np.float32)
    for i, (points, angle) in enumerate(zip(keypoints, angles)):
        centre, extent = upright_box(points, float(angle))
        boxes[i] = [*(centre - extent / 2), *extent]
    return boxes, angles.astype(np.float32)


def pass_disagreement(
    model: KeypointPredictor, image: np.ndarray, keypoints: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """How far faces' points move when the model runs again from their own box and roll.

    Args:
        model: the keypoint model.
        image: (H, W, 3) uint8 RGB.
        keypoints: (N, 68, 2) points in pixels of ``image``, x then y.

    Returns:
        ((N,) mean point motion divided by the longer side of each face's tight box,
        (N, 68, 2) the second pass's points).
    """
    keypoints = np.asarray(keypoints, dtype=np.float32).reshape(-1, NUM_KEYPOINTS, 2)
    if len(keypoints) == 0:
        return np.zeros(0, np.float32), keypoints
    boxes, angles = face_boxes(keypoints)
    again = np.asarray(model.predict(image, boxes, angles=angles), dtype=np.float32)
    side = np.maximum(np.maximum(boxes[:, 2], boxes[:, 3]), 1.0)
    return np.linalg.norm(again - keypoints, axis=-1).mean(axis=-1) / side, again


class KeypointTracker:
    """Keypoints of every face on successive video frames, detecting only every few frames.

    Args:
        detector: finds new faces (any :class:`fkp.detect.FaceDetector`).
        model: the keypoint model.
        detect_every: run the detector on every this many frames while all tracks hold (>= 1).
        max_disagreement: a track whose :func:`pass_disagreement` exceeds this is dropped, and the
            detector runs on the next frame.
        min_overlap: a detection overlapping a track's box by this much (of the smaller box) is
            that track's face, not a new one.

    Each :class:`fkp.detect.Face` returned has the tight box of its points as ``box`` (on every
    frame, so the box does not jump when the detector runs) and the score of the detection that
    started its track. A track that a detector run does not confirm is dropped.
    """

    def __init__(
        self,
        detector: FaceDetector,
        model: KeypointPredictor,
        detect_every: int = DETECT_EVERY,
        max_disagreement: float = MAX_DISAGREEMENT,
        min_overlap: float = 0.3,
    ) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {detect_every}")
        self.detector = detector
        self.model = model
        self.detect_every = detect_every
        self.max_disagreement = max_disagreement
        self.min_overlap = min_overlap
        self._points = np.zeros((0, NUM_KEYPOINTS, 2), np.float32)
        self._boxes = np.zeros((0, 4), np.float32)  # (T, 4) crop box of each track for the next frame
        self._angles = np.zeros(0, np.float32)  # (T,) roll of each track for the next frame
        self._scores: list[float | None] = []
        self._since_detection = 0
        self.detector_runs = 0
        """How many frames the detector has run on."""

    def __repr__(self) -> str:
        return f"KeypointTracker(detect_every={self.detect_every}, max_disagreement={self.max_disagreement})"

    def reset(self) -> None:
        """Forget every track (the next frame runs the detector)."""
        self._points = np.zeros((0, NUM_KEYPOINTS, 2), np.float32)
        self._boxes, self._angles = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        self._scores = []
        self._since_detection = 0

    def __call__(self, image: np.ndarray) -> list[Face]:
        """The faces of the next frame.

        Args:
            image: (H, W, 3) uint8 RGB frame.

        Returns:
            One :class:`fkp.detect.Face` per tracked face, coordinates in pixels of ``image``.
        """
        points, scores, boxes, angles = self._points, list(self._scores), self._boxes, self._angles
        lost = False
        if len(points):
            points = np.asarray(self.model.predict(image, boxes, angles=angles), np.float32)
            disagreement, _ = pass_disagreement(self.model, image, points)
            keep = disagreement <= self.max_disagreement
            lost = not keep.all()
            points, boxes, angles = points[keep], boxes[keep], angles[keep]
            scores = [s for s, k in zip(scores, keep) if k]
        self._since_detection += 1
        if lost or len(points) == 0 or self._since_detection >= self.detect_every:
            points, scores, boxes, angles = self._detect(image, points, scores, boxes, angles)
        self._points, self._scores = points, scores
        self._boxes, self._angles = self._next_boxes(points, boxes, angles)
        return [Face(box=keypoints_box(p), keypoints=p, score=s) for p, s in zip(points, scores)]

    @staticmethod
    def _next_boxes(points: np.ndarray, boxes: np.ndarray, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each track's crop box and roll for the next frame: its points' tight box and roll, or the
        current ones while those barely move (see :data:`HOLD_BOX`)."""
        if len(points) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        new_boxes, new_angles = face_boxes(points)
        side = np.maximum(new_boxes[:, 2:].max(axis=1), 1.0)
        moved = np.abs(new_boxes - boxes).max(axis=1) / side
        turned = np.abs((new_angles - np.nan_to_num(angles) + 180.0) % 360.0 - 180.0)
        hold = (moved < HOLD_BOX) & (turned < HOLD_ANGLE)
        return np.where(hold[:, None], boxes, new_boxes), np.where(hold, angles, new_angles)

    def _detect(
        self, image: np.ndarray, points: np.ndarray, scores: list[float | None], boxes: np.ndarray, angles: np.ndarray
    ) -> tuple[np.ndarray, list[float | None], np.ndarray, np.ndarray]:
        """Run the detector: keep the tracks it confirms, start tracks for the faces it adds.

        Returns the tracks' points, scores, crop boxes and roll (a new track's box is the
        detector's, which the model also accepts; :meth:`_next_boxes` replaces it by the points' box).
        """
        self._since_detection = 0
        self.detector_runs += 1
        found = detect_faces(self.detector, image)
        if len(points):
            tracked = keypoints_box(points)
            overlap = box_overlap(tracked, found.boxes, over="min")  # (tracks, detections)
            confirmed = np.asarray((overlap >= self.min_overlap).any(axis=1), dtype=bool)
            points, scores = points[confirmed], [s for s, c in zip(scores, confirmed.tolist()) if c]
            boxes, angles = boxes[confirmed], angles[confirmed]
            is_new = ~(overlap[confirmed] >= self.min_overlap).any(axis=0) if len(points) else np.ones(len(found), bool)
        else:
            is_new = np.ones(len(found), bool)
        if is_new.any():
            angles = found.angles[is_new]
            new = np.asarray(
                self.model.predict(image, found.boxes[is_new], angles=None if np.isnan(angles).all() else angles),
                np.float32,
            )
            # Once more from the points' own box, as every later frame crops: no jump on frame two.
            new_boxes, new_angles = face_boxes(new)
            new = np.asarray(self.model.predict(image, new_boxes, angles=new_angles), np.float32)
            points = np.concatenate([points, new]) if len(points) else new
            scores = scores + [None if np.isnan(s) else float(s) for s in found.scores[is_new]]
            boxes = np.concatenate([boxes, new_boxes])
            angles = np.concatenate([angles, new_angles])
        return points.reshape(-1, NUM_KEYPOINTS, 2), scores, boxes.reshape(-1, 4), angles
