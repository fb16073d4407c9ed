"""Reading stored predictions back: correctness bits, decoded columns, prediction messages, accuracies.

Correctness is read from the bits in each shard's progress row, so :func:`correctness` and the
accuracies never read a prediction row; labels come from ``shard_labels``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from shiftboard.adapters.duckdb.database import Database
from shiftboard.adapters.duckdb.keys import key_text, labels_of
from shiftboard.domain import layout
from shiftboard.domain.errors import FailedPrecondition
from shiftboard.domain.stats import clopper_pearson
from shiftboard.v1 import shiftboard_pb2 as pb


@dataclass(frozen=True)
class StoredShard:
    """A committed shard of one evaluation, as ``evaluation_shards`` and ``shards`` record it."""

    index: int
    first_sample: int
    samples: int
    correct: bytes
    class_bits: int


#: A slice [start, stop) of the rows of a stored shard.
Piece = tuple[StoredShard, int, int]


def stored_shards(catalog: Database, evaluation_id: int) -> tuple[str, list[StoredShard]]:
    """The evaluation's test set and its committed shards in sample order."""
    rows = catalog.query(
        "SELECT e.testset, es.shard, s.first_sample, es.samples, es.correct, es.class_bits "
        "FROM evaluations e JOIN evaluation_shards es ON es.evaluation_id = e.id "
        "JOIN shards s ON s.testset = e.testset AND s.idx = es.shard WHERE e.id = ? ORDER BY es.shard",
        [evaluation_id])
    testset = rows[0][0] if rows else ""
    return testset, [StoredShard(int(r[1]), int(r[2]), int(r[3]), bytes(r[4]), int(r[5])) for r in rows]


#: The label read back for every sample of a test set registered without labels.
UNKNOWN_LABEL = -1


def _unlabelled(catalog: Database, testset: str) -> bool:
    rows = catalog.query("SELECT coalesce(unlabelled, false) FROM testsets WHERE name = ?", [testset])
    return bool(rows and rows[0][0])


def _labels(catalog: Database, testset: str, shards: Sequence[StoredShard]) -> dict[int, np.ndarray]:
    if not shards:
        return {}
    if _unlabelled(catalog, testset):
        return {s.index: np.full(s.samples, UNKNOWN_LABEL, dtype=np.int32) for s in shards}
    rows = catalog.query("SELECT idx, labels FROM shard_labels WHERE testset = ? AND list_contains(?, idx)",
                         [testset, [s.index for s in shards]])
    out = {int(i): labels_of(bytes(data)) for i, data in rows}
    missing = [s.index for s in shards if s.index not in out]
    if missing:
        raise FailedPrecondition(f"the labels of shard {missing[0]} of {testset} are not stored: commit the "
                                 "shard again")
    return out


def _top5(lo: np.ndarray, hi: np.ndarray, pieces: Sequence[Piece]) -> np.ndarray:
    """Decode rows of ``pieces`` (each shard with the slice [start, stop) of its rows present) in order."""
    widths = {s.class_bits for s, _, _ in pieces}
    if len(widths) == 1:
        return layout.unpack_top5(lo, hi, widths.pop())
    parts, at = [], 0
    for s, start, stop in pieces:
        parts.append(layout.unpack_top5(lo[at:at + stop - start], hi[at:at + stop - start], s.class_bits))
        at += stop - start
    return np.concatenate(parts)


def correctness(catalog: Database, evaluation_id: int) -> np.ndarray:
    """Whether each committed sample's top-1 is its label (bool, sample order), from the stored bits."""
    _, shards = stored_shards(catalog, evaluation_id)
    if not shards:
        return np.zeros(0, dtype=bool)
    return np.concatenate([layout.unpack_bits(s.correct, s.samples) for s in shards])


def columns(catalog: Database, evaluation_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels int32 [N], top5 int32 [N, 5], correct bool [N]) of every committed sample in sample order."""
    testset, shards = stored_shards(catalog, evaluation_id)
    labels = _labels(catalog, testset, shards)
    with catalog.transaction() as cur:
        table = cur.execute("SELECT top5, top5_hi FROM predictions WHERE evaluation_id = ? ORDER BY sample",
                            [evaluation_id]).to_arrow_table()
    total = sum(s.samples for s in shards)
    if table.num_rows != total:
        raise FailedPrecondition(f"evaluation {evaluation_id} stores {table.num_rows} predictions for {total} "
                                 "committed samples: run it again")
    lo = table.column("top5").to_numpy()
    hi = table.column("top5_hi").to_numpy()
    top5 = _top5(lo, hi, [(s, 0, s.samples) for s in shards])
    label = np.concatenate([labels[s.index] for s in shards]).astype(np.int32) if shards \
        else np.zeros(0, dtype=np.int32)
    return label, top5, correctness(catalog, evaluation_id)


def _pieces(shards: Sequence[StoredShard], ends: np.ndarray, offset: int, stop: int) -> list[Piece]:
    """The slices of ``shards`` (ending at ``ends`` in the evaluation's rows) that rows [offset, stop) cover."""
    pieces = []
    for s, end in zip(shards, ends, strict=True):
        begin = int(end) - s.samples
        if end > offset and begin < stop:
            pieces.append((s, max(offset, begin) - begin, min(stop, int(end)) - begin))
    return pieces


def _message(catalog: Database, key: pb.EvaluationKey, evaluation_id: int, testset: str,
             pieces: Sequence[Piece]) -> pb.Predictions:
    """The stored predictions of ``pieces`` (consecutive) as one message."""
    low = pieces[0][0].first_sample + pieces[0][1]
    high = pieces[-1][0].first_sample + pieces[-1][2]
    expected = sum(b - a for _, a, b in pieces)
    labels = _labels(catalog, testset, [p[0] for p in pieces])
    with catalog.transaction() as cur:
        table = cur.execute(
            "SELECT sample, top5, top5_hi, confidence FROM predictions WHERE evaluation_id = ? "
            "AND sample >= ? AND sample < ? ORDER BY sample", [evaluation_id, low, high]).to_arrow_table()
        own = cur.execute("SELECT sample, top1 FROM prediction_top1 WHERE evaluation_id = ? AND sample >= ? "
                          "AND sample < ?", [evaluation_id, low, high]).fetchall()
    if table.num_rows != expected:
        raise FailedPrecondition(f"{key_text(key)} stores {table.num_rows} predictions for samples "
                                 f"{low}..{high - 1}, {expected} expected: run it again")
    sample = table.column("sample").to_numpy()
    top5 = _top5(table.column("top5").to_numpy(), table.column("top5_hi").to_numpy(), pieces)
    top1 = top5[:, 0].copy()
    if own:
        where = np.searchsorted(sample, [r[0] for r in own])
        top1[where] = [r[1] for r in own]
    unknown = _unlabelled(catalog, testset)  # no labels: label -1 and no correctness (never stored)
    return pb.Predictions(
        sample=sample.tolist(),
        label=np.concatenate([labels[s.index][a:b] for s, a, b in pieces]).tolist(),
        top1=top1.tolist(),
        top5=top5.ravel().tolist(),
        confidence=layout.confidence_of(table.column("confidence").to_numpy()).tolist(),
        correct=[] if unknown else
        np.concatenate([layout.unpack_bits(s.correct, s.samples)[a:b] for s, a, b in pieces]).tolist(),
    )


def predictions(catalog: Database, key: pb.EvaluationKey, evaluation_id: int,
                batch: int = 65536) -> Iterator[pb.Predictions]:
    """Every committed prediction in sample order, in messages of ``batch`` samples (the last one fewer)."""
    testset, shards = stored_shards(catalog, evaluation_id)
    ends = np.cumsum([s.samples for s in shards])
    total = int(ends[-1]) if len(shards) else 0
    for offset in range(0, total, batch):
        stop = min(total, offset + batch)
        yield _message(catalog, key, evaluation_id, testset, _pieces(shards, ends, offset, stop))


def restricted_correct(catalog: Database, evaluation_id: int, shift: str) -> np.ndarray | None:
    """The evaluation's correctness on ``shift``'s class sub-list, kept samples only in sample order;
    None unless every shard of the evaluation carries it."""
    rows = catalog.query("SELECT samples, kept, correct FROM restricted_correct WHERE evaluation_id = ? "
                         "AND shift = ? ORDER BY shard", [evaluation_id, shift])
    total = catalog.query("SELECT shards_total FROM evaluations WHERE id = ?", [evaluation_id])
    if not rows or not total or len(rows) != int(total[0][0]):
        return None
    parts = []
    for samples, kept, correct in rows:
        k = np.unpackbits(np.frombuffer(kept, dtype=np.uint8), count=samples).astype(bool)
        c = np.unpackbits(np.frombuffer(correct, dtype=np.uint8), count=samples).astype(bool)
        parts.append(c[k])
    return np.concatenate(parts)


def accuracies(catalog: Database, *, model: str = "", testset: str = "") -> list[pb.Accuracy]:
    """The accuracy (with its Clopper-Pearson interval) of every succeeded evaluation, by test set; none on a
    set registered without labels (its accuracy is only estimated, on the leaderboard)."""
    clauses, params = ["e.status = 'succeeded'", "e.testset NOT IN (SELECT name FROM testsets WHERE "
                       "coalesce(unlabelled, false))"], []
    if model:
        clauses.append("e.model = ?")
        params.append(model)
    if testset:
        clauses.append("e.testset = ?")
        params.append(testset)
    rows = catalog.query(
        "SELECT e.model, e.version, e.testset, sum(s.samples)::BIGINT, sum(s.correct_count)::BIGINT "
        "FROM evaluations e JOIN evaluation_shards s ON s.evaluation_id = e.id "
        f"WHERE {' AND '.join(clauses)} GROUP BY ALL ORDER BY e.testset, e.model, e.version", params)
    out = []
    for model_name, version, testset_name, samples, correct in rows:
        low, high = clopper_pearson(int(correct), int(samples))
        out.append(pb.Accuracy(key=pb.EvaluationKey(model=model_name, version=version, testset=testset_name),
                               samples=samples, correct=correct, accuracy=correct / samples if samples else 0.0,
                               ci_low=low, ci_high=high))
    return out
