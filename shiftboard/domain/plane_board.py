"""A shift's effective robustness against several references, beside its usual single-reference board.

Shi et al. (NeurIPS 2023): where a shift names further references (``TestSetSpec.extra_references``),
its baseline trend is a plane, ``T(shift acc) = b + sum_i a_i T(acc on reference i)``, fitted by least
squares (:func:`~.multiref.fit_plane`) over the same baseline models and on the same transform as the
single-reference fit of :func:`~.robustness.shift_leaderboard`; a model's plane ER is its shift accuracy
minus the plane's prediction, in percentage points. A model without an accuracy on every reference is
neither in the plane fit nor given a plane ER; the board's notes say how many. With the board's
bootstrap (``settings.resamples``) every plane ER gets an interval (:func:`~.multiref.bootstrap_plane_er`:
accuracies redrawn binomially, baseline models resampled, the plane refitted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidArgument
from .multiref import PlaneFit, bootstrap_plane_er, fit_plane, plane_effective_robustness
from .robustness import ShiftLeaderboard

__all__ = ["PlaneBoard", "plane_board"]


@dataclass(frozen=True, kw_only=True, eq=False)
class PlaneBoard:
    """The plane fit of one shift and, per model with every reference's accuracy, its prediction and ER.

    ``references``: the primary reference first, then the extra ones; ``predicted`` maps a model to the
    plane's predicted shift accuracy (a fraction), ``er`` to its plane ER (percentage points); both are
    empty without a fit. ``er_ci`` maps a model to the interval of its plane ER (empty without a
    bootstrap).
    """

    references: tuple[str, ...]
    fit: PlaneFit
    predicted: Mapping[str, float] = field(default_factory=dict)
    er: Mapping[str, float] = field(default_factory=dict)
    er_ci: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def plane_board(board: ShiftLeaderboard, references: Sequence[str], extra_accs: Mapping[str, Sequence[float]],
                extra_samples: Sequence[int] | None = None) -> PlaneBoard:
    """The plane of ``board``'s shift over ``references`` (the primary, then the extra ones).

    ``extra_accs`` maps a model of the board to its accuracies on the extra references, in their order;
    a model missing from it (no finished evaluation on one of them) is left out of the fit and gets no
    plane ER. The baseline is the board's (``Row.baseline``), the transform its settings'. With the extra
    references' sample counts (``extra_samples``) accuracies of 0 or 1 are clipped by half a sample, as in
    the single fit (the primary's and the shift's counts are the rows').
    """
    refs = tuple(references)
    if len(refs) < 2:
        raise InvalidArgument("a plane needs the primary reference and at least one extra reference")
    transform = board.settings.transform
    rows = [r for r in board.rows if r.model in extra_accs]
    for r in rows:
        if len(extra_accs[r.model]) != len(refs) - 1:
            raise InvalidArgument(f"{r.model}: {len(extra_accs[r.model])} extra-reference accuracies for "
                                  f"{len(refs) - 1} extra references")
    notes = []
    missing = [r.model for r in board.rows if r.model not in extra_accs]
    if missing:
        notes.append(f"no plane ER for {len(missing)} model(s) without a finished evaluation on every reference "
                     f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): they are not in the plane fit")
    accs = np.array([[r.ref_acc, *extra_accs[r.model]] for r in rows], dtype=np.float64).reshape(len(rows), len(refs))
    shift = np.array([r.shift_acc for r in rows], dtype=np.float64)
    base = np.array([r.baseline for r in rows], dtype=bool)
    n_ref = None
    if extra_samples is not None and rows:
        n_ref = [max(r.n_ref for r in rows), *extra_samples]
    n_shift = np.array([r.n_shift for r in rows], dtype=np.float64)
    try:
        fit = fit_plane(accs[base], shift[base], transform, n_ref=n_ref, n_shift=n_shift[base])
    except InvalidArgument as exc:
        fit = PlaneFit(ok=False, reason=exc.message, transform=transform, n=int(base.sum()), intercept=float("nan"),
                       coefficients=(), r2=float("nan"))
    if not fit.ok:
        return PlaneBoard(references=refs, fit=fit, notes=(f"no plane fit over {', '.join(refs)}: {fit.reason}",
                                                           *notes))
    predicted = np.asarray(fit.predict(accs), dtype=np.float64)
    er = plane_effective_robustness(fit, accs, shift)
    names = [r.model for r in rows]
    er_ci: dict[str, tuple[float, float]] = {}
    cfg = board.settings
    if cfg.resamples and extra_samples is not None:
        counts = np.array([[r.n_ref, *extra_samples] for r in rows], dtype=np.int64)
        ci, used = bootstrap_plane_er(accs, shift, counts, n_shift, base, transform, resamples=cfg.resamples,
                                      confidence=cfg.confidence, seed=cfg.seed)
        er_ci = {m: (float(lo), float(hi)) for m, (lo, hi) in zip(names, ci, strict=True) if np.isfinite(lo)}
        if used < cfg.resamples:
            notes.append(f"plane ER intervals from {used} of {cfg.resamples} resamples (the others drew a "
                         "baseline whose reference accuracies determine no plane)")
    return PlaneBoard(references=refs, fit=fit, notes=tuple(notes),
                      predicted={m: float(p) for m, p in zip(names, predicted, strict=True)},
                      er={m: float(e) for m, e in zip(names, er, strict=True)}, er_ci=er_ci)
