"""The baseline fit and effective robustness (Taori et al. 2020; Miller et al. 2021).

Pure maths (numpy/scipy): no gRPC, no Streamlit, no I/O.

For a shift S with reference R, the baseline models' accuracies are fitted as

    T(acc_S) = a * T(acc_R) + b          (ordinary least squares of T(acc_S) on T(acc_R))

with T = logit (Taori et al., the default) or probit (Miller et al.), and the effective robustness
of a model m, in percentage points, is

    ER(m) = 100 * (acc_S(m) - T^-1(a * T(acc_R(m)) + b)).

**Clipping.** T is infinite at accuracies 0 and 1, so accuracies are clipped into
``[eps, 1 - eps]`` before T is applied, with ``eps = 1 / (2 n)`` for an accuracy measured on ``n``
samples (half a sample: the usual continuity correction; an accuracy ``k / n`` with ``0 < k < n`` is
never moved, only 0 and 1 are) and ``eps = DEFAULT_EPSILON`` when ``n`` is unknown. The fit lists the
baseline models whose accuracy was clipped (:attr:`Fit.clipped`) so that the UI can say so. The shift
accuracy in the ER formula itself is never clipped: it is not transformed.

**Leaving 0 and 1 out** (``extremes="exclude"``, the ImageNet testbed's rule). Instead of clipping,
baseline models with an accuracy of exactly 0 or 1 on either axis are left out of the fit and listed
(:attr:`Fit.excluded`; ImageNet-A's ResNet-50 scores 0%: the set was filtered against it). Nothing is
clipped then; a model whose *reference* accuracy is 0 or 1 is predicted the limit of the line there
(0 or 1 for a rising line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, logit, ndtr, ndtri

__all__ = [
    "DEFAULT_EPSILON", "EXTREMES", "MIN_BASELINE_MODELS", "TRANSFORMS", "Extremes", "Fit", "FitUnavailable",
    "Transform", "check_extremes", "check_transform", "clip_accuracy", "effective_robustness", "fit_baseline",
    "forward", "inverse", "predict_shift",
]

Transform = Literal["logit", "probit"]
TRANSFORMS: tuple[str, ...] = get_args(Transform)
#: What the fit does with accuracies of exactly 0 or 1: clip them by half a sample, or leave the model out.
Extremes = Literal["clip", "exclude"]
EXTREMES: tuple[str, ...] = get_args(Extremes)
#: The fewest baseline models for which a fit is reported.
MIN_BASELINE_MODELS = 3
#: Clipping margin when the sample count of an accuracy is unknown.
DEFAULT_EPSILON = 1e-4

Floats = NDArray[np.float64]


class FitUnavailable(ValueError):
    """A number was asked of a fit that has none (too few baseline models, or a degenerate baseline)."""


def check_transform(transform: str) -> Transform:
    """``transform`` as a :data:`Transform`; :class:`ValueError` naming the choices otherwise."""
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown transform {transform!r}: use one of {', '.join(TRANSFORMS)}")
    return transform  # type: ignore[return-value]


def check_extremes(extremes: str) -> Extremes:
    """``extremes`` as :data:`Extremes`; :class:`ValueError` naming the choices otherwise."""
    if extremes not in EXTREMES:
        raise ValueError(f"unknown handling of 0 and 1 {extremes!r}: use one of {', '.join(EXTREMES)}")
    return extremes  # type: ignore[return-value]


def forward(transform: Transform, p: ArrayLike) -> Floats:
    """T(p): logit or probit (``scipy.special.ndtri`` is ``scipy.stats.norm.ppf`` without the overhead)."""
    x = np.asarray(p, dtype=np.float64)
    return np.asarray(logit(x) if transform == "logit" else ndtri(x), dtype=np.float64)


def inverse(transform: Transform, z: ArrayLike) -> Floats:
    """T^-1(z): the logistic function or the normal CDF (``ndtr`` is ``norm.cdf``)."""
    x = np.asarray(z, dtype=np.float64)
    return np.asarray(expit(x) if transform == "logit" else ndtr(x), dtype=np.float64)


def _check_accuracies(name: str, acc: ArrayLike) -> Floats:
    a = np.atleast_1d(np.asarray(acc, dtype=np.float64))
    if a.ndim != 1:
        raise ValueError(f"{name} must be one accuracy per model, got shape {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any() or (a > 1).any():
        raise ValueError(f"{name} must be accuracies in [0, 1], got {a[~((a >= 0) & (a <= 1))][:5].tolist()}")
    return a


def _epsilon(n: ArrayLike | None, size: int) -> Floats:
    if n is None:
        return np.full(size, DEFAULT_EPSILON)
    counts = np.broadcast_to(np.asarray(n, dtype=np.float64), (size,))
    if (counts < 1).any() or not np.isfinite(counts).all():
        raise ValueError(f"sample counts must be >= 1, got {counts[~(counts >= 1)][:5].tolist()}")
    return 0.5 / counts


def clip_accuracy(acc: ArrayLike, n: ArrayLike | None = None) -> tuple[Floats, NDArray[np.bool_]]:
    """Accuracies moved into ``[eps, 1 - eps]`` and a mask of those that moved.

    ``eps = 1 / (2 n)`` per accuracy when its sample count ``n`` is given (a scalar or one per
    accuracy), :data:`DEFAULT_EPSILON` otherwise. See the module docstring.
    """
    a = _check_accuracies("accuracies", acc)
    eps = _epsilon(n, a.size)
    clipped = np.clip(a, eps, 1.0 - eps)
    return clipped, clipped != a


@dataclass(frozen=True, kw_only=True)
class Fit:
    """The baseline fit T(acc_S) = slope * T(acc_R) + intercept, or why there is none.

    When ``ok`` is false, ``reason`` says why (e.g. ``"not enough baseline models (2)"``) and
    ``slope``, ``intercept`` and ``r2`` are None: there are no numbers to show.
    ``clipped`` names the baseline models whose reference or shift accuracy was clipped;
    ``excluded`` those left out because an accuracy was exactly 0 or 1 (``extremes="exclude"``).
    ``n`` and ``models`` count and name the models in the fit.
    """

    ok: bool
    reason: str | None
    transform: Transform
    n: int
    slope: float | None
    intercept: float | None
    r2: float | None
    models: tuple[str, ...]
    clipped: tuple[str, ...]
    extremes: Extremes = "clip"
    excluded: tuple[str, ...] = ()

    def coefficients(self) -> tuple[float, float]:
        """``(slope, intercept)``; :class:`FitUnavailable` (with the reason) when there is no fit."""
        if not self.ok or self.slope is None or self.intercept is None:
            raise FitUnavailable(self.reason or "no baseline fit")
        return self.slope, self.intercept


def least_squares(x: Floats, y: Floats) -> tuple[float, float, float] | None:
    """Slope, intercept and R² of y on x; None when x has no spread."""
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if sxx <= 1e-12 * max(1.0, float(x @ x)):
        return None
    slope = float(dx @ (y - y.mean())) / sxx
    intercept = float(y.mean() - slope * x.mean())
    residual = y - (slope * x + intercept)
    ss_res = float(residual @ residual)
    dy = y - y.mean()
    ss_tot = float(dy @ dy)
    # A constant y is fitted exactly by slope 0: call that R² = 1 (as scikit-learn does), not 0/0.
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return slope, intercept, r2


def fit_baseline(ref_acc: ArrayLike, shift_acc: ArrayLike, transform: str = "logit", *,
                 n_ref: ArrayLike | None = None, n_shift: ArrayLike | None = None,
                 models: Sequence[str] | None = None, extremes: str = "clip") -> Fit:
    """Least squares of T(shift accuracy) on T(reference accuracy) over the baseline models.

    ``n_ref`` / ``n_shift`` are the sample counts (scalars or one per model) that set the clipping
    margin; ``models`` names the models for :attr:`Fit.clipped` (default: their positions as text).
    ``extremes="exclude"`` leaves models with an accuracy of exactly 0 or 1 out instead of clipping
    (see the module docstring). Fewer than :data:`MIN_BASELINE_MODELS` models, or reference accuracies
    that are all equal, give a fit with ``ok=False`` and a reason instead of numbers.
    """
    t = check_transform(transform)
    how = check_extremes(extremes)
    x_acc = _check_accuracies("ref_acc", ref_acc)
    y_acc = _check_accuracies("shift_acc", shift_acc)
    if x_acc.shape != y_acc.shape:
        raise ValueError(f"ref_acc and shift_acc must match: {x_acc.size} vs {y_acc.size} models")
    names = tuple(str(i) for i in range(x_acc.size)) if models is None else tuple(models)
    if len(names) != x_acc.size:
        raise ValueError(f"{len(names)} model names for {x_acc.size} models")
    if how == "exclude":
        return _fit_without_extremes(x_acc, y_acc, names, t)
    x_clip, x_moved = clip_accuracy(x_acc, n_ref)
    y_clip, y_moved = clip_accuracy(y_acc, n_shift)
    clipped = tuple(name for name, moved in zip(names, x_moved | y_moved, strict=True) if moved)
    unfit = Fit(ok=False, reason=f"not enough baseline models ({x_acc.size})", transform=t, n=x_acc.size,
                slope=None, intercept=None, r2=None, models=names, clipped=clipped)
    if x_acc.size < MIN_BASELINE_MODELS:
        return unfit
    solved = least_squares(forward(t, x_clip), forward(t, y_clip))
    if solved is None:
        return replace(unfit, reason=f"the {x_acc.size} baseline models have the same reference accuracy")
    slope, intercept, r2 = solved
    return replace(unfit, ok=True, reason=None, slope=slope, intercept=intercept, r2=r2)


def _fit_without_extremes(x_acc: Floats, y_acc: Floats, names: tuple[str, ...], t: Transform) -> Fit:
    inside = (x_acc > 0) & (x_acc < 1) & (y_acc > 0) & (y_acc < 1)
    kept = tuple(name for name, keep in zip(names, inside, strict=True) if keep)
    excluded = tuple(name for name, keep in zip(names, inside, strict=True) if not keep)
    n = len(kept)
    unfit = Fit(ok=False, reason=f"not enough baseline models ({n})", transform=t, n=n, slope=None,
                intercept=None, r2=None, models=kept, clipped=(), extremes="exclude", excluded=excluded)
    if n < MIN_BASELINE_MODELS:
        return unfit
    solved = least_squares(forward(t, x_acc[inside]), forward(t, y_acc[inside]))
    if solved is None:
        return replace(unfit, reason=f"the {n} baseline models have the same reference accuracy")
    slope, intercept, r2 = solved
    return replace(unfit, ok=True, reason=None, slope=slope, intercept=intercept, r2=r2)


def predict_shift(fit: Fit, ref_acc: ArrayLike, n_ref: ArrayLike | None = None) -> Floats:
    """The shift accuracy the baseline predicts, T^-1(a * T(ref) + b), one per reference accuracy.

    A fit made with ``extremes="exclude"`` clips nothing: at a reference accuracy of 0 or 1 it
    predicts the line's limit there.
    """
    slope, intercept = fit.coefficients()
    if fit.extremes == "exclude":
        x = _check_accuracies("ref_acc", ref_acc)
        inner = np.clip(x, np.finfo(np.float64).tiny, 1.0 - np.finfo(np.float64).epsneg)
        predicted = inverse(fit.transform, slope * forward(fit.transform, inner) + intercept)
        if slope == 0:
            return np.where((x == 0) | (x == 1), float(inverse(fit.transform, intercept)), predicted)
        low, high = (0.0, 1.0) if slope > 0 else (1.0, 0.0)
        return np.where(x == 0, low, np.where(x == 1, high, predicted))
    x, _ = clip_accuracy(ref_acc, n_ref)
    return inverse(fit.transform, slope * forward(fit.transform, x) + intercept)


def effective_robustness(fit: Fit, ref_acc: float, shift_acc: float, *, n_ref: int | None = None) -> float:
    """ER in percentage points: ``100 * (shift_acc - T^-1(a * T(ref_acc) + b))``.

    ``n_ref`` sets the clipping margin of ``ref_acc`` (see the module docstring). Raises
    :class:`FitUnavailable` when the fit has no numbers.
    """
    shift = float(_check_accuracies("shift_acc", shift_acc)[0])
    predicted = float(predict_shift(fit, [ref_acc], None if n_ref is None else [n_ref])[0])
    return 100.0 * (shift - predicted)
