"""Bootstrap intervals for the baseline fit and for each model's effective robustness.

Pure maths (numpy/scipy): no gRPC, no Streamlit, no I/O. Every function takes a ``seed`` (an int or
a ``numpy.random.Generator``) and gives the same answer for the same inputs and seed.

* :func:`bootstrap_fit` resamples the **baseline models** with replacement: percentile intervals of
  the slope and intercept and a band of the predicted shift accuracy over a grid of reference
  accuracies (for the scatter plot).
* :func:`bootstrap_er` resamples the baseline models **and the test samples**. Test samples are
  resampled *paired*: one resample weighs the samples of a test set the same way for every model, so
  that models evaluated on the same images stay correlated as they really are.
* :func:`bootstrap_er_binomial` is the fallback when per-sample correctness is not available: each
  model's accuracies are redrawn as independent binomials. It ignores the correlation between
  models on the same images, so its intervals are wider than the paired ones (conservative).

A resample whose baseline models all share one reference accuracy (e.g. the same model drawn every
time) has no least-squares line; it is dropped, and ``used`` says how many resamples counted.

With ``keep_draws=True`` the ER functions also return every model's ER in every kept resample
(:attr:`ERInterval.draws`, float32): differences between models taken resample by resample are the
paired bootstrap of the difference (what "tied with the leader" and group means are built on).

**Shared resampling weights** (:mod:`.resampling`): resample *r* of a sample list weighs its samples
the same way for every model, whatever else is asked, so a model's resampled correct counts
(:func:`resampled_correct`) can be computed once and stored. :func:`bootstrap_er_counts` fits from
such counts: each resample's accuracies are ``counts / n``; the baseline models are resampled by
``integers`` draws from its own ``seed``. :func:`bootstrap_er` is exactly ``resampled_correct`` on both
lists followed by ``bootstrap_er_counts``, so intervals computed from stored counts equal those
computed from per-sample correctness, to the last bit.

These draws differ from those of earlier versions (one generator interleaved the baseline picks with
the sample counts, which no stored count could reproduce): intervals differ from theirs by Monte Carlo
noise only; point estimates never depended on the draws. The names of :mod:`.resampling` that callers
use with the bootstrap (:data:`WEIGHTS_METHOD`, :func:`resample_weights`, :func:`resampled_correct`,
:func:`sample_list_key`) are importable from here too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .baseline import FitUnavailable, Transform, check_transform, clip_accuracy, forward, inverse
from .resampling import (
    WEIGHTS_METHOD,
    check_seed,
    chunk_sizes,
    resample_weights,
    resampled_correct,
    sample_list_key,
)

__all__ = ["WEIGHTS_METHOD", "ERInterval", "FitBand", "bootstrap_er", "bootstrap_er_binomial", "ols_rows",
           "bootstrap_er_counts", "bootstrap_fit", "reference_grid", "resample_weights", "resampled_correct",
           "sample_list_key"]

Floats = NDArray[np.float64]
Seed = int | np.random.Generator


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


def ols_rows(x: Floats, y: Floats) -> tuple[Floats, Floats]:
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
    slopes, intercepts = ols_rows(x[picks], y[picks])
    slope_full, intercept_full = ols_rows(x[None, :], y[None, :])
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
    slope, intercept = ols_rows(x, y)
    return 100.0 * (acc_shift - inverse(t, slope[None, :] * z_ref + intercept[None, :]))


def _finish(er: Floats, mode: str, confidence: float, resamples: int, keep_draws: bool) -> ERInterval:
    keep = ~np.isnan(er).any(axis=0)
    if not keep.any():
        raise FitUnavailable("every bootstrap resample of the baseline was degenerate")
    low, high = _quantiles(er[:, keep], confidence, axis=1)
    return ERInterval(mode=mode, confidence=confidence, resamples=resamples, used=int(keep.sum()),
                      low=low, high=high, draws=er[:, keep].astype(np.float32) if keep_draws else None)


def _correctness(name: str, correct: ArrayLike) -> NDArray[np.bool_]:
    c = np.asarray(correct)
    if c.ndim != 2 or c.shape[1] == 0:
        raise ValueError(f"{name} must be a (models x samples) array with samples, got shape {c.shape}")
    return c.astype(bool, copy=False)


def _counts(name: str, counts: ArrayLike) -> NDArray[np.int64]:
    c = np.asarray(counts)
    if c.ndim != 2 or c.shape[1] == 0:
        raise ValueError(f"{name} must be a (models x resamples) array with resamples, got shape {c.shape}")
    return c.astype(np.int64, copy=False)


def bootstrap_er_counts(ref_counts: ArrayLike, n_ref: ArrayLike, shift_counts: ArrayLike, n_shift: ArrayLike,
                        baseline: ArrayLike, transform: str = "logit", *, confidence: float = 0.95,
                        seed: Seed = 0, keep_draws: bool = False) -> ERInterval:
    """Paired bootstrap of every model's ER from resampled correct counts (:func:`resampled_correct`).

    ``ref_counts`` and ``shift_counts`` are (models x resamples): each model's correct samples in each
    resample of the shared weights of its reference and shift sample lists; ``n_ref`` / ``n_shift``
    the lists' sizes (one, or one per model). Resample *b* takes column *b* of both, resamples the
    baseline models (drawn from ``seed``), refits and computes every model's ER.
    """
    t = check_transform(transform)
    c_ref = _counts("ref_counts", ref_counts)
    c_shift = _counts("shift_counts", shift_counts)
    if c_ref.shape != c_shift.shape:
        raise ValueError(f"ref_counts {c_ref.shape} and shift_counts {c_shift.shape} must have the same shape")
    models, resamples = c_ref.shape
    _check_settings(resamples, confidence)
    nr = np.broadcast_to(np.asarray(n_ref, dtype=np.int64), (models,))
    ns = np.broadcast_to(np.asarray(n_shift, dtype=np.int64), (models,))
    if (nr < 1).any() or (ns < 1).any():
        raise ValueError("n_ref and n_shift must be >= 1")
    base = _baseline_index(baseline, models)
    rng = _rng(seed)
    eps_ref, eps_shift = (0.5 / nr)[:, None], (0.5 / ns)[:, None]
    parts, lo = [], 0
    for chunk in chunk_sizes(resamples, models):
        acc_ref = c_ref[:, lo:lo + chunk].astype(np.float64) / nr[:, None]
        acc_shift = c_shift[:, lo:lo + chunk].astype(np.float64) / ns[:, None]
        parts.append(_er_from_accuracies(acc_ref, acc_shift, eps_ref, eps_shift, base, t, rng))
        lo += chunk
    return _finish(np.concatenate(parts, axis=1), "paired", confidence, resamples, keep_draws)


def _seeds(seed: Seed, weights_seed: int | None) -> tuple[int, np.random.Generator]:
    """(the weights' seed, the baseline's generator) of one bootstrap."""
    rng = _rng(seed)
    if weights_seed is not None:
        return check_seed(weights_seed), rng
    if isinstance(seed, np.random.Generator):
        return int(rng.integers(0, 2**63)), rng
    return check_seed(seed), rng


def bootstrap_er(ref_correct: ArrayLike, shift_correct: ArrayLike, baseline: ArrayLike,
                 transform: str = "logit", *, resamples: int = 1000, confidence: float = 0.95,
                 seed: Seed = 0, keep_draws: bool = False, ref_key: str = "reference", shift_key: str = "shift",
                 weights_seed: int | None = None) -> ERInterval:
    """Paired bootstrap of every model's ER from per-sample correctness.

    ``ref_correct`` is (models x reference samples) and ``shift_correct`` (models x shift samples),
    booleans, all models on the same samples in the same order. ``baseline`` selects the baseline
    models (indices, or a boolean mask over the models). Each resample reweighs the reference and the
    shift samples (the same weights for every model: the shared weights of the lists ``ref_key`` and
    ``shift_key`` under ``weights_seed``, which defaults to ``seed`` when that is an int) and redraws
    the baseline models, refits, and computes every model's ER; the interval is the percentile
    interval over resamples. Equal to :func:`bootstrap_er_counts` of :func:`resampled_correct`.
    """
    check_transform(transform)
    _check_settings(resamples, confidence)
    c_ref = _correctness("ref_correct", ref_correct)
    c_shift = _correctness("shift_correct", shift_correct)
    if c_ref.shape[0] != c_shift.shape[0]:
        raise ValueError(f"ref_correct has {c_ref.shape[0]} models, shift_correct {c_shift.shape[0]}")
    _baseline_index(baseline, c_ref.shape[0])
    wseed, rng = _seeds(seed, weights_seed)
    ref_counts = resampled_correct(c_ref, ref_key, resamples, seed=wseed)
    shift_counts = resampled_correct(c_shift, shift_key, resamples, seed=wseed)
    return bootstrap_er_counts(ref_counts, c_ref.shape[1], shift_counts, c_shift.shape[1], baseline, transform,
                               confidence=confidence, seed=rng, keep_draws=keep_draws)


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
    for chunk in chunk_sizes(resamples, models):
        acc_ref = rng.binomial(nr[:, None], raw_r[:, None], size=(models, chunk)) / nr[:, None]
        acc_shift = rng.binomial(ns[:, None], raw_s[:, None], size=(models, chunk)) / ns[:, None]
        parts.append(_er_from_accuracies(acc_ref, acc_shift, eps_ref, eps_shift, base, t, rng))
    return _finish(np.concatenate(parts, axis=1), "binomial", confidence, resamples, keep_draws)
