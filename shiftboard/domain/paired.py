"""Per-sample statistics: McNemar's paired test and accuracy restricted to a class subset.

Pure maths (numpy/scipy): no gRPC, no Streamlit, no I/O. The inputs are the per-sample predictions
the evaluator stores (label, top-5, correct), all models on one test set in the same sample order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import binom, chi2

__all__ = ["BLEND_WIDTH", "EXACT_BELOW", "McNemar", "RestrictedAccuracy", "mcnemar", "restricted_accuracy",
           "restricted_correct", "subset_mask"]

#: McNemar uses the exact binomial test when there are fewer discordant pairs than this.
EXACT_BELOW = 25
#: Over this many discordant-pair counts above :data:`EXACT_BELOW` the p-value moves from the exact
#: test's to the chi-square's in equal steps, so that changing method never makes p jump.
BLEND_WIDTH = 15


@dataclass(frozen=True, kw_only=True)
class McNemar:
    """McNemar's test of two models on the same samples.

    ``b``: samples model A gets right and model B wrong; ``c``: the reverse. ``method`` is
    ``"exact"`` (two-sided binomial test of b against Binomial(b + c, 1/2); ``statistic`` is
    min(b, c)), ``"chi2"`` (``statistic`` = (|b - c| - 1)² / (b + c), 1 degree of freedom) or
    ``"blend"`` (between the two: see :func:`mcnemar`; ``statistic`` is the chi-square one).
    """

    b: int
    c: int
    statistic: float
    p_value: float
    method: Literal["exact", "chi2", "blend"]


def mcnemar(correct_a: ArrayLike, correct_b: ArrayLike, *, exact_below: int | None = EXACT_BELOW,
            blend: int = BLEND_WIDTH) -> McNemar:
    """McNemar's paired test between two models' per-sample correctness on one test set.

    With ``n = b + c`` discordant pairs: the exact binomial test when ``n < exact_below``; the
    chi-square with continuity correction when ``n >= exact_below + blend`` (the correction is
    floored at 0, so b = c gives statistic 0 and p = 1); in between, the p-value is the weighted mean
    ``(1 - w) p_exact + w p_chi2`` with ``w = (n - exact_below + 1) / (blend + 1)``, so that each step
    of n moves p at most ``1 / (blend + 1)`` of the gap between the methods instead of all of it at
    once. ``exact_below=None`` uses the exact test for every n (``binom.cdf`` is an incomplete beta
    function: as fast for a million pairs as for ten).
    """
    a = np.asarray(correct_a, dtype=bool)
    z = np.asarray(correct_b, dtype=bool)
    if a.ndim != 1 or a.shape != z.shape:
        raise ValueError(f"both models need one correctness flag per sample: shapes {a.shape} and {z.shape}")
    if blend < 0:
        raise ValueError(f"blend must be >= 0, got {blend}")
    b = int(np.count_nonzero(a & ~z))
    c = int(np.count_nonzero(~a & z))
    n = b + c
    # Binomial(n, 1/2) is symmetric, so doubling the smaller tail is the two-sided p-value
    # (the same as scipy.stats.binomtest(b, n).pvalue); n = 0 gives p = 1.
    exact = min(1.0, 2.0 * float(binom.cdf(min(b, c), n, 0.5))) if n else 1.0
    if exact_below is None or n < exact_below:
        return McNemar(b=b, c=c, statistic=float(min(b, c)), p_value=exact, method="exact")
    statistic = max(abs(b - c) - 1, 0) ** 2 / n
    approximate = float(chi2.sf(statistic, 1))
    if n >= exact_below + blend:
        return McNemar(b=b, c=c, statistic=float(statistic), p_value=approximate, method="chi2")
    w = (n - exact_below + 1) / (blend + 1)
    return McNemar(b=b, c=c, statistic=float(statistic), p_value=(1 - w) * exact + w * approximate,
                   method="blend")


def _subset(subset: ArrayLike) -> NDArray[np.int64]:
    s = np.unique(np.asarray(subset, dtype=np.int64))
    if s.size == 0 or s[0] < 0:
        raise ValueError("a class subset must hold at least one class, all >= 0")
    return s


def subset_mask(labels: ArrayLike, subset: ArrayLike) -> NDArray[np.bool_]:
    """Which samples belong to the subset's classes (their label is in ``subset``)."""
    return np.isin(np.asarray(labels), _subset(subset))


def _first_in_subset(top5: ArrayLike, subset: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Per sample: the first top-5 class that lies in the subset, and whether there was one."""
    top = np.asarray(top5, dtype=np.int64)
    if top.ndim != 2:
        raise ValueError(f"top5 must be (samples x k), got shape {top.shape}")
    inside = np.isin(top, _subset(subset))  # the -1 padding is never inside
    first = inside.argmax(axis=1)
    return top[np.arange(top.shape[0]), first], inside.any(axis=1)


def restricted_correct(labels: ArrayLike, top5: ArrayLike, subset: ArrayLike) -> NDArray[np.bool_]:
    """Correctness when predictions and samples are restricted to a class subset.

    Only samples whose label lies in ``subset`` are kept (the result is shorter than ``labels``
    unless every label is in the subset; :func:`subset_mask` says which were kept). The restricted
    prediction is the argmax of the model's logits over the subset's classes, as the testbed scored
    ObjectNet and ImageNet-R; from the stored top-5 it is **the first top-5 class that lies in the
    subset**. That is exact whenever at least one of the top-5 lies in the subset (top-5 is ordered
    by logit); when none does the true restricted prediction is unknown and the sample is counted
    wrong, so the restricted accuracy can only be underestimated, by at most the share of such
    samples (:attr:`RestrictedAccuracy.unresolved`). Where the evaluation stored the exact restricted
    correctness, computed from the logits by ``shiftboard.domain.scoring.subset_correct``, use that.
    """
    y = np.asarray(labels, dtype=np.int64)
    predicted, found = _first_in_subset(top5, subset)
    if y.shape != found.shape:
        raise ValueError(f"{y.size} labels for {found.size} rows of top5")
    keep = subset_mask(y, subset)
    return (found & (predicted == y))[keep]


@dataclass(frozen=True, kw_only=True)
class RestrictedAccuracy:
    """Accuracy on a class subset: ``correct`` of ``trials`` samples whose label is in the subset.

    ``unresolved`` of those samples had no top-5 class in the subset and were counted wrong, so the
    exact restricted accuracy lies in ``[accuracy, (correct + unresolved) / trials]``.
    """

    correct: int
    trials: int
    unresolved: int

    @property
    def accuracy(self) -> float:
        """``correct / trials`` (0 when there are no trials)."""
        return self.correct / self.trials if self.trials else 0.0


def restricted_accuracy(labels: ArrayLike, top5: ArrayLike, subset: ArrayLike) -> RestrictedAccuracy:
    """:func:`restricted_correct` summed, with the count of samples it could not resolve."""
    correct = restricted_correct(labels, top5, subset)
    _, found = _first_in_subset(top5, subset)
    unresolved = int(np.count_nonzero(~found[subset_mask(labels, subset)]))
    return RestrictedAccuracy(correct=int(correct.sum()), trials=int(correct.size), unresolved=unresolved)
