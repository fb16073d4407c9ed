"""Agreement between models beyond their accuracies: error consistency and unique solves.

Pure maths (numpy): no gRPC, no Streamlit, no I/O.

**Error consistency** (Geirhos, Meding and Wichmann, NeurIPS 2020, "Beyond accuracy: quantifying
trial-by-trial behaviour of CNNs and humans by measuring error consistency"; the metric of the
model-vs-human benchmark) is Cohen's kappa of two models' per-sample *correctness*:

    c_obs = share of samples both get right or both get wrong,
    c_exp = p_a · p_b + (1 − p_a) · (1 − p_b)      (two independent models of accuracies p_a, p_b),
    κ     = (c_obs − c_exp) / (1 − c_exp).

κ = 0: the models share no more errors than their accuracies imply; 1: the same errors; negative:
fewer shared errors than chance. κ is undefined (NaN, with a note) when c_exp = 1, i.e. when both
models get every sample right, or both get every sample wrong.

**Interval**: percentile bootstrap over samples (as Klein et al., NeurIPS 2025, "Quantifying Uncertainty
in Error Consistency", recommend), both models resampled alike with the shared resampling weights of
:mod:`.resampling`; resamples where κ is undefined are left out.

**Unique solves** (:func:`unique_solves`): per model, the samples it gets right that no baseline model
(other than itself) gets right.

**Intervals of the matrix** (:func:`matrix_intervals`): the same bootstrap over samples, every model
resampled alike, gives every pair's κ interval (with the identity c_both_wrong = 1 − p_a − p_b +
c_both_right, one weighted product per resample: O(models² · samples) multiply-adds each) and each
model's unique-solve count its interval (the count of its unique samples in the resample: which samples
are unique solves is a property of the samples, so resampling them moves only how often each is drawn).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidArgument
from .resampling import chunk_sizes, resample_weights

__all__ = ["Consistency", "MatrixIntervals", "error_consistency", "kappa_matrix", "matrix_intervals",
           "unique_solves"]

Floats = NDArray[np.float64]

#: The note of a kappa that is undefined.
UNDEFINED_NOTE = ("kappa is undefined: both models get every sample right (or both every sample wrong), "
                  "so chance alone explains their agreement")


@dataclass(frozen=True)
class Consistency:
    """Error consistency of two models on ``samples`` shared samples (see the module docstring).

    ``kappa_ci`` is the percentile bootstrap interval (NaN, NaN when there is none); ``note`` says why
    ``kappa`` is NaN when it is.
    """

    samples: int
    acc_a: float
    acc_b: float
    observed: float
    expected: float
    kappa: float
    kappa_ci: tuple[float, float]
    note: str = ""


def _flags(name: str, correct: ArrayLike, ndim: int) -> NDArray[np.bool_]:
    c = np.asarray(correct)
    if c.ndim != ndim or c.shape[-1] == 0:
        what = "one flag per sample" if ndim == 1 else "a (models x samples) array"
        raise InvalidArgument(f"{name} must be {what} with samples, got shape {c.shape}")
    if c.dtype != np.bool_ and not np.isin(c, (0, 1)).all():
        raise InvalidArgument(f"{name} must be booleans (or 0/1): whether each sample was classified correctly")
    return c.astype(bool, copy=False)


def _kappa(observed: ArrayLike, expected: ArrayLike) -> Floats:
    """κ where c_exp < 1, NaN elsewhere (no division warning)."""
    obs = np.asarray(observed, dtype=np.float64)
    exp = np.asarray(expected, dtype=np.float64)
    out = np.full(obs.shape, np.nan)
    np.divide(obs - exp, 1.0 - exp, out=out, where=exp < 1.0)
    return out


def error_consistency(correct_a: np.ndarray, correct_b: np.ndarray, resamples: int = 200, seed: int = 0, *,
                      key: str = "samples", level: float = 0.95) -> Consistency:
    """Error consistency (Cohen's κ of correctness) of two models on the same samples, with its interval.

    ``resamples`` bootstrap resamples over samples (0: no interval) of the sample list ``key`` under
    ``seed`` give the percentile interval at ``level``.
    """
    a = _flags("correct_a", correct_a, 1)
    b = _flags("correct_b", correct_b, 1)
    if a.shape != b.shape:
        raise InvalidArgument(f"correct_a has {a.size} samples, correct_b {b.size}: pass both models on the "
                              "same samples in the same order")
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer) or resamples < 0:
        raise InvalidArgument(f"resamples must be an int >= 0, got {resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidArgument(f"seed must be an int >= 0, got {seed!r}")
    if not 0 < level < 1:
        raise InvalidArgument(f"level must lie in (0, 1), got {level}")
    n = a.size
    pa, pb = float(a.mean()), float(b.mean())
    observed = float(np.count_nonzero(a == b)) / n
    expected = pa * pb + (1.0 - pa) * (1.0 - pb)
    kappa = float(_kappa(observed, expected))
    ci = (float("nan"), float("nan"))
    if resamples:
        fa, fb, same = a.astype(np.float32), b.astype(np.float32), (a == b).astype(np.float32)
        draws = np.empty(resamples, dtype=np.float64)
        start = 0
        for chunk in chunk_sizes(resamples, n):
            w = resample_weights(key, n, start, start + chunk, seed=int(seed))
            ra, rb = (w @ fa).astype(np.float64) / n, (w @ fb).astype(np.float64) / n
            ro = (w @ same).astype(np.float64) / n
            draws[start:start + chunk] = _kappa(ro, ra * rb + (1.0 - ra) * (1.0 - rb))
            start += chunk
        kept = draws[~np.isnan(draws)]
        if kept.size:
            alpha = 1.0 - level
            low, high = np.quantile(kept, [alpha / 2, 1 - alpha / 2])
            ci = (float(low), float(high))
    return Consistency(samples=n, acc_a=pa, acc_b=pb, observed=observed, expected=expected, kappa=kappa,
                       kappa_ci=ci, note=UNDEFINED_NOTE if np.isnan(kappa) else "")


def kappa_matrix(correct: np.ndarray) -> np.ndarray:
    """[models, models] error consistency κ of every pair (diagonal 1; NaN where κ is undefined)."""
    c = _flags("correct", correct, 2).astype(np.float64)
    n = c.shape[1]
    acc = c.mean(axis=1)
    both_right = c @ c.T
    both_wrong = (1.0 - c) @ (1.0 - c).T
    observed = (both_right + both_wrong) / n
    expected = np.outer(acc, acc) + np.outer(1.0 - acc, 1.0 - acc)
    out = _kappa(observed, expected)
    diagonal = np.diag_indices_from(out)
    out[diagonal] = np.where(np.isnan(out[diagonal]), np.nan, 1.0)  # exactly 1, not 1 - rounding
    return out


def unique_solves(correct: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Per model, the number of samples it gets right that no baseline model other than itself gets right.

    ``correct`` is [models, samples] booleans, ``baseline`` a boolean mask over the models.
    """
    c = _flags("correct", correct, 2)
    base = np.asarray(baseline)
    if base.dtype != np.bool_ or base.shape != (c.shape[0],):
        raise InvalidArgument(f"baseline must be a boolean mask with one entry per model ({c.shape[0]}), "
                              f"got {base.dtype} of shape {base.shape}")
    return np.count_nonzero(_unique_mask(c, base), axis=1).astype(np.int64)


def _unique_mask(c: NDArray[np.bool_], base: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """[models, samples]: the samples each model solves that no baseline model other than itself does."""
    right_by_baseline = c[base].sum(axis=0, dtype=np.int64)
    others = right_by_baseline[None, :] - (c & base[:, None])
    return c & (others == 0)


@dataclass(frozen=True)
class MatrixIntervals:
    """Percentile intervals: ``kappa_ci`` [models, models, 2] of the shown models (NaN where κ is undefined
    in every resample; None when not asked for), ``solves_ci`` [models, 2] of every model's unique solves."""

    kappa_ci: Floats | None
    solves_ci: Floats


def matrix_intervals(correct: np.ndarray, baseline: np.ndarray, shown: NDArray[np.intp] | list[int], *,
                     resamples: int, key: str, seed: int = 0, level: float = 0.95,
                     kappa: bool = True) -> MatrixIntervals:
    """The bootstrap of the module docstring over every model of ``correct`` ([models, samples]);
    ``shown``: the rows of the κ matrix (indices into ``correct``); ``kappa`` false leaves its intervals
    out (``kappa_ci`` None)."""
    c = _flags("correct", correct, 2)
    base = np.asarray(baseline, dtype=bool)
    if base.shape != (c.shape[0],):
        raise InvalidArgument(f"baseline must have one entry per model ({c.shape[0]}), got shape {base.shape}")
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer) or resamples < 1:
        raise InvalidArgument(f"resamples must be an int >= 1, got {resamples!r}")
    if not 0 < level < 1:
        raise InvalidArgument(f"level must lie in (0, 1), got {level}")
    n = c.shape[1]
    rows = np.asarray(shown, dtype=np.intp)
    unique = _unique_mask(c, base).astype(np.float32)
    flags = c[rows].astype(np.float32)
    m = rows.size
    solves = np.empty((c.shape[0], resamples), dtype=np.float64)
    kappas = np.empty((resamples, m, m), dtype=np.float64) if kappa else None
    start = 0
    for chunk in chunk_sizes(resamples, n):
        w = resample_weights(key, n, start, start + chunk, seed=int(seed))
        solves[:, start:start + chunk] = (unique @ w.T).astype(np.float64)
        if kappas is not None:
            acc = (w @ flags.T).astype(np.float64) / n  # [chunk, m]
            for j in range(chunk):
                both_right = ((flags * w[j]) @ flags.T).astype(np.float64) / n
                a = acc[j]
                observed = 1.0 - a[:, None] - a[None, :] + 2.0 * both_right
                expected = np.outer(a, a) + np.outer(1.0 - a, 1.0 - a)
                kappas[start + j] = _kappa(observed, expected)
        start += chunk
    alpha = 1.0 - level
    q = [alpha / 2, 1 - alpha / 2]
    solves_ci = np.quantile(solves, q, axis=1).T
    kappa_ci = None
    if kappas is not None:
        kappa_ci = np.full((m, m, 2), np.nan)
        defined = np.isfinite(kappas).any(axis=0)
        if defined.any():
            kappa_ci[defined] = np.nanquantile(kappas[:, defined], q, axis=0).T
    return MatrixIntervals(kappa_ci=kappa_ci, solves_ci=np.asarray(solves_ci, dtype=np.float64))
