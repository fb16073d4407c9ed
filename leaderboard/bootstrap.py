"""Bootstrap intervals for the baseline fit and for each model's effective robustness.

Pure maths (numpy/scipy): no gRPC, no Streamlit, no I/O. Every function takes a ``seed`` (an int or
a ``numpy.random.Generator``) and gives the same answer for the same inputs and seed.

* :func:`bootstrap_fit` resamples the **baseline models** with replacement: percentile intervals of
  the slope and intercept and a band of the predicted shift accuracy over a grid of reference
  accuracies (for the scatter plot).
* :func:`bootstrap_er` resamples the baseline models **and the test samples**. Test samples are
  resampled *paired*: one resample draws one set of sample indices per test set and applies it to
  every model, so that models evaluated on the same images stay correlated as they really are. Each
  resample's accuracies are ``correct @ counts / n``, where ``counts`` (how often each sample was
  drawn) come from one ``integers`` draw and one ``bincount`` per chunk of resamples: a matrix
  product instead of a Python loop, in chunks that keep the count matrix near 16 MB.
* :func:`bootstrap_er_binomial` is the fallback when per-sample correctness is not available: each
  model's accuracies are redrawn as independent binomials. It ignores the correlation between
  models on the same images, so its intervals are wider than the paired ones (conservative).

A resample whose baseline models all share one reference accuracy (e.g. the same model drawn every
time) has no least-squares line; it is dropped, and ``used`` says how many resamples counted.

With ``keep_draws=True`` the ER functions also return every model's ER in every kept resample
(:attr:`ERInterval.draws`, float32): differences between models taken resample by resample are the
paired bootstrap of the difference (what "tied with the leader" and group means are built on).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .baseline import FitUnavailable, Transform, check_transform, clip_accuracy, forward, inverse

__all__ = ["ERInterval", "FitBand", "bootstrap_er", "bootstrap_er_binomial", "bootstrap_fit",
           "reference_grid"]

Floats = NDArray[np.float64]
Seed = int | np.random.Generator
#: Entries of the per-chunk count matrix (resamples x samples): ~16 MB as float32.
_CHUNK_ENTRIES = 1 << 22


@dataclass(frozen=True, kw_only=True, eq=False)
class FitBand:
    """Percentile intervals of the baseline fit from ``used`` of ``resamples`` bootstrap resamples.

    ``grid`` holds reference accuracies; ``predicted`` the point fit's shift accuracy there and
    ``low`` / ``high`` the band of the resampled fits' predictions.
    """

    transform: Transform
    confidence: float
    resamples: int
    used: int
    slope_ci: tuple[float, float]
    intercept_ci: tuple[float, float]
    grid: Floats
    predicted: Floats
    low: Floats
    high: Floats


@dataclass(frozen=True, kw_only=True, eq=False)
class ERInterval:
    """Percentile intervals of effective robustness (percentage points), one per model.

    ``mode`` is ``"paired"`` (per-sample resampling) or ``"binomial"`` (independent binomials).
    ``draws`` (models x ``used``) holds every kept resample's ER when asked for, else None.
    """

    mode: str
    confidence: float
    resamples: int
    used: int
    low: Floats
    high: Floats
    draws: NDArray[np.float32] | None = None


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_settings(resamples: int, confidence: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def _quantiles(values: Floats, confidence: float, axis: int) -> tuple[Floats, Floats]:
    alpha = 1.0 - confidence
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2], axis=axis)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def _ols_rows(x: Floats, y: Floats) -> tuple[Floats, Floats]:
    """Least squares of y on x along the last axis; NaN where x has no spread."""
    dx = x - x.mean(axis=-1, keepdims=True)
    sxx = np.einsum("...i,...i->...", dx, dx)
    sxy = np.einsum("...i,...i->...", dx, y)
    scale = np.maximum(1.0, np.einsum("...i,...i->...", x, x))
    ok = sxx > 1e-12 * scale
    slope = np.divide(sxy, sxx, out=np.full(sxx.shape, np.nan), where=ok)
    intercept = y.mean(axis=-1) - slope * x.mean(axis=-1)
    return slope, intercept


def reference_grid(ref_acc: ArrayLike, transform: str = "logit", points: int = 50,
                   n_ref: ArrayLike | None = None) -> Floats:
    """``points`` reference accuracies evenly spaced in T-space between the smallest and largest given."""
    t = check_transform(transform)
    clipped, _ = clip_accuracy(ref_acc, n_ref)
    z = forward(t, clipped)
    return inverse(t, np.linspace(float(z.min()), float(z.max()), max(2, points)))


def bootstrap_fit(ref_acc: ArrayLike, shift_acc: ArrayLike, transform: str = "logit", *,
                  n_ref: ArrayLike | None = None, n_shift: ArrayLike | None = None,
                  grid: ArrayLike | None = None, resamples: int = 1000, confidence: float = 0.95,
                  seed: Seed = 0) -> FitBand:
    """Bootstrap the baseline fit by resampling baseline models with replacement.

    Arguments are those of :func:`~.baseline.fit_baseline` (the baseline models only); ``grid``
    defaults to :func:`reference_grid` of the baseline's reference accuracies. Raises
    :class:`~.baseline.FitUnavailable` with fewer than 3 models or when every resample is degenerate.
    """
    t = check_transform(transform)
    _check_settings(resamples, confidence)
    x_acc, _ = clip_accuracy(ref_acc, n_ref)
    y_acc, _ = clip_accuracy(shift_acc, n_shift)
    if x_acc.size != y_acc.size:
        raise ValueError(f"ref_acc and shift_acc must match: {x_acc.size} vs {y_acc.size} models")
    if x_acc.size < 3:
        raise FitUnavailable(f"not enough baseline models ({x_acc.size})")
    x, y = forward(t, x_acc), forward(t, y_acc)
    picks = _rng(seed).integers(0, x.size, size=(resamples, x.size))
    slopes, intercepts = _ols_rows(x[picks], y[picks])
    slope_full, intercept_full = _ols_rows(x[None, :], y[None, :])
    if np.isnan(slope_full[0]):
        raise FitUnavailable(f"the {x.size} baseline models have the same reference accuracy")
    keep = ~np.isnan(slopes)
    if not keep.any():
        raise FitUnavailable("every bootstrap resample of the baseline was degenerate")
    slopes, intercepts = slopes[keep], intercepts[keep]
    g = reference_grid(x_acc, t) if grid is None else clip_accuracy(grid)[0]
    zg = forward(t, g)
    band = inverse(t, slopes[:, None] * zg[None, :] + intercepts[:, None])
    low, high = _quantiles(band, confidence, axis=0)
    s_low, s_high = _quantiles(slopes, confidence, axis=0)
    i_low, i_high = _quantiles(intercepts, confidence, axis=0)
    return FitBand(transform=t, confidence=confidence, resamples=resamples, used=int(keep.sum()),
                   slope_ci=(float(s_low), float(s_high)), intercept_ci=(float(i_low), float(i_high)),
                   grid=g, predicted=inverse(t, slope_full[0] * zg + intercept_full[0]), low=low, high=high)


def _baseline_index(baseline: ArrayLike, models: int) -> NDArray[np.intp]:
    base = np.asarray(baseline)
    if base.dtype == np.bool_:
        if base.shape != (models,):
            raise ValueError(f"a baseline mask must have one entry per model ({models}), got {base.shape}")
        base = np.flatnonzero(base)
    base = base.astype(np.intp)
    if base.size < 3:
        raise FitUnavailable(f"not enough baseline models ({base.size})")
    if (base < 0).any() or (base >= models).any():
        raise ValueError(f"baseline indices must lie in [0, {models})")
    return base


def _er_from_accuracies(acc_ref: Floats, acc_shift: Floats, eps_ref: Floats, eps_shift: Floats,
                        base: NDArray[np.intp], t: Transform, rng: np.random.Generator) -> Floats:
    """ER (models x resamples) for one chunk of resampled accuracies; NaN columns are degenerate."""
    z_ref = forward(t, np.clip(acc_ref, eps_ref, 1 - eps_ref))
    z_shift = forward(t, np.clip(acc_shift[base], eps_shift[base], 1 - eps_shift[base]))
    chunk = acc_ref.shape[1]
    picks = rng.integers(0, base.size, size=(chunk, base.size))
    x = np.take_along_axis(z_ref[base].T, picks, axis=1)
    y = np.take_along_axis(z_shift.T, picks, axis=1)
    slope, intercept = _ols_rows(x, y)
    return 100.0 * (acc_shift - inverse(t, slope[None, :] * z_ref + intercept[None, :]))


def _finish(er: Floats, mode: str, confidence: float, resamples: int, keep_draws: bool) -> ERInterval:
    keep = ~np.isnan(er).any(axis=0)
    if not keep.any():
        raise FitUnavailable("every bootstrap resample of the baseline was degenerate")
    low, high = _quantiles(er[:, keep], confidence, axis=1)
    return ERInterval(mode=mode, confidence=confidence, resamples=resamples, used=int(keep.sum()),
                      low=low, high=high, draws=er[:, keep].astype(np.float32) if keep_draws else None)


def _correctness(name: str, correct: ArrayLike) -> NDArray[np.float32]:
    c = np.asarray(correct)
    if c.ndim != 2 or c.shape[1] == 0:
        raise ValueError(f"{name} must be a (models x samples) array with samples, got shape {c.shape}")
    return c.astype(np.float32)


def _sample_counts(rng: np.random.Generator, chunk: int, n: int) -> NDArray[np.float32]:
    """How often each of n samples is drawn in each of ``chunk`` resamples of size n (chunk x n)."""
    draws = rng.integers(0, n, size=(chunk, n), dtype=np.int64)
    draws += (np.arange(chunk, dtype=np.int64) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=chunk * n).reshape(chunk, n).astype(np.float32)


def _chunks(resamples: int, size: int) -> Iterator[int]:
    step = max(1, min(resamples, _CHUNK_ENTRIES // max(1, size)))
    for start in range(0, resamples, step):
        yield min(step, resamples - start)


def bootstrap_er(ref_correct: ArrayLike, shift_correct: ArrayLike, baseline: ArrayLike,
                 transform: str = "logit", *, resamples: int = 1000, confidence: float = 0.95,
                 seed: Seed = 0, keep_draws: bool = False) -> ERInterval:
    """Paired bootstrap of every model's ER from per-sample correctness.

    ``ref_correct`` is (models x reference samples) and ``shift_correct`` (models x shift samples),
    booleans, all models on the same samples in the same order. ``baseline`` selects the baseline
    models (indices, or a boolean mask over the models). Each resample redraws the reference and the
    shift samples (the same indices for every model) and the baseline models, refits, and computes
    every model's ER; the interval is the percentile interval over resamples.
    """
    t = check_transform(transform)
    _check_settings(resamples, confidence)
    c_ref = _correctness("ref_correct", ref_correct)
    c_shift = _correctness("shift_correct", shift_correct)
    if c_ref.shape[0] != c_shift.shape[0]:
        raise ValueError(f"ref_correct has {c_ref.shape[0]} models, shift_correct {c_shift.shape[0]}")
    models, n_ref = c_ref.shape
    n_shift = c_shift.shape[1]
    base = _baseline_index(baseline, models)
    rng = _rng(seed)
    eps_ref = np.full((models, 1), 0.5 / n_ref)
    eps_shift = np.full((models, 1), 0.5 / n_shift)
    parts = []
    for chunk in _chunks(resamples, max(n_ref, n_shift)):
        acc_ref = (c_ref @ _sample_counts(rng, chunk, n_ref).T).astype(np.float64) / n_ref
        acc_shift = (c_shift @ _sample_counts(rng, chunk, n_shift).T).astype(np.float64) / n_shift
        parts.append(_er_from_accuracies(acc_ref, acc_shift, eps_ref, eps_shift, base, t, rng))
    return _finish(np.concatenate(parts, axis=1), "paired", confidence, resamples, keep_draws)


def bootstrap_er_binomial(ref_acc: ArrayLike, shift_acc: ArrayLike, n_ref: ArrayLike, n_shift: ArrayLike,
                          baseline: ArrayLike, transform: str = "logit", *, resamples: int = 1000,
                          confidence: float = 0.95, seed: Seed = 0, keep_draws: bool = False) -> ERInterval:
    """Bootstrap of every model's ER from accuracies and sample counts only.

    Each model's reference and shift accuracies are redrawn as independent ``Binomial(n, acc) / n``
    (see the module docstring for why this is conservative), the baseline models are resampled, the
    fit is redone and every model's ER computed.
    """
    t = check_transform(transform)
    _check_settings(resamples, confidence)
    acc_r, _ = clip_accuracy(ref_acc, n_ref)  # validates; the draws use the unclipped accuracies
    raw_r = np.asarray(ref_acc, dtype=np.float64).reshape(-1)
    raw_s = np.asarray(shift_acc, dtype=np.float64).reshape(-1)
    clip_accuracy(raw_s, n_shift)
    models = acc_r.size
    if raw_s.size != models:
        raise ValueError(f"ref_acc has {models} models, shift_acc {raw_s.size}")
    nr = np.broadcast_to(np.asarray(n_ref, dtype=np.int64), (models,))
    ns = np.broadcast_to(np.asarray(n_shift, dtype=np.int64), (models,))
    base = _baseline_index(baseline, models)
    rng = _rng(seed)
    eps_ref, eps_shift = (0.5 / nr)[:, None], (0.5 / ns)[:, None]
    parts = []
    for chunk in _chunks(resamples, models):
        acc_ref = rng.binomial(nr[:, None], raw_r[:, None], size=(models, chunk)) / nr[:, None]
        acc_shift = rng.binomial(ns[:, None], raw_s[:, None], size=(models, chunk)) / ns[:, None]
        parts.append(_er_from_accuracies(acc_ref, acc_shift, eps_ref, eps_shift, base, t, rng))
    return _finish(np.concatenate(parts, axis=1), "binomial", confidence, resamples, keep_draws)
