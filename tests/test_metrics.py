import json
import warnings

import numpy as np
import pytest

from fkp import metrics
from fkp.landmarks import LEFT_EYE_OUTER, NUM_KEYPOINTS, REGIONS, RIGHT_EYE_OUTER


def face(interocular: float = 10.0) -> np.ndarray:
    """A (68, 2) face whose outer eye corners are `interocular` pixels apart."""
    points = np.zeros((NUM_KEYPOINTS, 2), dtype=np.float32)
    points[RIGHT_EYE_OUTER] = (0.0, 0.0)
    points[LEFT_EYE_OUTER] = (interocular, 0.0)
    return points


def test_nme_by_hand():
    truth = np.stack([face(10.0), face(20.0)])
    predicted = truth.copy()
    predicted[0, :, 0] += 1.0  # every point 1 px off: 1/10
    predicted[1, 0] += (3.0, 4.0)  # one point 5 px off: 5/20/68
    np.testing.assert_allclose(metrics.nme(predicted, truth), [0.1, 5.0 / 20.0 / NUM_KEYPOINTS])


def test_failure_rate_auc_and_ced_by_hand():
    errors = np.array([0.0, 0.02, 0.04, 0.10])
    assert metrics.failure_rate(errors) == 0.25
    # AUC@8%: mean of max(0, 1 - e / 0.08) = (1 + 0.75 + 0.5 + 0) / 4
    assert metrics.auc(errors) == pytest.approx(0.5625)
    levels, shares = metrics.ced(errors, steps=5)  # levels 0, 2, 4, 6, 8 %
    np.testing.assert_allclose(levels, [0, 0.02, 0.04, 0.06, 0.08])
    np.testing.assert_allclose(shares, [0.25, 0.5, 0.75, 0.75, 0.75])


def test_auc_matches_the_area_under_the_sampled_curve():
    errors = np.random.default_rng(0).uniform(0, 0.1, size=200)
    levels, shares = metrics.ced(errors, steps=20001)
    assert metrics.auc(errors) == pytest.approx(np.trapezoid(shares, levels) / 0.08, abs=1e-3)


def test_report_regions_and_perfect_prediction():
    truth = np.stack([face(10.0)] * 3)
    predicted = truth.copy()
    predicted[:, REGIONS["mouth"]] += (0.0, 2.0)  # only the mouth is off, by 2 px = 0.2
    result = metrics.report(predicted, truth)
    assert result.region_nme["mouth"] == pytest.approx(0.2)
    assert result.region_nme["jaw"] == 0.0
    mouth_share = (REGIONS["mouth"].stop - REGIONS["mouth"].start) / NUM_KEYPOINTS
    assert result.mean_nme == pytest.approx(0.2 * mouth_share)
    perfect = metrics.report(truth, truth)
    assert (perfect.mean_nme, perfect.failure_rate, perfect.auc) == (0.0, 0.0, 1.0)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.nme(np.zeros((2, NUM_KEYPOINTS, 2)), np.zeros((3, NUM_KEYPOINTS, 2)))


def test_a_report_of_no_faces_has_no_figures_and_no_warning():
    empty = np.zeros((0, NUM_KEYPOINTS, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice"
        report = metrics.report(empty, empty)
        summary = metrics.summarize(np.zeros(0))
    assert report.count == summary.count == 0 and np.isnan(report.mean_nme) and report.region_nme == {}
    assert str(report) == "0 faces: no figures"
    figures = report.as_dict()
    assert figures["mean_nme"] is None and figures["auc"] is None and figures["count"] == 0
    assert json.loads(json.dumps(figures, allow_nan=False)) == figures  # valid JSON, no NaN
