"""Group rankings: mean effective robustness over the shifts of a group, with an interval.

Pure maths (numpy): no gRPC, no Streamlit. Built on the per-shift boards of :mod:`.robustness`.

* **Who is ranked.** Only models with an ER on every shift of the group (``complete``): a mean over
  some of the shifts is not comparable with a mean over all of them. The others are listed apart
  (:attr:`GroupLeaderboard.partial`) with their coverage (``er_shifts`` of ``of``), their mean over
  what they have, and no rank.
* **The interval of the mean ER.** Each shift's board keeps every model's ER in every bootstrap
  resample (``ShiftLeaderboard.er_draws``). Resample *b* of the group takes resample *b* of every
  shift and averages them per model. Each shift's own samples are reweighted independently of the
  others' (each test set is its own sample list), while a reference that several shifts share gets
  the same weights in resample *b* on all of them (the shared resampling weights of
  :mod:`.bootstrap`), so its sampling noise is common to the group's shifts, as it really is; within
  one shift the models stay paired. The percentile interval over *b* is the mean ER's interval; differences with
  the leader, resample by resample, give the ties (as :func:`~.robustness.paired_ties` does for one
  shift). Where a board has no draws (no bootstrap) the group has no intervals and ties are equal means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from .robustness import Row, ShiftLeaderboard

__all__ = ["GroupLeaderboard", "GroupRow", "group_leaderboard", "group_means"]


@dataclass(frozen=True, kw_only=True)
class GroupRow:
    """One model's means over a group of shifts (plain means, each shift weighted equally).

    ``shifts``: shifts the model appears in, of ``of``; ``er_shifts``: those with an ER (a fit);
    ``mean_er`` is None when there is none. ``complete``: an ER on every shift, the condition for a
    ``rank``; ``mean_er_ci``: bootstrap interval of the mean ER (complete models, when every shift
    was bootstrapped); ``diff_ci``: interval of its mean ER minus the leader's; ``tied``: with the
    leader (``diff_ci[1] >= 0``, or an equal mean without intervals).
    """

    model: str
    category: str
    shifts: int
    of: int
    mean_ref_acc: float
    mean_shift_acc: float
    er_shifts: int
    mean_er: float | None
    complete: bool = False
    rank: int | None = None
    mean_er_ci: tuple[float, float] | None = None
    diff_ci: tuple[float, float] | None = None
    tied: bool = False


@dataclass(frozen=True, kw_only=True)
class GroupLeaderboard:
    """A group's ranking: ``rows`` (complete models, best mean ER first) and ``partial`` (the rest)."""

    of: int
    rows: tuple[GroupRow, ...]
    partial: tuple[GroupRow, ...]
    confidence: float
    notes: tuple[str, ...] = ()


def _quantiles(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = 1.0 - confidence
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2], axis=-1)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def _base_row(model: str, rows: list[Row], of: int) -> GroupRow:
    ers = [r.er for r in rows if r.er is not None]
    return GroupRow(
        model=model, category=rows[0].category, shifts=len(rows), of=of,
        mean_ref_acc=float(np.mean([r.ref_acc for r in rows])),
        mean_shift_acc=float(np.mean([r.shift_acc for r in rows])),
        er_shifts=len(ers), mean_er=float(np.mean(ers)) if ers else None, complete=len(ers) == of,
    )


def group_leaderboard(boards: Sequence[ShiftLeaderboard], confidence: float | None = None) -> GroupLeaderboard:
    """Rank the models with an ER on every shift of ``boards`` by mean ER (see the module docstring).

    ``confidence`` of the intervals defaults to the first board's setting.
    """
    of = len(boards)
    level = confidence if confidence is not None else (boards[0].settings.confidence if boards else 0.95)
    per_model: dict[str, list[Row]] = {}
    for board in boards:
        for row in board.rows:
            per_model.setdefault(row.model, []).append(row)
    base = {model: _base_row(model, rows, of) for model, rows in per_model.items()}
    complete = sorted((g for g in base.values() if g.complete and of),
                      key=lambda g: (-(g.mean_er or 0.0), -g.mean_shift_acc, g.model))
    partial = sorted((g for g in base.values() if not (g.complete and of)),
                     key=lambda g: (-g.er_shifts, g.mean_er is None, -(g.mean_er or 0.0), g.model))
    notes: list[str] = []
    if partial:
        notes.append(f"{len(partial)} model(s) without an ER on every one of the {of} shifts are listed apart, "
                     "unranked")
    ranked: list[GroupRow] = []
    if complete:
        means = np.array([g.mean_er for g in complete], dtype=np.float64)
        rank = 1 + (means[None, :] > means[:, None]).sum(axis=1)
        draws = _mean_draws(boards, [g.model for g in complete])
        if draws is None:
            tied = means == means[0]
            tied[0] = bool(tied[1:].any())
            ranked = [replace(g, rank=int(rank[i]), tied=bool(tied[i])) for i, g in enumerate(complete)]
            notes.append("no interval of the mean ER: some shift was not bootstrapped")
        else:
            low, high = _quantiles(draws, level)
            d_low, d_high = _quantiles(draws - draws[0][None, :], level)
            tied = d_high >= 0
            tied[0] = bool(tied[1:].any())
            d_low[0] = d_high[0] = 0.0
            ranked = [replace(g, rank=int(rank[i]), tied=bool(tied[i]), mean_er_ci=(float(low[i]), float(high[i])),
                              diff_ci=(float(d_low[i]), float(d_high[i]))) for i, g in enumerate(complete)]
            notes.append(f"mean-ER intervals: {draws.shape[1]} bootstrap resamples, {level:.0%}; ties from the "
                         "paired difference with the leader")
    return GroupLeaderboard(of=of, rows=tuple(ranked), partial=tuple(partial), confidence=level, notes=tuple(notes))


def _mean_draws(boards: Sequence[ShiftLeaderboard], models: list[str]) -> np.ndarray | None:
    """(models x resamples) of the mean ER over the boards, resample b of every board together."""
    every: list[Mapping[str, NDArray[np.float32]]] = []
    for board in boards:
        if board.er_draws is None:
            return None
        every.append(board.er_draws)
    used = min(len(next(iter(draws.values()))) for draws in every if draws)
    if used == 0:
        return None
    total = np.zeros((len(models), used), dtype=np.float64)
    for draws in every:
        total += np.stack([draws[m][:used] for m in models]).astype(np.float64)
    return total / len(boards)


def group_means(boards: Sequence[ShiftLeaderboard]) -> list[GroupRow]:
    """Every model's means over the group: the ranked complete models first, then the partial ones."""
    board = group_leaderboard(boards)
    return [*board.rows, *board.partial]
