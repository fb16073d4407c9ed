"""Scoring of classifier outputs: logits -> top-1, top-5, confidence and correctness, per sample.

Pure numpy, no I/O. The rules, the same for every model and test set:

* **Scored classes.** Without a class subset every class of the model is scored. With one (test sets
  such as ImageNet-R or ObjectNet cover only some of the model's classes) the prediction is the
  argmax over the subset's classes only, as those benchmarks score: the logits of the other classes
  are ignored. Predicted classes are always given in the model's class indices.
* **Top-k.** ``k = min(5, number of scored classes)``; ``top5`` always has 5 columns, padded with
  ``-1`` when fewer classes are scored. Classes are ordered by decreasing logit; ties go to the lower
  class index (``top1`` is exactly ``argmax``, first maximum).
* **Confidence** is the softmax probability of the top-1 class, the softmax taken over the scored
  classes.
* **Correct** means ``top1 == label``; a label outside the scored classes is never correct.

Logits must be finite: a model that returns NaN or infinity has failed, and :func:`score` says so
(:class:`NonFiniteLogits`) instead of ranking garbage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["TOP_K", "NonFiniteLogits", "Scores", "score", "subset_index"]

#: Width of the ``top5`` column; shorter rankings are padded with ``PAD``.
TOP_K = 5
PAD = -1
# Above this many scored classes a partial sort (argpartition) beats sorting every row.
_FULL_SORT_MAX_CLASSES = 32


class NonFiniteLogits(ValueError):
    """The model produced NaN or infinite logits; ``rows`` are the first offending sample positions."""

    def __init__(self, count: int, rows: list[int]) -> None:
        super().__init__(f"the model returned NaN or infinite logits for {count} sample(s) "
                         f"(first at positions {rows})")
        self.count = count
        self.rows = rows


@dataclass(frozen=True)
class Scores:
    """Per-sample results of one batch, all arrays of length N (``top5``: N x 5)."""

    top1: NDArray[np.int32]
    top5: NDArray[np.int32]
    confidence: NDArray[np.float32]
    correct: NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.top1)


def subset_index(class_subset: Sequence[int] | ArrayLike | None, num_classes: int) -> NDArray[np.intp] | None:
    """The class subset as a sorted, de-duplicated index array (None: score every class).

    Raises :class:`ValueError` when a class lies outside ``[0, num_classes)``.
    """
    if class_subset is None:
        return None
    subset = np.unique(np.asarray(class_subset, dtype=np.int64))
    if subset.size == 0:
        return None
    if subset[0] < 0 or subset[-1] >= num_classes:
        raise ValueError(f"class subset holds classes outside [0, {num_classes}): "
                         f"{subset[(subset < 0) | (subset >= num_classes)][:5].tolist()}")
    return subset.astype(np.intp)


def score(logits: ArrayLike, labels: ArrayLike,
          class_subset: Sequence[int] | NDArray[np.integer] | None = None) -> Scores:
    """Score a batch: ``logits`` [N, K] (any float dtype), ``labels`` [N] in the model's class indices.

    ``class_subset`` restricts the prediction to those classes (see the module docstring); pass the
    result of :func:`subset_index` to avoid re-validating it on every batch.
    """
    x = np.asarray(logits)
    y = np.asarray(labels)
    if x.ndim != 2:
        raise ValueError(f"logits must be a 2-d array [samples, classes], got shape {x.shape}")
    n, num_classes = x.shape
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match the logits, got {y.shape}")
    if num_classes < 1:
        raise ValueError("logits have no classes")
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=1))
        raise NonFiniteLogits(int(bad.size), bad[:5].tolist())

    subset = class_subset if isinstance(class_subset, np.ndarray) and class_subset.dtype == np.intp \
        else subset_index(class_subset, num_classes)
    scored = x if subset is None else x[:, subset]
    k = min(TOP_K, scored.shape[1])

    rows = np.arange(n)
    best = scored.argmax(axis=1)  # first maximum: the tie rule for top-1
    top_local = _top_k(scored, k)
    top_local[:, 0] = best  # identical except under ties; argmax defines top-1
    if subset is not None:
        top_classes = subset[top_local]
        top1 = subset[best]
    else:
        top_classes = top_local
        top1 = best

    top5 = np.full((n, TOP_K), PAD, dtype=np.int32)
    top5[:, :k] = top_classes
    # softmax(scored)[top1] = 1 / sum_j exp(scored_j - max); computed in float64 so that float16/32
    # inputs give the same confidence a float32 torch softmax does to ~1e-7.
    shifted = scored.astype(np.float64, copy=False) - scored[rows, best].astype(np.float64)[:, None]
    confidence = (1.0 / np.exp(shifted).sum(axis=1)).astype(np.float32)
    return Scores(top1=top1.astype(np.int32), top5=top5, confidence=confidence,
                  correct=(top1 == y))


def _top_k(scored: NDArray[np.floating], k: int) -> NDArray[np.intp]:
    """Column indices of the k largest values per row, by decreasing value, ties to the lower index."""
    n, num_classes = scored.shape
    if num_classes <= _FULL_SORT_MAX_CLASSES:
        return np.argsort(-scored, axis=1, kind="stable")[:, :k]
    if k == num_classes:
        candidates = np.broadcast_to(np.arange(num_classes), (n, num_classes))
    else:
        candidates = np.sort(np.argpartition(-scored, k - 1, axis=1)[:, :k], axis=1)
    values = np.take_along_axis(scored, candidates, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")  # candidates are sorted: ties keep index order
    return np.take_along_axis(candidates, order, axis=1)
