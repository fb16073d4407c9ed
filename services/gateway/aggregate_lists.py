"""The maths of the leaderboard's aggregates: sample lists and resampled correct counts.

A *sample list* is what an aggregate counts over: an evaluation's own samples (variant ``''``) or
the samples of a reference that a shift's class sub-list or class map keeps (variant: the shift's
name). This module holds what does not touch the catalog: the digest that says which classes a
variant's list was made of (:func:`list_stamp`), a reference's correctness on a shift's classes
rebuilt from its stored top-5 (:func:`rebuilt_correct`), and one pass of the list's shared
resampling weights over a batch of evaluations (:func:`resampled_rows`, see
:mod:`shiftboard.domain.bootstrap`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from shiftboard.domain.bootstrap import resampled_correct
from shiftboard.domain.paired import restricted_correct
from shiftboard.domain.scoring import ClassMap

#: The seed of the shared resampling weights (the leaderboard's bootstrap seed).
SEED = 0


def rebuilt_correct(class_subset: Sequence[int], class_map: Sequence[Sequence[int]], labels: np.ndarray,
                    top5: np.ndarray) -> np.ndarray:
    """Reference correctness on a shift's sub-list (or class map) from stored top-5: the first top-5
    class inside it is taken as the restricted prediction; none inside counts wrong (an undercount)."""
    if not class_map:
        return restricted_correct(labels, top5, list(class_subset))
    groups = [list(g) for g in class_map]
    mapping = ClassMap.from_groups(groups, max(max(g) for g in groups) + 1)
    target = mapping.class_of(labels)
    mapped = mapping.class_of(top5)
    inside = mapped >= 0
    first = mapped[np.arange(len(mapped)), inside.argmax(axis=1)]
    return (inside.any(axis=1) & (first == target))[target >= 0]


def list_stamp(class_subset: Sequence[int], class_map: Sequence[Sequence[int]]) -> str:
    """What a variant's sample list is made of: a digest of the shift's class sub-list and class map."""
    text = repr((sorted(int(c) for c in class_subset), [sorted(int(c) for c in g) for g in class_map]))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def resampled_rows(matrix: np.ndarray, list_key: str, resamples: int) -> list[np.ndarray]:
    """Each row's correct samples (float32 correctness of one sample list per row) in each of the first
    ``resamples`` resamples of the list's shared weights: int32 little-endian, read-only; empty rows
    when there are no samples or no resamples."""
    n = matrix.shape[1]
    counts = (resampled_correct(matrix, list_key, resamples, seed=SEED) if n and resamples
              else np.zeros((matrix.shape[0], 0), dtype=np.int32))
    out = []
    for i in range(matrix.shape[0]):
        row = counts[i].astype("<i4")
        row.flags.writeable = False
        out.append(row)
    return out
