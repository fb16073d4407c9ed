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

**Class maps** (the ImageNet testbed's way for ObjectNet and the video sets). A test set whose classes
are not the model's carries a :class:`ClassMap`: test-set class ``g`` is counted as predicted when the
model's best output among ``groups[g]`` beats the best of every other group. :func:`score_mapped`
restricts the logits to the mapped outputs, takes the maximum within each group, then the argmax;
top-5, confidence (softmax over the group maxima) and correctness are in the test set's label space.

**Exact reference accuracy on a class sub-list.** :func:`subset_correct` scores the reference samples
of a sub-list's classes by the argmax over the sub-list's logits only (the testbed's
``val-on-<x>-classes``); :func:`class_map_correct` does the same with a class map's groups. The
evaluator stores these per-sample flags at scoring time: rebuilding them from a stored top-5 counts a
sample wrong whenever none of its top 5 lies in the sub-list. The split between the two sides: the
worker computes :func:`restricted_top1` from the logits for every sample; the gateway, which holds the
labels, turns it into :class:`SubsetScores` with :func:`restricted_outcome`, and the two together
equal :func:`subset_correct` / :func:`class_map_correct`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["TOP_K", "ClassMap", "NonFiniteLogits", "Scores", "SubsetScores", "class_map_correct", "restricted_outcome",
           "restricted_top1", "score", "score_mapped", "subset_correct", "subset_index"]

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


def _logits(logits: ArrayLike, labels: ArrayLike) -> tuple[NDArray[np.floating], NDArray[np.int64]]:
    x = np.asarray(logits)
    y = np.asarray(labels)
    if x.ndim != 2:
        raise ValueError(f"logits must be a 2-d array [samples, classes], got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},) to match the logits, got {y.shape}")
    if x.shape[1] < 1:
        raise ValueError("logits have no classes")
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=1))
        raise NonFiniteLogits(int(bad.size), bad[:5].tolist())
    return x, y.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class ClassMap:
    """Test-set class ``g`` ↔ the model outputs ``groups[g]`` that count as it (disjoint, non-empty).

    Build it with :meth:`from_groups`, which validates; ``names`` optionally names the test-set classes.
    """

    groups: tuple[NDArray[np.intp], ...]
    num_classes: int
    names: tuple[str, ...] | None = None

    @classmethod
    def from_groups(cls, groups: Sequence[Sequence[int]], num_classes: int,
                    names: Sequence[str] | None = None) -> ClassMap:
        """Validate and build: every group non-empty, outputs in ``[0, num_classes)``, no output twice."""
        if not groups:
            raise ValueError("a class map needs at least one class")
        if names is not None and len(names) != len(groups):
            raise ValueError(f"{len(names)} names for {len(groups)} classes")
        arrays = []
        seen: dict[int, int] = {}
        for g, group in enumerate(groups):
            ids = np.unique(np.asarray(list(group), dtype=np.int64))
            if ids.size == 0:
                raise ValueError(f"class {g} of the class map has no model outputs")
            if ids[0] < 0 or ids[-1] >= num_classes:
                raise ValueError(f"class {g} of the class map names outputs outside [0, {num_classes}): "
                                 f"{ids[(ids < 0) | (ids >= num_classes)][:5].tolist()}")
            for i in ids.tolist():
                if i in seen:
                    raise ValueError(f"model output {i} is mapped to classes {seen[i]} and {g}: each output may "
                                     "count for one class only")
                seen[i] = g
            arrays.append(ids.astype(np.intp))
        return cls(groups=tuple(arrays), num_classes=num_classes, names=None if names is None else tuple(names))

    def __len__(self) -> int:
        return len(self.groups)

    def outputs(self) -> NDArray[np.intp]:
        """Every mapped model output, ascending."""
        return np.sort(np.concatenate(self.groups))

    def class_of(self, outputs: ArrayLike) -> NDArray[np.int64]:
        """The test-set class of each model output (-1 where an output is not mapped)."""
        table = np.full(self.num_classes, -1, dtype=np.int64)
        for g, ids in enumerate(self.groups):
            table[ids] = g
        o = np.asarray(outputs, dtype=np.int64)
        inside = (o >= 0) & (o < self.num_classes)
        return np.where(inside, table[np.clip(o, 0, self.num_classes - 1)], -1)

    def group_maxima(self, logits: NDArray[np.floating]) -> NDArray[np.float64]:
        """(samples x classes of the map): each group's largest logit."""
        if logits.shape[1] != self.num_classes:
            raise ValueError(f"the class map is for {self.num_classes} model outputs, the logits have "
                             f"{logits.shape[1]}")
        out = np.empty((logits.shape[0], len(self.groups)), dtype=np.float64)
        for g, ids in enumerate(self.groups):
            out[:, g] = logits[:, ids].max(axis=1)
        return out


def score_mapped(logits: ArrayLike, labels: ArrayLike, class_map: ClassMap) -> Scores:
    """Score a batch through a class map: ``labels`` [N] are test-set classes (``0 <= label < len(map)``).

    Prediction = argmax over the group maxima (ties: the lower class index); ``top5`` are test-set
    classes by decreasing group maximum, padded with ``-1``; ``confidence`` is the softmax over the
    group maxima at the predicted class; ``correct`` is ``top1 == label``.
    """
    x, y = _logits(logits, labels)
    return score(class_map.group_maxima(x), y)


@dataclass(frozen=True)
class SubsetScores:
    """Per-sample correctness on a class sub-list: ``kept`` (N) says which samples' labels lie in it,
    ``correct`` (``kept.sum()``) is their correctness in sample order."""

    kept: NDArray[np.bool_]
    correct: NDArray[np.bool_]

    @property
    def accuracy(self) -> float:
        """Share of the kept samples that are correct (0 when none is kept)."""
        return float(self.correct.mean()) if self.correct.size else 0.0


def subset_correct(logits: ArrayLike, labels: ArrayLike, subset: Sequence[int] | ArrayLike) -> SubsetScores:
    """Exact correctness on a sub-list of the model's classes (the testbed's ``val-on-<x>-classes``).

    ``labels`` are model classes. Samples whose label is in ``subset`` are kept; each is scored by the
    argmax of its logits over the sub-list's classes only (ties: the lower class index).
    """
    x, y = _logits(logits, labels)
    index = subset_index(subset, x.shape[1])
    if index is None:
        raise ValueError("a class sub-list must hold at least one class")
    kept = np.isin(y, index)
    predicted = index[x[kept][:, index].argmax(axis=1)]
    return SubsetScores(kept=kept, correct=predicted == y[kept])


def class_map_correct(logits: ArrayLike, labels: ArrayLike, class_map: ClassMap) -> SubsetScores:
    """Exact correctness of reference samples through a class map (e.g. ``val-on-vid-robust-classes``).

    ``labels`` are model classes; samples whose label is one of the map's outputs are kept, their
    label becomes its test-set class and they are scored by :func:`score_mapped`'s rule.
    """
    x, y = _logits(logits, labels)
    target = class_map.class_of(y)
    kept = target >= 0
    predicted = class_map.group_maxima(x[kept]).argmax(axis=1)
    return SubsetScores(kept=kept, correct=predicted == target[kept])


Restriction = NDArray[np.intp] | ClassMap


def restricted_top1(logits: ArrayLike, restriction: Restriction) -> NDArray[np.int32]:
    """Every sample's top-1 restricted to a class sub-list (a model class; from :func:`subset_index`) or a
    class map (a class of the map), by the rules of :func:`subset_correct` and :func:`class_map_correct`."""
    x = np.asarray(logits)
    if isinstance(restriction, ClassMap):
        return restriction.group_maxima(x).argmax(axis=1).astype(np.int32)
    return restriction[x[:, restriction].argmax(axis=1)].astype(np.int32)


def restricted_outcome(labels: ArrayLike, top1: ArrayLike, restriction: Restriction) -> SubsetScores:
    """Which samples a restriction keeps (their label, a model class, lies in it) and whether each kept
    sample's restricted ``top1`` (from :func:`restricted_top1`) is right."""
    y = np.asarray(labels, dtype=np.int64)
    t = np.asarray(top1, dtype=np.int64)
    if t.shape != y.shape:
        raise ValueError(f"{t.size} restricted predictions for {y.size} labels")
    target = restriction.class_of(y) if isinstance(restriction, ClassMap) else np.where(np.isin(y, restriction), y, -1)
    kept = target >= 0
    return SubsetScores(kept=kept, correct=t[kept] == target[kept])
