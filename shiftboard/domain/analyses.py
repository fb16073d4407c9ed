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
* **Their intervals** (:func:`trend_intervals`): a paired bootstrap, as for ER. Resample r draws the
  samples of the shift and of the reference again (the same draw for every model: the shared weights
  of each sample list), gives every model its ECE on both (:func:`.calibration.ece_draws`), resamples
  the baseline models with replacement and refits the trend; percentile intervals of each model's ECE
  beyond the trend, and of the trend's slope and intercept, over the resamples whose trend exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .baseline import MIN_BASELINE_MODELS, least_squares
from .calibration import N_BINS, ece, ece_draws, reliability

__all__ = ["Calibrated", "Trend", "TrendIntervals", "baseline_models", "calibrated", "calibration_trend",
           "linear_trend", "trend_intervals"]


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
    """One model's calibration on one test set: ECE with its bootstrap interval and reliability bins;
    ``draws``: its ECE in every bootstrap resample (None without a bootstrap)."""

    samples: int
    accuracy: float
    mean_confidence: float
    ece: float
    ece_ci: tuple[float, float]
    bin_confidence: NDArray[np.float64]
    bin_accuracy: NDArray[np.float64]
    bin_count: NDArray[np.int64]
    draws: NDArray[np.float64] | None = None


def calibrated(confidence: ArrayLike, correct: ArrayLike, *, resamples: int, n_bins: int = N_BINS,
               seed: int = 0, key: str = "samples") -> Calibrated:
    """ECE (equal-mass bins), its percentile bootstrap interval over samples (``key`` names the sample
    list: models on the same test set are resampled alike), and the reliability bins."""
    conf = np.asarray(confidence, dtype=np.float64)
    right = np.asarray(correct, dtype=bool)
    value = float(ece(conf, right, n_bins))
    draws = ece_draws(conf, right, n_bins, resamples=resamples, seed=seed, key=key) if resamples else None
    low, high = (value, value) if draws is None else np.quantile(draws, [0.025, 0.975])
    mean_conf, acc, count = reliability(conf, right, n_bins)
    return Calibrated(samples=int(right.size), accuracy=float(right.mean()) if right.size else 0.0,
                      mean_confidence=float(conf.mean()) if conf.size else 0.0, ece=value,
                      ece_ci=(float(low), float(high)), bin_confidence=np.asarray(mean_conf, dtype=np.float64),
                      bin_accuracy=np.asarray(acc, dtype=np.float64), bin_count=np.asarray(count, dtype=np.int64),
                      draws=draws)


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


@dataclass(frozen=True)
class TrendIntervals:
    """Percentile intervals of each model's ECE beyond the trend ([models, 2]; NaN rows for a model
    without a reference ECE) and of the trend's slope and intercept, from ``used`` resamples."""

    beyond_ci: NDArray[np.float64]
    slope_ci: tuple[float, float]
    intercept_ci: tuple[float, float]
    used: int


def trend_intervals(ref_draws: ArrayLike, shift_draws: ArrayLike, baseline: ArrayLike, *, level: float = 0.95,
                    seed: int = 0) -> TrendIntervals:
    """The paired bootstrap of the module docstring. ``ref_draws`` / ``shift_draws`` are [models, resamples]
    ECEs (resample r the same draw of samples for every model; a row of NaN: no reference ECE);
    ``baseline`` flags the baseline models. ``seed`` draws the baseline resamples."""
    ref = np.asarray(ref_draws, dtype=np.float64)
    shift = np.asarray(shift_draws, dtype=np.float64)
    base = np.asarray(baseline, dtype=bool)
    if ref.ndim != 2 or ref.shape != shift.shape or base.shape != (ref.shape[0],):
        raise ValueError(f"ref_draws and shift_draws must be [models, resamples] for the {base.size} baseline "
                         f"flags, got {ref.shape} and {shift.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    models, resamples = ref.shape
    nan2 = (float("nan"), float("nan"))
    pool = np.flatnonzero(base & np.isfinite(ref).all(axis=1) & np.isfinite(shift).all(axis=1))
    if pool.size < MIN_BASELINE_MODELS or resamples == 0:
        return TrendIntervals(np.full((models, 2), np.nan), nan2, nan2, 0)
    rng = np.random.default_rng(seed)
    beyond = np.full((models, resamples), np.nan)
    slopes, intercepts = np.full(resamples, np.nan), np.full(resamples, np.nan)
    for r in range(resamples):
        pick = rng.choice(pool, size=pool.size, replace=True)
        solved = least_squares(ref[pick, r], shift[pick, r])
        if solved is None:
            continue
        slopes[r], intercepts[r], _ = solved
        beyond[:, r] = shift[:, r] - (slopes[r] * ref[:, r] + intercepts[r])
    kept = np.isfinite(slopes)
    if not kept.any():
        return TrendIntervals(np.full((models, 2), np.nan), nan2, nan2, 0)
    alpha = 1.0 - level
    q = [alpha / 2, 1 - alpha / 2]
    ci = np.full((models, 2), np.nan)
    has = np.isfinite(beyond[:, kept]).all(axis=1)
    if has.any():
        ci[has] = np.quantile(beyond[has][:, kept], q, axis=1).T
    s_lo, s_hi = np.quantile(slopes[kept], q)
    i_lo, i_hi = np.quantile(intercepts[kept], q)
    return TrendIntervals(ci, (float(s_lo), float(s_hi)), (float(i_lo), float(i_hi)), int(kept.sum()))
