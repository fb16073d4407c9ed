"""What the calibration and consistency RPCs compute from per-sample arrays, composed from
:mod:`.calibration` and :mod:`.consistency` (pure numpy: no gRPC, no catalog).

* **Baseline models** (:func:`baseline_models`): the leaderboard's rule for measured boards (see
  :mod:`.robustness`): a category among the baseline categories and a reference accuracy of at least
  the minimum. A model with no reference accuracy (not evaluated on the shift's reference) is not one.
* **The calibration trend** (:func:`linear_trend`, :func:`calibration_trend`): ordinary least squares
  of ECE on the shift against ECE on the reference over the baseline models, on linear axes (ECE is
  not an accuracy: the logit/probit axes of :func:`.baseline.fit_baseline` do not apply), with its
  R²; a model's ECE beyond the trend is its shift ECE minus the line's value at its reference ECE,
  like effective robustness (but positive means *worse* calibrated than the baseline predicts).
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .baseline import MIN_BASELINE_MODELS, least_squares
from .calibration import N_BINS, ece, ece_interval, reliability

__all__ = ["Calibrated", "Trend", "baseline_models", "calibrated", "calibration_trend", "linear_trend"]


def baseline_models(categories: Sequence[str], ref_acc: ArrayLike, baseline_categories: AbstractSet[str],
                    min_ref_acc: float) -> NDArray[np.bool_]:
    """Which models are baseline models: category in ``baseline_categories`` and reference accuracy
    (NaN: none) at least ``min_ref_acc``."""
    acc = np.asarray(ref_acc, dtype=np.float64)
    if acc.shape != (len(categories),):
        raise ValueError(f"{len(categories)} categories for {acc.size} reference accuracies")
    in_category = np.array([c in baseline_categories for c in categories], dtype=bool)
    return in_category & np.isfinite(acc) & (np.nan_to_num(acc, nan=-1.0) >= min_ref_acc)


@dataclass(frozen=True)
class Calibrated:
    """One model's calibration on one test set: ECE with its bootstrap interval and reliability bins."""

    samples: int
    accuracy: float
    mean_confidence: float
    ece: float
    ece_ci: tuple[float, float]
    bin_confidence: NDArray[np.float64]
    bin_accuracy: NDArray[np.float64]
    bin_count: NDArray[np.int64]


def calibrated(confidence: ArrayLike, correct: ArrayLike, *, resamples: int, n_bins: int = N_BINS,
               seed: int = 0, key: str = "samples") -> Calibrated:
    """ECE (equal-mass bins), its percentile bootstrap interval over samples (``key`` names the sample
    list: models on the same test set are resampled alike), and the reliability bins."""
    conf = np.asarray(confidence, dtype=np.float64)
    right = np.asarray(correct, dtype=bool)
    value = float(ece(conf, right, n_bins))
    low, high = (ece_interval(conf, right, n_bins, resamples=resamples, seed=seed, key=key) if resamples
                 else (value, value))
    mean_conf, acc, count = reliability(conf, right, n_bins)
    return Calibrated(samples=int(right.size), accuracy=float(right.mean()) if right.size else 0.0,
                      mean_confidence=float(conf.mean()) if conf.size else 0.0, ece=value,
                      ece_ci=(float(low), float(high)), bin_confidence=np.asarray(mean_conf, dtype=np.float64),
                      bin_accuracy=np.asarray(acc, dtype=np.float64), bin_count=np.asarray(count, dtype=np.int64))


@dataclass(frozen=True)
class Trend:
    """The line y = slope * x + intercept over ``n`` points, or why there is none (``ok`` false:
    ``slope``, ``intercept`` and ``r2`` are NaN)."""

    ok: bool
    reason: str
    n: int
    slope: float
    intercept: float
    r2: float

    def predict(self, x: ArrayLike) -> NDArray[np.float64]:
        """The line at ``x`` (NaN without a line)."""
        return self.slope * np.asarray(x, dtype=np.float64) + self.intercept


def linear_trend(x: ArrayLike, y: ArrayLike) -> Trend:
    """Ordinary least squares of y on x with R² (1 for a constant y, fitted exactly by slope 0).
    Fewer than :data:`~.baseline.MIN_BASELINE_MODELS` points, or no spread in x, give no line."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must be two equal-length vectors, got {xs.shape} and {ys.shape}")
    nan = float("nan")
    if xs.size < MIN_BASELINE_MODELS:
        return Trend(False, f"not enough baseline models ({xs.size})", int(xs.size), nan, nan, nan)
    solved = least_squares(xs, ys)
    if solved is None:
        return Trend(False, f"the {xs.size} baseline models have the same reference ECE", int(xs.size), nan, nan, nan)
    slope, intercept, r2 = solved
    return Trend(True, "", int(xs.size), slope, intercept, r2)


def calibration_trend(ref_ece: ArrayLike, shift_ece: ArrayLike,
                      baseline: ArrayLike) -> tuple[Trend, NDArray[np.float64]]:
    """The trend of shift ECE on reference ECE over the baseline models with a reference ECE (NaN:
    none), and each model's ECE beyond it (NaN where the model has no reference ECE or there is no
    line)."""
    ref = np.asarray(ref_ece, dtype=np.float64)
    shift = np.asarray(shift_ece, dtype=np.float64)
    base = np.asarray(baseline, dtype=bool)
    if not ref.shape == shift.shape == base.shape:
        raise ValueError(f"ref_ece, shift_ece and baseline must match: {ref.shape}, {shift.shape}, {base.shape}")
    used = base & np.isfinite(ref) & np.isfinite(shift)
    trend = linear_trend(ref[used], shift[used])
    beyond = shift - trend.predict(ref) if trend.ok else np.full(ref.shape, np.nan)
    return trend, beyond
