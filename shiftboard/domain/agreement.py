"""Accuracy without labels: agreement on the line (Baek, Jiang, Raghunathan and Kolter, NeurIPS 2022,
"Agreement-on-the-Line: Predicting the Performance of Neural Networks under Distribution Shift").

Pure maths (numpy/scipy): no gRPC, no Streamlit, no I/O.

**Agreement.** For models h, h' on a test set, ``agr(h, h')`` is the share of samples where their
top-1 predictions are equal (:func:`agreement_matrix`); it needs no labels.

**The agreement line.** Over every pair of models (i < j), least squares of the probit of the shift
agreement on the probit of the reference agreement (:func:`fit_agreement_line`):

    Φ⁻¹(agr_shift(i, j)) = a · Φ⁻¹(agr_ref(i, j)) + b

The paper's observation: whenever accuracy is on the line (Miller et al. 2021), agreement is on a
line too, with (nearly) the same slope and bias as the accuracy line.

**ALine-S** (:func:`aline_s`) applies the agreement line to each model's reference accuracy:

    Φ⁻¹(acc_shift(i)) = a · Φ⁻¹(acc_ref(i)) + b

**ALine-D** (:func:`aline_d`) uses only the slope: subtracting the agreement line of pair (i, j)
from the mean of the accuracy lines of i and j cancels b, which gives one equation per pair,

    ½ (Φ⁻¹(acc_shift(i)) + Φ⁻¹(acc_shift(j)))
        = Φ⁻¹(agr_shift(i, j)) + a · [½ (Φ⁻¹(acc_ref(i)) + Φ⁻¹(acc_ref(j))) − Φ⁻¹(agr_ref(i, j))],

m (m − 1) / 2 equations in the m unknowns Φ⁻¹(acc_shift(i)), solved by least squares (the system has
full column rank for m >= 3: the pair incidence matrix of a complete graph on 3 or more vertices).
Each model's estimate then draws on every pair it is in, not only on the fitted bias.

**Clipping.** Φ⁻¹ is infinite at 0 and 1: accuracies and agreements are clipped as
:func:`~.baseline.clip_accuracy` does (half a sample, ``1 / (2 n)``, when the sample count is known;
``DEFAULT_EPSILON`` otherwise). :func:`estimate_shift_accuracy` knows the sample counts from its
top-1 arrays and passes them on.

**Trust.** The estimates are only as good as the line: :attr:`AgreementLine.r2` is shown with them,
and :func:`estimate_shift_accuracy` warns when it is below :data:`MIN_R2`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .baseline import Transform, clip_accuracy, forward, inverse, least_squares
from .errors import InvalidArgument

__all__ = ["MIN_MODELS", "MIN_R2", "METHODS", "AgreementLine", "Estimate", "agreement_matrix", "aline_d",
           "aline_s", "estimate_shift_accuracy", "fit_agreement_line"]

Floats = NDArray[np.float64]

#: The fewest models for an agreement line (3 models give 3 pairs, and ALine-D's system full rank).
MIN_MODELS = 3
#: Below this R² of the agreement line (probit axes) the estimates come with a warning. Baek et al.
#: offer the linear fit of agreement as the label-free check of whether a shift is one where the
#: method works: agreement off the line goes with accuracy off the line, and then the estimates fail.
#: 0.95 is where the error of the estimates stops being small on the demo testbed
#: (``python -m bench aline``, 34 models, labels hidden): the 4 shifts with R² >= 0.95 had an ALine-D
#: mean absolute error of 0.4-1.8 points (naive "shift = reference": 0.4-4.0), the shifts between
#: 0.90 and 0.95 1.5-2.3 points, and those below 0.90 2.9-25 points.
MIN_R2 = 0.95
#: The estimators of :func:`estimate_shift_accuracy`.
METHODS: tuple[str, ...] = ("aline-d", "aline-s")


@dataclass(frozen=True)
class AgreementLine:
    """The agreement line Φ⁻¹(agr_shift) = slope · Φ⁻¹(agr_ref) + intercept over model pairs.

    ``ref_agreement`` / ``shift_agreement`` hold each pair's agreement (unclipped, for the plot) in
    the order of ``pairs`` (i < j). When ``ok`` is false ``reason`` says why and ``slope``,
    ``intercept`` and ``r2`` are NaN. ``n_ref`` / ``n_shift`` are the sample counts that set the
    clipping margin (None: :data:`~.baseline.DEFAULT_EPSILON`).
    """

    ok: bool
    reason: str
    transform: str
    n_pairs: int
    slope: float
    intercept: float
    r2: float
    ref_agreement: Floats
    shift_agreement: Floats
    pairs: tuple[tuple[int, int], ...]
    n_ref: int | None = None
    n_shift: int | None = None

    def trustworthy(self, min_r2: float = MIN_R2) -> bool:
        """Whether the line exists and fits with R² >= ``min_r2``."""
        return self.ok and bool(self.r2 >= min_r2)


@dataclass(frozen=True)
class Estimate:
    """Estimated shift accuracy per model, the line it came from, and a warning ("" when trustworthy)."""

    shift_acc: Floats
    method: str
    line: AgreementLine
    warning: str


def _top1(name: str, top1: ArrayLike) -> NDArray[np.int64]:
    a = np.asarray(top1)
    if a.ndim != 2 or a.shape[1] == 0:
        raise InvalidArgument(f"{name} must be a (models x samples) array of top-1 classes with samples, "
                              f"got shape {a.shape}")
    integral = a.dtype.kind in "iub" or (a.dtype.kind == "f" and bool(np.isfinite(a).all())
                                          and bool((a == np.round(a)).all()))
    if not integral:
        raise InvalidArgument(f"{name} must hold integer class indices, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def agreement_matrix(top1: np.ndarray) -> np.ndarray:
    """[models, models]: the share of samples where two models' top-1 are equal (diagonal 1)."""
    t = _top1("top1", top1)
    m, n = t.shape
    out = np.eye(m, dtype=np.float64)
    for i in range(m - 1):
        same = np.count_nonzero(t[i + 1:] == t[i], axis=1) / n
        out[i, i + 1:] = same
        out[i + 1:, i] = same
    return out


def _square(name: str, matrix: ArrayLike, m: int | None = None) -> Floats:
    a = np.asarray(matrix, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise InvalidArgument(f"{name} must be a square (models x models) agreement matrix, got shape {a.shape}")
    if m is not None and a.shape[0] != m:
        raise InvalidArgument(f"{name} is for {a.shape[0]} models, the accuracies for {m}: pass the same models")
    iu = np.triu_indices(a.shape[0], k=1)
    upper = a[iu]
    if not np.isfinite(upper).all() or (upper < 0).any() or (upper > 1).any():
        raise InvalidArgument(f"{name} must hold agreements in [0, 1]")
    return a


def _count(name: str, n: int | None) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InvalidArgument(f"{name} must be a sample count >= 1, got {n!r}")
    return int(n)


def _transform(transform: str) -> Transform:
    if transform != "probit":
        raise InvalidArgument(f"unknown transform {transform!r} for the agreement line: use probit")
    return "probit"


def _accuracies(ref_acc: ArrayLike, m: int | None = None) -> Floats:
    a = np.asarray(ref_acc, dtype=np.float64)
    if a.ndim != 1:
        raise InvalidArgument(f"ref_acc must be one accuracy per model, got shape {a.shape}")
    if m is not None and a.size != m:
        raise InvalidArgument(f"ref_acc has {a.size} models, the agreement matrices {m}: pass the same models")
    if not np.isfinite(a).all() or (a < 0).any() or (a > 1).any():
        raise InvalidArgument("ref_acc must be accuracies (fractions) in [0, 1]")
    return a


def _probit(values: Floats, n: int | None) -> Floats:
    clipped, _ = clip_accuracy(values, n)
    return forward("probit", clipped)


def fit_agreement_line(ref_agreement: np.ndarray, shift_agreement: np.ndarray, transform: str = "probit", *,
                       n_ref: int | None = None, n_shift: int | None = None) -> AgreementLine:
    """Least squares of Φ⁻¹(shift agreement) on Φ⁻¹(reference agreement) over the pairs i < j.

    ``ref_agreement`` / ``shift_agreement`` are [m, m] matrices of the same models (m >= 3; the upper
    triangle is used). ``n_ref`` / ``n_shift``: the sample counts the agreements were measured on (the
    clipping margin; see the module docstring). Reference agreements that are all equal give a line
    with ``ok=False`` and a reason.
    """
    t = _transform(transform)
    ref = _square("ref_agreement", ref_agreement)
    m = ref.shape[0]
    shift = _square("shift_agreement", shift_agreement, m)
    if m < MIN_MODELS:
        raise InvalidArgument(f"an agreement line needs at least {MIN_MODELS} models, got {m}")
    nr, ns = _count("n_ref", n_ref), _count("n_shift", n_shift)
    iu = np.triu_indices(m, k=1)
    pairs = tuple((int(i), int(j)) for i, j in zip(iu[0], iu[1], strict=True))
    x_raw, y_raw = ref[iu].copy(), shift[iu].copy()
    solved = least_squares(_probit(x_raw, nr), _probit(y_raw, ns))
    if solved is None:
        nan = float("nan")
        return AgreementLine(ok=False, reason=f"the {len(pairs)} model pairs have the same reference agreement",
                             transform=t, n_pairs=len(pairs), slope=nan, intercept=nan, r2=nan,
                             ref_agreement=x_raw, shift_agreement=y_raw, pairs=pairs, n_ref=nr, n_shift=ns)
    slope, intercept, r2 = solved
    return AgreementLine(ok=True, reason="", transform=t, n_pairs=len(pairs), slope=slope, intercept=intercept,
                         r2=r2, ref_agreement=x_raw, shift_agreement=y_raw, pairs=pairs, n_ref=nr, n_shift=ns)


def _require_fit(line: AgreementLine) -> None:
    if not line.ok:
        raise InvalidArgument(f"the agreement line has no fit ({line.reason}): no estimate can be made")


def aline_s(line: AgreementLine, ref_acc: np.ndarray) -> np.ndarray:
    """ALine-S: Φ(slope · Φ⁻¹(ref_acc) + intercept), the shift accuracy predicted per model."""
    _require_fit(line)
    z = _probit(_accuracies(ref_acc), line.n_ref)
    return inverse("probit", line.slope * z + line.intercept)


def aline_d(line: AgreementLine, ref_acc: np.ndarray, ref_agreement: np.ndarray,
            shift_agreement: np.ndarray) -> np.ndarray:
    """ALine-D: the least-squares solution of the per-pair system of the module docstring.

    ``ref_agreement`` / ``shift_agreement`` are the [m, m] matrices the line was fitted on (or any of
    the same m models as ``ref_acc``); only the line's slope is used.
    """
    _require_fit(line)
    acc = _accuracies(ref_acc)
    m = acc.size
    ref = _square("ref_agreement", ref_agreement, m)
    shift = _square("shift_agreement", shift_agreement, m)
    if m < MIN_MODELS:
        raise InvalidArgument(f"ALine-D needs at least {MIN_MODELS} models, got {m}")
    iu = np.triu_indices(m, k=1)
    z_acc = _probit(acc, line.n_ref)
    g_ref = _probit(ref[iu], line.n_ref)
    g_shift = _probit(shift[iu], line.n_shift)
    rows = np.arange(iu[0].size)
    design = np.zeros((iu[0].size, m), dtype=np.float64)
    design[rows, iu[0]] = 0.5
    design[rows, iu[1]] = 0.5
    rhs = g_shift + line.slope * (0.5 * (z_acc[iu[0]] + z_acc[iu[1]]) - g_ref)
    solution, *_ = np.linalg.lstsq(design, rhs, rcond=None)
    return inverse("probit", solution)


def estimate_shift_accuracy(top1_ref: np.ndarray, top1_shift: np.ndarray, ref_acc: np.ndarray,
                            method: str = "aline-d") -> Estimate:
    """Each model's accuracy on an unlabelled shift from top-1 predictions only.

    ``top1_ref`` / ``top1_shift`` are [models, samples] top-1 classes of the same models (same order)
    on the reference and on the shift; ``ref_acc`` the models' (labelled) reference accuracies.
    ``method`` is ``"aline-d"`` (default) or ``"aline-s"``. When the line cannot be fitted the
    estimates are NaN and ``warning`` says why; when it fits with R² < :data:`MIN_R2` the estimates
    are given with a warning.
    """
    if method not in METHODS:
        raise InvalidArgument(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    ref_top1 = _top1("top1_ref", top1_ref)
    shift_top1 = _top1("top1_shift", top1_shift)
    if ref_top1.shape[0] != shift_top1.shape[0]:
        raise InvalidArgument(f"top1_ref has {ref_top1.shape[0]} models, top1_shift {shift_top1.shape[0]}: "
                              "pass the same models in the same order")
    acc = _accuracies(ref_acc, ref_top1.shape[0])
    if acc.size < MIN_MODELS:
        raise InvalidArgument(f"estimating accuracy without labels needs at least {MIN_MODELS} models, "
                              f"got {acc.size}")
    ref_agr, shift_agr = agreement_matrix(ref_top1), agreement_matrix(shift_top1)
    line = fit_agreement_line(ref_agr, shift_agr, n_ref=ref_top1.shape[1], n_shift=shift_top1.shape[1])
    if not line.ok:
        return Estimate(shift_acc=np.full(acc.size, np.nan), method=method, line=line,
                        warning=f"no estimate: {line.reason}")
    predicted = aline_s(line, acc) if method == "aline-s" else aline_d(line, acc, ref_agr, shift_agr)
    warning = "" if line.trustworthy() else (
        f"the agreement line fits poorly (R² {line.r2:.3f} < {MIN_R2}): the estimated accuracies may be far off")
    return Estimate(shift_acc=predicted, method=method, line=line, warning=warning)
