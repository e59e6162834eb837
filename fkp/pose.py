"""Head pose (yaw, pitch, roll) from the 68 keypoints, with ``cv2.solvePnP`` and a generic 3D face.

The 3D face (:data:`MODEL_POINTS`) is a handful of points of an average face in millimetres: their
x and y are the median training-set face, aligned on the eye centres and scaled to a 62 mm distance
between the eyes; their depths are rough anthropometric values chosen for this package. Perspective-n-
Point finds the rotation and translation that project these points onto the detected ones through
a pinhole camera whose focal length is the image's larger side (:func:`camera_matrix`): a guess
that is good enough for angles, since the face is small compared with its distance to the camera.

Conventions (all angles in degrees; "right" and "left" of the image unless said otherwise):

* Model frame: x towards the image's right on a frontal face (the subject's left), y down, z into
  the head (away from the camera). A face looking straight at the camera, upright, has the
  camera's own axes and yaw = pitch = roll = 0.
* Rotation from the model to the camera: ``R = Rz(roll) @ Ry(-yaw) @ Rx(-pitch)``, so that
  * **yaw > 0**: the face turns towards the image's right (the nose points right in the photo);
  * **pitch > 0**: the face tilts up (chin up, the nose points up in the photo);
  * **roll > 0**: the head leans clockwise in the image (its top moves to the image's right).
* :func:`draw_pose_axes` draws from the nose tip: red along the face's x axis, green up the face,
  blue out of the face (where it looks).

Notebook 4 (``4_Fun_with_Keypoints.ipynb``) shows it on photos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from fkp.landmarks import NOSE_TIP

# (index, x, y, z) in millimetres; pairs are mirror images (x -> -x).
_MODEL: Final[tuple[tuple[int, float, float, float], ...]] = (
    (8, 0.0, 116.0, -10.0),  # chin (menton)
    (17, -56.0, -16.0, 12.0),  # right brow, outer end
    (19, -37.0, -24.0, -4.0),  # right brow, top
    (21, -18.0, -20.0, -10.0),  # right brow, inner end
    (22, 18.0, -20.0, -10.0),  # left brow, inner end
    (24, 37.0, -24.0, -4.0),  # left brow, top
    (26, 56.0, -16.0, 12.0),  # left brow, outer end
    (27, 0.0, 1.0, -12.0),  # nose bridge between the eyes (nasion)
    (30, 0.0, 37.0, -35.0),  # nose tip
    (31, -12.0, 44.0, -18.0),  # right nostril
    (33, 0.0, 47.0, -22.0),  # nose base (subnasale)
    (35, 12.0, 44.0, -18.0),  # left nostril
    (36, -43.0, -1.0, 12.0),  # right eye, outer corner
    (39, -19.0, 1.0, 0.0),  # right eye, inner corner
    (42, 19.0, 1.0, 0.0),  # left eye, inner corner
    (45, 43.0, -1.0, 12.0),  # left eye, outer corner
    (48, -25.0, 68.0, -6.0),  # right mouth corner
    (51, 0.0, 61.0, -20.0),  # top of the upper lip
    (54, 25.0, 68.0, -6.0),  # left mouth corner
    (57, 0.0, 81.0, -16.0),  # bottom of the lower lip
)
MODEL_INDICES: Final[np.ndarray] = np.array([row[0] for row in _MODEL])
"""(K,) keypoint indices of the 3D model's points."""
MODEL_POINTS: Final[np.ndarray] = np.array([row[1:] for row in _MODEL], dtype=np.float64)
"""(K, 3) the generic 3D face, millimetres, in the model frame (x right, y down, z into the head)."""
MODEL_INDICES.flags.writeable = False
MODEL_POINTS.flags.writeable = False

AXIS_LENGTH_MM: Final[float] = 70.0
"""Default length of the drawn pose axes, in model millimetres."""


@dataclass(frozen=True, eq=False)
class HeadPose:
    """A head pose: angles for people, rotation and translation for drawing.

    Attributes:
        yaw: degrees, > 0 when the face turns to the image's right.
        pitch: degrees, > 0 when the face tilts up.
        roll: degrees, > 0 when the head leans clockwise in the image.
        rotation: (3,) Rodrigues vector of the model-to-camera rotation.
        translation: (3,) the model's origin in camera coordinates, millimetres.
        camera: (3, 3) the camera matrix used.
        error: mean distance in pixels between the keypoints and the projected model points.
    """

    yaw: float
    pitch: float
    roll: float
    rotation: np.ndarray
    translation: np.ndarray
    camera: np.ndarray
    error: float

    @property
    def angles(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees."""
        return self.yaw, self.pitch, self.roll


def camera_matrix(image_size: tuple[int, int]) -> np.ndarray:
    """A pinhole camera guessed from the image size: focal length = the larger side, centre in the middle.

    Args:
        image_size: (height, width) in pixels, as ``image.shape[:2]``.

    Returns:
        (3, 3) float64 camera matrix.
    """
    height, width = image_size
    focal = float(max(height, width))
    return np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]], dtype=np.float64)


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The model-to-camera rotation for angles in degrees (see the module's conventions).

    Returns:
        (3, 3) float64 rotation matrix ``Rz(roll) @ Ry(-yaw) @ Rx(-pitch)``.
    """
    b, a, r = np.deg2rad([-yaw, -pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`rotation_from_angles`: (3, 3) rotation -> (yaw, pitch, roll) in degrees.

    Yaw is kept within [-90, 90]; pitch and roll within [-180, 180].
    """
    r = np.asarray(rotation, np.float64)
    yaw = np.degrees(np.arcsin(np.clip(r[2, 0], -1.0, 1.0)))
    pitch = -np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(yaw), float(pitch), float(roll)


def project_model(
    yaw: float, pitch: float, roll: float, translation: np.ndarray, image_size: tuple[int, int]
) -> np.ndarray:
    """Project the 3D model with a given pose: how its points look in a photo (tests and notebooks).

    Args:
        yaw, pitch, roll: degrees.
        translation: (3,) model origin in camera coordinates, millimetres (z > 0, in front).
        image_size: (height, width) for :func:`camera_matrix`.

    Returns:
        (K, 2) float64 pixels x, y of the points :data:`MODEL_INDICES`.
    """
    rotation_vector, _ = cv2.Rodrigues(rotation_from_angles(yaw, pitch, roll))
    points, _ = cv2.projectPoints(
        MODEL_POINTS, rotation_vector, np.asarray(translation, np.float64), camera_matrix(image_size), None
    )
    return points.reshape(-1, 2)


def estimate_head_pose(keypoints: np.ndarray, image_size: tuple[int, int]) -> HeadPose:
    """Estimate a face's head pose from its keypoints.

    Args:
        keypoints: (68, 2) pixels, x then y.
        image_size: (height, width) of the image the keypoints are in, for the camera guess.

    Returns:
        The :class:`HeadPose`.
    """
    image_points = np.asarray(keypoints, np.float64)[MODEL_INDICES]
    camera = camera_matrix(image_size)
    _, rvec, tvec = cv2.solvePnP(MODEL_POINTS, image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    rvec, tvec = cv2.solvePnPRefineLM(MODEL_POINTS, image_points, camera, None, rvec, tvec)
    projected, _ = cv2.projectPoints(MODEL_POINTS, rvec, tvec, camera, None)
    error = float(np.linalg.norm(projected.reshape(-1, 2) - image_points, axis=1).mean())
    rotation, _ = cv2.Rodrigues(rvec)
    yaw, pitch, roll = angles_from_rotation(rotation)
    return HeadPose(yaw, pitch, roll, rvec.reshape(3), tvec.reshape(3), camera, error)


def draw_pose_axes(
    image: np.ndarray,
    pose: HeadPose,
    length: float = AXIS_LENGTH_MM,
    thickness: int | None = None,
    label: bool = True,
) -> np.ndarray:
    """Draw the head's axes from the nose tip: red along the face's x axis (towards the subject's
    left), green up the face, blue out of the face; optionally the angles as text.

    Args:
        image: (H, W, 3) uint8 RGB.
        pose: from :func:`estimate_head_pose` on this image.
        length: axis length in model millimetres (the eyes are 62 mm apart).
        thickness: line width in pixels; default from the image size.
        label: write "yaw .. pitch .. roll .." above the axes.

    Returns:
        A new (H, W, 3) uint8 RGB image.
    """
    result = np.array(image, dtype=np.uint8, copy=True)
    origin = MODEL_POINTS[list(MODEL_INDICES).index(NOSE_TIP)]
    ends = origin + np.array([[0, 0, 0], [length, 0, 0], [0, -length, 0], [0, 0, -length]])
    points, _ = cv2.projectPoints(ends, pose.rotation, pose.translation, pose.camera, None)
    points = points.reshape(-1, 2)
    if not np.all(np.isfinite(points)) or np.abs(points).max() > 1e6:
        return result
    if thickness is None:
        thickness = max(2, round(min(image.shape[:2]) / 200))
    start = tuple(np.round(points[0] * 16).astype(int))
    for end, colour in zip(points[1:], ((230, 40, 40), (40, 200, 40), (40, 90, 240))):
        cv2.line(result, start, tuple(np.round(end * 16).astype(int)), colour, thickness, cv2.LINE_AA, 4)
    height, width = image.shape[:2]
    if label and 0 <= points[0, 0] < width and 0 <= points[0, 1] < height:
        text = f"yaw {round(pose.yaw):+d} pitch {round(pose.pitch):+d} roll {round(pose.roll):+d}"
        scale = max(0.4, min(height, width) / 900)
        (text_width, text_height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = points[:, 1].min() - 0.6 * text_height
        x = int(np.clip(points[0, 0] - text_width / 2, 0, max(width - text_width, 0)))
        y = int(np.clip(top, text_height + 2, height - 2))
        for colour, weight in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            cv2.putText(result, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, weight, cv2.LINE_AA)
    return result
