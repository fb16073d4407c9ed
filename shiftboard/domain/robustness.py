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

Instead of per-sample arrays a row may carry what they reduce to: correct samples
(``ref_successes``, with ``n_ref``) and the correct samples in each resample of the shared
resampling weights of its sample list (``ref_resampled``, from :func:`resampled_correct`; the
same for the shift). The paired bootstrap always goes through such counts (computed from the arrays
where a row has no counts, under the lists ``ref_key`` / ``shift_key`` and ``settings.seed``), so a
table of stored counts and the table of arrays they came from give identical boards.

**Ties.** The leader is the model with the highest ER. With bootstrap intervals a model is *tied*
when the interval of its ER minus the leader's, taken resample by resample over the same resamples
(:func:`paired_ties`), reaches 0: two models measured on the same images share most of their
sampling noise, which overlapping marginal intervals ignore. ``Row.diff_ci`` is that interval.
Without intervals only an equal ER ties. The leader is marked tied when any model is. Ranks are
competition ranks of the ER point estimates (equal ER, equal rank); the tie mark is separate, so the
UI can show "1=".

**The baseline.** Models whose category is in ``baseline_categories``, whose reference accuracy is at
least ``min_ref_acc`` and whose name contains none of ``exclude_name_parts`` (the ImageNet testbed
leaves out ``aws``, ``batch64`` and ``subsample``). ``extremes`` says what the fit does with
accuracies of exactly 0 or 1 (clip by half a sample, or leave the model out; see :mod:`.baseline`).

**Groups** (:mod:`.groups`): a group ranking counts only the models with an ER on every shift of the
group; the others are listed apart with their coverage. The mean ER gets a bootstrap interval.
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
    EXTREMES,
    MIN_BASELINE_MODELS,
    TRANSFORMS,
    Extremes,
    Fit,
    FitUnavailable,
    Transform,
    check_extremes,
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
    bootstrap_er_counts,
    bootstrap_fit,
    reference_grid,
    resampled_correct,
    sample_list_key,
)
from .groups import GroupLeaderboard, GroupRow, group_leaderboard, group_means
from .paired import (
    BLEND_WIDTH,
    EXACT_BELOW,
    McNemar,
    RestrictedAccuracy,
    mcnemar,
    restricted_accuracy,
    restricted_correct,
    subset_mask,
)
from .stats import clopper_pearson

__all__ = [
    "BLEND_WIDTH", "DEFAULT_EPSILON", "EXACT_BELOW", "EXTREMES", "MIN_BASELINE_MODELS", "TRANSFORMS", "ERInterval",
    "Extremes", "Fit", "FitBand", "FitUnavailable", "GroupLeaderboard", "GroupRow", "LeaderboardSettings",
    "McNemar", "ModelResult", "RestrictedAccuracy", "Row", "ShiftLeaderboard", "Transform", "bootstrap_er",
    "bootstrap_er_binomial", "bootstrap_er_counts", "bootstrap_fit", "check_extremes", "check_transform",
    "clip_accuracy", "effective_robustness", "fit_baseline", "forward", "group_leaderboard", "group_means",
    "inverse", "mcnemar", "paired_ties", "predict_shift", "rank_with_ties", "reference_grid", "restricted_accuracy",
    "resampled_correct", "restricted_correct", "sample_list_key", "shift_leaderboard", "subset_mask",
]


@dataclass(frozen=True, kw_only=True)
class LeaderboardSettings:
    """How one shift's leaderboard is computed.

    ``baseline_categories``: model categories that make up the baseline; ``min_ref_acc``: baseline
    models below this reference accuracy are left out of the fit; ``transform``: logit or probit;
    ``resamples``: bootstrap resamples (0: no intervals); ``confidence``: of every interval;
    ``seed``: of the bootstrap (an int >= 0: it also seeds the shared resampling weights);
    ``grid_points``: reference accuracies at which the band is given;
    ``extremes``: clip accuracies of 0 or 1, or leave such baseline models out of the fit;
    ``exclude_name_parts``: baseline models whose lower-cased name contains one of these are left out.
    """

    baseline_categories: frozenset[str] = frozenset({"standard"})
    min_ref_acc: float = 0.0
    transform: Transform = "logit"
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    grid_points: int = 50
    extremes: Extremes = "clip"
    exclude_name_parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_transform(self.transform)
        check_extremes(self.extremes)
        object.__setattr__(self, "exclude_name_parts", tuple(p.lower() for p in self.exclude_name_parts))
        if not isinstance(self.baseline_categories, frozenset):
            object.__setattr__(self, "baseline_categories", frozenset(self.baseline_categories))
        if not 0.0 <= self.min_ref_acc <= 1.0:
            raise ValueError(f"min_ref_acc must lie in [0, 1], got {self.min_ref_acc}")
        if self.resamples < 0:
            raise ValueError(f"resamples must be >= 0, got {self.resamples}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must lie in (0, 1), got {self.confidence}")
        if self.grid_points < 2:
            raise ValueError(f"grid_points must be >= 2, got {self.grid_points}")


@dataclass(frozen=True, kw_only=True, eq=False)
class ModelResult:
    """One model on one shift: accuracies, sample counts, and optional per-sample correctness.

    With ``ref_correct`` / ``shift_correct`` the accuracy and count may be left None (they are
    derived); when both are given they must agree. ``ref_successes`` (with ``n_ref``) gives the
    accuracy exactly as an integer count; ``ref_resampled`` holds the correct samples in each
    resample of the shared weights of the reference's sample list (at least ``settings.resamples``
    of them; the first are used), which the paired bootstrap needs instead of ``ref_correct``
    (likewise for the shift).
    """

    model: str
    category: str
    ref_acc: float | None = None
    shift_acc: float | None = None
    n_ref: int | None = None
    n_shift: int | None = None
    ref_correct: NDArray[np.bool_] | None = None
    shift_correct: NDArray[np.bool_] | None = None
    ref_successes: int | None = None
    shift_successes: int | None = None
    ref_resampled: NDArray[np.int32] | None = None
    shift_resampled: NDArray[np.int32] | None = None


@dataclass(frozen=True, kw_only=True)
class Row:
    """One model's line on a shift's leaderboard. Accuracies are fractions, ER percentage points.

    ``baseline``: the model is in the fit; ``predicted_shift_acc``: what the baseline predicts for
    it; ``er`` / ``er_ci``: None without a fit (or, for the interval, without a bootstrap);
    ``clipped``: its reference or shift accuracy is 0 or 1 and was clipped for the transform;
    ``rank``: None without a fit; ``diff_ci``: the paired-bootstrap interval of its ER minus the
    leader's (None without a bootstrap; ``(0, 0)`` for the leader); ``tied`` is ``diff_ci[1] >= 0``.
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
    diff_ci: tuple[float, float] | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class ShiftLeaderboard:
    """The ranked rows of one shift (best ER first), its fit, the fit's band and notes for the UI.

    ``er_mode`` says how the ER intervals were bootstrapped: ``"paired"`` (per-sample), ``"binomial"``
    (accuracies only) or None (no intervals). ``er_draws`` maps each model to its ER in every kept
    bootstrap resample (float32; the same resample index is the same resample for every model), for
    paired comparisons and group means; None without a bootstrap.
    """

    shift: str | None
    rows: tuple[Row, ...]
    fit: Fit
    band: FitBand | None
    er_mode: str | None
    settings: LeaderboardSettings
    notes: tuple[str, ...] = field(default_factory=tuple)
    er_draws: Mapping[str, NDArray[np.float32]] | None = None

    def records(self) -> list[dict[str, Any]]:
        """The rows as plain dicts (intervals split into ``*_low`` / ``*_high``), e.g. for a DataFrame."""
        out = []
        for row in self.rows:
            record = asdict(row)
            for key in ("ref_ci", "shift_ci", "er_ci", "diff_ci"):
                low, high = record.pop(key) or (None, None)
                record[f"{key[:-3]}_low"], record[f"{key[:-3]}_high"] = low, high
            out.append(record)
        return out


def paired_ties(er: ArrayLike, draws: ArrayLike,
                confidence: float = 0.95) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
    """Ties with the leader from the paired bootstrap of the difference; ``(tied, low, high)``.

    ``draws`` is (models x resamples): every model's ER in the same resamples. For each model the
    percentile interval ``[low, high]`` of ``draws[model] - draws[leader]`` (resample by resample) is
    the interval of its ER minus the leader's; it is tied when ``high >= 0`` (the data do not rule out
    that it is at least as good). The leader's own interval is ``(0, 0)``; it is tied when any model is.
    """
    e = np.asarray(er, dtype=np.float64)
    d = np.asarray(draws, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != e.size or d.shape[1] == 0:
        raise ValueError(f"draws must be (models x resamples) for {e.size} models, got shape {d.shape}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if e.size == 0:
        empty = np.zeros(0)
        return np.zeros(0, dtype=bool), empty, empty
    leader = int(np.argmax(e))
    diff = d - d[leader][None, :]
    alpha = 1.0 - confidence
    low, high = np.quantile(diff, [alpha / 2, 1 - alpha / 2], axis=1)
    tied = high >= 0
    tied[leader] = bool(np.delete(tied, leader).any())
    low[leader] = high[leader] = 0.0
    return tied, np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def rank_with_ties(er: ArrayLike, low: ArrayLike | None = None, high: ArrayLike | None = None, *,
                   draws: ArrayLike | None = None,
                   confidence: float = 0.95) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Competition ranks of ``er`` (highest first) and tie marks, both in input order.

    With ``draws`` (models x resamples of ER, the same resamples for every model) the ties are
    :func:`paired_ties`. Otherwise a model is tied when its interval ``[low, high]`` overlaps the
    leader's (conservative only where models are independent); without intervals only an equal ER
    ties. The leader is marked tied when any other model is.
    """
    e = np.asarray(er, dtype=np.float64)
    if e.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    rank = 1 + (e[None, :] > e[:, None]).sum(axis=1)
    leader = int(np.argmax(e))
    if draws is not None:
        return rank.astype(np.int64), paired_ties(e, draws, confidence)[0]
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
              correct: NDArray[np.bool_] | None, successes: int | None = None) -> tuple[float, int, int]:
    """(accuracy, samples, successes) of one model on one set, from the arrays or counts when given."""
    if successes is not None and correct is None:
        if n is None or int(n) < 1 or not 0 <= int(successes) <= int(n):
            raise ValueError(f"{model}: {which}_successes={successes} needs n_{which} >= 1 and at least as large")
        a = int(successes) / int(n)
        if acc is not None and abs(float(acc) - a) > 1e-9:
            raise ValueError(f"{model}: {which}_acc={acc} but {which}_successes gives {a}")
        return a, int(n), int(successes)
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
                      shift: str | None = None, ref_key: str | None = None,
                      shift_key: str | None = None) -> ShiftLeaderboard:
    """The leaderboard of one shift from a tidy table of models (see the module docstring).

    ``table`` is a pandas DataFrame, a mapping of column lists, or a sequence of dicts /
    :class:`ModelResult`. Without a fit (fewer than 3 baseline models) the rows carry accuracies and
    no ER, sorted by shift accuracy, and the fit's ``reason`` is the first note. ``ref_key`` and
    ``shift_key`` name the sample lists whose shared weights resample per-sample arrays (default
    ``"reference"`` and ``"shift"``; the gateway's are :func:`sample_list_key` of the test sets).
    """
    cfg = settings or LeaderboardSettings()
    t = cfg.transform
    results = _results(table)
    if len({r.model for r in results}) != len(results):
        raise ValueError("each model may appear once in a shift's table")
    ref = [_accuracy(r.model, "ref", r.ref_acc, r.n_ref, r.ref_correct, r.ref_successes) for r in results]
    sh = [_accuracy(r.model, "shift", r.shift_acc, r.n_shift, r.shift_correct, r.shift_successes)
          for r in results]
    acc_r = np.array([a for a, _, _ in ref], dtype=np.float64)
    acc_s = np.array([a for a, _, _ in sh], dtype=np.float64)
    n_r = np.array([n for _, n, _ in ref])
    n_s = np.array([n for _, n, _ in sh])
    names = [r.model for r in results]
    is_base = np.array([r.category in cfg.baseline_categories for r in results], dtype=bool)
    is_base &= acc_r >= cfg.min_ref_acc
    if cfg.exclude_name_parts:
        is_base &= np.array([not any(p in n.lower() for p in cfg.exclude_name_parts) for n in names], dtype=bool)
    fit = fit_baseline(acc_r[is_base], acc_s[is_base], t, n_ref=n_r[is_base], n_shift=n_s[is_base],
                       models=[n for n, b in zip(names, is_base, strict=True) if b], extremes=cfg.extremes)
    if cfg.extremes == "exclude":
        in_fit = set(fit.models)
        is_base &= np.array([n in in_fit for n in names], dtype=bool)
        moved_r = moved_s = np.zeros(len(results), dtype=bool)
    else:
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
                grid = reference_grid(acc_r[(acc_r > 0) & (acc_r < 1)] if cfg.extremes == "exclude" else acc_r,
                                      t, cfg.grid_points, None if cfg.extremes == "exclude" else n_r)
                band = bootstrap_fit(acc_r[is_base], acc_s[is_base], t, n_ref=n_r[is_base],
                                     n_shift=n_s[is_base], grid=grid,
                                     resamples=cfg.resamples, confidence=cfg.confidence,
                                     seed=np.random.default_rng(seeds[0]))
                keys = (ref_key or "reference", shift_key or "shift")
                er_ci = _er_intervals(results, acc_r, acc_s, n_r, n_s, is_base, cfg,
                                      np.random.default_rng(seeds[1]), keys)
                er_mode = er_ci.mode
                notes.append(f"ER intervals: {er_ci.mode} bootstrap, {er_ci.used} of {er_ci.resamples} "
                             f"resamples, {cfg.confidence:.0%}")
            except FitUnavailable as exc:
                notes.append(f"no bootstrap intervals: {exc}")
    if fit.excluded:
        notes.append(f"left out of the fit (an accuracy of exactly 0 or 1): {', '.join(fit.excluded)}")
    if (moved_r | moved_s).any():
        clipped_names = ", ".join(n for n, m in zip(names, moved_r | moved_s, strict=True) if m)
        notes.append(f"accuracies of 0 or 1 clipped by half a sample before the {t} transform: "
                     f"{clipped_names}")

    rank: NDArray[np.int64] | None = None
    tied = np.zeros(len(results), dtype=bool)
    diff: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
    if er is not None:
        rank, _ = rank_with_ties(er)
        if er_ci is not None and er_ci.draws is not None:
            tied, diff_low, diff_high = paired_ties(er, er_ci.draws, cfg.confidence)
            diff = (diff_low, diff_high)
        else:
            tied = rank_with_ties(er)[1]
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
            diff_ci=None if diff is None else (float(diff[0][i]), float(diff[1][i])),
        ))
    rows.sort(key=lambda row: (-(row.er if row.er is not None else -math.inf), -row.shift_acc, row.model))
    draws = None
    if er_ci is not None and er_ci.draws is not None:
        draws = {name: er_ci.draws[i] for i, name in enumerate(names)}
    return ShiftLeaderboard(shift=shift, rows=tuple(rows), fit=fit, band=band, er_mode=er_mode,
                            settings=cfg, notes=tuple(notes), er_draws=draws)


def _resampled(results: Sequence[ModelResult], which: str, n: NDArray[np.int64], key: str,
               cfg: LeaderboardSettings) -> NDArray[np.int32] | None:
    """(models x resamples) correct counts on one side, stored or computed from the arrays; None when
    some model has neither."""
    rows: list[NDArray[np.int32] | None] = []
    arrays = []
    for r in results:
        counts = getattr(r, f"{which}_resampled")
        if counts is not None:
            c = np.asarray(counts).reshape(-1)
            if c.size < cfg.resamples:
                raise ValueError(f"{r.model}: {which}_resampled holds {c.size} resamples; {cfg.resamples} are asked")
            rows.append(c[:cfg.resamples].astype(np.int32, copy=False))
        elif getattr(r, f"{which}_correct") is not None:
            rows.append(None)
            arrays.append(r)
        else:
            return None
    if len(set(n.tolist())) > 1:
        raise ValueError(f"every model's {which} sample list must be the same for a paired bootstrap; "
                         f"sizes {sorted(set(n.tolist()))}")
    if arrays:
        matrix = _paired_matrix(arrays, which)
        assert matrix is not None
        computed = iter(resampled_correct(matrix, key, cfg.resamples, seed=cfg.seed))
        rows = [next(computed) if row is None else row for row in rows]
    return np.stack([row for row in rows if row is not None])


def _er_intervals(results: Sequence[ModelResult], acc_r: NDArray[np.float64], acc_s: NDArray[np.float64],
                  n_r: NDArray[np.int64], n_s: NDArray[np.int64], is_base: NDArray[np.bool_],
                  cfg: LeaderboardSettings, rng: np.random.Generator, keys: tuple[str, str]) -> ERInterval:
    """Paired bootstrap when every model has per-sample correctness (or its resampled counts) on both
    sets, binomial otherwise."""
    paired = all((getattr(r, f"{w}_resampled") is not None or getattr(r, f"{w}_correct") is not None)
                 for r in results for w in ("ref", "shift"))
    ref_counts = _resampled(results, "ref", n_r, keys[0], cfg) if paired else None
    shift_counts = _resampled(results, "shift", n_s, keys[1], cfg) if paired else None
    if ref_counts is not None and shift_counts is not None:
        return bootstrap_er_counts(ref_counts, n_r, shift_counts, n_s, is_base, cfg.transform,
                                   confidence=cfg.confidence, seed=rng, keep_draws=True)
    return bootstrap_er_binomial(acc_r, acc_s, n_r, n_s, is_base, cfg.transform, resamples=cfg.resamples,
                                 confidence=cfg.confidence, seed=rng, keep_draws=True)
