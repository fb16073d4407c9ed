"""Intervals of accuracies estimated without labels: a bootstrap of agreement on the line.

Pure maths (numpy): no gRPC, no Streamlit, no I/O.

An estimate of :func:`~.agreement.estimate_shift_accuracy` rests on samples twice: the reference's
(its agreements, and each model's measured reference accuracy) and the shift's (its agreements). A
resample draws both sample lists again, independently (a multinomial count per sample, the shared
weights of :mod:`.resampling`, keyed by each list), and repeats the whole estimate on it: the
agreements of every pair, the reference accuracies, the agreement line, ALine-D (or ALine-S), and then
the board's effective robustness: the baseline fit T(estimate) = a · T(acc_ref) + b over the baseline
models, and ER = estimate − T⁻¹(a · T(acc_ref) + b), in points. Percentile intervals over the
resamples give ``shift_acc_ci`` and ``er_ci``; the ER draws (every model in the same resamples) give
the paired tie marks of :func:`~.ranking.paired_ties`, as on a labelled board.

What the interval covers: sampling noise of both test sets, carried through the line, the estimator
and the baseline fit. What it does not: whether agreement is on the line at all (its R², shown with the
estimates), the method's bias on shifts where it is not.

**Cost.** Each pair's weighted agreement is ``equal[pair, sample] @ weights.T``: the pairs are cut so
that one (pairs x samples) block of 0/1 stays within about 32 MB, and the weights come in the chunks of
:func:`~.resampling.chunk_sizes`; O(pairs x samples x resamples) multiply-adds in all (34 models, 561
pairs, 1,440 samples, 200 resamples: ~0.2 s). ALine-D's least-squares system has the same matrix in
every resample, so its pseudo-inverse is computed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .agreement import METHODS, MIN_MODELS
from .baseline import Transform, check_transform, clip_accuracy, forward, inverse
from .bootstrap import ols_rows
from .errors import InvalidArgument
from .ranking import paired_ties
from .resampling import chunk_sizes, resample_weights

__all__ = ["EstimateIntervals", "bootstrap_estimates"]

Floats = NDArray[np.float64]

#: Entries of one block of pair-equality flags (pairs x samples, float32): ~32 MB.
_BLOCK_ENTRIES = 1 << 23


@dataclass(frozen=True, kw_only=True, eq=False)
class EstimateIntervals:
    """Percentile intervals of the estimated shift accuracies and of their ER, per model.

    ``shift_acc_ci`` / ``er_ci`` are [models, 2] (fractions / points); ``er_ci`` is NaN where no baseline
    fit exists. ``diff_ci`` ([models, 2]) is each model's ER minus the leader's (the highest ER of
    ``er``) and ``tied`` its tie mark (:func:`~.ranking.paired_ties`). ``resamples`` counts the resamples
    that gave an estimate (a resample whose reference agreements have no spread gives none).
    """

    shift_acc_ci: Floats
    er_ci: Floats
    diff_ci: Floats
    tied: NDArray[np.bool_]
    resamples: int


def _pair_counts(top1: NDArray[np.int64], pairs: tuple[NDArray[np.intp], NDArray[np.intp]],
                 weights: NDArray[np.float32]) -> Floats:
    """[pairs, resamples]: each pair's weighted count of samples where the two top-1 are equal."""
    n = top1.shape[1]
    out = np.empty((pairs[0].size, weights.shape[0]), dtype=np.float64)
    step = max(1, _BLOCK_ENTRIES // n)
    for lo in range(0, pairs[0].size, step):
        i, j = pairs[0][lo:lo + step], pairs[1][lo:lo + step]
        equal = (top1[i] == top1[j]).astype(np.float32)
        out[lo:lo + i.size] = equal @ weights.T
    return out


def _probit(values: Floats, n: int) -> Floats:
    clipped = np.clip(values, 0.5 / n, 1.0 - 0.5 / n)
    return forward("probit", clipped)


def _check(top1_ref: np.ndarray, top1_shift: np.ndarray, correct_ref: np.ndarray,
           baseline: Sequence[bool] | np.ndarray) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32],
                                                             NDArray[np.bool_]]:
    ref, shift = np.asarray(top1_ref), np.asarray(top1_shift)
    correct, base = np.asarray(correct_ref), np.asarray(baseline, dtype=bool)
    if ref.ndim != 2 or shift.ndim != 2 or ref.shape[1] == 0 or shift.shape[1] == 0:
        raise InvalidArgument(f"top1_ref and top1_shift must be (models x samples) arrays with samples, got "
                              f"shapes {ref.shape} and {shift.shape}")
    m = ref.shape[0]
    if shift.shape[0] != m or correct.shape != ref.shape or base.shape != (m,):
        raise InvalidArgument(f"pass the same {m} models everywhere: top1_shift has {shift.shape[0]}, correct_ref "
                              f"shape {correct.shape} (want {ref.shape}), baseline {base.shape[0]} flags")
    if m < MIN_MODELS:
        raise InvalidArgument(f"estimating accuracy without labels needs at least {MIN_MODELS} models, got {m}")
    return (ref.astype(np.int64, copy=False), shift.astype(np.int64, copy=False),
            correct.astype(np.float32), base)


def bootstrap_estimates(top1_ref: np.ndarray, top1_shift: np.ndarray, correct_ref: np.ndarray,
                        baseline: Sequence[bool] | np.ndarray, *, method: str, transform: str, er: np.ndarray,
                        resamples: int, ref_key: str, shift_key: str, seed: int = 0,
                        confidence: float = 0.95) -> EstimateIntervals:
    """The bootstrap of the module docstring.

    ``top1_ref`` / ``top1_shift``: [models, samples] top-1 of the same models on the reference and on the
    shift; ``correct_ref``: [models, reference samples] whether each reference top-1 is right;
    ``baseline``: the models of the board's baseline fit; ``method``: the estimator the board used
    (``"aline-d"`` or ``"aline-s"``); ``transform``: the board's (logit or probit); ``er``: the board's
    point ER per model (points; NaN without a fit), which names the leader for the tie marks;
    ``ref_key`` / ``shift_key``: the sample-list keys of the shared resampling weights.
    """
    if method not in METHODS:
        raise InvalidArgument(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    try:
        t: Transform = check_transform(transform)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer) or resamples < 1:
        raise InvalidArgument(f"resamples must be an int >= 1, got {resamples!r}")
    if not 0 < confidence < 1:
        raise InvalidArgument(f"confidence must lie in (0, 1), got {confidence}")
    ref, shift, correct, base = _check(top1_ref, top1_shift, correct_ref, baseline)
    point_er = np.asarray(er, dtype=np.float64)
    m, n_ref = ref.shape
    n_shift = shift.shape[1]
    pairs = np.triu_indices(m, k=1)
    design = np.zeros((pairs[0].size, m), dtype=np.float64)
    rows = np.arange(pairs[0].size)
    design[rows, pairs[0]] = design[rows, pairs[1]] = 0.5
    solve = np.linalg.pinv(design)  # [models, pairs], the same in every resample
    estimates = np.full((m, resamples), np.nan)
    ers = np.full((m, resamples), np.nan)
    start = 0
    for chunk in chunk_sizes(resamples, max(n_ref, n_shift)):
        w_ref = resample_weights(ref_key, n_ref, start, start + chunk, seed=int(seed))
        w_shift = resample_weights(shift_key, n_shift, start, start + chunk, seed=int(seed))
        acc_ref = (correct @ w_ref.T).astype(np.float64) / n_ref  # [models, chunk]
        g_ref = _probit(_pair_counts(ref, pairs, w_ref) / n_ref, n_ref)  # [pairs, chunk]
        g_shift = _probit(_pair_counts(shift, pairs, w_shift) / n_shift, n_shift)
        slope, intercept = ols_rows(g_ref.T, g_shift.T)
        z_acc = _probit(acc_ref, n_ref)
        if method == "aline-s":
            z = slope * z_acc + intercept
        else:
            z = solve @ (g_shift + slope * (0.5 * (z_acc[pairs[0]] + z_acc[pairs[1]]) - g_ref))
        est = inverse("probit", z)
        estimates[:, start:start + chunk] = est
        if base.sum() >= 3:
            x = forward(t, clip_accuracy(acc_ref.ravel(), n_ref)[0]).reshape(acc_ref.shape)
            y = forward(t, clip_accuracy(np.nan_to_num(est, nan=0.5).ravel(), n_shift)[0]).reshape(est.shape)
            a, b = ols_rows(x[base].T, y[base].T)
            ers[:, start:start + chunk] = 100.0 * (est - inverse(t, a * x + b))
        start += chunk
    kept = np.isfinite(estimates).all(axis=0)
    alpha = 1.0 - confidence
    nan2 = np.full((m, 2), np.nan)
    shift_ci = np.quantile(estimates[:, kept], [alpha / 2, 1 - alpha / 2], axis=1).T if kept.any() else nan2
    with_er = kept & np.isfinite(ers).all(axis=0)
    er_ci, diff_ci, tied = nan2.copy(), nan2.copy(), np.zeros(m, dtype=bool)
    if with_er.any() and np.isfinite(point_er).all():
        er_ci = np.quantile(ers[:, with_er], [alpha / 2, 1 - alpha / 2], axis=1).T
        tied, low, high = paired_ties(point_er, ers[:, with_er], confidence)
        diff_ci = np.stack([low, high], axis=1)
    return EstimateIntervals(shift_acc_ci=np.asarray(shift_ci, dtype=np.float64),
                             er_ci=np.asarray(er_ci, dtype=np.float64), diff_ci=diff_ci, tied=tied,
                             resamples=int(kept.sum()))
