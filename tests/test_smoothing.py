"""fkp.smoothing: the One Euro filter on synthetic keypoint tracks (the tracker: tests/test_tracking.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fkp.landmarks import mean_shape_diagram
from fkp.smoothing import OneEuroFilter, filter_for_strength

FPS = 30.0
FACE_SIZE = 150.0
FRAMES = 120


def _still_face(offset: tuple[float, float] = (100.0, 80.0)) -> np.ndarray:
    return mean_shape_diagram().astype(np.float64) * FACE_SIZE + np.array(offset)  # (68, 2)


def _jitter(track: np.ndarray) -> float:
    """Mean frame-to-frame movement of the points, in pixels, after the first second."""
    return float(np.linalg.norm(np.diff(track[int(FPS) :], axis=0), axis=-1).mean())


def _run(filter_: OneEuroFilter | None, track: np.ndarray) -> np.ndarray:
    if filter_ is None:
        return track.copy()
    return np.stack([filter_(points, t / FPS, FACE_SIZE) for t, points in enumerate(track)])


@pytest.fixture
def noisy_still_track() -> np.ndarray:
    rng = np.random.default_rng(0)
    return _still_face()[None] + rng.normal(0.0, 1.5, size=(FRAMES, *_still_face().shape))  # (T, 68, 2)


def test_first_sample_passes_and_a_constant_stays_constant() -> None:
    filter_ = OneEuroFilter()
    face = _still_face()
    assert np.array_equal(filter_(face, 0.0), face)
    for t in range(1, 10):
        np.testing.assert_allclose(filter_(face, t / FPS), face)


def test_smoothing_reduces_the_jitter_of_a_still_face(noisy_still_track: np.ndarray) -> None:
    raw = _jitter(noisy_still_track)
    smoothed = _run(filter_for_strength(1.0), noisy_still_track)
    assert _jitter(smoothed) < raw / 3
    # and the smoothed points sit closer to the true ones than the noisy measurements do
    truth = _still_face()
    assert np.abs(smoothed[int(FPS) :] - truth).mean() < 0.6 * np.abs(noisy_still_track[int(FPS) :] - truth).mean()


def test_stronger_smoothing_means_less_jitter(noisy_still_track: np.ndarray) -> None:
    jitters = [_jitter(_run(filter_for_strength(s), noisy_still_track)) for s in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert jitters == sorted(jitters, reverse=True)
    assert filter_for_strength(0.0) is None
    with pytest.raises(ValueError):
        filter_for_strength(-1.0)


def test_a_moving_face_is_followed_with_little_lag() -> None:
    speed = FACE_SIZE  # one face size per second
    track = np.stack([_still_face((100.0 + speed * t / FPS, 80.0)) for t in range(FRAMES)])
    smoothed = _run(filter_for_strength(1.0), track)
    lag = (track[-1] - smoothed[-1])[:, 0]
    assert (lag >= 0).all() and lag.max() < 0.05 * FACE_SIZE


def test_a_jump_is_caught_up_within_half_a_second() -> None:
    filter_ = filter_for_strength(1.0)
    track = [_still_face()] * 30 + [_still_face((160.0, 80.0))] * 30
    smoothed = _run(filter_, np.stack(track))
    assert np.abs(smoothed[30 + int(FPS / 2)] - track[-1]).max() < 0.02 * FACE_SIZE
