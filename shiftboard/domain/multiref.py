"""Effective robustness against several references: the plane fit (Shi, Carlini, Balashankar, Schmidt,
Hsieh, Beutel and Qin, NeurIPS 2023, "Effective Robustness against Natural Distribution Shifts for
Models with Different Training Data": multi-ID effective robustness).

Pure maths (numpy/scipy): no gRPC, no Streamlit, no I/O.

A shift S may name k >= 1 reference test sets R_1 .. R_k (the paper's example: ImageNet and YFCC, one
in-distribution test set per training distribution). Over the baseline models, ordinary least squares of

    T(acc_S) = β_0 + β_1 · T(acc_R1) + ... + β_k · T(acc_Rk)

with T = logit (the paper's choice, the default) or probit; for k = 1 it is the baseline fit of
:mod:`.baseline`. A model's effective robustness against the plane, in percentage points as
everywhere in shiftboard, is

    ER(m) = 100 · (acc_S(m) − T⁻¹(β_0 + Σ_i β_i · T(acc_Ri(m)))).

Accuracies are clipped into [eps, 1 − eps] before T as :func:`~.baseline.clip_accuracy` does. The fit
needs more models than coefficients (n > k + 1) and reference accuracies that are not collinear;
otherwise :class:`PlaneFit` has ``ok=False`` and a reason.

**Intervals** (:func:`bootstrap_plane_er`): each resample redraws every model's accuracy on every
reference and on the shift as an independent ``Binomial(n, acc) / n`` and the baseline models with
replacement, refits the plane and recomputes every model's plane ER; percentile intervals over the
resamples whose plane is determined. This is the single fit's accuracy-only bootstrap
(:func:`~.bootstrap.bootstrap_er_binomial`) with k references: it needs no per-sample data, and it
leaves out the correlation between a model's results on the same samples, so the tie marks of the
single board are not repeated for the plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .baseline import TRANSFORMS, Transform, clip_accuracy, forward, inverse
from .errors import InvalidArgument

__all__ = ["PlaneFit", "bootstrap_plane_er", "fit_plane", "plane_effective_robustness"]

Floats = NDArray[np.float64]


def _transform(transform: str) -> Transform:
    if transform not in TRANSFORMS:
        raise InvalidArgument(f"unknown transform {transform!r}: use one of {', '.join(TRANSFORMS)}")
    return transform  # type: ignore[return-value]


def _ref_accs(ref_accs: ArrayLike, references: int | None = None) -> Floats:
    a = np.asarray(ref_accs, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] == 0:
        raise InvalidArgument(f"ref_accs must be a (models x references) array of accuracies, got shape {a.shape}")
    if references is not None and a.shape[1] != references:
        raise InvalidArgument(f"ref_accs has {a.shape[1]} references, the plane was fitted on {references}")
    if not np.isfinite(a).all() or (a < 0).any() or (a > 1).any():
        raise InvalidArgument("ref_accs must be accuracies (fractions) in [0, 1]")
    return a


def _shift_acc(shift_acc: ArrayLike, models: int) -> Floats:
    s = np.asarray(shift_acc, dtype=np.float64)
    if s.ndim != 1 or s.size != models:
        raise InvalidArgument(f"shift_acc must be one accuracy per model ({models}), got shape {s.shape}")
    if not np.isfinite(s).all() or (s < 0).any() or (s > 1).any():
        raise InvalidArgument("shift_acc must be accuracies (fractions) in [0, 1]")
    return s


def _clip_columns(a: Floats, n: ArrayLike | None) -> Floats:
    """Each reference's accuracies clipped with its sample count (scalar, one per reference, or None)."""
    if n is None:
        return np.column_stack([clip_accuracy(a[:, r])[0] for r in range(a.shape[1])])
    counts = np.broadcast_to(np.asarray(n, dtype=np.float64), (a.shape[1],))
    return np.column_stack([clip_accuracy(a[:, r], counts[r])[0] for r in range(a.shape[1])])


@dataclass(frozen=True)
class PlaneFit:
    """T(acc_S) = intercept + Σ coefficients[i] · T(acc_Ri) over ``n`` baseline models, or why there is none.

    When ``ok`` is false ``reason`` says why, ``intercept`` and ``r2`` are NaN and ``coefficients`` is
    empty. ``n_ref`` holds the sample counts of the references used to clip (None: the default margin).
    """

    ok: bool
    reason: str
    transform: str
    n: int
    intercept: float
    coefficients: tuple[float, ...]
    r2: float
    n_ref: tuple[float, ...] | None = None

    def predict(self, ref_accs: np.ndarray) -> np.ndarray:
        """ref_accs [models, references] -> the shift accuracy the plane predicts per model."""
        if not self.ok:
            raise InvalidArgument(f"there is no plane fit ({self.reason}): nothing to predict")
        a = _ref_accs(ref_accs, len(self.coefficients))
        z = forward(_transform(self.transform), _clip_columns(a, self.n_ref))
        return inverse(_transform(self.transform), self.intercept + z @ np.asarray(self.coefficients))


def fit_plane(ref_accs: np.ndarray, shift_acc: np.ndarray, transform: str = "logit", *,
              n_ref: ArrayLike | None = None, n_shift: ArrayLike | None = None) -> PlaneFit:
    """Least squares of T(shift accuracy) on T(each reference's accuracy) over the baseline models.

    ``ref_accs`` is [models, references], ``shift_acc`` [models]. ``n_ref`` (one count, or one per
    reference) and ``n_shift`` are the sample counts that set the clipping margin.
    """
    t = _transform(transform)
    a = _ref_accs(ref_accs)
    models, k = a.shape
    s = _shift_acc(shift_acc, models)
    counts = None if n_ref is None else tuple(float(c) for c in np.broadcast_to(np.asarray(n_ref, float), (k,)))
    if counts is not None and min(counts) < 1:
        raise InvalidArgument("n_ref must be sample counts >= 1")
    nan = float("nan")
    if models <= k + 1:
        return PlaneFit(ok=False, reason=f"not enough baseline models ({models}) for a plane over {k} "
                        f"reference{'s' if k > 1 else ''}: need at least {k + 2}", transform=t, n=models,
                        intercept=nan, coefficients=(), r2=nan, n_ref=counts)
    x = forward(t, _clip_columns(a, counts))
    try:
        y = forward(t, clip_accuracy(s, n_shift)[0])
    except ValueError as exc:
        raise InvalidArgument(f"n_shift: {exc}") from None
    design = np.column_stack([np.ones(models), x])
    rank = np.linalg.matrix_rank(design)
    if rank < k + 1:
        return PlaneFit(ok=False, reason=f"the reference accuracies of the {models} baseline models are "
                        "collinear (or constant): no plane is determined", transform=t, n=models,
                        intercept=nan, coefficients=(), r2=nan, n_ref=counts)
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ beta
    dy = y - y.mean()
    ss_tot = float(dy @ dy)
    r2 = 1.0 - float(residual @ residual) / ss_tot if ss_tot > 0 else 1.0
    return PlaneFit(ok=True, reason="", transform=t, n=models, intercept=float(beta[0]),
                    coefficients=tuple(float(b) for b in beta[1:]), r2=r2, n_ref=counts)


def plane_effective_robustness(fit: PlaneFit, ref_accs: np.ndarray, shift_acc: np.ndarray) -> np.ndarray:
    """Each model's ER against the plane, in percentage points: 100 · (acc_S − plane prediction)."""
    a = _ref_accs(ref_accs)
    s = _shift_acc(shift_acc, a.shape[0])
    return 100.0 * (s - fit.predict(a))


def bootstrap_plane_er(ref_accs: np.ndarray, shift_acc: np.ndarray, n_ref: ArrayLike, n_shift: ArrayLike,
                       baseline: ArrayLike, transform: str = "logit", *, resamples: int = 1000,
                       confidence: float = 0.95, seed: int | np.random.Generator = 0) -> tuple[Floats, int]:
    """Percentile intervals of every model's plane ER (points), [models, 2], and the resamples used.

    ``ref_accs`` [models, references] and ``shift_acc`` [models] as for :func:`fit_plane`, for every model
    to be given an interval; ``n_ref`` the sample counts ([models, references], or one per reference),
    ``n_shift`` one per model (or one); ``baseline`` flags the models of the fit. See the module docstring.
    Rows are NaN when no resample determined a plane.
    """
    t = _transform(transform)
    a = _ref_accs(ref_accs)
    models, k = a.shape
    s = _shift_acc(shift_acc, models)
    nr = np.broadcast_to(np.asarray(n_ref, dtype=np.int64), (models, k))
    ns = np.broadcast_to(np.asarray(n_shift, dtype=np.int64), (models,))
    base = np.flatnonzero(np.asarray(baseline, dtype=bool))
    if (nr < 1).any() or (ns < 1).any():
        raise InvalidArgument("n_ref and n_shift must be sample counts >= 1")
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer) or resamples < 1:
        raise InvalidArgument(f"resamples must be an int >= 1, got {resamples!r}")
    if not 0 < confidence < 1:
        raise InvalidArgument(f"confidence must lie in (0, 1), got {confidence}")
    out = np.full((models, 2), np.nan)
    if base.size <= k + 1:
        return out, 0
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    draws = np.full((models, resamples), np.nan)
    for r in range(resamples):
        acc_r = rng.binomial(nr, a) / nr
        acc_s = rng.binomial(ns, s) / ns
        x = forward(t, np.clip(acc_r, 0.5 / nr, 1 - 0.5 / nr))
        y = forward(t, np.clip(acc_s, 0.5 / ns, 1 - 0.5 / ns))
        pick = rng.choice(base, size=base.size, replace=True)
        design = np.column_stack([np.ones(base.size), x[pick]])
        if np.linalg.matrix_rank(design) < k + 1:
            continue
        beta, *_ = np.linalg.lstsq(design, y[pick], rcond=None)
        draws[:, r] = 100.0 * (acc_s - inverse(t, beta[0] + x @ beta[1:]))
    kept = np.isfinite(draws).all(axis=0)
    if kept.any():
        alpha = 1.0 - confidence
        out = np.quantile(draws[:, kept], [alpha / 2, 1 - alpha / 2], axis=1).T
    return np.asarray(out, dtype=np.float64), int(kept.sum())
