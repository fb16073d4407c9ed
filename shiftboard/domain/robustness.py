"""Effective-robustness leaderboards: one shift's ranking, ties, and means over a group of shifts.

Pure maths (numpy/scipy): no gRPC, no Streamlit, no DuckDB. This module is the public face of the
robustness maths; it re-exports the pieces it is built from, so callers import from here only:

* :mod:`.baseline` — the logit/probit transforms, clipping, :func:`fit_baseline`,
  :func:`effective_robustness` (see its docstring for the formulas and the clipping rule);
* :mod:`.bootstrap` — bootstrap intervals of the fit (a band for the plot) and of each model's ER;
* :mod:`.resampling` — the shared resampling weights of a sample list and the counts they give;
* :mod:`.table` — :class:`ModelResult`, the input table, and its normalisation;
* :mod:`.ranking` — competition ranks and ties with the leader (:func:`paired_ties`);
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

**Ties** (:mod:`.ranking`). The leader is the model with the highest ER. With bootstrap intervals a
model is *tied* when the interval of its ER minus the leader's, taken resample by resample over the
same resamples (:func:`paired_ties`), reaches 0: two models measured on the same images share most of
their sampling noise, which overlapping marginal intervals ignore. ``Row.diff_ci`` is that interval.
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
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

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
from .ranking import paired_ties, rank_with_ties
from .stats import clopper_pearson
from .table import Measured, ModelResult, has_paired, measured, model_results, resampled_counts

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

    baseline_categories: AbstractSet[str] = frozenset({"standard"})  # kept as a frozenset
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
    results = model_results(table)
    if len({r.model for r in results}) != len(results):
        raise ValueError("each model may appear once in a shift's table")
    ref, sh = measured(results, "ref"), measured(results, "shift")
    names = [r.model for r in results]
    is_base = _baseline(names, [r.category for r in results], ref, cfg)
    fit = fit_baseline(ref.acc[is_base], sh.acc[is_base], cfg.transform, n_ref=ref.n[is_base],
                       n_shift=sh.n[is_base], models=[n for n, b in zip(names, is_base, strict=True) if b],
                       extremes=cfg.extremes)
    if cfg.extremes == "exclude":
        in_fit = set(fit.models)
        is_base &= np.array([n in in_fit for n in names], dtype=bool)
        clipped = np.zeros(len(results), dtype=bool)
    else:
        clipped = clip_accuracy(ref.acc, ref.n)[1] | clip_accuracy(sh.acc, sh.n)[1]
    notes: list[str] = []
    band: FitBand | None = None
    er_ci: ERInterval | None = None
    predicted = er = None
    if not fit.ok:
        notes.append(fit.reason or "no baseline fit")
    else:
        predicted = predict_shift(fit, ref.acc, ref.n)
        er = 100.0 * (sh.acc - predicted)
        if cfg.resamples:
            keys = (ref_key or "reference", shift_key or "shift")
            band, er_ci, note = _intervals(results, ref, sh, is_base, cfg, keys)
            notes.append(note)
    notes += _fit_notes(fit, names, clipped, cfg.transform)
    rows = _rows(results, ref, sh, is_base, clipped, _Estimates(predicted=predicted, er=er, er_ci=er_ci),
                 cfg.confidence)
    draws = None
    if er_ci is not None and er_ci.draws is not None:
        draws = {name: er_ci.draws[i] for i, name in enumerate(names)}
    return ShiftLeaderboard(shift=shift, rows=tuple(rows), fit=fit, band=band,
                            er_mode=None if er_ci is None else er_ci.mode, settings=cfg, notes=tuple(notes),
                            er_draws=draws)


def _baseline(names: Sequence[str], categories: Sequence[str], ref: Measured,
              cfg: LeaderboardSettings) -> NDArray[np.bool_]:
    """Which models the settings put in the baseline (before ``extremes`` may leave some out)."""
    is_base = np.array([c in cfg.baseline_categories for c in categories], dtype=bool)
    is_base &= ref.acc >= cfg.min_ref_acc
    if cfg.exclude_name_parts:
        is_base &= np.array([not any(p in n.lower() for p in cfg.exclude_name_parts) for n in names], dtype=bool)
    return is_base


def _intervals(results: Sequence[ModelResult], ref: Measured, sh: Measured, is_base: NDArray[np.bool_],
               cfg: LeaderboardSettings, keys: tuple[str, str]) -> tuple[FitBand | None, ERInterval | None, str]:
    """The fit's band and the ER intervals (the band alone, or neither, when the bootstrap cannot
    refit), and the note that says which."""
    seeds = np.random.SeedSequence(cfg.seed).spawn(2)
    band: FitBand | None = None
    exclude = cfg.extremes == "exclude"
    try:
        grid = reference_grid(ref.acc[(ref.acc > 0) & (ref.acc < 1)] if exclude else ref.acc,
                              cfg.transform, cfg.grid_points, None if exclude else ref.n)
        band = bootstrap_fit(ref.acc[is_base], sh.acc[is_base], cfg.transform, n_ref=ref.n[is_base],
                             n_shift=sh.n[is_base], grid=grid, resamples=cfg.resamples,
                             confidence=cfg.confidence, seed=np.random.default_rng(seeds[0]))
        er_ci = _er_intervals(results, ref, sh, is_base, cfg, np.random.default_rng(seeds[1]), keys)
    except FitUnavailable as exc:
        return band, None, f"no bootstrap intervals: {exc}"
    return band, er_ci, (f"ER intervals: {er_ci.mode} bootstrap, {er_ci.used} of {er_ci.resamples} "
                         f"resamples, {cfg.confidence:.0%}")


def _er_intervals(results: Sequence[ModelResult], ref: Measured, sh: Measured, is_base: NDArray[np.bool_],
                  cfg: LeaderboardSettings, rng: np.random.Generator, keys: tuple[str, str]) -> ERInterval:
    """Paired bootstrap when every model has per-sample correctness (or its resampled counts) on both
    sets, binomial otherwise."""
    paired = all(has_paired(r, w) for r in results for w in ("ref", "shift"))
    ref_counts = resampled_counts(results, "ref", ref.n, keys[0], cfg.resamples, cfg.seed) if paired else None
    shift_counts = resampled_counts(results, "shift", sh.n, keys[1], cfg.resamples, cfg.seed) if paired else None
    if ref_counts is not None and shift_counts is not None:
        return bootstrap_er_counts(ref_counts, ref.n, shift_counts, sh.n, is_base, cfg.transform,
                                   confidence=cfg.confidence, seed=rng, keep_draws=True)
    return bootstrap_er_binomial(ref.acc, sh.acc, ref.n, sh.n, is_base, cfg.transform, resamples=cfg.resamples,
                                 confidence=cfg.confidence, seed=rng, keep_draws=True)


def _fit_notes(fit: Fit, names: Sequence[str], clipped: NDArray[np.bool_], transform: Transform) -> list[str]:
    """What the fit did with accuracies of exactly 0 or 1."""
    notes = []
    if fit.excluded:
        notes.append(f"left out of the fit (an accuracy of exactly 0 or 1): {', '.join(fit.excluded)}")
    if clipped.any():
        clipped_names = ", ".join(n for n, m in zip(names, clipped, strict=True) if m)
        notes.append(f"accuracies of 0 or 1 clipped by half a sample before the {transform} transform: "
                     f"{clipped_names}")
    return notes


@dataclass(frozen=True, kw_only=True, eq=False)
class _Estimates:
    """What the fit gives every model: predicted shift accuracy, ER and its intervals (None without a fit)."""

    predicted: NDArray[np.float64] | None
    er: NDArray[np.float64] | None
    er_ci: ERInterval | None


def _ranks(estimates: _Estimates, models: int, confidence: float) -> tuple[
        NDArray[np.int64] | None, NDArray[np.bool_], tuple[NDArray[np.float64], NDArray[np.float64]] | None]:
    """(ranks, tie marks, intervals of the ER minus the leader's): paired ties where there are draws."""
    er, er_ci = estimates.er, estimates.er_ci
    if er is None:
        return None, np.zeros(models, dtype=bool), None
    rank, tied = rank_with_ties(er)
    if er_ci is not None and er_ci.draws is not None:
        tied, diff_low, diff_high = paired_ties(er, er_ci.draws, confidence)
        return rank, tied, (diff_low, diff_high)
    return rank, tied, None


def _rows(results: Sequence[ModelResult], ref: Measured, sh: Measured, is_base: NDArray[np.bool_],
          clipped: NDArray[np.bool_], estimates: _Estimates, confidence: float) -> list[Row]:
    """Every model's row, best ER first (then shift accuracy, then name)."""
    rank, tied, diff = _ranks(estimates, len(results), confidence)
    predicted, er, er_ci = estimates.predicted, estimates.er, estimates.er_ci
    rows = []
    for i, r in enumerate(results):
        rows.append(Row(
            model=r.model, category=r.category, baseline=bool(is_base[i]),
            ref_acc=float(ref.acc[i]), ref_ci=clopper_pearson(ref.successes[i], int(ref.n[i]), confidence),
            n_ref=int(ref.n[i]),
            shift_acc=float(sh.acc[i]), shift_ci=clopper_pearson(sh.successes[i], int(sh.n[i]), confidence),
            n_shift=int(sh.n[i]),
            predicted_shift_acc=None if predicted is None else float(predicted[i]),
            er=None if er is None else float(er[i]),
            er_ci=None if er_ci is None else (float(er_ci.low[i]), float(er_ci.high[i])),
            tied=bool(tied[i]), rank=None if rank is None else int(rank[i]),
            clipped=bool(clipped[i]),
            diff_ci=None if diff is None else (float(diff[0][i]), float(diff[1][i])),
        ))
    rows.sort(key=lambda row: (-(row.er if row.er is not None else -math.inf), -row.shift_acc, row.model))
    return rows
