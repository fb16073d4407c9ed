"""Effective-robustness leaderboards: one shift's ranking, ties, and means over a group of shifts.

Pure maths (numpy/scipy): no gRPC, no Streamlit, no DuckDB. This module is the public face of the
robustness maths; it re-exports the pieces it is built from, so callers import from here only:

* :mod:`.baseline` — the logit/probit transforms, clipping, :func:`fit_baseline`,
  :func:`effective_robustness` (see its docstring for the formulas and the clipping rule);
* :mod:`.bootstrap` — bootstrap intervals of the fit (a band for the plot) and of each model's ER;
* :mod:`.paired` — McNemar's paired test and accuracy restricted to a class subset.

:func:`shift_leaderboard` takes a tidy table (one row per model: model, category, ref_acc,
shift_acc, n_ref, n_shift, and optionally per-sample correctness ``ref_correct`` / ``shift_correct``)
and returns the ranked rows of one shift and its fit. Where a shift scores a class subset, pass the
reference correctness restricted to those classes (:func:`restricted_correct`) as ``ref_correct``.

**Ties.** The leader is the model with the highest ER. A model is *tied* when its ER interval
overlaps the leader's; the leader is marked tied when any model is. Ranks are competition ranks of
the ER point estimates (equal ER, equal rank); the tie mark is separate, so the UI can show "1=".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .baseline import (
    DEFAULT_EPSILON,
    MIN_BASELINE_MODELS,
    TRANSFORMS,
    Fit,
    FitUnavailable,
    Transform,
    check_transform,
    clip_accuracy,
    effective_robustness,
    fit_baseline,
    forward,
    inverse,
    predict_shift,
)
from .bootstrap import (
    ERInterval,
    FitBand,
    bootstrap_er,
    bootstrap_er_binomial,
    bootstrap_fit,
    reference_grid,
)
from .paired import (
    McNemar,
    RestrictedAccuracy,
    mcnemar,
    restricted_accuracy,
    restricted_correct,
    subset_mask,
)
from .stats import clopper_pearson

__all__ = [
    "DEFAULT_EPSILON", "MIN_BASELINE_MODELS", "TRANSFORMS", "ERInterval", "Fit", "FitBand", "FitUnavailable",
    "GroupRow", "LeaderboardSettings", "McNemar", "ModelResult", "RestrictedAccuracy", "Row",
    "ShiftLeaderboard", "Transform", "bootstrap_er", "bootstrap_er_binomial", "bootstrap_fit",
    "check_transform", "clip_accuracy", "effective_robustness", "fit_baseline", "forward", "group_means",
    "inverse", "mcnemar", "predict_shift", "rank_with_ties", "reference_grid", "restricted_accuracy",
    "restricted_correct", "shift_leaderboard", "subset_mask",
]


@dataclass(frozen=True, kw_only=True)
class LeaderboardSettings:
    """How one shift's leaderboard is computed.

    ``baseline_categories``: model categories that make up the baseline; ``min_ref_acc``: baseline
    models below this reference accuracy are left out of the fit; ``transform``: logit or probit;
    ``resamples``: bootstrap resamples (0: no intervals); ``confidence``: of every interval;
    ``seed``: of the bootstrap; ``grid_points``: reference accuracies at which the band is given.
    """

    baseline_categories: frozenset[str] = frozenset({"standard"})
    min_ref_acc: float = 0.0
    transform: Transform = "logit"
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    grid_points: int = 50

    def __post_init__(self) -> None:
        check_transform(self.transform)
        if not isinstance(self.baseline_categories, frozenset):
            object.__setattr__(self, "baseline_categories", frozenset(self.baseline_categories))
        if not 0.0 <= self.min_ref_acc <= 1.0:
            raise ValueError(f"min_ref_acc must lie in [0, 1], got {self.min_ref_acc}")
        if self.resamples < 0:
            raise ValueError(f"resamples must be >= 0, got {self.resamples}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must lie in (0, 1), got {self.confidence}")
        if self.grid_points < 2:
            raise ValueError(f"grid_points must be >= 2, got {self.grid_points}")


@dataclass(frozen=True, kw_only=True, eq=False)
class ModelResult:
    """One model on one shift: accuracies, sample counts, and optional per-sample correctness.

    With ``ref_correct`` / ``shift_correct`` the accuracy and count may be left None (they are
    derived); when both are given they must agree.
    """

    model: str
    category: str
    ref_acc: float | None = None
    shift_acc: float | None = None
    n_ref: int | None = None
    n_shift: int | None = None
    ref_correct: NDArray[np.bool_] | None = None
    shift_correct: NDArray[np.bool_] | None = None


@dataclass(frozen=True, kw_only=True)
class Row:
    """One model's line on a shift's leaderboard. Accuracies are fractions, ER percentage points.

    ``baseline``: the model is in the fit; ``predicted_shift_acc``: what the baseline predicts for
    it; ``er`` / ``er_ci``: None without a fit (or, for the interval, without a bootstrap);
    ``clipped``: its reference or shift accuracy is 0 or 1 and was clipped for the transform;
    ``rank``: None without a fit.
    """

    model: str
    category: str
    baseline: bool
    ref_acc: float
    ref_ci: tuple[float, float]
    n_ref: int
    shift_acc: float
    shift_ci: tuple[float, float]
    n_shift: int
    predicted_shift_acc: float | None
    er: float | None
    er_ci: tuple[float, float] | None
    tied: bool
    rank: int | None
    clipped: bool


@dataclass(frozen=True, kw_only=True, eq=False)
class ShiftLeaderboard:
    """The ranked rows of one shift (best ER first), its fit, the fit's band and notes for the UI.

    ``er_mode`` says how the ER intervals were bootstrapped: ``"paired"`` (per-sample), ``"binomial"``
    (accuracies only) or None (no intervals).
    """

    shift: str | None
    rows: tuple[Row, ...]
    fit: Fit
    band: FitBand | None
    er_mode: str | None
    settings: LeaderboardSettings
    notes: tuple[str, ...] = field(default_factory=tuple)

    def records(self) -> list[dict[str, Any]]:
        """The rows as plain dicts (intervals split into ``*_low`` / ``*_high``), e.g. for a DataFrame."""
        out = []
        for row in self.rows:
            record = asdict(row)
            for key in ("ref_ci", "shift_ci", "er_ci"):
                low, high = record.pop(key) or (None, None)
                record[f"{key[:-3]}_low"], record[f"{key[:-3]}_high"] = low, high
            out.append(record)
        return out


def rank_with_ties(er: ArrayLike, low: ArrayLike | None = None,
                   high: ArrayLike | None = None) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Competition ranks of ``er`` (highest first) and tie marks, both in input order.

    A model is tied when its interval ``[low, high]`` overlaps the leader's; without intervals only an
    equal ER ties. The leader is marked tied when any other model is.
    """
    e = np.asarray(er, dtype=np.float64)
    if e.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    rank = 1 + (e[None, :] > e[:, None]).sum(axis=1)
    leader = int(np.argmax(e))
    if low is None or high is None:
        tied = e == e[leader]
    else:
        lo, hi = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        tied = (lo <= hi[leader]) & (hi >= lo[leader])
    tied = tied.copy()
    tied[leader] = bool(np.delete(tied, leader).any())
    return rank.astype(np.int64), tied


def _missing(value: object) -> bool:
    """None, NaN or pandas' NA: an empty cell of the table."""
    if value is None or isinstance(value, np.ndarray | list | tuple):
        return value is None
    try:
        return bool(value != value)  # NaN is the one value unequal to itself
    except TypeError:  # pandas.NA refuses to be a bool
        return True


def _results(table: Any) -> list[ModelResult]:
    """Normalise a DataFrame, a mapping of columns, or a sequence of records / ModelResult."""
    # A pandas DataFrame, recognised without importing pandas.
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        records: Iterable[Any] = table.to_dict(orient="records")
    elif isinstance(table, Mapping):
        columns = {k: list(v) for k, v in table.items()}
        length = len(next(iter(columns.values()), []))
        records = [{k: v[i] for k, v in columns.items()} for i in range(length)]
    else:
        records = table
    names = {f for f in ModelResult.__dataclass_fields__}
    out = []
    for record in records:
        if isinstance(record, ModelResult):
            out.append(record)
            continue
        unknown = set(record) - names
        if unknown:
            raise ValueError(f"unknown columns {sorted(unknown)}: expected some of {sorted(names)}")
        fields: dict[str, Any] = {k: None if _missing(v) else v for k, v in record.items()}
        out.append(ModelResult(**fields))
    return out


def _accuracy(model: str, which: str, acc: float | None, n: int | None,
              correct: NDArray[np.bool_] | None) -> tuple[float, int, int]:
    """(accuracy, samples, successes) of one model on one set, from the arrays when given."""
    if correct is not None:
        flags = np.asarray(correct, dtype=bool).reshape(-1)
        successes, trials = int(flags.sum()), int(flags.size)
        if trials == 0:
            raise ValueError(f"{model}: {which}_correct is empty")
        if n is not None and int(n) != trials:
            raise ValueError(f"{model}: n_{which}={n} but {which}_correct holds {trials} samples")
        if acc is not None and abs(float(acc) - successes / trials) > 1e-9:
            raise ValueError(f"{model}: {which}_acc={acc} but {which}_correct gives {successes / trials}")
        return successes / trials, trials, successes
    if acc is None or n is None:
        raise ValueError(f"{model}: {which}_acc and n_{which} are needed without {which}_correct")
    a, trials = float(acc), int(n)
    if not 0.0 <= a <= 1.0 or trials < 1:
        raise ValueError(f"{model}: {which}_acc={acc} must lie in [0, 1] and n_{which}={n} be >= 1")
    return a, trials, round(a * trials)


def _paired_matrix(results: Sequence[ModelResult], which: str) -> NDArray[np.bool_] | None:
    arrays = [getattr(r, f"{which}_correct") for r in results]
    if any(a is None for a in arrays):
        return None
    flat = [np.asarray(a, dtype=bool).reshape(-1) for a in arrays]
    sizes = {a.size for a in flat}
    if len(sizes) != 1:
        raise ValueError(f"every model's {which}_correct must cover the same samples; sizes {sorted(sizes)}")
    return np.stack(flat)


def shift_leaderboard(table: Any, settings: LeaderboardSettings | None = None, *,
                      shift: str | None = None) -> ShiftLeaderboard:
    """The leaderboard of one shift from a tidy table of models (see the module docstring).

    ``table`` is a pandas DataFrame, a mapping of column lists, or a sequence of dicts /
    :class:`ModelResult`. Without a fit (fewer than 3 baseline models) the rows carry accuracies and
    no ER, sorted by shift accuracy, and the fit's ``reason`` is the first note.
    """
    cfg = settings or LeaderboardSettings()
    t = cfg.transform
    results = _results(table)
    if len({r.model for r in results}) != len(results):
        raise ValueError("each model may appear once in a shift's table")
    ref = [_accuracy(r.model, "ref", r.ref_acc, r.n_ref, r.ref_correct) for r in results]
    sh = [_accuracy(r.model, "shift", r.shift_acc, r.n_shift, r.shift_correct) for r in results]
    acc_r = np.array([a for a, _, _ in ref])
    acc_s = np.array([a for a, _, _ in sh])
    n_r = np.array([n for _, n, _ in ref])
    n_s = np.array([n for _, n, _ in sh])
    is_base = np.array([r.category in cfg.baseline_categories for r in results], dtype=bool)
    is_base &= acc_r >= cfg.min_ref_acc
    names = [r.model for r in results]
    fit = fit_baseline(acc_r[is_base], acc_s[is_base], t, n_ref=n_r[is_base], n_shift=n_s[is_base],
                       models=[n for n, b in zip(names, is_base, strict=True) if b])
    _, moved_r = clip_accuracy(acc_r, n_r)
    _, moved_s = clip_accuracy(acc_s, n_s)
    notes: list[str] = []
    band: FitBand | None = None
    er_ci: ERInterval | None = None
    er_mode: str | None = None
    predicted = er = None
    if not fit.ok:
        notes.append(fit.reason or "no baseline fit")
    else:
        predicted = predict_shift(fit, acc_r, n_r)
        er = 100.0 * (acc_s - predicted)
        if cfg.resamples:
            seeds = np.random.SeedSequence(cfg.seed).spawn(2)
            try:
                grid = reference_grid(acc_r, t, cfg.grid_points, n_r)  # the band spans every model
                band = bootstrap_fit(acc_r[is_base], acc_s[is_base], t, n_ref=n_r[is_base],
                                     n_shift=n_s[is_base], grid=grid,
                                     resamples=cfg.resamples, confidence=cfg.confidence,
                                     seed=np.random.default_rng(seeds[0]))
                er_ci = _er_intervals(results, acc_r, acc_s, n_r, n_s, is_base, cfg,
                                      np.random.default_rng(seeds[1]))
                er_mode = er_ci.mode
                notes.append(f"ER intervals: {er_ci.mode} bootstrap, {er_ci.used} of {er_ci.resamples} "
                             f"resamples, {cfg.confidence:.0%}")
            except FitUnavailable as exc:
                notes.append(f"no bootstrap intervals: {exc}")
    if (moved_r | moved_s).any():
        clipped_names = ", ".join(n for n, m in zip(names, moved_r | moved_s, strict=True) if m)
        notes.append(f"accuracies of 0 or 1 clipped by half a sample before the {t} transform: "
                     f"{clipped_names}")

    rank: NDArray[np.int64] | None = None
    tied = np.zeros(len(results), dtype=bool)
    if er is not None:
        rank, tied = rank_with_ties(er, None if er_ci is None else er_ci.low,
                                    None if er_ci is None else er_ci.high)
    rows = []
    for i, r in enumerate(results):
        rows.append(Row(
            model=r.model, category=r.category, baseline=bool(is_base[i]),
            ref_acc=float(acc_r[i]), ref_ci=clopper_pearson(ref[i][2], ref[i][1], cfg.confidence),
            n_ref=int(n_r[i]),
            shift_acc=float(acc_s[i]), shift_ci=clopper_pearson(sh[i][2], sh[i][1], cfg.confidence),
            n_shift=int(n_s[i]),
            predicted_shift_acc=None if predicted is None else float(predicted[i]),
            er=None if er is None else float(er[i]),
            er_ci=None if er_ci is None else (float(er_ci.low[i]), float(er_ci.high[i])),
            tied=bool(tied[i]), rank=None if rank is None else int(rank[i]),
            clipped=bool(moved_r[i] or moved_s[i]),
        ))
    rows.sort(key=lambda row: (-(row.er if row.er is not None else -math.inf), -row.shift_acc, row.model))
    return ShiftLeaderboard(shift=shift, rows=tuple(rows), fit=fit, band=band, er_mode=er_mode,
                            settings=cfg, notes=tuple(notes))


def _er_intervals(results: Sequence[ModelResult], acc_r: NDArray[np.float64], acc_s: NDArray[np.float64],
                  n_r: NDArray[np.int64], n_s: NDArray[np.int64], is_base: NDArray[np.bool_],
                  cfg: LeaderboardSettings, rng: np.random.Generator) -> ERInterval:
    """Paired bootstrap when every model has per-sample correctness on both sets, binomial otherwise."""
    ref_matrix = _paired_matrix(results, "ref")
    shift_matrix = _paired_matrix(results, "shift")
    if ref_matrix is not None and shift_matrix is not None:
        return bootstrap_er(ref_matrix, shift_matrix, is_base, cfg.transform, resamples=cfg.resamples,
                            confidence=cfg.confidence, seed=rng)
    return bootstrap_er_binomial(acc_r, acc_s, n_r, n_s, is_base, cfg.transform, resamples=cfg.resamples,
                                 confidence=cfg.confidence, seed=rng)


@dataclass(frozen=True, kw_only=True)
class GroupRow:
    """One model's means over a group of shifts (plain means, each shift weighted equally).

    ``shifts``: shifts the model appears in, of ``of``; ``er_shifts``: those with an ER (a fit);
    ``mean_er`` is None when there is none. Compare models only where ``shifts == of``.
    """

    model: str
    category: str
    shifts: int
    of: int
    mean_ref_acc: float
    mean_shift_acc: float
    er_shifts: int
    mean_er: float | None


def group_means(boards: Sequence[ShiftLeaderboard]) -> list[GroupRow]:
    """Mean accuracies and mean ER per model over the shifts of a group, best mean ER first."""
    per_model: dict[str, list[Row]] = {}
    for board in boards:
        for row in board.rows:
            per_model.setdefault(row.model, []).append(row)
    out = []
    for model, rows in per_model.items():
        ers = [r.er for r in rows if r.er is not None]
        out.append(GroupRow(
            model=model, category=rows[0].category, shifts=len(rows), of=len(boards),
            mean_ref_acc=float(np.mean([r.ref_acc for r in rows])),
            mean_shift_acc=float(np.mean([r.shift_acc for r in rows])),
            er_shifts=len(ers), mean_er=float(np.mean(ers)) if ers else None,
        ))
    out.sort(key=lambda g: (g.mean_er is None, -(g.mean_er or 0.0), -g.mean_shift_acc, g.model))
    return out

