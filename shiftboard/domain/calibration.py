"""Calibration from stored confidences: expected calibration error with equal-mass bins.

Pure maths (numpy): no gRPC, no Streamlit, no I/O.

**ECE** (Naeini, Cooper and Hauskrecht, AAAI 2015; Guo, Pleiss, Sun and Weinberger, ICML 2017, "On
Calibration of Modern Neural Networks", who use 15 bins) with *equal-mass* bins (the adaptive binning
of Nixon et al., CVPR Workshops 2019, "Measuring Calibration in Deep Learning"):
the n samples are sorted by confidence (ties in their given order) and cut into ``n_bins`` bins of
as equal a size as possible (sizes differ by at most one, the larger first: ``numpy.array_split``),

    ECE = Σ_b (|B_b| / n) · |acc(B_b) − conf(B_b)|,

acc(B_b) the share of correct samples in bin b and conf(B_b) their mean confidence. With fewer
samples than bins, only the non-empty bins count. Equal-mass bins keep every bin's accuracy measured
on n / n_bins samples, where equal-width bins leave most samples in the top bin for modern models.

**Interval** (:func:`ece_interval`): percentile bootstrap over samples. Resample r reweighs the
samples with the shared resampling weights of :mod:`.resampling` (``key`` names the sample list, so
two models on the same test set are resampled alike). ECE is an absolute value, so its bootstrap
distribution sits slightly above the point estimate; for a well-calibrated model (ECE near its noise
floor) the percentile interval may not contain the point estimate.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidArgument
from .resampling import chunk_sizes, resample_weights

__all__ = ["N_BINS", "ece", "ece_draws", "ece_interval", "reliability"]

Floats = NDArray[np.float64]

#: Equal-mass bins of the ECE (issue 15: 15 bins, as Guo et al.'s ECE).
N_BINS = 15


def _inputs(confidence: ArrayLike, correct: ArrayLike, n_bins: int) -> tuple[Floats, Floats]:
    conf = np.asarray(confidence, dtype=np.float64)
    right = np.asarray(correct)
    if conf.ndim != 1 or conf.size == 0:
        raise InvalidArgument(f"confidence must be one value per sample with samples, got shape {conf.shape}")
    if right.shape != conf.shape:
        raise InvalidArgument(f"confidence has {conf.size} samples, correct {right.size}: pass one flag per sample")
    if not np.isfinite(conf).all() or (conf < 0).any() or (conf > 1).any():
        raise InvalidArgument("confidence must be probabilities in [0, 1]")
    if right.dtype != np.bool_ and not np.isin(right, (0, 1)).all():
        raise InvalidArgument("correct must be booleans (or 0/1), one per sample")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise InvalidArgument(f"n_bins must be an int >= 1, got {n_bins!r}")
    order = np.argsort(conf, kind="stable")
    return conf[order], right.astype(np.float64)[order]


def _bins(conf: Floats, right: Floats, n_bins: int) -> tuple[Floats, Floats, Floats]:
    """Per non-empty bin of the sorted samples: (mean confidence, accuracy, count)."""
    n = conf.size
    bounds = np.array([len(part) for part in np.array_split(np.arange(n), n_bins)])
    bounds = bounds[bounds > 0]
    starts = np.concatenate(([0], np.cumsum(bounds)[:-1]))
    counts = bounds.astype(np.float64)
    mean_conf = np.add.reduceat(conf, starts) / counts
    accuracy = np.add.reduceat(right, starts) / counts
    return mean_conf, accuracy, counts


def _ece_sorted(conf: Floats, right: Floats, n_bins: int) -> float:
    mean_conf, accuracy, counts = _bins(conf, right, n_bins)
    return float(np.sum(counts * np.abs(accuracy - mean_conf)) / conf.size)


def ece(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error over ``n_bins`` equal-mass bins (see the module docstring), in [0, 1]."""
    conf, right = _inputs(confidence, correct, n_bins)
    return _ece_sorted(conf, right, n_bins)


def reliability(confidence: np.ndarray, correct: np.ndarray,
                n_bins: int = N_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-mass bin, lowest confidence first: (mean confidence, accuracy, sample count).

    Only non-empty bins are returned (fewer than ``n_bins`` when there are fewer samples than bins).
    """
    conf, right = _inputs(confidence, correct, n_bins)
    mean_conf, accuracy, counts = _bins(conf, right, n_bins)
    return mean_conf, accuracy, counts.astype(np.int64)


def ece_interval(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS, resamples: int = 200,
                 level: float = 0.95, seed: int = 0, *, key: str = "samples") -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`ece` over samples, at confidence ``level``
    (the quantiles of :func:`ece_draws`)."""
    if not 0 < level < 1:
        raise InvalidArgument(f"level must lie in (0, 1), got {level}")
    values = ece_draws(confidence, correct, n_bins, resamples, seed, key=key)
    alpha = 1.0 - level
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def ece_draws(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS, resamples: int = 200,
              seed: int = 0, *, key: str = "samples") -> Floats:
    """:func:`ece` in each of ``resamples`` bootstrap resamples over samples.

    Each resample draws n samples with replacement (the shared weights of the sample list ``key``
    under ``seed``: :func:`~.resampling.resample_weights`, so resample r is the same draw of samples for
    every model on the list), re-sorts nothing (the samples are sorted once; a resample keeps that
    order) and recomputes the ECE with the same binning.
    """
    conf, right = _inputs(confidence, correct, n_bins)
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer) or resamples < 1:
        raise InvalidArgument(f"resamples must be an int >= 1, got {resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidArgument(f"seed must be an int >= 0, got {seed!r}")
    n = conf.size
    # The weights are drawn in the caller's sample order; sorting permutes them with the samples.
    order = np.argsort(np.asarray(confidence, dtype=np.float64), kind="stable")
    values = np.empty(resamples, dtype=np.float64)
    start = 0
    for chunk in chunk_sizes(resamples, n):
        weights = resample_weights(key, n, start, start + chunk, seed=int(seed))[:, order]
        for row, w in enumerate(weights):
            picks = np.repeat(np.arange(n), w.astype(np.int64))
            values[start + row] = _ece_sorted(conf[picks], right[picks], n_bins)
        start += chunk
    return values
