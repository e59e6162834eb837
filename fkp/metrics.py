"""Accuracy measures for 68-point predictions: NME, failure rate, AUC and the CED curve.

NME (normalised mean error) of one face is the mean Euclidean distance between predicted and
true points divided by the inter-ocular distance: the distance between the true outer eye
corners, points 36 and 45. A face *fails* when its NME is above 8%; the AUC is the area under
the cumulative error distribution (CED) from 0 to 8%, divided by 8% so that it lies in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fkp.landmarks import LEFT_EYE_OUTER, REGIONS, RIGHT_EYE_OUTER

FAILURE_THRESHOLD = 0.08


def interocular_distance(truth: np.ndarray) -> np.ndarray:
    """(N, 68, 2) true points -> (N,) distance between the outer eye corners (36 and 45)."""
    truth = np.asarray(truth, dtype=np.float64)
    return np.linalg.norm(truth[:, RIGHT_EYE_OUTER] - truth[:, LEFT_EYE_OUTER], axis=-1)


def point_errors(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, 68, 2) predictions and truth in pixels -> (N, 68) point errors / inter-ocular distance."""
    predicted = np.asarray(predicted, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if predicted.shape != truth.shape:
        raise ValueError(f"shapes differ: predicted {predicted.shape}, truth {truth.shape}")
    distances = np.linalg.norm(predicted - truth, axis=-1)
    return distances / interocular_distance(truth)[:, None]


def nme(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, 68, 2) predictions and truth in pixels -> (N,) NME per face (a fraction, not percent)."""
    return point_errors(predicted, truth).mean(axis=1)


def failure_rate(errors: np.ndarray, threshold: float = FAILURE_THRESHOLD) -> float:
    """Share of faces whose NME is above ``threshold``."""
    return float(np.mean(np.asarray(errors) > threshold))


def ced(errors: np.ndarray, threshold: float = FAILURE_THRESHOLD, steps: int = 801) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: for each NME level, the share of faces at or below it.

    Returns:
        (steps,) NME levels from 0 to ``threshold`` and (steps,) shares in [0, 1].
    """
    levels = np.linspace(0.0, threshold, steps)
    shares = (np.sort(np.asarray(errors))[None, :] <= levels[:, None]).mean(axis=1)
    return levels, shares


def auc(errors: np.ndarray, threshold: float = FAILURE_THRESHOLD) -> float:
    """Area under the CED curve from 0 to ``threshold``, normalised to [0, 1].

    Equals the mean over faces of ``max(0, 1 - nme / threshold)``, computed exactly.
    """
    errors = np.asarray(errors, dtype=np.float64)
    return float(np.mean(np.clip(1.0 - errors / threshold, 0.0, None)))


@dataclass(frozen=True)
class Report:
    """Summary figures of a set of predictions; fractions, not percent (NaN, and null in
    :meth:`as_dict`, when there are no faces)."""

    count: int
    mean_nme: float
    median_nme: float
    failure_rate: float
    auc: float
    region_nme: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready figures (a figure of no faces is None, not NaN)."""

        def figure(value: float) -> float | None:
            return None if np.isnan(value) else value

        return {
            "count": self.count,
            "mean_nme": figure(self.mean_nme),
            "median_nme": figure(self.median_nme),
            "failure_rate": figure(self.failure_rate),
            "auc": figure(self.auc),
            "region_nme": dict(self.region_nme),
        }

    def __str__(self) -> str:
        if self.count == 0:
            return "0 faces: no figures"
        regions = ", ".join(f"{name} {value:.2%}" for name, value in self.region_nme.items())
        return (
            f"{self.count} faces: mean NME {self.mean_nme:.2%}, median {self.median_nme:.2%}, "
            f"failure rate {self.failure_rate:.1%}, AUC@8% {self.auc:.3f}\nper region: {regions}"
        )


def _no_faces() -> Report:
    nan = float("nan")
    return Report(0, nan, nan, nan, nan, {})


def summarize(errors: np.ndarray) -> Report:
    """Summary figures of (N,) per-face NMEs alone (no per-region figures; NaN when N is 0)."""
    errors = np.asarray(errors, dtype=np.float64)
    if len(errors) == 0:
        return _no_faces()
    return Report(
        count=len(errors),
        mean_nme=float(errors.mean()),
        median_nme=float(np.median(errors)),
        failure_rate=failure_rate(errors),
        auc=auc(errors),
        region_nme={},
    )


def report(predicted: np.ndarray, truth: np.ndarray) -> Report:
    """All summary figures for (N, 68, 2) predictions against truth, both in pixels (NaN when N is 0)."""
    errors = point_errors(predicted, truth)
    if len(errors) == 0:
        return _no_faces()
    regions = {name: float(errors[:, indices].mean()) for name, indices in REGIONS.items()}
    return replace(summarize(errors.mean(axis=1)), region_nme=regions)


def plot_ced(curves: dict[str, np.ndarray], threshold: float = FAILURE_THRESHOLD, ax=None):
    """Plot the CED of one or more models: ``{label: (N,) NME per face}``; returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    for label, errors in curves.items():
        levels, shares = ced(errors, threshold)
        ax.plot(levels * 100, shares * 100, label=f"{label} (AUC {auc(errors, threshold):.3f})")
    ax.set_xlabel("NME (% of inter-ocular distance)")
    ax.set_ylabel("faces at or below (%)")
    ax.set_xlim(0, threshold * 100)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return ax
