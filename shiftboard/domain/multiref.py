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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .baseline import TRANSFORMS, Transform, clip_accuracy, forward, inverse
from .errors import InvalidArgument

__all__ = ["PlaneFit", "fit_plane", "plane_effective_robustness"]

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
