"""Faces followed through video frames: one track per face, matched once per frame, smoothed.

A :class:`Track` holds everything known about one face: its keypoints, the box reported for it, the
crop box and roll the model uses on the next frame, the detector's score, and its One Euro filters
(:mod:`fkp.smoothing`). :class:`FaceTracker` updates the tracks frame by frame, in one of two modes:

- ``detect_every=n`` (the default): the 68 points of frame t give each track its crop box (the
  tight box of the points along the face's own axes, :func:`fkp.geometry.upright_box`, a style the
  model is trained on) and its roll (:func:`fkp.geometry.keypoints_roll`) for frame t+1, so the
  keypoint model runs on each frame and the detector only every ``n`` frames (to pick up new faces)
  or as soon as a track is lost;
- ``detect_every=None``: the detector runs on every frame and the model on its boxes.

Either way, a detector run is matched to the tracks once (:func:`match_boxes`): each detection
continues at most one track and each track takes at most one detection; a detection that
continues no track starts one, and a track that the run does not confirm is no longer drawn. Such a
track is kept, undrawn, for a few frames (``keep_missed``), so that a face found again continues
its smoothing instead of starting it over.

A track is lost when its points stop looking like a face. The test (:func:`pass_disagreement`):
run the model a second time from the box and roll of its own points and measure how far the points
move, as a fraction of the box's longer side. On a face the model lands where it started; on
background it wanders. :data:`MAX_DISAGREEMENT` lies between the two, as measured with the shipped
model on turned YouTube test faces and on random boxes of the coffee photo (``fkp.samples.coffee``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fkp.boxes import box_overlap
from fkp.detectors import FaceDetector, detect_faces
from fkp.face import Face
from fkp.geometry import keypoints_box, keypoints_roll, upright_box
from fkp.landmarks import NUM_KEYPOINTS
from fkp.predictor import KeypointPredictor
from fkp.smoothing import DEFAULT_SMOOTHING, OneEuroFilter, filter_for_strength

HOLD_BOX = 0.02
"""A track keeps last frame's crop box while its points' box moves less than this (fraction of its
side) and turns less than :data:`HOLD_ANGLE` degrees: a still face gets the same crop every frame."""
HOLD_ANGLE = 2.0
MAX_DISAGREEMENT = 0.03
"""Most point motion between two passes (fraction of the box's longer side) for a face to be kept."""
DETECT_EVERY = 10
"""Frames between detector runs while every track holds."""
MIN_OVERLAP = 0.3
"""A detection covering this much of a track's box, or the track's box this much of the detection
(intersection over the smaller box), may continue that track."""
DUPLICATE_OVERLAP = 0.5
"""Two drawn tracks whose boxes overlap this much (intersection over union) follow one face: the
younger one stops being drawn."""
KEEP_MISSED = 5
"""Frames an undrawn track is kept, so that its face, found again, continues its smoothing."""
DEFAULT_FPS = 30.0
"""Frame rate assumed for the smoothing when :meth:`FaceTracker.__call__` gets no timestamp."""


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


def match_boxes(track_boxes: np.ndarray, boxes: np.ndarray, min_overlap: float = MIN_OVERLAP) -> list[tuple[int, int]]:
    """Which box continues which track: the tracker's one matching rule.

    A pair may match when the intersection covers at least ``min_overlap`` of the smaller of the two
    boxes (a detector's box is looser than a face's points' box); pairs are taken greatest
    intersection over union first, each track and each box at most once.

    Args:
        track_boxes: (T, 4) the tracks' boxes x, y, w, h in pixels.
        boxes: (D, 4) the new boxes (detections), same frame and units.
        min_overlap: least intersection over the smaller box, in (0, 1].

    Returns:
        (track index, box index) pairs.
    """
    track_boxes = np.asarray(track_boxes, dtype=np.float64).reshape(-1, 4)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(track_boxes) == 0 or len(boxes) == 0:
        return []
    allowed = box_overlap(track_boxes, boxes, over="min") >= min_overlap  # (T, D)
    iou = np.where(allowed, box_overlap(track_boxes, boxes), -1.0)
    pairs: list[tuple[int, int]] = []
    used_tracks: set[int] = set()
    used_boxes: set[int] = set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        track, box = (int(i) for i in np.unravel_index(flat, iou.shape))
        if iou[track, box] < 0:
            break
        if track not in used_tracks and box not in used_boxes:
            pairs.append((track, box))
            used_tracks.add(track)
            used_boxes.add(box)
    return pairs


@dataclass(eq=False)
class Track:
    """One face followed through the frames.

    Attributes:
        identity: a number unique within its tracker, in order of creation.
        keypoints: (68, 2) float32 points on the last frame the face was seen (before smoothing),
            pixels x then y.
        box: (4,) float32 box reported for the face, x, y, w, h: the tight box of its points when
            faces are followed by their points, the detector's box when every frame is detected.
        crop_box: (4,) float32 box the model crops on the next frame (see :func:`face_boxes`).
        angle: roll the model crops with on the next frame, degrees.
        score: the score of the detection that started or last restarted the track, None if the
            detector gives none.
        last_seen: index of the last frame the face was seen on (the track is drawn on that frame).
        box_filter, point_filter: its One Euro filters (None when smoothing is off).
    """

    identity: int
    keypoints: np.ndarray
    box: np.ndarray
    crop_box: np.ndarray
    angle: float
    score: float | None
    last_seen: int
    box_filter: OneEuroFilter | None
    point_filter: OneEuroFilter | None

    def smoothed(self, timestamp: float) -> Face:
        """Run the track's filters on its current box and points and give the face to draw."""
        box, points = self.box, self.keypoints
        if self.box_filter is not None and self.point_filter is not None:
            scale = float(max(box[2], box[3], 1.0))  # speeds in face sizes per second
            corners = np.array([[box[0], box[1]], [box[0] + box[2], box[1] + box[3]]])  # (2, 2) x, y
            corners = self.box_filter(corners, timestamp, scale)
            box = np.concatenate([corners[0], corners[1] - corners[0]])
            points = self.point_filter(points, timestamp, scale)
        return Face(box=box, keypoints=points, score=self.score)


class FaceTracker:
    """Keypoints of every face on successive video frames: one :class:`Track` per face, smoothed.

    Args:
        detector: finds faces (any :class:`fkp.detect.FaceDetector`).
        model: the keypoint model.
        detect_every: run the detector on every this many frames while all tracks hold (>= 1),
            following faces by their points in between; None runs the detector on every frame.
        smoothing: strength of the temporal smoothing (:func:`fkp.smoothing.filter_for_strength`);
            0 turns it off.
        max_disagreement: a followed track whose :func:`pass_disagreement` exceeds this is lost,
            and the detector runs on the same frame.
        min_overlap: the overlap for a detection to continue a track (:func:`match_boxes`).
        keep_missed: frames an undrawn track is kept for its face to be found again.

    Call it on each frame, in order; it returns one :class:`fkp.face.Face` per drawn track, with
    the smoothed box and points and the score of the detection that started the track.
    """

    def __init__(
        self,
        detector: FaceDetector,
        model: KeypointPredictor,
        detect_every: int | None = DETECT_EVERY,
        smoothing: float = DEFAULT_SMOOTHING,
        max_disagreement: float = MAX_DISAGREEMENT,
        min_overlap: float = MIN_OVERLAP,
        keep_missed: int = KEEP_MISSED,
    ) -> None:
        if detect_every is not None and detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {detect_every}")
        filter_for_strength(smoothing)  # validates
        self.detector = detector
        self.model = model
        self.detect_every = detect_every
        self.smoothing = smoothing
        self.max_disagreement = max_disagreement
        self.min_overlap = min_overlap
        self.keep_missed = keep_missed
        self.tracks: list[Track] = []
        """Every track alive: those drawn on the last frame (:attr:`drawn`) and those kept, undrawn, for a
        few frames in case their face is found again."""
        self.detector_runs = 0
        """How many frames the detector has run on."""
        self._frame = -1
        self._since_detection = 0
        self._next_identity = 0

    def __repr__(self) -> str:
        return (
            f"FaceTracker(detect_every={self.detect_every}, smoothing={self.smoothing}, "
            f"max_disagreement={self.max_disagreement})"
        )

    def reset(self) -> None:
        """Forget every track (the next frame runs the detector)."""
        self.tracks = []
        self._since_detection = 0

    @property
    def drawn(self) -> list[Track]:
        """The tracks seen on the last frame, in the order their faces were returned."""
        return [track for track in self.tracks if track.last_seen == self._frame]

    def __call__(self, image: np.ndarray, timestamp: float | None = None) -> list[Face]:
        """The faces of the next frame.

        Args:
            image: (H, W, 3) uint8 RGB frame.
            timestamp: its time in seconds (frame index / frames per second), for the smoothing;
                None counts frames at :data:`DEFAULT_FPS`.

        Returns:
            One :class:`fkp.face.Face` per face, smoothed, coordinates in pixels of ``image``.
        """
        self._frame += 1
        timestamp = self._frame / DEFAULT_FPS if timestamp is None else float(timestamp)
        lost = self._follow(image) if self.detect_every is not None else False
        self._since_detection += 1
        live = self.drawn
        if self.detect_every is None or lost or not live or self._since_detection >= self.detect_every:
            self._detect(image, live)
        self.tracks = [t for t in self.tracks if self._frame - t.last_seen <= self.keep_missed]
        self._next_crops()
        return [track.smoothed(timestamp) for track in self.drawn]

    def _follow(self, image: np.ndarray) -> bool:
        """Move the drawn tracks of the last frame to this one by their own crops; True if one was lost."""
        live = [track for track in self.tracks if track.last_seen == self._frame - 1]
        if not live:
            return False
        crops = np.stack([track.crop_box for track in live])
        angles = np.array([track.angle for track in live], np.float32)
        points = np.asarray(self.model.predict(image, crops, angles=angles), np.float32)
        disagreement, _ = pass_disagreement(self.model, image, points)
        lost = False
        for track, track_points, wander in zip(live, points, disagreement):
            if wander > self.max_disagreement:
                lost = True
                continue
            track.keypoints, track.box, track.last_seen = track_points, keypoints_box(track_points), self._frame
        # Two tracks that have come to follow one face: the younger one is no longer drawn.
        kept: list[Track] = []
        for track in sorted(self.drawn, key=lambda t: t.identity):
            if all(box_overlap(track.box, other.box)[0, 0] < DUPLICATE_OVERLAP for other in kept):
                kept.append(track)
            else:
                track.last_seen = self._frame - 1
        return lost

    def _detect(self, image: np.ndarray, live: list[Track]) -> None:
        """Run the detector: keep the drawn tracks it confirms, restart undrawn ones or start new
        tracks for the faces it adds; confirmed tracks come first, then the others in its order."""
        self._since_detection = 0
        self.detector_runs += 1
        found = detect_faces(self.detector, image)
        following = self.detect_every is not None
        if not following:
            live = []  # every face is predicted again from its detection
        confirmed = match_boxes(np.stack([t.box for t in live]) if live else np.zeros((0, 4)), found.boxes)
        for track in live:
            track.last_seen = self._frame - 1  # drawn only if confirmed
        for track_index, _ in confirmed:
            live[track_index].last_seen = self._frame
        taken = {box_index for _, box_index in confirmed}
        confirmed_tracks = [live[i] for i, _ in sorted(confirmed)]
        rest = [index for index in range(len(found)) if index not in taken]
        started: list[Track] = []
        if rest:
            boxes, angles = found.boxes[rest], found.angles[rest]
            points = np.asarray(
                self.model.predict(image, boxes, angles=None if np.isnan(angles).all() else angles), np.float32
            )
            crops, rolls = np.full((len(rest), 4), np.nan, np.float32), np.full(len(rest), np.nan, np.float32)
            if following:  # once more from the points' own box, as every later frame crops: no jump on frame two
                crops, rolls = face_boxes(points)
                points = np.asarray(self.model.predict(image, crops, angles=rolls), np.float32)
            undrawn = [t for t in self.tracks if t.last_seen < self._frame]
            undrawn_boxes = np.stack([t.box for t in undrawn]) if undrawn else np.zeros((0, 4))
            new_boxes = np.stack([keypoints_box(p) for p in points]) if following else boxes
            again = {box: undrawn[track] for track, box in match_boxes(undrawn_boxes, new_boxes, self.min_overlap)}
            for index, (box, track_points) in enumerate(zip(new_boxes, points)):
                score = found.scores[rest[index]]
                track = again.get(index) or self._new_track()
                track.keypoints, track.box, track.last_seen = track_points, np.asarray(box, np.float32), self._frame
                track.score = None if np.isnan(score) else float(score)
                track.crop_box, track.angle = crops[index], float(rolls[index])
                started.append(track)
        others = [t for t in self.tracks if t not in confirmed_tracks and t not in started]
        self.tracks = confirmed_tracks + started + others if following else started + others

    def _new_track(self) -> Track:
        identity, self._next_identity = self._next_identity, self._next_identity + 1
        empty = np.zeros(4, np.float32)
        track = Track(
            identity,
            np.zeros((NUM_KEYPOINTS, 2), np.float32),
            empty,
            empty,
            float("nan"),
            None,
            -1,
            filter_for_strength(self.smoothing),
            filter_for_strength(self.smoothing),
        )
        self.tracks.append(track)
        return track

    def _next_crops(self) -> None:
        """Each drawn track's crop box and roll for the next frame: its points' box and roll, or the
        current ones while those barely move (see :data:`HOLD_BOX`)."""
        live = self.drawn
        if self.detect_every is None or not live:
            return
        new_boxes, new_angles = face_boxes(np.stack([track.keypoints for track in live]))
        boxes = np.stack([track.crop_box for track in live])  # (T, 4) float32, NaN for a new track
        angles = np.array([track.angle for track in live], np.float32)
        side = np.maximum(new_boxes[:, 2:].max(axis=1), 1.0)
        moved = np.abs(new_boxes - boxes).max(axis=1) / side
        turned = np.abs((new_angles - np.nan_to_num(angles) + 180.0) % 360.0 - 180.0)
        hold = (moved < HOLD_BOX) & (turned < HOLD_ANGLE)
        for track, held, box, angle in zip(live, hold.tolist(), new_boxes, new_angles):
            if not held:
                track.crop_box, track.angle = box, float(angle)
