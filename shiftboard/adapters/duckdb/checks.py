"""The checks of committed predictions, before anything is written.

Labels and correctness are the platform's own: the caller sends predicted classes and confidences
only, and ``correct`` is computed from the labels the gateway stored when the test set was
registered (``shard_labels``), so no caller can change what counts as right.

The same holds for a reference shard's correctness on a shift's class sub-list (or class map): the
worker sends each sample's restricted top-1, and the gateway decides from the stored labels which
samples the sub-list keeps and which of them are right (:func:`_restricted_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from shiftboard.adapters.duckdb.keys import key_text
from shiftboard.domain.errors import FailedPrecondition, InvalidArgument
from shiftboard.domain.scoring import ClassMap, Restriction, restricted_outcome
from shiftboard.v1 import shiftboard_pb2 as pb
from shiftboard.wire.commits import ShardPredictions


@dataclass(frozen=True)
class Checked:
    """The predictions of a batch of shards that passed every check, in commit order; ``restricted``
    holds ``(shift, shard, samples, kept bits, correct bits)`` rows."""

    label: np.ndarray
    top1: np.ndarray
    top5: np.ndarray
    confidence: np.ndarray
    restricted: list[list[object]]


def from_message(shard: pb.Shard, predictions: pb.Predictions, seconds: float,
                 restricted: Sequence[pb.RestrictedTop1]) -> ShardPredictions:
    """CommitShard's message as one shard's arrays: its samples must be the shard's, in order, and it
    must not carry labels or correctness."""
    n = int(shard.num_samples)
    if len(predictions.label) or len(predictions.correct):
        raise InvalidArgument("labels and correctness are the platform's own: the gateway takes them from "
                              "the test set it registered; send samples, top-1, top-5 and confidences only")
    sample = np.asarray(predictions.sample, dtype=np.int64)
    columns = {"top1": predictions.top1, "confidence": predictions.confidence}
    if len(sample) != n or any(len(v) != n for v in columns.values()) or len(predictions.top5) != 5 * n:
        raise InvalidArgument(f"shard {shard.index} has {n} samples; the predictions must hold {n} samples, "
                              f"top-1, confidences and {5 * n} top-5 entries")
    first = int(shard.first_sample)
    if not np.array_equal(sample, np.arange(first, first + n)):
        raise InvalidArgument(f"shard {shard.index} covers samples {first}..{first + n - 1} in order")
    shifts = [r.shift for r in restricted]
    if len(set(shifts)) != len(shifts):
        twice = next(x for x in shifts if shifts.count(x) > 1)
        raise InvalidArgument(f"restricted top-1 for {twice} sent twice: send each shift once")
    return ShardPredictions.from_message(shard.index, predictions, seconds, restricted)


def _check_shapes(key: pb.EvaluationKey, shards: Sequence[tuple[pb.Shard, ShardPredictions]],
                  labels: Mapping[int, np.ndarray]) -> None:
    """Each shard sent once, with one prediction per sample of its manifest entry and stored labels."""
    if not shards:
        raise InvalidArgument(f"nothing to commit for {key_text(key)}: send the predictions of a shard")
    seen: set[int] = set()
    for shard, sent in shards:
        n = int(shard.num_samples)
        if shard.index in seen:
            raise InvalidArgument(f"shard {shard.index} sent twice in one commit: send each shard once")
        seen.add(shard.index)
        if sent.top5.shape != (n, 5) or len(sent.confidence) != n or len(sent.top1_or_first) != n:
            raise InvalidArgument(f"shard {shard.index} has {n} samples; the predictions must hold {n} samples, "
                                  f"top-1, confidences and {5 * n} top-5 entries")
        if sent.first_sample != shard.first_sample:
            raise InvalidArgument(f"shard {shard.index} covers samples {shard.first_sample}.."
                                  f"{shard.first_sample + n - 1} in order")
        if len(labels[shard.index]) != n:
            raise FailedPrecondition(f"the stored labels of shard {shard.index} of {key.testset} hold "
                                     f"{len(labels[shard.index])} samples, the manifest {n}: register the test "
                                     "set again")


def checked(key: pb.EvaluationKey, shards: Sequence[tuple[pb.Shard, ShardPredictions]], num_classes: int,
            labels: Mapping[int, np.ndarray], class_subset: Sequence[int] = (),
            restrictions: Mapping[str, Restriction] | None = None) -> Checked:
    """The predictions of ``shards`` (manifest entry, predictions) checked against the manifest, the
    model's classes, the test set's class sub-list and ``restrictions``; see :meth:`.Evaluations.commit_shards`."""
    _check_shapes(key, shards, labels)
    label = np.concatenate([np.asarray(labels[shard.index], dtype=np.int32) for shard, _ in shards])
    top1 = np.concatenate([sent.top1_or_first for _, sent in shards]).astype(np.int32, copy=False)
    top5 = np.concatenate([sent.top5 for _, sent in shards]).astype(np.int32, copy=False)
    confidence = np.concatenate([sent.confidence for _, sent in shards]).astype(np.float32, copy=False)
    if ((top5 < -1) | (top5 >= num_classes)).any() or ((top1 < 0) | (top1 >= num_classes)).any():
        raise InvalidArgument(f"predicted classes must lie in [0, {num_classes}) (-1 pads top-5)")
    if class_subset:
        scored = np.asarray(class_subset, dtype=np.int32)
        if not np.isin(top1, scored).all() or not np.isin(top5, np.append(scored, -1)).all():
            raise InvalidArgument(f"test set {key.testset} scores only its class sub-list: predicted "
                                  "classes must lie in it (-1 pads top-5)")
    if not ((confidence >= 0.0) & (confidence <= 1.0 + 1e-6)).all():
        raise InvalidArgument("confidences must be probabilities in [0, 1] (the softmax of top-1)")
    restricted_rows: list[list[object]] = []
    offset = 0
    for shard, sent in shards:
        n = int(shard.num_samples)
        if sent.restricted:
            for row in _restricted_rows(shard, label[offset:offset + n], top5[offset:offset + n],
                                        list(sent.restricted.items()), restrictions or {}, key.testset):
                restricted_rows.append([row[0], shard.index, *row[1:]])
        offset += n
    return Checked(label, top1, top5, confidence, restricted_rows)


def _restricted_rows(shard: pb.Shard, label: np.ndarray, top5: np.ndarray, sent: Sequence[tuple[str, ArrayLike]],
                     restrictions: Mapping[str, Restriction], testset: str) -> list[list[object]]:
    """``(shift, samples, kept bits, correct bits)`` of each restricted top-1 sent with a reference shard.

    The restricted top-1 must lie in the sub-list (a class of the map), and for a sub-list it must be
    the first stored top-5 class inside the sub-list wherever there is one (top-5 is ordered by logit).
    """
    n = len(label)
    rows: list[list[object]] = []
    for shift, sent_top1 in sent:
        restriction = restrictions.get(shift)
        if restriction is None:
            raise InvalidArgument(f"{shift!r} is not a registered shift of {testset} with a class sub-list "
                                  "or class map: send restricted top-1 only for the plan's restrictions")
        if any(r[0] == shift for r in rows):
            raise InvalidArgument(f"restricted top-1 for {shift} sent twice: send each shift once")
        top1 = np.asarray(sent_top1, dtype=np.int64)
        if len(top1) != n:
            raise InvalidArgument(f"shard {shard.index} has {n} samples; the restricted top-1 for {shift} "
                                  f"holds {len(top1)}: send one per sample")
        if isinstance(restriction, ClassMap):
            if ((top1 < 0) | (top1 >= len(restriction))).any():
                raise InvalidArgument(f"the restricted top-1 for {shift} must be classes of its class map, "
                                      f"in [0, {len(restriction)})")
        else:
            if not np.isin(top1, restriction).all():
                raise InvalidArgument(f"the restricted top-1 for {shift} must lie in its class sub-list")
            inside = np.isin(top5, restriction)
            found = inside.any(axis=1)
            first = top5[np.arange(n), inside.argmax(axis=1)]
            if (found & (first != top1)).any():
                raise InvalidArgument(f"the restricted top-1 for {shift} contradicts the shard's top-5 (the "
                                      "first top-5 class in the sub-list is the restricted top-1)")
        outcome = restricted_outcome(label, top1, restriction)
        correct = np.zeros(n, dtype=bool)
        correct[outcome.kept] = outcome.correct
        rows.append([shift, n, np.packbits(outcome.kept).tobytes(), np.packbits(correct).tobytes()])
    return rows
