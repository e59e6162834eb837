"""fkp.video: the whole video path on short videos the tests write themselves."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fkp import samples
from fkp.detectors.haar import HaarFaceDetector
from fkp.face import Face
from fkp.landmarks import mean_shape_diagram
from fkp.video import VideoReadError, VideoStats, annotate_video

FRAMES = 12
SIDE = 256


def write_video(path, frames: list[np.ndarray], fps: float = 10.0) -> None:
    """Write RGB frames with the codec OpenCV's wheels have: mp4v for .mp4, MJPG for .avi."""
    fourcc = "MJPG" if str(path).endswith(".avi") else "mp4v"
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


@pytest.fixture(scope="module")
def still_face_video(tmp_path_factory) -> str:
    """A 12-frame 256 x 256 video of the astronaut, not moving."""
    frame = cv2.resize(samples.astronaut(), (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    path = tmp_path_factory.mktemp("video") / "still.mp4"
    write_video(path, [frame] * FRAMES)
    return str(path)


@pytest.fixture(scope="module")
def detector() -> HaarFaceDetector:
    return HaarFaceDetector()


def test_annotate_video_writes_every_frame(
    tmp_path, still_face_video: str, detector: HaarFaceDetector, mean_shape_model, video_frames
) -> None:
    output = tmp_path / "out.mp4"
    stats = annotate_video(still_face_video, output, detector=detector, model=mean_shape_model(), progress=False)
    assert isinstance(stats, VideoStats)
    assert stats.frames == FRAMES and stats.faces == FRAMES
    assert stats.seconds > 0 and stats.faces_per_second == pytest.approx(stats.faces / stats.seconds)
    frames = video_frames(output)
    assert len(frames) == FRAMES and frames[0].shape == (SIDE, SIDE, 3)
    assert not list(tmp_path.glob(".*"))


def test_render_hook_gets_every_frame_and_its_faces(
    tmp_path, still_face_video: str, detector, mean_shape_model, video_frames
) -> None:
    calls: list[tuple[tuple[int, ...], list[Face]]] = []

    def render(frame: np.ndarray, faces: list[Face]) -> np.ndarray:
        calls.append((frame.shape, faces))
        out = frame.copy()
        out[:8] = (255, 0, 0)  # a red band on top
        return out

    output = tmp_path / "out.avi"
    model = mean_shape_model()
    annotate_video(still_face_video, output, render=render, detector=detector, model=model, progress=False)
    assert len(calls) == FRAMES
    assert all(shape == (SIDE, SIDE, 3) and len(faces) == 1 for shape, faces in calls)
    first = video_frames(output)[0]
    assert first[2, SIDE // 2, 2] > 200 and first[2, SIDE // 2, 0] < 60  # BGR on disk: red stays red


def test_smoothing_reduces_jitter_along_the_video_path(
    tmp_path, still_face_video: str, detector, mean_shape_model
) -> None:
    def jitter(smoothing: float) -> float:
        tracks: list[np.ndarray] = []

        def render(frame: np.ndarray, faces: list[Face]) -> np.ndarray:
            tracks.append(faces[0].keypoints.copy())
            return frame

        annotate_video(
            still_face_video,
            tmp_path / f"s{smoothing}.mp4",
            render=render,
            detector=detector,
            model=mean_shape_model(noise=2.0),
            smoothing=smoothing,
            progress=False,
        )
        return float(np.abs(np.diff(np.stack(tracks)[2:], axis=0)).mean())

    assert jitter(2.0) < 0.5 * jitter(0.0)


def test_max_frames_and_a_render_of_the_wrong_size(tmp_path, still_face_video: str, detector, mean_shape_model) -> None:
    model = mean_shape_model()
    stats = annotate_video(
        still_face_video, tmp_path / "few.mp4", detector=detector, model=model, progress=False, max_frames=3
    )
    assert stats.frames == 3
    with pytest.raises(ValueError, match="render"):
        annotate_video(
            still_face_video,
            tmp_path / "bad.mp4",
            render=lambda frame, faces: frame[:10],
            detector=detector,
            model=mean_shape_model(),
            progress=False,
        )
    assert not (tmp_path / "bad.mp4").exists() and not list(tmp_path.glob(".*"))


def test_unreadable_videos_raise_naming_the_file(tmp_path, detector, mean_shape_model) -> None:
    model = mean_shape_model()
    with pytest.raises(VideoReadError, match="missing.mp4"):
        annotate_video(tmp_path / "missing.mp4", tmp_path / "o.mp4", detector=detector, model=model, progress=False)
    (tmp_path / "text.mp4").write_text("not a video\n")
    with pytest.raises(VideoReadError, match="text.mp4"):
        annotate_video(tmp_path / "text.mp4", tmp_path / "o.mp4", detector=detector, model=model, progress=False)
    with pytest.raises(ValueError, match="unsupported"):
        annotate_video(tmp_path / "text.mp4", tmp_path / "o.gif", detector=detector, model=model, progress=False)
    assert not (tmp_path / "o.mp4").exists()


# --- the default render: fkp.annotate ---------------------------------------------------------


def _face_at(x: float, y: float, size: float) -> Face:
    points = mean_shape_diagram() * size + np.array([x, y], dtype=np.float32)
    return Face(box=np.array([x, y, size, size]), keypoints=points, score=9.0)


def test_draw_faces_draws_on_a_copy() -> None:
    from fkp.annotate import draw_faces

    image = np.zeros((200, 300, 3), np.uint8)
    face = _face_at(50.0, 40.0, 100.0)
    drawn = draw_faces(image, [face], scores=True)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8 and not image.any()
    x, y = np.round(face.keypoints[0]).astype(int)
    assert drawn[y - 1 : y + 2, x - 1 : x + 2].any()  # a point is drawn where it is
    assert drawn[40, 100].any() and not drawn[150:, 200:].any()  # the box's top edge; nothing far away
    assert np.array_equal(draw_faces(image, []), image)


def test_drawing_outside_the_image_does_not_fail() -> None:
    from fkp.annotate import draw_faces, draw_keypoints

    image = np.zeros((50, 50, 3), np.uint8)
    assert draw_faces(image, [_face_at(-80.0, 30.0, 120.0)]).shape == image.shape
    with pytest.raises(ValueError):
        draw_keypoints(image, np.zeros((5, 2)))


def test_tracking_runs_the_detector_every_n_frames(tmp_path, still_face_video: str, models_dir) -> None:
    from fkp.detectors.yunet import YUNET_FILE, YuNetFaceDetector
    from fkp.predict import load_model

    yunet, model = YuNetFaceDetector(models_dir / YUNET_FILE), load_model()
    tracked = annotate_video(
        still_face_video, tmp_path / "t.mp4", detector=yunet, model=model, progress=False, detect_every=5
    )
    every = annotate_video(
        still_face_video, tmp_path / "e.mp4", detector=yunet, model=model, progress=False, detect_every=None
    )
    assert tracked.frames == every.frames == FRAMES and tracked.faces == every.faces == FRAMES
    assert tracked.detector_runs == 3 and every.detector_runs == FRAMES  # frames 1, 6, 11; all 12


# --- fkp video end to end on a clip whose number of faces changes (issue 24) ------------------------


class BlobDetector:
    """Finds the bright rectangles of a clip drawn on black: one face each (the clip's own detector)."""

    def detect(self, image: np.ndarray) -> np.ndarray:
        mask = (image.max(axis=2) > 15).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return np.array([s[:4] for s in stats[1:count] if s[4] > 200], np.float32).reshape(-1, 4)


def faces_clip(path, counts: list[int], side: int = 48) -> None:
    """A 160 x 120 clip: ``counts[t]`` astronaut faces side by side on frame t, on black."""
    x, y, w, h = HaarFaceDetector().detect(samples.astronaut())[0].astype(int)
    margin = w // 4
    face = samples.astronaut()[y - margin : y + h + margin, x - margin : x + w + margin]
    face = np.clip(cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA).astype(int) + 40, 0, 255)
    frames = []
    for t, count in enumerate(counts):
        frame = np.zeros((120, 160, 3), np.uint8)
        for i in range(count):
            left, top = 4 + 52 * i + t % 3, 30 + (t % 2)  # a small drift, so the tracks move
            frame[top : top + side, left : left + side] = face
        frames.append(frame)
    write_video(path, frames, fps=24.0)


def test_fkp_video_on_a_clip_where_faces_come_and_go(tmp_path, monkeypatch, capsys, video_frames) -> None:
    import fkp.cli.common
    from fkp.cli import main

    counts = [1] * 8 + [2] * 8 + [3] * 8 + [1] * 8  # faces walk in between detector runs, then two leave
    faces_clip(tmp_path / "clip.mp4", counts)
    monkeypatch.setattr(fkp.cli.common, "build_detector", lambda args: BlobDetector())
    output = tmp_path / "out.mp4"
    assert main(["video", str(tmp_path / "clip.mp4"), "-o", str(output), "--detect-every", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{len(counts)} frames, ") and f"wrote {output}" in out
    frames = video_frames(output)
    assert len(frames) == len(counts) and frames[0].shape == (120, 160, 3)
    faces = int(out.split(" frames, ")[1].split(" faces")[0])
    assert sum(counts) - 8 <= faces <= sum(counts)  # a face walking in waits at most for the next detector run
