"""Ranks and ties of effective robustness: competition ranks, and ties with the leader.

Pure maths (numpy): no gRPC, no Streamlit. The leader is the model with the highest ER. With bootstrap
draws a model is *tied* when the interval of its ER minus the leader's, taken resample by resample over
the same resamples (:func:`paired_ties`), reaches 0; without them only an equal ER ties. The leader is
marked tied when any model is. Ranks are competition ranks (equal ER, equal rank); the tie mark is
separate, so a table can show "1=".
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["paired_ties", "rank_with_ties"]


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
